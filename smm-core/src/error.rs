//! The crate's error types.
//!
//! Each domain has its own `thiserror` enum; [`enum@Error`] is the one
//! `#[non_exhaustive]` top-level type that every fallible public function can
//! be converted into. Errors about a document name the place with a JSON
//! pointer (RFC 6901), e.g. `/workspaceContext/budget/hardCap`.

use thiserror::Error;

pub use crate::sim::SimulationError;

/// Top-level error of the crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad simulation input or an engine-level failure.
    #[error(transparent)]
    Simulation(#[from] SimulationError),
}

impl Error {
    /// The JSON pointer of the offending field, when the error is about a document.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            Error::Simulation(e) => e.pointer(),
        }
    }

    /// True when the error is caused by the caller's input (as opposed to an
    /// internal failure). Bindings map these to `ValueError`-like exceptions.
    pub fn is_input_error(&self) -> bool {
        match self {
            Error::Simulation(e) => e.is_input_error(),
        }
    }
}

/// Escape one reference token of a JSON pointer (RFC 6901 §4).
pub(crate) fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}
