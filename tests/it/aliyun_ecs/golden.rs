//! Golden cases from seed 003 (the ECS `AttachKeyPair` document), one folder per case under
//! `tests/golden/aliyun_ecs/`:
//!
//! - `request.http`: the documented request (`Action`, `InstanceIds`, `KeyPairName`, `RegionId`) with the
//!   common parameters the document leaves out, signed by the test caller. The document's `InstanceIds`
//!   is a placeholder (`["i-xxxxxxxxx", "i-yyyyyyyyy", … "i-zzzzzzzzz"]`); the two ids of its response
//!   example stand in for it.
//! - `operation.json`: what the request decodes to.
//! - `response.json` / `response.xml`: the exact bytes the codec answers with.
//! - `document.json` / `document.xml`: the document's response example (the XML with its typos fixed,
//!   as the comment in the file lists), which must decode to the same outcome and show the same content.
//!
//! `BLESS=1 cargo test` rewrites `request.http` and `response.*`; review the diff.

use std::path::{Path, PathBuf};

use crossgate::dialect::aliyun_ecs;
use crossgate::model::{Action, Answer, InstanceResult, Keys, Operation, Outcome};
use crossgate::secret::Secret;
use crossgate::sign::encoding::pct_encode;
use crossgate::sign::{self, Param, Scheme, SignInput};
use http::HeaderMap;
use serde_json::Value;

use super::{CALLER_ID, CALLER_SECRET};
use crate::support::{Received, maps};

const REQUEST_ID: &str = "4ADF7A06-66BD-4FBF-A2ED-2364E41D8C06";
const INSTANCES: [&str; 2] = ["i-m5eg7be9ndloji64jknv", "i-m5e25x2mwr0hk33dwv0h"];

fn dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/aliyun_ecs").join(case)
}

fn read(case: &str, file: &str) -> String {
    std::fs::read_to_string(dir(case).join(file)).unwrap_or_else(|e| panic!("{case}/{file}: {e}"))
}

/// Compares `got` with a golden file, or rewrites the file under `BLESS=1`.
fn golden(case: &str, file: &str, got: &str) {
    let path = dir(case).join(file);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = read(case, file);
    assert!(
        want == got,
        "{case}/{file} differs (BLESS=1 to rewrite)\n--- expected ---\n{want}\n--- got ---\n{got}\n----------------"
    );
}

/// The seed's request with the common parameters added, signed as the test caller, as HTTP/1.1 text.
fn seed_request(format: &str) -> String {
    let business = [
        ("Action", "AttachKeyPair"),
        ("InstanceIds", r#"["i-m5eg7be9ndloji64jknv", "i-m5e25x2mwr0hk33dwv0h"]"#),
        ("KeyPairName", "FinanceJoshuaV25"),
        ("RegionId", "cn-hangzhou"),
    ];
    let common = [
        ("Format", format),
        ("Version", "2014-05-26"),
        ("AccessKeyId", CALLER_ID),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "c7d1b5a0-3f1e-4b6a-9a51-golden000003"),
        ("Timestamp", "2024-05-01T08:00:00Z"),
    ];
    let params: Vec<Param<'static>> =
        business.iter().chain(&common).map(|(n, v)| ((*n).into(), (*v).to_owned().into())).collect();
    let input = SignInput { method: "GET", host: "ecs.aliyuncs.com", path: "/", params, ..SignInput::default() };
    let signed = sign::sign(Scheme::AliyunRpc, &input, CALLER_ID, &Secret::new(CALLER_SECRET));
    let query: Vec<String> = input
        .params
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .chain([("Signature", signed.signature.as_str())])
        .map(|(n, v)| format!("{}={}", pct_encode(n), pct_encode(v)))
        .collect();
    format!("GET /?{} HTTP/1.1\nHost: ecs.aliyuncs.com\n\n", query.join("&"))
}

/// Parses the HTTP/1.1 text of `request.http`.
fn parse_http(text: &str) -> Received {
    let (head, body) = text.split_once("\n\n").expect("a blank line after the headers");
    let mut lines = head.lines();
    let mut request_line = lines.next().expect("request line").split(' ');
    let method = request_line.next().unwrap();
    let target = request_line.next().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let headers: Vec<(&str, &str)> = lines.map(|l| l.split_once(": ").expect("a header line")).collect();
    Received::new(method, path, query, &headers, body.as_bytes())
}

fn operation(case: &str) -> Operation {
    let v: Value = serde_json::from_str(&read(case, "operation.json")).unwrap();
    let strings = |key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect()
    };
    let mut op = Operation::new(Action::from_name(v["action"].as_str().unwrap()).unwrap());
    op.region = v["region"].as_str().map(str::to_owned);
    op.instances = strings("instances");
    op.keys = Keys::Names(strings("key_names"));
    op
}

/// The document's response example as an outcome: both instances bound.
fn outcome() -> Outcome {
    let results = INSTANCES.iter().map(|i| InstanceResult { instance: (*i).to_owned(), result: Ok(()) }).collect();
    Outcome { request_id: REQUEST_ID.to_owned(), answer: Answer::Bind(results) }
}

/// Decodes the case's request, checks its signature, and answers it; returns the response body.
fn run(case: &str, format: &str) -> (Operation, Vec<u8>, Vec<(&'static str, String)>) {
    let maps = maps();
    golden(case, "request.http", &seed_request(format));
    let received = parse_http(&read(case, "request.http"));
    let raw = received.raw();
    let material = aliyun_ecs::auth_material(&raw).unwrap();
    sign::verify(&material, &Secret::new(CALLER_SECRET)).expect("the golden request verifies");
    let op = aliyun_ecs::decode_request(&raw, &material, &maps).unwrap();
    assert_eq!(op, operation(case), "{case}: operation.json");
    let reply = aliyun_ecs::reply(&raw, &maps, REQUEST_ID.to_owned());
    let resp = aliyun_ecs::encode_response(&reply, &Ok(outcome()), &maps);
    assert_eq!(resp.status, 200);
    (op, resp.body, resp.headers)
}

fn document_outcome(case: &str, file: &str, content_type: &str) -> Outcome {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", content_type.parse().unwrap());
    let op = operation(case);
    aliyun_ecs::decode_response(200, &headers, read(case, file).as_bytes(), &op, &maps()).unwrap()
}

#[test]
fn attach_keypair_json() {
    let case = "attach_keypair_json";
    let (op, body, headers) = run(case, "JSON");
    assert_eq!(headers, [("content-type", "application/json;charset=utf-8".to_owned())]);
    let text = String::from_utf8(body).unwrap();
    golden(case, "response.json", &text);

    // The document shows the same content. Its example writes TotalCount and FailCount as numbers where
    // the API metadata declares strings (the codec writes strings, protocols.md 5.3), and leaves out
    // KeyPairName, which its parameter table lists.
    let mut ours: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(ours["KeyPairName"], "FinanceJoshuaV25");
    ours.as_object_mut().unwrap().remove("KeyPairName");
    let mut document: Value = serde_json::from_str(&read(case, "document.json")).unwrap();
    for count in ["TotalCount", "FailCount"] {
        document[count] = Value::String(document[count].to_string());
    }
    assert_eq!(ours, document);

    assert_eq!(document_outcome(case, "document.json", "application/json;charset=utf-8"), outcome());
    assert_eq!(op.keys, Keys::Names(vec!["FinanceJoshuaV25".to_owned()]));
}

#[test]
fn attach_keypair_xml() {
    let case = "attach_keypair_xml";
    let (_, body, headers) = run(case, "XML");
    assert_eq!(headers, [("content-type", "text/xml;charset=utf-8".to_owned())]);
    let text = String::from_utf8(body).unwrap();
    golden(case, "response.xml", &text);

    // Same content as the document, compared as normalised text (no declaration, comments or
    // whitespace between elements); the document leaves out KeyPairName, as in JSON.
    assert!(text.starts_with(r#"<?xml version="1.0" encoding="UTF-8"?><AttachKeyPairResponse>"#));
    let ours = normalise(&text).replace("<KeyPairName>FinanceJoshuaV25</KeyPairName>", "");
    assert_eq!(ours, normalise(&read(case, "document.xml")));

    assert_eq!(document_outcome(case, "document.xml", "text/xml;charset=utf-8"), outcome());
}

/// The document's own `Message` (`AccessDenied` beside `Success` true and `Code` 200) does not change
/// what an entry means: `Success` decides.
#[test]
fn success_decides_over_message() {
    let case = "attach_keypair_xml";
    let text = read(case, "document.xml").replace("<Message>successful</Message>", "<Message>AccessDenied</Message>");
    let got = aliyun_ecs::decode_response(200, &HeaderMap::new(), text.as_bytes(), &operation(case), &maps()).unwrap();
    assert_eq!(got, outcome());
}

/// XML without the declaration, comments and the whitespace between elements.
fn normalise(xml: &str) -> String {
    let mut rest = xml.trim();
    if let Some(after) = rest.strip_prefix("<?xml") {
        rest = after.split_once("?>").map_or("", |(_, r)| r);
    }
    let mut out = String::new();
    let mut rest = rest.to_owned();
    while let Some(start) = rest.find("<!--") {
        let end = rest[start..].find("-->").map_or(rest.len(), |e| start + e + 3);
        rest.replace_range(start..end, "");
    }
    for piece in rest.split('<').filter(|p| !p.trim().is_empty()) {
        let (tag, text) = piece.split_once('>').expect("a closed tag");
        out.push('<');
        out.push_str(tag);
        out.push('>');
        out.push_str(text.trim());
    }
    out
}
