//! Retention: from records with their creation times and the contract's
//! retention settings, a purge plan saying what to delete or anonymise and
//! when, with a deterministic hash so that the purge can be audited. A
//! legal hold blocks every purge.
//!
//! Rules: audit evidence (audit bundles, agent runs, model usage, ledger
//! entries, decision cards) is deleted `dataRetention.auditRetentionDays`
//! after it was created; workspace personal data (connector accounts,
//! consent grantors, brand material, agent inputs and outputs) is
//! anonymised once the workspace's time to live (`createdAt + ttlHours`)
//! has passed. Anything not yet due is kept, with its due date.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::UsageError;
use crate::contract::Contract;
use crate::jcs;
use crate::time::Timestamp;

/// The kinds of records a plan knows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum RecordKind {
    AuditBundle,
    AgentRun,
    ModelUsage,
    LedgerEntry,
    DecisionCard,
    Connector,
    ConsentRecord,
    BrandTwin,
    AgentData,
}

impl RecordKind {
    fn is_evidence(self) -> bool {
        matches!(
            self,
            RecordKind::AuditBundle
                | RecordKind::AgentRun
                | RecordKind::ModelUsage
                | RecordKind::LedgerEntry
                | RecordKind::DecisionCard
        )
    }
}

/// One record the host holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionRecord {
    /// The record's id in the host's store.
    pub id: String,
    /// Its kind.
    pub kind: RecordKind,
    /// When it was created (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
}

/// What to do with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetentionAction {
    /// Delete it now.
    Delete,
    /// Anonymise it now.
    Anonymise,
    /// Keep it until `dueAt`.
    Keep,
    /// A legal hold blocks its purge.
    Hold,
}

/// The plan for one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionItem {
    /// The record.
    pub id: String,
    /// Its kind.
    pub kind: RecordKind,
    /// What to do.
    pub action: RetentionAction,
    /// When its purge is (or was) due.
    pub due_at: String,
}

/// A purge plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetentionPlan {
    /// Workspace.
    pub workspace_id: String,
    /// When the plan was made.
    pub now: String,
    /// A legal hold blocks every purge.
    pub legal_hold: bool,
    /// Days audit evidence is kept.
    pub audit_retention_days: u32,
    /// When the workspace's time to live ends.
    pub ttl_expires_at: String,
    /// One item per record, sorted by (kind, id).
    pub items: Vec<RetentionItem>,
    /// `sha256:` of the RFC 8785 form of this plan without `planHash`.
    pub plan_hash: String,
}

impl RetentionPlan {
    /// Items to act on now (delete or anonymise).
    pub fn due(&self) -> impl Iterator<Item = &RetentionItem> {
        self.items.iter().filter(|i| {
            matches!(
                i.action,
                RetentionAction::Delete | RetentionAction::Anonymise
            )
        })
    }

    /// Check that `plan_hash` matches the plan (before applying it).
    pub fn verify(&self) -> Result<(), UsageError> {
        if plan_hash(self)? == self.plan_hash {
            Ok(())
        } else {
            Err(UsageError::InvalidInput {
                pointer: "/planHash".into(),
                message: "the plan does not match its hash".into(),
            })
        }
    }
}

fn plan_hash(p: &RetentionPlan) -> Result<String, UsageError> {
    let mut v = serde_json::to_value(p).map_err(|e| UsageError::InvalidInput {
        pointer: String::new(),
        message: e.to_string(),
    })?;
    if let Some(o) = v.as_object_mut() {
        o.remove("planHash");
    }
    let c = jcs::canonicalize_value(&v).map_err(|e| UsageError::InvalidInput {
        pointer: String::new(),
        message: e.to_string(),
    })?;
    Ok(jcs::sha256_ref_of_canonical(&c))
}

/// The purge plan of a workspace's records at `now`.
pub fn retention_plan(
    contract: &Contract,
    records: &[RetentionRecord],
    now: Timestamp,
    legal_hold: bool,
) -> Result<RetentionPlan, UsageError> {
    let bad = |pointer: String, message: String| UsageError::InvalidInput { pointer, message };
    let now_t = now;
    let c = contract.contract();
    let days = c
        .data_retention
        .as_ref()
        .map(|d| d.audit_retention_days)
        .or(c.audit.as_ref().map(|a| a.retention_days))
        .unwrap_or(crate::contract::DEFAULT_RETENTION_DAYS);
    if days < 30 {
        return Err(bad(
            "/dataRetention/auditRetentionDays".into(),
            "must be at least 30".into(),
        ));
    }
    let created = Timestamp::parse(&c.created_at)
        .ok_or_else(|| bad("/createdAt".into(), "is not RFC 3339".into()))?;
    let ttl_end = created.plus_seconds(
        i64::try_from(c.ttl_hours)
            .unwrap_or(i64::MAX / 7200)
            .saturating_mul(3600),
    );
    let mut items = Vec::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        let t = Timestamp::parse(&r.created_at).ok_or_else(|| {
            bad(
                format!("/records/{i}/createdAt"),
                format!("{:?} is not RFC 3339", r.created_at),
            )
        })?;
        let (due, action_when_due) = if r.kind.is_evidence() {
            (
                t.plus_seconds(i64::from(days) * 86_400),
                RetentionAction::Delete,
            )
        } else {
            (ttl_end.max(t), RetentionAction::Anonymise)
        };
        let action = if legal_hold {
            RetentionAction::Hold
        } else if due <= now_t {
            action_when_due
        } else {
            RetentionAction::Keep
        };
        items.push(RetentionItem {
            id: r.id.clone(),
            kind: r.kind,
            action,
            due_at: due.to_rfc3339(),
        });
    }
    items.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    let mut plan = RetentionPlan {
        workspace_id: c.workspace_id.clone(),
        now: now_t.to_rfc3339(),
        legal_hold,
        audit_retention_days: days,
        ttl_expires_at: ttl_end.to_rfc3339(),
        items,
        plan_hash: String::new(),
    };
    plan.plan_hash = plan_hash(&plan)?;
    Ok(plan)
}
