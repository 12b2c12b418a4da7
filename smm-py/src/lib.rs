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
use smm_core::contract::{self as core_contract, ContractError};
use smm_core::sim::{
    self, MetricSummary as CoreMetric, PercentileMode, RunOptions, SimulationError,
    SimulationReport as CoreReport, SimulationRequest,
};

// ---------------------------------------------------------------- errors

/// The exception hierarchy: (name, doc, bases as indices into this table or
/// the builtins below). Index order matters: bases come first.
const EXCEPTIONS: [(&str, &str, &[Base]); 8] = [
    (
        "SmmError",
        "Base class of every error raised by smm_core.",
        &[Base::Py(PyBase::Exception)],
    ),
    (
        "ValidationError",
        "Bad input. `pointer` is the JSON pointer of the offending field ('' when none).",
        &[Base::Own(SMM), Base::Py(PyBase::ValueError)],
    ),
    (
        "ShardError",
        "A shard range or a merge of partial results was rejected.",
        &[Base::Own(SMM), Base::Py(PyBase::ValueError)],
    ),
    (
        "ContractError",
        "A contract operation was refused.",
        &[Base::Own(SMM)],
    ),
    (
        "ImmutabilityError",
        "The terms of a signed contract changed without a new contractVersion.",
        &[Base::Own(CONTRACT)],
    ),
    (
        "VersionError",
        "A new contract version is not properly chained: version not increased, \
         previousContractRef not the previous terms hash, or another workspace.",
        &[Base::Own(CONTRACT)],
    ),
    (
        "LifecycleError",
        "A lifecycle transition the table does not allow.",
        &[Base::Own(CONTRACT)],
    ),
    (
        "IntegrityError",
        "A stored snapshot no longer matches its hash.",
        &[Base::Own(CONTRACT)],
    ),
];
const SMM: usize = 0;
const VALIDATION: usize = 1;
const SHARD: usize = 2;
const CONTRACT: usize = 3;
const IMMUTABILITY: usize = 4;
const VERSION: usize = 5;
const LIFECYCLE: usize = 6;
const INTEGRITY: usize = 7;

#[derive(Clone, Copy)]
enum PyBase {
    Exception,
    ValueError,
}

#[derive(Clone, Copy)]
enum Base {
    Own(usize),
    Py(PyBase),
}

static EXCEPTION_TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

fn exception_types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    EXCEPTION_TYPES.get_or_try_init(py, || {
        let mut made: Vec<Py<PyType>> = Vec::new();
        for (name, doc, bases) in EXCEPTIONS {
            let mut b: Vec<Bound<'_, PyType>> = Vec::new();
            for base in bases {
                b.push(match base {
                    Base::Py(PyBase::Exception) => py.get_type::<PyException>(),
                    Base::Py(PyBase::ValueError) => py.get_type::<PyValueError>(),
                    Base::Own(i) => made
                        .get(*i)
                        .map(|t| t.bind(py).clone())
                        .ok_or_else(|| PyException::new_err("exception table out of order"))?,
                });
            }
            let dict = PyDict::new(py);
            dict.set_item("__module__", "smm_core")?;
            dict.set_item("__doc__", doc)?;
            let ty = py
                .get_type::<PyType>()
                .call1((name, PyTuple::new(py, b)?, dict))?;
            made.push(ty.cast_into::<PyType>()?.unbind());
        }
        Ok(made)
    })
}

fn raise(py: Python<'_>, kind: usize, msg: String, pointer: Option<&str>) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let types = exception_types(py)?;
        let ty = types
            .get(kind)
            .or_else(|| types.first())
            .ok_or_else(|| PyException::new_err(msg.clone()))?;
        let exc = ty.bind(py).call1((msg.clone(),))?;
        exc.setattr("pointer", pointer.unwrap_or(""))?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

fn validation(py: Python<'_>, pointer: &str, msg: String) -> PyErr {
    raise(py, VALIDATION, msg, Some(pointer))
}

/// The one place where core errors become Python exceptions.
fn to_py_err(py: Python<'_>, e: SimulationError) -> PyErr {
    match &e {
        SimulationError::InvalidShard { .. } | SimulationError::Merge { .. } => {
            raise(py, SHARD, e.to_string(), None)
        }
        _ => {
            let p = e.pointer().map(str::to_owned);
            raise(py, VALIDATION, e.to_string(), p.as_deref())
        }
    }
}

/// Contract errors: refusals map to the ContractError family, bad input to
/// ValidationError (schema violations attached as `violations`).
fn contract_py_err(py: Python<'_>, e: ContractError) -> PyErr {
    let kind = match &e {
        ContractError::ImmutabilityViolation { .. } => IMMUTABILITY,
        ContractError::VersionNotIncreased { .. }
        | ContractError::BrokenLink { .. }
        | ContractError::DifferentWorkspace { .. } => VERSION,
        ContractError::IllegalTransition { .. } => LIFECYCLE,
        ContractError::SnapshotTampered { .. } => INTEGRITY,
        _ => VALIDATION,
    };
    let err = raise(py, kind, e.to_string(), e.pointer());
    if let ContractError::Schema { violations } = &e {
        let list: Vec<Violation> = violations
            .iter()
            .cloned()
            .map(|inner| Violation { inner })
            .collect();
        let _ = err.value(py).setattr("violations", list);
    }
    err
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
                SMM,
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

// ---------------------------------------------------------------- contracts

/// One problem found by contract validation.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(Clone, PartialEq)]
struct Violation {
    inner: core_contract::Violation,
}

#[pymethods]
impl Violation {
    /// JSON pointer of the offending value.
    #[getter]
    fn pointer(&self) -> &str {
        &self.inner.pointer
    }
    /// Rule id: `schema.<keyword>` or `rule.<name>`.
    #[getter]
    fn rule(&self) -> &str {
        &self.inner.rule
    }
    #[getter]
    fn message(&self) -> &str {
        &self.inner.message
    }
    /// "error" or "warning".
    #[getter]
    fn severity(&self) -> &'static str {
        match self.inner.severity {
            core_contract::Severity::Error => "error",
            core_contract::Severity::Warning => "warning",
        }
    }
    #[getter]
    fn is_error(&self) -> bool {
        self.inner.is_error()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.inner).unwrap_or(Value::Null),
        )
    }
    fn __repr__(&self) -> String {
        format!(
            "Violation(pointer={:?}, rule={:?}, severity={:?}, message={:?})",
            self.inner.pointer,
            self.inner.rule,
            self.severity(),
            self.inner.message
        )
    }
}

fn violations(v: Vec<core_contract::Violation>) -> Vec<Violation> {
    v.into_iter().map(|inner| Violation { inner }).collect()
}

/// `now` as an RFC 3339 string: a str, or a timezone-aware datetime.
fn now_arg(py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = now.cast::<PyString>() {
        return s.extract::<String>();
    }
    if now.hasattr("isoformat")? && now.hasattr("tzinfo")? {
        if now.getattr("tzinfo")?.is_none() {
            return Err(validation(
                py,
                "",
                "now must be a timezone-aware datetime".into(),
            ));
        }
        return now.call_method0("isoformat")?.extract::<String>();
    }
    Err(validation(
        py,
        "",
        "now must be an RFC 3339 string or an aware datetime".into(),
    ))
}

/// A document as JSON text for the canonicalizer: str/bytes as given,
/// Python values through the pointer-aware converter.
fn document_text(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    let v = to_json(py, obj, "")?;
    serde_json::to_vec(&v).map_err(|e| validation(py, "", e.to_string()))
}

/// The RFC 8785 canonical form of a JSON document (text, bytes or a Python value).
#[pyfunction]
fn canonicalize<'py>(py: Python<'py>, doc: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    let text = document_text(py, doc)?;
    let c = py
        .detach(|| smm_core::jcs::canonicalize(&text))
        .map_err(|e| raise(py, VALIDATION, e.to_string(), e.pointer()))?;
    Ok(PyBytes::new(py, &c))
}

fn contract_from(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<core_contract::Contract> {
    if let Ok(c) = doc.cast::<Contract>() {
        return Ok(c.get().inner.clone());
    }
    let text = document_text(py, doc)?;
    let text = String::from_utf8(text).map_err(|e| validation(py, "", e.to_string()))?;
    core_contract::Contract::from_json(&text).map_err(|e| contract_py_err(py, e))
}

/// The terms hash ("sha256:" + 64 hex) of a v2 contract.
#[pyfunction]
fn contract_hash(py: Python<'_>, contract: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(contract_from(py, contract)?.terms_hash().to_string())
}

/// Every violation of a contract document at `now`: schema, then business rules.
#[pyfunction]
fn validate_contract(
    py: Python<'_>,
    doc: &Bound<'_, PyAny>,
    now: &Bound<'_, PyAny>,
) -> PyResult<Vec<Violation>> {
    let text = document_text(py, doc)?;
    let now = now_arg(py, now)?;
    core_contract::validate_document(&text, &now)
        .map(violations)
        .map_err(|e| contract_py_err(py, e))
}

/// Migrate a v1 contract document to v2 (returns a dict).
#[pyfunction]
fn migrate_v1<'py>(py: Python<'py>, doc: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let text = document_text(py, doc)?;
    let text = String::from_utf8(text).map_err(|e| validation(py, "", e.to_string()))?;
    let v1 = core_contract::parse_document(&text).map_err(|e| contract_py_err(py, e))?;
    let v2 = core_contract::migrate_v1(&v1).map_err(|e| contract_py_err(py, e))?;
    from_json(py, &v2)
}

/// A schema-valid v2 workspace contract with its terms hash. Immutable:
/// `transition` returns a new Contract. Picklable.
#[pyclass(module = "smm_core", frozen)]
struct Contract {
    inner: core_contract::Contract,
}

#[pymethods]
impl Contract {
    /// Parse a v2 contract (JSON text, bytes or dict). Bad input raises
    /// ValidationError (with `.violations` for schema violations).
    #[staticmethod]
    fn from_json(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Contract {
            inner: contract_from(py, doc)?,
        })
    }
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.inner.contract().workspace_id
    }
    #[getter]
    fn tenant_id(&self) -> &str {
        &self.inner.contract().tenant_id
    }
    #[getter]
    fn contract_version(&self) -> &str {
        &self.inner.contract().contract_version
    }
    #[getter]
    fn lifecycle(&self) -> &'static str {
        self.inner.contract().lifecycle.as_str()
    }
    #[getter]
    fn previous_contract_ref(&self) -> Option<&str> {
        self.inner.contract().previous_contract_ref.as_deref()
    }
    /// "sha256:" + hex SHA-256 of the canonical terms.
    #[getter]
    fn terms_hash(&self) -> &str {
        self.inner.terms_hash()
    }
    /// `<workspaceId>-<contractVersion>`.
    #[getter]
    fn contract_id(&self) -> String {
        self.inner.contract_id()
    }
    /// Business-rule violations at `now` (an RFC 3339 string or an aware datetime).
    fn validate(&self, py: Python<'_>, now: &Bound<'_, PyAny>) -> PyResult<Vec<Violation>> {
        let now = now_arg(py, now)?;
        self.inner
            .validate(&now)
            .map(violations)
            .map_err(|e| contract_py_err(py, e))
    }
    /// Check the change from this contract to `next` (a Contract, dict or
    /// JSON): returns {"kind": "sameTerms"} or {"kind": "newVersion", ...};
    /// raises ImmutabilityError or VersionError.
    fn check_change<'py>(
        &self,
        py: Python<'py>,
        next: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let next = contract_from(py, next)?;
        let kind = self
            .inner
            .check_change(&next)
            .map_err(|e| contract_py_err(py, e))?;
        from_json(py, &serde_json::to_value(&kind).unwrap_or(Value::Null))
    }
    /// A copy in lifecycle state `to`; raises LifecycleError when the table forbids it.
    fn transition(&self, py: Python<'_>, to: &str) -> PyResult<Contract> {
        let target = core_contract::Lifecycle::parse(to).ok_or_else(|| {
            validation(py, "/lifecycle", format!("unknown lifecycle state {to:?}"))
        })?;
        let inner = self
            .inner
            .transition(target)
            .map_err(|e| contract_py_err(py, e))?;
        Ok(Contract { inner })
    }
    /// The snapshot stored in audit bundles, as a dict.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(self.inner.snapshot()).unwrap_or(Value::Null),
        )
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(py, self.inner.document())
    }
    /// The canonical (RFC 8785) JSON of the document.
    fn to_json(&self) -> String {
        self.inner.to_canonical_json()
    }
    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other
            .cast::<Contract>()
            .map(|o| o.get().inner == self.inner)
            .unwrap_or(false)
    }
    fn __repr__(&self) -> String {
        format!(
            "Contract(contract_id={:?}, lifecycle={:?}, terms_hash={:?})",
            self.inner.contract_id(),
            self.lifecycle(),
            self.inner.terms_hash()
        )
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("Contract")?
            .getattr("from_json")?;
        Ok((
            ctor,
            (slf.get().inner.to_canonical_json(),).into_pyobject(py)?,
        ))
    }
}

/// The stored versions of one workspace's contract.
#[pyclass(module = "smm_core")]
struct ContractHistory {
    items: Vec<Value>,
}

fn history_item(py: Python<'_>, item: &Bound<'_, PyAny>, i: usize) -> PyResult<Value> {
    if let Ok(c) = item.cast::<Contract>() {
        return serde_json::to_value(c.get().inner.snapshot())
            .map_err(|e| validation(py, "", e.to_string()));
    }
    let text = document_text(py, item)?;
    serde_json::from_slice(&text)
        .map_err(|e| validation(py, &format!("/{i}"), format!("item {i}: {e}")))
}

#[pymethods]
impl ContractHistory {
    /// From Contracts, contract dicts/JSON, or stored snapshot dicts.
    #[new]
    #[pyo3(signature = (items = None))]
    fn new(py: Python<'_>, items: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let mut h = ContractHistory { items: Vec::new() };
        if let Some(items) = items {
            for item in items.try_iter()? {
                let n = h.items.len();
                h.items.push(history_item(py, &item?, n)?);
            }
        }
        Ok(h)
    }
    /// Add a version (Contract, contract dict/JSON or snapshot dict).
    fn add(&mut self, py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<()> {
        let n = self.items.len();
        self.items.push(history_item(py, item, n)?);
        Ok(())
    }
    fn __len__(&self) -> usize {
        self.items.len()
    }
    /// Verify the chain: {"valid", "versions", "head", "issues": [{"kind",
    /// "contractId", "message"}]}. A broken chain is reported, not raised.
    fn verify<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let h = core_contract::ContractHistory::from_json_items(&Value::Array(self.items.clone()))
            .map_err(|e| contract_py_err(py, e))?;
        from_json(py, &serde_json::to_value(h.verify()).unwrap_or(Value::Null))
    }
}

#[pymodule]
fn _smm_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for ((name, _, _), ty) in EXCEPTIONS.iter().zip(exception_types(py)?) {
        m.add(*name, ty.bind(py))?;
    }
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
    m.add_class::<Violation>()?;
    m.add_class::<Contract>()?;
    m.add_class::<ContractHistory>()?;
    m.add_function(wrap_pyfunction!(canonicalize, m)?)?;
    m.add_function(wrap_pyfunction!(contract_hash, m)?)?;
    m.add_function(wrap_pyfunction!(validate_contract, m)?)?;
    m.add_function(wrap_pyfunction!(migrate_v1, m)?)?;
    Ok(())
}
