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

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;
use wildmatch::WildMatch;

use crate::dialect::Dialect;
use crate::model::Provider;
use crate::secret::Secret;
use crate::sign::Scheme;
use crate::tomlfile;

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
    audit: Option<RawAudit>,
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
    keys: Vec<Spanned<BTreeMap<Spanned<String>, String>>>,
    #[serde(default)]
    instances: Vec<Spanned<BTreeMap<Spanned<String>, String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: String,
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudit {
    path: String,
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
    timeout_ms: Option<u64>,
    ca_file: Option<String>,
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
    /// The whole upstream call's time limit.
    pub timeout: Duration,
    /// An extra CA bundle (PEM) to trust besides the webpki roots.
    pub ca_file: Option<PathBuf>,
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
    /// Where audit lines go (JSON lines); `None` writes them to standard output.
    pub audit_path: Option<PathBuf>,
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
    /// Instances known on several providers.
    pub instances: Vec<Names>,
}

/// The demo caller's SecretId / AccessKeyId.
pub const DEMO_CALLER_ID: &str = "AKIDcrossgateDEMOcaller0000000000";
/// The demo caller's secret (demo only: it guards nothing but the simulator).
pub const DEMO_CALLER_SECRET: &str = "crossgate-demo-secret-key";

const DEFAULT_TIMEOUT_MS: u64 = 10_000;
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
            mappings,
            max_body_bytes,
            request_timeout_ms,
            simulator,
            callers,
            upstreams,
            routing,
            keys,
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
            let RawCaller { name, secret_id, secret_key } = c.into_inner();
            let caller =
                CallerConfig { name, secret_id: resolve(&secret_id)?, secret_key: resolve_secret(&secret_key)? };
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
        for (name, up) in upstreams {
            let span = up.span().start;
            let RawUpstream { provider, endpoint, region, secret_id, secret_key, signature, timeout_ms, ca_file } =
                up.into_inner();
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
                timeout: Duration::from_millis(timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS)),
                ca_file: ca_file.map(PathBuf::from),
            };
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

        let keys = names_table(&at, "keys", keys)?;
        let instances = names_table(&at, "instances", instances)?;

        Ok(Config {
            listen,
            tls: tls.map(|t| (PathBuf::from(t.cert), PathBuf::from(t.key))),
            audit_path: audit.map(|a| PathBuf::from(a.path)),
            mappings: mappings.map(PathBuf::from),
            max_body_bytes: max_body_bytes.unwrap_or(DEFAULT_MAX_BODY),
            request_timeout: Duration::from_millis(request_timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS + 5_000)),
            simulator: simulator.map(|s| s.seed.map(PathBuf::from)),
            callers: checked_callers,
            upstreams: checked_upstreams,
            routing: Routing { default, rules: checked_rules },
            keys,
            instances,
        })
    }

    /// True when some upstream is the in-process simulator.
    pub fn uses_simulator(&self) -> bool {
        self.upstreams.values().any(|u| u.endpoint == Endpoint::Simulator)
    }
}

fn names_table(
    at: &dyn Fn(usize, String) -> ConfigError,
    table: &str,
    rows: Vec<Spanned<BTreeMap<Spanned<String>, String>>>,
) -> Result<Vec<Names>, ConfigError> {
    let mut out: Vec<Names> = Vec::with_capacity(rows.len());
    for row in rows {
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
        if names.len() < 2 {
            return Err(at(span, format!("[[{table}]]: a row must name the resource on at least two providers")));
        }
        out.push(names);
    }
    Ok(out)
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
    fn env_expansion() {
        assert_eq!(expand_env("a${SET}b", &env).unwrap(), "afrom-envb");
        assert_eq!(expand_env("${NOPE}", &env).unwrap_err(), "NOPE");
        assert_eq!(expand_env("plain", &env).unwrap(), "plain");
    }
}
