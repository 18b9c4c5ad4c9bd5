//! Signing and verifying, one scheme at a time, on requests the clouds' own SDKs made (the known-answer
//! vectors in `tests/vectors/`): TC3-HMAC-SHA256, Tencent v1 HmacSHA1 and HmacSHA256, Alibaba RPC
//! HMAC-SHA1 and ACS3-HMAC-SHA256. `sign` computes the canonical form, the string to sign and the
//! signature; `verify` does the same and compares in constant time. Reading the signature material out
//! of the request is the codecs' work (`benches/codecs.rs`). Run with `cargo bench --bench signatures`.

#![allow(missing_docs)] // criterion_group! makes an undocumented function

mod support;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use crossgate::dialect;
use crossgate::mapping::Mappings;
use crossgate::secret::Secret;
use crossgate::sign;

/// One vector per scheme: a bind, as each SDK sends it.
const CASES: [(&str, &str); 5] = [
    ("tc3", "tc3-cvm-associate-post-json"),
    ("tencent_v1_hmacsha1", "v1-api3-cvm-associate-get-hmacsha1"),
    ("tencent_v1_hmacsha256", "v1-legacy-cvm-associate-get-hmacsha256"),
    ("aliyun_rpc_hmacsha1", "rpc-attachkeypair-post-query-json"),
    ("acs3", "acs3-attachkeypair-post"),
];

fn bench(c: &mut Criterion) {
    let maps = Mappings::embedded().unwrap();
    for (name, id) in CASES {
        let received = support::vector(id);
        let raw = received.raw();
        let found = dialect::detect(&raw, &maps).unwrap_or_else(|e| panic!("{id}: {e}"));
        let material = dialect::auth_material(found.dialect, &raw).unwrap_or_else(|f| panic!("{id}: {}", f.message()));
        let key = Secret::new(received.secret_key.as_str());
        // To sign is to sign every header given: give the ones the SDK signed (TC3 and ACS3).
        let mut input = material.input.clone();
        if !material.signed_headers.is_empty() {
            input.headers.retain(|(n, _)| material.signed_headers.iter().any(|s| s.eq_ignore_ascii_case(n)));
        }
        // The benchmark measures the real thing: the signature made here is the SDK's.
        let signed = sign::sign(material.scheme, &input, &material.credential_id, &key);
        assert_eq!(signed.signature, material.signature, "{id}: signing does not give the SDK's signature");
        assert!(sign::verify(&material, &key).is_ok(), "{id}: the SDK's signature does not verify");

        c.bench_function(&format!("sign/{name}"), |b| {
            b.iter(|| sign::sign(material.scheme, black_box(&input), &material.credential_id, &key))
        });
        c.bench_function(&format!("verify/{name}"), |b| b.iter(|| sign::verify(black_box(&material), &key)));
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
