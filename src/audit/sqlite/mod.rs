//! The SQLite audit store (bundled SQLite): one row per record in a WAL-mode database, written in
//! groups (see [`super::group`]: one transaction for the records of an event-loop turn, each encoded by
//! its own request beforehand); a record's receipt resolves after the commit.
//!
//! With `synchronous = NORMAL` (the default, `fsync = "never"`) a committed transaction is in the WAL
//! file when the receipt resolves, so it survives a crash of the process (`kill -9`), not a power loss;
//! `fsync = "always"` sets `synchronous = FULL`, which syncs the WAL at every commit. A transaction that
//! fails (disk full, read-only file, lock held too long by another process) is rolled back and every
//! record of the group is answered with the error, so their requests are refused.
//!
//! A background thread keeps the commits short: it checkpoints the WAL into the database every second
//! from a connection of its own (the writer's automatic checkpoints, and the disk syncs they make, are
//! turned off, so no request waits on one), and runs retention daily.
//!
//! Retention (`retain_days`) deletes the oldest rows at open and then daily, in one transaction with the
//! segment record that names the hash of the last row deleted; it never deletes an admission whose
//! replay key is still spent. The schema lives in [`schema`], the reading side in [`trail`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

use super::chain::{self, GENESIS, Segment, SegmentReason};
use super::group::{GroupCommit, Store};
use super::jsonl::Fsync;
use super::{AuditEntry, AuditError, AuditReceipt, AuditSink, SpentKey, rfc3339};

pub mod schema;
pub mod trail;

use schema::Columns;

/// How long another connection may hold the write lock before a write fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often retention runs after the start.
const RETENTION_EVERY: Duration = Duration::from_secs(86_400);
/// How often the WAL is checkpointed into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// How the database is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SqliteOptions {
    /// `never`: `synchronous = NORMAL`; `always`: `synchronous = FULL`.
    pub fsync: Fsync,
    /// Delete records older than this many days (none: keep everything).
    pub retain_days: Option<u32>,
}

/// The SQLite store.
#[derive(Debug)]
pub struct Sqlite {
    group: Arc<GroupCommit<Db>>,
    /// Dropping it stops the background thread.
    _background: Option<mpsc::Sender<()>>,
}

struct Db {
    conn: Connection,
    last: String,
    retain_days: Option<u32>,
}

/// Opens a connection for writing and reading back, with the store's settings.
fn connect(path: &Path, fsync: Fsync) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", if fsync == Fsync::Always { "FULL" } else { "NORMAL" })?;
    // Checkpoints run in the background thread, not in a request's commit.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    Ok(conn)
}

impl Sqlite {
    /// Opens (creating it and its schema, or migrating it) the database at `path`; runs retention once.
    pub fn open(path: &Path, options: SqliteOptions) -> std::io::Result<Sqlite> {
        // Create the file the ordinary way first, so that a folder the gateway cannot write gives the
        // operating system's own error (permission denied, no such folder).
        std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        let other = |e: String| std::io::Error::other(format!("{}: {e}", path.display()));
        let mut conn = connect(path, options.fsync).map_err(|e| other(e.to_string()))?;
        schema::migrate(&mut conn).map_err(other)?;
        let last = schema::last_hash(&conn).map_err(|e| other(e.to_string()))?.unwrap_or_else(|| GENESIS.to_owned());
        let mut db = Db { conn, last, retain_days: options.retain_days };
        db.retain_now().map_err(other)?;
        let group = Arc::new(GroupCommit::new(db, options.fsync == Fsync::Always));
        let background = background(Arc::downgrade(&group), path.to_owned(), options.retain_days.is_some());
        Ok(Sqlite { group, _background: background })
    }

    /// Runs retention as if the time were `now_ms` (Unix milliseconds); returns the rows deleted.
    pub fn retain(&self, now_ms: u64) -> Result<u64, AuditError> {
        self.group.with_store(|db| db.retain(now_ms)).map_err(AuditError)
    }
}

/// Until the store is dropped: checkpoints the WAL every second, and runs retention daily when asked.
fn background(group: std::sync::Weak<GroupCommit<Db>>, path: PathBuf, retain: bool) -> Option<mpsc::Sender<()>> {
    let (stop, stopped) = mpsc::channel::<()>();
    let group_again = group.clone();
    let spawned = std::thread::Builder::new().name("audit-sqlite".into()).spawn(move || {
        let checkpointer = Connection::open(&path).and_then(|c| c.busy_timeout(BUSY_TIMEOUT).map(|()| c));
        let mut last_retention = std::time::Instant::now();
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
            if let Ok(conn) = &checkpointer
                && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            {
                tracing::warn!(error = %e, file = %path.display(), "The audit WAL could not be checkpointed.");
            }
            if retain && last_retention.elapsed() >= RETENTION_EVERY {
                last_retention = std::time::Instant::now();
                let Some(group) = group.upgrade() else { return };
                if let Err(e) = group.with_store(Db::retain_now) {
                    tracing::error!(error = %e, file = %path.display(), "Audit retention failed; it runs again tomorrow.");
                }
            }
        }
    });
    match spawned {
        Ok(_) => Some(stop),
        Err(e) => {
            tracing::error!(error = %e, "The audit database's background thread could not be started.");
            // Without it, the writer checkpoints for itself again (and retention runs at each start only).
            if let Some(group) = group_again.upgrade() {
                let _ = group.with_store(|db| db.conn.pragma_update(None, "wal_autocheckpoint", 1000));
            }
            None
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Db {
    fn retain_now(&mut self) -> Result<u64, String> {
        self.retain(now_ms())
    }

    /// Deletes the rows up to the last one older than `retain_days` (keeping every admission whose
    /// replay key is still spent, and all after it), with a segment record naming the cut.
    fn retain(&mut self, now_ms: u64) -> Result<u64, String> {
        let Some(days) = self.retain_days else { return Ok(0) };
        let cutoff = rfc3339(now_ms.saturating_sub(u64::from(days) * 86_400_000));
        let now_secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
        let tx =
            self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
        let old: Option<i64> = tx
            .query_row("SELECT max(id) FROM records WHERE time < ?1", [&cutoff], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        let spent: Option<i64> = tx
            .query_row("SELECT min(id) FROM records WHERE replay_until >= ?1", [now_secs], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        let Some(cut) = old.map(|o| spent.map_or(o, |s| o.min(s - 1))) else { return Ok(0) };
        let Some(cut_hash): Option<String> = tx
            .query_row("SELECT hash FROM records WHERE id = ?1", [cut], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())?
        else {
            return Ok(0);
        };
        let dropped = tx.execute("DELETE FROM records WHERE id <= ?1", [cut]).map_err(|e| e.to_string())?;
        tx.execute("DELETE FROM record_terms WHERE record_id <= ?1", [cut]).map_err(|e| e.to_string())?;
        let mut segment = Segment::new(rfc3339(now_ms), SegmentReason::Retention);
        segment.dropped = dropped as u64;
        segment.cut_hash = Some(cut_hash);
        segment.cut_before = Some(cutoff);
        let json = serde_json::to_string(&segment).map_err(|e| e.to_string())?;
        let hash = chain::link(&self.last, json.as_bytes());
        schema::insert(&tx, &Columns::of_segment(&segment), &json, &self.last, &hash).map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
        self.last = hash;
        tracing::info!(records = dropped, before = %segment.cut_before.unwrap_or_default(), "Audit retention deleted old records.");
        Ok(dropped as u64)
    }

    fn spent(&self, now: i64) -> rusqlite::Result<Vec<SpentKey>> {
        let mut stmt = self.conn.prepare(
            "SELECT replay_key, replay_until FROM records WHERE replay_until >= ?1 AND replay_key IS NOT NULL \
             AND phase = 'admitted'",
        )?;
        let rows = stmt.query_map([now], |r| Ok(SpentKey { key: r.get(0)?, until: r.get(1)? }))?;
        rows.collect()
    }
}

/// A record ready for the database: its JSON and its columns.
#[derive(Debug)]
struct Prepared {
    json: String,
    columns: Columns,
}

impl Store for Db {
    type Record = Prepared;

    fn prepare(entry: &AuditEntry) -> Result<Prepared, AuditError> {
        Ok(Prepared { json: super::json::entry_text(entry), columns: Columns::of(entry) })
    }

    fn append(&mut self, records: &[Prepared]) -> Result<(), AuditError> {
        let result = self.commit(records);
        if let Err(e) = &result {
            tracing::error!(error = %e, "Audit records could not be written.");
        }
        result
    }
}

impl Db {
    fn commit(&mut self, records: &[Prepared]) -> Result<(), AuditError> {
        let failed = |e: rusqlite::Error| AuditError(format!("the audit database: {e}"));
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
        let mut prev = self.last.clone();
        for Prepared { json, columns } in records {
            let hash = chain::link(&prev, json.as_bytes());
            schema::insert(&tx, columns, json, &prev, &hash).map_err(failed)?;
            prev = hash;
        }
        tx.commit().map_err(failed)?;
        self.last = prev;
        Ok(())
    }
}

impl AuditSink for Sqlite {
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt {
        self.group.submit(entry)
    }

    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        self.group.with_store(|db| db.spent(now)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "Spent replay keys could not be read back from the audit database.");
            Vec::new()
        })
    }

    fn flush(&self) -> AuditReceipt {
        self.group.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::trail::SqliteTrail;
    use super::*;
    use crate::audit::Phase;
    use crate::audit::chain::Breach;
    use crate::audit::query::{Filter, Trail};

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crossgate-sqlite-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.db")
    }

    fn entry(i: usize, phase: Phase, time_ms: u64) -> AuditEntry {
        AuditEntry {
            request_id: format!("R-{i}"),
            phase,
            time: rfc3339(time_ms),
            caller: Some("demo".into()),
            instances: vec![format!("ins-{i:08}")],
            code: if phase == Phase::Admitted { String::new() } else { "Success".into() },
            status: if phase == Phase::Admitted { 0 } else { 200 },
            ..AuditEntry::default()
        }
    }

    fn verified(path: &Path) -> crate::audit::chain::Checked {
        SqliteTrail::open(path).unwrap().verify().unwrap().unwrap_or_else(|b| panic!("{b}"))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_records_are_all_committed_in_chain_order() {
        let path = temp();
        let store = Arc::new(Sqlite::open(&path, SqliteOptions::default()).unwrap());
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.submit(&entry(i, Phase::Completed, now_ms())).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(verified(&path).records, 300);
        let all = SqliteTrail::open(&path).unwrap().query(&Filter { limit: 1000, ..Filter::default() }).unwrap();
        let mut ids: Vec<String> = all.into_iter().map(|e| e.request_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 300, "every record once");
    }

    #[tokio::test]
    async fn the_chain_goes_on_after_a_restart() {
        let path = temp();
        for round in 0..3 {
            let store = Sqlite::open(&path, SqliteOptions::default()).unwrap();
            for i in 0..4 {
                store.submit(&entry(round * 10 + i, Phase::Admitted, now_ms())).await.unwrap();
            }
        }
        let checked = verified(&path);
        assert_eq!((checked.records, checked.segments), (12, 1));
    }

    #[tokio::test]
    async fn the_schema_is_versioned_and_a_newer_one_is_refused() {
        let path = temp();
        drop(Sqlite::open(&path, SqliteOptions::default()).unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(schema::version(&conn).unwrap(), schema::VERSION);
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Sqlite::open(&path, SqliteOptions::default()).unwrap_err().to_string();
        assert!(err.contains("schema version 99") && err.contains("newer crossgate"), "{err}");
        let err = SqliteTrail::open(&path).unwrap_err();
        assert!(err.contains("newer"), "{err}");
    }

    #[tokio::test]
    async fn spent_keys_are_read_back_after_a_restart() {
        let path = temp();
        {
            let store = Sqlite::open(&path, SqliteOptions::default()).unwrap();
            let mut admitted = entry(1, Phase::Admitted, now_ms());
            admitted.replay_key = Some("id\0nonce".into());
            admitted.replay_until = Some(500);
            store.submit(&admitted).await.unwrap();
            let mut completed = entry(1, Phase::Completed, now_ms());
            completed.replay_key = Some("other".into());
            completed.replay_until = Some(500);
            store.submit(&completed).await.unwrap();
        }
        let store = Sqlite::open(&path, SqliteOptions::default()).unwrap();
        assert_eq!(store.spent_keys(400), vec![SpentKey { key: "id\0nonce".into(), until: 500 }]);
        assert!(store.spent_keys(501).is_empty());
    }

    #[tokio::test]
    async fn retention_deletes_old_rows_in_a_new_segment_and_keeps_keys_still_spent() {
        let path = temp();
        let now = now_ms();
        let day = 86_400_000;
        {
            let store = Sqlite::open(&path, SqliteOptions::default()).unwrap();
            for i in 0..5 {
                store.submit(&entry(i, Phase::Completed, now - 20 * day)).await.unwrap();
            }
            for i in 5..8 {
                store.submit(&entry(i, Phase::Completed, now - day)).await.unwrap();
            }
        }
        let options = SqliteOptions { retain_days: Some(7), ..SqliteOptions::default() };
        let store = Sqlite::open(&path, options).unwrap();
        let left = SqliteTrail::open(&path).unwrap().query(&Filter::default()).unwrap();
        assert_eq!(left.iter().map(|e| e.request_id.as_str()).collect::<Vec<_>>(), ["R-5", "R-6", "R-7"]);
        let checked = verified(&path);
        assert_eq!((checked.records, checked.segments), (4, 2), "three records and the segment record");

        // An admission still holding a spent key stops retention there.
        let mut spent = entry(8, Phase::Admitted, now - day);
        spent.replay_key = Some("k".into());
        spent.replay_until = Some(i64::MAX / 2);
        store.submit(&spent).await.unwrap();
        store.submit(&entry(9, Phase::Completed, now)).await.unwrap();
        assert_eq!(store.retain(now + 30 * day).unwrap(), 4, "R-5..R-7 and the first segment record");
        assert_eq!(store.spent_keys(now as i64 / 1000).len(), 1);
        assert_eq!(verified(&path).records, 3, "R-8, R-9 and the second segment record");
        assert_eq!(store.retain(now + 30 * day).unwrap(), 0, "nothing more may go");
    }

    #[tokio::test]
    async fn verify_names_an_edited_column_a_removed_row_and_a_swap() {
        let path = temp();
        {
            let store = Sqlite::open(&path, SqliteOptions::default()).unwrap();
            for i in 0..5 {
                store.submit(&entry(i, Phase::Completed, now_ms())).await.unwrap();
            }
        }
        let conn = Connection::open(&path).unwrap();
        let broken = || SqliteTrail::open(&path).unwrap().verify().unwrap().unwrap_err();

        conn.execute("UPDATE records SET caller = 'someone' WHERE request_id = 'R-2'", []).unwrap();
        let b = broken();
        assert_eq!((b.position, b.request_id.as_str()), (3, "R-2"));
        assert!(matches!(&b.breach, Breach::Edited(why) if why.contains("caller")), "{b}");
        conn.execute("UPDATE records SET caller = 'demo' WHERE request_id = 'R-2'", []).unwrap();

        conn.execute("UPDATE records SET record = replace(record, 'ins-00000001', 'ins-99999999')", []).unwrap();
        let b = broken();
        assert_eq!((b.position, b.request_id.as_str()), (2, "R-1"), "{b}");
        assert!(matches!(b.breach, Breach::Edited(_)), "{b}");
        conn.execute("UPDATE records SET record = replace(record, 'ins-99999999', 'ins-00000001')", []).unwrap();
        assert_eq!(verified(&path).records, 5);

        // Swap the contents of rows 2 and 3.
        conn.execute_batch(
            "CREATE TEMP TABLE t AS SELECT * FROM records WHERE id IN (2, 3);
             UPDATE records SET (time, phase, request_id, caller, dialect, action, result, code, status, replay_key,
               replay_until, record, prev_hash, hash) = (SELECT time, phase, request_id, caller, dialect, action,
               result, code, status, replay_key, replay_until, record, prev_hash, hash FROM t WHERE t.id = 5 - records.id)
             WHERE id IN (2, 3);
             UPDATE record_terms SET record_id = 5 - record_id WHERE record_id IN (2, 3);",
        )
        .unwrap();
        let b = broken();
        assert_eq!((b.position, b.request_id.as_str(), b.breach.clone()), (2, "R-2", Breach::Reordered { names: 3 }));

        // Row 2 now holds R-2: without it, R-3 follows a record that is gone.
        conn.execute("DELETE FROM records WHERE id = 2", []).unwrap();
        let b = broken();
        assert_eq!((b.position, b.request_id.as_str(), b.breach.clone()), (3, "R-3", Breach::Removed), "{b}");
    }
}
