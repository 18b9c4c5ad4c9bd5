//! The dialects crossgate speaks, and the types every codec shares.
//!
//! A codec sees bytes and returns data: it never sees a socket or the clock. Every codec module
//! (`tencent_v2`, `tencent_v3`, `aliyun_ecs`) exposes the same functions:
//!
//! - `auth_material(raw) -> Result<AuthMaterial, Fault>`: the signature material, read before anything
//!   else, with the parameters decoded once (`material.input.params`);
//! - `decode_request(raw, material, maps) -> Result<Operation, Fault>`: the canonical operation, after
//!   authentication, reusing the decoded parameters;
//! - `reply(raw, maps, request_id) -> Reply`: what the response encoder needs, read tolerantly so that even
//!   a malformed request can be answered in its own dialect;
//! - `encode_response(reply, result, maps) -> WireResponse`: the exact response the dialect's clients
//!   expect, errors included;
//! - `encode_request(op, ctx, key, maps) -> Result<WireRequest, Fault>`: a signed upstream request;
//! - `decode_response(status, headers, body, op, maps) -> Result<Outcome, Fault>`: the upstream's reply;
//! - `total_count(headers, body) -> Option<usize>`: how many entries a key look-up's reply says match, for
//!   reading an upstream's answer page by page.
//!
//! [`detect()`] tells from a request which dialect and scheme it speaks, and says why when it cannot.

use std::borrow::Cow;

use http::HeaderMap;

use crate::mapping::Mappings;
use crate::model::{Action, Fault, Operation, Outcome, Page};
use crate::secret::Secret;
use crate::sign::{AuthMaterial, Scheme};

pub mod aliyun_ecs;
pub mod detect;
pub mod params;
pub mod tencent_common;
pub mod tencent_v2;
pub mod tencent_v3;

pub use crate::model::{Dialect, Style};
pub use detect::{Detected, detect};

/// A request exactly as received: signatures are checked over these bytes, never over a re-encoding.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// HTTP method as received.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The raw query string, without `?` (empty when absent).
    pub query: &'a str,
    /// Headers as received (the Host header included).
    pub headers: &'a HeaderMap,
    /// The exact body bytes.
    pub body: &'a [u8],
}

impl<'a> RawRequest<'a> {
    /// A header's value, if present and visible ASCII. `name` is in lower case, as header names are
    /// once parsed.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        debug_assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "header names are looked up in lower case");
        // A scan of the few headers a request carries (hyper admits at most 100) costs less than parsing
        // and hashing the name for every look-up.
        let (_, value) = self.headers.iter().find(|(n, _)| n.as_str() == name)?;
        value.to_str().ok()
    }

    /// The Host header as received (empty when absent).
    pub fn host(&self) -> &'a str {
        self.header("host").unwrap_or("")
    }

    /// The media type of the body, without parameters, lower case (borrowed when it arrived so).
    pub fn content_type(&self) -> Option<Cow<'a, str>> {
        self.header("content-type").map(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            if media.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(media.to_ascii_lowercase())
            } else {
                Cow::Borrowed(media)
            }
        })
    }

    /// The body as form text, when it is one: it says it is a form, or says nothing (as the SDKs and
    /// the codecs read it); else empty.
    pub fn form_body(&self) -> &'a str {
        const FORM: &str = "application/x-www-form-urlencoded";
        self.content_type()
            .is_none_or(|media| media == FORM)
            .then(|| std::str::from_utf8(self.body).ok())
            .flatten()
            .unwrap_or("")
    }
}

/// True for `YYYY-MM-DDThh:mm:ssZ` by its shape (Alibaba's UTC time stamps).
pub fn is_iso8601_utc(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The response format a caller asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// JSON (every Tencent reply; Alibaba with `Format=JSON` or ACS3).
    #[default]
    Json,
    /// XML (Alibaba `Format=XML`, and Alibaba RPC with no `Format`).
    Xml,
}

/// What the response encoder needs to know about the request it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The caller's dialect.
    pub dialect: Dialect,
    /// Response shape for the legacy endpoint.
    pub style: Style,
    /// The canonical action, when the wire action was recognised.
    pub action: Option<Action>,
    /// The wire action name as the caller sent it (Alibaba XML names its root `<Action>Response`).
    pub wire_action: String,
    /// JSON or XML.
    pub format: Format,
    /// The RequestId the caller will see.
    pub request_id: String,
    /// Alibaba: the key pair name to echo in a bind reply.
    pub key_name: Option<String>,
    /// The Host the caller addressed (Alibaba errors echo it as `HostId`).
    pub host: String,
    /// The page of a key look-up the caller asked for (Tencent `Offset`/`Limit`, ECS
    /// `PageNumber`/`PageSize`), defaults filled in; `None` when it named none, which answers the first
    /// page of the dialect's default size. `TotalCount` always counts every match.
    pub page: Option<Page>,
}

/// A response ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, `Content-Type` exactly as the dialect's clients expect it.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A signed request for an upstream, ready for the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest {
    /// HTTP method.
    pub method: &'static str,
    /// The Host header (and the host the signature covers).
    pub host: String,
    /// The path.
    pub path: &'static str,
    /// The query string, without `?`.
    pub query: String,
    /// Headers, `Authorization` included where the scheme uses it.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// What an upstream request needs besides the operation: where it goes, as whom, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCtx {
    /// The host the request addresses (with `:port` when not the default).
    pub host: String,
    /// The region to send.
    pub region: String,
    /// SecretId / AccessKeyId.
    pub credential_id: String,
    /// The scheme to sign with.
    pub scheme: Scheme,
    /// Unix seconds, from the caller's clock.
    pub timestamp: i64,
    /// A fresh nonce.
    pub nonce: String,
}

/// Why a request's dialect could not be told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Undetected(pub String);

// === dispatch: one `match` per codec function ===

/// The signature material of a request in `dialect`.
pub fn auth_material<'a>(dialect: Dialect, raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    match dialect {
        Dialect::TencentV2 => tencent_v2::auth_material(raw),
        Dialect::TencentCvm | Dialect::TencentLighthouse => tencent_v3::auth_material(raw),
        Dialect::AliyunEcs => aliyun_ecs::auth_material(raw),
    }
}

/// The canonical operation of an authenticated request in `dialect`.
pub fn decode_request(
    dialect: Dialect,
    raw: &RawRequest<'_>,
    material: &AuthMaterial<'_>,
    maps: &Mappings,
) -> Result<Operation, Fault> {
    match dialect {
        Dialect::TencentV2 => tencent_v2::decode_request(raw, material, maps),
        Dialect::TencentCvm | Dialect::TencentLighthouse => tencent_v3::decode_request(dialect, raw, material, maps),
        Dialect::AliyunEcs => aliyun_ecs::decode_request(raw, material, maps),
    }
}

/// What the response encoder needs to answer a request in `dialect`.
pub fn reply(dialect: Dialect, raw: &RawRequest<'_>, maps: &Mappings, request_id: String) -> Reply {
    match dialect {
        Dialect::TencentV2 => tencent_v2::reply(raw, maps, request_id),
        Dialect::TencentCvm | Dialect::TencentLighthouse => tencent_v3::reply(dialect, raw, maps, request_id),
        Dialect::AliyunEcs => aliyun_ecs::reply(raw, maps, request_id),
    }
}

/// The wire response for an outcome or a fault, in the reply's dialect.
pub fn encode_response(reply: &Reply, result: &Result<Outcome, Fault>, maps: &Mappings) -> WireResponse {
    match reply.dialect {
        Dialect::TencentV2 => tencent_v2::encode_response(reply, result, maps),
        Dialect::TencentCvm | Dialect::TencentLighthouse => tencent_v3::encode_response(reply, result, maps),
        Dialect::AliyunEcs => aliyun_ecs::encode_response(reply, result, maps),
    }
}

/// A signed request in `dialect` for an operation.
pub fn encode_request(
    dialect: Dialect,
    op: &Operation,
    ctx: &UpstreamCtx,
    key: &Secret,
    maps: &Mappings,
) -> Result<WireRequest, Fault> {
    match dialect {
        Dialect::TencentV2 => tencent_v2::encode_request(op, ctx, key, maps),
        Dialect::TencentCvm | Dialect::TencentLighthouse => tencent_v3::encode_request(dialect, op, ctx, key, maps),
        Dialect::AliyunEcs => aliyun_ecs::encode_request(op, ctx, key, maps),
    }
}

/// The outcome (or the upstream's fault) of a reply in `dialect`.
pub fn decode_response(
    dialect: Dialect,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    match dialect {
        Dialect::TencentV2 => tencent_v2::decode_response(status, headers, body, op, maps),
        Dialect::TencentCvm | Dialect::TencentLighthouse => {
            tencent_v3::decode_response(dialect, status, headers, body, op, maps)
        }
        Dialect::AliyunEcs => aliyun_ecs::decode_response(status, headers, body, op, maps),
    }
}

/// How many entries a key look-up's reply in `dialect` says match (`TotalCount`), when it says.
pub fn total_count(dialect: Dialect, headers: &HeaderMap, body: &[u8]) -> Option<usize> {
    match dialect {
        Dialect::TencentV2 | Dialect::TencentCvm | Dialect::TencentLighthouse => {
            tencent_common::envelope::total_count(body)
        }
        Dialect::AliyunEcs => aliyun_ecs::total_count(headers, body),
    }
}
