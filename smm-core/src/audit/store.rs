//! Bundle storage: a trait, an in-memory store, and (feature `fs`) a
//! filesystem store.
//!
//! A store publishes only envelopes whose every signature verifies under
//! the trusted keys it was opened with (a store opened without keys is
//! read-only). An id is taken by its first envelope; afterwards the only
//! change is adding signatures from other trusted keys (DSSE allows
//! several), which is recorded in the bundle's hash-chained store history;
//! anything else under an existing id is a [`AuditError::Conflict`]. Reads
//! check that the bytes still hash to their id. Every id is checked
//! (`sha256:` + 64 lowercase hex) before it reaches a path.

use std::collections::BTreeMap;
use std::sync::Mutex;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuditError;
use super::bundle::{AuditBundle, is_sha256_ref};
use super::dsse::{BUNDLE_PAYLOAD_TYPE, Envelope, EnvelopeSignature, pae};
use super::verify::{TrustedKey, check_signatures};
use crate::jcs;
use crate::time::Timestamp;

/// A signed bundle as stored: the envelope bytes and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBundle {
    /// `sha256:` id of the payload.
    pub bundle_id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// The envelope (compact JSON).
    pub envelope: Vec<u8>,
}

impl StoredBundle {
    /// Read an envelope's payload to learn its id, workspace and time. This
    /// does not verify the signatures (stores do, see [`BundleStore::put`];
    /// so does [`super::verify_envelope`]).
    pub fn from_envelope(envelope: &[u8]) -> Result<Self, AuditError> {
        let env = Envelope::from_json(envelope)?;
        let payload = env.payload_bytes()?;
        let bundle: AuditBundle =
            serde_json::from_slice(&payload).map_err(|e| AuditError::InvalidEnvelope {
                message: format!("payload is not an audit bundle: {e}"),
            })?;
        if Timestamp::parse(&bundle.created_at).is_none() {
            return Err(AuditError::InvalidEnvelope {
                message: "createdAt is not RFC 3339".into(),
            });
        }
        Ok(StoredBundle {
            bundle_id: jcs::sha256_ref_of_canonical(&payload),
            workspace_id: bundle.workspace_id,
            created_at: bundle.created_at,
            envelope: env.to_json(),
        })
    }

    /// The bundle inside.
    pub fn bundle(&self) -> Result<AuditBundle, AuditError> {
        let payload = Envelope::from_json(&self.envelope)?.payload_bytes()?;
        serde_json::from_slice(&payload).map_err(|e| AuditError::InvalidEnvelope {
            message: e.to_string(),
        })
    }
}

/// What `put` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// Newly stored.
    Stored,
    /// Every signature was already there.
    AlreadyPresent,
    /// The bundle was there; these key ids' signatures were added.
    SignaturesAdded {
        /// Key ids of the added signatures.
        key_ids: Vec<String>,
    },
}

/// One event of a stored bundle's history. `eventHash` is the SHA-256 of
/// the RFC 8785 form of the event without `eventHash`; it covers
/// `previousEventHash`, so the history is a hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StoreEvent {
    /// 0, 1, 2, ...
    pub sequence: u64,
    /// `stored` or `signatures_added`.
    pub event: String,
    /// Key ids whose signatures the event brought.
    pub key_ids: Vec<String>,
    /// `sha256:` of the envelope (compact JSON) after the event.
    pub envelope_sha256: String,
    /// Hash of the event before (absent for the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_event_hash: Option<String>,
    /// This event's hash.
    pub event_hash: String,
}

impl StoreEvent {
    fn compute_hash(&self) -> Result<String, AuditError> {
        let mut body =
            serde_json::to_value(self).map_err(|e| AuditError::internal(&e.to_string()))?;
        if let Some(o) = body.as_object_mut() {
            o.remove("eventHash");
        }
        Ok(jcs::sha256_ref_of_canonical(&jcs::canonicalize_value(
            &body,
        )?))
    }

    fn new(
        previous: Option<&StoreEvent>,
        event: &str,
        key_ids: Vec<String>,
        envelope: &[u8],
    ) -> Result<StoreEvent, AuditError> {
        let mut e = StoreEvent {
            sequence: previous.map_or(0, |p| p.sequence + 1),
            event: event.into(),
            key_ids,
            envelope_sha256: jcs::sha256_ref_of_canonical(envelope),
            previous_event_hash: previous.map(|p| p.event_hash.clone()),
            event_hash: String::new(),
        };
        e.event_hash = e.compute_hash()?;
        Ok(e)
    }
}

/// A bundle as a store keeps it: the envelope (its signatures merged over
/// time) and the hash-chained history of how it got them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Record {
    format: String,
    envelope: Envelope,
    events: Vec<StoreEvent>,
}

const RECORD_FORMAT: &str = "smm-stored-bundle/v1";

impl Record {
    /// Check a record read back: format, id, history chain, and that the
    /// history ends at this very envelope.
    fn check(&self, bundle_id: &str) -> Result<StoredBundle, AuditError> {
        let corrupt = |message: String| AuditError::Corrupt {
            bundle_id: bundle_id.to_string(),
            message,
        };
        if self.format != RECORD_FORMAT {
            return Err(corrupt(format!("unknown record format {:?}", self.format)));
        }
        let bytes = self.envelope.to_json();
        let stored = StoredBundle::from_envelope(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if stored.bundle_id != bundle_id {
            return Err(corrupt(format!("content hashes to {}", stored.bundle_id)));
        }
        let mut previous: Option<&StoreEvent> = None;
        for (i, e) in self.events.iter().enumerate() {
            if e.sequence != i as u64
                || e.previous_event_hash.as_deref() != previous.map(|p| p.event_hash.as_str())
                || e.compute_hash()? != e.event_hash
            {
                return Err(corrupt(format!("store history broken at event {i}")));
            }
            previous = Some(e);
        }
        match previous {
            Some(last) if last.envelope_sha256 == jcs::sha256_ref_of_canonical(&bytes) => {
                Ok(stored)
            }
            _ => Err(corrupt(
                "the store history does not end at this envelope".into(),
            )),
        }
    }
}

/// The bundle in a file as a store writes it (`bundle-….json.gz`: a
/// gzipped record of the envelope and its store history), given as bytes,
/// gzipped or not: the record is checked (format, id, history) and the
/// envelope returned for verification. Not a stored record: an
/// [`AuditError::InvalidEnvelope`].
pub fn read_stored_record(bytes: &[u8]) -> Result<StoredBundle, AuditError> {
    use std::io::Read;
    let max = crate::limits::MAX_DOCUMENT_BYTES as u64;
    let plain;
    let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(max + 1)
            .read_to_end(&mut out)
            .map_err(|e| AuditError::InvalidEnvelope {
                message: format!("not a gzipped stored bundle: {e}"),
            })?;
        if out.len() as u64 > max {
            return Err(AuditError::InvalidEnvelope {
                message: format!("more than {max} bytes decompressed"),
            });
        }
        plain = out;
        &plain
    } else {
        bytes
    };
    let record: Record = serde_json::from_slice(text).map_err(|e| AuditError::InvalidEnvelope {
        message: format!("not a stored bundle record: {e}"),
    })?;
    let id = StoredBundle::from_envelope(&record.envelope.to_json())?.bundle_id;
    record.check(&id)
}

/// Check the form of a bundle id before it reaches a path or a lookup.
pub fn check_bundle_id(bundle_id: &str) -> Result<(), AuditError> {
    if is_sha256_ref(bundle_id) {
        Ok(())
    } else {
        Err(AuditError::InvalidInput {
            pointer: String::new(),
            message: format!(
                "{:?} is not a bundle id (sha256: + 64 lowercase hex)",
                bundle_id.chars().take(80).collect::<String>()
            ),
        })
    }
}

/// Decide what storing `new` on top of `existing` means, under the
/// trusted keys: the record to write, or `None` when nothing changes.
fn plan_put(
    existing: Option<&Record>,
    new: &StoredBundle,
    trusted: &[TrustedKey],
) -> Result<(Option<Record>, PutOutcome), AuditError> {
    check_bundle_id(&new.bundle_id)?;
    if trusted.is_empty() {
        return Err(AuditError::Storage {
            message: "this store was opened without trusted keys: it is read-only \
                      (open it with the keys whose signatures it may publish)"
                .into(),
        });
    }
    let env = Envelope::from_json(&new.envelope)?;
    let fresh = StoredBundle::from_envelope(&new.envelope)?;
    if fresh.bundle_id != new.bundle_id {
        return Err(AuditError::Corrupt {
            bundle_id: new.bundle_id.clone(),
            message: format!("content hashes to {}", fresh.bundle_id),
        });
    }
    if env.payload_type != BUNDLE_PAYLOAD_TYPE {
        return Err(AuditError::InvalidEnvelope {
            message: format!(
                "payload type {:?} is not an audit bundle's",
                env.payload_type
            ),
        });
    }
    let payload = env.payload_bytes()?;
    if jcs::canonicalize(&payload)? != payload {
        return Err(AuditError::InvalidEnvelope {
            message: "the payload is not in RFC 8785 form".into(),
        });
    }
    let signed =
        check_signatures(&env, &pae(&env.payload_type, &payload), trusted).map_err(|why| {
            AuditError::Untrusted {
                bundle_id: new.bundle_id.clone(),
                message: why,
            }
        })?;
    if signed.len() != env.signatures.len() {
        return Err(AuditError::Untrusted {
            bundle_id: new.bundle_id.clone(),
            message: "a signature is by a key this store does not trust".into(),
        });
    }
    let Some(old) = existing else {
        let bytes = env.to_json();
        let event = StoreEvent::new(None, "stored", signed, &bytes)?;
        let record = Record {
            format: RECORD_FORMAT.into(),
            envelope: env,
            events: vec![event],
        };
        return Ok((Some(record), PutOutcome::Stored));
    };
    if old.envelope.payload != env.payload || old.envelope.payload_type != env.payload_type {
        return Err(AuditError::Conflict {
            bundle_id: new.bundle_id.clone(),
        });
    }
    let mut merged: Vec<EnvelopeSignature> = old.envelope.signatures.clone();
    let mut added = Vec::new();
    for s in &env.signatures {
        if merged.contains(s) {
            continue;
        }
        if merged.iter().any(|m| m.keyid == s.keyid) {
            // A second, different signature by a key that already signed:
            // another encoding of the same evidence.
            return Err(AuditError::Conflict {
                bundle_id: new.bundle_id.clone(),
            });
        }
        merged.push(s.clone());
        added.push(s.keyid.clone());
    }
    if added.is_empty() {
        return Ok((None, PutOutcome::AlreadyPresent));
    }
    if merged.len() > crate::limits::MAX_ENVELOPE_SIGNATURES {
        return Err(AuditError::InvalidEnvelope {
            message: format!(
                "the bundle would have more than {} signatures",
                crate::limits::MAX_ENVELOPE_SIGNATURES
            ),
        });
    }
    let envelope = Envelope {
        payload: old.envelope.payload.clone(),
        payload_type: old.envelope.payload_type.clone(),
        signatures: merged,
    };
    let mut events = old.events.clone();
    let event = StoreEvent::new(
        events.last(),
        "signatures_added",
        added.clone(),
        &envelope.to_json(),
    )?;
    events.push(event);
    Ok((
        Some(Record {
            format: RECORD_FORMAT.into(),
            envelope,
            events,
        }),
        PutOutcome::SignaturesAdded { key_ids: added },
    ))
}

/// Where bundles live. Synchronous and object-safe.
///
/// Reads of a store opened with trusted keys return only envelopes whose
/// every signature verifies under them: anything else read back (a record
/// planted in the store, a signature by an untrusted key) is an
/// [`AuditError::Untrusted`] naming where it was found, never a bundle.
pub trait BundleStore: Send + Sync {
    /// Store a bundle whose every signature verifies under the store's
    /// trusted keys; on an existing id, only add signatures. This does not
    /// move the workspace's chain head (see [`BundleStore::put_next`]).
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError>;
    /// Publish a bundle as the next link of its workspace's chain, in one
    /// atomic step with the choice of its previous bundle: only when its
    /// `previousBundleRef` is the chain's head ([`BundleStore::head`]; none
    /// for the first bundle), and its `createdAt` is not before the head's.
    /// Otherwise [`AuditError::ChainMoved`] (another run published first:
    /// chain to the new head and retry), or [`AuditError::InvalidInput`]
    /// for a `createdAt` behind the head's (a wrong clock). Racing writers
    /// of one workspace form one linear chain. A bundle already in the
    /// store is [`PutOutcome::AlreadyPresent`] (or gains signatures).
    fn put_next(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError>;
    /// Whether the store would publish `bundle` (its form, its signatures
    /// under the trusted keys), without writing: the flow asks before it
    /// commits a run's usage, so that a store that cannot take the
    /// evidence stops the run while nothing is spent. A store that cannot
    /// tell answers `Ok`.
    fn check_publishable(&self, bundle: &StoredBundle) -> Result<(), AuditError> {
        let _ = bundle;
        Ok(())
    }
    /// The head of a workspace's chain: the bundle the next one chains to
    /// (`None`: the workspace has no bundle yet), verified. Found without
    /// reading the chain.
    fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError>;
    /// The bundle with this id, checked against it.
    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError>;
    /// A workspace's bundles created in `[from, to)` (RFC 3339 bounds,
    /// either open), oldest first.
    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError>;
    /// How a stored bundle got its signatures (empty when it is not stored).
    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError>;
}

/// Check a bundle read back from a store against the store's trusted keys
/// (a store without keys is read-only and returns what hashes to its id).
/// `origin` names where it was found (a file, a row).
fn check_read(
    b: StoredBundle,
    trusted: &[TrustedKey],
    origin: &str,
) -> Result<StoredBundle, AuditError> {
    if trusted.is_empty() {
        return Ok(b);
    }
    let untrusted = |message: String| AuditError::Untrusted {
        bundle_id: b.bundle_id.clone(),
        message: format!("{message} (read from {origin})"),
    };
    let env = Envelope::from_json(&b.envelope).map_err(|e| untrusted(e.to_string()))?;
    let payload = env.payload_bytes().map_err(|e| untrusted(e.to_string()))?;
    // At least one signature by a trusted key, and every signature under a
    // trusted key id valid (others may be by keys other writers of the
    // store trust; they were checked by that writer).
    check_signatures(&env, &pae(&env.payload_type, &payload), trusted).map_err(untrusted)?;
    Ok(b)
}

/// The head of a chain from its bundles alone (for a store written before
/// chain heads were kept): the newest bundle that no other names as its
/// previous.
fn tip_of(bundles: Vec<StoredBundle>) -> Result<Option<StoredBundle>, AuditError> {
    let mut named = std::collections::BTreeSet::new();
    for b in &bundles {
        if let Some(p) = b.bundle()?.previous_bundle_ref {
            named.insert(p);
        }
    }
    Ok(bundles
        .into_iter()
        .rev()
        .find(|b| !named.contains(&b.bundle_id)))
}

/// Whether `new` may follow `head` in its workspace's chain.
fn check_next(new: &StoredBundle, head: Option<&StoredBundle>) -> Result<(), AuditError> {
    let previous = new.bundle()?.previous_bundle_ref;
    let head_id = head.map(|h| h.bundle_id.clone());
    if previous != head_id {
        return Err(AuditError::ChainMoved {
            workspace_id: new.workspace_id.clone(),
            expected: previous,
            head: head_id,
        });
    }
    if let Some(h) = head
        && Timestamp::parse(&new.created_at) < Timestamp::parse(&h.created_at)
    {
        return Err(AuditError::InvalidInput {
            pointer: "/createdAt".into(),
            message: format!(
                "{} is before {}, the createdAt of the chain's head {}: the clock that made it is behind",
                new.created_at, h.created_at, h.bundle_id
            ),
        });
    }
    Ok(())
}

fn in_range(created: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> bool {
    let Some(t) = Timestamp::parse(created) else {
        return false;
    };
    from.is_none_or(|f| t >= f) && to.is_none_or(|e| t < e)
}

fn bound(s: Option<&str>, name: &str) -> Result<Option<Timestamp>, AuditError> {
    s.map(|s| {
        Timestamp::parse(s).ok_or_else(|| AuditError::InvalidInput {
            pointer: String::new(),
            message: format!("{name} must be an RFC 3339 date-time (got {s:?})"),
        })
    })
    .transpose()
}

fn sort(v: &mut [StoredBundle]) {
    v.sort_by_key(|b| (Timestamp::parse(&b.created_at), b.bundle_id.clone()));
}

/// A store in memory.
#[derive(Debug, Default)]
pub struct MemoryBundleStore {
    trusted: Vec<TrustedKey>,
    records: Mutex<BTreeMap<String, Record>>,
    /// Workspace -> the id of its chain's head (taken before `records`).
    heads: Mutex<BTreeMap<String, String>>,
}

impl MemoryBundleStore {
    /// An empty store publishing envelopes signed by these keys (none: read-only).
    pub fn new(trusted_keys: Vec<TrustedKey>) -> Self {
        MemoryBundleStore {
            trusted: trusted_keys,
            records: Mutex::default(),
            heads: Mutex::default(),
        }
    }
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Record>>, AuditError> {
        self.records.lock().map_err(|_| AuditError::Storage {
            message: "store lock poisoned".into(),
        })
    }
}

impl BundleStore for MemoryBundleStore {
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        let mut m = self.lock()?;
        let (record, outcome) = plan_put(m.get(&bundle.bundle_id), bundle, &self.trusted)?;
        if let Some(r) = record {
            m.insert(bundle.bundle_id.clone(), r);
        }
        Ok(outcome)
    }
    fn put_next(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        let mut heads = self.heads.lock().map_err(|_| AuditError::Storage {
            message: "store lock poisoned".into(),
        })?;
        if self.get(&bundle.bundle_id)?.is_none() {
            let head = match heads.get(&bundle.workspace_id) {
                Some(id) => self.get(id)?,
                None => None,
            };
            check_next(bundle, head.as_ref())?;
        }
        let outcome = self.put(bundle)?;
        if outcome == PutOutcome::Stored {
            heads.insert(bundle.workspace_id.clone(), bundle.bundle_id.clone());
        }
        Ok(outcome)
    }
    fn check_publishable(&self, bundle: &StoredBundle) -> Result<(), AuditError> {
        plan_put(None, bundle, &self.trusted).map(|_| ())
    }
    fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        let id = self
            .heads
            .lock()
            .map_err(|_| AuditError::Storage {
                message: "store lock poisoned".into(),
            })?
            .get(workspace_id)
            .cloned();
        match id {
            Some(id) => self.get(&id),
            None => tip_of(self.list(workspace_id, None, None)?),
        }
    }
    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        check_bundle_id(bundle_id)?;
        self.lock()?
            .get(bundle_id)
            .map(|r| {
                r.check(bundle_id)
                    .and_then(|b| check_read(b, &self.trusted, "memory"))
            })
            .transpose()
    }
    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        let (f, t) = (bound(from, "from")?, bound(to, "to")?);
        let mut v = Vec::new();
        for (id, r) in self.lock()?.iter() {
            let b = r.check(id)?;
            if b.workspace_id == workspace_id && in_range(&b.created_at, f, t) {
                v.push(check_read(b, &self.trusted, "memory")?);
            }
        }
        sort(&mut v);
        Ok(v)
    }
    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        check_bundle_id(bundle_id)?;
        Ok(self
            .lock()?
            .get(bundle_id)
            .map(|r| r.events.clone())
            .unwrap_or_default())
    }
}

#[cfg(feature = "fs")]
pub use fs_store::FileBundleStore;

#[cfg(feature = "fs")]
mod fs_store {
    use std::fs::{self, File};
    use std::io::{self, Read, Write};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use flate2::Compression;
    use flate2::read::GzDecoder;
    use flate2::write::GzEncoder;

    use super::*;

    /// Largest decompressed file read back (a guard against gzip bombs).
    const MAX_FILE: u64 = crate::limits::MAX_DOCUMENT_BYTES as u64;

    /// A store on the filesystem:
    /// `audit-bundles/YYYY-MM-DD/bundle-<workspaceId>-<timestamp>-<short id>.json.gz`
    /// (date and timestamp from the bundle's createdAt, never the clock)
    /// holds the envelope and its store history,
    /// `audit-snapshots/<bundle id hex>/contract.json.gz` the contract
    /// snapshot, `locks/<bundle id hex>.lock` serializes writers of one
    /// bundle across threads and processes.
    ///
    /// A write takes the bundle's lock, reads what is stored, decides (new,
    /// signatures added, nothing, or refused), writes the snapshot and then
    /// the bundle each to a temporary file, fsyncs it, renames it into
    /// place and fsyncs its directory, and every directory it created: a
    /// crash leaves the old state or the new one, and two writers cannot
    /// both win.
    #[derive(Debug)]
    pub struct FileBundleStore {
        root: PathBuf,
        trusted: Vec<TrustedKey>,
        fail_at_step: AtomicUsize,
    }

    static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

    fn io_err(what: &str, path: &Path, e: io::Error) -> AuditError {
        AuditError::Storage {
            message: format!("{what} {}: {e}", path.display()),
        }
    }

    fn safe_name(s: &str) -> String {
        s.chars()
            .take(64)
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    fn hex_of(bundle_id: &str) -> Result<&str, AuditError> {
        check_bundle_id(bundle_id)?;
        Ok(bundle_id.get("sha256:".len()..).unwrap_or_default())
    }

    /// The steps of one write, counted for failure injection.
    struct Steps {
        done: usize,
        fail_at: usize,
    }

    impl Steps {
        fn step(&mut self, what: &str) -> io::Result<()> {
            let n = self.done;
            self.done += 1;
            if n == self.fail_at {
                return Err(io::Error::other(format!(
                    "injected failure at step {n} ({what})"
                )));
            }
            Ok(())
        }
    }

    impl FileBundleStore {
        /// A store rooted at `root` (created when missing) that publishes
        /// envelopes signed by `trusted_keys`; with no keys it is
        /// read-only (`put` is refused).
        pub fn open(
            root: impl AsRef<Path>,
            trusted_keys: Vec<TrustedKey>,
        ) -> Result<Self, AuditError> {
            let root = root.as_ref().to_path_buf();
            for d in ["audit-bundles", "audit-snapshots", "locks", "heads"] {
                fs::create_dir_all(root.join(d)).map_err(|e| io_err("create", &root, e))?;
            }
            Ok(FileBundleStore {
                root,
                trusted: trusted_keys,
                fail_at_step: AtomicUsize::new(usize::MAX),
            })
        }

        /// Make the `n`-th I/O step (0-based) of each later write fail, as
        /// a crash there would (for tests of atomicity); `usize::MAX` turns
        /// it off.
        pub fn inject_failure_at_step(&self, n: usize) {
            self.fail_at_step.store(n, Ordering::SeqCst);
        }

        /// Path of a bundle's file.
        pub fn bundle_path(&self, b: &StoredBundle) -> Result<PathBuf, AuditError> {
            let hex = hex_of(&b.bundle_id)?;
            let t = Timestamp::parse(&b.created_at).ok_or_else(|| AuditError::Storage {
                message: "bad createdAt".into(),
            })?;
            let stamp: String = t
                .to_rfc3339()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect();
            Ok(self.root.join("audit-bundles").join(t.date()).join(format!(
                "bundle-{}-{stamp}-{}.json.gz",
                safe_name(&b.workspace_id),
                hex.get(..16).unwrap_or(hex)
            )))
        }

        /// Path of the contract snapshot of a bundle (the id is checked).
        pub fn snapshot_path(&self, bundle_id: &str) -> Result<PathBuf, AuditError> {
            Ok(self
                .root
                .join("audit-snapshots")
                .join(hex_of(bundle_id)?)
                .join("contract.json.gz"))
        }

        fn lock_path(&self, bundle_id: &str) -> Result<PathBuf, AuditError> {
            Ok(self
                .root
                .join("locks")
                .join(format!("{}.lock", hex_of(bundle_id)?)))
        }

        /// The name of a workspace's files: its safe name and a hash of the
        /// real one (two workspaces never share it).
        fn workspace_key(workspace_id: &str) -> String {
            let hash = jcs::hex(&<sha2::Sha256 as sha2::Digest>::digest(
                workspace_id.as_bytes(),
            ));
            format!(
                "{}-{}",
                safe_name(workspace_id),
                hash.get(..16).unwrap_or(&hash)
            )
        }

        fn head_path(&self, workspace_id: &str) -> PathBuf {
            self.root
                .join("heads")
                .join(format!("{}.json.gz", Self::workspace_key(workspace_id)))
        }

        /// Take an exclusive lock on `path` (made when missing; never
        /// through a symbolic link), held until the file is dropped.
        fn take_lock(&self, path: &Path) -> Result<File, AuditError> {
            self.no_links(path.parent().unwrap_or(&self.root))?;
            let mut options = fs::OpenOptions::new();
            options.create(true).truncate(false).write(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.custom_flags(libc::O_NOFOLLOW);
            }
            let lock = options
                .open(path)
                .map_err(|e| io_err("open lock", path, e))?;
            lock.lock().map_err(|e| io_err("lock", path, e))?;
            Ok(lock)
        }

        /// Refuse a path below the root any of whose existing parts is a
        /// symbolic link: the store makes none, so one was planted, and
        /// writing or locking through it would reach outside the store.
        fn no_links(&self, path: &Path) -> Result<(), AuditError> {
            let Ok(rel) = path.strip_prefix(&self.root) else {
                return Err(AuditError::Storage {
                    message: format!("{} is outside the store", path.display()),
                });
            };
            let mut at = self.root.clone();
            for part in rel.components() {
                at.push(part);
                match fs::symlink_metadata(&at) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(AuditError::Storage {
                            message: format!(
                                "{} is a symbolic link: the store makes none and does not follow one",
                                at.display()
                            ),
                        });
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) => return Err(io_err("inspect", &at, e)),
                }
            }
            Ok(())
        }

        /// The head record of a workspace: `{"head": id, "previous": id}`,
        /// written before the head bundle itself, so that a crash between
        /// the two leaves a pointer to a bundle that is not stored, read
        /// as its previous.
        fn read_head(&self, workspace_id: &str) -> Result<Option<HeadRecord>, AuditError> {
            let path = self.head_path(workspace_id);
            match fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("inspect", &path, e)),
                Ok(m) if !m.file_type().is_file() => {
                    return Err(AuditError::Corrupt {
                        bundle_id: path.display().to_string(),
                        message: "a chain head must be a regular file".into(),
                    });
                }
                Ok(_) => {}
            }
            let bytes = Self::read_gz(&path)?;
            let head: HeadRecord =
                serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: format!("not a chain head: {e}"),
                })?;
            for id in std::iter::once(&head.head).chain(head.previous.iter()) {
                check_bundle_id(id).map_err(|e| AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: e.to_string(),
                })?;
            }
            if head.workspace_id != workspace_id {
                return Err(AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: format!("the head of workspace {:?}", head.workspace_id),
                });
            }
            Ok(Some(head))
        }

        /// The head bundle, from the head record (or, for a store written
        /// before heads were kept, from the chain).
        fn current_head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
            let Some(h) = self.read_head(workspace_id)? else {
                return tip_of(self.list(workspace_id, None, None)?);
            };
            if let Some(b) = self.get(&h.head)? {
                return Ok(Some(b));
            }
            match &h.previous {
                None => Ok(None),
                Some(p) => self.get(p)?.map(Some).ok_or_else(|| AuditError::Corrupt {
                    bundle_id: p.clone(),
                    message: format!(
                        "the chain head of workspace {workspace_id:?} names it, and it is not stored"
                    ),
                }),
            }
        }

        /// Create `dir` and its missing parents under the root, fsyncing
        /// the parent of each directory created.
        fn create_dirs(&self, dir: &Path, steps: &mut Steps) -> io::Result<()> {
            self.no_links(dir)
                .map_err(|e| io::Error::other(e.to_string()))?;
            let mut missing = Vec::new();
            let mut d = dir;
            while fs::symlink_metadata(d).is_err() {
                missing.push(d.to_path_buf());
                match d.parent() {
                    Some(p) if p.starts_with(&self.root) => d = p,
                    _ => break,
                }
            }
            for m in missing.iter().rev() {
                steps.step("create directory")?;
                match fs::create_dir(m) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(e),
                }
                if let Some(parent) = m.parent() {
                    steps.step("fsync parent directory")?;
                    File::open(parent)?.sync_all()?;
                }
            }
            Ok(())
        }

        /// Write `bytes` gzipped to `path` atomically (the caller holds the
        /// bundle's lock): temporary file, fsync, rename, fsync directory.
        fn write_atomic(
            &self,
            path: &Path,
            bytes: &[u8],
            steps: &mut Steps,
        ) -> Result<(), AuditError> {
            let dir = path.parent().ok_or_else(|| AuditError::Storage {
                message: "no parent".into(),
            })?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            let tmp = dir.join(format!(
                ".tmp-{}-{}-{name}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let result = (|| -> io::Result<()> {
                self.create_dirs(dir, steps)?;
                steps.step("create temporary file")?;
                let file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                let mut gz = GzEncoder::new(file, Compression::default());
                gz.write_all(bytes)?;
                steps.step("write")?;
                let file = gz.finish()?;
                steps.step("fsync file")?;
                file.sync_all()?;
                steps.step("rename into place")?;
                fs::rename(&tmp, path)?;
                steps.step("fsync directory")?;
                File::open(dir)?.sync_all()
            })();
            if let Err(e) = result {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("write", path, e));
            }
            Ok(())
        }

        fn read_gz(path: &Path) -> Result<Vec<u8>, AuditError> {
            let f = File::open(path).map_err(|e| io_err("open", path, e))?;
            let mut out = Vec::new();
            GzDecoder::new(f)
                .take(MAX_FILE + 1)
                .read_to_end(&mut out)
                .map_err(|e| io_err("read", path, e))?;
            if out.len() as u64 > MAX_FILE {
                return Err(AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: format!("more than {MAX_FILE} bytes decompressed"),
                });
            }
            Ok(out)
        }

        /// Every stored bundle file (temporary files excluded).
        fn files(&self) -> Result<Vec<PathBuf>, AuditError> {
            let base = self.root.join("audit-bundles");
            let mut out = Vec::new();
            let planted = |p: &Path| AuditError::Corrupt {
                bundle_id: p.display().to_string(),
                message:
                    "a symbolic link in the store: the store makes none and does not follow one"
                        .into(),
            };
            for day in fs::read_dir(&base).map_err(|e| io_err("list", &base, e))? {
                let day = day.map_err(|e| io_err("list", &base, e))?;
                let kind = day.file_type().map_err(|e| io_err("list", &base, e))?;
                let day = day.path();
                if kind.is_symlink() {
                    return Err(planted(&day));
                }
                if !kind.is_dir() {
                    continue;
                }
                for f in fs::read_dir(&day).map_err(|e| io_err("list", &day, e))? {
                    let f = f.map_err(|e| io_err("list", &day, e))?;
                    let kind = f.file_type().map_err(|e| io_err("list", &day, e))?;
                    let p = f.path();
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with("bundle-") && name.ends_with(".json.gz") {
                        if !kind.is_file() {
                            return Err(planted(&p));
                        }
                        out.push(p);
                    }
                }
            }
            out.sort();
            Ok(out)
        }

        /// A record file, parsed but not yet checked against an id.
        fn read_record(path: &Path) -> Result<Record, AuditError> {
            let bytes = Self::read_gz(path)?;
            serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt {
                bundle_id: path.display().to_string(),
                message: format!("not a stored bundle: {e}"),
            })
        }

        fn load(&self, path: &Path) -> Result<StoredBundle, AuditError> {
            let r = Self::read_record(path)?;
            let id = StoredBundle::from_envelope(&r.envelope.to_json())
                .map_err(|e| AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: e.to_string(),
                })?
                .bundle_id;
            check_read(r.check(&id)?, &self.trusted, &path.display().to_string())
        }

        /// The file of the bundle with this id, if stored.
        fn find(&self, bundle_id: &str) -> Result<Option<PathBuf>, AuditError> {
            let hex = hex_of(bundle_id)?;
            let suffix = format!("-{}.json.gz", hex.get(..16).unwrap_or(hex));
            Ok(self.files()?.into_iter().find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
            }))
        }

        fn record_of(&self, bundle_id: &str) -> Result<Option<(PathBuf, Record)>, AuditError> {
            let Some(p) = self.find(bundle_id)? else {
                return Ok(None);
            };
            let r = Self::read_record(&p)?;
            r.check(bundle_id)?;
            Ok(Some((p, r)))
        }

        /// The contract snapshot stored with a bundle (canonical JSON),
        /// checked against the snapshot inside the bundle that names it;
        /// `None` when the bundle is not stored.
        pub fn get_snapshot(&self, bundle_id: &str) -> Result<Option<Vec<u8>>, AuditError> {
            let path = self.snapshot_path(bundle_id)?;
            let Some(bundle) = self.get(bundle_id)? else {
                return Ok(None);
            };
            let expected = snapshot_bytes(&bundle)?;
            let bytes = Self::read_gz(&path)?;
            if bytes != expected {
                return Err(AuditError::Corrupt {
                    bundle_id: bundle_id.to_string(),
                    message: "the stored contract snapshot is not the one the bundle holds".into(),
                });
            }
            Ok(Some(bytes))
        }
    }

    /// A workspace's chain head, as the file store keeps it.
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct HeadRecord {
        workspace_id: String,
        head: String,
        previous: Option<String>,
    }

    /// The canonical bytes of a bundle's contract snapshot.
    fn snapshot_bytes(b: &StoredBundle) -> Result<Vec<u8>, AuditError> {
        let v = serde_json::to_value(&b.bundle()?.contract)
            .map_err(|e| AuditError::internal(&e.to_string()))?;
        Ok(jcs::canonicalize_value(&v)?)
    }

    impl BundleStore for FileBundleStore {
        fn put(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
            check_bundle_id(&b.bundle_id)?;
            if self.trusted.is_empty() {
                return plan_put(None, b, &self.trusted).map(|(_, o)| o);
            }
            let lock = self.take_lock(&self.lock_path(&b.bundle_id)?)?;
            let mut steps = Steps {
                done: 0,
                fail_at: self.fail_at_step.load(Ordering::SeqCst),
            };
            // Under the lock: read, decide, write. (The lock is released
            // when `lock` is dropped, whatever happens.)
            let existing = self.record_of(&b.bundle_id)?;
            let (record, outcome) = plan_put(existing.as_ref().map(|(_, r)| r), b, &self.trusted)?;
            let Some(record) = record else {
                return Ok(outcome);
            };
            let path = match &existing {
                Some((p, _)) => p.clone(),
                None => self.bundle_path(b)?,
            };
            if existing.is_none() {
                // The snapshot first: a visible bundle always has its snapshot.
                let snapshot = snapshot_bytes(b)?;
                self.write_atomic(&self.snapshot_path(&b.bundle_id)?, &snapshot, &mut steps)?;
            }
            let bytes =
                serde_json::to_vec(&record).map_err(|e| AuditError::internal(&e.to_string()))?;
            let canonical = jcs::canonicalize(&bytes)?;
            self.write_atomic(&path, &canonical, &mut steps)?;
            drop(lock);
            Ok(outcome)
        }

        fn put_next(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
            check_bundle_id(&b.bundle_id)?;
            if self.trusted.is_empty() {
                return plan_put(None, b, &self.trusted).map(|(_, o)| o);
            }
            // The workspace's lock serializes the choice of the head and
            // the publication: one winner per head, by construction.
            let key = Self::workspace_key(&b.workspace_id);
            let lock = self.take_lock(&self.root.join("locks").join(format!("ws-{key}.lock")))?;
            if self.record_of(&b.bundle_id)?.is_some() {
                let outcome = self.put(b)?;
                drop(lock);
                return Ok(outcome);
            }
            let head = self.current_head(&b.workspace_id)?;
            check_next(b, head.as_ref())?;
            // Check the bundle as `put` will before the head moves to it.
            plan_put(None, b, &self.trusted)?;
            let record = HeadRecord {
                workspace_id: b.workspace_id.clone(),
                head: b.bundle_id.clone(),
                previous: head.map(|h| h.bundle_id),
            };
            let bytes =
                serde_json::to_vec(&record).map_err(|e| AuditError::internal(&e.to_string()))?;
            let mut steps = Steps {
                done: 0,
                fail_at: usize::MAX,
            };
            self.write_atomic(&self.head_path(&b.workspace_id), &bytes, &mut steps)?;
            let outcome = self.put(b)?;
            drop(lock);
            Ok(outcome)
        }

        fn check_publishable(&self, b: &StoredBundle) -> Result<(), AuditError> {
            plan_put(None, b, &self.trusted).map(|_| ())
        }

        fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
            self.current_head(workspace_id)
        }

        fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
            self.record_of(bundle_id)?
                .map(|(p, r)| {
                    check_read(r.check(bundle_id)?, &self.trusted, &p.display().to_string())
                })
                .transpose()
        }

        fn list(
            &self,
            workspace_id: &str,
            from: Option<&str>,
            to: Option<&str>,
        ) -> Result<Vec<StoredBundle>, AuditError> {
            let (f, t) = (bound(from, "from")?, bound(to, "to")?);
            let prefix = format!("bundle-{}-", safe_name(workspace_id));
            let mut v = Vec::new();
            for p in self.files()? {
                if !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
                {
                    continue;
                }
                let b = self.load(&p)?;
                if b.workspace_id == workspace_id && in_range(&b.created_at, f, t) {
                    v.push(b);
                }
            }
            sort(&mut v);
            Ok(v)
        }

        fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
            Ok(self
                .record_of(bundle_id)?
                .map(|(_, r)| r.events)
                .unwrap_or_default())
        }
    }
}
