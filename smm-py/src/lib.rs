//! Python bindings: the native module `smm_core._smm_core`, re-exported by
//! the pure-Python package `smm_core`.
//!
//! One file per capability, the same split as the C ABI (`smm-ffi/src`):
//! `errors` (the exception hierarchy, mapped through the core's error
//! table), `convert` (Python values to and from JSON, with JSON pointers),
//! `simulation`, `contracts`, `audit`, `policy`, `usage`, and `flow` (the
//! main job end to end). Inputs are converted to
//! owned Rust values, then the GIL is released for the computation.

use pyo3::prelude::*;

mod audit;
mod contracts;
mod convert;
mod errors;
mod flow;
mod policy;
mod progress;
mod simulation;
mod sweep;
mod usage;

#[pymodule]
fn _smm_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The resource limits, the same in every front door.
    let limits = pyo3::types::PyDict::new(m.py());
    for (name, value) in smm_core::limits::ALL {
        limits.set_item(name, value)?;
    }
    m.add("LIMITS", limits)?;
    simulation::register(m)?;
    contracts::register(m)?;
    audit::register(m)?;
    policy::register(m)?;
    usage::register(m)?;
    flow::register(m)?;
    sweep::register(m)?;
    Ok(())
}
