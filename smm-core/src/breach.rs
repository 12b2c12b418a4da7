//! The budget-breach playbook, above the domains beside the flow (it
//! assembles an audit bundle from usage, contract and simulation) (`ops/playbooks/budget-breach.yml` of the
//! design: `immediate_halt` of `workspace.agents.*`, `audit_snapshot`):
//! when a quota or the contract's `hardCap` is breached, the plan the host
//! executes. The library decides; the host halts its agents and stores the
//! bundle.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::audit::{AuditBundle, AuditTrail, BundleInputs, assemble};
use crate::contract::Contract;
use crate::policy::{Decision, DecisionCard};
use crate::sim::SimulationReport;
use crate::time::Timestamp;
use crate::usage::{AgentRun, QuotaStatus, UsageError, format_amount};

/// What the host does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(
    rename_all = "snake_case",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum BreachAction {
    /// Stop every agent of the workspace now.
    ImmediateHalt {
        /// `workspace.agents.*`
        target: String,
    },
    /// Store the breach's audit bundle.
    AuditSnapshot {
        /// Its id.
        bundle_id: String,
    },
    /// The break-glass override let spending go on; a human is accountable.
    BreakGlassOverride {
        /// Who invoked the playbook.
        actor: String,
    },
}

/// Everything the playbook decides from.
#[derive(Debug, Clone)]
pub struct BreachInputs<'a> {
    /// The contract in force.
    pub contract: &'a Contract,
    /// The ledger's standings of the workspace's quotas.
    pub status: &'a [QuotaStatus],
    /// Now.
    pub now: Timestamp,
    /// Who runs the playbook (a service principal).
    pub actor: &'a str,
    /// The latest simulation, decision and card (the breach bundle's evidence).
    pub simulation: &'a SimulationReport,
    /// The latest policy decision.
    pub policy_decision: Decision,
    /// Its card.
    pub decision_card: DecisionCard,
    /// The agent runs that spent the budget.
    pub agent_runs: Vec<AgentRun>,
    /// The workspace's previous bundle.
    pub previous_bundle_ref: Option<String>,
}

/// The JSON form of [`BreachInputs`] (for the Python and C front doors).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreachRequest {
    /// The contract in force (a v2 document).
    pub contract: Value,
    /// The ledger's standings of the workspace's quotas (a ledger's
    /// `status`).
    pub status: Vec<QuotaStatus>,
    /// Now (RFC 3339).
    pub now: String,
    /// Who runs the playbook.
    pub actor: String,
    /// The latest simulation report.
    pub simulation: SimulationReport,
    /// The latest policy decision.
    pub policy_decision: Decision,
    /// Its card.
    pub decision_card: DecisionCard,
    /// The agent runs that spent the budget.
    #[serde(default)]
    pub agent_runs: Vec<AgentRun>,
    /// The workspace's previous bundle.
    #[serde(default)]
    pub previous_bundle_ref: Option<String>,
}

/// [`breach_plan`] from the JSON form (errors carry a JSON pointer).
pub fn breach_plan_request(request: &Value) -> Result<BreachPlan, UsageError> {
    let req: BreachRequest =
        serde_path_to_error::deserialize(request).map_err(|e| UsageError::InvalidInput {
            pointer: crate::jcs::path_pointer(&e),
            message: e.inner().to_string(),
        })?;
    let contract = Contract::from_value(req.contract).map_err(|e| UsageError::InvalidInput {
        pointer: format!("/contract{}", e.pointer().unwrap_or("")),
        message: e.to_string(),
    })?;
    let now = req
        .now
        .parse::<Timestamp>()
        .map_err(|e| UsageError::InvalidInput {
            pointer: "/now".into(),
            message: e.to_string(),
        })?;
    breach_plan(BreachInputs {
        contract: &contract,
        status: &req.status,
        now,
        actor: &req.actor,
        simulation: &req.simulation,
        policy_decision: req.policy_decision,
        decision_card: req.decision_card,
        agent_runs: req.agent_runs,
        previous_bundle_ref: req.previous_bundle_ref,
    })
}

/// The plan the host executes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BreachPlan {
    /// The quotas past their limit (`kind/period: used > limit`); empty when
    /// nothing is breached (then there is nothing to do).
    pub breached: Vec<String>,
    /// The contract's `budgetOverride` let spending go on.
    pub override_used: bool,
    /// The actions, in order.
    pub actions: Vec<BreachAction>,
    /// The contract document to write back (emergencyFlags.halted with a
    /// reason and time), when the workspace is halted.
    pub contract: Option<Value>,
    /// The audit bundle of the breach (its trail records what happened).
    pub bundle: Option<AuditBundle>,
}

/// The playbook: nothing when no quota is breached; otherwise halt the
/// workspace's agents (`emergencyFlags.halted`, with the breaches as the
/// reason) and seal an audit bundle of the breach, unless the contract's
/// `emergencyFlags.budgetOverride` (break glass) is set, in which case the
/// override is written into the bundle's trail and nothing is halted.
pub fn breach_plan(inputs: BreachInputs<'_>) -> Result<BreachPlan, UsageError> {
    let bad = |pointer: &str, message: String| UsageError::InvalidInput {
        pointer: pointer.to_string(),
        message,
    };
    let at = inputs.now;
    let now = at.to_rfc3339();
    let c = inputs.contract.contract();
    if let Some(s) = inputs
        .status
        .iter()
        .find(|s| s.quota.workspace_id != c.workspace_id)
    {
        return Err(bad(
            "/status",
            format!(
                "a quota of workspace {} is not the contract's",
                s.quota.workspace_id
            ),
        ));
    }
    let breached: Vec<String> = inputs
        .status
        .iter()
        .filter(|s| s.breached())
        .map(|s| {
            format!(
                "{}/{}: {} > {}",
                s.quota.kind,
                s.quota.period.as_str(),
                format_amount(&s.quota.kind, s.used),
                format_amount(&s.quota.kind, s.quota.limit)
            )
        })
        .collect();
    if breached.is_empty() {
        return Ok(BreachPlan {
            breached,
            override_used: false,
            actions: Vec::new(),
            contract: None,
            bundle: None,
        });
    }
    let override_used = c.emergency_flags.budget_override;
    let reason = format!("budget breach: {}", breached.join("; "));
    let mut trail = AuditTrail::new();
    let trail_err = |e: crate::audit::AuditError| bad("/auditTrail", e.to_string());
    trail
        .append(
            at,
            "budget_breach_detected",
            inputs.actor,
            json!({"breached": breached}),
        )
        .map_err(trail_err)?;
    let mut actions = Vec::new();
    let mut contract_doc = None;
    let bundle_contract = if override_used {
        trail
            .append(
                at,
                "break_glass_override",
                inputs.actor,
                json!({"flag": "emergencyFlags.budgetOverride", "breached": breached}),
            )
            .map_err(trail_err)?;
        actions.push(BreachAction::BreakGlassOverride {
            actor: inputs.actor.to_string(),
        });
        inputs.contract.clone()
    } else {
        let mut doc = inputs.contract.document().clone();
        if let Some(flags) = doc.get_mut("emergencyFlags").and_then(Value::as_object_mut) {
            flags.insert("halted".into(), Value::Bool(true));
            flags.insert("haltedAt".into(), Value::String(now.clone()));
            flags.insert("reason".into(), Value::String(reason.clone()));
        }
        let halted =
            Contract::from_value(doc.clone()).map_err(|e| bad("/contract", e.to_string()))?;
        trail
            .append(
                at,
                "agents_halted",
                inputs.actor,
                json!({"target": "workspace.agents.*", "reason": reason}),
            )
            .map_err(trail_err)?;
        actions.push(BreachAction::ImmediateHalt {
            target: "workspace.agents.*".into(),
        });
        contract_doc = Some(doc);
        halted
    };
    trail
        .append(at, "audit_snapshot", inputs.actor, json!({}))
        .map_err(trail_err)?;
    let bundle = assemble(BundleInputs {
        contract: &bundle_contract,
        created_at: at,
        simulation: inputs.simulation,
        policy_decision: inputs.policy_decision,
        decision_card: inputs.decision_card,
        agent_runs: inputs.agent_runs,
        audit_trail: trail.into_events(),
        previous_bundle_ref: inputs.previous_bundle_ref,
    })
    .map_err(|e| bad("/bundle", e.to_string()))?;
    actions.push(BreachAction::AuditSnapshot {
        bundle_id: bundle.id().map_err(|e| bad("/bundle", e.to_string()))?,
    });
    Ok(BreachPlan {
        breached,
        override_used,
        actions,
        contract: contract_doc,
        bundle: Some(bundle),
    })
}
