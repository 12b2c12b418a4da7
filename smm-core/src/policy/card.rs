//! Decision cards: a simulation report, a policy decision and the contract's
//! approval policy turned into one of auto-approve, human approval or deny,
//! with machine-readable reasons, the canary plan and the cost against the
//! budget (fields after the original system's `decision-card.json`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PolicyError;
use super::decision::Decision;
use crate::contract::Contract;
use crate::sim::{ConfidenceInterval, SimulationReport};
use crate::time::Timestamp;

/// What the card says to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardAction {
    /// Start the canary without a human.
    AutoApprove,
    /// A human must approve first.
    HumanApproval,
    /// Do not run.
    Deny,
}

impl CardAction {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CardAction::AutoApprove => "auto_approve",
            CardAction::HumanApproval => "human_approval",
            CardAction::Deny => "deny",
        }
    }
}

/// One reason, as a code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardReason {
    /// Stable code.
    pub code: String,
    /// For people.
    pub text: String,
}

/// The button a reviewer presses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrimaryAction {
    /// Label.
    pub label: String,
    /// approve_promotion or reject_promotion.
    pub action: String,
    /// Canary percentage to start with (0 when denied).
    pub canary_pct: f64,
    /// A human confirms before it runs.
    pub requires_confirmation: bool,
}

/// How the launch is rolled out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CanaryPlan {
    /// Share of the audience first (0..1).
    pub initial_pct: f64,
    /// Hours to watch before widening.
    pub watch_window_hours: f64,
}

/// The simulated cost against the budget (a weekly figure: the model's
/// base is the planned weekly breakdown).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CostEstimate {
    /// ISO 4217 code.
    pub currency: String,
    /// Planned weekly spend (the breakdown's sum).
    pub planned_weekly: f64,
    /// Mean simulated cost.
    pub mean: f64,
    /// 95th percentile of the simulated cost.
    pub p95: f64,
    /// The contract's weekly cap.
    pub weekly_cap: f64,
    /// The contract's hard cap.
    pub hard_cap: f64,
    /// mean / weeklyCap (0 when the cap is 0).
    pub share_of_weekly_cap: f64,
    /// mean <= weeklyCap.
    pub within_weekly_cap: bool,
}

/// A risk the card shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskFactor {
    /// policy, budget, content, legal, technical or reputation.
    #[serde(rename = "type")]
    pub risk_type: String,
    /// high (a denial) or medium (a warning).
    pub level: String,
    /// The policy code.
    pub code: String,
}

/// A decision card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionCard {
    /// `action-` + 16 hex, derived from the evaluation and the run (stable).
    pub action_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Headline.
    pub title: String,
    /// One sentence for a reviewer.
    pub one_line: String,
    /// When the decision applies (the policy input's timestamp).
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// createdAt + 24 hours.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// auto_approve, human_approval or deny.
    pub action: CardAction,
    /// Why, as codes (sorted).
    pub reason_codes: Vec<String>,
    /// Why, as sentences (in the order of the codes).
    pub reasons: Vec<CardReason>,
    /// Mean readiness.
    pub readiness_score: f64,
    /// Its confidence interval.
    pub readiness_interval: ConfidenceInterval,
    /// The contract's autoApproveReadinessThreshold.
    pub auto_approve_threshold: f64,
    /// Mean policy pass percentage.
    pub policy_pass_pct: f64,
    /// Mean citation coverage.
    pub citation_coverage: f64,
    /// low, medium or high (mean duplication risk below 0.15, below 0.25, above).
    pub duplicate_risk: String,
    /// What the reviewer can do.
    pub primary_action: PrimaryAction,
    /// The canary plan.
    pub canary: CanaryPlan,
    /// The cost against the budget.
    pub cost_estimate: CostEstimate,
    /// Policy denials and warnings as risks.
    pub risk_factors: Vec<RiskFactor>,
    /// Reviews to involve (legal_review).
    pub escalations: Vec<String>,
    /// The policy decision's id.
    pub evaluation_id: String,
    /// The policy bundle's checksum.
    pub policy_bundle_checksum: String,
    /// The simulation's model, seed and iterations run.
    pub simulation_ref: String,
    /// Generator and version.
    pub generated_by: String,
}

fn text_of(code: &str) -> String {
    let known = match code {
        "policy_denied" => "a policy denies the campaign",
        "workspace_halted" => "the workspace is halted (emergencyFlags.halted)",
        "readiness_below_threshold" => {
            "the readiness interval's lower bound is below the auto-approve threshold"
        }
        "paid_spend_needs_approval" => "paid spend needs a manual approval (manualApprovalForPaid)",
        "legal_approval_required" => "the contract requires legal approval (legalManualApproval)",
        "policy_requires_approval" => {
            "a policy asks for a human approval (the decision's reasons say why)"
        }
        "auto_approve_eligible" => "every condition for auto-approval holds",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    if let Some(c) = code.strip_prefix("policy_deny:") {
        return format!("policy rule {c} denies");
    }
    code.replace('_', " ")
}

fn risk_type(code: &str) -> &'static str {
    let has = |s: &str| code.contains(s);
    if has("budget") || has("cost") || has("quota") || has("currency") {
        "budget"
    } else if has("consent") || has("license") || has("release") || has("legal") {
        "legal"
    } else if has("connector") || has("rate") || has("stale") {
        "technical"
    } else if has("citation") || has("duplication") || has("topic") || has("hallucination") {
        "content"
    } else {
        "policy"
    }
}

fn title_case(platform: &str) -> String {
    match platform {
        "linkedin" => "LinkedIn".into(),
        "x" => "X".into(),
        "tiktok" => "TikTok".into(),
        "youtube" => "YouTube".into(),
        other => {
            let mut c = other.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        }
    }
}

/// Build the card. Deny when the policy denies or the workspace is halted;
/// require a human when the readiness interval's lower bound is below
/// `autoApproveReadinessThreshold`, when paid spend needs manual approval,
/// when legal approval is required, or when the policy asks for it;
/// otherwise auto-approve.
///
/// Errors: the decision's bundle checksum differs from the contract's
/// `policyBundleChecksum` (the error names both), or the report or decision
/// belong to another workspace or time.
pub fn decision_card(
    report: &SimulationReport,
    decision: &Decision,
    contract: &Contract,
) -> Result<DecisionCard, PolicyError> {
    let c = contract.contract();
    if decision.bundle_checksum != c.policy_bundle_checksum {
        return Err(PolicyError::ChecksumMismatch {
            decision: decision.bundle_checksum.clone(),
            contract: c.policy_bundle_checksum.clone(),
        });
    }
    if let Some(ws) = &report.workspace_id
        && ws != &c.workspace_id
    {
        return Err(PolicyError::InvalidCardInput {
            pointer: "/report/workspaceId".into(),
            message: format!(
                "the report is of workspace {ws}, the contract of {}",
                c.workspace_id
            ),
        });
    }
    let created =
        Timestamp::parse(&decision.evaluated_at).ok_or_else(|| PolicyError::InvalidCardInput {
            pointer: "/decision/evaluatedAt".into(),
            message: format!("{:?} is not an RFC 3339 date-time", decision.evaluated_at),
        })?;
    let ap = &c.approval_policy;
    let r = &report.readiness_score;

    let mut codes: Vec<String> = Vec::new();
    let action = if !decision.allow || c.emergency_flags.halted {
        if !decision.allow {
            codes.push("policy_denied".into());
            codes.extend(decision.deny.iter().map(|d| format!("policy_deny:{d}")));
        }
        if c.emergency_flags.halted {
            codes.push("workspace_halted".into());
        }
        CardAction::Deny
    } else {
        if r.confidence.lower < ap.auto_approve_readiness_threshold {
            codes.push("readiness_below_threshold".into());
        }
        if ap.manual_approval_for_paid && c.budget.breakdown.paid_ads > 0.0 {
            codes.push("paid_spend_needs_approval".into());
        }
        if ap.legal_manual_approval {
            codes.push("legal_approval_required".into());
        }
        if decision.require_human_approval {
            codes.push("policy_requires_approval".into());
        }
        if codes.is_empty() {
            codes.push("auto_approve_eligible".into());
            CardAction::AutoApprove
        } else {
            CardAction::HumanApproval
        }
    };
    codes.sort();
    codes.dedup();

    let b = &c.budget;
    let planned = b.breakdown.paid_ads
        + b.breakdown.llm_model_spend
        + b.breakdown.rendering
        + b.breakdown.third_party_services;
    let cost = &report.cost_estimate_usd;
    let share = if b.weekly_cap > 0.0 {
        cost.mean / b.weekly_cap
    } else {
        0.0
    };
    let dup = report.duplication_risk.mean;
    let duplicate_risk = if dup > 0.25 {
        "high"
    } else if dup > 0.15 {
        "medium"
    } else {
        "low"
    };
    let mut risk_factors: Vec<RiskFactor> = decision
        .deny
        .iter()
        .map(|d| (d, "high"))
        .chain(decision.warnings.iter().map(|w| (w, "medium")))
        .map(|(code, level)| RiskFactor {
            risk_type: risk_type(code).into(),
            level: level.into(),
            code: code.clone(),
        })
        .collect();
    risk_factors.sort_by(|a, b| (&a.level, &a.code).cmp(&(&b.level, &b.code)));
    let channels: Vec<String> = c
        .primary_channels
        .iter()
        .map(|p| title_case(p.as_str()))
        .collect();
    let rep = &report.reproducibility;
    let simulation_ref = format!(
        "{} seed {} iterations {}",
        report.model_id, rep.seed, rep.iterations_run
    );
    let action_id = {
        let basis = format!(
            "{}\n{}\n{}",
            decision.evaluation_id,
            simulation_ref,
            r.mean.to_bits()
        );
        let h = crate::jcs::sha256_ref_of_canonical(basis.as_bytes());
        format!("action-{}", h.get(7..23).unwrap_or_default())
    };
    let verdict = match action {
        CardAction::AutoApprove => "auto-approved",
        CardAction::HumanApproval => "needs a human approval",
        CardAction::Deny => "denied",
    };
    let one_line = format!(
        "Readiness {:.3} [{:.3}, {:.3}] against a threshold of {:.2}; {verdict}; simulated cost {:.0} {} a week against a weekly cap of {:.0}.",
        r.mean,
        r.confidence.lower,
        r.confidence.upper,
        ap.auto_approve_readiness_threshold,
        cost.mean,
        b.currency,
        b.weekly_cap
    );
    let approved = action != CardAction::Deny;
    Ok(DecisionCard {
        action_id,
        workspace_id: c.workspace_id.clone(),
        title: format!("{} campaign", channels.join(" + ")),
        one_line,
        created_at: created.to_rfc3339(),
        expires_at: created.plus_seconds(86_400).to_rfc3339(),
        action,
        reasons: codes
            .iter()
            .map(|code| CardReason {
                code: code.clone(),
                text: text_of(code),
            })
            .collect(),
        reason_codes: codes,
        readiness_score: r.mean,
        readiness_interval: r.confidence.clone(),
        auto_approve_threshold: ap.auto_approve_readiness_threshold,
        policy_pass_pct: report.policy_pass_pct.mean,
        citation_coverage: report.citation_coverage.mean,
        duplicate_risk: duplicate_risk.into(),
        primary_action: PrimaryAction {
            label: match action {
                CardAction::AutoApprove => "Auto-approve and start the canary",
                CardAction::HumanApproval => "Review and approve",
                CardAction::Deny => "Rejected by policy",
            }
            .into(),
            action: if approved {
                "approve_promotion"
            } else {
                "reject_promotion"
            }
            .into(),
            canary_pct: if approved { ap.canary_initial_pct } else { 0.0 },
            requires_confirmation: action != CardAction::AutoApprove,
        },
        canary: CanaryPlan {
            initial_pct: ap.canary_initial_pct,
            watch_window_hours: ap.canary_watch_window_hours,
        },
        cost_estimate: CostEstimate {
            currency: b.currency.clone(),
            planned_weekly: planned,
            mean: cost.mean,
            p95: cost.percentiles.p95,
            weekly_cap: b.weekly_cap,
            hard_cap: b.hard_cap,
            share_of_weekly_cap: share,
            within_weekly_cap: cost.mean <= b.weekly_cap,
        },
        risk_factors,
        escalations: if ap.legal_manual_approval {
            vec!["legal_review".into()]
        } else {
            Vec::new()
        },
        evaluation_id: decision.evaluation_id.clone(),
        policy_bundle_checksum: decision.bundle_checksum.clone(),
        simulation_ref,
        generated_by: format!("smm-core {}", crate::sim::ENGINE_VERSION),
    })
}
