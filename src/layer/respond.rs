//! Responding: the one place that turns an outcome or a fault into a wire response.
//!
//! It reads the caller's [`Reply`] (dialect, action, format, request id), which the detect layer put in
//! the request's extensions, calls inward, and renders whatever comes back through
//! [`crate::dialect::encode_response`], so every fault below it reaches the caller in the caller's own
//! dialect. A body the buffer layer refused as too large is answered here too. Its error type is
//! `Infallible`: hyper never drops a connection without an answer. It also records the final code in the
//! audit line.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::{BoxFuture, Either};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service};

use super::body::{BodyIncomplete, Oversized};
use super::kept::call_ready;
use crate::audit::AuditHandle;
use crate::dialect::{self, RawRequest, Reply, WireResponse};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Outcome};

/// Renders outcomes and faults in the caller's dialect.
#[derive(Debug, Clone)]
pub struct RespondLayer {
    maps: Arc<Mappings>,
}

impl RespondLayer {
    /// Renders with `maps`.
    pub fn new(maps: Arc<Mappings>) -> RespondLayer {
        RespondLayer { maps }
    }
}

impl<S> Layer<S> for RespondLayer {
    type Service = Respond<S>;
    fn layer(&self, inner: S) -> Respond<S> {
        Respond { inner, maps: self.maps.clone() }
    }
}

/// The responding service.
#[derive(Debug, Clone)]
pub struct Respond<S> {
    inner: S,
    maps: Arc<Mappings>,
}

impl<S> Service<Request<Bytes>> for Respond<S>
where
    S: Service<Request<Bytes>, Response = Outcome, Error = Fault> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The inner service is made ready within the call (`call_ready`), where its error can be rendered.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let audit = req.extensions().get::<AuditHandle>().cloned().unwrap_or_default();
        let Some(reply) = req.extensions().get::<Reply>().cloned() else {
            return Box::pin(std::future::ready(Ok(plain(StatusCode::INTERNAL_SERVER_ERROR, "undetected request"))));
        };
        let oversized = req.extensions().get::<Oversized>().copied();
        let incomplete = req.extensions().get::<BodyIncomplete>().cloned();
        let maps = self.maps.clone();
        let refused = match (oversized, incomplete) {
            (Some(Oversized(limit)), _) => {
                Some(Fault::caller(Code::InvalidParameter, format!("The request body is larger than {limit} bytes.")))
            }
            (None, Some(BodyIncomplete(why))) => Some(Fault::caller(Code::InvalidParameter, why)),
            (None, None) => None,
        };
        // Called now, not from within the future: that would take a clone of the inner service.
        let work = match refused {
            Some(fault) => Either::Left(std::future::ready(Err(fault))),
            None => Either::Right(call_ready(&mut self.inner, req)),
        };
        Box::pin(async move {
            let result = work.await;
            Ok(render(&reply, &result, &maps, &audit))
        })
    }
}

/// A raw view of a buffered request.
pub fn raw_request<'a>(req: &'a Request<Bytes>, body: &'a Bytes) -> RawRequest<'a> {
    RawRequest {
        method: req.method().as_str(),
        path: req.uri().path(),
        query: req.uri().query().unwrap_or(""),
        headers: req.headers(),
        body,
    }
}

fn render(
    reply: &Reply,
    result: &Result<Outcome, Fault>,
    maps: &Mappings,
    audit: &AuditHandle,
) -> Response<Full<Bytes>> {
    let wire = dialect::encode_response(reply, result, maps);
    audit.update(|e| match result {
        Ok(outcome) => match outcome.first_failure() {
            None => e.code = "Success".into(),
            // The first per-instance failure decides the code (a Tencent caller's whole answer); say why too.
            Some((_, fault)) => {
                e.code = maps.render(reply.dialect, fault).code;
                e.kind = Some(fault.code().name().into());
                e.fault_source = Some(fault.source().name().into());
                e.message = Some(fault.message().to_owned());
            }
        },
        Err(fault) => {
            e.code = maps.render(reply.dialect, fault).code;
            e.kind = Some(fault.code().name().into());
            e.fault_source = Some(fault.source().name().into());
            e.message = Some(fault.message().to_owned());
            if let Some(up) = fault.upstream_error() {
                if !up.request_id.is_empty() && !e.upstream_request_ids.contains(&up.request_id) {
                    e.upstream_request_ids.push(up.request_id.clone());
                }
            }
            if fault.code() == Code::Internal || fault.code() == Code::UpstreamUnclassified {
                tracing::warn!(request_id = %reply.request_id, %fault, "Request failed.");
            }
        }
    });
    into_response(wire)
}

/// A wire response as an HTTP response.
pub fn into_response(wire: WireResponse) -> Response<Full<Bytes>> {
    let mut builder = Response::builder().status(wire.status);
    for (name, value) in wire.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(Bytes::from(wire.body)))
        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

/// A plain-text response, for requests whose dialect is unknown.
pub fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *res.status_mut() = status;
    res.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    res
}
