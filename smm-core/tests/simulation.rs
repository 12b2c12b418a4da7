//! Public-API tests of the simulation engine: what a user's bug report would be.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use serde_json::json;
use smm_core::sim::{
    self, BLOCK_SIZE, PercentileMode, RunOptions, SimulationError, SimulationRequest,
    merge_partials, simulate, simulate_shard,
};

const EXAMPLE: &str = include_str!("../../examples/icblabs-seed42.request.json");

fn example() -> SimulationRequest {
    SimulationRequest::from_json(EXAMPLE).unwrap()
}

fn with_threads(t: usize) -> RunOptions {
    RunOptions {
        threads: Some(t),
        ..Default::default()
    }
}

fn err_of(mutate: impl FnOnce(&mut serde_json::Value)) -> SimulationError {
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    mutate(&mut v);
    let text = v.to_string();
    match SimulationRequest::from_json(&text) {
        Err(e) => e,
        Ok(req) => simulate(&req, &with_threads(1)).unwrap_err(),
    }
}

#[test]
fn reads_the_reference_input_and_reports_every_output() {
    let r = simulate(&example(), &with_threads(1)).unwrap();
    assert_eq!(r.model_id, "smm-readiness-v2");
    assert_eq!(r.workspace_id.as_deref(), Some("ws-icblabs-0001"));
    assert_eq!(r.risk_profile, "medium");
    // The original engine gives about 0.730 on this input (digest §4.6).
    assert!(
        (r.readiness_score.mean - 0.73).abs() < 0.015,
        "{}",
        r.readiness_score.mean
    );
    let wf = r.workflow.as_ref().unwrap();
    assert_eq!(wf.nodes.len(), 5);
    assert_eq!(wf.nodes[0].id, "research_brand");
    let rep = &r.reproducibility;
    assert_eq!(rep.seed, 42);
    assert_eq!(rep.iterations_requested, 1000);
    assert_eq!(rep.iterations_run, r.convergence_metrics.iterations_run);
    assert!(rep.rng_algorithm.contains("ChaCha"));
    assert_eq!(rep.confidence_level, 0.95);
}

#[test]
fn same_seed_same_bytes_on_any_thread_count() {
    let mut req = example();
    req.config.iterations = 20_000;
    req.config.enable_early_termination = false;
    let one = simulate(&req, &with_threads(1)).unwrap().to_json().unwrap();
    for t in [2, 3, 16] {
        assert_eq!(
            one,
            simulate(&req, &with_threads(t)).unwrap().to_json().unwrap(),
            "threads {t}"
        );
    }
    req.config.random_seed = 43;
    assert_ne!(
        one,
        simulate(&req, &with_threads(2)).unwrap().to_json().unwrap()
    );
}

#[test]
fn early_termination_is_deterministic_and_stops_at_a_block_boundary() {
    let mut req = example();
    req.config.iterations = 200_000;
    req.config.enable_early_termination = true;
    req.config.convergence_threshold = 0.01;
    let a = simulate(&req, &with_threads(1)).unwrap();
    let b = simulate(&req, &with_threads(4)).unwrap();
    assert_eq!(a.to_json().unwrap(), b.to_json().unwrap());
    let c = &a.convergence_metrics;
    assert!(c.terminated_early);
    assert!(c.converged);
    assert_eq!(c.iterations_run % BLOCK_SIZE, 0);
    assert!(c.iterations_run < 200_000);
}

#[test]
fn shards_merge_to_exactly_the_single_run() {
    for (mode, iterations) in [
        (PercentileMode::Exact, 5_000u64),
        (PercentileMode::Bounded, 5_000),
    ] {
        let mut req = example();
        req.config.iterations = iterations;
        req.config.enable_early_termination = false;
        req.config.percentile_mode = mode;
        let single = simulate(&req, &with_threads(2)).unwrap().to_json().unwrap();
        let cuts = [0, 256, 1024, 3072, iterations];
        let mut parts: Vec<_> = cuts
            .windows(2)
            .map(|w| simulate_shard(&req, w[0], w[1], &with_threads(1)).unwrap())
            .collect();
        parts.reverse(); // order of arrival does not matter
        // Ship one through JSON, as a distributed run would.
        let shipped = sim::PartialResult::from_json(&parts[1].to_json().unwrap()).unwrap();
        parts[1] = shipped;
        let merged = merge_partials(parts, &with_threads(1))
            .unwrap()
            .report
            .to_json()
            .unwrap();
        assert_eq!(single, merged, "{mode:?}");
    }
}

#[test]
fn shards_with_early_termination_merge_like_a_single_run() {
    let mut req = example();
    req.config.iterations = 100_000;
    req.config.enable_early_termination = true;
    req.config.convergence_threshold = 0.005;
    let single = simulate(&req, &with_threads(1)).unwrap();
    assert!(single.convergence_metrics.terminated_early);
    let parts: Vec<_> = (0..100_000u64)
        .step_by(2560)
        .map(|s| simulate_shard(&req, s, (s + 2560).min(100_000), &with_threads(1)).unwrap())
        .collect();
    let merged = merge_partials(parts, &with_threads(2)).unwrap().report;
    assert_eq!(single.to_json().unwrap(), merged.to_json().unwrap());
}

#[test]
fn bad_shards_and_merges_are_typed_errors() {
    let mut req = example();
    req.config.iterations = 1000;
    let o = with_threads(1);
    for (a, b) in [(0, 0), (0, 1001), (100, 1000), (0, 300)] {
        assert!(
            matches!(
                simulate_shard(&req, a, b, &o),
                Err(SimulationError::InvalidShard { .. })
            ),
            "[{a}, {b})"
        );
    }
    let p1 = simulate_shard(&req, 0, 256, &o).unwrap();
    let p3 = simulate_shard(&req, 512, 1000, &o).unwrap();
    let e = merge_partials(vec![p1.clone(), p3], &o).unwrap_err();
    assert!(e.to_string().contains("256..512 are missing"), "{e}");
    let e = merge_partials(vec![p1.clone(), p1.clone()], &o).unwrap_err();
    assert!(e.to_string().contains("overlap"), "{e}");
    let mut other = req.clone();
    other.config.random_seed = 1;
    let q = simulate_shard(&other, 256, 1000, &o).unwrap();
    assert!(
        merge_partials(vec![p1, q], &o)
            .unwrap_err()
            .to_string()
            .contains("different request")
    );
    assert!(merge_partials(vec![], &o).is_err());
}

#[test]
fn bad_input_names_the_field() {
    use serde_json::json;
    type Mutation = Box<dyn FnOnce(&mut serde_json::Value)>;
    let cases: Vec<(Mutation, &str, &str)> = vec![
        (
            Box::new(|v| v["workspaceContext"]["riskProfile"] = json!("moderate")),
            "/workspaceContext/riskProfile",
            "unknown risk profile",
        ),
        (
            Box::new(|v| v["workspaceContext"]["primaryChannels"] = json!([])),
            "/workspaceContext/primaryChannels",
            "at least one channel",
        ),
        (
            Box::new(|v| v["workspaceContext"]["budget"]["breakdown"]["paidAds"] = json!(-5)),
            "/workspaceContext/budget/breakdown/paidAds",
            "non-negative",
        ),
        (
            Box::new(|v| v["workspaceContext"]["budget"]["hardCap"] = json!(0)),
            "/workspaceContext/budget/hardCap",
            "greater than 0",
        ),
        (
            Box::new(|v| v["workspaceContext"]["budget"]["hardCap"] = json!(-1)),
            "/workspaceContext/budget/hardCap",
            "non-negative",
        ),
        (
            Box::new(|v| v["simulationConfig"]["iterations"] = json!(0)),
            "/simulationConfig/iterations",
            "between 1 and",
        ),
        (
            Box::new(|v| v["simulationConfig"]["iterations"] = json!(10_000_000_001u64)),
            "/simulationConfig/iterations",
            "between 1 and 10000000000",
        ),
        (
            Box::new(|v| {
                v["simulationConfig"]["iterations"] = json!(100_000_001u64);
                v["simulationConfig"]["percentileMode"] = json!("exact");
            }),
            "/simulationConfig/iterations",
            "between 1 and 100000000 ",
        ),
        (
            Box::new(|v| v["simulationConfig"]["confidenceLevel"] = json!(1.0)),
            "/simulationConfig/confidenceLevel",
            "greater than 0 and at most 0.999999999",
        ),
        (
            Box::new(|v| v["simulationConfig"]["confidenceLevel"] = json!(0)),
            "/simulationConfig/confidenceLevel",
            "greater than 0 and at most 0.999999999",
        ),
        (
            Box::new(|v| v["workflowJson"]["nodes"][2]["failureRate"] = json!(1.5)),
            "/workflowJson/nodes/2/failureRate",
            "within [0, 1]",
        ),
        (
            Box::new(|v| v["workflowJson"]["nodes"][1]["estimatedDuration"] = json!(-1)),
            "/workflowJson/nodes/1/estimatedDuration",
            "non-negative duration",
        ),
        (
            Box::new(|v| v["workflowJson"]["nodes"][4]["dependencies"][1] = json!("nope")),
            "/workflowJson/nodes/4/dependencies/1",
            "unknown node \"nope\"",
        ),
        (
            Box::new(|v| v["workflowJson"]["nodes"][3]["id"] = json!("policy_check")),
            "/workflowJson/nodes/3/id",
            "duplicate node id",
        ),
        (
            Box::new(|v| v["workflowJson"]["nodes"][0]["dependencies"] = json!(["schedule_posts"])),
            "/workflowJson/nodes",
            "cycle",
        ),
        (
            Box::new(|v| v["simulationConfig"]["iteratons"] = json!(5)),
            "/simulationConfig/iteratons",
            "unknown field `iteratons`",
        ),
        (
            Box::new(|v| v["simulationConfig"]["iterations"] = json!(-3)),
            "/simulationConfig/iterations",
            "invalid value",
        ),
        (
            Box::new(|v| v["workspaceContext"]["budget"]["hardCap"] = json!("lots")),
            "/workspaceContext/budget/hardCap",
            "invalid type",
        ),
    ];
    for (mutate, pointer, text) in cases {
        let e = err_of(mutate);
        assert_eq!(e.pointer(), Some(pointer), "{e}");
        assert!(e.to_string().contains(text), "{e} should contain {text}");
        let top: smm_core::Error = e.into();
        assert_eq!(top.pointer(), Some(pointer));
    }
}

#[test]
fn a_cycle_is_reported_along_its_nodes() {
    let e = err_of(|v| {
        v["workflowJson"]["nodes"][0]["dependencies"] = serde_json::json!(["schedule_posts"])
    });
    let SimulationError::Cycle { cycle, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!(cycle.first(), cycle.last());
    assert!(cycle.len() >= 4, "{cycle:?}");
}

#[test]
fn malformed_json_is_an_error_not_a_panic() {
    for text in [
        "",
        "{",
        "[]",
        "null",
        "{\"workspaceContext\": 5}",
        "{} trailing",
    ] {
        assert!(SimulationRequest::from_json(text).is_err(), "{text}");
    }
}

#[test]
fn extreme_inputs_never_produce_nan() {
    let mut req = example();
    req.config.iterations = 3000;
    req.workspace_context.budget.hard_cap = 1e-300;
    req.workspace_context.budget.breakdown.paid_ads = 1e300;
    let r = simulate(&req, &with_threads(2)).unwrap();
    let json = r.to_json().unwrap();
    assert!(
        !json.contains("NaN") && !json.contains("null,\"std\""),
        "{json}"
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    fn walk(v: &serde_json::Value) {
        match v {
            serde_json::Value::Number(n) => assert!(n.as_f64().unwrap().is_finite()),
            serde_json::Value::Array(a) => a.iter().for_each(walk),
            serde_json::Value::Object(o) => o.values().for_each(walk),
            _ => {}
        }
    }
    walk(&v);
    // A zero-cost budget and a single iteration.
    let mut req = example();
    req.config.iterations = 1;
    req.workspace_context.budget.breakdown = sim::BudgetBreakdown {
        paid_ads: 0.0,
        llm_model_spend: 0.0,
        rendering: 0.0,
        third_party_services: 0.0,
    };
    let r = simulate(&req, &with_threads(1)).unwrap();
    assert_eq!(r.readiness_score.std, 0.0);
    assert_eq!(r.cost_estimate_usd.mean, 0.0);
    assert_eq!(r.readiness_score.confidence.lower, r.readiness_score.mean);
    assert!(!r.convergence_metrics.converged);
}

#[test]
fn confidence_interval_uses_the_configured_level() {
    let mut req = example();
    req.config.enable_early_termination = false;
    req.config.iterations = 4000;
    let w = |level: f64| {
        let mut r = req.clone();
        r.config.confidence_level = level;
        let s = simulate(&r, &with_threads(1)).unwrap().readiness_score;
        (s.confidence.upper - s.confidence.lower) / 2.0 / (s.std / 4000f64.sqrt())
    };
    assert!((w(0.95) - 1.959963984540054).abs() < 1e-9);
    assert!((w(0.99) - 2.5758293035489004).abs() < 1e-9);
    assert!((w(0.5) - 0.6744897501960817).abs() < 1e-9);
}

#[test]
fn samples_are_returned_in_iteration_order_and_match_the_report() {
    let mut req = example();
    req.config.iterations = 3000;
    req.config.enable_early_termination = false;
    let opts = RunOptions {
        threads: Some(2),
        keep_samples: true,
        ..Default::default()
    };
    let out = sim::run(&req, &opts).unwrap();
    let s = out.samples.unwrap();
    assert_eq!(s.readiness_score.len(), 3000);
    assert_eq!(s.makespan_ms.as_ref().unwrap().len(), 3000);
    let mean = s.readiness_score.iter().sum::<f64>() / 3000.0;
    assert!((mean - out.report.readiness_score.mean).abs() < 1e-12);
    // The first 256 values are block 0's, whatever the sharding.
    let shard = sim::merge_partials(
        vec![
            simulate_shard(&req, 0, 256, &with_threads(1)).unwrap(),
            simulate_shard(&req, 256, 3000, &with_threads(1)).unwrap(),
        ],
        &opts,
    )
    .unwrap();
    assert_eq!(shard.samples.unwrap().readiness_score, s.readiness_score);
    // Samples need exact mode.
    req.config.percentile_mode = PercentileMode::Bounded;
    assert!(sim::run(&req, &opts).is_err());
}

#[test]
fn bounded_percentiles_stay_within_the_documented_error() {
    let mut req = example();
    req.config.iterations = 200_000;
    req.config.enable_early_termination = false;
    let exact = simulate(&req, &with_threads(2)).unwrap();
    req.config.percentile_mode = PercentileMode::Bounded;
    let bounded = simulate(&req, &with_threads(2)).unwrap();
    assert_eq!(bounded.reproducibility.percentile_mode, "bounded");
    let pairs = [
        (&exact.readiness_score, &bounded.readiness_score),
        (&exact.policy_pass_pct, &bounded.policy_pass_pct),
        (&exact.citation_coverage, &bounded.citation_coverage),
        (&exact.duplication_risk, &bounded.duplication_risk),
        (&exact.cost_estimate_usd, &bounded.cost_estimate_usd),
        (&exact.technical_readiness, &bounded.technical_readiness),
        (
            &exact.workflow.as_ref().unwrap().makespan_ms,
            &bounded.workflow.as_ref().unwrap().makespan_ms,
        ),
    ];
    for (e, b) in pairs {
        assert_eq!(
            e.mean.to_bits(),
            b.mean.to_bits(),
            "means do not depend on the mode"
        );
        assert_eq!(e.std.to_bits(), b.std.to_bits());
        let ep = [
            e.percentiles.p5,
            e.percentiles.p25,
            e.percentiles.p50,
            e.percentiles.p75,
            e.percentiles.p95,
        ];
        let bp = [
            b.percentiles.p5,
            b.percentiles.p25,
            b.percentiles.p50,
            b.percentiles.p75,
            b.percentiles.p95,
        ];
        for (x, y) in ep.iter().zip(bp) {
            let bound = sim::BOUNDED_RELATIVE_ERROR * x.abs() + sim::BOUNDED_ABSOLUTE_ERROR;
            assert!((x - y).abs() <= bound, "{x} vs {y} (bound {bound})");
        }
    }
}

#[test]
fn zero_threads_is_every_core_and_too_many_is_an_error() {
    // One meaning of 0 in every front door: every core (the report is the
    // same on any count).
    assert_eq!(
        simulate(&example(), &with_threads(0)).unwrap(),
        simulate(&example(), &with_threads(1)).unwrap()
    );
    let e = simulate(&example(), &with_threads(smm_core::limits::MAX_THREADS + 1)).unwrap_err();
    // An option the caller got wrong: bad input, not an internal failure.
    assert!(matches!(e, SimulationError::InvalidOption { .. }));
    assert!(e.is_input_error());
}

#[test]
fn recorded_dependency_versions_match_the_lockfile() {
    let lock = include_str!("../../Cargo.lock");
    for (name, version) in [
        ("rand_chacha", sim::RAND_CHACHA_VERSION),
        ("rand_distr", sim::RAND_DISTR_VERSION),
    ] {
        let needle = format!("name = \"{name}\"\nversion = \"{version}\"");
        assert!(
            lock.contains(&needle),
            "Cargo.lock has another {name}; update the constant"
        );
    }
}

#[test]
fn checked_in_schemas_match_the_types() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    for (name, text) in smm_core::schema::all() {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        assert!(
            on_disk == text,
            "schemas/{name} is stale: run `cargo xtask bless` and commit the result"
        );
    }
}

#[test]
fn report_round_trips_through_json() {
    let r = simulate(&example(), &with_threads(1)).unwrap();
    let back = sim::SimulationReport::from_json(&r.to_json().unwrap()).unwrap();
    assert_eq!(r, back);
}

/// A confidence level so close to 1 that its normal quantile is infinite
/// used to pass and give an interval of (-inf, inf), written as null.
#[test]
fn confidence_levels_whose_interval_would_not_be_finite_are_refused() {
    let e = err_of(|v| v["simulationConfig"]["confidenceLevel"] = json!(0.9999999999999999));
    assert!(
        matches!(e, SimulationError::ConfidenceLevelOutOfRange { .. }),
        "{e}"
    );
    assert_eq!(e.pointer(), Some("/simulationConfig/confidenceLevel"));
    let mut req = example();
    req.config.confidence_level = sim::MAX_CONFIDENCE_LEVEL;
    req.config.iterations = 512;
    let r = simulate(&req, &with_threads(1)).unwrap();
    assert!(r.is_finite());
    let c = &r.readiness_score.confidence;
    assert!(c.lower.is_finite() && c.upper.is_finite() && c.lower < c.upper);
    // No number is null (only the fields that may be absent by design).
    fn nulls(v: &serde_json::Value, key: &str, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Null => out.push(key.to_string()),
            serde_json::Value::Array(a) => a.iter().for_each(|x| nulls(x, key, out)),
            serde_json::Value::Object(o) => o.iter().for_each(|(k, x)| nulls(x, k, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    nulls(
        &serde_json::from_str(&r.to_json().unwrap()).unwrap(),
        "",
        &mut found,
    );
    assert!(
        found.iter().all(|k| k == "stoppedBy"),
        "null numbers in the report: {found:?}"
    );
}

#[test]
fn timeout_seconds_stops_the_run_with_a_typed_error() {
    let mut req = example();
    req.config.iterations = 2_000_000_000;
    req.config.percentile_mode = sim::PercentileMode::Bounded;
    req.config.timeout_seconds = Some(1);
    req.config.enable_early_termination = false;
    match simulate(&req, &with_threads(2)) {
        Err(SimulationError::Timeout {
            seconds,
            iterations_done,
        }) => {
            assert_eq!(seconds, 1);
            assert!(iterations_done > 0 && iterations_done < 2_000_000_000);
            assert_eq!(iterations_done % sim::BLOCK_SIZE, 0);
        }
        other => panic!("{other:?}"),
    }
    // A run that finishes within its limit is the same report as without one.
    let mut quick = example();
    quick.config.iterations = 2048;
    let plain = simulate(&quick, &with_threads(2)).unwrap();
    quick.config.timeout_seconds = Some(600);
    let limited = simulate(&quick, &with_threads(2)).unwrap();
    assert_eq!(plain.readiness_score, limited.readiness_score);
    for bad in [0u64, smm_core::limits::MAX_TIMEOUT_SECONDS + 1] {
        let e = err_of(|v| v["simulationConfig"]["timeoutSeconds"] = json!(bad));
        assert!(
            matches!(e, SimulationError::TimeoutOutOfRange { .. }),
            "{e}"
        );
    }
    quick.config.timeout_seconds = Some(smm_core::limits::MAX_TIMEOUT_SECONDS);
    assert!(simulate(&quick, &with_threads(1)).is_ok());
}

#[test]
fn limits_hold_at_the_edge() {
    use smm_core::limits::*;
    let channels = |n: usize| -> Vec<String> { (0..n).map(|i| format!("c{i}")).collect() };
    let mut req = example();
    req.config.iterations = 256;
    req.workspace_context.primary_channels = channels(MAX_CHANNELS);
    assert!(simulate(&req, &with_threads(1)).is_ok());
    req.workspace_context.primary_channels = channels(MAX_CHANNELS + 1);
    assert!(matches!(
        simulate(&req, &with_threads(1)),
        Err(SimulationError::TooMany { max: 64, .. })
    ));
    let mut req = example();
    req.config.iterations = 1;
    let node = |i: usize| sim::WorkflowNode {
        id: format!("n{i}"),
        node_type: None,
        parameters: None,
        dependencies: vec![],
        estimated_duration: 1.0,
        failure_rate: 0.0,
        retry_policy: None,
    };
    req.workflow = Some(sim::Workflow {
        version: None,
        nodes: (0..MAX_WORKFLOW_NODES).map(node).collect(),
    });
    assert!(simulate(&req, &with_threads(1)).is_ok());
    req.workflow = Some(sim::Workflow {
        version: None,
        nodes: (0..=MAX_WORKFLOW_NODES).map(node).collect(),
    });
    assert!(matches!(
        simulate(&req, &with_threads(1)),
        Err(SimulationError::TooMany { .. })
    ));
    let mut req = example();
    req.config.iterations = 256;
    assert!(simulate(&req, &with_threads(MAX_THREADS)).is_ok());
    assert!(matches!(
        simulate(&req, &with_threads(MAX_THREADS + 1)),
        Err(SimulationError::InvalidOption { .. })
    ));
    let huge = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    assert!(sim::PartialResult::from_json(&huge).is_err());
}

/// Forged or damaged partial results are refused with a typed error
/// before a merge can meet them; none panics.
#[test]
fn hostile_partial_results_are_refused() {
    let mut req = example();
    req.config.iterations = 1000;
    let good = sim::simulate_shard(&req, 0, 512, &with_threads(1)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&good.to_json().unwrap()).unwrap();
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let mutations: Vec<(&str, Mutation)> = vec![
        ("start after end", Box::new(|v| v["start"] = json!(768))),
        ("end past the run", Box::new(|v| v["end"] = json!(5000))),
        ("unaligned start", Box::new(|v| v["start"] = json!(3))),
        ("runEnd outside", Box::new(|v| v["runEnd"] = json!(900))),
        ("runEnd before start", Box::new(|v| v["runEnd"] = json!(0))),
        (
            "terminatedEarly lie",
            Box::new(|v| v["terminatedEarly"] = json!(true)),
        ),
        (
            "a metric missing",
            Box::new(|v| {
                v["moments"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "moment count",
            Box::new(|v| v["moments"][0]["n"] = json!(10)),
        ),
        (
            "moment center",
            Box::new(|v| v["moments"][0]["center"] = json!(0.25)),
        ),
        (
            "min above max",
            Box::new(|v| v["moments"][0]["min"] = json!(2.0)),
        ),
        (
            "digits",
            Box::new(|v| {
                v["moments"][0]["sum"]["digits"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "huge digit",
            Box::new(|v| v["moments"][0]["sum"]["digits"][5] = json!(i64::MAX)),
        ),
        (
            "pending",
            Box::new(|v| v["moments"][0]["sum"]["pending"] = json!(u32::MAX)),
        ),
        (
            "samples short",
            Box::new(|v| {
                v["samples"][0].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "sample out of range",
            Box::new(|v| v["samples"][1][0] = json!(7.0)),
        ),
        (
            "histograms in exact mode",
            Box::new(|v| v["histograms"] = json!([])),
        ),
        ("no samples", Box::new(|v| v["samples"] = json!(null))),
        ("successes", Box::new(|v| v["successes"] = json!(10_000))),
        // Within the iterations, but not what the nodes' failures allow.
        (
            "successes and failures disagree",
            Box::new(|v| {
                let ran = v["end"].as_u64().unwrap() - v["start"].as_u64().unwrap();
                v["successes"] = json!(ran);
            }),
        ),
        (
            "successes without failures",
            Box::new(|v| {
                v["successes"] = json!(0);
                for c in v["nodeCounters"].as_array_mut().unwrap() {
                    c["failures"] = json!(0);
                    c["skipped"] = json!(0);
                }
            }),
        ),
        (
            "node counters",
            Box::new(|v| {
                v["nodeCounters"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "failures",
            Box::new(|v| v["nodeCounters"][0]["failures"] = json!(u64::MAX)),
        ),
        ("tail long", Box::new(|v| v["tail"] = json!(vec![0.5; 101]))),
        ("tail value", Box::new(|v| v["tail"][0] = json!(1.5))),
        (
            "another request",
            Box::new(|v| v["request"]["simulationConfig"]["iterations"] = json!(0)),
        ),
        ("unknown field", Box::new(|v| v["extra"] = json!(1))),
        ("wrong type", Box::new(|v| v["start"] = json!("0"))),
    ];
    for (what, m) in mutations {
        let mut bad = v.clone();
        m(&mut bad);
        let e = sim::PartialResult::from_json(&bad.to_string())
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(e.is_input_error(), "{what}: {e}");
        // The same refusal through plain serde.
        assert!(
            serde_json::from_value::<sim::PartialResult>(bad).is_err(),
            "{what}"
        );
    }
    // Bounded mode: histograms are checked too.
    let mut req = example();
    req.config.iterations = 1000;
    req.config.percentile_mode = sim::PercentileMode::Bounded;
    let part = sim::simulate_shard(&req, 0, 1000, &with_threads(1)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&part.to_json().unwrap()).unwrap();
    for (what, m) in [
        (
            "exponent",
            Box::new(|v: &mut serde_json::Value| v["histograms"][0][0][1] = json!(65535))
                as Box<dyn Fn(&mut serde_json::Value)>,
        ),
        (
            "sub-bucket",
            Box::new(|v: &mut serde_json::Value| v["histograms"][0][0][2] = json!(40000)),
        ),
        (
            "count",
            Box::new(|v: &mut serde_json::Value| v["histograms"][0][0][3] = json!(u64::MAX)),
        ),
        (
            "zero count",
            Box::new(|v: &mut serde_json::Value| v["histograms"][0][0][3] = json!(0)),
        ),
        (
            "order",
            Box::new(|v: &mut serde_json::Value| {
                v["histograms"][0].as_array_mut().unwrap().reverse()
            }),
        ),
    ] {
        let mut bad = v.clone();
        m(&mut bad);
        assert!(
            sim::PartialResult::from_json(&bad.to_string()).is_err(),
            "{what}"
        );
    }
    // Untouched, it still merges into the single-run report.
    let back = sim::PartialResult::from_json(&part.to_json().unwrap()).unwrap();
    let merged = sim::merge_partials(vec![back], &with_threads(1)).unwrap();
    assert_eq!(merged.report, simulate(&req, &with_threads(1)).unwrap());
}

/// Every accepted field is honoured or refused: parallelBatches is the
/// thread count when the caller gives none (results never depend on it).
#[test]
fn parallel_batches_is_honoured_or_refused() {
    let mut req = example();
    req.config.iterations = 4096;
    req.config.enable_early_termination = false;
    let one = simulate(&req, &with_threads(1)).unwrap();
    req.config.parallel_batches = Some(2);
    assert_eq!(simulate(&req, &RunOptions::default()).unwrap(), one);
    for bad in [0u64, smm_core::limits::MAX_THREADS as u64 + 1] {
        let e = err_of(|v| v["simulationConfig"]["parallelBatches"] = json!(bad));
        assert!(matches!(e, SimulationError::OutOfRange { .. }), "{e}");
        assert_eq!(e.pointer(), Some("/simulationConfig/parallelBatches"));
    }
}

/// Progress is reported after each wave and ends at the total; a control
/// changes no number; a cancel flag stops the run with no report.
#[test]
fn runs_report_progress_and_can_be_cancelled() {
    use smm_core::sim::{Progress, RunControl};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let mut req = SimulationRequest::from_json(EXAMPLE).unwrap();
    req.config.iterations = 100_000;
    req.config.enable_early_termination = false;
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let log = Arc::clone(&seen);
    let opts = RunOptions {
        threads: Some(2),
        control: RunControl::default().with_progress(move |p| log.lock().unwrap().push(p)),
        ..Default::default()
    };
    let watched = simulate(&req, &opts).unwrap();
    assert_eq!(watched, simulate(&req, &with_threads(1)).unwrap());
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].done < w[1].done));
    assert_eq!(
        seen.last(),
        Some(&Progress {
            done: 100_000,
            total: 100_000
        })
    );
    // Cancel from the progress callback: the run stops at the next wave.
    let flag = Arc::new(AtomicBool::new(false));
    let set = Arc::clone(&flag);
    let opts = RunOptions {
        threads: Some(1),
        control: RunControl::default()
            .with_cancel(Arc::clone(&flag))
            .with_progress(move |_| set.store(true, Ordering::Relaxed)),
        ..Default::default()
    };
    let e = simulate(&req, &opts).unwrap_err();
    assert!(
        matches!(e, SimulationError::Cancelled { iterations_done } if iterations_done > 0 && iterations_done < 100_000),
        "{e}"
    );
    assert_eq!(e.kind(), smm_core::error::ErrorKind::Cancelled);
    assert_eq!(e.kind().code(), 28);
}

/// The example workspace with the precision rule and a target half-width.
fn precise(target: f64) -> SimulationRequest {
    let mut req = example();
    req.config.iterations = 5_000_000;
    // A shard that runs to the end does all 5 million; under the coverage
    // build that took about the default two minutes (a CI run timed out at
    // 4.95 million), so these runs get an hour: the harness's own limit
    // still catches a hang.
    req.config.timeout_seconds = Some(3_600);
    req.config.enable_early_termination = true;
    req.config.stopping_rule = None; // v2's default: precision
    req.config.precision = Some(sim::PrecisionTarget {
        half_width: Some(target),
        ..Default::default()
    });
    req
}

#[test]
fn the_precision_rule_stops_where_the_normal_approximation_says() {
    let mut runs = Vec::new();
    for target in [0.002, 0.0005] {
        let r = simulate(&precise(target), &with_threads(2)).unwrap();
        let c = &r.convergence_metrics;
        let n = r.reproducibility.iterations_run;
        assert_eq!(c.stopping_rule, "precision");
        assert_eq!(c.stopped_by.as_deref(), Some("precision"));
        assert!(c.terminated_early && c.converged);
        assert_eq!(c.iterations_without_early_termination, 5_000_000);
        assert!(c.achieved_half_width <= target, "{c:?}");
        assert_eq!(c.target_half_width, Some(target));
        // The half-width is the report's own interval.
        let ci = &r.readiness_score.confidence;
        assert!((ci.upper - ci.lower - 2.0 * c.achieved_half_width).abs() < 1e-12);
        // The normal approximation from the run's own standard deviation.
        let z = 1.959963984540054;
        let predicted = (z * r.readiness_score.std / target).powi(2);
        assert!(
            (n as f64 - predicted).abs() <= BLOCK_SIZE as f64,
            "target {target}: stopped at {n}, predicted {predicted:.0}"
        );
        // It stopped at the first boundary that met the target: one block
        // less would not have.
        assert!(n.is_multiple_of(BLOCK_SIZE));
        runs.push(n as f64);
    }
    // A quarter of the half-width needs about sixteen times the iterations.
    let ratio = runs[1] / runs[0];
    assert!((14.0..18.0).contains(&ratio), "ratio {ratio}");
}

#[test]
fn precision_targets_may_be_relative_and_name_more_metrics() {
    let mut req = precise(0.005);
    req.config.precision = Some(sim::PrecisionTarget {
        half_width: Some(0.005),
        relative: true,
        metrics: [("costEstimateUSD".to_string(), 0.01)].into(),
        ..Default::default()
    });
    let r = simulate(&req, &with_threads(2)).unwrap();
    let c = &r.convergence_metrics;
    assert_eq!(c.precision_targets.len(), 2);
    assert_eq!(c.precision_targets[1].metric, "costEstimateUSD");
    for t in &c.precision_targets {
        assert!(
            t.met && t.achieved_half_width <= t.target_half_width,
            "{t:?}"
        );
    }
    // Relative: 0.5 % of the readiness mean, 1 % of the cost mean.
    let t0 = c.precision_targets[0].target_half_width;
    assert!((t0 - 0.005 * r.readiness_score.mean).abs() < 1e-12);
    let t1 = c.precision_targets[1].target_half_width;
    assert!((t1 - 0.01 * r.cost_estimate_usd.mean).abs() < 1e-9);

    // Never before minIterations, never past the requested iterations.
    let mut req = precise(0.5);
    req.config.precision.as_mut().unwrap().min_iterations = 3000;
    let r = simulate(&req, &with_threads(1)).unwrap();
    assert_eq!(r.reproducibility.iterations_run, 3072);
    let mut req = precise(0.00001);
    req.config.iterations = 4000;
    let r = simulate(&req, &with_threads(1)).unwrap();
    assert_eq!(r.reproducibility.iterations_run, 4000);
    assert!(!r.convergence_metrics.terminated_early);
    assert!(!r.convergence_metrics.converged);
    assert_eq!(r.convergence_metrics.stopped_by, None);
}

#[test]
fn bad_precision_settings_name_the_field() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            json!({"enableEarlyTermination": false, "precision": {"halfWidth": 0.01}}),
            "/simulationConfig/enableEarlyTermination",
        ),
        (
            json!({"enableEarlyTermination": true, "stoppingRule": "window", "precision": {"halfWidth": 0.01}}),
            "/simulationConfig/precision",
        ),
        (
            json!({"enableEarlyTermination": true, "precision": {"halfWidth": -1}}),
            "/simulationConfig/precision/halfWidth",
        ),
        (
            json!({"enableEarlyTermination": true, "precision": {"halfWidth": 2, "relative": true}}),
            "/simulationConfig/precision/halfWidth",
        ),
        (
            json!({"enableEarlyTermination": true, "precision": {"minIterations": 999}}),
            "/simulationConfig/precision/minIterations",
        ),
        (
            json!({"enableEarlyTermination": true, "precision": {"metrics": {"readiness": 0.01}}}),
            "/simulationConfig/precision/metrics/readiness",
        ),
        (
            json!({"enableEarlyTermination": true, "precision": {"halfwidth": 0.01}}),
            "/simulationConfig/precision/halfwidth",
        ),
        (
            json!({"model": "smm-readiness-v3"}),
            "/simulationConfig/model",
        ),
    ];
    for (config, pointer) in cases {
        let e = err_of(|v| {
            for (k, x) in config.as_object().unwrap() {
                v["simulationConfig"][k] = x.clone();
            }
        });
        assert_eq!(e.pointer(), Some(pointer), "{config}: {e}");
    }
}

#[test]
fn model_v1_reproduces_its_reports_bit_for_bit() {
    // The report of the original example input made before v2 existed:
    // every field of it is in today's v1 report with the same value.
    let before: serde_json::Value =
        serde_json::from_str(include_str!("data/icblabs-seed42.v1-before-v2.json")).unwrap();
    let input: serde_json::Value =
        serde_json::from_str(include_str!("../../baselines/icblabs-seed42.input.json")).unwrap();
    let mut req = SimulationRequest::from_value(&input["simulationInput"]).unwrap();
    req.config.model = sim::ModelVersion::V1;
    let now: serde_json::Value =
        serde_json::from_str(&simulate(&req, &with_threads(3)).unwrap().to_json().unwrap())
            .unwrap();
    fn contained(old: &serde_json::Value, new: &serde_json::Value, at: &str) {
        match (old, new) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                for (k, v) in a {
                    let Some(w) = b.get(k) else {
                        panic!("{at}/{k} is gone")
                    };
                    contained(v, w, &format!("{at}/{k}"));
                }
            }
            (serde_json::Value::Array(a), serde_json::Value::Array(b)) => {
                assert_eq!(a.len(), b.len(), "{at}");
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    contained(x, y, &format!("{at}/{i}"));
                }
            }
            (serde_json::Value::Number(a), serde_json::Value::Number(b)) => {
                assert_eq!(
                    a.as_f64().map(f64::to_bits),
                    b.as_f64().map(f64::to_bits),
                    "{at}"
                );
            }
            (a, b) => assert_eq!(a, b, "{at}"),
        }
    }
    // Two misleading names were renamed since (the values are the same).
    let mut before = before;
    let c = before["convergenceMetrics"].as_object_mut().unwrap();
    let v = c.remove("requiredIterations").unwrap();
    c.insert("iterationsRun".into(), v);
    for node in before["workflow"]["nodes"].as_array_mut().unwrap() {
        let n = node.as_object_mut().unwrap();
        let v = n.remove("failureRate").unwrap();
        n.insert("failuresPerIteration".into(), v);
    }
    contained(&before, &now, "");
    // A report written before the renames still reads.
    let old = include_str!("data/icblabs-seed42.v1-before-v2.json");
    let back = sim::SimulationReport::from_json(old).unwrap();
    assert_eq!(back.convergence_metrics.iterations_run, 1000);
    // The window rule, as before, is v1's default.
    assert_eq!(now["convergenceMetrics"]["stoppingRule"], "window");
}

#[test]
fn model_v2_draws_the_season_so_samples_do_not_follow_the_index() {
    // Under v1 the seasonal factor follows i mod 365: cost (which it
    // multiplies) correlates with sin(2πi/365). Under v2 it does not.
    let corr = |model| {
        let mut req = example();
        req.config.iterations = 36_500;
        req.config.enable_early_termination = false;
        req.config.model = model;
        let out = sim::run(
            &req,
            &RunOptions {
                threads: Some(2),
                keep_samples: true,
                ..Default::default()
            },
        )
        .unwrap();
        let cost = out.samples.unwrap().cost_estimate_usd;
        let season: Vec<f64> = (0..cost.len())
            .map(|i| (2.0 * std::f64::consts::PI * (i % 365) as f64 / 365.0).sin())
            .collect();
        let n = cost.len() as f64;
        let (mx, my) = (cost.iter().sum::<f64>() / n, season.iter().sum::<f64>() / n);
        let cov: f64 = cost
            .iter()
            .zip(&season)
            .map(|(x, y)| (x - mx) * (y - my))
            .sum();
        let vx: f64 = cost.iter().map(|x| (x - mx).powi(2)).sum();
        let vy: f64 = season.iter().map(|y| (y - my).powi(2)).sum();
        cov / (vx * vy).sqrt()
    };
    let v1 = corr(sim::ModelVersion::V1);
    let v2 = corr(sim::ModelVersion::V2);
    assert!(v1 > 0.3, "v1 follows the index: {v1}");
    // 36,500 independent samples: |r| beyond 0.03 would be 4.5 standard errors.
    assert!(v2.abs() < 0.03, "v2 does not: {v2}");
}

#[test]
fn a_stop_inside_a_later_shard_is_found_by_the_merge() {
    // The first shard is shorter than minIterations: the stop falls inside
    // the second, which ran to its end; the merge recomputes its head.
    let req = precise(0.003);
    let n = req.config.iterations;
    let single = simulate(&req, &with_threads(1)).unwrap();
    let stop = single.reproducibility.iterations_run;
    assert!(stop > 1024 && stop < 1_000_000, "{stop}");
    let parts = vec![
        simulate_shard(&req, 0, 256, &with_threads(1)).unwrap(),
        simulate_shard(&req, 256, stop + 10 * BLOCK_SIZE, &with_threads(2)).unwrap(),
        simulate_shard(&req, stop + 10 * BLOCK_SIZE, n, &with_threads(2)).unwrap(),
    ];
    let merged = merge_partials(parts.clone(), &with_threads(2))
        .unwrap()
        .report;
    assert_eq!(merged.to_json().unwrap(), single.to_json().unwrap());
    // At the shards' boundary exactly.
    let parts2 = vec![
        simulate_shard(&req, 0, stop, &with_threads(1)).unwrap(),
        simulate_shard(&req, stop, n, &with_threads(1)).unwrap(),
    ];
    assert!(!parts2[0].terminated_early());
    let merged = merge_partials(parts2, &with_threads(1)).unwrap().report;
    assert_eq!(merged.to_json().unwrap(), single.to_json().unwrap());

    // A later shard's block sums are checked: altered, refused.
    let mut v: serde_json::Value = serde_json::from_str(&parts[1].to_json().unwrap()).unwrap();
    let x = v["blockSums"][0][3][0].as_f64().unwrap();
    v["blockSums"][0][3][0] = json!(x + 1e-9);
    let e = sim::PartialResult::from_json(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("block sums"), "{e}");
    let mut v: serde_json::Value = serde_json::from_str(&parts[1].to_json().unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("blockSums");
    assert!(sim::PartialResult::from_json(&v.to_string()).is_err());
    // A first shard that claims to have stopped where the targets are not met.
    let mut v: serde_json::Value = serde_json::from_str(&parts[0].to_json().unwrap()).unwrap();
    v["terminatedEarly"] = json!(true);
    v["end"] = json!(512);
    assert!(sim::PartialResult::from_json(&v.to_string()).is_err());
}

#[test]
fn no_silent_defaults_in_the_workspace_context() {
    // A misspelled key names the field it meant.
    let e = err_of(|v| {
        let ctx = v["workspaceContext"].as_object_mut().unwrap();
        let risk = ctx.remove("riskProfile").unwrap();
        ctx.insert("riskprofile".into(), risk);
    });
    assert_eq!(e.pointer(), Some("/workspaceContext/riskprofile"), "{e}");
    assert!(
        e.to_string().contains("did you mean \"riskProfile\""),
        "{e}"
    );
    let e = err_of(|v| {
        let b = v["workspaceContext"]["budget"].as_object_mut().unwrap();
        let cap = b.remove("hardCap").unwrap();
        b.insert("hardcap".into(), cap);
    });
    assert_eq!(e.pointer(), Some("/workspaceContext/budget/hardcap"), "{e}");
    assert!(e.to_string().contains("\"hardCap\""), "{e}");
    let e = err_of(|v| v["workspaceContext"]["budget"]["breakdown"]["paidAd"] = json!(1));
    assert!(e.to_string().contains("paidAds"), "{e}");
    // Null or missing riskProfile: no default.
    let e = err_of(|v| v["workspaceContext"]["riskProfile"] = serde_json::Value::Null);
    assert_eq!(e.pointer(), Some("/workspaceContext/riskProfile"), "{e}");
    let e = err_of(|v| {
        v["workspaceContext"]
            .as_object_mut()
            .unwrap()
            .remove("riskProfile");
    });
    assert_eq!(e.pointer(), Some("/workspaceContext/riskProfile"), "{e}");
    // A whole v2 contract is a valid context.
    let contract: serde_json::Value =
        serde_json::from_str(include_str!("../../examples/workspace.icblabs.v2.json")).unwrap();
    let req = SimulationRequest::from_value(&json!({"workspaceContext": contract})).unwrap();
    assert_eq!(
        req.workspace_context.risk_profile.as_deref(),
        Some("medium")
    );
    // The same check through JSON text.
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    v["workspaceContext"]["primarychannels"] = json!(["x"]);
    let e = SimulationRequest::from_json(&v.to_string()).unwrap_err();
    assert!(e.to_string().contains("primaryChannels"), "{e}");
}

#[test]
fn errors_speak_json_not_rust() {
    let e = err_of(|v| v["workspaceContext"]["budget"]["hardCap"] = json!("lots"));
    let msg = e.to_string();
    assert!(msg.contains("expected a number"), "{msg}");
    assert!(!msg.contains("f64"), "{msg}");
    let e = err_of(|v| v["workspaceContext"]["primaryChannels"] = json!({"a": 1}));
    let msg = e.to_string();
    assert!(msg.contains("object") && msg.contains("array"), "{msg}");
    assert!(!msg.contains("map") && !msg.contains("sequence"), "{msg}");
    let e = err_of(|v| v["simulationConfig"]["iterations"] = json!(-5));
    assert!(e.to_string().contains("non-negative integer"), "{e}");
    let e = err_of(|v| v["workspaceContext"]["budget"] = json!([1]));
    assert!(!e.to_string().contains("struct"), "{e}");
}

#[test]
fn a_nodes_failure_rate_is_reported_per_iteration_and_per_attempt() {
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
    v["workflowJson"] = json!({"nodes": [
        {"id": "flaky", "estimatedDuration": 10, "failureRate": 0.3,
         "retryPolicy": {"maxRetries": 3, "backoffMs": 1}},
        {"id": "after", "dependencies": ["flaky"], "estimatedDuration": 10, "failureRate": 0.0}
    ]});
    v["simulationConfig"]["iterations"] = json!(200_000);
    v["simulationConfig"]["enableEarlyTermination"] = json!(false);
    let req = SimulationRequest::from_json(&v.to_string()).unwrap();
    let r = simulate(&req, &with_threads(2)).unwrap();
    let nodes = &r.workflow.as_ref().unwrap().nodes;
    let flaky = &nodes[0];
    // The input's 0.3 is per attempt; four attempts all failing is 0.3^4.
    assert!(
        (flaky.failure_rate_per_attempt - 0.3).abs() < 0.005,
        "{flaky:?}"
    );
    assert!(
        (flaky.failures_per_iteration - 0.0081).abs() < 0.001,
        "{flaky:?}"
    );
    assert_eq!(flaky.attempts, 200_000 + flaky.retries);
    // Its dependent is skipped when it fails, and never fails itself.
    assert_eq!(nodes[1].skipped, flaky.failures);
    assert_eq!(nodes[1].attempts, 200_000 - flaky.failures);
    assert_eq!(nodes[1].failure_rate_per_attempt, 0.0);
}

/// The binary form of a partial: it decodes to the same partial as its
/// JSON (exact and bounded, a later shard of a precision run with its block
/// sums), merges to the single run's report, and a damaged or forged one is
/// an `InvalidPartial`, never a panic or an allocation its sizes alone ask
/// for.
#[test]
fn binary_partials_round_trip_and_refuse_damage() {
    let o = with_threads(1);
    let mut exact = example();
    exact.config.iterations = 3_000;
    exact.config.percentile_mode = PercentileMode::Exact;
    let mut bounded = exact.clone();
    bounded.config.percentile_mode = PercentileMode::Bounded;
    for req in [&exact, &bounded] {
        let parts = [
            simulate_shard(req, 0, 1024, &o).unwrap(),
            simulate_shard(req, 1024, 3000, &o).unwrap(),
        ];
        let back: Vec<_> = parts
            .iter()
            .map(|p| {
                let b = p.to_bytes().unwrap();
                let q = sim::PartialResult::from_bytes(&b).unwrap();
                assert_eq!(&q, p);
                assert_eq!(
                    q,
                    sim::PartialResult::from_json(&p.to_json().unwrap()).unwrap()
                );
                q
            })
            .collect();
        let merged = merge_partials(back, &o).unwrap();
        assert_eq!(
            merged.report.to_json().unwrap(),
            simulate(req, &o).unwrap().to_json().unwrap()
        );
    }
    // Exact samples are raw: 7 columns of 8 bytes an iteration, plus the header.
    let p = simulate_shard(&exact, 0, 3000, &o).unwrap();
    let b = p.to_bytes().unwrap();
    assert!(b.len() < 3000 * 7 * 8 + 8_000, "{}", b.len());
    assert!(b.len() * 2 < p.to_json().unwrap().len());
    let invalid = |bytes: &[u8]| {
        let e = sim::PartialResult::from_bytes(bytes).unwrap_err();
        assert!(
            matches!(
                e,
                SimulationError::InvalidPartial { .. } | SimulationError::Parse { .. }
            ),
            "{e:?}"
        );
    };
    invalid(&b[..b.len() - 1]);
    invalid(&[b.as_slice(), &[0]].concat());
    invalid(&b[..10]);
    invalid(b"SMMPART\x02whatever-follows-here-is-not-read");
    let mut nan = b.clone();
    let last = nan.len() - 8;
    nan[last..].copy_from_slice(&f64::NAN.to_le_bytes());
    invalid(&nan);
    let mut out_of_range = b.clone();
    out_of_range[last..].copy_from_slice(&1e300f64.to_le_bytes());
    invalid(&out_of_range);
    // Sizes past the limits are refused before anything is allocated.
    for (width, rows) in [(65u32, 1u64), (7, 100_000_001), (u32::MAX, u64::MAX)] {
        let mut forged = b[..28].to_vec();
        forged[8..12].copy_from_slice(&width.to_le_bytes());
        forged[12..20].copy_from_slice(&rows.to_le_bytes());
        invalid(&forged);
    }
    let mut huge_header = b[..28].to_vec();
    huge_header[20..28].copy_from_slice(&u64::MAX.to_le_bytes());
    invalid(&huge_header);
    // Samples inside the header: one place for them, after it.
    let header = p.to_json().unwrap().into_bytes();
    let mut forged = b"SMMPART\x01".to_vec();
    forged.extend_from_slice(&0u32.to_le_bytes());
    forged.extend_from_slice(&0u64.to_le_bytes());
    forged.extend_from_slice(&(header.len() as u64).to_le_bytes());
    forged.extend_from_slice(&header);
    invalid(&forged);
    // A bounded partial has no samples: a column count is a forgery.
    let q = simulate_shard(&bounded, 0, 3000, &o)
        .unwrap()
        .to_bytes()
        .unwrap();
    let mut with_columns = q.clone();
    with_columns[8..12].copy_from_slice(&7u32.to_le_bytes());
    invalid(&with_columns);
}

/// A shard's samples are checked against its column's minimum with float
/// comparison, under which -0.0 equals 0.0; the exact percentiles order
/// values by their bits, under which -0.0 lies below 0.0. A partial whose
/// minimum says 0.0 and one of whose samples is -0.0 once made the selection
/// subtract past zero (a panic, with overflow checks on). It merges now.
#[test]
fn a_negative_zero_sample_under_a_zero_minimum_merges() {
    let mut req = example();
    req.config.iterations = 1000;
    req.config.percentile_mode = sim::PercentileMode::Exact;
    let part = sim::simulate_shard(&req, 0, 1000, &with_threads(1)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&part.to_json().unwrap()).unwrap();
    // duplicationRisk (column 3) is clamped at 0.0 from below.
    v["moments"][3]["min"] = json!(0.0);
    v["samples"][3][0] = json!(-0.0);
    let text = v.to_string();
    assert!(text.contains("-0.0"), "the sample must travel as -0.0");
    let hostile = sim::PartialResult::from_json(&text).unwrap();
    let merged = sim::merge_partials(vec![hostile], &with_threads(2)).unwrap();
    let p = &merged.report.duplication_risk.percentiles;
    assert!(p.p5.is_finite() && p.p5 >= 0.0 && p.p95 <= 0.4, "{p:?}");
}

/// An exact run that returns no samples keeps 32-bit keys and recomputes
/// the few values its percentiles need (`sim::keyed`); one that returns
/// samples keeps every value. Both must give the same report, bit for bit,
/// whatever piles the clamps make and wherever a run stops.
#[test]
fn keyed_exact_runs_report_what_value_columns_report() {
    type Change = Box<dyn Fn(&mut SimulationRequest)>;
    let variants: Vec<(&str, Change)> = vec![
        ("example", Box::new(|_| {})),
        (
            "no early stop",
            Box::new(|r| r.config.enable_early_termination = false),
        ),
        (
            "model v1, window rule",
            Box::new(|r| r.config.model = sim::ModelVersion::V1),
        ),
        (
            "high risk",
            Box::new(|r| r.workspace_context.risk_profile = Some("high".into())),
        ),
        (
            "low risk",
            Box::new(|r| r.workspace_context.risk_profile = Some("low".into())),
        ),
        // Cost risk pinned at 1: readiness and cost pile at clamps.
        (
            "tiny hard cap",
            Box::new(|r| r.workspace_context.budget.hard_cap = 1e-300),
        ),
        // Every makespan the same: the makespan column is one value.
        (
            "zero durations",
            Box::new(|r| {
                if let Some(w) = &mut r.workflow {
                    for n in &mut w.nodes {
                        n.estimated_duration = 0.0;
                    }
                }
            }),
        ),
        // Makespans below an f32's range: every one shares a key, and the
        // run is taken again with values.
        (
            "tiny durations",
            Box::new(|r| {
                if let Some(w) = &mut r.workflow {
                    for n in &mut w.nodes {
                        n.estimated_duration = 1e-50;
                    }
                }
            }),
        ),
        ("no workflow", Box::new(|r| r.workflow = None)),
    ];
    for (name, change) in &variants {
        for (iterations, threads) in [(1, 1), (257, 2), (5_000, 1), (40_000, 2)] {
            let mut req = example();
            req.config.iterations = iterations;
            req.config.percentile_mode = PercentileMode::Exact;
            change(&mut req);
            let keyed = simulate(&req, &with_threads(threads)).unwrap();
            let valued = sim::run(
                &req,
                &RunOptions {
                    threads: Some(threads),
                    keep_samples: true,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(
                keyed.to_json().unwrap(),
                valued.report.to_json().unwrap(),
                "{name}, {iterations} iterations, {threads} threads"
            );
        }
    }
}

/// A bounded run's workers count their blocks into histograms as they run
/// them, a whole wave at a time: a run that stops inside a wave must take
/// the wave's later blocks out again. Its percentiles are those of the same
/// run asked for exactly the iterations it ran, on any thread count, for
/// both stopping rules.
#[test]
fn a_bounded_run_that_stops_early_counts_only_what_it_ran() {
    let window = {
        let mut req = example();
        req.config.iterations = 200_000;
        req.config.enable_early_termination = true;
        req.config.convergence_threshold = 0.01;
        req
    };
    let mut precision = precise(0.002);
    precision.config.iterations = 400_000;
    for mut req in [window, precision] {
        req.config.percentile_mode = PercentileMode::Bounded;
        let one = simulate(&req, &with_threads(1)).unwrap();
        let ran = one.convergence_metrics.iterations_run;
        assert!(one.convergence_metrics.terminated_early);
        // Not at a wave's end (128 blocks of 256): later blocks were counted.
        assert_ne!(ran % (128 * BLOCK_SIZE), 0, "stopped at {ran}");
        for t in [2, 3] {
            let other = simulate(&req, &with_threads(t)).unwrap();
            assert_eq!(
                one.to_json().unwrap(),
                other.to_json().unwrap(),
                "threads {t}"
            );
        }
        let mut exactly = req.clone();
        exactly.config.iterations = ran;
        exactly.config.enable_early_termination = false;
        exactly.config.precision = None;
        exactly.config.stopping_rule = None;
        let full = simulate(&exactly, &with_threads(2)).unwrap();
        assert_eq!(full.reproducibility.iterations_run, ran);
        for (a, b) in [
            (&one.readiness_score, &full.readiness_score),
            (&one.policy_pass_pct, &full.policy_pass_pct),
            (&one.citation_coverage, &full.citation_coverage),
        ] {
            assert_eq!(
                serde_json::to_value(&a.percentiles).unwrap(),
                serde_json::to_value(&b.percentiles).unwrap()
            );
            assert_eq!(a.mean.to_bits(), b.mean.to_bits());
        }
    }
}

/// A bounded run's workers count in 16-bit tallies whose wrap-arounds are
/// kept aside: at a size where the clamped piles (citations at 0.7, in
/// this example about 44% of the iterations) pass 2^16 several times in
/// one worker, the report is the same on 1, 2 and 3 threads and from
/// shards merged, bit for bit.
#[test]
fn bounded_runs_whose_tallies_wrap_agree_on_any_layout() {
    const WRAP: u64 = 1 << 16;
    let n = 400_000;
    let mut req = example();
    req.config.iterations = n;
    req.config.enable_early_termination = false;
    req.config.percentile_mode = PercentileMode::Bounded;
    let whole = simulate_shard(&req, 0, n, &with_threads(1)).unwrap();
    // The run's fullest bucket holds several wraps' worth: on one thread
    // its worker's counter wrapped at least twice, and on two at least one
    // of the workers' wrapped.
    let shipped: serde_json::Value = serde_json::from_str(&whole.to_json().unwrap()).unwrap();
    let fullest = shipped["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|h| h.as_array().unwrap())
        .map(|bucket| bucket[3].as_u64().unwrap())
        .max()
        .unwrap();
    assert!(fullest > 2 * WRAP, "fullest bucket {fullest}");
    let one = simulate(&req, &with_threads(1)).unwrap().to_json().unwrap();
    for t in [2, 3] {
        let other = simulate(&req, &with_threads(t)).unwrap().to_json().unwrap();
        assert_eq!(one, other, "{t} threads");
    }
    let cuts = [0, 512 * BLOCK_SIZE, n];
    let parts: Vec<_> = cuts
        .windows(2)
        .map(|w| simulate_shard(&req, w[0], w[1], &with_threads(2)).unwrap())
        .collect();
    let merged = merge_partials(parts, &with_threads(1)).unwrap().report;
    assert_eq!(one, merged.to_json().unwrap(), "shards");
    let from_whole = merge_partials(vec![whole], &with_threads(1))
        .unwrap()
        .report;
    assert_eq!(one, from_whole.to_json().unwrap(), "one shard");
}

/// A zero written as `-0` (JSON allows it; some encoders write it for a
/// negated zero) is the zero a reader means: the report of a request whose
/// spend and durations say `-0.0` is the report of the same request saying
/// `0`, bit for bit (a `-0.0` once came back in costEstimateUSD's minimum,
/// maximum and percentiles).
#[test]
fn a_negative_zero_in_a_request_reports_as_zero() {
    let zeroed = |zero: serde_json::Value| {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
        let b = &mut v["workspaceContext"]["budget"];
        for item in [
            "paidAds",
            "llmModelSpend",
            "rendering",
            "thirdPartyServices",
        ] {
            b["breakdown"][item] = zero.clone();
        }
        b["weeklyCap"] = zero.clone();
        if let Some(nodes) = v["workflowJson"]["nodes"].as_array_mut() {
            for n in nodes {
                n["estimatedDuration"] = zero.clone();
                n["failureRate"] = zero.clone();
            }
        }
        v["simulationConfig"]["iterations"] = json!(2000);
        let text = v.to_string();
        let req = SimulationRequest::from_json(&text).unwrap();
        let report = simulate(&req, &with_threads(1)).unwrap();
        serde_json::to_string(&report).unwrap()
    };
    let negative = zeroed(json!(-0.0));
    let positive = zeroed(json!(0.0));
    assert!(!negative.contains("-0.0"), "{negative}");
    assert_eq!(negative, positive);
}
