//! The state policies end to end, callers signing as their SDKs do, the simulator applying each cloud's
//! rules: CVM `running = "force-stop"` (stop, bind, start), ECS `reboot = "if-running"` (bind, reboot),
//! Lighthouse `wait` (bind, poll until done); each step in the audit record; and failures in the middle
//! of a sequence, injected by a proxy that refuses one action for real: the caller gets a clear error in
//! its dialect and the audit shows every step taken.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crossgate::config::{Config, OnRunning, Reboot};
use crossgate::dialect::Dialect;
use crossgate::layer::audit::AuditEntry;
use crossgate::model::{Action, OperationState, Provider};
use crossgate::sign::Scheme;

use crate::fault_proxy::FaultProxy;
use crate::harness::{Env, config_with, key_op};

/// The demo configuration (its own simulator), changed by `edit`.
async fn env(edit: impl FnOnce(&mut Config)) -> Env {
    let mut config = config_with("", "");
    edit(&mut config);
    Env::start(config).await
}

/// A gateway whose `upstream` goes through a proxy (failing `failing`) to `sim`'s simulator.
async fn env_through(
    sim: &Env,
    upstream: &str,
    failing: BTreeMap<&'static str, &'static str>,
    edit: impl FnOnce(&mut Config),
) -> (Env, FaultProxy) {
    let proxy = FaultProxy::start(sim.started.simulator.as_ref().unwrap().0.addr, failing).await;
    let mut config = config_with("", "");
    let up = config.upstreams.get_mut(upstream).unwrap();
    up.endpoint = crossgate::config::Endpoint::Url { tls: false, authority: proxy.addr.to_string() };
    up.retries = 0;
    edit(&mut config);
    (Env::start(config).await, proxy)
}

fn actions(entry: &AuditEntry) -> Vec<&str> {
    entry.upstream_calls.iter().map(|c| c.action.as_str()).collect()
}

fn last(env: &Env) -> AuditEntry {
    env.audit_lines().pop().expect("a final audit record")
}

#[tokio::test]
async fn cvm_force_stop_stops_binds_and_starts_a_running_instance_again() {
    let running = "ins-w34e5rl9";
    let state = |env: &Env| env.sim().with_state(|s| s.instance(Provider::TencentCvm, running).unwrap().clone());
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &[running], &["skey-4e5ty7i8"]);

    // CVM's own rule, by default: refused.
    let faithful = env(|_| {}).await;
    let got = faithful.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert!(got.error_code(Dialect::TencentCvm).is_some_and(|c| c.contains("InstanceStateRunning")), "{}", got.text());

    let env = env(|c| c.upstreams.get_mut("cvm").unwrap().policy.running = OnRunning::ForceStop).await;
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let vm = state(&env);
    assert_eq!((vm.state.as_str(), vm.keys.as_slice()), ("RUNNING", ["skey-4e5ty7i8".to_owned()].as_slice()));
    let entry = last(&env);
    assert_eq!(
        actions(&entry),
        ["describe_instances", "stop_instances", "describe_instances", "associate_keys", "start_instances"]
    );
    assert!(entry.steps.iter().any(|s| s.contains("force-stop") && s.contains(running)), "{:?}", entry.steps);

    // A stopped instance needs none of it.
    let stopped = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &stopped).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    assert_eq!(actions(&last(&env)), ["describe_instances", "associate_keys"]);
}

#[tokio::test]
async fn cvm_force_stop_whose_start_fails_reports_the_machine_left_stopped() {
    let sim = env(|_| {}).await;
    let failing = BTreeMap::from([("StartInstances", "ResourceInsufficient.CloudDiskUnavailability")]);
    let (env, proxy) = env_through(&sim, "cvm", failing, |c| {
        c.upstreams.get_mut("cvm").unwrap().policy.running = OnRunning::ForceStop
    })
    .await;
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["ins-w34e5rl9"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    let message = got.error_message(Dialect::TencentCvm);
    assert!(got.error_code(Dialect::TencentCvm).is_some(), "{}", got.text());
    assert!(message.contains("starting it again failed") && message.contains("ins-w34e5rl9"), "{message}");
    let vm = sim.sim().with_state(|s| s.instance(Provider::TencentCvm, "ins-w34e5rl9").unwrap().clone());
    assert_eq!((vm.state.as_str(), vm.keys.as_slice()), ("STOPPED", ["skey-4e5ty7i8".to_owned()].as_slice()));
    assert_eq!(
        proxy.seen(),
        ["DescribeInstances", "StopInstances", "DescribeInstances", "AssociateInstancesKeyPairs", "StartInstances"]
    );
    let entry = last(&env);
    assert_eq!(entry.upstream_calls.last().unwrap().fault.as_deref(), Some("upstream_unclassified"));
    assert!(entry.steps.iter().any(|s| s.contains("left stopped: ins-w34e5rl9")), "{:?}", entry.steps);
}

#[tokio::test]
async fn cvm_force_stop_whose_stop_fails_changes_nothing() {
    let sim = env(|_| {}).await;
    let failing = BTreeMap::from([("StopInstances", "OperationDenied.InstanceOperationInProgress")]);
    let (env, proxy) = env_through(&sim, "cvm", failing, |c| {
        c.upstreams.get_mut("cvm").unwrap().policy.running = OnRunning::ForceStop
    })
    .await;
    let bind = key_op(Action::AssociateKeys, Dialect::TencentCvm, &["ins-w34e5rl9"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &bind).await;
    assert_eq!(
        got.error_code(Dialect::TencentCvm).as_deref(),
        Some("OperationDenied.InstanceOperationInProgress"),
        "{}",
        got.text()
    );
    assert_eq!(proxy.seen(), ["DescribeInstances", "StopInstances"], "nothing bound after a failed stop");
    let vm = sim.sim().with_state(|s| s.instance(Provider::TencentCvm, "ins-w34e5rl9").unwrap().clone());
    assert_eq!((vm.state.as_str(), vm.keys.as_slice()), ("RUNNING", ["skey-11112222".to_owned()].as_slice()));
    assert!(last(&env).steps.iter().any(|s| s.contains("nothing was changed")));
}

#[tokio::test]
async fn ecs_reboot_if_running_makes_the_key_take_effect() {
    let running = "i-m5eg7be9ndloji64jknv";
    let effective =
        |env: &Env| env.sim().with_state(|s| s.effective_key(Provider::AliyunEcs, running).map(str::to_owned));
    let bind = key_op(Action::AssociateKeys, Dialect::AliyunEcs, &[running], &["FinanceJoshuaV25"]);

    let faithful = env(|_| {}).await;
    let got = faithful.call(Dialect::AliyunEcs, Scheme::Acs3, &bind).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(effective(&faithful), None, "bound, but not in effect until a reboot");

    let env = env(|c| c.upstreams.get_mut("ecs").unwrap().policy.reboot = Reboot::IfRunning).await;
    let got = env.call(Dialect::AliyunEcs, Scheme::Acs3, &bind).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(effective(&env).as_deref(), Some("FinanceJoshuaV25"));
    assert_eq!(actions(&last(&env)), ["describe_instances", "associate_keys", "reboot_instances"]);
}

#[tokio::test]
async fn ecs_reboot_that_fails_reports_the_instance_whose_key_is_not_in_effect() {
    let sim = env(|_| {}).await;
    let failing = BTreeMap::from([("RebootInstance", "IncorrectInstanceStatus")]);
    let (env, proxy) =
        env_through(&sim, "ecs", failing, |c| c.upstreams.get_mut("ecs").unwrap().policy.reboot = Reboot::IfRunning)
            .await;
    let bind = key_op(Action::AssociateKeys, Dialect::AliyunEcs, &["i-m5eg7be9ndloji64jknv"], &["FinanceJoshuaV25"]);
    let got = env.call(Dialect::AliyunEcs, Scheme::Acs3, &bind).await;
    // ECS answers per instance: this one failed, saying why.
    let body = got.json();
    let result = &body["Results"]["Result"][0];
    assert_eq!(result["Success"], false, "{body}");
    assert_eq!(body["FailCount"], "1", "{body}");
    assert_eq!(proxy.seen(), ["DescribeInstances", "AttachKeyPair", "RebootInstance"]);
    assert!(last(&env).steps.iter().any(|s| s.contains("RebootInstance failed for i-m5eg7be9ndloji64jknv")));
}

#[tokio::test]
async fn lighthouse_wait_answers_once_the_operation_is_done() {
    let instance = "lhins-ruy9d2tw";
    let bind = key_op(Action::AssociateKeys, Dialect::TencentLighthouse, &[instance], &["lhkp-f7rjie1q"]);
    let latest = |env: &Env| {
        env.sim().with_state(|s| {
            s.instance(Provider::TencentLighthouse, instance).unwrap().latest_operation.as_ref().map(|l| l.state)
        })
    };
    let faithful = env(|c| c.upstreams.get_mut("lighthouse").unwrap().policy.wait = None).await;
    let got = faithful.call(Dialect::TencentLighthouse, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentLighthouse), None, "{}", got.text());
    assert_eq!(latest(&faithful), Some(OperationState::Operating), "answered before the work is done");

    let env = env(|c| c.upstreams.get_mut("lighthouse").unwrap().policy.wait = Some(Duration::from_secs(10))).await;
    let asked = Instant::now();
    let got = env.call(Dialect::TencentLighthouse, Scheme::Tc3, &bind).await;
    assert_eq!(got.error_code(Dialect::TencentLighthouse), None, "{}", got.text());
    assert!(asked.elapsed() >= Duration::from_millis(400), "waited for the operation");
    let done = env.sim().with_state(|s| {
        s.tick(u64::MAX / 2); // nothing left to complete: the answer came after the work
        s.instance(Provider::TencentLighthouse, instance).unwrap().keys.clone()
    });
    assert_eq!(done, ["lhkp-f7rjie1q"]);
    let entry = last(&env);
    assert_eq!(actions(&entry)[..2], ["associate_keys", "describe_instances"]);
    assert!(entry.steps.iter().any(|s| s.contains("SUCCESS")), "{:?}", entry.steps);
}

#[tokio::test]
async fn lighthouse_wait_that_ends_first_reports_the_unfinished_operation() {
    let env = env(|c| c.upstreams.get_mut("lighthouse").unwrap().policy.wait = Some(Duration::from_millis(300))).await;
    env.sim().with_state(|s| s.set_operation_delay_ms(60_000));
    let bind = key_op(Action::AssociateKeys, Dialect::TencentLighthouse, &["lhins-ruy9d2tw"], &["lhkp-f7rjie1q"]);
    let got = env.call(Dialect::TencentLighthouse, Scheme::Tc3, &bind).await;
    let message = got.error_message(Dialect::TencentLighthouse);
    assert!(message.contains("still OPERATING"), "{}", got.text());
    assert!(last(&env).steps.iter().any(|s| s.contains("failed or unfinished: lhins-ruy9d2tw")));
}
