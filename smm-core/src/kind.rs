//! Error kinds: the leaf of the error layer, importing nothing of the crate.
//!
//! Every variant of every domain error has an [`ErrorKind`]; a kind has a
//! stable [code](ErrorKind::code) (the C status number, never reused), a
//! stable [name](ErrorKind::name) that every front door shows, and an
//! [`ErrorCategory`], each by an exhaustive `match`. How each binding
//! raises a kind (the C `smm_status` enum with the ABI's own statuses, the
//! Python exception class) is the binding's knowledge and lives there, by
//! an exhaustive `match` too.

/// What kind of failure an error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The caller's input is wrong; fix it and call again.
    Input,
    /// Something does not match its hash, signature or checksum.
    Integrity,
    /// The request contradicts existing state (an id taken, a frozen
    /// contract, a lifecycle rule).
    Conflict,
    /// Storage failed (I/O, permissions, a full disk).
    Storage,
    /// A signer (KMS, HSM, local key) failed or answered wrongly.
    Signer,
    /// A bug or an environment failure inside the library (never the
    /// caller's input).
    Internal,
    /// The work stopped before its end on request: a time limit reached,
    /// a cancellation.
    Interrupted,
    /// An authorization was refused (an agent token), or the host's
    /// authorization service failed.
    Unauthorized,
    /// A quota refused the request: wait for its next period, raise the
    /// limit, or use the contract's break-glass override.
    Quota,
    /// A policy decided against the request.
    Denied,
}

impl ErrorCategory {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Input => "input",
            ErrorCategory::Integrity => "integrity",
            ErrorCategory::Conflict => "conflict",
            ErrorCategory::Storage => "storage",
            ErrorCategory::Signer => "signer",
            ErrorCategory::Internal => "internal",
            ErrorCategory::Interrupted => "interrupted",
            ErrorCategory::Unauthorized => "unauthorized",
            ErrorCategory::Quota => "quota",
            ErrorCategory::Denied => "denied",
        }
    }
}

/// The kind of an error: its stable code and its category. Not
/// `#[non_exhaustive]` on purpose: the bindings map kinds to their own names
/// (C statuses in `smm-ffi`, Python classes in `smm-py`) by exhaustive
/// matches, so a new kind does not compile until both name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// A document or argument is invalid (the message names the field).
    InvalidInput,
    /// A shard range or a merge of partial results is invalid.
    InvalidShard,
    /// The worker pool could not be started.
    ThreadPool,
    /// The terms of a signed contract changed without a new version.
    Immutability,
    /// A new contract version is not properly chained.
    VersionRejected,
    /// A lifecycle transition the table does not allow.
    LifecycleRejected,
    /// A signer failed or answered a signature that does not verify.
    SignerFailed,
    /// A storage operation failed.
    Storage,
    /// Different content is already stored under this id.
    Conflict,
    /// A snapshot or document does not match its hash.
    Integrity,
    /// Stored bytes no longer match their bundle id.
    CorruptBundle,
    /// A policy bundle does not load, or has no usable decision.
    Policy,
    /// A decision was made by another policy bundle than the contract names.
    PolicyChecksum,
    /// An envelope a store was asked to publish is not signed by its
    /// trusted keys.
    Untrusted,
    /// A run reached its time limit.
    Timeout,
    /// No such reservation in the usage ledger.
    UnknownReservation,
    /// A job's reservation or commit contradicts the ledger.
    LedgerConflict,
    /// The usage ledger's storage failed (or its file is missing).
    LedgerStorage,
    /// Another writer holds the ledger too long, or its server is
    /// unreachable for now: retry.
    LedgerLocked,
    /// The ledger file is not a ledger, or is damaged.
    LedgerCorrupt,
    /// The ledger file is from a newer version of the library.
    LedgerVersion,
    /// An agent token is refused.
    TokenRejected,
    /// The host's token introspection failed.
    Introspection,
    /// A strict reservation would pass a quota.
    QuotaExceeded,
    /// A run was cancelled by its caller.
    Cancelled,
    /// A policy decided to deny.
    Denied,
    /// A failure inside the library.
    Internal,
}

impl ErrorKind {
    /// Every kind, in code order.
    pub const ALL: [ErrorKind; 27] = [
        ErrorKind::InvalidInput,
        ErrorKind::InvalidShard,
        ErrorKind::ThreadPool,
        ErrorKind::Immutability,
        ErrorKind::SignerFailed,
        ErrorKind::Storage,
        ErrorKind::Conflict,
        ErrorKind::Integrity,
        ErrorKind::CorruptBundle,
        ErrorKind::VersionRejected,
        ErrorKind::LifecycleRejected,
        ErrorKind::Policy,
        ErrorKind::PolicyChecksum,
        ErrorKind::Untrusted,
        ErrorKind::Timeout,
        ErrorKind::UnknownReservation,
        ErrorKind::LedgerConflict,
        ErrorKind::LedgerStorage,
        ErrorKind::LedgerLocked,
        ErrorKind::LedgerCorrupt,
        ErrorKind::LedgerVersion,
        ErrorKind::TokenRejected,
        ErrorKind::Introspection,
        ErrorKind::QuotaExceeded,
        ErrorKind::Cancelled,
        ErrorKind::Denied,
        ErrorKind::Internal,
    ];

    /// Stable code: the C status number (`smm_status`). Never reused. C
    /// codes 0 (`SMM_OK`), 1 (`SMM_NULL_ARGUMENT`), 2 (`SMM_INVALID_UTF8`),
    /// 9 (`SMM_NOT_FOUND`) and 100 (`SMM_PANIC`) belong to the C ABI alone.
    pub const fn code(self) -> u32 {
        use ErrorKind as K;
        match self {
            K::InvalidInput => 3,
            K::InvalidShard => 4,
            K::ThreadPool => 5,
            K::Immutability => 6,
            K::SignerFailed => 7,
            K::Storage => 8,
            K::Conflict => 10,
            K::Integrity => 11,
            K::CorruptBundle => 12,
            K::VersionRejected => 13,
            K::LifecycleRejected => 14,
            K::Policy => 15,
            K::PolicyChecksum => 16,
            K::Untrusted => 17,
            K::Timeout => 18,
            K::UnknownReservation => 19,
            K::LedgerConflict => 20,
            K::LedgerStorage => 21,
            K::LedgerLocked => 22,
            K::LedgerCorrupt => 23,
            K::LedgerVersion => 24,
            K::TokenRejected => 25,
            K::Introspection => 26,
            K::QuotaExceeded => 27,
            K::Cancelled => 28,
            K::Denied => 29,
            K::Internal => 99,
        }
    }

    /// Stable name, shown by every front door: the C status name, the
    /// Python exception's `name`, the CLI's JSON `kind`. Never reused.
    pub const fn name(self) -> &'static str {
        use ErrorKind as K;
        match self {
            K::InvalidInput => "SMM_INVALID_INPUT",
            K::InvalidShard => "SMM_INVALID_SHARD",
            K::ThreadPool => "SMM_THREAD_POOL",
            K::Immutability => "SMM_CONTRACT_REJECTED",
            K::SignerFailed => "SMM_SIGNER_FAILED",
            K::Storage => "SMM_STORAGE",
            K::Conflict => "SMM_CONFLICT",
            K::Integrity => "SMM_INTEGRITY",
            K::CorruptBundle => "SMM_CORRUPT_BUNDLE",
            K::VersionRejected => "SMM_VERSION_REJECTED",
            K::LifecycleRejected => "SMM_LIFECYCLE_REJECTED",
            K::Policy => "SMM_POLICY",
            K::PolicyChecksum => "SMM_POLICY_CHECKSUM",
            K::Untrusted => "SMM_UNTRUSTED",
            K::Timeout => "SMM_TIMEOUT",
            K::UnknownReservation => "SMM_UNKNOWN_RESERVATION",
            K::LedgerConflict => "SMM_LEDGER_CONFLICT",
            K::LedgerStorage => "SMM_LEDGER_STORAGE",
            K::LedgerLocked => "SMM_LEDGER_LOCKED",
            K::LedgerCorrupt => "SMM_LEDGER_CORRUPT",
            K::LedgerVersion => "SMM_LEDGER_VERSION",
            K::TokenRejected => "SMM_TOKEN_REJECTED",
            K::Introspection => "SMM_INTROSPECTION",
            K::QuotaExceeded => "SMM_QUOTA_EXCEEDED",
            K::Cancelled => "SMM_CANCELLED",
            K::Denied => "SMM_DENIED",
            K::Internal => "SMM_INTERNAL",
        }
    }

    /// The category.
    pub const fn category(self) -> ErrorCategory {
        use ErrorCategory as C;
        use ErrorKind as K;
        match self {
            K::InvalidInput => C::Input,
            K::InvalidShard => C::Input,
            K::ThreadPool => C::Internal,
            K::Immutability => C::Conflict,
            K::SignerFailed => C::Signer,
            K::Storage => C::Storage,
            K::Conflict => C::Conflict,
            K::Integrity => C::Integrity,
            K::CorruptBundle => C::Integrity,
            K::VersionRejected => C::Conflict,
            K::LifecycleRejected => C::Conflict,
            K::Policy => C::Input,
            K::PolicyChecksum => C::Integrity,
            K::Untrusted => C::Integrity,
            K::Timeout => C::Interrupted,
            K::UnknownReservation => C::Input,
            K::LedgerConflict => C::Conflict,
            K::LedgerStorage => C::Storage,
            K::LedgerLocked => C::Storage,
            K::LedgerCorrupt => C::Integrity,
            K::LedgerVersion => C::Storage,
            K::TokenRejected => C::Unauthorized,
            K::Introspection => C::Unauthorized,
            K::QuotaExceeded => C::Quota,
            K::Cancelled => C::Interrupted,
            K::Denied => C::Denied,
            K::Internal => C::Internal,
        }
    }

    /// The kind with this code.
    pub fn from_code(code: u32) -> Option<ErrorKind> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// What fixes an error of this kind, in a few words (the CLI's
    /// `(fix: …)`, C's `smm_last_error_json` `hint`).
    pub fn hint(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "raise simulationConfig.timeoutSeconds or lower the iterations",
            ErrorKind::Cancelled => "run it again when you are ready",
            ErrorKind::PolicyChecksum => {
                "set the contract's policyBundleChecksum to `smm policy checksum` of the bundle you mean"
            }
            ErrorKind::VersionRejected => {
                "give the new version a higher contractVersion and set previousContractRef"
            }
            ErrorKind::LedgerLocked => {
                "the ledger is busy (another writer) or unreachable (its server): try again"
            }
            ErrorKind::LedgerVersion => "open the ledger with the newer smm that wrote it",
            ErrorKind::LedgerCorrupt => "the ledger file is damaged: restore it from a backup",
            ErrorKind::Untrusted => "trust the signer's public key, or sign with a trusted key",
            _ => self.category().hint(),
        }
    }
}

impl ErrorCategory {
    /// What fixes an error of this category, in a few words.
    pub fn hint(self) -> &'static str {
        match self {
            ErrorCategory::Input => "correct the field named and run again",
            ErrorCategory::Integrity => {
                "the data was altered or signed by another key: do not trust it"
            }
            ErrorCategory::Conflict => "that id or state is taken: use a new one",
            ErrorCategory::Storage => "check the path, its permissions and free space",
            ErrorCategory::Signer => "check the key file or the KMS and its permissions",
            ErrorCategory::Denied => "address the reasons (see the decision) and run again",
            ErrorCategory::Quota => {
                "wait for the quota's next period, raise its limit, or set emergencyFlags.budgetOverride"
            }
            ErrorCategory::Unauthorized => "ask for a token with the right scope",
            ErrorCategory::Interrupted => "run it again",
            ErrorCategory::Internal => "this is a bug in smm: please report it with the command",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_ordered_and_not_the_abis_own() {
        for (i, a) in ErrorKind::ALL.iter().enumerate() {
            for b in ErrorKind::ALL.iter().skip(i + 1) {
                assert!(a.code() < b.code(), "{a:?} {b:?}");
            }
            assert!(
                ![0, 1, 2, 9, 100].contains(&a.code()),
                "{a:?} takes a C-only code"
            );
            assert_eq!(ErrorKind::from_code(a.code()), Some(*a));
            assert!(a.name().starts_with("SMM_"));
            for b in ErrorKind::ALL.iter().skip(i + 1) {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}

/// The error a library or a host gave (an I/O or SQLite error, a KMS's
/// own exception), kept as the [`source`](std::error::Error::source) of a
/// storage or signer error so that a caller can reach and downcast it.
///
/// Shared, so the errors that hold it stay `Clone`. Two causes are equal
/// when they say the same thing (their `Display` text): a host's error
/// type need not be comparable.
///
/// A departure from "no boxed `dyn Error` on the public surface": only a
/// cause, never the error itself, is boxed, because a host's error type
/// cannot be known to this crate.
#[derive(Clone)]
pub struct Cause(std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    /// Keep `error` as a cause.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(std::sync::Arc::new(error))
    }

    /// The error itself, to downcast (`cause.get().downcast_ref::<T>()`).
    pub fn get(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

/// A cause that is only a message (a C callback's text).
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause::new(Message(message))
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::from(message.to_string())
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&*self.0, f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0) || self.to_string() == other.to_string()
    }
}
