//! The per-request CPU cost of the protocol work, without the network: detect, read the signature
//! material, verify, decode, translate, encode and re-sign for the upstream, then read the upstream's
//! reply and answer the caller. `full_translation/*` is the whole of it, through the same translation
//! functions the gateway calls (ids and keys renamed through the config's tables, ids checked against
//! the target's formats, batches split, outcomes merged back). The target is under 20 microseconds per
//! request for all of crossgate's work, serving and audit included, which these leave out.
//! Run with `cargo bench --bench hot_path`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossgate::config::Names;
use crossgate::dialect::{self, Dialect, Reply, UpstreamCtx, WireRequest, WireResponse};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Keys, Operation, Provider};
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use crossgate::translate::{self, Back, Placed};
use http::{HeaderMap, HeaderValue};
use support::Received;

const CALLER_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const CALLER_SECRET: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

fn caller_request(maps: &Mappings, dialect: Dialect, scheme: Scheme, instances: usize) -> Received {
    let mut op = Operation::new(Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = (0..instances).map(|i| format!("ins-{i:08}")).collect();
    op.keys = match dialect {
        Dialect::AliyunEcs => Keys::Names(vec!["FinanceJoshuaV25".into()]),
        _ => Keys::Ids(vec!["skey-4e5ty7i8".into()]),
    };
    let ctx = UpstreamCtx {
        host: "crossgate.example:8080".into(),
        region: "ap-guangzhou".into(),
        credential_id: CALLER_ID.into(),
        scheme,
        timestamp: 1_714_550_400,
        nonce: "12345".into(),
    };
    support::received(
        dialect::encode_request(dialect, &op, &ctx, &Secret::new(CALLER_SECRET), maps).unwrap(),
        CALLER_SECRET,
    )
}

/// Verify + translate + re-sign: what the gateway does between receiving a request and sending it on.
fn verify_translate_resign(
    maps: &Mappings,
    received: &Received,
    target: Dialect,
    caller_key: &Secret,
    upstream_key: &Secret,
) -> WireRequest {
    let raw = received.raw();
    let found = dialect::detect(&raw, maps).unwrap();
    let material = dialect::auth_material(found.dialect, &raw).unwrap();
    sign::verify(&material, caller_key).unwrap();
    let mut op = dialect::decode_request(found.dialect, &raw, &material, maps).unwrap();
    op.region = Some("cn-hangzhou".into());
    if target == Dialect::AliyunEcs {
        op.keys = Keys::Names(vec!["FinanceJoshuaV25".into()]);
    }
    let ctx = UpstreamCtx {
        host: "ecs.aliyuncs.com".into(),
        region: "cn-hangzhou".into(),
        credential_id: "LTAIupstream".into(),
        scheme: if target == Dialect::AliyunEcs { Scheme::Acs3 } else { Scheme::Tc3 },
        timestamp: 1_714_550_401,
        nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
    };
    dialect::encode_request(target, &op, &ctx, upstream_key, maps).unwrap()
}

/// Where a full translation goes, and what answers it.
struct Target<'a> {
    provider: Provider,
    scheme: Scheme,
    host: &'a str,
    region: &'a str,
    /// The upstream's success answer and its content type.
    answer: (&'a [u8], &'a str),
}

/// Everything the gateway's protocol work does for one request, as `gateway.rs` orders it: detect,
/// verify, decode, translate into upstream legs, encode and sign each leg, read each leg's answer, merge,
/// and answer the caller in its dialect.
fn full_translation(
    maps: &Mappings,
    received: &Received,
    keys_table: &[Names],
    target: &Target<'_>,
    caller_key: &Secret,
    upstream_key: &Secret,
) -> WireResponse {
    let raw = received.raw();
    let found = dialect::detect(&raw, maps).unwrap();
    let material = dialect::auth_material(found.dialect, &raw).unwrap();
    sign::verify(&material, caller_key).unwrap();
    let op = dialect::decode_request(found.dialect, &raw, &material, maps).unwrap();
    let reply = dialect::reply(found.dialect, &raw, maps, "6EF60BEC-0242-43AF-BB20-270359FB54A7".into());
    let caller = found.dialect.provider();
    let placed = op
        .instances
        .iter()
        .map(|id| Placed {
            caller_id: id.clone(),
            upstream_id: translate::instance_on(&[], id, target.provider).unwrap(),
        })
        .collect::<Vec<_>>();
    translate::check_ids(maps, keys_table, &op, caller, target.provider, &placed).unwrap();
    let mut leg_op = op.clone();
    leg_op.region = Some(target.region.into());
    leg_op.keys = translate::keys_on(keys_table, &op.keys, caller, target.provider).unwrap().unwrap();
    let legs = translate::split(maps, "upstream", target.provider, leg_op, placed).unwrap();
    let upstream_dialect = Dialect::of_provider(target.provider);
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_str(target.answer.1).unwrap());
    let results = legs
        .iter()
        .map(|leg| {
            let ctx = UpstreamCtx {
                host: target.host.into(),
                region: target.region.into(),
                credential_id: "LTAIupstream".into(),
                scheme: target.scheme,
                timestamp: 1_714_550_401,
                nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
            };
            black_box(dialect::encode_request(upstream_dialect, &leg.op, &ctx, upstream_key, maps).unwrap());
            dialect::decode_response(upstream_dialect, 200, &headers, target.answer.0, &leg.op, maps)
        })
        .collect();
    let back = Back { caller, keys: keys_table };
    let merged = translate::merge(&reply.request_id, &op, &legs, results, back);
    dialect::encode_response(&reply, &merged, maps)
}

fn bench(c: &mut Criterion) {
    let maps = Mappings::embedded().unwrap();
    let caller_key = Secret::new(CALLER_SECRET);
    let upstream_key = Secret::new("upstream-secret");
    for (name, dialect, scheme) in [
        ("cvm_tc3", Dialect::TencentCvm, Scheme::Tc3),
        ("legacy_v2_hmacsha256", Dialect::TencentV2, Scheme::TencentV1Sha256),
    ] {
        let received = caller_request(&maps, dialect, scheme, 2);
        for (target_name, target) in [("to_cvm", Dialect::TencentCvm), ("to_ecs", Dialect::AliyunEcs)] {
            c.bench_function(&format!("verify_translate_resign/{name}/{target_name}"), |b| {
                b.iter(|| verify_translate_resign(&maps, black_box(&received), target, &caller_key, &upstream_key))
            });
        }
    }

    // The answer's way back: read the upstream's reply, answer the caller in its dialect.
    let received = caller_request(&maps, Dialect::TencentCvm, Scheme::Tc3, 2);
    let raw = received.raw();
    let material = dialect::auth_material(Dialect::TencentCvm, &raw).unwrap();
    let op = dialect::decode_request(Dialect::TencentCvm, &raw, &material, &maps).unwrap();
    let reply: Reply = dialect::reply(Dialect::TencentCvm, &raw, &maps, "6EF60BEC-0242-43AF-BB20-270359FB54A7".into());
    let upstream_body = br#"{"Response":{"RequestId":"f192c1a9-580e-4653-9d54-ba42cd4353a3"}}"#;
    c.bench_function("answer/cvm_reply_to_cvm_caller", |b| {
        b.iter(|| {
            let outcome = dialect::decode_response(
                Dialect::TencentCvm,
                200,
                &HeaderMap::new(),
                black_box(upstream_body),
                &op,
                &maps,
            );
            dialect::encode_response(&reply, &outcome, &maps)
        })
    });
}

fn bench_full_translation(c: &mut Criterion) {
    let maps = Mappings::embedded().unwrap();
    let caller_key = Secret::new(CALLER_SECRET);
    let upstream_key = Secret::new("upstream-secret");
    let keys_table: Vec<Names> = vec![
        [(Provider::TencentCvm, "skey-4e5ty7i8"), (Provider::AliyunEcs, "FinanceJoshuaV25")]
            .into_iter()
            .map(|(p, n)| (p, n.to_owned()))
            .collect(),
    ];
    let ecs = Target {
        provider: Provider::AliyunEcs,
        scheme: Scheme::Acs3,
        host: "ecs.aliyuncs.com",
        region: "cn-hangzhou",
        answer: (
            br#"{"TotalCount":"1","RequestId":"D4B5E3F2-7A8B-4C9D-8E0F-1A2B3C4D5E6F","KeyPairName":"FinanceJoshuaV25","Results":{"Result":[{"Message":"successful","InstanceId":"i-00000001","Success":true,"Code":"200"}]},"FailCount":"0"}"#,
            "application/json;charset=utf-8",
        ),
    };
    let cvm = Target {
        provider: Provider::TencentCvm,
        scheme: Scheme::Tc3,
        host: "cvm.tencentcloudapi.com",
        region: "ap-guangzhou",
        answer: (br#"{"Response":{"RequestId":"6a4f3b2e-8c1d-4e5f-9a0b-1c2d3e4f5a6b"}}"#, "application/json"),
    };
    // What crossgate-load sends: one instance per request, TC3 routed to ECS, and legacy v2 to API 3.0.
    let tc3 = caller_request_for(&maps, Dialect::TencentCvm, Scheme::Tc3, &["i-00000001"]);
    let v2 = caller_request_for(&maps, Dialect::TencentV2, Scheme::TencentV1Sha256, &["ins-00000001"]);
    for (name, received, target) in [("tc3_to_ecs_acs3", &tc3, &ecs), ("v2_to_cvm_tc3", &v2, &cvm)] {
        let answer = full_translation(&maps, received, &keys_table, target, &caller_key, &upstream_key);
        assert_eq!(answer.status, 200, "{name}: {}", String::from_utf8_lossy(&answer.body));
        assert!(
            !String::from_utf8_lossy(&answer.body).contains("Error"),
            "{name}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        c.bench_function(&format!("full_translation/{name}"), |b| {
            b.iter(|| full_translation(&maps, black_box(received), &keys_table, target, &caller_key, &upstream_key))
        });
    }
}

/// A caller's signed bind of `instances` to the key `skey-4e5ty7i8`.
fn caller_request_for(maps: &Mappings, dialect: Dialect, scheme: Scheme, instances: &[&str]) -> Received {
    let mut op = Operation::new(Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = instances.iter().map(|i| (*i).to_owned()).collect();
    op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let ctx = UpstreamCtx {
        host: "crossgate.example:8080".into(),
        region: "ap-guangzhou".into(),
        credential_id: CALLER_ID.into(),
        scheme,
        timestamp: 1_714_550_400,
        nonce: "12345".into(),
    };
    support::received(
        dialect::encode_request(dialect, &op, &ctx, &Secret::new(CALLER_SECRET), maps).unwrap(),
        CALLER_SECRET,
    )
}

/// What the detect layer does for every request before anything else: tell the dialect and scheme, and
/// make the reply the answer will need.
fn bench_detect(c: &mut Criterion) {
    let maps = Mappings::embedded().unwrap();
    for (name, dialect, scheme) in [
        ("tc3", Dialect::TencentCvm, Scheme::Tc3),
        ("legacy_v2", Dialect::TencentV2, Scheme::TencentV1Sha256),
        ("ecs_rpc", Dialect::AliyunEcs, Scheme::AliyunRpc),
        ("ecs_acs3", Dialect::AliyunEcs, Scheme::Acs3),
    ] {
        let received = caller_request(&maps, dialect, scheme, 1);
        let raw = received.raw();
        assert_eq!(dialect::detect(&raw, &maps).unwrap(), dialect::Detected { dialect, scheme }, "{name}");
        c.bench_function(&format!("detect/{name}"), |b| {
            b.iter(|| {
                let found = dialect::detect(black_box(&raw), &maps).unwrap();
                dialect::reply(found.dialect, &raw, &maps, String::new())
            })
        });
    }
}

criterion_group!(benches, bench, bench_full_translation, bench_detect);
criterion_main!(benches);
