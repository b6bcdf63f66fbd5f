//! Gradient influence of training records on model outputs (Proof of Attribution for
//! small models): DataInf, TracIn and exact influence over the LoRA parameters of a
//! [`LoraMlp`](crate::model::LoraMlp).
//!
//! Per-example gradients of the LoRA parameters are computed in batch with tensor ops by
//! back-propagating the softmax cross-entropy by hand through the ReLU stack
//! ([`DeviceParams::per_example_gradients`]; checked against burn's autodiff in the
//! tests), on whichever burn backend the caller picks (NdArray on the CPU, CUDA behind the
//! crate's `cuda` feature).
//!
//! An [`InfluenceIndex`] computes the training records' gradients once per adapter,
//! preconditions them by the [`Method`] (TracIn: checkpoint sum of learning-rate-weighted
//! dot products; DataInf: layer-wise closed-form inverse of the damped Fisher; exact: the
//! full damped Hessian, see [`exact`]), optionally projects them with a seeded
//! Gaussian or Rademacher matrix ([`ProjectionConfig`], as TRAK and LoGra do) and keeps
//! them on the device; attributing a batch of queries is then a matrix product per slice
//! of records. An index too large to keep recomputes them a slice at a time whenever it
//! scores ([`Storage::Recomputed`]), with bit-identical scores.
//! [`Attribution`] aggregates the scores per record and per contributor (the record's
//! `author`).
//!
//! Sign convention: `score(z, x) = ∇L(x)ᵀ·M·∇L(z)` with `M` the method's preconditioner;
//! positive means `z` helps `x` (removing it would raise `x`'s loss by about `score / n`).
//!
//! Measured or modelled: every step returns a [`StepCost`](crate::model::StepCost) with
//! measured wall seconds on the named device and analytic FLOPs, launches and bytes (the
//! model's kernels from [`crate::model::cost`] for gradients, [`Kernels::matmul`] for an
//! `[m, k]·[k, n]` product, one element-wise kernel per scale, sum or read-back; the exact
//! method's host-side curvature and inverse count FLOPs only).
//!
//! [`Kernels::matmul`]: crate::model::cost::Kernels::matmul
//! Deterministic: the same seed, data and configuration give bit-identical scores on the
//! CPU.

pub mod exact;
pub mod index;
pub mod kernel;
pub mod params;
mod precondition;
pub mod projection;
mod stored;

#[cfg(test)]
pub(crate) mod tests;

pub use exact::{Curvature, Damping};
pub use index::{
    AdapterTrace, Attribution, InfluenceConfig, InfluenceIndex, KEPT_INDEX_BYTES, Method,
    OutputTotals, Storage, train_traced, train_traced_batched,
};
pub use kernel::HostKernel;
pub use params::{AdapterParams, Block, DeviceParams, LayerParams, LoraParams};
pub use projection::{ProjectionConfig, ProjectionKind};

use crate::model::ModelError;

/// Errors from building an influence index or attributing with it.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InfluenceError {
    /// The model or an example is invalid (wrong feature count, label out of range, ...).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model has no LoRA adapter, so there are no LoRA parameters to attribute with.
    #[error("the model has no LoRA adapter: attribute a LoraMlp with at least one adapted layer")]
    NoAdapter,
    /// The exact method's dense Hessian would be too large.
    #[error(
        "exact influence needs a dense {params}x{params} Hessian, above the limit of {limit} \
         LoRA parameters: use DataInf or TracIn, or a smaller rank"
    )]
    TooLarge {
        /// The model's LoRA parameter count.
        params: usize,
        /// The largest count allowed.
        limit: usize,
    },
    /// The damping would leave the curvature matrix singular.
    #[error(
        "damping floor {floor:e} (damping ratio times the mean absolute eigenvalue) must be > \
         0: use a positive damping ratio, or train the adapter so the curvature is not zero"
    )]
    Singular {
        /// The damping floor computed.
        floor: f64,
    },
    /// An influence configuration or argument is invalid.
    #[error("invalid influence config: {0}")]
    Config(String),
    /// Reading a tensor back from the device failed.
    #[error("reading a tensor from the device: {0}")]
    Tensor(String),
}
