//! Audit: one JSON line per request, written when the response is ready.
//!
//! The layer inserts an [`AuditHandle`] whose fields start empty; inner stages fill in what they learn
//! (caller, dialect, operation, upstreams, per-instance results, fault), and the layer completes it with the
//! status and latency. [`AuditEntry`] has no field that could hold a secret or a signature value.

use std::fmt::Debug;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::future::BoxFuture;
use http::{Request, Response};
use serde::Serialize;
use tower::{Layer, Service};

use super::request_id::RequestId;
use crate::clock::Clock;

/// Per-instance outcome in an audit line.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
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

/// One audit line.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditEntry {
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
}

/// Where audit lines go.
pub trait AuditSink: Send + Sync + Debug {
    /// Writes one line; must not lose it silently.
    fn write(&self, entry: &AuditEntry);
}

/// JSON lines appended to a file (or standard output), flushed after every line.
pub struct JsonLinesSink {
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for JsonLinesSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonLinesSink")
    }
}

impl JsonLinesSink {
    /// Appends to `path`, creating it.
    pub fn open(path: &Path) -> std::io::Result<JsonLinesSink> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(JsonLinesSink { out: Mutex::new(Box::new(file)) })
    }

    /// Writes to standard output.
    pub fn stdout() -> JsonLinesSink {
        JsonLinesSink { out: Mutex::new(Box::new(std::io::stdout())) }
    }
}

impl AuditSink for JsonLinesSink {
    fn write(&self, entry: &AuditEntry) {
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            tracing::error!(error = %e, request_id = %entry.request_id, "Audit line could not be written.");
        }
    }
}

/// Lines kept in memory: for tests and embedding.
#[derive(Debug, Default)]
pub struct MemorySink(pub Mutex<Vec<AuditEntry>>);

impl AuditSink for MemorySink {
    fn write(&self, entry: &AuditEntry) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(entry.clone());
    }
}

/// The peer address of a connection, inserted by the server.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The audit layer: outermost, so it sees every request, even ones refused further in.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
}

impl AuditLayer {
    /// Audits into `sink`, stamping times from `clock`.
    pub fn new(sink: Arc<dyn AuditSink>, clock: Arc<dyn Clock>) -> AuditLayer {
        AuditLayer { sink, clock }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = Audit<S>;
    fn layer(&self, inner: S) -> Audit<S> {
        Audit { inner, cfg: self.clone() }
    }
}

/// The audit service.
#[derive(Debug, Clone)]
pub struct Audit<S> {
    inner: S,
    cfg: AuditLayer,
}

impl<S, B, R> Service<Request<B>> for Audit<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let handle = AuditHandle::default();
        let source = req.extensions().get::<PeerAddr>().map(|p| p.0.to_string());
        let time = rfc3339(self.cfg.clock.now_ms());
        let request_id = req.extensions().get::<RequestId>().cloned().unwrap_or_default();
        handle.update(|e| {
            e.time = time;
            e.request_id = request_id.0;
            e.source = source;
        });
        req.extensions_mut().insert(handle.clone());
        let sink = self.cfg.sink.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            handle.update(|e| {
                e.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                if let Ok(r) = &res {
                    e.status = r.status().as_u16();
                }
            });
            sink.write(&handle.snapshot());
            res
        })
    }
}

/// `YYYY-MM-DDThh:mm:ss.mmmZ` for a Unix time in milliseconds.
pub fn rfc3339(unix_ms: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
