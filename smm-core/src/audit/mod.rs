//! Signed audit bundles: assembly, DSSE signing through pluggable KMS
//! adapters, offline verification, chains of bundles, storage.
//!
//! ```
//! use smm_core::audit::{self, LocalSigner, TrustedKey};
//! let signer = LocalSigner::from_secret_bytes("key-1", &[7u8; 32])?;
//! let payload = br#"{"hello":"world"}"#;
//! let env = audit::Envelope::sign("application/example", payload, &[&signer])?;
//! assert_eq!(env.payload_bytes()?, payload);
//! # Ok::<(), smm_core::audit::AuditError>(())
//! ```

mod bundle;
mod crypto;
mod dsse;
mod ecdsa_sign;
mod ecdsa_verify;
mod signer;
pub mod store;
mod verify;

use thiserror::Error;

pub use bundle::{
    AgentRun, AuditBundle, AuditEvent, AuditTrail, BUNDLE_VERSION, BundleInputs, BundleRequest,
    DEFAULT_RETENTION_DAYS, EventInput, ModelUsage, SimulationSummary, assemble, assemble_request,
    verify_trail,
};
pub use crypto::{
    NonCanonical, SignatureFormat, canonical_der, check_canonical_signature, ecdsa_p256_verify,
    parse_public_key, verify_digest, verify_message_der_fast,
};
pub use dsse::{BUNDLE_PAYLOAD_TYPE, Envelope, EnvelopeSignature, pae, pae_digest};
pub use p256::ecdsa::VerifyingKey;
pub use signer::{
    ExternalSigner, LocalSigner, SignCallback, Signer, key_fingerprint_id, public_key_pem,
    sign_checked,
};
#[cfg(feature = "fs")]
pub(crate) use verify::reads_agree;
pub use verify::{
    BundleChainIssue, BundleChainIssueKind, BundleChainReport, Check, TrustedKey,
    VerificationResult, verify_bundle_chain, verify_envelope, verify_envelopes,
};

use crate::jcs::CanonicalError;

/// Errors about audit bundles, keys and signatures. Messages never contain
/// private key material.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An input to the assembler is inconsistent or malformed.
    #[error("invalid bundle input at {pointer}: {message}")]
    InvalidInput {
        /// Where.
        pointer: String,
        /// What.
        message: String,
    },
    /// The audit trail does not chain.
    #[error("audit trail broken at event {index}: {message}")]
    BrokenTrail {
        /// Index of the first bad event.
        index: usize,
        /// What.
        message: String,
    },
    /// A key could not be read.
    #[error("invalid key: {message}")]
    InvalidKey {
        /// What.
        message: String,
    },
    /// A signer returned an error.
    #[error("signer {key_id} failed: {message}")]
    SignerFailed {
        /// The key.
        key_id: String,
        /// Its message.
        message: String,
        /// The signer's own error (a KMS client's), when it gave one.
        #[source]
        source: Option<crate::kind::Cause>,
    },
    /// A signer's answer is not a valid signature by its key.
    #[error("signer {key_id} gave a wrong answer: {message}")]
    BadSignerAnswer {
        /// The key.
        key_id: String,
        /// What is wrong.
        message: String,
    },
    /// An envelope could not be read.
    #[error("invalid envelope: {message}")]
    InvalidEnvelope {
        /// What.
        message: String,
    },
    /// Canonical JSON failed.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// The policy decision does not belong to the contract.
    #[error(transparent)]
    Policy(#[from] crate::policy::PolicyError),
    /// A failure inside the library (a bug: please report it).
    #[error("internal audit error: {message}")]
    Internal {
        /// What.
        message: String,
    },
    /// A storage operation failed.
    #[error("bundle store: {message}")]
    Storage {
        /// What.
        message: String,
        /// The underlying error (I/O, database), when there is one.
        #[source]
        source: Option<crate::kind::Cause>,
    },
    /// The store already holds different bytes under this id.
    #[error("bundle {bundle_id} is already stored with different content")]
    Conflict {
        /// The id.
        bundle_id: String,
    },
    /// A bundle offered as the next link of its workspace's chain names
    /// a previous bundle that is no longer the chain's head (another run
    /// published first): chain it to the new head and try again.
    #[error(
        "the chain of workspace {workspace_id} moved: the bundle chains to {}, but the head is {}",
        .expected.as_deref().unwrap_or("nothing (a first bundle)"),
        .head.as_deref().unwrap_or("nothing (the chain is empty)")
    )]
    ChainMoved {
        /// The workspace.
        workspace_id: String,
        /// The bundle's `previousBundleRef`.
        expected: Option<String>,
        /// The chain's head now.
        head: Option<String>,
    },
    /// An envelope a store was asked to publish has a signature that does
    /// not verify under the store's trusted keys (or none that does).
    #[error("bundle {bundle_id} is not signed by the store's trusted keys: {message}")]
    Untrusted {
        /// The id.
        bundle_id: String,
        /// Why.
        message: String,
    },
    /// Stored bytes do not match their id.
    #[error("stored bundle {bundle_id} is corrupt: {message}")]
    Corrupt {
        /// The id.
        bundle_id: String,
        /// What.
        message: String,
    },
}

impl AuditError {
    pub(crate) fn internal(msg: &str) -> Self {
        AuditError::Internal {
            message: msg.to_string(),
        }
    }

    /// The kind of this error (its stable code and category).
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            AuditError::InvalidInput { .. }
            | AuditError::BrokenTrail { .. }
            | AuditError::InvalidKey { .. }
            | AuditError::InvalidEnvelope { .. }
            | AuditError::Canonical(_) => K::InvalidInput,
            AuditError::SignerFailed { .. } | AuditError::BadSignerAnswer { .. } => K::SignerFailed,
            AuditError::Storage { .. } => K::Storage,
            AuditError::Conflict { .. } | AuditError::ChainMoved { .. } => K::Conflict,
            AuditError::Corrupt { .. } => K::CorruptBundle,
            AuditError::Untrusted { .. } => K::Untrusted,
            AuditError::Policy(e) => e.kind(),
            AuditError::Internal { .. } => K::Internal,
        }
    }

    /// The JSON pointer of the offending input, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            AuditError::InvalidInput { pointer, .. } => Some(pointer),
            AuditError::Canonical(e) => e.pointer(),
            AuditError::Policy(e) => e.pointer(),
            _ => None,
        }
    }
}

/// Sign a bundle: a DSSE envelope (payload type [`BUNDLE_PAYLOAD_TYPE`])
/// over its canonical bytes, as compact JSON.
pub fn sign_bundle(bundle: &AuditBundle, signers: &[&dyn Signer]) -> Result<Vec<u8>, AuditError> {
    dsse::sign_to_json(BUNDLE_PAYLOAD_TYPE, &bundle.canonical_bytes()?, signers)
}

impl From<crate::time::NotRfc3339> for AuditError {
    fn from(e: crate::time::NotRfc3339) -> Self {
        AuditError::InvalidInput {
            pointer: "/createdAt".into(),
            message: e.to_string(),
        }
    }
}
