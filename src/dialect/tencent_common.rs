//! What the three Tencent dialects share: the legacy endpoint (`tencent_v2`) and API 3.0 for CVM and
//! Lighthouse (`tencent_v3`).
//!
//! - `v1_auth`: signature v1 material from the `SecretId`/`Signature`/`Nonce`/`Timestamp`/
//!   `SignatureMethod` parameters, the query and a form body merged and decoded once
//!   (`shared/reference/signing.md` §2, "Steps to verify");
//! - `fields`: the business parameters (`InstanceIds`, `KeyIds`, `ForceStop`, `Filters`, `Offset`,
//!   `Limit`) read from a flattened form or a JSON body, and checked into a canonical
//!   [`Operation`](crate::model::Operation) (protocols.md 3.2, 3.5, 4.3, 4.4, 4.6, section 6);
//! - `envelope`: the `{"Response": {...}}` envelope both ways, errors and all-or-nothing rendering of
//!   per-instance failures (protocols.md 3.2, 4.2);
//! - `outbound`: what an upstream request carries, flattened into a v1-signed form or a JSON body.
//!
//! Nothing here knows an action name, version or error code: those come from
//! [`Mappings`](crate::mapping::Mappings).

use std::borrow::Cow;

use crate::model::{Code, Fault};

pub(crate) mod envelope;
pub(crate) mod fields;
pub(crate) mod outbound;
pub(crate) mod v1_auth;

pub use v1_auth::is_v1;

/// Wire parameter and field names shared by the Tencent dialects.
pub(crate) mod param {
    // Common parameters of a v1-signed request (protocols.md 3.1 and 4.1; signing.md §2).
    pub(crate) const ACTION: &str = "Action";
    pub(crate) const VERSION: &str = "Version";
    pub(crate) const REGION: &str = "Region";
    pub(crate) const TIMESTAMP: &str = "Timestamp";
    pub(crate) const NONCE: &str = "Nonce";
    pub(crate) const SECRET_ID: &str = "SecretId";
    pub(crate) const SIGNATURE: &str = "Signature";
    pub(crate) const SIGNATURE_METHOD: &str = "SignatureMethod";
    pub(crate) const TOKEN: &str = "Token";
    pub(crate) const LANGUAGE: &str = "Language";
    pub(crate) const REQUEST_CLIENT: &str = "RequestClient";
    /// Every common parameter: signed, but not part of an action's business parameters.
    pub(crate) const COMMON: &[&str] = &[
        ACTION,
        VERSION,
        REGION,
        TIMESTAMP,
        NONCE,
        SECRET_ID,
        SIGNATURE,
        SIGNATURE_METHOD,
        TOKEN,
        LANGUAGE,
        REQUEST_CLIENT,
    ];

    // Business parameters (protocols.md 3.2, 4.3, 4.4, 4.6).
    pub(crate) const INSTANCE_IDS: &str = "InstanceIds";
    pub(crate) const KEY_IDS: &str = "KeyIds";
    pub(crate) const FORCE_STOP: &str = "ForceStop";
    pub(crate) const FILTERS: &str = "Filters";
    pub(crate) const FILTER_NAME: &str = "Name";
    pub(crate) const FILTER_VALUES: &str = "Values";
    pub(crate) const OFFSET: &str = "Offset";
    pub(crate) const LIMIT: &str = "Limit";
    // Replication and state-policy steps (ImportKeyPair, StartInstances, StopInstances, RebootInstances).
    pub(crate) const KEY_NAME: &str = "KeyName";
    pub(crate) const PUBLIC_KEY: &str = "PublicKey";
    pub(crate) const PROJECT_ID: &str = "ProjectId";
    pub(crate) const STOP_TYPE: &str = "StopType";
    /// `StopType` values; the first is the forced stop a state policy sends.
    pub(crate) const STOP_TYPES: [&str; 3] = ["HARD", "SOFT", "SOFT_FIRST"];
    /// The parameters read as single values.
    pub(crate) const SINGLES: &[&str] = &[FORCE_STOP, OFFSET, LIMIT, KEY_NAME, PUBLIC_KEY, PROJECT_ID, STOP_TYPE];
    /// The only `DescribeKeyPairs` filter crossgate speaks.
    pub(crate) const KEY_NAME_FILTER: &str = "key-name";

    // Old-style legacy actions (protocols.md 3.3).
    pub(crate) const OLD_INSTANCE_IDS: &str = "instanceIds";
    pub(crate) const OLD_KEY_ID: &str = "keyId";
}

/// Header names, lower case for look-ups, and as the SDKs spell them for outgoing requests.
pub(crate) mod header {
    pub(crate) const AUTHORIZATION: &str = "authorization";
    pub(crate) const CONTENT_TYPE: &str = "content-type";
    pub(crate) const HOST: &str = "host";
    pub(crate) const X_TC_ACTION: &str = "x-tc-action";
    pub(crate) const X_TC_VERSION: &str = "x-tc-version";
    pub(crate) const X_TC_TIMESTAMP: &str = "x-tc-timestamp";
    pub(crate) const X_TC_REGION: &str = "x-tc-region";

    pub(crate) const OUT_CONTENT_TYPE: &str = "Content-Type";
    pub(crate) const OUT_AUTHORIZATION: &str = "Authorization";
    pub(crate) const OUT_X_TC_ACTION: &str = "X-TC-Action";
    pub(crate) const OUT_X_TC_VERSION: &str = "X-TC-Version";
    pub(crate) const OUT_X_TC_TIMESTAMP: &str = "X-TC-Timestamp";
    pub(crate) const OUT_X_TC_REGION: &str = "X-TC-Region";
}

/// Media types.
pub(crate) mod media {
    /// Every Tencent reply, exactly this (the Python SDK inspects `Error` only for this exact value).
    pub(crate) const JSON: &str = "application/json";
    /// A v1 POST body.
    pub(crate) const FORM: &str = "application/x-www-form-urlencoded";
}

/// How much of a caller's value a message repeats.
const SHOWN_CHARS: usize = 64;

/// A caller's value as a message shows it: at most [`SHOWN_CHARS`] characters, so a 1 MB value never
/// comes back in an error.
pub(crate) fn shown(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(SHOWN_CHARS) {
        None => Cow::Borrowed(value),
        Some((cut, _)) => Cow::Owned(format!("{}...", &value[..cut])),
    }
}

/// The longest region name accepted.
const MAX_REGION_CHARS: usize = 64;

/// The Tencent endpoints take GET (query) and POST (form or JSON) only.
pub(crate) fn check_method(method: &str) -> Result<(), Fault> {
    if method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("POST") {
        return Ok(());
    }
    Err(Fault::caller(
        Code::InvalidParameter,
        format!("The HTTP method `{}` is not supported; use GET or POST.", shown(method)),
    ))
}

/// The caller's region (`ap-guangzhou`, or an old short code like `gz`): optional, and when given, lower-case
/// letters, digits and `-`.
pub(crate) fn region(value: Option<&str>) -> Result<Option<String>, Fault> {
    match value {
        None | Some("") => Ok(None),
        Some(r)
            if r.len() <= MAX_REGION_CHARS
                && r.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') =>
        {
            Ok(Some(r.to_owned()))
        }
        Some(r) => Err(Fault::caller(Code::InvalidParameterValue, format!("The region `{}` is not valid.", shown(r)))),
    }
}

/// The action name as the legacy SDK sends it: first letter upper case (`unBindInstanceKey` ->
/// `UnBindInstanceKey`).
pub(crate) fn upper_first(name: &str) -> Cow<'_, str> {
    match name.chars().next() {
        Some(first) if first.is_ascii_lowercase() => {
            let mut out = String::with_capacity(name.len());
            out.push(first.to_ascii_uppercase());
            out.push_str(&name[1..]);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_cuts_long_values_at_a_character_boundary() {
        assert_eq!(shown("short"), "short");
        let long = "中".repeat(100);
        let cut = shown(&long);
        assert_eq!(cut.chars().count(), SHOWN_CHARS + 3);
        assert!(cut.ends_with("..."));
    }

    #[test]
    fn upper_first_only_touches_a_lower_case_first_letter() {
        assert_eq!(upper_first("unBindInstanceKey"), "UnBindInstanceKey");
        assert_eq!(upper_first("BindInstanceKey"), "BindInstanceKey");
        assert_eq!(upper_first(""), "");
        assert_eq!(upper_first("中"), "中");
    }
}
