//! `[state]`: where replicas share their state. Without it, each gateway keeps its replay keys in
//! memory (the default).
//!
//! ```toml
//! [state]
//! redis = "redis://redis.internal:6379/0"   # may be written as "${REDIS_URL}"; never printed
//! on_unavailable = "refuse"                  # or "local": fall back to the in-memory store
//! prefix = "crossgate:"                      # every key starts with it
//! ```

use serde::Deserialize;

use crate::secret::Secret;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawState {
    redis: Option<Secret>,
    on_unavailable: Option<String>,
    prefix: Option<String>,
}

/// What a gateway does when the shared store cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnavailable {
    /// Binds and unbinds get the dialect's unavailable error (look-ups go through).
    #[default]
    Refuse,
    /// The in-memory store answers instead, and the log says so.
    Local,
}

/// `[state]`.
#[derive(Debug, Clone)]
pub struct StateConfig {
    /// The Redis URL.
    pub redis: Secret,
    /// When Redis cannot be reached.
    pub on_unavailable: OnUnavailable,
    /// The prefix of every key.
    pub prefix: String,
}

/// Checks `[state]`; `expand` resolves `${VAR}` in the URL.
pub(super) fn state(raw: RawState, expand: &dyn Fn(&str) -> Result<String, String>) -> Result<StateConfig, String> {
    let Some(url) = raw.redis else {
        return Err("[state] names no store; write `redis = \"redis://HOST:PORT\"` or leave [state] out".to_owned());
    };
    let url = expand(url.expose()).map_err(|var| format!("environment variable `{var}` is not set; export it"))?;
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err("`redis` must be a redis:// or rediss:// URL".to_owned());
    }
    let on_unavailable = match raw.on_unavailable.as_deref() {
        None | Some("refuse") => OnUnavailable::Refuse,
        Some("local") => OnUnavailable::Local,
        Some(other) => return Err(format!("`on_unavailable = \"{other}\"` is not known; use \"refuse\" or \"local\"")),
    };
    Ok(StateConfig {
        redis: Secret::new(url),
        on_unavailable,
        prefix: raw.prefix.unwrap_or_else(|| "crossgate:".into()),
    })
}
