#![no_main]
//! Fuzz target `contract`: see `smm_core::fuzzing::contract`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::contract(data));
