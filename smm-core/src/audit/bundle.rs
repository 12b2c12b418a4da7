//! The audit bundle: its type, the hash-chained audit trail, and the
//! assembler that refuses inconsistent inputs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuditError;
use crate::contract::{Contract, ContractSnapshot};
use crate::jcs;
use crate::policy::{Decision, DecisionCard, PolicyError};
use crate::sim::SimulationReport;
pub use crate::sim::SimulationSummary;
use crate::time::Timestamp;
pub use crate::usage::{AgentRun, ModelUsage};

/// Version tag of the bundle format.
pub const BUNDLE_VERSION: &str = "smm-audit-bundle/v1";
pub use crate::contract::DEFAULT_RETENTION_DAYS;

/// One event of the audit trail. `eventHash` is the SHA-256 of the RFC 8785
/// form of the event without `eventHash`, so it covers `previousEventHash`:
/// the trail is a hash chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditEvent {
    /// 0, 1, 2, ...
    pub sequence: u64,
    /// When (RFC 3339).
    pub timestamp: String,
    /// bundle_created, contract_signed, simulation_executed, policy_evaluated,
    /// agent_executed, bundle_sealed, or another name.
    pub event: String,
    /// Who.
    pub actor: String,
    /// Free-form details (an object).
    #[serde(default)]
    pub details: Value,
    /// Hash of the event before (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_event_hash: Option<String>,
    /// This event's hash.
    pub event_hash: String,
}

impl AuditEvent {
    /// The hash this event should carry.
    pub fn compute_hash(&self) -> Result<String, AuditError> {
        /// The event without its hash.
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Body<'a> {
            sequence: u64,
            timestamp: &'a str,
            event: &'a str,
            actor: &'a str,
            details: &'a Value,
            #[serde(skip_serializing_if = "Option::is_none")]
            previous_event_hash: Option<&'a str>,
        }
        let body = Body {
            sequence: self.sequence,
            timestamp: &self.timestamp,
            event: &self.event,
            actor: &self.actor,
            details: &self.details,
            previous_event_hash: self.previous_event_hash.as_deref(),
        };
        Ok(jcs::sha256_ref_of_canonical(&jcs::to_canonical_vec(&body)?))
    }
}

/// An audit trail under construction: each appended event is chained to
/// the one before.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditTrail {
    events: Vec<AuditEvent>,
}

impl AuditTrail {
    /// An empty trail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Append an event (timestamp RFC 3339; details a JSON object or null).
    pub fn append(
        &mut self,
        timestamp: Timestamp,
        event: &str,
        actor: &str,
        details: Value,
    ) -> Result<&AuditEvent, AuditError> {
        let t = timestamp;
        let mut e = AuditEvent {
            sequence: self.events.len() as u64,
            // One instant, one spelling: the canonical UTC form enters the
            // hash, whatever the caller wrote.
            timestamp: t.to_rfc3339(),
            event: event.to_string(),
            actor: actor.to_string(),
            details,
            previous_event_hash: self.events.last().map(|p| p.event_hash.clone()),
            event_hash: String::new(),
        };
        e.event_hash = e.compute_hash()?;
        self.events.push(e);
        self.events
            .last()
            .ok_or_else(|| AuditError::internal("empty trail"))
    }

    /// The events.
    pub fn events(&self) -> &[AuditEvent] {
        &self.events
    }

    /// Take the events.
    pub fn into_events(self) -> Vec<AuditEvent> {
        self.events
    }
}

/// Check that events chain: sequence numbers, previous hashes, own hashes.
pub fn verify_trail(events: &[AuditEvent]) -> Result<(), AuditError> {
    check_links(events.iter().map(|e| TrailLink {
        sequence: e.sequence,
        previous_event_hash: e.previous_event_hash.as_deref(),
        event_hash: &e.event_hash,
        computed: e.compute_hash(),
    }))
}

/// What [`check_links`] reads of one event: its sequence number, the
/// hashes it states, and the hash of its content (or why there is none).
pub(crate) struct TrailLink<'a> {
    pub(crate) sequence: u64,
    pub(crate) previous_event_hash: Option<&'a str>,
    pub(crate) event_hash: &'a str,
    pub(crate) computed: Result<String, AuditError>,
}

/// The chain rule of [`verify_trail`], over events however they were
/// read (verification reads a canonical payload's events without copies).
pub(crate) fn check_links<'a>(
    links: impl Iterator<Item = TrailLink<'a>>,
) -> Result<(), AuditError> {
    let mut prev: Option<&str> = None;
    for (i, e) in links.enumerate() {
        let at = |what: &str| AuditError::BrokenTrail {
            index: i,
            message: what.to_string(),
        };
        if e.sequence != i as u64 {
            return Err(at(&format!("sequence is {}, expected {i}", e.sequence)));
        }
        if e.previous_event_hash != prev {
            return Err(at("previousEventHash is not the hash of the event before"));
        }
        if e.computed? != e.event_hash {
            return Err(at("eventHash does not match the event's content"));
        }
        prev = Some(e.event_hash);
    }
    Ok(())
}

/// An audit bundle (format [`BUNDLE_VERSION`]). Its id is the SHA-256 of
/// its RFC 8785 form; it is signed as a DSSE envelope over those bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditBundle {
    /// Format version.
    pub bundle_version: String,
    /// Workspace.
    pub workspace_id: String,
    /// Tenant.
    pub tenant_id: String,
    /// Assembly time (passed in, RFC 3339).
    pub created_at: String,
    /// The contract in force.
    pub contract: ContractSnapshot,
    /// Checksum of the policy bundle that was evaluated.
    pub policy_bundle_checksum: String,
    /// What the simulation said.
    pub simulation: SimulationSummary,
    /// The policy decision (made by the bundle `policyBundleChecksum` names).
    pub policy_decision: Decision,
    /// The decision card built from the simulation and that decision.
    pub decision_card: DecisionCard,
    /// Agent runs with their model usage.
    pub agent_runs: Vec<AgentRun>,
    /// The hash-chained trail.
    pub audit_trail: Vec<AuditEvent>,
    /// Id of the workspace's previous bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_bundle_ref: Option<String>,
    /// When the bundle may be deleted (createdAt + retention days).
    pub retention_expires_at: String,
}

impl AuditBundle {
    /// Parse JSON text (duplicate keys, lone surrogates and inexact
    /// numbers refused); errors name the field by JSON pointer. The trail
    /// is checked when the bundle is signed or verified.
    pub fn from_json(text: &str) -> Result<AuditBundle, AuditError> {
        jcs::parse_typed(text)
            .map_err(|(pointer, message)| AuditError::InvalidInput { pointer, message })
    }

    /// The RFC 8785 bytes (the signed payload).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AuditError> {
        Ok(jcs::to_canonical_vec(self)?)
    }

    /// `"sha256:" + hex` of the canonical bytes.
    pub fn id(&self) -> Result<String, AuditError> {
        Ok(jcs::sha256_ref_of_canonical(&self.canonical_bytes()?))
    }
}

/// Everything a bundle is assembled from.
#[derive(Debug, Clone)]
pub struct BundleInputs<'a> {
    /// The contract in force.
    pub contract: &'a Contract,
    /// Assembly time, RFC 3339 (the library reads no clock).
    pub created_at: Timestamp,
    /// The simulation report.
    pub simulation: &'a SimulationReport,
    /// The policy decision; its bundle checksum must be the contract's
    /// `policyBundleChecksum`.
    pub policy_decision: Decision,
    /// The decision card of that decision.
    pub decision_card: DecisionCard,
    /// Agent runs.
    pub agent_runs: Vec<AgentRun>,
    /// The trail (already chained; see [`AuditTrail`]).
    pub audit_trail: Vec<AuditEvent>,
    /// Id of the workspace's previous bundle.
    pub previous_bundle_ref: Option<String>,
}

/// Assemble a bundle, refusing inconsistent inputs: the contract snapshot
/// must match its hash, the trail must chain and not be empty, times must be
/// RFC 3339, the simulation must be of this workspace when it names one,
/// `previousBundleRef` must look like a bundle id, the decision must come
/// from the policy bundle the contract names (an error naming both
/// checksums otherwise) and the card must be that decision's card for this
/// workspace.
pub fn assemble(inputs: BundleInputs<'_>) -> Result<AuditBundle, AuditError> {
    let created = inputs.created_at;
    // A `Contract` exists only as the result of its checks (schema, typed
    // parse, terms hash of the same document), and nothing changes it
    // after: its snapshot verifies by construction, so it is not checked
    // again here (that re-check was nine tenths of an assembly). The
    // contract fuzz target and a property test hold the library to it.
    let snapshot = inputs.contract.snapshot();
    let c = inputs.contract.contract();
    if let Some(ws) = &inputs.simulation.workspace_id
        && ws != &c.workspace_id
    {
        return Err(AuditError::InvalidInput {
            pointer: "/simulation".into(),
            message: format!(
                "the simulation is of workspace {ws}, the contract of {}",
                c.workspace_id
            ),
        });
    }
    if inputs.policy_decision.bundle_checksum != c.policy_bundle_checksum {
        return Err(PolicyError::ChecksumMismatch {
            decision: inputs.policy_decision.bundle_checksum.clone(),
            contract: c.policy_bundle_checksum.clone(),
        }
        .into());
    }
    let card = &inputs.decision_card;
    if card.evaluation_id != inputs.policy_decision.evaluation_id
        || card.policy_bundle_checksum != inputs.policy_decision.bundle_checksum
    {
        return Err(AuditError::InvalidInput {
            pointer: "/decisionCard/evaluationId".into(),
            message: format!(
                "the card was built from evaluation {}, the decision is {}",
                card.evaluation_id, inputs.policy_decision.evaluation_id
            ),
        });
    }
    if card.workspace_id != c.workspace_id {
        return Err(AuditError::InvalidInput {
            pointer: "/decisionCard/workspaceId".into(),
            message: format!(
                "the card is of workspace {}, the contract of {}",
                card.workspace_id, c.workspace_id
            ),
        });
    }
    if inputs.audit_trail.is_empty() {
        return Err(AuditError::InvalidInput {
            pointer: "/auditTrail".into(),
            message: "the trail is empty".into(),
        });
    }
    verify_trail(&inputs.audit_trail)?;
    if let Some(p) = &inputs.previous_bundle_ref
        && !is_sha256_ref(p)
    {
        return Err(AuditError::InvalidInput {
            pointer: "/previousBundleRef".into(),
            message: format!("{p:?} is not a bundle id (sha256:<64 hex>)"),
        });
    }
    for (i, run) in inputs.agent_runs.iter().enumerate() {
        run.check().map_err(|e| AuditError::InvalidInput {
            pointer: format!("/agentRuns/{i}{}", e.pointer().unwrap_or("")),
            message: e.to_string(),
        })?;
        if run.workspace_id != c.workspace_id {
            return Err(AuditError::InvalidInput {
                pointer: format!("/agentRuns/{i}/workspaceId"),
                message: format!(
                    "the run is of workspace {}, the contract of {}",
                    run.workspace_id, c.workspace_id
                ),
            });
        }
    }
    let retention_days = c
        .audit
        .as_ref()
        .map(|a| a.retention_days)
        .or(c.data_retention.as_ref().map(|d| d.audit_retention_days))
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    Ok(AuditBundle {
        bundle_version: BUNDLE_VERSION.into(),
        workspace_id: c.workspace_id.clone(),
        tenant_id: c.tenant_id.clone(),
        // The canonical UTC spelling: one instant, one bundle id.
        created_at: created.to_rfc3339(),
        contract: snapshot,
        policy_bundle_checksum: c.policy_bundle_checksum.clone(),
        simulation: SimulationSummary::from(inputs.simulation),
        policy_decision: inputs.policy_decision,
        decision_card: inputs.decision_card,
        agent_runs: inputs
            .agent_runs
            .into_iter()
            .map(AgentRun::with_canonical_times)
            .collect(),
        audit_trail: inputs.audit_trail,
        previous_bundle_ref: inputs.previous_bundle_ref,
        retention_expires_at: created
            .plus_seconds(i64::from(retention_days) * 86_400)
            .to_rfc3339(),
    })
}

pub(crate) use crate::jcs::is_sha256_ref;

/// An audit event before it is chained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventInput {
    /// When (RFC 3339).
    pub timestamp: String,
    /// Event name.
    pub event: String,
    /// Who.
    pub actor: String,
    /// Details (an object).
    #[serde(default)]
    pub details: Value,
}

/// The JSON form of [`BundleInputs`] (for the Python and C front doors).
/// `auditTrail` holds either events to chain (no `eventHash`) or an
/// already chained trail (every event with its `eventHash`, verified).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BundleRequest {
    /// The contract (a v2 document).
    pub contract: Value,
    /// Assembly time (RFC 3339).
    pub created_at: String,
    /// The simulation report.
    pub simulation: SimulationReport,
    /// The policy decision.
    pub policy_decision: Decision,
    /// The decision card.
    pub decision_card: DecisionCard,
    /// Agent runs.
    #[serde(default)]
    pub agent_runs: Vec<AgentRun>,
    /// The trail: events to chain, or a chained trail.
    pub audit_trail: Vec<Value>,
    /// Id of the previous bundle.
    #[serde(default)]
    pub previous_bundle_ref: Option<String>,
}

/// Assemble from the JSON form (errors carry a JSON pointer).
pub fn assemble_request(request: &Value) -> Result<AuditBundle, AuditError> {
    let req: BundleRequest = serde_path_to_error::deserialize(request).map_err(|e| {
        let pointer = crate::jcs::path_pointer(&e);
        AuditError::InvalidInput {
            pointer,
            message: e.inner().to_string(),
        }
    })?;
    let contract = Contract::from_value(req.contract).map_err(|e| AuditError::InvalidInput {
        pointer: format!("/contract{}", e.pointer().unwrap_or("")),
        message: e.to_string(),
    })?;
    let chained = req
        .audit_trail
        .iter()
        .filter(|e| e.get("eventHash").is_some())
        .count();
    let audit_trail = if chained == req.audit_trail.len() && chained > 0 {
        req.audit_trail
            .into_iter()
            .enumerate()
            .map(|(i, e)| {
                serde_json::from_value::<AuditEvent>(e).map_err(|err| AuditError::InvalidInput {
                    pointer: format!("/auditTrail/{i}"),
                    message: err.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?
    } else if chained == 0 {
        let mut t = AuditTrail::new();
        for (i, e) in req.audit_trail.into_iter().enumerate() {
            let e: EventInput =
                serde_json::from_value(e).map_err(|err| AuditError::InvalidInput {
                    pointer: format!("/auditTrail/{i}"),
                    message: err.to_string(),
                })?;
            let at = e
                .timestamp
                .parse::<Timestamp>()
                .map_err(|err| AuditError::InvalidInput {
                    pointer: format!("/auditTrail/{i}/timestamp"),
                    message: err.to_string(),
                })?;
            t.append(at, &e.event, &e.actor, e.details)?;
        }
        t.into_events()
    } else {
        return Err(AuditError::InvalidInput {
            pointer: "/auditTrail".into(),
            message: "either every event carries its eventHash (a chained trail) or none does"
                .into(),
        });
    };
    let created_at = req
        .created_at
        .parse::<Timestamp>()
        .map_err(|e| AuditError::InvalidInput {
            pointer: "/createdAt".into(),
            message: e.to_string(),
        })?;
    assemble(BundleInputs {
        contract: &contract,
        created_at,
        simulation: &req.simulation,
        policy_decision: req.policy_decision,
        decision_card: req.decision_card,
        agent_runs: req.agent_runs,
        audit_trail,
        previous_bundle_ref: req.previous_bundle_ref,
    })
}
