//! Audit bundles: signers, assembly, signing, verification, the file store.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;
use smm_core::audit as core_audit;
use smm_core::error::ErrorKind;

use crate::contracts::Contract;
use crate::convert::{Text, bytes_arg, document, from_json, now_arg, to_json, to_py};
use crate::errors::{raise, to_py_err, validation};
use crate::simulation::{SimulationReport, run_options};

pub(crate) enum SignerKind {
    Local(core_audit::LocalSigner),
    External(core_audit::ExternalSigner),
}

impl SignerKind {
    pub(crate) fn signer(&self) -> &dyn core_audit::Signer {
        match self {
            SignerKind::Local(s) => s,
            SignerKind::External(s) => s,
        }
    }
}

/// A P-256 private key held in this process (RFC 6979 deterministic
/// signatures). Its repr never shows the key.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct LocalSigner {
    pub(crate) inner: SignerKind,
}

#[pymethods]
impl LocalSigner {
    /// A new random key (OS entropy).
    ///
    /// Parameters:
    /// - key_id: the key id written in signatures
    #[staticmethod]
    fn generate(py: Python<'_>, key_id: Text) -> PyResult<Self> {
        smm_core::host::generate_signer(&key_id, &smm_core::host::os_entropy)
            .map(|s| LocalSigner {
                inner: SignerKind::Local(s),
            })
            .map_err(|e| to_py_err(py, e))
    }
    /// From a PKCS#8 PEM private key.
    ///
    /// Parameters:
    /// - key_id: the key id written in signatures
    /// - pem: a PKCS#8 PEM P-256 private key
    #[staticmethod]
    fn from_pem(py: Python<'_>, key_id: &str, pem: &str) -> PyResult<Self> {
        let s =
            core_audit::LocalSigner::from_pkcs8_pem(key_id, pem).map_err(|e| to_py_err(py, e))?;
        Ok(LocalSigner {
            inner: SignerKind::Local(s),
        })
    }
    /// Sign a 32-byte SHA-256 digest: strict DER, low S (checked against
    /// the public key).
    fn sign_digest<'py>(&self, py: Python<'py>, digest: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        sign_digest_with(py, &self.inner, digest)
    }
    /// The private key as PKCS#8 PEM. Handle with care.
    fn to_pem(&self, py: Python<'_>) -> PyResult<String> {
        match &self.inner {
            SignerKind::Local(s) => s.to_pkcs8_pem().map_err(|e| to_py_err(py, e)),
            SignerKind::External(_) => Err(raise(
                py,
                crate::errors::Class::SignerError,
                "not a local key".into(),
                None,
                Some(ErrorKind::SignerFailed),
            )),
        }
    }
    #[getter]
    fn key_id(&self) -> String {
        self.inner.signer().key_id().to_string()
    }
    /// The public key as SPKI PEM.
    #[getter]
    fn public_key_pem(&self) -> String {
        core_audit::public_key_pem(self.inner.signer().public_key())
    }
    fn __repr__(&self) -> String {
        format!("LocalSigner(key_id={:?})", self.inner.signer().key_id())
    }
}

/// A signer whose key lives elsewhere (AWS KMS `Sign` with ECDSA_SHA_256 and
/// MessageType DIGEST, GCP KMS, an HSM): `sign_digest(digest: bytes) ->
/// bytes` returns a DER or P1363 signature of the 32-byte digest. Answers
/// are verified against `public_key_pem` before use.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct ExternalSigner {
    pub(crate) inner: SignerKind,
}

#[pymethods]
impl ExternalSigner {
    #[new]
    fn new(
        py: Python<'_>,
        key_id: &str,
        public_key_pem: &str,
        sign_digest: Py<PyAny>,
    ) -> PyResult<Self> {
        if !sign_digest.bind(py).is_callable() {
            return Err(validation(py, "", "sign_digest must be callable".into()));
        }
        let callback: core_audit::SignCallback = Box::new(move |digest: &[u8; 32]| {
            Python::attach(|py| {
                // The exception the callback raised (a KMS client's) is
                // kept as the cause: it becomes the SignerError's __cause__.
                let out = sign_digest
                    .bind(py)
                    .call1((PyBytes::new(py, digest),))
                    .map_err(|e| smm_core::error::Cause::new(crate::errors::Raised(e)))?;
                out.extract::<Vec<u8>>()
                    .map_err(|_| "sign_digest must return bytes".into())
            })
        });
        let s = core_audit::ExternalSigner::new(key_id, public_key_pem.as_bytes(), callback)
            .map_err(|e| to_py_err(py, e))?;
        Ok(ExternalSigner {
            inner: SignerKind::External(s),
        })
    }
    #[getter]
    fn key_id(&self) -> String {
        self.inner.signer().key_id().to_string()
    }
    #[getter]
    fn public_key_pem(&self) -> String {
        core_audit::public_key_pem(self.inner.signer().public_key())
    }
    /// Sign a 32-byte SHA-256 digest through the callback (checked).
    fn sign_digest<'py>(&self, py: Python<'py>, digest: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        sign_digest_with(py, &self.inner, digest)
    }
    fn __repr__(&self) -> String {
        format!("ExternalSigner(key_id={:?})", self.inner.signer().key_id())
    }
}

pub(crate) fn sign_digest_with<'py>(
    py: Python<'py>,
    s: &SignerKind,
    digest: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    let d: [u8; 32] = digest.try_into().map_err(|_| {
        validation(
            py,
            "",
            format!("digest must be 32 bytes (got {})", digest.len()),
        )
    })?;
    let sig = core_audit::sign_checked(s.signer(), &d).map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, &sig))
}

pub(crate) fn signer_of<'a>(py: Python<'_>, obj: &'a Bound<'_, PyAny>) -> PyResult<&'a SignerKind> {
    if let Ok(l) = obj.cast::<LocalSigner>() {
        return Ok(&l.get().inner);
    }
    if let Ok(e) = obj.cast::<ExternalSigner>() {
        return Ok(&e.get().inner);
    }
    Err(validation(
        py,
        "",
        "signer must be a LocalSigner or an ExternalSigner".into(),
    ))
}

pub(crate) fn report_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(r) = obj.cast::<SimulationReport>() {
        return crate::convert::to_value(py, &r.get().report);
    }
    document(py, obj, "/simulation")
}

pub(crate) fn contract_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(c) = obj.cast::<Contract>() {
        return Ok(c.get().inner.document().clone());
    }
    document(py, obj, "/contract")
}

/// Assemble an audit bundle (returns it as a dict). `policy_decision` is a
/// Decision (or its dict), `decision_card` the dict `decision_card` made of
/// it; the decision must come from the contract's policy bundle.
/// `audit_trail` is a list of events to chain ({timestamp, event, actor,
/// details}) or an already chained trail (every event with its eventHash).
///
/// Parameters:
/// - contract: the v2 contract (Contract or document)
/// - simulation: the SimulationReport (or its dict)
/// - created_at: the bundle's time (RFC 3339 or aware datetime)
/// - audit_trail: the events to chain, or an already chained trail
/// - policy_decision: the Decision (or its dict)
/// - decision_card: the card from decision_card
/// - agent_runs: AgentRun objects or dicts (optional)
/// - previous_bundle_ref: the workspace's previous bundle id (optional)
#[pyfunction]
#[pyo3(signature = (contract, simulation, *, created_at, audit_trail, policy_decision,
                    decision_card, agent_runs = None, previous_bundle_ref = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the Python keyword signature"
)]
pub(crate) fn assemble_bundle<'py>(
    py: Python<'py>,
    contract: &Bound<'py, PyAny>,
    simulation: &Bound<'py, PyAny>,
    created_at: &Bound<'py, PyAny>,
    audit_trail: &Bound<'py, PyAny>,
    policy_decision: &Bound<'py, PyAny>,
    decision_card: &Bound<'py, PyAny>,
    agent_runs: Option<&Bound<'py, PyAny>>,
    previous_bundle_ref: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let request = serde_json::json!({
        "contract": contract_value(py, contract)?,
        "createdAt": now_arg(py, created_at)?,
        "simulation": report_value(py, simulation)?,
        "policyDecision": crate::policy::decision_value(py, policy_decision)?,
        "decisionCard": to_json(py, decision_card, "/decisionCard")?,
        "agentRuns": crate::usage::agent_runs_value(py, agent_runs)?,
        "auditTrail": to_json(py, audit_trail, "/auditTrail")?,
        "previousBundleRef": previous_bundle_ref,
    });
    let bundle = core_audit::assemble_request(&request).map_err(|e| to_py_err(py, e))?;
    to_py(py, &bundle)
}

pub(crate) fn bundle_from(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<core_audit::AuditBundle> {
    let v = document(py, obj, "")?;
    serde_path_to_error::deserialize(&v).map_err(|e| {
        let pointer = smm_core::sim::SimulationError::from_path_error(&e);
        validation(
            py,
            &pointer,
            format!("not an audit bundle at {pointer:?}: {}", e.inner()),
        )
    })
}

/// The id of a bundle: "sha256:" + hex of its canonical bytes.
#[pyfunction]
pub(crate) fn bundle_id(py: Python<'_>, bundle: &Bound<'_, PyAny>) -> PyResult<String> {
    bundle_from(py, bundle)?.id().map_err(|e| to_py_err(py, e))
}

/// Sign a bundle: the DSSE envelope (JSON bytes).
///
/// Parameters:
/// - bundle: the assembled bundle (dict or text)
/// - signer: a LocalSigner or an ExternalSigner
#[pyfunction]
pub(crate) fn sign_bundle<'py>(
    py: Python<'py>,
    bundle: &Bound<'py, PyAny>,
    signer: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let b = bundle_from(py, bundle)?;
    let s = signer_of(py, signer)?;
    let env = core_audit::sign_bundle(&b, &[s.signer()]).map_err(|e| to_py_err(py, e))?;
    Ok(PyBytes::new(py, &env))
}

/// The outcome of verifying a signed bundle.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct VerificationResult {
    pub(crate) inner: core_audit::VerificationResult,
}

#[pymethods]
impl VerificationResult {
    #[getter]
    fn verified(&self) -> bool {
        self.inner.verified
    }
    #[getter]
    fn key_id(&self) -> Option<&str> {
        self.inner.key_id.as_deref()
    }
    #[getter]
    fn bundle_id(&self) -> Option<&str> {
        self.inner.bundle_id.as_deref()
    }
    /// The key ids whose signatures verified, each once (one key signs once).
    #[getter]
    fn signed_by(&self) -> Vec<String> {
        self.inner.signed_by.clone()
    }
    /// [{"name", "ok", "detail"}], in the order the checks ran.
    #[getter]
    fn checks<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.checks)
    }
    /// The object as a dict (its JSON schema's shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __bool__(&self) -> bool {
        self.inner.verified
    }
    fn __repr__(&self) -> String {
        format!(
            "VerificationResult(verified={}, key_id={:?}, bundle_id={:?})",
            self.inner.verified, self.inner.key_id, self.inner.bundle_id
        )
    }
}

pub(crate) fn trusted_from(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
) -> PyResult<Vec<core_audit::TrustedKey>> {
    let pairs: Vec<(String, Bound<'_, PyAny>)> = if let Ok(d) = obj.cast::<PyDict>() {
        d.iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, v)))
            .collect::<PyResult<_>>()?
    } else {
        obj.try_iter()?
            .map(|i| i?.extract::<(String, Bound<'_, PyAny>)>())
            .collect::<PyResult<_>>()?
    };
    pairs
        .into_iter()
        .map(|(id, key)| {
            let k = bytes_arg(py, &key, "a trusted public key")?;
            core_audit::TrustedKey::new(&id, &k).map_err(|e| to_py_err(py, e))
        })
        .collect()
}

/// Verify a signed bundle offline against trusted keys ({key_id: public key
/// PEM/DER/SEC1} or [(key_id, key)]).
///
/// Parameters:
/// - envelope: the DSSE envelope (bytes or text)
/// - trusted_keys: {key_id: public key PEM} or [(key_id, key)]
/// - expected_bundle_id: the id it must have (optional)
#[pyfunction]
#[pyo3(signature = (envelope, trusted_keys, *, expected_bundle_id = None))]
pub(crate) fn verify_bundle(
    py: Python<'_>,
    envelope: &Bound<'_, PyAny>,
    trusted_keys: &Bound<'_, PyAny>,
    expected_bundle_id: Option<String>,
) -> PyResult<VerificationResult> {
    let env = bytes_arg(py, envelope, "envelope")?;
    let keys = trusted_from(py, trusted_keys)?;
    let inner =
        py.detach(|| core_audit::verify_envelope(&env, &keys, expected_bundle_id.as_deref()));
    Ok(VerificationResult { inner })
}

/// Verify many signed bundles on `threads` threads (default: every core).
///
/// Parameters:
/// - envelopes: DSSE envelopes
/// - trusted_keys: {key_id: public key PEM} or [(key_id, key)]
/// - threads: worker threads (None or 0: every core)
#[pyfunction]
#[pyo3(signature = (envelopes, trusted_keys, *, threads = None))]
pub(crate) fn verify_bundles(
    py: Python<'_>,
    envelopes: &Bound<'_, PyAny>,
    trusted_keys: &Bound<'_, PyAny>,
    threads: Option<i64>,
) -> PyResult<Vec<VerificationResult>> {
    let envs: Vec<Vec<u8>> = envelopes
        .try_iter()?
        .map(|e| bytes_arg(py, &e?, "envelope"))
        .collect::<PyResult<_>>()?;
    let keys = trusted_from(py, trusted_keys)?;
    let threads = run_options(py, threads, false)?.threads;
    let out = py
        .detach(|| core_audit::verify_envelopes(&envs, &keys, threads))
        .map_err(|e| to_py_err(py, e))?;
    Ok(out
        .into_iter()
        .map(|inner| VerificationResult { inner })
        .collect())
}

/// Verify a workspace's bundles (dicts) through previousBundleRef.
#[pyfunction]
pub(crate) fn verify_bundle_chain<'py>(
    py: Python<'py>,
    bundles: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let bs: Vec<core_audit::AuditBundle> = bundles
        .try_iter()?
        .map(|b| bundle_from(py, &b?))
        .collect::<PyResult<_>>()?;
    let r = core_audit::verify_bundle_chain(&bs).map_err(|e| to_py_err(py, e))?;
    to_py(py, &r)
}

/// ECDSA P-256 / SHA-256: does `signature` (format "der" or "p1363") sign
/// `message` under `public_key` (PEM, SPKI DER or SEC1)?
#[pyfunction]
#[pyo3(signature = (public_key, message, signature, format = "der"))]
pub(crate) fn ecdsa_p256_verify(
    py: Python<'_>,
    public_key: &Bound<'_, PyAny>,
    message: &[u8],
    signature: &[u8],
    format: &str,
) -> PyResult<bool> {
    let f = core_audit::SignatureFormat::parse(format).ok_or_else(|| {
        validation(
            py,
            "",
            format!("format must be 'der' or 'p1363' (got {format:?})"),
        )
    })?;
    let key = bytes_arg(py, public_key, "public_key")?;
    core_audit::ecdsa_p256_verify(&key, message, signature, f).map_err(|e| to_py_err(py, e))
}

/// Signed bundles on disk: `audit-bundles/YYYY-MM-DD/bundle-<ws>-<time>-<short id>.json.gz`
/// and `audit-snapshots/<id>/contract.json.gz`, written atomically; never overwritten.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct FileBundleStore {
    pub(crate) inner: core_audit::store::FileBundleStore,
}

/// Stored bundles as Python lists them: [{"bundleId", "workspaceId", "createdAt"}].
fn listing<'py>(
    py: Python<'py>,
    items: Vec<core_audit::store::StoredBundle>,
) -> PyResult<Bound<'py, PyAny>> {
    from_json(py, &Value::Array(rows(items)))
}

/// Stored bundles as rows: {"bundleId", "workspaceId", "createdAt"}.
fn rows(items: Vec<core_audit::store::StoredBundle>) -> Vec<Value> {
    items
        .into_iter()
        .map(|b| serde_json::json!({"bundleId": b.bundle_id, "workspaceId": b.workspace_id, "createdAt": b.created_at}))
        .collect()
}

/// A page of stored bundles as Python sees it: {"bundles": [...], "next": id or None}.
fn page_dict<'py>(
    py: Python<'py>,
    page: core_audit::store::BundlePage,
) -> PyResult<Bound<'py, PyAny>> {
    from_json(
        py,
        &serde_json::json!({"bundles": rows(page.bundles), "next": page.next}),
    )
}

#[pymethods]
impl FileBundleStore {
    /// Open (creating) a store at `path`. It publishes envelopes whose
    /// every signature verifies under `trusted_keys` ({key_id: public key}
    /// or [(key_id, key)]; several keys may share an id); without keys it
    /// is read-only.
    #[new]
    #[pyo3(signature = (path, trusted_keys = None))]
    fn new(
        py: Python<'_>,
        path: std::path::PathBuf,
        trusted_keys: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let keys = trusted_keys
            .map(|k| trusted_from(py, k))
            .transpose()?
            .unwrap_or_default();
        let inner =
            core_audit::store::FileBundleStore::open(path, keys).map_err(|e| to_py_err(py, e))?;
        Ok(FileBundleStore { inner })
    }
    /// Store a signed bundle (envelope bytes); returns its id. Every
    /// signature must verify under the store's trusted keys
    /// (UntrustedBundleError). On a stored id only new signatures from
    /// other trusted keys are added (see `history`); anything else is a
    /// BundleConflictError.
    fn put(&self, py: Python<'_>, envelope: &Bound<'_, PyAny>) -> PyResult<String> {
        use core_audit::store::BundleStore;
        let b = stored_from(py, envelope)?;
        let id = b.bundle_id.clone();
        py.detach(|| self.inner.put(&b))
            .map_err(|e| to_py_err(py, e))?;
        Ok(id)
    }
    /// How a stored bundle got its signatures: [{"sequence", "event",
    /// "keyIds", "envelopeSha256", "previousEventHash"?, "eventHash"}].
    ///
    /// Parameters:
    /// - bundle_id: the bundle id ("sha256:" + 64 hex)
    fn history<'py>(&self, py: Python<'py>, bundle_id: Text) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let h = py
            .detach(|| self.inner.history(&bundle_id))
            .map_err(|e| to_py_err(py, e))?;
        to_py(py, &h)
    }
    /// The envelope stored under `bundle_id` (checked), or None.
    fn get<'py>(&self, py: Python<'py>, bundle_id: Text) -> PyResult<Option<Bound<'py, PyBytes>>> {
        use core_audit::store::BundleStore;
        let b = py
            .detach(|| self.inner.get(&bundle_id))
            .map_err(|e| to_py_err(py, e))?;
        Ok(b.map(|b| PyBytes::new(py, &b.envelope)))
    }
    /// Every bundle of every workspace, each verified, oldest first:
    /// [{"bundleId", "workspaceId", "createdAt"}] (to find a store's
    /// workspaces, or the bundle an id prefix names).
    fn all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let items = py
            .detach(|| self.inner.all())
            .map_err(|e| to_py_err(py, e))?;
        listing(py, items)
    }
    /// A workspace's bundles created in [start, end): [{"bundleId", "workspaceId", "createdAt"}].
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - start: created at or after (RFC 3339 or datetime; None: no bound)
    /// - end: created before (None: no bound)
    #[pyo3(signature = (workspace_id, start = None, end = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        start: Option<&Bound<'py, PyAny>>,
        end: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let start = start.map(|s| now_arg(py, s)).transpose()?;
        let end = end.map(|s| now_arg(py, s)).transpose()?;
        let items = py
            .detach(|| {
                self.inner
                    .list(&workspace_id, start.as_deref(), end.as_deref())
            })
            .map_err(|e| to_py_err(py, e))?;
        listing(py, items)
    }
    /// One page of a workspace's bundles, oldest first: {"bundles":
    /// [{"bundleId", "workspaceId", "createdAt"}], "next": the cursor of
    /// the next page or None}. Its cost grows with the page, not with the
    /// workspace's bundles.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - after: the cursor a page returned as "next" (None: the first page)
    /// - limit: at most this many bundles (1 to 10,000)
    #[pyo3(signature = (workspace_id, after = None, limit = 100))]
    fn list_page<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        after: Option<Text>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let page = py
            .detach(|| self.inner.list_page(&workspace_id, after.as_deref(), limit))
            .map_err(|e| to_py_err(py, e))?;
        page_dict(py, page)
    }
    /// The envelope at the head of a workspace's chain (the bundle the
    /// next one chains to), or None when the workspace has none; found
    /// without reading the chain.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    fn head<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        use core_audit::store::BundleStore;
        let b = py
            .detach(|| self.inner.head(&workspace_id))
            .map_err(|e| to_py_err(py, e))?;
        Ok(b.map(|b| PyBytes::new(py, &b.envelope)))
    }
    /// Every workspace the store holds bundles of, sorted.
    fn workspaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.workspaces())
            .map_err(|e| to_py_err(py, e))
    }
    /// The contract snapshot stored with a bundle (a dict), checked against
    /// the bundle that names it; None when the bundle is not stored.
    ///
    /// Parameters:
    /// - bundle_id: the bundle id ("sha256:" + 64 hex)
    fn snapshot<'py>(&self, py: Python<'py>, bundle_id: Text) -> PyResult<Bound<'py, PyAny>> {
        match self
            .inner
            .get_snapshot(&bundle_id)
            .map_err(|e| to_py_err(py, e))?
        {
            None => Ok(py.None().into_bound(py)),
            Some(b) => {
                // The store checked these bytes against the bundle; a
                // snapshot that is not JSON is a corrupt store, said so.
                let v: Value = serde_json::from_slice(&b).map_err(|e| {
                    to_py_err(
                        py,
                        core_audit::AuditError::Corrupt {
                            bundle_id: bundle_id.to_string(),
                            message: format!("the stored contract snapshot is not JSON: {e}"),
                        },
                    )
                })?;
                from_json(py, &v)
            }
        }
    }
}

/// Signed bundles in a PostgreSQL database, shared by every replica of a
/// service (tables audit_bundles, bundle_signatures, bundle_events,
/// chain_heads, bundle_purges). It publishes only envelopes whose every
/// signature verifies under its trusted keys; stored evidence is never
/// updated (the schema refuses it), deleted only by apply_retention (which
/// records what it removed), and each workspace has one chain.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct PostgresBundleStore {
    pub(crate) inner: core_audit::store::PostgresBundleStore,
}

#[pymethods]
impl PostgresBundleStore {
    /// Connect to the store at `url`, creating or migrating its tables
    /// unless `migrate` is False. It publishes envelopes whose every
    /// signature verifies under `trusted_keys`; without keys it is
    /// read-only. The URL's password shows in no error or repr.
    ///
    /// Parameters:
    /// - url: postgresql://user:password@host:port/db (TLS:
    ///   ?sslmode=verify-full&sslrootcert=ca.pem)
    /// - trusted_keys: {key_id: public key} or [(key_id, key)]
    /// - migrate: apply pending migrations (default True)
    #[staticmethod]
    #[pyo3(signature = (url, trusted_keys = None, *, migrate = true))]
    fn connect(
        py: Python<'_>,
        url: Text,
        trusted_keys: Option<&Bound<'_, PyAny>>,
        migrate: bool,
    ) -> PyResult<Self> {
        let keys = trusted_keys
            .map(|k| trusted_from(py, k))
            .transpose()?
            .unwrap_or_default();
        let inner = py
            .detach(|| core_audit::store::PostgresBundleStore::connect_with(&url, keys, migrate))
            .map_err(|e| to_py_err(py, e))?;
        Ok(PostgresBundleStore { inner })
    }
    /// The store's URL, without its password.
    #[getter]
    fn url(&self) -> String {
        self.inner.url().to_string()
    }
    /// Store a signed bundle (the envelope's bytes); returns its id. As
    /// FileBundleStore.put: a stored id only gains signatures of other
    /// trusted keys (recorded in `history`).
    fn put(&self, py: Python<'_>, envelope: &Bound<'_, PyAny>) -> PyResult<String> {
        use core_audit::store::BundleStore;
        let b = stored_from(py, envelope)?;
        let id = b.bundle_id.clone();
        py.detach(|| self.inner.put(&b))
            .map_err(|e| to_py_err(py, e))?;
        Ok(id)
    }
    /// Publish a signed bundle (the envelope's bytes) as the next link of
    /// its workspace's chain: only while its previousBundleRef is the
    /// chain's head (else a BundleConflictError: chain to the new head and
    /// sign again); returns its id.
    ///
    /// Parameters:
    /// - envelope: the signed envelope (bytes or str)
    fn put_next(&self, py: Python<'_>, envelope: &Bound<'_, PyAny>) -> PyResult<String> {
        use core_audit::store::BundleStore;
        let b = stored_from(py, envelope)?;
        let id = b.bundle_id.clone();
        py.detach(|| self.inner.put_next(&b))
            .map_err(|e| to_py_err(py, e))?;
        Ok(id)
    }
    /// The envelope stored under `bundle_id` (checked), or None.
    fn get<'py>(&self, py: Python<'py>, bundle_id: Text) -> PyResult<Option<Bound<'py, PyBytes>>> {
        use core_audit::store::BundleStore;
        let b = py
            .detach(|| self.inner.get(&bundle_id))
            .map_err(|e| to_py_err(py, e))?;
        Ok(b.map(|b| PyBytes::new(py, &b.envelope)))
    }
    /// The envelope at the head of a workspace's chain (the bundle the
    /// next one chains to), or None when the workspace has none.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    fn head<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
    ) -> PyResult<Option<Bound<'py, PyBytes>>> {
        use core_audit::store::BundleStore;
        let b = py
            .detach(|| self.inner.head(&workspace_id))
            .map_err(|e| to_py_err(py, e))?;
        Ok(b.map(|b| PyBytes::new(py, &b.envelope)))
    }
    /// A workspace's bundles created in [start, end): [{"bundleId", "workspaceId", "createdAt"}].
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - start: created at or after (RFC 3339 or datetime; None: no bound)
    /// - end: created before (None: no bound)
    #[pyo3(signature = (workspace_id, start = None, end = None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        start: Option<&Bound<'py, PyAny>>,
        end: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let start = start.map(|s| now_arg(py, s)).transpose()?;
        let end = end.map(|s| now_arg(py, s)).transpose()?;
        let items = py
            .detach(|| {
                self.inner
                    .list(&workspace_id, start.as_deref(), end.as_deref())
            })
            .map_err(|e| to_py_err(py, e))?;
        listing(py, items)
    }
    /// One page of a workspace's bundles, oldest first: {"bundles":
    /// [{"bundleId", "workspaceId", "createdAt"}], "next": the cursor of
    /// the next page or None}. Its cost grows with the page, not with the
    /// workspace's bundles.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - after: the cursor a page returned as "next" (None: the first page)
    /// - limit: at most this many bundles (1 to 10,000)
    #[pyo3(signature = (workspace_id, after = None, limit = 100))]
    fn list_page<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        after: Option<Text>,
        limit: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let page = py
            .detach(|| self.inner.list_page(&workspace_id, after.as_deref(), limit))
            .map_err(|e| to_py_err(py, e))?;
        page_dict(py, page)
    }
    /// How a stored bundle got its signatures (as FileBundleStore.history).
    ///
    /// Parameters:
    /// - bundle_id: the bundle id ("sha256:" + 64 hex)
    fn history<'py>(&self, py: Python<'py>, bundle_id: Text) -> PyResult<Bound<'py, PyAny>> {
        use core_audit::store::BundleStore;
        let h = py
            .detach(|| self.inner.history(&bundle_id))
            .map_err(|e| to_py_err(py, e))?;
        to_py(py, &h)
    }
    /// Every workspace the store holds bundles of, sorted.
    fn workspaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.inner.workspaces())
            .map_err(|e| to_py_err(py, e))
    }
    /// Delete the audit bundles a retention plan says are due, recording in
    /// the store which went under which plan hash; the chain's head is
    /// kept. Returns {"workspaceId", "planHash", "bundleIds", "kept"}.
    ///
    /// Parameters:
    /// - plan: a retention plan (a dict, schemas/retention-plan.schema.json)
    fn apply_retention<'py>(
        &self,
        py: Python<'py>,
        plan: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plan: smm_core::usage::RetentionPlan =
            crate::convert::typed(py, plan, "", "a retention plan")?;
        let p = py
            .detach(|| self.inner.apply_retention(&plan))
            .map_err(|e| to_py_err(py, e))?;
        from_json(py, &purge_json(&p))
    }
    /// The purges recorded for a workspace, oldest first (as apply_retention
    /// returns them, `kept` empty).
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    fn purges<'py>(&self, py: Python<'py>, workspace_id: Text) -> PyResult<Bound<'py, PyAny>> {
        let v = py
            .detach(|| self.inner.purges(&workspace_id))
            .map_err(|e| to_py_err(py, e))?;
        from_json(py, &Value::Array(v.iter().map(purge_json).collect()))
    }
    fn __repr__(&self) -> String {
        format!("PostgresBundleStore.connect({:?})", self.inner.url())
    }
}

fn purge_json(p: &core_audit::store::StorePurge) -> Value {
    serde_json::json!({
        "workspaceId": p.workspace_id,
        "planHash": p.plan_hash,
        "bundleIds": p.bundle_ids,
        "kept": p.kept,
    })
}

/// An envelope argument (bytes or text) read as a stored bundle.
fn stored_from(
    py: Python<'_>,
    envelope: &Bound<'_, PyAny>,
) -> PyResult<core_audit::store::StoredBundle> {
    let env = bytes_arg(py, envelope, "envelope")?;
    core_audit::store::StoredBundle::from_envelope(&env).map_err(|e| to_py_err(py, e))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<LocalSigner>()?;
    m.add_class::<ExternalSigner>()?;
    m.add_class::<VerificationResult>()?;
    m.add_class::<FileBundleStore>()?;
    m.add_class::<PostgresBundleStore>()?;
    m.add_function(wrap_pyfunction!(assemble_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(bundle_id, m)?)?;
    m.add_function(wrap_pyfunction!(sign_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundle, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundles, m)?)?;
    m.add_function(wrap_pyfunction!(verify_bundle_chain, m)?)?;
    m.add_function(wrap_pyfunction!(ecdsa_p256_verify, m)?)?;
    m.add("BUNDLE_PAYLOAD_TYPE", core_audit::BUNDLE_PAYLOAD_TYPE)?;
    Ok(())
}
