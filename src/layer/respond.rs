//! Detection and responding: the one place that turns an outcome or a fault into a wire response.
//!
//! Before calling inward it tells the request's dialect ([`crate::dialect::detect`]) and reads the
//! [`Reply`] (dialect, action, format, request id) into the request's extensions; a request whose dialect
//! cannot be told gets a plain-text 400 saying why. After the inner service answers, it renders the
//! outcome or the fault through [`crate::dialect::encode_response`]. It also bounds the whole request in
//! time: an inner service that does not finish in time becomes an upstream-timeout fault, rendered in the
//! caller's dialect. Its error type is `Infallible`: hyper never drops a connection without an answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tower::{Layer, Service};

use super::audit::AuditHandle;
use super::body::Oversized;
use crate::dialect::{self, RawRequest, Reply, WireResponse};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Outcome};

/// Detects, bounds in time and renders.
#[derive(Debug, Clone)]
pub struct RespondLayer {
    maps: Arc<Mappings>,
    timeout: Duration,
}

impl RespondLayer {
    /// Renders with `maps`; a request taking longer than `timeout` is answered with a timeout fault.
    pub fn new(maps: Arc<Mappings>, timeout: Duration) -> RespondLayer {
        RespondLayer { maps, timeout }
    }
}

impl<S> Layer<S> for RespondLayer {
    type Service = Respond<S>;
    fn layer(&self, inner: S) -> Respond<S> {
        Respond { inner, cfg: self.clone() }
    }
}

/// The responding service.
#[derive(Debug, Clone)]
pub struct Respond<S> {
    inner: S,
    cfg: RespondLayer,
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
        // The inner service is driven to readiness inside the call, where its error can be rendered.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        let audit = req.extensions().get::<AuditHandle>().cloned().unwrap_or_default();
        let request_id = audit.snapshot().request_id;
        let maps = self.cfg.maps.clone();
        let reply = {
            let (parts, body) = (&req, req.body());
            let raw = raw_request(parts, body);
            match dialect::detect(&raw, &maps) {
                Ok(found) => dialect::reply(found.dialect, &raw, &maps, request_id),
                Err(why) => {
                    audit.update(|e| {
                        e.code = "Undetected".into();
                        e.message = Some(why.to_string());
                    });
                    return Box::pin(std::future::ready(Ok(plain(StatusCode::BAD_REQUEST, &why.to_string()))));
                }
            }
        };
        audit.update(|e| {
            e.dialect = Some(reply.dialect.name().into());
            e.action = Some(reply.wire_action.clone());
        });
        let oversized = req.extensions().get::<Oversized>().copied();
        req.extensions_mut().insert(reply.clone());
        let mut inner = self.inner.clone();
        let timeout = self.cfg.timeout;
        Box::pin(async move {
            let result = match oversized {
                Some(Oversized(limit)) => Err(Fault::caller(
                    Code::InvalidParameter,
                    format!("The request body is larger than {limit} bytes."),
                )),
                None => match tokio::time::timeout(timeout, tower::ServiceExt::oneshot(&mut inner, req)).await {
                    Ok(r) => r,
                    Err(_) => Err(Fault::gateway(
                        Code::UpstreamTimeout,
                        format!("The request did not complete within {} ms.", timeout.as_millis()),
                    )),
                },
            };
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
