//! Policy evaluation with the default bundle on the example input: load and
//! compile, one decision on the VM and on the interpreter (engine reused),
//! and decisions per second on every core.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "bench code"
)]

use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smm_benches::POLICY_INPUT;
use smm_core::policy::{EvalMode, PolicyBundle, PolicyInput};

fn bench(c: &mut Criterion) {
    let files: Vec<(String, Vec<u8>)> = PolicyBundle::default_files()
        .map(|(p, s)| (p.to_string(), s.as_bytes().to_vec()))
        .collect();
    let bundle = PolicyBundle::from_files(files.clone()).unwrap();
    let input = PolicyInput::from_json(POLICY_INPUT).unwrap();
    assert!(bundle.evaluate(&input).unwrap().allow);

    let mut g = c.benchmark_group("policy");
    g.bench_function("load+compile default bundle", |b| {
        b.iter(|| PolicyBundle::from_files(files.clone()).unwrap())
    });
    g.throughput(Throughput::Elements(1));
    g.bench_function("decision (VM)", |b| {
        b.iter(|| bundle.evaluate_with(&input, EvalMode::Vm).unwrap())
    });
    g.bench_function("decision (interpreter)", |b| {
        b.iter(|| bundle.evaluate_with(&input, EvalMode::Interpreter).unwrap())
    });
    g.bench_function("parse+validate input", |b| {
        b.iter(|| PolicyInput::from_json(POLICY_INPUT).unwrap())
    });
    g.finish();

    // Decisions per second on every core: one shared bundle, a thread per
    // core, each thread with its own input (as concurrent requests have).
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    for mode in [EvalMode::Vm, EvalMode::Interpreter] {
        let per_thread = 40_000 / threads;
        // Warm each thread's VM first (one compile per thread and bundle).
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| bundle.evaluate_with(&input, mode).unwrap());
            }
        });
        let start = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let input = PolicyInput::from_json(POLICY_INPUT).unwrap();
                    for _ in 0..per_thread {
                        bundle.evaluate_with(&input, mode).unwrap();
                    }
                });
            }
        });
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{mode:?}: {:.0} decisions/s on {threads} threads",
            (per_thread * threads) as f64 / secs
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
