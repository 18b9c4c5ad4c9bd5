//! Tencent signature v1, HmacSHA1 and HmacSHA256 (`shared/reference/signing.md` §2): the legacy API 2.0
//! endpoint `/v2/index.php` and API 3.0 endpoints called the old way.
//!
//! The string to sign is `METHOD + host + path + "?" + joined`, where `joined` is every parameter except
//! `Signature`, names with `_` turned into `.`, sorted by name in byte order, joined as raw
//! `name=value` with `&` (values are not encoded). The signature is Base64(HMAC(SecretKey, string)).
//!
//! ```
//! use crossgate::secret::Secret;
//! use crossgate::sign::SignInput;
//! use crossgate::sign::tencent_v1::{self, Hash};
//! use std::borrow::Cow;
//!
//! let input = SignInput {
//!     method: "GET",
//!     host: "cvm.tencentcloudapi.com",
//!     path: "/",
//!     params: vec![(Cow::Borrowed("Nonce"), Cow::Borrowed("1")), (Cow::Borrowed("Action"), Cow::Borrowed("X"))],
//!     ..SignInput::default()
//! };
//! assert_eq!(tencent_v1::string_to_sign(&input), "GETcvm.tencentcloudapi.com/?Action=X&Nonce=1");
//! let signed = tencent_v1::sign(&input, Hash::Sha1, &Secret::new("key"));
//! assert_eq!(signed.signature.len(), 28);
//! ```

use std::borrow::Cow;

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::encoding::{base64_decode, base64_encode, mac, mac_matches};
use super::{AuthMaterial, Mismatch, Part, Scheme, SignInput, Signed};
use crate::secret::Secret;

/// The parameter that carries the signature; it is never part of the string to sign.
const SIGNATURE: &str = "Signature";

/// The HMAC hash, chosen by the `SignatureMethod` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    /// `HmacSHA1`, also the default when `SignatureMethod` is absent.
    Sha1,
    /// `HmacSHA256`.
    Sha256,
}

impl Hash {
    /// The hash a v1 scheme uses; `None` for the other schemes.
    pub fn of(scheme: Scheme) -> Option<Hash> {
        match scheme {
            Scheme::TencentV1Sha1 => Some(Hash::Sha1),
            Scheme::TencentV1Sha256 => Some(Hash::Sha256),
            Scheme::Tc3 | Scheme::AliyunRpc | Scheme::Acs3 => None,
        }
    }
}

/// The string to sign: `METHOD + host + path + "?" + joined` (§2 steps 1–5).
///
/// `input.params` are the decoded parameters; a `Signature` among them is left out.
pub fn string_to_sign(input: &SignInput<'_>) -> String {
    // Steps 1–2: every parameter except Signature, `_` in names read as `.`.
    let mut params: Vec<(Cow<'_, str>, &str)> = input
        .params
        .iter()
        .filter(|(name, _)| name != SIGNATURE)
        .map(|(name, value)| (dotted(name), value.as_ref()))
        .collect();
    // Step 3: byte order of the names (`InstanceIds.10` before `InstanceIds.2`); values break ties so the
    // result never depends on arrival order.
    params.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()).then_with(|| a.1.cmp(b.1)));

    let joined_len: usize = params.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(input.method.len() + input.host.len() + input.path.len() + 1 + joined_len);
    // Step 5: METHOD + host + path + "?"
    out.push_str(input.method);
    out.push_str(input.host);
    out.push_str(input.path);
    out.push('?');
    // Step 4: raw name=value joined with &
    for (i, (name, value)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A name with every `_` replaced by `.`, borrowed when it has none.
fn dotted(name: &str) -> Cow<'_, str> {
    if name.contains('_') { Cow::Owned(name.replace('_', ".")) } else { Cow::Borrowed(name) }
}

/// Signs with key = SecretKey: the signature is Base64(HMAC(SecretKey, string to sign)) (§2 step 6).
pub fn sign(input: &SignInput<'_>, hash: Hash, key: &Secret) -> Signed {
    let string_to_sign = string_to_sign(input);
    let secret = key.expose().as_bytes();
    // Signature = Base64(HMAC(SecretKey, StringToSign)), SHA-1 or SHA-256 per SignatureMethod
    let signature = match hash {
        Hash::Sha1 => base64_encode(&mac::<Hmac<Sha1>>(secret, string_to_sign.as_bytes()).finalize().into_bytes()),
        Hash::Sha256 => base64_encode(&mac::<Hmac<Sha256>>(secret, string_to_sign.as_bytes()).finalize().into_bytes()),
    };
    Signed { canonical_request: None, string_to_sign, signature, authorization: None }
}

/// Checks the presented Base64 signature in constant time, with the hash of `material.scheme`.
///
/// # Errors
/// [`Part::Algorithm`] when the scheme is not v1; [`Part::Signature`] when the signature is not Base64 or
/// does not match. The [`Mismatch`] carries the string to sign.
pub fn verify(material: &AuthMaterial<'_>, key: &Secret) -> Result<(), Mismatch> {
    let string_to_sign = string_to_sign(&material.input);
    let Some(hash) = Hash::of(material.scheme) else {
        return Err(Mismatch { part: Part::Algorithm, string_to_sign });
    };
    let (secret, msg, presented) = (key.expose().as_bytes(), string_to_sign.as_bytes(), material.signature.as_ref());
    let matches = match hash {
        Hash::Sha1 => mac_matches::<Hmac<Sha1>>(secret, msg, presented, base64_decode),
        Hash::Sha256 => mac_matches::<Hmac<Sha256>>(secret, msg, presented, base64_decode),
    };
    if !matches {
        return Err(Mismatch { part: Part::Signature, string_to_sign });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(params: &[(&'a str, &'a str)]) -> SignInput<'a> {
        SignInput {
            method: "GET",
            host: "cvm.api.qcloud.com",
            path: "/v2/index.php",
            params: params.iter().map(|&(n, v)| (Cow::Borrowed(n), Cow::Borrowed(v))).collect(),
            ..SignInput::default()
        }
    }

    fn material<'a>(scheme: Scheme, signature: &'a str, input: SignInput<'a>) -> AuthMaterial<'a> {
        AuthMaterial {
            scheme,
            credential_id: Cow::Borrowed("AKID"),
            signature: Cow::Borrowed(signature),
            timestamp: 0,
            nonce: None,
            scope_date: None,
            scope_service: None,
            signed_headers: Vec::new(),
            input,
        }
    }

    #[test]
    fn underscores_become_dots_and_sorting_is_bytewise() {
        let sts = string_to_sign(&input(&[("b_c", "1"), ("a.10", "x"), ("a.2", "y"), ("B", "z"), ("Signature", "s")]));
        assert_eq!(sts, "GETcvm.api.qcloud.com/v2/index.php?B=z&a.10=x&a.2=y&b.c=1");
    }

    #[test]
    fn values_go_in_raw_and_empty_values_stay() {
        let sts = string_to_sign(&input(&[("v", "a b&c=%中"), ("e", "")]));
        assert_eq!(sts, "GETcvm.api.qcloud.com/v2/index.php?e=&v=a b&c=%中");
        assert_eq!(string_to_sign(&input(&[])), "GETcvm.api.qcloud.com/v2/index.php?");
    }

    #[test]
    fn documentation_example() {
        let i = input(&[
            ("Action", "DescribeInstances"),
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Limit", "20"),
            ("Nonce", "11886"),
            ("Offset", "0"),
            ("Region", "ap-guangzhou"),
            ("SecretId", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"),
            ("Timestamp", "1465185768"),
            ("Version", "2017-03-12"),
        ]);
        let i = SignInput { host: "cvm.tencentcloudapi.com", path: "/", ..i };
        let signed = sign(&i, Hash::Sha1, &Secret::new("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"));
        assert_eq!(signed.signature, "EliP9YW3pW28FpsEdkXt/+WcGeI=");
    }

    #[test]
    fn verify_round_trips_and_rejects_garbage_without_panicking() {
        let key = Secret::new("k");
        for (scheme, hash) in [(Scheme::TencentV1Sha1, Hash::Sha1), (Scheme::TencentV1Sha256, Hash::Sha256)] {
            let signed = sign(&input(&[("A", "1")]), hash, &key);
            assert_eq!(verify(&material(scheme, &signed.signature, input(&[("A", "1")])), &key), Ok(()));
            for bad in ["", "=", "not base64!", "AAAA", &signed.signature[1..], "ÿÿÿÿ"] {
                let err = verify(&material(scheme, bad, input(&[("A", "1")])), &key).unwrap_err();
                assert_eq!(err.part, Part::Signature, "{bad:?}");
                assert_eq!(err.string_to_sign, signed.string_to_sign);
            }
        }
        // SHA-1 signature presented as SHA-256 and vice versa.
        let sha1 = sign(&input(&[]), Hash::Sha1, &key).signature;
        assert!(verify(&material(Scheme::TencentV1Sha256, &sha1, input(&[])), &key).is_err());
    }

    #[test]
    fn other_schemes_are_refused() {
        let err = verify(&material(Scheme::Tc3, "AAAA", input(&[])), &Secret::new("k")).unwrap_err();
        assert_eq!(err.part, Part::Algorithm);
    }
}
