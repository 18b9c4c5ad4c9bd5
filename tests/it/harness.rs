//! An in-process crossgate for end-to-end tests: the gateway and its simulator on loopback ports, and
//! signed clients for every caller dialect built from the codecs, talking over real sockets.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use crossgate::app::{self, Started};
use crossgate::clock::{Clock, SystemClock};
use crossgate::config::{Config, DEMO_CALLER_ID, DEMO_CALLER_SECRET};
use crossgate::dialect::{self, Dialect, UpstreamCtx, WireRequest};
use crossgate::layer::audit::{AuditEntry, MemorySink};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Fault, Keys, Operation, Outcome};
use crossgate::secret::Secret;
use crossgate::sign::encoding::{form_decode, form_encode, form_encode_component, pct_encode, sha256_hex};
use crossgate::sign::{Param, Scheme, SignInput, acs3, aliyun_rpc, tc3, tencent_v1};
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

    /// The text of the first `<name>...</name>` element of an XML answer.
    pub(crate) fn xml_field(&self, name: &str) -> Option<String> {
        let text = self.text();
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        let raw = &text[start..end];
        Some(
            raw.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    }

    /// The error code of an answer in `dialect` (`None` for a success): `Response.Error.Code`, the
    /// old-style `codeDesc`, or ECS's `Code` (JSON or XML).
    pub(crate) fn error_code(&self, dialect: Dialect) -> Option<String> {
        if dialect == Dialect::AliyunEcs {
            if self.content_type().starts_with("text/xml") {
                return self.xml_field("Error").and(self.xml_field("Code"));
            }
            return self.json()["Code"].as_str().map(str::to_owned);
        }
        let body = self.json();
        if body.get("code").is_some() {
            return (body["code"] != 0).then(|| body["codeDesc"].as_str().unwrap_or("").to_owned());
        }
        body["Response"]["Error"]["Code"].as_str().map(str::to_owned)
    }

    /// The error message of an answer in `dialect` (empty for a success).
    pub(crate) fn error_message(&self, dialect: Dialect) -> String {
        if dialect == Dialect::AliyunEcs {
            if self.content_type().starts_with("text/xml") {
                return self.xml_field("Message").unwrap_or_default();
            }
            return self.json()["Message"].as_str().unwrap_or("").to_owned();
        }
        let body = self.json();
        match body.get("message") {
            Some(m) => m.as_str().unwrap_or("").to_owned(),
            None => body["Response"]["Error"]["Message"].as_str().unwrap_or("").to_owned(),
        }
    }

    /// The RequestId the answer carries (`None` for an old-style legacy answer, which has no field for it).
    pub(crate) fn request_id(&self, dialect: Dialect) -> Option<String> {
        if dialect == Dialect::AliyunEcs && self.content_type().starts_with("text/xml") {
            return self.xml_field("RequestId");
        }
        let body = self.json();
        let id = if dialect == Dialect::AliyunEcs { &body["RequestId"] } else { &body["Response"]["RequestId"] };
        id.as_str().map(str::to_owned)
    }
}

/// A running gateway with its simulator and audit lines.
pub(crate) struct Env {
    pub(crate) started: Started,
    /// The configuration it was started with.
    pub(crate) config: Config,
    pub(crate) audit: Arc<MemorySink>,
    pub(crate) maps: Mappings,
    pub(crate) config_secrets: Vec<String>,
}

/// The demo configuration with a few extra routes and names for the matrix, on a free port.
pub(crate) fn matrix_config() -> Config {
    let text = include_str!("../../src/demo.toml")
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
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

/// The demo configuration on a free port with the matrix machines, routed by alias suffix (`*cvm1`,
/// `*lh01`, `*ecs1`) ahead of the demo's own rules, then `rules` (TOML `[[routing.rules]]`, also ahead of
/// the demo's), and `extra` TOML appended (more `[[instances]]`, `[[keys]]`, `[upstreams.NAME]`).
pub(crate) fn config_with(rules: &str, extra: &str) -> Config {
    let demo = include_str!("../../src/demo.toml");
    let anchor = "[routing]\ndefault = \"cvm\"\n";
    assert!(demo.contains(anchor), "src/demo.toml no longer has the routing anchor");
    let text = demo
        .replace("listen = \"127.0.0.1:8080\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9090\"", "listen = \"127.0.0.1:0\"")
        .replace(anchor, &format!("{anchor}{SUFFIX_RULES}{rules}"))
        + MATRIX_EXTRA
        + ALIASES
        + extra;
    let secret = UPSTREAM_SECRET.to_owned();
    Config::parse("e2e.toml", &text, &move |n| (n == "CROSSGATE_SIM_SECRET").then(|| secret.clone()))
        .unwrap_or_else(|e| panic!("e2e config: {e}\n{text}"))
}

/// The secret the simulated upstreams share in [`config_with`].
const UPSTREAM_SECRET: &str = "e2e-upstream-secret-0f3a";

/// More machines known under an alias, routed by the same suffixes: the CVM Windows machine, the CVM
/// RUNNING machine and the ECS Windows machine.
const ALIASES: &str = r#"
[[instances]]
tencent-cvm = "ins-5wq8v2kd"
tencent-lighthouse = "lhins-wwwwcvm1"
aliyun-ecs = "i-wwwwcvm1"

[[instances]]
tencent-cvm = "ins-w34e5rl9"
tencent-lighthouse = "lhins-runncvm1"
aliyun-ecs = "i-runncvm1"

[[instances]]
tencent-cvm = "ins-wwwwecs1"
tencent-lighthouse = "lhins-wwwwecs1"
aliyun-ecs = "i-m5ewindows2022srv001"
"#;

/// [`routing_rules`] as TOML.
const SUFFIX_RULES: &str = r#"
[[routing.rules]]
instance = "*cvm1"
upstream = "cvm"

[[routing.rules]]
instance = "*lh01"
upstream = "lighthouse"

[[routing.rules]]
instance = "*ecs1"
upstream = "ecs"
"#;

impl Env {
    /// Starts crossgate on [`config_with`]`(rules, extra)`.
    pub(crate) async fn with(rules: &str, extra: &str) -> Env {
        Env::start(config_with(rules, extra)).await
    }

    /// Starts crossgate on `config`, auditing into memory.
    pub(crate) async fn start(config: Config) -> Env {
        let mut config_secrets: Vec<String> =
            config.upstreams.values().map(|u| u.secret_key.expose().to_owned()).collect();
        config_secrets.extend(config.callers.iter().map(|c| c.secret_key.expose().to_owned()));
        let audit = Arc::new(MemorySink::default());
        let maps = app::mappings(&config).unwrap();
        let kept = config.clone();
        let started = app::start(config, audit.clone(), Arc::new(SystemClock)).await.expect("gateway starts");
        Env { started, config: kept, audit, maps, config_secrets }
    }

    /// The matrix gateway.
    pub(crate) async fn matrix() -> Env {
        Env::start(routed_matrix_config()).await
    }

    /// The matrix gateway, its configuration changed by `edit` first.
    pub(crate) async fn matrix_with(edit: impl FnOnce(&mut Config)) -> Env {
        let mut config = routed_matrix_config();
        edit(&mut config);
        Env::start(config).await
    }

    /// The matrix gateway serving HTTPS with the PEM `cert` and `key`.
    pub(crate) async fn matrix_over_tls(cert: PathBuf, key: PathBuf) -> Env {
        let mut config = routed_matrix_config();
        config.tls = Some((cert, key));
        Env::start(config).await
    }

    pub(crate) fn sim(&self) -> &SimHandle {
        &self.started.simulator.as_ref().expect("simulator").1
    }

    pub(crate) fn audit_lines(&self) -> Vec<AuditEntry> {
        self.audit.finals()
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

    /// A request for the gateway signed by `signer` through the caller codec.
    pub(crate) fn signed_by(&self, dialect: Dialect, scheme: Scheme, op: &Operation, signer: &Signer) -> WireRequest {
        let ctx = UpstreamCtx {
            host: self.host(),
            region: op.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
            credential_id: signer.id.clone(),
            scheme,
            timestamp: signer.time,
            nonce: signer.nonce.clone(),
        };
        dialect::encode_request(dialect, op, &ctx, &Secret::new(signer.secret.as_str()), &self.maps).expect("encodes")
    }

    /// The gateway's `host:port`, as callers address and sign it.
    pub(crate) fn host(&self) -> String {
        self.started.gateway.addr.to_string()
    }

    /// The audit line for the RequestId a caller saw.
    pub(crate) fn audit_line(&self, request_id: &str) -> AuditEntry {
        let lines = self.audit_lines();
        let mut matching = lines.iter().filter(|l| l.request_id == request_id);
        let line = matching.next().unwrap_or_else(|| panic!("no audit line for {request_id}: {lines:#?}"));
        assert!(matching.next().is_none(), "two audit lines for {request_id}");
        line.clone()
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

/// [`matrix_config`], routed by alias suffix ahead of the demo's rules.
fn routed_matrix_config() -> Config {
    let mut config = matrix_config();
    config.routing.rules.splice(0..0, routing_rules());
    config
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
    let mut req = without_host(wire, &format!("http://{addr}"));
    req.headers_mut().insert("host", http::HeaderValue::from_str(&wire.host).unwrap());
    got(client.request(req).await.expect("gateway answers")).await
}

/// `wire` as a request to `origin` (`scheme://authority`), with every header but `Host`.
pub(crate) fn without_host(wire: &WireRequest, origin: &str) -> http::Request<Full<Bytes>> {
    let query = if wire.query.is_empty() { String::new() } else { format!("?{}", wire.query) };
    let mut req = http::Request::builder().method(wire.method).uri(format!("{origin}{}{query}", wire.path));
    for (n, v) in &wire.headers {
        if !n.eq_ignore_ascii_case("host") {
            req = req.header(*n, v.as_str());
        }
    }
    req.body(Full::new(Bytes::from(wire.body.clone()))).unwrap()
}

/// An answer, its body read whole.
pub(crate) async fn got(res: http::Response<hyper::body::Incoming>) -> Got {
    let (parts, body) = res.into_parts();
    Got {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes().to_vec(),
    }
}

// === operations and hand-made requests ===

/// A bind or unbind as a caller in `dialect` names it: key ids for Tencent, a key name for ECS.
pub(crate) fn key_op(action: Action, dialect: Dialect, instances: &[&str], keys: &[&str]) -> Operation {
    let mut op = Operation::new(action);
    op.region = Some(if dialect == Dialect::AliyunEcs { "cn-hangzhou" } else { "ap-guangzhou" }.into());
    op.instances = instances.iter().map(|s| (*s).to_owned()).collect();
    let keys = keys.iter().map(|s| (*s).to_owned()).collect();
    op.keys = if dialect == Dialect::AliyunEcs { Keys::Names(keys) } else { Keys::Ids(keys) };
    op
}

/// A bind as a caller in `dialect` names it.
pub(crate) fn bind_op(dialect: Dialect, instances: &[&str], keys: &[&str]) -> Operation {
    key_op(Action::AssociateKeys, dialect, instances, keys)
}

/// Who signs a request, and when: the demo caller, now, with a fresh nonce, unless changed.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub(crate) id: String,
    pub(crate) secret: String,
    pub(crate) time: i64,
    pub(crate) nonce: String,
}

impl Signer {
    pub(crate) fn demo() -> Signer {
        Signer {
            id: DEMO_CALLER_ID.into(),
            secret: DEMO_CALLER_SECRET.into(),
            time: SystemClock.now_unix(),
            nonce: (uuid::Uuid::new_v4().as_u128() % 1_000_000_000 + 1).to_string(),
        }
    }

    /// Signs with another secret than the credential's.
    pub(crate) fn wrong_secret() -> Signer {
        Signer { secret: "not-the-demo-secret".into(), ..Signer::demo() }
    }

    /// Presents a credential id the gateway does not know.
    pub(crate) fn unknown_id() -> Signer {
        Signer { id: "AKIDnobodyKnowsThisOne0000000000".into(), ..Signer::demo() }
    }

    /// Signs correctly, an hour ago.
    pub(crate) fn an_hour_ago() -> Signer {
        Signer { time: SystemClock.now_unix() - 3600, ..Signer::demo() }
    }
}

fn owned(params: &[(&str, &str)]) -> Vec<Param<'static>> {
    params.iter().map(|(n, v)| (Cow::Owned((*n).to_owned()), Cow::Owned((*v).to_owned()))).collect()
}

/// A Tencent signature v1 request made by hand: `params` plus `Timestamp`, `Nonce`, `SecretId`,
/// `SignatureMethod` and `Signature`, as a GET query or a POST form.
pub(crate) fn v1_request(
    host: &str,
    method: &'static str,
    path: &'static str,
    params: &[(&str, &str)],
    hash: tencent_v1::Hash,
    signer: &Signer,
) -> WireRequest {
    let mut all = owned(params);
    let method_name = match hash {
        tencent_v1::Hash::Sha1 => "HmacSHA1",
        tencent_v1::Hash::Sha256 => "HmacSHA256",
    };
    all.extend(owned(&[
        ("Timestamp", &signer.time.to_string()),
        ("Nonce", &signer.nonce),
        ("SecretId", &signer.id),
        ("SignatureMethod", method_name),
    ]));
    let input = SignInput { method, host, path, params: all, ..SignInput::default() };
    let signed = tencent_v1::sign(&input, hash, &Secret::new(signer.secret.as_str()));
    let mut all = input.params;
    all.push((Cow::Borrowed("Signature"), Cow::Owned(signed.signature)));
    let encoded = form_encode(&all);
    let (query, headers, body) = if method == "GET" {
        (encoded, Vec::new(), Vec::new())
    } else {
        (String::new(), vec![("Content-Type", "application/x-www-form-urlencoded".to_owned())], encoded.into_bytes())
    };
    WireRequest { method, host: host.to_owned(), path, query, headers, body }
}

/// A TC3-HMAC-SHA256 request made by hand: POST JSON `body` with `action` in `X-TC-Action`.
pub(crate) fn tc3_request(
    host: &str,
    service: &str,
    action: &str,
    version: &str,
    body: &serde_json::Value,
    signer: &Signer,
) -> WireRequest {
    tc3_request_signing(host, service, action, version, body, signer, &[])
}

/// [`tc3_request`] with more headers, signed too (names in lower case), e.g. `x-tc-content-sha256`.
pub(crate) fn tc3_request_signing(
    host: &str,
    service: &str,
    action: &str,
    version: &str,
    body: &serde_json::Value,
    signer: &Signer,
    signed_headers: &[(&'static str, &str)],
) -> WireRequest {
    let body = serde_json::to_vec(body).unwrap();
    let mut to_sign = vec![("content-type", "application/json"), ("host", host)];
    to_sign.extend_from_slice(signed_headers);
    let input = SignInput {
        method: "POST",
        host,
        path: "/",
        query: "",
        headers: to_sign,
        body: &body,
        timestamp: signer.time,
        service,
        ..SignInput::default()
    };
    let signed = tc3::sign(&input, &signer.id, &Secret::new(signer.secret.as_str()));
    let mut headers = vec![
        ("Content-Type", "application/json".to_owned()),
        ("X-TC-Action", action.to_owned()),
        ("X-TC-Version", version.to_owned()),
        ("X-TC-Timestamp", signer.time.to_string()),
        ("X-TC-Region", "ap-guangzhou".to_owned()),
        ("Authorization", signed.authorization.unwrap()),
    ];
    headers.extend(signed_headers.iter().map(|(n, v)| (*n, (*v).to_owned())));
    WireRequest { method: "POST", host: host.to_owned(), path: "/", query: String::new(), headers, body }
}

/// `YYYY-MM-DDThh:mm:ssZ` for Unix seconds (Alibaba's time stamps).
pub(crate) fn aliyun_time(secs: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(secs).unwrap();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// An Alibaba RPC (HMAC-SHA1) GET made by hand: `params` (Action, Format and the business ones) plus
/// the common ones, every parameter in the query. Returns the request and the string to sign.
pub(crate) fn ecs_rpc_request(host: &str, params: &[(&str, &str)], signer: &Signer) -> (WireRequest, String) {
    let mut all = owned(params);
    all.extend(owned(&[
        ("Version", "2014-05-26"),
        ("Timestamp", &aliyun_time(signer.time)),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", &signer.nonce),
        ("AccessKeyId", &signer.id),
    ]));
    let input = SignInput { method: "GET", host, path: "/", params: all, ..SignInput::default() };
    let signed = aliyun_rpc::sign(&input, &Secret::new(signer.secret.as_str()));
    let mut query: Vec<String> =
        input.params.iter().map(|(n, v)| format!("{}={}", pct_encode(n), pct_encode(v))).collect();
    query.push(format!("Signature={}", pct_encode(&signed.signature)));
    let wire = WireRequest {
        method: "GET",
        host: host.to_owned(),
        path: "/",
        query: query.join("&"),
        headers: Vec::new(),
        body: Vec::new(),
    };
    (wire, signed.string_to_sign)
}

/// An Alibaba ACS3-HMAC-SHA256 POST made by hand: `action` in `x-acs-action`, `params` in the query, an
/// empty body. Returns the request and the string to sign.
pub(crate) fn ecs_acs3_request(
    host: &str,
    action: &str,
    params: &[(&str, &str)],
    signer: &Signer,
) -> (WireRequest, String) {
    let params = owned(params);
    let query: Vec<String> =
        params.iter().map(|(n, v)| format!("{}={}", form_encode_component(n), form_encode_component(v))).collect();
    let query = query.join("&");
    let date = aliyun_time(signer.time);
    let body_hash = sha256_hex(b"");
    let headers: [(&'static str, &str); 7] = [
        ("host", host),
        ("x-acs-action", action),
        ("x-acs-version", "2014-05-26"),
        ("x-acs-date", &date),
        ("x-acs-signature-nonce", &signer.nonce),
        ("x-acs-content-sha256", &body_hash),
        ("accept", "application/json"),
    ];
    let input = SignInput {
        method: "POST",
        host,
        path: "/",
        query: &query,
        params,
        headers: headers.to_vec(),
        body: b"",
        timestamp: signer.time,
        service: "",
    };
    let signed = acs3::sign(&input, &signer.id, &Secret::new(signer.secret.as_str()));
    let mut headers: Vec<(&'static str, String)> = headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
    headers.push(("authorization", signed.authorization.unwrap()));
    let wire = WireRequest {
        method: "POST",
        host: host.to_owned(),
        path: "/",
        query: query.clone(),
        headers,
        body: Vec::new(),
    };
    (wire, signed.string_to_sign)
}

/// The signature value a request carries: the `Signature` parameter, or `Signature=` of its
/// Authorization header.
pub(crate) fn signature_of(wire: &WireRequest) -> String {
    let body = String::from_utf8_lossy(&wire.body);
    for text in [wire.query.as_str(), body.as_ref()] {
        if let Ok(params) = form_decode(text) {
            if let Some((_, v)) = params.iter().find(|(n, _)| n == "Signature") {
                return v.to_string();
            }
        }
    }
    let auth = wire.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("authorization")).expect("signed");
    auth.1.rsplit("Signature=").next().unwrap().to_owned()
}
