//! Key replication end to end: a Tencent key bound on ECS (read from CVM, imported on ECS, fingerprint
//! checked, then bound), an ECS key with a configured public key bound on CVM and Lighthouse, a name
//! taken by another key, an import that succeeds followed by a bind that fails (a proxy refuses the bind
//! for real), learned names kept across a restart, and `keys check` / `keys sync`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crossgate::clock::SystemClock;
use crossgate::config::{Config, Endpoint};
use crossgate::dialect::Dialect;
use crossgate::keybook::KeyBook;
use crossgate::model::{Action, Provider};
use crossgate::replicate::{self, Drift, Replicator};
use crossgate::sign::Scheme;
use crossgate::sim::state::KeyPair;
use crossgate::sshkey::PublicKey;

use crate::fault_proxy::FaultProxy;
use crate::harness::{Env, config_with, key_op};

/// The demo's CVM-only key (`releasebot`), and its public key as the seed has it.
const CVM_ONLY: &str = "skey-7mig2ecs";
const CVM_ONLY_PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIztnwLeSRRl8xK5THz2ytGJjjzLSX07/0ctg5X7s8Cx";
/// ECS's `testKeyPairName`, whose public key ECS does not report.
const ECS_PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7NFhv4rlVDZSU1/RTwoXD7wewSk+UhZDgaKBCW5m+5";

/// Besides the demo's own `skey-7mig2ecs` row (`replicate = true`): the ECS key, with its public key.
const ROWS: &str = r#"
[[keys]]
aliyun-ecs = "testKeyPairName"
public_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7NFhv4rlVDZSU1/RTwoXD7wewSk+UhZDgaKBCW5m+5 test@ecs"
replicate = true
"#;

fn state_file() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossgate-replication-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("keys.json")
}

fn config(state: &std::path::Path) -> Config {
    let mut config = config_with("", ROWS);
    config.replication.state = state.to_owned();
    config
}

fn ecs_key(env: &Env, name: &str) -> Option<KeyPair> {
    env.sim().with_state(|s| s.key_pairs(Provider::AliyunEcs).iter().find(|k| k.name == name).cloned())
}

#[tokio::test]
async fn a_tencent_key_bound_on_ecs_is_imported_there_first_with_its_fingerprint_checked() {
    let env = Env::start(config(&state_file())).await;
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5e25x2mwr0hk33dwv0h"], &[CVM_ONLY]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let imported = ecs_key(&env, "releasebot").expect("imported on ECS under its CVM name");
    let sent = PublicKey::parse(imported.public_key.as_deref().unwrap()).unwrap();
    assert_eq!(sent, PublicKey::parse(CVM_ONLY_PUBLIC).unwrap(), "the same public key");
    let bound =
        env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5e25x2mwr0hk33dwv0h").unwrap().keys.clone());
    assert_eq!(bound, ["releasebot"]);
    let entry = env.audit_lines().pop().unwrap();
    let calls: Vec<(&str, &str)> =
        entry.upstream_calls.iter().map(|c| (c.upstream.as_str(), c.action.as_str())).collect();
    assert_eq!(
        calls,
        [("cvm", "describe_keys"), ("ecs", "describe_keys"), ("ecs", "import_key"), ("ecs", "associate_keys")]
    );
    assert!(entry.steps.iter().any(|s| s.contains("fingerprint matches")), "{:?}", entry.steps);

    // Learned: the next bind imports nothing.
    let again = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5eg7be9ndloji64jknv"], &[CVM_ONLY]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &again).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let entry = env.audit_lines().pop().unwrap();
    assert!(entry.upstream_calls.iter().all(|c| c.action != "import_key"), "{:?}", entry.upstream_calls);
}

#[tokio::test]
async fn an_ecs_key_with_a_configured_public_key_is_imported_on_cvm_and_lighthouse() {
    let env = Env::start(config(&state_file())).await;
    // i-aaaacvm1 is ins-1e4r6y8i on CVM, i-bbbblh01 is lhins-3k9d8f7s on Lighthouse (both STOPPED).
    for (instance, provider, upstream_id) in [
        ("i-aaaacvm1", Provider::TencentCvm, "ins-1e4r6y8i"),
        ("i-bbbblh01", Provider::TencentLighthouse, "lhins-3k9d8f7s"),
    ] {
        let bind = key_op(Action::AssociateKeys, Dialect::AliyunEcs, &[instance], &["testKeyPairName"]);
        let got = env.call(Dialect::AliyunEcs, Scheme::Acs3, &bind).await;
        assert_eq!(got.status, 200, "{provider}: {}", got.text());
        let key = env
            .sim()
            .with_state(|s| s.key_pairs(provider).iter().find(|k| k.name == "testKeyPairName").cloned())
            .expect("imported");
        assert_eq!(
            PublicKey::parse(key.public_key.as_deref().unwrap()).unwrap(),
            PublicKey::parse(ECS_PUBLIC).unwrap()
        );
        env.sim().with_state(|s| s.tick(u64::MAX / 2));
        let bound = env.sim().with_state(|s| s.instance(provider, upstream_id).unwrap().keys.clone());
        assert!(bound.contains(&key.id), "{provider}: {bound:?}");
    }
}

#[tokio::test]
async fn a_name_taken_by_another_key_is_a_clear_refusal_and_nothing_is_imported() {
    let env = Env::start(config(&state_file())).await;
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMjg+YLuiY2ONYD54tAXQXnBZzl7C31h6rb41HhIM7VX";
    env.sim()
        .with_state(|s| s.add_key_pair(Provider::AliyunEcs, KeyPair::ecs("releasebot").with_public_key(other)))
        .unwrap();
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5e25x2mwr0hk33dwv0h"], &[CVM_ONLY]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InvalidKeyPairName.Duplicate"), "{}", got.text());
    assert!(got.error_message(Dialect::TencentCvm).contains("taken on aliyun-ecs by another key"));
    let bound =
        env.sim().with_state(|s| s.instance(Provider::AliyunEcs, "i-m5e25x2mwr0hk33dwv0h").unwrap().keys.clone());
    assert!(bound.is_empty());
    let entry = env.audit_lines().pop().unwrap();
    assert!(entry.upstream_calls.iter().all(|c| c.action != "import_key" && c.action != "associate_keys"));
}

#[tokio::test]
async fn an_import_that_succeeds_then_a_bind_that_fails_keeps_the_key_learned_and_says_so() {
    let sim = Env::with("", "").await;
    let state = state_file();
    let proxy = FaultProxy::start(
        sim.started.simulator.as_ref().unwrap().0.addr,
        BTreeMap::from([("AttachKeyPair", "IncorrectInstanceStatus")]),
    )
    .await;
    let mut config = config(&state);
    for up in config.upstreams.values_mut() {
        up.endpoint = Endpoint::Url { tls: false, authority: proxy.addr.to_string() };
        up.retries = 0;
    }
    let env = Env::start(config.clone()).await;
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5e25x2mwr0hk33dwv0h"], &[CVM_ONLY]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert!(got.error_code(Dialect::TencentCvm).is_some(), "{}", got.text());
    assert_eq!(proxy.seen(), ["DescribeKeyPairs", "DescribeKeyPairs", "ImportKeyPair", "AttachKeyPair"]);
    assert!(ecs_key(&sim, "releasebot").is_some(), "the import stands");
    let entry = env.audit_lines().pop().unwrap();
    assert!(entry.steps.iter().any(|s| s.contains("imported on aliyun-ecs as releasebot")), "{:?}", entry.steps);
    let saved = std::fs::read_to_string(&state).unwrap();
    assert!(saved.contains("\"aliyun-ecs\": \"releasebot\""), "{saved}");

    // After a restart the learned name is used: no second import.
    drop(env);
    let again = Env::start(config).await;
    let _ = again.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(proxy.seen().iter().filter(|a| *a == "ImportKeyPair").count(), 1, "{:?}", proxy.seen());
}

#[tokio::test]
async fn keys_check_reports_drift_and_keys_sync_removes_it() {
    let env = Env::start(config(&state_file())).await;
    let upstreams = env.started.upstreams.clone();
    let book = KeyBook::in_memory(&env.config);
    let r = Replicator {
        book: &book,
        upstreams: &upstreams,
        maps: &env.maps,
        clock: &SystemClock,
        deadline: None,
        audit: None,
    };
    let other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMjg+YLuiY2ONYD54tAXQXnBZzl7C31h6rb41HhIM7VX";
    env.sim()
        .with_state(|s| {
            s.add_key_pair(
                Provider::TencentCvm,
                KeyPair::tencent("skey-abcd1234", "testKeyPairName").with_public_key(other),
            )
        })
        .unwrap();
    let drift = replicate::check(&r).await;
    let text: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        drift.contains(&Drift::Missing { key: "skey-7mig2ecs (tencent-cvm)".into(), provider: Provider::AliyunEcs }),
        "{text:?}"
    );
    assert!(
        drift.contains(&Drift::NameTaken {
            key: "testKeyPairName (aliyun-ecs)".into(),
            provider: Provider::TencentCvm,
            name: "testKeyPairName".into()
        }),
        "{text:?}"
    );
    let before = env.sim().with_state(|s| s.key_pairs(Provider::AliyunEcs).len());
    assert_eq!(before, 2, "check changed nothing");

    let synced = replicate::sync(&r).await;
    let failures: Vec<String> =
        synced.iter().filter_map(|(k, p, r)| r.as_ref().err().map(|e| format!("{k} {p}: {e}"))).collect();
    assert_eq!(failures.len(), 1, "only the taken name fails: {failures:?}");
    let drift = replicate::check(&r).await;
    assert!(
        drift
            .iter()
            .all(|d| matches!(d, Drift::NameTaken { .. } | Drift::Missing { provider: Provider::TencentCvm, .. })),
        "{drift:?}"
    );
}

#[tokio::test]
async fn concurrent_binds_of_a_missing_key_import_it_once() {
    let env = Env::start(config(&state_file())).await;
    let first = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5e25x2mwr0hk33dwv0h"], &[CVM_ONLY]);
    let second = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["i-m5eg7be9ndloji64jknv"], &[CVM_ONLY]);
    let (a, b) = tokio::join!(
        env.call(Dialect::TencentCvm, Scheme::Tc3, &first),
        env.call(Dialect::TencentCvm, Scheme::Tc3, &second)
    );
    for got in [&a, &b] {
        assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    }
    let imports: usize =
        env.audit_lines().iter().map(|e| e.upstream_calls.iter().filter(|c| c.action == "import_key").count()).sum();
    assert_eq!(imports, 1, "one import for both binds");
    let copies =
        env.sim().with_state(|s| s.key_pairs(Provider::AliyunEcs).iter().filter(|k| k.name == "releasebot").count());
    assert_eq!(copies, 1);
}
