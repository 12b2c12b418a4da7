//! Peak heap bytes of one run: `peak-memory ITERATIONS exact|bounded [THREADS]`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use smm_benches::baseline_request;
use smm_core::sim::{PercentileMode, RunOptions, simulate};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator and only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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
    };
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let t = Instant::now();
    let Ok(report) = simulate(&req, &opts) else {
        return ExitCode::FAILURE;
    };
    let secs = t.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!(
        "{iterations} iterations, {mode:?}, {threads} threads: peak heap {peak} bytes ({:.2} B/iteration, {:.1} MiB), {secs:.2} s, readiness mean {}",
        peak as f64 / iterations as f64,
        peak as f64 / 1048576.0,
        report.readiness_score.mean
    );
    ExitCode::SUCCESS
}
