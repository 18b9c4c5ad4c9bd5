//! The run's figures: a few lines for people, then one `RESULT {json}` line for scripts
//! (`bench/compare.sh` reads it). Latencies are in microseconds in the JSON, milliseconds for people.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::tally::Tally;

/// What the run was, for the report's first line and the JSON.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    pub(crate) label: String,
    pub(crate) dialect: &'static str,
    pub(crate) target: String,
    pub(crate) connections: u32,
    pub(crate) warmup: Duration,
    pub(crate) duration: Duration,
    pub(crate) rate: Option<f64>,
}

/// The percentiles reported, with their JSON names.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999)];

/// The machine-readable result.
pub(crate) fn result_json(info: &RunInfo, tally: &Tally) -> Value {
    let seconds = info.duration.as_secs_f64();
    let ok = tally.ok();
    let mut latency = serde_json::Map::new();
    for (name, q) in QUANTILES {
        latency.insert(name.to_owned(), json!(percentile(tally, q)));
    }
    latency.insert("max".into(), json!(if ok == 0 { None } else { Some(tally.latency.max()) }));
    latency.insert("mean".into(), json!(if ok == 0 { None } else { Some(tally.latency.mean().round() as u64) }));
    json!({
        "label": info.label,
        "dialect": info.dialect,
        "target": info.target,
        "connections": info.connections,
        "duration_s": seconds,
        "warmup_s": info.warmup.as_secs_f64(),
        "rate": info.rate,
        "ok": ok,
        "errors": tally.errors(),
        "attempted": tally.attempted,
        "throughput": if seconds > 0.0 { round2(ok as f64 / seconds) } else { 0.0 },
        "latency_us": latency,
        "status": tally.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "codes": tally.codes,
        "transport": tally.transport,
    })
}

/// The lines for people, and the RESULT line last.
pub(crate) fn render(info: &RunInfo, tally: &Tally) -> String {
    let result = result_json(info, tally);
    let mut out = String::new();
    let mode = match info.rate {
        Some(rate) => format!("open loop at {rate} req/s"),
        None => "closed loop".to_owned(),
    };
    let _ = writeln!(
        out,
        "crossgate-load: {} -> {}, {} connections, {:.1} s measured after {:.1} s warm-up, {mode}",
        info.dialect,
        info.target,
        info.connections,
        info.duration.as_secs_f64(),
        info.warmup.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "  requests: {} ok, {} errors in the window ({} sent in all); {} ok req/s",
        tally.ok(),
        tally.errors(),
        tally.attempted,
        result["throughput"]
    );
    if tally.ok() > 0 {
        let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
        let mut line = String::from("  latency of ok answers:");
        for (name, q) in QUANTILES {
            let _ = write!(line, " {name} {}", ms(percentile(tally, q).unwrap_or(0)));
        }
        let _ = writeln!(out, "{line}, max {}", ms(tally.latency.max()));
    }
    let mut errors: Vec<String> = Vec::new();
    errors.extend(tally.statuses.iter().map(|(status, n)| format!("HTTP {status} x{n}")));
    errors.extend(tally.codes.iter().map(|(code, n)| format!("code {code} x{n}")));
    errors.extend(tally.transport.iter().map(|(kind, n)| format!("transport {kind} x{n}")));
    if !errors.is_empty() {
        let _ = writeln!(out, "  errors: {}", errors.join(", "));
    }
    let _ = writeln!(out, "RESULT {result}");
    out
}

fn percentile(tally: &Tally, q: f64) -> Option<u64> {
    (tally.ok() > 0).then(|| tally.latency.value_at_quantile(q))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tally::{Transport, Verdict};

    fn info() -> RunInfo {
        RunInfo {
            label: "floor".into(),
            dialect: "tc3",
            target: "http://127.0.0.1:9".into(),
            connections: 4,
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(2),
            rate: None,
        }
    }

    #[test]
    fn the_result_line_carries_throughput_percentiles_and_errors() {
        let mut t = Tally::default();
        for us in [100u64, 200, 300, 400] {
            t.answer(Verdict::Ok, Duration::from_micros(us));
        }
        t.answer(Verdict::Status(503), Duration::ZERO);
        t.answer(Verdict::Code("RequestLimitExceeded".into()), Duration::ZERO);
        t.failure(Transport::Broken);
        t.attempted = 9;
        let text = render(&info(), &t);
        let last = text.lines().last().unwrap();
        let json: Value = serde_json::from_str(last.strip_prefix("RESULT ").expect("RESULT last")).unwrap();
        assert_eq!(json["label"], "floor");
        assert_eq!(
            (json["ok"].as_u64(), json["errors"].as_u64(), json["attempted"].as_u64()),
            (Some(4), Some(3), Some(9))
        );
        assert_eq!(json["throughput"], 2.0, "4 ok answers over 2 measured seconds");
        assert_eq!(json["latency_us"]["p50"], 200);
        assert_eq!(json["latency_us"]["p99.9"], 400);
        assert_eq!(json["latency_us"]["max"], 400);
        assert_eq!(json["status"]["503"], 1);
        assert_eq!(json["codes"]["RequestLimitExceeded"], 1);
        assert_eq!(json["transport"]["broken"], 1);
        assert!(text.contains("p50 0.200 ms"), "{text}");
        assert!(text.contains("HTTP 503 x1, code RequestLimitExceeded x1, transport broken x1"), "{text}");
    }

    #[test]
    fn a_run_without_successes_reports_no_percentiles() {
        let mut t = Tally::default();
        t.failure(Transport::Connect);
        let json = result_json(&info(), &t);
        assert_eq!(json["throughput"], 0.0);
        assert!(json["latency_us"]["p50"].is_null() && json["latency_us"]["max"].is_null());
        assert!(!render(&info(), &t).contains("latency of ok answers"));
    }
}
