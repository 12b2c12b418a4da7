//! Properties of the engine over generated inputs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use proptest::prelude::*;
use smm_core::sim::{
    BLOCK_SIZE, MetricSummary, ModelVersion, PrecisionTarget, RunOptions, SimulationReport,
    SimulationRequest, StoppingRule, merge_partials, run, simulate, simulate_shard,
};
use smm_proptests::request;

fn opts(threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        keep_samples: false,
        ..Default::default()
    }
}

fn samples(req: &SimulationRequest) -> smm_core::sim::Samples {
    run(
        req,
        &RunOptions {
            threads: Some(1),
            keep_samples: true,
            ..Default::default()
        },
    )
    .unwrap()
    .samples
    .unwrap()
}

fn metrics(r: &SimulationReport) -> Vec<(&'static str, &MetricSummary, f64, f64)> {
    let mut v = vec![
        ("readiness", &r.readiness_score, 0.0, 1.0),
        ("policy", &r.policy_pass_pct, 0.5, 1.0),
        ("citation", &r.citation_coverage, 0.7, 1.0),
        ("duplication", &r.duplication_risk, 0.0, 0.4),
        ("technical", &r.technical_readiness, 0.6, 1.0),
        ("cost", &r.cost_estimate_usd, 0.0, f64::INFINITY),
    ];
    if let Some(w) = &r.workflow {
        v.push(("makespan", &w.makespan_ms, 0.0, f64::INFINITY));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn deterministic_across_thread_counts(req in request(1..3000), threads in 2usize..17) {
        let a = simulate(&req, &opts(1)).unwrap().to_json().unwrap();
        let b = simulate(&req, &opts(threads)).unwrap().to_json().unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a, simulate(&req, &opts(1)).unwrap().to_json().unwrap());
    }

    #[test]
    fn different_seeds_give_different_results(req in request(50..2000), delta in 1u64..u64::MAX) {
        let mut other = req.clone();
        other.config.random_seed = req.config.random_seed.wrapping_add(delta);
        let a = simulate(&req, &opts(1)).unwrap();
        let b = simulate(&other, &opts(1)).unwrap();
        prop_assert_ne!(a.readiness_score.mean, b.readiness_score.mean);
    }

    #[test]
    fn every_statistic_within_its_clamps_and_ordered(req in request(1..3000)) {
        let r = simulate(&req, &opts(2)).unwrap();
        let b = &req.workspace_context.budget.breakdown;
        let base = b.paid_ads + b.llm_model_spend + b.rendering + b.third_party_services;
        for (name, m, lo, hi) in metrics(&r) {
            let p = &m.percentiles;
            let ordered = [m.min, p.p5, p.p25, p.p50, p.p75, p.p95, m.max];
            prop_assert!(ordered.windows(2).all(|w| w[0] <= w[1]), "{name}: {ordered:?}");
            prop_assert!(lo <= m.min && m.max <= hi, "{name}: [{}, {}] outside [{lo}, {hi}]", m.min, m.max);
            prop_assert!(m.min <= m.mean && m.mean <= m.max, "{name}: mean outside [min, max]");
            prop_assert!(m.std >= 0.0 && m.std.is_finite());
            prop_assert!(m.confidence.lower <= m.mean && m.mean <= m.confidence.upper, "{name}: CI");
        }
        prop_assert!(r.cost_estimate_usd.min >= 0.7 * base * (1.0 - 1e-12));
        if let Some(w) = &r.workflow {
            prop_assert!((0.0..=1.0).contains(&w.success_rate));
            for n in &w.nodes {
                prop_assert!(n.failures + n.skipped <= r.reproducibility.iterations_run);
            }
        }
    }

    #[test]
    fn interval_narrows_as_iterations_grow(req in request(200..400)) {
        let small = simulate(&req, &opts(1)).unwrap();
        let mut big_req = req.clone();
        big_req.config.iterations = req.config.iterations * 16;
        let big = simulate(&big_req, &opts(2)).unwrap();
        let width = |m: &MetricSummary| m.confidence.upper - m.confidence.lower;
        // Readiness always varies; 16x the iterations shrinks the width about 4x.
        prop_assert!(width(&big.readiness_score) < width(&small.readiness_score));
    }

    #[test]
    fn a_higher_hard_cap_never_lowers_readiness(req in request(1..1500), factor in 1.0..10.0f64) {
        let mut richer = req.clone();
        richer.workspace_context.budget.hard_cap *= factor;
        let a = samples(&req);
        let b = samples(&richer);
        // Common random numbers: the hard cap changes no draw, so each iteration compares.
        for (x, y) in a.readiness_score.iter().zip(&b.readiness_score) {
            prop_assert!(y >= x, "{y} < {x}");
        }
    }

    #[test]
    fn enterprise_never_has_a_lower_policy_pass_than_high(req in request(1..1500)) {
        let mut high = req.clone();
        high.workspace_context.risk_profile = Some("high".into());
        let mut enterprise = req.clone();
        enterprise.workspace_context.risk_profile = Some("enterprise".into());
        let h = samples(&high);
        let e = samples(&enterprise);
        for (x, y) in h.policy_pass_pct.iter().zip(&e.policy_pass_pct) {
            prop_assert!(y >= x, "enterprise {y} < high {x}");
        }
        let rh = simulate(&high, &opts(1)).unwrap();
        let re = simulate(&enterprise, &opts(1)).unwrap();
        prop_assert!(re.policy_pass_pct.mean >= rh.policy_pass_pct.mean);
    }

    #[test]
    fn any_shard_layout_merges_to_the_single_run(
        req in request(1..5000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
        early in any::<bool>(),
        threads in 1usize..4,
    ) {
        let mut req = req;
        req.config.enable_early_termination = early;
        req.config.convergence_threshold = 0.01;
        let n = req.config.iterations;
        let blocks = n.div_ceil(BLOCK_SIZE);
        let mut bounds: Vec<u64> = cuts.iter().map(|c| c.index(blocks as usize) as u64 * BLOCK_SIZE).collect();
        bounds.push(0);
        bounds.push(n);
        bounds.sort_unstable();
        bounds.dedup();
        let parts: Vec<_> = bounds
            .windows(2)
            .map(|w| simulate_shard(&req, w[0], w[1], &opts(threads)).unwrap())
            .collect();
        let merged = merge_partials(parts, &opts(threads)).unwrap().report;
        prop_assert_eq!(simulate(&req, &opts(2)).unwrap().to_json().unwrap(), merged.to_json().unwrap());
    }

    /// The precision rule stops at the same iteration on any thread count
    /// and any shard layout: the merge decides it from the merged
    /// statistics at block boundaries.
    #[test]
    fn the_precision_stop_is_the_same_on_any_layout(
        req in request(1000..12_000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        half_width in 0.002..0.02f64,
        relative in any::<bool>(),
        also_citation in any::<bool>(),
        v1 in any::<bool>(),
        threads in 1usize..4,
    ) {
        let mut req = req;
        req.config.enable_early_termination = true;
        req.config.stopping_rule = Some(StoppingRule::Precision);
        req.config.model = if v1 { ModelVersion::V1 } else { ModelVersion::V2 };
        req.config.precision = Some(PrecisionTarget {
            half_width: Some(if relative { half_width * 2.0 } else { half_width }),
            relative,
            metrics: if also_citation {
                [("citationCoverage".to_string(), 0.004)].into()
            } else {
                Default::default()
            },
            ..PrecisionTarget::default()
        });
        let n = req.config.iterations;
        let blocks = n.div_ceil(BLOCK_SIZE);
        let mut bounds: Vec<u64> = cuts.iter().map(|c| c.index(blocks as usize) as u64 * BLOCK_SIZE).collect();
        bounds.push(0);
        bounds.push(n);
        bounds.sort_unstable();
        bounds.dedup();
        let parts: Vec<_> = bounds
            .windows(2)
            .map(|w| simulate_shard(&req, w[0], w[1], &opts(threads)).unwrap())
            .collect();
        // Every partial survives a trip through JSON (its block sums checked).
        let parts: Vec<_> = parts
            .iter()
            .map(|p| smm_core::sim::PartialResult::from_json(&p.to_json().unwrap()).unwrap())
            .collect();
        let merged = merge_partials(parts, &opts(threads)).unwrap().report;
        let single = simulate(&req, &opts(1)).unwrap();
        prop_assert_eq!(single.to_json().unwrap(), merged.to_json().unwrap());
        let c = &single.convergence_metrics;
        if c.terminated_early {
            prop_assert!(single.reproducibility.iterations_run >= 1000);
            prop_assert!(single.reproducibility.iterations_run.is_multiple_of(BLOCK_SIZE));
            prop_assert!(c.precision_targets.iter().all(|t| t.met));
            prop_assert_eq!(c.stopped_by.as_deref(), Some("precision"));
        }
    }
}

/// Value stability: literal outputs for a fixed seed (rand's practice). A
/// change here is a change of every user's numbers: bump the CHANGELOG.
#[test]
fn value_stability_for_a_fixed_seed() {
    let req = SimulationRequest::from_json(
        r#"{"workspaceContext": {"primaryChannels": ["linkedin"], "riskProfile": "low",
            "budget": {"hardCap": 1000, "breakdown": {"paidAds": 100, "llmModelSpend": 50,
            "rendering": 25, "thirdPartyServices": 5}}},
            "simulationConfig": {"iterations": 1000, "randomSeed": 7}}"#,
    )
    .unwrap();
    let values = |req: &SimulationRequest| {
        let r = simulate(req, &opts(1)).unwrap();
        [
            r.readiness_score.mean,
            r.policy_pass_pct.percentiles.p50,
            r.cost_estimate_usd.max,
        ]
    };
    // Model v2, the default.
    let got = values(&req);
    assert_eq!(
        got.map(f64::to_bits),
        V2_VALUES.map(f64::to_bits),
        "got {got:?}"
    );
    // Model v1 gives what it gave before v2 existed.
    let mut v1 = req.clone();
    v1.config.model = ModelVersion::V1;
    let got = values(&v1);
    assert_eq!(
        got.map(f64::to_bits),
        V1_VALUES.map(f64::to_bits),
        "got {got:?}"
    );
}

const V1_VALUES: [f64; 3] = [0.748296572031482, 0.7274261181930448, 366.34237039504524];
const V2_VALUES: [f64; 3] = [0.7511438183268382, 0.7392741457478811, 334.3025673807969];
