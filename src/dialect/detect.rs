//! Dialect detection: which dialect and which signature scheme a request speaks, from its path, its
//! signature headers and the names of its signature parameters (`shared/reference/signing.md`
//! section 0), without decoding it. When it cannot tell, it says why.

use super::{Dialect, RawRequest, Undetected};
use crate::mapping::Mappings;
use crate::sign::Scheme;

/// What detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The dialect.
    pub dialect: Dialect,
    /// The signature scheme.
    pub scheme: Scheme,
}

/// The legacy endpoint's path.
pub const LEGACY_PATH: &str = "/v2/index.php";

mod marker {
    pub(super) const TC3: &str = "TC3-HMAC-SHA256";
    pub(super) const ACS3: &str = "ACS3-HMAC-SHA256";
    pub(super) const TC_VERSION_HEADER: &str = "x-tc-version";
    pub(super) const ALIYUN_KEY_PARAM: &str = "AccessKeyId";
    pub(super) const TENCENT_KEY_PARAM: &str = "SecretId";
    pub(super) const VERSION_PARAM: &str = "Version";
    pub(super) const TENCENT_METHOD_PARAM: &str = "SignatureMethod";
    pub(super) const TENCENT_SHA256: &str = "HmacSHA256";
}

/// Tells the dialect and the signature scheme of a request.
pub fn detect(raw: &RawRequest<'_>, maps: &Mappings) -> Result<Detected, Undetected> {
    // As the codecs read it: a body with no Content-Type is a form too.
    let form_body = raw.content_type().is_none_or(|t| t == "application/x-www-form-urlencoded");
    let param = |name: &str| {
        param_value(raw.query, name).or_else(|| {
            if form_body { std::str::from_utf8(raw.body).ok().and_then(|b| param_value(b, name)) } else { None }
        })
    };
    let tencent_v1 = || match param(marker::TENCENT_METHOD_PARAM) {
        Some(marker::TENCENT_SHA256) => Scheme::TencentV1Sha256,
        _ => Scheme::TencentV1Sha1,
    };
    if raw.path == LEGACY_PATH {
        return Ok(Detected { dialect: Dialect::TencentV2, scheme: tencent_v1() });
    }
    if raw.path != "/" {
        return Err(Undetected(format!(
            "crossgate does not serve the path `{}`: API requests go to `/` (Tencent API 3.0, Alibaba ECS) or `{LEGACY_PATH}` (Tencent API 2.0)",
            raw.path
        )));
    }
    if let Some(auth) = raw.header("authorization") {
        if auth.starts_with(marker::ACS3) {
            return Ok(Detected { dialect: Dialect::AliyunEcs, scheme: Scheme::Acs3 });
        }
        if auth.starts_with(marker::TC3) {
            let service = auth.split("Credential=").nth(1).and_then(|c| c.split(['/', ',']).nth(2)).unwrap_or("");
            let by_service = tencent_v3_by(|d| maps.service(d) == Some(service));
            let by_version =
                raw.header(marker::TC_VERSION_HEADER).and_then(|v| tencent_v3_by(|d| maps.version(d) == v));
            return by_service.or(by_version).map(|dialect| Detected { dialect, scheme: Scheme::Tc3 }).ok_or_else(
                || {
                    Undetected(format!(
                        "the TC3 credential scope names the service `{service}`, which is neither cvm nor lighthouse"
                    ))
                },
            );
        }
    }
    if param(marker::ALIYUN_KEY_PARAM).is_some() {
        return Ok(Detected { dialect: Dialect::AliyunEcs, scheme: Scheme::AliyunRpc });
    }
    if param(marker::TENCENT_KEY_PARAM).is_some() {
        let version = param(marker::VERSION_PARAM).unwrap_or("");
        let dialect = tencent_v3_by(|d| maps.version(d) == version).unwrap_or(Dialect::TencentCvm);
        return Ok(Detected { dialect, scheme: tencent_v1() });
    }
    Err(Undetected(
        "the request carries no signature crossgate knows: expected an Authorization header (TC3-HMAC-SHA256 or \
         ACS3-HMAC-SHA256) or signature parameters (SecretId for Tencent, AccessKeyId for Alibaba)"
            .to_owned(),
    ))
}

fn tencent_v3_by(pred: impl Fn(Dialect) -> bool) -> Option<Dialect> {
    [Dialect::TencentCvm, Dialect::TencentLighthouse].into_iter().find(|d| pred(*d))
}

/// The raw value of the first `name=` in a query or form string, if present (names are plain ASCII).
fn param_value<'a>(form: &'a str, name: &str) -> Option<&'a str> {
    form.split('&').find_map(|item| {
        let (n, v) = item.split_once('=').unwrap_or((item, ""));
        (n == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// method, path, query, headers, body, expected dialect and scheme.
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'static str, &'a str)], &'a str, Option<(Dialect, Scheme)>);

    const FORM: &[(&str, &str)] = &[("content-type", "application/x-www-form-urlencoded")];
    const TC3_CVM: &str =
        "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00";
    const TC3_LH: &str = "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request, SignedHeaders=content-type;host, Signature=00";
    const ACS3: &str = "ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host,Signature=00";

    fn detect_for(case: &Case<'_>) -> Result<(Dialect, Scheme), Undetected> {
        let (method, path, query, headers, body, _) = *case;
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, v.parse().unwrap());
        }
        let raw = RawRequest { method, path, query, headers: &map, body: body.as_bytes() };
        detect(&raw, &Mappings::embedded().unwrap()).map(|d| (d.dialect, d.scheme))
    }

    #[test]
    fn detection_table() {
        use Dialect::*;
        let cases: &[Case<'_>] = &[
            (
                "GET",
                "/v2/index.php",
                "Action=BindInstanceKey&SecretId=x",
                &[],
                "",
                Some((TencentV2, Scheme::TencentV1Sha1)),
            ),
            (
                "POST",
                "/v2/index.php",
                "",
                FORM,
                "SignatureMethod=HmacSHA256",
                Some((TencentV2, Scheme::TencentV1Sha256)),
            ),
            ("POST", "/", "", &[("authorization", TC3_CVM)], "{}", Some((TencentCvm, Scheme::Tc3))),
            ("POST", "/", "", &[("authorization", TC3_LH)], "{}", Some((TencentLighthouse, Scheme::Tc3))),
            ("GET", "/", "SecretId=AKID&Version=2017-03-12", &[], "", Some((TencentCvm, Scheme::TencentV1Sha1))),
            (
                "GET",
                "/",
                "SecretId=AKID&Version=2020-03-24&SignatureMethod=HmacSHA256",
                &[],
                "",
                Some((TencentLighthouse, Scheme::TencentV1Sha256)),
            ),
            (
                "POST",
                "/",
                "",
                FORM,
                "SecretId=AKID&Version=2020-03-24",
                Some((TencentLighthouse, Scheme::TencentV1Sha1)),
            ),
            ("GET", "/", "AccessKeyId=testid&Action=AttachKeyPair", &[], "", Some((AliyunEcs, Scheme::AliyunRpc))),
            ("POST", "/", "", FORM, "AccessKeyId=testid&Action=DetachKeyPair", Some((AliyunEcs, Scheme::AliyunRpc))),
            // A form body without a Content-Type, which the codecs read as a form.
            (
                "POST",
                "/v2/index.php",
                "",
                &[],
                "SignatureMethod=HmacSHA256",
                Some((TencentV2, Scheme::TencentV1Sha256)),
            ),
            ("POST", "/", "", &[], "AccessKeyId=testid", Some((AliyunEcs, Scheme::AliyunRpc))),
            ("POST", "/", "RegionId=cn-hangzhou", &[("authorization", ACS3)], "", Some((AliyunEcs, Scheme::Acs3))),
            ("GET", "/", "Action=DescribeInstances", &[], "", None),
            ("GET", "/other", "SecretId=x", &[], "", None),
            (
                "POST",
                "/",
                "",
                &[("authorization", "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cbs/tc3_request")],
                "",
                None,
            ),
            ("POST", "/", "", &[("authorization", "Bearer x")], "", None),
        ];
        for case in cases {
            let got = detect_for(case);
            assert_eq!(got.as_ref().ok(), case.5.as_ref(), "{case:?}: {got:?}");
            if let Err(why) = got {
                assert!(!why.0.is_empty());
            }
        }
    }
}
