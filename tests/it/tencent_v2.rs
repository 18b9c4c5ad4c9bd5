//! The Tencent legacy endpoint `/v2/index.php`: golden seeds 000, 002 and 004, the SDK-made v1 vectors
//! for this path, round trips both ways (proptest), and hostile input for every decoder.

use std::sync::OnceLock;

use crossgate::dialect::{Dialect, Style, UpstreamCtx, tencent_v2};
use crossgate::mapping::Mappings;
use crossgate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, KeyPairInfo, Keys, Operation, OperationState, OsFamily,
    Outcome, Source,
};
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use http::HeaderMap;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{Received, golden, golden_file, header_map, op_json, v1_signed, vector_request, vectors};
use crate::support::{all_ok, arb_ids, ids, op};

const HOST: &str = "cvm.api.qcloud.com";
const PATH: &str = "/v2/index.php";
const CALLER_ID: &str = "AKIDcrossgateTESTCALLER000000000001";
/// A dummy secret for the test caller.
const CALLER_KEY: &str = "crossgate-test-caller-key";

fn maps() -> &'static Mappings {
    static MAPS: OnceLock<Mappings> = OnceLock::new();
    MAPS.get_or_init(crate::support::maps)
}

fn key() -> Secret {
    Secret::new(CALLER_KEY)
}

/// auth_material, verify, decode_request: what the gateway does with a caller's request.
fn decode(received: &Received, key: &Secret) -> Result<Operation, Fault> {
    let raw = received.raw();
    let material = tencent_v2::auth_material(&raw)?;
    sign::verify(&material, key).map_err(|m| Fault::caller(Code::SignatureMismatch, m.to_string()))?;
    tencent_v2::decode_request(&raw, &material, maps())
}

// === golden seeds ===

struct Seed {
    case: &'static str,
    method: &'static str,
    scheme: Scheme,
    /// The seed's parameters, then the common ones it leaves out.
    params: Vec<(&'static str, &'static str)>,
    expected: Operation,
    request_id: &'static str,
}

fn common(nonce: &'static str, scheme: Scheme) -> Vec<(&'static str, &'static str)> {
    vec![
        ("Region", "ap-guangzhou"),
        ("Timestamp", "1714550400"),
        ("Nonce", nonce),
        ("SecretId", CALLER_ID),
        ("SignatureMethod", scheme.name()),
    ]
}

fn run_seed(seed: Seed) {
    let Seed { case, method, scheme, params, expected, request_id } = seed;
    let made = v1_signed(method, HOST, PATH, &params, scheme, &key());
    golden(&format!("tencent_v2/{case}/request.http"), &made.to_http());

    let received = Received::parse_http(&golden_file(&format!("tencent_v2/{case}/request.http")));
    let decoded = decode(&received, &key()).unwrap_or_else(|f| panic!("{case}: {f}"));
    assert_eq!(decoded, expected, "{case}: operation");
    golden(&format!("tencent_v2/{case}/operation.json"), &pretty(&op_json(&decoded)));

    let reply = tencent_v2::reply(&received.raw(), maps(), request_id.to_owned());
    let outcome = Outcome { request_id: "upstream-request-id".into(), answer: all_ok(&decoded) };
    let resp = tencent_v2::encode_response(&reply, &Ok(outcome), maps());
    assert_eq!(resp.status, 200, "{case}");
    assert_eq!(resp.headers, [("content-type", "application/json".to_owned())], "{case}");
    let mut got: Value = serde_json::from_slice(&resp.body).unwrap();
    if reply.style == Style::Old {
        // Real API 2.0 replies add `codeDesc` (protocols.md 3.3); the seed's example leaves it out.
        let extra = got.as_object_mut().unwrap().remove("codeDesc");
        assert_eq!(extra, Some(json!("Success")), "{case}: codeDesc");
    }
    let document: Value = serde_json::from_str(&golden_file(&format!("tencent_v2/{case}/response.json"))).unwrap();
    assert_eq!(got, document, "{case}: response");
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap() + "\n"
}

#[test]
fn golden_000_associate_instances_key_pairs() {
    let mut params = vec![
        ("Action", "AssociateInstancesKeyPairs"),
        ("Version", "2017-03-12"),
        ("InstanceIds.1", "ins-1e4r6y8i"),
        ("InstanceIds.2", "ins-3e56fg78"),
        ("KeyIds.1", "skey-4e5ty7i8"),
    ];
    params.extend(common("11886", Scheme::TencentV1Sha256));
    run_seed(Seed {
        case: "000_associate",
        method: "GET",
        scheme: Scheme::TencentV1Sha256,
        params,
        expected: op(Action::AssociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), None),
        request_id: "6EF60BEC-0242-43AF-BB20-270359FB54A7",
    });
}

#[test]
fn golden_002_bind_instance_key() {
    // The seed's `ins-xxxxx` / `skey-xxxxx` are placeholders that fail the id format: seed 000's ids
    // stand in for them. Its output's trailing comma is fixed in response.json.
    let mut params = vec![
        ("Action", "BindInstanceKey"),
        ("instanceIds.0", "ins-1e4r6y8i"),
        ("instanceIds.1", "ins-3e56fg78"),
        ("keyId", "skey-4e5ty7i8"),
    ];
    params.extend(common("345122", Scheme::TencentV1Sha1));
    run_seed(Seed {
        case: "002_bind_instance_key",
        method: "GET",
        scheme: Scheme::TencentV1Sha1,
        params,
        expected: op(Action::AssociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), None),
        request_id: "ignored-by-old-style",
    });
}

#[test]
fn golden_004_disassociate_instances_key_pairs() {
    let mut params = vec![
        ("Action", "DisassociateInstancesKeyPairs"),
        ("Version", "2017-03-12"),
        ("InstanceIds.1", "ins-1e4r6y8i"),
        ("InstanceIds.2", "ins-3e56fg78"),
        ("KeyIds.1", "skey-4e5ty7i8"),
    ];
    params.extend(common("424242", Scheme::TencentV1Sha1));
    run_seed(Seed {
        case: "004_disassociate",
        method: "POST",
        scheme: Scheme::TencentV1Sha1,
        params,
        expected: op(Action::DisassociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), None),
        request_id: "6EF60BEC-0242-43AF-BB20-270359FB54A7",
    });
}

// === SDK-made vectors ===

macro_rules! vector_cases {
    ($($test:ident: $id:literal => $expected:expr,)+) => {
        $(
            #[test]
            fn $test() {
                run_vector($id, $expected);
            }
        )+

        /// Every vector id with a test above.
        const TESTED: &[&str] = &[$($id),+];
    };
}

vector_cases! {
    vector_legacy_cvm_associate_get_hmacsha256: "v1-legacy-cvm-associate-get-hmacsha256" =>
        op(Action::AssociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), None),
    vector_legacy_cvm_disassociate_post_hmacsha1: "v1-legacy-cvm-disassociate-post-hmacsha1" =>
        op(Action::DisassociateKeys, &["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"]), Some(true)),
    vector_legacysdk_associate_get_hmacsha1_1based: "v1-legacysdk-associate-get-hmacsha1-1based" =>
        op(Action::AssociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), Some(true)),
    vector_legacysdk_bindinstancekey_get_hmacsha1: "v1-legacysdk-bindinstancekey-get-hmacsha1" =>
        op(Action::AssociateKeys, &["ins-1e4r6y8i", "ins-3e56fg78"], ids(&["skey-4e5ty7i8"]), None),
    vector_legacysdk_unbindinstancekey_post_hmacsha256: "v1-legacysdk-unbindinstancekey-post-hmacsha256" =>
        op(Action::DisassociateKeys, &["ins-1e4r6y8i"], ids(&["skey-4e5ty7i8"]), None),
    vector_legacysdk_bindinstancekey_post_hmacsha1_many: "v1-legacysdk-bindinstancekey-post-hmacsha1-many" =>
        op(Action::AssociateKeys, &twelve("ins-"), ids(&["skey-4e5ty7i8"]), None),
    vector_legacysdk_describekeypairs_get_hmacsha256_awkward: "v1-legacysdk-describekeypairs-get-hmacsha256-awkward" =>
        op(Action::DescribeKeys, &[], Keys::Names(vec!["key name ~*+/ 中文 é&=%".into(), String::new()]), None),
}

fn twelve(prefix: &str) -> Vec<&'static str> {
    (1..=12).map(|i| &*Box::leak(format!("{prefix}{i:08}").into_boxed_str())).collect()
}

fn run_vector(id: &str, expected: Operation) {
    let v = vectors("tencent_v1_hmac.json").into_iter().find(|v| v["id"] == id).expect("vector id");
    let received = vector_request(&v);
    // The request the SDK put on the wire is the one recorded in `inputs`.
    let url = v["wire"]["url"].as_str().unwrap();
    assert!(url.ends_with(&format!("{PATH}{}{}", if received.query.is_empty() { "" } else { "?" }, received.query)));
    assert_eq!(v["wire"]["body"].as_str().unwrap().as_bytes(), received.body.as_slice());
    let key = Secret::new(v["inputs"]["secret_key"].as_str().unwrap());
    let decoded = decode(&received, &key).unwrap_or_else(|f| panic!("{id}: {f}"));
    assert_eq!(decoded, expected, "{id}");
}

#[test]
fn every_legacy_path_vector_has_a_test() {
    let in_file: Vec<String> = vectors("tencent_v1_hmac.json")
        .into_iter()
        .filter(|v| v["inputs"]["path"] == PATH)
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect();
    let mut tested: Vec<&str> = TESTED.to_vec();
    tested.sort_unstable();
    let mut in_file: Vec<&str> = in_file.iter().map(String::as_str).collect();
    in_file.sort_unstable();
    assert_eq!(tested, in_file);
}

#[test]
fn a_vector_with_a_flipped_parameter_does_not_verify() {
    let v = vectors("tencent_v1_hmac.json")
        .into_iter()
        .find(|v| v["id"] == "v1-legacysdk-bindinstancekey-get-hmacsha1")
        .unwrap();
    let mut received = vector_request(&v);
    received.query = received.query.replace("ins-3e56fg78", "ins-3e56fg79");
    let fault = decode(&received, &Secret::new(v["inputs"]["secret_key"].as_str().unwrap())).unwrap_err();
    assert_eq!(fault.code(), Code::SignatureMismatch);
}

// === round trips ===

fn arb_names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[a-zA-Z0-9 ~*+/&=%._中文é-]{0,20}", 1..5)
        .prop_filter("unique", |v| v.iter().enumerate().all(|(i, x)| !v[..i].contains(x)))
}

fn arb_region() -> impl Strategy<Value = Option<String>> {
    prop_oneof![Just(None), Just(Some("ap-guangzhou".to_owned())), Just(Some("gz".to_owned()))]
}

/// Any operation this dialect can express, with ids of its format.
fn arb_op() -> impl Strategy<Value = Operation> {
    let bind = (
        prop_oneof![Just(Action::AssociateKeys), Just(Action::DisassociateKeys)],
        arb_ids("ins-", 1..=12),
        arb_ids("skey-", 1..=4),
        prop::option::of(any::<bool>()),
        arb_region(),
    )
        .prop_map(|(action, instances, keys, force_stop, region)| Operation {
            action,
            region,
            instances,
            keys: Keys::Ids(keys),
            force_stop,
            public_key: None,
            page: None,
        });
    let describe_keys =
        (prop_oneof![arb_ids("skey-", 0..=6).prop_map(Keys::Ids), arb_names().prop_map(Keys::Names)], arb_region())
            .prop_map(|(keys, region)| Operation { keys, region, ..Operation::new(Action::DescribeKeys) });
    let describe_instances = (arb_ids("ins-", 0..=6), arb_region()).prop_map(|(instances, region)| Operation {
        instances,
        region,
        ..Operation::new(Action::DescribeInstances)
    });
    prop_oneof![bind, describe_keys, describe_instances]
}

fn ctx(op: &Operation, scheme: Scheme, nonce: String) -> UpstreamCtx {
    UpstreamCtx {
        host: HOST.into(),
        region: op.region.clone().unwrap_or_default(),
        credential_id: CALLER_ID.into(),
        scheme,
        timestamp: 1714550400,
        nonce,
    }
}

fn arb_instance_info() -> impl Strategy<Value = InstanceInfo> {
    (
        arb_ids("ins-", 1..=1),
        prop_oneof![
            Just("CentOS 7.9 64位"),
            Just("Ubuntu Server 22.04 LTS 64bit"),
            Just("Windows Server 2019 数据中心版")
        ],
        prop_oneof![Just("STOPPED"), Just("RUNNING"), Just("STOPPING")],
        arb_ids("skey-", 0..=2),
        prop::option::of(prop_oneof![Just("AssociateInstancesKeyPairs"), Just("StopInstances")]),
        prop::option::of(prop_oneof![
            Just(OperationState::Operating),
            Just(OperationState::Success),
            Just(OperationState::Failed)
        ]),
        prop::option::of("[0-9a-f]{8}-[0-9a-f]{4}"),
    )
        .prop_map(|(id, os_name, state, keys, latest, latest_state, latest_id)| InstanceInfo {
            id: id[0].clone(),
            // CVM has no OS enum: the family follows the name (protocols.md 4.6).
            os: if os_name.starts_with("Windows") { OsFamily::Windows } else { OsFamily::Linux },
            os_name: os_name.into(),
            state: state.into(),
            keys,
            latest_operation: latest.map(str::to_owned),
            latest_operation_state: latest_state,
            latest_operation_request_id: latest_id,
        })
}

fn arb_key_info() -> impl Strategy<Value = KeyPairInfo> {
    (arb_ids("skey-", 1..=1), "[a-zA-Z0-9_]{1,25}", arb_ids("ins-", 0..=3))
        .prop_map(|(id, name, instances)| KeyPairInfo { id: id[0].clone(), name, instances, ..KeyPairInfo::default() })
}

fn response_roundtrip(wire_action: &str, op: &Operation, outcome: &Outcome) -> Result<Outcome, Fault> {
    let headers = HeaderMap::new();
    let query = format!("Action={wire_action}");
    let raw = crossgate::dialect::RawRequest { method: "GET", path: PATH, query: &query, headers: &headers, body: b"" };
    let reply = tencent_v2::reply(&raw, maps(), outcome.request_id.clone());
    let resp = tencent_v2::encode_response(&reply, &Ok(outcome.clone()), maps());
    tencent_v2::decode_response(resp.status, &header_map(&resp), &resp.body, op, maps())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn operations_survive_encode_sign_verify_decode(
        op in arb_op(),
        sha256 in any::<bool>(),
        nonce in prop_oneof!["[1-9][0-9]{0,9}", "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}"],
    ) {
        let scheme = if sha256 { Scheme::TencentV1Sha256 } else { Scheme::TencentV1Sha1 };
        let wire = tencent_v2::encode_request(&op, &ctx(&op, scheme, nonce), &key(), maps()).unwrap();
        prop_assert_eq!(wire.path, PATH);
        prop_assert_eq!(wire.method, "POST");
        let received = Received::from_wire(&wire);
        let decoded = decode(&received, &key());
        prop_assert_eq!(decoded, Ok(op));
    }

    #[test]
    fn bind_outcomes_survive_encode_decode(op in arb_op(), request_id in "[0-9A-F]{8}-[0-9A-F]{4}") {
        prop_assume!(op.action.is_mutation());
        let outcome = Outcome { request_id, answer: all_ok(&op) };
        let wire = maps().wire_action(Dialect::TencentV2, op.action);
        prop_assert_eq!(response_roundtrip(wire, &op, &outcome), Ok(outcome.clone()));
        // Old style: no RequestId on the wire.
        let old = if op.action == Action::AssociateKeys { "BindInstanceKey" } else { "UnBindInstanceKey" };
        let expected = Outcome { request_id: String::new(), ..outcome };
        prop_assert_eq!(response_roundtrip(old, &op, &expected), Ok(expected.clone()));
    }

    #[test]
    fn lookup_outcomes_survive_encode_decode(
        keys in prop::collection::vec(arb_key_info(), 0..5),
        instances in prop::collection::vec(arb_instance_info(), 0..5),
        request_id in "[0-9a-f]{8}-[0-9a-f]{4}",
    ) {
        let op = Operation::new(Action::DescribeKeys);
        let outcome = Outcome { request_id: request_id.clone(), answer: Answer::KeyPairs(keys) };
        prop_assert_eq!(response_roundtrip("DescribeKeyPairs", &op, &outcome), Ok(outcome));
        let op = Operation::new(Action::DescribeInstances);
        let outcome = Outcome { request_id, answer: Answer::Instances(instances) };
        prop_assert_eq!(response_roundtrip("DescribeInstances", &op, &outcome), Ok(outcome));
    }
}

/// Every canonical error, rendered in both styles and read back: the wire code, message and RequestId
/// survive, and the code read back renders to the same wire code.
#[test]
fn errors_survive_encode_decode_in_both_styles() {
    let headers = HeaderMap::new();
    for code in Code::ALL.iter().copied().filter(|c| *c != Code::UpstreamUnclassified) {
        let fault = Fault::caller(code, "why it failed");
        let rendered = maps().render(Dialect::TencentV2, &fault);
        for (action, request_id) in [("AssociateInstancesKeyPairs", "REQ-1"), ("BindInstanceKey", "")] {
            let query = format!("Action={action}");
            let raw = crossgate::dialect::RawRequest {
                method: "GET",
                path: PATH,
                query: &query,
                headers: &headers,
                body: b"",
            };
            let reply = tencent_v2::reply(&raw, maps(), "REQ-1".into());
            let resp = tencent_v2::encode_response(&reply, &Err(fault.clone()), maps());
            assert_eq!(resp.status, 200);
            let op = Operation::new(Action::AssociateKeys);
            let back =
                tencent_v2::decode_response(resp.status, &header_map(&resp), &resp.body, &op, maps()).unwrap_err();
            let said = back.upstream_error().unwrap_or_else(|| panic!("{code} {action}: {back}"));
            assert_eq!(
                (said.code.as_str(), said.message.as_str()),
                (rendered.code.as_str(), rendered.message.as_str()),
                "{code} {action}"
            );
            assert_eq!(said.request_id, request_id, "{code} {action}");
            assert_eq!(back.source(), Source::Upstream);
            // The endpoint has two internal codes (`InternalError` common, `InternalServerError` per action);
            // both read back as `internal`, which renders as the latter.
            let again = maps().render(Dialect::TencentV2, &back).code;
            let expected =
                if rendered.code == "InternalError" { "InternalServerError" } else { rendered.code.as_str() };
            assert_eq!(again, expected, "{code} {action}: the code read back renders the same");
            if action == "BindInstanceKey" {
                let v: Value = serde_json::from_slice(&resp.body).unwrap();
                assert_eq!(v["code"], json!(rendered.number), "{code}: numeric code");
            }
        }
    }
}

#[test]
fn a_partial_failure_fails_the_whole_old_style_request() {
    let headers = HeaderMap::new();
    let raw = crossgate::dialect::RawRequest {
        method: "GET",
        path: PATH,
        query: "Action=BindInstanceKey",
        headers: &headers,
        body: b"",
    };
    let reply = tencent_v2::reply(&raw, maps(), "R".into());
    let outcome = Outcome {
        request_id: "R".into(),
        answer: Answer::Bind(vec![
            InstanceResult { instance: "ins-aaaaaaaa".into(), result: Ok(()) },
            InstanceResult {
                instance: "ins-bbbbbbbb".into(),
                result: Err(Fault::upstream(Code::InstanceNotSupported, "Windows", None)),
            },
        ]),
    };
    let v: Value = serde_json::from_slice(&tencent_v2::encode_response(&reply, &Ok(outcome), maps()).body).unwrap();
    assert_eq!(v["code"], 5100);
    assert_eq!(v["codeDesc"], "InvalidInstance.NotSupported");
    let message = v["message"].as_str().unwrap();
    assert!(message.contains("succeeded: ins-aaaaaaaa") && message.contains("failed: ins-bbbbbbbb"), "{message}");
}

#[test]
fn encode_request_refuses_what_the_endpoint_cannot_carry() {
    let mut op = Operation::new(Action::AssociateKeys);
    op.instances = vec!["ins-aaaaaaaa".into()];
    op.keys = Keys::Names(vec!["name".into()]);
    let fault =
        tencent_v2::encode_request(&op, &ctx(&op, Scheme::TencentV1Sha1, "1".into()), &key(), maps()).unwrap_err();
    assert_eq!(fault.source(), Source::Gateway);
    op.keys = ids(&["skey-aaaaaaaa"]);
    let fault = tencent_v2::encode_request(&op, &ctx(&op, Scheme::Tc3, "1".into()), &key(), maps()).unwrap_err();
    assert_eq!(fault.source(), Source::Gateway);
}

#[test]
fn the_largest_batch_passes_and_one_more_is_refused() {
    let mut op = Operation::new(Action::AssociateKeys);
    op.instances = (0..100).map(|i| format!("ins-{i:08}")).collect();
    op.keys = Keys::Ids((0..100).map(|i| format!("skey-{i:08}")).collect());
    let wire = tencent_v2::encode_request(&op, &ctx(&op, Scheme::TencentV1Sha1, "7".into()), &key(), maps()).unwrap();
    assert_eq!(decode(&Received::from_wire(&wire), &key()), Ok(op.clone()));
    op.instances.push("ins-99999999".into());
    let wire = tencent_v2::encode_request(&op, &ctx(&op, Scheme::TencentV1Sha1, "7".into()), &key(), maps()).unwrap();
    assert_eq!(decode(&Received::from_wire(&wire), &key()).unwrap_err().code(), Code::LimitExceeded);
}

// === hostile input ===

/// The wire code and legacy number of a canonical code on this endpoint (protocols.md 3.2, 3.4, 6).
fn expected_wire(code: Code) -> (&'static str, i64) {
    match code {
        Code::MissingParameter => ("MissingParameter", 4000),
        Code::InvalidParameter => ("InvalidParameter", 4000),
        Code::InvalidParameterValue | Code::DuplicateValues => ("InvalidParameterValue", 4000),
        Code::MalformedInstanceId => ("InvalidInstanceId.Malformed", 4000),
        Code::MalformedKeyId => ("InvalidKeyPairId.Malformed", 4000),
        Code::LimitExceeded => ("InvalidParameterValue.LimitExceeded", 4000),
        Code::UnknownAction => ("InvalidAction.NotFound", 6100),
        Code::MalformedSignature | Code::SignatureMismatch => ("InvalidParameter.SignatureFailure", 4100),
        Code::TimestampExpired | Code::NonceReused => ("InvalidRequest.ReplayAttack", 4500),
        Code::InstanceNotFound => ("InvalidInstanceId.NotFound", 5000),
        Code::UpstreamUnavailable => ("InternalError", 6000),
        Code::Internal => ("InternalServerError", 6000),
        other => panic!("no expectation for {other}"),
    }
}

/// The fault renders in this dialect with HTTP 200, the expected code, and (old style) the number.
fn assert_rendered(received: &Received, fault: &Fault, case: &str) {
    let reply = tencent_v2::reply(&received.raw(), maps(), "REQ".into());
    let resp = tencent_v2::encode_response(&reply, &Err(fault.clone()), maps());
    assert_eq!(resp.status, 200, "{case}");
    assert_eq!(resp.headers, [("content-type", "application/json".to_owned())], "{case}");
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or_else(|e| panic!("{case}: {e}"));
    let (code, number) = expected_wire(fault.code());
    match reply.style {
        Style::New => {
            assert_eq!(v["Response"]["Error"]["Code"], code, "{case}");
            assert_eq!(v["Response"]["RequestId"], "REQ", "{case}");
            assert!(v["Response"]["Error"]["Message"].as_str().unwrap().len() < 400, "{case}: message stays short");
        }
        Style::Old => {
            assert_eq!((v["code"].as_i64(), v["codeDesc"].as_str()), (Some(number), Some(code)), "{case}");
        }
    }
}

fn raw_get(query: &str) -> Received {
    Received::new("GET", PATH, query, &[("host", HOST)], b"")
}

fn raw_post(content_type: &str, body: &[u8]) -> Received {
    Received::new("POST", PATH, "", &[("host", HOST), ("content-type", content_type)], body)
}

#[test]
fn hostile_auth_material() {
    let auth = "SecretId=AKID&Nonce=1&Timestamp=1714550400&Signature=c2ln";
    let huge = "9".repeat(1 << 20);
    let many: String = (0..5000).map(|i| format!("p{i}=x&")).collect();
    let cases: Vec<(&str, Received, Code)> = vec![
        ("empty request", raw_get(""), Code::MissingParameter),
        ("no SecretId", raw_get("Action=BindInstanceKey&Nonce=1&Timestamp=1&Signature=x"), Code::MissingParameter),
        ("empty SecretId", raw_get("SecretId=&Nonce=1&Timestamp=1&Signature=x"), Code::MissingParameter),
        ("no Signature", raw_get("SecretId=A&Nonce=1&Timestamp=1"), Code::MissingParameter),
        ("empty Signature", raw_get("SecretId=A&Nonce=1&Timestamp=1&Signature="), Code::MissingParameter),
        ("no Nonce", raw_get("SecretId=A&Timestamp=1&Signature=x"), Code::MissingParameter),
        ("no Timestamp", raw_get("SecretId=A&Nonce=1&Signature=x"), Code::MissingParameter),
        ("word Timestamp", raw_get("SecretId=A&Nonce=1&Timestamp=now&Signature=x"), Code::TimestampExpired),
        ("negative Timestamp", raw_get("SecretId=A&Nonce=1&Timestamp=-5&Signature=x"), Code::TimestampExpired),
        (
            "1 MB Timestamp",
            raw_get(&format!("SecretId=A&Nonce=1&Timestamp={huge}&Signature=x")),
            Code::TimestampExpired,
        ),
        ("word Nonce", raw_get("SecretId=A&Nonce=abc&Timestamp=1&Signature=x"), Code::InvalidParameter),
        ("1 MB Nonce", raw_get(&format!("SecretId=A&Nonce={huge}&Timestamp=1&Signature=x")), Code::InvalidParameter),
        ("MD5 method", raw_get(&format!("{auth}&SignatureMethod=HmacMD5")), Code::MalformedSignature),
        ("lower-case method", raw_get(&format!("{auth}&SignatureMethod=hmacsha1")), Code::MalformedSignature),
        ("two SecretIds", raw_get(&format!("{auth}&SecretId=B")), Code::InvalidParameter),
        ("two Actions", raw_get(&format!("{auth}&Action=A&Action=B")), Code::InvalidParameter),
        (
            "Signature in query and body",
            Received::new("POST", PATH, "Signature=a", &[("host", HOST)], auth.as_bytes()),
            Code::InvalidParameter,
        ),
        ("%FF in a value", raw_get(&format!("{auth}&keyId=%FF")), Code::InvalidParameter),
        ("%FF in a name", raw_get(&format!("{auth}&key%FF=1")), Code::InvalidParameter),
        ("bad escape", raw_get(&format!("{auth}&keyId=%ZZ")), Code::InvalidParameter),
        ("truncated escape", raw_get(&format!("{auth}&keyId=%4")), Code::InvalidParameter),
        (
            "raw invalid UTF-8 body",
            raw_post("application/x-www-form-urlencoded", b"SecretId=\xff\xfe&Nonce=1"),
            Code::InvalidParameter,
        ),
        ("JSON body", raw_post("application/json", br#"{"SecretId": "A"}"#), Code::InvalidParameter),
        ("empty POST", raw_post("application/x-www-form-urlencoded", b""), Code::MissingParameter),
        ("5000 parameters", raw_get(&format!("{many}{auth}")), Code::LimitExceeded),
        ("1 MB parameter name", raw_get(&format!("{auth}&InstanceIds.{huge}=ins-1e4r6y8i")), Code::InvalidParameter),
    ];
    assert!(cases.len() >= 20);
    for (case, received, code) in cases {
        let fault = tencent_v2::auth_material(&received.raw()).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.code(), code, "{case}: {fault}");
        assert!(fault.message().len() < 300, "{case}: message too long");
        assert_eq!(fault.source(), Source::Caller, "{case}");
        assert_rendered(&received, &fault, case);
    }
}

/// A signed request with `params` and the common parameters it does not set itself.
fn signed(method: &str, params: &[(&str, &str)]) -> Received {
    let mut all: Vec<(&str, &str)> = params.to_vec();
    all.extend(common("1", Scheme::TencentV1Sha1).into_iter().filter(|(n, _)| !params.iter().any(|(p, _)| p == n)));
    v1_signed(method, HOST, PATH, &all, Scheme::TencentV1Sha1, &key())
}

const NEW: [(&str, &str); 2] = [("Action", "AssociateInstancesKeyPairs"), ("Version", "2017-03-12")];
const ONE: [(&str, &str); 2] = [("InstanceIds.0", "ins-1e4r6y8i"), ("KeyIds.0", "skey-4e5ty7i8")];

fn new_style(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    NEW.iter().chain(extra).map(|(n, v)| (n.to_string(), v.to_string())).collect()
}

fn many(name: &str, prefix: &str, n: usize) -> Vec<(String, String)> {
    (0..n).map(|i| (format!("{name}.{i}"), format!("{prefix}{i:08}"))).collect()
}

#[test]
fn hostile_decode_request() {
    let huge = format!("ins-{}", "a".repeat(1 << 20));
    let long_key = "k".repeat(200);
    let lists = |extra: Vec<(String, String)>| -> Vec<(String, String)> {
        let mut v = new_style(&[]);
        v.extend(extra);
        v
    };
    let owned = |p: &[(&str, &str)]| p.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect::<Vec<_>>();
    let with_one = |extra: &[(&str, &str)]| {
        let mut v = new_style(&ONE);
        v.extend(owned(extra));
        v
    };
    type Case = (&'static str, &'static str, Vec<(String, String)>, Code);
    let cases: Vec<Case> = vec![
        (
            "unknown action",
            "GET",
            owned(&[("Action", "RebootInstances"), ("Version", "2017-03-12")]),
            Code::UnknownAction,
        ),
        ("no action", "GET", owned(&ONE), Code::MissingParameter),
        (
            "no version",
            "GET",
            owned(&[("Action", "AssociateInstancesKeyPairs"), ONE[0], ONE[1]]),
            Code::MissingParameter,
        ),
        (
            "wrong version",
            "GET",
            owned(&[("Action", "AssociateInstancesKeyPairs"), ("Version", "2020-03-24"), ONE[0], ONE[1]]),
            Code::InvalidParameterValue,
        ),
        ("no instances", "GET", new_style(&[ONE[1]]), Code::MissingParameter),
        ("no keys", "GET", new_style(&[ONE[0]]), Code::MissingParameter),
        (
            "gap in InstanceIds",
            "GET",
            new_style(&[("InstanceIds.0", "ins-1e4r6y8i"), ("InstanceIds.2", "ins-3e56fg78"), ONE[1]]),
            Code::InvalidParameter,
        ),
        ("list from 2", "GET", new_style(&[("InstanceIds.2", "ins-1e4r6y8i"), ONE[1]]), Code::InvalidParameter),
        ("bad index", "GET", new_style(&[("InstanceIds.x", "ins-1e4r6y8i"), ONE[1]]), Code::InvalidParameter),
        (
            "JSON array value",
            "GET",
            new_style(&[("InstanceIds", r#"["ins-1e4r6y8i"]"#), ONE[1]]),
            Code::InvalidParameter,
        ),
        (
            "101 instances",
            "POST",
            lists([many("InstanceIds", "ins-", 101), owned(&[ONE[1]])].concat()),
            Code::LimitExceeded,
        ),
        ("101 keys", "POST", lists([owned(&[ONE[0]]), many("KeyIds", "skey-", 101)].concat()), Code::LimitExceeded),
        // A short or upper-case id decodes: it is checked against the provider it is routed to.
        ("empty instance id", "GET", new_style(&[("InstanceIds.0", ""), ONE[1]]), Code::MalformedInstanceId),
        (
            "instance id with a tab",
            "GET",
            new_style(&[("InstanceIds.0", "ins-1e4r\t6y8i"), ONE[1]]),
            Code::MalformedInstanceId,
        ),
        (
            "1 MB instance id",
            "POST",
            lists(vec![("InstanceIds.0".into(), huge.clone()), ("KeyIds.0".into(), "skey-4e5ty7i8".into())]),
            Code::MalformedInstanceId,
        ),
        ("key id with a NUL", "GET", new_style(&[ONE[0], ("KeyIds.0", "skey-4e5t\u{0}y7i8")]), Code::MalformedKeyId),
        (
            "repeated instance",
            "GET",
            new_style(&[("InstanceIds.0", "ins-1e4r6y8i"), ("InstanceIds.1", "ins-1e4r6y8i"), ONE[1]]),
            Code::DuplicateValues,
        ),
        ("ForceStop=yes", "GET", with_one(&[("ForceStop", "yes")]), Code::InvalidParameterValue),
        ("unknown parameter", "GET", with_one(&[("DryRun", "true")]), Code::InvalidParameter),
        ("Limit on a bind", "GET", with_one(&[("Limit", "5")]), Code::InvalidParameter),
        ("bad region", "GET", with_one(&[("Region", "AP GUANGZHOU")]), Code::InvalidParameterValue),
        (
            "ids and filters",
            "GET",
            owned(&[
                ("Action", "DescribeKeyPairs"),
                ("Version", "2017-03-12"),
                ("KeyIds.0", "skey-4e5ty7i8"),
                ("Filters.0.Name", "key-name"),
                ("Filters.0.Values.0", "a"),
            ]),
            Code::InvalidParameter,
        ),
        (
            "other filter",
            "GET",
            owned(&[
                ("Action", "DescribeKeyPairs"),
                ("Version", "2017-03-12"),
                ("Filters.0.Name", "project-id"),
                ("Filters.0.Values.0", "0"),
            ]),
            Code::InvalidParameterValue,
        ),
        (
            "orphan filter values",
            "GET",
            owned(&[("Action", "DescribeKeyPairs"), ("Version", "2017-03-12"), ("Filters.0.Values.0", "a")]),
            Code::MissingParameter,
        ),
        (
            "instance filter",
            "GET",
            owned(&[
                ("Action", "DescribeInstances"),
                ("Version", "2017-03-12"),
                ("Filters.0.Name", "zone"),
                ("Filters.0.Values.0", "a"),
            ]),
            Code::InvalidParameter,
        ),
        (
            "Limit=abc",
            "GET",
            owned(&[("Action", "DescribeInstances"), ("Version", "2017-03-12"), ("Limit", "abc")]),
            Code::InvalidParameterValue,
        ),
        (
            "Limit=1000",
            "GET",
            owned(&[("Action", "DescribeKeyPairs"), ("Version", "2017-03-12"), ("Limit", "1000")]),
            Code::InvalidParameterValue,
        ),
        (
            "old style: no keyId",
            "GET",
            owned(&[("Action", "BindInstanceKey"), ("instanceIds.0", "ins-1e4r6y8i")]),
            Code::MissingParameter,
        ),
        (
            "old style: no instances",
            "GET",
            owned(&[("Action", "BindInstanceKey"), ("keyId", "skey-4e5ty7i8")]),
            Code::MissingParameter,
        ),
        (
            "old style: 1-based",
            "GET",
            owned(&[("Action", "BindInstanceKey"), ("instanceIds.1", "ins-1e4r6y8i"), ("keyId", "skey-4e5ty7i8")]),
            Code::InvalidParameter,
        ),
        (
            "old style: new-style list",
            "GET",
            owned(&[("Action", "unBindInstanceKey"), ("InstanceIds.0", "ins-1e4r6y8i"), ("keyId", "skey-4e5ty7i8")]),
            Code::InvalidParameter,
        ),
        (
            "old style: ForceStop",
            "GET",
            owned(&[
                ("Action", "BindInstanceKey"),
                ("instanceIds.0", "ins-1e4r6y8i"),
                ("keyId", "skey-4e5ty7i8"),
                ("ForceStop", "TRUE"),
            ]),
            Code::InvalidParameter,
        ),
        (
            "old style: a key too long to be one anywhere",
            "GET",
            owned(&[("Action", "BindInstanceKey"), ("instanceIds.0", "ins-1e4r6y8i"), ("keyId", long_key.as_str())]),
            Code::MalformedKeyId,
        ),
    ];
    assert!(cases.len() >= 20);
    for (case, method, params, code) in cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let received = signed(method, &params);
        let fault = decode(&received, &key()).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.code(), code, "{case}: {fault}");
        assert!(fault.message().len() < 300, "{case}: message too long");
        assert_rendered(&received, &fault, case);
    }
}

#[test]
fn a_put_is_refused() {
    let mut received =
        signed("GET", &new_style(&ONE).iter().map(|(n, v)| (n.as_str(), v.as_str())).collect::<Vec<_>>());
    received.method = "PUT".into();
    let raw = received.raw();
    let material = tencent_v2::auth_material(&raw).unwrap();
    assert_eq!(tencent_v2::decode_request(&raw, &material, maps()).unwrap_err().code(), Code::InvalidParameter);
}

#[test]
fn hostile_decode_response() {
    let bind = {
        let mut op = Operation::new(Action::AssociateKeys);
        op.instances = vec!["ins-1e4r6y8i".into()];
        op
    };
    let keys = Operation::new(Action::DescribeKeys);
    let instances = Operation::new(Action::DescribeInstances);
    let deep = "[".repeat(200) + &"]".repeat(200);
    let huge = "x".repeat(1 << 20);
    let cases: Vec<(&str, u16, Vec<u8>, &Operation)> = vec![
        ("empty body", 200, vec![], &bind),
        ("not JSON", 200, b"<html>502 Bad Gateway</html>".to_vec(), &bind),
        ("truncated", 200, br#"{"Response": {"RequestId": "r""#.to_vec(), &bind),
        ("HTTP 500", 500, br#"{"Response": {"RequestId": "r"}}"#.to_vec(), &bind),
        ("HTTP 404", 404, vec![], &bind),
        ("array", 200, b"[]".to_vec(), &bind),
        ("string", 200, br#""ok""#.to_vec(), &bind),
        ("Response not an object", 200, br#"{"Response": []}"#.to_vec(), &bind),
        ("no RequestId", 200, br#"{"Response": {}}"#.to_vec(), &bind),
        ("numeric RequestId", 200, br#"{"Response": {"RequestId": 5}}"#.to_vec(), &bind),
        ("Error a string", 200, br#"{"Response": {"Error": "bad", "RequestId": "r"}}"#.to_vec(), &bind),
        ("Error without Code", 200, br#"{"Response": {"Error": {"Message": "m"}, "RequestId": "r"}}"#.to_vec(), &bind),
        ("KeyPairSet missing", 200, br#"{"Response": {"TotalCount": 0, "RequestId": "r"}}"#.to_vec(), &keys),
        ("KeyPairSet an object", 200, br#"{"Response": {"TotalCount": 0, "KeyPairSet": {}, "RequestId": "r"}}"#.to_vec(), &keys),
        ("key without KeyId", 200, br#"{"Response": {"TotalCount": 1, "KeyPairSet": [{"KeyName": "a"}], "RequestId": "r"}}"#.to_vec(), &keys),
        ("InstanceSet of numbers", 200, br#"{"Response": {"TotalCount": 1, "InstanceSet": [1], "RequestId": "r"}}"#.to_vec(), &instances),
        ("KeyIds a string", 200, br#"{"Response": {"TotalCount": 1, "InstanceSet": [{"InstanceId": "ins-1", "LoginSettings": {"KeyIds": "skey-1"}}], "RequestId": "r"}}"#.to_vec(), &instances),
        ("deep nesting", 200, deep.into_bytes(), &bind),
        ("1 MB garbage", 200, huge.into_bytes(), &bind),
        ("invalid UTF-8", 200, b"{\"Response\": {\"RequestId\": \"\xff\"}}".to_vec(), &bind),
        ("old style: code a string", 200, br#"{"code": "5100", "message": "x"}"#.to_vec(), &bind),
        ("old style: no code", 200, br#"{"message": "x"}"#.to_vec(), &bind),
        ("old style success to a look-up", 200, br#"{"code": 0, "message": ""}"#.to_vec(), &keys),
    ];
    assert!(cases.len() >= 20);
    let received = raw_get("Action=AssociateInstancesKeyPairs");
    for (case, status, body, op) in cases {
        let fault = tencent_v2::decode_response(status, &HeaderMap::new(), &body, op, maps())
            .err()
            .unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.code(), Code::UpstreamUnavailable, "{case}: {fault}");
        assert!(fault.message().len() < 300, "{case}: message too long");
        assert_eq!(fault.source(), Source::Upstream, "{case}");
        assert_rendered(&received, &fault, case);
    }
}

#[test]
fn upstream_errors_keep_their_code_message_and_request_id() {
    let op = Operation::new(Action::AssociateKeys);
    let cases: [(&[u8], Code, &str, &str); 4] = [
        (br#"{"Response": {"Error": {"Code": "InvalidInstanceId.NotFound", "Message": "no such instance"}, "RequestId": "R1"}}"#, Code::InstanceNotFound, "InvalidInstanceId.NotFound", "R1"),
        (br#"{"Response": {"Error": {"Code": "InvalidRequest.ReplayAttack", "Message": "seen"}, "RequestId": "R2"}}"#, Code::NonceReused, "InvalidRequest.ReplayAttack", "R2"),
        (br#"{"code": 4100, "message": "auth failed", "codeDesc": "InvalidParameter.SignatureFailure"}"#, Code::SignatureMismatch, "InvalidParameter.SignatureFailure", ""),
        (br#"{"code": 5000, "message": "(100004)not found"}"#, Code::InstanceNotFound, "5000", ""),
    ];
    for (body, code, wire, request_id) in cases {
        let fault = tencent_v2::decode_response(200, &HeaderMap::new(), body, &op, maps()).unwrap_err();
        assert_eq!(fault.code(), code, "{wire}");
        let said = fault.upstream_error().unwrap();
        assert_eq!((said.code.as_str(), said.request_id.as_str()), (wire, request_id));
    }
    let unknown = br#"{"Response": {"Error": {"Code": "ResourceInsufficient.Foo", "Message": "no capacity"}, "RequestId": "R3"}}"#;
    let fault = tencent_v2::decode_response(200, &HeaderMap::new(), unknown, &op, maps()).unwrap_err();
    assert_eq!(fault.code(), Code::UpstreamUnclassified);
    assert_eq!(maps().render(Dialect::TencentV2, &fault).code, "ResourceInsufficient.Foo");
}
