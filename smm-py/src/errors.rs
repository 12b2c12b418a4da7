//! The exception hierarchy, and the one place where core errors become
//! Python exceptions: [`class_of`], an exhaustive match over the core's
//! error kinds, so a new kind does not compile until this binding names its
//! class.

use pyo3::exceptions::{
    PyException, PyFileNotFoundError, PyPermissionError, PyTimeoutError, PyValueError,
};
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
    (
        "ContractViolationError",
        "A contract document breaks its schema or its business rules: every \
         violation is in `violations` (pointer, rule, message, severity). Both a \
         ValidationError and a ContractError.",
        &["ValidationError", "ContractError"],
    ),
    (
        "MissingFileError",
        "A file named by the caller does not exist (`filename` names it). Also a \
         builtins.FileNotFoundError.",
        &["SmmError", "builtins.FileNotFoundError"],
    ),
];

/// A class of [`CLASSES`], by its place there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[expect(
    clippy::enum_variant_names,
    reason = "the variants are the Python class names, which end in Error"
)]
pub(crate) enum Class {
    SmmError,
    ValidationError,
    ShardError,
    InternalError,
    ContractError,
    ImmutabilityError,
    VersionError,
    LifecycleError,
    IntegrityError,
    AuditError,
    SignerError,
    StorageError,
    BundleConflictError,
    CorruptBundleError,
    UntrustedBundleError,
    TimeoutError,
    CancelledError,
    PolicyError,
    PolicyChecksumError,
    PolicyDeniedError,
    QuotaError,
    QuotaExceededError,
    UnknownReservationError,
    LedgerConflictError,
    LedgerError,
    LedgerStorageError,
    LedgerLockedError,
    LedgerCorruptError,
    LedgerVersionError,
    AgentTokenError,
    IntrospectionError,
    ContractViolationError,
    MissingFileError,
}

impl Class {
    /// Every class, in [`CLASSES`] order.
    const ALL: [Class; 33] = [
        Class::SmmError,
        Class::ValidationError,
        Class::ShardError,
        Class::InternalError,
        Class::ContractError,
        Class::ImmutabilityError,
        Class::VersionError,
        Class::LifecycleError,
        Class::IntegrityError,
        Class::AuditError,
        Class::SignerError,
        Class::StorageError,
        Class::BundleConflictError,
        Class::CorruptBundleError,
        Class::UntrustedBundleError,
        Class::TimeoutError,
        Class::CancelledError,
        Class::PolicyError,
        Class::PolicyChecksumError,
        Class::PolicyDeniedError,
        Class::QuotaError,
        Class::QuotaExceededError,
        Class::UnknownReservationError,
        Class::LedgerConflictError,
        Class::LedgerError,
        Class::LedgerStorageError,
        Class::LedgerLockedError,
        Class::LedgerCorruptError,
        Class::LedgerVersionError,
        Class::AgentTokenError,
        Class::IntrospectionError,
        Class::ContractViolationError,
        Class::MissingFileError,
    ];

    /// The class's name in `smm_core`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::SmmError => "SmmError",
            Class::ValidationError => "ValidationError",
            Class::ShardError => "ShardError",
            Class::InternalError => "InternalError",
            Class::ContractError => "ContractError",
            Class::ImmutabilityError => "ImmutabilityError",
            Class::VersionError => "VersionError",
            Class::LifecycleError => "LifecycleError",
            Class::IntegrityError => "IntegrityError",
            Class::AuditError => "AuditError",
            Class::SignerError => "SignerError",
            Class::StorageError => "StorageError",
            Class::BundleConflictError => "BundleConflictError",
            Class::CorruptBundleError => "CorruptBundleError",
            Class::UntrustedBundleError => "UntrustedBundleError",
            Class::TimeoutError => "TimeoutError",
            Class::CancelledError => "CancelledError",
            Class::PolicyError => "PolicyError",
            Class::PolicyChecksumError => "PolicyChecksumError",
            Class::PolicyDeniedError => "PolicyDeniedError",
            Class::QuotaError => "QuotaError",
            Class::QuotaExceededError => "QuotaExceededError",
            Class::UnknownReservationError => "UnknownReservationError",
            Class::LedgerConflictError => "LedgerConflictError",
            Class::LedgerError => "LedgerError",
            Class::LedgerStorageError => "LedgerStorageError",
            Class::LedgerLockedError => "LedgerLockedError",
            Class::LedgerCorruptError => "LedgerCorruptError",
            Class::LedgerVersionError => "LedgerVersionError",
            Class::AgentTokenError => "AgentTokenError",
            Class::IntrospectionError => "IntrospectionError",
            Class::ContractViolationError => "ContractViolationError",
            Class::MissingFileError => "MissingFileError",
        }
    }
}

/// The class raised for an error kind. Exhaustive: a new kind does not
/// compile until it has a class here.
pub(crate) fn class_of(kind: ErrorKind) -> Class {
    use ErrorKind as K;
    match kind {
        K::InvalidInput => Class::ValidationError,
        K::InvalidShard => Class::ShardError,
        K::ThreadPool => Class::InternalError,
        K::Immutability => Class::ImmutabilityError,
        K::SignerFailed => Class::SignerError,
        K::Storage => Class::StorageError,
        K::Conflict => Class::BundleConflictError,
        K::Integrity => Class::IntegrityError,
        K::CorruptBundle => Class::CorruptBundleError,
        K::VersionRejected => Class::VersionError,
        K::LifecycleRejected => Class::LifecycleError,
        K::Policy => Class::PolicyError,
        K::PolicyChecksum => Class::PolicyChecksumError,
        K::Untrusted => Class::UntrustedBundleError,
        K::Timeout => Class::TimeoutError,
        K::UnknownReservation => Class::UnknownReservationError,
        K::LedgerConflict => Class::LedgerConflictError,
        K::LedgerStorage => Class::LedgerStorageError,
        K::LedgerLocked => Class::LedgerLockedError,
        K::LedgerCorrupt => Class::LedgerCorruptError,
        K::LedgerVersion => Class::LedgerVersionError,
        K::TokenRejected => Class::AgentTokenError,
        K::Introspection => Class::IntrospectionError,
        K::QuotaExceeded => Class::QuotaExceededError,
        K::Cancelled => Class::CancelledError,
        K::Denied => Class::PolicyDeniedError,
        K::Internal => Class::InternalError,
    }
}

static TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// The classes, created once, in [`CLASSES`] order.
pub(crate) fn types(py: Python<'_>) -> PyResult<&Vec<Py<PyType>>> {
    TYPES.get_or_try_init(py, || {
        let mut made: Vec<Py<PyType>> = Vec::new();
        if CLASSES.len() != Class::ALL.len() {
            return Err(PyException::new_err(
                "smm_core: the exception table is out of order",
            ));
        }
        for ((name, doc, bases), class) in CLASSES.iter().zip(Class::ALL) {
            if *name != class.name() {
                return Err(PyException::new_err(format!(
                    "smm_core: the exception table is out of order at {name}"
                )));
            }
            let mut b: Vec<Bound<'_, PyType>> = Vec::new();
            for base in *bases {
                b.push(match *base {
                    "Exception" => py.get_type::<PyException>(),
                    "ValueError" => py.get_type::<PyValueError>(),
                    "builtins.TimeoutError" => py.get_type::<PyTimeoutError>(),
                    "builtins.PermissionError" => py.get_type::<PyPermissionError>(),
                    "builtins.FileNotFoundError" => py.get_type::<PyFileNotFoundError>(),
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

/// An exception of class `class`.
pub(crate) fn raise(
    py: Python<'_>,
    class: Class,
    msg: String,
    pointer: Option<&str>,
    kind: Option<ErrorKind>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let types = types(py)?;
        let ty = types.get(class as usize).ok_or_else(|| {
            PyException::new_err(format!("smm_core: no exception class {}", class.name()))
        })?;
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

/// A `MissingFileError` (also a `FileNotFoundError`, with `errno`,
/// `strerror` and `filename` set) for a file the caller named as `what`.
pub(crate) fn missing_file(py: Python<'_>, what: &str, path: &std::path::Path) -> PyErr {
    let shown = path.display().to_string();
    let err = raise(
        py,
        Class::MissingFileError,
        format!("{what}: no such file {shown}"),
        None,
        Some(ErrorKind::InvalidInput),
    );
    let exc = err.value(py);
    let _ = exc.setattr("errno", 2);
    // OSError prints "[Errno 2] STRERROR: 'FILENAME'".
    let _ = exc.setattr("strerror", format!("{what}: no such file"));
    let _ = exc.setattr("filename", shown);
    err
}

/// Read a file the caller named as `what`: a missing file is a
/// [`missing_file`] error, any other failure a `ValidationError` naming it.
pub(crate) fn read_named_file(
    py: Python<'_>,
    what: &str,
    path: &std::path::Path,
) -> PyResult<Vec<u8>> {
    py.detach(|| smm_core::limits::read_document_file(path))
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                missing_file(py, what, path)
            } else {
                validation(
                    py,
                    "",
                    format!("{what}: cannot read {}: {e}", path.display()),
                )
            }
        })
}

/// A `ValidationError` about the field at `pointer`.
pub(crate) fn validation(py: Python<'_>, pointer: &str, msg: String) -> PyErr {
    raise(
        py,
        Class::ValidationError,
        msg,
        Some(pointer),
        Some(ErrorKind::InvalidInput),
    )
}

/// An exception a Python callback raised, carried through the core as the
/// cause of its error.
#[derive(Debug)]
pub(crate) struct Raised(pub(crate) PyErr);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sign_digest raised {}", self.0)
    }
}

impl std::error::Error for Raised {}

/// The Python exception among `e`'s causes, when a callback raised one
/// (it is always wrapped in a `Cause`).
fn raised_cause(py: Python<'_>, e: &CoreError) -> Option<PyErr> {
    let mut at: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(cause) = at {
        if let Some(c) = cause.downcast_ref::<smm_core::error::Cause>()
            && let Some(r) = c.get().downcast_ref::<Raised>()
        {
            return Some(r.0.clone_ref(py));
        }
        at = cause.source();
    }
    None
}

/// The one place where core errors become Python exceptions: the class is
/// [`class_of`] the error's kind; a Python exception a callback raised is
/// its `__cause__`.
pub(crate) fn to_py_err(py: Python<'_>, e: impl Into<CoreError>) -> PyErr {
    let e: CoreError = e.into();
    let kind = e.kind();
    let class = match &e {
        CoreError::Contract(
            smm_core::contract::ContractError::Schema { .. }
            | smm_core::contract::ContractError::Rules { .. },
        ) => Class::ContractViolationError,
        _ => class_of(kind),
    };
    let err = raise(py, class, e.to_string(), e.pointer(), Some(kind));
    if let Some(cause) = raised_cause(py, &e) {
        err.set_cause(py, Some(cause));
    }
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
    m.add_function(wrap_pyfunction!(_error_kinds, m)?)?;
    Ok(())
}

/// For every error kind of the core, in code order, the exception this
/// binding raises for it (message: the kind's hint). For the tests, and
/// for tools that list the exceptions.
#[pyfunction]
pub(crate) fn _error_kinds(py: Python<'_>) -> Vec<Py<PyAny>> {
    ErrorKind::ALL
        .into_iter()
        .map(|kind| {
            raise(
                py,
                class_of(kind),
                kind.hint().to_string(),
                None,
                Some(kind),
            )
            .into_value(py)
            .into_any()
        })
        .collect()
}
