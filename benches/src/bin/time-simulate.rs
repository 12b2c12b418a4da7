//! Time `simulate` in process: `time-simulate ITERATIONS REPEATS [THREADS [MODEL [MODE]]]`
//! (MODEL 1 runs `smm-readiness-v1`, anything else the default v2; MODE 1
//! exact percentiles, 2 bounded, anything else the request's `auto`).
//! Prints the median and best seconds, one per line (`median S`, `best S`).
//! Used by benches/python/overhead.py to compare the Python front door
//! with the same run from Rust.

use std::process::ExitCode;
use std::time::Instant;

use smm_benches::baseline_request;
use smm_core::sim::{PercentileMode, RunOptions, simulate};

fn main() -> ExitCode {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (Some(&iterations), Some(&repeats)) = (args.first(), args.get(1)) else {
        eprintln!("usage: time-simulate ITERATIONS REPEATS [THREADS [MODEL [MODE]]]");
        return ExitCode::FAILURE;
    };
    let threads = args.get(2).map(|t| *t as usize);
    let mode = match args.get(4) {
        Some(1) => PercentileMode::Exact,
        Some(2) => PercentileMode::Bounded,
        _ => PercentileMode::Auto,
    };
    let Some(mut req) = baseline_request(iterations, mode) else {
        return ExitCode::FAILURE;
    };
    if args.get(3) == Some(&1) {
        req.config.model = smm_core::sim::ModelVersion::V1;
    }
    let opts = RunOptions {
        threads,
        keep_samples: false,
        ..Default::default()
    };
    // Warm up (pool start, allocator state), as the Python side does.
    if simulate(&req, &opts).is_err() {
        return ExitCode::FAILURE;
    }
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        if simulate(&req, &opts).is_err() {
            return ExitCode::FAILURE;
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let best = times.first().copied().unwrap_or(0.0);
    println!("median {median}\nbest {best}");
    ExitCode::SUCCESS
}
