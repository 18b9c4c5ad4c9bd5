//! `mappings/markers.toml`: the evidence each dialect leaves in a request, typed and checked once, for
//! detection ([`crate::dialect::detect()`] weighs it; nothing here looks at a request).
//!
//! Loading refuses a marker that names no place or two, a qualifier that does not fit its place (`is =
//! "service"` away from an Authorization header, or for a dialect without a TC3 service), an upper-case
//! header name, a zero weight, a path that does not start with `/`, and a tie rule naming an unknown
//! dialect or the dialect itself, each with the file and the line.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{DialectActions, MappingError, err, parse, per_dialect};
use crate::model::Dialect;

/// Where a marker looks in a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A query or form-body parameter of this name.
    Param(String),
    /// A parameter whose name starts with this.
    ParamPrefix(String),
    /// A header of this (lower-case) name.
    Header(String),
    /// A header whose (lower-case) name starts with this.
    HeaderPrefix(String),
    /// An Authorization header that starts with this scheme name.
    Authorization(String),
    /// A Host header that starts with this.
    HostPrefix(String),
}

/// What a marker's value must be; [`Test::Present`] when being there is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// Any value.
    Present,
    /// One of these, ASCII case ignored.
    OneOf(Vec<String>),
    /// A value of this form.
    Form(ValueForm),
    /// The dialect's version (`mappings/actions.toml`).
    Version,
    /// One of the dialect's wire actions, aliases included.
    Action,
    /// A credential scope naming the dialect's TC3 service.
    Service,
}

/// The form of a time stamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueForm {
    /// Digits only: Unix seconds.
    UnixSeconds,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    Iso8601Utc,
}

/// One piece of evidence and its weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Where to look.
    pub place: Place,
    /// What the value must be.
    pub test: Test,
    /// How much it counts.
    pub weight: u32,
}

/// The evidence of one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialectMarkers {
    /// The paths the dialect is served on.
    pub paths: Vec<String>,
    /// The dialects a tie with this one resolves to this one.
    pub wins_ties_with: Vec<Dialect>,
    /// Every marker, in file order.
    pub markers: Vec<Marker>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDialectMarkers {
    paths: Vec<String>,
    #[serde(default)]
    wins_ties_with: Vec<Spanned<String>>,
    markers: Vec<Spanned<RawMarker>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarker {
    param: Option<String>,
    param_prefix: Option<String>,
    header: Option<String>,
    header_prefix: Option<String>,
    authorization: Option<String>,
    host_prefix: Option<String>,
    values: Option<Vec<String>>,
    form: Option<String>,
    is: Option<String>,
    weight: Option<u32>,
}

/// Loads and checks the markers file; `actions` says which dialects have a TC3 service.
pub(super) fn load(
    file: &str,
    text: &str,
    actions: &BTreeMap<Dialect, DialectActions>,
) -> Result<BTreeMap<Dialect, DialectMarkers>, MappingError> {
    let raw: BTreeMap<Spanned<String>, Spanned<RawDialectMarkers>> = parse(file, text)?;
    let mut out = BTreeMap::new();
    for (dialect, spanned) in per_dialect(file, text, raw)? {
        let at = spanned.span().start;
        let RawDialectMarkers { paths, wins_ties_with, markers } = spanned.into_inner();
        if paths.is_empty() {
            return Err(err(file, text, at, format!("`{}`: `paths` names no path", dialect.name())));
        }
        if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
            return Err(err(file, text, at, format!("`{}`: the path `{bad}` must start with `/`", dialect.name())));
        }
        let mut ties = Vec::with_capacity(wins_ties_with.len());
        for name in wins_ties_with {
            match Dialect::from_name(name.get_ref()) {
                Some(other) if other != dialect => ties.push(other),
                _ => {
                    return Err(err(
                        file,
                        text,
                        name.span().start,
                        format!("`wins_ties_with` names `{}`, which is not another dialect", name.get_ref()),
                    ));
                }
            }
        }
        let has_service = actions.get(&dialect).is_some_and(|a| a.service.is_some());
        let markers = markers
            .into_iter()
            .map(|m| {
                let at = m.span().start;
                marker(m.into_inner(), has_service).map_err(|problem| err(file, text, at, problem))
            })
            .collect::<Result<_, _>>()?;
        out.insert(dialect, DialectMarkers { paths, wins_ties_with: ties, markers });
    }
    Ok(out)
}

/// One marker, checked; the problem as a sentence.
fn marker(raw: RawMarker, has_service: bool) -> Result<Marker, String> {
    let RawMarker { param, param_prefix, header, header_prefix, authorization, host_prefix, values, form, is, weight } =
        raw;
    let places: Vec<Place> = [
        param.map(Place::Param),
        param_prefix.map(Place::ParamPrefix),
        header.map(Place::Header),
        header_prefix.map(Place::HeaderPrefix),
        authorization.map(Place::Authorization),
        host_prefix.map(Place::HostPrefix),
    ]
    .into_iter()
    .flatten()
    .collect();
    let [place] = <[Place; 1]>::try_from(places).map_err(|places| {
        format!(
            "a marker names {} places; give exactly one of param, param_prefix, header, header_prefix, \
             authorization, host_prefix",
            places.len()
        )
    })?;
    let name = match &place {
        Place::Param(n)
        | Place::ParamPrefix(n)
        | Place::Header(n)
        | Place::HeaderPrefix(n)
        | Place::Authorization(n)
        | Place::HostPrefix(n) => n,
    };
    if name.is_empty() {
        return Err("a marker's place is empty".to_owned());
    }
    if matches!(place, Place::Header(_) | Place::HeaderPrefix(_)) && name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(format!("the header name `{name}` must be lower case"));
    }
    let test = match (values, form.as_deref(), is.as_deref()) {
        (None, None, None) => Test::Present,
        (Some(values), None, None) if !values.is_empty() => Test::OneOf(values),
        (Some(_), None, None) => return Err("`values` lists no value".to_owned()),
        (None, Some("unix_seconds"), None) => Test::Form(ValueForm::UnixSeconds),
        (None, Some("iso8601_utc"), None) => Test::Form(ValueForm::Iso8601Utc),
        (None, Some(other), None) => {
            return Err(format!("unknown form `{other}`; use \"unix_seconds\" or \"iso8601_utc\""));
        }
        (None, None, Some("version")) => Test::Version,
        (None, None, Some("action")) => Test::Action,
        (None, None, Some("service")) if !matches!(place, Place::Authorization(_)) => {
            return Err("`is = \"service\"` reads a credential scope: use it with `authorization`".to_owned());
        }
        (None, None, Some("service")) if !has_service => {
            return Err("`is = \"service\"` needs a `service` for this dialect in actions.toml".to_owned());
        }
        (None, None, Some("service")) => Test::Service,
        (None, None, Some(other)) => {
            return Err(format!("unknown `is = \"{other}\"`; use \"version\", \"action\" or \"service\""));
        }
        _ => return Err("give at most one of `values`, `form` and `is`".to_owned()),
    };
    if matches!(place, Place::HeaderPrefix(_) | Place::ParamPrefix(_)) && test != Test::Present {
        return Err("a prefix marker counts names only; drop `values`, `form` or `is`".to_owned());
    }
    let weight = weight.unwrap_or(1);
    if weight == 0 {
        return Err("`weight` must be at least 1; remove the marker instead".to_owned());
    }
    Ok(Marker { place, test, weight })
}

#[cfg(test)]
mod tests {
    use super::super::{Mappings, embedded_source};
    use super::*;

    fn load_with(text: &str) -> Result<Mappings, MappingError> {
        Mappings::from_sources(|n| {
            let text = if n == "markers.toml" { text.to_owned() } else { embedded_source(n).to_owned() };
            Ok((format!("test/{n}"), text))
        })
    }

    #[test]
    fn embedded_markers_load() {
        let maps = Mappings::embedded().unwrap();
        let ecs = maps.markers(Dialect::AliyunEcs);
        assert_eq!(ecs.paths, ["/"]);
        assert!(ecs.markers.contains(&Marker {
            place: Place::Param("AccessKeyId".into()),
            test: Test::Present,
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
            let e = load_with(&text).unwrap_err();
            let line = text.lines().position(|l| l.trim() == format!("{bad},")).unwrap() + 1;
            assert_eq!((e.file.as_str(), e.line), ("test/markers.toml", line), "{bad}: {e}");
            assert!(e.problem.contains(problem), "{bad}: {e}");
        }
    }

    #[test]
    fn bad_paths_and_tie_rules_are_refused() {
        let base = embedded_source("markers.toml");
        let e = load_with(&base.replacen("paths = [\"/v2/index.php\"]", "paths = [\"v2/index.php\"]", 1)).unwrap_err();
        assert!(e.problem.contains("must start with `/`"), "{e}");
        let e = load_with(&base.replacen("paths = [\"/v2/index.php\"]", "paths = []", 1)).unwrap_err();
        assert!(e.problem.contains("names no path"), "{e}");
        let itself =
            base.replacen("wins_ties_with = [\"tencent_lighthouse\"]", "wins_ties_with = [\"tencent_cvm\"]", 1);
        assert!(load_with(&itself).unwrap_err().problem.contains("not another dialect"));
        let unknown = base.replacen("wins_ties_with = [\"tencent_lighthouse\"]", "wins_ties_with = [\"cbs\"]", 1);
        let e = load_with(&unknown).unwrap_err();
        let line = unknown.lines().position(|l| l.contains("\"cbs\"")).unwrap() + 1;
        assert_eq!(e.line, line, "{e}");
        let missing = base.replacen("[tencent_v2]\npaths = [\"/v2/index.php\"]\nmarkers = []\n", "", 1);
        assert!(load_with(&missing).unwrap_err().problem.contains("no table for dialect `tencent_v2`"));
    }
}
