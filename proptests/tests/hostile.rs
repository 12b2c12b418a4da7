//! Valid documents damaged at random (a value replaced by a hostile one,
//! bits flipped, cuts, insertions): every entry point answers a typed error
//! or a correct result, never a panic or a non-finite number.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use proptest::prelude::*;
use smm_proptests::{mutate, mutation};

fn seed(target: &str, name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../fuzz/seeds/{target}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_partial_results(m in mutation(), exact in any::<bool>()) {
        let text = seed("partial", if exact { "exact.json" } else { "bounded.json" });
        smm_core::fuzzing::partial(&mutate(&text, &m));
    }

    #[test]
    fn mutated_envelopes(m in mutation()) {
        let text = seed("envelope", "signed.json");
        let bad = mutate(&text, &m);
        smm_core::fuzzing::envelope(&bad);
        // A changed envelope verifies only if its signature and payload
        // are untouched (a mutation of the key id or of a hostile value
        // that rewrote the same bytes).
        let trusted = smm_core::audit::TrustedKey::new(
            "fuzz-key",
            smm_core::audit::LocalSigner::from_secret_bytes("fuzz-key", &[7u8; 32]).unwrap().public_key_pem().as_bytes(),
        ).unwrap();
        let r = smm_core::audit::verify_envelope(&bad, &[trusted], None);
        if r.verified {
            let a: serde_json::Value = serde_json::from_slice(&bad).unwrap();
            let b: serde_json::Value = serde_json::from_str(&text).unwrap();
            prop_assert_eq!(&a["payload"], &b["payload"]);
            prop_assert_eq!(&a["signatures"][0]["sig"], &b["signatures"][0]["sig"]);
        }
    }

    #[test]
    fn mutated_requests(m in mutation()) {
        let text = seed("request", "icblabs-seed42.json");
        smm_core::fuzzing::request(&mutate(&text, &m));
    }

    #[test]
    fn mutated_policy_inputs(m in mutation()) {
        let text = seed("policy_input", "icblabs.json");
        smm_core::fuzzing::policy_input(&mutate(&text, &m));
    }

    #[test]
    fn mutated_contracts(m in mutation()) {
        let text = seed("contract", "workspace.icblabs.v2.json");
        smm_core::fuzzing::contract(&mutate(&text, &m));
    }
}
