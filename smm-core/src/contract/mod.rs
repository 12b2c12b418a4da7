//! Workspace contracts: the v2 schema, validation, the terms hash, the
//! lifecycle, version checks and version chains.
//!
//! ```
//! use smm_core::contract::{Contract, Lifecycle};
//!
//! let text = include_str!("../../../examples/workspace.icblabs.v2.json");
//! let c = Contract::from_json(text)?;
//! assert!(c.terms_hash().starts_with("sha256:"));
//! let errors: Vec<_> = c.validate("2026-01-01T00:00:00Z".parse()?)?.into_iter()
//!     .filter(|v| v.is_error()).collect();
//! assert!(errors.is_empty(), "{errors:?}");
//! // Lifecycle moves do not touch the terms.
//! let active = c.transition(Lifecycle::Provisioning)?.transition(Lifecycle::Active)?;
//! assert_eq!(active.terms_hash(), c.terms_hash());
//! # Ok::<(), smm_core::contract::ContractError>(())
//! ```

mod history;
mod model;
mod rules;
mod schema_check;

use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

pub use history::{ChainIssue, ChainIssueKind, ChainReport, ContractHistory, ContractSnapshot};
pub use model::*;
pub use rules::{CONNECTOR_STALE_AFTER_DAYS, MIN_TTL_HOURS};

use crate::jcs::{self, CanonicalError};
use crate::time::Timestamp;

/// Retention of a bundle when the contract names none, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

/// Top-level fields that are lifecycle state, not terms (the terms hash
/// leaves them out). Each changes during a contract's life without changing
/// what was agreed:
///
/// - `signedBy`: signing records who signed the terms and when; the
///   signature covers the terms hash, so the record cannot be inside it;
/// - `lifecycle`: moves by [`Contract::transition`];
/// - `lastRun`, `currentCanary`: operational state of the latest run;
/// - `emergencyFlags`: break-glass switches operators flip at any time.
///
/// Also left out: `audit.lastBundleId` (see [`NON_TERMS_NESTED`]).
pub const NON_TERMS: [&str; 5] = [
    "signedBy",
    "lifecycle",
    "lastRun",
    "currentCanary",
    "emergencyFlags",
];
/// Nested fields that are not terms, as JSON pointers: `audit.lastBundleId`
/// changes with every audit bundle written.
pub const NON_TERMS_NESTED: [&str; 1] = ["/audit/lastBundleId"];

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The contract is invalid.
    Error,
    /// Valid, but worth a look.
    Warning,
}

/// One problem with a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Violation {
    /// JSON pointer of the offending value.
    pub pointer: String,
    /// Rule id: `schema.<keyword>` or `rule.<name>`.
    pub rule: String,
    /// What is wrong.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

impl Violation {
    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.pointer, self.message, self.rule)
    }
}

/// Errors about contracts.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum ContractError {
    /// The document has no canonical form (duplicate keys, lone surrogates, ...).
    #[error("contract is not canonicalizable JSON: {0}")]
    Canonical(#[from] CanonicalError),
    /// The document breaks the v2 schema.
    #[error("contract breaks the v2 schema at {}: {} ({} violation(s) in all)", .violations.first().map_or("", |v| v.pointer.as_str()), .violations.first().map_or("", |v| v.message.as_str()), .violations.len())]
    Schema {
        /// Every schema violation.
        violations: Vec<Violation>,
    },
    /// The document breaks a business rule at the time it is used
    /// (expired, not yet effective, a consent lapsed, ...).
    #[error("contract breaks its rules at {}: {} ({} violation(s) in all)", .violations.first().map_or("", |v| v.pointer.as_str()), .violations.first().map_or("", |v| v.message.as_str()), .violations.len())]
    Rules {
        /// Every violation of severity error.
        violations: Vec<Violation>,
    },
    /// A v1 contract was given where v2 is expected.
    #[error("this is a v1 contract (it has {pointer}); migrate it with migrate_v1 first")]
    V1Contract {
        /// The v1 field found.
        pointer: String,
    },
    /// A v1 document cannot be migrated.
    #[error("cannot migrate the v1 contract at {pointer}: {message}")]
    Migration {
        /// Where.
        pointer: String,
        /// Why.
        message: String,
    },
    /// `now` is not an RFC 3339 timestamp.
    #[error("now must be an RFC 3339 date-time (got {0:?})")]
    InvalidNow(String),
    /// A lifecycle transition not in the table.
    #[error("illegal lifecycle transition {from} -> {to} (allowed from {from}: {allowed})")]
    IllegalTransition {
        /// From state.
        from: &'static str,
        /// To state.
        to: &'static str,
        /// The allowed targets.
        allowed: String,
    },
    /// The two contracts belong to different workspaces.
    #[error("contracts belong to different workspaces ({previous} vs {next})")]
    DifferentWorkspace {
        /// Previous workspace id.
        previous: String,
        /// Next workspace id.
        next: String,
    },
    /// A signed contract's terms changed without a new version.
    #[error("immutability violation: the terms of signed contract {version} changed without a new contractVersion (changed: {})", .changed.join(", "))]
    ImmutabilityViolation {
        /// The version.
        version: String,
        /// Pointers of changed terms.
        changed: Vec<String>,
    },
    /// Terms changed but the version did not increase.
    #[error("terms changed (changed: {}) but contractVersion {next} is not greater than {previous}", .changed.join(", "))]
    VersionNotIncreased {
        /// Previous version.
        previous: String,
        /// Next version.
        next: String,
        /// Pointers of changed terms.
        changed: Vec<String>,
    },
    /// The new version does not point at the previous terms hash.
    #[error("previousContractRef of {version} is {found}, expected {expected}")]
    BrokenLink {
        /// The new version.
        version: String,
        /// The previous terms hash.
        expected: String,
        /// What the new version says (or "absent").
        found: String,
    },
    /// A snapshot's content does not match its hash or id.
    #[error("snapshot {contract_id} is tampered: {message}")]
    SnapshotTampered {
        /// The snapshot id.
        contract_id: String,
        /// What does not match.
        message: String,
    },
}

impl ContractError {
    /// The kind of this error (its stable code and category).
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            ContractError::ImmutabilityViolation { .. } => K::Immutability,
            ContractError::VersionNotIncreased { .. }
            | ContractError::BrokenLink { .. }
            | ContractError::DifferentWorkspace { .. } => K::VersionRejected,
            ContractError::IllegalTransition { .. } => K::LifecycleRejected,
            ContractError::SnapshotTampered { .. } => K::Integrity,
            ContractError::Canonical(_)
            | ContractError::Schema { .. }
            | ContractError::Rules { .. }
            | ContractError::V1Contract { .. }
            | ContractError::Migration { .. }
            | ContractError::InvalidNow(_) => K::InvalidInput,
        }
    }

    /// The JSON pointer of the offending field, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            ContractError::Canonical(e) => e.pointer(),
            ContractError::Schema { violations } | ContractError::Rules { violations } => {
                violations.first().map(|v| v.pointer.as_str())
            }
            ContractError::V1Contract { pointer } | ContractError::Migration { pointer, .. } => {
                Some(pointer)
            }
            ContractError::BrokenLink { .. } => Some("/previousContractRef"),
            ContractError::VersionNotIncreased { .. }
            | ContractError::ImmutabilityViolation { .. } => Some("/contractVersion"),
            ContractError::IllegalTransition { .. } => Some("/lifecycle"),
            _ => None,
        }
    }
}

/// The generated JSON Schema of the v2 contract.
pub fn schema() -> &'static Value {
    &compiled_schema().0
}

fn compiled_schema() -> &'static (Value, schema_check::CompiledSchema) {
    static SCHEMA: OnceLock<(Value, schema_check::CompiledSchema)> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let v = schemars::schema_for!(WorkspaceContract).to_value();
        (v.clone(), schema_check::CompiledSchema::new(v))
    })
}

/// `now` from text at a front door: [`ContractError::InvalidNow`] when it
/// is not RFC 3339.
pub fn parse_now(now: &str) -> Result<Timestamp, ContractError> {
    Timestamp::parse(now).ok_or_else(|| ContractError::InvalidNow(now.to_string()))
}

/// Parse JSON text through the canonicalizer (so duplicate keys, lone
/// surrogates and inexact integers are refused) into a value.
fn checked_value(text: &[u8]) -> Result<Value, ContractError> {
    let canonical = jcs::canonicalize(text)?;
    serde_json::from_slice(&canonical).map_err(|e| {
        ContractError::Canonical(CanonicalError::Syntax {
            offset: 0,
            pointer: String::new(),
            message: e.to_string(),
        })
    })
}

/// The terms of a contract document: the document without [`NON_TERMS`] and
/// [`NON_TERMS_NESTED`].
pub fn terms_of(doc: &Value) -> Value {
    let mut t = doc.clone();
    if let Some(m) = t.as_object_mut() {
        for k in NON_TERMS {
            m.remove(k);
        }
    }
    for p in NON_TERMS_NESTED {
        if let Some((parent, key)) = p.rsplit_once('/')
            && let Some(Value::Object(m)) = t.pointer_mut(parent)
        {
            m.remove(key);
        }
    }
    t
}

/// `"sha256:" + hex SHA-256` of the RFC 8785 form of a document's terms.
pub fn terms_hash_of(doc: &Value) -> Result<String, ContractError> {
    // The terms written straight from the document (no copy of it); only a
    // document whose terms have no canonical form takes the copy, so that
    // the error names what and where.
    let canonical = match jcs::canonicalize_value_pruned(doc, &TERMS_PRUNE) {
        Some(c) => c,
        None => jcs::canonicalize_value(&terms_of(doc))?,
    };
    Ok(jcs::sha256_ref_of_canonical(&canonical))
}

/// [`terms_hash_of`] of a document given as canonical text, `enclosing`
/// arrays and objects deep in the document it was cut from, hashed from
/// the text's own bytes (no tree built). `None` when that pass cannot
/// vouch for the answer (see [`jcs::sha256_ref_of_pruned_text`]): the
/// caller parses the text and asks [`terms_hash_of`].
pub fn terms_hash_of_canonical_text(text: &str, enclosing: usize) -> Option<String> {
    jcs::sha256_ref_of_pruned_text(text, &TERMS_PRUNE, enclosing)
}

/// [`NON_TERMS`] and [`NON_TERMS_NESTED`] as key paths (a test checks they
/// name the same members).
const TERMS_PRUNE: [&[&str]; 6] = [
    &["signedBy"],
    &["lifecycle"],
    &["lastRun"],
    &["currentCanary"],
    &["emergencyFlags"],
    &["audit", "lastBundleId"],
];

/// Every violation of a contract document (JSON text) at `now`: schema
/// violations, then the business rules (when the schema fails, those that
/// can still be checked on the document without its offending values).
/// Errors only when the text has no canonical form or `now` is not a
/// timestamp.
pub fn validate_document(text: &[u8], now: Timestamp) -> Result<Vec<Violation>, ContractError> {
    let doc = checked_value(text)?;
    let mut out = compiled_schema().1.validate(&doc);
    if out.is_empty() {
        match serde_json::from_value::<WorkspaceContract>(doc) {
            Ok(c) => rules::check(&c, now, &mut out),
            Err(e) => out.push(Violation {
                pointer: String::new(),
                rule: "schema.type".into(),
                message: e.to_string(),
                severity: Severity::Error,
            }),
        }
    } else {
        // The rules that can still be checked: without the offending
        // values (an unknown field, a bad optional one), the document may
        // be a contract; its rule violations elsewhere are listed too.
        let mut rest = doc;
        let removed: Vec<String> = out
            .iter()
            .map(|v| v.pointer.clone())
            .filter(|p| !p.is_empty())
            .collect();
        for p in &removed {
            remove_pointer(&mut rest, p);
        }
        if !removed.is_empty()
            && compiled_schema().1.validate(&rest).is_empty()
            && let Ok(c) = serde_json::from_value::<WorkspaceContract>(rest)
        {
            let mut rule_out = Vec::new();
            rules::check(&c, now, &mut rule_out);
            out.extend(rule_out.into_iter().filter(|v| {
                !removed
                    .iter()
                    .any(|p| v.pointer == *p || v.pointer.starts_with(&format!("{p}/")))
            }));
        }
    }
    Ok(out)
}

/// Remove the value at `pointer` (an object member or an array element).
fn remove_pointer(doc: &mut Value, pointer: &str) {
    let Some((parent, key)) = crate::jcs::split_pointer(pointer) else {
        return;
    };
    match doc.pointer_mut(parent) {
        Some(Value::Object(o)) => {
            o.remove(&key);
        }
        Some(Value::Array(a)) => {
            if let Ok(i) = key.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// A parsed, schema-valid v2 contract with its terms hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    doc: Value,
    contract: WorkspaceContract,
    terms_hash: String,
}

impl Contract {
    /// Parse a v2 contract from JSON text. A v1 contract is refused with a
    /// pointer to its v1 field (see [`migrate_v1`]).
    pub fn from_json(text: &str) -> Result<Contract, ContractError> {
        Contract::from_checked(checked_value(text.as_bytes())?)
    }

    /// Build from a JSON value (numbers are checked as in text).
    pub fn from_value(doc: Value) -> Result<Contract, ContractError> {
        // Round-trip through the canonicalizer: refuses inexact integers.
        Contract::from_checked(checked_value(doc.to_string().as_bytes())?)
    }

    fn from_checked(doc: Value) -> Result<Contract, ContractError> {
        if doc.pointer("/emergencyFlags/pauseAll").is_some() {
            return Err(ContractError::V1Contract {
                pointer: "/emergencyFlags/pauseAll".into(),
            });
        }
        let violations = compiled_schema().1.validate(&doc);
        if !violations.is_empty() {
            return Err(ContractError::Schema { violations });
        }
        let contract: WorkspaceContract =
            serde_json::from_value(doc.clone()).map_err(|e| ContractError::Schema {
                violations: vec![Violation {
                    pointer: String::new(),
                    rule: "schema.type".into(),
                    message: e.to_string(),
                    severity: Severity::Error,
                }],
            })?;
        let terms_hash = terms_hash_of(&doc)?;
        Ok(Contract {
            doc,
            contract,
            terms_hash,
        })
    }

    /// The typed contract.
    pub fn contract(&self) -> &WorkspaceContract {
        &self.contract
    }

    /// The document as given (a JSON value).
    pub fn document(&self) -> &Value {
        &self.doc
    }

    /// `"sha256:" + hex` of the canonical terms.
    pub fn terms_hash(&self) -> &str {
        &self.terms_hash
    }

    /// `<workspaceId>-<contractVersion>`.
    pub fn contract_id(&self) -> String {
        format!(
            "{}-{}",
            self.contract.workspace_id, self.contract.contract_version
        )
    }

    /// The canonical (RFC 8785) JSON of the whole document.
    pub fn to_canonical_json(&self) -> String {
        jcs::canonicalize_value(&self.doc)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default()
    }

    /// Business-rule violations at `now` (the schema already holds).
    pub fn validate(&self, now: Timestamp) -> Result<Vec<Violation>, ContractError> {
        let mut out = Vec::new();
        rules::check(&self.contract, now, &mut out);
        Ok(out)
    }

    /// Move to another lifecycle state, if the table allows it. The terms
    /// (and their hash) do not change.
    pub fn transition(&self, to: Lifecycle) -> Result<Contract, ContractError> {
        let from = self.contract.lifecycle;
        if !from.next_states().contains(&to) {
            return Err(ContractError::IllegalTransition {
                from: from.as_str(),
                to: to.as_str(),
                allowed: if from.next_states().is_empty() {
                    "none (terminal)".into()
                } else {
                    from.next_states()
                        .iter()
                        .map(|l| l.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            });
        }
        let mut next = self.clone();
        next.contract.lifecycle = to;
        if let Some(m) = next.doc.as_object_mut() {
            m.insert("lifecycle".into(), Value::String(to.as_str().into()));
        }
        Ok(next)
    }

    /// Check a change from this contract to `next`, as a CI gate would.
    /// Same terms: fine. Changed terms: `next` needs a greater version and
    /// `previousContractRef` equal to this terms hash; changing a signed
    /// contract's terms at the same version is an immutability violation.
    pub fn check_change(&self, next: &Contract) -> Result<ChangeKind, ContractError> {
        let (a, b) = (&self.contract, &next.contract);
        if a.workspace_id != b.workspace_id {
            return Err(ContractError::DifferentWorkspace {
                previous: a.workspace_id.clone(),
                next: b.workspace_id.clone(),
            });
        }
        if self.terms_hash == next.terms_hash {
            return Ok(ChangeKind::SameTerms);
        }
        let changed = changed_pointers(&terms_of(&self.doc), &terms_of(&next.doc));
        let (va, vb) = (semver(&a.contract_version), semver(&b.contract_version));
        if va >= vb {
            if va == vb && (a.lifecycle.is_signed_or_later() || a.signed_by.is_some()) {
                return Err(ContractError::ImmutabilityViolation {
                    version: a.contract_version.clone(),
                    changed,
                });
            }
            return Err(ContractError::VersionNotIncreased {
                previous: a.contract_version.clone(),
                next: b.contract_version.clone(),
                changed,
            });
        }
        if b.previous_contract_ref.as_deref() != Some(self.terms_hash.as_str()) {
            return Err(ContractError::BrokenLink {
                version: b.contract_version.clone(),
                expected: self.terms_hash.clone(),
                found: b
                    .previous_contract_ref
                    .clone()
                    .unwrap_or_else(|| "absent".into()),
            });
        }
        Ok(ChangeKind::NewVersion {
            from: a.contract_version.clone(),
            to: b.contract_version.clone(),
            changed,
        })
    }

    /// The snapshot stored in audit bundles.
    pub fn snapshot(&self) -> ContractSnapshot {
        ContractSnapshot {
            contract_id: self.contract_id(),
            contract_version: self.contract.contract_version.clone(),
            contract_hash: self.terms_hash.clone(),
            previous_contract_ref: self.contract.previous_contract_ref.clone(),
            content: self.doc.clone(),
        }
    }
}

/// The outcome of an accepted change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum ChangeKind {
    /// The terms are the same (only lifecycle state may differ).
    SameTerms,
    /// A properly chained new version.
    NewVersion {
        /// Previous version.
        from: String,
        /// New version.
        to: String,
        /// Pointers of the changed terms.
        changed: Vec<String>,
    },
}

/// (major, minor, patch) of "vX.Y.Z" (schema-checked already).
pub(crate) fn semver(v: &str) -> (u64, u64, u64) {
    let mut it = v
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// JSON pointers of the leaves that differ between two documents (at most 20).
pub fn changed_pointers(a: &Value, b: &Value) -> Vec<String> {
    fn walk(a: Option<&Value>, b: Option<&Value>, at: String, out: &mut Vec<String>) {
        if out.len() >= 20 || a == b {
            return;
        }
        match (a, b) {
            (Some(Value::Object(x)), Some(Value::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = format!("{at}/{}", crate::jcs::escape_pointer_token(k));
                    walk(x.get(k), y.get(k), p, out);
                }
            }
            (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    walk(Some(p), Some(q), format!("{at}/{i}"), out);
                }
            }
            _ => out.push(if at.is_empty() { "/".into() } else { at }),
        }
    }
    let mut out = Vec::new();
    walk(Some(a), Some(b), String::new(), &mut out);
    out
}

/// Migrate a v1 contract document to v2, explicitly: `emergencyFlags`
/// {pauseAll, pausedAt, reason} becomes {halted, haltedAt, reason,
/// budgetOverride, humanApprovalRequired} (keeping budgetOverride and
/// humanApprovalRequired when the v1 document already had them). Every
/// other field is carried over unchanged; the result must still pass the v2
/// schema (e.g. a fake policyBundleChecksum is not repaired).
pub fn migrate_v1(v1: &Value) -> Result<Value, ContractError> {
    let mut doc = v1.clone();
    let Some(root) = doc.as_object_mut() else {
        return Err(ContractError::Migration {
            pointer: String::new(),
            message: "a contract is a JSON object".into(),
        });
    };
    let flags = root
        .remove("emergencyFlags")
        .unwrap_or(Value::Object(Default::default()));
    let Value::Object(flags) = flags else {
        return Err(ContractError::Migration {
            pointer: "/emergencyFlags".into(),
            message: "emergencyFlags must be an object".into(),
        });
    };
    let flag = |k: &str| -> Result<bool, ContractError> {
        match flags.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(ContractError::Migration {
                pointer: format!("/emergencyFlags/{k}"),
                message: "must be a boolean".into(),
            }),
        }
    };
    let mut v2 = serde_json::Map::new();
    v2.insert("halted".into(), Value::Bool(flag("pauseAll")?));
    v2.insert(
        "budgetOverride".into(),
        Value::Bool(flag("budgetOverride")?),
    );
    v2.insert(
        "humanApprovalRequired".into(),
        Value::Bool(flag("humanApprovalRequired")?),
    );
    if let Some(at) = flags.get("pausedAt") {
        v2.insert("haltedAt".into(), at.clone());
    }
    if let Some(r) = flags.get("reason") {
        v2.insert("reason".into(), r.clone());
    }
    for k in flags.keys() {
        if ![
            "pauseAll",
            "pausedAt",
            "reason",
            "budgetOverride",
            "humanApprovalRequired",
        ]
        .contains(&k.as_str())
        {
            return Err(ContractError::Migration {
                pointer: format!("/emergencyFlags/{}", crate::jcs::escape_pointer_token(k)),
                message: format!("v1 flag `{k}` has no v2 equivalent"),
            });
        }
    }
    root.insert("emergencyFlags".into(), Value::Object(v2));
    Ok(doc)
}

/// Parse JSON text into a value through the canonicalizer's checks.
pub fn parse_document(text: &str) -> Result<Value, ContractError> {
    checked_value(text.as_bytes())
}

impl From<crate::time::NotRfc3339> for ContractError {
    fn from(e: crate::time::NotRfc3339) -> Self {
        ContractError::InvalidNow(e.0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
    use super::*;
    use serde_json::json;

    const MAX_DEPTH_FOR_TEST: usize = jcs::MAX_DEPTH;

    /// What `terms_hash_of` was before it stopped copying the document.
    fn by_copy(doc: &Value) -> Result<String, ContractError> {
        Ok(jcs::sha256_ref_of_canonical(&jcs::canonicalize_value(
            &terms_of(doc),
        )?))
    }

    #[test]
    fn the_prune_list_names_the_non_terms() {
        let mut want: Vec<Vec<String>> = NON_TERMS.iter().map(|k| vec![k.to_string()]).collect();
        for p in NON_TERMS_NESTED {
            want.push(p.split('/').skip(1).map(str::to_string).collect());
        }
        let got: Vec<Vec<String>> = TERMS_PRUNE
            .iter()
            .map(|p| p.iter().map(|k| k.to_string()).collect())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn terms_hash_without_a_copy_is_the_terms_hash() {
        let example: Value =
            serde_json::from_str(include_str!("../../../examples/workspace.icblabs.v2.json"))
                .unwrap();
        let mut docs = vec![example.clone()];
        let mut d = example.clone();
        d["audit"] = json!({"lastBundleId": "x", "z": 1, "a": [1, 2.5]});
        d["signedBy"] = json!({"n": 1});
        d["lastRun"] = json!(null);
        d["\u{10000}"] = json!(1); // sorts before U+E000.. in UTF-16 only
        d["\u{e000}"] = json!(2);
        docs.push(d.clone());
        d["audit"] = json!("not an object");
        docs.push(d.clone());
        d["audit"] = json!({"lastBundleId": {"deep": [1]}});
        docs.push(d);
        docs.extend([json!([1, 2]), json!("text"), json!({}), json!(null)]);
        for doc in &docs {
            let want = terms_hash_of(doc).unwrap();
            assert_eq!(want, by_copy(doc).unwrap(), "{doc}");
            // From the canonical text, without a tree: the same hash.
            let text = String::from_utf8(jcs::canonicalize_value(doc).unwrap()).unwrap();
            assert_eq!(terms_hash_of_canonical_text(&text, 0), Some(want), "{text}");
        }
        // Text that is not canonical is not vouched for.
        let example_text = include_str!("../../../examples/workspace.icblabs.v2.json");
        assert_eq!(terms_hash_of_canonical_text(example_text, 0), None);
        for text in [
            r#"{"b":1,"a":2}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"a" :1}"#,
            r#"{"a":1.0}"#,
        ] {
            assert_eq!(terms_hash_of_canonical_text(text, 0), None, "{text}");
        }
        assert_eq!(terms_hash_of_canonical_text(r#"{"a":1}x"#, 0), None);
        // Nesting is counted from the containers around the text.
        let deep = format!("{}{}", "[".repeat(10), "]".repeat(10));
        assert!(terms_hash_of_canonical_text(&deep, MAX_DEPTH_FOR_TEST - 10).is_some());
        assert_eq!(
            terms_hash_of_canonical_text(&deep, MAX_DEPTH_FOR_TEST - 9),
            None
        );
        // A non-term that has no canonical form is pruned either way.
        let mut d = example.clone();
        d["lifecycle"] = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(terms_hash_of(&d).unwrap(), by_copy(&d).unwrap());
        // A term that has none: the same error, at the same place.
        let mut d = example;
        d["zz"] = serde_json::from_str("{\"a\": 18446744073709551615}").unwrap();
        let (a, b) = (terms_hash_of(&d).unwrap_err(), by_copy(&d).unwrap_err());
        assert_eq!(a.to_string(), b.to_string());
    }
}
