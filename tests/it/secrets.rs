//! No configured secret ever shows: not in the `Debug` output of the configuration and the upstreams, not
//! in an answer (a refused signature included: its string to sign may show, the key never), not in a log
//! line at `trace` level, not in an audit line, and not in a config error that names a bad value.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossgate::app;
use crossgate::audit::MemorySink;
use crossgate::audit::jsonl::{JsonLines, Options};
use crossgate::clock::SystemClock;
use crossgate::config::{Config, DEMO_CALLER_SECRET};
use crossgate::dialect::{Dialect, WireRequest};
use crossgate::provider::Upstream;
use crossgate::sign::Scheme;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};

use crate::harness::{Env, Got, Signer, bind_op, config_with, ecs_acs3_request, ecs_rpc_request, tc3_request};

/// A second caller's secret, and the secret of an upstream the simulator does not know.
const VAULT_SECRET: &str = "Vault-Caller-Secret-9Q2wE7";
const ROGUE_SECRET: &str = "Rogue-Upstream-Secret-7Hk3Zp";
/// The upstream secret `harness::config_with` gives the simulated clouds.
const UPSTREAM_SECRET: &str = "e2e-upstream-secret-0f3a";

/// The second caller's SecretId.
const VAULT_ID: &str = "AKIDvaultCaller000000000000000000";

/// Every secret the gateway of [`gateway_config`] holds.
fn secrets(config: &Config) -> Vec<String> {
    let mut all: Vec<String> = config.callers.iter().map(|c| c.secret_key.expose().to_owned()).collect();
    all.extend(config.upstreams.values().map(|u| u.secret_key.expose().to_owned()));
    all.sort();
    all.dedup();
    all
}

/// The demo gateway with a second caller and an upstream `rogue` (machines `ins-r0gue*`) that signs with
/// a secret the simulator at `rogue_endpoint` does not know.
fn gateway_config(rogue_endpoint: &str) -> Config {
    let rule = "[[routing.rules]]\ninstance = \"ins-r0gue*\"\nupstream = \"rogue\"\n";
    let rogue = format!(
        "[upstreams.rogue]\nprovider = \"tencent-cvm\"\nendpoint = \"{rogue_endpoint}\"\nregion = \"ap-guangzhou\"\n\
         secret_id = \"AKIDsimulatorCVM\"\nsecret_key = \"{ROGUE_SECRET}\"\n"
    );
    let vault = format!("[[callers]]\nname = \"vault\"\nsecret_id = \"{VAULT_ID}\"\nsecret_key = \"{VAULT_SECRET}\"\n");
    config_with(rule, &format!("{vault}{rogue}"))
}

/// Fails when `text` holds one of `secrets`, showing where with the secret itself masked.
fn assert_hidden(what: &str, text: &str, secrets: &[String]) {
    if secrets.iter().any(|secret| text.contains(secret.as_str())) {
        let masked = secrets.iter().fold(text.to_owned(), |t, secret| t.replace(secret.as_str(), "<SECRET>"));
        panic!("{what} shows a configured secret:\n{masked}");
    }
}

#[tokio::test]
async fn debug_output_of_the_configuration_and_the_upstreams_shows_no_secret() {
    let config = gateway_config("http://127.0.0.1:9");
    let secrets = secrets(&config);
    assert!(
        [DEMO_CALLER_SECRET, VAULT_SECRET, ROGUE_SECRET, UPSTREAM_SECRET]
            .iter()
            .all(|s| secrets.iter().any(|k| k == s)),
        "{secrets:?}"
    );
    assert_hidden("Debug of Config", &format!("{config:?} {config:#?}"), &secrets);
    for caller in &config.callers {
        assert_hidden("Debug of CallerConfig", &format!("{caller:?} {caller:#?}"), &secrets);
    }
    for up in config.upstreams.values() {
        assert_hidden("Debug of UpstreamConfig", &format!("{up:?} {up:#?}"), &secrets);
        let upstream = Upstream::new(up.clone(), Some("127.0.0.1:9".parse().unwrap())).unwrap();
        let shown = format!("{upstream:?} {upstream:#?}");
        assert!(shown.contains(&up.secret_id), "the Debug output is the real one: {shown}");
        assert_hidden("Debug of Upstream", &shown, &secrets);
    }
}

/// Everything the process logs while the returned guard lives, at every level, as `RUST_LOG=trace`
/// would show it.
///
/// The subscriber is the process's global one: a subscriber set for one thread only misses events
/// whose call sites another test's thread reached first (tracing caches per call site whether anyone
/// listens). Other tests' lines logged meanwhile land in the same buffer, and none of them may show these
/// secrets either. Outside the guard's life the gate drops every event before it is formatted.
fn capture_trace_logs() -> (&'static Captured, Capturing) {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    let logs = LOGS.get_or_init(|| {
        let logs = Captured::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(logs.clone())
            .with_ansi(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|_| CAPTURING.load(Ordering::SeqCst)));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other test sets a global subscriber");
        logs
    });
    CAPTURING.store(true, Ordering::SeqCst);
    (logs, Capturing)
}

static CAPTURING: AtomicBool = AtomicBool::new(false);

/// Stops [`capture_trace_logs`] when dropped.
#[derive(Debug)]
struct Capturing;

impl Drop for Capturing {
    fn drop(&mut self) {
        CAPTURING.store(false, Ordering::SeqCst);
    }
}

/// Log output captured in memory.
#[derive(Debug, Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

/// Served requests, refused signatures in every dialect and scheme, a replay, an unknown id, an expired
/// time, hostile input and an upstream that refuses the gateway's own credentials: the answers, every
/// log line at `trace` and every audit line written to a file hold no configured secret.
#[tokio::test]
async fn answers_logs_and_audit_lines_show_no_secret() {
    let (logs, capturing) = capture_trace_logs();

    // The rogue upstream is another gateway's simulator, which knows a different secret for the same id.
    let other = Env::with("", "").await;
    let other_sim = other.started.simulator.as_ref().expect("a simulator").0.addr;
    let config = gateway_config(&format!("http://{other_sim}"));
    let secrets = secrets(&config);
    let audit_path = std::env::temp_dir().join(format!("crossgate-secrets-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let sink = Arc::new(JsonLines::open(&audit_path, Options::default()).expect("a temporary audit file"));
    let maps = app::mappings(&config).unwrap();
    let kept = config.clone();
    let started = app::start(config, sink, Arc::new(SystemClock)).await.expect("gateway starts");
    // Audit lines go to the file; the memory sink stays empty.
    let env =
        Env { started, config: kept, audit: Arc::new(MemorySink::default()), maps, config_secrets: secrets.clone() };
    let host = env.host();

    // A fresh nonce for each request.
    let vault = || Signer { id: VAULT_ID.into(), secret: VAULT_SECRET.into(), ..Signer::demo() };
    let ecs_params = [
        ("Action", "AttachKeyPair"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", "[\"i-m5eg7be9ndloji64jknv\"]"),
        ("KeyPairName", "FinanceJoshuaV25"),
    ];
    let acs3_params = [
        ("InstanceIds", "[\"i-m5eg7be9ndloji64jknv\"]"),
        ("KeyPairName", "FinanceJoshuaV25"),
        ("RegionId", "cn-hangzhou"),
    ];
    let cvm = Dialect::TencentCvm;
    let ecs = Dialect::AliyunEcs;
    let rogue_bind = bind_op(cvm, &["ins-r0gue001"], &["skey-4e5ty7i8"]);
    // (what, the caller's dialect, the request)
    let mut requests: Vec<(String, Dialect, WireRequest)> = vec![
        ("served TC3".into(), cvm, env.signed_by(cvm, Scheme::Tc3, &tencent(cvm), &vault())),
        ("served ECS".into(), ecs, ecs_rpc_request(&host, &ecs_params, &vault()).0),
        ("wrong secret, ECS RPC".into(), ecs, ecs_rpc_request(&host, &ecs_params, &Signer::wrong_secret()).0),
        (
            "wrong secret, ACS3".into(),
            ecs,
            ecs_acs3_request(&host, "AttachKeyPair", &acs3_params, &Signer::wrong_secret()).0,
        ),
        ("unknown id".into(), ecs, ecs_rpc_request(&host, &ecs_params, &Signer::unknown_id()).0),
        ("expired".into(), ecs, ecs_rpc_request(&host, &ecs_params, &Signer::an_hour_ago()).0),
        ("the gateway's own credentials refused".into(), cvm, env.signed_by(cvm, Scheme::Tc3, &rogue_bind, &vault())),
    ];
    for (dialect, scheme) in [
        (Dialect::TencentV2, Scheme::TencentV1Sha1),
        (Dialect::TencentV2, Scheme::TencentV1Sha256),
        (Dialect::TencentCvm, Scheme::Tc3),
        (Dialect::TencentCvm, Scheme::TencentV1Sha256),
        (Dialect::TencentLighthouse, Scheme::Tc3),
    ] {
        let wire = env.signed_by(dialect, scheme, &tencent(dialect), &Signer::wrong_secret());
        requests.push((format!("wrong secret, {dialect} {scheme:?}"), dialect, wire));
    }
    let replayed = env.signed_by(Dialect::TencentV2, Scheme::TencentV1Sha256, &tencent(Dialect::TencentV2), &vault());
    requests.push(("first use of a nonce".into(), Dialect::TencentV2, replayed.clone()));
    requests.push(("replayed nonce".into(), Dialect::TencentV2, replayed));
    let hostile = serde_json::json!({ "InstanceIds": ["ins-1e4r6y8i"], "KeyIds": 7 });
    let hostile = tc3_request(&host, "cvm", "AssociateInstancesKeyPairs", "2017-03-12", &hostile, &vault());
    requests.push(("a signed hostile body".into(), cvm, hostile));

    let mut answers: Vec<(String, Dialect, Got)> = Vec::new();
    for (what, dialect, wire) in &requests {
        answers.push((what.clone(), *dialect, env.send(wire).await));
    }
    drop(env);
    drop(other);
    drop(capturing);

    let mut codes = Vec::new();
    let mut strings_to_sign = 0;
    for (what, dialect, got) in &answers {
        let headers: String = got.headers.iter().map(|(n, v)| format!("{n}: {}\n", v.to_str().unwrap_or(""))).collect();
        assert_hidden(&format!("the answer to `{what}`"), &format!("{headers}\n{}", got.text()), &secrets);
        codes.push((what.as_str(), got.error_code(*dialect)));
        strings_to_sign += usize::from(got.text().contains("string to sign"));
    }
    assert_eq!(codes.iter().filter(|(_, c)| c.is_none()).count(), 3, "three are served: {codes:?}");
    assert!(codes.iter().any(|(w, c)| *w == "replayed nonce" && c.is_some()), "{codes:?}");
    assert!(strings_to_sign >= 1, "a refused ECS signature shows the string to sign, not the key");

    let logs = logs.text();
    assert!(logs.contains("Request failed."), "the logs were captured:\n{logs}");
    assert!(logs.contains("DEBUG") && logs.contains("TRACE"), "at every level:\n{logs}");
    assert!(logs.contains("refused crossgate's credentials"), "the rogue upstream refused:\n{logs}");
    assert_hidden("the logs", &logs, &secrets);

    let audit = std::fs::read_to_string(&audit_path).expect("the audit file");
    let _ = std::fs::remove_file(&audit_path);
    let finals = audit.lines().filter(|l| !l.contains("\"phase\":\"admitted\"")).count();
    assert_eq!(finals, answers.len(), "one final audit record per request:\n{audit}");
    assert_hidden("the audit lines", &audit, &secrets);
}

/// A bind as a Tencent caller in `dialect` names it.
fn tencent(dialect: Dialect) -> crossgate::model::Operation {
    let instance = if dialect == Dialect::TencentLighthouse { "lhins-3k9d8f7s" } else { "ins-1e4r6y8i" };
    let key = if dialect == Dialect::TencentLighthouse { "lhkp-f7rjie1q" } else { "skey-4e5ty7i8" };
    bind_op(dialect, &[instance], &[key])
}

/// A config whose caller's `secret_key` is written as `value` (an upstream's too when `upstream`).
fn config_with_secret_written_as(value: &str, upstream: bool) -> String {
    let caller_key = if upstream { "\"caller-key\"" } else { value };
    let upstream_key = if upstream { value } else { "\"upstream-key\"" };
    format!(
        "[[callers]]\nname = \"a\"\nsecret_id = \"AKIDa\"\nsecret_key = {caller_key}\n\n\
         [upstreams.cvm]\nprovider = \"tencent-cvm\"\nendpoint = \"sim\"\nregion = \"ap-guangzhou\"\n\
         secret_id = \"AKIDsim\"\nsecret_key = {upstream_key}\n\n[routing]\ndefault = \"cvm\"\n"
    )
}

#[test]
fn a_config_error_about_a_secret_never_echoes_it() {
    // (how the secret is written, the secret's text)
    let cases = [
        ("73914402189733", "73914402189733"),
        ("-73914402189733", "73914402189733"),
        ("0x7F3A9C11", "7F3A9C11"),
        ("7391440.2189733", "7391440.2189733"),
        ("true", "true"),
        ("1979-05-27T07:32:00Z", "1979-05-27"),
        ("[\"Arr-Secret-Q8\"]", "Arr-Secret-Q8"),
        ("{ v = \"Tbl-Secret-Q8\" }", "Tbl-Secret-Q8"),
        ("\"Unterminated-Secret-Q8", "Unterminated-Secret-Q8"),
        ("\"Bad\\qEscape-Secret-Q8\"", "Escape-Secret-Q8"),
        ("\"Dup-Secret-One-Q8\"\nsecret_key = \"Dup-Secret-Two-Q8\"", "Secret-One-Q8"),
        ("\"Dup-Secret-One-Q8\"\nsecret_key = \"Dup-Secret-Two-Q8\"", "Secret-Two-Q8"),
        ("Bare-Secret-Q8", "Bare-Secret-Q8"),
    ];
    for upstream in [false, true] {
        for (case, (written, secret)) in cases.into_iter().enumerate() {
            let text = config_with_secret_written_as(written, upstream);
            let err = Config::parse("c.toml", &text, &|_| None).expect_err(&text);
            let shown = format!("{err} {err:?}");
            assert!(shown.starts_with("c.toml:"), "{shown}");
            assert_hidden(&format!("the error of case {case} (upstream: {upstream})"), &shown, &[secret.to_owned()]);
        }
    }
    // The same values where no secret is expected are still named, so the message helps.
    let text =
        config_with_secret_written_as("\"k\"", false).replace("region = \"ap-guangzhou\"", "region = 73914402189733");
    let err = Config::parse("c.toml", &text, &|_| None).unwrap_err();
    assert!(err.problem.contains("73914402189733"), "{err}");
}

#[test]
fn a_config_error_names_a_secret_from_the_environment_by_its_variable_only() {
    let text = config_with_secret_written_as("\"${CALLER_SECRET}\"", false)
        .replace("secret_key = \"upstream-key\"", "secret_key = \"${UPSTREAM_SECRET}\"");
    let env = |name: &str| (name == "CALLER_SECRET").then(|| "Env-Caller-Secret-Q8".to_owned());
    let err = Config::parse("c.toml", &text, &env).unwrap_err();
    assert!(err.problem.contains("UPSTREAM_SECRET"), "{err}");
    assert!(!err.to_string().contains("Env-Caller-Secret-Q8"), "{err}");
}
