//! Refusals before anything is forwarded: over the caller dialect's own limit, what an ECS target cannot
//! express, malformed ids, duplicated values and unknown actions, each answered in the caller's dialect
//! with the simulator having seen nothing; and requests no dialect claims, answered with a plain 400.

use crossgate::dialect::{Dialect, WireRequest};
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;

use crate::harness::{Env, Signer, bind_op, ecs_rpc_request, send_to, tc3_request, v1_request};

/// One refusal: what the caller sends, and the code and HTTP status it must get.
struct Refusal {
    name: &'static str,
    dialect: Dialect,
    wire: WireRequest,
    code: &'static str,
    status: u16,
    /// The legacy old-style numeric `code`, for old-style actions.
    number: Option<i64>,
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:08}")).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `InstanceIds` as the ECS SDKs write it.
fn json_list(ids: &[&str]) -> String {
    serde_json::to_string(ids).unwrap().replace("\",\"", "\", \"")
}

/// A second key pair known on ECS, so that a two-key bind can reach the ECS key limit.
const SECOND_KEY: &str = "
[[keys]]
tencent-cvm = \"skey-11112222\"
aliyun-ecs = \"testKeyPairName\"
";

fn refusals(env: &Env) -> Vec<Refusal> {
    let host = env.host();
    let demo = Signer::demo;
    let cvm = |op| env.signed_by(Dialect::TencentCvm, Scheme::Tc3, &op, &demo());
    let v2 = |op| env.signed_by(Dialect::TencentV2, Scheme::TencentV1Sha256, &op, &demo());
    let lh = |op| env.signed_by(Dialect::TencentLighthouse, Scheme::Tc3, &op, &demo());
    let old_style = |instances: &[&str], key: &str| {
        let mut params =
            vec![("Action".to_owned(), "BindInstanceKey".to_owned()), ("Region".into(), "ap-guangzhou".into())];
        params.extend(instances.iter().enumerate().map(|(i, id)| (format!("instanceIds.{i}"), (*id).to_owned())));
        params.push(("keyId".into(), key.into()));
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        v1_request(&host, "GET", "/v2/index.php", &params, Hash::Sha1, &demo())
    };
    let ecs = |action: &str, instances: &[&str], key: &str| {
        let list = json_list(instances);
        let params = [
            ("Action", action),
            ("Format", "JSON"),
            ("RegionId", "cn-hangzhou"),
            ("InstanceIds", list.as_str()),
            ("KeyPairName", key),
        ];
        ecs_rpc_request(&host, &params, &demo()).0
    };
    let tencent = |name, dialect, wire, code| Refusal { name, dialect, wire, code, status: 200, number: None };
    let over = ids("ins-", 101);
    let over_lh = ids("lhins-", 101);
    let over_ecs = ids("i-", 51);
    let skey = ["skey-4e5ty7i8"];
    vec![
        // Over the caller dialect's own limit.
        tencent(
            "cvm: 101 instances",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &strs(&over), &skey)),
            "InvalidParameterValue.LimitExceeded",
        ),
        tencent(
            "v2: 101 instances",
            Dialect::TencentV2,
            v2(bind_op(Dialect::TencentV2, &strs(&over), &skey)),
            "InvalidParameterValue.LimitExceeded",
        ),
        tencent(
            "lighthouse: 101 instances",
            Dialect::TencentLighthouse,
            lh(bind_op(Dialect::TencentLighthouse, &strs(&over_lh), &["lhkp-f7rjie1q"])),
            "InvalidParameterValue.LimitExceeded",
        ),
        Refusal {
            number: Some(4000),
            ..tencent(
                "v2 old-style: 101 instances",
                Dialect::TencentV2,
                old_style(&strs(&over), "skey-4e5ty7i8"),
                "InvalidParameterValue.LimitExceeded",
            )
        },
        Refusal {
            name: "ecs: 51 instances",
            dialect: Dialect::AliyunEcs,
            wire: ecs("AttachKeyPair", &strs(&over_ecs), "FinanceJoshuaV25"),
            code: "InstanceKeyPairLimitExceeded",
            status: 403,
            number: None,
        },
        // What an ECS target cannot express.
        tencent(
            "cvm: two keys for an ECS target",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-ccccecs1"], &["skey-4e5ty7i8", "skey-11112222"])),
            "InvalidParameterValue.LimitExceeded",
        ),
        tencent(
            "v2: two keys for an ECS target",
            Dialect::TencentV2,
            v2(bind_op(Dialect::TencentV2, &["ins-ccccecs1"], &["skey-4e5ty7i8", "skey-11112222"])),
            "InvalidParameterValue.LimitExceeded",
        ),
        tencent(
            "cvm: two keys, one leg on ECS",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i", "ins-ccccecs1"], &["skey-4e5ty7i8", "skey-11112222"])),
            "InvalidParameterValue.LimitExceeded",
        ),
        tencent(
            "cvm: a key with no ECS name, one leg on ECS",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i", "ins-ccccecs1"], &["skey-zzzzzzzz"])),
            "InvalidKeyPairId.NotFound",
        ),
        tencent(
            "cvm: a key with no ECS name",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-ccccecs1"], &["skey-zzzzzzzz"])),
            "InvalidKeyPairId.NotFound",
        ),
        tencent(
            "lighthouse: a key with no ECS name",
            Dialect::TencentLighthouse,
            lh(bind_op(Dialect::TencentLighthouse, &["lhins-ccccecs1"], &["lhkp-zzzzzzzz"])),
            "ResourceNotFound.KeyIdNotFound",
        ),
        Refusal {
            number: Some(5000),
            ..tencent(
                "v2 old-style: a key with no ECS name",
                Dialect::TencentV2,
                old_style(&["ins-ccccecs1"], "skey-zzzzzzzz"),
                "InvalidKeyPairId.NotFound",
            )
        },
        // Malformed ids.
        tencent(
            "cvm: malformed instance id",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-1122"], &skey)),
            "InvalidInstanceId.Malformed",
        ),
        tencent(
            "cvm: malformed key id",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i"], &["skey-1122"])),
            "InvalidKeyPairId.Malformed",
        ),
        tencent(
            "lighthouse: malformed instance id",
            Dialect::TencentLighthouse,
            lh(bind_op(Dialect::TencentLighthouse, &["lhins-12"], &["lhkp-f7rjie1q"])),
            "InvalidParameterValue.InstanceIdMalformed",
        ),
        tencent(
            "v2: malformed instance id",
            Dialect::TencentV2,
            v2(bind_op(Dialect::TencentV2, &["ins-1122"], &skey)),
            "InvalidInstanceId.Malformed",
        ),
        Refusal {
            number: Some(4000),
            ..tencent(
                "v2 old-style: malformed key id",
                Dialect::TencentV2,
                old_style(&["ins-1e4r6y8i"], "skey-1122"),
                "InvalidKeyPairId.Malformed",
            )
        },
        Refusal {
            name: "ecs: malformed instance id",
            dialect: Dialect::AliyunEcs,
            wire: ecs("AttachKeyPair", &["I-UPPER"], "FinanceJoshuaV25"),
            code: "InvalidInstanceIds.ValueNotSupported",
            status: 400,
            number: None,
        },
        Refusal {
            name: "ecs: malformed key name",
            dialect: Dialect::AliyunEcs,
            wire: ecs("AttachKeyPair", &["i-m5eg7be9ndloji64jknv"], "1bad"),
            code: "InvalidKeyPairName.Malformed",
            status: 400,
            number: None,
        },
        // Duplicated values.
        tencent(
            "cvm: duplicated instance",
            Dialect::TencentCvm,
            cvm(bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i", "ins-1e4r6y8i"], &skey)),
            "InvalidParameterValue",
        ),
        tencent(
            "v2: duplicated key",
            Dialect::TencentV2,
            v2(bind_op(Dialect::TencentV2, &["ins-1e4r6y8i"], &["skey-4e5ty7i8", "skey-4e5ty7i8"])),
            "InvalidParameterValue",
        ),
        tencent(
            "lighthouse: duplicated instance",
            Dialect::TencentLighthouse,
            lh(bind_op(Dialect::TencentLighthouse, &["lhins-3k9d8f7s", "lhins-3k9d8f7s"], &["lhkp-f7rjie1q"])),
            "InvalidParameterValue.Duplicated",
        ),
        Refusal {
            number: Some(4000),
            ..tencent(
                "v2 old-style: duplicated instance",
                Dialect::TencentV2,
                old_style(&["ins-1e4r6y8i", "ins-1e4r6y8i"], "skey-4e5ty7i8"),
                "InvalidParameterValue",
            )
        },
        Refusal {
            name: "ecs: duplicated instance",
            dialect: Dialect::AliyunEcs,
            wire: ecs("DetachKeyPair", &["i-m5eg7be9ndloji64jknv", "i-m5eg7be9ndloji64jknv"], "FinanceJoshuaV25"),
            code: "InvalidParameter",
            status: 400,
            number: None,
        },
        // Unknown actions.
        tencent(
            "v2: unknown action",
            Dialect::TencentV2,
            v1_request(
                &host,
                "POST",
                "/v2/index.php",
                &[("Action", "RunInstances"), ("Version", "2017-03-12")],
                Hash::Sha256,
                &demo(),
            ),
            "InvalidAction.NotFound",
        ),
        tencent(
            "cvm: unknown action",
            Dialect::TencentCvm,
            tc3_request(
                &host,
                "cvm",
                "RebootInstances",
                "2017-03-12",
                &serde_json::json!({"InstanceIds": ["ins-1e4r6y8i"]}),
                &demo(),
            ),
            "InvalidAction",
        ),
        tencent(
            "lighthouse: unknown action",
            Dialect::TencentLighthouse,
            tc3_request(
                &host,
                "lighthouse",
                "CreateKeyPair",
                "2020-03-24",
                &serde_json::json!({"KeyName": "x"}),
                &demo(),
            ),
            "InvalidAction",
        ),
        Refusal {
            name: "ecs: unknown action",
            dialect: Dialect::AliyunEcs,
            wire: ecs("RunInstances", &["i-m5eg7be9ndloji64jknv"], "FinanceJoshuaV25"),
            code: "InvalidAction.NotFound",
            status: 404,
            number: None,
        },
    ]
}

#[tokio::test]
async fn refusals_are_answered_in_the_callers_dialect_before_anything_is_forwarded() {
    let env = Env::with("", SECOND_KEY).await;
    for case in refusals(&env) {
        let name = case.name;
        let got = env.send(&case.wire).await;
        let content_type =
            if case.dialect == Dialect::AliyunEcs { "application/json;charset=utf-8" } else { "application/json" };
        assert_eq!((got.status, got.content_type()), (case.status, content_type), "{name}: {}", got.text());
        assert_eq!(got.error_code(case.dialect).as_deref(), Some(case.code), "{name}: {}", got.text());
        assert!(!got.error_message(case.dialect).is_empty(), "{name}: a message says why");
        if let Some(number) = case.number {
            assert_eq!(got.json()["code"], number, "{name}: {}", got.text());
        }
        assert!(env.sim().seen().is_empty(), "{name}: nothing may be forwarded: {:#?}", env.sim().seen());
        let line = env.audit_lines().pop().unwrap();
        if let Some(id) = got.request_id(case.dialect) {
            assert_eq!(line.request_id, id, "{name}: the RequestId is echoed");
        }
        assert_eq!((line.code.as_str(), line.fault_source.as_deref()), (case.code, Some("caller")), "{name}");
        assert_eq!(line.dialect.as_deref(), Some(case.dialect.name()), "{name}");
        assert!(line.upstreams.is_empty(), "{name}: {line:?}");
        assert_eq!(line.caller.as_deref(), Some("demo"), "{name}: the verified caller is audited by name");
    }
}

#[tokio::test]
async fn health_checks_answer_and_undetected_requests_get_a_plain_400() {
    let env = Env::with("", "").await;
    let get = |path: &'static str, query: &str| WireRequest {
        method: "GET",
        host: env.host(),
        path,
        query: query.to_owned(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let got = send_to(env.started.gateway.addr, &get("/healthz", "")).await;
    assert_eq!((got.status, got.text().trim()), (200, "ok"));

    let got = env.send(&get("/api/v1/keys", "Action=AttachKeyPair")).await;
    assert_eq!((got.status, got.content_type()), (400, "text/plain; charset=utf-8"));
    assert!(got.text().contains("does not serve the path `/api/v1/keys`"), "{}", got.text());

    // Nothing in it belongs to any dialect (an unsigned request that does is answered in its dialect:
    // see detection.rs).
    let got = env.send(&get("/", "Operation=Bind&Instance=1&Signature=x")).await;
    assert_eq!((got.status, got.content_type()), (400, "text/plain; charset=utf-8"));
    assert!(got.text().contains("carries no evidence"), "{}", got.text());

    assert!(env.sim().seen().is_empty());
    let lines = env.audit_lines();
    assert_eq!(lines.len(), 2, "refused requests are audited too (the health check is not a request)");
    assert!(lines.iter().all(|l| l.code == "Undetected" && l.status == 400), "{lines:#?}");
}

/// A body over `max_body_bytes` is not read further, and is refused in the caller's dialect.
#[tokio::test]
async fn an_oversized_body_is_refused_in_the_callers_dialect() {
    let mut config = crate::harness::config_with("", "");
    config.max_body_bytes = 512;
    let env = Env::start(config).await;
    let many = ids("ins-", 60);
    let wire = env.signed_by(
        Dialect::TencentCvm,
        Scheme::Tc3,
        &bind_op(Dialect::TencentCvm, &strs(&many), &["skey-4e5ty7i8"]),
        &Signer::demo(),
    );
    assert!(wire.body.len() > 512, "the test body must be over the limit");
    let got = env.send(&wire).await;
    assert_eq!((got.status, got.content_type()), (200, "application/json"));
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InvalidParameter"), "{}", got.text());
    assert!(got.error_message(Dialect::TencentCvm).contains("larger than 512 bytes"), "{}", got.text());
    assert!(env.sim().seen().is_empty(), "nothing was forwarded");
    assert_eq!(env.audit_lines().len(), 1);
}
