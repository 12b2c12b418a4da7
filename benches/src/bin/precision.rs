//! The precision rule on the example workspace: `precision [REPEATS]`.
//! For each target half-width, prints the iterations the run used, the
//! count the normal approximation predicts from the run's own standard
//! deviation, the achieved half-width and the median wall time of REPEATS
//! runs on 2 threads (recorded in BENCHMARKS.md).

use std::process::ExitCode;
use std::time::Instant;

use smm_benches::baseline_request;
use smm_core::sim::{PercentileMode, PrecisionTarget, RunOptions, simulate};

fn main() -> ExitCode {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let opts = RunOptions {
        threads: Some(2),
        ..Default::default()
    };
    let mut first = None;
    println!("target     iterations  predicted  achieved    ratio  median_s");
    for target in [0.002, 0.001, 0.0005] {
        let Some(mut req) = baseline_request(100_000_000, PercentileMode::Bounded) else {
            return ExitCode::FAILURE;
        };
        req.config.enable_early_termination = true;
        req.config.precision = Some(PrecisionTarget {
            half_width: Some(target),
            ..Default::default()
        });
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..repeats.max(1) {
            let t = Instant::now();
            let Ok(r) = simulate(&req, &opts) else {
                return ExitCode::FAILURE;
            };
            times.push(t.elapsed().as_secs_f64());
            last = Some(r);
        }
        let Some(r) = last else {
            return ExitCode::FAILURE;
        };
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        let n = r.reproducibility.iterations_run;
        let z = 1.959_963_984_540_054;
        let predicted = (z * r.readiness_score.std / target).powi(2);
        let base = *first.get_or_insert(n as f64);
        println!(
            "{target:<9}  {n:>10}  {predicted:>9.0}  {:.6}  {:>6.2}  {median:.4}",
            r.convergence_metrics.achieved_half_width,
            n as f64 / base
        );
    }
    ExitCode::SUCCESS
}
