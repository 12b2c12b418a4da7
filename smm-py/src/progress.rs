//! Progress and cancellation of long runs: a Python callback (or a tqdm
//! bar) called from the calling thread at most every 0.2 s and at the end;
//! returning False, raising, or Ctrl-C stops the run at its next wave of
//! blocks (every 32,768 iterations) with `CancelledError` (or the
//! KeyboardInterrupt itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyString};
use smm_core::sim::{Progress, RunControl, SimulationError};

use crate::errors::{to_py_err, validation};

/// How often the callback runs (and signals are checked) at most.
const EVERY: Duration = Duration::from_millis(200);

/// A watched run: its cancel flag, the reason it was cancelled, the bar.
pub(crate) struct Watch {
    stopped_by: Arc<Mutex<Option<PyErr>>>,
    bar: Option<Py<PyAny>>,
}

/// Set up `control` for a run watched from Python.
pub(crate) fn watch(
    py: Python<'_>,
    progress: Option<&Bound<'_, PyAny>>,
) -> PyResult<(Watch, RunControl)> {
    let (callback, bar) = match progress {
        None => (None, None),
        Some(p) if p.is_none() => (None, None),
        Some(p) if p.is_instance_of::<PyString>() => {
            let name: String = p.extract()?;
            if name != "tqdm" {
                return Err(validation(
                    py,
                    "",
                    format!("progress must be a callable or \"tqdm\" (got {name:?})"),
                ));
            }
            let bar = py
                .import("smm_core._progress")?
                .getattr("Tqdm")?
                .call0()?
                .unbind();
            (Some(bar.clone_ref(py)), Some(bar))
        }
        Some(p) if p.is_callable() => (Some(p.clone().unbind()), None),
        Some(_) => {
            return Err(validation(
                py,
                "",
                "progress must be a callable (done, total) -> bool | None, or \"tqdm\"".into(),
            ));
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let stopped_by: Arc<Mutex<Option<PyErr>>> = Arc::new(Mutex::new(None));
    let last = Mutex::new(Instant::now());
    let flag = Arc::clone(&cancel);
    let reason = Arc::clone(&stopped_by);
    let control = RunControl::default()
        .with_cancel(cancel)
        .with_progress(move |p: Progress| {
            let now = Instant::now();
            if let Ok(mut l) = last.lock() {
                if now.duration_since(*l) < EVERY && p.done < p.total {
                    return;
                }
                *l = now;
            }
            Python::attach(|py| {
                let stop = |e: Option<PyErr>| {
                    if let (Some(e), Ok(mut r)) = (e, reason.lock()) {
                        r.get_or_insert(e);
                    }
                    flag.store(true, Ordering::SeqCst);
                };
                if let Err(e) = py.check_signals() {
                    return stop(Some(e));
                }
                if let Some(cb) = &callback {
                    match cb.call1(py, (p.done, p.total)) {
                        Ok(r)
                            if r.bind(py).is_instance_of::<PyBool>()
                                && !r.bind(py).is_truthy().unwrap_or(true) =>
                        {
                            stop(None)
                        }
                        Ok(_) => {}
                        Err(e) => stop(Some(e)),
                    }
                }
            });
        });
    Ok((Watch { stopped_by, bar }, control))
}

impl Watch {
    /// The run's result as Python sees it: a cancellation by Ctrl-C is the
    /// KeyboardInterrupt; by the callback, `CancelledError` (caused by what
    /// the callback raised, if it raised).
    pub(crate) fn finish<T>(
        self,
        py: Python<'_>,
        result: Result<T, SimulationError>,
    ) -> PyResult<T> {
        if let Some(bar) = &self.bar {
            let _ = bar.call_method0(py, "close");
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                let cancelled = matches!(e, SimulationError::Cancelled { .. });
                let reason = self.stopped_by.lock().ok().and_then(|mut r| r.take());
                match reason {
                    Some(r) if cancelled && r.is_instance_of::<PyKeyboardInterrupt>(py) => Err(r),
                    Some(r) if cancelled => {
                        let err = to_py_err(py, e);
                        err.set_cause(py, Some(r));
                        Err(err)
                    }
                    _ => Err(to_py_err(py, e)),
                }
            }
        }
    }
}
