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
use smm_core::audit::{self as core_audit, AuditError};
use smm_core::contract::{self as core_contract, ContractError};
use smm_core::sim::{
    self, MetricSummary as CoreMetric, PercentileMode, RunOptions, SimulationError,
    SimulationReport as CoreReport, SimulationRequest,
};

// ---------------------------------------------------------------- errors

/// The exception hierarchy: (name, doc, bases as indices into this table or
/// the builtins below). Index order matters: bases come first.
const EXCEPTIONS: [(&str, &str, &[Base]); 13] = [
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
    (
        "AuditError",
        "An audit bundle operation failed.",
        &[Base::Own(SMM)],
    ),
    (
        "SignerError",
        "A signer failed, or answered a signature that does not verify under its public key.",
        &[Base::Own(AUDIT)],
    ),
    (
        "StorageError",
        "A bundle store operation failed.",
        &[Base::Own(AUDIT)],
    ),
    (
        "BundleConflictError",
        "Different bytes are already stored under this bundle id.",
        &[Base::Own(STORAGE)],
    ),
    (
        "CorruptBundleError",
        "Stored bytes no longer match their bundle id.",
        &[Base::Own(STORAGE)],
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
const AUDIT: usize = 8;
const SIGNER: usize = 9;
const STORAGE: usize = 10;
const CONFLICT: usize = 11;
const CORRUPT: usize = 12;

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

/// Audit errors: bad input to ValidationError, the rest to the AuditError family.
fn audit_py_err(py: Python<'_>, e: AuditError) -> PyErr {
    let kind = match &e {
        AuditError::SignerFailed { .. } | AuditError::BadSignerAnswer { .. } => SIGNER,
        AuditError::Storage { .. } => STORAGE,
        AuditError::Conflict { .. } => CONFLICT,
        AuditError::Corrupt { .. } => CORRUPT,
        AuditError::InvalidEnvelope { .. } => AUDIT,
        _ => VALIDATION,
    };
    raise(py, kind, e.to_string(), e.pointer())
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

// ---------------------------------------------------------------- audit bundles

enum SignerKind {
    Local(core_audit::LocalSigner),
    External(core_audit::ExternalSigner),
}

impl SignerKind {
    fn signer(&self) -> &dyn core_audit::Signer {
        match self {
            SignerKind::Local(s) => s,
            SignerKind::External(s) => s,
        }
    }
}

/// A P-256 private key held in this process (RFC 6979 deterministic
/// signatures). Its repr never shows the key.
#[pyclass(module = "smm_core", frozen)]
struct LocalSigner {
    inner: SignerKind,
}

#[pymethods]
impl LocalSigner {
    /// A new random key (OS entropy).
    #[staticmethod]
    fn generate(py: Python<'_>, key_id: &str) -> PyResult<Self> {
        for _ in 0..16 {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret)
                .map_err(|e| raise(py, SIGNER, format!("no entropy: {e}"), None))?;
            if let Ok(s) = core_audit::LocalSigner::from_secret_bytes(key_id, &secret) {
                return Ok(LocalSigner {
                    inner: SignerKind::Local(s),
                });
            }
        }
        Err(raise(py, SIGNER, "could not draw a valid key".into(), None))
    }
    /// From a PKCS#8 PEM private key.
    #[staticmethod]
    fn from_pem(py: Python<'_>, key_id: &str, pem: &str) -> PyResult<Self> {
        let s = core_audit::LocalSigner::from_pkcs8_pem(key_id, pem)
            .map_err(|e| audit_py_err(py, e))?;
        Ok(LocalSigner {
            inner: SignerKind::Local(s),
        })
    }
    /// Sign a 32-byte SHA-256 digest: strict DER, low S (checked against
    /// the public key).
    fn sign_digest<'py>(&self, py: Python<'py>, digest: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        sign_digest_with(py, &self.inner, digest)
    }
    /// The private key as PKCS#8 PEM. Handle with care.
    fn to_pem(&self, py: Python<'_>) -> PyResult<String> {
        match &self.inner {
            SignerKind::Local(s) => s.to_pkcs8_pem().map_err(|e| audit_py_err(py, e)),
            SignerKind::External(_) => Err(raise(py, SIGNER, "not a local key".into(), None)),
        }
    }
    #[getter]
    fn key_id(&self) -> String {
        self.inner.signer().key_id().to_string()
    }
    /// The public key as SPKI PEM.
    #[getter]
    fn public_key_pem(&self) -> String {
        core_audit::public_key_pem(self.inner.signer().public_key())
    }
    fn __repr__(&self) -> String {
        format!("LocalSigner(key_id={:?})", self.inner.signer().key_id())
    }
}

/// A signer whose key lives elsewhere (AWS KMS `Sign` with ECDSA_SHA_256 and
/// MessageType DIGEST, GCP KMS, an HSM): `sign_digest(digest: bytes) ->
/// bytes` returns a DER or P1363 signature of the 32-byte digest. Answers
/// are verified against `public_key_pem` before use.
#[pyclass(module = "smm_core", frozen)]
struct ExternalSigner {
    inner: SignerKind,
}

#[pymethods]
impl ExternalSigner {
    #[new]
    fn new(
        py: Python<'_>,
        key_id: &str,
        public_key_pem: &str,
        sign_digest: Py<PyAny>,
    ) -> PyResult<Self> {
        if !sign_digest.bind(py).is_callable() {
            return Err(validation(py, "", "sign_digest must be callable".into()));
        }
        let callback: core_audit::SignCallback = Box::new(move |digest: &[u8; 32]| {
            Python::attach(|py| {
                let out = sign_digest
                    .bind(py)
                    .call1((PyBytes::new(py, digest),))
                    .map_err(|e| format!("sign_digest raised {e}"))?;
                out.extract::<Vec<u8>>()
                    .map_err(|_| "sign_digest must return bytes".to_string())
            })
        });
        let s = core_audit::ExternalSigner::new(key_id, public_key_pem.as_bytes(), callback)
            .map_err(|e| audit_py_err(py, e))?;
        Ok(ExternalSigner {
            inner: SignerKind::External(s),
        })
    }
    #[getter]
    fn key_id(&self) -> String {
        self.inner.signer().key_id().to_string()
    }
    #[getter]
    fn public_key_pem(&self) -> String {
        core_audit::public_key_pem(self.inner.signer().public_key())
    }
    /// Sign a 32-byte SHA-256 digest through the callback (checked).
    fn sign_digest<'py>(&self, py: Python<'py>, digest: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        sign_digest_with(py, &self.inner, digest)
    }
    fn __repr__(&self) -> String {
        format!("ExternalSigner(key_id={:?})", self.inner.signer().key_id())
    }
}

fn sign_digest_with<'py>(
    py: Python<'py>,
    s: &SignerKind,
    digest: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let d: [u8; 32] = digest.try_into().map_err(|_| {
        validation(
            py,
            "",
            format!("digest must be 32 bytes (got {})", digest.len()),
        )
    })?;
    let sig = core_audit::sign_checked(s.signer(), &d).map_err(|e| audit_py_err(py, e))?;
    Ok(PyBytes::new(py, &sig))
}

fn signer_of<'a>(py: Python<'_>, obj: &'a Bound<'_, PyAny>) -> PyResult<&'a SignerKind> {
    if let Ok(l) = obj.cast::<LocalSigner>() {
        return Ok(&l.get().inner);
    }
    if let Ok(e) = obj.cast::<ExternalSigner>() {
        return Ok(&e.get().inner);
    }
    Err(validation(
        py,
        "",
        "signer must be a LocalSigner or an ExternalSigner".into(),
    ))
}

fn report_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(r) = obj.cast::<SimulationReport>() {
        return serde_json::to_value(&r.get().report)
            .map_err(|e| validation(py, "", e.to_string()));
    }
    document(py, obj, "/simulation")
}

fn contract_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(c) = obj.cast::<Contract>() {
        return Ok(c.get().inner.document().clone());
    }
    document(py, obj, "/contract")
}

/// Assemble an audit bundle (returns it as a dict). `audit_trail` is a list
/// of events to chain ({timestamp, event, actor, details}) or an already
/// chained trail (every event with its eventHash).
#[pyfunction]
#[pyo3(signature = (contract, simulation, *, created_at, audit_trail, policy_decision = None,
                    decision_card = None, agent_runs = None, previous_bundle_ref = None))]
#[allow(clippy::too_many_arguments)] // mirrors the Python keyword signature
fn assemble_bundle<'py>(
    py: Python<'py>,
    contract: &Bound<'py, PyAny>,
    simulation: &Bound<'py, PyAny>,
    created_at: &Bound<'py, PyAny>,
    audit_trail: &Bound<'py, PyAny>,
    policy_decision: Option<&Bound<'py, PyAny>>,
    decision_card: Option<&Bound<'py, PyAny>>,
    agent_runs: Option<&Bound<'py, PyAny>>,
    previous_bundle_ref: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let opt = |o: Option<&Bound<'py, PyAny>>, p: &str| -> PyResult<Value> {
        o.map_or(Ok(Value::Null), |v| to_json(py, v, p))
    };
    let request = serde_json::json!({
        "contract": contract_value(py, contract)?,
        "createdAt": now_arg(py, created_at)?,
        "simulation": report_value(py, simulation)?,
        "policyDecision": opt(policy_decision, "/policyDecision")?,
        "decisionCard": opt(decision_card, "/decisionCard")?,
        "agentRuns": agent_runs.map_or(Ok(Value::Array(vec![])), |v| to_json(py, v, "/agentRuns"))?,
        "auditTrail": to_json(py, audit_trail, "/auditTrail")?,
        "previousBundleRef": previous_bundle_ref,
    });
    let bundle = core_audit::assemble_request(&request).map_err(|e| audit_py_err(py, e))?;
    from_json(py, &serde_json::to_value(&bundle).unwrap_or(Value::Null))
}

fn bundle_from(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<core_audit::AuditBundle> {
    let v = document(py, obj, "")?;
    serde_path_to_error::deserialize(&v).map_err(|e| {
        let pointer = SimulationError::from_path_error(&e);
        validation(
            py,
            &pointer,
            format!("not an audit bundle at {pointer:?}: {}", e.inner()),
        )
    })
}

/// The id of a bundle: "sha256:" + hex of its canonical bytes.
#[pyfunction]
fn bundle_id(py: Python<'_>, bundle: &Bound<'_, PyAny>) -> PyResult<String> {
    bundle_from(py, bundle)?
        .id()
        .map_err(|e| audit_py_err(py, e))
}

/// Sign a bundle: the DSSE envelope (JSON bytes).
#[pyfunction]
fn sign_bundle<'py>(
    py: Python<'py>,
    bundle: &Bound<'py, PyAny>,
    signer: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let b = bundle_from(py, bundle)?;
    let s = signer_of(py, signer)?;
    let env = core_audit::sign_bundle(&b, &[s.signer()]).map_err(|e| audit_py_err(py, e))?;
    Ok(PyBytes::new(py, &env))
}

/// The outcome of verifying a signed bundle.
#[pyclass(module = "smm_core", frozen)]
struct VerificationResult {
    inner: core_audit::VerificationResult,
}

#[pymethods]
impl VerificationResult {
    #[getter]
    fn verified(&self) -> bool {
        self.inner.verified
    }
    #[getter]
    fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }
    #[getter]
    fn bundle_id(&self) -> Option<&str> {
        self.inner.bundle_id.as_deref()
    }
    /// [{"name", "ok", "detail"}], in the order the checks ran.
    #[getter]
    fn checks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.inner.checks).unwrap_or(Value::Null),
        )
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(
            py,
            &serde_json::to_value(&self.inner).unwrap_or(Value::Null),
        )
    }
    fn __bool__(&self) -> bool {
        self.inner.verified
    }
    fn __repr__(&self) -> String {
        format!(
            "VerificationResult(verified={}, key_id={:?}, bundle_id={:?})",
            self.inner.verified, self.inner.key_id, self.inner.bundle_id
        )
    }
}

fn bytes_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<u8>> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(s.extract::<String>()?.into_bytes());
    }
    obj.extract::<Vec<u8>>()
        .map_err(|_| validation(py, "", format!("{name} must be bytes or str")))
}

fn trusted_from(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Vec<core_audit::TrustedKey>> {
    let pairs: Vec<(String, Bound<'_, PyAny>)> = if let Ok(d) = obj.cast::<PyDict>() {
        d.iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, v)))
            .collect::<PyResult<_>>()?
    } else {
        obj.try_iter()?
            .map(|i| i?.extract::<(String, Bound<'_, PyAny>)>())
            .collect::<PyResult<_>>()?
    };
    pairs
        .into_iter()
        .map(|(id, key)| {
            let k = bytes_arg(py, &key, "a trusted public key")?;
            core_audit::TrustedKey::new(&id, &k).map_err(|e| audit_py_err(py, e))
        })
        .collect()
}

/// Verify a signed bundle offline against trusted keys ({key_id: public key
/// PEM/DER/SEC1} or [(key_id, key)]).
#[pyfunction]
#[pyo3(signature = (envelope, trusted_keys, *, expected_bundle_id = None))]
fn verify_bundle(
    py: Python<'_>,
    envelope: &Bound<'_, PyAny>,
    trusted_keys: &Bound<'_, PyAny>,
    expected_bundle_id: Option<String>,
) -> PyResult<VerificationResult> {
    let env = bytes_arg(py, envelope, "envelope")?;
    let keys = trusted_from(py, trusted_keys)?;
    let inner =
        py.detach(|| core_audit::verify_envelope(&env, &keys, expected_bundle_id.as_deref()));
    Ok(VerificationResult { inner })
}

/// Verify many signed bundles on `threads` threads (default: every core).
#[pyfunction]
#[pyo3(signature = (envelopes, trusted_keys, *, threads = None))]
fn verify_bundles(
    py: Python<'_>,
    envelopes: &Bound<'_, PyAny>,
    trusted_keys: &Bound<'_, PyAny>,
    threads: Option<i64>,
) -> PyResult<Vec<VerificationResult>> {
    let envs: Vec<Vec<u8>> = envelopes
        .try_iter()?
        .map(|e| bytes_arg(py, &e?, "envelope"))
        .collect::<PyResult<_>>()?;
    let keys = trusted_from(py, trusted_keys)?;
    let threads = run_options(py, threads, false)?.threads;
    let out = py.detach(|| core_audit::verify_envelopes(&envs, &keys, threads));
    Ok(out
        .into_iter()
        .map(|inner| VerificationResult { inner })
        .collect())
}

/// Verify a workspace's bundles (dicts) through previousBundleRef.
#[pyfunction]
fn verify_bundle_chain<'py>(
    py: Python<'py>,
    bundles: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let bs: Vec<core_audit::AuditBundle> = bundles
        .try_iter()?
        .map(|b| bundle_from(py, &b?))
        .collect::<PyResult<_>>()?;
    let r = core_audit::verify_bundle_chain(&bs).map_err(|e| audit_py_err(py, e))?;
    from_json(py, &serde_json::to_value(r).unwrap_or(Value::Null))
}

/// ECDSA P-256 / SHA-256: does `signature` (format "der" or "p1363") sign
/// `message` under `public_key` (PEM, SPKI DER or SEC1)?
#[pyfunction]
#[pyo3(signature = (public_key, message, signature, format = "der"))]
fn ecdsa_p256_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &[u8],
    signature: &[u8],
    format: &str,
) -> PyResult<bool> {
    let f = core_audit::SignatureFormat::parse(format).ok_or_else(|| {
        validation(
            py,
            "",
            format!("format must be 'der' or 'p1363' (got {format:?})"),
        )
    })?;
    let key = bytes_arg(py, public_key, "public_key")?;
    core_audit::ecdsa_p256_verify(&key, message, signature, f).map_err(|e| audit_py_err(py, e))
}

/// Signed bundles on disk: `audit-bundles/YYYY-MM-DD/bundle-<ws>-<time>-<short id>.json.gz`
/// and `audit-snapshots/<id>/contract.json.gz`, written atomically; never overwritten.
#[pyclass(module = "smm_core", frozen)]
struct FileBundleStore {
    inner: core_audit::store::FileBundleStore,
}

#[pymethods]
impl FileBundleStore {
    #[new]
    fn new(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let inner =
            core_audit::store::FileBundleStore::open(path).map_err(|e| audit_py_err(py, e))?;
        Ok(FileBundleStore { inner })
    }
    /// Store a signed bundle (envelope bytes); returns its id. Same bytes
    /// again: no-op. Other bytes under the id: BundleConflictError.
    fn put(&self, py: Python<'_>, envelope: &Bound<'_, PyAny>) -> PyResult<String> {
        use core_audit::store::BundleStore;
        let env = bytes_arg(py, envelope, "envelope")?;
        let b = core_audit::store::StoredBundle::from_envelope(&env)
            .map_err(|e| audit_py_err(py, e))?;
        let id = b.bundle_id.clone();
        py.detach(|| self.inner.put(&b))
            .map_err(|e| audit_py_err(py, e))?;
        Ok(id)
    }
    /// The envelope stored under `bundle_id` (checked), or None.
    fn get<'py>(&self, py: Python<'py>, bundle_id: &str) -> PyResult<Option<Bound<'py, PyBytes>>> {
        use core_audit::store::BundleStore;
        let b = py
            .detach(|| self.inner.get(bundle_id))
            .map_err(|e| audit_py_err(py, e))?;
        Ok(b.map(|b| PyBytes::new(py, &b.envelope)))
    }
    /// A workspace's bundles created in [start, end): [{"bundleId", "workspaceId", "createdAt"}].
    #[pyo3(signature = (workspace_id, start = None, end = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        workspace_id: &str,
        start: Option<&Bound<'py, PyAny>>,
        end: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let start = start.map(|s| now_arg(py, s)).transpose()?;
        let end = end.map(|s| now_arg(py, s)).transpose()?;
        let items = py
            .detach(|| {
                self.inner
                    .list(workspace_id, start.as_deref(), end.as_deref())
            })
            .map_err(|e| audit_py_err(py, e))?;
        let v: Vec<Value> = items
            .into_iter()
            .map(|b| serde_json::json!({"bundleId": b.bundle_id, "workspaceId": b.workspace_id, "createdAt": b.created_at}))
            .collect();
        from_json(py, &Value::Array(v))
    }
    /// The contract snapshot stored with a bundle (a dict), or None.
    fn snapshot<'py>(&self, py: Python<'py>, bundle_id: &str) -> PyResult<Bound<'py, PyAny>> {
        match self
            .inner
            .get_snapshot(bundle_id)
            .map_err(|e| audit_py_err(py, e))?
        {
            None => Ok(py.None().into_bound(py)),
            Some(b) => from_json(py, &serde_json::from_slice(&b).unwrap_or(Value::Null)),
        }
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
    m.add_class::<LocalSigner>()?;
    m.add_class::<ExternalSigner>()?;
    m.add_class::<VerificationResult>()?;
    m.add_class::<FileBundleStore>()?;
    m.add_function(wrap_pyfunction!(assemble_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(bundle_id, m)?)?;
    m.add_function(wrap_pyfunction!(sign_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundles, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundle_chain, m)?)?;
    m.add_function(wrap_pyfunction!(ecdsa_p256_verify, m)?)?;
    m.add("BUNDLE_PAYLOAD_TYPE", core_audit::BUNDLE_PAYLOAD_TYPE)?;
    Ok(())
}
