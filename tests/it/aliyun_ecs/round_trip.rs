//! Round trips through the ECS codec, both directions, for every action:
//!
//! - Operation -> `encode_request` (ACS3 and RPC) -> the request a server receives -> `auth_material`
//!   -> `sign::verify` -> `decode_request` == the Operation;
//! - Outcome -> `encode_response` (JSON and XML) -> `decode_response` == the Outcome, per-instance
//!   failures included (they come back classified from their ECS code);
//! - Fault -> `encode_response` -> `decode_response` -> the upstream fault ECS's code classifies to, with
//!   the rendered code, message and RequestId kept.

use crossgate::dialect::{Dialect, Format, Reply, Style, UpstreamCtx, aliyun_ecs};
use crossgate::mapping::Mappings;
use crossgate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, KeyPairInfo, Keys, Operation, OsFamily, Outcome,
    Provider,
};
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use proptest::prelude::*;

use crate::support::{Received, header_map, maps};

fn instance_id() -> impl Strategy<Value = String> {
    "i-[a-z0-9]{8,22}"
}

fn instance_ids(min: usize, max: usize) -> impl Strategy<Value = Vec<String>> {
    prop::collection::btree_set(instance_id(), min..=max).prop_map(|s| s.into_iter().collect()).prop_shuffle()
}

/// Key names by ECS's rule: a letter first (Chinese included), then letters, digits, `:` `_` `.` `-`.
fn key_name() -> impl Strategy<Value = String> {
    "[A-Za-z中文密钥][A-Za-z0-9:_.\\-中文]{1,40}".prop_filter("not a URL", |n| !n.starts_with("http"))
}

fn region() -> impl Strategy<Value = String> {
    "[a-z]{2}-[a-z]{3,10}(-[1-9])?"
}

fn operation() -> impl Strategy<Value = Operation> {
    let bind =
        (prop_oneof![Just(Action::AssociateKeys), Just(Action::DisassociateKeys)], instance_ids(1, 50), key_name())
            .prop_map(|(action, instances, name)| {
                let mut op = Operation::new(action);
                op.instances = instances;
                op.keys = Keys::Names(vec![name]);
                op
            });
    let keys = prop::option::of(key_name()).prop_map(|name| {
        let mut op = Operation::new(Action::DescribeKeys);
        op.keys = Keys::Names(name.into_iter().collect());
        op
    });
    let instances = instance_ids(0, 100).prop_map(|instances| {
        let mut op = Operation::new(Action::DescribeInstances);
        op.instances = instances;
        op
    });
    prop_oneof![bind, keys, instances]
}

fn ctx() -> impl Strategy<Value = UpstreamCtx> {
    (
        prop_oneof![Just("ecs.aliyuncs.com"), Just("ecs.cn-hangzhou.aliyuncs.com"), Just("127.0.0.1:8443")],
        region(),
        "[A-Za-z0-9]{6,24}",
        prop_oneof![Just(Scheme::Acs3), Just(Scheme::AliyunRpc)],
        0i64..4_000_000_000,
        "[a-z0-9-]{8,36}",
    )
        .prop_map(|(host, region, credential_id, scheme, timestamp, nonce)| UpstreamCtx {
            host: host.to_owned(),
            region,
            credential_id,
            scheme,
            timestamp,
            nonce,
        })
}

proptest! {
    #[test]
    fn operations_survive_a_signed_request(mut op in operation(), ctx in ctx(), secret in "[ -~]{1,40}") {
        let maps = maps();
        op.region = Some(ctx.region.clone());
        let key = Secret::new(secret);
        let wire = aliyun_ecs::encode_request(&op, &ctx, &key, &maps).unwrap();
        prop_assert_eq!(wire.method, "POST");
        prop_assert!(wire.body.is_empty());
        let received = Received::from_wire(&wire);
        let raw = received.raw();
        let material = aliyun_ecs::auth_material(&raw).unwrap();
        prop_assert_eq!(material.scheme, ctx.scheme);
        prop_assert_eq!(material.credential_id.as_ref(), ctx.credential_id.as_str());
        prop_assert_eq!(material.timestamp, ctx.timestamp);
        prop_assert_eq!(material.nonce.as_deref(), Some(ctx.nonce.as_str()));
        prop_assert!(sign::verify(&material, &key).is_ok());
        prop_assert!(sign::verify(&material, &Secret::new("another secret")).is_err());
        prop_assert_eq!(aliyun_ecs::decode_request(&raw, &material, &maps).unwrap(), op);
        // ECS is asked for JSON either way.
        prop_assert_eq!(aliyun_ecs::reply(&raw, &maps, "r".into()).format, Format::Json);
    }
}

/// A fault as the codec reads it back from an ECS reply: classified from the rendered ECS code.
fn read_back(fault: &Fault, request_id: &str, maps: &Mappings) -> Fault {
    let code = maps.render(Dialect::AliyunEcs, fault).code;
    maps.upstream_fault(Provider::AliyunEcs, &code, &code, request_id)
}

fn code() -> impl Strategy<Value = Code> {
    prop::sample::select(Code::ALL.to_vec())
}

fn instance_info() -> impl Strategy<Value = InstanceInfo> {
    (
        instance_id(),
        prop_oneof![Just(OsFamily::Linux), Just(OsFamily::Windows)],
        "[ -~é中]{0,30}",
        prop::sample::select(vec!["Pending", "Running", "Starting", "Stopping", "Stopped"]),
        prop::option::of(key_name()),
    )
        .prop_map(|(id, os, os_name, state, key)| InstanceInfo {
            id,
            os,
            os_name,
            state: state.to_owned(),
            keys: key.into_iter().collect(),
            latest_operation: None,
            latest_operation_state: None,
            latest_operation_request_id: None,
        })
}

/// An outcome, and the outcome the codec must read back (per-instance faults classified).
fn outcome() -> impl Strategy<Value = (Action, Outcome, Outcome)> {
    let request_id = "[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}";
    let bind = (
        prop_oneof![Just(Action::AssociateKeys), Just(Action::DisassociateKeys)],
        request_id,
        prop::collection::vec((instance_id(), prop::option::of(code()), "[ -~]{0,20}"), 0..20),
    )
        .prop_map(|(action, request_id, entries)| {
            let maps = maps();
            let (sent, read): (Vec<_>, Vec<_>) = entries
                .into_iter()
                .map(|(instance, code, message)| match code {
                    None => (
                        InstanceResult { instance: instance.clone(), result: Ok(()) },
                        InstanceResult { instance, result: Ok(()) },
                    ),
                    Some(code) => {
                        let fault = Fault::caller(code, message);
                        let back = read_back(&fault, &request_id, &maps);
                        (
                            InstanceResult { instance: instance.clone(), result: Err(fault) },
                            InstanceResult { instance, result: Err(back) },
                        )
                    }
                })
                .unzip();
            let outcome = |answer| Outcome { request_id: request_id.clone(), answer };
            (action, outcome(Answer::Bind(sent)), outcome(Answer::Bind(read)))
        });
    let keys = (request_id, prop::collection::vec(key_name(), 0..10)).prop_map(|(request_id, names)| {
        let keys =
            names.into_iter().map(|name| KeyPairInfo { id: name.clone(), name, ..KeyPairInfo::default() }).collect();
        let o = Outcome { request_id, answer: Answer::KeyPairs(keys) };
        (Action::DescribeKeys, o.clone(), o)
    });
    let instances = (request_id, prop::collection::vec(instance_info(), 0..10)).prop_map(|(request_id, infos)| {
        let o = Outcome { request_id, answer: Answer::Instances(infos) };
        (Action::DescribeInstances, o.clone(), o)
    });
    prop_oneof![bind, keys, instances]
}

fn reply(action: Action, format: Format, request_id: &str, maps: &Mappings) -> Reply {
    Reply {
        dialect: Dialect::AliyunEcs,
        style: Style::New,
        action: Some(action),
        wire_action: maps.wire_action(Dialect::AliyunEcs, action).to_owned(),
        format,
        request_id: request_id.to_owned(),
        key_name: action.is_mutation().then(|| "FinanceJoshuaV25".to_owned()),
        host: "ecs.aliyuncs.com".to_owned(),
        page: None,
    }
}

fn format() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::Json), Just(Format::Xml)]
}

proptest! {
    #[test]
    fn outcomes_survive_a_response((action, sent, read) in outcome(), format in format()) {
        let maps = maps();
        let reply = reply(action, format, &sent.request_id, &maps);
        let resp = aliyun_ecs::encode_response(&reply, &Ok(sent), &maps);
        prop_assert_eq!(resp.status, 200);
        let got = aliyun_ecs::decode_response(resp.status, &header_map(&resp), &resp.body, &Operation::new(action), &maps);
        prop_assert_eq!(got.unwrap(), read);
    }

    #[test]
    fn faults_survive_a_response(
        code in code(),
        message in "[ -~中]{0,40}",
        detail in prop::option::of("[ -9;-~]{0,40}"),
        action in prop::sample::select(Action::ALL.to_vec()),
        format in format(),
    ) {
        let maps = maps();
        let mut fault = Fault::caller(code, message);
        if let Some(detail) = detail {
            fault = fault.with_detail(detail);
        }
        let rendered = maps.render(Dialect::AliyunEcs, &fault);
        let reply = reply(action, format, "4ADF7A06-66BD-4FBF-A2ED-2364E41D8C06", &maps);
        let resp = aliyun_ecs::encode_response(&reply, &Err(fault), &maps);
        prop_assert_eq!(resp.status, rendered.status);
        let got = aliyun_ecs::decode_response(resp.status, &header_map(&resp), &resp.body, &Operation::new(action), &maps)
            .unwrap_err();
        prop_assert_eq!(got.code(), maps.classify(Dialect::AliyunEcs, &rendered.code).0);
        let said = got.upstream_error().unwrap();
        prop_assert_eq!(said.provider, Provider::AliyunEcs);
        prop_assert_eq!(&said.code, &rendered.code);
        prop_assert_eq!(&said.message, &rendered.message);
        prop_assert_eq!(said.request_id.as_str(), "4ADF7A06-66BD-4FBF-A2ED-2364E41D8C06");
    }
}

/// Every canonical code an ECS reply can name comes back as itself (the table round-trips), except
/// the few that share an ECS code with another kind.
#[test]
fn most_codes_classify_back_to_themselves() {
    let maps = maps();
    let shared = [
        Code::InvalidParameterValue, // InvalidParameter
        Code::DuplicateValues,       // InvalidParameter
        Code::KeyAlreadyBound,       // InvalidParameter
        Code::KeyNotBound,           // InvalidParameter
        Code::MalformedInstanceId,   // InvalidInstanceIds.ValueNotSupported, read as instance_not_found
        Code::OperationInProgress,   // IncorrectInstanceStatus, read as invalid_instance_state
        Code::UpstreamTimeout,       // ServiceUnavailable, read as upstream_unavailable
        Code::UpstreamUnclassified,  // its upstream's own code
        Code::PublicKeyTaken,        // KeyPair.AlreadyExist, read as key_name_taken
    ];
    for code in Code::ALL.iter().filter(|c| !shared.contains(c)) {
        let back = read_back(&Fault::caller(*code, "m"), "r", &maps);
        assert_eq!(back.code(), *code, "{code}");
    }
}
