//! ECDSA P-256 verification for keys that verify many signatures: the
//! public key's multiples are read from a comb built once per key.
//!
//! Why: `ring`'s verification (the assembly of OpenSSL's `ecp_nistz256`)
//! computes `u1·G + u2·Q` as a fixed-base multiple of `G` from its table
//! (about 7 µs on this project's machines) plus a variable-base multiple of
//! `Q` with no table (about 57 µs, nearly all of a verification). A service
//! verifying bundles checks them against a handful of trusted keys, so the
//! second multiple can read a table too: 37 rows of the affine multiples
//! `1..=64` of `2^(7·row)·Q` (the layout of the signer's comb for `G`,
//! [`super::ecdsa_sign`]), 148 KiB built in about 2.5 ms. A key gets its
//! table after [`HOT_AFTER`] verifications (before that, and for any key
//! past the first [`MAX_TABLES`], `ring` verifies), so one-off checks never
//! pay for it.
//!
//! Verification handles only public values (the key, the signature, the
//! message), so this code is variable-time: digits index the tables
//! directly and additions branch on their special cases. The result is
//! `ring`'s verdict: tests compare the two, and `p256`'s `verify_prehash`,
//! on the Wycheproof vectors, on random keys and messages, and on
//! signatures built to reach the additions' special cases (a sum at
//! infinity, a doubling in the middle of the sum).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::ff::PrimeField;
use p256::elliptic_curve::ops::Reduce;
use p256::elliptic_curve::point::AffineCoordinates;
use p256::{AffinePoint, FieldBytes, ProjectivePoint, Scalar};
use sha2::Digest;

use super::ecdsa_sign::{ENTRIES, comb_points, digits};

/// An element of P-256's base field in Montgomery form (`x·2^256 mod p`),
/// four little-endian 64-bit limbs, always fully reduced (below `p`), so
/// equal elements have equal limbs.
///
/// Why not `p256`'s `FieldElement`: its multiplication goes through
/// `crypto-bigint`'s generic widening product and a separate reduction,
/// about 45 ns on this project's machines; this one is the textbook
/// word-by-word Montgomery product (CIOS) specialised to `p`, whose lowest
/// limb is all ones, so each step's quotient digit is the low limb itself.
/// It is checked against `p256`'s arithmetic in the tests below.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Fe([u64; 4]);

/// `p = 2^256 - 2^224 + 2^192 + 2^96 - 1`.
const P: [u64; 4] = [
    0xffff_ffff_ffff_ffff,
    0x0000_0000_ffff_ffff,
    0x0000_0000_0000_0000,
    0xffff_ffff_0000_0001,
];

/// `2^512 mod p`, to bring a value into Montgomery form.
const R2: Fe = Fe([
    0x0000_0000_0000_0003,
    0xffff_fffb_ffff_ffff,
    0xffff_ffff_ffff_fffe,
    0x0000_0004_ffff_fffd,
]);

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = u128::from(a)
        .wrapping_sub(u128::from(b))
        .wrapping_sub(u128::from(borrow));
    (t as u64, ((t >> 64) as u64) & 1)
}

/// `a + b·c + carry`, as (low, high).
#[inline(always)]
fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) * u128::from(c) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

impl Fe {
    const ZERO: Fe = Fe([0; 4]);
    /// One in Montgomery form: `2^256 mod p`.
    const ONE: Fe = Fe([
        0x0000_0000_0000_0001,
        0xffff_ffff_0000_0000,
        0xffff_ffff_ffff_ffff,
        0x0000_0000_ffff_fffe,
    ]);

    /// `value - p` when that does not go below zero (with `high`, a fifth
    /// limb of the value), else `value`.
    #[inline(always)]
    fn reduce_once(v: [u64; 4], high: u64) -> Fe {
        let (d0, b) = sbb(v[0], P[0], 0);
        let (d1, b) = sbb(v[1], P[1], b);
        let (d2, b) = sbb(v[2], P[2], b);
        let (d3, b) = sbb(v[3], P[3], b);
        let (_, b) = sbb(high, 0, b);
        // b == 1: value < p, keep it.
        let keep = b.wrapping_neg();
        Fe([
            (v[0] & keep) | (d0 & !keep),
            (v[1] & keep) | (d1 & !keep),
            (v[2] & keep) | (d2 & !keep),
            (v[3] & keep) | (d3 & !keep),
        ])
    }

    #[inline(always)]
    fn add(&self, o: &Fe) -> Fe {
        let (s0, c) = adc(self.0[0], o.0[0], 0);
        let (s1, c) = adc(self.0[1], o.0[1], c);
        let (s2, c) = adc(self.0[2], o.0[2], c);
        let (s3, c) = adc(self.0[3], o.0[3], c);
        Fe::reduce_once([s0, s1, s2, s3], c)
    }

    #[inline(always)]
    fn sub(&self, o: &Fe) -> Fe {
        let (d0, b) = sbb(self.0[0], o.0[0], 0);
        let (d1, b) = sbb(self.0[1], o.0[1], b);
        let (d2, b) = sbb(self.0[2], o.0[2], b);
        let (d3, b) = sbb(self.0[3], o.0[3], b);
        // Went below zero: add p back.
        let mask = b.wrapping_neg();
        let (e0, c) = adc(d0, P[0] & mask, 0);
        let (e1, c) = adc(d1, P[1] & mask, c);
        let (e2, c) = adc(d2, P[2] & mask, c);
        let (e3, _) = adc(d3, P[3] & mask, c);
        Fe([e0, e1, e2, e3])
    }

    #[inline(always)]
    fn neg(&self) -> Fe {
        Fe::ZERO.sub(self)
    }

    #[inline(always)]
    fn double(&self) -> Fe {
        self.add(self)
    }

    /// `self·o·2^-256 mod p` (CIOS; `-p^-1 mod 2^64` is 1).
    #[inline(always)]
    fn mul(&self, o: &Fe) -> Fe {
        let a = &self.0;
        let mut t = [0u64; 6];
        for &bi in &o.0 {
            let (t0, c) = mac(t[0], a[0], bi, 0);
            let (t1, c) = mac(t[1], a[1], bi, c);
            let (t2, c) = mac(t[2], a[2], bi, c);
            let (t3, c) = mac(t[3], a[3], bi, c);
            let (t4, t5) = adc(t[4], c, 0);
            let m = t0;
            let (_, c) = mac(t0, m, P[0], 0);
            let (u0, c) = mac(t1, m, P[1], c);
            let (u1, c) = mac(t2, m, P[2], c);
            let (u2, c) = mac(t3, m, P[3], c);
            let (u3, c) = adc(t4, c, 0);
            t = [u0, u1, u2, u3, t5 + c, 0];
        }
        Fe::reduce_once([t[0], t[1], t[2], t[3]], t[4])
    }

    #[inline(always)]
    fn square(&self) -> Fe {
        self.mul(self)
    }

    fn is_zero(&self) -> bool {
        *self == Fe::ZERO
    }

    /// From big-endian bytes, `None` unless below `p`.
    fn from_bytes(bytes: &[u8; 32]) -> Option<Fe> {
        let mut limbs = [0u64; 4];
        for (limb, chunk) in limbs.iter_mut().rev().zip(bytes.chunks_exact(8)) {
            *limb = u64::from_be_bytes(chunk.try_into().ok()?);
        }
        // Below p exactly when subtracting p borrows.
        let (_, b) = sbb(limbs[0], P[0], 0);
        let (_, b) = sbb(limbs[1], P[1], b);
        let (_, b) = sbb(limbs[2], P[2], b);
        let (_, b) = sbb(limbs[3], P[3], b);
        (b == 1).then(|| Fe(limbs).mul(&R2))
    }
}

/// Verifications with one key before it gets a table (about 2.5 ms to
/// build, the cost of some forty `ring` verifications, won back after
/// about a hundred).
pub(crate) const HOT_AFTER: u32 = 64;

/// Keys with a table, at most (148 KiB each); later keys verify by `ring`.
pub(crate) const MAX_TABLES: usize = 16;

/// The affine multiples of a base point, row by row (see the module docs).
pub(crate) struct Comb {
    rows: Vec<[(Fe, Fe); ENTRIES]>,
}

impl Comb {
    fn of(base: ProjectivePoint) -> Self {
        let affine = comb_points(base);
        let coordinates = |p: &AffinePoint| -> (Fe, Fe) {
            // Coordinates of a point on the curve are field elements.
            let x = Fe::from_bytes(&p.x().into()).unwrap_or(Fe::ZERO);
            let y = Fe::from_bytes(&p.y().into()).unwrap_or(Fe::ZERO);
            (x, y)
        };
        let rows = affine
            .chunks_exact(ENTRIES)
            .map(|chunk| {
                let mut row = [(Fe::ZERO, Fe::ZERO); ENTRIES];
                for (entry, point) in row.iter_mut().zip(chunk) {
                    *entry = coordinates(point);
                }
                row
            })
            .collect();
        Comb { rows }
    }

    /// Add `digit·2^(7·row)·B` to `acc`.
    #[inline]
    fn add_digit(&self, acc: &mut Jacobian, row: usize, digit: i8) {
        let Some(&(x, y)) = self
            .rows
            .get(row)
            .and_then(|r| r.get(usize::from(digit.unsigned_abs()).wrapping_sub(1)))
        else {
            return; // digit 0
        };
        acc.add_affine(&x, &if digit < 0 { y.neg() } else { y });
    }
}

/// The comb of the generator, for `u1·G`.
static GENERATOR: LazyLock<Comb> = LazyLock::new(|| Comb::of(ProjectivePoint::GENERATOR));

/// A point in Jacobian coordinates, `(X/Z², Y/Z³)`, or infinity.
#[derive(Clone, Copy)]
struct Jacobian {
    x: Fe,
    y: Fe,
    z: Fe,
    infinity: bool,
}

impl Jacobian {
    const INFINITY: Jacobian = Jacobian {
        x: Fe::ONE,
        y: Fe::ONE,
        z: Fe::ZERO,
        infinity: true,
    };

    /// `self += (x2, y2)`, an affine point on the curve (add-2007-bl's
    /// mixed addition; the equal and opposite cases by name).
    #[inline]
    fn add_affine(&mut self, x2: &Fe, y2: &Fe) {
        if self.infinity {
            *self = Jacobian {
                x: *x2,
                y: *y2,
                z: Fe::ONE,
                infinity: false,
            };
            return;
        }
        let z1z1 = self.z.square();
        let u2 = x2.mul(&z1z1);
        let s2 = y2.mul(&self.z).mul(&z1z1);
        let h = u2.sub(&self.x);
        let half_r = s2.sub(&self.y);
        if h.is_zero() {
            if half_r.is_zero() {
                self.double();
            } else {
                *self = Jacobian::INFINITY; // P + (-P)
            }
            return;
        }
        let hh = h.square();
        let i = hh.double().double();
        let j = h.mul(&i);
        let r = half_r.double();
        let v = self.x.mul(&i);
        let x3 = r.square().sub(&j).sub(&v.double());
        let y3 = r.mul(&v.sub(&x3)).sub(&self.y.mul(&j).double());
        let z3 = self.z.add(&h).square().sub(&z1z1).sub(&hh);
        *self = Jacobian {
            x: x3,
            y: y3,
            z: z3,
            infinity: false,
        };
    }

    /// `self = 2·self` (dbl-2001-b, for `a = -3`).
    fn double(&mut self) {
        if self.infinity || self.y.is_zero() {
            *self = Jacobian::INFINITY;
            return;
        }
        let delta = self.z.square();
        let gamma = self.y.square();
        let beta = self.x.mul(&gamma);
        let t = self.x.sub(&delta).mul(&self.x.add(&delta));
        let alpha = t.double().add(&t);
        let beta4 = beta.double().double();
        let x3 = alpha.square().sub(&beta4.double());
        let z3 = self.y.add(&self.z).square().sub(&gamma).sub(&delta);
        let y3 = alpha
            .mul(&beta4.sub(&x3))
            .sub(&gamma.square().double().double().double());
        *self = Jacobian {
            x: x3,
            y: y3,
            z: z3,
            infinity: false,
        };
    }
}

/// `p - n` for P-256, big-endian: an `r` below it may also stand for the
/// x-coordinate `r + n`.
const P_MINUS_N: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x43, 0x19, 0x05, 0x53, 0x58, 0xe8, 0x61, 0x7b,
    0x0c, 0x46, 0x35, 0x3d, 0x03, 0x9c, 0xda, 0xae,
];

/// The group order `n`, big-endian.
const ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// ECDSA verification of `signature` over the SHA-256 digest `digest`
/// under the key whose comb is `key`: `x(u1·G + u2·Q) ≡ r (mod n)` with
/// `u1 = z/s`, `u2 = r/s`, compared in Jacobian coordinates (no inversion
/// of the sum).
pub(crate) fn verify_prehash(key: &Comb, digest: &[u8; 32], signature: &Signature) -> bool {
    let (r, s) = signature.split_scalars();
    let z = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(*digest));
    let Some(s_inv) = s.invert_vartime().into_option() else {
        return false; // s is not zero, so this does not happen
    };
    let u1 = digits(&(z * s_inv));
    let u2 = digits(&(*r * s_inv));
    let mut acc = Jacobian::INFINITY;
    for (row, (&d1, &d2)) in u1.iter().zip(u2.iter()).enumerate() {
        GENERATOR.add_digit(&mut acc, row, d1);
        key.add_digit(&mut acc, row, d2);
    }
    if acc.infinity {
        return false;
    }
    let r_bytes: [u8; 32] = r.to_repr().into();
    let zz = acc.z.square();
    // r < n < p: a field element as it stands.
    let Some(r_fe) = Fe::from_bytes(&r_bytes) else {
        return false;
    };
    if acc.x == r_fe.mul(&zz) {
        return true;
    }
    // x(R) in [n, p) reduces to r = x - n: then x = r + n < p.
    if r_bytes.as_slice() < P_MINUS_N.as_slice() {
        let Some(n) = Fe::from_bytes(&ORDER) else {
            return false;
        };
        return acc.x == r_fe.add(&n).mul(&zz);
    }
    false
}

/// A trusted key's count of verifications and, once hot, its comb.
struct Hot {
    key: AffinePoint,
    uses: AtomicU32,
    comb: OnceLock<Comb>,
}

/// Keys seen, with their counts and combs: at most [`MAX_TABLES`] entries;
/// a new key takes the place of a cold one when it is full.
struct Registry(Mutex<Vec<Arc<Hot>>>);

impl Registry {
    const fn new() -> Self {
        Registry(Mutex::new(Vec::new()))
    }

    /// `key`'s entry when it is hot (its comb built on the way by the
    /// call that makes it hot), `None` while it is cold or every place
    /// holds a hot key.
    fn hot(&self, key: &VerifyingKey) -> Option<Arc<Hot>> {
        let affine = *key.as_affine();
        let hot = {
            let mut keys = self.0.lock().unwrap_or_else(|e| e.into_inner());
            match keys.iter().find(|h| h.key == affine) {
                Some(h) => Arc::clone(h),
                None => {
                    let h = Arc::new(Hot {
                        key: affine,
                        uses: AtomicU32::new(0),
                        comb: OnceLock::new(),
                    });
                    if keys.len() < MAX_TABLES {
                        keys.push(Arc::clone(&h));
                    } else {
                        let cold = keys.iter_mut().find(|k| k.comb.get().is_none())?;
                        *cold = Arc::clone(&h);
                    }
                    h
                }
            }
        };
        if hot.comb.get().is_some() {
            return Some(hot);
        }
        // Exactly one caller, the one whose count reaches the mark, builds
        // the comb (outside the lock); the others go on by `ring` meanwhile
        // rather than wait (and nothing waits on a build that a fork left
        // behind in a child process).
        if hot.uses.fetch_add(1, Ordering::Relaxed) != HOT_AFTER {
            return None;
        }
        let _ = hot.comb.set(Comb::of(ProjectivePoint::from(affine)));
        Some(hot)
    }

    /// [`verify_message`] with this registry.
    fn verify(&self, key: &VerifyingKey, message: &[u8], signature: &Signature) -> Option<bool> {
        let hot = self.hot(key)?;
        let comb = hot.comb.get()?;
        let digest: [u8; 32] = sha2::Sha256::digest(message).into();
        Some(verify_prehash(comb, &digest, signature))
    }
}

/// The process's keys.
static KEYS: Registry = Registry::new();

/// ECDSA P-256 / SHA-256 verification of `signature` over `message` by a
/// hot key's comb; `None` while `key` is cold (the caller verifies with
/// `ring`, and the call counts toward the key's table).
pub(crate) fn verify_message(
    key: &VerifyingKey,
    message: &[u8],
    signature: &Signature,
) -> Option<bool> {
    KEYS.verify(key, message, signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    fn scalar_from(bytes: [u8; 32]) -> Scalar {
        <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(bytes))
    }

    fn reference(key: &VerifyingKey, digest: &[u8; 32], sig: &Signature) -> bool {
        key.verify_prehash(digest, sig).is_ok()
    }

    /// Our field against `p256`'s, through canonical bytes.
    #[test]
    fn the_field_computes_as_p256_s() {
        type Theirs =
            <p256::NistP256 as p256::elliptic_curve::hazmat::FieldArithmetic>::FieldElement;
        let ours_of = |t: &Theirs| Fe::from_bytes(&t.to_repr().into()).unwrap();
        let mut rng = crate::test_rng::TestRng::new(13);
        let mut values: Vec<Theirs> =
            vec![Theirs::ZERO, Theirs::ONE, -Theirs::ONE, -Theirs::from(2u64)];
        values.push(Theirs::from_repr(FieldBytes::from(P_MINUS_N)).unwrap());
        values.push(Theirs::from_repr(FieldBytes::from(ORDER)).unwrap());
        for _ in 0..200 {
            if let Some(v) = Theirs::from_repr(FieldBytes::from(rng.bytes32())).into_option() {
                values.push(v);
            }
        }
        let mut power = Theirs::ONE;
        for _ in 0..256 {
            values.push(power);
            values.push(-power);
            power = power.double();
        }
        let mut previous = Theirs::ONE;
        for a in &values {
            let b = &previous;
            let (oa, ob) = (ours_of(a), ours_of(b));
            assert_eq!(oa.mul(&ob), ours_of(&(*a * b)));
            assert_eq!(oa.add(&ob), ours_of(&(*a + b)));
            assert_eq!(oa.sub(&ob), ours_of(&(*a - b)));
            assert_eq!(ob.sub(&oa), ours_of(&(*b - a)));
            assert_eq!(oa.neg(), ours_of(&-*a));
            assert_eq!(oa.square(), ours_of(&a.square()));
            assert_eq!(oa.double(), ours_of(&a.double()));
            previous = *a;
        }
        assert_eq!(ours_of(&Theirs::ONE), Fe::ONE);
        assert_eq!(Fe::from_bytes(&P_MINUS_N.map(|_| 0xff)), None);
        let mut p_bytes = [0u8; 32];
        for (chunk, limb) in p_bytes.chunks_exact_mut(8).zip(P.iter().rev()) {
            chunk.copy_from_slice(&limb.to_be_bytes());
        }
        assert_eq!(Fe::from_bytes(&p_bytes), None);
    }

    #[test]
    fn random_signatures_verify_as_p256_says() {
        let mut rng = crate::test_rng::TestRng::new(11);
        for _ in 0..40 {
            let Ok(sk) = SigningKey::from_slice(&rng.bytes32()) else {
                continue;
            };
            let vk = *sk.verifying_key();
            let comb = Comb::of(ProjectivePoint::from(*vk.as_affine()));
            for _ in 0..5 {
                let digest = rng.bytes32();
                let Some(sig) = super::super::ecdsa_sign::sign_prehash(&sk, &digest) else {
                    continue;
                };
                assert!(verify_prehash(&comb, &digest, &sig));
                assert!(reference(&vk, &digest, &sig));
                // Another digest, a changed r or s, the high-s twin.
                let mut other = digest;
                other[7] ^= 1;
                assert!(!verify_prehash(&comb, &other, &sig));
                let (r, s) = sig.split_scalars();
                for bad in [
                    Signature::from_scalars(*r + Scalar::ONE, *s),
                    Signature::from_scalars(*r, *s + Scalar::ONE),
                    Signature::from_scalars(*s, *r),
                ]
                .into_iter()
                .flatten()
                {
                    assert_eq!(
                        verify_prehash(&comb, &digest, &bad),
                        reference(&vk, &digest, &bad)
                    );
                }
                let twin = Signature::from_scalars(*r, -*s).unwrap();
                assert!(verify_prehash(&comb, &digest, &twin));
                assert!(reference(&vk, &digest, &twin));
            }
        }
    }

    /// Signatures built so that the sum's additions meet their special
    /// cases: with `Q = G` and `z = r`, `u1 = u2` and every row adds the
    /// same point twice (a doubling); with `Q = -G`, every row cancels
    /// (infinity); with `z = -r·d`, the whole sum is infinity.
    #[test]
    fn special_cases_of_the_sum_verify_as_p256_says() {
        let mut rng = crate::test_rng::TestRng::new(12);
        let mut one = [0u8; 32];
        one[31] = 1;
        let minus_one: [u8; 32] = (-Scalar::ONE).to_repr().into();
        for secret in [one, minus_one, [3u8; 32]] {
            let sk = SigningKey::from_slice(&secret).unwrap();
            let vk = *sk.verifying_key();
            let d = scalar_from(secret);
            let comb = Comb::of(ProjectivePoint::from(*vk.as_affine()));
            for _ in 0..30 {
                let r = scalar_from(rng.bytes32());
                let s = scalar_from(rng.bytes32());
                let Ok(sig) = Signature::from_scalars(r, s) else {
                    continue;
                };
                for z in [r, -(r * d), r.double(), Scalar::ZERO] {
                    let digest: [u8; 32] = z.to_repr().into();
                    assert_eq!(
                        verify_prehash(&comb, &digest, &sig),
                        reference(&vk, &digest, &sig),
                        "key {secret:?}"
                    );
                }
                // A valid signature with z = r (so u1 = u2), from the
                // signing equation.
                let k = scalar_from(rng.bytes32());
                let big_r = (ProjectivePoint::GENERATOR * k).to_affine();
                let rr = <Scalar as Reduce<FieldBytes>>::reduce(&big_r.x());
                // s = k⁻¹·(z + r·d) with z = r.
                let Some(k_inv) = k.invert().into_option() else {
                    continue;
                };
                let ss = k_inv * (rr + rr * d);
                if let Ok(sig) = Signature::from_scalars(rr, ss) {
                    let digest: [u8; 32] = rr.to_repr().into();
                    assert_eq!(
                        verify_prehash(&comb, &digest, &sig),
                        reference(&vk, &digest, &sig)
                    );
                }
            }
        }
    }

    #[test]
    fn wycheproof_vectors_verify_as_p256_says() {
        let files = [
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/wycheproof/ecdsa_secp256r1_sha256_test.json"
            )),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/wycheproof/ecdsa_secp256r1_sha256_p1363_test.json"
            )),
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/data/wycheproof/legacy-v0/ecdsa_secp256r1_sha256_test.json"
            )),
        ];
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len() / 2)
                .filter_map(|i| s.get(2 * i..2 * i + 2))
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect()
        };
        let (mut checked, mut valid) = (0, 0);
        for text in files {
            let doc: serde_json::Value = serde_json::from_str(text).unwrap();
            for g in doc["testGroups"].as_array().unwrap() {
                let key = g.get("publicKey").unwrap_or(&g["key"]);
                let point = hex(key["uncompressed"].as_str().unwrap());
                let vk = VerifyingKey::from_sec1_bytes(&point).unwrap();
                let comb = Comb::of(ProjectivePoint::from(*vk.as_affine()));
                for t in g["tests"].as_array().unwrap() {
                    let msg = hex(t["msg"].as_str().unwrap());
                    let bytes = hex(t["sig"].as_str().unwrap());
                    let sig =
                        Signature::from_der(&bytes).or_else(|_| Signature::from_slice(&bytes));
                    let Ok(sig) = sig else {
                        continue;
                    };
                    let digest: [u8; 32] = sha2::Sha256::digest(&msg).into();
                    let ours = verify_prehash(&comb, &digest, &sig);
                    assert_eq!(ours, reference(&vk, &digest, &sig), "tcId {}", t["tcId"]);
                    let der = sig.to_der();
                    let ring =
                        super::super::crypto::verify_message_der_fast(&vk, &msg, der.as_bytes());
                    assert_eq!(ours, ring, "tcId {}", t["tcId"]);
                    checked += 1;
                    valid += usize::from(ours);
                }
            }
        }
        assert!(
            checked > 500 && valid > 100,
            "{checked} vectors checked, {valid} valid"
        );
    }

    /// Threads racing one cold key through its turn to hot: every answer
    /// right on every thread, before, during and after the build, and
    /// one comb in the end.
    #[test]
    fn threads_racing_a_key_to_hot_all_get_right_answers() {
        let registry = Registry::new();
        let sk = SigningKey::from_slice(&[21u8; 32]).unwrap();
        let vk = *sk.verifying_key();
        let good: Signature = p256::ecdsa::signature::Signer::sign(&sk, b"good");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        let ring = |m: &[u8]| {
                            super::super::crypto::verify_message_der_fast(
                                &vk,
                                m,
                                good.to_der().as_bytes(),
                            )
                        };
                        let answer =
                            |m: &[u8]| registry.verify(&vk, m, &good).unwrap_or_else(|| ring(m));
                        assert!(answer(b"good"));
                        assert!(!answer(b"evil"));
                    }
                });
            }
        });
        let keys = registry.0.lock().unwrap();
        assert_eq!(keys.len(), 1);
        assert!(keys.first().unwrap().comb.get().is_some());
    }

    #[test]
    fn a_key_gets_its_comb_once_hot_and_cold_keys_give_way() {
        let registry = Registry::new();
        let sk = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let vk = *sk.verifying_key();
        let message = b"a bundle";
        let sig: Signature = p256::ecdsa::signature::Signer::sign(&sk, message);
        let mut cold = 0;
        while registry.verify(&vk, message, &sig).is_none() {
            cold += 1;
            assert!(cold <= HOT_AFTER, "never hot");
        }
        assert_eq!(cold, HOT_AFTER);
        assert_eq!(registry.verify(&vk, message, &sig), Some(true));
        assert_eq!(registry.verify(&vk, b"another", &sig), Some(false));
        // Many cold keys pass through the other places; the hot one stays.
        for i in 10..=50u8 {
            let other = *SigningKey::from_slice(&[i; 32]).unwrap().verifying_key();
            assert_eq!(registry.verify(&other, message, &sig), None);
        }
        assert_eq!(registry.0.lock().unwrap().len(), MAX_TABLES);
        assert_eq!(registry.verify(&vk, message, &sig), Some(true));
    }
}
