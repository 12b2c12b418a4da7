//! Policy evaluation in Rego (OPA's language) with the `regorus` engine, the
//! default policy bundle shipped in this crate, decisions and decision cards.
//!
//! ```
//! use smm_core::policy::{PolicyBundle, PolicyInput};
//!
//! let bundle = PolicyBundle::default_bundle()?;          // compiled once, shareable
//! let input = PolicyInput::from_json(include_str!("../../../examples/policy-input.icblabs.json"))?;
//! let decision = bundle.evaluate(&input)?;
//! assert!(decision.allow);
//! assert_eq!(decision.bundle_checksum, bundle.checksum());
//! # Ok::<(), smm_core::policy::PolicyError>(())
//! ```
//!
//! - A [`PolicyBundle`] is a set of Rego modules plus JSON data, loaded from
//!   strings ([`PolicyBundle::from_modules`]), a directory or an OPA bundle
//!   archive (`opa build`'s `.tar.gz`). Loading parses every module,
//!   evaluates every rule once (regorus has no type checker: an unknown
//!   function or a type error only shows when a rule runs) and compiles the
//!   decision to regorus's bytecode VM; any failure is a [`PolicyError`]
//!   naming the module and line.
//! - Its [checksum](PolicyBundle::checksum) is 64 lowercase hex: the SHA-256
//!   of a canonical manifest (see [`checksum_manifest`]), the contract's
//!   `policyBundleChecksum`.
//! - [`PolicyBundle::evaluate`] takes a validated [`PolicyInput`] (a typed
//!   [`PolicyDocument`]) and returns a [`Decision`]; [`PolicyBundle::query`] evaluates any rule path on any
//!   input; [`PolicyBundle::test`] runs the bundle's Rego unit tests with
//!   rule coverage.
//! - [`decision_card`] turns a simulation report, a decision and the
//!   contract's approval policy into a [`DecisionCard`].

mod bundle;
mod card;
mod guard;
pub use guard::MAX_POLICY_NESTING;
mod decision;
mod input;
mod native;
mod testing;

use thiserror::Error;

pub use bundle::{
    DECISION_INSTRUCTIONS_BASE, DECISION_INSTRUCTIONS_PER_STEP, DECISION_RULE, DEFAULT_BUNDLE_REF,
    EvalMode, MAX_BUNDLE_BYTES, MAX_EVAL_SECONDS, MAX_MODULE_BYTES, MAX_MODULES, PolicyBundle,
    checksum_manifest, is_test_module,
};
pub use card::{
    CanaryPlan, CardAction, CardReason, CostEstimate, DecisionCard, PrimaryAction, RiskFactor,
    decision_card,
};
pub use decision::{Decision, ENGINE_NAME, REGORUS_VERSION, evaluation_id};
pub use input::{
    AgentOutput, CurrentSpend, PolicyDocument, PolicyInput, QuotaFigure, StepFlags, StepType,
    WorkflowStep,
};
pub use native::NATIVE_ENGINE_NAME;
pub use testing::{CoverageFile, RegoTestResult, TestOutcome, TestReport};

/// Errors of policy loading, evaluation and decision cards.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A file of the bundle is not acceptable (path, size, encoding, data).
    #[error("invalid policy bundle at {path}: {message}")]
    InvalidBundle {
        /// The file (or archive member) concerned.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A module does not parse or compile.
    #[error("policy module {module}{} does not compile: {message}", line_suffix(*.line))]
    Compile {
        /// Module path.
        module: String,
        /// Line, when the engine named one.
        line: Option<u32>,
        /// The engine's message.
        message: String,
    },
    /// A rule fails when evaluated (unknown function, type error, conflict).
    #[error("policy rule in {module}{} fails: {message}", line_suffix(*.line))]
    Rule {
        /// Module path.
        module: String,
        /// Line, when the engine named one.
        line: Option<u32>,
        /// The engine's message.
        message: String,
    },
    /// The policy input breaks its schema.
    #[error("invalid policy input at {pointer}: {message}")]
    InvalidInput {
        /// JSON pointer of the offending field.
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// The bundle has no usable decision rule.
    #[error("the bundle has no usable {rule}: {message}")]
    NoDecision {
        /// The rule path.
        rule: String,
        /// What is wrong with it.
        message: String,
    },
    /// The decision was made by another policy bundle than the contract names.
    #[error(
        "the decision was made by policy bundle {decision}, but the contract's policyBundleChecksum is {contract}"
    )]
    ChecksumMismatch {
        /// Checksum the decision carries.
        decision: String,
        /// Checksum the contract names.
        contract: String,
    },
    /// The decision is to deny (the main job stops there): the card's
    /// reason codes say why.
    #[error("denied by policy: {}", .reasons.join(", "))]
    Denied {
        /// The card's reason codes.
        reasons: Vec<String>,
    },
    /// A fault of this library (a value it made that it cannot serialize).
    #[error("internal error: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// Inputs of a decision card do not belong together.
    #[error("cannot build the decision card: {message} (at {pointer})")]
    InvalidCardInput {
        /// Where.
        pointer: String,
        /// What.
        message: String,
    },
}

fn line_suffix(line: Option<u32>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

impl PolicyError {
    /// The kind of this error (its stable code and category).
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            PolicyError::InvalidInput { .. } | PolicyError::InvalidCardInput { .. } => {
                K::InvalidInput
            }
            PolicyError::ChecksumMismatch { .. } => K::PolicyChecksum,
            PolicyError::Denied { .. } => K::Denied,
            PolicyError::Internal { .. } => K::Internal,
            PolicyError::InvalidBundle { .. }
            | PolicyError::Compile { .. }
            | PolicyError::Rule { .. }
            | PolicyError::NoDecision { .. } => K::Policy,
        }
    }

    /// The JSON pointer of the offending field, when the error is about a document.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            PolicyError::InvalidInput { pointer, .. }
            | PolicyError::InvalidCardInput { pointer, .. } => Some(pointer),
            PolicyError::ChecksumMismatch { .. } => Some("/policyBundleChecksum"),
            _ => None,
        }
    }
}

/// Split a regorus error into (module, line, message). regorus formats
/// errors as `--> path:line:col`, the source line, then `error: message`.
pub(crate) fn engine_error(
    fallback_module: &str,
    e: &dyn std::fmt::Display,
) -> (String, Option<u32>, String) {
    let text = e.to_string();
    let mut module = fallback_module.to_string();
    let mut line = None;
    for l in text.lines() {
        if let Some(rest) = l.trim_start().strip_prefix("--> ") {
            let mut parts = rest.rsplitn(3, ':');
            let _col = parts.next();
            let ln = parts.next().and_then(|n| n.parse::<u32>().ok());
            if let (Some(ln), Some(path)) = (ln, parts.next()) {
                module = path.to_string();
                line = Some(ln);
            }
            break;
        }
    }
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.trim_start().strip_prefix("error: "))
        .map(str::to_string)
        .unwrap_or_else(|| text.trim().to_string());
    (module, line, message)
}
