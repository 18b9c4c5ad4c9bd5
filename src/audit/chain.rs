//! The tamper-evident chain over the audit trail: how a record's hash is made, how a JSON line carries
//! it, the *segment* record that starts a new stretch of the chain, and the walk that checks a trail.
//!
//! **Canonical encoding.** A record's hash is the SHA-256, in lowercase hex, of
//! `PREV_HASH "\n" RECORD_JSON`: the previous record's hash (64 hex digits; [`GENESIS`], 64 zeros, for
//! the very first record), a line feed, and the record's JSON exactly as the store keeps it (compact,
//! fields in the order the record type declares them, no `prev_hash` or `hash` field). The chain's order
//! is the store's order: JSON-line order across the kept files, or the SQLite row id.
//!
//! **In a JSON line** the record's object is closed by the two chain fields, always last and always of
//! the same length: `{...record...,"prev_hash":"<64 hex>","hash":"<64 hex>"}`. Taking them off gives
//! back the hashed bytes, so no JSON library's choices ever enter the check.
//!
//! **Segments.** A JSON-lines rotation starts the new file with a segment record (so a trail whose
//! oldest files were dropped still begins at a record that says why), and SQLite retention appends one
//! that names the hash of the last row it deleted (`cut_hash`), so the first kept row may follow a row
//! that is no longer there.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The previous hash of the first record ever written.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a record whose JSON is `json`, following a record whose hash is `prev`.
pub fn link(prev: &str, json: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(json);
    crate::sign::encoding::hex_lower(&hasher.finalize())
}

const PREV_FIELD: &[u8] = b",\"prev_hash\":\"";
const HASH_FIELD: &[u8] = b"\",\"hash\":\"";
const END: &[u8] = b"\"}";
/// The length of the chain fields a JSON line ends with.
const SUFFIX_LEN: usize = PREV_FIELD.len() + 64 + HASH_FIELD.len() + 64 + END.len();

/// Appends to `out` the JSON line of a record (`json`, an object) with its chain fields, and a line feed.
pub fn seal_line(out: &mut Vec<u8>, json: &[u8], prev: &str, hash: &str) {
    let body = json.strip_suffix(b"}").unwrap_or(json);
    out.extend_from_slice(body);
    out.extend_from_slice(PREV_FIELD);
    out.extend_from_slice(prev.as_bytes());
    out.extend_from_slice(HASH_FIELD);
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(END);
    out.push(b'\n');
}

/// A JSON line taken apart: the record's hashed JSON, its previous hash and its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The record's JSON, as hashed.
    pub json: Vec<u8>,
    /// The previous record's hash, as the line names it.
    pub prev_hash: String,
    /// The record's hash, as the line names it.
    pub hash: String,
}

/// Takes a JSON line (without its line feed) apart; `None` when it does not end with the chain fields.
pub fn open_line(line: &[u8]) -> Option<Sealed> {
    if line.len() < SUFFIX_LEN + 2 {
        return None;
    }
    let (body, suffix) = line.split_at(line.len() - SUFFIX_LEN);
    let rest = suffix.strip_prefix(PREV_FIELD)?;
    let (prev, rest) = rest.split_at(64);
    let rest = rest.strip_prefix(HASH_FIELD)?;
    let (hash, end) = rest.split_at(64);
    if end != END || !is_hash(prev) || !is_hash(hash) {
        return None;
    }
    let mut json = body.to_vec();
    json.push(b'}');
    Some(Sealed {
        json,
        prev_hash: String::from_utf8_lossy(prev).into_owned(),
        hash: String::from_utf8_lossy(hash).into_owned(),
    })
}

fn is_hash(text: &[u8]) -> bool {
    text.len() == 64 && text.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// Why a new segment of the chain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentReason {
    /// The JSON-lines file was rotated: this record starts the new file.
    Rotation,
    /// Retention deleted the oldest rows.
    Retention,
}

/// The record that starts a segment. Its `phase` is always `"segment"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Always `segment`.
    pub phase: String,
    /// RFC 3339 UTC time the segment started.
    pub time: String,
    /// Why it started.
    pub reason: SegmentReason,
    /// Records deleted (retention).
    #[serde(default)]
    pub dropped: u64,
    /// The hash of the last record deleted (retention): the first kept record names it as its previous.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_hash: Option<String>,
    /// Records older than this time were deleted (retention).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut_before: Option<String>,
}

impl Segment {
    /// A segment record started at `time` for `reason`.
    pub fn new(time: String, reason: SegmentReason) -> Segment {
        Segment { phase: "segment".to_owned(), time, reason, dropped: 0, cut_hash: None, cut_before: None }
    }

    /// The segment a record's JSON is, if it is one.
    pub fn parse(json: &[u8]) -> Option<Segment> {
        let segment: Segment = serde_json::from_slice(json).ok()?;
        (segment.phase == "segment").then_some(segment)
    }
}

/// One stored record, as the walk sees it.
#[derive(Debug, Clone)]
pub struct Link {
    /// Where it is kept: `audit.jsonl.1 line 12`, `row 57`.
    pub place: String,
    /// Its request id (empty for a segment record).
    pub request_id: String,
    /// Its hashed JSON.
    pub json: Vec<u8>,
    /// The previous hash it names, and its own; `None` for a record written before the chain existed.
    pub chain: Option<(String, String)>,
    /// Set when the store finds the record edited in a way its hash cannot show (SQLite: an indexed
    /// column that disagrees with the record's JSON).
    pub mismatch: Option<String>,
}

/// What the walk found wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Its content no longer matches its hash.
    Edited(String),
    /// The record it follows is missing.
    Removed,
    /// It names as its previous a record that comes later.
    Reordered {
        /// The chain position of the record it names.
        names: u64,
    },
    /// Records between the one it names and it were inserted.
    Inserted {
        /// The chain position of the record it names.
        names: u64,
    },
    /// It carries no hash, after records that do.
    Unchained,
    /// It cannot be read as a record.
    Unreadable(String),
}

/// The first record where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Its position in the chain (1 for the first record kept).
    pub position: u64,
    /// Where it is kept.
    pub place: String,
    /// Its request id.
    pub request_id: String,
    /// What is wrong.
    pub breach: Breach,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = if self.request_id.is_empty() { "a segment record".to_owned() } else { self.request_id.clone() };
        let at = format!("record {} ({id}, {})", self.position, self.place);
        match &self.breach {
            Breach::Edited(why) => write!(f, "{at} was edited: {why}"),
            Breach::Removed => write!(f, "{at} follows a record that was removed"),
            Breach::Reordered { names } => {
                write!(f, "{at} is out of order: it follows record {names}, which comes after it")
            }
            Breach::Inserted { names } => {
                write!(f, "{at} follows record {names}: the record(s) between were inserted, or moved from elsewhere")
            }
            Breach::Unchained => write!(f, "{at} carries no hash after records that do: it was added by hand"),
            Breach::Unreadable(why) => write!(f, "{at} cannot be read: {why}"),
        }
    }
}

/// A trail that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// Records checked (segment records included).
    pub records: u64,
    /// Segments: one, plus one per segment record.
    pub segments: u64,
    /// Records written before the chain existed, at the start of the trail (not covered).
    pub unchained: u64,
    /// The last record's hash: note it elsewhere to detect later truncation of the trail's end.
    pub head: String,
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "verified {} record{} in {} segment{}; last hash {}",
            self.records,
            if self.records == 1 { "" } else { "s" },
            self.segments,
            if self.segments == 1 { "" } else { "s" },
            self.head
        )?;
        if self.unchained > 0 {
            write!(f, " ({} earlier record(s) were written before the chain and are not covered)", self.unchained)?;
        }
        Ok(())
    }
}

/// Walks `links` in the store's order. The first chained record may follow [`GENESIS`], a hash in
/// `cuts` (retention deleted the record it follows), or anything when it is a rotation's segment record
/// (the file before it is no longer kept). `locate` finds the chain position of the record with a given
/// hash, to tell a removed record from a reordered or inserted one; it is called once, on a break.
pub fn walk(
    links: impl IntoIterator<Item = Result<Link, Broken>>,
    cuts: &HashSet<String>,
    locate: impl FnOnce(&str) -> Option<u64>,
) -> Result<Checked, Broken> {
    let mut checked = Checked { records: 0, segments: 1, unchained: 0, head: GENESIS.to_owned() };
    let mut last: Option<String> = None;
    let mut position = 0u64;
    for item in links {
        let rec = item?;
        position += 1;
        let broken = |breach| Broken { position, place: rec.place.clone(), request_id: rec.request_id.clone(), breach };
        let Some((prev, hash)) = &rec.chain else {
            if last.is_some() {
                return Err(broken(Breach::Unchained));
            }
            checked.unchained += 1;
            continue;
        };
        if link(prev, &rec.json) != *hash {
            return Err(broken(Breach::Edited("its content does not match its hash".to_owned())));
        }
        if let Some(why) = &rec.mismatch {
            return Err(broken(Breach::Edited(why.clone())));
        }
        let segment = Segment::parse(&rec.json);
        let follows = match &last {
            Some(last) => prev == last,
            None => {
                prev == GENESIS
                    || cuts.contains(prev)
                    || segment.as_ref().is_some_and(|s| s.reason == SegmentReason::Rotation)
            }
        };
        if !follows {
            let breach = match locate(prev) {
                Some(at) if at > position => Breach::Reordered { names: at },
                Some(at) => Breach::Inserted { names: at },
                None => Breach::Removed,
            };
            return Err(broken(breach));
        }
        if segment.is_some() && last.is_some() {
            checked.segments += 1;
        }
        checked.records += 1;
        last = Some(hash.clone());
    }
    if let Some(last) = last {
        checked.head = last;
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(records: &[&str]) -> Vec<Link> {
        let mut prev = GENESIS.to_owned();
        records
            .iter()
            .enumerate()
            .map(|(i, json)| {
                let hash = link(&prev, json.as_bytes());
                let l = Link {
                    place: format!("line {}", i + 1),
                    request_id: format!("R-{i}"),
                    json: json.as_bytes().to_vec(),
                    chain: Some((prev.clone(), hash.clone())),
                    mismatch: None,
                };
                prev = hash;
                l
            })
            .collect()
    }

    fn check(links: &[Link]) -> Result<Checked, Broken> {
        let locate = |hash: &str| {
            links.iter().position(|l| l.chain.as_ref().is_some_and(|(_, h)| h == hash)).map(|i| i as u64 + 1)
        };
        walk(links.iter().cloned().map(Ok), &HashSet::new(), locate)
    }

    const RECORDS: [&str; 4] = [r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#, r#"{"a":4}"#];

    #[test]
    fn a_line_is_sealed_and_opened_back_to_the_hashed_bytes() {
        let json = br#"{"phase":"admitted","request_id":"R"}"#;
        let hash = link(GENESIS, json);
        let mut line = Vec::new();
        seal_line(&mut line, json, GENESIS, &hash);
        let text = String::from_utf8(line.clone()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["hash"], hash.as_str());
        assert_eq!(value["request_id"], "R");
        let opened = open_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(opened, Sealed { json: json.to_vec(), prev_hash: GENESIS.to_owned(), hash });
        assert_eq!(open_line(br#"{"phase":"admitted"}"#), None);
    }

    #[test]
    fn the_hash_covers_the_previous_hash_and_every_byte() {
        let a = link(GENESIS, b"{}");
        assert_ne!(a, link(&link(GENESIS, b"{\"x\":1}"), b"{}"));
        assert_ne!(a, link(GENESIS, b"{ }"));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn an_intact_chain_checks_out() {
        let checked = check(&chain(&RECORDS)).unwrap();
        assert_eq!((checked.records, checked.segments), (4, 1));
        assert_eq!(checked.head, chain(&RECORDS)[3].chain.as_ref().unwrap().1);
    }

    #[test]
    fn an_edited_record_is_named() {
        let mut links = chain(&RECORDS);
        links[2].json = br#"{"a":33}"#.to_vec();
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.position, broken.request_id.as_str()), (3, "R-2"));
        assert!(matches!(broken.breach, Breach::Edited(_)), "{broken}");
    }

    #[test]
    fn a_removed_record_is_named_by_the_one_after_it() {
        let mut links = chain(&RECORDS);
        links.remove(1);
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.position, broken.breach.clone()), (2, Breach::Removed), "{broken}");
    }

    #[test]
    fn swapped_records_are_out_of_order() {
        let mut links = chain(&RECORDS);
        links.swap(1, 2);
        let broken = check(&links).unwrap_err();
        assert_eq!((broken.position, broken.breach.clone()), (2, Breach::Reordered { names: 3 }), "{broken}");
        let mut links = chain(&RECORDS);
        links.swap(0, 1);
        assert_eq!(check(&links).unwrap_err().breach, Breach::Reordered { names: 2 });
    }

    #[test]
    fn the_first_record_must_start_the_chain_or_follow_a_cut() {
        let links = chain(&RECORDS)[1..].to_vec();
        assert_eq!(check(&links).unwrap_err().breach, Breach::Removed);
        let cut: HashSet<String> = [links[0].chain.as_ref().unwrap().0.clone()].into();
        assert!(walk(links.into_iter().map(Ok), &cut, |_| None).is_ok());
    }

    #[test]
    fn records_before_the_chain_are_counted_but_not_after_it() {
        let mut links = chain(&RECORDS);
        let legacy = Link { chain: None, ..links[0].clone() };
        links.insert(0, legacy.clone());
        assert_eq!(check(&links).unwrap().unchained, 1);
        links.push(legacy);
        assert_eq!(check(&links).unwrap_err().breach, Breach::Unchained);
    }
}
