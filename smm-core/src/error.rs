//! The crate's error types, and the one error table every front door maps
//! through.
//!
//! Each domain has its own `thiserror` enum; [`enum@Error`] is the one
//! `#[non_exhaustive]` top-level type that every fallible public function can
//! be converted into. Errors about a document name the place with a JSON
//! pointer (RFC 6901), e.g. `/workspaceContext/budget/hardCap`.
//!
//! Every variant of every domain error has an [`ErrorKind`]; the
//! [`ERROR_TABLE`] gives each kind its stable code (the C status number),
//! its name (the C status name), its Python exception class and its
//! [`ErrorCategory`]. The Python and C bindings map errors through this
//! table only, so one error is the same Python exception and the same C
//! status everywhere; a test walks every variant through both bindings.

use thiserror::Error;

pub use crate::audit::AuditError;
pub use crate::contract::ContractError;
pub use crate::jcs::CanonicalError;
pub use crate::policy::PolicyError;
pub use crate::sim::SimulationError;
pub use crate::usage::UsageError;

/// Top-level error of the crate.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad simulation input or an engine-level failure.
    #[error(transparent)]
    Simulation(#[from] SimulationError),
    /// A contract was rejected.
    #[error(transparent)]
    Contract(#[from] ContractError),
    /// A document has no canonical form.
    #[error(transparent)]
    Canonical(#[from] CanonicalError),
    /// An audit bundle, signer or store operation failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// A policy bundle, input or decision failed.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The usage ledger, pricing, a token or a retention plan failed.
    #[error(transparent)]
    Usage(#[from] UsageError),
}

impl Error {
    /// The JSON pointer of the offending field, when the error is about a document.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            Error::Simulation(e) => e.pointer(),
            Error::Contract(e) => e.pointer(),
            Error::Canonical(e) => e.pointer(),
            Error::Audit(e) => e.pointer(),
            Error::Policy(e) => e.pointer(),
            Error::Usage(e) => e.pointer(),
        }
    }

    /// The kind of this error in the [`ERROR_TABLE`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Simulation(e) => e.kind(),
            Error::Contract(e) => e.kind(),
            Error::Canonical(_) => ErrorKind::InvalidInput,
            Error::Audit(e) => e.kind(),
            Error::Policy(e) => e.kind(),
            Error::Usage(e) => e.kind(),
        }
    }

    /// True when the error is caused by the caller's input (as opposed to an
    /// internal failure). Bindings map these to `ValueError`-like exceptions.
    pub fn is_input_error(&self) -> bool {
        self.kind().category() == ErrorCategory::Input
    }
}

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

/// The kind of an error: its row in the [`ERROR_TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
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
    /// Another writer holds the ledger too long.
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

/// One row of the [`ERROR_TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    /// The kind.
    pub kind: ErrorKind,
    /// Stable code; the C status number (`smm_status`). Never reused.
    pub code: u32,
    /// Stable name; the C status name.
    pub name: &'static str,
    /// The Python exception class (in `smm_core`).
    pub python_class: &'static str,
    /// The category.
    pub category: ErrorCategory,
}

const fn row(
    kind: ErrorKind,
    code: u32,
    name: &'static str,
    python_class: &'static str,
    category: ErrorCategory,
) -> ErrorInfo {
    ErrorInfo {
        kind,
        code,
        name,
        python_class,
        category,
    }
}

/// Every error kind with its code, name, Python class and category. C
/// codes 0 (`SMM_OK`), 1 (`SMM_NULL_ARGUMENT`), 2 (`SMM_INVALID_UTF8`),
/// 9 (`SMM_NOT_FOUND`) and 100 (`SMM_PANIC`) belong to the C ABI alone.
pub const ERROR_TABLE: [ErrorInfo; 27] = {
    use ErrorCategory as C;
    use ErrorKind as K;
    [
        row(
            K::InvalidInput,
            3,
            "SMM_INVALID_INPUT",
            "ValidationError",
            C::Input,
        ),
        row(
            K::InvalidShard,
            4,
            "SMM_INVALID_SHARD",
            "ShardError",
            C::Input,
        ),
        row(
            K::ThreadPool,
            5,
            "SMM_THREAD_POOL",
            "InternalError",
            C::Internal,
        ),
        row(
            K::Immutability,
            6,
            "SMM_CONTRACT_REJECTED",
            "ImmutabilityError",
            C::Conflict,
        ),
        row(
            K::SignerFailed,
            7,
            "SMM_SIGNER_FAILED",
            "SignerError",
            C::Signer,
        ),
        row(K::Storage, 8, "SMM_STORAGE", "StorageError", C::Storage),
        row(
            K::Conflict,
            10,
            "SMM_CONFLICT",
            "BundleConflictError",
            C::Conflict,
        ),
        row(
            K::Integrity,
            11,
            "SMM_INTEGRITY",
            "IntegrityError",
            C::Integrity,
        ),
        row(
            K::CorruptBundle,
            12,
            "SMM_CORRUPT_BUNDLE",
            "CorruptBundleError",
            C::Integrity,
        ),
        row(
            K::VersionRejected,
            13,
            "SMM_VERSION_REJECTED",
            "VersionError",
            C::Conflict,
        ),
        row(
            K::LifecycleRejected,
            14,
            "SMM_LIFECYCLE_REJECTED",
            "LifecycleError",
            C::Conflict,
        ),
        row(K::Policy, 15, "SMM_POLICY", "PolicyError", C::Input),
        row(
            K::PolicyChecksum,
            16,
            "SMM_POLICY_CHECKSUM",
            "PolicyChecksumError",
            C::Integrity,
        ),
        row(
            K::Untrusted,
            17,
            "SMM_UNTRUSTED",
            "UntrustedBundleError",
            C::Integrity,
        ),
        row(
            K::Timeout,
            18,
            "SMM_TIMEOUT",
            "TimeoutError",
            C::Interrupted,
        ),
        row(
            K::UnknownReservation,
            19,
            "SMM_UNKNOWN_RESERVATION",
            "UnknownReservationError",
            C::Input,
        ),
        row(
            K::LedgerConflict,
            20,
            "SMM_LEDGER_CONFLICT",
            "LedgerConflictError",
            C::Conflict,
        ),
        row(
            K::LedgerStorage,
            21,
            "SMM_LEDGER_STORAGE",
            "LedgerStorageError",
            C::Storage,
        ),
        row(
            K::LedgerLocked,
            22,
            "SMM_LEDGER_LOCKED",
            "LedgerLockedError",
            C::Storage,
        ),
        row(
            K::LedgerCorrupt,
            23,
            "SMM_LEDGER_CORRUPT",
            "LedgerCorruptError",
            C::Integrity,
        ),
        row(
            K::LedgerVersion,
            24,
            "SMM_LEDGER_VERSION",
            "LedgerVersionError",
            C::Storage,
        ),
        row(
            K::TokenRejected,
            25,
            "SMM_TOKEN_REJECTED",
            "AgentTokenError",
            C::Unauthorized,
        ),
        row(
            K::Introspection,
            26,
            "SMM_INTROSPECTION",
            "IntrospectionError",
            C::Unauthorized,
        ),
        row(
            K::QuotaExceeded,
            27,
            "SMM_QUOTA_EXCEEDED",
            "QuotaExceededError",
            C::Quota,
        ),
        row(
            K::Cancelled,
            28,
            "SMM_CANCELLED",
            "CancelledError",
            C::Interrupted,
        ),
        row(K::Denied, 29, "SMM_DENIED", "PolicyDeniedError", C::Denied),
        row(
            K::Internal,
            99,
            "SMM_INTERNAL",
            "InternalError",
            C::Internal,
        ),
    ]
};

impl ErrorKind {
    /// This kind's row of the [`ERROR_TABLE`].
    pub fn info(self) -> ErrorInfo {
        ERROR_TABLE
            .iter()
            .find(|r| r.kind == self)
            .copied()
            .unwrap_or(row(
                self,
                99,
                "SMM_INTERNAL",
                "InternalError",
                ErrorCategory::Internal,
            ))
    }
    /// Stable code (the C status number).
    pub fn code(self) -> u32 {
        self.info().code
    }
    /// Stable name (the C status name).
    pub fn name(self) -> &'static str {
        self.info().name
    }
    /// The Python exception class.
    pub fn python_class(self) -> &'static str {
        self.info().python_class
    }
    /// The category.
    pub fn category(self) -> ErrorCategory {
        self.info().category
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
            ErrorKind::LedgerLocked => "another process holds the ledger: try again",
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

/// Escape one reference token of a JSON pointer (RFC 6901 §4).
pub(crate) fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A JSON pointer's parent pointer and its last reference token, unescaped
/// (`None` for the empty pointer).
pub(crate) fn split_pointer(pointer: &str) -> Option<(&str, String)> {
    let (parent, last) = pointer.rsplit_once('/')?;
    Some((parent, last.replace("~1", "/").replace("~0", "~")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        for (i, a) in ERROR_TABLE.iter().enumerate() {
            for b in ERROR_TABLE.iter().skip(i + 1) {
                assert_ne!(a.kind, b.kind);
                assert_ne!(a.code, b.code, "{a:?} {b:?}");
                assert_ne!(a.name, b.name, "{a:?} {b:?}");
            }
            assert!(
                ![0, 1, 2, 9, 100].contains(&a.code),
                "{a:?} takes a C-only code"
            );
            assert_eq!(a.kind.info(), *a);
        }
    }

    #[test]
    fn every_variant_has_a_sample_and_a_row() {
        let all = samples::all();
        let names: std::collections::BTreeSet<&str> =
            all.iter().map(samples::variant_name).collect();
        assert_eq!(names.len(), all.len(), "a variant is sampled twice");
        for e in &all {
            let kind = e.kind();
            assert!(ERROR_TABLE.iter().any(|r| r.kind == kind), "{e:?}");
            // Bad input and only bad input is in the input category.
            let internal = samples::variant_name(e).ends_with("::Internal")
                || samples::variant_name(e) == "Simulation::ThreadPool";
            assert_eq!(
                kind.category() == ErrorCategory::Internal,
                internal,
                "{e:?}"
            );
        }
        // Every kind is reachable from some variant.
        for row in ERROR_TABLE {
            assert!(all.iter().any(|e| e.kind() == row.kind), "{row:?} unused");
        }
    }
}

/// One error of every variant of every domain, for the tests that walk the
/// table through the bindings (not part of the stable API).
#[doc(hidden)]
pub mod samples {
    use super::*;
    use crate::contract::{Severity, Violation};

    fn p() -> String {
        "/x".into()
    }

    /// One of each variant.
    pub fn all() -> Vec<Error> {
        use AuditError as A;
        use CanonicalError as J;
        use ContractError as C;
        use PolicyError as P;
        use SimulationError as S;
        use UsageError as U;
        let m = || "m".to_string();
        let j = J::DuplicateKey {
            pointer: p(),
            key: "k".into(),
        };
        vec![
            S::Parse {
                pointer: p(),
                message: m(),
            }
            .into(),
            S::UnknownRiskProfile {
                pointer: p(),
                value: m(),
            }
            .into(),
            S::EmptyChannels { pointer: p() }.into(),
            S::EmptyChannelName { pointer: p() }.into(),
            S::InvalidMoney {
                pointer: p(),
                value: -1.0,
            }
            .into(),
            S::NonPositiveHardCap {
                pointer: p(),
                value: 0.0,
            }
            .into(),
            S::IterationsOutOfRange {
                pointer: p(),
                value: 0,
                max: 1,
            }
            .into(),
            S::ConfidenceLevelOutOfRange {
                pointer: p(),
                value: 1.0,
            }
            .into(),
            S::InvalidThreshold {
                pointer: p(),
                value: -1.0,
            }
            .into(),
            S::FailureRateOutOfRange {
                pointer: p(),
                value: 2.0,
            }
            .into(),
            S::InvalidDuration {
                pointer: p(),
                value: -1.0,
            }
            .into(),
            S::TooManyRetries {
                pointer: p(),
                value: 101,
                max: 100,
            }
            .into(),
            S::EmptyNodeId { pointer: p() }.into(),
            S::UnknownDependency {
                pointer: p(),
                node: m(),
                dependency: m(),
            }
            .into(),
            S::DuplicateNodeId {
                pointer: p(),
                id: m(),
            }
            .into(),
            S::Cycle {
                pointer: p(),
                cycle: vec![m(), m()],
            }
            .into(),
            S::InvalidShard {
                start: 1,
                end: 0,
                iterations: 1,
                reason: m(),
            }
            .into(),
            S::Merge { reason: m() }.into(),
            S::InvalidPartial { reason: m() }.into(),
            S::TooMany {
                pointer: p(),
                count: 65,
                max: 64,
            }
            .into(),
            S::OutOfRange {
                pointer: p(),
                value: 0,
                min: 1,
                max: 2,
            }
            .into(),
            S::TimeoutOutOfRange {
                pointer: p(),
                value: 0,
                max: 1,
            }
            .into(),
            S::Timeout {
                seconds: 1,
                iterations_done: 256,
            }
            .into(),
            S::Cancelled {
                iterations_done: 256,
            }
            .into(),
            S::InvalidOption {
                option: m(),
                message: m(),
            }
            .into(),
            S::ThreadPool { reason: m() }.into(),
            S::Internal { message: m() }.into(),
            C::Canonical(j.clone()).into(),
            C::Schema {
                violations: vec![Violation {
                    pointer: p(),
                    rule: "schema.type".into(),
                    message: m(),
                    severity: Severity::Error,
                }],
            }
            .into(),
            C::Rules {
                violations: vec![Violation {
                    pointer: p(),
                    rule: "rule.expired".into(),
                    message: m(),
                    severity: Severity::Error,
                }],
            }
            .into(),
            C::V1Contract { pointer: p() }.into(),
            C::Migration {
                pointer: p(),
                message: m(),
            }
            .into(),
            C::InvalidNow(m()).into(),
            C::IllegalTransition {
                from: "signed",
                to: "draft",
                allowed: m(),
            }
            .into(),
            C::DifferentWorkspace {
                previous: m(),
                next: m(),
            }
            .into(),
            C::ImmutabilityViolation {
                version: m(),
                changed: vec![p()],
            }
            .into(),
            C::VersionNotIncreased {
                previous: m(),
                next: m(),
                changed: vec![p()],
            }
            .into(),
            C::BrokenLink {
                version: m(),
                expected: m(),
                found: m(),
            }
            .into(),
            C::SnapshotTampered {
                contract_id: m(),
                message: m(),
            }
            .into(),
            J::Syntax {
                offset: 0,
                pointer: p(),
                message: m(),
            }
            .into(),
            j.clone().into(),
            J::LoneSurrogate {
                offset: 0,
                pointer: p(),
                code: 0xd800,
            }
            .into(),
            J::InexactInteger {
                pointer: p(),
                literal: m(),
                nearest: m(),
            }
            .into(),
            J::NumberOutOfRange {
                pointer: p(),
                literal: m(),
            }
            .into(),
            J::TooDeep {
                pointer: p(),
                limit: 128,
            }
            .into(),
            J::InvalidUtf8 { offset: 0 }.into(),
            J::TooLarge { len: 1, limit: 0 }.into(),
            A::InvalidInput {
                pointer: p(),
                message: m(),
            }
            .into(),
            A::BrokenTrail {
                index: 1,
                message: m(),
            }
            .into(),
            A::InvalidKey { message: m() }.into(),
            A::SignerFailed {
                key_id: m(),
                message: m(),
            }
            .into(),
            A::BadSignerAnswer {
                key_id: m(),
                message: m(),
            }
            .into(),
            A::InvalidEnvelope { message: m() }.into(),
            A::Canonical(j).into(),
            A::Policy(P::ChecksumMismatch {
                decision: m(),
                contract: m(),
            })
            .into(),
            A::Internal { message: m() }.into(),
            A::Storage { message: m() }.into(),
            A::Conflict { bundle_id: m() }.into(),
            A::ChainMoved {
                workspace_id: m(),
                expected: None,
                head: Some(m()),
            }
            .into(),
            A::Corrupt {
                bundle_id: m(),
                message: m(),
            }
            .into(),
            A::Untrusted {
                bundle_id: m(),
                message: m(),
            }
            .into(),
            U::InvalidInput {
                pointer: p(),
                message: m(),
            }
            .into(),
            U::UnknownModel { model_id: m() }.into(),
            U::Overflow { what: m() }.into(),
            U::UnknownReservation {
                reservation_id: m(),
            }
            .into(),
            U::JobInProgress {
                job_id: m(),
                reservation_id: m(),
            }
            .into(),
            U::JobCommitted { job_id: m() }.into(),
            U::LedgerMissing { path: m() }.into(),
            U::LedgerLocked {
                path: m(),
                message: m(),
            }
            .into(),
            U::LedgerCorrupt {
                path: m(),
                message: m(),
            }
            .into(),
            U::LedgerVersion {
                path: m(),
                found: 2,
                supported: 1,
            }
            .into(),
            U::Storage { message: m() }.into(),
            U::TokenRejected { reason: m() }.into(),
            U::Introspection { message: m() }.into(),
            U::QuotaExceeded {
                workspace_id: m(),
                job_id: m(),
                reasons: vec![m()],
            }
            .into(),
            P::InvalidBundle {
                path: m(),
                message: m(),
            }
            .into(),
            P::Compile {
                module: m(),
                line: Some(1),
                message: m(),
            }
            .into(),
            P::Rule {
                module: m(),
                line: None,
                message: m(),
            }
            .into(),
            P::InvalidInput {
                pointer: p(),
                message: m(),
            }
            .into(),
            P::NoDecision {
                rule: m(),
                message: m(),
            }
            .into(),
            P::ChecksumMismatch {
                decision: m(),
                contract: m(),
            }
            .into(),
            P::Denied { reasons: vec![m()] }.into(),
            P::InvalidCardInput {
                pointer: p(),
                message: m(),
            }
            .into(),
        ]
    }

    /// `Domain::Variant` of an error. Exhaustive (no wildcard): a new
    /// variant does not compile until it is named here, and the test then
    /// asks for its sample in [`all`].
    pub fn variant_name(e: &Error) -> &'static str {
        match e {
            Error::Simulation(e) => match e {
                SimulationError::Parse { .. } => "Simulation::Parse",
                SimulationError::UnknownRiskProfile { .. } => "Simulation::UnknownRiskProfile",
                SimulationError::EmptyChannels { .. } => "Simulation::EmptyChannels",
                SimulationError::EmptyChannelName { .. } => "Simulation::EmptyChannelName",
                SimulationError::InvalidMoney { .. } => "Simulation::InvalidMoney",
                SimulationError::NonPositiveHardCap { .. } => "Simulation::NonPositiveHardCap",
                SimulationError::IterationsOutOfRange { .. } => "Simulation::IterationsOutOfRange",
                SimulationError::ConfidenceLevelOutOfRange { .. } => {
                    "Simulation::ConfidenceLevelOutOfRange"
                }
                SimulationError::InvalidThreshold { .. } => "Simulation::InvalidThreshold",
                SimulationError::FailureRateOutOfRange { .. } => {
                    "Simulation::FailureRateOutOfRange"
                }
                SimulationError::InvalidDuration { .. } => "Simulation::InvalidDuration",
                SimulationError::TooManyRetries { .. } => "Simulation::TooManyRetries",
                SimulationError::EmptyNodeId { .. } => "Simulation::EmptyNodeId",
                SimulationError::UnknownDependency { .. } => "Simulation::UnknownDependency",
                SimulationError::DuplicateNodeId { .. } => "Simulation::DuplicateNodeId",
                SimulationError::Cycle { .. } => "Simulation::Cycle",
                SimulationError::InvalidShard { .. } => "Simulation::InvalidShard",
                SimulationError::Merge { .. } => "Simulation::Merge",
                SimulationError::TooMany { .. } => "Simulation::TooMany",
                SimulationError::OutOfRange { .. } => "Simulation::OutOfRange",
                SimulationError::TimeoutOutOfRange { .. } => "Simulation::TimeoutOutOfRange",
                SimulationError::Timeout { .. } => "Simulation::Timeout",
                SimulationError::Cancelled { .. } => "Simulation::Cancelled",
                SimulationError::InvalidPartial { .. } => "Simulation::InvalidPartial",
                SimulationError::InvalidOption { .. } => "Simulation::InvalidOption",
                SimulationError::ThreadPool { .. } => "Simulation::ThreadPool",
                SimulationError::Internal { .. } => "Simulation::Internal",
            },
            Error::Contract(e) => match e {
                ContractError::Canonical(_) => "Contract::Canonical",
                ContractError::Schema { .. } => "Contract::Schema",
                ContractError::Rules { .. } => "Contract::Rules",
                ContractError::V1Contract { .. } => "Contract::V1Contract",
                ContractError::Migration { .. } => "Contract::Migration",
                ContractError::InvalidNow(_) => "Contract::InvalidNow",
                ContractError::IllegalTransition { .. } => "Contract::IllegalTransition",
                ContractError::DifferentWorkspace { .. } => "Contract::DifferentWorkspace",
                ContractError::ImmutabilityViolation { .. } => "Contract::ImmutabilityViolation",
                ContractError::VersionNotIncreased { .. } => "Contract::VersionNotIncreased",
                ContractError::BrokenLink { .. } => "Contract::BrokenLink",
                ContractError::SnapshotTampered { .. } => "Contract::SnapshotTampered",
            },
            Error::Canonical(e) => match e {
                CanonicalError::Syntax { .. } => "Canonical::Syntax",
                CanonicalError::DuplicateKey { .. } => "Canonical::DuplicateKey",
                CanonicalError::LoneSurrogate { .. } => "Canonical::LoneSurrogate",
                CanonicalError::InexactInteger { .. } => "Canonical::InexactInteger",
                CanonicalError::NumberOutOfRange { .. } => "Canonical::NumberOutOfRange",
                CanonicalError::TooDeep { .. } => "Canonical::TooDeep",
                CanonicalError::InvalidUtf8 { .. } => "Canonical::InvalidUtf8",
                CanonicalError::TooLarge { .. } => "Canonical::TooLarge",
            },
            Error::Audit(e) => match e {
                AuditError::InvalidInput { .. } => "Audit::InvalidInput",
                AuditError::BrokenTrail { .. } => "Audit::BrokenTrail",
                AuditError::InvalidKey { .. } => "Audit::InvalidKey",
                AuditError::SignerFailed { .. } => "Audit::SignerFailed",
                AuditError::BadSignerAnswer { .. } => "Audit::BadSignerAnswer",
                AuditError::InvalidEnvelope { .. } => "Audit::InvalidEnvelope",
                AuditError::Canonical(_) => "Audit::Canonical",
                AuditError::Policy(_) => "Audit::Policy",
                AuditError::Internal { .. } => "Audit::Internal",
                AuditError::Storage { .. } => "Audit::Storage",
                AuditError::Conflict { .. } => "Audit::Conflict",
                AuditError::ChainMoved { .. } => "Audit::ChainMoved",
                AuditError::Corrupt { .. } => "Audit::Corrupt",
                AuditError::Untrusted { .. } => "Audit::Untrusted",
            },
            Error::Usage(e) => match e {
                UsageError::InvalidInput { .. } => "Usage::InvalidInput",
                UsageError::UnknownModel { .. } => "Usage::UnknownModel",
                UsageError::Overflow { .. } => "Usage::Overflow",
                UsageError::UnknownReservation { .. } => "Usage::UnknownReservation",
                UsageError::JobInProgress { .. } => "Usage::JobInProgress",
                UsageError::JobCommitted { .. } => "Usage::JobCommitted",
                UsageError::LedgerMissing { .. } => "Usage::LedgerMissing",
                UsageError::LedgerLocked { .. } => "Usage::LedgerLocked",
                UsageError::LedgerCorrupt { .. } => "Usage::LedgerCorrupt",
                UsageError::LedgerVersion { .. } => "Usage::LedgerVersion",
                UsageError::Storage { .. } => "Usage::Storage",
                UsageError::TokenRejected { .. } => "Usage::TokenRejected",
                UsageError::Introspection { .. } => "Usage::Introspection",
                UsageError::QuotaExceeded { .. } => "Usage::QuotaExceeded",
            },
            Error::Policy(e) => match e {
                PolicyError::InvalidBundle { .. } => "Policy::InvalidBundle",
                PolicyError::Compile { .. } => "Policy::Compile",
                PolicyError::Rule { .. } => "Policy::Rule",
                PolicyError::InvalidInput { .. } => "Policy::InvalidInput",
                PolicyError::NoDecision { .. } => "Policy::NoDecision",
                PolicyError::ChecksumMismatch { .. } => "Policy::ChecksumMismatch",
                PolicyError::Denied { .. } => "Policy::Denied",
                PolicyError::InvalidCardInput { .. } => "Policy::InvalidCardInput",
            },
        }
    }
}

impl From<crate::time::NotRfc3339> for Error {
    fn from(e: crate::time::NotRfc3339) -> Self {
        Error::Contract(e.into())
    }
}
