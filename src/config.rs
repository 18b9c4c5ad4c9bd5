//! The gateway's configuration: TOML -> raw serde structs -> a checked [`Config`].
//!
//! Every error names the file, the line and the fix. Secrets may be written as `${ENV_VAR}` and are read
//! from the environment at load time; they become [`Secret`]s straight away. [`Config::demo`] is the
//! embedded default that `crossgate serve` runs with no `--config`: the built-in simulator as every
//! upstream, and one demo caller.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! [audit]
//! path = "audit.jsonl"
//! [[callers]]
//! name = "legacy-billing"
//! secret_id = "AKID..."
//! secret_key = "${BILLING_SECRET}"
//! [upstreams.cvm]
//! provider = "tencent-cvm"
//! endpoint = "https://cvm.tencentcloudapi.com"
//! region = "ap-guangzhou"
//! secret_id = "..."
//! secret_key = "${CVM_SECRET}"
//! [routing]
//! default = "cvm"
//! ```
//!
//! Each upstream also bounds its calls (every setting optional, defaults shown):
//!
//! ```toml
//! [upstreams.cvm]
//! # ...
//! connect_timeout_ms = 3000      # establishing a connection (TCP and TLS)
//! read_timeout_ms = 5000         # silence once connected: until the reply's head, and between body chunks
//! timeout_ms = 10000             # the whole call: every attempt, page and wait included
//! retries = 2                    # tries again only where nothing can apply twice (0 to 10)
//! queue = 100                    # callers that may wait for the upstream's rate limit at once
//! breaker_failures = 5           # consecutive failures (transport, timeout, 5xx) that open the breaker
//! breaker_cool_down_ms = 10000   # how long an open breaker fails calls at once before one probe
//! idle_connections = 256         # keep-alive connections kept open while unused, per serving thread (0: one per call)
//! max_connections = 128          # connections in use at once, per serving thread; more calls wait (connect timeout)
//! ```
//!
//! and may carry a state policy for its cloud's rules (`running`, `reboot`, `wait`; see
//! [`StatePolicy`]).
//!
//! A call is retried when nothing was sent (the connection could not be made), when the upstream
//! answered its throttling code (nothing was applied), or, for a look-up, whatever the failure; never a
//! bind or unbind after its bytes went out. Rates come from `mappings/limits.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use wildmatch::WildMatch;

use crate::dialect::Dialect;
use crate::model::Provider;

mod admin;
mod guard;
mod policy;
mod state;

use crate::secret::Secret;
use crate::sign::Scheme;
use crate::tomlfile;
pub use admin::AdminConfig;
pub use guard::{AuditConfig, InboundConfig, OnAuditFailure, Permissions, ReplayConfig, Tc3Replay};
pub use policy::{CURES, OnRunning, Reboot, StatePolicy};
pub use state::{OnUnavailable, StateConfig};

/// A configuration error: the file, the line and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What is wrong and the fix.
    pub problem: String,
}

// === raw ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    tls: Option<RawTls>,
    audit: Option<Spanned<guard::RawAudit>>,
    replay: Option<Spanned<guard::RawReplay>>,
    inbound: Option<Spanned<guard::RawInbound>>,
    admin: Option<Spanned<admin::RawAdmin>>,
    state: Option<Spanned<state::RawState>>,
    mappings: Option<String>,
    max_body_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    simulator: Option<RawSimulator>,
    #[serde(default)]
    callers: Vec<Spanned<RawCaller>>,
    #[serde(default)]
    upstreams: BTreeMap<Spanned<String>, Spanned<RawUpstream>>,
    routing: Option<Spanned<RawRouting>>,
    #[serde(default)]
    keys: Vec<Spanned<BTreeMap<Spanned<String>, RawCell>>>,
    replication: Option<Spanned<RawReplication>>,
    #[serde(default)]
    instances: Vec<RawNames>,
}

/// A `[[keys]]` cell: a provider's name for the key, or one of the row's settings.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawCell {
    Text(String),
    Flag(bool),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplication {
    replicate: Option<bool>,
    state: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimulator {
    seed: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaller {
    name: String,
    secret_id: Spanned<String>,
    secret_key: Spanned<Secret>,
    allow_actions: Option<Vec<String>>,
    allow_upstreams: Option<Vec<String>>,
    allow_instances: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstream {
    provider: Spanned<String>,
    endpoint: Spanned<String>,
    region: String,
    secret_id: Spanned<String>,
    secret_key: Spanned<Secret>,
    signature: Option<Spanned<String>>,
    timeout_ms: Option<Spanned<u64>>,
    ca_file: Option<String>,
    connect_timeout_ms: Option<Spanned<u64>>,
    read_timeout_ms: Option<Spanned<u64>>,
    retries: Option<Spanned<u64>>,
    queue: Option<usize>,
    breaker_failures: Option<Spanned<u64>>,
    breaker_cool_down_ms: Option<Spanned<u64>>,
    idle_connections: Option<usize>,
    max_connections: Option<Spanned<u64>>,
    running: Option<Spanned<String>>,
    reboot: Option<Spanned<String>>,
    wait: Option<Spanned<bool>>,
    wait_timeout_ms: Option<Spanned<u64>>,
    shadow: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouting {
    default: Spanned<String>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    instance: Option<String>,
    caller: Option<String>,
    dialect: Option<String>,
    upstream: String,
}

// === checked ===

/// A caller: the credentials clients sign with.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    /// The caller's name, used in audit lines and routing rules.
    pub name: String,
    /// SecretId (Tencent) = AccessKeyId (Alibaba).
    pub secret_id: String,
    /// The caller's secret.
    pub secret_key: Secret,
    /// What the caller may do.
    pub permissions: Permissions,
}

/// Where an upstream lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A real URL: scheme, host and port as the Host header will carry them.
    Url {
        /// True for https.
        tls: bool,
        /// `host` or `host:port` (the port only when not the scheme's default).
        authority: String,
    },
    /// The built-in simulator, started in the same process.
    Simulator,
}

/// An upstream cloud endpoint and the credentials crossgate signs with.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The upstream's name in `[upstreams.NAME]`.
    pub name: String,
    /// Which provider it is.
    pub provider: Provider,
    /// Where it is.
    pub endpoint: Endpoint,
    /// The region to send.
    pub region: String,
    /// SecretId / AccessKeyId.
    pub secret_id: String,
    /// SecretKey / AccessKeySecret.
    pub secret_key: Secret,
    /// The scheme crossgate signs with.
    pub scheme: Scheme,
    /// The whole upstream call's time limit: every attempt, every page and every wait included.
    pub timeout: Duration,
    /// An extra CA bundle (PEM) to trust besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    /// How long establishing a connection (TCP and TLS) may take.
    pub connect_timeout: Duration,
    /// How long the upstream may stay silent once connected: until the reply's head, and between two
    /// chunks of its body.
    pub read_timeout: Duration,
    /// How many times a failed call is tried again (only where the change cannot apply twice).
    pub retries: u32,
    /// How many callers may wait for the upstream's rate limit at once; more are refused as throttled.
    pub queue: usize,
    /// Consecutive failures (transport failures, timeouts, 5xx) that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails calls at once before letting one probe through.
    pub breaker_cool_down: Duration,
    /// Keep-alive connections kept open while unused, per serving thread.
    pub idle_connections: usize,
    /// Connections in use at once, per serving thread; further calls wait for a turn within the connect
    /// timeout.
    pub max_connections: usize,
    /// What crossgate does about the cloud's state rules (see [`StatePolicy`]).
    pub policy: StatePolicy,
    /// The upstream on another cloud this one's look-ups are also sent to and compared with (shadow
    /// mode); binds and unbinds are never sent there, only recorded as they would have been.
    pub shadow: Option<String>,
}

/// One routing rule: the first whose every given condition matches wins.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Glob on the caller's instance id.
    pub instance: Option<WildMatch>,
    /// Caller name.
    pub caller: Option<String>,
    /// Caller dialect.
    pub dialect: Option<Dialect>,
    /// The upstream to use.
    pub upstream: String,
}

/// Routing: rules, then the default.
#[derive(Debug, Clone)]
pub struct Routing {
    /// The upstream used when no rule matches.
    pub default: String,
    /// Rules in order.
    pub rules: Vec<Rule>,
}

/// One resource (key pair or instance) named on several providers.
pub type Names = BTreeMap<Provider, String>;

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Serve HTTPS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Where audit records go and what happens when they cannot be written.
    pub audit: AuditConfig,
    /// Replay protection.
    pub replay: ReplayConfig,
    /// Inbound limits.
    pub inbound: InboundConfig,
    /// The admin listener (`[admin]`), if any.
    pub admin: Option<AdminConfig>,
    /// Where replicas share state (`[state]`), if anywhere.
    pub state: Option<StateConfig>,
    /// A folder overriding the embedded mapping tables.
    pub mappings: Option<PathBuf>,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Time limit for a whole request, upstream calls included.
    pub request_timeout: Duration,
    /// Run the built-in simulator in-process (for upstreams with `endpoint = "sim"`), with this seed.
    pub simulator: Option<Option<PathBuf>>,
    /// The callers.
    pub callers: Vec<CallerConfig>,
    /// The upstreams by name.
    pub upstreams: BTreeMap<String, UpstreamConfig>,
    /// Routing.
    pub routing: Routing,
    /// Key pairs named on several providers.
    pub keys: Vec<Names>,
    /// Each `[[keys]]` row's replication settings, at the same index as in `keys`.
    pub key_options: Vec<KeyOptions>,
    /// `[replication]`.
    pub replication: ReplicationConfig,
    /// Instances known on several providers.
    pub instances: Vec<Names>,
}

/// A `[[keys]]` row's replication settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// Import the key on a provider that lacks it before binding it there (`replicate = true`, or the
    /// `[replication]` default).
    pub replicate: bool,
    /// The public key, for a provider that does not report it (ECS).
    pub public_key: Option<String>,
}

/// `[replication]`: key replication's default and where learned names are kept.
///
/// ```toml
/// [replication]
/// replicate = false              # the default of every [[keys]] row's `replicate`
/// state = "crossgate-keys.json"  # the ids and names learned by replication, kept across restarts
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// The default of every row's `replicate`.
    pub replicate: bool,
    /// The file learned ids and names are kept in.
    pub state: PathBuf,
}

impl Default for ReplicationConfig {
    fn default() -> ReplicationConfig {
        ReplicationConfig { replicate: false, state: PathBuf::from("crossgate-keys.json") }
    }
}

/// The demo caller's SecretId / AccessKeyId.
pub const DEMO_CALLER_ID: &str = "AKIDcrossgateDEMOcaller0000000000";
/// The demo caller's secret (demo only: it guards nothing but the simulator).
pub const DEMO_CALLER_SECRET: &str = "crossgate-demo-secret-key";

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
const DEFAULT_READ_TIMEOUT_MS: u64 = 5_000;
const DEFAULT_RETRIES: u64 = 2;
/// The most retries a config may ask for: past this, retrying only delays the caller's answer.
const MAX_RETRIES: u64 = 10;
const DEFAULT_QUEUE: usize = 100;
const DEFAULT_IDLE_CONNECTIONS: usize = 256;
/// Connections in use at once per serving thread: far above what the clouds' rate limits let through
/// over their round trips, and a bound on what a thousand callers at once hold.
const DEFAULT_MAX_CONNECTIONS: u64 = 128;
const MAX_MAX_CONNECTIONS: u64 = 65_536;
const DEFAULT_BREAKER_FAILURES: u64 = 5;
const DEFAULT_BREAKER_COOL_DOWN_MS: u64 = 10_000;
const DEFAULT_MAX_BODY: usize = 1024 * 1024;

const DEMO: &str = include_str!("demo.toml");

impl Config {
    /// Loads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 1,
            problem: format!("cannot read the config: {e}; check the path given to --config"),
        })?;
        Config::parse(&file, &text, &|name| std::env::var(name).ok())
    }

    /// The embedded default: the demo caller, every provider served by the built-in simulator.
    pub fn demo() -> Config {
        // Upstream secrets for the in-process simulator are made fresh each run: callers never see them.
        let sim_secret = uuid::Uuid::new_v4().simple().to_string();
        let env = move |name: &str| (name == "CROSSGATE_SIM_SECRET").then(|| sim_secret.clone());
        Config::parse("src/demo.toml (embedded)", DEMO, &env).expect("the embedded demo config is valid")
    }

    /// Parses config text; `env` resolves `${VAR}` references.
    pub fn parse(file: &str, text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let at = |offset: usize, problem: String| ConfigError {
            file: file.to_owned(),
            line: tomlfile::line_of(text, offset),
            problem,
        };
        let raw: RawConfig = tomlfile::parse(text).map_err(|(offset, message)| at(offset, message))?;
        let RawConfig {
            listen,
            tls,
            audit,
            replay,
            inbound,
            admin,
            state,
            mappings,
            max_body_bytes,
            request_timeout_ms,
            simulator,
            callers,
            upstreams,
            routing,
            keys,
            replication,
            instances,
        } = raw;

        let listen = match listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8080)),
            Some(s) => s.get_ref().parse().map_err(|_| {
                at(
                    s.span().start,
                    format!("`listen = \"{}\"` is not an address; write it like \"127.0.0.1:8080\"", s.get_ref()),
                )
            })?,
        };
        let resolve = |s: &Spanned<String>| -> Result<String, ConfigError> {
            expand_env(s.get_ref(), env).map_err(|var| {
                at(s.span().start, format!("environment variable `{var}` is not set; export it or write the value"))
            })
        };
        let resolve_secret = |s: &Spanned<Secret>| -> Result<Secret, ConfigError> {
            expand_env(s.get_ref().expose(), env).map(Secret::new).map_err(|var| {
                at(s.span().start, format!("environment variable `{var}` is not set; export it or write the value"))
            })
        };

        let mut checked_callers = Vec::with_capacity(callers.len());
        for c in callers {
            let span = c.span().start;
            let RawCaller { name, secret_id, secret_key, allow_actions, allow_upstreams, allow_instances } =
                c.into_inner();
            let caller = CallerConfig {
                name,
                secret_id: resolve(&secret_id)?,
                secret_key: resolve_secret(&secret_key)?,
                permissions: guard::permissions(allow_actions, allow_upstreams, allow_instances),
            };
            if caller.secret_id.is_empty() || caller.secret_key.is_empty() {
                return Err(at(span, format!("caller `{}` needs a non-empty secret_id and secret_key", caller.name)));
            }
            if checked_callers.iter().any(|o: &CallerConfig| o.secret_id == caller.secret_id || o.name == caller.name) {
                return Err(at(
                    span,
                    format!("caller `{}` repeats another caller's name or secret_id; each must be unique", caller.name),
                ));
            }
            checked_callers.push(caller);
        }

        let mut checked_upstreams = BTreeMap::new();
        let mut shadows: BTreeMap<String, (usize, String)> = BTreeMap::new();
        for (name, up) in upstreams {
            let span = up.span().start;
            let RawUpstream {
                provider,
                endpoint,
                region,
                secret_id,
                secret_key,
                signature,
                timeout_ms,
                ca_file,
                connect_timeout_ms,
                read_timeout_ms,
                retries,
                queue,
                breaker_failures,
                breaker_cool_down_ms,
                idle_connections,
                max_connections,
                running,
                reboot,
                wait,
                wait_timeout_ms,
                shadow,
            } = up.into_inner();
            // A number with a lower (and optional upper) bound, or its default.
            let bounded = |value: Option<Spanned<u64>>, name: &str, default: u64, min: u64, max: Option<u64>| {
                let Some(value) = value else { return Ok(default) };
                let n = *value.get_ref();
                if n < min || max.is_some_and(|max| n > max) {
                    let range = max.map_or(format!("at least {min}"), |max| format!("from {min} to {max}"));
                    return Err(at(value.span().start, format!("`{name} = {n}` is out of range; write {range}")));
                }
                Ok(n)
            };
            let millis = |value: Option<Spanned<u64>>, name: &str, default: u64| {
                bounded(value, name, default, 1, None).map(Duration::from_millis)
            };
            let provider_kind = Provider::from_name(provider.get_ref()).ok_or_else(|| {
                at(
                    provider.span().start,
                    format!(
                        "unknown provider `{}`; use tencent-cvm, tencent-lighthouse or aliyun-ecs",
                        provider.get_ref()
                    ),
                )
            })?;
            let endpoint_parsed = parse_endpoint(endpoint.get_ref()).ok_or_else(|| {
                at(
                    endpoint.span().start,
                    format!(
                        "endpoint `{}` is not a URL; write https://host[:port] (http:// for simulators) or \"sim\"",
                        endpoint.get_ref()
                    ),
                )
            })?;
            let scheme =
                parse_scheme(provider_kind, signature.as_ref().map(|s| s.get_ref().as_str())).ok_or_else(|| {
                    let s = signature.as_ref().expect("only an explicit signature can be wrong");
                    at(
                        s.span().start,
                        format!(
                            "signature `{}` does not fit {provider_kind}; use {}",
                            s.get_ref(),
                            if provider_kind == Provider::AliyunEcs {
                                "acs3 or hmac-sha1"
                            } else {
                                "tc3, hmac-sha256 or hmac-sha1"
                            }
                        ),
                    )
                })?;
            let upstream = UpstreamConfig {
                name: name.get_ref().clone(),
                provider: provider_kind,
                endpoint: endpoint_parsed,
                region,
                secret_id: resolve(&secret_id)?,
                secret_key: resolve_secret(&secret_key)?,
                scheme,
                timeout: millis(timeout_ms, "timeout_ms", DEFAULT_TIMEOUT_MS)?,
                ca_file: ca_file.map(PathBuf::from),
                connect_timeout: millis(connect_timeout_ms, "connect_timeout_ms", DEFAULT_CONNECT_TIMEOUT_MS)?,
                read_timeout: millis(read_timeout_ms, "read_timeout_ms", DEFAULT_READ_TIMEOUT_MS)?,
                retries: bounded(retries, "retries", DEFAULT_RETRIES, 0, Some(MAX_RETRIES))? as u32,
                queue: queue.unwrap_or(DEFAULT_QUEUE),
                breaker_failures: bounded(
                    breaker_failures,
                    "breaker_failures",
                    DEFAULT_BREAKER_FAILURES,
                    1,
                    Some(u64::from(u32::MAX)),
                )? as u32,
                breaker_cool_down: millis(breaker_cool_down_ms, "breaker_cool_down_ms", DEFAULT_BREAKER_COOL_DOWN_MS)?,
                idle_connections: idle_connections.unwrap_or(DEFAULT_IDLE_CONNECTIONS),
                max_connections: bounded(
                    max_connections,
                    "max_connections",
                    DEFAULT_MAX_CONNECTIONS,
                    1,
                    Some(MAX_MAX_CONNECTIONS),
                )? as usize,
                policy: policy::check(
                    provider_kind,
                    policy::RawPolicy {
                        running: running.as_ref().map(|s| (s.get_ref().as_str(), s.span().start)),
                        reboot: reboot.as_ref().map(|s| (s.get_ref().as_str(), s.span().start)),
                        wait: wait.as_ref().map(|s| (*s.get_ref(), s.span().start)),
                        wait_timeout_ms: wait_timeout_ms.as_ref().map(|s| (*s.get_ref(), s.span().start)),
                    },
                )
                .map_err(|(offset, problem)| at(offset, problem))?,
                shadow: shadow.as_ref().map(|s| s.get_ref().clone()),
            };
            if let Some(s) = &shadow {
                shadows.insert(name.get_ref().clone(), (s.span().start, s.get_ref().clone()));
            }
            if upstream.secret_id.is_empty() || upstream.secret_key.is_empty() {
                return Err(at(
                    span,
                    format!("upstream `{}` needs a non-empty secret_id and secret_key", upstream.name),
                ));
            }
            checked_upstreams.insert(name.into_inner(), upstream);
        }
        if checked_upstreams.is_empty() {
            return Err(at(text.len(), "no upstream configured; add an [upstreams.NAME] table".to_owned()));
        }
        for (name, (offset, shadow)) in &shadows {
            let Some(other) = checked_upstreams.get(shadow) else {
                let names: Vec<_> = checked_upstreams.keys().map(String::as_str).collect();
                return Err(at(
                    *offset,
                    format!("`shadow = \"{shadow}\"` is no upstream; configured: {}", names.join(", ")),
                ));
            };
            if other.provider == checked_upstreams[name].provider || other.shadow.is_some() {
                return Err(at(
                    *offset,
                    format!(
                        "`shadow = \"{shadow}\"` must be an upstream on another cloud that has no shadow of its own"
                    ),
                ));
            }
        }

        let routing = routing
            .ok_or_else(|| at(text.len(), "no [routing] table; add one with `default = \"<upstream>\"`".to_owned()))?;
        let routing_span = routing.span().start;
        let RawRouting { default, rules } = routing.into_inner();
        let known = |name: &str, offset: usize| -> Result<String, ConfigError> {
            if checked_upstreams.contains_key(name) {
                Ok(name.to_owned())
            } else {
                let names: Vec<_> = checked_upstreams.keys().map(String::as_str).collect();
                Err(at(offset, format!("unknown upstream `{name}`; configured upstreams: {}", names.join(", "))))
            }
        };
        let default = known(default.get_ref(), default.span().start)?;
        let mut checked_rules = Vec::with_capacity(rules.len());
        for rule in rules {
            let span = rule.span().start;
            let RawRule { instance, caller, dialect, upstream } = rule.into_inner();
            let dialect = match dialect {
                None => None,
                Some(d) => Some(Dialect::from_name(&d).ok_or_else(|| {
                    at(
                        span,
                        format!("unknown dialect `{d}`; use tencent_v2, tencent_cvm, tencent_lighthouse or aliyun_ecs"),
                    )
                })?),
            };
            if let Some(c) = &caller
                && !checked_callers.iter().any(|k| &k.name == c)
            {
                return Err(at(span, format!("rule names caller `{c}`, which is not in [[callers]]")));
            }
            let upstream = known(&upstream, span)?;
            checked_rules.push(Rule { instance: instance.map(|g| WildMatch::new(&g)), caller, dialect, upstream });
        }
        let _ = routing_span;

        for caller in &checked_callers {
            for upstream in caller.permissions.upstreams.iter().flatten() {
                known(upstream, 0).map_err(|e| ConfigError {
                    problem: format!("caller `{}`: allow_upstreams: {}", caller.name, e.problem),
                    ..e
                })?;
            }
        }
        let audit = section(audit, guard::audit, &at)?;
        let replay = section(replay, guard::replay, &at)?;
        let inbound = section(inbound, guard::inbound, &at)?;
        let state = match state {
            None => None,
            Some(raw) => {
                let span = raw.span().start;
                let expand = |v: &str| expand_env(v, env);
                Some(state::state(raw.into_inner(), &expand).map_err(|problem| at(span, problem))?)
            }
        };
        let admin = match admin {
            None => None,
            Some(raw) => {
                let span = raw.span().start;
                let expand = |v: &str| expand_env(v, env);
                Some(admin::admin(raw.into_inner(), &expand).map_err(|problem| at(span, problem))?)
            }
        };

        let replication = replication.map_or_else(ReplicationConfig::default, |r| {
            let RawReplication { replicate, state } = r.into_inner();
            ReplicationConfig {
                replicate: replicate.unwrap_or(false),
                state: state.map_or_else(|| ReplicationConfig::default().state, PathBuf::from),
            }
        });
        let (keys, key_options) = key_rows(&at, keys, replication.replicate)?;
        let instances = names_table(&at, "instances", instances.into_iter().map(|r| (r, 2)).collect())?;

        Ok(Config {
            listen,
            tls: tls.map(|t| (PathBuf::from(t.cert), PathBuf::from(t.key))),
            audit,
            replay,
            inbound,
            admin,
            state,
            mappings: mappings.map(PathBuf::from),
            max_body_bytes: max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            request_timeout: request_timeout_ms
                .map_or_else(|| default_request_timeout(&checked_upstreams), Duration::from_millis),
            simulator: simulator.map(|s| s.seed.map(PathBuf::from)),
            callers: checked_callers,
            upstreams: checked_upstreams,
            routing: Routing { default, rules: checked_rules },
            keys,
            key_options,
            replication,
            instances,
        })
    }

    /// True when some upstream is the in-process simulator.
    pub fn uses_simulator(&self) -> bool {
        self.upstreams.values().any(|u| u.endpoint == Endpoint::Simulator)
    }
}

/// Checks an optional table, naming its line when it is wrong.
fn section<R, T>(
    raw: Option<Spanned<R>>,
    check: fn(Option<R>) -> Result<T, String>,
    at: &dyn Fn(usize, String) -> ConfigError,
) -> Result<T, ConfigError> {
    let span = raw.as_ref().map_or(0, |r| r.span().start);
    check(raw.map(Spanned::into_inner)).map_err(|problem| at(span, problem))
}

/// `[[keys]]`: each row's names, and its replication settings (`replicate`, `public_key`). A row that
/// replicates may name the key on one provider only.
fn key_rows(
    at: &dyn Fn(usize, String) -> ConfigError,
    rows: Vec<Spanned<BTreeMap<Spanned<String>, RawCell>>>,
    replicate_default: bool,
) -> Result<(Vec<Names>, Vec<KeyOptions>), ConfigError> {
    let mut names = Vec::with_capacity(rows.len());
    let mut options = Vec::with_capacity(rows.len());
    for row in rows {
        let span = row.span();
        let mut option = KeyOptions { replicate: replicate_default, public_key: None };
        let mut cells = BTreeMap::new();
        for (name, cell) in row.into_inner() {
            let offset = name.span().start;
            match (name.get_ref().as_str(), cell) {
                ("replicate", RawCell::Flag(flag)) => option.replicate = flag,
                ("public_key", RawCell::Text(key)) => {
                    crate::sshkey::PublicKey::parse(&key).map_err(|why| {
                        at(offset, format!("[[keys]]: `public_key` is not an OpenSSH public key: {why}"))
                    })?;
                    option.public_key = Some(key.trim().to_owned());
                }
                (_, RawCell::Text(text)) => {
                    cells.insert(name, text);
                }
                (other, RawCell::Flag(_)) => {
                    return Err(at(offset, format!("[[keys]]: `{other}` takes a name, not true or false")));
                }
            }
        }
        let min = if option.replicate { 1 } else { 2 };
        names.push((Spanned::new(span, cells), min));
        options.push(option);
    }
    Ok((names_table(at, "keys", names)?, options))
}

/// A names row as written: provider -> name.
type RawNames = Spanned<BTreeMap<Spanned<String>, String>>;

/// Rows of names, each with the fewest providers it must name.
fn names_table(
    at: &dyn Fn(usize, String) -> ConfigError,
    table: &str,
    rows: Vec<(RawNames, usize)>,
) -> Result<Vec<Names>, ConfigError> {
    let mut out: Vec<Names> = Vec::with_capacity(rows.len());
    for (row, min) in rows {
        let span = row.span().start;
        let mut names = Names::new();
        for (provider, name) in row.into_inner() {
            let p = Provider::from_name(provider.get_ref()).ok_or_else(|| {
                at(
                    provider.span().start,
                    format!(
                        "[[{table}]]: unknown provider `{}`; use tencent-cvm, tencent-lighthouse or aliyun-ecs",
                        provider.get_ref()
                    ),
                )
            })?;
            if out.iter().any(|other| other.get(&p) == Some(&name)) {
                return Err(at(span, format!("[[{table}]]: `{name}` on {p} appears in two rows; merge them")));
            }
            names.insert(p, name);
        }
        if names.len() < min {
            let why = if min == 2 {
                "a row must name the resource on at least two providers (or, for a key, set `replicate = true`)"
            } else {
                "a row must name the key on at least one provider"
            };
            return Err(at(span, format!("[[{table}]]: {why}")));
        }
        out.push(names);
    }
    Ok(out)
}

/// The whole request's time limit when none is set: the longest upstream call, or the longest sequence a
/// state policy makes (a force-stop's look-up, stop, poll, change and start; a wait's change, then its
/// wait and last look-up), plus 5 s.
fn default_request_timeout(upstreams: &BTreeMap<String, UpstreamConfig>) -> Duration {
    let longest = upstreams
        .values()
        .map(|u| {
            let p = &u.policy;
            let calls = match (p.running, p.reboot) {
                (policy::OnRunning::ForceStop, _) => 5,
                (_, policy::Reboot::IfRunning) => 3,
                _ => 1,
            };
            u.timeout * calls + p.wait.map_or(Duration::ZERO, |w| w + u.timeout)
        })
        .max()
        .unwrap_or(Duration::from_millis(DEFAULT_TIMEOUT_MS));
    longest.max(Duration::from_millis(DEFAULT_TIMEOUT_MS)) + Duration::from_secs(5)
}

/// Replaces every `${VAR}` with its value; the error is the name of an unset variable.
fn expand_env(value: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = &after[..end];
        out.push_str(&env(name).ok_or_else(|| name.to_owned())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_endpoint(text: &str) -> Option<Endpoint> {
    if text == "sim" {
        return Some(Endpoint::Simulator);
    }
    let (tls, rest) =
        if let Some(r) = text.strip_prefix("https://") { (true, r) } else { (false, text.strip_prefix("http://")?) };
    let authority = rest.trim_end_matches('/');
    let valid = !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' ']);
    let default_port = if tls { ":443" } else { ":80" };
    valid
        .then(|| Endpoint::Url { tls, authority: authority.strip_suffix(default_port).unwrap_or(authority).to_owned() })
}

fn parse_scheme(provider: Provider, signature: Option<&str>) -> Option<Scheme> {
    match (provider.key_kind() == crate::model::KeyKind::Name, signature) {
        (true, None | Some("acs3")) => Some(Scheme::Acs3),
        (true, Some("hmac-sha1")) => Some(Scheme::AliyunRpc),
        (false, None | Some("tc3")) => Some(Scheme::Tc3),
        (false, Some("hmac-sha256")) => Some(Scheme::TencentV1Sha256),
        (false, Some("hmac-sha1")) => Some(Scheme::TencentV1Sha1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "SET").then(|| "from-env".to_owned())
    }

    const GOOD: &str = r#"
listen = "127.0.0.1:9000"
[[callers]]
name = "billing"
secret_id = "AKIDbilling"
secret_key = "${SET}"
[upstreams.cvm]
provider = "tencent-cvm"
endpoint = "https://cvm.tencentcloudapi.com"
region = "ap-guangzhou"
secret_id = "id"
secret_key = "key"
[upstreams.ecs]
provider = "aliyun-ecs"
endpoint = "http://127.0.0.1:9100"
region = "cn-hangzhou"
secret_id = "id"
secret_key = "key"
signature = "hmac-sha1"
timeout_ms = 500
[routing]
default = "cvm"
[[routing.rules]]
instance = "i-*"
upstream = "ecs"
[[keys]]
tencent-cvm = "skey-4e5ty7i8"
aliyun-ecs = "FinanceJoshuaV25"
"#;

    #[test]
    fn a_good_config_loads() {
        let c = Config::parse("c.toml", GOOD, &env).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.callers[0].secret_key.expose(), "from-env");
        let ecs = &c.upstreams["ecs"];
        assert_eq!(ecs.scheme, Scheme::AliyunRpc);
        assert_eq!(ecs.endpoint, Endpoint::Url { tls: false, authority: "127.0.0.1:9100".into() });
        assert_eq!(ecs.timeout, Duration::from_millis(500));
        assert_eq!(
            c.upstreams["cvm"].endpoint,
            Endpoint::Url { tls: true, authority: "cvm.tencentcloudapi.com".into() }
        );
        assert!(c.routing.rules[0].instance.as_ref().unwrap().matches("i-abc"));
        assert_eq!(c.keys[0][&Provider::AliyunEcs], "FinanceJoshuaV25");
    }

    #[test]
    fn the_demo_config_is_valid() {
        let c = Config::demo();
        assert!(c.uses_simulator());
        assert!(c.callers.iter().any(|k| k.secret_id == DEMO_CALLER_ID));
    }

    #[test]
    fn the_deployment_example_is_valid_for_a_fleet() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/crossgate.toml")).unwrap();
        let env = |name: &str| Some(format!("{name}-value-for-the-test"));
        let c = Config::parse("deploy/crossgate.toml", &text, &env).unwrap();
        assert!(matches!(c.audit.store, crate::audit::store::StoreSpec::Postgres(_)));
        assert_eq!(c.state.as_ref().map(|s| s.on_unavailable), Some(OnUnavailable::Refuse));
        assert!(c.admin.as_ref().is_some_and(|a| a.token.is_some() && !a.listen.ip().is_loopback()));
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn the_migration_example_is_valid_and_sets_what_the_readme_walks_through() {
        let c = Config::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/migration.toml"))).unwrap();
        assert_eq!(c.upstreams["cvm"].shadow.as_deref(), Some("ecs"));
        assert_eq!(c.upstreams["cvm"].policy.running, OnRunning::ForceStop);
        assert_eq!(c.upstreams["ecs"].policy.reboot, Reboot::IfRunning);
        assert!(c.upstreams["lighthouse"].policy.wait.is_some());
        assert!(c.key_options.iter().any(|o| o.replicate));
        let sim = Endpoint::Url { tls: false, authority: "127.0.0.1:9100".into() };
        assert!(c.upstreams.values().all(|u| u.endpoint == sim), "every cloud is the standalone simulator");
    }

    /// Replaces `from` with `to` and expects an error on the line that contains `marker`.
    fn error_for(from: &str, to: &str, marker: &str) -> ConfigError {
        let text = GOOD.replacen(from, to, 1);
        let e = Config::parse("c.toml", &text, &env).unwrap_err();
        let line = text.lines().position(|l| l.contains(marker)).map(|p| p + 1);
        assert_eq!(Some(e.line), line, "{e}");
        assert_eq!(e.file, "c.toml");
        e
    }

    #[test]
    fn errors_name_file_line_and_fix() {
        assert!(error_for("\"${SET}\"", "\"${UNSET}\"", "UNSET").problem.contains("UNSET"));
        let e = error_for("\"aliyun-ecs\"\nendpoint", "\"aliyun-x\"\nendpoint", "aliyun-x");
        assert!(e.problem.contains("unknown provider"));
        assert!(error_for("\"hmac-sha1\"", "\"tc3\"", "\"tc3\"").problem.contains("acs3 or hmac-sha1"));
        let e = error_for("upstream = \"ecs\"", "upstream = \"nope\"", "[[routing.rules]]");
        assert!(e.problem.contains("unknown upstream `nope`"));
        assert!(error_for("timeout_ms = 500", "timeout_ms = 500\nbogus = 1", "bogus").problem.contains("bogus"));
        assert!(error_for("\"127.0.0.1:9000\"", "\"localhost\"", "localhost").problem.contains("not an address"));
    }

    #[test]
    fn upstream_call_bounds_have_defaults_and_can_be_set() {
        let c = Config::parse("c.toml", GOOD, &env).unwrap();
        let cvm = &c.upstreams["cvm"];
        assert_eq!(
            (cvm.connect_timeout, cvm.read_timeout, cvm.timeout),
            (Duration::from_secs(3), Duration::from_secs(5), Duration::from_secs(10))
        );
        assert_eq!((cvm.retries, cvm.queue, cvm.breaker_failures), (2, 100, 5));
        assert_eq!(cvm.breaker_cool_down, Duration::from_secs(10));
        let set = "timeout_ms = 500\nconnect_timeout_ms = 50\nread_timeout_ms = 200\nretries = 0\nqueue = 3\n\
                   breaker_failures = 1\nbreaker_cool_down_ms = 700";
        let c = Config::parse("c.toml", &GOOD.replacen("timeout_ms = 500", set, 1), &env).unwrap();
        let ecs = &c.upstreams["ecs"];
        assert_eq!((ecs.connect_timeout, ecs.read_timeout), (Duration::from_millis(50), Duration::from_millis(200)));
        assert_eq!((ecs.retries, ecs.queue, ecs.breaker_failures), (0, 3, 1));
        assert_eq!(ecs.breaker_cool_down, Duration::from_millis(700));
    }

    #[test]
    fn state_policies_are_read_per_upstream_and_lengthen_the_request_limit() {
        let c = Config::parse("c.toml", GOOD, &env).unwrap();
        assert!(c.upstreams["ecs"].policy.is_default());
        assert_eq!(c.request_timeout, Duration::from_secs(15));
        let text = GOOD.replacen("timeout_ms = 500", "timeout_ms = 500\nreboot = \"if-running\"", 1).replacen(
            "secret_key = \"key\"\n[upstreams.ecs]",
            "secret_key = \"key\"\nrunning = \"force-stop\"\n[upstreams.ecs]",
            1,
        );
        let c = Config::parse("c.toml", &text, &env).unwrap();
        assert_eq!(c.upstreams["cvm"].policy.running, OnRunning::ForceStop);
        assert_eq!(c.upstreams["ecs"].policy.reboot, Reboot::IfRunning);
        assert_eq!(c.request_timeout, Duration::from_secs(55), "five CVM calls of 10 s, and 5 s");
        let e = error_for("timeout_ms = 500", "timeout_ms = 500\nrunning = \"force-stop\"", "running");
        assert!(e.problem.contains("tencent-cvm policy"), "{e}");
    }

    #[test]
    fn state_names_redis_and_what_to_do_without_it() {
        let text = format!("{GOOD}\n[state]\nredis = \"redis://127.0.0.1:6379/0\"\non_unavailable = \"local\"\n");
        let c = Config::parse("c.toml", &text, &env).unwrap();
        let state = c.state.unwrap();
        assert_eq!((state.on_unavailable, state.prefix.as_str()), (OnUnavailable::Local, "crossgate:"));
        assert!(!format!("{:?}", state.redis).contains("6379"), "the URL is a secret");
        for (bad, why) in [
            ("redis = \"http://x\"", "redis://"),
            ("redis = \"redis://r\"\non_unavailable = \"maybe\"", "not known"),
            ("prefix = \"p\"", "names no store"),
        ] {
            let e = Config::parse("c.toml", &format!("{GOOD}\n[state]\n{bad}\n"), &env).unwrap_err();
            assert!(e.problem.contains(why), "{bad}: {e}");
        }
        assert!(Config::parse("c.toml", GOOD, &env).unwrap().state.is_none());
    }

    #[test]
    fn a_shadow_is_another_cloud_s_upstream() {
        let shadowed = GOOD.replacen("timeout_ms = 500", "timeout_ms = 500\nshadow = \"cvm\"", 1);
        let c = Config::parse("c.toml", &shadowed, &env).unwrap();
        assert_eq!(c.upstreams["ecs"].shadow.as_deref(), Some("cvm"));
        let e = error_for("timeout_ms = 500", "timeout_ms = 500\nshadow = \"nowhere\"", "shadow");
        assert!(e.problem.contains("no upstream"), "{e}");
        let e = error_for("timeout_ms = 500", "timeout_ms = 500\nshadow = \"ecs\"", "shadow");
        assert!(e.problem.contains("another cloud"), "{e}");
    }

    #[test]
    fn out_of_range_call_bounds_name_the_line() {
        let e = error_for("timeout_ms = 500", "timeout_ms = 0", "timeout_ms = 0");
        assert!(e.problem.contains("out of range") && e.problem.contains("at least 1"), "{e}");
        for (setting, fix) in [
            ("read_timeout_ms = 0", "at least 1"),
            ("connect_timeout_ms = 0", "at least 1"),
            ("retries = 11", "from 0 to 10"),
            ("breaker_failures = 0", "from 1 to"),
            ("breaker_cool_down_ms = 0", "at least 1"),
        ] {
            let e = error_for("timeout_ms = 500", &format!("timeout_ms = 500\n{setting}"), setting);
            assert!(e.problem.contains("out of range") && e.problem.contains(fix), "{setting}: {e}");
        }
        let e = error_for("timeout_ms = 500", "timeout_ms = 500\nqueue = -1", "queue");
        assert!(e.problem.contains("-1"), "{e}");
    }

    #[test]
    fn env_expansion() {
        assert_eq!(expand_env("a${SET}b", &env).unwrap(), "afrom-envb");
        assert_eq!(expand_env("${NOPE}", &env).unwrap_err(), "NOPE");
        assert_eq!(expand_env("plain", &env).unwrap(), "plain");
    }
}
