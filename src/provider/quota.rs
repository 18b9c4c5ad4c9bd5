//! Upstream quotas: the provider's own rate limit per action (`requests_per_second` in
//! `mappings/limits.toml`: Lighthouse binds 10/s, unbinds 20/s), kept on crossgate's side so that the
//! upstream never sees more than its rate.
//!
//! [`RateLimiter`] hands out turns; [`LocalGcra`] is the in-process one (GCRA with no burst: one
//! theoretical arrival time per key, so any one-second window holds at most the rate). [`Quota`] makes a
//! caller wait for its turn, with at most `queue` callers waiting per upstream and never past the call's
//! deadline; a caller that cannot have a turn is refused with [`Code::Throttled`], which each dialect's
//! table renders as its own throttling error.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Action, Code, Fault};
use crate::replay::Unavailable;

/// The least time a turn must leave the call before its deadline.
const MIN_CALL_TIME: Duration = Duration::from_millis(100);

/// The answer of [`RateLimiter::reserve`]: the turn (or `None`: none before `latest`), or a shared
/// limiter that cannot be reached.
pub type Reserving = futures_util::future::BoxFuture<'static, Result<Option<Instant>, Unavailable>>;

/// Hands out turns to send, per key, at a rate.
pub trait RateLimiter: Send + Sync + fmt::Debug {
    /// Reserves the next turn for one request under `key` at `per_second`: the instant it may be sent
    /// (`now` or later), or `None`, reserving nothing, when the next turn comes after `latest`.
    fn reserve(&self, key: &str, per_second: u32, now: Instant, latest: Instant) -> Reserving;
}

/// The in-process limiter: GCRA without burst, one theoretical arrival time per key.
#[derive(Debug, Default)]
pub struct LocalGcra {
    next: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter for LocalGcra {
    fn reserve(&self, key: &str, per_second: u32, now: Instant, latest: Instant) -> Reserving {
        let turn = self.reserve_now(key, per_second, now, latest);
        Box::pin(std::future::ready(Ok(turn)))
    }
}

impl LocalGcra {
    /// [`RateLimiter::reserve`], answered at once.
    pub fn reserve_now(&self, key: &str, per_second: u32, now: Instant, latest: Instant) -> Option<Instant> {
        let interval = Duration::from_secs(1) / per_second.max(1);
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let turn = next.get(key).map_or(now, |&t| t.max(now));
        if turn > latest {
            return None;
        }
        next.insert(key.to_owned(), turn + interval);
        Some(turn)
    }
}

/// One upstream's quotas: a bounded queue in front of a [`RateLimiter`], and counters for metrics. The
/// rates come with each call, from the mapping tables.
#[derive(Debug)]
pub struct Quota {
    upstream: String,
    limiter: std::sync::Arc<dyn RateLimiter>,
    bound: usize,
    waiting: AtomicUsize,
    refused: AtomicU64,
}

impl Quota {
    /// Quotas for `upstream`, with at most `bound` callers waiting for a turn from `limiter`.
    pub fn new(upstream: &str, bound: usize, limiter: std::sync::Arc<dyn RateLimiter>) -> Quota {
        Quota {
            upstream: upstream.to_owned(),
            limiter,
            bound,
            waiting: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// How many callers are waiting for their turn now.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// How many callers have been refused since start.
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Waits for `action`'s next turn at `rate` per second (none: no wait), or refuses with
    /// [`Code::Throttled`] when the queue is full and the turn is not now, or when the turn comes after
    /// `deadline`.
    pub async fn admit(&self, action: Action, rate: Option<u32>, deadline: Instant) -> Result<(), Fault> {
        let Some(rate) = rate else { return Ok(()) };
        let now = Instant::now();
        // A place in the queue first, so that a caller who may not wait reserves no later turn.
        let place = Place::take(&self.waiting, self.bound);
        // A turn must leave the call some time before its deadline: one at the deadline itself would be
        // sent with none, and fail after taking the turn from another caller.
        let latest = if place.is_some() { deadline.checked_sub(MIN_CALL_TIME).unwrap_or(now).max(now) } else { now };
        let key = format!("{}/{}", self.upstream, action.name());
        let reserved = match self.limiter.reserve(&key, rate, now, latest).await {
            Ok(reserved) => reserved,
            Err(Unavailable(why)) => {
                tracing::warn!(error = %why, upstream = %self.upstream, "The shared rate limit cannot be reached.");
                return Err(Fault::gateway(
                    Code::UpstreamUnavailable,
                    format!(
                        "The upstream `{}`'s shared rate limit cannot be checked right now; nothing was sent. Try \
                         again shortly.",
                        self.upstream
                    ),
                ));
            }
        };
        match reserved {
            Some(turn) if turn <= now => Ok(()),
            Some(turn) => {
                tokio::time::sleep_until(turn).await;
                drop(place);
                Ok(())
            }
            None => {
                self.refused.fetch_add(1, Ordering::Relaxed);
                let why = if place.is_some() {
                    "the next turn comes after the request's time limit".to_owned()
                } else {
                    format!("{} requests are already waiting", self.bound)
                };
                Err(Fault::upstream(
                    Code::Throttled,
                    format!(
                        "The upstream `{}` takes at most {rate} `{action}` requests per second and {why}; try again \
                         later.",
                        self.upstream
                    ),
                    None,
                ))
            }
        }
    }
}

/// A place in the queue, given back on drop.
#[derive(Debug)]
struct Place<'q>(&'q AtomicUsize);

impl<'q> Place<'q> {
    fn take(waiting: &'q AtomicUsize, bound: usize) -> Option<Place<'q>> {
        waiting.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < bound).then_some(n + 1)).ok()?;
        Some(Place(waiting))
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const FAR: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn turns_are_spaced_by_the_rate() {
        let gcra = LocalGcra::default();
        let t0 = Instant::now();
        let turns: Vec<Duration> = (0..12).map(|_| gcra.reserve_now("k", 10, t0, t0 + FAR).unwrap() - t0).collect();
        assert_eq!(turns[0], Duration::ZERO);
        assert!(turns.windows(2).all(|w| w[1] - w[0] == Duration::from_millis(100)), "{turns:?}");
        // Any one-second window holds at most the rate: the 11th turn is a whole second after the 1st.
        assert_eq!(turns[10] - turns[0], Duration::from_secs(1));
        assert_eq!(gcra.reserve_now("other", 10, t0, t0), Some(t0), "keys are independent");
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_after_the_latest_is_refused_and_reserves_nothing() {
        let gcra = LocalGcra::default();
        let t0 = Instant::now();
        assert_eq!(gcra.reserve_now("k", 2, t0, t0), Some(t0));
        assert_eq!(gcra.reserve_now("k", 2, t0, t0 + Duration::from_millis(499)), None);
        assert_eq!(
            gcra.reserve_now("k", 2, t0, t0 + Duration::from_millis(500)),
            Some(t0 + Duration::from_millis(500))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let later = Instant::now();
        assert_eq!(gcra.reserve_now("k", 2, later, later), Some(later), "an idle key starts afresh");
    }

    fn quota(bound: usize) -> Arc<Quota> {
        Arc::new(Quota::new("lh", bound, Arc::new(LocalGcra::default())))
    }

    const BIND: Action = Action::AssociateKeys;
    const RATE: Option<u32> = Some(10);

    #[tokio::test(start_paused = true)]
    async fn callers_wait_their_turn_up_to_the_bound_then_are_throttled() {
        let quota = quota(3);
        let t0 = Instant::now();
        let mut waiting = Vec::new();
        for _ in 0..4 {
            let q = quota.clone();
            waiting.push(tokio::spawn(async move {
                q.admit(BIND, RATE, Instant::now() + FAR).await.map(|()| Instant::now() - t0)
            }));
        }
        tokio::task::yield_now().await;
        // The first went at once; three wait.
        assert_eq!(quota.queued(), 3);
        let refused = quota.admit(BIND, RATE, Instant::now() + FAR).await.unwrap_err();
        assert_eq!(refused.code(), Code::Throttled);
        assert!(refused.message().contains("3 requests are already waiting"), "{refused}");
        assert_eq!(quota.refusals(), 1);
        let mut went = Vec::new();
        for w in waiting {
            went.push(w.await.unwrap().unwrap());
        }
        went.sort();
        let ms: Vec<u128> = went.iter().map(|d| d.as_millis()).collect();
        assert_eq!(ms, [0, 100, 200, 300]);
        assert_eq!(quota.queued(), 0);
        assert!(quota.admit(Action::DescribeKeys, None, Instant::now()).await.is_ok(), "no rate, no wait");
    }

    #[tokio::test(start_paused = true)]
    async fn no_caller_waits_past_its_deadline() {
        let quota = quota(100);
        let now = Instant::now();
        quota.admit(BIND, RATE, now).await.unwrap();
        let fault = quota.admit(BIND, RATE, now + Duration::from_millis(50)).await.unwrap_err();
        assert!(fault.message().contains("time limit"), "{fault}");
        assert_eq!(Instant::now(), now, "refused without waiting");
        assert_eq!(quota.queued(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_whose_turn_is_now_needs_no_place_in_the_queue() {
        let quota = quota(0);
        assert!(quota.admit(BIND, RATE, Instant::now() + FAR).await.is_ok());
        assert!(quota.admit(BIND, RATE, Instant::now() + FAR).await.is_err(), "the next would wait");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(quota.admit(BIND, RATE, Instant::now() + FAR).await.is_ok());
    }
}
