//! A caller's ECS request: its signature material, its operation, and what its reply needs.
//!
//! `shared/reference/protocols.md` 5.1, 5.3, 5.4 and `signing.md` sections 4 (RPC) and 5 (ACS3).
//! Parameters are form-decoded once, in [`auth_material`], and reused by [`decode_request`].

use std::borrow::Cow;

use super::{
    ACS3_PREFIX, DIALECT, FORM_MEDIA_TYPE, FORMAT_JSON, FORMAT_XML, SIGNATURE_VERSION_1_0, header, param,
    parse_timestamp,
};
use crate::dialect::params::{
    could_be_ids, json_string_array, reject_duplicates, reject_repeated_values, required, single,
};
use crate::dialect::{Format, RawRequest, Reply, Style};
use crate::mapping::{Limits, Mappings};
use crate::model::{Action, Code, Fault, Keys, Operation, Page};
use crate::sign::encoding::{form_decode, form_decode_item, sha256_hex};
use crate::sign::{AuthMaterial, Param, Scheme, SignInput, acs3};

/// The headers an ACS3 request must carry and sign (`signing.md` section 5, "Steps to verify").
const ACS3_REQUIRED_HEADERS: [&str; 6] =
    [header::HOST, header::ACTION, header::VERSION, header::DATE, header::NONCE, header::CONTENT_SHA256];

/// The longest region id accepted (`cn-hangzhou`, `ap-southeast-1`, ...).
const MAX_REGION_LEN: usize = 64;

// === auth_material ===

/// Reads the signature material of an ECS request: ACS3 when an `Authorization: ACS3-HMAC-SHA256 ...`
/// header is present, the RPC signature otherwise.
///
/// RPC: the query and a form body are decoded and merged (a name given twice, in either, is refused),
/// `Signature` is taken out, and `AccessKeyId`, `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`,
/// `SignatureNonce` and `Timestamp` are required. ACS3: the Authorization header is parsed, the `x-acs-*`
/// headers and `host` must be present and signed, and the query is decoded.
///
/// # Errors
/// `MissingParameter` for an absent auth parameter or header, `MalformedSignature` for a wrong method,
/// version or Authorization header, `TimestampExpired` for a time not in `YYYY-MM-DDThh:mm:ssZ`,
/// `InvalidParameter` for undecodable or repeated parameters.
pub fn auth_material<'a>(raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    check_method(raw.method)?;
    match raw.headers.get(header::AUTHORIZATION) {
        None => rpc_material(raw),
        Some(value) => match value.to_str() {
            Ok(auth) if auth.starts_with(Scheme::Acs3.name()) => acs3_material(raw, auth),
            Ok(auth) if !auth.starts_with(ACS3_PREFIX) => rpc_material(raw),
            _ => Err(Fault::caller(
                Code::MalformedSignature,
                format!("The Authorization header must start with `{} `.", Scheme::Acs3.name()),
            )),
        },
    }
}

fn check_method(method: &str) -> Result<(), Fault> {
    if method == "GET" || method == "POST" {
        Ok(())
    } else {
        Err(Fault::caller(
            Code::InvalidParameter,
            format!("The HTTP method `{method}` is not supported; use GET or POST."),
        ))
    }
}

fn rpc_material<'a>(raw: &RawRequest<'a>) -> Result<AuthMaterial<'a>, Fault> {
    let mut all = decode_form(raw.query, "query string")?;
    if let Some(body) = form_body(raw)? {
        all.extend(decode_form(body, "form body")?);
    }
    reject_duplicates(&all)?;
    let position = all.iter().position(|(n, _)| n == param::SIGNATURE);
    let signature =
        position.map(|i| all.remove(i).1).filter(|s| !s.is_empty()).ok_or_else(|| missing(param::SIGNATURE))?;
    let credential_id = non_empty(&all, param::ACCESS_KEY_ID)?;
    let method = required(&all, param::SIGNATURE_METHOD)?;
    if method != Scheme::AliyunRpc.name() {
        return Err(Fault::caller(
            Code::MalformedSignature,
            format!("`SignatureMethod` must be {}, not `{method}`.", Scheme::AliyunRpc.name()),
        ));
    }
    let version = required(&all, param::SIGNATURE_VERSION)?;
    if version != SIGNATURE_VERSION_1_0 {
        return Err(Fault::caller(
            Code::MalformedSignature,
            format!("`SignatureVersion` must be {SIGNATURE_VERSION_1_0}, not `{version}`."),
        ));
    }
    let nonce = non_empty(&all, param::SIGNATURE_NONCE)?;
    let timestamp = parse_timestamp(param::TIMESTAMP, required(&all, param::TIMESTAMP)?)?;
    Ok(AuthMaterial {
        scheme: Scheme::AliyunRpc,
        credential_id,
        signature,
        timestamp,
        nonce: Some(nonce),
        scope_date: None,
        scope_service: None,
        signed_headers: Vec::new(),
        input: sign_input(raw, all, timestamp),
    })
}

fn acs3_material<'a>(raw: &RawRequest<'a>, authorization: &'a str) -> Result<AuthMaterial<'a>, Fault> {
    let auth = parse_authorization(authorization)?;
    for name in ACS3_REQUIRED_HEADERS {
        single_header(raw, name)?;
        if !auth.signed_headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(Fault::caller(
                Code::MalformedSignature,
                format!("The header `{name}` must be listed in SignedHeaders."),
            ));
        }
    }
    let timestamp = parse_timestamp(header::DATE, single_header(raw, header::DATE)?)?;
    let nonce = single_header(raw, header::NONCE)?;
    if nonce.is_empty() {
        return Err(missing(header::NONCE));
    }
    let query = decode_form(raw.query, "query string")?;
    reject_duplicates(&query)?;
    Ok(AuthMaterial {
        scheme: Scheme::Acs3,
        credential_id: Cow::Borrowed(auth.credential_id),
        signature: Cow::Borrowed(auth.signature),
        timestamp,
        nonce: Some(Cow::Borrowed(nonce)),
        scope_date: None,
        scope_service: None,
        signed_headers: auth.signed_headers,
        input: sign_input(raw, query, timestamp),
    })
}

/// `sign::acs3::parse_authorization`, its error as ECS's `IncompleteSignature`.
fn parse_authorization(value: &str) -> Result<acs3::Authorization<'_>, Fault> {
    acs3::parse_authorization(value)
        .map_err(|e| Fault::caller(Code::MalformedSignature, format!("The Authorization header is malformed ({e}).")))
}

/// What the signature covers: the request as received, with the decoded parameters.
fn sign_input<'a>(raw: &RawRequest<'a>, params: Vec<Param<'a>>, timestamp: i64) -> SignInput<'a> {
    let headers = raw
        .headers
        .iter()
        .filter_map(|(name, value)| std::str::from_utf8(value.as_bytes()).ok().map(|v| (name.as_str(), v)))
        .collect();
    SignInput {
        method: raw.method,
        host: raw.host(),
        path: raw.path,
        query: raw.query,
        params,
        headers,
        body: raw.body,
        timestamp,
        service: "",
    }
}

fn decode_form<'a>(text: &'a str, what: &str) -> Result<Vec<Param<'a>>, Fault> {
    form_decode(text).map_err(|e| Fault::caller(Code::InvalidParameter, format!("The {what} cannot be decoded: {e}.")))
}

/// The body as form text: `None` when empty; refused when it is not a UTF-8 form.
fn form_body<'a>(raw: &RawRequest<'a>) -> Result<Option<&'a str>, Fault> {
    if raw.body.is_empty() {
        return Ok(None);
    }
    match raw.content_type() {
        None => {}
        Some(media) if media == FORM_MEDIA_TYPE => {}
        Some(media) => {
            return Err(Fault::caller(
                Code::InvalidParameter,
                format!("A request body must be {FORM_MEDIA_TYPE}, not `{media}`."),
            ));
        }
    }
    std::str::from_utf8(raw.body)
        .map(Some)
        .map_err(|_| Fault::caller(Code::InvalidParameter, "The form body is not valid UTF-8."))
}

fn single_header<'a>(raw: &RawRequest<'a>, name: &str) -> Result<&'a str, Fault> {
    let mut values = raw.headers.get_all(name).iter();
    let value = values.next().ok_or_else(|| missing(name))?;
    if values.next().is_some() {
        return Err(Fault::caller(Code::InvalidParameter, format!("The header `{name}` is given more than once.")));
    }
    value
        .to_str()
        .map_err(|_| Fault::caller(Code::InvalidParameter, format!("The header `{name}` is not visible ASCII.")))
}

fn non_empty<'a>(params: &[Param<'a>], name: &str) -> Result<Cow<'a, str>, Fault> {
    let mut found = None;
    for (n, v) in params {
        if n == name {
            found = Some(v.clone());
        }
    }
    found.filter(|v| !v.is_empty()).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> Fault {
    Fault::caller(Code::MissingParameter, format!("`{name}` is mandatory for this action."))
}

// === decode_request ===

/// Decodes the operation of an authenticated ECS request, reusing the parameters decoded in
/// [`auth_material`]. ACS3 takes the action and version from `x-acs-action` / `x-acs-version` and may carry
/// business parameters in a form body, which is decoded here (and must match `x-acs-content-sha256`).
///
/// # Errors
/// `UnknownAction`; `InvalidParameterValue` for a wrong `Version`, `Format` or `RegionId`;
/// `MissingParameter`; `InvalidParameter` for a bad `InstanceIds` array or a repeated parameter;
/// `LimitExceeded` past 50 instances (100 for a look-up) or a `PageSize` over 50;
/// `MalformedInstanceId` / `MalformedKeyId` for what cannot be an id on any provider (and for a
/// `DescribeKeyPairs` name filter ECS cannot read); `DuplicateValues`.
pub fn decode_request(raw: &RawRequest<'_>, material: &AuthMaterial<'_>, maps: &Mappings) -> Result<Operation, Fault> {
    let (wire_action, version, params): (&str, &str, Cow<'_, [Param<'_>]>) = match material.scheme {
        Scheme::AliyunRpc => {
            let params = &material.input.params;
            if let Some(format) = single(params, param::FORMAT)? {
                response_format(format)?;
            }
            (required(params, param::ACTION)?, required(params, param::VERSION)?, Cow::Borrowed(params.as_slice()))
        }
        Scheme::Acs3 => (
            single_header(raw, header::ACTION)?,
            single_header(raw, header::VERSION)?,
            acs3_params(raw, &material.input.params)?,
        ),
        other => {
            return Err(Fault::caller(
                Code::MalformedSignature,
                format!("ECS requests are signed with HMAC-SHA1 or ACS3-HMAC-SHA256, not {}.", other.name()),
            ));
        }
    };
    let entry = maps.action(DIALECT, wire_action).ok_or_else(|| {
        Fault::caller(Code::UnknownAction, format!("The action `{wire_action}` is not supported here."))
    })?;
    let expected = maps.version(DIALECT);
    if version != expected {
        return Err(Fault::caller(
            Code::InvalidParameterValue,
            format!("The Version `{version}` is not supported; use {expected}."),
        ));
    }
    decode_operation(entry.action, &params, maps)
}

/// ACS3 business parameters: the decoded query, plus a form body when one is sent. The body is signed only
/// through `x-acs-content-sha256`, so its hash is checked here before any of it is used.
fn acs3_params<'p>(raw: &RawRequest<'p>, query: &'p [Param<'p>]) -> Result<Cow<'p, [Param<'p>]>, Fault> {
    let Some(body) = form_body(raw)? else { return Ok(Cow::Borrowed(query)) };
    let declared = single_header(raw, header::CONTENT_SHA256)?;
    if !declared.eq_ignore_ascii_case(&sha256_hex(raw.body)) {
        return Err(Fault::caller(
            Code::SignatureMismatch,
            format!("The header `{}` does not match the body.", header::CONTENT_SHA256),
        ));
    }
    let mut all = query.to_vec();
    all.extend(decode_form(body, "form body")?);
    reject_duplicates(&all)?;
    Ok(Cow::Owned(all))
}

/// `Format`: JSON or XML, any case.
fn response_format(value: &str) -> Result<Format, Fault> {
    if value.eq_ignore_ascii_case(FORMAT_JSON) {
        Ok(Format::Json)
    } else if value.eq_ignore_ascii_case(FORMAT_XML) {
        Ok(Format::Xml)
    } else {
        Err(Fault::caller(Code::InvalidParameterValue, format!("`Format` must be JSON or XML, not `{value}`.")))
    }
}

/// The operation: what cannot be an id on any provider is refused here; whether an id (or the key name)
/// fits the provider that receives it is decided after routing ([`crate::translate::check_ids`]), since
/// an ECS caller may name a machine that lives on CVM.
fn decode_operation(action: Action, params: &[Param<'_>], maps: &Mappings) -> Result<Operation, Fault> {
    let limits = maps.limits(DIALECT);
    let mut op = Operation::new(action);
    op.region = Some(region(params)?);
    match action {
        Action::AssociateKeys | Action::DisassociateKeys => {
            let name = required(params, param::KEY_PAIR_NAME)?;
            if name.is_empty() {
                return Err(missing(param::KEY_PAIR_NAME));
            }
            could_be_ids(param::KEY_PAIR_NAME, &[name], maps.longest_key(), Code::MalformedKeyId)?;
            op.keys = Keys::Names(vec![name.to_owned()]);
            op.instances = instance_ids(params, maps, limits.instances)?
                .filter(|ids| !ids.is_empty())
                .ok_or_else(|| missing(param::INSTANCE_IDS))?;
        }
        Action::DescribeKeys => {
            positive_integer(params, param::PAGE_NUMBER, None)?;
            positive_integer(params, param::PAGE_SIZE, Some(limits.lookup_keys))?;
            let names = match single(params, param::KEY_PAIR_NAME)? {
                None | Some("") => Vec::new(),
                Some(name) if is_name_filter(limits, name) => vec![name.to_owned()],
                Some(name) => return Err(malformed_key_name(name)),
            };
            op.keys = Keys::Names(names);
        }
        Action::DescribeInstances => {
            positive_integer(params, param::MAX_RESULTS, None)?;
            op.instances = instance_ids(params, maps, limits.lookup_instances)?.unwrap_or_default();
        }
        Action::ImportKey => {
            let name = required(params, param::KEY_PAIR_NAME)?;
            let public_key = required(params, param::PUBLIC_KEY_BODY)?;
            if name.is_empty() {
                return Err(missing(param::KEY_PAIR_NAME));
            }
            if public_key.is_empty() {
                return Err(missing(param::PUBLIC_KEY_BODY));
            }
            op.keys = Keys::Names(vec![name.to_owned()]);
            op.public_key = Some(public_key.to_owned());
        }
        Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
            let instance = required(params, param::INSTANCE_ID)?;
            if instance.is_empty() {
                return Err(missing(param::INSTANCE_ID));
            }
            could_be_ids(param::INSTANCE_ID, &[instance], maps.longest_instance_id(), Code::MalformedInstanceId)?;
            op.instances = vec![instance.to_owned()];
            op.force_stop = single(params, param::FORCE_STOP)?
                .map(|v| crate::dialect::params::boolean(param::FORCE_STOP, v))
                .transpose()?;
        }
    }
    Ok(op)
}

fn region(params: &[Param<'_>]) -> Result<String, Fault> {
    let region = required(params, param::REGION_ID)?;
    let well_formed = !region.is_empty()
        && region.len() <= MAX_REGION_LEN
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if well_formed {
        Ok(region.to_owned())
    } else {
        Err(Fault::caller(Code::InvalidParameterValue, format!("The RegionId `{}` is not valid.", shorten(region))))
    }
}

/// `InstanceIds`, a JSON-array string: at most `limit` entries, each something that can be an instance id
/// somewhere, none repeated.
fn instance_ids(params: &[Param<'_>], maps: &Mappings, limit: usize) -> Result<Option<Vec<String>>, Fault> {
    let Some(value) = single(params, param::INSTANCE_IDS)? else { return Ok(None) };
    let ids = json_string_array(param::INSTANCE_IDS, value)?;
    if ids.len() > limit {
        return Err(Fault::caller(
            Code::LimitExceeded,
            format!("`InstanceIds` names {} instances; at most {limit} are allowed.", ids.len()),
        ));
    }
    could_be_ids(param::INSTANCE_IDS, &ids, maps.longest_instance_id(), Code::MalformedInstanceId)?;
    reject_repeated_values(param::INSTANCE_IDS, &ids)?;
    Ok(Some(ids))
}

/// A `DescribeKeyPairs` name filter: a key name, or one with `*` wildcards (`*SshKey*`).
fn is_name_filter(limits: &Limits, name: &str) -> bool {
    if limits.key_id.matches(name) {
        return true;
    }
    let bare: String = name.chars().filter(|c| *c != '*').collect();
    name.contains('*')
        && name.chars().count() <= limits.key_id.max_len
        && bare.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '.' | '-'))
}

/// An optional integer parameter from 1 up to `max`.
fn positive_integer(params: &[Param<'_>], name: &str, max: Option<usize>) -> Result<(), Fault> {
    let Some(value) = single(params, name)? else { return Ok(()) };
    let n: usize = value.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        Fault::caller(
            Code::InvalidParameterValue,
            format!("`{name}` must be a positive integer, not `{}`.", shorten(value)),
        )
    })?;
    match max {
        Some(max) if n > max => {
            Err(Fault::caller(Code::LimitExceeded, format!("`{name}` is {n}; at most {max} is allowed.")))
        }
        _ => Ok(()),
    }
}

fn malformed_key_name(name: &str) -> Fault {
    Fault::caller(
        Code::MalformedKeyId,
        format!(
            "The KeyPairName `{}` is malformed: 2-128 characters, starting with a letter; letters, digits, `:` `_` `.` `-`.",
            shorten(name)
        ),
    )
}

/// At most 64 characters of a caller's value, for a message.
fn shorten(value: &str) -> Cow<'_, str> {
    match value.char_indices().nth(64) {
        Some((end, _)) => Cow::Owned(format!("{}...", &value[..end])),
        None => Cow::Borrowed(value),
    }
}

// === reply ===

/// What the reply to this request needs, read tolerantly: never fails. ACS3 requests (told by their
/// `Authorization: ACS3-HMAC-SHA256 ...` header alone) are answered in JSON; every other request, errors
/// included, in its `Format` (XML when absent, JSON when unreadable), even when it carries the `x-acs-action`
/// header that aliyun-python-sdk-core adds to its RPC requests.
pub fn reply(raw: &RawRequest<'_>, maps: &Mappings, request_id: String) -> Reply {
    let acs3 = raw.header(header::AUTHORIZATION).is_some_and(|a| a.starts_with(Scheme::Acs3.name()));
    let body = raw.form_body();
    let lookup = |name: &str| lenient_param(raw.query, name).or_else(|| lenient_param(body, name));
    let (wire_action, format) = if acs3 {
        (raw.header(header::ACTION).unwrap_or("").to_owned(), Format::Json)
    } else {
        let format = match lookup(param::FORMAT) {
            None => Format::Xml,
            Some(f) => response_format(&f).unwrap_or(Format::Json),
        };
        (lookup(param::ACTION).map(Cow::into_owned).unwrap_or_default(), format)
    };
    let action = maps.action(DIALECT, &wire_action).map(|e| e.action);
    let page = (action == Some(Action::DescribeKeys))
        .then(|| {
            let count = |name: &str| lookup(name).and_then(|v| v.parse::<usize>().ok()).filter(|n| *n >= 1);
            asked_page(count(param::PAGE_NUMBER), count(param::PAGE_SIZE), maps.limits(DIALECT))
        })
        .flatten();
    Reply {
        dialect: DIALECT,
        style: Style::New,
        action,
        wire_action,
        format,
        request_id,
        key_name: lookup(param::KEY_PAIR_NAME).map(Cow::into_owned),
        host: raw.host().to_owned(),
        page,
    }
}

/// The page of a key look-up a caller asked for: `PageNumber` from 1, `PageSize` up to `lookup_keys`
/// (its default `lookup_page_size`); `None` when it named neither. Values that do not read as positive
/// counts are ignored here and refused by [`decode_request`].
fn asked_page(number: Option<usize>, size: Option<usize>, limits: &Limits) -> Option<Page> {
    if number.is_none() && size.is_none() {
        return None;
    }
    let limit = size.unwrap_or(limits.lookup_page_size).min(limits.lookup_keys);
    Some(Page { offset: number.unwrap_or(1).saturating_sub(1).saturating_mul(limit), limit })
}

/// The first decodable value of `name` in a form text, skipping what does not decode.
fn lenient_param<'a>(text: &'a str, name: &str) -> Option<Cow<'a, str>> {
    text.split('&').find_map(|item| {
        let raw_name = item.split('=').next().unwrap_or("");
        if raw_name != name && !raw_name.contains(['%', '+']) {
            return None;
        }
        let (n, v) = form_decode_item(item).ok()?;
        (n == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_faults_are_malformed_signatures() {
        let a =
            parse_authorization("ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host;x-acs-date,Signature=ab").unwrap();
        assert_eq!((a.credential_id, a.signature), ("id", "ab"));
        for bad in [
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA1 Credential=id,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=id,Credential=id,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=id,SignedHeaders=host;;a,Signature=ab",
            "ACS3-HMAC-SHA256 Credential=id,Foo=1,SignedHeaders=host,Signature=ab",
            "ACS3-HMAC-SHA256 Credential",
        ] {
            assert_eq!(parse_authorization(bad).err().map(|f| f.code()), Some(Code::MalformedSignature), "{bad}");
        }
    }

    #[test]
    fn lenient_params_skip_garbage() {
        assert_eq!(lenient_param("a=%FF&Action=AttachKeyPair", "Action").as_deref(), Some("AttachKeyPair"));
        assert_eq!(lenient_param("Action=%FF&Format=xml", "Action"), None);
        assert_eq!(lenient_param("%41ction=X", "Action").as_deref(), Some("X"));
        assert_eq!(lenient_param("", "Action"), None);
    }

    #[test]
    fn rpc_requests_keep_their_format_whatever_headers_they_carry() {
        let maps = Mappings::embedded().unwrap();
        let reply_to = |query: &str, headers: &[(&'static str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (n, v) in headers {
                map.insert(*n, v.parse().unwrap());
            }
            let raw = RawRequest { method: "POST", path: "/", query, headers: &map, body: b"" };
            reply(&raw, &maps, "R".into())
        };
        let core = [("x-acs-action", "AttachKeyPair"), ("x-acs-version", "2014-05-26")];
        let r = reply_to("Action=AttachKeyPair&Format=xml", &core);
        assert_eq!((r.format, r.wire_action.as_str()), (Format::Xml, "AttachKeyPair"));
        assert_eq!(reply_to("Action=AttachKeyPair&Format=JSON", &core).format, Format::Json);
        assert_eq!(reply_to("Action=AttachKeyPair", &core).format, Format::Xml, "XML when absent");
        let acs3 = [("authorization", "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=0"), core[0]];
        let r = reply_to("Format=XML", &acs3);
        assert_eq!((r.format, r.wire_action.as_str()), (Format::Json, "AttachKeyPair"), "ACS3 answers in JSON");
    }

    #[test]
    fn shorten_cuts_long_values() {
        assert_eq!(shorten("abc"), "abc");
        let long = "é".repeat(100);
        assert_eq!(shorten(&long).chars().count(), 67);
    }
}
