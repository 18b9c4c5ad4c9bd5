//! Dialect detection: which dialect a request speaks, from its path, its signature headers and the names
//! of its signature parameters (`shared/reference/signing.md` section 0), without decoding it.
//! When it cannot tell, it says why.

use super::{Dialect, RawRequest, Undetected};
use crate::mapping::Mappings;

/// The legacy endpoint's path.
pub const LEGACY_PATH: &str = "/v2/index.php";

mod marker {
    pub(super) const TC3: &str = "TC3-HMAC-SHA256";
    pub(super) const ACS3: &str = "ACS3-HMAC-SHA256";
    pub(super) const TC_VERSION_HEADER: &str = "x-tc-version";
    pub(super) const ALIYUN_KEY_PARAM: &str = "AccessKeyId";
    pub(super) const TENCENT_KEY_PARAM: &str = "SecretId";
    pub(super) const VERSION_PARAM: &str = "Version";
}

/// Tells the dialect of a request.
pub fn detect(raw: &RawRequest<'_>, maps: &Mappings) -> Result<Dialect, Undetected> {
    if raw.path == LEGACY_PATH {
        return Ok(Dialect::TencentV2);
    }
    if raw.path != "/" {
        return Err(Undetected(format!(
            "crossgate does not serve the path `{}`: API requests go to `/` (Tencent API 3.0, Alibaba ECS) or `{LEGACY_PATH}` (Tencent API 2.0)",
            raw.path
        )));
    }
    if let Some(auth) = raw.header("authorization") {
        if auth.starts_with(marker::ACS3) {
            return Ok(Dialect::AliyunEcs);
        }
        if auth.starts_with(marker::TC3) {
            let service = auth.split("Credential=").nth(1).and_then(|c| c.split(['/', ',']).nth(2)).unwrap_or("");
            let by_service = tencent_v3_by(|d| maps.service(d) == Some(service));
            let by_version =
                raw.header(marker::TC_VERSION_HEADER).and_then(|v| tencent_v3_by(|d| maps.version(d) == v));
            return by_service.or(by_version).ok_or_else(|| {
                Undetected(format!(
                    "the TC3 credential scope names the service `{service}`, which is neither cvm nor lighthouse"
                ))
            });
        }
    }
    let form_body = raw.content_type().is_some_and(|t| t == "application/x-www-form-urlencoded");
    let param = |name: &str| {
        param_value(raw.query, name).or_else(|| {
            if form_body { std::str::from_utf8(raw.body).ok().and_then(|b| param_value(b, name)) } else { None }
        })
    };
    if param(marker::ALIYUN_KEY_PARAM).is_some() {
        return Ok(Dialect::AliyunEcs);
    }
    if param(marker::TENCENT_KEY_PARAM).is_some() {
        let version = param(marker::VERSION_PARAM).unwrap_or("");
        return Ok(tencent_v3_by(|d| maps.version(d) == version).unwrap_or(Dialect::TencentCvm));
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

    fn detect_for(
        method: &str,
        path: &str,
        query: &str,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Result<Dialect, Undetected> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, v.parse().unwrap());
        }
        let raw = RawRequest { method, path, query, headers: &map, body: body.as_bytes() };
        detect(&raw, &Mappings::embedded().unwrap())
    }

    /// method, path, query, headers, body, expected dialect.
    type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'static str, &'a str)], &'a str, Option<Dialect>);

    #[test]
    fn detection_table() {
        let form = [("content-type", "application/x-www-form-urlencoded")];
        let cases: &[Case<'_>] = &[
            ("GET", "/v2/index.php", "Action=BindInstanceKey&SecretId=x", &[], "", Some(Dialect::TencentV2)),
            ("POST", "/v2/index.php", "", &form, "Action=AssociateInstancesKeyPairs", Some(Dialect::TencentV2)),
            (
                "POST",
                "/",
                "",
                &[(
                    "authorization",
                    "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00",
                )],
                "{}",
                Some(Dialect::TencentCvm),
            ),
            (
                "POST",
                "/",
                "",
                &[(
                    "authorization",
                    "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request, SignedHeaders=content-type;host, Signature=00",
                )],
                "{}",
                Some(Dialect::TencentLighthouse),
            ),
            (
                "GET",
                "/",
                "Action=DescribeInstances&SecretId=AKID&Version=2017-03-12",
                &[],
                "",
                Some(Dialect::TencentCvm),
            ),
            (
                "GET",
                "/",
                "Action=DescribeInstances&SecretId=AKID&Version=2020-03-24",
                &[],
                "",
                Some(Dialect::TencentLighthouse),
            ),
            ("POST", "/", "", &form, "SecretId=AKID&Version=2020-03-24", Some(Dialect::TencentLighthouse)),
            ("GET", "/", "AccessKeyId=testid&Action=AttachKeyPair", &[], "", Some(Dialect::AliyunEcs)),
            ("POST", "/", "", &form, "AccessKeyId=testid&Action=DetachKeyPair", Some(Dialect::AliyunEcs)),
            (
                "POST",
                "/",
                "RegionId=cn-hangzhou",
                &[("authorization", "ACS3-HMAC-SHA256 Credential=LTAI,SignedHeaders=host,Signature=00")],
                "",
                Some(Dialect::AliyunEcs),
            ),
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
        for (method, path, query, headers, body, expected) in cases {
            let got = detect_for(method, path, query, headers, body);
            assert_eq!(got.as_ref().ok(), expected.as_ref(), "{method} {path}?{query} {headers:?}: {got:?}");
            if let Err(why) = got {
                assert!(!why.0.is_empty());
            }
        }
    }
}
