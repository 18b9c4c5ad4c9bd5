//! How the serving threads of one listener share its connections. Every thread accepts from the same
//! socket, and a thread that is awake when callers connect would otherwise take every connection
//! waiting (a client opening 64 connections at once can leave one thread with two thirds of them,
//! and one CPU doing two thirds of the work). A thread holding more than its share stops accepting
//! until the others have caught up, so the open connections stay within a few of even; it is told
//! when a count changes (a connection opened or closed anywhere), so that the thread with the fewest
//! connections is always accepting.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// How far ahead of the thread with the fewest connections a thread may be and still accept.
const SLACK: usize = 1;

/// The open connections of each serving thread of one listener.
#[derive(Debug)]
pub struct Shares {
    open: Vec<AtomicUsize>,
    /// Told whenever a count changes.
    changed: tokio::sync::Notify,
}

impl Shares {
    /// Shares among `threads` serving threads, none with a connection yet.
    pub fn new(threads: usize) -> Arc<Shares> {
        Arc::new(Shares {
            open: (0..threads).map(|_| AtomicUsize::new(0)).collect(),
            changed: tokio::sync::Notify::new(),
        })
    }

    /// The share of serving thread `thread` (an index below the count given to [`Shares::new`]).
    pub fn of(self: &Arc<Shares>, thread: usize) -> Share {
        Share { shares: self.clone(), thread: thread.min(self.open.len().saturating_sub(1)) }
    }
}

/// One serving thread's share of a listener's connections.
#[derive(Debug, Clone)]
pub struct Share {
    shares: Arc<Shares>,
    thread: usize,
}

impl Share {
    /// True unless this thread holds more connections than the thread with the fewest, plus the slack.
    pub fn may_accept(&self) -> bool {
        let fewest = self.shares.open.iter().map(|o| o.load(Ordering::Relaxed)).min().unwrap_or(0);
        self.count() <= fewest + SLACK
    }

    /// Counts an accepted connection against this thread until the returned guard is dropped.
    pub fn hold(&self) -> Held {
        self.shares.open[self.thread].fetch_add(1, Ordering::Relaxed);
        self.shares.changed.notify_waiters();
        Held(self.clone())
    }

    /// Resolves at the next change of any thread's count after this call (not before it is awaited:
    /// take it, then look at [`Share::may_accept`], then await it).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.shares.changed.notified()
    }

    fn count(&self) -> usize {
        self.shares.open[self.thread].load(Ordering::Relaxed)
    }
}

/// One open connection, counted in its thread's share while it lives.
#[derive(Debug)]
pub struct Held(Share);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.shares.open[self.0.thread].fetch_sub(1, Ordering::Relaxed);
        self.0.shares.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_ahead_of_the_others_waits_until_they_catch_up() {
        let shares = Shares::new(2);
        let (a, b) = (shares.of(0), shares.of(1));
        let first = a.hold();
        assert!(a.may_accept(), "one ahead is within the slack");
        let second = a.hold();
        assert!(!a.may_accept(), "two ahead: the other thread takes the next");
        assert!(b.may_accept());
        let theirs = b.hold();
        assert!(a.may_accept(), "caught up");
        drop((first, second));
        assert!(a.may_accept());
        assert!(b.may_accept(), "one ahead is within the slack");
        drop(theirs);
        assert_eq!((a.count(), b.count()), (0, 0), "closed connections are no longer counted");
    }

    #[tokio::test]
    async fn a_thread_that_stopped_accepting_is_told_when_the_counts_change() {
        let shares = Shares::new(2);
        let (a, b) = (shares.of(0), shares.of(1));
        let held = [a.hold(), a.hold()];
        let changed = a.changed();
        assert!(!a.may_accept());
        let theirs = b.hold();
        tokio::time::timeout(std::time::Duration::from_secs(5), changed).await.expect("told of the change");
        assert!(a.may_accept());
        drop((held, theirs));
    }

    #[test]
    fn a_single_thread_always_accepts() {
        let shares = Shares::new(1);
        let only = shares.of(0);
        let held: Vec<Held> = (0..10).map(|_| only.hold()).collect();
        assert!(only.may_accept());
        assert_eq!(held.len(), 10);
    }
}
