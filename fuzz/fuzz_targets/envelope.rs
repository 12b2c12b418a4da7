#![no_main]
//! Fuzz target `envelope`: see `smm_core::fuzzing::envelope`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::envelope(data));
