//! Calling an inner service without cloning it for each request.
//!
//! Every service of the request path holds `Arc`s to what all serving threads share (the tables, the
//! audit store, the clock, ...). Cloning a stack of them for each request, as a layer must to call its
//! inner service after an await, increments and then decrements every one of those counts, on cache
//! lines the other serving threads' requests touch too: some fifty atomic operations a request, about
//! a microsecond of CPU on a two-CPU machine (BENCHMARKS.md). Here a layer calls a copy it already has
//! instead:
//! - [`call_ready`]: a service the caller holds (`&mut`), called at once when it is ready, as every
//!   service of the request path is (none of them waits for capacity); otherwise a clone of it, driven to
//!   readiness first, so that the tower contract (ready before called) always holds.
//! - [`Kept`]: a copy of the inner service per serving thread ([`PerThread`]), made once, for a layer
//!   whose request reaches its inner service only after an await (the body read, the admission record
//!   written): the request takes its thread's copy, whose count only that thread touches.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use futures_util::future::Either;
use tower::Service;
use tower::util::{Oneshot, ServiceExt};

use crate::per_thread::PerThread;

/// What [`call_ready`] returns: the service's own future, or the clone's when it was not ready at once.
/// The clone's is boxed: it holds the whole service and the request, and unboxed it would make every
/// call's future that large, to be moved (copied) as it goes up through hyper and the layers.
pub type ReadyCall<S, R> = Either<<S as Service<R>>::Future, Pin<Box<Oneshot<S, R>>>>;

/// `req` to `service` at once if it is ready now, else to a clone of it once that is ready.
pub fn call_ready<S, R>(service: &mut S, req: R) -> ReadyCall<S, R>
where
    S: Service<R> + Clone,
{
    let mut cx = Context::from_waker(Waker::noop());
    match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => Either::Left(service.call(req)),
        // Not ready, or failed: the clone is polled again by a task that will be woken, and its error
        // (if it fails again) is the call's.
        _ => Either::Right(Box::pin(service.clone().oneshot(req))),
    }
}

/// An inner service kept once per serving thread.
#[derive(Debug)]
pub struct Kept<S> {
    copies: Arc<PerThread<Arc<Mutex<S>>>>,
}

impl<S> Clone for Kept<S> {
    fn clone(&self) -> Kept<S> {
        Kept { copies: self.copies.clone() }
    }
}

impl<S: Clone> Kept<S> {
    /// A copy of `service` for every thread.
    pub fn new(service: S) -> Kept<S> {
        Kept { copies: Arc::new(PerThread::new(|| Arc::new(Mutex::new(service.clone())))) }
    }

    /// The calling thread's copy, to call later with [`Mine::call`].
    pub fn mine(&self) -> Mine<S> {
        Mine(self.copies.mine().clone())
    }
}

/// One thread's copy of a [`Kept`] service.
#[derive(Debug)]
pub struct Mine<S>(Arc<Mutex<S>>);

impl<S: Clone> Mine<S> {
    /// `req` to the copy, as [`call_ready`] does. The copy is locked only while the call is made, not
    /// while its future runs.
    pub fn call<R>(&self, req: R) -> ReadyCall<S, R>
    where
        S: Service<R>,
    {
        // A poisoned lock means a call panicked while being made; the service itself is still whole.
        let mut service = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        call_ready(&mut *service, req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts, in the shared number it was made with, every clone of what holds it (held for that alone).
    #[derive(Debug)]
    struct CloneCount(Arc<AtomicUsize>);

    impl Clone for CloneCount {
        fn clone(&self) -> CloneCount {
            self.0.fetch_add(1, Ordering::Relaxed);
            CloneCount(self.0.clone())
        }
    }

    /// A service that is ready only every other time it is asked, counting its clones.
    #[derive(Debug, Clone)]
    struct Sometimes {
        asked: usize,
        _clones: CloneCount,
    }

    impl Service<u32> for Sometimes {
        type Response = u32;
        type Error = &'static str;
        type Future = std::future::Ready<Result<u32, &'static str>>;

        fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), &'static str>> {
            self.asked += 1;
            if self.asked % 2 == 0 {
                Poll::Ready(Ok(()))
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }

        fn call(&mut self, req: u32) -> Self::Future {
            std::future::ready(Ok(req * 2))
        }
    }

    #[tokio::test]
    async fn a_ready_service_is_called_itself_and_one_that_is_not_through_a_clone() {
        let clones = Arc::new(AtomicUsize::new(0));
        let mut service = Sometimes { asked: 1, _clones: CloneCount(clones.clone()) };
        // Asked the second time: ready, called itself.
        assert_eq!(call_ready(&mut service, 4).await, Ok(8));
        assert_eq!(clones.load(Ordering::Relaxed), 0);
        // Asked the third time: not ready, so a clone is driven to readiness and called.
        assert_eq!(call_ready(&mut service, 5).await, Ok(10));
        assert_eq!(clones.load(Ordering::Relaxed), 1);
    }

    /// A service that numbers its calls, each copy on its own; its clones are counted.
    #[derive(Debug, Clone)]
    struct Numbering {
        calls: u32,
        _clones: CloneCount,
    }

    impl Service<u32> for Numbering {
        type Response = (u32, u32);
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<(u32, u32), std::convert::Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: u32) -> Self::Future {
            self.calls += 1;
            std::future::ready(Ok((req, self.calls)))
        }
    }

    #[tokio::test]
    async fn a_kept_service_is_copied_once_and_each_thread_calls_its_own_copy() {
        let clones = Arc::new(AtomicUsize::new(0));
        let kept = Kept::new(Numbering { calls: 0, _clones: CloneCount(clones.clone()) });
        let copies = clones.load(Ordering::Relaxed);
        assert_eq!(copies, crate::per_thread::SLOTS, "one copy per slot");
        assert_eq!(kept.mine().call(1).await, Ok((1, 1)));
        assert_eq!(kept.clone().mine().call(2).await, Ok((2, 2)), "the same thread, the same copy");
        let theirs = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            (crate::per_thread::slot(), runtime.block_on(kept.mine().call(3)))
        });
        let (their_slot, answer) = theirs.join().unwrap();
        // Threads past the number of slots share them: only then is the copy this thread's.
        let calls_before = if their_slot == crate::per_thread::slot() { 2 } else { 0 };
        assert_eq!(answer, Ok((3, calls_before + 1)), "another thread, its slot's copy");
        assert_eq!(clones.load(Ordering::Relaxed), copies, "no copy made per call");
    }
}
