//! Ground truth for the fairness metrics (docs/metrics.md, "Ground truth"): contributor
//! values by retraining wherever every model is a classifier, the generator's count of
//! clean original items otherwise (the report says which).
//!
//! Retraining values: leave-one-contributor-out (averaged over [`LOO_SEEDS`] retraining
//! seeds) when no model has more than [`LOO_MAX_CONTRIBUTORS`] contributors, Data Banzhaf
//! over `run.truth_subsets` random contributor subsets when none has more than
//! [`BANZHAF_MAX_CONTRIBUTORS`]. Each comes with its reliability: the Spearman correlation
//! of two independent estimates (the two seeds, or the two halves of the subsets).
//!
//! File Datanets (bring your own data) have no generator truth. Under retraining their
//! contributors are valued like any other, on a test set of the file's own records held out
//! by content hash (labels as contributed; the held-out records are left out of every
//! retraining). Under generator truth they have no ground-truth value at all (`None` in the
//! report) and the label says so.

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;
use std::collections::{BTreeMap, BTreeSet};

use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, FeatureRecord};
use olsim_ml::groundtruth::{BanzhafConfig, Retrainer, ValueMetric, data_banzhaf, leave_one_out};

use super::data::DatanetState;
use super::lab::Lab;
use super::models::{ModelState, Trained};
use super::{EngineError, MlError, Work};
use crate::metrics::fairness::rank_correlation;
use crate::scenario::ModelKind;

/// Most contributing identities per model for leave-one-out retraining (one retraining
/// each, per seed).
pub const LOO_MAX_CONTRIBUTORS: usize = 16;

/// Most contributing identities per model for Data Banzhaf retraining.
pub const BANZHAF_MAX_CONTRIBUTORS: usize = 1000;

/// Retraining seeds leave-one-out values are averaged over: the model's own and the next,
/// which are also the two independent estimates behind its reliability.
pub const LOO_SEEDS: usize = 2;

/// Clean test points the retrained adapters are valued on (generated Datanets).
const LOO_TEST_POINTS: usize = 500;

/// Share of a file Datanet's records held out (by content hash) as its retraining test
/// set.
pub const FILE_HELDOUT_FRACTION: f64 = 0.25;

/// Labelled test points `(features, label)` retrained adapters are valued on.
type TestSet = Vec<(Vec<f32>, u8)>;

/// Stream name of the clean test points, and salt of the file Datanets' held-out split.
const LOO_SALT: &str = "engine/leave-one-out";

/// A contributing identity: `(datanet, contributor)`.
type Identity = (usize, ContributorId);

/// How retraining values were estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retraining {
    /// Leave-one-contributor-out, averaged over [`LOO_SEEDS`] seeds.
    LeaveOneOut,
    /// Data Banzhaf by maximum sample reuse over this many subsets.
    Banzhaf(u32),
}

/// Which ground truth a report's fairness is judged against.
pub enum Truth {
    /// Retraining values per identity, in nats of test loss, summed over the models that
    /// trained on its records.
    Retrained {
        /// The estimator.
        method: Retraining,
        /// Each identity's value.
        values: BTreeMap<Identity, f64>,
        /// Each identity's 95% bootstrap interval (Data Banzhaf only).
        intervals: BTreeMap<Identity, (f64, f64)>,
        /// Spearman correlation of two independent estimates; `None` when either has no
        /// spread.
        reliability: Option<f64>,
    },
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
        let Truth::Retrained { method, .. } = self else {
            let retrainable = format!(
                "retraining runs only when every model is a classifier on one Datanet with \
                 at most {BANZHAF_MAX_CONTRIBUTORS} contributors (and run.truth_subsets > 0)"
            );
            return match (files.is_empty(), generated) {
                (true, _) => {
                    format!("clean original items submitted (generator truth; {retrainable})")
                }
                (false, generated) => format!(
                    "{}none for file Datanets {files}: loaded data has no generator truth, \
                     and {retrainable}",
                    if generated {
                        "clean original items submitted (generator truth); "
                    } else {
                        ""
                    }
                ),
            };
        };
        let method = match method {
            Retraining::LeaveOneOut => {
                format!("leave-one-out retraining value, mean of {LOO_SEEDS} seeds")
            }
            Retraining::Banzhaf(n) => format!("Data Banzhaf retraining value, {n} subsets"),
        };
        match (files.is_empty(), generated) {
            (true, _) => format!("{method} (nats of clean-test loss)"),
            (false, true) => format!(
                "{method} (nats of test loss: fresh clean points for generated Datanets; for \
                 file Datanets {files}, records of the file held out of training, labels as \
                 contributed)"
            ),
            (false, false) => format!(
                "{method} (nats of test loss on records of the file held out of training, \
                 labels as contributed: file Datanets {files} have no generator truth)"
            ),
        }
    }

    /// Ground-truth value of contributor `c` of Datanet `n` (`net`), who submitted `items`:
    /// its retraining value (0 when no model trained on its records), or its count of
    /// clean original items; `None` under generator truth on a file Datanet.
    pub fn value(
        &self,
        n: usize,
        c: ContributorId,
        net: &DatanetState,
        items: impl Iterator<Item = u32>,
    ) -> Option<f64> {
        match self {
            Truth::Retrained { values, .. } => Some(values.get(&(n, c)).copied().unwrap_or(0.0)),
            Truth::Generator => {
                net.data.truth.as_ref()?;
                let clean_originals = items.filter(|&i| net.item_truth(i) == Some((true, true)));
                Some(clean_originals.count() as f64)
            }
        }
    }

    /// The 95% interval of contributor `c` of Datanet `n`'s value, where the estimator
    /// gives one (Data Banzhaf, for identities a model trained on).
    pub fn interval(&self, n: usize, c: ContributorId) -> Option<(f64, f64)> {
        match self {
            Truth::Retrained { intervals, .. } => intervals.get(&(n, c)).copied(),
            Truth::Generator => None,
        }
    }

    /// Spearman correlation of two independent estimates of the truth; `None` for the
    /// generator's count (exact) and when an estimate has no spread.
    pub fn reliability(&self) -> Option<f64> {
        match self {
            Truth::Retrained { reliability, .. } => *reliability,
            Truth::Generator => None,
        }
    }
}

/// Retraining values when every trained model is a single-Datanet classifier whose
/// Datanet has a test set ([`loo_test`]): leave-one-out when none has more than
/// [`LOO_MAX_CONTRIBUTORS`] contributors, Data Banzhaf over `subsets` subsets when none has
/// more than [`BANZHAF_MAX_CONTRIBUTORS`] (and `subsets > 0`); otherwise the generator's
/// truth.
pub(super) fn ground_truth<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    models: &[ModelState<B>],
    datanets: &[DatanetState],
    subsets: u32,
) -> Result<Truth, EngineError> {
    let mut largest = 0;
    for m in models {
        match &m.trained {
            None => {}
            Some(Trained::Lm(_)) => return Ok(Truth::Generator),
            Some(Trained::Classifier(c)) if m.datanets.len() == 1 => {
                largest = largest.max(contributors_of(datanets, &c.sources));
            }
            Some(Trained::Classifier(_)) => return Ok(Truth::Generator),
        }
    }
    let method = match largest {
        0 => return Ok(Truth::Generator),
        n if n <= LOO_MAX_CONTRIBUTORS => Retraining::LeaveOneOut,
        n if n <= BANZHAF_MAX_CONTRIBUTORS && subsets > 0 => Retraining::Banzhaf(subsets),
        _ => return Ok(Truth::Generator),
    };
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
    let mut values: BTreeMap<Identity, f64> = BTreeMap::new();
    let mut intervals: BTreeMap<Identity, (f64, f64)> = BTreeMap::new();
    let mut halves: [BTreeMap<Identity, f64>; LOO_SEEDS] = Default::default();
    let mut tests = tests.into_iter();
    for model in models {
        let Some(Trained::Classifier(c)) = &model.trained else {
            continue;
        };
        let (test, heldout) = tests.next().expect("one test set per trained classifier");
        let n = model.datanets[0];
        let net = &datanets[n].data;
        let fail = |source: MlError| EngineError::Model {
            model: format!("{} (ground-truth retraining)", model.name),
            source,
        };
        let records: Vec<FeatureRecord> = c
            .sources
            .iter()
            .filter(|(_, r)| !heldout.contains(r))
            .map(|&(_, r)| net.records[r as usize].clone())
            .collect();
        let mlp = model.mlp.clone().expect("classifiers have an MLP config");
        let mut retrainer = Retrainer::<B> {
            base: lab.base.get(lab.seed, &mlp, &lab.device)?,
            lora: model.lora.clone(),
            lora_seed: model.training.seed,
            train: model.training.clone(),
            records,
            test,
            metric: ValueMetric::NegTestLoss,
            device: lab.device.clone(),
        };
        match method {
            Retraining::LeaveOneOut => {
                for (k, half) in halves.iter_mut().enumerate() {
                    retrainer.lora_seed = model.training.seed.wrapping_add(k as u64);
                    retrainer.train.seed = model.training.seed.wrapping_add(k as u64);
                    let loo = leave_one_out(&retrainer).map_err(|e| fail(e.into()))?;
                    lab.compute
                        .add(Work::GroundTruth, ModelKind::Classifier, &loo.cost);
                    for (c, v) in loo.contributors.iter().zip(&loo.values) {
                        *half.entry((n, *c)).or_default() += v;
                        *values.entry((n, *c)).or_default() += v / LOO_SEEDS as f64;
                    }
                }
            }
            Retraining::Banzhaf(subsets) => {
                let name = format!("engine/ground-truth/{}", model.name);
                let config = BanzhafConfig {
                    subsets: subsets as usize,
                    seed: stream(lab.seed, &name).random(),
                };
                let b = data_banzhaf(&retrainer, &config).map_err(|e| fail(e.into()))?;
                lab.compute
                    .add(Work::GroundTruth, ModelKind::Classifier, &b.values.cost);
                for (i, c) in b.values.contributors.iter().enumerate() {
                    *values.entry((n, *c)).or_default() += b.values.values[i];
                    let (lo, hi) = b.intervals[i];
                    let interval = intervals.entry((n, *c)).or_default();
                    *interval = (interval.0 + lo, interval.1 + hi);
                    for (half, estimate) in halves.iter_mut().zip(&b.halves) {
                        *half.entry((n, *c)).or_default() += estimate[i];
                    }
                }
            }
        }
    }
    lab.timers.add(Work::GroundTruth, start);
    let [a, b] = halves;
    let (a, b): (Vec<f64>, Vec<f64>) = a.into_iter().zip(b).map(|(x, y)| (x.1, y.1)).unzip();
    let reliability = rank_correlation(&a, &b);
    Ok(Truth::Retrained {
        method,
        values,
        intervals,
        reliability,
    })
}

/// A retraining test set for `net` and the record ids it holds out of training: fresh
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
