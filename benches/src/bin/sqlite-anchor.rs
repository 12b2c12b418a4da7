//! The SQLite ledger against the minimal statements a reserve+commit pair
//! needs, written by hand against rusqlite, in one run (issue 20).
//!
//! ```text
//! cargo run --release -p smm-benches --bin sqlite-anchor -- [PAIRS] [ROUNDS]
//! ```
//!
//! Both sides: one thread, one workspace with two quotas that never block
//! (tokens a UTC day, dollars a calendar month), each pair a reservation of
//! `{tokens: 450, cost_usd: 13,500,000 nano-dollars}` for a new job and its
//! commit of the same, two `BEGIN IMMEDIATE` transactions, WAL,
//! `synchronous = NORMAL` (and both sides at `FULL` too), the query planner
//! stability guarantee on both (no re-prepare on bind).
//!
//! The hand-written pair, prepared statements only:
//! - reserve: one `SELECT` of the quotas joined with their period's totals;
//!   one `INSERT` of the reservation (the amounts in its row; a unique
//!   (workspace, job) index makes a job's second reservation fail); one
//!   upsert of the reserved total per quota;
//! - commit: one `UPDATE ... RETURNING` of the reservation (active →
//!   committed, its amounts back); one `INSERT` of the usage row; one
//!   upsert per quota (committed up, reserved down).
//!
//! Nine statements in two transactions; the ledger does more (the expiry
//! sweep, the job checks, the day/month/total totals of every kind, the
//! breach check, the overflow checks), and the figures say what that costs.
//! Prints pairs per second, the median of ROUNDS alternating runs each.
//! Both sides run at one instant; the ledger runs once more with its clock
//! moving a second a pair, so that reservations expire during the run and
//! the sweep's share (finishing committed rows) is in the figure too.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "bench code"
)]

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, TransactionBehavior, params};
use smm_core::usage::{Amounts, Durability, Period, Quota, SqliteLedger, UsageLedger};

const NOW: &str = "2025-09-01T12:00:00Z";
const DAY: i64 = 20_332; // 2025-09-01, days since the epoch
const MONTH: i64 = 668; // months since 1970-01

/// The ledger's rate; `step` seconds pass between pairs (0: one instant,
/// as the hand-written side; 1: a reservation expires for every pair once
/// the first 900 s have passed, so the sweep's share is counted too).
fn ledger_rate(dir: &Path, pairs: u64, durability: Durability, step: i64) -> f64 {
    let path = dir.join("ledger.sqlite");
    let _ = std::fs::remove_file(&path);
    let l = SqliteLedger::open_with_durability(&path, durability).unwrap();
    for (kind, period) in [("tokens", Period::Day), ("cost_usd", Period::Month)] {
        l.set_quota(&Quota {
            workspace_id: "ws-1".into(),
            kind: kind.into(),
            period,
            limit: u64::MAX / 4,
        })
        .unwrap();
    }
    let amounts: Amounts = [("tokens".into(), 450), ("cost_usd".into(), 13_500_000)].into();
    let start: smm_core::time::Timestamp = NOW.parse().unwrap();
    let t = Instant::now();
    for i in 0..pairs {
        let now = start.plus_seconds(step * i as i64);
        let r = l
            .reserve("ws-1", &format!("job-{i}"), &amounts, now, 900)
            .unwrap();
        assert!(r.allowed());
        l.commit(&r.id, &amounts, now).unwrap();
    }
    pairs as f64 / t.elapsed().as_secs_f64()
}

const SCHEMA: &str = "
    CREATE TABLE quotas (
        workspace_id TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
        limit_value INTEGER NOT NULL, PRIMARY KEY (workspace_id, kind, period)
    ) WITHOUT ROWID;
    CREATE TABLE totals (
        workspace_id TEXT NOT NULL, kind TEXT NOT NULL, period TEXT NOT NULL,
        period_index INTEGER NOT NULL, committed INTEGER NOT NULL, reserved INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, kind, period, period_index)
    ) WITHOUT ROWID;
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY, workspace_id TEXT NOT NULL, job_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL, state TEXT NOT NULL, tokens INTEGER NOT NULL,
        cost INTEGER NOT NULL, UNIQUE (workspace_id, job_id)
    );
    CREATE TABLE usage (
        reservation_id INTEGER NOT NULL, committed_at INTEGER NOT NULL,
        tokens INTEGER NOT NULL, cost INTEGER NOT NULL
    );
    INSERT INTO quotas VALUES ('ws-1', 'tokens', 'day', 4611686018427387903),
                              ('ws-1', 'cost_usd', 'month', 4611686018427387903);
";

fn hand_rate(dir: &Path, pairs: u64, synchronous: &str) -> f64 {
    let path = dir.join("hand.sqlite");
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(dir.join("hand.sqlite-wal"));
    let _ = std::fs::remove_file(dir.join("hand.sqlite-shm"));
    let mut c = Connection::open(&path).unwrap();
    c.pragma_update(None, "journal_mode", "WAL").unwrap();
    c.pragma_update(None, "synchronous", synchronous).unwrap();
    // As the ledger does (no re-prepare on bind in this STAT4 build).
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .unwrap();
    c.execute_batch(SCHEMA).unwrap();
    let (tokens, cost) = (450i64, 13_500_000i64);
    let t = Instant::now();
    for i in 0..pairs {
        let job = format!("job-{i}");
        // Reserve.
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let standings: Vec<(String, i64, i64)> = {
            let mut st = tx
                .prepare_cached(
                    "SELECT q.kind, q.limit_value,
                            coalesce(t.committed + t.reserved, 0)
                     FROM quotas q LEFT JOIN totals t
                       ON t.workspace_id = q.workspace_id AND t.kind = q.kind
                      AND t.period = q.period
                      AND t.period_index = CASE q.period WHEN 'day' THEN ?2 ELSE ?3 END
                     WHERE q.workspace_id = ?1",
                )
                .unwrap();
            st.query_map(params!["ws-1", DAY, MONTH], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
        };
        for (kind, limit, held) in &standings {
            let want = if kind == "tokens" { tokens } else { cost };
            assert!(held + want <= *limit);
        }
        tx.prepare_cached(
            "INSERT INTO reservations (workspace_id, job_id, expires_at, state, tokens, cost)
             VALUES (?1, ?2, ?3, 'active', ?4, ?5)",
        )
        .unwrap()
        .execute(params!["ws-1", job, 1_756_728_900i64, tokens, cost])
        .unwrap();
        let id = tx.last_insert_rowid();
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO totals VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT DO UPDATE SET committed = committed + ?5, reserved = reserved + ?6",
                )
                .unwrap();
            up.execute(params!["ws-1", "tokens", "day", DAY, 0, tokens])
                .unwrap();
            up.execute(params!["ws-1", "cost_usd", "month", MONTH, 0, cost])
                .unwrap();
        }
        tx.commit().unwrap();
        // Commit.
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .unwrap();
        let (held_tokens, held_cost): (i64, i64) = tx
            .prepare_cached(
                "UPDATE reservations SET state = 'committed'
                 WHERE id = ?1 AND state = 'active' RETURNING tokens, cost",
            )
            .unwrap()
            .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        tx.prepare_cached("INSERT INTO usage VALUES (?1, ?2, ?3, ?4)")
            .unwrap()
            .execute(params![id, 1_756_728_000i64, tokens, cost])
            .unwrap();
        {
            let mut up = tx
                .prepare_cached(
                    "INSERT INTO totals VALUES (?1, ?2, ?3, ?4, ?5, 0)
                     ON CONFLICT DO UPDATE SET committed = committed + ?5, reserved = reserved - ?6",
                )
                .unwrap();
            up.execute(params!["ws-1", "tokens", "day", DAY, tokens, held_tokens])
                .unwrap();
            up.execute(params!["ws-1", "cost_usd", "month", MONTH, cost, held_cost])
                .unwrap();
        }
        tx.commit().unwrap();
    }
    pairs as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let pairs: u64 = args.get(1).map_or(20_000, |a| a.parse().unwrap());
    let rounds: usize = args.get(2).map_or(3, |a| a.parse().unwrap());
    let dir = std::env::temp_dir().join(format!("smm-sqlite-anchor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut led, mut hand, mut full, mut led_full, mut led_clock) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    if std::env::var("SMM_ANCHOR_LEDGER_ONLY").is_ok() {
        // For a profiler: the ledger alone.
        println!(
            "ledger {:.0} pairs/s",
            ledger_rate(&dir, pairs, Durability::Normal, 0)
        );
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    for _ in 0..rounds {
        hand.push(hand_rate(&dir, pairs, "NORMAL"));
        led.push(ledger_rate(&dir, pairs, Durability::Normal, 0));
        led_clock.push(ledger_rate(&dir, pairs, Durability::Normal, 1));
        full.push(hand_rate(&dir, pairs, "FULL"));
        led_full.push(ledger_rate(&dir, pairs, Durability::Full, 0));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let lc = median(led_clock.clone());
    let (l, h, f, lf) = (
        median(led.clone()),
        median(hand.clone()),
        median(full.clone()),
        median(led_full.clone()),
    );
    println!("{pairs} pairs a run, medians of {rounds} (pairs/s):");
    println!("  hand-written, NORMAL  {h:>9.0}   {hand:.0?}");
    println!("  ledger, NORMAL        {l:>9.0}   {led:.0?}");
    println!("  ledger, NORMAL, clock 1 s a pair {lc:>9.0}   {led_clock:.0?}");
    println!("  hand-written, FULL    {f:>9.0}   {full:.0?}");
    println!("  ledger, FULL          {lf:>9.0}   {led_full:.0?}");
    println!("  ledger / hand-written (NORMAL): {:.2}x", l / h);
    println!("  ledger / hand-written (FULL):   {:.2}x", lf / f);
    println!(
        "  ledger with the clock running / hand-written (NORMAL): {:.2}x",
        lc / h
    );
}
