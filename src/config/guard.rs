//! The door's own settings: `[audit]` (where records go, what happens when they cannot be written, sync
//! and rotation), `[replay]` (time windows, TC3 and unsigned-payload policy, the replay memory's
//! bound), `[inbound]` (connection, in-flight, header and drain limits) and each caller's permissions.
//!
//! ```toml
//! [audit]
//! store = "sqlite:audit.db"   # the default; or "jsonl:audit.jsonl" (`path = "audit.jsonl"` too), "stdout",
//!                             # or "postgres://USER:${PGPASSWORD}@HOST/DB" (one trail for many replicas)
//! replica = "gw-1"            # PostgreSQL: the name this gateway's records carry (default: the host name)
//! on_failure = "refuse"       # or "forward": forward unaudited when the audit cannot be written
//! fsync = "never"             # or "always": sync each group of records (SQLite: synchronous = FULL)
//! retain_days = 90            # SQLite, PostgreSQL: delete older records at start and daily (default: keep all)
//! rotate_bytes = 67108864     # JSON lines: rotate at this size
//! keep = 5                    # JSON lines: rotated files kept
//!
//! [replay]
//! tc3 = "once"                # or "window": accept a TC3 signature again within its window
//! unsigned_payload = "refuse" # or "accept": TC3 requests whose body the signature does not cover
//! capacity = 500000           # replay keys kept in memory
//! windows = { aliyun_ecs = 900, tencent_cvm = 300 }   # seconds, per caller dialect
//!
//! [inbound]
//! max_connections = 10000
//! max_in_flight = 4096
//! header_read_timeout_ms = 10000
//! max_header_bytes = 65536
//! drain_timeout_ms = 30000
//! threads = 0                 # serving threads, each with its own event loop; 0: one per CPU
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use wildmatch::WildMatch;

use crate::audit::jsonl::{Fsync, Options};
use crate::audit::sqlite::SqliteOptions;
use crate::audit::store::StoreSpec;
use crate::dialect::Dialect;

// === raw ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    store: Option<String>,
    path: Option<String>,
    replica: Option<String>,
    retain_days: Option<u32>,
    on_failure: Option<String>,
    fsync: Option<String>,
    rotate_bytes: Option<u64>,
    keep: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReplay {
    tc3: Option<String>,
    unsigned_payload: Option<String>,
    capacity: Option<usize>,
    #[serde(default)]
    windows: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInbound {
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    header_read_timeout_ms: Option<u64>,
    max_header_bytes: Option<usize>,
    drain_timeout_ms: Option<u64>,
    threads: Option<usize>,
}

// === checked ===

/// What happens to a request whose admission record cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnAuditFailure {
    /// Refuse it in the caller's dialect: nothing is forwarded unaudited (the default).
    #[default]
    Refuse,
    /// Forward it anyway and log the failure.
    Forward,
}

/// `[audit]`.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Where records go.
    pub store: StoreSpec,
    /// What an unwritable audit does to a request.
    pub on_failure: OnAuditFailure,
    /// Sync and rotation (JSON lines).
    pub options: Options,
    /// Sync and retention (SQLite; retention for PostgreSQL too).
    pub sqlite: SqliteOptions,
    /// The name this gateway's records carry in a shared (PostgreSQL) trail.
    pub replica: String,
}

/// Whether a TC3 signature may be presented more than once within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tc3Replay {
    /// Once (the default): a TC3 signature is spent like a nonce.
    #[default]
    Once,
    /// As often as wanted within the window, as Tencent Cloud itself accepts.
    Window,
}

/// `[replay]`.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// TC3 signatures: once or within the window.
    pub tc3: Tc3Replay,
    /// Accept TC3 requests with `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`.
    pub accept_unsigned_payload: bool,
    /// Replay keys kept in memory.
    pub capacity: usize,
    /// Time windows overriding the mapping tables', per caller dialect, in seconds.
    pub windows: BTreeMap<Dialect, i64>,
}

impl Default for ReplayConfig {
    fn default() -> ReplayConfig {
        ReplayConfig {
            tc3: Tc3Replay::Once,
            accept_unsigned_payload: false,
            capacity: crate::replay::DEFAULT_CAPACITY,
            windows: BTreeMap::new(),
        }
    }
}

/// `[inbound]`.
#[derive(Debug, Clone, Copy)]
pub struct InboundConfig {
    /// Open connections at most; past it a new connection gets one overload answer and is closed.
    pub max_connections: usize,
    /// Requests being served at most; past it a request gets the overload answer at once.
    pub max_in_flight: usize,
    /// Time a client has to send a request's headers.
    pub header_read_timeout: Duration,
    /// The most bytes of request line and headers.
    pub max_header_bytes: usize,
    /// On SIGTERM, how long open connections and admitted requests may take to finish.
    pub drain_timeout: Duration,
    /// Serving threads, each accepting and serving its own connections on an event loop of its own
    /// (0: one per CPU; 1: on the runtime that starts the server).
    pub threads: usize,
}

impl Default for InboundConfig {
    fn default() -> InboundConfig {
        InboundConfig {
            max_connections: 10_000,
            max_in_flight: 4_096,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(30),
            threads: 0,
        }
    }
}

/// What a caller may do; `None` allows everything of that kind.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    /// Actions: the caller's wire names (`AttachKeyPair`) or canonical names (`AssociateKeys`).
    pub actions: Option<Vec<String>>,
    /// Upstream names.
    pub upstreams: Option<Vec<String>>,
    /// Globs on the instance ids the caller names.
    pub instances: Option<Vec<WildMatch>>,
}

impl Permissions {
    /// True when the action, by its wire or canonical name, is allowed.
    pub fn allows_action(&self, wire: &str, canonical: &str) -> bool {
        self.actions.as_ref().is_none_or(|a| a.iter().any(|n| n == wire || n == canonical))
    }

    /// True when the upstream is allowed.
    pub fn allows_upstream(&self, name: &str) -> bool {
        self.upstreams.as_ref().is_none_or(|u| u.iter().any(|n| n == name))
    }

    /// True when the instance id is allowed.
    pub fn allows_instance(&self, id: &str) -> bool {
        self.instances.as_ref().is_none_or(|g| g.iter().any(|glob| glob.matches(id)))
    }
}

// === checks ===

fn choice<T: Copy>(value: Option<&str>, field: &str, options: &[(&str, T)], default: T) -> Result<T, String> {
    let Some(value) = value else { return Ok(default) };
    options.iter().find(|(name, _)| *name == value).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<_> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        format!("`{field} = \"{value}\"` is not known; use {}", names.join(" or "))
    })
}

impl Default for AuditConfig {
    fn default() -> AuditConfig {
        AuditConfig {
            store: StoreSpec::default(),
            on_failure: OnAuditFailure::default(),
            options: Options::default(),
            sqlite: SqliteOptions::default(),
            replica: default_replica(),
        }
    }
}

/// The replica name when none is configured: the host's name, or `crossgate`.
fn default_replica() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "crossgate".to_owned())
}

pub(super) fn audit(raw: Option<RawAudit>) -> Result<AuditConfig, String> {
    let Some(RawAudit { store, path, replica, retain_days, on_failure, fsync, rotate_bytes, keep }) = raw else {
        return Ok(AuditConfig::default());
    };
    let store = match (store, path) {
        (Some(_), Some(_)) => {
            return Err("`store` and `path` both say where records go; keep one (`store = \"jsonl:FILE\"` is \
                        what `path = \"FILE\"` means)"
                .to_owned());
        }
        (Some(store), None) => StoreSpec::parse(&store)?,
        (None, Some(path)) => StoreSpec::Jsonl(PathBuf::from(path)),
        (None, None) => StoreSpec::default(),
    };
    let on_failure = choice(
        on_failure.as_deref(),
        "on_failure",
        &[("refuse", OnAuditFailure::Refuse), ("forward", OnAuditFailure::Forward)],
        OnAuditFailure::Refuse,
    )?;
    let fsync = choice(fsync.as_deref(), "fsync", &[("never", Fsync::Never), ("always", Fsync::Always)], Fsync::Never)?;
    let database = matches!(store, StoreSpec::Sqlite(_) | StoreSpec::Postgres(_));
    if database && (rotate_bytes.is_some() || keep.is_some()) {
        return Err("`rotate_bytes` and `keep` apply to JSON lines (`store = \"jsonl:FILE\"`); a database store \
                    keeps records for `retain_days`"
            .to_owned());
    }
    if !database && retain_days.is_some() {
        return Err("`retain_days` applies to the database stores (SQLite, PostgreSQL); JSON lines are kept by \
                    `rotate_bytes` and `keep`"
            .to_owned());
    }
    let replica = match replica {
        None => default_replica(),
        Some(name) if name.trim().is_empty() || name.len() > 128 => {
            return Err("`replica` must be a name of 1 to 128 characters".to_owned());
        }
        Some(name) => name,
    };
    if retain_days == Some(0) {
        return Err(
            "`retain_days = 0` would delete every record; use at least 1, or leave it out to keep all".to_owned()
        );
    }
    let defaults = Options::default();
    let rotate_bytes = rotate_bytes.unwrap_or(defaults.rotate_bytes);
    if rotate_bytes < 4096 {
        return Err(format!("`rotate_bytes = {rotate_bytes}` is too small; use at least 4096"));
    }
    let keep = keep.unwrap_or(defaults.keep);
    if keep == 0 {
        return Err("`keep = 0` would drop every rotated file; keep at least 1".to_owned());
    }
    Ok(AuditConfig {
        store,
        on_failure,
        options: Options { rotate_bytes, keep, fsync },
        sqlite: SqliteOptions { fsync, retain_days },
        replica,
    })
}

pub(super) fn replay(raw: Option<RawReplay>) -> Result<ReplayConfig, String> {
    let Some(RawReplay { tc3, unsigned_payload, capacity, windows }) = raw else {
        return Ok(ReplayConfig::default());
    };
    let tc3 =
        choice(tc3.as_deref(), "tc3", &[("once", Tc3Replay::Once), ("window", Tc3Replay::Window)], Tc3Replay::Once)?;
    let accept_unsigned_payload =
        choice(unsigned_payload.as_deref(), "unsigned_payload", &[("refuse", false), ("accept", true)], false)?;
    let capacity = capacity.unwrap_or(crate::replay::DEFAULT_CAPACITY);
    if capacity < 1000 {
        return Err(format!("`capacity = {capacity}` is too small to protect against replay; use at least 1000"));
    }
    let mut checked = BTreeMap::new();
    for (name, secs) in windows {
        let dialect = Dialect::from_name(&name).ok_or_else(|| {
            format!("windows: unknown dialect `{name}`; use tencent_v2, tencent_cvm, tencent_lighthouse or aliyun_ecs")
        })?;
        if !(1..=86_400).contains(&secs) {
            return Err(format!("windows: `{name} = {secs}` must be between 1 and 86400 seconds"));
        }
        checked.insert(dialect, secs);
    }
    Ok(ReplayConfig { tc3, accept_unsigned_payload, capacity, windows: checked })
}

pub(super) fn inbound(raw: Option<RawInbound>) -> Result<InboundConfig, String> {
    let Some(RawInbound {
        max_connections,
        max_in_flight,
        header_read_timeout_ms,
        max_header_bytes,
        drain_timeout_ms,
        threads,
    }) = raw
    else {
        return Ok(InboundConfig::default());
    };
    let d = InboundConfig::default();
    let checked = InboundConfig {
        max_connections: max_connections.unwrap_or(d.max_connections),
        max_in_flight: max_in_flight.unwrap_or(d.max_in_flight),
        header_read_timeout: header_read_timeout_ms.map_or(d.header_read_timeout, Duration::from_millis),
        max_header_bytes: max_header_bytes.unwrap_or(d.max_header_bytes),
        drain_timeout: drain_timeout_ms.map_or(d.drain_timeout, Duration::from_millis),
        threads: threads.unwrap_or(d.threads),
    };
    if checked.max_connections == 0 || checked.max_in_flight == 0 {
        return Err("max_connections and max_in_flight must be at least 1".to_owned());
    }
    if checked.max_header_bytes < 8192 {
        return Err(format!(
            "`max_header_bytes = {}` is too small for real clients; use at least 8192",
            checked.max_header_bytes
        ));
    }
    if checked.header_read_timeout.is_zero() {
        return Err("`header_read_timeout_ms` must be more than 0".to_owned());
    }
    Ok(checked)
}

/// A caller's `allow_*` lists.
pub(super) fn permissions(
    actions: Option<Vec<String>>,
    upstreams: Option<Vec<String>>,
    instances: Option<Vec<String>>,
) -> Permissions {
    Permissions { actions, upstreams, instances: instances.map(|g| g.iter().map(|g| WildMatch::new(g)).collect()) }
}

#[cfg(test)]
mod tests {
    use crate::audit::store::StoreSpec;
    use crate::config::Config;

    /// The demo configuration with its `[audit]` table replaced by `audit`.
    fn with_audit(audit: &str) -> Result<Config, String> {
        let demo = include_str!("../demo.toml").replace("[audit]\nstore = \"sqlite:audit.db\"\n", "");
        let text = format!("{demo}\n{audit}\n");
        Config::parse("t.toml", &text, &|_| Some("x".to_owned())).map_err(|e| e.to_string())
    }

    #[test]
    fn the_store_defaults_to_sqlite_and_path_still_means_json_lines() {
        assert_eq!(with_audit("").unwrap().audit.store, StoreSpec::Sqlite("audit.db".into()));
        assert_eq!(with_audit("[audit]\nfsync = \"always\"").unwrap().audit.store, StoreSpec::default());
        assert_eq!(with_audit("[audit]\npath = \"a.jsonl\"").unwrap().audit.store, StoreSpec::Jsonl("a.jsonl".into()));
        let c = with_audit("[audit]\nstore = \"sqlite:/var/lib/x.db\"\nretain_days = 30\nfsync = \"always\"").unwrap();
        assert_eq!(c.audit.store, StoreSpec::Sqlite("/var/lib/x.db".into()));
        assert_eq!(c.audit.sqlite.retain_days, Some(30));
        assert_eq!(c.audit.sqlite.fsync, crate::audit::jsonl::Fsync::Always);
        assert_eq!(with_audit("[audit]\nstore = \"stdout\"").unwrap().audit.store, StoreSpec::Stdout);
        let pg = with_audit("[audit]\nstore = \"postgres://u:p@db/a\"\nreplica = \"gw-1\"\nretain_days = 3").unwrap();
        assert!(matches!(pg.audit.store, StoreSpec::Postgres(_)));
        assert_eq!((pg.audit.replica.as_str(), pg.audit.sqlite.retain_days), ("gw-1", Some(3)));
        assert!(!with_audit("").unwrap().audit.replica.is_empty(), "a replica name by default");
    }

    #[test]
    fn settings_of_the_other_store_and_unknown_stores_are_refused_naming_the_line() {
        let cases = [
            ("[audit]\nstore = \"postgres://u:secret@db:port/audit\"", "URL cannot be read"),
            ("[audit]\nreplica = \"\"", "1 to 128 characters"),
            ("[audit]\nstore = \"mongo:x\"", "is not known"),
            ("[audit]\nstore = \"jsonl:a\"\npath = \"b\"", "keep one"),
            ("[audit]\nstore = \"sqlite:a.db\"\nkeep = 3", "retain_days"),
            ("[audit]\npath = \"a.jsonl\"\nretain_days = 3", "applies to the database stores"),
            ("[audit]\nretain_days = 0", "at least 1"),
        ];
        let line =
            include_str!("../demo.toml").replace("[audit]\nstore = \"sqlite:audit.db\"\n", "").lines().count() + 2;
        for (audit, want) in cases {
            let err = with_audit(audit).unwrap_err();
            assert!(err.contains(want), "{audit}: {err}");
            assert!(err.contains(&format!("t.toml:{line}")), "{audit}: the line is named: {err}");
            assert!(!err.contains("secret"), "{err}");
        }
    }
}
