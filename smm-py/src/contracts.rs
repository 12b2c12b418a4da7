//! Workspace contracts: `Contract`, `ContractHistory`, `Violation`,
//! canonicalization, hashing, validation, migration.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString, PyTuple};
use serde_json::Value;
use smm_core::contract as core_contract;

use crate::convert::{bytes_arg, document_text, from_json, now_ts, to_py, to_value};
use crate::errors::{to_py_err, validation};

/// One problem found by contract validation.
#[pyclass(module = "smm_core", frozen, eq)]
#[derive(Clone, PartialEq)]
pub(crate) struct Violation {
    pub(crate) inner: core_contract::Violation,
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
    /// The object as a dict (its JSON schema's shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
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

pub(crate) fn violations(v: Vec<core_contract::Violation>) -> Vec<Violation> {
    v.into_iter().map(|inner| Violation { inner }).collect()
}

/// The RFC 8785 canonical form of a JSON document (text, bytes or a Python value).
///
/// Parameters:
/// - doc: JSON text, bytes, or a Python value
#[pyfunction]
pub(crate) fn canonicalize<'py>(
    py: Python<'py>,
    doc: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let text = document_text(py, doc)?;
    let c = py
        .detach(|| smm_core::jcs::canonicalize(&text))
        .map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, &c))
}

/// Whether JSON text (str or bytes) is its own RFC 8785 canonical form
/// (what a verifier asks of a signed payload: one valid encoding). Text
/// with no canonical form (a duplicate key, a lone surrogate, an inexact
/// integer, not JSON) raises the error `canonicalize` raises.
///
/// Parameters:
/// - text: JSON text, as str or bytes (a Python value has no spelling to judge)
#[pyfunction]
pub(crate) fn is_canonical(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<bool> {
    // A str is UTF-8 already: no second check of its encoding.
    let answer = if let Ok(s) = text.cast::<PyString>() {
        let s: String = s.extract()?;
        py.detach(|| smm_core::jcs::is_canonical_text(&s))
    } else {
        let bytes = bytes_arg(py, text, "text")?;
        py.detach(|| smm_core::jcs::is_canonical(&bytes))
    };
    answer.map_err(|e| to_py_err(py, e))
}

pub(crate) fn contract_from(
    py: Python<'_>,
    doc: &Bound<'_, PyAny>,
) -> PyResult<core_contract::Contract> {
    if let Ok(c) = doc.cast::<Contract>() {
        return Ok(c.get().inner.clone());
    }
    let text = document_text(py, doc)?;
    let text = String::from_utf8(text).map_err(|e| validation(py, "", e.to_string()))?;
    core_contract::Contract::from_json(&text).map_err(|e| to_py_err(py, e))
}

/// The terms hash ("sha256:" + 64 hex) of a v2 contract.
#[pyfunction]
pub(crate) fn contract_hash(py: Python<'_>, contract: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(contract_from(py, contract)?.terms_hash().to_string())
}

/// Every violation of a contract document at `now`: schema, then business rules.
///
/// Parameters:
/// - doc: the contract document (text, bytes or dict)
/// - now: RFC 3339 string, aware datetime or date
#[pyfunction]
pub(crate) fn validate_contract(
    py: Python<'_>,
    doc: &Bound<'_, PyAny>,
    now: &Bound<'_, PyAny>,
) -> PyResult<Vec<Violation>> {
    let text = document_text(py, doc)?;
    let now = now_ts(py, now)?;
    core_contract::validate_document(&text, now)
        .map(violations)
        .map_err(|e| to_py_err(py, e))
}

/// Migrate a v1 contract document to v2 (returns a dict).
///
/// Parameters:
/// - doc: a v1 contract document
#[pyfunction]
pub(crate) fn migrate_v1<'py>(
    py: Python<'py>,
    doc: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let text = document_text(py, doc)?;
    let text = String::from_utf8(text).map_err(|e| validation(py, "", e.to_string()))?;
    let v1 = core_contract::parse_document(&text).map_err(|e| to_py_err(py, e))?;
    let v2 = core_contract::migrate_v1(&v1).map_err(|e| to_py_err(py, e))?;
    from_json(py, &v2)
}

/// A schema-valid v2 workspace contract with its terms hash. Immutable:
/// `transition` returns a new Contract. Picklable.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct Contract {
    pub(crate) inner: core_contract::Contract,
}

#[pymethods]
impl Contract {
    /// Parse a v2 contract (JSON text, bytes or dict). Bad input raises
    /// ValidationError (with `.violations` for schema violations).
    ///
    /// Parameters:
    /// - doc: the v2 contract: JSON text, bytes or a dict
    #[staticmethod]
    fn from_json(py: Python<'_>, doc: &Bound<'_, PyAny>) -> PyResult<Self> {
        if let Ok(s) = doc.cast::<PyString>() {
            let s: String = s.extract()?;
            let t = s.trim();
            let looks_like_path = !t.starts_with(['{', '['])
                && (t.ends_with(".json") || std::path::Path::new(t).is_file());
            if looks_like_path {
                return Err(validation(
                    py,
                    "",
                    format!(
                        "Contract.from_json was given a path ({t:?}), not JSON text: \
                         use Contract.load(path)"
                    ),
                ));
            }
        }
        Ok(Contract {
            inner: contract_from(py, doc)?,
        })
    }
    /// Read and parse the v2 contract in the file at `path` (a missing file
    /// is a MissingFileError, also a FileNotFoundError).
    ///
    /// Parameters:
    /// - path: the contract file (str or os.PathLike)
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Self> {
        let bytes = crate::errors::read_named_file(py, "the contract", &path)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            validation(
                py,
                "",
                format!("the contract {} is not UTF-8: {e}", path.display()),
            )
        })?;
        core_contract::Contract::from_json(&text)
            .map(|inner| Contract { inner })
            .map_err(|e| to_py_err(py, e))
    }
    /// Parse a v2 contract from a dict (the JSON shape, camelCase keys).
    ///
    /// Parameters:
    /// - doc: the contract as a dict
    #[staticmethod]
    fn from_dict(py: Python<'_>, doc: &Bound<'_, pyo3::types::PyDict>) -> PyResult<Self> {
        Ok(Contract {
            inner: contract_from(py, doc.as_any())?,
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
    /// Business-rule violations at `now` (an RFC 3339 string or an aware
    /// datetime), as a list. With `raise_errors=True`, a violation of
    /// severity error raises ContractViolationError (a ValidationError and a
    /// ContractError) holding them all in `.violations`, as pydantic does;
    /// warnings alone are returned.
    #[pyo3(signature = (now, *, raise_errors = false))]
    fn validate(
        &self,
        py: Python<'_>,
        now: &Bound<'_, PyAny>,
        raise_errors: bool,
    ) -> PyResult<Vec<Violation>> {
        let now = now_ts(py, now)?;
        let found = self.inner.validate(now).map_err(|e| to_py_err(py, e))?;
        if raise_errors && found.iter().any(|v| v.is_error()) {
            // Errors first (the message names the first), warnings kept.
            let mut all = found;
            all.sort_by_key(|v| !v.is_error());
            return Err(to_py_err(
                py,
                core_contract::ContractError::Rules { violations: all },
            ));
        }
        Ok(violations(found))
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
            .map_err(|e| to_py_err(py, e))?;
        to_py(py, &kind)
    }
    /// A copy in lifecycle state `to`; raises LifecycleError when the table forbids it.
    fn transition(&self, py: Python<'_>, to: &str) -> PyResult<Contract> {
        let target = core_contract::Lifecycle::parse(to).ok_or_else(|| {
            validation(py, "/lifecycle", format!("unknown lifecycle state {to:?}"))
        })?;
        let inner = self
            .inner
            .transition(target)
            .map_err(|e| to_py_err(py, e))?;
        Ok(Contract { inner })
    }
    /// The snapshot stored in audit bundles, as a dict.
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.snapshot())
    }
    /// The object as a dict (its JSON schema's shape).
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
pub(crate) struct ContractHistory {
    pub(crate) items: Vec<Value>,
}

pub(crate) fn history_item(py: Python<'_>, item: &Bound<'_, PyAny>, i: usize) -> PyResult<Value> {
    if let Ok(c) = item.cast::<Contract>() {
        return to_value(py, &c.get().inner.snapshot());
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
    ///
    /// Parameters:
    /// - item: a Contract, a contract document, or a snapshot dict
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
            .map_err(|e| to_py_err(py, e))?;
        to_py(py, &h.verify())
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Violation>()?;
    m.add_class::<Contract>()?;
    m.add_class::<ContractHistory>()?;
    m.add_function(wrap_pyfunction!(canonicalize, m)?)?;
    m.add_function(wrap_pyfunction!(is_canonical, m)?)?;
    m.add_function(wrap_pyfunction!(contract_hash, m)?)?;
    m.add_function(wrap_pyfunction!(validate_contract, m)?)?;
    m.add_function(wrap_pyfunction!(migrate_v1, m)?)?;
    Ok(())
}
