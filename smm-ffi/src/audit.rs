//! Audit bundles: signers, assembly, signing, verification, the file store.

use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::audit::store::{BundleStore, FileBundleStore, PutOutcome, StoredBundle};
use smm_core::audit::{self, ExternalSigner, LocalSigner, SignatureFormat, Signer, TrustedKey};
use smm_core::contract;
use smm_core::host;

use crate::convert::{arg_obj, arg_str, check_out, to_json_string, write_obj, write_out};
use crate::errors::{Failure, boundary, err, smm_status};

/// A signing key (a local P-256 key or a host callback). Made by
/// `smm_local_signer_*` or `smm_external_signer_new`, freed by `smm_signer_free`.
pub struct smm_signer {
    pub(crate) inner: Box<dyn Signer>,
}

impl std::fmt::Debug for smm_signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("smm_signer")
            .field("key_id", &self.inner.key_id())
            .finish()
    }
}

/// A filesystem bundle store. Made by `smm_file_store_open`, freed by
/// `smm_file_store_free`.
#[derive(Debug)]
pub struct smm_file_store {
    inner: FileBundleStore,
}

/// The host's signing function: sign the 32-byte SHA-256 `digest` with the
/// key and write the signature (DER or P1363) to `signature_out` (capacity
/// `signature_capacity`, at least 72), its length to `*signature_len_out`;
/// return 0 on success, anything else on failure. `userdata` is passed
/// through untouched. It is called on the thread that called
/// `smm_bundle_sign_json`, during that call.
pub type smm_sign_digest_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        digest: *const u8,
        signature_out: *mut u8,
        signature_capacity: usize,
        signature_len_out: *mut usize,
    ) -> i32,
>;

/// A signer for a new random P-256 key (OS entropy).
///
/// # Safety
/// `key_id` is NULL or a NUL-terminated string; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_local_signer_generate(
    key_id: *const c_char,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        let s = generate_local(id)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

fn generate_local(id: &str) -> Result<LocalSigner, Failure> {
    smm_core::host::generate_signer(id, &smm_core::host::os_entropy).map_err(err)
}

/// A signer for a PKCS#8 PEM P-256 private key.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_local_signer_from_pem(
    key_id: *const c_char,
    private_key_pem: *const c_char,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        // SAFETY: per this function's contract.
        let pem = unsafe { arg_str(private_key_pem, "private_key_pem") }?;
        let s = LocalSigner::from_pkcs8_pem(id, pem).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

/// A signer whose key lives in the host (AWS KMS, GCP KMS, an HSM):
/// `public_key_pem` is its public key, `sign` the host's function,
/// `userdata` passed to it. Answers are verified before use.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `sign` stays callable and `userdata`
/// valid until `smm_signer_free`; `signer_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_external_signer_new(
    key_id: *const c_char,
    public_key_pem: *const c_char,
    sign: smm_sign_digest_fn,
    userdata: *mut c_void,
    signer_out: *mut *mut smm_signer,
) -> smm_status {
    struct Host {
        f: unsafe extern "C" fn(*mut c_void, *const u8, *mut u8, usize, *mut usize) -> i32,
        userdata: *mut c_void,
    }
    // SAFETY: the caller promises the callback may be called from the
    // thread that signs, with this userdata, until the signer is freed.
    unsafe impl Send for Host {}
    // SAFETY: as above; the library never calls it concurrently by itself.
    unsafe impl Sync for Host {}
    impl Host {
        fn call(&self, digest: &[u8; 32]) -> Result<Vec<u8>, String> {
            let mut buf = [0u8; 128];
            let mut len = 0usize;
            // SAFETY: the host's contract; buffers are valid for the call.
            let rc = unsafe {
                (self.f)(
                    self.userdata,
                    digest.as_ptr(),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                )
            };
            if rc != 0 {
                return Err(format!("host callback returned {rc}"));
            }
            buf.get(..len)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| format!("host callback wrote {len} bytes into 128"))
        }
    }
    boundary(|| {
        check_out(signer_out, "signer_out")?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(key_id, "key_id") }?;
        // SAFETY: per this function's contract.
        let pem = unsafe { arg_str(public_key_pem, "public_key_pem") }?;
        let f = sign.ok_or((smm_status::SMM_NULL_ARGUMENT, "sign is NULL".to_string()))?;
        let host = Host { f, userdata };
        let callback: audit::SignCallback =
            Box::new(move |digest: &[u8; 32]| host.call(digest).map_err(Into::into));
        let s = ExternalSigner::new(id, pem.as_bytes(), callback).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(signer_out, smm_signer { inner: Box::new(s) }) };
        Ok(())
    })
}

/// The signer's public key as SPKI PEM.
///
/// # Safety
/// `signer` is NULL or live; `pem_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_public_key_pem(
    signer: *const smm_signer,
    pem_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(pem_out, "pem_out")?;
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        // SAFETY: checked above.
        unsafe { write_out(pem_out, audit::public_key_pem(s.inner.public_key())) }
    })
}

/// Free a signer. NULL is ignored.
///
/// # Safety
/// `signer` is NULL or made by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_free(signer: *mut smm_signer) {
    if !signer.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(signer) })));
    }
}

/// Assemble an audit bundle from `{contract, createdAt, simulation,
/// policyDecision, decisionCard, agentRuns, auditTrail, previousBundleRef}`
/// (see schemas) and write it (canonical JSON) to `*bundle_out`.
///
/// # Safety
/// `inputs_json` is NULL or NUL-terminated; `bundle_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_assemble_json(
    inputs_json: *const c_char,
    bundle_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(bundle_out, "bundle_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(inputs_json, "inputs_json") }?;
        let v = contract::parse_document(text).map_err(err)?;
        let b = audit::assemble_request(&v).map_err(err)?;
        let bytes = b.canonical_bytes().map_err(err)?;
        let s = String::from_utf8(bytes).map_err(|e| (smm_status::SMM_INTERNAL, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(bundle_out, s) }
    })
}

/// Sign a bundle (JSON) and write the DSSE envelope (JSON) to `*envelope_out`.
///
/// # Safety
/// `bundle_json` is NULL or NUL-terminated; `signer` is NULL or live;
/// `envelope_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_sign_json(
    bundle_json: *const c_char,
    signer: *const smm_signer,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(bundle_json, "bundle_json") }?;
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        let b: audit::AuditBundle = serde_json::from_str(text).map_err(|e| {
            (
                smm_status::SMM_INVALID_INPUT,
                format!("not an audit bundle: {e}"),
            )
        })?;
        let env = audit::sign_bundle(&b, &[s.inner.as_ref()]).map_err(err)?;
        let env = String::from_utf8(env).map_err(|e| (smm_status::SMM_INTERNAL, e.to_string()))?;
        // SAFETY: checked above.
        unsafe { write_out(envelope_out, env) }
    })
}

fn trusted_keys(text: &str) -> Result<Vec<TrustedKey>, Failure> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct K {
        key_id: String,
        public_key: String,
    }
    let keys: Vec<K> = serde_json::from_str(text).map_err(|e| {
        (
            smm_status::SMM_INVALID_INPUT,
            format!("trusted keys: expected [{{keyId, publicKey}}]: {e}"),
        )
    })?;
    keys.iter()
        .map(|k| TrustedKey::new(&k.key_id, k.public_key.as_bytes()).map_err(err))
        .collect()
}

/// Verify a signed bundle against trusted keys (`[{"keyId": ..., "publicKey":
/// PEM}]`) and write `{verified, keyId, bundleId, checks}` to `*result_out`.
/// A bundle that does not verify is SMM_OK with `"verified":false`.
///
/// # Safety
/// Strings are NULL or NUL-terminated; `result_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_bundle_verify_json(
    envelope_json: *const c_char,
    trusted_keys_json: *const c_char,
    result_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(result_out, "result_out")?;
        // SAFETY: per this function's contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        // SAFETY: per this function's contract.
        let keys = trusted_keys(unsafe { arg_str(trusted_keys_json, "trusted_keys_json") }?)?;
        let r = audit::verify_envelope(env.as_bytes(), &keys, None);
        // SAFETY: checked above.
        unsafe { write_out(result_out, to_json_string(&r)?) }
    })
}

/// ECDSA P-256 / SHA-256 verification of `message` with `public_key` (PEM,
/// SPKI DER or SEC1) and `signature` in `format` (0 = DER, 1 = P1363).
/// Writes 1 (valid) or 0 to `*valid_out`.
///
/// # Safety
/// Each pointer/length pair describes readable memory (a pointer may be
/// NULL only with length 0); `valid_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ecdsa_p256_verify(
    public_key: *const u8,
    public_key_len: usize,
    message: *const u8,
    message_len: usize,
    signature: *const u8,
    signature_len: usize,
    format: u32,
    valid_out: *mut i32,
) -> smm_status {
    boundary(|| {
        if valid_out.is_null() {
            return Err((smm_status::SMM_NULL_ARGUMENT, "valid_out is NULL".into()));
        }
        let slice = |p: *const u8, n: usize, name: &str| -> Result<&[u8], Failure> {
            if n == 0 {
                return Ok(&[]);
            }
            if p.is_null() {
                return Err((smm_status::SMM_NULL_ARGUMENT, format!("{name} is NULL")));
            }
            // SAFETY: per this function's contract.
            Ok(unsafe { std::slice::from_raw_parts(p, n) })
        };
        let format = match format {
            0 => SignatureFormat::Der,
            1 => SignatureFormat::P1363,
            f => {
                return Err((
                    smm_status::SMM_INVALID_INPUT,
                    format!("format must be 0 (DER) or 1 (P1363), got {f}"),
                ));
            }
        };
        let ok = audit::ecdsa_p256_verify(
            slice(public_key, public_key_len, "public_key")?,
            slice(message, message_len, "message")?,
            slice(signature, signature_len, "signature")?,
            format,
        )
        .map_err(err)?;
        // SAFETY: checked above.
        unsafe { *valid_out = i32::from(ok) };
        Ok(())
    })
}

/// Open (creating if needed) a filesystem bundle store at `path` that
/// publishes envelopes whose every signature verifies under
/// `trusted_keys_json` (`[{"keyId": ..., "publicKey": PEM}]`; several keys
/// may share an id). With `trusted_keys_json` NULL the store is read-only
/// and `smm_file_store_put` is refused.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `trusted_keys_json` is NULL or
/// NUL-terminated; `store_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_open(
    path: *const c_char,
    trusted_keys_json: *const c_char,
    store_out: *mut *mut smm_file_store,
) -> smm_status {
    boundary(|| {
        check_out(store_out, "store_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let inner = FileBundleStore::open(p, keys_arg(trusted_keys_json)?).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(store_out, smm_file_store { inner }) };
        Ok(())
    })
}

/// How a stored bundle got its signatures, as JSON
/// (`[{"sequence", "event", "keyIds", "envelopeSha256", "eventHash", ...}]`,
/// empty when the bundle is not stored).
///
/// # Safety
/// `store` is NULL or live; `bundle_id` NULL or NUL-terminated;
/// `history_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_history_json(
    store: *const smm_file_store,
    bundle_id: *const c_char,
    history_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(history_out, "history_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(bundle_id, "bundle_id") }?;
        // SAFETY: checked above.
        unsafe { write_out(history_out, history_of(&st.inner, id)?) }
    })
}

/// Store a signed bundle (the envelope JSON); writes its id to
/// `*bundle_id_out`. Every signature must verify under the store's trusted
/// keys (SMM_UNTRUSTED otherwise). On a stored id only signatures from
/// other trusted keys are added; anything else is SMM_CONFLICT.
///
/// # Safety
/// `store` is NULL or live; `envelope_json` NULL or NUL-terminated;
/// `bundle_id_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_put(
    store: *const smm_file_store,
    envelope_json: *const c_char,
    bundle_id_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(bundle_id_out, "bundle_id_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        // SAFETY: checked above.
        unsafe { write_out(bundle_id_out, put_into(&st.inner, env, false)?) }
    })
}

/// The envelope stored under `bundle_id` (checked against it), or
/// SMM_NOT_FOUND.
///
/// # Safety
/// As for `smm_file_store_put`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_get(
    store: *const smm_file_store,
    bundle_id: *const c_char,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(bundle_id, "bundle_id") }?;
        let env = envelope_of(st.inner.get(id).map_err(err)?, || format!("no bundle {id}"))?;
        // SAFETY: checked above.
        unsafe { write_out(envelope_out, env) }
    })
}

/// A workspace's bundles created in [from, to) (RFC 3339; NULL for open
/// bounds) as `[{"bundleId", "workspaceId", "createdAt"}]`, oldest first.
///
/// # Safety
/// As for `smm_file_store_put`; `from` and `to` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_list_json(
    store: *const smm_file_store,
    workspace_id: *const c_char,
    from: *const c_char,
    to: *const c_char,
    list_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(list_out, "list_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: per this function's contract (NULL allowed).
        let (from, to) = unsafe { (opt_str(from, "from")?, opt_str(to, "to")?) };
        // SAFETY: checked above.
        unsafe {
            write_out(
                list_out,
                listing(st.inner.list(ws, from, to).map_err(err)?)?,
            )
        }
    })
}

/// A string argument that may be NULL.
///
/// # Safety
/// `s` is NULL or NUL-terminated and valid for the call.
unsafe fn opt_str<'a>(s: *const c_char, name: &str) -> Result<Option<&'a str>, Failure> {
    if s.is_null() {
        Ok(None)
    } else {
        // SAFETY: per this function's contract; arg_str checks NULL.
        unsafe { arg_str(s, name) }.map(Some)
    }
}

/// Stored bundles as the listing functions write them.
fn listing(items: Vec<StoredBundle>) -> Result<String, Failure> {
    to_json_string(&rows(items))
}

/// Stored bundles as listings show them: `{"bundleId", "workspaceId", "createdAt"}`.
fn rows(items: Vec<StoredBundle>) -> Vec<serde_json::Value> {
    items
        .into_iter()
        .map(|b| serde_json::json!({"bundleId": b.bundle_id, "workspaceId": b.workspace_id, "createdAt": b.created_at}))
        .collect()
}

/// Store an envelope (as the next link of its chain when `next`); its id.
fn put_into(store: &dyn BundleStore, envelope: &str, next: bool) -> Result<String, Failure> {
    let b = StoredBundle::from_envelope(envelope.as_bytes()).map_err(err)?;
    let _: PutOutcome = if next {
        store.put_next(&b)
    } else {
        store.put(&b)
    }
    .map_err(err)?;
    Ok(b.bundle_id)
}

/// A stored bundle's envelope, or SMM_NOT_FOUND saying `missing`.
fn envelope_of(b: Option<StoredBundle>, missing: impl Fn() -> String) -> Result<String, Failure> {
    match b {
        None => Err((smm_status::SMM_NOT_FOUND, missing())),
        Some(b) => {
            String::from_utf8(b.envelope).map_err(|e| (smm_status::SMM_STORAGE, e.to_string()))
        }
    }
}

fn history_of(store: &dyn BundleStore, id: &str) -> Result<String, Failure> {
    to_json_string(&store.history(id).map_err(err)?)
}

/// A bundle store of either kind: a directory or a PostgreSQL database
/// shared by replicas. Made by `smm_store_open` or `smm_pg_store_open`,
/// freed by `smm_store_free`.
#[derive(Debug)]
pub struct smm_store {
    pub(crate) inner: host::Store,
}

fn keys_arg(trusted_keys_json: *const c_char) -> Result<Vec<TrustedKey>, Failure> {
    if trusted_keys_json.is_null() {
        Ok(Vec::new())
    } else {
        // SAFETY: NULL or NUL-terminated, per the callers' contracts.
        trusted_keys(unsafe { arg_str(trusted_keys_json, "trusted_keys_json") }?)
    }
}

/// Open the store `path_or_url` names: a `postgresql://` URL (a store
/// shared by every replica, its tables made or migrated on connect; TLS
/// with `?sslmode=verify-full&sslrootcert=ca.pem`), else a directory
/// (made when missing). It publishes envelopes whose every signature
/// verifies under `trusted_keys_json` (`[{"keyId": ..., "publicKey":
/// PEM}]`); with NULL it is read-only. An unreachable server is
/// SMM_STORAGE (retry) naming the URL without its password.
///
/// # Safety
/// `path_or_url` and `trusted_keys_json` are NULL or NUL-terminated;
/// `store_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_open(
    path_or_url: *const c_char,
    trusted_keys_json: *const c_char,
    store_out: *mut *mut smm_store,
) -> smm_status {
    boundary(|| {
        check_out(store_out, "store_out")?;
        // SAFETY: per this function's contract.
        let p = unsafe { arg_str(path_or_url, "path_or_url") }?;
        let inner = host::Store::open(std::path::Path::new(p), keys_arg(trusted_keys_json)?)
            .map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(store_out, smm_store { inner }) };
        Ok(())
    })
}

/// Connect to the PostgreSQL store at `url` (`postgresql://user:password@host:port/db`),
/// as `smm_store_open` does; anything but such a URL is SMM_INVALID_INPUT.
///
/// # Safety
/// As for `smm_store_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_pg_store_open(
    url: *const c_char,
    trusted_keys_json: *const c_char,
    store_out: *mut *mut smm_store,
) -> smm_status {
    boundary(|| {
        check_out(store_out, "store_out")?;
        // SAFETY: per this function's contract.
        let u = unsafe { arg_str(url, "url") }?;
        if !host::is_store_url(u) {
            return Err((
                smm_status::SMM_INVALID_INPUT,
                "url: a PostgreSQL URL starts with postgresql:// (postgresql://user:password@host:port/database)"
                    .into(),
            ));
        }
        let inner = host::Store::open(std::path::Path::new(u), keys_arg(trusted_keys_json)?)
            .map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(store_out, smm_store { inner }) };
        Ok(())
    })
}

/// Store a signed bundle (the envelope JSON), as `smm_file_store_put`; its
/// id to `*bundle_id_out`. With `next` nonzero it is published as the next
/// link of its workspace's chain, only while its `previousBundleRef` is the
/// chain's head (SMM_CONFLICT otherwise: chain to the new head and sign
/// again).
///
/// # Safety
/// `store` is NULL or live; `envelope_json` NULL or NUL-terminated;
/// `bundle_id_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_put(
    store: *const smm_store,
    envelope_json: *const c_char,
    next: i32,
    bundle_id_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(bundle_id_out, "bundle_id_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let env = unsafe { arg_str(envelope_json, "envelope_json") }?;
        // SAFETY: checked above.
        unsafe { write_out(bundle_id_out, put_into(st.inner.as_dyn(), env, next != 0)?) }
    })
}

/// The envelope stored under `bundle_id` (checked), or SMM_NOT_FOUND.
///
/// # Safety
/// As for `smm_store_put`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_get(
    store: *const smm_store,
    bundle_id: *const c_char,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(bundle_id, "bundle_id") }?;
        let b = st.inner.as_dyn().get(id).map_err(err)?;
        let env = envelope_of(b, || format!("no bundle {id}"))?;
        // SAFETY: checked above.
        unsafe { write_out(envelope_out, env) }
    })
}

/// The envelope at the head of a workspace's chain (the bundle the next
/// one chains to), or SMM_NOT_FOUND when the workspace has none.
///
/// # Safety
/// As for `smm_store_put`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_head(
    store: *const smm_store,
    workspace_id: *const c_char,
    envelope_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(envelope_out, "envelope_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        let b = st.inner.as_dyn().head(ws).map_err(err)?;
        let env = envelope_of(b, || format!("workspace {ws} has no bundle"))?;
        // SAFETY: checked above.
        unsafe { write_out(envelope_out, env) }
    })
}

/// A workspace's bundles created in [from, to) (RFC 3339; NULL for open
/// bounds) as `[{"bundleId", "workspaceId", "createdAt"}]`, oldest first.
///
/// # Safety
/// As for `smm_store_put`; `from` and `to` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_list_json(
    store: *const smm_store,
    workspace_id: *const c_char,
    from: *const c_char,
    to: *const c_char,
    list_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(list_out, "list_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: per this function's contract (NULL allowed).
        let (from, to) = unsafe { (opt_str(from, "from")?, opt_str(to, "to")?) };
        let items = st.inner.as_dyn().list(ws, from, to).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(list_out, listing(items)?) }
    })
}

/// One page of a workspace's bundles, oldest first, as `{"bundles":
/// [{"bundleId", "workspaceId", "createdAt"}], "next": id or null}`: at
/// most `limit` (1 to `SMM_MAX_PAGE`) after the bundle `after` (NULL:
/// the first page). Pass `next` back as `after` for the following page; its
/// cost grows with the page, not with the workspace's bundles.
///
/// # Safety
/// As for `smm_store_put`; `after` may be NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_list_page_json(
    store: *const smm_store,
    workspace_id: *const c_char,
    after: *const c_char,
    limit: usize,
    page_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(page_out, "page_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: per this function's contract (NULL allowed).
        let after = unsafe { opt_str(after, "after")? };
        let page = st.inner.as_dyn().list_page(ws, after, limit).map_err(err)?;
        let doc = serde_json::json!({"bundles": rows(page.bundles), "next": page.next});
        // SAFETY: checked above.
        unsafe { write_out(page_out, to_json_string(&doc)?) }
    })
}

/// Every workspace the store holds bundles of, sorted, as a JSON array of
/// strings.
///
/// # Safety
/// `store` is NULL or live; `workspaces_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_workspaces_json(
    store: *const smm_store,
    workspaces_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(workspaces_out, "workspaces_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        let names = st.inner.workspaces().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(workspaces_out, to_json_string(&names)?) }
    })
}

/// How a stored bundle got its signatures, as `smm_file_store_history_json`.
///
/// # Safety
/// `store` is NULL or live; `bundle_id` NULL or NUL-terminated;
/// `history_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_history_json(
    store: *const smm_store,
    bundle_id: *const c_char,
    history_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(history_out, "history_out")?;
        // SAFETY: per this function's contract.
        let st = unsafe { arg_obj(store, "store") }?;
        // SAFETY: per this function's contract.
        let id = unsafe { arg_str(bundle_id, "bundle_id") }?;
        // SAFETY: checked above.
        unsafe { write_out(history_out, history_of(st.inner.as_dyn(), id)?) }
    })
}

/// Free a store. NULL is ignored.
///
/// # Safety
/// `store` is NULL or made by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_store_free(store: *mut smm_store) {
    if !store.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// Free a store. NULL is ignored.
///
/// # Safety
/// `store` is NULL or made by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_file_store_free(store: *mut smm_file_store) {
    if !store.is_null() {
        // SAFETY: made by Box::into_raw here.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(store) })));
    }
}

/// Sign a 32-byte SHA-256 digest with any signer; the signature (strict DER,
/// low S, checked against the signer's public key) goes to `signature_out`
/// (capacity `signature_capacity`, 72 is enough) and its length to
/// `*signature_len_out`.
///
/// # Safety
/// `signer` is NULL or live; `digest` NULL or 32 readable bytes;
/// `signature_out` NULL or `signature_capacity` writable bytes;
/// `signature_len_out` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_signer_sign_digest(
    signer: *const smm_signer,
    digest: *const u8,
    signature_out: *mut u8,
    signature_capacity: usize,
    signature_len_out: *mut usize,
) -> smm_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let s = unsafe { arg_obj(signer, "signer") }?;
        if digest.is_null() || signature_out.is_null() || signature_len_out.is_null() {
            return Err((
                smm_status::SMM_NULL_ARGUMENT,
                "digest, signature_out and signature_len_out are required".into(),
            ));
        }
        let mut d = [0u8; 32];
        // SAFETY: 32 readable bytes per the contract.
        d.copy_from_slice(unsafe { std::slice::from_raw_parts(digest, 32) });
        let sig = audit::sign_checked(s.inner.as_ref(), &d).map_err(err)?;
        if sig.len() > signature_capacity {
            return Err((
                smm_status::SMM_INVALID_INPUT,
                format!("signature needs {} bytes", sig.len()),
            ));
        }
        // SAFETY: capacity checked; the out-pointers are writable.
        unsafe {
            std::ptr::copy_nonoverlapping(sig.as_ptr(), signature_out, sig.len());
            *signature_len_out = sig.len();
        }
        Ok(())
    })
}
