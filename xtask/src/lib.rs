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
