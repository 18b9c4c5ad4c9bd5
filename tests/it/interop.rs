//! The interop suite: the clouds' own Python SDKs talk to a running crossgate.
//!
//! Each test starts the matrix gateway (the demo config with aliases, on a free port) and its simulator,
//! then runs the scripts of `tests/interop/` with the Python named by `CROSSGATE_INTEROP_PYTHON` (the
//! virtualenv `tests/run.sh` makes from `tests/interop/requirements.txt`). A script drives one official
//! SDK through one scenario and prints one JSON line per SDK call. The tests assert that the SDK
//! succeeded or raised exactly as expected, with the dialect's error code, that the RequestId it reports
//! is the gateway's own (an audit line has it), and what the simulated clouds hold afterwards.
//!
//! The tests are ignored by default (plain `cargo test` needs no Python); `tests/run.sh` runs them with
//! `--include-ignored`. Run without `CROSSGATE_INTEROP_PYTHON`, they fail: they never pass vacuously.
//!
//! The legacy API 2.0 SDK (`qcloudapi-sdk-python`, for `/v2/index.php`) speaks HTTPS only: its gateway
//! serves TLS with a certificate made for the test, which the script trusts through `SSL_CERT_FILE`.
//! That SDK returns the body text whatever it says, so its tests assert the exact bodies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crossgate::clock::{Clock, SystemClock};
use crossgate::layer::audit::AuditEntry;
use crossgate::model::Provider;
use serde_json::{Value, json};

use crate::harness::Env;

/// The variable naming the Python that has the SDKs installed.
const PYTHON_VAR: &str = "CROSSGATE_INTEROP_PYTHON";
/// How long one script may take, SDK import included.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);
/// Proxy settings the SDKs' HTTP stacks would honour; a loopback gateway must be reached directly.
const PROXY_VARS: &[&str] = &["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"];

// === the SDK families and what each scenario must give ===

/// One SDK configuration: a script, its `--variant`, and the dialect's expectations.
struct Sdk {
    script: &'static str,
    variant: &'static str,
    family: Family,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Cvm,
    Lighthouse,
    /// aliyun-python-sdk-core: reads a 400 SignatureDoesNotMatch carrying its own string to sign as
    /// `InvalidAccessKeySecret`.
    AliyunCore,
    /// alibabacloud-ecs20140526 (tea / darabonba): `ClientException` for 4xx.
    AliyunTea,
}

impl Family {
    fn is_tencent(self) -> bool {
        matches!(self, Family::Cvm | Family::Lighthouse)
    }

    /// The SDK call a scenario makes.
    fn call(self, scenario: &str) -> &'static str {
        match (self.is_tencent(), scenario == "unbind") {
            (true, false) => "AssociateInstancesKeyPairs",
            (true, true) => "DisassociateInstancesKeyPairs",
            (false, false) => "AttachKeyPair",
            (false, true) => "DetachKeyPair",
        }
    }

    /// The exception class the SDK raises for a server error with HTTP `status`.
    fn exception(self, status: u16) -> &'static str {
        match self {
            Family::Cvm | Family::Lighthouse => "TencentCloudSDKException",
            Family::AliyunCore => "ServerException",
            Family::AliyunTea if status >= 500 => "ServerException",
            Family::AliyunTea => "ClientException",
        }
    }
}

/// What one scenario's single SDK call must give.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The call returned normally and everything it named succeeded.
    Ok,
    /// The SDK raised its server error with `code` (the gateway's audit line says `wire`, over HTTP
    /// `status`; Tencent always answers 200).
    Raised { code: &'static str, wire: &'static str, status: u16 },
    /// ECS: HTTP 200, and the one instance failed with `code` and the HTTP-like `status`.
    FailedInstance { code: &'static str, status: &'static str },
}

/// A scenario, what it must give, and what the clouds must hold afterwards.
struct Case<E = Expect> {
    scenario: &'static str,
    expect: E,
    after: &'static [After],
}

/// `(provider, instance, keys, state)` after a call; `state` is checked when given.
type After = (Provider, &'static str, &'static [&'static str], Option<&'static str>);

const CVM: Provider = Provider::TencentCvm;
const LIGHTHOUSE: Provider = Provider::TencentLighthouse;
const ECS: Provider = Provider::AliyunEcs;

const fn raised(code: &'static str) -> Expect {
    Expect::Raised { code, wire: code, status: 200 }
}

const fn raised_ecs(code: &'static str, status: u16) -> Expect {
    Expect::Raised { code, wire: code, status }
}

/// API 3.0 CVM, either signature.
const CVM_CASES: &[Case] = &[
    Case {
        scenario: "bad-secret",
        expect: raised("AuthFailure.SignatureFailure"),
        after: &[(CVM, "ins-1e4r6y8i", &[], None)],
    },
    Case { scenario: "unknown-instance", expect: raised("InvalidInstanceId.NotFound"), after: &[] },
    Case {
        scenario: "windows",
        expect: raised("UnsupportedOperation.InstanceOsWindows"),
        after: &[(CVM, "ins-5wq8v2kd", &[], None)],
    },
    Case { scenario: "too-many", expect: raised("InvalidParameterValue.LimitExceeded"), after: &[] },
    Case {
        scenario: "running",
        expect: raised("UnsupportedOperation.InstanceStateRunning"),
        after: &[(CVM, "ins-w34e5rl9", &["skey-11112222"], Some("RUNNING"))],
    },
    Case {
        scenario: "running-force",
        expect: Expect::Ok,
        // Force-stopped, bound, and started again: RUNNING as before, with the new key only.
        after: &[(CVM, "ins-w34e5rl9", &["skey-4e5ty7i8"], Some("RUNNING"))],
    },
    Case { scenario: "bind", expect: Expect::Ok, after: &[(CVM, "ins-1e4r6y8i", &["skey-4e5ty7i8"], Some("STOPPED"))] },
    Case { scenario: "unbind", expect: Expect::Ok, after: &[(CVM, "ins-1e4r6y8i", &[], Some("STOPPED"))] },
    Case {
        scenario: "bind-elsewhere",
        expect: Expect::Ok,
        after: &[(ECS, "i-m5eg7be9ndloji64jknv", &["FinanceJoshuaV25"], None)],
    },
];

/// API 3.0 Lighthouse (TC3).
const LIGHTHOUSE_CASES: &[Case] = &[
    Case {
        scenario: "bad-secret",
        expect: raised("AuthFailure.SignatureFailure"),
        after: &[(LIGHTHOUSE, "lhins-ruy9d2tw", &[], Some("RUNNING"))],
    },
    Case { scenario: "unknown-instance", expect: raised("ResourceNotFound.InstanceIdNotFound"), after: &[] },
    Case {
        scenario: "windows",
        expect: raised("UnsupportedOperation.WindowsNotSupportKeyPair"),
        after: &[(LIGHTHOUSE, "lhins-w1n2d3s4", &[], None)],
    },
    Case { scenario: "too-many", expect: raised("InvalidParameterValue.LimitExceeded"), after: &[] },
    // A RUNNING instance is shut down, and the key bound asynchronously (the simulator's delay is 0).
    Case { scenario: "bind", expect: Expect::Ok, after: &[(LIGHTHOUSE, "lhins-ruy9d2tw", &["lhkp-f7rjie1q"], None)] },
    Case { scenario: "unbind", expect: Expect::Ok, after: &[(LIGHTHOUSE, "lhins-ruy9d2tw", &[], None)] },
    Case {
        scenario: "bind-elsewhere",
        expect: Expect::Ok,
        after: &[(CVM, "ins-1e4r6y8i", &["skey-4e5ty7i8"], Some("STOPPED"))],
    },
];

/// ECS through either Alibaba SDK; `bad_secret` is what the SDK makes of SignatureDoesNotMatch.
const fn ecs_cases(bad_secret: Expect) -> [Case; 7] {
    [
        Case { scenario: "bad-secret", expect: bad_secret, after: &[(ECS, "i-m5eg7be9ndloji64jknv", &[], None)] },
        // ECS answers per instance: the request succeeds, the instance fails.
        Case {
            scenario: "unknown-instance",
            expect: Expect::FailedInstance { code: "InvalidInstanceIds.ValueNotSupported", status: "400" },
            after: &[],
        },
        Case {
            scenario: "windows",
            expect: Expect::FailedInstance { code: "DependencyViolation.WindowsInstance", status: "403" },
            after: &[(ECS, "i-m5ewindows2022srv001", &[], None)],
        },
        Case { scenario: "too-many", expect: raised_ecs("InstanceKeyPairLimitExceeded", 403), after: &[] },
        Case {
            scenario: "bind",
            expect: Expect::Ok,
            after: &[(ECS, "i-m5eg7be9ndloji64jknv", &["FinanceJoshuaV25"], Some("Running"))],
        },
        Case {
            scenario: "unbind",
            expect: Expect::Ok,
            after: &[(ECS, "i-m5eg7be9ndloji64jknv", &[], Some("Running"))],
        },
        Case {
            scenario: "bind-elsewhere",
            expect: Expect::Ok,
            after: &[(LIGHTHOUSE, "lhins-3k9d8f7s", &["lhkp-f7rjie1q"], None)],
        },
    ]
}

/// aliyun-python-sdk-core recognises its own string to sign in the message and says so.
const CORE_CASES: [Case; 7] =
    ecs_cases(Expect::Raised { code: "InvalidAccessKeySecret", wire: "SignatureDoesNotMatch", status: 400 });

/// The tea SDK passes the server's code through.
const TEA_CASES: [Case; 7] = ecs_cases(raised_ecs("SignatureDoesNotMatch", 400));

/// What a legacy API 2.0 call must return: the body exactly, HTTP 200 always.
#[derive(Debug, Clone, Copy)]
enum Legacy {
    /// New-style success: `{"Response": {"RequestId": <the gateway's>}}`.
    NewOk,
    /// New-style error: `{"Response": {"Error": {"Code": code, "Message"}, "RequestId"}}`, the message
    /// containing the fragment.
    NewError { code: &'static str, fragment: &'static str },
    /// Old-style success: `{"code": 0, "message": "", "codeDesc": "Success"}`.
    OldOk,
    /// Old-style error: `{"code": number, "message", "codeDesc": code}`, the message containing the
    /// fragment.
    OldError { number: i64, code: &'static str, fragment: &'static str },
}

impl Legacy {
    fn is_ok(self) -> bool {
        matches!(self, Legacy::NewOk | Legacy::OldOk)
    }

    /// The code the audit line carries.
    fn wire_code(self) -> &'static str {
        match self {
            Legacy::NewOk | Legacy::OldOk => "Success",
            Legacy::NewError { code, .. } | Legacy::OldError { code, .. } => code,
        }
    }
}

/// The action a legacy scenario calls, as the SDK sends it (it upper-cases the first letter).
fn legacy_call(scenario: &str) -> &'static str {
    match scenario {
        "disassociate" => "DisassociateInstancesKeyPairs",
        "unbind-old" => "UnBindInstanceKey",
        s if s.ends_with("-old") => "BindInstanceKey",
        _ => "AssociateInstancesKeyPairs",
    }
}

const SIGNATURE_FAILURE: &str = "InvalidParameter.SignatureFailure";
const BOTH_LINUX: &[After] = &[
    (CVM, "ins-1e4r6y8i", &["skey-4e5ty7i8"], Some("STOPPED")),
    (CVM, "ins-3e56fg78", &["skey-4e5ty7i8"], Some("STOPPED")),
];
const NEITHER_LINUX: &[After] =
    &[(CVM, "ins-1e4r6y8i", &[], Some("STOPPED")), (CVM, "ins-3e56fg78", &[], Some("STOPPED"))];

/// The legacy endpoint through the legacy SDK, new-style and old-style, any method and signature.
const LEGACY_CASES: &[Case<Legacy>] = &[
    Case {
        scenario: "bad-secret",
        expect: Legacy::NewError { code: SIGNATURE_FAILURE, fragment: "signature" },
        after: &[(CVM, "ins-1e4r6y8i", &[], None)],
    },
    Case {
        scenario: "bad-secret-old",
        expect: Legacy::OldError { number: 4100, code: SIGNATURE_FAILURE, fragment: "signature" },
        after: &[(CVM, "ins-1e4r6y8i", &[], None)],
    },
    Case {
        scenario: "unknown-instance",
        expect: Legacy::NewError { code: "InvalidInstanceId.NotFound", fragment: "ins-0000dead" },
        after: &[],
    },
    Case {
        scenario: "unknown-instance-old",
        expect: Legacy::OldError { number: 5000, code: "InvalidInstanceId.NotFound", fragment: "ins-0000dead" },
        after: &[],
    },
    Case {
        scenario: "windows",
        expect: Legacy::NewError { code: "InvalidInstance.NotSupported", fragment: "Windows" },
        after: &[(CVM, "ins-5wq8v2kd", &[], Some("STOPPED"))],
    },
    Case {
        scenario: "windows-old",
        expect: Legacy::OldError { number: 5100, code: "InvalidInstance.NotSupported", fragment: "Windows" },
        after: &[(CVM, "ins-5wq8v2kd", &[], Some("STOPPED"))],
    },
    Case {
        scenario: "too-many",
        expect: Legacy::NewError { code: "InvalidParameterValue.LimitExceeded", fragment: "101" },
        after: &[],
    },
    Case { scenario: "associate", expect: Legacy::NewOk, after: BOTH_LINUX },
    Case { scenario: "disassociate", expect: Legacy::NewOk, after: NEITHER_LINUX },
    Case { scenario: "bind-old", expect: Legacy::OldOk, after: BOTH_LINUX },
    Case { scenario: "unbind-old", expect: Legacy::OldOk, after: NEITHER_LINUX },
];

// === the tests ===

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn tencentcloud_sdk_cvm_tc3() {
    run_suite(&Sdk { script: "tencent_sdk.py", variant: "cvm-tc3", family: Family::Cvm }, CVM_CASES).await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn tencentcloud_sdk_cvm_hmacsha256() {
    run_suite(&Sdk { script: "tencent_sdk.py", variant: "cvm-hmacsha256", family: Family::Cvm }, CVM_CASES).await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn tencentcloud_sdk_lighthouse_tc3() {
    let sdk = Sdk { script: "tencent_sdk.py", variant: "lighthouse-tc3", family: Family::Lighthouse };
    run_suite(&sdk, LIGHTHOUSE_CASES).await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn aliyun_python_sdk_core_rpc() {
    run_suite(&Sdk { script: "aliyun_core.py", variant: "rpc", family: Family::AliyunCore }, &CORE_CASES).await;
}

/// aliyun-python-sdk-core asking for XML (`set_accept_format('xml')`): its RPC requests carry an
/// `x-acs-action` header, and the answers (errors included) must still be the XML it asked for.
#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn aliyun_python_sdk_core_rpc_asks_for_xml() {
    let python = python();
    let env = Env::matrix().await;
    let host = env.host();
    for (n, case) in XML_CASES.iter().enumerate() {
        let label = format!("aliyun_core.py --variant xml {}", case.scenario);
        let before = snapshot(&env);
        let calls = run_script(&python, &env, ("aliyun_core.py", "xml"), case.scenario, None).await;
        assert_eq!(calls.len(), 1, "{label}: one SDK call, one line: {calls:?}");
        let call = &calls[0];
        let lines = env.audit_lines();
        assert_eq!(lines.len(), n + 1, "{label}: one request per scenario, no retries");
        let line = lines.last().unwrap();
        assert_eq!(call["call"], "AttachKeyPair", "{label}: {call}");
        assert_eq!(call["content_type"], "text/xml;charset=utf-8", "{label}: {call}");
        assert!(call.get("exception").is_none(), "{label}: the body is XML: {call}");
        assert_eq!(call["request_id"], line.request_id.as_str(), "{label}: the gateway's RequestId: {call}");
        assert_eq!(call["http_status"], case.status, "{label}: {call}");
        assert_eq!(line.status, case.status, "{label}");
        match case.code {
            None => {
                assert_eq!(call["root"], "AttachKeyPairResponse", "{label}: {call}");
                assert_eq!(call["code"], Value::Null, "{label}: {call}");
                assert_eq!(line.code, "Success", "{label}");
                check_xml_result(call, "0", "true", "200", "successful", &label);
            }
            Some(code) if case.status == 200 => {
                assert_eq!(call["root"], "AttachKeyPairResponse", "{label}: {call}");
                assert_eq!(line.code, code, "{label}");
                check_xml_result(call, "1", "false", "400", code, &label);
            }
            Some(code) => {
                assert_eq!(call["root"], "Error", "{label}: {call}");
                assert_eq!((call["code"].as_str(), line.code.as_str()), (Some(code), code), "{label}: {call}");
                assert!(!call["message"].as_str().unwrap_or_default().is_empty(), "{label}: {call}");
                assert_eq!(call["host_id"], host.as_str(), "{label}: {call}");
            }
        }
        check_state(&env, case.code.is_some(), case.after, &before, &label);
    }
}

/// ECS's bind answer as XML text: the counts and the one instance's result.
fn check_xml_result(call: &Value, fail_count: &str, success: &str, code: &str, message: &str, label: &str) {
    let response = &call["response"];
    assert_eq!(
        (&response["TotalCount"], &response["FailCount"], &response["KeyPairName"]),
        (&json!("1"), &json!(fail_count), &json!("FinanceJoshuaV25")),
        "{label}: {call}"
    );
    let results = response["Results"].as_array().unwrap_or_else(|| panic!("{label}: no Results: {call}"));
    assert_eq!(results.len(), 1, "{label}: {call}");
    let expected = json!({
        "InstanceId": call["request"]["InstanceIds"][0],
        "Success": success,
        "Code": code,
        "Message": message,
    });
    assert_eq!(results[0], expected, "{label}: {call}");
}

/// An XML case: the HTTP status, and the ECS code (`None`: success; with 200, the one instance's code).
struct XmlCase {
    scenario: &'static str,
    status: u16,
    code: Option<&'static str>,
    after: &'static [After],
}

const XML_CASES: &[XmlCase] = &[
    XmlCase {
        scenario: "bind",
        status: 200,
        code: None,
        after: &[(ECS, "i-m5eg7be9ndloji64jknv", &["FinanceJoshuaV25"], None)],
    },
    XmlCase {
        scenario: "unknown-instance",
        status: 200,
        code: Some("InvalidInstanceIds.ValueNotSupported"),
        after: &[],
    },
    XmlCase { scenario: "too-many", status: 403, code: Some("InstanceKeyPairLimitExceeded"), after: &[] },
];

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn alibabacloud_ecs_tea_acs3() {
    run_suite(&Sdk { script: "aliyun_tea.py", variant: "acs3", family: Family::AliyunTea }, &TEA_CASES).await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn alibabacloud_ecs_tea_rpc_v2() {
    run_suite(&Sdk { script: "aliyun_tea.py", variant: "v2", family: Family::AliyunTea }, &TEA_CASES).await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn qcloudapi_legacy_get_hmacsha1() {
    run_legacy_suite("get-hmacsha1").await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn qcloudapi_legacy_get_hmacsha256() {
    run_legacy_suite("get-hmacsha256").await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn qcloudapi_legacy_post_hmacsha1() {
    run_legacy_suite("post-hmacsha1").await;
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn qcloudapi_legacy_post_hmacsha256() {
    run_legacy_suite("post-hmacsha256").await;
}

// === running and checking ===

/// Runs every case in order against one fresh gateway.
async fn run_suite(sdk: &Sdk, cases: &[Case]) {
    let python = python();
    let env = Env::matrix().await;
    env.sim().with_state(|s| s.set_operation_delay_ms(0));
    for (n, case) in cases.iter().enumerate() {
        let label = format!("{} --variant {} {}", sdk.script, sdk.variant, case.scenario);
        let before = snapshot(&env);
        let calls = run_script(&python, &env, (sdk.script, sdk.variant), case.scenario, None).await;
        assert_eq!(calls.len(), 1, "{label}: one SDK call, one line: {calls:?}");
        let call = &calls[0];
        assert_eq!(call["call"], sdk.family.call(case.scenario), "{label}: {call}");

        // The RequestId the SDK reports is the gateway's: one audit line per script so far, and this
        // call's line has it.
        let lines = env.audit_lines();
        assert_eq!(lines.len(), n + 1, "{label}: one request per scenario, no retries");
        let line = lines.last().unwrap();
        let request_id = call["request_id"].as_str().unwrap_or_else(|| panic!("{label}: no RequestId: {call}"));
        assert_eq!(request_id, line.request_id, "{label}: the SDK reports the gateway's RequestId: {call}");
        assert!(
            !line.upstream_request_ids.iter().any(|u| u == request_id),
            "{label}: the upstream's RequestId leaked to the caller"
        );

        check_answer(sdk, case, call, line, &label);
        check_state(&env, !matches!(case.expect, Expect::Ok), case.after, &before, &label);
    }
}

/// Runs every legacy case in order against one fresh gateway serving HTTPS, with `variant`'s request
/// method and signature method.
async fn run_legacy_suite(variant: &'static str) {
    let python = python();
    let certs = CertDir::new(&["127.0.0.1"]);
    let env = Env::matrix_over_tls(certs.cert.clone(), certs.key.clone()).await;
    let script = "legacy_sdk.py";
    for (n, case) in LEGACY_CASES.iter().enumerate() {
        let label = format!("{script} --variant {variant} {}", case.scenario);
        let before = snapshot(&env);
        let calls = run_script(&python, &env, (script, variant), case.scenario, Some(&certs.cert)).await;
        assert_eq!(calls.len(), 1, "{label}: one SDK call, one line: {calls:?}");
        let call = &calls[0];
        assert_eq!(call["call"], legacy_call(case.scenario), "{label}: {call}");
        assert_eq!(call["ok"], true, "{label}: the SDK returns the body of every HTTP 200: {call}");

        let lines = env.audit_lines();
        assert_eq!(lines.len(), n + 1, "{label}: one request per scenario, no retries");
        let line = lines.last().unwrap();
        assert_eq!(line.dialect.as_deref(), Some("tencent_v2"), "{label}");
        assert_eq!(line.action.as_deref(), Some(legacy_call(case.scenario)), "{label}");
        assert_eq!(line.code, case.expect.wire_code(), "{label}: the code on the wire");
        assert_eq!(line.status, 200, "{label}: the legacy endpoint always answers HTTP 200");

        check_legacy_body(case.expect, call, line, &label);
        check_state(&env, !case.expect.is_ok(), case.after, &before, &label);
    }
}

/// The body the legacy SDK returned is exactly the dialect's.
fn check_legacy_body(expect: Legacy, call: &Value, line: &AuditEntry, label: &str) {
    let body = &call["response"];
    let message = |pointer: &str, fragment: &str| -> String {
        let message = body.pointer(pointer).and_then(Value::as_str).unwrap_or_default();
        assert!(message.contains(fragment), "{label}: the message names `{fragment}`: {call}");
        message.to_owned()
    };
    let expected = match expect {
        Legacy::NewOk => json!({"Response": {"RequestId": line.request_id}}),
        Legacy::NewError { code, fragment } => {
            let message = message("/Response/Error/Message", fragment);
            json!({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": line.request_id}})
        }
        Legacy::OldOk => json!({"code": 0, "message": "", "codeDesc": "Success"}),
        Legacy::OldError { number, code, fragment } => {
            json!({"code": number, "message": message("/message", fragment), "codeDesc": code})
        }
    };
    assert_eq!(body, &expected, "{label}: the body the SDK returned");
    if matches!(expect, Legacy::NewOk | Legacy::NewError { .. }) {
        // The RequestId the SDK's caller sees is the gateway's, never the upstream's.
        assert_eq!(call["request_id"], line.request_id, "{label}: {call}");
        assert!(!line.upstream_request_ids.contains(&line.request_id), "{label}: the upstream's RequestId leaked");
    }
}

/// A fresh self-signed certificate and key for the names, removed on drop.
struct CertDir {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl CertDir {
    fn new(names: &[&str]) -> CertDir {
        let dir = std::env::temp_dir().join(format!("crossgate-interop-{}", uuid::Uuid::new_v4()));
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let (cert, key) = crossgate::certs::write(&dir, &names).expect("a test certificate");
        CertDir { dir, cert, key }
    }
}

impl Drop for CertDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The SDK's verdict against the case's expectation.
fn check_answer(sdk: &Sdk, case: &Case, call: &Value, line: &AuditEntry, label: &str) {
    match case.expect {
        Expect::Ok => {
            assert_eq!(call["ok"], true, "{label}: the SDK call must succeed: {call}");
            assert_eq!(line.code, "Success", "{label}");
            let response = &call["response"];
            assert_eq!(response["RequestId"], call["request_id"], "{label}: {call}");
            if !sdk.family.is_tencent() {
                check_ecs_result(call, "0", true, "200", "successful", label);
            }
        }
        Expect::FailedInstance { code, status } => {
            assert_eq!(call["ok"], true, "{label}: ECS answers a failed instance with HTTP 200: {call}");
            assert_eq!(line.code, code, "{label}");
            check_ecs_result(call, "1", false, status, code, label);
        }
        Expect::Raised { code, wire, status } => {
            assert_eq!(call["ok"], false, "{label}: the SDK call must fail: {call}");
            assert_eq!(call["exception"], sdk.family.exception(status), "{label}: {call}");
            assert_eq!(call["code"], code, "{label}: the code the SDK reports: {call}");
            assert_eq!(line.code, wire, "{label}: the code on the wire");
            assert_eq!(line.status, status, "{label}: the HTTP status");
            if !sdk.family.is_tencent() {
                assert_eq!(call["http_status"], status, "{label}: {call}");
            }
            if case.scenario == "bad-secret" {
                check_signature_message(sdk, call, label);
            }
        }
    }
}

/// ECS's bind answer: counts as strings and the one instance's result.
fn check_ecs_result(call: &Value, fail_count: &str, success: bool, code: &str, message: &str, label: &str) {
    let response = &call["response"];
    assert_eq!(response["TotalCount"], "1", "{label}: {call}");
    assert_eq!(response["FailCount"], fail_count, "{label}: {call}");
    assert_eq!(response["KeyPairName"], "FinanceJoshuaV25", "{label}: {call}");
    let results = response["Results"]["Result"].as_array().unwrap_or_else(|| panic!("{label}: no Results: {call}"));
    assert_eq!(results.len(), 1, "{label}: {call}");
    let result = &results[0];
    assert_eq!(result["InstanceId"], call["request"]["InstanceIds"][0], "{label}: {call}");
    assert_eq!(result["Success"], success, "{label}: {call}");
    assert_eq!(result["Code"], code, "{label}: {call}");
    assert_eq!(result["Message"], message, "{label}: {call}");
}

/// A wrong secret: the SDK must be able to tell a wrong secret from a wrongly built request, which
/// needs the server's string to sign in the message to equal the SDK's own.
fn check_signature_message(sdk: &Sdk, call: &Value, label: &str) {
    let message = call["message"].as_str().unwrap_or_default();
    match sdk.family {
        Family::Cvm | Family::Lighthouse => {
            assert!(message.contains("signature"), "{label}: {call}");
        }
        Family::AliyunCore => {
            // Reaching `InvalidAccessKeySecret` at all proves the strings were equal; check it was signed.
            let own = call["sdk_string_to_sign"].as_str().unwrap_or_default();
            assert!(own.starts_with("POST&%2F&"), "{label}: {call}");
            assert!(message.starts_with("The AccessKeySecret is incorrect."), "{label}: {call}");
        }
        Family::AliyunTea => {
            let own = call["sdk_string_to_sign"].as_str().filter(|s| !s.is_empty());
            let own = own.unwrap_or_else(|| panic!("{label}: the SDK's string to sign was not recorded: {call}"));
            let expected = format!("server string to sign is:{own} request id:");
            assert!(message.contains(&expected), "{label}: the server's string to sign is the SDK's own: {call}");
        }
    }
}

/// Every instance's keys and state on every simulated cloud.
type Snapshot = BTreeMap<(Provider, String), (Vec<String>, String)>;

fn snapshot(env: &Env) -> Snapshot {
    env.sim().with_state(|s| {
        s.tick(SystemClock.now_ms() + 1);
        [CVM, LIGHTHOUSE, ECS]
            .into_iter()
            .flat_map(|p| s.instances(p).iter().map(move |i| ((p, i.id.clone()), (i.keys.clone(), i.state.clone()))))
            .collect()
    })
}

/// A refused call changed nothing anywhere; every call left the named instances as `expected` says.
fn check_state(env: &Env, refused: bool, expected: &[After], before: &Snapshot, label: &str) {
    let after = snapshot(env);
    if refused {
        assert_eq!(&after, before, "{label}: a refused request changed the clouds");
    }
    for (provider, id, keys, state) in expected {
        let (got_keys, got_state) =
            after.get(&(*provider, (*id).to_owned())).unwrap_or_else(|| panic!("{label}: no {provider} {id}"));
        assert_eq!(got_keys, keys, "{label}: keys on {provider} {id}");
        if let Some(state) = state {
            assert_eq!(got_state, state, "{label}: state of {provider} {id}");
        }
    }
}

/// The Python with the SDKs; its absence fails the test.
fn python() -> PathBuf {
    match std::env::var_os(PYTHON_VAR) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "{PYTHON_VAR} is not set: the interop tests need a Python with the SDKs of \
             tests/interop/requirements.txt installed. Run tests/run.sh, or set {PYTHON_VAR} to that \
             Python (e.g. target/interop-venv/bin/python)."
        ),
    }
}

/// Runs `script ADDR SCENARIO --variant V`, bounded in time, trusting `ca_file` for HTTPS when given;
/// its JSON lines.
async fn run_script(
    python: &PathBuf,
    env: &Env,
    (script, variant): (&str, &str),
    scenario: &str,
    ca_file: Option<&Path>,
) -> Vec<Value> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let mut command = tokio::process::Command::new(python);
    command
        .current_dir(&dir)
        .arg(dir.join(script))
        .arg(env.started.gateway.addr.to_string())
        .arg(scenario)
        .args(["--variant", variant])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for var in PROXY_VARS {
        command.env_remove(var);
    }
    if let Some(ca_file) = ca_file {
        // OpenSSL's own variable: Python's default HTTPS context trusts the certificates it names.
        command.env("SSL_CERT_FILE", ca_file);
    }
    let label = format!("{script} {scenario} --variant {variant}");
    let output = match tokio::time::timeout(SCRIPT_TIMEOUT, command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("{label}: cannot run {}: {e}", python.display()),
        Err(_) => panic!("{label}: no answer within {} s", SCRIPT_TIMEOUT.as_secs()),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{label}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}", output.status);
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {l}\nstderr:\n{stderr}")))
        .collect()
}

// === migrations: state policies and key replication, through the official SDKs ===

/// Runs one scenario of `script --variant variant` against `env`: its one SDK call.
async fn one_call(env: &Env, script: &str, variant: &str, scenario: &str) -> Value {
    let calls = run_script(&python(), env, (script, variant), scenario, None).await;
    assert_eq!(calls.len(), 1, "{script} {scenario}: one SDK call: {calls:?}");
    calls.into_iter().next().unwrap()
}

/// A `[[keys]]` row for ECS's testKeyPairName with its public key, replicating.
fn ecs_key_row() -> crossgate::config::KeyOptions {
    crossgate::config::KeyOptions {
        replicate: true,
        public_key: Some(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL7NFhv4rlVDZSU1/RTwoXD7wewSk+UhZDgaKBCW5m+5 test@ecs".into(),
        ),
    }
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn sdks_through_the_state_policies() {
    use crossgate::config::{OnRunning, Reboot};
    // CVM: the SDK binds a RUNNING instance without ForceStop; the policy stops and restarts it.
    let env = Env::matrix_with(|c| c.upstreams.get_mut("cvm").unwrap().policy.running = OnRunning::ForceStop).await;
    let call = one_call(&env, "tencent_sdk.py", "cvm-tc3", "running").await;
    assert_eq!(call["ok"], true, "{call}");
    let vm = env.sim().with_state(|s| s.instance(CVM, "ins-w34e5rl9").unwrap().clone());
    assert_eq!((vm.state.as_str(), vm.keys.as_slice()), ("RUNNING", ["skey-4e5ty7i8".to_owned()].as_slice()));
    let line = env.audit_lines().pop().unwrap();
    assert_eq!(call["request_id"], line.request_id.as_str());
    assert!(line.upstream_calls.iter().any(|c| c.action == "stop_instances"), "{:?}", line.upstream_calls);

    // ECS: bound and rebooted, so the key is in effect when the SDK gets its answer.
    let env = Env::matrix_with(|c| c.upstreams.get_mut("ecs").unwrap().policy.reboot = Reboot::IfRunning).await;
    let call = one_call(&env, "aliyun_tea.py", "acs3", "bind").await;
    assert_eq!(call["ok"], true, "{call}");
    let effective = env.sim().with_state(|s| s.effective_key(ECS, "i-m5eg7be9ndloji64jknv").map(str::to_owned));
    assert_eq!(effective.as_deref(), Some("FinanceJoshuaV25"));

    // Lighthouse: the SDK's answer comes once the operation is done.
    let env =
        Env::matrix_with(|c| c.upstreams.get_mut("lighthouse").unwrap().policy.wait = Some(Duration::from_secs(10)))
            .await;
    env.sim().with_state(|s| s.set_operation_delay_ms(300));
    let call = one_call(&env, "tencent_sdk.py", "lighthouse-tc3", "bind").await;
    assert_eq!(call["ok"], true, "{call}");
    let keys = env.sim().with_state(|s| s.instance(LIGHTHOUSE, "lhins-ruy9d2tw").unwrap().keys.clone());
    assert_eq!(keys, ["lhkp-f7rjie1q"], "bound by the time the SDK returned");
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn sdks_see_a_clear_error_when_a_sequence_fails_in_the_middle() {
    use crossgate::config::{Endpoint, OnRunning};
    let sim = Env::matrix().await;
    let failing = BTreeMap::from([("StartInstances", "ResourceInsufficient.CloudDiskUnavailability")]);
    let proxy = crate::fault_proxy::FaultProxy::start(sim.started.simulator.as_ref().unwrap().0.addr, failing).await;
    let env = Env::matrix_with(|c| {
        let cvm = c.upstreams.get_mut("cvm").unwrap();
        cvm.policy.running = OnRunning::ForceStop;
        cvm.endpoint = Endpoint::Url { tls: false, authority: proxy.addr.to_string() };
    })
    .await;
    let call = one_call(&env, "tencent_sdk.py", "cvm-tc3", "running").await;
    assert_eq!(call["ok"], false, "{call}");
    assert_eq!(call["exception"], "TencentCloudSDKException");
    assert_eq!(call["code"], "ResourceInsufficient.CloudDiskUnavailability", "{call}");
    assert!(call["message"].as_str().unwrap().contains("starting it again failed"), "{call}");
    let line = env.audit_lines().pop().unwrap();
    assert_eq!(call["request_id"], line.request_id.as_str());
    let actions: Vec<&str> = line.upstream_calls.iter().map(|c| c.action.as_str()).collect();
    assert_eq!(
        actions,
        ["describe_instances", "stop_instances", "describe_instances", "associate_keys", "start_instances"]
    );
    let vm = sim.sim().with_state(|s| s.instance(CVM, "ins-w34e5rl9").unwrap().clone());
    assert_eq!(vm.state, "STOPPED", "left stopped, as the error says");
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn sdks_bind_keys_their_target_lacked_through_replication() {
    let state = std::env::temp_dir().join(format!("crossgate-interop-keys-{}.json", uuid::Uuid::new_v4()));
    let env = Env::matrix_with(|c| {
        c.replication.state = state.clone();
        c.keys.push(BTreeMap::from([(ECS, "testKeyPairName".to_owned())]));
        c.key_options.push(ecs_key_row());
    })
    .await;
    // A Tencent key (CVM only) bound by the CVM SDK on an ECS machine.
    let call = one_call(&env, "tencent_sdk.py", "cvm-tc3", "replicate").await;
    assert_eq!(call["ok"], true, "{call}");
    let keys = env.sim().with_state(|s| s.instance(ECS, "i-m5eg7be9ndloji64jknv").unwrap().keys.clone());
    assert_eq!(keys, ["releasebot"]);
    // An ECS key, with its public key configured, bound by the ECS SDK on a CVM machine.
    let call = one_call(&env, "aliyun_tea.py", "acs3", "replicate").await;
    assert_eq!(call["ok"], true, "{call}");
    let imported =
        env.sim().with_state(|s| s.key_pairs(CVM).iter().find(|k| k.name == "testKeyPairName").map(|k| k.id.clone()));
    let imported = imported.expect("imported on CVM");
    let keys = env.sim().with_state(|s| s.instance(CVM, "ins-1e4r6y8i").unwrap().keys.clone());
    assert_eq!(keys, [imported]);
    let line = env.audit_lines().pop().unwrap();
    assert!(line.upstream_calls.iter().any(|c| c.upstream == "cvm" && c.action == "import_key"));
    assert!(line.steps.iter().any(|s| s.contains("fingerprint matches")), "{:?}", line.steps);
    // And on Lighthouse (i-bbbblh01 is lhins-3k9d8f7s there).
    let call = one_call(&env, "aliyun_tea.py", "acs3", "replicate-elsewhere").await;
    assert_eq!(call["ok"], true, "{call}");
    let imported = env.sim().with_state(|s| {
        s.tick(u64::MAX / 2);
        s.key_pairs(LIGHTHOUSE).iter().find(|k| k.name == "testKeyPairName").map(|k| k.id.clone())
    });
    let imported = imported.expect("imported on Lighthouse");
    let keys = env.sim().with_state(|s| s.instance(LIGHTHOUSE, "lhins-3k9d8f7s").unwrap().keys.clone());
    assert!(keys.contains(&imported), "{keys:?}");
}

#[tokio::test]
#[ignore = "needs the SDK virtualenv; run by tests/run.sh"]
async fn sdks_see_a_clear_error_when_the_bind_after_an_import_fails() {
    use crossgate::config::Endpoint;
    let sim = Env::matrix().await;
    let failing = BTreeMap::from([("AttachKeyPair", "IncorrectInstanceStatus")]);
    let proxy = crate::fault_proxy::FaultProxy::start(sim.started.simulator.as_ref().unwrap().0.addr, failing).await;
    let env = Env::matrix_with(|c| {
        for up in c.upstreams.values_mut() {
            up.endpoint = Endpoint::Url { tls: false, authority: proxy.addr.to_string() };
        }
        c.replication.state =
            std::env::temp_dir().join(format!("crossgate-interop-keys-{}.json", uuid::Uuid::new_v4()));
    })
    .await;
    let call = one_call(&env, "tencent_sdk.py", "cvm-tc3", "replicate").await;
    assert_eq!(call["ok"], false, "{call}");
    assert_eq!(call["exception"], "TencentCloudSDKException");
    assert!(call["code"].as_str().is_some_and(|c| !c.is_empty()), "{call}");
    assert_eq!(proxy.seen(), ["DescribeKeyPairs", "DescribeKeyPairs", "ImportKeyPair", "AttachKeyPair"]);
    let line = env.audit_lines().pop().unwrap();
    assert_eq!(call["request_id"], line.request_id.as_str());
    assert!(line.steps.iter().any(|s| s.contains("imported on aliyun-ecs as releasebot")), "{:?}", line.steps);
    let imported = sim.sim().with_state(|s| s.key_pairs(ECS).iter().any(|k| k.name == "releasebot"));
    assert!(imported, "the import stands; the bind did not happen");
    let keys = sim.sim().with_state(|s| s.instance(ECS, "i-m5eg7be9ndloji64jknv").unwrap().keys.clone());
    assert!(keys.is_empty());
}
