//! The Tencent legacy API 2.0 endpoint, `cvm.api.qcloud.com/v2/index.php` (protocols.md section 3).
//!
//! Two families of actions share the endpoint, told apart by the action's `style` in
//! `mappings/actions.toml`:
//! - new-style `AssociateInstancesKeyPairs` / `DisassociateInstancesKeyPairs` and the look-ups
//!   `DescribeKeyPairs` / `DescribeInstances` (`Version=2017-03-12` required; `InstanceIds.N`, `KeyIds.N`
//!   with the base inferred, `ForceStop` as `TRUE`/`True`/`true`, `Filters.N.Name` /
//!   `Filters.N.Values.M`), answered in the `{"Response": {...}}` envelope (§3.2, §3.5);
//! - old-style `BindInstanceKey` / `UnBindInstanceKey` (`instanceIds.n` 0-based, one `keyId`, no
//!   `Version`), answered `{"code": 0, "message": "", "codeDesc": "Success"}`, or on error
//!   `{"code": <number>, "message": "...", "codeDesc": "<string code>"}` (§3.3, §3.4). `code` is a JSON
//!   number: the Go SDK declares it `int`.
//!
//! Every reply is HTTP 200 with `content-type: application/json`. Requests are signed with signature v1
//! (`shared/reference/signing.md` §2), GET query or POST form; the signed host is the Host header as
//! received. The action's first letter may come in lower case, as the legacy documentation writes it
//! (`unBindInstanceKey`).
//!
//! The six functions follow the contract of [`crate::dialect`].

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::dialect::tencent_common::envelope::{self, Upstream};
use crate::dialect::tencent_common::fields::{Fields, Target, asked_page, check_ids};
use crate::dialect::tencent_common::outbound::{Business, V1Common, v1_signed_form};
use crate::dialect::tencent_common::v1_auth::{lenient_param, v1_auth_material};
use crate::dialect::tencent_common::{check_method, param, region, shown, upper_first};
use crate::dialect::{Dialect, Format, RawRequest, Reply, Style, UpstreamCtx, WireRequest, WireResponse, params};
use crate::mapping::{ActionEntry, Mappings};
use crate::model::{Action, Code, Fault, Keys, Operation, Outcome, Provider};
use crate::secret::Secret;
use crate::sign::{AuthMaterial, Param};

/// This dialect.
const DIALECT: Dialect = Dialect::TencentV2;

/// The endpoint's path.
pub const PATH: &str = "/v2/index.php";

/// The provider behind the endpoint, and the table that knows its codes.
const UPSTREAM: Upstream = Upstream { provider: Provider::TencentCvm, table: DIALECT };

/// `codeDesc` of an old-style success (the value every API 2.0 example shows).
const OLD_STYLE_SUCCESS: &str = "Success";

/// How the legacy documentation spells booleans.
fn spell_bool(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

/// An old-style reply: `{"code": 0, "message": "", "codeDesc": "Success"}`.
#[derive(Serialize, Deserialize)]
struct OldStyle<S> {
    code: i64,
    message: S,
    #[serde(rename = "codeDesc", default)]
    code_desc: Option<S>,
}

// === caller side ===

/// The signature v1 material of a request to `/v2/index.php`.
///
/// # Errors
/// `MissingParameter` for an absent `SecretId`, `Signature`, `Nonce` or `Timestamp`; `TimestampExpired`
/// for a `Timestamp` that is not Unix seconds; `MalformedSignature` for an unknown `SignatureMethod`;
/// `InvalidParameter` for a malformed `Nonce` and for undecodable, duplicated or absurdly named
/// parameters; `LimitExceeded` for absurdly many.
pub fn auth_material<'a>(raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    v1_auth_material(raw)
}

/// The canonical operation of a request, from the parameters [`auth_material`] decoded.
///
/// # Errors
/// `UnknownAction`; `MissingParameter` / `InvalidParameterValue` for `Version` (new-style);
/// `MissingParameter`, `InvalidParameter`, `LimitExceeded`, `MalformedInstanceId`, `MalformedKeyId`,
/// `DuplicateValues`, `InvalidParameterValue` for the business parameters.
pub fn decode_request(raw: &RawRequest<'_>, material: &AuthMaterial<'_>, maps: &Mappings) -> Result<Operation, Fault> {
    check_method(raw.method)?;
    let params = &material.input.params;
    let wire = params::required(params, param::ACTION)?;
    let entry = action_entry(maps, wire).ok_or_else(|| unknown_action(wire))?;
    let region = region(params::single(params, param::REGION)?)?;
    match entry.style {
        Style::New => {
            let version = params::required(params, param::VERSION)?;
            if version != maps.version(DIALECT) {
                return Err(Fault::caller(
                    Code::InvalidParameterValue,
                    format!("The parameter `Version` must be `{}`, not `{}`.", maps.version(DIALECT), shown(version)),
                ));
            }
            let target = Target { dialect: DIALECT, action: entry.action, wire: &entry.wire };
            Fields::from_form(params)?.into_operation(target, region, maps)
        }
        Style::Old => decode_old_style(params, entry, region, maps),
    }
}

/// `instanceIds.n` (0-based) and one `keyId`.
fn decode_old_style(
    params: &[Param<'_>],
    entry: &ActionEntry,
    region: Option<String>,
    maps: &Mappings,
) -> Result<Operation, Fault> {
    for (name, _) in params {
        let known = param::COMMON.contains(&name.as_ref())
            || name == param::OLD_KEY_ID
            || name.split_once('.').is_some_and(|(head, _)| head == param::OLD_INSTANCE_IDS);
        if !known {
            return Err(Fault::caller(
                Code::InvalidParameter,
                format!("The parameter `{}` is not known.", shown(name)),
            ));
        }
    }
    let instances = params::indexed_list(params, param::OLD_INSTANCE_IDS)?;
    let zero = format!("{}.0", param::OLD_INSTANCE_IDS);
    if instances.is_empty() {
        return Err(Fault::caller(Code::MissingParameter, "The parameter `instanceIds.n` is missing."));
    }
    if params::single(params, &zero)?.is_none() {
        return Err(Fault::caller(Code::InvalidParameter, "The list `instanceIds.n` must start at `instanceIds.0`."));
    }
    let limits = maps.limits(DIALECT);
    let instances = params::owned(instances);
    check_ids("instanceIds.n", &instances, limits.instances, maps.longest_instance_id(), Code::MalformedInstanceId)?;
    let key = params::required(params, param::OLD_KEY_ID)?.to_owned();
    let keys = vec![key];
    check_ids(param::OLD_KEY_ID, &keys, limits.old_style_keys, maps.longest_key(), Code::MalformedKeyId)?;
    let mut op = Operation::new(entry.action);
    op.region = region;
    op.instances = instances;
    op.keys = Keys::Ids(keys);
    Ok(op)
}

/// What the response encoder needs; never fails, so even garbage is answered in this dialect.
pub fn reply(raw: &RawRequest<'_>, maps: &Mappings, request_id: String) -> Reply {
    let wire_action = lenient_param(raw, param::ACTION).unwrap_or_default();
    let entry = action_entry(maps, &wire_action);
    let action = entry.map(|e| e.action);
    Reply {
        dialect: DIALECT,
        style: entry.map_or(Style::New, |e| e.style),
        action,
        wire_action: shown(&wire_action).into_owned(),
        format: Format::Json,
        request_id,
        key_name: None,
        host: raw.host().to_owned(),
        page: (action == Some(Action::DescribeKeys)).then(|| asked_page(raw, DIALECT, maps)).flatten(),
    }
}

/// The reply in the caller's style: the envelope for new-style actions, `{"code", "message",
/// "codeDesc"}` for old-style ones. Per-instance failures make the whole request fail.
pub fn encode_response(reply: &Reply, result: &Result<Outcome, Fault>, maps: &Mappings) -> WireResponse {
    if reply.style == Style::New {
        return envelope::encode_envelope(reply, result, maps);
    }
    let rendered = match result {
        Err(fault) => Some(maps.render(reply.dialect, fault)),
        Ok(outcome) => envelope::partial_failure(reply.dialect, outcome, maps),
    };
    let body = match rendered {
        None => OldStyle { code: 0, message: "", code_desc: Some(OLD_STYLE_SUCCESS) },
        Some(ref r) => OldStyle { code: r.number, message: r.message.as_str(), code_desc: Some(r.code.as_str()) },
    };
    envelope::json_response(serde_json::to_vec(&body).unwrap_or_default())
}

// === upstream side ===

/// A signed request as the legacy endpoint takes it: POST form to `/v2/index.php`, new-style action,
/// `Version=2017-03-12`, lists 0-based, `ForceStop` as `TRUE`/`FALSE`, signature v1.
///
/// # Errors
/// A gateway fault when `ctx.scheme` is not v1, or the operation names key pairs by name in a bind.
pub fn encode_request(op: &Operation, ctx: &UpstreamCtx, key: &Secret, maps: &Mappings) -> Result<WireRequest, Fault> {
    let business = Business::of(DIALECT, op, maps)?;
    let mut form = Vec::with_capacity(op.instances.len() + op.keys.as_slice().len() + 4);
    business.push_form(&mut form, spell_bool);
    let common = V1Common {
        ctx,
        path: PATH,
        action: maps.wire_action(DIALECT, op.action),
        version: Some(maps.version(DIALECT)),
    };
    v1_signed_form(common, form, key)
}

/// The endpoint's reply: the envelope, or the old-style `{"code", "message", "codeDesc"}`.
///
/// # Errors
/// The endpoint's error, classified through `mappings/errors/tencent_v2.toml` with its code, message and
/// RequestId kept; `UpstreamUnavailable` for a reply of neither shape.
pub fn decode_response(
    status: u16,
    _headers: &HeaderMap,
    body: &[u8],
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    let Value::Object(mut top) = envelope::parse_reply(UPSTREAM, status, body)? else {
        return Err(envelope::garbage(UPSTREAM, "JSON that is not an object".into()));
    };
    if let Some(response) = top.remove("Response") {
        let Value::Object(response) = response else {
            return Err(envelope::garbage(UPSTREAM, "a `Response` that is not an object".into()));
        };
        return envelope::decode_response_object(UPSTREAM, response, op, maps);
    }
    let old: OldStyle<String> = serde_json::from_value(Value::Object(top)).map_err(|e| {
        envelope::garbage(UPSTREAM, format!("neither an envelope nor an old-style reply ({})", shown(&e.to_string())))
    })?;
    if old.code != 0 {
        let code = old.code_desc.filter(|c| !c.is_empty()).unwrap_or_else(|| old.code.to_string());
        return Err(envelope::upstream_fault(maps, UPSTREAM, &code, &old.message, ""));
    }
    if !op.action.is_mutation() {
        return Err(envelope::garbage(UPSTREAM, "an old-style reply to a look-up".into()));
    }
    Ok(Outcome { request_id: String::new(), answer: crate::model::Answer::Bind(envelope::all_succeeded(op)) })
}

// === helpers ===

/// The entry for a wire action, accepting a lower-case first letter.
fn action_entry<'m>(maps: &'m Mappings, wire: &str) -> Option<&'m ActionEntry> {
    maps.action(DIALECT, wire).or_else(|| maps.action(DIALECT, &upper_first(wire)))
}

fn unknown_action(wire: &str) -> Fault {
    Fault::caller(Code::UnknownAction, format!("The action `{}` is not supported by {PATH}.", shown(wire)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Answer, InstanceResult};

    #[test]
    fn old_style_success_and_error_shapes() {
        let maps = Mappings::embedded().unwrap();
        let headers = HeaderMap::new();
        let raw =
            RawRequest { method: "GET", path: PATH, query: "Action=unBindInstanceKey", headers: &headers, body: b"" };
        let reply = reply(&raw, &maps, "req".into());
        assert_eq!((reply.style, reply.action), (Style::Old, Some(Action::DisassociateKeys)));
        let ok = Outcome {
            request_id: "x".into(),
            answer: Answer::Bind(vec![InstanceResult { instance: "i".into(), result: Ok(()) }]),
        };
        let resp = encode_response(&reply, &Ok(ok), &maps);
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v, serde_json::json!({"code": 0, "message": "", "codeDesc": "Success"}));
        let resp = encode_response(&reply, &Err(Fault::caller(Code::MissingParameter, "keyId")), &maps);
        let v: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_eq!(v["code"], 4000);
        assert_eq!(v["codeDesc"], "MissingParameter");
        assert_eq!(resp.status, 200);
    }
}
