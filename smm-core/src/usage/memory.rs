//! The ledger in memory.
//!
//! Layout, for speed (a reserve-and-commit pair hashes the job id once,
//! and growing the job index never touches the ids themselves):
//! kinds are interned to small numbers, workspaces to indexes; each
//! workspace keeps, per kind and period, its sums (committed and reserved)
//! by period index in a sorted vector whose last entry is the current
//! period (found without searching); reservations live in a vector indexed
//! by their number (`res-N` is element N-1), so a commit, a release or a
//! repeated commit finds its reservation in O(1); expiries wait in a
//! min-heap that is compacted when most of it is stale. No integer key is
//! hashed, and no lookup is worse than logarithmic whatever the times and
//! ids a caller sends.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::UsageError;
use super::ledger::{
    Amounts, CommitReceipt, Kind, Outcome, Period, Quota, QuotaStatus, Reservation, UsageLedger,
    check_amounts, check_id, check_kind, check_ttl, judge, merge_limits,
};
use crate::time::Timestamp;

type KindId = u32;

/// Amounts by kind id, inline up to two kinds (no allocation in the
/// common case of tokens and dollars).
#[derive(Debug, Clone)]
enum KindAmounts {
    Inline {
        len: u8,
        kinds: [KindId; 2],
        values: [u64; 2],
    },
    Heap(Box<[(KindId, u64)]>),
}

impl KindAmounts {
    fn new(items: impl ExactSizeIterator<Item = (KindId, u64)>) -> KindAmounts {
        if items.len() <= 2 {
            let (mut kinds, mut values, mut len) = ([0; 2], [0; 2], 0u8);
            for ((k, v), (kind, value)) in kinds.iter_mut().zip(values.iter_mut()).zip(items) {
                *k = kind;
                *v = value;
                len += 1;
            }
            KindAmounts::Inline { len, kinds, values }
        } else {
            KindAmounts::Heap(items.collect())
        }
    }

    fn iter(&self) -> impl Iterator<Item = (KindId, u64)> + '_ {
        let (inline, heap) = match self {
            KindAmounts::Inline { len, kinds, values } => (
                Some(
                    kinds
                        .iter()
                        .copied()
                        .zip(values.iter().copied())
                        .take(usize::from(*len)),
                ),
                None,
            ),
            KindAmounts::Heap(v) => (None, Some(v.iter().copied())),
        };
        inline
            .into_iter()
            .flatten()
            .chain(heap.into_iter().flatten())
    }
}

/// The period indexes of one instant (computed once per call).
#[derive(Debug, Clone, Copy)]
struct At {
    day: i64,
    month: i64,
}

impl At {
    fn of(t: Timestamp) -> At {
        At {
            day: Period::Day.index(t),
            month: Period::Month.index(t),
        }
    }

    fn index(self, p: Period) -> i64 {
        match p {
            Period::Day => self.day,
            Period::Month => self.month,
            Period::Total => 0,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    committed: u64,
    reserved: u64,
}

/// The sums of one kind over one period's successive indexes, sorted by
/// index (the last is usually the current one).
#[derive(Debug, Default)]
struct Series(Vec<(i64, Sums)>);

impl Series {
    fn get(&self, index: i64) -> Sums {
        match self.0.last() {
            Some((i, s)) if *i == index => *s,
            _ => self
                .0
                .binary_search_by_key(&index, |(i, _)| *i)
                .ok()
                .and_then(|at| self.0.get(at))
                .map(|(_, s)| *s)
                .unwrap_or_default(),
        }
    }

    /// The sums at `index`, made when missing (`None` never happens).
    fn get_mut(&mut self, index: i64) -> Option<&mut Sums> {
        let at = match self.0.last() {
            Some((i, _)) if *i == index => self.0.len() - 1,
            _ => match self.0.binary_search_by_key(&index, |(i, _)| *i) {
                Ok(at) => at,
                Err(at) => {
                    self.0.insert(at, (index, Sums::default()));
                    at
                }
            },
        };
        self.0.get_mut(at).map(|(_, s)| s)
    }
}

/// One kind's series for each period.
#[derive(Debug, Default)]
struct KindSums {
    kind: KindId,
    day: Series,
    month: Series,
    total: Series,
}

/// The sums of `kind` in the `period` containing `at`.
fn sums_of(all: &[KindSums], kind: KindId, period: Period, at: At) -> Sums {
    all.binary_search_by_key(&kind, |k| k.kind)
        .ok()
        .and_then(|i| all.get(i))
        .map(|k| {
            match period {
                Period::Day => &k.day,
                Period::Month => &k.month,
                Period::Total => &k.total,
            }
            .get(at.index(period))
        })
        .unwrap_or_default()
}

/// Apply `f` to the sums of `kind` of each period containing `at` (made
/// when missing). A kind's total is never below its day or month sums, so
/// an overflow check on the total covers all three.
fn update(all: &mut Vec<KindSums>, kind: KindId, at: At, f: impl Fn(&mut Sums)) {
    let i = match all.binary_search_by_key(&kind, |k| k.kind) {
        Ok(i) => i,
        Err(i) => {
            all.insert(
                i,
                KindSums {
                    kind,
                    ..KindSums::default()
                },
            );
            i
        }
    };
    if let Some(k) = all.get_mut(i) {
        for (series, index) in [
            (&mut k.day, at.day),
            (&mut k.month, at.month),
            (&mut k.total, 0),
        ] {
            if let Some(s) = series.get_mut(index) {
                f(s);
            }
        }
    }
}

/// The job id of `r`.
fn job_of<'a>(text: &'a str, r: &Res) -> &'a str {
    let (at, len) = r.job;
    text.get(at..at + usize::from(len)).unwrap_or("")
}

/// A hasher for keys that are already keyed hashes.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The reservations of one job-id hash: almost always one job.
#[derive(Debug)]
enum JobSlot {
    One(u64),
    Many(Vec<u64>),
}

/// Job ids to their latest reservation number, keyed by the id's SipHash
/// under this ledger's random keys (so callers cannot aim collisions); a
/// collision is told apart by comparing the ids kept in the reservations.
#[derive(Debug, Default)]
struct Jobs {
    keys: RandomState,
    by_hash: HashMap<u64, JobSlot, BuildHasherDefault<Prehashed>>,
}

impl Jobs {
    fn hash(&self, job_id: &str) -> u64 {
        self.keys.hash_one(job_id)
    }

    /// The latest reservation number of `job_id` (with its hash `h`).
    fn get(&self, h: u64, job_id: &str, reservations: &[Res], text: &str) -> Option<u64> {
        let is = |n: &u64| {
            usize::try_from(*n - 1)
                .ok()
                .and_then(|i| reservations.get(i))
                .is_some_and(|r| job_of(text, r) == job_id)
        };
        match self.by_hash.get(&h)? {
            JobSlot::One(n) => Some(*n).filter(is),
            JobSlot::Many(v) => v.iter().copied().find(is),
        }
    }

    /// Record `n` as the latest reservation of `job_id` (hash `h`), whose
    /// previous reservation is `previous`.
    fn set(&mut self, h: u64, previous: Option<u64>, n: u64) {
        match (self.by_hash.get_mut(&h), previous) {
            (None, _) => {
                self.by_hash.insert(h, JobSlot::One(n));
            }
            (Some(JobSlot::One(p)), Some(prev)) if *p == prev => *p = n,
            (Some(JobSlot::Many(v)), Some(prev)) => {
                if let Some(p) = v.iter_mut().find(|p| **p == prev) {
                    *p = n;
                } else {
                    v.push(n);
                }
            }
            (Some(JobSlot::Many(v)), None) => v.push(n),
            (Some(slot @ JobSlot::One(_)), _) => {
                if let JobSlot::One(other) = *slot {
                    *slot = JobSlot::Many(vec![other, n]);
                }
            }
        }
    }
}

#[derive(Debug)]
struct QuotaSlot {
    quota: Quota,
    kind: KindId,
}

/// One workspace's books.
#[derive(Debug, Default)]
struct Books {
    /// Sorted by (kind, period).
    quotas: Vec<QuotaSlot>,
    /// Sorted by kind id.
    sums: Vec<KindSums>,
    /// Job id to its latest reservation number.
    jobs: Jobs,
}

#[derive(Debug)]
enum ResState {
    /// Holding its amounts until `expires`.
    Held { expires: Timestamp },
    /// Expired: holds nothing, may still be committed (late).
    Lapsed,
    /// Committed (the receipt's parts; the reservation's amounts are now
    /// the committed ones).
    Committed {
        expired: bool,
        breached: Box<[String]>,
    },
    /// Given back.
    Released,
    /// Settled because its job's usage was committed under reservation
    /// `by` (a commit of it answers that one's receipt).
    Superseded { by: u64 },
}

#[derive(Debug)]
struct Res {
    workspace: usize,
    /// The job id's place in [`State::job_text`].
    job: (usize, u16),
    /// Held, then committed.
    amounts: KindAmounts,
    created: Timestamp,
    state: ResState,
}

#[derive(Debug, Default)]
struct State {
    workspace_ids: HashMap<String, usize>,
    books: Vec<Books>,
    kind_ids: BTreeMap<String, KindId>,
    kinds: Vec<String>,
    /// Reservation N is element N-1.
    reservations: Vec<Res>,
    /// Every reservation's job id, one after the other (one allocation
    /// for all of them).
    job_text: String,
    expiries: BinaryHeap<Reverse<(Timestamp, u64)>>,
    /// Reservations in the `Held` state.
    held: usize,
}

/// `res-N`, without the formatting machinery.
fn res_id(n: u64) -> String {
    let digits = crate::jcs::Decimal::new(n);
    let mut out = String::with_capacity(4 + digits.as_bytes().len());
    out.push_str("res-");
    out.push_str(digits.as_str());
    out
}

fn overflow(kind: &str, what: &str) -> UsageError {
    UsageError::Overflow {
        what: format!("{kind} {what}"),
    }
}

fn internal(what: &str) -> UsageError {
    UsageError::Storage {
        message: format!("internal: {what} out of range"),
        source: None,
    }
}

impl State {
    fn workspace(&mut self, id: &str) -> usize {
        if let Some(i) = self.workspace_ids.get(id) {
            return *i;
        }
        let i = self.books.len();
        self.books.push(Books::default());
        self.workspace_ids.insert(id.to_string(), i);
        i
    }

    fn kind(&mut self, kind: &str) -> KindId {
        if let Some(k) = self.kind_ids.get(kind) {
            return *k;
        }
        let k = KindId::try_from(self.kinds.len()).unwrap_or(KindId::MAX);
        self.kinds.push(kind.to_string());
        self.kind_ids.insert(kind.to_string(), k);
        k
    }

    fn amounts(&self, v: &KindAmounts) -> Amounts {
        v.iter()
            .map(|(k, n)| {
                let name = self.kinds.get(k as usize).map_or("", String::as_str);
                (Kind::from(name), n)
            })
            .collect()
    }

    /// Release what reservation `index` holds and give it `state`.
    fn settle(&mut self, index: usize, state: ResState) {
        let Some(r) = self.reservations.get_mut(index) else {
            return;
        };
        let was_held = matches!(r.state, ResState::Held { .. });
        r.state = state;
        if !was_held {
            return;
        }
        self.held = self.held.saturating_sub(1);
        if let Some(b) = self.books.get_mut(r.workspace) {
            let at = At::of(r.created);
            for (k, v) in r.amounts.iter() {
                update(&mut b.sums, k, at, |s| {
                    s.reserved = s.reserved.saturating_sub(v)
                });
            }
        }
        // The heap still holds the expiries of reservations settled since;
        // drop them once they are most of it (amortized O(1)).
        if self.expiries.len() > 64 && self.expiries.len() > 2 * self.held {
            let reservations = &self.reservations;
            self.expiries.retain(|Reverse((at, id))| {
                usize::try_from(*id - 1)
                    .ok()
                    .and_then(|i| reservations.get(i))
                    .is_some_and(
                        |r| matches!(r.state, ResState::Held { expires } if expires == *at),
                    )
            });
        }
    }

    /// Lapse the reservations expired at `now`.
    fn expire(&mut self, now: Timestamp) {
        while let Some(Reverse((at, id))) = self.expiries.peek().copied() {
            if at > now {
                break;
            }
            self.expiries.pop();
            let index = usize::try_from(id - 1).unwrap_or(usize::MAX);
            let held = matches!(
                self.reservations.get(index).map(|r| &r.state),
                Some(ResState::Held { expires }) if *expires == at
            );
            if held {
                self.settle(index, ResState::Lapsed);
            }
        }
    }

    /// The receipt of committed reservation `index`, answered again.
    fn receipt(&self, index: usize) -> Result<CommitReceipt, UsageError> {
        match self.reservations.get(index) {
            Some(
                r @ Res {
                    amounts,
                    state: ResState::Committed { expired, breached },
                    ..
                },
            ) => Ok(CommitReceipt {
                job_id: job_of(&self.job_text, r).to_string(),
                reservation_id: res_id(index as u64 + 1),
                amounts: self.amounts(amounts),
                already_committed: true,
                expired: *expired,
                breached: breached.to_vec(),
            }),
            _ => Err(internal("committed reservation")),
        }
    }

    /// The index of reservation `res-N`, if it exists.
    fn find(&self, reservation_id: &str) -> Result<usize, UsageError> {
        reservation_id
            .strip_prefix("res-")
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| (1..=self.reservations.len()).contains(n))
            .map(|n| n - 1)
            .ok_or_else(|| UsageError::UnknownReservation {
                reservation_id: reservation_id.chars().take(80).collect(),
            })
    }
}

/// A ledger in memory (for tests, single-process services, or as a cache).
/// It keeps every reservation it made (for idempotent commits) until it is
/// dropped.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>, UsageError> {
        self.state.lock().map_err(|_| UsageError::Storage {
            message: "ledger lock poisoned".into(),
            source: None,
        })
    }
}

impl UsageLedger for MemoryLedger {
    fn set_quota(&self, quota: &Quota) -> Result<(), UsageError> {
        check_id("/workspaceId", &quota.workspace_id)?;
        check_kind(&quota.kind)?;
        let mut st = self.lock()?;
        let ws = st.workspace(&quota.workspace_id);
        let kind = st.kind(&quota.kind);
        let b = st.books.get_mut(ws).ok_or_else(|| internal("workspace"))?;
        let key = |q: &Quota| (q.kind.clone(), q.period);
        match b
            .quotas
            .binary_search_by(|s| key(&s.quota).cmp(&key(quota)))
        {
            Ok(i) => {
                if let Some(s) = b.quotas.get_mut(i) {
                    s.quota = quota.clone();
                }
            }
            Err(i) => b.quotas.insert(
                i,
                QuotaSlot {
                    quota: quota.clone(),
                    kind,
                },
            ),
        }
        Ok(())
    }

    fn quotas(&self, workspace_id: &str) -> Result<Vec<Quota>, UsageError> {
        let st = self.lock()?;
        Ok(st
            .workspace_ids
            .get(workspace_id)
            .and_then(|i| st.books.get(*i))
            .map(|b| b.quotas.iter().map(|s| s.quota.clone()).collect())
            .unwrap_or_default())
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
        let at = At::of(t);
        let expires = t.plus_seconds(i64::try_from(ttl_seconds).unwrap_or(i64::MAX));
        let mut st = self.lock()?;
        st.expire(t);
        let ws = st.workspace(workspace_id);
        let kinds = KindAmounts::new(amounts.iter().map(|(k, v)| (st.kind(k), *v)));
        let n = st.reservations.len() as u64 + 1;
        let st = &mut *st;
        let books = st.books.get_mut(ws).ok_or_else(|| internal("workspace"))?;
        let h = books.jobs.hash(job_id);
        let previous = books.jobs.get(h, job_id, &st.reservations, &st.job_text);
        if let Some(previous) = previous {
            let index = usize::try_from(previous - 1).unwrap_or(usize::MAX);
            match st.reservations.get(index).map(|r| &r.state) {
                Some(ResState::Held { .. }) => {
                    return Err(UsageError::JobInProgress {
                        job_id: job_id.to_string(),
                        reservation_id: format!("res-{previous}"),
                    });
                }
                Some(ResState::Committed { .. }) => {
                    return Err(UsageError::JobCommitted {
                        job_id: job_id.to_string(),
                    });
                }
                _ => {}
            }
        }
        let quotas = merge_limits(
            workspace_id,
            books.quotas.iter().map(|s| s.quota.clone()).collect(),
            limits,
        )?;
        let sums = &mut books.sums;
        let kind_ids = &st.kind_ids;
        let standings = quotas.iter().map(|q| {
            let now = kind_ids
                .get(q.kind.as_str())
                .map(|k| sums_of(sums, *k, q.period, at))
                .unwrap_or_default();
            (q, now.committed.saturating_add(now.reserved))
        });
        let (outcome, reasons) = judge(standings, amounts)?;
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
        if outcome == Outcome::Block {
            return Ok(r);
        }
        // Check every sum first, then write: all or nothing.
        for ((name, _), (k, v)) in amounts.iter().zip(kinds.iter()) {
            sums_of(sums, k, Period::Total, at)
                .reserved
                .checked_add(v)
                .ok_or_else(|| overflow(name, "reserved"))?;
        }
        for (k, v) in kinds.iter() {
            update(sums, k, at, |s| s.reserved = s.reserved.saturating_add(v));
        }
        r.id = res_id(n);
        books.jobs.set(h, previous, n);
        // Job ids are at most 256 bytes (checked above).
        let job = (
            st.job_text.len(),
            u16::try_from(job_id.len()).unwrap_or(u16::MAX),
        );
        st.job_text.push_str(job_id);
        st.reservations.push(Res {
            workspace: ws,
            job,
            amounts: kinds,
            created: t,
            state: ResState::Held { expires },
        });
        st.held += 1;
        st.expiries.push(Reverse((expires, n)));
        Ok(r)
    }

    fn commit(
        &self,
        reservation_id: &str,
        actual: &Amounts,
        now: Timestamp,
    ) -> Result<CommitReceipt, UsageError> {
        check_amounts(actual)?;
        let t = now;
        let at = At::of(t);
        let mut st = self.lock()?;
        let index = st.find(reservation_id)?;
        let n = index as u64 + 1;
        let res = st
            .reservations
            .get(index)
            .ok_or_else(|| internal("reservation"))?;
        let (workspace, expired) = match &res.state {
            ResState::Committed { .. } => return st.receipt(index),
            ResState::Superseded { by } => {
                return st.receipt(usize::try_from(*by - 1).unwrap_or(usize::MAX));
            }
            ResState::Held { expires } => (res.workspace, *expires <= t),
            ResState::Lapsed => (res.workspace, true),
            ResState::Released => {
                return Err(UsageError::UnknownReservation {
                    reservation_id: reservation_id.to_string(),
                });
            }
        };
        // One commit per job: another reservation of the job (a retry
        // after this one lapsed, or the lapsed one this retry replaced) may
        // be committed already, or may still hold.
        let books = st
            .books
            .get(workspace)
            .ok_or_else(|| internal("workspace"))?;
        let job_id = job_of(&st.job_text, res);
        let h = books.jobs.hash(job_id);
        let latest = books.jobs.get(h, job_id, &st.reservations, &st.job_text);
        let other = latest
            .filter(|l| *l != n)
            .and_then(|l| usize::try_from(l - 1).ok());
        match other.and_then(|o| st.reservations.get(o)).map(|r| &r.state) {
            Some(ResState::Committed { .. }) => {
                let by = latest.unwrap_or(n);
                st.settle(index, ResState::Superseded { by });
                return st.receipt(other.unwrap_or(index));
            }
            Some(ResState::Held { .. }) => {
                if let Some(o) = other {
                    st.settle(o, ResState::Superseded { by: n });
                }
            }
            _ => {}
        }
        let kinds = KindAmounts::new(actual.iter().map(|(k, v)| (st.kind(k), *v)));
        let books = st
            .books
            .get(workspace)
            .ok_or_else(|| internal("workspace"))?;
        for ((name, _), (k, v)) in actual.iter().zip(kinds.iter()) {
            sums_of(&books.sums, k, Period::Total, at)
                .committed
                .checked_add(v)
                .ok_or_else(|| overflow(name, "committed"))?;
        }
        // Release the hold (held amounts, created-time periods) before the
        // amounts become the committed ones.
        st.settle(index, ResState::Lapsed);
        let st = &mut *st;
        let books = st
            .books
            .get_mut(workspace)
            .ok_or_else(|| internal("workspace"))?;
        for (k, v) in kinds.iter() {
            update(&mut books.sums, k, at, |s| {
                s.committed = s.committed.saturating_add(v)
            });
        }
        let breached: Box<[String]> = books
            .quotas
            .iter()
            .filter(|s| sums_of(&books.sums, s.kind, s.quota.period, at).committed > s.quota.limit)
            .map(|s| format!("{}/{}", s.quota.kind, s.quota.period.as_str()))
            .collect();
        let res = st
            .reservations
            .get_mut(index)
            .ok_or_else(|| internal("reservation"))?;
        let receipt = CommitReceipt {
            job_id: job_of(&st.job_text, res).to_string(),
            reservation_id: reservation_id.to_string(),
            amounts: actual.clone(),
            already_committed: false,
            expired,
            breached: breached.to_vec(),
        };
        res.amounts = kinds;
        res.state = ResState::Committed { expired, breached };
        if let Some(b) = st.books.get_mut(workspace) {
            b.jobs.set(h, latest, n);
        }
        Ok(receipt)
    }

    fn release(&self, reservation_id: &str) -> Result<(), UsageError> {
        let mut st = self.lock()?;
        let index = st.find(reservation_id)?;
        match st.reservations.get(index).map(|r| &r.state) {
            Some(ResState::Held { .. } | ResState::Lapsed) => {
                st.settle(index, ResState::Released);
                Ok(())
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
        let st = self.lock()?;
        let (Some(ws), Some(k)) = (st.workspace_ids.get(workspace_id), st.kind_ids.get(kind))
        else {
            return Ok(0);
        };
        Ok(st
            .books
            .get(*ws)
            .map_or(0, |b| sums_of(&b.sums, *k, period, At::of(t)).committed))
    }

    fn workspaces(&self) -> Result<Vec<String>, UsageError> {
        let st = self.lock()?;
        let mut out: Vec<String> = st
            .workspace_ids
            .iter()
            .filter(|(_, i)| {
                st.books
                    .get(**i)
                    .is_some_and(|b| !b.quotas.is_empty() || !b.sums.is_empty())
            })
            .map(|(w, _)| w.clone())
            .collect();
        out.sort();
        Ok(out)
    }

    fn status_within(
        &self,
        workspace_id: &str,
        now: Timestamp,
        limits: &[Quota],
    ) -> Result<Vec<QuotaStatus>, UsageError> {
        let t = now;
        let at = At::of(t);
        // A read: no expiry (a reader's clock never gives back a hold).
        let st = self.lock()?;
        let books = st
            .workspace_ids
            .get(workspace_id)
            .and_then(|i| st.books.get(*i));
        let stored = books
            .map(|b| b.quotas.iter().map(|s| s.quota.clone()).collect())
            .unwrap_or_default();
        Ok(merge_limits(workspace_id, stored, limits)?
            .into_iter()
            .map(|quota| {
                let sums = match (books, st.kind_ids.get(quota.kind.as_str())) {
                    (Some(b), Some(k)) => sums_of(&b.sums, *k, quota.period, at),
                    _ => Sums::default(),
                };
                QuotaStatus {
                    quota,
                    used: sums.committed,
                    reserved: sums.reserved,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reservation of job `a` (text offset 0) or `b` (offset 1).
    fn res(job: &str) -> Res {
        Res {
            workspace: 0,
            job: (if job == "a" { 0 } else { 1 }, 1),
            amounts: KindAmounts::new(std::iter::empty()),
            created: Timestamp {
                seconds: 0,
                nanos: 0,
            },
            state: ResState::Lapsed,
        }
    }

    const TEXT: &str = "ab";

    /// Two job ids with the same hash stay apart.
    #[test]
    fn colliding_job_hashes_are_told_apart() {
        let reservations = vec![res("a"), res("b"), res("a")];
        let mut jobs = Jobs::default();
        let h = 42;
        assert_eq!(jobs.get(h, "a", &reservations, TEXT), None);
        jobs.set(h, None, 1);
        assert_eq!(jobs.get(h, "a", &reservations, TEXT), Some(1));
        assert_eq!(
            jobs.get(h, "b", &reservations, TEXT),
            None,
            "same hash, other job"
        );
        jobs.set(h, None, 2);
        assert_eq!(jobs.get(h, "b", &reservations, TEXT), Some(2));
        jobs.set(h, Some(1), 3);
        assert_eq!(jobs.get(h, "a", &reservations, TEXT), Some(3));
        assert_eq!(jobs.get(h, "b", &reservations, TEXT), Some(2));
        assert_eq!(jobs.get(7, "a", &reservations, TEXT), None);
    }

    #[test]
    fn reservation_ids() {
        for n in [1, 9, 10, 12_345, u64::MAX] {
            assert_eq!(res_id(n), format!("res-{n}"));
        }
    }

    #[test]
    fn kind_amounts_inline_and_on_the_heap() {
        let two = KindAmounts::new([(3, 30), (5, 50)].into_iter());
        assert!(matches!(two, KindAmounts::Inline { len: 2, .. }));
        assert_eq!(two.iter().collect::<Vec<_>>(), [(3, 30), (5, 50)]);
        let three = KindAmounts::new([(1, 1), (2, 2), (3, 3)].into_iter());
        assert!(matches!(three, KindAmounts::Heap(_)));
        assert_eq!(three.iter().count(), 3);
    }
}
