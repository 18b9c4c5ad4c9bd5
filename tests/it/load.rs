//! The load generator (`crossgate-load`) run as `bench/compare.sh` runs it, for one second against an
//! in-process gateway whose CVM upstream is a static server on a real socket: every request it signs
//! passes the gateway's signature and replay checks, reaches the upstream with a distinct body, is
//! audited, and is counted in the RESULT line; with a wrong secret, every answer is counted under the
//! dialect's own error code.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::harness::Env;

const LOAD: &str = env!("CARGO_BIN_EXE_crossgate-load");
const CVM_SUCCESS: &str = r#"{"Response":{"RequestId":"6a4f3b2e-8c1d-4e5f-9a0b-1c2d3e4f5a6b"}}"#;

/// A static CVM upstream that answers every request with a success and keeps every body it received.
async fn static_upstream(bodies: Arc<Mutex<Vec<Bytes>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let bodies = bodies.clone();
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        bodies.lock().unwrap().push(body);
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
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let upstream = static_upstream(bodies.clone()).await;
    let env = Env::start(config(upstream)).await;
    for dialect in ["tc3", "v2"] {
        bodies.lock().unwrap().clear();
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
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len() as u64, attempted, "{dialect}: {r}");
        assert_eq!(bodies.iter().collect::<HashSet<_>>().len(), bodies.len(), "{dialect}: a body repeats");
        let audited = &env.audit_lines()[audited_before..];
        assert_eq!(audited.len() as u64, attempted, "{dialect}: {r}");
        assert!(audited.iter().all(|e| e.code == "Success"), "{dialect}: {:?}", audited.first());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_counted_under_the_dialects_error_code() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let upstream = static_upstream(bodies.clone()).await;
    let env = Env::start(config(upstream)).await;
    let (out, r) = run_load(&env.host(), "tc3", "not-the-demo-secret").await;
    assert_eq!(out.status.code(), Some(1), "no request succeeded: {r}");
    assert_eq!(r["ok"], 0);
    let refused = r["codes"]["AuthFailure.SignatureFailure"].as_u64().unwrap_or(0);
    assert!(refused > 0 && refused == r["errors"].as_u64().unwrap(), "{r}");
    assert!(r["latency_us"]["p50"].is_null(), "{r}");
    assert!(bodies.lock().unwrap().is_empty(), "nothing reaches the upstream");
}
