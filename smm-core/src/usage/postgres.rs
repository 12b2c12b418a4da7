//! The usage ledger in PostgreSQL (feature `postgres`): one set of books
//! shared by every replica of a service, on any number of hosts.
//!
//! The semantics are the SQLite ledger's, statement for statement: the
//! same tables (the design's `workspace_quotas`, `agent_runs` for the
//! reservations, `model_usage`, and `usage_totals`, the running sums that
//! make a check a few primary-key lookups), the same sweep of expired
//! holds at the start of each write, the same receipts and errors.
//!
//! Never overshoot: every write transaction first takes one transaction
//! advisory lock (`pg_advisory_xact_lock`), so the writers of all
//! connections, processes and hosts take turns, as SQLite's `BEGIN
//! IMMEDIATE` makes them. A check and its hold are in one transaction, so
//! no interleaving lets two reservations together pass a limit. A writer
//! that dies holds nothing: the server rolls its transaction back and
//! frees the lock; a reservation it had committed expires at its
//! `expiresAt`. Reads take a `REPEATABLE READ` snapshot and no lock.
//!
//! Durability is the server's: with `synchronous_commit = on` (the
//! default) a committed reservation or commit survives a server crash.
//! A lost connection, a restart, a statement timeout or a serialization
//! failure is [`UsageError::LedgerUnavailable`]: retry the same call. A
//! call whose answer was lost with the connection may have been done: a
//! reservation retried for its job answers [`UsageError::JobInProgress`]
//! with the reservation made, and a commit is idempotent by job.

use postgres::{Client, Transaction};

use super::UsageError;
use super::ledger::{
    Amounts, CommitReceipt, Kind, Period, Quota, QuotaStatus, Reservation, UsageLedger,
    check_amounts, check_id, check_kind, check_ttl, judge, merge_limits,
};
use crate::pg::{PgFailure, PgTarget, Pool, failure};
use crate::time::Timestamp;

/// The newest PostgreSQL ledger schema this library writes and reads.
pub const POSTGRES_LEDGER_SCHEMA_VERSION: i64 = 1;

/// The component name in `smm_schema_version`.
const COMPONENT: &str = "ledger";

/// The writers' lock ("smm_ledg").
const WRITE_LOCK: i64 = 0x736d_6d5f_6c65_6467;

/// Schema migrations, by the version they produce.
const MIGRATIONS: [(i64, &str); 1] = [(
    1,
    "CREATE TABLE workspace_quotas (
        workspace_id TEXT NOT NULL,
        quota_type TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        limit_value BIGINT NOT NULL CHECK (limit_value >= 0),
        PRIMARY KEY (workspace_id, quota_type, period)
    );
    CREATE TABLE ledger_counters (
        name TEXT PRIMARY KEY,
        value BIGINT NOT NULL CHECK (value >= 0)
    );
    INSERT INTO ledger_counters (name, value) VALUES ('agent_runs', 0);
    CREATE TABLE agent_runs (
        id BIGINT PRIMARY KEY CHECK (id > 0),
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        day BIGINT NOT NULL,
        month BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('active', 'lapsed', 'committed', 'released', 'superseded')),
        expired BOOLEAN NOT NULL DEFAULT false,
        breached TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX agent_runs_by_job ON agent_runs (workspace_id, job_id);
    CREATE INDEX agent_runs_active_by_expiry ON agent_runs (expires_at) WHERE state = 'active';
    CREATE TABLE agent_run_amounts (
        run_id BIGINT NOT NULL REFERENCES agent_runs (id),
        kind TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount >= 0),
        PRIMARY KEY (run_id, kind)
    );
    CREATE TABLE model_usage (
        workspace_id TEXT NOT NULL,
        job_id TEXT NOT NULL,
        run_id BIGINT NOT NULL,
        kind TEXT NOT NULL,
        amount BIGINT NOT NULL CHECK (amount >= 0),
        committed_at BIGINT NOT NULL,
        day BIGINT NOT NULL,
        month BIGINT NOT NULL,
        expired BOOLEAN NOT NULL,
        PRIMARY KEY (workspace_id, job_id, kind)
    );
    CREATE TABLE usage_totals (
        workspace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        period TEXT NOT NULL CHECK (period IN ('day', 'month', 'total')),
        period_index BIGINT NOT NULL,
        committed BIGINT NOT NULL CHECK (committed >= 0),
        reserved BIGINT NOT NULL CHECK (reserved >= 0),
        PRIMARY KEY (workspace_id, kind, period, period_index)
    );",
)];

/// Options of [`PostgresLedger::connect_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgOptions {
    /// Apply pending migrations on connect (default `true`). When
    /// `false`, a database behind this library's version is
    /// [`UsageError::LedgerVersion`]-like refused
    /// ([`UsageError::LedgerMissing`] when it has no ledger at all).
    pub migrate: bool,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions { migrate: true }
    }
}

/// A usage ledger in a PostgreSQL database, shared by every process
/// that connects to it. Thread-safe; it keeps a small pool of
/// connections. Its `Debug` output and its errors name the URL without
/// its password.
///
/// Call it from async code through `spawn_blocking`:
///
/// ```no_run
/// # #[cfg(feature = "postgres")]
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use smm_core::usage::{PostgresLedger, UsageLedger};
///
/// let url = "postgresql://smm@127.0.0.1:5432/smm";
/// let ledger = Arc::new(tokio::task::spawn_blocking(move || PostgresLedger::connect(url)).await??);
/// let l = Arc::clone(&ledger);
/// let quotas = tokio::task::spawn_blocking(move || l.quotas("ws-1")).await??;
/// # let _ = quotas; Ok(()) }
/// ```
#[derive(Debug)]
pub struct PostgresLedger {
    pool: Pool,
}

/// The schema of a database, as `smm db status` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSchemaStatus {
    /// The URL without its password.
    pub url: String,
    /// The ledger's schema version in the database (0: none).
    pub found: i64,
    /// The newest version this library knows.
    pub supported: i64,
}

impl From<PgFailure> for UsageError {
    fn from(f: PgFailure) -> UsageError {
        match f {
            PgFailure::Url(message) => UsageError::InvalidInput {
                pointer: "/ledger".into(),
                message,
            },
            PgFailure::Retry(message, cause) => UsageError::LedgerUnavailable {
                path: String::new(),
                message,
                source: Some(cause),
            },
            PgFailure::Corrupt(message) => UsageError::LedgerCorrupt {
                path: String::new(),
                message,
            },
            PgFailure::Other(message, cause) => UsageError::Storage {
                message,
                source: Some(cause),
            },
        }
    }
}

/// Fill in the URL an error is about.
fn at(url: &str, e: UsageError) -> UsageError {
    match e {
        UsageError::LedgerUnavailable {
            path,
            message,
            source,
        } if path.is_empty() => UsageError::LedgerUnavailable {
            path: url.into(),
            message,
            source,
        },
        UsageError::LedgerCorrupt { path, message } if path.is_empty() => {
            UsageError::LedgerCorrupt {
                path: url.into(),
                message,
            }
        }
        UsageError::Storage { message, source } if !message.starts_with(url) => {
            UsageError::Storage {
                message: format!("{url}: {message}"),
                source,
            }
        }
        other => other,
    }
}

fn pg(e: postgres::Error) -> UsageError {
    UsageError::from(failure(e))
}

/// A count read from a row: negative is corruption.
fn nonneg(v: i64, what: &str) -> Result<u64, UsageError> {
    u64::try_from(v).map_err(|_| UsageError::LedgerCorrupt {
        path: String::new(),
        message: format!("{what} holds {v}"),
    })
}

fn to_i64(v: u64, what: &str) -> Result<i64, UsageError> {
    i64::try_from(v).map_err(|_| UsageError::Overflow {
        what: what.to_string(),
    })
}

fn parse_reservation_id(id: &str) -> Result<i64, UsageError> {
    id.strip_prefix("res-")
        .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| UsageError::UnknownReservation {
            reservation_id: id.chars().take(80).collect(),
        })
}

/// Apply the ledger's migrations to the database at `url` (what
/// `smm db migrate` does); returns the version found and the version now.
pub fn migrate_ledger(url: &str) -> Result<(i64, i64), UsageError> {
    let target = PgTarget::parse(url)?;
    let shown = target.shown().to_string();
    let mut c = target.connect().map_err(|e| at(&shown, e.into()))?;
    run_migrations(&mut c, &shown)
}

/// The ledger's schema version in the database at `url`, and the newest
/// this library knows (what `smm db status` prints). Changes nothing.
pub fn ledger_schema_status(url: &str) -> Result<PgSchemaStatus, UsageError> {
    let target = PgTarget::parse(url)?;
    let shown = target.shown().to_string();
    let mut c = target.connect().map_err(|e| at(&shown, e.into()))?;
    let found = crate::pg::version_of(&mut c, COMPONENT).map_err(|e| at(&shown, e.into()))?;
    Ok(PgSchemaStatus {
        url: shown,
        found,
        supported: POSTGRES_LEDGER_SCHEMA_VERSION,
    })
}

fn run_migrations(c: &mut Client, shown: &str) -> Result<(i64, i64), UsageError> {
    match crate::pg::migrate(c, COMPONENT, &MIGRATIONS).map_err(|e| at(shown, e.into()))? {
        Ok(m) => Ok((m.from, m.to)),
        Err(found) => Err(UsageError::LedgerVersion {
            path: shown.into(),
            found,
            supported: POSTGRES_LEDGER_SCHEMA_VERSION,
        }),
    }
}

impl PostgresLedger {
    /// Connect to the ledger at `url` (`postgresql://user:password@host:port/db`),
    /// creating or migrating its tables when they are missing or older. A
    /// database whose ledger is newer than this library is
    /// [`UsageError::LedgerVersion`]; an unreachable server,
    /// [`UsageError::LedgerUnavailable`] (retry).
    pub fn connect(url: &str) -> Result<PostgresLedger, UsageError> {
        Self::connect_with(url, PgOptions::default())
    }

    /// [`PostgresLedger::connect`] with options (migrations on or off).
    pub fn connect_with(url: &str, options: PgOptions) -> Result<PostgresLedger, UsageError> {
        let target = PgTarget::parse(url)?;
        let pool = Pool::new(target);
        let ledger = PostgresLedger { pool };
        let shown = ledger.url().to_string();
        ledger
            .pool
            .with(|c| {
                if options.migrate {
                    run_migrations(c, &shown)?;
                } else {
                    let found = crate::pg::version_of(c, COMPONENT)?;
                    if found == 0 {
                        return Err(UsageError::LedgerMissing {
                            path: shown.clone(),
                        });
                    }
                    if found != POSTGRES_LEDGER_SCHEMA_VERSION {
                        return Err(UsageError::LedgerVersion {
                            path: shown.clone(),
                            found,
                            supported: POSTGRES_LEDGER_SCHEMA_VERSION,
                        });
                    }
                }
                Ok(())
            })
            .map_err(|e| at(&shown, e))?;
        Ok(ledger)
    }

    /// The URL without its password.
    pub fn url(&self) -> &str {
        self.pool.target().shown()
    }

    /// Run `f` in a write transaction holding the writers' lock.
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, UsageError>,
    ) -> Result<T, UsageError> {
        self.pool
            .with(|c| {
                let mut tx = c.transaction().map_err(pg)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .map_err(pg)?;
                let out = f(&mut tx)?;
                tx.commit().map_err(pg)?;
                Ok(out)
            })
            .map_err(|e| at(self.url(), e))
    }

    /// Run `f` in a read-only snapshot.
    fn read<T>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<T, UsageError>,
    ) -> Result<T, UsageError> {
        self.pool
            .with(|c| {
                let mut tx = c
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(pg)?;
                let out = f(&mut tx)?;
                tx.commit().map_err(pg)?;
                Ok(out)
            })
            .map_err(|e| at(self.url(), e))
    }

    /// Delete a workspace's usage records and finished reservations
    /// created before `before`, with the day and month totals of periods
    /// that ended before it, as [`super::SqliteLedger::purge`] does.
    pub fn purge(&self, workspace_id: &str, before: Timestamp) -> Result<u64, UsageError> {
        let t = before;
        self.write(|tx| {
            let mut n = tx
                .execute(
                    "DELETE FROM model_usage WHERE workspace_id = $1 AND committed_at < $2",
                    &[&workspace_id, &t.seconds],
                )
                .map_err(pg)?;
            n += tx
                .execute(
                    "DELETE FROM agent_run_amounts WHERE run_id IN (SELECT id FROM agent_runs
                     WHERE workspace_id = $1 AND created_at < $2 AND state != 'active')",
                    &[&workspace_id, &t.seconds],
                )
                .map_err(pg)?;
            n += tx
                .execute(
                    "DELETE FROM agent_runs WHERE workspace_id = $1 AND created_at < $2 AND state != 'active'",
                    &[&workspace_id, &t.seconds],
                )
                .map_err(pg)?;
            n += tx
                .execute(
                    "DELETE FROM usage_totals WHERE workspace_id = $1 AND reserved = 0 AND
                     ((period = 'day' AND period_index < $2) OR (period = 'month' AND period_index < $3))",
                    &[&workspace_id, &Period::Day.index(t), &Period::Month.index(t)],
                )
                .map_err(pg)?;
            Ok(n)
        })
    }

    /// Apply a retention plan's ledger part, as
    /// [`super::SqliteLedger::apply_retention`] does.
    pub fn apply_retention(&self, plan: &super::RetentionPlan) -> Result<u64, UsageError> {
        plan.verify()?;
        if plan.legal_hold {
            return Ok(0);
        }
        let now = Timestamp::parse(&plan.now).ok_or_else(|| UsageError::InvalidInput {
            pointer: "/now".into(),
            message: format!("{:?} is not an RFC 3339 date-time", plan.now),
        })?;
        let cutoff = now.plus_seconds(-i64::from(plan.audit_retention_days) * 86_400);
        self.purge(&plan.workspace_id, cutoff)
    }
}

fn quota_of(
    workspace_id: &str,
    kind: String,
    period: &str,
    limit: i64,
) -> Result<Quota, UsageError> {
    let period = Period::parse(period).ok_or_else(|| UsageError::LedgerCorrupt {
        path: String::new(),
        message: format!("{period:?} is not a period"),
    })?;
    Ok(Quota {
        workspace_id: workspace_id.to_string(),
        kind,
        period,
        limit: nonneg(limit, "a quota's limit")?,
    })
}

fn quotas_tx(tx: &mut Transaction<'_>, workspace_id: &str) -> Result<Vec<Quota>, UsageError> {
    let rows = tx
        .query(
            "SELECT quota_type, period, limit_value FROM workspace_quotas WHERE workspace_id = $1
             ORDER BY quota_type COLLATE \"C\", period COLLATE \"C\"",
            &[&workspace_id],
        )
        .map_err(pg)?;
    rows.iter()
        .map(|r| {
            quota_of(
                workspace_id,
                r.try_get(0).map_err(pg)?,
                r.try_get::<_, &str>(1).map_err(pg)?,
                r.try_get(2).map_err(pg)?,
            )
        })
        .collect()
}

/// (committed, reserved) of `kind` in the `period` with `index`.
fn totals_tx(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    kind: &str,
    period: Period,
    index: i64,
) -> Result<(u64, u64), UsageError> {
    let row = tx
        .query_opt(
            "SELECT committed, reserved FROM usage_totals
             WHERE workspace_id = $1 AND kind = $2 AND period = $3 AND period_index = $4",
            &[&workspace_id, &kind, &period.as_str(), &index],
        )
        .map_err(pg)?;
    match row {
        None => Ok((0, 0)),
        Some(r) => Ok((
            nonneg(r.try_get(0).map_err(pg)?, "a committed total")?,
            nonneg(r.try_get(1).map_err(pg)?, "a reserved total")?,
        )),
    }
}

/// Add `committed` and `reserved` (either may be negative) to the totals
/// of `kind` at day `day` and month `month`, never below zero.
fn add_totals_tx(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    kind: &str,
    (day, month): (i64, i64),
    committed: i64,
    reserved: i64,
) -> Result<(), UsageError> {
    tx.execute(
        "INSERT INTO usage_totals (workspace_id, kind, period, period_index, committed, reserved)
         VALUES ($1, $2, 'day', $3, greatest($5::BIGINT, 0), greatest($6::BIGINT, 0)),
                ($1, $2, 'month', $4, greatest($5::BIGINT, 0), greatest($6::BIGINT, 0)),
                ($1, $2, 'total', 0, greatest($5::BIGINT, 0), greatest($6::BIGINT, 0))
         ON CONFLICT (workspace_id, kind, period, period_index) DO UPDATE SET
           committed = greatest(usage_totals.committed + $5::BIGINT, 0),
           reserved = greatest(usage_totals.reserved + $6::BIGINT, 0)",
        &[&workspace_id, &kind, &day, &month, &committed, &reserved],
    )
    .map_err(pg)?;
    Ok(())
}

/// Give back the hold of run `id` (made at `day`, `month`).
fn unhold_tx(
    tx: &mut Transaction<'_>,
    id: i64,
    workspace_id: &str,
    at: (i64, i64),
) -> Result<(), UsageError> {
    let rows = tx
        .query(
            "SELECT kind, amount FROM agent_run_amounts WHERE run_id = $1",
            &[&id],
        )
        .map_err(pg)?;
    for r in rows {
        let kind: &str = r.try_get(0).map_err(pg)?;
        let amount: i64 = r.try_get(1).map_err(pg)?;
        add_totals_tx(tx, workspace_id, kind, at, 0, -amount)?;
    }
    Ok(())
}

/// Lapse the reservations expired at `now` (their holds given back).
fn sweep_tx(tx: &mut Transaction<'_>, now: Timestamp) -> Result<(), UsageError> {
    let rows = tx
        .query(
            "UPDATE agent_runs SET state = 'lapsed' WHERE state = 'active' AND expires_at <= $1
             RETURNING id, workspace_id, day, month",
            &[&now.seconds],
        )
        .map_err(pg)?;
    for r in rows {
        let id: i64 = r.try_get(0).map_err(pg)?;
        let ws: &str = r.try_get(1).map_err(pg)?;
        let at = (r.try_get(2).map_err(pg)?, r.try_get(3).map_err(pg)?);
        unhold_tx(tx, id, ws, at)?;
    }
    Ok(())
}

/// The quotas of `workspace_id` its committed usage at `t` passes.
fn breaches_tx(
    tx: &mut Transaction<'_>,
    workspace_id: &str,
    t: Timestamp,
) -> Result<Vec<String>, UsageError> {
    let mut out = Vec::new();
    for q in quotas_tx(tx, workspace_id)? {
        let (used, _) = totals_tx(tx, workspace_id, &q.kind, q.period, q.period.index(t))?;
        if used > q.limit {
            out.push(format!("{}/{}", q.kind, q.period.as_str()));
        }
    }
    Ok(out)
}

/// The receipt of committed run `id`, answered again.
fn receipt_tx(
    tx: &mut Transaction<'_>,
    id: i64,
    (workspace_id, job_id): (&str, String),
    expired: bool,
    breached: &str,
) -> Result<CommitReceipt, UsageError> {
    let mut amounts = Amounts::new();
    for r in tx
        .query(
            "SELECT kind, amount FROM model_usage WHERE workspace_id = $1 AND job_id = $2",
            &[&workspace_id, &job_id],
        )
        .map_err(pg)?
    {
        let k: String = r.try_get(0).map_err(pg)?;
        amounts.insert(
            Kind::from(k),
            nonneg(r.try_get(1).map_err(pg)?, "an amount")?,
        );
    }
    Ok(CommitReceipt {
        job_id,
        reservation_id: format!("res-{id}"),
        amounts,
        already_committed: true,
        expired,
        breached: breached
            .split(';')
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

impl UsageLedger for PostgresLedger {
    fn set_quota(&self, quota: &Quota) -> Result<(), UsageError> {
        check_id("/workspaceId", &quota.workspace_id)?;
        check_kind(&quota.kind)?;
        let limit = to_i64(quota.limit, "the limit")?;
        self.write(|tx| {
            tx.execute(
                "INSERT INTO workspace_quotas (workspace_id, quota_type, period, limit_value)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (workspace_id, quota_type, period) DO UPDATE SET limit_value = excluded.limit_value",
                &[&quota.workspace_id, &quota.kind, &quota.period.as_str(), &limit],
            )
            .map_err(pg)?;
            Ok(())
        })
    }

    fn quotas(&self, workspace_id: &str) -> Result<Vec<Quota>, UsageError> {
        self.read(|tx| quotas_tx(tx, workspace_id))
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
        let t = now;
        let at = (Period::Day.index(t), Period::Month.index(t));
        let expires = t.plus_seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
        // A job's refusal after the sweep still commits the sweep (as
        // SQLite's ledger does): that answer travels out as `Ok(Err(_))`.
        self.write(|tx| {
            sweep_tx(tx, t)?;
            let job = tx
                .query_opt(
                    "SELECT id, state FROM agent_runs WHERE workspace_id = $1 AND job_id = $2
                       AND state IN ('committed', 'active')
                     ORDER BY state = 'committed' DESC LIMIT 1",
                    &[&workspace_id, &job_id],
                )
                .map_err(pg)?;
            if let Some(r) = job {
                let id: i64 = r.try_get(0).map_err(pg)?;
                let state: &str = r.try_get(1).map_err(pg)?;
                return Ok(Err(if state == "committed" {
                    UsageError::JobCommitted {
                        job_id: job_id.to_string(),
                    }
                } else {
                    UsageError::JobInProgress {
                        job_id: job_id.to_string(),
                        reservation_id: format!("res-{id}"),
                    }
                }));
            }
            // These refusals roll the sweep back, as SQLite's ledger does.
            let quotas = merge_limits(workspace_id, quotas_tx(tx, workspace_id)?, limits)?;
            let mut standings = Vec::with_capacity(quotas.len());
            for q in quotas {
                let (used, reserved) =
                    totals_tx(tx, workspace_id, &q.kind, q.period, q.period.index(t))?;
                standings.push((q, used.saturating_add(reserved)));
            }
            let (outcome, reasons) = judge(standings.iter().map(|(q, n)| (q, *n)), amounts)?;
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
                return Ok(Ok(r));
            }
            for (k, v) in amounts {
                let (_, held) = totals_tx(tx, workspace_id, k, Period::Total, 0)?;
                to_i64(held.saturating_add(*v), &format!("the {k} reserved"))?;
            }
            let id: i64 = tx
                .query_one(
                    "UPDATE ledger_counters SET value = value + 1 WHERE name = 'agent_runs' RETURNING value",
                    &[],
                )
                .and_then(|r| r.try_get(0))
                .map_err(pg)?;
            tx.execute(
                "INSERT INTO agent_runs (id, workspace_id, job_id, created_at, expires_at, day, month, state)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'active')",
                &[&id, &workspace_id, &job_id, &t.seconds, &expires.seconds, &at.0, &at.1],
            )
            .map_err(pg)?;
            for (k, v) in amounts {
                let v = to_i64(*v, k)?;
                tx.execute(
                    "INSERT INTO agent_run_amounts (run_id, kind, amount) VALUES ($1, $2, $3)",
                    &[&id, &k.as_str(), &v],
                )
                .map_err(pg)?;
                add_totals_tx(tx, workspace_id, k, at, 0, v)?;
            }
            r.id = format!("res-{id}");
            Ok(Ok(r))
        })?
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
        let unknown = || UsageError::UnknownReservation {
            reservation_id: reservation_id.to_string(),
        };
        self.write(|tx| {
            let Some(row) = tx
                .query_opt(
                    "SELECT workspace_id, job_id, state, expires_at, day, month, expired, breached
                     FROM agent_runs WHERE id = $1",
                    &[&id],
                )
                .map_err(pg)?
            else {
                return Ok(Err(unknown()));
            };
            let ws: String = row.try_get(0).map_err(pg)?;
            let job: String = row.try_get(1).map_err(pg)?;
            let state: String = row.try_get(2).map_err(pg)?;
            let expires: i64 = row.try_get(3).map_err(pg)?;
            let (day, month): (i64, i64) = (row.try_get(4).map_err(pg)?, row.try_get(5).map_err(pg)?);
            let was_expired: bool = row.try_get(6).map_err(pg)?;
            let was_breached: String = row.try_get(7).map_err(pg)?;
            match state.as_str() {
                "committed" => {
                    return receipt_tx(tx, id, (&ws, job), was_expired, &was_breached).map(Ok);
                }
                "superseded" => {
                    let by = tx
                        .query_opt(
                            "SELECT id, expired, breached FROM agent_runs
                             WHERE workspace_id = $1 AND job_id = $2 AND state = 'committed'",
                            &[&ws, &job],
                        )
                        .map_err(pg)?;
                    return match by {
                        Some(r) => receipt_tx(
                            tx,
                            r.try_get(0).map_err(pg)?,
                            (&ws, job),
                            r.try_get(1).map_err(pg)?,
                            r.try_get::<_, &str>(2).map_err(pg)?,
                        )
                        .map(Ok),
                        None => Ok(Err(unknown())),
                    };
                }
                "released" => return Ok(Err(unknown())),
                _ => {}
            }
            let other = tx
                .query_opt(
                    "SELECT id, state, day, month, expired, breached FROM agent_runs
                     WHERE workspace_id = $1 AND job_id = $2 AND id != $3
                       AND state IN ('committed', 'active')",
                    &[&ws, &job, &id],
                )
                .map_err(pg)?;
            if let Some(o) = other {
                let other_id: i64 = o.try_get(0).map_err(pg)?;
                let other_state: &str = o.try_get(1).map_err(pg)?;
                if other_state == "committed" {
                    if state == "active" {
                        unhold_tx(tx, id, &ws, (day, month))?;
                    }
                    tx.execute(
                        "UPDATE agent_runs SET state = 'superseded' WHERE id = $1",
                        &[&id],
                    )
                    .map_err(pg)?;
                    let expired: bool = o.try_get(4).map_err(pg)?;
                    let breached: &str = o.try_get(5).map_err(pg)?;
                    return receipt_tx(tx, other_id, (&ws, job), expired, breached).map(Ok);
                }
                let other_at = (o.try_get(2).map_err(pg)?, o.try_get(3).map_err(pg)?);
                unhold_tx(tx, other_id, &ws, other_at)?;
                tx.execute(
                    "UPDATE agent_runs SET state = 'superseded' WHERE id = $1",
                    &[&other_id],
                )
                .map_err(pg)?;
            }
            let expired = state == "lapsed" || expires <= t.seconds;
            for (k, v) in actual {
                let (done, _) = totals_tx(tx, &ws, k, Period::Total, 0)?;
                to_i64(done.saturating_add(*v), &format!("the {k} committed"))?;
            }
            if state == "active" {
                unhold_tx(tx, id, &ws, (day, month))?;
            }
            for (k, v) in actual {
                let v = to_i64(*v, k)?;
                tx.execute(
                    "INSERT INTO model_usage (workspace_id, job_id, run_id, kind, amount,
                     committed_at, day, month, expired) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[&ws, &job, &id, &k.as_str(), &v, &t.seconds, &at.0, &at.1, &expired],
                )
                .map_err(pg)?;
                add_totals_tx(tx, &ws, k, at, v, 0)?;
            }
            let breached = breaches_tx(tx, &ws, t)?;
            tx.execute(
                "UPDATE agent_runs SET state = 'committed', expired = $2, breached = $3 WHERE id = $1",
                &[&id, &expired, &breached.join(";")],
            )
            .map_err(pg)?;
            Ok(Ok(CommitReceipt {
                job_id: job,
                reservation_id: reservation_id.to_string(),
                amounts: actual.clone(),
                already_committed: false,
                expired,
                breached,
            }))
        })?
    }

    fn release(&self, reservation_id: &str) -> Result<(), UsageError> {
        let id = parse_reservation_id(reservation_id)?;
        let answer = self.write(|tx| {
            let row = tx
                .query_opt(
                    "SELECT workspace_id, state, day, month FROM agent_runs WHERE id = $1",
                    &[&id],
                )
                .map_err(pg)?;
            let Some(r) = row else {
                return Ok(false);
            };
            let ws: String = r.try_get(0).map_err(pg)?;
            let state: &str = r.try_get(1).map_err(pg)?;
            if state != "active" && state != "lapsed" {
                return Ok(false);
            }
            if state == "active" {
                let at = (r.try_get(2).map_err(pg)?, r.try_get(3).map_err(pg)?);
                unhold_tx(tx, id, &ws, at)?;
            }
            tx.execute(
                "UPDATE agent_runs SET state = 'released' WHERE id = $1",
                &[&id],
            )
            .map_err(pg)?;
            Ok(true)
        })?;
        if answer {
            Ok(())
        } else {
            Err(UsageError::UnknownReservation {
                reservation_id: reservation_id.to_string(),
            })
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
        self.read(|tx| totals_tx(tx, workspace_id, kind, period, period.index(now)).map(|(u, _)| u))
    }

    fn status_within(
        &self,
        workspace_id: &str,
        now: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError> {
        let t = now;
        self.read(|tx| {
            let quotas = merge_limits(workspace_id, quotas_tx(tx, workspace_id)?, limits)?;
            let mut out = Vec::with_capacity(quotas.len());
            for q in quotas {
                let (used, reserved) =
                    totals_tx(tx, workspace_id, &q.kind, q.period, q.period.index(t))?;
                out.push(QuotaStatus {
                    quota: q,
                    used,
                    reserved,
                });
            }
            Ok(out)
        })
    }
}
