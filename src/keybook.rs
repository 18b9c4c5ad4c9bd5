//! The key names the gateway translates with: the `[[keys]]` rows of the configuration, plus what key
//! replication learned (the id or name a key got when it was imported on another provider), kept in a
//! JSON state file (`[replication] state`) so that a restart does not import a key twice.
//!
//! A row is known in the state file by its first configured name (`tencent-cvm:skey-7mig2ecs`); a
//! configured name always wins over a learned one. The file is written whole to a temporary file, synced
//! and renamed over the old one, so a crash leaves either the old state or the new.
//!
//! ```json
//! {"version": 1, "rows": {"tencent-cvm:skey-7mig2ecs": {"aliyun-ecs": "releasebot"}}}
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};

use crate::config::{Config, KeyOptions, Names};
use crate::model::Provider;

/// The state file's format version.
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    rows: BTreeMap<String, BTreeMap<String, String>>,
}

/// The key table, configured and learned.
#[derive(Debug)]
pub struct KeyBook {
    table: RwLock<Arc<Vec<Names>>>,
    configured: Vec<Names>,
    options: Vec<KeyOptions>,
    state: Option<PathBuf>,
    /// Serialises learning (and writing the file).
    learning: Mutex<()>,
    /// Serialises replications, so that two requests needing the same key import it once.
    replicating: tokio::sync::Mutex<()>,
}

/// A row's name in the state file: its first configured name.
fn row_id(row: &Names) -> String {
    row.iter().next().map(|(p, n)| format!("{}:{n}", p.name())).unwrap_or_default()
}

impl KeyBook {
    /// The configuration's rows, with no state file (nothing learned is kept).
    pub fn in_memory(config: &Config) -> KeyBook {
        KeyBook {
            table: RwLock::new(Arc::new(config.keys.clone())),
            configured: config.keys.clone(),
            options: config.key_options.clone(),
            state: None,
            learning: Mutex::new(()),
            replicating: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration's rows and what the state file at `[replication] state` says was learned (a
    /// missing file is an empty state; one that cannot be read is an error naming it).
    pub fn open(config: &Config) -> Result<KeyBook, String> {
        let mut book = KeyBook::in_memory(config);
        let path = config.replication.state.clone();
        let learned = read_state(&path)?;
        let mut rows = config.keys.clone();
        for row in &mut rows {
            if let Some(extra) = learned.rows.get(&row_id(row)) {
                for (provider, name) in extra {
                    if let Some(p) = Provider::from_name(provider) {
                        row.entry(p).or_insert_with(|| name.clone());
                    }
                }
            }
        }
        book.table = RwLock::new(Arc::new(rows));
        book.state = Some(path);
        Ok(book)
    }

    /// Waits for the replications under way to end; held while one replication runs.
    pub async fn replicating(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.replicating.lock().await
    }

    /// The table as it is now.
    pub fn table(&self) -> Arc<Vec<Names>> {
        self.table.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A row's replication settings.
    pub fn options(&self, row: usize) -> KeyOptions {
        self.options.get(row).cloned().unwrap_or_default()
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.configured.len()
    }

    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.configured.is_empty()
    }

    /// The row that names `key` on `provider`, if any.
    pub fn row_of(&self, provider: Provider, key: &str) -> Option<usize> {
        self.table().iter().position(|row| row.get(&provider).is_some_and(|n| n == key))
    }

    /// Records that row `row` is `name` on `provider`, and keeps it in the state file.
    pub fn learn(&self, row: usize, provider: Provider, name: &str) -> Result<(), String> {
        let _one = self.learning.lock().unwrap_or_else(|p| p.into_inner());
        let mut rows = (*self.table()).clone();
        let Some(entry) = rows.get_mut(row) else { return Err(format!("no [[keys]] row {row}")) };
        entry.insert(provider, name.to_owned());
        if let Some(path) = &self.state {
            let mut file = StateFile { version: VERSION, rows: BTreeMap::new() };
            for (configured, now) in self.configured.iter().zip(&rows) {
                let learned: BTreeMap<String, String> = now
                    .iter()
                    .filter(|(p, _)| !configured.contains_key(*p))
                    .map(|(p, n)| (p.name().to_owned(), n.clone()))
                    .collect();
                if !learned.is_empty() {
                    file.rows.insert(row_id(configured), learned);
                }
            }
            write_state(path, &file)?;
        }
        *self.table.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(rows);
        Ok(())
    }
}

fn read_state(path: &Path) -> Result<StateFile, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(StateFile::default()),
        Err(e) => return Err(format!("cannot read the key replication state {}: {e}", path.display())),
    };
    let state: StateFile = serde_json::from_str(&text)
        .map_err(|e| format!("the key replication state {} cannot be read: {e}", path.display()))?;
    if state.version > VERSION {
        return Err(format!(
            "the key replication state {} has version {}, newer than this crossgate's {VERSION}",
            path.display(),
            state.version
        ));
    }
    Ok(state)
}

fn write_state(path: &Path, state: &StateFile) -> Result<(), String> {
    let why = |e: std::io::Error| format!("cannot write the key replication state {}: {e}", path.display());
    let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    let temp = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temp).map_err(why)?;
    file.write_all(&json).and_then(|()| file.sync_all()).map_err(why)?;
    std::fs::rename(&temp, path).map_err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(state: &Path) -> Config {
        let mut config = Config::demo();
        config.keys = vec![Names::from([(Provider::TencentCvm, "skey-7mig2ecs".to_owned())])];
        config.key_options = vec![KeyOptions { replicate: true, public_key: None }];
        config.replication.state = state.to_owned();
        config
    }

    #[test]
    fn learned_names_are_kept_across_a_restart_and_configured_ones_win() {
        let dir = std::env::temp_dir().join(format!("crossgate-keybook-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("keys.json");
        let book = KeyBook::open(&config(&state)).unwrap();
        assert_eq!(book.row_of(Provider::TencentCvm, "skey-7mig2ecs"), Some(0));
        book.learn(0, Provider::AliyunEcs, "releasebot").unwrap();
        assert_eq!(book.table()[0].get(&Provider::AliyunEcs).map(String::as_str), Some("releasebot"));

        let again = KeyBook::open(&config(&state)).unwrap();
        assert_eq!(again.row_of(Provider::AliyunEcs, "releasebot"), Some(0), "learned before the restart");
        let mut configured = config(&state);
        configured.keys[0].insert(Provider::AliyunEcs, "ConfiguredName".into());
        let book = KeyBook::open(&configured).unwrap();
        assert_eq!(book.table()[0][&Provider::AliyunEcs], "ConfiguredName");

        std::fs::write(&state, "{not json").unwrap();
        assert!(KeyBook::open(&config(&state)).unwrap_err().contains("keys.json"));
    }
}
