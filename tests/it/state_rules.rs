//! The upstreams' state rules reach each caller as its own code: a RUNNING CVM machine without
//! `ForceStop` (and with it), Windows machines, and a Lighthouse operation still in progress.

use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::Dialect;
use crossgate::model::Provider;
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;

use crate::harness::{Env, Got, Signer, bind_op, v1_request};

/// Who asks about a machine, under which name, with which key, and the answer they must get.
struct Ask {
    dialect: Dialect,
    scheme: Scheme,
    instance: &'static str,
    key: &'static str,
    /// The dialect's code, and the HTTP status (200 for Tencent).
    code: &'static str,
    status: u16,
}

const fn ask(dialect: Dialect, scheme: Scheme, instance: &'static str, key: &'static str, code: &'static str) -> Ask {
    let status = if matches!(dialect, Dialect::AliyunEcs) { 403 } else { 200 };
    Ask { dialect, scheme, instance, key, code, status }
}

async fn check(env: &Env, ask: &Ask, case: &str) -> Got {
    let got = env.call(ask.dialect, ask.scheme, &bind_op(ask.dialect, &[ask.instance], &[ask.key])).await;
    assert_eq!(got.status, ask.status, "{case}: {}", got.text());
    assert_eq!(got.error_code(ask.dialect).as_deref(), Some(ask.code), "{case}: {}", got.text());
    let line = env.audit_line(&got.request_id(ask.dialect).unwrap());
    assert_eq!((line.code.as_str(), line.fault_source.as_deref()), (ask.code, Some("upstream")), "{case}");
    got
}

/// `BindInstanceKey` for one machine, hand-signed (old-style actions answer `{"code", "message", "codeDesc"}`).
async fn old_style_bind(env: &Env, instance: &str, key: &str) -> Got {
    let params =
        [("Action", "BindInstanceKey"), ("Region", "ap-guangzhou"), ("instanceIds.0", instance), ("keyId", key)];
    env.send(&v1_request(&env.host(), "GET", "/v2/index.php", &params, Hash::Sha1, &Signer::demo())).await
}

fn cvm_keys(env: &Env, id: &str) -> (Vec<String>, String) {
    env.sim().with_state(|s| {
        let vm = s.instance(Provider::TencentCvm, id).unwrap();
        (vm.keys.clone(), vm.state.clone())
    })
}

#[tokio::test]
async fn a_running_cvm_machine_without_force_stop_is_refused_in_each_callers_code() {
    let env = Env::with("", "").await;
    let asks = [
        ask(
            Dialect::TencentCvm,
            Scheme::Tc3,
            "ins-w34e5rl9",
            "skey-4e5ty7i8",
            "UnsupportedOperation.InstanceStateRunning",
        ),
        ask(
            Dialect::TencentCvm,
            Scheme::TencentV1Sha256,
            "ins-w34e5rl9",
            "skey-4e5ty7i8",
            "UnsupportedOperation.InstanceStateRunning",
        ),
        ask(
            Dialect::TencentV2,
            Scheme::TencentV1Sha256,
            "ins-w34e5rl9",
            "skey-4e5ty7i8",
            "InvalidInstance.NotSupported",
        ),
        ask(
            Dialect::TencentLighthouse,
            Scheme::Tc3,
            "lhins-runncvm1",
            "lhkp-f7rjie1q",
            "UnsupportedOperation.InvalidInstanceState",
        ),
        ask(Dialect::AliyunEcs, Scheme::AliyunRpc, "i-runncvm1", "FinanceJoshuaV25", "IncorrectInstanceStatus"),
        ask(Dialect::AliyunEcs, Scheme::Acs3, "i-runncvm1", "FinanceJoshuaV25", "IncorrectInstanceStatus"),
    ];
    for a in &asks {
        check(&env, a, &format!("{} {:?}", a.dialect, a.scheme)).await;
    }
    let got = old_style_bind(&env, "ins-w34e5rl9", "skey-4e5ty7i8").await;
    let body = got.json();
    assert_eq!((&body["code"], &body["codeDesc"]), (&5100.into(), &"InvalidInstance.NotSupported".into()), "{body}");
    assert_eq!(cvm_keys(&env, "ins-w34e5rl9"), (vec!["skey-11112222".to_owned()], "RUNNING".to_owned()), "unchanged");
}

#[tokio::test]
async fn force_stop_lets_a_running_cvm_machine_be_bound() {
    for (dialect, scheme) in [(Dialect::TencentCvm, Scheme::Tc3), (Dialect::TencentV2, Scheme::TencentV1Sha256)] {
        let env = Env::with("", "").await;
        let mut op = bind_op(dialect, &["ins-w34e5rl9"], &["skey-4e5ty7i8"]);
        op.force_stop = Some(true);
        let got = env.call(dialect, scheme, &op).await;
        assert_eq!(got.error_code(dialect), None, "{dialect}: {}", got.text());
        assert_eq!(env.sim().seen()[0].code, "Success");
        // Force-stopped, bound, and started again.
        assert_eq!(
            cvm_keys(&env, "ins-w34e5rl9"),
            (vec!["skey-4e5ty7i8".to_owned()], "RUNNING".to_owned()),
            "{dialect}"
        );
    }
}

#[tokio::test]
async fn windows_machines_are_refused_in_each_callers_code() {
    let env = Env::with("", "").await;
    let asks = [
        ask(
            Dialect::TencentCvm,
            Scheme::Tc3,
            "ins-5wq8v2kd",
            "skey-4e5ty7i8",
            "UnsupportedOperation.InstanceOsWindows",
        ),
        ask(
            Dialect::TencentV2,
            Scheme::TencentV1Sha256,
            "ins-5wq8v2kd",
            "skey-4e5ty7i8",
            "InvalidInstance.NotSupported",
        ),
        ask(
            Dialect::TencentLighthouse,
            Scheme::Tc3,
            "lhins-w1n2d3s4",
            "lhkp-f7rjie1q",
            "UnsupportedOperation.WindowsNotSupportKeyPair",
        ),
        ask(
            Dialect::AliyunEcs,
            Scheme::AliyunRpc,
            "i-wwwwcvm1",
            "FinanceJoshuaV25",
            "DependencyViolation.WindowsInstance",
        ),
        // ECS refuses a Windows machine per instance; a Tencent caller's batch fails as a whole.
        ask(
            Dialect::TencentCvm,
            Scheme::Tc3,
            "ins-wwwwecs1",
            "skey-4e5ty7i8",
            "UnsupportedOperation.InstanceOsWindows",
        ),
    ];
    for a in &asks {
        check(&env, a, &format!("{} {}", a.dialect, a.instance)).await;
    }
    let got = old_style_bind(&env, "ins-5wq8v2kd", "skey-4e5ty7i8").await;
    assert_eq!(
        (&got.json()["code"], got.error_code(Dialect::TencentV2).as_deref()),
        (&5100.into(), Some("InvalidInstance.NotSupported"))
    );

    // An ECS caller asking ECS itself gets per-instance results, as ECS answers.
    let got = env
        .call(
            Dialect::AliyunEcs,
            Scheme::AliyunRpc,
            &bind_op(Dialect::AliyunEcs, &["i-m5ewindows2022srv001"], &["FinanceJoshuaV25"]),
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text());
    let body = got.json();
    let result = &body["Results"]["Result"][0];
    assert_eq!((&body["FailCount"], &result["Success"], &result["Code"]), (&"1".into(), &false.into(), &"403".into()));
    assert_eq!(result["Message"], "DependencyViolation.WindowsInstance");
}

#[tokio::test]
async fn an_unfinished_lighthouse_operation_is_refused_in_each_callers_code() {
    let env = Env::with("", "").await;
    env.sim().with_state(|s| s.set_operation_delay_ms(60_000));
    // Signed a second earlier than the asks below: the same TC3 request twice would be a replay.
    let first = env.signed(
        Dialect::TencentLighthouse,
        Scheme::Tc3,
        &bind_op(Dialect::TencentLighthouse, &["lhins-3k9d8f7s"], &["lhkp-f7rjie1q"]),
        DEMO_CALLER_ID,
        DEMO_CALLER_SECRET,
        SystemClock.now_unix() - 1,
    );
    let first = env.send(&first).await;
    assert_eq!(first.error_code(Dialect::TencentLighthouse), None, "{}", first.text());
    let asks = [
        ask(
            Dialect::TencentLighthouse,
            Scheme::Tc3,
            "lhins-3k9d8f7s",
            "lhkp-f7rjie1q",
            "UnsupportedOperation.LatestOperationUnfinished",
        ),
        ask(
            Dialect::TencentCvm,
            Scheme::Tc3,
            "ins-bbbblh01",
            "skey-4e5ty7i8",
            "OperationDenied.InstanceOperationInProgress",
        ),
        ask(
            Dialect::TencentV2,
            Scheme::TencentV1Sha256,
            "ins-bbbblh01",
            "skey-4e5ty7i8",
            "InvalidInstance.NotSupported",
        ),
        ask(Dialect::AliyunEcs, Scheme::Acs3, "i-bbbblh01", "FinanceJoshuaV25", "IncorrectInstanceStatus"),
    ];
    for a in &asks {
        check(&env, a, &format!("{} {}", a.dialect, a.instance)).await;
    }
}
