//! The admin listener (`[admin] listen`): the operators' door, never the callers'. It serves
//!
//! - `GET /metrics`: Prometheus (OpenMetrics) text ([`crate::metrics`]);
//! - `GET /api/audit?caller=...&since=1h&...`: the audit trail's records, newest last, as JSON, with
//!   the filters of `crossgate audit query` ([`api`]);
//! - `GET /api/audit/verify`: the hash chain's state, as JSON;
//! - `GET /audit`: a page to search the trail, open a record and see the chain's state ([`page`]), with
//!   no asset from elsewhere;
//! - `GET /healthz`.
//!
//! With `token` set, every route but the page's own files and `/healthz` needs `Authorization: Bearer <token>`,
//! compared in constant time; the page itself holds no data and asks for the token when the API
//! answers 401. Answers are never cached. Trail reads run on the blocking pool, one store connection
//! per request.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;

use crate::audit::query::Trail;
use crate::layer::{ResBody, boxed};
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::secret::Secret;

pub mod api;
pub mod page;

/// Opens the audit trail for reading.
pub type OpenTrail = Arc<dyn Fn() -> Result<Box<dyn Trail>, String> + Send + Sync>;

/// What the admin routes serve from.
#[derive(Clone)]
pub struct Admin {
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The trail.
    pub trail: OpenTrail,
    /// The bearer token, if one is required.
    pub token: Option<Secret>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("token", &self.token).finish_non_exhaustive()
    }
}

/// An answer with a content type, never cached.
pub(crate) fn answer(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<ResBody> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    boxed(res)
}

/// A JSON answer.
pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResBody> {
    answer(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<ResBody> {
    json(status, &serde_json::json!({ "error": message }))
}

impl Admin {
    /// True when the request may see the route (no token configured, or the right one presented).
    fn authorized<B>(&self, req: &Request<B>) -> bool {
        let Some(token) = &self.token else { return true };
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        presented.is_some_and(|p| Secret::new(p) == *token)
    }

    /// Answers one admin request.
    pub async fn handle<B>(self, req: Request<B>) -> Result<Response<ResBody>, Infallible> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut res = error(StatusCode::METHOD_NOT_ALLOWED, "the admin routes answer GET only");
            res.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return Ok(res);
        }
        let path = req.uri().path();
        let open = matches!(path, "/" | "/healthz") || page::is_asset(path);
        if !open && !self.authorized(&req) {
            let mut res = error(StatusCode::UNAUTHORIZED, "this route needs `Authorization: Bearer <admin token>`");
            res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"crossgate\""));
            return Ok(res);
        }
        Ok(match path {
            "/" => {
                let mut res = answer(StatusCode::SEE_OTHER, "text/plain", "see /audit");
                res.headers_mut().insert(header::LOCATION, HeaderValue::from_static("/audit"));
                res
            }
            "/healthz" => answer(StatusCode::OK, "text/plain", "ok"),
            "/metrics" => answer(StatusCode::OK, CONTENT_TYPE, self.metrics.render()),
            "/api/audit" => api::records(self.trail.clone(), req.uri().query().unwrap_or("")).await,
            "/api/audit/verify" => api::verify(self.trail.clone()).await,
            _ => match page::serve(path) {
                Some(res) => res,
                None => error(StatusCode::NOT_FOUND, "no such admin route; try /audit, /metrics or /api/audit"),
            },
        })
    }
}
