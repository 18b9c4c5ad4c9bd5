//! Dialect detection: which dialect and which signature scheme a request speaks, weighed from every marker
//! a dialect leaves (`mappings/markers.toml`: the path, the Authorization scheme and TC3 service, header
//! prefixes, parameter names only one dialect uses, the versions and actions of `mappings/actions.toml`,
//! time-stamp forms), without decoding the request (`shared/reference/signing.md` section 0).
//!
//! A path served by one dialect decides alone. On a shared path each dialect's evidence is added up and the
//! heaviest wins, so a request that lacks its credential (or carries a misspelled one, or a garbled
//! Authorization header) is still answered in its own dialect, whose codec then names what is missing.
//! When nothing points to any dialect, or the evidence ties between dialects that answer differently,
//! detection says why, and the request gets a plain-text answer.

use std::borrow::Cow;

use super::{Dialect, RawRequest, Undetected};
use crate::mapping::Mappings;
use crate::mapping::markers::{Marker, Place, Test, ValueForm};
use crate::sign::encoding::form_decode_item;
use crate::sign::{Param, Scheme};

/// What detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detected {
    /// The dialect.
    pub dialect: Dialect,
    /// The signature scheme.
    pub scheme: Scheme,
}

/// Header and parameter names detection reads itself, to tell the scheme once the dialect is known.
mod name {
    pub(super) const AUTHORIZATION: &str = "authorization";
    pub(super) const SIGNATURE_METHOD: &str = "SignatureMethod";
    pub(super) const CREDENTIAL: &str = "Credential=";
}

/// Tells the dialect and the signature scheme of a request.
///
/// # Errors
/// [`Undetected`], saying why: a path no dialect is served on, no evidence of any dialect, or evidence
/// that ties between dialects that answer differently.
pub fn detect(raw: &RawRequest<'_>, maps: &Mappings) -> Result<Detected, Undetected> {
    let served: Vec<Dialect> =
        Dialect::ALL.into_iter().filter(|d| maps.markers(*d).paths.iter().any(|p| p == raw.path)).collect();
    let evidence = Evidence::of(raw);
    let dialect = match served.as_slice() {
        [] => return Err(not_served(raw.path, maps)),
        // A path served by one dialect decides alone: nothing to weigh.
        [only] => *only,
        several => {
            let scored: Vec<(Dialect, u32)> = several.iter().map(|d| (*d, weigh(&evidence, *d, maps))).collect();
            decide(&scored, raw.path, maps)?
        }
    };
    Ok(Detected { dialect, scheme: scheme_of(dialect, &evidence) })
}

/// The weight of the evidence a request shows for `dialect`.
fn weigh(evidence: &Evidence<'_>, dialect: Dialect, maps: &Mappings) -> u32 {
    maps.markers(dialect).markers.iter().filter(|m| evidence.shows(m, dialect, maps)).map(|m| m.weight).sum()
}

/// The heaviest dialect, a tie resolved by `wins_ties_with`, or why there is none.
fn decide(scored: &[(Dialect, u32)], path: &str, maps: &Mappings) -> Result<Dialect, Undetected> {
    let best = scored.iter().map(|(_, w)| *w).max().unwrap_or(0);
    if best == 0 {
        return Err(no_evidence(scored, path, maps));
    }
    let top: Vec<Dialect> = scored.iter().filter(|(_, w)| *w == best).map(|(d, _)| *d).collect();
    let winner = top
        .iter()
        .find(|d| top.iter().all(|other| other == *d || maps.markers(**d).wins_ties_with.contains(other)))
        .copied();
    winner.ok_or_else(|| {
        let names: Vec<&str> = top.iter().map(|d| d.name()).collect();
        Undetected(format!(
            "the request's evidence is split evenly between {} (weight {best} each): send the signature of one \
             dialect only",
            names.join(" and ")
        ))
    })
}

fn not_served(path: &str, maps: &Mappings) -> Undetected {
    let mut paths: Vec<&str> = Vec::new();
    for dialect in Dialect::ALL {
        for p in &maps.markers(dialect).paths {
            if !paths.contains(&p.as_str()) {
                paths.push(p);
            }
        }
    }
    let served: Vec<String> = paths
        .iter()
        .map(|p| {
            let on = Dialect::ALL.into_iter().filter(|d| maps.markers(*d).paths.iter().any(|q| q == p));
            format!("`{p}` ({})", on.map(Dialect::name).collect::<Vec<_>>().join(", "))
        })
        .collect();
    Undetected(format!(
        "crossgate does not serve the path `{}`: API requests go to {}",
        shown(path),
        served.join(" or ")
    ))
}

/// Nothing points anywhere: say what each dialect's strongest evidence would be.
fn no_evidence(scored: &[(Dialect, u32)], path: &str, maps: &Mappings) -> Undetected {
    let expected: Vec<String> = scored
        .iter()
        .map(|(d, _)| {
            let markers = &maps.markers(*d).markers;
            let strongest = markers.iter().map(|m| m.weight).max().unwrap_or(0);
            let mut said: Vec<String> = Vec::new();
            for m in markers.iter().filter(|m| m.weight == strongest && m.test == Test::Present) {
                let text = describe(&m.place);
                if !said.contains(&text) {
                    said.push(text);
                }
            }
            format!("{}: {}", d.name(), said.join(" or "))
        })
        .collect();
    Undetected(format!(
        "the request carries no evidence of a dialect crossgate speaks on `{}`; expected {}",
        shown(path),
        expected.join("; ")
    ))
}

fn describe(place: &Place) -> String {
    match place {
        Place::Param(n) => format!("the parameter `{n}`"),
        Place::ParamPrefix(n) => format!("parameters `{n}...`"),
        Place::Header(n) => format!("the header `{n}`"),
        Place::HeaderPrefix(n) => format!("`{n}*` headers"),
        Place::Authorization(s) => format!("an Authorization header `{s} ...`"),
        Place::HostPrefix(h) => format!("a Host `{h}...`"),
    }
}

/// A caller's path as a message shows it: at most 64 characters.
fn shown(path: &str) -> Cow<'_, str> {
    match path.char_indices().nth(64) {
        Some((cut, _)) => Cow::Owned(format!("{}...", &path[..cut])),
        None => Cow::Borrowed(path),
    }
}

/// The scheme of a request in `dialect`: the Authorization header's, else the signature parameters'.
fn scheme_of(dialect: Dialect, evidence: &Evidence<'_>) -> Scheme {
    let authorization = evidence.authorization.unwrap_or("");
    match dialect {
        Dialect::AliyunEcs if authorization.starts_with(Scheme::Acs3.name()) => Scheme::Acs3,
        Dialect::AliyunEcs => Scheme::AliyunRpc,
        Dialect::TencentCvm | Dialect::TencentLighthouse if authorization.starts_with(Scheme::Tc3.name()) => {
            Scheme::Tc3
        }
        Dialect::TencentV2 | Dialect::TencentCvm | Dialect::TencentLighthouse => {
            match evidence.param(name::SIGNATURE_METHOD) {
                Some(method) if method == Scheme::TencentV1Sha256.name() => Scheme::TencentV1Sha256,
                _ => Scheme::TencentV1Sha1,
            }
        }
    }
}

/// What a request shows detection: its parameters (query, then form body, decoded leniently), headers
/// and Host.
#[derive(Debug)]
pub struct Evidence<'a> {
    raw: &'a RawRequest<'a>,
    /// In the order received; a request carries a few dozen at most, so a scan beats hashing.
    params: Vec<Param<'a>>,
    /// The Authorization header and the Host, which markers of every dialect read.
    authorization: Option<&'a str>,
    host: &'a str,
    /// The service of the Authorization header's TC3 credential scope, which two dialects test.
    service: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    /// Reads the request once. A parameter that does not decode is skipped; a body is read as a form when
    /// it says it is one, or says nothing.
    pub fn of(raw: &'a RawRequest<'a>) -> Evidence<'a> {
        let body = raw.form_body();
        let params = raw
            .query
            .split('&')
            .chain(body.split('&'))
            .filter(|item| !item.is_empty())
            .filter_map(|item| form_decode_item(item).ok())
            .collect();
        let authorization = raw.header(name::AUTHORIZATION);
        Evidence { raw, params, authorization, host: raw.host(), service: authorization.and_then(credential_service) }
    }

    /// The first value of `name`.
    fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_ref())
    }

    /// True when the request carries `marker` as `dialect` defines it.
    fn shows(&self, marker: &Marker, dialect: Dialect, maps: &Mappings) -> bool {
        let raw = self.raw;
        match &marker.place {
            Place::Param(name) => self.param(name).is_some_and(|v| passes(&marker.test, v, dialect, maps)),
            Place::ParamPrefix(prefix) => self.params.iter().any(|(n, _)| n.starts_with(prefix.as_str())),
            Place::Header(name) => raw.header(name).is_some_and(|v| passes(&marker.test, v, dialect, maps)),
            Place::HeaderPrefix(prefix) => raw.headers.keys().any(|n| n.as_str().starts_with(prefix.as_str())),
            Place::Authorization(scheme) => {
                self.authorization.filter(|v| v.starts_with(scheme.as_str())).is_some_and(|v| match marker.test {
                    // Read once per request, not once per dialect that tests it.
                    Test::Service => self.service.is_some_and(|s| maps.service(dialect) == Some(s)),
                    _ => passes(&marker.test, v, dialect, maps),
                })
            }
            Place::HostPrefix(prefix) => self.host.starts_with(prefix.as_str()),
        }
    }
}

/// True when `value` passes `test` for `dialect`.
fn passes(test: &Test, value: &str, dialect: Dialect, maps: &Mappings) -> bool {
    match test {
        Test::Present => true,
        Test::OneOf(values) => values.iter().any(|v| v.eq_ignore_ascii_case(value)),
        Test::Form(ValueForm::UnixSeconds) => {
            (1..=20).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())
        }
        Test::Form(ValueForm::Iso8601Utc) => super::is_iso8601_utc(value),
        Test::Version => value == maps.version(dialect),
        Test::Action => maps.action(dialect, value).is_some(),
        Test::Service => credential_service(value).is_some_and(|s| maps.service(dialect) == Some(s)),
    }
}

/// The service named by an Authorization header's TC3 credential scope (`.../Date/service/tc3_request`).
fn credential_service(authorization: &str) -> Option<&str> {
    // The scope is the `Credential=` word of the header's comma-separated items, each item's last word
    // (the first item starts with the scheme).
    let scope = authorization
        .split(',')
        .find_map(|item| item.rsplit(' ').next().and_then(|word| word.strip_prefix(name::CREDENTIAL)))?;
    scope.split('/').nth(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn detect_in(
        path: &str,
        query: &str,
        headers: &[(&'static str, &str)],
        body: &str,
    ) -> Result<Detected, Undetected> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(*n, v.parse().unwrap());
        }
        let raw = RawRequest { method: "POST", path, query, headers: &map, body: body.as_bytes() };
        detect(&raw, &Mappings::embedded().unwrap())
    }

    #[test]
    fn time_stamp_forms_are_told_apart() {
        assert!(super::super::is_iso8601_utc("2024-05-01T08:00:00Z"));
        assert!(!super::super::is_iso8601_utc("2024-05-01 08:00:00Z"));
        assert!(!super::super::is_iso8601_utc("1714550400"));
        let maps = Mappings::embedded().unwrap();
        let unix = Test::Form(ValueForm::UnixSeconds);
        assert!(passes(&unix, "1714550400", Dialect::TencentCvm, &maps));
        assert!(!passes(&unix, "", Dialect::TencentCvm, &maps));
        assert!(!passes(&unix, "2024-05-01T08:00:00Z", Dialect::TencentCvm, &maps));
        assert!(!passes(&unix, &"9".repeat(21), Dialect::TencentCvm, &maps));
    }

    #[test]
    fn the_tc3_service_is_read_from_the_credential_scope() {
        let maps = Mappings::embedded().unwrap();
        let auth = "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request, SignedHeaders=host, Signature=0";
        assert!(passes(&Test::Service, auth, Dialect::TencentLighthouse, &maps));
        assert!(!passes(&Test::Service, auth, Dialect::TencentCvm, &maps));
        assert!(!passes(&Test::Service, "TC3-HMAC-SHA256 Credential=AKID", Dialect::TencentCvm, &maps));
        let glued = "TC3-HMAC-SHA256 XCredential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=host, Signature=0";
        assert!(!passes(&Test::Service, glued, Dialect::TencentCvm, &maps), "the scope is an item of its own");
        let tight = "TC3-HMAC-SHA256 SignedHeaders=host,Credential=AKID/2024-05-01/cvm/tc3_request,Signature=0";
        assert!(passes(&Test::Service, tight, Dialect::TencentCvm, &maps), "items apart by commas alone");
    }

    #[test]
    fn paths_decide_or_refuse() {
        let v2 = detect_in("/v2/index.php", "", &[], "").unwrap();
        assert_eq!((v2.dialect, v2.scheme), (Dialect::TencentV2, Scheme::TencentV1Sha1));
        let why = detect_in("/other", "SecretId=x", &[], "").unwrap_err().0;
        assert!(why.contains("does not serve the path `/other`") && why.contains("`/v2/index.php`"), "{why}");
        let long = format!("/{}", "a".repeat(500));
        assert!(detect_in(&long, "", &[], "").unwrap_err().0.len() < 400, "a long path is not echoed whole");
    }

    #[test]
    fn undetected_requests_say_why() {
        let why = detect_in("/", "Foo=bar", &[], "").unwrap_err().0;
        assert!(why.contains("no evidence") && why.contains("`AccessKeyId`") && why.contains("`SecretId`"), "{why}");
        let why = detect_in("/", "Action=DescribeInstances", &[], "").unwrap_err().0;
        assert!(why.contains("split evenly between tencent_cvm and tencent_lighthouse and aliyun_ecs"), "{why}");
    }
}
