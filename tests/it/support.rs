//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)] // helpers are `pub` for the test modules of this one binary

use crossgate::dialect::{RawRequest, WireRequest, WireResponse};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Answer, InstanceResult, Keys, Operation};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

/// The embedded mapping tables.
pub fn maps() -> Mappings {
    Mappings::embedded().expect("embedded mappings load")
}

/// A received request, owned, that lends itself out as a [`RawRequest`].
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Received {
    /// Builds a received request from parts; `headers` are `(name, value)` pairs.
    pub fn new(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) -> Received {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        Received { method: method.into(), path: path.into(), query: query.into(), headers: map, body: body.to_vec() }
    }

    /// What a server receives when a client sends `wire`.
    pub fn from_wire(wire: &WireRequest) -> Received {
        let mut map = HeaderMap::new();
        for (n, v) in &wire.headers {
            map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        if !map.contains_key("host") {
            map.insert("host", HeaderValue::from_str(&wire.host).unwrap());
        }
        Received {
            method: wire.method.into(),
            path: wire.path.into(),
            query: wire.query.clone(),
            headers: map,
            body: wire.body.clone(),
        }
    }

    /// The raw view a codec decodes.
    pub fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// A response's headers as a map, for decoders.
pub fn header_map(resp: &WireResponse) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (n, v) in &resp.headers {
        map.append(HeaderName::from_static(n), HeaderValue::from_str(v).unwrap());
    }
    map
}

// === golden files and canonical values ===

impl Received {
    /// Reads a request in the `request.http` golden form: a request line `METHOD /path?query HTTP/1.1`,
    /// `Name: value` header lines, an empty line, then the body exactly.
    pub fn parse_http(text: &str) -> Received {
        let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
        let mut lines = head.lines();
        let request_line = lines.next().expect("a request line");
        let mut parts = request_line.split(' ');
        let method = parts.next().expect("a method");
        let target = parts.next().expect("a request target");
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let headers: Vec<(&str, &str)> =
            lines.map(|l| l.split_once(": ").unwrap_or_else(|| panic!("header line `{l}`"))).collect();
        Received::new(method, path, query, &headers, body.as_bytes())
    }

    /// Writes the request in the `request.http` golden form (the inverse of [`Received::parse_http`]).
    pub fn to_http(&self) -> String {
        let mut out = format!("{} {}", self.method, self.path);
        if !self.query.is_empty() {
            out.push('?');
            out.push_str(&self.query);
        }
        out.push_str(" HTTP/1.1\n");
        for (n, v) in &self.headers {
            out.push_str(&format!("{}: {}\n", n, v.to_str().unwrap()));
        }
        out.push('\n');
        out.push_str(std::str::from_utf8(&self.body).expect("a UTF-8 body"));
        out
    }
}

/// An operation as the `operation.json` golden files write it.
pub fn op_json(op: &crossgate::model::Operation) -> serde_json::Value {
    use crossgate::model::Keys;
    let keys = match &op.keys {
        Keys::Ids(ids) => serde_json::json!({ "ids": ids }),
        Keys::Names(names) => serde_json::json!({ "names": names }),
    };
    serde_json::json!({
        "action": op.action.name(),
        "region": op.region,
        "instances": op.instances,
        "keys": keys,
        "force_stop": op.force_stop,
    })
}

/// Compares a file under `tests/golden/` with what a test produced; `BLESS=1` writes it instead.
pub fn golden(path: &str, got: &str) {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(path);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(&full, got).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&full)
        .unwrap_or_else(|e| panic!("{}: {e} (run with BLESS=1 to create it)", full.display()));
    assert!(expected == got, "{path} differs (BLESS=1 rewrites it)\n--- expected\n{expected}\n--- got\n{got}\n");
}

/// Reads a file under `tests/golden/`.
pub fn golden_file(path: &str) -> String {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The vectors of one file under `tests/vectors/`, by id.
pub fn vectors(file: &str) -> Vec<serde_json::Value> {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(file);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
    parsed["vectors"].as_array().unwrap().clone()
}

/// The request a vector records, as a server receives it.
pub fn vector_request(v: &serde_json::Value) -> Received {
    let i = &v["inputs"];
    let s = |k: &str| i[k].as_str().unwrap();
    let headers: Vec<(&str, &str)> =
        i["headers"].as_object().unwrap().iter().map(|(n, v)| (n.as_str(), v.as_str().unwrap())).collect();
    Received::new(s("method"), s("path"), s("query"), &headers, s("body").as_bytes())
}

/// A request signed with Tencent signature v1 over exactly `params` (which carry `SecretId`, `Nonce`,
/// `Timestamp`, ... as the test wants them): GET puts them in the query, POST in a form body.
pub fn v1_signed(
    method: &str,
    host: &str,
    path: &str,
    params: &[(&str, &str)],
    scheme: crossgate::sign::Scheme,
    key: &crossgate::secret::Secret,
) -> Received {
    use std::borrow::Cow;
    let input = crossgate::sign::SignInput {
        method,
        host,
        path,
        params: params.iter().map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))).collect(),
        ..Default::default()
    };
    let signed = crossgate::sign::sign(scheme, &input, "", key);
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.push(("Signature", &signed.signature));
    let encoded = crossgate::sign::encoding::form_encode(&all);
    if method == "GET" {
        Received::new(method, path, &encoded, &[("host", host)], b"")
    } else {
        let headers = [("host", host), ("content-type", "application/x-www-form-urlencoded")];
        Received::new(method, path, "", &headers, encoded.as_bytes())
    }
}

// === operations, for the codec tests ===

/// An operation in the Tencent region the codec tests use.
pub fn op(action: Action, instances: &[&str], keys: Keys, force_stop: Option<bool>) -> Operation {
    Operation {
        action,
        region: Some("ap-guangzhou".into()),
        instances: instances.iter().map(|s| s.to_string()).collect(),
        keys,
        force_stop,
        public_key: None,
        page: None,
    }
}

/// Key pair ids.
pub fn ids(v: &[&str]) -> Keys {
    Keys::Ids(v.iter().map(|s| s.to_string()).collect())
}

/// A bind answer in which every instance of `op` succeeded.
pub fn all_ok(op: &Operation) -> Answer {
    Answer::Bind(op.instances.iter().map(|i| InstanceResult { instance: i.clone(), result: Ok(()) }).collect())
}

/// Distinct ids: `prefix` and 8 lower-case alphanumerics.
pub fn arb_ids(prefix: &'static str, len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-z0-9]{8}", len)
        .prop_filter("unique", |v| v.iter().enumerate().all(|(i, x)| !v[..i].contains(x)))
        .prop_map(move |v| v.into_iter().map(|s| format!("{prefix}{s}")).collect())
}

/// The request as bytes on the wire (HTTP/1.1), asking to close the connection after the answer.
pub fn raw_http(wire: &WireRequest) -> Vec<u8> {
    let query = if wire.query.is_empty() { String::new() } else { format!("?{}", wire.query) };
    let mut out = format!("{} {}{query} HTTP/1.1\r\nhost: {}\r\n", wire.method, wire.path, wire.host);
    for (n, v) in &wire.headers {
        if !n.eq_ignore_ascii_case("host") {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
    }
    out.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", wire.body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&wire.body);
    bytes
}
