//! The less common answer shapes, end to end: the legacy old-style `BindInstanceKey` /
//! `UnBindInstanceKey` (`{"code": 0, ...}`, code a JSON number) and Alibaba `Format=XML` (also the
//! default when `Format` is absent).

use crossgate::dialect::WireRequest;
use crossgate::model::Provider;
use crossgate::sign::tencent_v1::Hash;

use crate::harness::{Env, Got, Signer, ecs_rpc_request, v1_request};

const OLD_STYLE_SUCCESS: &[u8] = br#"{"code":0,"message":"","codeDesc":"Success"}"#;

fn old_style(env: &Env, action: &str, method: &'static str, instances: &[&str], key: &str) -> WireRequest {
    let mut params = vec![("Action".to_owned(), action.to_owned()), ("Region".into(), "ap-guangzhou".into())];
    params.extend(instances.iter().enumerate().map(|(i, id)| (format!("instanceIds.{i}"), (*id).to_owned())));
    params.push(("keyId".into(), key.into()));
    let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    v1_request(&env.host(), method, "/v2/index.php", &params, Hash::Sha1, &Signer::demo())
}

fn assert_old_style_success(got: &Got, case: &str) {
    assert_eq!((got.status, got.content_type()), (200, "application/json"), "{case}");
    assert_eq!(got.body, OLD_STYLE_SUCCESS, "{case}: {}", got.text());
    assert!(got.json()["code"].is_number(), "{case}");
}

fn keys(env: &Env, provider: Provider, id: &str) -> Vec<String> {
    env.sim().with_state(|s| s.instance(provider, id).unwrap().keys.clone())
}

#[tokio::test]
async fn old_style_bind_and_unbind_succeed_end_to_end() {
    let env = Env::with("", "").await;
    let both = ["ins-1e4r6y8i", "ins-3e56fg78"];
    let got = env.send(&old_style(&env, "BindInstanceKey", "GET", &both, "skey-4e5ty7i8")).await;
    assert_old_style_success(&got, "bind");
    for id in both {
        assert_eq!(keys(&env, Provider::TencentCvm, id), ["skey-4e5ty7i8"], "{id}");
    }
    let seen = env.sim().seen();
    assert_eq!(seen[0].action.as_deref(), Some("AssociateInstancesKeyPairs"));
    assert_eq!(seen[0].instances, both);

    // The documented spelling and the SDK's, as a GET and as a POST form.
    let got = env.send(&old_style(&env, "unBindInstanceKey", "GET", &both[..1], "skey-4e5ty7i8")).await;
    assert_old_style_success(&got, "unBind");
    let got = env.send(&old_style(&env, "UnBindInstanceKey", "POST", &both[1..], "skey-4e5ty7i8")).await;
    assert_old_style_success(&got, "UnBind");
    for id in both {
        assert!(keys(&env, Provider::TencentCvm, id).is_empty(), "{id}");
    }

    // Routed to ECS: the old-style caller still gets its own shape.
    let got = env.send(&old_style(&env, "BindInstanceKey", "GET", &["ins-ccccecs1"], "skey-4e5ty7i8")).await;
    assert_old_style_success(&got, "bind via ECS");
    assert_eq!(keys(&env, Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv"), ["FinanceJoshuaV25"]);
    assert_eq!(env.sim().seen().last().unwrap().action.as_deref(), Some("AttachKeyPair"));

    let lines = env.audit_lines();
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l.code == "Success" && l.dialect.as_deref() == Some("tencent_v2")), "{lines:#?}");
    assert_eq!(lines[1].action.as_deref(), Some("unBindInstanceKey"));
}

fn xml_request(env: &Env, action: &str, format: Option<&str>, instances: &str) -> WireRequest {
    let mut params = vec![
        ("Action", action),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", instances),
        ("KeyPairName", "FinanceJoshuaV25"),
    ];
    if let Some(format) = format {
        params.push(("Format", format));
    }
    ecs_rpc_request(&env.host(), &params, &Signer::demo()).0
}

fn assert_xml_success(env: &Env, got: &Got, action: &str, ids: &[&str], case: &str) {
    assert_eq!((got.status, got.content_type()), (200, "text/xml;charset=utf-8"), "{case}: {}", got.text());
    let text = got.text();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"), "{case}: {text}");
    assert!(
        text.contains(&format!("<{action}Response>")) && text.trim_end().ends_with(&format!("</{action}Response>")),
        "{case}: {text}"
    );
    let request_id = got.xml_field("RequestId").unwrap();
    assert_eq!(env.audit_line(&request_id).code, "Success", "{case}");
    assert_eq!(got.xml_field("TotalCount").as_deref(), Some(ids.len().to_string().as_str()), "{case}");
    assert_eq!(got.xml_field("FailCount").as_deref(), Some("0"), "{case}");
    assert_eq!(got.xml_field("KeyPairName").as_deref(), Some("FinanceJoshuaV25"), "{case}");
    let results = got.xml_field("Results").unwrap();
    assert_eq!(results.matches("<Result>").count(), ids.len(), "{case}: {results}");
    assert_eq!(results.matches("<Success>true</Success>").count(), ids.len(), "{case}: {results}");
    assert_eq!(results.matches("<Code>200</Code>").count(), ids.len(), "{case}: {results}");
    for id in ids {
        assert!(results.contains(&format!("<InstanceId>{id}</InstanceId>")), "{case}: {results}");
    }
}

#[tokio::test]
async fn ecs_xml_answers_succeed_end_to_end() {
    let env = Env::with("", "").await;
    let ids = ["i-m5eg7be9ndloji64jknv", "i-aaaacvm1"];
    let list = "[\"i-m5eg7be9ndloji64jknv\", \"i-aaaacvm1\"]";
    let got = env.send(&xml_request(&env, "AttachKeyPair", Some("XML"), list)).await;
    assert_xml_success(&env, &got, "AttachKeyPair", &ids, "attach");
    assert_eq!(keys(&env, Provider::AliyunEcs, ids[0]), ["FinanceJoshuaV25"]);
    assert_eq!(keys(&env, Provider::TencentCvm, "ins-1e4r6y8i"), ["skey-4e5ty7i8"], "translated for CVM");

    // `Format` absent means XML; any case is accepted.
    let got = env.send(&xml_request(&env, "DetachKeyPair", None, list)).await;
    assert_xml_success(&env, &got, "DetachKeyPair", &ids, "detach without Format");
    assert!(keys(&env, Provider::AliyunEcs, ids[0]).is_empty());
    let got = env.send(&xml_request(&env, "AttachKeyPair", Some("xml"), "[\"i-m5eg7be9ndloji64jknv\"]")).await;
    assert_xml_success(&env, &got, "AttachKeyPair", &ids[..1], "attach with format=xml");
}
