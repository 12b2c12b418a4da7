//! Golden baselines: each case is an input file checked in beside this crate
//! and the report this engine produced for it. `cargo xtask bless` rewrites
//! the expected files; the tests in `tests/` fail when they are stale.

use std::path::PathBuf;

use smm_core::sim::{RunOptions, SimulationRequest, simulate};

/// The command that regenerates every baseline.
pub const REGENERATE: &str = "cargo xtask bless";

/// One baseline case.
#[derive(Debug, Clone)]
pub struct Case {
    /// Case name (file stem).
    pub name: &'static str,
    /// The input file: `{simulationInput, tolerances, ...}`.
    pub input: PathBuf,
    /// The expected report.
    pub expected: PathBuf,
}

/// Every baseline case.
pub fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    ["icblabs-seed42"]
        .into_iter()
        .map(|name| Case {
            name,
            input: dir.join(format!("{name}.input.json")),
            expected: dir.join(format!("{name}.expected.json")),
        })
        .collect()
}

/// Read a case's input file.
pub fn read_input(case: &Case) -> Result<serde_json::Value, String> {
    let text = std::fs::read_to_string(&case.input)
        .map_err(|e| format!("{}: {e}", case.input.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", case.input.display()))
}

/// Run a case and render the expected file's text (pretty JSON + newline).
pub fn render(case: &Case) -> Result<String, String> {
    let input = read_input(case)?;
    let req = input
        .get("simulationInput")
        .ok_or_else(|| format!("{}: no simulationInput", case.input.display()))?;
    let req = SimulationRequest::from_value(req).map_err(|e| e.to_string())?;
    // One thread: the report is the same on any count, and this is the plain path.
    let opts = RunOptions {
        threads: Some(1),
        keep_samples: false,
        ..Default::default()
    };
    let report = simulate(&req, &opts).map_err(|e| e.to_string())?;
    Ok(format!("{}\n", report.to_json_pretty()))
}

/// Rewrite every expected file; returns the names of the files that changed.
pub fn regenerate() -> Result<Vec<String>, String> {
    let mut changed = Vec::new();
    for case in cases() {
        let text = render(&case)?;
        if std::fs::read_to_string(&case.expected).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&case.expected, text)
                .map_err(|e| format!("{}: {e}", case.expected.display()))?;
            changed.push(case.expected.display().to_string());
        }
    }
    Ok(changed)
}
