//! Signature v1 material (`shared/reference/signing.md` §2, "Steps to verify"): the query and, for a
//! POST, the form body are decoded once and merged; `Signature` is taken out; `SecretId`, `Nonce`,
//! `Timestamp` and `SignatureMethod` are read. The decoded parameters stay in
//! [`SignInput::params`] for the codec's `decode_request`, which never decodes them again.

use std::borrow::Cow;

use super::{media, param, shown};
use crate::dialect::{RawRequest, params};
use crate::model::{Code, Fault};
use crate::sign::encoding::form_decode;
use crate::sign::{AuthMaterial, Param, Scheme, SignInput};

/// The most parameters one request may carry (list limits are far lower; this bounds the work of the
/// duplicate check on hostile input).
const MAX_PARAMS: usize = 4 * params::MAX_LIST_ENTRIES;

/// The longest parameter name accepted (real ones are under 32 bytes); longer names are refused before
/// any message could repeat them.
const MAX_NAME_BYTES: usize = 128;

/// The longest `Timestamp` / `Nonce` accepted, in digits.
const MAX_NUMBER_DIGITS: usize = 20;

/// True when the request carries v1 signature parameters (`SecretId` and `Signature`) in its query or
/// form body. A cheap look for dialect detection: nothing is decoded, nothing is checked.
pub fn is_v1(raw: &RawRequest<'_>) -> bool {
    let has =
        |text: &str, name: &str| text.split('&').any(|item| item.split_once('=').map_or(item, |(n, _)| n) == name);
    let body = form_body(raw).unwrap_or("");
    let carries = |name| has(raw.query, name) || has(body, name);
    carries(param::SECRET_ID) && carries(param::SIGNATURE)
}

/// The v1 authentication material of a request: GET parameters from the query, POST parameters from the
/// form body and the query, merged.
///
/// # Errors
/// `InvalidParameter` for an undecodable query or body, a duplicated parameter, or a malformed `Nonce`;
/// `MissingParameter` for an absent `SecretId`, `Signature`, `Nonce` or `Timestamp`;
/// `MalformedSignature` for an unknown `SignatureMethod`; `TimestampExpired` for a `Timestamp` that is not
/// Unix seconds; `LimitExceeded` for absurdly many parameters.
pub(crate) fn v1_auth_material<'a>(raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    let mut params = request_params(raw)?;
    let credential_id = params::required(&params, param::SECRET_ID)?;
    if credential_id.is_empty() {
        return Err(Fault::caller(Code::MissingParameter, "The parameter `SecretId` is empty."));
    }
    let credential_id = owned_or_borrowed(&params, param::SECRET_ID);
    let scheme = match params::single(&params, param::SIGNATURE_METHOD)? {
        None => Scheme::TencentV1Sha1,
        Some(m) if m == Scheme::TencentV1Sha1.name() => Scheme::TencentV1Sha1,
        Some(m) if m == Scheme::TencentV1Sha256.name() => Scheme::TencentV1Sha256,
        Some(other) => {
            return Err(Fault::caller(
                Code::MalformedSignature,
                format!(
                    "The parameter `SignatureMethod` must be `{}` or `{}`, not `{}`.",
                    Scheme::TencentV1Sha1.name(),
                    Scheme::TencentV1Sha256.name(),
                    shown(other)
                ),
            ));
        }
    };
    let timestamp = unix_seconds(param::TIMESTAMP, params::required(&params, param::TIMESTAMP)?)?;
    let nonce = params::required(&params, param::NONCE)?;
    if nonce.is_empty() || nonce.len() > MAX_NUMBER_DIGITS || !nonce.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Fault::caller(
            Code::InvalidParameter,
            format!("The parameter `Nonce` must be a positive integer, not `{}`.", shown(nonce)),
        ));
    }
    let nonce = owned_or_borrowed(&params, param::NONCE);
    let position = params.iter().position(|(n, _)| n == param::SIGNATURE).ok_or_else(|| missing(param::SIGNATURE))?;
    let (_, signature) = params.remove(position);
    if signature.is_empty() {
        return Err(Fault::caller(Code::MissingParameter, "The parameter `Signature` is empty."));
    }
    Ok(AuthMaterial {
        scheme,
        credential_id,
        signature,
        timestamp,
        nonce: Some(nonce),
        scope_date: None,
        scope_service: None,
        signed_headers: Vec::new(),
        input: SignInput {
            method: raw.method,
            host: raw.host(),
            path: raw.path,
            query: raw.query,
            params,
            headers: header_pairs(raw),
            body: raw.body,
            timestamp,
            service: "",
        },
    })
}

/// Every parameter of a v1 request, decoded once: the query, then (for a POST) the form body; duplicates
/// refused.
pub(crate) fn request_params<'a>(raw: &RawRequest<'a>) -> Result<Vec<Param<'a>>, Fault> {
    let body = if raw.method.eq_ignore_ascii_case("POST") && !raw.body.is_empty() {
        form_body(raw).ok_or_else(|| {
            Fault::caller(Code::InvalidParameter, format!("A v1-signed POST needs an `{}` body in UTF-8.", media::FORM))
        })?
    } else {
        ""
    };
    let count = |s: &str| if s.is_empty() { 0 } else { s.bytes().filter(|b| *b == b'&').count() + 1 };
    if count(raw.query) + count(body) > MAX_PARAMS {
        return Err(Fault::caller(Code::LimitExceeded, format!("The request has more than {MAX_PARAMS} parameters.")));
    }
    let mut params = decode_form(raw.query, "query string")?;
    params.extend(decode_form(body, "form body")?);
    if let Some((name, _)) = params.iter().find(|(n, _)| n.len() > MAX_NAME_BYTES) {
        return Err(Fault::caller(
            Code::InvalidParameter,
            format!("The parameter name `{}` is longer than {MAX_NAME_BYTES} bytes.", shown(name)),
        ));
    }
    params::reject_duplicates(&params)?;
    Ok(params)
}

/// Decodes a query string or a form body.
pub(crate) fn decode_form<'a>(text: &'a str, what: &str) -> Result<Vec<Param<'a>>, Fault> {
    form_decode(text).map_err(|e| Fault::caller(Code::InvalidParameter, format!("The {what} cannot be decoded: {e}.")))
}

/// A parameter from the query or a form body, tolerating anything undecodable (for `reply` and
/// detection, which must never fail).
pub(crate) fn lenient_param(raw: &RawRequest<'_>, name: &str) -> Option<String> {
    let find = |text: &str| {
        form_decode(text).ok().and_then(|ps| ps.into_iter().find(|(n, _)| n == name).map(|(_, v)| v.into_owned()))
    };
    find(raw.query).or_else(|| form_body(raw).and_then(find))
}

/// The body as form text, if the request carries one: UTF-8, and a form content type (or none).
fn form_body<'a>(raw: &RawRequest<'a>) -> Option<&'a str> {
    let form_type = raw.content_type().is_none_or(|t| t == media::FORM || t.is_empty());
    if !form_type {
        return None;
    }
    std::str::from_utf8(raw.body).ok()
}

/// Every header whose value is visible ASCII, as `(name, value)`.
pub(crate) fn header_pairs<'a>(raw: &RawRequest<'a>) -> Vec<(&'a str, &'a str)> {
    raw.headers.iter().filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str(), v))).collect()
}

/// A Unix-seconds value: digits only.
pub(crate) fn unix_seconds(name: &str, value: &str) -> Result<i64, Fault> {
    let well_formed =
        !value.is_empty() && value.len() <= MAX_NUMBER_DIGITS && value.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| value.parse::<i64>().ok()).flatten().ok_or_else(|| {
        Fault::caller(Code::TimestampExpired, format!("`{name}` must be Unix seconds, not `{}`.", shown(value)))
    })
}

/// A copy of a parameter's value that borrows from the request when the value needed no decoding.
fn owned_or_borrowed<'a>(params: &[Param<'a>], name: &str) -> Cow<'a, str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
}

fn missing(name: &str) -> Fault {
    Fault::caller(Code::MissingParameter, format!("The parameter `{name}` is missing."))
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;

    fn raw<'a>(method: &'a str, query: &'a str, body: &'a [u8], headers: &'a HeaderMap) -> RawRequest<'a> {
        RawRequest { method, path: "/", query, headers, body }
    }

    #[test]
    fn reads_the_material_and_drops_the_signature() {
        let h = HeaderMap::new();
        let q = "Action=A&SecretId=AKID&Nonce=1&Timestamp=1714550400&Signature=c2ln&SignatureMethod=HmacSHA256";
        let m = v1_auth_material(&raw("GET", q, b"", &h)).unwrap();
        assert_eq!(m.scheme, Scheme::TencentV1Sha256);
        assert_eq!((m.credential_id.as_ref(), m.signature.as_ref()), ("AKID", "c2ln"));
        assert_eq!((m.timestamp, m.nonce.as_deref()), (1714550400, Some("1")));
        assert!(m.input.params.iter().all(|(n, _)| n != "Signature"));
        assert_eq!(m.input.params.len(), 5);
    }

    #[test]
    fn absent_method_is_sha1_and_post_merges_query_and_body() {
        let h = HeaderMap::new();
        let m =
            v1_auth_material(&raw("POST", "Action=A", b"SecretId=AKID&Nonce=1&Timestamp=1&Signature=x", &h)).unwrap();
        assert_eq!(m.scheme, Scheme::TencentV1Sha1);
        assert_eq!(m.input.params.len(), 4);
    }

    #[test]
    fn faults_name_the_parameter() {
        let h = HeaderMap::new();
        let cases = [
            ("Nonce=1&Timestamp=1&Signature=x", Code::MissingParameter),
            ("SecretId=A&Timestamp=1&Signature=x", Code::MissingParameter),
            ("SecretId=A&Nonce=1&Signature=x", Code::MissingParameter),
            ("SecretId=A&Nonce=1&Timestamp=1", Code::MissingParameter),
            ("SecretId=A&Nonce=1&Timestamp=soon&Signature=x", Code::TimestampExpired),
            ("SecretId=A&Nonce=-1&Timestamp=1&Signature=x", Code::InvalidParameter),
            ("SecretId=A&Nonce=1&Timestamp=1&Signature=x&SignatureMethod=MD5", Code::MalformedSignature),
            ("SecretId=A&SecretId=B&Nonce=1&Timestamp=1&Signature=x", Code::InvalidParameter),
            ("SecretId=%FF&Nonce=1&Timestamp=1&Signature=x", Code::InvalidParameter),
        ];
        for (q, code) in cases {
            assert_eq!(v1_auth_material(&raw("GET", q, b"", &h)).unwrap_err().code(), code, "{q}");
        }
    }

    #[test]
    fn detection_looks_for_secret_id_and_signature() {
        let h = HeaderMap::new();
        assert!(is_v1(&raw("GET", "SecretId=a&Signature=b", b"", &h)));
        assert!(is_v1(&raw("POST", "", b"SecretId=a&Signature=b", &h)));
        assert!(!is_v1(&raw("GET", "AccessKeyId=a&Signature=b", b"", &h)));
        assert!(!is_v1(&raw("GET", "XSecretId=a&Signature=b", b"", &h)));
    }
}
