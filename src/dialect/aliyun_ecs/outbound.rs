//! Signed requests for ECS itself (`shared/reference/protocols.md` 5.1, 5.3, 5.4; `signing.md` sections
//! 4 and 5), shaped as the SDKs send them.
//!
//! - ACS3 (the current SDK's default): `POST /`, business parameters in the query (form-encoded, `+` for
//!   a space), an empty body, and the headers `host`, `x-acs-action`, `x-acs-version`, `x-acs-date`,
//!   `x-acs-signature-nonce`, `x-acs-content-sha256`, `accept: application/json`, all signed.
//! - RPC (aliyun-python-sdk-core): `POST /` with every parameter in the query (RFC 3986-encoded) and an
//!   empty body, `Format=JSON`.
//!
//! `InstanceIds` is a JSON-array string exactly as Python's `json.dumps` writes it.

use std::borrow::Cow;

use super::{DIALECT, FORMAT_JSON, SIGNATURE_VERSION_1_0, format_timestamp, header, param, python_json_list};
use crate::dialect::{UpstreamCtx, WireRequest};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Keys, Operation};
use crate::secret::Secret;
use crate::sign::encoding::{form_encode_component_into, pct_encode_into, sha256_hex};
use crate::sign::{self, Param, Scheme, SignInput};

/// What ECS answers in, for an ACS3 request.
const ACCEPT_JSON: &str = "application/json";
/// The only method and path used upstream (the API metadata marks all four actions POST).
const METHOD: &str = "POST";
const PATH: &str = "/";

/// Builds a signed ECS request for `op`: ACS3 or RPC as `ctx.scheme` says, to `ctx.host`, for
/// `ctx.region`, signed as `ctx.credential_id` with `key` at `ctx.timestamp` with `ctx.nonce`.
///
/// # Errors
/// A caller fault for what ECS cannot express (a bind or unbind with other than one key name, or no
/// instance); a gateway fault for what translation should have prevented (key ids instead of names, a
/// batch over ECS's limit, a scheme ECS does not speak, a timestamp out of range).
pub fn encode_request(op: &Operation, ctx: &UpstreamCtx, key: &Secret, maps: &Mappings) -> Result<WireRequest, Fault> {
    let business = business_params(op, &ctx.region, maps)?;
    let action = maps.wire_action(DIALECT, op.action);
    let version = maps.version(DIALECT);
    let date = format_timestamp(ctx.timestamp)?;
    match ctx.scheme {
        Scheme::Acs3 => Ok(acs3_request(business, action, version, &date, ctx, key)),
        Scheme::AliyunRpc => Ok(rpc_request(business, action, version, date, ctx, key)),
        other => Err(Fault::gateway(
            Code::Internal,
            format!("ECS is signed with HMAC-SHA1 or ACS3-HMAC-SHA256, not {}.", other.name()),
        )),
    }
}

/// The action's own parameters, sorted by name (as the tea SDK orders its query).
fn business_params(op: &Operation, region: &str, maps: &Mappings) -> Result<Vec<Param<'static>>, Fault> {
    let limits = maps.limits(DIALECT);
    let mut out: Vec<Param<'static>> = Vec::with_capacity(4);
    match op.action {
        Action::AssociateKeys | Action::DisassociateKeys => {
            let name = one_key_name(&op.keys)?;
            if op.instances.is_empty() {
                return Err(Fault::caller(
                    Code::MissingParameter,
                    "ECS needs at least one instance to bind or unbind.",
                ));
            }
            check_batch(op.instances.len(), limits.instances)?;
            out.push(p(param::INSTANCE_IDS, python_json_list(&op.instances)));
            out.push(p(param::KEY_PAIR_NAME, name.to_owned()));
        }
        Action::DescribeKeys => {
            match &op.keys {
                Keys::Names(names) if names.len() > 1 => {
                    return Err(Fault::gateway(
                        Code::LimitExceeded,
                        "ECS DescribeKeyPairs filters by one name at a time.",
                    ));
                }
                Keys::Names(names) => out.extend(names.first().map(|n| p(param::KEY_PAIR_NAME, n.clone()))),
                Keys::Ids(ids) if ids.is_empty() => {}
                Keys::Ids(_) => {
                    return Err(Fault::gateway(Code::Internal, "ECS looks key pairs up by name, not by id."));
                }
            }
            match op.page {
                None => out.push(p(param::PAGE_SIZE, limits.lookup_keys.to_string())),
                Some(page) => {
                    // ECS pages are numbered from 1 and all the same size: the offset falls on a page start.
                    let size = page.limit.clamp(1, limits.lookup_keys);
                    out.push(p(param::PAGE_NUMBER, (page.offset / size + 1).to_string()));
                    out.push(p(param::PAGE_SIZE, size.to_string()));
                }
            }
        }
        Action::DescribeInstances => {
            check_batch(op.instances.len(), limits.lookup_instances)?;
            if !op.instances.is_empty() {
                out.push(p(param::INSTANCE_IDS, python_json_list(&op.instances)));
            }
            out.push(p(param::MAX_RESULTS, limits.lookup_instances.to_string()));
        }
        Action::ImportKey => {
            let name = one_key_name(&op.keys)?;
            let Some(public_key) = &op.public_key else {
                return Err(Fault::gateway(Code::Internal, "A key import needs a public key."));
            };
            out.push(p(param::KEY_PAIR_NAME, name.to_owned()));
            out.push(p(param::PUBLIC_KEY_BODY, public_key.clone()));
        }
        Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
            // ECS's StartInstance, StopInstance and RebootInstance take one instance each.
            let [instance] = op.instances.as_slice() else {
                return Err(Fault::gateway(
                    Code::Internal,
                    format!("ECS {} takes one instance; {} were given.", op.action, op.instances.len()),
                ));
            };
            out.push(p(param::INSTANCE_ID, instance.clone()));
            if op.action != Action::StartInstances && op.force_stop == Some(true) {
                out.push(p(param::FORCE_STOP, "true".to_owned()));
            }
        }
    }
    out.push(p(param::REGION_ID, region.to_owned()));
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

fn one_key_name(keys: &Keys) -> Result<&str, Fault> {
    match keys {
        Keys::Names(names) => match names.as_slice() {
            [name] => Ok(name),
            [] => Err(Fault::caller(Code::MissingParameter, "ECS binds exactly one key pair name; none was given.")),
            more => Err(Fault::caller(
                Code::LimitExceeded,
                format!("ECS binds exactly one key pair name per request; {} were given.", more.len()),
            )),
        },
        Keys::Ids(_) => Err(Fault::gateway(Code::Internal, "ECS names key pairs; translate key ids to names first.")),
    }
}

fn check_batch(len: usize, limit: usize) -> Result<(), Fault> {
    if len > limit {
        return Err(Fault::gateway(
            Code::LimitExceeded,
            format!("{len} instances in one ECS request; at most {limit} (batches must be split before encoding)."),
        ));
    }
    Ok(())
}

fn p(name: &'static str, value: String) -> Param<'static> {
    (Cow::Borrowed(name), Cow::Owned(value))
}

fn acs3_request(
    business: Vec<Param<'static>>,
    action: &str,
    version: &str,
    date: &str,
    ctx: &UpstreamCtx,
    key: &Secret,
) -> WireRequest {
    let mut query = String::with_capacity(business.iter().map(|(n, v)| n.len() + v.len() * 2 + 2).sum());
    for (i, (name, value)) in business.iter().enumerate() {
        if i > 0 {
            query.push('&');
        }
        form_encode_component_into(&mut query, name);
        query.push('=');
        form_encode_component_into(&mut query, value);
    }
    let body_hash = sha256_hex(b"");
    let headers: [(&'static str, &str); 7] = [
        (header::HOST, &ctx.host),
        (header::ACTION, action),
        (header::VERSION, version),
        (header::DATE, date),
        (header::NONCE, &ctx.nonce),
        (header::CONTENT_SHA256, &body_hash),
        (header::ACCEPT, ACCEPT_JSON),
    ];
    let input = SignInput {
        method: METHOD,
        host: &ctx.host,
        path: PATH,
        query: &query,
        params: business,
        headers: headers.to_vec(),
        body: b"",
        timestamp: ctx.timestamp,
        service: "",
    };
    let signed = sign::sign(Scheme::Acs3, &input, &ctx.credential_id, key);
    let mut wire_headers = Vec::with_capacity(headers.len() + 1);
    wire_headers.extend(headers.iter().map(|(n, v)| (*n, (*v).to_owned())));
    wire_headers.push((header::AUTHORIZATION, signed.authorization.unwrap_or_default()));
    WireRequest { method: METHOD, host: ctx.host.clone(), path: PATH, query, headers: wire_headers, body: Vec::new() }
}

fn rpc_request(
    mut params: Vec<Param<'static>>,
    action: &str,
    version: &str,
    date: String,
    ctx: &UpstreamCtx,
    key: &Secret,
) -> WireRequest {
    params.extend([
        p(param::VERSION, version.to_owned()),
        p(param::ACTION, action.to_owned()),
        p(param::FORMAT, FORMAT_JSON.to_owned()),
        p(param::TIMESTAMP, date),
        p(param::SIGNATURE_METHOD, Scheme::AliyunRpc.name().to_owned()),
        p(param::SIGNATURE_VERSION, SIGNATURE_VERSION_1_0.to_owned()),
        p(param::SIGNATURE_NONCE, ctx.nonce.clone()),
        p(param::ACCESS_KEY_ID, ctx.credential_id.clone()),
    ]);
    let input = SignInput { method: METHOD, host: &ctx.host, path: PATH, params, ..SignInput::default() };
    let signed = sign::sign(Scheme::AliyunRpc, &input, &ctx.credential_id, key);
    let mut query =
        String::with_capacity(input.params.iter().map(|(n, v)| n.len() + v.len() * 2 + 2).sum::<usize>() + 48);
    for (name, value) in input
        .params
        .iter()
        .map(|(n, v)| (n.as_ref(), v.as_ref()))
        .chain([(param::SIGNATURE, signed.signature.as_str())])
    {
        if !query.is_empty() {
            query.push('&');
        }
        pct_encode_into(&mut query, name);
        query.push('=');
        pct_encode_into(&mut query, value);
    }
    WireRequest { method: METHOD, host: ctx.host.clone(), path: PATH, query, headers: Vec::new(), body: Vec::new() }
}
