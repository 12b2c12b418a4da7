//! Exact percentiles of a keyed run ([`Keep::Keys`]): each metric's
//! selection reads its keys, then the few values the selections still need
//! are recomputed, one block at a time, each block once for every metric.
//!
//! [`Keep::Keys`]: super::blocks::Keep::Keys

use rayon::prelude::*;

use super::BLOCK_SIZE;
use super::blocks::{KeyColumns, on_pool, recompute_block};
use super::partial::PartialResult;
use crate::sim::keyed::{KeyedSelection, run_piles};
use crate::sim::model::Plan;
use crate::sim::stats::PERCENTILES;

/// One value a selection needs: its block, metric, group, place in the
/// group, and iteration within the block.
type Request = (u64, usize, usize, usize, usize);

/// Per metric, the exact percentiles of the keyed run `acc`; `None` when a
/// metric's piles cannot be told from its blocks' (a zero of each sign at
/// an extreme) or its values crowd into too few keys (see
/// [`KeyedSelection::new`]), and the run must be taken with `f64` columns
/// instead.
pub(super) fn keyed_percentiles(
    plan: &Plan,
    acc: &PartialResult,
    keys: &KeyColumns,
    pool: Option<&rayon::ThreadPool>,
) -> Option<Vec<Vec<f64>>> {
    let mut inputs = Vec::with_capacity(keys.keys.len());
    for ((column, piles), m) in keys.keys.iter().zip(&keys.piles).zip(&acc.moments) {
        let (at_min, at_max) = run_piles(piles.iter().copied(), m.min, m.max)?;
        inputs.push((column, m.min, m.max, at_min, at_max));
    }
    let select = |&(column, min, max, at_min, at_max): &(&Vec<u32>, f64, f64, usize, usize)| {
        KeyedSelection::new(column, &PERCENTILES, min, max, at_min, at_max)
    };
    let selections: Option<Vec<KeyedSelection>> = on_pool(pool, || match pool {
        Some(_) => inputs.par_iter().map(select).collect(),
        None => inputs.iter().map(select).collect(),
    });
    let selections = selections?;

    let mut requests: Vec<Request> = Vec::new();
    for (m, sel) in selections.iter().enumerate() {
        for (g, group) in sel.groups().iter().enumerate() {
            for (j, &i) in group.iter().enumerate() {
                let iteration = acc.start + i as u64;
                requests.push((
                    iteration / BLOCK_SIZE,
                    m,
                    g,
                    j,
                    (iteration % BLOCK_SIZE) as usize,
                ));
            }
        }
    }
    requests.sort_unstable_by_key(|r| r.0);
    let per_block: Vec<&[Request]> = requests.chunk_by(|a, b| a.0 == b.0).collect();
    let centers = plan.centers();
    let recompute = |reqs: &&[Request]| -> Vec<(usize, usize, usize, f64)> {
        let Some(&(block, ..)) = reqs.first() else {
            return Vec::new();
        };
        let values = recompute_block(plan, &centers, block);
        reqs.iter()
            .map(|&(_, m, g, j, at)| {
                let v = values
                    .get(m)
                    .and_then(|c| c.get(at))
                    .copied()
                    .unwrap_or(f64::NAN);
                (m, g, j, v)
            })
            .collect()
    };
    let found: Vec<Vec<(usize, usize, usize, f64)>> = on_pool(pool, || match pool {
        Some(_) => per_block.par_iter().map(recompute).collect(),
        None => per_block.iter().map(recompute).collect(),
    });

    let mut values: Vec<Vec<Vec<f64>>> = selections
        .iter()
        .map(|s| s.groups().iter().map(|g| vec![f64::NAN; g.len()]).collect())
        .collect();
    for (m, g, j, v) in found.into_iter().flatten() {
        if let Some(slot) = values
            .get_mut(m)
            .and_then(|groups| groups.get_mut(g))
            .and_then(|group| group.get_mut(j))
        {
            *slot = v;
        }
    }
    Some(
        selections
            .iter()
            .zip(values)
            .map(|(s, v)| s.finish(v))
            .collect(),
    )
}
