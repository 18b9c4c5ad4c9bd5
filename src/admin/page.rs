//! The audit page at `/audit`: one HTML file, its script and its style sheet, compiled into the binary
//! (no CDN, nothing fetched from elsewhere), served with a Content-Security-Policy that allows this
//! listener's own assets and API only.

use http::{HeaderValue, Response, StatusCode, header};

use super::answer;
use crate::layer::ResBody;

/// Each asset's path, content type and text.
const ASSETS: [(&str, &str, &str); 3] = [
    ("/audit", "text/html; charset=utf-8", include_str!("assets/audit.html")),
    ("/audit.js", "text/javascript; charset=utf-8", include_str!("assets/audit.js")),
    ("/audit.css", "text/css; charset=utf-8", include_str!("assets/audit.css")),
];

/// Only this listener's own files and API; no frames, no forms posted elsewhere.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; \
                      base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True when `path` is one of the page's files.
pub fn is_asset(path: &str) -> bool {
    ASSETS.iter().any(|(p, _, _)| *p == path)
}

/// The asset at `path`, if it is one of the page's.
pub fn serve(path: &str) -> Option<Response<ResBody>> {
    let &(_, content_type, body) = ASSETS.iter().find(|(p, _, _)| *p == path)?;
    let mut res = answer(StatusCode::OK, content_type, body);
    res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    Some(res)
}
