//! The parameter grammar shared by every form-style dialect, written once.
//!
//! - `Name.N` lists (`InstanceIds.0`, `InstanceIds.1`, ... or 1-based as the legacy docs write them; the
//!   base is inferred from the lowest index, and a gap or a repeated index is an error);
//! - JSON arrays carried inside one value (Alibaba's `InstanceIds=["i-a", "i-b"]`);
//! - booleans spelled `TRUE`/`True`/`true` (and false);
//! - single parameters, which must not be repeated.
//!
//! Every failure is a [`Source::Caller`](crate::model::Source) fault that names the parameter; the codec
//! renders it in its own dialect. Implements `shared/reference/protocols.md` section 6, "List forms".

use std::borrow::Cow;

use crate::model::{Code, Fault};
use crate::sign::Param;

/// The most entries any list may carry before it is refused outright, whatever the dialect's limit
/// (a guard against absurd requests; real limits come from `mappings/limits.toml`).
pub const MAX_LIST_ENTRIES: usize = 1000;

/// The deepest JSON nesting accepted in a body or a JSON-array value.
pub const MAX_JSON_DEPTH: usize = 32;

/// The value of a parameter that may appear at most once.
pub fn single<'p>(params: &'p [Param<'_>], name: &str) -> Result<Option<&'p str>, Fault> {
    let mut found = None;
    for (n, v) in params {
        if n == name {
            if found.is_some() {
                return Err(Fault::caller(
                    Code::InvalidParameter,
                    format!("The parameter `{name}` is given more than once."),
                ));
            }
            found = Some(v.as_ref());
        }
    }
    Ok(found)
}

/// The value of a parameter that must appear exactly once.
pub fn required<'p>(params: &'p [Param<'_>], name: &str) -> Result<&'p str, Fault> {
    single(params, name)?
        .ok_or_else(|| Fault::caller(Code::MissingParameter, format!("The parameter `{name}` is missing.")))
}

/// Refuses a request in which any parameter name appears twice.
pub fn reject_duplicates(params: &[Param<'_>]) -> Result<(), Fault> {
    for (i, (name, _)) in params.iter().enumerate() {
        if params[..i].iter().any(|(n, _)| n == name) {
            return Err(Fault::caller(
                Code::InvalidParameter,
                format!("The parameter `{name}` is given more than once."),
            ));
        }
    }
    Ok(())
}

/// The entries of a `name.N` list, in index order. The base (0 or 1) is the lowest index; indexes must
/// then run without gaps or repeats. An absent list is empty.
pub fn indexed_list<'p>(params: &'p [Param<'_>], name: &str) -> Result<Vec<&'p str>, Fault> {
    let mut entries: Vec<(usize, &'p str)> = Vec::new();
    for (n, v) in params {
        let Some(index) = n.strip_prefix(name).and_then(|rest| rest.strip_prefix('.')) else { continue };
        let parsed = parse_index(index).ok_or_else(|| {
            Fault::caller(
                Code::InvalidParameter,
                format!("The parameter `{n}` has no valid list index after `{name}.`."),
            )
        })?;
        if entries.len() >= MAX_LIST_ENTRIES {
            return Err(Fault::caller(
                Code::LimitExceeded,
                format!("The list `{name}.N` has more than {MAX_LIST_ENTRIES} entries."),
            ));
        }
        entries.push((parsed, v.as_ref()));
    }
    entries.sort_unstable_by_key(|(i, _)| *i);
    let base = match entries.first() {
        None => return Ok(Vec::new()),
        Some((0, _)) => 0,
        Some((1, _)) => 1,
        Some((i, _)) => {
            return Err(Fault::caller(
                Code::InvalidParameter,
                format!("The list `{name}.N` starts at index {i}; it must start at 0 or 1."),
            ));
        }
    };
    for (position, (index, _)) in entries.iter().enumerate() {
        let expected = base + position;
        if *index != expected {
            let problem = if *index < expected { "is repeated" } else { "leaves a gap" };
            return Err(Fault::caller(
                Code::InvalidParameter,
                format!(
                    "The list `{name}.N` is ill-formed: `{name}.{index}` {problem} (expected `{name}.{expected}`)."
                ),
            ));
        }
    }
    Ok(entries.into_iter().map(|(_, v)| v).collect())
}

fn parse_index(text: &str) -> Option<usize> {
    let well_formed = !text.is_empty() && text.len() <= 6 && text.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = text == "0" || !text.starts_with('0');
    if well_formed && no_leading_zero { text.parse().ok() } else { None }
}

/// A list carried as one JSON-array string (`["i-a", "i-b"]`), each entry a string.
pub fn json_string_array(name: &str, value: &str) -> Result<Vec<String>, Fault> {
    let not_array =
        || Fault::caller(Code::InvalidParameter, format!("The parameter `{name}` must be a JSON array of strings."));
    check_json_depth(name, value.as_bytes())?;
    let parsed: serde_json::Value = serde_json::from_str(value).map_err(|_| not_array())?;
    let serde_json::Value::Array(items) = parsed else { return Err(not_array()) };
    if items.len() > MAX_LIST_ENTRIES {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!("The parameter `{name}` has more than {MAX_LIST_ENTRIES} entries."),
        ));
    }
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(not_array()),
        })
        .collect()
}

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`], before any parser sees it. Strings are skipped
/// whole (a search for their closing quote), so brackets inside them do not count.
pub fn check_json_depth(name: &str, json: &[u8]) -> Result<(), Fault> {
    let mut depth = 0usize;
    let mut at = 0;
    while let Some(&b) = json.get(at) {
        at += 1;
        match b {
            b'"' => at = string_end(json, at),
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(Fault::caller(
                        Code::InvalidParameter,
                        format!("`{name}` is nested deeper than {MAX_JSON_DEPTH} levels."),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Where the JSON string whose contents start at `from` ends: just past its closing quote (a quote
/// escaped by a backslash does not close it), or the end of the text.
fn string_end(json: &[u8], mut from: usize) -> usize {
    while let Some(found) = json.get(from..).and_then(|rest| memchr::memchr2(b'"', b'\\', rest)) {
        let at = from + found;
        if json[at] == b'"' {
            return at + 1;
        }
        from = at + 2;
    }
    json.len()
}

/// A boolean spelled `true`/`false` in any case (`TRUE`, `True`, `true`).
pub fn boolean(name: &str, value: &str) -> Result<bool, Fault> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The parameter `{name}` must be true or false, not `{value}`."),
        ))
    }
}

/// Refuses a list in which a value appears twice.
pub fn reject_repeated_values(name: &str, values: &[impl AsRef<str>]) -> Result<(), Fault> {
    for (i, v) in values.iter().enumerate() {
        if values[..i].iter().any(|w| w.as_ref() == v.as_ref()) {
            return Err(Fault::caller(
                Code::DuplicateValues,
                format!("The value `{}` appears twice in `{name}`.", v.as_ref()),
            ));
        }
    }
    Ok(())
}

/// Refuses a value that cannot be an id (or key reference) on any provider: an empty one, one holding a
/// control character, or one longer than `longest` characters (the longest any provider's format allows,
/// [`Mappings::longest_instance_id`](crate::mapping::Mappings::longest_instance_id)). Whether it is one on
/// the provider that receives it is decided once it is routed ([`crate::translate::check_ids`]).
pub fn could_be_ids(name: &str, ids: &[impl AsRef<str>], longest: usize, malformed: Code) -> Result<(), Fault> {
    for id in ids {
        let id = id.as_ref();
        let why = if id.is_empty() {
            "it is empty".to_owned()
        } else if id.chars().any(char::is_control) {
            "it holds a control character".to_owned()
        } else if id.chars().count() > longest {
            format!("it is longer than {longest} characters")
        } else {
            continue;
        };
        let shown: String = id.chars().take(64).flat_map(char::escape_debug).collect();
        let cut = if id.chars().count() > 64 { "..." } else { "" };
        return Err(Fault::caller(malformed, format!("The value `{shown}{cut}` in `{name}` cannot be an id: {why}.")));
    }
    Ok(())
}

/// Owned copies of borrowed list entries.
pub fn owned(values: Vec<&str>) -> Vec<String> {
    values.into_iter().map(str::to_owned).collect()
}

/// Builds a parameter from static name and owned value, for encoders.
pub fn param(name: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) -> Param<'static> {
    (name.into(), value.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Byte by byte, as a reader of the grammar would: the reference the string skipping must agree with.
    fn deepest(json: &[u8]) -> usize {
        let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
        for &b in json {
            match (in_string, escaped, b) {
                (true, true, _) => escaped = false,
                (true, false, b'\\') => escaped = true,
                (true, false, b'"') => in_string = false,
                (true, ..) => {}
                (false, _, b'"') => in_string = true,
                (false, _, b'[' | b'{') => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        deepest
    }

    proptest! {
        #[test]
        fn depth_is_counted_outside_strings_only(text in proptest::collection::vec(
            prop::sample::select(vec![b'[', b']', b'{', b'}', b'"', b'\\', b'a', b',']), 0..200)
        ) {
            let refused = check_json_depth("x", &text).is_err();
            prop_assert_eq!(refused, deepest(&text) > MAX_JSON_DEPTH, "{}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn brackets_in_strings_and_escaped_quotes_do_not_nest() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_json_depth("x", deep(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_json_depth("x", deep(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        let quoted = format!(r#"["{}", "a\"[[[", "\\"]"#, "[".repeat(100));
        assert!(check_json_depth("x", quoted.as_bytes()).is_ok(), "{quoted}");
        let after_escaped_backslash = format!(r#"["\\"{}"#, "[".repeat(40));
        assert!(check_json_depth("x", after_escaped_backslash.as_bytes()).is_err());
    }

    fn ps(pairs: &[(&'static str, &'static str)]) -> Vec<Param<'static>> {
        pairs.iter().map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v))).collect()
    }

    #[test]
    fn lists_are_read_zero_or_one_based() {
        let zero = ps(&[("InstanceIds.1", "b"), ("InstanceIds.0", "a")]);
        assert_eq!(indexed_list(&zero, "InstanceIds").unwrap(), ["a", "b"]);
        let one = ps(&[("InstanceIds.1", "a"), ("InstanceIds.2", "b")]);
        assert_eq!(indexed_list(&one, "InstanceIds").unwrap(), ["a", "b"]);
        assert!(indexed_list(&one, "KeyIds").unwrap().is_empty());
    }

    #[test]
    fn lists_sort_numerically() {
        let names: Vec<String> = (0..12).map(|i| format!("InstanceIds.{i}")).collect();
        let values: Vec<String> = (0..12).map(|i| format!("v{i}")).collect();
        let params: Vec<Param<'_>> =
            names.iter().zip(&values).map(|(n, v)| (Cow::Borrowed(n.as_str()), Cow::Borrowed(v.as_str()))).collect();
        let list = indexed_list(&params, "InstanceIds").unwrap();
        assert_eq!(list[10], "v10");
        assert_eq!(list[2], "v2");
    }

    #[test]
    fn gaps_repeats_and_bad_indexes_are_refused() {
        for bad in [
            ps(&[("InstanceIds.0", "a"), ("InstanceIds.2", "b")]),
            ps(&[("InstanceIds.0", "a"), ("InstanceIds.0", "b")]),
            ps(&[("InstanceIds.2", "a")]),
            ps(&[("InstanceIds.x", "a")]),
            ps(&[("InstanceIds.", "a")]),
            ps(&[("InstanceIds.01", "a")]),
            ps(&[("InstanceIds.-1", "a")]),
            ps(&[("InstanceIds.99999999999999999999", "a")]),
        ] {
            let fault = indexed_list(&bad, "InstanceIds").unwrap_err();
            assert_eq!(fault.code(), Code::InvalidParameter, "{bad:?}");
        }
    }

    #[test]
    fn json_arrays() {
        assert_eq!(json_string_array("InstanceIds", r#"["i-a", "i-b"]"#).unwrap(), ["i-a", "i-b"]);
        for bad in ["i-a,i-b", "[1]", r#"{"a":1}"#, "[", r#"[["x"]]"#, "null", ""] {
            assert!(json_string_array("InstanceIds", bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100) + &"]".repeat(100);
        assert_eq!(json_string_array("InstanceIds", &deep).unwrap_err().code(), Code::InvalidParameter);
    }

    #[test]
    fn booleans_in_every_spelling() {
        for t in ["TRUE", "True", "true"] {
            assert!(boolean("ForceStop", t).unwrap());
        }
        for f in ["FALSE", "False", "false"] {
            assert!(!boolean("ForceStop", f).unwrap());
        }
        assert_eq!(boolean("ForceStop", "yes").unwrap_err().code(), Code::InvalidParameterValue);
    }

    #[test]
    fn singles_and_duplicates() {
        let p = ps(&[("Action", "A"), ("Action", "B")]);
        assert_eq!(single(&p, "Action").unwrap_err().code(), Code::InvalidParameter);
        assert_eq!(required(&p, "Version").unwrap_err().code(), Code::MissingParameter);
        assert!(reject_duplicates(&p).is_err());
        assert!(reject_repeated_values("KeyIds", &["a", "b", "a"]).is_err());
        assert!(reject_repeated_values("KeyIds", &["a", "b"]).is_ok());
    }

    #[test]
    fn only_what_cannot_be_an_id_anywhere_is_refused() {
        let code = Code::MalformedInstanceId;
        assert!(could_be_ids("InstanceIds", &["ins-1e4r6y8i", "i-m5eg7be9ndloji64jknv", "I-UPPER"], 32, code).is_ok());
        for (bad, why) in [("", "empty"), ("ins-\u{0}a", "control character"), ("i-\n", "control character")] {
            let fault = could_be_ids("InstanceIds", &["ins-1e4r6y8i", bad], 32, code).unwrap_err();
            assert_eq!(fault.code(), code, "{bad:?}");
            assert!(fault.message().contains(why), "{bad:?}: {}", fault.message());
            assert!(!fault.message().contains(['\0', '\n']), "control characters are escaped: {}", fault.message());
        }
        let long = "i".repeat(10_000);
        let fault = could_be_ids("KeyIds", &[long.as_str()], 128, Code::MalformedKeyId).unwrap_err();
        assert!(fault.message().contains("longer than 128") && fault.message().len() < 300, "{}", fault.message());
    }
}
