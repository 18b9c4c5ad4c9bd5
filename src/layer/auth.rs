//! Authentication: who is calling, proven by their signature, fresh in time and never replayed.
//!
//! The decision is [`authenticate`], a plain function over one buffered request and a clock reading.
//! It reads the signature material with the caller's codec, looks the credential up, verifies the
//! signature in constant time over the bytes as received (the Host header included), checks the time
//! window and the nonce, and then decodes the operation from the same decoded parameters (they are parsed
//! once). The layer puts the [`Caller`] and the [`Operation`] into the request's extensions, and names
//! the caller in the audit line either way: by name once verified, by the credential id it presented when
//! refused before that ([`Refused`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use tower::{Layer, Service};

use super::audit::AuditHandle;
use super::respond::raw_request;
use crate::clock::Clock;
use crate::config::CallerConfig;
use crate::dialect::{self, Reply};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Operation};
use crate::replay::NonceStore;
use crate::sign;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's configured name.
    pub name: String,
}

/// What authentication needs: the callers by credential id, the nonce store, the clock and the tables.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    callers: Arc<HashMap<String, CallerConfig>>,
    nonces: Arc<dyn NonceStore>,
    clock: Arc<dyn Clock>,
    maps: Arc<Mappings>,
}

impl AuthLayer {
    /// Authenticates against `callers`.
    pub fn new(
        callers: &[CallerConfig],
        nonces: Arc<dyn NonceStore>,
        clock: Arc<dyn Clock>,
        maps: Arc<Mappings>,
    ) -> AuthLayer {
        let callers = callers.iter().map(|c| (c.secret_id.clone(), c.clone())).collect();
        AuthLayer { callers: Arc::new(callers), nonces, clock, maps }
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
    S: Service<Request<Bytes>, Error = Fault>,
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
            Ok((caller, op)) => {
                audit.update(|e| {
                    e.caller = Some(caller.name.clone());
                    e.instances = op.instances.clone();
                    e.keys = op.keys.as_slice().to_vec();
                });
                req.extensions_mut().insert(caller);
                req.extensions_mut().insert(op);
                Box::pin(self.inner.call(req))
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

/// The decision: the caller and the operation, or why the request is refused (and by whom).
pub fn authenticate(req: &Request<Bytes>, cfg: &AuthLayer, now: i64) -> Result<(Caller, Operation), Refused> {
    let reply = req
        .extensions()
        .get::<Reply>()
        .ok_or_else(|| Fault::gateway(Code::Internal, "The request reached authentication undetected."))?;
    let raw = raw_request(req, req.body());
    let material = dialect::auth_material(reply.dialect, &raw)?;
    let presented = |fault: Fault| Refused { fault, who: Some(material.credential_id.clone().into_owned()) };
    let Some(caller) = cfg.callers.get(material.credential_id.as_ref()) else {
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
    let window = cfg.maps.limits(reply.dialect).timestamp_window_secs;
    if (now - material.timestamp).abs() > window {
        return Err(presented(Fault::caller(
            Code::TimestampExpired,
            format!("The request time {} is more than {window} s away from the server time {now}.", material.timestamp),
        )));
    }
    if let Some(nonce) = &material.nonce
        && !cfg.nonces.first_use(&caller.secret_id, nonce, material.timestamp + window, now)
    {
        return Err(presented(Fault::caller(Code::NonceReused, format!("The nonce `{nonce}` was used already."))));
    }
    let caller = Caller { name: caller.name.clone() };
    let op = dialect::decode_request(reply.dialect, &raw, &material, &cfg.maps)
        .map_err(|fault| Refused { fault, who: Some(caller.name.clone()) })?;
    Ok((caller, op))
}
