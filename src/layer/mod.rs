//! The request path, one layer per cross-cutting concern. [`stack`] assembles it; each line says why the
//! layer sits where it does. The request's own work is [`crate::gateway`], innermost.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use tower::{Service, ServiceBuilder};

use crate::clock::Clock;
use crate::config::Config;
use crate::gateway::Gateway;
use crate::mapping::Mappings;
use crate::provider::Upstreams;
use crate::replay::NonceStore;

pub mod audit;
pub mod auth;
pub mod body;
pub mod respond;

/// What the stack is built from.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The checked configuration.
    pub config: Arc<Config>,
    /// The mapping tables.
    pub maps: Arc<Mappings>,
    /// The upstreams, ready to call.
    pub upstreams: Upstreams,
    /// Where audit lines go.
    pub audit: Arc<dyn audit::AuditSink>,
    /// The nonce store.
    pub nonces: Arc<dyn NonceStore>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// The gateway's request path, from a buffered-or-not request to a response that always exists.
pub fn stack<B>(
    parts: Parts,
) -> impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send> + Clone + Send
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Parts { config, maps, upstreams, audit, nonces, clock } = parts;
    ServiceBuilder::new()
        // Outermost: sees every request, even ones refused below, and writes one line per request.
        .layer(audit::AuditLayer::new(audit, clock.clone()))
        // The body becomes Bytes once, up to the limit; raw bytes are kept for signature checks.
        .layer(body::BufferLayer::new(config.max_body_bytes))
        // Tells the dialect and renders every outcome and fault in it; bounds the request in time.
        .layer(respond::RespondLayer::new(maps.clone(), config.request_timeout))
        // Verifies the signature, the time window and the nonce; decodes the operation once.
        .layer(auth::AuthLayer::new(&config.callers, nonces, clock.clone(), maps.clone()))
        .service(Gateway::new(config, maps, upstreams, clock))
}
