//! Python bindings: the native module `smm_core._smm_core`, re-exported by
//! the pure-Python package `smm_core`.
//!
//! Inputs are converted to owned Rust values (with JSON pointers in every
//! conversion error), then the GIL is released for the computation. Errors
//! are mapped to one exception hierarchy in one place ([`to_py_err`]).

use numpy::PyArray1;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde_json::{Map, Number, Value};
use smm_core::sim::{
    self, MetricSummary as CoreMetric, PercentileMode, RunOptions, SimulationError,
    SimulationReport as CoreReport, SimulationRequest,
};

// ---------------------------------------------------------------- errors

static SMM_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static VALIDATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static SHARD_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn exception_types(py: Python<'_>) -> PyResult<[Bound<'_, PyType>; 3]> {
    let make = |name: &str, doc: &str, bases: Bound<'_, PyTuple>| -> PyResult<Py<PyType>> {
        let dict = PyDict::new(py);
        dict.set_item("__module__", "smm_core")?;
        dict.set_item("__doc__", doc)?;
        let ty = py.get_type::<PyType>().call1((name, bases, dict))?;
        Ok(ty.cast_into::<PyType>()?.unbind())
    };
    let base = SMM_ERROR.get_or_try_init(py, || {
        make(
            "SmmError",
            "Base class of every error raised by smm_core.",
            PyTuple::new(py, [py.get_type::<PyException>()])?,
        )
    })?;
    let validation = VALIDATION_ERROR.get_or_try_init(py, || {
        make(
            "ValidationError",
            "Bad input. `pointer` is the JSON pointer of the offending field ('' when none).",
            PyTuple::new(py, [base.bind(py).clone(), py.get_type::<PyValueError>()])?,
        )
    })?;
    let shard = SHARD_ERROR.get_or_try_init(py, || {
        make(
            "ShardError",
            "A shard range or a merge of partial results was rejected.",
            PyTuple::new(py, [base.bind(py).clone(), py.get_type::<PyValueError>()])?,
        )
    })?;
    Ok([
        base.bind(py).clone(),
        validation.bind(py).clone(),
        shard.bind(py).clone(),
    ])
}

fn raise(py: Python<'_>, kind: usize, msg: String, pointer: Option<&str>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let types = exception_types(py)?;
        let ty = types.get(kind).unwrap_or(&types[0]);
        let exc = ty.call1((msg.clone(),))?;
        exc.setattr("pointer", pointer.unwrap_or(""))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

fn validation(py: Python<'_>, pointer: &str, msg: String) -> PyErr {
    raise(py, 1, msg, Some(pointer))
}

/// The one place where core errors become Python exceptions.
fn to_py_err(py: Python<'_>, e: SimulationError) -> PyErr {
    match &e {
        SimulationError::InvalidShard { .. } | SimulationError::Merge { .. } => {
            raise(py, 2, e.to_string(), None)
        }
        _ => {
            let p = e.pointer().map(str::to_owned);
            raise(py, 1, e.to_string(), p.as_deref())
        }
    }
}

// ---------------------------------------------------------------- Python -> JSON

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Convert a Python value (dict/list/str/int/float/bool/None) to JSON,
/// naming the offending place by JSON pointer.
fn to_json(py: Python<'_>, obj: &Bound<'_, PyAny>, pointer: &str) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(v) = obj.extract::<i64>() {
            return Ok(Value::Number(v.into()));
        }
        if let Ok(v) = obj.extract::<u64>() {
            return Ok(Value::Number(v.into()));
        }
        return Err(validation(
            py,
            pointer,
            format!("integer at {pointer} is out of range"),
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        let v = f.value();
        return Number::from_f64(v).map(Value::Number).ok_or_else(|| {
            validation(
                py,
                pointer,
                format!("{pointer} must be a finite number (got {v})"),
            )
        });
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.extract::<String>()?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::new();
        for (k, v) in d.iter() {
            let key: String = k.extract().map_err(|_| {
                validation(
                    py,
                    pointer,
                    format!("keys of the mapping at {pointer:?} must be strings"),
                )
            })?;
            let child = format!("{pointer}/{}", escape(&key));
            map.insert(key, to_json(py, &v, &child)?);
        }
        return Ok(Value::Object(map));
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let mut out = Vec::new();
        for (i, item) in obj.try_iter()?.enumerate() {
            out.push(to_json(py, &item?, &format!("{pointer}/{i}"))?);
        }
        return Ok(Value::Array(out));
    }
    let ty = obj.get_type().name()?.to_string();
    Err(validation(
        py,
        pointer,
        format!("unsupported value of type {ty} at {pointer:?}"),
    ))
}

/// A document given as a Python value or as JSON text (str or bytes).
fn document(py: Python<'_>, obj: &Bound<'_, PyAny>, pointer: &str) -> PyResult<Value> {
    let text = if let Ok(s) = obj.cast::<PyString>() {
        Some(s.extract::<String>()?)
    } else if let Ok(b) = obj.cast::<PyBytes>() {
        Some(
            String::from_utf8(b.as_bytes().to_vec())
                .map_err(|e| validation(py, pointer, format!("{pointer:?} is not UTF-8: {e}")))?,
        )
    } else {
        None
    };
    match text {
        Some(t) => serde_json::from_str(&t)
            .map_err(|e| validation(py, pointer, format!("invalid JSON at {pointer:?}: {e}"))),
        None => to_json(py, obj, pointer),
    }
}

// ---------------------------------------------------------------- JSON -> Python

fn from_json<'py>(py: Python<'py>, v: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(a) => {
            let items = a
                .iter()
                .map(|x| from_json(py, x))
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        Value::Object(o) => {
            let d = PyDict::new(py);
            for (k, x) in o {
                d.set_item(k, from_json(py, x)?)?;
            }
            d.into_any()
        }
    })
}

// ---------------------------------------------------------------- classes

/// Statistics of one output: mean, std, min, max, percentiles and the
/// confidence interval of the mean.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(Clone, PartialEq)]
struct MetricSummary {
    inner: CoreMetric,
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
        from_json(
            py,
            &serde_json::to_value(&self.inner).unwrap_or(Value::Null),
        )
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
struct SimulationReport {
    report: CoreReport,
    /// Per-iteration values by name, in iteration order, when kept.
    samples: Option<Vec<(String, Vec<f64>)>>,
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
        from_json(
            py,
            &serde_json::to_value(&self.report.workflow).unwrap_or(Value::Null),
        )
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
    #[getter]
    fn seed(&self) -> u64 {
        self.report.reproducibility.seed
    }
    /// Convergence metrics as a dict.
    #[getter]
    fn convergence<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.report.convergence_metrics).unwrap_or(Value::Null),
        )
    }
    /// Reproducibility metadata as a dict.
    #[getter]
    fn reproducibility<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.report.reproducibility).unwrap_or(Value::Null),
        )
    }
    /// The report as a dict (camelCase keys, the JSON shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.report).unwrap_or(Value::Null),
        )
    }
    /// The report as compact JSON; `indent=True` for indented JSON.
    #[pyo3(signature = (indent = false))]
    fn to_json(&self, indent: bool) -> String {
        if indent {
            self.report.to_json_pretty()
        } else {
            self.report.to_json()
        }
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
                0,
                "samples were not kept: call simulate(..., keep_samples=True)".into(),
                None,
            ));
        };
        let d = PyDict::new(py);
        for (name, v) in s {
            d.set_item(name, PyArray1::from_slice(py, v))?;
        }
        Ok(d)
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
        let args = (me.report.to_json(), samples).into_pyobject(py)?;
        Ok((ctor, args))
    }
}

#[pyfunction]
fn _report_from_state(
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
struct PartialResult {
    inner: sim::PartialResult,
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
    fn to_json(&self) -> String {
        self.inner.to_json()
    }
    /// Parse a partial serialized with `to_json`.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        let inner = sim::PartialResult::from_json(text).map_err(|e| to_py_err(py, e))?;
        Ok(PartialResult { inner })
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("PartialResult")?
            .getattr("from_json")?;
        Ok((ctor, (slf.get().inner.to_json(),).into_pyobject(py)?))
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

// ---------------------------------------------------------------- functions

fn run_options(py: Python<'_>, threads: Option<i64>, keep_samples: bool) -> PyResult<RunOptions> {
    let threads = match threads {
        None => None,
        Some(t) if (1..=4096).contains(&t) => Some(t as usize),
        Some(t) => {
            return Err(validation(
                py,
                "",
                format!("threads must be between 1 and 4096 (got {t})"),
            ));
        }
    };
    Ok(RunOptions {
        threads,
        keep_samples,
    })
}

fn percentile_mode(py: Python<'_>, s: &str) -> PyResult<PercentileMode> {
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

fn request_from(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<SimulationRequest> {
    let v = document(py, obj, "")?;
    SimulationRequest::from_value(&v).map_err(|e| to_py_err(py, e))
}

fn int_arg(py: Python<'_>, v: i128, name: &str, pointer: &str) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| {
        validation(
            py,
            pointer,
            format!("{name} must be a non-negative integer below 2**64 (got {v})"),
        )
    })
}

/// Run the readiness simulation. See the package docs for the parameters.
#[pyfunction]
#[pyo3(signature = (
    workspace, workflow = None, *, iterations = 1000, seed = 42, confidence_level = 0.95,
    convergence_threshold = 0.001, early_termination = false, percentile_mode = "auto",
    threads = None, keep_samples = false
))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword signature
fn simulate(
    py: Python<'_>,
    workspace: &Bound<'_, PyAny>,
    workflow: Option<&Bound<'_, PyAny>>,
    iterations: i128,
    seed: i128,
    confidence_level: f64,
    convergence_threshold: f64,
    early_termination: bool,
    percentile_mode: &str,
    threads: Option<i64>,
    keep_samples: bool,
) -> PyResult<SimulationReport> {
    let mut req = serde_json::json!({
        "workspaceContext": document(py, workspace, "/workspaceContext")?,
        "simulationConfig": {
            "iterations": int_arg(py, iterations, "iterations", "/simulationConfig/iterations")?,
            "randomSeed": int_arg(py, seed, "seed", "/simulationConfig/randomSeed")?,
            "confidenceLevel": confidence_level,
            "convergenceThreshold": convergence_threshold,
            "enableEarlyTermination": early_termination,
        },
    });
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
    if let (Some(w), Some(obj)) = (workflow, req.as_object_mut()) {
        obj.insert("workflowJson".into(), document(py, w, "/workflowJson")?);
    }
    let mut request = SimulationRequest::from_value(&req).map_err(|e| to_py_err(py, e))?;
    request.config.percentile_mode = self::percentile_mode(py, percentile_mode)?;
    let opts = run_options(py, threads, keep_samples)?;
    let out = py
        .detach(|| sim::run(&request, &opts))
        .map_err(|e| to_py_err(py, e))?;
    Ok(SimulationReport::new(out))
}

/// Run a whole request document (`{workspaceContext, workflowJson?, simulationConfig?}`,
/// the shape of the original system's `simulationInput`), as a dict or JSON text.
#[pyfunction]
#[pyo3(signature = (request, *, threads = None, keep_samples = false))]
fn simulate_request(
    py: Python<'_>,
    request: &Bound<'_, PyAny>,
    threads: Option<i64>,
    keep_samples: bool,
) -> PyResult<SimulationReport> {
    let request = request_from(py, request)?;
    let opts = run_options(py, threads, keep_samples)?;
    let out = py
        .detach(|| sim::run(&request, &opts))
        .map_err(|e| to_py_err(py, e))?;
    Ok(SimulationReport::new(out))
}

/// Simulate iterations [start, end) of a request (start a multiple of
/// BLOCK_SIZE; end one too, or the run's iterations).
#[pyfunction]
#[pyo3(signature = (request, start, end, *, threads = None))]
fn simulate_shard(
    py: Python<'_>,
    request: &Bound<'_, PyAny>,
    start: u64,
    end: u64,
    threads: Option<i64>,
) -> PyResult<PartialResult> {
    let request = request_from(py, request)?;
    let opts = run_options(py, threads, false)?;
    let inner = py
        .detach(|| sim::simulate_shard(&request, start, end, &opts))
        .map_err(|e| to_py_err(py, e))?;
    Ok(PartialResult { inner })
}

/// Merge the partial results of every shard of one run into its report.
#[pyfunction]
#[pyo3(signature = (partials, *, threads = None, keep_samples = false))]
fn merge_partials(
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

#[pymodule]
fn _smm_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let [base, validation, shard] = exception_types(py)?;
    m.add("SmmError", base)?;
    m.add("ValidationError", validation)?;
    m.add("ShardError", shard)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MODEL_ID", sim::MODEL_ID)?;
    m.add("BLOCK_SIZE", sim::BLOCK_SIZE)?;
    m.add("MAX_ITERATIONS", sim::MAX_ITERATIONS)?;
    m.add("MAX_EXACT_ITERATIONS", sim::MAX_EXACT_ITERATIONS)?;
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
