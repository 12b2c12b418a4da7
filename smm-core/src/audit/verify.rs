//! Offline verification of signed bundles, one at a time or in batches, and
//! of a workspace's chain of bundles.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use p256::ecdsa::VerifyingKey;
use rayon::prelude::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::AuditError;
use super::bundle::{AuditBundle, SimulationSummary, TrailLink, check_links, verify_trail};
use super::crypto::{check_canonical_signature, parse_public_key, verify_message_der_fast};
use super::dsse::{BUNDLE_PAYLOAD_TYPE, Envelope, EnvelopeSignature, Opened, decode_sig};
use crate::contract::{terms_hash_of, terms_hash_of_canonical_text};
use crate::jcs;
use crate::policy::{Decision, DecisionCard};
use crate::usage::{AgentRunStatus, AgentType, Usd};

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
    /// The first trusted key whose signature verified.
    pub key_id: Option<String>,
    /// Every trusted key whose signature verified, in envelope order.
    pub signed_by: Vec<String>,
    /// The bundle id (sha256 of the payload), once the signature verified.
    pub bundle_id: Option<String>,
    /// The checks, in the order they ran (later checks do not run after a
    /// failed signature).
    pub checks: Vec<Check>,
}

/// The signatures of an envelope, checked: every one in the only accepted
/// encoding (strict base64 of strict DER with low S, no duplicates); each
/// one whose key id is trusted verifies under one of the trusted keys with
/// that id (several keys may share an id while a key rotates); at least one
/// does. Signatures of key ids this verifier does not trust are ignored.
/// Returns the key ids whose signatures verified, or why the check failed.
pub(crate) fn check_signatures(
    signatures: &[EnvelopeSignature],
    pae: &[u8],
    trusted: &[TrustedKey],
) -> Result<Vec<String>, String> {
    if signatures.is_empty() {
        return Err("the envelope has no signature".into());
    }
    if signatures.len() > crate::limits::MAX_ENVELOPE_SIGNATURES {
        return Err(format!(
            "the envelope has {} signatures (at most {})",
            signatures.len(),
            crate::limits::MAX_ENVELOPE_SIGNATURES
        ));
    }
    let mut verified = Vec::new();
    // One key, one signature: a second valid signature by a key that
    // already signed (a KMS with random nonces asked twice) is another
    // encoding of the same evidence, and is refused.
    let mut signers: Vec<&VerifyingKey> = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, s) in signatures.iter().enumerate() {
        let at = || format!("signature {i} (key {:?})", s.keyid);
        let Some(der) = decode_sig(&s.sig) else {
            return Err(format!("{} is not strict base64", at()));
        };
        let sig = match check_canonical_signature(&der) {
            Ok(sig) => sig,
            Err(why) => return Err(format!("{} {why}", at())),
        };
        if !seen.insert((s.keyid.as_str(), s.sig.as_str())) {
            return Err(format!("{} appears twice", at()));
        }
        let mut keys = trusted.iter().filter(|k| k.key_id == s.keyid).peekable();
        if keys.peek().is_none() {
            continue; // a key this verifier does not trust
        }
        // A key verifying many bundles reads its comb; others go by `ring`.
        let verifies = |k: &&TrustedKey| {
            super::ecdsa_verify::verify_message(&k.key, pae, &sig)
                .unwrap_or_else(|| verify_message_der_fast(&k.key, pae, &der))
        };
        let Some(key) = keys.find(verifies) else {
            return Err(format!(
                "{} does not verify under any trusted key with that id",
                at()
            ));
        };
        if signers.contains(&&key.key) {
            return Err(format!(
                "{} is a second signature by a key that already signed: one key signs once",
                at()
            ));
        }
        signers.push(&key.key);
        verified.push(s.keyid.clone());
    }
    if verified.is_empty() {
        return Err("no signature is by a trusted key".into());
    }
    Ok(verified)
}

/// Verify an envelope: the signature first (before the payload is parsed),
/// then the canonical form, then the content (bundle schema, id, contract
/// hash, trail chain). `expected_bundle_id`, when given, must match.
///
/// A trusted key that has checked 64 signatures in this process gets a
/// table of its multiples (148 KiB, built once in about 2.5 ms; at most 16
/// keys hold one, about 2.4 MB in all) and verifies about a third faster
/// from then on, with the same verdicts.
pub fn verify_envelope(
    envelope: &[u8],
    trusted: &[TrustedKey],
    expected_bundle_id: Option<&str>,
) -> VerificationResult {
    let mut r = VerificationResult {
        verified: false,
        key_id: None,
        signed_by: Vec::new(),
        bundle_id: None,
        checks: Vec::new(),
    };
    let opened = match Opened::fast(envelope, BUNDLE_PAYLOAD_TYPE) {
        Some(o) => {
            check(
                &mut r,
                "envelope",
                true,
                format!("{} signature(s)", o.signatures.len()),
            );
            check(&mut r, "payloadType", true, format!("{:?}", o.payload_type));
            o
        }
        None => match open(envelope, &mut r) {
            Some(o) => o,
            None => return r,
        },
    };
    match check_signatures(&opened.signatures, opened.pae(), trusted) {
        Ok(keys) => {
            check(
                &mut r,
                "signature",
                true,
                format!("ECDSA P-256 by {}", keys.join(", ")),
            );
            r.key_id = keys.first().cloned();
            r.signed_by = keys;
        }
        Err(why) => {
            check(&mut r, "signature", false, why);
            return r;
        }
    }
    let payload = opened.payload();
    let id = jcs::sha256_ref_of_canonical(payload);
    r.bundle_id = Some(id.clone());
    // UTF-8 checked once, for the canonical check and the parse.
    let text = std::str::from_utf8(payload);
    let canonical = match text {
        Ok(t) => jcs::is_canonical_text(t),
        Err(_) => jcs::is_canonical(payload),
    };
    let is_canonical = canonical == Ok(true);
    let mut all = check(
        &mut r,
        "canonicalForm",
        is_canonical,
        match canonical {
            Ok(true) => "payload is RFC 8785 canonical".into(),
            Ok(false) => "payload is not in canonical form".into(),
            Err(e) => e.to_string(),
        },
    );
    let read = match text {
        Ok(t) if is_canonical => read_canonical(t),
        _ => None,
    };
    let read = match read {
        Some(read) => read,
        None => match read_parsed(text, payload) {
            Ok(read) => read,
            Err(e) => {
                check(&mut r, "bundle", false, e);
                return r;
            }
        },
    };
    all &= check(
        &mut r,
        "bundle",
        read.version == super::bundle::BUNDLE_VERSION,
        read.version.into_owned(),
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
    let stated = read.contract_hash;
    all &= check(
        &mut r,
        "contractHash",
        read.terms_hash.as_deref() == Ok(&*stated),
        match read.terms_hash {
            Ok(h) if h == stated => h,
            Ok(h) => format!("snapshot says {stated}, content hashes to {h}"),
            Err(e) => e,
        },
    );
    all &= check(
        &mut r,
        "auditTrail",
        matches!(read.trail, Ok(n) if n > 0),
        match read.trail {
            Ok(n) => format!("{n} events chained"),
            Err(e) => e,
        },
    );
    r.verified = all;
    r
}

/// The general way to open an envelope ([`Opened::fast`] did not apply):
/// parsed, its payload type checked, its payload decoded, each step's
/// outcome a check of `r`. `None` when one failed.
fn open(envelope: &[u8], r: &mut VerificationResult) -> Option<Opened> {
    let env = match Envelope::from_json(envelope) {
        Ok(e) => e,
        Err(e) => {
            check(r, "envelope", false, e.to_string());
            return None;
        }
    };
    check(
        r,
        "envelope",
        true,
        format!("{} signature(s)", env.signatures.len()),
    );
    if !check(
        r,
        "payloadType",
        env.payload_type == BUNDLE_PAYLOAD_TYPE,
        format!("{:?}", env.payload_type),
    ) {
        return None;
    }
    match env.payload_bytes() {
        Ok(payload) => Some(Opened::new(env, &payload)),
        Err(e) => {
            check(r, "signature", false, e.to_string());
            None
        }
    }
}

/// Record a check's outcome in `r`; answers whether it passed.
fn check(r: &mut VerificationResult, name: &str, ok: bool, detail: String) -> bool {
    r.checks.push(Check {
        name: name.into(),
        ok,
        detail,
    });
    ok
}

/// What verification reads of a payload.
struct Read<'a> {
    version: Cow<'a, str>,
    contract_hash: Cow<'a, str>,
    /// The terms hash of the snapshot's content, or why it has none.
    terms_hash: Result<String, String>,
    /// The audit trail's length when it chains ([`verify_trail`]), or why
    /// it does not.
    trail: Result<usize, String>,
}

/// A payload as [`AuditBundle`] reads it: every field with the same type
/// (so exactly the same payloads parse; tests hold the two together),
/// except that the contract's content stays text borrowed from the
/// payload instead of a `serde_json::Value` tree built, hashed and
/// dropped (a quarter of a verification's parse). Fields verification
/// does not use are parsed for their type check only.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "some fields are read only to check their type")]
struct PayloadView<'a> {
    #[serde(borrow)]
    bundle_version: Cow<'a, str>,
    #[serde(borrow)]
    workspace_id: Cow<'a, str>,
    #[serde(borrow)]
    tenant_id: Cow<'a, str>,
    #[serde(borrow)]
    created_at: Cow<'a, str>,
    #[serde(borrow)]
    contract: SnapshotView<'a>,
    #[serde(borrow)]
    policy_bundle_checksum: Cow<'a, str>,
    simulation: SimulationSummary,
    policy_decision: Decision,
    decision_card: DecisionCard,
    #[serde(borrow)]
    agent_runs: Vec<AgentRunView<'a>>,
    #[serde(borrow)]
    audit_trail: Vec<&'a RawValue>,
    #[serde(default, borrow)]
    previous_bundle_ref: Option<Cow<'a, str>>,
    #[serde(borrow)]
    retention_expires_at: Cow<'a, str>,
}

/// [`ContractSnapshot`](crate::contract::ContractSnapshot) as
/// [`PayloadView`] reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "some fields are read only to check their type")]
struct SnapshotView<'a> {
    #[serde(borrow)]
    contract_id: Cow<'a, str>,
    #[serde(borrow)]
    contract_version: Cow<'a, str>,
    #[serde(borrow)]
    contract_hash: Cow<'a, str>,
    #[serde(default, borrow)]
    previous_contract_ref: Option<Cow<'a, str>>,
    #[serde(borrow)]
    content: &'a RawValue,
}

/// [`AgentRun`](crate::usage::AgentRun) as [`PayloadView`] reads it: the
/// same fields, types and defaults, its text borrowed from the payload
/// rather than copied into strings (the runs were half of a
/// verification's typed parse, nearly all of it allocation).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "read only to check their type")]
struct AgentRunView<'a> {
    #[serde(borrow)]
    job_id: Cow<'a, str>,
    #[serde(borrow)]
    workspace_id: Cow<'a, str>,
    agent_type: AgentType,
    status: AgentRunStatus,
    #[serde(borrow)]
    input_hash: Cow<'a, str>,
    // A plain `&str` where `Cow` would be copied (an `Option` of a `Cow`
    // never borrows): a string with an escape fails here, and the
    // payload is then read as an `AuditBundle`, whose answer it is.
    #[serde(default, borrow)]
    output_hash: Option<&'a str>,
    #[serde(default, borrow)]
    model_usage: Vec<ModelUsageView<'a>>,
    #[serde(borrow)]
    started_at: Cow<'a, str>,
    #[serde(default, borrow)]
    finished_at: Option<&'a str>,
}

/// [`ModelUsage`](crate::usage::ModelUsage) as [`AgentRunView`] reads it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "read only to check their type")]
struct ModelUsageView<'a> {
    #[serde(borrow)]
    model_id: Cow<'a, str>,
    #[serde(borrow)]
    provider: Cow<'a, str>,
    #[serde(borrow)]
    prompt_hash: Cow<'a, str>,
    input_tokens: u64,
    output_tokens: u64,
    total_tokens: u64,
    cost_usd: Usd,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
}

/// [`AuditEvent`](super::AuditEvent) as [`PayloadView`] reads it, from
/// the event's own text: the text, pruned of `eventHash`, is then what
/// [`AuditEvent::compute_hash`](super::AuditEvent::compute_hash) hashes,
/// hashed without a tree of `details` built and written out again. So the
/// view takes only events whose text is exactly that: `details` present
/// (the type reads a missing one as `null`, which its hash then holds)
/// and `previousEventHash` absent or a string (the type reads `null` as
/// absent, which its hash then leaves out). Anything else fails the view
/// and the payload goes the general way.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code, reason = "some fields are read only to check their type")]
struct AuditEventView<'a> {
    sequence: u64,
    #[serde(borrow)]
    timestamp: Cow<'a, str>,
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    details: &'a RawValue,
    #[serde(default, borrow, deserialize_with = "present_str")]
    previous_event_hash: Option<&'a str>,
    event_hash: &'a str,
}

/// A string that is there: `null` is refused (see [`AuditEventView`]).
fn present_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de str>, D::Error> {
    <&str>::deserialize(d).map(Some)
}

/// The trail of a canonical payload, checked as [`verify_trail`] checks
/// it: `None` when an event is not one [`AuditEventView`] takes, or its
/// hash cannot be taken from its text.
fn trail_of_canonical(events: &[&RawValue]) -> Option<Result<usize, String>> {
    // Every event is read before the chain is judged: one the view cannot
    // take sends the payload the general way even after a broken link.
    let mut links = Vec::with_capacity(events.len());
    for raw in events {
        let e: AuditEventView<'_> = serde_json::from_str(raw.get()).ok()?;
        let hash = jcs::sha256_ref_of_pruned_text(raw.get(), &[&["eventHash"]], EVENT_ENCLOSING)?;
        links.push(TrailLink {
            sequence: e.sequence,
            previous_event_hash: e.previous_event_hash,
            event_hash: e.event_hash,
            computed: Ok(hash),
        });
    }
    Some(
        check_links(links.into_iter())
            .map(|()| events.len())
            .map_err(|e| e.to_string()),
    )
}

/// Containers open around an event in a payload (the bundle, the trail),
/// and one more, as for [`CONTENT_ENCLOSING`].
const EVENT_ENCLOSING: usize = 3;

/// Containers open around a snapshot's content in a payload (the bundle,
/// the snapshot), and one more: `serde_json` refuses the 128th level of
/// nesting where RFC 8785 output may hold 128, and the content's walk must
/// refuse what [`AuditBundle`]'s parse refuses.
const CONTENT_ENCLOSING: usize = 3;

/// The payload read through [`PayloadView`], for a payload already found
/// canonical. `None` when the view does not parse or the content's terms
/// hash cannot be taken from its text: the caller asks [`read_parsed`],
/// whose answer (and error) is the one to report.
fn read_canonical(text: &str) -> Option<Read<'_>> {
    let view: PayloadView<'_> = serde_json::from_str(text).ok()?;
    let terms = terms_hash_of_canonical_text(view.contract.content.get(), CONTENT_ENCLOSING)?;
    let trail = trail_of_canonical(&view.audit_trail)?;
    Some(Read {
        version: view.bundle_version,
        contract_hash: view.contract.contract_hash,
        terms_hash: Ok(terms),
        trail,
    })
}

/// The payload parsed as an [`AuditBundle`] (the general path: any
/// payload, canonical or not); the error says why it is not a bundle.
fn read_parsed<'a>(
    text: Result<&str, std::str::Utf8Error>,
    payload: &[u8],
) -> Result<Read<'a>, String> {
    let parsed = match text {
        Ok(t) => serde_json::from_str(t),
        Err(_) => serde_json::from_slice(payload),
    };
    let bundle: AuditBundle = parsed.map_err(|e| e.to_string())?;
    Ok(Read {
        terms_hash: terms_hash_of(&bundle.contract.content).map_err(|e| e.to_string()),
        version: Cow::Owned(bundle.bundle_version),
        contract_hash: Cow::Owned(bundle.contract.contract_hash),
        trail: verify_trail(&bundle.audit_trail)
            .map(|()| bundle.audit_trail.len())
            .map_err(|e| e.to_string()),
    })
}

/// Whether the fast read of a payload ([`read_canonical`]) answers as the
/// general one ([`read_parsed`]) wherever it answers at all: `Ok(true)`
/// when it answered (the same), `Ok(false)` when it left the payload to
/// the general read, `Err` how they differ. For the fuzz targets and the
/// tests that hold the payload's views to [`AuditBundle`].
#[cfg(feature = "fs")]
pub(crate) fn reads_agree(payload: &[u8]) -> Result<bool, String> {
    let Ok(text) = std::str::from_utf8(payload) else {
        return Ok(false);
    };
    let Some(fast) = read_canonical(text) else {
        return Ok(false);
    };
    let general = read_parsed(Ok(text), payload)
        .map_err(|e| format!("the view read a payload the bundle type refuses: {e}"))?;
    let same = fast.version == general.version
        && fast.contract_hash == general.contract_hash
        && fast.terms_hash == general.terms_hash
        && fast.trail == general.trail;
    if same {
        Ok(true)
    } else {
        Err("the view and the bundle type read different values".into())
    }
}

/// Verify many envelopes (at most [`crate::limits::MAX_BATCH`]) on
/// `threads` threads (None: every core). Results are in input order.
pub fn verify_envelopes(
    envelopes: &[Vec<u8>],
    trusted: &[TrustedKey],
    threads: Option<usize>,
) -> Result<Vec<VerificationResult>, AuditError> {
    if envelopes.len() > crate::limits::MAX_BATCH {
        return Err(AuditError::InvalidInput {
            pointer: String::new(),
            message: format!(
                "{} envelopes, more than the batch limit of {}",
                envelopes.len(),
                crate::limits::MAX_BATCH
            ),
        });
    }
    if threads.is_some_and(|t| t == 0 || t > crate::limits::MAX_THREADS) {
        return Err(AuditError::InvalidInput {
            pointer: String::new(),
            message: format!(
                "threads must be between 1 and {}",
                crate::limits::MAX_THREADS
            ),
        });
    }
    Ok(verify_batch(envelopes, trusted, threads))
}

fn verify_batch(
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
