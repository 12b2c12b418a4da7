//! The deterministic Monte Carlo engine.
//!
//! Iterations are grouped in blocks of [`BLOCK_SIZE`]. Block `k` draws from
//! its own ChaCha stream, keyed by the seed with stream number `k`, so a block
//! gives the same numbers on any thread. Blocks are folded into the result in
//! index order; moments use exact accumulators and histograms integer counts,
//! so neither the thread count nor the shard layout changes a single bit of
//! the report. Early termination is checked only at block boundaries, in
//! index order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::SimulationError;
use super::input::SimulationRequest;
use super::model::{MODEL_METRICS, PRECISION_METRICS, Plan, Stop};
use super::report::{
    ConfidenceInterval, ConvergenceMetrics, MetricPrecision, MetricSummary, NodeSummary,
    Percentiles, Reproducibility, SimulationReport, WorkflowSummary,
};
use super::stats::{
    BOUNDED_RELATIVE_ERROR, Histogram, Moments, PERCENTILES, block_sums, convergence,
    exact_percentiles, z_for_level,
};
use super::workflow::{NodeCounters, Scratch};

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
/// Version of rand_distr the engine is built with (checked against Cargo.lock by a test).
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

/// The result of simulating iterations `[start, end)` of a run: merge the
/// partials of all shards with [`merge_partials`] to get exactly the report
/// of a single run. Serializable, so shards can run on other machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawPartial")]
pub struct PartialResult {
    request: SimulationRequest,
    start: u64,
    end: u64,
    run_end: u64,
    terminated_early: bool,
    moments: Vec<Moments>,
    samples: Option<Vec<Vec<f64>>>,
    histograms: Option<Vec<Histogram>>,
    successes: u64,
    node_counters: Vec<NodeCounters>,
    tail: Vec<f64>,
    /// Under the precision rule, a shard that does not start the run keeps
    /// each block's sums of every targeted metric (in the rule's target
    /// order), so that the merge finds the stopping point exactly where a
    /// single run would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_sums: Option<Vec<Vec<[f64; 4]>>>,
}

/// A partial result as decoded from outside, before its checks.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawPartial {
    request: SimulationRequest,
    start: u64,
    end: u64,
    run_end: u64,
    terminated_early: bool,
    moments: Vec<Moments>,
    samples: Option<Vec<Vec<f64>>>,
    histograms: Option<Vec<Histogram>>,
    successes: u64,
    node_counters: Vec<NodeCounters>,
    tail: Vec<f64>,
    #[serde(default)]
    block_sums: Option<Vec<Vec<[f64; 4]>>>,
}

impl TryFrom<RawPartial> for PartialResult {
    type Error = SimulationError;

    /// Every invariant a shard this engine made holds, so that a forged or
    /// damaged partial is refused here and nothing downstream (the merge,
    /// the statistics) meets a value it cannot handle.
    fn try_from(r: RawPartial) -> Result<Self, SimulationError> {
        let bad = |reason: String| SimulationError::InvalidPartial { reason };
        let plan = Plan::compile(&r.request)?;
        let n = plan.config.iterations;
        if r.start >= r.end || r.end > n {
            return Err(bad(format!(
                "the range [{}, {}) is not within the run's {n} iterations",
                r.start, r.end
            )));
        }
        if !r.start.is_multiple_of(BLOCK_SIZE) || (!r.end.is_multiple_of(BLOCK_SIZE) && r.end != n)
        {
            return Err(bad(format!(
                "shard bounds must be multiples of {BLOCK_SIZE} (or the run's end)"
            )));
        }
        if r.run_end < r.start || r.run_end > r.end {
            return Err(bad(format!(
                "iterations run end at {}, outside [{}, {}]",
                r.run_end, r.start, r.end
            )));
        }
        let ran = r.run_end - r.start;
        if ran == 0 {
            return Err(bad("a partial result runs at least one iteration".into()));
        }
        if r.terminated_early != (r.run_end < r.end) {
            return Err(bad(
                "terminatedEarly does not match the iterations run".into()
            ));
        }
        if r.terminated_early && (!r.run_end.is_multiple_of(BLOCK_SIZE) || plan.stop == Stop::Never)
        {
            return Err(bad(
                "early termination stops at a block boundary of a run that enables it".into(),
            ));
        }
        if r.terminated_early
            && let Some(p) = plan.precision()
            && (r.start != 0 || !p.met(&r.moments))
        {
            return Err(bad(
                "the precision rule stops only the first shard, where its targets are met".into(),
            ));
        }
        let metrics = plan.metric_count();
        let centers = plan.centers();
        if r.moments.len() != metrics {
            return Err(bad(format!(
                "{} moments, expected {metrics}",
                r.moments.len()
            )));
        }
        for (m, c) in r.moments.iter().zip(&centers) {
            if m.n != ran {
                return Err(bad(format!("moments count {} values, expected {ran}", m.n)));
            }
            if m.center.to_bits() != c.to_bits() {
                return Err(bad(
                    "moments are centred elsewhere than this request's".into()
                ));
            }
            if !(m.min.is_finite() && m.max.is_finite() && m.min <= m.max) {
                return Err(bad("moments have an invalid minimum or maximum".into()));
            }
        }
        let len = usize::try_from(ran).map_err(|_| bad("too many iterations".into()))?;
        match (&r.samples, &r.histograms, plan.exact) {
            (Some(s), None, true) => {
                if s.len() != metrics || s.iter().any(|c| c.len() != len) {
                    return Err(bad(format!("samples must be {metrics} columns of {len}")));
                }
                for (col, m) in s.iter().zip(&r.moments) {
                    if col
                        .iter()
                        .any(|x| !(x.is_finite() && *x >= m.min && *x <= m.max))
                    {
                        return Err(bad(
                            "a sample is not finite or outside its column's range".into()
                        ));
                    }
                }
            }
            (None, Some(h), false) => {
                if h.len() != metrics || h.iter().any(|h| h.total() != Some(ran)) {
                    return Err(bad(format!(
                        "histograms must be {metrics}, each counting {ran}"
                    )));
                }
            }
            _ => {
                return Err(bad(format!(
                    "{} percentiles need {}",
                    if plan.exact { "exact" } else { "bounded" },
                    if plan.exact {
                        "samples and no histograms"
                    } else {
                        "histograms and no samples"
                    }
                )));
            }
        }
        let nodes = plan.workflow.as_ref().map_or(0, |w| w.len());
        if r.node_counters.len() != nodes {
            return Err(bad(format!(
                "{} node counters, expected {nodes}",
                r.node_counters.len()
            )));
        }
        if r.successes > ran
            || r.node_counters.iter().any(|c| {
                c.failures > ran
                    || c.skipped > ran
                    || c.failures + c.skipped > ran
                    || c.retries > ran.saturating_mul(u64::from(crate::sim::MAX_RETRIES))
            })
        {
            return Err(bad("workflow counters exceed the iterations run".into()));
        }
        if nodes == 0 && r.successes != 0 {
            return Err(bad("successes without a workflow".into()));
        }
        if nodes > 0 {
            // An iteration succeeds exactly when no node fails (after its
            // retries), a node fails at most once an iteration, and a node is
            // skipped only in an iteration where another failed. So the
            // failing iterations are at least the most failures of a node and
            // at most the sum of them.
            let all: u64 = r
                .node_counters
                .iter()
                .fold(0u64, |a, c| a.saturating_add(c.failures));
            let most = r
                .node_counters
                .iter()
                .map(|c| c.failures)
                .max()
                .unwrap_or(0);
            if r.successes.saturating_add(most) > ran || r.successes.saturating_add(all) < ran {
                return Err(bad(format!(
                    "{} successes in {ran} iterations do not fit the nodes' failures \
                     (at most {} fail in one node, {all} in all)",
                    r.successes, most
                )));
            }
            if r.node_counters.iter().any(|c| c.skipped > all) {
                return Err(bad(
                    "a node was skipped more often than any node failed".into()
                ));
            }
        }
        check_block_sums(&plan, &r, ran)?;
        if r.tail.len() > TAIL
            || r.tail.len() as u64 > ran
            || (r.tail.len() < TAIL && r.tail.len() as u64 != ran)
            || r.tail.iter().any(|x| !(0.0..=1.0).contains(x))
        {
            return Err(bad("the readiness tail is not the run's last values".into()));
        }
        Ok(PartialResult {
            request: r.request,
            start: r.start,
            end: r.end,
            run_end: r.run_end,
            terminated_early: r.terminated_early,
            moments: r.moments,
            samples: r.samples,
            histograms: r.histograms,
            successes: r.successes,
            node_counters: r.node_counters,
            tail: r.tail,
            block_sums: r.block_sums,
        })
    }
}

/// A shard's block sums are there exactly when the merge needs them (the
/// precision rule, a shard after the first), one per block and target, and
/// add up, exactly, to the shard's moments.
fn check_block_sums(plan: &Plan, r: &RawPartial, ran: u64) -> Result<(), SimulationError> {
    let bad = |reason: &str| SimulationError::InvalidPartial {
        reason: reason.to_string(),
    };
    let wanted = plan.precision().filter(|_| r.start != 0);
    match (wanted, &r.block_sums) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(bad(
            "block sums belong only to later shards of a precision run",
        )),
        (Some(_), None) => Err(bad("a later shard of a precision run needs its block sums")),
        (Some(p), Some(sums)) => {
            let blocks = ran.div_ceil(BLOCK_SIZE);
            if sums.len() != p.targets.len() || sums.iter().any(|c| c.len() as u64 != blocks) {
                return Err(bad(&format!(
                    "block sums must be {} columns of {blocks}",
                    p.targets.len()
                )));
            }
            for (column, &(m, _)) in sums.iter().zip(&p.targets) {
                let Some(moments) = r.moments.get(m) else {
                    return Err(bad("block sums of a metric the shard does not have"));
                };
                let mut rebuilt = Moments::new(moments.center);
                for (k, b) in column.iter().enumerate() {
                    if !(b.iter().all(|x| x.is_finite()) && b[1] >= 0.0 && b[2] <= b[3]) {
                        return Err(bad("a block sum is not finite or not ordered"));
                    }
                    let first = r.start + k as u64 * BLOCK_SIZE;
                    rebuilt.add_sums((r.end - first).min(BLOCK_SIZE), b);
                }
                if &rebuilt != moments {
                    return Err(bad("block sums do not add up to the shard's moments"));
                }
            }
            Ok(())
        }
    }
}

impl PartialResult {
    /// First iteration of the shard.
    pub fn start(&self) -> u64 {
        self.start
    }
    /// One past the last iteration the shard was asked for.
    pub fn end(&self) -> u64 {
        self.end
    }
    /// Iterations actually run (fewer than `end - start` after early termination).
    pub fn iterations_run(&self) -> u64 {
        self.run_end - self.start
    }
    /// True when the readiness series converged inside this shard and early
    /// termination stopped it (later shards are then ignored by the merge).
    pub fn terminated_early(&self) -> bool {
        self.terminated_early
    }
    /// The request this shard belongs to.
    pub fn request(&self) -> &SimulationRequest {
        &self.request
    }
    /// Serialize (JSON) for shipping to another process.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
    /// Parse a partial serialized with [`PartialResult::to_json`], checking
    /// every invariant (a forged or damaged partial is a
    /// [`SimulationError::InvalidPartial`], never a panic at the merge).
    pub fn from_json(text: &str) -> Result<Self, SimulationError> {
        crate::limits::check_document_len(text.len())
            .map_err(|reason| SimulationError::InvalidPartial { reason })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawPartial =
            serde_path_to_error::deserialize(&mut de).map_err(super::input::path_error)?;
        de.end().map_err(|e| SimulationError::Parse {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        PartialResult::try_from(raw)
    }
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
    simulate(&req, opts).map(|r| r.to_json())
}

/// Simulate and return the report with, when asked for, the samples.
pub fn run(req: &SimulationRequest, opts: &RunOptions) -> Result<RunOutput, SimulationError> {
    let plan = Plan::compile(req)?;
    check_options(&plan, opts)?;
    let threads = resolve_threads(opts.threads.or(plan.parallel_batches()))?;
    let partial = run_range(
        &plan,
        req,
        0,
        plan.config.iterations,
        threads,
        &opts.control,
    )?;
    finish(&plan, partial, opts.keep_samples, threads)
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
    finish(&plan, acc, opts.keep_samples, threads)
}

/// The first block boundary strictly inside `next` where the precision rule
/// is met, given the moments of every iteration before it.
fn precision_stop_inside(
    p: &super::model::PrecisionPlan,
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

fn append(acc: &mut PartialResult, next: PartialResult) {
    for (a, b) in acc.moments.iter_mut().zip(&next.moments) {
        a.merge(b);
    }
    if let (Some(a), Some(b)) = (&mut acc.samples, next.samples) {
        for (x, y) in a.iter_mut().zip(b) {
            x.extend(y);
        }
    }
    if let (Some(a), Some(b)) = (&mut acc.histograms, &next.histograms) {
        for (x, y) in a.iter_mut().zip(b) {
            x.merge(y);
        }
    }
    acc.successes += next.successes;
    for (a, b) in acc.node_counters.iter_mut().zip(&next.node_counters) {
        a.add(b);
    }
    acc.tail.extend(next.tail);
    let cut = acc.tail.len().saturating_sub(TAIL);
    acc.tail.drain(..cut);
    acc.end = next.end;
    acc.run_end = next.run_end;
    acc.terminated_early = next.terminated_early;
    acc.block_sums = None;
}

/// What a block reports besides its samples.
struct BlockSummary {
    len: usize,
    /// Per metric: sum and sum of squares of (x - center), min, max.
    sums: Vec<[f64; 4]>,
    successes: u64,
    counters: Vec<NodeCounters>,
    /// The block ends at a boundary where the readiness series has converged.
    converged_here: bool,
    /// The block's last (up to) 100 readiness values.
    tail: Vec<f64>,
}

/// Simulate block `block` of the run, writing metric `m` of iteration `j`
/// into `out[m][j]`.
fn run_block(plan: &Plan, centers: &[f64], block: u64, out: &mut [&mut [f64]]) -> BlockSummary {
    let n = plan.config.iterations;
    let first = block * BLOCK_SIZE;
    let len = (n - first).min(BLOCK_SIZE) as usize;
    let mut rng = BlockRng::seed_from_u64(plan.config.random_seed);
    rng.set_stream(block);
    let mut counters = vec![NodeCounters::default(); plan.workflow.as_ref().map_or(0, |w| w.len())];
    let mut scratch = Scratch::default();
    let mut successes = 0u64;
    let mut values = [0.0; MODEL_METRICS];
    for j in 0..len {
        plan.iterate(first + j as u64, &mut rng, &mut values);
        for (column, v) in out.iter_mut().zip(values) {
            if let Some(slot) = column.get_mut(j) {
                *slot = v;
            }
        }
        if let Some(w) = &plan.workflow {
            let (ok, makespan) = w.run(&mut rng, &mut scratch, &mut counters);
            successes += u64::from(ok);
            if let Some(slot) = out.get_mut(MODEL_METRICS).and_then(|c| c.get_mut(j)) {
                *slot = makespan;
            }
        }
    }
    let sums = out
        .iter()
        .zip(centers)
        .map(|(column, c)| block_sums(column.get(..len).unwrap_or(&[]), *c))
        .collect();
    let readiness = out.first().and_then(|c| c.get(..len)).unwrap_or(&[]);
    let converged_here = match plan.stop {
        Stop::Window(threshold) => {
            len as u64 == BLOCK_SIZE
                && first + BLOCK_SIZE < n
                && convergence(readiness, threshold).0
        }
        Stop::Never | Stop::Precision(_) => false,
    };
    BlockSummary {
        len,
        sums,
        successes,
        counters,
        converged_here,
        tail: readiness
            .get(len.saturating_sub(TAIL)..)
            .unwrap_or(&[])
            .to_vec(),
    }
}

fn run_range(
    plan: &Plan,
    req: &SimulationRequest,
    start: u64,
    end: u64,
    threads: usize,
    control: &RunControl,
) -> Result<PartialResult, SimulationError> {
    let metrics = plan.metric_count();
    let centers = plan.centers();
    let len = (end - start) as usize;
    let first_block = start / BLOCK_SIZE;
    let last_block = end.div_ceil(BLOCK_SIZE);
    let mut acc = PartialResult {
        request: req.clone(),
        start,
        end,
        run_end: start,
        terminated_early: false,
        moments: centers.iter().map(|c| Moments::new(*c)).collect(),
        samples: None,
        histograms: (!plan.exact).then(|| vec![Histogram::default(); metrics]),
        successes: 0,
        node_counters: vec![NodeCounters::default(); plan.workflow.as_ref().map_or(0, |w| w.len())],
        tail: Vec::with_capacity(TAIL),
        block_sums: plan
            .precision()
            .filter(|_| start != 0)
            .map(|p| vec![Vec::new(); p.targets.len()]),
    };
    // The precision rule is decided here only from the run's first
    // iteration; later shards keep block sums for the merge to decide.
    let precision = plan.precision().filter(|_| start == 0);
    let pool = if threads > 1 {
        Some(crate::pool::pool(threads).map_err(|reason| SimulationError::ThreadPool { reason })?)
    } else {
        None
    };
    let pool = pool.as_deref();

    // Exact mode: blocks write straight into the final columns (zeroed lazily
    // by the allocator, so their pages are first touched by the workers).
    // Bounded mode: each wave writes into a reusable buffer, and the accepted
    // blocks are then counted into the histograms.
    let wave_blocks = WAVE_BLOCKS.min(last_block - first_block) as usize;
    let mut columns: Vec<Vec<f64>> = if plan.exact {
        (0..metrics).map(|_| vec![0.0; len]).collect()
    } else {
        (0..metrics)
            .map(|_| vec![0.0; wave_blocks * BLOCK_SIZE as usize])
            .collect()
    };
    let mut b = first_block;
    let mut written = 0usize; // iterations folded so far (exact mode offset)
    // The one clock the engine reads: the monotonic one, and only to
    // enforce timeoutSeconds. It decides whether a report is returned,
    // never what it says.
    let deadline = plan.config.timeout_seconds.map(|t| {
        (
            t,
            std::time::Instant::now() + std::time::Duration::from_secs(t),
        )
    });
    while b < last_block {
        if let Some((seconds, at)) = deadline
            && std::time::Instant::now() >= at
        {
            return Err(SimulationError::Timeout {
                seconds,
                iterations_done: b * BLOCK_SIZE - start,
            });
        }
        if control.cancelled() {
            return Err(SimulationError::Cancelled {
                iterations_done: b * BLOCK_SIZE - start,
            });
        }
        let wave_end = (b + WAVE_BLOCKS).min(last_block);
        let offset = if plan.exact { written } else { 0 };
        let per_block = split_columns(&mut columns, offset, (wave_end - b) as usize);
        let summaries = on_pool(pool, || {
            let work = |(k, mut cols): (usize, Vec<&mut [f64]>)| {
                run_block(plan, &centers, b + k as u64, &mut cols)
            };
            match pool {
                Some(_) => per_block.into_par_iter().enumerate().map(work).collect(),
                None => per_block
                    .into_iter()
                    .enumerate()
                    .map(work)
                    .collect::<Vec<_>>(),
            }
        });
        // Fold in block order; stop at the first converged boundary.
        let mut accepted = 0usize;
        let mut stop = false;
        for s in &summaries {
            fold_summary(&mut acc, s);
            if let (Some(columns), Some(p)) = (&mut acc.block_sums, plan.precision()) {
                for (column, &(m, _)) in columns.iter_mut().zip(&p.targets) {
                    if let Some(b) = s.sums.get(m) {
                        column.push(*b);
                    }
                }
            }
            accepted += s.len;
            if s.converged_here
                || precision.is_some_and(|p| acc.run_end < end && p.met(&acc.moments))
            {
                stop = true;
                break;
            }
        }
        if let Some(hists) = &mut acc.histograms {
            count_into_histograms(hists, &columns, accepted, pool);
        }
        written += accepted;
        if stop {
            acc.terminated_early = true;
            // Converged: the run is done short of its range.
            control.report(end - start, end - start);
            break;
        }
        b = wave_end;
        control.report((b * BLOCK_SIZE).min(end) - start, end - start);
    }
    if plan.exact {
        for c in columns.iter_mut() {
            c.truncate(written);
            c.shrink_to_fit();
        }
        acc.samples = Some(columns);
    }
    Ok(acc)
}

/// Cut `count` consecutive blocks, starting at iteration `offset` of each
/// column, into per-block groups of column slices.
fn split_columns(columns: &mut [Vec<f64>], offset: usize, count: usize) -> Vec<Vec<&mut [f64]>> {
    let mut per_block: Vec<Vec<&mut [f64]>> = (0..count).map(|_| Vec::new()).collect();
    for column in columns.iter_mut() {
        let tail = column.get_mut(offset..).unwrap_or(&mut []);
        for (group, chunk) in per_block
            .iter_mut()
            .zip(tail.chunks_mut(BLOCK_SIZE as usize))
        {
            group.push(chunk);
        }
    }
    per_block
}

fn count_into_histograms(
    hists: &mut [Histogram],
    columns: &[Vec<f64>],
    accepted: usize,
    pool: Option<&rayon::ThreadPool>,
) {
    let count = |(h, c): (&mut Histogram, &Vec<f64>)| {
        c.get(..accepted)
            .unwrap_or(&[])
            .iter()
            .for_each(|x| h.add(*x));
    };
    on_pool(pool, || match pool {
        Some(_) => hists.par_iter_mut().zip(columns).for_each(count),
        None => hists.iter_mut().zip(columns).for_each(count),
    });
}

/// Run `f` inside the pool when there is one, else on this thread.
fn on_pool<T: Send>(pool: Option<&rayon::ThreadPool>, f: impl FnOnce() -> T + Send) -> T {
    match pool {
        Some(p) => p.install(f),
        None => f(),
    }
}

fn fold_summary(acc: &mut PartialResult, s: &BlockSummary) {
    for (m, sums) in acc.moments.iter_mut().zip(&s.sums) {
        m.add_sums(s.len as u64, sums);
    }
    acc.successes += s.successes;
    for (a, b) in acc.node_counters.iter_mut().zip(&s.counters) {
        a.add(b);
    }
    acc.tail.extend_from_slice(&s.tail);
    let cut = acc.tail.len().saturating_sub(TAIL);
    acc.tail.drain(..cut);
    acc.run_end += s.len as u64;
}

fn finish(
    plan: &Plan,
    mut acc: PartialResult,
    keep_samples: bool,
    threads: usize,
) -> Result<RunOutput, SimulationError> {
    let n = acc.run_end;
    let level = plan.config.confidence_level;
    let z = z_for_level(level);
    let percentiles: Vec<Vec<f64>> = match (&acc.samples, &acc.histograms) {
        (Some(samples), _) => {
            let select =
                |(s, m): (&Vec<f64>, &Moments)| exact_percentiles(s, &PERCENTILES, m.min, m.max);
            if threads > 1 {
                crate::pool::pool(threads)
                    .map_err(|reason| SimulationError::ThreadPool { reason })?
                    .install(|| samples.par_iter().zip(&acc.moments).map(select).collect())
            } else {
                samples.iter().zip(&acc.moments).map(select).collect()
            }
        }
        (None, Some(hists)) => hists
            .iter()
            .zip(&acc.moments)
            .map(|(h, m)| h.percentiles(&PERCENTILES, m.min, m.max))
            .collect(),
        (None, None) => Vec::new(),
    };
    let summaries: Vec<MetricSummary> = acc
        .moments
        .iter()
        .zip(&percentiles)
        .map(|(m, p)| summary(m, p, z, level))
        .collect();
    let mut it = summaries.into_iter();
    let mut next = || it.next().ok_or_else(|| internal("missing metric summary"));
    let readiness_score = next()?;
    let policy_pass_pct = next()?;
    let citation_coverage = next()?;
    let duplication_risk = next()?;
    let cost_estimate_usd = next()?;
    let technical_readiness = next()?;
    let workflow = match &plan.workflow {
        None => None,
        Some(w) => {
            let makespan_ms = next()?;
            let counters = w.counters_in_input_order(&acc.node_counters);
            Some(WorkflowSummary {
                successes: acc.successes,
                success_rate: acc.successes as f64 / n as f64,
                makespan_ms,
                nodes: w
                    .ids
                    .iter()
                    .zip(counters)
                    .map(|(id, c)| {
                        let attempts = (n - c.skipped.min(n)).saturating_add(c.retries);
                        let per_attempt = if attempts == 0 {
                            0.0
                        } else {
                            c.retries.saturating_add(c.failures) as f64 / attempts as f64
                        };
                        NodeSummary {
                            id: id.clone(),
                            failures: c.failures,
                            retries: c.retries,
                            skipped: c.skipped,
                            attempts,
                            failures_per_iteration: c.failures as f64 / n as f64,
                            failure_rate_per_attempt: per_attempt,
                        }
                    })
                    .collect(),
            })
        }
    };
    let (window_converged, last, prev) = convergence(&acc.tail, plan.config.convergence_threshold);
    let rule = plan.config.stopping_rule();
    let standing = plan
        .precision()
        .map(|p| p.standing(&acc.moments))
        .unwrap_or_default();
    let converged = match &plan.stop {
        Stop::Precision(p) => p.met(&acc.moments),
        Stop::Window(_) | Stop::Never => window_converged,
    };
    // The same formula as the interval's and the precision rule's.
    let readiness_half = acc
        .moments
        .first()
        .filter(|m| m.n > 0)
        .map_or(0.0, |m| z * m.std() / (m.n as f64).sqrt());
    let precision_targets: Vec<MetricPrecision> = standing
        .iter()
        .map(|&(m, target, achieved)| MetricPrecision {
            metric: PRECISION_METRICS.get(m).copied().unwrap_or("?").to_string(),
            target_half_width: target,
            achieved_half_width: achieved,
            met: achieved <= target,
        })
        .collect();
    let model_id = plan.model.id();
    let report = SimulationReport {
        model_id: model_id.into(),
        workspace_id: plan.workspace_id.clone(),
        risk_profile: plan.risk.as_str().into(),
        readiness_score,
        policy_pass_pct,
        citation_coverage,
        duplication_risk,
        cost_estimate_usd,
        technical_readiness,
        workflow,
        convergence_metrics: ConvergenceMetrics {
            converged,
            iterations_run: n,
            stability_threshold: plan.config.convergence_threshold,
            terminated_early: acc.terminated_early,
            last_window_mean: last,
            previous_window_mean: prev,
            stopping_rule: rule.map_or("none", |r| r.as_str()).into(),
            stopped_by: rule
                .filter(|_| acc.terminated_early)
                .map(|r| r.as_str().to_string()),
            achieved_half_width: readiness_half,
            target_half_width: precision_targets.first().map(|t| t.target_half_width),
            precision_targets,
            iterations_without_early_termination: plan.config.iterations,
        },
        reproducibility: Reproducibility {
            seed: plan.config.random_seed,
            iterations_requested: plan.config.iterations,
            iterations_run: n,
            rng_algorithm: RNG_ALGORITHM.into(),
            block_size: BLOCK_SIZE,
            model_id: model_id.into(),
            engine_version: ENGINE_VERSION.into(),
            rand_chacha_version: RAND_CHACHA_VERSION.into(),
            rand_distr_version: RAND_DISTR_VERSION.into(),
            confidence_level: level,
            percentile_mode: if plan.exact { "exact" } else { "bounded" }.into(),
            percentile_relative_error: if plan.exact {
                0.0
            } else {
                BOUNDED_RELATIVE_ERROR
            },
        },
    };
    if !report.is_finite() {
        // Validated inputs cannot get here; a forged partial could have.
        return Err(internal("a statistic is not finite"));
    }
    let kept = if keep_samples {
        acc.samples.take()
    } else {
        None
    };
    let samples = kept.map(|mut v| {
        let makespan_ms = if v.len() > MODEL_METRICS {
            v.pop()
        } else {
            None
        };
        let mut it = v.into_iter();
        let mut take = || it.next().unwrap_or_default();
        Samples {
            readiness_score: take(),
            policy_pass_pct: take(),
            citation_coverage: take(),
            duplication_risk: take(),
            cost_estimate_usd: take(),
            technical_readiness: take(),
            makespan_ms,
        }
    });
    Ok(RunOutput { report, samples })
}

fn summary(m: &Moments, p: &[f64], z: f64, level: f64) -> MetricSummary {
    let mean = m.mean();
    let std = m.std();
    let half = if m.n > 0 {
        z * std / (m.n as f64).sqrt()
    } else {
        0.0
    };
    let at = |i: usize| p.get(i).copied().unwrap_or(mean);
    MetricSummary {
        mean,
        std,
        min: m.min,
        max: m.max,
        percentiles: Percentiles {
            p5: at(0),
            p25: at(1),
            p50: at(2),
            p75: at(3),
            p95: at(4),
        },
        confidence: ConfidenceInterval {
            lower: mean - half,
            upper: mean + half,
            level,
        },
    }
}

fn internal(what: &str) -> SimulationError {
    SimulationError::Internal {
        message: what.to_string(),
    }
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
