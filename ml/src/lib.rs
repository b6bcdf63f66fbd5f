//! Machine-learning side of olsim: Datanet data with ground truth, base models, LoRA
//! fine-tuning (Model Factory), OpenLoRA serving and Proof of Attribution.
//!
//! Built so far: [`data`] (Datanet generators with ground truth), [`model`] (an MLP
//! classifier with LoRA adapters, trained with Adam on burn's CPU backend) and [`suffix`] (the
//! suffix-array index for span attribution). The language model, OpenLoRA serving and
//! gradient influence come with the ML and attribution issues. This crate never depends on
//! `olsim-chain`.

pub mod data;
pub mod model;
pub mod suffix;
