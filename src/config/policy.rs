//! Each upstream's state policy: what crossgate does, as explicit and audited upstream calls, where the
//! target cloud's state rules would otherwise turn a caller's request down or answer before the work is
//! done. Every route to the upstream has it; two `[upstreams.*]` tables for the same cloud with
//! different policies give two routes their own.
//!
//! ```toml
//! [upstreams.cvm]
//! running = "force-stop"     # CVM: "refuse" (default: CVM's own rule) or "force-stop": StopInstances
//!                            # (HARD) for the RUNNING ones, the bind, StartInstances for them again
//! [upstreams.ecs]
//! reboot = "if-running"      # ECS: "never" (default) or "if-running": RebootInstance after a bind
//!                            # for every instance that was Running, so the key takes effect
//! [upstreams.lighthouse]
//! wait = true                # Lighthouse: poll DescribeInstances until LatestOperationState is done
//! wait_timeout_ms = 60000    # at most this long (and never past the request's own time limit)
//! ```

use std::time::Duration;

use crate::model::Provider;

/// What a bind or unbind does to a RUNNING CVM instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnRunning {
    /// CVM's own rule: the request is refused (the faithful default).
    #[default]
    Refuse,
    /// Stop it (StopInstances, HARD), bind or unbind, start it again (StartInstances).
    ForceStop,
}

/// Whether a bound or unbound ECS key is made to take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reboot {
    /// Never: the change waits for the next reboot or start (ECS's own rule).
    #[default]
    Never,
    /// RebootInstance for every instance that was Running, after a successful bind or unbind.
    IfRunning,
}

/// An upstream's state policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatePolicy {
    /// CVM: RUNNING instances.
    pub running: OnRunning,
    /// ECS: reboot after a change.
    pub reboot: Reboot,
    /// Lighthouse: wait for the operation's outcome, at most this long.
    pub wait: Option<Duration>,
}

/// Every policy setting that changes something, as `setting=value` names it (`mappings/coverage.toml`'s
/// `cured_by`).
pub const CURES: [(&str, &str); 3] = [("running", "force-stop"), ("reboot", "if-running"), ("wait", "true")];

impl StatePolicy {
    /// True when the policy has `setting = value` (`running=force-stop`, `reboot=if-running`,
    /// `wait=true`), as `mappings/coverage.toml` names the policy that cures a loss.
    pub fn has(&self, setting: &str, value: &str) -> bool {
        match (setting, value) {
            ("running", "force-stop") => self.running == OnRunning::ForceStop,
            ("reboot", "if-running") => self.reboot == Reboot::IfRunning,
            ("wait", "true") => self.wait.is_some(),
            _ => false,
        }
    }

    /// True when the policy changes nothing.
    pub fn is_default(&self) -> bool {
        *self == StatePolicy::default()
    }
}

/// How long `wait = true` waits by default.
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// The settings as written, each with its offset in the file for errors.
#[derive(Debug, Default)]
pub(super) struct RawPolicy<'a> {
    pub(super) running: Option<(&'a str, usize)>,
    pub(super) reboot: Option<(&'a str, usize)>,
    pub(super) wait: Option<(bool, usize)>,
    pub(super) wait_timeout_ms: Option<(u64, usize)>,
}

/// Checks the settings against the provider they are for; the error is an offset and the problem.
pub(super) fn check(provider: Provider, raw: RawPolicy<'_>) -> Result<StatePolicy, (usize, String)> {
    let only = |setting: &str, at: usize, fits: Provider| -> Result<(), (usize, String)> {
        if provider == fits {
            Ok(())
        } else {
            Err((at, format!("`{setting}` is a {fits} policy; this upstream is {provider}")))
        }
    };
    let mut policy = StatePolicy::default();
    if let Some((value, at)) = raw.running {
        only("running", at, Provider::TencentCvm)?;
        policy.running = match value {
            "refuse" => OnRunning::Refuse,
            "force-stop" => OnRunning::ForceStop,
            other => {
                return Err((at, format!("`running = \"{other}\"` is not known; use \"refuse\" or \"force-stop\"")));
            }
        };
    }
    if let Some((value, at)) = raw.reboot {
        only("reboot", at, Provider::AliyunEcs)?;
        policy.reboot = match value {
            "never" => Reboot::Never,
            "if-running" => Reboot::IfRunning,
            other => return Err((at, format!("`reboot = \"{other}\"` is not known; use \"never\" or \"if-running\""))),
        };
    }
    if let Some((wait, at)) = raw.wait {
        only("wait", at, Provider::TencentLighthouse)?;
        policy.wait = wait.then_some(DEFAULT_WAIT);
    }
    if let Some((ms, at)) = raw.wait_timeout_ms {
        if policy.wait.is_none() {
            return Err((at, "`wait_timeout_ms` applies with `wait = true` only".to_owned()));
        }
        if ms == 0 {
            return Err((at, "`wait_timeout_ms = 0` would never wait; use at least 1".to_owned()));
        }
        policy.wait = Some(Duration::from_millis(ms));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_policy_fits_its_provider_only() {
        let raw = RawPolicy { running: Some(("force-stop", 1)), ..RawPolicy::default() };
        assert_eq!(check(Provider::TencentCvm, raw).unwrap().running, OnRunning::ForceStop);
        let raw = RawPolicy { running: Some(("force-stop", 7)), ..RawPolicy::default() };
        let (at, why) = check(Provider::AliyunEcs, raw).unwrap_err();
        assert_eq!(at, 7);
        assert!(why.contains("tencent-cvm policy"), "{why}");
        let raw = RawPolicy { reboot: Some(("if-running", 1)), ..RawPolicy::default() };
        assert_eq!(check(Provider::AliyunEcs, raw).unwrap().reboot, Reboot::IfRunning);
        let raw = RawPolicy { wait: Some((true, 1)), wait_timeout_ms: Some((5000, 2)), ..RawPolicy::default() };
        assert_eq!(check(Provider::TencentLighthouse, raw).unwrap().wait, Some(Duration::from_secs(5)));
        let raw = RawPolicy { wait_timeout_ms: Some((5000, 2)), ..RawPolicy::default() };
        assert!(check(Provider::TencentLighthouse, raw).unwrap_err().1.contains("wait = true"));
        let raw = RawPolicy { running: Some(("sometimes", 1)), ..RawPolicy::default() };
        assert!(check(Provider::TencentCvm, raw).unwrap_err().1.contains("not known"));
        assert!(check(Provider::TencentCvm, RawPolicy::default()).unwrap().is_default());
    }
}
