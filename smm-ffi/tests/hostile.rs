//! Valid documents damaged at random, through the C ABI: every call returns
//! a status (never SMM_PANIC, never a crash) and writes its out-parameter
//! exactly when it returns SMM_OK.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code"
)]

use std::ffi::{CStr, CString, c_char};
use std::ptr;

use proptest::prelude::*;
use smm::*;
use smm_proptests::{mutate, mutation};

fn seed(target: &str, name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../fuzz/seeds/{target}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A C string of the bytes (cut at the first NUL, as C would see them).
fn c(bytes: &[u8]) -> CString {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    CString::new(&bytes[..end]).unwrap()
}

fn check(status: smm_status, out: *mut c_char) -> Result<(), TestCaseError> {
    prop_assert_ne!(status, smm_status::SMM_PANIC);
    prop_assert_eq!(status == smm_status::SMM_OK, !out.is_null());
    unsafe { smm_string_free(out) };
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_partials(m in mutation(), exact in any::<bool>()) {
        let text = seed("partial", if exact { "exact.json" } else { "bounded.json" });
        let bad = c(&mutate(&text, &m));
        let ptrs = [bad.as_ptr()];
        let mut out = ptr::null_mut();
        let st = unsafe { smm_merge_partials_json(ptrs.as_ptr(), 1, 1, &mut out) };
        check(st, out)?;
    }

    #[test]
    fn damaged_requests(m in mutation()) {
        let text = seed("request", "minimal.json");
        let bad = c(&mutate(&text, &m));
        let mut out = ptr::null_mut();
        let st = unsafe { smm_simulate_json(bad.as_ptr(), 1, &mut out) };
        // A mutation may ask for billions of iterations: never run those
        // here, only check that such a request is either refused or fine.
        check(st, out)?;
    }

    #[test]
    fn damaged_envelopes(m in mutation()) {
        let text = seed("envelope", "signed.json");
        let bad = c(&mutate(&text, &m));
        let keys = c(br#"[{"keyId":"fuzz-key","publicKey":"-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHhhTL9R1TALzBB2cdc6zO4P/2BrH
zk/ogsyxyYvFiW6kbDEcTi/0DdlqNlPm5FRF0y3+SG7O11x6kMahiIHAow==
-----END PUBLIC KEY-----
"}]"#);
        let mut out = ptr::null_mut();
        let st = unsafe { smm_bundle_verify_json(bad.as_ptr(), keys.as_ptr(), &mut out) };
        // A damaged envelope is reported as not verified, or refused as input.
        prop_assert!(
            matches!(st, smm_status::SMM_OK | smm_status::SMM_INVALID_INPUT | smm_status::SMM_INVALID_UTF8),
            "{st:?}"
        );
        check(st, out)?;
    }

    #[test]
    fn damaged_policy_inputs(m in mutation()) {
        let text = seed("policy_input", "icblabs.json");
        let bad = c(&mutate(&text, &m));
        let mut bundle = ptr::null_mut();
        prop_assert_eq!(unsafe { smm_policy_bundle_default(&mut bundle) }, smm_status::SMM_OK);
        let mut out = ptr::null_mut();
        let st = unsafe { smm_policy_evaluate_json(bundle, bad.as_ptr(), &mut out) };
        // The prepared input refuses what the one-call path refuses, and
        // decides as it does.
        let mut input = ptr::null_mut();
        let prepared = unsafe { smm_policy_input_new_json(bad.as_ptr(), &mut input) };
        prop_assert_eq!(prepared == smm_status::SMM_OK, st == smm_status::SMM_OK, "{:?} {:?}", prepared, st);
        prop_assert_eq!(prepared == smm_status::SMM_OK, !input.is_null());
        if prepared == smm_status::SMM_OK {
            let mut again = ptr::null_mut();
            let st2 = unsafe { smm_policy_evaluate_input_json(bundle, input, &mut again) };
            prop_assert_eq!(st2, smm_status::SMM_OK);
            let (a, b) = unsafe { (CStr::from_ptr(out), CStr::from_ptr(again)) };
            prop_assert_eq!(a, b);
            unsafe { smm_string_free(again) };
            // The native evaluator decides the damaged input as the VM
            // does (or both fail): codes, bundle and evaluation id, all but
            // the engine's name.
            let mut native = ptr::null_mut();
            let engine = c(b"native");
            let st3 = unsafe {
                smm_policy_evaluate_input_with_json(bundle, input, engine.as_ptr(), &mut native)
            };
            prop_assert_eq!(st3, smm_status::SMM_OK);
            let vm: serde_json::Value =
                serde_json::from_slice(unsafe { CStr::from_ptr(out) }.to_bytes()).unwrap();
            let nat: serde_json::Value =
                serde_json::from_slice(unsafe { CStr::from_ptr(native) }.to_bytes()).unwrap();
            for key in ["allow", "deny", "warnings", "reasons", "requireHumanApproval", "bundleChecksum", "evaluationId", "evaluatedAt"] {
                prop_assert_eq!(&vm[key], &nat[key], "{}", key);
            }
            prop_assert_eq!(&nat["engine"], "smm-native");
            unsafe { smm_string_free(native) };
        }
        unsafe { smm_policy_input_free(input) };
        unsafe { smm_policy_bundle_free(bundle) };
        check(st, out)?;
    }

    #[test]
    fn damaged_contracts(m in mutation()) {
        let text = seed("contract", "workspace.icblabs.v2.json");
        let bad = c(&mutate(&text, &m));
        let mut out = ptr::null_mut();
        let st = unsafe { smm_contract_hash_json(bad.as_ptr(), &mut out) };
        check(st, out)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Damaged ledger arguments: a status, never a crash, and the ledger
    /// keeps its books (the committed total never passes the limit).
    #[test]
    fn damaged_ledger_calls(m in mutation(), which in 0..4u8) {
        let mut ledger = ptr::null_mut();
        prop_assert_eq!(unsafe { smm_ledger_new_memory(&mut ledger) }, smm_status::SMM_OK);
        let quota = c(br#"{"workspaceId":"ws-1","kind":"tokens","period":"day","limit":100}"#);
        prop_assert_eq!(unsafe { smm_ledger_set_quota(ledger, quota.as_ptr()) }, smm_status::SMM_OK);
        let docs: [&str; 4] = [
            r#"{"workspaceId":"ws-1","kind":"tokens","period":"day","limit":100}"#,
            r#"{"tokens":60,"cost_usd":1000}"#,
            "2025-09-01T12:00:00Z",
            r#"{"policies":["agent-research-ws-1"],"issuedAt":"2025-09-01T11:00:00Z","expiresAt":"2025-09-01T12:30:00Z"}"#,
        ];
        let bad = c(&mutate(docs[usize::from(which)], &m));
        let good = |i: usize| c(docs[i].as_bytes());
        let (ws, job, now) = (c(b"ws-1"), c(b"job"), good(2));
        let mut out = ptr::null_mut();
        let st = match which {
            0 => unsafe { smm_ledger_set_quota(ledger, bad.as_ptr()) },
            1 => unsafe { smm_ledger_reserve(ledger, ws.as_ptr(), job.as_ptr(), bad.as_ptr(), now.as_ptr(), 0, false, &mut out) },
            2 => unsafe { smm_ledger_reserve(ledger, ws.as_ptr(), job.as_ptr(), good(1).as_ptr(), bad.as_ptr(), 0, false, &mut out) },
            _ => unsafe { smm_check_agent_token(bad.as_ptr(), ws.as_ptr(), c(b"research").as_ptr(), now.as_ptr()) },
        };
        prop_assert_ne!(st, smm_status::SMM_PANIC);
        if which == 1 || which == 2 {
            prop_assert_eq!(st == smm_status::SMM_OK, !out.is_null());
        }
        unsafe { smm_string_free(out) };
        // Two more reservations of 60 tokens: at most one more passes
        // whatever the damaged call did.
        let mut passed = 0;
        for j in ["a", "b"] {
            let mut r = ptr::null_mut();
            let job = c(j.as_bytes());
            let amounts = c(br#"{"tokens":60}"#);
            let st = unsafe { smm_ledger_reserve(ledger, ws.as_ptr(), job.as_ptr(), amounts.as_ptr(), now.as_ptr(), 0, true, &mut r) };
            if st == smm_status::SMM_OK { passed += 1; }
            unsafe { smm_string_free(r) };
        }
        prop_assert!(passed <= 1 || which == 0, "passed {}", passed);
        unsafe { smm_ledger_free(ledger) };
    }
}
