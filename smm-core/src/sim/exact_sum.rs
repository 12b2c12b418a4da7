//! An exact accumulator for sums of `f64` values.
//!
//! Floating-point addition is not associative, so summing the same numbers
//! in another grouping (other threads, other shards) can change the last bits
//! of a mean. This accumulator keeps the sum as a fixed-point integer wide
//! enough for every finite `f64` (2098 bits in 32-bit digits), so the sum is
//! exact and the result is the same whatever the order or grouping of the
//! additions. Conversion back to `f64` is a function of the exact value alone.

use serde::{Deserialize, Serialize};

/// Digits of 32 bits; value = sum(digit[k] * 2^(32k - 1074)).
const DIGITS: usize = 68;
/// Renormalize before any digit could overflow an i64.
const RENORMALIZE_AFTER: u32 = 1 << 29;

/// Exact sum of finite `f64` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawExactSum")]
pub(crate) struct ExactSum {
    digits: Vec<i64>,
    pending: u32,
}

/// An exact sum as decoded, before its checks.
#[derive(Deserialize)]
struct RawExactSum {
    digits: Vec<i64>,
    pending: u32,
}

/// Largest digit magnitude a decoded sum may hold: with it, normalizing
/// and merging cannot overflow.
const MAX_DIGIT: i64 = 1 << 62;

impl TryFrom<RawExactSum> for ExactSum {
    type Error = String;
    fn try_from(r: RawExactSum) -> Result<Self, String> {
        if r.digits.len() != DIGITS {
            return Err(format!(
                "an exact sum has {DIGITS} digits, not {}",
                r.digits.len()
            ));
        }
        if r.pending > RENORMALIZE_AFTER
            || r.digits.iter().any(|d| d.unsigned_abs() > MAX_DIGIT as u64)
        {
            return Err("an exact sum's digits are out of range".into());
        }
        Ok(ExactSum {
            digits: r.digits,
            pending: r.pending,
        })
    }
}

impl Default for ExactSum {
    fn default() -> Self {
        ExactSum {
            digits: vec![0; DIGITS],
            pending: 0,
        }
    }
}

impl ExactSum {
    /// Add a finite value (non-finite values are ignored; the engine never
    /// produces them).
    pub(crate) fn add(&mut self, x: f64) {
        if x == 0.0 || !x.is_finite() {
            return;
        }
        let bits = x.to_bits();
        let negative = bits >> 63 != 0;
        let exp = ((bits >> 52) & 0x7ff) as u32;
        let frac = bits & ((1u64 << 52) - 1);
        // value = m * 2^(pos - 1074)
        let (m, pos) = if exp == 0 {
            (frac, 0)
        } else {
            (frac | (1u64 << 52), exp - 1)
        };
        let idx = (pos / 32) as usize;
        let wide = u128::from(m) << (pos % 32);
        let parts = [
            (wide & 0xffff_ffff) as i64,
            ((wide >> 32) & 0xffff_ffff) as i64,
            (wide >> 64) as i64,
        ];
        for (k, p) in parts.iter().enumerate() {
            if let Some(d) = self.digits.get_mut(idx + k) {
                if negative {
                    *d -= p;
                } else {
                    *d += p;
                }
            }
        }
        self.pending += 1;
        if self.pending >= RENORMALIZE_AFTER {
            self.normalize();
        }
    }

    /// Add another exact sum.
    pub(crate) fn merge(&mut self, other: &ExactSum) {
        let mut o = other.clone();
        o.normalize();
        self.normalize();
        for (a, b) in self.digits.iter_mut().zip(&o.digits) {
            *a += b;
        }
        self.normalize();
    }

    /// Canonical form: every digit but the last in [0, 2^32); the last signed.
    fn normalize(&mut self) {
        let mut carry = 0i64;
        let last = self.digits.len().saturating_sub(1);
        for (k, d) in self.digits.iter_mut().enumerate() {
            *d += carry;
            if k == last {
                break;
            }
            carry = *d >> 32;
            *d -= carry << 32;
        }
        self.pending = 0;
    }

    /// The sum rounded to an `f64` (a function of the exact value only).
    pub(crate) fn to_f64(&self) -> f64 {
        let mut s = self.clone();
        s.normalize();
        let negative = s.digits.last().copied().unwrap_or(0) < 0;
        if negative {
            for d in s.digits.iter_mut() {
                *d = -*d;
            }
            s.normalize();
        }
        let Some(top) = s.digits.iter().rposition(|d| *d != 0) else {
            return 0.0;
        };
        // Take the top three digits (96 bits, >= 65 significant) and a sticky
        // bit for everything below, then let the i128 -> f64 conversion round.
        let low = top.saturating_sub(2);
        let mut acc: i128 = 0;
        for k in (low..=top).rev() {
            acc = (acc << 32) | i128::from(s.digits.get(k).copied().unwrap_or(0));
        }
        if s.digits
            .get(..low)
            .is_some_and(|r| r.iter().any(|d| *d != 0))
        {
            acc |= 1;
        }
        let v = libm::scalbn(acc as f64, 32 * low as i32 - 1074);
        if negative { -v } else { v }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_where_f64_is_not() {
        let mut s = ExactSum::default();
        s.add(1e16);
        s.add(1.0);
        s.add(-1e16);
        assert_eq!(s.to_f64(), 1.0);
        let mut t = ExactSum::default();
        for x in [0.1, 0.2, 0.3, -0.6] {
            t.add(x);
        }
        // 0.1 + 0.2 + 0.3 - 0.6 in exact binary arithmetic
        assert!(t.to_f64().abs() < 1e-16);
    }

    #[test]
    fn order_and_grouping_do_not_matter() {
        let xs: Vec<f64> = (0..1000)
            .map(|i| ((i * 7919) % 1013) as f64 * 1.37e-3 - 0.4)
            .collect();
        let mut a = ExactSum::default();
        xs.iter().for_each(|x| a.add(*x));
        let mut b = ExactSum::default();
        xs.iter().rev().for_each(|x| b.add(*x));
        let mut c1 = ExactSum::default();
        let mut c2 = ExactSum::default();
        xs[..333].iter().for_each(|x| c1.add(*x));
        xs[333..].iter().for_each(|x| c2.add(*x));
        c1.merge(&c2);
        assert_eq!(a.to_f64().to_bits(), b.to_f64().to_bits());
        assert_eq!(a.to_f64().to_bits(), c1.to_f64().to_bits());
    }

    #[test]
    fn extremes() {
        let mut s = ExactSum::default();
        s.add(f64::MAX);
        s.add(f64::MIN_POSITIVE / 4.0);
        s.add(-f64::MAX);
        assert_eq!(s.to_f64(), f64::MIN_POSITIVE / 4.0);
        let mut n = ExactSum::default();
        n.add(-2.5);
        assert_eq!(n.to_f64(), -2.5);
        let mut m = ExactSum::default();
        for _ in 0..10 {
            m.add(f64::MAX / 16.0);
        }
        assert_eq!(m.to_f64(), f64::MAX / 16.0 * 10.0);
    }
}
