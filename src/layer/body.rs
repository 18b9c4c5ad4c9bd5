//! Buffering: the body becomes `Bytes` once, up to a limit, and is kept as received for signature checks.
//!
//! A body over the limit is not read further; the request goes on with an empty body and an
//! [`Oversized`] marker, so that the respond layer can refuse it in the caller's own dialect.

use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use http_body_util::{BodyExt, Limited};
use tower::{Layer, Service};

/// Marks a request whose body was over the limit (the limit in bytes).
#[derive(Debug, Clone, Copy)]
pub struct Oversized(pub usize);

/// Collects request bodies up to `limit` bytes.
#[derive(Debug, Clone, Copy)]
pub struct BufferLayer {
    limit: usize,
}

impl BufferLayer {
    /// Buffers bodies of at most `limit` bytes.
    pub fn new(limit: usize) -> BufferLayer {
        BufferLayer { limit }
    }
}

impl<S> Layer<S> for BufferLayer {
    type Service = Buffer<S>;
    fn layer(&self, inner: S) -> Buffer<S> {
        Buffer { inner, limit: self.limit }
    }
}

/// The buffering service.
#[derive(Debug, Clone)]
pub struct Buffer<S> {
    inner: S,
    limit: usize,
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

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // Move the instance poll_ready made ready into the future and leave a clone behind.
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
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
        let svc =
            ServiceBuilder::new().layer(BufferLayer::new(8)).service(service_fn(|req: Request<Bytes>| async move {
                let oversized = req.extensions().get::<Oversized>().is_some();
                Ok::<_, std::convert::Infallible>((req.into_body(), oversized))
            }));
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
