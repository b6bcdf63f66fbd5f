//! Seeded random projections of gradients to a smaller dimension (as TRAK and LoGra do).
//!
//! A projection is a `[P, k]` matrix `R` with independent entries, scaled so that
//! `E[R·Rᵀ] = I`: inner products `(gR)·(qR)` are unbiased estimates of `g·q`
//! (Johnson-Lindenstrauss). Entries come from the stream
//! `"influence/projection/<kind>"` of the seed, row by row, so the same seed, kind and
//! shape always give the same matrix.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::params::float_tensor;
use rand::RngExt;

use crate::data::rng::{normal, stream};

/// Distribution of the projection's entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProjectionKind {
    /// Standard normal entries, scaled by `1/sqrt(k)`.
    Gaussian,
    /// `±1` with equal probability, scaled by `1/sqrt(k)`.
    Rademacher,
}

impl ProjectionKind {
    /// Stable name used in the stream name: `gaussian` or `rademacher`.
    pub fn name(self) -> &'static str {
        match self {
            ProjectionKind::Gaussian => "gaussian",
            ProjectionKind::Rademacher => "rademacher",
        }
    }
}

/// A random projection of gradients to `dim` dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProjectionConfig {
    /// Target dimension `k` (at least 1).
    pub dim: usize,
    /// Entry distribution.
    pub kind: ProjectionKind,
    /// Seed of the stream `"influence/projection/<kind>"`.
    pub seed: u64,
}

impl ProjectionConfig {
    /// The `[p, dim]` projection matrix, row-major, on the host.
    pub fn matrix(&self, p: usize) -> Vec<f32> {
        let mut rng = stream(
            self.seed,
            &format!("influence/projection/{}", self.kind.name()),
        );
        let scale = 1.0 / (self.dim as f64).sqrt();
        (0..p * self.dim)
            .map(|_| {
                let v = match self.kind {
                    ProjectionKind::Gaussian => normal(&mut rng),
                    ProjectionKind::Rademacher => {
                        if rng.random::<bool>() {
                            1.0
                        } else {
                            -1.0
                        }
                    }
                };
                (v * scale) as f32
            })
            .collect()
    }

    /// The `[p, dim]` projection matrix on `device`.
    pub fn tensor<B: Backend>(&self, p: usize, device: &B::Device) -> Tensor<B, 2> {
        float_tensor::<B, 2, f32>(self.matrix(p), [p, self.dim], device)
    }
}
