//! The request path, one layer per cross-cutting concern. [`pipeline`] assembles it around an innermost
//! service (the gateway's own work in [`crate::gateway`], put there by [`crate::app`], or the
//! simulator's clouds); each line says why the layer sits where it does.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use tower::{Service, ServiceBuilder};

use tokio_util::task::TaskTracker;

use crate::clock::Clock;
use crate::config::{CallerConfig, OnAuditFailure, ReplayConfig};
use crate::mapping::Mappings;
use crate::model::{Fault, Outcome};
use crate::replay::ReplayStore;

pub mod admit;
pub mod audit;
pub mod auth;
pub mod body;
pub mod deadline;
pub mod detach;
pub mod detect;
pub mod kept;
pub mod overload;
pub mod ready;
pub mod request_id;
pub mod respond;

/// Any error a body may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response crossgate sends.
pub type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// What the request path around an innermost service needs.
#[derive(Debug, Clone)]
pub struct Front {
    /// The mapping tables.
    pub maps: Arc<Mappings>,
    /// Who may call.
    pub callers: Vec<CallerConfig>,
    /// Spent replay keys.
    pub replay: Arc<dyn ReplayStore>,
    /// Replay policy and windows.
    pub replay_policy: ReplayConfig,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Where audit records go.
    pub audit: Arc<dyn audit::AuditSink>,
    /// What an unwritable audit does to a request.
    pub on_audit_failure: OnAuditFailure,
    /// Where each request's work runs, tracked for draining.
    pub tasks: TaskTracker,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Requests served at once at most.
    pub max_in_flight: usize,
    /// Time limit for a whole request.
    pub request_timeout: Duration,
    /// What `/readyz` checks.
    pub ready: ready::ReadyLayer,
}

/// The request path around `inner`, which sees authenticated, decoded requests and answers with an
/// outcome or a fault.
pub fn pipeline<B, S>(
    front: Front,
    inner: S,
) -> impl Service<Request<B>, Response = Response<ResBody>, Error = Infallible, Future: Send> + Clone + Send
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    S: Service<Request<Bytes>, Response = Outcome, Error = Fault> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Front {
        maps,
        callers,
        replay,
        replay_policy,
        clock,
        audit,
        on_audit_failure,
        tasks,
        max_body_bytes,
        max_in_flight,
        request_timeout,
        ready,
    } = front;
    // tower-http's trace layer reads the clock several times per request and enters its span at every
    // poll, for a span and lines that are all at debug level: it is left out unless they are wanted.
    let debugging = tracing::enabled!(tracing::Level::DEBUG)
        || tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG);
    let trace = debugging.then(|| {
        ServiceBuilder::new()
            .map_response(boxed)
            .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(span))
    });
    ServiceBuilder::new()
        // `/readyz`: whether the stores the gateway depends on can be reached now.
        .layer(ready)
        // First: the RequestId the caller will see, for every layer within and as `x-request-id`.
        .layer(request_id::RequestIdLayer)
        // When debug logging is on: a span and log lines per request (method, path, request id,
        // status, latency; never the query, which carries signatures).
        .option_layer(trace)
        // One body type for every response, whatever the layers within return.
        .map_response(boxed)
        // Sees every request, even ones refused below; runs the rest as a task of its own, so that a
        // caller who leaves cancels nothing, and writes the request's final record when it ends.
        .layer(audit::AuditLayer::new(audit.clone(), clock.clone(), tasks))
        // The body becomes Bytes once, up to the size and time limits; raw bytes kept for signatures.
        .layer(body::BufferLayer::new(max_body_bytes, request_timeout))
        // Tells the dialect; from here on every answer can be given in it.
        .layer(detect::DetectLayer::new(maps.clone()))
        // Renders every outcome and fault in the caller's dialect; nothing below can drop a request.
        .layer(respond::RespondLayer::new(maps.clone()))
        // Sheds load past the in-flight and connection caps, answered at once in the dialect.
        .layer(overload::OverloadLayer::new(max_in_flight))
        // Bounds the request in time, as a fault the respond layer can render.
        .layer(deadline::DeadlineLayer::new(request_timeout))
        // Verifies the signature, the time window, the replay key and the caller's permission for the
        // action; decodes the operation once.
        .layer(auth::AuthLayer::new(&callers, replay, replay_policy, clock, maps))
        // Stores the admission record before anything can be forwarded.
        .layer(admit::AdmitLayer::new(audit, on_audit_failure))
        .service(inner)
}

/// A response with its body boxed into [`ResBody`].
pub fn boxed<T>(res: Response<T>) -> Response<ResBody>
where
    T: http_body::Body<Data = Bytes> + Send + 'static,
    T::Error: Into<BoxError>,
{
    res.map(|body| body.map_err(Into::into).boxed_unsync())
}

fn span<B>(req: &Request<B>) -> tracing::Span {
    let id = req.extensions().get::<request_id::RequestId>().map_or("", |r| r.0.as_str());
    // At debug level: a span costs an allocation per request, and production runs at info.
    tracing::debug_span!("request", method = %req.method(), path = req.uri().path(), request_id = id)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tower::ServiceExt;

    use super::*;
    use crate::clock::SystemClock;
    use crate::sim::{self, SimHandle};

    /// Log lines written to memory.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What one request through the simulator's pipeline logs with debug logging on.
    fn logged_while_debugging() -> String {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("crossgate=debug,tower_http=debug"))
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let maps = Arc::new(Mappings::embedded().unwrap());
            let state = sim::state::CloudState::new(&maps);
            let handle = SimHandle::new(state, BTreeMap::new(), maps, Arc::new(SystemClock));
            let service = sim::service::service::<http_body_util::Full<Bytes>>(handle);
            let req = Request::builder().uri("/?Action=AttachKeyPair").body(http_body_util::Full::new(Bytes::new()));
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let res = runtime.block_on(service.oneshot(req.unwrap())).unwrap();
            assert!(res.status().is_client_error(), "an unsigned request is refused: {}", res.status());
        });
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn requests_are_traced_when_debugging() {
        let debug = logged_while_debugging();
        assert!(debug.contains("finished processing request"), "{debug}");
        assert!(debug.contains("request{method=GET path=\"/\" request_id="), "the span names the request: {debug}");
        assert!(!debug.contains("Action="), "never the query: {debug}");
    }
}
