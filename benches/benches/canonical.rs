//! Canonicalize + hash (parsing included): smm_core::jcs against serde_jcs,
//! measured in the same run, on a ~100 KB document and the example contract.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "bench code")]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use smm_benches::synthetic_document;

fn serde_jcs_hash(input: &[u8]) -> [u8; 32] {
    let v: serde_json::Value = serde_json::from_slice(input).unwrap();
    Sha256::digest(serde_jcs::to_vec(&v).unwrap()).into()
}

fn ours_hash(input: &[u8]) -> [u8; 32] {
    Sha256::digest(smm_core::jcs::canonicalize(input).unwrap()).into()
}

fn bench(c: &mut Criterion) {
    let doc = synthetic_document(100 * 1024);
    let contract = include_str!("../../examples/workspace.icblabs.v2.json").to_string();
    // Both give the same canonical bytes on these inputs.
    for input in [&doc, &contract] {
        let v: serde_json::Value = serde_json::from_str(input).unwrap();
        assert_eq!(
            serde_jcs::to_vec(&v).unwrap(),
            smm_core::jcs::canonicalize(input.as_bytes()).unwrap()
        );
    }
    for (name, input) in [("100KB", &doc), ("contract", &contract)] {
        let mut g = c.benchmark_group(format!("canonicalize+sha256/{name}"));
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("smm_core::jcs", |b| b.iter(|| ours_hash(input.as_bytes())));
        g.bench_function("serde_jcs", |b| b.iter(|| serde_jcs_hash(input.as_bytes())));
        g.finish();
    }
    let contract_doc = contract.clone();
    c.bench_function(
        "contract/Contract::from_json (validate schema + terms hash)",
        |b| b.iter(|| smm_core::contract::Contract::from_json(&contract_doc).unwrap()),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
