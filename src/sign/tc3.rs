//! Tencent TC3-HMAC-SHA256, signature v3 (`shared/reference/signing.md` §3): API 3.0, CVM and Lighthouse,
//! POST JSON and GET.
//!
//! Each stage is a function so tests can hold it against the vectors' intermediate strings:
//! [`hashed_payload`] → [`canonical_headers`] → [`canonical_request`] → [`hashed_canonical_request`];
//! [`utc_date`] → [`credential_scope`]; [`string_to_sign`]; [`signing_key`] (kDate, kService, kSigning)
//! → [`signature`] → [`authorization`]. [`sign`] and [`verify`] chain them; [`parse_authorization`] reads
//! the header a codec receives.
//!
//! ```
//! use crossgate::sign::tc3;
//!
//! let auth = tc3::parse_authorization(
//!     "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2024-05-01/cvm/tc3_request, \
//!      SignedHeaders=content-type;host, Signature=584430d4",
//! )
//! .unwrap();
//! assert_eq!((auth.scope_date, auth.scope_service), ("2024-05-01", "cvm"));
//! assert_eq!(auth.signed_headers, ["content-type", "host"]);
//! assert_eq!(tc3::utc_date(1714550400), "2024-05-01");
//! ```

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::authorization::{Fields, authorization_error, compose_header, signed_header_names, split_fields};
use super::canonical::{self, Repeats, headers_to_sign, signs_all};
use super::encoding::{fixed_digits, hex_decode, hex_lower, mac, mac_matches, sha256_hex};
use super::{AuthMaterial, Mismatch, Part, Scheme, SignInput, Signed};
use crate::secret::Secret;

pub use super::canonical::{CanonicalHeaders, ValueCase, hashed_canonical_request};

type HmacSha256 = Hmac<Sha256>;

/// The algorithm name, first in the string to sign and the Authorization header.
const ALGORITHM: &str = "TC3-HMAC-SHA256";
/// The last element of the credential scope.
const TERMINATOR: &str = "tc3_request";
/// The header that can ask for the body to go unsigned, and the value that asks.
const CONTENT_SHA256: &str = "x-tc-content-sha256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// The headers every TC3 signature must cover (§3 verify step 2).
const REQUIRED: [&str; 2] = ["content-type", "host"];
const SECONDS_PER_DAY: i64 = 86_400;

// === canonical request ===

/// HashedRequestPayload (§3 step 1): lower-hex SHA-256 of the exact body, or of the literal text
/// `UNSIGNED-PAYLOAD` when the request carries `X-TC-Content-SHA256: UNSIGNED-PAYLOAD`.
pub fn hashed_payload(input: &SignInput<'_>) -> String {
    match header(&input.headers, CONTENT_SHA256) {
        Some(value) if value.trim() == UNSIGNED_PAYLOAD => sha256_hex(UNSIGNED_PAYLOAD.as_bytes()),
        _ => sha256_hex(input.body),
    }
}

/// CanonicalHeaders and SignedHeaders (§3 steps 3–4) over exactly the headers given: names lower-cased,
/// values trimmed (and lower-cased for [`ValueCase::Lower`]), sorted; a header given twice takes two lines.
pub fn canonical_headers(headers: &[(&str, &str)], case: ValueCase) -> CanonicalHeaders {
    canonical::canonical_headers(headers, case, Repeats::OneLineEach)
}

/// CanonicalRequest (§3 step 5). The CanonicalURI is always `/` for API 3.0; `query` is the query string
/// exactly as sent (`""` for POST), neither re-sorted nor re-encoded.
pub fn canonical_request(method: &str, query: &str, headers: &CanonicalHeaders, hashed_payload: &str) -> String {
    canonical::canonical_request(method, "/", query, headers, hashed_payload)
}

// === string to sign ===

/// The UTC date `YYYY-MM-DD` of a Unix timestamp (§3 step 6). Defined for every `i64`.
pub fn utc_date(timestamp: i64) -> String {
    // Days to civil date in the proleptic Gregorian calendar, counted in 400-year eras from 0000-03-01
    // so that leap days fall at the end of each year.
    let days = timestamp.div_euclid(SECONDS_PER_DAY) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return format!("{year:04}-{month:02}-{day:02}");
    }
    // Every request's date (years 0 to 9999): its digits written directly, not through the formatting
    // machinery. Month and day are 1 to 12 and 1 to 31 here.
    let mut text = *b"0000-00-00";
    for (value, at, width) in [(year, 0, 4), (month, 5, 2), (day, 8, 2)] {
        fixed_digits(&mut text[at..at + width], value.unsigned_abs());
    }
    text.iter().map(|&b| char::from(b)).collect()
}

/// CredentialScope (§3 step 6): `Date/service/tc3_request`.
pub fn credential_scope(date: &str, service: &str) -> String {
    let mut out = String::with_capacity(date.len() + service.len() + TERMINATOR.len() + 2);
    out.push_str(date);
    out.push('/');
    out.push_str(service);
    out.push('/');
    out.push_str(TERMINATOR);
    out
}

/// StringToSign (§3 step 7).
pub fn string_to_sign(timestamp: i64, credential_scope: &str, hashed_canonical_request: &str) -> String {
    let mut out = String::with_capacity(ALGORITHM.len() + 24 + credential_scope.len() + hashed_canonical_request.len());
    // Algorithm\n
    out.push_str(ALGORITHM);
    out.push('\n');
    // RequestTimestamp\n
    out.push_str(itoa::Buffer::new().format(timestamp));
    out.push('\n');
    // CredentialScope\n
    out.push_str(credential_scope);
    out.push('\n');
    // HashedCanonicalRequest
    out.push_str(hashed_canonical_request);
    out
}

// === keys and signature ===

/// The three derived keys of §3 step 8. Zeroed on drop; Debug shows none of them.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SigningKey {
    k_date: [u8; 32],
    k_service: [u8; 32],
    k_signing: [u8; 32],
}

impl SigningKey {
    /// kDate = HMAC-SHA256("TC3" + SecretKey, Date).
    pub fn k_date(&self) -> &[u8; 32] {
        &self.k_date
    }

    /// kService = HMAC-SHA256(kDate, service).
    pub fn k_service(&self) -> &[u8; 32] {
        &self.k_service
    }

    /// kSigning = HMAC-SHA256(kService, "tc3_request"): the key the signature is made with.
    pub fn k_signing(&self) -> &[u8; 32] {
        &self.k_signing
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

/// Derives the signing key for a date (`YYYY-MM-DD`) and service (§3 step 8).
pub fn signing_key(key: &Secret, date: &str, service: &str) -> SigningKey {
    let mut secret = Zeroizing::new(Vec::with_capacity(3 + key.expose().len()));
    secret.extend_from_slice(b"TC3");
    secret.extend_from_slice(key.expose().as_bytes());
    // kDate = HMAC("TC3" + SecretKey, Date)
    let k_date = hmac256(&secret, date.as_bytes());
    // kService = HMAC(kDate, Service)
    let k_service = hmac256(&k_date, service.as_bytes());
    // kSigning = HMAC(kService, "tc3_request")
    let k_signing = hmac256(&k_service, TERMINATOR.as_bytes());
    SigningKey { k_date, k_service, k_signing }
}

/// How many derived keys each thread keeps (a key changes once a day per secret and service).
const KEPT_KEYS: usize = 16;

/// A derived key, with the secret, date and service it was derived for. The secret's copy is zeroed on
/// drop like the key.
struct KeptKey {
    secret: Secret,
    date: String,
    service: String,
    key: SigningKey,
}

thread_local! {
    /// The signing keys this thread derived last, oldest replaced first.
    static KEPT: std::cell::RefCell<(Vec<KeptKey>, usize)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// [`signing_key`], derived once per secret, date and service on each thread and kept: the three HMACs
/// of the derivation are most of a signature's cost, and the key changes only when the date does.
/// Secrets are compared in constant time.
pub fn kept_signing_key(key: &Secret, date: &str, service: &str) -> SigningKey {
    KEPT.with_borrow_mut(|(kept, next)| {
        if let Some(k) = kept.iter().find(|k| k.date == date && k.service == service && k.secret == *key) {
            return k.key.clone();
        }
        let derived = signing_key(key, date, service);
        let entry =
            KeptKey { secret: key.clone(), date: date.to_owned(), service: service.to_owned(), key: derived.clone() };
        if kept.len() < KEPT_KEYS {
            kept.push(entry);
        } else {
            kept[*next] = entry;
            *next = (*next + 1) % KEPT_KEYS;
        }
        derived
    })
}

fn hmac256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(&mac::<HmacSha256>(key, msg).finalize().into_bytes());
    out
}

/// Signature = lower-hex HMAC-SHA256(kSigning, StringToSign) (§3 step 8).
pub fn signature(key: &SigningKey, string_to_sign: &str) -> String {
    hex_lower(&hmac256(&key.k_signing, string_to_sign.as_bytes()))
}

/// The Authorization header value (§3 step 9), with comma-space separators:
/// `TC3-HMAC-SHA256 Credential=SecretId/CredentialScope, SignedHeaders=…, Signature=…`.
pub fn authorization(credential_id: &str, credential_scope: &str, signed_headers: &str, signature: &str) -> String {
    compose_header(ALGORITHM, &[credential_id, credential_scope], ", ", signed_headers, signature)
}

// === sign and verify ===

/// Signs `input` for `credential_id`: every header in `input.headers` is signed (the provider passes
/// `content-type` and `host`; an `Authorization` among them is skipped), values lower-cased as
/// documented; the query is `input.query` verbatim; the scope is the UTC date of `input.timestamp` and
/// `input.service`.
pub fn sign(input: &SignInput<'_>, credential_id: &str, key: &Secret) -> Signed {
    let headers = canonical_headers(&headers_to_sign(&input.headers), ValueCase::Lower);
    let canonical_request = canonical_request(input.method, input.query, &headers, &hashed_payload(input));
    let date = utc_date(input.timestamp);
    let scope = credential_scope(&date, input.service);
    let string_to_sign = string_to_sign(input.timestamp, &scope, &hashed_canonical_request(&canonical_request));
    let signature = signature(&kept_signing_key(key, &date, input.service), &string_to_sign);
    let authorization = authorization(credential_id, &scope, &headers.signed, &signature);
    Signed { canonical_request: Some(canonical_request), string_to_sign, signature, authorization: Some(authorization) }
}

/// Verifies a TC3 signature in constant time (§3 "Steps to verify", without the clock: freshness is the
/// caller's).
///
/// Header values come from `input.headers` for the names in `material.signed_headers` (names matched
/// case-insensitively); the query is `input.query` and the body `input.body` as received. Values are
/// lower-cased as documented; when that does not match and a value has upper case, the values as sent
/// are tried too.
///
/// # Errors
/// A [`Mismatch`] naming the part: [`Part::Algorithm`] (not TC3), [`Part::SignedHeaders`] (a signed
/// header is absent, or `content-type`/`host` is not signed), [`Part::Timestamp`]
/// (`material.timestamp` is not the signed `input.timestamp`), [`Part::CredentialScope`] (date not the
/// UTC date of the timestamp, or service not `input.service`), [`Part::Signature`] (not hex, or no
/// match). The string to sign is included whenever every signed header is present.
pub fn verify(material: &AuthMaterial<'_>, key: &Secret) -> Result<(), Mismatch> {
    if material.scheme != Scheme::Tc3 {
        return Err(Mismatch { part: Part::Algorithm, string_to_sign: String::new() });
    }
    let input = &material.input;
    let mut picked = Vec::with_capacity(material.signed_headers.len());
    for &name in &material.signed_headers {
        let Some(value) = header(&input.headers, name) else {
            return Err(Mismatch { part: Part::SignedHeaders, string_to_sign: String::new() });
        };
        picked.push((name, value));
    }

    let date = utc_date(input.timestamp);
    let scope = credential_scope(&date, input.service);
    let payload = hashed_payload(input);
    let rebuild = |case| {
        let creq = canonical_request(input.method, input.query, &canonical_headers(&picked, case), &payload);
        string_to_sign(input.timestamp, &scope, &hashed_canonical_request(&creq))
    };
    let string_to_sign = rebuild(ValueCase::Lower);
    let refuse = |part| Err(Mismatch { part, string_to_sign: string_to_sign.clone() });

    if !signs_all(&material.signed_headers, &REQUIRED) {
        return refuse(Part::SignedHeaders);
    }
    if material.timestamp != input.timestamp {
        return refuse(Part::Timestamp);
    }
    if material.scope_date != Some(date.as_str()) || material.scope_service != Some(input.service) {
        return refuse(Part::CredentialScope);
    }

    let key = kept_signing_key(key, &date, input.service);
    let matches =
        |sts: &str| mac_matches::<HmacSha256>(key.k_signing(), sts.as_bytes(), &material.signature, hex_decode);
    if matches(&string_to_sign) {
        return Ok(());
    }
    // §3 step 3: the SDKs sign values as sent; only worth a second try when lower-casing changed one.
    if picked.iter().any(|(_, v)| v.bytes().any(|b| b.is_ascii_uppercase())) && matches(&rebuild(ValueCase::AsSent)) {
        return Ok(());
    }
    refuse(Part::Signature)
}

/// The first header named `name` (ASCII case-insensitive).
fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, v)| v)
}

// === Authorization header ===

/// The parts of a TC3 Authorization header, borrowed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The SecretId.
    pub credential_id: &'a str,
    /// The credential scope's date, `YYYY-MM-DD` as presented.
    pub scope_date: &'a str,
    /// The credential scope's service (`cvm`, `lighthouse`).
    pub scope_service: &'a str,
    /// The SignedHeaders names as presented.
    pub signed_headers: Vec<&'a str>,
    /// The hex signature as presented.
    pub signature: &'a str,
}

authorization_error! {
    /// Why a TC3 Authorization header could not be read. The messages never repeat the header's values.
    pub enum AuthorizationError {
        /// The header does not start with `TC3-HMAC-SHA256 `.
        #[error("Authorization does not start with `TC3-HMAC-SHA256 `")]
        Algorithm,
        /// Credential is not `SecretId/Date/service/tc3_request`.
        #[error("Authorization Credential is not SecretId/Date/service/tc3_request")]
        Credential,
    }
}

/// Splits `TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=hex`
/// (§3 verify step 1). Fields may come in any order, with or without a space after each comma.
///
/// # Errors
/// An [`AuthorizationError`] saying what is malformed; it never panics.
pub fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthorizationError> {
    let Fields { credential, signed_headers, signature } = split_fields(value, ALGORITHM)?;
    let mut scope = credential.split('/');
    let (Some(id), Some(date), Some(service), Some(TERMINATOR), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(AuthorizationError::Credential);
    };
    if id.is_empty() || date.is_empty() || service.is_empty() {
        return Err(AuthorizationError::Credential);
    }
    let signed_headers = signed_header_names(signed_headers)?;
    Ok(Authorization { credential_id: id, scope_date: date, scope_service: service, signed_headers, signature })
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use proptest::prelude::*;

    use time::OffsetDateTime;

    use super::*;

    const KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

    fn input<'a>(headers: &[(&'a str, &'a str)], body: &'a [u8]) -> SignInput<'a> {
        SignInput {
            method: "POST",
            host: "cvm.tencentcloudapi.com",
            path: "/",
            headers: headers.to_vec(),
            body,
            timestamp: 1_714_550_400,
            service: "cvm",
            ..SignInput::default()
        }
    }

    fn material<'a>(signed: &'a Signed, input: SignInput<'a>, signature: &'a str) -> AuthMaterial<'a> {
        let auth = parse_authorization(signed.authorization.as_deref().unwrap()).unwrap();
        AuthMaterial {
            scheme: Scheme::Tc3,
            credential_id: Cow::Borrowed(auth.credential_id),
            signature: Cow::Borrowed(signature),
            timestamp: input.timestamp,
            nonce: None,
            scope_date: Some(auth.scope_date),
            scope_service: Some(auth.scope_service),
            signed_headers: auth.signed_headers,
            input,
        }
    }

    #[test]
    fn utc_date_agrees_with_the_time_crate() {
        for ts in [
            0,
            1,
            -1,
            86_399,
            86_400,
            951_782_400,
            1_714_550_400,
            1_714_607_999,
            4_107_542_400,
            -62_135_596_800,
            253_402_300_799,
        ] {
            let d = OffsetDateTime::from_unix_timestamp(ts).unwrap().date();
            let expected = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
            assert_eq!(utc_date(ts), expected, "{ts}");
        }
        assert_eq!(utc_date(1_714_607_999), "2024-05-01");
        assert_eq!(utc_date(1_714_608_000), "2024-05-02");
        // Total: no panic and no overflow at the ends.
        assert!(!utc_date(i64::MIN).is_empty());
        assert!(!utc_date(i64::MAX).is_empty());
    }

    #[test]
    fn canonical_headers_sort_trim_and_lower_values() {
        let h = canonical_headers(&[("Host", " CVM.example "), ("Content-Type", "application/json")], ValueCase::Lower);
        assert_eq!(h.canonical, "content-type:application/json\nhost:cvm.example\n");
        assert_eq!(h.signed, "content-type;host");
        let h = canonical_headers(&[("Host", "CVM.example")], ValueCase::AsSent);
        assert_eq!(h.canonical, "host:CVM.example\n");
        let h = canonical_headers(&[], ValueCase::Lower);
        assert_eq!((h.canonical.as_str(), h.signed.as_str()), ("", ""));
    }

    #[test]
    fn unsigned_payload_hashes_the_literal_and_frees_the_body() {
        let headers = [
            ("Content-Type", "application/json"),
            ("Host", "cvm.tencentcloudapi.com"),
            ("X-TC-Content-SHA256", "UNSIGNED-PAYLOAD"),
        ];
        let signed_input = input(&headers, b"{}");
        assert_eq!(hashed_payload(&signed_input), sha256_hex(b"UNSIGNED-PAYLOAD"));
        let signed = sign(&signed_input, "AKID", &Secret::new(KEY));
        assert!(signed.canonical_request.as_deref().unwrap().contains("x-tc-content-sha256:unsigned-payload\n"));
        let other_body = input(&headers, b"{\"other\": 1}");
        assert_eq!(verify(&material(&signed, other_body, &signed.signature), &Secret::new(KEY)), Ok(()));
        // Without the header the body counts.
        let plain = [("Content-Type", "application/json"), ("Host", "cvm.tencentcloudapi.com")];
        assert_eq!(hashed_payload(&input(&plain, b"{}")), sha256_hex(b"{}"));
    }

    #[test]
    fn upper_case_values_signed_as_sent_still_verify() {
        // A client that signs the Host header as typed, in capitals, the way the SDKs do.
        let headers = [("Content-Type", "application/json"), ("Host", "CVM.TencentCloudAPI.com")];
        let i = input(&headers, b"{}");
        let raw = canonical_headers(&headers, ValueCase::AsSent);
        let creq = canonical_request("POST", "", &raw, &sha256_hex(b"{}"));
        let sts = string_to_sign(i.timestamp, "2024-05-01/cvm/tc3_request", &hashed_canonical_request(&creq));
        let sig = signature(&signing_key(&Secret::new(KEY), "2024-05-01", "cvm"), &sts);
        let documented = sign(&i, "AKID", &Secret::new(KEY));
        assert_ne!(sig, documented.signature);
        assert_eq!(verify(&material(&documented, i.clone(), &sig), &Secret::new(KEY)), Ok(()));
        assert_eq!(verify(&material(&documented, i.clone(), &documented.signature), &Secret::new(KEY)), Ok(()));
        // Upper-case hex is the same signature.
        let upper = sig.to_ascii_uppercase();
        assert_eq!(verify(&material(&documented, i, &upper), &Secret::new(KEY)), Ok(()));
    }

    #[test]
    fn verify_refusals_name_the_part() {
        let headers = [("Content-Type", "application/json"), ("Host", "cvm.tencentcloudapi.com")];
        let key = Secret::new(KEY);
        let signed = sign(&input(&headers, b"{}"), "AKID", &key);
        let base = material(&signed, input(&headers, b"{}"), &signed.signature);
        assert_eq!(verify(&base, &key), Ok(()));

        let mut m = base.clone();
        m.signed_headers = vec!["content-type"];
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::SignedHeaders);
        let mut m = base.clone();
        m.signed_headers.push("x-tc-action");
        let err = verify(&m, &key).unwrap_err();
        assert_eq!((err.part, err.string_to_sign.as_str()), (Part::SignedHeaders, ""));
        let mut m = base.clone();
        m.timestamp += 1;
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::Timestamp);
        let mut m = base.clone();
        m.scope_date = Some("2024-05-02");
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::CredentialScope);
        let mut m = base.clone();
        m.scope_service = Some("lighthouse");
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::CredentialScope);
        let mut m = base.clone();
        m.scope_date = None;
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::CredentialScope);
        for bad in ["", "zz", "abc", &signed.signature[2..]] {
            let mut m = base.clone();
            m.signature = Cow::Borrowed(bad);
            let err = verify(&m, &key).unwrap_err();
            assert_eq!(err.part, Part::Signature, "{bad:?}");
            assert_eq!(err.string_to_sign, signed.string_to_sign);
        }
        let mut m = base.clone();
        m.scheme = Scheme::Acs3;
        assert_eq!(verify(&m, &key).unwrap_err().part, Part::Algorithm);
        assert_eq!(verify(&base, &Secret::new("other")).unwrap_err().part, Part::Signature);
    }

    #[test]
    fn parse_authorization_accepts_both_separators_and_any_order() {
        let want = Authorization {
            credential_id: "AKID",
            scope_date: "2024-05-01",
            scope_service: "cvm",
            signed_headers: vec!["content-type", "host"],
            signature: "ab12",
        };
        for header in [
            "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab12",
            "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request,SignedHeaders=content-type;host,Signature=ab12",
            "  TC3-HMAC-SHA256   Signature=ab12, Credential=AKID/2024-05-01/cvm/tc3_request , SignedHeaders=content-type;host ",
        ] {
            assert_eq!(parse_authorization(header), Ok(want.clone()), "{header}");
        }
    }

    #[test]
    fn parse_authorization_refuses_malformed_headers() {
        use AuthorizationError::*;
        let ok_tail = "Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab";
        let cases: &[(&str, AuthorizationError)] = &[
            ("", Algorithm),
            ("TC3-HMAC-SHA256", Missing("Credential")),
            ("  TC3-HMAC-SHA256  ", Missing("Credential")),
            ("TC3-HMAC-SHA256X Credential=a", Algorithm),
            ("tc3-hmac-sha256 Credential=a", Algorithm),
            ("ACS3-HMAC-SHA256 Credential=AKID,SignedHeaders=host,Signature=ab", Algorithm),
            ("TC3-HMAC-SHA256 Credential", Malformed),
            ("TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request,, Signature=ab", Malformed),
            ("TC3-HMAC-SHA256 Foo=1", UnknownField),
            ("TC3-HMAC-SHA256 credential=AKID/2024-05-01/cvm/tc3_request", UnknownField),
            ("TC3-HMAC-SHA256 Signature=ab, Signature=cd", Duplicate("Signature")),
            ("TC3-HMAC-SHA256 Signature=", Missing("Signature")),
            ("TC3-HMAC-SHA256 SignedHeaders=host, Signature=ab", Missing("Credential")),
            ("TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, Signature=ab", Missing("SignedHeaders")),
            ("TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=host", Missing("Signature")),
            ("TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm, SignedHeaders=host, Signature=ab", Credential),
            ("TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3, SignedHeaders=host, Signature=ab", Credential),
            (
                "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request/x, SignedHeaders=host, Signature=ab",
                Credential,
            ),
            ("TC3-HMAC-SHA256 Credential=/2024-05-01/cvm/tc3_request, SignedHeaders=host, Signature=ab", Credential),
            ("TC3-HMAC-SHA256 Credential=AKID//cvm/tc3_request, SignedHeaders=host, Signature=ab", Credential),
            (
                "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=host;, Signature=ab",
                SignedHeaders,
            ),
            (
                "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=;host, Signature=ab",
                SignedHeaders,
            ),
        ];
        for (header, want) in cases {
            assert_eq!(parse_authorization(header), Err(*want), "{header:?}");
        }
        assert!(parse_authorization(&format!("TC3-HMAC-SHA256 {ok_tail}")).is_ok());
        // Messages never echo values.
        let err = parse_authorization("TC3-HMAC-SHA256 Secret=verysecretvalue").unwrap_err();
        assert!(!err.to_string().contains("verysecretvalue"));
    }

    #[test]
    fn signing_key_debug_hides_the_keys() {
        let k = signing_key(&Secret::new(KEY), "2024-05-01", "cvm");
        assert_eq!(format!("{k:?}"), "SigningKey(***)");
    }

    #[test]
    fn kept_keys_are_the_derived_ones_for_each_secret_date_and_service() {
        // More combinations than a thread keeps, twice over: every answer, kept or derived anew, is right.
        for round in 0..2 {
            for i in 0..(KEPT_KEYS + 4) {
                let secret = Secret::new(format!("{KEY}{}", i % 7));
                let date = if i % 2 == 0 { "2024-05-01" } else { "2024-05-02" };
                let service = if i % 3 == 0 { "cvm" } else { "lighthouse" };
                let kept = kept_signing_key(&secret, date, service);
                let fresh = signing_key(&secret, date, service);
                assert_eq!(kept.k_signing(), fresh.k_signing(), "round {round}, case {i}");
                assert_eq!(kept.k_date(), fresh.k_date(), "round {round}, case {i}");
            }
        }
        // Secrets that differ only in their last character get different keys.
        let a = kept_signing_key(&Secret::new("secret-a"), "2024-05-01", "cvm");
        let b = kept_signing_key(&Secret::new("secret-b"), "2024-05-01", "cvm");
        assert_ne!(a.k_signing(), b.k_signing());
    }

    proptest! {
        #[test]
        fn parse_authorization_never_panics(value in "\\PC*") {
            let _ = parse_authorization(&value);
        }

        #[test]
        fn parse_authorization_never_panics_after_the_algorithm(rest in "[ ,;=/A-Za-z0-9-]*") {
            let _ = parse_authorization(&format!("TC3-HMAC-SHA256 {rest}"));
        }

        /// Every second of the years the time crate knows (-9999 to 9999): the digits written
        /// directly for years 0 to 9999, formatted for the rest.
        #[test]
        fn utc_date_agrees_with_the_time_crate_everywhere(ts in -377_705_116_800_i64..=253_402_300_799) {
            let d = OffsetDateTime::from_unix_timestamp(ts).unwrap().date();
            let expected = format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day());
            prop_assert_eq!(utc_date(ts), expected);
        }
    }
}
