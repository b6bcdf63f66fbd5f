//! Deterministic random streams.
//!
//! Every component of a Datanet draws from its own ChaCha stream, derived from the one
//! master seed and a stable, human-readable name: the 32-byte ChaCha seed is
//! `keccak256("olsim/rng/v1" || seed as u64 little-endian || name)`. Adding a component or
//! a contributor therefore never shifts the numbers another component sees, and nothing
//! depends on thread count, hash-map order or the wall clock.

use alloy_primitives::keccak256;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The RNG type used by every generator in this module.
pub type Stream = ChaCha8Rng;

/// Derives the ChaCha stream for component `name` under master seed `seed`.
pub fn stream(seed: u64, name: &str) -> Stream {
    let mut bytes = Vec::with_capacity(12 + 8 + name.len());
    bytes.extend_from_slice(b"olsim/rng/v1");
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes.extend_from_slice(name.as_bytes());
    ChaCha8Rng::from_seed(keccak256(&bytes).0)
}

/// Draws a standard normal variate (Box-Muller on two uniform draws).
pub fn normal(rng: &mut Stream) -> f64 {
    // `random::<f64>()` is in [0, 1); use 1 - u so the logarithm's argument is in (0, 1].
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_seed_and_name_give_same_stream() {
        let mut a = stream(7, "x");
        let mut b = stream(7, "x");
        for _ in 0..16 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn different_names_or_seeds_give_different_streams() {
        assert_ne!(stream(7, "x").next_u64(), stream(7, "y").next_u64());
        assert_ne!(stream(7, "x").next_u64(), stream(8, "x").next_u64());
    }

    #[test]
    fn normal_has_plausible_moments() {
        let mut rng = stream(1, "normal");
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| normal(&mut rng)).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
