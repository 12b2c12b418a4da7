//! The usage ledger: quotas per workspace, reservations before a model
//! call, commits after it, and the check that answers allow, warn or
//! block. Time is always passed in.
//!
//! Units: `tokens` in tokens, `cost_usd` in nano-dollars (exact), any
//! custom kind in whole units of its own. A quota bounds one kind over a
//! period: the UTC day, the UTC calendar month, or all time (`total`).
//!
//! The check: for each quota of the workspace whose kind the reservation
//! asks for, the usage of the period (committed, plus active reservations
//! made in it) plus the request must not pass the limit (block); reaching
//! 80 % of it warns. A blocked reservation holds nothing. One job holds at
//! most one reservation and one commit; committing a job twice is a no-op
//! (idempotent by job id). An unreleased reservation expires at its
//! `expiresAt` and stops counting.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::UsageError;
use crate::time::Timestamp;

/// Usage by kind, in the kind's units.
pub type Amounts = BTreeMap<Kind, u64>;

/// A kind of usage: [`TOKENS`], [`COST_USD`] or a custom name
/// (`[a-z0-9_]{1,64}`, checked where it is used). A string in JSON; the
/// two standard kinds are kept without allocating, so copying amounts is
/// cheap.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Kind(std::borrow::Cow<'static, str>);

impl Kind {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Kind {
    fn from(s: &str) -> Kind {
        match s {
            TOKENS => Kind(std::borrow::Cow::Borrowed(TOKENS)),
            COST_USD => Kind(std::borrow::Cow::Borrowed(COST_USD)),
            other => Kind(std::borrow::Cow::Owned(other.to_string())),
        }
    }
}

impl From<String> for Kind {
    fn from(s: String) -> Kind {
        match s.as_str() {
            TOKENS | COST_USD => Kind::from(s.as_str()),
            _ => Kind(std::borrow::Cow::Owned(s)),
        }
    }
}

impl std::borrow::Borrow<str> for Kind {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Kind {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        String::deserialize(d).map(Kind::from)
    }
}

impl JsonSchema for Kind {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Kind".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[a-z0-9_]{1,64}$",
            "description": "tokens, cost_usd (nano-dollars) or a custom kind"
        })
    }
}

/// The kind of tokens.
pub const TOKENS: &str = "tokens";
/// The kind of cost in nano-dollars.
pub const COST_USD: &str = "cost_usd";
/// A reservation's life when none is given, in seconds.
pub const DEFAULT_RESERVATION_TTL_SECONDS: u64 = 15 * 60;
/// The share of a limit at which a reservation warns, in percent.
pub const WARN_PERCENT: u64 = 80;

/// The period a quota bounds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The UTC calendar day.
    Day,
    /// The UTC calendar month.
    Month,
    /// All time.
    Total,
}

impl Period {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Month => "month",
            Period::Total => "total",
        }
    }

    /// Parse the JSON spelling.
    pub fn parse(s: &str) -> Option<Period> {
        match s {
            "day" => Some(Period::Day),
            "month" => Some(Period::Month),
            "total" => Some(Period::Total),
            _ => None,
        }
    }

    /// The index of the period containing `t` (days since the epoch,
    /// months since year 0, or 0).
    pub fn index(self, t: Timestamp) -> i64 {
        match self {
            Period::Day => t.seconds.div_euclid(86_400),
            Period::Month => {
                let (y, m, _) = t.civil();
                y * 12 + (m - 1)
            }
            Period::Total => 0,
        }
    }
}

/// A limit on one kind of usage over a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// Workspace.
    pub workspace_id: String,
    /// `tokens`, `cost_usd` or a custom kind (`[a-z0-9_]`, 1 to 64).
    pub kind: String,
    /// The period.
    pub period: Period,
    /// The limit, in the kind's units.
    pub limit: u64,
}

/// What a check says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Within every limit.
    Allow,
    /// Within every limit, at 80 % of one or more.
    Warn,
    /// It would pass a limit: nothing is held.
    Block,
}

impl Outcome {
    /// The JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Block => "block",
        }
    }
}

/// The answer to a reservation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Reservation {
    /// Id (`res-` + a number); empty for a blocked request, which holds nothing.
    pub id: String,
    /// Workspace.
    pub workspace_id: String,
    /// Job.
    pub job_id: String,
    /// What is held.
    pub amounts: Amounts,
    /// allow, warn or block.
    pub outcome: Outcome,
    /// Why (one sentence per quota that warns or blocks).
    pub reasons: Vec<String>,
    /// When it was made.
    pub created_at: String,
    /// When it stops counting unless committed or released.
    pub expires_at: String,
}

impl Reservation {
    /// Not blocked.
    pub fn allowed(&self) -> bool {
        self.outcome != Outcome::Block
    }

    /// The reservation when it is allowed; a blocked one as
    /// [`UsageError::QuotaExceeded`] (for callers that treat a block as an
    /// error).
    pub fn require_allowed(self) -> Result<Reservation, UsageError> {
        if self.allowed() {
            Ok(self)
        } else {
            Err(UsageError::QuotaExceeded {
                workspace_id: self.workspace_id,
                job_id: self.job_id,
                reasons: self.reasons,
            })
        }
    }
}

/// The answer to a commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitReceipt {
    /// The job.
    pub job_id: String,
    /// The reservation committed.
    pub reservation_id: String,
    /// What was recorded.
    pub amounts: Amounts,
    /// The job was already committed: nothing changed (idempotent).
    pub already_committed: bool,
    /// The reservation had expired (the usage is recorded all the same).
    pub expired: bool,
    /// Quotas now past their limit (`kind/period`): a breach.
    pub breached: Vec<String>,
}

/// A kind's standing against a quota at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QuotaStatus {
    /// The quota.
    pub quota: Quota,
    /// Committed in the current period.
    pub used: u64,
    /// Held by active reservations made in the current period.
    pub reserved: u64,
}

impl QuotaStatus {
    /// Used passed the limit.
    pub fn breached(&self) -> bool {
        self.used > self.quota.limit
    }
}

/// Where the books are kept: in memory, in SQLite, or in the host's own
/// database. Synchronous, object-safe, and safe to share across threads;
/// no two reservations may together pass a limit, from any number of
/// threads (and, for a shared store, processes).
pub trait UsageLedger: Send + Sync {
    /// Set (or replace) a workspace's quota for a kind and period (a kind
    /// may have one quota per period: tokens a day and tokens a month).
    fn set_quota(&self, quota: &Quota) -> Result<(), UsageError>;
    /// A workspace's quotas, by kind and period.
    fn quotas(&self, workspace_id: &str) -> Result<Vec<Quota>, UsageError>;
    /// Reserve `amounts` for a job before its model calls, at `now`, for
    /// `ttl_seconds`, against the stored quotas.
    fn reserve(
        &self,
        workspace_id: &str,
        job_id: &str,
        amounts: &Amounts,
        now: Timestamp,
        ttl_seconds: u64,
    ) -> Result<Reservation, UsageError> {
        self.reserve_within(workspace_id, job_id, amounts, now, ttl_seconds, &[])
    }
    /// [`UsageLedger::reserve`], judged also against `limits` (a contract's
    /// quotas), which are not stored: a limit may add a quota or tighten a
    /// stored one of the same kind and period (the tighter of the two
    /// counts), never loosen one. The check and the hold are one atomic
    /// step, as in `reserve`.
    fn reserve_within(
        &self,
        workspace_id: &str,
        job_id: &str,
        amounts: &Amounts,
        now: Timestamp,
        ttl_seconds: u64,
        limits: &[Quota],
    ) -> Result<Reservation, UsageError>;
    /// Record a job's actual usage (idempotent by job id).
    fn commit(
        &self,
        reservation_id: &str,
        actual: &Amounts,
        now: Timestamp,
    ) -> Result<CommitReceipt, UsageError>;
    /// Give a reservation back (the model call failed). Releasing one
    /// that expired meanwhile is not an error; releasing twice, or after
    /// its commit, is.
    fn release(&self, reservation_id: &str) -> Result<(), UsageError>;
    /// Committed usage of a kind in the `period` containing `now`.
    fn used(
        &self,
        workspace_id: &str,
        kind: &str,
        period: Period,
        now: Timestamp,
    ) -> Result<u64, UsageError>;
    /// Every quota's standing at `now`. A read: it changes nothing (an
    /// expired hold is given back only by a later reservation or commit,
    /// never by a reader's clock).
    fn status(&self, workspace_id: &str, now: Timestamp) -> Result<Vec<QuotaStatus>, UsageError> {
        self.status_within(workspace_id, now, &[])
    }
    /// [`UsageLedger::status`] with `limits` merged in as
    /// [`UsageLedger::reserve_within`] merges them (not stored).
    fn status_within(
        &self,
        workspace_id: &str,
        now: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError>;
    /// The workspaces the books know (a quota, or any usage or hold),
    /// sorted. A ledger that cannot tell answers
    /// [`UsageError::InvalidInput`] (the caller names the workspace then).
    fn workspaces(&self) -> Result<Vec<String>, UsageError> {
        Err(UsageError::InvalidInput {
            pointer: "/workspaceId".into(),
            message: "this ledger does not list its workspaces: name one".into(),
        })
    }
}

/// The quotas a check judges: the stored ones (in their order), each
/// tightened by a limit of the same kind and period in `limits`, then the
/// limits that match no stored quota (in their order; the tightest of
/// duplicates). A limit of another workspace, or of a malformed kind, is
/// refused.
pub(crate) fn merge_limits(
    workspace_id: &str,
    stored: Vec<Quota>,
    limits: &[Quota],
) -> Result<Vec<Quota>, UsageError> {
    let mut out = stored;
    for (i, l) in limits.iter().enumerate() {
        if l.workspace_id != workspace_id {
            return Err(UsageError::InvalidInput {
                pointer: format!("/limits/{i}/workspaceId"),
                message: format!(
                    "a limit of workspace {:?} cannot bound workspace {workspace_id:?}",
                    l.workspace_id
                ),
            });
        }
        check_kind(&l.kind)?;
        match out
            .iter_mut()
            .find(|q| q.kind == l.kind && q.period == l.period)
        {
            Some(q) => q.limit = q.limit.min(l.limit),
            None => out.push(l.clone()),
        }
    }
    Ok(out)
}

#[cfg(feature = "sqlite")]
pub(crate) fn parse_now(now: &str) -> Result<Timestamp, UsageError> {
    Timestamp::parse(now).ok_or_else(|| UsageError::InvalidInput {
        pointer: "/now".into(),
        message: format!("{now:?} is not an RFC 3339 date-time"),
    })
}

pub(crate) fn check_kind(kind: &str) -> Result<(), UsageError> {
    if kind.is_empty()
        || kind.len() > 64
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(UsageError::InvalidInput {
            pointer: "/kind".into(),
            message: format!("{kind:?} is not a kind (tokens, cost_usd, or [a-z0-9_]{{1,64}})"),
        });
    }
    Ok(())
}

pub(crate) fn check_id(pointer: &str, id: &str) -> Result<(), UsageError> {
    if id.is_empty() || id.len() > 256 || id.chars().any(char::is_control) {
        return Err(UsageError::InvalidInput {
            pointer: pointer.into(),
            message: "must be 1 to 256 characters, no control characters".into(),
        });
    }
    Ok(())
}

/// An amount as the databases store it (a signed 64-bit integer).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn to_i64(v: u64, what: &str) -> Result<i64, UsageError> {
    i64::try_from(v).map_err(|_| UsageError::Overflow {
        what: what.to_string(),
    })
}

/// The number of a `res-N` reservation id (N > 0, no leading zero); any
/// other id is unknown.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn parse_reservation_id(id: &str) -> Result<i64, UsageError> {
    id.strip_prefix("res-")
        .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| UsageError::UnknownReservation {
            reservation_id: id.chars().take(80).collect(),
        })
}

pub(crate) fn check_amounts(amounts: &Amounts) -> Result<(), UsageError> {
    if amounts.is_empty() {
        return Err(UsageError::InvalidInput {
            pointer: "/usage".into(),
            message: "name at least one kind".into(),
        });
    }
    amounts.keys().try_for_each(|k| check_kind(k))
}

pub(crate) fn check_ttl(ttl_seconds: u64) -> Result<(), UsageError> {
    if !(1..=crate::limits::MAX_TIMEOUT_SECONDS).contains(&ttl_seconds) {
        return Err(UsageError::InvalidInput {
            pointer: "/ttlSeconds".into(),
            message: format!(
                "must be between 1 and {} (got {ttl_seconds})",
                crate::limits::MAX_TIMEOUT_SECONDS
            ),
        });
    }
    Ok(())
}

/// An amount in a kind's units for people: dollars for `cost_usd`
/// (`$0.0135`), the number otherwise.
pub fn format_amount(kind: &str, units: u64) -> String {
    if kind == COST_USD {
        format!("${}", super::Usd::from_nanos(units))
    } else {
        units.to_string()
    }
}

/// The check of one reservation against the standings of its quotas
/// (each quota with its usage so far: committed plus reserved).
pub(crate) fn judge<'q>(
    standings: impl IntoIterator<Item = (&'q Quota, u64)>,
    amounts: &Amounts,
) -> Result<(Outcome, Vec<String>), UsageError> {
    let mut outcome = Outcome::Allow;
    let mut reasons = Vec::new();
    for (q, current) in standings {
        let Some(want) = amounts.get(q.kind.as_str()) else {
            continue;
        };
        let after = current
            .checked_add(*want)
            .ok_or_else(|| UsageError::Overflow {
                what: format!("{} usage", q.kind),
            })?;
        let name = || format!("{} per {}", q.kind, q.period.as_str());
        let f = |n: u64| format_amount(&q.kind, n);
        if after > q.limit {
            outcome = Outcome::Block;
            reasons.push(format!(
                "{}: {} used or reserved + {} requested > limit {}",
                name(),
                f(current),
                f(*want),
                f(q.limit)
            ));
        } else if u128::from(after) * 100 >= u128::from(q.limit) * u128::from(WARN_PERCENT) {
            if outcome == Outcome::Allow {
                outcome = Outcome::Warn;
            }
            reasons.push(format!(
                "{}: {} of {} ({}% or more of the limit)",
                name(),
                f(after),
                f(q.limit),
                WARN_PERCENT
            ));
        }
    }
    Ok((outcome, reasons))
}

/// A ledger's quota standings as the policy input's `quotas` figures
/// (`used` includes active reservations).
pub fn policy_figures(status: &[QuotaStatus]) -> Vec<crate::policy::QuotaFigure> {
    status
        .iter()
        .map(|s| crate::policy::QuotaFigure {
            kind: s.quota.kind.clone(),
            period: s.quota.period.as_str().into(),
            limit: s.quota.limit as f64,
            used: s.used.saturating_add(s.reserved) as f64,
        })
        .collect()
}

/// The quota the contract's budget implies: `hardCap` as a total cost
/// quota (`cost_usd`, `total`). Costs are kept in US dollars, so a contract
/// budgeted in another currency is refused rather than compared blindly.
pub fn contract_quotas(contract: &crate::contract::Contract) -> Result<Vec<Quota>, UsageError> {
    let c = contract.contract();
    if c.budget.currency != "USD" {
        return Err(UsageError::InvalidInput {
            pointer: "/budget/currency".into(),
            message: format!(
                "the hardCap is in {}; model costs are kept in USD",
                c.budget.currency
            ),
        });
    }
    let limit =
        super::money::Usd::from_f64(c.budget.hard_cap).ok_or_else(|| UsageError::InvalidInput {
            pointer: "/budget/hardCap".into(),
            message: "is not an amount of dollars".into(),
        })?;
    Ok(vec![Quota {
        workspace_id: c.workspace_id.clone(),
        kind: COST_USD.into(),
        period: Period::Total,
        limit: limit.nanos(),
    }])
}
