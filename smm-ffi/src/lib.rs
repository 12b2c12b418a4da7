//! C ABI of smm-core. The header `include/smm.h` is generated from this file
//! by cbindgen (`cargo xtask bless`) and checked for drift by a test.
//!
//! Conventions (after rustls-ffi): every symbol starts with `smm_`; inputs
//! first, out-parameters last, written only on success; every pointer is
//! NULL-checked; every export runs inside one panic boundary, so a panic
//! becomes `SMM_PANIC` instead of unwinding into C. Strings returned by the
//! library are NUL-terminated UTF-8 owned by the caller, released with
//! `smm_string_free`. After a failure, `smm_last_error_message` gives a
//! description of the last error on the calling thread.

#![allow(non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::contract::{self, Contract, ContractError, ContractHistory, Lifecycle};
use smm_core::jcs;
use smm_core::sim::{self, PartialResult, RunOptions, SimulationError, SimulationRequest};

/// Result of every fallible call. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum smm_status {
    /// Success.
    SMM_OK = 0,
    /// A required pointer argument was NULL.
    SMM_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8.
    SMM_INVALID_UTF8 = 2,
    /// The input document was rejected; the message names the field by JSON pointer.
    SMM_INVALID_INPUT = 3,
    /// Shards could not be merged or a shard range was invalid.
    SMM_INVALID_SHARD = 4,
    /// The worker pool could not be used (e.g. threads out of range).
    SMM_THREAD_POOL = 5,
    /// A contract change or lifecycle transition was refused (immutability
    /// violation, version not increased, broken link, illegal transition,
    /// other workspace).
    SMM_CONTRACT_REJECTED = 6,
    /// A panic was caught at the boundary (a bug in smm-core; please report it).
    SMM_PANIC = 100,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_error(msg: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg));
}

fn clear_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
}

/// Run `f` behind the panic boundary, recording an error message on failure.
fn boundary(f: impl FnOnce() -> Result<(), (smm_status, String)>) -> smm_status {
    clear_error();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => smm_status::SMM_OK,
        Ok(Err((status, msg))) => {
            set_error(msg);
            status
        }
        Err(_) => {
            set_error("internal panic caught at the C boundary".into());
            smm_status::SMM_PANIC
        }
    }
}

fn status_of(e: &SimulationError) -> smm_status {
    match e {
        SimulationError::InvalidShard { .. } | SimulationError::Merge { .. } => {
            smm_status::SMM_INVALID_SHARD
        }
        SimulationError::ThreadPool { .. } => smm_status::SMM_THREAD_POOL,
        _ => smm_status::SMM_INVALID_INPUT,
    }
}

fn sim_err(e: SimulationError) -> (smm_status, String) {
    (status_of(&e), e.to_string())
}

/// Borrow a C string argument as UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for the call.
unsafe fn arg_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, (smm_status, String)> {
    if p.is_null() {
        return Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")));
    }
    // SAFETY: non-NULL and NUL-terminated per the caller's contract.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str().map_err(|e| {
        (
            smm_status::SMM_INVALID_UTF8,
            format!("{name} is not UTF-8: {e}"),
        )
    })
}

/// Hand a Rust string to C through an out-parameter.
///
/// # Safety
/// `out` is non-NULL and writable.
unsafe fn write_out(out: *mut *mut c_char, s: String) -> Result<(), (smm_status, String)> {
    let c = CString::new(s).map_err(|_| {
        (
            smm_status::SMM_PANIC,
            "internal: output contains a NUL byte".to_string(),
        )
    })?;
    // SAFETY: checked non-NULL by the caller of this helper.
    unsafe { *out = c.into_raw() };
    Ok(())
}

fn options(threads: u32) -> RunOptions {
    RunOptions {
        threads: if threads == 0 {
            None
        } else {
            Some(threads as usize)
        },
        keep_samples: false,
    }
}

fn check_out(out: *mut *mut c_char, name: &str) -> Result<(), (smm_status, String)> {
    if out.is_null() {
        Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")))
    } else {
        Ok(())
    }
}

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

/// The name of a status code (e.g. "SMM_INVALID_INPUT"), a static string.
/// Unknown numbers give "SMM_UNKNOWN_STATUS".
#[unsafe(no_mangle)]
pub extern "C" fn smm_status_name(status: u32) -> *const c_char {
    let name: &CStr = match status {
        0 => c"SMM_OK",
        1 => c"SMM_NULL_ARGUMENT",
        2 => c"SMM_INVALID_UTF8",
        3 => c"SMM_INVALID_INPUT",
        4 => c"SMM_INVALID_SHARD",
        5 => c"SMM_THREAD_POOL",
        6 => c"SMM_CONTRACT_REJECTED",
        100 => c"SMM_PANIC",
        _ => c"SMM_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

/// A copy of the message of the last error on this thread, or NULL when the
/// last call succeeded. Free it with `smm_string_free`.
#[unsafe(no_mangle)]
pub extern "C" fn smm_last_error_message() -> *mut c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|e| match e.borrow().as_ref() {
            Some(m) => CString::new(m.replace('\0', " "))
                .map(CString::into_raw)
                .unwrap_or(std::ptr::null_mut()),
            None => std::ptr::null_mut(),
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Free a string returned by this library. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a pointer returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `s` came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }));
}

/// Simulate a request (the JSON shape of `simulationInput`) and write the
/// report, as compact JSON, to `*report_out` (free with `smm_string_free`).
/// `threads` = 0 uses every core; results never depend on it.
///
/// # Safety
/// `request_json` is NULL or a NUL-terminated string; `report_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_simulate_json(
    request_json: *const c_char,
    threads: u32,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(request_json, "request_json") }?;
        let report = sim::simulate_json(text, &options(threads)).map_err(sim_err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, report) }
    })
}

/// Simulate iterations [start, end) of a request and write the partial
/// result (JSON) to `*partial_out`. `start` must be a multiple of
/// `smm_block_size()`, `end` one too or the run's iterations.
///
/// # Safety
/// As for `smm_simulate_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_simulate_shard_json(
    request_json: *const c_char,
    start: u64,
    end: u64,
    threads: u32,
    partial_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(partial_out, "partial_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(request_json, "request_json") }?;
        let req = SimulationRequest::from_json(text).map_err(sim_err)?;
        let part = sim::simulate_shard(&req, start, end, &options(threads)).map_err(sim_err)?;
        // SAFETY: checked above.
        unsafe { write_out(partial_out, part.to_json()) }
    })
}

/// Merge the partial results of every shard of one run (any order) into the
/// report, bit-identical to `smm_simulate_json` of the same request.
///
/// # Safety
/// `partials_json` points to `count` NUL-terminated strings; `report_out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_merge_partials_json(
    partials_json: *const *const c_char,
    count: usize,
    threads: u32,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        if partials_json.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "partials_json is NULL".into(),
            ));
        }
        // SAFETY: the caller passes `count` valid pointers.
        let ptrs = unsafe { std::slice::from_raw_parts(partials_json, count) };
        let mut parts = Vec::with_capacity(count);
        for (i, p) in ptrs.iter().enumerate() {
            // SAFETY: per this function's contract.
            let text = unsafe { arg_str(*p, &format!("partials_json[{i}]")) }?;
            parts.push(PartialResult::from_json(text).map_err(|e| {
                (
                    smm_status::SMM_INVALID_INPUT,
                    format!("partials_json[{i}]: {e}"),
                )
            })?);
        }
        let out = sim::merge_partials(parts, &options(threads)).map_err(sim_err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, out.report.to_json()) }
    })
}

/// Iterations per block: shard boundaries must be multiples of it.
#[unsafe(no_mangle)]
pub extern "C" fn smm_block_size() -> u64 {
    sim::BLOCK_SIZE
}

// ---------------------------------------------------------------- contracts

fn contract_err(e: ContractError) -> (smm_status, String) {
    let status = match &e {
        ContractError::IllegalTransition { .. }
        | ContractError::ImmutabilityViolation { .. }
        | ContractError::VersionNotIncreased { .. }
        | ContractError::BrokenLink { .. }
        | ContractError::DifferentWorkspace { .. } => smm_status::SMM_CONTRACT_REJECTED,
        _ => smm_status::SMM_INVALID_INPUT,
    };
    (status, e.to_string())
}

fn to_json_string<T: serde::Serialize>(v: &T) -> Result<String, (smm_status, String)> {
    serde_json::to_string(v).map_err(|e| (smm_status::SMM_PANIC, format!("internal: {e}")))
}

/// Write the RFC 8785 canonical form of a JSON document to `*canonical_out`.
/// Duplicate keys, lone surrogates, inexact integers (e.g. 9007199254740993)
/// and nesting deeper than 128 are SMM_INVALID_INPUT, with a JSON pointer in
/// the message.
///
/// # Safety
/// `json` is NULL or a NUL-terminated string; `canonical_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_canonicalize_json(
    json: *const c_char,
    canonical_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(canonical_out, "canonical_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(json, "json") }?;
        let c = jcs::canonicalize(text.as_bytes())
            .map_err(|e| (smm_status::SMM_INVALID_INPUT, e.to_string()))?;
        let c = String::from_utf8(c).map_err(|e| (smm_status::SMM_PANIC, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(canonical_out, c) }
    })
}

/// Write the terms hash ("sha256:" + 64 hex) of a v2 contract to `*hash_out`.
///
/// # Safety
/// As for `smm_canonicalize_json`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_hash_json(
    contract_json: *const c_char,
    hash_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(hash_out, "hash_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(contract_json, "contract_json") }?;
        let c = Contract::from_json(text).map_err(contract_err)?;
        // SAFETY: checked above.
        unsafe { write_out(hash_out, c.terms_hash().to_string()) }
    })
}

/// Validate a contract document at `now` (RFC 3339) and write every
/// violation, as a JSON array of {pointer, rule, message, severity}, to
/// `*violations_out` (`[]` when there is none). Schema violations come
/// first; business rules are checked when the schema holds.
///
/// # Safety
/// `contract_json` and `now` are NULL or NUL-terminated strings;
/// `violations_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_validate_json(
    contract_json: *const c_char,
    now: *const c_char,
    violations_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(violations_out, "violations_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(contract_json, "contract_json") }?;
        // SAFETY: per this function's contract.
        let now = unsafe { arg_str(now, "now") }?;
        let v = contract::validate_document(text.as_bytes(), now).map_err(contract_err)?;
        // SAFETY: checked above.
        unsafe { write_out(violations_out, to_json_string(&v)?) }
    })
}

/// Check the change from `previous_json` to `next_json`, as a CI gate:
/// SMM_OK with `{"kind":"sameTerms"}` or `{"kind":"newVersion",...}` in
/// `*result_out`, or SMM_CONTRACT_REJECTED (immutability violation, version
/// not increased, broken previousContractRef, other workspace).
///
/// # Safety
/// Both inputs are NULL or NUL-terminated strings; `result_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_check_change_json(
    previous_json: *const c_char,
    next_json: *const c_char,
    result_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: per this function's contract.
        let a = unsafe { arg_str(previous_json, "previous_json") }?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_str(next_json, "next_json") }?;
        let a = Contract::from_json(a).map_err(contract_err)?;
        let b = Contract::from_json(b).map_err(contract_err)?;
        let kind = a.check_change(&b).map_err(contract_err)?;
        // SAFETY: checked above.
        unsafe { write_out(result_out, to_json_string(&kind)?) }
    })
}

/// Move a contract to lifecycle state `to` ("validated", "signed", ...) and
/// write the new document (canonical JSON) to `*contract_out`; an illegal
/// transition is SMM_CONTRACT_REJECTED.
///
/// # Safety
/// Inputs are NULL or NUL-terminated strings; `contract_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_transition_json(
    contract_json: *const c_char,
    to: *const c_char,
    contract_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(contract_out, "contract_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(contract_json, "contract_json") }?;
        // SAFETY: per this function's contract.
        let to_s = unsafe { arg_str(to, "to") }?;
        let to = Lifecycle::parse(to_s).ok_or_else(|| {
            (
                smm_status::SMM_INVALID_INPUT,
                format!("unknown lifecycle state {to_s:?}"),
            )
        })?;
        let c = Contract::from_json(text).map_err(contract_err)?;
        let next = c.transition(to).map_err(contract_err)?;
        // SAFETY: checked above.
        unsafe { write_out(contract_out, next.to_canonical_json()) }
    })
}

/// Verify a workspace's chain of versions. `versions_json` is a JSON array
/// of contracts or stored snapshots; `*report_out` gets
/// `{valid, versions, head, issues:[{kind, contractId, message}]}`. A broken
/// chain is SMM_OK with `"valid":false`: the report says why.
///
/// # Safety
/// `versions_json` is NULL or a NUL-terminated string; `report_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_verify_chain_json(
    versions_json: *const c_char,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(versions_json, "versions_json") }?;
        let items = contract::parse_document(text).map_err(contract_err)?;
        let report = ContractHistory::from_json_items(&items)
            .map_err(contract_err)?
            .verify();
        // SAFETY: checked above.
        unsafe { write_out(report_out, to_json_string(&report)?) }
    })
}

/// Migrate a v1 contract (emergencyFlags.pauseAll) to v2 and write it
/// (canonical JSON) to `*contract_out`.
///
/// # Safety
/// `v1_json` is NULL or a NUL-terminated string; `contract_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_migrate_v1_json(
    v1_json: *const c_char,
    contract_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(contract_out, "contract_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(v1_json, "v1_json") }?;
        let v1 = contract::parse_document(text).map_err(contract_err)?;
        let v2 = contract::migrate_v1(&v1).map_err(contract_err)?;
        let out = jcs::canonicalize_value(&v2)
            .map_err(|e| (smm_status::SMM_INVALID_INPUT, e.to_string()))?;
        let out = String::from_utf8(out).map_err(|e| (smm_status::SMM_PANIC, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(contract_out, out) }
    })
}
