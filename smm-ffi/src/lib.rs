//! C ABI of smm-core. The header `include/smm.h` is generated from these
//! files by cbindgen (`cargo xtask bless`) and checked for drift by a test.
//! One file per capability, the same split as the Python bindings:
//! `errors` (statuses, mapped through the core's error table), `convert`,
//! `simulation`, `contracts`, `audit`, `policy`, `usage`, and `flow` (the
//! main job end to end).
//!
//! Conventions (after rustls-ffi): every symbol starts with `smm_`; inputs
//! first, out-parameters last, written only on success; every pointer is
//! NULL-checked; every export runs inside one panic boundary, so a panic
//! becomes `SMM_PANIC` instead of unwinding into C. Strings returned by the
//! library are NUL-terminated UTF-8 owned by the caller, released with
//! `smm_string_free`. After a failure, `smm_last_error_message` gives a
//! description of the last error on the calling thread, and
//! `smm_last_error_json` the whole error: `{"code", "name", "category",
//! "message", "pointer", "hint"}`.

#![deny(clippy::undocumented_unsafe_blocks)]
#![allow(
    non_camel_case_types,
    reason = "C type names, as the header spells them"
)]

use std::ffi::{CStr, c_char};

mod audit;
mod contracts;
mod convert;
mod errors;
mod flow;
mod policy;
mod simulation;
mod usage;

pub use audit::*;
pub use contracts::*;
pub use errors::{
    kind_of, smm_last_error_json, smm_last_error_message, smm_status, smm_status_name,
    smm_string_free, status_from_code, status_of,
};
pub use flow::*;
pub use policy::*;
pub use simulation::*;
pub use usage::*;

// The resource limits, generated from `smm_core::limits::LIMITS`.
mod limits;
pub use limits::*;

/// The library version, a static NUL-terminated string (never free it).
#[unsafe(no_mangle)]
pub extern "C" fn smm_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(v) => v,
            Err(_) => c"unknown",
        };
    VERSION.as_ptr()
}
