//! The PostgreSQL audit store (`[audit] store = "postgres://..."`), for fleets: every replica writes
//! one trail, each record naming its replica (`[audit] replica`), each replica's records a hash chain of
//! their own.
//!
//! One writer thread per gateway takes the queue (the synchronous `postgres` client never runs on a
//! serving thread). A request's record is queued and its receipt resolves after the transaction that
//! holds it commits: the writer takes everything queued and has it written in one transaction, under
//! the replica's advisory lock (so that two processes misconfigured with the same replica name still
//! keep one valid chain), in two statements whatever the group's size, then answers every receipt with
//! the commit's result. A commit is durable in PostgreSQL's WAL, so a `kill -9` of crossgate loses
//! nothing it acknowledged.
//!
//! The connection itself lives on a thread of its own, which the writer waits for until a deadline
//! (5 s for a group): when the server goes away, the group being written fails at once (its requests
//! are refused unless `on_failure = "forward"`), the connection is dropped, and the next group connects
//! again (with a 2-second connect timeout unless the URL sets one); a server that stops answering
//! without closing the connection (frozen, or a cut cable) fails the group at the deadline, and that
//! connection's thread is left to finish by itself: what it held may still commit when the server
//! answers, under the replica's lock, so the chain stays whole, and the server ends a transaction of
//! ours left idle for 10 s (a client cut off mid-transaction would otherwise hold the replica's lock).
//! Nothing waits for the server to come back. A connection lost while idle (the server restarted) is
//! replaced at the next group's `BEGIN`, which fails nothing.
//!
//! Retention (`retain_days`) deletes each replica's own old rows at start and daily, in one
//! transaction with a segment record naming the hash of the last row deleted. The schema lives in
//! [`schema`], the reading side in [`trail`]. No TLS: the client connects with `NoTls`, so reach the
//! server over loopback, a unix socket or a trusted network, or put TLS in front of it.

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use super::chain::{self, GENESIS, Segment, SegmentReason};
use super::columns::Columns;
use super::{AuditEntry, AuditError, AuditReceipt, AuditSink, SpentKey, rfc3339};
use crate::secret::Secret;
use schema::Linked;

pub mod schema;
pub mod trail;

/// How long a connection attempt may take when the URL says nothing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How many records one transaction holds at most.
const MAX_GROUP: usize = 1024;
/// How long connecting and migrating the schema at start may take.
const OPEN_DEADLINE: Duration = Duration::from_secs(10);
/// How long a group's transaction may take before its records fail (as SQLite waits for a lock).
const WRITE_DEADLINE: Duration = Duration::from_secs(5);
/// How long reading the spent replay keys may take.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// How long one retention run may take.
const RETENTION_DEADLINE: Duration = Duration::from_secs(600);
/// How many connection threads may be running at once, those still waiting for a server that missed a
/// deadline included; past it, work fails at once until one of them ends.
const MAX_WAITING: usize = 2;
/// How long the server keeps a transaction of ours open while nothing arrives on it (a client cut off
/// mid-transaction holds its replica's lock until then).
const IDLE_IN_TRANSACTION: &str = "10s";
/// How long sent data may go unacknowledged before the connection is given up (unless the URL says).
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often retention runs after the start.
const RETENTION_EVERY: Duration = Duration::from_secs(86_400);

/// How the store is kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PostgresOptions {
    /// The name this gateway's records carry (its chain).
    pub replica: String,
    /// Delete this replica's records older than this many days (none: keep everything).
    pub retain_days: Option<u32>,
}

type Ack = tokio::sync::oneshot::Sender<Result<(), AuditError>>;

enum Job {
    Record(Box<AuditEntry>, Ack),
    Flush(Ack),
    Spent(i64, mpsc::Sender<Result<Vec<SpentKey>, String>>),
    Retain(u64, mpsc::Sender<Result<u64, String>>),
    Ready(mpsc::Sender<Result<(), String>>),
}

/// The PostgreSQL store.
#[derive(Debug)]
pub struct Postgres {
    jobs: mpsc::Sender<Job>,
}

/// Reads a connection URL; the error never repeats it (it may hold a password).
pub fn config(url: &Secret) -> Result<postgres::Config, String> {
    let mut config = postgres::Config::from_str(url.expose()).map_err(|e| {
        format!("the PostgreSQL URL cannot be read ({}); write postgres://USER:PASSWORD@HOST/DB", redact(&e, url))
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("crossgate");
    }
    Ok(config)
}

/// An error's text with the URL's secret parts taken out, should a driver ever repeat them.
fn redact(e: &dyn std::fmt::Display, url: &Secret) -> String {
    let mut text = e.to_string();
    if let Ok(config) = postgres::Config::from_str(url.expose())
        && let Some(password) = config.get_password()
        && !password.is_empty()
    {
        text = text.replace(&*String::from_utf8_lossy(password), "***");
    }
    text.replace(url.expose(), "postgres://***")
}

/// A database error as text: the server's own message and code when it sent one.
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Connects; the error names the server's answer, never the password.
pub fn connect(config: &postgres::Config, url: &Secret) -> Result<Client, String> {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    config.connect(NoTls).map_err(|e| {
        format!(
            "cannot connect to PostgreSQL at {} (database {}): {}",
            hosts.join(","),
            config.get_dbname().unwrap_or("-"),
            redact(&e, url)
        )
    })
}

impl Postgres {
    /// Connects to `url`, creates or migrates the schema, runs retention once, and starts the writer.
    pub fn open(url: &Secret, options: PostgresOptions) -> std::io::Result<Postgres> {
        let config = config(url).map_err(std::io::Error::other)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, opened) = mpsc::channel::<Result<(), String>>();
        let url = url.clone();
        std::thread::Builder::new().name("audit-postgres".into()).spawn(move || {
            let mut writer = Writer::new(config, url, options);
            let started = writer.start();
            let ok = started.is_ok();
            let _ = ready.send(started);
            if ok {
                writer.run(&queue);
            }
        })?;
        match opened.recv() {
            Ok(Ok(())) => Ok(Postgres { jobs }),
            Ok(Err(e)) => Err(std::io::Error::other(e)),
            Err(_) => Err(std::io::Error::other("the PostgreSQL audit writer stopped while starting")),
        }
    }

    /// Runs retention as if the time were `now_ms` (Unix milliseconds); returns the rows deleted.
    pub fn retain(&self, now_ms: u64) -> Result<u64, AuditError> {
        let (reply, answer) = mpsc::channel();
        self.jobs.send(Job::Retain(now_ms, reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?.map_err(AuditError)
    }
}

fn stopped() -> AuditError {
    AuditError("the PostgreSQL audit writer stopped".to_owned())
}

impl AuditSink for Postgres {
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt {
        let (ack, receipt) = AuditReceipt::pending();
        if self.jobs.send(Job::Record(Box::new(entry.clone()), ack)).is_err() {
            return AuditReceipt::done(Err(stopped()));
        }
        receipt
    }

    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        let (reply, answer) = mpsc::channel();
        let result = self
            .jobs
            .send(Job::Spent(now, reply))
            .map_err(|_| stopped().0)
            .and_then(|()| answer.recv().map_err(|_| stopped().0)?);
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "Spent replay keys could not be read back from the audit database.");
            Vec::new()
        })
    }

    fn ready(&self) -> Result<(), String> {
        let (reply, answer) = mpsc::channel();
        self.jobs.send(Job::Ready(reply)).map_err(|_| stopped().0)?;
        answer.recv_timeout(CONNECT_TIMEOUT * 2).map_err(|_| "the PostgreSQL audit writer did not answer".to_owned())?
    }

    fn flush(&self) -> AuditReceipt {
        let (ack, receipt) = AuditReceipt::pending();
        if self.jobs.send(Job::Flush(ack)).is_err() {
            return AuditReceipt::done(Err(stopped()));
        }
        receipt
    }
}

/// The connection and what it writes for, on a connection thread of its own.
struct Session {
    config: postgres::Config,
    url: Secret,
    client: Option<Client>,
    options: PostgresOptions,
}

/// Work for a connection thread.
type Task = Box<dyn FnOnce(&mut Session) + Send>;

/// The writer thread's state: the queue's side. Every piece of database work goes to the connection
/// thread and is waited for until its deadline; a connection thread that misses one is left to finish
/// (or fail) by itself, and the next piece of work gets a new one.
struct Writer {
    config: postgres::Config,
    url: Secret,
    options: PostgresOptions,
    /// The connection thread in use, if any.
    line: Option<mpsc::Sender<Task>>,
    /// Connection threads still running, the one in use included.
    running: Arc<AtomicUsize>,
}

/// Counts a connection thread as running until it ends, however it ends.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    fn new(config: postgres::Config, url: Secret, options: PostgresOptions) -> Writer {
        Writer { config, url, options, line: None, running: Arc::new(AtomicUsize::new(0)) }
    }

    /// Connects, creates or migrates the schema, and runs retention once.
    fn start(&mut self) -> Result<(), String> {
        self.call(OPEN_DEADLINE, Session::open)?;
        self.call(RETENTION_DEADLINE, |s| s.retain(now_ms())).map(drop)
    }

    /// Runs `work` on the connection thread (started if there is none), waiting for it until `deadline`.
    fn call<T: Send + 'static>(
        &mut self,
        deadline: Duration,
        work: impl FnOnce(&mut Session) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        if self.line.is_none() {
            let waiting = self.running.load(Ordering::SeqCst);
            if waiting >= MAX_WAITING {
                return Err(format!(
                    "the audit database has not answered: {waiting} connections to it are still waiting for an answer"
                ));
            }
            self.line = Some(self.spawn()?);
        }
        let (reply, answer) = mpsc::channel();
        let task: Task = Box::new(move |session| {
            let _ = reply.send(work(session));
        });
        if self.line.as_ref().is_none_or(|line| line.send(task).is_err()) {
            self.line = None;
            return Err("the audit database's connection thread stopped".to_owned());
        }
        match answer.recv_timeout(deadline) {
            Ok(result) => result,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // The thread ends once the server answers or its connection fails; its work may still
                // commit then (under the replica's lock, so the chain stays whole).
                self.line = None;
                Err(format!("the audit database did not answer within {} s", deadline.as_secs()))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                self.line = None;
                Err("the audit database's connection thread stopped".to_owned())
            }
        }
    }

    /// Starts a connection thread (it connects at its first task).
    fn spawn(&self) -> Result<mpsc::Sender<Task>, String> {
        let (line, tasks) = mpsc::channel::<Task>();
        let mut session =
            Session { config: self.config.clone(), url: self.url.clone(), client: None, options: self.options.clone() };
        self.running.fetch_add(1, Ordering::SeqCst);
        let running = Running(self.running.clone());
        std::thread::Builder::new()
            .name("audit-postgres-db".into())
            .spawn(move || {
                let _running = running;
                while let Ok(task) = tasks.recv() {
                    task(&mut session);
                }
            })
            .map_err(|e| format!("cannot start the audit database's connection thread: {e}"))?;
        Ok(line)
    }

    /// Serves jobs until the store is dropped.
    fn run(&mut self, queue: &mpsc::Receiver<Job>) {
        let mut last_retention = Instant::now();
        while let Ok(first) = queue.recv() {
            let mut records = Vec::new();
            let mut acks = Vec::new();
            let mut flushes = Vec::new();
            let mut job = Some(first);
            while let Some(next) = job.take() {
                match next {
                    Job::Record(entry, ack) => {
                        records.push(entry);
                        acks.push(ack);
                    }
                    Job::Flush(ack) => flushes.push(ack),
                    Job::Spent(now, reply) => {
                        let _ = reply.send(self.call(READ_DEADLINE, move |s| s.spent(now)));
                    }
                    Job::Retain(now, reply) => {
                        let _ = reply.send(self.call(RETENTION_DEADLINE, move |s| s.retain(now)));
                    }
                    Job::Ready(reply) => {
                        let _ = reply.send(self.call(WRITE_DEADLINE, |s| s.ping()));
                    }
                }
                if records.len() < MAX_GROUP {
                    job = queue.try_recv().ok();
                }
            }
            if !records.is_empty() {
                let count = records.len();
                let result = self.call(WRITE_DEADLINE, move |s| s.append(&records)).map_err(AuditError);
                if let Err(e) = &result {
                    tracing::error!(error = %e, records = count, "Audit records could not be written.");
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
            for ack in flushes {
                let _ = ack.send(Ok(()));
            }
            if self.options.retain_days.is_some() && last_retention.elapsed() >= RETENTION_EVERY {
                last_retention = Instant::now();
                if let Err(e) = self.call(RETENTION_DEADLINE, |s| s.retain(now_ms())) {
                    tracing::error!(error = %e, "Audit retention failed; it runs again tomorrow.");
                }
            }
        }
    }
}

/// Why work on the connection failed.
enum Fault {
    /// Nothing reached the database: the connection was found closed at the work's first statement
    /// (a `BEGIN`, or a read), so the work may run again on a new connection.
    Stale(String),
    /// Anything else, the outcome of a `COMMIT` cut short included.
    Failed(String),
}

impl Fault {
    /// The failure of a work's first statement, which changes nothing.
    fn first(e: &postgres::Error) -> Fault {
        if e.is_closed() { Fault::Stale(describe(e)) } else { Fault::Failed(describe(e)) }
    }

    /// The failure of a later statement.
    fn later(e: &postgres::Error) -> Fault {
        Fault::Failed(describe(e))
    }

    fn into_text(self) -> String {
        match self {
            Fault::Stale(e) | Fault::Failed(e) => e,
        }
    }
}

impl From<String> for Fault {
    fn from(e: String) -> Fault {
        Fault::Failed(e)
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl Session {
    /// Connects and creates or migrates the schema.
    fn open(&mut self) -> Result<(), String> {
        let client = self.client().map_err(Fault::into_text)?;
        schema::migrate(client).map_err(|e| format!("the PostgreSQL audit schema: {e}"))
    }

    /// The connection, made again if it was lost.
    fn client(&mut self) -> Result<&mut Client, Fault> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let mut client = connect(&self.config, &self.url).map_err(Fault::Failed)?;
            client
                .batch_execute(&format!("SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'"))
                .map_err(|e| Fault::Failed(describe(&e)))?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| Fault::Failed("no connection".to_owned()))
    }

    /// Runs `work` on the connection; on failure the connection is dropped, so the next job connects
    /// afresh. A connection that turns out to have closed while it was idle (the server restarted) before
    /// `work` sent anything is replaced at once and `work` runs again on the new one.
    fn with_client<T>(&mut self, work: impl Fn(&mut Client, &str) -> Result<T, Fault>) -> Result<T, String> {
        let replica = self.options.replica.clone();
        let fresh = self.client.as_ref().is_none_or(Client::is_closed);
        let mut result = self.client().and_then(|c| work(c, &replica));
        if let Err(Fault::Stale(e)) = &result
            && !fresh
        {
            tracing::info!(error = %e, "The audit database's connection was lost while idle; connecting again.");
            self.client = None;
            result = self.client().and_then(|c| work(c, &replica));
        }
        result.map_err(|fault| {
            self.client = None;
            fault.into_text()
        })
    }

    fn append(&mut self, records: &[Box<AuditEntry>]) -> Result<(), String> {
        self.with_client(|client, replica| {
            let failed = |e: postgres::Error| Fault::later(&e);
            let mut tx = client.transaction().map_err(|e| Fault::first(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&replica]).map_err(failed)?;
            let mut prev = schema::last_hash(&mut tx, replica).map_err(failed)?.unwrap_or_else(|| GENESIS.to_owned());
            let mut linked = Vec::with_capacity(records.len());
            for record in records {
                let json = super::json::entry_text(record);
                let hash = chain::link(&prev, json.as_bytes());
                linked.push(Linked {
                    columns: Columns::of(record),
                    json,
                    prev: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                });
            }
            schema::insert(&mut tx, replica, &linked)?;
            tx.commit().map_err(failed)
        })
        .map_err(|e| format!("the audit database: {e}"))
    }

    /// Whether the database answers now.
    fn ping(&mut self) -> Result<(), String> {
        self.with_client(|client, _| client.simple_query("SELECT 1").map(drop).map_err(|e| Fault::first(&e)))
    }

    fn spent(&mut self, now: i64) -> Result<Vec<SpentKey>, String> {
        self.with_client(|client, _| {
            let e = |e: postgres::Error| Fault::first(&e);
            let rows = client
                .query(
                    "SELECT replay_key, replay_until FROM crossgate_audit WHERE replay_until >= $1 \
                     AND replay_key IS NOT NULL AND phase = 'admitted'",
                    &[&now],
                )
                .map_err(e)?;
            Ok(rows
                .iter()
                .map(|r| SpentKey { key: String::from_utf8_lossy(r.get::<_, &[u8]>(0)).into_owned(), until: r.get(1) })
                .collect())
        })
    }

    /// Deletes this replica's rows up to the last one older than `retain_days` (keeping every
    /// admission whose replay key is still spent, and all after it), with a segment record naming the
    /// cut.
    fn retain(&mut self, now_ms: u64) -> Result<u64, String> {
        let Some(days) = self.options.retain_days else { return Ok(0) };
        self.with_client(|client, replica| {
            let e = |e: postgres::Error| Fault::later(&e);
            let cutoff = rfc3339(now_ms.saturating_sub(u64::from(days) * 86_400_000));
            let now_secs = i64::try_from(now_ms / 1000).unwrap_or(i64::MAX);
            let mut tx = client.transaction().map_err(|e| Fault::first(&e))?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&replica]).map_err(e)?;
            let old: Option<i64> = tx
                .query_one("SELECT max(id) FROM crossgate_audit WHERE replica = $1 AND time < $2", &[&replica, &cutoff])
                .map_err(e)?
                .get(0);
            let spent: Option<i64> = tx
                .query_one(
                    "SELECT min(id) FROM crossgate_audit WHERE replica = $1 AND replay_until >= $2",
                    &[&replica, &now_secs],
                )
                .map_err(e)?
                .get(0);
            let Some(cut) = old.map(|o| spent.map_or(o, |s| o.min(s - 1))) else { return Ok(0) };
            let Some(cut_hash) = tx
                .query_opt("SELECT hash FROM crossgate_audit WHERE id = $1 AND replica = $2", &[&cut, &replica])
                .map_err(e)?
                .map(|r| r.get::<_, String>(0))
            else {
                return Ok(0);
            };
            tx.execute(
                "DELETE FROM crossgate_audit_terms WHERE record_id IN \
                 (SELECT id FROM crossgate_audit WHERE replica = $1 AND id <= $2)",
                &[&replica, &cut],
            )
            .map_err(e)?;
            let dropped = tx
                .execute("DELETE FROM crossgate_audit WHERE replica = $1 AND id <= $2", &[&replica, &cut])
                .map_err(e)?;
            let last = schema::last_hash(&mut tx, replica).map_err(e)?.unwrap_or_else(|| cut_hash.clone());
            let mut segment = Segment::new(rfc3339(now_ms), SegmentReason::Retention);
            segment.dropped = dropped;
            segment.cut_hash = Some(cut_hash);
            segment.cut_before = Some(cutoff);
            let json = serde_json::to_string(&segment).map_err(|e| e.to_string())?;
            let hash = chain::link(&last, json.as_bytes());
            let columns = Columns::of_segment(&segment);
            schema::insert(&mut tx, replica, &[Linked { columns, json, prev: last, hash }])?;
            tx.commit().map_err(e)?;
            tracing::info!(records = dropped, %replica, "Audit retention deleted old records.");
            Ok(dropped)
        })
    }
}
