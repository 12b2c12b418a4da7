//! The host layer: a job in a store directory, as the three front doors
//! run it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use smm_core::audit::Signer;
use smm_core::contract::Contract;
use smm_core::error::ErrorKind;
use smm_core::flow::{Campaign, FlowInputs, Step};
use smm_core::host::{self, LedgerChoice, StoreJob};
use smm_core::sim::RunOptions;
use smm_core::usage::{MemoryLedger, Period, UsageLedger};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const RUN: &str = include_str!("../../examples/agent-run.research.json");
const NOW: &str = "2025-09-01T12:00:00Z";

fn dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("smm-host-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn inputs(contract: &Contract) -> FlowInputs<'_> {
    FlowInputs {
        contract,
        request: None,
        campaign: Campaign::default(),
        agent_run: Some(smm_core::usage::AgentRun::from_json(RUN).unwrap()),
        now: NOW.parse().unwrap(),
        actor: "test",
        previous_bundle_ref: None,
    }
}

fn options() -> RunOptions {
    RunOptions {
        threads: Some(1),
        ..RunOptions::default()
    }
}

/// The directory layout every front door shares: the key, the ledger, the
/// chained bundles.
#[test]
fn a_job_in_a_directory_makes_its_key_ledger_and_chain() {
    let root = dir("layout");
    let contract = Contract::from_json(V2).unwrap();
    let first = StoreJob::in_dir(&root)
        .run(inputs(&contract), &options(), &host::os_entropy)
        .unwrap();
    assert!(root.join(host::KEY_FILE).is_file());
    assert_eq!(first.ledger_path, Some(root.join(host::LEDGER_FILE)));
    assert!(first.bundle_path.as_ref().is_some_and(|p| p.is_file()));
    // The second run reuses the key (entropy is not asked again) and
    // chains to the first.
    let no_entropy = || -> Result<[u8; 32], smm_core::Error> { panic!("entropy asked again") };
    let second = StoreJob::in_dir(&root)
        .run(inputs(&contract), &options(), &no_entropy)
        .unwrap();
    assert_ne!(first.outcome.bundle_id, second.outcome.bundle_id);
    let store = host::store_trusting(
        &root,
        &host::key_file_signer(&root.join(host::KEY_FILE), false, &no_entropy).unwrap(),
    )
    .unwrap();
    assert_eq!(
        host::latest_bundle(&store, &contract.contract().workspace_id).unwrap(),
        Some(second.outcome.bundle_id.clone())
    );
    std::fs::remove_dir_all(&root).unwrap();
}

/// A failing entropy source is the sign step's error: no key of zeros, no
/// key file, nothing in the ledger.
#[test]
fn failing_entropy_is_an_error_not_a_weak_key() {
    let root = dir("entropy");
    let contract = Contract::from_json(V2).unwrap();
    let broken = || -> Result<[u8; 32], smm_core::Error> {
        Err(smm_core::audit::AuditError::SignerFailed {
            key_id: "local".into(),
            message: "the entropy source is down".into(),
            source: None,
        }
        .into())
    };
    let e = StoreJob::in_dir(&root)
        .run(inputs(&contract), &options(), &broken)
        .unwrap_err();
    assert_eq!(e.step, Step::Sign);
    assert_eq!(e.kind(), ErrorKind::SignerFailed);
    assert!(e.to_string().contains("entropy source is down"), "{e}");
    assert!(!root.join(host::KEY_FILE).exists());
    assert!(!root.join(host::LEDGER_FILE).exists());
    // A missing key file that may not be made names the file.
    let missing = host::key_file_signer(&root.join("nope.pem"), false, &broken).unwrap_err();
    assert!(missing.to_string().contains("nope.pem"), "{missing}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// Any part can be given: a ledger (a shared database), a signer (a KMS),
/// a ledger choice.
#[test]
fn given_parts_are_used_instead_of_the_directorys() {
    let root = dir("given");
    let contract = Contract::from_json(V2).unwrap();
    let ledger = MemoryLedger::new();
    let signer = host::generate_signer("kms-1", &host::os_entropy).unwrap();
    let done = StoreJob::in_dir(&root)
        .signer(Some(&signer))
        .ledger(Some(&ledger))
        .run(inputs(&contract), &options(), &host::os_entropy)
        .unwrap();
    assert!(
        !root.join(host::KEY_FILE).exists(),
        "the given signer signed"
    );
    assert!(
        !root.join(host::LEDGER_FILE).exists(),
        "the given ledger kept the books"
    );
    assert_eq!(done.ledger_path, None);
    assert_eq!(
        done.outcome.verification.signed_by,
        vec![signer.key_id().to_string()]
    );
    let ws = &contract.contract().workspace_id;
    let t = NOW.parse().unwrap();
    assert!(ledger.used(ws, "tokens", Period::Total, t).unwrap() > 0);
    // An in-memory ledger by choice leaves no file either.
    let root2 = dir("memory");
    let done = StoreJob::in_dir(&root2)
        .ledger_choice(Some(LedgerChoice::Memory))
        .run(inputs(&contract), &options(), &host::os_entropy)
        .unwrap();
    assert_eq!(done.ledger_path, None);
    assert!(!root2.join(host::LEDGER_FILE).exists());
    // A given store needs a given signer.
    let store = host::store_trusting(&root, &signer).unwrap();
    let e = StoreJob::in_store(&store)
        .run(inputs(&contract), &options(), &host::os_entropy)
        .unwrap_err();
    assert_eq!(e.step, Step::Sign);
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::remove_dir_all(&root2).unwrap();
}

/// One type for the ledger a host opens: memory or SQLite, the SQLite file
/// made only by `open` (never by `open_existing`).
#[test]
fn a_ledger_choice_opens_one_ledger_type() {
    let root = dir("ledger-choice");
    std::fs::create_dir_all(&root).unwrap();
    let memory = LedgerChoice::Memory.open().unwrap();
    assert_eq!(memory.kind(), "memory");
    assert!(memory.as_sqlite().is_none());
    let file = root.join("books.db");
    let missing = LedgerChoice::Sqlite(file.clone())
        .open_existing()
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::LedgerStorage, "{missing}");
    assert!(!file.exists(), "open_existing made a file");
    let sqlite = LedgerChoice::Sqlite(file.clone()).open().unwrap();
    assert_eq!(sqlite.kind(), "sqlite");
    assert!(sqlite.as_sqlite().is_some() && file.exists());
    let again = LedgerChoice::Sqlite(file).open_existing().unwrap();
    assert!(again.as_dyn().quotas("ws").unwrap().is_empty());
}
