//! Workspace contracts through the public API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use serde_json::{Value, json};
use smm_core::contract::{
    ChainIssueKind, ChangeKind, Contract, ContractError, ContractHistory, Lifecycle, migrate_v1,
    parse_document, terms_hash_of, validate_document,
};
use smm_core::time::Timestamp;

const V1: &str = include_str!("../../examples/workspace.icblabs.v1.json");
const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const NOW: Timestamp = Timestamp {
    seconds: 1_756_684_800, // 2025-09-01T00:00:00Z
    nanos: 0,
};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn v2_doc() -> Value {
    serde_json::from_str(V2).unwrap()
}

fn v1_contract() -> Contract {
    Contract::from_value(migrate_v1(&parse_document(V1).unwrap()).unwrap()).unwrap()
}

fn with(mut doc: Value, pointer: &str, v: Value) -> Value {
    *doc.pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = v;
    doc
}

fn errors(doc: &Value) -> Vec<(String, String)> {
    validate_document(doc.to_string().as_bytes(), NOW)
        .unwrap()
        .into_iter()
        .filter(|v| v.is_error())
        .map(|v| (v.pointer, v.rule))
        .collect()
}

#[test]
fn the_examples_are_valid_and_chained() {
    let v2 = Contract::from_json(V2).unwrap();
    assert_eq!(errors(&v2_doc()), vec![]);
    let v1 = v1_contract();
    assert!(v1.validate(NOW).unwrap().iter().all(|v| !v.is_error()));
    assert_eq!(
        v2.contract().previous_contract_ref.as_deref(),
        Some(v1.terms_hash())
    );
    assert_eq!(
        v1.check_change(&v2).unwrap(),
        ChangeKind::NewVersion {
            from: "v1.0.0".into(),
            to: "v1.1.0".into(),
            changed: v1
                .check_change(&v2)
                .map(|c| match c {
                    ChangeKind::NewVersion { changed, .. } => changed,
                    _ => vec![],
                })
                .unwrap(),
        }
    );
    assert_eq!(v2.contract_id(), "ws-icblabs-0001-v1.1.0");
    let hash = v2.terms_hash();
    assert!(hash.starts_with("sha256:") && hash.len() == 71);
}

#[test]
fn a_v1_contract_must_be_migrated_explicitly() {
    let e = Contract::from_json(V1).unwrap_err();
    assert!(matches!(e, ContractError::V1Contract { .. }), "{e}");
    assert_eq!(e.pointer(), Some("/emergencyFlags/pauseAll"));
    let halted = migrate_v1(&json!({"emergencyFlags": {"pauseAll": true, "pausedAt": "2025-01-01T00:00:00Z", "reason": "breach"}})).unwrap();
    assert_eq!(
        halted["emergencyFlags"],
        json!({"halted": true, "haltedAt": "2025-01-01T00:00:00Z", "reason": "breach", "budgetOverride": false, "humanApprovalRequired": false})
    );
    let e = migrate_v1(&json!({"emergencyFlags": {"pauseAll": "yes"}})).unwrap_err();
    assert_eq!(e.pointer(), Some("/emergencyFlags/pauseAll"));
    let e = migrate_v1(&json!({"emergencyFlags": {"selfDestruct": true}})).unwrap_err();
    assert_eq!(e.pointer(), Some("/emergencyFlags/selfDestruct"));
}

#[test]
fn the_original_examples_fail_their_schema_and_ours() {
    for text in [
        include_str!("data/original/workspace-contract.icblabs.json"),
        include_str!("data/original/workspace-contract.icblabs.v2.json"),
    ] {
        let doc = migrate_v1(&parse_document(text).unwrap()).unwrap();
        let errs = errors(&doc);
        assert!(
            errs.contains(&("/policyBundleChecksum".into(), "schema.pattern".into())),
            "{errs:?}"
        );
    }
}

#[test]
fn validation_reports_every_schema_violation_with_its_pointer() {
    let mut doc = v2_doc();
    doc["budget"]["currency"] = json!("usd");
    doc["budget"]["hardCap"] = json!("4000");
    doc["goals"] = json!([]);
    doc["primaryChannels"][0] = json!("myspace");
    doc["approvalPolicy"]["canaryInitialPct"] = json!(1.5);
    doc["contractVersion"] = json!("1.1.0");
    doc["connectors"][0]["colour"] = json!("blue");
    doc["dataRetention"]["auditRetentionDays"] = json!(7);
    doc.as_object_mut().unwrap().remove("tenantId");
    doc["createdAt"] = json!("yesterday");
    let got = errors(&doc);
    for want in [
        ("/budget/currency", "schema.pattern"),
        ("/budget/hardCap", "schema.type"),
        ("/goals", "schema.minItems"),
        ("/primaryChannels/0", "schema.enum"),
        ("/approvalPolicy/canaryInitialPct", "schema.maximum"),
        ("/contractVersion", "schema.pattern"),
        ("/connectors/0/colour", "schema.additionalProperties"),
        ("/dataRetention/auditRetentionDays", "schema.minimum"),
        ("/tenantId", "schema.required"),
        ("/createdAt", "schema.format"),
    ] {
        assert!(
            got.contains(&(want.0.to_string(), want.1.to_string())),
            "missing {want:?} in {got:?}"
        );
    }
    let msgs = validate_document(doc.to_string().as_bytes(), NOW).unwrap();
    let unknown = msgs
        .iter()
        .find(|v| v.pointer == "/connectors/0/colour")
        .unwrap();
    assert!(
        unknown.message.contains("unknown field `colour`"),
        "{}",
        unknown.message
    );
    let e = Contract::from_value(doc).unwrap_err();
    assert!(
        matches!(&e, ContractError::Schema { violations } if violations.len() >= 10),
        "{e}"
    );
}

#[test]
fn business_rules() {
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(v2_doc(), "/budget/breakdown/paidAds", json!(5000)),
            "/budget/breakdown",
            "rule.breakdownWithinWeeklyCap",
        ),
        (
            with(v2_doc(), "/budget/weeklyCap", json!(6000)),
            "/budget/weeklyCap",
            "rule.weeklyCapWithinHardCap",
        ),
        (
            with(v2_doc(), "/budget/hardCap", json!(0)),
            "/budget/hardCap",
            "rule.positiveCaps",
        ),
        (
            {
                let mut d = v2_doc();
                d.as_object_mut().unwrap().remove("signedBy");
                d
            },
            "/signedBy",
            "rule.signedImpliesSignedBy",
        ),
        (
            with(v2_doc(), "/connectors/2/status", json!("revoked")),
            "/primaryChannels/2",
            "rule.channelHasConnector",
        ),
        (
            with(
                v2_doc(),
                "/consentRecords/0/expiresAt",
                json!("2025-08-30T00:00:00Z"),
            ),
            "/consentRecords/0/expiresAt",
            "rule.consentUnexpired",
        ),
        (
            with(v2_doc(), "/ttlHours", json!(12)),
            "/ttlHours",
            "rule.minimumTtl",
        ),
        (
            with(v2_doc(), "/emergencyFlags/halted", json!(true)),
            "/emergencyFlags/reason",
            "rule.haltedImpliesReason",
        ),
        (
            with(
                with(v2_doc(), "/lifecycle", json!("active")),
                "/effectiveFrom",
                json!("2025-10-01T00:00:00Z"),
            ),
            "/effectiveFrom",
            "rule.activeImpliesEffective",
        ),
        (
            with(v2_doc(), "/effectiveTo", json!("2025-01-01T00:00:00Z")),
            "/effectiveTo",
            "rule.effectiveRange",
        ),
    ];
    for (doc, pointer, rule) in cases {
        let got = errors(&doc);
        assert!(
            got.contains(&(pointer.to_string(), rule.to_string())),
            "{rule}: {got:?}"
        );
    }
    // Time is passed in: the same consent is fine earlier and expired later.
    let c = Contract::from_json(V2).unwrap();
    assert!(
        c.validate(at("2026-08-24T10:15:00Z"))
            .unwrap()
            .iter()
            .any(|v| v.rule == "rule.consentUnexpired")
    );
    assert!(
        !c.validate(at("2026-08-24T10:14:59Z"))
            .unwrap()
            .iter()
            .any(|v| v.rule == "rule.consentUnexpired")
    );
    // A time that is not one is refused at the front door.
    assert!(matches!(
        smm_core::contract::parse_now("tomorrow"),
        Err(ContractError::InvalidNow(_))
    ));
    // A stale connector is a warning, not an error.
    let w = c.validate(at("2025-09-20T00:00:00Z")).unwrap();
    assert!(
        w.iter()
            .any(|v| v.rule == "rule.connectorFresh" && !v.is_error()),
        "{w:?}"
    );
}

#[test]
fn hash_covers_nested_terms_the_original_missed() {
    // The original hashed only top-level keys: budget and goal changes collided.
    let base = terms_hash_of(&v2_doc()).unwrap();
    for (p, v) in [
        ("/budget/hardCap", json!(5001)),
        ("/goals/0/target", json!(251)),
        ("/approvalPolicy/autoApproveReadinessThreshold", json!(0.9)),
        ("/consentRecords/1/documentRef", json!("s3://elsewhere")),
        ("/connectors/0/scopes/0", json!("w_member")),
        ("/audit/storageRef", json!("s3://other/")),
    ] {
        assert_ne!(terms_hash_of(&with(v2_doc(), p, v)).unwrap(), base, "{p}");
    }
    // Lifecycle state is not terms.
    for (p, v) in [
        ("/lifecycle", json!("active")),
        ("/signedBy/signatureId", json!("sig-other")),
        ("/lastRun/status", json!("failed")),
        ("/currentCanary/pct", json!(0.5)),
        ("/emergencyFlags/halted", json!(true)),
        ("/audit/lastBundleId", json!("bundle-x")),
    ] {
        assert_eq!(terms_hash_of(&with(v2_doc(), p, v)).unwrap(), base, "{p}");
    }
    // Spelling does not matter: key order, whitespace, number form.
    let respelled = V2
        .replace("\"weeklyCap\": 1200", "\"weeklyCap\": 1.2e3")
        .replace("\n", "\n   ");
    assert_eq!(Contract::from_json(&respelled).unwrap().terms_hash(), base);
}

#[test]
fn contracts_refuse_what_canonical_json_refuses() {
    let dup = V2.replacen(
        "\"tenantId\": \"tenant-icblabs\",",
        "\"tenantId\": \"tenant-icblabs\", \"tenantId\": \"tenant-evil\",",
        1,
    );
    let e = Contract::from_json(&dup).unwrap_err();
    assert!(matches!(e, ContractError::Canonical(_)), "{e}");
    assert_eq!(e.pointer(), Some("/tenantId"));
    let big = V2.replacen("\"ttlHours\": 720", "\"ttlHours\": 9007199254740993", 1);
    assert_eq!(
        Contract::from_json(&big).unwrap_err().pointer(),
        Some("/ttlHours")
    );
}

#[test]
fn lifecycle_transitions_follow_the_table() {
    let base = Contract::from_value(with(v2_doc(), "/lifecycle", json!("draft"))).unwrap();
    let allowed = [
        ("draft", "validated"),
        ("validated", "signed"),
        ("validated", "draft"),
        ("signed", "provisioning"),
        ("provisioning", "active"),
        ("provisioning", "decommissioned"),
        ("active", "paused"),
        ("active", "decommissioned"),
        ("paused", "active"),
        ("paused", "decommissioned"),
    ];
    for from in Lifecycle::ALL {
        let c = Contract::from_value(with(v2_doc(), "/lifecycle", json!(from.as_str()))).unwrap();
        for to in Lifecycle::ALL {
            let ok = allowed.contains(&(from.as_str(), to.as_str()));
            match c.transition(to) {
                Ok(n) => {
                    assert!(ok, "{from:?} -> {to:?} should be illegal");
                    assert_eq!(n.contract().lifecycle, to);
                    assert_eq!(n.document()["lifecycle"], json!(to.as_str()));
                    assert_eq!(n.terms_hash(), base.terms_hash());
                }
                Err(e) => {
                    assert!(!ok, "{from:?} -> {to:?} should be legal: {e}");
                    assert!(matches!(e, ContractError::IllegalTransition { .. }));
                }
            }
        }
    }
}

#[test]
fn check_change_is_the_ci_gate() {
    let v2 = Contract::from_json(V2).unwrap();
    // Same terms, other lifecycle: fine.
    assert_eq!(
        v2.check_change(&v2.transition(Lifecycle::Provisioning).unwrap())
            .unwrap(),
        ChangeKind::SameTerms
    );
    // Editing a signed contract in place.
    let edited = Contract::from_value(with(v2_doc(), "/budget/hardCap", json!(9000))).unwrap();
    let e = v2.check_change(&edited).unwrap_err();
    assert!(
        matches!(&e, ContractError::ImmutabilityViolation { changed, .. } if changed == &vec!["/budget/hardCap".to_string()]),
        "{e}"
    );
    // Same edit on a draft at the same version: the version must grow.
    let unsigned = || {
        let mut d = with(v2_doc(), "/lifecycle", json!("draft"));
        d.as_object_mut().unwrap().remove("signedBy");
        d
    };
    let draft = Contract::from_value(unsigned()).unwrap();
    let draft_edit =
        Contract::from_value(with(unsigned(), "/budget/hardCap", json!(9000))).unwrap();
    assert!(matches!(
        draft.check_change(&draft_edit),
        Err(ContractError::VersionNotIncreased { .. })
    ));
    // A new version must point at the previous terms hash.
    let mut next = with(v2_doc(), "/budget/hardCap", json!(9000));
    next["contractVersion"] = json!("v1.2.0");
    let e = v2
        .check_change(&Contract::from_value(next.clone()).unwrap())
        .unwrap_err();
    assert!(matches!(e, ContractError::BrokenLink { .. }), "{e}");
    next["previousContractRef"] = json!(v2.terms_hash());
    assert!(matches!(
        v2.check_change(&Contract::from_value(next.clone()).unwrap())
            .unwrap(),
        ChangeKind::NewVersion { .. }
    ));
    // Going backwards.
    next["contractVersion"] = json!("v1.0.9");
    assert!(matches!(
        v2.check_change(&Contract::from_value(next.clone()).unwrap()),
        Err(ContractError::VersionNotIncreased { .. })
    ));
    // Another workspace.
    let other = Contract::from_value(with(v2_doc(), "/workspaceId", json!("ws-other"))).unwrap();
    assert!(matches!(
        v2.check_change(&other),
        Err(ContractError::DifferentWorkspace { .. })
    ));
}

fn next_version(prev: &Contract, version: &str, hard_cap: u32) -> Contract {
    let mut d = with(v2_doc(), "/budget/hardCap", json!(hard_cap));
    d["contractVersion"] = json!(version);
    d["previousContractRef"] = json!(prev.terms_hash());
    Contract::from_value(d).unwrap()
}

#[test]
fn history_verification_finds_every_kind_of_break() {
    let v1 = v1_contract();
    let v2 = Contract::from_json(V2).unwrap();
    let v3 = next_version(&v2, "v1.2.0", 6000);
    let v4 = next_version(&v3, "v1.3.0", 7000);
    let chain = |cs: &[&Contract]| {
        let mut h = ContractHistory::new();
        for c in cs {
            h.push(c);
        }
        h.verify()
    };
    let kinds = |cs: &[&Contract]| chain(cs).issues.iter().map(|i| i.kind).collect::<Vec<_>>();

    let ok = chain(&[&v3, &v1, &v4, &v2]);
    assert!(ok.valid, "{:?}", ok.issues);
    assert_eq!(
        ok.versions,
        [
            "ws-icblabs-0001-v1.0.0",
            "ws-icblabs-0001-v1.1.0",
            "ws-icblabs-0001-v1.2.0",
            "ws-icblabs-0001-v1.3.0"
        ]
    );
    assert_eq!(ok.head.as_deref(), Some(v4.terms_hash()));

    assert_eq!(kinds(&[&v1, &v2, &v4]), vec![ChainIssueKind::BrokenLink]);
    assert_eq!(kinds(&[&v2, &v3]), vec![ChainIssueKind::MissingVersion]);
    let fork = next_version(&v2, "v1.2.1", 6500);
    assert!(kinds(&[&v1, &v2, &v3, &fork]).contains(&ChainIssueKind::Fork));
    let same_version = next_version(&v2, "v1.2.0", 6600);
    assert!(kinds(&[&v1, &v2, &v3, &same_version]).contains(&ChainIssueKind::Fork));
    let backwards = next_version(&v3, "v1.1.5", 6100);
    assert!(kinds(&[&v1, &v2, &v3, &backwards]).contains(&ChainIssueKind::VersionNotIncreasing));
    let stranger = Contract::from_value(with(
        serde_json::to_value(v3.document()).unwrap(),
        "/workspaceId",
        json!("ws-x"),
    ))
    .unwrap();
    assert!(kinds(&[&v1, &v2, &stranger]).contains(&ChainIssueKind::WorkspaceMismatch));

    // A stored snapshot whose content was edited after the fact.
    let mut snaps: Vec<_> = [&v1, &v2, &v3].iter().map(|c| c.snapshot()).collect();
    snaps[1].content["budget"]["hardCap"] = json!(1);
    let r = ContractHistory::from_snapshots(snaps).verify();
    assert!(!r.valid);
    assert_eq!(r.issues[0].kind, ChainIssueKind::Tampered);
    assert!(
        r.issues[0].message.contains("hashes to"),
        "{}",
        r.issues[0].message
    );
    // Snapshot JSON round trip.
    let s = v2.snapshot();
    assert_eq!(s.contract_id, "ws-icblabs-0001-v1.1.0");
    let back: smm_core::contract::ContractSnapshot =
        serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back.verify().unwrap().terms_hash(), v2.terms_hash());
}

#[test]
fn a_schema_error_does_not_hide_the_rules_that_can_still_be_checked() {
    let mut doc: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/workspace.icblabs.v2.json")).unwrap();
    doc["notAField"] = serde_json::json!(1);
    let text = doc.to_string();
    // Later than the consent's expiry: a rule violation besides the schema's.
    let v =
        smm_core::contract::validate_document(text.as_bytes(), ts("2027-01-01T00:00:00Z")).unwrap();
    assert!(v.iter().any(|x| x.pointer == "/notAField"), "{v:?}");
    assert!(
        v.iter()
            .any(|x| x.pointer == "/consentRecords/0/expiresAt" && x.is_error()),
        "{v:?}"
    );
    // A required field missing: nothing more can be checked, and nothing
    // is made up.
    doc.as_object_mut().unwrap().remove("budget");
    let v = smm_core::contract::validate_document(
        doc.to_string().as_bytes(),
        ts("2025-09-01T00:00:00Z"),
    )
    .unwrap();
    assert!(v.iter().all(|x| x.rule.starts_with("schema")), "{v:?}");
}

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}

/// `Platform::as_str` is the serialized name of every platform.
#[test]
fn platform_names_are_the_serialized_names() {
    for p in smm_core::contract::Platform::ALL {
        assert_eq!(serde_json::to_value(p).unwrap(), p.as_str(), "{p:?}");
    }
}
