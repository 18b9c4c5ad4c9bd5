//! Reading the SQLite trail back: queries in SQL over the indexed columns and `record_terms`, the
//! chain's walk in row order inside one read transaction (so a running gateway's new rows do not move
//! under it), with every row's indexed columns checked against its record, and `follow` by row id.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row};

use super::schema::{self, Columns};
use crate::audit::AuditEntry;
use crate::audit::chain::{self, Broken, Checked, Link, Segment};
use crate::audit::query::{Filter, Trail, phase_name};

/// A SQLite trail opened for reading.
#[derive(Debug)]
pub struct SqliteTrail {
    conn: Connection,
    /// The last row `follow` has seen.
    seen: i64,
}

impl SqliteTrail {
    /// Opens the database at `path`, which must exist and be a crossgate trail.
    pub fn open(path: &Path) -> Result<SqliteTrail, String> {
        if !path.is_file() {
            return Err(format!("there is no audit database at {}", path.display()));
        }
        let why = |e: String| format!("{}: {e}", path.display());
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| why(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(|e| why(e.to_string()))?;
        schema::check_readable(&conn).map_err(why)?;
        let seen = conn
            .query_row("SELECT coalesce(max(id), 0) FROM records", [], |r| r.get(0))
            .map_err(|e| why(e.to_string()))?;
        Ok(SqliteTrail { conn, seen })
    }
}

fn entry(json: &str) -> Result<AuditEntry, String> {
    serde_json::from_str(json).map_err(|e| format!("a stored record cannot be read: {e}"))
}

/// The columns a row holds, as stored.
fn stored_columns(row: &Row<'_>, terms: Vec<(String, String)>) -> rusqlite::Result<Columns> {
    Ok(Columns {
        time: row.get("time")?,
        phase: row.get("phase")?,
        request_id: row.get("request_id")?,
        caller: row.get("caller")?,
        dialect: row.get("dialect")?,
        action: row.get("action")?,
        result: row.get("result")?,
        code: row.get("code")?,
        status: row.get("status")?,
        replay_key: row.get("replay_key")?,
        replay_until: row.get("replay_until")?,
        terms,
    })
}

impl Trail for SqliteTrail {
    fn query(&mut self, filter: &Filter) -> Result<Vec<AuditEntry>, String> {
        let mut sql = String::from("SELECT record FROM records WHERE phase != 'segment'");
        let mut args: Vec<Value> = Vec::new();
        let mut and = |clause: &str, value: Value| {
            sql.push_str(" AND ");
            sql.push_str(clause);
            args.push(value);
        };
        if let Some(since) = filter.since_text() {
            and("time >= ?", Value::Text(since));
        }
        if let Some(until) = filter.until_text() {
            and("time < ?", Value::Text(until));
        }
        if let Some(caller) = &filter.caller {
            and("caller = ?", Value::Text(caller.clone()));
        }
        if let Some(id) = &filter.request_id {
            and("request_id = ?", Value::Text(id.clone()));
        }
        if let Some(phase) = filter.phase {
            and("phase = ?", Value::Text(phase_name(phase).to_owned()));
        }
        if let Some(result) = filter.result {
            and("result = ?", Value::Text(result.name().to_owned()));
        }
        for (term, value) in filter.wanted_terms() {
            and(
                &format!("id IN (SELECT record_id FROM record_terms WHERE kind = '{}' AND value = ?)", term.name()),
                Value::Text(value.to_owned()),
            );
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        args.push(Value::Integer(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| e.to_string())?;
        let rows =
            stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        for json in rows {
            found.push(entry(&json.map_err(|e| e.to_string())?)?);
        }
        found.reverse();
        Ok(found)
    }

    fn verify(&mut self) -> Result<Result<Checked, Broken>, String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        let mut cuts = HashSet::new();
        {
            let mut stmt =
                tx.prepare("SELECT record FROM records WHERE phase = 'segment'").map_err(|e| e.to_string())?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(|e| e.to_string())?;
            for json in rows {
                let json = json.map_err(|e| e.to_string())?;
                if let Some(cut) = Segment::parse(json.as_bytes()).and_then(|s| s.cut_hash) {
                    cuts.insert(cut);
                }
            }
        }
        let mut rows_stmt = tx.prepare("SELECT * FROM records ORDER BY id").map_err(|e| e.to_string())?;
        let mut terms_stmt = tx
            .prepare("SELECT kind, value FROM record_terms WHERE record_id = ?1 ORDER BY kind, value")
            .map_err(|e| e.to_string())?;
        let mut rows = rows_stmt.query([]).map_err(|e| e.to_string())?;
        let mut failure: Option<String> = None;
        let links = std::iter::from_fn(|| {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => return None,
                Err(e) => {
                    failure = Some(e.to_string());
                    return None;
                }
            };
            let link = (|| -> rusqlite::Result<Link> {
                let id: i64 = row.get("id")?;
                let json: String = row.get("record")?;
                let terms: Vec<(String, String)> =
                    terms_stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
                let stored = stored_columns(row, terms)?;
                let mismatch = match Columns::of_json(&json) {
                    Err(e) => Some(format!("its record cannot be read: {e}")),
                    Ok(mut derived) => {
                        derived.terms.sort();
                        let names = stored.differing(&derived);
                        (!names.is_empty())
                            .then(|| format!("its indexed columns disagree with its record: {}", names.join(", ")))
                    }
                };
                Ok(Link {
                    place: format!("row {id}"),
                    request_id: stored.request_id,
                    json: json.into_bytes(),
                    chain: Some((row.get("prev_hash")?, row.get("hash")?)),
                    mismatch,
                })
            })();
            match link {
                Ok(link) => Some(Ok(link)),
                Err(e) => {
                    failure = Some(e.to_string());
                    None
                }
            }
        });
        let locate = |hash: &str| {
            tx.query_row(
                "SELECT count(*) FROM records WHERE id <= (SELECT id FROM records WHERE hash = ?1 LIMIT 1)",
                [hash],
                |r| r.get::<_, i64>(0),
            )
            .ok()
            .filter(|n| *n > 0)
            .map(|n| n as u64)
        };
        let outcome = chain::walk(links, &cuts, locate);
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(outcome)
    }

    fn follow(&mut self) -> Result<Vec<AuditEntry>, String> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, phase, record FROM records WHERE id > ?1 ORDER BY id LIMIT 10000")
            .map_err(|e| e.to_string())?;
        let rows = stmt
            .query_map([self.seen], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for row in rows {
            let (id, phase, json) = row.map_err(|e| e.to_string())?;
            self.seen = id;
            if phase != "segment" {
                out.push(entry(&json)?);
            }
        }
        Ok(out)
    }
}
