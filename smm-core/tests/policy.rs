//! Policy bundles, decisions and decision cards.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{Value, json};
use smm_core::contract::Contract;
use smm_core::policy::*;
use smm_core::sim::{RunOptions, SimulationRequest, simulate};

fn example_input_text() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/policy-input.icblabs.json"
    ))
    .unwrap()
}

fn example_input_value() -> Value {
    serde_json::from_str(&example_input_text()).unwrap()
}

fn example_contract() -> Contract {
    Contract::from_json(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/workspace.icblabs.v2.json"
        ))
        .unwrap(),
    )
    .unwrap()
}

fn default_modules() -> BTreeMap<String, String> {
    PolicyBundle::default_files()
        .filter(|(p, _)| p.ends_with(".rego"))
        .map(|(p, s)| (p.to_string(), s.to_string()))
        .collect()
}

fn default_data() -> Value {
    let (_, d) = PolicyBundle::default_files()
        .find(|(p, _)| *p == "data.json")
        .unwrap();
    serde_json::from_str(d).unwrap()
}

#[test]
fn default_bundle_rego_tests_pass_with_full_coverage() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let report = bundle.test().unwrap();
    let failures: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.outcome != TestOutcome::Pass)
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(report.passed >= 70, "{} tests", report.passed);
    let uncovered: Vec<_> = report
        .coverage
        .iter()
        .filter(|f| !f.not_covered.is_empty())
        .collect();
    assert!(uncovered.is_empty(), "{uncovered:#?}");
    // Every policy module is in the coverage report.
    let covered: Vec<&str> = report.coverage.iter().map(|f| f.path.as_str()).collect();
    for path in default_modules().keys().filter(|p| !is_test_module(p)) {
        assert!(covered.contains(&path.as_str()), "{path} has no coverage");
    }
    assert_eq!(report.coverage_percent, 100.0);
}

#[test]
fn the_test_runner_reports_failures_errors_and_skips() {
    let mut modules = default_modules();
    // Break a threshold the tests pin: the content tests must now fail.
    let mut data = default_data();
    data["smm"]["config"]["content"]["minCitationCoverage"] = json!(0.9);
    modules.insert(
        "extra_test.rego".into(),
        "package extra_test\nimport rego.v1\n\ntest_false if false\ntest_error if { x := count(1); x == 1 }\ntodo_test_later if true\n".into(),
    );
    let bundle = PolicyBundle::from_modules(modules, Some(data)).unwrap();
    let report = bundle.test().unwrap();
    let outcome = |name: &str| {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .outcome
    };
    assert_eq!(
        outcome("data.smm.content_test.test_content_within_thresholds"),
        TestOutcome::Fail
    );
    assert_eq!(outcome("data.extra_test.test_false"), TestOutcome::Fail);
    assert_eq!(outcome("data.extra_test.test_error"), TestOutcome::Error);
    assert_eq!(
        outcome("data.extra_test.todo_test_later"),
        TestOutcome::Skip
    );
    assert!(!report.ok());
    assert_eq!(report.skipped, 1);
}

#[test]
fn example_input_is_allowed_by_the_default_bundle() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    let d = bundle.evaluate(&input).unwrap();
    assert!(d.allow, "{d:#?}");
    assert!(d.deny.is_empty());
    // The example makes a synthetic voice under legalManualApproval.
    assert!(d.require_human_approval);
    assert!(d.reasons.contains(&"legal_review_required".to_string()));
    assert!(d.reasons.contains(&"voice_consent_validated".to_string()));
    assert_eq!(d.bundle_checksum, bundle.checksum());
    assert_eq!(d.engine, "regorus");
    assert_eq!(d.evaluated_at, "2025-09-01T12:00:00Z");
    let mut sorted = d.warnings.clone();
    sorted.sort();
    assert_eq!(d.warnings, sorted);
    // The examples carry the default bundle's real checksum.
    assert_eq!(
        example_contract().contract().policy_bundle_checksum,
        bundle.checksum()
    );
}

#[test]
fn vm_and_interpreter_agree() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    assert!(bundle.has_decision());
    let base = example_input_value();
    let mut inputs = vec![base.clone()];
    let patches = [
        json!({"currentSpend": {"thisWeek": 1190}}),
        json!({"currentSpend": {"total": 4990}}),
        json!({"timestamp": "2026-03-01T00:00:00Z"}),
        json!({"workspace": {"lifecycle": "paused"}}),
        json!({"workspace": {"emergencyFlags": {"halted": true, "reason": "x"}}}),
        json!({"workspace": {"emergencyFlags": {"budgetOverride": true}}, "currentSpend": {"thisWeek": 1190}}),
        json!({"agentOutput": {"confidenceScore": 0.2, "verified": false, "citations": []}}),
        json!({"workspace": {"connectors": []}}),
        json!({"quotas": [{"kind": "tokens", "period": "day", "limit": 10, "used": 10}]}),
        json!({"simulation": {"citationCoverage": 0.7, "duplicationRisk": 0.3}}),
    ];
    for p in patches {
        let mut v = base.clone();
        merge(&mut v, &p);
        inputs.push(v);
    }
    let mut denials = 0;
    for v in inputs {
        let input = PolicyInput::from_value(&v).unwrap_or_else(|e| panic!("{e}: {v}"));
        let vm = bundle.evaluate_with(&input, EvalMode::Vm).unwrap();
        let interp = bundle.evaluate_with(&input, EvalMode::Interpreter).unwrap();
        assert_eq!(vm, interp);
        denials += usize::from(!vm.allow);
    }
    assert!(denials >= 7, "the patches should deny ({denials})");
}

/// regorus's VM and interpreter must agree on every input: 400 inputs made
/// of random combinations of patches that exercise every rule (the VM has
/// been seen to differ on undefined assignments; the default bundle avoids
/// that construct, and this test keeps it honest).
#[test]
fn vm_and_interpreter_agree_on_random_inputs() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let base = example_input_value();
    let step = |kind: &str, flags: Value| json!({"type": kind, "estimatedCost": 10, "currency": "USD", "flags": flags});
    let patches = vec![
        json!({"workflow": [step("creative", json!({"usesSyntheticVoice": true, "voiceModel": "user-9-voice"}))]}),
        json!({"workflow": [step("creative", json!({"usesUgcContent": true, "usesCelebrityLikeness": true}))]}),
        json!({"workflow": [step("publish", json!({"channels": ["tiktok", "x"], "postsPerHour": 11}))]}),
        json!({"workflow": [step("research", json!({"processesPersonalData": true, "callsExternalApis": true}))]}),
        json!({"workflow": [step("publish", json!({"includesCustomerData": true, "publicVisibility": true, "contentTopics": ["gambling"]}))]}),
        json!({"workflow": [step("legal", json!({"containsLegalClaims": true})), step("research", json!({}))]}),
        json!({"workflow": []}),
        json!({"workspace": {"consentRecords": []}}),
        json!({"workspace": {"connectors": []}}),
        json!({"workspace": {"lifecycle": "active"}}),
        json!({"workspace": {"lifecycle": "draft"}}),
        json!({"workspace": {"emergencyFlags": {"budgetOverride": true}}}),
        json!({"workspace": {"emergencyFlags": {"humanApprovalRequired": true}}}),
        json!({"workspace": {"approvalPolicy": {"legalManualApproval": false}}}),
        json!({"currentSpend": {"thisWeek": 1150, "total": 4900}}),
        json!({"currentSpend": {"currency": "EUR"}}),
        json!({"timestamp": "2025-09-20T00:00:00Z"}),
        json!({"timestamp": "2025-08-24T10:30:00Z"}),
        json!({"agentOutput": {"confidenceScore": 0.5, "verified": true, "citations": []}}),
        json!({"agentOutput": {"confidenceScore": 0.5, "verified": false}}),
        json!({"quotas": [{"kind": "tokens", "period": "day", "limit": 100, "used": 85}, {"kind": "cost_usd", "period": "month", "limit": 10, "used": 10}]}),
        json!({"simulation": {"citationCoverage": 0.71, "duplicationRisk": 0.3, "costEstimateUSD": 6000}}),
    ];
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut outcomes = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let mut v = base.clone();
        for _ in 0..(1 + next() % 4) {
            merge(&mut v, &patches[(next() % patches.len() as u64) as usize]);
        }
        let input = PolicyInput::from_value(&v).unwrap_or_else(|e| panic!("{e}: {v}"));
        let vm = bundle.evaluate_with(&input, EvalMode::Vm).unwrap();
        let interp = bundle.evaluate_with(&input, EvalMode::Interpreter).unwrap();
        assert_eq!(vm, interp, "{v}");
        outcomes.extend(
            vm.deny
                .iter()
                .chain(&vm.warnings)
                .chain(&vm.reasons)
                .cloned(),
        );
    }
    // The inputs reached most codes.
    assert!(
        outcomes.len() >= 40,
        "{} codes: {outcomes:?}",
        outcomes.len()
    );
}

fn merge(into: &mut Value, patch: &Value) {
    match (into, patch) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

#[test]
fn evaluation_id_is_deterministic_and_covers_the_input() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    let a = bundle.evaluate(&input).unwrap();
    // Reordered keys and other whitespace: the same input.
    let reordered: Value = serde_json::from_str(&example_input_text()).unwrap();
    let compact = serde_json::to_string(&reordered).unwrap();
    let b = bundle
        .evaluate(&PolicyInput::from_json(&compact).unwrap())
        .unwrap();
    assert_eq!(a.evaluation_id, b.evaluation_id);
    let mut v = example_input_value();
    v["currentSpend"]["thisWeek"] = json!(301);
    let c = bundle
        .evaluate(&PolicyInput::from_value(&v).unwrap())
        .unwrap();
    assert_ne!(a.evaluation_id, c.evaluation_id);
    assert_eq!(
        a.evaluation_id,
        evaluation_id(bundle.checksum(), &input.to_value().unwrap()).unwrap()
    );
}

#[test]
fn bad_policy_input_names_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"workflow": [{"type": "pubish"}]}),
            "/workflow/0/type",
        ),
        (json!({"timestamp": "yesterday"}), "/timestamp"),
        (
            json!({"currentSpend": {"thisWeek": -1}}),
            "/currentSpend/thisWeek",
        ),
        (
            json!({"currentSpend": {"currency": "usd"}}),
            "/currentSpend/currency",
        ),
        (
            json!({"workspace": {"budget": {"hardCap": -5}}}),
            "/workspace/budget/hardCap",
        ),
        (
            json!({"workspace": {"lifecycle": "running"}}),
            "/workspace/lifecycle",
        ),
        (
            json!({"agentOutput": {"confidenceScore": 1.5}}),
            "/agentOutput/confidenceScore",
        ),
        (
            json!({"simulation": {"citationCoverage": 2.0}}),
            "/simulation/citationCoverage",
        ),
        (
            json!({"quotas": [{"kind": "tokens", "period": "week", "limit": 1, "used": 0}]}),
            "/quotas/0/period",
        ),
        (
            json!({"workflow": [{"type": "research", "flags": {"usesVoice": true}}]}),
            "/workflow/0/flags",
        ),
        (json!({"surprise": 1}), ""),
    ];
    for (patch, pointer) in cases {
        let mut v = example_input_value();
        merge(&mut v, &patch);
        match PolicyInput::from_value(&v) {
            Err(e @ PolicyError::InvalidInput { .. }) => {
                assert!(
                    e.pointer().unwrap().starts_with(pointer),
                    "{patch}: {e} (pointer {:?})",
                    e.pointer()
                );
            }
            other => panic!("{patch}: {other:?}"),
        }
    }
    let mut v = example_input_value();
    v.as_object_mut().unwrap().remove("simulation");
    assert!(PolicyInput::from_value(&v).is_err());
    assert!(PolicyInput::from_json("[1]").is_err());
    assert!(PolicyInput::from_json("{\"a\":1,\"a\":2}").is_err());
}

#[test]
fn checksum_ignores_file_order_data_whitespace_and_tests() {
    let files: Vec<(String, Vec<u8>)> = PolicyBundle::default_files()
        .map(|(p, s)| (p.to_string(), s.as_bytes().to_vec()))
        .collect();
    let reference = PolicyBundle::from_files(files.clone()).unwrap();
    assert_eq!(
        reference.checksum(),
        PolicyBundle::default_bundle().unwrap().checksum()
    );
    assert_eq!(reference.checksum().len(), 64);
    assert!(
        reference
            .checksum()
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let mut reversed = files.clone();
    reversed.reverse();
    let data_pretty = serde_json::to_vec_pretty(&default_data()).unwrap();
    let data_compact = serde_json::to_vec(&default_data()).unwrap();
    assert_ne!(data_pretty, data_compact);
    for variant in [
        reversed,
        with_file(&files, "data.json", data_compact),
        with_file(&files, "data.json", data_pretty),
        with_file(
            &files,
            "smm/decision_test.rego",
            b"package smm.decision_test\nimport rego.v1\ntest_x if true\n".to_vec(),
        ),
        files
            .iter()
            .filter(|(p, _)| !p.ends_with("_test.rego"))
            .cloned()
            .collect(),
        // Leading slashes, as `opa build` writes archive members.
        files
            .iter()
            .map(|(p, b)| (format!("/{p}"), b.clone()))
            .collect(),
    ] {
        assert_eq!(
            PolicyBundle::from_files(variant).unwrap().checksum(),
            reference.checksum()
        );
    }
    // from_modules with the same modules and data.
    assert_eq!(
        PolicyBundle::from_modules(default_modules(), Some(default_data()))
            .unwrap()
            .checksum(),
        reference.checksum()
    );
    // Any byte of a policy module, any data value: another checksum.
    let budget = files
        .iter()
        .find(|(p, _)| p == "smm/budget.rego")
        .unwrap()
        .1
        .clone();
    let mut spaced = budget.clone();
    spaced.push(b'\n');
    let mut data = default_data();
    data["smm"]["config"]["quota"]["warnRatio"] = json!(0.81);
    for variant in [
        with_file(&files, "smm/budget.rego", spaced),
        with_file(&files, "data.json", serde_json::to_vec(&data).unwrap()),
    ] {
        assert_ne!(
            PolicyBundle::from_files(variant).unwrap().checksum(),
            reference.checksum()
        );
    }
    // The manifest is documented: its SHA-256 is the checksum.
    let manifest = checksum_manifest(&default_modules(), &default_data()).unwrap();
    let text = String::from_utf8(manifest.clone()).unwrap();
    assert!(text.starts_with("{\"data\":"), "{text}");
    assert!(text.contains("\"format\":\"smm-policy-bundle/v1\""));
    assert!(!text.contains("_test.rego"));
    assert_eq!(
        smm_core::jcs::sha256_ref_of_canonical(&manifest),
        format!("sha256:{}", reference.checksum())
    );
}

fn with_file(files: &[(String, Vec<u8>)], path: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = files.iter().filter(|(p, _)| p != path).cloned().collect();
    out.push((path.to_string(), bytes));
    out
}

/// An archive as `opa build` writes it: members with a leading slash, data
/// files by directory, a `.manifest`.
fn opa_archive(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append_data(
            &mut h,
            format!("/{path}").trim_start_matches('/'),
            &bytes[..],
        )
        .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

#[test]
fn opa_bundle_archives_load_as_they_are() {
    let files: Vec<(String, Vec<u8>)> = PolicyBundle::default_files()
        .map(|(p, s)| (p.to_string(), s.as_bytes().to_vec()))
        .collect();
    let archive = opa_archive(&files);
    let b = PolicyBundle::from_archive_bytes(&archive).unwrap();
    assert_eq!(
        b.checksum(),
        PolicyBundle::default_bundle().unwrap().checksum()
    );
    assert_eq!(b.manifest().unwrap()["roots"], json!(["smm"]));
    assert!(b.test().unwrap().ok());

    // Data files mount at their directory's path.
    let policy = "package ops\nimport rego.v1\n\nlimit := data.ops.limits.max\n"
        .as_bytes()
        .to_vec();
    let archive = opa_archive(&[
        ("ops/policy.rego".into(), policy),
        ("ops/limits/data.json".into(), b"{\"max\": 7}".to_vec()),
    ]);
    let b = PolicyBundle::from_archive_bytes(&archive).unwrap();
    assert_eq!(
        b.query("data.ops.limit", &json!({})).unwrap(),
        Some(json!(7))
    );
    assert_eq!(b.data(), &json!({"ops": {"limits": {"max": 7}}}));
}

#[test]
fn hostile_archives_are_refused() {
    let module = b"package x\nimport rego.v1\n\nallow := true\n".to_vec();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not gzip at all".to_vec(), "archive"),
        (
            opa_archive(&[
                ("x.rego".into(), module.clone()),
                ("data.yaml".into(), b"a: 1".to_vec()),
            ]),
            "data.yaml",
        ),
        (
            opa_archive(&[
                ("x.rego".into(), module.clone()),
                ("p.wasm".into(), b"\0asm".to_vec()),
            ]),
            "p.wasm",
        ),
        (
            opa_archive(&[
                ("x.rego".into(), module.clone()),
                ("data.json".into(), b"{\"a\":1,\"a\":2}".to_vec()),
            ]),
            "data.json",
        ),
        (
            opa_archive(&[("x.rego".into(), vec![0xff, 0xfe])]),
            "x.rego",
        ),
        (
            opa_archive(&[
                ("x.rego".into(), module.clone()),
                ("a/data.json".into(), b"1".to_vec()),
                ("a/b/data.json".into(), b"2".to_vec()),
            ]),
            "a/b/data.json",
        ),
        (
            opa_archive(&[("README.md".into(), b"no policy".to_vec())]),
            "",
        ),
    ];
    for (bytes, path) in cases {
        match PolicyBundle::from_archive_bytes(&bytes) {
            Err(PolicyError::InvalidBundle { path: p, .. }) => {
                assert!(p.contains(path), "{p} vs {path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
    // A member walking out with "..": tar refuses to build it, so write the
    // header by hand.
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..11].copy_from_slice(b"../x.rego\0\0");
    h.set_size(module.len() as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    tar.append(&h, &module[..]).unwrap();
    let bytes = tar.into_inner().unwrap().finish().unwrap();
    assert!(matches!(
        PolicyBundle::from_archive_bytes(&bytes),
        Err(PolicyError::InvalidBundle { .. })
    ));
    // A gzip bomb: 40 MB of zeros in one member, 40 KB compressed.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut tar_bytes = Vec::new();
    {
        let mut t = tar::Builder::new(&mut tar_bytes);
        let zeros = vec![0u8; 40 << 20];
        let mut h = tar::Header::new_gnu();
        h.set_size(zeros.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        t.append_data(&mut h, "big.rego", &zeros[..]).unwrap();
        t.finish().unwrap();
    }
    gz.write_all(&tar_bytes).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    assert!(PolicyBundle::from_archive_bytes(&bomb).is_err());
}

#[test]
fn broken_rules_fail_the_load_naming_module_and_line() {
    let load =
        |src: &str| PolicyBundle::from_modules([("pkg/p.rego".to_string(), src.to_string())], None);
    match load("package p\nimport rego.v1\n\nallow if {\n  input.a ==\n}\n") {
        Err(PolicyError::Compile { module, line, .. }) => {
            assert_eq!(module, "pkg/p.rego");
            assert_eq!(line, Some(6));
        }
        other => panic!("{other:?}"),
    }
    // regorus has no type checker: these only fail when the rule runs, so
    // the load runs every rule once.
    match load("package p\nimport rego.v1\n\nn := count(1)\n") {
        Err(PolicyError::Rule {
            module,
            line,
            message,
        }) => {
            assert_eq!(module, "pkg/p.rego");
            assert_eq!(line, Some(4));
            assert!(message.contains("count"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    match load("package p\nimport rego.v1\n\nallow if {\n  foo.bar(1) == 2\n}\n") {
        Err(PolicyError::Rule { line, message, .. }) => {
            assert_eq!(line, Some(5));
            assert!(message.contains("foo.bar"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // An unknown function behind input in the decision: the VM compiler
    // finds it statically.
    match load(
        "package smm\nimport rego.v1\n\ndecision := {\"allow\": x} if {\n  input.a == 1\n  x := nope.fn(1)\n}\n",
    ) {
        Err(PolicyError::Compile { message, .. }) => {
            assert!(message.contains("nope.fn"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    // Conflicting values of a complete rule.
    assert!(load("package p\nimport rego.v1\n\nx := 1\nx := 2\n").is_err());
    // Not a bundle: no policy module, a bad path, a module path without .rego.
    assert!(PolicyBundle::from_modules(Vec::<(String, String)>::new(), None).is_err());
    assert!(
        PolicyBundle::from_modules([("../p.rego".to_string(), "package p".to_string())], None)
            .is_err()
    );
    assert!(
        PolicyBundle::from_modules([("p.txt".to_string(), "package p".to_string())], None).is_err()
    );
    assert!(
        PolicyBundle::from_modules(
            [("p.rego".to_string(), "package p".to_string())],
            Some(json!([1]))
        )
        .is_err()
    );
}

#[test]
fn query_any_rule_on_any_input() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let v = example_input_value();
    assert_eq!(
        bundle.query("data.smm.allow", &v).unwrap(),
        Some(json!(true))
    );
    assert_eq!(
        bundle.query("data.smm.budget.workflow_cost", &v).unwrap(),
        Some(json!(400))
    );
    // Undefined is None, not an error.
    assert_eq!(
        bundle.query("data.smm.lib.now_ns", &json!({})).unwrap(),
        None
    );
    // Builtin errors are strict: a type-confused input is an error, not a
    // silently undefined rule.
    assert!(matches!(
        bundle.query("data.smm.lifecycle.state", &json!({"workspace": 3})),
        Err(PolicyError::Rule { .. })
    ));
    assert!(bundle.query("data.no.such.rule", &v).is_err());
    // A decision on a schema-less input is possible through query.
    let d = bundle.query(DECISION_RULE, &json!({})).unwrap().unwrap();
    assert_eq!(d["allow"], json!(false));
}

#[test]
fn no_default_module_reads_the_clock_or_other_nondeterminism() {
    const FORBIDDEN: [&str; 7] = [
        "time.now_ns",
        "rand.intn",
        "uuid.rfc4122",
        "http.send",
        "opa.runtime",
        "net.lookup_ip_addr",
        "trace",
    ];
    for (path, src) in PolicyBundle::default_files().filter(|(p, _)| p.ends_with(".rego")) {
        let code = strip_comments_and_strings(src);
        for f in FORBIDDEN {
            assert!(!code.contains(f), "{path} calls {f}");
        }
        // Every time rule reads input.timestamp through smm.lib.
        if code.contains("time.parse_rfc3339_ns") && !path.ends_with("lib.rego") {
            assert!(
                code.contains("lib.now_ns"),
                "{path} parses times but not against input.timestamp"
            );
        }
    }
    let lib = strip_comments_and_strings(
        PolicyBundle::default_files()
            .find(|(p, _)| *p == "smm/lib.rego")
            .unwrap()
            .1,
    );
    assert!(lib.contains("now_ns := time.parse_rfc3339_ns(input.timestamp)"));
    // And the same input at two real times gives the same decision.
    let bundle = PolicyBundle::default_bundle().unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    let a = bundle.evaluate(&input).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(a, bundle.evaluate(&input).unwrap());
}

/// Rego source without `#` comments and without the content of string
/// literals (so a comment or a code string cannot hide or fake a call).
fn strip_comments_and_strings(src: &str) -> String {
    let mut out = String::new();
    for line in src.lines() {
        let mut in_str = false;
        let mut escaped = false;
        for c in line.chars() {
            if in_str {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_str = false;
                    out.push('"');
                }
                continue;
            }
            match c {
                '#' => break,
                '"' => {
                    in_str = true;
                    out.push('"');
                }
                _ => out.push(c),
            }
        }
        out.push('\n');
    }
    out
}

#[test]
fn one_bundle_evaluates_from_many_threads() {
    let bundle = PolicyBundle::default_bundle().unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    let expected = bundle.evaluate(&input).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert_eq!(bundle.evaluate(&input).unwrap(), expected);
                }
            });
        }
    });
}

fn example_report() -> smm_core::sim::SimulationReport {
    let contract = example_contract();
    let req = SimulationRequest::from_value(&json!({
        "workspaceContext": contract.document(),
        "simulationConfig": {"iterations": 1000, "randomSeed": 42},
    }))
    .unwrap();
    simulate(
        &req,
        &RunOptions {
            threads: Some(1),
            ..Default::default()
        },
    )
    .unwrap()
}

fn decision_for(patch: Value) -> Decision {
    let mut v = example_input_value();
    merge(&mut v, &patch);
    PolicyBundle::default_bundle()
        .unwrap()
        .evaluate(&PolicyInput::from_value(&v).unwrap())
        .unwrap()
}

fn contract_with(patch: Value) -> Contract {
    let mut v = example_contract().document().clone();
    merge(&mut v, &patch);
    Contract::from_value(v).unwrap()
}

#[test]
fn decision_card_for_the_example() {
    let report = example_report();
    let decision = decision_for(json!({}));
    let card = decision_card(&report, &decision, &example_contract()).unwrap();
    assert_eq!(card.action, CardAction::HumanApproval);
    // Readiness ~0.74 under the 0.87 threshold; paid ads under
    // manualApprovalForPaid; legal approval; and the policy's legal review.
    assert_eq!(
        card.reason_codes,
        vec![
            "legal_approval_required",
            "paid_spend_needs_approval",
            "policy_requires_approval",
            "readiness_below_threshold"
        ]
    );
    assert_eq!(card.reasons.len(), 4);
    assert_eq!(card.canary.initial_pct, 0.05);
    assert_eq!(card.canary.watch_window_hours, 48.0);
    assert_eq!(card.primary_action.action, "approve_promotion");
    assert!(card.primary_action.requires_confirmation);
    assert_eq!(card.cost_estimate.planned_weekly, 1200.0);
    assert_eq!(card.cost_estimate.weekly_cap, 1200.0);
    assert_eq!(card.cost_estimate.mean, report.cost_estimate_usd.mean);
    assert_eq!(card.escalations, vec!["legal_review"]);
    assert_eq!(card.created_at, "2025-09-01T12:00:00Z");
    assert_eq!(card.expires_at, "2025-09-02T12:00:00Z");
    assert_eq!(card.title, "LinkedIn + X + Instagram campaign");
    assert!(card.action_id.starts_with("action-") && card.action_id.len() == 23);
    // Deterministic.
    assert_eq!(
        card,
        decision_card(&report, &decision, &example_contract()).unwrap()
    );
}

#[test]
fn decision_card_auto_approves_only_when_everything_holds() {
    let report = example_report();
    let lower = report.readiness_score.confidence.lower;
    let relaxed = json!({"approvalPolicy": {
        "autoApproveReadinessThreshold": lower - 0.01,
        "manualApprovalForPaid": false,
        "legalManualApproval": false,
    }});
    let contract = contract_with(relaxed.clone());
    let decision = decision_for(json!({"workspace": relaxed}));
    assert!(!decision.require_human_approval, "{decision:?}");
    let card = decision_card(&report, &decision, &contract).unwrap();
    assert_eq!(card.action, CardAction::AutoApprove);
    assert_eq!(card.reason_codes, vec!["auto_approve_eligible"]);
    assert!(!card.primary_action.requires_confirmation);

    // The threshold just above the interval's lower bound: a human.
    let strict = json!({"approvalPolicy": {
        "autoApproveReadinessThreshold": lower + 1e-9,
        "manualApprovalForPaid": false,
        "legalManualApproval": false,
    }});
    let card = decision_card(
        &report,
        &decision_for(json!({"workspace": strict.clone()})),
        &contract_with(strict),
    )
    .unwrap();
    assert_eq!(card.reason_codes, vec!["readiness_below_threshold"]);
}

#[test]
fn decision_card_denies_on_policy_denial_or_halt() {
    let report = example_report();
    let decision = decision_for(json!({"currentSpend": {"thisWeek": 1190}}));
    assert!(!decision.allow);
    let card = decision_card(&report, &decision, &example_contract()).unwrap();
    assert_eq!(card.action, CardAction::Deny);
    assert!(card.reason_codes.contains(&"policy_denied".to_string()));
    assert!(
        card.reason_codes
            .contains(&"policy_deny:weekly_budget_exceeded".to_string())
    );
    assert_eq!(card.primary_action.action, "reject_promotion");
    assert_eq!(card.primary_action.canary_pct, 0.0);
    assert!(
        card.risk_factors
            .iter()
            .any(|r| r.code == "weekly_budget_exceeded"
                && r.level == "high"
                && r.risk_type == "budget")
    );

    let halted = json!({"emergencyFlags": {"halted": true, "reason": "budget breach", "haltedAt": "2025-09-01T11:00:00Z"}});
    let decision = decision_for(json!({"workspace": halted.clone()}));
    let card = decision_card(&report, &decision, &contract_with(halted)).unwrap();
    assert_eq!(card.action, CardAction::Deny);
    assert!(card.reason_codes.contains(&"workspace_halted".to_string()));
}

#[test]
fn decision_card_refuses_a_decision_of_another_bundle() {
    let report = example_report();
    let other = PolicyBundle::from_modules(
        [(
            "smm/decision.rego".to_string(),
            "package smm\nimport rego.v1\n\ndecision := {\"allow\": true, \"deny\": [], \"warnings\": [], \"reasons\": [], \"require_human_approval\": false}\n".to_string(),
        )],
        None,
    )
    .unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    // Evaluating any bundle on any input stays possible...
    let decision = other.evaluate(&input).unwrap();
    assert!(decision.allow);
    // ...but its card for this contract is refused, naming both checksums.
    let contract = example_contract();
    match decision_card(&report, &decision, &contract) {
        Err(e @ PolicyError::ChecksumMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(other.checksum()), "{msg}");
            assert!(
                msg.contains(&contract.contract().policy_bundle_checksum),
                "{msg}"
            );
        }
        x => panic!("{x:?}"),
    }
}

#[test]
fn a_bundle_without_a_usable_decision() {
    let b = PolicyBundle::from_modules(
        [(
            "p.rego".to_string(),
            "package p\nimport rego.v1\n\nallow := true\n".to_string(),
        )],
        None,
    )
    .unwrap();
    let input = PolicyInput::from_json(&example_input_text()).unwrap();
    assert!(matches!(
        b.evaluate(&input),
        Err(PolicyError::NoDecision { .. })
    ));
    let wrong = PolicyBundle::from_modules(
        [(
            "smm/d.rego".to_string(),
            "package smm\nimport rego.v1\n\ndecision := {\"allow\": \"yes\"}\n".to_string(),
        )],
        None,
    )
    .unwrap();
    assert!(matches!(
        wrong.evaluate(&input),
        Err(PolicyError::NoDecision { .. })
    ));
    let contradictory = PolicyBundle::from_modules(
        [("smm/d.rego".to_string(), "package smm\nimport rego.v1\n\ndecision := {\"allow\": true, \"deny\": [\"x\"], \"warnings\": [], \"reasons\": [], \"require_human_approval\": false}\n".to_string())],
        None,
    )
    .unwrap();
    assert!(matches!(
        contradictory.evaluate(&input),
        Err(PolicyError::NoDecision { .. })
    ));
}

#[test]
fn regorus_version_matches_the_lockfile() {
    let lock =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock")).unwrap();
    assert!(
        lock.contains(&format!(
            "name = \"regorus\"\nversion = \"{REGORUS_VERSION}\""
        )),
        "REGORUS_VERSION is stale"
    );
}

/// A prepared input around an already validated contract is the same input
/// (same canonical bytes, same decision) as the whole document validated at
/// once; the rest is still checked, naming the field; a workspace given
/// twice is refused.
#[test]
fn an_input_around_a_validated_contract_is_the_same_input() {
    let whole = example_input_value();
    let contract = Contract::from_value(whole["workspace"].clone()).unwrap();
    let mut rest = whole.clone();
    rest.as_object_mut().unwrap().remove("workspace");
    let a = PolicyInput::from_value(&whole).unwrap();
    let b = PolicyInput::with_contract(&contract, &rest).unwrap();
    assert_eq!(a.canonical_json(), b.canonical_json());
    let bundle = PolicyBundle::default_bundle().unwrap();
    assert_eq!(bundle.evaluate(&a).unwrap(), bundle.evaluate(&b).unwrap());
    let e = PolicyInput::with_contract(&contract, &whole).unwrap_err();
    assert_eq!(e.pointer(), Some("/workspace"), "{e}");
    let mut bad = rest.clone();
    bad["timestamp"] = json!("yesterday");
    let e = PolicyInput::with_contract(&contract, &bad).unwrap_err();
    assert_eq!(e.pointer(), Some("/timestamp"), "{e}");
    let e = PolicyInput::with_contract(&contract, &json!([1])).unwrap_err();
    assert_eq!(e.pointer(), Some(""), "{e}");
}

/// A consent valid until 2999 (a perpetual licence, say) used to be decided
/// as expired on the VM: the engine reads times as nanoseconds since 1970
/// in 64 bits (1677 to 2262), its VM left the rule that parsed the expiry
/// undefined, and `expired_voice_consent` denied. Every time a policy
/// compares is now checked at validation: such an input is refused, naming
/// the field, on every path into a decision.
#[test]
fn a_time_the_engine_cannot_compare_is_refused_naming_it() {
    let cases = [
        ("/timestamp", json!({"timestamp": "2300-01-01T00:00:00Z"})),
        (
            "/workspace/createdAt",
            json!({"workspace": {"createdAt": "1600-01-01T00:00:00Z"}}),
        ),
        (
            "/workspace/effectiveTo",
            json!({"workspace": {"effectiveTo": "2262-04-11T23:47:16.854775808Z"}}),
        ),
        (
            "/workspace/connectors/1/lastConnectedAt",
            json!({"workspace": {"connectors": [{}, {"lastConnectedAt": "9999-12-31T23:59:59Z"}]}}),
        ),
    ];
    for (pointer, patch) in cases {
        let mut v = example_input_value();
        if let Some(list) = patch.pointer("/workspace/connectors") {
            // Patch the second connector in place.
            v["workspace"]["connectors"][1]["lastConnectedAt"] = list[1]["lastConnectedAt"].clone();
        } else {
            merge(&mut v, &patch);
        }
        let err = PolicyInput::from_value(&v).unwrap_err();
        assert!(
            matches!(&err, PolicyError::InvalidInput { pointer: p, .. } if p == pointer),
            "{pointer}: {err}"
        );
    }
    // The last instant that fits is accepted, and decided alike everywhere.
    let bundle = PolicyBundle::default_bundle().unwrap();
    let mut v = example_input_value();
    v["workspace"]["consentRecords"][0]["expiresAt"] = json!("2262-04-11T23:47:16.854775807Z");
    let input = PolicyInput::from_value(&v).unwrap();
    let vm = bundle.evaluate_with(&input, EvalMode::Vm).unwrap();
    assert_eq!(
        vm,
        bundle.evaluate_with(&input, EvalMode::Interpreter).unwrap()
    );
    assert!(
        vm.reasons.contains(&"voice_consent_validated".to_string()),
        "{vm:?}"
    );
    // 2999: refused, where the VM used to deny it as expired.
    v["workspace"]["consentRecords"][0]["expiresAt"] = json!("2999-01-01T00:00:00Z");
    let err = PolicyInput::from_value(&v).unwrap_err();
    assert!(err.to_string().contains("2262"), "{err}");
    assert_eq!(
        err.pointer(),
        Some("/workspace/consentRecords/0/expiresAt"),
        "{err}"
    );
    // Around a validated contract, the same check.
    let contract = Contract::from_value(v["workspace"].clone()).unwrap();
    let mut rest = v.clone();
    rest.as_object_mut().unwrap().remove("workspace");
    let err = PolicyInput::with_contract(&contract, &rest).unwrap_err();
    assert_eq!(err.pointer(), Some("/workspace/consentRecords/0/expiresAt"));
}
