//! `max` and `min` of two `f64`s with one answer on every build.
//!
//! `f64::max` and `f64::min` may return either of two zeros of opposite
//! signs (they compare equal), and which one is up to the compiler and the
//! target, so a report built on them could differ in the sign of a zero
//! from one build to another. These return the bound when the two compare
//! equal, and agree with `f64::max` / `f64::min` everywhere else, NaN
//! included (a NaN `x` gives the bound). Folded as `current =
//! at_most(x, current)`, they keep the first of equal values in the fold's
//! order. (They are cheaper too: no NaN fix-up around the comparison.)

/// `x.max(lo)`, returning `lo` when the two compare equal.
#[inline(always)]
pub(crate) fn at_least(x: f64, lo: f64) -> f64 {
    if x > lo { x } else { lo }
}

/// `x.min(hi)`, returning `hi` when the two compare equal.
#[inline(always)]
pub(crate) fn at_most(x: f64, hi: f64) -> f64 {
    if x < hi { x } else { hi }
}
