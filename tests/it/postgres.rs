//! The PostgreSQL audit store against a real server (PostgreSQL from the system's packages: each test
//! starts a throwaway cluster of its own, copied from one made by `initdb` once per run): concurrent
//! writers, a restart of the gateway's store, two replicas in one trail, tampering caught and named
//! per replica, every query filter, the server stopped mid-run and started again, an unreachable
//! server at start, and a real gateway whose trail `crossgate audit verify` proves.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crossgate::app;
use crossgate::audit::postgres::trail::PostgresTrail;
use crossgate::audit::postgres::{Postgres, PostgresOptions};
use crossgate::audit::query::{Filter, Trail};
use crossgate::audit::store::{self, StoreSpec};
use crossgate::audit::{AuditEntry, AuditSink, Phase, SpentKey};
use crossgate::clock::{Clock, SystemClock};
use crossgate::dialect::Dialect;
use crossgate::secret::Secret;

use crate::harness::send_to;
use crate::trail::{audit_config, fill, query, query_cases, request, varied, verify};

/// The directory holding `initdb` and `postgres`.
fn binaries() -> PathBuf {
    let found = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|dir| {
        let mut versions: Vec<PathBuf> =
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).filter(|b| b.join("initdb").is_file()).collect();
        versions.sort();
        versions.pop()
    });
    found.unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: `apt-get install postgresql` (.ci/run does), then run the tests again")
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
}

/// Runs a PostgreSQL program, as the `postgres` user when running as root (the server refuses root).
fn pg(program: &str, args: &[&str]) -> std::process::Output {
    let bin = binaries().join(program);
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin);
        c
    } else {
        Command::new(bin)
    };
    command.args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{program}: {e}"))
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(path).status().unwrap().success();
        assert!(ok, "chown {}", path.display());
    }
}

/// A cluster made once per run, copied by each server.
fn template() -> &'static PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("crossgate-pg-template-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        give_to_postgres(&dir);
        let data = dir.join("data");
        let out =
            pg("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        data
    })
}

/// A running throwaway PostgreSQL server, stopped (immediately) on drop.
pub(crate) struct PgServer {
    dir: PathBuf,
    port: u16,
}

impl PgServer {
    pub(crate) fn start() -> PgServer {
        let dir = std::env::temp_dir().join(format!("crossgate-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let copied = Command::new("cp").arg("-a").arg(template()).arg(dir.join("data")).status().unwrap();
        assert!(copied.success());
        give_to_postgres(&dir);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PgServer { dir, port };
        server.up();
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// Starts the server (again).
    pub(crate) fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        let out = pg("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    /// Stops the server at once, as a crash would.
    pub(crate) fn down(&self) {
        let out = pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "-w", "stop"]);
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A fresh database on this server, as a URL.
    pub(crate) fn database(&self) -> String {
        let name = format!("audit_{}", uuid::Uuid::new_v4().simple());
        sql(&format!("postgres://postgres@127.0.0.1:{}/postgres", self.port), &format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = pg("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs blocking database work off the test's event loop (the synchronous client runs an event loop of
/// its own, which may not start inside another).
fn off<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(work).join().expect("the blocking work panicked"))
}

fn open(url: &str, replica: &str) -> Postgres {
    Postgres::open(&Secret::new(url), PostgresOptions { replica: replica.into(), retain_days: None })
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs `work` on the trail at `url`, off the event loop.
fn on_trail<T: Send>(url: &str, work: impl FnOnce(&mut PostgresTrail) -> T + Send) -> T {
    off(|| work(&mut PostgresTrail::open(&Secret::new(url)).unwrap()))
}

fn verified(url: &str) -> crossgate::audit::chain::Checked {
    on_trail(url, |t| t.verify().unwrap().unwrap_or_else(|b| panic!("{b}")))
}

fn request_ids(url: &str, filter: Filter) -> Vec<String> {
    on_trail(url, |t| t.query(&filter).unwrap().into_iter().map(|e: AuditEntry| e.request_id).collect())
}

fn sql(url: &str, statements: &str) {
    off(|| postgres::Client::connect(url, postgres::NoTls).unwrap().batch_execute(statements).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn concurrent_records_are_committed_in_chain_order_and_the_chain_and_keys_survive_a_restart() {
    let server = PgServer::start();
    let url = server.database();
    let store = Arc::new(open(&url, "gw-1"));
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.submit(&request(i, SystemClock.now_ms())).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut admitted = request(1000, SystemClock.now_ms());
    admitted.phase = Phase::Admitted;
    admitted.replay_key = Some("AKID\0nonce-1".into());
    admitted.replay_until = Some(SystemClock.now_unix() + 300);
    store.submit(&admitted).await.unwrap();
    store.flush().await.unwrap();
    drop(store);

    let checked = verified(&url);
    assert_eq!((checked.records, checked.segments), (301, 1));
    let mut ids = request_ids(&url, Filter { limit: 1000, ..Filter::default() });
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 301, "every record once");

    let store = open(&url, "gw-1");
    let now = SystemClock.now_unix();
    let until = admitted.replay_until.unwrap();
    assert_eq!(store.spent_keys(now), vec![SpentKey { key: "AKID\0nonce-1".into(), until }]);
    fill(&store, 3).await;
    let checked = verified(&url);
    assert_eq!(checked.records, 304, "the chain went on after the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn two_replicas_share_one_trail_and_tampering_is_named_with_its_replica() {
    let server = PgServer::start();
    let url = server.database();
    let (a, b) = (Arc::new(open(&url, "gw-a")), Arc::new(open(&url, "gw-b")));
    let mut tasks = Vec::new();
    for i in 0..100 {
        for (store, base) in [(a.clone(), 0), (b.clone(), 1000)] {
            tasks.push(tokio::spawn(async move { store.submit(&request(base + i, SystemClock.now_ms())).await }));
        }
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let checked = verified(&url);
    assert_eq!((checked.records, checked.segments), (200, 2), "one chain per replica");
    assert!(checked.head.contains("gw-a=") && checked.head.contains("gw-b="), "{}", checked.head);
    // Through the command, as operators run it.
    let dir = std::env::temp_dir().join(format!("crossgate-pgcfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = audit_config(&dir, &format!("store = \"{url}\""));
    assert!(verify(&config).unwrap().contains("verified 200 records in 2 segments"));

    let nth = |replica: &str, n: i64| {
        off(|| {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            let row = c
                .query_one(
                    "SELECT id, request_id FROM crossgate_audit WHERE replica = $1 ORDER BY id OFFSET $2 LIMIT 1",
                    &[&replica, &(n - 1)],
                )
                .unwrap();
            (row.get::<_, i64>(0), row.get::<_, String>(1))
        })
    };
    // An edited column.
    let (id, rid) = nth("gw-b", 10);
    sql(&url, &format!("UPDATE crossgate_audit SET caller = 'someone' WHERE id = {id}"));
    let err = verify(&config).unwrap_err();
    assert!(
        err.contains(&format!("record 10 ({rid}, replica gw-b, row {id}) was edited")) && err.contains("caller"),
        "{err}"
    );
    sql(&url, &format!("UPDATE crossgate_audit SET caller = 'demo' WHERE id = {id}"));
    // An edited record.
    sql(
        &url,
        &format!(
            "UPDATE crossgate_audit SET record = replace(record, '\"status\":200', '\"status\":201') WHERE id = {id}"
        ),
    );
    let err = verify(&config).unwrap_err();
    assert!(err.contains("its content does not match its hash"), "{err}");
    sql(
        &url,
        &format!(
            "UPDATE crossgate_audit SET record = replace(record, '\"status\":201', '\"status\":200') WHERE id = {id}"
        ),
    );
    assert!(verify(&config).is_ok());
    // Two rows of gw-a trade places.
    let ((x, _), (y, _)) = (nth("gw-a", 5), nth("gw-a", 6));
    let columns = "time, phase, request_id, caller, dialect, action, result, code, status, replay_key, replay_until, \
                   record, prev_hash, hash";
    sql(
        &url,
        &format!(
            "CREATE TABLE t AS SELECT * FROM crossgate_audit WHERE id IN ({x}, {y});
         UPDATE crossgate_audit SET ({columns}) = (SELECT {columns} FROM t WHERE t.id = {x} + {y} - crossgate_audit.id)
           WHERE id IN ({x}, {y});
         UPDATE crossgate_audit_terms SET record_id = {x} + {y} - record_id WHERE record_id IN ({x}, {y});"
        ),
    );
    let err = verify(&config).unwrap_err();
    assert!(err.contains("record 5 (") && err.contains("replica gw-a") && err.contains("is out of order"), "{err}");
    // A removed row (after putting the pair back).
    sql(&url, &format!(
        "UPDATE crossgate_audit SET ({columns}) = (SELECT {columns} FROM t WHERE t.id = crossgate_audit.id) WHERE id IN ({x}, {y});
         UPDATE crossgate_audit_terms SET record_id = {x} + {y} - record_id WHERE record_id IN ({x}, {y}); DROP TABLE t;"
    ));
    assert!(verify(&config).is_ok(), "put back");
    let (gone, _) = nth("gw-a", 7);
    let (_, next) = nth("gw-a", 8);
    sql(&url, &format!("DELETE FROM crossgate_audit WHERE id = {gone}"));
    let err = verify(&config).unwrap_err();
    assert!(
        err.contains(&format!("record 7 ({next}, replica gw-a")) && err.contains("follows a record that was removed"),
        "{err}"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn query_answers_every_filter_as_the_other_stores_do() {
    let server = PgServer::start();
    let url = server.database();
    let now = SystemClock.now_ms();
    let store = open(&url, "gw-1");
    for record in varied(now) {
        store.submit(&record).await.unwrap();
    }
    let dir = std::env::temp_dir().join(format!("crossgate-pgcfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = audit_config(&dir, &format!("store = \"{url}\""));
    for (args, want) in query_cases(now) {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(query(&config, &args), want, "{args:?}");
    }
    // follow: only what is new.
    let mut reader = off(|| PostgresTrail::open(&Secret::new(&url)).unwrap());
    assert!(off(|| reader.follow().unwrap()).is_empty());
    fill(&store, 2).await;
    let new: Vec<String> = off(|| reader.follow().unwrap()).into_iter().map(|e| e.request_id).collect();
    assert_eq!(new, ["R-0", "R-1"]);
    assert!(off(|| reader.follow().unwrap()).is_empty());
    off(move || drop(reader));
}

#[tokio::test]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn a_server_that_goes_away_fails_records_promptly_and_one_that_returns_takes_them_again() {
    let server = PgServer::start();
    let url = server.database();
    let store = open(&url, "gw-1");
    fill(&store, 2).await;
    server.down();
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), store.submit(&request(50, SystemClock.now_ms())))
        .await
        .expect("an answer, not a hang");
    let err = result.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(err.contains("PostgreSQL") || err.contains("audit database"), "{err}");
    // Still down: every record fails, each promptly.
    assert!(store.submit(&request(51, SystemClock.now_ms())).await.is_err());
    server.up();
    store.submit(&request(52, SystemClock.now_ms())).await.expect("written once the server is back");
    assert_eq!(request_ids(&url, Filter::default()), ["R-0", "R-1", "R-52"]);
    assert_eq!(verified(&url).records, 3);
}

#[tokio::test]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn an_unreachable_server_or_a_newer_schema_is_refused_at_start_without_the_password() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://audit:hunter2secret@127.0.0.1:{closed}/audit");
    let err = Postgres::open(&Secret::new(&url), PostgresOptions::default()).unwrap_err().to_string();
    assert!(err.contains("cannot connect to PostgreSQL at 127.0.0.1"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
    let err = off(|| PostgresTrail::open(&Secret::new(&url)).unwrap_err());
    assert!(!err.contains("hunter2secret"), "{err}");

    let server = PgServer::start();
    let url = server.database();
    drop(open(&url, "gw-1"));
    sql(&url, "UPDATE crossgate_schema SET version = 99");
    let err = Postgres::open(&Secret::new(&url), PostgresOptions::default()).unwrap_err().to_string();
    assert!(err.contains("schema version 99") && err.contains("newer crossgate"), "{err}");
    assert!(off(|| PostgresTrail::open(&Secret::new(&url)).unwrap_err()).contains("newer"));
}

#[tokio::test]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn retention_deletes_a_replicas_old_rows_in_a_new_segment() {
    let server = PgServer::start();
    let url = server.database();
    let now = SystemClock.now_ms();
    let day = 86_400_000;
    {
        let store = open(&url, "gw-1");
        for i in 0..5 {
            store.submit(&request(i, now - 20 * day)).await.unwrap();
        }
        for i in 5..8 {
            store.submit(&request(i, now - day)).await.unwrap();
        }
        let other = open(&url, "gw-2");
        other.submit(&request(100, now - 20 * day)).await.unwrap();
    }
    let store =
        Postgres::open(&Secret::new(&url), PostgresOptions { replica: "gw-1".into(), retain_days: Some(7) }).unwrap();
    assert_eq!(
        request_ids(&url, Filter::default()),
        ["R-5", "R-6", "R-7", "R-100"],
        "gw-2's rows are gw-2's to delete"
    );
    let checked = verified(&url);
    assert_eq!((checked.records, checked.segments), (5, 3), "gw-1: three records and the segment record; gw-2: one");
    assert_eq!(store.retain(now).unwrap(), 0, "nothing more is old enough");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn a_gateway_on_postgres_audits_every_request_and_its_trail_is_proved_and_served() {
    let server = PgServer::start();
    let url = server.database();
    let upstream = crate::fake_cvm::FakeCvm::start(Duration::ZERO).await;
    let mut config = crate::admin::config(&upstream, Some(crate::admin::TOKEN), "");
    config.audit.store = StoreSpec::parse(&url).unwrap();
    config.audit.replica = "gw-e2e".into();
    let sink = store::open(&config.audit.store, config.audit.options, config.audit.sqlite, &config.audit.replica)
        .unwrap_or_else(|e| panic!("{e}"));
    let started = app::start(config, sink, Arc::new(SystemClock)).await.unwrap();
    let (gateway, admin) = (started.gateway.addr, started.admin.as_ref().unwrap().addr);
    let mut ids = Vec::new();
    for i in 0..3 {
        let got = send_to(gateway, &crate::admin::bind(gateway, &format!("ins-t000000{i}"))).await;
        assert_eq!(got.status, 200, "{}", got.text());
        ids.push(got.request_id(Dialect::TencentCvm).unwrap());
    }
    assert_eq!(upstream.calls(), 3);
    // The database goes away: a bind is refused in the caller's dialect, promptly, and nothing is
    // forwarded unaudited; once it is back, binds go through again.
    assert_eq!(crate::redis::readyz(gateway).await.0, 200);
    server.down();
    let (status, text) = crate::redis::readyz(gateway).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.starts_with("not ready: audit store:"), "{text}");
    let asked = Instant::now();
    let refused = send_to(gateway, &crate::admin::bind(gateway, "ins-t0000008")).await;
    assert!(asked.elapsed() < Duration::from_secs(5), "took {:?}", asked.elapsed());
    assert!(refused.error_code(Dialect::TencentCvm).is_some(), "{}", refused.text());
    assert!(!refused.text().contains("postgres://"), "{}", refused.text());
    assert_eq!(upstream.calls(), 3, "nothing forwarded unaudited");
    server.up();
    let got = send_to(gateway, &crate::admin::bind(gateway, "ins-t0000009")).await;
    assert_eq!(got.status, 200, "{}", got.text());
    ids.push(got.request_id(Dialect::TencentCvm).unwrap());
    assert_eq!(upstream.calls(), 4);
    started.gateway.stop().await;

    let found = on_trail(&url, |t| t.query(&Filter::default()).unwrap());
    let phases: Vec<(String, Phase)> = found.iter().map(|e| (e.request_id.clone(), e.phase)).collect();
    for id in &ids {
        assert!(phases.contains(&(id.clone(), Phase::Admitted)) && phases.contains(&(id.clone(), Phase::Completed)));
    }
    // The admin API reads the same trail.
    let api = crate::admin::get(admin, "/api/audit?phase=completed", Some(crate::admin::TOKEN)).await.json();
    assert_eq!(api["count"], 4, "{api}");
    let chain = crate::admin::get(admin, "/api/audit/verify", Some(crate::admin::TOKEN)).await.json();
    assert_eq!((chain["intact"].clone(), chain["records"].clone()), (true.into(), 8.into()), "{chain}");
    // And the command, as operators run it.
    let dir = std::env::temp_dir().join(format!("crossgate-pgcfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = audit_config(&dir, &format!("store = \"{url}\""));
    assert!(verify(&config).unwrap().contains("verified 8 records in 1 segment"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL from the system's packages; run by tests/run.sh"]
async fn kill_9_of_a_gateway_on_postgres_keeps_the_admission_of_every_forwarded_request() {
    let server = PgServer::start();
    let url = server.database();
    let all = || on_trail(&url, |t| t.query(&Filter { limit: 100_000, ..Filter::default() }).unwrap());
    crate::trail::kill_9_under_load(&format!("store = \"{url}\"\nreplica = \"from-the-config\""), &all).await;
    // `serve --replica` named the records, over the config's `replica`.
    let replicas: Vec<String> = off(|| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query("SELECT DISTINCT replica FROM crossgate_audit", &[]).unwrap().iter().map(|r| r.get(0)).collect()
    });
    assert_eq!(replicas, ["gw-kill"]);
}
