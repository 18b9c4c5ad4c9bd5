//! One HTTP exchange with an upstream over its keep-alive connections ([`super::pool`]; HTTPS by default,
//! webpki roots plus an optional CA file).
//!
//! An exchange is bounded three ways: the connect timeout (until a connection, TCP and TLS, is ready), the
//! read timeout (from then until the reply's head, and between two chunks of its body) and the call's
//! deadline, which bounds everything. A failure says how far the exchange got ([`Stage`]): before a
//! connection was ready nothing was sent; after, the request may have reached the upstream.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use super::pool::{Body, Connection, Pool, Turn, error_chain};

/// The most bytes read from an upstream reply.
pub(crate) const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// A reply as received.
#[derive(Debug, Clone)]
pub struct RawReply {
    /// HTTP status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// How far a failed exchange got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// No connection was ready: nothing was sent.
    Connect,
    /// Connected (the request may have gone out), no reply head yet.
    Head,
    /// The reply's head arrived with this status; its body did not arrive whole.
    Body(u16),
}

/// Why an exchange failed, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// How far it got.
    pub(crate) stage: Stage,
    /// A time limit ended it (rather than the peer or the network).
    pub(crate) timed_out: bool,
    /// What happened, in words (never a header or body value).
    pub(crate) why: String,
}

impl Failure {
    /// The reply's status, when its head arrived.
    pub(crate) fn status(&self) -> Option<u16> {
        match self.stage {
            Stage::Body(status) => Some(status),
            Stage::Connect | Stage::Head => None,
        }
    }
}

/// The time limits of one exchange.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Until a connection is ready.
    pub(crate) connect: Duration,
    /// Silence once connected: until the head, and between body chunks.
    pub(crate) read: Duration,
    /// The call's deadline, which no wait passes.
    pub(crate) deadline: Instant,
}

/// Sends `request` and reads the whole reply within `limits`, over an idle connection of `pool` or a new
/// one, once this thread has a turn at a connection. A request that an idle connection could not take (the
/// upstream had closed it) goes over another one: nothing of it was sent.
pub(crate) async fn exchange(pool: &Pool, request: Request<Body>, limits: Limits) -> Result<RawReply, Failure> {
    let started = Instant::now();
    let connect_by = limits.deadline.min(started + limits.connect);
    // Held until the exchange ends: one of the thread's turns at a connection.
    let Ok(Some(turn)) = tokio::time::timeout_at(connect_by, pool.turn()).await else {
        return Err(Failure {
            stage: Stage::Connect,
            timed_out: true,
            why: format!(
                "no connection free within {} ms ({}): {} in use, the most this thread uses at once",
                ms(connect_by - started),
                connect_limit(connect_by, limits),
                pool.max_in_use()
            ),
        });
    };
    // Boxed, and only once the turn is held: the exchange's state (the HTTP/1 connection and its
    // futures, three timers) is kilobytes, and the calls waiting for a turn (hundreds, with a thousand
    // callers at once) need not each hold it.
    Box::pin(over_a_connection(pool, turn, request, limits, started, connect_by)).await
}

/// The exchange once its turn is held: takes or opens a connection by `connect_by`, and sends.
async fn over_a_connection(
    pool: &Pool,
    _turn: Turn<'_>,
    mut request: Request<Body>,
    limits: Limits,
    started: Instant,
    connect_by: Instant,
) -> Result<RawReply, Failure> {
    loop {
        let mut connection = match pool.take() {
            Some(connection) => connection,
            // Boxed: opening (TCP, then TLS) is rare on keep-alive connections and its state is large.
            None => match tokio::time::timeout_at(connect_by, Box::pin(pool.open())).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(why)) => return Err(Failure { stage: Stage::Connect, timed_out: false, why }),
                Err(_) => {
                    return Err(Failure {
                        stage: Stage::Connect,
                        timed_out: true,
                        why: format!(
                            "no connection within {} ms ({})",
                            ms(connect_by - started),
                            connect_limit(connect_by, limits)
                        ),
                    });
                }
            },
        };
        match send(&mut connection, request, limits).await {
            Sent::Done(result) => {
                if result.is_ok() {
                    pool.give_back(connection);
                }
                return result;
            }
            Sent::NotSent(back, why) => {
                if !connection.reused || Instant::now() >= limits.deadline {
                    return Err(Failure { stage: Stage::Connect, timed_out: false, why });
                }
                request = back;
            }
        }
    }
}

/// Which limit `connect_by` is, in words.
fn connect_limit(connect_by: Instant, limits: Limits) -> &'static str {
    if connect_by == limits.deadline { "the call's time limit" } else { "the connect timeout" }
}

/// How a request went over one connection.
enum Sent {
    /// The connection could not take it: nothing of it was sent.
    NotSent(Request<Body>, String),
    /// It was sent (or may have been), and this is how it ended.
    Done(Result<RawReply, Failure>),
}

/// One request over `connection`, driving the connection until the reply is read whole.
async fn send(connection: &mut Connection, request: Request<Body>, limits: Limits) -> Sent {
    let connected = Instant::now();
    let head_by = limits.deadline.min(connected + limits.read);
    connection
        .drive(move |sender| async move {
            match tokio::time::timeout_at(head_by, sender.ready()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Sent::NotSent(request, error_chain(&e)),
                Err(_) => {
                    return Sent::Done(Err(Failure {
                        stage: Stage::Connect,
                        timed_out: true,
                        why: format!("the connection was not ready within {} ms", ms(head_by - connected)),
                    }));
                }
            }
            let response = match tokio::time::timeout_at(head_by, sender.try_send_request(request)).await {
                Ok(Ok(response)) => response,
                Ok(Err(mut e)) => {
                    let why = error_chain(e.error());
                    return match e.take_message() {
                        Some(request) => Sent::NotSent(request, why),
                        None => Sent::Done(Err(Failure { stage: Stage::Head, timed_out: false, why })),
                    };
                }
                Err(_) => {
                    return Sent::Done(Err(Failure {
                        stage: Stage::Head,
                        timed_out: true,
                        why: format!("no reply within {} ms of connecting", ms(head_by - connected)),
                    }));
                }
            };
            Sent::Done(read_body(response, limits).await)
        })
        .await
}

/// Reads a reply's body whole, within the read timeout between chunks and the deadline.
async fn read_body(response: http::Response<hyper::body::Incoming>, limits: Limits) -> Result<RawReply, Failure> {
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let mut bytes = BytesMut::new();
    loop {
        let waited = Instant::now();
        let chunk_by = limits.deadline.min(waited + limits.read);
        let frame = match tokio::time::timeout_at(chunk_by, body.frame()).await {
            Err(_) => {
                return Err(Failure {
                    stage: Stage::Body(status),
                    timed_out: true,
                    why: format!("the reply stopped arriving for {} ms", ms(chunk_by - waited)),
                });
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err(Failure {
                    stage: Stage::Body(status),
                    timed_out: false,
                    why: format!("the reply broke off after {} bytes: {}", bytes.len(), error_chain(&e)),
                });
            }
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > MAX_REPLY_BYTES {
                return Err(Failure {
                    stage: Stage::Body(status),
                    timed_out: false,
                    why: format!("the reply is larger than {MAX_REPLY_BYTES} bytes"),
                });
            }
            if bytes.is_empty() && http_body::Body::is_end_stream(&body) {
                return Ok(RawReply { status, headers: parts.headers, body: data });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(RawReply { status, headers: parts.headers, body: bytes.freeze() })
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The connections to `origin` (`scheme://authority`), trusting the webpki roots and, when given, the
/// certificates of `ca_file`, using at most `max_in_use` and keeping at most `max_idle` idle per thread.
pub(crate) fn pool(
    origin: http::Uri,
    ca_file: Option<&std::path::Path>,
    max_idle: usize,
    max_in_use: usize,
) -> Result<Arc<Pool>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
            roots.add(cert).map_err(|e| format!("unusable certificate in {}: {e}", path.display()))?;
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false);
    tcp.set_nodelay(true);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(Pool::new(origin, connector, max_idle, max_in_use))
}
