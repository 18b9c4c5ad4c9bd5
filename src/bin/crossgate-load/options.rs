//! The command line of `crossgate-load`: where to send, in which dialect, how hard and for how long, and
//! as whom. Every value is checked here, so a bad flag is a usage error before anything is sent.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use crossgate::config::{DEMO_CALLER_ID, DEMO_CALLER_SECRET};

/// Drives signed key-pair requests at a crossgate (or straight at an upstream) and reports throughput,
/// latency percentiles and errors by kind. The last line is `RESULT {json}`.
#[derive(Debug, Parser)]
#[command(name = "crossgate-load", version)]
pub(crate) struct Options {
    /// Where to send: `http://HOST:PORT` (a gateway, or an upstream for the floor run).
    #[arg(long, value_parser = parse_target)]
    pub(crate) target: Target,
    /// The caller's dialect: `tc3` (API 3.0 CVM, TC3-HMAC-SHA256) or `v2` (legacy /v2/index.php,
    /// HmacSHA256).
    #[arg(long, value_enum, default_value_t = LoadDialect::Tc3)]
    pub(crate) dialect: LoadDialect,
    /// Concurrent keep-alive connections, each with one request in flight at a time.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) connections: u32,
    /// How long to measure, after the warm-up: `15`, `15s`, `500ms`, `2m`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Load sent before measuring starts (connections opened, caches warm); not in the figures.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
    /// A fixed total request rate (requests per second) instead of as fast as the target answers.
    /// Latency is then counted from each request's scheduled time, so a stalled target is not hidden.
    #[arg(long, value_parser = parse_rate)]
    pub(crate) rate: Option<f64>,
    /// The SecretId (AccessKeyId) requests are signed as.
    #[arg(long, env = "CROSSGATE_LOAD_SECRET_ID", default_value = DEMO_CALLER_ID)]
    pub(crate) secret_id: String,
    /// The secret key requests are signed with (the demo caller's by default).
    #[arg(long, env = "CROSSGATE_LOAD_SECRET_KEY", default_value = DEMO_CALLER_SECRET, hide_default_value = true, hide_env_values = true)]
    pub(crate) secret_key: String,
    /// Instance ids are this prefix and 8 base-36 characters, distinct for every request
    /// (`ins-` for CVM; `i-` for machines a gateway routes to ECS).
    #[arg(long, default_value = "ins-", value_parser = parse_prefix)]
    pub(crate) instance_prefix: String,
    /// The key pair every request binds.
    #[arg(long, default_value = "skey-4e5ty7i8")]
    pub(crate) key_id: String,
    /// The region requests name.
    #[arg(long, default_value = "ap-guangzhou")]
    pub(crate) region: String,
    /// A request with no complete answer after this long counts as a transport timeout, and its
    /// connection is opened again.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Worker threads of the load generator (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) threads: Option<u16>,
    /// A name for this run, repeated in the RESULT line.
    #[arg(long, default_value = "")]
    pub(crate) label: String,
}

/// The caller dialects the load generator speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LoadDialect {
    /// Tencent Cloud API 3.0 for CVM, signed TC3-HMAC-SHA256.
    Tc3,
    /// Tencent Cloud legacy API 2.0 (`/v2/index.php`), signed HmacSHA256.
    V2,
}

impl LoadDialect {
    /// The name the flag and the RESULT line use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LoadDialect::Tc3 => "tc3",
            LoadDialect::V2 => "v2",
        }
    }
}

/// A plain-HTTP target: the address to connect to and the `host:port` requests are signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The address connected to.
    pub(crate) addr: SocketAddr,
    /// The Host header, as given (the signature covers it).
    pub(crate) host: String,
}

fn parse_target(text: &str) -> Result<Target, String> {
    if text.starts_with("https://") {
        return Err("only plain http:// targets are supported; measure TLS separately".into());
    }
    let rest = text.strip_prefix("http://").unwrap_or(text);
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() || host.contains('/') || host.contains('?') {
        return Err(format!("`{text}` is not a target; write http://HOST:PORT"));
    }
    if host.rsplit_once(':').is_none_or(|(_, port)| port.parse::<u16>().is_err()) {
        return Err(format!("`{text}` names no port; write http://HOST:PORT"));
    }
    let addr = host
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
        .next()
        .ok_or_else(|| format!("`{host}` resolves to no address"))?;
    Ok(Target { addr, host: host.to_owned() })
}

/// Seconds (`15`, `1.5`), or a number with `ms`, `s` or `m`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    if number.trim().is_empty() {
        return Err(format!("`{text}` is not a duration; write e.g. 15s"));
    }
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        _ => return Err(format!("`{text}`: the unit must be ms, s or m")),
    };
    let value: f64 = number.trim().parse().map_err(|_| format!("`{text}` is not a duration; write e.g. 15s"))?;
    let seconds = value * scale;
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is not between 0 and 24 hours"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 && rate <= 10_000_000.0 => Ok(rate),
        _ => Err(format!("`{text}` is not a rate; write requests per second, e.g. 2000")),
    }
}

fn parse_prefix(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > 20 || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("`{text}` is not an instance id prefix: up to 20 letters, digits or `-`"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("crossgate-load").chain(args.iter().copied()))
    }

    #[test]
    fn every_flag_is_read() {
        let o = parse(&[
            "--target",
            "http://127.0.0.1:8080",
            "--dialect",
            "v2",
            "--connections",
            "7",
            "--duration",
            "2.5",
            "--warmup",
            "250ms",
            "--rate",
            "1500",
            "--secret-id",
            "AKIDx",
            "--secret-key",
            "k",
            "--instance-prefix",
            "i-",
            "--timeout",
            "1m",
            "--threads",
            "3",
            "--label",
            "run",
        ])
        .unwrap();
        assert_eq!(o.target, Target { addr: "127.0.0.1:8080".parse().unwrap(), host: "127.0.0.1:8080".into() });
        assert_eq!(o.dialect, LoadDialect::V2);
        assert_eq!(o.connections, 7);
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert_eq!(o.warmup, Duration::from_millis(250));
        assert_eq!(o.rate, Some(1500.0));
        assert_eq!((o.secret_id.as_str(), o.secret_key.as_str()), ("AKIDx", "k"));
        assert_eq!(o.instance_prefix, "i-");
        assert_eq!(o.timeout, Duration::from_secs(60));
        assert_eq!(o.threads, Some(3));
        assert_eq!(o.label, "run");
    }

    #[test]
    fn defaults_are_the_demo_caller_over_tc3() {
        let o = parse(&["--target", "127.0.0.1:9"]).unwrap();
        assert_eq!(o.dialect, LoadDialect::Tc3);
        assert_eq!((o.secret_id.as_str(), o.secret_key.as_str()), (DEMO_CALLER_ID, DEMO_CALLER_SECRET));
        assert_eq!((o.connections, o.duration, o.rate), (32, Duration::from_secs(10), None));
        assert_eq!(o.instance_prefix, "ins-");
    }

    #[test]
    fn bad_values_are_usage_errors_that_say_why() {
        for (args, why) in [
            (vec!["--target", "https://127.0.0.1:8443"], "plain http"),
            (vec!["--target", "http://127.0.0.1"], "names no port"),
            (vec!["--target", "http://127.0.0.1:80/path"], "not a target"),
            (vec!["--target", "127.0.0.1:1", "--connections", "0"], "connections"),
            (vec!["--target", "127.0.0.1:1", "--duration", "ten"], "not a duration"),
            (vec!["--target", "127.0.0.1:1", "--duration", "3h"], "unit"),
            (vec!["--target", "127.0.0.1:1", "--duration=-1"], "between"),
            (vec!["--target", "127.0.0.1:1", "--duration", "100000"], "between"),
            (vec!["--target", "127.0.0.1:1", "--rate", "0"], "not a rate"),
            (vec!["--target", "127.0.0.1:1", "--rate", "NaN"], "not a rate"),
            (vec!["--target", "127.0.0.1:1", "--instance-prefix", "ins/"], "prefix"),
            (vec!["--target", "127.0.0.1:1", "--dialect", "ecs"], "dialect"),
            (vec![], "--target"),
        ] {
            let e = parse(&args).unwrap_err().to_string();
            assert!(e.contains(why), "{args:?}: {e}");
        }
    }

    #[test]
    fn the_secret_key_is_never_shown_in_help() {
        let help = format!("{}", <Options as clap::CommandFactory>::command().render_long_help());
        assert!(!help.contains(DEMO_CALLER_SECRET), "{help}");
        assert!(help.contains("--secret-key"));
    }
}
