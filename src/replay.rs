//! Replay protection's memory: every spent replay key (a credential's nonce, or a TC3 signature's
//! digest) until its time window closes, behind the small [`ReplayStore`] interface a shared store
//! (Redis) implements too.
//!
//! [`MemoryReplayStore`] is bounded however many callers sign: past its capacity it forgets the keys
//! whose windows close first and raises a *floor*; a request whose window closes at or before the floor
//! can no longer be told apart from a replay, so it is refused as expired ([`Spend::BeforeFloor`]) and
//! the client signs afresh. Nothing forgotten can be replayed. Keys are kept as keyed 64-bit hashes
//! (random key per process), in a set (the `slots` table) and in the list of the second their window
//! closes: about 20 bytes each, the set never larger than the capacity needs. Keys whose windows have
//! closed are dropped before every look-up, so a key in the set is a key still within its window.

mod slots;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::Mutex;

use crate::audit::SpentKey;

/// What spending a replay key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Not seen within its window: now spent.
    Fresh,
    /// Spent already.
    Replayed,
    /// Its window closes at or before what the store still remembers: refuse it as expired.
    BeforeFloor,
}

/// A shared store could not be asked (down, unreachable, too slow): nothing is known about the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared replay store cannot be reached: {0}")]
pub struct Unavailable(pub String);

/// The answer of [`ReplayStore::spend`]: at once from memory, or later from a shared store.
pub enum Spending<'a> {
    /// Known already (taken once).
    Ready(Option<Result<Spend, Unavailable>>),
    /// Being asked.
    Pending(futures_util::future::BoxFuture<'a, Result<Spend, Unavailable>>),
}

impl Debug for Spending<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Spending::Ready(r) => f.debug_tuple("Ready").field(r).finish(),
            Spending::Pending(_) => f.write_str("Pending"),
        }
    }
}

impl std::future::Future for Spending<'_> {
    type Output = Result<Spend, Unavailable>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        match &mut *self {
            Spending::Ready(r) => {
                std::task::Poll::Ready(r.take().unwrap_or_else(|| Err(Unavailable("asked twice".into()))))
            }
            Spending::Pending(f) => f.as_mut().poll(cx),
        }
    }
}

/// Remembers spent replay keys until their windows close.
pub trait ReplayStore: Send + Sync + Debug {
    /// Spends `key`, whose window closes at `until` (Unix seconds), at `now`.
    fn spend(&self, key: &str, until: i64, now: i64) -> Spending<'static>;

    /// Remembers keys spent before a restart (read back from the audit trail). A shared store keeps
    /// them itself.
    fn restore(&self, keys: &[SpentKey], now: i64) {
        let _ = (keys, now);
    }
}

/// The replay key of a credential's nonce.
pub fn nonce_key(credential: &str, nonce: &str) -> String {
    format!("nonce:{credential}:{nonce}")
}

/// The replay key of a TC3 request: the SHA-256 of its signature and its action, never the signature
/// itself. The action is part of it because the clouds' SDKs leave `X-TC-Action` unsigned: an Associate
/// and a Disassociate of the same body in the same second carry the same signature. The signature is
/// hashed in lower case: its hex verifies in either case, and each spelling of it must be the one key.
pub fn signature_key(signature: &str, action: &str) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for chunk in signature.as_bytes().chunks(64) {
        let mut lower = [0u8; 64];
        let lower = &mut lower[..chunk.len()];
        lower.copy_from_slice(chunk);
        lower.make_ascii_lowercase();
        digest.update(lower);
    }
    let digest = digest.chain_update(b"\n").chain_update(action.as_bytes());
    let mut key = String::with_capacity(4 + 64);
    key.push_str("tc3:");
    crate::sign::encoding::push_hex_lower(&mut key, &digest.finalize());
    key
}

/// The default number of keys kept in memory.
pub const DEFAULT_CAPACITY: usize = 500_000;

/// An in-process, bounded replay store.
#[derive(Debug)]
pub struct MemoryReplayStore {
    inner: Mutex<Inner>,
    capacity: usize,
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug)]
struct Inner {
    /// The hashes of the keys within their windows.
    spent: slots::HashSlots,
    /// Closing time -> the key hashes whose windows close then (each key in one list: it is spent
    /// again only after its list was dropped).
    closing: BTreeMap<i64, Vec<u64>>,
    /// Windows closing at or before this time are no longer remembered.
    floor: i64,
}

impl Default for MemoryReplayStore {
    fn default() -> MemoryReplayStore {
        MemoryReplayStore::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemoryReplayStore {
    /// A store that keeps at most `capacity` keys.
    pub fn with_capacity(capacity: usize) -> MemoryReplayStore {
        let capacity = capacity.max(1);
        MemoryReplayStore {
            inner: Mutex::new(Inner {
                spent: slots::HashSlots::with_capacity(capacity),
                closing: BTreeMap::new(),
                floor: i64::MIN,
            }),
            capacity,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// How many keys are remembered now.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).spent.len()
    }

    /// True when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ReplayStore for MemoryReplayStore {
    fn spend(&self, key: &str, until: i64, now: i64) -> Spending<'static> {
        Spending::Ready(Some(Ok(self.spend_now(key, until, now))))
    }

    fn restore(&self, keys: &[SpentKey], now: i64) {
        for k in keys {
            let _ = self.spend_now(&k.key, k.until, now);
        }
    }
}

impl MemoryReplayStore {
    /// Spends `key`, whose window closes at `until` (Unix seconds), at `now`.
    pub fn spend_now(&self, key: &str, until: i64, now: i64) -> Spend {
        let hash = self.hasher.hash_one(key);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.forget_closed_before(now);
        if until <= inner.floor {
            return Spend::BeforeFloor;
        }
        // What closed before `now` was just dropped: a key still here is within its window.
        if !inner.spent.insert(hash) {
            return Spend::Replayed;
        }
        if let Some(list) = inner.closing.get_mut(&until) {
            list.push(hash);
        } else {
            // Sized from the second before: at a steady rate a list then holds at most a quarter more
            // than it needs, where doubling left up to twice (each list holds about a second of
            // requests, for as long as their windows last).
            let hint = inner.closing.get(&(until - 1)).map_or(0, |before| before.len() + before.len() / 4);
            let mut list = Vec::with_capacity(hint);
            list.push(hash);
            inner.closing.insert(until, list);
        }
        while inner.spent.len() > self.capacity {
            inner.forget_earliest();
        }
        Spend::Fresh
    }
}

impl Inner {
    /// Drops the keys whose windows closed before `now`.
    fn forget_closed_before(&mut self, now: i64) {
        while let Some(entry) = self.closing.first_entry() {
            if *entry.key() >= now {
                break;
            }
            let hashes = entry.remove();
            self.drop_hashes(&hashes);
        }
    }

    /// Forgets the keys whose windows close first and raises the floor to their closing time.
    fn forget_earliest(&mut self) {
        if let Some((at, hashes)) = self.closing.pop_first() {
            self.drop_hashes(&hashes);
            self.floor = self.floor.max(at);
        }
    }

    fn drop_hashes(&mut self, hashes: &[u64]) {
        for h in hashes {
            self.spent.remove(*h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_accepted_once_within_its_window() {
        let store = MemoryReplayStore::default();
        assert_eq!(store.spend_now(&nonce_key("id", "n1"), 100, 0), Spend::Fresh);
        assert_eq!(store.spend_now(&nonce_key("id", "n1"), 100, 50), Spend::Replayed);
        assert_eq!(store.spend_now(&nonce_key("other", "n1"), 100, 50), Spend::Fresh, "nonces are per credential");
        assert_eq!(store.spend_now(&nonce_key("id", "n1"), 300, 101), Spend::Fresh, "an expired key no longer blocks");
        assert_eq!(store.spend_now(&nonce_key("id", "n1"), 300, 150), Spend::Replayed, "its new window holds");
        assert_eq!(store.len(), 1, "the other key's window closed at 100");
    }

    #[test]
    fn memory_stays_bounded_and_what_is_forgotten_is_refused_as_expired() {
        let store = MemoryReplayStore::with_capacity(1_000);
        for i in 0..10_000 {
            assert_eq!(store.spend_now(&format!("k{i}"), 1_000 + i, 0), Spend::Fresh);
        }
        assert_eq!(store.len(), 1_000);
        // The oldest keys were forgotten: their replays cannot be told apart, so they are refused.
        assert_eq!(store.spend_now("k0", 1_000, 1), Spend::BeforeFloor);
        assert_eq!(store.spend_now("k8999", 9_999, 1), Spend::BeforeFloor);
        assert_eq!(store.spend_now("k9999", 10_999, 1), Spend::Replayed);
        assert_eq!(store.spend_now("new", 20_000, 1), Spend::Fresh);
    }

    #[test]
    fn a_new_second_is_sized_from_the_second_before() {
        let store = MemoryReplayStore::default();
        for i in 0..100 {
            store.spend_now(&format!("a{i}"), 10, 0);
        }
        store.spend_now("b", 11, 0);
        store.spend_now("c", 20, 0);
        let inner = store.inner.lock().unwrap();
        assert!(inner.closing[&11].capacity() >= 125, "{}", inner.closing[&11].capacity());
        assert!(inner.closing[&20].capacity() < 100, "no second before it: grown as it fills");
        assert_eq!(inner.closing[&11], vec![store.hasher.hash_one("b")]);
    }

    #[test]
    fn expired_keys_are_dropped_as_time_passes() {
        let store = MemoryReplayStore::with_capacity(10);
        for i in 0..10 {
            store.spend_now(&format!("k{i}"), 100, 0);
        }
        store.spend_now("late", 500, 200);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn restored_keys_are_refused_as_replays() {
        let store = MemoryReplayStore::default();
        store.restore(&[SpentKey { key: signature_key("abc", "A"), until: 300 }], 10);
        assert_eq!(store.spend_now(&signature_key("abc", "A"), 300, 20), Spend::Replayed);
        assert_eq!(store.spend_now(&signature_key("abc", "B"), 300, 20), Spend::Fresh, "another action, another key");
        assert!(!signature_key("abc", "A").contains("abc"), "the signature itself is never kept");
        assert_eq!(signature_key("aBC", "A"), signature_key("abc", "A"), "a signature's hex verifies in either case");
        let long = "a".repeat(130);
        assert_eq!(signature_key(&long.to_ascii_uppercase(), "A"), signature_key(&long, "A"));
        assert_ne!(signature_key(&long, "A"), signature_key(&long[1..], "A"));
    }
}
