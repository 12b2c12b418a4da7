//! Simulation input: the workspace context, the workflow and the run
//! configuration, in the camelCase JSON shape of the original system's
//! `simulationInput`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SimulationError;

/// Largest accepted `iterations` in any mode.
pub const MAX_ITERATIONS: u64 = 10_000_000_000;
/// Largest accepted `iterations` when percentiles are exact (every sample is
/// kept: 56 bytes per iteration, 5.6 GB at this limit).
pub const MAX_EXACT_ITERATIONS: u64 = 100_000_000;
/// In [`PercentileMode::Auto`], runs up to this many iterations keep exact
/// percentiles; longer runs use the bounded-memory histogram.
pub const AUTO_EXACT_LIMIT: u64 = 10_000_000;
/// Largest accepted `retryPolicy.maxRetries`.
pub const MAX_RETRIES: u32 = 100;
/// Largest accepted `confidenceLevel` (its normal quantile, about 6.1, must
/// stay finite: 0.9999999999999999 would give an infinite interval).
pub const MAX_CONFIDENCE_LEVEL: f64 = 0.999_999_999;

/// One simulation request: `{workspaceId?, workspaceContext, workflowJson?, simulationConfig?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationRequest {
    /// Workspace id (informational; falls back to `workspaceContext.workspaceId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// The part of the workspace contract the model reads.
    pub workspace_context: WorkspaceContext,
    /// The campaign workflow (a DAG of nodes). Optional.
    #[serde(
        default,
        rename = "workflowJson",
        skip_serializing_if = "Option::is_none"
    )]
    pub workflow: Option<Workflow>,
    /// Run configuration.
    #[serde(default, rename = "simulationConfig")]
    pub config: SimulationConfig,
}

/// The fields of a workspace contract that the readiness model reads.
///
/// Other contract fields (goals, approvalPolicy, connectors, ...) are accepted
/// and ignored, so a whole contract can be passed as the context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceContext {
    /// Workspace id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// low | medium | high | enterprise. Absent means medium.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_profile: Option<String>,
    /// Platform names (linkedin, x, instagram, facebook, youtube, tiktok; any
    /// other name uses the "other" rate limit). At least one.
    pub primary_channels: Vec<String>,
    /// Budget.
    pub budget: Budget,
}

/// Budget of a workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Budget {
    /// ISO 4217 currency (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Weekly cap (informational for the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly_cap: Option<f64>,
    /// Hard cap; costRisk = min(1, cost / hardCap). Must be > 0.
    pub hard_cap: f64,
    /// Planned spend per item; their sum is the cost model's base.
    pub breakdown: BudgetBreakdown,
}

/// Planned spend per budget item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BudgetBreakdown {
    /// Paid ads.
    pub paid_ads: f64,
    /// LLM model spend.
    pub llm_model_spend: f64,
    /// Rendering.
    pub rendering: f64,
    /// Third-party services.
    pub third_party_services: f64,
}

/// A campaign workflow: a DAG of nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Workflow {
    /// Workflow format version (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The nodes, in any order.
    pub nodes: Vec<WorkflowNode>,
}

/// One workflow step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowNode {
    /// Unique, non-empty id.
    pub id: String,
    /// Node type (agent, validation, render, automation, ...); informational.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub node_type: Option<String>,
    /// Free-form parameters; not read by the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Ids of the nodes that must finish first.
    #[serde(default)]
    pub dependencies: Vec<String>,
    /// Expected duration in milliseconds (>= 0).
    pub estimated_duration: f64,
    /// Probability in [0, 1] that one attempt fails.
    pub failure_rate: f64,
    /// Retries after a failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
}

/// How a failed node is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first attempt (at most [`MAX_RETRIES`]).
    pub max_retries: u32,
    /// Wait before each retry, in milliseconds (>= 0).
    #[serde(default)]
    pub backoff_ms: f64,
}

/// How percentiles are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PercentileMode {
    /// Exact up to [`AUTO_EXACT_LIMIT`] iterations, bounded above.
    #[default]
    Auto,
    /// Keep every sample; exact type-7 percentiles (up to [`MAX_EXACT_ITERATIONS`]).
    Exact,
    /// Fixed-memory log-linear histogram; see [`crate::sim::BOUNDED_RELATIVE_ERROR`].
    Bounded,
}

/// Run configuration (`simulationConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationConfig {
    /// Iterations, 1 ..= [`MAX_ITERATIONS`] (exact mode: ..= [`MAX_EXACT_ITERATIONS`]).
    #[serde(default = "default_iterations")]
    pub iterations: u64,
    /// Seed of the run. Every value, including 0, is a distinct seed.
    #[serde(default = "default_seed")]
    pub random_seed: u64,
    /// Level of the confidence interval for each mean, strictly in (0, 1).
    #[serde(default = "default_confidence")]
    pub confidence_level: f64,
    /// Convergence threshold on the readiness mean (last 50 vs previous 50).
    #[serde(default = "default_threshold")]
    pub convergence_threshold: f64,
    /// Stop at the first block boundary where the readiness series has converged.
    #[serde(default)]
    pub enable_early_termination: bool,
    /// Exact or bounded-memory percentiles.
    #[serde(default)]
    pub percentile_mode: PercentileMode,
    /// Time limit of the run, in seconds (1 ..= a week): a run still going
    /// at the limit stops at the next block boundary with
    /// [`SimulationError::Timeout`] (no report). It never changes a result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// The original system's parallel batches: the number of worker threads
    /// when the caller does not choose one (1 ..= 1024). Results never
    /// depend on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_batches: Option<u64>,
}

fn default_iterations() -> u64 {
    1000
}
fn default_seed() -> u64 {
    42
}
fn default_confidence() -> f64 {
    0.95
}
fn default_threshold() -> f64 {
    0.001
}

impl Default for SimulationConfig {
    fn default() -> Self {
        SimulationConfig {
            iterations: default_iterations(),
            random_seed: default_seed(),
            confidence_level: default_confidence(),
            convergence_threshold: default_threshold(),
            enable_early_termination: false,
            percentile_mode: PercentileMode::Auto,
            timeout_seconds: None,
            parallel_batches: None,
        }
    }
}

impl SimulationConfig {
    /// Whether this run keeps every sample (exact percentiles).
    pub fn exact_percentiles(&self) -> bool {
        match self.percentile_mode {
            PercentileMode::Exact => true,
            PercentileMode::Bounded => false,
            PercentileMode::Auto => self.iterations <= AUTO_EXACT_LIMIT,
        }
    }
}

impl SimulationRequest {
    /// Parse a request from JSON text. Errors name the field by JSON pointer.
    pub fn from_json(text: &str) -> Result<Self, SimulationError> {
        crate::limits::check_document_len(text.len()).map_err(|message| {
            SimulationError::Parse {
                pointer: String::new(),
                message,
            }
        })?;
        let mut de = serde_json::Deserializer::from_str(text);
        let req: Self = serde_path_to_error::deserialize(&mut de).map_err(path_error)?;
        de.end().map_err(|e| SimulationError::Parse {
            pointer: String::new(),
            message: e.to_string(),
        })?;
        Ok(req)
    }

    /// Convert an already-parsed JSON value. Errors name the field by JSON pointer.
    pub fn from_value(value: &serde_json::Value) -> Result<Self, SimulationError> {
        serde_path_to_error::deserialize(value).map_err(path_error)
    }

    /// Serialize to compact JSON.
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl SimulationError {
    /// The JSON pointer of a `serde_path_to_error` path.
    pub fn from_path_error<E>(err: &serde_path_to_error::Error<E>) -> String {
        match path_error_ref(err) {
            SimulationError::Parse { pointer, .. } => pointer,
            _ => String::new(),
        }
    }
}

fn path_error_ref<E>(err: &serde_path_to_error::Error<E>) -> SimulationError {
    let mut pointer = String::new();
    for seg in err.path().iter() {
        use serde_path_to_error::Segment;
        match seg {
            Segment::Seq { index } => {
                pointer.push('/');
                pointer.push_str(&index.to_string());
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                pointer.push('/');
                pointer.push_str(&crate::error::escape_pointer_token(key));
            }
            Segment::Unknown => {}
        }
    }
    SimulationError::Parse {
        pointer,
        message: String::new(),
    }
}

/// Turn a serde error with its path into a [`SimulationError::Parse`] with a JSON pointer.
pub(crate) fn path_error<E: std::fmt::Display>(
    err: serde_path_to_error::Error<E>,
) -> SimulationError {
    SimulationError::Parse {
        pointer: SimulationError::from_path_error(&err),
        message: err.inner().to_string(),
    }
}
