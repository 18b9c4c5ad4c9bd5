//! What a request is taken for before its work begins, end to end over real sockets: the format of its
//! answers, whatever headers it carries besides its signature.

use crossgate::dialect::WireRequest;
use crossgate::model::Provider;

use crate::harness::{Env, Got, Signer, ecs_rpc_request};

/// `InstanceIds` as the ECS SDKs write one id.
fn one(id: &str) -> String {
    format!("[\"{id}\"]")
}

/// An RPC-signed ECS request, the way aliyun-python-sdk-core sends it: every parameter in the query, and
/// the `x-acs-action` / `x-acs-version` headers besides (the RPC signature does not cover headers).
fn core_sdk_request(env: &Env, params: &[(&str, &str)]) -> WireRequest {
    let mut wire = ecs_rpc_request(&env.host(), params, &Signer::demo()).0;
    let action = params.iter().find(|(n, _)| *n == "Action").map_or("", |(_, v)| *v);
    wire.headers.push(("x-acs-action".into(), action.into()));
    wire.headers.push(("x-acs-version".into(), "2014-05-26".into()));
    wire.headers.push(("x-sdk-client".into(), "python/2.0.0".into()));
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
    let keys = env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv").unwrap().keys.clone());
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
