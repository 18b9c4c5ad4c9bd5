//! Authentication: who is calling, proven by their signature, fresh in time and never replayed.
//!
//! The decision is [`authenticate`], a plain function over one buffered request and a clock reading.
//! It reads the signature material with the caller's codec, looks the credential up, verifies the
//! signature in constant time over the bytes as received (the Host header included), checks the time
//! window (per dialect, from the tables or `[replay] windows`), refuses a TC3 body the signature does not
//! cover (`UNSIGNED-PAYLOAD`, unless accepted by `[replay]`), spends the request's replay key (its nonce,
//! or for TC3, which has none, its signature's digest, unless `[replay] tc3 = "window"`), decodes the
//! operation from the same decoded parameters (they are parsed once) and checks the caller may perform
//! that action. The layer puts the [`Caller`] and the [`Operation`] into the request's extensions and the
//! spent replay key into the audit entry, and names the caller in the audit either way: by name once
//! verified, by the credential id it presented when refused before that ([`Refused`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use tower::{Layer, Service};

use super::respond::raw_request;
use crate::audit::AuditHandle;
use crate::clock::Clock;
use crate::config::{CallerConfig, Permissions, ReplayConfig, Tc3Replay};
use crate::dialect::{self, Reply};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Operation};
use crate::replay::{self, ReplayStore, Spend, Spending, Unavailable};
use crate::sign::{self, AuthMaterial, Scheme};

/// The TC3 header naming the body's digest, and the value that leaves the body unsigned.
const TC3_CONTENT_HEADER: &str = "x-tc-content-sha256";
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The caller's configured name.
    pub name: String,
    /// What the caller may do.
    pub permissions: Arc<Permissions>,
}

/// The replay key a request spent, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spent {
    /// The key.
    pub key: String,
    /// Unix time its window closes.
    pub until: i64,
    /// The nonce it was made of, if any (for the refusal's message).
    pub nonce: Option<String>,
    /// The credential id the request presented (a refused request is audited by it).
    pub presented: String,
}

/// What authentication needs: the callers by credential id, the replay store and policy, the clock and
/// the tables.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    callers: Arc<HashMap<String, (CallerConfig, Arc<Permissions>)>>,
    replay: Arc<dyn ReplayStore>,
    policy: Arc<ReplayConfig>,
    clock: Arc<dyn Clock>,
    maps: Arc<Mappings>,
}

impl AuthLayer {
    /// Authenticates against `callers`.
    pub fn new(
        callers: &[CallerConfig],
        replay: Arc<dyn ReplayStore>,
        policy: ReplayConfig,
        clock: Arc<dyn Clock>,
        maps: Arc<Mappings>,
    ) -> AuthLayer {
        let callers =
            callers.iter().map(|c| (c.secret_id.clone(), (c.clone(), Arc::new(c.permissions.clone())))).collect();
        AuthLayer { callers: Arc::new(callers), replay, policy: Arc::new(policy), clock, maps }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, cfg: self.clone() }
    }
}

/// The authentication service.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    cfg: AuthLayer,
}

impl<S> Service<Request<Bytes>> for Auth<S>
where
    S: Service<Request<Bytes>, Error = Fault> + Clone + Send + 'static,
    S::Response: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<S::Response, Fault>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Bytes>) -> Self::Future {
        let now = self.cfg.clock.now_unix();
        let audit = req.extensions().get::<AuditHandle>().cloned().unwrap_or_default();
        match authenticate(&req, &self.cfg, now) {
            Ok((caller, op, to_spend)) => {
                audit.update(|e| {
                    e.caller = Some(caller.name.clone());
                    e.instances = op.instances.clone();
                    e.keys = op.keys.as_slice().to_vec();
                });
                let mutation = op.action.is_mutation();
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(op);
                let Some(to_spend) = to_spend else { return Box::pin(self.inner.call(req)) };
                // The memory store answers at once; a shared one is asked before the inner call is made.
                match self.cfg.replay.spend(&to_spend.key, to_spend.until, now) {
                    Spending::Ready(answer) => {
                        let answer = answer.unwrap_or_else(|| Err(Unavailable("asked twice".into())));
                        match spent(answer, to_spend, mutation, &audit) {
                            Ok(()) => Box::pin(self.inner.call(req)),
                            Err(fault) => Box::pin(std::future::ready(Err(fault))),
                        }
                    }
                    Spending::Pending(asking) => {
                        let clone = self.inner.clone();
                        let mut inner = std::mem::replace(&mut self.inner, clone);
                        Box::pin(async move {
                            spent(asking.await, to_spend, mutation, &audit)?;
                            inner.call(req).await
                        })
                    }
                }
            }
            Err(Refused { fault, who }) => {
                audit.update(|e| e.caller = who);
                Box::pin(std::future::ready(Err(fault)))
            }
        }
    }
}

/// Why a request was refused, and who it came from as far as that is known: the caller's name once the
/// signature is verified, else the credential id it presented (so that an audit line names it).
#[derive(Debug)]
pub struct Refused {
    /// The fault to answer with.
    pub fault: Fault,
    /// The caller's name, or the credential id presented; `None` when not even that could be read.
    pub who: Option<String>,
}

impl From<Fault> for Refused {
    fn from(fault: Fault) -> Refused {
        Refused { fault, who: None }
    }
}

/// The decision: the caller, the operation and the replay key spent, or why the request is refused
/// (and by whom).
pub fn authenticate(
    req: &Request<Bytes>,
    cfg: &AuthLayer,
    now: i64,
) -> Result<(Caller, Operation, Option<Spent>), Refused> {
    let reply = req
        .extensions()
        .get::<Reply>()
        .ok_or_else(|| Fault::gateway(Code::Internal, "The request reached authentication undetected."))?;
    let raw = raw_request(req, req.body());
    let material = dialect::auth_material(reply.dialect, &raw)?;
    let presented = |fault: Fault| Refused { fault, who: Some(material.credential_id.clone().into_owned()) };
    let Some((caller, permissions)) = cfg.callers.get(material.credential_id.as_ref()) else {
        return Err(presented(Fault::caller(
            Code::UnknownCredential,
            format!("The credential id `{}` is not known.", material.credential_id),
        )));
    };
    sign::verify(&material, &caller.secret_key).map_err(|mismatch| {
        presented(
            Fault::caller(Code::SignatureMismatch, format!("The {} does not match.", mismatch.part.describe()))
                .with_detail(mismatch.string_to_sign),
        )
    })?;
    if material.scheme == Scheme::Tc3
        && !cfg.policy.accept_unsigned_payload
        && raw.header(TC3_CONTENT_HEADER).is_some_and(|v| v.eq_ignore_ascii_case(UNSIGNED_PAYLOAD))
    {
        return Err(presented(Fault::caller(
            Code::MalformedSignature,
            format!(
                "The signature does not cover the request body ({TC3_CONTENT_HEADER}: {UNSIGNED_PAYLOAD}); sign the body."
            ),
        )));
    }
    let window =
        cfg.policy.windows.get(&reply.dialect).copied().unwrap_or(cfg.maps.limits(reply.dialect).timestamp_window_secs);
    if (now - material.timestamp).abs() > window {
        return Err(presented(Fault::caller(
            Code::TimestampExpired,
            format!("The request time {} is more than {window} s away from the server time {now}.", material.timestamp),
        )));
    }
    let to_spend = replay_key(cfg, caller, &material, &reply.wire_action, material.timestamp + window);
    let caller = Caller { name: caller.name.clone(), permissions: permissions.clone() };
    let op = dialect::decode_request(reply.dialect, &raw, &material, &cfg.maps)
        .map_err(|fault| Refused { fault, who: Some(caller.name.clone()) })?;
    let denied = if !caller.permissions.allows_action(&reply.wire_action, op.action.name()) {
        Some(format!("The caller `{}` may not perform {}.", caller.name, reply.wire_action))
    } else {
        op.instances
            .iter()
            .find(|id| !caller.permissions.allows_instance(id))
            .map(|id| format!("The caller `{}` may not act on the instance `{id}`.", caller.name))
    };
    if let Some(why) = denied {
        return Err(Refused { fault: Fault::caller(Code::NoPermission, why), who: Some(caller.name) });
    }
    Ok((caller, op, to_spend))
}

/// The request's replay key: its nonce, or for TC3 (which has none) its signature's digest; none for
/// a TC3 request when `[replay] tc3 = "window"`.
fn replay_key(
    cfg: &AuthLayer,
    caller: &CallerConfig,
    material: &AuthMaterial<'_>,
    action: &str,
    until: i64,
) -> Option<Spent> {
    let key = match (&material.nonce, material.scheme) {
        (Some(nonce), _) => replay::nonce_key(&caller.secret_id, nonce),
        (None, Scheme::Tc3) if cfg.policy.tc3 == Tc3Replay::Once => replay::signature_key(&material.signature, action),
        (None, _) => return None,
    };
    Some(Spent {
        key,
        until,
        nonce: material.nonce.as_ref().map(|n| n.to_string()),
        presented: material.credential_id.to_string(),
    })
}

/// What spending the replay key found: the key recorded as spent, or the refusal. A shared store that
/// cannot be reached refuses a bind or unbind (nothing is forwarded that could be a replay) and lets a
/// look-up through unspent.
fn spent(answer: Result<Spend, Unavailable>, key: Spent, mutation: bool, audit: &AuditHandle) -> Result<(), Fault> {
    let refused = |fault: Fault| {
        // Refused before it was let through: audited by the credential it presented, as other refusals.
        audit.update(|e| e.caller = Some(key.presented.clone()));
        Err(fault)
    };
    match answer {
        Ok(Spend::Fresh) => {
            audit.update(|e| {
                e.replay_key = Some(key.key);
                e.replay_until = Some(key.until);
            });
            Ok(())
        }
        Ok(Spend::Replayed) => refused(match &key.nonce {
            Some(nonce) => Fault::caller(Code::NonceReused, format!("The nonce `{nonce}` was used already.")),
            None => Fault::caller(
                Code::NonceReused,
                "This signed request was received already; a TC3 signature is accepted once. Sign it afresh.",
            ),
        }),
        Ok(Spend::BeforeFloor) => refused(Fault::caller(
            Code::TimestampExpired,
            "The request time is too old to be told apart from a replay; sign it afresh.",
        )),
        Err(Unavailable(why)) if mutation => {
            tracing::warn!(error = %why, "A bind or unbind was refused: the shared replay store cannot be reached.");
            refused(Fault::gateway(
                Code::UpstreamUnavailable,
                "The gateway cannot check this request against replays right now; nothing was changed. Try again shortly.",
            ))
        }
        Err(Unavailable(why)) => {
            tracing::warn!(error = %why, "A look-up went through unspent: the shared replay store cannot be reached.");
            Ok(())
        }
    }
}
