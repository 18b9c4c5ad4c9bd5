//! The innermost service: one request's own work, top to bottom.
//!
//! decode (done by the auth layer) -> route each instance -> translate ids and keys (resolving key names
//! on Tencent targets by look-up) -> split to the upstreams' limits -> call every leg concurrently, each
//! within its upstream's state policy ([`crate::policy`]) -> merge back into one outcome named as the
//! caller named things. The respond layer renders it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{BoxFuture, join_all};
use http::Request;
use tokio::time::Instant;
use tower::Service;

use crate::audit::{AuditHandle, InstanceAudit};
use crate::clock::Clock;
use crate::config::Config;
use crate::dialect::{Dialect, Reply};
use crate::keybook::KeyBook;
use crate::layer::auth::Caller;
use crate::layer::deadline::RequestDeadline;
use crate::mapping::Mappings;
use crate::model::{Action, Answer, Code, Fault, Keys, Operation, Outcome};
use crate::policy;
use crate::provider::{Upstream, Upstreams};
use crate::replicate::Replicator;
use crate::route::{self, Asker};
use crate::shadow;
use crate::translate::{self, Leg, Placed};

/// How long a key name resolved on a Tencent upstream is trusted.
const KEY_CACHE_TTL: Duration = Duration::from_secs(60);

/// The gateway service and everything its requests share.
#[derive(Debug, Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: Arc<Config>,
    book: Arc<KeyBook>,
    maps: Arc<Mappings>,
    upstreams: Upstreams,
    clock: Arc<dyn Clock>,
    key_cache: Mutex<HashMap<(String, String), (String, u64)>>,
}

impl Gateway {
    /// A gateway over configured upstreams.
    pub fn new(
        config: Arc<Config>,
        book: Arc<KeyBook>,
        maps: Arc<Mappings>,
        upstreams: Upstreams,
        clock: Arc<dyn Clock>,
    ) -> Gateway {
        Gateway { shared: Arc::new(Shared { config, book, maps, upstreams, clock, key_cache: Mutex::default() }) }
    }
}

impl Service<Request<Bytes>> for Gateway {
    type Response = Outcome;
    type Error = Fault;
    type Future = BoxFuture<'static, Result<Outcome, Fault>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Fault>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move {
            let ext = req.extensions();
            let (Some(reply), Some(caller), Some(op)) =
                (ext.get::<Reply>(), ext.get::<Caller>(), ext.get::<Operation>())
            else {
                return Err(Fault::gateway(Code::Internal, "The request reached the gateway unauthenticated."));
            };
            let audit = ext.get::<AuditHandle>().cloned().unwrap_or_default();
            let deadline = ext.get::<RequestDeadline>().map(|d| d.0);
            handle(&shared, reply, caller, op, &audit, deadline).await
        })
    }
}

/// One request's work.
async fn handle(
    shared: &Shared,
    reply: &Reply,
    caller: &Caller,
    op: &Operation,
    audit: &AuditHandle,
    deadline: Option<Instant>,
) -> Result<Outcome, Fault> {
    if !op.action.is_for_callers() {
        // Replication and state-policy steps are crossgate's own calls, never forwarded for a caller.
        return Err(Fault::caller(
            Code::UnknownAction,
            format!("`{}` is a step crossgate takes itself; callers cannot send it.", reply.wire_action),
        ));
    }
    let asker = Asker { caller: &caller.name, dialect: reply.dialect };
    let scope = Scope { audit, deadline };
    let legs = plan(shared, scope, asker, reply.dialect, op).await?;
    permit(caller, &legs)?;
    audit.update(|e| {
        // One entry per upstream, its action at the same index; split batches repeat neither.
        for leg in &legs {
            if !e.upstreams.contains(&leg.upstream) {
                e.upstreams.push(leg.upstream.clone());
                e.upstream_actions
                    .push(shared.maps.wire_action(Dialect::of_provider(leg.provider), leg.op.action).to_owned());
            }
            for key in leg.op.keys.as_slice() {
                if !e.keys_translated.contains(key) {
                    e.keys_translated.push(key.clone());
                }
            }
        }
    });
    let calls = legs.iter().map(|leg| {
        let upstream = shared.upstreams[&leg.upstream].clone();
        async move {
            let on =
                policy::Leg { upstream: &upstream, maps: &shared.maps, clock: shared.clock.as_ref(), deadline, audit };
            Box::pin(policy::run(on, &leg.op)).await
        }
    });
    let results = join_all(calls).await;
    record(audit, &legs, &results);
    // The key table as this request's plan used it (replication may have added to it).
    let table = shared.book.table();
    if legs.iter().any(|l| shared.upstreams[&l.upstream].config.shadow.is_some()) {
        let s = shadow::Shadowing {
            config: &shared.config,
            keys: &table,
            maps: &shared.maps,
            upstreams: &shared.upstreams,
            clock: shared.clock.as_ref(),
            deadline,
            audit,
            caller: reply.dialect.provider(),
        };
        if op.action.is_mutation() {
            shadow::would_send(s, op, &legs);
        } else {
            Box::pin(shadow::look_ups(s, op, &legs, &results)).await;
        }
    }
    let back = translate::Back { caller: reply.dialect.provider(), keys: &table };
    translate::merge(&reply.request_id, op, &legs, results, back)
}

/// Routes and translates the caller's operation into upstream legs. Every id is renamed for and checked
/// against the provider that receives it before anything is forwarded, key look-ups included.
/// What every upstream call of one request shares: its audit record and its deadline.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    audit: &'a AuditHandle,
    deadline: Option<Instant>,
}

async fn plan(
    shared: &Shared,
    scope: Scope<'_>,
    asker: Asker<'_>,
    dialect: Dialect,
    op: &Operation,
) -> Result<Vec<Leg>, Fault> {
    let config = &shared.config;
    let groups: Vec<(&str, Vec<String>)> = if op.instances.is_empty() {
        vec![(route::upstream_for(&config.routing, asker, None), Vec::new())]
    } else {
        translate::group(&op.instances, |id| route::upstream_for(&config.routing, asker, Some(id)))
            .into_iter()
            .collect()
    };
    if op.action == Action::AssociateKeys {
        for (name, _) in &groups {
            replicate_keys(shared, scope, &shared.upstreams[*name], op, dialect.provider()).await?;
        }
    }
    let table = shared.book.table();
    let mut checked = Vec::with_capacity(groups.len());
    for (name, instances) in groups {
        let target = shared.upstreams[name].config.provider;
        let placed = instances
            .into_iter()
            .map(|caller_id| {
                let upstream_id = translate::instance_on(&config.instances, &caller_id, target)?;
                Ok(Placed { caller_id, upstream_id })
            })
            .collect::<Result<Vec<_>, Fault>>()?;
        translate::check_ids(&shared.maps, &table, op, dialect.provider(), target, &placed)?;
        checked.push((name, placed));
    }
    let mut legs = Vec::new();
    for (name, placed) in checked {
        let upstream = &shared.upstreams[name];
        // The caller's instances and keys are not copied: each leg names its own instances
        // (`translate::split`), and the keys as this upstream names them.
        let leg_op = Operation {
            action: op.action,
            region: Some(upstream.config.region.clone()),
            instances: Vec::new(),
            keys: keys_for(shared, scope, &table, upstream, &op.keys, dialect.provider(), op.action).await?,
            force_stop: op.force_stop,
            public_key: op.public_key.clone(),
            page: op.page,
        };
        legs.extend(translate::split(&shared.maps, name, upstream.config.provider, leg_op, placed)?);
    }
    Ok(legs)
}

/// Before a bind: every key of a `[[keys]]` row that replicates and is not yet on `target`'s provider is
/// imported there first ([`crate::replicate`]).
async fn replicate_keys(
    shared: &Shared,
    scope: Scope<'_>,
    target: &Upstream,
    op: &Operation,
    from: crate::model::Provider,
) -> Result<(), Fault> {
    for key in op.keys.as_slice() {
        let Some(row) = shared.book.row_of(from, key) else { continue };
        let lacking = !shared.book.table()[row].contains_key(&target.config.provider);
        if lacking && shared.book.options(row).replicate {
            let replicator = Replicator {
                book: &shared.book,
                upstreams: &shared.upstreams,
                maps: &shared.maps,
                clock: shared.clock.as_ref(),
                deadline: scope.deadline,
                audit: Some(scope.audit),
            };
            // Boxed: the import's state is kilobytes, and most binds import nothing.
            Box::pin(replicator.ensure(row, target)).await?;
        }
    }
    Ok(())
}

/// The keys as the upstream names them, resolving names on Tencent targets by exact look-up.
async fn keys_for(
    shared: &Shared,
    scope: Scope<'_>,
    table: &[crate::config::Names],
    upstream: &Upstream,
    keys: &Keys,
    from: crate::model::Provider,
    action: Action,
) -> Result<Keys, Fault> {
    let target = upstream.config.provider;
    match translate::keys_on(table, keys, from, target)? {
        Ok(keys) => Ok(keys),
        Err(names) if action == Action::DescribeKeys => {
            // A name look-up on a Tencent target stays a name filter.
            let _ = names;
            Ok(keys.clone())
        }
        Err(names) => {
            let mut ids = Vec::with_capacity(names.len());
            for name in names {
                // Boxed: a look-up's state is kilobytes, and most requests need none.
                ids.push(Box::pin(resolve_key_name(shared, scope, upstream, &name)).await?);
            }
            Ok(Keys::Ids(ids))
        }
    }
}

/// A key name's id on a Tencent upstream: `DescribeKeyPairs` filtered by name, matched exactly (the
/// Lighthouse filter is fuzzy, so many keys may match it), cached for [`KEY_CACHE_TTL`]. The look-up
/// reads every page of the upstream's answer (see [`Upstream::call`]), so a key past the first page is
/// found.
async fn resolve_key_name(shared: &Shared, scope: Scope<'_>, upstream: &Upstream, name: &str) -> Result<String, Fault> {
    let now = shared.clock.now_ms();
    let cache_key = (upstream.config.name.clone(), name.to_owned());
    if let Some((id, expires)) = shared.key_cache.lock().unwrap_or_else(|p| p.into_inner()).get(&cache_key)
        && *expires > now
    {
        return Ok(id.clone());
    }
    let mut lookup = Operation::new(Action::DescribeKeys);
    lookup.region = Some(upstream.config.region.clone());
    lookup.keys = Keys::Names(vec![name.to_owned()]);
    let call = upstream.call_recorded(&lookup, &shared.maps, shared.clock.as_ref(), scope.deadline).await;
    policy::record_attempts(scope.audit, &call.attempts);
    let outcome = call.result?;
    let Answer::KeyPairs(found) = outcome.answer else {
        return Err(Fault::upstream(Code::UpstreamUnavailable, "The key look-up answered no key pairs.", None));
    };
    let id = found.into_iter().find(|k| k.name == name).map(|k| k.id).ok_or_else(|| {
        Fault::caller(
            Code::KeyNotFound,
            format!("The key pair `{name}` does not exist on {}.", upstream.config.provider),
        )
    })?;
    shared
        .key_cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(cache_key, (id.clone(), now + KEY_CACHE_TTL.as_millis() as u64));
    Ok(id)
}

/// The caller's permission over where its request goes: every upstream it is routed to. (Actions and
/// instances are checked at authentication.)
fn permit(caller: &Caller, legs: &[Leg]) -> Result<(), Fault> {
    match legs.iter().find(|leg| !caller.permissions.allows_upstream(&leg.upstream)) {
        None => Ok(()),
        Some(leg) => Err(Fault::caller(
            Code::NoPermission,
            format!("The caller `{}` may not use the upstream `{}`.", caller.name, leg.upstream),
        )),
    }
}

fn record(audit: &AuditHandle, legs: &[Leg], results: &[Result<Outcome, Fault>]) {
    audit.update(|e| {
        for (leg, result) in legs.iter().zip(results) {
            let request_id = match result {
                Ok(o) => Some(o.request_id.clone()),
                Err(f) => f.upstream_error().map(|u| u.request_id.clone()),
            };
            if let Some(id) = request_id.filter(|id| !id.is_empty()) {
                e.upstream_request_ids.push(id);
            }
            for placed in &leg.placed {
                let outcome = match result {
                    Err(f) => f.code().name().to_owned(),
                    Ok(o) => match &o.answer {
                        Answer::Bind(rs) => rs
                            .iter()
                            .find(|r| r.instance == placed.upstream_id)
                            .and_then(|r| r.result.as_ref().err())
                            .map_or_else(|| "Success".to_owned(), |f| f.code().name().to_owned()),
                        _ => "Success".to_owned(),
                    },
                };
                e.results.push(InstanceAudit {
                    instance: placed.caller_id.clone(),
                    translated: placed.upstream_id.clone(),
                    upstream: leg.upstream.clone(),
                    outcome,
                });
            }
        }
    });
}
