//! The `crossgate` command itself, run as a user runs it: `serve` prints `listening on <addr>` once it
//! accepts connections and answers `/healthz`; a bad config stops it with the file and line; `coverage`
//! prints the matrix from the tables.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_crossgate");

fn temp_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("crossgate-cli-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn serve_announces_its_address_and_answers_health_checks() {
    let demo = include_str!("../../src/demo.toml")
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace(
            "store = \"sqlite:audit.db\"",
            &format!("store = \"sqlite:{}\"", std::env::temp_dir().join("crossgate-cli-audit.db").display()),
        )
        .replace("${CROSSGATE_SIM_SECRET}", "cli-test-upstream-secret");
    let config = temp_config(&demo);
    let served = Served::start(&["--config", config.to_str().unwrap()], &std::env::temp_dir());
    let addr = served.url.trim_start_matches("http://").to_owned();
    let answer = exchange(&addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    drop(served);
    let _ = std::fs::remove_file(config);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn a_bad_config_names_the_file_and_line() {
    let config = temp_config("listen = \"127.0.0.1:0\"\nbogus = 1\n");
    let out = Command::new(BIN).args(["serve", "--config"]).arg(&config).output().unwrap();
    let _ = std::fs::remove_file(&config);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:2:", config.display())), "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
}

#[test]
fn coverage_prints_the_matrix_of_the_tables() {
    let out = Command::new(BIN).arg("coverage").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), crossgate::coverage::render_default().unwrap());
}

/// A running `crossgate serve`, killed when dropped.
pub(crate) struct Served {
    pub(crate) child: std::process::Child,
    /// What it printed after `listening on `, e.g. `http://0.0.0.0:41234`.
    pub(crate) url: String,
    /// The audit page's address it printed, if it serves one.
    pub(crate) page: Option<String>,
}

impl Served {
    pub(crate) fn start(args: &[&str], dir: &std::path::Path) -> Served {
        let mut child = Command::new(BIN)
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .env_remove("CROSSGATE_CONFIG")
            .env_remove("CROSSGATE_LISTEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut page = None;
        let url = loop {
            assert!(Instant::now() < deadline, "no `listening on` line in time");
            let line = lines.next().expect("serve printed `listening on` before exiting").unwrap();
            if let Some(rest) = line.strip_prefix("audit trail: ") {
                page = rest.split_whitespace().next().map(str::to_owned);
            }
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.trim().to_owned();
            }
        };
        Served { child, url, page }
    }

    fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn health(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("health").args(args).env_remove("CROSSGATE_CONFIG").env_remove("CROSSGATE_LISTEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crossgate-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

// See: issues/13
#[test]
fn the_demo_listens_on_every_interface_when_asked_and_health_follows_it() {
    let dir = temp_dir();
    let served = Served::start(&["--listen", "0.0.0.0:0", "--admin-listen", "127.0.0.1:0"], &dir);
    assert!(served.url.starts_with("http://0.0.0.0:"), "{}", served.url);
    // The demo serves the audit page, and says where.
    let page = served.page.clone().expect("the demo prints the audit page's address");
    let page = page.strip_prefix("http://").and_then(|p| p.strip_suffix("/audit")).expect("http://ADDR/audit");
    let answer = exchange(page, b"GET /audit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200") && answer.contains("crossgate"), "{answer}");
    let refused = Command::new(BIN)
        .args(["serve", "--admin-listen", "0.0.0.0:0"])
        .env_remove("CROSSGATE_CONFIG")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("token"), "no public admin page without a token");
    let listen = format!("0.0.0.0:{}", served.port());
    let by_flag = health(&["--listen", &listen], &[]);
    assert!(by_flag.status.success(), "{}", String::from_utf8_lossy(&by_flag.stderr));
    let by_env = health(&[], &[("CROSSGATE_LISTEN", &listen)]);
    assert!(by_env.status.success(), "{}", String::from_utf8_lossy(&by_env.stderr));
    drop(served);
    let gone = health(&["--listen", &listen], &[]);
    assert_eq!(gone.status.code(), Some(1), "a stopped gateway is unhealthy");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("/healthz"));
    let _ = std::fs::remove_dir_all(dir);
}

// See: issues/13
#[test]
fn health_follows_the_configured_tls_and_trusts_only_the_configured_certificate() {
    let dir = temp_dir();
    let made = Command::new(BIN).args(["certs", "--out"]).arg(dir.join("certs")).output().unwrap();
    assert!(made.status.success());
    let other = Command::new(BIN).args(["certs", "--out"]).arg(dir.join("other")).output().unwrap();
    assert!(other.status.success());
    let demo = include_str!("../../src/demo.toml")
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace("${CROSSGATE_SIM_SECRET}", "cli-test-upstream-secret");
    let tls = |certs: &str| {
        format!(
            "{demo}\n[tls]\ncert = \"{}\"\nkey = \"{}\"\n",
            dir.join(certs).join("dev.pem").display(),
            dir.join(certs).join("dev-key.pem").display()
        )
    };
    let config = dir.join("tls.toml");
    std::fs::write(&config, tls("certs")).unwrap();
    let config = config.to_str().unwrap();
    let served = Served::start(&["--config", config, "--listen", "127.0.0.1:0"], &dir);
    assert!(served.url.starts_with("https://"), "{}", served.url);
    let listen = format!("127.0.0.1:{}", served.port());
    let ok = health(&["--config", config, "--listen", &listen], &[]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));

    let plain = health(&["--listen", &listen], &[]);
    assert_eq!(plain.status.code(), Some(1), "plain HTTP against a TLS listener is not healthy");

    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, tls("other")).unwrap();
    let pinned = health(&["--config", wrong.to_str().unwrap(), "--listen", &listen], &[]);
    assert_eq!(pinned.status.code(), Some(1), "another certificate than the configured one is refused");
    drop(served);
    let _ = std::fs::remove_dir_all(dir);
}

// See: issues/13
#[test]
fn an_audit_folder_the_gateway_cannot_write_names_the_owner_it_needs() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let data = dir.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let demo = include_str!("../../src/demo.toml")
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("store = \"sqlite:audit.db\"", &format!("store = \"sqlite:{}/audit.db\"", data.display()))
        .replace("${CROSSGATE_SIM_SECRET}", "cli-test-upstream-secret");
    let config = dir.join("c.toml");
    std::fs::write(&config, demo).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Root writes anywhere: run as an unprivileged user then, as a container does.
    let as_root = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0).unwrap();
    let mut cmd = if as_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = cmd.args(["serve", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(stderr.contains(&format!("must be able to write {}", data.display())), "{stderr}");
    assert!(stderr.contains("uid 10001"), "the container's owner is named: {stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

/// A CVM-speaking upstream on a thread: it tells when a call arrived, waits `delay`, then answers success.
fn slow_upstream(delay: Duration) -> (u16, std::sync::mpsc::Receiver<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (arrived, on_arrival) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                let mut got = Vec::new();
                // The head, then as many body bytes as it announces.
                loop {
                    let n = std::io::Read::read(&mut stream, &mut buf).unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if got.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = arrived.send(());
                std::thread::sleep(delay);
                let body = r#"{"Response":{"RequestId":"slow-upstream-1"}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = std::io::Write::write_all(&mut stream, answer.as_bytes());
            });
        }
    });
    (port, on_arrival)
}

/// A config for one CVM upstream on `port`, auditing into `audit`, listening on `listen`.
fn one_upstream_config(dir: &std::path::Path, listen: &str, port: u16, audit: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("c.toml");
    std::fs::write(
        &config,
        format!(
            r#"listen = "{listen}"
[audit]
path = "{}"
[[callers]]
name = "demo"
secret_id = "{}"
secret_key = "{}"
[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "http://127.0.0.1:{port}"
region = "ap-guangzhou"
secret_id = "AKIDslowupstream"
secret_key = "slow-upstream-secret"
[routing]
default = "cvm"
"#,
            audit.display(),
            crossgate::config::DEMO_CALLER_ID,
            crossgate::config::DEMO_CALLER_SECRET
        ),
    )
    .unwrap();
    config
}

/// A TC3 bind signed now as the demo caller for a gateway at `addr`, as raw HTTP/1.1 bytes.
fn tc3_bind_bytes(addr: &str) -> Vec<u8> {
    use crossgate::clock::Clock;
    let maps = crossgate::mapping::Mappings::embedded().unwrap();
    let mut op = crossgate::model::Operation::new(crossgate::model::Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = vec!["ins-1e4r6y8i".into()];
    op.keys = crossgate::model::Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let ctx = crossgate::dialect::UpstreamCtx {
        host: addr.to_owned(),
        region: "ap-guangzhou".into(),
        credential_id: crossgate::config::DEMO_CALLER_ID.into(),
        scheme: crossgate::sign::Scheme::Tc3,
        timestamp: crossgate::clock::SystemClock.now_unix(),
        nonce: String::new(),
    };
    let wire = crossgate::dialect::encode_request(
        crossgate::dialect::Dialect::TencentCvm,
        &op,
        &ctx,
        &crossgate::secret::Secret::new(crossgate::config::DEMO_CALLER_SECRET),
        &maps,
    )
    .unwrap();
    let mut head = format!("POST / HTTP/1.1\r\nhost: {addr}\r\ncontent-length: {}\r\n", wire.body.len());
    for (n, v) in &wire.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&wire.body);
    bytes
}

/// Sends raw bytes and reads the whole answer.
fn exchange(addr: &str, bytes: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut stream, bytes).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    answer
}

// See: issues/8
#[test]
fn sigterm_lets_a_request_in_flight_finish_and_be_audited_before_exit() {
    let dir = temp_dir();
    let (port, on_arrival) = slow_upstream(Duration::from_millis(1500));
    let audit = dir.join("audit.jsonl");
    let config = one_upstream_config(&dir, "127.0.0.1:0", port, &audit);
    let served = Served::start(&["--config", config.to_str().unwrap()], &dir);
    let addr = served.url.trim_start_matches("http://").to_owned();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stream, &tc3_bind_bytes(&addr)).unwrap();

    on_arrival.recv_timeout(Duration::from_secs(10)).expect("the request reached the upstream");
    let pid = served.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("RequestId") && !answer.contains("\"Error\""), "{answer}");

    let mut served = served;
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = served.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the gateway did not exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    let records = crossgate::audit::jsonl::read_all(&audit, 1);
    let phases: Vec<_> = records.iter().map(|r| r.phase).collect();
    assert_eq!(phases, [crossgate::audit::Phase::Admitted, crossgate::audit::Phase::Completed]);
    assert_eq!(records[1].upstream_request_ids, ["slow-upstream-1"]);
    let _ = std::fs::remove_dir_all(dir);
}

// See: issues/8
#[test]
fn after_kill_9_the_audit_holds_what_was_forwarded_and_a_replay_is_refused() {
    let dir = temp_dir();
    let (port, _arrivals) = slow_upstream(Duration::ZERO);
    let audit = dir.join("audit.jsonl");
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let config = one_upstream_config(&dir, &listen, port, &audit);
    let request = tc3_bind_bytes(&listen);

    let mut first = Served::start(&["--config", config.to_str().unwrap()], &dir);
    let answer = exchange(&listen, &request);
    assert!(answer.starts_with("HTTP/1.1 200") && !answer.contains("\"Error\""), "{answer}");
    first.child.kill().unwrap(); // SIGKILL: no drain, no flush
    let _ = first.child.wait();
    drop(first);

    let records = crossgate::audit::jsonl::read_all(&audit, 1);
    assert!(records.iter().any(|r| r.phase == crossgate::audit::Phase::Admitted), "{records:?}");

    let _second = Served::start(&["--config", config.to_str().unwrap()], &dir);
    let replay = exchange(&listen, &request);
    assert!(replay.contains("AuthFailure.SignatureFailure"), "a request signed before the crash is refused: {replay}");
    let _ = std::fs::remove_dir_all(dir);
}
