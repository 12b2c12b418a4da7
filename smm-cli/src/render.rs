//! Human output: short, aligned, readable at a glance.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};

use smm_core::flow::FlowOutcome;
use smm_core::policy::DecisionCard;
use smm_core::sim::{MetricSummary, SimulationReport};
use smm_core::usage::{COST_USD, NANOS_PER_USD, TOKENS};

/// Rows of the histogram.
const BINS: usize = 8;
/// Width of its longest bar.
const BAR: usize = 32;

/// `1234567` as `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars with cents, thousands separated.
pub fn dollars(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let cents = (x * 100.0).round();
    let whole = (cents / 100.0).trunc().abs() as u64;
    let frac = (cents.abs() % 100.0) as u64;
    let sign = if cents < 0.0 { "-" } else { "" };
    format!("{sign}${}.{frac:02}", thousands(whole))
}

/// Nano-dollars, exactly, with at least cents.
pub fn nano_dollars(n: u64) -> String {
    let whole = n / NANOS_PER_USD;
    let frac = n % NANOS_PER_USD;
    let mut f = format!("{frac:09}");
    while f.len() > 2 && f.ends_with('0') {
        f.pop();
    }
    format!("${}.{f}", thousands(whole))
}

/// A histogram of `values` in [lo, hi]: one line per bin, the bar scaled
/// to the fullest bin, and its share.
pub fn histogram(values: &[f64], indent: &str) -> String {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if values.is_empty() || !lo.is_finite() || !hi.is_finite() {
        return String::new();
    }
    let width = if hi > lo {
        (hi - lo) / BINS as f64
    } else {
        1.0
    };
    let mut counts = [0u64; BINS];
    for v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / width) as usize).min(BINS - 1);
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let total = values.len() as f64;
    let mut out = String::new();
    for (i, c) in counts.iter().enumerate() {
        let from = lo + width * i as f64;
        let len = ((*c as f64 / top as f64) * BAR as f64).round() as usize;
        let bar: String = "█".repeat(len);
        let _ = writeln!(
            out,
            "{indent}{from:.3} – {:.3} │{bar:<BAR$} {:>5.1}%",
            from + width,
            *c as f64 / total * 100.0
        );
        if hi <= lo {
            break;
        }
    }
    out
}

fn interval(m: &MetricSummary) -> String {
    format!(
        "{:.4}  ({:.0}% CI {:.4} – {:.4}; p5 {:.3}, p95 {:.3})",
        m.mean,
        m.confidence.level * 100.0,
        m.confidence.lower,
        m.confidence.upper,
        m.percentiles.p5,
        m.percentiles.p95
    )
}

/// The simulation: readiness with its interval, the histogram, the rest in a
/// table.
pub fn report(r: &SimulationReport, readiness: Option<&[f64]>) -> String {
    let mut out = String::new();
    let rep = &r.reproducibility;
    let _ = writeln!(out, "readiness    {}", interval(&r.readiness_score));
    let c = &r.convergence_metrics;
    let _ = writeln!(
        out,
        "             {} iterations, seed {}, model {}",
        thousands(rep.iterations_run),
        rep.seed,
        r.model_id,
    );
    match (&c.stopped_by, c.target_half_width) {
        (Some(rule), Some(target)) => {
            let _ = writeln!(
                out,
                "             stopped by the {rule} rule at {} of {} iterations: half-width {:.5} ≤ target {:.5}",
                thousands(rep.iterations_run),
                thousands(c.iterations_without_early_termination),
                c.achieved_half_width,
                target
            );
        }
        (Some(rule), None) => {
            let _ = writeln!(
                out,
                "             stopped by the {rule} rule at {} of {} iterations (half-width {:.5})",
                thousands(rep.iterations_run),
                thousands(c.iterations_without_early_termination),
                c.achieved_half_width
            );
        }
        (None, Some(target)) if c.achieved_half_width > target => {
            let _ = writeln!(
                out,
                "             precision target {target:.5} not reached: half-width {:.5} after all iterations",
                c.achieved_half_width
            );
        }
        _ => {}
    }
    if let Some(values) = readiness {
        out.push_str(&histogram(values, "             "));
    }
    for (name, m) in [
        ("policy pass", &r.policy_pass_pct),
        ("citations", &r.citation_coverage),
        ("duplication", &r.duplication_risk),
        ("technical", &r.technical_readiness),
    ] {
        let _ = writeln!(out, "{name:<12} {}", interval(m));
    }
    let c = &r.cost_estimate_usd;
    let _ = writeln!(
        out,
        "cost         {} mean, p95 {}",
        dollars(c.mean),
        dollars(c.percentiles.p95)
    );
    out
}

fn card(c: &DecisionCard) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "decision     {}: {}", c.action.as_str(), c.one_line);
    for r in &c.reasons {
        let _ = writeln!(out, "             - {} ({})", r.text, r.code);
    }
    let e = &c.cost_estimate;
    let _ = writeln!(
        out,
        "budget       simulated {} a week ({:.0}% of the {} weekly cap; p95 {}), planned {}, hard cap {}",
        dollars(e.mean),
        e.share_of_weekly_cap * 100.0,
        dollars(e.weekly_cap),
        dollars(e.p95),
        dollars(e.planned_weekly),
        dollars(e.hard_cap)
    );
    out
}

/// The whole run.
pub fn run(o: &FlowOutcome, bundle_path: &str, ledger_path: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "workspace    {}  contract {}",
        o.workspace_id, o.contract_hash
    );
    for w in &o.contract_warnings {
        let _ = writeln!(out, "             warning: {w}");
    }
    let readiness = o.samples.as_ref().map(|s| s.readiness_score.as_slice());
    out.push_str(&report(&o.simulation, readiness));
    out.push_str(&card(&o.decision_card));
    if let Some(u) = &o.usage {
        let tokens = u.amounts.get(TOKENS).copied().unwrap_or(0);
        let cost = u.amounts.get(COST_USD).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "usage        job {}: {} tokens, {}{} (ledger {ledger_path})",
            u.job_id,
            thousands(tokens),
            nano_dollars(cost),
            if u.already_recorded {
                ", recorded by an earlier run"
            } else {
                ", recorded"
            }
        );
        for w in &u.warnings {
            let _ = writeln!(out, "             warning: {w}");
        }
    }
    let _ = writeln!(out, "bundle       {}", o.bundle_id);
    let _ = writeln!(out, "             {bundle_path}");
    let v = &o.verification;
    let passed = v.checks.iter().filter(|c| c.ok).count();
    let _ = writeln!(
        out,
        "{:<12} signed by {}; {passed} of {} checks passed",
        if v.verified {
            "verified"
        } else {
            "NOT VERIFIED"
        },
        v.key_id.as_deref().unwrap_or("nobody"),
        v.checks.len()
    );
    out
}

/// A progress bar on stderr, drawn only on a terminal.
#[derive(Debug)]
pub struct ProgressBar {
    on: bool,
}

impl ProgressBar {
    /// A bar, visible when stderr is a terminal.
    pub fn new() -> ProgressBar {
        ProgressBar {
            on: std::io::stderr().is_terminal(),
        }
    }

    /// Whether it draws.
    pub fn visible(&self) -> bool {
        self.on
    }

    /// Draw `done` of `total`.
    pub fn draw(done: u64, total: u64) {
        let share = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let filled = ((share * 30.0).round() as usize).min(30);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:>5.1}%  {} / {}",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            share * 100.0,
            thousands(done),
            thousands(total)
        );
        let _ = err.flush();
    }

    /// Clear the line.
    pub fn finish(&self) {
        if self.on {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{:70}\r", "");
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(dollars(1234.567), "$1,234.57");
        assert_eq!(dollars(-2.5), "-$2.50");
        assert_eq!(dollars(f64::NAN), "n/a");
        assert_eq!(nano_dollars(113_400_000), "$0.1134");
        assert_eq!(nano_dollars(5_000_000_000_000), "$5,000.00");
    }

    #[test]
    fn the_histogram_counts_every_value_once() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let h = histogram(&values, "");
        assert_eq!(h.lines().count(), BINS);
        let shares: f64 = h
            .lines()
            .map(|l| {
                l.trim_end_matches('%')
                    .rsplit(' ')
                    .next()
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            })
            .sum();
        assert!((shares - 100.0).abs() < 0.5, "{h}");
        // One value, or all equal: one line, no division by zero.
        assert_eq!(histogram(&[0.5, 0.5], "").lines().count(), 1);
        assert_eq!(histogram(&[], ""), "");
    }
}
