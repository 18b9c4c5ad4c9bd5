//! The simulator over HTTP: the same request path as the gateway (buffer, detect, respond, authenticate
//! against the simulator's own credentials) with the cloud's state as the innermost service, so each
//! provider answers in its own dialect exactly as the codecs define it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use tokio_util::task::TaskTracker;
use tower::Service;

use super::state::CloudState;
use crate::clock::Clock;
use crate::config::{CallerConfig, OnAuditFailure, Permissions, ReplayConfig, Tc3Replay};
use crate::dialect::Reply;
use crate::layer::audit::{AuditEntry, MemorySink};
use crate::layer::{self, BoxError, Front, ResBody};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Operation, Outcome};
use crate::replay::MemoryReplayStore;
use crate::secret::Secret;
use crate::server::{Bound, Running};

/// The largest request the simulator reads.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The simulator answers from memory; this only bounds a pathological request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests answered at once at most.
const MAX_IN_FLIGHT: usize = 4096;

/// The credential id the standalone simulator accepts by default.
pub const SIM_CREDENTIAL_ID: &str = "AKIDcrossgateSIMULATOR00000000000";
/// The secret of [`SIM_CREDENTIAL_ID`] (it guards only simulated clouds).
pub const SIM_CREDENTIAL_SECRET: &str = "crossgate-simulator-secret";

/// The simulator's shared state: clouds, accepted credentials, and every request it has seen.
#[derive(Debug, Clone)]
pub struct SimHandle {
    state: Arc<Mutex<CloudState>>,
    credentials: Arc<BTreeMap<String, Secret>>,
    maps: Arc<Mappings>,
    clock: Arc<dyn Clock>,
    seen: Arc<MemorySink>,
}

impl SimHandle {
    /// A simulator over `state`, accepting requests signed with `credentials`.
    pub fn new(
        state: CloudState,
        credentials: BTreeMap<String, Secret>,
        maps: Arc<Mappings>,
        clock: Arc<dyn Clock>,
    ) -> SimHandle {
        SimHandle {
            state: Arc::new(Mutex::new(state)),
            credentials: Arc::new(credentials),
            maps,
            clock,
            seen: Arc::new(MemorySink::default()),
        }
    }

    /// Reads (or changes) the clouds' state.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut CloudState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Every request the simulator has answered, oldest first.
    pub fn seen(&self) -> Vec<AuditEntry> {
        self.seen.finals()
    }
}

/// The simulator's HTTP service: the gateway's request path around the clouds.
pub fn service<B>(
    handle: SimHandle,
) -> impl Service<Request<B>, Response = Response<ResBody>, Error = Infallible, Future: Send> + Clone + Send
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let callers: Vec<CallerConfig> = handle
        .credentials
        .iter()
        .map(|(id, secret)| CallerConfig {
            name: format!("sim:{id}"),
            secret_id: id.clone(),
            secret_key: secret.clone(),
            permissions: Permissions::default(),
        })
        .collect();
    // As the clouds themselves: a TC3 signature may be presented again within its window, and a body
    // left unsigned is accepted.
    let replay_policy =
        ReplayConfig { tc3: Tc3Replay::Window, accept_unsigned_payload: true, ..ReplayConfig::default() };
    let front = Front {
        maps: handle.maps.clone(),
        callers,
        replay: Arc::new(MemoryReplayStore::default()),
        replay_policy,
        clock: handle.clock.clone(),
        audit: handle.seen.clone(),
        on_audit_failure: OnAuditFailure::Forward,
        tasks: TaskTracker::new(),
        max_body_bytes: MAX_BODY_BYTES,
        max_in_flight: MAX_IN_FLIGHT,
        request_timeout: REQUEST_TIMEOUT,
        ready: layer::ready::ReadyLayer::default(),
    };
    layer::pipeline(front, Cloud { handle })
}

/// The innermost service: applies an authenticated operation to the clouds' state.
#[derive(Debug, Clone)]
struct Cloud {
    handle: SimHandle,
}

impl Service<Request<Bytes>> for Cloud {
    type Response = Outcome;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<Outcome, Fault>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let ext = req.extensions();
        let result = match (ext.get::<Reply>(), ext.get::<Operation>()) {
            (Some(reply), Some(op)) => {
                let now = self.handle.clock.now_ms();
                let provider = reply.dialect.provider();
                self.handle.with_state(|s| s.apply(provider, op, &reply.request_id, now))
            }
            _ => Err(Fault::gateway(Code::Internal, "The simulator received an undecoded request.")),
        };
        Box::pin(std::future::ready(result))
    }
}

/// Runs the simulator alone (`crossgate sim`), accepting [`SIM_CREDENTIAL_ID`].
pub async fn run_standalone(listen: SocketAddr, seed: Option<&Path>, clock: Arc<dyn Clock>) -> Result<Running, String> {
    let state = match seed {
        Some(path) => super::seed::load(path).map_err(|e| e.to_string())?,
        None => super::seed::demo(),
    };
    let maps = Arc::new(Mappings::embedded().map_err(|e| e.to_string())?);
    let credentials = BTreeMap::from([(SIM_CREDENTIAL_ID.to_owned(), Secret::new(SIM_CREDENTIAL_SECRET))]);
    let handle = SimHandle::new(state, credentials, maps, clock);
    let bound = Bound::bind(listen, None).await?;
    println!(
        "crossgate simulator: sign with SecretId/AccessKeyId {SIM_CREDENTIAL_ID} and secret {SIM_CREDENTIAL_SECRET}"
    );
    Ok(Running::spawn(bound, service(handle)))
}
