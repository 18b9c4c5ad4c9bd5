//! Alibaba Cloud ACS3-HMAC-SHA256, signature V3 (`shared/reference/signing.md` §5): what the current ECS
//! SDK (alibabacloud-ecs20140526 over tea-openapi) sends by default.
//!
//! Stages: [`canonical_query_string`] (decoded query parameters, sorted, `name=pct(value)`),
//! [`canonical_headers`] (lower-case names, trimmed values, sorted, repeats joined with `,`),
//! [`hashed_payload`], [`canonical_request`], [`hashed_canonical_request`], [`string_to_sign`]
//! (`ACS3-HMAC-SHA256\n` + hash), then the lower-hex HMAC-SHA256 keyed with the AccessKeySecret itself
//! (no `&`, unlike RPC) and the [`authorization`] header. [`parse_authorization`] reads that header.
//!
//! ```
//! use crossgate::sign::acs3;
//!
//! let auth = acs3::parse_authorization("ACS3-HMAC-SHA256 Credential=LTAI5t,SignedHeaders=host;x-acs-date,Signature=69d0").unwrap();
//! assert_eq!(auth.credential_id, "LTAI5t");
//! assert_eq!(auth.signed_headers, ["host", "x-acs-date"]);
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::authorization::{Fields, authorization_error, compose_header, signed_header_names, split_fields};
use super::canonical::{self, Repeats, ValueCase, headers_to_sign, signs, signs_all};
use super::encoding::{hex_decode, mac, mac_matches, sha256_hex, sorted_pct_query};
use super::{AuthMaterial, Mismatch, Param, Part, Scheme, SignInput, Signed};
use crate::secret::Secret;

pub use super::canonical::{CanonicalHeaders, hashed_canonical_request};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name, first in the string to sign and the Authorization header.
const ALGORITHM: &str = "ACS3-HMAC-SHA256";
/// The header carrying the body hash.
const CONTENT_SHA256: &str = "x-acs-content-sha256";
/// The headers every ACS3 signature must cover (§5 verify).
const REQUIRED: [&str; 6] =
    ["x-acs-date", "x-acs-signature-nonce", "x-acs-action", "x-acs-version", "host", CONTENT_SHA256];

// === canonical request ===

/// CanonicalQueryString (§5 step 2): the decoded query parameters sorted by name, `name=pct(value)`
/// joined with `&`; an empty value gives `name=`.
///
/// Names are `pct`-encoded too, as the documentation says (the SDK encodes values only). For every real
/// parameter name the two agree; encoding names keeps a name holding `&` or `=` from reading as two
/// parameters.
pub fn canonical_query_string(params: &[Param<'_>]) -> String {
    sorted_pct_query(params.iter().map(|(n, v)| (n.as_ref(), v.as_ref())))
}

/// CanonicalHeaders and SignedHeaders (§5 steps 3–4) over exactly the headers given. Values keep their
/// case; a header given more than once has its trimmed values sorted and joined with `,`.
pub fn canonical_headers(headers: &[(&str, &str)]) -> CanonicalHeaders {
    canonical::canonical_headers(headers, ValueCase::AsSent, Repeats::Joined)
}

/// HashedRequestPayload (§5 step 1): lower-hex SHA-256 of the exact body bytes.
pub fn hashed_payload(body: &[u8]) -> String {
    sha256_hex(body)
}

/// CanonicalRequest (§5 step 5). `path` is `/` for RPC actions.
pub fn canonical_request(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &CanonicalHeaders,
    hashed_payload: &str,
) -> String {
    canonical::canonical_request(method, path, canonical_query, headers, hashed_payload)
}

/// StringToSign (§5 step 6): `ACS3-HMAC-SHA256\n` + the hashed canonical request.
pub fn string_to_sign(hashed_canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + 1 + hashed_canonical_request.len());
    out.push_str(ALGORITHM);
    out.push('\n');
    out.push_str(hashed_canonical_request);
    out
}

/// The Authorization header value (§5 step 8), commas with no spaces:
/// `ACS3-HMAC-SHA256 Credential=AccessKeyId,SignedHeaders=…,Signature=…`.
pub fn authorization(credential_id: &str, signed_headers: &str, signature: &str) -> String {
    compose_header(ALGORITHM, &[credential_id], ",", signed_headers, signature)
}

// === sign and verify ===

/// Signs `input`: every header in `input.headers` is signed (an `Authorization` among them is skipped;
/// the caller sets `x-acs-content-sha256` from [`hashed_payload`]), the query from `input.params`, the
/// body's hash from `input.body`.
pub fn sign(input: &SignInput<'_>, credential_id: &str, key: &Secret) -> Signed {
    let headers = canonical_headers(&headers_to_sign(&input.headers));
    let canonical_request = canonical_request(
        input.method,
        path(input),
        &canonical_query_string(&input.params),
        &headers,
        &hashed_payload(input.body),
    );
    let string_to_sign = string_to_sign(&hashed_canonical_request(&canonical_request));
    // Signature = hex(HMAC-SHA256(AccessKeySecret, StringToSign)), no "&" on the key
    let tag = mac::<HmacSha256>(key.expose().as_bytes(), string_to_sign.as_bytes()).finalize().into_bytes();
    let signature = crate::sign::encoding::hex_lower(&tag);
    let authorization = authorization(credential_id, &headers.signed, &signature);
    Signed { canonical_request: Some(canonical_request), string_to_sign, signature, authorization: Some(authorization) }
}

/// Verifies an ACS3 signature in constant time (§5 "Steps to verify", without the clock and nonce:
/// those are the caller's).
///
/// The headers named in `material.signed_headers` are taken from `input.headers` as received (names
/// matched case-insensitively, repeats joined); the query from `input.params` (the decoded query).
///
/// # Errors
/// A [`Mismatch`] naming the part: [`Part::Algorithm`] (not ACS3), [`Part::SignedHeaders`] (a signed
/// header is absent, or one of `x-acs-date`, `x-acs-signature-nonce`, `x-acs-action`, `x-acs-version`,
/// `host`, `x-acs-content-sha256` is not signed), [`Part::BodyHash`] (`x-acs-content-sha256` is not the
/// body's hash), [`Part::Signature`] (not hex, or no match). The string to sign is included whenever
/// every signed header is present.
pub fn verify(material: &AuthMaterial<'_>, key: &Secret) -> Result<(), Mismatch> {
    if material.scheme != Scheme::Acs3 {
        return Err(Mismatch { part: Part::Algorithm, string_to_sign: String::new() });
    }
    let input = &material.input;
    let picked: Vec<(&str, &str)> =
        input.headers.iter().copied().filter(|(name, _)| signs(&material.signed_headers, name)).collect();
    let present = |name: &str| picked.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !material.signed_headers.iter().all(|name| present(name)) {
        return Err(Mismatch { part: Part::SignedHeaders, string_to_sign: String::new() });
    }

    let payload = hashed_payload(input.body);
    let creq = canonical_request(
        input.method,
        path(input),
        &canonical_query_string(&input.params),
        &canonical_headers(&picked),
        &payload,
    );
    let string_to_sign = string_to_sign(&hashed_canonical_request(&creq));
    let refuse = |part| Err(Mismatch { part, string_to_sign: string_to_sign.clone() });

    if !signs_all(&material.signed_headers, &REQUIRED) {
        return refuse(Part::SignedHeaders);
    }
    let declared = picked.iter().find(|(n, _)| n.eq_ignore_ascii_case(CONTENT_SHA256)).map(|(_, v)| v.trim());
    if !declared.is_some_and(|declared| declared.eq_ignore_ascii_case(&payload)) {
        return refuse(Part::BodyHash);
    }
    // Signature = hex(HMAC-SHA256(AccessKeySecret, StringToSign)), either case of hex
    if !mac_matches::<HmacSha256>(key.expose().as_bytes(), string_to_sign.as_bytes(), &material.signature, hex_decode) {
        return refuse(Part::Signature);
    }
    Ok(())
}

/// The canonical URI: the request path, `/` when none was given.
fn path<'a>(input: &SignInput<'a>) -> &'a str {
    if input.path.is_empty() { "/" } else { input.path }
}

// === Authorization header ===

/// The parts of an ACS3 Authorization header, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The AccessKeyId.
    pub credential_id: &'a str,
    /// The SignedHeaders names as presented.
    pub signed_headers: Vec<&'a str>,
    /// The hex signature as presented.
    pub signature: &'a str,
}

authorization_error! {
    /// Why an ACS3 Authorization header could not be read. The messages never repeat the header's values.
    pub enum AuthorizationError {
        /// The header does not start with `ACS3-HMAC-SHA256 `.
        #[error("Authorization does not start with `ACS3-HMAC-SHA256 `")]
        Algorithm,
    }
}

/// Splits `ACS3-HMAC-SHA256 Credential=ID,SignedHeaders=a;b,Signature=hex` (§5 verify: split on the
/// first space, then on `,`). Fields may come in any order; spaces around them are allowed.
///
/// # Errors
/// An [`AuthorizationError`] saying what is malformed; it never panics.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthorizationError> {
    let Fields { credential, signed_headers, signature } = split_fields(value, ALGORITHM)?;
    let signed_headers = signed_header_names(signed_headers)?;
    Ok(Authorization { credential_id: credential, signed_headers, signature })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;

    use super::*;

    const SECRET: &str = "Xy9+/aB=secret~with*odd&chars";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn headers(body_hash: &str) -> Vec<(&str, &str)> {
        vec![
            ("host", "ecs.aliyuncs.com"),
            ("x-acs-action", "DetachKeyPair"),
            ("x-acs-version", "2014-05-26"),
            ("x-acs-date", "2024-05-01T08:00:00Z"),
            ("x-acs-signature-nonce", "n-1"),
            ("x-acs-content-sha256", body_hash),
        ]
    }

    fn input<'a>(headers: Vec<(&'a str, &'a str)>, body: &'a [u8]) -> SignInput<'a> {
        SignInput {
            method: "POST",
            host: "ecs.aliyuncs.com",
            path: "/",
            params: vec![(Cow::Borrowed("RegionId"), Cow::Borrowed("cn-hangzhou"))],
            headers,
            body,
            ..SignInput::default()
        }
    }

    fn material<'a>(signed: &'a Signed, input: SignInput<'a>) -> AuthMaterial<'a> {
        let auth = parse_authorization(signed.authorization.as_deref().unwrap()).unwrap();
        AuthMaterial {
            scheme: Scheme::Acs3,
            credential_id: Cow::Borrowed(auth.credential_id),
            signature: Cow::Borrowed(auth.signature),
            timestamp: 0,
            nonce: None,
            scope_date: None,
            scope_service: None,
            signed_headers: auth.signed_headers,
            input,
        }
    }

    #[test]
    fn canonical_query_sorts_encodes_and_keeps_empty_values() {
        let params: Vec<Param<'_>> =
            [("RegionId", "cn-hangzhou"), ("KeyPairName", "key pair+1"), ("ResourceOwnerAccount", "")]
                .into_iter()
                .map(|(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v)))
                .collect();
        assert_eq!(
            canonical_query_string(&params),
            "KeyPairName=key%20pair%2B1&RegionId=cn-hangzhou&ResourceOwnerAccount="
        );
        assert_eq!(canonical_query_string(&[]), "");
    }

    #[test]
    fn canonical_headers_lower_names_trim_values_and_join_repeats() {
        let h = canonical_headers(&[
            ("X-Acs-Meta", " b "),
            ("Host", "ecs.aliyuncs.com"),
            ("x-acs-meta", "a"),
            ("Accept", "Application/JSON"),
        ]);
        assert_eq!(h.canonical, "accept:Application/JSON\nhost:ecs.aliyuncs.com\nx-acs-meta:a,b\n");
        assert_eq!(h.signed, "accept;host;x-acs-meta");
        let h = canonical_headers(&[]);
        assert_eq!((h.canonical.as_str(), h.signed.as_str()), ("", ""));
    }

    #[test]
    fn sign_then_verify_and_refusals_name_the_part() {
        let key = Secret::new(SECRET);
        let signed = sign(&input(headers(EMPTY_SHA256), b""), "LTAI", &key);
        assert!(
            signed
                .authorization
                .as_deref()
                .unwrap()
                .starts_with("ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host;x-acs-action;")
        );
        let base = material(&signed, input(headers(EMPTY_SHA256), b""));
        assert_eq!(verify(&base, &key), Ok(()));

        // Every required header must be signed.
        for required in REQUIRED {
            let mut m = base.clone();
            m.signed_headers.retain(|h| *h != required);
            let err = verify(&m, &key).unwrap_err();
            assert_eq!(err.part, Part::SignedHeaders, "{required}");
            assert!(!err.string_to_sign.is_empty());
        }
        // A signed header that is absent.
        let mut m = base.clone();
        m.signed_headers.push("x-acs-security-token");
        assert_eq!(
            verify(&m, &key).unwrap_err(),
            Mismatch { part: Part::SignedHeaders, string_to_sign: String::new() }
        );
        // A body that does not match the declared hash.
        let mut m = base.clone();
        m.input.body = b"x";
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::BodyHash);
        // Not hex, wrong length, wrong key, wrong scheme.
        for bad in ["", "xyz", "abcd"] {
            let mut m = base.clone();
            m.signature = Cow::Borrowed(bad);
            assert_eq!(verify(&m, &key).unwrap_err().part, Part::Signature, "{bad:?}");
        }
        assert_eq!(verify(&base, &Secret::new("other")).unwrap_err().part, Part::Signature);
        let mut m = base.clone();
        m.scheme = Scheme::Tc3;
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::Algorithm);
        // Upper-case hex is the same signature.
        let mut m = base.clone();
        let upper = signed.signature.to_ascii_uppercase();
        m.signature = Cow::Borrowed(&upper);
        assert_eq!(verify(&m, &key), Ok(()));
    }

    #[test]
    fn header_names_match_case_insensitively_when_verifying() {
        let key = Secret::new(SECRET);
        let signed = sign(&input(headers(EMPTY_SHA256), b""), "LTAI", &key);
        let shouting: Vec<(String, &str)> =
            headers(EMPTY_SHA256).into_iter().map(|(n, v)| (n.to_ascii_uppercase(), v)).collect();
        let shouting: Vec<(&str, &str)> = shouting.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(verify(&material(&signed, input(shouting, b"")), &key), Ok(()));
    }

    #[test]
    fn parse_authorization_accepts_spaces_and_any_order() {
        let want = Authorization { credential_id: "LTAI", signed_headers: vec!["host", "x-acs-date"], signature: "ab" };
        for header in [
            "ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host;x-acs-date,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=LTAI, SignedHeaders=host;x-acs-date, Signature=ab",
            " ACS3-HMAC-SHA256  Signature=ab,Credential=LTAI,SignedHeaders=host;x-acs-date ",
        ] {
            assert_eq!(parse_authorization(header), Ok(want.clone()), "{header}");
        }
    }

    #[test]
    fn parse_authorization_refuses_malformed_headers() {
        use AuthorizationError::*;
        let cases: &[(&str, AuthorizationError)] = &[
            ("", Algorithm),
            ("ACS3-HMAC-SHA256", Missing("Credential")),
            ("ACS3-HMAC-SHA256X Credential=a", Algorithm),
            ("ACS3-HMAC-SHA1 Credential=a", Algorithm),
            ("TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=ab", Algorithm),
            ("ACS3-HMAC-SHA256 Credential", Malformed),
            ("ACS3-HMAC-SHA256 Credential=a,,Signature=ab", Malformed),
            ("ACS3-HMAC-SHA256 Region=x", UnknownField),
            ("ACS3-HMAC-SHA256 Credential=a,Credential=b", Duplicate("Credential")),
            ("ACS3-HMAC-SHA256 Credential=", Missing("Credential")),
            ("ACS3-HMAC-SHA256 SignedHeaders=host,Signature=ab", Missing("Credential")),
            ("ACS3-HMAC-SHA256 Credential=a,Signature=ab", Missing("SignedHeaders")),
            ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host", Missing("Signature")),
            ("ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x,Signature=ab", SignedHeaders),
        ];
        for (header, want) in cases {
            assert_eq!(parse_authorization(header), Err(*want), "{header:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_authorization_never_panics(value in "\\PC*") {
            let _ = parse_authorization(&value);
        }

        #[test]
        fn parse_authorization_never_panics_after_the_algorithm(rest in "[ ,;=/A-Za-z0-9-]*") {
            let _ = parse_authorization(&format!("ACS3-HMAC-SHA256 {rest}"));
        }
    }
}
