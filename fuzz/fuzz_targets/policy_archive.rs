#![no_main]
//! Fuzz target `policy_archive`: see `smm_core::fuzzing::policy_archive`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::policy_archive(data));
