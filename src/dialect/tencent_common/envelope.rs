//! The `{"Response": {...}}` envelope of API 3.0 and the legacy new-style actions, both ways
//! (protocols.md 3.2, 4.2, 4.6).
//!
//! - Success: `{"Response": {<action fields>, "RequestId": "..."}}`; error:
//!   `{"Response": {"Error": {"Code": "...", "Message": "..."}, "RequestId": "..."}}`. Always HTTP 200 and
//!   `Content-Type: application/json` exactly: the Python SDK looks at `Error` only for that exact value.
//! - Tencent batches are all or nothing: an [`Outcome`] with per-instance failures is answered as an error
//!   with the first failure's code, and a message naming which instances succeeded and which failed.
//! - An upstream's reply becomes an [`Outcome`] (its RequestId kept) or a [`Fault`] carrying the upstream's
//!   code, message and RequestId; a reply that is not this envelope is `UpstreamUnavailable`.
//! - A key look-up answers the page the caller asked for (`Offset`/`Limit`, else the first page of the
//!   default size) with `TotalCount` counting every match; [`total_count`] reads it back.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{media, shown};
use crate::dialect::{Dialect, Reply, WireResponse, params};
use crate::mapping::{Mappings, RenderedError};
use crate::model::{
    Action, Answer, Code, Fault, InstanceInfo, InstanceResult, KeyPairInfo, Operation, OperationState, OsFamily,
    Outcome, Page, Provider, UpstreamError,
};

/// Wire values of the look-up fields.
mod value {
    pub(super) const LINUX_UNIX: &str = "LINUX_UNIX";
    pub(super) const WINDOWS: &str = "WINDOWS";
    /// CVM has no OS enum: an `OsName` starting with this is Windows (protocols.md 4.6).
    pub(super) const WINDOWS_OS_NAME_PREFIX: &str = "Windows";
    pub(super) const OPERATING: &str = "OPERATING";
    pub(super) const SUCCESS: &str = "SUCCESS";
    pub(super) const FAILED: &str = "FAILED";
}

// === wire shapes ===

#[derive(Serialize)]
struct Envelope<T> {
    #[serde(rename = "Response")]
    response: T,
}

#[derive(Serialize)]
struct ErrorResponse<'a> {
    #[serde(rename = "Error")]
    error: ErrorFields<&'a str>,
    #[serde(rename = "RequestId")]
    request_id: &'a str,
}

#[derive(Serialize, Deserialize)]
struct ErrorFields<S> {
    #[serde(rename = "Code")]
    code: S,
    #[serde(rename = "Message")]
    message: S,
}

#[derive(Serialize)]
struct BindResponse<'a> {
    #[serde(rename = "RequestId")]
    request_id: &'a str,
}

#[derive(Serialize, Deserialize)]
struct KeyPairsResponse {
    #[serde(rename = "TotalCount")]
    total_count: u64,
    #[serde(rename = "KeyPairSet")]
    key_pair_set: Vec<KeyPairWire>,
}

#[derive(Serialize, Deserialize)]
struct KeyPairWire {
    #[serde(rename = "KeyId")]
    key_id: String,
    #[serde(rename = "KeyName", default)]
    key_name: Option<String>,
    #[serde(rename = "AssociatedInstanceIds", default)]
    associated_instance_ids: Option<Vec<String>>,
    #[serde(rename = "PublicKey", default, skip_serializing_if = "Option::is_none")]
    public_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ImportResponse {
    #[serde(rename = "KeyId")]
    key_id: String,
}

#[derive(Serialize, Deserialize)]
struct InstancesResponse {
    #[serde(rename = "TotalCount")]
    total_count: u64,
    #[serde(rename = "InstanceSet")]
    instance_set: Vec<InstanceWire>,
}

#[derive(Serialize, Deserialize)]
struct InstanceWire {
    #[serde(rename = "InstanceId")]
    instance_id: String,
    #[serde(rename = "InstanceState", default)]
    instance_state: Option<String>,
    #[serde(rename = "OsName", default)]
    os_name: Option<String>,
    /// Lighthouse only.
    #[serde(rename = "PlatformType", default, skip_serializing_if = "Option::is_none")]
    platform_type: Option<String>,
    #[serde(rename = "LoginSettings", default)]
    login_settings: Option<LoginSettingsWire>,
    #[serde(rename = "LatestOperation", default)]
    latest_operation: Option<String>,
    #[serde(rename = "LatestOperationState", default)]
    latest_operation_state: Option<String>,
    #[serde(rename = "LatestOperationRequestId", default)]
    latest_operation_request_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LoginSettingsWire {
    #[serde(rename = "KeyIds", default)]
    key_ids: Option<Vec<String>>,
}

/// Success fields with the RequestId last, as Tencent writes them.
#[derive(Serialize)]
struct WithRequestId<'a, T> {
    #[serde(flatten)]
    fields: T,
    #[serde(rename = "RequestId")]
    request_id: &'a str,
}

// === encoding ===

/// Answers a caller in the envelope: success fields per answer, or the error the dialect's table renders.
pub(crate) fn encode_envelope(reply: &Reply, result: &Result<Outcome, Fault>, maps: &Mappings) -> WireResponse {
    let request_id = reply.request_id.as_str();
    let body = match result {
        Err(fault) => error_body(&maps.render(reply.dialect, fault), request_id),
        Ok(outcome) => match partial_failure(reply.dialect, outcome, maps) {
            Some(rendered) => error_body(&rendered, request_id),
            None => {
                let limits = maps.limits(reply.dialect);
                let page = reply.page.unwrap_or(Page { offset: 0, limit: limits.lookup_page_size });
                success_body(reply.dialect, &outcome.answer, request_id, page)
            }
        },
    };
    json_response(body)
}

/// A JSON reply: HTTP 200, `content-type: application/json` exactly.
pub(crate) fn json_response(body: Vec<u8>) -> WireResponse {
    WireResponse { status: 200, headers: vec![("content-type", media::JSON.to_owned())], body }
}

/// The error for an all-or-nothing caller when an outcome carries per-instance failures: the first
/// failure's code, and a message that names which instances succeeded and which failed.
pub(crate) fn partial_failure(dialect: Dialect, outcome: &Outcome, maps: &Mappings) -> Option<RenderedError> {
    let (_, first) = outcome.first_failure()?;
    let mut rendered = maps.render(dialect, first);
    if let Answer::Bind(results) = &outcome.answer {
        let succeeded: Vec<&str> = results.iter().filter(|r| r.result.is_ok()).map(|r| r.instance.as_str()).collect();
        let failed: Vec<String> = results
            .iter()
            .filter_map(|r| {
                r.result.as_ref().err().map(|f| format!("{} ({})", r.instance, maps.render(dialect, f).code))
            })
            .collect();
        let list = |v: &[&str]| if v.is_empty() { "none".to_owned() } else { v.join(", ") };
        let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
        rendered.message = format!(
            "{} [the request was not applied to every instance: succeeded: {}; failed: {}]",
            rendered.message,
            list(&succeeded),
            list(&failed)
        );
    }
    Some(rendered)
}

fn error_body(rendered: &RenderedError, request_id: &str) -> Vec<u8> {
    let error = ErrorFields { code: rendered.code.as_str(), message: rendered.message.as_str() };
    to_vec(&Envelope { response: ErrorResponse { error, request_id } })
}

/// The success fields; a key look-up shows `page` of its keys.
fn success_body(dialect: Dialect, answer: &Answer, request_id: &str, page: Page) -> Vec<u8> {
    match answer {
        Answer::Bind(_) | Answer::Done => to_vec(&Envelope { response: BindResponse { request_id } }),
        Answer::Imported(key) => {
            let fields = ImportResponse { key_id: key.id.clone() };
            to_vec(&Envelope { response: WithRequestId { fields, request_id } })
        }
        Answer::KeyPairs(keys) => {
            let fields = KeyPairsResponse {
                total_count: keys.len() as u64,
                key_pair_set: page.of(keys).iter().map(key_pair_wire).collect(),
            };
            to_vec(&Envelope { response: WithRequestId { fields, request_id } })
        }
        Answer::Instances(instances) => {
            let fields = InstancesResponse {
                total_count: instances.len() as u64,
                instance_set: instances.iter().map(|i| instance_wire(dialect, i)).collect(),
            };
            to_vec(&Envelope { response: WithRequestId { fields, request_id } })
        }
    }
}

fn key_pair_wire(key: &KeyPairInfo) -> KeyPairWire {
    KeyPairWire {
        key_id: key.id.clone(),
        key_name: Some(key.name.clone()),
        associated_instance_ids: Some(key.instances.clone()),
        public_key: key.public_key.clone(),
    }
}

fn instance_wire(dialect: Dialect, instance: &InstanceInfo) -> InstanceWire {
    let platform_type = (dialect == Dialect::TencentLighthouse).then(|| {
        match instance.os {
            OsFamily::Linux => value::LINUX_UNIX,
            OsFamily::Windows => value::WINDOWS,
        }
        .to_owned()
    });
    InstanceWire {
        instance_id: instance.id.clone(),
        instance_state: Some(instance.state.clone()),
        os_name: Some(instance.os_name.clone()),
        platform_type,
        login_settings: Some(LoginSettingsWire { key_ids: Some(instance.keys.clone()) }),
        latest_operation: instance.latest_operation.clone(),
        latest_operation_state: instance.latest_operation_state.map(|s| {
            match s {
                OperationState::Operating => value::OPERATING,
                OperationState::Success => value::SUCCESS,
                OperationState::Failed => value::FAILED,
            }
            .to_owned()
        }),
        latest_operation_request_id: instance.latest_operation_request_id.clone(),
    }
}

fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; an empty body would surface in every test.
    serde_json::to_vec(value).unwrap_or_default()
}

// === decoding an upstream's reply ===

/// Where an upstream's error codes are looked up: the provider that answered and the dialect table that
/// knows its codes (the legacy endpoint's table for `/v2/index.php`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Upstream {
    /// The provider, recorded in the fault.
    pub(crate) provider: Provider,
    /// The error table that classifies the provider's codes.
    pub(crate) table: Dialect,
}

/// Reads an upstream's reply: the envelope's `Error` as a fault, or the action's fields as an outcome.
pub(crate) fn decode_envelope(
    upstream: Upstream,
    status: u16,
    body: &[u8],
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    let response = response_object(upstream, status, body)?;
    decode_response_object(upstream, response, op, maps)
}

/// The parsed body of an upstream's reply, after the status and depth checks.
pub(crate) fn parse_reply(upstream: Upstream, status: u16, body: &[u8]) -> Result<Value, Fault> {
    if status != 200 {
        return Err(garbage(upstream, format!("HTTP status {status} (Tencent always answers 200)")));
    }
    params::check_json_depth("reply", body).map_err(|_| garbage(upstream, "JSON nested too deeply".into()))?;
    serde_json::from_slice(body)
        .map_err(|e| garbage(upstream, format!("a body that is not JSON ({})", shown(&e.to_string()))))
}

fn response_object(upstream: Upstream, status: u16, body: &[u8]) -> Result<serde_json::Map<String, Value>, Fault> {
    match parse_reply(upstream, status, body)? {
        Value::Object(mut top) => match top.remove("Response") {
            Some(Value::Object(response)) => Ok(response),
            _ => Err(garbage(upstream, "JSON without a `Response` object".into())),
        },
        _ => Err(garbage(upstream, "JSON that is not an object".into())),
    }
}

/// Reads the inside of `{"Response": {...}}`.
pub(crate) fn decode_response_object(
    upstream: Upstream,
    mut response: serde_json::Map<String, Value>,
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    let request_id = match response.remove("RequestId") {
        Some(Value::String(id)) => id,
        _ => return Err(garbage(upstream, "a `Response` without a `RequestId` string".into())),
    };
    if let Some(error) = response.remove("Error") {
        let fields: ErrorFields<String> = serde_json::from_value(error).map_err(|e| {
            garbage(upstream, format!("an `Error` that is not {{Code, Message}} ({})", shown(&e.to_string())))
        })?;
        return Err(upstream_fault(maps, upstream, &fields.code, &fields.message, &request_id));
    }
    let shape = |e: serde_json::Error| {
        garbage(upstream, format!("a `Response` of an unexpected shape ({})", shown(&e.to_string())))
    };
    let answer = match op.action {
        Action::AssociateKeys | Action::DisassociateKeys => Answer::Bind(all_succeeded(op)),
        Action::DescribeKeys => {
            let r: KeyPairsResponse = serde_json::from_value(Value::Object(response)).map_err(shape)?;
            Answer::KeyPairs(r.key_pair_set.into_iter().map(key_pair_info).collect())
        }
        Action::DescribeInstances => {
            let r: InstancesResponse = serde_json::from_value(Value::Object(response)).map_err(shape)?;
            Answer::Instances(r.instance_set.into_iter().map(instance_info).collect())
        }
        Action::ImportKey => {
            let r: ImportResponse = serde_json::from_value(Value::Object(response)).map_err(shape)?;
            let name = op.keys.as_slice().first().cloned().unwrap_or_default();
            Answer::Imported(KeyPairInfo {
                id: r.key_id,
                name,
                instances: Vec::new(),
                public_key: op.public_key.clone(),
                fingerprint: None,
            })
        }
        Action::StartInstances | Action::StopInstances | Action::RebootInstances => Answer::Done,
    };
    Ok(Outcome { request_id, answer })
}

/// `Response.TotalCount` of a look-up's reply, when it has one.
pub(crate) fn total_count(body: &[u8]) -> Option<usize> {
    params::check_json_depth("reply", body).ok()?;
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("Response")?.get("TotalCount")?.as_u64().and_then(|n| usize::try_from(n).ok())
}

/// A Tencent success means every instance succeeded.
pub(crate) fn all_succeeded(op: &Operation) -> Vec<InstanceResult> {
    op.instances.iter().map(|i| InstanceResult { instance: i.clone(), result: Ok(()) }).collect()
}

fn key_pair_info(k: KeyPairWire) -> KeyPairInfo {
    KeyPairInfo {
        id: k.key_id,
        name: k.key_name.unwrap_or_default(),
        instances: k.associated_instance_ids.unwrap_or_default(),
        public_key: k.public_key,
        fingerprint: None,
    }
}

fn instance_info(i: InstanceWire) -> InstanceInfo {
    let os_name = i.os_name.unwrap_or_default();
    let os = match i.platform_type.as_deref() {
        Some(value::WINDOWS) => OsFamily::Windows,
        Some(value::LINUX_UNIX) => OsFamily::Linux,
        _ if os_name.starts_with(value::WINDOWS_OS_NAME_PREFIX) => OsFamily::Windows,
        _ => OsFamily::Linux,
    };
    InstanceInfo {
        id: i.instance_id,
        os,
        os_name,
        state: i.instance_state.unwrap_or_default(),
        keys: i.login_settings.and_then(|l| l.key_ids).unwrap_or_default(),
        latest_operation: i.latest_operation,
        latest_operation_state: i.latest_operation_state.as_deref().and_then(|s| match s {
            value::OPERATING => Some(OperationState::Operating),
            value::SUCCESS => Some(OperationState::Success),
            value::FAILED => Some(OperationState::Failed),
            _ => None,
        }),
        latest_operation_request_id: i.latest_operation_request_id,
    }
}

/// An upstream's error, classified through the table that knows its codes; its code, message and
/// RequestId stay visible.
pub(crate) fn upstream_fault(
    maps: &Mappings,
    upstream: Upstream,
    code: &str,
    message: &str,
    request_id: &str,
) -> Fault {
    if Dialect::of_provider(upstream.provider) == upstream.table {
        return maps.upstream_fault(upstream.provider, code, message, request_id);
    }
    let (kind, state) = maps.classify(upstream.table, code);
    let said = UpstreamError {
        provider: upstream.provider,
        code: code.to_owned(),
        message: message.to_owned(),
        request_id: request_id.to_owned(),
    };
    let fault = Fault::upstream(kind, message.to_owned(), Some(said));
    match state {
        Some(state) => fault.with_detail(state),
        None => fault,
    }
}

/// A reply that is not what a Tencent endpoint sends.
pub(crate) fn garbage(upstream: Upstream, what: String) -> Fault {
    Fault::upstream(Code::UpstreamUnavailable, format!("{} answered with {what}.", upstream.provider), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{Format, Style};

    fn reply(dialect: Dialect) -> Reply {
        Reply {
            dialect,
            style: Style::New,
            action: Some(Action::AssociateKeys),
            wire_action: "AssociateInstancesKeyPairs".into(),
            format: Format::Json,
            request_id: "req-1".into(),
            key_name: None,
            host: "cvm.tencentcloudapi.com".into(),
            page: None,
        }
    }

    fn keys(n: usize) -> Vec<KeyPairInfo> {
        (0..n)
            .map(|i| KeyPairInfo { id: format!("skey-{i:08}"), name: format!("k{i}"), ..KeyPairInfo::default() })
            .collect()
    }

    #[test]
    fn a_key_look_up_answers_the_page_asked_with_every_match_counted() {
        let maps = Mappings::embedded().unwrap();
        let outcome = Ok(Outcome { request_id: "up".into(), answer: Answer::KeyPairs(keys(130)) });
        let mut look_up = Reply { action: Some(Action::DescribeKeys), ..reply(Dialect::TencentCvm) };
        let shown = |reply: &Reply| {
            let v: Value = serde_json::from_slice(&encode_envelope(reply, &outcome, &maps).body).unwrap();
            let set = v["Response"]["KeyPairSet"].as_array().unwrap().clone();
            let names: Vec<String> = set.iter().map(|k| k["KeyName"].as_str().unwrap().to_owned()).collect();
            (v["Response"]["TotalCount"].as_u64().unwrap(), names)
        };
        let (total, names) = shown(&look_up);
        assert_eq!((total, names.len(), names[0].as_str()), (130, 20, "k0"), "no page named: the default 20");
        look_up.page = Some(Page { offset: 100, limit: 100 });
        let (total, names) = shown(&look_up);
        assert_eq!((total, names.len(), names[0].as_str()), (130, 30, "k100"));
        let body = encode_envelope(&look_up, &outcome, &maps).body;
        assert_eq!(total_count(&body), Some(130));
        assert_eq!(total_count(b"{\"Response\": {\"TotalCount\": \"1\"}}"), None);
        assert_eq!(total_count(b"not json"), None);
    }

    #[test]
    fn partial_failure_names_succeeded_and_failed_instances() {
        let maps = Mappings::embedded().unwrap();
        let outcome = Outcome {
            request_id: "up".into(),
            answer: Answer::Bind(vec![
                InstanceResult { instance: "ins-aaaaaaaa".into(), result: Ok(()) },
                InstanceResult {
                    instance: "ins-bbbbbbbb".into(),
                    result: Err(Fault::upstream(Code::InstanceNotFound, "gone", None)),
                },
            ]),
        };
        let resp = encode_envelope(&reply(Dialect::TencentCvm), &Ok(outcome), &maps);
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["Response"]["Error"]["Code"], "InvalidInstanceId.NotFound");
        let message = v["Response"]["Error"]["Message"].as_str().unwrap();
        assert!(message.contains("succeeded: ins-aaaaaaaa"), "{message}");
        assert!(message.contains("failed: ins-bbbbbbbb (InvalidInstanceId.NotFound)"), "{message}");
        assert_eq!(v["Response"]["RequestId"], "req-1");
        assert_eq!(resp.headers, [("content-type", "application/json".to_owned())]);
    }

    #[test]
    fn garbage_replies_are_upstream_unavailable() {
        let maps = Mappings::embedded().unwrap();
        let up = Upstream { provider: Provider::TencentCvm, table: Dialect::TencentCvm };
        let op = Operation::new(Action::DescribeKeys);
        for (status, body) in [
            (200, &b"not json"[..]),
            (500, br#"{"Response": {"RequestId": "r"}}"#),
            (200, br#"{"Response": {}}"#),
            (200, br#"{"Response": {"RequestId": "r", "KeyPairSet": 1, "TotalCount": 0}}"#),
            (200, br#"{"Response": {"RequestId": "r", "Error": "bad"}}"#),
            (200, br#"[]"#),
        ] {
            let fault = decode_envelope(up, status, body, &op, &maps).unwrap_err();
            assert_eq!(fault.code(), Code::UpstreamUnavailable, "{}", String::from_utf8_lossy(body));
        }
    }
}
