//! Tencent Cloud API 3.0 for CVM (`2017-03-12`, service `cvm`) and Lighthouse (`2020-03-24`, service
//! `lighthouse`): one codec, parameterised by [`Dialect::TencentCvm`] / [`Dialect::TencentLighthouse`]
//! (protocols.md section 4).
//!
//! Inbound, two signatures on path `/`:
//! - TC3-HMAC-SHA256 (`shared/reference/signing.md` §3): a POST JSON body (lists are arrays, `ForceStop`
//!   a boolean) or a GET with the parameters flattened 0-based in the query; the action, version, time and
//!   region in the `X-TC-*` headers; the service in the credential scope, which decides CVM or Lighthouse;
//! - signature v1 (§2): GET query or POST form, with `Action` / `Version` / `Region` as parameters.
//!
//! Lighthouse has no `ForceStop`. Look-ups are `DescribeKeyPairs` (`KeyIds`, or one `key-name` filter) and
//! `DescribeInstances` (`InstanceIds`), answered with the fields of protocols.md 4.6. Replies are the
//! `{"Response": {...}}` envelope, HTTP 200, `content-type: application/json`.
//!
//! The functions follow the contract of [`crate::dialect`], with one difference: those that cannot learn
//! the dialect from their arguments take it first (`decode_request`, `reply`, `encode_request`,
//! `decode_response`). [`dialect_of`], [`is_tc3`] and [`service_of`] tell it from a request as this
//! codec sees it (the gateway itself weighs every dialect's evidence in [`crate::dialect::detect()`]).
//!
//! ```
//! use crossgate::dialect::{Dialect, RawRequest, tencent_v3};
//! use crossgate::mapping::Mappings;
//! use http::HeaderMap;
//!
//! let maps = Mappings::embedded().unwrap();
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     "authorization",
//!     "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/lighthouse/tc3_request, SignedHeaders=content-type;host, Signature=00"
//!         .parse()
//!         .unwrap(),
//! );
//! let raw = RawRequest { method: "POST", path: "/", query: "", headers: &headers, body: b"{}" };
//! assert!(tencent_v3::is_tc3(&raw));
//! assert_eq!(tencent_v3::service_of(&raw), Some("lighthouse"));
//! assert_eq!(tencent_v3::dialect_of(&raw, &maps), Some(Dialect::TencentLighthouse));
//! ```

use std::borrow::Cow;

use http::HeaderMap;
use serde::Serialize;

use crate::dialect::tencent_common::envelope::{self, Upstream};
use crate::dialect::tencent_common::fields::{Fields, Target, asked_page};
use crate::dialect::tencent_common::outbound::{Business, V1Common, v1_signed_form};
use crate::dialect::tencent_common::v1_auth::{
    header_pairs, lenient_param, request_params, unix_seconds, v1_auth_material,
};
use crate::dialect::tencent_common::{check_method, header, is_v1, media, param, region, shown};
use crate::dialect::{Dialect, Format, RawRequest, Reply, Style, UpstreamCtx, WireRequest, WireResponse, params};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Operation, Outcome};
use crate::secret::Secret;
use crate::sign::{self, AuthMaterial, Scheme, SignInput, tc3};

/// The path of every API 3.0 request.
pub const PATH: &str = "/";

/// The dialects this codec speaks.
const DIALECTS: [Dialect; 2] = [Dialect::TencentCvm, Dialect::TencentLighthouse];

// === detection ===

/// True when the request carries a `TC3-HMAC-SHA256` Authorization header.
pub fn is_tc3(raw: &RawRequest<'_>) -> bool {
    raw.header(header::AUTHORIZATION).is_some_and(|v| v.starts_with(Scheme::Tc3.name()))
}

/// The service named in a TC3 request's credential scope (`cvm`, `lighthouse`), if it has a well-formed
/// one.
pub fn service_of<'a>(raw: &RawRequest<'a>) -> Option<&'a str> {
    raw.header(header::AUTHORIZATION).and_then(|v| parse_authorization(v).ok()).map(|a| a.scope_service)
}

/// Which API 3.0 dialect a request speaks: for TC3, the credential scope's service; for v1, the `Version`
/// parameter; failing both, a host that starts with the service name (`lighthouse.tencentcloudapi.com`).
/// `None` when the request fits neither CVM nor Lighthouse.
pub fn dialect_of(raw: &RawRequest<'_>, maps: &Mappings) -> Option<Dialect> {
    if is_tc3(raw) {
        let service = service_of(raw)?;
        return DIALECTS.into_iter().find(|d| maps.service(*d) == Some(service));
    }
    if let Some(version) = lenient_param(raw, param::VERSION) {
        return DIALECTS.into_iter().find(|d| maps.version(*d) == version);
    }
    let host = raw.host();
    DIALECTS
        .into_iter()
        .find(|d| maps.service(*d).is_some_and(|s| host.strip_prefix(s).is_some_and(|rest| rest.starts_with('.'))))
}

// === caller side ===

/// The authentication material: TC3 from the `Authorization` header and `X-TC-Timestamp` (for a GET, the
/// query is decoded once into the parameters), or v1 from the parameters.
///
/// # Errors
/// `MalformedSignature` for an Authorization header that is not a well-formed TC3 one;
/// `MissingParameter` for an absent `X-TC-Timestamp`; `TimestampExpired` for one that is not Unix
/// seconds; for v1, the same faults as [`crate::dialect::tencent_v2::auth_material`].
pub fn auth_material<'a>(raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    match raw.header(header::AUTHORIZATION) {
        Some(value) if value.starts_with(Scheme::Tc3.name()) => tc3_material(raw, value),
        Some(_) if !is_v1(raw) => Err(Fault::caller(
            Code::MalformedSignature,
            format!("The Authorization header must use {}.", Scheme::Tc3.name()),
        )),
        _ => v1_auth_material(raw),
    }
}

fn tc3_material<'a>(raw: &RawRequest<'a>, value: &'a str) -> Result<AuthMaterial<'a>, Fault> {
    let auth = parse_authorization(value)?;
    let timestamp_text = raw
        .header(header::X_TC_TIMESTAMP)
        .ok_or_else(|| Fault::caller(Code::MissingParameter, "The header `X-TC-Timestamp` is missing."))?;
    let timestamp = unix_seconds("X-TC-Timestamp", timestamp_text)?;
    // A GET's parameters are in the query, decoded once here; a POST's are in the JSON body.
    let params = if raw.method.eq_ignore_ascii_case("GET") { request_params(raw)? } else { Vec::new() };
    Ok(AuthMaterial {
        scheme: Scheme::Tc3,
        credential_id: Cow::Borrowed(auth.credential_id),
        signature: Cow::Borrowed(auth.signature),
        timestamp,
        nonce: None,
        scope_date: Some(auth.scope_date),
        scope_service: Some(auth.scope_service),
        signed_headers: auth.signed_headers,
        input: SignInput {
            method: raw.method,
            host: raw.host(),
            path: raw.path,
            query: raw.query,
            params,
            headers: header_pairs(raw),
            body: raw.body,
            timestamp,
            service: auth.scope_service,
        },
    })
}

/// The Authorization header through [`tc3::parse_authorization`], its error as this dialect's fault.
fn parse_authorization(value: &str) -> Result<tc3::Authorization<'_>, Fault> {
    tc3::parse_authorization(value)
        .map_err(|e| Fault::caller(Code::MalformedSignature, format!("The Authorization header is malformed: {e}.")))
}

/// The canonical operation of an API 3.0 request for `dialect`.
///
/// # Errors
/// `MalformedSignature` when a TC3 scope names the other service; `MissingParameter` for an absent
/// action or version; `UnknownAction`; `InvalidParameterValue` for a wrong version or region;
/// `InvalidParameter` for a body that is not a JSON object of the expected types (or nested deeper than
/// [`params::MAX_JSON_DEPTH`]), an unknown parameter, or bad list grammar; `LimitExceeded`,
/// `MalformedInstanceId`, `MalformedKeyId`, `DuplicateValues`.
pub fn decode_request(
    dialect: Dialect,
    raw: &RawRequest<'_>,
    material: &AuthMaterial<'_>,
    maps: &Mappings,
) -> Result<Operation, Fault> {
    check_dialect(dialect)?;
    check_method(raw.method)?;
    let input = &material.input;
    let (wire, version, region_text) = match material.scheme {
        Scheme::Tc3 => {
            let expected = maps.service(dialect).unwrap_or_default();
            if material.scope_service != Some(expected) {
                return Err(Fault::caller(
                    Code::MalformedSignature,
                    format!(
                        "The credential scope names the service `{}`; this endpoint is `{expected}`.",
                        shown(material.scope_service.unwrap_or_default())
                    ),
                ));
            }
            let required = |name: &str, shown_as: &str| {
                raw.header(name).ok_or_else(|| {
                    Fault::caller(Code::MissingParameter, format!("The header `{shown_as}` is missing."))
                })
            };
            (
                required(header::X_TC_ACTION, header::OUT_X_TC_ACTION)?,
                required(header::X_TC_VERSION, header::OUT_X_TC_VERSION)?,
                raw.header(header::X_TC_REGION),
            )
        }
        _ => (
            params::required(&input.params, param::ACTION)?,
            params::required(&input.params, param::VERSION)?,
            params::single(&input.params, param::REGION)?,
        ),
    };
    let entry = maps.action(dialect, wire).ok_or_else(|| {
        Fault::caller(Code::UnknownAction, format!("The action `{}` is not supported by {dialect}.", shown(wire)))
    })?;
    if version != maps.version(dialect) {
        return Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The version `{}` is not `{}`.", shown(version), maps.version(dialect)),
        ));
    }
    let region = region(region_text)?;
    let fields = if material.scheme == Scheme::Tc3 && raw.method.eq_ignore_ascii_case("POST") {
        json_fields(raw)?
    } else {
        Fields::from_form(&input.params)?
    };
    fields.into_operation(Target { dialect, action: entry.action, wire: &entry.wire }, region, maps)
}

/// A TC3 POST: `application/json`, no query, a JSON object body.
fn json_fields(raw: &RawRequest<'_>) -> Result<Fields, Fault> {
    let content_type = raw.content_type().unwrap_or_default();
    if content_type != media::JSON {
        return Err(Fault::caller(
            Code::InvalidParameter,
            format!("A TC3 POST must have `Content-Type: {}`, not `{}`.", media::JSON, shown(&content_type)),
        ));
    }
    if !raw.query.is_empty() {
        return Err(Fault::caller(
            Code::InvalidParameter,
            "A TC3 POST carries its parameters in the JSON body, not in the query.",
        ));
    }
    Fields::from_json(raw.body)
}

/// What the response encoder needs; never fails.
pub fn reply(dialect: Dialect, raw: &RawRequest<'_>, maps: &Mappings, request_id: String) -> Reply {
    let wire_action = raw
        .header(header::X_TC_ACTION)
        .map(str::to_owned)
        .or_else(|| lenient_param(raw, param::ACTION))
        .unwrap_or_default();
    let action = maps.action(dialect, &wire_action).map(|e| e.action);
    Reply {
        dialect,
        style: Style::New,
        action,
        wire_action: shown(&wire_action).into_owned(),
        format: Format::Json,
        request_id,
        key_name: None,
        host: raw.host().to_owned(),
        page: (action == Some(Action::DescribeKeys)).then(|| asked_page(raw, dialect, maps)).flatten(),
    }
}

/// The `{"Response": {...}}` reply; per-instance failures make the whole request fail.
pub fn encode_response(reply: &Reply, result: &Result<Outcome, Fault>, maps: &Mappings) -> WireResponse {
    envelope::encode_envelope(reply, result, maps)
}

// === upstream side ===

/// The JSON body of a TC3 request.
#[derive(Serialize)]
struct JsonBody<'o> {
    #[serde(rename = "InstanceIds", skip_serializing_if = "Option::is_none")]
    instance_ids: Option<&'o [String]>,
    #[serde(rename = "KeyIds", skip_serializing_if = "Option::is_none")]
    key_ids: Option<&'o [String]>,
    #[serde(rename = "Filters", skip_serializing_if = "Option::is_none")]
    filters: Option<[JsonFilter<'o>; 1]>,
    #[serde(rename = "ForceStop", skip_serializing_if = "Option::is_none")]
    force_stop: Option<bool>,
    #[serde(rename = "Limit", skip_serializing_if = "Option::is_none")]
    limit: Option<usize>,
    #[serde(rename = "Offset", skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(rename = "KeyName", skip_serializing_if = "Option::is_none")]
    key_name: Option<&'o str>,
    #[serde(rename = "PublicKey", skip_serializing_if = "Option::is_none")]
    public_key: Option<&'o str>,
    #[serde(rename = "ProjectId", skip_serializing_if = "Option::is_none")]
    project_id: Option<u64>,
    #[serde(rename = "StopType", skip_serializing_if = "Option::is_none")]
    stop_type: Option<&'static str>,
}

#[derive(Serialize)]
struct JsonFilter<'o> {
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Values")]
    values: &'o [String],
}

/// A signed request for CVM or Lighthouse: POST JSON with TC3 when `ctx.scheme` is TC3 (`content-type`
/// and `host` signed; `X-TC-Action`, `X-TC-Version`, `X-TC-Timestamp`, `X-TC-Region`), or a POST form
/// with signature v1 when it is a v1 scheme. Lighthouse never gets `ForceStop`.
///
/// # Errors
/// A gateway fault for a dialect other than CVM/Lighthouse, a scheme Tencent does not use, or an
/// operation Tencent cannot express (key names in a bind).
pub fn encode_request(
    dialect: Dialect,
    op: &Operation,
    ctx: &UpstreamCtx,
    key: &Secret,
    maps: &Mappings,
) -> Result<WireRequest, Fault> {
    check_dialect(dialect)?;
    let business = Business::of(dialect, op, maps)?;
    let action = maps.wire_action(dialect, op.action);
    match ctx.scheme {
        Scheme::Tc3 => tc3_json(dialect, action, &business, ctx, key, maps),
        Scheme::TencentV1Sha1 | Scheme::TencentV1Sha256 => {
            let mut form = Vec::with_capacity(op.instances.len() + op.keys.as_slice().len() + 4);
            business.push_form(&mut form, |b| if b { "true" } else { "false" });
            let common = V1Common { ctx, path: PATH, action, version: Some(maps.version(dialect)) };
            v1_signed_form(common, form, key)
        }
        other => Err(Fault::gateway(Code::Internal, format!("{dialect} cannot be signed with {}.", other.name()))),
    }
}

fn tc3_json(
    dialect: Dialect,
    action: &str,
    business: &Business<'_>,
    ctx: &UpstreamCtx,
    key: &Secret,
    maps: &Mappings,
) -> Result<WireRequest, Fault> {
    let body = JsonBody {
        instance_ids: business.instance_ids,
        key_ids: business.key_ids,
        filters: business.key_names.map(|values| [JsonFilter { name: param::KEY_NAME_FILTER, values }]),
        force_stop: business.force_stop,
        limit: business.limit,
        offset: business.offset,
        key_name: business.key_name,
        public_key: business.public_key,
        project_id: business.project_id,
        stop_type: business.stop_type,
    };
    let body = serde_json::to_vec(&body)
        .map_err(|e| Fault::gateway(Code::Internal, format!("The request body could not be written: {e}.")))?;
    let input = SignInput {
        method: "POST",
        host: &ctx.host,
        path: PATH,
        query: "",
        headers: vec![(header::CONTENT_TYPE, media::JSON), (header::HOST, &ctx.host)],
        body: &body,
        timestamp: ctx.timestamp,
        service: maps.service(dialect).unwrap_or_default(),
        ..SignInput::default()
    };
    let signed = sign::sign(Scheme::Tc3, &input, &ctx.credential_id, key);
    let authorization = signed
        .authorization
        .ok_or_else(|| Fault::gateway(Code::Internal, "TC3 signing gave no Authorization header."))?;
    let mut headers = Vec::with_capacity(6);
    headers.push((header::OUT_CONTENT_TYPE, media::JSON.to_owned()));
    headers.push((header::OUT_X_TC_ACTION, action.to_owned()));
    headers.push((header::OUT_X_TC_VERSION, maps.version(dialect).to_owned()));
    headers.push((header::OUT_X_TC_TIMESTAMP, ctx.timestamp.to_string()));
    if !ctx.region.is_empty() {
        headers.push((header::OUT_X_TC_REGION, ctx.region.clone()));
    }
    headers.push((header::OUT_AUTHORIZATION, authorization));
    Ok(WireRequest { method: "POST", host: ctx.host.clone(), path: PATH, query: String::new(), headers, body })
}

/// The upstream's reply: an [`Outcome`] with its RequestId, or its error classified through the dialect's
/// table with code, message and RequestId kept.
///
/// # Errors
/// The upstream's error; `UpstreamUnavailable` for a status other than 200 or a body that is not the
/// envelope of the expected shape.
pub fn decode_response(
    dialect: Dialect,
    status: u16,
    _headers: &HeaderMap,
    body: &[u8],
    op: &Operation,
    maps: &Mappings,
) -> Result<Outcome, Fault> {
    let upstream = Upstream { provider: dialect.provider(), table: dialect };
    envelope::decode_envelope(upstream, status, body, op, maps)
}

fn check_dialect(dialect: Dialect) -> Result<(), Fault> {
    if DIALECTS.contains(&dialect) {
        return Ok(());
    }
    Err(Fault::gateway(Code::Internal, format!("tencent_v3 speaks CVM and Lighthouse, not {dialect}.")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parses_and_refuses_malformed_headers() {
        let a = parse_authorization(
            "TC3-HMAC-SHA256 Credential=AKID/2024-05-01/cvm/tc3_request, SignedHeaders=content-type;host, Signature=ab",
        )
        .unwrap();
        assert_eq!((a.credential_id, a.scope_date, a.scope_service, a.signature), ("AKID", "2024-05-01", "cvm", "ab"));
        assert_eq!(a.signed_headers, ["content-type", "host"]);
        for bad in [
            "TC3-HMAC-SHA256",
            "TC3-HMAC-SHA256Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc4_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request/x, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=ab, Signature=cd",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host;, Signature=ab",
            "TC3-HMAC-SHA256 Credential=/b/c/tc3_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=",
            "HMAC-SHA256 Credential=a/b/c/tc3_request, SignedHeaders=host, Signature=ab",
            "TC3-HMAC-SHA256 Credential=a/b/c/tc3_request, Other=1, SignedHeaders=host, Signature=ab",
        ] {
            assert_eq!(parse_authorization(bad).unwrap_err().code(), Code::MalformedSignature, "{bad}");
        }
    }
}
