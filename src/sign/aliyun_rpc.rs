//! Alibaba Cloud RPC signature, HMAC-SHA1, SignatureVersion 1.0 (`shared/reference/signing.md` §4): ECS
//! RPC calls as aliyun-python-sdk-core and the tea SDK with `signatureAlgorithm = "v2"` make them.
//!
//! Stages: [`canonicalized_query_string`] (every parameter but `Signature`, query and form body merged,
//! names and values RFC 3986-encoded, sorted by name), [`string_to_sign`]
//! (`METHOD&%2F&pct(canonicalized)`), then Base64(HMAC-SHA1(key = secret + `&`, string to sign)).
//!
//! ```
//! use crossgate::sign::aliyun_rpc::string_to_sign;
//!
//! assert_eq!(string_to_sign("GET", "A=x%20y&B=1"), "GET&%2F&A%3Dx%2520y%26B%3D1");
//! ```

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::encoding::{base64_decode, base64_encode, mac, mac_matches, pct_encode_into, sorted_pct_query};
use super::{AuthMaterial, Mismatch, Param, Part, Scheme, SignInput, Signed};
use crate::secret::Secret;

/// The parameter that carries the signature; it is never part of the canonical string.
const SIGNATURE: &str = "Signature";

/// The CanonicalizedQueryString (§4 steps 1–3): each name and value encoded with `pct`, sorted by
/// encoded name (byte order), joined as `name=value` with `&`. A `Signature` parameter is left out.
pub fn canonicalized_query_string(params: &[Param<'_>]) -> String {
    sorted_pct_query(params.iter().filter(|(name, _)| name != SIGNATURE).map(|(n, v)| (n.as_ref(), v.as_ref())))
}

/// The StringToSign (§4 step 4): `METHOD + "&" + pct("/") + "&" + pct(canonicalized)`.
pub fn string_to_sign(method: &str, canonicalized: &str) -> String {
    let mut out = String::with_capacity(method.len() + 4 + canonicalized.len() * 5 / 4);
    out.push_str(method);
    out.push_str("&%2F&");
    pct_encode_into(&mut out, canonicalized);
    out
}

/// The HMAC key (§4 step 5): AccessKeySecret + `"&"`, itself a [`Secret`] (hidden from Debug, zeroed on
/// drop).
pub fn hmac_key(key: &Secret) -> Secret {
    let secret = key.expose();
    let mut out = String::with_capacity(secret.len() + 1);
    out.push_str(secret);
    out.push('&');
    Secret::new(out)
}

/// Signs `input.params` (query and form body merged) with `input.method`:
/// Signature = Base64(HMAC-SHA1(key = secret + "&", string to sign)).
pub fn sign(input: &SignInput<'_>, key: &Secret) -> Signed {
    let string_to_sign = string_to_sign(input.method, &canonicalized_query_string(&input.params));
    // Signature = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
    let tag = mac::<Hmac<Sha1>>(hmac_key(key).expose().as_bytes(), string_to_sign.as_bytes()).finalize().into_bytes();
    Signed { canonical_request: None, string_to_sign, signature: base64_encode(&tag), authorization: None }
}

/// Checks the presented Base64 signature in constant time.
///
/// # Errors
/// [`Part::Algorithm`] when the scheme is not Alibaba RPC; [`Part::Signature`] when the signature is not
/// Base64 or does not match. The [`Mismatch`] carries the string to sign, which Alibaba's own error
/// message echoes (`server string to sign is:`).
pub fn verify(material: &AuthMaterial<'_>, key: &Secret) -> Result<(), Mismatch> {
    let input = &material.input;
    let string_to_sign = string_to_sign(input.method, &canonicalized_query_string(&input.params));
    if material.scheme != Scheme::AliyunRpc {
        return Err(Mismatch { part: Part::Algorithm, string_to_sign });
    }
    let key = hmac_key(key);
    if !mac_matches::<Hmac<Sha1>>(
        key.expose().as_bytes(),
        string_to_sign.as_bytes(),
        &material.signature,
        base64_decode,
    ) {
        return Err(Mismatch { part: Part::Signature, string_to_sign });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn params<'a>(list: &[(&'a str, &'a str)]) -> Vec<Param<'a>> {
        list.iter().map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))).collect()
    }

    fn material<'a>(scheme: Scheme, signature: &'a str, list: &[(&'a str, &'a str)]) -> AuthMaterial<'a> {
        AuthMaterial {
            scheme,
            credential_id: Cow::Borrowed("testid"),
            signature: Cow::Borrowed(signature),
            timestamp: 0,
            nonce: None,
            scope_date: None,
            scope_service: None,
            signed_headers: Vec::new(),
            input: SignInput {
                method: "GET",
                host: "ecs.aliyuncs.com",
                path: "/",
                params: params(list),
                ..SignInput::default()
            },
        }
    }

    #[test]
    fn canonical_string_encodes_sorts_and_keeps_empty_values() {
        let cqs = canonicalized_query_string(&params(&[
            ("Timestamp", "2024-05-01T08:00:00Z"),
            ("SignatureType", ""),
            ("Signature", "left out"),
            ("KeyPairName", "key name ~*+/ 中文 é&=%"),
            ("Action", "AttachKeyPair"),
        ]));
        assert_eq!(
            cqs,
            "Action=AttachKeyPair&KeyPairName=key%20name%20~%2A%2B%2F%20%E4%B8%AD%E6%96%87%20%C3%A9%26%3D%25\
             &SignatureType=&Timestamp=2024-05-01T08%3A00%3A00Z"
        );
        assert_eq!(canonicalized_query_string(&[]), "");
    }

    #[test]
    fn sorting_uses_the_encoded_name_not_the_pair() {
        // "a" sorts before "a-b" even though '-' < '=' in byte order.
        assert_eq!(canonicalized_query_string(&params(&[("a-b", "2"), ("a", "1")])), "a=1&a-b=2");
    }

    #[test]
    fn space_is_pct20_twice_encoded() {
        assert_eq!(string_to_sign("POST", "K=key%20pair"), "POST&%2F&K%3Dkey%2520pair");
        assert_eq!(string_to_sign("GET", ""), "GET&%2F&");
    }

    #[test]
    fn key_gets_an_ampersand() {
        assert_eq!(hmac_key(&Secret::new("testsecret")).expose(), "testsecret&");
        assert_eq!(hmac_key(&Secret::new("")).expose(), "&");
        assert_eq!(format!("{:?}", hmac_key(&Secret::new("testsecret"))), "Secret(***)");
    }

    #[test]
    fn documentation_example() {
        let list = [
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ];
        let m = material(Scheme::AliyunRpc, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=", &list);
        assert_eq!(sign(&m.input, &Secret::new("testsecret")).signature, "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        assert_eq!(verify(&m, &Secret::new("testsecret")), Ok(()));
        assert_eq!(verify(&m, &Secret::new("testsecreT")).unwrap_err().part, Part::Signature);
    }

    #[test]
    fn garbage_signatures_are_refused_without_panicking() {
        let key = Secret::new("testsecret");
        for bad in ["", "====", "OLeaidS1JvxuMvnyHOwuJ+uX5qY", "OLeaidS1JvxuMvnyHOwuJ uX5qY=", "中文"] {
            let err = verify(&material(Scheme::AliyunRpc, bad, &[("A", "1")]), &key).unwrap_err();
            assert_eq!(err.part, Part::Signature);
            assert_eq!(err.string_to_sign, "GET&%2F&A%3D1");
        }
        let err = verify(&material(Scheme::Acs3, "AAAA", &[]), &key).unwrap_err();
        assert_eq!(err.part, Part::Algorithm);
    }
}
