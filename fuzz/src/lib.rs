//! The fuzz checks of crossgate: one function per fuzz target, each taking the raw fuzz input.
//!
//! The targets in `fuzz_targets/` only hand their input to these functions, so the same checks run under
//! libFuzzer (`bash fuzz/run.sh`) and, for every input kept in `fuzz/regressions/<target>/`, in the
//! normal test suite (`tests/it/fuzz_regressions.rs` includes this file). Every check asserts at least
//! that nothing panics; where an inverse exists (encode after decode, split after compose, verify after
//! sign) it asserts the round trip.
//!
//! - [`requests`]: the dialect detector and the three caller-side codecs;
//! - [`replies`]: upstream replies, JSON and XML;
//! - [`signatures`]: the `Authorization` header, parameter signatures, percent and form encodings;
//! - [`loaders`]: the config, mapping-table and simulator-seed loaders.

use std::sync::OnceLock;

use crossgate::mapping::Mappings;

pub mod loaders;
pub mod message;
pub mod replies;
pub mod requests;
pub mod signatures;

/// A fuzz target's checks: they panic on a failure.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, with its check.
pub const TARGETS: &[(&str, Check)] = &[
    ("detect", requests::detect),
    ("tencent_v2_request", requests::tencent_v2_request),
    ("tencent_v3_request", requests::tencent_v3_request),
    ("aliyun_ecs_request", requests::aliyun_ecs_request),
    ("tencent_reply", replies::tencent_reply),
    ("aliyun_ecs_reply", replies::aliyun_ecs_reply),
    ("authorization", signatures::authorization),
    ("param_signature", signatures::param_signature),
    ("encoding", signatures::encoding),
    ("config", loaders::config),
    ("mappings", loaders::mappings),
    ("sim_seed", loaders::sim_seed),
];

/// The secret every fuzzed request is verified and re-signed with.
pub const KEY: &str = "fuzz-secret-key-0000";

/// The embedded mapping tables, loaded once per process.
pub fn maps() -> &'static Mappings {
    static MAPS: OnceLock<Mappings> = OnceLock::new();
    MAPS.get_or_init(|| Mappings::embedded().expect("the embedded mapping tables load"))
}
