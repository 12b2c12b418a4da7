//! Policies: bundles (Rego through regorus), decisions, decision cards.
//!
//! A `smm_policy_bundle` is made once and may be used from many threads at
//! the same time: evaluation never changes it.

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::contract::Contract;
use smm_core::policy::{self, Decision, EvalMode, PolicyBundle, PolicyInput};
use smm_core::sim::SimulationReport;

use crate::convert::{arg_obj, arg_str, check_out, to_json_string, write_obj, write_out};
use crate::errors::{Failure, boundary, err, smm_status};

/// A compiled policy bundle. Made by `smm_policy_bundle_*`, freed by
/// `smm_policy_bundle_free`. Thread-safe: evaluate one bundle from many
/// threads at once.
#[derive(Debug)]
pub struct smm_policy_bundle {
    pub(crate) inner: PolicyBundle,
}

fn invalid(what: &str, e: impl std::fmt::Display) -> Failure {
    (smm_status::SMM_INVALID_INPUT, format!("{what}: {e}"))
}

/// The default policy bundle shipped with the library.
///
/// # Safety
/// `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_default(
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        let inner = PolicyBundle::default_bundle().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// A bundle from Rego modules, `{"path.rego": "source", ...}`, and data (a
/// JSON object, or NULL for none).
///
/// # Safety
/// `modules_json` is NULL or NUL-terminated; `data_json` is NULL or
/// NUL-terminated; `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_from_modules_json(
    modules_json: *const c_char,
    data_json: *const c_char,
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(modules_json, "modules_json") }?;
        let modules: BTreeMap<String, String> = serde_json::from_str(text)
            .map_err(|e| invalid("modules_json must be {\"path\": \"source\"}", e))?;
        let data = if data_json.is_null() {
            None
        } else {
            // SAFETY: per this function's contract.
            let d = unsafe { arg_str(data_json, "data_json") }?;
            Some(serde_json::from_str(d).map_err(|e| invalid("data_json", e))?)
        };
        let inner = PolicyBundle::from_modules(modules, data).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// A bundle from a directory laid out as `opa build` expects it.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_from_dir(
    path: *const c_char,
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let inner = PolicyBundle::from_dir(p).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// A bundle from an OPA bundle archive (`opa build`'s .tar.gz).
///
/// # Safety
/// `path` is NULL or NUL-terminated; `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_from_archive(
    path: *const c_char,
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let inner = PolicyBundle::from_archive(p).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// A bundle from a directory, only when its files' checksum is `checksum`
/// (a contract's policyBundleChecksum): compared before any of its source
/// is parsed, so a bundle off the pin never runs (SMM_POLICY_CHECKSUM).
///
/// # Safety
/// `path` and `checksum` are NULL or NUL-terminated; `bundle_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_from_dir_pinned(
    path: *const c_char,
    checksum: *const c_char,
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        // SAFETY: per this function's contract.
        let pin = unsafe { arg_str(checksum, "checksum") }?;
        let inner = PolicyBundle::from_dir_pinned(p, pin).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// A bundle from an OPA bundle archive, only when its files' checksum is
/// `checksum`, compared before any of its source is parsed
/// (SMM_POLICY_CHECKSUM otherwise).
///
/// # Safety
/// `path` and `checksum` are NULL or NUL-terminated; `bundle_out` is NULL
/// or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_from_archive_pinned(
    path: *const c_char,
    checksum: *const c_char,
    bundle_out: *mut *mut smm_policy_bundle,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        // SAFETY: per this function's contract.
        let pin = unsafe { arg_str(checksum, "checksum") }?;
        let inner = PolicyBundle::from_archive_pinned(p, pin).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(bundle_out, smm_policy_bundle { inner }) };
        Ok(())
    })
}

/// The bundle's checksum (64 lowercase hex: a contract's policyBundleChecksum).
///
/// # Safety
/// `bundle` is NULL or live; `checksum_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_checksum(
    bundle: *const smm_policy_bundle,
    checksum_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(checksum_out, "checksum_out")?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        // SAFETY: checked above.
        unsafe { write_out(checksum_out, b.inner.checksum().to_string()) }
    })
}

/// Validate a policy input (see `schemas/policy-input.schema.json`) and
/// evaluate `data.smm.decision`; writes the decision (JSON) to
/// `*decision_out`. Bad input is SMM_INVALID_INPUT naming the field by JSON
/// pointer. May be called from many threads on one bundle.
///
/// # Safety
/// `bundle` is NULL or live; `input_json` NULL or NUL-terminated;
/// `decision_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_evaluate_json(
    bundle: *const smm_policy_bundle,
    input_json: *const c_char,
    decision_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(decision_out, "decision_out")?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(input_json, "input_json") }?;
        let input = PolicyInput::from_json(text).map_err(err)?;
        let d = b.inner.evaluate(&input).map_err(err)?;
        let json = d.to_json().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(decision_out, json) }
    })
}

/// A policy input validated once (`smm_policy_input_new_json`), to
/// evaluate many times without validating it again
/// (`smm_policy_evaluate_input_json`); freed by `smm_policy_input_free`.
/// Immutable: use it from many threads at once.
#[derive(Debug)]
pub struct smm_policy_input {
    pub(crate) inner: PolicyInput,
}

/// Validate a policy input (see `schemas/policy-input.schema.json`) once;
/// bad input is SMM_INVALID_INPUT naming the field by JSON pointer.
///
/// # Safety
/// `input_json` NULL or NUL-terminated; `input_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_input_new_json(
    input_json: *const c_char,
    input_out: *mut *mut smm_policy_input,
) -> smm_status {
    boundary(|| {
        check_out(input_out, "input_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(input_json, "input_json") }?;
        let inner = PolicyInput::from_json(text).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(input_out, smm_policy_input { inner }) };
        Ok(())
    })
}

/// Evaluate `data.smm.decision` on a prepared input (no validation, no
/// conversion: the fast way to decide many times); the decision (JSON) to
/// `*decision_out`, as `smm_policy_evaluate_json` writes it.
///
/// # Safety
/// `bundle` and `input` are NULL or live; `decision_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_evaluate_input_json(
    bundle: *const smm_policy_bundle,
    input: *const smm_policy_input,
    decision_out: *mut *mut c_char,
) -> smm_status {
    // SAFETY: per this function's contract.
    unsafe { evaluate_prepared(bundle, input, || Ok(EvalMode::Vm), decision_out) }
}

/// A prepared input's decision on the evaluator `mode` names, as JSON.
///
/// # Safety
/// As `smm_policy_evaluate_input_json`'s.
unsafe fn evaluate_prepared(
    bundle: *const smm_policy_bundle,
    input: *const smm_policy_input,
    mode: impl FnOnce() -> Result<EvalMode, Failure>,
    decision_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(decision_out, "decision_out")?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        // SAFETY: per this function's contract.
        let i = unsafe { arg_obj(input, "input") }?;
        let d = b.inner.evaluate_with(&i.inner, mode()?).map_err(err)?;
        let json = d.to_json().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(decision_out, json) }
    })
}

/// [`smm_policy_evaluate_input_json`] on a chosen evaluator: `engine` is
/// "vm" (what `smm_policy_evaluate_input_json` uses), "interpreter", or
/// "native" (the default bundle's rules in Rust: the same decisions in
/// microseconds, the decision's `engine` "smm-native";
/// SMM_POLICY for a bundle without a native form, see
/// `smm_policy_bundle_has_native`). Any other `engine` is
/// SMM_INVALID_INPUT.
///
/// # Safety
/// `bundle` and `input` are NULL or live; `engine` NULL or NUL-terminated;
/// `decision_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_evaluate_input_with_json(
    bundle: *const smm_policy_bundle,
    input: *const smm_policy_input,
    engine: *const c_char,
    decision_out: *mut *mut c_char,
) -> smm_status {
    let mode = || {
        // SAFETY: per this function's contract.
        let name = unsafe { arg_str(engine, "engine") }?;
        match name {
            "vm" => Ok(EvalMode::Vm),
            "interpreter" => Ok(EvalMode::Interpreter),
            "native" => Ok(EvalMode::Native),
            other => Err(invalid(
                "engine must be \"vm\", \"interpreter\" or \"native\"",
                format!("got {other:?}"),
            )),
        }
    };
    // SAFETY: per this function's contract.
    unsafe { evaluate_prepared(bundle, input, mode, decision_out) }
}

/// Whether the bundle decides on the "native" engine
/// (`smm_policy_evaluate_input_with_json`): writes 1 when its policy
/// modules are the default bundle's and its data has the default's shape,
/// 0 otherwise.
///
/// # Safety
/// `bundle` is NULL or live; `has_native_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_has_native(
    bundle: *const smm_policy_bundle,
    has_native_out: *mut i32,
) -> smm_status {
    boundary(|| {
        if has_native_out.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "has_native_out is NULL".into(),
            ));
        }
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        // SAFETY: checked non-NULL above; writable per the contract.
        unsafe { has_native_out.write(i32::from(b.inner.has_native())) };
        Ok(())
    })
}

/// Free a prepared policy input (NULL is a no-op).
///
/// # Safety
/// `input` is NULL or made by this library and not yet freed, and no
/// other thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_input_free(input: *mut smm_policy_input) {
    if !input.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(input) })));
    }
}

/// Evaluate any rule path (`data.pkg.rule`) on any JSON input and write its
/// value (JSON) to `*result_out`; SMM_NOT_FOUND when the rule is undefined
/// for the input.
///
/// # Safety
/// `bundle` is NULL or live; strings NULL or NUL-terminated; `result_out`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_query_json(
    bundle: *const smm_policy_bundle,
    rule_path: *const c_char,
    input_json: *const c_char,
    result_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        // SAFETY: per this function's contract.
        let rule = unsafe { arg_str(rule_path, "rule_path") }?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(input_json, "input_json") }?;
        let input: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid("input_json", e))?;
        match b.inner.query(rule, &input).map_err(err)? {
            None => Err((
                smm_status::SMM_NOT_FOUND,
                format!("{rule} is undefined for this input"),
            )),
            // SAFETY: checked above.
            Some(v) => unsafe { write_out(result_out, to_json_string(&v)?) },
        }
    })
}

/// Run the bundle's Rego unit tests (`test_*` rules, `opa test` semantics)
/// with rule coverage; writes the report (see
/// `schemas/rego-test-report.schema.json`) to `*report_out`. Failing tests
/// are reported in it, not as a status.
///
/// # Safety
/// `bundle` is NULL or live; `report_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_test_json(
    bundle: *const smm_policy_bundle,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        // SAFETY: per this function's contract.
        let b = unsafe { arg_obj(bundle, "bundle") }?;
        let r = b.inner.test().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, to_json_string(&r)?) }
    })
}

/// Free a bundle. NULL is ignored.
///
/// # Safety
/// `bundle` is NULL or made by this library and not yet freed, and no
/// other thread is using it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_policy_bundle_free(bundle: *mut smm_policy_bundle) {
    if !bundle.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(bundle) })));
    }
}

/// The decision card (JSON, see `schemas/decision-card.schema.json`) of a
/// simulation report, a decision and the contract: auto_approve,
/// human_approval or deny with reason codes. A decision of another bundle
/// than the contract's policyBundleChecksum is SMM_POLICY_CHECKSUM.
///
/// # Safety
/// Strings NULL or NUL-terminated; `card_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_decision_card_json(
    report_json: *const c_char,
    decision_json: *const c_char,
    contract_json: *const c_char,
    card_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(card_out, "card_out")?;
        // SAFETY: per this function's contract.
        let report = unsafe { arg_str(report_json, "report_json") }?;
        // SAFETY: per this function's contract.
        let decision = unsafe { arg_str(decision_json, "decision_json") }?;
        // SAFETY: per this function's contract.
        let contract = unsafe { arg_str(contract_json, "contract_json") }?;
        let report = SimulationReport::from_json(report).map_err(err)?;
        let decision: serde_json::Value =
            serde_json::from_str(decision).map_err(|e| invalid("decision_json", e))?;
        let decision = Decision::from_value(&decision).map_err(err)?;
        let contract = Contract::from_json(contract).map_err(err)?;
        let card = policy::decision_card(&report, &decision, &contract).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(card_out, to_json_string(&card)?) }
    })
}
