//! The main job, end to end: take a workspace contract, simulate its
//! readiness, evaluate its policies, decide, record what the agents spent,
//! seal the evidence, store it, read it back and verify it.
//!
//! The steps, in order ([`Step`]):
//!
//! 1. `contract`: the v2 contract, checked against its rules at `now`.
//! 2. `simulate`: the request given, or the contract's own
//!    (`workspaceContext` and `simulationConfig` from the contract).
//! 3. `policy`: the policy bundle (its checksum must be the contract's) on
//!    the contract, the campaign's steps, the spend, the report's summary
//!    and the ledger's quota figures.
//! 4. `decision`: the decision card; a deny stops the flow
//!    ([`crate::policy::PolicyError::Denied`]).
//! 5. `usage`: the agent run's tokens and dollars reserved against the
//!    ledger's quotas, tightened by the contract's (its budget `hardCap`;
//!    the contract never loosens or rewrites a quota the operator set); a
//!    block stops the flow. A job already committed is recorded once.
//! 6. `assemble`: the audit bundle (contract snapshot, policy checksum,
//!    decision, card, run, a trail of these steps).
//! 7. `sign`: the envelope. Then the reservation is committed, before
//!    anything is published.
//! 8. `store`, 9. `verify`: the envelope, stored, read back and verified
//!    under the signer's public key.
//!
//! A failing step stops the flow with the step's name and the typed
//! error. Up to `sign`, the reservation is released: the ledger keeps
//! nothing of the run. From the commit on, the usage stays committed (the
//! model calls happened) and the store holds only what was completely
//! signed and verified on its way in: a bundle that records an agent run
//! is never published while the run's usage is uncounted, and a run of the
//! same job after a failure (or a crash) there finds the job committed,
//! records it once and publishes the bundle.
//!
//! Deterministic: with the same inputs, seed, key and `now`, the envelope
//! is the same bytes (RFC 6979 signatures), given the same state of the
//! ledger (the policies read its figures) and the same previous bundle.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::Error;
use crate::audit::store::{BundleStore, StoredBundle};
use crate::audit::{self, AuditTrail, BundleInputs, Signer, TrustedKey, VerificationResult};
use crate::contract::{Contract, ContractError};
use crate::policy::{
    AgentOutput, CardAction, CurrentSpend, Decision, DecisionCard, PolicyBundle, PolicyDocument,
    PolicyError, PolicyInput, WorkflowStep,
};
use crate::sim::{RunOptions, Samples, SimulationReport, SimulationRequest};
use crate::time::Timestamp;
use crate::usage::{
    AgentRun, Amounts, COST_USD, CommitReceipt, Kind, Period, TOKENS, UsageError, UsageLedger,
    contract_quotas, policy_figures,
};

/// The steps of the flow, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Load and check the contract.
    Contract,
    /// Simulate readiness.
    Simulate,
    /// Evaluate the policy bundle.
    Policy,
    /// Build the decision card (a deny stops here).
    Decision,
    /// Reserve the agent run's usage.
    Usage,
    /// Assemble the audit bundle.
    Assemble,
    /// Sign it.
    Sign,
    /// Store it.
    Store,
    /// Read it back and verify it.
    Verify,
}

impl Step {
    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Contract => "contract",
            Step::Simulate => "simulate",
            Step::Policy => "policy",
            Step::Decision => "decision",
            Step::Usage => "usage",
            Step::Assemble => "assemble",
            Step::Sign => "sign",
            Step::Store => "store",
            Step::Verify => "verify",
        }
    }
}

/// A step that failed, with its typed error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} step failed: {error}", .step.as_str())]
pub struct FlowError {
    /// Which step.
    pub step: Step,
    /// Why.
    pub error: Box<Error>,
}

impl FlowError {
    fn at(step: Step) -> impl Fn(Error) -> FlowError {
        move |error| FlowError {
            step,
            error: Box::new(error),
        }
    }

    /// The kind of the underlying error.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        self.error.kind()
    }
}

/// The campaign the run is about: what the policies judge besides the
/// contract and the simulation (`schemas/campaign.schema.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Campaign {
    /// The campaign's steps (none: the policies judge the workspace alone; at
    /// most [`crate::limits::MAX_CAMPAIGN_STEPS`]).
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub workflow: Vec<WorkflowStep>,
    /// What the workspace has spent; when absent, the ledger's `cost_usd`
    /// this ISO week and in total (USD contracts).
    #[serde(default)]
    pub current_spend: Option<CurrentSpend>,
    /// An agent output to check for hallucination.
    #[serde(default)]
    pub agent_output: Option<AgentOutput>,
}

impl Campaign {
    /// Parse JSON text (duplicate keys, lone surrogates and inexact
    /// numbers refused); errors name the field by JSON pointer.
    pub fn from_json(text: &str) -> Result<Campaign, PolicyError> {
        crate::jcs::parse_typed(text)
            .map_err(|(pointer, message)| PolicyError::InvalidInput { pointer, message })
    }

    /// From a JSON value.
    pub fn from_value(value: &serde_json::Value) -> Result<Campaign, PolicyError> {
        Self::from_json(&value.to_string())
    }
}

/// The flow's inputs as one JSON document (what the C ABI's
/// `smm_run_json` takes): `{"contract": {...}, "request"?: {...},
/// "campaign"?: {...}, "agentRun"?: {...}, "now": "RFC 3339", "actor"?:
/// "..."}`. A part that fails to parse is the error of its step
/// (`contract`, `simulate`, `policy`, `usage`), its pointer relative to
/// the part; the document's own fields (`now`, `actor`, unknown ones) are
/// errors of the first step, `contract`.
#[derive(Debug, Clone)]
pub struct RunDocument {
    /// The contract.
    pub contract: Contract,
    /// The simulation request (none: the contract's own).
    pub request: Option<SimulationRequest>,
    /// The campaign (default: no steps, the ledger's spend).
    pub campaign: Campaign,
    /// The agent run to record.
    pub agent_run: Option<AgentRun>,
    /// Now.
    pub now: Timestamp,
    /// Who runs it (default `"smm"`).
    pub actor: String,
}

impl RunDocument {
    /// Parse and check.
    pub fn from_json(text: &str) -> Result<RunDocument, FlowError> {
        let top = |pointer: &str, message: String| FlowError {
            step: Step::Contract,
            error: Box::new(
                audit::AuditError::InvalidInput {
                    pointer: pointer.to_string(),
                    message,
                }
                .into(),
            ),
        };
        let checked = crate::jcs::canonicalize(text.as_bytes())
            .map_err(|e| top(e.pointer().unwrap_or(""), e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_slice(&checked).map_err(|e| top("", e.to_string()))?;
        let serde_json::Value::Object(mut obj) = value else {
            return Err(top("", "the run document must be a JSON object".into()));
        };
        for key in obj.keys() {
            if ![
                "contract", "request", "campaign", "agentRun", "now", "actor",
            ]
            .contains(&key.as_str())
            {
                return Err(top(
                    &format!("/{}", crate::jcs::escape_pointer_token(key)),
                    format!(
                        "unknown field {key:?} (allowed: contract, request, campaign, agentRun, now, actor)"
                    ),
                ));
            }
        }
        let now = match obj.remove("now") {
            Some(serde_json::Value::String(s)) => match Timestamp::parse(&s) {
                Some(t) => t,
                None => return Err(top("/now", "now must be an RFC 3339 date-time".into())),
            },
            _ => return Err(top("/now", "now must be an RFC 3339 date-time".into())),
        };
        let actor = match obj.remove("actor") {
            None => "smm".to_string(),
            Some(serde_json::Value::String(s)) if !s.is_empty() && s.len() <= 256 => s,
            Some(_) => {
                return Err(top(
                    "/actor",
                    "actor must be a string of 1 to 256 bytes".into(),
                ));
            }
        };
        let contract = match obj.remove("contract") {
            Some(v) => {
                Contract::from_value(v).map_err(|e| FlowError::at(Step::Contract)(e.into()))?
            }
            None => return Err(top("/contract", "the contract is required".into())),
        };
        let request = obj
            .remove("request")
            .map(|v| {
                SimulationRequest::from_value(&v)
                    .map_err(|e| FlowError::at(Step::Simulate)(e.into()))
            })
            .transpose()?;
        let campaign = obj
            .remove("campaign")
            .map(|v| Campaign::from_value(&v).map_err(|e| FlowError::at(Step::Policy)(e.into())))
            .transpose()?
            .unwrap_or_default();
        let agent_run = obj
            .remove("agentRun")
            .map(|v| {
                AgentRun::from_json(&v.to_string())
                    .map_err(|e| FlowError::at(Step::Usage)(e.into()))
            })
            .transpose()?;
        Ok(RunDocument {
            contract,
            request,
            campaign,
            agent_run,
            now,
            actor,
        })
    }
}

/// What the flow runs on.
#[derive(Debug, Clone)]
pub struct FlowInputs<'a> {
    /// The workspace contract.
    pub contract: &'a Contract,
    /// The simulation request; `None`: the contract's own.
    pub request: Option<SimulationRequest>,
    /// The campaign.
    pub campaign: Campaign,
    /// The research agent's run to record (its model usage against the
    /// quotas); `None` records nothing.
    pub agent_run: Option<AgentRun>,
    /// Now: the contract's rules, the policies, the ledger, the bundle's
    /// time (parsed once, at the front door; written in its canonical
    /// spelling).
    pub now: Timestamp,
    /// Who runs the flow (written in the trail).
    pub actor: &'a str,
    /// The workspace's previous bundle, to chain to ([`latest_bundle`]).
    pub previous_bundle_ref: Option<String>,
}

/// The services the flow uses, all provided by the host.
#[derive(Clone, Copy)]
pub struct FlowServices<'a> {
    /// The policy bundle (the contract pins its checksum).
    pub policy: &'a PolicyBundle,
    /// The usage ledger.
    pub ledger: &'a dyn UsageLedger,
    /// The signer (a local key or a KMS).
    pub signer: &'a dyn Signer,
    /// The store (it must trust the signer's key).
    pub store: &'a dyn BundleStore,
}

impl std::fmt::Debug for FlowServices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowServices")
            .field("signer", &self.signer.key_id())
            .finish_non_exhaustive()
    }
}

/// What the agent run's recording did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UsageRecord {
    /// The job.
    pub job_id: String,
    /// Tokens and nano-dollars recorded.
    pub amounts: Amounts,
    /// The ledger's warnings when the reservation neared a limit.
    pub warnings: Vec<String>,
    /// The job was recorded by an earlier run (a rerun records it once):
    /// nothing was reserved or committed this time.
    pub already_recorded: bool,
    /// The commit's receipt (none when already recorded).
    pub receipt: Option<CommitReceipt>,
}

/// The outcome of a successful flow (`schemas/run-result.schema.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowOutcome {
    /// Workspace.
    pub workspace_id: String,
    /// The contract's terms hash.
    pub contract_hash: String,
    /// Contract warnings (violations of severity warning) at `now`.
    pub contract_warnings: Vec<String>,
    /// The simulation report.
    pub simulation: SimulationReport,
    /// The policy decision.
    pub decision: Decision,
    /// The decision card.
    pub decision_card: DecisionCard,
    /// The agent run's recording, when there was a run.
    pub usage: Option<UsageRecord>,
    /// The bundle's id.
    pub bundle_id: String,
    /// The signed envelope, as stored (compact JSON text).
    pub envelope: String,
    /// The verification of the envelope read back from the store.
    pub verification: VerificationResult,
    /// Per-iteration values (when the run kept them; not serialized).
    #[serde(skip)]
    #[schemars(skip)]
    pub samples: Option<Samples>,
}

impl FlowOutcome {
    /// Verified on the way back from the store.
    pub fn verified(&self) -> bool {
        self.verification.verified
    }
}

/// The simulation request a contract implies: its workspace as the
/// context, its `simulationConfig`.
pub fn contract_request(contract: &Contract) -> Result<SimulationRequest, Error> {
    let doc = contract.document();
    let mut req = serde_json::Map::new();
    req.insert(
        "workspaceId".into(),
        json!(contract.contract().workspace_id),
    );
    req.insert("workspaceContext".into(), doc.clone());
    if let Some(config) = doc.get("simulationConfig") {
        req.insert("simulationConfig".into(), config.clone());
    }
    Ok(SimulationRequest::from_value(&serde_json::Value::Object(
        req,
    ))?)
}

/// The head of the workspace's chain in `store` (the bundle a new one
/// chains to), verified, found without reading the chain
/// ([`BundleStore::head`]). `now` is checked for its form only: a chain
/// has one head, and a bundle made before it is refused when published.
/// [`run_chained`] chooses the head and publishes in one atomic step;
/// prefer it to this and [`run`].
pub fn latest_bundle(store: &dyn BundleStore, workspace_id: &str) -> Result<Option<String>, Error> {
    Ok(store.head(workspace_id)?.map(|b| b.bundle_id))
}

/// The ledger's `cost_usd` of the ISO week containing `now` and in
/// total, as the policy input's spend (in dollars).
fn ledger_spend(
    ledger: &dyn UsageLedger,
    contract: &Contract,
    now: Timestamp,
) -> Result<CurrentSpend, Error> {
    let ws = &contract.contract().workspace_id;
    let t = now;
    // Days since the epoch; 1970-01-01 was a Thursday (ISO weekday 4).
    let day = t.seconds.div_euclid(86_400);
    let monday = day - (day + 3).rem_euclid(7);
    let mut week = 0u64;
    for d in monday..=day {
        let at = Timestamp {
            seconds: d * 86_400,
            nanos: 0,
        };
        week = week.saturating_add(ledger.used(ws, COST_USD, Period::Day, at)?);
    }
    let total = ledger.used(ws, COST_USD, Period::Total, now)?;
    let usd = |nanos: u64| nanos as f64 / crate::usage::NANOS_PER_USD as f64;
    Ok(CurrentSpend {
        this_week: usd(week),
        total: usd(total),
        currency: contract.contract().budget.currency.clone(),
    })
}

/// The run's usage as ledger amounts: tokens and nano-dollars.
fn run_amounts(run: &AgentRun) -> Result<Amounts, Error> {
    let cost = run.total_cost().ok_or_else(|| UsageError::Overflow {
        what: "the run's cost".into(),
    })?;
    Ok([
        (Kind::from(TOKENS), run.total_tokens()),
        (Kind::from(COST_USD), cost.nanos()),
    ]
    .into())
}

/// How long a run waits for another run of the same job to finish its
/// usage step before it gives up with [`UsageError::JobInProgress`].
pub const JOB_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How often [`run_chained`] re-chains to a head that moved before it
/// gives up with [`audit::AuditError::ChainMoved`].
pub const MAX_CHAIN_ATTEMPTS: usize = crate::limits::MAX_CHAIN_ATTEMPTS;

/// Which bundle the new one chains to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Previous {
    /// The store's head at publication (re-chained while it moves).
    Head,
    /// The one given (publication fails when it is not the head).
    Given(Option<String>),
}

/// Run the flow, chained to `inputs.previous_bundle_ref`: the store
/// publishes the bundle only while that is its workspace's head
/// ([`BundleStore::put_next`]), else the store step fails with
/// [`audit::AuditError::ChainMoved`]. See the module documentation for the
/// steps; [`run_chained`] chains to the store's head instead.
pub fn run(
    inputs: FlowInputs<'_>,
    services: FlowServices<'_>,
    options: &RunOptions,
) -> Result<FlowOutcome, FlowError> {
    let previous = Previous::Given(inputs.previous_bundle_ref.clone());
    run_with(inputs, services, options, previous)
}

/// Run the flow chained to the workspace's head in the store
/// (`inputs.previous_bundle_ref` is not used): when another run publishes
/// first, the bundle is chained to the new head, signed again and offered
/// again (at most [`MAX_CHAIN_ATTEMPTS`] times), so that racing runs of one
/// workspace form one linear chain. The usage is committed once.
pub fn run_chained(
    inputs: FlowInputs<'_>,
    services: FlowServices<'_>,
    options: &RunOptions,
) -> Result<FlowOutcome, FlowError> {
    run_with(inputs, services, options, Previous::Head)
}

fn run_with(
    inputs: FlowInputs<'_>,
    services: FlowServices<'_>,
    options: &RunOptions,
    previous: Previous,
) -> Result<FlowOutcome, FlowError> {
    let ledger = services.ledger;
    let mut held: Option<String> = None;
    let result = run_steps(inputs, services, options, previous, &mut held);
    if result.is_err()
        && let Some(id) = held
    {
        // Nothing of a failed run stays held. A failure to release leaves
        // the hold to expire; the step's error is the one to report.
        let _ = ledger.release(&id);
    }
    result
}

fn run_steps(
    inputs: FlowInputs<'_>,
    services: FlowServices<'_>,
    options: &RunOptions,
    previous_bundle_ref: Previous,
    held: &mut Option<String>,
) -> Result<FlowOutcome, FlowError> {
    let FlowInputs {
        contract,
        request,
        campaign,
        agent_run,
        now,
        actor,
        previous_bundle_ref: _,
    } = inputs;
    let c = contract.contract();
    let ws = c.workspace_id.clone();

    // 1. The contract at `now`.
    let at = FlowError::at(Step::Contract);
    let violations = contract.validate(now).map_err(|e| at(e.into()))?;
    let (errors, warnings): (Vec<_>, Vec<_>) = violations.into_iter().partition(|v| v.is_error());
    if !errors.is_empty() {
        return Err(at(ContractError::Rules { violations: errors }.into()));
    }
    let contract_warnings = warnings
        .iter()
        .map(|v| format!("{} ({})", v.message, v.pointer))
        .collect();
    if let Some(run) = &agent_run {
        run.check()
            .and_then(|()| {
                if run.workspace_id == ws {
                    Ok(())
                } else {
                    Err(UsageError::InvalidInput {
                        pointer: "/agentRun/workspaceId".into(),
                        message: format!("the run is of workspace {}, not {ws}", run.workspace_id),
                    })
                }
            })
            .map_err(|e| FlowError::at(Step::Usage)(e.into()))?;
    }

    // 2. Simulate.
    let at = FlowError::at(Step::Simulate);
    let request = match request {
        Some(r) => r,
        None => contract_request(contract).map_err(&at)?,
    };
    let output = crate::sim::run(&request, options).map_err(|e| at(e.into()))?;
    let report = output.report;

    // 3. Policies, with the ledger's figures.
    let at = FlowError::at(Step::Policy);
    // The contract's quotas bound this run on top of the ledger's own: they
    // may add or tighten a limit, never loosen one, and are not stored (the
    // ledger's quotas are the operator's).
    let contract_quotas = contract_quotas(contract).unwrap_or_default();
    let status = services
        .ledger
        .status_within(&ws, now, &contract_quotas)
        .map_err(|e| FlowError::at(Step::Usage)(e.into()))?;
    let current_spend = match campaign.current_spend {
        Some(s) => s,
        None => ledger_spend(services.ledger, contract, now).map_err(&at)?,
    };
    let input = PolicyInput::new(PolicyDocument {
        workspace: c.clone(),
        workflow: campaign.workflow,
        current_spend,
        simulation: (&report).into(),
        agent_output: campaign.agent_output,
        quotas: policy_figures(&status),
        timestamp: now.to_string(),
    })
    .map_err(|e| at(e.into()))?;
    let decision = services.policy.evaluate(&input).map_err(|e| at(e.into()))?;

    // 4. The decision card; a deny stops here.
    let at = FlowError::at(Step::Decision);
    let card =
        crate::policy::decision_card(&report, &decision, contract).map_err(|e| at(e.into()))?;
    if card.action == CardAction::Deny {
        return Err(at(PolicyError::Denied {
            reasons: card.reason_codes.clone(),
        }
        .into()));
    }

    // 5. Reserve the agent run's usage.
    let at = FlowError::at(Step::Usage);
    let mut usage = None;
    if let Some(run) = &agent_run {
        let amounts = run_amounts(run).map_err(&at)?;
        let reserve = || {
            services.ledger.reserve_within(
                &ws,
                &run.job_id,
                &amounts,
                now,
                crate::usage::DEFAULT_RESERVATION_TTL_SECONDS,
                &contract_quotas,
            )
        };
        // Another run of the same job may hold it at this moment (racing
        // runs of one agent run): wait for it to commit (then this run's
        // record is that one) or give the job back, for a bounded time.
        let mut answer = reserve();
        let mut waited = std::time::Duration::ZERO;
        let mut step = std::time::Duration::from_millis(10);
        while matches!(answer, Err(UsageError::JobInProgress { .. })) && waited < JOB_WAIT {
            std::thread::sleep(step);
            waited += step;
            step = (step * 2).min(std::time::Duration::from_millis(200));
            answer = reserve();
        }
        let (warnings, already_recorded) = match answer {
            Ok(r) => {
                let r = r.require_allowed().map_err(|e| at(e.into()))?;
                *held = Some(r.id);
                (r.reasons, false)
            }
            // Recorded by an earlier run of the same job: once is enough.
            Err(UsageError::JobCommitted { .. }) => (Vec::new(), true),
            Err(e) => return Err(at(e.into())),
        };
        usage = Some(UsageRecord {
            job_id: run.job_id.clone(),
            amounts,
            warnings,
            already_recorded,
            receipt: None,
        });
    }

    // 6. Assemble.
    let at = FlowError::at(Step::Assemble);
    let mut trail = AuditTrail::new();
    let mut event = |name: &str, details: serde_json::Value| -> Result<(), FlowError> {
        trail
            .append(now, name, actor, details)
            .map(|_| ())
            .map_err(|e| at(e.into()))
    };
    event(
        "contract_validated",
        json!({"termsHash": contract.terms_hash(), "contractVersion": c.contract_version}),
    )?;
    event(
        "simulation_executed",
        json!({
            "modelId": report.model_id,
            "seed": report.reproducibility.seed,
            "iterationsRun": report.reproducibility.iterations_run,
            "readinessMean": report.readiness_score.mean,
        }),
    )?;
    event(
        "policy_evaluated",
        json!({
            "bundleChecksum": decision.bundle_checksum,
            "evaluationId": decision.evaluation_id,
            "allow": decision.allow,
        }),
    )?;
    event(
        "decision_made",
        json!({"action": card.action.as_str(), "reasonCodes": card.reason_codes}),
    )?;
    if let Some(u) = &usage {
        event(
            "agent_run_recorded",
            json!({"jobId": u.job_id, "amounts": u.amounts}),
        )?;
    }
    event("bundle_sealed", json!({}))?;
    let events = trail.into_events();
    let agent_runs: Vec<AgentRun> = agent_run.into_iter().collect();
    let seal = |previous: Option<String>| -> Result<Vec<u8>, FlowError> {
        let bundle = audit::assemble(BundleInputs {
            contract,
            created_at: now,
            simulation: &report,
            policy_decision: decision.clone(),
            decision_card: card.clone(),
            agent_runs: agent_runs.clone(),
            audit_trail: events.clone(),
            previous_bundle_ref: previous,
        })
        .map_err(|e| FlowError::at(Step::Assemble)(e.into()))?;
        // 7. Sign.
        audit::sign_bundle(&bundle, &[services.signer])
            .map_err(|e| FlowError::at(Step::Sign)(e.into()))
    };
    let head_id = || -> Result<Option<String>, FlowError> {
        Ok(services
            .store
            .head(&ws)
            .map_err(|e| FlowError::at(Step::Store)(e.into()))?
            .map(|h| h.bundle_id))
    };
    let mut envelope = seal(match &previous_bundle_ref {
        Previous::Head => head_id()?,
        Previous::Given(p) => p.clone(),
    })?;

    // A store that cannot take the evidence (it does not trust the key, it
    // is read-only) stops the run here, while nothing is spent.
    let stored =
        StoredBundle::from_envelope(&envelope).map_err(|e| FlowError::at(Step::Store)(e.into()))?;
    services
        .store
        .check_publishable(&stored)
        .map_err(|e| FlowError::at(Step::Store)(e.into()))?;

    // The usage is committed before the evidence is published: a bundle
    // that says `agent_run_recorded` is never in the store while its usage
    // is uncounted. A run that stops between the two (a crash, a store
    // error) leaves the usage committed and no bundle: the next run of the
    // same job finds the job committed (recorded once) and publishes it.
    if let (Some(u), Some(id)) = (&mut usage, held.take()) {
        let receipt = services
            .ledger
            .commit(&id, &u.amounts, now)
            .map_err(|e| FlowError::at(Step::Usage)(e.into()))?;
        u.receipt = Some(receipt);
    }

    // 8. Store, as the next link of the workspace's chain: choosing the
    // previous bundle and publishing are one atomic step of the store.
    let at = FlowError::at(Step::Store);
    let mut attempts = 0;
    let stored = loop {
        let stored = StoredBundle::from_envelope(&envelope).map_err(|e| at(e.into()))?;
        match services.store.put_next(&stored) {
            Ok(_) => break stored,
            Err(audit::AuditError::ChainMoved { .. })
                if previous_bundle_ref == Previous::Head && attempts < MAX_CHAIN_ATTEMPTS =>
            {
                // Another run published first: chain to its bundle.
                attempts += 1;
                envelope = seal(head_id()?)?;
            }
            Err(e) => return Err(at(e.into())),
        }
    };

    // 9. Read back and verify.
    let at = FlowError::at(Step::Verify);
    let back = services
        .store
        .get(&stored.bundle_id)
        .map_err(|e| at(e.into()))?
        .ok_or_else(|| {
            at(audit::AuditError::Corrupt {
                bundle_id: stored.bundle_id.clone(),
                message: "not in the store after it was put".into(),
            }
            .into())
        })?;
    let trusted = [TrustedKey {
        key_id: services.signer.key_id().to_string(),
        key: *services.signer.public_key(),
    }];
    let verification = audit::verify_envelope(&back.envelope, &trusted, Some(&stored.bundle_id));
    if !verification.verified || back.envelope != envelope {
        let failed = verification.checks.iter().find(|c| !c.ok).map_or_else(
            || "the stored envelope differs".to_string(),
            |c| c.name.clone(),
        );
        return Err(at(audit::AuditError::Corrupt {
            bundle_id: stored.bundle_id.clone(),
            message: format!("read back, it does not verify ({failed})"),
        }
        .into()));
    }

    Ok(FlowOutcome {
        workspace_id: ws,
        contract_hash: contract.terms_hash().to_string(),
        contract_warnings,
        simulation: report,
        decision,
        decision_card: card,
        usage,
        bundle_id: stored.bundle_id,
        envelope: String::from_utf8_lossy(&envelope).into_owned(),
        verification,
        samples: output.samples,
    })
}

/// The signing key kept in a file (feature `fs`): read it when it exists,
/// or create it once from `fresh_secret` (32 bytes of the caller's
/// entropy: the core reads none). The file is a PKCS#8 PEM of mode 0600,
/// created atomically: written under a temporary name, then linked into
/// place, so that of two processes creating it at once one wins and the
/// other reads the winner's key, and a crash leaves no half-written key. A
/// key file that others can read (on Unix) is refused. The signer's key id
/// is the key's fingerprint ([`crate::audit::key_fingerprint_id`]).
#[cfg(feature = "fs")]
pub fn signer_from_file(
    path: &std::path::Path,
    fresh_secret: impl FnOnce() -> [u8; 32],
) -> Result<audit::LocalSigner, Error> {
    use std::io::Write;
    let io = |what: &str, e: std::io::Error| -> Error {
        audit::AuditError::InvalidKey {
            message: format!("{what} {}: {e}", path.display()),
        }
        .into()
    };
    let read = |path: &std::path::Path| -> Result<audit::LocalSigner, Error> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| io("cannot read", e))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(audit::AuditError::InvalidKey {
                    message: format!(
                        "{} is readable by others (mode {:o}): chmod 600 it",
                        path.display(),
                        mode & 0o777
                    ),
                }
                .into());
            }
        }
        let pem = crate::limits::read_document_text(path).map_err(|e| io("cannot read", e))?;
        let signer = audit::LocalSigner::from_pkcs8_pem("local", &pem)?;
        let id = audit::key_fingerprint_id(signer.public_key());
        Ok(signer.with_key_id(&id))
    };
    if path.exists() {
        return read(path);
    }
    let secret = fresh_secret();
    let signer = audit::LocalSigner::from_secret_bytes("local", &secret)?;
    let pem = signer.to_pkcs8_pem()?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io("cannot create the directory of", e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("key"),
        std::process::id()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(pem.as_bytes())?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io("cannot write", e));
    }
    // The link fails when another process made the key meanwhile: theirs
    // is the key.
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
            let id = audit::key_fingerprint_id(signer.public_key());
            Ok(signer.with_key_id(&id))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(io("cannot create", e)),
    }
}
