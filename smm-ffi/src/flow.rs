//! The main job end to end: `smm_run_json`, the same flow as `smm run` and
//! Python's `smm_core.run`.

use std::ffi::c_char;
use std::path::Path;

use smm_core::audit::LocalSigner;
use smm_core::flow::{FlowError, FlowInputs, RunDocument};
use smm_core::host;

use crate::audit::smm_signer;
use crate::convert::{arg_str, check_out, options, to_json_string, write_obj, write_out};
use crate::errors::{Failure, boundary, err, err_as, smm_status};
use crate::policy::smm_policy_bundle;
use crate::usage::smm_ledger;

fn flow_err(e: FlowError) -> Failure {
    let message = e.to_string();
    err_as(*e.error, message)
}

fn key_file(path: &Path, create: bool) -> Result<LocalSigner, Failure> {
    host::key_file_signer(path, create, &host::os_entropy).map_err(err)
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
/// store. `store_dir` may be a `postgresql://` URL instead: a store shared
/// by every replica, which needs `signer` (the key the replicas share), and
/// whose database keeps the books when `ledger` is NULL (or give one from
/// `smm_ledger_connect`).
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
        // SAFETY: NULL or live, per this function's contract.
        let (signer, ledger, policy) =
            unsafe { (signer.as_ref(), ledger.as_ref(), policy.as_ref()) };
        let outcome = host::StoreJob::at(root)
            .signer(signer.map(|s| s.inner.as_ref()))
            .ledger(ledger.map(smm_ledger::ledger))
            .policy(policy.map(|p| &p.inner))
            .run(
                FlowInputs {
                    contract: &doc.contract,
                    request: doc.request,
                    campaign: doc.campaign,
                    agent_run: doc.agent_run,
                    now: doc.now,
                    actor: &doc.actor,
                    previous_bundle_ref: None,
                },
                &options(threads),
                &host::os_entropy,
            )
            .map_err(flow_err)?
            .outcome;
        let json = to_json_string(&outcome)?;
        // SAFETY: checked above.
        unsafe { write_out(result_out, json) }
    })
}
