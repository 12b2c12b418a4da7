//! Cost controls: the usage ledger (SQLite or in memory), prices, agent
//! runs, the budget-breach playbook, agent tokens, retention.
//!
//! Every document is JSON in ledger units (`cost_usd` in nano-dollars,
//! 1,000,000,000 to the dollar; other kinds in whole units); see the
//! schemas in `schemas/`. Time is always passed in (RFC 3339).
//!
//! A `smm_ledger` is thread-safe: share one handle between threads; calls
//! on it are serialized inside (a SQLite ledger may also be opened by other
//! processes: reservations never pass a limit together).

use std::ffi::c_char;

use serde::de::DeserializeOwned;
use smm_core::contract::Contract;
use smm_core::host;
use smm_core::usage::{
    self, AgentRun, AgentTokenClaims, AgentType, Amounts, MemoryLedger, Period, PriceTable, Quota,
    RetentionPlan, RetentionRecord, UsageLedger,
};

use crate::convert::{arg_obj, arg_str, arg_time, check_out, to_json_string, write_obj, write_out};
use crate::errors::{Failure, boundary, err, smm_status};

/// A usage ledger. Made by `smm_ledger_open`, `smm_ledger_open_existing`
/// or `smm_ledger_new_memory`; freed by `smm_ledger_free`. Thread-safe.
pub struct smm_ledger {
    books: host::Ledger,
}

impl std::fmt::Debug for smm_ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "smm_ledger({})", self.books.kind())
    }
}

impl smm_ledger {
    pub(crate) fn ledger(&self) -> &dyn UsageLedger {
        self.books.as_dyn()
    }
}

fn invalid(pointer: &str, e: impl std::fmt::Display) -> Failure {
    (
        smm_status::SMM_INVALID_INPUT,
        format!("invalid input at {pointer}: {e}"),
    )
}

/// A JSON argument as a typed value; errors name the field by pointer.
///
/// # Safety
/// `p` is NULL or NUL-terminated.
unsafe fn arg_json<T: DeserializeOwned>(p: *const c_char, name: &str) -> Result<T, Failure> {
    // SAFETY: per the caller's contract.
    let text = unsafe { arg_str(p, name) }?;
    let v = smm_core::contract::parse_document(text).map_err(err)?;
    serde_path_to_error::deserialize(&v).map_err(|e| {
        let pointer = smm_core::sim::SimulationError::from_path_error(&e);
        invalid(&format!("{name}{pointer}"), e.inner())
    })
}

/// Open a SQLite ledger with `open` and hand it out.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `ledger_out` is NULL or writable.
unsafe fn open_sqlite(
    path: *const c_char,
    ledger_out: *mut *mut smm_ledger,
    existing: bool,
) -> smm_status {
    boundary(|| {
        check_out(ledger_out, "ledger_out")?;
        // SAFETY: per the caller's contract.
        let p = unsafe { arg_str(path, "path") }?;
        let choice = host::LedgerChoice::Sqlite(p.into());
        let books = if existing {
            choice.open_existing()
        } else {
            choice.open()
        }
        .map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(ledger_out, smm_ledger { books }) };
        Ok(())
    })
}

/// Open the SQLite ledger at `path`, creating it (and its schema) when the
/// file does not exist.
///
/// # Safety
/// `path` is NULL or NUL-terminated; `ledger_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_open(
    path: *const c_char,
    ledger_out: *mut *mut smm_ledger,
) -> smm_status {
    // SAFETY: the same contract.
    unsafe { open_sqlite(path, ledger_out, false) }
}

/// Open the SQLite ledger at `path` (created when missing) with the
/// durability of its commits: `"normal"` (commits survive a crash of the
/// process; as `smm_ledger_open`) or `"full"` (each commit on the disk
/// before it returns, so it survives a power loss too; slower). Any other
/// word is SMM_INVALID_INPUT at `/durability`.
///
/// # Safety
/// `path` and `durability` are NULL or NUL-terminated; `ledger_out` is
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_open_durable(
    path: *const c_char,
    durability: *const c_char,
    ledger_out: *mut *mut smm_ledger,
) -> smm_status {
    boundary(|| {
        check_out(ledger_out, "ledger_out")?;
        // SAFETY: per the caller's contract.
        let p = unsafe { arg_str(path, "path") }?;
        // SAFETY: per the caller's contract.
        let d = unsafe { arg_str(durability, "durability") }?;
        let d: usage::Durability = d.parse().map_err(err)?;
        let books =
            host::Ledger::Sqlite(usage::SqliteLedger::open_with_durability(p, d).map_err(err)?);
        // SAFETY: checked above.
        unsafe { write_obj(ledger_out, smm_ledger { books }) };
        Ok(())
    })
}

/// The durability of a SQLite ledger's commits, `"normal"` or `"full"`, as
/// a string to free with `smm_string_free`; SMM_INVALID_INPUT for a ledger
/// that is not a SQLite file.
///
/// # Safety
/// `ledger` is NULL or from `smm_ledger_open*`; `out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_durability(
    ledger: *const smm_ledger,
    out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(out, "out")?;
        // SAFETY: per the caller's contract.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        let host::Ledger::Sqlite(sqlite) = &l.books else {
            return Err(invalid(
                "/ledger",
                "not a SQLite ledger: it has no durability setting",
            ));
        };
        let d = sqlite.durability().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(out, d.as_str().to_string()) }
    })
}

/// Connect to the PostgreSQL ledger at `url`
/// (`postgresql://user:password@host:port/db`), shared by every replica of
/// a service: its tables are created or migrated on connect; a database
/// from a newer library is SMM_LEDGER_VERSION, an unreachable server
/// SMM_LEDGER_LOCKED (retry). Errors name the URL without its password.
///
/// # Safety
/// `url` is NULL or NUL-terminated; `ledger_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_connect(
    url: *const c_char,
    ledger_out: *mut *mut smm_ledger,
) -> smm_status {
    boundary(|| {
        check_out(ledger_out, "ledger_out")?;
        // SAFETY: per the caller's contract.
        let u = unsafe { arg_str(url, "url") }?;
        if !usage::is_postgres_url(u) {
            return Err(err(usage::UsageError::InvalidInput {
                pointer: "/url".into(),
                message: "a PostgreSQL URL starts with postgresql://".into(),
            }));
        }
        let books = host::LedgerChoice::Postgres(u.into()).open().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_obj(ledger_out, smm_ledger { books }) };
        Ok(())
    })
}

/// Open the SQLite ledger at `path`, which must exist
/// (SMM_LEDGER_STORAGE otherwise).
///
/// # Safety
/// `path` is NULL or NUL-terminated; `ledger_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_open_existing(
    path: *const c_char,
    ledger_out: *mut *mut smm_ledger,
) -> smm_status {
    // SAFETY: the same contract.
    unsafe { open_sqlite(path, ledger_out, true) }
}

/// A ledger in this process's memory.
///
/// # Safety
/// `ledger_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_new_memory(ledger_out: *mut *mut smm_ledger) -> smm_status {
    boundary(|| {
        check_out(ledger_out, "ledger_out")?;
        // SAFETY: checked above.
        unsafe {
            write_obj(
                ledger_out,
                smm_ledger {
                    books: host::Ledger::Memory(MemoryLedger::new()),
                },
            )
        };
        Ok(())
    })
}

/// Free a ledger (closing its file). NULL is ignored.
///
/// # Safety
/// `ledger` is NULL or a ledger from this library, not yet freed, not in
/// use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_free(ledger: *mut smm_ledger) {
    if !ledger.is_null() {
        // SAFETY: made by Box::into_raw in this library, freed once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            drop(Box::from_raw(ledger))
        }));
    }
}

/// Set (or replace) a quota: `{"workspaceId", "kind", "period", "limit"}`
/// with kind "tokens", "cost_usd" (limit in nano-dollars) or a custom
/// kind, period "day" (UTC), "month" (UTC calendar month) or "total".
///
/// # Safety
/// `ledger` is NULL or live; `quota_json` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_set_quota(
    ledger: *const smm_ledger,
    quota_json: *const c_char,
) -> smm_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: per this function's contract.
        let q: Quota = unsafe { arg_json(quota_json, "quota_json") }?;
        l.ledger().set_quota(&q).map_err(err)
    })
}

/// The workspace's quotas (a JSON array of quotas).
///
/// # Safety
/// `ledger` is NULL or live; `workspace_id` is NULL or NUL-terminated;
/// `quotas_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_quotas(
    ledger: *const smm_ledger,
    workspace_id: *const c_char,
    quotas_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(quotas_out, "quotas_out")?;
        // SAFETY: per this function's contract.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: per this function's contract.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        let q = l.ledger().quotas(ws).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(quotas_out, to_json_string(&q)?) }
    })
}

/// The workspaces the books know (a quota, or any usage or hold), sorted,
/// as a JSON array of strings.
///
/// # Safety
/// `ledger` is NULL or live; `workspaces_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_workspaces_json(
    ledger: *const smm_ledger,
    workspaces_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(workspaces_out, "workspaces_out")?;
        // SAFETY: per this function's contract.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        let w = l.ledger().workspaces().map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(workspaces_out, to_json_string(&w)?) }
    })
}

/// Reserve `amounts_json` (`{"tokens": 500, "cost_usd": 15000000}`) for a
/// job before its model calls, at `now`, for `ttl_seconds` (0: the default,
/// 900). Writes the reservation (schemas/reservation.schema.json): outcome
/// "allow", "warn" (80 % of a limit reached) or "block" (a limit would be
/// passed; nothing is held, the id is ""). With `strict`, a block is
/// SMM_QUOTA_EXCEEDED instead (nothing written).
///
/// # Safety
/// `ledger` is NULL or live; the strings are NULL or NUL-terminated;
/// `reservation_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_reserve(
    ledger: *const smm_ledger,
    workspace_id: *const c_char,
    job_id: *const c_char,
    amounts_json: *const c_char,
    now: *const c_char,
    ttl_seconds: u64,
    strict: bool,
    reservation_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(reservation_out, "reservation_out")?;
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `workspace_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: `job_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let job = unsafe { arg_str(job_id, "job_id") }?;
        // SAFETY: `amounts_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let amounts: Amounts = unsafe { arg_json(amounts_json, "amounts_json") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let ttl = if ttl_seconds == 0 {
            usage::DEFAULT_RESERVATION_TTL_SECONDS
        } else {
            ttl_seconds
        };
        let mut r = l
            .ledger()
            .reserve(ws, job, &amounts, now, ttl)
            .map_err(err)?;
        if strict {
            r = r.require_allowed().map_err(err)?;
        }
        // SAFETY: checked above.
        unsafe { write_out(reservation_out, to_json_string(&r)?) }
    })
}

/// Record a job's actual usage (`amounts_json`, as for reserve); idempotent
/// by job (a second commit answers the first with "alreadyCommitted":
/// true). Writes the receipt (schemas/commit-receipt.schema.json).
///
/// # Safety
/// `ledger` is NULL or live; the strings are NULL or NUL-terminated;
/// `receipt_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_commit(
    ledger: *const smm_ledger,
    reservation_id: *const c_char,
    amounts_json: *const c_char,
    now: *const c_char,
    receipt_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(receipt_out, "receipt_out")?;
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `reservation_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let id = unsafe { arg_str(reservation_id, "reservation_id") }?;
        // SAFETY: `amounts_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let amounts: Amounts = unsafe { arg_json(amounts_json, "amounts_json") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let receipt = l.ledger().commit(id, &amounts, now).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(receipt_out, to_json_string(&receipt)?) }
    })
}

/// Give a reservation back (the model call failed). Releasing twice, or
/// after the commit, is SMM_UNKNOWN_RESERVATION.
///
/// # Safety
/// `ledger` is NULL or live; `reservation_id` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_release(
    ledger: *const smm_ledger,
    reservation_id: *const c_char,
) -> smm_status {
    boundary(|| {
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `reservation_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let id = unsafe { arg_str(reservation_id, "reservation_id") }?;
        l.ledger().release(id).map_err(err)
    })
}

/// Committed usage of `kind` (in its units) in the `period` ("day",
/// "month" or "total") containing `now`.
///
/// # Safety
/// `ledger` is NULL or live; the strings are NULL or NUL-terminated;
/// `used_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_used(
    ledger: *const smm_ledger,
    workspace_id: *const c_char,
    kind: *const c_char,
    period: *const c_char,
    now: *const c_char,
    used_out: *mut u64,
) -> smm_status {
    boundary(|| {
        if used_out.is_null() {
            return Err((smm_status::SMM_NULL_ARGUMENT, "used_out is NULL".into()));
        }
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `workspace_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: `kind` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let kind = unsafe { arg_str(kind, "kind") }?;
        // SAFETY: `period` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let period_s = unsafe { arg_str(period, "period") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let period = Period::parse(period_s).ok_or_else(|| {
            invalid(
                "/period",
                format!("must be \"day\", \"month\" or \"total\" (got {period_s:?})"),
            )
        })?;
        let n = l.ledger().used(ws, kind, period, now).map_err(err)?;
        // SAFETY: checked non-NULL above.
        unsafe { *used_out = n };
        Ok(())
    })
}

/// Every quota's standing at `now` (schemas/quota-status.schema.json): the
/// `status` of a breach request.
///
/// # Safety
/// `ledger` is NULL or live; the strings are NULL or NUL-terminated;
/// `status_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_status(
    ledger: *const smm_ledger,
    workspace_id: *const c_char,
    now: *const c_char,
    status_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(status_out, "status_out")?;
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `workspace_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let st = l.ledger().status(ws, now).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(status_out, to_json_string(&st)?) }
    })
}

/// The `quotas` figures of a policy input (`[{"kind", "period", "limit",
/// "used"}]`, used counting active reservations) at `now`: what the
/// policy bundle's quota rules read.
///
/// # Safety
/// `ledger` is NULL or live; the strings are NULL or NUL-terminated;
/// `figures_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_policy_figures(
    ledger: *const smm_ledger,
    workspace_id: *const c_char,
    now: *const c_char,
    figures_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(figures_out, "figures_out")?;
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `workspace_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let st = l.ledger().status(ws, now).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(figures_out, to_json_string(&usage::policy_figures(&st))?) }
    })
}

/// Apply a retention plan's ledger part (a SQLite ledger only): the plan
/// must match its planHash; deletes the workspace's entries older than its
/// auditRetentionDays; a plan under legal hold deletes nothing. Writes the
/// number of rows deleted.
///
/// # Safety
/// `ledger` is NULL or live; `plan_json` is NULL or NUL-terminated;
/// `deleted_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_ledger_apply_retention(
    ledger: *const smm_ledger,
    plan_json: *const c_char,
    deleted_out: *mut u64,
) -> smm_status {
    boundary(|| {
        if deleted_out.is_null() {
            return Err((smm_status::SMM_NULL_ARGUMENT, "deleted_out is NULL".into()));
        }
        // SAFETY: `ledger` is NULL or a live handle made by this library and not yet freed (this function's contract); arg_obj checks NULL.
        let l = unsafe { arg_obj(ledger, "ledger") }?;
        // SAFETY: `plan_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let plan: RetentionPlan = unsafe { arg_json(plan_json, "plan_json") }?;
        let n = l.books.apply_retention(&plan).map_err(err)?;
        // SAFETY: checked non-NULL above.
        unsafe { *deleted_out = n };
        Ok(())
    })
}

/// A priced model-usage record (schemas/model-usage.schema.json) for one
/// call: `prices_json` a price table (schemas/price-table.schema.json),
/// `messages_json` the prompt messages (their RFC 8785 SHA-256 is the
/// promptHash), the tokens, and the call's `timestamp`.
///
/// # Safety
/// The strings are NULL or NUL-terminated; `usage_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_price_usage(
    prices_json: *const c_char,
    model_id: *const c_char,
    messages_json: *const c_char,
    input_tokens: u64,
    output_tokens: u64,
    timestamp: *const c_char,
    usage_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(usage_out, "usage_out")?;
        // SAFETY: `prices_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let prices = unsafe { arg_str(prices_json, "prices_json") }?;
        // SAFETY: `model_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let model = unsafe { arg_str(model_id, "model_id") }?;
        // SAFETY: `messages_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let messages: serde_json::Value = unsafe { arg_json(messages_json, "messages_json") }?;
        // SAFETY: `timestamp` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ts = arg_time(unsafe { arg_str(timestamp, "timestamp") }?, "timestamp")?;
        let table = PriceTable::from_json(prices).map_err(err)?;
        let u = usage::price_usage(&table, model, &messages, input_tokens, output_tokens, ts)
            .map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(usage_out, to_json_string(&u)?) }
    })
}

/// Check an agent run (schemas/agent-run.schema.json): ids, hashes, times,
/// token totals. SMM_INVALID_INPUT names the field.
///
/// # Safety
/// `run_json` is NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_agent_run_check(run_json: *const c_char) -> smm_status {
    boundary(|| {
        // SAFETY: per this function's contract.
        let run: AgentRun = unsafe { arg_json(run_json, "run_json") }?;
        run.check().map_err(err)
    })
}

/// The budget-breach playbook: from a request `{"contract", "status",
/// "now", "actor", "simulation", "policyDecision", "decisionCard",
/// "agentRuns"?, "previousBundleRef"?}` (status: `smm_ledger_status`),
/// the plan the host executes (schemas/breach-plan.schema.json).
///
/// # Safety
/// `request_json` is NULL or NUL-terminated; `plan_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_breach_plan(
    request_json: *const c_char,
    plan_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(plan_out, "plan_out")?;
        // SAFETY: per this function's contract.
        let text = unsafe { arg_str(request_json, "request_json") }?;
        let v = smm_core::contract::parse_document(text).map_err(err)?;
        let plan = usage::breach_plan_request(&v).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(plan_out, to_json_string(&plan)?) }
    })
}

/// Check an agent token's claims (`{"policies", "issuedAt", "expiresAt",
/// "renewable"}`, from the host's introspection) for an agent of
/// `agent_type` ("research", "planner", "creative", "automation", "legal",
/// "publisher") acting for `workspace_id` at `now`. SMM_TOKEN_REJECTED
/// with a message saying which check failed.
///
/// # Safety
/// The strings are NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_check_agent_token(
    claims_json: *const c_char,
    workspace_id: *const c_char,
    agent_type: *const c_char,
    now: *const c_char,
) -> smm_status {
    boundary(|| {
        // SAFETY: `claims_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let claims: AgentTokenClaims = unsafe { arg_json(claims_json, "claims_json") }?;
        // SAFETY: `workspace_id` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let ws = unsafe { arg_str(workspace_id, "workspace_id") }?;
        // SAFETY: `agent_type` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let t = unsafe { arg_str(agent_type, "agent_type") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let t: AgentType = serde_json::from_value(serde_json::Value::String(t.into()))
            .map_err(|_| invalid("/agentType", format!("unknown agent type {t:?}")))?;
        usage::check_agent_token(&claims, ws, t, now).map_err(err)
    })
}

/// The retention plan (schemas/retention-plan.schema.json) of
/// `records_json` (`[{"id", "kind", "createdAt"}]`) under the contract's
/// dataRetention at `now`; `legal_hold` keeps everything.
///
/// # Safety
/// The strings are NULL or NUL-terminated; `plan_out` is NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_retention_plan(
    contract_json: *const c_char,
    records_json: *const c_char,
    now: *const c_char,
    legal_hold: bool,
    plan_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(plan_out, "plan_out")?;
        // SAFETY: `contract_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let c = unsafe { arg_str(contract_json, "contract_json") }?;
        // SAFETY: `records_json` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_json checks NULL.
        let records: Vec<RetentionRecord> = unsafe { arg_json(records_json, "records_json") }?;
        // SAFETY: `now` is NULL or a NUL-terminated string that stays valid for this call (this function's contract); arg_str checks NULL.
        let now = arg_time(unsafe { arg_str(now, "now") }?, "now")?;
        let contract = Contract::from_json(c).map_err(err)?;
        let plan = usage::retention_plan(&contract, &records, now, legal_hold).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(plan_out, to_json_string(&plan)?) }
    })
}

/// The contract's quotas for a ledger (its budget hardCap as a total
/// cost_usd quota; USD budgets only), a JSON array for
/// `smm_ledger_set_quota`.
///
/// # Safety
/// `contract_json` is NULL or NUL-terminated; `quotas_out` is NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smm_contract_quotas(
    contract_json: *const c_char,
    quotas_out: *mut *mut c_char,
) -> smm_status {
    boundary(|| {
        check_out(quotas_out, "quotas_out")?;
        // SAFETY: per this function's contract.
        let c = unsafe { arg_str(contract_json, "contract_json") }?;
        let contract = Contract::from_json(c).map_err(err)?;
        let q = usage::contract_quotas(&contract).map_err(err)?;
        // SAFETY: checked above.
        unsafe { write_out(quotas_out, to_json_string(&q)?) }
    })
}
