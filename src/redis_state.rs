//! State shared by replicas on Redis (`[state] redis = "redis://..."`): the replay keys, so that a
//! request replayed to another replica is refused there too, and the upstreams' rate limits, so that
//! Lighthouse's 10 binds per second hold for all replicas together.
//!
//! A replay key is spent with one atomic `SET key 1 NX PXAT <window end>`: the first replica to set it
//! gets `OK`, every later one nothing, and Redis forgets the key when its window closes. A rate limit is
//! one atomic step per request, a Lua script ([`GCRA`]) over Redis's own clock: GCRA without burst, one
//! theoretical arrival time per key, expiring on its own. Keys are prefixed (`crossgate:` by default),
//! so one Redis can serve other uses.
//!
//! Redis is asked with a short deadline ([`DEADLINE`]): when it is down or slow, the answer is
//! [`Unavailable`] at once, never a hang. With `[state] on_unavailable = "refuse"` (the default) a bind or
//! unbind is then refused in the caller's dialect; with `"local"` the in-memory store answers instead, and
//! the log says so. The connection is made when first needed and made again after it is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::provider::{LocalGcra, RateLimiter, Reserving};
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
    /// Commands that found Redis unavailable (for the metrics).
    pub unavailable: AtomicU64,
    /// Replay keys and rate-limit turns kept in memory instead (`on_unavailable = "local"`).
    pub fallbacks: AtomicU64,
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
            unavailable: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
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
            .map_err(|_| self.lost("connecting to Redis took too long".to_owned()))?
            .map_err(|e| self.lost(format!("connecting to Redis: {}", redis_kind(&e))))?;
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = Some(made.clone());
        Ok(made)
    }

    /// Forgets the connection after a failure: the next command connects afresh.
    fn lost(&self, why: String) -> Unavailable {
        *self.connection.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.unavailable.fetch_add(1, Ordering::Relaxed);
        Unavailable(why)
    }

    /// Runs `cmd`, bounded by [`DEADLINE`].
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, Unavailable> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(DEADLINE, cmd.query_async::<T>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.lost(format!("Redis answered {}", redis_kind(&e)))),
            Err(_) => Err(self.lost(format!("Redis did not answer within {} ms", DEADLINE.as_millis()))),
        }
    }

    /// Runs `script` on `key` with `args`, bounded by [`DEADLINE`].
    async fn invoke(&self, script: &redis::Script, key: &str, args: &[i64]) -> Result<i64, Unavailable> {
        let mut c = self.connection().await?;
        let mut invocation = script.key(key);
        for a in args {
            invocation.arg(*a);
        }
        match tokio::time::timeout(DEADLINE, invocation.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.lost(format!("Redis answered {}", redis_kind(&e)))),
            Err(_) => Err(self.lost(format!("Redis did not answer within {} ms", DEADLINE.as_millis()))),
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
            match RedisReplayStore::spend_shared(shared.clone(), key.clone(), until).await {
                Ok(spend) => Ok(spend),
                Err(Unavailable(why)) => {
                    shared.fallbacks.fetch_add(1, Ordering::Relaxed);
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

/// The rate-limit step: `KEYS[1]` the key, `ARGV[1]` the interval and `ARGV[2]` the longest acceptable wait,
/// in microseconds; the wait before the reserved turn, or -1 (nothing reserved) when it would be longer.
pub const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return -1 end
local next = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000) + 1000)
return wait
";

/// Rate limits in Redis, shared by every replica.
#[derive(Debug, Clone)]
pub struct RedisGcra {
    state: Arc<RedisState>,
    script: Arc<redis::Script>,
}

impl RedisGcra {
    /// Rate limits in `state`'s Redis.
    pub fn new(state: Arc<RedisState>) -> RedisGcra {
        RedisGcra { state, script: Arc::new(redis::Script::new(GCRA)) }
    }

    async fn reserve_shared(
        self,
        key: String,
        per_second: u32,
        now: tokio::time::Instant,
        latest: tokio::time::Instant,
    ) -> Result<Option<tokio::time::Instant>, Unavailable> {
        let interval = 1_000_000 / i64::from(per_second.max(1));
        let longest = i64::try_from(latest.saturating_duration_since(now).as_micros()).unwrap_or(i64::MAX);
        let wait = self.state.invoke(&self.script, &self.state.key("rate", &key), &[interval, longest]).await?;
        Ok(u64::try_from(wait).ok().map(|us| now + Duration::from_micros(us)))
    }
}

impl RateLimiter for RedisGcra {
    fn reserve(
        &self,
        key: &str,
        per_second: u32,
        now: tokio::time::Instant,
        latest: tokio::time::Instant,
    ) -> Reserving {
        Box::pin(self.clone().reserve_shared(key.to_owned(), per_second, now, latest))
    }
}

/// Redis first; when it cannot be reached, the in-process limiter (`on_unavailable = "local"`).
#[derive(Debug, Clone)]
pub struct FallbackGcra {
    shared: RedisGcra,
    local: Arc<LocalGcra>,
}

impl FallbackGcra {
    /// Redis, falling back to `local`.
    pub fn new(shared: RedisGcra, local: Arc<LocalGcra>) -> FallbackGcra {
        FallbackGcra { shared, local }
    }
}

impl RateLimiter for FallbackGcra {
    fn reserve(
        &self,
        key: &str,
        per_second: u32,
        now: tokio::time::Instant,
        latest: tokio::time::Instant,
    ) -> Reserving {
        let (shared, local, key) = (self.shared.clone(), self.local.clone(), key.to_owned());
        Box::pin(async move {
            match shared.clone().reserve_shared(key.clone(), per_second, now, latest).await {
                Ok(turn) => Ok(turn),
                Err(Unavailable(why)) => {
                    shared.state.fallbacks.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %why, "Redis cannot be reached: this rate limit is kept in process only.");
                    Ok(local.reserve_now(&key, per_second, now, latest))
                }
            }
        })
    }
}
