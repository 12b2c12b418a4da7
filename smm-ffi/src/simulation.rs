//! Simulation: whole runs, shards and merges.

use std::ffi::c_char;

use smm_core::sim::{self, PartialResult, SimulationRequest};

use crate::convert::{arg_str, check_out, options, write_out};
use crate::errors::{boundary, err, smm_status};

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
        let report = sim::simulate_json(text, &options(threads)).map_err(err)?;
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
        let req = SimulationRequest::from_json(text).map_err(err)?;
        let part = sim::simulate_shard(&req, start, end, &options(threads)).map_err(err)?;
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
        if count > smm_core::limits::MAX_PARTIALS {
            return Err((
                smm_status::SMM_INVALID_SHARD,
                format!(
                    "{count} partial results, more than the limit of {}",
                    smm_core::limits::MAX_PARTIALS
                ),
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
        let out = sim::merge_partials(parts, &options(threads)).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, out.report.to_json()) }
    })
}

/// Iterations per block: shard boundaries must be multiples of it.
#[unsafe(no_mangle)]
pub extern "C" fn smm_block_size() -> u64 {
    sim::BLOCK_SIZE
}
