//! Ground truth by retraining and fidelity measures for attribution.
//!
//! A [`Retrainer`] trains a fresh LoRA adapter (same initialisation, same recipe) on any
//! subset of the training records and values it on a clean held-out set: minus the mean
//! test cross-entropy ([`ValueMetric::NegTestLoss`]) or accuracy. On it rest
//! leave-one-contributor-out ([`leave_one_out`]), truncated Monte Carlo Shapley over
//! contributors ([`tmc_shapley`], permutations from the named stream
//! `"groundtruth/tmc-shapley/permutations"`, truncation tolerance stated in
//! [`TmcConfig`]) and Data Banzhaf by maximum sample reuse ([`data_banzhaf`], a cost in
//! retrainings that does not grow with the number of contributors). These are the honest references attribution scores are judged against,
//! never the scores themselves.
//!
//! Fidelity measures ([`fidelity`]): Spearman correlation, AUC of detecting bad records
//! from their scores, and the linear datamodeling score ([`lds`]) over random subsets.
//! [`ScenarioSpec`] builds a standard scenario (Datanet, pre-trained base, fine-tuned
//! adapter with checkpoints) for tests and benches.
//! Retraining is only feasible for small scenarios: its cost is reported as a
//! [`StepCost`](crate::model::StepCost) (measured wall time, counted training FLOPs).

pub mod banzhaf;
pub mod fidelity;
pub mod retrain;
pub mod scenario;
pub mod shapley;

#[cfg(test)]
mod tests;

pub use banzhaf::{BanzhafConfig, BanzhafValues, data_banzhaf};
pub use fidelity::{
    LdsConfig, LdsReport, ascending, auc, lds, pearson, ranks, ranks_of_copies, spearman,
};
pub use retrain::{Evaluation, Retrainer, ValueMetric};
pub use scenario::{Scenario, ScenarioSpec};
pub use shapley::{ContributorValues, TmcConfig, leave_one_out, tmc_shapley};

use crate::model::ModelError;

/// Errors from retraining or measuring fidelity.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GroundTruthError {
    /// Building or training a model failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// An argument is invalid.
    #[error("invalid ground-truth config: {0}")]
    Config(String),
    /// Reading a tensor back from the device failed.
    #[error("reading a tensor from the device: {0}")]
    Tensor(String),
}
