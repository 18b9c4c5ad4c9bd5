//! The PostgreSQL audit store against a real server: each test starts a throwaway cluster of its own
//! (PostgreSQL from the system's packages, copied from one made by `initdb` once per run), or, when
//! `CROSSGATE_POSTGRES_URL` names a server, a fresh database there (the user must be allowed to create
//! databases; stopping that server is played by a proxy in front of it that cuts every connection).
//! Concurrent writers, a restart of the gateway's store, two replicas in one trail, tampering caught and
//! named per replica, every query filter, `follow` and `crossgate audit tail` across replicas, the
//! server stopped mid-run and started again, restarted while idle, frozen, an unreachable server at
//! start, and a real gateway whose trail `crossgate audit verify` proves.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// The variable naming a server to use instead of starting one.
const SERVER_URL: &str = "CROSSGATE_POSTGRES_URL";

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `CROSSGATE_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn binaries() -> PathBuf {
    if let Some(dir) = std::env::var_os("CROSSGATE_PG_BIN").map(PathBuf::from) {
        assert!(dir.join("initdb").is_file(), "CROSSGATE_PG_BIN={} holds no initdb", dir.display());
        return dir;
    }
    let found = std::fs::read_dir("/usr/lib/postgresql").ok().and_then(|dir| {
        let mut versions: Vec<PathBuf> =
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).filter(|b| b.join("initdb").is_file()).collect();
        versions.sort();
        versions.pop()
    });
    found.unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed, so these tests cannot start a server: `apt-get install postgresql` \
             (.ci/run does), or set {SERVER_URL}=postgres://USER:PASSWORD@HOST:PORT/DB to use a running one"
        )
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
        assert!(ok, "chown {} (running as root, the server runs as the user `postgres`)", path.display());
    }
}

/// A cluster made by `initdb`, copied by each server: kept in the temporary directory under a name of
/// its binaries' version and made at most once (a run that finds none makes one aside and renames it
/// into place, so that runs at once never see half of one).
fn template() -> &'static PathBuf {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let bin = binaries();
        let version = bin.parent().and_then(Path::file_name).map_or("pg".into(), |v| v.to_string_lossy().into_owned());
        let kept = std::env::temp_dir().join(format!("crossgate-pg-template-{version}"));
        if kept.join("data/PG_VERSION").is_file() {
            return kept.join("data");
        }
        let dir = std::env::temp_dir().join(format!("crossgate-pg-template-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        give_to_postgres(&dir);
        let data = dir.join("data");
        let out =
            pg("initdb", &["-D", data.to_str().unwrap(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        assert!(
            out.status.success(),
            "initdb could not make a cluster (set {SERVER_URL} to use a running server instead): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::fs::rename(&dir, &kept).is_err() {
            // Another run put its own in place first.
            let _ = std::fs::remove_dir_all(&dir);
        }
        kept.join("data")
    })
}

/// A URL's parts around its host and database: `(scheme and user, host:port, database, ?parameters)`.
fn url_parts(url: &str) -> (&str, &str, &str, &str) {
    let fail = || panic!("{SERVER_URL} must be a URL, postgres://USER:PASSWORD@HOST:PORT/DB");
    let after_scheme = url.find("://").unwrap_or_else(fail) + 3;
    let rest = &url[after_scheme..];
    let authority_len = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let host_at = authority.rfind('@').map_or(0, |at| at + 1);
    let tail = &rest[authority_len..];
    let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
    (&url[..after_scheme + host_at], &authority[host_at..], path.trim_start_matches('/'), query)
}

/// A proxy in front of a server, which can refuse and cut every connection as a stopped server would,
/// or hold everything sent either way as a frozen server (or a cut cable) would.
struct Cutter {
    addr: SocketAddr,
    /// 0: forwarding; [`CUT`]; [`FROZEN`].
    state: Arc<AtomicU8>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

const CUT: u8 = 1;
const FROZEN: u8 = 2;

/// Copies `from` to `to` until either ends, holding the data while the proxy is frozen.
fn pipe(mut from: TcpStream, mut to: TcpStream, state: Arc<AtomicU8>) {
    let mut buf = [0u8; 16384];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        while state.load(Ordering::SeqCst) == FROZEN {
            std::thread::sleep(Duration::from_millis(10));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

impl Cutter {
    fn start(target: String) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, open) = (Arc::new(AtomicU8::new(0)), Arc::new(Mutex::new(Vec::<TcpStream>::new())));
        let (shared, kept) = (state.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if shared.load(Ordering::SeqCst) == CUT {
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else { continue };
                let mut open = kept.lock().unwrap();
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (from, to, state) = (from.try_clone().unwrap(), to.try_clone().unwrap(), shared.clone());
                    std::thread::spawn(move || pipe(from, to, state));
                }
                open.extend([client, server]);
            }
        });
        Cutter { addr, state, open }
    }

    /// `url` with this proxy in place of its host.
    fn before(&self, url: &str) -> String {
        let (user, _, database, query) = url_parts(url);
        format!("{user}{}/{database}{query}", self.addr)
    }

    fn cut(&self) {
        self.state.store(CUT, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn freeze(&self) {
        self.state.store(FROZEN, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.state.store(0, Ordering::SeqCst);
    }
}

enum Server {
    /// A cluster of our own, in `dir`.
    Local { dir: PathBuf, port: u16 },
    /// The server `CROSSGATE_POSTGRES_URL` names, reached through a proxy; the databases made there.
    Given { url: String, cutter: Cutter, made: Mutex<Vec<String>> },
}

/// A PostgreSQL server for one test: a throwaway one, stopped (immediately) on drop, or the one
/// `CROSSGATE_POSTGRES_URL` names, whose databases made by the test are dropped on drop.
pub(crate) struct PgServer(Server);

impl PgServer {
    pub(crate) fn start() -> PgServer {
        if let Some(url) = std::env::var(SERVER_URL).ok().filter(|u| !u.is_empty()) {
            let (_, host, _, _) = url_parts(&url);
            let cutter = Cutter::start(host.to_owned());
            return PgServer(Server::Given { url, cutter, made: Mutex::new(Vec::new()) });
        }
        let template = template();
        let dir = std::env::temp_dir().join(format!("crossgate-pg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let copied = Command::new("cp").arg("-a").arg(template).arg(dir.join("data")).status().unwrap();
        assert!(copied.success());
        give_to_postgres(&dir);
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = PgServer(Server::Local { dir, port });
        server.up();
        server
    }

    fn data(dir: &Path) -> String {
        dir.join("data").display().to_string()
    }

    /// Starts the server (again).
    pub(crate) fn up(&self) {
        match &self.0 {
            Server::Given { cutter, .. } => cutter.restore(),
            Server::Local { dir, port } => {
                let options = format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
                    dir.display()
                );
                let log = dir.join("log").display().to_string();
                let out =
                    pg("pg_ctl", &["-D", &Self::data(dir), "-o", &options, "-l", &log, "-w", "-t", "60", "start"]);
                assert!(
                    out.status.success(),
                    "pg_ctl start: {}{}",
                    String::from_utf8_lossy(&out.stderr),
                    std::fs::read_to_string(dir.join("log")).unwrap_or_default()
                );
            }
        }
    }

    /// Stops the server at once, as a crash would.
    pub(crate) fn down(&self) {
        match &self.0 {
            Server::Given { cutter, .. } => cutter.cut(),
            Server::Local { dir, .. } => {
                let out = pg("pg_ctl", &["-D", &Self::data(dir), "-m", "immediate", "-w", "stop"]);
                assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
            }
        }
    }

    /// A fresh database on this server, as a URL.
    pub(crate) fn database(&self) -> String {
        self.database_with("")
    }

    /// A fresh database on this server made with `options` (`CREATE DATABASE name options`), as a URL.
    pub(crate) fn database_with(&self, options: &str) -> String {
        let name = format!("audit_{}", uuid::Uuid::new_v4().simple());
        match &self.0 {
            Server::Local { port, .. } => {
                sql(
                    &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
                    &format!("CREATE DATABASE {name} {options}"),
                );
                format!("postgres://postgres@127.0.0.1:{port}/{name}")
            }
            Server::Given { url, cutter, made } => {
                sql(url, &format!("CREATE DATABASE {name} {options}"));
                made.lock().unwrap().push(name.clone());
                let (user, host, _, query) = url_parts(url);
                cutter.before(&format!("{user}{host}/{name}{query}"))
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        match &self.0 {
            Server::Local { dir, .. } => {
                let _ = pg("pg_ctl", &["-D", &Self::data(dir), "-m", "immediate", "stop"]);
                let _ = std::fs::remove_dir_all(dir);
            }
            Server::Given { url, made, .. } => {
                let names = std::mem::take(&mut *made.lock().unwrap());
                let _ = off(|| {
                    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
                    for name in names {
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?;
                    }
                    Ok::<(), postgres::Error>(())
                });
            }
        }
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
async fn an_unreachable_server_or_a_newer_schema_is_refused_at_start_without_the_password() {
    let err = Postgres::open(&Secret::new("postgres://u:hunter2@127.0.0.1:1/x"), PostgresOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot connect to PostgreSQL at 127.0.0.1 (database x)"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
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

#[tokio::test]
async fn follow_sees_a_replicas_record_committed_after_a_later_one_of_another_replica() {
    let server = PgServer::start();
    let url = server.database();
    let a = open(&url, "gw-a");
    a.submit(&request(0, SystemClock.now_ms())).await.unwrap();
    let mut reader = off(|| PostgresTrail::open(&Secret::new(&url)).unwrap());
    // A transaction of gw-b takes a row id and stays open while gw-a commits a later one.
    let (inserted, commit) = (std::sync::mpsc::channel(), std::sync::mpsc::channel::<()>());
    let (b_url, b_record) = (url.clone(), serde_json::to_string(&request(500, SystemClock.now_ms())).unwrap());
    let b = std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&b_url, postgres::NoTls).unwrap();
        let mut tx = c.transaction().unwrap();
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('gw-b'))", &[]).unwrap();
        let id: i64 = tx
            .query_one(
                "INSERT INTO crossgate_audit (replica, time, phase, request_id, record, prev_hash, hash) \
                 VALUES ('gw-b', '2026-01-01T00:00:00.000Z', 'completed', 'R-500', $1, 'p', 'h') RETURNING id",
                &[&b_record],
            )
            .unwrap()
            .get(0);
        inserted.0.send(id).unwrap();
        commit.1.recv().unwrap();
        tx.commit().unwrap();
    });
    let b_id = inserted.1.recv().unwrap();
    a.submit(&request(1, SystemClock.now_ms())).await.unwrap();
    let a_id: i64 = off(|| {
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.query_one("SELECT max(id) FROM crossgate_audit WHERE replica = 'gw-a'", &[]).unwrap().get(0)
    });
    assert!(a_id > b_id, "gw-a's record is numbered after gw-b's uncommitted one");
    let ids = |reader: &mut PostgresTrail| -> Vec<String> {
        off(|| reader.follow().unwrap()).into_iter().map(|e| e.request_id).collect()
    };
    assert_eq!(ids(&mut reader), ["R-1"]);
    commit.0.send(()).unwrap();
    b.join().unwrap();
    assert_eq!(ids(&mut reader), ["R-500"], "committed later, under a smaller id: still followed");
    assert!(ids(&mut reader).is_empty());
    a.submit(&request(2, SystemClock.now_ms())).await.unwrap();
    assert_eq!(ids(&mut reader), ["R-2"]);
    off(move || drop(reader));
}

#[tokio::test]
async fn a_server_restarted_while_the_store_is_idle_costs_no_record() {
    let server = PgServer::start();
    let url = server.database();
    let store = open(&url, "gw-1");
    fill(&store, 1).await;
    server.down();
    server.up();
    store.submit(&request(1, SystemClock.now_ms())).await.expect("the stale connection is replaced at once");
    assert_eq!(store.spent_keys(SystemClock.now_unix()), vec![]);
    assert_eq!(request_ids(&url, Filter::default()), ["R-0", "R-1"]);
}

#[tokio::test]
async fn a_server_that_stops_answering_fails_records_at_the_deadline_and_the_chain_survives_it() {
    let server = PgServer::start();
    let url = server.database();
    let (_, host, _, _) = url_parts(&url);
    let proxy = Cutter::start(host.to_owned());
    let store = open(&proxy.before(&url), "gw-1");
    fill(&store, 2).await;
    proxy.freeze();
    let submit = |i| {
        let store = &store;
        async move {
            let asked = Instant::now();
            let answer = tokio::time::timeout(Duration::from_secs(20), store.submit(&request(i, SystemClock.now_ms())))
                .await
                .expect("an answer, not a hang");
            (answer, asked.elapsed())
        }
    };
    let (answer, took) = submit(10).await;
    let err = answer.unwrap_err().to_string();
    assert!(err.contains("did not answer within 5 s"), "{err}");
    assert!(took < Duration::from_secs(8), "took {took:?}");
    // A new connection waits as long; after that, records fail at once while the others still wait.
    let (answer, took) = submit(11).await;
    assert!(answer.is_err() && took < Duration::from_secs(8), "{answer:?} {took:?}");
    let (answer, took) = submit(12).await;
    let err = answer.unwrap_err().to_string();
    assert!(err.contains("still waiting") && took < Duration::from_secs(1), "{err} {took:?}");
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.submit(&request(20, SystemClock.now_ms())).await.is_err() {
        assert!(Instant::now() < deadline, "records are written again once the server answers");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What the waiting connections held may have been committed late; the chain is whole either way.
    let ids = request_ids(&url, Filter::default());
    assert!(ids.starts_with(&["R-0".to_owned(), "R-1".to_owned()]) && ids.contains(&"R-20".to_owned()), "{ids:?}");
    assert_eq!(verified(&url).records, ids.len() as u64);
}

#[tokio::test]
async fn audit_tail_prints_every_replicas_new_records() {
    let server = PgServer::start();
    let url = server.database();
    let (a, b) = (open(&url, "gw-a"), open(&url, "gw-b"));
    a.submit(&request(0, SystemClock.now_ms())).await.unwrap(); // written before: not shown
    let dir = std::env::temp_dir().join(format!("crossgate-pgcfg-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_child, seen) = crate::trail::audit_tail(&audit_config(&dir, &format!("store = \"{url}\"")));
    tokio::time::sleep(Duration::from_millis(500)).await; // let it open the store and find its end
    a.submit(&request(1, SystemClock.now_ms())).await.unwrap();
    b.submit(&request(2, SystemClock.now_ms())).await.unwrap();
    a.submit(&request(3, SystemClock.now_ms())).await.unwrap();
    let mut ids = Vec::new();
    while ids.len() < 3 {
        let line = seen.recv_timeout(Duration::from_secs(10)).expect("tail printed the new records");
        ids.push(serde_json::from_str::<AuditEntry>(&line).unwrap().request_id);
    }
    ids.sort();
    assert_eq!(ids, ["R-1", "R-2", "R-3"]);
    assert!(seen.recv_timeout(Duration::from_millis(300)).is_err(), "nothing twice");
}

/// The row id and request id of `replica`'s `n`th row (from 1).
fn nth_row(url: &str, replica: &str, n: i64) -> (i64, String) {
    off(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
        let row = c
            .query_one(
                "SELECT id, request_id FROM crossgate_audit WHERE replica = $1 ORDER BY id OFFSET $2 LIMIT 1",
                &[&replica, &(n - 1)],
            )
            .unwrap();
        (row.get(0), row.get(1))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_walks_a_long_chain_in_chunks_whatever_the_databases_collation() {
    let server = PgServer::start();
    // A collation that orders "alpha" before "Beta", unlike bytes.
    let url = server.database_with("LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8' TEMPLATE template0");
    let store = Arc::new(open(&url, "gw-1"));
    let now = SystemClock.now_ms();
    let tasks: Vec<_> = (0..2500)
        .map(|i| {
            let store = store.clone();
            let mut record = request(i, now);
            record.keys = vec!["alpha".into(), "Beta".into(), format!("k-{i}")];
            tokio::spawn(async move { store.submit(&record).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(verified(&url).records, 2500, "intact, read in three chunks");
    assert_eq!(request_ids(&url, Filter { key: Some("Beta".into()), limit: 5000, ..Filter::default() }).len(), 2500);
    // Two rows far down the chain trade places.
    let ((x, _), (y, _)) = (nth_row(&url, "gw-1", 2200), nth_row(&url, "gw-1", 2201));
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
    let err = on_trail(&url, |t| t.verify().unwrap().unwrap_err().to_string());
    assert!(err.contains("record 2200 (") && err.contains("it follows record 2201"), "{err}");
}
