//! Contract snapshots and the version chain of a workspace.

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Contract, ContractError, semver, terms_hash_of};

/// A contract version as stored in audit bundles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractSnapshot {
    /// `<workspaceId>-<contractVersion>`.
    pub contract_id: String,
    /// Version.
    pub contract_version: String,
    /// Terms hash ("sha256:" + hex).
    pub contract_hash: String,
    /// Previous version's terms hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_contract_ref: Option<String>,
    /// The contract document.
    pub content: Value,
}

impl ContractSnapshot {
    /// Check that the content still matches the stored hash, id, version and
    /// link, and is a valid v2 contract.
    pub fn verify(&self) -> Result<Contract, ContractError> {
        let tampered = |message: String| ContractError::SnapshotTampered {
            contract_id: self.contract_id.clone(),
            message,
        };
        let actual = terms_hash_of(&self.content)?;
        if actual != self.contract_hash {
            return Err(tampered(format!(
                "content hashes to {actual}, the snapshot says {}",
                self.contract_hash
            )));
        }
        let c = Contract::from_value(self.content.clone())?;
        if c.contract_id() != self.contract_id
            || c.contract().contract_version != self.contract_version
        {
            return Err(tampered(format!(
                "content is {} but the snapshot says {} / {}",
                c.contract_id(),
                self.contract_id,
                self.contract_version
            )));
        }
        if c.contract().previous_contract_ref != self.previous_contract_ref {
            return Err(tampered(
                "previousContractRef differs from the content's".into(),
            ));
        }
        Ok(c)
    }
}

/// What is wrong with a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChainIssueKind {
    /// A snapshot's content no longer matches its hash (or is invalid).
    Tampered,
    /// A version of another workspace.
    WorkspaceMismatch,
    /// A version's previousContractRef does not match the version before it.
    BrokenLink,
    /// A version points at a hash no stored version has, and no earlier
    /// version is stored: the predecessor is missing.
    MissingVersion,
    /// Two versions claim the same predecessor, or the same version number
    /// has two different contents, or there are two first versions.
    Fork,
    /// Following previousContractRef loops.
    Cycle,
    /// A version is not greater than its predecessor's.
    VersionNotIncreasing,
}

/// One problem found in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainIssue {
    /// Kind.
    pub kind: ChainIssueKind,
    /// The version (contractId) concerned.
    pub contract_id: String,
    /// Explanation.
    pub message: String,
}

/// The result of verifying a workspace's chain of versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    /// No issue found.
    pub valid: bool,
    /// The versions, oldest first (by version number).
    pub versions: Vec<String>,
    /// Terms hash of the newest version.
    pub head: Option<String>,
    /// Every issue found.
    pub issues: Vec<ChainIssue>,
}

/// The stored versions of one workspace's contract.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractHistory {
    snapshots: Vec<ContractSnapshot>,
}

impl ContractHistory {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// From stored snapshots (any order).
    pub fn from_snapshots(snapshots: Vec<ContractSnapshot>) -> Self {
        ContractHistory { snapshots }
    }

    /// Add a contract version.
    pub fn push(&mut self, c: &Contract) {
        self.snapshots.push(c.snapshot());
    }

    /// Add a stored snapshot.
    pub fn push_snapshot(&mut self, s: ContractSnapshot) {
        self.snapshots.push(s);
    }

    /// From a JSON array whose items are stored snapshots (objects with
    /// `contractHash` and `content`) or contract documents.
    pub fn from_json_items(items: &Value) -> Result<Self, ContractError> {
        let Value::Array(items) = items else {
            return Err(ContractError::Migration {
                pointer: String::new(),
                message: "expected a JSON array of contracts or snapshots".into(),
            });
        };
        let mut h = ContractHistory::new();
        for (i, item) in items.iter().enumerate() {
            let at = |e: ContractError| match e {
                ContractError::Schema { violations } => ContractError::Schema {
                    violations: violations
                        .into_iter()
                        .map(|mut v| {
                            v.pointer = format!("/{i}{}", v.pointer);
                            v
                        })
                        .collect(),
                },
                other => other,
            };
            if item.get("contractHash").is_some() && item.get("content").is_some() {
                let s: ContractSnapshot =
                    serde_json::from_value(item.clone()).map_err(|e| ContractError::Migration {
                        pointer: format!("/{i}"),
                        message: format!("not a contract snapshot: {e}"),
                    })?;
                h.push_snapshot(s);
            } else {
                h.push(&Contract::from_value(item.clone()).map_err(at)?);
            }
        }
        Ok(h)
    }

    /// The snapshots.
    pub fn snapshots(&self) -> &[ContractSnapshot] {
        &self.snapshots
    }

    /// Verify the whole chain: every snapshot's integrity, one workspace,
    /// one first version, every link, increasing versions, no fork, no cycle.
    pub fn verify(&self) -> ChainReport {
        let mut issues = Vec::new();
        let mut issue = |kind, id: &str, message: String| {
            issues.push(ChainIssue {
                kind,
                contract_id: id.to_string(),
                message,
            })
        };
        // Integrity first; tampered snapshots take no further part.
        let mut good: Vec<(&ContractSnapshot, Contract)> = Vec::new();
        for s in &self.snapshots {
            match s.verify() {
                Ok(c) => good.push((s, c)),
                Err(e) => issue(ChainIssueKind::Tampered, &s.contract_id, e.to_string()),
            }
        }
        good.sort_by_key(|(_, c)| semver(&c.contract().contract_version));
        if let Some((_, first)) = good.first() {
            let ws = first.contract().workspace_id.clone();
            for (s, c) in &good {
                if c.contract().workspace_id != ws {
                    issue(
                        ChainIssueKind::WorkspaceMismatch,
                        &s.contract_id,
                        format!(
                            "belongs to workspace {}, not {ws}",
                            c.contract().workspace_id
                        ),
                    );
                }
            }
        }
        let by_hash: BTreeMap<&str, &Contract> = good
            .iter()
            .map(|(s, c)| (s.contract_hash.as_str(), c))
            .collect();
        // Same version twice with different terms.
        let mut seen_versions: BTreeMap<&str, &str> = BTreeMap::new();
        for (s, c) in &good {
            let v = c.contract().contract_version.as_str();
            match seen_versions.get(v) {
                Some(h) if *h != s.contract_hash => issue(
                    ChainIssueKind::Fork,
                    &s.contract_id,
                    format!("version {v} is stored twice with different terms"),
                ),
                _ => {
                    seen_versions.insert(v, &s.contract_hash);
                }
            }
        }
        // Links.
        let mut children: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut roots = Vec::new();
        for (idx, (s, c)) in good.iter().enumerate() {
            match c.contract().previous_contract_ref.as_deref() {
                None => roots.push(s.contract_id.as_str()),
                Some(prev) => match by_hash.get(prev) {
                    Some(p) => {
                        children.entry(prev).or_default().push(&s.contract_id);
                        if semver(&p.contract().contract_version)
                            >= semver(&c.contract().contract_version)
                        {
                            issue(
                                ChainIssueKind::VersionNotIncreasing,
                                &s.contract_id,
                                format!(
                                    "version {} follows {} but is not greater",
                                    c.contract().contract_version,
                                    p.contract().contract_version
                                ),
                            );
                        }
                    }
                    None if idx == 0 => issue(
                        ChainIssueKind::MissingVersion,
                        &s.contract_id,
                        format!("its predecessor {prev} is not stored"),
                    ),
                    None => issue(
                        ChainIssueKind::BrokenLink,
                        &s.contract_id,
                        format!(
                            "previousContractRef {prev} matches no stored version (the version before it is {})",
                            good.get(idx - 1)
                                .map_or("", |(p, _)| p.contract_id.as_str())
                        ),
                    ),
                },
            }
        }
        if roots.len() > 1 {
            for r in roots.iter().skip(1) {
                issue(
                    ChainIssueKind::Fork,
                    r,
                    format!(
                        "a second first version (besides {})",
                        roots.first().copied().unwrap_or("")
                    ),
                );
            }
        }
        for (prev, kids) in &children {
            if kids.len() > 1 {
                for k in kids.iter().skip(1) {
                    issue(
                        ChainIssueKind::Fork,
                        k,
                        format!(
                            "shares its predecessor {prev} with {}",
                            kids.first().copied().unwrap_or("")
                        ),
                    );
                }
            }
        }
        // Cycles: follow links from every version.
        let mut reported: BTreeSet<&str> = BTreeSet::new();
        for (s, _) in &good {
            let mut visited: BTreeSet<&str> = BTreeSet::new();
            let mut cur = s.contract_hash.as_str();
            while let Some(c) = by_hash.get(cur) {
                if !visited.insert(cur) {
                    if reported.insert(cur) {
                        issue(
                            ChainIssueKind::Cycle,
                            &c.contract_id(),
                            "following previousContractRef comes back to this version".into(),
                        );
                    }
                    break;
                }
                match c.contract().previous_contract_ref.as_deref() {
                    Some(p) => cur = p,
                    None => break,
                }
            }
        }
        ChainReport {
            valid: issues.is_empty(),
            versions: good.iter().map(|(s, _)| s.contract_id.clone()).collect(),
            head: good.last().map(|(s, _)| s.contract_hash.clone()),
            issues,
        }
    }
}
