//! The coverage matrix: every (caller dialect, wire action) x (upstream provider), as translated, lossy
//! (what is lost) or refused (why), read from the mapping tables themselves (`mappings/actions.toml` and
//! `mappings/coverage.toml`), so the printed matrix cannot drift from what the gateway does.
//!
//! A loss that an upstream state policy cures (`cured_by`) is shown with the policy that cures it; given
//! a configuration's policies, the cells of a provider that has the policy are shown without it.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::config::StatePolicy;
use crate::dialect::Dialect;
use crate::mapping::Mappings;
use crate::model::{Action, Provider};

const EMBEDDED: &str = include_str!("../mappings/coverage.toml");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCoverage {
    lossy: Vec<RawLossy>,
    refusals: Vec<RawRefusal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLossy {
    action: String,
    provider: String,
    #[serde(default)]
    callers: Vec<String>,
    what: String,
    cured_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefusal {
    provider: String,
    when: String,
    why: String,
}

/// How one pair translates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Translated with its meaning intact.
    Translated,
    /// Translated, losing what the text says.
    Lossy(String),
    /// Refused, for the reason given.
    Refused(String),
}

/// One cell of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    /// The caller's dialect.
    pub dialect: Dialect,
    /// The caller's wire action.
    pub wire_action: String,
    /// The canonical action.
    pub action: Action,
    /// The upstream provider.
    pub provider: Provider,
    /// How it translates.
    pub verdict: Verdict,
}

/// A conditional refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The upstream provider.
    pub provider: Provider,
    /// When it applies.
    pub when: String,
    /// Why.
    pub why: String,
}

/// The whole matrix.
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Every cell.
    pub cells: Vec<Cell>,
    /// Conditional refusals.
    pub refusals: Vec<Refusal>,
}

/// One loss, and the policy that cures it.
struct Loss {
    action: Action,
    provider: Provider,
    callers: Vec<Dialect>,
    what: String,
    cured_by: Option<(String, String)>,
}

/// Builds the matrix from the mapping tables and the coverage notes, with `policies` the state
/// policies configured per provider (none: the clouds' own rules).
pub fn matrix(maps: &Mappings, coverage_toml: &str, policies: &[(Provider, StatePolicy)]) -> Result<Matrix, String> {
    let raw: RawCoverage = crate::tomlfile::parse(coverage_toml).map_err(|(offset, message)| {
        format!("mappings/coverage.toml:{}: {message}", crate::tomlfile::line_of(coverage_toml, offset))
    })?;
    let provider = |name: &str| {
        Provider::from_name(name).ok_or_else(|| format!("mappings/coverage.toml: unknown provider `{name}`"))
    };
    let mut lossy = Vec::new();
    for row in raw.lossy {
        let action = Action::from_name(&row.action)
            .ok_or_else(|| format!("mappings/coverage.toml: unknown action `{}`", row.action))?;
        let callers = row
            .callers
            .iter()
            .map(|name| {
                Dialect::from_name(name).ok_or_else(|| format!("mappings/coverage.toml: unknown dialect `{name}`"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let cured_by = match row.cured_by {
            None => None,
            Some(cure) => {
                let (setting, value) = cure
                    .split_once('=')
                    .ok_or_else(|| format!("mappings/coverage.toml: `cured_by = \"{cure}\"` is not `setting=value`"))?;
                if !crate::config::CURES.contains(&(setting, value)) {
                    return Err(format!("mappings/coverage.toml: `cured_by = \"{cure}\"` names no state policy"));
                }
                Some((setting.to_owned(), value.to_owned()))
            }
        };
        lossy.push(Loss { action, provider: provider(&row.provider)?, callers, what: row.what, cured_by });
    }
    let refusals = raw
        .refusals
        .into_iter()
        .map(|r| Ok(Refusal { provider: provider(&r.provider)?, when: r.when, why: r.why }))
        .collect::<Result<Vec<_>, String>>()?;
    let mut cells = Vec::new();
    for dialect in Dialect::ALL {
        // The matrix is what callers can send; replication and policy steps are crossgate's own calls.
        for entry in maps.actions(dialect).entries.iter().filter(|e| e.action.is_for_callers()) {
            for p in Provider::ALL {
                let speaks = maps.actions(Dialect::of_provider(p)).entries.iter().any(|e| e.action == entry.action);
                let cured = |(setting, value): &(String, String)| {
                    policies.iter().any(|(pp, policy)| *pp == p && policy.has(setting, value))
                };
                let losses: Vec<String> = lossy
                    .iter()
                    .filter(|l| {
                        l.action == entry.action
                            && l.provider == p
                            && (l.callers.is_empty() || l.callers.contains(&dialect))
                            && !l.cured_by.as_ref().is_some_and(cured)
                    })
                    .map(|l| match &l.cured_by {
                        None => l.what.clone(),
                        Some((setting, value)) if value == "true" => {
                            format!("{} (cured by `{setting} = true`)", l.what)
                        }
                        Some((setting, value)) => format!("{} (cured by `{setting} = \"{value}\"`)", l.what),
                    })
                    .collect();
                let verdict = if !speaks {
                    Verdict::Refused(format!("{p} has no {} action", entry.action))
                } else if losses.is_empty() {
                    Verdict::Translated
                } else {
                    Verdict::Lossy(losses.join("; "))
                };
                cells.push(Cell {
                    dialect,
                    wire_action: entry.wire.clone(),
                    action: entry.action,
                    provider: p,
                    verdict,
                });
            }
        }
    }
    Ok(Matrix { cells, refusals })
}

/// The matrix as Markdown.
pub fn render(matrix: &Matrix) -> String {
    let mut out = String::from("| caller dialect | action | upstream | verdict |\n| --- | --- | --- | --- |\n");
    for c in &matrix.cells {
        let verdict = match &c.verdict {
            Verdict::Translated => "translated".to_owned(),
            Verdict::Lossy(what) => format!("lossy: {what}"),
            Verdict::Refused(why) => format!("refused: {why}"),
        };
        let _ = writeln!(out, "| {} | {} | {} | {verdict} |", c.dialect, c.wire_action, c.provider);
    }
    out.push_str("\nRefused in the caller's dialect before anything is forwarded:\n\n");
    for r in &matrix.refusals {
        let _ = writeln!(out, "- {}: when {}: {}", r.provider, r.when, r.why);
    }
    out
}

/// The matrix of the embedded tables, rendered, with the clouds' own rules.
pub fn render_default() -> Result<String, String> {
    render_with(&[])
}

/// The matrix of the embedded tables with `policies` configured, rendered.
pub fn render_with(policies: &[(Provider, StatePolicy)]) -> Result<String, String> {
    let maps = Mappings::embedded().map_err(|e| e.to_string())?;
    Ok(render(&matrix(&maps, EMBEDDED, policies)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_dialect_action_and_provider_is_covered() {
        let maps = Mappings::embedded().unwrap();
        let m = matrix(&maps, EMBEDDED, &[]).unwrap();
        for dialect in Dialect::ALL {
            for entry in maps.actions(dialect).entries.iter().filter(|e| e.action.is_for_callers()) {
                for p in Provider::ALL {
                    assert!(
                        m.cells.iter().any(|c| c.dialect == dialect && c.wire_action == entry.wire && c.provider == p)
                    );
                }
            }
        }
        let attach_to_ecs =
            m.cells.iter().find(|c| c.wire_action == "BindInstanceKey" && c.provider == Provider::AliyunEcs).unwrap();
        assert!(matches!(attach_to_ecs.verdict, Verdict::Lossy(_)));
    }

    /// The README shows the matrix between markers; `BLESS=1 cargo test` rewrites it from the tables.
    #[test]
    fn the_readme_shows_the_current_matrix() {
        const BEGIN: &str = "<!-- coverage:begin -->\n";
        const END: &str = "<!-- coverage:end -->";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let (head, rest) = readme.split_once(BEGIN).expect("README has the coverage:begin marker");
        let (shown, tail) = rest.split_once(END).expect("README has the coverage:end marker");
        let current = render_default().unwrap();
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(path, format!("{head}{BEGIN}{current}{END}{tail}")).unwrap();
            return;
        }
        assert_eq!(shown, current, "README's coverage table is stale: run `BLESS=1 cargo test --lib coverage`");
    }

    #[test]
    fn unknown_names_are_refused() {
        let maps = Mappings::embedded().unwrap();
        let bad = "lossy = [{ action = \"reboot\", provider = \"aliyun-ecs\", what = \"x\" }]\nrefusals = []\n";
        assert!(matrix(&maps, bad, &[]).unwrap_err().contains("reboot"));
    }

    #[test]
    fn a_configured_policy_makes_its_cells_translated() {
        use crate::config::{OnRunning, Reboot};
        let maps = Mappings::embedded().unwrap();
        let verdict = |m: &Matrix, d: Dialect, wire: &str, p: Provider| {
            m.cells.iter().find(|c| c.dialect == d && c.wire_action == wire && c.provider == p).unwrap().verdict.clone()
        };
        let plain = matrix(&maps, EMBEDDED, &[]).unwrap();
        let Verdict::Lossy(what) = verdict(&plain, Dialect::AliyunEcs, "AttachKeyPair", Provider::TencentCvm) else {
            panic!()
        };
        assert!(what.contains("cured by `running = \"force-stop\"`"), "{what}");
        let policies = [
            (Provider::TencentCvm, StatePolicy { running: OnRunning::ForceStop, ..StatePolicy::default() }),
            (
                Provider::TencentLighthouse,
                StatePolicy { wait: Some(std::time::Duration::from_secs(1)), ..StatePolicy::default() },
            ),
            (Provider::AliyunEcs, StatePolicy { reboot: Reboot::IfRunning, ..StatePolicy::default() }),
        ];
        let cured = matrix(&maps, EMBEDDED, &policies).unwrap();
        assert_eq!(
            verdict(&cured, Dialect::TencentLighthouse, "AssociateInstancesKeyPairs", Provider::TencentCvm),
            Verdict::Translated
        );
        let Verdict::Lossy(what) = verdict(&cured, Dialect::AliyunEcs, "AttachKeyPair", Provider::TencentCvm) else {
            panic!()
        };
        assert!(!what.contains("RUNNING"), "only the uncured loss is left: {what}");
        let Verdict::Lossy(what) =
            verdict(&cured, Dialect::TencentCvm, "AssociateInstancesKeyPairs", Provider::TencentLighthouse)
        else {
            panic!()
        };
        assert!(!what.contains("asynchronous"), "{what}");
        let Verdict::Lossy(what) =
            verdict(&cured, Dialect::TencentCvm, "AssociateInstancesKeyPairs", Provider::AliyunEcs)
        else {
            panic!()
        };
        assert!(!what.contains("reboot") && what.contains("per instance"), "{what}");
    }
}
