//! Request ids: every request gets the RequestId its caller will see in the answer's body (an upper-case
//! UUID, as both clouds write them), in the request's extensions for the layers within, and echoed as
//! the `x-request-id` response header. A caller-sent `x-request-id` is ignored: the id is the gateway's.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

/// The response header that echoes the RequestId.
pub const HEADER: &str = "x-request-id";

/// The gateway's RequestId for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh id.
    pub fn new() -> RequestId {
        let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
        RequestId(uuid::Uuid::new_v4().hyphenated().encode_upper(&mut text).to_owned())
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

/// Gives every request a [`RequestId`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = SetRequestId<S>;
    fn layer(&self, inner: S) -> SetRequestId<S> {
        SetRequestId { inner }
    }
}

/// The request-id service.
#[derive(Debug, Clone)]
pub struct SetRequestId<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for SetRequestId<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = RequestId::new();
        let header = HeaderValue::from_str(&id.0).ok();
        req.extensions_mut().insert(id);
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut res = fut.await?;
            if let Some(value) = header {
                res.headers_mut().insert(HEADER, value);
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{ServiceBuilder, ServiceExt, service_fn};

    #[tokio::test]
    async fn the_id_inside_is_the_id_echoed() {
        let svc = ServiceBuilder::new().layer(RequestIdLayer).service(service_fn(|req: Request<()>| async move {
            let id = req.extensions().get::<RequestId>().cloned().unwrap();
            Ok::<_, std::convert::Infallible>(Response::new(id.0))
        }));
        let req = Request::builder().header(HEADER, "caller-chosen").body(()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.headers()[HEADER], res.body().as_str());
        assert_ne!(res.body(), "caller-chosen");
        assert_eq!(res.body().len(), 36);
        assert_eq!(res.body().to_ascii_uppercase(), *res.body());
    }
}
