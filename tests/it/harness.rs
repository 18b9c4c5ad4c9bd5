//! An in-process crossgate for end-to-end tests: the gateway and its simulator on loopback ports, and
//! signed clients for every caller dialect built from the codecs, talking over real sockets.

use std::sync::Arc;

use bytes::Bytes;
use crossgate::app::{self, Started};
use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{self, Dialect, UpstreamCtx, WireRequest};
use crossgate::layer::audit::{AuditEntry, MemorySink};
use crossgate::mapping::Mappings;
use crossgate::model::{Fault, Operation, Outcome};
use crossgate::secret::Secret;
use crossgate::sign::Scheme;
use crossgate::sim::SimHandle;
use http::HeaderMap;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A response as a client received it.
#[derive(Debug, Clone)]
pub(crate) struct Got {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Got {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn content_type(&self) -> &str {
        self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// A running gateway with its simulator and audit lines.
pub(crate) struct Env {
    pub(crate) started: Started,
    pub(crate) audit: Arc<MemorySink>,
    pub(crate) maps: Mappings,
    pub(crate) config_secrets: Vec<String>,
}

/// The demo configuration with a few extra routes and names for the matrix, on a free port.
pub(crate) fn matrix_config() -> Config {
    let text = include_str!("../../src/demo.toml").replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        + MATRIX_EXTRA;
    let secret = "matrix-upstream-secret".to_owned();
    Config::parse("matrix.toml", &text, &move |n| (n == "CROSSGATE_SIM_SECRET").then(|| secret.clone()))
        .expect("matrix config")
}

/// Machines known under an alias on the other providers, routed by the alias's suffix.
const MATRIX_EXTRA: &str = r#"
[[instances]]
tencent-cvm = "ins-1e4r6y8i"
tencent-lighthouse = "lhins-aaaacvm1"
aliyun-ecs = "i-aaaacvm1"

[[instances]]
tencent-cvm = "ins-bbbblh01"
tencent-lighthouse = "lhins-3k9d8f7s"
aliyun-ecs = "i-bbbblh01"

[[instances]]
tencent-cvm = "ins-ccccecs1"
tencent-lighthouse = "lhins-ccccecs1"
aliyun-ecs = "i-m5eg7be9ndloji64jknv"
"#;

impl Env {
    /// Starts crossgate on `config`, auditing into memory.
    pub(crate) async fn start(config: Config) -> Env {
        let mut config_secrets: Vec<String> =
            config.upstreams.values().map(|u| u.secret_key.expose().to_owned()).collect();
        config_secrets.extend(config.callers.iter().map(|c| c.secret_key.expose().to_owned()));
        let audit = Arc::new(MemorySink::default());
        let maps = app::mappings(&config).unwrap();
        let started = app::start(config, audit.clone(), Arc::new(SystemClock)).await.expect("gateway starts");
        Env { started, audit, maps, config_secrets }
    }

    /// The matrix gateway.
    pub(crate) async fn matrix() -> Env {
        let mut config = matrix_config();
        config.routing.rules.splice(0..0, routing_rules());
        Env::start(config).await
    }

    pub(crate) fn sim(&self) -> &SimHandle {
        &self.started.simulator.as_ref().expect("simulator").1
    }

    pub(crate) fn audit_lines(&self) -> Vec<AuditEntry> {
        self.audit.0.lock().unwrap().clone()
    }

    /// Signs `op` as the demo caller in `dialect` with `scheme`, sends it, and returns the raw answer.
    pub(crate) async fn call(&self, dialect: Dialect, scheme: Scheme, op: &Operation) -> Got {
        let wire = self.signed(dialect, scheme, op, DEMO_CALLER_ID, DEMO_CALLER_SECRET, SystemClock.now_unix());
        self.send(&wire).await
    }

    /// A signed request for the gateway.
    pub(crate) fn signed(
        &self,
        dialect: Dialect,
        scheme: Scheme,
        op: &Operation,
        id: &str,
        secret: &str,
        time: i64,
    ) -> WireRequest {
        let ctx = UpstreamCtx {
            host: self.started.gateway.addr.to_string(),
            region: op.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
            credential_id: id.into(),
            scheme,
            timestamp: time,
            nonce: (uuid::Uuid::new_v4().as_u128() % 1_000_000_000 + 1).to_string(),
        };
        dialect::encode_request(dialect, op, &ctx, &Secret::new(secret), &self.maps).expect("encodes")
    }

    /// Sends a wire request to the gateway over a real socket.
    pub(crate) async fn send(&self, wire: &WireRequest) -> Got {
        send_to(self.started.gateway.addr, wire).await
    }

    /// Decodes an answer as the caller's SDK would.
    pub(crate) fn decode(&self, dialect: Dialect, got: &Got, op: &Operation) -> Result<Outcome, Fault> {
        dialect::decode_response(dialect, got.status, &got.headers, &got.body, op, &self.maps)
    }
}

/// Routes by the alias suffixes of [`MATRIX_EXTRA`].
fn routing_rules() -> Vec<crossgate::config::Rule> {
    [("*cvm1", "cvm"), ("*lh01", "lighthouse"), ("*ecs1", "ecs")]
        .into_iter()
        .map(|(glob, upstream)| crossgate::config::Rule {
            instance: Some(wildmatch::WildMatch::new(glob)),
            caller: None,
            dialect: None,
            upstream: upstream.into(),
        })
        .collect()
}

/// Sends a wire request to `addr`.
pub(crate) async fn send_to(addr: std::net::SocketAddr, wire: &WireRequest) -> Got {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let query = if wire.query.is_empty() { String::new() } else { format!("?{}", wire.query) };
    let mut req = http::Request::builder().method(wire.method).uri(format!("http://{addr}{}{query}", wire.path));
    for (n, v) in &wire.headers {
        if !n.eq_ignore_ascii_case("host") {
            req = req.header(n.as_str(), v.as_str());
        }
    }
    let req = req.header("host", wire.host.as_str()).body(Full::new(Bytes::from(wire.body.clone()))).unwrap();
    let res = client.request(req).await.expect("gateway answers");
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}
