//! The columns a stored record is found by, derived from the record itself, so that a store can tell
//! an edited column from the record it claims to index. Every database store (SQLite, PostgreSQL)
//! keeps these beside the record's JSON.

use crate::audit::chain::Segment;
use crate::audit::query::{phase_name, terms, verdict};
use crate::audit::{AuditEntry, Phase};

/// The indexed columns of a record, derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Columns {
    /// `time`.
    pub time: String,
    /// `phase`: admitted, completed, refused or segment.
    pub phase: String,
    /// `request_id` (empty for a segment).
    pub request_id: String,
    /// `caller`.
    pub caller: Option<String>,
    /// `dialect`.
    pub dialect: Option<String>,
    /// `action`: the caller's wire action.
    pub action: Option<String>,
    /// `result`: ok, error, or none for an admission or a segment.
    pub result: Option<String>,
    /// `code`.
    pub code: Option<String>,
    /// `status`.
    pub status: Option<i64>,
    /// `replay_key` (admission records).
    pub replay_key: Option<String>,
    /// `replay_until` (admission records).
    pub replay_until: Option<i64>,
    /// `record_terms`, sorted.
    pub terms: Vec<(String, String)>,
}

impl Columns {
    /// The columns of a request record.
    pub fn of(entry: &AuditEntry) -> Columns {
        let admitted = entry.phase == Phase::Admitted;
        Columns {
            time: entry.time.clone(),
            phase: phase_name(entry.phase).to_owned(),
            request_id: entry.request_id.clone(),
            caller: entry.caller.clone(),
            dialect: entry.dialect.clone(),
            action: entry.action.clone(),
            result: verdict(entry).map(|v| v.name().to_owned()),
            code: (!admitted).then(|| entry.code.clone()),
            status: (!admitted).then_some(i64::from(entry.status)),
            replay_key: entry.replay_key.clone().filter(|_| admitted),
            replay_until: entry.replay_until.filter(|_| admitted),
            terms: terms(entry).into_iter().map(|(t, v)| (t.name().to_owned(), v.to_owned())).collect(),
        }
    }

    /// The columns of a segment record.
    pub fn of_segment(segment: &Segment) -> Columns {
        Columns { time: segment.time.clone(), phase: "segment".to_owned(), ..Columns::default() }
    }

    /// The columns of a record's stored JSON, or why it cannot be read.
    pub fn of_json(json: &str) -> Result<Columns, String> {
        if let Some(segment) = Segment::parse(json.as_bytes()) {
            return Ok(Columns::of_segment(&segment));
        }
        serde_json::from_str::<AuditEntry>(json).map(|e| Columns::of(&e)).map_err(|e| e.to_string())
    }

    /// The names of the columns in which these (as stored) differ from `derived` (from the record).
    pub fn differing(&self, derived: &Columns) -> Vec<&'static str> {
        let mut out = Vec::new();
        let mut check = |name, same: bool| {
            if !same {
                out.push(name);
            }
        };
        check("time", self.time == derived.time);
        check("phase", self.phase == derived.phase);
        check("request_id", self.request_id == derived.request_id);
        check("caller", self.caller == derived.caller);
        check("dialect", self.dialect == derived.dialect);
        check("action", self.action == derived.action);
        check("result", self.result == derived.result);
        check("code", self.code == derived.code);
        check("status", self.status == derived.status);
        check("replay_key", self.replay_key == derived.replay_key);
        check("replay_until", self.replay_until == derived.replay_until);
        check("record_terms", self.terms == derived.terms);
        out
    }
}
