//! Signed requests, each made afresh: the library's own caller codecs build and sign them exactly as the
//! clouds' SDKs do, so the gateway's signature and replay checks stay on under load.
//!
//! Every request binds a distinct instance id (the prefix and a base-36 sequence number), so no two
//! requests share a body and no two TC3 signatures are alike, even within one second (TC3 time stamps are
//! whole seconds, and the gateway refuses a TC3 signature it has seen). Legacy v2 requests carry the
//! sequence number as their `Nonce`. The sequence starts at a random point, so two runs against one
//! gateway do not repeat each other's requests.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use crossgate::dialect::{self, Dialect, UpstreamCtx, WireRequest};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Keys, Operation};
use crossgate::secret::Secret;
use crossgate::sign::Scheme;
use http_body_util::Full;

use crate::options::{LoadDialect, Options};

/// How many distinct instance ids one prefix gives: 8 base-36 characters.
const ID_SPACE: u64 = 36u64.pow(8);
const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Makes the signed requests of one run.
#[derive(Debug)]
pub(crate) struct RequestMaker {
    maps: Mappings,
    dialect: Dialect,
    scheme: Scheme,
    host: String,
    region: String,
    secret_id: String,
    secret: Secret,
    instance_prefix: String,
    key_id: String,
    next: AtomicU64,
}

impl RequestMaker {
    /// A maker for the run `options` describe, its sequence starting at `first`.
    pub(crate) fn new(options: &Options, first: u64) -> Result<RequestMaker, String> {
        let (dialect, scheme) = match options.dialect {
            LoadDialect::Tc3 => (Dialect::TencentCvm, Scheme::Tc3),
            LoadDialect::V2 => (Dialect::TencentV2, Scheme::TencentV1Sha256),
        };
        Ok(RequestMaker {
            maps: Mappings::embedded().map_err(|e| format!("the embedded mappings do not load: {e}"))?,
            dialect,
            scheme,
            host: options.target.host.clone(),
            region: options.region.clone(),
            secret_id: options.secret_id.clone(),
            secret: Secret::new(options.secret_key.as_str()),
            instance_prefix: options.instance_prefix.clone(),
            key_id: options.key_id.clone(),
            next: AtomicU64::new(first),
        })
    }

    /// A random starting point for the sequence.
    pub(crate) fn random_start() -> u64 {
        (uuid::Uuid::new_v4().as_u128() as u64) % ID_SPACE
    }

    /// The next request, signed at `now` (Unix seconds).
    pub(crate) fn make(&self, now: i64) -> Result<WireRequest, String> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut op = Operation::new(Action::AssociateKeys);
        op.region = Some(self.region.clone());
        op.instances = vec![instance_id(&self.instance_prefix, n)];
        op.keys = Keys::Ids(vec![self.key_id.clone()]);
        let ctx = UpstreamCtx {
            host: self.host.clone(),
            region: self.region.clone(),
            credential_id: self.secret_id.clone(),
            scheme: self.scheme,
            timestamp: now,
            // A positive integer, distinct for every request of the run.
            nonce: (n + 1).to_string(),
        };
        dialect::encode_request(self.dialect, &op, &ctx, &self.secret, &self.maps)
            .map_err(|f| format!("cannot sign a request: {}", f.message()))
    }
}

/// The instance id of sequence number `n`: the prefix and 8 base-36 characters.
pub(crate) fn instance_id(prefix: &str, n: u64) -> String {
    let mut digits = [b'0'; 8];
    let mut rest = n % ID_SPACE;
    for d in digits.iter_mut().rev() {
        *d = BASE36[(rest % 36) as usize];
        rest /= 36;
    }
    let mut id = String::with_capacity(prefix.len() + 8);
    id.push_str(prefix);
    id.extend(digits.iter().map(|&b| b as char));
    id
}

/// The wire request as an HTTP/1.1 request over an open connection (origin-form URI, Host header).
pub(crate) fn to_http(wire: WireRequest) -> Result<http::Request<Full<Bytes>>, String> {
    let uri = if wire.query.is_empty() { wire.path.to_owned() } else { format!("{}?{}", wire.path, wire.query) };
    let mut req = http::Request::builder().method(wire.method).uri(uri).header(http::header::HOST, wire.host);
    for (name, value) in wire.headers {
        if !name.eq_ignore_ascii_case("host") {
            req = req.header(name, value);
        }
    }
    req.body(Full::new(Bytes::from(wire.body))).map_err(|e| format!("cannot build a request: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use clap::Parser;
    use crossgate::dialect::RawRequest;
    use crossgate::sign;
    use http::{HeaderMap, HeaderName, HeaderValue};

    use super::*;

    const ID: &str = "AKIDloadloadloadloadloadload00000";
    const KEY: &str = "load-caller-secret";

    fn maker(dialect: &str, prefix: &str, first: u64) -> RequestMaker {
        let options = Options::try_parse_from([
            "crossgate-load",
            "--target",
            "http://127.0.0.1:8080",
            "--dialect",
            dialect,
            "--secret-id",
            ID,
            "--secret-key",
            KEY,
            "--instance-prefix",
            prefix,
        ])
        .unwrap();
        RequestMaker::new(&options, first).unwrap()
    }

    /// Verifies `wire` as the gateway does and returns the operation it carries.
    fn verified(wire: &WireRequest, maps: &Mappings, secret: &str) -> Result<Operation, String> {
        let mut headers = HeaderMap::new();
        for (n, v) in &wire.headers {
            headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        headers.insert("host", HeaderValue::from_str(&wire.host).unwrap());
        let raw = RawRequest {
            method: wire.method,
            path: wire.path,
            query: &wire.query,
            headers: &headers,
            body: &wire.body,
        };
        let found = dialect::detect(&raw, maps).map_err(|e| e.to_string())?;
        let material = dialect::auth_material(found.dialect, &raw).map_err(|f| f.message().to_owned())?;
        assert_eq!(material.credential_id, ID);
        sign::verify(&material, &Secret::new(secret)).map_err(|_| "the signature does not match".to_owned())?;
        dialect::decode_request(found.dialect, &raw, &material, maps).map_err(|f| f.message().to_owned())
    }

    #[test]
    fn instance_ids_are_eight_base36_characters_after_the_prefix() {
        assert_eq!(instance_id("ins-", 0), "ins-00000000");
        assert_eq!(instance_id("ins-", 35), "ins-0000000z");
        assert_eq!(instance_id("i-", 36), "i-00000010");
        assert_eq!(instance_id("ins-", ID_SPACE - 1), "ins-zzzzzzzz");
        assert_eq!(instance_id("ins-", ID_SPACE), "ins-00000000", "the sequence wraps within the id space");
    }

    #[test]
    fn requests_in_both_dialects_pass_the_gateways_verifier() {
        let maps = Mappings::embedded().unwrap();
        for (dialect, expected) in [("tc3", Dialect::TencentCvm), ("v2", Dialect::TencentV2)] {
            let m = maker(dialect, "ins-", 1234);
            assert_eq!(m.dialect, expected);
            let wire = m.make(1_714_550_400).unwrap();
            let op = verified(&wire, &maps, KEY).unwrap_or_else(|e| panic!("{dialect}: {e}"));
            assert_eq!(op.action, Action::AssociateKeys, "{dialect}");
            assert_eq!(op.instances, vec![instance_id("ins-", 1234)], "{dialect}");
            assert_eq!(op.keys, Keys::Ids(vec!["skey-4e5ty7i8".into()]), "{dialect}");
            assert!(verified(&wire, &maps, "another-secret").is_err(), "{dialect}: verifies only with its own key");
        }
    }

    #[test]
    fn requests_of_one_second_differ_in_body_and_signature() {
        for dialect in ["tc3", "v2"] {
            let m = maker(dialect, "i-", RequestMaker::random_start());
            let wires: Vec<WireRequest> = (0..200).map(|_| m.make(1_714_550_400).unwrap()).collect();
            let bodies: HashSet<&[u8]> = wires.iter().map(|w| w.body.as_slice()).collect();
            assert_eq!(bodies.len(), wires.len(), "{dialect}: bodies repeat");
            let signatures: HashSet<String> = wires
                .iter()
                .map(|w| {
                    let auth = w.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization"));
                    auth.map(|(_, v)| v.clone()).unwrap_or_else(|| String::from_utf8_lossy(&w.body).into_owned())
                })
                .collect();
            assert_eq!(signatures.len(), wires.len(), "{dialect}: signatures repeat");
        }
    }

    #[test]
    fn an_http_request_carries_the_signed_host_and_every_header() {
        let wire = maker("tc3", "ins-", 7).make(1_714_550_400).unwrap();
        let n_headers = wire.headers.len();
        let body = wire.body.clone();
        let req = to_http(wire).unwrap();
        assert_eq!(req.uri(), "/");
        assert_eq!(req.headers()["host"], "127.0.0.1:8080");
        assert_eq!(req.headers().len(), n_headers + 1);
        assert!(req.headers()["authorization"].to_str().unwrap().starts_with("TC3-HMAC-SHA256 "));
        assert_eq!(http_body::Body::size_hint(req.body()).exact(), Some(body.len() as u64));
    }
}
