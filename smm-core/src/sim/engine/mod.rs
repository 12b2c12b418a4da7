//! The deterministic Monte Carlo engine.
//!
//! Iterations are grouped in blocks of [`BLOCK_SIZE`]. Block `k` draws from
//! its own ChaCha stream, keyed by the seed with stream number `k`, so a block
//! gives the same numbers on any thread. Blocks are folded into the result in
//! index order; moments use exact accumulators and histograms integer counts,
//! so neither the thread count nor the shard layout changes a single bit of
//! the report. Early termination is checked only at block boundaries, in
//! index order.

mod blocks;
mod finish;
mod partial;
mod select;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand_chacha::ChaCha8Rng;

use super::SimulationError;
use super::input::SimulationRequest;
use super::model::{Plan, PrecisionPlan};
use super::report::SimulationReport;
use super::stats::Moments;
use blocks::{Keep, run_range, run_range_keeping};
use finish::finish;
pub use partial::PartialResult;
use partial::append;

/// Iterations per block (one ChaCha stream each).
pub const BLOCK_SIZE: u64 = 256;
/// Blocks computed in parallel before they are folded in order.
const WAVE_BLOCKS: u64 = 128;
/// Readiness values kept for the final convergence check.
const TAIL: usize = 100;

/// The PRNG used for every block.
type BlockRng = ChaCha8Rng;
/// How the PRNG is named in reports.
pub const RNG_ALGORITHM: &str =
    "ChaCha8Rng (rand_chacha); key = seed_from_u64(seed), stream = block index";
/// Version of smm-core.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
/// Version of rand_chacha the engine is built with (checked against Cargo.lock by a test).
pub const RAND_CHACHA_VERSION: &str = "0.10.0";
/// Version of rand_distr whose standard normal sampler the engine draws with
/// (its own copy, `sim/normal.rs`, tested bit for bit against this version;
/// the version is checked against Cargo.lock by a test).
pub const RAND_DISTR_VERSION: &str = "0.6.0";

/// How a run executes. None of these change a result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Worker threads; `None` (or `Some(0)`, as in the C ABI and the CLI)
    /// uses every available core, `Some(1)` runs on the calling thread.
    /// The report is the same on any count.
    pub threads: Option<usize>,
    /// Keep every per-iteration value and return it in [`RunOutput::samples`]
    /// (exact percentile mode only).
    pub keep_samples: bool,
    /// Watching and stopping the run from outside.
    pub control: RunControl,
}

/// How far a run is: iterations done of the range asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Iterations done (a multiple of [`BLOCK_SIZE`], or the end).
    pub done: u64,
    /// Iterations of the range (a run's `iterations`, or a shard's length).
    pub total: u64,
}

/// Watching and stopping a run from another thread: a cancel flag, read
/// between waves of blocks (every 32,768 iterations), and a progress
/// callback, called on the running thread after each wave (a run that
/// stops early on convergence reports its whole range done). Neither changes
/// a result; a cancelled run returns [`SimulationError::Cancelled`] and no
/// report. Clones share the flag and the callback.
///
/// Progress can go back once: in the rare exact-mode run whose values
/// crowd into too few 32-bit keys for its percentiles (a metric spread
/// below an `f32`'s resolution), the run is taken a second time with `f64`
/// columns, and reports its progress again from the start.
#[derive(Clone, Default)]
pub struct RunControl {
    cancel: Option<Arc<AtomicBool>>,
    progress: Option<Arc<dyn Fn(Progress) + Send + Sync>>,
}

impl RunControl {
    /// Stop the run when `flag` becomes true.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Call `f` after each wave of blocks.
    pub fn with_progress(mut self, f: impl Fn(Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn report(&self, done: u64, total: u64) {
        if let Some(f) = &self.progress {
            f(Progress { done, total });
        }
    }
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("cancel", &self.cancel)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .finish()
    }
}

/// Two controls are equal when they share the same flag and callback.
impl PartialEq for RunControl {
    fn eq(&self, other: &Self) -> bool {
        let flag = match (&self.cancel, &other.cancel) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let progress = match (&self.progress, &other.progress) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        flag && progress
    }
}

impl Eq for RunControl {}

/// Per-iteration values, in iteration order.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// readinessScore per iteration.
    pub readiness_score: Vec<f64>,
    /// policyPassPct per iteration.
    pub policy_pass_pct: Vec<f64>,
    /// citationCoverage per iteration.
    pub citation_coverage: Vec<f64>,
    /// duplicationRisk per iteration.
    pub duplication_risk: Vec<f64>,
    /// costEstimate per iteration.
    pub cost_estimate_usd: Vec<f64>,
    /// technicalReadiness per iteration.
    pub technical_readiness: Vec<f64>,
    /// Workflow makespan per iteration, when there is a workflow.
    pub makespan_ms: Option<Vec<f64>>,
}

/// A report and, when asked for, the samples behind it.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// The report.
    pub report: SimulationReport,
    /// Per-iteration values (see [`RunOptions::keep_samples`]).
    pub samples: Option<Samples>,
}

/// Simulate and return the report.
pub fn simulate(
    req: &SimulationRequest,
    opts: &RunOptions,
) -> Result<SimulationReport, SimulationError> {
    run(req, opts).map(|o| o.report)
}

/// Simulate a JSON request (the shape of `simulationInput`) and return the
/// report as compact JSON.
pub fn simulate_json(request_json: &str, opts: &RunOptions) -> Result<String, SimulationError> {
    let req = SimulationRequest::from_json(request_json)?;
    simulate(&req, opts)?.to_json()
}

/// Simulate and return the report with, when asked for, the samples.
pub fn run(req: &SimulationRequest, opts: &RunOptions) -> Result<RunOutput, SimulationError> {
    let plan = Plan::compile(req)?;
    check_options(&plan, opts)?;
    let threads = resolve_threads(opts.threads.or(plan.parallel_batches()))?;
    let n = plan.config.iterations;
    // An exact run that hands out no samples keeps 32-bit keys instead of
    // values (see `sim::keyed`); the report is the same bit for bit.
    let keep = if opts.keep_samples {
        Keep::Values
    } else {
        Keep::Keys
    };
    let (partial, keys) = run_range_keeping(&plan, req, 0, n, threads, &opts.control, keep)?;
    let Some(keys) = keys else {
        return finish(&plan, partial, opts.keep_samples, threads, None);
    };
    let pool = blocks::pool_for(threads)?;
    match select::keyed_percentiles(&plan, &partial, &keys, pool.as_deref()) {
        Some(p) => finish(&plan, partial, false, threads, Some(p)),
        None => {
            // A zero of each sign at a metric's extreme (the keys cannot
            // say which values pile there), or a metric's values crowded
            // into a few keys: take the run again with values. Its progress
            // is reported again from the start.
            drop(keys);
            let partial = run_range(&plan, req, 0, n, threads, &opts.control)?;
            finish(&plan, partial, false, threads, None)
        }
    }
}

/// Simulate iterations `[start, end)` of the run `req` describes.
///
/// `start` must be a multiple of [`BLOCK_SIZE`]; `end` a multiple of it or
/// the run's `iterations`.
pub fn simulate_shard(
    req: &SimulationRequest,
    start: u64,
    end: u64,
    opts: &RunOptions,
) -> Result<PartialResult, SimulationError> {
    let plan = Plan::compile(req)?;
    let n = plan.config.iterations;
    let bad = |reason: &str| SimulationError::InvalidShard {
        start,
        end,
        iterations: n,
        reason: reason.to_string(),
    };
    if start >= end {
        return Err(bad("the range is empty"));
    }
    if end > n {
        return Err(bad("the range ends after the run's last iteration"));
    }
    if !start.is_multiple_of(BLOCK_SIZE) || (!end.is_multiple_of(BLOCK_SIZE) && end != n) {
        return Err(bad(&format!(
            "shard bounds must be multiples of the block size {BLOCK_SIZE} (or the run's end)"
        )));
    }
    let threads = resolve_threads(opts.threads.or(plan.parallel_batches()))?;
    run_range(&plan, req, start, end, threads, &opts.control)
}

/// Merge the partials of every shard of one run (in any order) into its
/// report. The result is bit-identical to a single [`run`] of the request.
pub fn merge_partials(
    parts: Vec<PartialResult>,
    opts: &RunOptions,
) -> Result<RunOutput, SimulationError> {
    if parts.len() > crate::limits::MAX_PARTIALS {
        return Err(SimulationError::Merge {
            reason: format!(
                "{} partial results, more than the limit of {}",
                parts.len(),
                crate::limits::MAX_PARTIALS
            ),
        });
    }
    let mut parts = parts;
    parts.sort_by_key(|p| p.start);
    let mut iter = parts.into_iter();
    let Some(mut acc) = iter.next() else {
        return Err(SimulationError::Merge {
            reason: "no partial results".into(),
        });
    };
    let plan = Plan::compile(&acc.request)?;
    check_options(&plan, opts)?;
    let threads = resolve_threads(opts.threads.or(plan.parallel_batches()))?;
    let precision = plan.precision().cloned();
    if acc.start != 0 {
        return Err(SimulationError::Merge {
            reason: format!("the first shard starts at iteration {}, not 0", acc.start),
        });
    }
    for next in iter {
        if next.request != acc.request {
            return Err(SimulationError::Merge {
                reason: format!(
                    "the shard starting at {} belongs to a different request",
                    next.start
                ),
            });
        }
        if acc.terminated_early {
            continue;
        }
        if next.start != acc.end {
            return Err(SimulationError::Merge {
                reason: if next.start < acc.end {
                    format!("shards overlap at iteration {}", next.start)
                } else {
                    format!("iterations {}..{} are missing", acc.end, next.start)
                },
            });
        }
        if let Some(p) = &precision {
            // The boundary between the shards, then each inside the next.
            if p.met(&acc.moments) {
                acc.terminated_early = true;
                continue;
            }
            if let Some(stop) = precision_stop_inside(p, &acc.moments, &next) {
                // Recompute the head of the shard up to the stop (at most
                // one shard's work), as a single run would have ended.
                let head = run_range(
                    &plan,
                    &acc.request,
                    next.start,
                    stop,
                    threads,
                    &opts.control,
                )?;
                append(&mut acc, head);
                acc.terminated_early = true;
                continue;
            }
        }
        append(&mut acc, next);
    }
    if !acc.terminated_early && acc.end != plan.config.iterations {
        return Err(SimulationError::Merge {
            reason: format!(
                "iterations {}..{} are missing",
                acc.end, plan.config.iterations
            ),
        });
    }
    finish(&plan, acc, opts.keep_samples, threads, None)
}

/// The first block boundary strictly inside `next` where the precision rule
/// is met, given the moments of every iteration before it.
fn precision_stop_inside(
    p: &PrecisionPlan,
    before: &[Moments],
    next: &PartialResult,
) -> Option<u64> {
    let sums = next.block_sums.as_ref()?;
    let mut cumulative = before.to_vec();
    let blocks = sums.first().map_or(0, Vec::len);
    for k in 0..blocks {
        let first = next.start + k as u64 * BLOCK_SIZE;
        let len = (next.end - first).min(BLOCK_SIZE);
        for (column, &(m, _)) in sums.iter().zip(&p.targets) {
            if let (Some(c), Some(b)) = (cumulative.get_mut(m), column.get(k)) {
                c.add_sums(len, b);
            }
        }
        let boundary = first + len;
        if boundary < next.end && p.met(&cumulative) {
            return Some(boundary);
        }
    }
    None
}

fn check_options(plan: &Plan, opts: &RunOptions) -> Result<(), SimulationError> {
    if opts.keep_samples && !plan.exact {
        return Err(SimulationError::Parse {
            pointer: "/simulationConfig/percentileMode".into(),
            message: "samples can only be kept in exact percentile mode".into(),
        });
    }
    Ok(())
}

fn internal(what: &str) -> SimulationError {
    SimulationError::internal(what.to_string())
}

fn resolve_threads(threads: Option<usize>) -> Result<usize, SimulationError> {
    match threads {
        Some(t) if t > crate::limits::MAX_THREADS => Err(SimulationError::InvalidOption {
            option: "threads".into(),
            message: format!(
                "must be between 0 (every core) and {} (got {t})",
                crate::limits::MAX_THREADS
            ),
        }),
        Some(0) | None => Ok(crate::pool::available()),
        Some(t) => Ok(t),
    }
}
