//! The promises of the parts, tried as an attacker would through the whole
//! main job (issue 16): hostile policy bundles, the operator's quotas, a
//! reader's clock, evidence and spend, one chain of verified bundles, links
//! planted in the store, one signature per key.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::io::Write;

use serde_json::Value;
use smm_core::audit::store::{BundleStore, FileBundleStore, MemoryBundleStore, StoredBundle};
use smm_core::audit::{
    AuditBundle, AuditError, Envelope, LocalSigner, Signer, TrustedKey, key_fingerprint_id,
    verify_bundle_chain, verify_envelope,
};
use smm_core::contract::Contract;
use smm_core::flow::{self, Campaign, FlowInputs, FlowServices, Step};
use smm_core::policy::{PolicyBundle, PolicyError};
use smm_core::sim::RunOptions;
use smm_core::usage::{AgentRun, MemoryLedger, Period, Quota, SqliteLedger, UsageLedger};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const CAMPAIGN: &str = include_str!("../../examples/campaign.icblabs.json");
const RUN: &str = include_str!("../../examples/agent-run.research.json");
const NOW: &str = "2025-09-01T12:00:00Z";
const WS: &str = "ws-icblabs-0001";

fn signer(seed: u8) -> LocalSigner {
    let s = LocalSigner::from_secret_bytes("local", &[seed; 32]).unwrap();
    let id = key_fingerprint_id(s.public_key());
    s.with_key_id(&id)
}

fn trusted(s: &dyn Signer) -> Vec<TrustedKey> {
    vec![TrustedKey {
        key_id: s.key_id().to_string(),
        key: *s.public_key(),
    }]
}

fn inputs(contract: &Contract) -> FlowInputs<'_> {
    FlowInputs {
        contract,
        request: None,
        campaign: serde_json::from_str(CAMPAIGN).unwrap(),
        agent_run: Some(serde_json::from_str::<AgentRun>(RUN).unwrap()),
        now: ts(NOW),
        actor: "promises",
        previous_bundle_ref: None,
    }
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("smm-promises-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn load(src: &str) -> Result<PolicyBundle, PolicyError> {
    PolicyBundle::from_modules([("p.rego".to_string(), src.to_string())], None)
}

fn compile_error(r: Result<PolicyBundle, PolicyError>, wanted: &str) {
    match r {
        Err(PolicyError::Compile {
            module,
            line,
            message,
        }) => {
            assert_eq!(module, "p.rego");
            assert!(line.is_some(), "{message}");
            assert!(message.contains(wanted), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

// ---- Policy bundles are code from outside -------------------------------

#[test]
fn a_recursive_function_is_refused_before_it_runs() {
    // These overflowed the stack while the bundle loaded (SIGSEGV).
    compile_error(
        load("package p\nimport rego.v1\nf(x) := f(x)\nr := f(1)\n"),
        "recursive function: data.p.f -> data.p.f",
    );
    compile_error(
        load("package p\nimport rego.v1\nf(x) := g(x)\ng(x) := f(x)\nr := f(1)\n"),
        "data.p.f -> data.p.g -> data.p.f",
    );
    // Through an import alias, in a comprehension, unreachable from any rule.
    compile_error(
        load("package p\nimport rego.v1\nimport data.p as me\nf(x) := [y | some y in [me.f(x)]]\n"),
        "recursive function",
    );
    // Recursion through rules is the interpreter's own error.
    assert!(load("package p\nimport rego.v1\na := b\nb := a\n").is_err());
    // A function calling a builtin of the same name is not recursion.
    assert!(load("package p\nimport rego.v1\nf(x) := count(x)\nr := f([1])\n").is_ok());
}

#[test]
fn deep_nesting_is_refused_before_parsing() {
    // 22 levels took 2.8 s to parse, 300 never finished.
    for n in [22, 300, 100_000] {
        let src = format!(
            "package p\nimport rego.v1\nr := {}1{}\n",
            "[".repeat(n),
            "]".repeat(n)
        );
        let t = std::time::Instant::now();
        compile_error(load(&src), "nested deeper than 16");
        // Not a timing assertion: refused without parsing, the time is tiny
        // compared with what parsing took; say it if it ever is not.
        let _ = t.elapsed();
    }
    // Brackets in strings and comments do not count.
    let quoted = format!(
        "package p\nimport rego.v1\n# {}\nr := \"{}\"\n",
        "[".repeat(40),
        "{".repeat(40)
    );
    assert!(load(&quoted).is_ok());
}

#[test]
fn an_endless_rule_stops_at_the_time_limit() {
    let r = load(
        "package p\nimport rego.v1\nr := count([x | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); x := a + b])\n",
    );
    match r {
        Err(PolicyError::Rule {
            message,
            module,
            line,
        }) => {
            assert!(message.contains("time limit"), "{message}");
            // Named: the module and the line of the rule behind it.
            assert_eq!((module.as_str(), line), ("p.rego", Some(3)), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_decision_past_its_instruction_limit_names_the_decision_rule() {
    // A decision rule whose work grows with the input beyond the per-step
    // budget: the VM stops it, and the error names the rule's place.
    let src = "package smm\nimport rego.v1\n\ndecision := {\"allow\": count([x | some a in input.workflow; some b in numbers.range(1, 1000000); x := b])}\n";
    let b = load(src).unwrap();
    let input = serde_json::json!({"workflow": [1, 2, 3]});
    match b.query("data.smm.decision", &input) {
        Err(PolicyError::Rule {
            module,
            line,
            message,
        }) => {
            assert_eq!((module.as_str(), line), ("p.rego", Some(4)), "{message}");
            assert!(message.contains("instructions"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_module_limit_is_the_real_one() {
    let many = (0..=smm_core::policy::MAX_MODULES)
        .map(|i| (format!("m{i}.rego"), format!("package m{i}\nx := {i}\n")));
    match PolicyBundle::from_modules(many, None) {
        Err(PolicyError::InvalidBundle { message, .. }) => {
            assert!(message.contains("256"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_bundle_off_its_pin_is_refused_before_its_source_is_parsed() {
    // The module would overflow the stack if it were ever parsed and run.
    let files = vec![(
        "p.rego".to_string(),
        b"package p\nimport rego.v1\nf(x) := f(x)\nr := f(1)\n".to_vec(),
    )];
    match PolicyBundle::from_files_pinned(files.clone(), &"0".repeat(64)) {
        Err(PolicyError::ChecksumMismatch { contract, .. }) => assert_eq!(contract, "0".repeat(64)),
        other => panic!("{other:?}"),
    }
    // On the pin, the default bundle loads.
    let default: Vec<(String, Vec<u8>)> = PolicyBundle::default_files()
        .map(|(p, s)| (p.to_string(), s.as_bytes().to_vec()))
        .collect();
    let pin = PolicyBundle::default_bundle()
        .unwrap()
        .checksum()
        .to_string();
    assert_eq!(
        PolicyBundle::from_files_pinned(default, &pin)
            .unwrap()
            .checksum(),
        pin
    );
}

fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (p, s) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(s.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tar.append_data(&mut h, p, s.as_bytes()).unwrap();
    }
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

#[test]
fn an_archive_is_one_gzip_stream_and_nothing_after() {
    let ok = tar_gz(&[("p.rego", "package p\nx := 1\n")]);
    assert!(PolicyBundle::from_archive_bytes(&ok).is_ok());
    let mut garbage = ok.clone();
    garbage.extend_from_slice(b"trailing");
    let e = PolicyBundle::from_archive_bytes(&garbage).unwrap_err();
    assert!(e.to_string().contains("trailing data"), "{e}");
    let mut second = ok.clone();
    second.extend_from_slice(&tar_gz(&[("q.rego", "package q\ny := 2\n")]));
    let e = PolicyBundle::from_archive_bytes(&second).unwrap_err();
    assert!(e.to_string().contains("second gzip member"), "{e}");
}

#[cfg(unix)]
#[test]
fn a_directory_bundle_reads_regular_files_only() {
    let dir = tempdir("fifo");
    std::fs::write(dir.join("ok.rego"), "package p\nx := 1\n").unwrap();
    let fifo = dir.join("x.rego");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Would block forever reading the FIFO.
    let e = PolicyBundle::from_dir(&dir).unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_bundle_file_past_the_limit_is_refused_without_reading_it_whole() {
    // Sparse: 40 MiB of size, no disk; before, the archive and each
    // directory entry were checked by path and then read whole by path.
    let dir = tempdir("large");
    std::fs::write(dir.join("ok.rego"), "package p\nx := 1\n").unwrap();
    let big = std::fs::File::create(dir.join("big.rego")).unwrap();
    big.set_len(smm_core::limits::MAX_POLICY_BUNDLE_BYTES + (8 << 20))
        .unwrap();
    let e = PolicyBundle::from_dir(&dir).unwrap_err();
    assert!(e.to_string().contains("the bundle exceeds"), "{e}");
    let e = PolicyBundle::from_archive(dir.join("big.rego")).unwrap_err();
    assert!(e.to_string().contains("the archive exceeds"), "{e}");
    // A link among the entries is refused, not followed to a device.
    std::fs::remove_file(dir.join("big.rego")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("z.rego")).unwrap();
    let e = PolicyBundle::from_dir(&dir).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_default_bundle_judges_the_largest_campaign() {
    // 189 steps exceeded the VM's instruction limit.
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let mut doc: Value = serde_json::from_str(CAMPAIGN).unwrap();
    let steps = doc["workflow"].as_array().unwrap().clone();
    let big: Vec<Value> = (0..smm_core::limits::MAX_CAMPAIGN_STEPS)
        .map(|i| {
            let mut s = steps[i % steps.len()].clone();
            s["id"] = Value::String(format!("step-{i}"));
            s["estimatedCost"] = serde_json::json!(0.5);
            s
        })
        .collect();
    doc["workflow"] = Value::Array(big);
    let campaign = Campaign::from_value(&doc).unwrap();
    let s = signer(7);
    let ledger = MemoryLedger::new();
    let store = MemoryBundleStore::new(trusted(&s));
    let mut i = inputs(&contract);
    i.campaign = campaign;
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let out = flow::run_chained(i, services, &RunOptions::default()).unwrap();
    assert!(out.verified());
    // One step more than the schema allows is refused, naming the field.
    doc["workflow"]
        .as_array_mut()
        .unwrap()
        .push(steps[0].clone());
    let mut i = inputs(&contract);
    i.campaign = Campaign::from_value(&doc).unwrap();
    let e = flow::run_chained(i, services, &RunOptions::default()).unwrap_err();
    assert_eq!(e.step, Step::Policy);
    assert!(e.to_string().contains("/workflow"), "{e}");
}

// ---- Quotas are the operator's -----------------------------------------

#[test]
fn the_contract_never_loosens_the_operators_quota() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let dir = tempdir("quota");
    let ledger = SqliteLedger::open(dir.join("usage.sqlite")).unwrap();
    // $0.05 set by the operator; the agent run costs $0.1134.
    let operator = Quota {
        workspace_id: WS.into(),
        kind: "cost_usd".into(),
        period: Period::Total,
        limit: 50_000_000,
    };
    ledger.set_quota(&operator).unwrap();
    let store = MemoryBundleStore::new(trusted(&s));
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert_eq!(e.step, Step::Usage);
    assert_eq!(e.kind(), smm_core::error::ErrorKind::QuotaExceeded);
    // The quota reads as the operator set it, and nothing is held.
    assert_eq!(ledger.quotas(WS).unwrap(), vec![operator]);
    for st in ledger.status(WS, ts(NOW)).unwrap() {
        assert_eq!((st.used, st.reserved), (0, 0));
    }
    assert!(store.head(WS).unwrap().is_none());
    // The contract tightens: with no ledger quota, its hardCap bounds the
    // run, and is not stored.
    let fresh = MemoryLedger::new();
    let services = FlowServices {
        ledger: &fresh,
        ..services
    };
    flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap();
    assert!(fresh.quotas(WS).unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_readers_clock_does_not_release_a_hold() {
    for ledger in [
        Box::new(MemoryLedger::new()) as Box<dyn UsageLedger>,
        Box::new(SqliteLedger::open(tempdir("clock").join("l.sqlite")).unwrap()),
    ] {
        let l = ledger.as_ref();
        l.set_quota(&Quota {
            workspace_id: WS.into(),
            kind: "tokens".into(),
            period: Period::Total,
            limit: 100,
        })
        .unwrap();
        let a = [("tokens".into(), 100u64)].into();
        let r1 = l.reserve(WS, "job-1", &a, ts(NOW), 900).unwrap();
        assert!(r1.allowed());
        // A reader an hour ahead: the hold still counts.
        let later = "2025-09-01T13:00:00Z";
        assert_eq!(l.status(WS, ts(later)).unwrap()[0].reserved, 100);
        assert_eq!(l.status(WS, ts(NOW)).unwrap()[0].reserved, 100);
        let r2 = l.reserve(WS, "job-2", &a, ts(NOW), 900).unwrap();
        assert!(!r2.allowed(), "the hold was released by a read");
        // A reservation made at a later time does lapse it; a commit of
        // the lapsed hold that no longer fits is recorded as a breach.
        let r3 = l.reserve(WS, "job-3", &a, ts(later), 900).unwrap();
        assert!(r3.allowed());
        l.commit(&r3.id, &a, ts(later)).unwrap();
        let late = l.commit(&r1.id, &a, ts(later)).unwrap();
        assert!(late.expired);
        assert_eq!(late.breached, vec!["tokens/total".to_string()]);
        let st = l.status(WS, ts(later)).unwrap();
        assert!(st[0].breached(), "the breach playbook sees it: {st:?}");
    }
}

// ---- Evidence and spend agree ------------------------------------------

/// A store whose publication fails once (a crash between the usage commit
/// and the store, or a full disk).
struct FailingStore<'a> {
    inner: &'a dyn BundleStore,
    fail: std::sync::atomic::AtomicBool,
}

impl BundleStore for FailingStore<'_> {
    fn put(&self, b: &StoredBundle) -> Result<smm_core::audit::store::PutOutcome, AuditError> {
        self.inner.put(b)
    }
    fn put_next(&self, b: &StoredBundle) -> Result<smm_core::audit::store::PutOutcome, AuditError> {
        if self.fail.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditError::Storage {
                message: "injected: the disk is full".into(),
                source: None,
            });
        }
        self.inner.put_next(b)
    }
    fn head(&self, ws: &str) -> Result<Option<StoredBundle>, AuditError> {
        self.inner.head(ws)
    }
    fn get(&self, id: &str) -> Result<Option<StoredBundle>, AuditError> {
        self.inner.get(id)
    }
    fn list(
        &self,
        ws: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        self.inner.list(ws, from, to)
    }
    fn history(&self, id: &str) -> Result<Vec<smm_core::audit::store::StoreEvent>, AuditError> {
        self.inner.history(id)
    }
}

#[test]
fn no_bundle_records_usage_the_ledger_did_not_count() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let ledger = MemoryLedger::new();
    let inner = MemoryBundleStore::new(trusted(&s));
    let store = FailingStore {
        inner: &inner,
        fail: true.into(),
    };
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let run: AgentRun = serde_json::from_str(RUN).unwrap();
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert_eq!(e.step, Step::Store);
    // The usage is counted, and no bundle is published.
    assert_eq!(
        ledger.used(WS, "tokens", Period::Total, ts(NOW)).unwrap(),
        run.total_tokens()
    );
    assert!(inner.head(WS).unwrap().is_none());
    // The next run of the same job publishes it, counted once.
    let out = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap();
    assert!(out.usage.as_ref().unwrap().already_recorded);
    assert_eq!(
        ledger.used(WS, "tokens", Period::Total, ts(NOW)).unwrap(),
        run.total_tokens()
    );
    let b = inner.head(WS).unwrap().unwrap().bundle().unwrap();
    assert!(
        b.audit_trail
            .iter()
            .any(|e| e.event == "agent_run_recorded")
    );
}

// ---- The chain is one chain, of verified bundles only ------------------

#[test]
fn racing_runs_form_one_linear_chain() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let dir = tempdir("race-chain");
    let ledger = MemoryLedger::new();
    let runs = 8;
    std::thread::scope(|scope| {
        for i in 0..runs {
            let (contract, policy, s, ledger, dir) = (&contract, &policy, &s, &ledger, &dir);
            scope.spawn(move || {
                // Each run with its own store handle, as separate processes.
                let store = FileBundleStore::open(dir, trusted(s)).unwrap();
                let services = FlowServices {
                    policy,
                    ledger,
                    signer: s,
                    store: &store,
                };
                let mut inp = inputs(contract);
                inp.agent_run = None;
                inp.actor = ["a", "b", "c", "d", "e", "f", "g", "h"][i];
                flow::run_chained(inp, services, &RunOptions::default()).unwrap();
            });
        }
    });
    let store = FileBundleStore::open(&dir, trusted(&s)).unwrap();
    let all: Vec<AuditBundle> = store
        .list(WS, None, None)
        .unwrap()
        .iter()
        .map(|b| b.bundle().unwrap())
        .collect();
    assert_eq!(all.len(), runs);
    let report = verify_bundle_chain(&all).unwrap();
    assert!(report.issues.is_empty(), "{:?}", report.issues);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_planted_record_is_never_read_or_chained_to() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let attacker = signer(9);
    let dir = tempdir("planted");
    // The attacker writes a store record with its own key (as if with
    // write access to the directory), claiming to be the chain's latest.
    FileBundleStore::open(&dir, trusted(&attacker))
        .unwrap()
        .put_next(&{
            let ledger = MemoryLedger::new();
            let mem = MemoryBundleStore::new(trusted(&attacker));
            let services = FlowServices {
                policy: &policy,
                ledger: &ledger,
                signer: &attacker,
                store: &mem,
            };
            let out =
                flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap();
            StoredBundle::from_envelope(out.envelope.as_bytes()).unwrap()
        })
        .unwrap();
    let store = FileBundleStore::open(&dir, trusted(&s)).unwrap();
    for e in [
        store.list(WS, None, None).unwrap_err(),
        store.head(WS).unwrap_err(),
    ] {
        assert!(matches!(e, AuditError::Untrusted { .. }), "{e}");
        assert!(e.to_string().contains(".json.gz"), "names the file: {e}");
    }
    let ledger = MemoryLedger::new();
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert_eq!(e.kind(), smm_core::error::ErrorKind::Untrusted);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn the_store_follows_no_link_it_did_not_make() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let dir = tempdir("links");
    let outside = tempdir("links-outside");
    let store = FileBundleStore::open(&dir, trusted(&s)).unwrap();
    // The day directory of the next bundle, planted as a link outside.
    std::os::unix::fs::symlink(&outside, dir.join("audit-bundles/2025-09-01")).unwrap();
    let ledger = MemoryLedger::new();
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    // The locks directory as a link: no lock is taken through it.
    std::fs::remove_file(dir.join("audit-bundles/2025-09-01")).unwrap();
    std::fs::remove_dir_all(dir.join("locks")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("locks")).unwrap();
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&outside).unwrap();
}

// ---- One key is one signer ---------------------------------------------

#[test]
fn one_key_signs_once() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let ledger = MemoryLedger::new();
    let store = MemoryBundleStore::new(trusted(&s));
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let out = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap();
    let env = Envelope::from_json(out.envelope.as_bytes()).unwrap();
    let bundle: AuditBundle = serde_json::from_slice(&env.payload_bytes().unwrap()).unwrap();
    // The same key under a second id: two valid signatures by one key.
    let twin = signer(7).with_key_id("same-key-other-id");
    let mut keys = trusted(&s);
    keys.push(TrustedKey {
        key_id: "same-key-other-id".into(),
        key: *s.public_key(),
    });
    let once = smm_core::audit::sign_bundle(&bundle, &[&s as &dyn Signer]).unwrap();
    assert!(verify_envelope(&once, &keys, None).verified);
    let twice = smm_core::audit::sign_bundle(&bundle, &[&s as &dyn Signer, &twin as &dyn Signer]);
    if let Ok(twice) = twice {
        let r = verify_envelope(&twice, &keys, None);
        assert!(!r.verified, "{r:?}");
        assert!(
            r.checks
                .iter()
                .any(|c| c.detail.contains("one key signs once")),
            "{r:?}"
        );
        // The store refuses it too.
        let e = MemoryBundleStore::new(keys.clone())
            .put(&StoredBundle::from_envelope(&twice).unwrap())
            .unwrap_err();
        assert!(e.to_string().contains("one key signs once"), "{e}");
    }
}

#[test]
fn a_store_that_cannot_take_the_evidence_stops_the_run_before_the_commit() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let other = signer(8);
    let ledger = MemoryLedger::new();
    let store = MemoryBundleStore::new(trusted(&other));
    let services = FlowServices {
        policy: &policy,
        ledger: &ledger,
        signer: &s,
        store: &store,
    };
    let e = flow::run_chained(inputs(&contract), services, &RunOptions::default()).unwrap_err();
    assert_eq!(e.step, Step::Store);
    assert_eq!(
        ledger.used(WS, "tokens", Period::Total, ts(NOW)).unwrap(),
        0
    );
    for st in ledger.status(WS, ts(NOW)).unwrap() {
        assert_eq!((st.used, st.reserved), (0, 0));
    }
}

// ---- One instant, one bundle -------------------------------------------

#[test]
fn one_instant_is_one_bundle_whatever_its_spelling() {
    let contract = Contract::from_json(V2).unwrap();
    let policy = PolicyBundle::default_bundle().unwrap();
    let s = signer(7);
    let mut ids = std::collections::BTreeSet::new();
    for now in [
        "2025-09-01T12:00:00Z",
        "2025-09-01T12:00:00+00:00",
        "2025-09-01T12:00:00.000Z",
        "2025-09-01T14:00:00+02:00",
        "2025-09-01t12:00:00z",
    ] {
        let ledger = MemoryLedger::new();
        let store = MemoryBundleStore::new(trusted(&s));
        let services = FlowServices {
            policy: &policy,
            ledger: &ledger,
            signer: &s,
            store: &store,
        };
        let mut i = inputs(&contract);
        i.now = ts(now);
        let mut run: AgentRun = serde_json::from_str(RUN).unwrap();
        // The agent run's own times, spelled another way too.
        if let Some(t) = smm_core::time::Timestamp::parse(&run.started_at) {
            run.started_at = format!("{}+00:00", t.to_rfc3339().trim_end_matches('Z'));
        }
        i.agent_run = Some(run);
        let out = flow::run_chained(i, services, &RunOptions::default()).unwrap();
        let b = store
            .get(&out.bundle_id)
            .unwrap()
            .unwrap()
            .bundle()
            .unwrap();
        assert_eq!(b.created_at, "2025-09-01T12:00:00Z");
        assert!(
            b.audit_trail
                .iter()
                .all(|e| e.timestamp == "2025-09-01T12:00:00Z")
        );
        ids.insert(out.bundle_id);
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
