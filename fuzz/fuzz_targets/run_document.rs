#![no_main]
//! Fuzz target `run_document`: see `smm_core::fuzzing::run_document`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::run_document(data));
