//! Retraining an adapter on a subset of the training records and valuing the result on a
//! clean held-out set.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use super::GroundTruthError;
use crate::data::{ContributorId, FeatureRecord};
use crate::model::cost::{Kernels, StepCost};
use crate::model::{Classifier, LoraConfig, LoraMlp, Mlp, TrainConfig, train};

/// What the value of a training subset measures on the clean test set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueMetric {
    /// Minus the mean softmax cross-entropy (nats): smooth, higher is better.
    NegTestLoss,
    /// Accuracy: fraction of test points classified correctly.
    Accuracy,
}

/// How a trained adapter does on the clean test set.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// Cross-entropy of every test point (nats), in test-set order.
    pub losses: Vec<f64>,
    /// Fraction classified correctly.
    pub accuracy: f64,
}

impl Evaluation {
    /// Mean cross-entropy.
    pub fn mean_loss(&self) -> f64 {
        self.losses.iter().sum::<f64>() / self.losses.len().max(1) as f64
    }

    /// The value under `metric`.
    pub fn value(&self, metric: ValueMetric) -> f64 {
        match metric {
            ValueMetric::NegTestLoss => -self.mean_loss(),
            ValueMetric::Accuracy => self.accuracy,
        }
    }
}

/// A retraining scenario: a frozen base, the adapter and training recipe, the training
/// records and a clean test set. Every subset is trained from the same adapter
/// initialisation and shuffle seed, exactly as the full adapter was.
#[derive(Clone, Debug)]
pub struct Retrainer<B: AutodiffBackend> {
    /// The pre-trained base model.
    pub base: Mlp<B>,
    /// The adapter configuration.
    pub lora: LoraConfig,
    /// Seed of the adapter initialisation.
    pub lora_seed: u64,
    /// The fine-tuning recipe.
    pub train: TrainConfig,
    /// All training records (the full set; subsets are masks over it).
    pub records: Vec<FeatureRecord>,
    /// The clean held-out set values are measured on.
    pub test: Vec<(Vec<f32>, u8)>,
    /// The value measure.
    pub metric: ValueMetric,
    /// The device training runs on.
    pub device: B::Device,
}

impl<B: AutodiffBackend> Retrainer<B> {
    /// The contributors who authored the records, ascending.
    pub fn contributors(&self) -> Vec<ContributorId> {
        let mut c: Vec<ContributorId> = self.records.iter().map(|r| r.author).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Trains a fresh adapter on the records where `keep` is true (the untrained adapter,
    /// which leaves the base's outputs unchanged, when none is kept), with the training
    /// run's cost (zero when nothing was trained).
    pub fn fit(&self, keep: &[bool]) -> Result<(LoraMlp<B>, StepCost), GroundTruthError> {
        if keep.len() != self.records.len() {
            return Err(GroundTruthError::Config(format!(
                "subset mask has {} entries for {} records",
                keep.len(),
                self.records.len()
            )));
        }
        let subset: Vec<FeatureRecord> = self
            .records
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(r, _)| r.clone())
            .collect();
        let model = LoraMlp::new(self.base.clone(), &self.lora, self.lora_seed)?;
        if subset.is_empty() {
            let cost = StepCost::new(B::name(&self.device), 0.0, Kernels::default());
            return Ok((model, cost));
        }
        let (model, report) = train(model, &subset, &self.train, &self.device)?;
        Ok((model, report.total))
    }

    /// Per-point losses and accuracy of `model` on the test set.
    pub fn evaluate(&self, model: &LoraMlp<B>) -> Result<Evaluation, GroundTruthError> {
        let (n, dim) = (self.test.len(), model.input_dim());
        let x: Vec<f32> = self.test.iter().flat_map(|e| e.0.iter().copied()).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(x, [n, dim]), &self.device);
        let logits = model
            .logits(x)
            .into_data()
            .convert::<f64>()
            .to_vec::<f64>()
            .map_err(|e| GroundTruthError::Tensor(format!("{e:?}")))?;
        let classes = model.classes();
        let mut losses = Vec::with_capacity(n);
        let mut hits = 0usize;
        for (row, (_, y)) in logits.chunks(classes).zip(&self.test) {
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = max + row.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
            losses.push(lse - row[*y as usize]);
            let arg = (0..classes)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                .expect("at least two classes");
            hits += usize::from(arg == *y as usize);
        }
        Ok(Evaluation {
            losses,
            accuracy: hits as f64 / n.max(1) as f64,
        })
    }

    /// Trains on the records of the contributors where `members` is true (indexed like
    /// [`contributors`](Self::contributors)) and returns the value and the training cost.
    pub fn value_of_contributors(
        &self,
        contributors: &[ContributorId],
        members: &[bool],
    ) -> Result<(f64, StepCost), GroundTruthError> {
        let keep: Vec<bool> = self
            .records
            .iter()
            .map(|r| {
                contributors
                    .binary_search(&r.author)
                    .is_ok_and(|i| members[i])
            })
            .collect();
        let start = Instant::now();
        let (model, mut cost) = self.fit(&keep)?;
        let value = self.evaluate(&model)?.value(self.metric);
        cost.wall_seconds = start.elapsed().as_secs_f64();
        Ok((value, cost))
    }
}
