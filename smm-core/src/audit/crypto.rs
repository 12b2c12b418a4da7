//! ECDSA P-256 / SHA-256: key and signature parsing, verification, and the
//! strict-DER low-S form every signature leaving the library takes.

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{DerSignature, Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};

use super::AuditError;

/// How a signature is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFormat {
    /// ASN.1 DER `SEQUENCE { r INTEGER, s INTEGER }` (strict DER).
    Der,
    /// IEEE P1363: `r || s`, 32 bytes each.
    P1363,
}

impl SignatureFormat {
    /// Parse "der" or "p1363".
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "der" => Some(SignatureFormat::Der),
            "p1363" | "raw" => Some(SignatureFormat::P1363),
            _ => None,
        }
    }
}

/// Parse a P-256 public key given as PEM (`BEGIN PUBLIC KEY`), SPKI DER, or
/// a SEC1 point (65 bytes uncompressed or 33 compressed).
pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, AuditError> {
    let bad = |what: &str| AuditError::InvalidKey {
        message: what.to_string(),
    };
    if bytes.starts_with(b"-----BEGIN") {
        let pem = std::str::from_utf8(bytes).map_err(|_| bad("PEM is not UTF-8"))?;
        return VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|e| bad(&format!("not a P-256 public key PEM: {e}")));
    }
    match bytes.first() {
        Some(0x30) => VerifyingKey::from_public_key_der(bytes)
            .map_err(|e| bad(&format!("not a P-256 SubjectPublicKeyInfo: {e}"))),
        Some(0x02..=0x04) => {
            VerifyingKey::from_sec1_bytes(bytes).map_err(|_| bad("not a valid SEC1 P-256 point"))
        }
        _ => Err(bad("expected PEM, SPKI DER or a SEC1 point")),
    }
}

/// Parse a signature in the named format.
pub fn parse_signature(sig: &[u8], format: SignatureFormat) -> Option<Signature> {
    match format {
        SignatureFormat::Der => Signature::from_der(sig).ok(),
        SignatureFormat::P1363 => {
            if sig.len() != 64 {
                return None;
            }
            Signature::from_slice(sig).ok()
        }
    }
}

/// Verify an ECDSA P-256 signature over SHA-256(`message`). A signature
/// that does not parse in the named format is simply not valid (`false`);
/// only a bad public key is an error.
pub fn ecdsa_p256_verify(
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
    format: SignatureFormat,
) -> Result<bool, AuditError> {
    let key = parse_public_key(public_key)?;
    Ok(verify_digest(
        &key,
        &Sha256::digest(message).into(),
        signature,
        format,
    ))
}

/// Verify a signature over a SHA-256 digest.
pub fn verify_digest(
    key: &VerifyingKey,
    digest: &[u8; 32],
    signature: &[u8],
    format: SignatureFormat,
) -> bool {
    parse_signature(signature, format).is_some_and(|s| key.verify_prehash(digest, &s).is_ok())
}

/// Strict DER, low-S form of a signature.
pub fn canonical_der(sig: &Signature) -> DerSignature {
    sig.normalize_s().to_der()
}

/// Why a signature is not in the one form bundle signatures may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonCanonical {
    /// Not a DER `SEQUENCE { r INTEGER, s INTEGER }` of P-256 scalars.
    NotDer,
    /// DER that is not strict (extra leading zeros, long-form lengths,
    /// trailing bytes): another encoding of the same (r, s).
    NotStrictDer,
    /// s > n/2: the high-S twin of a valid signature, which anyone can
    /// derive from it; only the low-S form is accepted.
    HighS,
}

impl std::fmt::Display for NonCanonical {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NonCanonical::NotDer => "is not a DER ECDSA P-256 signature",
            NonCanonical::NotStrictDer => {
                "is not strict DER (another encoding of the same signature)"
            }
            NonCanonical::HighS => {
                "has a high S value (the high-S twin of a signature; only low S is accepted)"
            }
        })
    }
}

/// Check that `der` is a signature in the only form the library emits and
/// accepts in bundles: strict DER with s <= n/2. (The plain
/// [`ecdsa_p256_verify`] accepts any valid ECDSA signature, as the
/// Wycheproof suite expects.)
pub fn check_canonical_signature(der: &[u8]) -> Result<Signature, NonCanonical> {
    let sig = Signature::from_der(der).map_err(|_| NonCanonical::NotDer)?;
    if sig.to_der().as_bytes() != der {
        return Err(NonCanonical::NotStrictDer);
    }
    if sig.normalize_s() != sig {
        return Err(NonCanonical::HighS);
    }
    Ok(sig)
}

/// Verify a DER signature over `message` (hashed with SHA-256) with the
/// assembly-optimized P-256 of `ring`: the hot path of bundle
/// verification, about four times faster than the portable arithmetic.
/// It must agree with [`verify_digest`]; the Wycheproof suite runs through
/// both.
pub fn verify_message_der_fast(key: &VerifyingKey, message: &[u8], signature_der: &[u8]) -> bool {
    let point = key.to_sec1_bytes();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, &point[..])
        .verify(message, signature_der)
        .is_ok()
}
