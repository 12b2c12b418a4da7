//! The local signer against p256's own RFC 6979 signing: for any valid key
//! and any digest, the same signature (low S, strict DER), and it verifies.
//! The signer computes `k·G` from its own fixed-base comb
//! (`smm-core/src/audit/ecdsa_sign.rs`), so this is the property that keeps
//! the comb honest on inputs nobody chose.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use p256::ecdsa::{Signature, SigningKey, signature::hazmat::PrehashSigner};
use proptest::prelude::*;
use smm_core::audit::{LocalSigner, SignatureFormat, Signer, verify_digest};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn local_signatures_are_p256_s_rfc6979_signatures(
        secret in any::<[u8; 32]>(),
        digest in any::<[u8; 32]>(),
    ) {
        // Keys at or past the group order (or zero) are refused by both.
        let Ok(local) = LocalSigner::from_secret_bytes("k", &secret) else {
            prop_assert!(SigningKey::from_slice(&secret).is_err());
            return Ok(());
        };
        let reference: Signature = SigningKey::from_slice(&secret)
            .unwrap()
            .sign_prehash(&digest)
            .unwrap();
        let expected = reference.normalize_s().to_der();
        let ours = local.sign_digest(&digest).unwrap();
        prop_assert_eq!(&ours, &expected.as_bytes().to_vec());
        prop_assert!(verify_digest(local.public_key(), &digest, &ours, SignatureFormat::Der));
    }
}
