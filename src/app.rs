//! Assembly: from a checked [`Config`] to a running gateway, with the built-in simulator started in the
//! same process when an upstream uses it. `main.rs` and the integration tests both start crossgate here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::{Config, Endpoint};
use crate::layer::{self, audit::AuditSink};
use crate::mapping::Mappings;
use crate::provider::Upstream;
use crate::replay::MemoryNonceStore;
use crate::secret::Secret;
use crate::server::Bound;
use crate::sim;

/// A running server (gateway or simulator) that stops when asked or dropped.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Running {
    /// Serves `service` on a bound listener until stopped.
    pub fn spawn<S>(bound: Bound, service: S) -> Running
    where
        S: tower::Service<
                http::Request<hyper::body::Incoming>,
                Response = http::Response<crate::layer::ResBody>,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let addr = bound.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(service, async move {
            let _ = stopped.await;
        }));
        Running { addr, stop: Some(stop), task: Some(task) }
    }

    /// Stops accepting, lets open connections finish, and waits.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server ends (after a shutdown signal).
    pub async fn join(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A gateway, and the simulator it started, if any.
#[derive(Debug)]
pub struct Started {
    /// The gateway.
    pub gateway: Running,
    /// The in-process simulator.
    pub simulator: Option<(Running, sim::SimHandle)>,
}

/// Loads the mapping tables the config asks for.
pub fn mappings(config: &Config) -> Result<Mappings, String> {
    match &config.mappings {
        None => Mappings::embedded(),
        Some(dir) => Mappings::load_dir(dir),
    }
    .map_err(|e| e.to_string())
}

/// Starts the gateway described by `config` (and the simulator if an upstream uses it).
pub async fn start(config: Config, audit: Arc<dyn AuditSink>, clock: Arc<dyn Clock>) -> Result<Started, String> {
    let maps = Arc::new(mappings(&config)?);
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
    let mut upstreams = BTreeMap::new();
    for (name, up) in &config.upstreams {
        upstreams.insert(name.clone(), Arc::new(Upstream::new(up.clone(), sim_addr)?));
    }
    let tls = config.tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    let bound = Bound::bind(config.listen, tls).await?;
    let config = Arc::new(config);
    let service = layer::stack(layer::Parts {
        config,
        maps,
        upstreams,
        audit,
        nonces: Arc::new(MemoryNonceStore::default()),
        clock,
    });
    Ok(Started { gateway: Running::spawn(bound, service), simulator })
}
