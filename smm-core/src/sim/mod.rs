//! Readiness simulation (models `smm-readiness-v2`, the default, and `smm-readiness-v1`).
//!
//! ```
//! use smm_core::sim::{SimulationRequest, RunOptions, simulate};
//!
//! let req = SimulationRequest::from_json(r#"{
//!     "workspaceContext": {
//!         "primaryChannels": ["linkedin", "x"],
//!         "riskProfile": "medium",
//!         "budget": {"hardCap": 4000, "breakdown": {
//!             "paidAds": 600, "llmModelSpend": 200, "rendering": 150, "thirdPartyServices": 50}}
//!     },
//!     "simulationConfig": {"iterations": 2000, "randomSeed": 7}
//! }"#)?;
//! let one = simulate(&req, &RunOptions { threads: Some(1), ..Default::default() })?;
//! let two = simulate(&req, &RunOptions { threads: Some(2), ..Default::default() })?;
//! assert_eq!(one.to_json()?, two.to_json()?); // bit-identical on any thread count
//! assert!(one.readiness_score.mean > 0.5 && one.readiness_score.mean < 1.0);
//! # Ok::<(), smm_core::sim::SimulationError>(())
//! ```

mod bounds;
mod engine;
mod error;
mod exact_sum;
mod input;
mod keyed;
mod model;
mod normal;
mod report;
mod stats;
pub mod sweep;
mod workflow;

pub use engine::{
    BLOCK_SIZE, ENGINE_VERSION, PartialResult, Progress, RAND_CHACHA_VERSION, RAND_DISTR_VERSION,
    RNG_ALGORITHM, RunControl, RunOptions, RunOutput, Samples, merge_partials, run, simulate,
    simulate_json, simulate_shard,
};
pub use error::SimulationError;
pub use input::{
    AUTO_EXACT_LIMIT, Budget, BudgetBreakdown, MAX_CONFIDENCE_LEVEL, MAX_EXACT_ITERATIONS,
    MAX_ITERATIONS, MAX_RETRIES, MIN_PRECISION_ITERATIONS, ModelVersion, PercentileMode,
    PrecisionTarget, RetryPolicy, SimulationConfig, SimulationRequest, StoppingRule, Workflow,
    WorkflowNode, WorkspaceContext,
};
pub use model::{MODEL_ID, PRECISION_METRICS, RiskProfile};
pub use report::{
    ConfidenceInterval, ConvergenceMetrics, MetricPrecision, MetricSummary, NodeSummary,
    Percentiles, Reproducibility, SimulationReport, SimulationSummary, WorkflowSummary,
};
pub use stats::{BOUNDED_ABSOLUTE_ERROR, BOUNDED_RELATIVE_ERROR};
