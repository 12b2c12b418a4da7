//! `cargo xtask bless`: regenerate the JSON Schemas in `schemas/`, the C
//! header `smm-ffi/include/smm.h` and the baselines' expected reports.

use std::path::PathBuf;

use std::process::ExitCode;
use xtask::{
    chained_v2_example, generate_header, header_path, policy_input_example, root, v1_example,
};

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "bless" => bless(),
        _ => Err("usage: cargo xtask bless".to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_if_changed(path: PathBuf, text: &str) -> Result<(), String> {
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

fn bless() -> Result<(), String> {
    let schemas = root().join("schemas");
    std::fs::create_dir_all(&schemas).map_err(|e| e.to_string())?;
    for (name, text) in smm_core::schema::all() {
        write_if_changed(schemas.join(name), &text)?;
    }
    write_if_changed(xtask::ffi_limits_path(), &xtask::generate_ffi_limits())?;
    let header = generate_header(&root().join("smm-ffi"))?;
    write_if_changed(header_path(), &header)?;
    // v1 first: the v2 example chains to its terms hash.
    write_if_changed(
        root().join("examples/workspace.icblabs.v1.json"),
        &v1_example()?,
    )?;
    write_if_changed(
        root().join("examples/workspace.icblabs.v2.json"),
        &chained_v2_example()?,
    )?;
    write_if_changed(
        root().join("examples/policy-input.icblabs.json"),
        &policy_input_example()?,
    )?;
    for path in smm_baselines::regenerate()? {
        println!("wrote {path}");
    }
    Ok(())
}
