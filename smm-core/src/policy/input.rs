//! The policy input: a typed document with a generated schema
//! (`schemas/policy-input.schema.json`). An input that breaks it is a
//! [`PolicyError::InvalidInput`] naming the field by JSON pointer, never a
//! silent deny.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

use super::PolicyError;
use crate::contract::{Contract, Platform, WorkspaceContract};
use crate::sim::SimulationSummary;
use crate::time::Timestamp;

/// Everything the policies read: the document of a [`PolicyInput`]
/// (`schemas/policy-input.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "PolicyInput")]
pub struct PolicyDocument {
    /// The workspace contract (schema v2), as it is.
    pub workspace: WorkspaceContract,
    /// The campaign's steps (at most
    /// [`crate::limits::MAX_CAMPAIGN_STEPS`]).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub workflow: Vec<WorkflowStep>,
    /// What the workspace has spent so far.
    pub current_spend: CurrentSpend,
    /// The simulation report's summary.
    pub simulation: SimulationSummary,
    /// The agent output to check for hallucination, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_output: Option<AgentOutput>,
    /// Model-usage quota figures from the usage ledger.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotas: Vec<QuotaFigure>,
    /// "Now" for every time rule (RFC 3339): policies never read the clock.
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
}

/// Kind of workflow step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum StepType {
    Research,
    Planner,
    Creative,
    Render,
    Validation,
    Legal,
    Automation,
    Publish,
}

/// One campaign step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowStep {
    /// Step id (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Kind of step.
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Estimated cost (>= 0) in `currency`.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub estimated_cost: f64,
    /// ISO 4217 code; must be the workspace's currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[A-Z]{3}$"))]
    pub currency: Option<String>,
    /// What the step does that policies care about.
    #[serde(default, skip_serializing_if = "StepFlags::is_empty")]
    pub flags: StepFlags,
}

/// Flags of a step. Every flag defaults to false / empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StepFlags {
    /// Generates a synthetic voice (needs a voice_likeness consent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub uses_synthetic_voice: bool,
    /// The voice model, `<grantedBy>-...` (e.g. `user-123-voice-v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice_model: Option<String>,
    /// Uses user-generated content (needs a ugc_license consent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub uses_ugc_content: bool,
    /// Uses a celebrity's likeness (needs a celebrity_release consent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub uses_celebrity_likeness: bool,
    /// Makes legal claims (legal review when the contract asks for it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub contains_legal_claims: bool,
    /// Target channels of a publish step.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<Platform>,
    /// Posts per hour of a publish step (per channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub posts_per_hour: Option<f64>,
    /// Topics of the content.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content_topics: Vec<String>,
    /// The output is publicly visible.
    #[serde(default, skip_serializing_if = "is_false")]
    pub public_visibility: bool,
    /// The step includes customer data.
    #[serde(default, skip_serializing_if = "is_false")]
    pub includes_customer_data: bool,
    /// The step processes personal data (needs a data_processing consent).
    #[serde(default, skip_serializing_if = "is_false")]
    pub processes_personal_data: bool,
    /// The step calls external APIs.
    #[serde(default, skip_serializing_if = "is_false")]
    pub calls_external_apis: bool,
    /// Those calls were approved.
    #[serde(default, skip_serializing_if = "is_false")]
    pub api_calls_approved: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl StepFlags {
    fn is_empty(&self) -> bool {
        *self == StepFlags::default()
    }
}

/// Spend so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CurrentSpend {
    /// Spent this week (>= 0).
    #[schemars(range(min = 0))]
    pub this_week: f64,
    /// Spent in total (>= 0).
    #[schemars(range(min = 0))]
    pub total: f64,
    /// ISO 4217 code.
    #[schemars(pattern(r"^[A-Z]{3}$"))]
    pub currency: String,
}

/// An agent's output, for the hallucination rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentOutput {
    /// The agent's confidence in [0, 1].
    #[schemars(range(min = 0, max = 1))]
    pub confidence_score: f64,
    /// Retrieval confirmed the output.
    #[serde(default)]
    pub verified: bool,
    /// The sources cited (ids or URLs).
    #[serde(default)]
    pub citations: Vec<String>,
}

/// One quota as the usage ledger reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaFigure {
    /// tokens, cost_usd, or a custom kind.
    #[schemars(length(min = 1))]
    pub kind: String,
    /// day, month or total.
    pub period: String,
    /// The limit (>= 0).
    #[schemars(range(min = 0))]
    pub limit: f64,
    /// Used in the current period (>= 0).
    #[schemars(range(min = 0))]
    pub used: f64,
}

fn invalid(pointer: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::InvalidInput {
        pointer: pointer.into(),
        message: message.into(),
    }
}

/// A validated policy input, ready to evaluate: its document, its RFC 8785
/// form (what the evaluation id hashes) and the engine's value of it, all
/// made once here, so evaluating it on many bundles, or many times, does
/// not convert it again.
#[derive(Debug, Clone)]
pub struct PolicyInput {
    document: PolicyDocument,
    canonical: Arc<[u8]>,
    value: regorus::Value,
}

impl PartialEq for PolicyInput {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl PolicyInput {
    /// Parse and validate JSON text.
    pub fn from_json(text: &str) -> Result<PolicyInput, PolicyError> {
        let checked = crate::jcs::canonicalize(text.as_bytes())
            .map_err(|e| invalid(e.pointer().unwrap_or(""), e.to_string()))?;
        let value: Value =
            serde_json::from_slice(&checked).map_err(|e| invalid("", e.to_string()))?;
        Self::from_value(&value)
    }

    /// Validate a JSON value.
    pub fn from_value(value: &Value) -> Result<PolicyInput, PolicyError> {
        let Some(obj) = value.as_object() else {
            return Err(invalid("", "the policy input must be a JSON object"));
        };
        // The contract through its own schema first: its violations carry
        // precise pointers.
        if let Some(ws) = obj.get("workspace") {
            check_contract(ws)?;
        }
        let document: PolicyDocument = serde_path_to_error::deserialize(value).map_err(|e| {
            let pointer = crate::jcs::path_pointer(&e);
            invalid(pointer, e.inner().to_string())
        })?;
        Self::prepare(document)
    }

    /// Validate the rest of a policy input around a contract that is
    /// already validated: `rest` is the input without its `workspace`
    /// (which comes from `contract`, not validated again). The result is
    /// the one [`PolicyInput::from_value`] gives for the whole document,
    /// without the contract's schema check (most of the cost of a prepared
    /// input).
    pub fn with_contract(contract: &Contract, rest: &Value) -> Result<PolicyInput, PolicyError> {
        let Some(obj) = rest.as_object() else {
            return Err(invalid("", "the policy input must be a JSON object"));
        };
        if obj.contains_key("workspace") {
            return Err(invalid(
                "/workspace",
                "give the workspace either in the document or as the contract, not both",
            ));
        }
        let mut whole = obj.clone();
        let ws = serde_json::to_value(contract.contract())
            .map_err(|e| invalid("/workspace", e.to_string()))?;
        whole.insert("workspace".into(), ws);
        let whole = Value::Object(whole);
        let document: PolicyDocument = serde_path_to_error::deserialize(&whole).map_err(|e| {
            let pointer = crate::jcs::path_pointer(&e);
            invalid(pointer, e.inner().to_string())
        })?;
        Self::prepare(document)
    }

    /// Validate a typed document (the contract against its schema too).
    pub fn new(document: PolicyDocument) -> Result<PolicyInput, PolicyError> {
        let ws = serde_json::to_value(&document.workspace)
            .map_err(|e| invalid("/workspace", e.to_string()))?;
        check_contract(&ws)?;
        Self::prepare(document)
    }

    fn prepare(mut document: PolicyDocument) -> Result<PolicyInput, PolicyError> {
        document.check()?;
        // One instant, one spelling (the evaluation id hashes the input).
        if let Some(t) = Timestamp::parse(&document.timestamp) {
            document.timestamp = t.to_rfc3339();
        }
        let bytes = serde_json::to_vec(&document).map_err(|e| invalid("", e.to_string()))?;
        let canonical = crate::jcs::canonicalize(&bytes)
            .map_err(|e| invalid(e.pointer().unwrap_or(""), e.to_string()))?;
        let value: regorus::Value =
            serde_json::from_slice(&canonical).map_err(|e| invalid("", e.to_string()))?;
        Ok(PolicyInput {
            document,
            canonical: canonical.into(),
            value,
        })
    }

    /// The typed document.
    pub fn document(&self) -> &PolicyDocument {
        &self.document
    }

    /// The document as the policies see it (defaults filled in), as JSON.
    pub fn to_value(&self) -> Result<Value, PolicyError> {
        // The canonical bytes were made from this document: a failure is ours.
        serde_json::from_slice(&self.canonical).map_err(|e| PolicyError::Internal {
            message: format!("the canonical policy input does not parse back: {e}"),
        })
    }

    /// Its RFC 8785 form.
    pub fn canonical_json(&self) -> &[u8] {
        &self.canonical
    }

    /// The engine's value of the document.
    pub(crate) fn engine_value(&self) -> &regorus::Value {
        &self.value
    }
}

/// A time the policies compare: Rego's `time.parse_rfc3339_ns` must read
/// it (chrono's RFC 3339 parser, the one regorus calls) into nanoseconds
/// since 1970 in 64 bits, 1677-09-21 to 2262-04-11. Outside that, the
/// engine cannot compare it: regorus's interpreter fails the decision and
/// its VM leaves the rule undefined, which decided, say, a consent valid
/// until 2999 as expired; such an input is refused here instead, naming
/// the field.
fn policy_time(pointer: String, text: &str) -> Result<(), PolicyError> {
    match rfc3339_ns(text) {
        Err(EngineTime::Unparsable(e)) => Err(invalid(
            pointer,
            format!("{text:?} is not an RFC 3339 date-time the policy engine reads: {e}"),
        )),
        Err(EngineTime::OutOfRange) => Err(invalid(
            pointer,
            format!(
                "{text:?} is outside the instants the policies can compare (nanoseconds since \
                 1970 in 64 bits: 1677-09-21T00:12:43.145224192Z to \
                 2262-04-11T23:47:16.854775807Z)"
            ),
        )),
        Ok(_) => Ok(()),
    }
}

/// Why a time is not one the policy engine can compare.
#[derive(Debug)]
pub(crate) enum EngineTime {
    /// Not RFC 3339 as chrono reads it.
    Unparsable(chrono::ParseError),
    /// Outside the nanoseconds since 1970 that fit in 64 bits.
    OutOfRange,
}

/// Nanoseconds since 1970 of an RFC 3339 time, computed as regorus's
/// `time.parse_rfc3339_ns` computes them (the same chrono call): the one
/// reading shared by validation ([`PolicyDocument::check`]) and the native
/// evaluator.
pub(crate) fn rfc3339_ns(text: &str) -> Result<i64, EngineTime> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map_err(EngineTime::Unparsable)?
        .timestamp_nanos_opt()
        .ok_or(EngineTime::OutOfRange)
}

fn check_contract(ws: &Value) -> Result<(), PolicyError> {
    Contract::from_value(ws.clone()).map(|_| ()).map_err(|e| {
        invalid(
            format!("/workspace{}", e.pointer().unwrap_or("")),
            e.to_string(),
        )
    })
}

impl PolicyDocument {
    /// Check what the schema types cannot say (times, amounts, ranges).
    pub fn check(&self) -> Result<(), PolicyError> {
        let Some(now) = Timestamp::parse(&self.timestamp) else {
            return Err(invalid(
                "/timestamp",
                format!("{:?} is not an RFC 3339 date-time", self.timestamp),
            ));
        };
        // Every time a policy compares, as the engine will read it (the
        // timestamp in the spelling the policies see).
        policy_time("/timestamp".into(), &now.to_rfc3339())?;
        let ws = &self.workspace;
        policy_time("/workspace/createdAt".into(), &ws.created_at)?;
        if let Some(t) = &ws.effective_from {
            policy_time("/workspace/effectiveFrom".into(), t)?;
        }
        if let Some(t) = &ws.effective_to {
            policy_time("/workspace/effectiveTo".into(), t)?;
        }
        for (i, c) in ws.consent_records.iter().flatten().enumerate() {
            policy_time(
                format!("/workspace/consentRecords/{i}/expiresAt"),
                &c.expires_at,
            )?;
        }
        for (i, c) in ws.connectors.iter().flatten().enumerate() {
            if let Some(t) = &c.last_connected_at {
                policy_time(format!("/workspace/connectors/{i}/lastConnectedAt"), t)?;
            }
        }
        let amount = |pointer: String, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    pointer,
                    format!("must be a finite amount >= 0 (got {v})"),
                ))
            }
        };
        let currency = |pointer: String, c: &str| {
            if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(())
            } else {
                Err(invalid(pointer, format!("{c:?} is not an ISO 4217 code")))
            }
        };
        if self.workflow.len() > crate::limits::MAX_CAMPAIGN_STEPS {
            return Err(invalid(
                "/workflow",
                format!(
                    "{} steps: a campaign has at most {} (split it into several campaigns)",
                    self.workflow.len(),
                    crate::limits::MAX_CAMPAIGN_STEPS
                ),
            ));
        }
        for (i, s) in self.workflow.iter().enumerate() {
            amount(format!("/workflow/{i}/estimatedCost"), s.estimated_cost)?;
            if let Some(c) = &s.currency {
                currency(format!("/workflow/{i}/currency"), c)?;
            }
            if let Some(r) = s.flags.posts_per_hour {
                amount(format!("/workflow/{i}/flags/postsPerHour"), r)?;
            }
        }
        amount(
            "/currentSpend/thisWeek".into(),
            self.current_spend.this_week,
        )?;
        amount("/currentSpend/total".into(), self.current_spend.total)?;
        currency(
            "/currentSpend/currency".into(),
            &self.current_spend.currency,
        )?;
        let s = &self.simulation;
        for (name, v) in [
            ("policyPassPct", s.policy_pass_pct),
            ("citationCoverage", s.citation_coverage),
            ("duplicationRisk", s.duplication_risk),
            ("technicalReadiness", s.technical_readiness),
            ("readinessScore/mean", s.readiness_score.mean),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(invalid(
                    format!("/simulation/{name}"),
                    format!("must be within [0, 1] (got {v})"),
                ));
            }
        }
        amount("/simulation/costEstimateUSD".into(), s.cost_estimate_usd)?;
        if let Some(o) = &self.agent_output
            && !(0.0..=1.0).contains(&o.confidence_score)
        {
            return Err(invalid(
                "/agentOutput/confidenceScore",
                format!("must be within [0, 1] (got {})", o.confidence_score),
            ));
        }
        for (i, q) in self.quotas.iter().enumerate() {
            amount(format!("/quotas/{i}/limit"), q.limit)?;
            amount(format!("/quotas/{i}/used"), q.used)?;
            if q.kind.is_empty() {
                return Err(invalid(format!("/quotas/{i}/kind"), "must not be empty"));
            }
            if !matches!(q.period.as_str(), "day" | "month" | "total") {
                return Err(invalid(
                    format!("/quotas/{i}/period"),
                    format!("must be day, month or total (got {:?})", q.period),
                ));
            }
        }
        Ok(())
    }
}
