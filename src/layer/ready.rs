//! Readiness: `GET /readyz` answers 200 when every store the gateway depends on can be reached now (the
//! shared Redis, the audit database), and 503 naming the one that cannot, so that a load balancer sends
//! requests elsewhere meanwhile. `/healthz` (served before any layer) stays a liveness check. Every other
//! request passes through untouched.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{Method, Request, Response, StatusCode};
use tower::{Layer, Service};

use super::respond::plain;
use super::{ResBody, boxed};

/// A check of one store: `Err` says why it cannot be reached.
pub type ReadyCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The path it answers on.
pub const PATH: &str = "/readyz";
/// How long the checks may take together before the answer is 503.
const DEADLINE: Duration = Duration::from_secs(2);

/// Answers `/readyz` from `checks`.
#[derive(Clone, Default)]
pub struct ReadyLayer {
    checks: Arc<Vec<(String, ReadyCheck)>>,
}

impl std::fmt::Debug for ReadyLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.checks.iter().map(|(name, _)| name)).finish()
    }
}

impl ReadyLayer {
    /// Checks each named store.
    pub fn new(checks: Vec<(String, ReadyCheck)>) -> ReadyLayer {
        ReadyLayer { checks: Arc::new(checks) }
    }
}

impl<S> Layer<S> for ReadyLayer {
    type Service = Ready<S>;
    fn layer(&self, inner: S) -> Ready<S> {
        Ready { inner, checks: self.checks.clone() }
    }
}

/// The readiness service.
#[derive(Clone)]
pub struct Ready<S> {
    inner: S,
    checks: Arc<Vec<(String, ReadyCheck)>>,
}

impl<S> std::fmt::Debug for Ready<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready").finish_non_exhaustive()
    }
}

impl<S, B> Service<Request<B>> for Ready<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.uri().path() != PATH || req.method() != Method::GET {
            return Box::pin(self.inner.call(req));
        }
        let checks = self.checks.clone();
        Box::pin(async move {
            let all = async {
                for (name, check) in checks.iter() {
                    check().await.map_err(|why| format!("{name}: {why}"))?;
                }
                Ok::<(), String>(())
            };
            let answer = match tokio::time::timeout(DEADLINE, all).await {
                Ok(Ok(())) => plain(StatusCode::OK, "ready"),
                Ok(Err(why)) => plain(StatusCode::SERVICE_UNAVAILABLE, &format!("not ready: {why}")),
                Err(_) => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready: the checks did not end in time"),
            };
            Ok(boxed(answer))
        })
    }
}
