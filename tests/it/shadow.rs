//! Shadow mode end to end: look-ups routed to CVM are also sent to its ECS shadow and every difference is
//! recorded (missing on either side, different keys, different state); binds are never sent to the
//! shadow, only recorded as they would have been; `crossgate shadow report` sums it up from the trail.

use std::process::Command;

use crossgate::audit::sqlite::{Sqlite, SqliteOptions};
use crossgate::audit::{AuditEntry, AuditSink, Phase, ShadowDifference, rfc3339};
use crossgate::clock::{Clock, SystemClock};
use crossgate::dialect::Dialect;
use crossgate::model::{Action, Keys, Operation, Provider};
use crossgate::sign::Scheme;

use crate::harness::{Env, config_with, key_op};
use crate::trail::audit_config;

/// ins-3e56fg78 (CVM, STOPPED, no key) is i-m5e25x2mwr0hk33dwv0h on ECS (Running).
const SAME_MACHINE: &str = "\n[[instances]]\ntencent-cvm = \"ins-3e56fg78\"\naliyun-ecs = \"i-m5e25x2mwr0hk33dwv0h\"\n";

async fn shadowed() -> Env {
    let mut config = config_with("", SAME_MACHINE);
    config.upstreams.get_mut("cvm").unwrap().shadow = Some("ecs".into());
    Env::start(config).await
}

fn diffs(env: &Env) -> Vec<(String, String, String, String)> {
    let entry = env.audit_lines().pop().expect("a record");
    entry.shadow_differences.into_iter().map(|d| (d.kind, d.subject, d.primary, d.shadow_value)).collect()
}

#[tokio::test]
async fn instance_look_ups_are_compared_with_the_shadow_in_the_callers_names() {
    let env = shadowed().await;
    // The ECS twin has FinanceJoshuaV25 bound (skey-4e5ty7i8 to this CVM caller); the CVM one has none.
    let mut bind = Operation::new(Action::AssociateKeys);
    bind.instances = vec!["i-m5e25x2mwr0hk33dwv0h".into()];
    bind.keys = Keys::Names(vec!["FinanceJoshuaV25".into()]);
    env.sim().with_state(|s| s.apply(Provider::AliyunEcs, &bind, "R", 0)).unwrap();

    let mut look = Operation::new(Action::DescribeInstances);
    look.region = Some("ap-guangzhou".into());
    look.instances = vec!["ins-3e56fg78".into(), "ins-1e4r6y8i".into()];
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &look).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    assert_eq!(got.json()["Response"]["TotalCount"], 2, "the caller gets the primary's answer");
    let mut found = diffs(&env);
    found.sort();
    let row = |k: &str, s: &str, p: &str, v: &str| (k.to_owned(), s.to_owned(), p.to_owned(), v.to_owned());
    assert_eq!(
        found,
        [
            row("keys", "ins-3e56fg78", "none", "skey-4e5ty7i8"),
            row("missing_on_shadow", "ins-1e4r6y8i", "present", "absent"),
            row("state", "ins-3e56fg78", "stopped", "running"),
        ]
    );
    let entry = env.audit_lines().pop().unwrap();
    assert!(entry.upstream_calls.iter().any(|c| c.upstream == "ecs" && c.action == "describe_instances"));
}

#[tokio::test]
async fn key_look_ups_are_compared_too() {
    let env = shadowed().await;
    let look = Operation { region: Some("ap-guangzhou".into()), ..Operation::new(Action::DescribeKeys) };
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &look).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let found: Vec<(String, String)> = diffs(&env).into_iter().map(|(k, s, _, _)| (k, s)).collect();
    assert!(found.contains(&("missing_on_shadow".into(), "skey-11112222".into())), "{found:?}");
    assert!(found.contains(&("missing_on_primary".into(), "testKeyPairName".into())), "{found:?}");
    assert!(!found.iter().any(|(_, s)| s == "skey-4e5ty7i8"), "the same key on both: {found:?}");
}

#[tokio::test]
async fn binds_are_never_sent_to_the_shadow_only_recorded() {
    let env = shadowed().await;
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["ins-3e56fg78"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let entry = env.audit_lines().pop().unwrap();
    assert_eq!(
        entry.shadow_requests,
        ["ecs: AttachKeyPair InstanceIds=[i-m5e25x2mwr0hk33dwv0h] Keys=[FinanceJoshuaV25] (not sent)"]
    );
    assert!(entry.upstream_calls.iter().all(|c| c.upstream == "cvm"), "{:?}", entry.upstream_calls);
    let twin =
        env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5e25x2mwr0hk33dwv0h").unwrap().keys.clone());
    assert!(twin.is_empty(), "the shadow was not changed");
}

#[tokio::test]
async fn the_report_sums_up_the_differences_in_the_trail() {
    let dir = std::env::temp_dir().join(format!("crossgate-shadow-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("audit.db");
    let sink = Sqlite::open(&db, SqliteOptions::default()).unwrap();
    let now = SystemClock.now_ms();
    let difference = |kind: &str, subject: &str| ShadowDifference {
        shadow: "ecs".into(),
        kind: kind.into(),
        subject: subject.into(),
        primary: "stopped".into(),
        shadow_value: "running".into(),
    };
    let record = |id: &str, ms: u64, diffs: Vec<ShadowDifference>| AuditEntry {
        phase: Phase::Completed,
        time: rfc3339(ms),
        request_id: id.into(),
        steps: vec!["shadow ecs: compared: 1 difference(s)".into()],
        shadow_differences: diffs,
        ..AuditEntry::default()
    };
    sink.submit(&record("R-old", now - 3 * 86_400_000, vec![difference("state", "ins-00000000")])).await.unwrap();
    sink.submit(&record("R-1", now - 60_000, vec![difference("state", "ins-3e56fg78")])).await.unwrap();
    sink.submit(&record(
        "R-2",
        now - 1_000,
        vec![difference("state", "ins-3e56fg78"), difference("keys", "ins-3e56fg78")],
    ))
    .await
    .unwrap();
    let config = audit_config(&dir, &format!("store = \"sqlite:{}\"", db.display()));
    let out = Command::new(env!("CARGO_BIN_EXE_crossgate"))
        .args(["shadow", "report", "--config", config.to_str().unwrap(), "--since", "1d"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("2 look-up(s) compared with a shadow, 3 difference(s)"), "{text}");
    assert!(text.contains("ecs  state: 2") && text.contains("ecs  keys: 1"), "{text}");
    assert!(!text.contains("R-old"), "outside the period: {text}");
}
