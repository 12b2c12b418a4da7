//! Generators for the checked-in files; shared by `cargo xtask bless` and the
//! drift tests.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Generate the C header from the smm-ffi crate with its cbindgen.toml.
pub fn generate_header(ffi_dir: &Path) -> Result<String, String> {
    let config = cbindgen::Config::from_file(ffi_dir.join("cbindgen.toml"))
        .map_err(|e| format!("cbindgen.toml: {e}"))?;
    // lib.rs; cbindgen follows its `mod` declarations.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(ffi_dir.join("src/lib.rs"))
        .generate()
        .map_err(|e| format!("cbindgen: {e}"))?;
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).map_err(|e| e.to_string())
}

/// Path of the checked-in header.
pub fn header_path() -> PathBuf {
    root().join("smm-ffi/include/smm.h")
}

/// Replace the string value of `"key": "..."` in JSON text, keeping the
/// layout (the examples are hand-formatted).
fn set_string_field(text: &str, key: &str, value: &str) -> Result<String, String> {
    let pattern = format!("\"{key}\": \"");
    let start = text
        .find(&pattern)
        .ok_or_else(|| format!("no {key} field"))?
        + pattern.len();
    let end = start
        + text
            .get(start..)
            .and_then(|t| t.find('"'))
            .ok_or_else(|| format!("unterminated {key}"))?;
    Ok(format!(
        "{}{value}{}",
        text.get(..start).unwrap_or(""),
        text.get(end..).unwrap_or("")
    ))
}

fn read_example(name: &str) -> Result<String, String> {
    std::fs::read_to_string(root().join("examples").join(name)).map_err(|e| format!("{name}: {e}"))
}

fn default_checksum() -> Result<String, String> {
    Ok(smm_core::policy::PolicyBundle::default_bundle()
        .map_err(|e| e.to_string())?
        .checksum()
        .to_string())
}

/// The v1 example carrying the default policy bundle's checksum.
pub fn v1_example() -> Result<String, String> {
    set_string_field(
        &read_example("workspace.icblabs.v1.json")?,
        "policyBundleChecksum",
        &default_checksum()?,
    )
}

/// The v2 example carrying the default policy bundle's checksum, with its
/// previousContractRef set to the terms hash of the migrated v1 example
/// (the chain the examples demonstrate).
pub fn chained_v2_example() -> Result<String, String> {
    let v1 = smm_core::contract::parse_document(&v1_example()?).map_err(|e| e.to_string())?;
    let migrated = smm_core::contract::migrate_v1(&v1).map_err(|e| e.to_string())?;
    let hash = smm_core::contract::Contract::from_value(migrated)
        .map_err(|e| format!("migrated v1 example: {e}"))?
        .terms_hash()
        .to_string();
    let v2 = set_string_field(
        &read_example("workspace.icblabs.v2.json")?,
        "policyBundleChecksum",
        &default_checksum()?,
    )?;
    set_string_field(&v2, "previousContractRef", &hash)
}

/// `examples/policy-input.icblabs.json`: a complete policy input for the v2
/// example workspace (its simulation run with the contract's
/// simulationConfig), which the default bundle allows.
pub fn policy_input_example() -> Result<String, String> {
    use serde_json::json;
    let contract: serde_json::Value =
        serde_json::from_str(&chained_v2_example()?).map_err(|e| e.to_string())?;
    let cfg = contract
        .get("simulationConfig")
        .cloned()
        .unwrap_or(json!({}));
    let request = json!({
        "workspaceContext": contract,
        "simulationConfig": {
            "iterations": cfg.get("iterations").cloned().unwrap_or(json!(1000)),
            "randomSeed": cfg.get("randomSeed").cloned().unwrap_or(json!(42)),
        },
    });
    let request =
        smm_core::sim::SimulationRequest::from_value(&request).map_err(|e| e.to_string())?;
    let opts = smm_core::sim::RunOptions {
        threads: Some(1),
        keep_samples: false,
        ..Default::default()
    };
    let report = smm_core::sim::simulate(&request, &opts).map_err(|e| e.to_string())?;
    let summary = smm_core::audit::SimulationSummary::from(&report);
    let input = json!({
        "workspace": contract,
        "workflow": [
            {"id": "research_brand", "type": "research", "estimatedCost": 40, "currency": "USD",
             "flags": {"callsExternalApis": true, "apiCallsApproved": true}},
            {"id": "generate_content", "type": "creative", "estimatedCost": 260, "currency": "USD",
             "flags": {"usesSyntheticVoice": true, "voiceModel": "user:alice@icblabs.com-voice-v1",
                       "contentTopics": ["developer_tools", "product_launch"]}},
            {"id": "schedule_posts", "type": "publish", "estimatedCost": 100, "currency": "USD",
             "flags": {"channels": ["linkedin", "x", "instagram"], "postsPerHour": 2, "publicVisibility": true}}
        ],
        "currentSpend": {"thisWeek": 300, "total": 1800, "currency": "USD"},
        "simulation": summary,
        "agentOutput": {"confidenceScore": 0.91, "verified": true,
                        "citations": ["https://icblabs.com/press/2025-08-launch"]},
        "timestamp": "2025-09-01T12:00:00Z",
    });
    // Check it, as a user's input would be.
    smm_core::policy::PolicyInput::from_value(&input).map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string_pretty(&input).map_err(|e| e.to_string())?;
    text.push('\n');
    Ok(text)
}
