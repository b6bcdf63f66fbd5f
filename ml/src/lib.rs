//! Machine-learning side of olsim: Datanet data with ground truth, base models, LoRA
//! fine-tuning (Model Factory), OpenLoRA serving and Proof of Attribution.
//!
//! Built so far: [`data`] (Datanet generators with ground truth) and [`suffix`] (the
//! suffix-array index for span attribution). Models, LoRA, serving and gradient influence
//! come with the ML and attribution issues. This crate never depends on `olsim-chain`.

pub mod data;
pub mod suffix;
