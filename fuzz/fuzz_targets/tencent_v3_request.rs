//! The Tencent API 3.0 codec (CVM and Lighthouse, TC3 and v1) on any request. The checks are [`crossgate_fuzz::requests::tencent_v3_request`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::requests::tencent_v3_request(data));
