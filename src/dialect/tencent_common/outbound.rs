//! What an upstream request carries for a canonical [`Operation`], and the v1-signed form that carries it
//! (protocols.md 3.1, 4.1; `shared/reference/signing.md` §2 "Steps to produce").
//!
//! [`Business`] is the action's parameters, independent of encoding; `tencent_v3` serialises it as JSON,
//! and [`Business::push_form`] flattens it 0-based (`InstanceIds.0`, `Filters.0.Values.0`) as the API 3.0
//! SDKs do.

use std::borrow::Cow;

use super::{header, media, param};
use crate::dialect::{Dialect, UpstreamCtx, WireRequest};
use crate::mapping::Mappings;
use crate::model::{Action, Code, Fault, Keys, Operation};
use crate::secret::Secret;
use crate::sign::encoding::form_encode;
use crate::sign::{self, Param, Scheme, SignInput};

/// The most digits a v1 `Nonce` may have.
const MAX_NONCE_DIGITS: usize = 20;

/// An operation's business parameters as a Tencent upstream takes them.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Business<'o> {
    /// `InstanceIds`.
    pub(crate) instance_ids: Option<&'o [String]>,
    /// `KeyIds`.
    pub(crate) key_ids: Option<&'o [String]>,
    /// The values of a `key-name` filter.
    pub(crate) key_names: Option<&'o [String]>,
    /// `ForceStop` (never for Lighthouse, which has none and always stops a running instance).
    pub(crate) force_stop: Option<bool>,
    /// `Limit` for a look-up: the page asked for, else the dialect's maximum, so that no default page (20)
    /// truncates the answer.
    pub(crate) limit: Option<usize>,
    /// `Offset` for a key look-up that asks for a later page.
    pub(crate) offset: Option<usize>,
    /// `KeyName` of a key to import.
    pub(crate) key_name: Option<&'o str>,
    /// `PublicKey` of a key to import.
    pub(crate) public_key: Option<&'o str>,
    /// `ProjectId` of a key imported on CVM (the default project, 0).
    pub(crate) project_id: Option<u64>,
    /// `StopType` of a CVM stop or reboot: `HARD` when forced.
    pub(crate) stop_type: Option<&'static str>,
}

impl<'o> Business<'o> {
    /// The parameters of `op` for `dialect`.
    ///
    /// # Errors
    /// A gateway fault for what the dialect cannot express: key names in a bind (Tencent binds by id),
    /// instances in a key look-up, keys in an instance look-up.
    pub(crate) fn of(dialect: Dialect, op: &'o Operation, maps: &Mappings) -> Result<Business<'o>, Fault> {
        let limits = maps.limits(dialect);
        let non_empty = |v: &'o [String]| (!v.is_empty()).then_some(v);
        let cannot =
            |what: &str| Fault::gateway(Code::Internal, format!("{dialect} cannot express {what} in `{}`.", op.action));
        match op.action {
            Action::AssociateKeys | Action::DisassociateKeys => {
                let Keys::Ids(ids) = &op.keys else { return Err(cannot("key pairs by name")) };
                let force_stop = if dialect == Dialect::TencentLighthouse { None } else { op.force_stop };
                Ok(Business {
                    instance_ids: Some(&op.instances),
                    key_ids: Some(ids),
                    force_stop,
                    ..Business::default()
                })
            }
            Action::DescribeKeys => {
                if !op.instances.is_empty() {
                    return Err(cannot("instance ids"));
                }
                let (key_ids, key_names) = match &op.keys {
                    Keys::Ids(ids) => (non_empty(ids), None),
                    Keys::Names(names) => (None, non_empty(names)),
                };
                Ok(Business {
                    key_ids,
                    key_names,
                    limit: Some(op.page.map_or(limits.lookup_keys, |p| p.limit)),
                    offset: op.page.map(|p| p.offset),
                    ..Business::default()
                })
            }
            Action::DescribeInstances => {
                if !op.keys.is_empty() {
                    return Err(cannot("key pairs"));
                }
                Ok(Business {
                    instance_ids: non_empty(&op.instances),
                    limit: Some(limits.lookup_instances),
                    ..Business::default()
                })
            }
            Action::ImportKey => {
                let (Keys::Names(names), Some(public_key)) = (&op.keys, &op.public_key) else {
                    return Err(cannot("a key import without a name and a public key"));
                };
                let [name] = names.as_slice() else { return Err(cannot("an import of several keys")) };
                Ok(Business {
                    key_name: Some(name),
                    public_key: Some(public_key),
                    project_id: (dialect == Dialect::TencentCvm).then_some(0),
                    ..Business::default()
                })
            }
            Action::StartInstances | Action::StopInstances | Action::RebootInstances => {
                if !op.keys.is_empty() {
                    return Err(cannot("key pairs"));
                }
                let forced = op.action != Action::StartInstances && dialect != Dialect::TencentLighthouse;
                Ok(Business {
                    instance_ids: Some(&op.instances),
                    stop_type: (forced && op.force_stop == Some(true)).then_some(param::STOP_TYPES[0]),
                    ..Business::default()
                })
            }
        }
    }

    /// Appends the parameters flattened 0-based; booleans as `true`/`false` or as `spell` chooses.
    pub(crate) fn push_form(&self, out: &mut Vec<Param<'static>>, spell: fn(bool) -> &'static str) {
        let list = |out: &mut Vec<Param<'static>>, name: &str, values: &[String]| {
            for (i, v) in values.iter().enumerate() {
                out.push((Cow::Owned(format!("{name}.{i}")), Cow::Owned(v.clone())));
            }
        };
        if let Some(ids) = self.instance_ids {
            list(out, param::INSTANCE_IDS, ids);
        }
        if let Some(ids) = self.key_ids {
            list(out, param::KEY_IDS, ids);
        }
        if let Some(names) = self.key_names {
            out.push((
                Cow::Owned(format!("{}.0.{}", param::FILTERS, param::FILTER_NAME)),
                Cow::Borrowed(param::KEY_NAME_FILTER),
            ));
            list(out, &format!("{}.0.{}", param::FILTERS, param::FILTER_VALUES), names);
        }
        if let Some(force_stop) = self.force_stop {
            out.push((Cow::Borrowed(param::FORCE_STOP), Cow::Borrowed(spell(force_stop))));
        }
        if let Some(limit) = self.limit {
            out.push((Cow::Borrowed(param::LIMIT), Cow::Owned(limit.to_string())));
        }
        if let Some(offset) = self.offset {
            out.push((Cow::Borrowed(param::OFFSET), Cow::Owned(offset.to_string())));
        }
        if let Some(name) = self.key_name {
            out.push((Cow::Borrowed(param::KEY_NAME), Cow::Owned(name.to_owned())));
        }
        if let Some(key) = self.public_key {
            out.push((Cow::Borrowed(param::PUBLIC_KEY), Cow::Owned(key.to_owned())));
        }
        if let Some(project) = self.project_id {
            out.push((Cow::Borrowed(param::PROJECT_ID), Cow::Owned(project.to_string())));
        }
        if let Some(kind) = self.stop_type {
            out.push((Cow::Borrowed(param::STOP_TYPE), Cow::Borrowed(kind)));
        }
    }
}

/// The common parameters of a v1 request besides the signature itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct V1Common<'c> {
    /// Where the request goes, as whom, when.
    pub(crate) ctx: &'c UpstreamCtx,
    /// `/v2/index.php` or `/`.
    pub(crate) path: &'static str,
    /// The wire action.
    pub(crate) action: &'c str,
    /// The API version, when the action carries one.
    pub(crate) version: Option<&'c str>,
}

/// A POST form signed with signature v1: the common parameters, then `business`, then `Signature`.
///
/// # Errors
/// A gateway fault when `ctx.scheme` is not a v1 scheme.
pub(crate) fn v1_signed_form(
    common: V1Common<'_>,
    business: Vec<Param<'static>>,
    key: &Secret,
) -> Result<WireRequest, Fault> {
    let ctx = common.ctx;
    if !matches!(ctx.scheme, Scheme::TencentV1Sha1 | Scheme::TencentV1Sha256) {
        return Err(Fault::gateway(Code::Internal, format!("A v1 form cannot be signed with {}.", ctx.scheme.name())));
    }
    let mut params: Vec<Param<'_>> = Vec::with_capacity(business.len() + 9);
    params.push((param::ACTION.into(), common.action.into()));
    if let Some(version) = common.version {
        params.push((param::VERSION.into(), version.into()));
    }
    if !ctx.region.is_empty() {
        params.push((param::REGION.into(), ctx.region.as_str().into()));
    }
    params.push((param::TIMESTAMP.into(), ctx.timestamp.to_string().into()));
    params.push((param::NONCE.into(), numeric_nonce(&ctx.nonce)));
    params.push((param::SECRET_ID.into(), ctx.credential_id.as_str().into()));
    params.push((param::SIGNATURE_METHOD.into(), ctx.scheme.name().into()));
    params.extend(business);
    let input = SignInput { method: "POST", host: &ctx.host, path: common.path, params, ..SignInput::default() };
    let signed = sign::sign(ctx.scheme, &input, &ctx.credential_id, key);
    let mut params = input.params;
    params.push((param::SIGNATURE.into(), signed.signature.into()));
    Ok(WireRequest {
        method: "POST",
        host: ctx.host.clone(),
        path: common.path,
        query: String::new(),
        headers: vec![(header::OUT_CONTENT_TYPE, media::FORM.to_owned())],
        body: form_encode(&params).into_bytes(),
    })
}

/// A v1 `Nonce` is a positive integer: a numeric context nonce is used as it is, any other is folded into
/// one (FNV-1a), so the same fresh nonce always gives the same number.
pub(crate) fn numeric_nonce(nonce: &str) -> Cow<'_, str> {
    let numeric = !nonce.is_empty()
        && nonce.len() <= MAX_NONCE_DIGITS
        && nonce.bytes().all(|b| b.is_ascii_digit())
        && nonce.bytes().any(|b| b != b'0');
    if numeric {
        return Cow::Borrowed(nonce);
    }
    let hash = nonce.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    Cow::Owned((hash % u64::from(u32::MAX) + 1).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_positive_integers() {
        assert_eq!(numeric_nonce("11886"), "11886");
        for other in ["", "0", "6f1e2d-uuid", "-1", &"9".repeat(30)] {
            let n = numeric_nonce(other);
            assert!(n.bytes().all(|b| b.is_ascii_digit()) && n != "0", "{other} -> {n}");
            assert_eq!(n, numeric_nonce(other));
        }
    }

    #[test]
    fn business_refuses_what_tencent_cannot_express() {
        let maps = Mappings::embedded().unwrap();
        let mut op = Operation::new(Action::AssociateKeys);
        op.keys = Keys::Names(vec!["name".into()]);
        assert_eq!(Business::of(Dialect::TencentCvm, &op, &maps).unwrap_err().code(), Code::Internal);
        let mut op = Operation::new(Action::DescribeInstances);
        op.keys = Keys::Ids(vec!["skey-aaaaaaaa".into()]);
        assert!(Business::of(Dialect::TencentCvm, &op, &maps).is_err());
    }

    #[test]
    fn a_key_look_up_asks_for_its_page() {
        let maps = Mappings::embedded().unwrap();
        let mut op = Operation::new(Action::DescribeKeys);
        let whole = Business::of(Dialect::TencentCvm, &op, &maps).unwrap();
        assert_eq!((whole.offset, whole.limit), (None, Some(100)));
        op.page = Some(crate::model::Page { offset: 200, limit: 100 });
        let later = Business::of(Dialect::TencentLighthouse, &op, &maps).unwrap();
        assert_eq!((later.offset, later.limit), (Some(200), Some(100)));
        let mut form = Vec::new();
        later.push_form(&mut form, |b| if b { "true" } else { "false" });
        let names: Vec<&str> = form.iter().map(|(n, _)| n.as_ref()).collect();
        assert_eq!(names, ["Limit", "Offset"]);
    }

    #[test]
    fn lighthouse_never_gets_force_stop() {
        let maps = Mappings::embedded().unwrap();
        let mut op = Operation::new(Action::AssociateKeys);
        op.force_stop = Some(true);
        assert_eq!(Business::of(Dialect::TencentLighthouse, &op, &maps).unwrap().force_stop, None);
        assert_eq!(Business::of(Dialect::TencentCvm, &op, &maps).unwrap().force_stop, Some(true));
    }
}
