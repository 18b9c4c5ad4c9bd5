//! The mapping-table loader on any text in place of one table. The checks are [`crossgate_fuzz::loaders::mappings`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::loaders::mappings(data));
