//! Signature parsing and the encodings under it: the `Authorization` header of TC3 and ACS3, the v1 and
//! RPC signatures carried as parameters, and percent and form encoding, Base64 and hex.

use std::borrow::Cow;

use crossgate::dialect::{self, Dialect};
use crossgate::secret::Secret;
use crossgate::sign::encoding::{
    base64_decode, base64_encode, form_decode, form_encode, form_encode_component, hex_decode, pct_encode, sha256_hex,
    sorted_pct_query,
};
use crossgate::sign::{self, AuthMaterial, Param, Scheme, SignInput, acs3, aliyun_rpc, tc3, tencent_v1};
use http::HeaderValue;

use super::KEY;
use super::message::Message;

/// The credential id signatures are made for.
const ID: &str = "AKIDfuzz000000000000";

// === Authorization header ===

/// The splitter on any value, and sign -> split -> verify.
///
/// Split: any value (the whole input, and its first line) gives fields or an error; fields that were
/// read, written back with the scheme's own composer, read back the same. Sign: a request built from the
/// input's lines (method, host, content type, query, service, then the body; the first 8 bytes are the
/// timestamp) is signed, its header splits into the id, scope and signature that signing produced, and
/// the material verifies with the same key and with no other.
pub fn authorization(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let first_line = text.lines().next().unwrap_or("");
    for value in [text.as_ref(), first_line] {
        split_round_trip(value);
    }
    sign_split_verify(data, &text);
}

fn split_round_trip(value: &str) {
    if let Ok(read) = tc3::parse_authorization(value) {
        let scope = tc3::credential_scope(read.scope_date, read.scope_service);
        let again = tc3::authorization(read.credential_id, &scope, &read.signed_headers.join(";"), read.signature);
        assert_eq!(tc3::parse_authorization(&again).as_ref(), Ok(&read), "{again}");
    }
    if let Ok(read) = acs3::parse_authorization(value) {
        let again = acs3::authorization(read.credential_id, &read.signed_headers.join(";"), read.signature);
        assert_eq!(acs3::parse_authorization(&again).as_ref(), Ok(&read), "{again}");
    }
}

fn sign_split_verify(data: &[u8], text: &str) {
    let mut lines = text.splitn(6, '\n');
    let mut next = || lines.next().unwrap_or("");
    let (method, host, content_type, query, service, body) = (next(), next(), next(), next(), next(), next());
    let service: String = service.chars().filter(char::is_ascii_alphanumeric).collect();
    let service = if service.is_empty() { "cvm".to_owned() } else { service };
    let timestamp = data.get(..8).map_or(1_714_550_400, |b| i64::from_le_bytes(b.try_into().expect("8 bytes")));
    let key = Secret::new(KEY);

    // TC3: content-type and host must be signed; the scope comes from the timestamp and the service.
    let headers = vec![("content-type", content_type), ("host", host), ("x-tc-action", method)];
    let input = SignInput {
        method,
        host,
        path: "/",
        query,
        headers,
        body: body.as_bytes(),
        timestamp,
        service: &service,
        ..SignInput::default()
    };
    let signed = tc3::sign(&input, ID, &key);
    let header = signed.authorization.as_deref().expect("TC3 signs into an Authorization header");
    let read = tc3::parse_authorization(header).unwrap_or_else(|e| panic!("{e}: {header}"));
    assert_eq!(
        (read.credential_id, read.scope_service, read.signature),
        (ID, service.as_str(), signed.signature.as_str())
    );
    let material = AuthMaterial {
        scheme: Scheme::Tc3,
        credential_id: Cow::Borrowed(read.credential_id),
        signature: Cow::Borrowed(read.signature),
        timestamp,
        nonce: None,
        scope_date: Some(read.scope_date),
        scope_service: Some(read.scope_service),
        signed_headers: read.signed_headers.clone(),
        input: input.clone(),
    };
    assert_eq!(tc3::verify(&material, &key), Ok(()), "{header}");
    assert!(tc3::verify(&material, &Secret::new("another-secret")).is_err());

    // ACS3: every x-acs-* header it requires, and the body's hash declared.
    let hash = sha256_hex(body.as_bytes());
    let headers = vec![
        ("host", host),
        ("x-acs-action", method),
        ("x-acs-version", content_type),
        ("x-acs-date", service.as_str()),
        ("x-acs-signature-nonce", query),
        ("x-acs-content-sha256", hash.as_str()),
    ];
    let params = form_decode(query).unwrap_or_default();
    let input =
        SignInput { method, host, path: "/", query, params, headers, body: body.as_bytes(), ..SignInput::default() };
    let signed = acs3::sign(&input, ID, &key);
    let header = signed.authorization.as_deref().expect("ACS3 signs into an Authorization header");
    let read = acs3::parse_authorization(header).unwrap_or_else(|e| panic!("{e}: {header}"));
    assert_eq!((read.credential_id, read.signature), (ID, signed.signature.as_str()));
    let material = AuthMaterial {
        scheme: Scheme::Acs3,
        credential_id: Cow::Borrowed(read.credential_id),
        signature: Cow::Borrowed(read.signature),
        timestamp,
        nonce: None,
        scope_date: None,
        scope_service: None,
        signed_headers: read.signed_headers.clone(),
        input,
    };
    assert_eq!(acs3::verify(&material, &key), Ok(()), "{header}");
    assert!(acs3::verify(&material, &Secret::new("another-secret")).is_err());
}

// === parameter signatures ===

/// Where each parameter-signed dialect is served.
const PARAM_CODECS: [(&str, Dialect); 3] =
    [("/v2/index.php", Dialect::TencentV2), ("/", Dialect::TencentCvm), ("/", Dialect::AliyunEcs)];

/// Tencent v1 (legacy endpoint and API 3.0) and the Alibaba RPC signature, read from a query or a form
/// body.
///
/// Any input, as the query of a GET and as the form body of a POST, gives signature material or a fault,
/// and the material can be verified. A request whose material reads is then signed over its own decoded
/// parameters and sent again as a GET with that `Signature`: it must verify.
pub fn param_signature(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (path, dialect) in PARAM_CODECS {
        check_params(dialect, &get(path, &text));
        check_params(dialect, &form_post(path, data));
    }
}

fn get(path: &str, query: &str) -> Message {
    let mut message = Message { method: "GET".into(), path: path.into(), query: query.into(), ..Message::default() };
    message.headers.insert("host", HeaderValue::from_static("fuzz.example.com"));
    message
}

fn form_post(path: &str, body: &[u8]) -> Message {
    let mut message = Message { method: "POST".into(), path: path.into(), body: body.to_vec(), ..Message::default() };
    message.headers.insert("host", HeaderValue::from_static("fuzz.example.com"));
    message.headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded"));
    message
}

fn check_params(dialect: Dialect, message: &Message) {
    let key = Secret::new(KEY);
    let Ok(material) = dialect::auth_material(dialect, &message.raw()) else { return };
    let _ = sign::verify(&material, &key);
    if material.scheme == sign::Scheme::Tc3 || material.scheme == sign::Scheme::Acs3 {
        return;
    }
    // Re-sign the parameters as read, and send them all in the query of a GET.
    let input = sign::SignInput { method: "GET", ..material.input.clone() };
    let signed = sign::sign(material.scheme, &input, "", &key);
    let mut params: Vec<Param<'_>> =
        material.input.params.iter().filter(|(name, _)| name != "Signature").cloned().collect();
    params.push((Cow::Borrowed("Signature"), Cow::Owned(signed.signature.clone())));
    let again = get(message.path.as_str(), &form_encode(&params));
    let material = dialect::auth_material(dialect, &again.raw())
        .unwrap_or_else(|f| panic!("re-signed parameters lose their material: {f:?}\n{}", again.query));
    assert_eq!(sign::verify(&material, &key), Ok(()), "{}", again.query);
}

// === encodings ===

/// The decoders on any text, and the round trips: a form or query string decodes to parameters or to an
/// error, never lossily; decoded parameters, form-encoded again, decode to themselves; any text survives
/// `pct_encode` and `form_encode_component` followed by a form decode; the canonical query forms of every
/// scheme are built from any parameters; Base64 round-trips any bytes.
pub fn encoding(data: &[u8]) {
    let text = String::from_utf8_lossy(data);

    if let Ok(params) = form_decode(&text) {
        let encoded = form_encode(&params);
        let again = form_decode(&encoded).unwrap_or_else(|e| panic!("{e}: {encoded}"));
        assert_eq!(again, params, "{encoded}");
        let canonical = sorted_pct_query(params.iter().map(|(n, v)| (n.as_ref(), v.as_ref())));
        assert!(canonical.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%=&".contains(&b)), "{canonical}");
        let _ = acs3::canonical_query_string(&params);
        let rpc = aliyun_rpc::canonicalized_query_string(&params);
        let _ = aliyun_rpc::string_to_sign("GET", &rpc);
        let input = SignInput { method: "GET", host: "h", path: "/", params, ..SignInput::default() };
        let _ = tencent_v1::string_to_sign(&input);
    }

    for encoded in [pct_encode(&text), form_encode_component(&text)] {
        assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%+*".contains(&b)), "{encoded}");
        let form = format!("v={encoded}");
        let decoded = form_decode(&form).unwrap_or_else(|e| panic!("{e}: {encoded}"));
        assert_eq!(decoded.len(), 1);
        assert_eq!(decoded[0].1, text.as_ref(), "{encoded}");
    }

    assert_eq!(base64_decode(&base64_encode(data)).as_deref(), Some(data));
    let _ = base64_decode(&text);
    let _ = hex_decode(&text);
}
