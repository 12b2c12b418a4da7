//! The C ABI called as C would call it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use smm::*;

const EXAMPLE: &str = include_str!("../../examples/icblabs-seed42.request.json");

fn take(p: *mut c_char) -> String {
    assert!(!p.is_null());
    let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_owned();
    unsafe { smm_string_free(p) };
    s
}

fn last_error() -> String {
    take(smm_last_error_message())
}

#[test]
fn simulate_round_trip_and_thread_invariance() {
    let req = CString::new(EXAMPLE).unwrap();
    let mut a = ptr::null_mut();
    let mut b = ptr::null_mut();
    assert_eq!(
        unsafe { smm_simulate_json(req.as_ptr(), 1, &mut a) },
        smm_status::SMM_OK
    );
    assert!(smm_last_error_message().is_null());
    assert_eq!(
        unsafe { smm_simulate_json(req.as_ptr(), 2, &mut b) },
        smm_status::SMM_OK
    );
    let (a, b) = (take(a), take(b));
    assert_eq!(a, b);
    assert!(a.contains("\"modelId\":\"smm-readiness-v2\""));
}

#[test]
fn null_and_bad_arguments_are_status_codes() {
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { smm_simulate_json(ptr::null(), 1, &mut out) },
        smm_status::SMM_NULL_ARGUMENT
    );
    assert!(out.is_null(), "out-params are written only on success");
    assert!(last_error().contains("request_json is NULL"));
    let req = CString::new(EXAMPLE).unwrap();
    assert_eq!(
        unsafe { smm_simulate_json(req.as_ptr(), 1, ptr::null_mut()) },
        smm_status::SMM_NULL_ARGUMENT
    );
    let bad = CString::new(EXAMPLE.replace("\"iterations\": 1000", "\"iterations\": 0")).unwrap();
    assert_eq!(
        unsafe { smm_simulate_json(bad.as_ptr(), 1, &mut out) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(out.is_null());
    assert!(last_error().contains("/simulationConfig/iterations"));
    let not_utf8 = [0xffu8, 0xfe, 0];
    assert_eq!(
        unsafe { smm_simulate_json(not_utf8.as_ptr().cast(), 1, &mut out) },
        smm_status::SMM_INVALID_UTF8
    );
    let s = unsafe { CStr::from_ptr(smm_status_name(3)) }
        .to_str()
        .unwrap();
    assert_eq!(s, "SMM_INVALID_INPUT");
    let s = unsafe { CStr::from_ptr(smm_status_name(77)) }
        .to_str()
        .unwrap();
    assert_eq!(s, "SMM_UNKNOWN_STATUS");
    unsafe { smm_string_free(ptr::null_mut()) };
}

/// A whole run (which keeps 32-bit keys, not samples) and merged shards
/// (whose partials carry samples) give the same report through the ABI,
/// also where a clamp piles values up (a tiny hard cap pins cost risk).
#[test]
fn a_keyed_run_and_merged_shards_agree_through_the_abi() {
    for hard_cap in ["4000", "1e-300"] {
        let req = CString::new(
            EXAMPLE
                .replace(
                    "\"enableEarlyTermination\": true",
                    "\"enableEarlyTermination\": false",
                )
                .replace("\"iterations\": 1000", "\"iterations\": 20000")
                .replace("\"hardCap\": 4000", &format!("\"hardCap\": {hard_cap}")),
        )
        .unwrap();
        let mut single = ptr::null_mut();
        assert_eq!(
            unsafe { smm_simulate_json(req.as_ptr(), 2, &mut single) },
            smm_status::SMM_OK
        );
        let single = take(single);
        assert!(single.contains("\"percentileMode\":\"exact\""), "{single}");
        let cut = 40 * smm_block_size();
        let (mut p0, mut p1) = (ptr::null_mut(), ptr::null_mut());
        assert_eq!(
            unsafe { smm_simulate_shard_json(req.as_ptr(), 0, cut, 1, &mut p0) },
            smm_status::SMM_OK
        );
        assert_eq!(
            unsafe { smm_simulate_shard_json(req.as_ptr(), cut, 20000, 1, &mut p1) },
            smm_status::SMM_OK
        );
        let parts = [p0 as *const c_char, p1 as *const c_char];
        let mut merged = ptr::null_mut();
        assert_eq!(
            unsafe { smm_merge_partials_json(parts.as_ptr(), 2, 2, &mut merged) },
            smm_status::SMM_OK
        );
        assert_eq!(take(merged), single, "hardCap {hard_cap}");
        take(p0);
        take(p1);
    }
}

#[test]
fn shards_merge_through_the_abi() {
    let req = CString::new(EXAMPLE.replace(
        "\"enableEarlyTermination\": true",
        "\"enableEarlyTermination\": false",
    ))
    .unwrap();
    let mut single = ptr::null_mut();
    assert_eq!(
        unsafe { smm_simulate_json(req.as_ptr(), 1, &mut single) },
        smm_status::SMM_OK
    );
    let single = take(single);
    let bs = smm_block_size();
    let mut p0 = ptr::null_mut();
    let mut p1 = ptr::null_mut();
    assert_eq!(
        unsafe { smm_simulate_shard_json(req.as_ptr(), 0, 2 * bs, 1, &mut p0) },
        smm_status::SMM_OK
    );
    assert_eq!(
        unsafe { smm_simulate_shard_json(req.as_ptr(), 2 * bs, 1000, 1, &mut p1) },
        smm_status::SMM_OK
    );
    let parts = [p1 as *const c_char, p0 as *const c_char];
    let mut merged = ptr::null_mut();
    assert_eq!(
        unsafe { smm_merge_partials_json(parts.as_ptr(), 2, 2, &mut merged) },
        smm_status::SMM_OK
    );
    assert_eq!(take(merged), single);
    let mut bad = ptr::null_mut();
    assert_eq!(
        unsafe { smm_simulate_shard_json(req.as_ptr(), 1, 5, 1, &mut bad) },
        smm_status::SMM_INVALID_SHARD
    );
    assert_eq!(
        unsafe { smm_merge_partials_json(parts.as_ptr(), 1, 1, &mut bad) },
        smm_status::SMM_INVALID_SHARD
    );
    assert!(last_error().contains("first shard starts"));
    take(p0);
    take(p1);
}

#[test]
fn version_is_the_crate_version() {
    let v = unsafe { CStr::from_ptr(smm_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
}

const V2: &str = include_str!("../../examples/workspace.icblabs.v2.json");

#[test]
fn contracts_through_the_abi() {
    let mut out = ptr::null_mut();
    let doc = CString::new("{\"b\":[1e0],\"a\":\"\\u00e9\"}").unwrap();
    assert_eq!(
        unsafe { smm_canonicalize_json(doc.as_ptr(), &mut out) },
        smm_status::SMM_OK
    );
    assert_eq!(take(out), "{\"a\":\"é\",\"b\":[1]}");
    let dup = CString::new("{\"a\":1,\"a\":1}").unwrap();
    let mut none = ptr::null_mut();
    assert_eq!(
        unsafe { smm_canonicalize_json(dup.as_ptr(), &mut none) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(none.is_null());
    assert!(last_error().contains("duplicate key"));

    let mut answer = -1;
    for (text, want) in [
        ("{\"a\":[1,\"\\n\"]}", 1),
        ("{\"b\":1,\"a\":2}", 0),
        ("[1.0]", 0),
    ] {
        let text = CString::new(text).unwrap();
        assert_eq!(
            unsafe { smm_is_canonical_json(text.as_ptr(), &mut answer) },
            smm_status::SMM_OK
        );
        assert_eq!(answer, want, "{text:?}");
    }
    answer = 7;
    assert_eq!(
        unsafe { smm_is_canonical_json(dup.as_ptr(), &mut answer) },
        smm_status::SMM_INVALID_INPUT
    );
    assert_eq!(answer, 7, "untouched on an error");
    assert!(last_error().contains("duplicate key"));
    assert_eq!(
        unsafe { smm_is_canonical_json(dup.as_ptr(), ptr::null_mut()) },
        smm_status::SMM_NULL_ARGUMENT
    );

    let v2 = CString::new(V2).unwrap();
    let mut hash = ptr::null_mut();
    assert_eq!(
        unsafe { smm_contract_hash_json(v2.as_ptr(), &mut hash) },
        smm_status::SMM_OK
    );
    let hash = take(hash);
    assert_eq!(
        hash,
        smm_core::contract::Contract::from_json(V2)
            .unwrap()
            .terms_hash()
    );

    let now = CString::new("2025-09-01T00:00:00Z").unwrap();
    let mut v = ptr::null_mut();
    assert_eq!(
        unsafe { smm_contract_validate_json(v2.as_ptr(), now.as_ptr(), &mut v) },
        smm_status::SMM_OK
    );
    assert!(!take(v).contains("\"severity\":\"error\""));
    let bad_now = CString::new("soon").unwrap();
    assert_eq!(
        unsafe { smm_contract_validate_json(v2.as_ptr(), bad_now.as_ptr(), &mut v) },
        smm_status::SMM_INVALID_INPUT
    );

    let edited = CString::new(V2.replace("\"hardCap\": 5000", "\"hardCap\": 9000")).unwrap();
    let mut r = ptr::null_mut();
    assert_eq!(
        unsafe { smm_contract_check_change_json(v2.as_ptr(), edited.as_ptr(), &mut r) },
        smm_status::SMM_CONTRACT_REJECTED
    );
    assert!(r.is_null());
    assert!(last_error().contains("/budget/hardCap"));
    assert_eq!(
        unsafe { smm_contract_check_change_json(v2.as_ptr(), v2.as_ptr(), &mut r) },
        smm_status::SMM_OK
    );
    assert_eq!(take(r), "{\"kind\":\"sameTerms\"}");

    let to = CString::new("decommissioned").unwrap();
    assert_eq!(
        unsafe { smm_contract_transition_json(v2.as_ptr(), to.as_ptr(), &mut r) },
        smm_status::SMM_LIFECYCLE_REJECTED
    );
    assert!(last_error().contains("illegal lifecycle transition signed -> decommissioned"));

    let chain = CString::new(format!("[{V2}]")).unwrap();
    assert_eq!(
        unsafe { smm_contract_verify_chain_json(chain.as_ptr(), &mut r) },
        smm_status::SMM_OK
    );
    assert!(take(r).contains("\"valid\":false"));
    let s = unsafe { CStr::from_ptr(smm_status_name(6)) }
        .to_str()
        .unwrap();
    assert_eq!(s, "SMM_CONTRACT_REJECTED");
}

/// `smm_signer_sign_digest` into a 72-byte buffer (a DER signature's
/// most), asserting it succeeds.
fn sign_digest(signer: *const smm_signer, digest: &[u8; 32]) -> Vec<u8> {
    let mut sig = [0u8; 72];
    let mut len = 0usize;
    assert_eq!(
        unsafe {
            smm_signer_sign_digest(
                signer,
                digest.as_ptr(),
                sig.as_mut_ptr(),
                sig.len(),
                &mut len,
            )
        },
        smm_status::SMM_OK
    );
    sig[..len].to_vec()
}

/// RFC 6979 appendix A.2.5 (P-256, SHA-256) through the C ABI: a local
/// signer from the RFC's key answers its signatures (strict DER, low S).
#[test]
fn rfc6979_vectors_through_the_abi() {
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgya+p2EW6dRZrXCFX\nZ7HWk05Qw9s26JsSe4piKxIPZyGhRANCAARg/tS6JVqdMclh63TGNW1owEm4kjth\n+mzmaWIuYPKftnkD/hAIuLyZpBrp6VYovGTy8bIMLX6fUXejwpTURiKZ\n-----END PRIVATE KEY-----\n";
    let vectors = [
        (
            // SHA-256("sample")
            "af2bdbe1aa9b6ec1e2ade1d694f41fc71a831d0268e9891562113d8a62add1bf",
            "3045022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716\
             02200834e36ad29a83bf2bc9385e491d6099c8fdf9d1ed67aa7ea5f51f93782857a9",
        ),
        (
            // SHA-256("test")
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "3045022100f1abb023518351cd71d881567b1ea663ed3efcf6c5132b354f28d3b0b7d38367\
             0220019f4113742a2b14bd25926b49c649155f267e60d3814b4c0cc84250e46f0083",
        ),
    ];
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let id = CString::new("rfc6979").unwrap();
    let pem = CString::new(PEM).unwrap();
    let mut signer = ptr::null_mut();
    assert_eq!(
        unsafe { smm_local_signer_from_pem(id.as_ptr(), pem.as_ptr(), &mut signer) },
        smm_status::SMM_OK
    );
    for (digest, der) in vectors {
        let digest: [u8; 32] = hex(digest).try_into().unwrap();
        assert_eq!(sign_digest(signer, &digest), hex(der));
    }
    unsafe { smm_signer_free(signer) };
}

#[test]
fn audit_through_the_abi() {
    let mut signer = ptr::null_mut();
    let id = CString::new("k1").unwrap();
    assert_eq!(
        unsafe { smm_local_signer_generate(id.as_ptr(), &mut signer) },
        smm_status::SMM_OK
    );
    let mut pem = ptr::null_mut();
    assert_eq!(
        unsafe { smm_signer_public_key_pem(signer, &mut pem) },
        smm_status::SMM_OK
    );
    let pem = take(pem);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    let digest = [7u8; 32];
    let sig = sign_digest(signer, &digest);
    let key = smm_core::audit::parse_public_key(pem.as_bytes()).unwrap();
    assert!(smm_core::audit::verify_digest(
        &key,
        &digest,
        &sig,
        smm_core::audit::SignatureFormat::Der
    ));
    // NULL checks and a bad format.
    let mut valid = -1;
    assert_eq!(
        unsafe {
            smm_ecdsa_p256_verify(
                ptr::null(),
                3,
                ptr::null(),
                0,
                ptr::null(),
                0,
                0,
                &mut valid,
            )
        },
        smm_status::SMM_NULL_ARGUMENT
    );
    assert_eq!(
        unsafe {
            smm_ecdsa_p256_verify(
                pem.as_ptr(),
                pem.len(),
                ptr::null(),
                0,
                sig.as_ptr(),
                sig.len(),
                7,
                &mut valid,
            )
        },
        smm_status::SMM_INVALID_INPUT
    );
    assert_eq!(valid, -1, "out-params untouched on failure");
    let mut bad_pem = ptr::null_mut();
    let garbage = CString::new("not a key").unwrap();
    assert_eq!(
        unsafe { smm_local_signer_from_pem(id.as_ptr(), garbage.as_ptr(), &mut bad_pem) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(bad_pem.is_null());
    let mut ext = ptr::null_mut();
    let pem_c = CString::new(pem).unwrap();
    assert_eq!(
        unsafe {
            smm_external_signer_new(id.as_ptr(), pem_c.as_ptr(), None, ptr::null_mut(), &mut ext)
        },
        smm_status::SMM_NULL_ARGUMENT
    );
    let mut out = ptr::null_mut();
    let not_bundle = CString::new("{}").unwrap();
    assert_eq!(
        unsafe { smm_bundle_sign_json(not_bundle.as_ptr(), signer, &mut out) },
        smm_status::SMM_INVALID_INPUT
    );
    assert_eq!(
        unsafe { smm_bundle_assemble_json(not_bundle.as_ptr(), &mut out) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(last_error().contains("contract"));
    unsafe { smm_signer_free(signer) };
    unsafe { smm_signer_free(ptr::null_mut()) };
    unsafe { smm_file_store_free(ptr::null_mut()) };
}

#[test]
fn hostile_ledger_paths_through_the_abi() {
    // An empty path would be a temporary database that vanishes.
    let empty = CString::new("").unwrap();
    let mut ledger = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_open(empty.as_ptr(), &mut ledger) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(ledger.is_null());
    assert!(last_error().contains("empty"), "{}", last_error());
    // Another application's database: refused, not migrated in place.
    let dir = std::env::temp_dir().join(format!("smm-ffi-foreign-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE users (id INTEGER PRIMARY KEY)")
            .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    let p = CString::new(path.to_str().unwrap()).unwrap();
    assert_eq!(
        unsafe { smm_ledger_open(p.as_ptr(), &mut ledger) },
        smm_status::SMM_LEDGER_CORRUPT
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sqlite_durability_through_the_abi() {
    let dir = std::env::temp_dir().join(format!("smm-ffi-durable-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = CString::new(dir.join("ledger.sqlite").to_str().unwrap()).unwrap();
    let durability_of = |ledger: *const smm_ledger| {
        let mut out = ptr::null_mut();
        assert_eq!(
            unsafe { smm_ledger_durability(ledger, &mut out) },
            smm_status::SMM_OK
        );
        let s = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
        unsafe { smm_string_free(out) };
        s
    };
    let mut full = ptr::null_mut();
    let word = CString::new("full").unwrap();
    assert_eq!(
        unsafe { smm_ledger_open_durable(p.as_ptr(), word.as_ptr(), &mut full) },
        smm_status::SMM_OK
    );
    assert_eq!(durability_of(full), "full");
    let mut plain = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_open(p.as_ptr(), &mut plain) },
        smm_status::SMM_OK
    );
    assert_eq!(durability_of(plain), "normal");
    // A word that is not a durability, a NULL one, a ledger without one.
    let mut none = ptr::null_mut();
    let bad = CString::new("fsync").unwrap();
    assert_eq!(
        unsafe { smm_ledger_open_durable(p.as_ptr(), bad.as_ptr(), &mut none) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(none.is_null());
    assert!(last_error().contains("/durability"), "{}", last_error());
    assert_eq!(
        unsafe { smm_ledger_open_durable(p.as_ptr(), ptr::null(), &mut none) },
        smm_status::SMM_NULL_ARGUMENT
    );
    let mut memory = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_new_memory(&mut memory) },
        smm_status::SMM_OK
    );
    let mut out = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_durability(memory, &mut out) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(out.is_null());
    unsafe {
        smm_ledger_free(full);
        smm_ledger_free(plain);
        smm_ledger_free(memory);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_through_the_abi() {
    const NOW: &str = "2025-09-01T12:00:00Z";
    let cs = |s: &str| CString::new(s).unwrap();
    let mut ledger = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_new_memory(&mut ledger) },
        smm_status::SMM_OK
    );
    let quota = cs(r#"{"workspaceId":"ws-1","kind":"cost_usd","period":"month","limit":50000000}"#);
    assert_eq!(
        unsafe { smm_ledger_set_quota(ledger, quota.as_ptr()) },
        smm_status::SMM_OK
    );
    let (ws, now) = (cs("ws-1"), cs(NOW));
    let reserve = |job: &str, amounts: &str, strict: bool| {
        let (job, amounts) = (cs(job), cs(amounts));
        let mut out = ptr::null_mut();
        let st = unsafe {
            smm_ledger_reserve(
                ledger,
                ws.as_ptr(),
                job.as_ptr(),
                amounts.as_ptr(),
                now.as_ptr(),
                0,
                strict,
                &mut out,
            )
        };
        (st, out)
    };
    let (st, out) = reserve("job-1", r#"{"cost_usd":45000000}"#, false);
    assert_eq!(st, smm_status::SMM_OK);
    let r: serde_json::Value = serde_json::from_str(&take(out)).unwrap();
    assert_eq!(r["outcome"], "warn");
    assert_eq!(
        r["expiresAt"], "2025-09-01T12:15:00Z",
        "ttl 0 is the default"
    );
    let (st, out) = reserve("job-2", r#"{"cost_usd":6000000}"#, true);
    assert_eq!((st, out.is_null()), (smm_status::SMM_QUOTA_EXCEEDED, true));
    assert!(last_error().contains("> limit $0.05"));
    let id = cs(r["id"].as_str().unwrap());
    let actual = cs(r#"{"cost_usd":44000000}"#);
    let mut receipt = ptr::null_mut();
    assert_eq!(
        unsafe {
            smm_ledger_commit(
                ledger,
                id.as_ptr(),
                actual.as_ptr(),
                now.as_ptr(),
                &mut receipt,
            )
        },
        smm_status::SMM_OK
    );
    assert!(take(receipt).contains(r#""alreadyCommitted":false"#));
    let mut used = 0u64;
    let (kind, period) = (cs("cost_usd"), cs("month"));
    assert_eq!(
        unsafe {
            smm_ledger_used(
                ledger,
                ws.as_ptr(),
                kind.as_ptr(),
                period.as_ptr(),
                now.as_ptr(),
                &mut used,
            )
        },
        smm_status::SMM_OK
    );
    assert_eq!(used, 44_000_000);
    assert_eq!(
        unsafe { smm_ledger_release(ledger, id.as_ptr()) },
        smm_status::SMM_UNKNOWN_RESERVATION
    );
    // Status of every new code has its name.
    for code in 19..=27u32 {
        let name = unsafe { CStr::from_ptr(smm_status_name(code)) }
            .to_str()
            .unwrap();
        assert!(
            name.starts_with("SMM_") && name != "SMM_UNKNOWN_STATUS",
            "{code}"
        );
    }
    // The breach playbook from the ledger's status, as JSON.
    let mut status = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_status(ledger, ws.as_ptr(), now.as_ptr(), &mut status) },
        smm_status::SMM_OK
    );
    let status: serde_json::Value = serde_json::from_str(&take(status)).unwrap();
    assert_eq!(status[0]["used"], 44_000_000);
    let mut figures = ptr::null_mut();
    assert_eq!(
        unsafe { smm_ledger_policy_figures(ledger, ws.as_ptr(), now.as_ptr(), &mut figures) },
        smm_status::SMM_OK
    );
    let figures: serde_json::Value = serde_json::from_str(&take(figures)).unwrap();
    assert_eq!(figures[0]["used"], 44_000_000.0);
    // A request missing its evidence names the field.
    let req = cs(
        &serde_json::json!({"contract": {}, "status": status, "now": NOW, "actor": "x"})
            .to_string(),
    );
    let mut plan = ptr::null_mut();
    assert_eq!(
        unsafe { smm_breach_plan(req.as_ptr(), &mut plan) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(plan.is_null());
    unsafe { smm_ledger_free(ledger) };
    unsafe { smm_ledger_free(ptr::null_mut()) };
    // Agent runs are checked.
    let run = cs(
        r#"{"jobId":"j","workspaceId":"ws-1","agentType":"research","status":"running","inputHash":"sha256:short","modelUsage":[],"startedAt":"2025-09-01T10:00:00Z"}"#,
    );
    assert_eq!(
        unsafe { smm_agent_run_check(run.as_ptr()) },
        smm_status::SMM_INVALID_INPUT
    );
    assert!(last_error().contains("/inputHash"));
    // A memory ledger does not apply retention plans; NULLs are statuses.
    let mut deleted = 0u64;
    assert_eq!(
        unsafe { smm_ledger_apply_retention(ptr::null(), quota.as_ptr(), &mut deleted) },
        smm_status::SMM_NULL_ARGUMENT
    );
}

/// One instant, one bundle, through the C front door: the same `now`
/// spelled four ways gives one bundle id.
#[test]
fn one_instant_is_one_bundle_through_the_abi() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = |p: &str| std::fs::read_to_string(root.join("examples").join(p)).unwrap();
    let (contract, campaign, run) = (
        read("workspace.icblabs.v2.json"),
        read("campaign.icblabs.json"),
        read("agent-run.research.json"),
    );
    let id = CString::new("k").unwrap();
    let mut signer = ptr::null_mut();
    assert_eq!(
        unsafe { smm_local_signer_generate(id.as_ptr(), &mut signer) },
        smm_status::SMM_OK
    );
    let mut ids = std::collections::BTreeSet::new();
    for (i, now) in [
        "2025-09-01T12:00:00Z",
        "2025-09-01T12:00:00+00:00",
        "2025-09-01T12:00:00.000Z",
        "2025-09-01T14:00:00+02:00",
    ]
    .iter()
    .enumerate()
    {
        let dir = std::env::temp_dir().join(format!("smm-ffi-instant-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let doc = format!(
            r#"{{"contract": {contract}, "campaign": {campaign}, "agentRun": {run}, "now": "{now}"}}"#
        );
        let (doc, store) = (
            CString::new(doc).unwrap(),
            CString::new(dir.to_str().unwrap()).unwrap(),
        );
        let mut out = ptr::null_mut();
        let st = unsafe {
            smm_run_json(
                doc.as_ptr(),
                store.as_ptr(),
                signer,
                ptr::null(),
                ptr::null(),
                1,
                &mut out,
            )
        };
        assert_eq!(st, smm_status::SMM_OK, "{}", last_error());
        let text = unsafe { CStr::from_ptr(out) }.to_str().unwrap().to_string();
        unsafe { smm_string_free(out) };
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        ids.insert(v["bundleId"].as_str().unwrap().to_string());
        std::fs::remove_dir_all(&dir).unwrap();
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    unsafe { smm_signer_free(signer) };
}

/// After a failed call the whole error is there as JSON; after a good one,
/// nothing.
#[test]
fn the_last_error_as_json() {
    let bad = CString::new(r#"{"workspaceId": "w", "workspaceContext": {"riskProfile": "nope"}}"#)
        .unwrap();
    let mut out = ptr::null_mut();
    let st = unsafe { smm_simulate_json(bad.as_ptr(), 1, &mut out) };
    assert_eq!(st, smm_status::SMM_INVALID_INPUT);
    let j = smm_last_error_json();
    assert!(!j.is_null());
    let text = unsafe { CStr::from_ptr(j) }.to_str().unwrap().to_string();
    unsafe { smm_string_free(j) };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["code"], 3);
    assert_eq!(v["name"], "SMM_INVALID_INPUT");
    assert_eq!(v["category"], "input");
    assert!(
        v["pointer"]
            .as_str()
            .unwrap()
            .starts_with("/workspaceContext"),
        "{v}"
    );
    assert!(!v["hint"].as_str().unwrap().is_empty());
    assert!(
        v["message"].as_str().unwrap().contains("riskProfile")
            || !v["message"].as_str().unwrap().is_empty()
    );
    // A NULL argument: the ABI's own status, the caller's input, no pointer.
    let st = unsafe { smm_simulate_json(ptr::null(), 1, &mut out) };
    assert_eq!(st, smm_status::SMM_NULL_ARGUMENT);
    let j = smm_last_error_json();
    let text = unsafe { CStr::from_ptr(j) }.to_str().unwrap().to_string();
    unsafe { smm_string_free(j) };
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["category"].as_str(), v["pointer"].is_null()),
        (Some("input"), true)
    );
    // Success clears it.
    let mut s = ptr::null_mut();
    let id = CString::new("k").unwrap();
    assert_eq!(
        unsafe { smm_local_signer_generate(id.as_ptr(), &mut s) },
        smm_status::SMM_OK
    );
    assert!(smm_last_error_json().is_null());
    unsafe { smm_signer_free(s) };
}
