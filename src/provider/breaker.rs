//! The circuit breaker of one upstream: after enough consecutive failures it opens, and calls fail at once
//! (no socket touched) until a cool-down has passed; then one probe goes through (half-open), and its
//! success closes the breaker again while its failure opens it for another cool-down.
//!
//! A failure is a transport failure, a timeout or a 5xx reply; any other reply, an error answer included,
//! shows the upstream alive and resets the count. Time comes in as [`Instant`]s (tokio's, so tests can
//! pause and advance it).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The breaker's state, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once until the cool-down ends.
    Open,
    /// The cool-down ended: one probe may go through (or is under way).
    HalfOpen,
}

impl BreakerState {
    /// The name used in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

/// Why a call was refused without being tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The consecutive failures that opened the breaker.
    pub failures: u32,
    /// How long until a probe may go through (zero while a probe is under way).
    pub retry_in: Duration,
}

/// One upstream's circuit breaker.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cool_down: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Consecutive failures.
    failures: u32,
    /// While open: when the cool-down ends.
    open_until: Option<Instant>,
    /// A half-open probe is under way.
    probing: bool,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures, for `cool_down`.
    pub fn new(threshold: u32, cool_down: Duration) -> Breaker {
        Breaker { threshold: threshold.max(1), cool_down, inner: Mutex::default() }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The state at `now`.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.inner().open_until {
            None => BreakerState::Closed,
            Some(until) if now < until => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Lets a call through, or refuses it at once. A call let through must report how it went through its
    /// [`Ticket`]; a half-open probe dropped without a report frees the probe's place.
    pub fn admit(&self, now: Instant) -> Result<Ticket<'_>, Refusal> {
        let mut inner = self.inner();
        match inner.open_until {
            None => Ok(Ticket { breaker: self, probe: false, reported: false }),
            Some(until) if now < until => Err(Refusal { failures: inner.failures, retry_in: until - now }),
            Some(_) if inner.probing => Err(Refusal { failures: inner.failures, retry_in: Duration::ZERO }),
            Some(_) => {
                inner.probing = true;
                Ok(Ticket { breaker: self, probe: true, reported: false })
            }
        }
    }

    fn report(&self, probe: bool, healthy: bool, now: Instant) {
        let mut inner = self.inner();
        if probe {
            inner.probing = false;
        }
        if healthy {
            *inner = Inner::default();
            return;
        }
        inner.failures = inner.failures.saturating_add(1);
        // A failed probe opens the breaker again; a late failure of a call let in before it opened does not
        // push the cool-down further.
        if probe || (inner.open_until.is_none() && inner.failures >= self.threshold) {
            inner.open_until = Some(now + self.cool_down);
        }
    }
}

/// A call let through the breaker; say how it went with [`Ticket::report`].
#[derive(Debug)]
#[must_use = "a call let through must report how it went"]
pub struct Ticket<'b> {
    breaker: &'b Breaker,
    probe: bool,
    reported: bool,
}

impl Ticket<'_> {
    /// Reports the call: `healthy` when the upstream answered with anything but a 5xx.
    pub fn report(mut self, healthy: bool, now: Instant) {
        self.reported = true;
        self.breaker.report(self.probe, healthy, now);
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // A probe abandoned mid-way (its caller gave up) proves nothing: the next call may probe.
        if self.probe && !self.reported {
            self.breaker.inner().probing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(10);

    fn fail(breaker: &Breaker, n: u32) {
        for _ in 0..n {
            breaker.admit(Instant::now()).expect("let through").report(false, Instant::now());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_the_threshold_and_fails_at_once_until_the_cool_down_ends() {
        let breaker = Breaker::new(3, COOL_DOWN);
        fail(&breaker, 2);
        assert_eq!(breaker.state(Instant::now()), BreakerState::Closed);
        fail(&breaker, 1);
        assert_eq!(breaker.state(Instant::now()), BreakerState::Open);
        let refusal = breaker.admit(Instant::now()).unwrap_err();
        assert_eq!((refusal.failures, refusal.retry_in), (3, COOL_DOWN));
        tokio::time::advance(COOL_DOWN - Duration::from_millis(1)).await;
        assert!(breaker.admit(Instant::now()).is_err(), "still cooling down");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(breaker.state(Instant::now()), BreakerState::HalfOpen);
    }

    #[tokio::test(start_paused = true)]
    async fn a_healthy_answer_resets_the_count() {
        let breaker = Breaker::new(3, COOL_DOWN);
        fail(&breaker, 2);
        breaker.admit(Instant::now()).unwrap().report(true, Instant::now());
        fail(&breaker, 2);
        assert_eq!(breaker.state(Instant::now()), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_lets_one_probe_through_and_its_success_closes() {
        let breaker = Breaker::new(1, COOL_DOWN);
        fail(&breaker, 1);
        tokio::time::advance(COOL_DOWN).await;
        let probe = breaker.admit(Instant::now()).expect("the probe");
        let refusal = breaker.admit(Instant::now()).expect_err("one probe at a time");
        assert_eq!(refusal.retry_in, Duration::ZERO);
        probe.report(true, Instant::now());
        assert_eq!(breaker.state(Instant::now()), BreakerState::Closed);
        assert!(breaker.admit(Instant::now()).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_opens_for_another_cool_down() {
        let breaker = Breaker::new(2, COOL_DOWN);
        fail(&breaker, 2);
        tokio::time::advance(COOL_DOWN).await;
        breaker.admit(Instant::now()).expect("the probe").report(false, Instant::now());
        assert_eq!(breaker.state(Instant::now()), BreakerState::Open);
        tokio::time::advance(COOL_DOWN / 2).await;
        assert_eq!(breaker.admit(Instant::now()).unwrap_err().retry_in, COOL_DOWN / 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_probe_frees_its_place() {
        let breaker = Breaker::new(1, COOL_DOWN);
        fail(&breaker, 1);
        tokio::time::advance(COOL_DOWN).await;
        drop(breaker.admit(Instant::now()).expect("the probe"));
        assert_eq!(breaker.state(Instant::now()), BreakerState::HalfOpen);
        assert!(breaker.admit(Instant::now()).is_ok(), "the next call probes");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_failure_does_not_extend_the_cool_down() {
        let breaker = Breaker::new(1, COOL_DOWN);
        let late = breaker.admit(Instant::now()).unwrap();
        fail(&breaker, 1);
        tokio::time::advance(COOL_DOWN / 2).await;
        late.report(false, Instant::now());
        assert_eq!(breaker.admit(Instant::now()).unwrap_err().retry_in, COOL_DOWN / 2);
    }
}
