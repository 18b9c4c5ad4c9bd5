//! The SQLite trail's schema, its versions (`PRAGMA user_version`) and the columns a record is stored
//! and found by.
//!
//! `records` holds one row per record, append-only, in chain order (`id`, never reused): the record's
//! JSON as hashed (`record`), its chain fields, and the columns queries use, each derived from the JSON
//! by [`Columns::of`] (so `verify` can tell an edited column from the record it claims to index).
//! `record_terms` holds what else a record is found by ([`crate::audit::query::terms`]: instances, keys,
//! upstreams and actions, as given and as translated), one row per term.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

pub use crate::audit::columns::Columns;

/// The schema version this build writes.
pub const VERSION: i64 = 1;

/// The steps from one version to the next: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: [&str; 1] = [r"
CREATE TABLE records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    phase TEXT NOT NULL,
    request_id TEXT NOT NULL,
    caller TEXT,
    dialect TEXT,
    action TEXT,
    result TEXT,
    code TEXT,
    status INTEGER,
    replay_key TEXT,
    replay_until INTEGER,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX records_time ON records (time);
CREATE INDEX records_caller ON records (caller, time);
CREATE INDEX records_action ON records (action, time);
CREATE INDEX records_request_id ON records (request_id);
CREATE INDEX records_result ON records (result, time);
CREATE INDEX records_phase ON records (phase, time);
CREATE INDEX records_replay_until ON records (replay_until) WHERE replay_until IS NOT NULL;
CREATE TABLE record_terms (
    record_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX record_terms_value ON record_terms (kind, value, record_id);
CREATE INDEX record_terms_record ON record_terms (record_id);
"];

/// The schema version of an open database.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Brings the database to [`VERSION`], one migration at a time, in one transaction; refuses a database
/// written by a later version.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(|e| e.to_string())?;
    let from = version(&tx).map_err(|e| e.to_string())?;
    if from > VERSION {
        return Err(format!(
            "the audit database has schema version {from}, newer than this crossgate's {VERSION}; use a newer crossgate"
        ));
    }
    for (n, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(from).unwrap_or(0)) {
        tx.execute_batch(step).map_err(|e| format!("migrating the audit schema to version {}: {e}", n + 1))?;
    }
    tx.pragma_update(None, "user_version", VERSION).map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

/// Checks that a database opened for reading is a crossgate trail this build can read.
pub fn check_readable(conn: &Connection) -> Result<(), String> {
    match version(conn).map_err(|e| e.to_string())? {
        0 => Err("it is not a crossgate audit database (no schema)".to_owned()),
        v if v > VERSION => Err(format!("its schema version {v} is newer than this crossgate's {VERSION}")),
        _ => Ok(()),
    }
}

/// Appends one record (its JSON as hashed, and its chain fields) in `tx`.
pub fn insert(tx: &Transaction<'_>, columns: &Columns, json: &str, prev: &str, hash: &str) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO records (time, phase, request_id, caller, dialect, action, result, code, status, replay_key, \
         replay_until, record, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let c = columns;
    stmt.execute(params![
        c.time,
        c.phase,
        c.request_id,
        c.caller,
        c.dialect,
        c.action,
        c.result,
        c.code,
        c.status,
        c.replay_key,
        c.replay_until,
        json,
        prev,
        hash
    ])?;
    let id = tx.last_insert_rowid();
    let mut term = tx.prepare_cached("INSERT INTO record_terms (record_id, kind, value) VALUES (?1, ?2, ?3)")?;
    for (kind, value) in &c.terms {
        term.execute(params![id, kind, value])?;
    }
    Ok(())
}

/// The hash of the last record, if there is one.
pub fn last_hash(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT hash FROM records ORDER BY id DESC LIMIT 1", [], |r| r.get(0)).optional()
}
