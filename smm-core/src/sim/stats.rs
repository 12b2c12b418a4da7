//! Statistics: order-independent moments, exact type-7 percentiles, the
//! bounded-memory histogram, confidence intervals and convergence.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, Normal};

use super::bounds::{at_least, at_most};
use super::exact_sum::ExactSum;

/// The percentiles every summary reports.
pub(crate) const PERCENTILES: [f64; 5] = [0.05, 0.25, 0.50, 0.75, 0.95];

/// Relative error bound of a percentile in bounded-memory mode: each order
/// statistic is replaced by the middle of a histogram bucket whose width is
/// 2^-14 of its lower edge, so it is off by at most 2^-15 of its value
/// (interpolating two such values keeps the bound).
pub const BOUNDED_RELATIVE_ERROR: f64 = 1.0 / 32768.0;
/// Values of magnitude below this share one bucket in bounded-memory mode
/// (an absolute error of at most this much).
pub const BOUNDED_ABSOLUTE_ERROR: f64 = 1.0 / 1_099_511_627_776.0; // 2^-40

const SUB_BITS: u32 = 14;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Biased exponent of 2^-40.
const MIN_EXPONENT: u64 = 1023 - 40;

/// Moments of one metric, mergeable in any order with the same result.
///
/// Values are centred on a fixed reference `center` (the same for every
/// shard of a run) to keep the variance free of cancellation; per-block
/// sums are added into exact accumulators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Moments {
    pub n: u64,
    pub(crate) center: f64,
    sum: ExactSum,
    sum_sq: ExactSum,
    pub min: f64,
    pub max: f64,
}

impl Moments {
    pub(crate) fn new(center: f64) -> Self {
        Moments {
            n: 0,
            center,
            sum: ExactSum::default(),
            sum_sq: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Add one block's values (summed in order inside the block).
    #[cfg(test)]
    pub(crate) fn add_block(&mut self, values: &[f64]) {
        let sums = block_sums(values, self.center);
        self.add_sums(values.len() as u64, &sums);
    }

    /// Add a block summarized by [`BlockSums`] with this accumulator's center.
    pub(crate) fn add_sums(&mut self, n: u64, [s, s2, min, max]: &[f64; 4]) {
        self.sum.add(*s);
        self.sum_sq.add(*s2);
        self.min = at_most(*min, self.min);
        self.max = at_least(*max, self.max);
        self.n += n;
    }

    pub(crate) fn merge(&mut self, o: &Moments) {
        self.n += o.n;
        self.sum.merge(&o.sum);
        self.sum_sq.merge(&o.sum_sq);
        self.min = at_most(o.min, self.min);
        self.max = at_least(o.max, self.max);
    }

    /// Mean, clamped into [min, max] against rounding.
    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let m = self.center + self.sum.to_f64() / self.n as f64;
        m.clamp(self.min, self.max)
    }

    /// Unbiased standard deviation (0 for fewer than 2 samples).
    pub(crate) fn std(&self) -> f64 {
        if self.n < 2 || self.min == self.max {
            return 0.0;
        }
        let n = self.n as f64;
        let s = self.sum.to_f64();
        let var = (self.sum_sq.to_f64() - s * s / n) / (n - 1.0);
        if var > 0.0 { var.sqrt() } else { 0.0 }
    }
}

/// Sum and sum of squares of `x - center` (in order), min and max of a block.
#[cfg(test)]
pub(crate) fn block_sums(values: &[f64], center: f64) -> [f64; 4] {
    let mut sums = BlockSums::new(center);
    for &x in values {
        sums.add(x);
    }
    sums.finish()
}

/// A block's sums, added one value at a time as the block runs (the values
/// are summed in order, so the result is the same whether they are added as
/// they are made or read back afterwards).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockSums {
    center: f64,
    s: f64,
    s2: f64,
    min: f64,
    max: f64,
}

impl BlockSums {
    pub(crate) fn new(center: f64) -> Self {
        BlockSums {
            center,
            s: 0.0,
            s2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    #[inline(always)]
    pub(crate) fn add(&mut self, x: f64) {
        let d = x - self.center;
        self.s += d;
        self.s2 += d * d;
        self.min = at_most(x, self.min);
        self.max = at_least(x, self.max);
    }

    /// Sum and sum of squares of `x - center`, min and max.
    pub(crate) fn finish(&self) -> [f64; 4] {
        [self.s, self.s2, self.min, self.max]
    }
}

/// Order-preserving map of a finite `f64` to `u64`.
#[inline]
pub(crate) fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// Exact type-7 percentiles of `data` (finite values with the given min and
/// max), without reordering or copying it.
///
/// Two linear passes. The first counts the values equal to min and to max
/// (clamped outputs pile up there) and, per bucket of the order key (at most
/// 65,536 buckets between min and max, a 256 KiB table of counts that stays
/// in a core's cache), the values strictly between. The second collects
/// only the in-between values of the few buckets that hold a wanted rank,
/// which are then sorted.
pub(crate) fn exact_percentiles(data: &[f64], probs: &[f64], min: f64, max: f64) -> Vec<f64> {
    let n = data.len();
    if n == 0 {
        return vec![0.0; probs.len()];
    }
    let rank_pairs = type7_ranks(n, probs);
    if min == max {
        return vec![min; probs.len()];
    }
    let kmin = order_key(min);
    let kmax = order_key(max);
    let span = kmax.saturating_sub(kmin);
    let shift = (64 - span.leading_zeros()).saturating_sub(16);
    let last = (span >> shift) as usize;
    let bucket_of = |k: u64| ((k.wrapping_sub(kmin) >> shift) as usize).min(last);
    // Values at or past the ends (`at_min`, `at_max`) are not bucketed: with
    // the run's own min and max they are exactly the values equal to them.
    let mut counts = vec![0u64; last + 1];
    let (mut at_min, mut at_max) = (0usize, 0usize);
    for chunk in data.chunks(u32::MAX as usize) {
        let (a, b) = count_buckets(chunk, kmin, kmax, &bucket_of, &mut counts);
        at_min += a;
        at_max += b;
    }
    let top = n.saturating_sub(at_max);
    // Locate each wanted rank among the in-between values: its bucket and
    // its rank inside the bucket.
    let mut wanted: Vec<usize> = rank_pairs
        .iter()
        .flat_map(|(a, b, _)| [*a, *b])
        .filter(|r| *r >= at_min && *r < top)
        .map(|r| r - at_min)
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    let located = locate_ranks(&counts, &wanted); // (inner rank, bucket, offset)
    let mut wanted_buckets: Vec<usize> = located.iter().map(|(_, b, _)| *b).collect();
    wanted_buckets.dedup();
    let bits = BucketSet::new(last, &wanted_buckets);
    let mut candidates: Vec<Vec<f64>> = vec![Vec::new(); wanted_buckets.len()];
    if !wanted_buckets.is_empty() {
        for &x in data {
            let k = order_key(x);
            if k <= kmin || k >= kmax {
                continue;
            }
            let b = bucket_of(k);
            if bits.contains(b)
                && let Some(c) = wanted_buckets
                    .iter()
                    .position(|w| *w == b)
                    .and_then(|i| candidates.get_mut(i))
            {
                c.push(x);
            }
        }
        for c in candidates.iter_mut() {
            c.sort_unstable_by(f64::total_cmp);
        }
    }
    let value_of = |rank: usize| -> f64 {
        if rank < at_min {
            return min;
        }
        if rank >= top {
            return max;
        }
        let Some(&(_, b, off)) = located.iter().find(|(r, _, _)| *r == rank - at_min) else {
            return max;
        };
        wanted_buckets
            .iter()
            .position(|w| *w == b)
            .and_then(|i| candidates.get(i))
            .and_then(|c| c.get(off))
            .copied()
            .unwrap_or(max)
    };
    rank_pairs
        .iter()
        .map(|&(lo, hi, frac)| interpolate(value_of(lo), value_of(hi), frac))
        .collect()
}

/// Each of the ascending `ranks` located among buckets holding `counts`
/// values in order: (rank, its bucket, its offset in the bucket). Ranks past
/// the last bucket are left out.
// Inlined always, with `BucketSet`'s two methods: since the keyed and the
// f64 selections share them, a whole exact run was ~9% slower (1.14 ->
// 1.25 s for 1e7 on 2 threads, binaries alternated; BENCHMARKS.md), with
// `contains` already inlined; inlined always, it is as fast as the two
// hand-inlined copies were. Code generation, not understood further.
#[inline(always)]
pub(crate) fn locate_ranks(counts: &[u64], ranks: &[usize]) -> Vec<(usize, usize, usize)> {
    let mut located = Vec::with_capacity(ranks.len());
    let mut before = 0usize;
    let mut it = ranks.iter().peekable();
    for (b, c) in counts.iter().enumerate() {
        let c = *c as usize;
        while let Some(&&r) = it.peek() {
            if r < before + c {
                located.push((r, b, r - before));
                it.next();
            } else {
                break;
            }
        }
        before += c;
    }
    located
}

/// A set of bucket numbers up to `last`, as bits: at most 65,536 buckets
/// in 8 KiB, so a lookup per value stays in the first-level cache.
pub(crate) struct BucketSet(Vec<u64>);

impl BucketSet {
    #[inline(always)]
    pub(crate) fn new(last: usize, buckets: &[usize]) -> Self {
        let mut bits = vec![0u64; (last >> 6) + 1];
        for b in buckets {
            if let Some(word) = bits.get_mut(b >> 6) {
                *word |= 1 << (b & 63);
            }
        }
        BucketSet(bits)
    }

    #[inline(always)]
    pub(crate) fn contains(&self, b: usize) -> bool {
        self.0.get(b >> 6).is_some_and(|w| w >> (b & 63) & 1 == 1)
    }
}

/// The first pass of [`exact_percentiles`] over at most `u32::MAX` values:
/// adds to `counts`, per bucket, the values strictly between the order keys
/// `kmin` and `kmax`, and returns how many lie at or below `kmin` and at or
/// above `kmax`. The chunk's own counts are `u32` (a 256 KiB table stays in
/// a core's cache) and cannot overflow, so they add without checks.
fn count_buckets(
    chunk: &[f64],
    kmin: u64,
    kmax: u64,
    bucket_of: &impl Fn(u64) -> usize,
    counts: &mut [u64],
) -> (usize, usize) {
    let mut local = vec![0u32; counts.len()];
    let (mut at_min, mut at_max) = (0u32, 0u32);
    for &x in chunk {
        let k = order_key(x);
        let below = k <= kmin;
        let above = k >= kmax;
        at_min = at_min.wrapping_add(u32::from(below));
        at_max = at_max.wrapping_add(u32::from(above));
        if let Some(c) = local.get_mut(bucket_of(k)) {
            *c = c.wrapping_add(u32::from(!below && !above));
        }
    }
    for (total, c) in counts.iter_mut().zip(local) {
        *total += u64::from(c);
    }
    (at_min as usize, at_max as usize)
}

/// Type-7 order statistics of `n > 0` values for each probability: the
/// ranks below and above `(n - 1) p`, and the fraction between them.
pub(crate) fn type7_ranks(n: usize, probs: &[f64]) -> Vec<(usize, usize, f64)> {
    let last = n.saturating_sub(1);
    probs
        .iter()
        .map(|p| {
            let h = last as f64 * p;
            let lo = (h.floor() as usize).min(last);
            (lo, (lo + 1).min(last), h - lo as f64)
        })
        .collect()
}

pub(crate) fn interpolate(lo: f64, hi: f64, frac: f64) -> f64 {
    if frac <= 0.0 || lo == hi {
        return lo;
    }
    (lo + frac * (hi - lo)).clamp(lo.min(hi), lo.max(hi))
}

/// A log-linear histogram with fixed relative resolution: for each binary
/// exponent, 2^14 equal buckets. Memory depends on the span of the values'
/// exponents, never on how many values were added. Counts are integers, so
/// histograms merge in any order with the same result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "Vec<BucketCount>", try_from = "Vec<BucketCount>")]
pub(crate) struct Histogram {
    counts: Pages<u64>,
}

/// A histogram's buckets, counted in counters of type `C`.
#[derive(Debug, Clone, Default)]
struct Pages<C> {
    /// Dense pages indexed by biased exponent; `None` until first used.
    positive: Vec<Option<Box<[C]>>>,
    negative: Vec<Option<Box<[C]>>>,
    /// Values with magnitude below 2^-40.
    zero: u64,
}

/// A bucket's counter: 64 bits in a [`Histogram`], 16 in a [`Tally`].
trait Counter: Copy + Default + Into<u64> {
    /// How many counts one wrap-around of the counter stands for (0: it
    /// never wraps).
    const WRAP: u64;
    /// Count one more; `true` when the counter wrapped around to 0 (it
    /// holds [`Counter::WRAP`] counts fewer than it counted).
    fn bump(&mut self) -> bool;
}

impl Counter for u64 {
    const WRAP: u64 = 0;
    #[inline(always)]
    fn bump(&mut self) -> bool {
        *self = self.saturating_add(1);
        false
    }
}

impl Counter for u16 {
    const WRAP: u64 = 1 << 16;
    #[inline(always)]
    fn bump(&mut self) -> bool {
        *self = self.wrapping_add(1);
        *self == 0
    }
}

impl<C: Counter> Pages<C> {
    /// Count every value of `xs`: a run of values with one sign and
    /// exponent (the common case: most outputs live in one binade) is
    /// counted into its page without looking the page up again. A counter
    /// that wraps around hands its [`Counter::WRAP`] counts to `wrapped`.
    #[inline(always)]
    fn add_all(&mut self, xs: &[f64], mut wrapped: impl FnMut(BucketCount)) {
        let mut rest = xs;
        while let Some((&x, tail)) = rest.split_first() {
            let bits = x.to_bits();
            let exp = (bits >> 52) & 0x7ff;
            if exp < MIN_EXPONENT || !x.is_finite() {
                self.zero += 1;
                rest = tail;
                continue;
            }
            let Some(page) = self.page_mut(bits >> 63 == 1, exp as usize) else {
                rest = tail;
                continue;
            };
            // The run: every following value with these top 12 bits (the
            // same sign and exponent, so also finite and not tiny).
            let top = bits >> 52;
            let run = rest
                .iter()
                .position(|y| y.to_bits() >> 52 != top)
                .unwrap_or(rest.len());
            let (same, after) = rest.split_at(run);
            for y in same {
                let sub = ((y.to_bits() >> (52 - SUB_BITS)) & (SUB_BUCKETS as u64 - 1)) as usize;
                if let Some(c) = page.get_mut(sub)
                    && c.bump()
                {
                    wrapped(BucketCount(
                        bits >> 63 == 1,
                        exp as u16,
                        sub as u16,
                        C::WRAP,
                    ));
                }
            }
            rest = after;
        }
    }

    /// The page of counts for `negative` values with biased exponent `e`,
    /// made on first use.
    fn page_mut(&mut self, negative: bool, e: usize) -> Option<&mut [C]> {
        let pages = if negative {
            &mut self.negative
        } else {
            &mut self.positive
        };
        if pages.len() <= e {
            pages.resize_with(e + 1, || None);
        }
        pages.get_mut(e).map(|slot| {
            &mut **slot.get_or_insert_with(|| vec![C::default(); SUB_BUCKETS].into_boxed_slice())
        })
    }

    /// Sparse form, ascending by value; the zero bucket is encoded with exponent 0.
    fn to_sparse(&self) -> Vec<BucketCount> {
        let mut out = Vec::new();
        for (e, page) in self.negative.iter().enumerate().rev() {
            if let Some(p) = page {
                for (s, c) in p.iter().enumerate().rev() {
                    let c: u64 = (*c).into();
                    if c > 0 {
                        out.push(BucketCount(true, e as u16, s as u16, c));
                    }
                }
            }
        }
        if self.zero > 0 {
            out.push(BucketCount(false, 0, 0, self.zero));
        }
        for (e, page) in self.positive.iter().enumerate() {
            if let Some(p) = page {
                for (s, c) in p.iter().enumerate() {
                    let c: u64 = (*c).into();
                    if c > 0 {
                        out.push(BucketCount(false, e as u16, s as u16, c));
                    }
                }
            }
        }
        out
    }
}

/// A worker's counts for a bounded run: the buckets of a [`Histogram`] in
/// 16-bit counters, each wrap-around of one noted apart.
///
/// Counting is bound by the loads of the counters (a page is 2^14 of them
/// a binade, and a run's metrics touch a dozen pages); quarter-width
/// counters keep four times as many of them in cache. The wrap-arounds
/// are kept by bucket in a map, not in pages of their own, so a long run
/// holds no more memory than a short one (a page for a bucket that wrapped
/// would grow a worker's memory with the run's length).
#[derive(Debug, Default)]
pub(crate) struct Tally {
    counts: Pages<u16>,
    /// The counts of every wrap-around, by (sign, exponent, sub-bucket).
    wrapped: std::collections::BTreeMap<(bool, u16, u16), u64>,
}

impl Tally {
    /// Count every value of `xs`, as [`Histogram::add_count`] of each would.
    pub(crate) fn add_all(&mut self, xs: &[f64]) {
        let wrapped = &mut self.wrapped;
        self.counts.add_all(xs, |BucketCount(neg, e, sub, count)| {
            let c = wrapped.entry((neg, e, sub)).or_insert(0);
            *c = c.saturating_add(count);
        });
    }

    /// Everything counted, as a histogram.
    pub(crate) fn into_histogram(self) -> Histogram {
        let mut h = Histogram::default();
        for b in self.counts.to_sparse() {
            h.add_bucket(b);
        }
        for ((neg, e, sub), count) in self.wrapped {
            h.add_bucket(BucketCount(neg, e, sub, count));
        }
        h
    }
}

/// One bucket in sparse, serializable form: (sign, exponent, sub-bucket, count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BucketCount(pub bool, pub u16, pub u16, pub u64);

impl Histogram {
    #[cfg(test)]
    pub(crate) fn add(&mut self, x: f64) {
        self.add_count(x, 1);
    }

    /// Count every value of `xs`, as [`Histogram::add`] of each would.
    #[cfg(test)]
    pub(crate) fn add_all(&mut self, xs: &[f64]) {
        self.counts.add_all(xs, |_| {});
    }

    fn add_count(&mut self, x: f64, count: u64) {
        if let Some(c) = self.bucket_mut(x) {
            *c += count;
        }
    }

    /// Take back each value of `xs` that [`Histogram::add_all`] counted
    /// (a block counted past the point where its run stopped).
    pub(crate) fn remove_all(&mut self, xs: &[f64]) {
        for &x in xs {
            if let Some(c) = self.bucket_mut(x) {
                *c = c.saturating_sub(1);
            }
        }
    }

    /// The count of the bucket `x` falls in.
    fn bucket_mut(&mut self, x: f64) -> Option<&mut u64> {
        let bits = x.to_bits();
        let exp = (bits >> 52) & 0x7ff;
        if exp < MIN_EXPONENT || !x.is_finite() {
            return Some(&mut self.counts.zero);
        }
        let sub = ((bits >> (52 - SUB_BITS)) & (SUB_BUCKETS as u64 - 1)) as usize;
        self.counts
            .page_mut(bits >> 63 == 1, exp as usize)
            .and_then(|page| page.get_mut(sub))
    }

    pub(crate) fn merge(&mut self, o: &Histogram) {
        for b in o.to_sparse() {
            self.add_bucket(b);
        }
    }

    fn add_bucket(&mut self, BucketCount(neg, e, sub, count): BucketCount) {
        if e == 0 {
            self.counts.zero += count;
            return;
        }
        let bits =
            (u64::from(neg) << 63) | (u64::from(e) << 52) | (u64::from(sub) << (52 - SUB_BITS));
        self.add_count(f64::from_bits(bits), count);
    }

    /// Sparse form, ascending by value; the zero bucket is encoded with exponent 0.
    pub(crate) fn to_sparse(&self) -> Vec<BucketCount> {
        self.counts.to_sparse()
    }

    /// Total count.
    pub(crate) fn total(&self) -> Option<u64> {
        self.to_sparse()
            .iter()
            .try_fold(0u64, |a, b| a.checked_add(b.3))
    }

    /// A histogram from decoded buckets, checked: valid exponents and
    /// sub-buckets, no zero counts, strictly ascending, a total that fits.
    pub(crate) fn from_checked(buckets: &[BucketCount]) -> Result<Self, String> {
        let mut total = 0u64;
        for b in buckets {
            let BucketCount(neg, e, sub, count) = *b;
            if e != 0
                && (u64::from(e) < MIN_EXPONENT || e > 2046 || usize::from(sub) >= SUB_BUCKETS)
            {
                return Err(format!(
                    "histogram bucket ({neg}, {e}, {sub}) does not exist"
                ));
            }
            if e == 0 && (neg || sub != 0) {
                return Err("the zero bucket is (false, 0, 0)".into());
            }
            if count == 0 {
                return Err("a histogram bucket with a count of 0".into());
            }
            total = total
                .checked_add(count)
                .ok_or("histogram counts overflow")?;
        }
        let h = Histogram::from_sparse(buckets);
        if h.to_sparse() != buckets {
            return Err("histogram buckets are not in ascending order, or repeat".into());
        }
        Ok(h)
    }

    pub(crate) fn from_sparse(buckets: &[BucketCount]) -> Self {
        let mut h = Histogram::default();
        for b in buckets {
            h.add_bucket(*b);
        }
        h
    }

    /// Approximate type-7 percentiles; each order statistic is the middle of
    /// its bucket, clamped into [min, max].
    pub(crate) fn percentiles(&self, probs: &[f64], min: f64, max: f64) -> Vec<f64> {
        let buckets = self.to_sparse();
        let n: u64 = buckets.iter().map(|b| b.3).sum();
        if n == 0 {
            return vec![0.0; probs.len()];
        }
        let value_at = |rank: u64| -> f64 {
            let mut seen = 0u64;
            for b in &buckets {
                seen += b.3;
                if rank < seen {
                    return bucket_mid(*b).clamp(min, max);
                }
            }
            max
        };
        probs
            .iter()
            .map(|p| {
                let h = (n - 1) as f64 * p;
                let lo = (h.floor() as u64).min(n - 1);
                let hi = (lo + 1).min(n - 1);
                interpolate(value_at(lo), value_at(hi), h - lo as f64)
            })
            .collect()
    }
}

impl PartialEq for Histogram {
    fn eq(&self, other: &Self) -> bool {
        self.to_sparse() == other.to_sparse()
    }
}

impl From<Histogram> for Vec<BucketCount> {
    fn from(h: Histogram) -> Self {
        h.to_sparse()
    }
}

impl TryFrom<Vec<BucketCount>> for Histogram {
    type Error = String;
    fn try_from(b: Vec<BucketCount>) -> Result<Self, String> {
        Histogram::from_checked(&b)
    }
}

fn bucket_mid(BucketCount(neg, e, sub, _): BucketCount) -> f64 {
    if e == 0 {
        return 0.0;
    }
    let lower = f64::from_bits((u64::from(e) << 52) | (u64::from(sub) << (52 - SUB_BITS)));
    let width = f64::from_bits(u64::from(e) << 52) / SUB_BUCKETS as f64;
    let mid = lower + width / 2.0;
    if neg { -mid } else { mid }
}

/// Two-sided normal quantile for a confidence level in (0, 1).
pub(crate) fn z_for_level(level: f64) -> f64 {
    Normal::standard().inverse_cdf(0.5 + level / 2.0)
}

/// Convergence of a series: at least 100 values, and the mean of the last 50
/// differs from the mean of the 50 before by less than the threshold.
/// Returns (converged, mean of last 50, mean of previous 50).
pub(crate) fn convergence(tail: &[f64], threshold: f64) -> (bool, Option<f64>, Option<f64>) {
    let n = tail.len();
    if n < 100 {
        return (false, None, None);
    }
    let last = tail.get(n - 50..).unwrap_or(&[]);
    let prev = tail.get(n - 100..n - 50).unwrap_or(&[]);
    let ml = last.iter().sum::<f64>() / 50.0;
    let mp = prev.iter().sum::<f64>() / 50.0;
    ((ml - mp).abs() < threshold, Some(ml), Some(mp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7_matches_r() {
        // R: quantile(c(1,2,3,4,5,6,7,8,9,10), c(.05,.25,.5,.75,.95), type = 7)
        let d: Vec<f64> = (1..=10).rev().map(f64::from).collect();
        let q = exact_percentiles(&d, &PERCENTILES, 1.0, 10.0);
        for (got, want) in q.iter().zip([1.45, 3.25, 5.5, 7.75, 9.55]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(
            exact_percentiles(&[3.0], &PERCENTILES, 3.0, 3.0),
            vec![3.0; 5]
        );
    }

    #[test]
    fn selection_agrees_with_sorting() {
        // Clustered values, exact duplicates and negatives.
        let mut d: Vec<f64> = (0..50_000)
            .map(|i: i32| {
                if i % 7 == 0 {
                    0.5
                } else {
                    ((i * 7919) % 10_007) as f64 / 3000.0 - 1.0
                }
            })
            .collect();
        let (min, max) = d
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        let probs = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.999, 1.0];
        let q = exact_percentiles(&d, &probs, min, max);
        d.sort_by(f64::total_cmp);
        for (p, got) in probs.iter().zip(q) {
            let h = (d.len() - 1) as f64 * p;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(d.len() - 1);
            let want = d[lo] + (h - lo as f64) * (d[hi] - d[lo]);
            assert_eq!(got, want, "p = {p}");
        }
    }

    /// Type 7 by sorting, the definition the selection must match bit for bit.
    fn sorted_type7(d: &[f64], probs: &[f64]) -> Vec<f64> {
        let mut d = d.to_vec();
        d.sort_by(f64::total_cmp);
        probs
            .iter()
            .map(|p| {
                let h = (d.len() - 1) as f64 * p;
                let lo = h.floor() as usize;
                let hi = (lo + 1).min(d.len() - 1);
                interpolate(d[lo], d[hi], h - lo as f64)
            })
            .collect()
    }

    #[test]
    fn selection_agrees_with_sorting_on_clamped_and_tied_values() {
        // Clamped outputs: masses exactly at min and max, an interior tie,
        // values one ulp inside the ends, a tiny span (every key its own
        // bucket) and a wide one; sizes around each wanted rank.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let probs = [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0];
        for (lo, hi) in [
            (0.5, 1.0),
            (-3.0, 2.0),
            (1.0, 1.0 + 64.0 * f64::EPSILON),
            (0.0, 1e300),
        ] {
            for n in [2usize, 3, 20, 101, 5_000] {
                for ends in [0.0, 0.3, 0.9] {
                    let d: Vec<f64> = (0..n)
                        .map(|i| {
                            let u = next();
                            if u < ends / 2.0 {
                                lo
                            } else if u < ends {
                                hi
                            } else if i % 11 == 0 {
                                lo + (hi - lo) / 3.0
                            } else if i % 13 == 0 {
                                f64::from_bits(lo.to_bits() + 1).min(hi)
                            } else {
                                (lo + next() * (hi - lo)).clamp(lo, hi)
                            }
                        })
                        .collect();
                    let (min, max) = d
                        .iter()
                        .fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
                    let got = exact_percentiles(&d, &probs, min, max);
                    let want = sorted_type7(&d, &probs);
                    for ((g, w), p) in got.iter().zip(&want).zip(probs) {
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "[{lo}, {hi}] n={n} ends={ends} p={p}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn selection_survives_min_and_max_that_lie() {
        // A hostile partial result may carry a min and max its samples
        // contradict: the answer is then meaningless but never a panic.
        let d: Vec<f64> = (0..1000).map(|i| f64::from(i) - 500.0).collect();
        for (min, max) in [(0.0, 10.0), (-1e9, -1e8), (400.0, -400.0), (-0.0, 0.0)] {
            let q = exact_percentiles(&d, &PERCENTILES, min, max);
            assert_eq!(q.len(), PERCENTILES.len());
        }
    }

    #[test]
    fn histogram_within_bound() {
        let xs: Vec<f64> = (0..100_000)
            .map(|i| 0.5 + ((i * 7919) % 100_003) as f64 / 200_006.0)
            .collect();
        let mut h = Histogram::default();
        xs.iter().for_each(|x| h.add(*x));
        let exact = exact_percentiles(&xs, &PERCENTILES, 0.5, 1.0);
        let approx = h.percentiles(&PERCENTILES, 0.5, 1.0);
        for (e, a) in exact.iter().zip(&approx) {
            assert!((e - a).abs() <= BOUNDED_RELATIVE_ERROR * e.abs() + BOUNDED_ABSOLUTE_ERROR);
        }
        let back = Histogram::from_sparse(&h.to_sparse());
        assert_eq!(back.to_sparse(), h.to_sparse());
    }

    #[test]
    fn adding_a_slice_counts_as_adding_each_value() {
        // Runs in one binade, binade changes, signs, tiny values, zeros.
        let mut xs: Vec<f64> = (0..5000)
            .map(|i| 0.5 + ((i * 7919) % 10_007) as f64 / 20_014.0)
            .collect();
        xs.extend([1.0, 1.5, 0.25, -0.75, -0.75, 0.0, -0.0, 1e-300, 3.0, 0.6]);
        xs.extend((0..300).map(|i| (f64::from(i) - 150.0) * 1.37));
        let mut one = Histogram::default();
        xs.iter().for_each(|x| one.add(*x));
        let mut all = Histogram::default();
        all.add_all(&xs);
        assert_eq!(all.to_sparse(), one.to_sparse());
        let mut split = Histogram::default();
        let (a, b) = xs.split_at(2501);
        split.add_all(a);
        split.add_all(b);
        assert_eq!(split.to_sparse(), one.to_sparse());
    }

    /// Zeros of both signs compare equal: a block's and a run's minimum and
    /// maximum are the first of them in iteration order, on any build
    /// (`f64::min`'s pick between them is the compiler's).
    #[test]
    fn min_and_max_keep_the_first_of_equal_zeros() {
        let bits = |v: [f64; 4]| [v[2].to_bits(), v[3].to_bits()];
        let pos = 0.0f64.to_bits();
        let neg = (-0.0f64).to_bits();
        for (values, want) in [
            ([0.0, -0.0, 0.0], [pos, pos]),
            ([-0.0, 0.0, -0.0], [neg, neg]),
            ([0.0, -0.0, f64::NAN], [pos, pos]),
        ] {
            let mut b = BlockSums::new(0.0);
            for v in values {
                b.add(v);
            }
            assert_eq!(bits(b.finish()), want, "{values:?}");
        }
        // Blocks folded in index order: the first block's zero stays.
        let block = |z: f64| {
            let mut b = BlockSums::new(0.0);
            b.add(z);
            b.finish()
        };
        for (first, second) in [(0.0, -0.0), (-0.0, 0.0)] {
            let mut m = Moments::new(0.0);
            m.add_sums(1, &block(first));
            m.add_sums(1, &block(second));
            assert_eq!(m.min.to_bits(), first.to_bits());
            assert_eq!(m.max.to_bits(), first.to_bits());
            let mut a = Moments::new(0.0);
            a.add_sums(1, &block(first));
            let mut b = Moments::new(0.0);
            b.add_sums(1, &block(second));
            a.merge(&b);
            assert_eq!([a.min.to_bits(), a.max.to_bits()], [first.to_bits(); 2]);
        }
    }

    #[test]
    fn a_tally_counts_as_a_histogram_across_wrap_arounds() {
        // One bucket counted past 2^16 three times over (0.75, and the
        // largest value below 1.0 share nothing but their page), a
        // negative one past it once, the zero bucket, tiny values, spread
        // values, in slices of every size.
        let mut xs: Vec<f64> = vec![0.75; 3 * 65_536 + 17];
        xs.extend(std::iter::repeat_n(-2.5, 65_536));
        xs.extend(std::iter::repeat_n(1.0 - f64::EPSILON, 65_535));
        xs.extend([0.0, -0.0, 1e-300, f64::MIN_POSITIVE]);
        xs.extend((0..70_000).map(|i| 0.5 + ((i * 7919) % 10_007) as f64 / 20_014.0));
        xs.extend((0..300).map(|i| (f64::from(i) - 150.0) * 1.37));
        let mut want = Histogram::default();
        xs.iter().for_each(|x| want.add(*x));
        for size in [1, 255, 256, 65_536, xs.len()] {
            let mut tally = Tally::default();
            xs.chunks(size).for_each(|c| tally.add_all(c));
            assert_eq!(
                tally.into_histogram().to_sparse(),
                want.to_sparse(),
                "{size}"
            );
        }
        // The buckets of 0.75 and -2.5 (the spread values add to the first).
        let count = |neg, e, sub| {
            want.to_sparse()
                .iter()
                .find(|b| (b.0, b.1, b.2) == (neg, e, sub))
                .map_or(0, |b| b.3)
        };
        assert!(count(false, 1022, 8192) >= 3 * 65_536 + 17);
        assert_eq!(count(true, 1024, 4096), 65_536);
    }

    #[test]
    fn histogram_zero_and_negative() {
        let mut h = Histogram::default();
        for x in [0.0, -1.0, 2.0, 0.0] {
            h.add(x);
        }
        let p = h.percentiles(&[0.0, 0.5, 1.0], -1.0, 2.0);
        assert!((p[0] + 1.0).abs() < 1e-4);
        assert_eq!(p[1], 0.0);
        assert!((p[2] - 2.0).abs() < 1e-4);
        assert_eq!(
            Histogram::from_sparse(&h.to_sparse()).to_sparse(),
            h.to_sparse()
        );
    }

    #[test]
    fn z_values() {
        assert!((z_for_level(0.95) - 1.959963984540054).abs() < 1e-9);
        assert!((z_for_level(0.99) - 2.5758293035489).abs() < 1e-9);
    }

    #[test]
    fn moments_grouping_invariant() {
        let xs: Vec<f64> = (0..1024).map(|i| ((i * 31) % 97) as f64 / 97.0).collect();
        let mut a = Moments::new(0.5);
        for c in xs.chunks(256) {
            a.add_block(c);
        }
        let mut b1 = Moments::new(0.5);
        let mut b2 = Moments::new(0.5);
        b1.add_block(&xs[..256]);
        b2.add_block(&xs[256..512]);
        b2.add_block(&xs[512..768]);
        b2.add_block(&xs[768..]);
        b1.merge(&b2);
        assert_eq!(a.mean().to_bits(), b1.mean().to_bits());
        assert_eq!(a.std().to_bits(), b1.std().to_bits());
        let mean = xs.iter().sum::<f64>() / 1024.0;
        assert!((a.mean() - mean).abs() < 1e-14);
    }
}
