//! Upstreams: where each configured upstream lives, and the only network code that talks to them.
//!
//! Building a request and reading a reply are pure and live in the dialect codecs
//! (`encode_request` / `decode_response`). Around them, one small module per concern:
//!
//! - `transport`: one HTTP exchange over a pooled keep-alive client, bounded by the connect timeout, the
//!   read timeout and the call's deadline, saying how far it got when it fails;
//! - `reply`: a reply that is not the upstream's protocol becomes an internal error naming its status;
//! - `retry`: which failures may be tried again (never a change whose bytes went out), and the backoff;
//! - `breaker`: the circuit breaker that fails calls at once while an upstream is failing;
//! - `quota`: the provider's own rate limits, queued on crossgate's side;
//! - `call`: one call as attempts through all of the above, each recorded;
//! - `paging`: key look-ups read every page.
//!
//! [`Upstream::call`] is the whole of it for the gateway; [`Upstream::call_recorded`] also returns every
//! attempt, for the audit log.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::config::{Endpoint, UpstreamConfig};
use crate::dialect::{Dialect, WireRequest};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Operation, Outcome};
use crate::sign::Scheme;

mod breaker;
mod call;
mod paging;
mod pool;
mod quota;
mod reply;
mod retry;
mod transport;

pub use breaker::{Breaker, BreakerState, Refusal, Ticket};
pub use paging::MAX_PAGES;
pub use quota::{LocalGcra, Quota, RateLimiter, Reserving};
pub use retry::{Attempt, Ending};
pub use transport::RawReply;

/// One configured upstream, ready to call.
#[derive(Debug)]
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
    /// `host[:port]`, the Host header and the signed host.
    authority: String,
    connections: Arc<pool::Pool>,
    breaker: Breaker,
    quota: Quota,
}

/// A call and every attempt it took.
#[derive(Debug)]
pub struct Call {
    /// What the caller gets.
    pub result: Result<Outcome, Fault>,
    /// Every attempt, in order (a look-up read page by page has attempts for each page).
    pub attempts: Vec<Attempt>,
}

impl Upstream {
    /// Prepares an upstream; `simulator` is the in-process simulator's address, for `endpoint = "sim"`.
    /// Its rate limits are kept in process ([`LocalGcra`]).
    pub fn new(config: UpstreamConfig, simulator: Option<std::net::SocketAddr>) -> Result<Upstream, String> {
        let (tls, authority) = match &config.endpoint {
            Endpoint::Url { tls, authority } => (*tls, authority.clone()),
            Endpoint::Simulator => {
                let addr = simulator
                    .ok_or_else(|| format!("upstream `{}` uses the simulator, which is not running", config.name))?;
                (false, addr.to_string())
            }
        };
        let scheme = if tls { "https" } else { "http" };
        let origin = format!("{scheme}://{authority}")
            .parse()
            .map_err(|e| format!("upstream `{}`: `{authority}` is no address: {e}", config.name))?;
        let connections =
            transport::pool(origin, config.ca_file.as_deref(), config.idle_connections, config.max_connections)?;
        let breaker = Breaker::new(config.breaker_failures, config.breaker_cool_down);
        let quota = Quota::new(&config.name, config.queue, Arc::new(LocalGcra::default()));
        Ok(Upstream { config, authority, connections, breaker, quota })
    }

    /// The same upstream taking its turns from `limiter` (one shared by several gateways, say).
    pub fn with_rate_limiter(mut self, limiter: Arc<dyn RateLimiter>) -> Upstream {
        self.quota = Quota::new(&self.config.name, self.config.queue, limiter);
        self
    }

    /// The dialect this upstream speaks.
    pub fn dialect(&self) -> Dialect {
        Dialect::of_provider(self.config.provider)
    }

    /// The circuit breaker's state now.
    pub fn breaker_state(&self) -> BreakerState {
        self.breaker.state(Instant::now())
    }

    /// The quotas: callers waiting for a turn, and callers refused.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Encodes, signs, sends and decodes one operation, within the upstream's `timeout_ms`.
    pub async fn call(&self, op: &Operation, maps: &Mappings, clock: &dyn Clock) -> Result<Outcome, Fault> {
        self.call_recorded(op, maps, clock, None).await.result
    }

    /// [`Upstream::call`], ending by `deadline` too when one is given (the caller's own), and with every
    /// attempt it took. A key look-up with no page of its own reads every page.
    pub async fn call_recorded(
        &self,
        op: &Operation,
        maps: &Mappings,
        clock: &dyn Clock,
        deadline: Option<Instant>,
    ) -> Call {
        let own = Instant::now() + self.config.timeout;
        let deadline = deadline.map_or(own, |d| d.min(own));
        let mut attempts = Vec::new();
        let result = if op.action == Action::DescribeKeys && op.page.is_none() {
            self.every_page(op, maps, clock, deadline, &mut attempts).await
        } else {
            self.attempts(op, maps, clock, deadline, &mut attempts).await.map(|answered| answered.outcome)
        };
        Call { result, attempts }
    }

    /// An upstream that refuses crossgate's own signature, credential or clock is the gateway's problem,
    /// not the caller's: the caller's request was fine. It becomes an internal fault that says so, the
    /// upstream's answer kept for the audit log.
    fn own_credentials_refused(&self, fault: Fault) -> Fault {
        const OURS: &[Code] = &[
            Code::SignatureMismatch,
            Code::MalformedSignature,
            Code::UnknownCredential,
            Code::TimestampExpired,
            Code::NonceReused,
        ];
        if !OURS.contains(&fault.code()) {
            return fault;
        }
        let said = fault.upstream_error().cloned();
        let code = said.as_ref().map_or("", |s| s.code.as_str()).to_owned();
        tracing::error!(upstream = %self.config.name, %code, "The upstream refused crossgate's credentials.");
        Fault::upstream(
            Code::Internal,
            format!("The upstream `{}` refused the gateway's credentials ({code}).", self.config.name),
            said,
        )
    }

    /// The request as it goes over a connection to the upstream: origin-form target, `Host` header.
    fn http_request(&self, wire: WireRequest) -> Result<Request<Full<Bytes>>, Fault> {
        let target = if wire.query.is_empty() { wire.path.to_owned() } else { format!("{}?{}", wire.path, wire.query) };
        // Built in place: a request builder is moved (some 200 bytes) at every header it adds.
        let mut request = Request::new(Full::new(Bytes::from(wire.body)));
        *request.method_mut() = http::Method::from_bytes(wire.method.as_bytes()).map_err(cannot_build)?;
        *request.uri_mut() = http::Uri::try_from(target).map_err(cannot_build)?;
        let headers = request.headers_mut();
        headers.reserve(wire.headers.len() + 1);
        let mut has_host = false;
        for (name, value) in wire.headers {
            has_host |= name.eq_ignore_ascii_case("host");
            // The value's bytes become the header's own, not a copy.
            let mut v = http::HeaderValue::try_from(value).map_err(cannot_build)?;
            v.set_sensitive(name.eq_ignore_ascii_case("authorization"));
            headers.append(header_name(name).map_err(cannot_build)?, v);
        }
        if !has_host {
            headers.insert(http::header::HOST, http::HeaderValue::try_from(wire.host).map_err(cannot_build)?);
        }
        Ok(request)
    }
}

/// The header names this thread's upstream requests used so far, at most this many.
const KEPT_NAMES: usize = 32;

thread_local! {
    static HEADER_NAMES: std::cell::RefCell<Vec<http::HeaderName>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `name` as a header name, parsed once per thread: the upstream requests carry the same few names
/// (`X-TC-Action`, `x-acs-date`, ...) every time, and parsing a name that is not a standard one allocates.
fn header_name(name: &str) -> Result<http::HeaderName, http::header::InvalidHeaderName> {
    HEADER_NAMES.with_borrow_mut(|names| {
        if let Some(known) = names.iter().find(|n| n.as_str().eq_ignore_ascii_case(name)) {
            return Ok(known.clone());
        }
        let parsed = http::HeaderName::from_bytes(name.as_bytes())?;
        if names.len() < KEPT_NAMES {
            names.push(parsed.clone());
        }
        Ok(parsed)
    })
}

fn cannot_build(e: impl std::fmt::Display) -> Fault {
    Fault::gateway(Code::Internal, format!("The upstream request could not be built: {e}."))
}

/// Every configured upstream by name.
pub type Upstreams = BTreeMap<String, Arc<Upstream>>;

/// A fresh nonce in the form the scheme expects (Tencent v1: a positive integer).
fn nonce(scheme: Scheme) -> String {
    let id = uuid::Uuid::new_v4();
    match scheme {
        Scheme::TencentV1Sha1 | Scheme::TencentV1Sha256 => {
            (u64::from_le_bytes(id.as_bytes()[..8].try_into().unwrap_or([1; 8])) % 1_000_000_000 + 1).to_string()
        }
        _ => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_parsed_once_and_found_in_any_case() {
        let first = header_name("X-TC-Action").unwrap();
        assert_eq!(first.as_str(), "x-tc-action");
        assert_eq!(header_name("x-tc-action").unwrap(), first);
        assert_eq!(header_name("Host").unwrap(), http::header::HOST);
        assert!(header_name("bad name").is_err(), "an invalid name is refused, not kept");
        for i in 0..(KEPT_NAMES + 8) {
            assert_eq!(header_name(&format!("x-name-{i}")).unwrap().as_str(), format!("x-name-{i}"));
        }
        assert!(HEADER_NAMES.with_borrow(Vec::len) <= KEPT_NAMES);
    }
}
