//! State kept once per thread: each serving thread runs its own event loop, and what one thread's
//! requests share (idle upstream connections, queued audit records) is best kept where that loop
//! watches it, so that using it never wakes another thread. A fixed number of slots, handed out to
//! threads in the order they first ask; threads past that number share slots, which stays correct
//! (every slot is locked), only less local.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many slots a [`PerThread`] keeps.
pub const SLOTS: usize = 16;

std::thread_local! {
    static SLOT: usize = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed) % SLOTS
    };
}

/// The calling thread's slot number.
pub fn slot() -> usize {
    SLOT.with(|s| *s)
}

/// One `T` per thread (per slot).
#[derive(Debug)]
pub struct PerThread<T> {
    slots: [T; SLOTS],
}

impl<T> PerThread<T> {
    /// Every slot made by `make`.
    pub fn new(mut make: impl FnMut() -> T) -> PerThread<T> {
        PerThread { slots: std::array::from_fn(|_| make()) }
    }

    /// The calling thread's `T`.
    pub fn mine(&self) -> &T {
        &self.slots[slot()]
    }

    /// The `T` of slot `slot` (a number [`slot()`] gave; taken modulo [`SLOTS`]).
    pub fn get(&self, slot: usize) -> &T {
        &self.slots[slot % SLOTS]
    }

    /// Every slot's `T`.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_keeps_its_slot_and_other_threads_get_others() {
        let counters = PerThread::new(|| AtomicUsize::new(0));
        let mine = slot();
        assert_eq!(slot(), mine, "the same slot on every call");
        counters.mine().fetch_add(1, Ordering::Relaxed);
        let theirs = std::thread::spawn(slot).join().unwrap();
        assert_ne!(theirs, mine, "a new thread gets the next slot");
        assert_eq!(counters.get(mine).load(Ordering::Relaxed), 1);
        assert_eq!(counters.iter().map(|c| c.load(Ordering::Relaxed)).sum::<usize>(), 1);
    }
}
