//! Assembly: from a checked [`Config`] to a running gateway, with the built-in simulator started in the
//! same process when an upstream uses it. `main.rs` and the integration tests both start crossgate here.
//! Before it serves, the replay keys still within their windows are read back from the audit trail, so
//! that a request signed before a restart (or a crash) is not forwarded twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::task::TaskTracker;

use crate::admin::{Admin, OpenTrail};
use crate::audit::store;
use crate::clock::Clock;
use crate::config::{Config, Endpoint};
use crate::gateway::Gateway;
use crate::keybook::KeyBook;
use crate::layer::{self, audit::AuditSink};
use crate::mapping::Mappings;
use crate::metrics::{MeteredSink, Metrics};
use crate::provider::Upstream;
use crate::redis_state::RedisState;
use crate::replay::{MemoryReplayStore, ReplayStore};
use crate::secret::Secret;
use crate::server::{Bound, Drain, Running};
use crate::sim;

/// A gateway, and the simulator it started, if any.
#[derive(Debug)]
pub struct Started {
    /// The gateway.
    pub gateway: Running,
    /// The in-process simulator.
    pub simulator: Option<(Running, sim::SimHandle)>,
    /// The admin listener (`[admin]`), if configured.
    pub admin: Option<Running>,
    /// The gateway's metrics.
    pub metrics: Arc<Metrics>,
    /// The upstream clients.
    pub upstreams: crate::provider::Upstreams,
}

/// Loads the mapping tables the config asks for.
pub fn mappings(config: &Config) -> Result<Mappings, String> {
    match &config.mappings {
        None => Mappings::embedded(),
        Some(dir) => Mappings::load_dir(dir),
    }
    .map_err(|e| e.to_string())
}

/// The in-process simulator, when an upstream uses it.
pub type Simulator = Option<(Running, sim::SimHandle)>;

/// The upstream clients of `config`, with the in-process simulator started when an upstream uses it.
pub async fn upstreams(
    config: &Config,
    maps: &Arc<Mappings>,
    clock: &Arc<dyn Clock>,
    shared: Option<&Arc<RedisState>>,
) -> Result<(crate::provider::Upstreams, Simulator), String> {
    let simulator = if config.uses_simulator() {
        let state = match config.simulator.clone().flatten() {
            Some(path) => sim::seed::load(&path).map_err(|e| e.to_string())?,
            None => sim::seed::demo(),
        };
        let credentials: BTreeMap<String, Secret> = config
            .upstreams
            .values()
            .filter(|u| u.endpoint == Endpoint::Simulator)
            .map(|u| (u.secret_id.clone(), u.secret_key.clone()))
            .collect();
        let bound = Bound::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None).await?;
        let handle = sim::SimHandle::new(state, credentials, maps.clone(), clock.clone());
        Some((Running::spawn(bound, sim::service(handle.clone())), handle))
    } else {
        None
    };
    let sim_addr = simulator.as_ref().map(|(r, _)| r.addr);
    let limiter = shared.map(|state| shared_limiter(config, state));
    let mut upstreams = BTreeMap::new();
    for (name, up) in &config.upstreams {
        let mut upstream = Upstream::new(up.clone(), sim_addr)?;
        if let Some(limiter) = &limiter {
            upstream = upstream.with_rate_limiter(limiter.clone());
        }
        upstreams.insert(name.clone(), Arc::new(upstream));
    }
    Ok((upstreams, simulator))
}

/// The rate limiter every upstream shares with the other replicas on `state`'s Redis.
fn shared_limiter(config: &Config, state: &Arc<RedisState>) -> Arc<dyn crate::provider::RateLimiter> {
    use crate::redis_state::{FallbackGcra, RedisGcra};
    let shared = RedisGcra::new(state.clone());
    match config.state.as_ref().map(|s| s.on_unavailable) {
        Some(crate::config::OnUnavailable::Local) => {
            Arc::new(FallbackGcra::new(shared, Arc::new(crate::provider::LocalGcra::default())))
        }
        _ => Arc::new(shared),
    }
}

/// The Redis replicas share (`[state]`), if any: one per gateway, for the replay keys, the rate limits
/// and `/readyz`.
pub fn shared_state(config: &Config) -> Result<Option<Arc<RedisState>>, String> {
    config.state.as_ref().map(|s| RedisState::new(&s.redis, &s.prefix).map(Arc::new)).transpose()
}

/// The key table: with its state file, unless every upstream is the in-process simulator, whose clouds
/// (and so the names learned on them) live only as long as the process.
pub fn key_book(config: &Config) -> Result<KeyBook, String> {
    if config.upstreams.values().all(|u| u.endpoint == Endpoint::Simulator) {
        Ok(KeyBook::in_memory(config))
    } else {
        KeyBook::open(config)
    }
}

/// Starts the gateway described by `config` (and the simulator if an upstream uses it).
pub async fn start(config: Config, audit: Arc<dyn AuditSink>, clock: Arc<dyn Clock>) -> Result<Started, String> {
    let maps = Arc::new(mappings(&config)?);
    let shared = shared_state(&config)?;
    let (upstreams, simulator) = upstreams(&config, &maps, &clock, shared.as_ref()).await?;
    let tls = config.tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    check_permissions(&config, &maps)?;
    let book = Arc::new(key_book(&config)?);
    let metrics = Arc::new(Metrics::new(upstreams.clone(), shared.clone(), &maps));
    let audit: Arc<dyn AuditSink> = Arc::new(MeteredSink::new(audit, metrics.clone()));
    let replay = replay_store(&config, shared.as_ref());
    let now = clock.now_unix();
    let spent = audit.spent_keys(now);
    if !spent.is_empty() {
        tracing::info!(keys = spent.len(), "Replay keys still in their windows restored from the audit trail.");
    }
    replay.restore(&spent, now);
    let bound = Bound::bind(config.listen, tls).await?;
    let admin = match &config.admin {
        None => None,
        Some(admin) => {
            let bound = Bound::bind(admin.listen, tls).await.map_err(|e| format!("[admin] {e}"))?;
            let (spec, options) = (config.audit.store.clone(), config.audit.options);
            let trail: OpenTrail = Arc::new(move || store::trail(&spec, options));
            let admin = Admin { metrics: metrics.clone(), trail, token: admin.token.clone() };
            Some(Running::spawn(bound, tower::service_fn(move |req| admin.clone().handle(req))))
        }
    };
    let inbound = config.inbound;
    let config = Arc::new(config);
    let tasks = TaskTracker::new();
    let drain = Drain { tasks: tasks.clone(), audit: audit.clone() };
    let ready = readiness(shared.as_ref(), &audit);
    let front = layer::Front {
        maps: maps.clone(),
        callers: config.callers.clone(),
        replay,
        replay_policy: config.replay.clone(),
        clock: clock.clone(),
        audit,
        on_audit_failure: config.audit.on_failure,
        tasks,
        max_body_bytes: config.max_body_bytes,
        max_in_flight: config.inbound.max_in_flight,
        request_timeout: config.request_timeout,
        ready,
    };
    let kept_upstreams = upstreams.clone();
    let service = layer::pipeline(front, Gateway::new(config, book, maps, upstreams, clock));
    Ok(Started {
        gateway: Running::spawn_with(bound, service, inbound, Some(drain)),
        simulator,
        admin,
        metrics,
        upstreams: kept_upstreams,
    })
}

/// What `/readyz` checks: the audit store, and the shared Redis when there is one.
fn readiness(shared: Option<&Arc<RedisState>>, audit: &Arc<dyn AuditSink>) -> layer::ready::ReadyLayer {
    use layer::ready::ReadyCheck;
    let sink = audit.clone();
    let audit_check: ReadyCheck = Arc::new(move || {
        let sink = sink.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || sink.ready()).await.unwrap_or_else(|e| Err(e.to_string()))
        })
    });
    let mut checks = vec![("audit store".to_owned(), audit_check)];
    if let Some(redis) = shared {
        let redis = redis.clone();
        let redis_check: ReadyCheck = Arc::new(move || {
            let redis = redis.clone();
            Box::pin(async move { redis.ping().await.map_err(|e| e.0) })
        });
        checks.push(("redis".to_owned(), redis_check));
    }
    layer::ready::ReadyLayer::new(checks)
}

/// The replay store: in memory, or shared on Redis (`[state]`), falling back to memory when asked to.
fn replay_store(config: &Config, shared: Option<&Arc<RedisState>>) -> Arc<dyn ReplayStore> {
    let local = Arc::new(MemoryReplayStore::with_capacity(config.replay.capacity));
    let Some(redis) = shared else { return local };
    let store = crate::redis_state::RedisReplayStore::new(redis.clone());
    match config.state.as_ref().map(|s| s.on_unavailable) {
        Some(crate::config::OnUnavailable::Local) => {
            Arc::new(crate::redis_state::FallbackReplayStore::new(store, local))
        }
        _ => Arc::new(store),
    }
}

/// Every `allow_actions` name must be an action: a wire name of some dialect or a canonical name, so
/// that a typo is caught at start rather than refusing every request.
fn check_permissions(config: &Config, maps: &Mappings) -> Result<(), String> {
    use crate::dialect::Dialect;
    use crate::model::Action;
    for caller in &config.callers {
        for name in caller.permissions.actions.iter().flatten() {
            let known =
                Action::from_name(name).is_some() || Dialect::ALL.iter().any(|d| maps.action(*d, name).is_some());
            if !known {
                return Err(format!(
                    "caller `{}`: allow_actions names `{name}`, which is no action; use a wire name such as \
                     AttachKeyPair or AssociateInstancesKeyPairs, or a canonical one: {}",
                    caller.name,
                    Action::ALL.map(Action::name).join(", ")
                ));
            }
        }
    }
    Ok(())
}
