//! Simulate a request file and print the report as JSON.
//!
//! ```text
//! smm-simulate [REQUEST.json] [--threads N] [--iterations N] [--seed N]
//! ```
//! Without a file, simulates `examples/icblabs-seed42.request.json`.

use std::process::ExitCode;

use smm_core::sim::{RunOptions, SimulationRequest, simulate};

const DEFAULT_REQUEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/icblabs-seed42.request.json");

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("smm-simulate: {msg}");
            ExitCode::from(2)
        }
    }
}

fn real_main() -> Result<(), String> {
    let mut path = DEFAULT_REQUEST.to_string();
    let mut opts = RunOptions::default();
    let mut iterations = None;
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a non-negative integer"))
        };
        match a.as_str() {
            "--threads" => opts.threads = Some(value("--threads")? as usize),
            "--iterations" => iterations = Some(value("--iterations")?),
            "--seed" => seed = Some(value("--seed")?),
            "-h" | "--help" => {
                println!(
                    "usage: smm-simulate [REQUEST.json] [--threads N] [--iterations N] [--seed N]"
                );
                return Ok(());
            }
            _ if a.starts_with('-') => return Err(format!("unknown option {a}")),
            _ => path = a,
        }
    }
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let mut req = SimulationRequest::from_json(&text).map_err(|e| format!("{path}: {e}"))?;
    if let Some(n) = iterations {
        req.config.iterations = n;
    }
    if let Some(s) = seed {
        req.config.random_seed = s;
    }
    let report = simulate(&req, &opts).map_err(|e| e.to_string())?;
    println!("{}", report.to_json_pretty());
    Ok(())
}
