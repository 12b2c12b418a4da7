//! Agent runs and their model usage, priced from a host's price table.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UsageError;
use super::money::{NANOS_PER_USD, Usd};
use crate::jcs;
use crate::time::Timestamp;

/// One model call of an agent run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelUsage {
    /// Model id, as in the price table.
    pub model_id: String,
    /// Provider (openai, anthropic, ...).
    pub provider: String,
    /// `sha256:` of the RFC 8785 form of the prompt messages.
    #[schemars(pattern(r"^sha256:[a-f0-9]{64}$"))]
    pub prompt_hash: String,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// inputTokens + outputTokens.
    pub total_tokens: u64,
    /// Cost in US dollars (exact decimal).
    pub cost_usd: Usd,
    /// When the call was made (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub timestamp: String,
}

/// Kind of agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum AgentType {
    Research,
    Planner,
    Creative,
    Automation,
    Legal,
    Publisher,
}

impl AgentType {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentType::Research => "research",
            AgentType::Planner => "planner",
            AgentType::Creative => "creative",
            AgentType::Automation => "automation",
            AgentType::Legal => "legal",
            AgentType::Publisher => "publisher",
        }
    }
}

/// State of an agent run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum AgentRunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl AgentRunStatus {
    /// The serialized name (`"completed"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AgentRunStatus::Pending => "pending",
            AgentRunStatus::Running => "running",
            AgentRunStatus::Completed => "completed",
            AgentRunStatus::Failed => "failed",
            AgentRunStatus::Cancelled => "cancelled",
        }
    }
}

/// One agent execution with its model usage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentRun {
    /// Job id (unique per workspace).
    pub job_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Kind of agent.
    pub agent_type: AgentType,
    /// State.
    pub status: AgentRunStatus,
    /// `sha256:` of the RFC 8785 form of the job's input.
    #[schemars(pattern(r"^sha256:[a-f0-9]{64}$"))]
    pub input_hash: String,
    /// `sha256:` of its output (a completed run has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[a-f0-9]{64}$"))]
    pub output_hash: Option<String>,
    /// The model calls, in order.
    #[serde(default)]
    pub model_usage: Vec<ModelUsage>,
    /// Start (RFC 3339).
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    /// End (RFC 3339), once finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: Option<String>,
}

fn is_ref(s: &str) -> bool {
    crate::jcs::is_sha256_ref(s)
}

impl AgentRun {
    /// Parse JSON text and [`check`](Self::check) it; errors name the field
    /// by JSON pointer.
    pub fn from_json(text: &str) -> Result<AgentRun, UsageError> {
        let run: AgentRun = crate::jcs::parse_typed(text)
            .map_err(|(pointer, message)| UsageError::InvalidInput { pointer, message })?;
        run.check()?;
        Ok(run)
    }

    /// The run with every timestamp in the canonical UTC spelling
    /// ([`crate::time::Timestamp::to_rfc3339`]), as it enters a bundle's
    /// hash: one instant, one spelling. A timestamp that does not parse
    /// is left as it is (`check` refuses it).
    pub fn with_canonical_times(mut self) -> AgentRun {
        let canon = |s: &mut String| {
            if let Some(t) = Timestamp::parse(s) {
                *s = t.to_rfc3339();
            }
        };
        canon(&mut self.started_at);
        if let Some(f) = self.finished_at.as_mut() {
            canon(f);
        }
        for u in &mut self.model_usage {
            canon(&mut u.timestamp);
        }
        self
    }

    /// Check the run's invariants; errors name the field by JSON pointer
    /// (relative to the run).
    pub fn check(&self) -> Result<(), UsageError> {
        let bad = |pointer: &str, message: String| UsageError::InvalidInput {
            pointer: pointer.to_string(),
            message,
        };
        if self.job_id.is_empty() || self.job_id.len() > 256 {
            return Err(bad("/jobId", "must be 1 to 256 characters".into()));
        }
        if self.workspace_id.is_empty() {
            return Err(bad("/workspaceId", "must not be empty".into()));
        }
        if !is_ref(&self.input_hash) {
            return Err(bad(
                "/inputHash",
                "must be sha256: + 64 lowercase hex".into(),
            ));
        }
        if let Some(h) = &self.output_hash
            && !is_ref(h)
        {
            return Err(bad(
                "/outputHash",
                "must be sha256: + 64 lowercase hex".into(),
            ));
        }
        let started = Timestamp::parse(&self.started_at).ok_or_else(|| {
            bad(
                "/startedAt",
                format!("{:?} is not RFC 3339", self.started_at),
            )
        })?;
        let finished = match &self.finished_at {
            None => None,
            Some(f) => Some(
                Timestamp::parse(f)
                    .ok_or_else(|| bad("/finishedAt", format!("{f:?} is not RFC 3339")))?,
            ),
        };
        if let Some(f) = finished
            && f < started
        {
            return Err(bad("/finishedAt", "is before startedAt".into()));
        }
        let finished_states = matches!(
            self.status,
            AgentRunStatus::Completed | AgentRunStatus::Failed | AgentRunStatus::Cancelled
        );
        if finished_states != finished.is_some() {
            return Err(bad(
                "/finishedAt",
                "a completed, failed or cancelled run has finishedAt; a pending or running one has none".into(),
            ));
        }
        if self.status == AgentRunStatus::Completed && self.output_hash.is_none() {
            return Err(bad(
                "/outputHash",
                "a completed run has an output hash".into(),
            ));
        }
        for (i, u) in self.model_usage.iter().enumerate() {
            let at = |f: &str| format!("/modelUsage/{i}/{f}");
            if u.model_id.is_empty() {
                return Err(bad(&at("modelId"), "must not be empty".into()));
            }
            if !is_ref(&u.prompt_hash) {
                return Err(bad(
                    &at("promptHash"),
                    "must be sha256: + 64 lowercase hex (the full digest)".into(),
                ));
            }
            if u.input_tokens.checked_add(u.output_tokens) != Some(u.total_tokens) {
                return Err(bad(
                    &at("totalTokens"),
                    "must be inputTokens + outputTokens".into(),
                ));
            }
            let t = Timestamp::parse(&u.timestamp).ok_or_else(|| {
                bad(
                    &at("timestamp"),
                    format!("{:?} is not RFC 3339", u.timestamp),
                )
            })?;
            if t < started || finished.is_some_and(|f| t > f) {
                return Err(bad(&at("timestamp"), "is outside the run".into()));
            }
        }
        Ok(())
    }

    /// Tokens of all model calls.
    pub fn total_tokens(&self) -> u64 {
        self.model_usage
            .iter()
            .map(|u| u.total_tokens)
            .fold(0, u64::saturating_add)
    }

    /// Cost of all model calls (exact); `None` on overflow.
    pub fn total_cost(&self) -> Option<Usd> {
        self.model_usage
            .iter()
            .try_fold(Usd::ZERO, |a, u| a.checked_add(u.cost_usd))
    }
}

/// The price of one model, per million tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelPrice {
    /// Provider.
    pub provider: String,
    /// Dollars per million input tokens.
    pub input_per_million: Usd,
    /// Dollars per million output tokens.
    pub output_per_million: Usd,
}

/// The host's prices (`examples/prices.example.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceTable {
    /// Always USD.
    pub currency: String,
    /// Prices by model id.
    pub models: BTreeMap<String, ModelPrice>,
}

impl PriceTable {
    /// Parse and check a table.
    pub fn from_json(text: &str) -> Result<PriceTable, UsageError> {
        let t: PriceTable = crate::jcs::parse_typed(text)
            .map_err(|(pointer, message)| UsageError::InvalidInput { pointer, message })?;
        if t.currency != "USD" {
            return Err(UsageError::InvalidInput {
                pointer: "/currency".into(),
                message: format!("prices are in USD (got {:?})", t.currency),
            });
        }
        Ok(t)
    }

    /// The cost of a call: `(in × inPrice + out × outPrice) / 1,000,000`,
    /// rounded half up to the nano-dollar (one rounding, on the sum).
    pub fn cost(
        &self,
        model_id: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> Result<Usd, UsageError> {
        let p = self
            .models
            .get(model_id)
            .ok_or_else(|| UsageError::UnknownModel {
                model_id: model_id.to_string(),
            })?;
        let num = u128::from(input_tokens) * u128::from(p.input_per_million.nanos())
            + u128::from(output_tokens) * u128::from(p.output_per_million.nanos());
        let nanos = (num + 500_000) / 1_000_000;
        u64::try_from(nanos)
            .map(Usd::from_nanos)
            .map_err(|_| UsageError::Overflow {
                what: "the cost of a call".into(),
            })
    }
}

/// `sha256:` of the RFC 8785 form of the prompt messages (the full digest,
/// not the original's 16 hex characters).
pub fn prompt_hash(messages: &Value) -> Result<String, UsageError> {
    let c = jcs::canonicalize_value(messages).map_err(|e| UsageError::InvalidInput {
        pointer: format!("/messages{}", e.pointer().unwrap_or("")),
        message: e.to_string(),
    })?;
    Ok(jcs::sha256_ref_of_canonical(&c))
}

/// A priced usage record for one model call.
pub fn price_usage(
    table: &PriceTable,
    model_id: &str,
    messages: &Value,
    input_tokens: u64,
    output_tokens: u64,
    timestamp: Timestamp,
) -> Result<ModelUsage, UsageError> {
    let total = input_tokens
        .checked_add(output_tokens)
        .ok_or_else(|| UsageError::Overflow {
            what: "the tokens of a call".into(),
        })?;
    let provider = table
        .models
        .get(model_id)
        .map(|p| p.provider.clone())
        .unwrap_or_default();
    Ok(ModelUsage {
        model_id: model_id.to_string(),
        provider,
        prompt_hash: prompt_hash(messages)?,
        input_tokens,
        output_tokens,
        total_tokens: total,
        cost_usd: table.cost(model_id, input_tokens, output_tokens)?,
        timestamp: timestamp.to_string(),
    })
}

/// Nano-dollars in a dollar, for converting ledger units.
pub const COST_UNITS_PER_USD: u64 = NANOS_PER_USD;
