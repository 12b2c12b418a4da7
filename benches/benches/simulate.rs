//! End-to-end simulation throughput, exact statistics included.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smm_benches::baseline_request;
use smm_core::sim::{PercentileMode, RunOptions, simulate};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("simulate");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    for (iterations, mode, threads) in [
        (10_000_000u64, PercentileMode::Exact, 2usize),
        (10_000_000, PercentileMode::Bounded, 2),
        (1_000_000, PercentileMode::Exact, 1),
        (1_000_000, PercentileMode::Exact, 2),
    ] {
        let req = baseline_request(iterations, mode).unwrap();
        let opts = RunOptions {
            threads: Some(threads),
            keep_samples: false,
            ..Default::default()
        };
        g.throughput(Throughput::Elements(iterations));
        g.bench_function(format!("{iterations}/{mode:?}/{threads}t"), |b| {
            b.iter(|| simulate(&req, &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
