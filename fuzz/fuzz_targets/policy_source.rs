#![no_main]
//! Fuzz target `policy_source`: see `smm_core::fuzzing::policy_source`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::policy_source(data));
