//! Replays every input the fuzzers were seeded with and every input they
//! ever found a problem with (`fuzz/seeds/<target>`, `fuzz/regressions/<target>`)
//! through the fuzz targets' bodies, in the normal test suite: a fixed
//! crash stays fixed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::path::PathBuf;

use smm_core::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

#[test]
fn every_seed_and_every_finding_runs_clean() {
    let mut ran = 0;
    for (name, target) in TARGETS {
        for kind in ["seeds", "regressions"] {
            let dir = fuzz_dir().join(kind).join(name);
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries {
                let path = e.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                target(&data);
                ran += 1;
            }
        }
    }
    assert!(
        ran >= TARGETS.len(),
        "no fuzz inputs found under {}",
        fuzz_dir().display()
    );
}

/// Writes the seed corpora (run by hand: `cargo test -p smm-core --test
/// fuzz_regressions -- --ignored`); they are checked in.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    use smm_core::audit::store::{BundleStore, FileBundleStore, StoredBundle};
    use smm_core::audit::{LocalSigner, TrustedKey, sign_bundle};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let ex = |p: &str| std::fs::read(root.join("examples").join(p)).unwrap();
    let seeds = fuzz_dir().join("seeds");
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = seeds.join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    let request = ex("icblabs-seed42.request.json");
    put("request", "icblabs-seed42.json", &request);
    put("request", "minimal.json", br#"{"workspaceContext":{"riskProfile":"low","primaryChannels":["x"],"budget":{"hardCap":1,"breakdown":{"paidAds":0,"llmModelSpend":0,"rendering":0,"thirdPartyServices":0}}},"simulationConfig":{"iterations":300,"randomSeed":0,"enableEarlyTermination":true}}"#);
    for p in ["workspace.icblabs.v1.json", "workspace.icblabs.v2.json"] {
        put("contract", p, &ex(p));
        put("canonicalize", p, &ex(p));
    }
    put(
        "policy_input",
        "icblabs.json",
        &ex("policy-input.icblabs.json"),
    );
    put(
        "canonicalize",
        "numbers.json",
        br#"[1e21,1e-7,-0,9007199254740992,0.1,"\u00e9\ud83d\ude00",{"b":[],"a":{}}]"#,
    );
    let mut req =
        smm_core::sim::SimulationRequest::from_json(std::str::from_utf8(&request).unwrap())
            .unwrap();
    req.config.iterations = 600;
    let opts = smm_core::sim::RunOptions {
        threads: Some(1),
        keep_samples: false,
        ..Default::default()
    };
    put(
        "partial",
        "exact.json",
        smm_core::sim::simulate_shard(&req, 0, 600, &opts)
            .unwrap()
            .to_json()
            .unwrap()
            .as_bytes(),
    );
    req.config.percentile_mode = smm_core::sim::PercentileMode::Bounded;
    put(
        "partial",
        "bounded.json",
        smm_core::sim::simulate_shard(&req, 256, 600, &opts)
            .unwrap()
            .to_json()
            .unwrap()
            .as_bytes(),
    );
    // A bundle signed by the fuzz targets' trusted key.
    let signer = LocalSigner::from_secret_bytes("fuzz-key", &[7u8; 32]).unwrap();
    let contract = smm_core::contract::Contract::from_json(
        std::str::from_utf8(&ex("workspace.icblabs.v2.json")).unwrap(),
    )
    .unwrap();
    req.config.percentile_mode = smm_core::sim::PercentileMode::Auto;
    let report = smm_core::sim::simulate(&req, &opts).unwrap();
    let input = smm_core::policy::PolicyInput::from_json(
        std::str::from_utf8(&ex("policy-input.icblabs.json")).unwrap(),
    )
    .unwrap();
    let decision = smm_core::policy::PolicyBundle::default_bundle()
        .unwrap()
        .evaluate(&input)
        .unwrap();
    let card = smm_core::policy::decision_card(&report, &decision, &contract).unwrap();
    let mut trail = smm_core::audit::AuditTrail::new();
    trail
        .append(
            ts("2025-09-01T12:00:00Z"),
            "bundle_created",
            "fuzz",
            serde_json::json!({}),
        )
        .unwrap();
    let bundle = smm_core::audit::assemble(smm_core::audit::BundleInputs {
        contract: &contract,
        created_at: ts("2025-09-01T12:00:00Z"),
        simulation: &report,
        policy_decision: decision,
        decision_card: card,
        agent_runs: vec![],
        audit_trail: trail.into_events(),
        previous_bundle_ref: None,
    })
    .unwrap();
    let env = sign_bundle(&bundle, &[&signer]).unwrap();
    put("envelope", "signed.json", &env);
    let dir = std::env::temp_dir().join(format!("smm-seed-store-{}", std::process::id()));
    let store = FileBundleStore::open(
        &dir,
        vec![TrustedKey::new("fuzz-key", signer.public_key_pem().as_bytes()).unwrap()],
    )
    .unwrap();
    let sb = StoredBundle::from_envelope(&env).unwrap();
    store.put(&sb).unwrap();
    let file = store.bundle_path(&sb).unwrap();
    let gz = std::fs::read(&file).unwrap();
    // store_read gzips inputs whose first byte is odd: keep the record
    // itself (its '{' is odd) and the gzipped file (0x1f is odd too, so
    // it would be gzipped again: a useful case as well).
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
    put("store_read", "record.json", &raw);
    put("store_read", "record.json.gz", &gz);
    std::fs::remove_dir_all(&dir).unwrap();

    // The main job's input document and sweeps.
    let json = |p: &str| -> serde_json::Value { serde_json::from_slice(&ex(p)).unwrap() };
    let doc = |v: serde_json::Value| serde_json::to_vec(&v).unwrap();
    let (v2, campaign, agent_run, request) = (
        json("workspace.icblabs.v2.json"),
        json("campaign.icblabs.json"),
        json("agent-run.research.json"),
        json("icblabs-seed42.request.json"),
    );
    let now = "2025-09-01T12:00:00Z";
    put(
        "run_document",
        "full.json",
        &doc(
            serde_json::json!({"contract": v2, "campaign": campaign, "agentRun": agent_run, "now": now}),
        ),
    );
    put(
        "run_document",
        "minimal.json",
        &doc(serde_json::json!({"contract": v2, "now": now, "actor": "ci"})),
    );
    put(
        "run_document",
        "expired-with-request.json",
        &doc(
            serde_json::json!({"contract": v2, "request": request, "now": "2027-01-01T00:00:00Z"}),
        ),
    );
    put(
        "run_document",
        "not-an-object.json",
        br#"[1, {"contract": null}]"#,
    );
    let sweep =
        |grid: serde_json::Value| doc(serde_json::json!({"request": request, "grid": grid}));
    put(
        "sweep",
        "two-axes.json",
        &sweep(
            serde_json::json!({"/workspaceContext/budget/hardCap": [2000, 8000],
            "/workspaceContext/riskProfile": ["low", "high"]}),
        ),
    );
    put(
        "sweep",
        "workflow.json",
        &sweep(serde_json::json!({"/workflowJson/nodes/1/failureRate": [0.0, 0.5, 1.0]})),
    );
    put(
        "sweep",
        "precision.json",
        &sweep(
            serde_json::json!({"/workspaceContext/primaryChannels/0": ["x"],
            "/simulationConfig/precision": [{"halfWidth": 0.01}],
            "/simulationConfig/enableEarlyTermination": [true]}),
        ),
    );
    put(
        "sweep",
        "bad-pointer.json",
        &sweep(serde_json::json!({"/nope/x": [1], "": [2]})),
    );
    // Policy sources: the hostile ones of issue 16, and honest ones.
    let nested = |n: usize| {
        format!(
            "package fuzz\nimport rego.v1\nallow := {}1{}\n",
            "[".repeat(n),
            "]".repeat(n)
        )
    };
    for (name, src) in [
        (
            "recursive.rego",
            "package fuzz\nimport rego.v1\nf(x) := f(x)\nallow := f(1)\n".to_string(),
        ),
        (
            "mutual.rego",
            "package fuzz\nimport rego.v1\nf(x) := g(x)\ng(x) := f(x)\nallow := f(1)\n"
                .to_string(),
        ),
        ("nested-22.rego", nested(22)),
        ("nested-300.rego", nested(300)),
        (
            "range-loop.rego",
            "package fuzz\nimport rego.v1\nallow := count([x | some a in numbers.range(1, 100000); some b in numbers.range(1, 100000); x := a + b])\n"
                .to_string(),
        ),
        (
            "rule-cycle.rego",
            "package fuzz\nimport rego.v1\na := b\nb := a\nallow := a\n".to_string(),
        ),
        (
            "honest.rego",
            "package fuzz\nimport rego.v1\ndefault allow := false\nallow if count(input.workflow) < 3\n"
                .to_string(),
        ),
    ] {
        put("policy_source", name, src.as_bytes());
    }
    let lib = smm_core::policy::PolicyBundle::default_files()
        .find(|(p, _)| *p == "smm/lib.rego")
        .unwrap()
        .1;
    put("policy_source", "default-lib.rego", lib.as_bytes());
    // Policy archives: the default bundle as `opa build` packs it, and the
    // same with trailing bytes and with a second gzip member.
    let archive = |files: &[(&str, &str)]| {
        use std::io::Write;
        let mut tar = tar::Builder::new(Vec::new());
        for (p, s) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(s.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, p, s.as_bytes()).unwrap();
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar.into_inner().unwrap()).unwrap();
        gz.finish().unwrap()
    };
    let default: Vec<(&str, &str)> = smm_core::policy::PolicyBundle::default_files().collect();
    let good = archive(&default);
    put("policy_archive", "default.tar.gz", &good);
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"trailing garbage");
    put("policy_archive", "trailing.tar.gz", &trailing);
    let mut second = good.clone();
    second.extend_from_slice(&archive(&[("x.rego", "package x\ny := 1\n")]));
    put("policy_archive", "second-member.tar.gz", &second);
    put(
        "policy_archive",
        "recursive.tar.gz",
        &archive(&[(
            "fuzz.rego",
            "package fuzz\nimport rego.v1\nf(x) := f(x)\nallow := f(1)\n",
        )]),
    );
}

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
