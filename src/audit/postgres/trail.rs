//! Reading the PostgreSQL trail back: queries in SQL over the indexed columns and the terms table
//! (across every replica), the chain's walk replica by replica in one repeatable-read snapshot (so
//! running gateways' new rows do not move under it), with every row's indexed columns checked against
//! its record, and `follow` by row id within each replica (a replica's rows become visible in id order,
//! since each of its transactions holds its advisory lock; rows of different replicas need not).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};

use postgres::types::ToSql;
use postgres::{Client, GenericClient, IsolationLevel, Row};

use super::schema;
use crate::audit::AuditEntry;
use crate::audit::chain::{self, Broken, Checked, GENESIS, Link, Segment};
use crate::audit::columns::Columns;
use crate::audit::query::{Filter, Trail, phase_name};
use crate::secret::Secret;

/// A PostgreSQL trail opened for reading.
pub struct PostgresTrail {
    client: Client,
    /// Per replica, the last row `follow` has seen (a replica not in it: none yet).
    seen: HashMap<String, i64>,
}

impl std::fmt::Debug for PostgresTrail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTrail").field("seen", &self.seen).finish_non_exhaustive()
    }
}

impl PostgresTrail {
    /// Connects to `url`, which must hold a crossgate trail.
    pub fn open(url: &Secret) -> Result<PostgresTrail, String> {
        let config = super::config(url)?;
        let mut client = super::connect(&config, url)?;
        schema::check_readable(&mut client).map_err(|e| format!("the PostgreSQL database: {e}"))?;
        let mut seen = HashMap::new();
        for replica in replicas(&mut client).map_err(|e| super::describe(&e))? {
            let last: Option<i64> = client
                .query_one("SELECT max(id) FROM crossgate_audit WHERE replica = $1", &[&replica])
                .map_err(|e| super::describe(&e))?
                .get(0);
            seen.insert(replica, last.unwrap_or(0));
        }
        Ok(PostgresTrail { client, seen })
    }
}

/// Every replica with a row, in name order: one index probe per replica rather than a scan of the table.
fn replicas(client: &mut impl GenericClient) -> Result<Vec<String>, postgres::Error> {
    Ok(client
        .query(
            "WITH RECURSIVE r (replica) AS ( \
               (SELECT replica FROM crossgate_audit ORDER BY replica LIMIT 1) \
               UNION ALL \
               SELECT (SELECT a.replica FROM crossgate_audit a WHERE a.replica > r.replica ORDER BY a.replica LIMIT 1) \
               FROM r WHERE r.replica IS NOT NULL) \
             SELECT replica FROM r WHERE replica IS NOT NULL",
            &[],
        )?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

fn entry(json: &str) -> Result<AuditEntry, String> {
    serde_json::from_str(json).map_err(|e| format!("a stored record cannot be read: {e}"))
}

/// The columns a row holds, as stored.
fn stored_columns(row: &Row, terms: Vec<(String, String)>) -> Result<Columns, postgres::Error> {
    Ok(Columns {
        time: row.try_get("time")?,
        phase: row.try_get("phase")?,
        request_id: row.try_get("request_id")?,
        caller: row.try_get("caller")?,
        dialect: row.try_get("dialect")?,
        action: row.try_get("action")?,
        result: row.try_get("result")?,
        code: row.try_get("code")?,
        status: row.try_get("status")?,
        replay_key: row.try_get::<_, Option<Vec<u8>>>("replay_key")?.map(|k| String::from_utf8_lossy(&k).into_owned()),
        replay_until: row.try_get("replay_until")?,
        terms,
    })
}

/// Rows fetched at a time while a chain is walked: the walk holds no more than these in memory.
const WALK_CHUNK: i32 = 1000;

/// A row as a link of its replica's chain: its stored columns (its terms sorted as Rust sorts them,
/// whatever the database's collation) checked against those its record gives.
fn link_of(row: &Row, replica: &str) -> Result<Link, postgres::Error> {
    let id: i64 = row.try_get("id")?;
    let json: String = row.try_get("record")?;
    let kinds: Option<Vec<String>> = row.try_get("term_kinds")?;
    let values: Option<Vec<String>> = row.try_get("term_values")?;
    let mut terms: Vec<(String, String)> =
        kinds.unwrap_or_default().into_iter().zip(values.unwrap_or_default()).collect();
    terms.sort();
    let stored = stored_columns(row, terms)?;
    let mismatch = match Columns::of_json(&json) {
        Err(e) => Some(format!("its record cannot be read: {e}")),
        Ok(derived) => {
            let mut derived = schema::storable(&derived);
            derived.terms.sort();
            let names = stored.differing(&derived);
            (!names.is_empty()).then(|| format!("its indexed columns disagree with its record: {}", names.join(", ")))
        }
    };
    Ok(Link {
        place: format!("replica {replica}, row {id}"),
        request_id: stored.request_id,
        json: json.into_bytes(),
        chain: Some((row.try_get("prev_hash")?, row.try_get("hash")?)),
        mismatch,
    })
}

/// Walks one replica's chain in `tx`, its rows fetched [`WALK_CHUNK`] at a time.
fn walk_replica(tx: &mut postgres::Transaction<'_>, replica: &str) -> Result<Result<Checked, Broken>, String> {
    let e = |e: postgres::Error| super::describe(&e);
    let mut cuts = HashSet::new();
    for row in tx
        .query("SELECT record FROM crossgate_audit WHERE replica = $1 AND phase = 'segment'", &[&replica])
        .map_err(e)?
    {
        let json: String = row.get(0);
        if let Some(cut) = Segment::parse(json.as_bytes()).and_then(|s| s.cut_hash) {
            cuts.insert(cut);
        }
    }
    let portal = tx
        .bind(
            "SELECT a.*, t.term_kinds, t.term_values FROM crossgate_audit a LEFT JOIN LATERAL \
             (SELECT array_agg(kind ORDER BY kind, value) AS term_kinds, array_agg(value ORDER BY kind, value) \
             AS term_values FROM crossgate_audit_terms WHERE record_id = a.id) t ON true \
             WHERE a.replica = $1 ORDER BY a.id",
            &[&replica],
        )
        .map_err(e)?;
    let tx = RefCell::new(tx);
    let mut failure: Option<String> = None;
    let mut fetched: VecDeque<Row> = VecDeque::new();
    let mut exhausted = false;
    let links = std::iter::from_fn(|| {
        if fetched.is_empty() && !exhausted {
            match tx.borrow_mut().query_portal(&portal, WALK_CHUNK) {
                Ok(rows) => {
                    exhausted = rows.len() < WALK_CHUNK as usize;
                    fetched.extend(rows);
                }
                Err(err) => {
                    failure = Some(e(err));
                    return None;
                }
            }
        }
        let row = fetched.pop_front()?;
        match link_of(&row, replica) {
            Ok(link) => Some(Ok(link)),
            Err(err) => {
                failure = Some(e(err));
                None
            }
        }
    });
    let locate = |hash: &str| {
        tx.borrow_mut()
            .query_one(
                "SELECT count(*) FROM crossgate_audit WHERE replica = $1 AND id <= \
                 (SELECT id FROM crossgate_audit WHERE replica = $1 AND hash = $2 ORDER BY id LIMIT 1)",
                &[&replica, &hash],
            )
            .ok()
            .map(|r| r.get::<_, i64>(0))
            .filter(|n| *n > 0)
            .map(|n| n as u64)
    };
    let outcome = chain::walk(links, &cuts, locate);
    match failure {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

impl Trail for PostgresTrail {
    fn query(&mut self, filter: &Filter) -> Result<Vec<AuditEntry>, String> {
        let mut sql = String::from("SELECT record FROM crossgate_audit WHERE phase != 'segment'");
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let mut and = |clause: &str, value: Box<dyn ToSql + Sync>| {
            args.push(value);
            sql.push_str(" AND ");
            sql.push_str(&clause.replace('?', &format!("${}", args.len())));
        };
        if let Some(since) = filter.since_text() {
            and("time >= ?", Box::new(since));
        }
        if let Some(until) = filter.until_text() {
            and("time < ?", Box::new(until));
        }
        if let Some(caller) = &filter.caller {
            and("caller = ?", Box::new(caller.clone()));
        }
        if let Some(id) = &filter.request_id {
            and("request_id = ?", Box::new(id.clone()));
        }
        if let Some(phase) = filter.phase {
            and("phase = ?", Box::new(phase_name(phase).to_owned()));
        }
        if let Some(result) = filter.result {
            and("result = ?", Box::new(result.name().to_owned()));
        }
        for (term, value) in filter.wanted_terms() {
            and(
                &format!(
                    "id IN (SELECT record_id FROM crossgate_audit_terms WHERE kind = '{}' AND value = ?)",
                    term.name()
                ),
                Box::new(value.to_owned()),
            );
        }
        args.push(Box::new(i64::try_from(filter.limit).unwrap_or(i64::MAX)));
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", args.len()));
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(AsRef::as_ref).collect();
        let rows = self.client.query(&sql, &params).map_err(|e| super::describe(&e))?;
        let mut found = rows.iter().map(|r| entry(&r.get::<_, String>(0))).collect::<Result<Vec<_>, _>>()?;
        found.reverse();
        Ok(found)
    }

    fn verify(&mut self) -> Result<Result<Checked, Broken>, String> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(|e| super::describe(&e))?;
        let replicas = replicas(&mut tx).map_err(|e| super::describe(&e))?;
        let mut total = Checked { records: 0, segments: 0, unchained: 0, head: GENESIS.to_owned() };
        let mut heads = Vec::new();
        for replica in &replicas {
            match walk_replica(&mut tx, replica)? {
                Err(broken) => return Ok(Err(broken)),
                Ok(checked) => {
                    total.records += checked.records;
                    total.segments += checked.segments;
                    total.unchained += checked.unchained;
                    heads.push(format!("{replica}={}", checked.head));
                }
            }
        }
        if replicas.is_empty() {
            total.segments = 1;
        } else if replicas.len() == 1 {
            total.head = heads.remove(0).split_once('=').map_or(String::new(), |(_, h)| h.to_owned());
        } else {
            total.head = heads.join(", ");
        }
        Ok(Ok(total))
    }

    fn follow(&mut self) -> Result<Vec<AuditEntry>, String> {
        let mut found = Vec::new();
        for replica in replicas(&mut self.client).map_err(|e| super::describe(&e))? {
            let since = self.seen.get(&replica).copied().unwrap_or(0);
            let rows = self
                .client
                .query(
                    "SELECT id, phase, record FROM crossgate_audit WHERE replica = $1 AND id > $2 ORDER BY id \
                     LIMIT 10000",
                    &[&replica, &since],
                )
                .map_err(|e| super::describe(&e))?;
            for row in rows {
                let id: i64 = row.get(0);
                self.seen.insert(replica.clone(), id);
                if row.get::<_, String>(1) != "segment" {
                    found.push((id, entry(&row.get::<_, String>(2))?));
                }
            }
        }
        found.sort_by_key(|(id, _)| *id);
        Ok(found.into_iter().map(|(_, e)| e).collect())
    }
}
