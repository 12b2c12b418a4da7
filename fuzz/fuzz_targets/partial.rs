#![no_main]
//! Fuzz target `partial`: see `smm_core::fuzzing::partial`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| smm_core::fuzzing::partial(data));
