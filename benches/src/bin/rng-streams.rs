//! Time the engine's random stream: `rng-streams [WORDS [ROUNDS]]`.
//!
//! Draws WORDS `u64`s (default 2e8) the way the engine does (one ChaCha8
//! stream per block of 256 iterations, key `seed_from_u64(seed)`, stream =
//! block index, 8,192 words a block, about what a block of the example
//! request uses) from rand_chacha's `ChaCha8Rng` (what the engine runs)
//! and from RustCrypto chacha20's, and prints ns per word for each and
//! whether the two gave the same words (a wrapping sum of all of them).

use std::process::ExitCode;
use std::time::Instant;

use rand_core::{Rng, SeedableRng};

const WORDS_PER_BLOCK: u64 = 8192;

/// The wrapping sum of `words` words, block by block, and the seconds taken.
fn run<R: Rng + SeedableRng>(words: u64, set_stream: impl Fn(&mut R, u64)) -> (u64, f64) {
    let t = Instant::now();
    let mut sum = 0u64;
    for block in 0..words / WORDS_PER_BLOCK {
        let mut r = R::seed_from_u64(42);
        set_stream(&mut r, block);
        for _ in 0..WORDS_PER_BLOCK {
            sum = sum.wrapping_add(r.next_u64());
        }
    }
    (sum, t.elapsed().as_secs_f64())
}

fn main() -> ExitCode {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let words = args
        .first()
        .copied()
        .unwrap_or(200_000_000)
        .max(WORDS_PER_BLOCK);
    let rounds = args.get(1).copied().unwrap_or(3).max(1);
    let ns = |s: f64| s * 1e9 / (words / WORDS_PER_BLOCK * WORDS_PER_BLOCK) as f64;
    let mut same = true;
    for round in 0..rounds {
        let (a, ta) = run::<rand_chacha::ChaCha8Rng>(words, |r, s| r.set_stream(s));
        let (b, tb) = run::<chacha20::ChaCha8Rng>(words, |r, s| r.set_stream(s));
        same &= a == b;
        println!(
            "round {round}: rand_chacha {:.3} ns/word, chacha20 {:.3} ns/word ({:.2}x), same words: {}",
            ns(ta),
            ns(tb),
            ta / tb,
            a == b
        );
    }
    if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
