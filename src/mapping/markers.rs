//! `mappings/markers.toml`: the evidence each dialect leaves in a request, typed and checked once, for
//! detection ([`crate::dialect::detect()`] weighs it; nothing here looks at a request).
//!
//! Checking refuses a marker that names no place or two, a qualifier that does not fit its place (`is =
//! "service"` away from an Authorization header, or for a dialect without a TC3 service), an upper-case
//! header name, a zero weight, a path that does not start with `/`, and a tie rule naming an unknown
//! dialect or the dialect itself, each at the offset the mapping loader turns into a file and a line.

use serde::Deserialize;
use toml::Spanned;

use crate::model::Dialect;

/// A problem in the file: the byte offset it points at, and what is wrong.
pub(super) type Problem = (usize, String);

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

/// One dialect's table, as written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDialectMarkers {
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

/// Checks one dialect's table, found at offset `at`; `has_service` says whether the dialect has a TC3
/// service in `actions.toml`.
pub(super) fn check(
    dialect: Dialect,
    at: usize,
    raw: RawDialectMarkers,
    has_service: bool,
) -> Result<DialectMarkers, Problem> {
    let RawDialectMarkers { paths, wins_ties_with, markers } = raw;
    if paths.is_empty() {
        return Err((at, format!("`{}`: `paths` names no path", dialect.name())));
    }
    if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
        return Err((at, format!("`{}`: the path `{bad}` must start with `/`", dialect.name())));
    }
    let mut ties = Vec::with_capacity(wins_ties_with.len());
    for name in wins_ties_with {
        match Dialect::from_name(name.get_ref()) {
            Some(other) if other != dialect => ties.push(other),
            _ => {
                let problem = format!("`wins_ties_with` names `{}`, which is not another dialect", name.get_ref());
                return Err((name.span().start, problem));
            }
        }
    }
    let markers = markers
        .into_iter()
        .map(|m| {
            let at = m.span().start;
            marker(m.into_inner(), has_service).map_err(|problem| (at, problem))
        })
        .collect::<Result<_, _>>()?;
    Ok(DialectMarkers { paths, wins_ties_with: ties, markers })
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
    use super::*;

    fn raw(text: &str) -> RawMarker {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn markers_read_their_place_test_and_weight() {
        let m = marker(raw("authorization = \"TC3-HMAC-SHA256\"\nis = \"service\"\nweight = 3"), true).unwrap();
        assert_eq!(m, Marker { place: Place::Authorization("TC3-HMAC-SHA256".into()), test: Test::Service, weight: 3 });
        let m = marker(raw("param = \"Timestamp\"\nform = \"iso8601_utc\""), false).unwrap();
        assert_eq!((m.test, m.weight), (Test::Form(ValueForm::Iso8601Utc), 1));
        let m = marker(raw("param = \"Format\"\nvalues = [\"JSON\", \"XML\"]"), false).unwrap();
        assert_eq!(m.test, Test::OneOf(vec!["JSON".into(), "XML".into()]));
    }
}
