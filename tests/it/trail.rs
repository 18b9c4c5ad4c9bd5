//! The audit trail operators query and prove: the SQLite store behind the real gateway (every phase
//! and field, a restart that keeps the chain and the spent replay keys, `kill -9` of a real
//! `crossgate serve` under load), a store that cannot be written (a real full file system), and the
//! `crossgate audit` commands as users run them: `verify` catching an edited, a removed and a reordered
//! record in SQLite and in JSON lines, `query` with every filter and relative times, and `tail`.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossgate::app::{self, Started};
use crossgate::audit::jsonl::{JsonLines, Options};
use crossgate::audit::query::{Filter, Trail};
use crossgate::audit::sqlite::trail::SqliteTrail;
use crossgate::audit::sqlite::{Sqlite, SqliteOptions};
use crossgate::audit::{AuditEntry, AuditSink, InstanceAudit, Phase, rfc3339};
use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{Dialect, WireRequest};
use crossgate::sign::tencent_v1::Hash;

use crate::cli::Served;
use crate::fake_cvm::FakeCvm;
use crate::harness::{Signer, config_with, send_to, tc3_request, v1_request};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_crossgate");

// === a CVM upstream that keeps the bodies it receives ===

/// The demo configuration with instances `ins-t*` routed to `upstream`.
fn config_to(upstream: &FakeCvm) -> Config {
    let rules = "\n[[routing.rules]]\ninstance = \"ins-t*\"\nupstream = \"fake\"\n";
    let extra = format!(
        "\n[upstreams.fake]\nprovider = \"tencent-cvm\"\nendpoint = \"http://{}\"\nregion = \"ap-guangzhou\"\n\
         secret_id = \"AKIDtrailupstream\"\nsecret_key = \"trail-upstream-secret\"\n",
        upstream.addr
    );
    config_with(rules, &extra)
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("crossgate-trail-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tc3_bind(host: &str, instance: &str) -> WireRequest {
    let body = serde_json::json!({"InstanceIds": [instance], "KeyIds": ["skey-4e5ty7i8"]});
    tc3_request(host, "cvm", "AssociateInstancesKeyPairs", "2017-03-12", &body, &Signer::demo())
}

fn v1_bind(host: &str, instance: &str, signer: &Signer) -> WireRequest {
    let params = [
        ("Action", "AssociateInstancesKeyPairs"),
        ("Version", "2017-03-12"),
        ("Region", "ap-guangzhou"),
        ("InstanceIds.0", instance),
        ("KeyIds.0", "skey-4e5ty7i8"),
    ];
    v1_request(host, "POST", "/v2/index.php", &params, Hash::Sha256, signer)
}

async fn start(config: Config, sink: Arc<dyn AuditSink>) -> Started {
    app::start(config, sink, Arc::new(SystemClock)).await.expect("gateway starts")
}

fn all_records(path: &Path) -> Vec<AuditEntry> {
    SqliteTrail::open(path).unwrap().query(&Filter { limit: 100_000, ..Filter::default() }).unwrap()
}

// === the SQLite store behind the gateway ===

#[tokio::test]
async fn the_sqlite_store_keeps_every_phase_and_field_and_its_chain_and_keys_survive_a_restart() {
    let upstream = FakeCvm::start(Duration::ZERO).await;
    let db = temp_dir().join("audit.db");
    let first = start(config_to(&upstream), Arc::new(Sqlite::open(&db, SqliteOptions::default()).unwrap())).await;
    let addr = first.gateway.addr;
    let host = addr.to_string();
    let tc3 = tc3_bind(&host, "ins-t0000001");
    let v1 = v1_bind(&host, "ins-t0000002", &Signer::demo());
    for wire in [&tc3, &v1] {
        let got = send_to(addr, wire).await;
        assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    }
    let bad = send_to(addr, &v1_bind(&host, "ins-t0000003", &Signer::wrong_secret())).await;
    let refused_id = bad.request_id(Dialect::TencentV2).expect("a request id");
    assert_eq!(upstream.calls(), 2);
    first.gateway.stop().await;

    let records = all_records(&db);
    let phases: Vec<Phase> = records.iter().map(|r| r.phase).collect();
    assert_eq!(phases.iter().filter(|p| **p == Phase::Admitted).count(), 2, "{phases:?}");
    assert_eq!(phases.iter().filter(|p| **p == Phase::Completed).count(), 2, "{phases:?}");
    let done = records.iter().find(|r| r.phase == Phase::Completed && r.instances == ["ins-t0000001"]).unwrap();
    assert_eq!(done.caller.as_deref(), Some("demo"));
    assert_eq!(done.dialect.as_deref(), Some("tencent_cvm"));
    assert_eq!(done.action.as_deref(), Some("AssociateInstancesKeyPairs"));
    assert_eq!(done.keys, ["skey-4e5ty7i8"]);
    assert_eq!(done.upstreams, ["fake"]);
    assert_eq!((done.code.as_str(), done.status), ("Success", 200));
    assert!(done.upstream_request_ids[0].starts_with("fake-upstream-"), "{done:?}");
    let admitted = records.iter().find(|r| r.phase == Phase::Admitted && r.request_id == done.request_id).unwrap();
    assert!(admitted.replay_key.is_some() && admitted.replay_until.is_some(), "{admitted:?}");
    let refused = records.iter().find(|r| r.request_id == refused_id).unwrap();
    assert_eq!(refused.phase, Phase::Refused);
    assert_eq!(refused.kind.as_deref(), Some("signature_mismatch"), "{refused:?}");
    assert!(!format!("{records:?}").contains(DEMO_CALLER_SECRET), "no secret in a record");

    // A restart on the same database: the spent keys come back, and the chain goes on.
    let mut config = config_to(&upstream);
    config.listen = addr;
    let second = start(config, Arc::new(Sqlite::open(&db, SqliteOptions::default()).unwrap())).await;
    for (wire, dialect) in [(&tc3, Dialect::TencentCvm), (&v1, Dialect::TencentV2)] {
        let got = send_to(addr, wire).await;
        assert!(got.error_code(dialect).is_some(), "a request signed before the restart is refused: {}", got.text());
    }
    let fresh = send_to(addr, &tc3_bind(&host, "ins-t0000004")).await;
    assert_eq!(fresh.error_code(Dialect::TencentCvm), None, "{}", fresh.text());
    assert_eq!(upstream.calls(), 3, "no request reached the upstream twice across the restart");
    second.gateway.stop().await;
    let checked = SqliteTrail::open(&db).unwrap().verify().unwrap().unwrap_or_else(|b| panic!("{b}"));
    assert_eq!((checked.records, checked.segments), (all_records(&db).len() as u64, 1));
}

// === a store that cannot be written ===

/// A tiny tmpfs mounted at a fresh folder, unmounted when dropped; `None` where this process may not
/// mount (not root, or no CAP_SYS_ADMIN).
struct TinyFs(PathBuf);

impl TinyFs {
    fn mount() -> Option<TinyFs> {
        let dir = temp_dir();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(TinyFs(dir))
    }

    /// Writes a file until the file system is full.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 4096];
        while std::io::Write::write_all(&mut file, &block).is_ok() {}
        filler
    }
}

impl Drop for TinyFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn a_sqlite_store_on_a_full_disk_refuses_in_the_callers_dialect_and_forwards_nothing() {
    let Some(fs) = TinyFs::mount() else {
        eprintln!("skipped: this process cannot mount a tmpfs (run as root to test a real full disk)");
        return;
    };
    let upstream = FakeCvm::start(Duration::ZERO).await;
    let db = fs.0.join("audit.db");
    let started = start(config_to(&upstream), Arc::new(Sqlite::open(&db, SqliteOptions::default()).unwrap())).await;
    let addr = started.gateway.addr;
    let host = addr.to_string();
    let filler = fs.fill();

    let got = send_to(addr, &v1_bind(&host, "ins-t0000010", &Signer::demo())).await;
    assert_eq!(got.error_code(Dialect::TencentV2).as_deref(), Some("InternalServerError"), "{}", got.text());
    assert!(got.text().contains("audit"), "{}", got.text());
    let got = send_to(addr, &tc3_bind(&host, "ins-t0000011")).await;
    assert_eq!(got.error_code(Dialect::TencentCvm).as_deref(), Some("InternalError"), "{}", got.text());
    assert_eq!(upstream.calls(), 0, "nothing is forwarded unaudited");

    // Room again: the same store takes records again, without a restart.
    std::fs::remove_file(filler).unwrap();
    let got = send_to(addr, &tc3_bind(&host, "ins-t0000012")).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    assert_eq!(upstream.calls(), 1);
    started.gateway.stop().await;
    let records = all_records(&db);
    assert!(records.iter().any(|r| r.phase == Phase::Admitted && r.instances == ["ins-t0000012"]), "{records:?}");
    assert!(!records.iter().any(|r| r.instances == ["ins-t0000010"]), "the refused admission was rolled back");
    SqliteTrail::open(&db).unwrap().verify().unwrap().unwrap_or_else(|b| panic!("{b}"));
}

// === the binary: kill -9 under load ===

/// A running `crossgate` child process, killed when dropped.
pub(crate) struct Child(pub(crate) std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `crossgate audit tail --json` on `config`, polling every 50 ms, and the lines it prints as they come.
pub(crate) fn audit_tail(config: &Path) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Child(
        Command::new(BIN)
            .args(["audit", "tail", "--json", "--interval-ms", "50", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    (child, seen)
}

/// `crossgate serve --config`, once it prints `listening on`; killed (SIGKILL) when dropped.
fn serve(config: &Path) -> Served {
    let dir = config.parent().unwrap_or(Path::new("."));
    Served::start(&["--config", config.to_str().unwrap(), "--replica", "gw-kill"], dir)
}

/// A config for the demo caller and one CVM upstream at `upstream`, with `audit` as its `[audit]` table.
fn one_upstream_config(dir: &Path, listen: &str, upstream: SocketAddr, audit: &str) -> PathBuf {
    let config = dir.join("c.toml");
    let text = format!(
        "listen = \"{listen}\"\n[audit]\n{audit}\n[[callers]]\nname = \"demo\"\nsecret_id = \"{DEMO_CALLER_ID}\"\n\
         secret_key = \"{DEMO_CALLER_SECRET}\"\n[upstreams.cvm]\nprovider = \"tencent-cvm\"\n\
         endpoint = \"http://{upstream}\"\nregion = \"ap-guangzhou\"\nsecret_id = \"AKIDtrail\"\n\
         secret_key = \"trail-upstream-secret\"\n[routing]\ndefault = \"cvm\"\n"
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn crossgate(args: &[&str]) -> std::process::Output {
    Command::new(BIN).args(args).env_remove("CROSSGATE_CONFIG").output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_keeps_the_admission_of_every_forwarded_request_and_the_chain() {
    let db = temp_dir().join("audit.db");
    kill_9_under_load(&format!("store = \"sqlite:{}\"", db.display()), &|| all_records(&db)).await;
}

/// A real `crossgate serve` on the store `store` (an `[audit]` line) killed with SIGKILL while requests
/// are in flight: every request the upstream saw has its admission in the store (read by `records`),
/// the chain verifies, and a restart goes on with it.
pub(crate) async fn kill_9_under_load(store: &str, records: &(dyn Fn() -> Vec<AuditEntry> + Sync)) {
    let upstream = FakeCvm::start(Duration::from_millis(300)).await;
    let dir = temp_dir();
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = one_upstream_config(&dir, &listen.to_string(), upstream.addr, store);
    let gateway = serve(&config);

    let instances: Vec<String> = (0..12).map(|i| format!("ins-kill{i:04}")).collect();
    let host = listen.to_string();
    let load: Vec<_> = instances
        .iter()
        .map(|instance| {
            let wire = tc3_bind(&host, instance);
            tokio::spawn(async move { send_to(listen, &wire).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while upstream.calls() < 6 {
        assert!(Instant::now() < deadline, "the upstream saw only {} calls", upstream.calls());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(gateway); // SIGKILL with requests in flight: no drain, no flush
    for task in load {
        let _ = task.await; // a request cut off by the kill fails: that is expected
    }

    let found = records();
    let admitted: BTreeSet<&str> = found
        .iter()
        .filter(|r| r.phase == Phase::Admitted)
        .flat_map(|r| r.instances.iter().map(String::as_str))
        .collect();
    let forwarded: Vec<&String> = instances.iter().filter(|i| upstream.received(i)).collect();
    assert!(forwarded.len() >= 6, "{forwarded:?}");
    for instance in forwarded {
        assert!(admitted.contains(instance.as_str()), "{instance} reached the upstream unaudited: {admitted:?}");
    }
    let config = config.to_str().unwrap();
    let verified = crossgate(&["audit", "verify", "--config", config]);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));

    // Served again on the same database: the chain goes on from the last stored record.
    let _again = serve(Path::new(config));
    let got = send_to(listen, &tc3_bind(&host, "ins-kill0100")).await;
    assert_eq!(got.error_code(Dialect::TencentCvm), None, "{}", got.text());
    let verified = crossgate(&["audit", "verify", "--config", config]);
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stderr));
    assert!(out.contains(&format!("verified {} records in 1 segment", records().len())), "{out}");
}

// === crossgate audit verify ===

/// Records R-0 .. R-5, one completed request each.
pub(crate) fn request(i: usize, time_ms: u64) -> AuditEntry {
    AuditEntry {
        phase: Phase::Completed,
        time: rfc3339(time_ms),
        request_id: format!("R-{i}"),
        caller: Some("demo".into()),
        dialect: Some("tencent_cvm".into()),
        action: Some("AssociateInstancesKeyPairs".into()),
        instances: vec![format!("ins-{i:08}")],
        code: "Success".into(),
        status: 200,
        ..AuditEntry::default()
    }
}

pub(crate) async fn fill(sink: &dyn AuditSink, n: usize) {
    let now = SystemClock.now_ms();
    for i in 0..n {
        sink.submit(&request(i, now)).await.unwrap();
    }
}

/// A config file whose `[audit]` table is `audit` (the rest: the demo).
pub(crate) fn audit_config(dir: &Path, audit: &str) -> PathBuf {
    let demo = include_str!("../../src/demo.toml")
        .replace("store = \"sqlite:audit.db\"", audit)
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace("${CROSSGATE_SIM_SECRET}", "trail-test-upstream-secret");
    let path = dir.join(format!("{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, demo).unwrap();
    path
}

/// Runs `crossgate audit verify`: Ok(stdout) on exit 0, Err(stderr) on exit 1.
pub(crate) fn verify(config: &Path) -> Result<String, String> {
    let out = crossgate(&["audit", "verify", "--config", config.to_str().unwrap()]);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match out.status.code() {
        Some(0) => Ok(text(&out.stdout)),
        Some(1) => Err(text(&out.stderr)),
        other => panic!("verify exited with {other:?}: {}", text(&out.stderr)),
    }
}

fn rewrite_lines(path: &Path, change: impl FnOnce(&mut Vec<String>)) {
    let mut lines: Vec<String> = std::fs::read_to_string(path).unwrap().lines().map(str::to_owned).collect();
    change(&mut lines);
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn verify_names_an_edited_a_removed_and_a_reordered_json_line() {
    let dir = temp_dir();
    let file = dir.join("audit.jsonl");
    fill(&JsonLines::open(&file, Options::default()).unwrap(), 6).await;
    let config = audit_config(&dir, &format!("store = \"jsonl:{}\"", file.display()));
    let ok = verify(&config).unwrap();
    assert!(ok.contains("verified 6 records in 1 segment"), "{ok}");
    let intact = std::fs::read(&file).unwrap();

    rewrite_lines(&file, |l| l[3] = l[3].replace("\"caller\":\"demo\"", "\"caller\":\"dem0\""));
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 4 (R-3, audit.jsonl line 4) was edited"), "{err}");

    std::fs::write(&file, &intact).unwrap();
    rewrite_lines(&file, |l| drop(l.remove(2)));
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 3 (R-3, audit.jsonl line 3) follows a record that was removed"), "{err}");

    std::fs::write(&file, &intact).unwrap();
    rewrite_lines(&file, |l| l.swap(1, 2));
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 2 (R-2, audit.jsonl line 2) is out of order"), "{err}");

    std::fs::write(&file, &intact).unwrap();
    assert!(verify(&config).is_ok());
}

#[tokio::test]
async fn verify_names_an_edited_a_removed_and_a_reordered_sqlite_row() {
    let dir = temp_dir();
    let db = dir.join("audit.db");
    fill(&Sqlite::open(&db, SqliteOptions::default()).unwrap(), 6).await;
    let config = audit_config(&dir, &format!("store = \"sqlite:{}\"", db.display()));
    assert!(verify(&config).unwrap().contains("verified 6 records in 1 segment"));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let sql = |s: &str| conn.execute_batch(s).unwrap();

    sql("UPDATE records SET record = replace(record, '\"status\":200', '\"status\":201') WHERE id = 4");
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 4 (R-3, row 4) was edited: its content does not match its hash"), "{err}");
    sql("UPDATE records SET record = replace(record, '\"status\":201', '\"status\":200') WHERE id = 4");

    sql("UPDATE records SET action = 'DisassociateInstancesKeyPairs' WHERE id = 5");
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 5 (R-4, row 5) was edited") && err.contains("action"), "{err}");
    sql("UPDATE records SET action = 'AssociateInstancesKeyPairs' WHERE id = 5");
    assert!(verify(&config).is_ok());

    // Rows 2 and 3 trade places (every column but the id).
    sql("CREATE TABLE t AS SELECT * FROM records WHERE id IN (2, 3);
         UPDATE records SET (time, phase, request_id, caller, dialect, action, result, code, status, replay_key,
           replay_until, record, prev_hash, hash) = (SELECT time, phase, request_id, caller, dialect, action,
           result, code, status, replay_key, replay_until, record, prev_hash, hash FROM t WHERE t.id = 5 - records.id)
         WHERE id IN (2, 3);
         UPDATE record_terms SET record_id = 5 - record_id WHERE record_id IN (2, 3);");
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 2 (R-2, row 2) is out of order"), "{err}");

    sql("DELETE FROM records WHERE id IN (2, 3); INSERT INTO records SELECT * FROM t; DROP TABLE t;
         UPDATE record_terms SET record_id = 5 - record_id WHERE record_id IN (2, 3);");
    assert!(verify(&config).is_ok(), "put back");
    sql("DELETE FROM records WHERE id = 3");
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 3 (R-3, row 4) follows a record that was removed"), "{err}");
}

// === crossgate audit query ===

/// Six records over three hours, differing in every filtered field.
pub(crate) fn varied(now: u64) -> Vec<AuditEntry> {
    let hour = 3_600_000;
    let mut records = Vec::new();
    let mut admitted = request(0, now - 3 * hour);
    admitted.phase = Phase::Admitted;
    admitted.code = String::new();
    admitted.status = 0;
    records.push(admitted);
    let mut ok = request(0, now - 3 * hour);
    ok.upstreams = vec!["cvm".into()];
    ok.keys = vec!["skey-4e5ty7i8".into()];
    ok.keys_translated = vec!["skey-4e5ty7i8".into()];
    records.push(ok);
    let mut ecs = request(1, now - 2 * hour);
    ecs.caller = Some("billing".into());
    ecs.dialect = Some("aliyun_ecs".into());
    ecs.action = Some("AttachKeyPair".into());
    ecs.instances = vec!["i-m5eg7be9ndloji64jknv".into()];
    ecs.upstreams = vec!["ecs".into()];
    ecs.keys = vec!["FinanceJoshuaV25".into()];
    ecs.results = vec![InstanceAudit {
        instance: "i-m5eg7be9ndloji64jknv".into(),
        translated: "i-m5eg7be9ndloji64jknv".into(),
        upstream: "ecs".into(),
        outcome: "Success".into(),
    }];
    records.push(ecs);
    let mut failed = request(2, now - 30 * 60_000);
    failed.code = "InvalidInstanceId.NotFound".into();
    failed.kind = Some("instance_not_found".into());
    failed.status = 400;
    failed.upstreams = vec!["cvm".into()];
    records.push(failed);
    let mut refused = request(3, now - 5 * 60_000);
    refused.phase = Phase::Refused;
    refused.code = "AuthFailure.SignatureFailure".into();
    refused.kind = Some("signature_mismatch".into());
    refused.status = 401;
    refused.caller = Some(DEMO_CALLER_ID.into());
    records.push(refused);
    let mut lighthouse = request(4, now - 10_000);
    lighthouse.dialect = Some("tencent_lighthouse".into());
    lighthouse.instances = vec!["lhins-3k9d8f7s".into()];
    lighthouse.upstreams = vec!["lighthouse".into()];
    lighthouse.upstream_actions = vec!["AssociateInstancesKeyPairs".into()];
    records.push(lighthouse);
    records
}

/// `crossgate audit query --json` with `args`: the request ids found, with `:phase` for admissions.
pub(crate) fn query(config: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["audit", "query", "--config", config.to_str().unwrap(), "--json"];
    all.extend_from_slice(args);
    let out = crossgate(&all);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let e: AuditEntry = serde_json::from_str(l).unwrap();
            if e.phase == Phase::Admitted { format!("{}:admitted", e.request_id) } else { e.request_id }
        })
        .collect()
}

/// Filters over [`varied`] (written at `now`) and the request ids each must find, for every store.
pub(crate) fn query_cases(now: u64) -> Vec<(Vec<String>, Vec<&'static str>)> {
    let since = rfc3339(now - 150 * 60_000);
    let until = rfc3339(now - 60 * 60_000);
    let cases: Vec<(Vec<&str>, Vec<&'static str>)> = vec![
        (vec![], vec!["R-0:admitted", "R-0", "R-1", "R-2", "R-3", "R-4"]),
        (vec!["--since", "1h"], vec!["R-2", "R-3", "R-4"]),
        (vec!["--since", "15m"], vec!["R-3", "R-4"]),
        (vec!["--since", "90s"], vec!["R-4"]),
        (vec!["--until", "1h"], vec!["R-0:admitted", "R-0", "R-1"]),
        (vec!["--since", "1d", "--until", "150m"], vec!["R-0:admitted", "R-0"]),
        (vec!["--since", &since, "--until", &until], vec!["R-1"]),
        (vec!["--caller", "billing"], vec!["R-1"]),
        (vec!["--instance", "ins-00000000"], vec!["R-0:admitted", "R-0"]),
        (vec!["--instance", "i-m5eg7be9ndloji64jknv"], vec!["R-1"]),
        (vec!["--key", "FinanceJoshuaV25"], vec!["R-1"]),
        (vec!["--key", "skey-4e5ty7i8"], vec!["R-0"]),
        (vec!["--action", "AttachKeyPair"], vec!["R-1"]),
        (vec!["--action", "AssociateInstancesKeyPairs", "--since", "1h"], vec!["R-2", "R-3", "R-4"]),
        (vec!["--upstream", "cvm"], vec!["R-0", "R-2"]),
        (vec!["--upstream", "lighthouse"], vec!["R-4"]),
        (vec!["--result", "ok"], vec!["R-0", "R-1", "R-4"]),
        (vec!["--result", "error"], vec!["R-2", "R-3"]),
        (vec!["--request-id", "R-0"], vec!["R-0:admitted", "R-0"]),
        (vec!["--phase", "refused"], vec!["R-3"]),
        (vec!["--phase", "admitted"], vec!["R-0:admitted"]),
        (vec!["--limit", "2"], vec!["R-3", "R-4"]),
        (vec!["--caller", "demo", "--result", "ok", "--limit", "1"], vec!["R-4"]),
        (vec!["--caller", "nobody"], vec![]),
    ];
    cases.into_iter().map(|(args, want)| (args.into_iter().map(str::to_owned).collect(), want)).collect()
}

#[tokio::test]
async fn query_answers_every_filter_the_same_on_sqlite_and_json_lines() {
    let dir = temp_dir();
    let now = SystemClock.now_ms();
    let db = dir.join("audit.db");
    let file = dir.join("audit.jsonl");
    let sqlite = Sqlite::open(&db, SqliteOptions::default()).unwrap();
    let jsonl = JsonLines::open(&file, Options::default()).unwrap();
    for record in varied(now) {
        sqlite.submit(&record).await.unwrap();
        jsonl.submit(&record).await.unwrap();
    }
    let cases = query_cases(now);
    for store in [format!("store = \"sqlite:{}\"", db.display()), format!("store = \"jsonl:{}\"", file.display())] {
        let config = audit_config(&dir, &store);
        for (args, want) in &cases {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            assert_eq!(query(&config, &args), *want, "{store} {args:?}");
        }
    }
}

#[tokio::test]
async fn query_prints_an_aligned_table_and_refuses_bad_filters_clearly() {
    let dir = temp_dir();
    let db = dir.join("audit.db");
    let sqlite = Sqlite::open(&db, SqliteOptions::default()).unwrap();
    for record in varied(SystemClock.now_ms()) {
        sqlite.submit(&record).await.unwrap();
    }
    let config = audit_config(&dir, &format!("store = \"sqlite:{}\"", db.display()));
    let config = config.to_str().unwrap();
    let out = crossgate(&["audit", "query", "--config", config]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    for heading in ["TIME", "REQUEST ID", "CALLER", "DIALECT", "ACTION", "INSTANCES", "UPSTREAMS", "CODE", "LATENCY"] {
        assert!(lines[0].contains(heading), "{}", lines[0]);
    }
    let at = lines[0].find("CALLER").unwrap();
    assert!(lines[1..].iter().all(|l| l[at - 2..at].trim().is_empty()), "columns line up:\n{text}");
    assert!(lines[3][at..].starts_with("billing"), "{text}");

    for (args, want) in [
        (vec!["--since", "5 minutes"], "--since"),
        (vec!["--until", "yesterday"], "RFC 3339"),
        (vec!["--result", "maybe"], "use ok or error"),
        (vec!["--phase", "done"], "admitted, completed or refused"),
    ] {
        let mut all = vec!["audit", "query", "--config", config];
        all.extend_from_slice(&args);
        let out = crossgate(&all);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let missing = audit_config(&dir, "store = \"sqlite:/nonexistent/audit.db\"");
    let out = crossgate(&["audit", "query", "--config", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no audit database at /nonexistent/audit.db"));
}

// === crossgate audit tail ===

#[tokio::test]
async fn tail_prints_records_as_they_are_written() {
    for sqlite in [true, false] {
        let dir = temp_dir();
        let (sink, store): (Box<dyn AuditSink>, String) = if sqlite {
            let db = dir.join("audit.db");
            (
                Box::new(Sqlite::open(&db, SqliteOptions::default()).unwrap()),
                format!("store = \"sqlite:{}\"", db.display()),
            )
        } else {
            let file = dir.join("audit.jsonl");
            (
                Box::new(JsonLines::open(&file, Options::default()).unwrap()),
                format!("store = \"jsonl:{}\"", file.display()),
            )
        };
        let now = SystemClock.now_ms();
        sink.submit(&request(0, now)).await.unwrap(); // written before: not shown
        let (_child, seen) = audit_tail(&audit_config(&dir, &store));
        tokio::time::sleep(Duration::from_millis(300)).await; // let it open the store and find its end
        for i in 1..4 {
            sink.submit(&request(i, now)).await.unwrap();
        }
        let mut ids = Vec::new();
        while ids.len() < 3 {
            let line = seen.recv_timeout(Duration::from_secs(10)).expect("tail printed the new records");
            ids.push(serde_json::from_str::<AuditEntry>(&line).unwrap().request_id);
        }
        assert_eq!(ids, ["R-1", "R-2", "R-3"], "sqlite: {sqlite}");
    }
}
