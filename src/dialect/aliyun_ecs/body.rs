//! Reply bodies of the ECS RPC codec, in both directions: [`Node`], one description of a reply that
//! writes as JSON (through serde) or as XML (through [`super::xml`]); [`Doc`], a reply read back, its
//! text borrowed from the body where JSON allows; and the readers that take a [`Doc`] apart with the
//! leniency ECS's own clients show (`shared/reference/protocols.md` section 5.3: counts and codes as
//! numbers or strings, booleans as `true` or `"true"`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Number, Value};

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

// === a reply read back ===

/// A parsed reply body. Unlike [`Value`] it keeps an object's fields as a list and borrows every string
/// that needed no unescaping from the body: reading an upstream's answer allocates for its structure
/// only.
#[derive(Debug)]
pub(crate) enum Doc<'a> {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number.
    Number(Number),
    /// A string.
    Text(Cow<'a, str>),
    /// An array.
    List(Vec<Doc<'a>>),
    /// An object's fields, in the order read.
    Object(Fields<'a>),
}

/// An object's fields.
pub(crate) type Fields<'a> = Vec<(Cow<'a, str>, Doc<'a>)>;

impl<'a> Doc<'a> {
    /// JSON text, read by serde_json (its own limits apply; depth is checked before this).
    pub(crate) fn from_json(body: &'a [u8]) -> Result<Doc<'a>, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// A [`Value`] (what the XML reader makes), as a document that owns its text.
    pub(crate) fn from_value(value: Value) -> Doc<'static> {
        match value {
            Value::Null => Doc::Null,
            Value::Bool(b) => Doc::Bool(b),
            Value::Number(n) => Doc::Number(n),
            Value::String(s) => Doc::Text(Cow::Owned(s)),
            Value::Array(items) => Doc::List(items.into_iter().map(Doc::from_value).collect()),
            Value::Object(fields) => {
                Doc::Object(fields.into_iter().map(|(k, v)| (Cow::Owned(k), Doc::from_value(v))).collect())
            }
        }
    }
}

impl<'de> Deserialize<'de> for Doc<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Doc<'de>, D::Error> {
        deserializer.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl<'de> Visitor<'de> for DocVisitor {
    type Value = Doc<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Doc<'de>, E> {
        Ok(Doc::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Doc<'de>, E> {
        Ok(Doc::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Doc<'de>, E> {
        Ok(Doc::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Doc<'de>, E> {
        Ok(Doc::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Doc<'de>, E> {
        Ok(Number::from_f64(n).map_or(Doc::Null, Doc::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Doc<'de>, E> {
        Ok(Doc::Text(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Doc<'de>, E> {
        Ok(Doc::Text(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Doc<'de>, E> {
        Ok(Doc::Text(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Doc<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Doc::List(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Doc<'de>, A::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(Key(name)) = map.next_key()? {
            fields.push((name, map.next_value()?));
        }
        Ok(Doc::Object(fields))
    }
}

/// An object's key, borrowed when it needed no unescaping.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

// === readers over a parsed body ===

/// What is wrong with a body, as a sentence naming the field.
pub(crate) type Shape = String;

/// The body's top level as an object.
pub(crate) fn object<'d, 'a>(doc: &'d Doc<'a>, what: &str) -> Result<&'d Fields<'a>, Shape> {
    match doc {
        Doc::Object(fields) => Ok(fields),
        _ => Err(format!("{what} is not an object")),
    }
}

/// A field's value; of a name given twice, the last (as JSON readers keep it).
fn field<'d, 'a>(obj: &'d Fields<'a>, name: &str) -> Option<&'d Doc<'a>> {
    obj.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v)
}

/// A string field; `None` when absent or null.
pub(crate) fn string<'d>(obj: &'d Fields<'_>, name: &str) -> Result<Option<&'d str>, Shape> {
    match field(obj, name) {
        None | Some(Doc::Null) => Ok(None),
        Some(Doc::Text(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` is not a string")),
    }
}

/// A string field that must be present.
pub(crate) fn required_string<'d>(obj: &'d Fields<'_>, name: &str) -> Result<&'d str, Shape> {
    string(obj, name)?.ok_or_else(|| format!("`{name}` is missing"))
}

/// A field that is a string or a number (ECS's `Code`), as text; `None` when absent.
pub(crate) fn code_text<'d>(obj: &'d Fields<'_>, name: &str) -> Result<Option<Cow<'d, str>>, Shape> {
    match field(obj, name) {
        None | Some(Doc::Null) => Ok(None),
        Some(Doc::Text(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Doc::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
        Some(_) => Err(format!("`{name}` is neither a string nor a number")),
    }
}

/// A count given as a number or a numeric string; `None` when absent.
pub(crate) fn count(obj: &Fields<'_>, name: &str) -> Result<Option<u64>, Shape> {
    let bad = || format!("`{name}` is not a non-negative integer");
    match field(obj, name) {
        None | Some(Doc::Null) => Ok(None),
        Some(Doc::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
        Some(Doc::Text(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

/// A boolean given as `true`/`false` or as the strings `"true"`/`"false"` (any case).
pub(crate) fn boolean(obj: &Fields<'_>, name: &str) -> Result<Option<bool>, Shape> {
    match field(obj, name) {
        None | Some(Doc::Null) => Ok(None),
        Some(Doc::Bool(b)) => Ok(Some(*b)),
        Some(Doc::Text(s)) if s.trim().eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(Doc::Text(s)) if s.trim().eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(_) => Err(format!("`{name}` is not a boolean")),
    }
}

/// The entries of an RPC list `{"Outer": {"Item": [...]}}`. An absent or empty wrapper is an empty list;
/// a single object where an array belongs counts as one entry.
pub(crate) fn list<'d, 'a>(obj: &'d Fields<'a>, outer: &str, item: &str) -> Result<Vec<&'d Fields<'a>>, Shape> {
    let items = match field(obj, outer) {
        None | Some(Doc::Null) => return Ok(Vec::new()),
        // An empty XML wrapper (`<Results></Results>`) reads as an empty string.
        Some(Doc::Text(s)) if s.trim().is_empty() => return Ok(Vec::new()),
        Some(Doc::Object(wrapper)) => match field(wrapper, item) {
            None | Some(Doc::Null) => return Ok(Vec::new()),
            Some(Doc::List(items)) => items.iter().collect::<Vec<_>>(),
            Some(single @ Doc::Object(_)) => vec![single],
            Some(_) => return Err(format!("`{outer}.{item}` is not a list")),
        },
        Some(_) => return Err(format!("`{outer}` is not an object")),
    };
    items.into_iter().map(|v| object(v, &format!("an entry of `{outer}.{item}`"))).collect()
}
