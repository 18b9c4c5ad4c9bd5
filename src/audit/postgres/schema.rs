//! The PostgreSQL trail's schema, its versions (table `crossgate_schema`) and how a record is stored.
//!
//! `crossgate_audit` holds one row per record, append-only: the replica that wrote it, the record's
//! JSON as hashed (`record`), its chain fields (each replica's records form a chain of their own) and
//! the columns queries use ([`Columns`], derived from the JSON so that `verify` can tell an edited
//! column from the record it claims to index). `crossgate_audit_terms` holds what else a record is
//! found by (instances, keys, upstreams and actions, as given and as translated), one row per term.
//!
//! Every replica migrates at start, under an advisory lock, so that replicas starting together do not
//! race; a database written by a newer crossgate is refused.

use postgres::{GenericClient, Transaction};

use crate::audit::columns::Columns;

/// The schema version this build writes.
pub const VERSION: i32 = 1;

/// The advisory lock every migration holds (any constant no other application is likely to use).
const MIGRATION_LOCK: i64 = 0x6372_6f73_7367_6174; // "crossgat"

/// The steps from one version to the next: `MIGRATIONS[n]` takes version `n` to `n + 1`.
const MIGRATIONS: [&str; 1] = [r"
CREATE TABLE crossgate_audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    replica TEXT NOT NULL,
    time TEXT NOT NULL,
    phase TEXT NOT NULL,
    request_id TEXT NOT NULL,
    caller TEXT,
    dialect TEXT,
    action TEXT,
    result TEXT,
    code TEXT,
    status BIGINT,
    replay_key BYTEA,
    replay_until BIGINT,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX crossgate_audit_replica ON crossgate_audit (replica, id);
CREATE INDEX crossgate_audit_time ON crossgate_audit (time);
CREATE INDEX crossgate_audit_caller ON crossgate_audit (caller, time);
CREATE INDEX crossgate_audit_action ON crossgate_audit (action, time);
CREATE INDEX crossgate_audit_request_id ON crossgate_audit (request_id);
CREATE INDEX crossgate_audit_result ON crossgate_audit (result, time);
CREATE INDEX crossgate_audit_phase ON crossgate_audit (phase, time);
CREATE INDEX crossgate_audit_hash ON crossgate_audit (hash);
CREATE INDEX crossgate_audit_replay_until ON crossgate_audit (replay_until) WHERE replay_until IS NOT NULL;
CREATE TABLE crossgate_audit_terms (
    record_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL
);
CREATE INDEX crossgate_audit_terms_value ON crossgate_audit_terms (kind, value, record_id);
CREATE INDEX crossgate_audit_terms_record ON crossgate_audit_terms (record_id);
"];

/// The schema version of the database (0: none yet).
pub fn version(client: &mut impl GenericClient) -> Result<i32, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('crossgate_schema') IS NOT NULL", &[])?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_opt("SELECT version FROM crossgate_schema", &[])?.map_or(0, |r| r.get(0)))
}

/// Brings the database to [`VERSION`], one migration at a time, in one transaction; refuses a database
/// written by a later version.
pub fn migrate(client: &mut postgres::Client) -> Result<(), String> {
    let mut tx = client.transaction().map_err(|e| super::describe(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(|e| super::describe(&e))?;
    let from = version(&mut tx).map_err(|e| super::describe(&e))?;
    if from > VERSION {
        return Err(format!(
            "the audit database has schema version {from}, newer than this crossgate's {VERSION}; use a newer crossgate"
        ));
    }
    if from == VERSION {
        return Ok(());
    }
    if from == 0 {
        tx.batch_execute("CREATE TABLE IF NOT EXISTS crossgate_schema (version INTEGER NOT NULL)")
            .map_err(|e| super::describe(&e))?;
    }
    for (n, step) in MIGRATIONS.iter().enumerate().skip(usize::try_from(from).unwrap_or(0)) {
        tx.batch_execute(step).map_err(|e| format!("migrating the audit schema to version {}: {e}", n + 1))?;
    }
    tx.execute("DELETE FROM crossgate_schema", &[]).map_err(|e| super::describe(&e))?;
    tx.execute("INSERT INTO crossgate_schema (version) VALUES ($1)", &[&VERSION]).map_err(|e| super::describe(&e))?;
    tx.commit().map_err(|e| super::describe(&e))
}

/// Checks that a database opened for reading holds a crossgate trail this build can read.
pub fn check_readable(client: &mut postgres::Client) -> Result<(), String> {
    match version(client).map_err(|e| super::describe(&e))? {
        0 => Err("it holds no crossgate audit trail (no schema)".to_owned()),
        v if v > VERSION => Err(format!("its schema version {v} is newer than this crossgate's {VERSION}")),
        _ => Ok(()),
    }
}

/// The columns as PostgreSQL can hold them: a NUL character, which a text value cannot contain, becomes
/// U+FFFD (the record's JSON escapes it, so nothing is lost), except in the replay key, kept as bytes.
pub fn storable(c: &Columns) -> Columns {
    let text = |s: &String| if s.contains('\0') { s.replace('\0', "\u{fffd}") } else { s.clone() };
    let opt = |s: &Option<String>| s.as_ref().map(text);
    Columns {
        time: text(&c.time),
        phase: text(&c.phase),
        request_id: text(&c.request_id),
        caller: opt(&c.caller),
        dialect: opt(&c.dialect),
        action: opt(&c.action),
        result: opt(&c.result),
        code: opt(&c.code),
        status: c.status,
        replay_key: c.replay_key.clone(),
        replay_until: c.replay_until,
        terms: c.terms.iter().map(|(k, v)| (text(k), text(v))).collect(),
    }
}

/// A record ready to append: its columns, its JSON as hashed, and its chain fields.
#[derive(Debug, Clone)]
pub struct Linked {
    /// The columns derived from the record.
    pub columns: Columns,
    /// The record's JSON, as hashed.
    pub json: String,
    /// The hash of the replica's record before it.
    pub prev: String,
    /// Its own hash.
    pub hash: String,
}

/// Appends `records` of `replica` in `tx`, numbered in their order: two statements, whatever their
/// number (one round trip each, which matters when the server is across a network).
pub fn insert(tx: &mut Transaction<'_>, replica: &str, records: &[Linked]) -> Result<(), String> {
    let e = |e: postgres::Error| super::describe(&e);
    let columns: Vec<Columns> = records.iter().map(|r| storable(&r.columns)).collect();
    let text = |pick: fn(&Columns) -> &String| columns.iter().map(|c| pick(c).as_str()).collect::<Vec<&str>>();
    let maybe = |pick: fn(&Columns) -> &Option<String>| columns.iter().map(|c| pick(c).as_deref()).collect::<Vec<_>>();
    let status: Vec<Option<i64>> = columns.iter().map(|c| c.status).collect();
    let replay_key: Vec<Option<&[u8]>> = columns.iter().map(|c| c.replay_key.as_deref().map(str::as_bytes)).collect();
    let replay_until: Vec<Option<i64>> = columns.iter().map(|c| c.replay_until).collect();
    let record: Vec<&str> = records.iter().map(|r| r.json.as_str()).collect();
    let prev: Vec<&str> = records.iter().map(|r| r.prev.as_str()).collect();
    let hash: Vec<&str> = records.iter().map(|r| r.hash.as_str()).collect();
    let rows = tx
        .query(
            "INSERT INTO crossgate_audit (replica, time, phase, request_id, caller, dialect, action, result, code, \
             status, replay_key, replay_until, record, prev_hash, hash) \
             SELECT $1, tm, ph, rid, caller, dialect, action, result, code, status, rkey, runtil, record, prev, hash \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
             $9::text[], $10::int8[], $11::bytea[], $12::int8[], $13::text[], $14::text[], $15::text[]) \
             WITH ORDINALITY AS t (tm, ph, rid, caller, dialect, action, result, code, status, rkey, runtil, record, \
             prev, hash, n) ORDER BY n RETURNING id, hash",
            &[
                &replica,
                &text(|c| &c.time),
                &text(|c| &c.phase),
                &text(|c| &c.request_id),
                &maybe(|c| &c.caller),
                &maybe(|c| &c.dialect),
                &maybe(|c| &c.action),
                &maybe(|c| &c.result),
                &maybe(|c| &c.code),
                &status,
                &replay_key,
                &replay_until,
                &record,
                &prev,
                &hash,
            ],
        )
        .map_err(e)?;
    let numbered: std::collections::HashMap<&str, i64> = rows.iter().map(|r| (r.get(1), r.get(0))).collect();
    let ids = records
        .iter()
        .map(|r| numbered.get(r.hash.as_str()).copied())
        .collect::<Option<Vec<i64>>>()
        .ok_or_else(|| "a record was not stored".to_owned())?;
    if !ids.is_sorted() {
        return Err("the records were numbered out of their chain's order".to_owned());
    }
    let (mut record_id, mut kind, mut value) = (Vec::new(), Vec::new(), Vec::new());
    for (id, c) in ids.iter().zip(&columns) {
        for (k, v) in &c.terms {
            record_id.push(*id);
            kind.push(k.as_str());
            value.push(v.as_str());
        }
    }
    if !record_id.is_empty() {
        tx.execute(
            "INSERT INTO crossgate_audit_terms (record_id, kind, value) \
             SELECT * FROM unnest($1::int8[], $2::text[], $3::text[])",
            &[&record_id, &kind, &value],
        )
        .map_err(e)?;
    }
    Ok(())
}

/// The hash of `replica`'s last record, if it has one.
pub fn last_hash(client: &mut impl GenericClient, replica: &str) -> Result<Option<String>, postgres::Error> {
    Ok(client
        .query_opt("SELECT hash FROM crossgate_audit WHERE replica = $1 ORDER BY id DESC LIMIT 1", &[&replica])?
        .map(|r| r.get(0)))
}
