//! The usage ledger in a SQLite file (feature `sqlite`): the embedded
//! default. WAL journal, `synchronous = NORMAL` (a process crash loses no
//! committed transaction; a power loss may lose the last ones), every
//! reservation in one `BEGIN IMMEDIATE` transaction, so that writers from
//! any number of threads and processes are serialized and no two
//! reservations together pass a limit. Tables follow the design's
//! `workspace_quotas` and `model_usage`; `usage_totals` keeps running sums
//! per (workspace, kind, period, period index), committed and reserved,
//! updated in the same transactions, so that a check is a few primary-key
//! lookups however long the history. Reservations past their expiry are
//! swept (their holds given back) at the start of each write. A commit
//! writes its usage row (one per commit, keyed by the reservation's id) and
//! the totals, and leaves an active reservation's row as it was: the usage
//! row is what says it is committed, and the sweep finishes such rows in
//! batches. The schema version is SQLite's `user_version`, migrated in
//! order.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use super::UsageError;
use super::ledger::{
    Amounts, CommitReceipt, Kind, Period, Quota, QuotaStatus, Reservation, UsageLedger,
    check_amounts, check_id, check_kind, check_ttl, judge, merge_limits, parse_now,
    parse_reservation_id, to_i64,
};
use super::retention::RetentionPlan;
use crate::time::Timestamp;

/// The newest ledger schema this library writes and reads.
pub const LEDGER_SCHEMA_VERSION: i64 = 3;

/// How long a writer waits for another's transaction before
/// [`UsageError::LedgerLocked`].
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations, by the version they produce. Each runs in one
/// transaction with foreign keys off (SQLite's procedure for rebuilding a
/// table), checked before it commits.
const MIGRATIONS: [(i64, &str); 3] = [
    (
        1,
        "CREATE TABLE workspace_quotas (
        workspace_id TEXT NOT NULL,
        quota_type TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        limit_value INTEGER NOT NULL CHECK (limit_value >= 0),
        PRIMARY KEY (workspace_id, quota_type, period)
    ) WITHOUT ROWID;
    CREATE TABLE reservations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        day INTEGER NOT NULL,
        month INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'lapsed', 'committed', 'released', 'superseded')),
        expired INTEGER NOT NULL DEFAULT 0,
        breached TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX reservations_by_job ON reservations (workspace_id, job_id);
    CREATE INDEX reservations_active_by_expiry ON reservations (expires_at) WHERE state = 'active';
    CREATE TABLE reservation_amounts (
        reservation_id INTEGER NOT NULL REFERENCES reservations (id),
        kind TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount >= 0),
        PRIMARY KEY (reservation_id, kind)
    ) WITHOUT ROWID;
    CREATE TABLE model_usage (
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        reservation_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        amount INTEGER NOT NULL CHECK (amount >= 0),
        committed_at INTEGER NOT NULL,
        day INTEGER NOT NULL,
        month INTEGER NOT NULL,
        expired INTEGER NOT NULL,
        PRIMARY KEY (workspace_id, job_id, kind)
    ) WITHOUT ROWID;
    CREATE TABLE usage_totals (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        period_index INTEGER NOT NULL,
        committed INTEGER NOT NULL CHECK (committed >= 0),
        reserved INTEGER NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (workspace_id, kind, period, period_index)
    ) WITHOUT ROWID;",
    ),
    // Version 2: the CHECKs of the two tables every reservation and commit
    // writes spelled as comparisons (SQLite builds an `IN (...)` list of a
    // CHECK into a temporary b-tree on every row written: seven a
    // reserve+commit pair, about a fifth of its instructions), and a
    // reservation's amounts in its own row (`held`, `kind:amount` by
    // comma) instead of a row per kind in `reservation_amounts`: three
    // statements a pair fewer; and ids without AUTOINCREMENT, whose
    // `sqlite_sequence` row cost every reservation a page written: an id
    // is one more than the largest in the table and than
    // `reservation_id_floor`, which a purge raises to the largest id
    // before it deletes (so an id is never handed out twice). The rows and
    // the sequence are kept.
    (
        2,
        "CREATE TABLE usage_totals_v2 (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period = 'day' OR period = 'month' OR period = 'total'),
        period_index INTEGER NOT NULL,
        committed INTEGER NOT NULL CHECK (committed >= 0),
        reserved INTEGER NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (workspace_id, kind, period, period_index)
    ) WITHOUT ROWID;
    INSERT INTO usage_totals_v2 (workspace_id, kind, period, period_index, committed, reserved)
        SELECT workspace_id, kind, period, period_index, committed, reserved FROM usage_totals;
    DROP TABLE usage_totals;
    ALTER TABLE usage_totals_v2 RENAME TO usage_totals;
    CREATE TABLE reservations_v2 (
        id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        day INTEGER NOT NULL,
        month INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state = 'active' OR state = 'lapsed' OR state = 'committed'
                                   OR state = 'released' OR state = 'superseded'),
        expired INTEGER NOT NULL DEFAULT 0,
        breached TEXT NOT NULL DEFAULT '',
        held TEXT NOT NULL DEFAULT ''
    );
    INSERT INTO reservations_v2 (id, workspace_id, job_id, created_at, expires_at, day, month,
                                 state, expired, breached, held)
        SELECT id, workspace_id, job_id, created_at, expires_at, day, month, state, expired,
               breached,
               coalesce((SELECT group_concat(kind || ':' || amount, ',') FROM reservation_amounts
                          WHERE reservation_id = reservations.id), '')
        FROM reservations;
    DROP TABLE reservation_amounts;
    CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO ledger_meta (key, value)
        SELECT 'reservation_id_floor',
               max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'reservations'), 0),
                   coalesce((SELECT max(id) FROM reservations), 0));
    DROP TABLE reservations;
    ALTER TABLE reservations_v2 RENAME TO reservations;
    CREATE INDEX reservations_by_job ON reservations (workspace_id, job_id);
    CREATE INDEX reservations_active_by_expiry ON reservations (expires_at) WHERE state = 'active';",
    ),
    // Version 3: a commit's usage in one row keyed by its reservation's id
    // (its amounts as in `held`, with the receipt's `expired` and
    // `breached`), appended in id order, instead of a row per kind keyed by
    // (workspace, job, kind), whose inserts rebalanced the middle of the
    // tree; and a commit of an active reservation leaves the reservation's
    // row as it is: the usage row marks it committed, and the expiry sweep
    // (or a purge) finishes the row later, many to a page. Two pages a
    // reserve+commit pair fewer written (BENCHMARKS.md). A reservation is
    // committed when its state says so or it has a usage row.
    (
        3,
        "CREATE TABLE model_usage_v3 (
        reservation_id INTEGER PRIMARY KEY,
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        amounts TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        day INTEGER NOT NULL,
        month INTEGER NOT NULL,
        expired INTEGER NOT NULL CHECK (expired = 0 OR expired = 1),
        breached TEXT NOT NULL
    );
    INSERT INTO model_usage_v3 (reservation_id, workspace_id, job_id, amounts, committed_at, day,
                                month, expired, breached)
        SELECT u.reservation_id, min(u.workspace_id), min(u.job_id),
               group_concat(u.kind || ':' || u.amount, ','), min(u.committed_at), min(u.day),
               min(u.month), max(u.expired),
               coalesce((SELECT r.breached FROM reservations r WHERE r.id = u.reservation_id), '')
        FROM model_usage u GROUP BY u.reservation_id;
    DROP TABLE model_usage;
    ALTER TABLE model_usage_v3 RENAME TO model_usage;",
    ),
];

/// The ledger's tables (a file without them is not a ledger).
const TABLES: [&str; 5] = [
    "workspace_quotas",
    "reservations",
    "ledger_meta",
    "model_usage",
    "usage_totals",
];

/// How long a SQLite ledger's commit waits for the disk (SQLite's
/// `synchronous` setting, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Durability {
    /// `synchronous = NORMAL` (the default): a committed reservation or
    /// usage survives a crash of the process; a power loss or an operating
    /// system crash may lose the last commits (never corrupts the file).
    #[default]
    Normal,
    /// `synchronous = FULL`: every commit is on the disk (`fsync`) before
    /// it returns, so it survives a power loss too; each commit waits for
    /// the disk.
    Full,
}

impl Durability {
    /// The spelling at the front doors: `"normal"` or `"full"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Normal => "normal",
            Durability::Full => "full",
        }
    }
}

impl std::str::FromStr for Durability {
    type Err = UsageError;
    fn from_str(s: &str) -> Result<Self, UsageError> {
        match s {
            "normal" => Ok(Durability::Normal),
            "full" => Ok(Durability::Full),
            other => Err(UsageError::InvalidInput {
                pointer: "/durability".into(),
                message: format!("durability is \"normal\" or \"full\", not {other:?}"),
            }),
        }
    }
}

/// A usage ledger in a SQLite file. Thread-safe; several processes may
/// open the same file.
#[derive(Debug)]
pub struct SqliteLedger {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// Run `f` again while SQLite answers busy or locked without having waited
/// (as switching the journal mode does), up to [`BUSY_TIMEOUT`] in all.
fn busy_retry<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let step = Duration::from_millis(20);
    let attempts = BUSY_TIMEOUT.as_millis() / step.as_millis();
    let mut n = 0;
    loop {
        match f() {
            Err(e)
                if n < attempts
                    && matches!(
                        e.sqlite_error_code(),
                        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                    ) =>
            {
                n += 1;
                std::thread::sleep(step);
            }
            other => return other,
        }
    }
}

fn storage(path: &Path, e: rusqlite::Error) -> UsageError {
    let path = path.display().to_string();
    if matches!(
        &e,
        rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::InvalidColumnType(..)
    ) {
        // A row no ledger of ours writes: never read as 0 or skipped.
        return UsageError::LedgerCorrupt {
            path,
            message: format!("a row holds a value out of range: {e}"),
        };
    }
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => UsageError::LedgerLocked {
            path,
            message: e.to_string(),
        },
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => UsageError::LedgerCorrupt {
            path,
            message: e.to_string(),
        },
        Some(ErrorCode::CannotOpen) => UsageError::LedgerMissing { path },
        _ => UsageError::Storage {
            message: format!("{path}: {e}"),
            source: Some(crate::kind::Cause::new(e)),
        },
    }
}

impl SqliteLedger {
    /// Open the ledger at `path`, creating it (and its schema) when the
    /// file does not exist. A file that is not a ledger is
    /// [`UsageError::LedgerCorrupt`]; one written by a newer library,
    /// [`UsageError::LedgerVersion`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, UsageError> {
        Self::open_with(path.as_ref(), true, Durability::Normal)
    }

    /// [`SqliteLedger::open`] with the durability of its commits (several
    /// processes may open one file with different durabilities: each
    /// connection's commits wait as it was told).
    pub fn open_with_durability(
        path: impl AsRef<Path>,
        durability: Durability,
    ) -> Result<Self, UsageError> {
        Self::open_with(path.as_ref(), true, durability)
    }

    /// Open an existing ledger ([`UsageError::LedgerMissing`] when there is none).
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, UsageError> {
        Self::open_with(path.as_ref(), false, Durability::Normal)
    }

    /// The durability of this connection's commits, as SQLite reports it.
    pub fn durability(&self) -> Result<Durability, UsageError> {
        let conn = self.lock()?;
        let level: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        // 1 is NORMAL, 2 FULL, 3 EXTRA (stronger than FULL).
        Ok(if level >= 2 {
            Durability::Full
        } else {
            Durability::Normal
        })
    }

    fn open_with(path: &Path, create: bool, durability: Durability) -> Result<Self, UsageError> {
        if path.as_os_str().is_empty() {
            // SQLite would open a temporary database that vanishes on close.
            return Err(UsageError::InvalidInput {
                pointer: "/path".into(),
                message: "the ledger path is empty: name a file".into(),
            });
        }
        if !create && !path.exists() {
            return Err(UsageError::LedgerMissing {
                path: path.display().to_string(),
            });
        }
        let err = |e: rusqlite::Error| storage(path, e);
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        // A file that is not a database fails here. The version and the
        // tables are read in one statement (one snapshot): another process
        // may be creating the ledger's schema at this very moment.
        let (version, tables): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT user_version FROM pragma_user_version),
                        (SELECT count(*) FROM sqlite_master
                          WHERE type IN ('table', 'view', 'index', 'trigger'))",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        if version > LEDGER_SCHEMA_VERSION {
            return Err(UsageError::LedgerVersion {
                path: path.display().to_string(),
                found: version,
                supported: LEDGER_SCHEMA_VERSION,
            });
        }
        // Version 0 with tables: another application's database. Refused
        // before anything (even the journal mode) is changed in it.
        if version == 0 && tables > 0 {
            return Err(UsageError::LedgerCorrupt {
                path: path.display().to_string(),
                message:
                    "not a usage ledger: a database with other tables (another application's?); \
                          it is left as it is"
                        .into(),
            });
        }
        // Switching to WAL takes the file exclusively and does not wait on
        // the busy handler: a second process opening the ledger at the same
        // moment is answered "busy" at once. Skip it when the file is in WAL
        // already, and retry a busy answer for as long as the busy timeout.
        busy_retry(|| {
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            if mode.eq_ignore_ascii_case("wal") {
                Ok(())
            } else {
                conn.pragma_update(None, "journal_mode", "WAL")
            }
        })
        .map_err(err)?;
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(err)?;
        // The query planner stability guarantee: a statement keeps its plan
        // whatever values are bound (the ledger's statements are point
        // lookups on their keys). Without it this SQLite build (STAT4)
        // re-prepares a statement on every bind of a key: a seventh of a
        // reserve+commit pair's time.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map_err(err)?;
        let ledger = SqliteLedger {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        };
        ledger.migrate()?;
        ledger.check_schema()?;
        Ok(ledger)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, UsageError> {
        self.conn.lock().map_err(|_| UsageError::Storage {
            message: "ledger lock poisoned".into(),
            source: None,
        })
    }

    fn err(&self, e: rusqlite::Error) -> UsageError {
        storage(&self.path, e)
    }

    /// Apply the migrations past the file's version, in one transaction
    /// with foreign keys off (a table rebuild drops the table other tables
    /// refer to; SQLite ignores the switch inside a transaction), checked
    /// with `foreign_key_check` before the commit, then on again.
    fn migrate(&self) -> Result<(), UsageError> {
        let mut conn = self.lock()?;
        conn.pragma_update(None, "foreign_keys", false)
            .map_err(|e| self.err(e))?;
        let migrated = self.migrate_locked(&mut conn);
        let on = conn.pragma_update(None, "foreign_keys", true);
        migrated?;
        on.map_err(|e| self.err(e))
    }

    fn migrate_locked(&self, conn: &mut Connection) -> Result<(), UsageError> {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if version >= LEDGER_SCHEMA_VERSION {
            // Another process migrated it while this one waited.
            return Ok(());
        }
        for (v, sql) in MIGRATIONS {
            if v > version {
                tx.execute_batch(sql).map_err(|e| self.err(e))?;
                tx.pragma_update(None, "user_version", v)
                    .map_err(|e| self.err(e))?;
            }
        }
        let dangling: i64 = tx
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        if dangling != 0 {
            return Err(UsageError::LedgerCorrupt {
                path: self.path.display().to_string(),
                message: format!("{dangling} rows refer to rows that are not there; not migrated"),
            });
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// A file with the right version but not our tables is corrupt.
    fn check_schema(&self) -> Result<(), UsageError> {
        let conn = self.lock()?;
        let mut tables = 0;
        for t in TABLES {
            let found: i64 = conn
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    params![t],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            tables += found;
        }
        if tables != TABLES.len() as i64 {
            return Err(UsageError::LedgerCorrupt {
                path: self.path.display().to_string(),
                message: "the ledger's tables are missing".into(),
            });
        }
        Ok(())
    }

    /// Apply a retention plan's ledger part: after checking the plan
    /// against its hash, delete the workspace's ledger entries older than
    /// its `auditRetentionDays` at its `now`. A plan under legal hold
    /// deletes nothing. Returns the number of rows deleted.
    pub fn apply_retention(&self, plan: &RetentionPlan) -> Result<usize, UsageError> {
        plan.verify()?;
        if plan.legal_hold {
            return Ok(0);
        }
        let now = parse_now(&plan.now)?;
        let cutoff = now.plus_seconds(-i64::from(plan.audit_retention_days) * 86_400);
        self.purge(&plan.workspace_id, &cutoff.to_rfc3339())
    }

    /// Delete a workspace's usage records (`model_usage`, one per commit,
    /// found by a scan of the table: its key is the reservation's id) and
    /// finished reservations created before `before`, with the day and month totals
    /// of periods that ended before it (the retention plan's ledger part).
    /// The all-time totals stay: spending against a lifetime cap does not
    /// come back when its records are purged. Returns the rows deleted.
    pub fn purge(&self, workspace_id: &str, before: &str) -> Result<usize, UsageError> {
        let t = parse_now(before)?;
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let e = |e| self.err(e);
        // The ids handed out so far stay handed out, whatever is deleted.
        tx.execute(
            "UPDATE ledger_meta SET value = max(value, coalesce((SELECT max(id) FROM reservations), 0))
             WHERE key = 'reservation_id_floor'",
            [],
        )
        .map_err(e)?;
        // A committed reservation whose row the sweep has not finished yet
        // is finished first: once its usage row is gone, nothing else would
        // say it is committed.
        tx.execute(
            "UPDATE reservations SET state = 'committed',
                 expired = (SELECT u.expired FROM model_usage u WHERE u.reservation_id = reservations.id),
                 breached = (SELECT u.breached FROM model_usage u WHERE u.reservation_id = reservations.id)
             WHERE workspace_id = ?1 AND state = 'active'
               AND EXISTS (SELECT 1 FROM model_usage u WHERE u.reservation_id = reservations.id)",
            params![workspace_id],
        )
        .map_err(e)?;
        let mut n = tx
            .execute(
                "DELETE FROM model_usage WHERE workspace_id = ?1 AND committed_at < ?2",
                params![workspace_id, t.seconds],
            )
            .map_err(e)?;
        n += tx
            .execute(
                "DELETE FROM reservations WHERE workspace_id = ?1 AND created_at < ?2 AND state != 'active'",
                params![workspace_id, t.seconds],
            )
            .map_err(e)?;
        n += tx
            .execute(
                "DELETE FROM usage_totals WHERE workspace_id = ?1 AND reserved = 0 AND
                 ((period = 'day' AND period_index < ?2) OR (period = 'month' AND period_index < ?3))",
                params![workspace_id, Period::Day.index(t), Period::Month.index(t)],
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n)
    }
}

/// The quota of a row; a row out of range is corruption (a quota read as
/// absent would lift its limit).
fn quota_of(
    workspace_id: &str,
    kind: String,
    period: String,
    limit: i64,
) -> rusqlite::Result<Quota> {
    let period = Period::parse(&period).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            format!("{period:?} is not a period").into(),
        )
    })?;
    Ok(Quota {
        workspace_id: workspace_id.to_string(),
        kind,
        period,
        limit: nonnegative(2, limit)?,
    })
}

/// A count read from a row: negative is corruption.
fn nonnegative(column: usize, v: i64) -> rusqlite::Result<u64> {
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(column, v))
}

fn quotas_tx(tx: &rusqlite::Transaction<'_>, workspace_id: &str) -> rusqlite::Result<Vec<Quota>> {
    let mut st = tx.prepare_cached(
        "SELECT quota_type, period, limit_value FROM workspace_quotas WHERE workspace_id = ?1
         ORDER BY quota_type, period",
    )?;
    let rows = st.query_map(params![workspace_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (k, p, l) = row?;
        out.push(quota_of(workspace_id, k, p, l)?);
    }
    Ok(out)
}

/// A quota with its period's (committed, reserved) totals at some instant.
type Standing = (Quota, u64, u64);

/// The stored quotas of `workspace_id` with their periods' totals at `t`,
/// in one query (a quota without a totals row has used nothing yet).
fn stored_standings_tx(
    tx: &rusqlite::Transaction<'_>,
    workspace_id: &str,
    t: Timestamp,
) -> rusqlite::Result<Vec<Standing>> {
    let mut st = tx.prepare_cached(
        "SELECT q.quota_type, q.period, q.limit_value,
                coalesce(u.committed, 0), coalesce(u.reserved, 0)
         FROM workspace_quotas q LEFT JOIN usage_totals u
           ON u.workspace_id = q.workspace_id AND u.kind = q.quota_type AND u.period = q.period
          AND u.period_index = CASE q.period WHEN 'day' THEN ?2 WHEN 'month' THEN ?3 ELSE 0 END
         WHERE q.workspace_id = ?1
         ORDER BY q.quota_type, q.period",
    )?;
    let rows = st.query_map(
        params![workspace_id, Period::Day.index(t), Period::Month.index(t)],
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (k, p, l, c, r) = row?;
        out.push((
            quota_of(workspace_id, k, p, l)?,
            nonnegative(3, c)?,
            nonnegative(4, r)?,
        ));
    }
    Ok(out)
}

/// (committed, reserved) of `kind` in the `period` with `index`.
fn totals_tx(
    tx: &rusqlite::Transaction<'_>,
    workspace_id: &str,
    kind: &str,
    period: Period,
    index: i64,
) -> rusqlite::Result<(u64, u64)> {
    let mut st = tx.prepare_cached(
        "SELECT committed, reserved FROM usage_totals
         WHERE workspace_id = ?1 AND kind = ?2 AND period = ?3 AND period_index = ?4",
    )?;
    let row: Option<(i64, i64)> = st
        .query_row(params![workspace_id, kind, period.as_str(), index], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (c, r) = row.unwrap_or((0, 0));
    Ok((nonnegative(0, c)?, nonnegative(1, r)?))
}

/// Add `committed` and `reserved` (either may be negative) to the totals
/// of `kind` at day `day` and month `month`, never below zero: the day,
/// month and all-time rows in one statement. A sum past SQLite's 64-bit
/// integers (which SQLite would turn into a REAL) is set to NULL instead,
/// which the columns' NOT NULL refuses; that refusal is returned as
/// [`UsageError::Overflow`] naming the column, and the caller's
/// transaction rolls back, so nothing of it stays. (Measured: one
/// statement for the three rows costs fewer instructions than a
/// single-row statement run three times.)
fn add_totals_tx(
    tx: &rusqlite::Transaction<'_>,
    workspace_id: &str,
    kind: &str,
    (day, month): (i64, i64),
    committed: i64,
    reserved: i64,
) -> Result<(), TotalsError> {
    let mut st = tx.prepare_cached(
        "INSERT INTO usage_totals (workspace_id, kind, period, period_index, committed, reserved)
         VALUES (?1, ?2, 'day', ?3, max(?5, 0), max(?6, 0)),
                (?1, ?2, 'month', ?4, max(?5, 0), max(?6, 0)),
                (?1, ?2, 'total', 0, max(?5, 0), max(?6, 0))
         ON CONFLICT (workspace_id, kind, period, period_index) DO UPDATE SET
           committed = CASE WHEN typeof(committed + ?5) = 'integer'
                            THEN max(committed + ?5, 0) END,
           reserved = CASE WHEN typeof(reserved + ?6) = 'integer'
                           THEN max(reserved + ?6, 0) END",
    )?;
    match st.execute(params![workspace_id, kind, day, month, committed, reserved]) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(f, Some(message)))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_NOTNULL =>
        {
            let column = if message.ends_with("usage_totals.committed") {
                "committed"
            } else {
                "reserved"
            };
            Err(TotalsError::Overflow(format!("the {kind} {column}")))
        }
        Err(e) => Err(e.into()),
    }
}

/// Why a totals update failed: the database, or a sum past its integers.
enum TotalsError {
    Sql(rusqlite::Error),
    Overflow(String),
}

impl From<rusqlite::Error> for TotalsError {
    fn from(e: rusqlite::Error) -> Self {
        TotalsError::Sql(e)
    }
}

impl SqliteLedger {
    /// The quotas a check of `workspace_id` at `t` judges (the stored
    /// ones merged with `limits`, as [`merge_limits`] says) with their
    /// periods' totals.
    fn standings(
        &self,
        tx: &rusqlite::Transaction<'_>,
        workspace_id: &str,
        t: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<Standing>, UsageError> {
        let e = |e| self.err(e);
        let stored = stored_standings_tx(tx, workspace_id, t).map_err(e)?;
        if limits.is_empty() {
            return Ok(stored);
        }
        let quotas = merge_limits(
            workspace_id,
            stored.iter().map(|(q, _, _)| q.clone()).collect(),
            limits,
        )?;
        let mut out = Vec::with_capacity(quotas.len());
        for q in quotas {
            let (used, reserved) = match stored
                .iter()
                .find(|(s, _, _)| s.kind == q.kind && s.period == q.period)
            {
                Some((_, c, r)) => (*c, *r),
                // A limit of the caller's that no stored quota names.
                None => {
                    totals_tx(tx, workspace_id, &q.kind, q.period, q.period.index(t)).map_err(e)?
                }
            };
            out.push((q, used, reserved));
        }
        Ok(out)
    }

    /// The error of a failed totals update.
    fn totals_err(&self, e: TotalsError) -> UsageError {
        match e {
            TotalsError::Sql(e) => self.err(e),
            TotalsError::Overflow(what) => UsageError::Overflow { what },
        }
    }
}

/// Amounts by kind as a row keeps them (a reservation's `held`, a commit's
/// `amounts` in `model_usage`): `kind:amount` pairs separated by commas (kinds are `[a-z0-9_]{1,64}`,
/// amounts decimal, nonnegative, fitting an i64; no kind twice). Anything
/// else in the column is corruption, refused when the row is read.
struct Held(Vec<(String, i64)>);

impl Held {
    fn encode(amounts: &Amounts) -> Result<String, UsageError> {
        let mut out = String::new();
        for (k, v) in amounts {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(k.as_str());
            out.push(':');
            out.push_str(&to_i64(*v, k)?.to_string());
        }
        Ok(out)
    }

    fn parse(text: &str) -> Option<Held> {
        let mut out: Vec<(String, i64)> = Vec::new();
        if text.is_empty() {
            return Some(Held(out));
        }
        for pair in text.split(',') {
            let (kind, amount) = pair.split_once(':')?;
            if check_kind(kind).is_err()
                || amount.is_empty()
                || !amount.bytes().all(|b| b.is_ascii_digit())
                || out.iter().any(|(k, _)| k == kind)
            {
                return None;
            }
            out.push((kind.to_string(), amount.parse().ok()?));
        }
        Some(Held(out))
    }
}

impl rusqlite::types::FromSql for Held {
    fn column_result(value: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let text = value.as_str()?;
        Held::parse(text).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(
                format!(
                    "{:?} is not a list of amounts by kind",
                    text.chars().take(80).collect::<String>()
                )
                .into(),
            )
        })
    }
}

/// Give back the hold `held` of a reservation (made at `day`, `month`).
fn unhold_tx(
    tx: &rusqlite::Transaction<'_>,
    held: &Held,
    workspace_id: &str,
    at: (i64, i64),
) -> Result<(), TotalsError> {
    for (kind, amount) in &held.0 {
        add_totals_tx(tx, workspace_id, kind, at, 0, -amount)?;
    }
    Ok(())
}

/// A query of reservations' rows, each with its commit's usage row if it
/// has one, in the columns [`Row::read`] reads.
macro_rules! rows_where {
    ($where:literal) => {
        concat!(
            "SELECT r.id, r.workspace_id, r.job_id, r.state, r.expires_at, r.day, r.month,
                    r.expired, r.breached, r.held, u.amounts, u.expired, u.breached
             FROM reservations r LEFT JOIN model_usage u ON u.reservation_id = r.id ",
            $where
        )
    };
}

/// A commit's record (its `model_usage` row), as a receipt answers it.
struct Usage {
    amounts: Held,
    expired: i64,
    breached: String,
}

/// A reservation's row, with its commit's usage row if it has one.
struct Row {
    id: i64,
    workspace_id: String,
    job_id: String,
    state: String,
    expires_at: i64,
    day: i64,
    month: i64,
    expired: i64,
    breached: String,
    held: Held,
    usage: Option<Usage>,
}

impl Row {
    fn read(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let amounts: Option<Held> = r.get(10)?;
        let usage = match amounts {
            Some(amounts) => Some(Usage {
                amounts,
                expired: r.get(11)?,
                breached: r.get(12)?,
            }),
            None => None,
        };
        Ok(Row {
            id: r.get(0)?,
            workspace_id: r.get(1)?,
            job_id: r.get(2)?,
            state: r.get(3)?,
            expires_at: r.get(4)?,
            day: r.get(5)?,
            month: r.get(6)?,
            expired: r.get(7)?,
            breached: r.get(8)?,
            held: r.get(9)?,
            usage,
        })
    }

    /// Committed: its state says so, or its usage row does (a commit
    /// leaves an active reservation's row as it was, for the sweep).
    fn committed(&self) -> bool {
        self.usage.is_some() || self.state == "committed"
    }

    /// Held: active and not committed.
    fn holding(&self) -> bool {
        self.state == "active" && self.usage.is_none()
    }

    /// The receipt of this committed reservation, answered again: from its
    /// usage row; without one (a commit of nothing before schema version 3,
    /// or the records purged since), no amounts and the flags its row kept.
    fn receipt(self) -> rusqlite::Result<CommitReceipt> {
        let (held, expired, breached) = match self.usage {
            Some(u) => (u.amounts, u.expired, u.breached),
            None => (Held(Vec::new()), self.expired, self.breached),
        };
        let mut amounts = Amounts::new();
        for (k, a) in held.0 {
            amounts.insert(Kind::from(k), nonnegative(10, a)?);
        }
        Ok(CommitReceipt {
            job_id: self.job_id,
            reservation_id: format!("res-{}", self.id),
            amounts,
            already_committed: true,
            expired: expired != 0,
            breached: breached
                .split(';')
                .filter(|b| !b.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// Reservation `id`'s row.
fn row_tx(tx: &rusqlite::Transaction<'_>, id: i64) -> rusqlite::Result<Option<Row>> {
    tx.prepare_cached(rows_where!("WHERE r.id = ?1"))?
        .query_row(params![id], Row::read)
        .optional()
}

/// The rows of a job's reservations (a few at most: one, and its lapsed or
/// released tries).
fn job_rows_tx(
    tx: &rusqlite::Transaction<'_>,
    workspace_id: &str,
    job_id: &str,
) -> rusqlite::Result<Vec<Row>> {
    tx.prepare_cached(rows_where!("WHERE r.workspace_id = ?1 AND r.job_id = ?2"))?
        .query_map(params![workspace_id, job_id], Row::read)?
        .collect()
}

/// A committed reservation's row finished: its state, and the expiry and
/// breach flags its usage row recorded (the sweep and a lapsed
/// reservation's commit both write it).
const FINISH_COMMITTED: &str =
    "UPDATE reservations SET state = 'committed', expired = ?2, breached = ?3
     WHERE id = ?1";

/// How many committed reservations past their expiry the sweep lets wait
/// before it finishes their rows, all at once (neighbours in the table and
/// the expiry index: a few pages for the lot, where one at a time would
/// write two pages each).
const FINISH_BATCH: usize = 8;

/// Sweep at `now`: a reservation past its expiry that still holds lapses,
/// its hold given back, at once; committed ones (their holds went back at
/// their commits) get their state and receipt flags in their rows once
/// [`FINISH_BATCH`] of them wait.
fn sweep_tx(tx: &rusqlite::Transaction<'_>, now: Timestamp) -> Result<(), TotalsError> {
    let expired: Vec<Row> = tx
        .prepare_cached(rows_where!(
            "WHERE r.state = 'active' AND r.expires_at <= ?1"
        ))?
        .query_map(params![now.seconds], Row::read)?
        .collect::<rusqlite::Result<_>>()?;
    let finish = expired.iter().filter(|r| r.usage.is_some()).count() >= FINISH_BATCH;
    for row in expired {
        match &row.usage {
            Some(u) if finish => {
                tx.prepare_cached(FINISH_COMMITTED)?
                    .execute(params![row.id, u.expired, u.breached])?;
            }
            Some(_) => {}
            None => {
                unhold_tx(tx, &row.held, &row.workspace_id, (row.day, row.month))?;
                tx.prepare_cached("UPDATE reservations SET state = 'lapsed' WHERE id = ?1")?
                    .execute(params![row.id])?;
            }
        }
    }
    Ok(())
}

/// The quotas of `workspace_id` its committed usage at `t` passes.
fn breaches_tx(
    tx: &rusqlite::Transaction<'_>,
    workspace_id: &str,
    t: Timestamp,
) -> rusqlite::Result<Vec<String>> {
    Ok(stored_standings_tx(tx, workspace_id, t)?
        .into_iter()
        .filter(|(q, used, _)| *used > q.limit)
        .map(|(q, _, _)| format!("{}/{}", q.kind, q.period.as_str()))
        .collect())
}

impl UsageLedger for SqliteLedger {
    fn set_quota(&self, quota: &Quota) -> Result<(), UsageError> {
        check_id("/workspaceId", &quota.workspace_id)?;
        check_kind(&quota.kind)?;
        let limit = to_i64(quota.limit, "the limit")?;
        let conn = self.lock()?;
        conn.execute(
            "INSERT INTO workspace_quotas (workspace_id, quota_type, period, limit_value)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (workspace_id, quota_type, period) DO UPDATE SET limit_value = excluded.limit_value",
            params![quota.workspace_id, quota.kind, quota.period.as_str(), limit],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn quotas(&self, workspace_id: &str) -> Result<Vec<Quota>, UsageError> {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        quotas_tx(&tx, workspace_id).map_err(|e| self.err(e))
    }

    fn reserve_within(
        &self,
        workspace_id: &str,
        job_id: &str,
        amounts: &Amounts,
        now: Timestamp,
        ttl_seconds: u64,
        limits: &[Quota],
    ) -> Result<Reservation, UsageError> {
        check_id("/workspaceId", workspace_id)?;
        check_id("/jobId", job_id)?;
        check_amounts(amounts)?;
        check_ttl(ttl_seconds)?;
        for (k, v) in amounts {
            to_i64(*v, &format!("the {k} amount"))?;
        }
        let held = Held::encode(amounts)?;
        let t = now;
        let at = (Period::Day.index(t), Period::Month.index(t));
        let expires = t.plus_seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let e = |e| self.err(e);
        let te = |e| self.totals_err(e);
        sweep_tx(&tx, t).map_err(te)?;
        // The job's reservations: a committed one refuses, else an active one.
        let tries = job_rows_tx(&tx, workspace_id, job_id).map_err(e)?;
        if tries.iter().any(Row::committed) {
            // The sweep stands, whatever the answer (as in the memory ledger).
            tx.commit().map_err(e)?;
            return Err(UsageError::JobCommitted {
                job_id: job_id.to_string(),
            });
        }
        if let Some(active) = tries.iter().find(|r| r.holding()) {
            let reservation_id = format!("res-{}", active.id);
            tx.commit().map_err(e)?;
            return Err(UsageError::JobInProgress {
                job_id: job_id.to_string(),
                reservation_id,
            });
        }
        let standings = self.standings(&tx, workspace_id, t, limits)?;
        let (outcome, reasons) = judge(
            standings
                .iter()
                .map(|(q, used, reserved)| (q, used.saturating_add(*reserved))),
            amounts,
        )?;
        let mut r = Reservation {
            id: String::new(),
            workspace_id: workspace_id.to_string(),
            job_id: job_id.to_string(),
            amounts: amounts.clone(),
            outcome,
            reasons,
            created_at: t.to_rfc3339(),
            expires_at: expires.to_rfc3339(),
        };
        if !r.allowed() {
            // Commit the sweep; nothing is held.
            tx.commit().map_err(e)?;
            return Ok(r);
        }
        tx.prepare_cached(
            "INSERT INTO reservations (id, workspace_id, job_id, created_at, expires_at, day, month,
                                       state, held)
             VALUES (1 + max(coalesce((SELECT max(id) FROM reservations), 0),
                             coalesce((SELECT value FROM ledger_meta
                                       WHERE key = 'reservation_id_floor'), 0)),
                     ?1, ?2, ?3, ?4, ?5, ?6, 'active', ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                workspace_id,
                job_id,
                t.seconds,
                expires.seconds,
                at.0,
                at.1,
                held
            ])
        })
        .map_err(e)?;
        let id = tx.last_insert_rowid();
        for (k, v) in amounts {
            let v = to_i64(*v, k)?;
            // Refuses a hold past the totals' integers (nothing stays).
            add_totals_tx(&tx, workspace_id, k, at, 0, v).map_err(te)?;
        }
        tx.commit().map_err(e)?;
        r.id = format!("res-{id}");
        Ok(r)
    }

    fn commit(
        &self,
        reservation_id: &str,
        actual: &Amounts,
        now: Timestamp,
    ) -> Result<CommitReceipt, UsageError> {
        check_amounts(actual)?;
        for (k, v) in actual {
            to_i64(*v, &format!("the {k} amount"))?;
        }
        let id = parse_reservation_id(reservation_id)?;
        let t = now;
        let at = (Period::Day.index(t), Period::Month.index(t));
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let e = |e| self.err(e);
        let te = |e| self.totals_err(e);
        let Some(row) = row_tx(&tx, id).map_err(e)? else {
            return Err(UsageError::UnknownReservation {
                reservation_id: reservation_id.to_string(),
            });
        };
        if row.committed() {
            return row.receipt().map_err(e);
        }
        match row.state.as_str() {
            "superseded" => {
                let by = job_rows_tx(&tx, &row.workspace_id, &row.job_id)
                    .map_err(e)?
                    .into_iter()
                    .find(Row::committed);
                return match by {
                    Some(by) => by.receipt().map_err(e),
                    // The commit's records were purged since.
                    None => Err(UsageError::UnknownReservation {
                        reservation_id: reservation_id.to_string(),
                    }),
                };
            }
            "released" => {
                return Err(UsageError::UnknownReservation {
                    reservation_id: reservation_id.to_string(),
                });
            }
            _ => {}
        }
        // One commit per job: another reservation of the job (a retry
        // after this one lapsed, or the lapsed one this retry replaced) may
        // be committed already, or may still hold. Not while this one is
        // active: a reservation is made only when no other of its job is
        // active or committed (in the same serialized transaction that
        // sweeps the lapsed ones), and only a lapsed one can be committed
        // beside another, so of a job's reservations at most one is ever
        // active or committed.
        let other = if row.state == "active" {
            None
        } else {
            job_rows_tx(&tx, &row.workspace_id, &row.job_id)
                .map_err(e)?
                .into_iter()
                .find(|o| o.id != id && (o.committed() || o.holding()))
        };
        match other {
            // (This one lapsed: it holds nothing.)
            Some(other) if other.committed() => {
                tx.execute(
                    "UPDATE reservations SET state = 'superseded' WHERE id = ?1",
                    params![id],
                )
                .map_err(e)?;
                let receipt = other.receipt().map_err(e)?;
                tx.commit().map_err(e)?;
                return Ok(receipt);
            }
            Some(other) => {
                unhold_tx(
                    &tx,
                    &other.held,
                    &other.workspace_id,
                    (other.day, other.month),
                )
                .map_err(te)?;
                tx.execute(
                    "UPDATE reservations SET state = 'superseded' WHERE id = ?1",
                    params![other.id],
                )
                .map_err(e)?;
            }
            None => {}
        }
        let Row {
            workspace_id: ws,
            job_id: job,
            state,
            expires_at: expires,
            day,
            month,
            held,
            ..
        } = row;
        let expired = state == "lapsed" || expires <= t.seconds;
        // The hold given back and the usage counted: one upsert per kind
        // when the hold was made in the periods of the commit.
        let mut unheld = Vec::new();
        if state == "active" {
            if (day, month) == at {
                unheld = held.0;
            } else {
                unhold_tx(&tx, &held, &ws, (day, month)).map_err(te)?;
            }
        }
        for (kind, amount) in &unheld {
            if !actual.contains_key(kind.as_str()) {
                add_totals_tx(&tx, &ws, kind, at, 0, -amount).map_err(te)?;
            }
        }
        for (k, v) in actual {
            let v = to_i64(*v, k)?;
            let held = unheld
                .iter()
                .find(|(kind, _)| kind == k.as_str())
                .map_or(0, |(_, amount)| *amount);
            // Refuses usage past the totals' integers (nothing stays).
            add_totals_tx(&tx, &ws, k, at, v, -held).map_err(te)?;
        }
        let breached = breaches_tx(&tx, &ws, t).map_err(e)?;
        let breached_text = breached.join(";");
        let amounts_text = Held::encode(actual)?;
        tx.prepare_cached(
            "INSERT INTO model_usage (reservation_id, workspace_id, job_id, amounts, committed_at,
                                      day, month, expired, breached)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .and_then(|mut st| {
            st.execute(params![
                id,
                ws,
                job,
                amounts_text,
                t.seconds,
                at.0,
                at.1,
                i64::from(expired),
                breached_text
            ])
        })
        .map_err(e)?;
        // An active reservation's row stays as it is (its usage row marks
        // it committed; the sweep finishes it at its expiry): one page
        // written a commit fewer. A lapsed one has no sweep to come.
        if state != "active" {
            tx.prepare_cached(FINISH_COMMITTED)
                .and_then(|mut st| st.execute(params![id, i64::from(expired), breached_text]))
                .map_err(e)?;
        }
        tx.commit().map_err(e)?;
        Ok(CommitReceipt {
            job_id: job,
            reservation_id: reservation_id.to_string(),
            amounts: actual.clone(),
            already_committed: false,
            expired,
            breached,
        })
    }

    fn release(&self, reservation_id: &str) -> Result<(), UsageError> {
        let id = parse_reservation_id(reservation_id)?;
        let mut conn = self.lock()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let e = |e| self.err(e);
        match row_tx(&tx, id).map_err(e)? {
            Some(row) if row.holding() || (row.state == "lapsed" && !row.committed()) => {
                if row.holding() {
                    unhold_tx(&tx, &row.held, &row.workspace_id, (row.day, row.month))
                        .map_err(|e| self.totals_err(e))?;
                }
                tx.execute(
                    "UPDATE reservations SET state = 'released' WHERE id = ?1",
                    params![id],
                )
                .map_err(e)?;
                tx.commit().map_err(e)
            }
            _ => Err(UsageError::UnknownReservation {
                reservation_id: reservation_id.to_string(),
            }),
        }
    }

    fn used(
        &self,
        workspace_id: &str,
        kind: &str,
        period: Period,
        now: Timestamp,
    ) -> Result<u64, UsageError> {
        check_kind(kind)?;
        let t = now;
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        totals_tx(&tx, workspace_id, kind, period, period.index(t))
            .map(|(u, _)| u)
            .map_err(|e| self.err(e))
    }

    fn workspaces(&self) -> Result<Vec<String>, UsageError> {
        let conn = self.lock()?;
        let mut st = conn
            .prepare(
                "SELECT workspace_id FROM workspace_quotas UNION SELECT workspace_id FROM usage_totals
                 ORDER BY 1",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<String>>>())
            .map_err(|e| self.err(e))
    }

    fn status_within(
        &self,
        workspace_id: &str,
        now: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError> {
        let t = now;
        let mut conn = self.lock()?;
        // A read: no sweep (a reader's clock never gives back a hold).
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let e = |e| self.err(e);
        let out = self
            .standings(&tx, workspace_id, t, limits)?
            .into_iter()
            .map(|(quota, used, reserved)| QuotaStatus {
                quota,
                used,
                reserved,
            })
            .collect();
        tx.commit().map_err(e)?;
        Ok(out)
    }
}
