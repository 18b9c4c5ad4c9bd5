//! Upstreams: where each configured upstream lives, and the only network code that talks to them.
//!
//! Building a request and reading a reply are pure and live in the dialect codecs
//! (`encode_request` / `decode_response`); [`Upstream::call`] only signs the time in, sends over one
//! pooled keep-alive client (HTTPS by default, webpki roots plus an optional CA file) and bounds the
//! call in time. Transport failures become upstream faults right here.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::clock::Clock;
use crate::config::{Endpoint, UpstreamConfig};
use crate::dialect::{self, Dialect, UpstreamCtx, WireRequest};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Operation, Outcome, Provider};
use crate::sign::Scheme;

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The most bytes read from an upstream reply.
const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;

/// One configured upstream, ready to call.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
    /// Whether requests go over TLS.
    tls: bool,
    /// `host[:port]`, the Host header and the signed host.
    authority: String,
    client: HttpsClient,
}

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

impl Upstream {
    /// Prepares an upstream; `simulator` is the in-process simulator's address, for `endpoint = "sim"`.
    pub fn new(config: UpstreamConfig, simulator: Option<std::net::SocketAddr>) -> Result<Upstream, String> {
        let (tls, authority) = match &config.endpoint {
            Endpoint::Url { tls, authority } => (*tls, authority.clone()),
            Endpoint::Simulator => {
                let addr = simulator
                    .ok_or_else(|| format!("upstream `{}` uses the simulator, which is not running", config.name))?;
                (false, addr.to_string())
            }
        };
        let client = client(config.ca_file.as_deref())?;
        Ok(Upstream { config, tls, authority, client })
    }

    /// The dialect this upstream speaks.
    pub fn dialect(&self) -> Dialect {
        Dialect::of_provider(self.config.provider)
    }

    /// Encodes, signs, sends and decodes one operation.
    pub async fn call(&self, op: &Operation, maps: &Mappings, clock: &dyn Clock) -> Result<Outcome, Fault> {
        let ctx = UpstreamCtx {
            host: self.authority.clone(),
            region: self.config.region.clone(),
            credential_id: self.config.secret_id.clone(),
            scheme: self.config.scheme,
            timestamp: clock.now_unix(),
            nonce: nonce(self.config.scheme),
        };
        let wire = dialect::encode_request(self.dialect(), op, &ctx, &self.config.secret_key, maps)?;
        let reply = self.send(wire).await?;
        dialect::decode_response(self.dialect(), reply.status, &reply.headers, &reply.body, op, maps)
            .map_err(|fault| self.own_credentials_refused(fault))
    }

    /// An upstream that refuses crossgate's own signature, credential or clock is the gateway's problem,
    /// not the caller's: the caller's request was fine. It becomes an internal fault that says so, the
    /// upstream's answer kept for the audit log.
    fn own_credentials_refused(&self, fault: Fault) -> Fault {
        const OURS: &[Code] = &[
            Code::SignatureMismatch,
            Code::MalformedSignature,
            Code::UnknownCredential,
            Code::TimestampExpired,
            Code::NonceReused,
        ];
        if !OURS.contains(&fault.code()) {
            return fault;
        }
        let said = fault.upstream_error().cloned();
        let code = said.as_ref().map_or("", |s| s.code.as_str()).to_owned();
        tracing::error!(upstream = %self.config.name, %code, "The upstream refused crossgate's credentials.");
        Fault::upstream(
            Code::Internal,
            format!("The upstream `{}` refused the gateway's credentials ({code}).", self.config.name),
            said,
        )
    }

    /// Sends a signed request within the upstream's time limit.
    pub async fn send(&self, wire: WireRequest) -> Result<RawReply, Fault> {
        let provider = self.config.provider;
        let timeout = self.config.timeout;
        let request =
            self.http_request(wire).map_err(|e| unavailable(provider, &format!("cannot build the request: {e}")))?;
        let exchange = async {
            let response =
                self.client.request(request).await.map_err(|e| unavailable(provider, &transport_error(&e)))?;
            let (parts, body) = response.into_parts();
            let body = http_body_util::Limited::new(body, MAX_REPLY_BYTES)
                .collect()
                .await
                .map_err(|e| unavailable(provider, &format!("the reply could not be read: {e}")))?
                .to_bytes();
            Ok(RawReply { status: parts.status.as_u16(), headers: parts.headers, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Fault::upstream(
                Code::UpstreamTimeout,
                format!("{provider} did not answer within {} ms.", timeout.as_millis()),
                None,
            )),
        }
    }

    fn http_request(&self, wire: WireRequest) -> Result<Request<Full<Bytes>>, http::Error> {
        let scheme = if self.tls { "https" } else { "http" };
        let query = if wire.query.is_empty() { String::new() } else { format!("?{}", wire.query) };
        let mut builder =
            Request::builder().method(wire.method).uri(format!("{scheme}://{}{}{query}", self.authority, wire.path));
        let mut has_host = false;
        for (name, value) in &wire.headers {
            has_host |= name.eq_ignore_ascii_case("host");
            let mut v = http::HeaderValue::from_str(value)?;
            v.set_sensitive(name.eq_ignore_ascii_case("authorization"));
            builder = builder.header(name.as_str(), v);
        }
        if !has_host {
            builder = builder.header(http::header::HOST, &wire.host);
        }
        builder.body(Full::new(Bytes::from(wire.body)))
    }
}

/// Every configured upstream by name.
pub type Upstreams = BTreeMap<String, Arc<Upstream>>;

fn unavailable(provider: Provider, why: &str) -> Fault {
    Fault::upstream(Code::UpstreamUnavailable, format!("{provider} could not be reached: {why}"), None)
}

fn transport_error(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A fresh nonce in the form the scheme expects (Tencent v1: a positive integer).
fn nonce(scheme: Scheme) -> String {
    let id = uuid::Uuid::new_v4();
    match scheme {
        Scheme::TencentV1Sha1 | Scheme::TencentV1Sha256 => {
            (u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap_or([1; 8])) % 1_000_000_000 + 1).to_string()
        }
        _ => id.to_string(),
    }
}

fn client(ca_file: Option<&std::path::Path>) -> Result<HttpsClient, String> {
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
    Ok(Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(90)).build(connector))
}
