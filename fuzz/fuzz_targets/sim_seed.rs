//! The simulator's seed loader on any text. The checks are [`crossgate_fuzz::loaders::sim_seed`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crossgate_fuzz::loaders::sim_seed(data));
