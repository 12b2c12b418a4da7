#![no_main]
//! Fuzz target `sweep`: see `smm_core::fuzzing::sweep`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::sweep(data));
