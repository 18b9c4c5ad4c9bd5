//! Routing: which upstream serves an instance, by the `[routing]` rules (first match wins), and how ids
//! and key references are named on each provider (`[[instances]]`, `[[keys]]`).

use crate::config::{Names, Routing};
use crate::dialect::Dialect;
use crate::model::Provider;

/// Who is asking: what a routing rule can match besides the instance.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The caller's name.
    pub caller: &'a str,
    /// The caller's dialect.
    pub dialect: Dialect,
}

/// The upstream name for one of the caller's instance ids (`None`: route by caller and dialect only).
pub fn upstream_for<'r>(routing: &'r Routing, asker: Asker<'_>, instance: Option<&str>) -> &'r str {
    routing
        .rules
        .iter()
        .find(|rule| {
            let instance_ok = match (&rule.instance, instance) {
                (None, _) => true,
                (Some(glob), Some(id)) => glob.matches(id),
                (Some(_), None) => false,
            };
            instance_ok
                && rule.caller.as_deref().is_none_or(|c| c == asker.caller)
                && rule.dialect.is_none_or(|d| d == asker.dialect)
        })
        .map_or(routing.default.as_str(), |rule| rule.upstream.as_str())
}

/// The name a resource has on `target`, given its name on `from` (or on any provider), through a
/// table of rows. `None` when no row names it.
pub fn rename<'t>(table: &'t [Names], name: &str, target: Provider) -> Option<Result<&'t str, &'t Names>> {
    let row = table.iter().find(|row| row.values().any(|v| v == name))?;
    Some(row.get(&target).map(String::as_str).ok_or(row))
}
