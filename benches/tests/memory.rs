//! Peak heap use of a run, measured with a counting allocator (a count of
//! bytes, not a timing, so it is stable on a shared machine).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::sync::Mutex;

use smm_benches::counting::{self, CountingAlloc};
use smm_core::sim::{PercentileMode, RunOptions, SimulationRequest, simulate};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Tests in this file measure one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EXAMPLE: &str = include_str!("../../examples/icblabs-seed42.request.json");

fn peak_bytes(iterations: u64, mode: PercentileMode) -> usize {
    let mut req = SimulationRequest::from_json(EXAMPLE).unwrap();
    req.config.iterations = iterations;
    req.config.enable_early_termination = false;
    req.config.percentile_mode = mode;
    let opts = RunOptions {
        threads: Some(2),
        keep_samples: false,
        ..Default::default()
    };
    simulate(&req, &opts).unwrap(); // warm the pool cache
    let before = counting::start();
    let report = simulate(&req, &opts).unwrap();
    assert_eq!(report.reproducibility.iterations_run, iterations);
    counting::peak_since(before)
}

#[test]
fn exact_mode_stays_within_64_bytes_per_iteration() {
    let _g = SERIAL.lock().unwrap();
    let n = 2_000_000u64;
    let peak = peak_bytes(n, PercentileMode::Exact);
    let per_iteration = peak as f64 / n as f64;
    println!("exact mode: {peak} bytes peak for {n} iterations = {per_iteration:.2} B/iteration");
    assert!(per_iteration <= 64.0, "{per_iteration} bytes per iteration");
}

#[test]
fn bounded_mode_is_flat_in_iterations() {
    let _g = SERIAL.lock().unwrap();
    let small = peak_bytes(100_000, PercentileMode::Bounded);
    let large = peak_bytes(3_000_000, PercentileMode::Bounded);
    println!("bounded mode: {small} bytes at 1e5 iterations, {large} bytes at 3e6");
    // 30x the iterations: the same histograms and wave buffers.
    assert!(large <= small + small / 4, "{small} -> {large}");
    assert!(large < 64 << 20, "{large} bytes");
}
