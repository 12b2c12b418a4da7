//! Signers: the KMS adapter trait, a local P-256 key, and an external signer
//! that wraps a host callback (AWS KMS `Sign` with `ECDSA_SHA_256` and
//! `MessageType=DIGEST`, GCP KMS `asymmetricSign` with a SHA-256 digest, an
//! HSM, ...).

use std::fmt;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};

use super::AuditError;
use super::crypto::{SignatureFormat, canonical_der, parse_signature};

/// A signing key behind any KMS: synchronous and object-safe.
///
/// `sign_digest` receives the SHA-256 digest of the message (the DSSE
/// pre-authentication encoding) and answers an ECDSA P-256 signature, DER
/// or P1363. Whatever it answers, the library ([`sign_checked`], which
/// every signing path goes through) verifies it against `public_key` and
/// turns it into strict DER with low S before using it: an implementation
/// cannot skip that.
pub trait Signer: Send + Sync {
    /// Key id written into signatures (`keyid`), e.g. a KMS key ARN.
    fn key_id(&self) -> &str;
    /// The public key.
    fn public_key(&self) -> &VerifyingKey;
    /// Sign a SHA-256 digest.
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, AuditError>;

    /// The [`LocalSigner`] behind this signer, when there is one: the
    /// library then computes the signature itself from that key (RFC 6979,
    /// low S), which needs no check, instead of calling `sign_digest`. A
    /// signer answering a local key whose public key is not
    /// [`Signer::public_key`] is refused.
    fn as_local(&self) -> Option<&LocalSigner> {
        None
    }
}

/// Sign a digest with any signer: the one signing path of the library.
/// A [`LocalSigner`] signs in process (RFC 6979, normalized to low S); any
/// other signer's answer must parse (DER, or 64-byte P1363) and verify
/// under the signer's public key. Returns strict DER with low S.
pub fn sign_checked(signer: &dyn Signer, digest: &[u8; 32]) -> Result<Vec<u8>, AuditError> {
    if let Some(local) = signer.as_local() {
        if local.public_key() != signer.public_key() {
            return Err(AuditError::BadSignerAnswer {
                key_id: signer.key_id().to_string(),
                message: "its local key is not the key of its public key".into(),
            });
        }
        return local.sign_low_s(digest);
    }
    check_answer(
        signer.key_id(),
        signer.public_key(),
        digest,
        &signer.sign_digest(digest)?,
    )
}

fn check_answer(
    key_id: &str,
    public: &VerifyingKey,
    digest: &[u8; 32],
    answer: &[u8],
) -> Result<Vec<u8>, AuditError> {
    let wrong = |why: &str| AuditError::BadSignerAnswer {
        key_id: key_id.to_string(),
        message: why.to_string(),
    };
    let sig = parse_signature(answer, SignatureFormat::Der)
        .or_else(|| parse_signature(answer, SignatureFormat::P1363))
        .ok_or_else(|| wrong("the answer is neither a DER nor a P1363 ECDSA P-256 signature"))?;
    let sig: Signature = sig.normalize_s();
    public
        .verify_prehash(digest, &sig)
        .map_err(|_| wrong("the signature does not verify under the key's public key"))?;
    Ok(canonical_der(&sig).as_bytes().to_vec())
}

/// PEM of a public key (SubjectPublicKeyInfo).
pub fn public_key_pem(key: &VerifyingKey) -> String {
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

/// A key id derived from a public key: `local-` and the first 16 hex
/// digits of the SHA-256 of its SubjectPublicKeyInfo DER. The same key
/// gets the same id in every front door, so their envelopes agree.
pub fn key_fingerprint_id(key: &VerifyingKey) -> String {
    use sha2::{Digest, Sha256};
    let der = key
        .to_public_key_der()
        .map(|d| d.as_bytes().to_vec())
        .unwrap_or_default();
    let hex = crate::jcs::hex(&Sha256::digest(&der));
    format!("local-{}", hex.get(..16).unwrap_or(&hex))
}

/// A P-256 private key held in process. Signatures are deterministic
/// (RFC 6979). The key never appears in `Debug` output or error messages.
pub struct LocalSigner {
    key_id: String,
    key: SigningKey,
    public: VerifyingKey,
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("key_id", &self.key_id)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl LocalSigner {
    /// From a PKCS#8 PEM (`BEGIN PRIVATE KEY`).
    pub fn from_pkcs8_pem(key_id: &str, pem: &str) -> Result<Self, AuditError> {
        // The parse error says nothing about the key material; keep it so.
        let key = SigningKey::from_pkcs8_pem(pem.trim()).map_err(|_| AuditError::InvalidKey {
            message: "not a PKCS#8 PEM P-256 private key".into(),
        })?;
        Ok(Self::from_key(key_id, key))
    }

    /// The same key under another id.
    pub fn with_key_id(self, key_id: &str) -> Self {
        LocalSigner {
            key_id: key_id.to_string(),
            ..self
        }
    }

    /// From the 32-byte private scalar (big-endian). Callers generate it
    /// from their own entropy source: the core reads no OS entropy.
    pub fn from_secret_bytes(key_id: &str, secret: &[u8; 32]) -> Result<Self, AuditError> {
        let key = SigningKey::from_slice(secret).map_err(|_| AuditError::InvalidKey {
            message: "the secret is not a valid P-256 scalar".into(),
        })?;
        Ok(Self::from_key(key_id, key))
    }

    fn from_key(key_id: &str, key: SigningKey) -> Self {
        let public = *key.verifying_key();
        LocalSigner {
            key_id: key_id.to_string(),
            key,
            public,
        }
    }

    /// The private key as PKCS#8 PEM. Handle with care.
    pub fn to_pkcs8_pem(&self) -> Result<String, AuditError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|z| z.as_str().to_string())
            .map_err(|_| AuditError::InvalidKey {
                message: "cannot encode the key".into(),
            })
    }

    /// The public key as SPKI PEM.
    pub fn public_key_pem(&self) -> String {
        public_key_pem(&self.public)
    }
}

impl LocalSigner {
    /// RFC 6979 signature of `digest`, normalized to low S, strict DER
    /// (`p256`'s signature byte for byte, with a faster `k·G`: see
    /// `ecdsa_sign`).
    /// Computed here from the key this signer holds, so it is not verified
    /// again (that would triple the cost of signing); the tests check that
    /// local signatures verify and reproduce the DSSE specification's
    /// vector.
    fn sign_low_s(&self, digest: &[u8; 32]) -> Result<Vec<u8>, AuditError> {
        let sig: Signature =
            super::ecdsa_sign::sign_prehash(&self.key, digest).ok_or_else(|| {
                AuditError::SignerFailed {
                    key_id: self.key_id.clone(),
                    message: "local signing failed".into(),
                    source: None,
                }
            })?;
        Ok(canonical_der(&sig).as_bytes().to_vec())
    }
}

impl Signer for LocalSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }
    fn public_key(&self) -> &VerifyingKey {
        &self.public
    }
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, AuditError> {
        self.sign_low_s(digest)
    }
    fn as_local(&self) -> Option<&LocalSigner> {
        Some(self)
    }
}

/// The host's signing callback: digest in, signature bytes (DER or P1363)
/// out, or the signer's own error (a KMS client's error kept with
/// `smm_core::error::Cause::new`, or a message: `Err("...".into())`),
/// which becomes the [`source`](std::error::Error::source) of the
/// [`AuditError::SignerFailed`] the caller sees.
pub type SignCallback = Box<dyn Fn(&[u8; 32]) -> Result<Vec<u8>, crate::kind::Cause> + Send + Sync>;

/// A signer whose key lives elsewhere (a cloud KMS, an HSM): the host
/// passes a callback. Its answers are verified before use.
pub struct ExternalSigner {
    key_id: String,
    public: VerifyingKey,
    callback: SignCallback,
}

impl fmt::Debug for ExternalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl ExternalSigner {
    /// A signer for `key_id` with its public key (PEM, SPKI DER or SEC1) and
    /// the host callback.
    pub fn new(
        key_id: &str,
        public_key: &[u8],
        callback: SignCallback,
    ) -> Result<Self, AuditError> {
        let public = super::crypto::parse_public_key(public_key)?;
        Ok(ExternalSigner {
            key_id: key_id.to_string(),
            public,
            callback,
        })
    }
}

impl Signer for ExternalSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }
    fn public_key(&self) -> &VerifyingKey {
        &self.public
    }
    fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, AuditError> {
        (self.callback)(digest).map_err(|cause| AuditError::SignerFailed {
            key_id: self.key_id.clone(),
            message: cause.to_string(),
            source: Some(cause),
        })
    }
}
