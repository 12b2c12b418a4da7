//! Audit bundles: assemble + sign, verify, batch verify (both cores), for a
//! bundle of about 10 KB.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "bench code"
)]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use smm_benches::{baseline_request, decided};
use smm_core::audit::{
    self, AgentRun, AuditTrail, BundleInputs, LocalSigner, ModelUsage, TrustedKey, assemble,
    sign_bundle, verify_envelope, verify_envelopes,
};
use smm_core::contract::Contract;
use smm_core::sim::{PercentileMode, RunOptions, simulate};

fn bench(c: &mut Criterion) {
    let contract =
        Contract::from_json(include_str!("../../examples/workspace.icblabs.v2.json")).unwrap();
    let report = simulate(
        &baseline_request(1000, PercentileMode::Exact).unwrap(),
        &RunOptions {
            threads: Some(1),
            keep_samples: false,
            ..Default::default()
        },
    )
    .unwrap();
    let mut t = AuditTrail::new();
    for (i, e) in [
        "bundle_created",
        "simulation_executed",
        "policy_evaluated",
        "agent_executed",
        "bundle_sealed",
    ]
    .iter()
    .enumerate()
    {
        t.append(ts("2025-09-01T12:00:00Z"), e, "system", json!({"step": i}))
            .unwrap();
    }
    let runs: Vec<AgentRun> = (0..8)
        .map(|i| AgentRun {
            job_id: format!("job-research-{i}"),
            workspace_id: "ws-icblabs-0001".into(),
            agent_type: smm_core::usage::AgentType::Research,
            status: smm_core::usage::AgentRunStatus::Completed,
            input_hash: format!("sha256:{:064x}", i + 100),
            output_hash: Some(format!("sha256:{:064x}", i + 200)),
            started_at: "2025-09-01T10:00:00Z".into(),
            finished_at: Some("2025-09-01T10:01:00Z".into()),
            model_usage: vec![ModelUsage {
                model_id: "gpt-4".into(),
                provider: "openai".into(),
                prompt_hash: format!("sha256:{:064x}", i),
                input_tokens: 100,
                output_tokens: 200,
                total_tokens: 300,
                cost_usd: "0.009".parse().unwrap(),
                timestamp: "2025-09-01T10:00:30Z".into(),
            }],
        })
        .collect();
    let (decision, card) = decided(&contract, &report).unwrap();
    let inputs = || BundleInputs {
        contract: &contract,
        created_at: ts("2025-09-01T12:00:00Z"),
        simulation: &report,
        policy_decision: decision.clone(),
        decision_card: card.clone(),
        agent_runs: runs.clone(),
        audit_trail: t.events().to_vec(),
        previous_bundle_ref: None,
    };
    let signer = LocalSigner::from_secret_bytes("kms-key", &[3u8; 32]).unwrap();
    let trusted = [TrustedKey::new("kms-key", signer.public_key_pem().as_bytes()).unwrap()];
    let bundle = assemble(inputs()).unwrap();
    let size = bundle.canonical_bytes().unwrap().len();
    let env = sign_bundle(&bundle, &[&signer]).unwrap();
    assert!(verify_envelope(&env, &trusted, None).verified);
    eprintln!(
        "bundle: {size} canonical bytes, envelope {} bytes",
        env.len()
    );

    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Elements(1));
    g.bench_function("assemble+sign (1 thread)", |b| {
        b.iter_batched(
            inputs,
            |i| sign_bundle(&assemble(i).unwrap(), &[&signer]).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("raw ECDSA P-256 sign of a digest (RFC 6979)", |b| {
        use smm_core::audit::Signer;
        let d = [5u8; 32];
        b.iter(|| signer.sign_digest(&d).unwrap())
    });
    g.bench_function("assemble only", |b| {
        b.iter_batched(inputs, |i| assemble(i).unwrap(), BatchSize::SmallInput)
    });
    g.bench_function("canonical bytes of the bundle", |b| {
        b.iter(|| bundle.canonical_bytes().unwrap())
    });
    g.bench_function("verify (1 thread)", |b| {
        b.iter(|| verify_envelope(&env, &trusted, None))
    });
    g.bench_function("raw ECDSA P-256 verify of the PAE digest (p256)", |b| {
        let e = audit::Envelope::from_json(&env).unwrap();
        let payload = e.payload_bytes().unwrap();
        let digest = audit::pae_digest(&e.payload_type, &payload);
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(&e.signatures[0].sig)
            .unwrap();
        b.iter(|| audit::verify_digest(&trusted[0].key, &digest, &sig, audit::SignatureFormat::Der))
    });
    g.bench_function(
        "raw ECDSA P-256 verify of the PAE (ring, the bundle path)",
        |b| {
            let e = audit::Envelope::from_json(&env).unwrap();
            let payload = e.payload_bytes().unwrap();
            let pae = audit::pae(&e.payload_type, &payload);
            use base64::Engine;
            let sig = base64::engine::general_purpose::STANDARD
                .decode(&e.signatures[0].sig)
                .unwrap();
            b.iter(|| audit::verify_message_der_fast(&trusted[0].key, &pae, &sig))
        },
    );
    g.finish();

    let batch: Vec<Vec<u8>> = (0..512).map(|_| env.clone()).collect();
    let mut g = c.benchmark_group("audit-batch");
    g.throughput(Throughput::Elements(batch.len() as u64));
    g.sample_size(20);
    for threads in [1usize, 2] {
        g.bench_function(format!("verify_envelopes x512 ({threads} threads)"), |b| {
            b.iter(|| verify_envelopes(&batch, &trusted, Some(threads)).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

/// A time in a test, parsed (the library takes a parsed `Timestamp`).
#[allow(dead_code, reason = "not every test file uses it")]
fn ts(s: &str) -> smm_core::time::Timestamp {
    s.parse().unwrap()
}
