//! The audit trail: every request, served or refused, has exactly one line with everything an operator
//! needs, and no line holds a configured secret or a signature a caller sent.

use crossgate::dialect::{Dialect, WireRequest};
use crossgate::sign::Scheme;

use crate::harness::{Env, Got, Signer, bind_op, ecs_acs3_request, ecs_rpc_request, signature_of};

#[tokio::test]
async fn every_request_has_one_complete_line_and_no_secret() {
    let env = Env::with("", "").await;
    let host = env.host();
    let tencent_bind = bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i", "ins-ccccecs1"], &["skey-4e5ty7i8"]);
    let ecs_list = "[\"i-aaaacvm1\", \"i-m5eg7be9ndloji64jknv\"]";
    let ecs_params = [
        ("Action", "AttachKeyPair"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", ecs_list),
        ("KeyPairName", "FinanceJoshuaV25"),
    ];
    let acs3_params = [("InstanceIds", ecs_list), ("KeyPairName", "FinanceJoshuaV25"), ("RegionId", "cn-hangzhou")];
    // (what, dialect, request, served)
    let requests: Vec<(&str, Dialect, WireRequest, bool)> = vec![
        (
            "served fan-out",
            Dialect::TencentCvm,
            env.signed_by(Dialect::TencentCvm, Scheme::Tc3, &tencent_bind, &Signer::demo()),
            true,
        ),
        ("served ECS caller", Dialect::AliyunEcs, ecs_rpc_request(&host, &ecs_params, &Signer::demo()).0, true),
        (
            "served ACS3 caller",
            Dialect::AliyunEcs,
            ecs_acs3_request(&host, "AttachKeyPair", &acs3_params, &Signer::demo()).0,
            true,
        ),
        ("bad signature", Dialect::AliyunEcs, ecs_rpc_request(&host, &ecs_params, &Signer::wrong_secret()).0, false),
        (
            "unknown id",
            Dialect::TencentV2,
            env.signed_by(
                Dialect::TencentV2,
                Scheme::TencentV1Sha256,
                &bind_op(Dialect::TencentV2, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]),
                &Signer::unknown_id(),
            ),
            false,
        ),
        (
            "expired",
            Dialect::TencentLighthouse,
            env.signed_by(
                Dialect::TencentLighthouse,
                Scheme::Tc3,
                &bind_op(Dialect::TencentLighthouse, &["lhins-3k9d8f7s"], &["lhkp-f7rjie1q"]),
                &Signer::an_hour_ago(),
            ),
            false,
        ),
        (
            "refused by an upstream",
            Dialect::TencentCvm,
            env.signed_by(
                Dialect::TencentCvm,
                Scheme::TencentV1Sha256,
                &bind_op(Dialect::TencentCvm, &["ins-w34e5rl9"], &["skey-4e5ty7i8"]),
                &Signer::demo(),
            ),
            false,
        ),
    ];
    let mut answers: Vec<(&str, Dialect, Got, bool)> = Vec::new();
    let mut signatures = Vec::new();
    for (what, dialect, wire, served) in &requests {
        signatures.push(signature_of(wire));
        answers.push((what, *dialect, env.send(wire).await, *served));
    }

    let lines = env.audit_lines();
    assert_eq!(lines.len(), requests.len(), "one line per request: {lines:#?}");
    for (what, dialect, got, served) in &answers {
        let line = env.audit_line(&got.request_id(*dialect).unwrap());
        let time = time::OffsetDateTime::parse(&line.time, &time::format_description::well_known::Rfc3339);
        assert!(time.is_ok(), "{what}: time {:?}", line.time);
        assert!(line.caller.is_some(), "{what}: caller");
        assert!(
            line.source.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:")),
            "{what}: source {:?}",
            line.source
        );
        assert_eq!(line.dialect.as_deref(), Some(dialect.name()), "{what}");
        assert!(line.action.as_deref().is_some_and(|a| !a.is_empty()), "{what}: action");
        assert_eq!(line.status, got.status, "{what}");
        assert!(line.latency_ms > 0.0, "{what}: latency");
        assert_eq!(line.code == "Success", *served, "{what}: code {}", line.code);
        if *served || *what == "refused by an upstream" {
            assert!(!line.upstreams.is_empty() && !line.upstream_actions.is_empty(), "{what}: {line:?}");
            assert!(!line.instances.is_empty() && !line.keys.is_empty() && !line.keys_translated.is_empty(), "{what}");
            assert_eq!(line.results.len(), line.instances.len(), "{what}: one outcome per instance");
            assert!(line.results.iter().all(|r| !r.translated.is_empty() && !r.outcome.is_empty()), "{what}");
            assert!(!line.upstream_request_ids.is_empty(), "{what}");
        } else {
            assert!(line.kind.is_some() && line.message.is_some(), "{what}: {line:?}");
        }
    }

    // As given and as translated.
    let fan_out = env.audit_line(&answers[0].2.request_id(Dialect::TencentCvm).unwrap());
    assert_eq!(fan_out.instances, ["ins-1e4r6y8i", "ins-ccccecs1"]);
    assert_eq!(fan_out.keys, ["skey-4e5ty7i8"]);
    let mut translated = fan_out.keys_translated.clone();
    translated.sort();
    assert_eq!(translated, ["FinanceJoshuaV25", "skey-4e5ty7i8"]);
    let pairs: Vec<(&str, &str, &str)> =
        fan_out.results.iter().map(|r| (r.instance.as_str(), r.translated.as_str(), r.upstream.as_str())).collect();
    assert!(pairs.contains(&("ins-ccccecs1", "i-m5eg7be9ndloji64jknv", "ecs")), "{pairs:?}");
    assert!(pairs.contains(&("ins-1e4r6y8i", "ins-1e4r6y8i", "cvm")), "{pairs:?}");
    let refused = env.audit_line(&answers[6].2.request_id(Dialect::TencentCvm).unwrap());
    assert_eq!(refused.results[0].outcome, "invalid_instance_state");
    assert_eq!(refused.code, "UnsupportedOperation.InstanceStateRunning");

    let text = serde_json::to_string(&lines).unwrap();
    for secret in &env.config_secrets {
        assert!(!text.contains(secret.as_str()), "an audit line holds a configured secret");
    }
    for signature in &signatures {
        assert!(signature.len() >= 20, "{signature}");
        assert!(!text.contains(signature.as_str()), "an audit line holds a signature sent: {signature}");
    }
    let sim_text = serde_json::to_string(&env.sim().seen()).unwrap();
    for secret in &env.config_secrets {
        assert!(!sim_text.contains(secret.as_str()), "the simulator's audit holds a secret");
    }
}
