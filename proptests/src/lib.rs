//! Strategies that generate valid simulation requests (any risk profile,
//! channel set, budget, DAG workflow and seed), shared by the property tests.

use proptest::prelude::*;
use smm_core::sim::{
    Budget, BudgetBreakdown, RetryPolicy, SimulationConfig, SimulationRequest, Workflow,
    WorkflowNode, WorkspaceContext,
};

/// One of the four risk profiles.
pub fn risk() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["low", "medium", "high", "enterprise"]).prop_map(str::to_string)
}

/// One to four channels, including unknown platform names.
pub fn channels() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop::sample::select(vec![
            "linkedin",
            "x",
            "instagram",
            "facebook",
            "youtube",
            "tiktok",
            "mastodon",
        ]),
        1..5,
    )
    .prop_map(|v| v.into_iter().map(str::to_string).collect())
}

/// A workflow DAG: node i depends on a subset of nodes before it.
pub fn workflow() -> impl Strategy<Value = Option<Workflow>> {
    let node = (
        0.0..5000.0f64,
        prop_oneof![Just(0.0), 0.0..0.3f64, Just(1.0)],
        prop::option::of((0u32..4, 0.0..500.0f64)),
        prop::collection::vec(any::<prop::sample::Index>(), 0..3),
    );
    prop::option::of(prop::collection::vec(node, 1..8)).prop_map(|nodes| {
        nodes.map(|nodes| Workflow {
            version: None,
            nodes: nodes
                .into_iter()
                .enumerate()
                .map(|(i, (duration, failure_rate, retry, deps))| {
                    let mut dependencies: Vec<String> = if i == 0 {
                        Vec::new()
                    } else {
                        deps.iter().map(|d| format!("n{}", d.index(i))).collect()
                    };
                    dependencies.dedup();
                    WorkflowNode {
                        id: format!("n{i}"),
                        node_type: None,
                        parameters: None,
                        dependencies,
                        estimated_duration: duration,
                        failure_rate,
                        retry_policy: retry.map(|(max_retries, backoff_ms)| RetryPolicy {
                            max_retries,
                            backoff_ms,
                        }),
                    }
                })
                .collect(),
        })
    })
}

/// A valid request with `iterations` in the given range.
pub fn request(iterations: std::ops::Range<u64>) -> impl Strategy<Value = SimulationRequest> {
    (
        risk(),
        channels(),
        prop::array::uniform4(0.0..2000.0f64),
        1.0..10_000.0f64,
        workflow(),
        iterations,
        any::<u64>(),
        prop_oneof![Just(0.95), 0.5..0.999f64],
    )
        .prop_map(
            |(risk, channels, b, hard_cap, workflow, iterations, seed, level)| SimulationRequest {
                workspace_id: Some("ws-prop".into()),
                workspace_context: WorkspaceContext {
                    workspace_id: None,
                    risk_profile: Some(risk),
                    primary_channels: channels,
                    budget: Budget {
                        currency: Some("USD".into()),
                        weekly_cap: None,
                        hard_cap,
                        breakdown: BudgetBreakdown {
                            paid_ads: b[0],
                            llm_model_spend: b[1],
                            rendering: b[2],
                            third_party_services: b[3],
                        },
                    },
                },
                workflow,
                config: SimulationConfig {
                    iterations,
                    random_seed: seed,
                    confidence_level: level,
                    ..SimulationConfig::default()
                },
            },
        )
}
