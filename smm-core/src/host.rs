//! A job in a store directory (feature `fs`): the one place that knows how
//! the front doors lay the main job out on disk. The CLI (`smm run`), the
//! Python `smm_core.run` and the C `smm_run_json` call it and keep only
//! their argument conversion.
//!
//! A store directory holds the file bundle store (which trusts the run's
//! signer), the signing key [`KEY_FILE`] (made once, mode 0600, from a
//! fallible entropy source) and the SQLite ledger [`LEDGER_FILE`]. Each part
//! can be given instead: a signer (a KMS), a ledger (a shared database), a
//! policy bundle, a store.
//!
//! ```
//! use smm_core::host::{StoreJob, os_entropy};
//! use smm_core::flow::{Campaign, FlowInputs};
//! use smm_core::sim::RunOptions;
//! # let dir = std::env::temp_dir().join(format!("smm-host-doc-{}", std::process::id()));
//! let contract = smm_core::contract::Contract::from_json(
//!     &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/workspace.icblabs.v2.json"))?,
//! )?;
//! let inputs = FlowInputs {
//!     contract: &contract,
//!     request: None,
//!     campaign: Campaign::default(),
//!     agent_run: None,
//!     now: "2025-09-01T12:00:00Z".parse()?,
//!     actor: "doc",
//!     previous_bundle_ref: None,
//! };
//! let done = StoreJob::in_dir(&dir).run(inputs, &RunOptions::default(), &os_entropy)?;
//! assert!(done.outcome.verified());
//! assert!(done.bundle_path.is_some_and(|p| p.starts_with(&dir)));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};

use crate::Error;
use crate::audit::store::{BundleStore, FileBundleStore, StoredBundle};
use crate::audit::{AuditError, LocalSigner, Signer, TrustedKey};
use crate::flow::{self, FlowError, FlowInputs, FlowOutcome, FlowServices, Step};
use crate::policy::PolicyBundle;
use crate::sim::RunOptions;
use crate::usage::{MemoryLedger, UsageLedger};

/// The signing key of a store directory, made once.
pub const KEY_FILE: &str = "signing-key.pem";
/// The SQLite ledger of a store directory.
pub const LEDGER_FILE: &str = "usage.sqlite";

/// A source of 32 random bytes for a new key. It is called only when a key
/// is made, and its failure is the caller's error (never a zero key).
pub type Entropy<'a> = &'a dyn Fn() -> Result<[u8; 32], Error>;

/// 32 bytes from the operating system's generator.
pub fn os_entropy() -> Result<[u8; 32], Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| AuditError::SignerFailed {
        key_id: "local".into(),
        message: format!("no entropy for a new key: {e}"),
        source: Some(crate::kind::Cause::from(e.to_string())),
    })?;
    Ok(secret)
}

/// A new local signer with a random key from `entropy` (drawn again in the
/// negligible case that 32 bytes are not a valid P-256 secret).
pub fn generate_signer(key_id: &str, entropy: Entropy<'_>) -> Result<LocalSigner, Error> {
    for _ in 0..16 {
        if let Ok(s) = LocalSigner::from_secret_bytes(key_id, &entropy()?) {
            return Ok(s);
        }
    }
    Err(AuditError::SignerFailed {
        key_id: key_id.into(),
        message: "16 draws of the entropy source gave no valid key".into(),
        source: None,
    }
    .into())
}

/// The signer of a key file: a PKCS#8 PEM P-256 key of mode 0600 (a file
/// that others may read is refused), its key id the key's fingerprint.
/// When the file does not exist: with `create`, a new key from `entropy`
/// is written there once, atomically (of two processes creating it at
/// once, both end up with the same key); without, an
/// [`AuditError::SignerFailed`] that names the file.
pub fn key_file_signer(
    path: &Path,
    create: bool,
    entropy: Entropy<'_>,
) -> Result<LocalSigner, Error> {
    if path.exists() {
        return flow::signer_from_file(path, || [0; 32]);
    }
    if !create {
        return Err(AuditError::SignerFailed {
            key_id: "local".into(),
            message: format!("no key file {}", path.display()),
            source: None,
        }
        .into());
    }
    let secret = entropy()?;
    flow::signer_from_file(path, || secret)
}

/// A file bundle store at `root` that trusts `signer`'s key.
pub fn store_trusting(root: &Path, signer: &dyn Signer) -> Result<FileBundleStore, Error> {
    Ok(FileBundleStore::open(
        root,
        vec![TrustedKey {
            key_id: signer.key_id().to_string(),
            key: *signer.public_key(),
        }],
    )?)
}

/// Which usage ledger a job keeps its books in, when none is given. Its
/// `Debug` output never shows a URL's password.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerChoice {
    /// In memory, for this process only (tests, dry runs).
    Memory,
    /// A SQLite file (feature `sqlite`); [`LEDGER_FILE`] in the store
    /// directory by default.
    #[cfg(feature = "sqlite")]
    Sqlite(PathBuf),
    /// A PostgreSQL database shared by every replica (feature
    /// `postgres`): its `postgresql://` URL.
    #[cfg(feature = "postgres")]
    Postgres(String),
}

impl std::fmt::Debug for LedgerChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl LedgerChoice {
    /// The ledger a command-line argument names: a `postgresql://` URL
    /// (feature `postgres`), else a SQLite file.
    #[cfg(feature = "sqlite")]
    pub fn from_arg(arg: &Path) -> LedgerChoice {
        #[cfg(feature = "postgres")]
        if let Some(url) = arg.to_str().filter(|s| crate::usage::is_postgres_url(s)) {
            return LedgerChoice::Postgres(url.to_string());
        }
        LedgerChoice::Sqlite(arg.to_path_buf())
    }

    /// What it is, for people: `memory`, the file's path, or the URL
    /// without its password.
    pub fn describe(&self) -> String {
        match self {
            LedgerChoice::Memory => "memory".into(),
            #[cfg(feature = "sqlite")]
            LedgerChoice::Sqlite(p) => p.display().to_string(),
            #[cfg(feature = "postgres")]
            LedgerChoice::Postgres(url) => crate::usage::redact_postgres_url(url),
        }
    }

    /// Open it (a SQLite file is created when it does not exist).
    pub fn open(&self) -> Result<Ledger, Error> {
        match self {
            LedgerChoice::Memory => Ok(Ledger::Memory(MemoryLedger::new())),
            #[cfg(feature = "sqlite")]
            LedgerChoice::Sqlite(path) => {
                Ok(Ledger::Sqlite(crate::usage::SqliteLedger::open(path)?))
            }
            #[cfg(feature = "postgres")]
            LedgerChoice::Postgres(url) => Ok(Ledger::Postgres(Box::new(
                crate::usage::PostgresLedger::connect(url)?,
            ))),
        }
    }

    /// Open it when it already exists (a missing SQLite file is an
    /// error, never a new empty ledger).
    pub fn open_existing(&self) -> Result<Ledger, Error> {
        match self {
            LedgerChoice::Memory => self.open(),
            #[cfg(feature = "sqlite")]
            LedgerChoice::Sqlite(path) => Ok(Ledger::Sqlite(
                crate::usage::SqliteLedger::open_existing(path)?,
            )),
            // A database without a ledger yet is created by migration, as a
            // new SQLite file is: a URL names a server, not a file that may
            // be misspelt.
            #[cfg(feature = "postgres")]
            LedgerChoice::Postgres(_) => self.open(),
        }
    }

    /// The file it keeps, when it is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            LedgerChoice::Memory => None,
            #[cfg(feature = "sqlite")]
            LedgerChoice::Sqlite(p) => Some(p),
            #[cfg(feature = "postgres")]
            LedgerChoice::Postgres(_) => None,
        }
    }
}

/// An open ledger of one of the [`LedgerChoice`]s: what the CLI, the
/// Python `UsageLedger` and the C `smm_ledger` hold.
#[derive(Debug)]
#[non_exhaustive]
pub enum Ledger {
    /// In this process's memory.
    Memory(MemoryLedger),
    /// A SQLite file.
    #[cfg(feature = "sqlite")]
    Sqlite(crate::usage::SqliteLedger),
    /// A PostgreSQL database.
    #[cfg(feature = "postgres")]
    Postgres(Box<crate::usage::PostgresLedger>),
}

impl Ledger {
    /// The ledger, as the flow takes it.
    pub fn as_dyn(&self) -> &dyn UsageLedger {
        match self {
            Ledger::Memory(l) => l,
            #[cfg(feature = "sqlite")]
            Ledger::Sqlite(l) => l,
            #[cfg(feature = "postgres")]
            Ledger::Postgres(l) => l.as_ref(),
        }
    }

    /// `"memory"`, `"sqlite"` or `"postgres"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Ledger::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Ledger::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Ledger::Postgres(_) => "postgres",
        }
    }

    /// The SQLite ledger, when it is one.
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&self) -> Option<&crate::usage::SqliteLedger> {
        match self {
            Ledger::Sqlite(l) => Some(l),
            _ => None,
        }
    }

    /// Apply a retention plan's ledger part (a SQLite or PostgreSQL ledger;
    /// a memory ledger keeps nothing a plan could be about): the rows
    /// deleted.
    pub fn apply_retention(
        &self,
        plan: &crate::usage::RetentionPlan,
    ) -> Result<u64, crate::usage::UsageError> {
        match self {
            #[cfg(feature = "sqlite")]
            Ledger::Sqlite(l) => l.apply_retention(plan).map(|n| n as u64),
            #[cfg(feature = "postgres")]
            Ledger::Postgres(l) => l.apply_retention(plan),
            Ledger::Memory(_) => Err(crate::usage::UsageError::InvalidInput {
                pointer: "/ledger".into(),
                message: format!(
                    "a memory ledger keeps no records retention plan {} applies to \
                     (open a SQLite or PostgreSQL ledger)",
                    plan.plan_hash
                ),
            }),
        }
    }
}

/// Whether a `--store` argument names a PostgreSQL store (feature
/// `postgres`) rather than a directory.
pub fn is_store_url(arg: &str) -> bool {
    #[cfg(feature = "postgres")]
    {
        crate::pg::is_postgres_url(arg)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = arg;
        false
    }
}

/// An open bundle store of either kind: a directory or (feature
/// `postgres`) a PostgreSQL database. What the CLI's `--store`, Python's
/// `run(store=...)` and C's `smm_run_json` open from a path or a URL.
#[derive(Debug)]
#[non_exhaustive]
pub enum Store {
    /// A store directory.
    Dir(FileBundleStore),
    /// A PostgreSQL store.
    #[cfg(feature = "postgres")]
    Postgres(Box<crate::audit::store::PostgresBundleStore>),
}

impl Store {
    /// Open the store a `--store` argument names (a URL, or a directory
    /// made when missing), trusting `keys`.
    pub fn open(arg: &Path, keys: Vec<TrustedKey>) -> Result<Store, Error> {
        #[cfg(feature = "postgres")]
        if let Some(url) = arg.to_str().filter(|s| is_store_url(s)) {
            return Ok(Store::Postgres(Box::new(
                crate::audit::store::PostgresBundleStore::connect(url, keys)?,
            )));
        }
        Ok(Store::Dir(FileBundleStore::open(arg, keys)?))
    }

    /// The store, as the flow takes it.
    pub fn as_dyn(&self) -> &dyn BundleStore {
        match self {
            Store::Dir(s) => s,
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => s.as_ref(),
        }
    }

    /// Where a stored bundle is, for people: its file, or the store's URL
    /// (without its password) and the id.
    pub fn location_of(&self, b: &StoredBundle) -> String {
        match self {
            Store::Dir(s) => s
                .bundle_path(b)
                .map_or_else(|_| b.bundle_id.clone(), |p| p.display().to_string()),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => format!("{} {}", s.url(), b.bundle_id),
        }
    }

    /// Every workspace the store holds bundles of, sorted.
    pub fn workspaces(&self) -> Result<Vec<String>, Error> {
        match self {
            Store::Dir(s) => Ok(s.workspaces()?),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => Ok(s.workspaces()?),
        }
    }

    /// The ids of stored bundles that start with `prefix`, sorted.
    pub fn ids_starting_with(&self, prefix: &str) -> Result<Vec<String>, Error> {
        match self {
            Store::Dir(s) => Ok(s.ids_starting_with(prefix)?),
            #[cfg(feature = "postgres")]
            Store::Postgres(s) => Ok(s.ids_starting_with(prefix)?),
        }
    }
}

/// The default ledger of a store directory: SQLite at [`LEDGER_FILE`] with
/// the `sqlite` feature, else in memory.
pub fn default_ledger(root: &Path) -> LedgerChoice {
    #[cfg(feature = "sqlite")]
    {
        LedgerChoice::Sqlite(root.join(LEDGER_FILE))
    }
    #[cfg(not(feature = "sqlite"))]
    {
        let _ = root;
        LedgerChoice::Memory
    }
}

/// The id of the workspace's latest bundle in a store (its chain's head).
pub fn latest_bundle(store: &dyn BundleStore, workspace_id: &str) -> Result<Option<String>, Error> {
    flow::latest_bundle(store, workspace_id)
}

/// Where a job's store is: a directory (with its own key file and SQLite
/// ledger), or a PostgreSQL database shared by replicas (which must be
/// given the signer, and keeps the books in the same database unless
/// told otherwise).
#[derive(Clone, PartialEq, Eq)]
enum Place {
    Dir(PathBuf),
    #[cfg(feature = "postgres")]
    Url(String),
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Dir(p) => write!(f, "Dir({})", p.display()),
            #[cfg(feature = "postgres")]
            Place::Url(u) => write!(f, "Url({})", crate::pg::redact_url(u)),
        }
    }
}

/// The main job, laid out in a store directory or a PostgreSQL store,
/// with any part given.
#[derive(Default)]
pub struct StoreJob<'a> {
    place: Option<Place>,
    store: Option<&'a dyn BundleStore>,
    signer: Option<&'a dyn Signer>,
    ledger: Option<&'a dyn UsageLedger>,
    ledger_choice: Option<LedgerChoice>,
    policy: Option<&'a PolicyBundle>,
}

impl std::fmt::Debug for StoreJob<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreJob")
            .field("place", &self.place)
            .field("store", &self.store.is_some())
            .field("signer", &self.signer.map(|s| s.key_id().to_string()))
            .field("ledger", &self.ledger.is_some())
            .field("ledger_choice", &self.ledger_choice)
            .field("policy", &self.policy.map(PolicyBundle::checksum))
            .finish()
    }
}

/// What a job did: the flow's outcome and where it left things.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobOutcome {
    /// The flow's outcome.
    pub outcome: FlowOutcome,
    /// The stored bundle's file, when the store is the job's own directory.
    pub bundle_path: Option<PathBuf>,
    /// The ledger's file, when the job opened a file ledger.
    pub ledger_path: Option<PathBuf>,
    /// Where the bundle is, for people: its file, or the store's URL
    /// (without its password) and the bundle's id.
    pub location: String,
    /// The ledger the job opened, for people (a path, `memory`, a URL
    /// without its password); empty when the ledger was given.
    pub ledger: String,
}

impl<'a> StoreJob<'a> {
    /// A job whose store, key and ledger are in the directory `root`
    /// (made when missing).
    pub fn in_dir(root: impl Into<PathBuf>) -> StoreJob<'a> {
        StoreJob {
            place: Some(Place::Dir(root.into())),
            ..StoreJob::default()
        }
    }

    /// A job whose store a front door's argument names: a `postgresql://`
    /// URL (feature `postgres`: a store shared by replicas; the signer must
    /// be given, and the books are kept in the same database unless a
    /// ledger is given), else a directory as [`StoreJob::in_dir`].
    pub fn at(arg: &Path) -> StoreJob<'a> {
        #[cfg(feature = "postgres")]
        if let Some(url) = arg.to_str().filter(|s| is_store_url(s)) {
            return StoreJob {
                place: Some(Place::Url(url.to_string())),
                ..StoreJob::default()
            };
        }
        StoreJob::in_dir(arg)
    }

    /// A job that publishes to `store` (which must trust the signer; a
    /// signer must then be given too).
    pub fn in_store(store: &'a dyn BundleStore) -> StoreJob<'a> {
        StoreJob {
            store: Some(store),
            ..StoreJob::default()
        }
    }

    /// Sign with this signer instead of the directory's key file.
    pub fn signer(mut self, signer: Option<&'a dyn Signer>) -> StoreJob<'a> {
        self.signer = signer;
        self
    }

    /// Keep the books in this ledger.
    pub fn ledger(mut self, ledger: Option<&'a dyn UsageLedger>) -> StoreJob<'a> {
        self.ledger = ledger;
        self
    }

    /// Open this ledger when none is given (default: [`default_ledger`]).
    pub fn ledger_choice(mut self, choice: Option<LedgerChoice>) -> StoreJob<'a> {
        self.ledger_choice = choice;
        self
    }

    /// Decide with this policy bundle instead of the default one.
    pub fn policy(mut self, policy: Option<&'a PolicyBundle>) -> StoreJob<'a> {
        self.policy = policy;
        self
    }

    /// Run the main job, chained to the workspace's head in the store.
    /// A failure to set a part up is the step that needs it: the key is
    /// [`Step::Sign`], the store [`Step::Store`], the ledger
    /// [`Step::Usage`], the default policy [`Step::Policy`].
    pub fn run(
        &self,
        inputs: FlowInputs<'_>,
        options: &RunOptions,
        entropy: Entropy<'_>,
    ) -> Result<JobOutcome, FlowError> {
        let at = |step: Step| {
            move |e: Error| FlowError {
                step,
                error: Box::new(e),
            }
        };
        let root = match &self.place {
            Some(Place::Dir(root)) => Some(root),
            _ => None,
        };
        if let Some(root) = root {
            std::fs::create_dir_all(root).map_err(|e| {
                at(Step::Store)(
                    AuditError::Storage {
                        message: format!("cannot create {}: {e}", root.display()),
                        source: Some(crate::kind::Cause::new(e)),
                    }
                    .into(),
                )
            })?;
        }
        // Each part is the one given, else one made here and kept in its
        // `own_*` slot for the length of the run.
        let mut own_signer = None;
        let signer: &dyn Signer = match (self.signer, root) {
            (Some(s), _) => s,
            (None, Some(root)) => own_signer.insert(
                key_file_signer(&root.join(KEY_FILE), true, entropy).map_err(at(Step::Sign))?,
            ),
            (None, None) => {
                return Err(at(Step::Sign)(
                    AuditError::InvalidKey {
                        message: "a job in a given or shared store needs the key that signs its \
                                  bundles (every replica signs with a key the store trusts; \
                                  make one with `smm keygen --out KEY`)"
                            .into(),
                    }
                    .into(),
                ));
            }
        };
        let mut own_store = None;
        let store: &dyn BundleStore = match (self.store, &self.place) {
            (Some(s), _) => s,
            (None, Some(Place::Dir(root))) => own_store
                .insert(Store::Dir(
                    store_trusting(root, signer).map_err(at(Step::Store))?,
                ))
                .as_dyn(),
            #[cfg(feature = "postgres")]
            (None, Some(Place::Url(url))) => own_store
                .insert(
                    Store::open(
                        Path::new(url),
                        vec![TrustedKey {
                            key_id: signer.key_id().to_string(),
                            key: *signer.public_key(),
                        }],
                    )
                    .map_err(at(Step::Store))?,
                )
                .as_dyn(),
            (None, None) => {
                return Err(at(Step::Store)(
                    AuditError::Storage {
                        message: "a job needs a store directory or a given store".into(),
                        source: None,
                    }
                    .into(),
                ));
            }
        };
        let choice = match (&self.ledger_choice, &self.place) {
            (Some(c), _) => c.clone(),
            (None, Some(Place::Dir(root))) => default_ledger(root),
            #[cfg(feature = "postgres")]
            (None, Some(Place::Url(url))) => LedgerChoice::Postgres(url.clone()),
            (None, None) => LedgerChoice::Memory,
        };
        let mut own_ledger = None;
        let ledger: &dyn UsageLedger = match self.ledger {
            Some(l) => l,
            None => own_ledger
                .insert(choice.open().map_err(at(Step::Usage))?)
                .as_dyn(),
        };
        let mut own_policy = None;
        let policy: &PolicyBundle = match self.policy {
            Some(p) => p,
            None => own_policy
                .insert(PolicyBundle::default_bundle().map_err(|e| at(Step::Policy)(e.into()))?),
        };
        let outcome = flow::run_chained(
            inputs,
            FlowServices {
                policy,
                ledger,
                signer,
                store,
            },
            options,
        )?;
        let stored = StoredBundle::from_envelope(outcome.envelope.as_bytes());
        let bundle_path = match (&own_store, &stored) {
            (Some(Store::Dir(s)), Ok(b)) => s.bundle_path(b).ok(),
            _ => None,
        };
        let location = match (&own_store, &stored) {
            (Some(s), Ok(b)) => s.location_of(b),
            _ => outcome.bundle_id.clone(),
        };
        let (ledger_path, ledger_shown) = match self.ledger {
            None => (choice.path().map(Path::to_path_buf), choice.describe()),
            Some(_) => (None, String::new()),
        };
        Ok(JobOutcome {
            outcome,
            bundle_path,
            ledger_path,
            location,
            ledger: ledger_shown,
        })
    }
}
