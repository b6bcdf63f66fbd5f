//! Machine-learning side of olsim: Datanet data with ground truth, base models, LoRA
//! fine-tuning (Model Factory), OpenLoRA serving and Proof of Attribution.
//!
//! Modules: [`data`] (Datanet generators with ground truth), [`model`] (an MLP classifier
//! with LoRA adapters), [`lm`] (word tokenizer and causal transformer language model),
//! [`serve`] (OpenLoRA multi-adapter serving), [`influence`] (gradient influence),
//! [`suffix`] (the suffix-array index for span attribution), [`groundtruth`] (retraining
//! values and fidelity measures) and [`device`] (device choice and cost profiles). This crate
//! never depends on `olsim-chain`.

pub mod data;
pub mod device;
pub mod groundtruth;
pub mod influence;
mod lanes;
pub mod lm;
pub mod model;
pub mod serve;
pub mod suffix;
