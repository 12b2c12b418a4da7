//! Parameter sweeps: the cartesian product, reproducible point by point.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use smm_core::sim::sweep::{plan, point_seed, row, sweep};
use smm_core::sim::{RunOptions, simulate};

const EXAMPLE: &str = include_str!("../../examples/icblabs-seed42.request.json");

fn request() -> Value {
    serde_json::from_str(EXAMPLE).unwrap()
}

fn grid(axes: &[(&str, Value)]) -> BTreeMap<String, Vec<Value>> {
    axes.iter()
        .map(|(p, v)| ((*p).to_string(), v.as_array().unwrap().clone()))
        .collect()
}

fn opts(threads: usize) -> RunOptions {
    RunOptions {
        threads: Some(threads),
        ..Default::default()
    }
}

#[test]
fn a_sweep_is_the_cartesian_product_and_each_point_reruns_alone() {
    let g = grid(&[
        (
            "/workspaceContext/budget/hardCap",
            json!([2000, 5000, 20000]),
        ),
        ("/workspaceContext/riskProfile", json!(["low", "high"])),
    ]);
    let rows = sweep(&request(), &g, 2000, 7, &opts(2)).unwrap();
    assert_eq!(rows.len(), 6);
    // Axes in pointer order, the last fastest.
    let seen: Vec<(Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r.inputs["/workspaceContext/budget/hardCap"].clone(),
                r.inputs["/workspaceContext/riskProfile"].clone(),
            )
        })
        .collect();
    assert_eq!(seen[0], (json!(2000), json!("low")));
    assert_eq!(seen[1], (json!(2000), json!("high")));
    assert_eq!(seen[5], (json!(20000), json!("high")));
    // Every point has its own seed; the rows say what the model says: a
    // higher hard cap never lowers readiness (same risk, fewer cost risks).
    let seeds: std::collections::BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
    assert_eq!(seeds.len(), 6);
    assert!(rows[4].readiness_mean >= rows[0].readiness_mean - 0.01);
    // Re-run any point alone: the same row.
    let points = plan(&request(), &g, 2000, 7).unwrap();
    let p = &points[3];
    let alone = simulate(&p.request, &opts(1)).unwrap();
    assert_eq!(row(p, &alone), rows[3]);
    // A point's seed depends on the sweep's seed and its values, not on
    // the rest of the grid: a smaller grid gives the same row.
    let small = grid(&[
        ("/workspaceContext/budget/hardCap", json!([5000])),
        ("/workspaceContext/riskProfile", json!(["high"])),
    ]);
    let one = sweep(&request(), &small, 2000, 7, &opts(1)).unwrap();
    assert_eq!(one[0].seed, rows[3].seed);
    assert_eq!(
        one[0].readiness_mean.to_bits(),
        rows[3].readiness_mean.to_bits()
    );
    assert_eq!(
        point_seed(7, &rows[3].inputs).unwrap(),
        rows[3].seed,
        "the seed is documented: SHA-256 of the canonical point"
    );
    // Another sweep seed, other numbers.
    let other = sweep(&request(), &small, 2000, 8, &opts(1)).unwrap();
    assert_ne!(other[0].seed, one[0].seed);
}

#[test]
fn a_sweep_reaches_anything_in_the_request() {
    let g = grid(&[
        ("/workflowJson/nodes/1/failureRate", json!([0.0, 0.5])),
        (
            "/workspaceContext/primaryChannels",
            json!([["linkedin"], ["linkedin", "x", "tiktok"]]),
        ),
        ("/simulationConfig/percentileMode", json!(["exact"])),
    ]);
    let rows = sweep(&request(), &g, 1000, 1, &opts(1)).unwrap();
    assert_eq!(rows.len(), 4);
    // More failures, lower success.
    assert!(rows[2].success_rate.unwrap() < rows[0].success_rate.unwrap());
}

#[test]
fn bad_grids_name_the_axis() {
    let err = |axes: &[(&str, Value)]| plan(&request(), &grid(axes), 1000, 1).unwrap_err();
    let e = err(&[("/workspaceContext/nothing/here", json!([1]))]);
    assert_eq!(e.pointer(), Some("/workspaceContext/nothing/here"), "{e}");
    let e = err(&[("/workspaceContext/riskProfile", json!(["low", "reckless"]))]);
    assert!(
        e.to_string().contains("reckless") || e.to_string().contains("sweep point 1"),
        "{e}"
    );
    let e = err(&[("/workspaceContext/budget/hardCap", json!([]))]);
    assert!(e.to_string().contains("no value"), "{e}");
    let e = err(&[("/simulationConfig/randomSeed", json!([1, 2]))]);
    assert!(e.to_string().contains("seed"), "{e}");
    let e = err(&[("workspaceContext", json!([1]))]);
    assert!(e.to_string().contains("JSON pointer"), "{e}");
    let e = err(&[("/workflowJson/nodes/99/failureRate", json!([0.1]))]);
    assert!(e.to_string().contains("does not exist"), "{e}");
    let many: Vec<Value> = (0..400).map(|i| json!(1000 + i)).collect();
    let e = err(&[
        (
            "/workspaceContext/budget/hardCap",
            Value::Array(many.clone()),
        ),
        ("/workspaceContext/budget/weeklyCap", Value::Array(many)),
    ]);
    assert!(e.to_string().contains("more than 100000 points"), "{e}");
    assert!(plan(&request(), &BTreeMap::new(), 10, 1).is_err());
}
