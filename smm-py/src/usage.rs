//! Cost controls: `UsageLedger` (SQLite or in memory), `Reservation`,
//! `PriceTable`, `price_usage`, `AgentRun`, `breach_plan`,
//! `check_agent_token`, `authorize_agent`, `retention_plan`.
//!
//! Units. Money in Python is dollars: taken as a float, int, str or
//! Decimal, and returned as a `decimal.Decimal` (exact to the
//! nano-dollar) everywhere: `quotas()`, `usage()`, `status()`, `commit()`,
//! `policy_figures()`, `Reservation.asked`, `PriceTable.cost`,
//! `price_usage()`'s `costUsd`, `AgentRun.total_cost_usd` and `.usage()`;
//! every other kind in whole units (int). They go back in as they came out
//! (`breach_plan(status=...)`, a policy input's `quotas`). Nano-dollars
//! stay the ledger's unit inside, and the unit of the `schemas/` documents
//! as JSON (`to_json()`, files, the C ABI).

use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString};
use serde_json::Value;
use smm_core::host;
use smm_core::usage::{self as core_usage, Amounts, COST_USD, MemoryLedger, Period, Quota, Usd};

use crate::audit::{contract_value, report_value};
use crate::contracts::contract_from;
use crate::convert::{Text, document, escape, now_arg, now_ts, to_json, to_py, typed};
use crate::errors::{raise, to_py_err, validation};

fn period_arg(py: Python<'_>, period: &str) -> PyResult<Period> {
    Period::parse(period).ok_or_else(|| {
        validation(
            py,
            "/period",
            format!("period must be 'day', 'month' or 'total' (got {period:?})"),
        )
    })
}

/// One amount in ledger units: dollars (float, int, str, Decimal) to
/// nano-dollars for `cost_usd`; a whole non-negative number otherwise.
fn amount_arg(py: Python<'_>, kind: &str, v: &Bound<'_, PyAny>, pointer: &str) -> PyResult<u64> {
    let bad = |what: String| validation(py, pointer, format!("{pointer}: {what}"));
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Err(bad("must be a number, not a bool".into()));
    }
    if kind == COST_USD {
        if let Ok(f) = v.cast::<PyFloat>() {
            return Usd::from_f64(f.value())
                .map(Usd::nanos)
                .ok_or_else(|| bad(format!("{} is not an amount of dollars", f.value())));
        }
        // int, str, Decimal: through the exact decimal text.
        let text: String = if v.is_instance_of::<PyString>() {
            v.extract()?
        } else if v.is_instance_of::<PyInt>() {
            v.str()?.extract()?
        } else if v.hasattr("as_tuple")? {
            // A Decimal in positional notation: str() writes 1E-9 for
            // Decimal("0.000000001"). Its exponent is bounded first, so a
            // hostile Decimal("1E+999999999") or Decimal("0E-999999999")
            // never becomes a billion-digit string.
            if !v.call_method0("is_finite")?.extract::<bool>()? {
                return Err(bad(format!("{} is not an amount of dollars", v.str()?)));
            }
            if v.call_method0("is_zero")?.extract::<bool>()? {
                "0".to_string()
            } else {
                let magnitude: i64 = v.call_method0("adjusted")?.extract()?;
                if !(-12..=19).contains(&magnitude) {
                    return Err(bad(format!(
                        "{} is not an amount of dollars (at most 9 decimals, below 2**64 nano-dollars)",
                        v.str()?
                    )));
                }
                py.import("builtins")?
                    .getattr("format")?
                    .call1((v, "f"))?
                    .extract()?
            }
        } else {
            return Err(bad("dollars must be a float, int, str or Decimal".into()));
        };
        return text
            .parse::<Usd>()
            .map(Usd::nanos)
            .map_err(|e| bad(e.to_string()));
    }
    if v.is_instance_of::<PyInt>() {
        return v
            .extract::<u64>()
            .map_err(|_| bad(format!("{kind} must be a whole number from 0 to 2**64-1")));
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let x = f.value();
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x < u64::MAX as f64 {
            return Ok(x as u64);
        }
        return Err(bad(format!("{kind} must be a whole number (got {x})")));
    }
    Err(bad(format!("{kind} must be a number")))
}

/// Quota standings as Python dicts (the quota-status schema's shape, its
/// amounts in Python units).
fn status_out<'py>(
    py: Python<'py>,
    status: &[core_usage::QuotaStatus],
) -> PyResult<Bound<'py, PyAny>> {
    let out = PyList::empty(py);
    for s in status {
        let q = PyDict::new(py);
        q.set_item("workspaceId", &s.quota.workspace_id)?;
        q.set_item("kind", &s.quota.kind)?;
        q.set_item("period", s.quota.period.as_str())?;
        q.set_item("limit", amount_out(py, &s.quota.kind, s.quota.limit)?)?;
        let d = PyDict::new(py);
        d.set_item("quota", q)?;
        d.set_item("used", amount_out(py, &s.quota.kind, s.used)?)?;
        d.set_item("reserved", amount_out(py, &s.quota.kind, s.reserved)?)?;
        out.append(d)?;
    }
    Ok(out.into_any())
}

/// Quota standings given in Python units (as `UsageLedger.status()` gives
/// them: dollars for `cost_usd`), as the ledger's documents carry them.
fn status_arg(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let mut out = Vec::new();
    for (i, item) in obj.try_iter()?.enumerate() {
        let at = format!("/status/{i}");
        let item = item?;
        let d = item
            .cast::<PyDict>()
            .map_err(|_| validation(py, &at, format!("{at} must be a quota standing (a dict)")))?;
        fn field<'a>(d: &Bound<'a, PyDict>, name: &str, at: &str) -> PyResult<Bound<'a, PyAny>> {
            d.get_item(name)?.ok_or_else(|| {
                validation(
                    d.py(),
                    &format!("{at}/{name}"),
                    format!("{at}/{name} is missing"),
                )
            })
        }
        let qa = format!("{at}/quota");
        let quota = field(d, "quota", &at)?;
        let q = quota
            .cast::<PyDict>()
            .map_err(|_| validation(py, &qa, format!("{qa} must be a quota (a dict)")))?;
        let kind: String = field(q, "kind", &qa)?.extract().map_err(|_| {
            validation(
                py,
                &format!("{qa}/kind"),
                format!("{qa}/kind must be a string"),
            )
        })?;
        let money = |v: &Bound<'_, PyAny>, p: String| amount_arg(py, &kind, v, &p);
        let limit = money(&field(q, "limit", &qa)?, format!("{qa}/limit"))?;
        let used = money(&field(d, "used", &at)?, format!("{at}/used"))?;
        let reserved = money(&field(d, "reserved", &at)?, format!("{at}/reserved"))?;
        out.push(serde_json::json!({
            "quota": {
                "workspaceId": to_json(py, &field(q, "workspaceId", &qa)?, &format!("{qa}/workspaceId"))?,
                "kind": kind,
                "period": to_json(py, &field(q, "period", &qa)?, &format!("{qa}/period"))?,
                "limit": limit,
            },
            "used": used,
            "reserved": reserved,
        }));
    }
    Ok(Value::Array(out))
}

/// A usage mapping {kind: amount} in ledger units.
fn amounts_arg(py: Python<'_>, obj: &Bound<'_, PyAny>, pointer: &str) -> PyResult<Amounts> {
    let d = obj.cast::<PyDict>().map_err(|_| {
        validation(
            py,
            pointer,
            format!("{pointer} must be a dict of kind: amount"),
        )
    })?;
    let mut out = Amounts::new();
    for (k, v) in d.iter() {
        let kind: String = k
            .extract()
            .map_err(|_| validation(py, pointer, "usage kinds must be strings".into()))?;
        let p = format!("{pointer}/{}", escape(&kind));
        let n = amount_arg(py, &kind, &v, &p)?;
        out.insert(kind.into(), n);
    }
    Ok(out)
}

/// Dollars as `decimal.Decimal`, exact (from the ledger's nano-dollars).
pub(crate) fn decimal_usd<'py>(py: Python<'py>, usd: Usd) -> PyResult<Bound<'py, PyAny>> {
    py.import("decimal")?
        .getattr("Decimal")?
        .call1((usd.to_string(),))
}

/// Ledger units to Python units: dollars (`Decimal`, exact) for
/// `cost_usd`, int otherwise.
fn amount_out<'py>(py: Python<'py>, kind: &str, units: u64) -> PyResult<Bound<'py, PyAny>> {
    if kind == COST_USD {
        decimal_usd(py, Usd::from_nanos(units))
    } else {
        Ok(units.into_pyobject(py)?.into_any())
    }
}

fn amounts_out<'py>(py: Python<'py>, a: &Amounts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in a {
        d.set_item(k.as_str(), amount_out(py, k, *v)?)?;
    }
    Ok(d)
}

/// The books of model usage: quotas per workspace, reservations before
/// a model call, commits after it. `UsageLedger.open(path)` keeps them in a
/// SQLite file (WAL; every reservation one transaction; safe to share
/// between threads and processes); `UsageLedger.memory()` in this process.
/// Every method releases the GIL; time is always passed in.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct UsageLedger {
    books: host::Ledger,
    path: Option<PathBuf>,
    /// A PostgreSQL ledger's URL, without its password.
    url: Option<String>,
}

impl UsageLedger {
    /// The books, whichever kind.
    pub(crate) fn ledger(&self) -> &dyn core_usage::UsageLedger {
        self.books.as_dyn()
    }

    fn sqlite_with(
        py: Python<'_>,
        path: PathBuf,
        existing: bool,
        durability: smm_core::usage::Durability,
    ) -> PyResult<Self> {
        let books = py
            .detach(|| {
                if existing {
                    host::LedgerChoice::Sqlite(path.clone()).open_existing()
                } else {
                    smm_core::usage::SqliteLedger::open_with_durability(&path, durability)
                        .map(host::Ledger::Sqlite)
                        .map_err(smm_core::Error::from)
                }
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(UsageLedger {
            books,
            path: Some(path),
            url: None,
        })
    }
}

#[pymethods]
impl UsageLedger {
    /// The SQLite ledger at `path`, created (with its schema) when missing.
    /// `durability`: "normal" (the default: commits survive a crash of the
    /// process) or "full" (each commit on the disk before it returns, so it
    /// survives a power loss too; slower).
    #[staticmethod]
    #[pyo3(signature = (path, *, durability = "normal"))]
    fn open(py: Python<'_>, path: PathBuf, durability: &str) -> PyResult<Self> {
        let durability = durability
            .parse::<smm_core::usage::Durability>()
            .map_err(|e| to_py_err(py, smm_core::Error::from(e)))?;
        Self::sqlite_with(py, path, false, durability)
    }
    /// "normal" or "full": how this ledger's commits wait for the disk
    /// (None when it is not a SQLite ledger).
    #[getter]
    fn durability(&self, py: Python<'_>) -> PyResult<Option<&'static str>> {
        match &self.books {
            host::Ledger::Sqlite(l) => l
                .durability()
                .map(|d| Some(d.as_str()))
                .map_err(|e| to_py_err(py, smm_core::Error::from(e))),
            _ => Ok(None),
        }
    }
    /// The SQLite ledger at `path`, which must exist (LedgerStorageError
    /// otherwise).
    #[staticmethod]
    fn open_existing(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Self::sqlite_with(py, path, true, smm_core::usage::Durability::Normal)
    }
    /// A ledger in this process's memory.
    #[staticmethod]
    fn memory() -> Self {
        UsageLedger {
            books: host::Ledger::Memory(MemoryLedger::new()),
            path: None,
            url: None,
        }
    }
    /// The PostgreSQL ledger at `url` (`postgresql://user:password@host:port/db`),
    /// shared by every replica of a service; its tables are created or
    /// migrated on connect. A database from a newer library is
    /// LedgerVersionError; an unreachable server LedgerLockedError (retry).
    /// Errors and the repr name the URL without its password.
    #[staticmethod]
    fn connect(py: Python<'_>, url: &str) -> PyResult<Self> {
        if !smm_core::usage::is_postgres_url(url) {
            return Err(validation(
                py,
                "/url",
                "a PostgreSQL URL starts with postgresql://".into(),
            ));
        }
        let choice = host::LedgerChoice::Postgres(url.to_string());
        let books = py.detach(|| choice.open()).map_err(|e| to_py_err(py, e))?;
        Ok(UsageLedger {
            books,
            path: None,
            url: Some(choice.describe()),
        })
    }
    /// A PostgreSQL ledger's URL (without its password), or None.
    #[getter]
    fn url(&self) -> Option<String> {
        self.url.clone()
    }
    /// The SQLite file, or None in memory.
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.display().to_string())
    }
    /// Set (or replace) a quota: `kind` "tokens", "cost_usd" (limit in
    /// dollars) or a custom kind; `period` "day" (UTC), "month" (UTC
    /// calendar month) or "total".
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - kind: "tokens", "cost_usd" or a custom kind
    /// - limit: the limit (dollars for cost_usd)
    /// - period: "day", "month" or "total"
    #[pyo3(signature = (workspace_id, kind, limit, period = "day"))]
    fn set_quota(
        &self,
        py: Python<'_>,
        workspace_id: Text,
        kind: Text,
        limit: &Bound<'_, PyAny>,
        period: &str,
    ) -> PyResult<()> {
        let quota = Quota {
            limit: amount_arg(py, &kind, limit, "/limit")?,
            period: period_arg(py, period)?,
            workspace_id: workspace_id.0,
            kind: kind.0,
        };
        py.detach(|| self.books.as_dyn().set_quota(&quota))
            .map_err(|e| to_py_err(py, e))
    }
    /// The workspaces the books know (a quota, or any usage or hold), sorted.
    fn workspaces(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        py.detach(|| self.books.as_dyn().workspaces())
            .map_err(|e| to_py_err(py, e))
    }
    /// The workspace's quotas: [{"kind", "period", "limit"}] (limit in
    /// Python units).
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    fn quotas<'py>(&self, py: Python<'py>, workspace_id: Text) -> PyResult<Bound<'py, PyList>> {
        let qs = py
            .detach(|| self.books.as_dyn().quotas(&workspace_id))
            .map_err(|e| to_py_err(py, e))?;
        let out = PyList::empty(py);
        for q in qs {
            let d = PyDict::new(py);
            d.set_item("kind", &q.kind)?;
            d.set_item("period", q.period.as_str())?;
            d.set_item("limit", amount_out(py, &q.kind, q.limit)?)?;
            out.append(d)?;
        }
        Ok(out)
    }
    /// Reserve `usage` ({kind: amount}; cost_usd in dollars) for a job
    /// before its model calls. The answer's outcome is "allow", "warn" (80 %
    /// of a limit reached) or "block" (a limit would be passed: nothing is
    /// held). With `strict=True` a block raises QuotaExceededError. An
    /// uncommitted reservation expires after `ttl_seconds` (default
    /// DEFAULT_RESERVATION_TTL_SECONDS).
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - job_id: the job (one commit per job)
    /// - usage: the estimate, by kind
    /// - now: RFC 3339 string or aware datetime
    /// - ttl_seconds: seconds before an uncommitted reservation stops counting
    /// - strict: raise QuotaExceededError instead of returning a block
    #[pyo3(signature = (workspace_id, job_id, usage, now, *, ttl_seconds = 900, strict = false))]
    #[allow(clippy::too_many_arguments, reason = "mirrors the Python signature")]
    fn reserve(
        &self,
        py: Python<'_>,
        workspace_id: Text,
        job_id: Text,
        usage: &Bound<'_, PyAny>,
        now: &Bound<'_, PyAny>,
        ttl_seconds: u64,
        strict: bool,
    ) -> PyResult<Reservation> {
        let amounts = amounts_arg(py, usage, "/usage")?;
        let now = now_ts(py, now)?;
        let r = py
            .detach(|| {
                let r = self.books.as_dyn().reserve(
                    &workspace_id,
                    &job_id,
                    &amounts,
                    now,
                    ttl_seconds,
                )?;
                if strict { r.require_allowed() } else { Ok(r) }
            })
            .map_err(|e| to_py_err(py, e))?;
        Ok(Reservation { inner: r })
    }
    /// Record a job's actual usage ({kind: amount}; cost_usd in dollars).
    /// Idempotent by job: committing again answers the first commit with
    /// "alreadyCommitted": true. Returns the receipt (ledger units).
    ///
    /// Parameters:
    /// - reservation_id: the reservation's id
    /// - actual_usage: what the job used, by kind (tokens, cost_usd in dollars, custom)
    /// - now: RFC 3339 string or aware datetime
    fn commit<'py>(
        &self,
        py: Python<'py>,
        reservation_id: Text,
        actual_usage: &Bound<'py, PyAny>,
        now: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let amounts = amounts_arg(py, actual_usage, "/actualUsage")?;
        let now = now_ts(py, now)?;
        let receipt = py
            .detach(|| self.books.as_dyn().commit(&reservation_id, &amounts, now))
            .map_err(|e| to_py_err(py, e))?;
        let d = to_py(py, &receipt)?;
        d.set_item("amounts", amounts_out(py, &receipt.amounts)?)?;
        Ok(d)
    }
    /// Give a reservation back (the model call failed).
    ///
    /// Parameters:
    /// - reservation_id: the reservation's id
    fn release(&self, py: Python<'_>, reservation_id: Text) -> PyResult<()> {
        py.detach(|| self.books.as_dyn().release(&reservation_id))
            .map_err(|e| to_py_err(py, e))
    }
    /// Committed usage of `kind` in the `period` ("day", "month" or
    /// "total") containing `now`: dollars (`decimal.Decimal`, exact) for cost_usd, an int
    /// otherwise.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - kind: the kind
    /// - now: RFC 3339 string or aware datetime
    /// - period: "day", "month" or "total"
    #[pyo3(signature = (workspace_id, kind, now, period = "total"))]
    fn usage<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        kind: Text,
        now: &Bound<'py, PyAny>,
        period: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let period = period_arg(py, period)?;
        let now = now_ts(py, now)?;
        let n = py
            .detach(|| self.books.as_dyn().used(&workspace_id, &kind, period, now))
            .map_err(|e| to_py_err(py, e))?;
        amount_out(py, &kind, n)
    }
    /// Every quota's standing at `now` (schemas/quota-status.schema.json;
    /// ledger units): the `status` of `breach_plan`.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - now: RFC 3339 string or aware datetime
    fn status<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        now: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = now_ts(py, now)?;
        let st = py
            .detach(|| self.books.as_dyn().status(&workspace_id, now))
            .map_err(|e| to_py_err(py, e))?;
        status_out(py, &st)
    }
    /// The `quotas` figures of a policy input ({kind, period, used, limit};
    /// used counts active reservations) at `now`.
    ///
    /// Parameters:
    /// - workspace_id: the workspace
    /// - now: RFC 3339 string or aware datetime
    fn policy_figures<'py>(
        &self,
        py: Python<'py>,
        workspace_id: Text,
        now: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let now = now_ts(py, now)?;
        let st = py
            .detach(|| self.books.as_dyn().status(&workspace_id, now))
            .map_err(|e| to_py_err(py, e))?;
        let out = PyList::empty(py);
        for s in &st {
            let d = PyDict::new(py);
            d.set_item("kind", &s.quota.kind)?;
            d.set_item("period", s.quota.period.as_str())?;
            d.set_item(
                "used",
                amount_out(py, &s.quota.kind, s.used.saturating_add(s.reserved))?,
            )?;
            d.set_item("limit", amount_out(py, &s.quota.kind, s.quota.limit)?)?;
            out.append(d)?;
        }
        Ok(out.into_any())
    }
    /// Apply a retention plan's ledger part (a SQLite or PostgreSQL
    /// ledger): checks the plan against its hash, then deletes the
    /// workspace's entries older than its auditRetentionDays. A plan under
    /// legal hold deletes nothing. Returns the number of rows deleted.
    fn apply_retention(&self, py: Python<'_>, plan: &Bound<'_, PyAny>) -> PyResult<u64> {
        let plan: core_usage::RetentionPlan = typed(py, plan, "", "a retention plan")?;
        py.detach(|| self.books.apply_retention(&plan))
            .map_err(|e| to_py_err(py, e))
    }
    fn __repr__(&self) -> String {
        match (&self.path, &self.url) {
            (Some(p), _) => format!("UsageLedger.open({:?})", p.display().to_string()),
            (None, Some(u)) => format!("UsageLedger.connect({u:?})"),
            (None, None) => "UsageLedger.memory()".into(),
        }
    }
}

/// The answer to a reservation.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct Reservation {
    inner: core_usage::Reservation,
}

#[pymethods]
impl Reservation {
    /// The id to commit or release ("" when blocked: nothing is held).
    #[getter]
    fn id(&self) -> &str {
        &self.inner.id
    }
    /// "allow", "warn" or "block".
    #[getter]
    fn outcome(&self) -> &'static str {
        self.inner.outcome.as_str()
    }
    /// Not blocked.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.allowed()
    }
    /// Why it warns or blocks, one line per quota.
    #[getter]
    fn reasons(&self) -> Vec<String> {
        self.inner.reasons.clone()
    }
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.inner.workspace_id
    }
    #[getter]
    fn job_id(&self) -> &str {
        &self.inner.job_id
    }
    /// What was asked, in Python units (cost_usd in dollars).
    #[getter]
    fn amounts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        amounts_out(py, &self.inner.amounts)
    }
    #[getter]
    fn created_at(&self) -> &str {
        &self.inner.created_at
    }
    /// When an uncommitted reservation stops counting.
    #[getter]
    fn expires_at(&self) -> &str {
        &self.inner.expires_at
    }
    /// The JSON document (schemas/reservation.schema.json; ledger units).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __bool__(&self) -> bool {
        self.inner.allowed()
    }
    fn __repr__(&self) -> String {
        format!(
            "Reservation(id={:?}, outcome={:?}, reasons={:?})",
            self.inner.id,
            self.inner.outcome.as_str(),
            self.inner.reasons
        )
    }
}

/// A price table: per model, the provider and the dollars per million
/// input and output tokens (decimal strings; exact arithmetic).
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct PriceTable {
    inner: core_usage::PriceTable,
}

fn price_table(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<core_usage::PriceTable> {
    if let Ok(t) = obj.cast::<PriceTable>() {
        return Ok(t.get().inner.clone());
    }
    let v = document(py, obj, "")?;
    let text = serde_json::to_string(&v).map_err(|e| validation(py, "", e.to_string()))?;
    core_usage::PriceTable::from_json(&text).map_err(|e| to_py_err(py, e))
}

#[pymethods]
impl PriceTable {
    /// From a dict, JSON text or bytes (schemas/price-table.schema.json).
    #[new]
    fn new(py: Python<'_>, table: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(PriceTable {
            inner: price_table(py, table)?,
        })
    }
    /// From a JSON file.
    ///
    /// Parameters:
    /// - path: a price table file (JSON)
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let text = smm_core::limits::read_document_text(&path)
            .map_err(|e| validation(py, "", format!("cannot read {}: {e}", path.display())))?;
        let inner = core_usage::PriceTable::from_json(&text).map_err(|e| to_py_err(py, e))?;
        Ok(PriceTable { inner })
    }
    /// The models priced.
    #[getter]
    fn models(&self) -> Vec<String> {
        self.inner.models.keys().cloned().collect()
    }
    /// The cost of a call in dollars, as an exact decimal string.
    ///
    /// Parameters:
    /// - model_id: a model of the table
    /// - input_tokens: prompt tokens
    /// - output_tokens: completion tokens
    fn cost<'py>(
        &self,
        py: Python<'py>,
        model_id: &str,
        input_tokens: u64,
        output_tokens: u64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let c = self
            .inner
            .cost(model_id, input_tokens, output_tokens)
            .map_err(|e| to_py_err(py, e))?;
        decimal_usd(py, c)
    }
    /// The object as a dict (its JSON schema's shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!("PriceTable(models={:?})", self.models())
    }
}

/// A priced model-usage record (schemas/model-usage.schema.json, a dict)
/// for one model call: promptHash is "sha256:" of the RFC 8785 form of the
/// prompt `messages`; costUsd an exact decimal string. `prices` is a
/// PriceTable, a dict or JSON text.
///
/// Parameters:
/// - prices: the PriceTable
/// - model_id: the model called
/// - messages: the prompt messages (hashed canonically)
/// - input_tokens: prompt tokens
/// - output_tokens: completion tokens
/// - timestamp: when the call happened (RFC 3339 or aware datetime)
#[pyfunction]
#[pyo3(signature = (prices, model_id, messages, input_tokens, output_tokens, timestamp))]
pub(crate) fn price_usage<'py>(
    py: Python<'py>,
    prices: &Bound<'py, PyAny>,
    model_id: &str,
    messages: &Bound<'py, PyAny>,
    input_tokens: u64,
    output_tokens: u64,
    timestamp: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let table = price_table(py, prices)?;
    let messages = to_json(py, messages, "/messages")?;
    let timestamp = now_ts(py, timestamp)?;
    let u = core_usage::price_usage(
        &table,
        model_id,
        &messages,
        input_tokens,
        output_tokens,
        timestamp,
    )
    .map_err(|e| to_py_err(py, e))?;
    let d = to_py(py, &u)?;
    d.set_item("costUsd", decimal_usd(py, u.cost_usd)?)?;
    Ok(d)
}

/// `sha256:` of the RFC 8785 form of prompt messages.
#[pyfunction]
pub(crate) fn prompt_hash(py: Python<'_>, messages: &Bound<'_, PyAny>) -> PyResult<String> {
    let messages = to_json(py, messages, "/messages")?;
    core_usage::prompt_hash(&messages).map_err(|e| to_py_err(py, e))
}

/// One agent run (schemas/agent-run.schema.json), checked: ids, hashes,
/// times, and token totals that add up.
#[pyclass(module = "smm_core", frozen)]
pub(crate) struct AgentRun {
    pub(crate) inner: core_usage::AgentRun,
}

fn agent_run(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    pointer: &str,
) -> PyResult<core_usage::AgentRun> {
    if let Ok(r) = obj.cast::<AgentRun>() {
        return Ok(r.get().inner.clone());
    }
    let run: core_usage::AgentRun = typed(py, obj, pointer, "an agent run")?;
    run.check().map_err(|e| {
        let mut e = e;
        if let core_usage::UsageError::InvalidInput { pointer: p, .. } = &mut e {
            *p = format!("{pointer}{p}");
        }
        to_py_err(py, e)
    })?;
    Ok(run)
}

/// A list of agent runs (AgentRun objects or dicts) as JSON.
pub(crate) fn agent_runs_value(py: Python<'_>, obj: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    let Some(obj) = obj else {
        return Ok(Value::Array(vec![]));
    };
    if obj.is_none() {
        return Ok(Value::Array(vec![]));
    }
    let list = obj
        .cast::<PyList>()
        .map_err(|_| validation(py, "/agentRuns", "agent_runs must be a list".into()))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let run = agent_run(py, &item, &format!("/agentRuns/{i}"))?;
        out.push(serde_json::to_value(run).map_err(|e| validation(py, "", e.to_string()))?);
    }
    Ok(Value::Array(out))
}

#[pymethods]
impl AgentRun {
    /// From a dict, JSON text or bytes.
    #[new]
    fn new(py: Python<'_>, run: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(AgentRun {
            inner: agent_run(py, run, "")?,
        })
    }
    #[getter]
    fn job_id(&self) -> &str {
        &self.inner.job_id
    }
    #[getter]
    fn workspace_id(&self) -> &str {
        &self.inner.workspace_id
    }
    #[getter]
    fn agent_type(&self) -> &'static str {
        self.inner.agent_type.as_str()
    }
    /// "pending", "running", "completed", "failed" or "cancelled".
    #[getter]
    fn status(&self) -> &'static str {
        self.inner.status.as_str()
    }
    /// Tokens of every model call.
    #[getter]
    fn total_tokens(&self) -> u64 {
        self.inner.total_tokens()
    }
    /// Dollars of every model call (`decimal.Decimal`, exact).
    #[getter]
    fn total_cost_usd<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let c = self
            .inner
            .total_cost()
            .ok_or_else(|| validation(py, "/modelUsage", "the costs overflow".into()))?;
        decimal_usd(py, c)
    }
    /// The ledger amounts of this run ({"tokens", "cost_usd"}, Python
    /// units): what to commit.
    fn usage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let mut a = Amounts::new();
        a.insert(core_usage::TOKENS.into(), self.inner.total_tokens());
        let cost = self
            .inner
            .total_cost()
            .ok_or_else(|| validation(py, "/modelUsage", "the costs overflow".into()))?;
        a.insert(COST_USD.into(), cost.nanos());
        amounts_out(py, &a)
    }
    /// The object as a dict (its JSON schema's shape).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }
    fn __repr__(&self) -> String {
        format!(
            "AgentRun(job_id={:?}, agent_type={:?}, total_tokens={})",
            self.inner.job_id,
            self.inner.agent_type.as_str(),
            self.inner.total_tokens()
        )
    }
}

/// The budget-breach playbook: from the contract, the ledger's `status`
/// of its workspace (`UsageLedger.status`) and the latest evidence, the
/// plan the host executes (schemas/breach-plan.schema.json, a dict):
/// nothing when no quota is breached; otherwise halt the workspace's
/// agents (the contract to write back, emergencyFlags.halted with a
/// reason) and an audit bundle of the breach, unless the contract's
/// emergencyFlags.budgetOverride (break glass) is set, which the bundle's
/// trail records.
///
/// Parameters:
/// - contract: the v2 contract
/// - status: the ledger's status list
/// - now: RFC 3339 string or aware datetime
/// - actor: who executes the plan (in the trail)
/// - simulation: the latest SimulationReport
/// - policy_decision: the latest Decision
/// - decision_card: the latest card
/// - agent_runs: the runs to seal (optional)
/// - previous_bundle_ref: the previous bundle id (optional)
#[pyfunction]
#[pyo3(signature = (contract, status, *, now, actor, simulation, policy_decision,
                    decision_card, agent_runs = None, previous_bundle_ref = None))]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the Python keyword signature"
)]
pub(crate) fn breach_plan<'py>(
    py: Python<'py>,
    contract: &Bound<'py, PyAny>,
    status: &Bound<'py, PyAny>,
    now: &Bound<'py, PyAny>,
    actor: &str,
    simulation: &Bound<'py, PyAny>,
    policy_decision: &Bound<'py, PyAny>,
    decision_card: &Bound<'py, PyAny>,
    agent_runs: Option<&Bound<'py, PyAny>>,
    previous_bundle_ref: Option<String>,
) -> PyResult<Bound<'py, PyAny>> {
    let request = serde_json::json!({
        "contract": contract_value(py, contract)?,
        "status": status_arg(py, status)?,
        "now": now_arg(py, now)?,
        "actor": actor,
        "simulation": report_value(py, simulation)?,
        "policyDecision": crate::policy::decision_value(py, policy_decision)?,
        "decisionCard": to_json(py, decision_card, "/decisionCard")?,
        "agentRuns": agent_runs_value(py, agent_runs)?,
        "previousBundleRef": previous_bundle_ref,
    });
    let plan = py
        .detach(|| core_usage::breach_plan_request(&request))
        .map_err(|e| to_py_err(py, e))?;
    to_py(py, &plan)
}

fn agent_type_arg(py: Python<'_>, agent_type: &str) -> PyResult<core_usage::AgentType> {
    serde_json::from_value(Value::String(agent_type.to_string())).map_err(|_| {
        validation(
            py,
            "/agentType",
            format!(
                "agent_type must be research, planner, creative, automation, legal or publisher \
                 (got {agent_type:?})"
            ),
        )
    })
}

/// Check an agent token's claims ({"policies", "issuedAt", "expiresAt",
/// "renewable"}, from the host's introspection): the scope policy
/// `agent-<type>-<workspace>` is present, the token is live at `now`, lives
/// at most two hours and is not renewable. Raises AgentTokenError saying
/// which check failed.
///
/// Parameters:
/// - claims: the token's claims (dict)
/// - workspace_id: the workspace it acts on
/// - agent_type: the agent's type
/// - now: RFC 3339 string or aware datetime
#[pyfunction]
pub(crate) fn check_agent_token(
    py: Python<'_>,
    claims: &Bound<'_, PyAny>,
    workspace_id: &str,
    agent_type: &str,
    now: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let claims: core_usage::AgentTokenClaims = typed(py, claims, "", "agent token claims")?;
    let t = agent_type_arg(py, agent_type)?;
    let now = now_ts(py, now)?;
    core_usage::check_agent_token(&claims, workspace_id, t, now).map_err(|e| to_py_err(py, e))
}

/// Introspect `token` with the host's `introspect` (a callable taking the
/// token and returning its claims dict; an exception it raises becomes
/// IntrospectionError), then check the claims as `check_agent_token`.
/// Returns the claims.
///
/// Parameters:
/// - introspect: the host's introspection callable: token -> claims dict
/// - token: the agent's token
/// - workspace_id: the workspace it acts on
/// - agent_type: the agent's type
/// - now: RFC 3339 string or aware datetime
#[pyfunction]
pub(crate) fn authorize_agent<'py>(
    py: Python<'py>,
    introspect: &Bound<'py, PyAny>,
    token: &str,
    workspace_id: &str,
    agent_type: &str,
    now: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let t = agent_type_arg(py, agent_type)?;
    let now = now_ts(py, now)?;
    let answer = introspect.call1((token,)).map_err(|cause| {
        let e = to_py_err(
            py,
            core_usage::UsageError::Introspection {
                message: cause.to_string(),
            },
        );
        e.set_cause(py, Some(cause));
        e
    })?;
    let claims: core_usage::AgentTokenClaims = typed(py, &answer, "", "agent token claims")
        .map_err(|cause| {
            let e = raise(
                py,
                crate::errors::Class::IntrospectionError,
                format!("the introspector answered no claims: {cause}"),
                None,
                Some(smm_core::error::ErrorKind::Introspection),
            );
            e.set_cause(py, Some(cause));
            e
        })?;
    core_usage::check_agent_token(&claims, workspace_id, t, now).map_err(|e| to_py_err(py, e))?;
    to_py(py, &claims)
}

/// The retention plan (schemas/retention-plan.schema.json, a dict) of
/// `records` ([{"id", "kind", "createdAt"}]) under the contract's
/// dataRetention at `now`: audit evidence is deleted auditRetentionDays
/// after its creation, workspace data anonymised when the contract's TTL
/// ends; a legal hold keeps everything. `planHash` makes the purge
/// auditable.
///
/// Parameters:
/// - contract: the v2 contract
/// - records: the records with their times
/// - now: RFC 3339 string or aware datetime
/// - legal_hold: a legal hold blocks every purge
#[pyfunction]
#[pyo3(signature = (contract, records, now, *, legal_hold = false))]
pub(crate) fn retention_plan<'py>(
    py: Python<'py>,
    contract: &Bound<'py, PyAny>,
    records: &Bound<'py, PyAny>,
    now: &Bound<'py, PyAny>,
    legal_hold: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let contract = contract_from(py, contract)?;
    let records: Vec<core_usage::RetentionRecord> =
        typed(py, records, "/records", "a list of retention records")?;
    let now = now_ts(py, now)?;
    let plan = py
        .detach(|| core_usage::retention_plan(&contract, &records, now, legal_hold))
        .map_err(|e| to_py_err(py, e))?;
    to_py(py, &plan)
}

/// The contract's quotas for a ledger: its budget hardCap as a total
/// cost_usd quota ({"workspaceId", "kind", "period", "limit"}; ledger
/// units). USD budgets only.
#[pyfunction]
pub(crate) fn contract_quotas<'py>(
    py: Python<'py>,
    contract: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let contract = contract_from(py, contract)?;
    let q = core_usage::contract_quotas(&contract).map_err(|e| to_py_err(py, e))?;
    to_py(py, &q)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<UsageLedger>()?;
    m.add_class::<Reservation>()?;
    m.add_class::<PriceTable>()?;
    m.add_class::<AgentRun>()?;
    m.add_function(wrap_pyfunction!(price_usage, m)?)?;
    m.add_function(wrap_pyfunction!(prompt_hash, m)?)?;
    m.add_function(wrap_pyfunction!(breach_plan, m)?)?;
    m.add_function(wrap_pyfunction!(check_agent_token, m)?)?;
    m.add_function(wrap_pyfunction!(authorize_agent, m)?)?;
    m.add_function(wrap_pyfunction!(retention_plan, m)?)?;
    m.add_function(wrap_pyfunction!(contract_quotas, m)?)?;
    m.add("COST_UNITS_PER_USD", core_usage::COST_UNITS_PER_USD)?;
    m.add("WARN_PERCENT", core_usage::WARN_PERCENT)?;
    m.add(
        "DEFAULT_RESERVATION_TTL_SECONDS",
        core_usage::DEFAULT_RESERVATION_TTL_SECONDS,
    )?;
    m.add(
        "MAX_AGENT_TOKEN_SECONDS",
        core_usage::MAX_AGENT_TOKEN_SECONDS,
    )?;
    Ok(())
}
