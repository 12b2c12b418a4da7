//! The bodies of the fuzz targets (`fuzz/`), one per untrusted entry point,
//! shared with the regression test that replays every input the fuzzers
//! ever found (`tests/fuzz_regressions.rs`). Each takes arbitrary bytes and
//! must return without panicking; errors are the expected answer to most
//! inputs. Not part of the stable API.

use std::sync::OnceLock;

use crate::audit::store::{BundleStore, FileBundleStore, StoredBundle};
use crate::audit::{LocalSigner, TrustedKey, verify_envelope};
use crate::contract::{Contract, Lifecycle, migrate_v1, parse_document, validate_document};
use crate::policy::{Decision, EvalMode, PolicyBundle, PolicyInput};
use crate::sim::{PartialResult, RunOptions, SimulationRequest, merge_partials, simulate};

/// 2025-09-01T12:00:00Z.
const NOW: crate::time::Timestamp = crate::time::Timestamp {
    seconds: 1_756_728_000,
    nanos: 0,
};

fn one_thread() -> RunOptions {
    RunOptions {
        threads: Some(1),
        keep_samples: false,
        ..Default::default()
    }
}

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The entry points, by target name.
pub const TARGETS: [(&str, Target); 11] = [
    ("request", request),
    ("partial", partial),
    ("contract", contract),
    ("canonicalize", canonicalize),
    ("envelope", envelope),
    ("store_read", store_read),
    ("policy_input", policy_input),
    ("run_document", run_document),
    ("sweep", sweep),
    ("policy_source", policy_source),
    ("policy_archive", policy_archive),
];

/// A simulation request: parse, then run (capped at 512 iterations so a
/// fuzzer's huge counts stay fast; the validation sees the real value).
pub fn request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(mut req) = SimulationRequest::from_json(text) {
        req.config.iterations = req.config.iterations.min(512);
        req.config.timeout_seconds = None;
        if let Ok(report) = simulate(&req, &one_thread()) {
            assert!(report.is_finite(), "a report with a non-finite number");
        }
    }
}

/// A partial result: parse (every invariant checked), then merge it.
pub fn partial(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = PartialResult::from_json(text)
        && let Ok(out) = merge_partials(vec![p], &one_thread())
    {
        assert!(out.report.is_finite(), "a report with a non-finite number");
    }
}

/// A contract: validate at a fixed time, parse, and exercise what a parsed
/// contract offers.
pub fn contract(data: &[u8]) {
    let _ = validate_document(data, NOW);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = parse_document(text) {
        let _ = migrate_v1(&v);
    }
    if let Ok(c) = Contract::from_json(text) {
        let _ = c.validate(NOW);
        let _ = c.check_change(&c);
        for l in Lifecycle::ALL {
            let _ = c.transition(l);
        }
        // Assembly relies on this without checking: a contract's own
        // snapshot verifies, back to the same contract.
        assert_eq!(
            c.snapshot().verify().ok().as_ref(),
            Some(&c),
            "a contract's own snapshot does not verify"
        );
    }
}

/// The RFC 8785 canonicalizer: its output is canonical (idempotent), and
/// the check-only pass answers as it does, on the input and on its output.
pub fn canonicalize(data: &[u8]) {
    let full = crate::jcs::canonicalize(data);
    assert_eq!(
        crate::jcs::is_canonical(data),
        full.as_ref().map(|c| c == data).map_err(Clone::clone),
        "is_canonical disagrees with canonicalize"
    );
    if let Ok(c) = full {
        assert_eq!(
            crate::jcs::canonicalize(&c).as_deref().ok(),
            Some(c.as_slice()),
            "canonical output is not canonical"
        );
        assert_eq!(
            crate::jcs::is_canonical(&c),
            Ok(true),
            "canonical output judged not canonical"
        );
        // The canonical text read without a tree: a contract's terms hash
        // from its bytes is the one from its parsed value (when the text
        // pass vouches for one), and the writer from `Serialize` writes
        // the parsed value's canonical form.
        if let (Ok(text), Ok(value)) = (
            std::str::from_utf8(&c),
            serde_json::from_slice::<serde_json::Value>(&c),
        ) {
            if let Some(h) = crate::contract::terms_hash_of_canonical_text(text, 0) {
                assert_eq!(
                    crate::contract::terms_hash_of(&value).ok(),
                    Some(h),
                    "the terms hash from text differs from the parsed one"
                );
            }
            assert_eq!(
                crate::jcs::to_canonical_vec(&value).as_deref().ok(),
                Some(c.as_slice()),
                "the writer from Serialize differs from canonicalize"
            );
        }
    }
}

fn trusted() -> &'static [TrustedKey] {
    static KEYS: OnceLock<Vec<TrustedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        LocalSigner::from_secret_bytes("fuzz-key", &[7u8; 32])
            .ok()
            .and_then(|s| TrustedKey::new("fuzz-key", s.public_key_pem().as_bytes()).ok())
            .into_iter()
            .collect()
    })
}

/// An envelope: offline verification, and reading it as a stored bundle.
pub fn envelope(data: &[u8]) {
    let r = verify_envelope(data, trusted(), None);
    assert!(!r.verified || r.bundle_id.is_some());
    if let Ok(payload) = crate::audit::Envelope::from_json(data).and_then(|e| e.payload_bytes()) {
        let _ = bundle_payload(&payload);
    }
    if let Ok(b) = StoredBundle::from_envelope(data) {
        let _ = b.bundle();
    }
}

/// A payload read by verification's views and as an [`crate::audit::AuditBundle`]:
/// wherever the views answer, they answer the same (not a fuzz target of
/// its own: the envelope target and a mutation test call it). Answers
/// whether the views answered.
pub fn bundle_payload(data: &[u8]) -> bool {
    let agree = crate::audit::reads_agree(data);
    assert!(agree.is_ok(), "{}", agree.clone().err().unwrap_or_default());
    agree.unwrap_or(false)
}

/// Arbitrary bytes as a stored bundle file, read back through the store.
pub fn store_read(data: &[u8]) {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        std::env::temp_dir().join(format!("smm-fuzz-store-{}", std::process::id()))
    });
    let Ok(store) = FileBundleStore::open(dir, trusted().to_vec()) else {
        return;
    };
    let day = dir.join("audit-bundles/2025-09-01");
    if std::fs::create_dir_all(&day).is_err() {
        return;
    }
    let id = "sha256:00000000000000000000000000000000000000000000000000000000000000aa";
    let file = day.join("bundle-ws-20250901T120000Z-00000000000000aa.json.gz");
    // Half the inputs as they are, half gzipped (the store's format).
    let bytes = if data.first().is_some_and(|b| b & 1 == 1) {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if gz.write_all(data).is_err() {
            return;
        }
        gz.finish().unwrap_or_default()
    } else {
        data.to_vec()
    };
    if std::fs::write(&file, bytes).is_err() {
        return;
    }
    let _ = store.get(id);
    let _ = store.history(id);
    let _ = store.list("ws", None, None);
    let _ = store.get_snapshot(id);
    let _ = std::fs::remove_file(&file);
}

/// A policy input: validate, then evaluate the default bundle on it.
pub fn policy_input(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(input) = PolicyInput::from_json(text)
        && let Ok(bundle) = PolicyBundle::default_bundle()
    {
        let vm = bundle.evaluate(&input);
        let native = bundle.evaluate_with(&input, EvalMode::Native);
        // The native evaluator must decide as the VM does (the oracle:
        // `tests/policy_native.rs` runs the same comparison on random
        // inputs). One way only: the VM's own bounds (instructions, time)
        // can stop it where the native evaluator has none to hit.
        if let Ok(vm) = vm {
            assert!(
                native.is_ok(),
                "the VM decided, the native evaluator failed: {native:?}"
            );
            // (An integer beyond the native evaluator's is decided on the
            // VM, and says so: the engine's name is not compared.)
            if let Ok(native) = native {
                assert_eq!(
                    same_engine(native),
                    same_engine(vm),
                    "the native evaluator decided otherwise than the VM"
                );
            }
        }
    }
}

/// A decision with its engine's name and version blanked, to compare the
/// decisions of two evaluators.
fn same_engine(d: Decision) -> Decision {
    Decision {
        engine: String::new(),
        engine_version: String::new(),
        ..d
    }
}

/// A policy module from outside: load it as a bundle (nesting, recursion,
/// compilation and the probe of every rule, all bounded), then query its
/// rules and, when it has one, its decision on the example input.
pub fn policy_source(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(bundle) =
        PolicyBundle::from_modules([("fuzz.rego".to_string(), text.to_string())], None)
    else {
        return;
    };
    let input = serde_json::json!({"workflow": [], "timestamp": NOW.to_rfc3339()});
    for rule in ["data.fuzz.allow", "data.smm.decision"] {
        let _ = bundle.query(rule, &input);
    }
}

/// A policy bundle archive from outside (`opa build`'s `.tar.gz`): load it
/// (gzip, tar, paths, sizes, one member and nothing after it, then every
/// module as `policy_source` does).
pub fn policy_archive(data: &[u8]) {
    let _ = PolicyBundle::from_archive_bytes(data);
    let _ = PolicyBundle::from_archive_bytes_pinned(data, &"0".repeat(64));
}

/// The main job's input document (the C ABI's `smm_run_json`): parse and
/// check every part.
pub fn run_document(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(doc) = crate::flow::RunDocument::from_json(text) {
        let _ = doc.contract.validate(doc.now);
    }
}

/// A sweep, `{"request": ..., "grid": {pointer: [values]}}`: plan it (every
/// point checked), then run its first point briefly.
pub fn sweep(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = crate::contract::parse_document(text) else {
        return;
    };
    let (Some(request), Some(grid)) = (doc.get("request"), doc.get("grid")) else {
        return;
    };
    let Ok(grid) = serde_json::from_value::<
        std::collections::BTreeMap<String, Vec<serde_json::Value>>,
    >(grid.clone()) else {
        return;
    };
    if let Ok(points) = crate::sim::sweep::plan(request, &grid, 256, 1)
        && let Some(first) = points.first()
    {
        let mut req = first.request.clone();
        req.config.timeout_seconds = None;
        if let Ok(report) = simulate(&req, &one_thread()) {
            assert!(report.is_finite(), "a report with a non-finite number");
        }
    }
}
