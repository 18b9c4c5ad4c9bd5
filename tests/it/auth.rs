//! Authentication failures in every caller dialect and scheme: a bad signature, an unknown credential id,
//! an expired time stamp and a reused nonce (where the scheme has one). Each gets the dialect's exact
//! code, HTTP status and content type, echoes the RequestId, is audited, and forwards nothing.

use crossgate::dialect::{Dialect, WireRequest};
use crossgate::sign::Scheme;
use crossgate::sign::tencent_v1::Hash;

use crate::harness::{Env, Got, Signer, bind_op, ecs_acs3_request, ecs_rpc_request, v1_request};

/// One way of calling: how to make a bind signed by a given signer.
struct Variant {
    name: &'static str,
    dialect: Dialect,
    /// The answer is the legacy old-style `{"code", "message", "codeDesc"}`.
    old_style: bool,
    /// XML answers (ECS `Format=XML`).
    xml: bool,
    /// The scheme carries a nonce.
    nonce: bool,
    /// The request, and (ECS) the string to sign the client computed.
    make: fn(&Env, &Signer) -> (WireRequest, Option<String>),
}

fn v2_new(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let op = bind_op(Dialect::TencentV2, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]);
    (env.signed_by(Dialect::TencentV2, Scheme::TencentV1Sha256, &op, s), None)
}

fn v2_old(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let params = [
        ("Action", "BindInstanceKey"),
        ("Region", "ap-guangzhou"),
        ("instanceIds.0", "ins-1e4r6y8i"),
        ("keyId", "skey-4e5ty7i8"),
    ];
    (v1_request(&env.host(), "GET", "/v2/index.php", &params, Hash::Sha1, s), None)
}

fn cvm_tc3(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let op = bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]);
    (env.signed_by(Dialect::TencentCvm, Scheme::Tc3, &op, s), None)
}

fn cvm_v1(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let op = bind_op(Dialect::TencentCvm, &["ins-1e4r6y8i"], &["skey-4e5ty7i8"]);
    (env.signed_by(Dialect::TencentCvm, Scheme::TencentV1Sha256, &op, s), None)
}

fn lighthouse_tc3(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let op = bind_op(Dialect::TencentLighthouse, &["lhins-3k9d8f7s"], &["lhkp-f7rjie1q"]);
    (env.signed_by(Dialect::TencentLighthouse, Scheme::Tc3, &op, s), None)
}

fn ecs_params(format: &'static str) -> [(&'static str, &'static str); 5] {
    [
        ("Action", "AttachKeyPair"),
        ("Format", format),
        ("RegionId", "cn-hangzhou"),
        ("InstanceIds", "[\"i-m5eg7be9ndloji64jknv\"]"),
        ("KeyPairName", "FinanceJoshuaV25"),
    ]
}

fn ecs_json(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let (wire, sts) = ecs_rpc_request(&env.host(), &ecs_params("JSON"), s);
    (wire, Some(sts))
}

fn ecs_xml(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let (wire, sts) = ecs_rpc_request(&env.host(), &ecs_params("XML"), s);
    (wire, Some(sts))
}

fn ecs_acs3(env: &Env, s: &Signer) -> (WireRequest, Option<String>) {
    let params = [
        ("InstanceIds", "[\"i-m5eg7be9ndloji64jknv\"]"),
        ("KeyPairName", "FinanceJoshuaV25"),
        ("RegionId", "cn-hangzhou"),
    ];
    let (wire, sts) = ecs_acs3_request(&env.host(), "AttachKeyPair", &params, s);
    (wire, Some(sts))
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "v2 new-style HmacSHA256",
        dialect: Dialect::TencentV2,
        old_style: false,
        xml: false,
        nonce: true,
        make: v2_new,
    },
    Variant {
        name: "v2 old-style BindInstanceKey HmacSHA1",
        dialect: Dialect::TencentV2,
        old_style: true,
        xml: false,
        nonce: true,
        make: v2_old,
    },
    Variant {
        name: "cvm TC3",
        dialect: Dialect::TencentCvm,
        old_style: false,
        xml: false,
        nonce: false,
        make: cvm_tc3,
    },
    Variant {
        name: "cvm HmacSHA256",
        dialect: Dialect::TencentCvm,
        old_style: false,
        xml: false,
        nonce: true,
        make: cvm_v1,
    },
    Variant {
        name: "lighthouse TC3",
        dialect: Dialect::TencentLighthouse,
        old_style: false,
        xml: false,
        nonce: false,
        make: lighthouse_tc3,
    },
    Variant {
        name: "ecs RPC JSON",
        dialect: Dialect::AliyunEcs,
        old_style: false,
        xml: false,
        nonce: true,
        make: ecs_json,
    },
    Variant {
        name: "ecs RPC XML",
        dialect: Dialect::AliyunEcs,
        old_style: false,
        xml: true,
        nonce: true,
        make: ecs_xml,
    },
    Variant {
        name: "ecs ACS3",
        dialect: Dialect::AliyunEcs,
        old_style: false,
        xml: false,
        nonce: true,
        make: ecs_acs3,
    },
];

/// The four failures, in the order of [`expected`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    BadSignature,
    UnknownId,
    Expired,
    NonceReused,
}

/// The code, HTTP status and (old-style) numeric code each dialect answers (protocols.md section 6).
fn expected(v: &Variant, failure: Failure) -> (&'static str, u16, Option<i64>) {
    use Failure::*;
    match (v.dialect, failure) {
        (Dialect::AliyunEcs, BadSignature) => ("SignatureDoesNotMatch", 400, None),
        (Dialect::AliyunEcs, UnknownId) => ("InvalidAccessKeyId.NotFound", 404, None),
        (Dialect::AliyunEcs, Expired) => ("InvalidTimeStamp.Expired", 400, None),
        (Dialect::AliyunEcs, NonceReused) => ("SignatureNonceUsed", 400, None),
        (Dialect::TencentV2, BadSignature) => ("InvalidParameter.SignatureFailure", 200, Some(4100)),
        (Dialect::TencentV2, UnknownId) => ("InvalidParameter.SecretIdNotFound", 200, Some(4104)),
        (Dialect::TencentV2, Expired | NonceReused) => ("InvalidRequest.ReplayAttack", 200, Some(4500)),
        (_, BadSignature | NonceReused) => ("AuthFailure.SignatureFailure", 200, None),
        (_, UnknownId) => ("AuthFailure.SecretIdNotFound", 200, None),
        (_, Expired) => ("AuthFailure.SignatureExpire", 200, None),
    }
}

/// Everything a refused request must show, whatever the failure.
fn assert_refused(env: &Env, v: &Variant, failure: Failure, signer: &Signer, got: &Got, string_to_sign: Option<&str>) {
    let case = format!("{} / {failure:?}", v.name);
    let (code, status, number) = expected(v, failure);
    let content_type = match (v.dialect, v.xml) {
        (Dialect::AliyunEcs, true) => "text/xml;charset=utf-8",
        (Dialect::AliyunEcs, false) => "application/json;charset=utf-8",
        _ => "application/json",
    };
    assert_eq!((got.status, got.content_type()), (status, content_type), "{case}: {}", got.text());
    assert_eq!(got.error_code(v.dialect).as_deref(), Some(code), "{case}: {}", got.text());
    if v.old_style {
        assert_eq!(got.json()["code"], number.unwrap(), "{case}: the old-style code is a JSON number");
    }
    if let (Failure::BadSignature, Some(sts)) = (failure, string_to_sign) {
        let message = got.error_message(v.dialect);
        assert!(
            message.ends_with(&format!("server string to sign is:{sts}")),
            "{case}: {message:?}\nexpected to end with {sts:?}"
        );
    }

    let line = env.audit_lines().pop().expect("an audit line");
    match got.request_id(v.dialect).filter(|_| !v.old_style) {
        Some(id) => assert_eq!(line.request_id, id, "{case}: the RequestId is echoed and audited"),
        None => assert!(v.old_style, "{case}: no RequestId in {}", got.text()),
    }
    assert!(!line.request_id.is_empty(), "{case}");
    assert_eq!((line.code.as_str(), line.status), (code, status), "{case}");
    assert_eq!(line.fault_source.as_deref(), Some("caller"), "{case}");
    assert_eq!(line.dialect.as_deref(), Some(v.dialect.name()), "{case}");
    assert_eq!(
        line.caller.as_deref(),
        Some(signer.id.as_str()),
        "{case}: a refused caller is audited by the id it presented"
    );
    assert!(line.upstreams.is_empty(), "{case}");
}

#[tokio::test]
async fn auth_failures_are_answered_in_every_dialect() {
    for v in VARIANTS {
        let env = Env::with("", "").await;
        let cases = [
            (Failure::BadSignature, Signer::wrong_secret()),
            (Failure::UnknownId, Signer::unknown_id()),
            (Failure::Expired, Signer::an_hour_ago()),
        ];
        for (failure, signer) in cases {
            let (wire, sts) = (v.make)(&env, &signer);
            let got = env.send(&wire).await;
            assert_refused(&env, v, failure, &signer, &got, sts.as_deref());
        }
        assert!(env.sim().seen().is_empty(), "{}: nothing forwarded", v.name);

        if v.nonce {
            let signer = Signer::demo();
            let (wire, _) = (v.make)(&env, &signer);
            let first = env.send(&wire).await;
            assert_eq!(first.error_code(v.dialect), None, "{}: the first use passes: {}", v.name, first.text());
            assert_eq!(env.sim().seen().len(), 1, "{}", v.name);
            let again = env.send(&wire).await;
            assert_refused(&env, v, Failure::NonceReused, &signer, &again, None);
            assert_eq!(env.sim().seen().len(), 1, "{}: the replay was not forwarded", v.name);
        }
        assert_eq!(env.audit_lines().len(), if v.nonce { 5 } else { 3 }, "{}: one line per request", v.name);
    }
}
