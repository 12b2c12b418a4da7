//! ECDSA P-256 signing (RFC 6979 nonces) whose one expensive step, the
//! fixed-base multiple `k·G`, reads a comb of precomputed affine points.
//!
//! Why not `p256`'s own `sign_prehash`: its `k·G` walks a radix-16 table of
//! projective points (66 full additions and 4 doublings, each lookup a
//! constant-time scan through `subtle` selects of whole points), about 70 µs of the 85 µs a
//! signature costs on this project's machines. The comb below has the
//! layout of OpenSSL's `ecp_nistz256`: 37 rows, one per 7-bit signed window
//! of the scalar, each holding the affine multiples `1..=64` of `2^(7·row)·G`.
//! A signature then takes 37 mixed additions and no doubling (about 41 µs
//! for `k·G`; BENCHMARKS.md has the figures).
//!
//! Everything else is `ecdsa::hazmat::sign_prehashed_rfc6979` step by step:
//! the nonce from the `rfc6979` crate (the generator `ecdsa` itself uses),
//! `r = x(k·G) mod n`, `s = k⁻¹·(z + r·d) mod n`, the same retry when `r` or
//! `s` is zero. So the signatures are byte for byte `p256`'s (tests compare
//! them over many keys and digests, including the ends of the scalar range).
//!
//! Constant time: the scalar's digits are recoded with arithmetic only (no
//! branch or index on a secret), every lookup reads all 64 entries of its
//! row and keeps one by masks, the selected point is rebuilt through
//! `from_coordinates` (a constant-time curve check) and negated by a
//! constant-time select, and the additions use `p256`'s complete formulas.

use std::sync::LazyLock;

use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::group::Group;
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::point::AffineCoordinates;
use p256::elliptic_curve::subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use p256::elliptic_curve::{BatchNormalize, Curve, PrimeField};
use p256::{AffinePoint, FieldBytes, NistP256, NonZeroScalar, ProjectivePoint, Scalar, U256};
use sha2::Sha256;

/// Bits per window.
pub(super) const WINDOW: usize = 7;
/// Windows in a 256-bit scalar: `ceil(256 / 7)`. The last one holds bits
/// 252..=255 only, so a scalar below the group order never carries past it.
pub(super) const ROWS: usize = 37;
/// Entries per row: signed digits run over `-64..=63`, so `|digit| <= 64`.
pub(super) const ENTRIES: usize = 64;
/// A point's affine `x || y` (big-endian bytes), as eight words to select.
type Entry = [u64; 8];
type Row = [Entry; ENTRIES];

/// The comb's points for the base point `base`, row after row: the
/// affine multiples `1..=64` of `2^(7·row)·base` (verification builds the
/// same comb for a trusted key, [`super::ecdsa_verify`]).
pub(super) fn comb_points(mut base: ProjectivePoint) -> Vec<AffinePoint> {
    let mut points = Vec::with_capacity(ROWS * ENTRIES);
    for _ in 0..ROWS {
        let mut multiple = base;
        for _ in 0..ENTRIES {
            points.push(multiple);
            multiple += base;
        }
        for _ in 0..WINDOW {
            base = base.double();
        }
    }
    <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(points.as_slice())
}

/// Built on first use (about 2.5 ms, 37 × 64 × 64 bytes = 148 KiB).
static COMB: LazyLock<Vec<Row>> = LazyLock::new(build);

fn build() -> Vec<Row> {
    comb_points(ProjectivePoint::GENERATOR)
        .chunks_exact(ENTRIES)
        .map(|points| {
            let mut row = [[0u64; 8]; ENTRIES];
            for (entry, point) in row.iter_mut().zip(points) {
                *entry = entry_of(point);
            }
            row
        })
        .collect()
}

fn entry_of(point: &AffinePoint) -> Entry {
    let (x, y) = (point.x(), point.y());
    let mut entry = [0u64; 8];
    for (word, bytes) in entry
        .iter_mut()
        .zip(x.chunks_exact(8).chain(y.chunks_exact(8)))
    {
        *word = u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]));
    }
    entry
}

/// The scalar as 37 signed 7-bit digits, least significant first:
/// `k = Σ digit[i]·2^(7i)`, each digit in `-64..=63`.
pub(super) fn digits(k: &Scalar) -> [i8; ROWS] {
    let bytes = k.to_repr();
    // Byte `i` counted from the least significant end; zero past the top.
    let byte = |i: usize| -> u32 {
        31usize
            .checked_sub(i)
            .and_then(|j| bytes.get(j))
            .map_or(0, |&b| u32::from(b))
    };
    let mut out = [0i8; ROWS];
    let mut carry = 0i32;
    for (row, digit) in out.iter_mut().enumerate() {
        let bit = row * WINDOW;
        let pair = byte(bit / 8) | (byte(bit / 8 + 1) << 8);
        let value = ((pair >> (bit % 8)) & 0x7f) as i32 + carry;
        // value in 0..=128: 64 and above becomes value - 128, carrying one.
        carry = (value + 64) >> 7;
        *digit = (value - (carry << 7)) as i8;
    }
    out
}

/// `|digit|·B` from a row of `1·B ..= 64·B`, then negated when the digit is:
/// every entry is read, one kept by a mask.
fn select(row: &Row, digit: i8) -> AffinePoint {
    let negative = digit >> 7; // -1 when negative, else 0
    let magnitude = u64::from(((digit ^ negative) - negative) as u8);
    let mut words = [0u64; 8];
    for (j, entry) in (1u64..).zip(row) {
        let diff = magnitude ^ j;
        // All ones when diff == 0, else zero; `black_box` keeps the compiler
        // from turning the mask back into a branch.
        let mask = std::hint::black_box(((diff | diff.wrapping_neg()) >> 63).wrapping_sub(1));
        for (word, value) in words.iter_mut().zip(entry) {
            *word |= value & mask;
        }
    }
    let (mut x, mut y) = (FieldBytes::default(), FieldBytes::default());
    for (bytes, word) in x.chunks_exact_mut(8).zip(&words[..4]) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    for (bytes, word) in y.chunks_exact_mut(8).zip(&words[4..]) {
        bytes.copy_from_slice(&word.to_le_bytes());
    }
    // A zero digit selects no entry: (0, 0) is not on the curve, so this
    // answers the identity, as the explicit select below says again.
    let point = AffinePoint::from_coordinates(&x, &y).unwrap_or(AffinePoint::IDENTITY);
    let mut point =
        AffinePoint::conditional_select(&point, &AffinePoint::IDENTITY, magnitude.ct_eq(&0));
    let negated = -point;
    point.conditional_assign(&negated, Choice::from((negative & 1) as u8));
    point
}

/// `k·G` in constant time.
pub(crate) fn mul_by_generator(k: &Scalar) -> ProjectivePoint {
    let mut acc = ProjectivePoint::IDENTITY;
    for (row, &digit) in COMB.iter().zip(digits(k).iter()) {
        acc += &select(row, digit);
    }
    acc
}

/// The RFC 6979 signature of a SHA-256 digest: `p256`'s `sign_prehash`,
/// byte for byte. `None` only if 16 nonces in a row gave `r` or `s` zero
/// (each has probability about 2^-256).
pub(crate) fn sign_prehash(key: &SigningKey, digest: &[u8; 32]) -> Option<Signature> {
    let d: &NonZeroScalar = key.as_nonzero_scalar();
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*digest));
    let order: U256 = *NistP256::ORDER.as_ref();
    let mut nonces = rfc6979::KGenerator::<Sha256, U256>::new(&d.to_repr(), digest, &[], &order);
    for _ in 0..16 {
        let mut k_bytes = FieldBytes::default();
        nonces.fill_next_k(&mut k_bytes);
        let Some(k) = NonZeroScalar::from_repr(k_bytes).into_option() else {
            continue;
        };
        let k_inv = *k.invert();
        let big_r = mul_by_generator(&k).to_affine();
        let r = <Scalar as Reduce<FieldBytes>>::reduce(&big_r.x());
        let s = k_inv * (z + r * d.as_ref());
        if let Ok(signature) = Signature::from_scalars(r, s) {
            return Some(signature);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashSigner;

    fn scalar_from(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(bytes))
    }

    /// A small deterministic byte stream, enough to spread scalars and
    /// digests over the range.
    fn stream(seed: u64) -> impl FnMut() -> [u8; 32] {
        let mut rng = crate::test_rng::TestRng::new(seed);
        move || rng.bytes32()
    }

    #[test]
    fn the_comb_multiplies_as_p256_does() {
        let mut next = stream(1);
        let mut scalars: Vec<Scalar> = (0..300).map(|_| scalar_from(next())).collect();
        // The ends: 0, 1, n-1, n-2, each digit at its extremes, every single bit.
        scalars.extend([Scalar::ZERO, Scalar::ONE, -Scalar::ONE, -Scalar::from(2u64)]);
        scalars.push(scalar_from([0x40; 32])); // digits near +63/-64 carries
        scalars.push(scalar_from([0x7f; 32]));
        let mut power = Scalar::ONE;
        for _ in 0..256 {
            scalars.push(power);
            power = power.double();
        }
        for k in scalars {
            assert_eq!(mul_by_generator(&k), ProjectivePoint::mul_by_generator(&k));
        }
    }

    #[test]
    fn digits_recompose_the_scalar() {
        let mut next = stream(2);
        for _ in 0..200 {
            let k = scalar_from(next());
            let mut sum = Scalar::ZERO;
            let mut weight = Scalar::ONE;
            for digit in digits(&k) {
                assert!((-64..=63).contains(&digit));
                let magnitude = Scalar::from(u64::from(digit.unsigned_abs()));
                sum += if digit < 0 { -magnitude } else { magnitude } * weight;
                weight *= Scalar::from(128u64);
            }
            assert_eq!(sum, k);
        }
    }

    #[test]
    fn signatures_are_p256_s_byte_for_byte() {
        let mut next = stream(3);
        let mut cases: Vec<([u8; 32], [u8; 32])> = (0..200).map(|_| (next(), next())).collect();
        // Digests at and past the group order, zero and all ones; keys at the ends.
        let order = NistP256::ORDER.as_ref().to_be_bytes();
        let mut order_bytes = [0u8; 32];
        order_bytes.copy_from_slice(&order);
        let mut order_minus_one = order_bytes;
        order_minus_one[31] -= 1;
        for digest in [[0u8; 32], [0xff; 32], order_bytes, order_minus_one] {
            cases.push(([7u8; 32], digest));
            cases.push((order_minus_one, digest));
        }
        let mut one = [0u8; 32];
        one[31] = 1;
        cases.push((one, [1u8; 32]));
        for (secret, digest) in cases {
            let Ok(key) = SigningKey::from_slice(&secret) else {
                continue; // a stream value at or past n is not a key
            };
            let ours = sign_prehash(&key, &digest).map(|s| s.to_bytes());
            let theirs: Signature = key.sign_prehash(&digest).unwrap();
            assert_eq!(ours, Some(theirs.to_bytes()));
        }
    }
}
