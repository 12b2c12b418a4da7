//! The crate's top-level error type.
//!
//! Each domain has its own `thiserror` enum; [`enum@Error`] is the one
//! `#[non_exhaustive]` top-level type that every fallible public function can
//! be converted into. Errors about a document name the place with a JSON
//! pointer (RFC 6901), e.g. `/workspaceContext/budget/hardCap`.
//!
//! Every variant of every domain error has an [`ErrorKind`], with a stable
//! code and an [`ErrorCategory`] (the leaf module `kind`, re-exported here).
//! The Python and C bindings map kinds to their own names by exhaustive
//! matches, so one error is the same Python exception and the same C status
//! everywhere; a test walks every variant (the `test-util` feature's
//! `samples`) through both bindings.

use thiserror::Error;

pub use crate::audit::AuditError;
pub use crate::contract::ContractError;
pub use crate::jcs::CanonicalError;
pub use crate::policy::PolicyError;
pub use crate::sim::SimulationError;
pub use crate::usage::UsageError;

pub use crate::kind::{Cause, ErrorCategory, ErrorKind};

/// Top-level error of the crate.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad simulation input or an engine-level failure.
    #[error(transparent)]
    Simulation(#[from] SimulationError),
    /// A contract was rejected.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// A document has no canonical form.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// An audit bundle, signer or store operation failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A policy bundle, input or decision failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The usage ledger, pricing, a token or a retention plan failed.
    #[error(transparent)]
    Usage(#[from] UsageError),
}

impl Error {
    /// The JSON pointer of the offending field, when the error is about a document.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            Error::Simulation(e) => e.pointer(),
            Error::Contract(e) => e.pointer(),
            Error::Canonical(e) => e.pointer(),
            Error::Audit(e) => e.pointer(),
            Error::Policy(e) => e.pointer(),
            Error::Usage(e) => e.pointer(),
        }
    }

    /// The kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Simulation(e) => e.kind(),
            Error::Contract(e) => e.kind(),
            Error::Canonical(_) => ErrorKind::InvalidInput,
            Error::Audit(e) => e.kind(),
            Error::Policy(e) => e.kind(),
            Error::Usage(e) => e.kind(),
        }
    }

    /// True when the error is caused by the caller's input (as opposed to an
    /// internal failure). Bindings map these to `ValueError`-like exceptions.
    pub fn is_input_error(&self) -> bool {
        self.kind().category() == ErrorCategory::Input
    }
}

#[cfg(all(test, feature = "test-util"))]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_sample_and_a_row() {
        let all = samples::all();
        let names: std::collections::BTreeSet<&str> =
            all.iter().map(samples::variant_name).collect();
        assert_eq!(names.len(), all.len(), "a variant is sampled twice");
        for e in &all {
            let kind = e.kind();
            assert!(ErrorKind::ALL.contains(&kind), "{e:?}");
            // Bad input and only bad input is in the input category.
            let internal = samples::variant_name(e).ends_with("::Internal")
                || samples::variant_name(e) == "Simulation::ThreadPool";
            assert_eq!(
                kind.category() == ErrorCategory::Internal,
                internal,
                "{e:?}"
            );
        }
        // Every kind is reachable from some variant.
        for kind in ErrorKind::ALL {
            assert!(all.iter().any(|e| e.kind() == kind), "{kind:?} unused");
        }
    }
}

/// One error of every variant of every domain, for the tests that walk the
/// kinds through the bindings (feature `test-util`; not part of the stable
/// API, and not in any shipped build).
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod samples;

impl From<crate::time::NotRfc3339> for Error {
    fn from(e: crate::time::NotRfc3339) -> Self {
        Error::Contract(e.into())
    }
}
