//! What one connection saw, and the sum over all of them: the latency of every successful answer in an
//! HDR histogram (microseconds, three significant digits), and every other outcome counted by kind:
//! HTTP statuses other than 2xx, error codes in the dialect's own answer (Tencent errors are HTTP 200),
//! and transport failures.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// The longest latency the histogram holds; longer ones are recorded as this.
const MAX_LATENCY_US: u64 = 600_000_000;

/// A transport failure, by what went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Transport {
    /// The connection could not be opened.
    Connect,
    /// No complete answer within the timeout.
    Timeout,
    /// The connection failed or closed before the answer was complete.
    Broken,
}

impl Transport {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Connect => "connect",
            Transport::Timeout => "timeout",
            Transport::Broken => "broken",
        }
    }
}

/// How an answer read: a success, or the error it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// 2xx with no error in the body.
    Ok,
    /// Not 2xx.
    Status(u16),
    /// 2xx whose body carries this error code (or says it cannot be read).
    Code(String),
}

/// Reads an answer in a Tencent dialect: `Response.Error.Code` (API 3.0 and the legacy endpoint's new
/// style) or a non-zero `code` with its `codeDesc` (the legacy old style).
pub(crate) fn classify(status: u16, body: &[u8]) -> Verdict {
    if !(200..300).contains(&status) {
        return Verdict::Status(status);
    }
    // Most answers are successes: only parse a body that could hold an error.
    let mentions = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    if !mentions(b"\"Error\"") && !mentions(b"\"code\"") {
        return if body.is_empty() { Verdict::Code("(empty answer)".into()) } else { Verdict::Ok };
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Verdict::Code("(unreadable answer)".into());
    };
    if let Some(code) = value["Response"]["Error"]["Code"].as_str() {
        return Verdict::Code(code.to_owned());
    }
    match &value["code"] {
        serde_json::Value::Null => Verdict::Ok,
        code if code.as_i64() == Some(0) => Verdict::Ok,
        code => Verdict::Code(value["codeDesc"].as_str().map_or_else(|| format!("code {code}"), str::to_owned)),
    }
}

/// Outcomes counted over the measured window (and how many requests were sent in all).
#[derive(Debug, Clone)]
pub(crate) struct Tally {
    /// Latency of successful answers, microseconds.
    pub(crate) latency: Histogram<u64>,
    /// Answers that were not 2xx, by status.
    pub(crate) statuses: BTreeMap<u16, u64>,
    /// 2xx answers carrying an error, by code.
    pub(crate) codes: BTreeMap<String, u64>,
    /// Transport failures, by kind.
    pub(crate) transport: BTreeMap<&'static str, u64>,
    /// Every request sent or attempted, warm-up included (what the target's own counters see).
    pub(crate) attempted: u64,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally {
            // Three significant digits over 1 us .. 10 min: a fixed, small allocation.
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            statuses: BTreeMap::new(),
            codes: BTreeMap::new(),
            transport: BTreeMap::new(),
            attempted: 0,
        }
    }
}

impl Tally {
    /// Records a measured answer.
    pub(crate) fn answer(&mut self, verdict: Verdict, latency: Duration) {
        match verdict {
            Verdict::Ok => {
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_LATENCY_US);
                self.latency.saturating_record(us);
            }
            Verdict::Status(status) => *self.statuses.entry(status).or_default() += 1,
            Verdict::Code(code) => *self.codes.entry(code).or_default() += 1,
        }
    }

    /// Records a measured transport failure.
    pub(crate) fn failure(&mut self, kind: Transport) {
        *self.transport.entry(kind.name()).or_default() += 1;
    }

    /// Adds another connection's tally to this one.
    pub(crate) fn merge(&mut self, other: Tally) {
        // Both histograms share bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
        for (k, v) in other.codes {
            *self.codes.entry(k).or_default() += v;
        }
        for (k, v) in other.transport {
            *self.transport.entry(k).or_default() += v;
        }
        self.attempted += other.attempted;
    }

    /// Successful answers in the window.
    pub(crate) fn ok(&self) -> u64 {
        self.latency.len()
    }

    /// Failed requests in the window, of every kind.
    pub(crate) fn errors(&self) -> u64 {
        self.statuses.values().chain(self.codes.values()).chain(self.transport.values()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_tencent_clients_read_them() {
        assert_eq!(classify(200, br#"{"Response":{"RequestId":"r"}}"#), Verdict::Ok);
        assert_eq!(
            classify(
                200,
                br#"{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"m"},"RequestId":"r"}}"#
            ),
            Verdict::Code("AuthFailure.SignatureFailure".into())
        );
        assert_eq!(classify(200, br#"{"code":0,"message":"","codeDesc":"Success"}"#), Verdict::Ok);
        assert_eq!(
            classify(200, br#"{"code":4000,"message":"m","codeDesc":"InvalidParameter"}"#),
            Verdict::Code("InvalidParameter".into())
        );
        assert_eq!(classify(200, br#"{"code":5100}"#), Verdict::Code("code 5100".into()));
        assert_eq!(classify(200, br#"{"Response":{"Error":"#), Verdict::Code("(unreadable answer)".into()));
        assert_eq!(classify(200, b""), Verdict::Code("(empty answer)".into()));
        assert_eq!(classify(502, b"<html>bad gateway</html>"), Verdict::Status(502));
        assert_eq!(classify(400, br#"{"Code":"InvalidParameter"}"#), Verdict::Status(400));
    }

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut t = Tally::default();
        for us in 1..=1000u64 {
            t.answer(Verdict::Ok, Duration::from_micros(us));
        }
        assert_eq!(t.ok(), 1000);
        // Three significant digits: within 0.1% of the exact percentile.
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(t.latency.value_at_quantile(0.5), 500), "{}", t.latency.value_at_quantile(0.5));
        assert!(near(t.latency.value_at_quantile(0.99), 990), "{}", t.latency.value_at_quantile(0.99));
        assert!(near(t.latency.max(), 1000));
        assert_eq!(t.errors(), 0);
    }

    #[test]
    fn errors_are_counted_by_kind_and_merged() {
        let mut a = Tally::default();
        a.answer(Verdict::Status(502), Duration::from_millis(1));
        a.answer(Verdict::Code("LimitExceeded".into()), Duration::from_millis(1));
        a.failure(Transport::Timeout);
        a.attempted = 4;
        let mut b = Tally::default();
        b.answer(Verdict::Status(502), Duration::from_millis(1));
        b.answer(Verdict::Ok, Duration::from_millis(3));
        b.failure(Transport::Connect);
        b.attempted = 3;
        a.merge(b);
        assert_eq!(a.statuses[&502], 2);
        assert_eq!(a.codes["LimitExceeded"], 1);
        assert_eq!((a.transport["timeout"], a.transport["connect"]), (1, 1));
        assert_eq!((a.ok(), a.errors(), a.attempted), (1, 5, 7));
        assert!(a.latency.max() >= 2_990, "the merged histogram holds the other's latency");
    }

    #[test]
    fn absurd_latencies_are_held_not_lost() {
        let mut t = Tally::default();
        t.answer(Verdict::Ok, Duration::from_secs(100_000));
        t.answer(Verdict::Ok, Duration::ZERO);
        assert_eq!(t.ok(), 2);
        assert!(t.latency.max() >= MAX_LATENCY_US - MAX_LATENCY_US / 1000);
    }
}
