//! Status codes, the last-error message, the panic boundary, and the one
//! place where core errors become statuses: through the core's error table
//! (`smm_core::error::ERROR_TABLE`), whose codes are these numbers.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::error::Error as CoreError;

/// Result of every fallible call. Numbers are stable and never reused.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum smm_status {
    /// Success.
    SMM_OK = 0,
    /// A required pointer argument was NULL.
    SMM_NULL_ARGUMENT = 1,
    /// A string argument was not valid UTF-8.
    SMM_INVALID_UTF8 = 2,
    /// The input document was rejected; the message names the field by JSON pointer.
    SMM_INVALID_INPUT = 3,
    /// Shards could not be merged or a shard range was invalid.
    SMM_INVALID_SHARD = 4,
    /// The worker pool could not be started.
    SMM_THREAD_POOL = 5,
    /// The terms of a signed contract changed without a new contractVersion.
    SMM_CONTRACT_REJECTED = 6,
    /// A signer failed or answered a signature that does not verify under
    /// its public key.
    SMM_SIGNER_FAILED = 7,
    /// A bundle store operation failed (I/O, permissions, a full disk).
    SMM_STORAGE = 8,
    /// The requested item does not exist (the out-parameter is untouched).
    SMM_NOT_FOUND = 9,
    /// Different content is already stored under this id.
    SMM_CONFLICT = 10,
    /// Something does not match its hash, signature or checksum (a
    /// tampered contract snapshot).
    SMM_INTEGRITY = 11,
    /// Stored bytes no longer match their bundle id.
    SMM_CORRUPT_BUNDLE = 12,
    /// A new contract version is not properly chained (version not
    /// increased, previousContractRef not the previous terms hash, another
    /// workspace).
    SMM_VERSION_REJECTED = 13,
    /// A lifecycle transition the table does not allow.
    SMM_LIFECYCLE_REJECTED = 14,
    /// A policy bundle does not load (the message names module and line) or
    /// has no usable decision.
    SMM_POLICY = 15,
    /// A decision was made by another policy bundle than the contract's
    /// policyBundleChecksum names.
    SMM_POLICY_CHECKSUM = 16,
    /// A store was asked to publish an envelope that is not signed by its
    /// trusted keys.
    SMM_UNTRUSTED = 17,
    /// A run reached its time limit (timeoutSeconds); no report is made.
    SMM_TIMEOUT = 18,
    /// No such reservation to commit or release (never made, released, or
    /// committed).
    SMM_UNKNOWN_RESERVATION = 19,
    /// A job's reservation or commit contradicts the ledger (the job holds a
    /// reservation already, or is committed).
    SMM_LEDGER_CONFLICT = 20,
    /// The usage ledger's file is missing, or reading or writing it failed.
    SMM_LEDGER_STORAGE = 21,
    /// Another writer held the ledger's write lock past the busy timeout; try
    /// again.
    SMM_LEDGER_LOCKED = 22,
    /// The file is not a usage ledger, or is damaged.
    SMM_LEDGER_CORRUPT = 23,
    /// The ledger file was written by a newer version of the library.
    SMM_LEDGER_VERSION = 24,
    /// An agent token was refused (scope, expiry, lifetime); the message says
    /// why.
    SMM_TOKEN_REJECTED = 25,
    /// The host's token introspection failed.
    SMM_INTROSPECTION = 26,
    /// A strict reservation was blocked: it would pass a quota (the message
    /// lists which).
    SMM_QUOTA_EXCEEDED = 27,
    /// A run was cancelled by its caller (a cancel flag).
    SMM_CANCELLED = 28,
    /// The policy decided to deny (the message lists the reason codes).
    SMM_DENIED = 29,
    /// A failure inside the library (never the caller's input).
    SMM_INTERNAL = 99,
    /// A panic was caught at the boundary (a bug in smm-core; please report it).
    SMM_PANIC = 100,
}

impl smm_status {
    /// Every status.
    pub fn all() -> [smm_status; 32] {
        [
            smm_status::SMM_OK,
            smm_status::SMM_NULL_ARGUMENT,
            smm_status::SMM_INVALID_UTF8,
            smm_status::SMM_INVALID_INPUT,
            smm_status::SMM_INVALID_SHARD,
            smm_status::SMM_THREAD_POOL,
            smm_status::SMM_CONTRACT_REJECTED,
            smm_status::SMM_SIGNER_FAILED,
            smm_status::SMM_STORAGE,
            smm_status::SMM_NOT_FOUND,
            smm_status::SMM_CONFLICT,
            smm_status::SMM_INTEGRITY,
            smm_status::SMM_CORRUPT_BUNDLE,
            smm_status::SMM_VERSION_REJECTED,
            smm_status::SMM_LIFECYCLE_REJECTED,
            smm_status::SMM_POLICY,
            smm_status::SMM_POLICY_CHECKSUM,
            smm_status::SMM_UNTRUSTED,
            smm_status::SMM_TIMEOUT,
            smm_status::SMM_UNKNOWN_RESERVATION,
            smm_status::SMM_LEDGER_CONFLICT,
            smm_status::SMM_LEDGER_STORAGE,
            smm_status::SMM_LEDGER_LOCKED,
            smm_status::SMM_LEDGER_CORRUPT,
            smm_status::SMM_LEDGER_VERSION,
            smm_status::SMM_TOKEN_REJECTED,
            smm_status::SMM_INTROSPECTION,
            smm_status::SMM_QUOTA_EXCEEDED,
            smm_status::SMM_CANCELLED,
            smm_status::SMM_DENIED,
            smm_status::SMM_INTERNAL,
            smm_status::SMM_PANIC,
        ]
    }

    /// The status's name.
    pub fn name(self) -> &'static CStr {
        match self {
            smm_status::SMM_OK => c"SMM_OK",
            smm_status::SMM_NULL_ARGUMENT => c"SMM_NULL_ARGUMENT",
            smm_status::SMM_INVALID_UTF8 => c"SMM_INVALID_UTF8",
            smm_status::SMM_INVALID_INPUT => c"SMM_INVALID_INPUT",
            smm_status::SMM_INVALID_SHARD => c"SMM_INVALID_SHARD",
            smm_status::SMM_THREAD_POOL => c"SMM_THREAD_POOL",
            smm_status::SMM_CONTRACT_REJECTED => c"SMM_CONTRACT_REJECTED",
            smm_status::SMM_SIGNER_FAILED => c"SMM_SIGNER_FAILED",
            smm_status::SMM_STORAGE => c"SMM_STORAGE",
            smm_status::SMM_NOT_FOUND => c"SMM_NOT_FOUND",
            smm_status::SMM_CONFLICT => c"SMM_CONFLICT",
            smm_status::SMM_INTEGRITY => c"SMM_INTEGRITY",
            smm_status::SMM_CORRUPT_BUNDLE => c"SMM_CORRUPT_BUNDLE",
            smm_status::SMM_VERSION_REJECTED => c"SMM_VERSION_REJECTED",
            smm_status::SMM_LIFECYCLE_REJECTED => c"SMM_LIFECYCLE_REJECTED",
            smm_status::SMM_POLICY => c"SMM_POLICY",
            smm_status::SMM_POLICY_CHECKSUM => c"SMM_POLICY_CHECKSUM",
            smm_status::SMM_UNTRUSTED => c"SMM_UNTRUSTED",
            smm_status::SMM_TIMEOUT => c"SMM_TIMEOUT",
            smm_status::SMM_UNKNOWN_RESERVATION => c"SMM_UNKNOWN_RESERVATION",
            smm_status::SMM_LEDGER_CONFLICT => c"SMM_LEDGER_CONFLICT",
            smm_status::SMM_LEDGER_STORAGE => c"SMM_LEDGER_STORAGE",
            smm_status::SMM_LEDGER_LOCKED => c"SMM_LEDGER_LOCKED",
            smm_status::SMM_LEDGER_CORRUPT => c"SMM_LEDGER_CORRUPT",
            smm_status::SMM_LEDGER_VERSION => c"SMM_LEDGER_VERSION",
            smm_status::SMM_TOKEN_REJECTED => c"SMM_TOKEN_REJECTED",
            smm_status::SMM_INTROSPECTION => c"SMM_INTROSPECTION",
            smm_status::SMM_QUOTA_EXCEEDED => c"SMM_QUOTA_EXCEEDED",
            smm_status::SMM_CANCELLED => c"SMM_CANCELLED",
            smm_status::SMM_DENIED => c"SMM_DENIED",
            smm_status::SMM_INTERNAL => c"SMM_INTERNAL",
            smm_status::SMM_PANIC => c"SMM_PANIC",
        }
    }
}

/// The status with this number.
pub fn status_from_code(code: u32) -> Option<smm_status> {
    smm_status::all().into_iter().find(|s| *s as u32 == code)
}

/// A failure: the status and its message.
pub(crate) type Failure = (smm_status, String);

/// The one place where core errors become statuses: the number the core's
/// error table gives the error's kind.
pub(crate) fn err(e: impl Into<CoreError>) -> Failure {
    let e: CoreError = e.into();
    let status = status_from_code(e.kind().code()).unwrap_or(smm_status::SMM_INTERNAL);
    let message = e.to_string();
    // The pointer travels beside the message, for smm_last_error_json.
    let pointer = e.pointer().map(str::to_string);
    LAST_POINTER.with(|p| *p.borrow_mut() = Some((message.clone(), pointer)));
    (status, message)
}

/// The last error on this thread: its status and message.
struct LastError {
    status: smm_status,
    message: String,
    pointer: Option<String>,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<LastError>> = const { RefCell::new(None) };
    /// The pointer of the last core error converted by `err`, with its
    /// message (used only when the failure is that very error).
    static LAST_POINTER: RefCell<Option<(String, Option<String>)>> = const { RefCell::new(None) };
}

fn set_error(status: smm_status, msg: String) {
    let pointer = LAST_POINTER.with(|p| match p.borrow_mut().take() {
        Some((m, pointer)) if m == msg => pointer,
        _ => None,
    });
    LAST_ERROR.with(|e| {
        *e.borrow_mut() = Some(LastError {
            status,
            message: msg,
            pointer,
        })
    });
}

fn clear_error() {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
    LAST_POINTER.with(|p| *p.borrow_mut() = None);
}

/// Run `f` behind the panic boundary, recording an error message on failure.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> smm_status {
    clear_error();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => smm_status::SMM_OK,
        Ok(Err((status, msg))) => {
            set_error(status, msg);
            status
        }
        Err(_) => {
            set_error(
                smm_status::SMM_PANIC,
                "internal panic caught at the C boundary".into(),
            );
            smm_status::SMM_PANIC
        }
    }
}

/// The name of a status code (e.g. "SMM_INVALID_INPUT"), a static string.
/// Unknown numbers give "SMM_UNKNOWN_STATUS".
#[unsafe(no_mangle)]
pub extern "C" fn smm_status_name(status: u32) -> *const c_char {
    let name: &CStr = match status_from_code(status) {
        Some(s) => s.name(),
        None => c"SMM_UNKNOWN_STATUS",
    };
    name.as_ptr()
}

/// A copy of the message of the last error on this thread, or NULL when the
/// last call succeeded. Free it with `smm_string_free`.
#[unsafe(no_mangle)]
pub extern "C" fn smm_last_error_message() -> *mut c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|e| match e.borrow().as_ref() {
            Some(m) => CString::new(m.message.replace('\0', " "))
                .map(CString::into_raw)
                .unwrap_or(std::ptr::null_mut()),
            None => std::ptr::null_mut(),
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// The last error on this thread as JSON, or NULL when the last call
/// succeeded: `{"code", "name", "category", "message", "pointer", "hint"}`
/// (the code is the status; `pointer` is the JSON pointer of the field at
/// fault, or null; `hint` says what fixes it). Free it with
/// `smm_string_free`.
#[unsafe(no_mangle)]
pub extern "C" fn smm_last_error_json() -> *mut c_char {
    catch_unwind(|| {
        LAST_ERROR.with(|e| match e.borrow().as_ref() {
            Some(m) => {
                let kind = smm_core::error::ERROR_TABLE
                    .iter()
                    .find(|r| r.code == m.status as u32)
                    .map(|r| r.kind);
                let (category, hint) = match kind {
                    Some(k) => (k.category().as_str(), k.hint()),
                    // The ABI's own statuses: a panic is ours, NULL or bad
                    // UTF-8 the caller's input.
                    None => {
                        let c = if m.status == smm_status::SMM_PANIC {
                            smm_core::error::ErrorCategory::Internal
                        } else {
                            smm_core::error::ErrorCategory::Input
                        };
                        (c.as_str(), c.hint())
                    }
                };
                let doc = serde_json::json!({
                    "code": m.status as u32,
                    "name": m.status.name().to_str().unwrap_or("SMM_UNKNOWN_STATUS"),
                    "category": category,
                    "message": m.message,
                    "pointer": m.pointer,
                    "hint": hint,
                });
                CString::new(doc.to_string())
                    .map(CString::into_raw)
                    .unwrap_or(std::ptr::null_mut())
            }
            None => std::ptr::null_mut(),
        })
    })
    .unwrap_or(std::ptr::null_mut())
}

/// Free a string returned by this library. NULL is ignored.
///
/// # Safety
/// `s` is NULL or a pointer returned by this library and not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_string_free(s: *mut c_char) {
    if s.is_null() {
        return;
    }
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `s` came from CString::into_raw in this library.
        drop(unsafe { CString::from_raw(s) });
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of every core error, through `err`: the status is the
    /// table's code, and its name the table's name.
    #[test]
    fn every_core_error_maps_through_the_table() {
        for e in smm_core::error::samples::all() {
            let variant = smm_core::error::samples::variant_name(&e);
            let row = e.kind().info();
            let (status, msg) = err(e);
            assert_eq!(status as u32, row.code, "{variant}");
            assert_eq!(status.name().to_str().ok(), Some(row.name), "{variant}");
            assert!(!msg.is_empty());
        }
        for s in smm_status::all() {
            assert_eq!(status_from_code(s as u32), Some(s));
        }
        for row in smm_core::error::ERROR_TABLE {
            assert!(
                status_from_code(row.code).is_some(),
                "{row:?} has no status"
            );
        }
    }

    #[test]
    fn the_header_limits_are_the_core_limits() {
        use smm_core::limits::ALL;
        let c = [
            ("MAX_DOCUMENT_BYTES", crate::SMM_MAX_DOCUMENT_BYTES),
            ("MAX_DEPTH", crate::SMM_MAX_DEPTH),
            ("MAX_ITERATIONS", crate::SMM_MAX_ITERATIONS),
            ("MAX_EXACT_ITERATIONS", crate::SMM_MAX_EXACT_ITERATIONS),
            ("MAX_THREADS", crate::SMM_MAX_THREADS),
            ("MAX_CHANNELS", crate::SMM_MAX_CHANNELS),
            ("MAX_WORKFLOW_NODES", crate::SMM_MAX_WORKFLOW_NODES),
            ("MAX_RETRIES", crate::SMM_MAX_RETRIES),
            ("MAX_TIMEOUT_SECONDS", crate::SMM_MAX_TIMEOUT_SECONDS),
            ("MAX_PARTIALS", crate::SMM_MAX_PARTIALS),
            (
                "MAX_ENVELOPE_SIGNATURES",
                crate::SMM_MAX_ENVELOPE_SIGNATURES,
            ),
            ("MAX_BATCH", crate::SMM_MAX_BATCH),
            ("MAX_SWEEP_POINTS", crate::SMM_MAX_SWEEP_POINTS),
        ];
        assert_eq!(c.len(), ALL.len());
        for ((a, x), (b, y)) in c.iter().zip(ALL) {
            assert_eq!((*a, *x), (b, y));
        }
    }
}
