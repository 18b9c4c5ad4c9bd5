//! The mapping tables: every protocol fact that is data, not code.
//!
//! `mappings/actions.toml` (wire action names and versions), `mappings/limits.toml` (batch limits, id
//! formats, time windows), `mappings/markers.toml` (the evidence each dialect leaves in a request, for
//! detection; loaded in [`markers`]) and `mappings/errors/<dialect>.toml` (how each canonical [`Code`]
//! looks in each dialect, and how each upstream code reads back) are embedded in the binary as the default and can be
//! overridden from a folder with the same layout. Loading checks everything once: an unknown field, a
//! duplicate, an unknown kind or a kind missing for a dialect is a start-up error that names the file and
//! the line. Nothing looked up on the request path can fail for a reason loading could have caught.
//!
//! Implements `shared/reference/protocols.md` section 6 (the error correspondence table).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::model::{Action, Code, Dialect, Fault, Provider, Style, UpstreamError};
use crate::tomlfile;

pub mod markers;

pub use markers::DialectMarkers;

/// The embedded default tables, by file name relative to `mappings/`, with their text.
pub const EMBEDDED: &[(&str, &str)] = &[
    ("actions.toml", include_str!("../mappings/actions.toml")),
    ("limits.toml", include_str!("../mappings/limits.toml")),
    ("markers.toml", include_str!("../mappings/markers.toml")),
    ("errors/tencent_v2.toml", include_str!("../mappings/errors/tencent_v2.toml")),
    ("errors/tencent_cvm.toml", include_str!("../mappings/errors/tencent_cvm.toml")),
    ("errors/tencent_lighthouse.toml", include_str!("../mappings/errors/tencent_lighthouse.toml")),
    ("errors/aliyun_ecs.toml", include_str!("../mappings/errors/aliyun_ecs.toml")),
];

/// The placeholders a message or code template may use.
const PLACEHOLDERS: &[&str] =
    &["message", "detail", "state", "provider", "upstream_code", "upstream_message", "upstream_request_id"];

/// A mapping table that failed to load: the file, the line and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {problem}")]
pub struct MappingError {
    /// The file, as `mappings/<name>` or the override path.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong and how to fix it.
    pub problem: String,
}

// === raw, as written in the files ===

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialectActions {
    version: String,
    service: Option<String>,
    actions: Vec<Spanned<RawAction>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    wire: String,
    action: String,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    instances: usize,
    keys: usize,
    old_style_keys: Option<usize>,
    lookup_instances: usize,
    lookup_keys: usize,
    lookup_page_size: Option<usize>,
    timestamp_window_secs: i64,
    requests_per_second: Option<u32>,
    disassociate_requests_per_second: Option<u32>,
    states: Vec<String>,
    running_state: String,
    stopped_state: String,
    instance_id: RawIdFormat,
    key_id: RawIdFormat,
    key_name: RawIdFormat,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdFormat {
    prefix: String,
    min_len: usize,
    max_len: usize,
    #[serde(default)]
    charset: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorFile {
    errors: Spanned<BTreeMap<Spanned<String>, Spanned<RawErrorEntry>>>,
    upstream: BTreeMap<Spanned<String>, Spanned<String>>,
    upstream_fallback: RawFallback,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrorEntry {
    code: String,
    message: String,
    status: Option<u16>,
    number: Option<i64>,
    fallback_code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    kind: Spanned<String>,
}

// === checked, as used at run time ===

/// One wire action of a dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionEntry {
    /// The name as sent upstream and echoed to callers.
    pub wire: String,
    /// Other spellings accepted inbound.
    pub aliases: Vec<String>,
    /// The canonical action.
    pub action: Action,
    /// Legacy response shape.
    pub style: Style,
}

/// The actions, version and service of one dialect.
#[derive(Debug, Clone)]
pub struct DialectActions {
    /// The API version (`2017-03-12`, ...).
    pub version: String,
    /// The TC3 service name, for Tencent API 3.0.
    pub service: Option<String>,
    /// Every action the dialect speaks.
    pub entries: Vec<ActionEntry>,
}

/// The characters an id may use after its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Lower-case ASCII letters and digits.
    LowerAlnum,
    /// An Alibaba key pair name: starts with a letter; letters, digits, `:` `_` `.` `-`.
    KeyName,
    /// A Tencent key pair name: ASCII letters, digits and `_`.
    Word,
}

/// The grammar of an instance id or key reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdFormat {
    /// The fixed prefix (`ins-`, `skey-`, `i-`, or empty).
    pub prefix: String,
    /// Fewest characters after the prefix.
    pub min_len: usize,
    /// Most characters after the prefix.
    pub max_len: usize,
    /// Which characters may follow.
    pub charset: Charset,
}

impl IdFormat {
    /// The most characters an id of this format has, prefix included.
    pub fn longest(&self) -> usize {
        self.prefix.chars().count() + self.max_len
    }

    /// The format in words, for a message: `` `ins-` and 8 lower-case letters or digits ``.
    pub fn describe(&self) -> String {
        let count = if self.min_len == self.max_len {
            self.min_len.to_string()
        } else {
            format!("{} to {}", self.min_len, self.max_len)
        };
        let what = match self.charset {
            Charset::LowerAlnum => "lower-case letters or digits",
            Charset::KeyName => "characters, starting with a letter; letters, digits, `:` `_` `.` `-`",
            Charset::Word => "letters, digits or `_`",
        };
        if self.prefix.is_empty() { format!("{count} {what}") } else { format!("`{}` and {count} {what}", self.prefix) }
    }

    /// True when `id` has this format.
    pub fn matches(&self, id: &str) -> bool {
        let Some(rest) = id.strip_prefix(self.prefix.as_str()) else { return false };
        let len = rest.chars().count();
        if len < self.min_len || len > self.max_len {
            return false;
        }
        match self.charset {
            Charset::LowerAlnum => rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
            Charset::KeyName => {
                let mut chars = rest.chars();
                let starts_with_letter = chars.next().is_some_and(char::is_alphabetic);
                starts_with_letter
                    && chars.all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'))
                    && !rest.starts_with("http:")
                    && !rest.starts_with("https:")
            }
            Charset::Word => rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        }
    }
}

/// Limits and formats of one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most instances in one bind or unbind.
    pub instances: usize,
    /// Most keys in one bind or unbind.
    pub keys: usize,
    /// Most keys in a legacy old-style request (`keyId` is a single value).
    pub old_style_keys: usize,
    /// Most instance ids in one look-up.
    pub lookup_instances: usize,
    /// Most key ids (or page size) in one look-up.
    pub lookup_keys: usize,
    /// How far a request's timestamp may be from the gateway's clock, in seconds.
    pub timestamp_window_secs: i64,
    /// The provider's own request rate limit, if documented (for unbinding too, unless
    /// `disassociate_requests_per_second` says otherwise).
    pub requests_per_second: Option<u32>,
    /// The provider's own rate limit for unbinding, when it differs from `requests_per_second`.
    pub disassociate_requests_per_second: Option<u32>,
    /// Instance id grammar.
    pub instance_id: IdFormat,
    /// Key reference grammar (id, or name for Alibaba).
    pub key_id: IdFormat,
    /// The grammar of a key pair's name, as `ImportKeyPair` takes it.
    pub key_name: IdFormat,
    /// Every instance state the provider reports, in its own spelling.
    pub states: Vec<String>,
    /// The state of a running instance, in the provider's spelling (`RUNNING`, `Running`).
    pub running_state: String,
    /// The state of a stopped instance (`STOPPED`, `Stopped`).
    pub stopped_state: String,
    /// The page size of a key look-up whose caller names none (at most `lookup_keys`).
    pub lookup_page_size: usize,
}

/// How one canonical code looks in one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorEntry {
    code: String,
    fallback_code: Option<String>,
    status: u16,
    number: i64,
    message: String,
}

/// The error table of one dialect.
#[derive(Debug, Clone)]
struct ErrorTable {
    by_code: HashMap<Code, ErrorEntry>,
    upstream_exact: HashMap<String, Code>,
    /// `(prefix, code)` for entries written with a trailing `*`, longest prefix first.
    upstream_prefix: Vec<(String, Code)>,
    fallback: Code,
}

/// An error rendered for one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedError {
    /// The dialect's string code (also the legacy `codeDesc`).
    pub code: String,
    /// HTTP status (always 200 for Tencent).
    pub status: u16,
    /// The legacy numeric `code` (0 where the dialect has none).
    pub number: i64,
    /// The message, templates filled.
    pub message: String,
}

/// Every mapping table, checked.
#[derive(Debug, Clone)]
pub struct Mappings {
    actions: BTreeMap<Dialect, DialectActions>,
    limits: BTreeMap<Dialect, Limits>,
    markers: BTreeMap<Dialect, DialectMarkers>,
    errors: BTreeMap<Dialect, ErrorTable>,
}

impl Mappings {
    /// The tables embedded in the binary.
    pub fn embedded() -> Result<Mappings, MappingError> {
        Mappings::from_sources(|name| Ok((format!("mappings/{name}"), embedded_source(name).to_owned())))
    }

    /// The tables from `dir` (same layout as `mappings/`); a file absent there comes from the embedded set.
    pub fn load_dir(dir: &Path) -> Result<Mappings, MappingError> {
        Mappings::from_sources(|name| {
            let path: PathBuf = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok((path.display().to_string(), text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Ok((format!("mappings/{name}"), embedded_source(name).to_owned()))
                }
                Err(e) => Err(MappingError {
                    file: path.display().to_string(),
                    line: 1,
                    problem: format!("cannot read: {e}; check the path and its permissions"),
                }),
            }
        })
    }

    /// Loads from a source for each file name: `(display name, text)`.
    pub fn from_sources(
        mut source: impl FnMut(&str) -> Result<(String, String), MappingError>,
    ) -> Result<Mappings, MappingError> {
        let (file, text) = source("actions.toml")?;
        let actions = load_actions(&file, &text)?;
        let (file, text) = source("limits.toml")?;
        let limits = load_limits(&file, &text)?;
        let (file, text) = source("markers.toml")?;
        let markers = load_markers(&file, &text, &actions)?;
        let mut errors = BTreeMap::new();
        for dialect in Dialect::ALL {
            let (file, text) = source(&format!("errors/{}.toml", dialect.name()))?;
            errors.insert(dialect, load_errors(&file, &text, dialect)?);
        }
        Ok(Mappings { actions, limits, markers, errors })
    }

    /// The action a wire name means in a dialect (aliases included).
    pub fn action(&self, dialect: Dialect, wire: &str) -> Option<&ActionEntry> {
        self.actions[&dialect].entries.iter().find(|e| e.wire == wire || e.aliases.iter().any(|a| a == wire))
    }

    /// The wire name to send for a canonical action (the first entry of the default style).
    pub fn wire_action(&self, dialect: Dialect, action: Action) -> &str {
        self.action_entry(dialect, action, Style::New).map_or("", |e| e.wire.as_str())
    }

    /// The entry for an action in a given style, if the dialect has one.
    pub fn action_entry(&self, dialect: Dialect, action: Action, style: Style) -> Option<&ActionEntry> {
        self.actions[&dialect].entries.iter().find(|e| e.action == action && e.style == style)
    }

    /// Every action of a dialect.
    pub fn actions(&self, dialect: Dialect) -> &DialectActions {
        &self.actions[&dialect]
    }

    /// The dialect's API version.
    pub fn version(&self, dialect: Dialect) -> &str {
        &self.actions[&dialect].version
    }

    /// The dialect's TC3 service name, if it has one.
    pub fn service(&self, dialect: Dialect) -> Option<&str> {
        self.actions[&dialect].service.as_deref()
    }

    /// The dialect's limits and id formats.
    pub fn limits(&self, dialect: Dialect) -> &Limits {
        &self.limits[&dialect]
    }

    /// The most characters an instance id has on any provider: a longer value cannot be one anywhere.
    pub fn longest_instance_id(&self) -> usize {
        self.limits.values().map(|l| l.instance_id.longest()).max().unwrap_or(0)
    }

    /// The most characters a key reference (id or name) has on any provider.
    pub fn longest_key(&self) -> usize {
        self.limits.values().map(|l| l.key_id.longest()).max().unwrap_or(0)
    }

    /// The evidence the dialect leaves in a request, and where it is served.
    pub fn markers(&self, dialect: Dialect) -> &DialectMarkers {
        &self.markers[&dialect]
    }

    /// Renders a fault as the dialect shows it.
    ///
    /// An error from an upstream that speaks the caller's own dialect keeps the upstream's code and message
    /// as they were (a same-dialect request is forwarded with its meaning intact, errors included), unless
    /// the gateway has since given the fault another kind.
    pub fn render(&self, dialect: Dialect, fault: &Fault) -> RenderedError {
        let entry = &self.errors[&dialect].by_code[&fault.code()];
        let same_dialect = |up: &&UpstreamError| {
            Dialect::of_provider(up.provider) == dialect && self.classify(dialect, &up.code).0 == fault.code()
        };
        if let Some(up) = fault.upstream_error().filter(same_dialect) {
            return RenderedError {
                code: up.code.clone(),
                status: entry.status,
                number: entry.number,
                message: up.message.clone(),
            };
        }
        let code = match (fault.detail(), &entry.fallback_code) {
            (None, Some(fallback)) if entry.code.contains("{state}") => fallback.clone(),
            _ => fill(&entry.code, fault),
        };
        RenderedError { code, status: entry.status, number: entry.number, message: fill(&entry.message, fault) }
    }

    /// The canonical code for an upstream's code, and the state suffix a `*` entry captured.
    pub fn classify<'c>(&self, dialect: Dialect, upstream_code: &'c str) -> (Code, Option<&'c str>) {
        let table = &self.errors[&dialect];
        if let Some(code) = table.upstream_exact.get(upstream_code) {
            return (*code, None);
        }
        for (prefix, code) in &table.upstream_prefix {
            if let Some(rest) = upstream_code.strip_prefix(prefix.as_str()) {
                return (*code, (!rest.is_empty()).then_some(rest));
            }
        }
        (table.fallback, None)
    }

    /// A fault for an error an upstream reported, classified through its dialect's table; the upstream's
    /// own code, message and RequestId stay visible.
    pub fn upstream_fault(&self, provider: Provider, code: &str, message: &str, request_id: &str) -> Fault {
        let (kind, state) = self.classify(Dialect::of_provider(provider), code);
        let said = UpstreamError {
            provider,
            code: code.to_owned(),
            message: message.to_owned(),
            request_id: request_id.to_owned(),
        };
        let fault = Fault::upstream(kind, message.to_owned(), Some(said));
        match state {
            Some(state) => fault.with_detail(state),
            None => fault,
        }
    }
}

/// The embedded text of the table `name` (empty when there is none).
pub fn embedded_source(name: &str) -> &'static str {
    EMBEDDED.iter().find(|(n, _)| *n == name).map_or("", |(_, text)| text)
}

/// Fills a template's placeholders from a fault.
fn fill(template: &str, fault: &Fault) -> String {
    if !template.contains('{') {
        return template.to_owned();
    }
    let up = fault.upstream_error();
    let mut out = String::with_capacity(template.len() + fault.message().len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        match &after[..close] {
            "message" => out.push_str(fault.message()),
            "detail" => out.push_str(fault.detail().unwrap_or("")),
            "state" => push_camel_case(&mut out, fault.detail().unwrap_or("")),
            "provider" => out.push_str(up.map_or("upstream", |u| u.provider.name())),
            "upstream_code" => out.push_str(up.map_or("InternalError", |u| u.code.as_str())),
            "upstream_message" => out.push_str(up.map_or(fault.message(), |u| u.message.as_str())),
            "upstream_request_id" => out.push_str(up.map_or("", |u| u.request_id.as_str())),
            other => {
                let _ = write!(out, "{{{other}}}");
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.trim_end().to_owned()
}

/// `ENTER_RESCUE_MODE` -> `EnterRescueMode`; `Running` stays `Running`.
fn push_camel_case(out: &mut String, state: &str) {
    let shouting = state.contains('_') || state.bytes().all(|b| !b.is_ascii_lowercase());
    if !shouting {
        out.push_str(state);
        return;
    }
    for word in state.split('_') {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars.map(|c| c.to_ascii_lowercase()));
        }
    }
}

// === loading ===

fn err(file: &str, text: &str, offset: usize, problem: impl Into<String>) -> MappingError {
    MappingError { file: file.to_owned(), line: tomlfile::line_of(text, offset), problem: problem.into() }
}

fn parse<T: serde::de::DeserializeOwned>(file: &str, text: &str) -> Result<T, MappingError> {
    tomlfile::parse(text).map_err(|(offset, message)| err(file, text, offset, message))
}

/// Finds the dialect tables of a file and complains about unknown or missing ones.
fn per_dialect<T>(
    file: &str,
    text: &str,
    raw: BTreeMap<Spanned<String>, T>,
) -> Result<BTreeMap<Dialect, T>, MappingError> {
    let mut out = BTreeMap::new();
    for (name, value) in raw {
        let Some(dialect) = Dialect::from_name(name.get_ref()) else {
            let known: Vec<_> = Dialect::ALL.iter().map(|d| d.name()).collect();
            return Err(err(
                file,
                text,
                name.span().start,
                format!("unknown dialect `{}`; known dialects: {}", name.get_ref(), known.join(", ")),
            ));
        };
        out.insert(dialect, value);
    }
    for dialect in Dialect::ALL {
        if !out.contains_key(&dialect) {
            return Err(err(
                file,
                text,
                text.len(),
                format!("no table for dialect `{0}`; add `[{0}]`", dialect.name()),
            ));
        }
    }
    Ok(out)
}

fn load_actions(file: &str, text: &str) -> Result<BTreeMap<Dialect, DialectActions>, MappingError> {
    let raw: BTreeMap<Spanned<String>, RawDialectActions> = parse(file, text)?;
    let mut out = BTreeMap::new();
    for (dialect, raw) in per_dialect(file, text, raw)? {
        let RawDialectActions { version, service, actions } = raw;
        let mut entries: Vec<ActionEntry> = Vec::with_capacity(actions.len());
        for spanned in actions {
            let at = spanned.span().start;
            let RawAction { wire, action, style, aliases } = spanned.into_inner();
            let action = Action::from_name(&action).ok_or_else(|| {
                let known: Vec<_> = Action::ALL.iter().map(|a| a.name()).collect();
                err(file, text, at, format!("unknown action `{action}`; known actions: {}", known.join(", ")))
            })?;
            let style = match style.as_deref() {
                None | Some("new") => Style::New,
                Some("old") => Style::Old,
                Some(other) => {
                    return Err(err(file, text, at, format!("unknown style `{other}`; use \"new\" or \"old\"")));
                }
            };
            let clash = entries
                .iter()
                .find(|e| std::iter::once(&e.wire).chain(&e.aliases).any(|n| n == &wire || aliases.contains(n)));
            if let Some(clash) = clash {
                return Err(err(
                    file,
                    text,
                    at,
                    format!("duplicate wire action `{}`; each name may appear once", clash.wire),
                ));
            }
            entries.push(ActionEntry { wire, aliases, action, style });
        }
        for action in [Action::AssociateKeys, Action::DisassociateKeys] {
            if !entries.iter().any(|e| e.action == action && e.style == Style::New) {
                return Err(err(
                    file,
                    text,
                    0,
                    format!("`{}` has no wire name for `{action}`; add one", dialect.name()),
                ));
            }
        }
        out.insert(dialect, DialectActions { version, service, entries });
    }
    Ok(out)
}

fn load_markers(
    file: &str,
    text: &str,
    actions: &BTreeMap<Dialect, DialectActions>,
) -> Result<BTreeMap<Dialect, DialectMarkers>, MappingError> {
    let raw: BTreeMap<Spanned<String>, Spanned<markers::RawDialectMarkers>> = parse(file, text)?;
    let mut out = BTreeMap::new();
    for (dialect, spanned) in per_dialect(file, text, raw)? {
        let at = spanned.span().start;
        let has_service = actions.get(&dialect).is_some_and(|a| a.service.is_some());
        let checked = markers::check(dialect, at, spanned.into_inner(), has_service)
            .map_err(|(offset, problem)| err(file, text, offset, problem))?;
        out.insert(dialect, checked);
    }
    Ok(out)
}

fn load_limits(file: &str, text: &str) -> Result<BTreeMap<Dialect, Limits>, MappingError> {
    let raw: BTreeMap<Spanned<String>, Spanned<RawLimits>> = parse(file, text)?;
    let mut out = BTreeMap::new();
    for (dialect, spanned) in per_dialect(file, text, raw)? {
        let at = spanned.span().start;
        let RawLimits {
            instances,
            keys,
            old_style_keys,
            lookup_instances,
            lookup_keys,
            lookup_page_size,
            timestamp_window_secs,
            requests_per_second,
            disassociate_requests_per_second,
            states,
            running_state,
            stopped_state,
            instance_id,
            key_id,
            key_name,
        } = spanned.into_inner();
        let lookup_page_size = lookup_page_size.unwrap_or(lookup_keys);
        if lookup_page_size == 0 || lookup_page_size > lookup_keys {
            return Err(err(
                file,
                text,
                at,
                format!("`{}`: `lookup_page_size` must be from 1 to `lookup_keys`", dialect.name()),
            ));
        }
        if states.is_empty() {
            return Err(err(file, text, at, format!("`{}`: `states` lists no instance state", dialect.name())));
        }
        for (name, state) in [("running_state", &running_state), ("stopped_state", &stopped_state)] {
            if !states.contains(state) {
                return Err(err(
                    file,
                    text,
                    at,
                    format!("`{}`: `{name} = \"{state}\"` is not one of its `states`", dialect.name()),
                ));
            }
        }
        if instances == 0 || keys == 0 || lookup_instances == 0 || lookup_keys == 0 || timestamp_window_secs <= 0 {
            return Err(err(file, text, at, format!("`{}`: limits must be positive", dialect.name())));
        }
        if requests_per_second == Some(0) || disassociate_requests_per_second == Some(0) {
            return Err(err(
                file,
                text,
                at,
                format!("`{}`: a rate limit must be at least 1; omit it for none", dialect.name()),
            ));
        }
        let instance_id = id_format(file, text, at, instance_id)?;
        let key_id = id_format(file, text, at, key_id)?;
        let key_name = id_format(file, text, at, key_name)?;
        out.insert(
            dialect,
            Limits {
                instances,
                keys,
                old_style_keys: old_style_keys.unwrap_or(1),
                lookup_instances,
                lookup_keys,
                timestamp_window_secs,
                requests_per_second,
                disassociate_requests_per_second,
                instance_id,
                key_id,
                key_name,
                states,
                running_state,
                stopped_state,
                lookup_page_size,
            },
        );
    }
    Ok(out)
}

fn id_format(file: &str, text: &str, at: usize, raw: RawIdFormat) -> Result<IdFormat, MappingError> {
    let RawIdFormat { prefix, min_len, max_len, charset } = raw;
    let charset = match charset.as_deref() {
        None | Some("lower_alnum") => Charset::LowerAlnum,
        Some("key_name") => Charset::KeyName,
        Some("word") => Charset::Word,
        Some(other) => {
            return Err(err(
                file,
                text,
                at,
                format!("unknown charset `{other}`; use \"lower_alnum\", \"key_name\" or \"word\""),
            ));
        }
    };
    if min_len > max_len {
        return Err(err(file, text, at, format!("min_len {min_len} is above max_len {max_len}")));
    }
    Ok(IdFormat { prefix, min_len, max_len, charset })
}

fn load_errors(file: &str, text: &str, dialect: Dialect) -> Result<ErrorTable, MappingError> {
    let RawErrorFile { errors, upstream, upstream_fallback } = parse(file, text)?;
    let errors_at = errors.span().start;
    let mut by_code = HashMap::new();
    for (name, entry) in errors.into_inner() {
        let code = known_code(file, text, &name)?;
        let at = entry.span().start;
        by_code.insert(code, check_entry(file, text, at, dialect, entry.into_inner())?);
    }
    if let Some(missing) = Code::ALL.iter().find(|c| !by_code.contains_key(c)) {
        return Err(err(
            file,
            text,
            errors_at,
            format!(
                "no entry for kind `{missing}` in [errors]; add `{missing} = {{ code = \"...\", message = \"...\" }}`"
            ),
        ));
    }
    let mut upstream_exact = HashMap::new();
    let mut upstream_prefix = Vec::new();
    for (wire, kind) in upstream {
        let code = known_code(file, text, &kind)?;
        match wire.get_ref().strip_suffix('*') {
            Some(prefix) => upstream_prefix.push((prefix.to_owned(), code)),
            None => {
                upstream_exact.insert(wire.into_inner(), code);
            }
        }
    }
    upstream_prefix.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    let fallback = known_code(file, text, &upstream_fallback.kind)?;
    Ok(ErrorTable { by_code, upstream_exact, upstream_prefix, fallback })
}

fn known_code(file: &str, text: &str, name: &Spanned<String>) -> Result<Code, MappingError> {
    Code::from_name(name.get_ref()).ok_or_else(|| {
        let known: Vec<_> = Code::ALL.iter().map(|c| c.name()).collect();
        err(
            file,
            text,
            name.span().start,
            format!("unknown kind `{}`; known kinds: {}", name.get_ref(), known.join(", ")),
        )
    })
}

fn check_entry(
    file: &str,
    text: &str,
    at: usize,
    dialect: Dialect,
    raw: RawErrorEntry,
) -> Result<ErrorEntry, MappingError> {
    let RawErrorEntry { code, message, status, number, fallback_code } = raw;
    let status = match (dialect, status) {
        (Dialect::AliyunEcs, Some(s)) if (400..600).contains(&s) => s,
        (Dialect::AliyunEcs, _) => {
            return Err(err(file, text, at, "every aliyun_ecs error needs `status`, an HTTP 4xx or 5xx".to_owned()));
        }
        (_, None) => 200,
        (_, Some(_)) => {
            return Err(err(
                file,
                text,
                at,
                format!("`status` is not allowed in {}: Tencent answers errors with HTTP 200", dialect.name()),
            ));
        }
    };
    let number = match (dialect, number) {
        (Dialect::TencentV2, Some(n)) if n > 0 => n,
        (Dialect::TencentV2, _) => {
            return Err(err(
                file,
                text,
                at,
                "every tencent_v2 error needs `number`, the legacy numeric code (4000, 4100, ...)".to_owned(),
            ));
        }
        (_, None) => 0,
        (_, Some(_)) => {
            return Err(err(file, text, at, format!("`number` is only for tencent_v2, not {}", dialect.name())));
        }
    };
    for template in [&code, &message].into_iter().chain(fallback_code.as_ref()) {
        check_template(file, text, at, template)?;
    }
    if code.contains("{state}") && fallback_code.is_none() {
        return Err(err(
            file,
            text,
            at,
            "a code with {state} needs `fallback_code` for faults without a state".to_owned(),
        ));
    }
    Ok(ErrorEntry { code, fallback_code, status, number, message })
}

fn check_template(file: &str, text: &str, at: usize, template: &str) -> Result<(), MappingError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| err(file, text, at, format!("unclosed `{{` in `{template}`")))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(err(
                file,
                text,
                at,
                format!("unknown placeholder `{{{name}}}`; known placeholders: {}", PLACEHOLDERS.join(", ")),
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(name: &str, text: &str) -> Result<Mappings, MappingError> {
        Mappings::from_sources(|n| {
            if n == name {
                Ok((format!("test/{n}"), text.to_owned()))
            } else {
                Ok((format!("mappings/{n}"), embedded_source(n).to_owned()))
            }
        })
    }

    #[test]
    fn embedded_tables_load() {
        let maps = Mappings::embedded().unwrap();
        assert_eq!(maps.version(Dialect::TencentLighthouse), "2020-03-24");
        assert_eq!(maps.limits(Dialect::AliyunEcs).instances, 50);
        assert_eq!(maps.wire_action(Dialect::AliyunEcs, Action::AssociateKeys), "AttachKeyPair");
        assert_eq!(maps.action(Dialect::TencentV2, "unBindInstanceKey").unwrap().style, Style::Old);
    }

    #[test]
    fn every_kind_renders_in_every_dialect() {
        let maps = Mappings::embedded().unwrap();
        for dialect in Dialect::ALL {
            for code in Code::ALL {
                let r = maps.render(dialect, &Fault::caller(*code, "why"));
                assert!(!r.code.is_empty(), "{dialect} {code}");
                assert!(!r.code.contains('{'), "{dialect} {code}: {}", r.code);
            }
        }
    }

    #[test]
    fn state_codes_render_and_classify() {
        let maps = Mappings::embedded().unwrap();
        let f = Fault::upstream(Code::InvalidInstanceState, "running", None).with_detail("RUNNING");
        assert_eq!(maps.render(Dialect::TencentCvm, &f).code, "UnsupportedOperation.InstanceStateRunning");
        let f = Fault::upstream(Code::InvalidInstanceState, "no state", None);
        assert_eq!(maps.render(Dialect::TencentCvm, &f).code, "UnsupportedOperation");
        let (code, state) = maps.classify(Dialect::TencentCvm, "UnsupportedOperation.InstanceStateEnterRescueMode");
        assert_eq!((code, state), (Code::InvalidInstanceState, Some("EnterRescueMode")));
    }

    #[test]
    fn unknown_upstream_codes_keep_their_code_and_message() {
        let maps = Mappings::embedded().unwrap();
        let fault = maps.upstream_fault(Provider::TencentCvm, "ResourceInsufficient.Foo", "no capacity", "req-1");
        assert_eq!(fault.code(), Code::UpstreamUnclassified);
        for dialect in Dialect::ALL {
            let r = maps.render(dialect, &fault);
            assert_eq!(r.code, "ResourceInsufficient.Foo", "{dialect}");
            assert!(r.message.contains("no capacity"), "{dialect}: {}", r.message);
        }
    }

    #[test]
    fn same_dialect_upstream_errors_keep_their_code_and_message() {
        let maps = Mappings::embedded().unwrap();
        let fault = maps.upstream_fault(Provider::AliyunEcs, "MissingRegionId", "RegionId is mandatory.", "req-1");
        assert_eq!(fault.code(), Code::MissingParameter);
        let same = maps.render(Dialect::AliyunEcs, &fault);
        assert_eq!(
            (same.code.as_str(), same.message.as_str(), same.status),
            ("MissingRegionId", "RegionId is mandatory.", 400)
        );
        let other = maps.render(Dialect::TencentCvm, &fault);
        assert_eq!(other.code, "MissingParameter");
    }

    #[test]
    fn signature_mismatch_echoes_the_string_to_sign_for_aliyun() {
        let maps = Mappings::embedded().unwrap();
        let f = Fault::caller(Code::SignatureMismatch, "signature").with_detail("GET&%2F&A%3Db");
        let r = maps.render(Dialect::AliyunEcs, &f);
        assert_eq!(r.status, 400);
        assert!(r.message.ends_with("server string to sign is:GET&%2F&A%3Db"), "{}", r.message);
    }

    #[test]
    fn a_missing_kind_names_the_file_and_line() {
        let text = embedded_source("errors/tencent_cvm.toml").replace("throttled = {", "# throttled = {");
        let e = load_with("errors/tencent_cvm.toml", &text).unwrap_err();
        assert_eq!(e.file, "test/errors/tencent_cvm.toml");
        let header_line = text.lines().position(|l| l.trim() == "[errors]").unwrap() + 1;
        assert_eq!(e.line, header_line, "{e}");
        assert!(e.problem.contains("`throttled`"), "{e}");
    }

    #[test]
    fn a_duplicate_names_the_file_and_line() {
        let text = embedded_source("errors/aliyun_ecs.toml").replacen(
            "[upstream]\n",
            "[upstream]\n\"Throttling\" = \"throttled\"\n",
            1,
        );
        let e = load_with("errors/aliyun_ecs.toml", &text).unwrap_err();
        assert_eq!(e.file, "test/errors/aliyun_ecs.toml");
        let dup_line =
            text.lines().enumerate().filter(|(_, l)| l.starts_with("\"Throttling\" =")).nth(1).unwrap().0 + 1;
        assert_eq!(e.line, dup_line, "{e}");
        assert!(e.problem.contains("duplicate"), "{e}");
    }

    #[test]
    fn a_duplicate_action_names_the_file_and_line() {
        let text = embedded_source("actions.toml").replacen(
            "  { wire = \"DetachKeyPair\"",
            "  { wire = \"AttachKeyPair\", action = \"describe_keys\" },\n  { wire = \"DetachKeyPair\"",
            1,
        );
        let e = load_with("actions.toml", &text).unwrap_err();
        let line = text.lines().position(|l| l.contains("\"AttachKeyPair\", action = \"describe_keys\"")).unwrap() + 1;
        assert_eq!((e.file.as_str(), e.line), ("test/actions.toml", line), "{e}");
        assert!(e.problem.contains("duplicate wire action"), "{e}");
    }

    #[test]
    fn an_unknown_field_names_the_file_and_line() {
        let text = embedded_source("limits.toml").replacen("instances = 50\n", "instances = 50\nbogus = 1\n", 1);
        let e = load_with("limits.toml", &text).unwrap_err();
        let line = text.lines().position(|l| l == "bogus = 1").unwrap() + 1;
        assert_eq!((e.file.as_str(), e.line), ("test/limits.toml", line), "{e}");
        assert!(e.problem.contains("bogus"), "{e}");
    }

    #[test]
    fn rate_limits_load_and_a_zero_limit_names_the_file_and_line() {
        let maps = Mappings::embedded().unwrap();
        let lighthouse = maps.limits(Dialect::TencentLighthouse);
        assert_eq!((lighthouse.requests_per_second, lighthouse.disassociate_requests_per_second), (Some(10), Some(20)));
        assert_eq!(maps.limits(Dialect::AliyunEcs).disassociate_requests_per_second, None);
        let text = embedded_source("limits.toml").replacen(
            "disassociate_requests_per_second = 20",
            "disassociate_requests_per_second = 0",
            1,
        );
        let e = load_with("limits.toml", &text).unwrap_err();
        let line = text.lines().position(|l| l == "[tencent_lighthouse]").unwrap() + 1;
        assert_eq!((e.file.as_str(), e.line), ("test/limits.toml", line), "{e}");
        assert!(e.problem.contains("at least 1"), "{e}");
    }

    #[test]
    fn an_unknown_kind_names_the_file_and_line() {
        let text = embedded_source("errors/tencent_v2.toml").replacen(
            "[upstream]\n",
            "[upstream]\n\"Weird\" = \"no_such_kind\"\n",
            1,
        );
        let e = load_with("errors/tencent_v2.toml", &text).unwrap_err();
        let line = text.lines().position(|l| l.starts_with("\"Weird\"")).unwrap() + 1;
        assert_eq!(e.line, line, "{e}");
        assert!(e.problem.contains("no_such_kind"), "{e}");
    }

    #[test]
    fn id_formats() {
        let maps = Mappings::embedded().unwrap();
        let cvm = &maps.limits(Dialect::TencentCvm);
        assert!(cvm.instance_id.matches("ins-1e4r6y8i"));
        assert!(!cvm.instance_id.matches("ins-1122"));
        assert!(!cvm.instance_id.matches("ins-1E4R6Y8I"));
        assert!(cvm.key_id.matches("skey-4e5ty7i8"));
        let ecs = &maps.limits(Dialect::AliyunEcs);
        assert!(ecs.instance_id.matches("i-m5eg7be9ndloji64jknv"));
        assert!(ecs.key_id.matches("FinanceJoshuaV25"));
        assert!(ecs.key_id.matches("密钥a"));
        assert!(!ecs.key_id.matches("1abc"));
        assert!(!ecs.key_id.matches("x"));
        assert_eq!((maps.longest_instance_id(), maps.longest_key()), (32, 128));
        assert_eq!(cvm.instance_id.describe(), "`ins-` and 8 lower-case letters or digits");
        assert_eq!(ecs.instance_id.describe(), "`i-` and 1 to 30 lower-case letters or digits");
        assert!(ecs.key_id.describe().starts_with("2 to 128 characters, starting with a letter"));
    }

    fn load_markers_with(text: &str) -> Result<Mappings, MappingError> {
        load_with("markers.toml", text)
    }

    #[test]
    fn embedded_markers_load() {
        let maps = Mappings::embedded().unwrap();
        let ecs = maps.markers(Dialect::AliyunEcs);
        assert_eq!(ecs.paths, ["/"]);
        assert!(ecs.markers.contains(&markers::Marker {
            place: markers::Place::Param("AccessKeyId".into()),
            test: markers::Test::Present,
            weight: 3
        }));
        assert_eq!(maps.markers(Dialect::TencentCvm).wins_ties_with, [Dialect::TencentLighthouse]);
        assert_eq!(maps.markers(Dialect::TencentV2).paths, ["/v2/index.php"]);
    }

    #[test]
    fn a_bad_marker_names_the_file_and_line() {
        let cases = [
            ("{ param = \"A\", header = \"b\" }", "2 places"),
            ("{ weight = 2 }", "0 places"),
            ("{ header = \"X-Tc-Action\" }", "lower case"),
            ("{ param = \"A\", is = \"service\" }", "use it with `authorization`"),
            ("{ authorization = \"ACS3-HMAC-SHA256\", is = \"service\" }", "needs a `service`"),
            ("{ param = \"A\", form = \"rfc2822\" }", "unknown form"),
            ("{ param = \"A\", values = [] }", "lists no value"),
            ("{ param = \"A\", values = [\"x\"], is = \"action\" }", "at most one"),
            ("{ param_prefix = \"A.\", is = \"version\" }", "names only"),
            ("{ param = \"A\", weight = 0 }", "at least 1"),
            ("{ param = \"\" }", "empty"),
            ("{ param = \"A\", colour = \"red\" }", "colour"),
        ];
        let anchor = "  { param = \"RegionId\" },\n";
        for (bad, problem) in cases {
            let text = embedded_source("markers.toml").replacen(anchor, &format!("  {bad},\n{anchor}"), 1);
            let e = load_markers_with(&text).unwrap_err();
            let line = text.lines().position(|l| l.trim() == format!("{bad},")).unwrap() + 1;
            assert_eq!((e.file.as_str(), e.line), ("test/markers.toml", line), "{bad}: {e}");
            assert!(e.problem.contains(problem), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_paths_and_tie_rules_are_refused() {
        let base = embedded_source("markers.toml");
        let e = load_markers_with(&base.replacen("paths = [\"/v2/index.php\"]", "paths = [\"v2/index.php\"]", 1))
            .unwrap_err();
        assert!(e.problem.contains("must start with `/`"), "{e}");
        let e = load_markers_with(&base.replacen("paths = [\"/v2/index.php\"]", "paths = []", 1)).unwrap_err();
        assert!(e.problem.contains("names no path"), "{e}");
        let itself =
            base.replacen("wins_ties_with = [\"tencent_lighthouse\"]", "wins_ties_with = [\"tencent_cvm\"]", 1);
        assert!(load_markers_with(&itself).unwrap_err().problem.contains("not another dialect"));
        let unknown = base.replacen("wins_ties_with = [\"tencent_lighthouse\"]", "wins_ties_with = [\"cbs\"]", 1);
        let e = load_markers_with(&unknown).unwrap_err();
        let line = unknown.lines().position(|l| l.contains("\"cbs\"")).unwrap() + 1;
        assert_eq!(e.line, line, "{e}");
        let missing = base.replacen("[tencent_v2]\npaths = [\"/v2/index.php\"]\nmarkers = []\n", "", 1);
        assert!(load_markers_with(&missing).unwrap_err().problem.contains("no table for dialect `tencent_v2`"));
    }
}
