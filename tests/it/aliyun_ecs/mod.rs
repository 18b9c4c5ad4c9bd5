//! The Alibaba ECS RPC codec (`src/dialect/aliyun_ecs/`): golden cases from seed 003, the SDK-made
//! vectors, round trips in both directions, and hostile input.

mod golden; // seed 003: request, JSON and XML responses, as files under tests/golden/aliyun_ecs/
mod malformed; // hostile input for auth_material, decode_request and decode_response
mod round_trip; // proptest: Operation -> request -> Operation, Outcome -> response -> Outcome
mod vectors; // every key-pair vector in the two Alibaba vector files

use crossgate::dialect::aliyun_ecs;
use crossgate::dialect::{Format, WireResponse};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Code, Fault, Keys, Operation};

use crate::support::Received;

/// The test caller: the documented RPC example pair.
pub(crate) const CALLER_ID: &str = "testid";
pub(crate) const CALLER_SECRET: &str = "testsecret";

/// auth_material, then decode_request, as the gateway runs them (without the signature check).
pub(crate) fn decode(received: &Received, maps: &Mappings) -> Result<Operation, Fault> {
    let raw = received.raw();
    let material = aliyun_ecs::auth_material(&raw)?;
    aliyun_ecs::decode_request(&raw, &material, maps)
}

/// An operation from its parts.
pub(crate) fn op(action: Action, region: &str, instances: &[&str], names: &[&str]) -> Operation {
    let mut op = Operation::new(action);
    op.region = Some(region.to_owned());
    op.instances = instances.iter().map(|s| (*s).to_owned()).collect();
    op.keys = match action {
        Action::DescribeInstances => Keys::none(),
        _ => Keys::Names(names.iter().map(|s| (*s).to_owned()).collect()),
    };
    op
}

/// What an ECS client sees for each canonical code: HTTP status and ECS `Code`
/// (`mappings/errors/aliyun_ecs.toml`, protocols.md 5.3 and 5.5).
pub(crate) fn ecs_error(code: Code) -> (u16, &'static str) {
    match code {
        Code::MissingParameter => (400, "MissingParameter"),
        Code::InvalidParameter | Code::InvalidParameterValue | Code::DuplicateValues => (400, "InvalidParameter"),
        Code::MalformedInstanceId | Code::InstanceNotFound => (400, "InvalidInstanceIds.ValueNotSupported"),
        Code::MalformedKeyId => (400, "InvalidKeyPairName.Malformed"),
        Code::LimitExceeded => (403, "InstanceKeyPairLimitExceeded"),
        Code::UnknownAction => (404, "InvalidAction.NotFound"),
        Code::KeyNotFound => (400, "InvalidKeyPairName.NotFound"),
        Code::InstanceNotSupported => (403, "DependencyViolation.WindowsInstance"),
        Code::SignatureMismatch => (400, "SignatureDoesNotMatch"),
        Code::MalformedSignature => (400, "IncompleteSignature"),
        Code::UnknownCredential => (404, "InvalidAccessKeyId.NotFound"),
        Code::TimestampExpired => (400, "InvalidTimeStamp.Expired"),
        Code::NonceReused => (400, "SignatureNonceUsed"),
        Code::Throttled => (400, "Throttling.User"),
        Code::UpstreamUnavailable | Code::UpstreamTimeout => (503, "ServiceUnavailable"),
        Code::Internal => (500, "InternalError"),
        other => panic!("no expectation written for {other}"),
    }
}

/// The parsed JSON body of a response.
pub(crate) fn json_body(resp: &WireResponse) -> serde_json::Value {
    serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&resp.body)))
}

/// Asserts that `fault` has `code` and that ECS's encoder renders it as an ECS client expects, in the
/// format the request asked for (XML when it named none).
#[track_caller]
pub(crate) fn assert_ecs_fault(received: &Received, fault: &Fault, code: Code, maps: &Mappings, case: &str) {
    assert_eq!(fault.code(), code, "{case}: {fault}");
    let reply = aliyun_ecs::reply(&received.raw(), maps, "REQ-1".to_owned());
    let resp = aliyun_ecs::encode_response(&reply, &Err(fault.clone()), maps);
    let (status, ecs_code) = ecs_error(code);
    assert_eq!(resp.status, status, "{case}: HTTP status");
    let body = String::from_utf8(resp.body.clone()).expect("UTF-8 body");
    match reply.format {
        Format::Json => {
            assert_eq!(resp.headers, [("content-type", "application/json;charset=utf-8".to_owned())], "{case}");
            let v = json_body(&resp);
            assert_eq!(v["Code"], ecs_code, "{case}: {body}");
            assert_eq!(v["RequestId"], "REQ-1", "{case}");
        }
        Format::Xml => {
            assert_eq!(resp.headers, [("content-type", "text/xml;charset=utf-8".to_owned())], "{case}");
            assert!(body.contains(&format!("<Code>{ecs_code}</Code>")), "{case}: {body}");
            assert!(
                body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>REQ-1</RequestId>"),
                "{case}: {body}"
            );
        }
    }
}
