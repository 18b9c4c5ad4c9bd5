//! The canonical model: the operations crossgate speaks and their outcomes, independent of any dialect.
//!
//! Every codec in [`crate::dialect`] decodes into these types and encodes from them; translation between
//! dialects always passes through here. Nothing in this module knows a wire name: action names, error
//! codes and limits live in `mappings/` and reach the codecs through [`crate::mapping::Mappings`].
//!
//! Faults are born typed ([`Fault::caller`], [`Fault::upstream`], [`Fault::gateway`]) and record whose
//! fault they are ([`Source`]), so that one table per dialect can render them and the audit log can tell a
//! caller's mistake from an upstream's refusal.

use std::borrow::Cow;
use std::fmt;

/// A provider that crossgate can forward to (and simulate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// Tencent Cloud CVM, API 3.0 version 2017-03-12.
    TencentCvm,
    /// Tencent Cloud Lighthouse, API 3.0 version 2020-03-24.
    TencentLighthouse,
    /// Alibaba Cloud ECS, RPC version 2014-05-26.
    AliyunEcs,
}

impl Provider {
    /// Every provider, in a stable order.
    pub const ALL: [Provider; 3] = [Provider::TencentCvm, Provider::TencentLighthouse, Provider::AliyunEcs];

    /// The name used in config files, mappings and audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Provider::TencentCvm => "tencent-cvm",
            Provider::TencentLighthouse => "tencent-lighthouse",
            Provider::AliyunEcs => "aliyun-ecs",
        }
    }

    /// Parses a provider name as written in config files.
    pub fn from_name(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// How the provider refers to key pairs: Tencent by id, Alibaba by name.
    pub fn key_kind(self) -> KeyKind {
        match self {
            Provider::TencentCvm | Provider::TencentLighthouse => KeyKind::Id,
            Provider::AliyunEcs => KeyKind::Name,
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dialect, as a caller speaks it and as an error table renders it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// Tencent legacy API 2.0 endpoint `/v2/index.php` (new-style and old-style actions).
    TencentV2,
    /// Tencent Cloud API 3.0, CVM (2017-03-12).
    TencentCvm,
    /// Tencent Cloud API 3.0, Lighthouse (2020-03-24).
    TencentLighthouse,
    /// Alibaba Cloud ECS RPC (2014-05-26).
    AliyunEcs,
}

impl Dialect {
    /// Every dialect, in a stable order.
    pub const ALL: [Dialect; 4] =
        [Dialect::TencentV2, Dialect::TencentCvm, Dialect::TencentLighthouse, Dialect::AliyunEcs];

    /// The name used in mappings file names, config and audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::TencentV2 => "tencent_v2",
            Dialect::TencentCvm => "tencent_cvm",
            Dialect::TencentLighthouse => "tencent_lighthouse",
            Dialect::AliyunEcs => "aliyun_ecs",
        }
    }

    /// Parses a dialect name.
    pub fn from_name(name: &str) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| d.name() == name)
    }

    /// The dialect an upstream provider speaks.
    pub fn of_provider(provider: Provider) -> Dialect {
        match provider {
            Provider::TencentCvm => Dialect::TencentCvm,
            Provider::TencentLighthouse => Dialect::TencentLighthouse,
            Provider::AliyunEcs => Dialect::AliyunEcs,
        }
    }

    /// The provider this dialect addresses natively (the legacy endpoint is CVM's).
    pub fn provider(self) -> Provider {
        match self {
            Dialect::TencentV2 | Dialect::TencentCvm => Provider::TencentCvm,
            Dialect::TencentLighthouse => Provider::TencentLighthouse,
            Dialect::AliyunEcs => Provider::AliyunEcs,
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which family of actions a legacy v2 request uses: they answer in different shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Style {
    /// `{"Response": {...}}` (API 3.0 and the legacy new-style actions).
    #[default]
    New,
    /// `{"code": 0, "message": "", "codeDesc": ...}` (legacy `BindInstanceKey` / `UnBindInstanceKey`).
    Old,
}

/// What an operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Bind key pairs to instances.
    AssociateKeys,
    /// Unbind key pairs from instances.
    DisassociateKeys,
    /// Look key pairs up by id or by name.
    DescribeKeys,
    /// Look instances up by id: OS, state, bound keys, latest operation.
    DescribeInstances,
    /// Import a public key as a key pair (key replication).
    ImportKey,
    /// Start stopped instances (a state policy's step).
    StartInstances,
    /// Stop running instances, forcibly (a state policy's step).
    StopInstances,
    /// Reboot running instances (a state policy's step).
    RebootInstances,
}

impl Action {
    /// Every action, in a stable order.
    pub const ALL: [Action; 8] = [
        Action::AssociateKeys,
        Action::DisassociateKeys,
        Action::DescribeKeys,
        Action::DescribeInstances,
        Action::ImportKey,
        Action::StartInstances,
        Action::StopInstances,
        Action::RebootInstances,
    ];

    /// The actions callers send through the gateway; the others are steps crossgate itself takes
    /// upstream (replication and state policies), which the simulator serves.
    pub const CALLER: [Action; 4] =
        [Action::AssociateKeys, Action::DisassociateKeys, Action::DescribeKeys, Action::DescribeInstances];

    /// The canonical name used in mappings and audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Action::AssociateKeys => "associate_keys",
            Action::DisassociateKeys => "disassociate_keys",
            Action::DescribeKeys => "describe_keys",
            Action::DescribeInstances => "describe_instances",
            Action::ImportKey => "import_key",
            Action::StartInstances => "start_instances",
            Action::StopInstances => "stop_instances",
            Action::RebootInstances => "reboot_instances",
        }
    }

    /// Parses a canonical action name.
    pub fn from_name(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// True for the actions that change state (everything but the look-ups).
    pub fn is_mutation(self) -> bool {
        !matches!(self, Action::DescribeKeys | Action::DescribeInstances)
    }

    /// True for the actions callers may send (see [`Action::CALLER`]).
    pub fn is_for_callers(self) -> bool {
        Action::CALLER.contains(&self)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a dialect names key pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    /// Opaque ids such as `skey-4e5ty7i8` or `lhkp-f7rjie1q` (Tencent).
    Id,
    /// Names such as `FinanceJoshuaV25` (Alibaba).
    Name,
}

/// The key pairs an operation names, as ids or as names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Keys {
    /// Key pair ids (Tencent).
    Ids(Vec<String>),
    /// Key pair names (Alibaba; one for a bind, a name filter for a look-up).
    Names(Vec<String>),
}

impl Keys {
    /// No keys at all.
    pub fn none() -> Keys {
        Keys::Ids(Vec::new())
    }

    /// The key references, whatever their kind.
    pub fn as_slice(&self) -> &[String] {
        match self {
            Keys::Ids(v) | Keys::Names(v) => v,
        }
    }

    /// Whether these are ids or names.
    pub fn kind(&self) -> KeyKind {
        match self {
            Keys::Ids(_) => KeyKind::Id,
            Keys::Names(_) => KeyKind::Name,
        }
    }

    /// True when no key is named.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl Default for Keys {
    fn default() -> Self {
        Keys::none()
    }
}

/// One canonical operation, as decoded from a caller or to be encoded for an upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Operation {
    /// What to do.
    pub action: Action,
    /// The region the caller named, if any.
    pub region: Option<String>,
    /// Instance ids, in the caller's order.
    pub instances: Vec<String>,
    /// Key pairs, by id or by name.
    pub keys: Keys,
    /// CVM's `ForceStop`: `None` when the caller did not say.
    pub force_stop: Option<bool>,
    /// The public key to import (OpenSSH form, `ssh-ed25519 AAAA... comment`); the key's name is in
    /// `keys`.
    pub public_key: Option<String>,
    /// The page a key look-up sent upstream asks for; `None` asks for the first page of the dialect's
    /// largest size. Decoders leave it `None`: a caller's own paging is answered from the whole answer
    /// (see [`crate::dialect::Reply::page`]).
    pub page: Option<Page>,
}

impl Operation {
    /// An operation with no instances, no keys and no options.
    pub fn new(action: Action) -> Operation {
        Operation {
            action,
            region: None,
            instances: Vec::new(),
            keys: Keys::none(),
            force_stop: None,
            public_key: None,
            page: None,
        }
    }
}

/// One page of a look-up's answer: at most `limit` entries, after skipping `offset` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Page {
    /// How many entries come before the page.
    pub offset: usize,
    /// The most entries on the page.
    pub limit: usize,
}

impl Page {
    /// The entries of `all` that fall on this page.
    pub fn of<'a, T>(&self, all: &'a [T]) -> &'a [T] {
        let start = self.offset.min(all.len());
        let end = start.saturating_add(self.limit).min(all.len());
        &all[start..end]
    }
}

/// The operating system family of an instance, as far as key pairs care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OsFamily {
    /// Linux and other Unix-likes: key pairs supported.
    Linux,
    /// Windows: key pairs refused.
    Windows,
}

/// The state of the latest asynchronous operation on an instance (Lighthouse, CVM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperationState {
    /// Still running.
    Operating,
    /// Finished successfully.
    Success,
    /// Finished with a failure.
    Failed,
}

/// What a look-up learns about one key pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPairInfo {
    /// The key's id (Tencent); for Alibaba, equal to the name.
    pub id: String,
    /// The key's name.
    pub name: String,
    /// Instances the key is bound to, when the provider reports them.
    pub instances: Vec<String>,
    /// The public key, when the provider reports it (Tencent always; ECS when asked).
    pub public_key: Option<String>,
    /// The fingerprint the provider reports (ECS: MD5, colon-separated hex).
    pub fingerprint: Option<String>,
}

/// What a look-up learns about one instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InstanceInfo {
    /// The instance id.
    pub id: String,
    /// OS family.
    pub os: OsFamily,
    /// The OS name as the provider reports it (CVM `OsName`, ECS `OSName`).
    pub os_name: String,
    /// The state in the provider's own words (`STOPPED`, `Running`, ...).
    pub state: String,
    /// Key pairs bound to it: ids for Tencent, the name for Alibaba.
    pub keys: Vec<String>,
    /// The latest operation's action name, if the provider reports one.
    pub latest_operation: Option<String>,
    /// The latest operation's state, if the provider reports one.
    pub latest_operation_state: Option<OperationState>,
    /// The RequestId that started the latest operation.
    pub latest_operation_request_id: Option<String>,
}

/// The result for one instance of a bind or unbind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceResult {
    /// The instance id, as the dialect that produced this result names it.
    pub instance: String,
    /// Success, or the fault for this instance alone.
    pub result: Result<(), Fault>,
}

/// What a successful request produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Bind or unbind: one result per instance (a Tencent success means every instance succeeded).
    Bind(Vec<InstanceResult>),
    /// DescribeKeys: the key pairs found.
    KeyPairs(Vec<KeyPairInfo>),
    /// DescribeInstances: the instances found.
    Instances(Vec<InstanceInfo>),
    /// ImportKey: the key pair made.
    Imported(KeyPairInfo),
    /// Start, stop or reboot: accepted for every instance named.
    Done,
}

/// The outcome of an operation that was processed (possibly with per-instance failures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The RequestId that answered (the gateway's own when rendered to a caller).
    pub request_id: String,
    /// What the request produced.
    pub answer: Answer,
}

impl Outcome {
    /// The first per-instance failure, if any.
    pub fn first_failure(&self) -> Option<(&str, &Fault)> {
        match &self.answer {
            Answer::Bind(results) => results.iter().find_map(|r| match &r.result {
                Err(f) => Some((r.instance.as_str(), f)),
                Ok(()) => None,
            }),
            _ => None,
        }
    }
}

/// Whose fault a failure is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The caller sent something wrong (bad parameter, bad signature, over a limit).
    Caller,
    /// The upstream refused or failed.
    Upstream,
    /// The gateway itself failed.
    Gateway,
}

impl Source {
    /// The name used in audit lines.
    pub fn name(self) -> &'static str {
        match self {
            Source::Caller => "caller",
            Source::Upstream => "upstream",
            Source::Gateway => "gateway",
        }
    }
}

macro_rules! codes {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// The canonical error kinds. Each dialect renders every one of them through `mappings/errors/`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($(#[$doc])* $variant,)* }

        impl Code {
            /// Every code, in a stable order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The snake_case name used in `mappings/errors/*.toml` and audit lines.
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }
        }
    };
}

codes! {
    /// A required parameter is absent.
    MissingParameter => "missing_parameter",
    /// A parameter is malformed: wrong type, bad list grammar, duplicated, invalid UTF-8.
    InvalidParameter => "invalid_parameter",
    /// A parameter is well formed but its value is not acceptable.
    InvalidParameterValue => "invalid_parameter_value",
    /// An instance id does not have the provider's format.
    MalformedInstanceId => "malformed_instance_id",
    /// A key pair id or name does not have the provider's format.
    MalformedKeyId => "malformed_key_id",
    /// More values than the dialect or provider allows.
    LimitExceeded => "limit_exceeded",
    /// The same value appears twice in a list.
    DuplicateValues => "duplicate_values",
    /// The action is not one this endpoint speaks.
    UnknownAction => "unknown_action",
    /// An instance does not exist.
    InstanceNotFound => "instance_not_found",
    /// A key pair does not exist.
    KeyNotFound => "key_not_found",
    /// The instance does not support key pairs (Windows).
    InstanceNotSupported => "instance_not_supported",
    /// The instance is in a state that does not allow the operation.
    InvalidInstanceState => "invalid_instance_state",
    /// Another operation on the instance has not finished.
    OperationInProgress => "operation_in_progress",
    /// The key pair is already bound to the instance.
    KeyAlreadyBound => "key_already_bound",
    /// The key pair is not bound to the instance.
    KeyNotBound => "key_not_bound",
    /// A key pair of that name exists already (an import).
    KeyNameTaken => "key_name_taken",
    /// The same public key was imported already, under another name.
    PublicKeyTaken => "public_key_taken",
    /// The public key is not an OpenSSH public key the provider takes.
    InvalidPublicKey => "invalid_public_key",
    /// The signature does not match.
    SignatureMismatch => "signature_mismatch",
    /// The signature material is malformed or incomplete (Authorization header, method).
    MalformedSignature => "malformed_signature",
    /// The credential id is unknown.
    UnknownCredential => "unknown_credential",
    /// The timestamp is outside the allowed window or malformed.
    TimestampExpired => "timestamp_expired",
    /// The nonce was used already inside the window.
    NonceReused => "nonce_reused",
    /// The caller may not do this.
    NoPermission => "no_permission",
    /// Too many requests.
    Throttled => "throttled",
    /// The upstream could not be reached or failed to answer properly.
    UpstreamUnavailable => "upstream_unavailable",
    /// The upstream did not answer in time.
    UpstreamTimeout => "upstream_timeout",
    /// The upstream answered with a code the tables do not know.
    UpstreamUnclassified => "upstream_unclassified",
    /// Anything else that went wrong inside the gateway.
    Internal => "internal",
}

impl Code {
    /// Parses a snake_case code name.
    pub fn from_name(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error as an upstream reported it, kept verbatim for the caller and the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    /// The provider that answered.
    pub provider: Provider,
    /// The provider's own error code (`InvalidInstanceId.NotFound`, `SignatureDoesNotMatch`, ...).
    pub code: String,
    /// The provider's own message.
    pub message: String,
    /// The provider's RequestId, if it sent one.
    pub request_id: String,
}

/// A failure: what went wrong, whose fault it is, and what the upstream said if it came from one.
///
/// One pointer wide, so `Result<_, Fault>` stays small on the hot path.
#[derive(Clone, PartialEq, Eq)]
pub struct Fault(Box<FaultInner>);

#[derive(Clone, PartialEq, Eq)]
struct FaultInner {
    code: Code,
    source: Source,
    message: Cow<'static, str>,
    detail: Option<String>,
    upstream: Option<UpstreamError>,
}

impl Fault {
    /// A fault with the given code and source.
    pub fn new(code: Code, source: Source, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault(Box::new(FaultInner { code, source, message: message.into(), detail: None, upstream: None }))
    }

    /// The caller's fault.
    pub fn caller(code: Code, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault::new(code, Source::Caller, message)
    }

    /// The upstream's fault, with what it said.
    pub fn upstream(code: Code, message: impl Into<Cow<'static, str>>, said: Option<UpstreamError>) -> Fault {
        let mut fault = Fault::new(code, Source::Upstream, message);
        fault.0.upstream = said;
        fault
    }

    /// The gateway's own fault.
    pub fn gateway(code: Code, message: impl Into<Cow<'static, str>>) -> Fault {
        Fault::new(code, Source::Gateway, message)
    }

    /// Attaches a machine-readable detail: the server's string to sign for a signature mismatch, or the
    /// instance state for an invalid-state fault. Mapping templates show it as `{detail}`.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Fault {
        self.0.detail = Some(detail.into());
        self
    }

    /// Prefixes the message with context, keeping code and source (`"batch 2 of 3: ..."`).
    pub fn context(mut self, context: impl fmt::Display) -> Fault {
        self.0.message = Cow::Owned(format!("{context}: {}", self.0.message));
        self
    }

    /// The canonical kind.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// Whose fault it is.
    pub fn source(&self) -> Source {
        self.0.source
    }

    /// A human message; never contains a secret.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The machine-readable detail, if any.
    pub fn detail(&self) -> Option<&str> {
        self.0.detail.as_deref()
    }

    /// What the upstream said, if the fault came from one.
    pub fn upstream_error(&self) -> Option<&UpstreamError> {
        self.0.upstream.as_ref()
    }
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        f.debug_struct("Fault")
            .field("code", &inner.code)
            .field("source", &inner.source)
            .field("message", &inner.message)
            .field("detail", &inner.detail)
            .field("upstream", &inner.upstream)
            .finish()
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.0.code, self.0.source.name(), self.0.message)?;
        if let Some(up) = &self.0.upstream {
            write!(f, " [{} said {}: {} (RequestId {})]", up.provider, up.code, up.message, up.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for Fault {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Fault>(), std::mem::size_of::<usize>());
    }

    #[test]
    fn code_names_round_trip() {
        for code in Code::ALL {
            assert_eq!(Code::from_name(code.name()), Some(*code));
        }
        assert_eq!(Code::from_name("no_such_code"), None);
    }

    #[test]
    fn a_page_is_a_bounded_window() {
        let all = [1, 2, 3, 4, 5];
        assert_eq!(Page { offset: 0, limit: 2 }.of(&all), [1, 2]);
        assert_eq!(Page { offset: 4, limit: 2 }.of(&all), [5]);
        assert!(Page { offset: 9, limit: 2 }.of(&all).is_empty());
        assert!(Page { offset: 1, limit: 0 }.of(&all).is_empty());
        assert_eq!(Page { offset: 1, limit: usize::MAX }.of(&all), [2, 3, 4, 5]);
    }

    #[test]
    fn context_keeps_code_and_source() {
        let f = Fault::upstream(Code::InstanceNotFound, "gone", None).context("batch 2 of 3");
        assert_eq!(f.code(), Code::InstanceNotFound);
        assert_eq!(f.source(), Source::Upstream);
        assert_eq!(f.message(), "batch 2 of 3: gone");
    }

    #[test]
    fn first_failure_finds_the_first_failed_instance() {
        let outcome = Outcome {
            request_id: "r".into(),
            answer: Answer::Bind(vec![
                InstanceResult { instance: "a".into(), result: Ok(()) },
                InstanceResult { instance: "b".into(), result: Err(Fault::caller(Code::InstanceNotFound, "b")) },
            ]),
        };
        assert_eq!(outcome.first_failure().map(|(i, f)| (i, f.code())), Some(("b", Code::InstanceNotFound)));
    }
}
