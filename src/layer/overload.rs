//! Load shedding: at most `max_in_flight` requests are served at once, and a connection accepted past
//! the connection cap is answered once and closed. Either way the caller gets its own dialect's
//! throttling answer at once (`RequestLimitExceeded`, `Throttling.User`, ...), which the clouds' SDKs
//! know to retry later, instead of waiting in a queue it cannot see.

use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use crate::model::{Code, Fault};

/// Marks a request that arrived on a connection accepted past the connection cap.
#[derive(Debug, Clone, Copy)]
pub struct OverConnectionCap(pub usize);

/// The in-flight bound.
#[derive(Debug, Clone)]
pub struct OverloadLayer {
    permits: Arc<Semaphore>,
    max: usize,
}

impl OverloadLayer {
    /// Serves at most `max_in_flight` requests at once.
    pub fn new(max_in_flight: usize) -> OverloadLayer {
        OverloadLayer { permits: Arc::new(Semaphore::new(max_in_flight)), max: max_in_flight }
    }
}

impl<S> Layer<S> for OverloadLayer {
    type Service = Overload<S>;
    fn layer(&self, inner: S) -> Overload<S> {
        Overload { inner, cfg: self.clone() }
    }
}

/// The load-shedding service.
#[derive(Debug, Clone)]
pub struct Overload<S> {
    inner: S,
    cfg: OverloadLayer,
}

impl<S> Service<Request<Bytes>> for Overload<S>
where
    S: Service<Request<Bytes>, Error = Fault>,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<S::Response, Fault>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        if let Some(OverConnectionCap(cap)) = req.extensions().get::<OverConnectionCap>().copied() {
            return Box::pin(std::future::ready(Err(Fault::gateway(
                Code::Throttled,
                format!("The gateway has {cap} connections open, its limit; retry shortly."),
            ))));
        }
        let Ok(permit) = self.cfg.permits.clone().try_acquire_owned() else {
            return Box::pin(std::future::ready(Err(Fault::gateway(
                Code::Throttled,
                format!("The gateway is serving {} requests, its limit; retry shortly.", self.cfg.max),
            ))));
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            drop(permit);
            res
        })
    }
}
