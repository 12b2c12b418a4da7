//! Simulation: `simulate`, `simulate_request`, shards and merges, the
//! report and partial-result classes.

use numpy::PyArray1;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyTuple};
use smm_core::sim::{
    self, MetricSummary as CoreMetric, PercentileMode, RunOptions, SimulationReport as CoreReport,
    SimulationRequest,
};

use crate::convert::{document, int_arg, to_py};
use crate::errors::{raise, to_py_err, validation};

/// Statistics of one output: mean, std, min, max, percentiles and the
/// confidence interval of the mean.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct MetricSummary {
    pub(crate) inner: CoreMetric,
}

#[pymethods]
impl MetricSummary {
    #[getter]
    fn mean(&self) -> f64 {
        self.inner.mean
    }
    #[getter]
    fn std(&self) -> f64 {
        self.inner.std
    }
    #[getter]
    fn min(&self) -> f64 {
        self.inner.min
    }
    #[getter]
    fn max(&self) -> f64 {
        self.inner.max
    }
    #[getter]
    fn p5(&self) -> f64 {
        self.inner.percentiles.p5
    }
    #[getter]
    fn p25(&self) -> f64 {
        self.inner.percentiles.p25
    }
    #[getter]
    fn p50(&self) -> f64 {
        self.inner.percentiles.p50
    }
    #[getter]
    fn p75(&self) -> f64 {
        self.inner.percentiles.p75
    }
    #[getter]
    fn p95(&self) -> f64 {
        self.inner.percentiles.p95
    }
    /// (lower, upper) bounds of the confidence interval for the mean.
    #[getter]
    fn confidence_interval(&self) -> (f64, f64) {
        (self.inner.confidence.lower, self.inner.confidence.upper)
    }
    #[getter]
    fn confidence_level(&self) -> f64 {
        self.inner.confidence.level
    }
    /// {"p5": ..., "p25": ..., "p50": ..., "p75": ..., "p95": ...}
    #[getter]
    fn percentiles<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let p = &self.inner.percentiles;
        for (k, v) in [
            ("p5", p.p5),
            ("p25", p.p25),
            ("p50", p.p50),
            ("p75", p.p75),
            ("p95", p.p95),
        ] {
            d.set_item(k, v)?;
        }
        Ok(d)
    }
    /// The summary as a dict (the report's JSON shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "MetricSummary(mean={}, std={}, p5={}, p50={}, p95={})",
            self.inner.mean,
            self.inner.std,
            self.inner.percentiles.p5,
            self.inner.percentiles.p50,
            self.inner.percentiles.p95
        )
    }
}

/// numpy (counts, edges).
type Histogram<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

const SAMPLE_NAMES: [&str; 7] = [
    "readiness_score",
    "policy_pass_pct",
    "citation_coverage",
    "duplication_risk",
    "cost_estimate_usd",
    "technical_readiness",
    "makespan_ms",
];

/// The result of a readiness simulation. Statistics are attributes; the
/// whole report is available as a dict or JSON. Picklable.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct SimulationReport {
    pub(crate) report: CoreReport,
    /// Per-iteration values by name, in iteration order, when kept.
    pub(crate) samples: Option<Vec<(String, Vec<f64>)>>,
}

impl SimulationReport {
    fn new(out: sim::RunOutput) -> Self {
        let samples = out.samples.map(|s| {
            let mut v = vec![
                (SAMPLE_NAMES[0].to_string(), s.readiness_score),
                (SAMPLE_NAMES[1].to_string(), s.policy_pass_pct),
                (SAMPLE_NAMES[2].to_string(), s.citation_coverage),
                (SAMPLE_NAMES[3].to_string(), s.duplication_risk),
                (SAMPLE_NAMES[4].to_string(), s.cost_estimate_usd),
                (SAMPLE_NAMES[5].to_string(), s.technical_readiness),
            ];
            if let Some(m) = s.makespan_ms {
                v.push((SAMPLE_NAMES[6].to_string(), m));
            }
            v
        });
        SimulationReport {
            report: out.report,
            samples,
        }
    }

    fn metric(&self, m: &CoreMetric) -> MetricSummary {
        MetricSummary { inner: m.clone() }
    }
}

#[pymethods]
impl SimulationReport {
    #[getter]
    fn model_id(&self) -> &str {
        &self.report.model_id
    }
    #[getter]
    fn workspace_id(&self) -> Option<&str> {
        self.report.workspace_id.as_deref()
    }
    #[getter]
    fn risk_profile(&self) -> &str {
        &self.report.risk_profile
    }
    #[getter]
    fn readiness_score(&self) -> MetricSummary {
        self.metric(&self.report.readiness_score)
    }
    #[getter]
    fn policy_pass_pct(&self) -> MetricSummary {
        self.metric(&self.report.policy_pass_pct)
    }
    #[getter]
    fn citation_coverage(&self) -> MetricSummary {
        self.metric(&self.report.citation_coverage)
    }
    #[getter]
    fn duplication_risk(&self) -> MetricSummary {
        self.metric(&self.report.duplication_risk)
    }
    #[getter]
    fn cost_estimate_usd(&self) -> MetricSummary {
        self.metric(&self.report.cost_estimate_usd)
    }
    #[getter]
    fn technical_readiness(&self) -> MetricSummary {
        self.metric(&self.report.technical_readiness)
    }
    /// Makespan statistics of the workflow, or None without a workflow.
    #[getter]
    fn makespan_ms(&self) -> Option<MetricSummary> {
        self.report
            .workflow
            .as_ref()
            .map(|w| self.metric(&w.makespan_ms))
    }
    /// Workflow results as a dict (successRate, makespanMs, nodes), or None.
    #[getter]
    fn workflow<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.report.workflow)
    }
    /// Fraction of iterations in which every workflow node succeeded, or None.
    #[getter]
    fn success_rate(&self) -> Option<f64> {
        self.report.workflow.as_ref().map(|w| w.success_rate)
    }
    #[getter]
    fn converged(&self) -> bool {
        self.report.convergence_metrics.converged
    }
    #[getter]
    fn iterations_run(&self) -> u64 {
        self.report.reproducibility.iterations_run
    }
    /// Iterations asked for (more than `iterations_run` when the run
    /// stopped early).
    #[getter]
    fn iterations_requested(&self) -> u64 {
        self.report.reproducibility.iterations_requested
    }
    /// The run stopped before its iterations (see `stopped_by`).
    #[getter]
    fn terminated_early(&self) -> bool {
        self.report.convergence_metrics.terminated_early
    }
    /// The rule in force: "precision", "window" or "none".
    #[getter]
    fn stopping_rule(&self) -> &str {
        &self.report.convergence_metrics.stopping_rule
    }
    /// The rule that stopped the run early, or None.
    #[getter]
    fn stopped_by(&self) -> Option<&str> {
        self.report.convergence_metrics.stopped_by.as_deref()
    }
    /// Half-width of the readiness mean's confidence interval.
    #[getter]
    fn achieved_half_width(&self) -> f64 {
        self.report.convergence_metrics.achieved_half_width
    }
    /// The precision rule's readiness target (absolute), or None.
    #[getter]
    fn target_half_width(&self) -> Option<f64> {
        self.report.convergence_metrics.target_half_width
    }
    #[getter]
    fn seed(&self) -> u64 {
        self.report.reproducibility.seed
    }
    /// Convergence metrics as a dict.
    #[getter]
    fn convergence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.report.convergence_metrics)
    }
    /// Reproducibility metadata as a dict.
    #[getter]
    fn reproducibility<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.report.reproducibility)
    }
    /// The report as a dict (camelCase keys, the JSON shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.report)
    }
    /// The report as compact JSON; `indent=True` for indented JSON.
    #[pyo3(signature = (indent = false))]
    fn to_json(&self, py: Python<'_>, indent: bool) -> PyResult<String> {
        if indent {
            self.report.to_json_pretty()
        } else {
            self.report.to_json()
        }
        .map_err(|e| to_py_err(py, e))
    }
    /// True when the per-iteration samples were kept (`keep_samples=True`).
    #[getter]
    fn has_samples(&self) -> bool {
        self.samples.is_some()
    }
    /// Per-iteration values as numpy float64 arrays, by output name
    /// (readiness_score, ..., makespan_ms), in iteration order.
    fn samples<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let Some(s) = &self.samples else {
            return Err(raise(
                py,
                crate::errors::Class::SmmError,
                "samples were not kept: call simulate(..., keep_samples=True)".into(),
                None,
                None,
            ));
        };
        let d = PyDict::new(py);
        for (name, v) in s {
            d.set_item(name, PyArray1::from_slice(py, v))?;
        }
        Ok(d)
    }
    /// A histogram of one output's samples (`keep_samples=True`): numpy
    /// `(counts, edges)` with `bins` equal bins over `range` (default: the
    /// samples' min and max), as `numpy.histogram` gives, for any plotting
    /// library.
    ///
    /// Parameters:
    /// - bins: the number of equal bins
    /// - metric: the output: "readiness_score" (default), "policy_pass_pct", ..., "makespan_ms"
    /// - range: (low, high) of the bins (default: the samples' min and max)
    #[pyo3(signature = (bins = 50, metric = "readiness_score", range = None))]
    fn histogram<'py>(
        &self,
        py: Python<'py>,
        bins: usize,
        metric: &str,
        range: Option<(f64, f64)>,
    ) -> PyResult<Histogram<'py>> {
        let Some(s) = &self.samples else {
            return Err(raise(
                py,
                crate::errors::Class::SmmError,
                "samples were not kept: call simulate(..., keep_samples=True)".into(),
                None,
                None,
            ));
        };
        let Some((_, values)) = s.iter().find(|(n, _)| n == metric) else {
            return Err(validation(
                py,
                "",
                format!(
                    "no samples of {metric:?} (one of {})",
                    s.iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        };
        if !(1..=100_000).contains(&bins) {
            return Err(validation(
                py,
                "",
                format!("bins must be 1 to 100000 (got {bins})"),
            ));
        }
        let (mut lo, mut hi) = match range {
            Some((a, b)) if a.is_finite() && b.is_finite() && a <= b => (a, b),
            Some((a, b)) => {
                return Err(validation(
                    py,
                    "",
                    format!("range ({a}, {b}) is not finite and ordered"),
                ));
            }
            None => values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
                    (l.min(*x), h.max(*x))
                }),
        };
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        } else if lo == hi {
            (lo, hi) = (lo - 0.5, hi + 0.5);
        }
        let width = (hi - lo) / bins as f64;
        let edges: Vec<f64> = (0..=bins).map(|k| lo + width * k as f64).collect();
        let mut counts = vec![0i64; bins];
        for x in values {
            if *x < lo || *x > hi {
                continue;
            }
            let k = (((x - lo) / width) as usize).min(bins - 1);
            if let Some(c) = counts.get_mut(k) {
                *c += 1;
            }
        }
        Ok((
            PyArray1::from_vec(py, counts),
            PyArray1::from_vec(py, edges),
        ))
    }
    /// A report from its JSON (`to_json()`, or a report written by any
    /// front door), checked against the report schema. No samples.
    ///
    /// Parameters:
    /// - text: a report's JSON
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let report = CoreReport::from_json(text).map_err(|e| to_py_err(py, e))?;
        Ok(SimulationReport {
            report,
            samples: None,
        })
    }
    /// One flat dict per output (snake_case): metric, mean, std, min, max,
    /// p5, p25, p50, p75, p95 (numeric order), ci_lower, ci_upper,
    /// confidence_level.
    fn to_records<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let r = &self.report;
        let mut metrics = vec![
            ("readiness_score", &r.readiness_score),
            ("policy_pass_pct", &r.policy_pass_pct),
            ("citation_coverage", &r.citation_coverage),
            ("duplication_risk", &r.duplication_risk),
            ("cost_estimate_usd", &r.cost_estimate_usd),
            ("technical_readiness", &r.technical_readiness),
        ];
        if let Some(w) = &r.workflow {
            metrics.push(("makespan_ms", &w.makespan_ms));
        }
        metrics
            .into_iter()
            .map(|(name, m)| {
                let d = PyDict::new(py);
                d.set_item("metric", name)?;
                for (k, v) in [
                    ("mean", m.mean),
                    ("std", m.std),
                    ("min", m.min),
                    ("max", m.max),
                    ("p5", m.percentiles.p5),
                    ("p25", m.percentiles.p25),
                    ("p50", m.percentiles.p50),
                    ("p75", m.percentiles.p75),
                    ("p95", m.percentiles.p95),
                    ("ci_lower", m.confidence.lower),
                    ("ci_upper", m.confidence.upper),
                    ("confidence_level", m.confidence.level),
                ] {
                    d.set_item(k, v)?;
                }
                Ok(d)
            })
            .collect()
    }
    /// `to_records()` as a pandas DataFrame indexed by metric (needs pandas).
    fn to_frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let pd = py.import("pandas").map_err(|_| {
            raise(
                py,
                crate::errors::Class::SmmError,
                "to_frame needs pandas: pip install \"smm-core[pandas]\"".into(),
                None,
                None,
            )
        })?;
        let frame = pd
            .getattr("DataFrame")?
            .call_method1("from_records", (self.to_records(py)?,))?;
        frame.call_method1("set_index", ("metric",))
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<SimulationReport>()
            .map(|o| o.get().report == self.report && o.get().samples == self.samples)
            .unwrap_or(false)
    }
    fn __repr__(&self) -> String {
        format!(
            "SimulationReport(model_id={:?}, iterations_run={}, seed={}, readiness_score.mean={})",
            self.report.model_id,
            self.report.reproducibility.iterations_run,
            self.report.reproducibility.seed,
            self.report.readiness_score.mean
        )
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let me = slf.get();
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("_report_from_state")?;
        let samples: Option<Vec<(String, Bound<'py, PyBytes>)>> = me.samples.as_ref().map(|s| {
            s.iter()
                .map(|(k, v)| {
                    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    (k.clone(), PyBytes::new(py, &bytes))
                })
                .collect()
        });
        let args =
            (me.report.to_json().map_err(|e| to_py_err(py, e))?, samples).into_pyobject(py)?;
        Ok((ctor, args))
    }
}

#[pyfunction]
pub(crate) fn _report_from_state(
    py: Python<'_>,
    json: &str,
    samples: Option<Vec<(String, Vec<u8>)>>,
) -> PyResult<SimulationReport> {
    let report = CoreReport::from_json(json).map_err(|e| to_py_err(py, e))?;
    let samples = samples.map(|s| {
        s.into_iter()
            .map(|(k, b)| {
                let v = b
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                    .collect();
                (k, v)
            })
            .collect()
    });
    Ok(SimulationReport { report, samples })
}

/// Iterations [start, end) of a run. Merge the partials of every shard with
/// `merge_partials` to get exactly the single-run report. Picklable.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct PartialResult {
    pub(crate) inner: sim::PartialResult,
}

#[pymethods]
impl PartialResult {
    #[getter]
    fn start(&self) -> u64 {
        self.inner.start()
    }
    #[getter]
    fn end(&self) -> u64 {
        self.inner.end()
    }
    #[getter]
    fn iterations_run(&self) -> u64 {
        self.inner.iterations_run()
    }
    #[getter]
    fn terminated_early(&self) -> bool {
        self.inner.terminated_early()
    }
    /// Serialized form (JSON text), as shipped between processes.
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_json().map_err(|e| to_py_err(py, e))
    }
    /// Parse a partial serialized with `to_json`.
    ///
    /// Parameters:
    /// - text: a partial's JSON, as `to_json` wrote it
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let inner = sim::PartialResult::from_json(text).map_err(|e| to_py_err(py, e))?;
        Ok(PartialResult { inner })
    }
    /// Compact binary form (bytes): the samples of an exact-mode shard as
    /// raw little-endian doubles (56 bytes an iteration), the rest as JSON.
    /// This is what pickling ships (to Dask, Ray, multiprocessing).
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let b = py
            .detach(|| self.inner.to_bytes())
            .map_err(|e| to_py_err(py, e))?;
        Ok(PyBytes::new(py, &b))
    }
    /// Decode a partial written by `to_bytes`, checked as `from_json` checks
    /// (a damaged or forged one is a ShardError).
    ///
    /// Parameters:
    /// - data: the bytes `to_bytes` wrote
    #[staticmethod]
    fn from_bytes(py: Python<'_>, data: &[u8]) -> PyResult<Self> {
        let inner = py
            .detach(|| sim::PartialResult::from_bytes(data))
            .map_err(|e| to_py_err(py, e))?;
        Ok(PartialResult { inner })
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("PartialResult")?
            .getattr("from_bytes")?;
        Ok((ctor, (slf.get().to_bytes(py)?,).into_pyobject(py)?))
    }
    fn __repr__(&self) -> String {
        format!(
            "PartialResult(start={}, end={}, iterations_run={})",
            self.inner.start(),
            self.inner.end(),
            self.inner.iterations_run()
        )
    }
}

pub(crate) fn run_options(
    py: Python<'_>,
    threads: Option<i64>,
    keep_samples: bool,
) -> PyResult<RunOptions> {
    let max = smm_core::limits::MAX_THREADS;
    let threads = match threads {
        None => None,
        // 0 is every core, as in the C ABI and the CLI (one meaning).
        Some(0) => None,
        Some(t) if t >= 1 && t as u64 <= max as u64 => Some(t as usize),
        Some(t) => {
            return Err(validation(
                py,
                "",
                format!("threads must be between 0 (every core) and {max} (got {t})"),
            ));
        }
    };
    Ok(RunOptions {
        threads,
        keep_samples,
        ..Default::default()
    })
}

pub(crate) fn percentile_mode(py: Python<'_>, s: &str) -> PyResult<PercentileMode> {
    match s {
        "auto" => Ok(PercentileMode::Auto),
        "exact" => Ok(PercentileMode::Exact),
        "bounded" => Ok(PercentileMode::Bounded),
        _ => Err(validation(
            py,
            "/simulationConfig/percentileMode",
            format!("percentile_mode must be 'auto', 'exact' or 'bounded' (got {s:?})"),
        )),
    }
}

pub(crate) fn request_from(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<SimulationRequest> {
    let v = document(py, obj, "")?;
    SimulationRequest::from_value(&v).map_err(|e| to_py_err(py, e))
}

/// Run the readiness simulation of a workspace.
///
/// Parameters:
/// - workspace: the workspace context (dict, JSON text or bytes): riskProfile,
///   primaryChannels, budget {hardCap, breakdown}; a whole v2 contract works.
/// - workflow: the campaign DAG `{"nodes": [...]}` (optional).
/// - iterations: iterations to run (1 to 10,000,000,000; exact percentiles
///   up to 100,000,000).
/// - seed: the run's seed; the same inputs and seed give the same bytes.
/// - confidence_level: level of every mean's interval, in (0, 0.999999999].
/// - convergence_threshold: the window rule's threshold, and the precision
///   rule's default target half-width.
/// - early_termination: stop early by the stopping rule (see below).
/// - percentile_mode: "auto", "exact" or "bounded".
/// - threads: worker threads (None or 0: every core); never changes a result.
/// - keep_samples: keep every per-iteration value (`report.samples()`,
///   `report.histogram()`).
/// - timeout_seconds: stop with TimeoutError after this long.
/// - model: "smm-readiness-v2" (default) or "smm-readiness-v1".
/// - stopping_rule: "precision" (v2's default) or "window" (v1's).
/// - precision: stop once the readiness mean's interval has at most this
///   half-width (turns early termination on; at least 1,000 iterations).
/// - relative_precision: the same, as a fraction of the mean.
/// - precision_metrics: further {metric: half-width} targets
///   (policyPassPct, citationCoverage, duplicationRisk, costEstimateUSD,
///   technicalReadiness).
/// - min_iterations: no early stop before this many (at least 1,000).
/// - progress: a callable (done, total) called at most every 0.2 s and at
///   the end (returning False stops the run with CancelledError), or
///   "tqdm". Ctrl-C stops a run with KeyboardInterrupt.
///
/// Returns a SimulationReport. A whole request document goes to
/// `simulate_request`.
#[pyfunction]
#[pyo3(signature = (
    workspace, workflow = None, *, iterations = 1000, seed = 42, confidence_level = 0.95,
    convergence_threshold = 0.001, early_termination = false, percentile_mode = "auto",
    threads = None, keep_samples = false, timeout_seconds = None, model = None,
    stopping_rule = None, precision = None, relative_precision = None, precision_metrics = None,
    min_iterations = None, progress = None
))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the Python keyword signature"
)]
pub(crate) fn simulate(
    py: Python<'_>,
    workspace: &Bound<'_, PyAny>,
    workflow: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = crate::convert::count)] iterations: i128,
    #[pyo3(from_py_with = crate::convert::count)] seed: i128,
    confidence_level: f64,
    convergence_threshold: f64,
    early_termination: bool,
    percentile_mode: &str,
    threads: Option<i64>,
    keep_samples: bool,
    #[pyo3(from_py_with = crate::convert::opt_count)] timeout_seconds: Option<i128>,
    model: Option<&str>,
    stopping_rule: Option<&str>,
    precision: Option<f64>,
    relative_precision: Option<f64>,
    precision_metrics: Option<&Bound<'_, PyAny>>,
    #[pyo3(from_py_with = crate::convert::opt_count)] min_iterations: Option<i128>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<SimulationReport> {
    // A precision target turns early termination on with the precision rule.
    let target = match (precision, relative_precision) {
        (Some(_), Some(_)) => {
            return Err(validation(
                py,
                "/simulationConfig/precision",
                "give precision or relative_precision, not both".into(),
            ));
        }
        (Some(h), None) => Some((h, false)),
        (None, Some(h)) => Some((h, true)),
        (None, None) => None,
    };
    let early_termination = early_termination || target.is_some();
    // A Contract is its document; a whole request belongs to simulate_request.
    let context = match workspace.cast::<crate::contracts::Contract>() {
        Ok(c) => c.get().inner.document().clone(),
        Err(_) => document(py, workspace, "/workspaceContext")?,
    };
    if context.get("workspaceContext").is_some() {
        return Err(validation(
            py,
            "/workspaceContext",
            "this is a whole request ({workspaceContext, workflowJson, simulationConfig}): \
             pass it to simulate_request"
                .into(),
        ));
    }
    let mut req = serde_json::json!({
        "workspaceContext": context,
        "simulationConfig": {
            "iterations": int_arg(py, iterations, "iterations", "/simulationConfig/iterations")?,
            "randomSeed": int_arg(py, seed, "seed", "/simulationConfig/randomSeed")?,
            "confidenceLevel": confidence_level,
            "convergenceThreshold": convergence_threshold,
            "enableEarlyTermination": early_termination,
        },
    });
    if let (Some(t), Some(cfg)) = (
        timeout_seconds,
        req.get_mut("simulationConfig")
            .and_then(|c| c.as_object_mut()),
    ) {
        let p = "/simulationConfig/timeoutSeconds";
        cfg.insert(
            "timeoutSeconds".into(),
            int_arg(py, t, "timeout_seconds", p)?.into(),
        );
    }
    for (name, v) in [
        ("confidence_level", confidence_level),
        ("convergence_threshold", convergence_threshold),
    ] {
        if !v.is_finite() {
            let p = if name == "confidence_level" {
                "confidenceLevel"
            } else {
                "convergenceThreshold"
            };
            return Err(validation(
                py,
                &format!("/simulationConfig/{p}"),
                format!("{name} must be finite (got {v})"),
            ));
        }
    }
    if let Some(cfg) = req
        .get_mut("simulationConfig")
        .and_then(|c| c.as_object_mut())
    {
        if let Some(m) = model {
            cfg.insert("model".into(), m.into());
        }
        if let Some(r) = stopping_rule {
            cfg.insert("stoppingRule".into(), r.into());
        }
        let mut p = serde_json::Map::new();
        if let Some((h, relative)) = target {
            p.insert("halfWidth".into(), h.into());
            if relative {
                p.insert("relative".into(), true.into());
            }
        }
        if let Some(m) = precision_metrics {
            p.insert(
                "metrics".into(),
                document(py, m, "/simulationConfig/precision/metrics")?,
            );
        }
        if let Some(n) = min_iterations {
            let at = "/simulationConfig/precision/minIterations";
            p.insert(
                "minIterations".into(),
                int_arg(py, n, "min_iterations", at)?.into(),
            );
        }
        if !p.is_empty() {
            cfg.insert("precision".into(), p.into());
        }
    }
    if let (Some(w), Some(obj)) = (workflow, req.as_object_mut()) {
        obj.insert("workflowJson".into(), document(py, w, "/workflowJson")?);
    }
    let mut request = SimulationRequest::from_value(&req).map_err(|e| to_py_err(py, e))?;
    request.config.percentile_mode = self::percentile_mode(py, percentile_mode)?;
    // A run stops early here only when a keyword asked for it: no warning.
    run_watched(py, &request, threads, keep_samples, progress, false)
}

/// Run with progress, cancellation and Ctrl-C (see `progress`).
fn run_watched(
    py: Python<'_>,
    request: &SimulationRequest,
    threads: Option<i64>,
    keep_samples: bool,
    progress: Option<&Bound<'_, PyAny>>,
    warn: bool,
) -> PyResult<SimulationReport> {
    let mut opts = run_options(py, threads, keep_samples)?;
    let (watch, control) = crate::progress::watch(py, progress)?;
    opts.control = control;
    let result = py.detach(|| sim::run(request, &opts));
    let report = watch.finish(py, result).map(SimulationReport::new)?;
    let c = &report.report.convergence_metrics;
    if warn && c.terminated_early {
        // Where a user looks: the iterations asked for were not all run.
        let msg = format!(
            "the {} rule stopped the run after {} of {} iterations (report.terminated_early, \
             report.stopped_by)",
            c.stopped_by.as_deref().unwrap_or("stopping"),
            report.report.reproducibility.iterations_run,
            report.report.reproducibility.iterations_requested
        );
        let category = py.import("smm_core")?.getattr("EarlyTerminationWarning")?;
        let msg = std::ffi::CString::new(msg).unwrap_or_default();
        // Stack level 1 is the Python line that called this function.
        PyErr::warn(py, &category, &msg, 1)?;
    }
    Ok(report)
}

/// Run a whole request document (`{workspaceContext, workflowJson?, simulationConfig?}`,
/// the shape of the original system's `simulationInput`), as a dict or JSON text.
///
/// Parameters:
/// - request: the request document (dict, JSON text or bytes)
/// - threads: worker threads (None or 0: every core)
/// - keep_samples: keep every per-iteration value
/// - progress: a callable (done, total) or "tqdm" (see simulate)
///
/// A run the document's stopping rule ends early warns with
/// EarlyTerminationWarning (`simulate` does not: there a keyword asked).
#[pyfunction]
#[pyo3(signature = (request, *, threads = None, keep_samples = false, progress = None))]
pub(crate) fn simulate_request(
    py: Python<'_>,
    request: &Bound<'_, PyAny>,
    threads: Option<i64>,
    keep_samples: bool,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<SimulationReport> {
    let request = request_from(py, request)?;
    // The document asked for early termination, perhaps unseen by the
    // caller: a run that stops short warns, at the caller's line.
    run_watched(py, &request, threads, keep_samples, progress, true)
}

/// Simulate iterations [start, end) of a request (start a multiple of
/// BLOCK_SIZE; end one too, or the run's iterations).
///
/// Parameters:
/// - request: the request document
/// - start: first iteration (a multiple of BLOCK_SIZE)
/// - end: one past the last (a multiple of BLOCK_SIZE, or the run's iterations)
/// - threads: worker threads (None or 0: every core)
/// - progress: a callable (done, total) or "tqdm" (see simulate)
#[pyfunction]
#[pyo3(signature = (request, start, end, *, threads = None, progress = None))]
pub(crate) fn simulate_shard(
    py: Python<'_>,
    request: &Bound<'_, PyAny>,
    start: u64,
    end: u64,
    threads: Option<i64>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<PartialResult> {
    let request = request_from(py, request)?;
    let mut opts = run_options(py, threads, false)?;
    let (watch, control) = crate::progress::watch(py, progress)?;
    opts.control = control;
    let result = py.detach(|| sim::simulate_shard(&request, start, end, &opts));
    let inner = watch.finish(py, result)?;
    Ok(PartialResult { inner })
}

/// Merge the partial results of every shard of one run into its report.
///
/// Parameters:
/// - partials: every shard's PartialResult, in any order
/// - threads: worker threads (None or 0: every core)
/// - keep_samples: keep the samples (exact mode)
#[pyfunction]
#[pyo3(signature = (partials, *, threads = None, keep_samples = false))]
pub(crate) fn merge_partials(
    py: Python<'_>,
    partials: &Bound<'_, PyAny>,
    threads: Option<i64>,
    keep_samples: bool,
) -> PyResult<SimulationReport> {
    let mut parts = Vec::new();
    for item in partials.try_iter()? {
        let item = item?;
        let p = item.cast::<PartialResult>().map_err(|_| {
            validation(
                py,
                "",
                "merge_partials takes an iterable of PartialResult".into(),
            )
        })?;
        parts.push(p.get().inner.clone());
    }
    let opts = run_options(py, threads, keep_samples)?;
    let out = py
        .detach(|| sim::merge_partials(parts, &opts))
        .map_err(|e| to_py_err(py, e))?;
    Ok(SimulationReport::new(out))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("MODEL_ID", sim::MODEL_ID)?;
    m.add("BLOCK_SIZE", sim::BLOCK_SIZE)?;
    m.add("MAX_ITERATIONS", sim::MAX_ITERATIONS)?;
    m.add("MAX_EXACT_ITERATIONS", sim::MAX_EXACT_ITERATIONS)?;
    m.add("AUTO_EXACT_LIMIT", sim::AUTO_EXACT_LIMIT)?;
    m.add("BOUNDED_RELATIVE_ERROR", sim::BOUNDED_RELATIVE_ERROR)?;
    m.add_class::<MetricSummary>()?;
    m.add_class::<SimulationReport>()?;
    m.add_class::<PartialResult>()?;
    m.add_function(wrap_pyfunction!(simulate, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_request, m)?)?;
    m.add_function(wrap_pyfunction!(simulate_shard, m)?)?;
    m.add_function(wrap_pyfunction!(merge_partials, m)?)?;
    m.add_function(wrap_pyfunction!(_report_from_state, m)?)?;
    Ok(())
}
