//! Policies: `PolicyBundle` (Rego through regorus), `Decision`,
//! `decision_card`.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use serde_json::Value;
use smm_core::policy::{self as core_policy, EvalMode};

use crate::contracts::contract_from;
use crate::convert::{document, from_json, to_json, to_py, to_value};
use crate::errors::{to_py_err, validation};
use crate::simulation::SimulationReport;

/// A compiled policy bundle (Rego modules + JSON data). Load it once and
/// evaluate it from any thread; evaluation releases the GIL. Picklable.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct PolicyBundle {
    pub(crate) inner: core_policy::PolicyBundle,
}

fn mode(py: Python<'_>, engine: &str) -> PyResult<EvalMode> {
    match engine {
        "vm" => Ok(EvalMode::Vm),
        "interpreter" => Ok(EvalMode::Interpreter),
        "native" => Ok(EvalMode::Native),
        _ => Err(validation(
            py,
            "",
            format!("engine must be 'vm', 'interpreter' or 'native' (got {engine:?})"),
        )),
    }
}

/// A policy input: a dict, JSON text or bytes, validated against its schema.
fn policy_input(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<core_policy::PolicyInput> {
    let v = document(py, obj, "")?;
    core_policy::PolicyInput::from_value(&v).map_err(|e| to_py_err(py, e))
}

/// A policy input validated once, to evaluate many times (on one bundle or
/// several) without validating or converting it again. Immutable; share it
/// between threads freely.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(PartialEq)]
pub(crate) struct PolicyInput {
    pub(crate) inner: core_policy::PolicyInput,
}

#[pymethods]
impl PolicyInput {
    /// Validate a policy input (a dict, JSON text or bytes;
    /// schemas/policy-input.schema.json). With `contract` (a validated
    /// `Contract`), `doc` is the rest of the input without its "workspace",
    /// and the contract is not validated again.
    #[new]
    #[pyo3(signature = (doc, *, contract = None))]
    fn new(
        py: Python<'_>,
        doc: &Bound<'_, PyAny>,
        contract: Option<&Bound<'_, crate::contracts::Contract>>,
    ) -> PyResult<Self> {
        let inner = match contract {
            None => policy_input(py, doc)?,
            Some(c) => {
                let rest = document(py, doc, "")?;
                let c = c.get();
                py.detach(|| core_policy::PolicyInput::with_contract(&c.inner, &rest))
                    .map_err(|e| to_py_err(py, e))?
            }
        };
        Ok(PolicyInput { inner })
    }
    /// The input as the policies see it (defaults filled in), a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v = self.inner.to_value().map_err(|e| to_py_err(py, e))?;
        from_json(py, &v)
    }
    /// Its RFC 8785 canonical JSON (what the evaluation id hashes).
    fn to_json(&self) -> PyResult<String> {
        Ok(String::from_utf8_lossy(self.inner.canonical_json()).into_owned())
    }
    fn __repr__(&self) -> String {
        let d = self.inner.document();
        format!(
            "PolicyInput(workspace={:?}, timestamp={:?})",
            d.workspace.workspace_id, d.timestamp
        )
    }
}

#[pymethods]
impl PolicyBundle {
    /// The default bundle shipped with the library.
    #[staticmethod]
    fn default(py: Python<'_>) -> PyResult<Self> {
        let inner = core_policy::PolicyBundle::default_bundle().map_err(|e| to_py_err(py, e))?;
        Ok(PolicyBundle { inner })
    }
    /// From Rego modules ({path: source}) and optional data (a dict).
    #[staticmethod]
    #[pyo3(signature = (modules, data = None))]
    fn from_modules(
        py: Python<'_>,
        modules: &Bound<'_, PyDict>,
        data: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let mut m = BTreeMap::new();
        for (k, v) in modules.iter() {
            let path: String = k
                .extract()
                .map_err(|_| validation(py, "", "module paths must be strings".into()))?;
            let src: String = v.extract().map_err(|_| {
                validation(
                    py,
                    "",
                    format!("the source of module {path:?} must be a string"),
                )
            })?;
            m.insert(path, src);
        }
        let data = data.map(|d| to_json(py, d, "/data")).transpose()?;
        let inner = py
            .detach(|| core_policy::PolicyBundle::from_modules(m, data))
            .map_err(|e| to_py_err(py, e))?;
        Ok(PolicyBundle { inner })
    }
    /// From a directory laid out as `opa build` expects (regular files
    /// only). With `checksum` (a contract's policyBundleChecksum), the
    /// files' checksum is compared with it before any source is parsed
    /// (PolicyChecksumError: a bundle off the pin never runs).
    ///
    /// Parameters:
    /// - path: a directory of .rego modules and data.json files
    /// - checksum: the pin (64 lowercase hex), or None
    #[staticmethod]
    #[pyo3(signature = (path, checksum = None))]
    fn from_dir(
        py: Python<'_>,
        path: std::path::PathBuf,
        checksum: Option<String>,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| match &checksum {
                Some(pin) => core_policy::PolicyBundle::from_dir_pinned(&path, pin),
                None => core_policy::PolicyBundle::from_dir(&path),
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PolicyBundle { inner })
    }
    /// From an OPA bundle archive (`opa build`'s .tar.gz: one gzip member,
    /// nothing after it). With `checksum`, pinned as `from_dir` is.
    ///
    /// Parameters:
    /// - path: an OPA bundle archive (.tar.gz)
    /// - checksum: the pin (64 lowercase hex), or None
    #[staticmethod]
    #[pyo3(signature = (path, checksum = None))]
    fn from_archive(
        py: Python<'_>,
        path: std::path::PathBuf,
        checksum: Option<String>,
    ) -> PyResult<Self> {
        let inner = py
            .detach(|| match &checksum {
                Some(pin) => core_policy::PolicyBundle::from_archive_pinned(&path, pin),
                None => core_policy::PolicyBundle::from_archive(&path),
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(PolicyBundle { inner })
    }
    /// 64 lowercase hex: a contract's policyBundleChecksum.
    #[getter]
    fn checksum(&self) -> &str {
        self.inner.checksum()
    }
    /// True when the bundle decides on engine="native": its policy modules
    /// are the default bundle's and its data has the default's shape.
    #[getter]
    fn has_native(&self) -> bool {
        self.inner.has_native()
    }
    /// Every module, tests included: {path: source}.
    #[getter]
    fn modules(&self) -> BTreeMap<String, String> {
        self.inner.modules().clone()
    }
    /// The bundle's data document (a dict).
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        from_json(py, self.inner.data())
    }
    /// Evaluate data.smm.decision on `input`: a `PolicyInput` (validated
    /// once: the fast way to decide many times), or a dict or JSON,
    /// validated on every call.
    /// `engine` is "vm" (the default), "interpreter" or "native" (the
    /// default bundle's rules in Rust, see `has_native`: the same
    /// decisions in microseconds, its `engine` "smm-native"); all agree.
    #[pyo3(signature = (input, *, engine = "vm"))]
    fn evaluate(
        &self,
        py: Python<'_>,
        input: &Bound<'_, PyAny>,
        engine: &str,
    ) -> PyResult<Decision> {
        let mode = mode(py, engine)?;
        // A prepared input is evaluated as it is; anything else is
        // validated first.
        let inner = if let Ok(prepared) = input.cast::<PolicyInput>() {
            let prepared = prepared.get();
            py.detach(|| self.inner.evaluate_with(&prepared.inner, mode))
        } else {
            let input = policy_input(py, input)?;
            py.detach(|| self.inner.evaluate_with(&input, mode))
        }
        .map_err(|e| to_py_err(py, e))?;
        Ok(Decision { inner })
    }
    /// Evaluate any rule path (`data.pkg.rule`) on any input (dict or JSON);
    /// None when the rule is undefined for it.
    ///
    /// Parameters:
    /// - rule_path: a rule, e.g. "data.smm.budget.workflow_cost"
    /// - input: any JSON document (dict or text)
    fn query<'py>(
        &self,
        py: Python<'py>,
        rule_path: &str,
        input: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let input = document(py, input, "")?;
        let out = py
            .detach(|| self.inner.query(rule_path, &input))
            .map_err(|e| to_py_err(py, e))?;
        match out {
            Some(v) => from_json(py, &v),
            None => Ok(py.None().into_bound(py)),
        }
    }
    /// Run the bundle's Rego unit tests (`test_*` rules, `opa test`
    /// semantics) with rule coverage: {"results": [{"name", "module",
    /// "line", "outcome", "message"?}], "passed", "failed", "skipped",
    /// "coverage": [{"path", "covered", "notCovered"}], "coveragePercent"}.
    fn test<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let report = py
            .detach(|| self.inner.test())
            .map_err(|e| to_py_err(py, e))?;
        to_py(py, &report)
    }
    fn __repr__(&self) -> String {
        format!(
            "PolicyBundle(checksum={:?}, modules={})",
            self.inner.checksum(),
            self.inner.modules().len()
        )
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let me = &slf.get().inner;
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("PolicyBundle")?
            .getattr("from_modules")?;
        let data = from_json(py, me.data())?;
        Ok((ctor, (me.modules().clone(), data).into_pyobject(py)?))
    }
}

/// A policy decision: allow, deny, warnings, reasons (sorted codes),
/// require_human_approval, the bundle checksum, the engine and a
/// deterministic evaluation id. Picklable.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct Decision {
    pub(crate) inner: core_policy::Decision,
}

#[pymethods]
impl Decision {
    #[getter]
    fn allow(&self) -> bool {
        self.inner.allow
    }
    #[getter]
    fn deny(&self) -> Vec<String> {
        self.inner.deny.clone()
    }
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner.warnings.clone()
    }
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }
    #[getter]
    fn require_human_approval(&self) -> bool {
        self.inner.require_human_approval
    }
    #[getter]
    fn evaluation_id(&self) -> &str {
        &self.inner.evaluation_id
    }
    #[getter]
    fn bundle_checksum(&self) -> &str {
        &self.inner.bundle_checksum
    }
    #[getter]
    fn engine(&self) -> &str {
        &self.inner.engine
    }
    #[getter]
    fn engine_version(&self) -> &str {
        &self.inner.engine_version
    }
    #[getter]
    fn evaluated_at(&self) -> &str {
        &self.inner.evaluated_at
    }
    /// The decision as a dict (its JSON shape, camelCase keys).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    /// Compact JSON.
    fn to_json(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.to_json().map_err(|e| to_py_err(py, e))
    }
    /// A decision from its dict or JSON form (checked).
    ///
    /// Parameters:
    /// - doc: a decision as JSON text, bytes or a dict
    #[staticmethod]
    fn from_json(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<Self> {
        decision_from(py, doc)
    }
    fn __bool__(&self) -> bool {
        self.inner.allow
    }
    fn __repr__(&self) -> String {
        format!(
            "Decision(allow={}, deny={:?}, require_human_approval={}, evaluation_id={:?})",
            self.inner.allow,
            self.inner.deny,
            self.inner.require_human_approval,
            self.inner.evaluation_id
        )
    }
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let ctor = py
            .import("smm_core._smm_core")?
            .getattr("Decision")?
            .getattr("from_json")?;
        Ok((
            ctor,
            (slf.get().inner.to_json().map_err(|e| to_py_err(py, e))?,).into_pyobject(py)?,
        ))
    }
}

/// A Decision object, or its dict / JSON form.
pub(crate) fn decision_from(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Decision> {
    if let Ok(d) = obj.cast::<Decision>() {
        return Ok(d.get().clone());
    }
    let v = document(py, obj, "")?;
    core_policy::Decision::from_value(&v)
        .map(|inner| Decision { inner })
        .map_err(|e| to_py_err(py, e))
}

/// A decision as JSON (for the assembler).
pub(crate) fn decision_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    to_value(py, &decision_from(py, obj)?.inner)
}

/// The decision card (a dict) of a simulation report (SimulationReport or
/// dict), a decision (Decision or dict) and the contract (Contract, dict or
/// JSON): action auto_approve, human_approval or deny, with reason codes,
/// the canary plan and the cost against the budget. Raises
/// PolicyChecksumError when the decision's bundle is not the contract's.
#[pyfunction]
pub(crate) fn decision_card<'py>(
    py: Python<'py>,
    report: &Bound<'py, PyAny>,
    decision: &Bound<'py, PyAny>,
    contract: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let report = if let Ok(r) = report.cast::<SimulationReport>() {
        r.get().report.clone()
    } else {
        let v = document(py, report, "/report")?;
        if v.is_string() {
            return Err(validation(
                py,
                "/report",
                "the report must be an object".into(),
            ));
        }
        serde_path_to_error::deserialize(&v).map_err(|e| {
            let p = smm_core::sim::SimulationError::from_path_error(&e);
            validation(
                py,
                &format!("/report{p}"),
                format!("not a simulation report: {}", e.inner()),
            )
        })?
    };
    let decision = decision_from(py, decision)?.inner;
    let contract = contract_from(py, contract)?;
    let card =
        core_policy::decision_card(&report, &decision, &contract).map_err(|e| to_py_err(py, e))?;
    to_py(py, &card)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PolicyBundle>()?;
    m.add_class::<PolicyInput>()?;
    m.add_class::<Decision>()?;
    m.add_function(wrap_pyfunction!(decision_card, m)?)?;
    m.add("DECISION_RULE", core_policy::DECISION_RULE)?;
    m.add("REGORUS_VERSION", core_policy::REGORUS_VERSION)?;
    Ok(())
}
