//! The bundle store in a directory (feature `fs`).

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
        source: Some(crate::kind::Cause::new(e)),
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
    pub fn open(root: impl AsRef<Path>, trusted_keys: Vec<TrustedKey>) -> Result<Self, AuditError> {
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

    /// Every bundle of every workspace, each verified as [`BundleStore::get`]
    /// verifies it, oldest first (for tools that take an id prefix or find
    /// a store's workspaces; a service lists by workspace).
    pub fn all(&self) -> Result<Vec<StoredBundle>, AuditError> {
        let mut v = Vec::new();
        for p in self.files()? {
            v.push(self.load(&p)?);
        }
        sort(&mut v);
        Ok(v)
    }

    /// Path of a bundle's file.
    pub fn bundle_path(&self, b: &StoredBundle) -> Result<PathBuf, AuditError> {
        let hex = hex_of(&b.bundle_id)?;
        let t = Timestamp::parse(&b.created_at).ok_or_else(|| AuditError::Storage {
            message: "bad createdAt".into(),
            source: None,
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
                source: None,
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
                        source: None,
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
        let head: HeadRecord = serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt {
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
    fn write_atomic(&self, path: &Path, bytes: &[u8], steps: &mut Steps) -> Result<(), AuditError> {
        let dir = path.parent().ok_or_else(|| AuditError::Storage {
            message: "no parent".into(),
            source: None,
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
            message: "a symbolic link in the store: the store makes none and does not follow one"
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
            .map(|(p, r)| check_read(r.check(bundle_id)?, &self.trusted, &p.display().to_string()))
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
