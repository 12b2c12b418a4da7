//! One error of every variant of every domain (feature `test-util`).

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
            source: None,
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
        A::Storage {
            message: m(),
            source: None,
        }
        .into(),
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
        U::LedgerUnavailable {
            path: m(),
            message: m(),
            source: None,
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
        U::Storage {
            message: m(),
            source: None,
        }
        .into(),
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
        P::Internal { message: m() }.into(),
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
            SimulationError::FailureRateOutOfRange { .. } => "Simulation::FailureRateOutOfRange",
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
            UsageError::LedgerUnavailable { .. } => "Usage::LedgerUnavailable",
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
            PolicyError::Internal { .. } => "Policy::Internal",
        },
    }
}
