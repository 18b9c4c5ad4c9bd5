//! What a request is taken for before its work begins: its dialect, weighed from the evidence it carries
//! (a table of hostile requests, then end to end: a request that lacks its credential fails in its own
//! dialect's error), the format of its answers whatever headers it carries besides its signature, and its
//! ids, checked against the provider that receives them once routed and renamed, before anything is
//! forwarded.

use crossgate::dialect::{self, Dialect, WireRequest};
use crossgate::model::Provider;
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;

use crate::harness::{Env, Got, Signer, bind_op, ecs_rpc_request, tc3_request, v1_request};
use crate::support::{Received, maps};

/// `InstanceIds` as the ECS SDKs write one id.
fn one(id: &str) -> String {
    format!("[\"{id}\"]")
}

/// An RPC-signed ECS request, the way aliyun-python-sdk-core sends it: every parameter in the query, and
/// the `x-acs-action` / `x-acs-version` headers besides (the RPC signature does not cover headers).
fn core_sdk_request(env: &Env, params: &[(&str, &str)]) -> WireRequest {
    let mut wire = ecs_rpc_request(&env.host(), params, &Signer::demo()).0;
    let action = params.iter().find(|(n, _)| *n == "Action").map_or("", |(_, v)| *v);
    wire.headers.push(("x-acs-action", action.into()));
    wire.headers.push(("x-acs-version", "2014-05-26".into()));
    wire.headers.push(("x-sdk-client", "python/2.0.0".into()));
    wire
}

fn assert_xml(got: &Got, status: u16, root: &str, case: &str) {
    assert_eq!((got.status, got.content_type()), (status, "text/xml;charset=utf-8"), "{case}: {}", got.text());
    let text = got.text();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{case}: {text}");
    assert!(text.contains(&format!("<{root}>")) && text.trim_end().ends_with(&format!("</{root}>")), "{case}: {text}");
}

// Regression: an RPC request carrying `x-acs-action` (aliyun-python-sdk-core) was taken for ACS3 and answered in
// JSON whatever its `Format`.
#[tokio::test]
async fn rpc_requests_with_an_x_acs_action_header_are_answered_in_their_format() {
    let env = Env::with("", "").await;
    let linux = one("i-m5eg7be9ndloji64jknv");
    let bind = |format: &'static str| {
        [
            ("Action", "AttachKeyPair"),
            ("Format", format),
            ("RegionId", "cn-hangzhou"),
            ("InstanceIds", linux.as_str()),
            ("KeyPairName", "FinanceJoshuaV25"),
        ]
    };

    let got = env.send(&core_sdk_request(&env, &bind("XML"))).await;
    assert_xml(&got, 200, "AttachKeyPairResponse", "success");
    assert_eq!(got.xml_field("FailCount").as_deref(), Some("0"), "{}", got.text());
    let request_id = got.xml_field("RequestId").expect("a RequestId");
    assert_eq!(env.audit_line(&request_id).code, "Success");
    let keys =
        env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv").unwrap().keys.clone());
    assert_eq!(keys, ["FinanceJoshuaV25"]);

    // Errors too, in the case the SDK sends.
    let mut refused = bind("xml");
    refused[4].1 = "";
    let got = env.send(&core_sdk_request(&env, &refused)).await;
    assert_xml(&got, 400, "Error", "a missing KeyPairName");
    assert_eq!(got.xml_field("Code").as_deref(), Some("MissingParameter"), "{}", got.text());
    let line = env.audit_line(&got.xml_field("RequestId").expect("a RequestId"));
    assert_eq!((line.code.as_str(), line.status), ("MissingParameter", 400));

    // JSON when asked for, with the same headers.
    let got = env.send(&core_sdk_request(&env, &bind("JSON"))).await;
    assert_eq!((got.status, got.content_type()), (200, "application/json;charset=utf-8"), "{}", got.text());
    assert_eq!(got.json()["FailCount"], "0", "{}", got.text());
}

// === the detection table ===

/// One request and what detection must make of it: a dialect and scheme, or a plain answer whose reason
/// contains the fragment.
struct Case {
    name: &'static str,
    path: &'static str,
    query: String,
    headers: Vec<(&'static str, String)>,
    body: String,
    expect: Result<(Dialect, Scheme), &'static str>,
}

fn case(name: &'static str, query: &str, expect: Result<(Dialect, Scheme), &'static str>) -> Case {
    Case { name, path: "/", query: query.to_owned(), headers: Vec::new(), body: String::new(), expect }
}

fn with_header(mut c: Case, name: &'static str, value: &str) -> Case {
    c.headers.push((name, value.to_owned()));
    c
}

fn at(mut c: Case, path: &'static str) -> Case {
    c.path = path;
    c
}

fn posted(mut c: Case, content_type: Option<&str>) -> Case {
    c.body = std::mem::take(&mut c.query);
    if let Some(t) = content_type {
        c.headers.push(("content-type", t.to_owned()));
    }
    c
}

/// An ECS RPC request's common parameters, without `AccessKeyId` or `Signature`.
const ECS_COMMON: &str = "Action=AttachKeyPair&Version=2014-05-26&Format=JSON&SignatureMethod=HMAC-SHA1\
    &SignatureVersion=1.0&SignatureNonce=4c2e&Timestamp=2024-05-01T08%3A00%3A00Z&RegionId=cn-hangzhou";
/// A Tencent v1 request's common parameters, without `SecretId` or `Version`.
const TENCENT_COMMON: &str =
    "Action=AssociateInstancesKeyPairs&Nonce=1234&Timestamp=1714550400&Region=ap-guangzhou&SignatureMethod=HmacSHA256";
const TC3_CVM: &str =
    "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=00";
const TC3_LH: &str =
    "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request, SignedHeaders=content-type;host, Signature=00";

fn cases() -> Vec<Case> {
    use Dialect::*;
    let ecs = Ok((AliyunEcs, Scheme::AliyunRpc));
    let cvm = |scheme| Ok((TencentCvm, scheme));
    let lh = |scheme| Ok((TencentLighthouse, scheme));
    let junk = format!("{}&SecretId=AKID", "x=y&".repeat(100_000));
    vec![
        case("ECS without AccessKeyId", &format!("{ECS_COMMON}&Signature=abc"), ecs),
        case("ECS with AccesKeyId", &format!("{ECS_COMMON}&AccesKeyId=LTAI&Signature=abc"), ecs),
        case("ECS with accesskeyid", &format!("{ECS_COMMON}&accesskeyid=LTAI&Signature=abc"), ecs),
        case("ECS action and version only", "Action=DetachKeyPair&Version=2014-05-26", ecs),
        posted(case("ECS form without AccessKeyId", ECS_COMMON, ecs), Some("application/x-www-form-urlencoded")),
        posted(case("ECS form with no content type", ECS_COMMON, ecs), None),
        posted(case("ECS parameters in a JSON-typed body", ECS_COMMON, Err("no evidence")), Some("application/json")),
        case("an ISO time stamp alone", "Timestamp=2024-05-01T08%3A00%3A00Z", ecs),
        case("a percent-encoded AccessKeyId", "%41ccessKeyId=LTAI", ecs),
        case("a Tencent action under ECS's version", "Action=AssociateInstancesKeyPairs&Version=2014-05-26", ecs),
        case(
            "Tencent without SecretId",
            &format!("{TENCENT_COMMON}&Version=2017-03-12&Signature=x"),
            cvm(Scheme::TencentV1Sha256),
        ),
        case(
            "Lighthouse without SecretId",
            &format!("{TENCENT_COMMON}&Version=2020-03-24&Signature=x"),
            lh(Scheme::TencentV1Sha256),
        ),
        case("Tencent without SecretId or Version", TENCENT_COMMON, cvm(Scheme::TencentV1Sha256)),
        case("a Unix time stamp alone", "Timestamp=1714550400", cvm(Scheme::TencentV1Sha1)),
        with_header(
            case("SecretId to a Lighthouse host", "SecretId=AKID&Signature=x", lh(Scheme::TencentV1Sha1)),
            "host",
            "lighthouse.tencentcloudapi.com",
        ),
        case("a SecretId after 100000 junk parameters", &junk, cvm(Scheme::TencentV1Sha1)),
        at(case("the legacy path with nothing", "", Ok((TencentV2, Scheme::TencentV1Sha1))), "/v2/index.php"),
        at(
            case(
                "the legacy path with ECS parameters",
                &format!("{ECS_COMMON}&AccessKeyId=LTAI"),
                Ok((TencentV2, Scheme::TencentV1Sha1)),
            ),
            "/v2/index.php",
        ),
        at(case("the legacy path with a slash", "SecretId=AKID", Err("does not serve")), "/v2/index.php/"),
        at(case("the legacy path in upper case", "SecretId=AKID", Err("does not serve")), "/V2/INDEX.PHP"),
        with_header(case("TC3 with garbage", "", cvm(Scheme::Tc3)), "authorization", "TC3-HMAC-SHA256 garbage"),
        with_header(case("TC3 glued to garbage", "", cvm(Scheme::Tc3)), "authorization", "TC3-HMAC-SHA256garbage"),
        with_header(case("TC3 for Lighthouse", "", lh(Scheme::Tc3)), "authorization", TC3_LH),
        with_header(
            with_header(case("TC3 for CVM, Lighthouse's version", "", cvm(Scheme::Tc3)), "authorization", TC3_CVM),
            "x-tc-version",
            "2020-03-24",
        ),
        with_header(
            with_header(
                case("TC3 for another service, Lighthouse's version", "", lh(Scheme::Tc3)),
                "authorization",
                "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cbs/tc3_request, SignedHeaders=host, Signature=00",
            ),
            "x-tc-version",
            "2020-03-24",
        ),
        with_header(
            case("an X-TC-Action header alone", "", cvm(Scheme::TencentV1Sha1)),
            "x-tc-action",
            "AssociateInstancesKeyPairs",
        ),
        with_header(case("ACS3 with garbage", "", Ok((AliyunEcs, Scheme::Acs3))), "authorization", "ACS3-HMAC-SHA256"),
        with_header(case("x-acs headers without Authorization", "", ecs), "x-acs-date", "2024-05-01T08:00:00Z"),
        with_header(case("a bearer token", "", Err("no evidence")), "authorization", "Bearer abc"),
        case("nothing at all", "", Err("no evidence")),
        case("undecodable garbage", "%FF%FE=%ZZ&&&==&=", Err("no evidence")),
        case(
            "both credentials and nothing else",
            "SecretId=AKID&AccessKeyId=LTAI&AccessKeyId=LTAI2",
            Err("split evenly"),
        ),
        case("an action every dialect has", "Action=DescribeInstances&Signature=x", Err("split evenly")),
        case(
            "both credentials, ECS's other markers",
            "SecretId=AKID&AccessKeyId=LTAI&SignatureNonce=1&Version=2014-05-26",
            ecs,
        ),
        at(case("another path", "AccessKeyId=LTAI", Err("does not serve")), "/api/v1/keys"),
    ]
}

#[test]
fn detection_weighs_the_evidence_of_hostile_requests() {
    let maps = maps();
    let cases = cases();
    assert!(cases.len() >= 20);
    for c in &cases {
        let headers: Vec<(&str, &str)> = c.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let method = if c.body.is_empty() { "GET" } else { "POST" };
        let received = Received::new(method, c.path, &c.query, &headers, c.body.as_bytes());
        let got = dialect::detect(&received.raw(), &maps).map(|d| (d.dialect, d.scheme)).map_err(|why| why.0);
        match (&got, &c.expect) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{}", c.name),
            (Err(why), Err(fragment)) => {
                assert!(why.contains(fragment), "{}: {why}", c.name);
                assert!(why.len() < 600, "{}: the reason stays short", c.name);
            }
            _ => panic!("{}: got {got:?}, want {:?}", c.name, c.expect),
        }
    }
}

// === end to end: a request without its credential fails in its own dialect ===

/// `wire` with the query parameter `name` renamed to `to` (or dropped, for `None`).
fn without(mut wire: WireRequest, name: &str, to: Option<&str>) -> WireRequest {
    let items: Vec<String> = wire
        .query
        .split('&')
        .filter_map(|item| match item.split_once('=') {
            Some((n, v)) if n == name => to.map(|to| format!("{to}={v}")),
            _ => Some(item.to_owned()),
        })
        .collect();
    assert_ne!(items.join("&"), wire.query, "`{name}` was in the query");
    wire.query = items.join("&");
    wire
}

fn ecs_bind(env: &Env, format: &str) -> WireRequest {
    let ids = one("i-m5eg7be9ndloji64jknv");
    let mut params = vec![
        ("Action", "AttachKeyPair"),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", ids.as_str()),
        ("KeyPairName", "FinanceJoshuaV25"),
    ];
    if !format.is_empty() {
        params.push(("Format", format));
    }
    ecs_rpc_request(&env.host(), &params, &Signer::demo()).0
}

/// The audit line of the latest request: its dialect and code, and nothing forwarded.
fn assert_audited(env: &Env, dialect: Dialect, code: &str, case: &str) {
    let line = env.audit_lines().pop().expect("an audit line");
    assert_eq!((line.dialect.as_deref(), line.code.as_str()), (Some(dialect.name()), code), "{case}: {line:?}");
    assert!(env.sim().seen().is_empty(), "{case}: nothing may be forwarded");
}

#[tokio::test]
async fn an_ecs_query_without_its_access_key_id_fails_in_ecs_terms() {
    let env = Env::with("", "").await;
    for (case, to) in [("absent", None), ("misspelled", Some("AccesKeyId")), ("lower case", Some("accesskeyid"))] {
        let got = env.send(&without(ecs_bind(&env, "JSON"), "AccessKeyId", to)).await;
        assert_eq!((got.status, got.content_type()), (400, "application/json;charset=utf-8"), "{case}: {}", got.text());
        assert_eq!(got.error_code(Dialect::AliyunEcs).as_deref(), Some("MissingParameter"), "{case}: {}", got.text());
        assert!(got.error_message(Dialect::AliyunEcs).contains("AccessKeyId"), "{case}: {}", got.text());
        assert_eq!(got.request_id(Dialect::AliyunEcs), Some(env.audit_lines().pop().unwrap().request_id), "{case}");
        assert_audited(&env, Dialect::AliyunEcs, "MissingParameter", case);
    }
    // No Format: ECS's default, XML.
    let got = env.send(&without(ecs_bind(&env, ""), "AccessKeyId", None)).await;
    assert_xml(&got, 400, "Error", "no Format");
    assert_eq!(got.error_code(Dialect::AliyunEcs).as_deref(), Some("MissingParameter"), "{}", got.text());
}

#[tokio::test]
async fn a_tencent_request_without_its_secret_id_fails_in_tencent_terms() {
    let env = Env::with("", "").await;
    let host = env.host();
    let demo = Signer::demo;
    let assoc = [
        ("Action", "AssociateInstancesKeyPairs"),
        ("Region", "ap-guangzhou"),
        ("InstanceIds.0", "ins-1e4r6y8i"),
        ("KeyIds.0", "skey-4e5ty7i8"),
    ];
    let cases: Vec<(&str, Dialect, WireRequest)> = vec![
        (
            "API 3.0, CVM's version",
            Dialect::TencentCvm,
            v1_request(&host, "GET", "/", &[&assoc[..], &[("Version", "2017-03-12")]].concat(), Hash::Sha256, &demo()),
        ),
        (
            "API 3.0, Lighthouse's version",
            Dialect::TencentLighthouse,
            v1_request(
                &host,
                "GET",
                "/",
                &[
                    ("Action", "AssociateInstancesKeyPairs"),
                    ("Version", "2020-03-24"),
                    ("InstanceIds.0", "lhins-3k9d8f7s"),
                    ("KeyIds.0", "lhkp-f7rjie1q"),
                ],
                Hash::Sha1,
                &demo(),
            ),
        ),
        (
            "the legacy endpoint",
            Dialect::TencentV2,
            v1_request(
                &host,
                "GET",
                "/v2/index.php",
                &[&assoc[..], &[("Version", "2017-03-12")]].concat(),
                Hash::Sha1,
                &demo(),
            ),
        ),
    ];
    for (case, dialect, wire) in cases {
        let got = env.send(&without(wire, "SecretId", None)).await;
        assert_eq!((got.status, got.content_type()), (200, "application/json"), "{case}: {}", got.text());
        assert_eq!(got.error_code(dialect).as_deref(), Some("MissingParameter"), "{case}: {}", got.text());
        assert!(got.error_message(dialect).contains("SecretId"), "{case}: {}", got.text());
        assert_eq!(got.request_id(dialect), Some(env.audit_lines().pop().unwrap().request_id), "{case}");
        assert_audited(&env, dialect, "MissingParameter", case);
    }
    // The legacy old-style actions answer in their own shape, numeric code included.
    let old = [("Action", "BindInstanceKey"), ("instanceIds.0", "ins-1e4r6y8i"), ("keyId", "skey-4e5ty7i8")];
    let got = env
        .send(&without(v1_request(&host, "GET", "/v2/index.php", &old, Hash::Sha1, &demo()), "SecretId", None))
        .await;
    let body = got.json();
    assert_eq!(
        (got.status, &body["code"], &body["codeDesc"]),
        (200, &serde_json::json!(4000), &serde_json::json!("MissingParameter")),
        "{}",
        got.text()
    );
    assert_audited(&env, Dialect::TencentV2, "MissingParameter", "old style");
}

#[tokio::test]
async fn garbled_authorization_headers_fail_in_their_own_dialect() {
    let env = Env::with("", "").await;
    let host = env.host();
    let body = serde_json::json!({"InstanceIds": ["ins-1e4r6y8i"], "KeyIds": ["skey-4e5ty7i8"]});
    let tc3 = |version: &str| tc3_request(&host, "cvm", "AssociateInstancesKeyPairs", version, &body, &Signer::demo());
    let garbled = |mut wire: WireRequest, value: &str| {
        wire.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        wire.headers.push(("Authorization", value.to_owned()));
        wire
    };
    let cases = [
        ("TC3 garbage", Dialect::TencentCvm, garbled(tc3("2017-03-12"), "TC3-HMAC-SHA256 garbage")),
        (
            "TC3 for Lighthouse, no signature",
            Dialect::TencentLighthouse,
            garbled(tc3("2020-03-24"), "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request"),
        ),
    ];
    for (case, dialect, wire) in cases {
        let got = env.send(&wire).await;
        assert_eq!((got.status, got.content_type()), (200, "application/json"), "{case}: {}", got.text());
        assert_eq!(
            got.error_code(dialect).as_deref(),
            Some("AuthFailure.InvalidAuthorization"),
            "{case}: {}",
            got.text()
        );
        assert_audited(&env, dialect, "AuthFailure.InvalidAuthorization", case);
    }
    let ecs = garbled(ecs_bind(&env, ""), "ACS3-HMAC-SHA256 Credential=LTAI");
    let got = env.send(&ecs).await;
    assert_eq!((got.status, got.content_type()), (400, "application/json;charset=utf-8"), "{}", got.text());
    assert_eq!(got.error_code(Dialect::AliyunEcs).as_deref(), Some("IncompleteSignature"), "{}", got.text());
    assert_audited(&env, Dialect::AliyunEcs, "IncompleteSignature", "ACS3 garbage");

    // Evidence split evenly between two dialects that answer differently: a plain answer saying so.
    let tie = WireRequest {
        method: "GET",
        host: host.clone(),
        path: "/",
        query: "SecretId=AKID&AccessKeyId=LTAI&Signature=x".into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let got = env.send(&tie).await;
    assert_eq!((got.status, got.content_type()), (400, "text/plain; charset=utf-8"), "{}", got.text());
    assert!(
        got.text().contains("split evenly between tencent_cvm and tencent_lighthouse and aliyun_ecs"),
        "{}",
        got.text()
    );
    assert_eq!(env.audit_lines().pop().unwrap().code, "Undetected");
}

// === end to end: ids are checked against the provider that receives them ===

const INS_TO_CVM: &str = "
[[routing.rules]]
instance = \"ins-*\"
upstream = \"cvm\"

[[routing.rules]]
instance = \"i-renamed*\"
upstream = \"cvm\"
";

/// A machine whose CVM name, in this config, is no CVM id.
const BAD_RENAME: &str = "
[[instances]]
aliyun-ecs = \"i-renamed01\"
tencent-cvm = \"ins-NOTANID\"
";

fn ecs_bind_on(env: &Env, ids: &[&str]) -> WireRequest {
    let list = serde_json::to_string(ids).unwrap().replace("\",\"", "\", \"");
    let params = [
        ("Action", "AttachKeyPair"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", list.as_str()),
        ("KeyPairName", "FinanceJoshuaV25"),
    ];
    ecs_rpc_request(&env.host(), &params, &Signer::demo()).0
}

// Regression: an ECS caller naming a CVM machine that a routing rule sends to CVM was refused by ECS's id
// format.
#[tokio::test]
async fn an_ecs_caller_binds_a_cvm_machine_routed_to_cvm() {
    let env = Env::with(INS_TO_CVM, BAD_RENAME).await;
    let got = env.send(&ecs_bind_on(&env, &["ins-1e4r6y8i"])).await;
    assert_eq!((got.status, got.content_type()), (200, "application/json;charset=utf-8"), "{}", got.text());
    let body = got.json();
    assert_eq!(
        (&body["FailCount"], &body["Results"]["Result"][0]["InstanceId"]),
        (&serde_json::json!("0"), &serde_json::json!("ins-1e4r6y8i")),
        "{}",
        got.text()
    );
    let seen = env.sim().seen();
    assert_eq!((seen.len(), seen[0].action.as_deref()), (1, Some("AssociateInstancesKeyPairs")), "{seen:#?}");
    assert_eq!(seen[0].instances, ["ins-1e4r6y8i"]);
    let keys = env.sim().with_state(|s| s.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().keys.clone());
    assert_eq!(keys, ["skey-4e5ty7i8"], "the key's CVM id, through [[keys]]");
    let line = env.audit_line(body["RequestId"].as_str().unwrap());
    assert_eq!((line.code.as_str(), line.upstreams.as_slice()), ("Success", &["cvm".to_owned()][..]));
}

#[tokio::test]
async fn ids_malformed_for_the_provider_that_receives_them_are_refused_before_anything_is_forwarded() {
    let env = Env::with(INS_TO_CVM, BAD_RENAME).await;
    let ecs_cases: [(&str, &[&str], &str); 3] = [
        ("a short CVM id", &["ins-1122"], "tencent-cvm"),
        ("a good ECS leg beside a bad CVM one", &["i-m5eg7be9ndloji64jknv", "ins-1122"], "tencent-cvm"),
        ("renamed through [[instances]] to no CVM id", &["i-renamed01"], "`i-renamed01`, `ins-NOTANID` on tencent-cvm"),
    ];
    for (case, ids, fragment) in ecs_cases {
        let got = env.send(&ecs_bind_on(&env, ids)).await;
        assert_eq!((got.status, got.content_type()), (400, "application/json;charset=utf-8"), "{case}: {}", got.text());
        assert_eq!(
            got.error_code(Dialect::AliyunEcs).as_deref(),
            Some("InvalidInstanceIds.ValueNotSupported"),
            "{case}"
        );
        assert!(got.error_message(Dialect::AliyunEcs).contains(fragment), "{case}: {}", got.text());
        assert_audited(&env, Dialect::AliyunEcs, "InvalidInstanceIds.ValueNotSupported", case);
    }
    // A Tencent caller: an ECS id in the caller's dialect, ECS's format after routing.
    let cvm = |ids: &[&str]| {
        env.signed_by(
            Dialect::TencentCvm,
            Scheme::Tc3,
            &bind_op(Dialect::TencentCvm, ids, &["skey-4e5ty7i8"]),
            &Signer::demo(),
        )
    };
    let got = env.send(&cvm(&["i-UPPERCASE01"])).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InvalidInstanceId.Malformed"), "{}", got.text());
    assert!(got.error_message(Dialect::TencentCvm).contains("not an instance id on aliyun-ecs"), "{}", got.text());
    assert_audited(&env, Dialect::TencentCvm, "InvalidInstanceId.Malformed", "upper-case ECS id");

    // The same caller naming a well-formed ECS id binds it there.
    let got = env.send(&cvm(&["i-m5eg7be9ndloji64jknv"])).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let keys =
        env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv").unwrap().keys.clone());
    assert_eq!(keys, ["FinanceJoshuaV25"]);
}
