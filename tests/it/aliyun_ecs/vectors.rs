//! Every Alibaba vector (`tests/vectors/aliyun_*.json`, made by the SDKs) as a request to the codec:
//! its auth material must verify with the vector's secret, and it must decode to the expected operation.
//!
//! Five key-pair vectors use key names such as `key name ~*+/ 中文 é&=%` or `key pair+1`, chosen to test
//! signature encoding. The codec passes them on (they could be a key name on some provider); ECS's own
//! name rule (2-128 characters; letters, digits, `:` `_` `.` `-`) refuses them once the request is routed
//! to ECS, which the end-to-end tests check.

use std::sync::OnceLock;

use crossgate::dialect::aliyun_ecs;
use crossgate::model::{Action, Code, Operation};
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use serde_json::Value;

use super::{assert_ecs_fault, op};
use crate::support::{Received, maps};

const FILES: [&str; 2] = ["aliyun_rpc_hmac_sha1.json", "aliyun_acs3_hmac_sha256.json"];

fn vectors() -> &'static Vec<Value> {
    static ALL: OnceLock<Vec<Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
        FILES
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(dir.join(f)).expect("vector file");
                let file: Value = serde_json::from_str(&text).expect("vector JSON");
                file["vectors"].as_array().expect("vectors").clone()
            })
            .collect()
    })
}

fn vector(id: &str) -> &'static Value {
    vectors().iter().find(|v| v["id"] == id).unwrap_or_else(|| panic!("no vector {id}"))
}

fn received(v: &Value) -> Received {
    let i = &v["inputs"];
    let headers: Vec<(&str, &str)> = i["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str().expect("header value")))
        .collect();
    Received::new(
        i["method"].as_str().unwrap(),
        i["path"].as_str().unwrap(),
        i["query"].as_str().unwrap(),
        &headers,
        i["body"].as_str().unwrap().as_bytes(),
    )
}

const IDS: [&str; 8] = ["i-m5eg7be9ndloji64jknv", "i-m5e25x2mwr0hk33dwv0h", "", "", "", "", "", ""];
const NAME: &str = "FinanceJoshuaV25";
/// The awkward names of the signature-encoding vectors.
const AWKWARD: &str = "key name ~*+/ 中文 é&=%";
const PLUS: &str = "key pair+1";

/// The 50 ids `i-bp1000...01` to `...50` of the 50-instance vectors.
fn fifty() -> Vec<String> {
    (1..=50).map(|i| format!("i-bp1000000000000000{i:02}")).collect()
}

/// What each vector decodes to.
fn expected(id: &str) -> Result<Operation, Code> {
    let both = &IDS[..2];
    let first = &IDS[..1];
    Ok(match id {
        "rpc-doc-example-describeregions" => return Err(Code::UnknownAction),
        "rpc-attachkeypair-post-query-json" | "acs3-attachkeypair-post" => {
            op(Action::AssociateKeys, "cn-hangzhou", both, &[NAME])
        }
        "rpc-detachkeypair-get-xml" => op(Action::DisassociateKeys, "cn-hangzhou", first, &[NAME]),
        "rpc-attachkeypair-get-50-awkward-name" => {
            let mut o = op(Action::AssociateKeys, "cn-hangzhou", &[], &[AWKWARD]);
            o.instances = fifty();
            o
        }
        "rpc-detachkeypair-post-form-body" => {
            op(Action::DisassociateKeys, "cn-hangzhou", &["i-bp1gtjxuuvwj17zr0001", "i-bp17b7zrsbjwvmfy0002"], &[PLUS])
        }
        "rpc-tea-v2-attachkeypair-post" => op(Action::AssociateKeys, "cn-hangzhou", first, &[AWKWARD]),
        "acs3-detachkeypair-post-awkward" => op(Action::DisassociateKeys, "cn-hangzhou", first, &[AWKWARD]),
        "acs3-detachkeypair-post-form-body" => {
            op(Action::DisassociateKeys, "cn-hangzhou", &["i-bp1gtjxuuvwj17zr0001"], &[PLUS])
        }
        "rpc-describekeypairs-get-empty-value" | "acs3-describekeypairs" => {
            op(Action::DescribeKeys, "cn-hangzhou", &[], &[NAME])
        }
        "rpc-describeinstances-get" => op(Action::DescribeInstances, "cn-hangzhou", both, &[]),
        "acs3-describeinstances-50" => {
            let mut o = op(Action::DescribeInstances, "cn-hangzhou", &[], &[]);
            o.instances = fifty();
            o
        }
        other => panic!("no expectation for vector {other}"),
    })
}

fn check(id: &str) {
    let maps = maps();
    let v = vector(id);
    let i = &v["inputs"];
    let r = received(v);
    let raw = r.raw();
    let material = aliyun_ecs::auth_material(&raw).unwrap_or_else(|f| panic!("{id}: auth_material: {f}"));
    let scheme = if id.starts_with("acs3") { Scheme::Acs3 } else { Scheme::AliyunRpc };
    assert_eq!(material.scheme, scheme, "{id}");
    assert_eq!(material.credential_id, i["access_key_id"].as_str().unwrap(), "{id}");
    assert_eq!(material.signature, v["expected"]["signature"].as_str().unwrap(), "{id}");
    let nonce = i["signature_nonce"].as_str().or(i["x_acs_signature_nonce"].as_str()).unwrap();
    assert_eq!(material.nonce.as_deref(), Some(nonce), "{id}");
    let date = i["timestamp"].as_str().or(i["x_acs_date"].as_str()).unwrap();
    let expected_time = time::PrimitiveDateTime::parse(date, &time::format_description::well_known::Iso8601::DEFAULT)
        .map(|t| t.assume_utc().unix_timestamp())
        .unwrap();
    assert_eq!(material.timestamp, expected_time, "{id}");
    assert!(!material.input.params.iter().any(|(n, _)| n == "Signature"), "{id}: Signature left in the params");

    let secret = Secret::new(i["access_key_secret"].as_str().unwrap());
    sign::verify(&material, &secret).unwrap_or_else(|m| panic!("{id}: does not verify: {m:?}"));
    let wrong = Secret::new("not-the-secret");
    let mismatch = sign::verify(&material, &wrong).expect_err("a wrong secret must not verify");
    if scheme == Scheme::AliyunRpc {
        assert_eq!(mismatch.string_to_sign, v["intermediate"]["string_to_sign"].as_str().unwrap(), "{id}");
    }

    match (aliyun_ecs::decode_request(&raw, &material, &maps), expected(id)) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{id}"),
        (Err(fault), Err(code)) => assert_ecs_fault(&r, &fault, code, &maps, id),
        (got, want) => panic!("{id}: got {got:?}, want {want:?}"),
    }
}

macro_rules! vector_tests {
    ($($name:ident => $id:literal,)*) => {
        $(#[test] fn $name() { check($id); })*
        const TESTED: &[&str] = &[$($id),*];
    };
}

vector_tests! {
    rpc_doc_example_describeregions => "rpc-doc-example-describeregions",
    rpc_attachkeypair_post_query_json => "rpc-attachkeypair-post-query-json",
    rpc_detachkeypair_get_xml => "rpc-detachkeypair-get-xml",
    rpc_attachkeypair_get_50_awkward_name => "rpc-attachkeypair-get-50-awkward-name",
    rpc_detachkeypair_post_form_body => "rpc-detachkeypair-post-form-body",
    rpc_describekeypairs_get_empty_value => "rpc-describekeypairs-get-empty-value",
    rpc_describeinstances_get => "rpc-describeinstances-get",
    rpc_tea_v2_attachkeypair_post => "rpc-tea-v2-attachkeypair-post",
    acs3_attachkeypair_post => "acs3-attachkeypair-post",
    acs3_detachkeypair_post_awkward => "acs3-detachkeypair-post-awkward",
    acs3_describeinstances_50 => "acs3-describeinstances-50",
    acs3_describekeypairs => "acs3-describekeypairs",
    acs3_detachkeypair_post_form_body => "acs3-detachkeypair-post-form-body",
}

#[test]
fn every_vector_is_tested() {
    let mut ids: Vec<&str> = vectors().iter().map(|v| v["id"].as_str().unwrap()).collect();
    let mut tested = TESTED.to_vec();
    ids.sort_unstable();
    tested.sort_unstable();
    assert_eq!(ids, tested);
}

/// An awkward name is decoded exactly as signed, and an ordinary one in its place decodes the same way
/// (checked on the decoded parameters of one RPC vector).
#[test]
fn awkward_names_decode_like_ordinary_ones() {
    let maps = maps();
    let v = vector("rpc-attachkeypair-get-50-awkward-name");
    let r = received(v);
    let raw = r.raw();
    let mut material = aliyun_ecs::auth_material(&raw).unwrap();
    for (name, value) in &mut material.input.params {
        if name == "KeyPairName" {
            *value = "FinanceJoshuaV25".into();
        }
    }
    let got = aliyun_ecs::decode_request(&raw, &material, &maps).unwrap();
    assert_eq!(got.instances, fifty());
    assert_eq!(got.keys, crossgate::model::Keys::Names(vec![NAME.to_owned()]));
}

/// A wrong secret renders as `SignatureDoesNotMatch` with the string to sign after the only colon, as
/// aliyun-python-sdk-core reads it back (`message.split(':')[1]`).
#[test]
fn signature_mismatch_echoes_the_string_to_sign() {
    let maps = maps();
    for id in ["rpc-attachkeypair-post-query-json", "rpc-detachkeypair-get-xml", "acs3-attachkeypair-post"] {
        let v = vector(id);
        let r = received(v);
        let material = aliyun_ecs::auth_material(&r.raw()).unwrap();
        let mismatch = sign::verify(&material, &Secret::new("wrong")).unwrap_err();
        let fault =
            crossgate::model::Fault::caller(Code::SignatureMismatch, "signature").with_detail(&mismatch.string_to_sign);
        let mut reply = aliyun_ecs::reply(&r.raw(), &maps, "REQ".into());
        reply.format = crossgate::dialect::Format::Json;
        let resp = aliyun_ecs::encode_response(&reply, &Err(fault), &maps);
        assert_eq!(resp.status, 400, "{id}");
        let body = super::json_body(&resp);
        assert_eq!(body["Code"], "SignatureDoesNotMatch", "{id}");
        let message = body["Message"].as_str().unwrap();
        let pieces: Vec<&str> = message.split(':').collect();
        assert_eq!(pieces.len(), 2, "{id}: exactly one colon in {message:?}");
        assert_eq!(pieces[1], mismatch.string_to_sign, "{id}");
        assert!(
            message.starts_with("Specified signature is not matched with our calculation. server string to sign is:")
        );
        if id.starts_with("rpc") {
            assert_eq!(pieces[1], v["intermediate"]["string_to_sign"].as_str().unwrap(), "{id}");
        }
    }
}
