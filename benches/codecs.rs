//! Each dialect codec in both directions, on what its clients really send (the SDK vectors in
//! `tests/vectors/`): `decode_request` (the signature material and the canonical operation, as the
//! gateway reads a caller's request), `encode_request` (a signed request for that dialect, signing
//! included), `encode_response` (a success, and an error rendered through the mapping tables) and
//! `decode_response` (the dialect's own success answer read back). ECS is measured in JSON and in XML.
//! Run with `cargo bench --bench codecs`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossgate::dialect::{self, UpstreamCtx};
use crossgate::mapping::Mappings;
use crossgate::model::{Answer, Code, Fault, InstanceResult, Outcome};
use crossgate::secret::Secret;
use crossgate::sign::Scheme;
use http::HeaderMap;

/// Codec, the SDK vector it decodes, and the scheme it signs with as an upstream.
const CASES: [(&str, &str, Scheme); 4] = [
    ("tencent_v3", "tc3-cvm-associate-post-json", Scheme::Tc3),
    ("tencent_v2", "v1-legacy-cvm-associate-get-hmacsha256", Scheme::TencentV1Sha256),
    ("aliyun_ecs_json", "rpc-attachkeypair-post-query-json", Scheme::Acs3),
    ("aliyun_ecs_xml", "rpc-detachkeypair-get-xml", Scheme::Acs3),
];

const REQUEST_ID: &str = "6EF60BEC-0242-43AF-BB20-270359FB54A7";

fn bench(c: &mut Criterion) {
    let maps = Mappings::embedded().unwrap();
    for (name, id, scheme) in CASES {
        let received = support::vector(id);
        let raw = received.raw();
        let found = dialect::detect(&raw, &maps).unwrap_or_else(|e| panic!("{id}: {e}"));
        let d = found.dialect;
        let material = dialect::auth_material(d, &raw).unwrap();
        let op = dialect::decode_request(d, &raw, &material, &maps).unwrap_or_else(|f| panic!("{id}: {}", f.message()));

        c.bench_function(&format!("decode_request/{name}"), |b| {
            b.iter(|| {
                let raw = black_box(received.raw());
                let material = dialect::auth_material(d, &raw).unwrap();
                dialect::decode_request(d, &raw, &material, &maps).unwrap()
            })
        });

        let ctx = UpstreamCtx {
            host: raw.host().to_owned(),
            region: op.region.clone().unwrap_or_else(|| "ap-guangzhou".into()),
            credential_id: "AKIDupstreamupstreamupstream00000".into(),
            scheme,
            timestamp: 1_714_550_401,
            nonce: "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into(),
        };
        let key = Secret::new("upstream-secret");
        dialect::encode_request(d, &op, &ctx, &key, &maps).unwrap_or_else(|f| panic!("{id}: {}", f.message()));
        c.bench_function(&format!("encode_request/{name}"), |b| {
            b.iter(|| dialect::encode_request(d, black_box(&op), &ctx, &key, &maps).unwrap())
        });

        let reply = dialect::reply(d, &raw, &maps, REQUEST_ID.into());
        let success = Ok(Outcome {
            request_id: REQUEST_ID.into(),
            answer: Answer::Bind(
                op.instances.iter().map(|i| InstanceResult { instance: i.clone(), result: Ok(()) }).collect(),
            ),
        });
        c.bench_function(&format!("encode_response/{name}/success"), |b| {
            b.iter(|| dialect::encode_response(black_box(&reply), &success, &maps))
        });
        let error = Err(Fault::caller(Code::InstanceNotFound, "The instance `ins-00000000` does not exist."));
        c.bench_function(&format!("encode_response/{name}/error"), |b| {
            b.iter(|| dialect::encode_response(black_box(&reply), &error, &maps))
        });

        // The dialect's own success answer, read back as the gateway reads an upstream's.
        let answer = dialect::encode_response(&reply, &success, &maps);
        let mut headers = HeaderMap::new();
        for (n, v) in &answer.headers {
            headers.insert(*n, v.parse().unwrap());
        }
        let decoded = dialect::decode_response(d, answer.status, &headers, &answer.body, &op, &maps);
        assert!(decoded.is_ok(), "{id}: its own answer does not decode: {decoded:?}");
        c.bench_function(&format!("decode_response/{name}"), |b| {
            b.iter(|| dialect::decode_response(d, answer.status, &headers, black_box(&answer.body), &op, &maps))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
