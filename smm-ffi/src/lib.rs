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

#![allow(non_camel_case_types)]

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
    smm_last_error_json, smm_last_error_message, smm_status, smm_status_name, smm_string_free,
    status_from_code,
};
pub use flow::*;
pub use policy::*;
pub use simulation::*;
pub use usage::*;

// The resource limits (`smm_core::limits`), as literals so that cbindgen
// writes them into the header; a test checks them against the core's.

/// Largest JSON document accepted as text, in bytes.
pub const SMM_MAX_DOCUMENT_BYTES: u64 = 67_108_864;
/// Deepest nesting of JSON arrays and objects.
pub const SMM_MAX_DEPTH: u64 = 128;
/// Largest `iterations` in bounded-percentile mode.
pub const SMM_MAX_ITERATIONS: u64 = 10_000_000_000;
/// Largest `iterations` with exact percentiles (about 57 bytes an iteration).
pub const SMM_MAX_EXACT_ITERATIONS: u64 = 100_000_000;
/// Most worker threads (`threads` arguments; 0 means every core).
pub const SMM_MAX_THREADS: u64 = 1024;
/// Most primary channels of a workspace context.
pub const SMM_MAX_CHANNELS: u64 = 64;
/// Most nodes of a workflow.
pub const SMM_MAX_WORKFLOW_NODES: u64 = 10_000;
/// Most retries of a workflow node.
pub const SMM_MAX_RETRIES: u64 = 100;
/// Longest `timeoutSeconds`.
pub const SMM_MAX_TIMEOUT_SECONDS: u64 = 604_800;
/// Most partial results merged at once.
pub const SMM_MAX_PARTIALS: u64 = 1_048_576;
/// Most signatures in one envelope.
pub const SMM_MAX_ENVELOPE_SIGNATURES: u64 = 64;
/// Most envelopes verified in one batch.
pub const SMM_MAX_BATCH: u64 = 1_000_000;
/// Most points in one parameter sweep.
pub const SMM_MAX_SWEEP_POINTS: u64 = 100_000;

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
