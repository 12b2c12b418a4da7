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
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::audit::store::{BundleStore, FileBundleStore, PutOutcome, StoredBundle};
use smm_core::audit::{
    self, AuditError, ExternalSigner, LocalSigner, SignatureFormat, Signer, TrustedKey,
};
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
    /// A signer failed or answered a signature that does not verify under
    /// its public key.
    SMM_SIGNER_FAILED = 7,
    /// A bundle store operation failed (I/O, or different bytes already
    /// stored under the id, or stored bytes that no longer match their id).
    SMM_STORAGE = 8,
    /// The requested item does not exist (the out-parameter is untouched).
    SMM_NOT_FOUND = 9,
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

fn check_out<T>(out: *mut *mut T, name: &str) -> Result<(), (smm_status, String)> {
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
        7 => c"SMM_SIGNER_FAILED",
        8 => c"SMM_STORAGE",
        9 => c"SMM_NOT_FOUND",
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

// ---------------------------------------------------------------- audit bundles

/// A signing key (a local P-256 key or a host callback). Made by
/// `smm_local_signer_*` or `smm_external_signer_new`, freed by `smm_signer_free`.
pub struct smm_signer {
    inner: Box<dyn Signer>,
}

impl std::fmt::Debug for smm_signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("smm_signer")
            .field("key_id", &self.inner.key_id())
            .finish()
    }
}

/// A filesystem bundle store. Made by `smm_file_store_open`, freed by
/// `smm_file_store_free`.
#[derive(Debug)]
pub struct smm_file_store {
    inner: FileBundleStore,
}

/// The host's signing function: sign the 32-byte SHA-256 `digest` with the
/// key and write the signature (DER or P1363) to `signature_out` (capacity
/// `signature_capacity`, at least 72), its length to `*signature_len_out`;
/// return 0 on success, anything else on failure. `userdata` is passed
/// through untouched. It is called on the thread that called
/// `smm_bundle_sign_json`, during that call.
pub type smm_sign_digest_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        digest: *const u8,
        signature_out: *mut u8,
        signature_capacity: usize,
        signature_len_out: *mut usize,
    ) -> i32,
>;

fn audit_err(e: AuditError) -> (smm_status, String) {
    let status = match &e {
        AuditError::SignerFailed { .. } | AuditError::BadSignerAnswer { .. } => {
            smm_status::SMM_SIGNER_FAILED
        }
        AuditError::Storage { .. } | AuditError::Conflict { .. } | AuditError::Corrupt { .. } => {
            smm_status::SMM_STORAGE
        }
        _ => smm_status::SMM_INVALID_INPUT,
    };
    (status, e.to_string())
}

/// Write a new object to an out-parameter.
///
/// # Safety
/// `out` is non-NULL and writable.
unsafe fn write_obj<T>(out: *mut *mut T, v: T) {
    // SAFETY: per the contract.
    unsafe { *out = Box::into_raw(Box::new(v)) };
}

/// Borrow an object argument.
///
/// # Safety
/// `p` is NULL or a live object made by this library.
unsafe fn arg_obj<'a, T>(p: *const T, name: &str) -> Result<&'a T, (smm_status, String)> {
    // SAFETY: per the contract.
    unsafe { p.as_ref() }.ok_or_else(|| (smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")))
}

/// A signer for a new random P-256 key (OS entropy).
///
/// # Safety
/// `key_id` is NULL or a NUL-terminated string; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_local_signer_generate(
    key_id: *const c_char,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        let s = generate_local(id)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

fn generate_local(id: &str) -> Result<LocalSigner, (smm_status, String)> {
    for _ in 0..16 {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret)
            .map_err(|e| (smm_status::SMM_SIGNER_FAILED, format!("no entropy: {e}")))?;
        if let Ok(s) = LocalSigner::from_secret_bytes(id, &secret) {
            return Ok(s);
        }
    }
    Err((
        smm_status::SMM_SIGNER_FAILED,
        "could not draw a valid key".into(),
    ))
}

/// A signer for a PKCS#8 PEM P-256 private key.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_local_signer_from_pem(
    key_id: *const c_char,
    private_key_pem: *const c_char,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        // SAFETY: per this function's contract.
        let pem = unsafe { arg_str(private_key_pem, "private_key_pem") }?;
        let s = LocalSigner::from_pkcs8_pem(id, pem).map_err(audit_err)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

/// A signer whose key lives in the host (AWS KMS, GCP KMS, an HSM):
/// `public_key_pem` is its public key, `sign` the host's function,
/// `userdata` passed to it. Answers are verified before use.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `sign` stays callable and `userdata`
/// valid until `smm_signer_free`; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_external_signer_new(
    key_id: *const c_char,
    public_key_pem: *const c_char,
    sign: smm_sign_digest_fn,
    userdata: *mut c_void,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    struct Host {
        f: unsafe extern "C" fn(*mut c_void, *const u8, *mut u8, usize, *mut usize) -> i32,
        userdata: *mut c_void,
    }
    // SAFETY: the caller promises the callback may be called from the
    // thread that signs, with this userdata, until the signer is freed.
    unsafe impl Send for Host {}
    // SAFETY: as above; the library never calls it concurrently by itself.
    unsafe impl Sync for Host {}
    impl Host {
        fn call(&self, digest: &[u8; 32]) -> Result<Vec<u8>, String> {
            let mut buf = [0u8; 128];
            let mut len = 0usize;
            // SAFETY: the host's contract; buffers are valid for the call.
            let rc = unsafe {
                (self.f)(
                    self.userdata,
                    digest.as_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(format!("host callback returned {rc}"));
            }
            buf.get(..len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("host callback wrote {len} bytes into 128"))
        }
    }
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        // SAFETY: per this function's contract.
        let pem = unsafe { arg_str(public_key_pem, "public_key_pem") }?;
        let f = sign.ok_or((smm_status::SMM_NULL_ARGUMENT, "sign is NULL".to_string()))?;
        let host = Host { f, userdata };
        let callback: audit::SignCallback = Box::new(move |digest: &[u8; 32]| host.call(digest));
        let s = ExternalSigner::new(id, pem.as_bytes(), callback).map_err(audit_err)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

/// The signer's public key as SPKI PEM.
///
/// # Safety
/// `signer` is NULL or live; `pem_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_public_key_pem(
    signer: *const smm_signer,
    pem_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(pem_out, "pem_out")?;
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        // SAFETY: checked above.
        unsafe { write_out(pem_out, audit::public_key_pem(s.inner.public_key())) }
    })
}

/// Free a signer. NULL is ignored.
///
/// # Safety
/// `signer` is NULL or made by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_free(signer: *mut smm_signer) {
    if !signer.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(signer) })));
    }
}

/// Assemble an audit bundle from `{contract, createdAt, simulation,
/// policyDecision, decisionCard, agentRuns, auditTrail, previousBundleRef}`
/// (see schemas) and write it (canonical JSON) to `*bundle_out`.
///
/// # Safety
/// `inputs_json` is NULL or NUL-terminated; `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_assemble_json(
    inputs_json: *const c_char,
    bundle_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(inputs_json, "inputs_json") }?;
        let v = contract::parse_document(text).map_err(contract_err)?;
        let b = audit::assemble_request(&v).map_err(audit_err)?;
        let bytes = b.canonical_bytes().map_err(audit_err)?;
        let s = String::from_utf8(bytes).map_err(|e| (smm_status::SMM_PANIC, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(bundle_out, s) }
    })
}

/// Sign a bundle (JSON) and write the DSSE envelope (JSON) to `*envelope_out`.
///
/// # Safety
/// `bundle_json` is NULL or NUL-terminated; `signer` is NULL or live;
/// `envelope_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_sign_json(
    bundle_json: *const c_char,
    signer: *const smm_signer,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(bundle_json, "bundle_json") }?;
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        let b: audit::AuditBundle = serde_json::from_str(text).map_err(|e| {
            (
                smm_status::SMM_INVALID_INPUT,
                format!("not an audit bundle: {e}"),
            )
        })?;
        let env = audit::sign_bundle(&b, &[s.inner.as_ref()]).map_err(audit_err)?;
        let env = String::from_utf8(env).map_err(|e| (smm_status::SMM_PANIC, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(envelope_out, env) }
    })
}

fn trusted_keys(text: &str) -> Result<Vec<TrustedKey>, (smm_status, String)> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct K {
        key_id: String,
        public_key: String,
    }
    let keys: Vec<K> = serde_json::from_str(text).map_err(|e| {
        (
            smm_status::SMM_INVALID_INPUT,
            format!("trusted keys: expected [{{keyId, publicKey}}]: {e}"),
        )
    })?;
    keys.iter()
        .map(|k| TrustedKey::new(&k.key_id, k.public_key.as_bytes()).map_err(audit_err))
        .collect()
}

/// Verify a signed bundle against trusted keys (`[{"keyId": ..., "publicKey":
/// PEM}]`) and write `{verified, keyId, bundleId, checks}` to `*result_out`.
/// A bundle that does not verify is SMM_OK with `"verified":false`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `result_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_verify_json(
    envelope_json: *const c_char,
    trusted_keys_json: *const c_char,
    result_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: per this function's contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        // SAFETY: per this function's contract.
        let keys = trusted_keys(unsafe { arg_str(trusted_keys_json, "trusted_keys_json") }?)?;
        let r = audit::verify_envelope(env.as_bytes(), &keys, None);
        // SAFETY: checked above.
        unsafe { write_out(result_out, to_json_string(&r)?) }
    })
}

/// ECDSA P-256 / SHA-256 verification of `message` with `public_key` (PEM,
/// SPKI DER or SEC1) and `signature` in `format` (0 = DER, 1 = P1363).
/// Writes 1 (valid) or 0 to `*valid_out`.
///
/// # Safety
/// Each pointer/length pair describes readable memory (a pointer may be
/// NULL only with length 0); `valid_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ecdsa_p256_verify(
    public_key: *const u8,
    public_key_len: usize,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
    format: u32,
    valid_out: *mut i32,
) -> smm_status {
    boundary(|| {
        if valid_out.is_null() {
            return Err((smm_status::SMM_NULL_ARGUMENT, "valid_out is NULL".into()));
        }
        let slice = |p: *const u8, n: usize, name: &str| -> Result<&[u8], (smm_status, String)> {
            if n == 0 {
                return Ok(&[]);
            }
            if p.is_null() {
                return Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")));
            }
            // SAFETY: per this function's contract.
            Ok(unsafe { std::slice::from_raw_parts(p, n) })
        };
        let format = match format {
            0 => SignatureFormat::Der,
            1 => SignatureFormat::P1363,
            f => {
                return Err((
                    smm_status::SMM_INVALID_INPUT,
                    format!("format must be 0 (DER) or 1 (P1363), got {f}"),
                ));
            }
        };
        let ok = audit::ecdsa_p256_verify(
            slice(public_key, public_key_len, "public_key")?,
            slice(message, message_len, "message")?,
            slice(signature, signature_len, "signature")?,
            format,
        )
        .map_err(audit_err)?;
        // SAFETY: checked above.
        unsafe { *valid_out = i32::from(ok) };
        Ok(())
    })
}

/// Open (creating if needed) a filesystem bundle store at `path`.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `store_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_open(
    path: *const c_char,
    store_out: *mut *mut smm_file_store,
) -> smm_status {
    boundary(|| {
        check_out(store_out, "store_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let inner = FileBundleStore::open(p).map_err(audit_err)?;
        // SAFETY: checked above.
        unsafe { write_obj(store_out, smm_file_store { inner }) };
        Ok(())
    })
}

/// Store a signed bundle (the envelope JSON); writes its id to
/// `*bundle_id_out`. Storing the same bytes again is fine; different bytes
/// under an existing id are SMM_STORAGE.
///
/// # Safety
/// `store` is NULL or live; `envelope_json` NULL or NUL-terminated;
/// `bundle_id_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_put(
    store: *const smm_file_store,
    envelope_json: *const c_char,
    bundle_id_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(bundle_id_out, "bundle_id_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        let b = StoredBundle::from_envelope(env.as_bytes()).map_err(audit_err)?;
        let _: PutOutcome = st.inner.put(&b).map_err(audit_err)?;
        // SAFETY: checked above.
        unsafe { write_out(bundle_id_out, b.bundle_id) }
    })
}

/// The envelope stored under `bundle_id` (checked against it), or
/// SMM_NOT_FOUND.
///
/// # Safety
/// As for `smm_file_store_put`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_get(
    store: *const smm_file_store,
    bundle_id: *const c_char,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(bundle_id, "bundle_id") }?;
        match st.inner.get(id).map_err(audit_err)? {
            None => Err((smm_status::SMM_NOT_FOUND, format!("no bundle {id}"))),
            Some(b) => {
                let env = String::from_utf8(b.envelope)
                    .map_err(|e| (smm_status::SMM_STORAGE, e.to_string()))?;
                // SAFETY: checked above.
                unsafe { write_out(envelope_out, env) }
            }
        }
    })
}

/// A workspace's bundles created in [from, to) (RFC 3339; NULL for open
/// bounds) as `[{"bundleId", "workspaceId", "createdAt"}]`, oldest first.
///
/// # Safety
/// As for `smm_file_store_put`; `from` and `to` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_list_json(
    store: *const smm_file_store,
    workspace_id: *const c_char,
    from: *const c_char,
    to: *const c_char,
    list_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(list_out, "list_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: per this function's contract (NULL allowed).
        let from = if from.is_null() {
            None
        } else {
            Some(unsafe { arg_str(from, "from") }?)
        };
        // SAFETY: per this function's contract (NULL allowed).
        let to = if to.is_null() {
            None
        } else {
            Some(unsafe { arg_str(to, "to") }?)
        };
        let items: Vec<serde_json::Value> = st
            .inner
            .list(ws, from, to)
            .map_err(audit_err)?
            .into_iter()
            .map(|b| serde_json::json!({"bundleId": b.bundle_id, "workspaceId": b.workspace_id, "createdAt": b.created_at}))
            .collect();
        // SAFETY: checked above.
        unsafe { write_out(list_out, to_json_string(&items)?) }
    })
}

/// Free a store. NULL is ignored.
///
/// # Safety
/// `store` is NULL or made by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_free(store: *mut smm_file_store) {
    if !store.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// Sign a 32-byte SHA-256 digest with any signer; the signature (strict DER,
/// low S, checked against the signer's public key) goes to `signature_out`
/// (capacity `signature_capacity`, 72 is enough) and its length to
/// `*signature_len_out`.
///
/// # Safety
/// `signer` is NULL or live; `digest` NULL or 32 readable bytes;
/// `signature_out` NULL or `signature_capacity` writable bytes;
/// `signature_len_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_sign_digest(
    signer: *const smm_signer,
    digest: *const u8,
    signature_out: *mut u8,
    signature_capacity: usize,
    signature_len_out: *mut usize,
) -> smm_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        if digest.is_null() || signature_out.is_null() || signature_len_out.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "digest, signature_out and signature_len_out are required".into(),
            ));
        }
        let mut d = [0u8; 32];
        // SAFETY: 32 readable bytes per the contract.
        d.copy_from_slice(unsafe { std::slice::from_raw_parts(digest, 32) });
        let sig = audit::sign_checked(s.inner.as_ref(), &d).map_err(audit_err)?;
        if sig.len() > signature_capacity {
            return Err((
                smm_status::SMM_INVALID_INPUT,
                format!("signature needs {} bytes", sig.len()),
            ));
        }
        // SAFETY: capacity checked; the out-pointers are writable.
        unsafe {
            std::ptr::copy_nonoverlapping(sig.as_ptr(), signature_out, sig.len());
            *signature_len_out = sig.len();
        }
        Ok(())
    })
}
