//! Models and LoRA fine-tuning (Model Factory).
//!
//! A small multi-layer perceptron classifier ([`Mlp`]) for Datanet feature records, a LoRA
//! adapter layer ([`LoraLinear`]) that wraps a frozen base [`Linear`](burn::nn::Linear) with
//! a trainable low-rank update, a LoRA model over a pre-trained base ([`LoraMlp`]), Adam
//! training in mini-batches ([`train()`]), multi-LoRA training of many adapters over one
//! base in batched passes ([`train_batched`], bit-identical to [`train()`] of each alone)
//! and an analytic compute model ([`StepCost`]).
//!
//! Everything is generic over the burn backend `B: Backend`; training runs over
//! `Autodiff<B>`. The caller chooses the backend (NdArray on the CPU by default; a CUDA
//! backend only behind the crate's `cuda` feature, never needed for the CPU build).
//!
//! Determinism: parameters are initialised from ChaCha streams ([`rng::stream`]) named
//! after the model and layer, never from burn's global RNG (which is process-wide state
//! shared by concurrent callers); mini-batches are shuffled from the stream
//! `"model/train/shuffle"`. On the CPU backend the same seed, data and configuration give
//! bit-identical weights run after run.
//!
//! Measured or modelled: [`StepCost::flops`], [`StepCost::launches`] and
//! [`StepCost::bytes`] are analytic counts of the kernels a GPU backend would run (2 FLOPs
//! per multiply-accumulate of every dense product, plus element-wise terms; one launch per
//! product, bias add, activation, loss piece and Adam tensor update; each kernel's operands
//! read and result written once; see [`cost`]); [`StepCost::wall_seconds`] is measured on
//! the named device.
//!
//! [`rng::stream`]: crate::data::rng::stream

pub mod cost;
pub mod lora;
pub mod mlp;
pub mod multi;
pub mod train;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod determinism_tests;

pub use cost::StepCost;
pub use lora::{LoraAdapter, LoraConfig, LoraLinear, LoraMlp, LoraTargets, ParamCounts};
pub use mlp::{Mlp, MlpConfig};
pub use multi::{AdapterJob, train_batched, train_batched_with_hook};
pub use train::{
    Classifier, Example, TrainConfig, TrainReport, accuracy, forward_cost, parameter_values,
    predict, train,
};

/// Errors from building, training, saving or loading models.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ModelError {
    /// A model configuration is invalid (zero dimensions, fewer than two classes, ...).
    #[error("invalid model config: {0}")]
    Config(String),
    /// LoRA rank is zero.
    #[error("LoRA rank must be at least 1")]
    RankZero,
    /// LoRA rank exceeds the smaller dimension of a targeted layer.
    #[error("LoRA rank {rank} exceeds min(in, out) = {max} of layer {layer}")]
    RankTooLarge {
        /// The targeted layer index.
        layer: usize,
        /// The requested rank.
        rank: usize,
        /// The largest rank the layer allows.
        max: usize,
    },
    /// A LoRA target names a layer the model does not have.
    #[error("LoRA target layer {layer} does not exist (model has {layers} layers)")]
    NoSuchLayer {
        /// The requested layer index.
        layer: usize,
        /// Number of layers in the model.
        layers: usize,
    },
    /// A training configuration is invalid (zero epochs or batch size, bad learning rate).
    #[error("invalid training config: {0}")]
    Train(String),
    /// The training set is empty.
    #[error("training set is empty")]
    EmptyTrainingSet,
    /// An example does not fit the model.
    #[error("example {index}: {what}")]
    BadExample {
        /// Position of the example in the input slice.
        index: usize,
        /// What is wrong with it.
        what: String,
    },
    /// Saved adapters do not match the model they are loaded into.
    #[error("adapter mismatch: {0}")]
    AdapterMismatch(String),
    /// Saving or loading a burn record failed, or an adapter file could not be read/written.
    #[error("adapter record: {0}")]
    Record(String),
}
