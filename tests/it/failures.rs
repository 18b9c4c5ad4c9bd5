//! Upstream failures: an upstream that refuses connections and one that accepts and never answers. The
//! caller gets its dialect's unavailable or internal error within the upstream's time limit, and legs to
//! different upstreams wait for their limits side by side, not one after another.

use std::time::{Duration, Instant};

use crossgate::dialect::Dialect;
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;
use tokio::net::TcpListener;

use crate::harness::{Env, Got, Signer, bind_op, config_with, v1_request};

/// A loopback port where nothing listens any more.
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A loopback port that accepts connections, reads nothing and never answers (until the test ends).
async fn silent_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

/// A CVM upstream `name` at `port`, and machines routed to it: `ins-aaa<tag>1` for Tencent callers,
/// `i-aaa<tag>1` for Alibaba callers (`tag` is 4 letters).
fn cvm_upstream(name: &str, tag: &str, port: u16, timeout_ms: u64) -> (String, String) {
    let rules = format!("\n[[routing.rules]]\ninstance = \"*{tag}1\"\nupstream = \"{name}\"\n");
    let extra = format!(
        r#"
[upstreams.{name}]
provider = "tencent-cvm"
endpoint = "http://127.0.0.1:{port}"
region = "ap-guangzhou"
secret_id = "AKID{name}upstream"
secret_key = "{name}-upstream-secret"
timeout_ms = {timeout_ms}

[[instances]]
tencent-cvm = "ins-aaa{tag}1"
aliyun-ecs = "i-aaa{tag}1"
"#
    );
    (rules, extra)
}

/// Who asks, and the code they must get when the upstream is unreachable / silent.
const CALLERS: [(Dialect, Scheme, &str, &str, &str); 4] = [
    (Dialect::TencentCvm, Scheme::Tc3, "ins-aaadead1", "ServiceUnavailable", "InternalError"),
    (Dialect::TencentV2, Scheme::TencentV1Sha256, "ins-aaadead1", "InternalError", "InternalError"),
    (Dialect::AliyunEcs, Scheme::AliyunRpc, "i-aaadead1", "ServiceUnavailable", "ServiceUnavailable"),
    (Dialect::AliyunEcs, Scheme::Acs3, "i-aaadead1", "ServiceUnavailable", "ServiceUnavailable"),
];

fn key_of(dialect: Dialect) -> &'static str {
    if dialect == Dialect::AliyunEcs { "FinanceJoshuaV25" } else { "skey-4e5ty7i8" }
}

async fn timed(env: &Env, dialect: Dialect, scheme: Scheme, instance: &str) -> (Got, Duration) {
    let started = Instant::now();
    let got = env.call(dialect, scheme, &bind_op(dialect, &[instance], &[key_of(dialect)])).await;
    (got, started.elapsed())
}

fn assert_upstream_fault(env: &Env, dialect: Dialect, got: &Got, code: &str, kind: &str, case: &str) {
    let status = if dialect == Dialect::AliyunEcs { 503 } else { 200 };
    assert_eq!(got.status, status, "{case}: {}", got.text());
    assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{case}: {}", got.text());
    let line = env.audit_line(&got.request_id(dialect).unwrap());
    assert_eq!((line.kind.as_deref(), line.fault_source.as_deref()), (Some(kind), Some("upstream")), "{case}");
    assert_eq!(line.upstreams, ["dead"], "{case}");
    assert_eq!(line.results.len(), 1, "{case}");
    assert_eq!(line.results[0].outcome, kind, "{case}");
}

#[tokio::test]
async fn an_upstream_that_refuses_connections_is_unavailable() {
    let (rules, extra) = cvm_upstream("dead", "dead", refusing_port(), 300);
    let env = Env::with(&rules, &extra).await;
    for (dialect, scheme, instance, code, _) in CALLERS {
        let case = format!("{dialect} {scheme:?}");
        let (got, elapsed) = timed(&env, dialect, scheme, instance).await;
        assert!(elapsed < Duration::from_secs(5), "{case}: {elapsed:?}");
        assert_upstream_fault(&env, dialect, &got, code, "upstream_unavailable", &case);
    }
    // The old-style legacy answer: a numeric code.
    let params = [
        ("Action", "BindInstanceKey"),
        ("Region", "ap-guangzhou"),
        ("instanceIds.0", "ins-aaadead1"),
        ("keyId", "skey-4e5ty7i8"),
    ];
    let got = env.send(&v1_request(&env.host(), "GET", "/v2/index.php", &params, Hash::Sha1, &Signer::demo())).await;
    assert_eq!(
        (&got.json()["code"], got.error_code(Dialect::TencentV2).as_deref()),
        (&6000.into(), Some("InternalError"))
    );
}

#[tokio::test]
async fn an_upstream_that_never_answers_times_out() {
    let (rules, extra) = cvm_upstream("dead", "dead", silent_port().await, 300);
    let env = Env::with(&rules, &extra).await;
    for (dialect, scheme, instance, _, code) in CALLERS {
        let case = format!("{dialect} {scheme:?}");
        let (got, elapsed) = timed(&env, dialect, scheme, instance).await;
        assert!(elapsed >= Duration::from_millis(300), "{case}: answered before the time limit: {elapsed:?}");
        assert!(elapsed < Duration::from_secs(5), "{case}: {elapsed:?}");
        assert_upstream_fault(&env, dialect, &got, code, "upstream_timeout", &case);
    }
}

/// A dead leg fails only its own instances for an Alibaba caller; the healthy leg still succeeds.
#[tokio::test]
async fn a_dead_upstream_fails_only_its_own_instances() {
    let (rules, extra) = cvm_upstream("dead", "dead", refusing_port(), 300);
    let env = Env::with(&rules, &extra).await;
    let op = bind_op(Dialect::AliyunEcs, &["i-aaadead1", "i-m5eg7be9ndloji64jknv"], &["FinanceJoshuaV25"]);
    let got = env.call(Dialect::AliyunEcs, Scheme::AliyunRpc, &op).await;
    assert_eq!(got.status, 200, "{}", got.text());
    let body = got.json();
    assert_eq!(body["FailCount"], "1", "{body}");
    let results = &body["Results"]["Result"];
    assert_eq!((&results[0]["InstanceId"], &results[0]["Success"]), (&"i-aaadead1".into(), &false.into()));
    assert_eq!((&results[0]["Code"], &results[0]["Message"]), (&"503".into(), &"ServiceUnavailable".into()));
    assert_eq!((&results[1]["Success"], &results[1]["Code"]), (&true.into(), &"200".into()));
}

/// Two silent upstreams with a 1.5 s limit each: side by side the request ends in about 1.5 s; one after
/// the other it could not end before 3 s.
#[tokio::test]
async fn legs_to_different_upstreams_are_sent_concurrently() {
    let (rules_a, extra_a) = cvm_upstream("slowa", "slwa", silent_port().await, 1_500);
    let (rules_b, extra_b) = cvm_upstream("slowb", "slwb", silent_port().await, 1_500);
    let env = Env::with(&(rules_a + &rules_b), &(extra_a + &extra_b)).await;
    let started = Instant::now();
    let op = bind_op(Dialect::TencentCvm, &["ins-aaaslwa1", "ins-aaaslwb1"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &op).await;
    let elapsed = started.elapsed();
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InternalError"), "{}", got.text());
    assert!(elapsed >= Duration::from_millis(1_500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2_900), "the legs waited one after the other: {elapsed:?}");
    let line = env.audit_line(&got.request_id(Dialect::TencentCvm).unwrap());
    let mut upstreams = line.upstreams.clone();
    upstreams.sort();
    assert_eq!(upstreams, ["slowa", "slowb"]);
}

/// The whole-request limit (`request_timeout_ms`) answers in the caller's dialect too, even when an
/// upstream's own limit is longer.
#[tokio::test]
async fn the_request_time_limit_answers_in_the_callers_dialect() {
    let (rules, extra) = cvm_upstream("dead", "dead", silent_port().await, 10_000);
    let mut config = config_with(&rules, &extra);
    config.request_timeout = Duration::from_millis(300);
    let env = Env::start(config).await;
    for (dialect, scheme, instance, _, code) in CALLERS {
        let case = format!("{dialect} {scheme:?}");
        let (got, elapsed) = timed(&env, dialect, scheme, instance).await;
        assert!(elapsed < Duration::from_secs(5), "{case}: {elapsed:?}");
        let status = if dialect == Dialect::AliyunEcs { 503 } else { 200 };
        assert_eq!(got.status, status, "{case}: {}", got.text());
        assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{case}: {}", got.text());
        let line = env.audit_line(&got.request_id(dialect).unwrap());
        assert_eq!((line.kind.as_deref(), line.code.as_str()), (Some("upstream_timeout"), code), "{case}");
    }
}

/// An upstream that refuses the gateway's own credentials is the gateway's fault: the caller, whose
/// signature was fine, gets its dialect's internal error (not an auth error about its own secret, and not
/// the upstream's string to sign), and the audit line keeps what the upstream said.
#[tokio::test]
async fn an_upstream_refusing_the_gateways_credentials_is_an_internal_error() {
    // Two upstreams with the same id and different secrets: the simulator knows only the later one, so
    // it refuses what `cvm` signs.
    let extra = r#"
[upstreams.spare]
provider = "tencent-cvm"
endpoint = "sim"
region = "ap-guangzhou"
secret_id = "AKIDsimulatorCVM"
secret_key = "a-different-secret"
"#;
    let env = Env::with("", extra).await;
    for (dialect, scheme, code) in
        [(Dialect::TencentCvm, Scheme::Tc3, "InternalError"), (Dialect::AliyunEcs, Scheme::Acs3, "InternalError")]
    {
        let instance = if dialect == Dialect::AliyunEcs { "i-aaaacvm1" } else { "ins-1e4r6y8i" };
        let key = if dialect == Dialect::AliyunEcs { "FinanceJoshuaV25" } else { "skey-4e5ty7i8" };
        let got = env.call(dialect, scheme, &bind_op(dialect, &[instance], &[key])).await;
        assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{dialect}: {}", got.text());
        let message = got.error_message(dialect);
        assert!(message.contains("refused the gateway's credentials"), "{dialect}: {message}");
        assert!(!message.contains("AKIDsimulatorCVM"), "{dialect}: the upstream's credential id stays inside");
        let line = env.audit_line(&got.request_id(dialect).unwrap());
        assert_eq!(line.kind.as_deref(), Some("internal"), "{dialect}");
        assert!(!line.upstream_request_ids.is_empty(), "{dialect}: the upstream's RequestId is audited");
    }
}
