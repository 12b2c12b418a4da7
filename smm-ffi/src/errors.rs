//! Status codes, the last-error message, the panic boundary, and the one
//! place where core errors become statuses: [`status_of`], an exhaustive
//! match over the core's error kinds (a new kind does not compile until it
//! has a status), whose numbers are the kinds' stable codes.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use smm_core::error::{Error as CoreError, ErrorCategory, ErrorKind};

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

/// The status of an error kind. Exhaustive: a new kind does not compile
/// until it has a status here (and a test checks the number is the kind's
/// code).
pub fn status_of(kind: ErrorKind) -> smm_status {
    use ErrorKind as K;
    use smm_status as S;
    match kind {
        K::InvalidInput => S::SMM_INVALID_INPUT,
        K::InvalidShard => S::SMM_INVALID_SHARD,
        K::ThreadPool => S::SMM_THREAD_POOL,
        K::Immutability => S::SMM_CONTRACT_REJECTED,
        K::SignerFailed => S::SMM_SIGNER_FAILED,
        K::Storage => S::SMM_STORAGE,
        K::Conflict => S::SMM_CONFLICT,
        K::Integrity => S::SMM_INTEGRITY,
        K::CorruptBundle => S::SMM_CORRUPT_BUNDLE,
        K::VersionRejected => S::SMM_VERSION_REJECTED,
        K::LifecycleRejected => S::SMM_LIFECYCLE_REJECTED,
        K::Policy => S::SMM_POLICY,
        K::PolicyChecksum => S::SMM_POLICY_CHECKSUM,
        K::Untrusted => S::SMM_UNTRUSTED,
        K::Timeout => S::SMM_TIMEOUT,
        K::UnknownReservation => S::SMM_UNKNOWN_RESERVATION,
        K::LedgerConflict => S::SMM_LEDGER_CONFLICT,
        K::LedgerStorage => S::SMM_LEDGER_STORAGE,
        K::LedgerLocked => S::SMM_LEDGER_LOCKED,
        K::LedgerCorrupt => S::SMM_LEDGER_CORRUPT,
        K::LedgerVersion => S::SMM_LEDGER_VERSION,
        K::TokenRejected => S::SMM_TOKEN_REJECTED,
        K::Introspection => S::SMM_INTROSPECTION,
        K::QuotaExceeded => S::SMM_QUOTA_EXCEEDED,
        K::Cancelled => S::SMM_CANCELLED,
        K::Denied => S::SMM_DENIED,
        K::Internal => S::SMM_INTERNAL,
    }
}

/// The core kind of a status, `None` for the ABI's own (OK, NULL, bad
/// UTF-8, not found, panic).
pub fn kind_of(status: smm_status) -> Option<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|k| status_of(*k) == status)
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
    let status = status_of(e.kind());
    let message = e.to_string();
    // The pointer travels beside the message, for smm_last_error_json.
    let pointer = e.pointer().map(str::to_string);
    LAST_POINTER.with(|p| *p.borrow_mut() = Some((message.clone(), pointer)));
    (status, message)
}

/// A core error reported with another message (a step's prefix): the
/// status and pointer of `e`, the message `message`.
pub(crate) fn err_as(e: impl Into<CoreError>, message: String) -> Failure {
    let e: CoreError = e.into();
    let pointer = e.pointer().map(str::to_string);
    LAST_POINTER.with(|p| *p.borrow_mut() = Some((message.clone(), pointer)));
    (status_of(e.kind()), message)
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

#[cfg(test)]
thread_local! {
    /// Tests only: the next export called on this thread panics inside its
    /// boundary, as a bug in the core would.
    pub(crate) static PANIC_NEXT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` behind the panic boundary, recording an error message on failure.
pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Failure>) -> smm_status {
    clear_error();
    let guarded = || {
        #[cfg(test)]
        if PANIC_NEXT.with(|p| p.replace(false)) {
            panic!("a bug in the core (PANIC_NEXT)");
        }
        f()
    };
    match catch_unwind(AssertUnwindSafe(guarded)) {
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
                let (category, hint) = match kind_of(m.status) {
                    Some(k) => (k.category().as_str(), k.hint()),
                    // The ABI's own statuses: a panic is ours, NULL or bad
                    // UTF-8 the caller's input.
                    None => {
                        let c = if m.status == smm_status::SMM_PANIC {
                            ErrorCategory::Internal
                        } else {
                            ErrorCategory::Input
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
    /// one `status_of` names, and its number the kind's stable code.
    #[test]
    fn every_core_error_maps_to_its_kinds_status() {
        for e in smm_core::error::samples::all() {
            let variant = smm_core::error::samples::variant_name(&e);
            let kind = e.kind();
            let (status, msg) = err(e);
            assert_eq!(status, status_of(kind), "{variant}");
            assert!(!msg.is_empty());
        }
        for kind in ErrorKind::ALL {
            let s = status_of(kind);
            assert_eq!(s as u32, kind.code(), "{kind:?}");
            assert_eq!(s.name().to_str().ok(), Some(kind.name()), "{kind:?}");
            assert_eq!(kind_of(s), Some(kind));
        }
        for s in smm_status::all() {
            assert_eq!(status_from_code(s as u32), Some(s));
        }
        // The ABI's own statuses have no kind.
        for s in [
            smm_status::SMM_OK,
            smm_status::SMM_NULL_ARGUMENT,
            smm_status::SMM_INVALID_UTF8,
            smm_status::SMM_NOT_FOUND,
            smm_status::SMM_PANIC,
        ] {
            assert_eq!(kind_of(s), None);
        }
        assert_eq!(smm_status::all().len(), ErrorKind::ALL.len() + 5);
    }

    /// A panic inside an export becomes `SMM_PANIC` with a message, never
    /// an unwind into C; the library is usable afterwards, on this thread
    /// and others.
    #[test]
    fn a_panicking_export_returns_smm_panic_and_the_library_goes_on() {
        let doc = c"{\"b\": 1, \"a\": [true, null]}";
        let call = || {
            let mut out: *mut c_char = std::ptr::null_mut();
            // SAFETY: `doc` is a NUL-terminated string; `out` a valid out-param.
            let status = unsafe { crate::smm_canonicalize_json(doc.as_ptr(), &mut out) };
            let text = (!out.is_null()).then(|| {
                // SAFETY: `out` came from this library and is freed once below.
                let t = unsafe { CStr::from_ptr(out) }
                    .to_string_lossy()
                    .into_owned();
                // SAFETY: as above.
                unsafe { smm_string_free(out) };
                t
            });
            (status, text)
        };
        PANIC_NEXT.with(|p| p.set(true));
        let (status, out) = call();
        assert_eq!(status, smm_status::SMM_PANIC);
        assert_eq!(out, None, "no output on a panic");
        let msg = smm_last_error_message();
        assert!(!msg.is_null());
        // SAFETY: a string from this library, freed once.
        let text = unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { smm_string_free(msg) };
        assert!(text.contains("panic"), "{text}");
        let json = smm_last_error_json();
        // SAFETY: as above.
        let j = unsafe { CStr::from_ptr(json) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: as above.
        unsafe { smm_string_free(json) };
        let j: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(j["name"], "SMM_PANIC");
        assert_eq!(j["category"], "internal");
        // The same export works next, here and on another thread.
        assert_eq!(
            call(),
            (
                smm_status::SMM_OK,
                Some(r#"{"a":[true,null],"b":1}"#.into())
            )
        );
        let other = std::thread::spawn(move || {
            let mut out: *mut c_char = std::ptr::null_mut();
            // SAFETY: as in `call`.
            let status = unsafe { crate::smm_canonicalize_json(doc.as_ptr(), &mut out) };
            // SAFETY: as in `call`.
            unsafe { smm_string_free(out) };
            status
        });
        assert_eq!(other.join().unwrap(), smm_status::SMM_OK);
        assert!(
            smm_last_error_message().is_null(),
            "the success cleared the error"
        );
    }

    #[test]
    fn the_header_limits_are_the_core_limits() {
        // Generated from the core's table (`cargo xtask bless`; the drift
        // test compares the file); spot-check the values through the crate.
        assert_eq!(
            crate::SMM_MAX_DOCUMENT_BYTES,
            smm_core::limits::MAX_DOCUMENT_BYTES as u64
        );
        assert_eq!(
            crate::SMM_MAX_CAMPAIGN_STEPS,
            smm_core::limits::MAX_CAMPAIGN_STEPS as u64
        );
        assert_eq!(
            crate::SMM_MAX_AGENT_TOKEN_SECONDS,
            smm_core::limits::MAX_AGENT_TOKEN_SECONDS
        );
    }
}
