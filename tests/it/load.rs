//! The load generator (`crossgate-load`) run as `bench/compare.sh` runs it, for one second against an
//! in-process gateway whose CVM upstream is a static server on a real socket: every request it signs
//! passes the gateway's signature and replay checks, reaches the upstream with a distinct body, is
//! audited, and is counted in the RESULT line; with a wrong secret, every answer is counted under the
//! dialect's own error code. And `examples/passthrough.rs --protocol`, compare.sh's `protocol` run, under
//! the same load: it verifies the caller, re-signs for the upstream with the upstream's key (checked at
//! the upstream) and answers in the caller's dialect.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{self, Dialect, RawRequest};
use crossgate::secret::Secret;
use crossgate::sign;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::harness::Env;

const LOAD: &str = env!("CARGO_BIN_EXE_crossgate-load");
const CVM_SUCCESS: &str = r#"{"Response":{"RequestId":"6a4f3b2e-8c1d-4e5f-9a0b-1c2d3e4f5a6b"}}"#;

/// A request as the static upstream received it.
struct Got {
    parts: http::request::Parts,
    body: Bytes,
}

type Received = Arc<Mutex<Vec<Got>>>;

fn bodies(got: &Received) -> Vec<Bytes> {
    got.lock().unwrap().iter().map(|g| g.body.clone()).collect()
}

/// A static CVM upstream that answers every request with a success and keeps every request it received.
async fn static_upstream(got: Received) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let got = got.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let got = got.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        got.lock().unwrap().push(Got { parts, body });
                        http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(CVM_SUCCESS.as_bytes())))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// The demo caller and one CVM upstream at `upstream`.
fn config(upstream: SocketAddr) -> Config {
    let text = format!(
        r#"
listen = "127.0.0.1:0"

[[callers]]
name = "load"
secret_id = "{DEMO_CALLER_ID}"
secret_key = "{DEMO_CALLER_SECRET}"

[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "http://{upstream}"
region = "ap-guangzhou"
secret_id = "AKIDloadtestupstream"
secret_key = "load-test-upstream-secret"

[routing]
default = "cvm"
"#
    );
    Config::parse("load.toml", &text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs the load generator for one second against the gateway at `host`.
async fn run_load(host: &str, dialect: &str, secret: &str) -> (Output, serde_json::Value) {
    let out = tokio::process::Command::new(LOAD)
        .args(["--target", &format!("http://{host}"), "--dialect", dialect])
        .args(["--connections", "4", "--duration", "1", "--warmup", "0", "--threads", "1"])
        .args(["--secret-id", DEMO_CALLER_ID, "--label", "it"])
        .env("CROSSGATE_LOAD_SECRET_KEY", secret)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = stdout.lines().last().unwrap_or_default();
    let result = last
        .strip_prefix("RESULT ")
        .unwrap_or_else(|| panic!("no RESULT last: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    let result = serde_json::from_str(result).unwrap();
    (out, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_it_signs_is_verified_forwarded_once_and_audited() {
    let got = Received::default();
    let upstream = static_upstream(got.clone()).await;
    let env = Env::start(config(upstream)).await;
    for dialect in ["tc3", "v2"] {
        got.lock().unwrap().clear();
        let audited_before = env.audit_lines().len();
        let (out, r) = run_load(&env.host(), dialect, DEMO_CALLER_SECRET).await;
        assert!(out.status.success(), "{dialect}: {r}");
        assert_eq!(r["label"], "it");
        assert_eq!(r["errors"], 0, "{dialect}: {r}");
        let ok = r["ok"].as_u64().unwrap();
        let attempted = r["attempted"].as_u64().unwrap();
        assert!(ok > 0 && ok <= attempted, "{dialect}: {r}");
        assert!(r["latency_us"]["p50"].as_u64().unwrap() <= r["latency_us"]["p99"].as_u64().unwrap(), "{r}");
        // Every request sent reached the upstream once, each with its own body, and was audited.
        let bodies = bodies(&got);
        assert_eq!(bodies.len() as u64, attempted, "{dialect}: {r}");
        assert_eq!(bodies.iter().collect::<HashSet<_>>().len(), bodies.len(), "{dialect}: a body repeats");
        let audited = &env.audit_lines()[audited_before..];
        assert_eq!(audited.len() as u64, attempted, "{dialect}: {r}");
        assert!(audited.iter().all(|e| e.code == "Success"), "{dialect}: {:?}", audited.first());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_counted_under_the_dialects_error_code() {
    let got = Received::default();
    let upstream = static_upstream(got.clone()).await;
    let env = Env::start(config(upstream)).await;
    let (out, r) = run_load(&env.host(), "tc3", "not-the-demo-secret").await;
    assert_eq!(out.status.code(), Some(1), "no request succeeded: {r}");
    assert_eq!(r["ok"], 0);
    let refused = r["codes"]["AuthFailure.SignatureFailure"].as_u64().unwrap_or(0);
    assert!(refused > 0 && refused == r["errors"].as_u64().unwrap(), "{r}");
    assert!(r["latency_us"]["p50"].is_null(), "{r}");
    assert!(got.lock().unwrap().is_empty(), "nothing reaches the upstream");
}

/// The pass-through example, beside this test binary (`target/<profile>/examples/`). `cargo test` builds
/// examples; a run of this test target alone (`cargo test --test it`) does not, so it is built here then.
fn passthrough_example() -> PathBuf {
    let deps = std::env::current_exe().unwrap().parent().unwrap().to_path_buf();
    let profile_dir = deps.parent().unwrap();
    let example = profile_dir.join("examples").join(format!("passthrough{}", std::env::consts::EXE_SUFFIX));
    if !example.exists() {
        let mut build = std::process::Command::new(env!("CARGO"));
        build.args(["build", "--quiet", "--example", "passthrough"]).current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|name| name == "release") {
            build.arg("--release");
        }
        let status = build.status().unwrap();
        assert!(status.success(), "cargo build --example passthrough: {status}");
    }
    example
}

const FLOOR_UPSTREAM_SECRET: &str = "protocol-floor-upstream-secret";

/// Whether the upstream request `got` is a TC3 request signed with the floor's upstream key.
fn signed_for_the_upstream(got: &Got) -> bool {
    let raw = RawRequest {
        method: got.parts.method.as_str(),
        path: got.parts.uri.path(),
        query: got.parts.uri.query().unwrap_or(""),
        headers: &got.parts.headers,
        body: &got.body,
    };
    dialect::auth_material(Dialect::TencentCvm, &raw)
        .is_ok_and(|material| sign::verify(&material, &Secret::new(FLOOR_UPSTREAM_SECRET)).is_ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_floor_verifies_callers_and_re_signs_for_the_upstream() {
    let got = Received::default();
    let upstream = static_upstream(got.clone()).await;
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let example = passthrough_example();
    let mut floor = tokio::process::Command::new(&example)
        .args([listen.to_string(), upstream.to_string(), "1".into(), "--protocol".into()])
        .env("CROSSGATE_BENCH_CALLER_SECRET", DEMO_CALLER_SECRET)
        .env("CROSSGATE_BENCH_UPSTREAM_SECRET", FLOOR_UPSTREAM_SECRET)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", example.display()));
    let mut tries = 0;
    while tokio::net::TcpStream::connect(listen).await.is_err() {
        tries += 1;
        assert!(tries < 200, "the protocol floor never listened on {listen}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for dialect in ["tc3", "v2"] {
        got.lock().unwrap().clear();
        let (out, r) = run_load(&listen.to_string(), dialect, DEMO_CALLER_SECRET).await;
        assert!(out.status.success(), "{dialect}: {r}");
        assert_eq!(r["errors"], 0, "{dialect}: {r}");
        let attempted = r["attempted"].as_u64().unwrap();
        let got = got.lock().unwrap();
        assert_eq!(got.len() as u64, attempted, "{dialect}: every request forwarded once: {r}");
        assert!(got.iter().all(signed_for_the_upstream), "{dialect}: a request not signed with the upstream's key");
    }
    got.lock().unwrap().clear();
    let (_, r) = run_load(&listen.to_string(), "tc3", "not-the-demo-secret").await;
    assert_eq!(r["ok"], 0, "{r}");
    assert_eq!(r["status"]["400"], r["errors"], "every wrongly signed request refused: {r}");
    assert!(got.lock().unwrap().is_empty(), "nothing wrongly signed reaches the upstream");
    floor.kill().await.unwrap();

    let out = tokio::process::Command::new(&example)
        .args([listen.to_string(), upstream.to_string(), "1".into(), "--protocol".into()])
        .env_remove("CROSSGATE_BENCH_CALLER_SECRET")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--protocol needs CROSSGATE_BENCH_CALLER_SECRET"), "{out:?}");
}
