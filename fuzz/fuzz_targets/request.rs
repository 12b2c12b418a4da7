#![no_main]
//! Fuzz target `request`: see `smm_core::fuzzing::request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::request(data));
