//! Policy evaluation with the default bundle on the example input: load and
//! compile, one decision on the VM, natively and on the interpreter (engine
//! reused), the cost per campaign step, and decisions per second on one
//! and every core.

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
    assert!(bundle.has_native());
    g.bench_function("decision (native)", |b| {
        b.iter(|| bundle.evaluate_with(&input, EvalMode::Native).unwrap())
    });
    g.bench_function("decision (interpreter)", |b| {
        b.iter(|| bundle.evaluate_with(&input, EvalMode::Interpreter).unwrap())
    });
    g.bench_function("parse+validate input", |b| {
        b.iter(|| PolicyInput::from_json(POLICY_INPUT).unwrap())
    });
    // Campaigns of 10, 100 and 1,000 steps (the example's steps repeated,
    // renamed, each costing 1): the cost per step on the VM and natively.
    let doc: serde_json::Value = serde_json::from_str(POLICY_INPUT).unwrap();
    for n in [10usize, 100, 1000] {
        let mut d = doc.clone();
        let base = d["workflow"].as_array().unwrap().clone();
        let steps: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                let mut s = base[i % base.len()].clone();
                s["id"] = format!("step_{i}").into();
                s["estimatedCost"] = 1.into();
                s
            })
            .collect();
        d["workflow"] = steps.into();
        let many = PolicyInput::from_value(&d).unwrap();
        for mode in [EvalMode::Vm, EvalMode::Native] {
            g.bench_function(format!("decision ({mode:?}), {n} steps"), |b| {
                b.iter(|| bundle.evaluate_with(&many, mode).unwrap())
            });
        }
    }
    g.finish();

    // Decisions per second on every core: one shared bundle, a thread per
    // core, each thread with its own input (as concurrent requests have).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    for (mode, threads) in [
        (EvalMode::Vm, cores),
        (EvalMode::Interpreter, cores),
        (EvalMode::Native, 1),
        (EvalMode::Native, cores),
    ] {
        let per_thread = if mode == EvalMode::Native {
            400_000 / threads
        } else {
            40_000 / threads
        };
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
