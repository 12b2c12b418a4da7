//! The main job end to end, and each of its steps broken in turn.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use serde_json::Value;
use smm_core::audit::store::{
    BundleStore, MemoryBundleStore, PutOutcome, StoreEvent, StoredBundle,
};
use smm_core::audit::{
    AuditBundle, AuditError, ExternalSigner, LocalSigner, Signer, TrustedKey, key_fingerprint_id,
};
use smm_core::contract::Contract;
use smm_core::error::ErrorKind;
use smm_core::flow::{self, Campaign, FlowInputs, FlowServices, Step};
use smm_core::policy::PolicyBundle;
use smm_core::sim::RunOptions;
use smm_core::usage::{AgentRun, MemoryLedger, Period, Quota, UsageLedger};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const CAMPAIGN: &str = include_str!("../../examples/campaign.icblabs.json");
const RUN: &str = include_str!("../../examples/agent-run.research.json");
const NOW: &str = "2025-09-01T12:00:00Z";

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

fn contract_with(edit: impl FnOnce(&mut Value)) -> Contract {
    let mut doc: Value = serde_json::from_str(V2).unwrap();
    edit(&mut doc);
    Contract::from_value(doc).unwrap()
}

fn open(envelope: &[u8]) -> AuditBundle {
    let env = smm_core::audit::Envelope::from_json(envelope).unwrap();
    serde_json::from_slice(&env.payload_bytes().unwrap()).unwrap()
}

fn campaign() -> Campaign {
    serde_json::from_str(CAMPAIGN).unwrap()
}

fn agent_run() -> AgentRun {
    serde_json::from_str(RUN).unwrap()
}

fn inputs(contract: &Contract) -> FlowInputs<'_> {
    FlowInputs {
        contract,
        request: None,
        campaign: campaign(),
        agent_run: Some(agent_run()),
        now: ts(NOW),
        actor: "flow-test",
        previous_bundle_ref: None,
    }
}

/// Nothing of the run is held or committed in the ledger.
fn ledger_is_clean(ledger: &dyn UsageLedger) {
    for s in ledger.status("ws-icblabs-0001", ts(NOW)).unwrap() {
        assert_eq!((s.used, s.reserved), (0, 0), "{:?}", s.quota);
    }
}

fn store_is_empty(store: &dyn BundleStore) {
    assert!(
        store
            .list("ws-icblabs-0001", None, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn the_whole_flow_runs_verifies_and_is_deterministic() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer();
    let mut envelopes = Vec::new();
    for _ in 0..2 {
        let ledger = MemoryLedger::new();
        let store = MemoryBundleStore::new(trusted(&s));
        let services = FlowServices {
            policy: &policy,
            ledger: &ledger,
            signer: &s,
            store: &store,
        };
        let out = flow::run(inputs(&contract), services, &RunOptions::default()).unwrap();
        assert!(out.verified());
        assert_eq!(out.workspace_id, "ws-icblabs-0001");
        assert_eq!(out.contract_hash, contract.terms_hash());
        assert_eq!(out.simulation.reproducibility.seed, 42);
        assert!(out.decision.allow);
        assert_ne!(out.decision_card.action.as_str(), "deny");
        // The run is committed against the contract's quotas.
        let usage = out.usage.as_ref().unwrap();
        assert!(!usage.already_recorded);
        assert!(usage.receipt.is_some());
        let run = agent_run();
        assert_eq!(
            ledger
                .used("ws-icblabs-0001", "tokens", Period::Total, ts(NOW))
                .unwrap(),
            run.total_tokens()
        );
        assert_eq!(
            ledger
                .used("ws-icblabs-0001", "cost_usd", Period::Total, ts(NOW))
                .unwrap(),
            run.total_cost().unwrap().nanos()
        );
        // The bundle carries the run and a trail of every step.
        let stored = store.get(&out.bundle_id).unwrap().unwrap();
        assert_eq!(stored.envelope, out.envelope.as_bytes());
        let bundle = open(&stored.envelope);
        assert_eq!(bundle.agent_runs, vec![run]);
        let names: Vec<&str> = bundle
            .audit_trail
            .iter()
            .map(|e| e.event.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "contract_validated",
                "simulation_executed",
                "policy_evaluated",
                "decision_made",
                "agent_run_recorded",
                "bundle_sealed"
            ]
        );

        // A rerun of the same job records its usage once. It is a new
        // evaluation (the policies now see the ledger's committed figures),
        // so a new bundle, verified like the first. Run with the first
        // one's previous (none), it would fork the chain: refused.
        let fork = flow::run(inputs(&contract), services, &RunOptions::default()).unwrap_err();
        assert_eq!(fork.step, Step::Store);
        assert!(
            matches!(
                *fork.error,
                smm_core::Error::Audit(AuditError::ChainMoved { .. })
            ),
            "{fork}"
        );
        let again = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap();
        assert!(again.verified());
        assert_eq!(
            open(again.envelope.as_bytes())
                .previous_bundle_ref
                .as_deref(),
            Some(out.bundle_id.as_str())
        );
        assert!(again.usage.as_ref().unwrap().already_recorded);
        assert!(again.usage.as_ref().unwrap().receipt.is_none());
        assert_eq!(
            ledger
                .used("ws-icblabs-0001", "tokens", Period::Total, ts(NOW))
                .unwrap(),
            agent_run().total_tokens()
        );
        envelopes.push(out.envelope);
    }
    // Same inputs, key and now: the same bytes.
    assert_eq!(envelopes[0], envelopes[1]);
}

#[test]
fn a_chained_run_names_the_previous_bundle() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer();
    let ledger = MemoryLedger::new();
    let store = MemoryBundleStore::new(trusted(&s));
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let first = flow::run(inputs(&contract), services, &RunOptions::default()).unwrap();
    let later = "2025-09-02T12:00:00Z";
    let previous = flow::latest_bundle(&store, "ws-icblabs-0001").unwrap();
    assert_eq!(previous.as_deref(), Some(first.bundle_id.as_str()));
    let mut next = inputs(&contract);
    next.now = ts(later);
    next.agent_run = None;
    next.previous_bundle_ref = previous;
    let second = flow::run(next, services, &RunOptions::default()).unwrap();
    assert_ne!(second.bundle_id, first.bundle_id);
    let bundle = open(second.envelope.as_bytes());
    assert_eq!(
        bundle.previous_bundle_ref.as_deref(),
        Some(first.bundle_id.as_str())
    );
}

/// Run the flow with one service or input broken; check the failing step,
/// the kind, and that neither the ledger nor the store kept anything.
fn broken(
    contract: &Contract,
    signer: &dyn Signer,
    store: &dyn BundleStore,
    ledger: &dyn UsageLedger,
    inspect: &dyn BundleStore,
    step: Step,
    kind: ErrorKind,
) -> String {
    let policy = PolicyBundle::default_bundle().unwrap();
    let services = FlowServices {
        policy: &policy,
        ledger,
        signer,
        store,
    };
    let err = flow::run(inputs(contract), services, &RunOptions::default()).unwrap_err();
    assert_eq!(err.step, step, "{err}");
    assert_eq!(err.kind(), kind, "{err}");
    ledger_is_clean(ledger);
    if step != Step::Verify {
        store_is_empty(inspect);
    }
    err.to_string()
}

#[test]
fn an_invalid_contract_stops_at_the_contract_step() {
    // Expired at `now`: its validity ended before.
    let contract = Contract::from_json(V2).unwrap();
    let s = signer();
    let store = MemoryBundleStore::new(trusted(&s));
    let ledger = MemoryLedger::new();
    let policy = PolicyBundle::default_bundle().unwrap();
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let mut late = inputs(&contract);
    late.now = ts("2027-01-01T00:00:00Z");
    let err = flow::run(late, services, &RunOptions::default()).unwrap_err();
    assert_eq!(err.step, Step::Contract, "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().starts_with("contract step failed"), "{err}");
    store_is_empty(&store);
    assert!(ledger.quotas("ws-icblabs-0001").unwrap().is_empty());

    // A run of another workspace is refused before anything is simulated.
    let mut other = inputs(&contract);
    let mut run = agent_run();
    run.workspace_id = "ws-other-0001".into();
    other.agent_run = Some(run);
    let err = flow::run(other, services, &RunOptions::default()).unwrap_err();
    assert_eq!(err.step, Step::Usage);
    assert!(err.to_string().contains("/agentRun/workspaceId"), "{err}");
}

#[test]
fn a_policy_deny_stops_at_the_decision_step() {
    let contract = contract_with(|d| {
        d["emergencyFlags"]["halted"] = Value::Bool(true);
        d["emergencyFlags"]["reason"] = Value::String("incident 42".into());
    });
    let s = signer();
    let store = MemoryBundleStore::new(trusted(&s));
    let ledger = MemoryLedger::new();
    let msg = broken(
        &contract,
        &s,
        &store,
        &ledger,
        &store,
        Step::Decision,
        ErrorKind::Denied,
    );
    assert!(msg.contains("workspace_halted"), "{msg}");
}

#[test]
fn a_quota_block_stops_at_the_usage_step() {
    let contract = Contract::from_json(V2).unwrap();
    let s = signer();
    let store = MemoryBundleStore::new(trusted(&s));
    let ledger = MemoryLedger::new();
    // The host's own daily token quota, below the run's 5,770 tokens.
    ledger
        .set_quota(&Quota {
            workspace_id: "ws-icblabs-0001".into(),
            kind: "tokens".into(),
            period: Period::Day,
            limit: 5_000,
        })
        .unwrap();
    let msg = broken(
        &contract,
        &s,
        &store,
        &ledger,
        &store,
        Step::Usage,
        ErrorKind::QuotaExceeded,
    );
    assert!(msg.contains("tokens"), "{msg}");
}

#[test]
fn a_signer_failure_stops_at_the_sign_step_and_releases_the_hold() {
    let contract = Contract::from_json(V2).unwrap();
    let good = signer();
    let kms = ExternalSigner::new(
        good.key_id(),
        good.public_key_pem().as_bytes(),
        Box::new(|_digest: &[u8; 32]| Err("KMS throttled: retry later".into())),
    )
    .unwrap();
    let store = MemoryBundleStore::new(trusted(&good));
    let ledger = MemoryLedger::new();
    let msg = broken(
        &contract,
        &kms,
        &store,
        &ledger,
        &store,
        Step::Sign,
        ErrorKind::SignerFailed,
    );
    assert!(msg.contains("KMS throttled"), "{msg}");

    // A signer answering with another key's signature is caught too.
    let other = LocalSigner::from_secret_bytes("other", &[9; 32]).unwrap();
    let liar = ExternalSigner::new(
        good.key_id(),
        good.public_key_pem().as_bytes(),
        Box::new(move |digest: &[u8; 32]| {
            other
                .sign_digest(digest)
                .map_err(smm_core::error::Cause::new)
        }),
    )
    .unwrap();
    broken(
        &contract,
        &liar,
        &store,
        &ledger,
        &store,
        Step::Sign,
        ErrorKind::SignerFailed,
    );
}

/// A store whose reads come back altered (a disk or an attacker between
/// the write and the read).
struct Tampering<'a>(&'a MemoryBundleStore);

impl BundleStore for Tampering<'_> {
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        self.0.put(bundle)
    }
    fn put_next(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        self.0.put_next(bundle)
    }
    fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        self.0.head(workspace_id)
    }
    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        Ok(self.0.get(bundle_id)?.map(|mut b| {
            let at = b.envelope.len() / 2;
            b.envelope[at] ^= 1;
            b
        }))
    }
    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        self.0.list(workspace_id, from, to)
    }
    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        self.0.history(bundle_id)
    }
}

#[test]
fn a_tampered_store_stops_at_the_verify_step() {
    let contract = Contract::from_json(V2).unwrap();
    let s = signer();
    let inner = MemoryBundleStore::new(trusted(&s));
    let ledger = MemoryLedger::new();
    let msg = broken(
        &contract,
        &s,
        &Tampering(&inner),
        &ledger,
        &inner,
        Step::Verify,
        ErrorKind::CorruptBundle,
    );
    assert!(msg.contains("does not verify"), "{msg}");
    // What the store holds is the whole, verified envelope (a store
    // publishes nothing else); the ledger holds nothing of the run.
    for b in inner.list("ws-icblabs-0001", None, None).unwrap() {
        let v = smm_core::audit::verify_envelope(&b.envelope, &trusted(&s), Some(&b.bundle_id));
        assert!(v.verified);
    }
}

#[test]
fn a_store_that_refuses_the_write_stops_at_the_store_step() {
    // A store that trusts another key refuses to publish this one's.
    let contract = Contract::from_json(V2).unwrap();
    let s = signer();
    let other = LocalSigner::from_secret_bytes("other", &[9; 32]).unwrap();
    let store = MemoryBundleStore::new(trusted(&other));
    let ledger = MemoryLedger::new();
    broken(
        &contract,
        &s,
        &store,
        &ledger,
        &store,
        Step::Store,
        ErrorKind::Untrusted,
    );
}

#[cfg(feature = "fs")]
#[test]
fn a_tampered_file_store_stops_the_flow_and_a_key_is_made_once() {
    use smm_core::audit::store::FileBundleStore;
    let root = std::env::temp_dir().join(format!("smm-flow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let key_path = root.join("signing-key.pem");
    let s = flow::signer_from_file(&key_path, || [5; 32]).unwrap();
    // Made once: a second call reads the same key, whatever entropy it has.
    let again = flow::signer_from_file(&key_path, || [6; 32]).unwrap();
    assert_eq!(again.public_key(), s.public_key());
    assert!(s.key_id().starts_with("local-"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = flow::signer_from_file(&key_path, || [6; 32]).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // A run into a clean store, to learn where its file goes.
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let clean = root.join("clean");
    let store = FileBundleStore::open(&clean, trusted(&s)).unwrap();
    let ledger = MemoryLedger::new();
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let out = flow::run(inputs(&contract), services, &RunOptions::default()).unwrap();
    let mut files = Vec::new();
    let mut stack = vec![clean.join("audit-bundles")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    let file = files
        .iter()
        .find(|p| p.to_string_lossy().contains(&out.bundle_id[7..23]))
        .unwrap()
        .strip_prefix(&clean)
        .unwrap()
        .to_path_buf();

    // Another store where garbage already sits at that path.
    let dirty = root.join("dirty");
    let store = FileBundleStore::open(&dirty, trusted(&s)).unwrap();
    std::fs::create_dir_all(dirty.join(&file).parent().unwrap()).unwrap();
    std::fs::write(dirty.join(&file), b"{\"payload\": \"forged\"}").unwrap();
    let ledger = MemoryLedger::new();
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let err = flow::run(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert!(matches!(err.step, Step::Store | Step::Verify), "{err}");
    ledger_is_clean(&ledger);
    assert_eq!(
        std::fs::read(dirty.join(&file)).unwrap(),
        b"{\"payload\": \"forged\"}"
    );
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_contract_request_is_the_contracts_simulation_config() {
    let contract = Contract::from_json(V2).unwrap();
    let req = flow::contract_request(&contract).unwrap();
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(v["workspaceId"], "ws-icblabs-0001");
    assert_eq!(v["simulationConfig"]["iterations"], 1000);
    assert_eq!(v["simulationConfig"]["randomSeed"], 42);
}

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
