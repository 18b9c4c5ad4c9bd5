//! Buffering: the body becomes `Bytes` once, up to a limit, and is kept as received for signature checks.
//!
//! A body over the limit is not read further; the request goes on with an empty body and an
//! [`Oversized`] marker, so that the respond layer can refuse it in the caller's own dialect. A body
//! that fails mid-way or does not arrive within the time limit (a client trickling it) goes on empty
//! with a [`BodyIncomplete`] marker, refused the same way.

use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

use super::kept::Kept;

/// Marks a request whose body was over the limit (the limit in bytes).
#[derive(Debug, Clone, Copy)]
pub struct Oversized(pub usize);

/// Marks a request whose body was cut off or too slow to arrive (why, for the caller).
#[derive(Debug, Clone)]
pub struct BodyIncomplete(pub String);

/// Collects request bodies up to `limit` bytes within `within`.
#[derive(Debug, Clone, Copy)]
pub struct BufferLayer {
    limit: usize,
    within: Duration,
}

impl BufferLayer {
    /// Buffers bodies of at most `limit` bytes that arrive within `within`.
    pub fn new(limit: usize, within: Duration) -> BufferLayer {
        BufferLayer { limit, within }
    }
}

impl<S: Clone> Layer<S> for BufferLayer {
    type Service = Buffer<S>;
    fn layer(&self, inner: S) -> Buffer<S> {
        Buffer { inner: Kept::new(inner), cfg: *self }
    }
}

/// The buffering service. The inner service is called once the body is read: a copy per thread, not
/// a clone per request.
#[derive(Debug, Clone)]
pub struct Buffer<S> {
    inner: Kept<S>,
    cfg: BufferLayer,
}

impl<S, B> Service<Request<B>> for Buffer<S>
where
    S: Service<Request<Bytes>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // The inner service is made ready when the body is read and it is called (`Kept`).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let ready = self.inner.mine();
        let BufferLayer { limit, within } = self.cfg;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let Ok(collected) = tokio::time::timeout(within, Limited::new(body, limit).collect()).await else {
                tracing::debug!(?within, "Request body too slow.");
                let why = format!("The request body did not arrive within {} ms.", within.as_millis());
                parts.extensions.insert(BodyIncomplete(why));
                return ready.call(Request::from_parts(parts, Bytes::new())).await;
            };
            let bytes = match collected {
                Ok(collected) => collected.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    tracing::debug!(limit, "Request body over the limit.");
                    parts.extensions.insert(Oversized(limit));
                    Bytes::new()
                }
                Err(e) => {
                    // The caller's connection failed mid-body: what arrived cannot be a valid request,
                    // and it goes on empty so that it is still audited and answered.
                    tracing::debug!(error = %e, "Request body could not be read.");
                    parts.extensions.insert(BodyIncomplete("The request body was cut off.".to_owned()));
                    Bytes::new()
                }
            };
            ready.call(Request::from_parts(parts, bytes)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    async fn buffered(body: &'static [u8]) -> (Bytes, bool) {
        let svc = ServiceBuilder::new().layer(BufferLayer::new(8, Duration::from_secs(5))).service(service_fn(
            |req: Request<Bytes>| async move {
                let oversized = req.extensions().get::<Oversized>().is_some();
                Ok::<_, std::convert::Infallible>((req.into_body(), oversized))
            },
        ));
        svc.oneshot(Request::new(Full::new(Bytes::from_static(body)))).await.unwrap()
    }

    #[tokio::test]
    async fn bodies_within_the_limit_pass_whole() {
        assert_eq!(buffered(b"12345678").await, (Bytes::from_static(b"12345678"), false));
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_marked_and_not_kept() {
        assert_eq!(buffered(b"123456789").await, (Bytes::new(), true));
    }
}
