//! The in-memory replay store's set of key hashes: open addressing with linear probing in one table
//! sized once for the capacity (three quarters full at most), where a removal closes its gap by
//! shifting the entries after it back instead of leaving a tombstone. The table never grows, however
//! many keys come and go, so it is never copied while requests wait on the store; the system gives it
//! memory page by page as keys land in it.

/// A set of 64-bit hashes. Zero marks an empty slot, so a hash of zero is kept as one (two keys
/// colliding there is as likely as any other 64-bit collision).
pub(super) struct HashSlots {
    slots: Box<[u64]>,
    len: usize,
}

impl std::fmt::Debug for HashSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashSlots").field("len", &self.len).field("slots", &self.slots.len()).finish()
    }
}

impl HashSlots {
    /// An empty set with room for `capacity` hashes, and one more, at three quarters full.
    pub(super) fn with_capacity(capacity: usize) -> HashSlots {
        let hashes = capacity + 1;
        HashSlots { slots: empty(hashes + hashes / 3 + 1), len: 0 }
    }

    /// How many hashes are held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// How many slots the table has.
    #[cfg(test)]
    pub(super) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Adds `hash`; false if it was held already.
    pub(super) fn insert(&mut self, hash: u64) -> bool {
        let hash = hash.max(1);
        if self.len + 1 == self.slots.len() {
            // Asked to hold more than its capacity (the store never does): grow rather than fill
            // the last empty slot, which every look-up of an absent hash needs to stop at.
            self.resize(self.slots.len() * 2);
        }
        let mut at = self.home(hash);
        loop {
            match self.slots[at] {
                0 => {
                    self.slots[at] = hash;
                    self.len += 1;
                    return true;
                }
                held if held == hash => return false,
                _ => at = self.next(at),
            }
        }
    }

    /// Removes `hash`; false if it was not held.
    pub(super) fn remove(&mut self, hash: u64) -> bool {
        let hash = hash.max(1);
        let mut at = self.home(hash);
        loop {
            match self.slots[at] {
                0 => return false,
                held if held == hash => break,
                _ => at = self.next(at),
            }
        }
        // Close the gap: an entry further along the run moves back into it unless its home lies
        // after the gap (then a look-up from its home would never pass the gap).
        let mut gap = at;
        let mut next = self.next(gap);
        while self.slots[next] != 0 {
            let entry = self.slots[next];
            if self.distance(self.home(entry), next) >= self.distance(gap, next) {
                self.slots[gap] = entry;
                gap = next;
            }
            next = self.next(next);
        }
        self.slots[gap] = 0;
        self.len -= 1;
        true
    }

    /// The slot a hash is looked for first: the hash scaled onto the table (its high bits).
    fn home(&self, hash: u64) -> usize {
        ((u128::from(hash) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, at: usize) -> usize {
        if at + 1 == self.slots.len() { 0 } else { at + 1 }
    }

    /// Steps forward from slot `from` to slot `to`, wrapping around the end.
    fn distance(&self, from: usize, to: usize) -> usize {
        if to >= from { to - from } else { to + self.slots.len() - from }
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, empty(slots));
        self.len = 0;
        for hash in old.iter().copied().filter(|&h| h != 0) {
            self.insert(hash);
        }
    }
}

/// A zeroed table: taken from the system as zero pages, not written until used.
fn empty(slots: usize) -> Box<[u64]> {
    vec![0; slots].into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Remove(u64),
    }

    /// Hashes from a small pool, some of them crowded onto a few homes of a small table, so runs
    /// collide, wrap around the end and are shifted back.
    fn op() -> impl Strategy<Value = Op> {
        let hash = prop_oneof![0u64..4, (0u64..64).prop_map(|i| u64::MAX - i), (0u64..200).prop_map(|i| i << 56 | i)];
        prop_oneof![hash.clone().prop_map(Op::Insert), hash.prop_map(Op::Remove)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn behaves_as_a_set(capacity in 1usize..3000, ops in proptest::collection::vec(op(), 0..3000)) {
            let mut slots = HashSlots::with_capacity(capacity);
            let mut model = HashSet::new();
            for op in ops {
                match op {
                    Op::Insert(h) => prop_assert_eq!(slots.insert(h), model.insert(h.max(1))),
                    Op::Remove(h) => prop_assert_eq!(slots.remove(h), model.remove(&h.max(1))),
                }
                prop_assert_eq!(slots.len(), model.len());
            }
            for h in &model {
                prop_assert!(!slots.insert(*h), "{} is still found", h);
            }
        }
    }

    #[test]
    fn held_at_capacity_the_table_never_grows_however_many_come_and_go() {
        let capacity = 50_000;
        let mut slots = HashSlots::with_capacity(capacity);
        let hash = |i: u64| i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        for i in 0..capacity as u64 {
            assert!(slots.insert(hash(i)));
        }
        let size = slots.slot_count();
        assert!(size <= capacity * 4 / 3 + 3, "{size} slots for {capacity}");
        for i in capacity as u64..20 * capacity as u64 {
            assert!(slots.insert(hash(i)));
            assert!(slots.remove(hash(i - capacity as u64)));
        }
        assert_eq!(slots.slot_count(), size, "removals leave no tombstones to grow for");
        assert_eq!(slots.len(), capacity);
    }
}
