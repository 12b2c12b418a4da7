//! The workflow DAG: validation (unknown dependency, duplicate id, cycle),
//! topological order, and the per-iteration simulation of durations,
//! failures, retries and makespan.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::bounds::at_least;
use super::normal::uniform;

use super::SimulationError;
use super::input::Workflow;

/// One node, compiled. Dependencies index into the topological order.
#[derive(Debug, Clone)]
struct Node {
    /// Position in the input's node list.
    input_index: usize,
    deps: Vec<usize>,
    duration: f64,
    failure_rate: f64,
    max_retries: u32,
    backoff: f64,
}

/// A validated workflow in topological order.
#[derive(Debug, Clone)]
pub(crate) struct CompiledWorkflow {
    nodes: Vec<Node>,
    /// Node ids in input order.
    pub ids: Vec<String>,
}

/// Counters per node, indexed by topological position while running.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct NodeCounters {
    /// Iterations in which the node failed after all its retries.
    pub failures: u64,
    /// Retries taken (attempts after the first).
    pub retries: u64,
    /// Iterations in which the node did not run because a dependency failed.
    pub skipped: u64,
}

impl NodeCounters {
    pub(crate) fn add(&mut self, o: &NodeCounters) {
        self.failures += o.failures;
        self.retries += o.retries;
        self.skipped += o.skipped;
    }
}

/// Per-iteration scratch space, reused across iterations of a block.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    finish: Vec<f64>,
    ok: Vec<bool>,
}

impl CompiledWorkflow {
    pub(crate) fn compile(
        wf: &Workflow,
        base: &str,
        max_retries_limit: u32,
    ) -> Result<Self, SimulationError> {
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, n) in wf.nodes.iter().enumerate() {
            let p = format!("{base}/nodes/{i}");
            if n.id.is_empty() {
                return Err(SimulationError::EmptyNodeId {
                    pointer: format!("{p}/id"),
                });
            }
            if index.insert(n.id.as_str(), i).is_some() {
                return Err(SimulationError::DuplicateNodeId {
                    pointer: format!("{p}/id"),
                    id: n.id.clone(),
                });
            }
            if !(n.estimated_duration.is_finite() && n.estimated_duration >= 0.0) {
                return Err(SimulationError::InvalidDuration {
                    pointer: format!("{p}/estimatedDuration"),
                    value: n.estimated_duration,
                });
            }
            if !(0.0..=1.0).contains(&n.failure_rate) {
                return Err(SimulationError::FailureRateOutOfRange {
                    pointer: format!("{p}/failureRate"),
                    value: n.failure_rate,
                });
            }
            if let Some(r) = &n.retry_policy {
                if r.max_retries > max_retries_limit {
                    return Err(SimulationError::TooManyRetries {
                        pointer: format!("{p}/retryPolicy/maxRetries"),
                        value: u64::from(r.max_retries),
                        max: max_retries_limit,
                    });
                }
                if !(r.backoff_ms.is_finite() && r.backoff_ms >= 0.0) {
                    return Err(SimulationError::InvalidDuration {
                        pointer: format!("{p}/retryPolicy/backoffMs"),
                        value: r.backoff_ms,
                    });
                }
            }
        }
        // Dependencies as input indices.
        let mut deps_in: Vec<Vec<usize>> = Vec::with_capacity(wf.nodes.len());
        for (i, n) in wf.nodes.iter().enumerate() {
            let mut d = Vec::with_capacity(n.dependencies.len());
            for (j, dep) in n.dependencies.iter().enumerate() {
                match index.get(dep.as_str()) {
                    Some(&k) => {
                        if !d.contains(&k) {
                            d.push(k);
                        }
                    }
                    None => {
                        return Err(SimulationError::UnknownDependency {
                            pointer: format!("{base}/nodes/{i}/dependencies/{j}"),
                            node: n.id.clone(),
                            dependency: dep.clone(),
                        });
                    }
                }
            }
            deps_in.push(d);
        }
        // Kahn's algorithm; among ready nodes the earliest in input order goes first.
        let count = wf.nodes.len();
        let mut indegree: Vec<usize> = deps_in.iter().map(Vec::len).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); count];
        for (i, d) in deps_in.iter().enumerate() {
            for &k in d {
                if let Some(v) = dependents.get_mut(k) {
                    v.push(i);
                }
            }
        }
        let mut ready: BinaryHeap<Reverse<usize>> = indegree
            .iter()
            .enumerate()
            .filter(|(_, d)| **d == 0)
            .map(|(i, _)| Reverse(i))
            .collect();
        let mut order = Vec::with_capacity(count);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in dependents.get(i).map(Vec::as_slice).unwrap_or(&[]) {
                if let Some(d) = indegree.get_mut(j) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push(Reverse(j));
                    }
                }
            }
        }
        if order.len() < count {
            let remaining: Vec<bool> = indegree.iter().map(|d| *d > 0).collect();
            let cycle = find_cycle(&deps_in, &remaining)
                .into_iter()
                .filter_map(|i| wf.nodes.get(i).map(|n| n.id.clone()))
                .collect();
            return Err(SimulationError::Cycle {
                pointer: format!("{base}/nodes"),
                cycle,
            });
        }
        let mut position = vec![0usize; count];
        for (pos, &i) in order.iter().enumerate() {
            if let Some(p) = position.get_mut(i) {
                *p = pos;
            }
        }
        let nodes = order
            .iter()
            .filter_map(|&i| {
                let n = wf.nodes.get(i)?;
                let deps = deps_in
                    .get(i)?
                    .iter()
                    .filter_map(|&k| position.get(k).copied())
                    .collect();
                Some(Node {
                    input_index: i,
                    deps,
                    duration: n.estimated_duration,
                    failure_rate: n.failure_rate,
                    max_retries: n.retry_policy.as_ref().map_or(0, |r| r.max_retries),
                    backoff: n.retry_policy.as_ref().map_or(0.0, |r| r.backoff_ms),
                })
            })
            .collect();
        Ok(CompiledWorkflow {
            nodes,
            ids: wf.nodes.iter().map(|n| n.id.clone()).collect(),
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Map counters kept in topological order back to input order.
    pub(crate) fn counters_in_input_order(&self, topo: &[NodeCounters]) -> Vec<NodeCounters> {
        let mut out = vec![NodeCounters::default(); self.nodes.len()];
        for (n, c) in self.nodes.iter().zip(topo) {
            if let Some(slot) = out.get_mut(n.input_index) {
                *slot = c.clone();
            }
        }
        out
    }

    /// Finish time of the last node when every node takes its estimated
    /// duration and nothing fails.
    pub(crate) fn nominal_makespan(&self) -> f64 {
        let mut finish = vec![0.0f64; self.nodes.len()];
        let mut makespan = 0.0f64;
        for (pos, n) in self.nodes.iter().enumerate() {
            let start = n
                .deps
                .iter()
                .filter_map(|&d| finish.get(d).copied())
                .fold(0.0, |a, f| at_least(f, a));
            let f = start + n.duration;
            if let Some(slot) = finish.get_mut(pos) {
                *slot = f;
            }
            makespan = at_least(f, makespan);
        }
        makespan
    }

    /// Simulate one iteration. Returns (success, makespan in ms).
    ///
    /// Nodes run in topological order. Each attempt takes
    /// `estimatedDuration x (0.8 + 0.4 U)` and fails with probability
    /// `failureRate`; a failed attempt with retries left waits `backoffMs` and
    /// tries again. A node whose dependency failed is skipped (it draws
    /// nothing). Makespan is the latest finish time of the nodes that ran.
    #[inline]
    pub(crate) fn run<R: rand::Rng + ?Sized>(
        &self,
        rng: &mut R,
        scratch: &mut Scratch,
        counters: &mut [NodeCounters],
    ) -> (bool, f64) {
        let count = self.nodes.len();
        // Sized once a block: every node writes its own slots below before
        // a later node reads them (dependencies come first in topological
        // order), so nothing is cleared between iterations (a `resize` an
        // iteration was a `memset` call an iteration).
        if scratch.finish.len() != count {
            scratch.finish = vec![0.0; count];
            scratch.ok = vec![true; count];
        }
        let mut success = true;
        let mut makespan = 0.0f64;
        for (pos, (n, c)) in self.nodes.iter().zip(counters.iter_mut()).enumerate() {
            let mut start = 0.0f64;
            let mut deps_ok = true;
            for &d in &n.deps {
                start = at_least(scratch.finish.get(d).copied().unwrap_or(0.0), start);
                deps_ok &= scratch.ok.get(d).copied().unwrap_or(false);
            }
            if !deps_ok {
                c.skipped += 1;
                if let Some(f) = scratch.finish.get_mut(pos) {
                    *f = 0.0;
                }
                if let Some(o) = scratch.ok.get_mut(pos) {
                    *o = false;
                }
                continue;
            }
            let mut t = start;
            let mut attempt = 0u32;
            let ok = loop {
                t += n.duration * (0.8 + 0.4 * uniform(rng));
                let failed = uniform(rng) < n.failure_rate;
                if !failed {
                    break true;
                }
                if attempt >= n.max_retries {
                    break false;
                }
                attempt += 1;
                t += n.backoff;
            };
            c.retries += u64::from(attempt);
            if !ok {
                c.failures += 1;
                success = false;
            }
            if let Some(f) = scratch.finish.get_mut(pos) {
                *f = t;
            }
            if let Some(o) = scratch.ok.get_mut(pos) {
                *o = ok;
            }
            makespan = at_least(t, makespan);
        }
        (success, makespan)
    }
}

/// Find one cycle among the nodes flagged `remaining` (each has an unfinished
/// dependency, so following dependencies must loop). Returns input indices,
/// the first repeated at the end.
fn find_cycle(deps: &[Vec<usize>], remaining: &[bool]) -> Vec<usize> {
    let Some(start) = remaining.iter().position(|r| *r) else {
        return Vec::new();
    };
    let mut seen_at: BTreeMap<usize, usize> = BTreeMap::new();
    let mut path = Vec::new();
    let mut cur = start;
    loop {
        if let Some(&at) = seen_at.get(&cur) {
            let mut cycle: Vec<usize> = path.get(at..).map(<[usize]>::to_vec).unwrap_or_default();
            cycle.push(cur);
            // Present in dependency order (a -> b means a waits for b) reversed,
            // so the cycle reads in execution order.
            cycle.reverse();
            return cycle;
        }
        seen_at.insert(cur, path.len());
        path.push(cur);
        let next = deps.get(cur).and_then(|d| {
            d.iter()
                .copied()
                .find(|&k| remaining.get(k).copied().unwrap_or(false))
        });
        match next {
            Some(n) => cur = n,
            None => return path,
        }
    }
}
