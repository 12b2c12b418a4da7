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
use smm_core::sim::{PercentileMode, RunOptions, SimulationRequest};

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Tests in this file measure one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const EXAMPLE: &str = include_str!("../../examples/icblabs-seed42.request.json");

fn peak_bytes(iterations: u64, mode: PercentileMode) -> usize {
    peak_bytes_keeping(iterations, mode, false)
}

fn peak_bytes_keeping(iterations: u64, mode: PercentileMode, keep_samples: bool) -> usize {
    let mut req = SimulationRequest::from_json(EXAMPLE).unwrap();
    req.config.iterations = iterations;
    req.config.enable_early_termination = false;
    req.config.percentile_mode = mode;
    let opts = RunOptions {
        threads: Some(2),
        keep_samples,
        ..Default::default()
    };
    smm_core::sim::run(&req, &opts).unwrap(); // warm the pool cache
    let before = counting::start();
    let out = smm_core::sim::run(&req, &opts).unwrap();
    assert_eq!(out.report.reproducibility.iterations_run, iterations);
    assert_eq!(out.samples.is_some(), keep_samples);
    let peak = counting::peak_since(before);
    drop(out);
    peak
}

#[test]
fn exact_mode_stays_within_64_bytes_per_iteration() {
    let _g = SERIAL.lock().unwrap();
    let n = 2_000_000u64;
    let peak = peak_bytes_keeping(n, PercentileMode::Exact, true);
    let per_iteration = peak as f64 / n as f64;
    println!(
        "exact mode, samples kept: {peak} bytes peak for {n} iterations = {per_iteration:.2} B/iteration"
    );
    assert!(per_iteration <= 64.0, "{per_iteration} bytes per iteration");
}

/// Without samples to hand out, an exact run keeps 4-byte keys, not
/// 8-byte values: seven columns of keys and little else.
#[test]
fn exact_mode_without_samples_keeps_keys_within_32_bytes_per_iteration() {
    let _g = SERIAL.lock().unwrap();
    let n = 2_000_000u64;
    let peak = peak_bytes(n, PercentileMode::Exact);
    let per_iteration = peak as f64 / n as f64;
    println!(
        "exact mode, keys: {peak} bytes peak for {n} iterations = {per_iteration:.2} B/iteration"
    );
    assert!(per_iteration <= 32.0, "{per_iteration} bytes per iteration");
    let kept = peak_bytes_keeping(n, PercentileMode::Exact, true);
    assert!(
        peak * 3 < kept * 2,
        "keys {peak} bytes, values {kept} bytes"
    );
}

#[test]
fn bounded_mode_is_flat_in_iterations() {
    let _g = SERIAL.lock().unwrap();
    let small = peak_bytes(100_000, PercentileMode::Bounded);
    let large = peak_bytes(3_000_000, PercentileMode::Bounded);
    println!("bounded mode: {small} bytes at 1e5 iterations, {large} bytes at 3e6");
    // 30x the iterations: the same histograms (a set per thread).
    assert!(large <= small + small / 4, "{small} -> {large}");
    assert!(large < 64 << 20, "{large} bytes");
}
