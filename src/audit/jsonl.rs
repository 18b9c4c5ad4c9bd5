//! The JSON-lines audit store: one line per record, appended to a file (or standard output) in groups
//! (see [`super::group`]: one `write` for the records of an event-loop turn). Every line ends with its
//! chain fields (`prev_hash`, `hash`: see [`super::chain`]).
//!
//! A record's receipt resolves once its line is in the file (the `write` returned), so a process killed
//! with `kill -9` keeps it; with `fsync = "always"` the receipt also waits for `fdatasync`, which keeps
//! it through a power loss. A write that fails (disk full, file gone) is cut back to the last whole line
//! and every record of the group is answered with the error. At `rotate_bytes` the file is renamed to
//! `FILE.1` (older ones shift to `FILE.2` ... `FILE.<keep>`) between two groups, so no line is lost, and
//! the new file starts with a segment record chained to the last line of the old one. At open, a last
//! line cut short by a crash is cut off, and the chain goes on from the last line's hash.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::chain::{self, GENESIS, Segment, SegmentReason};
use super::group::{GroupCommit, Store};
use super::{AuditEntry, AuditError, AuditReceipt, AuditSink, Phase, SpentKey};

/// The longest time window a request may have (`[replay] windows` allows at most a day).
const MAX_WINDOW_SECS: i64 = 86_400;

/// When the file is synced to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Never: a line is safe from a process crash once written, not from a power loss.
    #[default]
    Never,
    /// After every group of lines, before their receipts resolve.
    Always,
}

/// How the file is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Rotate when the file reaches this size.
    pub rotate_bytes: u64,
    /// How many rotated files to keep.
    pub keep: usize,
    /// The sync policy.
    pub fsync: Fsync,
}

impl Default for Options {
    fn default() -> Options {
        Options { rotate_bytes: 64 * 1024 * 1024, keep: 5, fsync: Fsync::Never }
    }
}

/// JSON lines appended in groups.
#[derive(Debug)]
pub struct JsonLines {
    group: Arc<GroupCommit<Out>>,
    path: Option<PathBuf>,
    keep: usize,
}

impl JsonLines {
    /// Appends to `path`, creating it; fails at once if it cannot be opened. The chain goes on from the
    /// last line kept.
    pub fn open(path: &Path, options: Options) -> std::io::Result<JsonLines> {
        let mut file = open_append(path)?;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        let last = if regular {
            cut_partial_line(path)?;
            last_hash(path, options.keep)?
        } else {
            GENESIS.to_owned()
        };
        let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
        let target = Target::File { path: path.to_owned(), file: Some(file), len, options };
        let group = Arc::new(GroupCommit::new(Out::new(target, last), options.fsync == Fsync::Always));
        Ok(JsonLines { group, path: Some(path.to_owned()), keep: options.keep })
    }

    /// Writes to standard output (a chain that starts anew at each start).
    pub fn stdout() -> JsonLines {
        let group = Arc::new(GroupCommit::new(Out::new(Target::Stdout, GENESIS.to_owned()), false));
        JsonLines { group, path: None, keep: 0 }
    }
}

impl AuditSink for JsonLines {
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt {
        self.group.submit(entry)
    }

    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        let Some(path) = &self.path else { return Vec::new() };
        let mut keys = Vec::new();
        // A file last written before the longest window opened holds no key still spent.
        let oldest = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(now - MAX_WINDOW_SECS).unwrap_or(0));
        for file in kept_files(path, self.keep) {
            let Ok(meta) = std::fs::metadata(&file) else { continue };
            if meta.modified().is_ok_and(|m| m < oldest) {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            let admitted = text.lines().filter(|l| l.contains("\"phase\":\"admitted\""));
            let entries: Vec<AuditEntry> = admitted.filter_map(|l| serde_json::from_str(l).ok()).collect();
            keys.extend(super::spent_in(entries.iter(), now));
        }
        keys
    }

    fn flush(&self) -> AuditReceipt {
        self.group.flush()
    }
}

/// Where the lines go, and the chain's last hash.
struct Out {
    target: Target,
    last: String,
    buffer: Vec<u8>,
}

enum Target {
    File { path: PathBuf, file: Option<File>, len: u64, options: Options },
    Stdout,
}

impl Out {
    fn new(target: Target, last: String) -> Out {
        Out { target, last, buffer: Vec::new() }
    }

    /// Appends the sealed lines of `records` (each a record's JSON, chained to the one before) to
    /// `lines`; returns the last hash.
    fn seal(&self, lines: &mut Vec<u8>, records: &[Vec<u8>]) -> String {
        let mut prev = self.last.clone();
        for json in records {
            let hash = chain::link(&prev, json);
            chain::seal_line(lines, json, &prev, &hash);
            prev = hash;
        }
        prev
    }

    /// After a group: rotates a file past its size, and starts the new one with a segment record.
    fn rotate_if_full(&mut self) {
        {
            let Target::File { path, file, len, options } = &mut self.target else { return };
            if *len < options.rotate_bytes {
                return;
            }
            *file = None;
            if let Err(e) = rotate(path, options.keep) {
                tracing::error!(error = %e, file = %path.display(), "The audit file could not be rotated.");
            }
        }
        let segment = Segment::new(super::rfc3339(now_ms()), SegmentReason::Rotation);
        let mut line = Vec::new();
        let written = encode(&segment).and_then(|json| {
            let hash = self.seal(&mut line, &[json]);
            self.target.write(&line).map_err(|e| AuditError(e.to_string()))?;
            Ok(hash)
        });
        match written {
            Ok(hash) => self.last = hash,
            // The next group links to the old file's last line: the chain still holds.
            Err(e) => tracing::error!(error = %e, "The new audit file's segment record could not be written."),
        }
    }
}

/// A record's JSON, compact, as the chain hashes it.
fn encode<T: serde::Serialize>(record: &T) -> Result<Vec<u8>, AuditError> {
    let mut json = Vec::with_capacity(1024);
    serde_json::to_writer(&mut json, record).map_err(|e| AuditError(format!("cannot encode the record: {e}")))?;
    Ok(json)
}

impl Store for Out {
    type Record = Vec<u8>;

    fn prepare(entry: &AuditEntry) -> Result<Vec<u8>, AuditError> {
        Ok(super::json::entry_bytes(entry))
    }

    fn append(&mut self, records: &[Vec<u8>]) -> Result<(), AuditError> {
        let mut lines = std::mem::take(&mut self.buffer);
        lines.clear();
        let last = self.seal(&mut lines, records);
        let result = self.target.write(&lines).map_err(|e| AuditError(e.to_string())).map(|()| self.last = last);
        if matches!(self.target, Target::File { .. }) {
            self.buffer = lines;
        }
        match &result {
            Ok(()) => self.rotate_if_full(),
            Err(e) => tracing::error!(error = %e, "Audit records could not be written."),
        }
        result
    }
}

impl Target {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        match self {
            Target::Stdout => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(bytes).and_then(|()| stdout.flush())
            }
            Target::File { path, file, len, options } => {
                if file.is_none() {
                    let mut reopened = open_append(path)?;
                    *len = reopened.seek(SeekFrom::End(0)).unwrap_or(0);
                    *file = Some(reopened);
                }
                let f = file.as_mut().ok_or_else(|| std::io::Error::other("no audit file"))?;
                if let Err(e) = f.write_all(bytes) {
                    // Cut a partial group back so that the file keeps whole lines only.
                    let _ = f.set_len(*len);
                    return Err(e);
                }
                if options.fsync == Fsync::Always
                    && let Err(e) = f.sync_data()
                {
                    let _ = f.set_len(*len);
                    return Err(e);
                }
                *len += bytes.len() as u64;
                Ok(())
            }
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Cuts off a last line that a crash left without its line feed (it cannot be a whole record).
fn cut_partial_line(path: &Path) -> std::io::Result<()> {
    let mut file = OpenOptions::new().read(true).write(true).open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let keep = match last_line_start(&mut file, len)? {
        LastLine::Whole => return Ok(()),
        LastLine::Partial(start) => start,
    };
    tracing::warn!(file = %path.display(), bytes = len - keep, "A partial last audit line was cut off.");
    file.set_len(keep)
}

enum LastLine {
    /// The file ends with a line feed.
    Whole,
    /// The file ends with a line that starts here and has no line feed.
    Partial(u64),
}

/// Where the unfinished last line of a file of `len` bytes starts, if it has one.
fn last_line_start(file: &mut File, len: u64) -> std::io::Result<LastLine> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first = true;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if first && chunk.last() == Some(&b'\n') {
            return Ok(LastLine::Whole);
        }
        first = false;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            return Ok(LastLine::Partial(start + i as u64 + 1));
        }
        end = start;
    }
    Ok(LastLine::Partial(0))
}

/// The last whole line of a file (without its line feed), if it has one.
pub(crate) fn last_line(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    // Look for the line feed before the last one.
    let mut end = len - 1;
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        match chunk.iter().rposition(|b| *b == b'\n') {
            Some(i) => {
                let mut line = chunk[i + 1..].to_vec();
                line.extend_from_slice(&tail);
                return Ok(Some(line));
            }
            None => {
                let mut joined = chunk.to_vec();
                joined.extend_from_slice(&tail);
                tail = joined;
            }
        }
        if start == 0 {
            return Ok(Some(tail));
        }
        end = start;
    }
}

/// The hash of the last line kept: in `path`, or (just after a rotation) in the newest rotated file.
fn last_hash(path: &Path, keep: usize) -> std::io::Result<String> {
    for file in std::iter::once(path.to_owned()).chain((1..=keep.max(1)).map(|n| rotated(path, n))) {
        if let Some(line) = last_line(&file)? {
            return Ok(chain::open_line(&line).map_or_else(|| GENESIS.to_owned(), |s| s.hash));
        }
    }
    Ok(GENESIS.to_owned())
}

/// The kept files that exist and are regular files, oldest first: `FILE.<keep>` .. `FILE.1`, `FILE`.
pub fn kept_files(path: &Path, keep: usize) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=keep.max(1)).rev().map(|n| rotated(path, n)).collect();
    files.push(path.to_owned());
    // Only a regular file is read back (a device such as /dev/full reads forever).
    files.retain(|f| std::fs::metadata(f).is_ok_and(|m| m.is_file()));
    files
}

fn open_append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `FILE.n`.
pub fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Shifts `FILE.1..` up by one (dropping the oldest past `keep`) and renames `FILE` to `FILE.1`.
fn rotate(path: &Path, keep: usize) -> std::io::Result<()> {
    let keep = keep.max(1);
    let _ = std::fs::remove_file(rotated(path, keep));
    for n in (1..keep).rev() {
        let from = rotated(path, n);
        if from.exists() {
            std::fs::rename(&from, rotated(path, n + 1))?;
        }
    }
    std::fs::rename(path, rotated(path, 1))
}

/// Every request record in `path` and its rotated files, oldest first (segment records left out).
pub fn read_all(path: &Path, keep: usize) -> Vec<AuditEntry> {
    kept_files(path, keep)
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect::<Vec<AuditEntry>>())
        .collect()
}

/// True for a record that ends a request (completed or refused).
pub fn is_final(entry: &AuditEntry) -> bool {
    entry.phase != Phase::Admitted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crossgate-jsonl-{}-{name}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("audit.jsonl")
    }

    fn entry(i: usize) -> AuditEntry {
        AuditEntry { request_id: format!("R-{i}"), phase: Phase::Completed, ..AuditEntry::default() }
    }

    #[tokio::test]
    async fn concurrent_records_are_all_written_whole() {
        let path = temp("many");
        let sink = std::sync::Arc::new(JsonLines::open(&path, Options::default()).unwrap());
        let tasks: Vec<_> = (0..500)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move { sink.submit(&entry(i)).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut ids: Vec<String> = read_all(&path, 1).into_iter().map(|e| e.request_id).collect();
        ids.sort();
        let mut want: Vec<String> = (0..500).map(|i| format!("R-{i}")).collect();
        want.sort();
        assert_eq!(ids, want);
    }

    #[tokio::test]
    async fn rotation_loses_no_line_and_keeps_the_configured_number_of_files() {
        let path = temp("rotate");
        let options = Options { rotate_bytes: 2_000, keep: 3, fsync: Fsync::Always };
        let sink = JsonLines::open(&path, options).unwrap();
        for i in 0..40 {
            sink.submit(&entry(i)).await.unwrap();
        }
        assert!(rotated(&path, 1).exists() && rotated(&path, 3).exists());
        assert!(!rotated(&path, 4).exists(), "only `keep` rotated files are kept");
        let ids: Vec<String> = read_all(&path, 3).into_iter().map(|e| e.request_id).collect();
        let first: usize = ids[0].trim_start_matches("R-").parse().unwrap();
        let want: Vec<String> = (first..40).map(|i| format!("R-{i}")).collect();
        assert_eq!(ids, want, "the kept files hold every line since the oldest, in order");
    }

    #[tokio::test]
    async fn a_full_disk_answers_every_record_with_an_error() {
        let sink = JsonLines::open(Path::new("/dev/full"), Options::default()).unwrap();
        let err = sink.submit(&entry(1)).await.unwrap_err();
        assert!(err.0.contains("No space left"), "{err}");
    }

    #[tokio::test]
    async fn spent_keys_are_read_back_from_the_file() {
        let path = temp("spent");
        {
            let sink = JsonLines::open(&path, Options::default()).unwrap();
            let admitted = AuditEntry {
                phase: Phase::Admitted,
                replay_key: Some("id\0n1".into()),
                replay_until: Some(500),
                ..AuditEntry::default()
            };
            sink.submit(&admitted).await.unwrap();
        }
        let reopened = JsonLines::open(&path, Options::default()).unwrap();
        assert_eq!(reopened.spent_keys(400), vec![SpentKey { key: "id\0n1".into(), until: 500 }]);
        assert!(reopened.spent_keys(501).is_empty());
    }

    #[tokio::test]
    async fn spent_keys_are_read_back_from_rotated_files_too() {
        let path = temp("spent-rotated");
        let options = Options { rotate_bytes: 4096, keep: 5, fsync: Fsync::Never };
        {
            let sink = JsonLines::open(&path, options).unwrap();
            let admitted = AuditEntry {
                phase: Phase::Admitted,
                replay_key: Some("early".into()),
                replay_until: Some(i64::MAX / 2),
                ..AuditEntry::default()
            };
            sink.submit(&admitted).await.unwrap();
            for i in 0..30 {
                sink.submit(&entry(i)).await.unwrap();
            }
        }
        assert!(rotated(&path, 2).exists(), "the admission record was rotated away twice");
        let reopened = JsonLines::open(&path, options).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        assert_eq!(reopened.spent_keys(now).len(), 1);
    }
}
