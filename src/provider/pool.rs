//! The keep-alive connections to one upstream: opened on demand (TCP, then TLS for `https`), kept idle
//! up to a bound, and driven by the request that uses them.
//!
//! A connection is not a task of its own. The request's task drives it (hyper's HTTP/1 connection
//! future) while it waits for the reply, so an exchange costs no wake-up of another task and no channel
//! between tasks; an idle connection is driven by nobody. Before reuse, an idle connection is polled
//! once: one the upstream closed meanwhile is dropped there and then, not written to. Idle connections
//! are kept per thread (a connection is watched by the event loop of the thread that opened it), so a
//! request takes one its own thread opened.
//!
//! The connections in use at once are bounded per thread (`max_connections`): past the bound, calls wait
//! for a turn in the order they came, within their connect timeout. A gateway with a thousand callers
//! at once then holds a few hundred upstream connections, not a thousand (each with its buffers), and
//! the upstream is not flooded with connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Context;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper::client::conn::http1;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::per_thread::PerThread;

/// How long an idle connection is kept.
const IDLE_FOR: Duration = Duration::from_secs(90);

type Io = MaybeHttpsStream<TokioIo<TcpStream>>;

/// The request body every upstream call sends.
pub(crate) type Body = Full<Bytes>;

/// One open connection: the handle requests are sent through and the protocol state that moves them.
pub(crate) struct Connection {
    sender: http1::SendRequest<Body>,
    driver: http1::Connection<Io, Body>,
    /// The protocol state ended (the upstream closed, or an error): never to be used again.
    ended: bool,
    /// Taken from the idle set rather than opened for this request.
    pub(crate) reused: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("ended", &self.ended).field("reused", &self.reused).finish()
    }
}

impl Connection {
    /// Runs `work` (which uses the sender) while driving the connection, until `work` completes.
    pub(crate) async fn drive<'a, F, T>(&'a mut self, work: impl FnOnce(&'a mut http1::SendRequest<Body>) -> F) -> T
    where
        F: Future<Output = T> + 'a,
    {
        let Connection { sender, driver, ended, .. } = self;
        let mut work = std::pin::pin!(work(sender));
        std::future::poll_fn(move |cx| {
            if !*ended && Pin::new(&mut *driver).poll(cx).is_ready() {
                *ended = true;
            }
            work.as_mut().poll(cx)
        })
        .await
    }

    /// Still usable: not ended, and the upstream has not closed it (polled once, without waiting).
    fn alive(&mut self) -> bool {
        if self.ended || self.sender.is_closed() {
            return false;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if Pin::new(&mut self.driver).poll(&mut cx).is_ready() {
            self.ended = true;
        }
        !self.ended && !self.sender.is_closed()
    }
}

struct Idle {
    connection: Box<Connection>,
    since: Instant,
}

/// One thread's share of a pool.
struct Slot {
    /// Idle connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    /// Turns at using a connection, one per connection in use: when all are taken, further calls wait
    /// in the order they came.
    turns: Semaphore,
}

/// The connections to one upstream.
pub(crate) struct Pool {
    origin: Uri,
    connector: HttpsConnector<HttpConnector>,
    slots: PerThread<Slot>,
    /// The most idle connections kept per thread.
    max_idle: usize,
    /// The most connections in use at once per thread.
    max_in_use: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("origin", &self.origin)
            .field("max_idle", &self.max_idle)
            .field("max_in_use", &self.max_in_use)
            .finish()
    }
}

/// A call's turn at using one connection of its thread; the turn ends when this is dropped.
pub(crate) type Turn<'a> = tokio::sync::SemaphorePermit<'a>;

impl Pool {
    /// Connections to `origin` (`scheme://authority`) through `connector`, at most `max_in_use` in use
    /// and `max_idle` kept idle per thread.
    pub(crate) fn new(
        origin: Uri,
        connector: HttpsConnector<HttpConnector>,
        max_idle: usize,
        max_in_use: usize,
    ) -> Arc<Pool> {
        let max_in_use = max_in_use.clamp(1, Semaphore::MAX_PERMITS);
        let slots = PerThread::new(|| Slot { idle: Mutex::default(), turns: Semaphore::new(max_in_use) });
        Arc::new(Pool { origin, connector, slots, max_idle, max_in_use })
    }

    /// Waits for this thread's turn to use a connection: at most `max_in_use` calls of a thread use one
    /// at once, and the rest wait, first come first served. `None` only if the turns were closed,
    /// which nothing does.
    pub(crate) async fn turn(&self) -> Option<Turn<'_>> {
        self.slots.mine().turns.acquire().await.ok()
    }

    /// The most connections in use at once per thread.
    pub(crate) fn max_in_use(&self) -> usize {
        self.max_in_use
    }

    /// The most recently used idle connection that is still open, if any.
    ///
    /// Connections are boxed from opening to closing: the HTTP/1 state is nearly 2 KB, and a request
    /// that takes one, holds it across its exchange and gives it back moves a pointer, not the state.
    pub(crate) fn take(&self) -> Option<Box<Connection>> {
        let now = Instant::now();
        loop {
            let mut idle = self.slots.mine().idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()?;
            if now.duration_since(idle.since) < IDLE_FOR && idle.connection.alive() {
                idle.connection.reused = true;
                return Some(idle.connection);
            }
        }
    }

    /// Opens a new connection (TCP, TLS for `https`, and the HTTP/1 handshake).
    pub(crate) async fn open(&self) -> Result<Box<Connection>, String> {
        let io = self.connector.clone().oneshot(self.origin.clone()).await.map_err(|e| error_chain(&*e))?;
        let (sender, driver) = http1::handshake(io).await.map_err(|e| error_chain(&e))?;
        Ok(Box::new(Connection { sender, driver, ended: false, reused: false }))
    }

    /// Gives a connection back after an exchange that read its reply whole; one that ended, or past the
    /// idle bound, is closed.
    pub(crate) fn give_back(&self, mut connection: Box<Connection>) {
        if !connection.alive() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.slots.mine().idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The oldest come first: expired ones are dropped from the front.
        let expired = idle.iter().take_while(|i| now.duration_since(i.since) >= IDLE_FOR).count();
        idle.drain(..expired);
        if idle.len() < self.max_idle {
            idle.push(Idle { connection, since: now });
        }
    }
}

/// An error and its sources, `: `-separated.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
