//! Serving: bind, accept (plain TCP or TLS), hand each connection to hyper with the service stack, print
//! `listening on <addr>`, and stop gracefully on Ctrl-C or SIGTERM.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::layer::audit::PeerAddr;
use crate::layer::respond::plain;
use crate::layer::{ResBody, boxed};

/// A bound listener, before it serves.
pub struct Bound {
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
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
        Ok(Bound { listener, tls })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves `service` until `shutdown` completes, then lets open connections finish.
    pub async fn serve<S>(self, service: S, shutdown: impl std::future::Future<Output = ()>)
    where
        S: Service<Request<Incoming>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => { tracing::warn!(error = %e, "Accept failed."); continue; }
                },
                () = &mut shutdown => break,
            };
            let svc = service.clone();
            let handler = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                let svc = svc.clone();
                async move {
                    if req.uri().path() == "/healthz" && req.method() == http::Method::GET {
                        return Ok::<_, Infallible>(boxed(plain(StatusCode::OK, "ok")));
                    }
                    svc.oneshot(req).await
                }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            match &self.tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(error = %e, %peer, "Connection ended with an error.");
                        }
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let watcher = graceful.watcher();
                    tokio::spawn(async move {
                        let stream = match acceptor.accept(stream).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::debug!(error = %e, %peer, "TLS handshake failed.");
                                return;
                            }
                        };
                        let conn = builder.serve_connection(TokioIo::new(stream), handler).into_owned();
                        if let Err(e) = watcher.watch(conn).await {
                            tracing::debug!(error = %e, %peer, "Connection ended with an error.");
                        }
                    });
                }
            }
        }
        graceful.shutdown().await;
    }
}

fn acceptor(cert: &Path, key: &Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("cannot read the key {}: {e}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
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
