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
    /// Case name (the expected file's stem).
    pub name: &'static str,
    /// The input file: `{simulationInput, tolerances, ...}`.
    pub input: PathBuf,
    /// The model the case runs (set in the input's `simulationConfig`).
    pub model: &'static str,
    /// The expected report.
    pub expected: PathBuf,
}

/// Every baseline case: the original system's example input under each
/// model (v1 reproduces the reports made before v2 existed).
pub fn cases() -> Vec<Case> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    [
        ("icblabs-seed42", "icblabs-seed42", "smm-readiness-v1"),
        ("icblabs-seed42-v2", "icblabs-seed42", "smm-readiness-v2"),
    ]
    .into_iter()
    .map(|(name, input, model)| Case {
        name,
        input: dir.join(format!("{input}.input.json")),
        model,
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
    let mut req = input
        .get("simulationInput")
        .cloned()
        .ok_or_else(|| format!("{}: no simulationInput", case.input.display()))?;
    if let Some(config) = req
        .get_mut("simulationConfig")
        .and_then(|c| c.as_object_mut())
    {
        config.insert("model".into(), case.model.into());
    }
    let req = SimulationRequest::from_value(&req).map_err(|e| e.to_string())?;
    // One thread: the report is the same on any count, and this is the plain path.
    let opts = RunOptions {
        threads: Some(1),
        keep_samples: false,
        ..Default::default()
    };
    let report = simulate(&req, &opts).map_err(|e| e.to_string())?;
    Ok(format!(
        "{}\n",
        report.to_json_pretty().map_err(|e| e.to_string())?
    ))
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
