//! Offline verification of signed bundles, one at a time or in batches, and
//! of a workspace's chain of bundles.

use std::collections::{BTreeMap, BTreeSet};

use p256::ecdsa::VerifyingKey;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuditError;
use super::bundle::{AuditBundle, verify_trail};
use super::crypto::{parse_public_key, verify_message_der_fast};
use super::dsse::{BUNDLE_PAYLOAD_TYPE, Envelope, decode_sig, pae};
use crate::contract::terms_hash_of;
use crate::jcs;

/// A public key trusted to sign bundles, with its key id.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    /// Key id as written in envelopes.
    pub key_id: String,
    /// The key.
    pub key: VerifyingKey,
}

impl TrustedKey {
    /// From a key id and a public key (PEM, SPKI DER or SEC1).
    pub fn new(key_id: &str, public_key: &[u8]) -> Result<Self, AuditError> {
        Ok(TrustedKey {
            key_id: key_id.to_string(),
            key: parse_public_key(public_key)?,
        })
    }
}

/// One check of a verification and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// envelope, payloadType, signature, canonicalForm, bundle, bundleId,
    /// contractHash, auditTrail.
    pub name: String,
    /// Passed?
    pub ok: bool,
    /// Details.
    pub detail: String,
}

/// The answer to "is this bundle authentic and intact?" (the design
/// document's `GET /bundles/:id/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerificationResult {
    /// Every check passed.
    pub verified: bool,
    /// The trusted key whose signature verified.
    pub key_id: Option<String>,
    /// The bundle id (sha256 of the payload), once the signature verified.
    pub bundle_id: Option<String>,
    /// The checks, in the order they ran (later checks do not run after a
    /// failed signature).
    pub checks: Vec<Check>,
}

/// Verify an envelope: the signature first (before the payload is parsed),
/// then the canonical form, then the content (bundle schema, id, contract
/// hash, trail chain). `expected_bundle_id`, when given, must match.
pub fn verify_envelope(
    envelope: &[u8],
    trusted: &[TrustedKey],
    expected_bundle_id: Option<&str>,
) -> VerificationResult {
    let mut r = VerificationResult {
        verified: false,
        key_id: None,
        bundle_id: None,
        checks: Vec::new(),
    };
    let check = |r: &mut VerificationResult, name: &str, ok: bool, detail: String| {
        r.checks.push(Check {
            name: name.into(),
            ok,
            detail,
        });
        ok
    };
    let env = match Envelope::from_json(envelope) {
        Ok(e) => e,
        Err(e) => {
            check(&mut r, "envelope", false, e.to_string());
            return r;
        }
    };
    check(
        &mut r,
        "envelope",
        true,
        format!("{} signature(s)", env.signatures.len()),
    );
    if !check(
        &mut r,
        "payloadType",
        env.payload_type == BUNDLE_PAYLOAD_TYPE,
        format!("{:?}", env.payload_type),
    ) {
        return r;
    }
    let payload = match env.payload_bytes() {
        Ok(p) => p,
        Err(e) => {
            check(&mut r, "signature", false, e.to_string());
            return r;
        }
    };
    let pae = pae(&env.payload_type, &payload);
    let signed_by = env.signatures.iter().find_map(|s| {
        let key = trusted.iter().find(|k| k.key_id == s.keyid)?;
        let sig = decode_sig(&s.sig)?;
        verify_message_der_fast(&key.key, &pae, &sig).then(|| key.key_id.clone())
    });
    match signed_by {
        Some(k) => {
            check(&mut r, "signature", true, format!("ECDSA P-256 by {k}"));
            r.key_id = Some(k);
        }
        None => {
            check(
                &mut r,
                "signature",
                false,
                "no signature verifies under a trusted key".into(),
            );
            return r;
        }
    }
    let id = jcs::sha256_ref_of_canonical(&payload);
    r.bundle_id = Some(id.clone());
    let canonical = jcs::canonicalize(&payload).map(|c| c == payload);
    let mut all = check(
        &mut r,
        "canonicalForm",
        canonical == Ok(true),
        match canonical {
            Ok(true) => "payload is RFC 8785 canonical".into(),
            Ok(false) => "payload is not in canonical form".into(),
            Err(e) => e.to_string(),
        },
    );
    let bundle: AuditBundle = match serde_json::from_slice(&payload) {
        Ok(b) => b,
        Err(e) => {
            check(&mut r, "bundle", false, e.to_string());
            return r;
        }
    };
    all &= check(
        &mut r,
        "bundle",
        bundle.bundle_version == super::bundle::BUNDLE_VERSION,
        bundle.bundle_version.clone(),
    );
    all &= check(
        &mut r,
        "bundleId",
        expected_bundle_id.is_none_or(|e| e == id),
        match expected_bundle_id {
            Some(e) if e != id => format!("expected {e}, payload hashes to {id}"),
            _ => id.clone(),
        },
    );
    let contract = terms_hash_of(&bundle.contract.content);
    all &= check(
        &mut r,
        "contractHash",
        contract.as_deref() == Ok(bundle.contract.contract_hash.as_str()),
        match contract {
            Ok(h) if h == bundle.contract.contract_hash => h,
            Ok(h) => format!(
                "snapshot says {}, content hashes to {h}",
                bundle.contract.contract_hash
            ),
            Err(e) => e.to_string(),
        },
    );
    let trail = verify_trail(&bundle.audit_trail);
    all &= check(
        &mut r,
        "auditTrail",
        trail.is_ok() && !bundle.audit_trail.is_empty(),
        match trail {
            Ok(()) => format!("{} events chained", bundle.audit_trail.len()),
            Err(e) => e.to_string(),
        },
    );
    r.verified = all;
    r
}

/// Verify many envelopes on `threads` threads (None: every core). Results
/// are in input order.
pub fn verify_envelopes(
    envelopes: &[Vec<u8>],
    trusted: &[TrustedKey],
    threads: Option<usize>,
) -> Vec<VerificationResult> {
    let run = || {
        envelopes
            .par_iter()
            .map(|e| verify_envelope(e, trusted, None))
            .collect()
    };
    match crate::pool::pool(threads.unwrap_or_else(crate::pool::available)) {
        Ok(p) if threads != Some(1) => p.install(run),
        _ => envelopes
            .iter()
            .map(|e| verify_envelope(e, trusted, None))
            .collect(),
    }
}

/// What is wrong with a chain of bundles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BundleChainIssueKind {
    /// previousBundleRef names a bundle that is not there.
    Missing,
    /// Creation times do not follow the chain's order.
    Reordered,
    /// The same bundle twice.
    Duplicated,
    /// Two bundles claim the same predecessor, or there are two first bundles.
    Forked,
    /// Bundles of another workspace.
    WorkspaceMismatch,
}

/// One problem of a bundle chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleChainIssue {
    /// Kind.
    pub kind: BundleChainIssueKind,
    /// The bundle concerned.
    pub bundle_id: String,
    /// Explanation.
    pub message: String,
}

/// Result of verifying a workspace's bundles through `previousBundleRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleChainReport {
    /// No issue.
    pub valid: bool,
    /// Bundle ids from the first to the newest, following the links.
    pub order: Vec<String>,
    /// Issues found.
    pub issues: Vec<BundleChainIssue>,
}

/// Verify the chain of a workspace's bundles (given in storage order).
pub fn verify_bundle_chain(bundles: &[AuditBundle]) -> Result<BundleChainReport, AuditError> {
    let mut issues = Vec::new();
    let mut push = |kind, id: &str, message: String| {
        issues.push(BundleChainIssue {
            kind,
            bundle_id: id.into(),
            message,
        })
    };
    let ids: Vec<String> = bundles
        .iter()
        .map(AuditBundle::id)
        .collect::<Result<_, _>>()?;
    let mut seen = BTreeSet::new();
    let mut by_id: BTreeMap<&str, &AuditBundle> = BTreeMap::new();
    for (b, id) in bundles.iter().zip(&ids) {
        if !seen.insert(id.as_str()) {
            push(
                BundleChainIssueKind::Duplicated,
                id,
                "stored more than once".into(),
            );
        }
        by_id.insert(id, b);
    }
    if let Some(first) = bundles.first() {
        for (b, id) in bundles.iter().zip(&ids) {
            if b.workspace_id != first.workspace_id {
                push(
                    BundleChainIssueKind::WorkspaceMismatch,
                    id,
                    format!("belongs to {}", b.workspace_id),
                );
            }
        }
    }
    let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut roots = Vec::new();
    for (id, b) in &by_id {
        match b.previous_bundle_ref.as_deref() {
            None => roots.push(*id),
            Some(p) if by_id.contains_key(p) => children.entry(p).or_default().push(id),
            Some(p) => push(
                BundleChainIssueKind::Missing,
                id,
                format!("its previous bundle {p} is not in the chain"),
            ),
        }
    }
    for r in roots.iter().skip(1) {
        push(
            BundleChainIssueKind::Forked,
            r,
            "a second first bundle".into(),
        );
    }
    for (p, kids) in &children {
        for k in kids.iter().skip(1) {
            push(
                BundleChainIssueKind::Forked,
                k,
                format!("shares its previous bundle {p} with another"),
            );
        }
    }
    // Walk from the root; creation times must not go backwards.
    let mut order = Vec::new();
    let mut cur = roots.first().copied();
    let mut guard = BTreeSet::new();
    while let Some(id) = cur {
        if !guard.insert(id) {
            break;
        }
        order.push(id.to_string());
        let next = children.get(id).and_then(|k| k.first().copied());
        if let (Some(n), Some(a)) = (next, by_id.get(id))
            && let Some(b) = by_id.get(n)
        {
            let (ta, tb) = (
                crate::time::Timestamp::parse(&a.created_at),
                crate::time::Timestamp::parse(&b.created_at),
            );
            if let (Some(ta), Some(tb)) = (ta, tb)
                && tb < ta
            {
                push(
                    BundleChainIssueKind::Reordered,
                    n,
                    format!(
                        "created {} before its previous bundle ({})",
                        b.created_at, a.created_at
                    ),
                );
            }
        }
        cur = next;
    }
    Ok(BundleChainReport {
        valid: issues.is_empty(),
        order,
        issues,
    })
}
