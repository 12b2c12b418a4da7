//! DSSE envelopes (secure-systems-lab/dsse v1): the signature covers the
//! pre-authentication encoding PAE(payloadType, payload).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditError;
use super::signer::{Signer, sign_checked};
use crate::jcs::write_canonical_str;

/// Payload type of smm audit bundles.
pub const BUNDLE_PAYLOAD_TYPE: &str = "application/vnd.smm.audit-bundle.v1+json";

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// SHA-256 of the PAE: what the signer signs (hashed incrementally, without
/// building the PAE).
pub fn pae_digest(payload_type: &str, payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"DSSEv1 ");
    h.update(payload_type.len().to_string().as_bytes());
    h.update(b" ");
    h.update(payload_type.as_bytes());
    h.update(b" ");
    h.update(payload.len().to_string().as_bytes());
    h.update(b" ");
    h.update(payload);
    h.finalize().into()
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    /// Key id of the signer.
    #[serde(default)]
    pub keyid: String,
    /// Base64 of the ASN.1 DER signature.
    pub sig: String,
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Envelope {
    /// Base64 of the payload bytes.
    pub payload: String,
    /// Payload type.
    pub payload_type: String,
    /// Signatures.
    pub signatures: Vec<EnvelopeSignature>,
}

impl Envelope {
    /// Sign `payload` with every signer (at least one).
    pub fn sign(
        payload_type: &str,
        payload: &[u8],
        signers: &[&dyn Signer],
    ) -> Result<Self, AuditError> {
        Ok(Envelope {
            signatures: signatures(payload_type, payload, signers)?,
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
        })
    }

    /// Parse an envelope (strict: unknown fields are refused).
    pub fn from_json(bytes: &[u8]) -> Result<Self, AuditError> {
        crate::limits::check_document_len(bytes.len())
            .map_err(|message| AuditError::InvalidEnvelope { message })?;
        serde_json::from_slice(bytes).map_err(|e| AuditError::InvalidEnvelope {
            message: e.to_string(),
        })
    }

    /// Compact JSON, keys in sorted order (`payload`, `payloadType`,
    /// `signatures`; `keyid`, `sig`): the canonical form of the envelope.
    ///
    /// Every field is a string, so the text is written directly and cannot
    /// fail (strings with the mandatory escapes only, as serde_json and RFC
    /// 8785 write them).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + json_overhead(self));
        out.extend_from_slice(b"{\"payload\":");
        write_canonical_str(&mut out, &self.payload);
        write_rest(&mut out, &self.payload_type, &self.signatures);
        out
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, AuditError> {
        STANDARD
            .decode(&self.payload)
            .map_err(|e| AuditError::InvalidEnvelope {
                message: format!("payload is not base64: {e}"),
            })
    }
}

/// Decode a base64 signature.
pub(crate) fn decode_sig(s: &str) -> Option<Vec<u8>> {
    STANDARD.decode(s).ok()
}

/// The signatures of every signer (at least one) over the PAE of
/// `payload`, checked ([`sign_checked`]).
fn signatures(
    payload_type: &str,
    payload: &[u8],
    signers: &[&dyn Signer],
) -> Result<Vec<EnvelopeSignature>, AuditError> {
    if signers.is_empty() {
        return Err(AuditError::InvalidKey {
            message: "at least one signer is needed".into(),
        });
    }
    let digest = pae_digest(payload_type, payload);
    let mut signatures = Vec::with_capacity(signers.len());
    for s in signers {
        let der = sign_checked(*s, &digest)?;
        signatures.push(EnvelopeSignature {
            keyid: s.key_id().to_string(),
            sig: STANDARD.encode(der),
        });
    }
    Ok(signatures)
}

/// [`Envelope::sign`] then [`Envelope::to_json`] (the same bytes), with
/// the payload's base64 written straight into the JSON: no string of it
/// kept, copied and scanned for escapes (base64 has none).
pub(crate) fn sign_to_json(
    payload_type: &str,
    payload: &[u8],
    signers: &[&dyn Signer],
) -> Result<Vec<u8>, AuditError> {
    let signatures = signatures(payload_type, payload, signers)?;
    let encoded = base64::encoded_len(payload.len(), true)
        .ok_or_else(|| AuditError::internal("the payload is too long to encode"))?;
    let mut out =
        Vec::with_capacity(encoded + 64 + 2 * payload_type.len() + 128 * signatures.len());
    out.extend_from_slice(b"{\"payload\":\"");
    let at = out.len();
    out.resize(at + encoded, 0);
    let written = out
        .get_mut(at..)
        .map(|room| STANDARD.encode_slice(payload, room));
    if written != Some(Ok(encoded)) {
        return Err(AuditError::internal(
            "base64 encoding of the payload failed",
        ));
    }
    out.push(b'"');
    write_rest(&mut out, payload_type, &signatures);
    Ok(out)
}

/// Room for an envelope's JSON besides its payload.
fn json_overhead(e: &Envelope) -> usize {
    let sigs: usize = e
        .signatures
        .iter()
        .map(|s| s.keyid.len() + s.sig.len() + 24)
        .sum();
    e.payload_type.len() + sigs + 48
}

/// An envelope's JSON after its payload (`{"payload":"..."` is already
/// in `out`).
fn write_rest(out: &mut Vec<u8>, payload_type: &str, signatures: &[EnvelopeSignature]) {
    out.extend_from_slice(b",\"payloadType\":");
    write_canonical_str(out, payload_type);
    out.extend_from_slice(b",\"signatures\":[");
    for (i, s) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"keyid\":");
        write_canonical_str(out, &s.keyid);
        out.extend_from_slice(b",\"sig\":");
        write_canonical_str(out, &s.sig);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The envelope as serde_json writes it from a value (the writer before
    /// this one): a map's keys sorted, strings with serde_json's escapes.
    fn through_serde_json(e: &Envelope) -> Vec<u8> {
        let sigs: Vec<serde_json::Value> = e
            .signatures
            .iter()
            .map(|s| serde_json::json!({"keyid": s.keyid, "sig": s.sig}))
            .collect();
        serde_json::json!({"payload": e.payload, "payloadType": e.payload_type, "signatures": sigs})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn to_json_writes_what_serde_json_writes_and_reads_back() {
        let odd = [
            "",
            "kms-key",
            "quote\" back\\slash",
            "\u{0}\u{1f}\n\t\u{7f}",
            "é€😀\u{2028}",
        ];
        for (n, keyid) in odd.iter().enumerate() {
            let e = Envelope {
                payload: STANDARD.encode(format!("{{\"n\":{n}}}")),
                payload_type: (*keyid).to_string(),
                signatures: (0..n)
                    .map(|i| EnvelopeSignature {
                        keyid: format!("{keyid}{i}"),
                        sig: STANDARD.encode([i as u8; 70]),
                    })
                    .collect(),
            };
            let text = e.to_json();
            assert_eq!(
                String::from_utf8_lossy(&text),
                String::from_utf8_lossy(&through_serde_json(&e))
            );
            assert_eq!(crate::jcs::is_canonical(&text), Ok(true));
            assert_eq!(Envelope::from_json(&text).ok().as_ref(), Some(&e));
        }
    }

    #[test]
    fn signing_straight_to_json_writes_what_to_json_writes() {
        let a = super::super::LocalSigner::from_secret_bytes("k\"1", &[3; 32]).unwrap();
        let b = super::super::LocalSigner::from_secret_bytes("k2", &[4; 32]).unwrap();
        for payload in [&b""[..], b"x", b"xy", b"xyz", &[0xff; 1000]] {
            for ty in ["application/vnd.smm+json", "odd \" \n type"] {
                let want = Envelope::sign(ty, payload, &[&a, &b]).unwrap().to_json();
                assert_eq!(sign_to_json(ty, payload, &[&a, &b]).unwrap(), want);
            }
        }
        assert!(sign_to_json("t", b"x", &[]).is_err());
    }
}
