//! One HTTP exchange with an upstream, and the pooled keep-alive client it goes over (HTTPS by default,
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
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::{HttpConnector, capture_connection};
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;

/// The client every call to one upstream shares.
pub(crate) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most bytes read from an upstream reply.
pub(crate) const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

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

/// Sends `request` and reads the whole reply within `limits`.
pub(crate) async fn exchange(
    client: &HttpsClient,
    mut request: Request<Full<Bytes>>,
    limits: Limits,
) -> Result<RawReply, Failure> {
    let started = Instant::now();
    let connection = capture_connection(&mut request);
    let mut connection_ready = connection.clone();
    let response = client.request(request);
    tokio::pin!(response);

    // Until a connection is ready (new or pooled), or the reply (or a failure) comes first.
    let connect_by = limits.deadline.min(started + limits.connect);
    let (early, connected) = tokio::select! {
        biased;
        result = &mut response => (Some(result), Instant::now()),
        _ = connection_ready.wait_for_connection_metadata() => (None, Instant::now()),
        () = tokio::time::sleep_until(connect_by) => {
            if connection.connection_metadata().is_none() {
                let limit = if connect_by == limits.deadline { "the call's time limit" } else { "the connect timeout" };
                return Err(Failure {
                    stage: Stage::Connect,
                    timed_out: true,
                    why: format!("no connection within {} ms ({limit})", ms(connect_by - started)),
                });
            }
            (None, Instant::now())
        }
    };
    let head = match early {
        Some(result) => result,
        None => {
            let head_by = limits.deadline.min(connected + limits.read);
            match tokio::time::timeout_at(head_by, &mut response).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(Failure {
                        stage: Stage::Head,
                        timed_out: true,
                        why: format!("no reply within {} ms of connecting", ms(head_by - connected)),
                    });
                }
            }
        }
    };
    let response = head.map_err(|e| Failure {
        stage: if e.is_connect() { Stage::Connect } else { Stage::Head },
        timed_out: false,
        why: error_chain(&e),
    })?;

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
            bytes.extend_from_slice(&data);
        }
    }
    Ok(RawReply { status, headers: parts.headers, body: bytes.freeze() })
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// An error and its sources, `: `-separated.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A pooled keep-alive client trusting the webpki roots and, when given, the certificates of `ca_file`.
pub(crate) fn client(ca_file: Option<&std::path::Path>) -> Result<HttpsClient, String> {
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
    let connector =
        hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE).build(connector))
}
