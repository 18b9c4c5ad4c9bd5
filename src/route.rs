//! Routing: which upstream serves an instance, by the `[routing]` rules (first match wins), and how ids
//! and key references are named on each provider (`[[instances]]`, `[[keys]]`).

use crate::config::{Names, Routing};
use crate::model::{Dialect, Provider};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_demo_routes_by_instance_then_by_dialect() {
        let config = Config::demo();
        let ecs = Asker { caller: "demo", dialect: Dialect::AliyunEcs };
        let cvm = Asker { caller: "demo", dialect: Dialect::TencentCvm };
        assert_eq!(upstream_for(&config.routing, cvm, Some("lhins-ruy9d2tw")), "lighthouse");
        assert_eq!(upstream_for(&config.routing, cvm, Some("i-m5eg7be9ndloji64jknv")), "ecs");
        assert_eq!(upstream_for(&config.routing, cvm, Some("ins-1e4r6y8i")), "cvm");
        assert_eq!(upstream_for(&config.routing, ecs, None), "ecs", "a look-up stays on the caller's cloud");
        assert_eq!(upstream_for(&config.routing, cvm, None), "cvm");
    }

    #[test]
    fn rename_finds_rows_by_any_name() {
        let row: Names = [(Provider::TencentCvm, "ins-a".to_owned()), (Provider::AliyunEcs, "i-a".to_owned())].into();
        let table = vec![row];
        assert_eq!(rename(&table, "i-a", Provider::TencentCvm), Some(Ok("ins-a")));
        assert!(matches!(rename(&table, "ins-a", Provider::TencentLighthouse), Some(Err(_))));
        assert_eq!(rename(&table, "other", Provider::TencentCvm), None);
    }
}
