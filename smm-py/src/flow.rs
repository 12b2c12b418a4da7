//! The main job end to end: `run(contract, *, store, now, ...) -> RunResult`,
//! the same flow as `smm run` and `smm_run_json`.

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use smm_core::audit::{self as core_audit, Signer};
use smm_core::flow::{self as core_flow, Campaign, FlowError, FlowInputs, FlowOutcome};
use smm_core::host;
use smm_core::usage as core_usage;

use crate::audit::{ExternalSigner, FileBundleStore, LocalSigner, PostgresBundleStore};
use crate::contracts::Contract;
use crate::convert::{document_text, from_json, now_ts};
use crate::errors::{to_py_err, validation};
use crate::policy::PolicyBundle;
use crate::simulation::{SimulationReport, request_from};
use crate::usage::UsageLedger;

/// A path given as `os.PathLike`, or as a `str` that is not JSON text.
fn as_path(obj: &Bound<'_, PyAny>) -> PyResult<Option<PathBuf>> {
    if obj.hasattr("__fspath__")? {
        return Ok(Some(obj.extract::<PathBuf>()?));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        let s: String = s.extract()?;
        if !s.trim_start().starts_with(['{', '[']) {
            return Ok(Some(PathBuf::from(s)));
        }
    }
    Ok(None)
}

/// A document: a path, JSON text or bytes, or a dict.
fn doc_text(py: Python<'_>, obj: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let bytes = match as_path(obj)? {
        Some(p) => crate::errors::read_named_file(py, &format!("the {what}"), &p)?,
        None => document_text(py, obj)?,
    };
    String::from_utf8(bytes)
        .map_err(|e| validation(py, "", format!("the {what} is not UTF-8: {e}")))
}

/// The signer of a run (`None`: the store directory's own key).
enum SignerArg<'py> {
    Default,
    Owned(core_audit::LocalSigner),
    Local(Bound<'py, LocalSigner>),
    External(Bound<'py, ExternalSigner>),
}

impl SignerArg<'_> {
    fn signer(&self) -> Option<&dyn Signer> {
        match self {
            SignerArg::Default => None,
            SignerArg::Owned(s) => Some(s),
            SignerArg::Local(s) => Some(s.get().inner.signer()),
            SignerArg::External(s) => Some(s.get().inner.signer()),
        }
    }
}

fn signer_arg<'py>(
    py: Python<'py>,
    key: Option<&Bound<'py, PyAny>>,
    store_root: Option<&PathBuf>,
) -> PyResult<SignerArg<'py>> {
    let Some(key) = key else {
        // A key made once beside the store (by the host layer).
        if store_root.is_none() {
            return Err(validation(
                py,
                "",
                "give key= when store= is a store object or a postgresql:// URL (the key \
                 every replica signs with)"
                    .into(),
            ));
        }
        return Ok(SignerArg::Default);
    };
    if let Ok(s) = key.cast::<LocalSigner>() {
        return Ok(SignerArg::Local(s.clone()));
    }
    if let Ok(s) = key.cast::<ExternalSigner>() {
        return Ok(SignerArg::External(s.clone()));
    }
    match as_path(key)? {
        Some(path) => host::key_file_signer(&path, false, &host::os_entropy)
            .map(SignerArg::Owned)
            .map_err(|e| to_py_err(py, e)),
        None => Err(validation(
            py,
            "",
            "key must be a PEM file path, a LocalSigner or an ExternalSigner".into(),
        )),
    }
}

/// The outcome of `run`: the bundle's id, whether it verified on its way
/// back from the store, the signed envelope, and the whole result as a dict
/// (`schemas/run-result.schema.json`).
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct RunResult {
    outcome: FlowOutcome,
}

#[pymethods]
impl RunResult {
    /// The audit bundle's id ("sha256:" + 64 hex).
    #[getter]
    fn bundle_id(&self) -> &str {
        &self.outcome.bundle_id
    }
    /// The envelope read back from the store verified under the signer's key.
    #[getter]
    fn verified(&self) -> bool {
        self.outcome.verified()
    }
    /// The signed DSSE envelope, as stored.
    #[getter]
    fn envelope<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.outcome.envelope.as_bytes())
    }
    /// The workspace.
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.outcome.workspace_id
    }
    /// The contract's terms hash.
    #[getter]
    fn contract_hash(&self) -> &str {
        &self.outcome.contract_hash
    }
    /// The decision card's action: "auto_approve", "human_approval" (a deny
    /// raises PolicyDeniedError instead).
    #[getter]
    fn action(&self) -> &'static str {
        self.outcome.decision_card.action.as_str()
    }
    /// The simulation report.
    #[getter]
    fn report(&self) -> SimulationReport {
        SimulationReport {
            report: self.outcome.simulation.clone(),
            samples: None,
        }
    }
    /// The whole result as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v =
            serde_json::to_value(&self.outcome).map_err(|e| validation(py, "", e.to_string()))?;
        from_json(py, &v)
    }
    fn __repr__(&self) -> String {
        format!(
            "RunResult(bundle_id={:?}, action={:?}, verified={})",
            self.outcome.bundle_id,
            self.outcome.decision_card.action.as_str(),
            self.outcome.verified()
        )
    }
}

/// Run the main job: validate the contract at `now`, simulate, evaluate the
/// policy bundle (default: the shipped one), build the decision card, record
/// the agent run against the quotas in the ledger (default:
/// `<store>/usage.sqlite`), sign the audit bundle (key: a PEM file path, a
/// LocalSigner or ExternalSigner; default: `<store>/signing-key.pem`, made
/// once), store it (a directory; a postgresql:// URL or a store object,
/// which need key=; the books default to the URL's database),
/// read it back and verify it. Chains to the workspace's latest bundle in
/// the store. A failing step raises its typed error with `.step` set.
///
/// Parameters:
/// - contract: a path, JSON text, a dict or a Contract
/// - store: a directory, a postgresql:// URL (a store shared by replicas;
///   needs key=), or a FileBundleStore or PostgresBundleStore that trusts the key
/// - now: RFC 3339 string, aware datetime or date
/// - request: a simulation request (default: the contract's simulationConfig)
/// - key: a PEM file path, a LocalSigner or an ExternalSigner (default: <store>/signing-key.pem, made once)
/// - ledger: a SQLite file path, a postgresql:// URL or a UsageLedger
///   (default: <store>/usage.sqlite, or the store URL's database)
/// - campaign: the campaign: workflow steps, spend, agent output (path, text or dict)
/// - agent_run: the research agent's run to record (path, text, dict)
/// - policy: a PolicyBundle (default: the shipped bundle)
/// - actor: who runs it (in the audit trail)
/// - threads: worker threads of the simulation (None or 0: every core)
#[pyfunction]
#[pyo3(signature = (contract, *, store, now, request = None, key = None, ledger = None, campaign = None, agent_run = None, policy = None, actor = "smm", threads = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the Python keyword signature"
)]
pub(crate) fn run(
    py: Python<'_>,
    contract: &Bound<'_, PyAny>,
    store: &Bound<'_, PyAny>,
    now: &Bound<'_, PyAny>,
    request: Option<&Bound<'_, PyAny>>,
    key: Option<&Bound<'_, PyAny>>,
    ledger: Option<&Bound<'_, PyAny>>,
    campaign: Option<&Bound<'_, PyAny>>,
    agent_run: Option<&Bound<'_, PyAny>>,
    policy: Option<&Bound<'_, PyAny>>,
    actor: &str,
    threads: Option<usize>,
) -> PyResult<RunResult> {
    let now = now_ts(py, now)?;
    let step_err = |step: core_flow::Step, e: smm_core::Error| -> PyErr {
        flow_err(
            py,
            FlowError {
                step,
                error: Box::new(e),
            },
        )
    };
    let contract = match contract.cast::<Contract>() {
        Ok(c) => c.get().inner.clone(),
        Err(_) => {
            let text = doc_text(py, contract, "contract")?;
            smm_core::contract::Contract::from_json(&text)
                .map_err(|e| step_err(core_flow::Step::Contract, e.into()))?
        }
    };
    let request = request
        .map(|r| match as_path(r)? {
            Some(_) => {
                let text = doc_text(py, r, "request")?;
                smm_core::sim::SimulationRequest::from_json(&text)
                    .map_err(|e| step_err(core_flow::Step::Simulate, e.into()))
            }
            None => request_from(py, r),
        })
        .transpose()?;
    let campaign = match campaign {
        Some(c) => Campaign::from_json(&doc_text(py, c, "campaign")?)
            .map_err(|e| step_err(core_flow::Step::Policy, e.into()))?,
        None => Campaign::default(),
    };
    let agent_run = match agent_run {
        Some(a) => Some(
            core_usage::AgentRun::from_json(&doc_text(py, a, "agent run")?)
                .map_err(|e| step_err(core_flow::Step::Usage, e.into()))?,
        ),
        None => None,
    };

    let py_store = store.cast::<FileBundleStore>().ok().cloned();
    let pg_store = store.cast::<PostgresBundleStore>().ok().cloned();
    let root = match (&py_store, &pg_store) {
        (None, None) => Some(as_path(store)?.ok_or_else(|| {
            validation(
                py,
                "",
                "store must be a directory path, a postgresql:// URL, a FileBundleStore or a \
                 PostgresBundleStore"
                    .into(),
            )
        })?),
        _ => None,
    };
    // A directory's own key is made beside it; a shared store (an object,
    // a URL) signs with the key given.
    let own_dir = root
        .as_ref()
        .filter(|r| !r.to_str().is_some_and(host::is_store_url));
    let signer = signer_arg(py, key, own_dir)?;
    let py_ledger = ledger.and_then(|l| l.cast::<UsageLedger>().ok()).cloned();
    let ledger_choice = match (&py_ledger, ledger) {
        (Some(_), _) => None,
        (None, Some(l)) => Some(host::LedgerChoice::from_arg(&as_path(l)?.ok_or_else(
            || {
                validation(
                    py,
                    "",
                    "ledger must be a file path, a postgresql:// URL or a UsageLedger".into(),
                )
            },
        )?)),
        (None, None) if root.is_none() => {
            return Err(validation(
                py,
                "",
                "give ledger= when store= is a store object".into(),
            ));
        }
        (None, None) => None,
    };
    let py_policy = match policy {
        Some(p) => Some(
            p.cast::<PolicyBundle>()
                .map_err(|_| validation(py, "", "policy must be a PolicyBundle".into()))?
                .clone(),
        ),
        None => None,
    };
    // Plain references for the work without the GIL.
    let store_ref: Option<&dyn smm_core::audit::store::BundleStore> = match (&py_store, &pg_store) {
        (Some(s), _) => Some(&s.get().inner),
        (None, Some(s)) => Some(&s.get().inner),
        (None, None) => None,
    };
    let signer_ref = signer.signer();
    let ledger_ref = py_ledger.as_ref().map(|l| l.get().ledger());
    let policy_ref = py_policy.as_ref().map(|p| &p.get().inner);
    let result = py.detach(|| {
        let options = smm_core::sim::RunOptions {
            threads,
            ..Default::default()
        };
        let job = match (&root, store_ref) {
            (Some(r), _) => host::StoreJob::at(r),
            (None, Some(s)) => host::StoreJob::in_store(s),
            (None, None) => host::StoreJob::default(),
        };
        job.signer(signer_ref)
            .ledger(ledger_ref)
            .ledger_choice(ledger_choice)
            .policy(policy_ref)
            .run(
                FlowInputs {
                    contract: &contract,
                    request,
                    campaign,
                    agent_run,
                    now,
                    actor,
                    previous_bundle_ref: None,
                },
                &options,
                &host::os_entropy,
            )
            .map(|done| done.outcome)
    });
    match result {
        Ok(outcome) => Ok(RunResult { outcome }),
        Err(e) => Err(flow_err(py, e)),
    }
}

/// The step's typed error, with `.step` naming the step.
fn flow_err(py: Python<'_>, e: FlowError) -> PyErr {
    let step = e.step.as_str();
    let err = to_py_err(py, *e.error);
    let _ = err.value(py).setattr("step", step);
    err
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<RunResult>()?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    Ok(())
}
