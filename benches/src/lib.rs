//! Shared inputs of the benchmarks.

use smm_core::contract::Contract;
use smm_core::policy::{Decision, DecisionCard, PolicyBundle, PolicyInput, decision_card};
use smm_core::sim::{PercentileMode, SimulationReport, SimulationRequest};

/// The example policy input (`examples/policy-input.icblabs.json`).
pub const POLICY_INPUT: &str = include_str!("../../examples/policy-input.icblabs.json");

/// The default bundle's decision on the example policy input with this
/// contract and simulation, and its decision card.
pub fn decided(contract: &Contract, report: &SimulationReport) -> Option<(Decision, DecisionCard)> {
    let mut input: serde_json::Value = serde_json::from_str(POLICY_INPUT).ok()?;
    let obj = input.as_object_mut()?;
    obj.insert("workspace".into(), contract.document().clone());
    obj.insert(
        "simulation".into(),
        serde_json::to_value(smm_core::audit::SimulationSummary::from(report)).ok()?,
    );
    let input = PolicyInput::from_value(&input).ok()?;
    let decision = PolicyBundle::default_bundle().ok()?.evaluate(&input).ok()?;
    let card = decision_card(report, &decision, contract).ok()?;
    Some((decision, card))
}

/// The seed-42 baseline input (2 channels, 5 nodes), early termination off.
pub fn baseline_request(iterations: u64, mode: PercentileMode) -> Option<SimulationRequest> {
    let text = include_str!("../../examples/icblabs-seed42.request.json");
    let mut req = SimulationRequest::from_json(text).ok()?;
    req.config.iterations = iterations;
    req.config.enable_early_termination = false;
    req.config.percentile_mode = mode;
    Some(req)
}

/// A deterministic JSON document of about `target` bytes: objects with
/// unsorted keys, nested arrays, strings with escapes and non-ASCII text,
/// integers and fractions.
pub fn synthetic_document(target: usize) -> String {
    let mut out = String::from("{\"records\":[");
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut i = 0u64;
    while out.len() < target {
        if i > 0 {
            out.push(',');
        }
        let r = next();
        out.push_str(&format!(
            "{{\"zeta\":{},\"id\":\"rec-{i:06}\",\"amount\":{}.{:02},\"ratio\":{:e},\
             \"tags\":[\"alpha\",\"b\\u00e9ta\",\"line\\nbreak\"],\"active\":{},\
             \"nested\":{{\"y\":[{},{},{}],\"x\":null,\"caf\u{e9}\":\"\u{1f600} ok\"}},\
             \"Description\":\"Record number {i} with some text to make it realistic\"}}",
            r % 100_000,
            r % 5000,
            (r >> 20) % 100,
            ((r >> 8) % 1_000_000) as f64 / 7.0,
            r % 2 == 0,
            r % 97,
            (r >> 7) % 1000,
            (r >> 11) as f64 / 3.0e12,
        ));
        i += 1;
    }
    out.push_str("],\"meta\":{\"version\":\"1.0.0\",\"count\":");
    out.push_str(&i.to_string());
    out.push_str("}}");
    out
}

/// A global allocator that counts live and peak heap bytes, for the memory
/// measurements (`bin/peak-memory.rs`, `tests/memory.rs`). Install it with
/// `#[global_allocator] static A: CountingAlloc = CountingAlloc;`.
pub mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    /// The counting allocator (forwards to the system allocator).
    #[derive(Debug)]
    pub struct CountingAlloc;

    fn grew(size: usize) {
        let now = LIVE.fetch_add(size, Ordering::Relaxed) + size;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }

    // SAFETY: forwards every call to the system allocator and only counts.
    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as the caller's.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as the caller's.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                grew(layout.size());
            }
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) };
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
    }

    /// Start a measurement: the peak becomes the current live size, which
    /// is returned.
    pub fn start() -> usize {
        let live = LIVE.load(Ordering::Relaxed);
        PEAK.store(live, Ordering::Relaxed);
        live
    }

    /// Peak bytes above `start`'s live size since `start`.
    pub fn peak_since(start: usize) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(start)
    }
}
