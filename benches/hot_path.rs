//! The per-request CPU cost of the protocol work, without the network: detect, read the signature
//! material, verify, decode, translate, encode and re-sign for the upstream, then read the upstream's
//! reply and answer the caller. The target is under 20 microseconds per request for verify + translate +
//! re-sign. Run with `cargo bench --bench hot_path`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossgate::dialect::{self, Dialect, RawRequest, Reply, UpstreamCtx, WireRequest};
use crossgate::mapping::Mappings;
use crossgate::model::{Action, Keys, Operation};
use crossgate::secret::Secret;
use crossgate::sign::{self, Scheme};
use http::{HeaderMap, HeaderName, HeaderValue};

const CALLER_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const CALLER_SECRET: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";

/// A caller's signed request as a server receives it.
struct Received {
    wire: WireRequest,
    headers: HeaderMap,
}

impl Received {
    fn new(wire: WireRequest) -> Received {
        let mut headers = HeaderMap::new();
        for (n, v) in &wire.headers {
            headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        headers.insert("host", HeaderValue::from_str(&wire.host).unwrap());
        Received { wire, headers }
    }

    fn raw(&self) -> RawRequest<'_> {
        RawRequest {
            method: self.wire.method,
            path: self.wire.path,
            query: &self.wire.query,
            headers: &self.headers,
            body: &self.wire.body,
        }
    }
}

fn caller_request(maps: &Mappings, dialect: Dialect, scheme: Scheme, instances: usize) -> Received {
    let mut op = Operation::new(Action::AssociateKeys);
    op.region = Some("ap-guangzhou".into());
    op.instances = (0..instances).map(|i| format!("ins-{i:08}")).collect();
    op.keys = Keys::Ids(vec!["skey-4e5ty7i8".into()]);
    let ctx = UpstreamCtx {
        host: "crossgate.example:8080".into(),
        region: "ap-guangzhou".into(),
        credential_id: CALLER_ID.into(),
        scheme,
        timestamp: 1_714_550_400,
        nonce: "12345".into(),
    };
    Received::new(dialect::encode_request(dialect, &op, &ctx, &Secret::new(CALLER_SECRET), maps).unwrap())
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

criterion_group!(benches, bench);
criterion_main!(benches);
