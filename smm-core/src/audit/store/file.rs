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
///
/// `heads/<workspaceId>` names each chain's head, and
/// `audit-snapshots/<id hex>/successor.json.gz` the bundle `put_next`
/// chained to a bundle: a head record rolled back to an older bundle
/// (restored from an old copy, say) is answered `Corrupt` by `head` and
/// `put_next` instead of forking the chain. The store trusts whoever can
/// write its directory, as any file store must: one who also removes the
/// successor record (or the bundles) is not caught here, but by
/// [`crate::audit::verify_bundle_chain`] over what is left. A store
/// written before successor records were kept has none for its older
/// bundles (nothing to catch there, nothing falsely refused).
#[derive(Debug)]
pub struct FileBundleStore {
    root: PathBuf,
    trusted: Vec<TrustedKey>,
    fail_at_step: AtomicUsize,
}

/// How many times a reader reads a chain head that keeps moving under
/// it (a writer publishing meanwhile) before it gives up.
const HEAD_READS: u32 = 64;

static TMP_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A workspace in the store's registry.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RegistryEntry {
    workspace_id: String,
}

/// A bundle's locator: its file, relative to the store's root.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Locator {
    bundle: String,
}

/// A symbolic link where the store keeps its files: it makes none.
fn planted(p: &Path) -> AuditError {
    AuditError::Corrupt {
        bundle_id: p.display().to_string(),
        message: "a symbolic link in the store: the store makes none and does not follow one"
            .into(),
    }
}

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

/// What a bundle file's name says, as [`FileBundleStore::bundle_path`]
/// writes it (`bundle-<safe workspace>-<stamp>-<16 hex>.json.gz`): the
/// safe workspace name, and a key that sorts as (createdAt, id) do: the
/// stamp's `YYYYMMDDTHHMMSS`, its fraction's digits (written without
/// trailing zeros, so they compare as text), the id's first 16 hex digits.
/// `None` for a name of another form. No allocation: a day's directory is
/// read name by name.
fn name_key(name: &str) -> Option<(&str, NameKey<'_>)> {
    let rest = name.strip_prefix("bundle-")?.strip_suffix(".json.gz")?;
    let (rest, hex) = rest.rsplit_once('-')?;
    let (ws, stamp) = rest.rsplit_once('-')?;
    if hex.len() != 16 || !hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let digits = stamp.strip_suffix('Z')?;
    let (seconds, fraction) = (digits.get(..15)?, digits.get(15..)?);
    let fits = seconds.bytes().enumerate().all(|(i, c)| {
        if i == 8 {
            c == b'T'
        } else {
            c.is_ascii_digit()
        }
    }) && fraction.bytes().all(|c| c.is_ascii_digit());
    fits.then_some((ws, (seconds, fraction, hex)))
}

/// See [`name_key`].
type NameKey<'a> = (&'a str, &'a str, &'a str);

/// The marker file of a store whose every bundle has a locator.
const LOCATED: &str = "locators-complete";

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
    /// Steps that never fail.
    fn none() -> Steps {
        Steps {
            done: 0,
            fail_at: usize::MAX,
        }
    }

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
        let registry = root.join("workspaces");
        let registered = registry.is_dir();
        for d in [
            "audit-bundles",
            "audit-snapshots",
            "locks",
            "heads",
            "workspaces",
        ] {
            fs::create_dir_all(root.join(d)).map_err(|e| io_err("create", &root, e))?;
        }
        let store = FileBundleStore {
            root,
            trusted: trusted_keys,
            fail_at_step: AtomicUsize::new(usize::MAX),
        };
        let located = store.root.join(LOCATED).is_file();
        if !registered || !located {
            // A store written before the registry or the locators: register
            // its workspaces and give each bundle its locator, once, from
            // its bundles; then mark the locators complete (from then on a
            // missing locator means "not stored", without a scan).
            let mut seen = std::collections::BTreeSet::new();
            for p in store.files()? {
                let r = Self::read_record(&p)?;
                let b = StoredBundle::from_envelope(&r.envelope.to_json()).map_err(|e| {
                    AuditError::Corrupt {
                        bundle_id: p.display().to_string(),
                        message: e.to_string(),
                    }
                })?;
                if seen.insert(b.workspace_id.clone()) {
                    store.register(&b.workspace_id, &mut Steps::none())?;
                }
                if store.locate(&b.bundle_id)?.is_none() {
                    store.write_locator(&b.bundle_id, &p, &mut Steps::none())?;
                }
            }
            store.write_atomic(&store.root.join(LOCATED), b"1\n", &mut Steps::none())?;
        }
        Ok(store)
    }

    /// The workspaces the store holds bundles of, sorted: read from its
    /// registry (`workspaces/`, one small file each), not from its bundles.
    /// A registry file must name the workspace its file name is made of.
    pub fn workspaces(&self) -> Result<Vec<String>, AuditError> {
        let dir = self.root.join("workspaces");
        let mut out = Vec::new();
        for f in fs::read_dir(&dir).map_err(|e| io_err("list", &dir, e))? {
            let f = f.map_err(|e| io_err("list", &dir, e))?;
            let kind = f.file_type().map_err(|e| io_err("list", &dir, e))?;
            let p = f.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(".tmp-") || !name.ends_with(".json.gz") {
                continue;
            }
            if !kind.is_file() {
                return Err(planted(&p));
            }
            let entry: RegistryEntry =
                serde_json::from_slice(&Self::read_gz(&p)?).map_err(|e| AuditError::Corrupt {
                    bundle_id: p.display().to_string(),
                    message: format!("not a workspace registry entry: {e}"),
                })?;
            if format!("{}.json.gz", Self::workspace_key(&entry.workspace_id)) != name {
                return Err(AuditError::Corrupt {
                    bundle_id: p.display().to_string(),
                    message: format!(
                        "the registry entry names {:?}, not the workspace of its file",
                        entry.workspace_id.chars().take(80).collect::<String>()
                    ),
                });
            }
            out.push(entry.workspace_id);
        }
        out.sort();
        Ok(out)
    }

    /// The ids of stored bundles that start with `prefix` (`sha256:` and
    /// hex), sorted: file names first (they carry 16 hex digits of the id),
    /// then only the candidates read.
    pub fn ids_starting_with(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        let hex = prefix.strip_prefix("sha256:").unwrap_or(prefix);
        if hex.bytes().any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Ok(Vec::new());
        }
        let short = hex.get(..hex.len().min(16)).unwrap_or(hex);
        let mut out = Vec::new();
        for p in self.files()? {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let named = name
                .strip_suffix(".json.gz")
                .and_then(|n| n.rsplit('-').next())
                .is_some_and(|h| h.starts_with(short));
            if named {
                let b = self.load(&p)?;
                if b.bundle_id
                    .strip_prefix("sha256:")
                    .is_some_and(|h| h.starts_with(hex))
                {
                    out.push(b.bundle_id);
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Record a workspace in the registry (once).
    fn register(&self, workspace_id: &str, steps: &mut Steps) -> Result<(), AuditError> {
        let path = self
            .root
            .join("workspaces")
            .join(format!("{}.json.gz", Self::workspace_key(workspace_id)));
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file()) {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&RegistryEntry {
            workspace_id: workspace_id.to_string(),
        })
        .map_err(|e| AuditError::internal(&e.to_string()))?;
        self.write_atomic(&path, &bytes, steps)
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

    /// Where the record of the bundle that `put_next` chained to
    /// `bundle_id` is kept, beside its snapshot.
    fn successor_path(&self, bundle_id: &str) -> Result<PathBuf, AuditError> {
        Ok(self
            .root
            .join("audit-snapshots")
            .join(hex_of(bundle_id)?)
            .join("successor.json.gz"))
    }

    /// The bundle `put_next` chained to `bundle_id`, if any (checked: a
    /// regular file naming `bundle_id` and a well-formed id).
    fn read_successor(&self, bundle_id: &str) -> Result<Option<String>, AuditError> {
        let path = self.successor_path(bundle_id)?;
        let corrupt = |message: String| AuditError::Corrupt {
            bundle_id: bundle_id.to_string(),
            message: format!("{}: {message}", path.display()),
        };
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", &path, e)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(corrupt("a successor record must be a regular file".into()));
            }
            Ok(_) => {}
        }
        self.no_links(path.parent().unwrap_or(&self.root))?;
        let r: SuccessorRecord = serde_json::from_slice(&Self::read_gz(&path)?)
            .map_err(|e| corrupt(format!("not a successor record: {e}")))?;
        check_bundle_id(&r.next).map_err(|e| corrupt(e.to_string()))?;
        if r.bundle_id != bundle_id {
            return Err(corrupt(format!("the successor record of {}", r.bundle_id)));
        }
        Ok(Some(r.next))
    }

    /// Record that `next` was chained to `previous` (after `next` is
    /// stored: a crash before leaves no record, never a false one).
    fn write_successor(
        &self,
        workspace_id: &str,
        previous: &str,
        next: &str,
    ) -> Result<(), AuditError> {
        let record = SuccessorRecord {
            workspace_id: workspace_id.to_string(),
            bundle_id: previous.to_string(),
            next: next.to_string(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| AuditError::internal(&e.to_string()))?;
        self.write_atomic(&self.successor_path(previous)?, &bytes, &mut Steps::none())
    }

    /// Where a bundle's file is, written beside its snapshot when it is
    /// first stored: a lookup by id reads it instead of listing the store.
    fn locator_path(&self, bundle_id: &str) -> Result<PathBuf, AuditError> {
        Ok(self
            .root
            .join("audit-snapshots")
            .join(hex_of(bundle_id)?)
            .join("bundle.json.gz"))
    }

    /// The file the locator of `bundle_id` names: `Ok(None)` when there is
    /// no locator (a store written before them: the caller lists the
    /// store), `Ok(Some(None))` when the file it names is not there (the
    /// bundle is not stored). The path is checked before it is used: the
    /// store's own layout, the id's short form in the name, nothing that
    /// climbs out, no symbolic link.
    fn locate(&self, bundle_id: &str) -> Result<Option<Option<PathBuf>>, AuditError> {
        let locator = self.locator_path(bundle_id)?;
        match fs::symlink_metadata(&locator) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", &locator, e)),
            Ok(m) if !m.file_type().is_file() => {
                return Err(AuditError::Corrupt {
                    bundle_id: bundle_id.to_string(),
                    message: format!("{} is not a regular file", locator.display()),
                });
            }
            Ok(_) => {}
        }
        self.no_links(locator.parent().unwrap_or(&self.root))?;
        let corrupt = |message: String| AuditError::Corrupt {
            bundle_id: bundle_id.to_string(),
            message,
        };
        let l: Locator = serde_json::from_slice(&Self::read_gz(&locator)?)
            .map_err(|e| corrupt(format!("its locator does not read: {e}")))?;
        let hex = hex_of(bundle_id)?;
        let short = hex.get(..16).unwrap_or(hex);
        let parts: Vec<&str> = l.bundle.split('/').collect();
        let fits = match parts.as_slice() {
            ["audit-bundles", day, file] => {
                day.len() == 10
                    && day.bytes().enumerate().all(|(i, b)| {
                        if i == 4 || i == 7 {
                            b == b'-'
                        } else {
                            b.is_ascii_digit()
                        }
                    })
                    && file.starts_with("bundle-")
                    && file.ends_with(&format!("-{short}.json.gz"))
                    && file
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                    && !file.contains("..")
            }
            _ => false,
        };
        if !fits {
            return Err(corrupt(format!(
                "its locator names {:?}, not a bundle file of this id",
                l.bundle.chars().take(200).collect::<String>()
            )));
        }
        let path = parts.iter().fold(self.root.clone(), |p, part| p.join(part));
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Some(None)),
            Err(e) => Err(io_err("inspect", &path, e)),
            Ok(m) if m.file_type().is_file() => {
                self.no_links(path.parent().unwrap_or(&self.root))?;
                Ok(Some(Some(path)))
            }
            Ok(_) => Err(corrupt(format!(
                "{} is not a regular file: the store makes none and does not follow one",
                path.display()
            ))),
        }
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
    ///
    /// The open does not block (a FIFO planted as a lock file made every
    /// writer's open wait for a reader forever: it is refused, as is
    /// anything the open handle shows is not a regular file).
    fn take_lock(&self, path: &Path) -> Result<File, AuditError> {
        self.no_links(path.parent().unwrap_or(&self.root))?;
        let not_regular = || AuditError::Corrupt {
            bundle_id: path.display().to_string(),
            message: "a lock file that is not a regular file (a FIFO, socket or device): \
                      the store makes only regular files"
                .into(),
        };
        let mut options = fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
        }
        let lock = options.open(path).map_err(|e| {
            // A FIFO without a reader, or a socket, opened for writing
            // without blocking.
            #[cfg(unix)]
            if e.raw_os_error() == Some(libc::ENXIO) {
                return not_regular();
            }
            io_err("open lock", path, e)
        })?;
        let meta = lock.metadata().map_err(|e| io_err("open lock", path, e))?;
        if !meta.is_file() {
            return Err(not_regular());
        }
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
    ///
    /// A head that `put_next` already chained a bundle to (its successor
    /// record) is refused: the head record was rolled back (restored from
    /// an old copy, say), and a bundle chained to it would fork the chain.
    ///
    /// A reader takes no lock, so a writer may move the head between its
    /// reads: the head record read, then the new head written and the
    /// successor of the old one recorded, then the successor read. So a
    /// successor is taken for a rollback only when the head record, read
    /// again, is the one the head came from and does not name that
    /// successor (a head that moved, or whose bundle was stored meanwhile,
    /// is read again).
    fn current_head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        let mut moved = 0;
        loop {
            let record = self.read_head(workspace_id)?;
            let (head, next) = self.head_of_record(workspace_id, record.as_ref())?;
            let (Some(head), Some(next)) = (head.as_ref(), next) else {
                return Ok(head);
            };
            let again = self.read_head(workspace_id)?;
            if again != record || again.as_ref().is_some_and(|r| r.head == next) {
                moved += 1;
                if moved < HEAD_READS {
                    continue;
                }
                return Err(AuditError::Storage {
                    message: format!(
                        "the chain head of workspace {workspace_id} moved {HEAD_READS} times \
                         while it was read; read it again"
                    ),
                    source: None,
                });
            }
            return Err(AuditError::Corrupt {
                bundle_id: head.bundle_id.clone(),
                message: format!(
                    "the chain of workspace {workspace_id} names it as its head, but {next} \
                     was chained to it: the head record was rolled back, and a bundle \
                     chained to it would fork the chain"
                ),
            });
        }
    }

    /// The head bundle `record` names (the chain's tip when there is no
    /// record), and the bundle recorded as chained to it, if any.
    fn head_of_record(
        &self,
        workspace_id: &str,
        record: Option<&HeadRecord>,
    ) -> Result<(Option<StoredBundle>, Option<String>), AuditError> {
        let Some(h) = record else {
            return Ok((tip_of(self.list(workspace_id, None, None)?)?, None));
        };
        let head = match self.get(&h.head)? {
            Some(b) => b,
            None => match &h.previous {
                None => return Ok((None, None)),
                Some(p) => self.get(p)?.ok_or_else(|| AuditError::Corrupt {
                    bundle_id: p.clone(),
                    message: format!(
                        "the chain head of workspace {workspace_id:?} names it, and it is not stored"
                    ),
                })?,
            },
        };
        let head = head_of(workspace_id, head)?;
        let next = self.read_successor(&head.bundle_id)?;
        Ok((Some(head), next))
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

    /// A store file, decompressed: opened once, never through a link or
    /// into a FIFO or device planted since it was listed (a FIFO's open
    /// would wait for a writer forever), and read no further than
    /// [`MAX_FILE`] bytes on either side of the decompression (a stream of
    /// empty deflate blocks decompresses to nothing however long it is).
    fn read_gz(path: &Path) -> Result<Vec<u8>, AuditError> {
        let (f, _) = crate::limits::open_regular_file(path, false).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidInput {
                AuditError::Corrupt {
                    bundle_id: path.display().to_string(),
                    message: format!("{e}: the store makes only regular files"),
                }
            } else {
                io_err("open", path, e)
            }
        })?;
        let mut out = Vec::new();
        GzDecoder::new(f.take(MAX_FILE + 1))
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

    /// The day directories of `audit-bundles` (`YYYY-MM-DD`) from `first`
    /// (none: the earliest) on, in order.
    fn days(&self, first: Option<&str>) -> Result<Vec<PathBuf>, AuditError> {
        let base = self.root.join("audit-bundles");
        let mut out = Vec::new();
        for day in fs::read_dir(&base).map_err(|e| io_err("list", &base, e))? {
            let day = day.map_err(|e| io_err("list", &base, e))?;
            let kind = day.file_type().map_err(|e| io_err("list", &base, e))?;
            let path = day.path();
            if kind.is_symlink() {
                return Err(planted(&path));
            }
            let name = day.file_name();
            let name = name.to_str().unwrap_or("");
            if kind.is_dir() && first.is_none_or(|f| name >= f) {
                out.push(path);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The bundle files of one day directory whose names start with
    /// `prefix` (temporary files excluded).
    fn day_files(day: &Path, prefix: &str) -> Result<Vec<PathBuf>, AuditError> {
        let mut out = Vec::new();
        for f in fs::read_dir(day).map_err(|e| io_err("list", day, e))? {
            let f = f.map_err(|e| io_err("list", day, e))?;
            let kind = f.file_type().map_err(|e| io_err("list", day, e))?;
            let p = f.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(prefix) && name.ends_with(".json.gz") {
                if !kind.is_file() {
                    return Err(planted(&p));
                }
                out.push(p);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every stored bundle file (temporary files excluded).
    fn files(&self) -> Result<Vec<PathBuf>, AuditError> {
        let mut out = Vec::new();
        for day in self.days(None)? {
            out.extend(Self::day_files(&day, "bundle-")?);
        }
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

    /// The file of the bundle with this id, if stored: by its locator; in
    /// a store whose older bundles have not all been given locators yet,
    /// by listing the store.
    fn find(&self, bundle_id: &str) -> Result<Option<PathBuf>, AuditError> {
        if let Some(found) = self.locate(bundle_id)? {
            return Ok(found);
        }
        if self.root.join(LOCATED).is_file() {
            return Ok(None);
        }
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

    /// Write the locator of a bundle filed at `path` (inside the store).
    fn write_locator(
        &self,
        bundle_id: &str,
        path: &Path,
        steps: &mut Steps,
    ) -> Result<(), AuditError> {
        let relative = path
            .strip_prefix(&self.root)
            .map_err(|_| AuditError::internal("a bundle path outside the store"))?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let locator = serde_json::to_vec(&Locator { bundle: relative })
            .map_err(|e| AuditError::internal(&e.to_string()))?;
        self.write_atomic(&self.locator_path(bundle_id)?, &locator, steps)
    }

    /// The stored record of this bundle, if any, without a scan: by its
    /// locator, or at the one path its content names (a copy of the same
    /// bundle is always filed there).
    fn record_for(&self, b: &StoredBundle) -> Result<Option<(PathBuf, Record)>, AuditError> {
        let p = match self.locate(&b.bundle_id)? {
            Some(None) => return Ok(None),
            Some(Some(p)) => p,
            None => {
                let p = self.bundle_path(b)?;
                match fs::symlink_metadata(&p) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(io_err("inspect", &p, e)),
                    Ok(m) if !m.file_type().is_file() => return Err(planted(&p)),
                    Ok(_) => p,
                }
            }
        };
        let r = Self::read_record(&p)?;
        r.check(&b.bundle_id)?;
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
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HeadRecord {
    workspace_id: String,
    head: String,
    previous: Option<String>,
}

/// The bundle `put_next` chained to a head, kept beside the head's
/// snapshot, so that a head record rolled back to it is caught.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuccessorRecord {
    workspace_id: String,
    bundle_id: String,
    next: String,
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
        let existing = self.record_for(b)?;
        let (record, outcome) = plan_put(existing.as_ref().map(|(_, r)| r), b, &self.trusted)?;
        let Some(record) = record else {
            return Ok(outcome);
        };
        let path = match &existing {
            Some((p, _)) => p.clone(),
            None => self.bundle_path(b)?,
        };
        if existing.is_none() {
            // The snapshot and the locator first: a visible bundle always
            // has both (a locator naming a file not yet there means "not
            // stored").
            let snapshot = snapshot_bytes(b)?;
            self.write_atomic(&self.snapshot_path(&b.bundle_id)?, &snapshot, &mut steps)?;
            self.write_locator(&b.bundle_id, &path, &mut steps)?;
            self.register(&b.workspace_id, &mut steps)?;
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
        if self.record_for(b)?.is_some() {
            let outcome = self.put(b)?;
            // A repeat after a crash that came before the successor record:
            // write it now, when `b` is the head it chained.
            if let (Some(h), Some(p)) = (
                self.read_head(&b.workspace_id)?,
                b.bundle()?.previous_bundle_ref,
            ) && h.head == b.bundle_id
                && self.read_successor(&p)?.is_none()
            {
                self.write_successor(&b.workspace_id, &p, &b.bundle_id)?;
            }
            drop(lock);
            return Ok(outcome);
        }
        let head = self.current_head(&b.workspace_id)?;
        check_next(b, head.as_ref())?;
        // Check the bundle as `put` will before the head moves to it.
        plan_put(None, b, &self.trusted)?;
        let previous = head.map(|h| h.bundle_id);
        let record = HeadRecord {
            workspace_id: b.workspace_id.clone(),
            head: b.bundle_id.clone(),
            previous: previous.clone(),
        };
        let bytes =
            serde_json::to_vec(&record).map_err(|e| AuditError::internal(&e.to_string()))?;
        self.write_atomic(&self.head_path(&b.workspace_id), &bytes, &mut Steps::none())?;
        let outcome = self.put(b)?;
        if let Some(p) = &previous {
            self.write_successor(&b.workspace_id, p, &b.bundle_id)?;
        }
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
        // Only the days the bounds allow are read.
        let first = f.map(Timestamp::date);
        let last = t.map(Timestamp::date);
        let mut v = Vec::new();
        for day in self.days(first.as_deref())? {
            let name = day.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if last.as_deref().is_some_and(|l| name > l) {
                break;
            }
            for p in Self::day_files(&day, &prefix)? {
                let b = self.load(&p)?;
                if b.workspace_id == workspace_id && in_range(&b.created_at, f, t) {
                    v.push(b);
                }
            }
        }
        sort(&mut v);
        Ok(v)
    }

    fn list_page(
        &self,
        workspace_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<BundlePage, AuditError> {
        check_page(after, limit)?;
        // Where the page starts: the cursor's file name (its key) and day.
        let start = match after {
            None => None,
            Some(a) => {
                let b = self
                    .get(a)?
                    .filter(|b| b.workspace_id == workspace_id)
                    .ok_or_else(|| unknown_cursor(workspace_id, a))?;
                let t = Timestamp::parse(&b.created_at);
                Some((self.bundle_path(&b)?, t, b.bundle_id))
            }
        };
        let start_name = start
            .as_ref()
            .and_then(|(p, _, _)| p.file_name())
            .and_then(|n| n.to_str());
        let start_key = start_name.and_then(name_key).map(|(_, k)| k);
        let first = start
            .as_ref()
            .and_then(|(p, _, _)| p.parent())
            .and_then(|d| d.file_name())
            .and_then(|d| d.to_str());
        let safe = safe_name(workspace_id);
        let mut out = Vec::new();
        // Day by day, in order, until one more than the page is in hand.
        // A file's name gives its bundle's workspace and order, so only
        // the page's files are read (each checked against its name); a
        // name of another form is read to learn what it holds.
        for day in self.days(first)? {
            let mut names = Vec::new();
            let mut odd = Vec::new();
            for f in fs::read_dir(&day).map_err(|e| io_err("list", &day, e))? {
                let f = f.map_err(|e| io_err("list", &day, e))?;
                let name = f.file_name().to_string_lossy().into_owned();
                if !name.starts_with("bundle-") || !name.ends_with(".json.gz") {
                    continue;
                }
                let ours = match name_key(&name) {
                    Some((ws, _)) => ws == safe,
                    None => true,
                };
                // What will be read must be a file of the store's own (a
                // link planted there is refused, as `list` refuses it).
                if ours
                    && !f
                        .file_type()
                        .map_err(|e| io_err("list", &day, e))?
                        .is_file()
                {
                    return Err(planted(&f.path()));
                }
                match name_key(&name) {
                    Some((ws, _)) if ws != safe => {}
                    Some(_) => names.push(name),
                    None => odd.push(name),
                }
            }
            let mut keyed: Vec<(NameKey<'_>, &str)> = names
                .iter()
                .filter_map(|n| name_key(n).map(|(_, k)| (k, n.as_str())))
                .collect();
            // Odd names: read now, filed under the key their bundle's own
            // name would have.
            let mut learned = Vec::new();
            for n in &odd {
                let b = self.load(&day.join(n))?;
                if b.workspace_id == workspace_id {
                    let proper = self.bundle_path(&b)?;
                    let proper = proper.file_name().and_then(|x| x.to_str()).unwrap_or("");
                    learned.push((proper.to_string(), n.as_str()));
                }
            }
            keyed.extend(
                learned
                    .iter()
                    .filter_map(|(proper, n)| name_key(proper).map(|(_, k)| (k, *n))),
            );
            keyed.sort_unstable();
            let mut last: Option<NameKey<'_>> = None;
            for (key, name) in keyed {
                if start_key.is_some_and(|s| key < s) {
                    continue;
                }
                // Enough: stop at a new key (a tie is read whole, so the
                // order by the full id holds).
                if out.len() > limit && last != Some(key) {
                    break;
                }
                let p = day.join(name);
                let b = self.load(&p)?;
                let proper = self.bundle_path(&b)?;
                let proper_name = proper.file_name().and_then(|x| x.to_str()).unwrap_or("");
                if proper_name != name && odd.iter().all(|o| o != name) {
                    return Err(AuditError::Corrupt {
                        bundle_id: p.display().to_string(),
                        message: format!(
                            "the file's name does not match the bundle it holds ({} created {})",
                            b.bundle_id, b.created_at
                        ),
                    });
                }
                let past = start.as_ref().is_none_or(|(_, t, id)| {
                    (Timestamp::parse(&b.created_at), b.bundle_id.as_str()) > (*t, id.as_str())
                });
                if b.workspace_id == workspace_id && past {
                    out.push(b);
                }
                last = Some(key);
            }
            if out.len() > limit {
                break;
            }
        }
        sort(&mut out);
        Ok(BundlePage::of(out, limit))
    }

    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        Ok(self
            .record_of(bundle_id)?
            .map(|(_, r)| r.events)
            .unwrap_or_default())
    }
}
