//! Simulation input: the workspace context, the workflow and the run
//! configuration, in the camelCase JSON shape of the original system's
//! `simulationInput`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SimulationError;

/// Largest accepted `iterations` in any mode.
pub const MAX_ITERATIONS: u64 = crate::limits::MAX_ITERATIONS;
/// Largest accepted `iterations` when percentiles are exact (every sample is
/// kept: 56 bytes per iteration, 5.6 GB at this limit).
pub const MAX_EXACT_ITERATIONS: u64 = crate::limits::MAX_EXACT_ITERATIONS;
/// In [`PercentileMode::Auto`], runs up to this many iterations keep exact
/// percentiles; longer runs use the bounded-memory histogram.
pub const AUTO_EXACT_LIMIT: u64 = 10_000_000;
/// Largest accepted `retryPolicy.maxRetries`.
pub const MAX_RETRIES: u32 = crate::limits::MAX_RETRIES;
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

/// The version of the readiness model a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum ModelVersion {
    /// The original model: the seasonal factor follows the iteration index
    /// (`i mod 365`), so consecutive samples are dependent. Kept so that
    /// its reports reproduce bit for bit.
    #[serde(rename = "smm-readiness-v1")]
    V1,
    /// The same formulas, with the day of the season drawn per iteration
    /// (uniform over 365 days, the first draw of an iteration): samples are
    /// independent, so confidence intervals are honest. The default.
    #[default]
    #[serde(rename = "smm-readiness-v2")]
    V2,
}

impl ModelVersion {
    /// The model id written in reports.
    pub fn id(self) -> &'static str {
        match self {
            ModelVersion::V1 => "smm-readiness-v1",
            ModelVersion::V2 => "smm-readiness-v2",
        }
    }
}

/// Which rule stops a run early (when `enableEarlyTermination` is on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum StoppingRule {
    /// Stop at the first block boundary, after `precision.minIterations`,
    /// where the confidence interval of the readiness mean (and of every
    /// metric named in `precision.metrics`) is at most its target
    /// half-width. The default of model v2.
    Precision,
    /// The original rule: stop at the first block boundary where the mean
    /// of the last 50 readiness values is within `convergenceThreshold` of
    /// the mean of the 50 before. Weak: the two 50-sample means differ by
    /// chance (a standard error near 0.012 for the example workspace), so a
    /// threshold of 0.001 is met at random about once in fifteen
    /// boundaries, whatever the run has learned. Kept, and the default of
    /// model v1, so that old requests reproduce their old reports.
    Window,
}

impl StoppingRule {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StoppingRule::Precision => "precision",
            StoppingRule::Window => "window",
        }
    }
}

/// The least `precision.minIterations` (and its default).
pub const MIN_PRECISION_ITERATIONS: u64 = 1000;

/// The precision rule's targets (`simulationConfig.precision`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrecisionTarget {
    /// Target half-width of the readiness mean's confidence interval (at
    /// `confidenceLevel`). Absolute by default; with `relative`, a fraction
    /// of the mean's magnitude. Default: `convergenceThreshold`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub half_width: Option<f64>,
    /// The targets are fractions of each mean's magnitude (in (0, 1]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relative: bool,
    /// No stop before this many iterations (at least 1,000, the default).
    #[serde(default = "default_min_iterations")]
    pub min_iterations: u64,
    /// Further metrics that must also meet their target half-width, by
    /// report name (`policyPassPct`, `citationCoverage`, `duplicationRisk`,
    /// `costEstimateUSD`, `technicalReadiness`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub metrics: std::collections::BTreeMap<String, f64>,
}

fn default_min_iterations() -> u64 {
    MIN_PRECISION_ITERATIONS
}

impl Default for PrecisionTarget {
    fn default() -> Self {
        PrecisionTarget {
            half_width: None,
            relative: false,
            min_iterations: MIN_PRECISION_ITERATIONS,
            metrics: Default::default(),
        }
    }
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
    /// The window rule's threshold on the readiness mean (last 50 vs
    /// previous 50), and the precision rule's default target half-width.
    #[serde(default = "default_threshold")]
    pub convergence_threshold: f64,
    /// Stop early, at the first block boundary where the stopping rule
    /// (`stoppingRule`) is met.
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
    /// The readiness model: `smm-readiness-v2` (the default) or
    /// `smm-readiness-v1` (to reproduce reports made before v2).
    #[serde(default)]
    pub model: ModelVersion,
    /// The early-termination rule; default `precision` with model v2,
    /// `window` with model v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_rule: Option<StoppingRule>,
    /// The precision rule's targets (default: the readiness mean to within
    /// `convergenceThreshold`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<PrecisionTarget>,
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
            model: ModelVersion::V2,
            stopping_rule: None,
            precision: None,
        }
    }
}

impl SimulationConfig {
    /// The stopping rule in force (`None` when early termination is off).
    pub fn stopping_rule(&self) -> Option<StoppingRule> {
        if !self.enable_early_termination {
            return None;
        }
        Some(self.stopping_rule.unwrap_or(match self.model {
            ModelVersion::V1 => StoppingRule::Window,
            ModelVersion::V2 => StoppingRule::Precision,
        }))
    }

    /// Whether this run keeps every sample (exact percentiles).
    pub fn exact_percentiles(&self) -> bool {
        match self.percentile_mode {
            PercentileMode::Exact => true,
            PercentileMode::Bounded => false,
            PercentileMode::Auto => self.iterations <= AUTO_EXACT_LIMIT,
        }
    }
}

/// The names a workspace context may use: the model's own fields and every
/// field of a v2 workspace contract (so a whole contract can be the
/// context), at the top level, in `budget` and in `budget.breakdown`.
fn context_names(level: &str) -> Vec<String> {
    let schema = crate::contract::schema();
    let names = |props: Option<&serde_json::Value>| -> Vec<String> {
        props
            .and_then(|p| p.as_object())
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    match level {
        "budget" => names(schema.pointer("/$defs/ContractBudget/properties")),
        "breakdown" => names(schema.pointer("/$defs/Breakdown/properties")),
        _ => names(schema.get("properties")),
    }
}

/// Edit distance (for "did you mean").
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let up = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let next = (prev + cost)
                .min(up.saturating_add(1))
                .min(left.saturating_add(1));
            prev = up;
            if let Some(slot) = row.get_mut(j + 1) {
                *slot = next;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

/// The nearest valid name to `key`, when one is close.
fn nearest<'a>(key: &str, names: &'a [String]) -> Option<&'a str> {
    let lower = key.to_lowercase();
    names
        .iter()
        .map(|n| {
            let d = if n.to_lowercase() == lower {
                0
            } else {
                distance(&lower, &n.to_lowercase())
            };
            (d, n)
        })
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n.as_str())
}

/// No silent defaults in a workspace context: an unknown name (a typo such
/// as `riskprofile` or `budget.hardcap`) is refused with the nearest valid
/// one, and `riskProfile` must be given.
fn check_context(doc: &serde_json::Value) -> Result<(), SimulationError> {
    let Some(ctx) = doc.get("workspaceContext").and_then(|c| c.as_object()) else {
        return Ok(()); // the typed parse reports a missing or non-object context
    };
    let unknown = |pointer: String, key: &str, names: &[String]| {
        let hint = nearest(key, names)
            .map(|n| format!("; did you mean {n:?}?"))
            .unwrap_or_else(|| format!(" (allowed: {})", names.join(", ")));
        SimulationError::Parse {
            pointer,
            message: format!("unknown field {key:?}{hint}"),
        }
    };
    let mut top = context_names("top");
    for own in ["workspaceId", "riskProfile", "primaryChannels", "budget"] {
        if !top.iter().any(|n| n == own) {
            top.push(own.into());
        }
    }
    for key in ctx.keys() {
        if !top.iter().any(|n| n == key) {
            return Err(unknown(
                format!(
                    "/workspaceContext/{}",
                    crate::jcs::escape_pointer_token(key)
                ),
                key,
                &top,
            ));
        }
    }
    match ctx.get("riskProfile") {
        Some(serde_json::Value::String(_)) => {}
        None | Some(serde_json::Value::Null) => {
            return Err(SimulationError::Parse {
                pointer: "/workspaceContext/riskProfile".into(),
                message:
                    "riskProfile is required (low, medium, high or enterprise): no default is \
                          assumed"
                        .into(),
            });
        }
        Some(_) => {} // the typed parse names the wrong type
    }
    if let Some(budget) = ctx.get("budget").and_then(|b| b.as_object()) {
        let names = context_names("budget");
        for key in budget.keys() {
            if !names.iter().any(|n| n == key) {
                return Err(unknown(
                    format!(
                        "/workspaceContext/budget/{}",
                        crate::jcs::escape_pointer_token(key)
                    ),
                    key,
                    &names,
                ));
            }
        }
        if let Some(bd) = budget.get("breakdown").and_then(|b| b.as_object()) {
            let names = context_names("breakdown");
            for key in bd.keys() {
                if !names.iter().any(|n| n == key) {
                    return Err(unknown(
                        format!(
                            "/workspaceContext/budget/breakdown/{}",
                            crate::jcs::escape_pointer_token(key)
                        ),
                        key,
                        &names,
                    ));
                }
            }
        }
    }
    Ok(())
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
        // The context's names first (a typo is the error to report, not
        // the field it left missing); the typed parse then names syntax
        // errors, wrong types and duplicate keys by pointer.
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
            check_context(&value)?;
        }
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
        check_context(value)?;
        serde_path_to_error::deserialize(value).map_err(path_error)
    }

    /// Serialize to compact JSON.
    pub fn to_json(&self) -> Result<String, SimulationError> {
        crate::jcs::to_json_text(self, false).map_err(SimulationError::internal)
    }
}

impl SimulationError {
    /// The JSON pointer of a `serde_path_to_error` path.
    pub fn from_path_error<E>(err: &serde_path_to_error::Error<E>) -> String {
        crate::jcs::path_pointer(err)
    }
}

/// Turn a serde error with its path into a [`SimulationError::Parse`] with a JSON pointer.
pub(crate) fn path_error<E: std::fmt::Display>(
    err: serde_path_to_error::Error<E>,
) -> SimulationError {
    SimulationError::Parse {
        pointer: SimulationError::from_path_error(&err),
        message: json_terms(&err.inner().to_string()),
    }
}

/// A serde message in JSON's words, not Rust's ("expected f64" becomes
/// "expected a number", "a sequence" "an array", "a map" "an object").
pub fn json_terms(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, json) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected usize", "expected a non-negative integer"),
        ("expected i64", "expected an integer"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
        ("invalid type: sequence", "invalid type: array"),
        ("invalid type: map", "invalid type: object"),
        ("floating point", "number"),
    ] {
        m = m.replace(rust, json);
    }
    if let Some(at) = m.find("expected struct ") {
        // "expected struct WorkspaceContext" -> "expected an object"
        let end = m
            .get(at + 16..)
            .and_then(|rest| rest.find(|c: char| !c.is_alphanumeric() && c != '_'))
            .map_or(m.len(), |e| at + 16 + e);
        m.replace_range(at..end, "expected an object");
    }
    m
}
