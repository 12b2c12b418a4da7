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
    let mut out = Vec::with_capacity(payload.len() + payload_type.len() + 48);
    pae_header(&mut out, payload_type, payload.len());
    out.extend_from_slice(payload);
    out
}

/// The PAE up to its body, for a body of `len` bytes.
fn pae_header(out: &mut Vec<u8>, payload_type: &str, len: usize) {
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(payload_type.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
}

/// SHA-256 of the PAE: what the signer signs (hashed incrementally, without
/// building the PAE).
pub fn pae_digest(payload_type: &str, payload: &[u8]) -> [u8; 32] {
    let mut header = Vec::with_capacity(payload_type.len() + 48);
    pae_header(&mut header, payload_type, payload.len());
    let mut h = Sha256::new();
    h.update(&header);
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

/// An envelope opened for verification: its payload type, its
/// signatures, and its payload decoded into place inside its PAE (what the
/// signatures cover), so that neither is copied again.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) payload_type: String,
    pub(crate) signatures: Vec<EnvelopeSignature>,
    pae: Vec<u8>,
    payload_at: usize,
}

/// The members of an envelope after its payload, as [`Opened::fast`]
/// reads them: exactly [`Envelope`]'s other fields.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AfterPayload {
    payload_type: String,
    signatures: Vec<EnvelopeSignature>,
}

impl Opened {
    /// An envelope read by [`Envelope::from_json`], with its payload
    /// decoded by [`Envelope::payload_bytes`].
    pub(crate) fn new(env: Envelope, payload: &[u8]) -> Opened {
        let pae = pae(&env.payload_type, payload);
        Opened {
            payload_at: pae.len().saturating_sub(payload.len()),
            pae,
            payload_type: env.payload_type,
            signatures: env.signatures,
        }
    }

    /// The envelope opened without [`Envelope`]'s copies, or `None` when
    /// this path does not apply; then [`Envelope::from_json`] and
    /// [`Envelope::payload_bytes`] give the answer (their error, or the
    /// same envelope). It applies to an envelope that begins as
    /// [`Envelope::to_json`] writes one (`{"payload":"`, then the payload's
    /// base64, then `",`), whose other members read as [`Envelope`]'s
    /// other fields (any order, nothing else, nothing twice), whose payload
    /// type is `payload_type` and whose payload decodes.
    ///
    /// Why it is the same answer: the payload's text is found by its
    /// closing quote (a search, not a scan of each byte through a JSON
    /// string reader), and strict base64 holds none of a JSON string's
    /// escapes or control characters, so a text that decodes is a JSON
    /// string whose value is that text. The whole envelope is then exactly
    /// an object [`Envelope::from_json`] reads, with the same fields.
    pub(crate) fn fast(envelope: &[u8], payload_type: &str) -> Option<Opened> {
        crate::limits::check_document_len(envelope.len()).ok()?;
        let rest = envelope.strip_prefix(b"{\"payload\":\"")?;
        let end = memchr::memchr(b'"', rest)?;
        let (text, after) = rest.split_at(end);
        let after = after.strip_prefix(b"\",")?;
        let mut members = Vec::with_capacity(after.len() + 1);
        members.push(b'{');
        members.extend_from_slice(after);
        let head: AfterPayload = serde_json::from_slice(&members).ok()?;
        if head.payload_type != payload_type || text.len() % 4 != 0 {
            return None;
        }
        // Padded base64 (the only form STANDARD accepts) says its length.
        let padding = text
            .iter()
            .rev()
            .take(2)
            .take_while(|b| **b == b'=')
            .count();
        let len = (text.len() / 4 * 3).checked_sub(padding)?;
        let mut pae = Vec::with_capacity(len + payload_type.len() + 48);
        pae_header(&mut pae, payload_type, len);
        let at = pae.len();
        pae.resize(at + base64::decoded_len_estimate(text.len()), 0);
        let written = STANDARD.decode_slice(text, pae.get_mut(at..)?).ok()?;
        if written != len {
            return None;
        }
        pae.truncate(at + len);
        Some(Opened {
            payload_type: head.payload_type,
            signatures: head.signatures,
            pae,
            payload_at: at,
        })
    }

    /// An envelope of payload type `payload_type`, opened by
    /// [`Opened::fast`] where it applies and else the general way
    /// ([`Envelope::from_json`], the type checked, then
    /// [`Envelope::payload_bytes`]); the error says which step refused it.
    /// A signature is only ever checked over the type a reader expects:
    /// a trusted key's signature over another type is not a bundle's.
    pub(crate) fn open(envelope: &[u8], payload_type: &str) -> Result<Opened, AuditError> {
        if let Some(o) = Opened::fast(envelope, payload_type) {
            return Ok(o);
        }
        let env = Envelope::from_json(envelope)?;
        if env.payload_type != payload_type {
            return Err(AuditError::InvalidEnvelope {
                message: format!(
                    "payload type {:?} is not {payload_type:?}",
                    env.payload_type
                ),
            });
        }
        let payload = env.payload_bytes()?;
        Ok(Opened::new(env, &payload))
    }

    /// The PAE of the payload: what the signatures cover.
    pub(crate) fn pae(&self) -> &[u8] {
        &self.pae
    }

    /// The decoded payload.
    pub(crate) fn payload(&self) -> &[u8] {
        self.pae.get(self.payload_at..).unwrap_or(&[])
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

    /// What the general path makes of `bytes`: the envelope's payload
    /// type, signatures and decoded payload, when it parses, has type
    /// `ty` and its payload decodes.
    type Parts = (String, Vec<EnvelopeSignature>, Vec<u8>, Vec<u8>);

    fn general(bytes: &[u8], ty: &str) -> Option<Parts> {
        let env = Envelope::from_json(bytes).ok()?;
        if env.payload_type != ty {
            return None;
        }
        let payload = env.payload_bytes().ok()?;
        let pae = pae(&env.payload_type, &payload);
        Some((env.payload_type, env.signatures, payload, pae))
    }

    fn fast(bytes: &[u8], ty: &str) -> Option<Parts> {
        Opened::fast(bytes, ty).map(|o| {
            let (payload, pae) = (o.payload().to_vec(), o.pae().to_vec());
            (o.payload_type, o.signatures, payload, pae)
        })
    }

    fn sample(payload: &[u8]) -> Vec<u8> {
        Envelope {
            payload: STANDARD.encode(payload),
            payload_type: "t/x".into(),
            signatures: vec![
                EnvelopeSignature {
                    keyid: "k1".into(),
                    sig: STANDARD.encode([7u8; 70]),
                },
                EnvelopeSignature {
                    keyid: "k2".into(),
                    sig: STANDARD.encode([9u8; 71]),
                },
            ],
        }
        .to_json()
    }

    #[test]
    fn the_fast_opening_is_the_general_one_where_it_applies() {
        for payload in [&b""[..], b"a", b"ab", b"abc", br#"{"n":1}"#, &[0xffu8; 40]] {
            let text = sample(payload);
            let f = fast(&text, "t/x");
            assert!(f.is_some(), "the writer's own form takes the fast path");
            assert_eq!(f, general(&text, "t/x"));
            assert_eq!(f.map(|p| p.2), Some(payload.to_vec()));
        }
        let text = String::from_utf8(sample(b"hello, world!")).unwrap();
        let b64 = STANDARD.encode(b"hello, world!");
        // Each of these is read the general way: answered or refused, the
        // answer is the general path's.
        let variants = [
            text.replacen("{\"payload\":", "{ \"payload\":", 1),
            text.replacen("{\"payload\":", "{\"payload\" :", 1),
            text.replacen(&format!("{b64}\","), &format!("{b64}\" ,"), 1),
            // An escape in the payload's string: valid JSON, the same text.
            text.replacen(
                &b64,
                &format!("\\u00{:x}{}", b64.as_bytes()[0], &b64[1..]),
                1,
            ),
            text.replacen(&b64, &format!("{}\\/", &b64[..b64.len() - 1]), 1),
            // The payload twice, an unknown member, a missing one.
            text.replacen(
                "\"payloadType\"",
                &format!("\"payload\":\"{b64}\",\"payloadType\""),
                1,
            ),
            text.replacen("\"payloadType\"", "\"extra\":1,\"payloadType\"", 1),
            text.replacen(",\"signatures\":[", ",\"nosignatures\":[", 1),
            format!("{text} \n"),
            format!("{text}x"),
            format!("{text}{{}}"),
            // Not base64, unpadded, non-zero trailing bits, a control byte.
            text.replacen(&b64, &format!("!{}", &b64[1..]), 1),
            text.replacen(&b64, b64.trim_end_matches('='), 1),
            text.replacen(&b64, "QR==", 1),
            text.replacen(&b64, &format!("{}\u{1}", &b64[..b64.len() - 1]), 1),
            text.replacen(&b64, "", 1),
            text.replacen("t/x", "t/y", 1),
        ];
        for v in &variants {
            let f = fast(v.as_bytes(), "t/x");
            if f.is_some() {
                assert_eq!(f, general(v.as_bytes(), "t/x"), "{v}");
            }
        }
        // The fast path takes only what it can vouch for: of these, the
        // empty payload (trailing whitespace leaves it too: serde_json
        // reads the members after the payload, whitespace and all).
        let taken: Vec<&String> = variants
            .iter()
            .filter(|v| fast(v.as_bytes(), "t/x").is_some())
            .collect();
        assert_eq!(taken.len(), 2, "{taken:?}");
        assert!(fast(text.as_bytes(), "t/y").is_none());
    }

    #[test]
    fn a_byte_changed_anywhere_never_makes_the_paths_disagree() {
        let text = sample(b"{\"a\":[1,2],\"b\":\"c\"}");
        let mut taken = 0;
        for i in 0..text.len() {
            for b in [
                b'"', b'\\', b' ', b'=', b'A', b'/', 1, b'}', b',', b'{', 0xc3,
            ] {
                let mut t = text.clone();
                if let Some(x) = t.get_mut(i) {
                    *x = b;
                }
                if let Some(f) = fast(&t, "t/x") {
                    taken += 1;
                    assert_eq!(Some(f), general(&t, "t/x"), "byte {i} -> {b}");
                }
            }
            let cut = text.get(..i).unwrap_or_default();
            if let Some(f) = fast(cut, "t/x") {
                assert_eq!(Some(f), general(cut, "t/x"), "cut at {i}");
            }
        }
        assert!(taken > 0);
    }
}
