//! The usage ledger: reserve-and-commit pairs per second, in memory and in
//! SQLite (WAL, synchronous=NORMAL), on one thread, against a workspace
//! with two quotas (tokens a day, dollars a month) that never block.
//!
//! Each memory sample starts from a fresh ledger (a sample of N pairs ends
//! with N jobs on the books: up to ~100,000 here), and a ledger grown to
//! 1 and 3 million jobs is timed once at the end, since a memory ledger
//! keeps every job for idempotency and its working set grows with them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "bench code"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use smm_core::usage::{Amounts, MemoryLedger, Period, Quota, SqliteLedger, UsageLedger};

const NOW: &str = "2025-09-01T12:00:00Z";

fn setup(l: &dyn UsageLedger) -> Amounts {
    for (kind, period) in [("tokens", Period::Day), ("cost_usd", Period::Month)] {
        l.set_quota(&Quota {
            workspace_id: "ws-1".into(),
            kind: kind.into(),
            period,
            limit: u64::MAX / 4,
        })
        .unwrap();
    }
    [("tokens".into(), 450), ("cost_usd".into(), 13_500_000)].into()
}

fn pairs(c: &mut Criterion, name: &str, l: &dyn UsageLedger) {
    let amounts = setup(l);
    let mut n = 0u64;
    let mut job = String::with_capacity(32);
    let mut g = c.benchmark_group("usage");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("reserve+commit ({name})"), |b| {
        b.iter(|| {
            n += 1;
            job.clear();
            use std::fmt::Write;
            write!(job, "job-{n}").unwrap();
            let r = l.reserve("ws-1", &job, &amounts, ts(NOW), 900).unwrap();
            l.commit(&r.id, &amounts, ts(NOW)).unwrap()
        })
    });
    g.finish();
}

/// `n` pairs on a fresh memory ledger, timed.
fn memory_pairs(n: u64) -> std::time::Duration {
    let l = MemoryLedger::new();
    let amounts = setup(&l);
    let mut job = String::with_capacity(32);
    let start = std::time::Instant::now();
    for i in 0..n {
        job.clear();
        use std::fmt::Write;
        write!(job, "job-{i}").unwrap();
        let r = l.reserve("ws-1", &job, &amounts, ts(NOW), 900).unwrap();
        std::hint::black_box(l.commit(&r.id, &amounts, ts(NOW)).unwrap());
    }
    start.elapsed()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("usage");
    g.throughput(Throughput::Elements(1));
    g.bench_function("reserve+commit (memory, fresh ledger per sample)", |b| {
        b.iter_custom(memory_pairs)
    });
    g.finish();
    for n in [1_000_000u64, 3_000_000] {
        let t = memory_pairs(n);
        println!(
            "usage/reserve+commit (memory, {n} jobs on the books): {:.0} ns a pair, {:.0} pairs/s",
            t.as_nanos() as f64 / n as f64,
            n as f64 / t.as_secs_f64()
        );
    }
    let dir = std::env::temp_dir().join(format!("smm-bench-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sql = SqliteLedger::open(dir.join("ledger.sqlite")).unwrap();
    pairs(c, "sqlite, WAL, synchronous=NORMAL", &sql);
    drop(sql);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
