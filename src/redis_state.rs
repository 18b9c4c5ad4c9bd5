//! State shared by replicas on Redis (`[state] redis = "redis://..."`): the replay keys, so that a
//! request replayed to another replica is refused there too.
//!
//! A replay key is spent with one atomic `SET key 1 NX PXAT <window end>`: the first replica to set it
//! gets `OK`, every later one nothing, and Redis forgets the key when its window closes. Keys are
//! prefixed (`crossgate:replay:` by default), so one Redis can serve other uses.
//!
//! Redis is asked with a short deadline ([`DEADLINE`]): when it is down or slow, the answer is
//! [`Unavailable`] at once, never a hang. With `[state] on_unavailable = "refuse"` (the default) a bind or
//! unbind is then refused in the caller's dialect; with `"local"` the in-memory store answers instead, and
//! the log says so. The connection is made when first needed and made again after it is lost.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::replay::{MemoryReplayStore, ReplayStore, Spend, Spending, Unavailable};
use crate::secret::Secret;

/// How long one Redis command may take before the store is taken as unavailable.
pub const DEADLINE: Duration = Duration::from_millis(500);

/// A Redis server, connected on demand.
pub struct RedisState {
    client: redis::Client,
    connection: RwLock<Option<ConnectionManager>>,
    connecting: tokio::sync::Mutex<()>,
    prefix: String,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RedisState {
    /// A Redis at `url` (checked now, connected when first needed); keys start with `prefix`.
    pub fn new(url: &Secret, prefix: &str) -> Result<RedisState, String> {
        let client = redis::Client::open(url.expose())
            .map_err(|e| format!("the Redis URL cannot be read ({}); write redis://HOST:PORT[/DB]", redis_kind(&e)))?;
        Ok(RedisState {
            client,
            connection: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            prefix: prefix.to_owned(),
        })
    }

    /// The connection, made if there is none.
    async fn connection(&self) -> Result<ConnectionManager, Unavailable> {
        if let Some(c) = self.connection.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(c);
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = self.connection.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let made = tokio::time::timeout(DEADLINE * 2, ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .map_err(|_| Unavailable("connecting to Redis took too long".to_owned()))?
            .map_err(|e| Unavailable(format!("connecting to Redis: {}", redis_kind(&e))))?;
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(made.clone());
        Ok(made)
    }

    /// Runs `cmd`, bounded by [`DEADLINE`].
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Unavailable> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(DEADLINE, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unavailable(format!("Redis answered {}", redis_kind(&e)))),
            Err(_) => Err(Unavailable(format!("Redis did not answer within {} ms", DEADLINE.as_millis()))),
        }
    }

    /// True when Redis answers a PING now.
    pub async fn ping(&self) -> Result<(), Unavailable> {
        self.query::<String>(&redis::cmd("PING")).await.map(|_| ())
    }

    fn key(&self, kind: &str, key: &str) -> String {
        format!("{}{kind}:{key}", self.prefix)
    }
}

/// Replay keys in Redis.
#[derive(Debug, Clone)]
pub struct RedisReplayStore {
    state: Arc<RedisState>,
}

impl RedisReplayStore {
    /// Replay keys in `state`'s Redis.
    pub fn new(state: Arc<RedisState>) -> RedisReplayStore {
        RedisReplayStore { state }
    }

    async fn spend_shared(state: Arc<RedisState>, key: String, until: i64) -> Result<Spend, Unavailable> {
        let mut cmd = redis::cmd("SET");
        let until_ms = until.saturating_mul(1000).max(1);
        cmd.arg(state.key("replay", &key)).arg(1).arg("NX").arg("PXAT").arg(until_ms);
        let set: Option<String> = state.query(&cmd).await?;
        Ok(if set.is_some() { Spend::Fresh } else { Spend::Replayed })
    }
}

impl ReplayStore for RedisReplayStore {
    fn spend(&self, key: &str, until: i64, _now: i64) -> Spending<'static> {
        Spending::Pending(Box::pin(RedisReplayStore::spend_shared(self.state.clone(), key.to_owned(), until)))
    }
}

/// Redis first; when it cannot be reached, the in-memory store (`on_unavailable = "local"`).
#[derive(Debug, Clone)]
pub struct FallbackReplayStore {
    shared: RedisReplayStore,
    local: Arc<MemoryReplayStore>,
}

impl FallbackReplayStore {
    /// Redis, falling back to `local`.
    pub fn new(shared: RedisReplayStore, local: Arc<MemoryReplayStore>) -> FallbackReplayStore {
        FallbackReplayStore { shared, local }
    }
}

impl ReplayStore for FallbackReplayStore {
    fn spend(&self, key: &str, until: i64, now: i64) -> Spending<'static> {
        let (shared, local, key) = (self.shared.state.clone(), self.local.clone(), key.to_owned());
        Spending::Pending(Box::pin(async move {
            match RedisReplayStore::spend_shared(shared, key.clone(), until).await {
                Ok(spend) => Ok(spend),
                Err(Unavailable(why)) => {
                    tracing::warn!(error = %why, "Redis cannot be reached: this replay key is kept in memory only.");
                    Ok(local.spend_now(&key, until, now))
                }
            }
        }))
    }

    fn restore(&self, keys: &[crate::audit::SpentKey], now: i64) {
        self.local.restore(keys, now);
    }
}

/// A Redis error's kind, without its detail (which may echo the URL).
fn redis_kind(e: &redis::RedisError) -> String {
    format!("{:?}", e.kind())
}
