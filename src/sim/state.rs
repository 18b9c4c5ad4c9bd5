//! The simulated clouds and their rules: instances, key pairs and bindings per provider, changed only by
//! [`CloudState::apply`] (and the power actions a test needs: [`CloudState::reboot`], [`CloudState::start`],
//! [`CloudState::stop`]).
//!
//! Implements `shared/reference/protocols.md` sections 3.2 and 3.3 (legacy CVM, which reaches the CVM
//! cloud), 4.3 (CVM), 4.4 (Lighthouse), 4.6 and 5.4 (look-ups) and 5.3 (ECS). Limits, id formats and rate
//! limits come from [`Mappings`]; faults carry canonical [`Code`]s only, born
//! [`Source::Upstream`](crate::model::Source::Upstream), so the HTTP side renders them in the provider's
//! dialect like any upstream's error.
//!
//! The rules, with the choices the documentation leaves open:
//!
//! - **CVM** (bind and unbind): all or nothing. Checked in order: both lists given, batch limits, no
//!   duplicates, id formats, every instance and key exists, Linux only, state `STOPPED` (or `RUNNING` with
//!   `ForceStop=true`: force-stopped, changed, started again, so it ends `RUNNING`). Binding makes the
//!   instance's keys exactly the listed keys ("binding replaces the original key"). Unbinding removes the
//!   listed keys; a listed key that is not bound is ignored, since CVM documents no error for it. The
//!   change is synchronous and recorded as the latest operation with state `SUCCESS`.
//! - **Lighthouse**: the same checks (no `ForceStop`), then: no unfinished latest operation, state
//!   `RUNNING` or `STOPPED`, binding a key already bound or unbinding one not bound is refused. The request
//!   succeeds at once with the latest operation `OPERATING`; a `RUNNING` instance shows `STOPPING`. The
//!   change lands when the clock reaches start + the operation delay ([`CloudState::tick`]): keys changed,
//!   state `SUCCESS`, instance `STOPPED`. The docs say a running instance is force-stopped but not that it
//!   is started again, so it stays stopped. Bind and unbind are rate limited per second (10 and 20 by
//!   default, from `mappings/limits.toml`); every request counts, including ones refused later.
//! - **ECS**: one key name (known, or the whole request fails), up to 50 instances, then a result per
//!   instance: unknown or Windows instances fail alone. Any state is accepted. Attaching replaces the bound
//!   key; detaching a key the instance does not have fails for that instance. The change is bound at once
//!   (look-ups show it) but takes effect only at the next reboot (`Running`) or start (`Stopped`):
//!   [`Instance::pending_reboot`] and [`CloudState::effective_key`] show the difference.
//! - **Look-ups**: by ids (unknown ids are absent, malformed ones refused; answered in the order asked) or,
//!   for key pairs, by name: a substring match for Tencent (Lighthouse's `key-name` filter is fuzzy), exact
//!   or with `*` wildcards for ECS. No ids at all lists everything. An instance look-up that also names keys
//!   keeps only instances bound to one of them (ECS `KeyPairName`). Regions are not modelled: each
//!   provider is one region.
//!
//! ```
//! use crossgate::mapping::Mappings;
//! use crossgate::model::{Action, Keys, Operation, Provider};
//! use crossgate::sim::state::{CloudState, Instance, KeyPair};
//! use crossgate::model::OsFamily;
//!
//! let mut cloud = CloudState::new(&Mappings::embedded().unwrap());
//! cloud.add_key_pair(Provider::TencentCvm, KeyPair::tencent("skey-4e5ty7i8", "finance_joshua")).unwrap();
//! let vm = Instance::new("ins-1e4r6y8i", "web-1", OsFamily::Linux, "TencentOS Server 3.1", "STOPPED");
//! cloud.add_instance(Provider::TencentCvm, vm).unwrap();
//!
//! let mut op = Operation::new(Action::AssociateKeys);
//! op.instances = vec!["ins-1e4r6y8i".into()];
//! op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
//! cloud.apply(Provider::TencentCvm, &op, "6EF60BEC-0242-43AF-BB20-270359FB54A7", 0).unwrap();
//! assert_eq!(cloud.instance(Provider::TencentCvm, "ins-1e4r6y8i").unwrap().keys, ["skey-4e5ty7i8"]);
//! ```

use std::collections::{BTreeMap, VecDeque};

use crate::dialect::Dialect;
use crate::mapping::{Charset, IdFormat, Mappings};
use crate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, KeyKind, KeyPairInfo, Keys, Operation, OperationState,
    OsFamily, Outcome, Provider,
};

mod bind;
mod import;
mod lookup;

pub use lookup::wildcard_match;

/// How long a Lighthouse bind or unbind stays `OPERATING` unless configured otherwise.
pub const DEFAULT_OPERATION_DELAY_MS: u64 = 500;

/// The rate limits' window.
const WINDOW_MS: u64 = 1_000;

// === state words ===

/// Instance states as each provider spells them (protocols.md 4.6 and 5.4).
mod words {
    pub(super) const TENCENT_RUNNING: &str = "RUNNING";
    pub(super) const TENCENT_STOPPED: &str = "STOPPED";
    pub(super) const TENCENT_STOPPING: &str = "STOPPING";
    pub(super) const ECS_RUNNING: &str = "Running";
    pub(super) const ECS_STOPPED: &str = "Stopped";
}

/// The two power states the rules care about, in a provider's spelling.
#[derive(Debug, Clone, Copy)]
struct Power {
    running: &'static str,
    stopped: &'static str,
}

fn power(provider: Provider) -> Power {
    match provider {
        Provider::TencentCvm | Provider::TencentLighthouse => {
            Power { running: words::TENCENT_RUNNING, stopped: words::TENCENT_STOPPED }
        }
        Provider::AliyunEcs => Power { running: words::ECS_RUNNING, stopped: words::ECS_STOPPED },
    }
}

// === resources ===

/// A key pair as a cloud keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The id (`skey-...`, `lhkp-...`); for ECS, the name, which is the identity there.
    pub id: String,
    /// The display name (Tencent) or the name (ECS).
    pub name: String,
    /// The public key (OpenSSH form), when known.
    pub public_key: Option<String>,
}

impl KeyPair {
    /// A Tencent key pair: an id and a display name.
    pub fn tencent(id: impl Into<String>, name: impl Into<String>) -> KeyPair {
        KeyPair { id: id.into(), name: name.into(), public_key: None }
    }

    /// An ECS key pair, known by its name alone.
    pub fn ecs(name: impl Into<String>) -> KeyPair {
        let name = name.into();
        KeyPair { id: name.clone(), name, public_key: None }
    }

    /// The same key pair with its public key.
    pub fn with_public_key(mut self, public_key: impl Into<String>) -> KeyPair {
        self.public_key = Some(public_key.into());
        self
    }
}

/// The latest bind or unbind on an instance, as Tencent's `DescribeInstances` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestOperation {
    /// Bind or unbind.
    pub action: Action,
    /// `OPERATING` until the change lands, then `SUCCESS`.
    pub state: OperationState,
    /// The RequestId of the request that started it.
    pub request_id: String,
    /// When it started, on the injected clock.
    pub started_ms: u64,
}

/// A Lighthouse change accepted but not yet landed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingChange {
    due_ms: u64,
    keys: Vec<String>,
}

/// An instance as a cloud keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// The instance id.
    pub id: String,
    /// The display name.
    pub name: String,
    /// OS family: only Linux takes key pairs.
    pub os: OsFamily,
    /// The OS name as the provider reports it.
    pub os_name: String,
    /// The state in the provider's own words (`STOPPED`, `Running`, ...; every one is in `mappings/limits.toml`).
    pub state: String,
    /// Bound key pairs: ids for Tencent, at most one name for ECS. This is what look-ups report.
    pub keys: Vec<String>,
    /// The key pairs in effect in the running system. Equal to `keys` except on ECS between a change and
    /// the next reboot or start.
    pub effective_keys: Vec<String>,
    /// ECS: the bound key differs from the one in effect until the instance is rebooted (`Running`) or
    /// started (`Stopped`).
    pub pending_reboot: bool,
    /// The latest bind or unbind (Tencent).
    pub latest_operation: Option<LatestOperation>,
    pending: Option<PendingChange>,
}

impl Instance {
    /// An instance with no key pairs and no history.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        os: OsFamily,
        os_name: impl Into<String>,
        state: impl Into<String>,
    ) -> Instance {
        Instance {
            id: id.into(),
            name: name.into(),
            os,
            os_name: os_name.into(),
            state: state.into(),
            keys: Vec::new(),
            effective_keys: Vec::new(),
            pending_reboot: false,
            latest_operation: None,
            pending: None,
        }
    }

    /// The same instance with these key pairs bound and in effect.
    pub fn with_keys(mut self, keys: impl IntoIterator<Item = impl Into<String>>) -> Instance {
        self.keys = keys.into_iter().map(Into::into).collect();
        self.effective_keys = self.keys.clone();
        self
    }

    fn is_busy(&self) -> bool {
        self.pending.is_some()
    }

    fn bind_now(&mut self, keys: Vec<String>) {
        self.keys = keys;
        self.effective_keys = self.keys.clone();
        self.pending_reboot = false;
    }

    fn apply_on_boot(&mut self) {
        self.effective_keys = self.keys.clone();
        self.pending_reboot = false;
    }
}

/// A resource that cannot be added to a cloud, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    /// An id that does not have the provider's format.
    #[error("`{id}` is not a valid {provider} {what}; {expected}")]
    MalformedId {
        /// The provider.
        provider: Provider,
        /// "instance id" or "key pair id" / "key pair name".
        what: &'static str,
        /// The offending id.
        id: String,
        /// What the format asks for.
        expected: String,
    },
    /// An id or name used twice.
    #[error("{provider} already has a {what} `{id}`; each must be unique")]
    Duplicate {
        /// The provider.
        provider: Provider,
        /// "instance", "key pair" or "key pair name".
        what: &'static str,
        /// The repeated id or name.
        id: String,
    },
    /// A state the provider does not have.
    #[error("`{state}` is not a {provider} instance state; use one of: {known}")]
    UnknownState {
        /// The provider.
        provider: Provider,
        /// The offending state.
        state: String,
        /// The provider's states, comma-separated.
        known: String,
    },
    /// A bound key pair that the cloud does not have.
    #[error("instance `{instance}` names key pair `{key}`, which {provider} does not have; define the key pair first")]
    UnknownKey {
        /// The provider.
        provider: Provider,
        /// The instance.
        instance: String,
        /// The missing key pair.
        key: String,
    },
    /// Key pairs on an instance that cannot have them, or more than it can have.
    #[error("instance `{instance}` cannot have these key pairs: {why}")]
    KeysNotAllowed {
        /// The instance.
        instance: String,
        /// Why not.
        why: &'static str,
    },
}

// === rules from the mappings ===

/// What one provider allows, read once from the mappings.
#[derive(Debug, Clone)]
struct Rules {
    max_instances: usize,
    max_keys: usize,
    max_lookup_instances: usize,
    max_lookup_keys: usize,
    instance_id: IdFormat,
    key_id: IdFormat,
    key_name: IdFormat,
    associate_per_second: Option<u32>,
    disassociate_per_second: Option<u32>,
    associate_name: String,
    disassociate_name: String,
    states: Vec<String>,
}

impl Rules {
    fn from_mappings(maps: &Mappings, provider: Provider) -> Rules {
        let dialect = Dialect::of_provider(provider);
        let limits = maps.limits(dialect);
        Rules {
            max_instances: limits.instances,
            max_keys: limits.keys,
            max_lookup_instances: limits.lookup_instances,
            max_lookup_keys: limits.lookup_keys,
            instance_id: limits.instance_id.clone(),
            key_id: limits.key_id.clone(),
            key_name: limits.key_name.clone(),
            associate_per_second: limits.requests_per_second,
            disassociate_per_second: limits.disassociate_requests_per_second.or(limits.requests_per_second),
            associate_name: maps.wire_action(dialect, Action::AssociateKeys).to_owned(),
            disassociate_name: maps.wire_action(dialect, Action::DisassociateKeys).to_owned(),
            states: limits.states.clone(),
        }
    }

    fn per_second(&self, action: Action) -> Option<u32> {
        match action {
            Action::AssociateKeys => self.associate_per_second,
            Action::DisassociateKeys => self.disassociate_per_second,
            _ => None,
        }
    }

    fn operation_name(&self, action: Action) -> &str {
        match action {
            Action::DisassociateKeys => &self.disassociate_name,
            _ => &self.associate_name,
        }
    }
}

/// A sliding one-second window of admitted requests.
#[derive(Debug, Clone, Default)]
struct Window {
    admitted: VecDeque<u64>,
}

impl Window {
    fn admit(&mut self, now_ms: u64, per_second: u32) -> bool {
        while self.admitted.front().is_some_and(|&t| now_ms.saturating_sub(t) >= WINDOW_MS) {
            self.admitted.pop_front();
        }
        if self.admitted.len() >= per_second as usize {
            return false;
        }
        self.admitted.push_back(now_ms);
        true
    }
}

// === the clouds ===

/// One provider's cloud.
#[derive(Debug, Clone)]
struct Cloud {
    provider: Provider,
    rules: Rules,
    instances: Vec<Instance>,
    keys: Vec<KeyPair>,
    windows: BTreeMap<Action, Window>,
}

/// Every simulated cloud: CVM, Lighthouse and ECS, each with its instances, key pairs and bindings.
#[derive(Debug, Clone)]
pub struct CloudState {
    cvm: Cloud,
    lighthouse: Cloud,
    ecs: Cloud,
    operation_delay_ms: u64,
}

impl CloudState {
    /// Empty clouds whose limits, id formats and rate limits come from `maps`.
    pub fn new(maps: &Mappings) -> CloudState {
        let cloud = |provider| Cloud {
            provider,
            rules: Rules::from_mappings(maps, provider),
            instances: Vec::new(),
            keys: Vec::new(),
            windows: BTreeMap::new(),
        };
        CloudState {
            cvm: cloud(Provider::TencentCvm),
            lighthouse: cloud(Provider::TencentLighthouse),
            ecs: cloud(Provider::AliyunEcs),
            operation_delay_ms: DEFAULT_OPERATION_DELAY_MS,
        }
    }

    /// How long a Lighthouse bind or unbind stays `OPERATING`.
    pub fn operation_delay_ms(&self) -> u64 {
        self.operation_delay_ms
    }

    /// Sets how long a Lighthouse bind or unbind stays `OPERATING` (for operations started afterwards).
    pub fn set_operation_delay_ms(&mut self, delay_ms: u64) {
        self.operation_delay_ms = delay_ms;
    }

    fn cloud(&self, provider: Provider) -> &Cloud {
        match provider {
            Provider::TencentCvm => &self.cvm,
            Provider::TencentLighthouse => &self.lighthouse,
            Provider::AliyunEcs => &self.ecs,
        }
    }

    fn cloud_mut(&mut self, provider: Provider) -> &mut Cloud {
        match provider {
            Provider::TencentCvm => &mut self.cvm,
            Provider::TencentLighthouse => &mut self.lighthouse,
            Provider::AliyunEcs => &mut self.ecs,
        }
    }

    /// Adds a key pair, checking its id (or ECS name) format and uniqueness.
    pub fn add_key_pair(&mut self, provider: Provider, key: KeyPair) -> Result<(), ResourceError> {
        let cloud = self.cloud_mut(provider);
        let (what, name_what) = match provider.key_kind() {
            KeyKind::Id => ("key pair id", "key pair name"),
            KeyKind::Name => ("key pair name", "key pair name"),
        };
        if !cloud.rules.key_id.matches(&key.id) || (provider.key_kind() == KeyKind::Name && key.id != key.name) {
            let expected = describe_format(&cloud.rules.key_id);
            return Err(ResourceError::MalformedId { provider, what, id: key.id, expected });
        }
        if cloud.keys.iter().any(|k| k.id == key.id) {
            return Err(ResourceError::Duplicate { provider, what: "key pair", id: key.id });
        }
        if cloud.keys.iter().any(|k| k.name == key.name) {
            return Err(ResourceError::Duplicate { provider, what: name_what, id: key.name });
        }
        cloud.keys.push(key);
        Ok(())
    }

    /// Adds an instance, checking its id format, uniqueness, state and key pairs (which must exist, and
    /// may not be given to Windows; ECS binds one at most).
    pub fn add_instance(&mut self, provider: Provider, mut instance: Instance) -> Result<(), ResourceError> {
        let cloud = self.cloud_mut(provider);
        if !cloud.rules.instance_id.matches(&instance.id) {
            let expected = describe_format(&cloud.rules.instance_id);
            return Err(ResourceError::MalformedId { provider, what: "instance id", id: instance.id, expected });
        }
        if cloud.find(&instance.id).is_some() {
            return Err(ResourceError::Duplicate { provider, what: "instance", id: instance.id });
        }
        let known = &cloud.rules.states;
        if !known.contains(&instance.state) {
            return Err(ResourceError::UnknownState { provider, state: instance.state, known: known.join(", ") });
        }
        let bound = instance.keys.iter().chain(&instance.effective_keys);
        if let Some(key) = bound.clone().find(|k| !cloud.keys.iter().any(|kp| &kp.id == *k)) {
            return Err(ResourceError::UnknownKey { provider, instance: instance.id, key: key.clone() });
        }
        let why = if instance.os == OsFamily::Windows && bound.clone().next().is_some() {
            Some("Windows instances do not support key pairs")
        } else if provider == Provider::AliyunEcs && (instance.keys.len() > 1 || instance.effective_keys.len() > 1) {
            Some("an ECS instance has one key pair at most")
        } else if has_duplicates(&instance.keys) {
            Some("a key pair is listed twice")
        } else {
            None
        };
        if let Some(why) = why {
            return Err(ResourceError::KeysNotAllowed { instance: instance.id, why });
        }
        instance.pending_reboot = instance.keys != instance.effective_keys;
        cloud.instances.push(instance);
        Ok(())
    }

    /// One instance, if the provider has it.
    pub fn instance(&self, provider: Provider, id: &str) -> Option<&Instance> {
        self.cloud(provider).find(id).map(|i| &self.cloud(provider).instances[i])
    }

    /// Every instance of a provider, in the order they were added.
    pub fn instances(&self, provider: Provider) -> &[Instance] {
        &self.cloud(provider).instances
    }

    /// Every key pair of a provider, in the order they were added.
    pub fn key_pairs(&self, provider: Provider) -> &[KeyPair] {
        &self.cloud(provider).keys
    }

    /// The key pair in effect on an instance (ECS: the one bound before the last change, until a reboot
    /// or start); `None` when none is, or the instance is unknown.
    pub fn effective_key(&self, provider: Provider, instance: &str) -> Option<&str> {
        self.instance(provider, instance)?.effective_keys.first().map(String::as_str)
    }

    /// Applies one canonical operation as the provider would, at `now_ms` on the caller's clock.
    ///
    /// Due asynchronous operations complete first ([`CloudState::tick`]). A refused request changes
    /// nothing except the rate-limit window it was counted in.
    pub fn apply(
        &mut self,
        provider: Provider,
        op: &Operation,
        request_id: &str,
        now_ms: u64,
    ) -> Result<Outcome, Fault> {
        self.tick(now_ms);
        let delay_ms = self.operation_delay_ms;
        let cloud = self.cloud_mut(provider);
        let answer = match op.action {
            Action::DescribeKeys => Answer::KeyPairs(cloud.describe_keys(&op.keys)?),
            Action::DescribeInstances => Answer::Instances(cloud.describe_instances(op)?),
            Action::AssociateKeys | Action::DisassociateKeys => {
                cloud.admit(op.action, now_ms)?;
                let started = Started { request_id, now_ms, delay_ms };
                match provider {
                    Provider::TencentCvm => cloud.bind_cvm(op, &started)?,
                    Provider::TencentLighthouse => cloud.bind_lighthouse(op, &started)?,
                    Provider::AliyunEcs => cloud.bind_ecs(op)?,
                }
            }
            Action::ImportKey => Answer::Imported(cloud.import_key(op)?),
            Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
                self.power_all(provider, op, now_ms)?;
                Answer::Done
            }
        };
        Ok(Outcome { request_id: request_id.to_owned(), answer })
    }

    /// Completes every asynchronous operation due at `now_ms`: keys changed, state `SUCCESS`, and a
    /// force-stopped Lighthouse instance `STOPPED`.
    pub fn tick(&mut self, now_ms: u64) {
        for cloud in [&mut self.cvm, &mut self.lighthouse, &mut self.ecs] {
            let stopped = power(cloud.provider).stopped;
            for instance in &mut cloud.instances {
                let Some(change) = instance.pending.take_if(|p| p.due_ms <= now_ms) else {
                    continue;
                };
                instance.bind_now(change.keys);
                instance.state = stopped.to_owned();
                if let Some(latest) = &mut instance.latest_operation {
                    latest.state = OperationState::Success;
                }
            }
        }
    }

    /// Starts, stops or reboots every instance of `op`, all or nothing: checked on a copy first.
    fn power_all(&mut self, provider: Provider, op: &Operation, now_ms: u64) -> Result<(), Fault> {
        within(op.instances.len(), self.cloud(provider).rules.max_instances, "instances")?;
        unique(&op.instances, "instance id")?;
        let before = self.cloud(provider).clone();
        for id in &op.instances {
            let done = match op.action {
                Action::StartInstances => self.start(provider, id, now_ms),
                Action::StopInstances => self.stop(provider, id, now_ms),
                _ => self.reboot(provider, id, now_ms),
            };
            if let Err(fault) = done {
                *self.cloud_mut(provider) = before;
                return Err(fault);
            }
        }
        Ok(())
    }

    /// Reboots a running instance; on ECS a changed key pair takes effect.
    pub fn reboot(&mut self, provider: Provider, instance: &str, now_ms: u64) -> Result<(), Fault> {
        let words = power(provider);
        let vm = self.power_target(provider, instance, words.running, now_ms)?;
        vm.apply_on_boot();
        Ok(())
    }

    /// Starts a stopped instance; on ECS a changed key pair takes effect.
    pub fn start(&mut self, provider: Provider, instance: &str, now_ms: u64) -> Result<(), Fault> {
        let words = power(provider);
        let vm = self.power_target(provider, instance, words.stopped, now_ms)?;
        vm.state = words.running.to_owned();
        vm.apply_on_boot();
        Ok(())
    }

    /// Stops a running instance.
    pub fn stop(&mut self, provider: Provider, instance: &str, now_ms: u64) -> Result<(), Fault> {
        let words = power(provider);
        let vm = self.power_target(provider, instance, words.running, now_ms)?;
        vm.state = words.stopped.to_owned();
        Ok(())
    }

    /// The instance a power action applies to, if it exists, is idle and is in `required` state.
    fn power_target(
        &mut self,
        provider: Provider,
        id: &str,
        required: &str,
        now_ms: u64,
    ) -> Result<&mut Instance, Fault> {
        self.tick(now_ms);
        let cloud = self.cloud_mut(provider);
        let index = cloud.find(id).ok_or_else(|| instance_not_found(id))?;
        let vm = &mut cloud.instances[index];
        if vm.is_busy() {
            return Err(operation_in_progress(vm));
        }
        if vm.state != required {
            let message = format!("The instance `{id}` is {}; this needs it {required}.", vm.state);
            return Err(fault(Code::InvalidInstanceState, message).with_detail(vm.state.clone()));
        }
        Ok(vm)
    }
}

/// What a bind or unbind needs to record when it started.
#[derive(Debug, Clone, Copy)]
struct Started<'a> {
    request_id: &'a str,
    now_ms: u64,
    delay_ms: u64,
}

// === impl Cloud: basics ===

impl Cloud {
    fn find(&self, id: &str) -> Option<usize> {
        self.instances.iter().position(|i| i.id == id)
    }

    fn has_key(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Counts a bind or unbind against the provider's rate limit for it.
    fn admit(&mut self, action: Action, now_ms: u64) -> Result<(), Fault> {
        let Some(per_second) = self.rules.per_second(action) else {
            return Ok(());
        };
        if self.windows.entry(action).or_default().admit(now_ms, per_second) {
            return Ok(());
        }
        let message = format!("At most {per_second} requests per second are allowed for this action.");
        Err(fault(Code::Throttled, message))
    }
}

// === helpers ===

/// A fault as the cloud says it.
fn fault(code: Code, message: impl Into<std::borrow::Cow<'static, str>>) -> Fault {
    Fault::upstream(code, message, None)
}

fn instance_not_found(id: &str) -> Fault {
    fault(Code::InstanceNotFound, format!("The instance `{id}` does not exist."))
}

fn key_not_found(id: &str) -> Fault {
    fault(Code::KeyNotFound, format!("The key pair `{id}` does not exist."))
}

fn operation_in_progress(vm: &Instance) -> Fault {
    let request = vm.latest_operation.as_ref().map_or("", |l| l.request_id.as_str());
    let message = format!("The latest operation on the instance `{}` (request {request}) has not finished.", vm.id);
    fault(Code::OperationInProgress, message)
}

fn require(values: &[String], what: &str) -> Result<(), Fault> {
    if values.is_empty() {
        return Err(fault(Code::MissingParameter, format!("At least one {what} must be named.")));
    }
    Ok(())
}

fn within(count: usize, max: usize, what: &str) -> Result<(), Fault> {
    if count > max {
        return Err(fault(
            Code::LimitExceeded,
            format!("{count} {what} named; at most {max} are allowed per request."),
        ));
    }
    Ok(())
}

fn unique(values: &[String], what: &str) -> Result<(), Fault> {
    if let Some(repeated) = values.iter().enumerate().find_map(|(i, v)| values[..i].contains(v).then_some(v)) {
        return Err(fault(Code::DuplicateValues, format!("The {what} contain `{repeated}` more than once.")));
    }
    Ok(())
}

fn well_formed(values: &[String], format: &IdFormat, code: Code, what: &str) -> Result<(), Fault> {
    if let Some(bad) = values.iter().find(|v| !format.matches(v)) {
        return Err(fault(code, format!("`{bad}` is not a valid {what}; {}.", describe_format(format))));
    }
    Ok(())
}

fn has_duplicates(values: &[String]) -> bool {
    values.iter().enumerate().any(|(i, v)| values[..i].contains(v))
}

/// The values in order, each once.
fn dedup(values: &[String]) -> impl Iterator<Item = &String> {
    values.iter().enumerate().filter(|(i, v)| !values[..*i].contains(v)).map(|(_, v)| v)
}

fn describe_format(format: &IdFormat) -> String {
    let length = if format.min_len == format.max_len {
        format!("{}", format.min_len)
    } else {
        format!("{} to {}", format.min_len, format.max_len)
    };
    let chars = match format.charset {
        Charset::LowerAlnum => "lower-case letters and digits",
        Charset::KeyName => "characters: a letter, then letters, digits, `:`, `_`, `.` or `-`",
        Charset::Word => "letters, digits or `_`",
    };
    if format.prefix.is_empty() {
        format!("expected {length} {chars}")
    } else {
        format!("expected `{}` and {length} {chars}", format.prefix)
    }
}

#[cfg(test)]
mod tests {
    //! Rules shared by every provider; the fixtures the binding and look-up tests use.

    use super::*;
    use crate::model::Source;
    use crate::sim::seed;

    pub(super) const CVM: Provider = Provider::TencentCvm;
    pub(super) const LH: Provider = Provider::TencentLighthouse;
    pub(super) const ECS: Provider = Provider::AliyunEcs;

    pub(super) fn op(action: Action, instances: &[&str], keys: Keys) -> Operation {
        let mut op = Operation::new(action);
        op.instances = instances.iter().map(|s| s.to_string()).collect();
        op.keys = keys;
        op
    }

    pub(super) fn ids(keys: &[&str]) -> Keys {
        Keys::Ids(keys.iter().map(|s| s.to_string()).collect())
    }

    pub(super) fn names(keys: &[&str]) -> Keys {
        Keys::Names(keys.iter().map(|s| s.to_string()).collect())
    }

    pub(super) fn bind(instances: &[&str], keys: Keys) -> Operation {
        op(Action::AssociateKeys, instances, keys)
    }

    pub(super) fn unbind(instances: &[&str], keys: Keys) -> Operation {
        op(Action::DisassociateKeys, instances, keys)
    }

    /// Applies an operation that must be refused; checks that the refusal is the cloud's and that nothing
    /// but the rate-limit window changed.
    pub(super) fn refused(cloud: &mut CloudState, provider: Provider, op: &Operation) -> Fault {
        let before = cloud.instances(provider).to_vec();
        let fault = cloud.apply(provider, op, "req-refused", 0).unwrap_err();
        assert_eq!(fault.source(), Source::Upstream, "{fault}");
        assert_eq!(cloud.instances(provider), before.as_slice(), "a refused request changed state: {fault}");
        fault
    }

    pub(super) fn keys_of<'a>(cloud: &'a CloudState, provider: Provider, id: &str) -> &'a [String] {
        &cloud.instance(provider, id).unwrap().keys
    }

    pub(super) fn state_of<'a>(cloud: &'a CloudState, provider: Provider, id: &str) -> &'a str {
        &cloud.instance(provider, id).unwrap().state
    }

    pub(super) fn results(outcome: &Outcome) -> Vec<(&str, Result<(), Code>)> {
        let Answer::Bind(results) = &outcome.answer else { panic!("not a bind answer: {outcome:?}") };
        results.iter().map(|r| (r.instance.as_str(), r.result.as_ref().map(|_| ()).map_err(Fault::code))).collect()
    }

    pub(super) fn instances_info(
        cloud: &mut CloudState,
        provider: Provider,
        ids: &[&str],
        now_ms: u64,
    ) -> Vec<InstanceInfo> {
        let outcome =
            cloud.apply(provider, &op(Action::DescribeInstances, ids, Keys::none()), "req-d", now_ms).unwrap();
        let Answer::Instances(found) = outcome.answer else { panic!("not an instances answer") };
        found
    }

    pub(super) fn key_infos(cloud: &mut CloudState, provider: Provider, keys: Keys) -> Result<Vec<KeyPairInfo>, Fault> {
        let outcome = cloud.apply(provider, &op(Action::DescribeKeys, &[], keys), "req-k", 0)?;
        let Answer::KeyPairs(found) = outcome.answer else { panic!("not a key pairs answer") };
        Ok(found)
    }

    pub(super) fn many(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:08}")).collect()
    }

    // === rate limits ===

    #[test]
    fn lighthouse_rate_limits_per_action_in_a_sliding_second() {
        let mut cloud = seed::demo();
        // Refused requests count too: the limit sits in front of the rules.
        let doomed = bind(&["lhins-00000000"], ids(&["lhkp-f7rjie1q"]));
        for t in 0..10 {
            let fault = cloud.apply(LH, &doomed, "r", 1_000 + t * 10).unwrap_err();
            assert_eq!(fault.code(), Code::InstanceNotFound, "request {t}");
        }
        let fault = cloud.apply(LH, &doomed, "r", 1_999).unwrap_err();
        assert_eq!(fault.code(), Code::Throttled);
        assert_eq!(fault.source(), Source::Upstream);
        // Unbinding has its own window, of 20.
        let doomed_unbind = unbind(&["lhins-00000000"], ids(&["lhkp-f7rjie1q"]));
        for t in 0..20 {
            assert_eq!(cloud.apply(LH, &doomed_unbind, "r", 1_999).unwrap_err().code(), Code::InstanceNotFound, "{t}");
        }
        assert_eq!(cloud.apply(LH, &doomed_unbind, "r", 1_999).unwrap_err().code(), Code::Throttled);
        // Look-ups are not limited.
        for _ in 0..30 {
            instances_info(&mut cloud, LH, &[], 1_999);
        }
        // The first bind left the window at 2000: one slot is free again, and only one.
        assert_eq!(cloud.apply(LH, &doomed, "r", 2_000).unwrap_err().code(), Code::InstanceNotFound);
        assert_eq!(cloud.apply(LH, &doomed, "r", 2_000).unwrap_err().code(), Code::Throttled);
        // A throttled request is not counted: the second slot frees at 2010.
        assert_eq!(cloud.apply(LH, &doomed, "r", 2_010).unwrap_err().code(), Code::InstanceNotFound);
    }

    #[test]
    fn lighthouse_rate_limits_come_from_the_mappings() {
        let maps = Mappings::embedded().unwrap();
        let rules = Rules::from_mappings(&maps, LH);
        assert_eq!((rules.associate_per_second, rules.disassociate_per_second), (Some(10), Some(20)));
        let rules = Rules::from_mappings(&maps, CVM);
        assert_eq!((rules.associate_per_second, rules.disassociate_per_second), (None, None));
    }

    #[test]
    fn cvm_is_not_rate_limited_when_the_mappings_give_no_limit() {
        let mut cloud = seed::demo();
        for _ in 0..50 {
            cloud.apply(CVM, &bind(&["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"])), "r", 0).unwrap();
        }
    }

    // === resources ===

    #[test]
    fn resources_are_checked_when_added() {
        let maps = Mappings::embedded().unwrap();
        let mut cloud = CloudState::new(&maps);
        cloud.add_key_pair(CVM, KeyPair::tencent("skey-4e5ty7i8", "a")).unwrap();
        let linux = |id: &str, state: &str| Instance::new(id, id, OsFamily::Linux, "Linux", state);
        let cases: Vec<(Result<(), ResourceError>, &str)> = vec![
            (cloud.add_key_pair(CVM, KeyPair::tencent("skey-1122", "b")), "not a valid"),
            (cloud.add_key_pair(CVM, KeyPair::tencent("skey-4e5ty7i8", "b")), "already has a key pair"),
            (cloud.add_key_pair(CVM, KeyPair::tencent("skey-00000000", "a")), "already has a key pair name"),
            (cloud.add_key_pair(ECS, KeyPair::ecs("1bad")), "not a valid aliyun-ecs key pair name"),
            (cloud.add_instance(CVM, linux("ins-1122", "STOPPED")), "not a valid tencent-cvm instance id"),
            (cloud.add_instance(CVM, linux("ins-00000000", "Stopped")), "not a tencent-cvm instance state"),
            (cloud.add_instance(ECS, linux("i-abc", "STOPPED")), "not a aliyun-ecs instance state"),
            (
                cloud.add_instance(CVM, linux("ins-00000000", "STOPPED").with_keys(["skey-11112222"])),
                "define the key pair",
            ),
            (
                cloud.add_instance(CVM, linux("ins-00000000", "STOPPED").with_keys(["skey-4e5ty7i8", "skey-4e5ty7i8"])),
                "listed twice",
            ),
        ];
        for (result, expected) in cases {
            let e = result.unwrap_err().to_string();
            assert!(e.contains(expected), "{e} should contain {expected}");
        }
        let windows =
            Instance::new("ins-00000001", "w", OsFamily::Windows, "Windows", "STOPPED").with_keys(["skey-4e5ty7i8"]);
        assert!(matches!(cloud.add_instance(CVM, windows), Err(ResourceError::KeysNotAllowed { .. })));
        cloud.add_key_pair(ECS, KeyPair::ecs("a1")).unwrap();
        cloud.add_key_pair(ECS, KeyPair::ecs("a2")).unwrap();
        let two = Instance::new("i-abc", "x", OsFamily::Linux, "Linux", "Running").with_keys(["a1", "a2"]);
        assert!(matches!(cloud.add_instance(ECS, two), Err(ResourceError::KeysNotAllowed { .. })));
        cloud.add_instance(CVM, linux("ins-00000000", "STOPPED")).unwrap();
        let dup = cloud.add_instance(CVM, linux("ins-00000000", "STOPPED")).unwrap_err();
        assert!(matches!(dup, ResourceError::Duplicate { what: "instance", .. }), "{dup}");
    }

    #[test]
    fn power_actions_respect_state_and_unfinished_operations() {
        let mut cloud = seed::demo();
        let fault = cloud.start(CVM, "ins-w34e5rl9", 0).unwrap_err();
        assert_eq!((fault.code(), fault.detail()), (Code::InvalidInstanceState, Some("RUNNING")));
        cloud.stop(CVM, "ins-w34e5rl9", 0).unwrap();
        assert_eq!(state_of(&cloud, CVM, "ins-w34e5rl9"), "STOPPED");
        cloud.apply(LH, &bind(&["lhins-3k9d8f7s"], ids(&["lhkp-f7rjie1q"])), "r", 0).unwrap();
        assert_eq!(cloud.start(LH, "lhins-3k9d8f7s", 10).unwrap_err().code(), Code::OperationInProgress);
        cloud.start(LH, "lhins-3k9d8f7s", 500).unwrap();
        assert_eq!(state_of(&cloud, LH, "lhins-3k9d8f7s"), "RUNNING");
        assert_eq!(keys_of(&cloud, LH, "lhins-3k9d8f7s"), ["lhkp-f7rjie1q"]);
    }

    #[test]
    fn the_mapped_states_include_what_the_rules_use() {
        let maps = Mappings::embedded().unwrap();
        let states = |p: Provider| maps.limits(crate::dialect::Dialect::of_provider(p)).states.clone();
        for provider in Provider::ALL {
            let words = power(provider);
            assert!(states(provider).iter().any(|s| s == words.running), "{provider}");
            assert!(states(provider).iter().any(|s| s == words.stopped), "{provider}");
            // The policies read running and stopped from the tables: the same words as the rules here.
            let limits = maps.limits(crate::dialect::Dialect::of_provider(provider));
            assert_eq!((limits.running_state.as_str(), limits.stopped_state.as_str()), (words.running, words.stopped));
        }
        assert!(states(LH).iter().any(|s| s == words::TENCENT_STOPPING));
    }
}
