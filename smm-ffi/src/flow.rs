//! The main job end to end: `smm_run_json`, the same flow as `smm run` and
//! Python's `smm_core.run`.

use std::ffi::c_char;
use std::path::Path;

use smm_core::audit::store::FileBundleStore;
use smm_core::audit::{LocalSigner, Signer, TrustedKey};
use smm_core::flow::{self, FlowError, FlowInputs, FlowServices, RunDocument};
use smm_core::policy::PolicyBundle;
use smm_core::usage::{SqliteLedger, UsageLedger};

use crate::audit::smm_signer;
use crate::convert::{arg_str, check_out, options, to_json_string, write_obj, write_out};
use crate::errors::{Failure, boundary, err, smm_status};
use crate::policy::smm_policy_bundle;
use crate::usage::smm_ledger;

fn flow_err(e: FlowError) -> Failure {
    let (status, _) = err(*e.error.clone());
    (status, e.to_string())
}

fn entropy() -> Result<[u8; 32], Failure> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| {
        (
            smm_status::SMM_SIGNER_FAILED,
            format!("no entropy for a new key: {e}"),
        )
    })?;
    Ok(secret)
}

fn key_file(path: &Path, create: bool) -> Result<LocalSigner, Failure> {
    if !create && !path.exists() {
        return Err((
            smm_status::SMM_SIGNER_FAILED,
            format!("no key file {}", path.display()),
        ));
    }
    let secret = if path.exists() { [0; 32] } else { entropy()? };
    flow::signer_from_file(path, || secret).map_err(err)
}

/// The signer of a key file: a PKCS#8 PEM P-256 key of mode 0600 (a file
/// that others may read is refused), its key id the key's fingerprint
/// (`local-` + 16 hex), as `smm run` uses it. When the file does not
/// exist and `create` is nonzero, a new key is written there once, atomically
/// (of two processes creating it at once, both end up with the same key).
///
/// # Safety
/// `path` is NULL or NUL-terminated; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_local_signer_from_key_file(
    path: *const c_char,
    create: i32,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let s = key_file(Path::new(p), create != 0)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

/// Run the main job: validate the contract at `now`, simulate, evaluate the
/// policy bundle, build the decision card, record the agent run against the
/// quotas, sign the audit bundle, store it in `store_dir`, read it back and
/// verify it. The new bundle chains to the workspace's latest bundle in the
/// store.
///
/// `inputs_json`: `{"contract": {...}, "request"?: {...}, "campaign"?:
/// {...}, "agentRun"?: {...}, "now": "RFC 3339", "actor"?: "..."}` (the
/// schemas of each part are in `schemas/`). `signer`: NULL for the key
/// file `<store_dir>/signing-key.pem`, made once. `ledger`: NULL for the
/// SQLite ledger `<store_dir>/usage.sqlite`. `policy`: NULL for the
/// default bundle. `threads`: 0 for every core.
///
/// On success `*result_out` is the run result as JSON
/// (`schemas/run-result.schema.json`; its `envelope` is the signed
/// envelope, as stored). On failure the status is the failing step's
/// error and `smm_last_error_message` starts with the step's name
/// ("contract step failed: ..."); nothing of the run is held in the
/// ledger.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `signer`, `ledger`, `policy` are
/// NULL or live objects of this library; `result_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_run_json(
    inputs_json: *const c_char,
    store_dir: *const c_char,
    signer: *const smm_signer,
    ledger: *const smm_ledger,
    policy: *const smm_policy_bundle,
    threads: u32,
    result_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(inputs_json, "inputs_json") }?;
        // SAFETY: per this function's contract.
        let root = Path::new(unsafe { arg_str(store_dir, "store_dir") }?);
        let doc = RunDocument::from_json(text).map_err(flow_err)?;
        std::fs::create_dir_all(root).map_err(|e| {
            (
                smm_status::SMM_STORAGE,
                format!("cannot create {}: {e}", root.display()),
            )
        })?;
        // SAFETY: NULL or live, per this function's contract.
        let given_signer = unsafe { signer.as_ref() };
        let own_signer = match given_signer {
            Some(_) => None,
            None => Some(key_file(&root.join("signing-key.pem"), true)?),
        };
        let signer: &dyn Signer = match (given_signer, &own_signer) {
            (Some(s), _) => s.inner.as_ref(),
            (None, Some(s)) => s,
            (None, None) => return Err((smm_status::SMM_INTERNAL, "no signer".into())),
        };
        let store = FileBundleStore::open(
            root,
            vec![TrustedKey {
                key_id: signer.key_id().to_string(),
                key: *signer.public_key(),
            }],
        )
        .map_err(err)?;
        // SAFETY: NULL or live, per this function's contract.
        let given_ledger = unsafe { ledger.as_ref() };
        let own_ledger = match given_ledger {
            Some(_) => None,
            None => Some(SqliteLedger::open(root.join("usage.sqlite")).map_err(err)?),
        };
        let ledger: &dyn UsageLedger = match (given_ledger, &own_ledger) {
            (Some(l), _) => l.ledger(),
            (None, Some(l)) => l,
            (None, None) => return Err((smm_status::SMM_INTERNAL, "no ledger".into())),
        };
        // SAFETY: NULL or live, per this function's contract.
        let given_policy = unsafe { policy.as_ref() };
        let own_policy = match given_policy {
            Some(_) => None,
            None => Some(PolicyBundle::default_bundle().map_err(err)?),
        };
        let policy: &PolicyBundle = match (given_policy, &own_policy) {
            (Some(p), _) => &p.inner,
            (None, Some(p)) => p,
            (None, None) => return Err((smm_status::SMM_INTERNAL, "no policy".into())),
        };
        let outcome = flow::run_chained(
            FlowInputs {
                contract: &doc.contract,
                request: doc.request,
                campaign: doc.campaign,
                agent_run: doc.agent_run,
                now: doc.now,
                actor: &doc.actor,
                previous_bundle_ref: None,
            },
            FlowServices {
                policy,
                ledger,
                signer,
                store: &store,
            },
            &options(threads),
        )
        .map_err(flow_err)?;
        let json = to_json_string(&outcome)?;
        // SAFETY: checked above.
        unsafe { write_out(result_out, json) }
    })
}
