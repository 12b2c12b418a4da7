//! Exact percentiles from 32-bit order keys.
//!
//! An exact-mode run that returns no samples does not need to keep every
//! value as an `f64`: it keeps, per iteration and metric, a 32-bit key that
//! preserves order ([`key32`]: the largest `f32` not above the value, as an
//! order key). That halves the memory a run writes, zeroes and reads back.
//! The keys alone locate each wanted rank to the few iterations whose values
//! share its key (a value's key is 2^-24 of it wide), and those few values
//! are then recomputed exactly: a block of iterations is a pure function of
//! the seed and its index, so re-running the blocks that hold them gives
//! them back bit for bit. The answer is the same as [`exact_percentiles`]
//! over the `f64` values, by construction and by the tests below.
//!
//! Values equal to the run's minimum or maximum (clamped outputs pile up
//! there, often at values an `f32` cannot hold) are counted per block as
//! the block runs ([`PileCounts`]), so a rank inside a pile needs nothing
//! recomputed.
//!
//! [`exact_percentiles`]: super::stats::exact_percentiles

use super::stats::{BucketSet, interpolate, locate_ranks, order_key, type7_ranks};

/// The order key of the largest `f32` not above `x` (in the total order, so
/// `-0.0` sits below `+0.0`): `a <= b` implies `key32(a) <= key32(b)`.
///
/// Values beyond the `f32` range share the keys of its ends.
#[inline]
pub(crate) fn key32(x: f64) -> u32 {
    let f = x as f32; // rounds to nearest
    let b = f.to_bits();
    // The order key of `f`, without a branch: a negative's bits flipped,
    // a positive's sign bit set.
    let k = b ^ ((((b as i32) >> 31) as u32) | (1 << 31));
    // One step down in the order when rounding went up. It never wraps:
    // rounding up means `f` is above `x`, so `f` is not the lowest key.
    k.wrapping_sub(u32::from(f64::from(f) > x))
}

/// A block's values equal to its own minimum and maximum (in the total
/// order: the values whose order key is at or below the minimum's, at or
/// above the maximum's), as the `f64` path of the exact percentiles counts
/// them for the whole run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PileCounts {
    pub(crate) min: f64,
    pub(crate) at_min: u32,
    pub(crate) max: f64,
    pub(crate) at_max: u32,
}

impl PileCounts {
    /// Write the key of each of `values` into `keys`, and count the piles
    /// of `values`, whose minimum and maximum are `min` and `max` (as the
    /// block's sums found them). One branch-free pass over a block.
    pub(crate) fn keys_of(values: &[f64], keys: &mut [u32], min: f64, max: f64) -> Self {
        for (key, &x) in keys.iter_mut().zip(values) {
            *key = key32(x);
        }
        let (mut at_min, mut at_max) = (0u32, 0u32);
        if min != 0.0 && max != 0.0 {
            // Away from zero, a value is at or below the minimum in the
            // total order exactly when it equals it (the minimum is the
            // least value), and equal floats have equal bits.
            for &x in values {
                at_min = at_min.wrapping_add(u32::from(x == min));
                at_max = at_max.wrapping_add(u32::from(x == max));
            }
        } else {
            let (kmin, kmax) = (order_key(min), order_key(max));
            for &x in values {
                let k = order_key(x);
                at_min = at_min.wrapping_add(u32::from(k <= kmin));
                at_max = at_max.wrapping_add(u32::from(k >= kmax));
            }
        }
        PileCounts {
            min,
            at_min,
            max,
            at_max,
        }
    }

    /// The piles of `values` alone.
    #[cfg(test)]
    pub(crate) fn of(values: &[f64], min: f64, max: f64) -> Self {
        Self::keys_of(values, &mut vec![0; values.len()], min, max)
    }
}

/// The run's piles at its minimum `min` and maximum `max` from its blocks'
/// piles, or `None` when a block's extreme equals the run's numerically but
/// not bitwise (a `-0.0` against a `+0.0`), where the blocks' counts cannot
/// say which values the run's pile holds.
pub(crate) fn run_piles(
    blocks: impl IntoIterator<Item = PileCounts>,
    min: f64,
    max: f64,
) -> Option<(usize, usize)> {
    let (mut at_min, mut at_max) = (0usize, 0usize);
    for p in blocks {
        if p.min.to_bits() == min.to_bits() {
            at_min += p.at_min as usize;
        } else if p.min == min {
            return None;
        }
        if p.max.to_bits() == max.to_bits() {
            at_max += p.at_max as usize;
        } else if p.max == max {
            return None;
        }
    }
    Some((at_min, at_max))
}

/// The largest share of a metric's values that a selection collects (and
/// may have recomputed) before it gives up for `f64` columns. Spread values
/// need about one in ten thousand.
pub(crate) const MAX_CANDIDATE_SHARE: f64 = 1.0 / 32.0;

/// Where a wanted rank's value comes from.
#[derive(Debug, Clone, Copy)]
enum Pick {
    Value(f64),
    /// The `offset`-th smallest value of group `group`.
    InGroup {
        group: usize,
        offset: usize,
    },
}

/// The exact type-7 percentiles of values known by their keys, in two
/// steps: [`KeyedSelection::new`] reads the keys and names the iterations
/// whose values it still needs ([`KeyedSelection::groups`]: each group is
/// every iteration whose key is one wanted key); [`KeyedSelection::finish`]
/// takes those values and answers.
#[derive(Debug, Clone)]
pub(crate) struct KeyedSelection {
    rank_pairs: Vec<(usize, usize, f64)>,
    picks: Vec<(usize, Pick)>,
    groups: Vec<Vec<usize>>,
    constant: Option<f64>,
}

impl KeyedSelection {
    /// Select the ranks of `probs` among `keys` (one per value, in iteration
    /// order), given the values' minimum and maximum and how many values
    /// equal each ([`run_piles`]).
    ///
    /// `None` when the wanted ranks' buckets hold more than
    /// [`MAX_CANDIDATE_SHARE`] of the values: values crowded into a few keys
    /// (a metric whose spread is below an `f32`'s resolution, or below its
    /// range), where recomputing them would cost more than keeping `f64`
    /// columns.
    pub(crate) fn new(
        keys: &[u32],
        probs: &[f64],
        min: f64,
        max: f64,
        at_min: usize,
        at_max: usize,
    ) -> Option<Self> {
        let n = keys.len();
        let rank_pairs = type7_ranks(n, probs);
        let mut sel = KeyedSelection {
            rank_pairs,
            picks: Vec::new(),
            groups: Vec::new(),
            constant: None,
        };
        if n == 0 {
            sel.constant = Some(0.0);
            return Some(sel);
        }
        if min == max {
            sel.constant = Some(min);
            return Some(sel);
        }
        let top = n.saturating_sub(at_max);
        let mut inner: Vec<usize> = Vec::new();
        for &(a, b, _) in &sel.rank_pairs {
            for r in [a, b] {
                if r < at_min {
                    sel.picks.push((r, Pick::Value(min)));
                } else if r >= top {
                    sel.picks.push((r, Pick::Value(max)));
                } else {
                    inner.push(r);
                }
            }
        }
        inner.sort_unstable();
        inner.dedup();
        if inner.is_empty() {
            return Some(sel);
        }
        // First pass: counts per bucket of keys (at most 65,536 buckets
        // between the extremes' keys, a table that stays in cache).
        // Every key lies in [kmin, kmax]: a zero extreme widens its end to
        // both zeros (a `-0.0` may sit beside a `+0.0` minimum).
        let kmin = if min == 0.0 { key32(-0.0) } else { key32(min) };
        let kmax = if max == 0.0 { key32(0.0) } else { key32(max) };
        let span = kmax.saturating_sub(kmin);
        let shift = (32 - span.leading_zeros()).saturating_sub(16);
        let last = (span >> shift) as usize;
        let bucket_of = |k: u32| ((k.wrapping_sub(kmin) >> shift) as usize).min(last);
        let mut counts = vec![0u64; last + 1];
        for chunk in keys.chunks(u32::MAX as usize) {
            let mut local = vec![0u32; last + 1];
            for &k in chunk {
                if let Some(c) = local.get_mut(bucket_of(k)) {
                    *c = c.wrapping_add(1);
                }
            }
            for (total, c) in counts.iter_mut().zip(local) {
                *total += u64::from(c);
            }
        }
        // Each inner rank's bucket and its offset in the bucket.
        let located = locate_ranks(&counts, &inner);
        // Second pass: the keys (with their iterations) of the wanted buckets.
        let mut wanted: Vec<usize> = located.iter().map(|&(_, b, _)| b).collect();
        wanted.dedup();
        let crowd: u64 = wanted.iter().filter_map(|b| counts.get(*b)).copied().sum();
        if crowd as f64 > MAX_CANDIDATE_SHARE * n as f64 + 4096.0 {
            return None;
        }
        let bits = BucketSet::new(last, &wanted);
        let mut candidates: Vec<Vec<(u32, usize)>> = vec![Vec::new(); wanted.len()];
        for (i, &k) in keys.iter().enumerate() {
            let b = bucket_of(k);
            if bits.contains(b)
                && let Some(c) = wanted
                    .iter()
                    .position(|w| *w == b)
                    .and_then(|j| candidates.get_mut(j))
            {
                c.push((k, i));
            }
        }
        for c in candidates.iter_mut() {
            c.sort_unstable();
        }
        // Each inner rank: the group of its key, and its place in the group.
        let mut group_keys: Vec<u32> = Vec::new();
        for (r, b, off) in located {
            let Some(c) = wanted
                .iter()
                .position(|w| *w == b)
                .and_then(|j| candidates.get(j))
            else {
                continue;
            };
            let Some(&(key, _)) = c.get(off) else {
                continue;
            };
            let start = c.partition_point(|(k, _)| *k < key);
            let group = match group_keys.iter().position(|k| *k == key) {
                Some(g) => g,
                None => {
                    let end = c.partition_point(|(k, _)| *k <= key);
                    group_keys.push(key);
                    sel.groups.push(
                        c.get(start..end)
                            .unwrap_or(&[])
                            .iter()
                            .map(|&(_, i)| i)
                            .collect(),
                    );
                    sel.groups.len() - 1
                }
            };
            sel.picks.push((
                r,
                Pick::InGroup {
                    group,
                    offset: off - start,
                },
            ));
        }
        Some(sel)
    }

    /// The iterations (indices into the keys) whose values
    /// [`KeyedSelection::finish`] needs, group by group.
    pub(crate) fn groups(&self) -> &[Vec<usize>] {
        &self.groups
    }

    /// The percentiles, given `values[g][j]`: the value at `groups()[g][j]`.
    pub(crate) fn finish(&self, mut values: Vec<Vec<f64>>) -> Vec<f64> {
        if let Some(c) = self.constant {
            return vec![c; self.rank_pairs.len()];
        }
        for v in values.iter_mut() {
            v.sort_unstable_by(f64::total_cmp);
        }
        let value_of = |rank: usize| -> f64 {
            let pick = self.picks.iter().find(|(r, _)| *r == rank).map(|(_, p)| *p);
            match pick {
                Some(Pick::Value(v)) => v,
                Some(Pick::InGroup { group, offset }) => values
                    .get(group)
                    .and_then(|g| g.get(offset))
                    .copied()
                    .unwrap_or(f64::NAN),
                None => f64::NAN,
            }
        };
        self.rank_pairs
            .iter()
            .map(|&(lo, hi, frac)| interpolate(value_of(lo), value_of(hi), frac))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::stats::exact_percentiles;
    use super::*;
    use rand::{RngExt, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const PROBS: [f64; 7] = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];

    fn keyed(data: &[f64]) -> Vec<f64> {
        let min = data.iter().copied().fold(f64::INFINITY, f64::min);
        let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let piles = data.chunks(7).map(|c| {
            let bmin = c.iter().copied().fold(f64::INFINITY, f64::min);
            let bmax = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            PileCounts::of(c, bmin, bmax)
        });
        let Some((at_min, at_max)) = run_piles(piles, min, max) else {
            // Only a zero of each sign at an extreme makes the piles unknown
            // (the engine then runs with f64 columns).
            let zero_end = (min == 0.0 || max == 0.0)
                && data.iter().any(|x| x.to_bits() == 0)
                && data.iter().any(|x| x.to_bits() == (-0.0f64).to_bits());
            assert!(zero_end, "piles unknown without a signed-zero tie");
            return reference(data);
        };
        let keys: Vec<u32> = data.iter().map(|x| key32(*x)).collect();
        let Some(sel) = KeyedSelection::new(&keys, &PROBS, min, max, at_min, at_max) else {
            // Values crowded into a few keys: the engine keeps f64 columns.
            return reference(data);
        };
        let values = sel
            .groups()
            .iter()
            .map(|g| g.iter().map(|i| data[*i]).collect())
            .collect();
        sel.finish(values)
    }

    fn reference(data: &[f64]) -> Vec<f64> {
        let min = data.iter().copied().fold(f64::INFINITY, f64::min);
        let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        exact_percentiles(data, &PROBS, min, max)
    }

    fn same(data: &[f64]) {
        let (a, b) = (keyed(data), reference(data));
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&a),
            bits(&b),
            "{} values: keyed {a:?} f64 {b:?}",
            data.len()
        );
    }

    #[test]
    fn keys_keep_the_total_order() {
        let edges = [
            f64::MIN,
            -1e300,
            -(f32::MAX as f64) * 1.5,
            -(f32::MAX as f64),
            -1.0,
            -0.1,
            -1e-50,
            -0.0,
            0.0,
            1e-50,
            f32::MIN_POSITIVE as f64 / 3.0,
            0.1,
            0.4,
            0.5,
            0.6,
            0.7,
            1.0 - 1e-17,
            1.0,
            1.0 + f64::EPSILON,
            f32::MAX as f64,
            1e300,
            f64::MAX,
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut xs: Vec<f64> = edges.to_vec();
        for _ in 0..200_000 {
            let x: f64 = match rng.random_range(0..4) {
                0 => rng.random_range(-2.0..2.0),
                1 => f64::from_bits(rng.random::<u64>()),
                2 => {
                    let e = edges[rng.random_range(0..edges.len())];
                    f64::from_bits(e.to_bits().wrapping_add(rng.random_range(0..5)))
                }
                _ => rng.random_range(0.0..1.0) as f32 as f64,
            };
            if x.is_finite() {
                xs.push(x);
            }
        }
        xs.sort_unstable_by(f64::total_cmp);
        for w in xs.windows(2) {
            assert!(key32(w[0]) <= key32(w[1]), "{} {}", w[0], w[1]);
        }
        // Distinct f32 values keep distinct keys.
        assert!(key32(0.5) < key32(0.5f32.next_up() as f64));
        assert!(key32(-0.0) < key32(0.0));
    }

    #[test]
    fn keyed_percentiles_agree_with_the_f64_selection() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in [1usize, 2, 3, 5, 8, 100, 1000, 20_000] {
            // Spread values, dense values, values in a few f32 ulps.
            let spread: Vec<f64> = (0..n).map(|_| rng.random_range(-3.0..5.0)).collect();
            same(&spread);
            let dense: Vec<f64> = (0..n)
                .map(|_| 0.7 + rng.random_range(0.0..1.0) * 1e-6)
                .collect();
            same(&dense);
            // Clamped outputs piled at bounds no f32 can hold, at both ends.
            let clamped: Vec<f64> = (0..n)
                .map(|_| rng.random_range(0.3..1.2f64).clamp(0.4, 0.9))
                .collect();
            same(&clamped);
            // A pile at one end only, and values just above it.
            let near: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..4) {
                    0 => 0.6,
                    1 => f64::from_bits(0.6f64.to_bits() + rng.random_range(1..4)),
                    _ => rng.random_range(0.6..0.61),
                })
                .collect();
            same(&near);
            // Ties everywhere: a few distinct values.
            let ties: Vec<f64> = (0..n)
                .map(|_| [0.1, 0.2, 0.2000000001, 0.3][rng.random_range(0..4)])
                .collect();
            same(&ties);
            // Negatives, zeros of both signs (not at the extremes), huge values.
            let mixed: Vec<f64> = (0..n)
                .map(|_| match rng.random_range(0..6) {
                    0 => -0.0,
                    1 => 0.0,
                    2 => -1e300,
                    3 => 1e300,
                    _ => rng.random_range(-1.0..1.0),
                })
                .collect();
            same(&mixed);
        }
        // Zeros of both signs at the minimum, in every block alike.
        let zeros: Vec<f64> = [0.0, -0.0, 0.3, 0.1, 0.2, -0.0, 0.0].repeat(40);
        let bmin = zeros[..7].iter().copied().fold(f64::INFINITY, f64::min);
        let block = PileCounts::of(&zeros[..7], bmin, 0.3);
        // Every block alike: the run's minimum is the block's (folded
        // over the whole run, `f64::min`'s pick among zeros of both signs
        // is the optimizer's: a release build picked the other one).
        let run_min = bmin;
        assert!(
            run_piles([block], run_min, 0.3).is_some(),
            "the keyed path is taken"
        );
        same(&zeros);
        let zeros: Vec<f64> = [-0.0, 0.0, -0.3, -0.1, -0.2, 0.0, -0.0].repeat(40);
        same(&zeros);
        same(&[2.5; 17]);
        same(&[f64::MAX, f64::MIN]);
    }

    #[test]
    fn values_crowded_into_a_few_keys_are_refused() {
        // A spread below an f32's resolution, and one below its range.
        for scale in [1e-9, 1e-50] {
            let data: Vec<f64> = (0..50_000)
                .map(|i| (1.0 + (i % 977) as f64 * 1e-12) * scale)
                .collect();
            let min = data.iter().copied().fold(f64::INFINITY, f64::min);
            let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let keys: Vec<u32> = data.iter().map(|x| key32(*x)).collect();
            let (at_min, at_max) = (52, 51);
            assert!(
                KeyedSelection::new(&keys, &PROBS, min, max, at_min, at_max).is_none(),
                "{scale}"
            );
        }
    }

    #[test]
    fn signed_zero_at_an_extreme_is_reported_not_guessed() {
        let a = PileCounts::of(&[-0.0, 1.0], -0.0, 1.0);
        let b = PileCounts::of(&[0.0, 1.0], 0.0, 1.0);
        assert_eq!(run_piles([a, b], -0.0, 1.0), None);
        assert_eq!(run_piles([a, a], -0.0, 1.0), Some((2, 2)));
    }

    #[test]
    fn ranks_inside_a_pile_need_no_values() {
        let data: Vec<f64> = (0..10_000)
            .map(|i| {
                if i % 3 == 0 {
                    0.4
                } else {
                    0.4 + 1e-3 * (i as f64)
                }
            })
            .collect();
        let max = data.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let keys: Vec<u32> = data.iter().map(|x| key32(*x)).collect();
        let sel = KeyedSelection::new(&keys, &[0.05, 0.25], 0.4, max, 3334, 1).unwrap();
        assert!(sel.groups().is_empty(), "{:?}", sel.groups().len());
        assert_eq!(sel.finish(Vec::new()), vec![0.4, 0.4]);
    }
}
