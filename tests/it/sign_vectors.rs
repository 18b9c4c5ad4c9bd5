//! The known-answer vectors in `tests/vectors/` (copies of `shared/vectors/`, made by the clouds' own
//! SDKs; `tests/vectors/README.md` explains them), one `#[test]` per vector id.
//!
//! For every vector:
//! 1. decode the raw query and body with `form_decode` and check they give exactly the vector's decoded
//!    parameters (and that `form_encode` gives the wire form back);
//! 2. sign, comparing every intermediate string the vector records, then the signature and the
//!    Authorization header;
//! 3. build `AuthMaterial` from the request as received (the Authorization header through
//!    `parse_authorization`) and check that `verify` accepts it;
//! 4. flip one byte of each signed part and check that `verify` refuses, naming a sensible part and
//!    giving the string to sign whenever it can be computed; parts that are not signed are flipped too,
//!    and must still verify.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crossgate::secret::Secret;
use crossgate::sign::encoding::{form_decode, form_encode};
use crossgate::sign::{self, AuthMaterial, Part, Scheme, SignInput, Signed, acs3, aliyun_rpc, tc3, tencent_v1};
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

macro_rules! vectors {
    ($($test:ident: $id:literal,)+) => {
        $(
            #[test]
            fn $test() {
                run($id);
            }
        )+

        /// Every id with a test above.
        const TESTED: &[&str] = &[$($id),+];
    };
}

vectors! {
    tc3_cvm_associate_post_json: "tc3-cvm-associate-post-json",
    tc3_cvm_disassociate_post_json_many: "tc3-cvm-disassociate-post-json-many",
    tc3_lighthouse_associate_post_json: "tc3-lighthouse-associate-post-json",
    tc3_cvm_describekeypairs_post_json_unicode: "tc3-cvm-describekeypairs-post-json-unicode",
    tc3_cvm_describeinstances_post_json: "tc3-cvm-describeinstances-post-json",
    tc3_cvm_associate_get: "tc3-cvm-associate-get",
    tc3_lighthouse_describekeypairs_get_awkward: "tc3-lighthouse-describekeypairs-get-awkward",
    tc3_lighthouse_disassociate_get_many: "tc3-lighthouse-disassociate-get-many",
    tc3_cvm_post_json_raw_utf8: "tc3-cvm-post-json-raw-utf8",
    tc3_doc_example_signed_x_tc_action: "tc3-doc-example-signed-x-tc-action",
    v1_api3_cvm_associate_get_hmacsha1: "v1-api3-cvm-associate-get-hmacsha1",
    v1_api3_cvm_associate_post_hmacsha256: "v1-api3-cvm-associate-post-hmacsha256",
    v1_api3_lighthouse_describekeypairs_get_hmacsha256_awkward: "v1-api3-lighthouse-describekeypairs-get-hmacsha256-awkward",
    v1_api3_cvm_disassociate_post_hmacsha1: "v1-api3-cvm-disassociate-post-hmacsha1",
    v1_legacy_cvm_associate_get_hmacsha256: "v1-legacy-cvm-associate-get-hmacsha256",
    v1_legacy_cvm_disassociate_post_hmacsha1: "v1-legacy-cvm-disassociate-post-hmacsha1",
    v1_legacysdk_associate_get_hmacsha1_1based: "v1-legacysdk-associate-get-hmacsha1-1based",
    v1_legacysdk_bindinstancekey_get_hmacsha1: "v1-legacysdk-bindinstancekey-get-hmacsha1",
    v1_legacysdk_unbindinstancekey_post_hmacsha256: "v1-legacysdk-unbindinstancekey-post-hmacsha256",
    v1_legacysdk_bindinstancekey_post_hmacsha1_many: "v1-legacysdk-bindinstancekey-post-hmacsha1-many",
    v1_legacysdk_describekeypairs_get_hmacsha256_awkward: "v1-legacysdk-describekeypairs-get-hmacsha256-awkward",
    v1_doc_example_describeinstances_hmacsha1: "v1-doc-example-describeinstances-hmacsha1",
    rpc_doc_example_describeregions: "rpc-doc-example-describeregions",
    rpc_attachkeypair_post_query_json: "rpc-attachkeypair-post-query-json",
    rpc_detachkeypair_get_xml: "rpc-detachkeypair-get-xml",
    rpc_attachkeypair_get_50_awkward_name: "rpc-attachkeypair-get-50-awkward-name",
    rpc_detachkeypair_post_form_body: "rpc-detachkeypair-post-form-body",
    rpc_describekeypairs_get_empty_value: "rpc-describekeypairs-get-empty-value",
    rpc_describeinstances_get: "rpc-describeinstances-get",
    rpc_tea_v2_attachkeypair_post: "rpc-tea-v2-attachkeypair-post",
    acs3_attachkeypair_post: "acs3-attachkeypair-post",
    acs3_detachkeypair_post_awkward: "acs3-detachkeypair-post-awkward",
    acs3_describeinstances_50: "acs3-describeinstances-50",
    acs3_describekeypairs: "acs3-describekeypairs",
    acs3_detachkeypair_post_form_body: "acs3-detachkeypair-post-form-body",
}

#[test]
fn every_vector_in_the_files_has_a_test() {
    let tested: BTreeSet<&str> = TESTED.iter().copied().collect();
    assert_eq!(tested.len(), TESTED.len(), "an id is listed twice in vectors!");
    let in_files: BTreeSet<&str> = vectors().iter().map(|(_, v)| v.id.as_str()).collect();
    assert_eq!(in_files.len(), vectors().len(), "an id appears twice in tests/vectors");
    assert_eq!(tested, in_files, "vectors! must list exactly the ids in tests/vectors");
}

// === the vectors ===

/// Which scheme a file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    TencentV1,
    Tc3,
    AliyunRpc,
    Acs3,
}

const FILES: [(&str, Family); 4] = [
    ("tencent_v1_hmac.json", Family::TencentV1),
    ("tencent_tc3_hmac_sha256.json", Family::Tc3),
    ("aliyun_rpc_hmac_sha1.json", Family::AliyunRpc),
    ("aliyun_acs3_hmac_sha256.json", Family::Acs3),
];

#[derive(Debug, Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
struct Vector {
    id: String,
    inputs: Inputs,
    intermediate: BTreeMap<String, String>,
    expected: Expected,
}

#[derive(Debug, Deserialize)]
struct Inputs {
    method: String,
    path: String,
    query: String,
    body: String,
    headers: BTreeMap<String, String>,
    #[serde(alias = "access_key_id")]
    secret_id: String,
    #[serde(alias = "access_key_secret")]
    secret_key: String,
    service: Option<String>,
    body_sha256: Option<String>,
    params_decoded: Option<Value>,
    query_decoded: Option<Vec<(String, String)>>,
    body_decoded: Option<Vec<(String, String)>>,
}

#[derive(Debug, Deserialize)]
struct Expected {
    signature: String,
    authorization: Option<String>,
}

fn vectors() -> &'static [(Family, Vector)] {
    static VECTORS: OnceLock<Vec<(Family, Vector)>> = OnceLock::new();
    VECTORS.get_or_init(|| {
        let mut all = Vec::new();
        for (file, family) in FILES {
            let path = format!("{}/tests/vectors/{file}", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let parsed: VectorFile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
            all.extend(parsed.vectors.into_iter().map(|v| (family, v)));
        }
        all
    })
}

fn run(id: &str) {
    let (family, v) = vectors().iter().find(|(_, v)| v.id == id).unwrap_or_else(|| panic!("no vector {id}"));
    let key = Secret::new(v.inputs.secret_key.as_str());
    check_decoding(*family, v);
    let received = Received::from_vector(*family, v);
    check_signing(*family, v, &received, &key);
    check_verify(*family, v, &received, &key);
    check_flips(*family, v, &received, &key);
}

// === 1. decoding ===

fn decoded(raw: &str) -> Vec<(String, String)> {
    form_decode(raw).unwrap().into_iter().map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
}

fn check_decoding(family: Family, v: &Vector) {
    let (id, i) = (&v.id, &v.inputs);
    match family {
        Family::TencentV1 => {
            let want: Vec<(String, String)> = serde_json::from_value(i.params_decoded.clone().unwrap()).unwrap();
            assert_eq!([decoded(&i.query), decoded(&i.body)].concat(), want, "{id}: form_decode(query + body)");
            let wire = if i.method == "GET" { &i.query } else { &i.body };
            assert_eq!(&form_encode(&want), wire, "{id}: form_encode(params) is the wire form");
        }
        Family::Tc3 => match i.params_decoded.as_ref().unwrap() {
            list @ Value::Array(_) => {
                let want: Vec<(String, String)> = serde_json::from_value(list.clone()).unwrap();
                assert_eq!(decoded(&i.query), want, "{id}: form_decode(query)");
                assert_eq!(form_encode(&want), i.query, "{id}: form_encode(params) is the query");
            }
            object => {
                assert_eq!(i.query, "", "{id}: a JSON POST has no query");
                let body: Value = serde_json::from_str(&i.body).unwrap();
                assert_eq!(&body, object, "{id}: the body is the decoded parameters");
            }
        },
        Family::AliyunRpc => {
            let (want_query, want_body) = (i.query_decoded.as_ref().unwrap(), i.body_decoded.as_ref().unwrap());
            assert_eq!(&decoded(&i.query), want_query, "{id}: form_decode(query)");
            assert_eq!(&decoded(&i.body), want_body, "{id}: form_decode(body)");
            // aliyun-python-sdk-core sends %20 in the URL, the tea SDK `+`; `+` itself is always %2B.
            let query = form_encode(want_query);
            assert!(query == i.query || query.replace('+', "%20") == i.query, "{id}: form_encode(query params)");
            assert_eq!(&form_encode(want_body), &i.body, "{id}: form_encode(body params)");
        }
        Family::Acs3 => {
            let want = i.query_decoded.as_ref().unwrap();
            assert_eq!(&decoded(&i.query), want, "{id}: form_decode(query)");
            assert_eq!(&form_encode(want), &i.query, "{id}: form_encode(query params)");
        }
    }
}

// === the request as received ===

/// A request as a codec would hand it to `verify`, owned so that tests can change one part of it.
#[derive(Debug, Clone)]
struct Received {
    scheme: Scheme,
    credential_id: String,
    signature: String,
    timestamp: i64,
    nonce: Option<String>,
    scope_date: Option<String>,
    scope_service: Option<String>,
    signed_headers: Vec<String>,
    method: String,
    host: String,
    path: String,
    query: String,
    params: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    input_timestamp: i64,
    service: String,
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn header<'a>(v: &'a Vector, name: &str) -> &'a str {
    let found = v.inputs.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name));
    found.map(|(_, value)| value.as_str()).unwrap_or_else(|| panic!("{}: no {name} header", v.id))
}

fn unix(rfc3339: &str) -> i64 {
    OffsetDateTime::parse(rfc3339, &Rfc3339).unwrap().unix_timestamp()
}

impl Received {
    fn from_vector(family: Family, v: &Vector) -> Received {
        let i = &v.inputs;
        let mut r = Received {
            scheme: Scheme::Tc3,
            credential_id: String::new(),
            signature: String::new(),
            timestamp: 0,
            nonce: None,
            scope_date: None,
            scope_service: None,
            signed_headers: Vec::new(),
            method: i.method.clone(),
            host: header(v, "host").to_owned(),
            path: i.path.clone(),
            query: i.query.clone(),
            params: Vec::new(),
            headers: i.headers.iter().map(|(n, v)| (n.clone(), v.clone())).collect(),
            body: i.body.as_bytes().to_vec(),
            input_timestamp: 0,
            service: i.service.clone().unwrap_or_default(),
        };
        match family {
            Family::TencentV1 | Family::AliyunRpc => {
                let all = [decoded(&i.query), decoded(&i.body)].concat();
                r.signature = param(&all, "Signature").unwrap().to_owned();
                if family == Family::TencentV1 {
                    r.scheme = match param(&all, "SignatureMethod") {
                        Some("HmacSHA256") => Scheme::TencentV1Sha256,
                        Some("HmacSHA1") | None => Scheme::TencentV1Sha1,
                        Some(other) => panic!("{}: SignatureMethod {other}", v.id),
                    };
                    r.credential_id = param(&all, "SecretId").unwrap().to_owned();
                    r.timestamp = param(&all, "Timestamp").unwrap().parse().unwrap();
                    r.nonce = param(&all, "Nonce").map(str::to_owned);
                } else {
                    r.scheme = Scheme::AliyunRpc;
                    r.credential_id = param(&all, "AccessKeyId").unwrap().to_owned();
                    r.timestamp = unix(param(&all, "Timestamp").unwrap());
                    r.nonce = param(&all, "SignatureNonce").map(str::to_owned);
                }
                r.params = all.into_iter().filter(|(n, _)| n != "Signature").collect();
            }
            Family::Tc3 => {
                let auth = tc3::parse_authorization(header(v, "authorization"))
                    .unwrap_or_else(|e| panic!("{}: parse_authorization: {e}", v.id));
                r.credential_id = auth.credential_id.to_owned();
                r.signature = auth.signature.to_owned();
                r.scope_date = Some(auth.scope_date.to_owned());
                r.scope_service = Some(auth.scope_service.to_owned());
                r.signed_headers = auth.signed_headers.iter().map(|s| s.to_string()).collect();
                r.timestamp = header(v, "x-tc-timestamp").parse().unwrap();
                r.input_timestamp = r.timestamp;
                r.params = decoded(&i.query);
            }
            Family::Acs3 => {
                r.scheme = Scheme::Acs3;
                let auth = acs3::parse_authorization(header(v, "authorization"))
                    .unwrap_or_else(|e| panic!("{}: parse_authorization: {e}", v.id));
                r.credential_id = auth.credential_id.to_owned();
                r.signature = auth.signature.to_owned();
                r.signed_headers = auth.signed_headers.iter().map(|s| s.to_string()).collect();
                r.timestamp = unix(header(v, "x-acs-date"));
                r.nonce = Some(header(v, "x-acs-signature-nonce").to_owned());
                r.params = decoded(&i.query);
            }
        }
        assert_eq!(r.credential_id, i.secret_id, "{}: credential id as received", v.id);
        r
    }

    fn input(&self) -> SignInput<'_> {
        SignInput {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            query: &self.query,
            params: self.params.iter().map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str()))).collect(),
            headers: self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect(),
            body: &self.body,
            timestamp: self.input_timestamp,
            service: &self.service,
        }
    }

    fn material(&self) -> AuthMaterial<'_> {
        AuthMaterial {
            scheme: self.scheme,
            credential_id: Cow::Borrowed(&self.credential_id),
            signature: Cow::Borrowed(&self.signature),
            timestamp: self.timestamp,
            nonce: self.nonce.as_deref().map(Cow::Borrowed),
            scope_date: self.scope_date.as_deref(),
            scope_service: self.scope_service.as_deref(),
            signed_headers: self.signed_headers.iter().map(String::as_str).collect(),
            input: self.input(),
        }
    }

    fn is_signed(&self, header: &str) -> bool {
        self.signed_headers.iter().any(|s| s.eq_ignore_ascii_case(header))
    }
}

// === 2. signing, stage by stage ===

/// Compares our stages with the vector's `intermediate` strings and remembers which were compared.
struct Stages<'v> {
    v: &'v Vector,
    compared: BTreeSet<&'static str>,
}

impl<'v> Stages<'v> {
    fn new(v: &'v Vector) -> Stages<'v> {
        Stages { v, compared: BTreeSet::new() }
    }

    fn check(&mut self, stage: &'static str, ours: &str) {
        let want = self.v.intermediate.get(stage).unwrap_or_else(|| panic!("{}: no intermediate {stage}", self.v.id));
        assert_eq!(ours, want, "{}: {stage}", self.v.id);
        self.compared.insert(stage);
    }

    fn check_if_recorded(&mut self, stage: &'static str, ours: &str) {
        if self.v.intermediate.contains_key(stage) {
            self.check(stage, ours);
        }
    }

    fn all_compared(self) {
        for stage in self.v.intermediate.keys() {
            assert!(self.compared.contains(stage.as_str()), "{}: intermediate {stage} was not compared", self.v.id);
        }
    }
}

fn check_signing(family: Family, v: &Vector, r: &Received, key: &Secret) {
    let id = &v.id;
    let mut stages = Stages::new(v);
    let signed = match family {
        Family::TencentV1 => {
            let input = r.input();
            stages.check("string_to_sign", &tencent_v1::string_to_sign(&input));
            let signed = tencent_v1::sign(&input, tencent_v1::Hash::of(r.scheme).unwrap(), key);
            assert_eq!(signed.string_to_sign, v.intermediate["string_to_sign"], "{id}: sign: string to sign");
            assert_eq!((&signed.canonical_request, &signed.authorization), (&None, &None), "{id}: v1 has neither");
            signed
        }
        Family::Tc3 => sign_tc3(v, r, key, &mut stages),
        Family::AliyunRpc => {
            let input = r.input();
            let canonical = aliyun_rpc::canonicalized_query_string(&input.params);
            stages.check_if_recorded("canonicalized_query_string", &canonical);
            stages.check("string_to_sign", &aliyun_rpc::string_to_sign(input.method, &canonical));
            stages.check("hmac_key", aliyun_rpc::hmac_key(key).expose());
            let signed = aliyun_rpc::sign(&input, key);
            assert_eq!(signed.string_to_sign, v.intermediate["string_to_sign"], "{id}: sign: string to sign");
            signed
        }
        Family::Acs3 => sign_acs3(v, r, key, &mut stages),
    };
    stages.all_compared();
    assert_eq!(signed.signature, v.expected.signature, "{id}: signature");
    assert_eq!(signed.authorization, v.expected.authorization, "{id}: authorization");

    // The dispatch in sign/mod.rs gives the same.
    let mut input = r.input();
    if family == Family::Tc3 {
        input.headers.retain(|(name, _)| r.is_signed(name));
    }
    assert_eq!(sign::sign(r.scheme, &input, &r.credential_id, key), signed, "{id}: sign::sign");
}

fn sign_tc3(v: &Vector, r: &Received, key: &Secret, stages: &mut Stages<'_>) -> Signed {
    let id = &v.id;
    // The provider passes exactly the headers to sign.
    let mut input = r.input();
    input.headers.retain(|(name, _)| r.is_signed(name));

    let payload = tc3::hashed_payload(&input);
    assert_eq!(Some(&payload), v.inputs.body_sha256.as_ref(), "{id}: hashed payload");
    let headers = tc3::canonical_headers(&input.headers, tc3::ValueCase::Lower);
    let canonical_request = tc3::canonical_request(input.method, input.query, &headers, &payload);
    stages.check("canonical_request", &canonical_request);
    let hashed = tc3::hashed_canonical_request(&canonical_request);
    stages.check("hashed_canonical_request", &hashed);
    let date = tc3::utc_date(input.timestamp);
    let scope = tc3::credential_scope(&date, input.service);
    stages.check("credential_scope", &scope);
    let string_to_sign = tc3::string_to_sign(input.timestamp, &scope, &hashed);
    stages.check("string_to_sign", &string_to_sign);
    let keys = tc3::signing_key(key, &date, input.service);
    stages.check("secret_date_hex", &const_hex::encode(keys.k_date()));
    stages.check("secret_service_hex", &const_hex::encode(keys.k_service()));
    stages.check("secret_signing_hex", &const_hex::encode(keys.k_signing()));
    let signature = tc3::signature(&keys, &string_to_sign);
    assert_eq!(signature, v.expected.signature, "{id}: stage signature");
    let authorization = tc3::authorization(&r.credential_id, &scope, &headers.signed, &signature);

    let signed = tc3::sign(&input, &r.credential_id, key);
    let staged = Signed {
        canonical_request: Some(canonical_request),
        string_to_sign,
        signature,
        authorization: Some(authorization),
    };
    assert_eq!(signed, staged, "{id}: tc3::sign equals its stages");
    signed
}

fn sign_acs3(v: &Vector, r: &Received, key: &Secret, stages: &mut Stages<'_>) -> Signed {
    let id = &v.id;
    let input = r.input();
    let canonical_query = acs3::canonical_query_string(&input.params);
    stages.check("canonical_query_string", &canonical_query);
    let to_sign: Vec<(&str, &str)> =
        input.headers.iter().copied().filter(|(n, _)| !n.eq_ignore_ascii_case("authorization")).collect();
    let headers = acs3::canonical_headers(&to_sign);
    stages.check("canonical_headers", &headers.canonical);
    stages.check("signed_headers", &headers.signed);
    let payload = acs3::hashed_payload(input.body);
    stages.check("hashed_payload", &payload);
    let canonical_request = acs3::canonical_request(input.method, input.path, &canonical_query, &headers, &payload);
    stages.check("canonical_request", &canonical_request);
    let hashed = acs3::hashed_canonical_request(&canonical_request);
    stages.check("hashed_canonical_request", &hashed);
    let string_to_sign = acs3::string_to_sign(&hashed);
    stages.check("string_to_sign", &string_to_sign);

    let signed = acs3::sign(&input, &r.credential_id, key);
    assert_eq!(signed.canonical_request.as_deref(), Some(canonical_request.as_str()), "{id}: sign: canonical request");
    assert_eq!(signed.string_to_sign, string_to_sign, "{id}: sign: string to sign");
    let authorization = acs3::authorization(&r.credential_id, &headers.signed, &signed.signature);
    assert_eq!(signed.authorization.as_deref(), Some(authorization.as_str()), "{id}: sign: authorization");
    signed
}

// === 3. verifying the request as received ===

fn check_verify(family: Family, v: &Vector, r: &Received, key: &Secret) {
    let id = &v.id;
    let material = r.material();
    let direct = match family {
        Family::TencentV1 => tencent_v1::verify(&material, key),
        Family::Tc3 => tc3::verify(&material, key),
        Family::AliyunRpc => aliyun_rpc::verify(&material, key),
        Family::Acs3 => acs3::verify(&material, key),
    };
    assert_eq!(direct, Ok(()), "{id}: verify as received");
    assert_eq!(sign::verify(&material, key), Ok(()), "{id}: sign::verify as received");

    if matches!(family, Family::Tc3 | Family::Acs3) {
        let mut upper = r.clone();
        upper.signature.make_ascii_uppercase();
        assert_eq!(sign::verify(&upper.material(), key), Ok(()), "{id}: upper-case hex signature");
    }
    let wrong_key = Secret::new(format!("{}x", key.expose()));
    let err = sign::verify(&material, &wrong_key).expect_err("a wrong key verifies");
    assert_eq!(err.part, Part::Signature, "{id}: wrong key");
    assert!(!err.string_to_sign.is_empty(), "{id}: wrong key: string to sign");
}

// === 4. one-byte flips ===

/// Swaps the first ASCII letter or digit for its neighbour (`a`↔`b`, `8`↔`9`), so hex stays hex and
/// Base64 stays Base64; appends `x` when there is none (an empty value).
fn flip(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    match bytes.iter().position(u8::is_ascii_alphanumeric) {
        Some(i) => {
            let b = bytes[i];
            let base = if b.is_ascii_digit() {
                b'0'
            } else if b.is_ascii_lowercase() {
                b'a'
            } else {
                b'A'
            };
            bytes[i] = base + ((b - base) ^ 1);
        }
        None => bytes.push(b'x'),
    }
    String::from_utf8(bytes).expect("one ASCII byte swapped for another")
}

/// One changed request and what `verify` must say about it.
struct Flip {
    label: String,
    request: Received,
    /// The parts an honest refusal may name; empty when the change is not signed and must verify.
    parts: &'static [Part],
    /// Whether the refusal must carry the string to sign.
    string_to_sign: bool,
}

impl Flip {
    fn refused(label: impl Into<String>, request: Received, parts: &'static [Part]) -> Flip {
        Flip { label: label.into(), request, parts, string_to_sign: true }
    }

    fn unsigned(label: impl Into<String>, request: Received) -> Flip {
        Flip { label: label.into(), request, parts: &[], string_to_sign: false }
    }
}

const SIGNATURE: &[Part] = &[Part::Signature];
const SIGNED_HEADERS: &[Part] = &[Part::SignedHeaders];
const SCOPE: &[Part] = &[Part::CredentialScope];
const BODY_HASH: &[Part] = &[Part::BodyHash];
/// The headers ACS3 requires to be signed.
const ACS3_REQUIRED: [&str; 6] =
    ["x-acs-date", "x-acs-signature-nonce", "x-acs-action", "x-acs-version", "host", "x-acs-content-sha256"];

fn with(r: &Received, change: impl FnOnce(&mut Received)) -> Received {
    let mut changed = r.clone();
    change(&mut changed);
    changed
}

fn flips(family: Family, r: &Received) -> Vec<Flip> {
    let mut out = vec![
        Flip::refused("method", with(r, |c| c.method = flip(&c.method)), SIGNATURE),
        Flip::refused("signature", with(r, |c| c.signature = flip(&c.signature)), SIGNATURE),
    ];
    if family != Family::Tc3 {
        // TC3 signs the raw query instead (below).
        for (i, (name, _)) in r.params.iter().enumerate() {
            out.push(Flip::refused(format!("param {name} name"), with(r, |c| c.params[i].0 = flip(name)), SIGNATURE));
            out.push(Flip::refused(
                format!("param {name} value"),
                with(r, |c| c.params[i].1 = flip(&c.params[i].1)),
                SIGNATURE,
            ));
        }
    }
    match family {
        Family::TencentV1 => {
            out.push(Flip::refused("host", with(r, |c| c.host = flip(&c.host)), SIGNATURE));
            out.push(Flip::refused("path", with(r, |c| c.path = flip(&c.path)), SIGNATURE));
        }
        Family::AliyunRpc => {
            // The RPC string to sign has neither host nor path (`METHOD&%2F&...`).
            out.push(Flip::unsigned("host", with(r, |c| c.host = flip(&c.host))));
            out.push(Flip::unsigned("path", with(r, |c| c.path = flip(&c.path))));
        }
        Family::Tc3 => tc3_flips(r, &mut out),
        Family::Acs3 => acs3_flips(r, &mut out),
    }
    out
}

fn header_flips(r: &Received, out: &mut Vec<Flip>, value_parts: impl Fn(&str) -> &'static [Part]) {
    for (i, (name, _)) in r.headers.iter().enumerate() {
        if name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("x-tc-timestamp") {
            // Authorization is what is being checked; X-TC-Timestamp reaches verify as input.timestamp.
            continue;
        }
        let value = with(r, |c| c.headers[i].1 = flip(&c.headers[i].1));
        if r.is_signed(name) {
            out.push(Flip::refused(format!("header {name} value"), value, value_parts(name)));
            let mut renamed =
                Flip::refused(format!("header {name} name"), with(r, |c| c.headers[i].0 = flip(name)), SIGNED_HEADERS);
            // A signed header that is absent leaves nothing to build the string to sign from.
            renamed.string_to_sign = false;
            out.push(renamed);
        } else {
            out.push(Flip::unsigned(format!("unsigned header {name}"), value));
        }
    }
}

fn tc3_flips(r: &Received, out: &mut Vec<Flip>) {
    header_flips(r, out, |_| SIGNATURE);
    out.push(Flip::refused("query", with(r, |c| c.query = flip(&c.query)), SIGNATURE));
    out.push(Flip::refused(
        "body",
        with(r, |c| c.body = flip(std::str::from_utf8(&c.body).unwrap()).into_bytes()),
        SIGNATURE,
    ));
    out.push(Flip::refused(
        "timestamp (+1 s, header and material)",
        with(r, |c| {
            c.timestamp += 1;
            c.input_timestamp += 1;
        }),
        // The vector signed in a day's last second moves to the next day.
        &[Part::Signature, Part::CredentialScope],
    ));
    out.push(Flip::refused(
        "timestamp (+1 day, header and material)",
        with(r, |c| {
            c.timestamp += 86_400;
            c.input_timestamp += 86_400;
        }),
        SCOPE,
    ));
    out.push(Flip::refused("material timestamp only", with(r, |c| c.timestamp += 1), &[Part::Timestamp]));
    out.push(Flip::refused("scope date", with(r, |c| c.scope_date = c.scope_date.as_deref().map(flip)), SCOPE));
    out.push(Flip::refused(
        "scope service",
        with(r, |c| c.scope_service = c.scope_service.as_deref().map(flip)),
        SCOPE,
    ));
    out.push(Flip::refused("service of the endpoint", with(r, |c| c.service = flip(&c.service)), SCOPE));
    for required in ["content-type", "host"] {
        out.push(Flip::refused(
            format!("{required} not signed"),
            with(r, |c| c.signed_headers.retain(|s| s != required)),
            SIGNED_HEADERS,
        ));
    }
}

fn acs3_flips(r: &Received, out: &mut Vec<Flip>) {
    header_flips(r, out, |name| if name.eq_ignore_ascii_case("x-acs-content-sha256") { BODY_HASH } else { SIGNATURE });
    out.push(Flip::refused(
        "body",
        with(r, |c| c.body = flip(std::str::from_utf8(&c.body).unwrap()).into_bytes()),
        BODY_HASH,
    ));
    out.push(Flip::refused("path", with(r, |c| c.path = flip(&c.path)), SIGNATURE));
    for required in ACS3_REQUIRED {
        out.push(Flip::refused(
            format!("{required} not signed"),
            with(r, |c| c.signed_headers.retain(|s| s != required)),
            SIGNED_HEADERS,
        ));
    }
}

fn check_flips(family: Family, v: &Vector, r: &Received, key: &Secret) {
    let id = &v.id;
    let flips = flips(family, r);
    assert!(flips.iter().filter(|f| !f.parts.is_empty()).count() >= 4, "{id}: too few flips");
    for Flip { label, request, parts, string_to_sign } in flips {
        let result = sign::verify(&request.material(), key);
        if parts.is_empty() {
            assert_eq!(result, Ok(()), "{id}: {label} is not signed, so changing it must still verify");
            continue;
        }
        let err = result.expect_err(&format!("{id}: flipped {label} still verifies"));
        assert!(parts.contains(&err.part), "{id}: flipped {label}: part {:?}, expected one of {parts:?}", err.part);
        if string_to_sign {
            assert!(!err.string_to_sign.is_empty(), "{id}: flipped {label}: no string to sign");
        }
    }
}
