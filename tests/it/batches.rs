//! Batches end to end: a caller's batch split to an upstream's lower limit and merged back, and one
//! request fanned out to every upstream at once, merged for an all-or-nothing (Tencent) caller and for a
//! per-instance (Alibaba) caller, with and without a partial failure.

use std::collections::BTreeSet;

use crossgate::dialect::Dialect;
use crossgate::model::{Action, OsFamily, Provider};
use crossgate::sign::Scheme;
use crossgate::sim::state::Instance;

use crate::harness::{Env, bind_op, key_op};

const BATCH: usize = 60;

fn batch_ids(prefix: &str) -> Vec<String> {
    (1..=BATCH).map(|i| format!("{prefix}{i:03}")).collect()
}

/// Tencent ids `ins-batchNNN` known on ECS as `i-batchNNN`, routed to ECS.
async fn batch_env() -> (Env, Vec<String>, Vec<String>) {
    let tencent = batch_ids("ins-batch");
    let ecs = batch_ids("i-batch");
    let rules = "[[routing.rules]]\ninstance = \"ins-batch*\"\nupstream = \"ecs\"\n";
    let rows: String = tencent
        .iter()
        .zip(&ecs)
        .map(|(t, e)| format!("\n[[instances]]\ntencent-cvm = \"{t}\"\naliyun-ecs = \"{e}\"\n"))
        .collect();
    let env = Env::with(rules, &rows).await;
    env.sim().with_state(|s| {
        for id in &ecs {
            let vm = Instance::new(id, id, OsFamily::Linux, "Alibaba Cloud Linux 3.2104 LTS 64 bit", "Stopped");
            s.add_instance(Provider::AliyunEcs, vm).unwrap();
        }
    });
    (env, tencent, ecs)
}

fn ecs_keys(env: &Env, ids: &[String]) -> Vec<Vec<String>> {
    env.sim().with_state(|s| ids.iter().map(|id| s.instance(Provider::AliyunEcs, id).unwrap().keys.clone()).collect())
}

#[tokio::test]
async fn a_tencent_batch_over_the_ecs_limit_is_split_and_merged() {
    for (dialect, scheme) in [(Dialect::TencentCvm, Scheme::Tc3), (Dialect::TencentV2, Scheme::TencentV1Sha256)] {
        let (env, tencent, ecs) = batch_env().await;
        let ids: Vec<&str> = tencent.iter().map(String::as_str).collect();
        for action in [Action::AssociateKeys, Action::DisassociateKeys] {
            let case = format!("{dialect} {action}");
            let before = env.sim().seen().len();
            let got = env.call(dialect, scheme, &key_op(action, dialect, &ids, &["skey-4e5ty7i8"])).await;
            assert_eq!((got.status, got.content_type()), (200, "application/json"), "{case}");
            assert_eq!(got.error_code(dialect), None, "{case}: {}", got.text());

            let wire = if action == Action::AssociateKeys { "AttachKeyPair" } else { "DetachKeyPair" };
            let seen = env.sim().seen()[before..].to_vec();
            assert!(seen.iter().all(|e| e.action.as_deref() == Some(wire) && e.code == "Success"), "{case}: {seen:#?}");
            let mut sizes: Vec<usize> = seen.iter().map(|e| e.instances.len()).collect();
            sizes.sort_unstable();
            assert_eq!(sizes, [10, 50], "{case}: two calls within ECS's limit of 50");
            let sent: BTreeSet<&String> = seen.iter().flat_map(|e| &e.instances).collect();
            assert_eq!(sent, ecs.iter().collect(), "{case}: every instance sent once, by its ECS id");

            let expected: Vec<String> = match action {
                Action::AssociateKeys => vec!["FinanceJoshuaV25".into()],
                _ => vec![],
            };
            assert!(ecs_keys(&env, &ecs).iter().all(|k| *k == expected), "{case}");

            let line = env.audit_line(&got.request_id(dialect).unwrap());
            assert_eq!(line.code, "Success", "{case}");
            assert_eq!(
                (line.upstreams.as_slice(), line.upstream_actions.as_slice()),
                (&["ecs".to_owned()][..], &[wire.to_owned()][..])
            );
            assert_eq!(line.upstream_request_ids.len(), 2, "{case}: one upstream RequestId per call");
            assert_eq!(line.results.len(), BATCH, "{case}");
            for (r, (t, e)) in line.results.iter().zip(tencent.iter().zip(&ecs)) {
                assert_eq!((&r.instance, &r.translated, r.outcome.as_str()), (t, e, "Success"), "{case}");
            }
        }
    }
}

#[tokio::test]
async fn one_request_fans_out_to_every_upstream_and_merges() {
    let cases: [(Dialect, Scheme, [&str; 3], &str); 2] = [
        (Dialect::TencentCvm, Scheme::Tc3, ["ins-1e4r6y8i", "ins-bbbblh01", "ins-ccccecs1"], "skey-4e5ty7i8"),
        (
            Dialect::AliyunEcs,
            Scheme::AliyunRpc,
            ["i-aaaacvm1", "i-bbbblh01", "i-m5eg7be9ndloji64jknv"],
            "FinanceJoshuaV25",
        ),
    ];
    for (dialect, scheme, ids, key) in cases {
        let env = Env::with("", "").await;
        let got = env.call(dialect, scheme, &bind_op(dialect, &ids, &[key])).await;
        assert_eq!(got.status, 200, "{dialect}: {}", got.text());
        assert_eq!(got.error_code(dialect), None, "{dialect}: {}", got.text());
        if dialect == Dialect::AliyunEcs {
            let body = got.json();
            assert_eq!((&body["TotalCount"], &body["FailCount"]), (&"3".into(), &"0".into()), "{body}");
            let results = body["Results"]["Result"].as_array().unwrap();
            let named: Vec<&str> = results.iter().map(|r| r["InstanceId"].as_str().unwrap()).collect();
            assert_eq!(named, ids, "results in the caller's order and names");
            assert!(results.iter().all(|r| r["Success"] == true && r["Code"] == "200"), "{body}");
        }

        let seen = env.sim().seen();
        let mut dialects: Vec<&str> = seen.iter().map(|e| e.dialect.as_deref().unwrap()).collect();
        dialects.sort_unstable();
        assert_eq!(dialects, ["aliyun_ecs", "tencent_cvm", "tencent_lighthouse"], "{dialect}: one call per upstream");
        env.sim().with_state(|s| {
            assert_eq!(s.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().keys, ["skey-4e5ty7i8"]);
            assert!(s.instance(Provider::TencentLighthouse, "lhins-3k9d8f7s").unwrap().latest_operation.is_some());
            assert_eq!(s.instance(Provider::AliyunEcs, "i-m5eg7be9ndloji64jknv").unwrap().keys, ["FinanceJoshuaV25"]);
        });

        let line = env.audit_line(&got.request_id(dialect).unwrap());
        let upstreams: BTreeSet<&str> = line.upstreams.iter().map(String::as_str).collect();
        assert_eq!(upstreams, BTreeSet::from(["cvm", "ecs", "lighthouse"]), "{dialect}");
        let translated: Vec<&str> = line.results.iter().map(|r| r.translated.as_str()).collect();
        let mut translated_sorted = translated.clone();
        translated_sorted.sort_unstable();
        assert_eq!(translated_sorted, ["i-m5eg7be9ndloji64jknv", "ins-1e4r6y8i", "lhins-3k9d8f7s"], "{dialect}");
        assert_eq!(line.upstream_request_ids.len(), 3, "{dialect}");
    }
}

/// The CVM leg is refused as a whole (a Windows machine); the Lighthouse and ECS legs succeed.
#[tokio::test]
async fn a_partial_failure_is_one_error_for_tencent_callers() {
    let ids = ["ins-5wq8v2kd", "ins-bbbblh01", "ins-ccccecs1"];
    let cases = [
        (Dialect::TencentCvm, Scheme::Tc3, "UnsupportedOperation.InstanceOsWindows"),
        (Dialect::TencentV2, Scheme::TencentV1Sha256, "InvalidInstance.NotSupported"),
    ];
    for (dialect, scheme, code) in cases {
        let env = Env::with("", "").await;
        let got = env.call(dialect, scheme, &bind_op(dialect, &ids, &["skey-4e5ty7i8"])).await;
        assert_eq!((got.status, got.content_type()), (200, "application/json"), "{dialect}");
        assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{dialect}: {}", got.text());
        let message = got.error_message(dialect);
        assert!(
            message.contains("succeeded: ins-bbbblh01, ins-ccccecs1")
                && message.contains(&format!("failed: ins-5wq8v2kd ({code})")),
            "{dialect}: the message names what succeeded and what failed: {message}"
        );
        assert_eq!(env.sim().seen().len(), 3, "{dialect}: every leg was sent");
        let line = env.audit_line(&got.request_id(dialect).unwrap());
        assert_eq!(line.code, code, "{dialect}");
        let outcomes: Vec<(&str, &str)> =
            line.results.iter().map(|r| (r.instance.as_str(), r.outcome.as_str())).collect();
        assert_eq!(
            outcomes.iter().copied().collect::<BTreeSet<_>>(),
            BTreeSet::from([
                ("ins-5wq8v2kd", "instance_not_supported"),
                ("ins-bbbblh01", "Success"),
                ("ins-ccccecs1", "Success")
            ]),
            "{dialect}: the audit keeps each instance's outcome"
        );
    }
}

#[tokio::test]
async fn a_partial_failure_is_per_instance_results_for_alibaba_callers() {
    let env = Env::with("", "").await;
    let ids = ["i-wwwwcvm1", "i-bbbblh01", "i-m5eg7be9ndloji64jknv"];
    let got = env
        .call(Dialect::AliyunEcs, Scheme::AliyunRpc, &bind_op(Dialect::AliyunEcs, &ids, &["FinanceJoshuaV25"]))
        .await;
    assert_eq!((got.status, got.content_type()), (200, "application/json;charset=utf-8"), "{}", got.text());
    let body = got.json();
    assert_eq!((&body["TotalCount"], &body["FailCount"]), (&"3".into(), &"1".into()), "{body}");
    assert_eq!(body["KeyPairName"], "FinanceJoshuaV25");
    let results = body["Results"]["Result"].as_array().unwrap();
    let rows: Vec<(&str, bool, &str, &str)> = results
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap();
            (s("InstanceId"), r["Success"].as_bool().unwrap(), s("Code"), s("Message"))
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("i-wwwwcvm1", false, "403", "DependencyViolation.WindowsInstance"),
            ("i-bbbblh01", true, "200", "successful"),
            ("i-m5eg7be9ndloji64jknv", true, "200", "successful"),
        ]
    );
    let line = env.audit_line(&got.request_id(Dialect::AliyunEcs).unwrap());
    assert_eq!(line.code, "DependencyViolation.WindowsInstance");
    assert_eq!(line.results.len(), 3);
}
