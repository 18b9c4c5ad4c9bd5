//! Helpers shared by the integration tests.

#![allow(dead_code, unreachable_pub)] // helpers are `pub` for the test modules of this one binary

use crossgate::dialect::{RawRequest, WireRequest, WireResponse};
use crossgate::mapping::Mappings;
use http::{HeaderMap, HeaderName, HeaderValue};

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
