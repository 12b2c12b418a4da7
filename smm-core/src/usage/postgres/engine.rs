//! The fast path of a batch of writes: the state its operations read is
//! loaded under the workspaces' locks in one call (`smm_batch_load`), the
//! operations run here, in order, with the ledger's own rules ([`judge`],
//! [`merge_limits`]), and what they did is written back in one more call
//! (`smm_batch_apply`) before the transaction commits: four round trips
//! and one commit for the whole batch, however many operations it holds.
//!
//! The operations of one batch are concurrent calls (a caller waits for
//! its answer before it sends another), so any order of them is a correct
//! answer; the batch runs the reservations first, the latest `now` first
//! (the load swept the holds expired at that `now`, as that reservation's
//! own write would have), then the commits and releases as they came.
//!
//! An operation off the common path (a commit or release of a run that is
//! not held: committed, lapsed, superseded, unknown) sends the whole
//! batch down the slow path, the server's functions one operation at a
//! time ([`Engine::run`] answers `None`).

use std::collections::{BTreeSet, HashMap};

use super::{Answer, Op, Standing, csv};
use crate::usage::UsageError;
use crate::usage::ledger::{Amounts, Kind, Period, Quota, judge, merge_limits};

/// A run as the load answers it: id, workspace, job, state, expiry,
/// day, month, kinds, amounts.
type LoadedRun = (
    i64,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    Vec<String>,
    Vec<i64>,
);

/// The state the load answers (see `smm_batch_load`), row by row.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    runs: Vec<LoadedRun>,
    live: Vec<(String, String, i64, String)>,
    quotas: Vec<(String, String, String, i64)>,
    totals: Vec<(String, String, String, i64, i64, i64)>,
}

/// Column `name` of the load's answer.
fn column<'a, T: postgres::types::FromSql<'a>>(
    row: &'a postgres::Row,
    name: &str,
) -> Result<Vec<T>, UsageError> {
    row.try_get::<_, Vec<T>>(name)
        .map_err(|e| corrupt(format!("the state of a batch does not read ({name}): {e}")))
}

/// The columns of one table of the load's answer, checked to be as long
/// as its first (a server's answer is checked like any input).
fn same_length(name: &str, lengths: &[usize]) -> Result<usize, UsageError> {
    let n = lengths.first().copied().unwrap_or(0);
    if lengths.iter().any(|l| *l != n) {
        return Err(corrupt(format!(
            "the {name} of a batch's state have columns of lengths {lengths:?}"
        )));
    }
    Ok(n)
}

/// Comma-separated items (kinds never hold a comma): none for "".
fn split_csv(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').filter(|_| !text.is_empty())
}

impl Loaded {
    /// The load's answer, read from its row.
    pub(super) fn from_row(row: &postgres::Row) -> Result<Loaded, UsageError> {
        let mut l = Loaded::default();
        let (r_id, r_ws, r_job, r_state) = (
            column::<i64>(row, "r_id")?,
            column::<String>(row, "r_ws")?,
            column::<String>(row, "r_job")?,
            column::<String>(row, "r_state")?,
        );
        let (r_expires, r_day, r_month) = (
            column::<i64>(row, "r_expires")?,
            column::<i64>(row, "r_day")?,
            column::<i64>(row, "r_month")?,
        );
        let (r_kinds, r_amounts) = (
            column::<String>(row, "r_kinds")?,
            column::<String>(row, "r_amounts")?,
        );
        same_length(
            "runs",
            &[
                r_id.len(),
                r_ws.len(),
                r_job.len(),
                r_state.len(),
                r_expires.len(),
                r_day.len(),
                r_month.len(),
                r_kinds.len(),
                r_amounts.len(),
            ],
        )?;
        let mut ws = r_ws.into_iter();
        let mut job = r_job.into_iter();
        let mut state = r_state.into_iter();
        let mut kinds = r_kinds.iter();
        let mut amounts = r_amounts.iter();
        for (((id, expires), day), month) in r_id.into_iter().zip(r_expires).zip(r_day).zip(r_month)
        {
            let (Some(w), Some(j), Some(st), Some(k), Some(a)) = (
                ws.next(),
                job.next(),
                state.next(),
                kinds.next(),
                amounts.next(),
            ) else {
                return Err(corrupt("the runs of a batch's state are short".into()));
            };
            let amounts = split_csv(a)
                .map(|v| {
                    v.parse::<i64>()
                        .map_err(|_| corrupt(format!("run {id} holds an amount {v:?}")))
                })
                .collect::<Result<Vec<i64>, UsageError>>()?;
            let kinds = split_csv(k).map(str::to_string).collect();
            l.runs
                .push((id, w, j, st, expires, day, month, kinds, amounts));
        }
        let (l_ws, l_job, l_id, l_state) = (
            column::<String>(row, "l_ws")?,
            column::<String>(row, "l_job")?,
            column::<i64>(row, "l_id")?,
            column::<String>(row, "l_state")?,
        );
        same_length(
            "live runs",
            &[l_ws.len(), l_job.len(), l_id.len(), l_state.len()],
        )?;
        l.live = l_ws
            .into_iter()
            .zip(l_job)
            .zip(l_id)
            .zip(l_state)
            .map(|(((w, j), i), s)| (w, j, i, s))
            .collect();
        let (q_ws, q_kind, q_period, q_limit) = (
            column::<String>(row, "q_ws")?,
            column::<String>(row, "q_kind")?,
            column::<String>(row, "q_period")?,
            column::<i64>(row, "q_limit")?,
        );
        same_length(
            "quotas",
            &[q_ws.len(), q_kind.len(), q_period.len(), q_limit.len()],
        )?;
        l.quotas = q_ws
            .into_iter()
            .zip(q_kind)
            .zip(q_period)
            .zip(q_limit)
            .map(|(((w, k), p), v)| (w, k, p, v))
            .collect();
        let (t_ws, t_kind, t_period) = (
            column::<String>(row, "t_ws")?,
            column::<String>(row, "t_kind")?,
            column::<String>(row, "t_period")?,
        );
        let (t_index, t_committed, t_reserved) = (
            column::<i64>(row, "t_index")?,
            column::<i64>(row, "t_committed")?,
            column::<i64>(row, "t_reserved")?,
        );
        same_length(
            "totals",
            &[
                t_ws.len(),
                t_kind.len(),
                t_period.len(),
                t_index.len(),
                t_committed.len(),
                t_reserved.len(),
            ],
        )?;
        l.totals = t_ws
            .into_iter()
            .zip(t_kind)
            .zip(t_period)
            .zip(t_index)
            .zip(t_committed)
            .zip(t_reserved)
            .map(|(((((w, k), p), i), c), r)| (w, k, p, i, c, r))
            .collect();
        Ok(l)
    }
}

/// What the load needs to know of a batch.
#[derive(Debug, Default)]
pub(super) struct Wants {
    /// Workspaces and jobs of the reservations.
    pub(super) ws: Vec<String>,
    pub(super) jobs: Vec<String>,
    /// Runs of the commits and releases.
    pub(super) ids: Vec<i64>,
    /// Kinds the operations name.
    pub(super) kinds: Vec<String>,
    /// Days and months of their `now`s.
    pub(super) days: Vec<i64>,
    pub(super) months: Vec<i64>,
    /// The latest `now` of a reservation (the sweep's), if any.
    pub(super) sweep_now: Option<i64>,
}

/// What the apply writes (see `smm_batch_apply`), column by column.
#[derive(Debug, Default)]
pub(super) struct Writes {
    pub(super) r_id: Vec<i64>,
    pub(super) r_state: Vec<&'static str>,
    pub(super) r_expired: Vec<bool>,
    pub(super) r_breached: Vec<String>,
    pub(super) n_ws: Vec<String>,
    pub(super) n_job: Vec<String>,
    pub(super) n_created: Vec<i64>,
    pub(super) n_expires: Vec<i64>,
    pub(super) n_day: Vec<i64>,
    pub(super) n_month: Vec<i64>,
    pub(super) n_kinds: Vec<String>,
    pub(super) n_amounts: Vec<String>,
    pub(super) t_ws: Vec<String>,
    pub(super) t_kind: Vec<String>,
    pub(super) t_period: Vec<&'static str>,
    pub(super) t_index: Vec<i64>,
    pub(super) t_committed: Vec<i64>,
    pub(super) t_reserved: Vec<i64>,
    pub(super) u_ws: Vec<String>,
    pub(super) u_job: Vec<String>,
    pub(super) u_run: Vec<i64>,
    pub(super) u_kind: Vec<String>,
    pub(super) u_amount: Vec<i64>,
    pub(super) u_at: Vec<i64>,
    pub(super) u_day: Vec<i64>,
    pub(super) u_month: Vec<i64>,
    pub(super) u_expired: Vec<bool>,
}

/// The order the batch runs its operations in: reservations first, the
/// latest `now` first, then the others as they came.
pub(super) fn order(ops: &[Op]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..ops.len()).collect();
    idx.sort_by_key(|&i| {
        ops.get(i)
            .map_or((true, 0), |o| (o.op != "reserve", -o.now))
    });
    idx
}

/// What the load must read for `ops`.
pub(super) fn wants(ops: &[Op]) -> Wants {
    let mut w = Wants::default();
    let mut kinds = BTreeSet::new();
    let mut days = BTreeSet::new();
    let mut months = BTreeSet::new();
    for o in ops {
        // (A commit or release also touches its run's day and month: the
        // load adds them.)
        if o.op == "reserve" {
            w.ws.push(o.ws.clone());
            w.jobs.push(o.job.clone());
            w.sweep_now = Some(w.sweep_now.map_or(o.now, |n| n.max(o.now)));
            kinds.extend(o.limits.iter().map(|q| q.kind.as_str()));
        } else {
            w.ids.push(o.id);
        }
        kinds.extend(o.amounts.iter().map(|(k, _)| k.as_str()));
        if o.op != "release" {
            days.insert(o.day);
            months.insert(o.month);
        }
    }
    w.kinds = kinds.into_iter().map(str::to_string).collect();
    w.days = days.into_iter().collect();
    w.months = months.into_iter().collect();
    w
}

/// A run the batch knows: loaded, or made by one of its reservations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunRef {
    Loaded(i64),
    New(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Live {
    Active(RunRef),
    Committed,
}

#[derive(Debug, Clone)]
struct Run {
    ws: String,
    job: String,
    active: bool,
    expires_at: i64,
    day: i64,
    month: i64,
    held: Vec<(String, i64)>,
}

/// An answer waiting for the ids of the runs the batch makes.
#[derive(Debug)]
pub(super) enum Pending {
    Done(Result<Answer, UsageError>),
    Held {
        new: usize,
        standings: Vec<Standing>,
    },
    JobActive(usize),
}

impl Pending {
    /// The answer, given the ids the apply handed out.
    pub(super) fn resolve(self, ids: &[i64]) -> Result<Answer, UsageError> {
        let id = |n: usize| {
            ids.get(n)
                .copied()
                .ok_or_else(|| UsageError::LedgerCorrupt {
                    path: String::new(),
                    message: "the server handed out fewer ids than runs".into(),
                })
        };
        match self {
            Pending::Done(a) => a,
            Pending::Held { new, standings } => Ok(Answer::Held {
                id: id(new)?,
                standings,
            }),
            Pending::JobActive(new) => Ok(Answer::JobActive { id: id(new)? }),
        }
    }
}

type TotalKey = (String, String, Period, i64);

/// The batch's state, in memory.
#[derive(Debug, Default)]
pub(super) struct Engine {
    runs: HashMap<i64, Run>,
    live: HashMap<(String, String), Live>,
    quotas: HashMap<String, Vec<Quota>>,
    totals: HashMap<TotalKey, (i64, i64)>,
    touched: BTreeSet<TotalKey>,
    new_runs: usize,
    writes: Writes,
}

fn corrupt(message: String) -> UsageError {
    UsageError::LedgerCorrupt {
        path: String::new(),
        message,
    }
}

fn period(s: &str) -> Result<Period, UsageError> {
    Period::parse(s).ok_or_else(|| corrupt(format!("{s:?} is not a period")))
}

fn nonneg(v: i64, what: &str) -> Result<u64, UsageError> {
    u64::try_from(v).map_err(|_| corrupt(format!("{what} holds {v}")))
}

impl Engine {
    /// The state as loaded, checked.
    pub(super) fn new(l: Loaded) -> Result<Engine, UsageError> {
        let mut e = Engine::default();
        for (id, ws, job, state, expires_at, day, month, kinds, amounts) in l.runs {
            if kinds.len() != amounts.len() {
                return Err(corrupt(format!(
                    "run {id} has {} kinds and {} amounts",
                    kinds.len(),
                    amounts.len()
                )));
            }
            for a in &amounts {
                nonneg(*a, "a held amount")?;
            }
            e.runs.insert(
                id,
                Run {
                    ws,
                    job,
                    active: state == "active",
                    expires_at,
                    day,
                    month,
                    held: kinds.into_iter().zip(amounts).collect(),
                },
            );
        }
        for (ws, job, id, state) in l.live {
            let live = match state.as_str() {
                "active" => Live::Active(RunRef::Loaded(id)),
                "committed" => Live::Committed,
                other => return Err(corrupt(format!("a live run is {other:?}"))),
            };
            e.live.insert((ws, job), live);
        }
        for (ws, kind, p, limit) in l.quotas {
            let q = Quota {
                workspace_id: ws.clone(),
                kind,
                period: period(&p)?,
                limit: nonneg(limit, "a quota's limit")?,
            };
            e.quotas.entry(ws).or_default().push(q);
        }
        for (ws, kind, p, index, committed, reserved) in l.totals {
            nonneg(committed, "a committed total")?;
            nonneg(reserved, "a reserved total")?;
            e.totals
                .insert((ws, kind, period(&p)?, index), (committed, reserved));
        }
        Ok(e)
    }

    fn total(&self, ws: &str, kind: &str, p: Period, index: i64) -> (i64, i64) {
        self.totals
            .get(&(ws.to_string(), kind.to_string(), p, index))
            .copied()
            .unwrap_or((0, 0))
    }

    /// Add to a kind's totals of a day, a month and all time (never below
    /// zero; the callers checked the all-time total for room).
    fn add(
        &mut self,
        ws: &str,
        kind: &str,
        (day, month): (i64, i64),
        committed: i64,
        reserved: i64,
    ) {
        for (p, index) in [
            (Period::Day, day),
            (Period::Month, month),
            (Period::Total, 0),
        ] {
            let key = (ws.to_string(), kind.to_string(), p, index);
            let t = self.totals.entry(key.clone()).or_insert((0, 0));
            t.0 = t.0.saturating_add(committed).max(0);
            t.1 = t.1.saturating_add(reserved).max(0);
            self.touched.insert(key);
        }
    }

    /// Run the operations in `order`; `None` when one is off the common
    /// path (the whole batch takes the slow path).
    pub(super) fn run(mut self, ops: &[Op], order: &[usize]) -> Option<(Vec<Pending>, Writes)> {
        let mut answers: Vec<Option<Pending>> = ops.iter().map(|_| None).collect();
        for &i in order {
            let op = ops.get(i)?;
            let a = match op.op {
                "reserve" => self.reserve(op),
                "commit" => self.commit(op)?,
                "release" => self.release(op)?,
                _ => return None,
            };
            *answers.get_mut(i)? = Some(a);
        }
        for key in std::mem::take(&mut self.touched) {
            let (committed, reserved) = self.totals.get(&key).copied().unwrap_or((0, 0));
            let (ws, kind, p, index) = key;
            let w = &mut self.writes;
            w.t_ws.push(ws);
            w.t_kind.push(kind);
            w.t_period.push(p.as_str());
            w.t_index.push(index);
            w.t_committed.push(committed);
            w.t_reserved.push(reserved);
        }
        let answers = answers.into_iter().collect::<Option<Vec<Pending>>>()?;
        Some((answers, self.writes))
    }

    fn reserve(&mut self, op: &Op) -> Pending {
        let key = (op.ws.clone(), op.job.clone());
        match self.live.get(&key) {
            Some(Live::Committed) => return Pending::Done(Ok(Answer::JobCommitted)),
            Some(Live::Active(RunRef::Loaded(id))) => {
                return Pending::Done(Ok(Answer::JobActive { id: *id }));
            }
            Some(Live::Active(RunRef::New(n))) => return Pending::JobActive(*n),
            None => {}
        }
        let result = (|| -> Result<Pending, UsageError> {
            let amounts = &op.amounts;
            let stored = self.quotas.get(&op.ws).cloned().unwrap_or_default();
            let quotas = merge_limits(&op.ws, stored, &op.limits)?;
            let mut standings = Vec::with_capacity(quotas.len());
            let mut judged = Vec::with_capacity(quotas.len());
            for q in quotas {
                let (c, r) = self.total(&op.ws, &q.kind, q.period, q.period.index(op.at()));
                let current = nonneg(c, "a total")?.saturating_add(nonneg(r, "a total")?);
                standings.push((
                    q.kind.clone(),
                    q.period.as_str().to_string(),
                    i64::try_from(q.limit).unwrap_or(i64::MAX),
                    current,
                ));
                judged.push((q, current));
            }
            let map: Amounts = amounts
                .iter()
                .map(|(k, v)| (Kind::from(k.as_str()), v.unsigned_abs()))
                .collect();
            let (outcome, _) = judge(judged.iter().map(|(q, n)| (q, *n)), &map)?;
            if outcome == crate::usage::Outcome::Block {
                return Ok(Pending::Done(Ok(Answer::Blocked { standings })));
            }
            // The all-time totals bound every period's: they must have room.
            for (k, v) in amounts {
                let (_, held) = self.total(&op.ws, k, Period::Total, 0);
                if held.checked_add(*v).is_none() {
                    return Err(UsageError::Overflow {
                        what: format!("the {k} reserved"),
                    });
                }
            }
            for (k, v) in amounts {
                self.add(&op.ws, k, (op.day, op.month), 0, *v);
            }
            let new = self.new_runs;
            self.new_runs += 1;
            let w = &mut self.writes;
            w.n_ws.push(op.ws.clone());
            w.n_job.push(op.job.clone());
            w.n_created.push(op.now);
            w.n_expires.push(op.expires);
            w.n_day.push(op.day);
            w.n_month.push(op.month);
            w.n_kinds.push(csv(op.amounts.iter().map(|(k, _)| k)));
            w.n_amounts.push(csv(op.amounts.iter().map(|(_, v)| v)));
            self.live.insert(key, Live::Active(RunRef::New(new)));
            Ok(Pending::Held { new, standings })
        })();
        match result {
            Ok(p) => p,
            Err(e) => Pending::Done(Err(e)),
        }
    }

    /// The run of a commit or release, when it is held (else the slow path).
    fn held_run(&self, op: &Op) -> Option<Run> {
        self.runs.get(&op.id).filter(|r| r.active).cloned()
    }

    fn commit(&mut self, op: &Op) -> Option<Pending> {
        let run = self.held_run(op)?;
        let result = (|| -> Result<Answer, UsageError> {
            let actual = &op.amounts;
            for (k, v) in actual {
                let (done, _) = self.total(&run.ws, k, Period::Total, 0);
                if done.checked_add(*v).is_none() {
                    return Err(UsageError::Overflow {
                        what: format!("the {k} committed"),
                    });
                }
            }
            let expired = run.expires_at <= op.now;
            for (k, v) in &run.held {
                self.add(&run.ws, k, (run.day, run.month), 0, -v);
            }
            for (k, v) in actual {
                self.add(&run.ws, k, (op.day, op.month), *v, 0);
            }
            let mut breached = Vec::new();
            for q in self
                .quotas
                .get(&run.ws)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let (used, _) = self.total(&run.ws, &q.kind, q.period, q.period.index(op.at()));
                if u64::try_from(used).unwrap_or(0) > q.limit {
                    breached.push(format!("{}/{}", q.kind, q.period.as_str()));
                }
            }
            let breached = breached.join(";");
            let w = &mut self.writes;
            for (k, v) in actual {
                w.u_ws.push(run.ws.clone());
                w.u_job.push(run.job.clone());
                w.u_run.push(op.id);
                w.u_kind.push(k.clone());
                w.u_amount.push(*v);
                w.u_at.push(op.now);
                w.u_day.push(op.day);
                w.u_month.push(op.month);
                w.u_expired.push(expired);
            }
            w.r_id.push(op.id);
            w.r_state.push("committed");
            w.r_expired.push(expired);
            w.r_breached.push(breached.clone());
            if let Some(r) = self.runs.get_mut(&op.id) {
                r.active = false;
            }
            self.live
                .insert((run.ws.clone(), run.job.clone()), Live::Committed);
            Ok(Answer::Done {
                job: run.job.clone(),
                expired,
                breached,
            })
        })();
        Some(Pending::Done(result))
    }

    fn release(&mut self, op: &Op) -> Option<Pending> {
        let run = self.held_run(op)?;
        for (k, v) in &run.held {
            self.add(&run.ws, k, (run.day, run.month), 0, -v);
        }
        let w = &mut self.writes;
        w.r_id.push(op.id);
        w.r_state.push("released");
        w.r_expired.push(false);
        w.r_breached.push(String::new());
        if let Some(r) = self.runs.get_mut(&op.id) {
            r.active = false;
        }
        self.live.remove(&(run.ws, run.job));
        Some(Pending::Done(Ok(Answer::Released)))
    }
}
