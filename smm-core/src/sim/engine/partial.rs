//! Partial results: one shard's share of a run, its wire form and the
//! checks that make a partial decoded from outside safe to merge.

use serde::{Deserialize, Serialize};

use super::{BLOCK_SIZE, TAIL};
use crate::sim::SimulationError;
use crate::sim::input::SimulationRequest;
use crate::sim::model::{Plan, Stop};
use crate::sim::stats::{Histogram, Moments};
use crate::sim::workflow::NodeCounters;

/// The result of simulating iterations `[start, end)` of a run: merge the
/// partials of all shards with [`merge_partials`](super::merge_partials) to get exactly the report
/// of a single run. Serializable, so shards can run on other machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "RawPartial")]
pub struct PartialResult {
    pub(super) request: SimulationRequest,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) run_end: u64,
    pub(super) terminated_early: bool,
    pub(super) moments: Vec<Moments>,
    pub(super) samples: Option<Vec<Vec<f64>>>,
    pub(super) histograms: Option<Vec<Histogram>>,
    pub(super) successes: u64,
    pub(super) node_counters: Vec<NodeCounters>,
    pub(super) tail: Vec<f64>,
    /// Under the precision rule, a shard that does not start the run keeps
    /// each block's sums of every targeted metric (in the rule's target
    /// order), so that the merge finds the stopping point exactly where a
    /// single run would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) block_sums: Option<Vec<Vec<[f64; 4]>>>,
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
    pub fn to_json(&self) -> Result<String, SimulationError> {
        crate::jcs::to_json_text(self, false).map_err(SimulationError::internal)
    }
    /// Parse a partial serialized with [`PartialResult::to_json`], checking
    /// every invariant (a forged or damaged partial is a
    /// [`SimulationError::InvalidPartial`], never a panic at the merge).
    pub fn from_json(text: &str) -> Result<Self, SimulationError> {
        crate::limits::check_document_len(text.len())
            .map_err(|reason| SimulationError::InvalidPartial { reason })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let raw: RawPartial =
            serde_path_to_error::deserialize(&mut de).map_err(crate::sim::input::path_error)?;
        de.end().map_err(|e| SimulationError::Parse {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        PartialResult::try_from(raw)
    }
}

/// The first bytes of a partial's binary form: a name and the version.
const BINARY_MAGIC: &[u8; 8] = b"SMMPART\x01";

/// The fixed part of the binary form: magic, sample columns (u32), sample
/// rows (u64), header length (u64), all little-endian.
const BINARY_PREAMBLE: usize = 8 + 4 + 8 + 8;

impl PartialResult {
    /// The partial as compact binary, for shipping exact-mode samples: a
    /// preamble (the magic `SMMPART` and version 1, the samples' column
    /// and row counts, the header's length), the header (this partial's
    /// JSON without its samples), then the samples as little-endian `f64`
    /// columns. An exact shard of a million iterations takes 56 MB here
    /// against about 120 MB of JSON, and decodes without parsing numbers.
    pub fn to_bytes(&self) -> Result<Vec<u8>, SimulationError> {
        let header = PartialResult {
            request: self.request.clone(),
            start: self.start,
            end: self.end,
            run_end: self.run_end,
            terminated_early: self.terminated_early,
            moments: self.moments.clone(),
            samples: None,
            histograms: self.histograms.clone(),
            successes: self.successes,
            node_counters: self.node_counters.clone(),
            tail: self.tail.clone(),
            block_sums: self.block_sums.clone(),
        };
        let header = crate::jcs::to_json_text(&header, false).map_err(SimulationError::internal)?;
        let columns = self.samples.as_deref().unwrap_or_default();
        let rows = columns.first().map_or(0, Vec::len);
        let width = u32::try_from(columns.len())
            .map_err(|_| SimulationError::internal("too many sample columns".into()))?;
        let mut out = Vec::with_capacity(BINARY_PREAMBLE + header.len() + columns.len() * rows * 8);
        out.extend_from_slice(BINARY_MAGIC);
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&(rows as u64).to_le_bytes());
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        for column in columns {
            for x in column {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Decode [`PartialResult::to_bytes`]'s form, checking every invariant
    /// as [`PartialResult::from_json`] does. The sizes come first and are
    /// bounded before anything is allocated: the header by
    /// [`crate::limits::MAX_DOCUMENT_BYTES`], the samples by the exact-mode
    /// limit ([`crate::limits::MAX_EXACT_ITERATIONS`] rows) and by the
    /// bytes actually given; a single trailing or missing byte is refused
    /// (one encoding per partial).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SimulationError> {
        let bad = |reason: String| SimulationError::InvalidPartial { reason };
        let (preamble, rest) = bytes
            .split_at_checked(BINARY_PREAMBLE)
            .ok_or_else(|| bad(format!("{} bytes are not a binary partial", bytes.len())))?;
        let (magic, sizes) = preamble.split_at(8);
        if magic != BINARY_MAGIC {
            return Err(bad(
                "not a binary partial (it does not start with SMMPART and version 1)".into(),
            ));
        }
        let word = |range: std::ops::Range<usize>| -> u64 {
            let mut b = [0u8; 8];
            if let (Some(dst), Some(src)) = (b.get_mut(..range.len()), sizes.get(range)) {
                dst.copy_from_slice(src);
            }
            u64::from_le_bytes(b)
        };
        let (width, rows, header_len) = (word(0..4), word(4..12), word(12..20));
        if header_len > crate::limits::MAX_DOCUMENT_BYTES as u64 {
            return Err(bad(format!(
                "the header is {header_len} bytes, more than {}",
                crate::limits::MAX_DOCUMENT_BYTES
            )));
        }
        if width > 64 || rows > crate::limits::MAX_EXACT_ITERATIONS {
            return Err(bad(format!(
                "{width} sample columns of {rows} rows is past the exact-mode limit"
            )));
        }
        let too_big = |_| bad("the partial is too large for this machine".into());
        let header_len = usize::try_from(header_len).map_err(too_big)?;
        let sample_bytes = usize::try_from(width * rows * 8).map_err(too_big)?;
        if rest.len() != header_len + sample_bytes {
            return Err(bad(format!(
                "{} bytes follow the preamble; its sizes say {}",
                rest.len(),
                header_len + sample_bytes
            )));
        }
        let (header, data) = rest.split_at(header_len);
        let text = std::str::from_utf8(header)
            .map_err(|e| bad(format!("the header is not UTF-8: {e}")))?;
        let mut de = serde_json::Deserializer::from_str(text);
        let mut raw: RawPartial =
            serde_path_to_error::deserialize(&mut de).map_err(crate::sim::input::path_error)?;
        de.end().map_err(|e| SimulationError::Parse {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        if raw.samples.is_some() {
            return Err(bad(
                "the header carries samples: they belong after it".into()
            ));
        }
        if width > 0 {
            let rows = usize::try_from(rows).map_err(too_big)?;
            let mut values = data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0xff; 8])));
            let columns: Vec<Vec<f64>> = (0..width)
                .map(|_| values.by_ref().take(rows).collect())
                .collect();
            raw.samples = Some(columns);
        } else if rows != 0 {
            return Err(bad("sample rows without columns".into()));
        }
        PartialResult::try_from(raw)
    }
}

pub(super) fn append(acc: &mut PartialResult, next: PartialResult) {
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
