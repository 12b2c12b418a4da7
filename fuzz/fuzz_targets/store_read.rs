#![no_main]
//! Fuzz target `store_read`: see `smm_core::fuzzing::store_read`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::store_read(data));
