//! Simulation: whole runs, shards and merges.

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use smm_core::sim::{self, PartialResult, Progress, RunControl, SimulationRequest};

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

/// A run's progress: `done` of `total` iterations. Return 0 to go on,
/// anything else to stop the run (it then fails with `SMM_CANCELLED`).
/// Called on the thread that called `smm_simulate_progress_json`, during
/// that call, after each wave of blocks (every 32,768 iterations, never
/// per iteration) and once at the end. `userdata` is passed through.
pub type smm_progress_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, done: u64, total: u64) -> i32>;

/// The callback and its userdata, called only on the thread that made the
/// call, during it.
struct Callback {
    f: unsafe extern "C" fn(*mut c_void, u64, u64) -> i32,
    userdata: *mut c_void,
}

// SAFETY: the engine calls progress on the thread running the call (its
// fold loop), never from its workers, and not after the call returns; the
// pointer is only handed back to the host's function there.
unsafe impl Send for Callback {}
// SAFETY: as above: there is no concurrent use.
unsafe impl Sync for Callback {}

impl Callback {
    /// Ask the host whether to go on.
    ///
    /// # Safety
    /// On the calling thread, during the call (see `smm_progress_fn`).
    unsafe fn stop(&self, p: Progress) -> bool {
        // SAFETY: per this function's contract.
        unsafe { (self.f)(self.userdata, p.done, p.total) != 0 }
    }
}

/// `smm_simulate_json` with a progress callback that can stop the run
/// (`progress` NULL: none). A stopped run writes no report and returns
/// `SMM_CANCELLED`.
///
/// # Safety
/// As for `smm_simulate_json`; `progress`, when not NULL, is safe to call
/// with `userdata` during this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_simulate_progress_json(
    request_json: *const c_char,
    threads: u32,
    progress: smm_progress_fn,
    userdata: *mut c_void,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(request_json, "request_json") }?;
        let mut opts = options(threads);
        if let Some(f) = progress {
            let cancel = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&cancel);
            let cb = Callback { f, userdata };
            opts.control =
                RunControl::default()
                    .with_cancel(cancel)
                    .with_progress(move |p: Progress| {
                        // SAFETY: per this function's contract (see `Callback`).
                        if unsafe { cb.stop(p) } {
                            flag.store(true, Ordering::SeqCst);
                        }
                    });
        }
        let report = sim::simulate_json(text, &opts).map_err(err)?;
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
        let json = part.to_json().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(partial_out, json) }
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
        let json = out.report.to_json().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, json) }
    })
}

/// `smm_simulate_shard_json`, writing the partial's compact binary form
/// (the samples of an exact-mode shard as raw little-endian doubles, 56
/// bytes an iteration; the rest as JSON) to `*partial_out` and its length to
/// `*len_out`. Free it with `smm_bytes_free(partial, len)`.
///
/// # Safety
/// `request_json` is NULL or NUL-terminated; `partial_out` and `len_out`
/// are NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_simulate_shard_bytes(
    request_json: *const c_char,
    start: u64,
    end: u64,
    threads: u32,
    partial_out: *mut *mut u8,
    len_out: *mut usize,
) -> smm_status {
    boundary(|| {
        check_out(partial_out, "partial_out")?;
        if len_out.is_null() {
            return Err((smm_status::SMM_NULL_ARGUMENT, "len_out is NULL".into()));
        }
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(request_json, "request_json") }?;
        let req = SimulationRequest::from_json(text).map_err(err)?;
        let part = sim::simulate_shard(&req, start, end, &options(threads)).map_err(err)?;
        let bytes = part.to_bytes().map_err(err)?.into_boxed_slice();
        let len = bytes.len();
        // SAFETY: both checked above; the box is given to the caller, who
        // frees it with smm_bytes_free(ptr, len).
        unsafe {
            *len_out = len;
            *partial_out = Box::into_raw(bytes).cast::<u8>();
        }
        Ok(())
    })
}

/// Merge partial results in their binary form (`smm_simulate_shard_bytes`):
/// `partials[i]` points to `lens[i]` bytes. The report as JSON, as
/// `smm_merge_partials_json` writes it. A damaged or forged partial is
/// SMM_INVALID_INPUT naming its index.
///
/// # Safety
/// `partials` and `lens` point to `count` entries; each `partials[i]`
/// points to `lens[i]` readable bytes; `report_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_merge_partials_bytes(
    partials: *const *const u8,
    lens: *const usize,
    count: usize,
    threads: u32,
    report_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(report_out, "report_out")?;
        if partials.is_null() || lens.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "partials or lens is NULL".into(),
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
        // SAFETY: the caller passes `count` entries in each array.
        let (ptrs, sizes) = unsafe {
            (
                std::slice::from_raw_parts(partials, count),
                std::slice::from_raw_parts(lens, count),
            )
        };
        let mut parts = Vec::with_capacity(count);
        for (i, (p, n)) in ptrs.iter().zip(sizes).enumerate() {
            if p.is_null() {
                return Err((
                    smm_status::SMM_NULL_ARGUMENT,
                    format!("partials[{i}] is NULL"),
                ));
            }
            // SAFETY: per this function's contract, `n` readable bytes.
            let bytes = unsafe { std::slice::from_raw_parts(*p, *n) };
            parts.push(
                PartialResult::from_bytes(bytes)
                    .map_err(|e| (smm_status::SMM_INVALID_INPUT, format!("partials[{i}]: {e}")))?,
            );
        }
        let out = sim::merge_partials(parts, &options(threads)).map_err(err)?;
        let json = out.report.to_json().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(report_out, json) }
    })
}

/// Free bytes returned by this library with their length. NULL is ignored.
///
/// # Safety
/// `bytes` is NULL or a pointer returned by this library with `len`, not
/// yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bytes_free(bytes: *mut u8, len: usize) {
    if bytes.is_null() {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: made by Box::into_raw of a boxed slice of `len` bytes here.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(bytes, len)) });
    }));
}

/// Iterations per block: shard boundaries must be multiples of it.
#[unsafe(no_mangle)]
pub extern "C" fn smm_block_size() -> u64 {
    sim::BLOCK_SIZE
}

/// Run a parameter sweep: `request_json` with, at each point of the
/// cartesian product of `grid_json` (`{"/json/pointer": [values, ...],
/// ...}`, axes in lexicographic pointer order, the last fastest),
/// `iterations` iterations seeded from `seed` and the point's values.
/// Writes the rows (`schemas/sweep-row.schema.json`), a JSON array in
/// sweep order, to `*rows_out`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `rows_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_sweep_json(
    request_json: *const c_char,
    grid_json: *const c_char,
    iterations: u64,
    seed: u64,
    threads: u32,
    rows_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(rows_out, "rows_out")?;
        // SAFETY: per this function's contract.
        let request = unsafe { arg_str(request_json, "request_json") }?;
        // SAFETY: per this function's contract.
        let grid = unsafe { arg_str(grid_json, "grid_json") }?;
        let request = smm_core::contract::parse_document(request).map_err(err)?;
        let grid = smm_core::contract::parse_document(grid).map_err(err)?;
        let grid: std::collections::BTreeMap<String, Vec<serde_json::Value>> =
            serde_json::from_value(grid).map_err(|e| {
                (
                    smm_status::SMM_INVALID_INPUT,
                    format!("grid_json must map JSON pointers to arrays of values: {e}"),
                )
            })?;
        let rows =
            sim::sweep::sweep(&request, &grid, iterations, seed, &options(threads)).map_err(err)?;
        let json = crate::convert::to_json_string(&rows)?;
        // SAFETY: checked above.
        unsafe { write_out(rows_out, json) }
    })
}
