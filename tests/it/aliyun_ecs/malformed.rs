//! Hostile input for every decoder of the ECS codec. Each case must give ECS's own error: the right
//! canonical code, rendered with ECS's HTTP status and `Code` (never a panic).

use crossgate::dialect::aliyun_ecs;
use crossgate::model::{Action, Code, Operation, Source};
use crossgate::sign::encoding::{pct_encode, sha256_hex};
use http::HeaderMap;

use super::{assert_ecs_fault, decode};
use crate::support::{Received, maps};

const ONE_MB: usize = 1 << 20;

/// A well-formed RPC AttachKeyPair (not validly signed: these decoders do not verify), with `set`
/// replacing or adding parameters and `drop` removing them.
fn rpc_query(set: &[(&str, &str)], drop: &[&str]) -> String {
    let mut params: Vec<(String, String)> = [
        ("Action", "AttachKeyPair"),
        ("Version", "2014-05-26"),
        ("Format", "JSON"),
        ("RegionId", "cn-hangzhou"),
        ("KeyPairName", "FinanceJoshuaV25"),
        ("InstanceIds", r#"["i-m5eg7be9ndloji64jknv"]"#),
        ("AccessKeyId", "testid"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", "nonce-1"),
        ("Timestamp", "2024-05-01T08:00:00Z"),
        ("Signature", "JxKQO+cR50Q4acW1ocyb1tyckJ8="),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect();
    params.retain(|(n, _)| !drop.contains(&n.as_str()));
    for (name, value) in set {
        match params.iter_mut().find(|(n, _)| n == name) {
            Some(p) => p.1 = (*value).to_owned(),
            None => params.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    params.iter().map(|(n, v)| format!("{}={}", pct_encode(n), pct_encode(v))).collect::<Vec<_>>().join("&")
}

fn get(query: &str) -> Received {
    Received::new("GET", "/", query, &[("host", "ecs.aliyuncs.com")], b"")
}

fn rpc(set: &[(&str, &str)], drop: &[&str]) -> Received {
    get(&rpc_query(set, drop))
}

fn post_form(query: &str, body: &[u8], content_type: &str) -> Received {
    Received::new("POST", "/", query, &[("host", "ecs.aliyuncs.com"), ("content-type", content_type)], body)
}

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNED: &str = "accept;host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";

/// An ACS3 request (not validly signed), with headers replaced (`Some`) or removed (`None`).
fn acs3(query: &str, headers: &[(&str, Option<&str>)], body: &[u8]) -> Received {
    let authorization = format!("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={SIGNED},Signature=00ff");
    let mut all: Vec<(&str, Option<&str>)> = vec![
        ("host", Some("ecs.aliyuncs.com")),
        ("x-acs-action", Some("AttachKeyPair")),
        ("x-acs-version", Some("2014-05-26")),
        ("x-acs-date", Some("2024-05-01T08:00:00Z")),
        ("x-acs-signature-nonce", Some("acs3-nonce")),
        ("x-acs-content-sha256", Some(EMPTY_SHA256)),
        ("accept", Some("application/json")),
        ("authorization", Some(&authorization)),
    ];
    for (name, value) in headers {
        match all.iter_mut().find(|(n, _)| n == name) {
            Some(h) => h.1 = *value,
            None => all.push((name, *value)),
        }
    }
    let present: Vec<(&str, &str)> = all.iter().filter_map(|(n, v)| v.map(|v| (*n, v))).collect();
    Received::new("POST", "/", query, &present, body)
}

const ACS3_QUERY: &str =
    "InstanceIds=%5B%22i-m5eg7be9ndloji64jknv%22%5D&KeyPairName=FinanceJoshuaV25&RegionId=cn-hangzhou";

fn json_list(n: usize) -> String {
    let ids: Vec<String> = (0..n).map(|i| format!("\"i-bp1{i:017}\"")).collect();
    format!("[{}]", ids.join(", "))
}

// === auth_material ===

#[test]
fn auth_material_refuses_hostile_requests() {
    let maps = maps();
    let huge = "9".repeat(ONE_MB);
    let with_body = rpc_query(&[], &["InstanceIds", "KeyPairName"]);
    let cases: Vec<(&str, Received, Code)> = vec![
        ("empty request", get(""), Code::MissingParameter),
        ("no Signature", rpc(&[], &["Signature"]), Code::MissingParameter),
        ("empty Signature", rpc(&[("Signature", "")], &[]), Code::MissingParameter),
        ("no AccessKeyId", rpc(&[], &["AccessKeyId"]), Code::MissingParameter),
        ("empty AccessKeyId", rpc(&[("AccessKeyId", "")], &[]), Code::MissingParameter),
        ("no SignatureNonce", rpc(&[], &["SignatureNonce"]), Code::MissingParameter),
        ("empty SignatureNonce", rpc(&[("SignatureNonce", "")], &[]), Code::MissingParameter),
        ("no Timestamp", rpc(&[], &["Timestamp"]), Code::MissingParameter),
        ("Timestamp with a space", rpc(&[("Timestamp", "2024-05-01 08:00:00")], &[]), Code::TimestampExpired),
        ("Timestamp as Unix seconds", rpc(&[("Timestamp", "1714550400")], &[]), Code::TimestampExpired),
        ("Timestamp of 1 MB", rpc(&[("Timestamp", &huge)], &[]), Code::TimestampExpired),
        ("no SignatureMethod", rpc(&[], &["SignatureMethod"]), Code::MissingParameter),
        ("SignatureMethod HMAC-SHA256", rpc(&[("SignatureMethod", "HMAC-SHA256")], &[]), Code::MalformedSignature),
        ("SignatureVersion 2.0", rpc(&[("SignatureVersion", "2.0")], &[]), Code::MalformedSignature),
        ("AccessKeyId twice", get(&format!("{}&AccessKeyId=other", rpc_query(&[], &[]))), Code::InvalidParameter),
        (
            "a parameter in query and body",
            post_form(&rpc_query(&[], &[]), b"RegionId=cn-beijing", "application/x-www-form-urlencoded"),
            Code::InvalidParameter,
        ),
        ("%FF in the query", get(&format!("{}&X=%FF", rpc_query(&[], &[]))), Code::InvalidParameter),
        ("a bad escape in the query", get(&format!("{}&X=%G1", rpc_query(&[], &[]))), Code::InvalidParameter),
        (
            "raw invalid UTF-8 in the body",
            post_form(&with_body, b"KeyPairName=\xff\xfe", "application/x-www-form-urlencoded"),
            Code::InvalidParameter,
        ),
        (
            "%FF in the body",
            post_form(&with_body, b"KeyPairName=%FF", "application/x-www-form-urlencoded"),
            Code::InvalidParameter,
        ),
        ("a JSON body", post_form(&with_body, br#"{"KeyPairName":"a"}"#, "application/json"), Code::InvalidParameter),
        (
            "method PUT",
            Received::new("PUT", "/", &rpc_query(&[], &[]), &[("host", "ecs.aliyuncs.com")], b""),
            Code::InvalidParameter,
        ),
        (
            "an ACS3 look-alike algorithm",
            acs3(
                ACS3_QUERY,
                &[("authorization", Some("ACS3-HMAC-SM3 Credential=testid,SignedHeaders=host,Signature=00"))],
                b"",
            ),
            Code::MalformedSignature,
        ),
        (
            "ACS3 without Signature",
            acs3(ACS3_QUERY, &[("authorization", Some("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host"))], b""),
            Code::MalformedSignature,
        ),
        ("ACS3 without x-acs-date", acs3(ACS3_QUERY, &[("x-acs-date", None)], b""), Code::MissingParameter),
        ("ACS3 without host", acs3(ACS3_QUERY, &[("host", None)], b""), Code::MissingParameter),
        (
            "ACS3 with x-acs-date unsigned",
            acs3(
                ACS3_QUERY,
                &[(
                    "authorization",
                    Some(
                        "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-signature-nonce;x-acs-version,Signature=00",
                    ),
                )],
                b"",
            ),
            Code::MalformedSignature,
        ),
        (
            "ACS3 with a malformed x-acs-date",
            acs3(ACS3_QUERY, &[("x-acs-date", Some("Wed, 01 May 2024 08:00:00 GMT"))], b""),
            Code::TimestampExpired,
        ),
        (
            "ACS3 with an empty nonce",
            acs3(ACS3_QUERY, &[("x-acs-signature-nonce", Some(""))], b""),
            Code::MissingParameter,
        ),
        ("ACS3 with %FF in the query", acs3("KeyPairName=%FF", &[], b""), Code::InvalidParameter),
        (
            "ACS3 with a parameter twice",
            acs3(&format!("{ACS3_QUERY}&RegionId=cn-beijing"), &[], b""),
            Code::InvalidParameter,
        ),
    ];
    assert!(cases.len() >= 20);
    let mut duplicate_nonce = acs3(ACS3_QUERY, &[], b"");
    duplicate_nonce.headers.append("x-acs-signature-nonce", "again".parse().unwrap());
    let mut cases = cases;
    cases.push(("ACS3 with two nonces", duplicate_nonce, Code::InvalidParameter));
    for (case, received, code) in &cases {
        let fault = aliyun_ecs::auth_material(&received.raw()).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.source(), Source::Caller, "{case}");
        assert_ecs_fault(received, &fault, *code, &maps, case);
    }
}

// === decode_request ===

#[test]
fn decode_request_refuses_hostile_requests() {
    let maps = maps();
    let huge_name = format!("K{}", "a".repeat(ONE_MB));
    let huge_id = format!(r#"["i-{}"]"#, "a".repeat(ONE_MB));
    let deep = format!("{}\"i-abc\"{}", "[".repeat(200), "]".repeat(200));
    let describe_keys = |set: &[(&str, &str)]| {
        let mut all = vec![("Action", "DescribeKeyPairs")];
        all.extend_from_slice(set);
        rpc(&all, &["InstanceIds"])
    };
    let list_51 = json_list(51);
    let list_101 = json_list(101);
    let list_1001 = json_list(1001);
    let body_hash_mismatch = acs3(
        "RegionId=cn-hangzhou",
        &[("content-type", Some("application/x-www-form-urlencoded"))],
        b"InstanceIds=%5B%22i-m5eg7be9ndloji64jknv%22%5D&KeyPairName=FinanceJoshuaV25",
    );
    // The hash is right, so the repetition is what must be refused.
    let repeated_hash = sha256_hex(b"RegionId=cn-beijing");
    let body_repeats_query = acs3(
        ACS3_QUERY,
        &[("content-type", Some("application/x-www-form-urlencoded")), ("x-acs-content-sha256", Some(&repeated_hash))],
        b"RegionId=cn-beijing",
    );
    let cases: Vec<(&str, Received, Code)> = vec![
        ("no Action", rpc(&[], &["Action"]), Code::MissingParameter),
        ("an unknown Action", rpc(&[("Action", "DeleteKeyPairs")], &[]), Code::UnknownAction),
        ("a Tencent Action", rpc(&[("Action", "AssociateInstancesKeyPairs")], &[]), Code::UnknownAction),
        ("no Version", rpc(&[], &["Version"]), Code::MissingParameter),
        ("another Version", rpc(&[("Version", "2017-03-12")], &[]), Code::InvalidParameterValue),
        ("Format YAML", rpc(&[("Format", "YAML")], &[]), Code::InvalidParameterValue),
        ("no RegionId", rpc(&[], &["RegionId"]), Code::MissingParameter),
        ("a RegionId with markup", rpc(&[("RegionId", "cn <hangzhou>")], &[]), Code::InvalidParameterValue),
        ("no KeyPairName", rpc(&[], &["KeyPairName"]), Code::MissingParameter),
        ("an empty KeyPairName", rpc(&[("KeyPairName", "")], &[]), Code::MissingParameter),
        ("a KeyPairName with a control character", rpc(&[("KeyPairName", "Fin\u{1}ance")], &[]), Code::MalformedKeyId),
        ("a KeyPairName of 1 MB", rpc(&[("KeyPairName", &huge_name)], &[]), Code::MalformedKeyId),
        ("no InstanceIds", rpc(&[], &["InstanceIds"]), Code::MissingParameter),
        (
            "InstanceIds as Tencent's .N list",
            rpc(&[("InstanceIds.1", "i-m5eg7be9ndloji64jknv")], &["InstanceIds"]),
            Code::MissingParameter,
        ),
        ("InstanceIds comma-separated", rpc(&[("InstanceIds", "i-a,i-b")], &[]), Code::InvalidParameter),
        ("InstanceIds of numbers", rpc(&[("InstanceIds", "[1, 2]")], &[]), Code::InvalidParameter),
        ("InstanceIds an object", rpc(&[("InstanceIds", r#"{"a": "i-abc"}"#)], &[]), Code::InvalidParameter),
        ("InstanceIds truncated", rpc(&[("InstanceIds", r#"["i-abc""#)], &[]), Code::InvalidParameter),
        ("InstanceIds nested 200 deep", rpc(&[("InstanceIds", &deep)], &[]), Code::InvalidParameter),
        ("InstanceIds empty", rpc(&[("InstanceIds", "[]")], &[]), Code::MissingParameter),
        ("51 InstanceIds", rpc(&[("InstanceIds", &list_51)], &[]), Code::LimitExceeded),
        ("1001 InstanceIds", rpc(&[("InstanceIds", &list_1001)], &[]), Code::LimitExceeded),
        ("an empty instance id", rpc(&[("InstanceIds", r#"["i-abc", ""]"#)], &[]), Code::MalformedInstanceId),
        ("an instance id with a newline", rpc(&[("InstanceIds", r#"["i-abc\n"]"#)], &[]), Code::MalformedInstanceId),
        ("an instance id of 1 MB", rpc(&[("InstanceIds", &huge_id)], &[]), Code::MalformedInstanceId),
        ("an instance given twice", rpc(&[("InstanceIds", r#"["i-abc", "i-abc"]"#)], &[]), Code::DuplicateValues),
        ("PageSize 51", describe_keys(&[("PageSize", "51")]), Code::LimitExceeded),
        ("PageSize not a number", describe_keys(&[("PageSize", "ten")]), Code::InvalidParameterValue),
        ("PageNumber 0", describe_keys(&[("PageNumber", "0")]), Code::InvalidParameterValue),
        ("a name filter with a space", describe_keys(&[("KeyPairName", "a b")]), Code::MalformedKeyId),
        (
            "101 instances to describe",
            rpc(&[("Action", "DescribeInstances"), ("InstanceIds", &list_101)], &[]),
            Code::LimitExceeded,
        ),
        (
            "ACS3 with an unknown action",
            acs3(ACS3_QUERY, &[("x-acs-action", Some("RunInstances"))], b""),
            Code::UnknownAction,
        ),
        (
            "ACS3 with another version",
            acs3(ACS3_QUERY, &[("x-acs-version", Some("2016-03-14"))], b""),
            Code::InvalidParameterValue,
        ),
        ("ACS3 with a body its hash does not cover", body_hash_mismatch, Code::SignatureMismatch),
        ("ACS3 with a body repeating the query", body_repeats_query, Code::InvalidParameter),
        (
            "ACS3 with no RegionId",
            acs3("KeyPairName=FinanceJoshuaV25&InstanceIds=%5B%22i-abc%22%5D", &[], b""),
            Code::MissingParameter,
        ),
    ];
    assert!(cases.len() >= 20);
    for (case, received, code) in &cases {
        let fault = decode(received, &maps).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.source(), Source::Caller, "{case}");
        assert_ecs_fault(received, &fault, *code, &maps, case);
    }
}

/// The codec refuses only what cannot be an id on any provider: a CVM id, an upper-case id or a key name
/// ECS itself would refuse decode, and are checked against the formats of the provider that receives them
/// once routed (`tests/it/detection.rs` and `refusals.rs` check that end to end).
#[test]
fn ids_of_any_provider_decode() {
    let maps = maps();
    for (case, received) in [
        ("a CVM instance id", rpc(&[("InstanceIds", r#"["ins-1e4r6y8i"]"#)], &[])),
        ("an upper-case instance id", rpc(&[("InstanceIds", r#"["i-M5EG7BE9"]"#)], &[])),
        ("a KeyPairName starting with a digit", rpc(&[("KeyPairName", "1abc")], &[])),
        ("a KeyPairName that is a URL", rpc(&[("KeyPairName", "https://x")], &[])),
    ] {
        decode(&received, &maps).unwrap_or_else(|f| panic!("{case}: {f}"));
    }
}

/// A request with no `Format` is answered in XML, one with `Format=json` (the tea SDK's spelling) in JSON,
/// and even garbage gets an ECS error.
#[test]
fn replies_pick_the_format_tolerantly() {
    let maps = maps();
    let reply = |r: &Received| aliyun_ecs::reply(&r.raw(), &maps, "r".into());
    use crossgate::dialect::Format;
    assert_eq!(reply(&rpc(&[], &["Format"])).format, Format::Xml);
    assert_eq!(reply(&rpc(&[("Format", "json")], &[])).format, Format::Json);
    assert_eq!(reply(&rpc(&[("Format", "xml")], &[])).format, Format::Xml);
    assert_eq!(reply(&acs3(ACS3_QUERY, &[], b"")).format, Format::Json);
    let garbage = get("%FF&&==&Action=%ZZ&Format");
    let r = reply(&garbage);
    assert_eq!((r.action, r.host.as_str()), (None, "ecs.aliyuncs.com"));
    let r = reply(&rpc(&[("Action", "DetachKeyPair")], &[]));
    assert_eq!(
        (r.action, r.wire_action.as_str(), r.key_name.as_deref()),
        (Some(Action::DisassociateKeys), "DetachKeyPair", Some("FinanceJoshuaV25"))
    );
}

// === decode_response ===

fn response_case(
    status: u16,
    content_type: &str,
    body: &[u8],
    action: Action,
) -> Result<crossgate::model::Outcome, crossgate::model::Fault> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", content_type.parse().unwrap());
    aliyun_ecs::decode_response(status, &headers, body, &Operation::new(action), &maps())
}

#[test]
fn decode_response_refuses_hostile_replies() {
    let json = "application/json;charset=utf-8";
    let xml = "text/xml;charset=utf-8";
    let bind = Action::AssociateKeys;
    let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
    let garbage = vec![b'x'; ONE_MB];
    let results = |entry: &str| {
        format!(r#"{{"RequestId":"R","TotalCount":"1","FailCount":"0","Results":{{"Result":[{entry}]}}}}"#)
    };
    let cases: Vec<(&str, u16, &str, Vec<u8>, Action)> = vec![
        ("an empty body", 200, json, b"".to_vec(), bind),
        ("an HTML error page", 502, "text/html", b"<html><body>Bad Gateway".to_vec(), bind),
        ("truncated JSON", 200, json, br#"{"RequestId":"R","Results":{"Res"#.to_vec(), bind),
        ("a JSON array", 200, json, b"[1,2]".to_vec(), bind),
        ("JSON null", 200, json, b"null".to_vec(), bind),
        ("JSON nested 500 deep", 200, json, deep.into_bytes(), bind),
        ("1 MB of garbage", 200, json, garbage, bind),
        ("raw invalid UTF-8", 200, json, b"{\"RequestId\":\"\xff\"}".to_vec(), bind),
        ("no RequestId", 200, json, br#"{"Results":{"Result":[]}}"#.to_vec(), bind),
        ("a numeric RequestId", 200, json, br#"{"RequestId":7}"#.to_vec(), bind),
        ("Result not a list", 200, json, br#"{"RequestId":"R","Results":{"Result":"x"}}"#.to_vec(), bind),
        ("Results a string", 200, json, br#"{"RequestId":"R","Results":"x"}"#.to_vec(), bind),
        ("an entry without InstanceId", 200, json, results(r#"{"Success":true,"Code":"200"}"#).into_bytes(), bind),
        (
            "Success neither true nor false",
            200,
            json,
            results(r#"{"InstanceId":"i-a","Success":"maybe"}"#).into_bytes(),
            bind,
        ),
        ("an entry with neither Success nor Code", 200, json, results(r#"{"InstanceId":"i-a"}"#).into_bytes(), bind),
        ("TotalCount a word", 200, json, br#"{"RequestId":"R","TotalCount":"two"}"#.to_vec(), bind),
        ("TotalCount negative", 200, json, br#"{"RequestId":"R","TotalCount":-1}"#.to_vec(), bind),
        ("an error without Code", 400, json, br#"{"RequestId":"R","Message":"m"}"#.to_vec(), bind),
        ("an error whose Code is an object", 400, json, br#"{"RequestId":"R","Code":{"a":1}}"#.to_vec(), bind),
        (
            "XML with RequestId twice (seed 003's typo)",
            200,
            xml,
            b"<R><RequestId>a</RequestId><RequestId>a</RequestId></R>".to_vec(),
            bind,
        ),
        (
            "XML with </Result> as an opening tag (seed 003's typo)",
            200,
            xml,
            b"<R><RequestId>a</RequestId><Results></Result></Results></R>".to_vec(),
            bind,
        ),
        (
            "XML with a DOCTYPE entity",
            200,
            xml,
            b"<!DOCTYPE R [<!ENTITY e \"x\">]><R><RequestId>&e;</RequestId></R>".to_vec(),
            bind,
        ),
        ("XML cut short", 400, xml, b"<Error><Code>Throttling".to_vec(), bind),
        (
            "a key pair without a name",
            200,
            json,
            br#"{"RequestId":"R","KeyPairs":{"KeyPair":[{"KeyPairFingerPrint":"ab"}]}}"#.to_vec(),
            Action::DescribeKeys,
        ),
        (
            "an instance of an unknown OS",
            200,
            json,
            br#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-a","Status":"Running","OSType":"beos"}]}}"#
                .to_vec(),
            Action::DescribeInstances,
        ),
        (
            "an instance without Status",
            200,
            json,
            br#"{"RequestId":"R","Instances":{"Instance":[{"InstanceId":"i-a","OSType":"linux"}]}}"#.to_vec(),
            Action::DescribeInstances,
        ),
    ];
    assert!(cases.len() >= 20);
    let maps = maps();
    let caller = get(&rpc_query(&[], &[]));
    for (case, status, content_type, body, action) in &cases {
        let fault =
            response_case(*status, content_type, body, *action).err().unwrap_or_else(|| panic!("{case}: accepted"));
        assert_eq!(fault.source(), Source::Upstream, "{case}");
        assert!(fault.upstream_error().is_none(), "{case}");
        assert_ecs_fault(&caller, &fault, Code::UpstreamUnavailable, &maps, case);
    }
}

/// ECS's own errors keep their code, message and RequestId, classified through the mappings.
#[test]
fn decode_response_classifies_ecs_errors() {
    let maps = maps();
    let caller = get(&rpc_query(&[], &[]));
    let cases: Vec<(u16, &str, &[u8], Code, &str)> = vec![
        (400, "application/json", br#"{"RequestId":"R1","HostId":"ecs.aliyuncs.com","Code":"InvalidKeyPairName.NotFound","Message":"The specified KeyPairName does not exist in our records."}"#, Code::KeyNotFound, "InvalidKeyPairName.NotFound"),
        (403, "application/json", br#"{"RequestId":"R1","Code":"DependencyViolation.WindowsInstance","Message":"windows"}"#, Code::InstanceNotSupported, "DependencyViolation.WindowsInstance"),
        (400, "application/json", br#"{"requestId":"R1","code":"Throttling.User","message":"flow control"}"#, Code::Throttled, "Throttling.User"),
        (404, "application/json", br#"{"RequestId":"R1","Code":"Foo.Bar","Message":"new"}"#, Code::UpstreamUnclassified, "Foo.Bar"),
        (503, "text/xml;charset=utf-8", b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><RequestId>R1</RequestId><HostId>ecs.aliyuncs.com</HostId><Code>ServiceUnavailable</Code><Message>later &amp; again</Message></Error>", Code::UpstreamUnavailable, "ServiceUnavailable"),
    ];
    for (status, content_type, body, code, ecs_code) in cases {
        let fault = response_case(status, content_type, body, Action::AssociateKeys).unwrap_err();
        assert_eq!((fault.code(), fault.source()), (code, Source::Upstream), "{ecs_code}");
        let said = fault.upstream_error().unwrap();
        assert_eq!((said.code.as_str(), said.request_id.as_str()), (ecs_code, "R1"));
        if code == Code::UpstreamUnclassified {
            let reply = aliyun_ecs::reply(&caller.raw(), &maps, "REQ".into());
            let resp = aliyun_ecs::encode_response(&reply, &Err(fault), &maps);
            assert_eq!((resp.status, super::json_body(&resp)["Code"].as_str()), (500, Some("Foo.Bar")));
        } else {
            assert_ecs_fault(&caller, &fault, code, &maps, ecs_code);
        }
    }
    let xml = response_case(
        503,
        "text/xml",
        b"<Error><Code>ServiceUnavailable</Code><Message>later &amp; again</Message></Error>",
        Action::DescribeKeys,
    )
    .unwrap_err();
    assert_eq!(xml.upstream_error().unwrap().message, "later & again");
}

/// A failed instance in a 200 reply is that instance's fault, classified from its Message.
#[test]
fn decode_response_reads_partial_failures() {
    let body = br#"{"RequestId":"R","TotalCount":2,"FailCount":1,"Results":{"Result":[
        {"Code":200,"Message":"successful","InstanceId":"i-a","Success":"true"},
        {"Code":"403","Message":"DependencyViolation.WindowsInstance","InstanceId":"i-b","Success":"false"}]}}"#;
    let outcome = response_case(200, "application/json", body, Action::AssociateKeys).unwrap();
    let (instance, fault) = outcome.first_failure().unwrap();
    assert_eq!((instance, fault.code(), fault.source()), ("i-b", Code::InstanceNotSupported, Source::Upstream));
    assert_eq!(fault.upstream_error().unwrap().request_id, "R");
}
