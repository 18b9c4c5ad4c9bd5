//! The self-check behind `crossgate health`: asks a running gateway's own listener for `/healthz`, over
//! TLS when the config serves HTTPS, so a container's healthcheck follows the configured address and
//! scheme with nothing but the binary.
//!
//! An unspecified listen address (`0.0.0.0`, `::`) is checked on the loopback address of its family.
//! Over TLS the gateway's own certificate (the `[tls] cert` file) is the only one trusted: it is pinned
//! byte for byte, so the check works whatever names the certificate carries and trusts nothing else.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The most bytes read of the health answer.
const MAX_ANSWER: u64 = 4096;

/// Where to connect to check a gateway listening on `listen`.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// Checks the gateway listening on `listen` (with `cert` when it serves HTTPS): `Ok` when `/healthz`
/// answers 200 within `within`, else what went wrong.
pub async fn check(listen: SocketAddr, cert: Option<&Path>, within: Duration) -> Result<(), String> {
    let addr = target(listen);
    let scheme = if cert.is_some() { "https" } else { "http" };
    let exchange = async {
        let tcp = TcpStream::connect(addr).await.map_err(|e| format!("cannot connect: {e}"))?;
        match cert {
            None => ask(tcp, addr).await,
            Some(cert) => {
                let tls = tls_connector(cert)?;
                let name = ServerName::IpAddress(addr.ip().into());
                let stream = tls.connect(name, tcp).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
                ask(stream, addr).await
            }
        }
    };
    match tokio::time::timeout(within, exchange).await {
        Ok(result) => result.map_err(|e| format!("{scheme}://{addr}/healthz: {e}")),
        Err(_) => Err(format!("{scheme}://{addr}/healthz did not answer within {} ms", within.as_millis())),
    }
}

async fn ask<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, addr: SocketAddr) -> Result<(), String> {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| format!("cannot send: {e}"))?;
    let mut answer = Vec::new();
    (&mut stream).take(MAX_ANSWER).read_to_end(&mut answer).await.map_err(|e| format!("cannot read: {e}"))?;
    let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line).trim().to_owned();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ if status_line.is_empty() => Err("the connection closed without an answer".to_owned()),
        _ => Err(format!("answered `{status_line}`")),
    }
}

fn tls_connector(cert: &Path) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls_pki_types::pem::PemObject;
    let pinned = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?
        .next()
        .ok_or_else(|| format!("no certificate in {}", cert.display()))?
        .map_err(|e| format!("bad certificate in {}: {e}", cert.display()))?
        .into_owned();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Pinned { cert: pinned, algorithms: provider.signature_verification_algorithms };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// Trusts exactly one certificate, the gateway's own, and checks the handshake signatures against it.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the listener presented another certificate than the configured one".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_checked_on_loopback() {
        assert_eq!(target("0.0.0.0:8080".parse().unwrap()), "127.0.0.1:8080".parse().unwrap());
        assert_eq!(target("[::]:9443".parse().unwrap()), "[::1]:9443".parse().unwrap());
        assert_eq!(target("10.1.2.3:80".parse().unwrap()), "10.1.2.3:80".parse().unwrap());
    }

    #[tokio::test]
    async fn nothing_listening_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = check(addr, None, Duration::from_secs(2)).await.unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
