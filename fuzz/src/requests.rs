//! The dialect detector and the caller-side codecs (`tencent_v2`, `tencent_v3`, `aliyun_ecs`) on any
//! request read by [`Message::parse`].

use crossgate::dialect::{self, Dialect, Format, Reply, UpstreamCtx, detect as detect_dialect, tencent_v3};
use crossgate::model::{Fault, Operation, Outcome};
use crossgate::secret::Secret;
use crossgate::sign::{self, AuthMaterial};

use super::message::Message;
use super::{KEY, maps};

/// The dialect detector: it names a dialect and a scheme or says why not; a request it names is one that
/// dialect's codec can answer, and when the codec reads the signature material too, both name the same
/// scheme. Compared only where detection reads what the codec reads: parameters sent with no escapes
/// (detection reads names undecoded), and a body only on a POST.
pub fn detect(data: &[u8]) {
    let message = Message::parse(data);
    let raw = message.raw();
    match detect_dialect(&raw, maps()) {
        Ok(found) => {
            let reply = dialect::reply(found.dialect, &raw, maps(), "fuzz-request-id".to_owned());
            assert_eq!(reply.dialect, found.dialect);
            let unescaped = !message.query.contains(['%', '+']) && !message.body.iter().any(|b| b"%+".contains(b));
            let comparable = unescaped && (message.body.is_empty() || message.method == "POST");
            if let Ok(material) = dialect::auth_material(found.dialect, &raw)
                && comparable
            {
                assert_eq!(material.scheme, found.scheme, "detection and the codec disagree on the scheme");
            }
        }
        Err(why) => assert!(!why.0.is_empty(), "an undetected request must say why"),
    }
}

/// The Tencent legacy API 2.0 codec (`/v2/index.php`), by [`check_request`].
pub fn tencent_v2_request(data: &[u8]) {
    check_request(Dialect::TencentV2, &Message::parse(data));
}

/// The Tencent API 3.0 codec (TC3 and v1), by [`check_request`]: as the dialect the request names, or as
/// both CVM and Lighthouse when it names neither.
pub fn tencent_v3_request(data: &[u8]) {
    let message = Message::parse(data);
    let named = tencent_v3::dialect_of(&message.raw(), maps());
    for dialect in [Dialect::TencentCvm, Dialect::TencentLighthouse] {
        if named.is_none_or(|d| d == dialect) {
            check_request(dialect, &message);
        }
    }
}

/// The Alibaba ECS codec (RPC and ACS3; JSON and XML answers), by [`check_request`].
pub fn aliyun_ecs_request(data: &[u8]) {
    check_request(Dialect::AliyunEcs, &Message::parse(data));
}

/// The checks every caller-side codec target makes on one request in `dialect`:
///
/// 1. the signature material is read, and verified against [`KEY`], without a panic;
/// 2. the request decodes to an operation or a fault, and either is answered in the request's own
///    dialect (a fault is never left unrendered);
/// 3. an operation that decodes survives a round trip: encoded as a signed request in the same
///    dialect and scheme, it verifies with the key it was signed with and decodes to itself.
pub fn check_request(dialect: Dialect, message: &Message) {
    let maps = maps();
    let raw = message.raw();
    let reply = dialect::reply(dialect, &raw, maps, "fuzz-request-id".to_owned());
    let material = match dialect::auth_material(dialect, &raw) {
        Ok(material) => material,
        Err(fault) => return answer(&reply, &Err(fault)),
    };
    let _ = sign::verify(&material, &Secret::new(KEY));
    match dialect::decode_request(dialect, &raw, &material, maps) {
        Ok(op) => round_trip(dialect, &material, &op),
        Err(fault) => answer(&reply, &Err(fault)),
    }
}

/// Renders a result in the reply's dialect; the body must be what the dialect's clients parse.
pub fn answer(reply: &Reply, result: &Result<Outcome, Fault>) {
    let wire = dialect::encode_response(reply, result, maps());
    assert!((200..600).contains(&wire.status), "status {}", wire.status);
    match reply.format {
        Format::Json => {
            let parsed = serde_json::from_slice::<serde_json::Value>(&wire.body);
            assert!(parsed.is_ok(), "not JSON: {}", String::from_utf8_lossy(&wire.body));
        }
        Format::Xml => assert!(wire.body.starts_with(b"<?xml"), "not XML: {}", String::from_utf8_lossy(&wire.body)),
    }
}

/// Encodes `op` as a signed request in `dialect` with the scheme `material` used, then reads it back.
fn round_trip(dialect: Dialect, material: &AuthMaterial<'_>, op: &Operation) {
    let maps = maps();
    let key = Secret::new(KEY);
    let ctx = UpstreamCtx {
        host: "fuzz.example.com".to_owned(),
        region: op.region.clone().unwrap_or_default(),
        credential_id: "AKIDfuzz0000000000000000000000000000".to_owned(),
        scheme: material.scheme,
        timestamp: 1_714_550_400,
        nonce: "20240501".to_owned(),
    };
    let Ok(wire) = dialect::encode_request(dialect, op, &ctx, &key, maps) else { return };
    let again = Message::from_wire(&wire);
    let raw = again.raw();
    let material = dialect::auth_material(dialect, &raw)
        .unwrap_or_else(|f| panic!("a re-encoded {op:?} has no signature material: {f:?}\n{wire:?}"));
    assert_eq!(material.scheme, ctx.scheme, "{wire:?}");
    assert!(sign::verify(&material, &key).is_ok(), "a re-encoded {op:?} does not verify\n{wire:?}");
    let decoded = dialect::decode_request(dialect, &raw, &material, maps)
        .unwrap_or_else(|f| panic!("a re-encoded {op:?} does not decode: {f:?}\n{wire:?}"));
    assert_eq!(&decoded, op, "{wire:?}");
}
