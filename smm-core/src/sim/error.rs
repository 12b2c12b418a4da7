use thiserror::Error;

/// Everything that can go wrong when simulating: bad input (each variant names
/// the field by JSON pointer) or a shard/merge misuse.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SimulationError {
    /// The document is not valid JSON, a field has the wrong type, a required
    /// field is missing or an unknown field is present.
    #[error("invalid simulation input at {pointer}: {message}")]
    Parse {
        /// Where the problem is (`""` for the whole document).
        pointer: String,
        /// What is wrong.
        message: String,
    },
    /// `riskProfile` is not one of low, medium, high, enterprise.
    #[error(
        "unknown risk profile {value:?} at {pointer} (expected one of low, medium, high, enterprise)"
    )]
    UnknownRiskProfile {
        /// Where.
        pointer: String,
        /// What was given.
        value: String,
    },
    /// `primaryChannels` is empty (the model averages platform health over it).
    #[error("{pointer} must list at least one channel")]
    EmptyChannels {
        /// Where.
        pointer: String,
    },
    /// A channel name is empty.
    #[error("{pointer} must be a non-empty channel name")]
    EmptyChannelName {
        /// Where.
        pointer: String,
    },
    /// An amount of money is negative or not finite.
    #[error("{pointer} must be a finite, non-negative amount (got {value})")]
    InvalidMoney {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// `budget.hardCap` is zero or negative.
    #[error("{pointer} must be greater than 0 (got {value})")]
    NonPositiveHardCap {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// `iterations` is 0 or above the documented maximum.
    #[error("{pointer} must be between 1 and {max} (got {value})")]
    IterationsOutOfRange {
        /// Where.
        pointer: String,
        /// What was given.
        value: u64,
        /// The largest accepted value for the chosen percentile mode.
        max: u64,
    },
    /// A list is longer than its documented limit (see [`crate::limits`]).
    #[error("{pointer} has {count} items, more than the limit of {max}")]
    TooMany {
        /// Where.
        pointer: String,
        /// How many were given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An integer setting outside its range.
    #[error("{pointer} must be between {min} and {max} (got {value})")]
    OutOfRange {
        /// Where.
        pointer: String,
        /// What was given.
        value: u64,
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// `timeoutSeconds` is 0 or longer than a week.
    #[error("{pointer} must be between 1 and {max} seconds (got {value})")]
    TimeoutOutOfRange {
        /// Where.
        pointer: String,
        /// What was given.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// `confidenceLevel` is not within (0, 0.999999999].
    #[error("{pointer} must be greater than 0 and at most 0.999999999 (got {value})")]
    ConfidenceLevelOutOfRange {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// `convergenceThreshold` is negative or not finite.
    #[error("{pointer} must be a finite, non-negative number (got {value})")]
    InvalidThreshold {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// A node's `failureRate` is outside [0, 1].
    #[error("{pointer} must be within [0, 1] (got {value})")]
    FailureRateOutOfRange {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// A duration (`estimatedDuration`, `backoffMs`) is negative or not finite.
    #[error("{pointer} must be a finite, non-negative duration in ms (got {value})")]
    InvalidDuration {
        /// Where.
        pointer: String,
        /// What was given.
        value: f64,
    },
    /// `retryPolicy.maxRetries` exceeds the documented maximum.
    #[error("{pointer} must be at most {max} (got {value})")]
    TooManyRetries {
        /// Where.
        pointer: String,
        /// What was given.
        value: u64,
        /// The maximum.
        max: u32,
    },
    /// A node id is empty.
    #[error("{pointer} must be a non-empty node id")]
    EmptyNodeId {
        /// Where.
        pointer: String,
    },
    /// A node lists a dependency that is not a node of the workflow.
    #[error("node {node:?} depends on unknown node {dependency:?} (at {pointer})")]
    UnknownDependency {
        /// Where.
        pointer: String,
        /// The node that has the dependency.
        node: String,
        /// The missing node id.
        dependency: String,
    },
    /// Two nodes share an id.
    #[error("duplicate node id {id:?} at {pointer}")]
    DuplicateNodeId {
        /// Where (the second occurrence).
        pointer: String,
        /// The id.
        id: String,
    },
    /// The dependencies form a cycle.
    #[error("workflow dependencies form a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// Where (the workflow's node list).
        pointer: String,
        /// The node ids along the cycle, first repeated at the end.
        cycle: Vec<String>,
    },
    /// A shard range is empty, out of bounds or not aligned to blocks.
    #[error("invalid shard [{start}, {end}) of {iterations} iterations: {reason}")]
    InvalidShard {
        /// First iteration of the shard.
        start: u64,
        /// One past the last iteration.
        end: u64,
        /// Iterations of the whole run.
        iterations: u64,
        /// Why it is rejected.
        reason: String,
    },
    /// A partial result decoded from outside breaks an invariant of the
    /// shards this engine makes.
    #[error("invalid partial result: {reason}")]
    InvalidPartial {
        /// Which invariant.
        reason: String,
    },
    /// Partial results cannot be merged (gaps, overlaps, other inputs).
    #[error("cannot merge partial results: {reason}")]
    Merge {
        /// Why.
        reason: String,
    },
    /// A run option (not part of the request) is invalid, e.g. 0 threads.
    #[error("invalid run option {option}: {message}")]
    InvalidOption {
        /// The option.
        option: String,
        /// What is wrong.
        message: String,
    },
    /// The worker pool could not be started.
    #[error("thread pool: {reason}")]
    ThreadPool {
        /// Why.
        reason: String,
    },
    /// The run reached its `timeoutSeconds` before its end.
    #[error("the run reached its time limit of {seconds} s after {iterations_done} iterations")]
    Timeout {
        /// The limit.
        seconds: u64,
        /// Iterations done when it stopped (no report is made of them).
        iterations_done: u64,
    },
    /// The run was cancelled through its [`super::RunControl`].
    #[error("the run was cancelled after {iterations_done} iterations")]
    Cancelled {
        /// Iterations done when it stopped (no report is made of them).
        iterations_done: u64,
    },
    /// A failure inside the engine (a bug: please report it).
    #[error("internal simulation error: {message}")]
    Internal {
        /// What.
        message: String,
    },
}

impl SimulationError {
    /// A fault of this library, with what failed.
    pub(crate) fn internal(message: String) -> Self {
        SimulationError::Internal { message }
    }

    /// The JSON pointer of the offending field, when there is one.
    pub fn pointer(&self) -> Option<&str> {
        use SimulationError::*;
        match self {
            Parse { pointer, .. }
            | UnknownRiskProfile { pointer, .. }
            | EmptyChannels { pointer }
            | EmptyChannelName { pointer }
            | InvalidMoney { pointer, .. }
            | NonPositiveHardCap { pointer, .. }
            | IterationsOutOfRange { pointer, .. }
            | TooMany { pointer, .. }
            | OutOfRange { pointer, .. }
            | TimeoutOutOfRange { pointer, .. }
            | ConfidenceLevelOutOfRange { pointer, .. }
            | InvalidThreshold { pointer, .. }
            | FailureRateOutOfRange { pointer, .. }
            | InvalidDuration { pointer, .. }
            | TooManyRetries { pointer, .. }
            | EmptyNodeId { pointer }
            | UnknownDependency { pointer, .. }
            | DuplicateNodeId { pointer, .. }
            | Cycle { pointer, .. } => Some(pointer),
            InvalidShard { .. }
            | InvalidPartial { .. }
            | Merge { .. }
            | InvalidOption { .. }
            | ThreadPool { .. }
            | Timeout { .. }
            | Cancelled { .. }
            | Internal { .. } => None,
        }
    }

    /// The kind of this error (its stable code and category).
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind as K;
        match self {
            SimulationError::InvalidShard { .. }
            | SimulationError::InvalidPartial { .. }
            | SimulationError::Merge { .. } => K::InvalidShard,
            SimulationError::ThreadPool { .. } => K::ThreadPool,
            SimulationError::Timeout { .. } => K::Timeout,
            SimulationError::Cancelled { .. } => K::Cancelled,
            SimulationError::Internal { .. } => K::Internal,
            _ => K::InvalidInput,
        }
    }

    /// True for the variants caused by the caller's input.
    pub fn is_input_error(&self) -> bool {
        self.kind().category() == crate::kind::ErrorCategory::Input
    }
}
