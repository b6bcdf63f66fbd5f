//! Seeded request streams: Zipf adapter popularity, random feature vectors and random
//! language-model prompts.

use rand::RngExt;

use super::ServeError;
use super::store::AdapterId;
use crate::data::rng::{normal, stream};
use crate::lm::{BOS, SPECIALS};

/// Zipf popularity over adapters `0..n`: adapter `k` is requested with probability
/// proportional to `1 / (k + 1)^s` (adapter 0 the most popular).
#[derive(Clone, Debug, PartialEq)]
pub struct ZipfPopularity {
    /// Cumulative probabilities, the last exactly 1.
    cdf: Vec<f64>,
}

impl ZipfPopularity {
    /// Popularity over `adapters` adapters with exponent `exponent` (`s >= 0`; 0 is
    /// uniform).
    pub fn new(adapters: usize, exponent: f64) -> Result<ZipfPopularity, ServeError> {
        if adapters == 0 {
            return Err(ServeError::Config(
                "Zipf popularity needs at least one adapter".into(),
            ));
        }
        if !(exponent.is_finite() && exponent >= 0.0) {
            return Err(ServeError::Config(format!(
                "Zipf exponent {exponent} must be finite and >= 0"
            )));
        }
        let weights: Vec<f64> = (1..=adapters).map(|k| (k as f64).powf(-exponent)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        *cdf.last_mut().expect("at least one adapter") = 1.0;
        Ok(ZipfPopularity { cdf })
    }

    /// Probability of adapter `id` (0 outside the range).
    pub fn probability(&self, id: AdapterId) -> f64 {
        let k = id as usize;
        match k {
            0 => self.cdf[0],
            _ if k < self.cdf.len() => self.cdf[k] - self.cdf[k - 1],
            _ => 0.0,
        }
    }

    /// `count` adapter ids drawn from the stream `"serve/requests"` of `seed`.
    pub fn requests(&self, seed: u64, count: usize) -> Vec<AdapterId> {
        let mut rng = stream(seed, "serve/requests");
        (0..count)
            .map(|_| {
                let u: f64 = rng.random();
                self.cdf
                    .partition_point(|&c| c <= u)
                    .min(self.cdf.len() - 1) as AdapterId
            })
            .collect()
    }
}

/// `count` feature vectors of `dim` standard normal values from the stream
/// `"serve/features"` of `seed`.
pub fn feature_vectors(seed: u64, dim: usize, count: usize) -> Vec<Vec<f32>> {
    let mut rng = stream(seed, "serve/features");
    (0..count)
        .map(|_| (0..dim).map(|_| normal(&mut rng) as f32).collect())
        .collect()
}

/// `count` prompts for a language model of vocabulary `vocab`: [`BOS`] then `len - 1`
/// tokens uniform over the non-special ids, from the stream `"serve/prompts"` of `seed`.
/// Panics when `vocab` leaves no non-special token or `len` is 0.
pub fn prompts(seed: u64, vocab: usize, len: usize, count: usize) -> Vec<Vec<u32>> {
    assert!(len > 0, "a prompt needs at least the BOS token");
    let first = SPECIALS.len() as u32;
    assert!(
        vocab as u32 > first,
        "vocabulary of {vocab} has only special tokens"
    );
    let mut rng = stream(seed, "serve/prompts");
    (0..count)
        .map(|_| {
            std::iter::once(BOS)
                .chain((1..len).map(|_| rng.random_range(first..vocab as u32)))
                .collect()
        })
        .collect()
}
