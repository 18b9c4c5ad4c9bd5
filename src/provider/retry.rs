//! When a failed upstream call may be tried again, how long to wait first, and the record of every
//! attempt.
//!
//! A call is tried again only where a change cannot apply twice: when nothing was sent (the connection
//! could not be made), when the upstream answered its throttling code (it applied nothing), or when the
//! action is a look-up, whatever the failure. A bind or unbind whose bytes went out is never sent again:
//! its timeout or broken reply is reported as it is. Waits grow exponentially with full jitter (a random
//! time from zero to the bound), and no wait runs past the call's deadline.

use std::time::Duration;

use crate::model::{Action, Code};

/// The bound of the first wait.
const BASE_DELAY: Duration = Duration::from_millis(100);
/// No wait is bounded by more than this.
const MAX_DELAY: Duration = Duration::from_secs(2);

/// How one attempt ended, as far as retrying is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// The upstream answered in its protocol (a success or its error).
    Answered,
    /// The connection could not be made: nothing was sent.
    NotConnected,
    /// The request went out and no readable reply came back (timeout, reset, garbage).
    Lost,
    /// The circuit breaker was open: nothing was sent.
    BreakerOpen,
    /// The quota had no turn before the deadline: nothing was sent.
    QuotaRefused,
    /// crossgate could not build the request: nothing was sent, and trying again would fail the same way.
    Unsendable,
}

impl Ending {
    /// The name used in audit lines and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Ending::Answered => "answered",
            Ending::NotConnected => "not_connected",
            Ending::Lost => "lost",
            Ending::BreakerOpen => "breaker_open",
            Ending::QuotaRefused => "quota_refused",
            Ending::Unsendable => "unsendable",
        }
    }
}

/// One attempt at an upstream call, for the audit log and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The upstream's name.
    pub upstream: String,
    /// The canonical action.
    pub action: Action,
    /// 1 for the first try of a call (each page of a look-up is a call of its own).
    pub number: u32,
    /// How it ended.
    pub ending: Ending,
    /// The reply's HTTP status, when a reply head arrived.
    pub status: Option<u16>,
    /// The canonical kind of the failure, if it failed.
    pub fault: Option<Code>,
    /// Time from the attempt's start to its end, in milliseconds.
    pub elapsed_ms: u64,
}

/// Whether an attempt that ended so, failing with `fault` (`None`: it succeeded), may be tried again.
pub(crate) fn may_retry(action: Action, ending: Ending, fault: Option<Code>) -> bool {
    let read_only = !action.is_mutation();
    match (ending, fault) {
        (_, None) => false,
        (Ending::BreakerOpen | Ending::QuotaRefused | Ending::Unsendable, _) => false,
        (Ending::NotConnected, _) => true,
        (Ending::Answered, Some(Code::Throttled)) => true,
        (Ending::Answered, Some(Code::UpstreamUnavailable | Code::UpstreamTimeout | Code::Internal)) => read_only,
        (Ending::Answered, Some(_)) => false,
        (Ending::Lost, _) => read_only,
    }
}

/// The wait before retry number `retry` (1 for the first), given `unit` in `[0, 1)`: full jitter under an
/// exponentially growing bound.
pub(crate) fn delay(retry: u32, unit: f64) -> Duration {
    let bound = BASE_DELAY.saturating_mul(1u32 << retry.saturating_sub(1).min(16)).min(MAX_DELAY);
    bound.mul_f64(unit.clamp(0.0, 1.0))
}

/// A random number in `[0, 1)`, from the operating system's generator.
pub(crate) fn unit() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mutation_is_retried_only_when_nothing_was_applied() {
        let bind = Action::AssociateKeys;
        assert!(may_retry(bind, Ending::NotConnected, Some(Code::UpstreamUnavailable)));
        assert!(may_retry(bind, Ending::Answered, Some(Code::Throttled)));
        assert!(!may_retry(bind, Ending::Lost, Some(Code::UpstreamTimeout)), "sent: never twice");
        assert!(!may_retry(bind, Ending::Answered, Some(Code::UpstreamUnavailable)));
        assert!(!may_retry(bind, Ending::Answered, Some(Code::InstanceNotFound)));
        assert!(!may_retry(bind, Ending::Answered, None));
        assert!(!may_retry(bind, Ending::BreakerOpen, Some(Code::UpstreamUnavailable)));
        assert!(!may_retry(bind, Ending::QuotaRefused, Some(Code::Throttled)));
        assert!(!may_retry(Action::DescribeKeys, Ending::Unsendable, Some(Code::Internal)));
    }

    #[test]
    fn a_look_up_is_retried_whatever_the_failure() {
        for action in [Action::DescribeKeys, Action::DescribeInstances] {
            assert!(may_retry(action, Ending::Lost, Some(Code::UpstreamTimeout)));
            assert!(may_retry(action, Ending::Lost, Some(Code::Internal)));
            assert!(may_retry(action, Ending::Answered, Some(Code::UpstreamUnavailable)));
            assert!(!may_retry(action, Ending::Answered, Some(Code::MalformedKeyId)), "a definite answer");
            assert!(!may_retry(action, Ending::Answered, None));
        }
    }

    #[test]
    fn waits_grow_with_full_jitter_under_a_cap() {
        assert_eq!(delay(1, 0.0), Duration::ZERO);
        assert_eq!(delay(1, 0.5), Duration::from_millis(50));
        assert_eq!(delay(2, 0.5), Duration::from_millis(100));
        assert_eq!(delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(delay(30, 1.0), MAX_DELAY);
        for _ in 0..100 {
            let u = unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
