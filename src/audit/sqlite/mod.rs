//! The SQLite audit store (bundled SQLite): one row per record in a WAL-mode database, written in
//! groups (see [`super::group`]: the request that finds the store idle commits its own record and
//! everything that queued meanwhile, in one transaction); a record's receipt resolves after the commit.
//!
//! With `synchronous = NORMAL` (the default, `fsync = "never"`) a committed transaction is in the WAL
//! file when the receipt resolves, so it survives a crash of the process (`kill -9`), not a power loss;
//! `fsync = "always"` sets `synchronous = FULL`, which syncs the WAL at every commit. A transaction that
//! fails (disk full, read-only file, lock held too long by another process) is rolled back and every
//! record of the group is answered with the error, so their requests are refused.
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
    /// Dropping it stops the daily retention.
    _retention: Option<mpsc::Sender<()>>,
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
        let retention = options.retain_days.map(|_| daily_retention(Arc::downgrade(&group), path.to_owned()));
        Ok(Sqlite { group, _retention: retention })
    }

    /// Runs retention as if the time were `now_ms` (Unix milliseconds); returns the rows deleted.
    pub fn retain(&self, now_ms: u64) -> Result<u64, AuditError> {
        self.group.with_store(|db| db.retain(now_ms)).map_err(AuditError)
    }
}

/// Runs retention every day until the store is dropped.
fn daily_retention(group: std::sync::Weak<GroupCommit<Db>>, path: PathBuf) -> mpsc::Sender<()> {
    let (stop, stopped) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new().name("audit-retention".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(RETENTION_EVERY) {
            let Some(group) = group.upgrade() else { return };
            if let Err(e) = group.with_store(Db::retain_now) {
                tracing::error!(error = %e, file = %path.display(), "Audit retention failed; it runs again tomorrow.");
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "The daily audit retention could not be started; it runs at each start only.");
    }
    stop
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

impl Store for Db {
    fn append(&mut self, records: &[&AuditEntry]) -> Result<(), AuditError> {
        let result = self.commit(records);
        if let Err(e) = &result {
            tracing::error!(error = %e, "Audit records could not be written.");
        }
        result
    }
}

impl Db {
    fn commit(&mut self, records: &[&AuditEntry]) -> Result<(), AuditError> {
        let failed = |e: rusqlite::Error| AuditError(format!("the audit database: {e}"));
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(failed)?;
        let mut prev = self.last.clone();
        for record in records {
            let json =
                serde_json::to_string(record).map_err(|e| AuditError(format!("cannot encode the record: {e}")))?;
            let hash = chain::link(&prev, json.as_bytes());
            schema::insert(&tx, &Columns::of(record), &json, &prev, &hash).map_err(failed)?;
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
