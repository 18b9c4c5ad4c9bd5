//! Percent and form encoding, Base64 and hex. The checks are [`crossgate_fuzz::signatures::encoding`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::signatures::encoding(data));
