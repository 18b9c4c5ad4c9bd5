//! The XML side of the ECS RPC codec: a writer for `Format=XML` replies and a reader for XML bodies
//! (`shared/reference/protocols.md` section 5.2).
//!
//! Both are small and hand-written over quick-xml, in the manner of s3s's `xml/{ser,de}.rs`. The writer
//! turns a [`Node`] tree into `<?xml version="1.0" encoding="UTF-8"?><Root>...</Root>`, lists as repeated
//! item elements (`<Results><Result>...</Result><Result>...</Result></Results>`). The reader turns a
//! document back into a [`serde_json::Value`], the same shape a JSON body parses to, so that one decoder
//! serves both formats: an element with children becomes an object, a leaf becomes a string, and the
//! elements named as list items become arrays. Any other element given twice is refused, as s3s refuses
//! a duplicate field.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use serde_json::{Map, Value};

use super::body::Node;
use crate::dialect::params::MAX_JSON_DEPTH;

/// The declaration every ECS XML reply starts with.
const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

// === writer ===

/// Writes `body` as the document `<root>...</root>`, declaration first.
pub(crate) fn write_document(root: &str, body: &Node<'_>) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str(DECLARATION);
    write_element(&mut out, root, body);
    out.into_bytes()
}

fn write_element(out: &mut String, name: &str, node: &Node<'_>) {
    match node {
        // A list is its items, each under the item name, inside the list's own element.
        Node::List(item, entries) => {
            open(out, name);
            for entry in entries {
                write_element(out, item, entry);
            }
            close(out, name);
        }
        Node::Object(fields) => {
            open(out, name);
            for (field, value) in fields {
                write_element(out, field, value);
            }
            close(out, name);
        }
        Node::Text(text) => leaf(out, name, text),
        Node::Bool(b) => leaf(out, name, if *b { "true" } else { "false" }),
        Node::Number(n) => leaf(out, name, &n.to_string()),
    }
}

fn leaf(out: &mut String, name: &str, text: &str) {
    open(out, name);
    out.push_str(&escape(text));
    close(out, name);
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

// === reader ===

/// One element being read: its name, the children seen so far, and its text.
struct Open {
    name: String,
    children: Map<String, Value>,
    text: String,
}

impl Open {
    fn new(name: String) -> Open {
        Open { name, children: Map::new(), text: String::new() }
    }

    /// The element's value once closed: an object when it had children, its text otherwise.
    fn finish(self) -> Result<(String, Value), String> {
        if self.children.is_empty() {
            return Ok((self.name, Value::String(self.text)));
        }
        if !self.text.trim().is_empty() {
            return Err(format!("element <{}> mixes text and child elements", self.name));
        }
        Ok((self.name, Value::Object(self.children)))
    }

    /// Adds a closed child; `lists` names the elements that may repeat (list items).
    fn add(&mut self, name: String, value: Value, lists: &[&str]) -> Result<(), String> {
        if lists.contains(&name.as_str()) {
            match self.children.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(value),
                _ => return Err("a list item element is also a field".to_owned()),
            }
            return Ok(());
        }
        if self.children.contains_key(&name) {
            return Err(format!("element <{name}> appears twice in <{}>", self.name));
        }
        self.children.insert(name, value);
        Ok(())
    }
}

/// Reads an XML document into its root element's name and value. `lists` names the elements that are
/// list items (they may repeat, and always read as arrays). Refuses a DOCTYPE, processing instructions,
/// entities other than the five predefined ones, nesting deeper than [`MAX_JSON_DEPTH`], duplicate
/// elements, mixed content and anything after the root.
pub(crate) fn read_document(body: &[u8], lists: &[&str]) -> Result<(String, Value), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the XML body is not UTF-8".to_owned())?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("malformed XML: {e}"))?;
        match event {
            Event::Start(start) => {
                if root.is_some() {
                    return Err("content after the root element".to_owned());
                }
                if stack.len() >= MAX_JSON_DEPTH {
                    return Err(format!("XML nested deeper than {MAX_JSON_DEPTH} levels"));
                }
                stack.push(Open::new(element_name(&start)));
            }
            Event::Empty(start) => {
                let name = element_name(&start);
                close_element(&mut stack, &mut root, Open::new(name), lists)?;
            }
            Event::End(_) => {
                // quick-xml has already checked that the end tag matches the open one.
                let open = stack.pop().ok_or_else(|| "an end tag without a start tag".to_owned())?;
                close_element(&mut stack, &mut root, open, lists)?;
            }
            Event::Text(t) => push_text(&mut stack, &root, &t.xml10_content())?,
            Event::CData(c) => {
                push_text(&mut stack, &root, &c)?;
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => predefined_entity(&r).ok_or_else(|| format!("unknown XML entity `&{};`", &*r))?,
                    Err(_) => return Err(format!("invalid character reference `&{};`", &*r)),
                };
                push_text(&mut stack, &root, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Comment(_) | Event::Decl(_) => {}
            Event::DocType(_) => return Err("a DOCTYPE is not allowed".to_owned()),
            Event::PI(_) => return Err("processing instructions are not allowed".to_owned()),
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        return Err(format!("the document ends inside <{}>", open.name));
    }
    root.ok_or_else(|| "the XML document has no root element".to_owned())
}

fn element_name(start: &quick_xml::events::BytesStart<'_>) -> String {
    String::from_utf8_lossy(start.name().as_ref().as_ref()).into_owned()
}

fn close_element(
    stack: &mut [Open],
    root: &mut Option<(String, Value)>,
    open: Open,
    lists: &[&str],
) -> Result<(), String> {
    let (name, value) = open.finish()?;
    match stack.last_mut() {
        Some(parent) => parent.add(name, value, lists),
        None if root.is_none() => {
            *root = Some((name, value));
            Ok(())
        }
        None => Err("content after the root element".to_owned()),
    }
}

fn push_text(stack: &mut [Open], root: &Option<(String, Value)>, text: &str) -> Result<(), String> {
    match stack.last_mut() {
        Some(open) => {
            open.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None if root.is_some() => Err("content after the root element".to_owned()),
        None => Err("text before the root element".to_owned()),
    }
}

fn predefined_entity(name: &str) -> Option<char> {
    match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "apos" => Some('\''),
        "quot" => Some('"'),
        _ => None,
    }
}

/// `true` when a body looks like XML rather than JSON (its first non-space byte is `<`).
pub(crate) fn looks_like_xml(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
}

/// A name usable as an XML element name: ASCII letters and digits only, starting with a letter.
pub(crate) fn safe_name(name: &str) -> Option<Cow<'_, str>> {
    let ok = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(Cow::Borrowed(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_lists_as_repeated_items() {
        let body = Node::Object(vec![
            ("RequestId", Node::Text("r<1>".into())),
            ("Results", Node::List("Result", vec![Node::Object(vec![("Success", Node::Bool(true))])])),
        ]);
        let xml = String::from_utf8(write_document("AttachKeyPairResponse", &body)).unwrap();
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><AttachKeyPairResponse><RequestId>r&lt;1&gt;</RequestId>\
             <Results><Result><Success>true</Success></Result></Results></AttachKeyPairResponse>"
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let body = Node::Object(vec![
            ("RequestId", Node::Text("a & b".into())),
            ("Results", Node::List("Result", vec![Node::Object(vec![("Code", Node::Number(200))])])),
        ]);
        let (root, value) = read_document(&write_document("R", &body), &["Result"]).unwrap();
        assert_eq!(root, "R");
        assert_eq!(value, serde_json::json!({"RequestId": "a & b", "Results": {"Result": [{"Code": "200"}]}}));
    }

    #[test]
    fn refuses_hostile_documents() {
        for bad in [
            "<a><b>1</b><b>2</b></a>",
            "<a>",
            "<a></b>",
            "<a/><b/>",
            "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
            "<a>&x;</a>",
            "<a>&#0;</a>",
            "<a>t<b/></a>",
            "text<a/>",
            "<?php x?><a/>",
            "",
        ] {
            assert!(read_document(bad.as_bytes(), &["Result"]).is_err(), "{bad}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(read_document(deep.as_bytes(), &[]).is_err());
        assert!(read_document(b"<a>\xff</a>", &[]).is_err());
    }

    #[test]
    fn names_are_sanitised() {
        assert!(safe_name("AttachKeyPair").is_some());
        assert!(safe_name("a<b").is_none());
        assert!(safe_name("1a").is_none());
        assert!(safe_name("").is_none());
    }
}
