//! The ML side of a run: the device models run on, the shared base models, and the
//! compute and wall-clock ledgers of training, serving, attribution and ground truth. The
//! stages that train, serve or attribute take a [`Lab`] with the models and Datanets they
//! work on.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::data::{
    Datanet, DatanetSpec, Domain, FeatureRecord, PopulationSpec, TextParams, build_population,
};
use olsim_ml::lm::{Lm, Tokenizer};
use olsim_ml::model::cost::{Counted, DeviceProfile, Kernels, Precision};
use olsim_ml::model::{Mlp, MlpConfig, StepCost, TrainConfig, train};
use olsim_ml::serve::Response;

use super::memo::TrainingMemo;
use super::{EngineError, MlError, Timers, Work};
use crate::scenario::ModelKind;

/// Where and with what a run's models are trained, served and attributed.
pub struct Lab<B: AutodiffBackend> {
    /// The burn device of backend `B`.
    pub device: B::Device,
    /// The run's seed (every model's randomness derives from it).
    pub seed: u64,
    /// Pre-trained base classifiers, by hidden-layer shape.
    pub base: BaseModels<B>,
    /// The shared tokenizer and language-model base, once a language model trains.
    pub lm: Option<LmWorld<B>>,
    /// Counted work and measured seconds per kind of work, and modelled serving per model.
    pub compute: Compute,
    /// Wall-clock seconds per kind of work.
    pub timers: Timers,
    /// Inference calls served so far.
    pub served: u64,
    /// Served outputs attributed so far.
    pub attributed: u64,
    /// Fine-tunes already done in this run or the run it is a counterfactual of.
    pub memo: Arc<TrainingMemo<B>>,
}

impl<B: AutodiffBackend> Lab<B> {
    /// A lab on `device` for a run of seed `seed`, with nothing trained yet, that takes
    /// fine-tunes done before from `memo` and keeps its own there.
    pub fn new(device: B::Device, seed: u64, memo: Arc<TrainingMemo<B>>) -> Self {
        Self {
            device,
            seed,
            base: BaseModels::default(),
            lm: None,
            compute: Compute::default(),
            timers: Timers::default(),
            served: 0,
            attributed: 0,
            memo,
        }
    }
}

/// The inference backend under training backend `B` (serving and attribution run on it).
pub(super) type Infer<B> = <B as AutodiffBackend>::InnerBackend;

/// The shared tokenizer and pre-trained base of a run's language models.
pub struct LmWorld<B: AutodiffBackend> {
    /// The tokenizer over the generic mix and every text Datanet.
    pub tokenizer: Tokenizer,
    /// The pre-trained base, on the inference backend.
    pub base: Lm<Infer<B>>,
}

/// Pre-trained base classifiers, one per hidden-layer shape, trained once per run on a
/// generic mix of all four domains (generated from the run's seed, never from the
/// scenario's Datanets). Base pre-training is shared infrastructure, like the language
/// model's disk-cached base: the report's compute covers fine-tuning, serving and
/// attribution only.
pub struct BaseModels<B: AutodiffBackend> {
    bases: BTreeMap<Vec<usize>, Mlp<B>>,
}

impl<B: AutodiffBackend> Default for BaseModels<B> {
    fn default() -> Self {
        Self {
            bases: BTreeMap::new(),
        }
    }
}

impl<B: AutodiffBackend> BaseModels<B> {
    /// The base of shape `config`, pre-training it on first use.
    pub fn get(
        &mut self,
        seed: u64,
        config: &MlpConfig,
        device: &B::Device,
    ) -> Result<Mlp<B>, EngineError> {
        let key = config.hidden.clone();
        if let Some(base) = self.bases.get(&key) {
            return Ok(base.clone());
        }
        let fail = |source: MlError| EngineError::Model {
            model: format!("base {:?}", config.hidden),
            source,
        };
        let mut mix: Vec<FeatureRecord> = Vec::new();
        for domain in [
            Domain::Finance,
            Domain::Healthcare,
            Domain::Depin,
            Domain::Gaming,
        ] {
            let pop = PopulationSpec {
                honest: 6,
                label_flip: 0,
                backdoor: 0,
                spammer: 0,
                copycat: 0,
                ..PopulationSpec::default()
            };
            let base_seed = seed ^ 0xba5e;
            let contributors =
                build_population(base_seed, domain, &pop).map_err(|e| fail(e.into()))?;
            let net = Datanet::generate(&DatanetSpec {
                domain,
                seed: base_seed,
                contributors,
                text: TextParams::default(),
            })
            .map_err(|e| fail(e.into()))?;
            mix.extend(net.records);
        }
        let model = config.init::<B>(seed, device).map_err(|e| fail(e.into()))?;
        let cfg = TrainConfig {
            epochs: 4,
            batch_size: 64,
            learning_rate: 1e-2,
            seed,
        };
        let (base, _) = train(model, &mix, &cfg, device).map_err(|e| fail(e.into()))?;
        self.bases.insert(key, base.clone());
        Ok(base)
    }
}

/// Device profile compute is modelled on when no GPU ran.
pub const COST_PROFILE: &str = "h100-sxm";

/// The [`COST_PROFILE`] device profile.
pub fn cost_profile() -> &'static DeviceProfile {
    DeviceProfile::by_name(COST_PROFILE).expect("a built-in profile")
}

/// Counted work and measured seconds per compute stage, and the modelled serving cost of
/// each model's inferences.
#[derive(Clone, Debug, Default)]
pub struct Compute {
    /// One line per kind of work and device, in first-use order.
    pub lines: Vec<ComputeLine>,
    /// Per model (by index): its served inferences and their modelled cost.
    pub served: BTreeMap<usize, ServedCost>,
}

/// Inferences of one model served in batches, and their share of the batches' modelled
/// cost on [`COST_PROFILE`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServedCost {
    /// Inferences served (decoded, for a language model).
    pub inferences: u64,
    /// Their modelled USD: each batch's roofline cost split equally among its requests.
    pub usd: f64,
}

/// Counted work and measured seconds of one kind of work for one kind of model on one
/// device.
#[derive(Clone, Debug)]
pub struct ComputeLine {
    /// What the compute was for.
    pub work: Work,
    /// The kind of model it was for.
    pub models: ModelKind,
    /// The device (burn backend) it ran on, or how it was modelled.
    pub device: String,
    /// Counted FLOPs, launches and bytes.
    pub counted: Counted,
    /// Measured wall-clock seconds; `None` for a line that was modelled, not run (the
    /// language models' calls beyond the decoded ones).
    pub seconds: Option<f64>,
}

impl Compute {
    /// Adds one step's cost to `work` for `models` on the step's device.
    pub fn add(&mut self, work: Work, models: ModelKind, cost: &StepCost) {
        let line = self.line(work, models, &cost.device, Some(0.0));
        line.counted += cost.kernels();
        line.seconds = line.seconds.map(|s| s + cost.wall_seconds);
    }

    /// Adds `work` for `models` that was modelled rather than run, under `source` (how it
    /// was modelled): counted, with no measured seconds.
    pub fn add_modelled(&mut self, work: Work, models: ModelKind, source: &str, counted: Kernels) {
        self.line(work, models, source, None).counted += counted;
    }

    /// The line of `work` for `models` on `device`, first added (with `seconds`) if new.
    fn line(
        &mut self,
        work: Work,
        models: ModelKind,
        device: &str,
        seconds: Option<f64>,
    ) -> &mut ComputeLine {
        let at = match self
            .lines
            .iter()
            .position(|l| l.work == work && l.models == models && l.device == device)
        {
            Some(at) => at,
            None => {
                self.lines.push(ComputeLine {
                    work,
                    models,
                    device: device.to_string(),
                    counted: Counted::default(),
                    seconds,
                });
                self.lines.len() - 1
            }
        };
        &mut self.lines[at]
    }

    /// Adds one served batch of `models` to the serving line and splits its modelled cost
    /// equally among its responses' models (a response's adapter is its model's index).
    pub fn add_batch<O>(&mut self, models: ModelKind, cost: &StepCost, responses: &[Response<O>]) {
        self.add(Work::Serving, models, cost);
        let usd = cost_profile()
            .model(cost.kernels().into(), Precision::F32)
            .expect("every profile has f32 figures")
            .usd;
        let share = usd / responses.len().max(1) as f64;
        for r in responses {
            let served = self.served.entry(r.adapter as usize).or_default();
            served.inferences += 1;
            served.usd += share;
        }
    }
}
