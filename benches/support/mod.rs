//! What the benchmarks share: the clouds' SDK-made requests in `tests/vectors/*.json` (and requests made
//! by the codecs) held as a server receives them, so every benchmark starts from real client bytes.

#![allow(dead_code)] // each benchmark uses part of it

use std::path::Path;

use crossgate::dialect::{RawRequest, WireRequest};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// The files of known-answer vectors, one per signature scheme.
const VECTOR_FILES: [&str; 4] = [
    "tencent_tc3_hmac_sha256.json",
    "tencent_v1_hmac.json",
    "aliyun_rpc_hmac_sha1.json",
    "aliyun_acs3_hmac_sha256.json",
];

#[derive(Deserialize)]
struct File {
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    inputs: Inputs,
}

#[derive(Deserialize)]
struct Inputs {
    method: String,
    host: String,
    path: String,
    query: String,
    body: String,
    headers: serde_json::Map<String, serde_json::Value>,
    /// `access_key_secret` in the Alibaba files.
    #[serde(alias = "access_key_secret")]
    secret_key: String,
}

/// A request as a server receives it, and the secret its signer used.
#[derive(Debug)]
pub(crate) struct Received {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The signer's secret key.
    pub(crate) secret_key: String,
}

impl Received {
    /// The request as the codecs read it.
    pub(crate) fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            method: &self.method,
            path: &self.path,
            query: &self.query,
            headers: &self.headers,
            body: &self.body,
        }
    }
}

/// The vector `id` from `tests/vectors/`, as received.
pub(crate) fn vector(id: &str) -> Received {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    for name in VECTOR_FILES {
        let text = std::fs::read_to_string(folder.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file: File = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        if let Some(v) = file.vectors.into_iter().find(|v| v.id == id) {
            let mut headers = HeaderMap::new();
            for (n, value) in &v.inputs.headers {
                let value = value.as_str().unwrap_or_else(|| panic!("{id}: header {n} is not a string"));
                headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
            }
            headers.insert("host", HeaderValue::from_str(&v.inputs.host).unwrap());
            return Received {
                method: v.inputs.method,
                path: v.inputs.path,
                query: v.inputs.query,
                headers,
                body: v.inputs.body.into_bytes(),
                secret_key: v.inputs.secret_key,
            };
        }
    }
    panic!("no vector `{id}` in tests/vectors")
}

/// A request made by a codec, as received.
pub(crate) fn received(wire: WireRequest, secret_key: &str) -> Received {
    let mut headers = HeaderMap::new();
    for (n, v) in &wire.headers {
        headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    headers.insert("host", HeaderValue::from_str(&wire.host).unwrap());
    Received {
        method: wire.method.to_owned(),
        path: wire.path.to_owned(),
        query: wire.query,
        headers,
        body: wire.body,
        secret_key: secret_key.to_owned(),
    }
}
