//! Resource limits: every limit of the library, in one leaf module that
//! imports nothing of the crate. Every value decoded from outside is
//! bounded, so no input can make the library allocate or work without
//! bound. [`ALL`] lists them by name; the Python `smm_core.LIMITS` is built
//! from it at import and the C header's `SMM_MAX_*` are generated from it
//! (`cargo xtask bless`; a drift test fails when they differ). Each is
//! tested at the limit and one past it.

/// Largest JSON document accepted as text (a request, contract, policy
/// input, envelope, partial result or bundle), in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 64 << 20;
/// Deepest nesting of JSON arrays and objects.
pub const MAX_DEPTH: usize = 128;
/// Largest `iterations` in bounded-percentile mode (memory is flat, about
/// 4 MB).
pub const MAX_ITERATIONS: u64 = 10_000_000_000;
/// Largest `iterations` with exact percentiles: every sample is kept, about
/// 57 bytes an iteration at peak when the samples are returned (or a shard's
/// partial result carries them), so 5.7 GB at this limit; a run that returns
/// only its report keeps 4-byte keys instead, about 29 bytes an iteration.
pub const MAX_EXACT_ITERATIONS: u64 = 100_000_000;
/// Most worker threads a run may ask for.
pub const MAX_THREADS: usize = 1024;
/// Most primary channels of a workspace context.
pub const MAX_CHANNELS: usize = 64;
/// Most nodes of a workflow.
pub const MAX_WORKFLOW_NODES: usize = 10_000;
/// Most retries of a workflow node.
pub const MAX_RETRIES: u32 = 100;
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
/// Most modules a policy bundle may hold (tests included): the most
/// sources a regorus VM program can hold.
pub const MAX_POLICY_MODULES: usize = 256;
/// Largest policy module, in bytes.
pub const MAX_POLICY_MODULE_BYTES: usize = 1 << 20;
/// Largest policy bundle: the sum of its files, decompressed, in bytes
/// (also the cap on an archive's decompressed size: a guard against gzip
/// bombs).
pub const MAX_POLICY_BUNDLE_BYTES: u64 = 32 << 20;
/// Deepest bracket nesting of a policy module, checked before it is parsed.
pub const MAX_POLICY_NESTING: usize = 16;
/// Longest one policy evaluation may run (the load's probe of every rule, a
/// decision, a query, the Rego tests), in wall-clock seconds: a bound for
/// hostile bundles, far above what any honest decision takes. It decides
/// only whether an answer is returned, never what it says.
pub const MAX_POLICY_EVAL_SECONDS: u64 = 2;
/// VM instructions a decision may run: this many, plus
/// [`MAX_DECISION_INSTRUCTIONS_PER_STEP`] per workflow step of its input.
pub const MAX_DECISION_INSTRUCTIONS_BASE: usize = 1_000_000;
/// VM instructions a decision may run per workflow step of its input.
pub const MAX_DECISION_INSTRUCTIONS_PER_STEP: usize = 20_000;
/// Longest lifetime of an agent token, in seconds (two hours).
pub const MAX_AGENT_TOKEN_SECONDS: u64 = 2 * 3600;
/// How often a chained run re-chains to a workspace head that moved under
/// it before it gives up.
pub const MAX_CHAIN_ATTEMPTS: usize = 64;
/// Most bundles in one page of a store's listing.
pub const MAX_PAGE: usize = 10_000;

/// One limit, by name, for the bindings and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The name (`MAX_...`; the C constant is `SMM_` and this).
    pub name: &'static str,
    /// The value.
    pub value: u64,
    /// What it bounds, in one line (the C header's comment).
    pub doc: &'static str,
}

const fn limit(name: &'static str, value: u64, doc: &'static str) -> Limit {
    Limit { name, value, doc }
}

/// Every limit of the library.
pub const LIMITS: [Limit; 24] = [
    limit(
        "MAX_DOCUMENT_BYTES",
        MAX_DOCUMENT_BYTES as u64,
        "Largest JSON document accepted as text, in bytes.",
    ),
    limit(
        "MAX_DEPTH",
        MAX_DEPTH as u64,
        "Deepest nesting of JSON arrays and objects.",
    ),
    limit(
        "MAX_ITERATIONS",
        MAX_ITERATIONS,
        "Largest `iterations` in bounded-percentile mode.",
    ),
    limit(
        "MAX_EXACT_ITERATIONS",
        MAX_EXACT_ITERATIONS,
        "Largest `iterations` with exact percentiles (about 57 bytes an iteration).",
    ),
    limit(
        "MAX_THREADS",
        MAX_THREADS as u64,
        "Most worker threads (`threads` arguments; 0 means every core).",
    ),
    limit(
        "MAX_CHANNELS",
        MAX_CHANNELS as u64,
        "Most primary channels of a workspace context.",
    ),
    limit(
        "MAX_WORKFLOW_NODES",
        MAX_WORKFLOW_NODES as u64,
        "Most nodes of a workflow.",
    ),
    limit(
        "MAX_RETRIES",
        MAX_RETRIES as u64,
        "Most retries of a workflow node.",
    ),
    limit(
        "MAX_TIMEOUT_SECONDS",
        MAX_TIMEOUT_SECONDS,
        "Longest `timeoutSeconds`.",
    ),
    limit(
        "MAX_PARTIALS",
        MAX_PARTIALS as u64,
        "Most partial results merged at once.",
    ),
    limit(
        "MAX_ENVELOPE_SIGNATURES",
        MAX_ENVELOPE_SIGNATURES as u64,
        "Most signatures in one envelope.",
    ),
    limit(
        "MAX_BATCH",
        MAX_BATCH as u64,
        "Most envelopes verified in one batch.",
    ),
    limit(
        "MAX_SWEEP_POINTS",
        MAX_SWEEP_POINTS as u64,
        "Most points in one parameter sweep.",
    ),
    limit(
        "MAX_CAMPAIGN_STEPS",
        MAX_CAMPAIGN_STEPS as u64,
        "Most workflow steps in a campaign (the policy input's `workflow`).",
    ),
    limit(
        "MAX_POLICY_MODULES",
        MAX_POLICY_MODULES as u64,
        "Most modules in a policy bundle, tests included.",
    ),
    limit(
        "MAX_POLICY_MODULE_BYTES",
        MAX_POLICY_MODULE_BYTES as u64,
        "Largest policy module, in bytes.",
    ),
    limit(
        "MAX_POLICY_BUNDLE_BYTES",
        MAX_POLICY_BUNDLE_BYTES,
        "Largest policy bundle (its files decompressed), in bytes.",
    ),
    limit(
        "MAX_POLICY_NESTING",
        MAX_POLICY_NESTING as u64,
        "Deepest bracket nesting of a policy module.",
    ),
    limit(
        "MAX_POLICY_EVAL_SECONDS",
        MAX_POLICY_EVAL_SECONDS,
        "Longest one policy evaluation may run, in seconds.",
    ),
    limit(
        "MAX_DECISION_INSTRUCTIONS_BASE",
        MAX_DECISION_INSTRUCTIONS_BASE as u64,
        "VM instructions a policy decision may run, before the per-step allowance.",
    ),
    limit(
        "MAX_DECISION_INSTRUCTIONS_PER_STEP",
        MAX_DECISION_INSTRUCTIONS_PER_STEP as u64,
        "VM instructions a policy decision may run per campaign step.",
    ),
    limit(
        "MAX_AGENT_TOKEN_SECONDS",
        MAX_AGENT_TOKEN_SECONDS,
        "Longest lifetime of an agent token, in seconds.",
    ),
    limit(
        "MAX_CHAIN_ATTEMPTS",
        MAX_CHAIN_ATTEMPTS as u64,
        "Most times a chained run re-chains to a moved workspace head.",
    ),
    limit(
        "MAX_PAGE",
        MAX_PAGE as u64,
        "Most bundles in one page of a store's listing (`list_page`).",
    ),
];

/// Every limit by name and value (the first 13 entries are the limits of
/// release 0.x before the policy and token limits joined them).
#[expect(
    clippy::indexing_slicing,
    reason = "evaluated at compile time: an index out of range fails the build"
)]
pub const ALL: [(&str, u64); 24] = {
    let mut out = [("", 0u64); 24];
    let mut i = 0;
    while i < LIMITS.len() {
        out[i] = (LIMITS[i].name, LIMITS[i].value);
        i += 1;
    }
    out
};

/// Refuse a document longer than [`MAX_DOCUMENT_BYTES`].
pub(crate) fn check_document_len(len: usize) -> Result<(), String> {
    if len > MAX_DOCUMENT_BYTES {
        Err(format!(
            "the document is {len} bytes, more than the limit of {MAX_DOCUMENT_BYTES}"
        ))
    } else {
        Ok(())
    }
}

/// Read a document from the file at `path`, refusing one longer than
/// [`MAX_DOCUMENT_BYTES`] after reading at most one byte past the limit
/// (an [`std::io::ErrorKind::FileTooLarge`] error naming the limit), so a
/// path such as `/dev/zero` or a runaway log ends in an error, not in
/// memory exhaustion. Pipes and process substitutions (`<(...)`) are read
/// like files, up to the same limit.
#[cfg(feature = "fs")]
pub fn read_document_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let limit = MAX_DOCUMENT_BYTES as u64;
    // The size of a regular file sizes the buffer; others (pipes,
    // devices: size 0) grow.
    let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
    read_to_limit(file, limit, hint, || {
        format!("more than {MAX_DOCUMENT_BYTES} bytes (MAX_DOCUMENT_BYTES)")
    })
}

/// Read `file` to its end, at most `limit` bytes: at most one byte past
/// `limit` is read, and a file longer than that is
/// [`std::io::ErrorKind::FileTooLarge`] with the message `too_large`
/// makes. `size_hint` (the file's size when known, else 0) sizes the
/// buffer; a file whose size is already past `limit` is refused unread.
#[cfg(feature = "fs")]
fn read_to_limit(
    file: std::fs::File,
    limit: u64,
    size_hint: u64,
    too_large: impl Fn() -> String,
) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let error = || std::io::Error::new(std::io::ErrorKind::FileTooLarge, too_large());
    if size_hint > limit {
        return Err(error());
    }
    let mut out = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    file.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(error());
    }
    Ok(out)
}

/// [`read_document_file`] as UTF-8 text (not UTF-8: an
/// [`std::io::ErrorKind::InvalidData`] error).
#[cfg(feature = "fs")]
pub fn read_document_text(path: &std::path::Path) -> std::io::Result<String> {
    String::from_utf8(read_document_file(path)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: {}", e.utf8_error()),
        )
    })
}

/// Open the regular file at `path` for reading, for a reader of files it
/// did not write (a policy directory, a store): opened without blocking (a
/// FIFO swapped in does not hang the open) and, unless `follow_links`,
/// without following a symbolic link at its last component (unix:
/// [`std::io::ErrorKind::InvalidInput`], "a symbolic link"); the open
/// handle, not the path (which may have changed since it was listed or
/// checked), must be a regular file ([`std::io::ErrorKind::InvalidInput`]
/// otherwise). Returns the file and its size.
#[cfg(feature = "fs")]
pub(crate) fn open_regular_file(
    path: &std::path::Path,
    follow_links: bool,
) -> std::io::Result<(std::fs::File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let nofollow = if follow_links { 0 } else { libc::O_NOFOLLOW };
        options.custom_flags(libc::O_NONBLOCK | nofollow);
    }
    #[cfg(not(unix))]
    let _ = follow_links;
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if !follow_links && e.raw_os_error() == Some(libc::ELOOP) {
            return std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "a symbolic link (not followed)",
            );
        }
        e
    })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, socket or device is refused)",
        ));
    }
    Ok((file, meta.len()))
}

/// Read the regular file at `path` ([`open_regular_file`]), at most
/// `limit` bytes: at most one byte past `limit` is read, so a file that
/// grows after its size was checked ends in
/// [`std::io::ErrorKind::FileTooLarge`], not in memory exhaustion.
#[cfg(feature = "fs")]
pub(crate) fn read_regular_file(
    path: &std::path::Path,
    limit: u64,
    follow_links: bool,
) -> std::io::Result<Vec<u8>> {
    let (file, len) = open_regular_file(path, follow_links)?;
    read_to_limit(file, limit, len, || format!("more than {limit} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(feature = "fs", unix))]
    #[test]
    fn a_document_file_is_read_to_the_limit_and_no_further() {
        let e = read_document_file(std::path::Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("MAX_DOCUMENT_BYTES"), "{e}");
        let dir = std::env::temp_dir().join(format!("smm-limits-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (text, latin1) = (dir.join("a.json"), dir.join("b.json"));
        std::fs::write(&text, "{\"a\": 1}").unwrap();
        std::fs::write(&latin1, b"caf\xe9").unwrap();
        assert_eq!(read_document_text(&text).unwrap(), "{\"a\": 1}");
        let e = read_document_text(&latin1).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(read_document_file(&latin1).unwrap(), b"caf\xe9");
        // A (sparse) regular file already past the limit: refused, same
        // message, and exactly at the limit: read.
        let big = dir.join("big.json");
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(MAX_DOCUMENT_BYTES as u64 + 1).unwrap();
        let e = read_document_file(&big).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert!(e.to_string().contains("MAX_DOCUMENT_BYTES"), "{e}");
        f.set_len(MAX_DOCUMENT_BYTES as u64).unwrap();
        assert_eq!(read_document_file(&big).unwrap().len(), MAX_DOCUMENT_BYTES);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(all(feature = "fs", unix))]
    #[test]
    fn a_regular_file_is_read_from_its_handle_to_its_limit() {
        use std::path::Path;
        let dir = std::env::temp_dir().join(format!("smm-regular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (file, link) = (dir.join("a.rego"), dir.join("b.rego"));
        std::fs::write(&file, b"package a").unwrap();
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(read_regular_file(&file, 9, false).unwrap(), b"package a");
        let e = read_regular_file(&file, 8, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge, "{e}");
        // A link swapped in after the listing is not followed, and the
        // device it names is refused on the handle when links are followed.
        let e = read_regular_file(&link, 1 << 20, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = read_regular_file(&link, 1 << 20, true).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let e = read_regular_file(Path::new("/dev/zero"), 1 << 20, true).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn names_are_unique_and_all_matches() {
        for (i, a) in LIMITS.iter().enumerate() {
            assert!(a.name.starts_with("MAX_"), "{a:?}");
            assert!(a.value > 0, "{a:?}");
            assert_eq!(ALL[i], (a.name, a.value));
            for b in LIMITS.iter().skip(i + 1) {
                assert_ne!(a.name, b.name);
            }
        }
    }
}
