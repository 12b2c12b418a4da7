//! Peak heap bytes of one run: `peak-memory ITERATIONS exact|bounded [THREADS]`.

use std::process::ExitCode;
use std::time::Instant;

use smm_benches::baseline_request;
use smm_benches::counting::{self, CountingAlloc};
use smm_core::sim::{PercentileMode, RunOptions, simulate};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let iterations: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let mode = match args.get(1).map(String::as_str) {
        Some("bounded") => PercentileMode::Bounded,
        _ => PercentileMode::Exact,
    };
    let threads = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let Some(req) = baseline_request(iterations, mode) else {
        return ExitCode::FAILURE;
    };
    let opts = RunOptions {
        threads: Some(threads),
        keep_samples: false,
        ..Default::default()
    };
    let before = counting::start();
    let t = Instant::now();
    let Ok(report) = simulate(&req, &opts) else {
        return ExitCode::FAILURE;
    };
    let secs = t.elapsed().as_secs_f64();
    let peak = counting::peak_since(before);
    println!(
        "{iterations} iterations, {mode:?}, {threads} threads: peak heap {peak} bytes ({:.2} B/iteration, {:.1} MiB), {secs:.2} s, readiness mean {}",
        peak as f64 / iterations as f64,
        peak as f64 / 1048576.0,
        report.readiness_score.mean
    );
    ExitCode::SUCCESS
}
