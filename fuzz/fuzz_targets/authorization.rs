//! The TC3 and ACS3 `Authorization` header: split, compose, sign and verify. The checks are [`crossgate_fuzz::signatures::authorization`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::signatures::authorization(data));
