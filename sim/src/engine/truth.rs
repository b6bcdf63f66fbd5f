//! Ground truth for the fairness metrics: leave-one-contributor-out retraining where every
//! model is a classifier small enough to retrain, the generator's count of clean original
//! items otherwise (the report says which).

use std::collections::BTreeMap;

use olsim_ml::data::{ContributorId, FeatureRecord};
use olsim_ml::groundtruth::{Retrainer, ValueMetric, leave_one_out};

use super::models::{Train, Trained};
use super::{EngineError, Sim};

/// Most contributing identities per model for leave-one-out retraining (one retraining each).
pub const LOO_MAX_CONTRIBUTORS: usize = 16;

/// Clean test points the retrained adapters are valued on.
const LOO_TEST_POINTS: usize = 500;

/// Which ground truth a report's fairness is judged against.
pub enum Truth {
    /// Leave-one-out value per `(datanet, contributor)`: the drop in the clean-test value
    /// (minus mean cross-entropy) of each model when its records are left out, summed over
    /// the models that trained on them.
    LeaveOneOut(BTreeMap<(usize, ContributorId), f64>),
    /// The generator's count of clean, original items each identity submitted.
    Generator,
}

impl Truth {
    /// The name the report gives it.
    pub fn label(&self) -> &'static str {
        match self {
            Truth::LeaveOneOut(_) => "leave-one-out retraining value (nats of clean-test loss)",
            Truth::Generator => "clean original items submitted (generator truth)",
        }
    }
}

impl Sim {
    /// Leave-one-out values when every trained model is a single-Datanet classifier with at
    /// most [`LOO_MAX_CONTRIBUTORS`] contributors in its training set; otherwise the
    /// generator's truth.
    pub(super) fn ground_truth(&mut self) -> Result<Truth, EngineError> {
        let small = self.models.iter().all(|m| match &m.trained {
            None => true,
            Some(Trained::Lm(_)) => false,
            Some(Trained::Classifier(c)) => {
                m.datanets.len() == 1 && contributors_of(self, &c.sources) <= LOO_MAX_CONTRIBUTORS
            }
        });
        if !small || self.models.iter().all(|m| m.trained.is_none()) {
            return Ok(Truth::Generator);
        }
        let start = std::time::Instant::now();
        let mut values: BTreeMap<(usize, ContributorId), f64> = BTreeMap::new();
        for m in 0..self.models.len() {
            let model = &self.models[m];
            let Some(Trained::Classifier(c)) = &model.trained else {
                continue;
            };
            let n = model.datanets[0];
            let net = &self.datanets[n].data;
            let fail = |e: String| EngineError::Model {
                model: model.name.clone(),
                message: format!("leave-one-out: {e}"),
            };
            let records: Vec<FeatureRecord> = c
                .sources
                .iter()
                .map(|&(_, r)| net.records[r as usize].clone())
                .collect();
            let test = net
                .clean_test_set(LOO_TEST_POINTS, "engine/leave-one-out")
                .ok_or_else(|| fail("the Datanet has no ground truth".into()))?;
            let mlp = model.mlp.clone().expect("classifiers have an MLP config");
            let retrainer = Retrainer::<Train> {
                base: self.base.get(self.seed, &mlp)?,
                lora: model.lora.clone(),
                lora_seed: model.training.seed,
                train: model.training.clone(),
                records,
                test,
                metric: ValueMetric::NegTestLoss,
                device: Default::default(),
            };
            let loo = leave_one_out(&retrainer).map_err(|e| fail(e.to_string()))?;
            self.compute.add("ground truth", &loo.cost);
            for (c, v) in loo.contributors.iter().zip(&loo.values) {
                *values.entry((n, *c)).or_default() += v;
            }
        }
        self.timers.add("ground truth", start);
        Ok(Truth::LeaveOneOut(values))
    }
}

/// Distinct contributors among a model's training sources.
fn contributors_of(sim: &Sim, sources: &[(usize, u32)]) -> usize {
    let mut authors: Vec<(usize, ContributorId)> = sources
        .iter()
        .map(|&(n, r)| (n, sim.datanets[n].item_truth(r).0))
        .collect();
    authors.sort_unstable();
    authors.dedup();
    authors.len()
}
