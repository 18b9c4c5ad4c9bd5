//! Serving: bind, accept (plain TCP or TLS), hand each connection to hyper with the service stack, and
//! stop gracefully on Ctrl-C or SIGTERM: stop accepting, let open connections finish within the drain
//! time, wait for admitted requests' work, and flush the audit.
//!
//! A server runs on `[inbound] threads` serving threads (one per CPU by default), each an event loop of its
//! own accepting from the same listening socket and serving its connections to their end: a request, its
//! upstream call and its audit record run where its connection was accepted, with no hand-over between
//! threads. With one thread, it serves on the runtime that started it.
//!
//! A caller's protocol (HTTP/1 or HTTP/2) is told before hyper reads: over TLS from the handshake's ALPN,
//! over plain TCP from the first bytes, looked at and left on the socket.
//!
//! The inbound limits live here: a header read timeout (a client trickling its headers, or sending
//! nothing at all, is cut off), a bound on header bytes, HTTP/1 half-close served (a client that shuts
//! its write side still gets its answer), and a cap on open connections: one accepted past it gets a
//! single overload answer in its dialect (see [`crate::layer::overload`]) and is closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::Either;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tower::Service;

use crate::audit::AuditSink;
use crate::config::InboundConfig;
use crate::layer::audit::PeerAddr;
use crate::layer::kept::call_ready;
use crate::layer::overload::OverConnectionCap;
use crate::layer::respond::plain;
use crate::layer::{ResBody, boxed};
use crate::shares::{Share, Shares};

/// How often a serving loop wakes by itself. tokio's timer wakes its event loop with a system call (a
/// write to the loop's eventfd) whenever a timer is armed earlier than every timer armed before, even
/// from the loop's own thread. A timer always due within this keeps the timers each request arms (its
/// header, read and request deadlines, seconds away) behind it, so arming them costs no system call.
const TIMER_FLOOR: Duration = Duration::from_millis(250);

/// What a stopping server waits for after its connections: the admitted requests' work, then the
/// audit's last records.
#[derive(Debug, Clone)]
pub struct Drain {
    /// The requests' tasks.
    pub tasks: TaskTracker,
    /// The audit to flush.
    pub audit: Arc<dyn AuditSink>,
}

/// A running server (gateway or simulator) that stops when asked or dropped.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Serves `service` on a bound listener until stopped, with the default inbound limits.
    pub fn spawn<S>(bound: Bound, service: S) -> Running
    where
        S: Service<Request<Incoming>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        Running::spawn_with(bound, service, InboundConfig { threads: 1, ..InboundConfig::default() }, None)
    }

    /// Serves `service` with `inbound` limits; on stop, drains as `drain` says.
    pub fn spawn_with<S>(bound: Bound, service: S, inbound: InboundConfig, drain: Option<Drain>) -> Running
    where
        S: Service<Request<Incoming>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let threads = match inbound.threads {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            n => n,
        };
        let connections = Arc::new(Semaphore::new(inbound.max_connections));
        let task = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            if threads <= 1 {
                bound.serve(service, inbound, connections, stopped).await;
                if let Some(drain) = drain {
                    drain.run(inbound.drain_timeout).await;
                }
                return;
            }
            match Threads::start(bound, threads, &service, inbound, &connections) {
                Ok(running) => running.run(stopped, drain, inbound.drain_timeout).await,
                Err(e) => tracing::error!(error = %e, "The serving threads could not start."),
            }
        });
        Running { addr, stop: Some(stop), task: Some(task) }
    }

    /// Stops accepting, lets open connections and admitted work finish, and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server ends (after a shutdown signal).
    pub async fn join(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drain {
    /// Waits for the admitted requests' work (at most `within`), then for the audit's last records.
    pub async fn run(self, within: Duration) {
        self.tasks.close();
        if tokio::time::timeout(within, self.tasks.wait()).await.is_err() {
            tracing::warn!(left = self.tasks.len(), "Requests still running when the drain time ran out.");
        }
        if let Err(e) = self.audit.flush().await {
            tracing::error!(error = %e, "The audit could not be flushed at shutdown.");
        }
    }
}

/// A bound listener, before it serves.
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// This serving thread's share of the listener's connections, when several threads serve it.
    share: Option<Share>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bound").field("addr", &self.local_addr()).field("tls", &self.tls.is_some()).finish()
    }
}

impl Bound {
    /// Binds `addr`, with TLS from PEM files when given.
    pub async fn bind(addr: SocketAddr, tls: Option<(&Path, &Path)>) -> Result<Bound, String> {
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let tls = match tls {
            None => None,
            Some((cert, key)) => Some(acceptor(cert, key)?),
        };
        Ok(Bound { listener, tls, share: None })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves `service` until `shutdown` completes, then lets open connections finish within the drain
    /// time.
    /// `connections` is the cap on open connections, shared by every thread that serves the listener.
    pub async fn serve<S>(
        self,
        service: S,
        inbound: InboundConfig,
        connections: Arc<Semaphore>,
        shutdown: impl std::future::Future<Output = ()>,
    ) where
        S: Service<Request<Incoming>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        let mut timer_floor = tokio::time::interval(TIMER_FLOOR);
        timer_floor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // A thread ahead of the others leaves the next callers to them until a count changes.
            let changed = self.share.as_ref().map(Share::changed);
            let may_accept = self.share.as_ref().is_none_or(Share::may_accept);
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept(), if may_accept => match accepted {
                    Ok(a) => a,
                    Err(e) => { tracing::warn!(error = %e, "Accept failed."); continue; }
                },
                _ = timer_floor.tick() => continue,
                () = async move {
                    match changed {
                        Some(changed) => changed.await,
                        None => std::future::pending().await,
                    }
                }, if !may_accept => continue,
                () = &mut shutdown => break,
            };
            // One copy of the stack per connection, called in place for each of its requests: a clone
            // per request would count up and down every `Arc` in it, shared with the other threads.
            let svc = std::sync::Mutex::new(service.clone());
            // Past the cap the connection is still served once: its request gets an overload answer.
            let permit = connections.clone().try_acquire_owned().ok();
            let held = self.share.as_ref().map(Share::hold);
            let over_cap = permit.is_none().then_some(OverConnectionCap(inbound.max_connections));
            let peer_addr = PeerAddr::new(peer);
            // The answer is awaited in an async block of its own: handed out bare, its type (the stack's
            // future, named through the service's) is one the TLS path's spawned task cannot be proven
            // `Send` with.
            #[allow(clippy::redundant_async_block)]
            let handler = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(peer_addr.clone());
                host_from_authority(&mut req);
                if let Some(over) = over_cap {
                    req.extensions_mut().insert(over);
                }
                let work = if req.uri().path() == "/healthz" && req.method() == http::Method::GET {
                    let ok: Result<Response<ResBody>, Infallible> = Ok(boxed(plain(StatusCode::OK, "ok")));
                    Either::Left(std::future::ready(ok))
                } else {
                    // Locked only while the call is made; a panic there leaves the stack itself whole.
                    let mut svc = svc.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    Either::Right(call_ready(&mut *svc, req))
                };
                async move { work.await }
            });
            let builder = connection_builder(&inbound, over_cap.is_none());
            match &self.tls {
                None => {
                    let watcher = graceful.watcher();
                    let serving = opening(stream, inbound.header_read_timeout).then(move |opened| match opened {
                        Some((stream, how)) => {
                            let builder = how.serve_with(builder);
                            let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                            Either::Left(watcher.watch(conn))
                        }
                        None => Either::Right(std::future::ready(Ok(()))),
                    });
                    // Futures chained and the permit and the logging mapped on, not an async block: such
                    // a block keeps what it captured apart from what it awaits, two copies of a
                    // connection's state (2 KB each) for every connection.
                    tokio::spawn(serving.map(move |ended| {
                        drop((permit, held));
                        if let Err(e) = ended {
                            tracing::debug!(error = %e, %peer, "Connection ended with an error.");
                        }
                    }));
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    let handshake_timeout = inbound.header_read_timeout;
                    tokio::spawn(async move {
                        let _held = (permit, held);
                        let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed.");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake too slow.");
                                return;
                            }
                        };
                        let builder = Opening::agreed(stream.get_ref().1.alpn_protocol()).serve_with(builder);
                        let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(error = %e, %peer, "Connection ended with an error.");
                        }
                    });
                }
            }
        }
        if tokio::time::timeout(inbound.drain_timeout, graceful.shutdown()).await.is_err() {
            tracing::warn!("Connections still open when the drain time ran out.");
        }
    }
}

/// An HTTP/2 request names its host in `:authority`; signatures sign it as the `Host` header, which such a
/// request may leave out. As RFC 9113 section 8.3.1 asks of an intermediary turning HTTP/2 into HTTP/1.1,
/// a `Host` header is made from `:authority` when absent.
fn host_from_authority<B>(req: &mut Request<B>) {
    if req.version() != http::Version::HTTP_2 || req.headers().contains_key(http::header::HOST) {
        return;
    }
    let host = req.uri().authority().and_then(|a| http::HeaderValue::from_str(a.as_str()).ok());
    if let Some(host) = host {
        req.headers_mut().insert(http::header::HOST, host);
    }
}

/// HTTP/2's name in a TLS handshake (ALPN, RFC 7301), offered first.
const ALPN_H2: &[u8] = b"h2";
/// HTTP/1.1's name in a TLS handshake.
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// HTTP/2's connection preface, which a client with prior knowledge of HTTP/2 sends first (RFC 9113,
/// section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How a caller opened its connection: as its first bytes tell over plain TCP, or as its TLS handshake
/// agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// HTTP/1: bytes that are not HTTP/2's preface, or `http/1.1` agreed.
    Http1,
    /// HTTP/2: its preface whole, or `h2` agreed.
    Http2,
    /// The start of the preface, not yet whole, or no protocol agreed: hyper-util tells it by reading.
    Unclear,
}

impl Opening {
    /// What a TLS handshake's agreed protocol (ALPN) says.
    fn agreed(alpn: Option<&[u8]>) -> Opening {
        match alpn {
            Some(ALPN_H2) => Opening::Http2,
            Some(ALPN_HTTP1) => Opening::Http1,
            _ => Opening::Unclear,
        }
    }

    /// `builder` serving this protocol alone, or telling it by reading when unclear.
    fn serve_with(self, builder: auto::Builder<TokioExecutor>) -> auto::Builder<TokioExecutor> {
        match self {
            Opening::Http1 => builder.http1_only(),
            Opening::Http2 => builder.http2_only(),
            Opening::Unclear => builder,
        }
    }

    /// What the bytes a caller has sent so far (at least one) say.
    fn of(first: &[u8]) -> Opening {
        if !H2_PREFACE.starts_with(first) {
            Opening::Http1
        } else if first.len() == H2_PREFACE.len() {
            Opening::Http2
        } else {
            Opening::Unclear
        }
    }
}

/// Waits, at most `within`, for a plain-TCP caller's first bytes and tells its protocol from them,
/// leaving them on the socket: hyper then reads the first request whole into its read buffer. (Told by
/// reading them off, as hyper-util does, the first 24 bytes reach hyper alone and every connection's read
/// buffer doubles to 16 KiB on the read after.) `None` when the caller closed, failed or sent nothing in
/// time; the connection is then closed.
async fn opening(stream: TcpStream, within: Duration) -> Option<(TcpStream, Opening)> {
    let mut first = [0u8; H2_PREFACE.len()];
    match tokio::time::timeout(within, stream.peek(&mut first)).await {
        Ok(Ok(0)) => None,
        Ok(Ok(seen)) => Some((stream, Opening::of(&first[..seen]))),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "A connection failed before its first bytes.");
            None
        }
        Err(_) => {
            tracing::debug!("A connection sent nothing within the header read timeout; closed.");
            None
        }
    }
}

/// The serving threads of one listener, each with an event loop of its own.
struct Threads {
    /// Per thread: tells it to stop accepting.
    stops: Vec<tokio::sync::watch::Sender<bool>>,
    /// Per thread: resolves when its connections have closed (or the drain time ran out).
    served: Vec<oneshot::Receiver<()>>,
    /// Tells every thread it may end its event loop (the admitted work has been waited for).
    release: tokio::sync::watch::Sender<bool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Threads {
    /// Starts `count` threads serving `bound`'s socket.
    fn start<S>(
        bound: Bound,
        count: usize,
        service: &S,
        inbound: InboundConfig,
        connections: &Arc<Semaphore>,
    ) -> std::io::Result<Threads>
    where
        S: Service<Request<Incoming>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let listener = bound.listener.into_std()?;
        let (release, released) = tokio::sync::watch::channel(false);
        let mut threads = Threads { stops: Vec::new(), served: Vec::new(), release, handles: Vec::new() };
        let shares = Shares::new(count);
        for index in 0..count {
            let listener = listener.try_clone()?;
            let share = shares.of(index);
            let tls = bound.tls.clone();
            let service = service.clone();
            let connections = connections.clone();
            let (stop, mut stopping) = tokio::sync::watch::channel(false);
            let (served, on_served) = oneshot::channel();
            let mut released = released.clone();
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let handle = std::thread::Builder::new().name(format!("crossgate-serve-{index}")).spawn(move || {
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!(error = %e, "A serving thread could not take the listener.");
                            return;
                        }
                    };
                    let shutdown = async move {
                        let _ = stopping.wait_for(|stop| *stop).await;
                    };
                    Bound { listener, tls, share: Some(share) }.serve(service, inbound, connections, shutdown).await;
                    let _ = served.send(());
                    // The requests still at work run on this thread: it stays until they are waited for.
                    let _ = released.wait_for(|go| *go).await;
                });
            })?;
            threads.stops.push(stop);
            threads.served.push(on_served);
            threads.handles.push(handle);
        }
        Ok(threads)
    }

    /// Serves until `stopped`, then stops every thread, drains as `drain` says, and lets them end.
    async fn run(self, stopped: impl std::future::Future<Output = ()>, drain: Option<Drain>, within: Duration) {
        stopped.await;
        for stop in &self.stops {
            let _ = stop.send(true);
        }
        for served in self.served {
            let _ = served.await;
        }
        if let Some(drain) = drain {
            drain.run(within).await;
        }
        let _ = self.release.send(true);
        let handles = self.handles;
        let _ = tokio::task::spawn_blocking(move || {
            for handle in handles {
                let _ = handle.join();
            }
        })
        .await;
    }
}

/// hyper's per-connection settings from the inbound limits.
fn connection_builder(inbound: &InboundConfig, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(inbound.header_read_timeout)
        .max_buf_size(inbound.max_header_bytes)
        .half_close(true)
        .keep_alive(keep_alive);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(inbound.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_tell_http1_from_http2() {
        assert_eq!(Opening::of(b"POST / HTTP/1.1\r\n"), Opening::Http1);
        assert_eq!(Opening::of(b"GET"), Opening::Http1);
        assert_eq!(Opening::of(b"PRX"), Opening::Http1);
        assert_eq!(Opening::of(H2_PREFACE), Opening::Http2);
        assert_eq!(Opening::of(b"P"), Opening::Unclear);
        assert_eq!(Opening::of(b"PRI * HTTP/2.0\r\n"), Opening::Unclear);
    }

    #[test]
    fn the_protocol_a_tls_handshake_agreed_is_served() {
        assert_eq!(Opening::agreed(Some(b"h2")), Opening::Http2);
        assert_eq!(Opening::agreed(Some(b"http/1.1")), Opening::Http1);
        assert_eq!(Opening::agreed(None), Opening::Unclear);
    }

    #[test]
    fn an_http2_request_without_host_gets_it_from_its_authority() {
        let mut h2 =
            Request::builder().version(http::Version::HTTP_2).uri("http://cvm.example:8080/").body(()).unwrap();
        host_from_authority(&mut h2);
        assert_eq!(h2.headers()[http::header::HOST], "cvm.example:8080");

        let mut named = Request::builder()
            .version(http::Version::HTTP_2)
            .uri("http://cvm.example/")
            .header("host", "signed.example")
            .body(())
            .unwrap();
        host_from_authority(&mut named);
        assert_eq!(named.headers()[http::header::HOST], "signed.example", "a Host sent is kept");

        let mut h1 = Request::builder().uri("http://cvm.example/").body(()).unwrap();
        host_from_authority(&mut h1);
        assert!(h1.headers().get(http::header::HOST).is_none(), "HTTP/1 requests are left as sent");
    }
}
