//! Encodings and digests shared by the four schemes (`shared/reference/signing.md` §1, "Shared building
//! blocks").
//!
//! - [`pct_encode`]: RFC 3986 encoding, the `pct` of both Alibaba schemes.
//! - [`form_decode`]: how a server reads a query string or an `application/x-www-form-urlencoded` body.
//!   It accepts `+` and `%20` alike for a space and refuses what it cannot decode exactly; a signature is
//!   never checked over a lossy decoding.
//! - [`form_encode_component`] and [`form_encode`]: the form encoding the SDKs put on the wire, for
//!   building outgoing requests.
//! - Lower-case hex SHA-256, Base64, and the HMAC start and constant-time signature check shared by the
//!   signers.
//!
//! ```
//! use crossgate::sign::encoding::{form_decode, pct_encode};
//!
//! assert_eq!(pct_encode("key name ~*+/"), "key%20name%20~%2A%2B%2F");
//! let params = form_decode("a=x+y&b=x%20y&c").unwrap();
//! assert_eq!(params[0].1, "x y");
//! assert_eq!(params[1].1, "x y");
//! assert_eq!(params[2].1, "");
//! ```

use std::borrow::Cow;
use std::ops::Range;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use super::Param;

/// Every byte except the RFC 3986 unreserved characters `A-Z a-z 0-9 - _ . ~`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// How much of a parameter name an error message repeats.
const NAME_IN_ERROR: usize = 64;

// === RFC 3986 ===

/// Encodes `s` per RFC 3986: every byte of its UTF-8 form outside `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex). A space becomes `%20`, `*` becomes `%2A`, `~` stays.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    pct_encode_into(&mut out, s);
    out
}

/// [`pct_encode`], appending to `out` instead of allocating.
pub fn pct_encode_into(out: &mut String, s: &str) {
    out.extend(utf8_percent_encode(s, RFC3986));
}

/// `pct(name)=pct(value)` for every pair, sorted by encoded name (byte order; encoded value breaks ties),
/// joined with `&`: the canonical query of both Alibaba schemes (§4 steps 2–3, §5 step 2). An empty
/// value gives `name=`.
pub fn sorted_pct_query<'p>(params: impl IntoIterator<Item = (&'p str, &'p str)>) -> String {
    // Encode every pair once into one buffer and sort ranges of it, rather than a String per piece.
    let params = params.into_iter();
    let count = params.size_hint().1.unwrap_or(params.size_hint().0);
    let mut encoded = String::with_capacity(48 * count);
    let mut pairs: Vec<(Range<usize>, Range<usize>)> = Vec::with_capacity(count);
    for (name, value) in params {
        let start = encoded.len();
        pct_encode_into(&mut encoded, name);
        let middle = encoded.len();
        pct_encode_into(&mut encoded, value);
        pairs.push((start..middle, middle..encoded.len()));
    }
    // Sorting by name alone, not by the joined `name=value`: "a" must come before "a-b" although '-' < '='.
    pairs.sort_unstable_by(|a, b| {
        let text = |r: &Range<usize>| encoded[r.clone()].as_bytes();
        text(&a.0).cmp(text(&b.0)).then_with(|| text(&a.1).cmp(text(&b.1)))
    });

    let mut out = String::with_capacity(encoded.len() + 2 * pairs.len());
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encoded[name]);
        out.push('=');
        out.push_str(&encoded[value]);
    }
    out
}

// === application/x-www-form-urlencoded ===

/// Why a query string or form body could not be decoded exactly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` is not followed by two hex digits.
    #[error("parameter {name:?}: a `%` is not followed by two hex digits")]
    BadEscape {
        /// The parameter's name as received (shortened when long).
        name: String,
    },
    /// The percent-decoded bytes are not UTF-8.
    #[error("parameter {name:?}: the decoded bytes are not valid UTF-8")]
    InvalidUtf8 {
        /// The parameter's name as received (shortened when long).
        name: String,
    },
}

/// Decodes a query string or an `application/x-www-form-urlencoded` body into `(name, value)` pairs, in
/// order.
///
/// Splits on `&`, then each item on its first `=`; turns `+` into a space and `%XX` into the byte XX;
/// the bytes must be UTF-8. Empty items (`a=1&&b=2`) are skipped, and an item without `=` is a name with
/// an empty value. A name or value that needed no decoding is borrowed from `raw`. Duplicate names are
/// kept: refusing them is the caller's decision.
///
/// # Errors
/// [`FormError::BadEscape`] for a `%` without two hex digits after it, [`FormError::InvalidUtf8`] when
/// the decoded bytes are not UTF-8. Nothing is decoded lossily.
pub fn form_decode(raw: &str) -> Result<Vec<Param<'_>>, FormError> {
    let mut params = Vec::with_capacity(raw.bytes().filter(|&b| b == b'&').count() + 1);
    for item in raw.split('&').filter(|item| !item.is_empty()) {
        params.push(form_decode_item(item)?);
    }
    Ok(params)
}

/// Decodes one `name=value` item of a form (no `&` in it), as [`form_decode`] decodes each.
///
/// # Errors
/// As [`form_decode`].
pub fn form_decode_item(item: &str) -> Result<Param<'_>, FormError> {
    let (name, value) = item.split_once('=').unwrap_or((item, ""));
    Ok((decode_component(name, name)?, decode_component(value, name)?))
}

/// Decodes one name or value; `name` is the raw parameter name, for the error message.
fn decode_component<'a>(raw: &'a str, name: &str) -> Result<Cow<'a, str>, FormError> {
    if !raw.bytes().any(|b| b == b'+' || b == b'%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).copied().and_then(hex_value);
                let lo = bytes.get(i + 2).copied().and_then(hex_value);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(FormError::BadEscape { name: shorten(name) });
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| FormError::InvalidUtf8 { name: shorten(name) })
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The first [`NAME_IN_ERROR`] bytes of a name, cut at a character boundary.
fn shorten(name: &str) -> String {
    let mut end = name.len().min(NAME_IN_ERROR);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_owned()
}

/// Encodes one name or value for a query string or form body, as the SDKs do (Python's `quote_plus`):
/// a space becomes `+`, every other byte outside `A-Z a-z 0-9 - _ . ~` becomes `%XX`.
pub fn form_encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    form_encode_component_into(&mut out, s);
    out
}

/// [`form_encode_component`], appending to `out` instead of allocating.
pub fn form_encode_component_into(out: &mut String, s: &str) {
    for (i, piece) in s.split(' ').enumerate() {
        if i > 0 {
            out.push('+');
        }
        pct_encode_into(out, piece);
    }
}

/// Encodes `(name, value)` pairs, in the order given, as a query string or form body (`a=1&b=x+y`).
pub fn form_encode<N: AsRef<str>, V: AsRef<str>>(params: &[(N, V)]) -> String {
    let len: usize = params.iter().map(|(n, v)| n.as_ref().len() + v.as_ref().len() + 2).sum();
    let mut out = String::with_capacity(len + len / 4);
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        form_encode_component_into(&mut out, name.as_ref());
        out.push('=');
        form_encode_component_into(&mut out, value.as_ref());
    }
    out
}

// === digests ===

/// Lower-case hex SHA-256 of `data` (TC3 and ACS3 payload and canonical-request hashes).
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

/// Lower-case hex of `bytes`, written in one pass into a buffer of the final size.
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    push_hex_lower(&mut out, bytes);
    out
}

/// Appends `bytes` as lowercase hex to `out`.
pub fn push_hex_lower(out: &mut String, bytes: &[u8]) {
    let mut buf = [0u8; 128];
    for chunk in bytes.chunks(buf.len() / 2) {
        let hex = &mut buf[..chunk.len() * 2];
        const_hex::encode_to_slice(chunk, hex).expect("the buffer is twice the chunk's length");
        out.push_str(std::str::from_utf8(hex).expect("hex digits are ASCII"));
    }
}

/// Fills `digits` with the last `digits.len()` decimal digits of `value`, zero-padded: the fixed-width
/// numbers of dates and times, written without the formatting machinery.
pub fn fixed_digits(digits: &mut [u8], mut value: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Base64 (standard alphabet, padded), the form of Tencent v1 and Alibaba RPC signatures.
pub fn base64_encode(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Decodes padded standard Base64; `None` when it is not exactly that.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// Decodes hex in either case; `None` when it is not hex (a `0x` prefix included, which the decoder
/// would take off).
pub fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if matches!(s.as_bytes(), [b'0', b'x' | b'X', ..]) {
        return None;
    }
    const_hex::decode(s).ok()
}

/// An HMAC keyed with `key` that has read `msg`, ready to `finalize` (sign) or `verify_slice` (verify).
pub(crate) fn mac<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> M {
    // HMAC hashes a long key and pads a short one: no key length is invalid.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts a key of any length");
    mac.update(msg);
    mac
}

/// Whether `presented`, a signature as it came on the wire, is HMAC(`key`, `msg`): decoded with `decode`
/// ([`hex_decode`] for TC3 and ACS3, [`base64_decode`] for Tencent v1 and Alibaba RPC), then compared in
/// constant time by `Mac::verify_slice`. A signature that does not decode never matches.
pub(crate) fn mac_matches<M: Mac + KeyInit>(
    key: &[u8],
    msg: &[u8],
    presented: &str,
    decode: fn(&str) -> Option<Vec<u8>>,
) -> bool {
    decode(presented).is_some_and(|bytes| mac::<M>(key, msg).verify_slice(&bytes).is_ok())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn decoded(raw: &str) -> Vec<(String, String)> {
        form_decode(raw).unwrap().into_iter().map(|(n, v)| (n.into_owned(), v.into_owned())).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn hex_is_appended_whole_past_the_buffer() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let bytes: Vec<u8> = (0..len).map(|i| u8::try_from(i * 37 % 256).unwrap()).collect();
            let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut out = String::from("k:");
            push_hex_lower(&mut out, &bytes);
            assert_eq!(out, format!("k:{expected}"), "{len} bytes");
            assert_eq!(hex_lower(&bytes), expected);
        }
    }

    #[test]
    fn pct_encode_follows_rfc3986() {
        assert_eq!(pct_encode(""), "");
        assert_eq!(pct_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(
            pct_encode("key name ~*+/ 中文 é&=%"),
            "key%20name%20~%2A%2B%2F%20%E4%B8%AD%E6%96%87%20%C3%A9%26%3D%25"
        );
        assert_eq!(pct_encode("2024-05-01T08:00:00Z"), "2024-05-01T08%3A00%3A00Z");
        let mut out = String::from("x=");
        pct_encode_into(&mut out, "a b");
        assert_eq!(out, "x=a%20b");
    }

    #[test]
    fn sorted_pct_query_sorts_by_encoded_name() {
        assert_eq!(sorted_pct_query([("b", "x y"), ("a-b", "2"), ("a", "1"), ("E", "")]), "E=&a=1&a-b=2&b=x%20y");
        assert_eq!(sorted_pct_query([("k", "2"), ("k", "1")]), "k=1&k=2");
        assert_eq!(sorted_pct_query([]), "");
    }

    #[test]
    fn plus_and_pct20_both_decode_to_a_space() {
        assert_eq!(decoded("a=x+y&b=x%20y&c=x%2By"), pairs(&[("a", "x y"), ("b", "x y"), ("c", "x+y")]));
    }

    #[test]
    fn empty_values_empty_items_and_bare_names() {
        assert_eq!(decoded(""), pairs(&[]));
        assert_eq!(decoded("&&"), pairs(&[]));
        assert_eq!(decoded("a=1&&b=2&"), pairs(&[("a", "1"), ("b", "2")]));
        assert_eq!(decoded("a=&b&=v"), pairs(&[("a", ""), ("b", ""), ("", "v")]));
        assert_eq!(decoded("a==b=c"), pairs(&[("a", "=b=c")]));
    }

    #[test]
    fn names_are_decoded_too() {
        assert_eq!(decoded("Filters.0%2EName=k+n&a+b=1"), pairs(&[("Filters.0.Name", "k n"), ("a b", "1")]));
    }

    #[test]
    fn utf8_and_awkward_values_decode_exactly() {
        let raw = "v=key+name+~%2A%2B%2F+%E4%B8%AD%E6%96%87+%C3%A9%26%3D%25&w=%e4%b8%ad";
        assert_eq!(decoded(raw), pairs(&[("v", "key name ~*+/ 中文 é&=%"), ("w", "中")]));
        // Raw UTF-8 in the query is already text.
        assert_eq!(decoded("v=中文"), pairs(&[("v", "中文")]));
    }

    #[test]
    fn borrows_when_nothing_needs_decoding() {
        let params = form_decode("Action=DescribeKeyPairs&Name=a+b&Limit=20").unwrap();
        assert!(matches!(params[0].0, Cow::Borrowed("Action")));
        assert!(matches!(params[0].1, Cow::Borrowed("DescribeKeyPairs")));
        assert!(matches!(params[1].1, Cow::Owned(_)));
        assert!(matches!(params[2].1, Cow::Borrowed("20")));
    }

    #[test]
    fn bad_escapes_are_errors() {
        for raw in ["a=%", "a=%4", "a=%G0", "a=%0G", "a=x%zz", "a%=1", "a=1&bad=%%41"] {
            assert!(matches!(form_decode(raw), Err(FormError::BadEscape { .. })), "{raw}");
        }
        let err = form_decode("ok=1&Sig=%2").unwrap_err();
        assert_eq!(err, FormError::BadEscape { name: "Sig".into() });
        assert!(err.to_string().contains("\"Sig\""), "{err}");
    }

    #[test]
    fn invalid_utf8_is_an_error_not_lossy() {
        for raw in ["a=%FF", "a=%C3", "a=%C3%28", "a=%ED%A0%80", "%FF=1"] {
            assert!(matches!(form_decode(raw), Err(FormError::InvalidUtf8 { .. })), "{raw}");
        }
        let err = form_decode("KeyPairName=%E4%B8").unwrap_err();
        assert_eq!(err, FormError::InvalidUtf8 { name: "KeyPairName".into() });
        assert!(err.to_string().contains("KeyPairName"), "{err}");
    }

    #[test]
    fn error_messages_shorten_long_names() {
        let name = "é".repeat(100);
        let err = form_decode(&format!("{name}=%")).unwrap_err();
        let FormError::BadEscape { name: shown } = err else { panic!("{err:?}") };
        assert!(shown.len() <= NAME_IN_ERROR && !shown.is_empty());
    }

    #[test]
    fn form_encoding_matches_the_sdks() {
        assert_eq!(
            form_encode_component("key name ~*+/ 中文 é&=%"),
            "key+name+~%2A%2B%2F+%E4%B8%AD%E6%96%87+%C3%A9%26%3D%25"
        );
        assert_eq!(
            form_encode_component("/pTi1viKkoE5r0akVASWGW+R3lAfb8f9J7jb//Le9o4="),
            "%2FpTi1viKkoE5r0akVASWGW%2BR3lAfb8f9J7jb%2F%2FLe9o4%3D"
        );
        assert_eq!(form_encode_component(" "), "+");
        assert_eq!(form_encode(&[("a b", "1"), ("Empty", ""), ("c", "x&y")]), "a+b=1&Empty=&c=x%26y");
        assert_eq!(form_encode::<&str, &str>(&[]), "");
    }

    #[test]
    fn form_encode_then_decode_round_trips() {
        let params = [("InstanceIds.0", "ins-1"), ("Name", "key name ~*+/ 中文 é&=%"), ("E", ""), ("+&=", "%")];
        assert_eq!(decoded(&form_encode(&params)), pairs(&params));
    }

    #[test]
    fn digests_and_codecs() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(base64_encode(b"\xff\x00"), "/wA=");
        assert_eq!(base64_decode("/wA="), Some(vec![0xff, 0]));
        assert_eq!(base64_decode("/wA"), None);
        assert_eq!(base64_decode("/w A="), None);
        assert_eq!(hex_decode("aBcD"), Some(vec![0xab, 0xcd]));
        assert_eq!(hex_decode("abc"), None);
        assert_eq!(hex_decode("zz"), None);
        assert_eq!(hex_decode("0xab"), None);
        assert_eq!(hex_decode("0Xab"), None);
        assert_eq!(hex_decode("0a"), Some(vec![0x0a]));
    }

    proptest! {
        #[test]
        fn form_decode_never_panics(raw in "\\PC*") {
            let _ = form_decode(&raw);
        }

        #[test]
        fn form_decode_never_panics_on_escapes(raw in "([a-z=&+]|%[0-9a-fA-FgG]{0,2})*") {
            let _ = form_decode(&raw);
        }

        #[test]
        fn form_encode_then_decode_is_identity(params in prop::collection::vec(("\\PC*", "\\PC*"), 0..6)) {
            prop_assert_eq!(decoded(&form_encode(&params)), params);
        }

        #[test]
        fn pct_encode_leaves_only_unreserved_and_escapes(s in "\\PC*") {
            let encoded = pct_encode(&s);
            prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
            prop_assert_eq!(decoded(&format!("v={encoded}")), vec![("v".to_string(), s)]);
        }
    }
}
