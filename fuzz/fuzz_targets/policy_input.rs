#![no_main]
//! Fuzz target `policy_input`: see `smm_core::fuzzing::policy_input`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::policy_input(data));
