//! The audited door under faults injected for real: clients that half-close, vanish while the upstream
//! is slow or trickle their headers; an audit on a full disk; a restart on the same audit file; TC3
//! replays and unsigned bodies; per-caller permissions; and the overload answers.
// See: issues/8

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossgate::app::{self, Started};
use crossgate::audit::jsonl::{self, JsonLines, Options};
use crossgate::audit::{AuditEntry, AuditSink, Phase};
use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{Dialect, WireRequest};
use crossgate::secret::Secret;
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::fake_cvm::FakeCvm;
use crate::harness::{Env, Got, Signer, bind_op, config_with, send_to, tc3_request_signing, v1_request};
use crate::support::raw_http;

/// Routes `ins-aaaslow1` to the fake upstream, plus `more` TOML.
fn config_to(fake: &FakeCvm, more: &str) -> Config {
    let rules = "\n[[routing.rules]]\ninstance = \"ins-aaaslow1\"\nupstream = \"fake\"\n";
    let extra = format!(
        r#"
[upstreams.fake]
provider = "tencent-cvm"
endpoint = "http://127.0.0.1:{}"
region = "ap-guangzhou"
secret_id = "AKIDfakeupstream"
secret_key = "fake-upstream-secret"
{more}"#,
        fake.port()
    );
    config_with(rules, &extra)
}

const FAKE_INSTANCE: &str = "ins-aaaslow1";

fn v1_bind(host: &str, instance: &str) -> WireRequest {
    let params = [
        ("Action", "AssociateInstancesKeyPairs"),
        ("Version", "2017-03-12"),
        ("Region", "ap-guangzhou"),
        ("InstanceIds.0", instance),
        ("KeyIds.0", "skey-4e5ty7i8"),
    ];
    v1_request(host, "POST", "/v2/index.php", &params, Hash::Sha256, &Signer::demo())
}

fn tc3_bind(env: &Env, instance: &str) -> WireRequest {
    tc3_bind_at(&env.host(), instance)
}

/// A TC3 bind as the demo caller, signed now for a gateway at `host`.
fn tc3_bind_at(host: &str, instance: &str) -> WireRequest {
    let op = bind_op(Dialect::TencentCvm, &[instance], &["skey-4e5ty7i8"]);
    let ctx = crossgate::dialect::UpstreamCtx {
        host: host.to_owned(),
        region: "ap-guangzhou".into(),
        credential_id: DEMO_CALLER_ID.into(),
        scheme: Scheme::Tc3,
        timestamp: SystemClock.now_unix(),
        nonce: String::new(),
    };
    let maps = crate::support::maps();
    crossgate::dialect::encode_request(Dialect::TencentCvm, &op, &ctx, &Secret::new(DEMO_CALLER_SECRET), &maps).unwrap()
}

/// Waits until `check` holds (the work under test goes on after the caller left), at most 10 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn finals_for<'a>(lines: &'a [AuditEntry], id: &str) -> Vec<&'a AuditEntry> {
    lines.iter().filter(|l| l.request_id == id).collect()
}

// === clients that leave ===

#[tokio::test]
async fn a_client_that_half_closes_still_gets_its_answer_and_is_audited() {
    let fake = FakeCvm::start(Duration::from_millis(100)).await;
    let env = Env::start(config_to(&fake, "")).await;
    let mut stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    stream.write_all(&raw_http(&v1_bind(&env.host(), FAKE_INSTANCE))).await.unwrap();
    stream.shutdown().await.unwrap(); // the write side only: the client still reads
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("\"Error\""), "{answer}");
    assert_eq!(fake.calls(), 1);
    let lines = env.audit_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].phase, Phase::Completed);
    assert_eq!(lines[0].upstream_request_ids, vec!["fake-upstream-1".to_owned()]);
    let calls: Vec<_> =
        lines[0].upstream_calls.iter().map(|c| (c.upstream.as_str(), c.attempt, c.ending.as_str(), c.status)).collect();
    assert_eq!(calls, vec![("fake", 1, "answered", Some(200))], "every upstream attempt is in the record");
}

#[tokio::test]
async fn a_caller_that_leaves_mid_request_is_audited_and_its_request_is_never_forwarded_twice() {
    let fake = FakeCvm::start(Duration::from_millis(400)).await;
    let env = Env::start(config_to(&fake, "")).await;
    for (name, wire) in [("v1", v1_bind(&env.host(), FAKE_INSTANCE)), ("tc3", tc3_bind(&env, FAKE_INSTANCE))] {
        let before = fake.calls();
        let lines_before = env.audit_lines().len();
        // The client gives up while the upstream call is in flight.
        let gave_up = tokio::time::timeout(Duration::from_millis(150), send_to(env.started.gateway.addr, &wire)).await;
        assert!(gave_up.is_err(), "{name}: the answer came before the client gave up");
        eventually("the abandoned request is completed and audited", || env.audit_lines().len() == lines_before + 1)
            .await;
        let line = env.audit_lines().last().unwrap().clone();
        assert_eq!(fake.calls(), before + 1, "{name}");
        assert_eq!(line.phase, Phase::Completed, "{name}");
        assert_eq!(line.code, "Success", "{name}");
        assert_eq!(line.upstream_request_ids, vec![format!("fake-upstream-{}", before + 1)], "{name}");
        assert!(line.replay_key.is_some(), "{name}: the spent replay key is recorded");

        let again = send_to(env.started.gateway.addr, &wire).await;
        let code = again.error_code(if name == "v1" { Dialect::TencentV2 } else { Dialect::TencentCvm });
        assert!(code.is_some(), "{name}: a replay of the abandoned request is refused: {}", again.text());
        assert_eq!(fake.calls(), before + 1, "{name}: the replay never reached the upstream");
        let refused = env.audit_line(&again.request_id(Dialect::TencentCvm).unwrap());
        assert_eq!(refused.kind.as_deref(), Some("nonce_reused"), "{name}");
    }
    let all = env.audit.0.lock().unwrap().clone();
    let admitted = all.iter().filter(|e| e.phase == Phase::Admitted).count();
    assert_eq!(admitted, 2, "one admission record per forwarded request");
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, "\n[inbound]\nheader_read_timeout_ms = 500\n")).await;
    let mut stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    let started = Instant::now();
    let head = b"POST /v2/index.php HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n";
    let mut cut = false;
    for byte in head.iter().cycle().take(200) {
        if stream.write_all(&[*byte]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 512];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => {
                cut = true;
                break;
            }
            Ok(Ok(_)) => {
                // An answer (408 or similar) ends the connection too.
                cut = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(cut, "a client sending a byte every 100 ms was never cut off");
    assert!(started.elapsed() < Duration::from_secs(5), "cut off after {:?}", started.elapsed());
    assert_eq!(fake.calls(), 0);
}

// === the audit store fails ===

async fn start_with_sink(config: Config, sink: Arc<dyn AuditSink>) -> Started {
    app::start(config, sink, Arc::new(SystemClock)).await.expect("gateway starts")
}

#[tokio::test]
async fn an_audit_on_a_full_disk_refuses_in_the_callers_dialect_and_forwards_nothing() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let sink = Arc::new(JsonLines::open(std::path::Path::new("/dev/full"), Options::default()).unwrap());
    let started = start_with_sink(config_to(&fake, ""), sink).await;
    let host = started.gateway.addr.to_string();
    let got = send_to(started.gateway.addr, &v1_bind(&host, FAKE_INSTANCE)).await;
    assert_eq!(got.error_code(Dialect::TencentV2).as_deref(), Some("InternalServerError"), "{}", got.text());
    assert!(got.text().contains("audit"), "{}", got.text());
    assert_eq!(fake.calls(), 0, "nothing is forwarded unaudited");

    let mut forwarding = config_to(&fake, "");
    forwarding.audit.on_failure = crossgate::config::OnAuditFailure::Forward;
    let sink = Arc::new(JsonLines::open(std::path::Path::new("/dev/full"), Options::default()).unwrap());
    let started = start_with_sink(forwarding, sink).await;
    let host = started.gateway.addr.to_string();
    let got = send_to(started.gateway.addr, &v1_bind(&host, FAKE_INSTANCE)).await;
    assert_eq!(got.error_code(Dialect::TencentV2), None, "{}", got.text());
    assert_eq!(fake.calls(), 1, "on_failure = \"forward\" forwards");
}

// === restarts ===

fn temp_audit() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossgate-door-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("audit.jsonl")
}

#[tokio::test]
async fn after_a_restart_a_request_signed_before_it_is_not_forwarded_twice() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let path = temp_audit();
    let sink = Arc::new(JsonLines::open(&path, Options::default()).unwrap());
    let first = start_with_sink(config_to(&fake, ""), sink).await;
    let addr: SocketAddr = first.gateway.addr;
    let host = addr.to_string();
    let tc3 = tc3_bind_at(&host, FAKE_INSTANCE);
    let v1 = v1_bind(&host, FAKE_INSTANCE);
    for wire in [&v1, &tc3] {
        let got = send_to(addr, wire).await;
        assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    }
    assert_eq!(fake.calls(), 2);
    first.gateway.stop().await;

    let mut config = config_to(&fake, "");
    config.listen = addr;
    let sink = Arc::new(JsonLines::open(&path, Options::default()).unwrap());
    let second = start_with_sink(config, sink).await;
    for (wire, dialect) in [(&v1, Dialect::TencentV2), (&tc3, Dialect::TencentCvm)] {
        let got = send_to(second.gateway.addr, wire).await;
        assert!(got.error_code(dialect).is_some(), "a request signed before the restart is refused: {}", got.text());
    }
    assert_eq!(fake.calls(), 2, "no request reached the upstream twice across the restart");
    second.gateway.stop().await;
    let records = jsonl::read_all(&path, 1);
    let admitted: Vec<_> = records.iter().filter(|e| e.phase == Phase::Admitted).collect();
    assert_eq!(admitted.len(), 2);
    for a in admitted {
        let ends = finals_for(&records, &a.request_id);
        assert_eq!(ends.len(), 2, "admitted and completed: {ends:?}");
    }
}

// === replay policy ===

/// A TC3 request whose signature leaves the body out (`X-TC-Content-SHA256: UNSIGNED-PAYLOAD`).
fn tc3_unsigned(host: &str, instance: &str) -> WireRequest {
    let body = serde_json::json!({"InstanceIds": [instance], "KeyIds": ["skey-4e5ty7i8"]});
    let unsigned = [("x-tc-content-sha256", "UNSIGNED-PAYLOAD")];
    tc3_request_signing(host, "cvm", "AssociateInstancesKeyPairs", "2017-03-12", &body, &Signer::demo(), &unsigned)
}

#[tokio::test]
async fn a_tc3_signature_is_accepted_once_unless_the_window_policy_is_chosen() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, "")).await;
    let wire = tc3_bind(&env, FAKE_INSTANCE);
    let first = env.send(&wire).await;
    assert_eq!(first.error_code(Dialect::TencentCvm), None, "{}", first.text());
    let replay = env.send(&wire).await;
    assert_eq!(replay.error_code(Dialect::TencentCvm).as_deref(), Some("AuthFailure.SignatureFailure"));
    // The same signature in upper-case hex, or in any mix of cases, is the same signature.
    // (A signature with no letter in it, one in 2^43, could not be re-cased.)
    let all_upper = |signature: &str| signature.to_ascii_uppercase();
    let first_letter_upper = |signature: &str| {
        let mut recased = signature.to_owned();
        if let Some(at) = recased.find(|c: char| c.is_ascii_alphabetic()) {
            recased[at..=at].make_ascii_uppercase();
        }
        recased
    };
    for recase in [&all_upper as &dyn Fn(&str) -> String, &first_letter_upper] {
        let mut recased = wire.clone();
        for (name, value) in &mut recased.headers {
            if name.eq_ignore_ascii_case("authorization") {
                let (before, signature) = value.rsplit_once("Signature=").unwrap();
                *value = format!("{before}Signature={}", recase(signature));
            }
        }
        assert_ne!(recased.headers, wire.headers);
        let replay = env.send(&recased).await;
        assert_eq!(replay.error_code(Dialect::TencentCvm).as_deref(), Some("AuthFailure.SignatureFailure"));
    }
    assert_eq!(fake.calls(), 1);

    let window = Env::start(config_to(&fake, "\n[replay]\ntc3 = \"window\"\n")).await;
    let wire = tc3_bind(&window, FAKE_INSTANCE);
    for _ in 0..2 {
        let got = window.send(&wire).await;
        assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    }
    assert_eq!(fake.calls(), 3, "tc3 = \"window\" accepts repeats within the window");
}

#[tokio::test]
async fn an_unsigned_tc3_body_is_refused_unless_accepted() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, "")).await;
    let got = env.send(&tc3_unsigned(&env.host(), FAKE_INSTANCE)).await;
    assert_eq!(
        got.error_code(Dialect::TencentCvm).as_deref(),
        Some("AuthFailure.InvalidAuthorization"),
        "{}",
        got.text()
    );
    assert!(got.text().contains("UNSIGNED-PAYLOAD"));
    assert_eq!(fake.calls(), 0);

    let accepting = Env::start(config_to(&fake, "\n[replay]\nunsigned_payload = \"accept\"\n")).await;
    let got = accepting.send(&tc3_unsigned(&accepting.host(), FAKE_INSTANCE)).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    assert_eq!(fake.calls(), 1);
}

// === permissions ===

const LIMITED: &str = r#"
[[callers]]
name = "reader"
secret_id = "AKIDreaderreaderreaderreader00000"
secret_key = "reader-secret"
allow_actions = ["DescribeKeyPairs", "DescribeInstances"]

[[callers]]
name = "cvm-only"
secret_id = "AKIDcvmonlycvmonlycvmonly00000000"
secret_key = "cvm-only-secret"
allow_upstreams = ["cvm"]
allow_instances = ["ins-1e4r*", "i-*"]
"#;

#[tokio::test]
async fn callers_are_held_to_their_actions_upstreams_and_instances_in_their_own_dialect() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, LIMITED)).await;
    let now = SystemClock.now_unix();
    let cases: [(&str, &str, Dialect, Scheme, &str, &str); 4] = [
        ("reader binds", "reader", Dialect::TencentCvm, Scheme::Tc3, "ins-1e4r6y8i", "UnauthorizedOperation"),
        (
            "reader binds on ECS",
            "reader",
            Dialect::AliyunEcs,
            Scheme::AliyunRpc,
            "i-m5eg7be9ndloji64jknv",
            "Forbidden.RAM",
        ),
        (
            "cvm-only names another instance",
            "cvm-only",
            Dialect::TencentCvm,
            Scheme::Tc3,
            "ins-aaaslow1",
            "UnauthorizedOperation",
        ),
        (
            "cvm-only is routed to ECS",
            "cvm-only",
            Dialect::AliyunEcs,
            Scheme::AliyunRpc,
            "i-m5eg7be9ndloji64jknv",
            "Forbidden.RAM",
        ),
    ];
    for (case, who, dialect, scheme, instance, code) in cases {
        let (id, secret) = if who == "reader" {
            ("AKIDreaderreaderreaderreader00000", "reader-secret")
        } else {
            ("AKIDcvmonlycvmonlycvmonly00000000", "cvm-only-secret")
        };
        let key = if dialect == Dialect::AliyunEcs { "FinanceJoshuaV25" } else { "skey-4e5ty7i8" };
        let wire = env.signed(dialect, scheme, &bind_op(dialect, &[instance], &[key]), id, secret, now);
        let got = env.send(&wire).await;
        assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{case}: {}", got.text());
        let line = env.audit_line(&got.request_id(dialect).unwrap());
        assert_eq!(line.caller.as_deref(), Some(who), "{case}");
        assert_eq!(line.kind.as_deref(), Some("no_permission"), "{case}");
    }
    assert!(env.sim().seen().is_empty(), "nothing refused was forwarded");
    assert_eq!(fake.calls(), 0);

    // What is allowed goes through.
    let wire = env.signed(
        Dialect::TencentCvm,
        Scheme::Tc3,
        &bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]),
        "AKIDcvmonlycvmonlycvmonly00000000",
        "cvm-only-secret",
        now,
    );
    let got = env.send(&wire).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
}

#[tokio::test]
async fn an_unknown_action_in_a_permission_list_stops_the_start() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let config = config_to(
        &fake,
        "\n[[callers]]\nname = \"x\"\nsecret_id = \"AKIDx\"\nsecret_key = \"y\"\nallow_actions = [\"AttachKeyPiar\"]\n",
    );
    let err =
        app::start(config, Arc::new(crossgate::audit::MemorySink::default()), Arc::new(SystemClock)).await.unwrap_err();
    assert!(err.contains("AttachKeyPiar"), "{err}");
}

// === overload ===

#[tokio::test]
async fn past_the_in_flight_cap_a_request_gets_the_throttling_answer_at_once() {
    let fake = FakeCvm::start(Duration::from_millis(800)).await;
    let env = Env::start(config_to(&fake, "\n[inbound]\nmax_in_flight = 1\n")).await;
    let addr = env.started.gateway.addr;
    let slow = v1_bind(&env.host(), FAKE_INSTANCE);
    let first = tokio::spawn(async move { send_to(addr, &slow).await });
    eventually("the first request reaches the upstream", || fake.calls() == 1).await;
    let second: Got = env.send(&tc3_bind(&env, "ins-1e4r6y8i")).await;
    assert_eq!(second.error_code(Dialect::TencentCvm).as_deref(), Some("RequestLimitExceeded"), "{}", second.text());
    let first = first.await.unwrap();
    assert_eq!(first.error_code(Dialect::TencentV2), None, "{}", first.text());
}

#[tokio::test]
async fn past_the_connection_cap_a_connection_gets_one_throttling_answer() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, "\n[inbound]\nmax_connections = 1\n")).await;
    let _held = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await; // let the gateway accept it
    let got = env.send(&tc3_bind(&env, "ins-1e4r6y8i")).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("RequestLimitExceeded"), "{}", got.text());
    assert!(env.sim().seen().is_empty());
}

#[tokio::test]
async fn headers_over_the_limit_are_refused_and_not_forwarded() {
    let fake = FakeCvm::start(Duration::ZERO).await;
    let env = Env::start(config_to(&fake, "\n[inbound]\nmax_header_bytes = 8192\n")).await;
    let mut wire = v1_bind(&env.host(), FAKE_INSTANCE);
    wire.headers.push(("X-Padding", "p".repeat(20_000)));
    let mut stream = TcpStream::connect(env.started.gateway.addr).await.unwrap();
    let _ = stream.write_all(&raw_http(&wire)).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await.expect("closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(fake.calls(), 0);
}
