//! Reply bodies of the ECS RPC codec, in both directions: [`Node`], one description of a reply that
//! writes as JSON (through serde) or as XML (through [`super::xml`]), and the readers that take a parsed
//! body apart with the leniency ECS's own clients show (`shared/reference/protocols.md` section 5.3:
//! counts and codes as numbers or strings, booleans as `true` or `"true"`).

use std::borrow::Cow;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A reply body, format-neutral. Field order is kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Node<'a> {
    /// A string.
    Text(Cow<'a, str>),
    /// A boolean (`true`/`false` in both formats).
    Bool(bool),
    /// An integer.
    Number(u64),
    /// Named fields, in order.
    Object(Vec<(&'static str, Node<'a>)>),
    /// A list wrapped RPC-style: `{"Item": [...]}` in JSON, repeated `<Item>` elements in XML.
    List(&'static str, Vec<Node<'a>>),
}

impl Node<'_> {
    /// A string node.
    pub(crate) fn text(s: impl Into<String>) -> Node<'static> {
        Node::Text(Cow::Owned(s.into()))
    }
}

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Node::Text(s) => serializer.serialize_str(s),
            Node::Bool(b) => serializer.serialize_bool(*b),
            Node::Number(n) => serializer.serialize_u64(*n),
            Node::Object(fields) => {
                let mut map = serializer.serialize_map(Some(fields.len()))?;
                for (name, value) in fields {
                    map.serialize_entry(name, value)?;
                }
                map.end()
            }
            Node::List(item, entries) => {
                let mut map = serializer.serialize_map(Some(1))?;
                map.serialize_entry(item, &Items(entries))?;
                map.end()
            }
        }
    }
}

struct Items<'n, 'a>(&'n [Node<'a>]);

impl Serialize for Items<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for entry in self.0 {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

// === readers over a parsed body (JSON, or XML read into the same shape) ===

/// What is wrong with a body, as a sentence naming the field.
pub(crate) type Shape = String;

/// The body's top level as an object.
pub(crate) fn object<'v>(value: &'v Value, what: &str) -> Result<&'v Map<String, Value>, Shape> {
    value.as_object().ok_or_else(|| format!("{what} is not an object"))
}

/// A string field; `None` when absent or null.
pub(crate) fn string<'v>(obj: &'v Map<String, Value>, name: &str) -> Result<Option<&'v str>, Shape> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` is not a string")),
    }
}

/// A string field that must be present.
pub(crate) fn required_string<'v>(obj: &'v Map<String, Value>, name: &str) -> Result<&'v str, Shape> {
    string(obj, name)?.ok_or_else(|| format!("`{name}` is missing"))
}

/// A field that is a string or a number (ECS's `Code`), as text; `None` when absent.
pub(crate) fn code_text(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, Shape> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("`{name}` is neither a string nor a number")),
    }
}

/// A count given as a number or a numeric string; `None` when absent.
pub(crate) fn count(obj: &Map<String, Value>, name: &str) -> Result<Option<u64>, Shape> {
    let bad = || format!("`{name}` is not a non-negative integer");
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A boolean given as `true`/`false` or as the strings `"true"`/`"false"` (any case).
pub(crate) fn boolean(obj: &Map<String, Value>, name: &str) -> Result<Option<bool>, Shape> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(format!("`{name}` is not a boolean")),
    }
}

/// The entries of an RPC list `{"Outer": {"Item": [...]}}`. An absent or empty wrapper is an empty list;
/// a single object where an array belongs counts as one entry.
pub(crate) fn list<'v>(
    obj: &'v Map<String, Value>,
    outer: &str,
    item: &str,
) -> Result<Vec<&'v Map<String, Value>>, Shape> {
    let items = match obj.get(outer) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        // An empty XML wrapper (`<Results></Results>`) reads as an empty string.
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Value::Object(wrapper)) => match wrapper.get(item) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            Some(_) => return Err(format!("`{outer}.{item}` is not a list")),
        },
        Some(_) => return Err(format!("`{outer}` is not an object")),
    };
    items.into_iter().map(|v| object(v, &format!("an entry of `{outer}.{item}`"))).collect()
}
