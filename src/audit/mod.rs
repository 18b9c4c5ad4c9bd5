//! The audit trail's records and the interface every store implements.
//!
//! A forwarded request leaves two records: an **admission** record, durable before the first upstream
//! call (request id, caller, dialect, action, instances, keys, and the replay key it spent), and a
//! **completion** record after the last one (upstreams, their request ids, per-instance results, the
//! code the caller saw). A request refused before admission leaves one **refused** record. Inner stages
//! fill one [`AuditEntry`] through an [`AuditHandle`]; [`AuditEntry`] has no field that could hold a
//! secret or a signature value (a TC3 signature is spent as its SHA-256, never as itself).
//!
//! Stores implement [`AuditSink`]: [`sqlite::Sqlite`] (the default: a WAL-mode SQLite database, group
//! commits, indexed columns, retention), [`jsonl::JsonLines`] (JSON lines in a file or on standard
//! output, grouped writes, rotation) and [`MemorySink`]; [`store`] picks one from the configuration.
//! [`AuditSink::submit`] answers with an [`AuditReceipt`] that resolves once the record is as durable as
//! the store promises (committed, or written to the file: either way a `kill -9` keeps it). Every stored
//! record is chained to the one before by a hash ([`chain`]); [`query`] reads a trail back and checks it.

use std::fmt::Debug;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

pub mod chain;
pub mod columns;
pub mod group;
pub mod json;
pub mod jsonl;
pub mod lines;
pub mod postgres;
pub mod query;
pub mod sqlite;
pub mod store;

/// Which record of a request an entry is.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Refused before anything was forwarded: the only record of the request.
    #[default]
    Refused,
    /// Admitted: written before the first upstream call.
    Admitted,
    /// Completed after the last upstream call: the request's full record.
    Completed,
}

/// Per-instance outcome in an audit record.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InstanceAudit {
    /// The instance id as the caller gave it.
    pub instance: String,
    /// The id on the upstream.
    pub translated: String,
    /// The upstream that served it.
    pub upstream: String,
    /// `Success` or the canonical error kind.
    pub outcome: String,
}

/// One upstream attempt in an audit record (a retried call or a look-up read page by page has several).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UpstreamCall {
    /// The upstream's name.
    pub upstream: String,
    /// The canonical action.
    pub action: String,
    /// 1 for a call's first try.
    pub attempt: u32,
    /// How it ended: `answered`, `not_connected`, `lost`, `breaker_open`, `quota_refused`, `unsendable`.
    pub ending: String,
    /// The reply's HTTP status, when one arrived.
    pub status: Option<u16>,
    /// The canonical kind of the failure, if it failed.
    pub fault: Option<String>,
    /// How long it took, in milliseconds.
    pub elapsed_ms: u64,
}

/// One difference between a look-up's answer and its shadow's, in the caller's names.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShadowDifference {
    /// The shadow upstream.
    pub shadow: String,
    /// `missing_on_shadow`, `missing_on_primary`, `keys` or `state`.
    pub kind: String,
    /// The instance or key pair, as the caller names it.
    pub subject: String,
    /// What the caller got.
    pub primary: String,
    /// What the shadow answered.
    pub shadow_value: String,
}

/// One audit record.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditEntry {
    /// Which record of the request this is.
    pub phase: Phase,
    /// RFC 3339 UTC time the request arrived.
    pub time: String,
    /// The gateway's RequestId, as the caller saw it.
    pub request_id: String,
    /// The upstreams' RequestIds.
    pub upstream_request_ids: Vec<String>,
    /// The authenticated caller's name (or the credential id presented, when it was refused).
    pub caller: Option<String>,
    /// The peer address.
    pub source: Option<String>,
    /// The caller's dialect.
    pub dialect: Option<String>,
    /// The caller's wire action.
    pub action: Option<String>,
    /// The upstreams that served it.
    pub upstreams: Vec<String>,
    /// The upstream wire actions sent.
    pub upstream_actions: Vec<String>,
    /// Instances as given.
    pub instances: Vec<String>,
    /// Keys as given.
    pub keys: Vec<String>,
    /// Keys as translated for each upstream.
    pub keys_translated: Vec<String>,
    /// Per-instance outcomes.
    pub results: Vec<InstanceAudit>,
    /// Every upstream attempt, in order.
    pub upstream_calls: Vec<UpstreamCall>,
    /// What a state policy or key replication did, and why, step by step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// Shadow mode: how the shadow upstream's answer differed from the one the caller got.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow_differences: Vec<ShadowDifference>,
    /// Shadow mode: the binds and unbinds that would have been sent to the shadow upstream.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shadow_requests: Vec<String>,
    /// The final code the caller saw (`Success`, or the dialect's error code).
    pub code: String,
    /// The canonical kind of the final fault, if any.
    pub kind: Option<String>,
    /// Whose fault it was, if any.
    pub fault_source: Option<String>,
    /// The fault's message (never holds a secret).
    pub message: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Time from arrival to response, milliseconds.
    pub latency_ms: f64,
    /// The replay key the request spent (credential and nonce, or a TC3 signature's digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_key: Option<String>,
    /// Unix time until which the replay key stays spent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_until: Option<i64>,
}

/// The entry being filled for one request, shared through request extensions.
#[derive(Debug, Clone, Default)]
pub struct AuditHandle(Arc<Mutex<AuditEntry>>);

impl AuditHandle {
    /// Changes the entry.
    pub fn update(&self, f: impl FnOnce(&mut AuditEntry)) {
        let mut entry = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut entry);
    }

    /// A copy of the entry as it stands.
    pub fn snapshot(&self) -> AuditEntry {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Reads a field of the entry.
    pub fn read<T>(&self, f: impl FnOnce(&AuditEntry) -> T) -> T {
        f(&self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Why a record could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the audit record could not be written: {0}")]
pub struct AuditError(pub String);

/// Resolves once a submitted record is stored (or could not be).
#[derive(Debug)]
pub struct AuditReceipt(Receipt);

enum Receipt {
    Done(Option<Result<(), AuditError>>),
    Pending(oneshot::Receiver<Result<(), AuditError>>),
    /// A receipt whose result is shown to an observer when it resolves.
    Inspected(Box<AuditReceipt>, Option<Inspector>),
    /// Receipts that all have to resolve; the first failure is the result.
    All(Vec<AuditReceipt>, Option<AuditError>),
}

type Inspector = Box<dyn FnOnce(&Result<(), AuditError>) + Send>;

impl Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Receipt::Done(result) => f.debug_tuple("Done").field(result).finish(),
            Receipt::Pending(_) => f.write_str("Pending"),
            Receipt::Inspected(inner, _) => f.debug_tuple("Inspected").field(inner).finish(),
            Receipt::All(left, failed) => f.debug_tuple("All").field(left).field(failed).finish(),
        }
    }
}

impl AuditReceipt {
    /// A receipt for a record already stored (or refused).
    pub fn done(result: Result<(), AuditError>) -> AuditReceipt {
        AuditReceipt(Receipt::Done(Some(result)))
    }

    /// A receipt resolved by whoever holds the sender.
    pub fn pending() -> (oneshot::Sender<Result<(), AuditError>>, AuditReceipt) {
        let (tx, rx) = oneshot::channel();
        (tx, AuditReceipt(Receipt::Pending(rx)))
    }

    /// Resolves once every one of `receipts` has; with the first failure among them, if any.
    pub fn all(receipts: Vec<AuditReceipt>) -> AuditReceipt {
        if receipts.is_empty() {
            return AuditReceipt::done(Ok(()));
        }
        AuditReceipt(Receipt::All(receipts, None))
    }

    /// The same receipt, showing its result to `observe` when it resolves (at once when it already has).
    pub fn inspect(self, observe: impl FnOnce(&Result<(), AuditError>) + Send + 'static) -> AuditReceipt {
        match self.0 {
            Receipt::Done(Some(result)) => {
                observe(&result);
                AuditReceipt::done(result)
            }
            other => AuditReceipt(Receipt::Inspected(Box::new(AuditReceipt(other)), Some(Box::new(observe)))),
        }
    }
}

impl Future for AuditReceipt {
    type Output = Result<(), AuditError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.0 {
            Receipt::Done(result) => {
                Poll::Ready(result.take().unwrap_or_else(|| Err(AuditError("the receipt was read twice".into()))))
            }
            Receipt::Pending(rx) => {
                Pin::new(rx).poll(cx).map(|r| r.unwrap_or_else(|_| Err(AuditError("the audit writer stopped".into()))))
            }
            Receipt::Inspected(inner, observe) => {
                let result = std::task::ready!(Pin::new(inner.as_mut()).poll(cx));
                if let Some(observe) = observe.take() {
                    observe(&result);
                }
                Poll::Ready(result)
            }
            Receipt::All(left, failed) => {
                let mut index = 0;
                while index < left.len() {
                    match Pin::new(&mut left[index]).poll(cx) {
                        Poll::Ready(result) => {
                            left.swap_remove(index);
                            if let (Err(e), None) = (result, &failed) {
                                *failed = Some(e);
                            }
                        }
                        Poll::Pending => index += 1,
                    }
                }
                if !left.is_empty() {
                    return Poll::Pending;
                }
                Poll::Ready(failed.take().map_or(Ok(()), Err))
            }
        }
    }
}

/// A spent replay key found in the trail, to be remembered again after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpentKey {
    /// The key.
    pub key: String,
    /// Unix time until which it stays spent.
    pub until: i64,
}

/// Where audit records go.
pub trait AuditSink: Send + Sync + Debug {
    /// Stores one record; the receipt resolves once it is durable as the store promises.
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt;

    /// The replay keys admitted records spent that are still within their window at `now` (Unix
    /// seconds), so that a restarted gateway refuses their replay.
    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        let _ = now;
        Vec::new()
    }

    /// Resolves once every record submitted so far is stored.
    fn flush(&self) -> AuditReceipt {
        AuditReceipt::done(Ok(()))
    }

    /// Whether the store can be written now (a database server that can be reached); may block
    /// briefly, so callers run it off the serving threads.
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// Records kept in memory: for tests and embedding.
#[derive(Debug, Default)]
pub struct MemorySink(pub Mutex<Vec<AuditEntry>>);

impl MemorySink {
    /// The final record of every request so far (completed or refused), in order.
    pub fn finals(&self) -> Vec<AuditEntry> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|e| e.phase != Phase::Admitted)
            .cloned()
            .collect()
    }
}

impl AuditSink for MemorySink {
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(entry.clone());
        AuditReceipt::done(Ok(()))
    }

    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        spent_in(self.0.lock().unwrap_or_else(|p| p.into_inner()).iter(), now)
    }
}

/// The replay keys that admitted entries spent and that are still within their window at `now`.
pub fn spent_in<'a>(entries: impl Iterator<Item = &'a AuditEntry>, now: i64) -> Vec<SpentKey> {
    entries
        .filter(|e| e.phase == Phase::Admitted)
        .filter_map(|e| match (&e.replay_key, e.replay_until) {
            (Some(key), Some(until)) if until >= now => Some(SpentKey { key: key.clone(), until }),
            _ => None,
        })
        .collect()
}

/// The peer address of a connection, inserted by the server into each of its requests, with its text
/// (what audit records carry) written once per connection rather than once per request.
#[derive(Debug, Clone)]
pub struct PeerAddr {
    /// The address as text (`1.2.3.4:5678`, `[::1]:5678`).
    pub text: Arc<str>,
}

impl PeerAddr {
    /// The text of `addr`.
    pub fn new(addr: SocketAddr) -> PeerAddr {
        PeerAddr { text: addr.to_string().into() }
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for a Unix time in milliseconds (every record carries one: its digits are
/// written directly rather than through the formatting machinery).
pub fn rfc3339(unix_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (year, month, day) = t.to_calendar_date();
    let (hour, minute, second, milli) = t.to_hms_milli();
    // From Unix milliseconds, the year is 1970 to 9999 (`time`'s range; later times read as the epoch).
    let year = u16::try_from(year).unwrap_or_default();
    let mut text = *b"0000-00-00T00:00:00.000Z";
    let fields: [(u16, usize, usize); 7] = [
        (year, 0, 4),
        (u16::from(u8::from(month)), 5, 2),
        (u16::from(day), 8, 2),
        (u16::from(hour), 11, 2),
        (u16::from(minute), 14, 2),
        (u16::from(second), 17, 2),
        (milli, 20, 3),
    ];
    for (value, at, width) in fields {
        crate::sign::encoding::fixed_digits(&mut text[at..at + width], u64::from(value));
    }
    text.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn spent_keys_come_from_admitted_records_still_in_their_window() {
        let sink = MemorySink::default();
        let admitted = |key: &str, until| AuditEntry {
            phase: Phase::Admitted,
            replay_key: Some(key.into()),
            replay_until: Some(until),
            ..AuditEntry::default()
        };
        sink.submit(&admitted("a", 100)).await.unwrap();
        sink.submit(&admitted("b", 50)).await.unwrap();
        sink.submit(&AuditEntry {
            phase: Phase::Completed,
            replay_key: Some("c".into()),
            replay_until: Some(100),
            ..AuditEntry::default()
        })
        .await
        .unwrap();
        assert_eq!(sink.spent_keys(60), vec![SpentKey { key: "a".into(), until: 100 }]);
    }

    #[tokio::test]
    async fn a_receipt_for_several_waits_for_each_and_keeps_the_first_failure() {
        assert_eq!(AuditReceipt::all(Vec::new()).await, Ok(()));
        let (first, first_receipt) = AuditReceipt::pending();
        let (second, second_receipt) = AuditReceipt::pending();
        let mut all = Box::pin(AuditReceipt::all(vec![first_receipt, second_receipt]));
        assert_eq!(futures_util::FutureExt::now_or_never(all.as_mut()), None);
        first.send(Err(AuditError("disk full".into()))).unwrap();
        assert_eq!(futures_util::FutureExt::now_or_never(all.as_mut()), None, "one receipt is still open");
        second.send(Ok(())).unwrap();
        assert_eq!(all.await, Err(AuditError("disk full".into())));
    }

    #[test]
    fn times_are_written_in_rfc3339_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_780_000_000_123), "2026-05-28T20:26:40.123Z");
        assert_eq!(rfc3339(951_782_400_007), "2000-02-29T00:00:00.007Z");
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }
}
