//! The exception hierarchy, and the one place where core errors become
//! Python exceptions: through the core's error table
//! (`smm_core::error::ERROR_TABLE`), which names each kind's class.

use pyo3::exceptions::{PyException, PyPermissionError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use smm_core::error::{Error as CoreError, ErrorKind};

/// The classes: (name, doc, bases). Bases are builtins or earlier rows.
pub(crate) const CLASSES: &[(&str, &str, &[&str])] = &[
    (
        "SmmError",
        "Base class of every error raised by smm_core. Attributes: `pointer` (JSON pointer \
         of the offending field, '' when none), `code` and `name` (the stable error code and \
         name, the same as the C status), `category` (input, integrity, conflict, storage, \
         signer, internal, interrupted, unauthorized, quota, denied).",
        &["Exception"],
    ),
    (
        "ValidationError",
        "Bad input. `pointer` is the JSON pointer of the offending field ('' when none).",
        &["SmmError", "ValueError"],
    ),
    (
        "ShardError",
        "A shard range or a merge of partial results was rejected.",
        &["ValidationError"],
    ),
    (
        "InternalError",
        "A failure inside the library or its environment (never the caller's input).",
        &["SmmError"],
    ),
    (
        "ContractError",
        "A contract operation was refused.",
        &["SmmError"],
    ),
    (
        "ImmutabilityError",
        "The terms of a signed contract changed without a new contractVersion.",
        &["ContractError"],
    ),
    (
        "VersionError",
        "A new contract version is not properly chained: version not increased, \
         previousContractRef not the previous terms hash, or another workspace.",
        &["ContractError"],
    ),
    (
        "LifecycleError",
        "A lifecycle transition the table does not allow.",
        &["ContractError"],
    ),
    (
        "IntegrityError",
        "Something does not match its hash, signature or checksum.",
        &["SmmError"],
    ),
    (
        "AuditError",
        "An audit bundle operation failed.",
        &["SmmError"],
    ),
    (
        "SignerError",
        "A signer failed, or answered a signature that does not verify under its public key.",
        &["AuditError"],
    ),
    (
        "StorageError",
        "A bundle store operation failed.",
        &["AuditError"],
    ),
    (
        "BundleConflictError",
        "Different bytes are already stored under this bundle id.",
        &["StorageError"],
    ),
    (
        "CorruptBundleError",
        "Stored bytes no longer match their bundle id.",
        &["StorageError", "IntegrityError"],
    ),
    (
        "UntrustedBundleError",
        "A store was asked to publish an envelope that is not signed by its trusted keys.",
        &["AuditError", "IntegrityError"],
    ),
    (
        "TimeoutError",
        "The run reached its time limit (timeoutSeconds); also a builtins.TimeoutError.",
        &["SmmError", "builtins.TimeoutError"],
    ),
    (
        "CancelledError",
        "The run was cancelled by its caller (a cancel flag or KeyboardInterrupt); no report \
         is made.",
        &["SmmError"],
    ),
    (
        "PolicyError",
        "A policy bundle does not load (the message names module and line) or has no usable \
         decision.",
        &["SmmError"],
    ),
    (
        "PolicyChecksumError",
        "A decision was made by another policy bundle than the contract's policyBundleChecksum \
         names.",
        &["PolicyError", "IntegrityError"],
    ),
    (
        "PolicyDeniedError",
        "The policy decided to deny (the main job stops there); `reasons` lists the decision \
         card's reason codes.",
        &["PolicyError"],
    ),
    (
        "QuotaError",
        "A cost-control operation failed: a quota refused a job, a reservation is unknown, \
         or the usage ledger failed.",
        &["SmmError"],
    ),
    (
        "QuotaExceededError",
        "A strict reservation was blocked: it would pass a quota. `reasons` lists which \
         quotas, by how much.",
        &["QuotaError"],
    ),
    (
        "UnknownReservationError",
        "No such reservation to commit or release (never made, released, or committed).",
        &["QuotaError", "ValidationError"],
    ),
    (
        "LedgerConflictError",
        "A job's reservation or commit contradicts the ledger (the job holds a reservation \
         already, or is committed).",
        &["QuotaError"],
    ),
    (
        "LedgerError",
        "The usage ledger's database failed.",
        &["QuotaError"],
    ),
    (
        "LedgerStorageError",
        "The ledger file is missing, or reading or writing it failed.",
        &["LedgerError"],
    ),
    (
        "LedgerLockedError",
        "Another writer held the ledger's write lock past the busy timeout; try again.",
        &["LedgerError"],
    ),
    (
        "LedgerCorruptError",
        "The file is not a usage ledger, or is damaged.",
        &["LedgerError", "IntegrityError"],
    ),
    (
        "LedgerVersionError",
        "The ledger file was written by a newer version of the library.",
        &["LedgerError"],
    ),
    (
        "AgentTokenError",
        "An agent token was refused (scope, expiry or lifetime); the message says why. Also a \
         builtins.PermissionError.",
        &["SmmError", "builtins.PermissionError"],
    ),
    (
        "IntrospectionError",
        "The host's token introspection failed.",
        &["AgentTokenError"],
    ),
];

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The classes, created once, in [`CLASSES`] order.
pub(crate) fn types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let mut made: Vec<Py<PyType>> = Vec::new();
        for (name, doc, bases) in CLASSES {
            let mut b: Vec<Bound<'_, PyType>> = Vec::new();
            for base in *bases {
                b.push(match *base {
                    "Exception" => py.get_type::<PyException>(),
                    "ValueError" => py.get_type::<PyValueError>(),
                    "builtins.TimeoutError" => py.get_type::<PyTimeoutError>(),
                    "builtins.PermissionError" => py.get_type::<PyPermissionError>(),
                    own => CLASSES
                        .iter()
                        .position(|(n, _, _)| *n == own)
                        .and_then(|i| made.get(i))
                        .map(|t| t.bind(py).clone())
                        .ok_or_else(|| PyException::new_err("exception table out of order"))?,
                });
            }
            let dict = PyDict::new(py);
            dict.set_item("__module__", "smm_core")?;
            dict.set_item("__doc__", *doc)?;
            if *name == "SmmError" {
                // The step of `run` that failed; None outside `run`.
                dict.set_item("step", py.None())?;
            }
            let ty = py
                .get_type::<PyType>()
                .call1((*name, PyTuple::new(py, b)?, dict))?;
            made.push(ty.cast_into::<PyType>()?.unbind());
        }
        Ok(made)
    })
}

/// An exception of class `class` (a name of [`CLASSES`]).
pub(crate) fn raise(
    py: Python<'_>,
    class: &str,
    msg: String,
    pointer: Option<&str>,
    kind: Option<ErrorKind>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let types = types(py)?;
        let i = CLASSES
            .iter()
            .position(|(n, _, _)| *n == class)
            .unwrap_or(0);
        let ty = types
            .get(i)
            .ok_or_else(|| PyException::new_err(msg.clone()))?;
        let exc = ty.bind(py).call1((msg.clone(),))?;
        exc.setattr("pointer", pointer.unwrap_or(""))?;
        let kind = kind.unwrap_or(ErrorKind::InvalidInput);
        exc.setattr("code", kind.code())?;
        exc.setattr("name", kind.name())?;
        exc.setattr("category", kind.category().as_str())?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A `ValidationError` about the field at `pointer`.
pub(crate) fn validation(py: Python<'_>, pointer: &str, msg: String) -> PyErr {
    raise(
        py,
        "ValidationError",
        msg,
        Some(pointer),
        Some(ErrorKind::InvalidInput),
    )
}

/// The one place where core errors become Python exceptions: the class is
/// the one the core's error table names for the error's kind.
pub(crate) fn to_py_err(py: Python<'_>, e: impl Into<CoreError>) -> PyErr {
    let e: CoreError = e.into();
    let kind = e.kind();
    let err = raise(
        py,
        kind.python_class(),
        e.to_string(),
        e.pointer(),
        Some(kind),
    );
    if let CoreError::Contract(
        smm_core::contract::ContractError::Schema { violations }
        | smm_core::contract::ContractError::Rules { violations },
    ) = &e
    {
        let list: Vec<crate::contracts::Violation> = violations
            .iter()
            .cloned()
            .map(|inner| crate::contracts::Violation { inner })
            .collect();
        let _ = err.value(py).setattr("violations", list);
    }
    if let CoreError::Policy(
        smm_core::policy::PolicyError::Compile { module, line, .. }
        | smm_core::policy::PolicyError::Rule { module, line, .. },
    ) = &e
    {
        let _ = err.value(py).setattr("module", module);
        let _ = err.value(py).setattr("line", *line);
    }
    if let CoreError::Policy(smm_core::policy::PolicyError::Denied { reasons }) = &e {
        let _ = err.value(py).setattr("reasons", reasons.clone());
    }
    if let CoreError::Usage(smm_core::usage::UsageError::QuotaExceeded { reasons, .. }) = &e {
        let _ = err.value(py).setattr("reasons", reasons.clone());
    }
    err
}

/// Add every class to the module.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    for ((name, _, _), ty) in CLASSES.iter().zip(types(py)?) {
        m.add(*name, ty.bind(py))?;
    }
    m.add_function(wrap_pyfunction!(_error_table, m)?)?;
    m.add_function(wrap_pyfunction!(_error_samples, m)?)?;
    Ok(())
}

/// The core's error table: [(name, code, python_class, category)].
#[pyfunction]
pub(crate) fn _error_table() -> Vec<(&'static str, u32, &'static str, &'static str)> {
    smm_core::error::ERROR_TABLE
        .iter()
        .map(|r| (r.name, r.code, r.python_class, r.category.as_str()))
        .collect()
}

/// One error of every variant of the core, as the exception this binding
/// raises for it: [(variant, exception)]. For the table test.
#[pyfunction]
pub(crate) fn _error_samples(py: Python<'_>) -> Vec<(&'static str, Py<PyAny>)> {
    smm_core::error::samples::all()
        .into_iter()
        .map(|e| {
            let name = smm_core::error::samples::variant_name(&e);
            (name, to_py_err(py, e).into_value(py).into_any())
        })
        .collect()
}
