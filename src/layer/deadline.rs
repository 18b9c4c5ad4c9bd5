//! The deadline: a request that has not been answered in time becomes an upstream-timeout fault, which
//! the respond layer renders in the caller's own dialect (tower's `Timeout` would give an error no dialect
//! can render).
//!
//! The deadline is also put into the request as a [`RequestDeadline`], so that upstream calls, their
//! retries and their quota waits end by it themselves. The layer's own cut comes a little later
//! ([`GRACE`]): admitted work ends on its own terms, and is recorded, rather than being cut mid-call.

use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::BoxFuture;
use tower::{Layer, Service};

use crate::model::{Code, Fault};

/// When the request must be answered by: upstream calls end by it.
#[derive(Debug, Clone, Copy)]
pub struct RequestDeadline(pub Instant);

/// How much longer than the deadline the layer waits before cutting the work off itself.
pub const GRACE: Duration = Duration::from_millis(500);

/// Bounds every request in time.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    /// Requests taking longer than `limit` fail with [`Code::UpstreamTimeout`].
    pub fn new(limit: Duration) -> DeadlineLayer {
        DeadlineLayer { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner, limit: self.limit }
    }
}

/// The deadline service.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Error = Fault>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<S::Response, Fault>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let limit = self.limit;
        req.extensions_mut().insert(RequestDeadline(Instant::now() + limit));
        let fut = self.inner.call(req);
        Box::pin(async move {
            tokio::time::timeout(limit + GRACE, fut).await.unwrap_or_else(|_| {
                Err(Fault::gateway(
                    Code::UpstreamTimeout,
                    format!("The request did not complete within {} ms.", limit.as_millis()),
                ))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    #[tokio::test(start_paused = true)]
    async fn a_late_answer_becomes_a_timeout_fault() {
        let slow = service_fn(|_: http::Request<()>| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, Fault>("late")
        });
        let svc = ServiceBuilder::new().layer(DeadlineLayer::new(Duration::from_secs(1))).service(slow);
        let fault = svc.oneshot(http::Request::new(())).await.unwrap_err();
        assert_eq!(fault.code(), Code::UpstreamTimeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_timely_answer_passes() {
        let fast = service_fn(|req: http::Request<()>| async move {
            // The deadline travels with the request, for the upstream calls.
            assert!(req.extensions().get::<RequestDeadline>().is_some());
            Ok::<_, Fault>("on time")
        });
        let svc = ServiceBuilder::new().layer(DeadlineLayer::new(Duration::from_secs(1))).service(fast);
        assert_eq!(svc.oneshot(http::Request::new(())).await.unwrap(), "on time");
    }
}
