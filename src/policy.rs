//! The state policies at work ([`StatePolicy`]): each is a documented sequence of upstream calls around
//! one leg's bind or unbind, every call recorded in the request's audit record (its attempts) with a step
//! line saying what was done and why (`steps`).
//!
//! - **CVM, `running = "force-stop"`**: DescribeInstances; for the RUNNING ones, StopInstances (HARD), then
//!   DescribeInstances until each is STOPPED; the bind or unbind; then StartInstances for them again,
//!   whether the change succeeded or not (machines are left running as they were found). A stop that
//!   fails or does not finish in time: nothing is changed, the caller gets the stop's error. A start that
//!   fails: the change is made, and each instance left stopped is reported failed, with why.
//! - **ECS, `reboot = "if-running"`**: DescribeInstances; the bind or unbind; then RebootInstance for each
//!   instance that was Running and whose change succeeded, so that it takes effect. A reboot that fails
//!   reports that instance failed: its key is bound but not in effect.
//! - **Lighthouse, `wait`**: the bind or unbind; then DescribeInstances until each instance's latest
//!   operation (the one with the bind's RequestId) is SUCCESS or FAILED, at most the configured wait and
//!   never past the request's own time limit. FAILED, or still OPERATING at the end, reports the instance
//!   failed.
//!
//! Polls run once a second (250 ms at first), each an audited call.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::audit::{AuditHandle, UpstreamCall};
use crate::clock::Clock;
use crate::config::{OnRunning, Reboot, StatePolicy};
use crate::mapping::Mappings;
use crate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, Operation, OperationState, Outcome, Provider,
};
use crate::provider::{Attempt, Upstream};

/// The first pause between two polls; later ones are [`POLL_EVERY`].
const FIRST_POLL: Duration = Duration::from_millis(250);
/// The pause between two polls.
const POLL_EVERY: Duration = Duration::from_secs(1);

/// One leg's upstream, and what its calls share: the mapping tables, the clock, the request's deadline
/// and its audit record.
#[derive(Clone, Copy)]
pub struct Leg<'a> {
    /// The upstream the leg goes to.
    pub upstream: &'a Upstream,
    /// The mapping tables.
    pub maps: &'a Mappings,
    /// The clock (for signing).
    pub clock: &'a dyn Clock,
    /// The request's deadline.
    pub deadline: Option<Instant>,
    /// The request's audit record.
    pub audit: &'a AuditHandle,
}

impl std::fmt::Debug for Leg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leg").field("upstream", &self.upstream.config.name).finish_non_exhaustive()
    }
}

/// Every upstream attempt, for the audit: retries and pages included.
pub fn record_attempts(audit: &AuditHandle, attempts: &[Attempt]) {
    audit.update(|e| {
        e.upstream_calls.extend(attempts.iter().map(|a| UpstreamCall {
            upstream: a.upstream.clone(),
            action: a.action.name().to_owned(),
            attempt: a.number,
            ending: a.ending.name().to_owned(),
            status: a.status,
            fault: a.fault.map(|c| c.name().to_owned()),
            elapsed_ms: a.elapsed_ms,
        }));
    });
}

impl Leg<'_> {
    /// One audited upstream call.
    async fn call(&self, op: &Operation) -> Result<Outcome, Fault> {
        let call = self.upstream.call_recorded(op, self.maps, self.clock, self.deadline).await;
        record_attempts(self.audit, &call.attempts);
        call.result
    }

    /// A line in the audit record's `steps`.
    fn step(&self, text: String) {
        let upstream = &self.upstream.config.name;
        self.audit.update(|e| e.steps.push(format!("{upstream}: {text}")));
    }

    fn policy(&self) -> StatePolicy {
        self.upstream.config.policy
    }

    /// The instances' states, as the upstream reports them now.
    async fn describe(&self, instances: &[String]) -> Result<BTreeMap<String, InstanceInfo>, Fault> {
        let mut look = Operation::new(Action::DescribeInstances);
        look.region = Some(self.upstream.config.region.clone());
        look.instances = instances.to_vec();
        match self.call(&look).await?.answer {
            Answer::Instances(found) => Ok(found.into_iter().map(|i| (i.id.clone(), i)).collect()),
            _ => Err(Fault::upstream(Code::UpstreamUnavailable, "The instance look-up answered no instances.", None)),
        }
    }

    /// A start, stop or reboot of `instances`: one call, or one per instance where the provider takes one.
    async fn power(&self, action: Action, instances: &[String], forced: bool) -> Vec<(String, Result<(), Fault>)> {
        let make = |ids: Vec<String>| {
            let mut op = Operation::new(action);
            op.region = Some(self.upstream.config.region.clone());
            op.instances = ids;
            op.force_stop = forced.then_some(true);
            op
        };
        if self.upstream.config.provider == Provider::AliyunEcs {
            let mut out = Vec::with_capacity(instances.len());
            for id in instances {
                out.push((id.clone(), self.call(&make(vec![id.clone()])).await.map(|_| ())));
            }
            out
        } else {
            let result = self.call(&make(instances.to_vec())).await.map(|_| ());
            instances.iter().map(|id| (id.clone(), result.clone())).collect()
        }
    }

    /// How long a poll may go on: until the request's deadline, or `limit` from now if sooner.
    fn poll_until(&self, limit: Option<Duration>) -> Instant {
        let own = limit.map(|l| Instant::now() + l);
        match (own, self.deadline) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (None, None) => Instant::now() + self.upstream.config.timeout,
        }
    }
}

/// Pauses before the next poll, unless that would pass `until`; false when there is no time left.
async fn pause(polls: &mut u32, until: Instant) -> bool {
    let wait = if *polls == 0 { FIRST_POLL } else { POLL_EVERY };
    *polls += 1;
    if Instant::now() + wait >= until {
        return false;
    }
    tokio::time::sleep(wait).await;
    true
}

/// The leg's call, with its upstream's state policy around a bind or unbind.
pub async fn run(leg: Leg<'_>, op: &Operation) -> Result<Outcome, Fault> {
    let policy = leg.policy();
    if !matches!(op.action, Action::AssociateKeys | Action::DisassociateKeys) || policy.is_default() {
        return leg.call(op).await;
    }
    // The policies' state is boxed: it is kilobytes, and a call without a policy should not carry it.
    match leg.upstream.config.provider {
        Provider::TencentCvm if policy.running == OnRunning::ForceStop => Box::pin(force_stop(leg, op)).await,
        Provider::AliyunEcs if policy.reboot == Reboot::IfRunning => Box::pin(reboot_after(leg, op)).await,
        Provider::TencentLighthouse => match policy.wait {
            Some(limit) => Box::pin(wait_for(leg, op, limit)).await,
            None => leg.call(op).await,
        },
        _ => leg.call(op).await,
    }
}

/// `fault`, told as `text` (the upstream's own code kept, so the caller's table renders it as before,
/// with `text` where the upstream's message would be).
fn explained(fault: &Fault, text: String) -> Fault {
    let said = fault.upstream_error().cloned().map(|mut u| {
        u.message = text.clone();
        u
    });
    Fault::upstream(fault.code(), text, said)
}

/// Marks the instances in `failed` as failed in a bind's outcome.
fn fail_instances(mut outcome: Outcome, failed: &BTreeMap<String, Fault>) -> Outcome {
    if let Answer::Bind(results) = &mut outcome.answer {
        for r in results.iter_mut() {
            if let Some(fault) = failed.get(&r.instance)
                && r.result.is_ok()
            {
                r.result = Err(fault.clone());
            }
        }
    }
    outcome
}

/// CVM: stop the RUNNING instances, change, start them again.
async fn force_stop(leg: Leg<'_>, op: &Operation) -> Result<Outcome, Fault> {
    let limits = leg.maps.limits(crate::dialect::Dialect::of_provider(Provider::TencentCvm));
    let (running_word, stopped_word) = (limits.running_state.as_str(), limits.stopped_state.as_str());
    let states = leg.describe(&op.instances).await?;
    let running: Vec<String> =
        op.instances.iter().filter(|id| states.get(*id).is_some_and(|i| i.state == running_word)).cloned().collect();
    let mut change = op.clone();
    change.force_stop = None;
    if running.is_empty() {
        leg.step("running = force-stop: no instance is RUNNING; nothing to stop".to_owned());
        return leg.call(&change).await;
    }
    leg.step(format!("running = force-stop: {} RUNNING; StopInstances (HARD) first", running.join(", ")));
    if let Some((_, Err(fault))) = leg.power(Action::StopInstances, &running, true).await.into_iter().next() {
        leg.step(format!("StopInstances failed ({}); nothing was changed", fault.code().name()));
        return Err(fault);
    }
    // Wait until every one has stopped.
    let until = leg.poll_until(None);
    let mut polls = 0;
    loop {
        let now = leg.describe(&running).await?;
        let pending: Vec<&String> =
            running.iter().filter(|id| now.get(*id).is_none_or(|i| i.state != stopped_word)).collect();
        if pending.is_empty() {
            break;
        }
        if !pause(&mut polls, until).await {
            let ids: Vec<&str> = pending.iter().map(|s| s.as_str()).collect();
            leg.step(format!("{} did not stop in time; nothing was changed", ids.join(", ")));
            return Err(Fault::upstream(
                Code::UpstreamTimeout,
                format!("CVM did not stop {} in time; the key pairs were not changed.", ids.join(", ")),
                None,
            ));
        }
    }
    let changed = leg.call(&change).await;
    leg.step(format!(
        "{} {}; StartInstances for {}",
        op.action,
        if changed.is_ok() { "succeeded" } else { "failed" },
        running.join(", ")
    ));
    let started = leg.power(Action::StartInstances, &running, false).await;
    let failed: BTreeMap<String, Fault> = started
        .into_iter()
        .filter_map(|(id, r)| {
            r.err().map(|f| {
                let text = format!(
                    "The key pairs of {id} were changed while it was stopped, but starting it again failed: {}",
                    f.upstream_error().map_or(f.message(), |u| u.message.as_str())
                );
                let fault = explained(&f, text);
                (id, fault)
            })
        })
        .collect();
    if !failed.is_empty() {
        let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
        leg.step(format!("StartInstances failed; left stopped: {}", ids.join(", ")));
    }
    Ok(fail_instances(changed?, &failed))
}

/// ECS: reboot the instances that were Running, so that the change takes effect.
async fn reboot_after(leg: Leg<'_>, op: &Operation) -> Result<Outcome, Fault> {
    let running_word = leg.maps.limits(crate::dialect::Dialect::AliyunEcs).running_state.clone();
    let states = leg.describe(&op.instances).await?;
    let outcome = leg.call(op).await?;
    let succeeded: Vec<String> = match &outcome.answer {
        Answer::Bind(results) => results.iter().filter(|r| r.result.is_ok()).map(|r| r.instance.clone()).collect(),
        _ => Vec::new(),
    };
    let to_reboot: Vec<String> =
        succeeded.into_iter().filter(|id| states.get(id).is_some_and(|i| i.state == running_word)).collect();
    if to_reboot.is_empty() {
        leg.step("reboot = if-running: no changed instance is Running; nothing to reboot".to_owned());
        return Ok(outcome);
    }
    leg.step(format!("reboot = if-running: RebootInstance for {}", to_reboot.join(", ")));
    let mut failed = BTreeMap::new();
    for (id, result) in leg.power(Action::RebootInstances, &to_reboot, false).await {
        if let Err(f) = result {
            let text = format!(
                "The key pair of {id} was changed, but RebootInstance failed, so the change is not in effect: {}",
                f.upstream_error().map_or(f.message(), |u| u.message.as_str())
            );
            failed.insert(id, explained(&f, text));
        }
    }
    if !failed.is_empty() {
        let ids: Vec<&str> = failed.keys().map(String::as_str).collect();
        leg.step(format!("RebootInstance failed for {}", ids.join(", ")));
    }
    Ok(fail_instances(outcome, &failed))
}

/// Lighthouse: wait for the asynchronous operation's outcome.
async fn wait_for(leg: Leg<'_>, op: &Operation, limit: Duration) -> Result<Outcome, Fault> {
    let outcome = leg.call(op).await?;
    let request_id = outcome.request_id.clone();
    let until = leg.poll_until(Some(limit));
    leg.step(format!("wait: polling LatestOperationState of {request_id} for {}", op.instances.join(", ")));
    let mut polls = 0;
    let mut settled: BTreeMap<String, Result<(), Fault>> = BTreeMap::new();
    loop {
        let pending: Vec<String> = op.instances.iter().filter(|id| !settled.contains_key(*id)).cloned().collect();
        if pending.is_empty() {
            break;
        }
        let now = leg.describe(&pending).await?;
        for id in &pending {
            let Some(info) = now.get(id) else {
                settled
                    .insert(id.clone(), Err(Fault::upstream(Code::InstanceNotFound, format!("{id} is gone."), None)));
                continue;
            };
            if info.latest_operation_request_id.as_deref() != Some(request_id.as_str()) {
                continue; // not yet reported (or another operation): look again
            }
            match info.latest_operation_state {
                Some(OperationState::Success) => {
                    settled.insert(id.clone(), Ok(()));
                }
                Some(OperationState::Failed) => {
                    let fault = Fault::upstream(
                        Code::Internal,
                        format!("Lighthouse reports the operation {request_id} on {id} FAILED."),
                        None,
                    );
                    settled.insert(id.clone(), Err(fault));
                }
                _ => {}
            }
        }
        if settled.len() < op.instances.len() && !pause(&mut polls, until).await {
            for id in &op.instances {
                settled.entry(id.clone()).or_insert_with(|| {
                    Err(Fault::upstream(
                        Code::UpstreamTimeout,
                        format!("Lighthouse's operation {request_id} on {id} was still OPERATING when the wait ended."),
                        None,
                    ))
                });
            }
        }
    }
    let failed: BTreeMap<String, Fault> = settled.into_iter().filter_map(|(id, r)| r.err().map(|f| (id, f))).collect();
    leg.step(if failed.is_empty() {
        "wait: every operation finished with SUCCESS".to_owned()
    } else {
        format!("wait: failed or unfinished: {}", failed.keys().cloned().collect::<Vec<_>>().join(", "))
    });
    let results = op
        .instances
        .iter()
        .map(|id| InstanceResult { instance: id.clone(), result: failed.get(id).map_or(Ok(()), |f| Err(f.clone())) })
        .collect();
    Ok(Outcome { request_id, answer: Answer::Bind(results) })
}
