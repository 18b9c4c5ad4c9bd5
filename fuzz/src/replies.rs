//! Upstream replies on any status, headers and body read by [`Message::parse`], as the answer to each
//! action.

use crossgate::dialect::{self, Dialect, Format, Reply, Style};
use crossgate::model::{Action, Keys, Operation};
use http::{HeaderMap, HeaderValue};

use super::maps;
use super::message::Message;
use super::requests::answer;

/// Tencent replies (legacy API 2.0, CVM, Lighthouse; JSON), by [`check_reply`].
pub fn tencent_reply(data: &[u8]) {
    let message = Message::parse(data);
    for dialect in [Dialect::TencentV2, Dialect::TencentCvm, Dialect::TencentLighthouse] {
        for op in operations(dialect) {
            check_reply(dialect, Format::Json, &message, &op);
        }
    }
}

/// ECS replies, JSON or XML, by [`check_reply`], re-encoded as JSON and as XML.
pub fn aliyun_ecs_reply(data: &[u8]) {
    let message = Message::parse(data);
    for op in operations(Dialect::AliyunEcs) {
        for format in [Format::Json, Format::Xml] {
            check_reply(Dialect::AliyunEcs, format, &message, &op);
        }
    }
}

/// One operation per action, as a caller in `dialect` names its keys, for reading replies to.
pub fn operations(dialect: Dialect) -> Vec<Operation> {
    [Action::AssociateKeys, Action::DisassociateKeys, Action::DescribeKeys, Action::DescribeInstances]
        .into_iter()
        .map(|action| {
            let mut op = Operation::new(action);
            op.instances = vec!["ins-1e4r6y8i".to_owned()];
            let keys = vec!["skey-4e5ty7i8".to_owned()];
            op.keys = if dialect == Dialect::AliyunEcs { Keys::Names(keys) } else { Keys::Ids(keys) };
            op
        })
        .collect()
}

/// The checks every upstream-reply target makes on one reply in `dialect` to `op`: it decodes to an
/// outcome or a fault without a panic, a fault can be answered to a caller of this dialect, and an
/// outcome survives a round trip: encoded as this dialect's answer and read back, it is the same outcome.
pub fn check_reply(dialect: Dialect, format: Format, message: &Message, op: &Operation) {
    let maps = maps();
    let decoded = dialect::decode_response(dialect, message.status(), &message.headers, &message.body, op, maps);
    let reply = Reply {
        dialect,
        style: Style::New,
        action: Some(op.action),
        wire_action: maps.wire_action(dialect, op.action).to_owned(),
        format,
        request_id: decoded.as_ref().map_or_else(|_| "fuzz-request-id".to_owned(), |o| o.request_id.clone()),
        key_name: op.keys.as_slice().first().cloned(),
        host: "fuzz.example.com".to_owned(),
        page: None,
    };
    answer(&reply, &decoded);
    let Ok(outcome) = decoded else { return };
    let wire = dialect::encode_response(&reply, &Ok(outcome.clone()), maps);
    let headers = header_map(&wire.headers);
    let again = dialect::decode_response(dialect, wire.status, &headers, &wire.body, op, maps);
    assert_eq!(again.as_ref(), Ok(&outcome), "{}", String::from_utf8_lossy(&wire.body));
}

fn header_map(headers: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(*name, HeaderValue::from_str(value).expect("the codec writes valid header values"));
    }
    map
}
