//! Shadow mode (`[upstreams.*] shadow = "other"`): before a switch between clouds, see what would change.
//!
//! - A look-up (`DescribeKeyPairs`, `DescribeInstances`) routed to an upstream with a shadow is also sent
//!   to the shadow, translated for it as any request would be (`[[instances]]`, `[[keys]]`). Both answers
//!   are brought back into the caller's names and compared; each difference (an instance or key pair
//!   missing on one side, different key bindings, a different state: running or stopped in either
//!   cloud's words) is recorded in the request's audit record. The caller gets the primary's answer; a
//!   shadow that fails is recorded, never the caller's problem.
//! - A bind or unbind is never sent to the shadow: the audit records the request that would have been
//!   sent (its action, instance ids and keys on the shadow), or why it could not be translated.
//!
//! `crossgate shadow report` sums the differences up over a period ([`report`]).

use std::collections::{BTreeMap, BTreeSet};

use tokio::time::Instant;

use crate::audit::{AuditEntry, AuditHandle, ShadowDifference};
use crate::clock::Clock;
use crate::config::{Config, Names};
use crate::dialect::Dialect;
use crate::mapping::Mappings;
use crate::model::{Answer, Fault, Keys, Operation, Outcome, Provider};
use crate::policy::record_attempts;
use crate::provider::{Upstream, Upstreams};
use crate::translate::{self, Back, Leg};

/// What shadowing one request works with.
#[derive(Clone, Copy)]
pub struct Shadowing<'a> {
    /// The configuration (`[[instances]]`, shadows).
    pub config: &'a Config,
    /// The key table as it is now.
    pub keys: &'a [Names],
    /// The mapping tables.
    pub maps: &'a Mappings,
    /// Every upstream.
    pub upstreams: &'a Upstreams,
    /// The clock (for signing).
    pub clock: &'a dyn Clock,
    /// The request's deadline.
    pub deadline: Option<Instant>,
    /// The request's audit record.
    pub audit: &'a AuditHandle,
    /// The caller's provider (whose names the comparison speaks).
    pub caller: Provider,
}

impl std::fmt::Debug for Shadowing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadowing").field("caller", &self.caller).finish_non_exhaustive()
    }
}

/// A leg's operation as its shadow would get it: instances and keys in the shadow's terms.
fn shadow_op(
    s: &Shadowing<'_>,
    op: &Operation,
    leg: &Leg,
    shadow: &Upstream,
) -> Result<(Operation, Vec<(String, String)>), Fault> {
    let target = shadow.config.provider;
    let mut out = leg.op.clone();
    out.region = Some(shadow.config.region.clone());
    let mut placed = Vec::with_capacity(leg.placed.len());
    for p in &leg.placed {
        placed.push((p.caller_id.clone(), translate::instance_on(&s.config.instances, &p.caller_id, target)?));
    }
    out.instances = placed.iter().map(|(_, id)| id.clone()).collect();
    out.keys = match translate::keys_on(s.keys, &op.keys, s.caller, target)? {
        Ok(keys) => keys,
        // Names still to be resolved on a Tencent shadow: a look-up keeps them as a name filter.
        Err(names) => Keys::Names(names),
    };
    Ok((out, placed))
}

/// A state in plain words: running or stopped in either cloud's spelling, else as reported.
fn plain_state(maps: &Mappings, provider: Provider, state: &str) -> String {
    let limits = maps.limits(Dialect::of_provider(provider));
    if state == limits.running_state {
        "running".to_owned()
    } else if state == limits.stopped_state {
        "stopped".to_owned()
    } else {
        state.to_ascii_lowercase()
    }
}

/// What an answer says, in the caller's names: subject -> (state, keys) for instances, or key names.
fn facts(
    s: &Shadowing<'_>,
    provider: Provider,
    outcome: &Outcome,
    placed: &[(String, String)],
) -> BTreeMap<String, (Option<String>, Option<String>)> {
    let back = Back { caller: s.caller, keys: s.keys };
    let caller_id = |id: &str| {
        placed.iter().find(|(_, upstream)| upstream == id).map_or_else(|| id.to_owned(), |(caller, _)| caller.clone())
    };
    match &outcome.answer {
        Answer::Instances(found) => found
            .iter()
            .map(|i| {
                let mut keys: Vec<String> = i.keys.iter().map(|k| back.key(provider, k.clone())).collect();
                keys.sort();
                (caller_id(&i.id), (Some(plain_state(s.maps, provider, &i.state)), Some(keys.join(","))))
            })
            .collect(),
        Answer::KeyPairs(found) => {
            found.iter().map(|k| (back.key_pair(provider, k.clone()).id, (None, None))).collect()
        }
        _ => BTreeMap::new(),
    }
}

/// The differences between a leg's answer and its shadow's.
fn differences(
    shadow: &str,
    primary: &BTreeMap<String, (Option<String>, Option<String>)>,
    other: &BTreeMap<String, (Option<String>, Option<String>)>,
) -> Vec<ShadowDifference> {
    let mut out = Vec::new();
    let diff = |kind: &str, subject: &str, primary: &str, shadow_value: &str| ShadowDifference {
        shadow: shadow.to_owned(),
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        primary: primary.to_owned(),
        shadow_value: shadow_value.to_owned(),
    };
    let subjects: BTreeSet<&String> = primary.keys().chain(other.keys()).collect();
    for subject in subjects {
        match (primary.get(subject), other.get(subject)) {
            (Some(_), None) => out.push(diff("missing_on_shadow", subject, "present", "absent")),
            (None, Some(_)) => out.push(diff("missing_on_primary", subject, "absent", "present")),
            (Some((state_a, keys_a)), Some((state_b, keys_b))) => {
                if keys_a != keys_b {
                    let show =
                        |k: &Option<String>| k.clone().filter(|k| !k.is_empty()).unwrap_or_else(|| "none".into());
                    out.push(diff("keys", subject, &show(keys_a), &show(keys_b)));
                }
                if state_a != state_b {
                    let show = |k: &Option<String>| k.clone().unwrap_or_default();
                    out.push(diff("state", subject, &show(state_a), &show(state_b)));
                }
            }
            (None, None) => {}
        }
    }
    out
}

/// Sends each look-up leg to its upstream's shadow and records how the answers differ.
pub async fn look_ups(s: Shadowing<'_>, op: &Operation, legs: &[Leg], results: &[Result<Outcome, Fault>]) {
    for (leg, result) in legs.iter().zip(results) {
        let Some(shadow) = s.upstreams[&leg.upstream].config.shadow.as_ref().and_then(|n| s.upstreams.get(n)) else {
            continue;
        };
        let name = shadow.config.name.clone();
        let note = |text: String| s.audit.update(|e| e.steps.push(format!("shadow {name}: {text}")));
        let Ok(primary) = result else {
            note("not compared: the primary failed".to_owned());
            continue;
        };
        let (shadow_op, placed) = match shadow_op(&s, op, leg, shadow) {
            Ok(x) => x,
            Err(f) => {
                note(format!("not sent: {}", f.message()));
                continue;
            }
        };
        let call = shadow.call_recorded(&shadow_op, s.maps, s.clock, s.deadline).await;
        record_attempts(s.audit, &call.attempts);
        let answer = match call.result {
            Ok(answer) => answer,
            Err(f) => {
                note(format!("failed: {} ({})", f.message(), f.code().name()));
                continue;
            }
        };
        let primary_placed: Vec<(String, String)> =
            leg.placed.iter().map(|p| (p.caller_id.clone(), p.upstream_id.clone())).collect();
        let mine = facts(&s, leg.provider, primary, &primary_placed);
        let theirs = facts(&s, shadow.config.provider, &answer, &placed);
        let found = differences(&name, &mine, &theirs);
        note(format!("compared: {} difference(s)", found.len()));
        s.audit.update(|e| e.shadow_differences.extend(found));
    }
}

/// Records, for each bind or unbind leg whose upstream has a shadow, the request the shadow would have
/// been sent.
pub fn would_send(s: Shadowing<'_>, op: &Operation, legs: &[Leg]) {
    for leg in legs {
        let Some(shadow) = s.upstreams[&leg.upstream].config.shadow.as_ref().and_then(|n| s.upstreams.get(n)) else {
            continue;
        };
        let wire = s.maps.wire_action(Dialect::of_provider(shadow.config.provider), op.action);
        let line = match shadow_op(&s, op, leg, shadow) {
            Ok((shadow_op, _)) => format!(
                "{}: {wire} InstanceIds=[{}] Keys=[{}] (not sent)",
                shadow.config.name,
                shadow_op.instances.join(", "),
                shadow_op.keys.as_slice().join(", ")
            ),
            Err(f) => format!("{}: {wire} could not be translated: {}", shadow.config.name, f.message()),
        };
        s.audit.update(|e| e.shadow_requests.push(line));
    }
}

/// A summary of the shadow differences in `records`: counts by shadow and kind, then every difference.
pub fn report(records: &[AuditEntry]) -> String {
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut lines = Vec::new();
    let mut compared = 0;
    let mut would = 0;
    for r in records {
        if r.steps.iter().any(|s| s.starts_with("shadow ") && s.contains("compared")) {
            compared += 1;
        }
        would += r.shadow_requests.len();
        for d in &r.shadow_differences {
            *counts.entry((d.shadow.clone(), d.kind.clone())).or_default() += 1;
            lines.push(format!(
                "{}  {}  {}  {}  {}: {} / {}",
                r.time, r.request_id, d.shadow, d.kind, d.subject, d.primary, d.shadow_value
            ));
        }
    }
    let mut out = format!(
        "{compared} look-up(s) compared with a shadow, {} difference(s); {would} bind/unbind request(s) not sent to a \
         shadow\n",
        lines.len()
    );
    for ((shadow, kind), n) in &counts {
        out.push_str(&format!("  {shadow}  {kind}: {n}\n"));
    }
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
