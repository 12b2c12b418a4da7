//! The process's worker pools.

use std::sync::{Arc, Mutex};

/// Cores available to this process (1 when unknown).
pub(crate) fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Worker pools by thread count, for this process.
///
/// A private pool, not rayon's global one: after `fork` (Python's
/// multiprocessing default on Linux) the child has the pool's bookkeeping but
/// none of its threads, and would deadlock. Pools are keyed by process id and
/// rebuilt in a forked child; the parent's pools are leaked in the child, not
/// dropped, since their threads do not exist there.
type PoolCache = Vec<(u32, usize, Arc<rayon::ThreadPool>)>;
static POOLS: Mutex<PoolCache> = Mutex::new(Vec::new());

pub(crate) fn pool(threads: usize) -> Result<Arc<rayon::ThreadPool>, String> {
    let pid = std::process::id();
    let mut cache = POOLS
        .lock()
        .map_err(|_| "pool cache poisoned".to_string())?;
    if cache.iter().any(|(p, _, _)| *p != pid) {
        for entry in cache.drain(..) {
            std::mem::forget(entry);
        }
    }
    if let Some((_, _, p)) = cache.iter().find(|(_, t, _)| *t == threads) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("smm-sim-{i}"))
        .build()
        .map_err(|e| e.to_string())?;
    let p = Arc::new(p);
    cache.push((pid, threads, Arc::clone(&p)));
    Ok(p)
}
