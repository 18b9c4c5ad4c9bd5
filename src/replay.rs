//! The nonce cache against replay: a small interface with an in-memory default, so replicas can later
//! share one store (Redis, PostgreSQL) without touching the authentication layer.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;

/// Remembers `(credential, nonce)` pairs until their time window closes.
pub trait NonceStore: Send + Sync + Debug {
    /// Records the pair and returns true if it was not seen before (and not yet expired).
    /// `expires_at` and `now` are Unix seconds.
    fn first_use(&self, credential: &str, nonce: &str, expires_at: i64, now: i64) -> bool;
}

/// An in-process nonce store, pruned as it goes.
#[derive(Debug, Default)]
pub struct MemoryNonceStore {
    seen: Mutex<HashMap<(String, String), i64>>,
}

/// Prune expired entries when the map grows past this many since the last prune.
const PRUNE_EVERY: usize = 4096;

impl NonceStore for MemoryNonceStore {
    fn first_use(&self, credential: &str, nonce: &str, expires_at: i64, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if seen.len() >= PRUNE_EVERY && seen.len() % PRUNE_EVERY == 0 {
            seen.retain(|_, exp| *exp >= now);
        }
        let key = (credential.to_owned(), nonce.to_owned());
        match seen.get(&key) {
            Some(exp) if *exp >= now => false,
            _ => {
                seen.insert(key, expires_at);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_within_its_window() {
        let store = MemoryNonceStore::default();
        assert!(store.first_use("id", "n1", 100, 0));
        assert!(!store.first_use("id", "n1", 100, 50));
        assert!(store.first_use("other", "n1", 100, 50), "nonces are per credential");
        assert!(store.first_use("id", "n1", 300, 101), "an expired entry no longer blocks");
    }
}
