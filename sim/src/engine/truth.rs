//! Ground truth for the fairness metrics: leave-one-contributor-out retraining where every
//! model is a classifier small enough to retrain, the generator's count of clean original
//! items otherwise (the report says which).
//!
//! File Datanets (bring your own data) have no generator truth. Under leave-one-out their
//! contributors are valued like any other, on a test set of the file's own records held out
//! by content hash (labels as contributed; the held-out records are left out of every
//! retraining). Under generator truth they have no ground-truth value at all (`None` in the
//! report) and the label says so.

use burn::tensor::backend::AutodiffBackend;
use std::collections::{BTreeMap, BTreeSet};

use olsim_ml::data::{ContributorId, FeatureRecord};
use olsim_ml::groundtruth::{Retrainer, ValueMetric, leave_one_out};

use super::data::DatanetState;
use super::lab::Lab;
use super::models::{ModelState, Trained};
use super::{EngineError, MlError, Work};

/// Most contributing identities per model for leave-one-out retraining (one retraining each).
pub const LOO_MAX_CONTRIBUTORS: usize = 16;

/// Clean test points the retrained adapters are valued on (generated Datanets).
const LOO_TEST_POINTS: usize = 500;

/// Share of a file Datanet's records held out (by content hash) as its leave-one-out test
/// set.
pub const FILE_HELDOUT_FRACTION: f64 = 0.25;

/// Labelled test points `(features, label)` retrained adapters are valued on.
type TestSet = Vec<(Vec<f32>, u8)>;

/// Stream name of the clean test points, and salt of the file Datanets' held-out split.
const LOO_SALT: &str = "engine/leave-one-out";

/// Which ground truth a report's fairness is judged against.
pub enum Truth {
    /// Leave-one-out value per `(datanet, contributor)`: the drop in the test value (minus
    /// mean cross-entropy) of each model when its records are left out, summed over the
    /// models that trained on them.
    LeaveOneOut(BTreeMap<(usize, ContributorId), f64>),
    /// The generator's count of clean, original items each identity submitted (none for
    /// file Datanets).
    Generator,
}

impl Truth {
    /// The name the report gives it; it names the file Datanets among `datanets` and what
    /// they were judged against (or that they have no ground truth).
    pub fn label(&self, datanets: &[DatanetState]) -> String {
        let files: Vec<String> = datanets
            .iter()
            .filter(|d| d.data.truth.is_none())
            .map(|d| format!("`{}`", d.name))
            .collect();
        let files = files.join(", ");
        let generated = datanets.iter().any(|d| d.data.truth.is_some());
        match (self, files.is_empty(), generated) {
            (Truth::LeaveOneOut(_), true, _) => {
                "leave-one-out retraining value (nats of clean-test loss)".into()
            }
            (Truth::LeaveOneOut(_), false, true) => format!(
                "leave-one-out retraining value (nats of test loss: fresh clean points for \
                 generated Datanets; for file Datanets {files}, records of the file held out \
                 of training, labels as contributed)"
            ),
            (Truth::LeaveOneOut(_), false, false) => format!(
                "leave-one-out retraining value (nats of test loss on records of the file held \
                 out of training, labels as contributed: file Datanets {files} have no \
                 generator truth)"
            ),
            (Truth::Generator, true, _) => {
                "clean original items submitted (generator truth)".into()
            }
            (Truth::Generator, false, generated) => format!(
                "{}none for file Datanets {files}: loaded data has no generator truth, and \
                 leave-one-out retraining runs only when every model is a classifier on one \
                 Datanet with at most {LOO_MAX_CONTRIBUTORS} contributors",
                if generated {
                    "clean original items submitted (generator truth); "
                } else {
                    ""
                }
            ),
        }
    }

    /// Ground-truth value of contributor `c` of Datanet `n` (`net`), who submitted `items`:
    /// its leave-one-out value (0 when no model trained on its records), or its count of
    /// clean original items; `None` under generator truth on a file Datanet.
    pub fn value(
        &self,
        n: usize,
        c: ContributorId,
        net: &DatanetState,
        items: impl Iterator<Item = u32>,
    ) -> Option<f64> {
        match self {
            Truth::LeaveOneOut(values) => Some(values.get(&(n, c)).copied().unwrap_or(0.0)),
            Truth::Generator => {
                net.data.truth.as_ref()?;
                let clean_originals = items.filter(|&i| net.item_truth(i) == Some((true, true)));
                Some(clean_originals.count() as f64)
            }
        }
    }
}

/// Leave-one-out values when every trained model is a single-Datanet classifier with at
/// most [`LOO_MAX_CONTRIBUTORS`] contributors in its training set and every such
/// Datanet has a test set ([`loo_test`]); otherwise the generator's truth.
pub(super) fn ground_truth<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    models: &[ModelState<B>],
    datanets: &[DatanetState],
) -> Result<Truth, EngineError> {
    let small = models.iter().all(|m| match &m.trained {
        None => true,
        Some(Trained::Lm(_)) => false,
        Some(Trained::Classifier(c)) => {
            m.datanets.len() == 1 && contributors_of(datanets, &c.sources) <= LOO_MAX_CONTRIBUTORS
        }
    });
    if !small || models.iter().all(|m| m.trained.is_none()) {
        return Ok(Truth::Generator);
    }
    let mut tests = Vec::new();
    for model in models {
        if let Some(Trained::Classifier(_)) = &model.trained {
            match loo_test(&datanets[model.datanets[0]]) {
                Some(test) => tests.push(test),
                None => return Ok(Truth::Generator),
            }
        }
    }
    let start = std::time::Instant::now();
    let mut values: BTreeMap<(usize, ContributorId), f64> = BTreeMap::new();
    let mut tests = tests.into_iter();
    for model in models {
        let Some(Trained::Classifier(c)) = &model.trained else {
            continue;
        };
        let (test, heldout) = tests.next().expect("one test set per trained classifier");
        let n = model.datanets[0];
        let net = &datanets[n].data;
        let fail = |source: MlError| EngineError::Model {
            model: format!("{} (leave-one-out retraining)", model.name),
            source,
        };
        let records: Vec<FeatureRecord> = c
            .sources
            .iter()
            .filter(|(_, r)| !heldout.contains(r))
            .map(|&(_, r)| net.records[r as usize].clone())
            .collect();
        let mlp = model.mlp.clone().expect("classifiers have an MLP config");
        let retrainer = Retrainer::<B> {
            base: lab.base.get(lab.seed, &mlp, &lab.device)?,
            lora: model.lora.clone(),
            lora_seed: model.training.seed,
            train: model.training.clone(),
            records,
            test,
            metric: ValueMetric::NegTestLoss,
            device: lab.device.clone(),
        };
        let loo = leave_one_out(&retrainer).map_err(|e| fail(e.into()))?;
        lab.compute.add(Work::GroundTruth, &loo.cost);
        for (c, v) in loo.contributors.iter().zip(&loo.values) {
            *values.entry((n, *c)).or_default() += v;
        }
    }
    lab.timers.add(Work::GroundTruth, start);
    Ok(Truth::LeaveOneOut(values))
}

/// A leave-one-out test set for `net` and the record ids it holds out of training: fresh
/// clean points labelled by the true function on a generated Datanet (nothing held out); on
/// a file Datanet, its records held out by content hash ([`FILE_HELDOUT_FRACTION`]) with
/// their contributed labels. `None` when there is none (a file too small to hold any out).
fn loo_test(net: &DatanetState) -> Option<(TestSet, BTreeSet<u32>)> {
    if net.data.truth.is_some() {
        let test = net.data.clean_test_set(LOO_TEST_POINTS, LOO_SALT)?;
        return Some((test, BTreeSet::new()));
    }
    let heldout: BTreeSet<u32> = net
        .data
        .split(FILE_HELDOUT_FRACTION, LOO_SALT)
        .heldout
        .iter()
        .map(|r| r.0)
        .collect();
    let test: TestSet = heldout
        .iter()
        .map(|&r| {
            let record = &net.data.records[r as usize];
            (record.features.clone(), record.label)
        })
        .collect();
    (!test.is_empty()).then_some((test, heldout))
}

/// Distinct contributors among a model's training sources.
fn contributors_of(datanets: &[DatanetState], sources: &[(usize, u32)]) -> usize {
    let mut authors: Vec<(usize, ContributorId)> = sources
        .iter()
        .map(|&(n, r)| (n, datanets[n].item_author(r)))
        .collect();
    authors.sort_unstable();
    authors.dedup();
    authors.len()
}
