//! Reading an upstream's reply through its dialect's codec, and telling an answer from garbage.
//!
//! A reply that is not the upstream's protocol (an HTML 502 page, truncated JSON, a content type that is
//! neither JSON nor XML, an empty body) is not the upstream's answer: it becomes the caller's internal
//! error, naming the upstream and the HTTP status it sent.

use crate::dialect::{self, Dialect};
use crate::mapping::Mappings;
use crate::model::{Code, Fault, Operation, Outcome};

use super::transport::RawReply;

/// How much of an upstream's content type a message repeats.
const SHOWN_CHARS: usize = 64;

/// What a reply said.
#[derive(Debug)]
pub(crate) enum Reading {
    /// The upstream answered in its protocol: a success, or its own error.
    Answer(Result<Outcome, Fault>),
    /// Not its protocol: the caller's internal error, naming the status.
    Garbage(Fault),
}

/// Reads `reply` from upstream `name`, which speaks `dialect`.
pub(crate) fn read(name: &str, dialect: Dialect, reply: &RawReply, op: &Operation, maps: &Mappings) -> Reading {
    let status = reply.status;
    let garbage = |what: &str| {
        Reading::Garbage(Fault::upstream(
            Code::Internal,
            format!("The upstream `{name}` answered HTTP {status} with {what}."),
            None,
        ))
    };
    let content_type = reply.headers.get(http::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
    match content_type.as_deref() {
        None => return garbage("no content type"),
        Some(value) if !readable_media(value) => {
            let shown: String = value.chars().take(SHOWN_CHARS).collect();
            return garbage(&format!("the content type `{shown}`, which is neither JSON nor XML"));
        }
        Some(_) => {}
    }
    if reply.body.iter().all(u8::is_ascii_whitespace) {
        return garbage("an empty body");
    }
    match dialect::decode_response(dialect, status, &reply.headers, &reply.body, op, maps) {
        // The codecs report a reply they cannot read as unavailable with nothing the upstream said.
        Err(fault) if fault.code() == Code::UpstreamUnavailable && fault.upstream_error().is_none() => {
            garbage(&format!("a reply crossgate cannot read ({})", fault.message().trim_end_matches('.')))
        }
        answer => Reading::Answer(answer),
    }
}

/// JSON or XML, whatever the subtype's prefix (`application/json`, `text/xml`, `application/problem+json`).
fn readable_media(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let subtype = media.split_once('/').map_or("", |(_, s)| s);
    ["json", "xml"].iter().any(|kind| subtype == *kind || subtype.ends_with(&format!("+{kind}")))
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http::HeaderMap;

    use super::*;
    use crate::model::Action;

    fn reply(status: u16, content_type: Option<&str>, body: &'static str) -> RawReply {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        }
        RawReply { status, headers, body: Bytes::from_static(body.as_bytes()) }
    }

    fn garbage_message(r: &RawReply, dialect: Dialect) -> String {
        let maps = Mappings::embedded().unwrap();
        match read("cvm", dialect, r, &Operation::new(Action::DescribeKeys), &maps) {
            Reading::Garbage(fault) => {
                assert_eq!(fault.code(), Code::Internal);
                fault.message().to_owned()
            }
            Reading::Answer(a) => panic!("read as an answer: {a:?}"),
        }
    }

    #[test]
    fn garbage_names_the_upstream_and_its_status() {
        let json = Some("application/json");
        for (r, says) in [
            (reply(502, Some("text/html"), "<h1>Bad Gateway</h1>"), "HTTP 502 with the content type `text/html`"),
            (reply(200, json, r#"{"Response": {"Reque"#), "HTTP 200 with a reply crossgate cannot read"),
            (reply(200, json, ""), "HTTP 200 with an empty body"),
            (reply(200, None, r#"{"Response": {"RequestId": "r"}}"#), "no content type"),
            (reply(200, Some("text/plain"), r#"{"Response": {"RequestId": "r"}}"#), "`text/plain`"),
            (reply(503, json, "{}"), "HTTP 503"),
        ] {
            let message = garbage_message(&r, Dialect::TencentCvm);
            assert!(message.contains("`cvm`") && message.contains(says), "{message}");
        }
        let message = garbage_message(&reply(500, Some("text/xml"), "<oops"), Dialect::AliyunEcs);
        assert!(message.contains("HTTP 500"), "{message}");
    }

    #[test]
    fn the_upstreams_own_answers_are_answers() {
        let maps = Mappings::embedded().unwrap();
        let op = Operation::new(Action::DescribeKeys);
        let error =
            r#"{"Response": {"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}, "RequestId": "r"}}"#;
        let Reading::Answer(Err(fault)) =
            read("cvm", Dialect::TencentCvm, &reply(200, Some("application/json"), error), &op, &maps)
        else {
            panic!("an answer")
        };
        assert_eq!(fault.code(), Code::Throttled);
        let ecs =
            reply(400, Some("application/json;charset=utf-8"), r#"{"Code": "Throttling.User", "RequestId": "r"}"#);
        let Reading::Answer(Err(fault)) = read("ecs", Dialect::AliyunEcs, &ecs, &op, &maps) else { panic!() };
        assert_eq!(fault.code(), Code::Throttled);
    }

    #[test]
    fn json_and_xml_media_types_are_readable() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "text/xml;charset=UTF-8",
            "application/problem+json",
        ] {
            assert!(readable_media(ok), "{ok}");
        }
        for bad in ["text/html", "text/plain", "", "json", "application/jsonp"] {
            assert!(!readable_media(bad), "{bad}");
        }
    }
}
