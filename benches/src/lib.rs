//! Shared inputs of the benchmarks.

use smm_core::sim::{PercentileMode, SimulationRequest};

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
