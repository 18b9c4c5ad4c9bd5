//! A request's work that always runs to its end: polled where it is awaited (the caller's connection
//! task, with no task of its own, no hand-over and no wake-up of another task), and moved to a task of
//! its own if it is dropped before it ended, which is what happens to it when the caller leaves
//! mid-request. Either way the work is counted by the server's [`TaskTracker`], so a shutdown waits for
//! it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

/// Work that ends even if whoever awaits it does not wait for the end.
pub struct Detachable<T: Send + 'static> {
    /// The work; `None` once it ended (or was handed to a task).
    work: Option<BoxFuture<'static, T>>,
    tasks: TaskTracker,
    /// Counts the work in `tasks` while it runs here.
    _counted: TaskTrackerToken,
}

impl<T: Send + 'static> std::fmt::Debug for Detachable<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detachable").field("ended", &self.work.is_none()).finish_non_exhaustive()
    }
}

impl<T: Send + 'static> Detachable<T> {
    /// `work`, counted in `tasks` from now until it ends.
    pub fn new(work: BoxFuture<'static, T>, tasks: &TaskTracker) -> Detachable<T> {
        Detachable { work: Some(work), tasks: tasks.clone(), _counted: tasks.token() }
    }
}

impl<T: Send + 'static> Future for Detachable<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let Some(work) = self.work.as_mut() else {
            panic!("a request's work polled after it ended");
        };
        let out = std::task::ready!(work.as_mut().poll(cx));
        self.work = None;
        Poll::Ready(out)
    }
}

impl<T: Send + 'static> Drop for Detachable<T> {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else { return };
        // The awaiting side gave up: the work goes on as a task of its own (its result unread). Outside
        // a runtime (one being torn down) there is nowhere left to run it, as for any task.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            self.tasks.spawn_on(async move { drop(work.await) }, &runtime);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn work_awaited_to_its_end_runs_where_it_is_awaited() {
        let tasks = TaskTracker::new();
        let work = Detachable::new(Box::pin(async { 7 }), &tasks);
        assert_eq!(tasks.len(), 1, "the work is counted while it runs");
        assert_eq!(work.await, 7);
        assert_eq!(tasks.len(), 0, "no task was spawned for it, and it is no longer counted");
    }

    #[tokio::test]
    async fn work_dropped_midway_ends_in_a_task_of_its_own_that_a_shutdown_waits_for() {
        let tasks = TaskTracker::new();
        let ended = Arc::new(AtomicBool::new(false));
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let flag = ended.clone();
        let work = Detachable::new(
            Box::pin(async move {
                let _ = wait.await;
                flag.store(true, Ordering::SeqCst);
            }),
            &tasks,
        );
        // Polled once, then given up on, as hyper does with a request whose caller left.
        assert!(tokio::time::timeout(Duration::from_millis(20), work).await.is_err());
        assert!(!ended.load(Ordering::SeqCst));
        assert_eq!(tasks.len(), 1, "the rest of the work is a tracked task");
        tasks.close();
        let waiting = tokio::time::timeout(Duration::from_millis(20), tasks.wait()).await;
        assert!(waiting.is_err(), "a shutdown waits for the work");
        go.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await.expect("the work ended");
        assert!(ended.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_shutdown_waits_for_work_running_where_it_is_awaited() {
        let tasks = TaskTracker::new();
        let (go, wait) = tokio::sync::oneshot::channel::<()>();
        let work = tokio::spawn(Detachable::new(Box::pin(async move { wait.await.is_ok() }), &tasks));
        tasks.close();
        assert!(tokio::time::timeout(Duration::from_millis(20), tasks.wait()).await.is_err());
        go.send(()).unwrap();
        assert!(work.await.unwrap());
        tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await.expect("counted no longer");
    }
}
