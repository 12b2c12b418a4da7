//! The block runner: each block draws from its own ChaCha stream, waves of
//! blocks run on the pool, and their summaries are folded in block order.

use rand_core::SeedableRng;
use rayon::prelude::*;

use super::partial::PartialResult;
use super::{BLOCK_SIZE, BlockRng, RunControl, TAIL, WAVE_BLOCKS};
use crate::sim::SimulationError;
use crate::sim::input::SimulationRequest;
use crate::sim::model::{MODEL_METRICS, Plan, Stop};
use crate::sim::stats::{BlockSums, Histogram, Moments, convergence};
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

pub(super) fn run_range(
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
    // by the allocator, so their pages are first touched by the workers, and
    // advised for huge pages: a fault per 2 MiB, not per 4 KiB).
    // Bounded mode: each wave writes into a reusable buffer, and the accepted
    // blocks are then counted into the histograms.
    let wave_blocks = WAVE_BLOCKS.min(last_block - first_block) as usize;
    let mut columns: Vec<Vec<f64>> = if plan.exact {
        (0..metrics)
            .map(|_| crate::hugepages::zeroed_column(len))
            .collect()
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
    let count = |(h, c): (&mut Histogram, &Vec<f64>)| h.add_all(c.get(..accepted).unwrap_or(&[]));
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
