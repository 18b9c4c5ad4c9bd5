//! The gateway's metrics, in the Prometheus (OpenMetrics) text format served at the admin listener's
//! `/metrics`.
//!
//! Request metrics come from each request's final audit record (the one place that knows the caller's
//! dialect, action, upstreams, every upstream attempt and the result), so that what is counted and
//! what is audited can never disagree: [`MeteredSink`] wraps the audit store, observes every record it
//! is given and times every write. Circuit-breaker states and rate-limiter queues are read from the
//! upstreams at each scrape. Every gateway has its own registry (no global state).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `crossgate_requests_total` | counter | `dialect`, `action`, `upstream`, `result` (`ok`, `error`, `refused`) |
//! | `crossgate_request_duration_seconds` | histogram | `dialect` |
//! | `crossgate_upstream_call_duration_seconds` | histogram | `upstream` |
//! | `crossgate_upstream_errors_total` | counter | `upstream`, `kind` (how the attempt ended, or the fault) |
//! | `crossgate_breaker_state` | gauge (1 for the current state) | `upstream`, `state` |
//! | `crossgate_limiter_queue_length` | gauge | `upstream` |
//! | `crossgate_limiter_refusals_total` | counter | `upstream` |
//! | `crossgate_audit_write_duration_seconds` | histogram | `phase` |
//! | `crossgate_audit_write_failures_total` | counter | `phase` |
//! | `crossgate_shared_state_unavailable_total` | counter | (with `[state]`) Redis commands that found it unavailable |
//! | `crossgate_shared_state_fallbacks_total` | counter | (with `on_unavailable = "local"`) answers kept in memory instead |
//!
//! An `action` label is an action name of the mapping tables; any other name a caller sends is counted
//! as `other` (and a request without one as `unknown`), so that callers, signed or not, cannot make a
//! series for each name they invent.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::audit::query::phase_name;
use crate::audit::{AuditEntry, AuditReceipt, AuditSink, Phase, SpentKey};
use crate::mapping::Mappings;
use crate::model::Dialect;
use crate::per_thread::PerThread;
use crate::provider::{BreakerState, Upstreams};
use crate::redis_state::RedisState;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    dialect: String,
    action: String,
    upstream: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DialectLabel {
    dialect: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamErrorLabels {
    upstream: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BreakerLabels {
    upstream: String,
    state: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets from 100 us to about 52 s, doubling.
fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

/// One gateway's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_duration: Histograms<DialectLabel>,
    upstream_duration: Histograms<UpstreamLabel>,
    upstream_errors: Family<UpstreamErrorLabels, Counter>,
    /// The audit write series of each phase, in [`Phase`] order: made at start (so every phase's series
    /// shows from the first scrape), and a record's write is counted without a label look-up.
    audit_writes: [AuditWrites; 3],
    /// The request and upstream series each thread counted into last, found again by comparing the
    /// record's own fields: no label built, no family locked or hashed for a series already seen.
    seen: PerThread<Mutex<SeenSeries>>,
    /// Every action name (and alias) of the mapping tables: the only `action` label values besides
    /// `other` and `unknown`.
    actions: HashSet<String>,
}

/// How many request series, and how many upstream series, a thread keeps at hand; past that a record
/// is counted through the families' look-up as before.
const SEEN_SERIES: usize = 64;

/// One thread's series at hand.
#[derive(Debug, Default)]
struct SeenSeries {
    requests: Vec<RequestSeries>,
    upstreams: Vec<(String, Histogram)>,
}

/// A request series and its dialect's duration histogram, with the record fields they were made for
/// (the action as the record names it: one the tables know, or none).
#[derive(Debug)]
struct RequestSeries {
    dialect: String,
    action: Option<String>,
    upstreams: Vec<String>,
    result: &'static str,
    count: Counter,
    duration: Histogram,
}

impl RequestSeries {
    fn counts(&self, dialect: &str, action: Option<&str>, upstreams: &[String], result: &str) -> bool {
        self.result == result
            && self.dialect == dialect
            && self.action.as_deref() == action
            && self.upstreams == upstreams
    }
}

/// One phase's audit write series.
#[derive(Debug)]
struct AuditWrites {
    duration: Histogram,
    failures: Counter,
}

/// Where a phase's series are in [`Metrics::audit_writes`].
fn phase_index(phase: Phase) -> usize {
    match phase {
        Phase::Refused => 0,
        Phase::Admitted => 1,
        Phase::Completed => 2,
    }
}

impl Metrics {
    /// Metrics for a gateway whose upstreams (breakers and rate limiters) are `upstreams`, sharing
    /// state on `shared` when it does, with the action names of `maps`.
    pub fn new(upstreams: Upstreams, shared: Option<Arc<RedisState>>, maps: &Mappings) -> Metrics {
        let mut registry = Registry::with_prefix("crossgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by caller dialect, action, upstream and result",
            requests.clone(),
        );
        let request_duration = Histograms::<DialectLabel>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "request_duration_seconds",
            "Time from a request's arrival to its answer",
            request_duration.clone(),
        );
        let upstream_duration = Histograms::<UpstreamLabel>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "upstream_call_duration_seconds",
            "Time of each upstream attempt, answered or not",
            upstream_duration.clone(),
        );
        let upstream_errors = Family::<UpstreamErrorLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Upstream attempts that failed, by how they ended (not_connected, lost, breaker_open, quota_refused, \
             unsendable) or, when answered, by the fault",
            upstream_errors.clone(),
        );
        let audit_duration = Histograms::<PhaseLabel>::new_with_constructor(seconds as fn() -> Histogram);
        registry.register(
            "audit_write_duration_seconds",
            "Time until an audit record was stored, by record phase",
            audit_duration.clone(),
        );
        let audit_failures = Family::<PhaseLabel, Counter>::default();
        registry.register(
            "audit_write_failures",
            "Audit records that could not be stored, by record phase",
            audit_failures.clone(),
        );
        let audit_writes = [Phase::Refused, Phase::Admitted, Phase::Completed].map(|phase| {
            let label = PhaseLabel { phase: phase_name(phase) };
            AuditWrites {
                duration: audit_duration.get_or_create(&label).clone(),
                failures: audit_failures.get_or_create(&label).clone(),
            }
        });
        registry.register_collector(Box::new(UpstreamState(upstreams)));
        if let Some(shared) = shared {
            registry.register_collector(Box::new(SharedState(shared)));
        }
        Metrics {
            registry,
            requests,
            request_duration,
            upstream_duration,
            upstream_errors,
            audit_writes,
            seen: PerThread::new(Mutex::default),
            actions: Dialect::ALL
                .iter()
                .flat_map(|&dialect| &maps.actions(dialect).entries)
                .flat_map(|entry| std::iter::once(&entry.wire).chain(&entry.aliases))
                .cloned()
                .collect(),
        }
    }

    /// Counts a record: a final one (completed or refused) as a request, every upstream attempt in it.
    pub fn observe(&self, entry: &AuditEntry) {
        if entry.phase == Phase::Admitted {
            return;
        }
        let dialect = entry.dialect.as_deref().unwrap_or("unknown");
        let action = entry.action.as_deref();
        let result = match entry.phase {
            Phase::Refused => "refused",
            _ if entry.kind.is_none() && entry.status < 400 => "ok",
            _ => "error",
        };
        // A poisoned lock only means a thread panicked while counting: the series it holds are whole.
        let mut seen = self.seen.mine().lock().unwrap_or_else(|e| e.into_inner());
        let seconds = entry.latency_ms / 1000.0;
        match seen.requests.iter().find(|s| s.counts(dialect, action, &entry.upstreams, result)) {
            Some(series) => {
                series.count.inc();
                series.duration.observe(seconds);
            }
            None => {
                let (series, known) = self.request_series(dialect, action, &entry.upstreams, result);
                series.count.inc();
                series.duration.observe(seconds);
                // Names the tables do not know are counted as `other` through the families each time:
                // kept at hand, they would fill a thread's places with names callers invent.
                if known && seen.requests.len() < SEEN_SERIES {
                    seen.requests.push(series);
                }
            }
        }
        for call in &entry.upstream_calls {
            let seconds = call.elapsed_ms as f64 / 1000.0;
            match seen.upstreams.iter().find(|(name, _)| *name == call.upstream) {
                Some((_, duration)) => duration.observe(seconds),
                None => {
                    let label = UpstreamLabel { upstream: call.upstream.clone() };
                    let duration = self.upstream_duration.get_or_create(&label).clone();
                    duration.observe(seconds);
                    if seen.upstreams.len() < SEEN_SERIES {
                        seen.upstreams.push((label.upstream, duration));
                    }
                }
            }
            let kind = match (call.ending.as_str(), &call.fault) {
                ("answered", None) => continue,
                ("answered", Some(fault)) => fault.clone(),
                (ending, _) => ending.to_owned(),
            };
            let labels = UpstreamErrorLabels { upstream: call.upstream.clone(), kind };
            self.upstream_errors.get_or_create(&labels).inc();
        }
    }

    /// The request series for these fields, from the families (made there if new), and whether the
    /// action is one the tables know (or none).
    fn request_series(
        &self,
        dialect: &str,
        action: Option<&str>,
        upstreams: &[String],
        result: &'static str,
    ) -> (RequestSeries, bool) {
        let (label, known) = match action {
            Some(name) if self.actions.contains(name) => (name, true),
            Some(_) => ("other", false),
            None => ("unknown", true),
        };
        let upstream = if upstreams.is_empty() { "none".to_owned() } else { upstreams.join("+") };
        let labels = RequestLabels { dialect: dialect.to_owned(), action: label.to_owned(), upstream, result };
        let count = self.requests.get_or_create(&labels).clone();
        let duration = self.request_duration.get_or_create(&DialectLabel { dialect: labels.dialect.clone() }).clone();
        let series = RequestSeries {
            dialect: labels.dialect,
            action: action.map(str::to_owned),
            upstreams: upstreams.to_vec(),
            result,
            count,
            duration,
        };
        (series, known)
    }

    /// Records how long a record took to store, and whether it failed.
    pub fn observe_write(&self, phase: Phase, seconds: f64, ok: bool) {
        let series = &self.audit_writes[phase_index(phase)];
        series.duration.observe(seconds);
        if !ok {
            series.failures.inc();
        }
    }

    /// The metrics as Prometheus (OpenMetrics) text.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Breaker states and rate-limiter queues, read at each scrape.
#[derive(Debug)]
struct UpstreamState(Upstreams);

impl Collector for UpstreamState {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        const STATES: [BreakerState; 3] = [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen];
        let mut family = encoder.encode_descriptor(
            "breaker_state",
            "Each upstream's circuit-breaker state (1 for the current one)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, upstream) in &self.0 {
            let now = upstream.breaker_state();
            for state in STATES {
                let labels = BreakerLabels { upstream: name.clone(), state: state.name() };
                ConstGauge::new(i64::from(state == now)).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "limiter_queue_length",
            "Requests waiting for a turn of an upstream's rate limit",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (name, upstream) in &self.0 {
            let queued = i64::try_from(upstream.quota().queued()).unwrap_or(i64::MAX);
            ConstGauge::new(queued).encode(family.encode_family(&UpstreamLabel { upstream: name.clone() })?)?;
        }
        let mut family = encoder.encode_descriptor(
            "limiter_refusals",
            "Requests refused by an upstream's rate limit (queue full or turn too late)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        for (name, upstream) in &self.0 {
            let refused = ConstCounter::new(upstream.quota().refusals());
            refused.encode(family.encode_family(&UpstreamLabel { upstream: name.clone() })?)?;
        }
        Ok(())
    }
}

/// The shared state's health, read at each scrape.
#[derive(Debug)]
struct SharedState(Arc<RedisState>);

impl Collector for SharedState {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        use std::sync::atomic::Ordering;
        let counters = [
            (
                "shared_state_unavailable",
                "Redis commands that found Redis unavailable (down, unreachable, too slow)",
                &self.0.unavailable,
            ),
            (
                "shared_state_fallbacks",
                "Replay keys and rate-limit turns kept in memory because Redis was unavailable (on_unavailable = \"local\")",
                &self.0.fallbacks,
            ),
        ];
        for (name, help, value) in counters {
            let metric = ConstCounter::new(value.load(Ordering::Relaxed));
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}

/// An audit store that feeds [`Metrics`]: every record it stores is observed, every write timed.
#[derive(Debug)]
pub struct MeteredSink {
    inner: Arc<dyn AuditSink>,
    metrics: Arc<Metrics>,
}

impl MeteredSink {
    /// Observes what goes to `inner`.
    pub fn new(inner: Arc<dyn AuditSink>, metrics: Arc<Metrics>) -> MeteredSink {
        MeteredSink { inner, metrics }
    }
}

impl AuditSink for MeteredSink {
    fn submit(&self, entry: &AuditEntry) -> AuditReceipt {
        self.metrics.observe(entry);
        let started = Instant::now();
        let phase = entry.phase;
        let metrics = self.metrics.clone();
        self.inner.submit(entry).inspect(move |result| {
            metrics.observe_write(phase, started.elapsed().as_secs_f64(), result.is_ok());
        })
    }

    fn spent_keys(&self, now: i64) -> Vec<SpentKey> {
        self.inner.spent_keys(now)
    }

    fn flush(&self) -> AuditReceipt {
        self.inner.flush()
    }

    fn ready(&self) -> Result<(), String> {
        self.inner.ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::UpstreamCall;

    fn completed(code_kind: Option<&str>) -> AuditEntry {
        AuditEntry {
            phase: Phase::Completed,
            dialect: Some("tencent_cvm".into()),
            action: Some("AssociateInstancesKeyPairs".into()),
            upstreams: vec!["ecs".into()],
            kind: code_kind.map(str::to_owned),
            status: if code_kind.is_some() { 400 } else { 200 },
            latency_ms: 3.0,
            upstream_calls: vec![
                UpstreamCall {
                    upstream: "ecs".into(),
                    action: "AttachKeyPair".into(),
                    attempt: 1,
                    ending: "lost".into(),
                    status: None,
                    fault: None,
                    elapsed_ms: 2,
                },
                UpstreamCall {
                    upstream: "ecs".into(),
                    action: "AttachKeyPair".into(),
                    attempt: 2,
                    ending: "answered".into(),
                    status: Some(200),
                    fault: None,
                    elapsed_ms: 1,
                },
            ],
            ..AuditEntry::default()
        }
    }

    #[test]
    fn final_records_are_counted_and_admissions_are_not() {
        let metrics = Metrics::new(Upstreams::new(), None, &Mappings::embedded().unwrap());
        metrics.observe(&AuditEntry { phase: Phase::Admitted, ..completed(None) });
        metrics.observe(&completed(None));
        metrics.observe(&completed(None));
        metrics.observe(&completed(Some("InstanceNotFound")));
        metrics.observe(&AuditEntry { phase: Phase::Refused, status: 401, ..AuditEntry::default() });
        metrics.observe_write(Phase::Admitted, 0.001, true);
        metrics.observe_write(Phase::Completed, 0.002, false);
        let text = metrics.render();
        let line = |prefix: &str| {
            text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}")).to_owned()
        };
        let ok = "crossgate_requests_total{dialect=\"tencent_cvm\",action=\"AssociateInstancesKeyPairs\",\
                  upstream=\"ecs\",result=\"ok\"}";
        assert!(line(ok).ends_with(" 2"), "{text}");
        assert!(line(&ok.replace("\"ok\"", "\"error\"")).ends_with(" 1"), "{text}");
        assert!(
            line(
                "crossgate_requests_total{dialect=\"unknown\",action=\"unknown\",upstream=\"none\",result=\"refused\"}"
            )
            .ends_with(" 1")
        );
        assert!(line("crossgate_upstream_errors_total{upstream=\"ecs\",kind=\"lost\"}").ends_with(" 3"), "{text}");
        assert!(line("crossgate_upstream_call_duration_seconds_count{upstream=\"ecs\"}").ends_with(" 6"), "{text}");
        assert!(line("crossgate_request_duration_seconds_count{dialect=\"tencent_cvm\"}").ends_with(" 3"), "{text}");
        assert!(line("crossgate_audit_write_failures_total{phase=\"completed\"}").ends_with(" 1"), "{text}");
        assert!(line("crossgate_audit_write_duration_seconds_count{phase=\"admitted\"}").ends_with(" 1"), "{text}");
        // Each phase counts its own writes; every phase shows from the start.
        assert!(line("crossgate_audit_write_duration_seconds_count{phase=\"completed\"}").ends_with(" 1"), "{text}");
        assert!(line("crossgate_audit_write_duration_seconds_count{phase=\"refused\"}").ends_with(" 0"), "{text}");
        assert!(line("crossgate_audit_write_failures_total{phase=\"admitted\"}").ends_with(" 0"), "{text}");
        assert!(line("crossgate_audit_write_failures_total{phase=\"refused\"}").ends_with(" 0"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn series_kept_at_hand_and_past_what_a_thread_keeps_count_alike() {
        let metrics = Arc::new(Metrics::new(Upstreams::new(), None, &Mappings::embedded().unwrap()));
        // More label sets than a thread keeps; each upstream list with two actions, each action with two
        // upstream lists, each of them ok and failed.
        let lists = SEEN_SERIES + 8;
        let actions = ["AssociateInstancesKeyPairs", "DisassociateInstancesKeyPairs"];
        let count = |metrics: Arc<Metrics>| {
            move || {
                for round in 0..3 {
                    for i in 0..lists {
                        for (to, action) in ["cvm-a", "cvm-b"].into_iter().flat_map(|to| actions.map(|a| (to, a))) {
                            let upstreams = vec![format!("ecs-{i}"), to.to_owned()];
                            let action = Some(action.to_owned());
                            let mut entry = AuditEntry { action, upstreams, ..completed(None) };
                            if round == 2 {
                                entry.status = 500;
                            }
                            metrics.observe(&entry);
                        }
                    }
                }
            }
        };
        let other = std::thread::spawn(count(metrics.clone()));
        count(metrics.clone())();
        other.join().unwrap();
        let text = metrics.render();
        for i in [0, lists - 1] {
            for (to, action) in ["cvm-a", "cvm-b"].into_iter().flat_map(|to| actions.map(|a| (to, a))) {
                let series = format!(
                    "crossgate_requests_total{{dialect=\"tencent_cvm\",action=\"{action}\",upstream=\"ecs-{i}+{to}\""
                );
                let value = |result: &str| {
                    let prefix = format!("{series},result=\"{result}\"}} ");
                    text.lines()
                        .find_map(|l| l.strip_prefix(prefix.as_str()))
                        .unwrap_or_else(|| panic!("{prefix} in\n{text}"))
                };
                assert_eq!((value("ok"), value("error")), ("4", "2"), "two threads, two ok rounds and one error each");
            }
        }
        let requests = 2 * 3 * lists * 4;
        let durations = format!("crossgate_request_duration_seconds_count{{dialect=\"tencent_cvm\"}} {requests}");
        assert!(text.lines().any(|l| l == durations), "{durations} in\n{text}");
        let calls = format!("crossgate_upstream_call_duration_seconds_count{{upstream=\"ecs\"}} {}", 2 * requests);
        assert!(text.lines().any(|l| l == calls), "{calls} in\n{text}");
    }

    #[test]
    fn action_names_the_tables_do_not_know_share_one_series() {
        let metrics = Metrics::new(Upstreams::new(), None, &Mappings::embedded().unwrap());
        for i in 0..200 {
            let refused = AuditEntry {
                phase: Phase::Refused,
                status: 401,
                action: Some(format!("Invented{i}")),
                ..AuditEntry::default()
            };
            metrics.observe(&refused);
        }
        let alias = AuditEntry { action: Some("BindInstanceKey".into()), ..completed(None) };
        metrics.observe(&alias);
        let text = metrics.render();
        assert!(!text.contains("Invented"), "{text}");
        let other =
            "crossgate_requests_total{dialect=\"unknown\",action=\"other\",upstream=\"none\",result=\"refused\"} 200";
        assert!(text.lines().any(|l| l == other), "{other} in\n{text}");
        assert!(text.contains("action=\"BindInstanceKey\""), "a name of the tables, the legacy one included:\n{text}");
    }
}
