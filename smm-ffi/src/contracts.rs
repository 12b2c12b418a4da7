//! Workspace contracts: canonical JSON, hashes, validation, changes,
//! lifecycle, chains, migration.

use std::ffi::c_char;

use smm_core::contract::{self, Contract, ContractHistory, Lifecycle};
use smm_core::jcs;

use crate::convert::{arg_str, arg_time, check_out, to_json_string, write_out};
use crate::errors::{boundary, err, smm_status};

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
        let c = String::from_utf8(c).map_err(|e| (smm_status::SMM_INTERNAL, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(canonical_out, c) }
    })
}

/// Write 1 to `*canonical_out` when `json` is its own RFC 8785 canonical
/// form (what a verifier asks of a signed payload), else 0. Text with no
/// canonical form is SMM_INVALID_INPUT, as for `smm_canonicalize_json`
/// (`*canonical_out` untouched).
///
/// # Safety
/// `json` is NULL or a NUL-terminated string; `canonical_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_is_canonical_json(
    json: *const c_char,
    canonical_out: *mut i32,
) -> smm_status {
    boundary(|| {
        if canonical_out.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "canonical_out is NULL".into(),
            ));
        }
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(json, "json") }?;
        let answer = jcs::is_canonical(text.as_bytes())
            .map_err(|e| (smm_status::SMM_INVALID_INPUT, e.to_string()))?;
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { *canonical_out = i32::from(answer) };
        Ok(())
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
        let c = Contract::from_json(text).map_err(err)?;
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
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let v = contract::validate_document(text.as_bytes(), now).map_err(err)?;
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
        let a = Contract::from_json(a).map_err(err)?;
        let b = Contract::from_json(b).map_err(err)?;
        let kind = a.check_change(&b).map_err(err)?;
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
        let c = Contract::from_json(text).map_err(err)?;
        let next = c.transition(to).map_err(err)?;
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
        let items = contract::parse_document(text).map_err(err)?;
        let report = ContractHistory::from_json_items(&items)
            .map_err(err)?
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
        let v1 = contract::parse_document(text).map_err(err)?;
        let v2 = contract::migrate_v1(&v1).map_err(err)?;
        let out = jcs::canonicalize_value(&v2)
            .map_err(|e| (smm_status::SMM_INVALID_INPUT, e.to_string()))?;
        let out = String::from_utf8(out).map_err(|e| (smm_status::SMM_INTERNAL, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(contract_out, out) }
    })
}
