//! Parameter sweeps: `_sweep` (run here), `sweep_plan` and `sweep_row` (for
//! running the points elsewhere, e.g. on Dask). The Python `smm_core.sweep`
//! wraps them.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use serde_json::Value;
use smm_core::sim::{self, sweep as core_sweep};

use crate::convert::{document, int_arg, to_py};
use crate::errors::{to_py_err, validation};
use crate::simulation::{SimulationReport, run_options};

/// `{pointer: [values]}` from a mapping of pointers to sequences.
fn grid_from(py: Python<'_>, grid: &Bound<'_, PyAny>) -> PyResult<BTreeMap<String, Vec<Value>>> {
    let v = document(py, grid, "/grid")?;
    let Value::Object(axes) = v else {
        return Err(validation(
            py,
            "/grid",
            "grid must map JSON pointers to lists of values".into(),
        ));
    };
    let mut out = BTreeMap::new();
    for (pointer, values) in axes {
        match values {
            Value::Array(vs) => {
                out.insert(pointer, vs);
            }
            _ => {
                return Err(validation(
                    py,
                    &format!("/grid/{}", crate::convert::escape(&pointer)),
                    format!("the values of {pointer} must be a list"),
                ));
            }
        }
    }
    Ok(out)
}

/// The points of a sweep, as dicts `{index, inputs, seed, request}`, in
/// sweep order.
///
/// Parameters:
/// - request: the request document
/// - grid: JSON pointers into the request -> lists of values
/// - iterations: iterations of each point
/// - seed: the sweep's seed
#[pyfunction]
#[pyo3(signature = (request, grid, *, iterations, seed))]
pub(crate) fn sweep_plan<'py>(
    py: Python<'py>,
    request: &Bound<'_, PyAny>,
    grid: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = crate::convert::count)] iterations: i128,
    #[pyo3(from_py_with = crate::convert::count)] seed: i128,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let req = document(py, request, "")?;
    let grid = grid_from(py, grid)?;
    let iterations = int_arg(py, iterations, "iterations", "/simulationConfig/iterations")?;
    let seed = int_arg(py, seed, "seed", "/simulationConfig/randomSeed")?;
    let points = core_sweep::plan(&req, &grid, iterations, seed).map_err(|e| to_py_err(py, e))?;
    points.iter().map(|p| to_py(py, p)).collect()
}

/// The row of a point (a dict from `sweep_plan`) and its report.
#[pyfunction]
pub(crate) fn sweep_row<'py>(
    py: Python<'py>,
    point: &Bound<'_, PyAny>,
    report: &Bound<'_, SimulationReport>,
) -> PyResult<Bound<'py, PyAny>> {
    let v = document(py, point, "/point")?;
    let p: core_sweep::SweepPoint = serde_path_to_error::deserialize(&v).map_err(|e| {
        let pointer = sim::SimulationError::from_path_error(&e);
        validation(py, &pointer, format!("not a sweep point: {}", e.inner()))
    })?;
    to_py(py, &core_sweep::row(&p, &report.get().report))
}

/// Run a sweep in this process: one row (dict) per point, in sweep order.
///
/// Parameters:
/// - request: the request document
/// - grid: JSON pointers -> lists of values
/// - iterations: iterations of each point
/// - seed: the sweep's seed
/// - threads: worker threads (None or 0: every core)
/// - progress: a callable (points done, points)
#[pyfunction]
#[pyo3(signature = (request, grid, *, iterations, seed, threads = None, progress = None))]
pub(crate) fn _sweep<'py>(
    py: Python<'py>,
    request: &Bound<'_, PyAny>,
    grid: &Bound<'_, PyAny>,
    #[pyo3(from_py_with = crate::convert::count)] iterations: i128,
    #[pyo3(from_py_with = crate::convert::count)] seed: i128,
    threads: Option<i64>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let req = document(py, request, "")?;
    let grid = grid_from(py, grid)?;
    let iterations = int_arg(py, iterations, "iterations", "/simulationConfig/iterations")?;
    let seed = int_arg(py, seed, "seed", "/simulationConfig/randomSeed")?;
    let points = core_sweep::plan(&req, &grid, iterations, seed).map_err(|e| to_py_err(py, e))?;
    let total = points.len();
    let mut rows = Vec::with_capacity(total);
    for (i, p) in points.iter().enumerate() {
        let mut opts = run_options(py, threads, false)?;
        let (watch, control) = crate::progress::watch(py, None)?;
        opts.control = control;
        let result = py.detach(|| sim::run(&p.request, &opts));
        let out = watch.finish(py, result)?;
        rows.push(to_py(py, &core_sweep::row(p, &out.report))?);
        if let Some(cb) = progress {
            // Points done of the sweep's points.
            let r = cb.call1((i + 1, total))?;
            if r.is_instance_of::<pyo3::types::PyBool>() && !r.is_truthy()? {
                return Err(to_py_err(
                    py,
                    sim::SimulationError::Cancelled {
                        iterations_done: (i as u64 + 1) * iterations,
                    },
                ));
            }
        }
    }
    Ok(rows)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(sweep_plan, m)?)?;
    m.add_function(wrap_pyfunction!(sweep_row, m)?)?;
    m.add_function(wrap_pyfunction!(_sweep, m)?)?;
    Ok(())
}
