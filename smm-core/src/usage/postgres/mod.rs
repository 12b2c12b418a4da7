//! The usage ledger in PostgreSQL (feature `postgres`): one set of books
//! shared by every replica of a service, on any number of hosts.
//!
//! The semantics are the memory and SQLite ledgers', answer for answer
//! (the differential test runs them side by side): the design's
//! `workspace_quotas`, `agent_runs` (the reservations, with their
//! amounts) and `model_usage`, and `usage_totals`, the running sums that
//! make a check a few primary-key lookups however long the history.
//!
//! Each write is a server function (`smm_reserve`, `smm_commit`,
//! `smm_release`: the schema's migration 2), and the writes a process has
//! waiting at a moment go to the server together, as one call of
//! `smm_ledger_batch`: one round trip and one commit, so one fsync, for
//! all of them (TigerBeetle batches its transfers the same way). A batch
//! first takes the advisory lock of every workspace it touches, in key
//! order, so that no interleaving of batches from any number of
//! connections, processes and hosts lets two reservations together pass
//! a limit, and no two batches wait on each other in a cycle. Writers of
//! different workspaces do not wait on each other at all.
//!
//! A writer that dies holds nothing: the server rolls its transaction back
//! and frees its locks; a reservation it had made expires at its
//! `expiresAt` (each reservation first lapses the holds expired at its
//! `now`, in every workspace it can lock without waiting). Reads are one
//! statement each, so one snapshot, and take no lock.
//!
//! Durability is the server's: with `synchronous_commit = on` (the
//! default) a reservation or commit that returned survives a server crash.
//! A lost connection, a restart, a statement timeout or a serialization
//! failure is [`UsageError::LedgerUnavailable`]: retry the same call. A
//! call whose answer was lost with the connection may have been done: a
//! reservation retried for its job answers [`UsageError::JobInProgress`]
//! with the reservation made, and a commit is idempotent by job.
//! Reservation ids come from a sequence: unique, increasing, with a gap
//! where a batch was lost.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde::Deserialize;

use super::UsageError;
use super::ledger::{
    Amounts, CommitReceipt, Kind, Period, Quota, QuotaStatus, Reservation, UsageLedger,
    check_amounts, check_id, check_kind, check_ttl, judge, merge_limits, parse_reservation_id,
    to_i64,
};
use crate::pg::{Conn, PgFailure, PgTarget, Pool, failure};
use crate::time::Timestamp;

mod engine;

/// The newest PostgreSQL ledger schema this library writes and reads.
pub const POSTGRES_LEDGER_SCHEMA_VERSION: i64 = 3;

/// The component name in `smm_schema_version`.
const COMPONENT: &str = "ledger";

/// Schema migrations, by the version they produce.
const MIGRATIONS: [(i64, &str); 3] = [
    (1, include_str!("v1.sql")),
    (2, include_str!("v2.sql")),
    (3, include_str!("v3.sql")),
];

/// The most operations one batch carries.
const MAX_BATCH: usize = 64;

/// Options of [`PostgresLedger::connect_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgOptions {
    /// Apply pending migrations on connect (default `true`). When
    /// `false`, a database behind this library's version is
    /// [`UsageError::LedgerVersion`]-like refused
    /// ([`UsageError::LedgerMissing`] when it has no ledger at all).
    pub migrate: bool,
    /// The most connections the ledger opens (default 4, at least 1):
    /// batches of writes run on up to two of them at once, reads on the
    /// others.
    pub connections: usize,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions {
            migrate: true,
            connections: crate::pg::POOL_SIZE,
        }
    }
}

/// A usage ledger in a PostgreSQL database, shared by every process
/// that connects to it. Thread-safe: the writes of concurrent callers go
/// to the server together, in one transaction. Its `Debug` output and
/// its errors name the URL without its password.
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
    batches: Batcher,
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

/// The server's answer is not what this library's functions return.
fn corrupt(message: impl Into<String>) -> UsageError {
    UsageError::LedgerCorrupt {
        path: String::new(),
        message: message.into(),
    }
}

/// A count read from a row: negative is corruption.
fn nonneg(v: i64, what: &str) -> Result<u64, UsageError> {
    u64::try_from(v).map_err(|_| corrupt(format!("{what} holds {v}")))
}

/// Apply the ledger's migrations to the database at `url` (what
/// `smm db migrate` does); returns the version found and the version now.
pub fn migrate_ledger(url: &str) -> Result<(i64, i64), UsageError> {
    migrate_to(url, POSTGRES_LEDGER_SCHEMA_VERSION)
}

/// Apply the ledger's migrations up to `version` only: a database as an
/// older library left it, for the tests of every migration path.
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub fn migrate_ledger_to(url: &str, version: i64) -> Result<(i64, i64), UsageError> {
    migrate_to(url, version)
}

fn migrate_to(url: &str, version: i64) -> Result<(i64, i64), UsageError> {
    let target = PgTarget::parse(url)?;
    let shown = target.shown().to_string();
    let mut c = target.connect().map_err(|e| at(&shown, e.into()))?;
    let upto: Vec<(i64, &str)> = MIGRATIONS
        .iter()
        .copied()
        .filter(|(v, _)| *v <= version)
        .collect();
    run_migrations(&mut c, &shown, &upto)
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

fn run_migrations(
    c: &mut postgres::Client,
    shown: &str,
    migrations: &[(i64, &str)],
) -> Result<(i64, i64), UsageError> {
    match crate::pg::migrate(c, COMPONENT, migrations).map_err(|e| at(shown, e.into()))? {
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

    /// [`PostgresLedger::connect`] with options (migrations on or off,
    /// the number of connections).
    pub fn connect_with(url: &str, options: PgOptions) -> Result<PostgresLedger, UsageError> {
        let target = PgTarget::parse(url)?;
        let pool = Pool::with_size(target, options.connections);
        let ledger = PostgresLedger {
            pool,
            batches: Batcher::default(),
        };
        let shown = ledger.url().to_string();
        ledger
            .pool
            .with(|c| {
                if options.migrate {
                    run_migrations(&mut c.client, &shown, &MIGRATIONS)?;
                } else {
                    let found = crate::pg::version_of(&mut c.client, COMPONENT)?;
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

    /// Run `f` on a pooled connection; errors name the URL.
    fn on<T>(&self, f: impl FnOnce(&mut Conn) -> Result<T, UsageError>) -> Result<T, UsageError> {
        self.pool.with(f).map_err(|e| at(self.url(), e))
    }

    /// One read statement (its own snapshot), prepared once per connection.
    fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, UsageError> {
        self.on(|c| {
            let st = c.statement(sql).map_err(pg)?;
            c.client.query(&st, params).map_err(pg)
        })
    }

    /// Delete a workspace's usage records and finished reservations
    /// created before `before`, with the day and month totals of periods
    /// that ended before it, as [`super::SqliteLedger::purge`] does.
    pub fn purge(&self, workspace_id: &str, before: Timestamp) -> Result<u64, UsageError> {
        let t = before;
        self.on(|c| {
            let mut tx = c.client.transaction().map_err(pg)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(smm_ledger_key($1))",
                &[&workspace_id],
            )
            .map_err(pg)?;
            let mut n = tx
                .execute(
                    "DELETE FROM model_usage WHERE workspace_id = $1 AND committed_at < $2",
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
            tx.commit().map_err(pg)?;
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

    /// Send one write to the server, with whatever other writes of this
    /// ledger are waiting; its answer.
    fn write(&self, op: Op) -> Result<Answer, UsageError> {
        self.batches
            .submit(op, |ops| self.run_batch(ops))
            .map_err(|e| at(self.url(), e))
    }

    /// Run a batch of operations in one transaction and hand each its
    /// answer: the fast path ([`engine`]) when every operation is on the
    /// common path, else the server's functions one after the other (in one
    /// statement). When the slow path fails on something other than a
    /// retry (which every operation would meet alike), each operation is
    /// run alone, so that one operation's failure is its own.
    fn run_batch(&self, ops: &[Op]) -> Vec<Result<Answer, UsageError>> {
        match self.fast_batch(ops) {
            Ok(Some(answers)) => return answers,
            Err(e) if matches!(e, UsageError::LedgerUnavailable { .. }) => {
                return ops.iter().map(|_| Err(e.clone())).collect();
            }
            Ok(None) | Err(_) => {}
        }
        match self.call_batch(ops) {
            Ok(answers) => answers.into_iter().map(Ok).collect(),
            Err(e) if ops.len() == 1 || matches!(e, UsageError::LedgerUnavailable { .. }) => {
                ops.iter().map(|_| Err(e.clone())).collect()
            }
            Err(_) => ops
                .iter()
                .map(|op| {
                    self.call_batch(std::slice::from_ref(op))
                        .and_then(|mut v| v.pop().ok_or_else(|| corrupt("no answer")))
                })
                .collect(),
        }
    }

    /// The fast path: `None` when an operation is off the common path.
    fn fast_batch(
        &self,
        ops: &[Op],
    ) -> Result<Option<Vec<Result<Answer, UsageError>>>, UsageError> {
        let wants = engine::wants(ops);
        self.on(|c| {
            let load = c
                .statement("SELECT * FROM smm_batch_load($1, $2, $3, $4, $5, $6, $7)")
                .map_err(pg)?;
            let apply = c
                .statement(
                    "SELECT smm_batch_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                     $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)",
                )
                .map_err(pg)?;
            let mut tx = c.client.transaction().map_err(pg)?;
            let row = tx
                .query_one(
                    &load,
                    &[
                        &wants.ws,
                        &wants.jobs,
                        &wants.ids,
                        &wants.kinds,
                        &wants.days,
                        &wants.months,
                        &wants.sweep_now,
                    ],
                )
                .map_err(pg)?;
            let loaded = engine::Loaded::from_row(&row)?;
            let order = engine::order(ops);
            let Some((pending, w)) = engine::Engine::new(loaded)?.run(ops, &order) else {
                tx.rollback().map_err(pg)?;
                return Ok(None);
            };
            let ids: Vec<i64> = tx
                .query_one(
                    &apply,
                    &[
                        &w.r_id,
                        &w.r_state,
                        &w.r_expired,
                        &w.r_breached,
                        &w.n_ws,
                        &w.n_job,
                        &w.n_created,
                        &w.n_expires,
                        &w.n_day,
                        &w.n_month,
                        &w.n_kinds,
                        &w.n_amounts,
                        &w.t_ws,
                        &w.t_kind,
                        &w.t_period,
                        &w.t_index,
                        &w.t_committed,
                        &w.t_reserved,
                        &w.u_ws,
                        &w.u_job,
                        &w.u_run,
                        &w.u_kind,
                        &w.u_amount,
                        &w.u_at,
                        &w.u_day,
                        &w.u_month,
                        &w.u_expired,
                    ],
                )
                .and_then(|r| r.try_get(0))
                .map_err(pg)?;
            if ids.len() != w.n_ws.len() {
                return Err(corrupt(format!(
                    "{} ids for {} new runs",
                    ids.len(),
                    w.n_ws.len()
                )));
            }
            tx.commit().map_err(pg)?;
            Ok(Some(pending.into_iter().map(|p| p.resolve(&ids)).collect()))
        })
    }

    /// The slow path: the server's functions, one operation after the
    /// other, in one statement.
    fn call_batch(&self, ops: &[Op]) -> Result<Vec<Answer>, UsageError> {
        let text = |f: fn(&Op) -> String| ops.iter().map(f).collect::<Vec<String>>();
        let num = |f: fn(&Op) -> i64| ops.iter().map(f).collect::<Vec<i64>>();
        let answers: Vec<String> = self.on(|c| {
            let st = c
                .statement(
                    "SELECT smm_ledger_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                )
                .map_err(pg)?;
            let result = c.client.query_one(
                &st,
                &[
                    &ops.iter().map(|o| o.op).collect::<Vec<&str>>(),
                    &text(|o| o.ws.clone()),
                    &text(|o| o.job.clone()),
                    &num(|o| o.id),
                    &text(|o| csv(o.amounts.iter().map(|(k, _)| k))),
                    &text(|o| csv(o.amounts.iter().map(|(_, v)| v))),
                    &num(|o| o.now),
                    &num(|o| o.day),
                    &num(|o| o.month),
                    &num(|o| o.expires),
                    &text(|o| csv(o.limits.iter().map(|q| &q.kind))),
                    &text(|o| csv(o.limits.iter().map(|q| q.period.as_str()))),
                    &text(|o| csv(o.limits.iter().map(|q| q.limit))),
                ],
            );
            match result {
                Ok(row) => row.try_get(0).map_err(pg),
                // A total would pass a BIGINT: the batch did nothing. Alone,
                // the operation gets its own answer.
                Err(e)
                    if e.code() == Some(&postgres::error::SqlState::NUMERIC_VALUE_OUT_OF_RANGE) =>
                {
                    match ops {
                        [op] => Err(UsageError::Overflow {
                            what: overflow_what(&mut c.client, op),
                        }),
                        _ => Err(corrupt("a total overflowed in a batch")),
                    }
                }
                Err(e) => Err(pg(e)),
            }
        })?;
        if answers.len() != ops.len() {
            return Err(corrupt(format!(
                "{} answers to a batch of {} operations",
                answers.len(),
                ops.len()
            )));
        }
        answers
            .iter()
            .map(|a| {
                serde_json::from_str(a)
                    .map_err(|e| corrupt(format!("an answer of the ledger's functions: {e}")))
            })
            .collect()
    }
}

/// Items comma-separated (kinds never hold a comma; the rest are numbers).
fn csv<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// Which all-time total an operation would have pushed past a BIGINT
/// ("the tokens reserved", as the other ledgers say), found after the
/// fact (the error path only).
fn overflow_what(c: &mut postgres::Client, op: &Op) -> String {
    let committed = op.op == "commit";
    let column = if committed { "committed" } else { "reserved" };
    let found = (|| -> Result<Option<String>, postgres::Error> {
        let ws: Option<String> = if committed {
            c.query_opt(
                "SELECT workspace_id FROM agent_runs WHERE id = $1",
                &[&op.id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?
        } else {
            Some(op.ws.clone())
        };
        let Some(ws) = ws else { return Ok(None) };
        for (kind, amount) in &op.amounts {
            let row = c.query_opt(
                "SELECT committed, reserved FROM usage_totals
                 WHERE workspace_id = $1 AND kind = $2 AND period = 'total' AND period_index = 0",
                &[&ws, kind],
            )?;
            if let Some(r) = row {
                let total: i64 = r.try_get(usize::from(!committed))?;
                if total.checked_add(*amount).is_none() {
                    return Ok(Some(kind.clone()));
                }
            }
        }
        Ok(None)
    })();
    match found {
        Ok(Some(kind)) => format!("the {kind} {column}"),
        _ => format!("a {column} total"),
    }
}

/// One write of a batch.
#[derive(Debug, Clone, Default)]
struct Op {
    /// `reserve`, `commit` or `release`.
    op: &'static str,
    /// The workspace and job of a reservation.
    ws: String,
    job: String,
    /// The run of a commit or release.
    id: i64,
    /// The amounts (in kind order; `to_i64`-checked).
    amounts: Vec<(String, i64)>,
    /// `now`, in seconds, its day and its month.
    now: i64,
    day: i64,
    month: i64,
    /// A reservation's expiry, in seconds.
    expires: i64,
    /// A reservation's limits, merged among themselves.
    limits: Vec<Quota>,
}

impl Op {
    fn at(&self) -> Timestamp {
        Timestamp {
            seconds: self.now,
            nanos: 0,
        }
    }

    fn when(mut self, t: Timestamp) -> Op {
        self.now = t.seconds;
        self.day = Period::Day.index(t);
        self.month = Period::Month.index(t);
        self
    }

    fn amounts(mut self, amounts: &Amounts) -> Result<Op, UsageError> {
        self.amounts = amounts
            .iter()
            .map(|(k, v)| Ok((k.to_string(), to_i64(*v, &format!("the {k} amount"))?)))
            .collect::<Result<_, UsageError>>()?;
        Ok(self)
    }

    fn limits(mut self, workspace_id: &str, limits: &[Quota]) -> Result<Op, UsageError> {
        self.limits = merge_limits(workspace_id, Vec::new(), limits)?;
        for q in &self.limits {
            to_i64(q.limit, "a limit")?;
        }
        Ok(self)
    }
}

/// A reservation's standing against one quota, as the server answers it:
/// kind, period, limit, committed + reserved.
type Standing = (String, String, i64, u64);

/// The writes of one ledger waiting for the server, and the answers of
/// those sent. A caller with a write queues it; when no batch is at the
/// server (or one is, and the waiting writes touch none of its
/// workspaces: see [`Batcher::IN_FLIGHT`]), the caller takes every waiting
/// write (its own and others') to the server as one batch, then hands out
/// the answers. So a lone caller waits for nothing, and concurrent callers
/// share round trips and commits.
///
/// A waiting caller sleeps until it is woken by name (its thread is
/// parked, and unparked by the caller who answered it, or who hands it
/// the lead): a batch's end wakes the callers it answered and one caller
/// to lead the next batch, not every caller waiting.
#[derive(Debug, Default)]
struct Batcher {
    state: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    next_ticket: u64,
    waiting: Vec<(u64, Op)>,
    /// The thread of every caller not yet answered, by ticket.
    callers: HashMap<u64, std::thread::Thread>,
    answers: HashMap<u64, Result<Answer, UsageError>>,
    /// The workspaces of each batch at the server (`None`: not all known).
    out: Vec<(u64, Option<BTreeSet<String>>)>,
    next_batch: u64,
    /// The workspace of each run this ledger reserved and has not yet seen
    /// committed or released (a commit names only its run). Only a hint
    /// for scheduling: the server's locks keep the books right whatever it
    /// says, so it is forgotten wholesale when it grows large.
    owners: HashMap<i64, String>,
    /// Callers answered lately that have not written again yet: while
    /// some are on their way, a new batch waits a moment for them.
    in_transit: usize,
    /// The caller gathering a batch (a new write wakes it).
    gathering: Option<u64>,
}

impl Queue {
    fn wake(&self, ticket: u64) {
        if let Some(t) = self.callers.get(&ticket) {
            t.unpark();
        }
    }

    /// The workspace of `op`, if known.
    fn space_of<'a>(&'a self, op: &'a Op) -> Option<&'a str> {
        match op.op {
            "reserve" => Some(op.ws.as_str()),
            _ => self.owners.get(&op.id).map(String::as_str),
        }
    }

    /// Whether a batch of the waiting writes may go now: none is out, or
    /// fewer than [`Batcher::IN_FLIGHT`] are and the waiting writes touch
    /// none of their workspaces (a batch that would only wait for another's
    /// locks joins the next batch instead). Allocates nothing: every
    /// waiting caller asks it each time it wakes.
    fn may_send(&self) -> bool {
        if self.waiting.is_empty() || self.out.len() >= Batcher::IN_FLIGHT {
            return false;
        }
        self.out.is_empty()
            || self.waiting.iter().all(|(_, op)| {
                self.space_of(op).is_some_and(|ws| {
                    self.out
                        .iter()
                        .all(|(_, theirs)| theirs.as_ref().is_some_and(|t| !t.contains(ws)))
                })
            })
    }

    /// Wake the oldest waiting caller to lead a batch, when one may go.
    fn wake_next_leader(&self) {
        if self.may_send()
            && let Some((t, _)) = self.waiting.first()
        {
            self.wake(*t);
        }
    }

    /// Learn from a batch's answers which runs belong to which workspace.
    fn learn(&mut self, ops: &[Op], answers: &[Result<Answer, UsageError>]) {
        const MOST: usize = 1 << 16;
        for (op, a) in ops.iter().zip(answers) {
            match (op.op, a) {
                ("reserve", Ok(Answer::Held { id, .. })) => {
                    if self.owners.len() >= MOST {
                        self.owners.clear();
                    }
                    self.owners.insert(*id, op.ws.clone());
                }
                ("reserve", _) => {}
                _ => {
                    self.owners.remove(&op.id);
                }
            }
        }
    }
}

impl Batcher {
    /// Batches at the server at once: two, but the second only when it
    /// touches no workspace of the first. Two at once overlap one batch's
    /// commit with the next one's round trips (many workspaces: 0.57x
    /// pgbench's naive rate against 0.49x with one); on one workspace the
    /// second would only wait for the first's locks, and its writes make a
    /// larger batch after it instead (0.9x against 1.4x; BENCHMARKS.md).
    const IN_FLIGHT: usize = 2;
    /// How long a new batch waits for callers on their way.
    const GATHER: std::time::Duration = std::time::Duration::from_micros(200);
    /// The longest a waiting caller sleeps before it looks again (a
    /// wake-up is never needed for progress past this).
    const NAP: std::time::Duration = std::time::Duration::from_millis(5);

    fn submit(
        &self,
        op: Op,
        run: impl Fn(&[Op]) -> Vec<Result<Answer, UsageError>>,
    ) -> Result<Answer, UsageError> {
        let poisoned = || corrupt("the ledger's batch queue is poisoned");
        let mut q = self.state.lock().map_err(|_| poisoned())?;
        let ticket = q.next_ticket;
        q.next_ticket += 1;
        q.waiting.push((ticket, op));
        q.callers.insert(ticket, std::thread::current());
        q.in_transit = q.in_transit.saturating_sub(1);
        if let Some(g) = q.gathering {
            // A batch is gathering: this write is one it waits for.
            q.wake(g);
        }
        let mut waited = std::time::Duration::ZERO;
        loop {
            if let Some(answer) = q.answers.remove(&ticket) {
                q.callers.remove(&ticket);
                return answer;
            }
            if q.may_send() && q.gathering.is_none_or(|g| g == ticket) {
                if q.in_transit > 0 && waited < Self::GATHER {
                    let step = std::time::Duration::from_micros(50);
                    q.gathering = Some(ticket);
                    drop(q);
                    std::thread::park_timeout(step);
                    waited += step;
                    q = self.state.lock().map_err(|_| poisoned())?;
                    q.gathering = None;
                    continue;
                }
                let take = q.waiting.len().min(MAX_BATCH);
                let batch: Vec<(u64, Op)> = q.waiting.drain(..take).collect();
                let spaces = batch
                    .iter()
                    .map(|(_, op)| q.space_of(op).map(str::to_string))
                    .collect();
                let id = q.next_batch;
                q.next_batch += 1;
                q.out.push((id, spaces));
                // (More than a batch waiting: another caller may lead.)
                q.wake_next_leader();
                drop(q);
                let (tickets, ops): (Vec<u64>, Vec<Op>) = batch.into_iter().unzip();
                let answers = run(&ops);
                q = self.state.lock().map_err(|_| poisoned())?;
                q.out.retain(|(b, _)| *b != id);
                q.learn(&ops, &answers);
                q.in_transit = q.in_transit.saturating_add(tickets.len().saturating_sub(1));
                let mut answers = answers.into_iter();
                for t in tickets {
                    let a = answers
                        .next()
                        .unwrap_or_else(|| Err(corrupt("a batch lost an answer")));
                    q.answers.insert(t, a);
                    if t != ticket {
                        q.wake(t);
                    }
                }
                q.wake_next_leader();
                continue;
            }
            drop(q);
            std::thread::park_timeout(Self::NAP);
            q = self.state.lock().map_err(|_| poisoned())?;
        }
    }
}

/// What a write answers (the server's functions answer it as JSON, see
/// `v2.sql`; the fast path makes it here).
#[derive(Debug, Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum Answer {
    JobCommitted,
    JobActive {
        id: i64,
    },
    Blocked {
        standings: Vec<Standing>,
    },
    Held {
        id: i64,
        standings: Vec<Standing>,
    },
    Unknown,
    Receipt {
        id: i64,
        job: String,
        expired: bool,
        breached: String,
        amounts: std::collections::BTreeMap<String, i64>,
    },
    Done {
        job: String,
        expired: bool,
        breached: String,
    },
    Released,
}

fn breaches(text: &str) -> Vec<String> {
    text.split(';')
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .collect()
}

fn receipt(
    id: i64,
    job_id: String,
    expired: bool,
    breached: &str,
    amounts: std::collections::BTreeMap<String, i64>,
) -> Result<CommitReceipt, UsageError> {
    let amounts = amounts
        .into_iter()
        .map(|(k, v)| Ok((Kind::from(k), nonneg(v, "an amount")?)))
        .collect::<Result<Amounts, UsageError>>()?;
    Ok(CommitReceipt {
        job_id,
        reservation_id: format!("res-{id}"),
        amounts,
        already_committed: true,
        expired,
        breached: breaches(breached),
    })
}

fn quota_of(
    workspace_id: &str,
    kind: String,
    period: &str,
    limit: i64,
) -> Result<Quota, UsageError> {
    let period =
        Period::parse(period).ok_or_else(|| corrupt(format!("{period:?} is not a period")))?;
    Ok(Quota {
        workspace_id: workspace_id.to_string(),
        kind,
        period,
        limit: nonneg(limit, "a quota's limit")?,
    })
}

/// The limits of a call, merged among themselves (the tightest of two
/// alike), as three arrays.
type LimitArrays = (Vec<String>, Vec<&'static str>, Vec<i64>);

fn limit_arrays(workspace_id: &str, limits: &[Quota]) -> Result<LimitArrays, UsageError> {
    let merged = merge_limits(workspace_id, Vec::new(), limits)?;
    let mut out = (Vec::new(), Vec::new(), Vec::new());
    for q in merged {
        out.2.push(to_i64(q.limit, "a limit")?);
        out.1.push(q.period.as_str());
        out.0.push(q.kind);
    }
    Ok(out)
}

impl UsageLedger for PostgresLedger {
    fn set_quota(&self, quota: &Quota) -> Result<(), UsageError> {
        check_id("/workspaceId", &quota.workspace_id)?;
        check_kind(&quota.kind)?;
        let limit = to_i64(quota.limit, "the limit")?;
        self.query(
            "SELECT smm_set_quota($1, $2, $3, $4)",
            &[
                &quota.workspace_id,
                &quota.kind,
                &quota.period.as_str(),
                &limit,
            ],
        )?;
        Ok(())
    }

    fn quotas(&self, workspace_id: &str) -> Result<Vec<Quota>, UsageError> {
        self.query(
            "SELECT quota_type, period, limit_value FROM workspace_quotas WHERE workspace_id = $1
             ORDER BY quota_type COLLATE \"C\", period COLLATE \"C\"",
            &[&workspace_id],
        )?
        .iter()
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
        let t = now;
        let expires = t.plus_seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
        let op = Op {
            op: "reserve",
            ws: workspace_id.to_string(),
            job: job_id.to_string(),
            expires: expires.seconds,
            ..Op::default()
        }
        .when(t)
        .amounts(amounts)?
        .limits(workspace_id, limits)?;
        let (id, standings) = match self.write(op)? {
            Answer::JobCommitted => {
                return Err(UsageError::JobCommitted {
                    job_id: job_id.to_string(),
                });
            }
            Answer::JobActive { id } => {
                return Err(UsageError::JobInProgress {
                    job_id: job_id.to_string(),
                    reservation_id: format!("res-{id}"),
                });
            }
            Answer::Blocked { standings } => (None, standings),
            Answer::Held { id, standings } => (Some(id), standings),
            other => return Err(corrupt(format!("a reservation answered {other:?}"))),
        };
        let standings = standings
            .into_iter()
            .map(|(kind, period, limit, current)| {
                Ok((quota_of(workspace_id, kind, &period, limit)?, current))
            })
            .collect::<Result<Vec<_>, UsageError>>()?;
        let (outcome, reasons) = judge(standings.iter().map(|(q, n)| (q, *n)), amounts)?;
        let held = outcome != super::Outcome::Block;
        if held != id.is_some() {
            return Err(corrupt(format!(
                "the server {} a reservation the check {}",
                if id.is_some() { "held" } else { "refused" },
                if held { "allows" } else { "blocks" }
            )));
        }
        Ok(Reservation {
            id: id.map(|n| format!("res-{n}")).unwrap_or_default(),
            workspace_id: workspace_id.to_string(),
            job_id: job_id.to_string(),
            amounts: amounts.clone(),
            outcome,
            reasons,
            created_at: t.to_rfc3339(),
            expires_at: expires.to_rfc3339(),
        })
    }

    fn commit(
        &self,
        reservation_id: &str,
        actual: &Amounts,
        now: Timestamp,
    ) -> Result<CommitReceipt, UsageError> {
        check_amounts(actual)?;
        let op = Op {
            op: "commit",
            id: parse_reservation_id(reservation_id)?,
            ..Op::default()
        }
        .when(now)
        .amounts(actual)?;
        match self.write(op)? {
            Answer::Unknown => Err(UsageError::UnknownReservation {
                reservation_id: reservation_id.to_string(),
            }),
            Answer::Receipt {
                id,
                job,
                expired,
                breached,
                amounts,
            } => receipt(id, job, expired, &breached, amounts),
            Answer::Done {
                job,
                expired,
                breached,
            } => Ok(CommitReceipt {
                job_id: job,
                reservation_id: reservation_id.to_string(),
                amounts: actual.clone(),
                already_committed: false,
                expired,
                breached: breaches(&breached),
            }),
            other => Err(corrupt(format!("a commit answered {other:?}"))),
        }
    }

    fn release(&self, reservation_id: &str) -> Result<(), UsageError> {
        let op = Op {
            op: "release",
            id: parse_reservation_id(reservation_id)?,
            ..Op::default()
        };
        match self.write(op)? {
            Answer::Released => Ok(()),
            Answer::Unknown => Err(UsageError::UnknownReservation {
                reservation_id: reservation_id.to_string(),
            }),
            other => Err(corrupt(format!("a release answered {other:?}"))),
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
        let rows = self.query(
            "SELECT committed FROM usage_totals
             WHERE workspace_id = $1 AND kind = $2 AND period = $3 AND period_index = $4",
            &[&workspace_id, &kind, &period.as_str(), &period.index(now)],
        )?;
        match rows.first() {
            None => Ok(0),
            Some(r) => nonneg(r.try_get(0).map_err(pg)?, "a committed total"),
        }
    }

    fn workspaces(&self) -> Result<Vec<String>, UsageError> {
        self.query(
            "SELECT w FROM (SELECT workspace_id FROM workspace_quotas
                             UNION SELECT workspace_id FROM usage_totals) AS x (w)
             ORDER BY w COLLATE \"C\"",
            &[],
        )?
        .iter()
        .map(|r| r.try_get(0).map_err(pg))
        .collect()
    }

    fn status_within(
        &self,
        workspace_id: &str,
        now: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError> {
        let (lkinds, lperiods, llimits) = limit_arrays(workspace_id, limits)?;
        // A read: no sweep (a reader's clock never gives back a hold).
        self.query(
            "SELECT q_kind, q_period, q_limit, q_committed, q_reserved
             FROM smm_standings($1, $2, $3, $4, $5, $6)",
            &[
                &workspace_id,
                &Period::Day.index(now),
                &Period::Month.index(now),
                &lkinds,
                &lperiods,
                &llimits,
            ],
        )?
        .iter()
        .map(|r| {
            Ok(QuotaStatus {
                quota: quota_of(
                    workspace_id,
                    r.try_get(0).map_err(pg)?,
                    r.try_get::<_, &str>(1).map_err(pg)?,
                    r.try_get(2).map_err(pg)?,
                )?,
                used: nonneg(r.try_get(3).map_err(pg)?, "a committed total")?,
                reserved: nonneg(r.try_get(4).map_err(pg)?, "a reserved total")?,
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reserve(ws: &str) -> Op {
        Op {
            op: "reserve",
            ws: ws.into(),
            ..Op::default()
        }
    }

    fn commit(id: i64) -> Op {
        Op {
            op: "commit",
            id,
            ..Op::default()
        }
    }

    /// A second batch goes only when every waiting write's workspace is
    /// known and none is one of the batch already out.
    #[test]
    fn a_second_batch_only_on_other_workspaces() {
        let mut q = Queue::default();
        assert!(!q.may_send(), "nothing waiting");
        q.waiting.push((0, reserve("a")));
        assert!(q.may_send(), "nothing out");
        q.out.push((0, Some(["a".to_string()].into())));
        assert!(!q.may_send(), "the batch out holds a");
        q.waiting = vec![(1, reserve("b")), (2, commit(7))];
        assert!(!q.may_send(), "run 7's workspace is unknown");
        q.learn(
            &[reserve("c")],
            &[Ok(Answer::Held {
                id: 7,
                standings: vec![],
            })],
        );
        assert!(q.may_send(), "b and c, with a out");
        q.learn(&[commit(7)], &[Ok(Answer::Released)]);
        assert!(!q.may_send(), "run 7 forgotten once answered");
        q.waiting = vec![(1, reserve("b"))];
        q.out.push((1, None));
        assert!(!q.may_send(), "a batch out of unknown workspaces");
        q.out = vec![
            (0, Some(["a".into()].into())),
            (1, Some(["c".into()].into())),
        ];
        assert!(!q.may_send(), "two out already");
    }
}
