//! Tencent v1 and Alibaba RPC signatures read from parameters. The checks are [`crossgate_fuzz::signatures::param_signature`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::signatures::param_signature(data));
