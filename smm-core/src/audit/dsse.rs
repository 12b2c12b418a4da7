//! DSSE envelopes (secure-systems-lab/dsse v1): the signature covers the
//! pre-authentication encoding PAE(payloadType, payload).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditError;
use super::signer::{Signer, sign_checked};

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
        Ok(Envelope {
            payload: STANDARD.encode(payload),
            payload_type: payload_type.to_string(),
            signatures,
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

    /// Compact JSON.
    ///
    /// Every field is a string, so the text is built from JSON values and
    /// cannot fail; the keys come in the order serde writes them
    /// (`payload`, `payloadType`, `signatures`; `keyid`, `sig`).
    pub fn to_json(&self) -> Vec<u8> {
        use serde_json::{Map, Value};
        let text = |s: &str| Value::String(s.to_string());
        let signatures = self
            .signatures
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("keyid".into(), text(&s.keyid));
                m.insert("sig".into(), text(&s.sig));
                Value::Object(m)
            })
            .collect();
        let mut m = Map::new();
        m.insert("payload".into(), text(&self.payload));
        m.insert("payloadType".into(), text(&self.payload_type));
        m.insert("signatures".into(), Value::Array(signatures));
        Value::Object(m).to_string().into_bytes()
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
