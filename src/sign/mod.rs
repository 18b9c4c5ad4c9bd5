//! Signing and verification for every scheme the dialects use (`shared/reference/signing.md`).
//!
//! Each scheme lives in its own file and exposes the same two functions:
//! `sign(&SignInput, credential_id, &Secret) -> Signed` to produce, and
//! `verify(&AuthMaterial, &Secret) -> Result<(), Mismatch>` to check a presented signature in constant time.
//! What schemes share is written once beside them: [`encoding`] (percent and form encoding, digests, the
//! HMAC and its constant-time check, for all four), and, for TC3 and ACS3, `canonical` (canonical headers
//! and request) and `authorization` (the `Authorization` header's fields and error type).
//! Time and nonce are inputs; nothing here reads a clock or keeps state. Freshness and replay are checked
//! by the caller of [`verify`] with the `timestamp` and `nonce` of [`AuthMaterial`].

use std::borrow::Cow;
use std::fmt;

use crate::secret::Secret;

pub mod acs3;
pub mod aliyun_rpc;
mod authorization;
mod canonical;
pub mod encoding;
pub mod tc3;
pub mod tencent_v1;

/// One decoded parameter: name and value, borrowed from the request when no escape had to be undone.
pub type Param<'a> = (Cow<'a, str>, Cow<'a, str>);

/// A signature scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Tencent signature v1 with HmacSHA1 (also the default when `SignatureMethod` is absent).
    TencentV1Sha1,
    /// Tencent signature v1 with HmacSHA256.
    TencentV1Sha256,
    /// Tencent TC3-HMAC-SHA256 (signature v3).
    Tc3,
    /// Alibaba RPC signature, HMAC-SHA1, SignatureVersion 1.0.
    AliyunRpc,
    /// Alibaba ACS3-HMAC-SHA256 (signature V3).
    Acs3,
}

impl Scheme {
    /// The scheme's name as the wire spells it.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::TencentV1Sha1 => "HmacSHA1",
            Scheme::TencentV1Sha256 => "HmacSHA256",
            Scheme::Tc3 => "TC3-HMAC-SHA256",
            Scheme::AliyunRpc => "HMAC-SHA1",
            Scheme::Acs3 => "ACS3-HMAC-SHA256",
        }
    }
}

/// Everything a signature covers, borrowed from the request as received (to verify) or as it is about
/// to be sent (to sign). Each scheme reads only the fields it needs.
#[derive(Debug, Clone, Default)]
pub struct SignInput<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The Host header as received (verify) or as it will be sent (sign), `:port` included.
    pub host: &'a str,
    /// The request path: `/` or `/v2/index.php`.
    pub path: &'a str,
    /// The raw query string as sent, without `?` (TC3 GET signs it verbatim).
    pub query: &'a str,
    /// Decoded parameters without `Signature`. Tencent v1 and Alibaba RPC sign these (query and form
    /// body merged); ACS3 signs the decoded query parameters.
    pub params: Vec<Param<'a>>,
    /// Request headers as `(name, value)`, names in any case. To sign, every header given here is
    /// signed (TC3: give `content-type` and `host`); to verify, the presented SignedHeaders pick from them.
    pub headers: Vec<(&'a str, &'a str)>,
    /// The exact body bytes.
    pub body: &'a [u8],
    /// TC3: the `X-TC-Timestamp` value, Unix seconds (it decides the credential scope's date).
    pub timestamp: i64,
    /// TC3: the service in the credential scope (`cvm` or `lighthouse`).
    pub service: &'a str,
}

/// What signing produced, stage by stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// TC3 and ACS3: the canonical request.
    pub canonical_request: Option<String>,
    /// The string to sign.
    pub string_to_sign: String,
    /// The signature as it goes on the wire (Base64 for v1 and RPC, lower-case hex for TC3 and ACS3).
    pub signature: String,
    /// TC3 and ACS3: the full `Authorization` header value.
    pub authorization: Option<String>,
}

/// The part of a request that made verification fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The signature value itself did not match (or could not be decoded).
    Signature,
    /// The credential scope (TC3 date or service) does not fit the request.
    CredentialScope,
    /// A header that must be signed is not in SignedHeaders, or a signed header is absent.
    SignedHeaders,
    /// The timestamp used in the scope does not fit the credential date.
    Timestamp,
    /// The declared body hash does not match the body.
    BodyHash,
    /// The signature method or algorithm is not supported.
    Algorithm,
}

impl Part {
    /// A short human name for the part.
    pub fn describe(self) -> &'static str {
        match self {
            Part::Signature => "signature",
            Part::CredentialScope => "credential scope",
            Part::SignedHeaders => "signed headers",
            Part::Timestamp => "timestamp",
            Part::BodyHash => "body hash",
            Part::Algorithm => "signature algorithm",
        }
    }
}

/// Why a signature was refused: which part differed and the string to sign the gateway computed.
/// It holds no secret; Alibaba itself returns the string to sign to its callers.
#[derive(Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The part that differed.
    pub part: Part,
    /// The string to sign as the gateway computed it (empty when it could not be computed).
    pub string_to_sign: String,
}

impl fmt::Debug for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mismatch").field("part", &self.part).field("string_to_sign", &self.string_to_sign).finish()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not match", self.part.describe())
    }
}

/// The authentication material a codec extracts from a request, before anything else is decoded.
#[derive(Debug, Clone)]
pub struct AuthMaterial<'a> {
    /// The scheme the request is signed with.
    pub scheme: Scheme,
    /// SecretId (Tencent) or AccessKeyId (Alibaba).
    pub credential_id: Cow<'a, str>,
    /// The signature as presented (Base64 or hex).
    pub signature: Cow<'a, str>,
    /// The request time, Unix seconds, parsed from the dialect's own form.
    pub timestamp: i64,
    /// The nonce, for the schemes that carry one (v1 `Nonce`, RPC `SignatureNonce`, ACS3 header).
    pub nonce: Option<Cow<'a, str>>,
    /// TC3: the credential scope's date (`YYYY-MM-DD`) as presented.
    pub scope_date: Option<&'a str>,
    /// TC3: the credential scope's service as presented.
    pub scope_service: Option<&'a str>,
    /// TC3 and ACS3: the SignedHeaders names as presented, lower case.
    pub signed_headers: Vec<&'a str>,
    /// What the signature covers.
    pub input: SignInput<'a>,
}

/// Verifies presented authentication material against the caller's secret, dispatching on its scheme.
pub fn verify(material: &AuthMaterial<'_>, key: &Secret) -> Result<(), Mismatch> {
    match material.scheme {
        Scheme::TencentV1Sha1 | Scheme::TencentV1Sha256 => tencent_v1::verify(material, key),
        Scheme::Tc3 => tc3::verify(material, key),
        Scheme::AliyunRpc => aliyun_rpc::verify(material, key),
        Scheme::Acs3 => acs3::verify(material, key),
    }
}

/// Signs a request with the given scheme.
pub fn sign(scheme: Scheme, input: &SignInput<'_>, credential_id: &str, key: &Secret) -> Signed {
    match scheme {
        Scheme::TencentV1Sha1 => tencent_v1::sign(input, tencent_v1::Hash::Sha1, key),
        Scheme::TencentV1Sha256 => tencent_v1::sign(input, tencent_v1::Hash::Sha256, key),
        Scheme::Tc3 => tc3::sign(input, credential_id, key),
        Scheme::AliyunRpc => aliyun_rpc::sign(input, key),
        Scheme::Acs3 => acs3::sign(input, credential_id, key),
    }
}
