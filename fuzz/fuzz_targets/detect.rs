//! The dialect detector on any request. The checks are [`crossgate_fuzz::requests::detect`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::requests::detect(data));
