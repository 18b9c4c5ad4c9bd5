//! The Tencent legacy API 2.0 codec on any request. The checks are [`crossgate_fuzz::requests::tencent_v2_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::requests::tencent_v2_request(data));
