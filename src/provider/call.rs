//! One call to an upstream: attempts, each through the quota and the circuit breaker, each freshly signed
//! (a new timestamp and nonce), tried again as [`retry`](super::retry) allows and never past the
//! deadline. Every attempt is recorded.

use tokio::time::Instant;

use super::breaker::{Refusal, Ticket};
use super::reply::{self, Reading};
use super::retry::{self, Attempt, Ending};
use super::transport::{self, Failure, Stage};
use super::{Upstream, nonce};
use crate::clock::Clock;
use crate::dialect::{self, UpstreamCtx};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Operation, Outcome};

/// A successful attempt: the outcome, and for a page of a look-up, how many entries match in all.
#[derive(Debug)]
pub(crate) struct Answered {
    pub(crate) outcome: Outcome,
    pub(crate) total: Option<usize>,
}

/// How one attempt ended.
struct Tried {
    result: Result<Answered, Fault>,
    ending: Ending,
    status: Option<u16>,
    /// The canonical kind of the failure as it happened, before crossgate's own reading of the upstream's
    /// answer (an upstream refusing crossgate's credentials is still the upstream's answer).
    said: Option<Code>,
}

impl Tried {
    fn failed(fault: Fault, ending: Ending, status: Option<u16>) -> Tried {
        Tried { said: Some(fault.code()), result: Err(fault), ending, status }
    }
}

impl Upstream {
    /// Sends `op` until it succeeds, fails for good, runs out of retries or reaches `deadline`.
    pub(crate) async fn attempts(
        &self,
        op: &Operation,
        maps: &Mappings,
        clock: &dyn Clock,
        deadline: Instant,
        log: &mut Vec<Attempt>,
    ) -> Result<Answered, Fault> {
        let rate = rate(maps, self, op.action);
        let mut number = 1;
        loop {
            let started = Instant::now();
            // The breaker first, so that no caller waits for a turn to an upstream that is failing.
            let tried = match self.breaker.admit(started) {
                Err(refusal) => self.breaker_open(refusal),
                Ok(ticket) => match self.quota.admit(op.action, rate, deadline).await {
                    Err(fault) => Tried::failed(fault, Ending::QuotaRefused, None),
                    Ok(()) => self.attempt(ticket, op, maps, clock, deadline).await,
                },
            };
            log.push(Attempt {
                upstream: self.config.name.clone(),
                action: op.action,
                number,
                ending: tried.ending,
                status: tried.status,
                fault: tried.result.as_ref().err().map(Fault::code),
                elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            });
            let again = number <= self.config.retries && retry::may_retry(op.action, tried.ending, tried.said);
            if !again {
                return tried.result;
            }
            let wait = retry::delay(number, retry::unit());
            if Instant::now() + wait >= deadline {
                return tried.result;
            }
            tracing::info!(
                upstream = %self.config.name,
                attempt = number,
                kind = tried.said.map_or("", Code::name),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "Trying the upstream again."
            );
            tokio::time::sleep(wait).await;
            number += 1;
        }
    }

    /// A call the open breaker refuses: failed at once, nothing sent.
    fn breaker_open(&self, refusal: Refusal) -> Tried {
        let when = if refusal.retry_in.is_zero() {
            "until the call probing it succeeds".to_owned()
        } else {
            format!("for another {} ms", refusal.retry_in.as_millis())
        };
        let fault = Fault::upstream(
            Code::UpstreamUnavailable,
            format!(
                "The upstream `{}` is failing ({} failures in a row); crossgate does not call it {when}.",
                self.config.name, refusal.failures
            ),
            None,
        );
        Tried::failed(fault, Ending::BreakerOpen, None)
    }

    /// One attempt the breaker let through: sign, send, read.
    async fn attempt(
        &self,
        ticket: Ticket<'_>,
        op: &Operation,
        maps: &Mappings,
        clock: &dyn Clock,
        deadline: Instant,
    ) -> Tried {
        let ctx = UpstreamCtx {
            host: self.authority.clone(),
            region: self.config.region.clone(),
            credential_id: self.config.secret_id.clone(),
            scheme: self.config.scheme,
            timestamp: clock.now_unix(),
            nonce: nonce(self.config.scheme),
        };
        let request = dialect::encode_request(self.dialect(), op, &ctx, &self.config.secret_key, maps)
            .and_then(|wire| self.http_request(wire));
        let request = match request {
            Ok(request) => request,
            // Nothing was sent: the breaker learns nothing (a probe's place is freed as the ticket drops).
            Err(fault) => return Tried::failed(fault, Ending::Unsendable, None),
        };
        let limits =
            transport::Limits { connect: self.config.connect_timeout, read: self.config.read_timeout, deadline };
        match transport::exchange(&self.connections, request, limits).await {
            Err(failure) => {
                ticket.report(false, Instant::now());
                let ending = if failure.stage == Stage::Connect { Ending::NotConnected } else { Ending::Lost };
                Tried::failed(self.transport_fault(&failure), ending, failure.status())
            }
            Ok(raw) => {
                ticket.report(raw.status < 500, Instant::now());
                let status = Some(raw.status);
                match reply::read(&self.config.name, self.dialect(), &raw, op, maps) {
                    Reading::Garbage(fault) => Tried::failed(fault, Ending::Lost, status),
                    Reading::Answer(Err(fault)) => Tried {
                        said: Some(fault.code()),
                        result: Err(self.own_credentials_refused(fault)),
                        ending: Ending::Answered,
                        status,
                    },
                    Reading::Answer(Ok(outcome)) => {
                        let total = op.page.and_then(|_| dialect::total_count(self.dialect(), &raw.headers, &raw.body));
                        Tried { said: None, result: Ok(Answered { outcome, total }), ending: Ending::Answered, status }
                    }
                }
            }
        }
    }

    /// What a failed exchange means for the caller: unreachable before a connection, a timeout or a
    /// closed connection before the reply's head, an internal error (naming the status) when the reply
    /// broke off.
    fn transport_fault(&self, failure: &Failure) -> Fault {
        let name = &self.config.name;
        let why = &failure.why;
        let (code, message) = match (failure.stage, failure.timed_out) {
            (Stage::Connect, _) => {
                (Code::UpstreamUnavailable, format!("The upstream `{name}` could not be reached: {why}."))
            }
            (Stage::Head, true) => (Code::UpstreamTimeout, format!("The upstream `{name}` did not answer: {why}.")),
            (Stage::Head, false) => (
                Code::UpstreamUnavailable,
                format!("The upstream `{name}` closed the connection without answering: {why}."),
            ),
            (Stage::Body(status), true) => {
                (Code::UpstreamTimeout, format!("The upstream `{name}` answered HTTP {status}, then {why}."))
            }
            (Stage::Body(status), false) => {
                (Code::Internal, format!("The upstream `{name}` answered HTTP {status}, then {why}."))
            }
        };
        Fault::upstream(code, message, None)
    }
}

/// The provider's own rate for `action`, from the mapping tables: binds at `requests_per_second`, unbinds
/// at `disassociate_requests_per_second` (else the same); look-ups and policy steps have none.
fn rate(maps: &Mappings, upstream: &Upstream, action: Action) -> Option<u32> {
    let limits = maps.limits(upstream.dialect());
    match action {
        Action::AssociateKeys => limits.requests_per_second,
        Action::DisassociateKeys => limits.disassociate_requests_per_second.or(limits.requests_per_second),
        // Look-ups, and the steps crossgate takes itself, whose providers document no rate.
        _ => None,
    }
}
