//! The business parameters of the Tencent key-pair actions, read from a flattened form (`InstanceIds.0`,
//! `Filters.0.Values.1`, ...) or from a JSON body, then checked into a canonical [`Operation`].
//!
//! Implements protocols.md 3.2 (legacy new-style parameters), 3.5 and 4.6 (look-ups), 4.1, 4.3 and 4.4
//! (API 3.0 parameters and types) and section 6 (list forms, booleans, limits). Reading refuses what
//! cannot be parsed (wrong JSON type, unknown parameter, bad list grammar); checking refuses what the
//! action does not allow (missing lists, limits, values that cannot be an id anywhere, repeated values).
//! Whether an id fits the provider that receives it is decided after routing
//! ([`crate::translate::check_ids`]): a Tencent caller may name an instance that lives on ECS.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use super::v1_auth::lenient_param;
use super::{media, param, shown};
use crate::dialect::{Dialect, RawRequest, params};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Keys, Operation, Page};
use crate::sign::Param;

/// The longest filter value accepted, in characters (a key name is at most 128, Alibaba's limit).
const MAX_FILTER_VALUE_CHARS: usize = 128;

/// One `{Name, Values}` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    /// The filter's name (`key-name`).
    pub(crate) name: String,
    /// Its values.
    pub(crate) values: Vec<String>,
}

/// The business parameters a request carried, before the action's rules are applied.
/// `None` means the parameter was absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Fields {
    pub(crate) instance_ids: Option<Vec<String>>,
    pub(crate) key_ids: Option<Vec<String>>,
    pub(crate) force_stop: Option<bool>,
    pub(crate) filters: Option<Vec<Filter>>,
    pub(crate) offset: Option<u64>,
    pub(crate) limit: Option<u64>,
    pub(crate) key_name: Option<String>,
    pub(crate) public_key: Option<String>,
    pub(crate) project_id: Option<u64>,
    pub(crate) stop_type: Option<String>,
}

// === reading a form ===

impl Fields {
    /// Reads the business parameters of a flattened form; common parameters are skipped, anything else
    /// unknown is refused.
    pub(crate) fn from_form(params: &[Param<'_>]) -> Result<Fields, Fault> {
        let (mut instances, mut keys, mut filters) = (false, false, false);
        for (name, _) in params {
            let name = name.as_ref();
            if param::COMMON.contains(&name) || param::SINGLES.contains(&name) {
                continue;
            }
            match name.split_once('.').map(|(head, _)| head) {
                Some(param::INSTANCE_IDS) => instances = true,
                Some(param::KEY_IDS) => keys = true,
                Some(param::FILTERS) => filters = true,
                _ => return Err(unknown(name)),
            }
        }
        let list = |present: bool, name: &str| -> Result<Option<Vec<String>>, Fault> {
            Ok(if present { Some(params::owned(params::indexed_list(params, name)?)) } else { None })
        };
        Ok(Fields {
            instance_ids: list(instances, param::INSTANCE_IDS)?,
            key_ids: list(keys, param::KEY_IDS)?,
            force_stop: params::single(params, param::FORCE_STOP)?
                .map(|v| params::boolean(param::FORCE_STOP, v))
                .transpose()?,
            filters: if filters { Some(form_filters(params)?) } else { None },
            offset: params::single(params, param::OFFSET)?.map(|v| form_count(param::OFFSET, v)).transpose()?,
            limit: params::single(params, param::LIMIT)?.map(|v| form_count(param::LIMIT, v)).transpose()?,
            key_name: params::single(params, param::KEY_NAME)?.map(str::to_owned),
            public_key: params::single(params, param::PUBLIC_KEY)?.map(str::to_owned),
            project_id: params::single(params, param::PROJECT_ID)?
                .map(|v| form_count(param::PROJECT_ID, v))
                .transpose()?,
            stop_type: params::single(params, param::STOP_TYPE)?.map(str::to_owned),
        })
    }
}

/// `Filters.N.Name` / `Filters.N.Values.M`: the filter indexes follow the list grammar of
/// [`params::indexed_list`], and so do each filter's values.
fn form_filters(params: &[Param<'_>]) -> Result<Vec<Filter>, Fault> {
    // Each filter's head `Filters.<n>` with its name, so the shared grammar checks the indexes.
    let mut heads: Vec<Param<'_>> = Vec::new();
    let mut value_indexes: Vec<&str> = Vec::new();
    for (name, value) in params {
        let Some(rest) = name.strip_prefix(param::FILTERS).and_then(|r| r.strip_prefix('.')) else { continue };
        let Some((index, field)) = rest.split_once('.') else { return Err(unknown(name)) };
        if field == param::FILTER_NAME {
            heads.push((format!("{}.{index}", param::FILTERS).into(), value.clone()));
        } else if field.strip_prefix(param::FILTER_VALUES).is_some_and(|r| r.starts_with('.')) {
            value_indexes.push(index);
        } else {
            return Err(unknown(name));
        }
    }
    let names = params::indexed_list(&heads, param::FILTERS)?;
    let base = usize::from(!heads.iter().any(|(n, _)| n.ends_with(".0")));
    let indexes: Vec<String> = (base..base + names.len()).map(|i| i.to_string()).collect();
    if let Some(orphan) = value_indexes.iter().find(|i| !indexes.iter().any(|known| known == *i)) {
        return Err(Fault::caller(
            Code::MissingParameter,
            format!("The parameter `Filters.{}.Name` is missing.", shown(orphan)),
        ));
    }
    let mut filters = Vec::with_capacity(names.len());
    for (name, index) in names.into_iter().zip(&indexes) {
        let values = params::indexed_list(params, &format!("{}.{index}.{}", param::FILTERS, param::FILTER_VALUES))?;
        filters.push(Filter { name: name.to_owned(), values: params::owned(values) });
    }
    Ok(filters)
}

/// A non-negative integer in a form (`Offset`, `Limit`).
fn form_count(name: &str, value: &str) -> Result<u64, Fault> {
    let digits = !value.is_empty() && value.len() <= 19 && value.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| value.parse().ok()).flatten().ok_or_else(|| {
        Fault::caller(
            Code::InvalidParameterValue,
            format!("The parameter `{name}` must be a non-negative integer, not `{}`.", shown(value)),
        )
    })
}

// === reading a JSON body ===

impl Fields {
    /// Reads the business parameters of a JSON body: an object whose lists are arrays of strings,
    /// `ForceStop` a boolean and `Offset`/`Limit` integers. Duplicated keys, wrong types, unknown keys and
    /// nesting deeper than [`params::MAX_JSON_DEPTH`] are refused.
    pub(crate) fn from_json(body: &[u8]) -> Result<Fields, Fault> {
        params::check_json_depth("The request body", body)?;
        let mut de = serde_json::Deserializer::from_slice(body);
        let object = de.deserialize_map(ObjectVisitor).and_then(|o| de.end().map(|()| o)).map_err(|e| {
            Fault::caller(
                Code::InvalidParameter,
                format!("The request body is not a JSON object as expected: {}.", shown(&e.to_string())),
            )
        })?;
        let mut fields = Fields::default();
        for (name, value) in object {
            match name.as_str() {
                param::INSTANCE_IDS => fields.instance_ids = Some(json_strings(&name, value)?),
                param::KEY_IDS => fields.key_ids = Some(json_strings(&name, value)?),
                param::FORCE_STOP => match value {
                    Value::Bool(b) => fields.force_stop = Some(b),
                    _ => return Err(wrong_type(&name, "a boolean")),
                },
                param::FILTERS => fields.filters = Some(json_filters(value)?),
                param::OFFSET => fields.offset = Some(json_count(&name, &value)?),
                param::LIMIT => fields.limit = Some(json_count(&name, &value)?),
                param::PROJECT_ID => fields.project_id = Some(json_count(&name, &value)?),
                param::KEY_NAME => fields.key_name = Some(json_string(&name, value)?),
                param::PUBLIC_KEY => fields.public_key = Some(json_string(&name, value)?),
                param::STOP_TYPE => fields.stop_type = Some(json_string(&name, value)?),
                _ => return Err(unknown(&name)),
            }
        }
        Ok(fields)
    }
}

/// A JSON object's members in order, refusing a key given twice (serde_json's own map keeps the last).
struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Vec<(String, Value)>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(String, Value)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("the key `{}` is given more than once", shown(&key))));
            }
            let value = map.next_value::<Value>()?;
            members.push((key, value));
        }
        Ok(members)
    }
}

fn json_strings(name: &str, value: Value) -> Result<Vec<String>, Fault> {
    let Value::Array(items) = value else { return Err(wrong_type(name, "an array of strings")) };
    if items.len() > params::MAX_LIST_ENTRIES {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!("The parameter `{name}` has more than {} entries.", params::MAX_LIST_ENTRIES),
        ));
    }
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            _ => Err(wrong_type(name, "an array of strings")),
        })
        .collect()
}

fn json_string(name: &str, value: Value) -> Result<String, Fault> {
    match value {
        Value::String(s) => Ok(s),
        _ => Err(wrong_type(name, "a string")),
    }
}

fn json_filters(value: Value) -> Result<Vec<Filter>, Fault> {
    let Value::Array(items) = value else { return Err(wrong_type(param::FILTERS, "an array of objects")) };
    if items.len() > params::MAX_LIST_ENTRIES {
        return Err(Fault::caller(Code::LimitExceeded, "The parameter `Filters` has too many entries."));
    }
    let mut filters = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(members) = item else { return Err(wrong_type(param::FILTERS, "an array of objects")) };
        let (mut name, mut values) = (None, None);
        for (key, value) in members {
            match key.as_str() {
                param::FILTER_NAME => match value {
                    Value::String(s) => name = Some(s),
                    _ => return Err(wrong_type(&format!("Filters.{i}.Name"), "a string")),
                },
                param::FILTER_VALUES => values = Some(json_strings(&format!("Filters.{i}.Values"), value)?),
                _ => return Err(unknown(&format!("Filters.{i}.{key}"))),
            }
        }
        let missing = |field: &str| {
            Fault::caller(Code::MissingParameter, format!("The parameter `Filters.{i}.{field}` is missing."))
        };
        filters.push(Filter {
            name: name.ok_or_else(|| missing(param::FILTER_NAME))?,
            values: values.ok_or_else(|| missing(param::FILTER_VALUES))?,
        });
    }
    Ok(filters)
}

fn json_count(name: &str, value: &Value) -> Result<u64, Fault> {
    match value {
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            Fault::caller(
                Code::InvalidParameterValue,
                format!("The parameter `{name}` must be a non-negative integer."),
            )
        }),
        _ => Err(wrong_type(name, "an integer")),
    }
}

// === checking against the action ===

/// What a decoded request asks for, before its business parameters are checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'m> {
    /// Whose limits, formats and parameters apply.
    pub(crate) dialect: Dialect,
    /// The canonical action.
    pub(crate) action: Action,
    /// The wire action name, for messages.
    pub(crate) wire: &'m str,
}

impl Fields {
    /// Applies the action's rules: required lists, limits, id formats, repeated values, and which
    /// parameters the action (and the dialect: Lighthouse has no `ForceStop`) accepts at all.
    pub(crate) fn into_operation(
        self,
        target: Target<'_>,
        region: Option<String>,
        maps: &Mappings,
    ) -> Result<Operation, Fault> {
        let Fields {
            instance_ids,
            key_ids,
            force_stop,
            filters,
            offset,
            limit,
            key_name,
            public_key,
            project_id,
            stop_type,
        } = self;
        if target.action.is_for_callers() {
            // The replication and state-policy parameters belong to those actions only.
            for (name, present) in [
                (param::KEY_NAME, key_name.is_some()),
                (param::PUBLIC_KEY, public_key.is_some()),
                (param::PROJECT_ID, project_id.is_some()),
                (param::STOP_TYPE, stop_type.is_some()),
            ] {
                if present {
                    return Err(Fault::caller(
                        Code::InvalidParameter,
                        format!("The parameter `{name}` is not accepted by `{}`.", target.wire),
                    ));
                }
            }
        }
        let limits = maps.limits(target.dialect);
        let (instance_chars, key_chars) = (maps.longest_instance_id(), maps.longest_key());
        let not_for = |name: &str, present: bool| -> Result<(), Fault> {
            if present {
                return Err(Fault::caller(
                    Code::InvalidParameter,
                    format!("The parameter `{name}` is not accepted by `{}`.", target.wire),
                ));
            }
            Ok(())
        };
        let mut op = Operation::new(target.action);
        op.region = region;
        match target.action {
            Action::AssociateKeys | Action::DisassociateKeys => {
                not_for(param::FILTERS, filters.is_some())?;
                not_for(param::OFFSET, offset.is_some())?;
                not_for(param::LIMIT, limit.is_some())?;
                not_for(param::FORCE_STOP, force_stop.is_some() && target.dialect == Dialect::TencentLighthouse)?;
                op.instances = required_list(param::INSTANCE_IDS, instance_ids)?;
                check_ids(
                    param::INSTANCE_IDS,
                    &op.instances,
                    limits.instances,
                    instance_chars,
                    Code::MalformedInstanceId,
                )?;
                let keys = required_list(param::KEY_IDS, key_ids)?;
                check_ids(param::KEY_IDS, &keys, limits.keys, key_chars, Code::MalformedKeyId)?;
                op.keys = Keys::Ids(keys);
                op.force_stop = force_stop;
            }
            Action::DescribeKeys => {
                not_for(param::INSTANCE_IDS, instance_ids.is_some())?;
                not_for(param::FORCE_STOP, force_stop.is_some())?;
                check_page(limit, limits.lookup_keys)?;
                op.keys = match (key_ids, filters) {
                    (Some(_), Some(_)) => {
                        return Err(Fault::caller(
                            Code::InvalidParameter,
                            "The parameters `KeyIds` and `Filters` cannot be given together.",
                        ));
                    }
                    (Some(ids), None) => {
                        check_ids(param::KEY_IDS, &ids, limits.lookup_keys, key_chars, Code::MalformedKeyId)?;
                        Keys::Ids(ids)
                    }
                    (None, Some(filters)) => Keys::Names(key_name_filter(filters, limits.lookup_keys)?),
                    (None, None) => Keys::none(),
                };
            }
            Action::DescribeInstances => {
                not_for(param::KEY_IDS, key_ids.is_some())?;
                not_for(param::FORCE_STOP, force_stop.is_some())?;
                not_for(param::FILTERS, filters.is_some())?;
                check_page(limit, limits.lookup_instances)?;
                let ids = instance_ids.unwrap_or_default();
                check_ids(
                    param::INSTANCE_IDS,
                    &ids,
                    limits.lookup_instances,
                    instance_chars,
                    Code::MalformedInstanceId,
                )?;
                op.instances = ids;
            }
            Action::ImportKey => {
                for (name, present) in [
                    (param::INSTANCE_IDS, instance_ids.is_some()),
                    (param::KEY_IDS, key_ids.is_some()),
                    (param::FORCE_STOP, force_stop.is_some()),
                    (param::FILTERS, filters.is_some()),
                    (param::STOP_TYPE, stop_type.is_some()),
                    (param::PROJECT_ID, project_id.is_some() && target.dialect == Dialect::TencentLighthouse),
                ] {
                    not_for(name, present)?;
                }
                let name = key_name.filter(|n| !n.is_empty()).ok_or_else(|| missing(param::KEY_NAME))?;
                op.public_key = Some(public_key.filter(|k| !k.is_empty()).ok_or_else(|| missing(param::PUBLIC_KEY))?);
                op.keys = Keys::Names(vec![name]);
            }
            Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
                for (name, present) in [
                    (param::KEY_IDS, key_ids.is_some()),
                    (param::FORCE_STOP, force_stop.is_some()),
                    (param::FILTERS, filters.is_some()),
                    (param::OFFSET, offset.is_some()),
                    (param::LIMIT, limit.is_some()),
                    (param::KEY_NAME, key_name.is_some()),
                    (param::PUBLIC_KEY, public_key.is_some()),
                    (param::PROJECT_ID, project_id.is_some()),
                    (
                        param::STOP_TYPE,
                        stop_type.is_some()
                            && (target.action == Action::StartInstances
                                || target.dialect == Dialect::TencentLighthouse),
                    ),
                ] {
                    not_for(name, present)?;
                }
                if let Some(kind) = &stop_type
                    && !param::STOP_TYPES.contains(&kind.as_str())
                {
                    return Err(Fault::caller(
                        Code::InvalidParameterValue,
                        format!("`StopType` is one of {}, not `{}`.", param::STOP_TYPES.join(", "), shown(kind)),
                    ));
                }
                op.instances = required_list(param::INSTANCE_IDS, instance_ids)?;
                check_ids(
                    param::INSTANCE_IDS,
                    &op.instances,
                    limits.instances,
                    instance_chars,
                    Code::MalformedInstanceId,
                )?;
                op.force_stop = stop_type.map(|t| t == param::STOP_TYPES[0]);
            }
        }
        Ok(op)
    }
}

fn missing(name: &str) -> Fault {
    Fault::caller(Code::MissingParameter, format!("The parameter `{name}` is missing or empty."))
}

fn required_list(name: &str, list: Option<Vec<String>>) -> Result<Vec<String>, Fault> {
    match list {
        Some(list) if !list.is_empty() => Ok(list),
        _ => Err(Fault::caller(Code::MissingParameter, format!("The parameter `{name}` is missing or empty."))),
    }
}

/// Limit first (so a hostile list is refused before each entry is looked at), then what cannot be an id
/// anywhere (empty, a control character, more than `longest` characters), then repeats.
pub(crate) fn check_ids(name: &str, ids: &[String], max: usize, longest: usize, malformed: Code) -> Result<(), Fault> {
    if ids.len() > max {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!("The parameter `{name}` has {} values; at most {max} are allowed.", ids.len()),
        ));
    }
    params::could_be_ids(name, ids, longest, malformed)?;
    params::reject_repeated_values(name, ids)
}

fn check_page(limit: Option<u64>, max: usize) -> Result<(), Fault> {
    match limit {
        Some(limit) if limit > max as u64 => Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The parameter `Limit` is {limit}; at most {max} is allowed."),
        )),
        _ => Ok(()),
    }
}

/// The one `key-name` filter a key look-up may carry, as names.
fn key_name_filter(filters: Vec<Filter>, max: usize) -> Result<Vec<String>, Fault> {
    let mut filters = filters.into_iter();
    let (Some(filter), None) = (filters.next(), filters.next()) else {
        return Err(Fault::caller(
            Code::InvalidParameterValue,
            "The parameter `Filters` must hold exactly one filter, `key-name`.",
        ));
    };
    if filter.name != param::KEY_NAME_FILTER {
        return Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The filter `{}` is not supported; only `key-name` is.", shown(&filter.name)),
        ));
    }
    if filter.values.is_empty() {
        return Err(Fault::caller(Code::MissingParameter, "The filter `key-name` has no values."));
    }
    if filter.values.len() > max {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!("The filter `key-name` has {} values; at most {max} are allowed.", filter.values.len()),
        ));
    }
    if let Some(long) = filter.values.iter().find(|v| v.chars().count() > MAX_FILTER_VALUE_CHARS) {
        return Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The key name `{}` is longer than {MAX_FILTER_VALUE_CHARS} characters.", shown(long)),
        ));
    }
    params::reject_repeated_values("Filters.key-name", &filter.values)?;
    Ok(filter.values)
}

// === the page a caller asked for ===

/// The page of a key look-up a caller asked for, read tolerantly for the reply: `Offset` and `Limit` from
/// the query, a form or a JSON body, `Limit` defaulting to the dialect's default page. `None` when the
/// caller named neither; a value that does not read as a count is ignored here and refused by
/// [`Fields::from_form`] / [`Fields::from_json`].
pub(crate) fn asked_page(raw: &RawRequest<'_>, dialect: Dialect, maps: &Mappings) -> Option<Page> {
    let (offset, limit) = if raw.content_type().as_deref() == Some(media::JSON) {
        json_page(raw.body)
    } else {
        let count = |name: &str| lenient_param(raw, name).and_then(|v| form_count(name, &v).ok());
        (count(param::OFFSET), count(param::LIMIT))
    };
    if offset.is_none() && limit.is_none() {
        return None;
    }
    let limits = maps.limits(dialect);
    let as_usize = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    Some(Page {
        offset: offset.map_or(0, as_usize),
        limit: limit.map_or(limits.lookup_page_size, as_usize).min(limits.lookup_keys),
    })
}

/// `Offset` and `Limit` of a JSON body, when it is an object that has them as counts.
fn json_page(body: &[u8]) -> (Option<u64>, Option<u64>) {
    if params::check_json_depth("The request body", body).is_err() {
        return (None, None);
    }
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else { return (None, None) };
    let count = |name: &str| object.get(name).and_then(Value::as_u64);
    (count(param::OFFSET), count(param::LIMIT))
}

fn unknown(name: &str) -> Fault {
    Fault::caller(Code::InvalidParameter, format!("The parameter `{}` is not known.", shown(name)))
}

fn wrong_type(name: &str, expected: &str) -> Fault {
    Fault::caller(Code::InvalidParameter, format!("The parameter `{name}` must be {expected}."))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn ps(pairs: &[(&'static str, &'static str)]) -> Vec<Param<'static>> {
        pairs.iter().map(|(n, v)| (Cow::Borrowed(*n), Cow::Borrowed(*v))).collect()
    }

    #[test]
    fn form_filters_follow_the_list_grammar() {
        let f = Fields::from_form(&ps(&[
            ("Filters.0.Name", "key-name"),
            ("Filters.0.Values.1", "b"),
            ("Filters.0.Values.0", "a"),
        ]))
        .unwrap();
        assert_eq!(f.filters.unwrap(), [Filter { name: "key-name".into(), values: vec!["a".into(), "b".into()] }]);
        let one_based = Fields::from_form(&ps(&[("Filters.1.Name", "key-name"), ("Filters.1.Values.1", "a")])).unwrap();
        assert_eq!(one_based.filters.unwrap()[0].values, ["a"]);
        for bad in [
            ps(&[("Filters.0.Values.0", "a")]),
            ps(&[("Filters.0.Name", "key-name"), ("Filters.1.Values.0", "a")]),
            ps(&[("Filters.0.Name", "key-name"), ("Filters.00.Values.0", "a")]),
            ps(&[("Filters.0.Nom", "key-name")]),
            ps(&[("Filters.0", "key-name")]),
            ps(&[("Filters.0.Name", "a"), ("Filters.2.Name", "b")]),
        ] {
            assert!(Fields::from_form(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn json_bodies_are_typed_and_duplicates_refused() {
        let f = Fields::from_json(br#"{"InstanceIds": ["a"], "ForceStop": true, "Limit": 5}"#).unwrap();
        assert_eq!((f.instance_ids.unwrap(), f.force_stop, f.limit), (vec!["a".to_owned()], Some(true), Some(5)));
        for bad in [
            &br#"{"InstanceIds": ["a"], "InstanceIds": ["b"]}"#[..],
            br#"{"ForceStop": "true"}"#,
            br#"{"InstanceIds": "a"}"#,
            br#"{"InstanceIds": [1]}"#,
            br#"{"Limit": -1}"#,
            br#"{"Limit": 1.5}"#,
            br#"{"Bogus": 1}"#,
            br#"[]"#,
            br#"{"InstanceIds": ["a"]} trailing"#,
            br#"{"Filters": [{"Name": "key-name"}]}"#,
            br#"{"Filters": [{"Name": "key-name", "Values": ["a"], "Extra": 1}]}"#,
        ] {
            assert!(Fields::from_json(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
