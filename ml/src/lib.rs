//! Machine-learning side of olsim: Datanet data with ground truth, base models, LoRA
//! fine-tuning (Model Factory), OpenLoRA serving and Proof of Attribution.
//!
//! Not built yet: see the ML and attribution issues. The crate exists so the workspace
//! layout of DESIGN.md holds from the start; it must never depend on `olsim-chain`.
