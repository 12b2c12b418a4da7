//! Shared inputs of the benchmarks.

use smm_core::sim::{PercentileMode, SimulationRequest};

/// The seed-42 baseline input (2 channels, 5 nodes), early termination off.
pub fn baseline_request(iterations: u64, mode: PercentileMode) -> Option<SimulationRequest> {
    let text = include_str!("../../examples/icblabs-seed42.request.json");
    let mut req = SimulationRequest::from_json(text).ok()?;
    req.config.iterations = iterations;
    req.config.enable_early_termination = false;
    req.config.percentile_mode = mode;
    Some(req)
}
