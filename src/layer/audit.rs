//! The audit layer: outermost, so it sees every request, even ones refused further in, and it runs
//! each request's work so that the work ends, and is recorded, whether or not the caller is still there
//! ([`Detachable`]: in the caller's connection task, moved to a task of its own if the caller leaves).
//!
//! It inserts an [`AuditHandle`] that inner stages fill (caller, dialect, operation, upstreams, results,
//! fault); when the work ends it writes the request's final record: *completed* when the admit layer
//! let it through (its admission record is already stored), *refused* otherwise. A caller that leaves
//! mid-request no longer cancels anything: the work ends and is recorded; the answer is simply not
//! delivered.
//! A panic in the work is caught where the work runs: the request is answered with a plain 500 and its
//! final record says so.
//! The work is tracked, so that a shutdown waits for it (see [`crate::server::Drain`]).

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use tokio_util::task::TaskTracker;
use tower::{Layer, Service};

use super::detach::Detachable;
use super::request_id::RequestId;
use super::{ResBody, boxed, respond::plain};
use crate::clock::Clock;
use crate::model::{Code, Source};

pub use crate::audit::{AuditEntry, AuditHandle, AuditSink, InstanceAudit, MemorySink, PeerAddr, Phase, rfc3339};

/// The audit layer's parts: where records go, the clock for their times, and the task tracker.
#[derive(Debug, Clone)]
pub struct AuditLayer {
    sink: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    tasks: TaskTracker,
}

impl AuditLayer {
    /// Audits into `sink`, stamping times from `clock`, running work on `tasks`.
    pub fn new(sink: Arc<dyn AuditSink>, clock: Arc<dyn Clock>, tasks: TaskTracker) -> AuditLayer {
        AuditLayer { sink, clock, tasks }
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
    S: Service<Request<B>, Response = Response<R>, Error = Infallible> + Send,
    S::Future: Send + 'static,
    R: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    R::Error: Into<super::BoxError>,
{
    type Response = Response<ResBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<ResBody>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let started = Instant::now();
        let handle = AuditHandle::default();
        let source = req.extensions().get::<PeerAddr>().map(|p| String::from(&*p.text));
        let time = rfc3339(self.cfg.clock.now_ms());
        let request_id = req.extensions().get::<RequestId>().cloned().unwrap_or_default();
        handle.update(|e| {
            e.time = time;
            e.request_id = request_id.0;
            e.source = source;
        });
        req.extensions_mut().insert(handle.clone());
        let sink = self.cfg.sink.clone();
        let work = self.inner.call(req);
        let work = Box::pin(async move {
            // A panic in the work is a bug; the request is still answered and its final record written.
            let res = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(res) => res.map(boxed),
                Err(_) => {
                    let request_id = handle.read(|entry| entry.request_id.clone());
                    tracing::error!(%request_id, "A request's work panicked.");
                    handle.update(|e| {
                        e.kind = Some(Code::Internal.name().into());
                        e.fault_source = Some(Source::Gateway.name().into());
                        e.message = Some("The request's work stopped unexpectedly.".into());
                    });
                    Ok(internal_error())
                }
            };
            let status = res.as_ref().map_or(0, |r| r.status().as_u16());
            handle.update(|e| {
                e.latency_ms = started.elapsed().as_secs_f64() * 1000.0;
                e.status = status;
                e.phase = if e.phase == Phase::Admitted { Phase::Completed } else { Phase::Refused };
            });
            if let Err(e) = handle.read(|entry| sink.submit(entry)).await {
                let request_id = handle.read(|entry| entry.request_id.clone());
                tracing::error!(error = %e, %request_id, "The final audit record was not written.");
            }
            res
        });
        Box::pin(Detachable::new(work, &self.cfg.tasks))
    }
}

/// The answer to a request whose work failed in crossgate itself (a bug): no dialect can be trusted then.
fn internal_error() -> Response<ResBody> {
    boxed(plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use tower::{ServiceExt, service_fn};

    #[tokio::test]
    async fn a_panicking_request_is_answered_and_its_final_record_written() {
        let sink = Arc::new(MemorySink::default());
        let layer = AuditLayer::new(sink.clone(), Arc::new(SystemClock), TaskTracker::new());
        let work = service_fn(|req: Request<()>| async move {
            if req.uri().path() == "/panics" {
                panic!("a bug in the request's work");
            }
            Ok::<_, Infallible>(Response::new(http_body_util::Full::new(bytes::Bytes::new())))
        });
        let svc = layer.layer(work);
        let res = svc.oneshot(Request::builder().uri("/panics").body(()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let finals = sink.finals();
        assert_eq!(finals.len(), 1, "{finals:?}");
        assert_eq!(finals[0].status, 500);
        assert_eq!(finals[0].kind.as_deref(), Some("internal"));
        assert_eq!(finals[0].fault_source.as_deref(), Some("gateway"));
    }
}
