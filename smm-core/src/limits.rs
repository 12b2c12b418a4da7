//! Resource limits. Every value decoded from outside is bounded, so no
//! input can make the library allocate or work without bound. The limits
//! are the same in Rust, Python (`smm_core.LIMITS`) and C (`SMM_MAX_*`),
//! and each is tested at the limit and one past it.

/// Largest JSON document accepted as text (a request, contract, policy
/// input, envelope, partial result or bundle), in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;
/// Deepest nesting of JSON arrays and objects.
pub const MAX_DEPTH: usize = crate::jcs::MAX_DEPTH;
/// Largest `iterations` in bounded-percentile mode (memory is flat, about
/// 4 MB).
pub const MAX_ITERATIONS: u64 = crate::sim::MAX_ITERATIONS;
/// Largest `iterations` with exact percentiles: every sample is kept, about
/// 57 bytes an iteration at peak, so 5.7 GB at this limit.
pub const MAX_EXACT_ITERATIONS: u64 = crate::sim::MAX_EXACT_ITERATIONS;
/// Most worker threads a run may ask for.
pub const MAX_THREADS: usize = 1024;
/// Most primary channels of a workspace context.
pub const MAX_CHANNELS: usize = 64;
/// Most nodes of a workflow.
pub const MAX_WORKFLOW_NODES: usize = 10_000;
/// Most retries of a workflow node.
pub const MAX_RETRIES: u32 = crate::sim::MAX_RETRIES;
/// Longest `timeoutSeconds` (a week).
pub const MAX_TIMEOUT_SECONDS: u64 = 7 * 86_400;
/// Most partial results merged at once.
pub const MAX_PARTIALS: usize = 1 << 20;
/// Most signatures in one envelope.
pub const MAX_ENVELOPE_SIGNATURES: usize = 64;
/// Most envelopes verified in one batch.
pub const MAX_BATCH: usize = 1_000_000;

/// Most points in one parameter sweep.
pub const MAX_SWEEP_POINTS: usize = 100_000;

/// Most workflow steps in a campaign (the policy input's `workflow`): the
/// largest campaign the schema accepts, which the default policy bundle is
/// tested at and the decision's instruction limit is scaled for.
pub const MAX_CAMPAIGN_STEPS: usize = 1_000;

/// Every limit by name, for the bindings (`smm_core.LIMITS`) and the docs.
pub const ALL: [(&str, u64); 13] = [
    ("MAX_DOCUMENT_BYTES", MAX_DOCUMENT_BYTES as u64),
    ("MAX_DEPTH", MAX_DEPTH as u64),
    ("MAX_ITERATIONS", MAX_ITERATIONS),
    ("MAX_EXACT_ITERATIONS", MAX_EXACT_ITERATIONS),
    ("MAX_THREADS", MAX_THREADS as u64),
    ("MAX_CHANNELS", MAX_CHANNELS as u64),
    ("MAX_WORKFLOW_NODES", MAX_WORKFLOW_NODES as u64),
    ("MAX_RETRIES", MAX_RETRIES as u64),
    ("MAX_TIMEOUT_SECONDS", MAX_TIMEOUT_SECONDS),
    ("MAX_PARTIALS", MAX_PARTIALS as u64),
    ("MAX_ENVELOPE_SIGNATURES", MAX_ENVELOPE_SIGNATURES as u64),
    ("MAX_BATCH", MAX_BATCH as u64),
    ("MAX_SWEEP_POINTS", MAX_SWEEP_POINTS as u64),
];

/// Refuse a document longer than [`MAX_DOCUMENT_BYTES`]; `what` names it.
pub(crate) fn check_document_len(len: usize) -> Result<(), String> {
    if len > MAX_DOCUMENT_BYTES {
        Err(format!(
            "the document is {len} bytes, more than the limit of {MAX_DOCUMENT_BYTES}"
        ))
    } else {
        Ok(())
    }
}
