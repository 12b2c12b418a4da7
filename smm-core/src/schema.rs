//! JSON Schemas of the public documents, generated from the Rust types.
//!
//! The checked-in copies live in the workspace's `schemas/` folder; a test
//! fails when they drift (`cargo xtask bless` regenerates them).

use crate::audit::{AuditBundle, BundleChainReport, Envelope, VerificationResult};
use crate::contract::{ChainReport, ContractSnapshot, Violation};
use crate::policy::{Decision, DecisionCard, PolicyDocument, TestReport};
use crate::sim::{SimulationReport, SimulationRequest};
use crate::usage::{
    AgentRun, AgentTokenClaims, BreachPlan, CommitReceipt, ModelUsage, PriceTable, QuotaStatus,
    Reservation, RetentionPlan, RetentionRecord,
};

/// Every generated schema as (file name, pretty JSON text with a final newline).
pub fn all() -> Vec<(&'static str, String)> {
    vec![
        (
            "simulation-request.schema.json",
            render(schemars::schema_for!(SimulationRequest)),
        ),
        (
            "simulation-report.schema.json",
            render(schemars::schema_for!(SimulationReport)),
        ),
        (
            "workspace-contract.v2.schema.json",
            render_value(crate::contract::schema()),
        ),
        (
            "contract-snapshot.schema.json",
            render(schemars::schema_for!(ContractSnapshot)),
        ),
        (
            "contract-violations.schema.json",
            render(schemars::schema_for!(Vec<Violation>)),
        ),
        (
            "contract-chain-report.schema.json",
            render(schemars::schema_for!(ChainReport)),
        ),
        (
            "audit-bundle.v1.schema.json",
            render(schemars::schema_for!(AuditBundle)),
        ),
        (
            "dsse-envelope.schema.json",
            render(schemars::schema_for!(Envelope)),
        ),
        (
            "bundle-verification.schema.json",
            render(schemars::schema_for!(VerificationResult)),
        ),
        (
            "bundle-chain-report.schema.json",
            render(schemars::schema_for!(BundleChainReport)),
        ),
        (
            "policy-input.schema.json",
            render(schemars::schema_for!(PolicyDocument)),
        ),
        (
            "policy-decision.schema.json",
            render(schemars::schema_for!(Decision)),
        ),
        (
            "decision-card.schema.json",
            render(schemars::schema_for!(DecisionCard)),
        ),
        (
            "rego-test-report.schema.json",
            render(schemars::schema_for!(TestReport)),
        ),
        (
            "agent-run.schema.json",
            render(schemars::schema_for!(AgentRun)),
        ),
        (
            "model-usage.schema.json",
            render(schemars::schema_for!(ModelUsage)),
        ),
        (
            "price-table.schema.json",
            render(schemars::schema_for!(PriceTable)),
        ),
        (
            "reservation.schema.json",
            render(schemars::schema_for!(Reservation)),
        ),
        (
            "commit-receipt.schema.json",
            render(schemars::schema_for!(CommitReceipt)),
        ),
        (
            "quota-status.schema.json",
            render(schemars::schema_for!(Vec<QuotaStatus>)),
        ),
        (
            "breach-plan.schema.json",
            render(schemars::schema_for!(BreachPlan)),
        ),
        (
            "agent-token-claims.schema.json",
            render(schemars::schema_for!(AgentTokenClaims)),
        ),
        (
            "retention-records.schema.json",
            render(schemars::schema_for!(Vec<RetentionRecord>)),
        ),
        (
            "retention-plan.schema.json",
            render(schemars::schema_for!(RetentionPlan)),
        ),
        (
            "campaign.schema.json",
            render(schemars::schema_for!(crate::flow::Campaign)),
        ),
        (
            "run-result.schema.json",
            render(schemars::schema_for!(crate::flow::FlowOutcome)),
        ),
        (
            "sweep-row.schema.json",
            render(schemars::schema_for!(crate::sim::sweep::SweepRow)),
        ),
        (
            "sweep-point.schema.json",
            render(schemars::schema_for!(crate::sim::sweep::SweepPoint)),
        ),
    ]
}

fn render(schema: schemars::Schema) -> String {
    render_value(&schema.to_value())
}

/// A schema as the files hold it: two-space indented, with a final newline
/// (`{:#}` is serde_json's pretty printer, and a `Value` always prints).
fn render_value(schema: &serde_json::Value) -> String {
    format!("{schema:#}\n")
}
