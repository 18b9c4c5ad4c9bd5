//! Asking the audit trail questions: a [`Filter`] (time range, caller, instance, key, action, upstream,
//! result, request id, phase, limit), the [`Trail`] every store reads itself back through (query, verify,
//! follow), the relative times operators type (`90s`, `15m`, `1h`, `2d`), and the aligned table that
//! `crossgate audit query` and `tail` print.
//!
//! A filter means the same on every store: SQLite answers it with SQL over its indexed columns and
//! side table, JSON lines by scanning with [`Filter::matches`]; both use [`terms`] for what a record
//! can be found by.

use serde::{Deserialize, Serialize};

use super::chain::{Broken, Checked};
use super::{AuditEntry, Phase, rfc3339};

/// How a request ended, as far as a record tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Completed with `Success`.
    Ok,
    /// Refused, or completed with an error.
    Error,
}

impl Verdict {
    /// `ok` or `error`.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Error => "error",
        }
    }

    /// Parses `ok` or `error`.
    pub fn parse(text: &str) -> Result<Verdict, String> {
        match text {
            "ok" => Ok(Verdict::Ok),
            "error" => Ok(Verdict::Error),
            _ => Err(format!("`{text}` is no result; use ok or error")),
        }
    }
}

/// The verdict a record carries: none for an admission record (the request has not ended yet).
pub fn verdict(entry: &AuditEntry) -> Option<Verdict> {
    match entry.phase {
        Phase::Admitted => None,
        Phase::Refused => Some(Verdict::Error),
        Phase::Completed if entry.code == "Success" && entry.kind.is_none() => Some(Verdict::Ok),
        Phase::Completed => Some(Verdict::Error),
    }
}

/// The name of a phase, as stored.
pub fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Refused => "refused",
        Phase::Admitted => "admitted",
        Phase::Completed => "completed",
    }
}

/// Parses a phase name.
pub fn parse_phase(text: &str) -> Result<Phase, String> {
    match text {
        "admitted" => Ok(Phase::Admitted),
        "completed" => Ok(Phase::Completed),
        "refused" => Ok(Phase::Refused),
        _ => Err(format!("`{text}` is no phase; use admitted, completed or refused")),
    }
}

/// What a record can be found by, besides its own columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Term {
    /// An instance id: as the caller gave it, or as translated for an upstream.
    Instance,
    /// A key: as given, or as translated.
    Key,
    /// An upstream that served the request or was called.
    Upstream,
    /// An action: the caller's wire action, an upstream wire action or a canonical one.
    Action,
}

impl Term {
    /// The name the SQLite side table stores.
    pub fn name(self) -> &'static str {
        match self {
            Term::Instance => "instance",
            Term::Key => "key",
            Term::Upstream => "upstream",
            Term::Action => "action",
        }
    }
}

/// Every term of a record, sorted, without repeats or empty values.
pub fn terms(entry: &AuditEntry) -> Vec<(Term, &str)> {
    let mut out: Vec<(Term, &str)> = Vec::new();
    out.extend(entry.instances.iter().map(|i| (Term::Instance, i.as_str())));
    for r in &entry.results {
        out.extend([(Term::Instance, r.instance.as_str()), (Term::Instance, r.translated.as_str())]);
        out.push((Term::Upstream, r.upstream.as_str()));
    }
    out.extend(entry.keys.iter().chain(&entry.keys_translated).map(|k| (Term::Key, k.as_str())));
    out.extend(entry.upstreams.iter().map(|u| (Term::Upstream, u.as_str())));
    out.extend(entry.action.iter().chain(&entry.upstream_actions).map(|a| (Term::Action, a.as_str())));
    for call in &entry.upstream_calls {
        out.extend([(Term::Upstream, call.upstream.as_str()), (Term::Action, call.action.as_str())]);
    }
    out.retain(|(_, v)| !v.is_empty());
    out.sort_unstable();
    out.dedup();
    out
}

/// Which records to find. Every field set must match; `None` matches anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Arrived at or after this Unix time (milliseconds).
    pub since_ms: Option<u64>,
    /// Arrived before this Unix time (milliseconds).
    pub until_ms: Option<u64>,
    /// The caller's name.
    pub caller: Option<String>,
    /// An instance id, as given or translated.
    pub instance: Option<String>,
    /// A key, as given or translated.
    pub key: Option<String>,
    /// An action: the caller's, an upstream's, or canonical.
    pub action: Option<String>,
    /// An upstream.
    pub upstream: Option<String>,
    /// How the request ended (admission records have no verdict, so they never match one).
    pub result: Option<Verdict>,
    /// The gateway's RequestId.
    pub request_id: Option<String>,
    /// The record's phase.
    pub phase: Option<Phase>,
    /// The most records returned: the latest ones that match, oldest first.
    pub limit: usize,
}

/// The default `--limit`.
pub const DEFAULT_LIMIT: usize = 100;

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            since_ms: None,
            until_ms: None,
            caller: None,
            instance: None,
            key: None,
            action: None,
            upstream: None,
            result: None,
            request_id: None,
            phase: None,
            limit: DEFAULT_LIMIT,
        }
    }
}

impl Filter {
    /// The names [`Filter::set`] takes, as `crossgate audit query` flags and `/api/audit` parameters.
    pub const FIELDS: [&'static str; 11] =
        ["since", "until", "caller", "instance", "key", "action", "upstream", "result", "request_id", "phase", "limit"];

    /// Sets the field `name` from its text (`since` and `until`: RFC 3339 or a time ago, relative to
    /// `now_ms`); the error names the field and the forms it takes.
    pub fn set(&mut self, name: &str, value: &str, now_ms: u64) -> Result<(), String> {
        let text = || Some(value.to_owned());
        let why = |e: String| format!("{name}: {e}");
        match name {
            "since" => self.since_ms = Some(parse_when(value, now_ms).map_err(why)?),
            "until" => self.until_ms = Some(parse_when(value, now_ms).map_err(why)?),
            "caller" => self.caller = text(),
            "instance" => self.instance = text(),
            "key" => self.key = text(),
            "action" => self.action = text(),
            "upstream" => self.upstream = text(),
            "result" => self.result = Some(Verdict::parse(value).map_err(why)?),
            "request_id" => self.request_id = text(),
            "phase" => self.phase = Some(parse_phase(value).map_err(why)?),
            "limit" => {
                self.limit = value.parse().map_err(|_| why(format!("`{value}` is not a number of records")))?;
            }
            _ => return Err(format!("`{name}` is no filter; use {}", Filter::FIELDS.join(", "))),
        }
        Ok(())
    }

    /// `since_ms` as the stored time text (records' times compare as text).
    pub fn since_text(&self) -> Option<String> {
        self.since_ms.map(rfc3339)
    }

    /// `until_ms` as the stored time text.
    pub fn until_text(&self) -> Option<String> {
        self.until_ms.map(rfc3339)
    }

    /// The terms the filter asks for.
    pub fn wanted_terms(&self) -> Vec<(Term, &str)> {
        [
            (Term::Instance, &self.instance),
            (Term::Key, &self.key),
            (Term::Action, &self.action),
            (Term::Upstream, &self.upstream),
        ]
        .into_iter()
        .filter_map(|(t, v)| v.as_deref().map(|v| (t, v)))
        .collect()
    }

    /// True when `entry` matches.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let text = |v: &Option<String>, have: Option<&str>| v.as_deref().is_none_or(|v| have == Some(v));
        self.since_text().is_none_or(|s| entry.time >= s)
            && self.until_text().is_none_or(|u| entry.time < u)
            && text(&self.caller, entry.caller.as_deref())
            && text(&self.request_id, Some(&entry.request_id))
            && self.phase.is_none_or(|p| p == entry.phase)
            && self.result.is_none_or(|r| verdict(entry) == Some(r))
            && {
                let have = terms(entry);
                self.wanted_terms().iter().all(|w| have.contains(w))
            }
    }
}

/// Parses a time for `--since` / `--until`: RFC 3339 (`2026-05-01T12:00:00Z`, any offset) or a time
/// before `now_ms`: a number and a unit, `s`, `m`, `h` or `d` (`90s`, `15m`, `1h`, `2d`).
pub fn parse_when(text: &str, now_ms: u64) -> Result<u64, String> {
    let text = text.trim();
    let hint = "write RFC 3339 (2026-05-01T12:00:00Z) or a time ago: 90s, 15m, 1h, 2d";
    if let Some(unit) = text.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let digits = &text[..text.len() - 1];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let secs: u64 = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                _ => return Err(format!("`{text}`: unknown unit `{unit}`; {hint}")),
            };
            let n: u64 = digits.parse().map_err(|_| format!("`{text}` is too large; {hint}"))?;
            let ago = n.checked_mul(secs * 1000).ok_or_else(|| format!("`{text}` is too large; {hint}"))?;
            return Ok(now_ms.saturating_sub(ago));
        }
    }
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("`{text}` is no time; {hint}"))?;
    let ms = at.unix_timestamp_nanos() / 1_000_000;
    u64::try_from(ms).map_err(|_| format!("`{text}` is before 1970"))
}

/// A store read back: for `crossgate audit` and, later, an admin page.
pub trait Trail: Send {
    /// The latest records matching `filter` (at most `filter.limit`), oldest first.
    fn query(&mut self, filter: &Filter) -> Result<Vec<AuditEntry>, String>;

    /// Walks the chain: how much checked out, or the first record where it breaks. `Err` when the
    /// store cannot be read at all.
    fn verify(&mut self) -> Result<Result<Checked, Broken>, String>;

    /// The records written since the last call (the first call: since the trail was opened).
    fn follow(&mut self) -> Result<Vec<AuditEntry>, String>;
}

const HEADERS: [&str; 11] = [
    "TIME",
    "REQUEST ID",
    "PHASE",
    "CALLER",
    "DIALECT",
    "ACTION",
    "INSTANCES",
    "UPSTREAMS",
    "CODE",
    "STATUS",
    "LATENCY",
];

/// Widths that fit most records, for rows printed one at a time (`tail`).
pub const TAIL_WIDTHS: [usize; 11] = [24, 36, 9, 12, 18, 26, 22, 12, 28, 6, 9];

fn cells(entry: &AuditEntry) -> [String; 11] {
    let or_dash = |s: &str| if s.is_empty() { "-".to_owned() } else { s.to_owned() };
    let admitted = entry.phase == Phase::Admitted;
    [
        entry.time.clone(),
        or_dash(&entry.request_id),
        phase_name(entry.phase).to_owned(),
        or_dash(entry.caller.as_deref().unwrap_or("")),
        or_dash(entry.dialect.as_deref().unwrap_or("")),
        or_dash(entry.action.as_deref().unwrap_or("")),
        or_dash(&entry.instances.join(",")),
        or_dash(&entry.upstreams.join(",")),
        or_dash(&entry.code),
        if entry.status == 0 { "-".to_owned() } else { entry.status.to_string() },
        if admitted { "-".to_owned() } else { format!("{:.1}ms", entry.latency_ms) },
    ]
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let mut out = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            out.push_str(cell);
        } else {
            out.push_str(&format!("{cell:<width$}  "));
        }
    }
    out.trim_end().to_owned()
}

/// The header line for `widths`.
pub fn header(widths: &[usize]) -> String {
    line(&HEADERS.map(str::to_owned), widths)
}

/// One record as a table row of `widths`.
pub fn row(entry: &AuditEntry, widths: &[usize]) -> String {
    line(&cells(entry), widths)
}

/// Records as an aligned table, header first.
pub fn table(entries: &[AuditEntry]) -> String {
    let rows: Vec<[String; 11]> = entries.iter().map(cells).collect();
    let mut widths = HEADERS.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = header(&widths);
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r, &widths));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::InstanceAudit;

    const NOW: u64 = 1_780_000_000_000;

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(parse_when("90s", NOW), Ok(NOW - 90_000));
        assert_eq!(parse_when("15m", NOW), Ok(NOW - 900_000));
        assert_eq!(parse_when("1h", NOW), Ok(NOW - 3_600_000));
        assert_eq!(parse_when("2d", NOW), Ok(NOW - 172_800_000));
        assert_eq!(parse_when("0s", NOW), Ok(NOW));
    }

    #[test]
    fn rfc3339_times_are_read_with_their_offset() {
        assert_eq!(parse_when("2026-05-01T12:00:00Z", NOW), Ok(1_777_636_800_000));
        assert_eq!(parse_when("2026-05-01T14:00:00+02:00", NOW), Ok(1_777_636_800_000));
        assert_eq!(parse_when("2026-05-01T12:00:00.250Z", NOW), Ok(1_777_636_800_250));
    }

    #[test]
    fn bad_times_say_what_is_accepted() {
        for bad in ["", "5x", "m", "1.5h", "yesterday", "2026-13-01T00:00:00Z", "99999999999999999999d"] {
            let err = parse_when(bad, NOW).unwrap_err();
            assert!(err.contains("RFC 3339") && err.contains("15m"), "{bad}: {err}");
        }
    }

    fn completed() -> AuditEntry {
        AuditEntry {
            phase: Phase::Completed,
            time: "2026-05-01T12:00:00.000Z".into(),
            request_id: "R-1".into(),
            caller: Some("billing".into()),
            dialect: Some("tencent_cvm".into()),
            action: Some("AssociateInstancesKeyPairs".into()),
            upstreams: vec!["ecs".into()],
            upstream_actions: vec!["AttachKeyPair".into()],
            instances: vec!["ins-1".into()],
            keys: vec!["skey-1".into()],
            keys_translated: vec!["Finance".into()],
            results: vec![InstanceAudit {
                instance: "ins-1".into(),
                translated: "i-1".into(),
                upstream: "ecs".into(),
                outcome: "Success".into(),
            }],
            code: "Success".into(),
            status: 200,
            ..AuditEntry::default()
        }
    }

    #[test]
    fn every_filter_field_narrows() {
        let e = completed();
        let yes = |f: Filter| assert!(f.matches(&e), "{f:?}");
        let no = |f: Filter| assert!(!f.matches(&e), "{f:?}");
        let at = parse_when("2026-05-01T12:00:00Z", NOW).unwrap();
        yes(Filter::default());
        yes(Filter { since_ms: Some(at), ..Filter::default() });
        no(Filter { since_ms: Some(at + 1), ..Filter::default() });
        yes(Filter { until_ms: Some(at + 1), ..Filter::default() });
        no(Filter { until_ms: Some(at), ..Filter::default() });
        yes(Filter { caller: Some("billing".into()), ..Filter::default() });
        no(Filter { caller: Some("bill".into()), ..Filter::default() });
        for i in ["ins-1", "i-1"] {
            yes(Filter { instance: Some(i.into()), ..Filter::default() });
        }
        no(Filter { instance: Some("ins-2".into()), ..Filter::default() });
        for k in ["skey-1", "Finance"] {
            yes(Filter { key: Some(k.into()), ..Filter::default() });
        }
        no(Filter { key: Some("skey-2".into()), ..Filter::default() });
        for a in ["AssociateInstancesKeyPairs", "AttachKeyPair"] {
            yes(Filter { action: Some(a.into()), ..Filter::default() });
        }
        no(Filter { action: Some("DetachKeyPair".into()), ..Filter::default() });
        yes(Filter { upstream: Some("ecs".into()), ..Filter::default() });
        no(Filter { upstream: Some("cvm".into()), ..Filter::default() });
        yes(Filter { result: Some(Verdict::Ok), ..Filter::default() });
        no(Filter { result: Some(Verdict::Error), ..Filter::default() });
        yes(Filter { request_id: Some("R-1".into()), ..Filter::default() });
        no(Filter { request_id: Some("R-2".into()), ..Filter::default() });
        yes(Filter { phase: Some(Phase::Completed), ..Filter::default() });
        no(Filter { phase: Some(Phase::Admitted), ..Filter::default() });
    }

    #[test]
    fn verdicts_follow_the_phase_and_code() {
        let mut e = completed();
        assert_eq!(verdict(&e), Some(Verdict::Ok));
        e.code = "InvalidInstanceId.NotFound".into();
        assert_eq!(verdict(&e), Some(Verdict::Error));
        e.phase = Phase::Refused;
        assert_eq!(verdict(&e), Some(Verdict::Error));
        e.phase = Phase::Admitted;
        assert_eq!(verdict(&e), None);
    }

    #[test]
    fn the_table_aligns_every_column() {
        let mut other = completed();
        other.request_id = "a-much-longer-request-id".into();
        other.caller = None;
        let text = table(&[completed(), other]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let col = |l: &str| l.find("PHASE").or_else(|| l.find("completed")).unwrap();
        assert_eq!(col(lines[0]), col(lines[1]));
        assert_eq!(col(lines[1]), col(lines[2]));
        assert!(lines[2].contains(" - "), "an empty cell shows a dash: {}", lines[2]);
        assert!(lines[1].ends_with("ms"), "{}", lines[1]);
    }
}
