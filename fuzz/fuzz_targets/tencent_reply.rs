//! Tencent upstream replies (legacy API 2.0, CVM, Lighthouse) on any status and body. The checks are [`crossgate_fuzz::replies::tencent_reply`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::replies::tencent_reply(data));
