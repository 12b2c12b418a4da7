//! Audit bundles: assembly, signing, verification, chains, storage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code

use std::sync::Arc;

use p256::ecdsa::{Signature, SigningKey, signature::hazmat::PrehashSigner};
use serde_json::{Value, json};
use smm_core::audit::store::{
    BundleStore, FileBundleStore, MemoryBundleStore, PutOutcome, StoredBundle,
};
use smm_core::audit::{
    self, AgentRun, AuditBundle, AuditError, AuditTrail, BundleChainIssueKind, BundleInputs,
    ExternalSigner, LocalSigner, ModelUsage, SignatureFormat, Signer, TrustedKey, assemble,
    ecdsa_p256_verify, sign_bundle, verify_envelope,
};
use smm_core::contract::Contract;
use smm_core::policy::{Decision, DecisionCard, PolicyBundle, PolicyInput, decision_card};
use smm_core::sim::{RunOptions, SimulationReport, SimulationRequest, simulate};

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");
const REQUEST: &str = include_str!("../../examples/icblabs-seed42.request.json");
const POLICY_INPUT: &str = include_str!("../../examples/policy-input.icblabs.json");

/// The default bundle's decision on the example input with this contract
/// and simulation, and its card.
fn decided(contract: &Contract, report: &SimulationReport) -> (Decision, DecisionCard) {
    let mut input: Value = serde_json::from_str(POLICY_INPUT).unwrap();
    input["workspace"] = contract.document().clone();
    input["simulation"] = serde_json::to_value(audit::SimulationSummary::from(report)).unwrap();
    let d = PolicyBundle::default_bundle()
        .unwrap()
        .evaluate(&PolicyInput::from_value(&input).unwrap())
        .unwrap();
    let card = decision_card(report, &d, contract).unwrap();
    (d, card)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn signer(id: &str, seed: u8) -> LocalSigner {
    LocalSigner::from_secret_bytes(id, &[seed; 32]).unwrap()
}

fn trusted(s: &LocalSigner) -> TrustedKey {
    TrustedKey::new(s.key_id(), s.public_key_pem().as_bytes()).unwrap()
}

fn trail(t0: &str) -> Vec<smm_core::audit::AuditEvent> {
    let mut t = AuditTrail::new();
    t.append(t0, "bundle_created", "system:assembler", json!({}))
        .unwrap();
    t.append(
        t0,
        "simulation_executed",
        "system:simulator",
        json!({"iterations": 1000}),
    )
    .unwrap();
    t.append(t0, "policy_evaluated", "system:opa", json!({"allow": true}))
        .unwrap();
    t.append(
        t0,
        "agent_executed",
        "agent:research",
        json!({"jobId": "job-research-1"}),
    )
    .unwrap();
    t.append(t0, "bundle_sealed", "system:assembler", json!({}))
        .unwrap();
    t.into_events()
}

fn runs() -> Vec<AgentRun> {
    (0..8)
        .map(|i| AgentRun {
            job_id: format!("job-research-{i}"),
            agent_type: "research".into(),
            agent_version: "1.0.0".into(),
            status: "completed".into(),
            started_at: "2025-09-01T10:00:00Z".into(),
            completed_at: Some("2025-09-01T10:01:00Z".into()),
            quality_score: Some(0.9),
            model_usage: vec![ModelUsage {
                model_id: "gpt-4".into(),
                provider: "openai".into(),
                prompt_hash: format!("{:064x}", i),
                input_tokens: 100,
                output_tokens: 200,
                total_tokens: 300,
                cost_estimate_usd: 0.009,
                timestamp: "2025-09-01T10:00:30Z".into(),
            }],
        })
        .collect()
}

fn bundle_at(created: &str, previous: Option<String>) -> AuditBundle {
    let contract = Contract::from_json(V2).unwrap();
    let mut req = SimulationRequest::from_json(REQUEST).unwrap();
    req.config.iterations = 500;
    let report = simulate(
        &req,
        &RunOptions {
            threads: Some(1),
            keep_samples: false,
        },
    )
    .unwrap();
    let (policy_decision, decision_card) = decided(&contract, &report);
    assemble(BundleInputs {
        contract: &contract,
        created_at: created,
        simulation: &report,
        policy_decision,
        decision_card,
        agent_runs: runs(),
        audit_trail: trail(created),
        previous_bundle_ref: previous,
    })
    .unwrap()
}

fn bundle() -> AuditBundle {
    bundle_at("2025-09-01T12:00:00Z", None)
}

#[test]
fn wycheproof_ecdsa_p256_sha256() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/wycheproof");
    let mut counted = 0;
    for (file, format) in [
        ("ecdsa_secp256r1_sha256_test.json", SignatureFormat::Der),
        (
            "ecdsa_secp256r1_sha256_p1363_test.json",
            SignatureFormat::P1363,
        ),
        (
            "legacy-v0/ecdsa_secp256r1_sha256_test.json",
            SignatureFormat::Der,
        ),
        (
            "legacy-v0/ecdsa_secp256r1_sha256_p1363_test.json",
            SignatureFormat::P1363,
        ),
    ] {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        for g in doc["testGroups"].as_array().unwrap() {
            let key = if g.get("publicKey").is_some() {
                &g["publicKey"]
            } else {
                &g["key"]
            };
            let der_key = g
                .get("publicKeyDer")
                .or(g.get("keyDer"))
                .unwrap()
                .as_str()
                .unwrap();
            let pem_key = g
                .get("publicKeyPem")
                .or(g.get("keyPem"))
                .unwrap()
                .as_str()
                .unwrap();
            let keys = [
                hex(key["uncompressed"].as_str().unwrap()),
                hex(der_key),
                pem_key.as_bytes().to_vec(),
            ];
            for t in g["tests"].as_array().unwrap() {
                let msg = hex(t["msg"].as_str().unwrap());
                let sig = hex(t["sig"].as_str().unwrap());
                let expected = t["result"].as_str().unwrap();
                // The fast (ring) path used by bundle verification must agree too.
                let fast = (format == SignatureFormat::Der).then(|| {
                    let vk = audit::parse_public_key(&keys[0]).unwrap();
                    audit::verify_message_der_fast(&vk, &msg, &sig)
                });
                match (expected, fast) {
                    ("valid", Some(f)) => {
                        assert!(f, "{file} tc {} (fast path) should verify", t["tcId"])
                    }
                    ("invalid", Some(f)) => {
                        assert!(!f, "{file} tc {} (fast path) should not verify", t["tcId"])
                    }
                    _ => {}
                }
                for k in &keys {
                    let got = ecdsa_p256_verify(k, &msg, &sig, format).unwrap();
                    match expected {
                        "valid" => assert!(got, "{file} tc {} should verify", t["tcId"]),
                        "invalid" => assert!(
                            !got,
                            "{file} tc {} ({}) should not verify",
                            t["tcId"], t["comment"]
                        ),
                        _ => {} // "acceptable": either answer
                    }
                }
                counted += 1;
            }
        }
    }
    assert_eq!(counted, 484 + 262 + 387 + 219);
    assert!(matches!(
        ecdsa_p256_verify(b"nonsense", b"", b"", SignatureFormat::Der),
        Err(AuditError::InvalidKey { .. })
    ));
}

#[test]
fn dsse_specification_vector() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/dsse/dsse_protocol_test_vector.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let ty = v["payloadType"].as_str().unwrap();
    let body = v["payloadUtf8"].as_str().unwrap().as_bytes();
    assert_eq!(audit::pae(ty, body), v["pae"].as_str().unwrap().as_bytes());
    let secret: [u8; 32] = hex(v["privateKeyHex"].as_str().unwrap())
        .try_into()
        .unwrap();
    let s = LocalSigner::from_secret_bytes("dsse-test", &secret).unwrap();
    assert_eq!(
        s.public_key().to_sec1_bytes().to_vec(),
        hex(v["publicKeyUncompressedHex"].as_str().unwrap())
    );
    let env = audit::Envelope::sign(ty, body, &[&s]).unwrap();
    use base64::Engine;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&env.signatures[0].sig)
        .unwrap();
    assert_eq!(
        der,
        hex(v["sigDerHex"].as_str().unwrap()),
        "deterministic RFC 6979 signature, DER"
    );
    let p1363 = Signature::from_der(&der).unwrap().to_bytes().to_vec();
    assert_eq!(p1363, hex(v["sigP1363Hex"].as_str().unwrap()));
    assert_eq!(env.payload, v["envelope"]["payload"].as_str().unwrap());
    // The spec's own envelope (P1363 signature) verifies over the PAE.
    let spec_sig = base64::engine::general_purpose::STANDARD
        .decode(v["envelope"]["signatures"][0]["sig"].as_str().unwrap())
        .unwrap();
    let key = hex(v["publicKeyUncompressedHex"].as_str().unwrap());
    assert!(
        ecdsa_p256_verify(
            &key,
            &audit::pae(ty, body),
            &spec_sig,
            SignatureFormat::P1363
        )
        .unwrap()
    );
}

#[test]
fn signed_bundle_verifies_offline_with_every_check() {
    let b = bundle();
    let canonical = b.canonical_bytes().unwrap();
    assert!(
        canonical.len() > 8_000,
        "a realistic bundle: {} bytes",
        canonical.len()
    );
    let s = signer("kms-key-1", 1);
    let env = sign_bundle(&b, &[&s]).unwrap();
    let r = verify_envelope(
        &env,
        &[trusted(&signer("other", 2)), trusted(&s)],
        Some(&b.id().unwrap()),
    );
    assert!(r.verified, "{:?}", r.checks);
    assert_eq!(r.key_id.as_deref(), Some("kms-key-1"));
    assert_eq!(r.bundle_id, Some(b.id().unwrap()));
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "envelope",
            "payloadType",
            "signature",
            "canonicalForm",
            "bundle",
            "bundleId",
            "contractHash",
            "auditTrail"
        ]
    );
    // Deterministic: the same bundle signs to the same bytes.
    assert_eq!(env, sign_bundle(&b, &[&s]).unwrap());
    // The retention expiry follows the contract (365 days).
    assert_eq!(b.retention_expires_at, "2026-09-01T12:00:00Z");
    // An untrusted key: the signature check fails and nothing else runs.
    let r = verify_envelope(&env, &[trusted(&signer("kms-key-1", 3))], None);
    assert!(!r.verified);
    assert_eq!(r.checks.last().unwrap().name, "signature");
    assert!(r.bundle_id.is_none());
    // A wrong expected id.
    let r = verify_envelope(&env, &[trusted(&s)], Some("sha256:00"));
    assert!(!r.verified && !r.checks.iter().find(|c| c.name == "bundleId").unwrap().ok);
}

#[test]
fn content_checks_catch_what_a_valid_signature_does_not() {
    let s = signer("k", 1);
    let t = [trusted(&s)];
    // A snapshot whose content no longer matches its hash, signed anyway.
    let mut b = bundle();
    b.contract.content["budget"]["hardCap"] = json!(1);
    let r = verify_envelope(&sign_bundle(&b, &[&s]).unwrap(), &t, None);
    assert!(!r.verified);
    assert!(
        !r.checks
            .iter()
            .find(|c| c.name == "contractHash")
            .unwrap()
            .ok
    );
    // A broken trail.
    let mut b = bundle();
    b.audit_trail[2].actor = "someone else".into();
    let r = verify_envelope(&sign_bundle(&b, &[&s]).unwrap(), &t, None);
    assert!(!r.checks.iter().find(|c| c.name == "auditTrail").unwrap().ok);
    // A payload that is not canonical.
    let pretty = serde_json::to_vec_pretty(&bundle()).unwrap();
    let env = audit::Envelope::sign(audit::BUNDLE_PAYLOAD_TYPE, &pretty, &[&s])
        .unwrap()
        .to_json();
    let r = verify_envelope(&env, &t, None);
    assert!(r.checks.iter().find(|c| c.name == "signature").unwrap().ok);
    assert!(
        !r.checks
            .iter()
            .find(|c| c.name == "canonicalForm")
            .unwrap()
            .ok
    );
    assert!(!r.verified);
}

#[test]
fn the_assembler_refuses_inconsistent_inputs() {
    let contract = Contract::from_json(V2).unwrap();
    let req = SimulationRequest::from_json(REQUEST).unwrap();
    let report = simulate(
        &req,
        &RunOptions {
            threads: Some(1),
            keep_samples: false,
        },
    )
    .unwrap();
    let (decision, card) = decided(&contract, &report);
    let base = || BundleInputs {
        contract: &contract,
        created_at: "2025-09-01T12:00:00Z",
        simulation: &report,
        policy_decision: decision.clone(),
        decision_card: card.clone(),
        agent_runs: vec![],
        audit_trail: trail("2025-09-01T12:00:00Z"),
        previous_bundle_ref: None,
    };
    // A decision of another policy bundle: the error names both checksums.
    let mut i = base();
    i.policy_decision.bundle_checksum = "ab".repeat(32);
    match assemble(i) {
        Err(e @ AuditError::Policy(_)) => {
            let msg = e.to_string();
            assert!(msg.contains(&"ab".repeat(32)), "{msg}");
            assert!(
                msg.contains(&contract.contract().policy_bundle_checksum),
                "{msg}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The card of another evaluation, or of another workspace.
    let mut i = base();
    i.decision_card.evaluation_id = format!("sha256:{}", "0".repeat(64));
    assert!(matches!(assemble(i), Err(AuditError::InvalidInput { .. })));
    let mut i = base();
    i.decision_card.workspace_id = "ws-other".into();
    assert!(matches!(assemble(i), Err(AuditError::InvalidInput { .. })));
    let mut i = base();
    i.audit_trail[1].details = json!({"iterations": 1});
    assert!(matches!(
        assemble(i),
        Err(AuditError::BrokenTrail { index: 1, .. })
    ));
    let mut i = base();
    i.audit_trail.remove(2);
    assert!(matches!(
        assemble(i),
        Err(AuditError::BrokenTrail { index: 2, .. })
    ));
    let mut i = base();
    i.audit_trail.clear();
    assert_eq!(assemble(i).unwrap_err().pointer(), Some("/auditTrail"));
    let mut i = base();
    i.created_at = "yesterday";
    assert_eq!(assemble(i).unwrap_err().pointer(), Some("/createdAt"));
    let mut i = base();
    i.previous_bundle_ref = Some("bundle-123".into());
    assert_eq!(
        assemble(i).unwrap_err().pointer(),
        Some("/previousBundleRef")
    );
    let mut other = report.clone();
    other.workspace_id = Some("ws-other".into());
    let mut i = base();
    i.simulation = &other;
    assert_eq!(assemble(i).unwrap_err().pointer(), Some("/simulation"));
    let mut i = base();
    let mut r = runs();
    r[3].model_usage[0].total_tokens = 1;
    i.agent_runs = r;
    assert_eq!(
        assemble(i).unwrap_err().pointer(),
        Some("/agentRuns/3/modelUsage/0")
    );
}

#[test]
fn external_signers_are_checked_and_normalized() {
    let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
    let public = *key.verifying_key();
    let pem = smm_core::audit::public_key_pem(&public);
    let digest = audit::pae_digest("t", b"x");
    // A well-behaved KMS answering high-S P1363: accepted, returned as low-S DER.
    let k = key.clone();
    let kms = ExternalSigner::new(
        "arn:aws:kms:eu-west-1:1:key/abc",
        pem.as_bytes(),
        Box::new(move |d: &[u8; 32]| {
            let s: Signature = k.sign_prehash(d).map_err(|e| e.to_string())?;
            let (r, s) = s.split_scalars();
            let high = Signature::from_scalars(r, -*s).unwrap();
            Ok(high.to_bytes().to_vec())
        }),
    )
    .unwrap();
    let der = audit::sign_checked(&kms, &digest).unwrap();
    let sig = Signature::from_der(&der).unwrap();
    assert_eq!(sig.normalize_s(), sig, "low S");
    assert!(audit::verify_digest(
        &public,
        &digest,
        &der,
        SignatureFormat::Der
    ));
    // Garbage, another key's signature, and a failing callback: errors naming the key.
    let garbage = ExternalSigner::new(
        "key-garbage",
        pem.as_bytes(),
        Box::new(|_| Ok(vec![1, 2, 3])),
    )
    .unwrap();
    let e = audit::sign_checked(&garbage, &digest).unwrap_err();
    assert!(
        matches!(&e, AuditError::BadSignerAnswer { key_id, .. } if key_id == "key-garbage"),
        "{e}"
    );
    let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
    let liar = ExternalSigner::new(
        "key-liar",
        pem.as_bytes(),
        Box::new(move |d: &[u8; 32]| {
            let s: Signature = other.sign_prehash(d).map_err(|e| e.to_string())?;
            Ok(s.to_der().as_bytes().to_vec())
        }),
    )
    .unwrap();
    assert!(
        audit::sign_checked(&liar, &digest)
            .unwrap_err()
            .to_string()
            .contains("key-liar")
    );
    let down = ExternalSigner::new(
        "key-down",
        pem.as_bytes(),
        Box::new(|_| Err("KMS throttled".into())),
    )
    .unwrap();
    let e = sign_bundle(&bundle(), &[&down]).unwrap_err();
    assert_eq!(e.to_string(), "signer key-down failed: KMS throttled");
    // Bundles signed through the external signer verify.
    let env = sign_bundle(&bundle(), &[&kms]).unwrap();
    let t = TrustedKey::new("arn:aws:kms:eu-west-1:1:key/abc", pem.as_bytes()).unwrap();
    assert!(verify_envelope(&env, &[t], None).verified);
}

#[test]
fn private_keys_never_leak_into_debug_errors_or_bundles() {
    let s = signer("k", 5);
    let pem = s.to_pkcs8_pem().unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let debug = format!("{s:?}");
    assert!(debug.contains("<redacted>") && !debug.contains(&body[..20]));
    let env = String::from_utf8(sign_bundle(&bundle(), &[&s]).unwrap()).unwrap();
    assert!(!env.contains(&body[..20]));
    let e = LocalSigner::from_pkcs8_pem("k", &pem.replace('A', "B")).unwrap_err();
    assert!(!e.to_string().contains(&body[..20]));
    // PEM round trip keeps the key (deterministic signatures agree).
    let back = LocalSigner::from_pkcs8_pem("k", &pem).unwrap();
    assert_eq!(
        sign_bundle(&bundle(), &[&back]).unwrap(),
        sign_bundle(&bundle(), &[&s]).unwrap()
    );
}

#[test]
fn flipping_any_byte_of_a_signed_bundle_never_verifies() {
    let s = signer("kms", 1);
    let env = sign_bundle(&bundle(), &[&s]).unwrap();
    let t = [trusted(&s)];
    assert!(verify_envelope(&env, &t, None).verified);
    let mut tampered = env.clone();
    for i in 0..env.len() {
        for flip in [0x01u8, 0x80] {
            tampered[i] ^= flip;
            let r = verify_envelope(&tampered, &t, None);
            assert!(
                !r.verified,
                "flipping byte {i} with {flip:#x} still verifies"
            );
            tampered[i] ^= flip;
        }
    }
    assert!(
        env.len() > 10_000,
        "every one of {} positions was flipped",
        env.len()
    );
}

#[test]
fn batch_verification_matches_single_verification() {
    let s = signer("kms", 1);
    let t = [trusted(&s)];
    let good = sign_bundle(&bundle(), &[&s]).unwrap();
    let mut bad = good.clone();
    bad[100] ^= 1;
    let batch = vec![
        good.clone(),
        bad.clone(),
        good.clone(),
        b"not json".to_vec(),
    ];
    let got = audit::verify_envelopes(&batch, &t, Some(2));
    let want: Vec<_> = batch.iter().map(|e| verify_envelope(e, &t, None)).collect();
    assert_eq!(got, want);
    assert_eq!(
        got.iter().map(|r| r.verified).collect::<Vec<_>>(),
        [true, false, true, false]
    );
}

#[test]
fn bundle_chains() {
    let a = bundle_at("2025-09-01T12:00:00Z", None);
    let b = bundle_at("2025-09-02T12:00:00Z", Some(a.id().unwrap()));
    let c = bundle_at("2025-09-03T12:00:00Z", Some(b.id().unwrap()));
    let kinds = |bs: &[&AuditBundle]| {
        let v: Vec<AuditBundle> = bs.iter().map(|b| (*b).clone()).collect();
        audit::verify_bundle_chain(&v)
            .unwrap()
            .issues
            .into_iter()
            .map(|i| i.kind)
            .collect::<Vec<_>>()
    };
    let ok = audit::verify_bundle_chain(&[c.clone(), a.clone(), b.clone()]).unwrap();
    assert!(ok.valid, "{:?}", ok.issues);
    assert_eq!(
        ok.order,
        [a.id().unwrap(), b.id().unwrap(), c.id().unwrap()]
    );
    assert_eq!(kinds(&[&a, &c]), [BundleChainIssueKind::Missing]);
    assert_eq!(kinds(&[&a, &b, &b, &c]), [BundleChainIssueKind::Duplicated]);
    let fork = bundle_at("2025-09-03T13:00:00Z", Some(b.id().unwrap()));
    assert_eq!(kinds(&[&a, &b, &c, &fork]), [BundleChainIssueKind::Forked]);
    let early = bundle_at("2025-08-30T12:00:00Z", Some(b.id().unwrap()));
    assert_eq!(kinds(&[&a, &b, &early]), [BundleChainIssueKind::Reordered]);
}

fn stores_behave(store: &dyn BundleStore) {
    let s = signer("kms", 1);
    let a = bundle_at("2025-09-01T12:00:00Z", None);
    let b = bundle_at("2025-09-02T12:00:00Z", Some(a.id().unwrap()));
    let ea = StoredBundle::from_envelope(&sign_bundle(&a, &[&s]).unwrap()).unwrap();
    let eb = StoredBundle::from_envelope(&sign_bundle(&b, &[&s]).unwrap()).unwrap();
    assert_eq!(ea.bundle_id, a.id().unwrap());
    assert_eq!(store.put(&ea).unwrap(), PutOutcome::Stored);
    assert_eq!(store.put(&ea).unwrap(), PutOutcome::AlreadyPresent);
    assert_eq!(store.put(&eb).unwrap(), PutOutcome::Stored);
    // Same bundle id, other bytes (another signer): refused.
    let other =
        StoredBundle::from_envelope(&sign_bundle(&a, &[&signer("kms2", 2)]).unwrap()).unwrap();
    assert_eq!(other.bundle_id, ea.bundle_id);
    assert!(matches!(
        store.put(&other),
        Err(AuditError::Conflict { .. })
    ));
    assert_eq!(store.get(&ea.bundle_id).unwrap().unwrap(), ea);
    assert!(
        store
            .get("sha256:0000000000000000000000000000000000000000000000000000000000000000")
            .unwrap()
            .is_none()
    );
    let all = store.list("ws-icblabs-0001", None, None).unwrap();
    assert_eq!(
        all.iter().map(|x| x.bundle_id.clone()).collect::<Vec<_>>(),
        [ea.bundle_id.clone(), eb.bundle_id.clone()]
    );
    let day2 = store
        .list(
            "ws-icblabs-0001",
            Some("2025-09-02T00:00:00Z"),
            Some("2025-09-03T00:00:00Z"),
        )
        .unwrap();
    assert_eq!(day2, std::slice::from_ref(&eb));
    assert!(store.list("ws-other", None, None).unwrap().is_empty());
    assert!(store.list("ws-icblabs-0001", Some("soon"), None).is_err());
    // A put whose id does not match its content is refused.
    let mut lie = eb.clone();
    lie.bundle_id = ea.bundle_id.clone();
    assert!(matches!(store.put(&lie), Err(AuditError::Corrupt { .. })));
}

#[test]
fn memory_store() {
    stores_behave(&MemoryBundleStore::new());
}

#[test]
fn file_store_layout_and_behaviour() {
    let dir = tempdir("layout");
    let store = FileBundleStore::open(&dir).unwrap();
    stores_behave(&store);
    let a = bundle_at("2025-09-01T12:00:00Z", None);
    let id = a.id().unwrap();
    let short = &id["sha256:".len().."sha256:".len() + 16];
    let path = dir.join(format!(
        "audit-bundles/2025-09-01/bundle-ws-icblabs-0001-20250901T120000Z-{short}.json.gz"
    ));
    assert!(path.exists(), "{}", path.display());
    let snap = store.get_snapshot(&id).unwrap().unwrap();
    let snap: Value = serde_json::from_slice(&snap).unwrap();
    assert_eq!(
        snap["contractHash"],
        json!(Contract::from_json(V2).unwrap().terms_hash())
    );
    // A file edited on disk is caught on read.
    let s = signer("kms", 1);
    let b = bundle_at("2025-09-02T12:00:00Z", Some(id.clone()));
    let other_env = sign_bundle(&b, &[&s]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &other_env).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    assert!(matches!(store.get(&id), Err(AuditError::Corrupt { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_write_leaves_nothing_readable() {
    let dir = tempdir("crash");
    let store = FileBundleStore::open(&dir).unwrap();
    let s = signer("kms", 1);
    let sb = StoredBundle::from_envelope(&sign_bundle(&bundle(), &[&s]).unwrap()).unwrap();
    for limit in [0usize, 1, 100, 1000] {
        store.inject_write_failure_after(limit);
        assert!(
            matches!(store.put(&sb), Err(AuditError::Storage { .. })),
            "limit {limit}"
        );
        assert!(store.get(&sb.bundle_id).unwrap().is_none());
        assert!(
            store
                .list("ws-icblabs-0001", None, None)
                .unwrap()
                .is_empty()
        );
    }
    // A crash that left a temporary file behind: ignored by reads.
    let day = dir.join("audit-bundles/2025-09-01");
    std::fs::create_dir_all(&day).unwrap();
    std::fs::write(
        day.join(".tmp-1-0-bundle-ws-icblabs-0001-x.json.gz"),
        b"partial",
    )
    .unwrap();
    assert!(
        store
            .list("ws-icblabs-0001", None, None)
            .unwrap()
            .is_empty()
    );
    let leftovers: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".tmp-1-0-"))
        .filter(|p| p.is_file())
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|p| !p.file_name().unwrap().to_string_lossy().starts_with(".tmp")),
        "{leftovers:?}"
    );
    // Once writes work again, the bundle is stored whole.
    store.inject_write_failure_after(usize::MAX);
    assert_eq!(store.put(&sb).unwrap(), PutOutcome::Stored);
    assert_eq!(store.get(&sb.bundle_id).unwrap().unwrap(), sb);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("smm-core-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn walk(d: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn signers_are_shareable_trait_objects() {
    let s: Arc<dyn Signer> = Arc::new(signer("k", 1));
    let env = sign_bundle(&bundle(), &[s.as_ref()]).unwrap();
    assert!(
        verify_envelope(
            &env,
            &[TrustedKey::new("k", &s.public_key().to_sec1_bytes()).unwrap()],
            None
        )
        .verified
    );
}
