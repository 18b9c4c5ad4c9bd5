//! The config loader on any text. The checks are [`crossgate_fuzz::loaders::config`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::loaders::config(data));
