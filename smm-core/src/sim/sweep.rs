//! Parameter sweeps: one request, a grid of values at JSON pointers into
//! it, one simulation per point of the grid's cartesian product.
//!
//! Reproducible point by point: each point's seed is derived from the
//! sweep's seed and the point's values (not its position), and the point's
//! request, with that seed, is in the plan, so any point can be re-run
//! alone and gives its row again. The axes are taken in lexicographic
//! order of their pointers, the last axis varying fastest.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::SimulationError;
use super::engine::{RunOptions, run};
use super::input::SimulationRequest;
use super::report::SimulationReport;

/// The domain separator of point seeds.
const SEED_DOMAIN: &str = "smm-sweep/v1";

/// One point of a sweep: its values, its seed, its request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepPoint {
    /// Position in the sweep (0-based, last axis fastest).
    pub index: usize,
    /// The value at each pointer.
    pub inputs: BTreeMap<String, Value>,
    /// The point's seed (its request's `randomSeed`).
    pub seed: u64,
    /// The request with the point's values and seed.
    pub request: SimulationRequest,
}

/// One row of a sweep's result: the point and its summary statistics
/// (`schemas/sweep-row.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweepRow {
    /// Position in the sweep.
    pub index: usize,
    /// The value at each pointer.
    pub inputs: BTreeMap<String, Value>,
    /// The point's seed.
    pub seed: u64,
    /// Iterations run.
    pub iterations_run: u64,
    /// The rule that stopped the run early, if one did.
    pub stopped_by: Option<String>,
    /// Readiness: mean, standard deviation, interval, percentiles.
    pub readiness_mean: f64,
    /// Readiness standard deviation.
    pub readiness_std: f64,
    /// Lower end of the readiness mean's confidence interval.
    pub readiness_ci_lower: f64,
    /// Upper end.
    pub readiness_ci_upper: f64,
    /// Readiness 5th percentile.
    pub readiness_p5: f64,
    /// Readiness median.
    pub readiness_p50: f64,
    /// Readiness 95th percentile.
    pub readiness_p95: f64,
    /// Mean policy pass rate.
    pub policy_pass_mean: f64,
    /// Mean citation coverage.
    pub citation_coverage_mean: f64,
    /// Mean duplication risk.
    pub duplication_risk_mean: f64,
    /// Mean weekly cost (USD).
    pub cost_mean: f64,
    /// 95th percentile of the weekly cost.
    pub cost_p95: f64,
    /// Mean technical readiness.
    pub technical_readiness_mean: f64,
    /// Workflow success rate, when there is a workflow.
    pub success_rate: Option<f64>,
}

fn bad(pointer: &str, message: String) -> SimulationError {
    SimulationError::Parse {
        pointer: pointer.to_string(),
        message,
    }
}

/// The seed of a point: the first 8 bytes (big-endian) of the SHA-256 of
/// the RFC 8785 form of `{"domain": "smm-sweep/v1", "inputs": ..., "seed": ...}`.
pub fn point_seed(seed: u64, inputs: &BTreeMap<String, Value>) -> Result<u64, SimulationError> {
    let doc = serde_json::json!({"domain": SEED_DOMAIN, "inputs": inputs, "seed": seed});
    let canonical = crate::jcs::canonicalize_value(&doc).map_err(|e| bad("", e.to_string()))?;
    let digest = Sha256::digest(&canonical);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    Ok(u64::from_be_bytes(first))
}

/// Set `value` at `pointer` in `doc`: the parent must exist; an object
/// gains or replaces the key, an array replaces an existing index.
fn set_pointer(doc: &mut Value, pointer: &str, value: Value) -> Result<(), SimulationError> {
    if !pointer.starts_with('/') {
        return Err(bad(
            pointer,
            format!("{pointer:?} is not a JSON pointer (it must start with /)"),
        ));
    }
    let (parent, last) = crate::jcs::split_pointer(pointer).unwrap_or(("", String::new()));
    match doc.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.insert(last, value);
            Ok(())
        }
        Some(Value::Array(a)) => {
            let slot = last.parse::<usize>().ok().and_then(|i| a.get_mut(i));
            match slot {
                Some(s) => {
                    *s = value;
                    Ok(())
                }
                None => Err(bad(
                    pointer,
                    format!("{pointer}: no element {last} in an array of {}", a.len()),
                )),
            }
        }
        Some(_) => Err(bad(pointer, format!("{parent} is not an object or array"))),
        None => Err(bad(
            pointer,
            format!("{parent} does not exist in the request"),
        )),
    }
}

/// The points of a sweep: `grid` maps JSON pointers into `request` to the
/// values they take; `iterations` and `seed` are the sweep's.
pub fn plan(
    request: &Value,
    grid: &BTreeMap<String, Vec<Value>>,
    iterations: u64,
    seed: u64,
) -> Result<Vec<SweepPoint>, SimulationError> {
    if grid.is_empty() {
        return Err(bad("", "the grid has no axis".into()));
    }
    let mut count: usize = 1;
    for (pointer, values) in grid {
        if values.is_empty() {
            return Err(bad(pointer, format!("the axis {pointer} has no value")));
        }
        if pointer == "/simulationConfig/randomSeed" || pointer == "/simulationConfig/iterations" {
            return Err(bad(
                pointer,
                "the sweep sets seeds and iterations itself (its seed and iterations arguments)"
                    .into(),
            ));
        }
        count = count
            .checked_mul(values.len())
            .filter(|c| *c <= crate::limits::MAX_SWEEP_POINTS)
            .ok_or_else(|| {
                bad(
                    "",
                    format!(
                        "the grid has more than {} points",
                        crate::limits::MAX_SWEEP_POINTS
                    ),
                )
            })?;
    }
    let axes: Vec<(&String, &Vec<Value>)> = grid.iter().collect();
    let mut points = Vec::with_capacity(count);
    for index in 0..count {
        // Mixed radix, last axis fastest.
        let mut rest = index;
        let mut picks = vec![0usize; axes.len()];
        for (slot, (_, values)) in picks.iter_mut().zip(&axes).rev() {
            *slot = rest % values.len();
            rest /= values.len();
        }
        let mut doc = request.clone();
        let mut inputs = BTreeMap::new();
        for ((pointer, values), pick) in axes.iter().zip(&picks) {
            let v = values
                .get(*pick)
                .cloned()
                .ok_or_else(|| SimulationError::internal("a grid pick out of range".into()))?;
            set_pointer(&mut doc, pointer, v.clone())?;
            inputs.insert((*pointer).clone(), v);
        }
        let point_seed = point_seed(seed, &inputs)?;
        let config = match doc.get_mut("simulationConfig") {
            Some(Value::Object(c)) => c,
            _ => {
                if let Value::Object(o) = &mut doc {
                    o.insert("simulationConfig".into(), Value::Object(Map::new()));
                }
                match doc.get_mut("simulationConfig") {
                    Some(Value::Object(c)) => c,
                    _ => return Err(bad("", "the request must be a JSON object".into())),
                }
            }
        };
        config.insert("iterations".into(), iterations.into());
        config.insert("randomSeed".into(), point_seed.into());
        // Checked whole (schema and model) before anything runs; the error
        // names the field and the point.
        let at_point = |e: SimulationError| SimulationError::Parse {
            pointer: e.pointer().unwrap_or("").to_string(),
            message: format!("at sweep point {index} ({}): {e}", show(&inputs)),
        };
        let request = SimulationRequest::from_value(&doc).map_err(at_point)?;
        super::model::Plan::compile(&request).map_err(at_point)?;
        points.push(SweepPoint {
            index,
            inputs,
            seed: point_seed,
            request,
        });
    }
    Ok(points)
}

fn show(inputs: &BTreeMap<String, Value>) -> String {
    inputs
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The row of a point whose simulation gave `report`.
pub fn row(point: &SweepPoint, report: &SimulationReport) -> SweepRow {
    let r = &report.readiness_score;
    SweepRow {
        index: point.index,
        inputs: point.inputs.clone(),
        seed: point.seed,
        iterations_run: report.reproducibility.iterations_run,
        stopped_by: report.convergence_metrics.stopped_by.clone(),
        readiness_mean: r.mean,
        readiness_std: r.std,
        readiness_ci_lower: r.confidence.lower,
        readiness_ci_upper: r.confidence.upper,
        readiness_p5: r.percentiles.p5,
        readiness_p50: r.percentiles.p50,
        readiness_p95: r.percentiles.p95,
        policy_pass_mean: report.policy_pass_pct.mean,
        citation_coverage_mean: report.citation_coverage.mean,
        duplication_risk_mean: report.duplication_risk.mean,
        cost_mean: report.cost_estimate_usd.mean,
        cost_p95: report.cost_estimate_usd.percentiles.p95,
        technical_readiness_mean: report.technical_readiness.mean,
        success_rate: report.workflow.as_ref().map(|w| w.success_rate),
    }
}

/// Run a sweep in this process, point after point (each point on
/// `opts.threads`): one row per point, in sweep order.
pub fn sweep(
    request: &Value,
    grid: &BTreeMap<String, Vec<Value>>,
    iterations: u64,
    seed: u64,
    opts: &RunOptions,
) -> Result<Vec<SweepRow>, SimulationError> {
    let points = plan(request, grid, iterations, seed)?;
    let mut rows = Vec::with_capacity(points.len());
    for p in &points {
        let out = run(&p.request, opts)?;
        rows.push(row(p, &out.report));
    }
    Ok(rows)
}
