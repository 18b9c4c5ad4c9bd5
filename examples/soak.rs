//! The soak run behind `tests/soak.sh`: a bounded mixed load of valid, badly signed, replayed and
//! abandoned requests against a running `crossgate serve`, with a fake upstream that records every call
//! it receives; halfway through, the gateway is killed with SIGKILL and started again on the same audit
//! file. At the end it checks that every call the upstream received is in the audit, that no signed
//! request reached the upstream twice, and that the gateway's memory stayed bounded, and prints the
//! figures.
//!
//! `cargo run --release --example soak -- [--seconds 120] [--workers 16] [--binary target/release/crossgate]`

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossgate::audit::Phase;
use crossgate::audit::jsonl;
use crossgate::clock::{Clock, SystemClock};
use crossgate::dialect::{self, Dialect, UpstreamCtx, WireRequest};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Keys, Operation};
use crossgate::secret::Secret;
use crossgate::sign::Scheme;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

const CALLER_ID: &str = "AKIDsoaksoaksoaksoaksoaksoak00000";
const CALLER_SECRET: &str = "soak-caller-secret";
/// The gateway's memory must stay under this (resident set, bytes).
const RSS_BOUND: u64 = 256 * 1024 * 1024;

struct Args {
    seconds: u64,
    workers: usize,
    binary: PathBuf,
}

fn args() -> Args {
    let mut a = Args { seconds: 120, workers: 16, binary: PathBuf::from("target/release/crossgate") };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--seconds" => a.seconds = value.parse().expect("--seconds N"),
            "--workers" => a.workers = value.parse().expect("--workers N"),
            "--binary" => a.binary = PathBuf::from(value),
            other => panic!("unknown flag {other}"),
        }
    }
    a
}

// === the fake upstream ===

/// Every instance id the upstream was asked to bind, with how often.
#[derive(Default)]
struct Received(Mutex<HashMap<String, usize>>);

async fn fake_upstream(received: Arc<Received>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let served = Arc::new(AtomicU64::new(0));
        while let Ok((stream, _)) = listener.accept().await {
            let received = received.clone();
            let served = served.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let received = received.clone();
                    let n = served.fetch_add(1, Ordering::Relaxed);
                    async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                        for id in json["InstanceIds"].as_array().into_iter().flatten() {
                            let id = id.as_str().unwrap_or_default().to_owned();
                            *received.0.lock().unwrap().entry(id).or_default() += 1;
                        }
                        // A little upstream latency, so that some requests are in flight at the kill.
                        tokio::time::sleep(Duration::from_millis(n % 20)).await;
                        let answer = format!(r#"{{"Response":{{"RequestId":"soak-upstream-{n}"}}}}"#);
                        let mut res = http::Response::new(Full::new(Bytes::from(answer)));
                        res.headers_mut().insert("content-type", "application/json".parse().unwrap());
                        Ok::<_, std::convert::Infallible>(res)
                    }
                });
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

// === the gateway process ===

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn write_config(dir: &Path, listen: SocketAddr, upstream: SocketAddr) -> PathBuf {
    let text = format!(
        r#"listen = "{listen}"

[audit]
path = "{audit}"

[[callers]]
name = "soak"
secret_id = "{CALLER_ID}"
secret_key = "{CALLER_SECRET}"

[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "http://{upstream}"
region = "ap-guangzhou"
secret_id = "AKIDsoakupstream"
secret_key = "soak-upstream-secret"

[routing]
default = "cvm"
"#,
        audit = dir.join("audit.jsonl").display()
    );
    let path = dir.join("crossgate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_gateway(binary: &Path, config: &Path, listen: SocketAddr) -> Child {
    let child = Command::new(binary)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "crossgate=error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("crossgate starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(listen).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen in time");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

// === the load ===

#[derive(Default)]
struct Figures {
    valid: AtomicUsize,
    valid_ok: AtomicUsize,
    bad_signature: AtomicUsize,
    bad_signature_refused: AtomicUsize,
    replayed: AtomicUsize,
    replay_refused: AtomicUsize,
    abandoned: AtomicUsize,
    unanswered: AtomicUsize,
}

/// Nonces unique across every worker of the run (a Tencent v1 nonce is a positive integer).
static NEXT_NONCE: AtomicU64 = AtomicU64::new(1);

fn fresh_nonce() -> u64 {
    NEXT_NONCE.fetch_add(1, Ordering::Relaxed)
}

fn random_instance(seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut id = String::from("ins-");
    for _ in 0..8 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        id.push(ALPHABET[(x % ALPHABET.len() as u64) as usize] as char);
    }
    id
}

fn signed_bind(maps: &Mappings, host: &str, instance: &str, secret: &str, tc3: bool, nonce: u64) -> WireRequest {
    let mut op = Operation::new(Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = vec![instance.to_owned()];
    op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let (dialect, scheme) =
        if tc3 { (Dialect::TencentCvm, Scheme::Tc3) } else { (Dialect::TencentV2, Scheme::TencentV1Sha256) };
    let ctx = UpstreamCtx {
        host: host.to_owned(),
        region: "ap-guangzhou".into(),
        credential_id: CALLER_ID.into(),
        scheme,
        timestamp: SystemClock.now_unix(),
        nonce: nonce.to_string(),
    };
    dialect::encode_request(dialect, &op, &ctx, &Secret::new(secret), maps).expect("encodes")
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Sends `wire`; `Some(body)` when answered.
async fn send(client: &HttpClient, addr: SocketAddr, wire: &WireRequest) -> Option<String> {
    let query = if wire.query.is_empty() { String::new() } else { format!("?{}", wire.query) };
    let mut req = http::Request::builder().method(wire.method).uri(format!("http://{addr}{}{query}", wire.path));
    for (n, v) in &wire.headers {
        req = req.header(*n, v.as_str());
    }
    let req = req.header("host", wire.host.as_str()).body(Full::new(Bytes::from(wire.body.clone()))).ok()?;
    let res = tokio::time::timeout(Duration::from_secs(20), client.request(req)).await.ok()?.ok()?;
    let body = res.into_body().collect().await.ok()?.to_bytes();
    Some(String::from_utf8_lossy(&body).into_owned())
}

fn is_error(body: &str) -> bool {
    body.contains("\"Error\"") || body.contains("\"codeDesc\"") && !body.contains("\"code\":0")
}

async fn worker(
    id: u64,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    figures: Arc<Figures>,
    sent_ok: Arc<Mutex<Vec<WireRequest>>>,
) {
    let maps = Mappings::embedded().unwrap();
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let host = addr.to_string();
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let seq = id * 1_000_000_000 + n;
        let tc3 = n % 2 == 0;
        match n % 20 {
            // Badly signed: must be refused, never forwarded.
            0 | 1 => {
                figures.bad_signature.fetch_add(1, Ordering::Relaxed);
                let wire = signed_bind(&maps, &host, &random_instance(seq), "not-the-secret", tc3, fresh_nonce());
                if send(&client, addr, &wire).await.is_some_and(|b| is_error(&b)) {
                    figures.bad_signature_refused.fetch_add(1, Ordering::Relaxed);
                }
            }
            // A replay of something sent before (perhaps before the restart): must be refused.
            2..=4 => {
                let old = sent_ok.lock().unwrap().get((seq as usize) % 997).cloned();
                if let Some(wire) = old {
                    figures.replayed.fetch_add(1, Ordering::Relaxed);
                    if send(&client, addr, &wire).await.is_some_and(|b| is_error(&b)) {
                        figures.replay_refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            // Abandoned: the client gives up after a few milliseconds, then it is replayed later.
            5..=7 => {
                figures.abandoned.fetch_add(1, Ordering::Relaxed);
                let wire = signed_bind(&maps, &host, &random_instance(seq), CALLER_SECRET, tc3, fresh_nonce());
                let _ = tokio::time::timeout(Duration::from_millis(1 + seq % 15), send(&client, addr, &wire)).await;
                remember(&sent_ok, wire);
            }
            _ => {
                figures.valid.fetch_add(1, Ordering::Relaxed);
                let wire = signed_bind(&maps, &host, &random_instance(seq), CALLER_SECRET, tc3, fresh_nonce());
                match send(&client, addr, &wire).await {
                    Some(body) if !is_error(&body) => {
                        figures.valid_ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(_) => {}
                    None => {
                        figures.unanswered.fetch_add(1, Ordering::Relaxed);
                    }
                }
                remember(&sent_ok, wire);
            }
        }
    }
}

fn remember(sent: &Mutex<Vec<WireRequest>>, wire: WireRequest) {
    let mut sent = sent.lock().unwrap();
    if sent.len() < 997 {
        sent.push(wire);
    } else {
        let i = (sent.len() + wire.body.len() + wire.query.len()) % 997;
        sent[i] = wire;
    }
}

#[tokio::main]
async fn main() {
    let args = args();
    // Nonces start where an earlier run's cannot be (the audit of this run starts empty anyway).
    NEXT_NONCE.store(u64::from(std::process::id()) * 1_000_000 + 1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("crossgate-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let received = Arc::new(Received::default());
    let upstream = fake_upstream(received.clone()).await;
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = write_config(&dir, listen, upstream);
    let mut gateway = start_gateway(&args.binary, &config, listen);

    let stop = Arc::new(AtomicBool::new(false));
    let figures = Arc::new(Figures::default());
    let sent_ok = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..args.workers as u64)
        .map(|i| tokio::spawn(worker(i + 1, listen, stop.clone(), figures.clone(), sent_ok.clone())))
        .collect();

    let started = Instant::now();
    let total = Duration::from_secs(args.seconds);
    let mut killed = false;
    let mut max_rss = 0;
    let mut restart_took = Duration::ZERO;
    while started.elapsed() < total {
        tokio::time::sleep(Duration::from_millis(200)).await;
        max_rss = max_rss.max(rss_bytes(gateway.id()));
        if !killed && started.elapsed() >= total / 2 {
            // SIGKILL under load, then the same config and audit file again.
            gateway.kill().expect("kill -9");
            let _ = gateway.wait();
            let at = Instant::now();
            gateway = start_gateway(&args.binary, &config, listen);
            restart_took = at.elapsed();
            killed = true;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    // A graceful stop: SIGTERM, the drain, the last records.
    let _ = Command::new("kill").args(["-TERM", &gateway.id().to_string()]).status();
    let exit = gateway.wait().expect("the gateway exits");

    let records = jsonl::read_all(&dir.join("audit.jsonl"), 5);
    let admitted: std::collections::HashSet<&str> = records
        .iter()
        .filter(|r| r.phase == Phase::Admitted)
        .flat_map(|r| r.instances.iter().map(String::as_str))
        .collect();
    let received = received.0.lock().unwrap();
    let upstream_calls: usize = received.values().sum();
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).map(|(id, n)| format!("{id} x{n}")).collect();
    let unaudited: Vec<_> = received.keys().filter(|id| !admitted.contains(id.as_str())).cloned().collect();
    let completed = records.iter().filter(|r| r.phase == Phase::Completed).count();
    let refused = records.iter().filter(|r| r.phase == Phase::Refused).count();

    let f = &figures;
    let load = |a: &AtomicUsize| a.load(Ordering::Relaxed);
    println!(
        "soak: {} s, {} workers, gateway killed with SIGKILL once at {} s",
        args.seconds,
        args.workers,
        args.seconds / 2
    );
    println!(
        "  valid requests sent      {:>8}  answered with success {:>8}  unanswered {:>6}",
        load(&f.valid),
        load(&f.valid_ok),
        load(&f.unanswered)
    );
    println!("  badly signed             {:>8}  refused {:>8}", load(&f.bad_signature), load(&f.bad_signature_refused));
    println!("  replays                  {:>8}  refused {:>8}", load(&f.replayed), load(&f.replay_refused));
    println!("  abandoned by the client  {:>8}", load(&f.abandoned));
    println!("  upstream calls received  {upstream_calls:>8}  distinct requests {:>8}", received.len());
    println!(
        "  audit records            {:>8}  admitted {:>8}  completed {completed:>8}  refused {refused:>8}",
        records.len(),
        admitted.len()
    );
    println!("  restart after SIGKILL    {:>8} ms", restart_took.as_millis());
    println!("  gateway peak RSS         {:>8} KiB (bound {} KiB)", max_rss / 1024, RSS_BOUND / 1024);
    println!("  exit after SIGTERM       {exit}");

    let mut failed = Vec::new();
    if !twice.is_empty() {
        failed.push(format!("{} requests reached the upstream twice: {:?}", twice.len(), &twice[..twice.len().min(5)]));
    }
    if !unaudited.is_empty() {
        failed.push(format!(
            "{} upstream calls have no admission record: {:?}",
            unaudited.len(),
            &unaudited[..unaudited.len().min(5)]
        ));
    }
    if load(&f.bad_signature_refused) + load(&f.unanswered) < load(&f.bad_signature) / 2 {
        failed.push("badly signed requests were not refused".into());
    }
    if max_rss > RSS_BOUND {
        failed.push(format!("peak RSS {} KiB over the bound", max_rss / 1024));
    }
    if !exit.success() {
        failed.push(format!("the gateway exited with {exit} after SIGTERM"));
    }
    if upstream_calls == 0 {
        failed.push("nothing reached the upstream".into());
    }
    let _ = std::fs::remove_dir_all(&dir);
    if failed.is_empty() {
        println!("soak: passed");
    } else {
        for f in &failed {
            println!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}
