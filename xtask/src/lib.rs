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

/// The v2 example with its previousContractRef set to the terms hash of the
/// migrated v1 example (the chain the examples demonstrate).
pub fn chained_v2_example() -> Result<String, String> {
    let dir = root().join("examples");
    let v1_text = std::fs::read_to_string(dir.join("workspace.icblabs.v1.json"))
        .map_err(|e| e.to_string())?;
    let v2_text = std::fs::read_to_string(dir.join("workspace.icblabs.v2.json"))
        .map_err(|e| e.to_string())?;
    let v1 = smm_core::contract::parse_document(&v1_text).map_err(|e| e.to_string())?;
    let migrated = smm_core::contract::migrate_v1(&v1).map_err(|e| e.to_string())?;
    let hash = smm_core::contract::Contract::from_value(migrated)
        .map_err(|e| format!("migrated v1 example: {e}"))?
        .terms_hash()
        .to_string();
    let key = "\"previousContractRef\": \"";
    let start = v2_text
        .find(key)
        .ok_or("v2 example has no previousContractRef")?
        + key.len();
    let end = start
        + v2_text
            .get(start..)
            .and_then(|t| t.find('"'))
            .ok_or("unterminated previousContractRef")?;
    Ok(format!(
        "{}{hash}{}",
        v2_text.get(..start).unwrap_or(""),
        v2_text.get(end..).unwrap_or("")
    ))
}
