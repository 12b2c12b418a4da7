//! Report assembly: the statistics, convergence and reproducibility record
//! of a run, from its folded partial result.

use rayon::prelude::*;

use super::blocks::pool_for;
use super::partial::PartialResult;
use super::{
    BLOCK_SIZE, ENGINE_VERSION, RAND_CHACHA_VERSION, RAND_DISTR_VERSION, RNG_ALGORITHM, RunOutput,
    Samples, internal,
};
use crate::sim::SimulationError;
use crate::sim::model::{MODEL_METRICS, PRECISION_METRICS, Plan, Stop};
use crate::sim::report::{
    ConfidenceInterval, ConvergenceMetrics, MetricPrecision, MetricSummary, NodeSummary,
    Percentiles, Reproducibility, SimulationReport, WorkflowSummary,
};
use crate::sim::stats::{
    BOUNDED_RELATIVE_ERROR, Moments, PERCENTILES, convergence, exact_percentiles, z_for_level,
};

pub(super) fn finish(
    plan: &Plan,
    mut acc: PartialResult,
    keep_samples: bool,
    threads: usize,
    keyed_percentiles: Option<Vec<Vec<f64>>>,
) -> Result<RunOutput, SimulationError> {
    let n = acc.run_end;
    let level = plan.config.confidence_level;
    let z = z_for_level(level);
    let percentiles: Vec<Vec<f64>> = match (keyed_percentiles, &acc.samples, &acc.histograms) {
        (Some(p), _, _) => p,
        (None, Some(samples), _) => {
            let select =
                |(s, m): (&Vec<f64>, &Moments)| exact_percentiles(s, &PERCENTILES, m.min, m.max);
            match pool_for(threads)? {
                Some(pool) => {
                    pool.install(|| samples.par_iter().zip(&acc.moments).map(select).collect())
                }
                None => samples.iter().zip(&acc.moments).map(select).collect(),
            }
        }
        (None, None, Some(hists)) => hists
            .iter()
            .zip(&acc.moments)
            .map(|(h, m)| h.percentiles(&PERCENTILES, m.min, m.max))
            .collect(),
        (None, None, None) => Vec::new(),
    };
    let summaries: Vec<MetricSummary> = acc
        .moments
        .iter()
        .zip(&percentiles)
        .map(|(m, p)| summary(m, p, z, level))
        .collect();
    let mut it = summaries.into_iter();
    let mut next = || it.next().ok_or_else(|| internal("missing metric summary"));
    let readiness_score = next()?;
    let policy_pass_pct = next()?;
    let citation_coverage = next()?;
    let duplication_risk = next()?;
    let cost_estimate_usd = next()?;
    let technical_readiness = next()?;
    let workflow = match &plan.workflow {
        None => None,
        Some(w) => {
            let makespan_ms = next()?;
            let counters = w.counters_in_input_order(&acc.node_counters);
            Some(WorkflowSummary {
                successes: acc.successes,
                success_rate: acc.successes as f64 / n as f64,
                makespan_ms,
                nodes: w
                    .ids
                    .iter()
                    .zip(counters)
                    .map(|(id, c)| {
                        let attempts = (n - c.skipped.min(n)).saturating_add(c.retries);
                        let per_attempt = if attempts == 0 {
                            0.0
                        } else {
                            c.retries.saturating_add(c.failures) as f64 / attempts as f64
                        };
                        NodeSummary {
                            id: id.clone(),
                            failures: c.failures,
                            retries: c.retries,
                            skipped: c.skipped,
                            attempts,
                            failures_per_iteration: c.failures as f64 / n as f64,
                            failure_rate_per_attempt: per_attempt,
                        }
                    })
                    .collect(),
            })
        }
    };
    let (window_converged, last, prev) = convergence(&acc.tail, plan.config.convergence_threshold);
    let rule = plan.config.stopping_rule();
    let standing = plan
        .precision()
        .map(|p| p.standing(&acc.moments))
        .unwrap_or_default();
    let converged = match &plan.stop {
        Stop::Precision(p) => p.met(&acc.moments),
        Stop::Window(_) | Stop::Never => window_converged,
    };
    // The same formula as the interval's and the precision rule's.
    let readiness_half = acc
        .moments
        .first()
        .filter(|m| m.n > 0)
        .map_or(0.0, |m| z * m.std() / (m.n as f64).sqrt());
    let precision_targets: Vec<MetricPrecision> = standing
        .iter()
        .map(|&(m, target, achieved)| MetricPrecision {
            metric: PRECISION_METRICS.get(m).copied().unwrap_or("?").to_string(),
            target_half_width: target,
            achieved_half_width: achieved,
            met: achieved <= target,
        })
        .collect();
    let model_id = plan.model.id();
    let report = SimulationReport {
        model_id: model_id.into(),
        workspace_id: plan.workspace_id.clone(),
        risk_profile: plan.risk.as_str().into(),
        readiness_score,
        policy_pass_pct,
        citation_coverage,
        duplication_risk,
        cost_estimate_usd,
        technical_readiness,
        workflow,
        convergence_metrics: ConvergenceMetrics {
            converged,
            iterations_run: n,
            stability_threshold: plan.config.convergence_threshold,
            terminated_early: acc.terminated_early,
            last_window_mean: last,
            previous_window_mean: prev,
            stopping_rule: rule.map_or("none", |r| r.as_str()).into(),
            stopped_by: rule
                .filter(|_| acc.terminated_early)
                .map(|r| r.as_str().to_string()),
            achieved_half_width: readiness_half,
            target_half_width: precision_targets.first().map(|t| t.target_half_width),
            precision_targets,
            iterations_without_early_termination: plan.config.iterations,
        },
        reproducibility: Reproducibility {
            seed: plan.config.random_seed,
            iterations_requested: plan.config.iterations,
            iterations_run: n,
            rng_algorithm: RNG_ALGORITHM.into(),
            block_size: BLOCK_SIZE,
            model_id: model_id.into(),
            engine_version: ENGINE_VERSION.into(),
            rand_chacha_version: RAND_CHACHA_VERSION.into(),
            rand_distr_version: RAND_DISTR_VERSION.into(),
            confidence_level: level,
            percentile_mode: if plan.exact { "exact" } else { "bounded" }.into(),
            percentile_relative_error: if plan.exact {
                0.0
            } else {
                BOUNDED_RELATIVE_ERROR
            },
        },
    };
    if !report.is_finite() {
        // Validated inputs cannot get here; a forged partial could have.
        return Err(internal("a statistic is not finite"));
    }
    let kept = if keep_samples {
        acc.samples.take()
    } else {
        None
    };
    let samples = kept.map(|mut v| {
        let makespan_ms = if v.len() > MODEL_METRICS {
            v.pop()
        } else {
            None
        };
        let mut it = v.into_iter();
        let mut take = || it.next().unwrap_or_default();
        Samples {
            readiness_score: take(),
            policy_pass_pct: take(),
            citation_coverage: take(),
            duplication_risk: take(),
            cost_estimate_usd: take(),
            technical_readiness: take(),
            makespan_ms,
        }
    });
    Ok(RunOutput { report, samples })
}

fn summary(m: &Moments, p: &[f64], z: f64, level: f64) -> MetricSummary {
    let mean = m.mean();
    let std = m.std();
    let half = if m.n > 0 {
        z * std / (m.n as f64).sqrt()
    } else {
        0.0
    };
    let at = |i: usize| p.get(i).copied().unwrap_or(mean);
    MetricSummary {
        mean,
        std,
        min: m.min,
        max: m.max,
        percentiles: Percentiles {
            p5: at(0),
            p25: at(1),
            p50: at(2),
            p75: at(3),
            p95: at(4),
        },
        confidence: ConfidenceInterval {
            lower: mean - half,
            upper: mean + half,
            level,
        },
    }
}
