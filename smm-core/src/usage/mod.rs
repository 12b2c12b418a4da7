//! Cost controls: agent runs and their model usage priced in exact
//! dollars, a usage ledger with quotas that block hard (in memory, or
//! SQLite with the `sqlite` feature), agent
//! token checks and retention plans. The host runs the agents and calls
//! the models; this module keeps the books and makes the decisions,
//! deterministically: time is always passed in.
//!
//! ```
//! use smm_core::usage::{Amounts, MemoryLedger, Outcome, Period, Quota, UsageLedger};
//!
//! let ledger = MemoryLedger::new();
//! ledger.set_quota(&Quota { workspace_id: "ws-1".into(), kind: "tokens".into(), period: Period::Day, limit: 5_000 })?;
//! let ask: Amounts = [("tokens".into(), 4_500)].into();
//! let r = ledger.reserve("ws-1", "job-1", &ask, "2025-09-01T12:00:00Z".parse()?, 900)?;
//! assert_eq!(r.outcome, Outcome::Warn);                // 90 % of the day's tokens
//! ledger.commit(&r.id, &[("tokens".into(), 4_200)].into(), "2025-09-01T12:01:00Z".parse()?)?;
//! let more = ledger.reserve("ws-1", "job-2", &[("tokens".into(), 900)].into(), "2025-09-01T12:02:00Z".parse()?, 900)?;
//! assert_eq!(more.outcome, Outcome::Block);            // 4,200 + 900 > 5,000: nothing held
//! # Ok::<(), smm_core::usage::UsageError>(())
//! ```

mod ledger;
mod memory;
mod money;
#[cfg(feature = "postgres")]
mod postgres;
mod records;
mod retention;
#[cfg(feature = "sqlite")]
mod sqlite;
mod token;

use thiserror::Error;

// layers: re-export of a moved path, kept for one release (CHANGELOG).
pub use crate::breach::{
    BreachAction, BreachInputs, BreachPlan, BreachRequest, breach_plan, breach_plan_request,
};
#[cfg(feature = "postgres")]
pub use crate::pg::{is_postgres_url, redact_url as redact_postgres_url};
pub use ledger::{
    Amounts, COST_USD, CommitReceipt, DEFAULT_RESERVATION_TTL_SECONDS, Kind, Outcome, Period,
    Quota, QuotaStatus, Reservation, TOKENS, UsageLedger, WARN_PERCENT, contract_quotas,
    format_amount, policy_figures,
};
pub use memory::MemoryLedger;
pub use money::{NANOS_PER_USD, ParseUsdError, Usd};
#[cfg(all(feature = "postgres", feature = "test-util"))]
#[doc(hidden)]
pub use postgres::migrate_ledger_to;
#[cfg(feature = "postgres")]
pub use postgres::{
    POSTGRES_LEDGER_SCHEMA_VERSION, PgOptions, PgSchemaStatus, PostgresLedger,
    ledger_schema_status, migrate_ledger,
};
pub use records::{
    AgentRun, AgentRunStatus, AgentType, COST_UNITS_PER_USD, ModelPrice, ModelUsage, PriceTable,
    price_usage, prompt_hash,
};
pub use retention::{
    RecordKind, RetentionAction, RetentionItem, RetentionPlan, RetentionRecord, retention_plan,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, LEDGER_SCHEMA_VERSION, SqliteLedger};
pub use token::{
    AgentTokenClaims, MAX_AGENT_TOKEN_SECONDS, TokenIntrospector, authorize_agent,
    check_agent_token,
};

/// Errors of the usage ledger, pricing, tokens and retention.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// An argument or document is invalid.
    #[error("invalid usage input at {pointer}: {message}")]
    InvalidInput {
        /// Where.
        pointer: String,
        /// What.
        message: String,
    },
    /// The price table has no such model.
    #[error("the price table has no model {model_id:?}")]
    UnknownModel {
        /// The model.
        model_id: String,
    },
    /// A sum would not fit.
    #[error("{what} would overflow")]
    Overflow {
        /// What.
        what: String,
    },
    /// No such reservation (or it was released).
    #[error("no reservation {reservation_id:?} to commit or release")]
    UnknownReservation {
        /// The id.
        reservation_id: String,
    },
    /// The job holds an active reservation already.
    #[error("job {job_id} already holds reservation {reservation_id}")]
    JobInProgress {
        /// The job.
        job_id: String,
        /// Its reservation.
        reservation_id: String,
    },
    /// The job's usage is committed already.
    #[error("job {job_id} is committed already")]
    JobCommitted {
        /// The job.
        job_id: String,
    },
    /// The ledger file does not exist.
    #[error("no usage ledger at {path}")]
    LedgerMissing {
        /// The path.
        path: String,
    },
    /// Another process holds the ledger's write lock for too long.
    #[error("the usage ledger {path} is locked by another writer: {message}")]
    LedgerLocked {
        /// The path.
        path: String,
        /// SQLite's message.
        message: String,
    },
    /// The file is not a usage ledger, or is damaged.
    #[error("the usage ledger {path} is corrupt: {message}")]
    LedgerCorrupt {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The ledger's server is unreachable, restarting, or asked to retry
    /// (a lost connection, a statement timeout, a serialization failure).
    /// Retry the same call: a call whose answer was lost may have been
    /// done (a reservation retried for its job answers
    /// [`UsageError::JobInProgress`] with the reservation; a commit
    /// retried answers its receipt again).
    #[error("the usage ledger {path} is unavailable for now (retry): {message}")]
    LedgerUnavailable {
        /// The database (its URL without the password).
        path: String,
        /// What the server or the connection said.
        message: String,
        /// The client's error.
        #[source]
        source: Option<crate::kind::Cause>,
    },
    /// The file (or database) was written by a newer version of this library.
    #[error(
        "the usage ledger {path} has schema version {found}; this library reads up to {supported}"
    )]
    LedgerVersion {
        /// The path.
        path: String,
        /// Its version.
        found: i64,
        /// The newest this library knows.
        supported: i64,
    },
    /// A storage operation failed.
    #[error("usage ledger storage: {message}")]
    Storage {
        /// What.
        message: String,
        /// The underlying error (SQLite, I/O), when there is one.
        #[source]
        source: Option<crate::kind::Cause>,
    },
    /// An agent token is refused.
    #[error("agent token refused: {reason}")]
    TokenRejected {
        /// Why.
        reason: String,
    },
    /// A strict reservation was blocked: it would pass a quota.
    #[error("job {job_id} of workspace {workspace_id} is over quota: {}", reasons.join("; "))]
    QuotaExceeded {
        /// The workspace.
        workspace_id: String,
        /// The job.
        job_id: String,
        /// Which quotas, by how much.
        reasons: Vec<String>,
    },
    /// The host's token introspection failed.
    #[error("token introspection failed: {message}")]
    Introspection {
        /// What the host said.
        message: String,
    },
}

impl UsageError {
    /// The JSON pointer of the offending field, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            UsageError::InvalidInput { pointer, .. } => Some(pointer),
            _ => None,
        }
    }

    /// The kind of this error (its stable code and category).
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            UsageError::InvalidInput { .. }
            | UsageError::UnknownModel { .. }
            | UsageError::Overflow { .. } => K::InvalidInput,
            UsageError::UnknownReservation { .. } => K::UnknownReservation,
            UsageError::JobInProgress { .. } | UsageError::JobCommitted { .. } => K::LedgerConflict,
            UsageError::LedgerMissing { .. } | UsageError::Storage { .. } => K::LedgerStorage,
            UsageError::LedgerLocked { .. } | UsageError::LedgerUnavailable { .. } => {
                K::LedgerLocked
            }
            UsageError::LedgerCorrupt { .. } => K::LedgerCorrupt,
            UsageError::LedgerVersion { .. } => K::LedgerVersion,
            UsageError::TokenRejected { .. } => K::TokenRejected,
            UsageError::QuotaExceeded { .. } => K::QuotaExceeded,
            UsageError::Introspection { .. } => K::Introspection,
        }
    }
}

impl From<crate::time::NotRfc3339> for UsageError {
    fn from(e: crate::time::NotRfc3339) -> Self {
        UsageError::InvalidInput {
            pointer: "/now".into(),
            message: e.to_string(),
        }
    }
}
