//! The workspace contract, schema v2: every field of the original schema
//! plus the design document's v2 additions. Every object is closed: an
//! unknown field is a violation that names it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Lifecycle of a contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Being written.
    Draft,
    /// Passed validation.
    Validated,
    /// Signed by the customer: its terms are frozen.
    Signed,
    /// Infrastructure being provisioned.
    Provisioning,
    /// Running.
    Active,
    /// Paused.
    Paused,
    /// Ended (terminal).
    Decommissioned,
}

impl Lifecycle {
    /// Every state.
    pub const ALL: [Lifecycle; 7] = [
        Lifecycle::Draft,
        Lifecycle::Validated,
        Lifecycle::Signed,
        Lifecycle::Provisioning,
        Lifecycle::Active,
        Lifecycle::Paused,
        Lifecycle::Decommissioned,
    ];

    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Draft => "draft",
            Lifecycle::Validated => "validated",
            Lifecycle::Signed => "signed",
            Lifecycle::Provisioning => "provisioning",
            Lifecycle::Active => "active",
            Lifecycle::Paused => "paused",
            Lifecycle::Decommissioned => "decommissioned",
        }
    }

    /// Parse the JSON spelling.
    pub fn parse(s: &str) -> Option<Lifecycle> {
        Lifecycle::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The states reachable in one step (the table of the contract docs):
    /// draft→validated; validated→signed|draft; signed→provisioning;
    /// provisioning→active|decommissioned; active→paused|decommissioned;
    /// paused→active|decommissioned; decommissioned is terminal.
    pub fn next_states(self) -> &'static [Lifecycle] {
        use Lifecycle::*;
        match self {
            Draft => &[Validated],
            Validated => &[Signed, Draft],
            Signed => &[Provisioning],
            Provisioning => &[Active, Decommissioned],
            Active => &[Paused, Decommissioned],
            Paused => &[Active, Decommissioned],
            Decommissioned => &[],
        }
    }

    /// True from `signed` on: the contract has been signed at some point.
    pub fn is_signed_or_later(self) -> bool {
        !matches!(self, Lifecycle::Draft | Lifecycle::Validated)
    }
}

/// Social platforms a workspace can publish to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum Platform {
    Linkedin,
    X,
    Instagram,
    Facebook,
    Youtube,
    Tiktok,
}

impl Platform {
    /// Every platform, in declaration order.
    pub const ALL: [Platform; 6] = [
        Platform::Linkedin,
        Platform::X,
        Platform::Instagram,
        Platform::Facebook,
        Platform::Youtube,
        Platform::Tiktok,
    ];

    /// The serialized name (`"linkedin"`, `"x"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Linkedin => "linkedin",
            Platform::X => "x",
            Platform::Instagram => "instagram",
            Platform::Facebook => "facebook",
            Platform::Youtube => "youtube",
            Platform::Tiktok => "tiktok",
        }
    }
}

/// A goal of the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Goal {
    /// Goal key (lead_gen, brand_awareness, ...).
    #[schemars(length(min = 1))]
    pub key: String,
    /// Target value.
    pub target: f64,
    /// Unit of the target.
    pub unit: String,
}

/// Who signed the contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedBy {
    /// Signing principal.
    #[schemars(length(min = 1))]
    pub principal: String,
    /// When.
    #[schemars(extend("format" = "date-time"))]
    pub signed_at: String,
    /// Signature id.
    #[schemars(length(min = 1))]
    pub signature_id: String,
}

/// Connector state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum ConnectorStatus {
    Unconnected,
    Connected,
    Degraded,
    Revoked,
}

/// A connection to a platform account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Connector {
    /// Platform.
    pub platform: Platform,
    /// Connector id.
    pub connector_id: String,
    /// Account on the platform.
    pub account_id: String,
    /// Display name.
    pub display_name: String,
    /// State.
    pub status: ConnectorStatus,
    /// Last successful connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub last_connected_at: Option<String>,
    /// OAuth scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Contact of the account owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_contact: Option<String>,
}

/// Kind of consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum ConsentType {
    VoiceLikeness,
    UgcLicense,
    CelebrityRelease,
    DataProcessing,
    MarketingUse,
}

/// A consent the workspace relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentRecord {
    /// Consent id.
    pub consent_id: String,
    /// Kind.
    #[serde(rename = "type")]
    pub consent_type: ConsentType,
    /// Who granted it.
    pub granted_by: String,
    /// When it was granted.
    #[schemars(extend("format" = "date-time"))]
    pub granted_at: String,
    /// When it expires.
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
    /// The signed document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_ref: Option<String>,
    /// Signature of the verifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier_signature: Option<String>,
}

/// Planned spend per item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub struct Breakdown {
    #[schemars(range(min = 0))]
    pub paid_ads: f64,
    #[schemars(range(min = 0))]
    pub llm_model_spend: f64,
    #[schemars(range(min = 0))]
    pub rendering: f64,
    #[schemars(range(min = 0))]
    pub third_party_services: f64,
}

/// Spend forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Forecast {
    /// Estimated weekly spend.
    #[schemars(range(min = 0))]
    pub estimated_weekly_spend: f64,
    /// Confidence in [0, 1].
    #[schemars(range(min = 0, max = 1))]
    pub confidence: f64,
}

/// Budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContractBudget {
    /// ISO 4217 code.
    #[schemars(pattern(r"^[A-Z]{3}$"))]
    pub currency: String,
    /// Weekly cap.
    #[schemars(range(min = 0))]
    pub weekly_cap: f64,
    /// Hard cap.
    #[schemars(range(min = 0))]
    pub hard_cap: f64,
    /// Planned spend per item.
    pub breakdown: Breakdown,
    /// Forecast.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forecast: Option<Forecast>,
}

/// How launches are approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub struct ApprovalPolicy {
    #[schemars(range(min = 0, max = 1))]
    pub auto_approve_readiness_threshold: f64,
    #[schemars(range(min = 0, max = 1))]
    pub canary_initial_pct: f64,
    #[schemars(range(min = 1))]
    pub canary_watch_window_hours: f64,
    pub manual_approval_for_paid: bool,
    pub legal_manual_approval: bool,
}

/// Risk profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum ContractRiskProfile {
    Low,
    Medium,
    High,
    Enterprise,
}

/// Data retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataRetention {
    /// Days audit records are kept (>= 30).
    #[schemars(range(min = 30))]
    pub audit_retention_days: u32,
}

/// State of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum RunStatus {
    Pending,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// The last run (lifecycle state, not part of the terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub struct LastRun {
    pub run_id: String,
    pub status: RunStatus,
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub finished_at: Option<String>,
}

/// State of a canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub enum CanaryStatus {
    Monitoring,
    Passed,
    RolledBack,
}

/// The current canary (lifecycle state, not part of the terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub struct CurrentCanary {
    #[schemars(range(min = 0, max = 1))]
    pub pct: f64,
    #[schemars(extend("format" = "date-time"))]
    pub started_at: String,
    pub status: CanaryStatus,
}

/// Audit settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Audit {
    /// Days bundles are kept (>= 30).
    #[schemars(range(min = 30))]
    pub retention_days: u32,
    /// Where bundles are stored.
    pub storage_ref: String,
    /// Id of the latest bundle (lifecycle state, not part of the terms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_bundle_id: Option<String>,
}

/// Simulation settings of the workspace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(
    missing_docs,
    reason = "the variants are the serialized names, documented on the type"
)]
pub struct ContractSimulationConfig {
    #[schemars(range(min = 100))]
    pub iterations: u64,
    pub random_seed: u64,
    #[schemars(range(min = 30))]
    pub timeout_seconds: u64,
}

/// Emergency switches (lifecycle state, not part of the terms).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EmergencyFlags {
    /// Every agent of the workspace is stopped.
    pub halted: bool,
    /// Spending above the caps is allowed (break-glass).
    pub budget_override: bool,
    /// Every action needs a human approval.
    pub human_approval_required: bool,
    /// When the workspace was halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub halted_at: Option<String>,
    /// Why (required when halted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A workspace contract, schema v2.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "WorkspaceContract (v2)")]
pub struct WorkspaceContract {
    /// Workspace id.
    #[schemars(length(min = 1))]
    pub workspace_id: String,
    /// Tenant id.
    #[schemars(length(min = 1))]
    pub tenant_id: String,
    /// Author.
    pub created_by: String,
    /// Creation time of this version.
    #[schemars(extend("format" = "date-time"))]
    pub created_at: String,
    /// Lifecycle state.
    pub lifecycle: Lifecycle,
    /// "v" + semantic version, e.g. v1.2.3.
    #[schemars(pattern(r"^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$"))]
    pub contract_version: String,
    /// Terms hash of the previous version ("sha256:" + 64 hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^sha256:[a-f0-9]{64}$"))]
    pub previous_contract_ref: Option<String>,
    /// Signature record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_by: Option<SignedBy>,
    /// Start of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub effective_from: Option<String>,
    /// End of validity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub effective_to: Option<String>,
    /// Goals (at least one).
    #[schemars(length(min = 1))]
    pub goals: Vec<Goal>,
    /// Channels (at least one).
    #[schemars(length(min = 1))]
    pub primary_channels: Vec<Platform>,
    /// Platform connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectors: Option<Vec<Connector>>,
    /// Consents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_records: Option<Vec<ConsentRecord>>,
    /// Budget.
    pub budget: ContractBudget,
    /// Approval policy.
    pub approval_policy: ApprovalPolicy,
    /// Risk profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_profile: Option<ContractRiskProfile>,
    /// Data retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_retention: Option<DataRetention>,
    /// Time to live of the workspace, in hours.
    #[schemars(range(min = 1))]
    pub ttl_hours: u64,
    /// Policy bundle.
    pub policy_bundle_ref: String,
    /// SHA-256 of the policy bundle (64 hex, no prefix).
    #[schemars(pattern(r"^[a-f0-9]{64}$"))]
    pub policy_bundle_checksum: String,
    /// Last run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
    /// Current canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_canary: Option<CurrentCanary>,
    /// Audit settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    /// Simulation settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulation_config: Option<ContractSimulationConfig>,
    /// Emergency switches.
    pub emergency_flags: EmergencyFlags,
    /// KMS key that signs this workspace's audit bundles.
    #[schemars(length(min = 1))]
    pub kms_key_ref: String,
    /// Vault mount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vault_mount: Option<String>,
}
