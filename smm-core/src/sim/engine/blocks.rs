//! The block runner: each block draws from its own ChaCha stream, waves of
//! blocks run on the pool, and their summaries are folded in block order.

use rand_core::SeedableRng;
use rayon::prelude::*;

use super::partial::PartialResult;
use super::{BLOCK_SIZE, BlockRng, RunControl, TAIL, WAVE_BLOCKS};
use crate::sim::SimulationError;
use crate::sim::input::SimulationRequest;
use crate::sim::keyed::PileCounts;
use crate::sim::model::{MODEL_METRICS, Plan, Stop};
use crate::sim::stats::{BlockSums, Histogram, Moments, Tally, convergence};
use crate::sim::workflow::{NodeCounters, Scratch};

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
    // Each metric's sums run alongside the model (in iteration order, as a
    // pass over the block afterwards would add them): their chains of
    // additions overlap the model's work instead of following it.
    let center = |m: usize| centers.get(m).copied().unwrap_or(0.0);
    let mut model_sums: [BlockSums; MODEL_METRICS] =
        std::array::from_fn(|m| BlockSums::new(center(m)));
    let mut makespan_sums = BlockSums::new(center(MODEL_METRICS));
    for j in 0..len {
        plan.iterate(first + j as u64, &mut rng, &mut values);
        for ((column, v), s) in out.iter_mut().zip(values).zip(&mut model_sums) {
            if let Some(slot) = column.get_mut(j) {
                *slot = v;
            }
            s.add(v);
        }
        if let Some(w) = &plan.workflow {
            let (ok, makespan) = w.run(&mut rng, &mut scratch, &mut counters);
            successes += u64::from(ok);
            if let Some(slot) = out.get_mut(MODEL_METRICS).and_then(|c| c.get_mut(j)) {
                *slot = makespan;
            }
            makespan_sums.add(makespan);
        }
    }
    let sums = model_sums
        .iter()
        .chain(plan.workflow.as_ref().map(|_| &makespan_sums))
        .map(BlockSums::finish)
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

/// How an exact-mode range keeps its values: as `f64` samples (for the
/// caller, or for a shard's partial result), or as 32-bit order keys for
/// [`crate::sim::keyed`] (half the memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    Values,
    Keys,
}

/// The keys of a keyed exact-mode range.
pub(super) struct KeyColumns {
    /// Per metric, a key per iteration folded.
    pub(super) keys: Vec<Vec<u32>>,
    /// Per metric, the piles of each folded block, in block order.
    pub(super) piles: Vec<Vec<PileCounts>>,
}

/// The columns a range writes into (none for a bounded run: its blocks are
/// counted into histograms by the workers that ran them).
enum Columns {
    Values(Vec<Vec<f64>>),
    Keys(Vec<Vec<u32>>),
    Counted,
}

/// One block's share of the columns.
enum BlockColumns<'a> {
    Values(Vec<&'a mut [f64]>),
    Keys(Vec<&'a mut [u32]>),
    Counted,
}

pub(super) fn run_range(
    plan: &Plan,
    req: &SimulationRequest,
    start: u64,
    end: u64,
    threads: usize,
    control: &RunControl,
) -> Result<PartialResult, SimulationError> {
    run_range_keeping(plan, req, start, end, threads, control, Keep::Values).map(|(p, _)| p)
}

/// [`run_range`], keeping an exact run's values as `keep` says (bounded
/// runs keep histograms either way). With [`Keep::Keys`], the partial result
/// holds no samples and the keys come back beside it.
pub(super) fn run_range_keeping(
    plan: &Plan,
    req: &SimulationRequest,
    start: u64,
    end: u64,
    threads: usize,
    control: &RunControl,
    keep: Keep,
) -> Result<(PartialResult, Option<KeyColumns>), SimulationError> {
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
    let pool = pool_for(threads)?;
    let pool = pool.as_deref();

    // Exact mode: blocks write straight into the final columns (zeroed lazily
    // by the allocator, so their pages are first touched by the workers, and
    // advised for huge pages: a fault per 2 MiB, not per 4 KiB), as values
    // or as keys.
    // Bounded mode: no columns; each block runs into its worker's
    // block-sized buffer and is counted from there (below).
    let keyed = plan.exact && keep == Keep::Keys;
    let mut columns = if keyed {
        Columns::Keys(
            (0..metrics)
                .map(|_| crate::hugepages::zeroed_keys(len))
                .collect(),
        )
    } else if plan.exact {
        Columns::Values(
            (0..metrics)
                .map(|_| crate::hugepages::zeroed_column(len))
                .collect(),
        )
    } else {
        Columns::Counted
    };
    // Bounded mode: each worker counts its blocks into histograms of its
    // own while their values are still in cache (a slot per pool thread;
    // any slot would be correct, counts being integers); the slots are
    // merged once at the end, and blocks past a stop are taken out again.
    let counted: Vec<std::sync::Mutex<Vec<Tally>>> = if plan.exact {
        Vec::new()
    } else {
        (0..pool.map_or(1, rayon::ThreadPool::current_num_threads))
            .map(|_| std::sync::Mutex::new((0..metrics).map(|_| Tally::default()).collect()))
            .collect()
    };
    let mut not_accepted: Vec<u64> = Vec::new();
    let mut piles: Vec<Vec<PileCounts>> = vec![Vec::new(); if keyed { metrics } else { 0 }];
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
        let count = (wave_end - b) as usize;
        let per_block: Vec<BlockColumns<'_>> = match &mut columns {
            Columns::Values(c) => split_columns(c, offset, count)
                .into_iter()
                .map(BlockColumns::Values)
                .collect(),
            Columns::Keys(c) => split_columns(c, offset, count)
                .into_iter()
                .map(BlockColumns::Keys)
                .collect(),
            Columns::Counted => (0..count).map(|_| BlockColumns::Counted).collect(),
        };
        let summaries: Vec<(BlockSummary, Vec<PileCounts>)> = on_pool(pool, || {
            // A keyed or counted block runs into a block-sized buffer of
            // values first; each worker reuses one.
            let buffer = || -> Vec<Vec<f64>> {
                if keyed || !plan.exact {
                    vec![vec![0.0; BLOCK_SIZE as usize]; metrics]
                } else {
                    Vec::new()
                }
            };
            let work = |local: &mut Vec<Vec<f64>>, (k, cols): (usize, BlockColumns<'_>)| {
                let block = b + k as u64;
                match cols {
                    BlockColumns::Values(mut cols) => {
                        (run_block(plan, &centers, block, &mut cols), Vec::new())
                    }
                    BlockColumns::Keys(mut cols) => {
                        run_block_keyed(plan, &centers, block, local, &mut cols)
                    }
                    BlockColumns::Counted => (
                        run_block_counted(plan, &centers, block, local, &counted),
                        Vec::new(),
                    ),
                }
            };
            match pool {
                Some(_) => per_block
                    .into_par_iter()
                    .enumerate()
                    .map_init(buffer, work)
                    .collect(),
                None => {
                    let mut local = buffer();
                    per_block
                        .into_iter()
                        .enumerate()
                        .map(|item| work(&mut local, item))
                        .collect::<Vec<_>>()
                }
            }
        });
        // Fold in block order; stop at the first converged boundary.
        let mut accepted = 0usize;
        let mut stop = false;
        for (i, (s, block_piles)) in summaries.iter().enumerate() {
            fold_summary(&mut acc, s);
            if let (Some(columns), Some(p)) = (&mut acc.block_sums, plan.precision()) {
                for (column, &(m, _)) in columns.iter_mut().zip(&p.targets) {
                    if let Some(b) = s.sums.get(m) {
                        column.push(*b);
                    }
                }
            }
            for (column, p) in piles.iter_mut().zip(block_piles) {
                column.push(*p);
            }
            accepted += s.len;
            if s.converged_here
                || precision.is_some_and(|p| acc.run_end < end && p.met(&acc.moments))
            {
                stop = true;
                // The wave's later blocks were counted by their workers.
                not_accepted.extend((b + i as u64 + 1)..wave_end);
                break;
            }
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
    if let Some(hists) = &mut acc.histograms {
        for slot in counted {
            let slot = slot.into_inner().unwrap_or_else(|e| e.into_inner());
            for (h, c) in hists.iter_mut().zip(slot) {
                h.merge(&c.into_histogram());
            }
        }
        for block in not_accepted {
            for (h, values) in hists.iter_mut().zip(recompute_block(plan, &centers, block)) {
                h.remove_all(&values);
            }
        }
    }
    let keys = match columns {
        Columns::Values(mut columns) if plan.exact => {
            for c in columns.iter_mut() {
                c.truncate(written);
                c.shrink_to_fit();
            }
            acc.samples = Some(columns);
            None
        }
        Columns::Values(_) | Columns::Counted => None,
        Columns::Keys(mut keys) => {
            for c in keys.iter_mut() {
                c.truncate(written);
            }
            Some(KeyColumns { keys, piles })
        }
    };
    Ok((acc, keys))
}

/// [`run_block`] into the block-sized buffer `local` (a column per metric).
fn run_block_into(
    plan: &Plan,
    centers: &[f64],
    block: u64,
    local: &mut [Vec<f64>],
) -> BlockSummary {
    let mut views: Vec<&mut [f64]> = local.iter_mut().map(Vec::as_mut_slice).collect();
    run_block(plan, centers, block, &mut views)
}

/// [`run_block`] into the block-sized buffer `local` (a column per metric),
/// keeping each value as its key in `out` and returning the block's piles
/// beside its summary.
fn run_block_keyed(
    plan: &Plan,
    centers: &[f64],
    block: u64,
    local: &mut [Vec<f64>],
    out: &mut [&mut [u32]],
) -> (BlockSummary, Vec<PileCounts>) {
    let summary = run_block_into(plan, centers, block, local);
    let piles = local
        .iter()
        .zip(out.iter_mut())
        .zip(&summary.sums)
        .map(|((values, keys), &[_, _, min, max])| {
            PileCounts::keys_of(values.get(..summary.len).unwrap_or(&[]), keys, min, max)
        })
        .collect();
    (summary, piles)
}

/// [`run_block`] into the block-sized buffer `local` (a column per metric),
/// counting its values into this worker's slot of `counted` (a bounded
/// run's histograms, a slot per pool thread).
fn run_block_counted(
    plan: &Plan,
    centers: &[f64],
    block: u64,
    local: &mut [Vec<f64>],
    counted: &[std::sync::Mutex<Vec<Tally>>],
) -> BlockSummary {
    let summary = run_block_into(plan, centers, block, local);
    let slot = rayon::current_thread_index()
        .and_then(|i| counted.get(i))
        .or(counted.first());
    if let Some(slot) = slot {
        let mut hists = slot.lock().unwrap_or_else(|e| e.into_inner());
        for (h, values) in hists.iter_mut().zip(local.iter()) {
            h.add_all(values.get(..summary.len).unwrap_or(&[]));
        }
    }
    summary
}

/// Recompute block `block` of the run: its values, per metric.
pub(super) fn recompute_block(plan: &Plan, centers: &[f64], block: u64) -> Vec<Vec<f64>> {
    let mut local: Vec<Vec<f64>> = (0..plan.metric_count())
        .map(|_| vec![0.0; BLOCK_SIZE as usize])
        .collect();
    let s = run_block_into(plan, centers, block, &mut local);
    for c in local.iter_mut() {
        c.truncate(s.len);
    }
    local
}

/// Cut `count` consecutive blocks, starting at iteration `offset` of each
/// column, into per-block groups of column slices.
fn split_columns<T>(columns: &mut [Vec<T>], offset: usize, count: usize) -> Vec<Vec<&mut [T]>> {
    let mut per_block: Vec<Vec<&mut [T]>> = (0..count).map(|_| Vec::new()).collect();
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

/// The shared pool of `threads` workers, or none for one thread (the work
/// then stays on the caller's thread).
pub(super) fn pool_for(
    threads: usize,
) -> Result<Option<std::sync::Arc<rayon::ThreadPool>>, SimulationError> {
    if threads > 1 {
        crate::pool::pool(threads)
            .map(Some)
            .map_err(|reason| SimulationError::ThreadPool { reason })
    } else {
        Ok(None)
    }
}

/// Run `f` inside the pool when there is one, else on this thread.
pub(super) fn on_pool<T: Send>(
    pool: Option<&rayon::ThreadPool>,
    f: impl FnOnce() -> T + Send,
) -> T {
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
