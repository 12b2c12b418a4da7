//! The main job killed at every step boundary (issue 16): a child process
//! runs the flow on a SQLite ledger and a file store and aborts before its
//! k-th call to either, for every k. Whatever the point, the books and the
//! evidence agree: no stored bundle records usage the ledger did not
//! count, and the next run of the same job completes the state, counting
//! the usage exactly once in one verified chain.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::sync::atomic::{AtomicUsize, Ordering};

use smm_core::audit::store::{BundleStore, FileBundleStore, PutOutcome, StoreEvent, StoredBundle};
use smm_core::audit::{
    AuditBundle, AuditError, LocalSigner, Signer, TrustedKey, key_fingerprint_id,
    verify_bundle_chain,
};
use smm_core::contract::Contract;
use smm_core::flow::{self, FlowInputs, FlowServices};
use smm_core::policy::PolicyBundle;
use smm_core::sim::RunOptions;
use smm_core::usage::{
    AgentRun, Amounts, CommitReceipt, Period, Quota, QuotaStatus, Reservation, SqliteLedger,
    UsageError, UsageLedger,
};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const CAMPAIGN: &str = include_str!("../../examples/campaign.icblabs.json");
const RUN: &str = include_str!("../../examples/agent-run.research.json");
const NOW: &str = "2025-09-01T12:00:00Z";
/// After every hold of a killed run has expired.
const LATER: &str = "2025-09-01T13:00:00Z";
const WS: &str = "ws-icblabs-0001";

fn signer() -> LocalSigner {
    let s = LocalSigner::from_secret_bytes("local", &[7; 32]).unwrap();
    let id = key_fingerprint_id(s.public_key());
    s.with_key_id(&id)
}

fn trusted(s: &dyn Signer) -> Vec<TrustedKey> {
    vec![TrustedKey {
        key_id: s.key_id().to_string(),
        key: *s.public_key(),
    }]
}

/// Counts the calls to the services; aborts the process (no unwinding, no
/// destructors: a kill) before call number `at`.
struct Clock {
    calls: AtomicUsize,
    at: usize,
}

impl Clock {
    fn tick(&self) {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.at {
            std::process::abort();
        }
    }
}

struct Ledger<'a>(&'a dyn UsageLedger, &'a Clock);

impl UsageLedger for Ledger<'_> {
    fn set_quota(&self, q: &Quota) -> Result<(), UsageError> {
        self.1.tick();
        self.0.set_quota(q)
    }
    fn quotas(&self, ws: &str) -> Result<Vec<Quota>, UsageError> {
        self.1.tick();
        self.0.quotas(ws)
    }
    fn reserve_within(
        &self,
        ws: &str,
        job: &str,
        amounts: &Amounts,
        now: smm_core::time::Timestamp,
        ttl: u64,
        limits: &[Quota],
    ) -> Result<Reservation, UsageError> {
        self.1.tick();
        self.0.reserve_within(ws, job, amounts, now, ttl, limits)
    }
    fn commit(
        &self,
        id: &str,
        actual: &Amounts,
        now: smm_core::time::Timestamp,
    ) -> Result<CommitReceipt, UsageError> {
        self.1.tick();
        self.0.commit(id, actual, now)
    }
    fn release(&self, id: &str) -> Result<(), UsageError> {
        self.1.tick();
        self.0.release(id)
    }
    fn used(
        &self,
        ws: &str,
        kind: &str,
        period: Period,
        now: smm_core::time::Timestamp,
    ) -> Result<u64, UsageError> {
        self.1.tick();
        self.0.used(ws, kind, period, now)
    }
    fn status_within(
        &self,
        ws: &str,
        now: smm_core::time::Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError> {
        self.1.tick();
        self.0.status_within(ws, now, limits)
    }
}

struct Store<'a>(&'a dyn BundleStore, &'a Clock);

impl BundleStore for Store<'_> {
    fn put(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
        self.1.tick();
        self.0.put(b)
    }
    fn put_next(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
        self.1.tick();
        self.0.put_next(b)
    }
    fn check_publishable(&self, b: &StoredBundle) -> Result<(), AuditError> {
        self.1.tick();
        self.0.check_publishable(b)
    }
    fn head(&self, ws: &str) -> Result<Option<StoredBundle>, AuditError> {
        self.1.tick();
        self.0.head(ws)
    }
    fn get(&self, id: &str) -> Result<Option<StoredBundle>, AuditError> {
        self.1.tick();
        self.0.get(id)
    }
    fn list(
        &self,
        ws: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        self.1.tick();
        self.0.list(ws, from, to)
    }
    fn history(&self, id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        self.1.tick();
        self.0.history(id)
    }
}

/// One run of the main job on the books in `dir` at `now`, killed before
/// service call `at` (never, with `usize::MAX`).
fn run_once(dir: &std::path::Path, now: &str, at: usize) -> Result<(), flow::FlowError> {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer();
    let sqlite = SqliteLedger::open(dir.join("usage.sqlite")).unwrap();
    let files = FileBundleStore::open(dir.join("store"), trusted(&s)).unwrap();
    let clock = Clock {
        calls: AtomicUsize::new(0),
        at,
    };
    let (ledger, store) = (Ledger(&sqlite, &clock), Store(&files, &clock));
    let inputs = FlowInputs {
        contract: &contract,
        request: None,
        campaign: serde_json::from_str(CAMPAIGN).unwrap(),
        agent_run: Some(serde_json::from_str(RUN).unwrap()),
        now: ts(now),
        actor: "crash",
        previous_bundle_ref: None,
    };
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    flow::run_chained(inputs, services, &RunOptions::default()).map(|_| ())
}

/// The books agree: every stored bundle verifies and forms one chain, and
/// a bundle that records the job means the ledger counted it, once.
fn books_agree(dir: &std::path::Path) -> (u64, usize) {
    let s = signer();
    let sqlite = SqliteLedger::open(dir.join("usage.sqlite")).unwrap();
    let files = FileBundleStore::open(dir.join("store"), trusted(&s)).unwrap();
    let run: AgentRun = serde_json::from_str(RUN).unwrap();
    let used = sqlite.used(WS, "tokens", Period::Total, ts(LATER)).unwrap();
    assert!(
        used == 0 || used == run.total_tokens(),
        "the job counted {used} tokens"
    );
    let bundles: Vec<AuditBundle> = files
        .list(WS, None, None)
        .unwrap()
        .iter()
        .map(|b| b.bundle().unwrap())
        .collect();
    let recorded = bundles.iter().any(|b| {
        b.audit_trail
            .iter()
            .any(|e| e.event == "agent_run_recorded")
    });
    assert!(
        !recorded || used == run.total_tokens(),
        "a stored bundle records the run while the ledger counted {used}"
    );
    if !bundles.is_empty() {
        let report = verify_bundle_chain(&bundles).unwrap();
        assert!(report.issues.is_empty(), "{:?}", report.issues);
    }
    (used, bundles.len())
}

#[test]
fn a_run_killed_at_any_step_leaves_the_books_in_agreement() {
    let exe = std::env::current_exe().unwrap();
    let root = std::env::temp_dir().join(format!("smm-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let mut killed = 0;
    for at in 0.. {
        let dir = root.join(format!("at-{at}"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = std::process::Command::new(&exe)
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("SMM_CRASH_DIR", &dir)
            .env("SMM_CRASH_AT", at.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        let (used, _) = books_agree(&dir);
        if child.success() {
            // The run passed every call: it is complete.
            let run: AgentRun = serde_json::from_str(RUN).unwrap();
            assert_eq!(used, run.total_tokens());
            break;
        }
        killed += 1;
        // The next run of the same job, after the killed run's hold has
        // expired, completes the state: the usage once, a recording bundle.
        run_once(&dir, LATER, usize::MAX).unwrap();
        let (used, n) = books_agree(&dir);
        let run: AgentRun = serde_json::from_str(RUN).unwrap();
        assert_eq!(used, run.total_tokens(), "killed before call {at}");
        assert!(n >= 1);
        assert!(at < 100, "the run never completed");
    }
    // The flow calls its services several times: each boundary was tried.
    assert!(killed >= 6, "only {killed} kill points");
    std::fs::remove_dir_all(&root).unwrap();
}

/// The child of `a_run_killed_at_any_step_leaves_the_books_in_agreement`.
#[test]
#[ignore = "a child process of a_run_killed_at_any_step_leaves_the_books_in_agreement"]
fn crash_child() {
    let dir = std::env::var("SMM_CRASH_DIR").expect("SMM_CRASH_DIR: run by the parent test");
    let at: usize = std::env::var("SMM_CRASH_AT")
        .expect("SMM_CRASH_AT")
        .parse()
        .unwrap();
    run_once(std::path::Path::new(&dir), NOW, at).unwrap();
}

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
