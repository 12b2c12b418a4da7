//! Costs that must stay flat as the books grow (issue 20): the time of
//! `smm run` and of `smm bundle list --limit` against a file store that
//! already holds 10, 1,000, 10,000 and 100,000 bundles of the workspace (and then
//! 100,000 of other workspaces), against the same run on an empty store;
//! and the SQLite ledger's `status` at 1 million jobs against an empty
//! ledger.
//!
//! ```text
//! cargo build --release -p smm-cli
//! cargo run --release -p smm-benches --bin flat-costs -- [MAX_BUNDLES] [LEDGER_JOBS]
//! ```
//!
//! The store is filled in-process with real signed bundles (the first
//! run's bundle, re-dated and re-chained, signed by the store's own key and
//! published with `put_next`, so every one is verified on the way in);
//! each timed figure is the median of several `smm` processes (wall time,
//! spawn included). Prints a table and each stage's ratio to the empty
//! store's figure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "bench code"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use smm_core::audit::store::{BundleStore, FileBundleStore, StoredBundle};
use smm_core::audit::{AuditBundle, sign_bundle};
use smm_core::host;
use smm_core::usage::{Amounts, Period, Quota, SqliteLedger, UsageLedger};

const WS: &str = "ws-icblabs-0001";
/// Inside the example workspace's validity (30 days from 2025-08-24);
/// fills and runs go forward in
/// time from here (10 s apart), as the chain requires.
const START: i64 = 1_756_080_000; // 2025-08-25T00:00:00Z
const RUNS: usize = 5;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rfc3339(seconds: i64) -> String {
    smm_core::time::Timestamp { seconds, nanos: 0 }.to_rfc3339()
}

struct Clock(i64);

impl Clock {
    fn tick(&mut self) -> String {
        self.0 += 10;
        rfc3339(self.0)
    }
}

fn smm_bin() -> PathBuf {
    let p = root().join("target/release/smm");
    assert!(
        p.exists(),
        "build the CLI first: cargo build --release -p smm-cli"
    );
    p
}

fn smm(args: &[&str]) -> (Duration, Vec<u8>) {
    let t = Instant::now();
    let o = Command::new(smm_bin()).args(args).output().unwrap();
    let d = t.elapsed();
    assert!(
        o.status.success(),
        "smm {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    (d, o.stdout)
}

fn run_once(store: &Path, now: &str) -> (Duration, String) {
    let ex = root().join("examples");
    let p = |f: &str| ex.join(f).display().to_string();
    let (d, out) = smm(&[
        "run",
        &p("workspace.icblabs.v2.json"),
        "--campaign",
        &p("campaign.icblabs.json"),
        "--agent-run",
        &p("agent-run.research.json"),
        "--now",
        now,
        "--store",
        &store.display().to_string(),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    (d, v["bundleId"].as_str().unwrap().to_string())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `smm bundle list --limit 100`, first page and the page after `cursor`.
fn list_pages(store: &Path, cursor: &str) -> (Duration, Duration) {
    let s = store.display().to_string();
    let base = [
        "bundle",
        "list",
        "--store",
        &s,
        "--workspace",
        WS,
        "--limit",
        "100",
    ];
    let first = median(
        (0..RUNS)
            .map(|_| {
                let (d, out) = smm(&base);
                assert!(!out.is_empty());
                d
            })
            .collect(),
    );
    let mut after = base.to_vec();
    after.extend(["--after", cursor]);
    let later = median((0..RUNS).map(|_| smm(&after).0).collect());
    (first, later)
}

struct Filler {
    store: FileBundleStore,
    signer: smm_core::audit::LocalSigner,
    template: AuditBundle,
}

impl Filler {
    fn new(store_dir: &Path, template_id: &str) -> Filler {
        let signer =
            host::key_file_signer(&store_dir.join(host::KEY_FILE), false, &|| Ok([0; 32])).unwrap();
        let store = host::store_trusting(store_dir, &signer).unwrap();
        let template = store.get(template_id).unwrap().unwrap().bundle().unwrap();
        Filler {
            store,
            signer,
            template,
        }
    }

    /// `n` more bundles of `ws`, each chained to the one before.
    fn chain(&self, ws: &str, n: usize, clock: &mut Clock) {
        let mut head = self.store.head(ws).unwrap().map(|h| h.bundle_id);
        for _ in 0..n {
            let mut b = self.template.clone();
            b.workspace_id = ws.to_string();
            b.created_at = clock.tick();
            b.previous_bundle_ref = head.clone();
            let env = sign_bundle(&b, &[&self.signer]).unwrap();
            let stored = StoredBundle::from_envelope(&env).unwrap();
            head = Some(stored.bundle_id.clone());
            self.store.put_next(&stored).unwrap();
        }
    }
}

fn ledger_status(jobs: u64) {
    let dir = std::env::temp_dir().join(format!("smm-flat-ledger-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let l = SqliteLedger::open(dir.join("usage.sqlite")).unwrap();
    l.set_quota(&Quota {
        workspace_id: WS.into(),
        kind: "tokens".into(),
        period: Period::Month,
        limit: u64::MAX / 4,
    })
    .unwrap();
    let now = "2025-09-01T12:00:00Z".parse().unwrap();
    let amounts: Amounts = [("tokens".into(), 10)].into();
    let time_status = |l: &SqliteLedger| {
        median(
            (0..201)
                .map(|_| {
                    let t = Instant::now();
                    let s = l.status(WS, now).unwrap();
                    let d = t.elapsed();
                    assert!(!s.is_empty());
                    d
                })
                .collect(),
        )
    };
    println!("\nSQLite ledger status (median of 201 calls):");
    let empty = time_status(&l);
    println!("  {:>9} jobs  {:>8.1} us", 0, empty.as_secs_f64() * 1e6);
    let mut done = 0u64;
    let fill_t = Instant::now();
    for target in [1_000u64, 100_000, jobs] {
        if target <= done {
            continue;
        }
        while done < target {
            let r = l
                .reserve(WS, &format!("job-{done}"), &amounts, now, 900)
                .unwrap();
            assert!(r.allowed());
            l.commit(&r.id, &amounts, now).unwrap();
            done += 1;
        }
        let s = time_status(&l);
        println!(
            "  {:>9} jobs  {:>8.1} us  {:.2}x empty",
            done,
            s.as_secs_f64() * 1e6,
            s.as_secs_f64() / empty.as_secs_f64()
        );
    }
    println!(
        "  (filled at {:.0} pairs/s)",
        done as f64 / fill_t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let max: usize = args.get(1).map_or(100_000, |a| a.parse().unwrap());
    let jobs: u64 = args.get(2).map_or(1_000_000, |a| a.parse().unwrap());
    // SMM_FLAT_DIR: where the stores go (default: the temp directory).
    let dir = std::env::var_os("SMM_FLAT_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let base = dir.join(format!("smm-flat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let mut clock = Clock(START);

    // The empty store: each run in a fresh directory.
    let empty: Vec<Duration> = (0..RUNS)
        .map(|i| run_once(&base.join(format!("empty-{i}")), &clock.tick()).0)
        .collect();
    let empty = median(empty);
    println!(
        "smm run on an empty store: {:.1} ms (median of {RUNS} processes)",
        ms(empty)
    );

    let store = base.join("store");
    let (_, first) = run_once(&store, &clock.tick());
    let filler = Filler::new(&store, &first);
    // 10 bundles of the workspace: the run only (no full page yet).
    filler.chain(WS, 9, &mut clock);
    let at_ten = median(
        (0..RUNS)
            .map(|_| run_once(&store, &clock.tick()).0)
            .collect(),
    );
    // The page's own cost: a page of 100 from a workspace of 116 bundles.
    filler.chain(WS, 101, &mut clock);
    let (empty_list, _) = list_pages(&store, &first);
    println!(
        "bundle list --limit 100 (a full page) on a 116-bundle store: {:.1} ms",
        ms(empty_list)
    );
    println!(
        "\n{:>8} {:>8}  {:>9} {:>6}  {:>10} {:>10} {:>6}",
        "bundles", "others", "run ms", "x", "page1 ms", "pageN ms", "x"
    );
    println!(
        "{:>8} {:>8}  {:>9.1} {:>6.2}",
        10,
        0,
        ms(at_ten),
        at_ten.as_secs_f64() / empty.as_secs_f64()
    );
    let mut held = 116usize;
    let mut other_bundles = 0usize;
    let stages: Vec<(usize, bool)> = [1_000, 10_000, 100_000]
        .into_iter()
        .filter(|&n| n <= max)
        .map(|n| (n, false))
        .chain(std::iter::once((max.min(100_000), true)))
        .collect();
    for (n, others) in stages {
        let t = Instant::now();
        if n > held {
            filler.chain(WS, n - held, &mut clock);
            held = n;
        }
        if others {
            // As many bundles again, spread over 100 other workspaces.
            let per = (n / 100).max(1);
            for w in 0..100 {
                filler.chain(&format!("ws-other-{w:03}"), per, &mut clock);
            }
            other_bundles += per * 100;
        }
        let fill = t.elapsed();
        // A cursor in the middle of the chain.
        let middle = filler
            .store
            .list_page(WS, None, (held / 2).clamp(1, 10_000))
            .unwrap()
            .bundles
            .last()
            .unwrap()
            .bundle_id
            .clone();
        let runs: Vec<Duration> = (0..RUNS)
            .map(|_| run_once(&store, &clock.tick()).0)
            .collect();
        held += RUNS;
        let run = median(runs);
        let (p1, pn) = list_pages(&store, &middle);
        println!(
            "{:>8} {:>8}  {:>9.1} {:>6.2}  {:>10.1} {:>10.1} {:>6.2}   (filled in {:.0} s)",
            held - RUNS,
            other_bundles,
            ms(run),
            run.as_secs_f64() / empty.as_secs_f64(),
            ms(p1),
            ms(pn),
            pn.max(p1).as_secs_f64() / empty_list.as_secs_f64(),
            fill.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&base);
    ledger_status(jobs);
}
