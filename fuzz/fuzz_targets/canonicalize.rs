#![no_main]
//! Fuzz target `canonicalize`: see `smm_core::fuzzing::canonicalize`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::canonicalize(data));
