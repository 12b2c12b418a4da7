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

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::AuditError;
use super::bundle::{AuditBundle, is_sha256_ref};
use super::dsse::{BUNDLE_PAYLOAD_TYPE, Envelope, EnvelopeSignature, Opened, pae};
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
            source: None,
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
    if !jcs::is_canonical(&payload)? {
        return Err(AuditError::InvalidEnvelope {
            message: "the payload is not in RFC 8785 form".into(),
        });
    }
    let signed = check_signatures(&env.signatures, &pae(&env.payload_type, &payload), trusted)
        .map_err(|why| AuditError::Untrusted {
            bundle_id: new.bundle_id.clone(),
            message: why,
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
    /// A page of a workspace's bundles, oldest first ((createdAt, id)
    /// order): at most `limit` (1 to [`crate::limits::MAX_PAGE`]) after the
    /// bundle `after` (none: from the first), and the next page's cursor
    /// when more may follow. Its cost grows with the page, not with the
    /// workspace's bundles, in the file and PostgreSQL stores.
    fn list_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<BundlePage, AuditError> {
        check_page(after, limit)?;
        let all = self.list(workspace_id, None, None)?;
        let start = match after {
            None => 0,
            Some(a) => {
                all.iter()
                    .position(|b| b.bundle_id == a)
                    .ok_or_else(|| unknown_cursor(workspace_id, a))?
                    + 1
            }
        };
        Ok(BundlePage::of(
            all.into_iter().skip(start).take(limit + 1).collect(),
            limit,
        ))
    }
}

/// One page of [`BundleStore::list_page`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundlePage {
    /// The bundles, oldest first.
    pub bundles: Vec<StoredBundle>,
    /// The cursor of the next page (the last bundle's id), when more follow.
    pub next: Option<String>,
}

impl BundlePage {
    /// A page from up to `limit + 1` bundles in order (one more than the
    /// page says that more follow).
    fn of(mut bundles: Vec<StoredBundle>, limit: usize) -> BundlePage {
        let more = bundles.len() > limit;
        bundles.truncate(limit);
        let next = if more {
            bundles.last().map(|b| b.bundle_id.clone())
        } else {
            None
        };
        BundlePage { bundles, next }
    }
}

fn check_page(after: Option<&str>, limit: usize) -> Result<(), AuditError> {
    if let Some(a) = after {
        check_bundle_id(a).map_err(|e| at_pointer(e, "/after"))?;
    }
    if !(1..=crate::limits::MAX_PAGE).contains(&limit) {
        return Err(AuditError::InvalidInput {
            pointer: "/limit".into(),
            message: format!(
                "a page holds 1 to {} bundles (got {limit})",
                crate::limits::MAX_PAGE
            ),
        });
    }
    Ok(())
}

/// An input error placed at `pointer` (the argument it came from).
fn at_pointer(e: AuditError, pointer: &str) -> AuditError {
    match e {
        AuditError::InvalidInput { message, .. } => AuditError::InvalidInput {
            pointer: pointer.into(),
            message,
        },
        other => other,
    }
}

fn unknown_cursor(workspace_id: &str, after: &str) -> AuditError {
    AuditError::InvalidInput {
        pointer: "/after".into(),
        message: format!("the cursor {after} is not a bundle of workspace {workspace_id:?}"),
    }
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
    // At least one signature by a trusted key, and every signature under a
    // trusted key id valid (others may be by keys other writers of the
    // store trust; they were checked by that writer), over a bundle's
    // payload type: a trusted key's signature over another type is no
    // bundle's, whatever the payload says. A stored envelope is in the
    // writer's form, so it opens without copies.
    let o = Opened::open(&b.envelope, BUNDLE_PAYLOAD_TYPE).map_err(|e| untrusted(e.to_string()))?;
    check_signatures(&o.signatures, o.pae(), trusted).map_err(untrusted)?;
    Ok(b)
}

/// A head a store's record names for `workspace_id`, checked to be a
/// bundle of that workspace: a head record is kept beside the evidence,
/// not signed, and one naming another workspace's bundle would chain this
/// workspace's next bundle into that workspace's chain.
fn head_of(workspace_id: &str, b: StoredBundle) -> Result<StoredBundle, AuditError> {
    if b.workspace_id != workspace_id {
        return Err(AuditError::Corrupt {
            message: format!(
                "the chain head of workspace {workspace_id:?} names a bundle of workspace {:?}",
                b.workspace_id
            ),
            bundle_id: b.bundle_id,
        });
    }
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
            pointer: format!("/{name}"),
            message: format!("{name} must be an RFC 3339 date-time (got {s:?})"),
        })
    })
    .transpose()
}

fn sort(v: &mut [StoredBundle]) {
    v.sort_by_key(|b| (Timestamp::parse(&b.created_at), b.bundle_id.clone()));
}

mod memory;
pub use memory::MemoryBundleStore;

#[cfg(feature = "fs")]
mod file;
#[cfg(feature = "fs")]
pub use file::FileBundleStore;

#[cfg(feature = "postgres")]
mod pg_store;
#[cfg(all(feature = "postgres", feature = "test-util"))]
#[doc(hidden)]
pub use pg_store::migrate_store_to;
#[cfg(feature = "postgres")]
pub use pg_store::{
    POSTGRES_STORE_SCHEMA_VERSION, PostgresBundleStore, StorePurge, StoreSchemaStatus,
    migrate_store, store_schema_status,
};
