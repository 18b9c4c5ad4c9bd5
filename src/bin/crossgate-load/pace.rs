//! Waiting until a request is due, to the microsecond: an open-loop connection's own timer.
//!
//! tokio's timer wakes on whole milliseconds, so every request due within one millisecond would go out
//! together, up to a millisecond late, and the target would see bursts the schedule does not ask for.
//! A Linux `timerfd` (a high-resolution timer) registered with the runtime wakes the connection at its
//! due time instead.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::time::{
    Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags, Timespec, timerfd_create, timerfd_settime,
};
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;

/// One connection's high-resolution timer.
#[derive(Debug)]
pub(crate) struct Pacer {
    timer: AsyncFd<OwnedFd>,
}

impl Pacer {
    /// A disarmed timer on the monotonic clock, registered with the current runtime.
    pub(crate) fn new() -> io::Result<Pacer> {
        let fd = timerfd_create(TimerfdClockId::Monotonic, TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC)?;
        // `AsyncFd::new` is deprecated because a raw descriptor handed to it may be closed while still
        // registered; an `OwnedFd` moved into it closes only when the `AsyncFd` is dropped and deregistered.
        #[allow(deprecated)]
        let timer = AsyncFd::new(fd)?;
        Ok(Pacer { timer })
    }

    /// Returns at `due` (at once when it has passed).
    pub(crate) async fn until(&self, due: Instant) -> io::Result<()> {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let spec = Itimerspec { it_interval: timespec(Duration::ZERO), it_value: timespec(wait) };
        timerfd_settime(self.timer.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        loop {
            let mut ready = self.timer.readable().await?;
            // The timer's count of expiries; reading it clears the readiness.
            let mut expiries = [0u8; 8];
            match rustix::io::read(self.timer.get_ref(), &mut expiries) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::AGAIN) => ready.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn timespec(d: Duration) -> Timespec {
    Timespec { tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX), tv_nsec: i64::from(d.subsec_nanos()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wakes_at_the_due_time_and_not_before() {
        let pacer = Pacer::new().unwrap();
        for wait_us in [150u64, 400, 2_300] {
            let due = Instant::now() + Duration::from_micros(wait_us);
            pacer.until(due).await.unwrap();
            assert!(Instant::now() >= due, "woke before the due time ({wait_us} us)");
        }
    }

    #[tokio::test]
    async fn a_past_due_time_returns_at_once() {
        let pacer = Pacer::new().unwrap();
        let start = Instant::now();
        // A timer armed with a zero value would never fire: these must not wait for it.
        let waits = async {
            pacer.until(start - Duration::from_millis(5)).await.unwrap();
            pacer.until(start).await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(5), waits).await.expect("a past due time waited");
    }
}
