//! A standard attribution scenario: a Datanet with known contributors, a base model
//! pre-trained on the other domains, and a LoRA adapter fine-tuned on the Datanet's train
//! split with its checkpoints kept for TracIn.

use burn::tensor::backend::AutodiffBackend;

use super::GroundTruthError;
use super::retrain::{Retrainer, ValueMetric};
use crate::data::{
    Datanet, DatanetSpec, Domain, FeatureRecord, PopulationSpec, TextParams, build_population,
};
use crate::influence::{AdapterTrace, train_traced};
use crate::model::{LoraConfig, LoraMlp, Mlp, MlpConfig, TrainConfig, train};

/// Everything that defines a scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioSpec {
    /// The target domain.
    pub domain: Domain,
    /// Master seed of the data, the models and the training shuffles.
    pub seed: u64,
    /// The target Datanet's contributors.
    pub population: PopulationSpec,
    /// Hidden widths of the base MLP.
    pub hidden: Vec<usize>,
    /// Pre-training on the other three domains' default Datanets (same seed).
    pub pretrain: TrainConfig,
    /// The adapter.
    pub lora: LoraConfig,
    /// Fine-tuning on the target's train split.
    pub finetune: TrainConfig,
    /// Fraction of records held out by `Datanet::split(heldout, "scenario")`.
    pub heldout: f64,
    /// Number of clean test points (`clean_test_set(n, "scenario-test")`).
    pub test_points: usize,
}

/// A built scenario.
#[derive(Clone, Debug)]
pub struct Scenario<B: AutodiffBackend> {
    /// The target Datanet (with its ground truth).
    pub datanet: Datanet,
    /// The training records (the train split, in id order).
    pub records: Vec<FeatureRecord>,
    /// Clean test points.
    pub test: Vec<(Vec<f32>, u8)>,
    /// The pre-trained base model.
    pub base: Mlp<B>,
    /// The fine-tuned adapter's end-of-epoch checkpoints.
    pub trace: AdapterTrace,
}

fn datanet(
    domain: Domain,
    seed: u64,
    population: &PopulationSpec,
) -> Result<Datanet, GroundTruthError> {
    let bad = |e: crate::data::SpecError| GroundTruthError::Config(e.to_string());
    let contributors = build_population(seed, domain, population).map_err(bad)?;
    Datanet::generate(&DatanetSpec {
        domain,
        seed,
        contributors,
        text: TextParams::default(),
    })
    .map_err(bad)
}

impl ScenarioSpec {
    /// A small scenario for benches: `domain`'s default population, a 32×32 base MLP
    /// pre-trained for 2 epochs (batch 64), a rank-2 adapter (alpha 4) fine-tuned for
    /// `finetune_epochs` epochs (batch 32, learning rate 0.01), 20% held out and
    /// `test_points` clean test points.
    pub fn small(domain: Domain, seed: u64, finetune_epochs: usize, test_points: usize) -> Self {
        let finetune = TrainConfig {
            epochs: finetune_epochs,
            batch_size: 32,
            learning_rate: 1e-2,
            seed,
        };
        ScenarioSpec {
            domain,
            seed,
            population: PopulationSpec::default(),
            hidden: vec![32, 32],
            pretrain: TrainConfig {
                epochs: 2,
                batch_size: 64,
                ..finetune
            },
            lora: LoraConfig::new(2, 4.0),
            finetune,
            heldout: 0.2,
            test_points,
        }
    }

    /// Generates the data, pre-trains the base and fine-tunes the adapter.
    pub fn build<B: AutodiffBackend>(
        &self,
        device: &B::Device,
    ) -> Result<Scenario<B>, GroundTruthError> {
        let mut mix = Vec::new();
        for d in Domain::ALL.into_iter().filter(|&d| d != self.domain) {
            mix.extend(datanet(d, self.seed, &PopulationSpec::default())?.records);
        }
        let base =
            MlpConfig::binary(self.domain.dim(), &self.hidden).init::<B>(self.seed, device)?;
        let base = train(base, &mix, &self.pretrain, device)?.0;
        let net = datanet(self.domain, self.seed, &self.population)?;
        let records: Vec<FeatureRecord> = net
            .split(self.heldout, "scenario")
            .train
            .iter()
            .map(|id| net.records[id.0 as usize].clone())
            .collect();
        let test = net
            .clean_test_set(self.test_points, "scenario-test")
            .ok_or_else(|| GroundTruthError::Config("the Datanet has no ground truth".into()))?;
        let model = LoraMlp::new(base.clone(), &self.lora, self.seed)?;
        let (_, _, trace) = train_traced(model, &records, &self.finetune, device)
            .map_err(|e| GroundTruthError::Config(format!("fine-tuning: {e}")))?;
        Ok(Scenario {
            datanet: net,
            records,
            test,
            base,
            trace,
        })
    }
}

impl<B: AutodiffBackend> Scenario<B> {
    /// A retrainer of this scenario (same base, adapter seed and recipe as `spec`) valuing
    /// subsets by `metric` on the clean test points.
    pub fn retrainer(
        &self,
        spec: &ScenarioSpec,
        metric: ValueMetric,
        device: &B::Device,
    ) -> Retrainer<B> {
        Retrainer {
            base: self.base.clone(),
            lora: spec.lora.clone(),
            lora_seed: spec.seed,
            train: spec.finetune.clone(),
            records: self.records.clone(),
            test: self.test.clone(),
            metric,
            device: device.clone(),
        }
    }
}
