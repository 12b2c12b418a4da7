//! Bundle storage: a trait, an in-memory store, and (feature `fs`) a
//! filesystem store with atomic writes. A store never overwrites: putting
//! the same bytes again is a no-op, different bytes under an existing id are
//! an error. Reads check that the bytes still hash to their id.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::AuditError;
use super::bundle::AuditBundle;
use super::dsse::Envelope;
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
    /// The envelope (JSON bytes).
    pub envelope: Vec<u8>,
}

impl StoredBundle {
    /// Read an envelope's payload to learn its id, workspace and time. This
    /// does not verify the signature (see [`super::verify_envelope`]).
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
            envelope: envelope.to_vec(),
        })
    }

    /// The bundle inside.
    pub fn bundle(&self) -> Result<AuditBundle, AuditError> {
        let payload = Envelope::from_json(&self.envelope)?.payload_bytes()?;
        serde_json::from_slice(&payload).map_err(|e| AuditError::InvalidEnvelope {
            message: e.to_string(),
        })
    }

    fn check_id(&self, expected: &str) -> Result<(), AuditError> {
        let fresh =
            StoredBundle::from_envelope(&self.envelope).map_err(|e| AuditError::Corrupt {
                bundle_id: expected.into(),
                message: e.to_string(),
            })?;
        if fresh.bundle_id != expected {
            return Err(AuditError::Corrupt {
                bundle_id: expected.into(),
                message: format!("content hashes to {}", fresh.bundle_id),
            });
        }
        Ok(())
    }
}

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    /// Newly stored.
    Stored,
    /// The same bytes were already there.
    AlreadyPresent,
}

/// Where bundles live. Synchronous and object-safe.
pub trait BundleStore: Send + Sync {
    /// Store a bundle; never overwrites.
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError>;
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
    bundles: Mutex<BTreeMap<String, StoredBundle>>,
}

impl MemoryBundleStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, StoredBundle>>, AuditError> {
        self.bundles.lock().map_err(|_| AuditError::Storage {
            message: "store lock poisoned".into(),
        })
    }
}

impl BundleStore for MemoryBundleStore {
    fn put(&self, bundle: &StoredBundle) -> Result<PutOutcome, AuditError> {
        bundle.check_id(&bundle.bundle_id)?;
        let mut m = self.lock()?;
        match m.get(&bundle.bundle_id) {
            Some(old) if old.envelope == bundle.envelope => Ok(PutOutcome::AlreadyPresent),
            Some(_) => Err(AuditError::Conflict {
                bundle_id: bundle.bundle_id.clone(),
            }),
            None => {
                m.insert(bundle.bundle_id.clone(), bundle.clone());
                Ok(PutOutcome::Stored)
            }
        }
    }
    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        let b = self.lock()?.get(bundle_id).cloned();
        if let Some(b) = &b {
            b.check_id(bundle_id)?;
        }
        Ok(b)
    }
    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        let (f, t) = (bound(from, "from")?, bound(to, "to")?);
        let mut v: Vec<StoredBundle> = self
            .lock()?
            .values()
            .filter(|b| b.workspace_id == workspace_id && in_range(&b.created_at, f, t))
            .cloned()
            .collect();
        sort(&mut v);
        Ok(v)
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
    const MAX_FILE: u64 = 256 << 20;

    /// A store on the filesystem:
    /// `audit-bundles/YYYY-MM-DD/bundle-<workspaceId>-<timestamp>-<short id>.json.gz`
    /// (date and timestamp from the bundle's createdAt, never the clock) and
    /// `audit-snapshots/<bundle id hex>/contract.json.gz`. Every file is
    /// written to a temporary name, fsynced, renamed into place, and its
    /// directory fsynced: a crash leaves the whole file or nothing.
    #[derive(Debug)]
    pub struct FileBundleStore {
        root: PathBuf,
        fail_after: AtomicUsize,
    }

    static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

    fn io_err(what: &str, path: &Path, e: io::Error) -> AuditError {
        AuditError::Storage {
            message: format!("{what} {}: {e}", path.display()),
        }
    }

    fn safe_name(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// A writer that fails after a set number of bytes (crash testing).
    struct Limited<W: Write> {
        inner: W,
        left: usize,
    }

    impl<W: Write> Write for Limited<W> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("injected write failure"));
            }
            let n = buf.len().min(self.left);
            let w = self.inner.write(buf.get(..n).unwrap_or(&[]))?;
            self.left -= w;
            Ok(w)
        }
        fn flush(&mut self) -> io::Result<()> {
            self.inner.flush()
        }
    }

    impl FileBundleStore {
        /// A store rooted at `root` (created when missing).
        pub fn open(root: impl AsRef<Path>) -> Result<Self, AuditError> {
            let root = root.as_ref().to_path_buf();
            fs::create_dir_all(root.join("audit-bundles"))
                .map_err(|e| io_err("create", &root, e))?;
            fs::create_dir_all(root.join("audit-snapshots"))
                .map_err(|e| io_err("create", &root, e))?;
            Ok(FileBundleStore {
                root,
                fail_after: AtomicUsize::new(usize::MAX),
            })
        }

        /// Make every later file write fail after `bytes` bytes, as a crash
        /// would (for tests of atomicity). `usize::MAX` turns it off.
        pub fn inject_write_failure_after(&self, bytes: usize) {
            self.fail_after.store(bytes, Ordering::SeqCst);
        }

        /// Path of a bundle.
        pub fn bundle_path(&self, b: &StoredBundle) -> Result<PathBuf, AuditError> {
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
                short_id(&b.bundle_id)
            )))
        }

        /// Path of the contract snapshot of a bundle.
        pub fn snapshot_path(&self, bundle_id: &str) -> PathBuf {
            self.root
                .join("audit-snapshots")
                .join(bundle_id.trim_start_matches("sha256:"))
                .join("contract.json.gz")
        }

        fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), AuditError> {
            let dir = path.parent().ok_or_else(|| AuditError::Storage {
                message: "no parent".into(),
            })?;
            fs::create_dir_all(dir).map_err(|e| io_err("create", dir, e))?;
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
            let tmp = dir.join(format!(
                ".tmp-{}-{}-{name}",
                std::process::id(),
                TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let result = (|| -> io::Result<()> {
                let file = File::create(&tmp)?;
                let limit = self.fail_after.load(Ordering::SeqCst);
                let mut gz = GzEncoder::new(
                    Limited {
                        inner: file,
                        left: limit,
                    },
                    Compression::default(),
                );
                gz.write_all(bytes)?;
                let limited = gz.finish()?;
                limited.inner.sync_all()?;
                fs::rename(&tmp, path)?;
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
                .take(MAX_FILE)
                .read_to_end(&mut out)
                .map_err(|e| io_err("read", path, e))?;
            Ok(out)
        }

        /// Every stored bundle file (temporary files excluded).
        fn files(&self) -> Result<Vec<PathBuf>, AuditError> {
            let base = self.root.join("audit-bundles");
            let mut out = Vec::new();
            for day in fs::read_dir(&base).map_err(|e| io_err("list", &base, e))? {
                let day = day.map_err(|e| io_err("list", &base, e))?.path();
                if !day.is_dir() {
                    continue;
                }
                for f in fs::read_dir(&day).map_err(|e| io_err("list", &day, e))? {
                    let p = f.map_err(|e| io_err("list", &day, e))?.path();
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    if name.starts_with("bundle-") && name.ends_with(".json.gz") {
                        out.push(p);
                    }
                }
            }
            out.sort();
            Ok(out)
        }

        fn load(path: &Path) -> Result<StoredBundle, AuditError> {
            let bytes = Self::read_gz(path)?;
            StoredBundle::from_envelope(&bytes).map_err(|e| AuditError::Corrupt {
                bundle_id: path.display().to_string(),
                message: e.to_string(),
            })
        }

        /// The contract snapshot stored with a bundle (canonical JSON).
        pub fn get_snapshot(&self, bundle_id: &str) -> Result<Option<Vec<u8>>, AuditError> {
            let p = self.snapshot_path(bundle_id);
            if !p.exists() {
                return Ok(None);
            }
            Self::read_gz(&p).map(Some)
        }
    }

    fn short_id(id: &str) -> String {
        id.trim_start_matches("sha256:").chars().take(16).collect()
    }

    impl BundleStore for FileBundleStore {
        fn put(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
            b.check_id(&b.bundle_id)?;
            let path = self.bundle_path(b)?;
            if path.exists() {
                let old = Self::load(&path)?;
                return if old.envelope == b.envelope {
                    Ok(PutOutcome::AlreadyPresent)
                } else {
                    Err(AuditError::Conflict {
                        bundle_id: b.bundle_id.clone(),
                    })
                };
            }
            // The snapshot first: a visible bundle always has its snapshot.
            let bundle = b.bundle()?;
            let snapshot = serde_json::to_value(&bundle.contract)
                .map_err(|e| AuditError::Storage {
                    message: e.to_string(),
                })
                .and_then(|v| Ok(jcs::canonicalize_value(&v)?))?;
            self.write_atomic(&self.snapshot_path(&b.bundle_id), &snapshot)?;
            self.write_atomic(&path, &b.envelope)?;
            Ok(PutOutcome::Stored)
        }

        fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
            let suffix = format!("-{}.json.gz", short_id(bundle_id));
            for p in self.files()? {
                if p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(&suffix))
                {
                    let b = Self::load(&p)?;
                    if b.bundle_id == bundle_id {
                        return Ok(Some(b));
                    }
                    return Err(AuditError::Corrupt {
                        bundle_id: bundle_id.into(),
                        message: format!("{} holds {}", p.display(), b.bundle_id),
                    });
                }
            }
            Ok(None)
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
                let b = Self::load(&p)?;
                if b.workspace_id == workspace_id && in_range(&b.created_at, f, t) {
                    v.push(b);
                }
            }
            sort(&mut v);
            Ok(v)
        }
    }
}
