//! The canonical request TC3 and ACS3 share (`shared/reference/signing.md` §3 steps 3–5, §5 steps 3–5):
//! the CanonicalHeaders block with its SignedHeaders list, the six-line CanonicalRequest and its hash,
//! and the header checks both verifiers make.
//!
//! The schemes differ only in how they fill it in, which they say with arguments: TC3 lower-cases header
//! values ([`ValueCase::Lower`]) and gives each header its own line, ACS3 keeps values as sent and joins
//! a repeated header's values with `,` ([`Repeats::Joined`]); TC3's CanonicalURI is always `/`, ACS3's
//! is the path.

use std::borrow::Cow;

use super::encoding::sha256_hex;

/// How header values enter the canonical headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueCase {
    /// Lower-cased, as the TC3 documentation says (`x-tc-action:describeinstances`).
    Lower,
    /// As sent, as the TC3 SDKs and ACS3 do. Only differs when a client signs an upper-case value.
    AsSent,
}

/// What a header given more than once becomes in the canonical headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeats {
    /// One line per occurrence, and the name once per occurrence in SignedHeaders (TC3).
    OneLineEach,
    /// One line per name, its trimmed values sorted and joined with `,` (ACS3).
    Joined,
}

/// The CanonicalHeaders block and the SignedHeaders list built from the same headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalHeaders {
    /// `lower(name):trim(value)\n` per header (per name when repeats are joined), sorted by name; ends
    /// with `\n`.
    pub canonical: String,
    /// The lower-case names joined with `;`, in the same order.
    pub signed: String,
}

/// CanonicalHeaders and SignedHeaders over exactly the headers given: names lower-cased, values trimmed
/// (and lower-cased for [`ValueCase::Lower`]), sorted by name and then by trimmed value.
pub(crate) fn canonical_headers(headers: &[(&str, &str)], case: ValueCase, repeats: Repeats) -> CanonicalHeaders {
    let mut lines: Vec<(Cow<'_, str>, &str)> = headers.iter().map(|(n, v)| (lower_case(n), v.trim())).collect();
    lines.sort_unstable();
    let len: usize = lines.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut canonical = String::with_capacity(len);
    let mut signed = String::with_capacity(len);
    for (i, (name, value)) in lines.iter().enumerate() {
        if repeats == Repeats::Joined && i > 0 && lines[i - 1].0 == *name {
            // same name again: ",value" on the same line
            canonical.pop();
            canonical.push(',');
        } else {
            // lower(name) + ":"
            if i > 0 {
                signed.push(';');
            }
            signed.push_str(name);
            canonical.push_str(name);
            canonical.push(':');
        }
        // trim(value) + "\n"
        let start = canonical.len();
        canonical.push_str(value);
        if case == ValueCase::Lower {
            canonical[start..].make_ascii_lowercase();
        }
        canonical.push('\n');
    }
    CanonicalHeaders { canonical, signed }
}

/// `name` in lower case; names arrive so from the HTTP parser, and are copied only when they do not.
fn lower_case(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// CanonicalRequest: six lines, the last without `\n`.
pub(crate) fn canonical_request(
    method: &str,
    uri: &str,
    query: &str,
    headers: &CanonicalHeaders,
    hashed_payload: &str,
) -> String {
    let mut out = String::with_capacity(
        method.len()
            + uri.len()
            + query.len()
            + headers.canonical.len()
            + headers.signed.len()
            + hashed_payload.len()
            + 5,
    );
    // <HTTPRequestMethod>\n
    out.push_str(method);
    out.push('\n');
    // <CanonicalURI>\n
    out.push_str(uri);
    out.push('\n');
    // <CanonicalQueryString>\n
    out.push_str(query);
    out.push('\n');
    // <CanonicalHeaders>\n: the block ends in "\n", so an empty line follows it
    out.push_str(&headers.canonical);
    out.push('\n');
    // <SignedHeaders>\n
    out.push_str(&headers.signed);
    out.push('\n');
    // <HashedRequestPayload>
    out.push_str(hashed_payload);
    out
}

/// Lower-hex SHA-256 of the canonical request.
pub fn hashed_canonical_request(canonical_request: &str) -> String {
    sha256_hex(canonical_request.as_bytes())
}

/// The headers a signer signs: all it was given but an `Authorization` among them.
pub(crate) fn headers_to_sign<'a>(headers: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    headers.iter().copied().filter(|(name, _)| !name.eq_ignore_ascii_case("authorization")).collect()
}

/// Whether a presented SignedHeaders list names `header` (ASCII case-insensitive).
pub(crate) fn signs(signed_headers: &[&str], header: &str) -> bool {
    signed_headers.iter().any(|name| name.eq_ignore_ascii_case(header))
}

/// Whether a presented SignedHeaders list names every one of `required`.
pub(crate) fn signs_all(signed_headers: &[&str], required: &[&str]) -> bool {
    required.iter().all(|header| signs(signed_headers, header))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_take_one_line_each_or_join() {
        let headers = [("X-A", "b"), ("x-a", " A "), ("Host", "h")];
        let each = canonical_headers(&headers, ValueCase::Lower, Repeats::OneLineEach);
        assert_eq!(each.canonical, "host:h\nx-a:a\nx-a:b\n");
        assert_eq!(each.signed, "host;x-a;x-a");
        let joined = canonical_headers(&headers, ValueCase::AsSent, Repeats::Joined);
        assert_eq!(joined.canonical, "host:h\nx-a:A,b\n");
        assert_eq!(joined.signed, "host;x-a");
    }

    #[test]
    fn canonical_request_is_six_lines() {
        let headers = CanonicalHeaders { canonical: "host:h\n".into(), signed: "host".into() };
        assert_eq!(canonical_request("GET", "/", "a=1", &headers, "e3"), "GET\n/\na=1\nhost:h\n\nhost\ne3");
    }

    #[test]
    fn signed_header_checks_ignore_case() {
        assert!(signs_all(&["Content-Type", "host"], &["content-type", "HOST"]));
        assert!(!signs_all(&["host"], &["content-type", "host"]));
        assert!(signs_all(&[], &[]));
        assert!(!signs(&[], "host"));
    }
}
