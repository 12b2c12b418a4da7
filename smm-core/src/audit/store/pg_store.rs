//! The bundle store in PostgreSQL (feature `postgres`): one store, and one
//! chain per workspace, shared by every replica of a service.
//!
//! Tables (migration component `store`): `audit_bundles` (one row per
//! bundle: id, workspace, time, its previous bundle, payload),
//! `bundle_signatures` and `bundle_events` (the envelope's signatures and
//! the store history, appended one row each), `chain_heads` (one row per
//! workspace: its chain's head) and `bundle_purges` (what the retention
//! purge removed, under which plan hash).
//!
//! The schema itself keeps evidence append-only: triggers refuse every
//! `UPDATE` and `TRUNCATE` of `audit_bundles`, `bundle_signatures`,
//! `bundle_events` and `bundle_purges`, and a `DELETE` of a bundle's rows
//! unless the same transaction recorded the bundle in `bundle_purges`
//! (which is what [`PostgresBundleStore::apply_retention`] does). A role
//! that may drop triggers can of course get around this: run services as a
//! role that owns no tables.
//!
//! One chain per workspace, by construction: [`BundleStore::put_next`]
//! locks the workspace's `chain_heads` row (`SELECT ... FOR UPDATE`),
//! checks the bundle against the head and publishes it in one transaction,
//! and a trigger refuses to move a head to a bundle that does not name the
//! old head as its previous. A head row starts empty (the store then finds
//! the chain's tip from the bundles), is never deleted and never changes
//! workspace (triggers again, schema version 2), so it cannot be rolled
//! back by hand; and `head` and `put_next` check that the head has no
//! successor (an index on `previous_bundle_id`), so a head rolled back by a
//! role that can get around the triggers is answered `Corrupt` instead of
//! forking the chain.

use ::postgres::{Client, GenericClient, Transaction};
type PgError = ::postgres::Error;

use super::*;
use crate::pg::{PgFailure, PgTarget, Pool, failure};
use crate::usage::{RecordKind, RetentionAction, RetentionPlan};

/// The newest PostgreSQL store schema this library writes and reads.
pub const POSTGRES_STORE_SCHEMA_VERSION: i64 = 2;

/// The component name in `smm_schema_version`.
const COMPONENT: &str = "store";

const MIGRATIONS: [(i64, &str); 2] = [
    (
        1,
        r#"CREATE TABLE audit_bundles (
        bundle_id TEXT PRIMARY KEY CHECK (bundle_id ~ '^sha256:[0-9a-f]{64}$'),
        workspace_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_seconds BIGINT NOT NULL,
        created_nanos INTEGER NOT NULL CHECK (created_nanos >= 0),
        previous_bundle_id TEXT,
        payload_type TEXT NOT NULL,
        payload TEXT NOT NULL,
        stored_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE INDEX audit_bundles_by_workspace
        ON audit_bundles (workspace_id, created_seconds, created_nanos, bundle_id);
    CREATE TABLE bundle_signatures (
        bundle_id TEXT NOT NULL REFERENCES audit_bundles (bundle_id),
        position INTEGER NOT NULL CHECK (position >= 0),
        keyid TEXT NOT NULL,
        sig TEXT NOT NULL,
        PRIMARY KEY (bundle_id, position),
        UNIQUE (bundle_id, keyid)
    );
    CREATE TABLE bundle_events (
        bundle_id TEXT NOT NULL REFERENCES audit_bundles (bundle_id),
        sequence INTEGER NOT NULL CHECK (sequence >= 0),
        event TEXT NOT NULL,
        PRIMARY KEY (bundle_id, sequence)
    );
    CREATE TABLE chain_heads (
        workspace_id TEXT PRIMARY KEY,
        head_bundle_id TEXT REFERENCES audit_bundles (bundle_id),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE bundle_purges (
        id BIGSERIAL PRIMARY KEY,
        txid BIGINT NOT NULL DEFAULT txid_current(),
        workspace_id TEXT NOT NULL,
        plan_hash TEXT NOT NULL CHECK (plan_hash ~ '^sha256:[0-9a-f]{64}$'),
        bundle_ids TEXT[] NOT NULL,
        purged_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE FUNCTION smm_store_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'stored evidence is append-only: % of % is refused', TG_OP, TG_TABLE_NAME
            USING HINT = 'only the retention purge deletes, and it records what it removed';
    END $$;
    CREATE FUNCTION smm_store_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM bundle_purges p
                   WHERE p.txid = txid_current() AND OLD.bundle_id = ANY (p.bundle_ids)) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'stored evidence is append-only: DELETE of % is refused (bundle % is in no purge record of this transaction)', TG_TABLE_NAME, OLD.bundle_id
            USING HINT = 'only the retention purge deletes, and it records what it removed';
    END $$;
    CREATE FUNCTION smm_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF OLD.head_bundle_id IS NOT NULL
           AND NEW.head_bundle_id IS DISTINCT FROM OLD.head_bundle_id
           AND (SELECT b.previous_bundle_id FROM audit_bundles b
                WHERE b.bundle_id = NEW.head_bundle_id) IS DISTINCT FROM OLD.head_bundle_id THEN
            RAISE EXCEPTION 'the chain of workspace % would fork: % does not follow its head %',
                OLD.workspace_id, NEW.head_bundle_id, OLD.head_bundle_id;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER audit_bundles_no_update BEFORE UPDATE ON audit_bundles
        FOR EACH ROW EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER audit_bundles_no_delete BEFORE DELETE ON audit_bundles
        FOR EACH ROW EXECUTE FUNCTION smm_store_delete_guard();
    CREATE TRIGGER audit_bundles_no_truncate BEFORE TRUNCATE ON audit_bundles
        FOR EACH STATEMENT EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_signatures_no_update BEFORE UPDATE ON bundle_signatures
        FOR EACH ROW EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_signatures_no_delete BEFORE DELETE ON bundle_signatures
        FOR EACH ROW EXECUTE FUNCTION smm_store_delete_guard();
    CREATE TRIGGER bundle_signatures_no_truncate BEFORE TRUNCATE ON bundle_signatures
        FOR EACH STATEMENT EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_events_no_update BEFORE UPDATE ON bundle_events
        FOR EACH ROW EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_events_no_delete BEFORE DELETE ON bundle_events
        FOR EACH ROW EXECUTE FUNCTION smm_store_delete_guard();
    CREATE TRIGGER bundle_events_no_truncate BEFORE TRUNCATE ON bundle_events
        FOR EACH STATEMENT EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_purges_append_only BEFORE UPDATE OR DELETE ON bundle_purges
        FOR EACH ROW EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER bundle_purges_no_truncate BEFORE TRUNCATE ON bundle_purges
        FOR EACH STATEMENT EXECUTE FUNCTION smm_store_refuse();
    CREATE TRIGGER chain_heads_no_fork BEFORE UPDATE ON chain_heads
        FOR EACH ROW EXECUTE FUNCTION smm_chain_guard();
    CREATE TRIGGER chain_heads_no_truncate BEFORE TRUNCATE ON chain_heads
        FOR EACH STATEMENT EXECUTE FUNCTION smm_store_refuse();"#,
    ),
    (
        // A head row could still be rolled back to an older bundle by deleting
        // it and inserting it again (the UPDATE guard never saw it), and the
        // next `put_next` would then fork the chain. Now a head row starts
        // empty (the store finds the chain's tip itself), is never deleted and
        // never changes workspace; and the store checks that the head it chains
        // to has no successor (the index below), which holds even against a
        // role that can get around the triggers.
        2,
        r#"CREATE INDEX audit_bundles_by_previous
        ON audit_bundles (previous_bundle_id, workspace_id)
        WHERE previous_bundle_id IS NOT NULL;
    CREATE OR REPLACE FUNCTION smm_chain_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.workspace_id IS DISTINCT FROM OLD.workspace_id THEN
            RAISE EXCEPTION 'the chain of workspace % would fork: its head row may not move to workspace %',
                OLD.workspace_id, NEW.workspace_id;
        END IF;
        IF OLD.head_bundle_id IS NOT NULL
           AND NEW.head_bundle_id IS DISTINCT FROM OLD.head_bundle_id
           AND (SELECT b.previous_bundle_id FROM audit_bundles b
                WHERE b.bundle_id = NEW.head_bundle_id) IS DISTINCT FROM OLD.head_bundle_id THEN
            RAISE EXCEPTION 'the chain of workspace % would fork: % does not follow its head %',
                OLD.workspace_id, NEW.head_bundle_id, OLD.head_bundle_id;
        END IF;
        RETURN NEW;
    END $$;
    CREATE FUNCTION smm_chain_start_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.head_bundle_id IS NOT NULL THEN
            RAISE EXCEPTION 'the chain of workspace % would fork: a head row starts empty (the store finds its chain''s tip), not at %',
                NEW.workspace_id, NEW.head_bundle_id;
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER chain_heads_start_empty BEFORE INSERT ON chain_heads
        FOR EACH ROW EXECUTE FUNCTION smm_chain_start_guard();
    CREATE TRIGGER chain_heads_no_delete BEFORE DELETE ON chain_heads
        FOR EACH ROW EXECUTE FUNCTION smm_store_refuse();"#,
    ),
];

/// What [`PostgresBundleStore::apply_retention`] removed: also kept in the
/// store's `bundle_purges` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePurge {
    /// The workspace.
    pub workspace_id: String,
    /// The plan's hash.
    pub plan_hash: String,
    /// The bundles removed.
    pub bundle_ids: Vec<String>,
    /// Bundles the plan named for deletion that were kept: the chain's
    /// head (the next bundle chains to it) and ids the store does not hold
    /// for this workspace.
    pub kept: Vec<String>,
}

/// The store's schema in a database, as `smm db status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSchemaStatus {
    /// The URL without its password.
    pub url: String,
    /// The store's schema version in the database (0: none).
    pub found: i64,
    /// The newest version this library knows.
    pub supported: i64,
}

/// A bundle store in a PostgreSQL database, shared by every process that
/// connects to it. Thread-safe, with a small pool of connections; call it
/// from async code through `spawn_blocking`, as
/// [`crate::usage::PostgresLedger`] shows. Its `Debug` output and errors
/// name the URL without its password.
#[derive(Debug)]
pub struct PostgresBundleStore {
    trusted: Vec<TrustedKey>,
    pool: Pool,
}

fn storage(url: &str, f: PgFailure) -> AuditError {
    match f {
        PgFailure::Url(message) => AuditError::InvalidInput {
            pointer: "/store".into(),
            message,
        },
        PgFailure::Retry(message, cause) => AuditError::Storage {
            message: format!(
                "{url} is unreachable or asked to retry ({message}): nothing was stored; try again"
            ),
            source: Some(cause),
        },
        PgFailure::Corrupt(message) => AuditError::Storage {
            message: format!("{url}: the tables are not a bundle store's ({message})"),
            source: None,
        },
        PgFailure::Other(message, cause) => AuditError::Storage {
            message: format!("{url}: {message}"),
            source: Some(cause),
        },
    }
}

fn corrupt(bundle_id: &str, message: impl Into<String>) -> AuditError {
    AuditError::Corrupt {
        bundle_id: bundle_id.to_string(),
        message: message.into(),
    }
}

/// Apply the store's migrations to the database at `url` (what `smm db
/// migrate` does); returns the version found and the version now.
pub fn migrate_store(url: &str) -> Result<(i64, i64), AuditError> {
    migrate_to(url, POSTGRES_STORE_SCHEMA_VERSION)
}

/// Apply the store's migrations up to `version` only: a database as an
/// older library left it, for the tests of every migration path.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub fn migrate_store_to(url: &str, version: i64) -> Result<(i64, i64), AuditError> {
    migrate_to(url, version)
}

fn migrate_to(url: &str, version: i64) -> Result<(i64, i64), AuditError> {
    let target = PgTarget::parse(url).map_err(|e| storage("", e))?;
    let shown = target.shown().to_string();
    let mut c = target.connect().map_err(|e| storage(&shown, e))?;
    run_migrations(&mut c, &shown, version)
}

/// The store's schema version in the database at `url`, and the newest
/// this library knows. Changes nothing.
pub fn store_schema_status(url: &str) -> Result<StoreSchemaStatus, AuditError> {
    let target = PgTarget::parse(url).map_err(|e| storage("", e))?;
    let shown = target.shown().to_string();
    let mut c = target.connect().map_err(|e| storage(&shown, e))?;
    let found = crate::pg::version_of(&mut c, COMPONENT).map_err(|e| storage(&shown, e))?;
    Ok(StoreSchemaStatus {
        url: shown,
        found,
        supported: POSTGRES_STORE_SCHEMA_VERSION,
    })
}

fn run_migrations(c: &mut Client, shown: &str, version: i64) -> Result<(i64, i64), AuditError> {
    let upto: Vec<(i64, &str)> = MIGRATIONS
        .iter()
        .copied()
        .filter(|(v, _)| *v <= version)
        .collect();
    match crate::pg::migrate(c, COMPONENT, &upto).map_err(|e| storage(shown, e))? {
        Ok(m) => Ok((m.from, m.to)),
        Err(found) => Err(AuditError::Storage {
            message: format!(
                "{shown}: the bundle store's schema is version {found}, newer than this \
                 library's {POSTGRES_STORE_SCHEMA_VERSION}: upgrade smm-core"
            ),
            source: None,
        }),
    }
}

impl PostgresBundleStore {
    /// Connect to the store at `url` (`postgresql://user:password@host:port/db`),
    /// creating or migrating its tables. It publishes envelopes whose every
    /// signature verifies under `trusted_keys` (none: read-only).
    pub fn connect(url: &str, trusted_keys: Vec<TrustedKey>) -> Result<Self, AuditError> {
        Self::connect_with(url, trusted_keys, true)
    }

    /// [`PostgresBundleStore::connect`], applying pending migrations only
    /// when `migrate` (otherwise a database whose store schema is not this
    /// library's is refused).
    pub fn connect_with(
        url: &str,
        trusted_keys: Vec<TrustedKey>,
        migrate: bool,
    ) -> Result<Self, AuditError> {
        let target = PgTarget::parse(url).map_err(|e| storage("", e))?;
        let store = PostgresBundleStore {
            trusted: trusted_keys,
            pool: Pool::new(target),
        };
        let shown = store.url().to_string();
        store.with(|c| {
            if migrate {
                return run_migrations(c, &shown, POSTGRES_STORE_SCHEMA_VERSION).map(|_| ());
            }
            let found = crate::pg::version_of(c, COMPONENT).map_err(|e| storage(&shown, e))?;
            if found == POSTGRES_STORE_SCHEMA_VERSION {
                Ok(())
            } else {
                Err(AuditError::Storage {
                    message: format!(
                        "{shown}: the bundle store's schema is version {found}, this library's is \
                         {POSTGRES_STORE_SCHEMA_VERSION} (run `smm db migrate`)"
                    ),
                    source: None,
                })
            }
        })?;
        Ok(store)
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        self.pool.target().shown()
    }

    /// The keys this store trusts.
    pub fn trusted_keys(&self) -> &[TrustedKey] {
        &self.trusted
    }

    fn fail(&self) -> impl Fn(PgError) -> AuditError + '_ {
        move |e| storage(self.url(), failure(e))
    }

    /// Run `f` in a transaction.
    fn tx<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let fail = self.fail();
        self.with(|c| {
            let mut tx = c.transaction().map_err(&fail)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(&fail)?;
            Ok(out)
        })
    }

    /// Every workspace the store holds bundles of, sorted.
    pub fn workspaces(&self) -> Result<Vec<String>, AuditError> {
        let fail = self.fail();
        self.with(|c| {
            c.query(
                "SELECT DISTINCT workspace_id FROM audit_bundles ORDER BY workspace_id",
                &[],
            )
            .map_err(&fail)?
            .iter()
            .map(|r| r.try_get(0).map_err(&fail))
            .collect()
        })
    }

    /// The ids of stored bundles that start with `prefix` (for a lookup by
    /// a short id), sorted; at most 100.
    pub fn ids_starting_with(&self, prefix: &str) -> Result<Vec<String>, AuditError> {
        // `sha256:` and lowercase hex only: nothing that LIKE would read.
        if !prefix
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || b"sha256:".contains(&c))
        {
            return Ok(Vec::new());
        }
        let fail = self.fail();
        let pattern = format!("{prefix}%");
        self.with(|c| {
            c.query(
                "SELECT bundle_id FROM audit_bundles WHERE bundle_id LIKE $1 ORDER BY bundle_id LIMIT 100",
                &[&pattern],
            )
            .map_err(&fail)?
            .iter()
            .map(|r| r.try_get(0).map_err(&fail))
            .collect()
        })
    }

    /// Delete the audit bundles a retention plan says are due (its
    /// `audit_bundle` items with action `delete`), recording in
    /// `bundle_purges`, in the same transaction, which bundles went and
    /// under which plan hash. The plan must match its hash; a legal hold
    /// deletes nothing. The chain's head is kept (the next bundle chains to
    /// it), as is any id the store does not hold for the plan's workspace.
    pub fn apply_retention(&self, plan: &RetentionPlan) -> Result<StorePurge, AuditError> {
        plan.verify().map_err(|e| AuditError::InvalidInput {
            pointer: "/planHash".into(),
            message: e.to_string(),
        })?;
        let mut due: Vec<String> = plan
            .items
            .iter()
            .filter(|i| i.kind == RecordKind::AuditBundle && i.action == RetentionAction::Delete)
            .map(|i| i.id.clone())
            .collect();
        for id in &due {
            check_bundle_id(id)?;
        }
        due.sort();
        due.dedup();
        let mut purge = StorePurge {
            workspace_id: plan.workspace_id.clone(),
            plan_hash: plan.plan_hash.clone(),
            bundle_ids: Vec::new(),
            kept: Vec::new(),
        };
        if plan.legal_hold || due.is_empty() {
            purge.kept = due;
            return Ok(purge);
        }
        let fail = self.fail();
        self.tx(|tx| {
            let head = lock_head(tx, &plan.workspace_id, &fail)?;
            let held: Vec<String> = tx
                .query(
                    "SELECT bundle_id FROM audit_bundles WHERE workspace_id = $1
                     AND bundle_id = ANY ($2) ORDER BY bundle_id",
                    &[&plan.workspace_id, &due],
                )
                .map_err(&fail)?
                .iter()
                .map(|r| r.try_get(0).map_err(&fail))
                .collect::<Result<_, _>>()?;
            for id in due {
                if held.contains(&id) && head.as_deref() != Some(id.as_str()) {
                    purge.bundle_ids.push(id);
                } else {
                    purge.kept.push(id);
                }
            }
            if purge.bundle_ids.is_empty() {
                return Ok(());
            }
            tx.execute(
                "INSERT INTO bundle_purges (workspace_id, plan_hash, bundle_ids) VALUES ($1, $2, $3)",
                &[&plan.workspace_id, &plan.plan_hash, &purge.bundle_ids],
            )
            .map_err(&fail)?;
            for table in ["bundle_signatures", "bundle_events", "audit_bundles"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE bundle_id = ANY ($1)"),
                    &[&purge.bundle_ids],
                )
                .map_err(&fail)?;
            }
            Ok(())
        })?;
        Ok(purge)
    }

    /// The purges recorded for a workspace, oldest first.
    pub fn purges(&self, workspace_id: &str) -> Result<Vec<StorePurge>, AuditError> {
        let fail = self.fail();
        self.with(|c| {
            c.query(
                "SELECT plan_hash, bundle_ids FROM bundle_purges WHERE workspace_id = $1 ORDER BY id",
                &[&workspace_id],
            )
            .map_err(&fail)?
            .iter()
            .map(|r| {
                Ok(StorePurge {
                    workspace_id: workspace_id.to_string(),
                    plan_hash: r.try_get(0).map_err(&fail)?,
                    bundle_ids: r.try_get(1).map_err(&fail)?,
                    kept: Vec::new(),
                })
            })
            .collect()
        })
    }

    fn origin(&self) -> String {
        format!("{} (table audit_bundles)", self.url())
    }

    /// Store `b` under the plan, in `tx` (which holds the bundle's lock).
    fn write(&self, tx: &mut Transaction<'_>, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
        let fail = self.fail();
        let existing = read_record(tx, &b.bundle_id, &fail)?;
        let (record, outcome) = plan_put(existing.as_ref(), b, &self.trusted)?;
        let Some(record) = record else {
            return Ok(outcome);
        };
        let first_new = existing.as_ref().map_or(0, |r| r.envelope.signatures.len());
        let first_event = existing.as_ref().map_or(0, |r| r.events.len());
        if existing.is_none() {
            let t = Timestamp::parse(&b.created_at)
                .ok_or_else(|| corrupt(&b.bundle_id, "createdAt is not RFC 3339"))?;
            let previous = b.bundle()?.previous_bundle_ref;
            let nanos = i32::try_from(t.nanos).map_err(|_| AuditError::internal("nanos"))?;
            tx.execute(
                "INSERT INTO audit_bundles (bundle_id, workspace_id, created_at, created_seconds,
                 created_nanos, previous_bundle_id, payload_type, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &b.bundle_id,
                    &b.workspace_id,
                    &b.created_at,
                    &t.seconds,
                    &nanos,
                    &previous,
                    &record.envelope.payload_type,
                    &record.envelope.payload,
                ],
            )
            .map_err(&fail)?;
        }
        for (i, s) in record
            .envelope
            .signatures
            .iter()
            .enumerate()
            .skip(first_new)
        {
            let position = i32::try_from(i).map_err(|_| AuditError::internal("position"))?;
            tx.execute(
                "INSERT INTO bundle_signatures (bundle_id, position, keyid, sig) VALUES ($1, $2, $3, $4)",
                &[&b.bundle_id, &position, &s.keyid, &s.sig],
            )
            .map_err(&fail)?;
        }
        for e in record.events.iter().skip(first_event) {
            let sequence =
                i32::try_from(e.sequence).map_err(|_| AuditError::internal("sequence"))?;
            let text = serde_json::to_vec(e).map_err(|e| AuditError::internal(&e.to_string()))?;
            let text = String::from_utf8(jcs::canonicalize(&text)?)
                .map_err(|e| AuditError::internal(&e.to_string()))?;
            tx.execute(
                "INSERT INTO bundle_events (bundle_id, sequence, event) VALUES ($1, $2, $3)",
                &[&b.bundle_id, &sequence, &text],
            )
            .map_err(&fail)?;
        }
        Ok(outcome)
    }
}

/// A failure inside a pooled call: the pool's own (a connection that
/// could not be opened), or the call's.
enum InPool {
    Pg(PgFailure),
    Audit(AuditError),
}

impl From<PgFailure> for InPool {
    fn from(f: PgFailure) -> InPool {
        InPool::Pg(f)
    }
}

impl From<AuditError> for InPool {
    fn from(e: AuditError) -> InPool {
        InPool::Audit(e)
    }
}

impl PostgresBundleStore {
    /// Run `f` on a pooled connection; a failure to connect names the URL.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        self.pool
            .with(|c| f(&mut c.client).map_err(InPool::Audit))
            .map_err(|e| match e {
                InPool::Pg(f) => storage(self.url(), f),
                InPool::Audit(e) => e,
            })
    }
}

/// Take the lock of one bundle id for the transaction (two writers of one
/// id take turns; of different ids, rarely share a key and never wait long).
fn lock_bundle(
    tx: &mut Transaction<'_>,
    bundle_id: &str,
    fail: &impl Fn(PgError) -> AuditError,
) -> Result<(), AuditError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        &[&bundle_id],
    )
    .map_err(fail)?;
    Ok(())
}

/// Lock a workspace's `chain_heads` row (made when missing) and read its
/// head id.
fn lock_head(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    fail: &impl Fn(PgError) -> AuditError,
) -> Result<Option<String>, AuditError> {
    tx.execute(
        "INSERT INTO chain_heads (workspace_id, head_bundle_id) VALUES ($1, NULL)
         ON CONFLICT (workspace_id) DO NOTHING",
        &[&workspace_id],
    )
    .map_err(fail)?;
    tx.query_one(
        "SELECT head_bundle_id FROM chain_heads WHERE workspace_id = $1 FOR UPDATE",
        &[&workspace_id],
    )
    .and_then(|r| r.try_get(0))
    .map_err(fail)
}

/// A bundle of `workspace_id` that names `head_id` as its previous (an
/// index probe), as an error: a head with a successor is not the chain's
/// tip, and a bundle chained to it would fork the chain.
fn check_no_successor(
    c: &mut impl GenericClient,
    workspace_id: &str,
    head_id: &str,
    fail: &impl Fn(PgError) -> AuditError,
) -> Result<(), AuditError> {
    let next: Option<String> = c
        .query_opt(
            "SELECT bundle_id FROM audit_bundles
             WHERE previous_bundle_id = $1 AND workspace_id = $2
             ORDER BY bundle_id LIMIT 1",
            &[&head_id, &workspace_id],
        )
        .map_err(fail)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(fail)?;
    match next {
        None => Ok(()),
        Some(next) => Err(head_has_successor(workspace_id, head_id, &next)),
    }
}

fn head_has_successor(workspace_id: &str, head_id: &str, next: &str) -> AuditError {
    corrupt(
        head_id,
        format!(
            "the chain of workspace {workspace_id} names it as its head, but the store \
             holds {next}, which follows it: the head row was rolled back (or {next} was \
             stored by `put` alone), and a bundle chained to it would fork the chain"
        ),
    )
}

/// A bundle's record as the tables hold it (unchecked).
fn read_record(
    c: &mut impl GenericClient,
    bundle_id: &str,
    fail: &impl Fn(PgError) -> AuditError,
) -> Result<Option<Record>, AuditError> {
    let row = c
        .query_opt(
            "SELECT b.payload_type, b.payload,
               (SELECT coalesce(json_agg(json_build_object('keyid', s.keyid, 'sig', s.sig)
                                         ORDER BY s.position), '[]')::text
                FROM bundle_signatures s WHERE s.bundle_id = b.bundle_id),
               (SELECT coalesce(json_agg(e.event ORDER BY e.sequence), '[]')::text
                FROM bundle_events e WHERE e.bundle_id = b.bundle_id)
             FROM audit_bundles b WHERE b.bundle_id = $1",
            &[&bundle_id],
        )
        .map_err(fail)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let payload_type: String = row.try_get(0).map_err(fail)?;
    let payload: String = row.try_get(1).map_err(fail)?;
    let signatures: String = row.try_get(2).map_err(fail)?;
    let events: String = row.try_get(3).map_err(fail)?;
    let signatures: Vec<EnvelopeSignature> = serde_json::from_str(&signatures)
        .map_err(|e| corrupt(bundle_id, format!("its signatures do not read: {e}")))?;
    let events: Vec<String> = serde_json::from_str(&events)
        .map_err(|e| corrupt(bundle_id, format!("its history does not read: {e}")))?;
    let events = events
        .iter()
        .map(|t| serde_json::from_str::<StoreEvent>(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| corrupt(bundle_id, format!("a store event does not read: {e}")))?;
    Ok(Some(Record {
        format: RECORD_FORMAT.into(),
        envelope: Envelope {
            payload,
            payload_type,
            signatures,
        },
        events,
    }))
}

impl PostgresBundleStore {
    fn checked(&self, bundle_id: &str, r: Record) -> Result<StoredBundle, AuditError> {
        check_read(r.check(bundle_id)?, &self.trusted, &self.origin())
    }

    fn read_only(&self, b: &StoredBundle) -> Option<Result<PutOutcome, AuditError>> {
        self.trusted
            .is_empty()
            .then(|| plan_put(None, b, &self.trusted).map(|(_, o)| o))
    }
}

impl BundleStore for PostgresBundleStore {
    fn put(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
        check_bundle_id(&b.bundle_id)?;
        if let Some(refused) = self.read_only(b) {
            return refused;
        }
        // Every check that needs no database first.
        plan_put(None, b, &self.trusted)?;
        let fail = self.fail();
        self.tx(|tx| {
            lock_bundle(tx, &b.bundle_id, &fail)?;
            self.write(tx, b)
        })
    }

    fn put_next(&self, b: &StoredBundle) -> Result<PutOutcome, AuditError> {
        check_bundle_id(&b.bundle_id)?;
        if let Some(refused) = self.read_only(b) {
            return refused;
        }
        plan_put(None, b, &self.trusted)?;
        let fail = self.fail();
        self.tx(|tx| {
            let head_id = lock_head(tx, &b.workspace_id, &fail)?;
            lock_bundle(tx, &b.bundle_id, &fail)?;
            if read_record(tx, &b.bundle_id, &fail)?.is_some() {
                return self.write(tx, b);
            }
            let head = match &head_id {
                Some(id) => {
                    check_no_successor(tx, &b.workspace_id, id, &fail)?;
                    let r = read_record(tx, id, &fail)?.ok_or_else(|| {
                        corrupt(id, "the chain's head names a bundle the store does not hold")
                    })?;
                    Some(self.checked(id, r)?)
                }
                // Bundles stored by `put` alone: the tip of their chain.
                None => tip_of(list_in(tx, &b.workspace_id, None, None, &fail)?
                    .into_iter()
                    .map(|(id, r)| self.checked(&id, r))
                    .collect::<Result<Vec<_>, _>>()?)?,
            };
            check_next(b, head.as_ref())?;
            let outcome = self.write(tx, b)?;
            tx.execute(
                "UPDATE chain_heads SET head_bundle_id = $2, updated_at = now() WHERE workspace_id = $1",
                &[&b.workspace_id, &b.bundle_id],
            )
            .map_err(&fail)?;
            Ok(outcome)
        })
    }

    fn check_publishable(&self, b: &StoredBundle) -> Result<(), AuditError> {
        plan_put(None, b, &self.trusted).map(|_| ())
    }

    fn head(&self, workspace_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        let fail = self.fail();
        // The head and its successor in one statement, so in one snapshot
        // (a writer moving the head between two reads is not a successor).
        let row = self.with(|c| {
            c.query_opt(
                "SELECT h.head_bundle_id,
                   (SELECT b.bundle_id FROM audit_bundles b
                    WHERE b.previous_bundle_id = h.head_bundle_id
                      AND b.workspace_id = h.workspace_id
                    ORDER BY b.bundle_id LIMIT 1)
                 FROM chain_heads h WHERE h.workspace_id = $1",
                &[&workspace_id],
            )
            .map_err(&fail)?
            .map(|r| {
                Ok::<_, PgError>((
                    r.try_get::<_, Option<String>>(0)?,
                    r.try_get::<_, Option<String>>(1)?,
                ))
            })
            .transpose()
            .map_err(&fail)
        })?;
        let id = match row {
            Some((Some(id), Some(next))) => {
                return Err(head_has_successor(workspace_id, &id, &next));
            }
            Some((id, _)) => id,
            None => None,
        };
        match id {
            Some(id) => match self.get(&id)? {
                Some(b) => head_of(workspace_id, b).map(Some),
                None => Err(corrupt(
                    &id,
                    "the chain's head names a bundle the store does not hold",
                )),
            },
            None => tip_of(self.list(workspace_id, None, None)?),
        }
    }

    fn get(&self, bundle_id: &str) -> Result<Option<StoredBundle>, AuditError> {
        check_bundle_id(bundle_id)?;
        let fail = self.fail();
        let record = self.with(|c| read_record(c, bundle_id, &fail))?;
        record.map(|r| self.checked(bundle_id, r)).transpose()
    }

    fn list(
        &self,
        workspace_id: &str,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<StoredBundle>, AuditError> {
        let (f, t) = (bound(from, "from")?, bound(to, "to")?);
        let fail = self.fail();
        let records = self.with(|c| list_in(c, workspace_id, f, t, &fail))?;
        let mut v = records
            .into_iter()
            .map(|(id, r)| self.checked(&id, r))
            .collect::<Result<Vec<_>, _>>()?;
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
        let fail = self.fail();
        let take = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let records = self.with(|c| {
            let start: (i64, i32, String) = match after {
                None => (i64::MIN, 0, String::new()),
                Some(a) => {
                    let row = c
                        .query_opt(
                            "SELECT created_seconds, created_nanos FROM audit_bundles
                             WHERE bundle_id = $1 AND workspace_id = $2",
                            &[&a, &workspace_id],
                        )
                        .map_err(&fail)?
                        .ok_or_else(|| unknown_cursor(workspace_id, a))?;
                    (
                        row.try_get(0).map_err(&fail)?,
                        row.try_get(1).map_err(&fail)?,
                        a.to_string(),
                    )
                }
            };
            let ids: Vec<String> = c
                .query(
                    "SELECT bundle_id FROM audit_bundles WHERE workspace_id = $1
                     AND (created_seconds, created_nanos, bundle_id COLLATE \"C\") > ($2, $3, $4 COLLATE \"C\")
                     ORDER BY created_seconds, created_nanos, bundle_id COLLATE \"C\" LIMIT $5",
                    &[&workspace_id, &start.0, &start.1, &start.2, &take],
                )
                .map_err(&fail)?
                .iter()
                .map(|r| r.try_get(0).map_err(&fail))
                .collect::<Result<_, _>>()?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(r) = read_record(c, &id, &fail)? {
                    out.push((id, r));
                }
            }
            Ok(out)
        })?;
        let bundles = records
            .into_iter()
            .map(|(id, r)| self.checked(&id, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BundlePage::of(bundles, limit))
    }

    fn history(&self, bundle_id: &str) -> Result<Vec<StoreEvent>, AuditError> {
        check_bundle_id(bundle_id)?;
        let fail = self.fail();
        Ok(self
            .with(|c| read_record(c, bundle_id, &fail))?
            .map(|r| r.events)
            .unwrap_or_default())
    }
}

/// A workspace's records created in `[from, to)`, with their ids.
fn list_in(
    c: &mut impl GenericClient,
    workspace_id: &str,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    fail: &impl Fn(PgError) -> AuditError,
) -> Result<Vec<(String, Record)>, AuditError> {
    let key = |t: Option<Timestamp>, open: (i64, i32)| match t {
        Some(t) => (t.seconds, i32::try_from(t.nanos).unwrap_or(i32::MAX)),
        None => open,
    };
    let (fs, fnanos) = key(from, (i64::MIN, 0));
    let (ts, tnanos) = key(to, (i64::MAX, i32::MAX));
    let ids: Vec<String> = c
        .query(
            "SELECT bundle_id FROM audit_bundles WHERE workspace_id = $1
             AND (created_seconds, created_nanos) >= ($2, $3)
             AND (created_seconds, created_nanos) < ($4, $5)
             ORDER BY created_seconds, created_nanos, bundle_id",
            &[&workspace_id, &fs, &fnanos, &ts, &tnanos],
        )
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get(0).map_err(fail))
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = read_record(c, &id, fail)? {
            out.push((id, r));
        }
    }
    Ok(out)
}
