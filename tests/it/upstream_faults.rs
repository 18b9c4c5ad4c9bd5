//! Upstream faults, injected for real: fake upstreams on loopback ports that refuse connections, stall,
//! cut replies off, answer garbage or throttle, and count what they receive. Retries happen only where
//! nothing can apply twice, the circuit breaker fails calls at once while an upstream is failing, the
//! Lighthouse rate is kept on crossgate's side, and key look-ups read every page of the simulator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossgate::clock::SystemClock;
use crossgate::config::Config;
use crossgate::dialect::Dialect;
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Code, Keys, Operation, Page, Provider};
use crossgate::provider::{BreakerState, Ending, Upstream};
use crossgate::sign::Scheme;
use crossgate::sim::state::KeyPair;
use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::harness::{Env, Got, Signer, bind_op, key_op, tc3_request};

// === fake upstreams ===

/// What a fake upstream does with the request it has read.
#[derive(Debug, Clone)]
enum Act {
    /// Answers HTTP 200 `application/json` with this body, keeping the connection.
    Json(String),
    /// The same, after a pause.
    SlowJson(Duration, String),
    /// Writes these exact bytes (a whole HTTP response) and closes.
    Raw(String),
    /// Never answers; holds the connection open.
    Stall,
    /// Writes the head and the start of a longer body, then closes (`reset`: with a TCP reset).
    CutOff { reset: bool },
}

/// A fake upstream on 127.0.0.1: reads each request whole, notes when it came, and acts as `script` says
/// for the n-th request (0-based).
#[derive(Clone)]
struct Fake {
    port: u16,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// Connections accepted.
    connections: Arc<AtomicUsize>,
}

impl Fake {
    async fn start(script: impl Fn(usize) -> Act + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let fake =
            Fake { port: listener.local_addr().unwrap().port(), arrivals: Arc::default(), connections: Arc::default() };
        let (arrivals, script, count) = (fake.arrivals.clone(), Arc::new(script), Arc::new(AtomicUsize::new(0)));
        let connections = fake.connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let (arrivals, script, count) = (arrivals.clone(), script.clone(), count.clone());
                tokio::spawn(serve(stream, move || {
                    arrivals.lock().unwrap().push(Instant::now());
                    script(count.fetch_add(1, Ordering::SeqCst))
                }));
            }
        });
        fake
    }

    /// Answers every request with the same act.
    async fn always(act: Act) -> Fake {
        Fake::start(move |_| act.clone()).await
    }

    fn received(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }
}

async fn serve(mut stream: TcpStream, mut next: impl FnMut() -> Act) {
    let mut buf = Vec::new();
    while read_request(&mut stream, &mut buf).await {
        let act = match next() {
            Act::SlowJson(pause, body) => {
                tokio::time::sleep(pause).await;
                Act::Json(body)
            }
            act => act,
        };
        match act {
            Act::Json(body) | Act::SlowJson(_, body) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                if stream.write_all((head + &body).as_bytes()).await.is_err() {
                    return;
                }
            }
            Act::Raw(reply) => {
                let _ = stream.write_all(reply.as_bytes()).await;
                let _ = stream.shutdown().await;
                return;
            }
            Act::Stall => {
                tokio::time::sleep(Duration::from_secs(600)).await;
                return;
            }
            Act::CutOff { reset } => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 400\r\n\r\n";
                let _ = stream.write_all(format!("{head}{{\"Response\": {{\"Total").as_bytes()).await;
                let _ = stream.flush().await;
                // Let the head and the first bytes be read before the connection goes.
                tokio::time::sleep(Duration::from_millis(100)).await;
                if reset {
                    let _ = stream.set_zero_linger();
                } else {
                    let _ = stream.shutdown().await;
                }
                return;
            }
        }
    }
}

/// Reads one HTTP/1.1 request (head and `content-length` body) off `stream`; false at the end.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                buf.drain(..end + 4 + length);
                return true;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A loopback port where nothing listens.
fn refusing_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A whole HTTP/1.1 response that closes the connection.
fn http(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A Tencent success with no fields (a bind's answer).
fn tencent_ok() -> Act {
    Act::Json(r#"{"Response": {"RequestId": "fake-ok"}}"#.to_owned())
}

/// A Tencent error envelope.
fn tencent_error(code: &str) -> Act {
    Act::Json(format!(
        r#"{{"Response": {{"Error": {{"Code": "{code}", "Message": "from the fake"}}, "RequestId": "fake-err"}}}}"#
    ))
}

// === configs ===

/// `[upstreams.NAME]` at `port` with `settings`, and the rules that route `*<tag>1` instances (and, with
/// `reads`, every CVM-dialect request) to it.
fn fake_upstream(name: &str, provider: &str, tag: &str, port: u16, settings: &str, reads: bool) -> (String, String) {
    let mut rules = format!("\n[[routing.rules]]\ninstance = \"*{tag}1\"\nupstream = \"{name}\"\n");
    if reads {
        rules.push_str(&format!("\n[[routing.rules]]\ndialect = \"tencent_cvm\"\nupstream = \"{name}\"\n"));
    }
    let extra = format!(
        r#"
[upstreams.{name}]
provider = "{provider}"
endpoint = "http://127.0.0.1:{port}"
region = "ap-guangzhou"
secret_id = "AKID{name}upstream"
secret_key = "{name}-upstream-secret"
{settings}
"#
    );
    (rules, extra)
}

/// A CVM upstream `fake` at `port` for `*fake1` instances and CVM-dialect look-ups.
async fn cvm_env(port: u16, settings: &str) -> Env {
    let (rules, extra) = fake_upstream("fake", "tencent-cvm", "fake", port, settings, true);
    // Alibaba callers name the machine by its ECS id; it is renamed for CVM.
    let extra = format!("{extra}\n[[instances]]\ntencent-cvm = \"ins-aaafake1\"\naliyun-ecs = \"i-aaafake1\"\n");
    Env::with(&rules, &extra).await
}

/// The upstream `fake` of a config of its own, ready to call directly.
fn lone_upstream(provider: &str, port: u16, settings: &str) -> Upstream {
    let (_, extra) = fake_upstream("fake", provider, "fake", port, settings, false);
    let text = format!("{extra}\n[routing]\ndefault = \"fake\"\n");
    let config = Config::parse("lone.toml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Upstream::new(config.upstreams["fake"].clone(), None).unwrap()
}

fn describe_keys() -> Operation {
    let mut op = Operation::new(Action::DescribeKeys);
    op.region = Some("ap-guangzhou".into());
    op
}

fn cvm_bind() -> Operation {
    bind_op(Dialect::TencentCvm, &["ins-aaafake1"], &["skey-4e5ty7i8"])
}

fn endings(attempts: &[crossgate::provider::Attempt]) -> Vec<Ending> {
    attempts.iter().map(|a| a.ending).collect()
}

/// The answer is the caller's error `code`, whose message says `says`; the audit line has `kind`.
fn assert_error(env: &Env, dialect: Dialect, got: &Got, code: &str, kind: &str, says: &str) {
    assert_eq!(got.error_code(dialect).as_deref(), Some(code), "{dialect}: {}", got.text());
    let message = got.error_message(dialect);
    assert!(message.contains(says), "{dialect}: `{says}` not in: {message}");
    let line = env.audit_line(&got.request_id(dialect).unwrap());
    assert_eq!(line.kind.as_deref(), Some(kind), "{dialect}");
}

// === refused connections and the breaker ===

/// Nothing was sent, so even a bind is tried again; a look-up too. Every attempt is recorded.
#[tokio::test]
async fn refused_connections_are_tried_again_for_reads_and_writes() {
    let maps = Mappings::embedded().unwrap();
    let upstream = lone_upstream("tencent-cvm", refusing_port(), "retries = 2\nbreaker_failures = 100");
    for op in [describe_keys(), cvm_bind()] {
        let call = upstream.call_recorded(&op, &maps, &SystemClock, None).await;
        assert_eq!(call.result.unwrap_err().code(), Code::UpstreamUnavailable, "{:?}", op.action);
        assert_eq!(endings(&call.attempts), [Ending::NotConnected; 3], "{:?}", op.action);
        assert_eq!(call.attempts.iter().map(|a| a.number).collect::<Vec<_>>(), [1, 2, 3]);
    }
}

/// After `breaker_failures` failures the breaker opens: calls fail at once without touching a socket
/// (a listener put on the port meanwhile sees no connection), in the caller's dialect; after the
/// cool-down one probe goes through, and its success closes the breaker.
#[tokio::test]
async fn the_breaker_opens_fails_fast_then_lets_a_probe_through() {
    let maps = Mappings::embedded().unwrap();
    let port = refusing_port();
    let settings = "retries = 1\nbreaker_failures = 3\nbreaker_cool_down_ms = 600";
    let upstream = lone_upstream("tencent-cvm", port, settings);
    let first = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    assert_eq!(first.attempts.len(), 2);
    assert_eq!(upstream.breaker_state(), BreakerState::Closed, "2 failures of 3");
    let second = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    assert_eq!(endings(&second.attempts), [Ending::NotConnected, Ending::BreakerOpen]);
    assert_eq!(upstream.breaker_state(), BreakerState::Open);

    // The port now has a listener that answers; while the breaker is open, nothing reaches it.
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("the port is free again");
    let fast = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    let fault = fast.result.unwrap_err();
    assert_eq!(fault.code(), Code::UpstreamUnavailable);
    assert!(fault.message().contains("is failing (3 failures in a row)"), "{fault}");
    assert_eq!(endings(&fast.attempts), [Ending::BreakerOpen]);
    let touched = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
    assert!(touched.is_err(), "an open breaker touched the upstream's socket");

    let arrivals = Arc::new(Mutex::new(0usize));
    let seen = arrivals.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            *seen.lock().unwrap() += 1;
            tokio::spawn(serve(stream, || {
                Act::Json(r#"{"Response": {"TotalCount": 0, "KeyPairSet": [], "RequestId": "probe"}}"#.into())
            }));
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(upstream.breaker_state(), BreakerState::HalfOpen);
    let probe = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    assert_eq!(probe.result.expect("the probe succeeds").request_id, "probe");
    assert_eq!(upstream.breaker_state(), BreakerState::Closed);
    assert_eq!(*arrivals.lock().unwrap(), 1);
}

/// Through the gateway: the breaker's refusal is the caller's own unavailable error.
#[tokio::test]
async fn an_open_breaker_answers_in_the_callers_dialect() {
    let env = cvm_env(refusing_port(), "retries = 0\nbreaker_failures = 1\nbreaker_cool_down_ms = 60000").await;
    // An unbind first: the bind below must not repeat its TC3 signature (that would be a replay).
    let unbind = key_op(Action::DisassociateKeys, Dialect::TencentCvm, &["ins-aaafake1"], &["skey-4e5ty7i8"]);
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &unbind).await;
    assert_error(&env, Dialect::TencentCvm, &got, "ServiceUnavailable", "upstream_unavailable", "could not be reached");
    for (dialect, scheme, instance, key, code) in [
        (Dialect::TencentCvm, Scheme::Tc3, "ins-aaafake1", "skey-4e5ty7i8", "ServiceUnavailable"),
        (Dialect::AliyunEcs, Scheme::AliyunRpc, "i-aaafake1", "FinanceJoshuaV25", "ServiceUnavailable"),
        (Dialect::TencentV2, Scheme::TencentV1Sha256, "ins-aaafake1", "skey-4e5ty7i8", "InternalError"),
    ] {
        let got = env.call(dialect, scheme, &bind_op(dialect, &[instance], &[key])).await;
        assert_error(&env, dialect, &got, code, "upstream_unavailable", "is failing");
    }
}

// === connections in use ===

/// Past `max_connections` in use, calls wait their turn rather than open more connections; all of them
/// are answered, over the few connections the bound allows.
#[tokio::test]
async fn calls_past_the_connection_bound_wait_their_turn() {
    let maps = Mappings::embedded().unwrap();
    let fake = Fake::always(Act::SlowJson(
        Duration::from_millis(50),
        r#"{"Response": {"KeyPairSet": [], "TotalCount": 0, "RequestId": "slow"}}"#.to_owned(),
    ))
    .await;
    let upstream = lone_upstream("tencent-cvm", fake.port, "max_connections = 2\nretries = 0");
    let op = describe_keys();
    let calls = join_all((0..6).map(|_| upstream.call_recorded(&op, &maps, &SystemClock, None))).await;
    for call in &calls {
        assert!(call.result.is_ok(), "{:?}", call.result);
    }
    assert_eq!(fake.received(), 6);
    assert_eq!(fake.connections.load(Ordering::SeqCst), 2, "six calls, two connections at once, both kept");
}

/// A call that finds every connection in use past its connect timeout fails before anything is sent,
/// saying so.
#[tokio::test]
async fn a_call_that_waits_past_its_connect_timeout_for_a_connection_fails_unsent() {
    let maps = Mappings::embedded().unwrap();
    let fake = Fake::always(Act::Stall).await;
    let upstream = lone_upstream(
        "tencent-cvm",
        fake.port,
        "max_connections = 1\nconnect_timeout_ms = 200\nread_timeout_ms = 2000\nretries = 0\nbreaker_failures = 100",
    );
    let bind = cvm_bind();
    let stalled = upstream.call_recorded(&bind, &maps, &SystemClock, None);
    let waiting = async {
        // The first call takes the only connection first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        let call = upstream.call_recorded(&bind, &maps, &SystemClock, None).await;
        (call, started.elapsed())
    };
    let (_, (call, waited)) = tokio::join!(stalled, waiting);
    let fault = call.result.unwrap_err();
    // Nothing was sent: the upstream is as unavailable as one that refuses connections.
    assert_eq!(fault.code(), Code::UpstreamUnavailable);
    assert!(fault.message().contains("no connection free within 200 ms"), "{}", fault.message());
    assert!(waited < Duration::from_millis(1500), "ended by the connect timeout, not the read timeout: {waited:?}");
    assert_eq!(fake.received(), 1, "the waiting bind was never sent");
}

// === timeouts ===

/// An upstream that reads the request and never answers: the read timeout ends the wait, well before the
/// call's own time limit; the caller gets its dialect's timeout error.
#[tokio::test]
async fn a_stalled_upstream_ends_on_the_read_timeout() {
    let fake = Fake::always(Act::Stall).await;
    let env = cvm_env(fake.port, "timeout_ms = 30000\nread_timeout_ms = 200\nretries = 0").await;
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &cvm_bind()).await;
    assert_error(&env, Dialect::TencentCvm, &got, "InternalError", "upstream_timeout", "no reply within 200 ms");
    let ecs = bind_op(Dialect::AliyunEcs, &["i-aaafake1"], &["FinanceJoshuaV25"]);
    let got = env.call(Dialect::AliyunEcs, Scheme::Acs3, &ecs).await;
    assert_eq!(got.status, 503, "{}", got.text());
    assert_error(&env, Dialect::AliyunEcs, &got, "ServiceUnavailable", "upstream_timeout", "no reply within 200 ms");
}

/// A bind whose bytes went out is never sent twice, however many retries are allowed; a look-up that
/// stalls is tried again.
#[tokio::test]
async fn a_mutation_that_times_out_after_sending_is_not_retried() {
    let maps = Mappings::embedded().unwrap();
    let fake = Fake::always(Act::Stall).await;
    let upstream =
        lone_upstream("tencent-cvm", fake.port, "read_timeout_ms = 150\nretries = 3\nbreaker_failures = 100");
    let call = upstream.call_recorded(&cvm_bind(), &maps, &SystemClock, None).await;
    assert_eq!(call.result.unwrap_err().code(), Code::UpstreamTimeout);
    assert_eq!(endings(&call.attempts), [Ending::Lost]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.received(), 1, "the bind reached the upstream once");

    let call = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    assert_eq!(call.result.unwrap_err().code(), Code::UpstreamTimeout);
    assert_eq!(endings(&call.attempts), [Ending::Lost; 4]);
    assert_eq!(fake.received(), 1 + 4);
}

/// Retries never run past the call's time limit.
#[tokio::test]
async fn retries_stop_at_the_calls_time_limit() {
    let maps = Mappings::embedded().unwrap();
    let fake = Fake::always(Act::Stall).await;
    let settings = "timeout_ms = 500\nread_timeout_ms = 300\nretries = 10\nbreaker_failures = 100";
    let upstream = lone_upstream("tencent-cvm", fake.port, settings);
    let started = Instant::now();
    let call = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, None).await;
    let elapsed = started.elapsed();
    assert_eq!(call.result.unwrap_err().code(), Code::UpstreamTimeout);
    assert!(call.attempts.len() == 2, "{:?}", call.attempts);
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    // A deadline of the caller's own, shorter than the upstream's, is kept too.
    let call = upstream.call_recorded(&describe_keys(), &maps, &SystemClock, Some(Instant::now())).await;
    assert_eq!(call.attempts.len(), 1);
}

// === broken and garbage replies ===

/// A reply cut off mid-body (closed, or reset) is the caller's internal error naming the status.
#[tokio::test]
async fn a_reply_cut_off_mid_body_is_an_internal_error_naming_the_status() {
    for reset in [false, true] {
        let fake = Fake::always(Act::CutOff { reset }).await;
        let env = cvm_env(fake.port, "retries = 0").await;
        let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &cvm_bind()).await;
        assert_error(&env, Dialect::TencentCvm, &got, "InternalError", "internal", "answered HTTP 200, then");
        assert_eq!(fake.received(), 1, "reset: {reset}");
    }
}

/// Replies that are not the upstream's protocol are the caller's internal error naming the status, in
/// every caller dialect, and the audit line says so.
#[tokio::test]
async fn garbage_replies_are_internal_errors_naming_the_status() {
    let replies = [
        (http("502 Bad Gateway", "text/html", "<h1>Bad Gateway</h1>"), "HTTP 502 with the content type `text/html`"),
        (http("200 OK", "application/json", r#"{"Response": {"R"#), "HTTP 200 with a reply crossgate cannot read"),
        (http("200 OK", "application/json", ""), "HTTP 200 with an empty body"),
        (http("200 OK", "text/plain", r#"{"Response": {"RequestId": "r"}}"#), "content type `text/plain`"),
    ];
    for (reply, says) in replies {
        let fake = Fake::always(Act::Raw(reply)).await;
        let env = cvm_env(fake.port, "retries = 0").await;
        for (dialect, scheme, instance, key, status, code) in [
            (Dialect::TencentCvm, Scheme::Tc3, "ins-aaafake1", "skey-4e5ty7i8", 200, "InternalError"),
            (Dialect::TencentV2, Scheme::TencentV1Sha1, "ins-aaafake1", "skey-4e5ty7i8", 200, "InternalServerError"),
            (Dialect::AliyunEcs, Scheme::AliyunRpc, "i-aaafake1", "FinanceJoshuaV25", 500, "InternalError"),
        ] {
            let got = env.call(dialect, scheme, &bind_op(dialect, &[instance], &[key])).await;
            assert_eq!(got.status, status, "{dialect} <- {says}: {}", got.text());
            assert_error(&env, dialect, &got, code, "internal", says);
            assert!(got.error_message(dialect).contains("`fake`"), "{dialect}: names the upstream");
        }
    }
}

// === throttling answers ===

/// An upstream that keeps answering its throttling code is tried again (even for a bind: nothing was
/// applied), then the caller gets its own throttling error.
#[tokio::test]
async fn throttling_answers_are_retried_then_reach_the_caller_as_its_own_throttling_error() {
    let fake = Fake::always(tencent_error("RequestLimitExceeded")).await;
    let env = cvm_env(fake.port, "retries = 2").await;
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &cvm_bind()).await;
    assert_error(&env, Dialect::TencentCvm, &got, "RequestLimitExceeded", "throttled", "from the fake");
    assert_eq!(fake.received(), 3);
    let ecs = bind_op(Dialect::AliyunEcs, &["i-aaafake1"], &["FinanceJoshuaV25"]);
    let got = env.call(Dialect::AliyunEcs, Scheme::AliyunRpc, &ecs).await;
    assert_eq!(got.status, 400, "{}", got.text());
    assert_error(&env, Dialect::AliyunEcs, &got, "Throttling.User", "throttled", "");
    assert_eq!(fake.received(), 6);
}

/// Throttled twice, then served: the caller sees the success.
#[tokio::test]
async fn a_throttled_bind_succeeds_on_a_later_attempt() {
    let fake = Fake::start(|n| if n < 2 { tencent_error("RequestLimitExceeded") } else { tencent_ok() }).await;
    let env = cvm_env(fake.port, "retries = 2").await;
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &cvm_bind()).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    assert_eq!(fake.received(), 3);
}

/// Another error answer is final: a bind the upstream refused is not sent again.
#[tokio::test]
async fn a_definite_refusal_is_not_retried() {
    let fake = Fake::always(tencent_error("InvalidInstanceId.NotFound")).await;
    let env = cvm_env(fake.port, "retries = 2").await;
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &cvm_bind()).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InvalidInstanceId.NotFound"));
    assert_eq!(fake.received(), 1);
}

// === the Lighthouse quota ===

/// A Lighthouse upstream `fakelh` at `port` for `lhins-qta*` instances.
async fn lighthouse_env(port: u16, settings: &str) -> Env {
    let (rules, extra) = fake_upstream("fakelh", "tencent-lighthouse", "x", port, settings, false);
    let rules = rules.replace("instance = \"*x1\"", "instance = \"lhins-qta*\"");
    Env::with(&rules, &extra).await
}

async fn many_binds(env: &Env, n: usize) -> Vec<Got> {
    let ops: Vec<Operation> = (0..n)
        .map(|i| {
            let instance = format!("lhins-qta{i:05}");
            bind_op(Dialect::TencentLighthouse, &[instance.as_str()], &["lhkp-f7rjie1q"])
        })
        .collect();
    join_all(ops.iter().map(|op| env.call(Dialect::TencentLighthouse, Scheme::Tc3, op))).await
}

/// No one-second window at the upstream holds more than its rate (10 binds a second; a little slack for
/// loopback scheduling): the 11th arrival comes at least 0.9 s after the 1st.
fn assert_within_rate(fake: &Fake) {
    let mut arrivals = fake.arrivals.lock().unwrap().clone();
    arrivals.sort();
    for w in arrivals.windows(11) {
        let span = w[10] - w[0];
        assert!(span >= Duration::from_millis(900), "11 binds within {span:?}: {arrivals:?}");
    }
}

/// 15 binds at once: all are queued and served, never faster than 10 a second.
#[tokio::test]
async fn lighthouse_binds_are_queued_to_its_rate() {
    let fake = Fake::always(tencent_ok()).await;
    let env = lighthouse_env(fake.port, "").await;
    let answers = many_binds(&env, 15).await;
    for got in &answers {
        assert_eq!(got.error_code(Dialect::TencentLighthouse), None, "{}", got.text());
    }
    assert_eq!(fake.received(), 15);
    assert_within_rate(&fake);
}

/// With a short queue the excess is refused at once, as the caller's own throttling error; the upstream
/// sees only what was let through, within its rate.
#[tokio::test]
async fn lighthouse_binds_past_the_queue_are_throttled_in_the_callers_dialect() {
    let fake = Fake::always(tencent_ok()).await;
    let env = lighthouse_env(fake.port, "queue = 2").await;
    let answers = many_binds(&env, 15).await;
    let refused: Vec<&Got> = answers.iter().filter(|g| g.error_code(Dialect::TencentLighthouse).is_some()).collect();
    assert!(!refused.is_empty(), "15 binds at once with room for 2 waiting");
    for got in &refused {
        assert_error(&env, Dialect::TencentLighthouse, got, "RequestLimitExceeded", "throttled", "already waiting");
    }
    assert_eq!(fake.received(), 15 - refused.len());
    assert_within_rate(&fake);
}

// === look-ups read every page ===

/// More CVM keys than one page (100) match `deploy`; the exact one comes last, on page 2.
fn seed_many_keys(env: &Env) {
    env.sim().with_state(|s| {
        for i in 0..130 {
            s.add_key_pair(Provider::TencentCvm, KeyPair::tencent(format!("skey-dpl{i:05}"), format!("deploy-{i:03}")))
                .unwrap();
        }
        s.add_key_pair(Provider::TencentCvm, KeyPair::tencent("skey-zzzzzzzz", "deploy")).unwrap();
        for i in 0..60 {
            s.add_key_pair(Provider::AliyunEcs, KeyPair::ecs(format!("Deploy{i:03}"))).unwrap();
        }
    });
}

fn sim_key_lookups(env: &Env) -> usize {
    env.sim().seen().iter().filter(|e| e.action.as_deref() == Some("DescribeKeyPairs")).count()
}

/// An Alibaba caller binds a key by a name only CVM knows, on page 2 of CVM's answer: found and bound.
#[tokio::test]
async fn a_key_name_on_the_second_page_is_found() {
    let env = Env::matrix().await;
    seed_many_keys(&env);
    let before = sim_key_lookups(&env);
    let op = bind_op(Dialect::AliyunEcs, &["i-aaaacvm1"], &["deploy"]);
    let got = env.call(Dialect::AliyunEcs, Scheme::AliyunRpc, &op).await;
    assert_eq!(got.error_code(Dialect::AliyunEcs), None, "{}", got.text());
    assert_eq!(sim_key_lookups(&env) - before, 2, "two pages read");
    let line = env.audit_line(&got.request_id(Dialect::AliyunEcs).unwrap());
    let actions: Vec<&str> = line.upstream_calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        ["describe_keys", "describe_keys", "associate_keys"],
        "each page and the bind are in the audit"
    );
    let keys = env.sim().with_state(|s| s.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().keys.clone());
    assert_eq!(keys, ["skey-zzzzzzzz"]);
}

/// The simulator pages as the clouds do, and the gateway answers the page a caller asks for out of every
/// page it read: TotalCount counts every match.
#[tokio::test]
async fn callers_get_the_page_they_ask_for_with_every_match_counted() {
    let env = Env::matrix().await;
    seed_many_keys(&env);

    let mut op = describe_keys();
    op.keys = Keys::Names(vec!["deploy".into()]);
    op.page = Some(Page { offset: 100, limit: 100 });
    let got = env.call(Dialect::TencentCvm, Scheme::Tc3, &op).await;
    let body = got.json();
    assert_eq!(body["Response"]["TotalCount"], 131, "{body}");
    let set = body["Response"]["KeyPairSet"].as_array().unwrap();
    assert_eq!(set.len(), 31);
    assert_eq!(set.last().unwrap()["KeyId"], "skey-zzzzzzzz");

    // A caller that names no page (the codec always sends a Limit, so this one is made by hand).
    let filter = serde_json::json!({"Filters": [{"Name": "key-name", "Values": ["deploy"]}]});
    let wire = tc3_request(&env.host(), "cvm", "DescribeKeyPairs", "2017-03-12", &filter, &Signer::demo());
    let got = env.send(&wire).await;
    let body = got.json();
    assert_eq!(body["Response"]["TotalCount"], 131);
    assert_eq!(body["Response"]["KeyPairSet"].as_array().unwrap().len(), 20, "Tencent's default page");

    let mut ecs = Operation::new(Action::DescribeKeys);
    ecs.region = Some("cn-hangzhou".into());
    ecs.keys = Keys::Names(vec!["Deploy*".into()]);
    ecs.page = Some(Page { offset: 50, limit: 50 });
    let before = sim_key_lookups(&env);
    let got = env.call(Dialect::AliyunEcs, Scheme::Acs3, &ecs).await;
    let body = got.json();
    assert_eq!((&body["TotalCount"], &body["PageNumber"], &body["PageSize"]), (&60.into(), &2.into(), &50.into()));
    let names: Vec<&str> =
        body["KeyPairs"]["KeyPair"].as_array().unwrap().iter().map(|k| k["KeyPairName"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 10, "{body}");
    assert_eq!(names[0], "Deploy050");
    assert_eq!(sim_key_lookups(&env) - before, 2, "the gateway read ECS's two pages of 50");
}
