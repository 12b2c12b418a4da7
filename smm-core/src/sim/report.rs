//! The simulation report: a serde type (camelCase JSON) with a JSON Schema.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Summary statistics of one output over all iterations run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSummary {
    /// Arithmetic mean.
    pub mean: f64,
    /// Unbiased (n - 1) standard deviation; 0 for a single iteration.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Percentiles (type 7: linear interpolation between order statistics).
    pub percentiles: Percentiles,
    /// Normal-approximation confidence interval for the mean.
    pub confidence: ConfidenceInterval,
}

/// The five reported percentiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    /// 5th percentile.
    pub p5: f64,
    /// 25th percentile.
    pub p25: f64,
    /// Median.
    pub p50: f64,
    /// 75th percentile.
    pub p75: f64,
    /// 95th percentile.
    pub p95: f64,
}

/// Confidence interval for a mean: mean -/+ z * std / sqrt(n), z the normal
/// quantile of (1 + level) / 2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfidenceInterval {
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
    /// Confidence level, as configured.
    pub level: f64,
}

/// Per-node workflow outcome counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSummary {
    /// Node id.
    pub id: String,
    /// Iterations in which the node failed after all retries.
    pub failures: u64,
    /// Retries taken over all iterations.
    pub retries: u64,
    /// Iterations in which the node was skipped because a dependency failed.
    pub skipped: u64,
    /// Attempts over all iterations: (iterations run - skipped) + retries.
    #[serde(default)]
    pub attempts: u64,
    /// failures / iterations run: failures per iteration, not per attempt
    /// (called `failureRate` before 0.1.0, which is still read).
    #[serde(alias = "failureRate")]
    pub failures_per_iteration: f64,
    /// Failed attempts / attempts: (retries + failures) / attempts, the
    /// rate the workflow's `failureRate` input describes (0 without
    /// attempts).
    #[serde(default)]
    pub failure_rate_per_attempt: f64,
}

/// Workflow simulation results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowSummary {
    /// Iterations in which every node succeeded.
    pub successes: u64,
    /// successes / iterations run.
    pub success_rate: f64,
    /// Finish time of the last node that ran, in milliseconds.
    pub makespan_ms: MetricSummary,
    /// Per-node counts, in the order of the input's nodes.
    pub nodes: Vec<NodeSummary>,
}

/// Convergence of the readiness series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConvergenceMetrics {
    /// The stopping rule in force is met at the end of the run: under the
    /// precision rule, every target after `minIterations`; otherwise (the
    /// window rule, or none) at least 100 iterations and
    /// |mean(last 50) - mean(previous 50)| < threshold.
    pub converged: bool,
    /// Iterations actually run (the same as `reproducibility.iterationsRun`;
    /// called `requiredIterations` before 0.1.0, which is still read).
    #[serde(alias = "requiredIterations")]
    pub iterations_run: u64,
    /// The configured threshold.
    pub stability_threshold: f64,
    /// True when early termination stopped the run before `iterations`.
    pub terminated_early: bool,
    /// Mean readiness of the last 50 iterations (absent below 100 iterations).
    pub last_window_mean: Option<f64>,
    /// Mean readiness of the 50 iterations before those.
    pub previous_window_mean: Option<f64>,
    /// The early-termination rule in force: `precision`, `window`, or
    /// `none` (early termination off).
    #[serde(default = "rule_none")]
    pub stopping_rule: String,
    /// The rule that stopped the run before its iterations (`precision`
    /// or `window`), or null when it ran them all.
    #[serde(default)]
    pub stopped_by: Option<String>,
    /// Half-width of the readiness mean's confidence interval, as achieved.
    #[serde(default)]
    pub achieved_half_width: f64,
    /// The precision rule's readiness target as an absolute half-width
    /// (null under another rule).
    #[serde(default)]
    pub target_half_width: Option<f64>,
    /// Every precision target, readiness first (empty under another rule).
    #[serde(default)]
    pub precision_targets: Vec<MetricPrecision>,
    /// Iterations a run without early termination would have used.
    #[serde(default)]
    pub iterations_without_early_termination: u64,
}

fn rule_none() -> String {
    "none".into()
}

/// One precision target at the end of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricPrecision {
    /// The metric (report name).
    pub metric: String,
    /// The target half-width, absolute (a relative target times |mean|).
    pub target_half_width: f64,
    /// The half-width achieved.
    pub achieved_half_width: f64,
    /// achieved <= target.
    pub met: bool,
}

/// Everything needed to reproduce the run bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reproducibility {
    /// Seed of the run.
    pub seed: u64,
    /// Iterations asked for.
    pub iterations_requested: u64,
    /// Iterations run (fewer when early termination stopped the run).
    pub iterations_run: u64,
    /// The PRNG and how streams are derived.
    pub rng_algorithm: String,
    /// Iterations per block (one ChaCha stream per block).
    pub block_size: u64,
    /// Model id.
    pub model_id: String,
    /// Version of smm-core.
    pub engine_version: String,
    /// Version of rand_chacha.
    pub rand_chacha_version: String,
    /// Version of rand_distr.
    pub rand_distr_version: String,
    /// Confidence level of the intervals.
    pub confidence_level: f64,
    /// "exact" or "bounded".
    pub percentile_mode: String,
    /// Relative error bound of the percentiles (0 when exact).
    pub percentile_relative_error: f64,
}

/// The result of a readiness simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationReport {
    /// Model id (`smm-readiness-v2` or `smm-readiness-v1`).
    pub model_id: String,
    /// Workspace id, when the input named one.
    pub workspace_id: Option<String>,
    /// Risk profile used.
    pub risk_profile: String,
    /// Weighted readiness score in [0, 1].
    pub readiness_score: MetricSummary,
    /// Policy pass percentage in [0.5, 1].
    pub policy_pass_pct: MetricSummary,
    /// Citation coverage in [0.7, 1].
    pub citation_coverage: MetricSummary,
    /// Duplication risk in [0, 0.4].
    pub duplication_risk: MetricSummary,
    /// Cost estimate in the budget's currency (named USD for compatibility).
    #[serde(rename = "costEstimateUSD")]
    pub cost_estimate_usd: MetricSummary,
    /// Technical readiness in [0.6, 1].
    pub technical_readiness: MetricSummary,
    /// Workflow results, when a workflow was given.
    pub workflow: Option<WorkflowSummary>,
    /// Convergence of the readiness series.
    pub convergence_metrics: ConvergenceMetrics,
    /// Reproducibility metadata.
    pub reproducibility: Reproducibility,
}

impl MetricSummary {
    /// Every number is finite.
    pub fn is_finite(&self) -> bool {
        let p = &self.percentiles;
        let c = &self.confidence;
        [
            self.mean, self.std, self.min, self.max, p.p5, p.p25, p.p50, p.p75, p.p95, c.lower,
            c.upper, c.level,
        ]
        .iter()
        .all(|x| x.is_finite())
    }
}

impl SimulationReport {
    /// Every number is finite (the engine never reports anything else).
    pub fn is_finite(&self) -> bool {
        let c = &self.convergence_metrics;
        [
            &self.readiness_score,
            &self.policy_pass_pct,
            &self.citation_coverage,
            &self.duplication_risk,
            &self.cost_estimate_usd,
            &self.technical_readiness,
        ]
        .iter()
        .all(|m| m.is_finite())
            && self.workflow.as_ref().is_none_or(|w| {
                w.makespan_ms.is_finite()
                    && w.success_rate.is_finite()
                    && w.nodes.iter().all(|n| {
                        n.failures_per_iteration.is_finite()
                            && n.failure_rate_per_attempt.is_finite()
                    })
            })
            && c.stability_threshold.is_finite()
            && c.last_window_mean.is_none_or(f64::is_finite)
            && c.previous_window_mean.is_none_or(f64::is_finite)
            && c.achieved_half_width.is_finite()
            && c.target_half_width.is_none_or(f64::is_finite)
            && c.precision_targets
                .iter()
                .all(|t| t.target_half_width.is_finite() && t.achieved_half_width.is_finite())
    }

    /// Compact JSON (field order fixed by the type; floats in shortest
    /// round-trip form, so equal reports give equal bytes).
    pub fn to_json(&self) -> Result<String, super::SimulationError> {
        crate::jcs::to_json_text(self, false).map_err(super::SimulationError::internal)
    }

    /// Indented JSON.
    pub fn to_json_pretty(&self) -> Result<String, super::SimulationError> {
        crate::jcs::to_json_text(self, true).map_err(super::SimulationError::internal)
    }

    /// Parse a report back from JSON.
    pub fn from_json(text: &str) -> Result<Self, super::SimulationError> {
        let mut de = serde_json::Deserializer::from_str(text);
        serde_path_to_error::deserialize(&mut de).map_err(super::input::path_error)
    }
}

/// What the simulation said, as kept in a bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SimulationSummary {
    /// Model id.
    pub model_id: String,
    /// Readiness statistics.
    pub readiness_score: MetricSummary,
    /// Mean policy pass percentage.
    pub policy_pass_pct: f64,
    /// Mean citation coverage.
    pub citation_coverage: f64,
    /// Mean duplication risk.
    pub duplication_risk: f64,
    /// Mean cost estimate.
    #[serde(rename = "costEstimateUSD")]
    pub cost_estimate_usd: f64,
    /// Mean technical readiness.
    pub technical_readiness: f64,
    /// Workflow success rate, when simulated.
    pub workflow_success_rate: Option<f64>,
    /// Convergence.
    pub convergence_metrics: ConvergenceMetrics,
    /// Reproducibility metadata (seed, iterations, RNG, versions).
    pub reproducibility: Reproducibility,
}

impl From<&SimulationReport> for SimulationSummary {
    fn from(r: &SimulationReport) -> Self {
        SimulationSummary {
            model_id: r.model_id.clone(),
            readiness_score: r.readiness_score.clone(),
            policy_pass_pct: r.policy_pass_pct.mean,
            citation_coverage: r.citation_coverage.mean,
            duplication_risk: r.duplication_risk.mean,
            cost_estimate_usd: r.cost_estimate_usd.mean,
            technical_readiness: r.technical_readiness.mean,
            workflow_success_rate: r.workflow.as_ref().map(|w| w.success_rate),
            convergence_metrics: r.convergence_metrics.clone(),
            reproducibility: r.reproducibility.clone(),
        }
    }
}
