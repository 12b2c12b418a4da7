//! The PostgreSQL ledger's reserve+commit pairs per second against
//! pgbench's naive check-and-update, in one run on one server (issue 18).
//!
//! ```text
//! cargo run --release -p smm-benches --bin pg-ledger -- [SECONDS] [ROUNDS]
//! ```
//!
//! A throwaway server is started with `scripts/pg-server` (durable:
//! `synchronous_commit = on`, fsync on), or the one `SMM_BENCH_PG_URL`
//! names. Each round runs, one after the other, on one hot workspace and
//! on 1,000 workspaces:
//!
//! - pgbench, 8 clients (`-c 8 -j 2`), one transaction per request:
//!   `UPDATE naive_quota SET used = used + 10 WHERE ws = :ws AND used + 10
//!   <= lim` and an `INSERT` of the usage row;
//! - the ledger: 8 threads sharing one `PostgresLedger` of 8 connections,
//!   each `reserve` then `commit` of 10 tokens for a new job, against a
//!   daily token quota (so the never-overshoot check runs on every pair).
//!
//! Prints each figure and the medians' ratios.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "bench code"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use smm_core::usage::{Amounts, Period, PgOptions, PostgresLedger, Quota, UsageLedger};

const NOW: &str = "2025-09-01T12:00:00Z";
const THREADS: usize = 8;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn psql(url: &str, sql: &str) {
    let ok = Command::new("psql")
        .args([
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "SET client_min_messages = warning",
            "-c",
            sql,
            url,
        ])
        .status()
        .unwrap();
    assert!(ok.success(), "psql: {sql}");
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("pgbench").exists())
        .collect();
    found.sort();
    found.pop().expect("pgbench (Debian's postgresql package)")
}

/// pgbench's naive check-and-update on `workspaces` rows: transactions/s.
fn pgbench(url: &str, workspaces: u32, seconds: u64) -> f64 {
    let script = std::env::temp_dir().join(format!("smm-naive-{}.sql", std::process::id()));
    std::fs::write(
        &script,
        format!(
            "\\set ws random(1, {workspaces})\n\
             BEGIN;\n\
             UPDATE naive_quota SET used = used + 10 WHERE ws = :ws AND used + 10 <= lim;\n\
             INSERT INTO naive_usage (ws, amount) VALUES (:ws, 10);\n\
             END;\n"
        ),
    )
    .unwrap();
    psql(
        url,
        &format!(
            "DROP TABLE IF EXISTS naive_quota, naive_usage;
             CREATE TABLE naive_quota (ws INTEGER PRIMARY KEY, used BIGINT NOT NULL, lim BIGINT NOT NULL);
             CREATE TABLE naive_usage (id BIGSERIAL PRIMARY KEY, ws INTEGER NOT NULL, amount BIGINT NOT NULL,
                                       at TIMESTAMPTZ NOT NULL DEFAULT now());
             INSERT INTO naive_quota SELECT g, 0, 9000000000000000000 FROM generate_series(1, {workspaces}) g;"
        ),
    );
    psql(url, "VACUUM ANALYZE naive_quota");
    let out = Command::new(bin_dir().join("pgbench"))
        .args(["-n", "-c", "8", "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&script)
        .arg(url)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&script);
    text.lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no tps in {text}"))
}

/// The ledger's reserve+commit pairs per second, 8 threads, on
/// `workspaces` workspaces.
fn ledger(url: &str, workspaces: u32, seconds: u64, round: u32) -> f64 {
    let mut o = PgOptions::default();
    o.connections = THREADS;
    let l = PostgresLedger::connect_with(url, o).unwrap();
    for w in 0..workspaces {
        l.set_quota(&Quota {
            workspace_id: format!("ws-{w}"),
            kind: "tokens".into(),
            period: Period::Day,
            limit: u64::MAX / 4,
        })
        .unwrap();
    }
    let amounts: Amounts = [("tokens".into(), 10)].into();
    let now = NOW.parse().unwrap();
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (l, amounts, stop, done) = (&l, &amounts, &stop, &done);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let ws = format!("ws-{}", x % u64::from(workspaces));
                    let job = format!("r{round}-w{workspaces}-t{t}-{i}");
                    i += 1;
                    let r = l.reserve(&ws, &job, amounts, now, 900).unwrap();
                    assert!(r.allowed());
                    l.commit(&r.id, amounts, now).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10);
    let rounds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("smm-bench-pg-{}", std::process::id()));
    let (base, own) = match std::env::var("SMM_BENCH_PG_URL") {
        Ok(u) => (u, false),
        Err(_) => {
            let out = Command::new("bash")
                .arg(root().join("scripts/pg-server"))
                .arg("start")
                .arg(&dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            (
                String::from_utf8(out.stdout).unwrap().trim().to_string(),
                true,
            )
        }
    };
    let admin = format!("{base}/postgres");
    psql(&admin, "DROP DATABASE IF EXISTS smm_bench");
    psql(&admin, "CREATE DATABASE smm_bench");
    let url = format!("{base}/smm_bench");
    let sync = Command::new("psql")
        .args(["-At", &url, "-c", "SHOW synchronous_commit"])
        .output()
        .unwrap();
    println!(
        "server {base}: synchronous_commit = {}, {THREADS} clients/threads, {seconds} s a run, {rounds} rounds",
        String::from_utf8_lossy(&sync.stdout).trim()
    );
    // SMM_BENCH_WORKSPACES=1 or =1000 runs one side only (for profiling).
    let only: Option<u32> = std::env::var("SMM_BENCH_WORKSPACES")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut results: Vec<(u32, Vec<f64>, Vec<f64>)> = [1, 1000]
        .into_iter()
        .filter(|w| only.is_none_or(|o| o == *w))
        .map(|w| (w, vec![], vec![]))
        .collect();
    for round in 0..rounds {
        for (workspaces, naive, ours) in results.iter_mut() {
            let n = pgbench(&url, *workspaces, seconds);
            let o = ledger(&url, *workspaces, seconds, round);
            println!(
                "round {round}, {workspaces:>4} workspace(s): pgbench naive {n:>8.0} tx/s, ledger {o:>8.0} pairs/s ({:.2}x)",
                o / n
            );
            naive.push(n);
            ours.push(o);
        }
    }
    for (workspaces, naive, ours) in results {
        let (n, o) = (median(naive), median(ours));
        println!(
            "median, {workspaces:>4} workspace(s): pgbench naive {n:.0} tx/s, ledger {o:.0} reserve+commit pairs/s: {:.2}x",
            o / n
        );
    }
    if own {
        let _ = Command::new("bash")
            .arg(root().join("scripts/pg-server"))
            .arg("stop")
            .arg(&dir)
            .status();
    }
}
