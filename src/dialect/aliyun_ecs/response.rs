//! ECS replies in both directions: [`encode_response`] answers a caller as ECS would, and
//! [`decode_response`] reads ECS's own answer back into the canonical model
//! (`shared/reference/protocols.md` 5.2, 5.3, 5.4).
//!
//! A bind or unbind answers HTTP 200 with `TotalCount`, `FailCount` and one `Results.Result[]` entry per
//! instance; a failed instance is `Success: false`, `Code` an HTTP-like status and `Message` the ECS error
//! code, which [`decode_response`] classifies back through the mappings. Whole-request errors are HTTP
//! 4xx/5xx with `{"RequestId","HostId","Code","Message","Recommend"}` or `<Error>...</Error>`.

use std::borrow::Cow;

use http::HeaderMap;

use super::body::{Doc, Fields, Node, Shape, boolean, code_text, count, list, object, required_string, string};
use super::{
    CONTENT_TYPE_JSON, CONTENT_TYPE_XML, DIALECT, OS_LINUX, OS_WINDOWS, RESULT_OK_CODE, RESULT_OK_MESSAGE, field,
    header, xml,
};
use crate::dialect::params::check_json_depth;
use crate::dialect::{Format, Reply, WireResponse};
use crate::mapping::{Mappings, RenderedError};
use crate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, KeyPairInfo, Operation, OsFamily, Outcome, Page,
    Provider,
};
use crate::sign::encoding::pct_encode;

/// The host named in `HostId` when the caller's Host header is unknown.
const DEFAULT_HOST: &str = "ecs.aliyuncs.com";
/// Where `Recommend` points: Alibaba's troubleshooting page for the code and request.
const RECOMMEND_BASE: &str = "https://api.aliyun.com/troubleshoot";

// === encode_response ===

/// The reply an ECS client expects: HTTP 200 with the action's body, or the fault rendered through
/// `mappings/errors/aliyun_ecs.toml` with its HTTP status, in JSON or XML as `reply.format` says.
/// `reply.request_id` is the `RequestId` either way.
pub fn encode_response(reply: &Reply, result: &Result<Outcome, Fault>, maps: &Mappings) -> WireResponse {
    let (status, root, node) = match result {
        Ok(outcome) => (200, success_root(reply, &outcome.answer, maps), success_body(reply, &outcome.answer, maps)),
        Err(fault) => {
            let rendered = maps.render(DIALECT, fault);
            (rendered.status, Cow::Borrowed(field::ERROR), error_body(reply, rendered))
        }
    };
    let (content_type, body) = match reply.format {
        // Serialising a `Node` cannot fail: every key is a string and every value is plain data.
        Format::Json => (CONTENT_TYPE_JSON, serde_json::to_vec(&node).unwrap_or_default()),
        Format::Xml => (CONTENT_TYPE_XML, xml::write_document(&root, &node)),
    };
    WireResponse { status, headers: vec![(header::CONTENT_TYPE, content_type.to_owned())], body }
}

/// `<WireAction>Response`: the canonical wire name when the action is known, else the caller's own
/// spelling if it is a plain name, else the name that fits the answer.
fn success_root<'r>(reply: &'r Reply, answer: &Answer, maps: &'r Mappings) -> Cow<'r, str> {
    let wire = match reply.action {
        Some(action) => Cow::Borrowed(maps.wire_action(DIALECT, action)),
        None => xml::safe_name(&reply.wire_action).unwrap_or_else(|| {
            let action = match answer {
                Answer::Bind(_) => Action::AssociateKeys,
                Answer::KeyPairs(_) => Action::DescribeKeys,
                Answer::Instances(_) => Action::DescribeInstances,
                Answer::Imported(_) => Action::ImportKey,
                Answer::Done => Action::RebootInstances,
            };
            Cow::Borrowed(maps.wire_action(DIALECT, action))
        }),
    };
    Cow::Owned(format!("{wire}Response"))
}

fn success_body<'a>(reply: &'a Reply, answer: &'a Answer, maps: &Mappings) -> Node<'a> {
    let request_id = Node::Text(Cow::Borrowed(&reply.request_id));
    match answer {
        Answer::Bind(results) => bind_body(reply, request_id, results, maps),
        Answer::KeyPairs(keys) => {
            // The page asked for (else the first of the default size); TotalCount counts every match.
            let page = reply.page.unwrap_or(Page { offset: 0, limit: maps.limits(DIALECT).lookup_page_size });
            let entries = page
                .of(keys)
                .iter()
                .map(|k| {
                    let mut fields = vec![(field::KEY_PAIR_NAME, Node::Text(Cow::Borrowed(k.name.as_str())))];
                    if let Some(fingerprint) = &k.fingerprint {
                        fields.push((field::KEY_PAIR_FINGER_PRINT, Node::Text(Cow::Borrowed(fingerprint.as_str()))));
                    }
                    Node::Object(fields)
                })
                .collect();
            let size = page.limit.max(1);
            Node::Object(vec![
                (field::REQUEST_ID, request_id),
                (field::TOTAL_COUNT, Node::Number(keys.len() as u64)),
                (field::PAGE_NUMBER, Node::Number((page.offset / size + 1) as u64)),
                (field::PAGE_SIZE, Node::Number(size as u64)),
                (field::KEY_PAIRS, Node::List(field::KEY_PAIR, entries)),
            ])
        }
        Answer::Imported(key) => Node::Object(vec![
            (field::REQUEST_ID, request_id),
            (field::KEY_PAIR_NAME, Node::Text(Cow::Borrowed(key.name.as_str()))),
            (field::KEY_PAIR_FINGER_PRINT, Node::Text(Cow::Borrowed(key.fingerprint.as_deref().unwrap_or_default()))),
        ]),
        Answer::Done => Node::Object(vec![(field::REQUEST_ID, request_id)]),
        Answer::Instances(instances) => {
            let entries = instances.iter().map(instance_node).collect();
            Node::Object(vec![
                (field::REQUEST_ID, request_id),
                (field::TOTAL_COUNT, Node::Number(instances.len() as u64)),
                (field::PAGE_NUMBER, Node::Number(1)),
                (field::PAGE_SIZE, Node::Number(maps.limits(DIALECT).lookup_instances as u64)),
                (field::NEXT_TOKEN, Node::Text(Cow::Borrowed(""))),
                (field::INSTANCES, Node::List(field::INSTANCE, entries)),
            ])
        }
    }
}

/// A bind or unbind: counts and codes as strings (what the API metadata declares; protocols.md 5.3),
/// `Success` as a boolean. Field order follows the documentation's example (seed 003).
fn bind_body<'a>(reply: &'a Reply, request_id: Node<'a>, results: &'a [InstanceResult], maps: &Mappings) -> Node<'a> {
    let failed = results.iter().filter(|r| r.result.is_err()).count();
    let entries = results
        .iter()
        .map(|r| {
            let (message, code, success) = match &r.result {
                Ok(()) => (RESULT_OK_MESSAGE.to_owned(), RESULT_OK_CODE.to_owned(), true),
                Err(fault) => {
                    let rendered = maps.render(DIALECT, fault);
                    (rendered.code, rendered.status.to_string(), false)
                }
            };
            Node::Object(vec![
                (field::MESSAGE, Node::text(message)),
                (field::INSTANCE_ID, Node::Text(Cow::Borrowed(&r.instance))),
                (field::SUCCESS, Node::Bool(success)),
                (field::CODE, Node::text(code)),
            ])
        })
        .collect();
    let mut fields = vec![(field::TOTAL_COUNT, Node::text(results.len().to_string())), (field::REQUEST_ID, request_id)];
    if let Some(name) = &reply.key_name {
        fields.push((field::KEY_PAIR_NAME, Node::Text(Cow::Borrowed(name))));
    }
    fields.push((field::RESULTS, Node::List(field::RESULT, entries)));
    fields.push((field::FAIL_COUNT, Node::text(failed.to_string())));
    Node::Object(fields)
}

fn instance_node(info: &InstanceInfo) -> Node<'_> {
    let os = match info.os {
        OsFamily::Linux => OS_LINUX,
        OsFamily::Windows => OS_WINDOWS,
    };
    Node::Object(vec![
        (field::INSTANCE_ID, Node::Text(Cow::Borrowed(&info.id))),
        (field::STATUS, Node::Text(Cow::Borrowed(&info.state))),
        (field::OS_TYPE, Node::Text(Cow::Borrowed(os))),
        (field::OS_NAME, Node::Text(Cow::Borrowed(&info.os_name))),
        (field::KEY_PAIR_NAME, Node::Text(Cow::Borrowed(info.keys.first().map_or("", String::as_str)))),
    ])
}

fn error_body(reply: &Reply, rendered: RenderedError) -> Node<'_> {
    let host = if reply.host.is_empty() { DEFAULT_HOST } else { reply.host.as_str() };
    let recommend = format!(
        "{RECOMMEND_BASE}?q={}&product=Ecs&requestId={}",
        pct_encode(&rendered.code),
        pct_encode(&reply.request_id)
    );
    Node::Object(vec![
        (field::REQUEST_ID, Node::Text(Cow::Borrowed(&reply.request_id))),
        (field::HOST_ID, Node::Text(Cow::Borrowed(host))),
        (field::CODE, Node::text(rendered.code)),
        (field::MESSAGE, Node::text(rendered.message)),
        (field::RECOMMEND, Node::text(recommend)),
    ])
}

// === decode_response ===

/// Reads ECS's reply to `op` (JSON, or XML when it says so). HTTP 2xx gives an [`Outcome`] whose
/// `request_id` is ECS's `RequestId`; a failed `Results` entry becomes that instance's fault, classified
/// from its `Message`. HTTP 4xx/5xx gives `maps.upstream_fault` with ECS's `Code`, `Message` and
/// `RequestId`.
///
/// # Errors
/// The upstream's classified fault, or `UpstreamUnavailable` for a body that is not JSON/XML or not the
/// expected shape.
pub fn decode_response(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    let garbage = |why: Shape| {
        Fault::upstream(
            Code::UpstreamUnavailable,
            format!("ECS answered HTTP {status} with an unreadable body: {why}."),
            None,
        )
    };
    let doc = parse_body(headers, body).map_err(garbage)?;
    let obj = object(&doc, "the body").map_err(garbage)?;
    if !(200..300).contains(&status) {
        return Err(upstream_error(obj, maps).map_err(garbage)?);
    }
    let request_id = required_string(obj, field::REQUEST_ID).map_err(garbage)?;
    let answer = match op.action {
        Action::AssociateKeys | Action::DisassociateKeys => bind_answer(obj, request_id, maps),
        Action::DescribeKeys => key_pairs_answer(obj),
        Action::DescribeInstances => instances_answer(obj),
        Action::ImportKey => imported_answer(obj, op),
        Action::StartInstances | Action::StopInstances | Action::RebootInstances => Ok(Answer::Done),
    }
    .map_err(garbage)?;
    Ok(Outcome { request_id: request_id.to_owned(), answer })
}

/// `TotalCount` of a look-up's reply (JSON or XML), when it has a readable one.
pub fn total_count(headers: &HeaderMap, body: &[u8]) -> Option<usize> {
    let doc = parse_body(headers, body).ok()?;
    let obj = object(&doc, "the body").ok()?;
    count(obj, field::TOTAL_COUNT).ok().flatten().and_then(|n| usize::try_from(n).ok())
}

/// JSON, or XML when the content type or the first byte says so; depth checked before parsing.
fn parse_body<'b>(headers: &HeaderMap, body: &'b [u8]) -> Result<Doc<'b>, Shape> {
    // `xml` in any case, compared in place rather than in a lower-cased copy of the header.
    let xml_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"xml")));
    if xml_type || xml::looks_like_xml(body) {
        return xml::read_document(body, field::LIST_ITEMS).map(|(_, value)| Doc::from_value(value));
    }
    check_json_depth("the body", body).map_err(|f| f.message().to_owned())?;
    Doc::from_json(body).map_err(|e| format!("not JSON ({e})"))
}

/// The error ECS reported; the tea SDK also reads lower-camel-case names.
fn upstream_error(obj: &Fields<'_>, maps: &Mappings) -> Result<Fault, Shape> {
    let either = |upper: &str, lower: &str| -> Result<Option<Cow<'_, str>>, Shape> {
        Ok(code_text(obj, upper)?.or(code_text(obj, lower)?))
    };
    let code = either(field::CODE, field::CODE_LOWER)?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| "an error without `Code`".to_owned())?;
    let message = either(field::MESSAGE, field::MESSAGE_LOWER)?.unwrap_or_default();
    let request_id = either(field::REQUEST_ID, field::REQUEST_ID_LOWER)?.unwrap_or_default();
    Ok(maps.upstream_fault(Provider::AliyunEcs, &code, &message, &request_id))
}

fn bind_answer(obj: &Fields<'_>, request_id: &str, maps: &Mappings) -> Result<Answer, Shape> {
    count(obj, field::TOTAL_COUNT)?;
    count(obj, field::FAIL_COUNT)?;
    let mut results = Vec::new();
    for entry in list(obj, field::RESULTS, field::RESULT)? {
        let instance = required_string(entry, field::INSTANCE_ID)?.to_owned();
        let code = code_text(entry, field::CODE)?;
        let success = match boolean(entry, field::SUCCESS)? {
            Some(success) => success,
            None => code.as_deref().ok_or_else(|| "a result without `Success` or `Code`".to_owned())? == RESULT_OK_CODE,
        };
        let result = if success {
            Ok(())
        } else {
            // The entry's Message carries the ECS error code; fall back to its Code.
            let message = string(entry, field::MESSAGE)?.filter(|m| !m.is_empty());
            let ecs_code = message.or(code.as_deref()).unwrap_or_default();
            Err(maps.upstream_fault(Provider::AliyunEcs, ecs_code, ecs_code, request_id))
        };
        results.push(InstanceResult { instance, result });
    }
    Ok(Answer::Bind(results))
}

fn key_pairs_answer(obj: &Fields<'_>) -> Result<Answer, Shape> {
    count(obj, field::TOTAL_COUNT)?;
    let keys = list(obj, field::KEY_PAIRS, field::KEY_PAIR)?
        .into_iter()
        .map(|entry| {
            let name = required_string(entry, field::KEY_PAIR_NAME)?.to_owned();
            Ok(KeyPairInfo {
                id: name.clone(),
                name,
                instances: Vec::new(),
                public_key: string(entry, field::PUBLIC_KEY)?.filter(|k| !k.is_empty()).map(str::to_owned),
                fingerprint: string(entry, field::KEY_PAIR_FINGER_PRINT)?.filter(|f| !f.is_empty()).map(str::to_owned),
            })
        })
        .collect::<Result<_, Shape>>()?;
    Ok(Answer::KeyPairs(keys))
}

fn imported_answer(obj: &Fields<'_>, op: &Operation) -> Result<Answer, Shape> {
    let name = required_string(obj, field::KEY_PAIR_NAME)?.to_owned();
    let fingerprint = string(obj, field::KEY_PAIR_FINGER_PRINT)?.filter(|f| !f.is_empty()).map(str::to_owned);
    Ok(Answer::Imported(KeyPairInfo {
        id: name.clone(),
        name,
        instances: Vec::new(),
        public_key: op.public_key.clone(),
        fingerprint,
    }))
}

fn instances_answer(obj: &Fields<'_>) -> Result<Answer, Shape> {
    count(obj, field::TOTAL_COUNT)?;
    let instances = list(obj, field::INSTANCES, field::INSTANCE)?
        .into_iter()
        .map(|entry| {
            let os_type = required_string(entry, field::OS_TYPE)?;
            let os = if os_type.eq_ignore_ascii_case(OS_LINUX) {
                OsFamily::Linux
            } else if os_type.eq_ignore_ascii_case(OS_WINDOWS) {
                OsFamily::Windows
            } else {
                return Err(format!("`OSType` is `{os_type}`, neither linux nor windows"));
            };
            let key = string(entry, field::KEY_PAIR_NAME)?.filter(|k| !k.is_empty());
            Ok(InstanceInfo {
                id: required_string(entry, field::INSTANCE_ID)?.to_owned(),
                os,
                os_name: string(entry, field::OS_NAME)?.unwrap_or_default().to_owned(),
                state: required_string(entry, field::STATUS)?.to_owned(),
                keys: key.map(str::to_owned).into_iter().collect(),
                latest_operation: None,
                latest_operation_state: None,
                latest_operation_request_id: None,
            })
        })
        .collect::<Result<_, Shape>>()?;
    Ok(Answer::Instances(instances))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_content_type_naming_xml_in_any_case_reads_the_body_as_xml() {
        let with = |content_type: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(content_type));
            headers
        };
        let json = br#"{"RequestId": "R"}"#;
        assert!(parse_body(&with("application/json"), json).is_ok());
        // Said to be XML, the JSON text is read as XML and is no document.
        assert!(parse_body(&with("Text/XML; charset=UTF-8"), json).is_err());
        assert!(parse_body(&with("application/xml"), json).is_err());
    }

    #[test]
    fn body_readers_accept_numbers_and_strings() {
        let body = br#"{"A": 2, "B": "3", "C": true, "D": "False", "E": -1, "F": "x", "G": "a\"b", "G": "last"}"#;
        let doc = Doc::from_json(body).unwrap();
        let o = object(&doc, "the body").unwrap();
        assert_eq!(count(o, "A"), Ok(Some(2)));
        assert_eq!(count(o, "B"), Ok(Some(3)));
        assert!(count(o, "E").is_err());
        assert!(count(o, "F").is_err());
        assert_eq!(boolean(o, "C"), Ok(Some(true)));
        assert_eq!(boolean(o, "D"), Ok(Some(false)));
        assert!(boolean(o, "F").is_err());
        assert_eq!(code_text(o, "A"), Ok(Some("2".into())));
        assert_eq!(string(o, "G"), Ok(Some("last")), "of a name given twice, the last");
    }
}
