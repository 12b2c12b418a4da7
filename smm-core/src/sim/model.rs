//! Models `smm-readiness-v1` and `-v2`: validation of the inputs into a
//! compiled plan and the per-iteration draws, in the order
//! `shared/design/simulation-model.md` states them. v2 differs in one
//! place: the day of the season is the first draw of an iteration (uniform
//! over 365 days) instead of the iteration index modulo 365.

use super::bounds::{at_least, at_most};
use super::normal::{standard_normal, uniform};

use super::SimulationError;
use super::input::{
    MAX_CONFIDENCE_LEVEL, MAX_EXACT_ITERATIONS, MAX_ITERATIONS, MAX_RETRIES,
    MIN_PRECISION_ITERATIONS, ModelVersion, SimulationConfig, SimulationRequest, StoppingRule,
};
use super::workflow::CompiledWorkflow;

/// Id of the default model (a request's `simulationConfig.model` chooses).
pub const MODEL_ID: &str = "smm-readiness-v2";

/// The metrics a precision target may name, by report name, in the
/// engine's metric order (readiness first).
pub const PRECISION_METRICS: [&str; MODEL_METRICS] = [
    "readinessScore",
    "policyPassPct",
    "citationCoverage",
    "duplicationRisk",
    "costEstimateUSD",
    "technicalReadiness",
];

/// How a run may stop early, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stop {
    /// It runs every iteration.
    Never,
    /// The original window rule, with its threshold.
    Window(f64),
    /// The precision rule.
    Precision(PrecisionPlan),
}

/// The precision rule, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PrecisionPlan {
    /// The normal quantile of the confidence level.
    pub z: f64,
    /// (metric index, target half-width), readiness first.
    pub targets: Vec<(usize, f64)>,
    /// Targets are fractions of each mean's magnitude.
    pub relative: bool,
    /// No stop before this many iterations.
    pub min_iterations: u64,
}

impl PrecisionPlan {
    /// Each target's (metric index, target half-width, achieved half-width)
    /// for these moments (absolute half-widths).
    pub(crate) fn standing(&self, moments: &[super::stats::Moments]) -> Vec<(usize, f64, f64)> {
        self.targets
            .iter()
            .map(|&(m, target)| {
                let (mean, std, n) = moments
                    .get(m)
                    .map_or((0.0, 0.0, 0), |x| (x.mean(), x.std(), x.n));
                let achieved = if n > 0 {
                    self.z * std / (n as f64).sqrt()
                } else {
                    f64::INFINITY
                };
                let target = if self.relative {
                    target * mean.abs()
                } else {
                    target
                };
                (m, target, achieved)
            })
            .collect()
    }

    /// The rule is met: enough iterations and every target reached.
    pub(crate) fn met(&self, moments: &[super::stats::Moments]) -> bool {
        let n = moments.first().map_or(0, |m| m.n);
        n >= self.min_iterations
            && self
                .standing(moments)
                .iter()
                .all(|(_, target, achieved)| achieved <= target)
    }
}

/// A uniform day of the season in 0..365 from one or more `u32` draws
/// (Lemire's multiply-and-reject: no bias, and defined here rather than by a
/// library version).
#[inline]
fn draw_day<R: rand::Rng + ?Sized>(rng: &mut R) -> usize {
    const DAYS: u64 = 365;
    // 2^32 mod 365: products whose low word falls below it are rejected.
    const REJECT_BELOW: u32 = ((1u64 << 32) % DAYS) as u32;
    loop {
        let m = u64::from(rng.next_u32()) * DAYS;
        if (m as u32) >= REJECT_BELOW {
            return (m >> 32) as usize;
        }
    }
}

/// Risk profile of a workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RiskProfile {
    /// low
    Low,
    /// medium
    Medium,
    /// high
    High,
    /// enterprise
    Enterprise,
}

impl RiskProfile {
    /// Parse the contract's spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "low" => Some(RiskProfile::Low),
            "medium" => Some(RiskProfile::Medium),
            "high" => Some(RiskProfile::High),
            "enterprise" => Some(RiskProfile::Enterprise),
            _ => None,
        }
    }
    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskProfile::Low => "low",
            RiskProfile::Medium => "medium",
            RiskProfile::High => "high",
            RiskProfile::Enterprise => "enterprise",
        }
    }
    fn base_volatility(self) -> f64 {
        match self {
            RiskProfile::Low => 0.05,
            RiskProfile::Medium => 0.10,
            RiskProfile::High => 0.20,
            RiskProfile::Enterprise => 0.03,
        }
    }
    fn risk_multiplier(self) -> f64 {
        match self {
            RiskProfile::Low => 0.98,
            RiskProfile::Medium => 0.95,
            RiskProfile::High => 0.90,
            RiskProfile::Enterprise => 0.99,
        }
    }
}

/// Per-platform rate limit of the model (drawn, not used by v1 outputs).
fn rate_limit(channel: &str) -> f64 {
    match channel {
        "linkedin" => 5.0,
        "x" => 300.0,
        "instagram" => 10.0,
        "facebook" => 25.0,
        "youtube" => 5.0,
        "tiktok" => 10.0,
        _ => 10.0,
    }
}

/// Number of model outputs per iteration (readiness first).
pub(crate) const MODEL_METRICS: usize = 6;

/// The validated, compiled form of a request: everything the hot loop needs.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub risk: RiskProfile,
    base_vol: f64,
    risk_mult: f64,
    rate_limits: Vec<f64>,
    cost_base: f64,
    hard_cap: f64,
    node_factor: f64,
    /// seasonalFactor for i mod 365 (periodic, so this equals the formula and
    /// keeps full precision at large i; computed with the portable `libm`).
    seasonal: Vec<f64>,
    pub workflow: Option<CompiledWorkflow>,
    pub config: SimulationConfig,
    pub exact: bool,
    pub workspace_id: Option<String>,
    pub model: ModelVersion,
    pub stop: Stop,
}

/// A sum of money at `pointer`: finite and not negative. A zero written
/// `-0` is read as `0`, the zero its writer meant (IEEE's `-0.0 >= 0.0`
/// lets it through, and it would come back as `-0.0` in every statistic of
/// the cost it makes).
fn check_money(pointer: &str, v: f64) -> Result<f64, SimulationError> {
    if v.is_finite() && v >= 0.0 {
        Ok(if v == 0.0 { 0.0 } else { v })
    } else {
        Err(SimulationError::InvalidMoney {
            pointer: pointer.to_string(),
            value: v,
        })
    }
}

impl Plan {
    pub(crate) fn compile(req: &SimulationRequest) -> Result<Plan, SimulationError> {
        let ctx = &req.workspace_context;
        let risk = match &ctx.risk_profile {
            None => RiskProfile::Medium,
            Some(s) => {
                RiskProfile::parse(s).ok_or_else(|| SimulationError::UnknownRiskProfile {
                    pointer: "/workspaceContext/riskProfile".into(),
                    value: s.clone(),
                })?
            }
        };
        if ctx.primary_channels.len() > crate::limits::MAX_CHANNELS {
            return Err(SimulationError::TooMany {
                pointer: "/workspaceContext/primaryChannels".into(),
                count: ctx.primary_channels.len(),
                max: crate::limits::MAX_CHANNELS,
            });
        }
        if ctx.primary_channels.is_empty() {
            return Err(SimulationError::EmptyChannels {
                pointer: "/workspaceContext/primaryChannels".into(),
            });
        }
        for (i, c) in ctx.primary_channels.iter().enumerate() {
            if c.is_empty() {
                return Err(SimulationError::EmptyChannelName {
                    pointer: format!("/workspaceContext/primaryChannels/{i}"),
                });
            }
        }
        let b = &ctx.budget;
        let hard_cap = check_money("/workspaceContext/budget/hardCap", b.hard_cap)?;
        if hard_cap <= 0.0 {
            return Err(SimulationError::NonPositiveHardCap {
                pointer: "/workspaceContext/budget/hardCap".into(),
                value: hard_cap,
            });
        }
        if let Some(w) = b.weekly_cap {
            check_money("/workspaceContext/budget/weeklyCap", w)?;
        }
        let bd = &b.breakdown;
        let p = "/workspaceContext/budget/breakdown";
        let paid = check_money(&format!("{p}/paidAds"), bd.paid_ads)?;
        let llm = check_money(&format!("{p}/llmModelSpend"), bd.llm_model_spend)?;
        let rend = check_money(&format!("{p}/rendering"), bd.rendering)?;
        let third = check_money(&format!("{p}/thirdPartyServices"), bd.third_party_services)?;
        let cost_base = paid + llm + rend + third;
        if !cost_base.is_finite() {
            return Err(SimulationError::InvalidMoney {
                pointer: p.into(),
                value: cost_base,
            });
        }

        let cfg = &req.config;
        let exact = cfg.exact_percentiles();
        let max = if exact {
            MAX_EXACT_ITERATIONS
        } else {
            MAX_ITERATIONS
        };
        if cfg.iterations == 0 || cfg.iterations > max {
            return Err(SimulationError::IterationsOutOfRange {
                pointer: "/simulationConfig/iterations".into(),
                value: cfg.iterations,
                max,
            });
        }
        let cl = cfg.confidence_level;
        if !(cl > 0.0 && cl <= MAX_CONFIDENCE_LEVEL) {
            return Err(SimulationError::ConfidenceLevelOutOfRange {
                pointer: "/simulationConfig/confidenceLevel".into(),
                value: cl,
            });
        }
        let th = cfg.convergence_threshold;
        if !(th.is_finite() && th >= 0.0) {
            return Err(SimulationError::InvalidThreshold {
                pointer: "/simulationConfig/convergenceThreshold".into(),
                value: th,
            });
        }

        if let Some(t) = cfg.timeout_seconds
            && !(1..=crate::limits::MAX_TIMEOUT_SECONDS).contains(&t)
        {
            return Err(SimulationError::TimeoutOutOfRange {
                pointer: "/simulationConfig/timeoutSeconds".into(),
                value: t,
                max: crate::limits::MAX_TIMEOUT_SECONDS,
            });
        }
        if let Some(p) = cfg.parallel_batches
            && !(1..=crate::limits::MAX_THREADS as u64).contains(&p)
        {
            return Err(SimulationError::OutOfRange {
                pointer: "/simulationConfig/parallelBatches".into(),
                value: p,
                min: 1,
                max: crate::limits::MAX_THREADS as u64,
            });
        }
        if let Some(w) = &req.workflow
            && w.nodes.len() > crate::limits::MAX_WORKFLOW_NODES
        {
            return Err(SimulationError::TooMany {
                pointer: "/workflowJson/nodes".into(),
                count: w.nodes.len(),
                max: crate::limits::MAX_WORKFLOW_NODES,
            });
        }
        let workflow = match &req.workflow {
            None => None,
            Some(w) => Some(CompiledWorkflow::compile(w, "/workflowJson", MAX_RETRIES)?),
        };
        let node_count = workflow.as_ref().map_or(0, |w| w.len());
        // 1 - 0.1 * min(1, nodeCount / 10)
        let node_factor = 1.0 - at_most(node_count as f64 / 10.0, 1.0) * 0.1;

        let stop = match cfg.stopping_rule() {
            None => {
                if cfg.stopping_rule.is_some() || cfg.precision.is_some() {
                    return Err(SimulationError::Parse {
                        pointer: "/simulationConfig/enableEarlyTermination".into(),
                        message: "a stopping rule or precision target is given, but early \
                                  termination is off: set enableEarlyTermination to true"
                            .into(),
                    });
                }
                Stop::Never
            }
            Some(StoppingRule::Window) => {
                if cfg.precision.is_some() {
                    return Err(SimulationError::Parse {
                        pointer: "/simulationConfig/precision".into(),
                        message: "precision targets belong to the precision rule, not the \
                                  window rule"
                            .into(),
                    });
                }
                Stop::Window(th)
            }
            Some(StoppingRule::Precision) => Stop::Precision(precision_plan(cfg)?),
        };

        let seasonal = (0..365)
            .map(|k| 0.8 + 0.4 * libm::sin(2.0 * std::f64::consts::PI * f64::from(k) / 365.0))
            .collect();

        Ok(Plan {
            risk,
            base_vol: risk.base_volatility(),
            risk_mult: risk.risk_multiplier(),
            rate_limits: ctx.primary_channels.iter().map(|c| rate_limit(c)).collect(),
            cost_base,
            hard_cap,
            node_factor,
            seasonal,
            workflow,
            config: cfg.clone(),
            exact,
            workspace_id: req
                .workspace_id
                .clone()
                .or_else(|| ctx.workspace_id.clone()),
            model: cfg.model,
            stop,
        })
    }

    /// The precision rule, when it governs the run.
    pub(crate) fn precision(&self) -> Option<&PrecisionPlan> {
        match &self.stop {
            Stop::Precision(p) => Some(p),
            _ => None,
        }
    }

    /// The thread count `parallelBatches` asks for (checked at compile).
    pub(crate) fn parallel_batches(&self) -> Option<usize> {
        self.config
            .parallel_batches
            .and_then(|p| usize::try_from(p).ok())
    }

    /// Number of metrics recorded per iteration (model outputs, plus makespan
    /// when there is a workflow).
    pub(crate) fn metric_count(&self) -> usize {
        MODEL_METRICS + usize::from(self.workflow.is_some())
    }

    /// Reference points used to centre the running sums (see `stats`): the
    /// middle of each output's clamp range, the cost base, the workflow's
    /// nominal critical path.
    pub(crate) fn centers(&self) -> Vec<f64> {
        let mut c = vec![0.5, 0.75, 0.85, 0.2, self.cost_base, 0.8];
        if let Some(w) = &self.workflow {
            c.push(w.nominal_makespan());
        }
        c
    }

    /// One iteration of the model. `i` is the global 0-based iteration index.
    /// Writes readiness, policyPassPct, citationCoverage, duplicationRisk,
    /// costEstimate, technicalReadiness into `out`.
    #[inline]
    pub(crate) fn iterate<R: rand::Rng + ?Sized>(
        &self,
        i: u64,
        rng: &mut R,
        out: &mut [f64; MODEL_METRICS],
    ) {
        let n = |rng: &mut R| -> f64 { standard_normal(rng) };
        let u = |rng: &mut R| -> f64 { uniform(rng) };

        let day = match self.model {
            ModelVersion::V1 => (i % 365) as usize,
            ModelVersion::V2 => draw_day(rng),
        };
        let vol = at_least(self.base_vol + 0.1 * n(rng), 0.0);
        let comp = at_least(0.5 + 0.2 * n(rng), 0.0);
        let seasonal = self.seasonal.get(day).copied().unwrap_or(1.0);
        let mut health_sum = 0.0;
        for _ in &self.rate_limits {
            health_sum += clamp(0.9 + 0.1 * n(rng), 0.1, 1.0);
        }
        let avg_health = health_sum / self.rate_limits.len() as f64;
        // rateLimit and algorithmChange feed no v1 output; their draws are
        // part of the model's stream and are kept.
        for limit in &self.rate_limits {
            let _rate_limit = limit * (0.8 + 0.4 * u(rng));
        }
        for _ in &self.rate_limits {
            if u(rng) < 0.05 {
                let _algorithm_change = 0.7 + 0.3 * u(rng);
            }
        }
        let cq = clamp(0.8 + 0.15 * n(rng), 0.1, 1.0);
        let _audience = n(rng);
        let _timing = n(rng);
        let latency = at_least(100.0 + 50.0 * n(rng), 10.0);
        let load = clamp(0.3 + 0.2 * n(rng), 0.1, 0.9);
        let reliability = clamp(0.95 + 0.05 * n(rng), 0.8, 1.0);

        let policy = clamp(
            0.95 * self.risk_mult * (1.0 - 0.1 * vol) * cq + 0.02 * (u(rng) - 0.5),
            0.5,
            1.0,
        );
        let citation = clamp(
            0.92 * cq * (1.0 - 0.05 * vol) * (1.0 - 0.03 * comp) + 0.03 * (u(rng) - 0.5),
            0.7,
            1.0,
        );
        let duplication = clamp(
            0.08 + 0.1 * comp + 0.15 * (1.0 - cq) + 0.05 * vol + 0.05 * u(rng),
            0.0,
            0.4,
        );
        let mult =
            (1.0 + 0.2 * vol + 0.15 * comp) * seasonal * (2.0 - avg_health) + 0.3 * (u(rng) - 0.5);
        let cost = at_least(self.cost_base * at_least(mult, 0.8), 0.7 * self.cost_base);
        let technical = clamp(
            0.88 * (1.0 - 0.2 * load)
                * reliability
                * (1.0 - 0.1 * at_least((latency - 100.0) / 500.0, 0.0))
                * avg_health
                * self.node_factor
                + 0.04 * (u(rng) - 0.5),
            0.6,
            1.0,
        );
        let cost_risk = at_most(cost / self.hard_cap, 1.0);
        let readiness = clamp(
            0.35 * policy
                + 0.20 * citation
                + 0.15 * (1.0 - duplication)
                + 0.10 * (1.0 - cost_risk)
                + 0.20 * technical,
            0.0,
            1.0,
        );
        *out = [readiness, policy, citation, duplication, cost, technical];
    }
}

/// `max(lo, min(hi, x))`, as the model defines clamp (a NaN `x` gives
/// `hi`, as with `f64::min` and `f64::max`).
#[inline(always)]
pub(crate) fn clamp(x: f64, lo: f64, hi: f64) -> f64 {
    at_least(at_most(x, hi), lo)
}

fn precision_plan(cfg: &SimulationConfig) -> Result<PrecisionPlan, SimulationError> {
    let p = cfg.precision.clone().unwrap_or_default();
    let bad = |pointer: &str, message: String| SimulationError::Parse {
        pointer: format!("/simulationConfig/precision{pointer}"),
        message,
    };
    let check = |pointer: &str, v: f64| -> Result<f64, SimulationError> {
        let ok = v.is_finite() && v > 0.0 && (!p.relative || v <= 1.0);
        if ok {
            Ok(v)
        } else if p.relative {
            Err(bad(
                pointer,
                format!("a relative target must be in (0, 1] (got {v})"),
            ))
        } else {
            Err(bad(
                pointer,
                format!("a target half-width must be a positive number (got {v})"),
            ))
        }
    };
    let readiness = match p.half_width {
        Some(h) => check("/halfWidth", h)?,
        None if p.relative => {
            return Err(bad(
                "/halfWidth",
                "a relative target needs halfWidth (convergenceThreshold is absolute)".into(),
            ));
        }
        None if cfg.convergence_threshold > 0.0 => cfg.convergence_threshold,
        None => {
            return Err(bad(
                "/halfWidth",
                "no target: give halfWidth (convergenceThreshold is 0)".into(),
            ));
        }
    };
    if !(MIN_PRECISION_ITERATIONS..=MAX_ITERATIONS).contains(&p.min_iterations) {
        return Err(bad(
            "/minIterations",
            format!(
                "must be between {MIN_PRECISION_ITERATIONS} and {MAX_ITERATIONS} (got {})",
                p.min_iterations
            ),
        ));
    }
    let mut targets = vec![(0, readiness)];
    for (name, h) in &p.metrics {
        let pointer = format!("/metrics/{}", crate::jcs::escape_pointer_token(name));
        let Some(index) = PRECISION_METRICS.iter().position(|m| m == name) else {
            return Err(bad(
                &pointer,
                format!(
                    "unknown metric {name:?} (one of {})",
                    PRECISION_METRICS.join(", ")
                ),
            ));
        };
        let h = check(&pointer, *h)?;
        match targets.iter_mut().find(|(m, _)| *m == index) {
            Some(t) => t.1 = h,
            None => targets.push((index, h)),
        }
    }
    Ok(PrecisionPlan {
        z: super::stats::z_for_level(cfg.confidence_level),
        targets,
        relative: p.relative,
        min_iterations: p.min_iterations,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::clamp;
    use crate::sim::bounds::{at_least, at_most};

    /// The model's bounds agree with `f64::max` / `f64::min` wherever those
    /// have one answer (NaN included), and give one answer where they do
    /// not: between zeros of opposite signs, the bound.
    #[test]
    fn bounds_agree_with_f64_max_and_min_and_settle_signed_zeros() {
        let mut values = vec![
            0.0,
            -0.0,
            f64::MIN_POSITIVE,
            -f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            0.1,
            0.5,
            1.0,
            -1.0,
            10.0,
            f64::MAX,
            f64::MIN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut r = crate::test_rng::TestRng::new(7);
        values.extend(
            (0..2_000).map(|_| ((r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 4.0),
        );
        let same = |a: f64, b: f64| a.to_bits() == b.to_bits();
        for &x in values.iter().chain([f64::NAN].iter()) {
            for &b in &values {
                if x == b && x == 0.0 {
                    assert!(same(at_least(x, b), b) && same(at_most(x, b), b));
                    continue;
                }
                assert!(same(at_least(x, b), x.max(b)), "{x} {b}");
                assert!(same(at_most(x, b), x.min(b)), "{x} {b}");
                let (lo, hi) = (b.min(0.5), 0.5f64.max(b));
                if !(lo == 0.0 || hi == 0.0) {
                    assert!(same(clamp(x, lo, hi), lo.max(hi.min(x))), "{x} {lo} {hi}");
                }
            }
        }
        assert!(same(clamp(-0.0, 0.0, 0.4), 0.0));
        assert!(same(clamp(f64::NAN, 0.1, 1.0), 1.0));
    }
}
