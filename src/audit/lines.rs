//! Reading a JSON-lines trail back: the kept files oldest first (`FILE.<keep>` .. `FILE.1`, `FILE`),
//! line by line, for `crossgate audit verify` (the chain across every kept file), `query` (a scan with
//! [`Filter::matches`]) and `tail` (new lines as they are appended, across a rotation).

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::AuditEntry;
use super::chain::{self, Breach, Broken, Checked, Link};
use super::jsonl::{kept_files, rotated};
use super::query::{Filter, Trail};

/// A JSON-lines trail on disk.
#[derive(Debug)]
pub struct LinesTrail {
    path: PathBuf,
    keep: usize,
    cursor: Option<Cursor>,
}

/// Where `follow` reads next: a file (by identity) and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    id: (u64, u64),
    offset: u64,
}

impl LinesTrail {
    /// The trail whose newest file is `path`, with `keep` rotated files.
    pub fn open(path: &Path, keep: usize) -> Result<LinesTrail, String> {
        if kept_files(path, keep).is_empty() {
            return Err(format!("there is no audit file at {}", path.display()));
        }
        let cursor = identity(path).map(|(id, len)| Cursor { id, offset: len });
        Ok(LinesTrail { path: path.to_owned(), keep, cursor })
    }

    /// Every line of the kept files, oldest first, with its place (`audit.jsonl.1 line 3`).
    fn lines(&self) -> impl Iterator<Item = PlacedLine> + '_ {
        kept_files(&self.path, self.keep).into_iter().flat_map(|file| {
            let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into());
            let lines: Box<dyn Iterator<Item = PlacedLine>> = match File::open(&file) {
                Ok(f) => Box::new(split_lines(BufReader::new(f)).enumerate().map(move |(i, line)| {
                    line.map(|l| (format!("{name} line {}", i + 1), l)).map_err(|e| format!("{name}: {e}"))
                })),
                Err(e) => Box::new(std::iter::once(Err(format!("{}: {e}", file.display())))),
            };
            lines
        })
    }
}

/// A line and where it is, or why the file cannot be read.
type PlacedLine = Result<(String, Vec<u8>), String>;

/// The lines of a reader, without their line feeds.
fn split_lines(mut reader: impl BufRead) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
    std::iter::from_fn(move || {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                Some(Ok(line))
            }
            Err(e) => Some(Err(e)),
        }
    })
}

#[derive(Deserialize)]
struct Id {
    #[serde(default)]
    request_id: String,
}

/// A line as the chain's walk sees it.
fn link_of(place: String, line: Vec<u8>) -> Result<Link, Broken> {
    let unreadable = |place: String, why: String| Broken {
        position: 0,
        place,
        request_id: String::new(),
        breach: Breach::Unreadable(why),
    };
    match chain::open_line(&line) {
        Some(sealed) => {
            let id: Id = serde_json::from_slice(&sealed.json)
                .map_err(|e| unreadable(place.clone(), format!("not a JSON record: {e}")))?;
            Ok(Link {
                place,
                request_id: id.request_id,
                json: sealed.json,
                chain: Some((sealed.prev_hash, sealed.hash)),
                mismatch: None,
            })
        }
        None => {
            let id: Id = serde_json::from_slice(&line)
                .map_err(|e| unreadable(place.clone(), format!("not a JSON record: {e}")))?;
            Ok(Link { place, request_id: id.request_id, json: line, chain: None, mismatch: None })
        }
    }
}

impl Trail for LinesTrail {
    fn query(&mut self, filter: &Filter) -> Result<Vec<AuditEntry>, String> {
        let mut found = VecDeque::new();
        for line in self.lines() {
            let (_, line) = line?;
            let Ok(entry) = serde_json::from_slice::<AuditEntry>(&line) else { continue };
            if filter.matches(&entry) {
                if found.len() == filter.limit {
                    found.pop_front();
                }
                if filter.limit > 0 {
                    found.push_back(entry);
                }
            }
        }
        Ok(found.into())
    }

    fn verify(&mut self) -> Result<Result<Checked, Broken>, String> {
        let mut position = 0u64;
        let links = self.lines().map(|line| {
            position += 1;
            let at = position;
            let number = |mut b: Broken| {
                b.position = at;
                b
            };
            match line {
                Ok((place, line)) => link_of(place, line).map_err(number),
                Err(why) => Err(number(Broken {
                    position: at,
                    place: self.path.display().to_string(),
                    request_id: String::new(),
                    breach: Breach::Unreadable(why),
                })),
            }
        });
        let locate = |hash: &str| {
            self.lines().position(|line| line.is_ok_and(|(_, l)| chain::open_line(&l).is_some_and(|s| s.hash == hash)))
        };
        Ok(chain::walk(links, &HashSet::new(), |hash| locate(hash).map(|i| i as u64 + 1)))
    }

    fn follow(&mut self) -> Result<Vec<AuditEntry>, String> {
        let Some((id, len)) = identity(&self.path) else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut cursor = self.cursor.unwrap_or(Cursor { id, offset: 0 });
        if cursor.id != id {
            // Rotated: finish the file we were reading (now FILE.1), then start the new one.
            let old = rotated(&self.path, 1);
            if identity(&old).is_some_and(|(old_id, _)| old_id == cursor.id) {
                read_from(&old, cursor.offset, &mut out)?;
            }
            cursor = Cursor { id, offset: 0 };
        }
        if len > cursor.offset {
            cursor.offset += read_from(&self.path, cursor.offset, &mut out)?;
        }
        self.cursor = Some(cursor);
        Ok(out)
    }
}

/// Reads the whole lines after `offset` into `out` (request records only); returns the bytes consumed.
fn read_from(path: &Path, offset: u64, out: &mut Vec<AuditEntry>) -> Result<u64, String> {
    let mut file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    for line in bytes[..whole].split(|b| *b == b'\n') {
        if let Ok(entry) = serde_json::from_slice::<AuditEntry>(line) {
            out.push(entry);
        }
    }
    Ok(whole as u64)
}

/// A file's identity (device and inode) and length.
fn identity(path: &Path) -> Option<((u64, u64), u64)> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let id = {
        use std::os::unix::fs::MetadataExt;
        (meta.dev(), meta.ino())
    };
    #[cfg(not(unix))]
    let id = (0, 0);
    Some((id, meta.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::jsonl::{JsonLines, Options};
    use crate::audit::{AuditSink, Phase};

    fn temp() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crossgate-lines-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    fn entry(i: usize) -> AuditEntry {
        AuditEntry {
            request_id: format!("R-{i}"),
            phase: Phase::Completed,
            time: crate::audit::rfc3339(1_780_000_000_000 + i as u64),
            ..AuditEntry::default()
        }
    }

    async fn written(path: &Path, options: Options, n: usize) {
        let sink = JsonLines::open(path, options).unwrap();
        for i in 0..n {
            sink.submit(&entry(i)).await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_trail_verifies_across_rotations_and_restarts() {
        let path = temp();
        let options = Options { rotate_bytes: 4096, keep: 50, ..Options::default() };
        written(&path, options, 20).await;
        written(&path, options, 20).await; // a restart: the chain goes on from the last line
        assert!(rotated(&path, 2).exists());
        let checked = LinesTrail::open(&path, 50).unwrap().verify().unwrap().unwrap();
        let files = kept_files(&path, 50).len() as u64;
        assert_eq!(checked.segments, files, "each rotation starts a segment");
        assert_eq!(checked.records, 40 + files - 1, "40 records and a segment record per rotation");
    }

    #[tokio::test]
    async fn dropping_the_oldest_files_leaves_a_trail_that_verifies() {
        let path = temp();
        let options = Options { rotate_bytes: 4096, keep: 2, ..Options::default() };
        written(&path, options, 60).await;
        assert!(!rotated(&path, 3).exists());
        let checked = LinesTrail::open(&path, 2).unwrap().verify().unwrap();
        assert!(checked.is_ok(), "{checked:?}");
    }

    #[tokio::test]
    async fn a_partial_last_line_is_cut_off_at_open_and_the_chain_goes_on() {
        let path = temp();
        written(&path, Options::default(), 3).await;
        let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        std::io::Write::write_all(&mut file, b"{\"phase\":\"adm").unwrap();
        written(&path, Options::default(), 2).await;
        let checked = LinesTrail::open(&path, 1).unwrap().verify().unwrap().unwrap();
        assert_eq!(checked.records, 5);
    }

    #[tokio::test]
    async fn follow_reads_new_records_across_a_rotation() {
        let path = temp();
        let options = Options { rotate_bytes: 4096, keep: 3, ..Options::default() };
        let sink = JsonLines::open(&path, options).unwrap();
        sink.submit(&entry(0)).await.unwrap();
        let mut trail = LinesTrail::open(&path, 3).unwrap();
        assert!(trail.follow().unwrap().is_empty(), "only what is written after opening");
        let mut seen = Vec::new();
        for i in 1..30 {
            sink.submit(&entry(i)).await.unwrap();
            if i % 4 == 0 {
                seen.extend(trail.follow().unwrap().into_iter().map(|e| e.request_id));
            }
        }
        seen.extend(trail.follow().unwrap().into_iter().map(|e| e.request_id));
        assert!(rotated(&path, 1).exists());
        assert_eq!(seen, (1..30).map(|i| format!("R-{i}")).collect::<Vec<_>>());
    }
}
