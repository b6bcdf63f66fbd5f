//! Model Factory and OpenLoRA inside a run: the pre-trained base classifiers, fine-tuning a
//! LoRA adapter per model on its Datanets' accepted records, serving inference calls in
//! heterogeneous batches, and the influence index that attributes served outputs.

use burn::tensor::backend::{AutodiffBackend, Backend};
use std::collections::BTreeMap;

use alloy_primitives::{B256, U256, keccak256};
use burn::module::AutodiffModule;
use olsim_ml::data::ContributorId;
use olsim_ml::data::FeatureRecord;
use olsim_ml::data::rng::stream;
use olsim_ml::influence::{InfluenceConfig, InfluenceIndex, Method, train_traced_batched};
use olsim_ml::lm::LmAdapterWeights;
use olsim_ml::model::{
    AdapterJob, LoraConfig, LoraMlp, Mlp, MlpConfig, StepCost, TrainConfig, parameter_values,
};
use olsim_ml::serve::{
    AdapterStore, MlpServe, ServeError, ServeMode, ServeModel, Server, ServerConfig,
};
use olsim_ml::suffix::SuffixIndex;
use rand::RngExt;
use rayon::prelude::*;

use super::actors::{Actors, AgentId, Role};
use super::data::DatanetState;
use super::epoch::Weights;
use super::lab::{Infer, Lab};
use super::memo::{KeyBytes, TracedAdapter, TrainingMemo};
use super::{EngineError, MlError, Work, open};
use crate::scenario::{ClassifierAttribution, ModelKind, Scenario, Tier};

/// An OpenLoRA server over `model` holding the adapter of every model in `members` (put
/// into the store by `insert`, under the model's index) with a device cache that fits them
/// all, serving heterogeneous batches of up to `max_batch` requests.
pub(super) fn openlora_server<I: Backend, M: ServeModel<I>>(
    model: M,
    members: &[usize],
    max_batch: usize,
    mut insert: impl FnMut(&mut AdapterStore, usize) -> Result<(), ServeError>,
) -> Result<Server<I, M>, ServeError> {
    let mut store = AdapterStore::new(model.adapter_layout());
    for &m in members {
        insert(&mut store, m)?;
    }
    let cache_bytes = store.layout().adapter_bytes() * members.len() as u64;
    let config = ServerConfig {
        mode: ServeMode::Heterogeneous,
        max_batch,
        cache_bytes,
    };
    Server::new(model, store, config)
}

/// A model during a run.
pub struct ModelState<B: AutodiffBackend> {
    /// Scenario name (or `grant-<n>` for grant-funded models).
    pub name: String,
    /// The owner who registers it and receives the owner share.
    pub owner: AgentId,
    /// Indices of the Datanets it trains on.
    pub datanets: Vec<usize>,
    /// Price per call, OPEN (for demand).
    pub price: f64,
    /// The same price in token wei, exact ([`crate::units`]): what it registers at and
    /// what every payment for it allows.
    pub price_wei: U256,
    /// Popularity weight.
    pub weight: f64,
    /// First training epoch.
    pub train_epoch: u32,
    /// Retrain every this many epochs (0: never).
    pub retrain_every: u32,
    /// Classifier or language model.
    pub kind: ModelKind,
    /// Base MLP config (classifiers only).
    pub mlp: Option<MlpConfig>,
    /// Adapter config.
    pub lora: LoraConfig,
    /// Fine-tuning config.
    pub training: TrainConfig,
    /// Calls per epoch it brings on top of `[inference]` (grant-funded models).
    pub extra_calls: u64,
    /// The grant that funded it.
    pub grant: Option<(usize, Tier)>,
    /// On-chain id once registered.
    pub chain_id: Option<U256>,
    /// The trained adapter and what attributes its outputs.
    pub trained: Option<Trained<B>>,
    /// How many times it has been trained.
    pub version: u32,
    /// Outputs it served and outputs attributed, over the run.
    pub outputs: OutputCounts,
}

/// A model's served and attributed outputs over a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputCounts {
    /// Outputs served (one per paid call that reached a trained adapter).
    pub served: u64,
    /// Of those, outputs attributed to training data.
    pub attributed: u64,
    /// The attributed outputs' own weights where they are a sample of those served
    /// (language models); empty where every output is attributed.
    pub samples: Vec<Weights>,
}

impl OutputCounts {
    /// The sampling error of the attribution shares (docs/metrics.md, `models[]`): half
    /// the sum over contributors of the standard error of each one's share of the summed
    /// weight, estimated from the sampled outputs as a ratio estimator with the finite
    /// population correction for `samples.len()` of `served`; 0 where every output is
    /// attributed (no samples kept), `None` when nothing was attributed or fewer than two
    /// sampled outputs carry weight.
    pub fn sampling_error(&self) -> Option<f64> {
        if self.attributed == 0 {
            return None;
        }
        if self.samples.is_empty() {
            return Some(0.0);
        }
        let n = self.samples.len() as f64;
        let totals: Vec<f64> = self.samples.iter().map(|w| w.values().sum()).collect();
        let total: f64 = totals.iter().sum();
        if self.samples.len() < 2 || total <= 0.0 {
            return None;
        }
        let mut keys: Vec<_> = self.samples.iter().flat_map(|w| w.keys()).collect();
        keys.sort_unstable();
        keys.dedup();
        let finite = (1.0 - n / self.served.max(1) as f64).max(0.0);
        let mean_total = total / n;
        let errors: f64 = keys
            .into_iter()
            .map(|key| {
                let share = self.samples.iter().filter_map(|w| w.get(key)).sum::<f64>() / total;
                let squares: f64 = self
                    .samples
                    .iter()
                    .zip(&totals)
                    .map(|(w, t)| (w.get(key).copied().unwrap_or(0.0) - share * t).powi(2))
                    .sum();
                (finite * squares / (n * (n - 1.0))).sqrt() / mean_total
            })
            .sum();
        Some(errors / 2.0)
    }
}

/// A trained model of either kind.
pub enum Trained<B: AutodiffBackend> {
    /// A classifier adapter with its influence index.
    Classifier(Box<TrainedClassifier<B>>),
    /// A language-model adapter with the suffix index of its training corpus.
    Lm(Box<TrainedLm>),
}

impl<B: AutodiffBackend> Trained<B> {
    /// `keccak256` of the adapter's weights (the on-chain adapter hash).
    pub fn adapter_hash(&self) -> B256 {
        let mut bytes = Vec::new();
        match self {
            Trained::Classifier(c) => {
                for tensor in parameter_values(&c.model.adapters()) {
                    for v in tensor {
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                }
            }
            Trained::Lm(l) => bytes = l.adapter.to_bytes(),
        }
        keccak256(bytes)
    }

    /// Records (classifiers) or documents (language models) each contributing identity
    /// has in the training set: what the `volume` reward rule pays by.
    pub fn volume(&self, datanets: &[DatanetState]) -> Weights {
        let mut volume = Weights::new();
        match self {
            Trained::Classifier(c) => {
                for &(n, r) in &c.sources {
                    *volume.entry((n, datanets[n].item_author(r))).or_default() += 1.0;
                }
            }
            Trained::Lm(l) => {
                for (owner, &docs) in l.owners.iter().zip(&l.documents) {
                    *volume.entry(*owner).or_default() += docs as f64;
                }
            }
        }
        volume
    }
}

/// A trained classifier adapter, what it was trained on, and its stored training gradients.
pub struct TrainedClassifier<B: AutodiffBackend> {
    /// The fine-tuned model (autodiff backend).
    pub model: LoraMlp<B>,
    /// Training records: `(datanet index, record id)` in the index's order.
    pub sources: Vec<(usize, u32)>,
    /// Stored training gradients for attribution.
    pub index: InfluenceIndex<Infer<B>>,
    /// The keccak of the fine-tune's inputs ([`fine_tune_key`]): a retraining with the same
    /// key trains this adapter again, and builds this index again.
    pub key: B256,
}

/// A trained language-model adapter and the suffix index of its training documents.
pub struct TrainedLm {
    /// The adapter, host-side.
    pub adapter: LmAdapterWeights,
    /// Suffix array over the accepted documents it was trained on.
    pub index: SuffixIndex,
    /// Owner `(datanet, contributor)` of each index contributor id.
    pub owners: Vec<(usize, ContributorId)>,
    /// Documents of each owner in the index (same order as `owners`).
    pub documents: Vec<u64>,
}

/// What a model served this epoch.
pub enum Served {
    /// Nothing (untrained or no calls).
    Nothing,
    /// Classifier inputs.
    Inputs(Vec<Vec<f32>>),
    /// Generated token sequences (prompts excluded).
    Outputs(Vec<Vec<u32>>),
}

impl Served {
    /// Number of calls served.
    pub fn len(&self) -> usize {
        match self {
            Served::Nothing => 0,
            Served::Inputs(v) => v.len(),
            Served::Outputs(v) => v.len(),
        }
    }
}

impl<B: AutodiffBackend> ModelState<B> {
    /// The models of `[[models]]`, each owned by its developer, or by the attacker that
    /// took it over (`owners`, by `[[models]]` index).
    pub fn all(
        scenario: &Scenario,
        datanets: &[DatanetState],
        actors: &mut Actors,
        owners: &BTreeMap<usize, AgentId>,
    ) -> Result<Vec<ModelState<B>>, EngineError> {
        let mut out = Vec::new();
        for (i, m) in scenario.models.iter().enumerate() {
            let mlp = match m.kind {
                ModelKind::Classifier => Some(
                    scenario
                        .mlp_config(i)
                        .map_err(|e| EngineError::Scenario(e.to_string()))?,
                ),
                ModelKind::LanguageModel => None,
            };
            let owner = match owners.get(&i) {
                Some(&owner) => owner,
                None => actors.add(format!("{}/developer", m.name), Role::Developer),
            };
            out.push(ModelState {
                name: m.name.clone(),
                owner,
                datanets: m
                    .datanets
                    .iter()
                    .map(|n| datanet_index(datanets, n))
                    .collect::<Result<_, _>>()?,
                price: m.price,
                price_wei: open(m.price)?,
                weight: m.weight,
                train_epoch: m.train_epoch,
                retrain_every: m.retrain_every,
                kind: m.kind,
                mlp,
                lora: m.lora_config(),
                training: m.train_config(model_seed(scenario.run.seed, &m.name)),
                extra_calls: 0,
                grant: None,
                chain_id: None,
                trained: None,
                version: 0,
                outputs: OutputCounts::default(),
            });
        }
        Ok(out)
    }

    /// Whether the model is (re)trained in `epoch`.
    pub fn due(&self, epoch: u32) -> bool {
        epoch == self.train_epoch
            || (self.retrain_every > 0
                && epoch > self.train_epoch
                && (epoch - self.train_epoch).is_multiple_of(self.retrain_every))
    }
}

/// One served classifier input: the marketplace's query distribution, uniform over the
/// `[-1, 1]^dim` feature space (public: any user or attacker can sample it).
pub fn query_input(rng: &mut impl rand::Rng, dim: usize) -> Vec<f32> {
    (0..dim).map(|_| rng.random_range(-1.0f32..=1.0)).collect()
}

/// A model's own seed (adapter initialisation and shuffling), from the master seed and its
/// name, so two developers training on the same data still ship different adapters.
pub fn model_seed(seed: u64, name: &str) -> u64 {
    let h = keccak256(format!("olsim/model/{seed}/{name}"));
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// Index of the Datanet named `name`.
pub fn datanet_index(datanets: &[DatanetState], name: &str) -> Result<usize, EngineError> {
    datanets
        .iter()
        .position(|d| d.name == name)
        .ok_or_else(|| EngineError::Scenario(format!("unknown datanet `{name}`")))
}

/// The accepted records classifier `model` trains on, in the influence index's order,
/// with each one's `(datanet index, record id)`.
pub(super) fn training_records<B: AutodiffBackend>(
    model: &ModelState<B>,
    datanets: &[DatanetState],
) -> (Vec<(usize, u32)>, Vec<FeatureRecord>) {
    let mut sources = Vec::new();
    let mut records = Vec::new();
    for &n in &model.datanets {
        for &r in &datanets[n].accepted {
            sources.push((n, r));
            records.push(datanets[n].data.records[r as usize].clone());
        }
    }
    (sources, records)
}

/// A classifier to fine-tune: its index among the models, its training records and their
/// sources ([`training_records`]), the key of its inputs, and the influence index of the
/// adapter it replaces where that adapter had the same key (so the same index).
pub(super) struct ClassifierJob<B: AutodiffBackend> {
    /// Index of the model.
    pub model: usize,
    /// `(datanet index, record id)` of each training record.
    pub sources: Vec<(usize, u32)>,
    /// The training records.
    pub records: Vec<FeatureRecord>,
    /// [`fine_tune_key`] of this fine-tune.
    pub key: B256,
    /// The index of the replaced adapter, where its key is `key`.
    pub index: Option<InfluenceIndex<Infer<B>>>,
}

/// The keccak of every input of fine-tuning classifier `model` over `base` on `records`
/// (see [`super::memo`]).
pub(super) fn fine_tune_key<B: AutodiffBackend>(
    base: &Mlp<B>,
    model: &ModelState<B>,
    records: &[FeatureRecord],
    device: &B::Device,
) -> B256 {
    let mut key = KeyBytes::new::<B>("classifier", device, &model.lora, &model.training);
    key.weights(base);
    key.records(records);
    key.finish()
}

/// Fine-tunes classifiers over one shared `base` with one LoRA shape with the batched
/// multi-LoRA trainer (bit-identical to one at a time; the engine passes one classifier per
/// call, as batching does not pay on the CPU), taking from `memo` those whose inputs were
/// trained before, then builds each one's influence index (in parallel) where the job does
/// not hand one on; per job, in order, the trained classifier with its training and
/// index-precompute costs. Only reads shared state.
pub(super) fn train_classifiers<B: AutodiffBackend>(
    base: &Mlp<B>,
    method: ClassifierAttribution,
    models: &[ModelState<B>],
    jobs: Vec<ClassifierJob<B>>,
    device: &B::Device,
    memo: &TrainingMemo<B>,
) -> Result<Vec<(TrainedClassifier<B>, StepCost, StepCost)>, EngineError> {
    let fail = |m: usize| {
        move |source: MlError| EngineError::Model {
            model: models[m].name.clone(),
            source,
        }
    };
    let method = match method {
        ClassifierAttribution::Datainf => Method::DATAINF,
        ClassifierAttribution::Tracin => Method::TracIn,
        ClassifierAttribution::Exact => Method::EXACT,
    };
    let keys: Vec<B256> = jobs.iter().map(|job| job.key).collect();
    let mut trained: Vec<Option<TracedAdapter<B>>> =
        keys.iter().map(|key| memo.classifier(key)).collect();
    let untrained: Vec<usize> = (0..jobs.len()).filter(|&j| trained[j].is_none()).collect();
    if let Some(&first) = untrained.first() {
        let adapters = untrained
            .iter()
            .map(|&j| {
                let (job, model) = (&jobs[j], &models[jobs[j].model]);
                let lora = LoraMlp::new(base.clone(), &model.lora, model.training.seed)
                    .map_err(|e| fail(job.model)(e.into()))?;
                Ok(AdapterJob {
                    model: lora,
                    data: &job.records[..],
                    config: model.training.clone(),
                })
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let fresh = train_traced_batched(adapters, device)
            .map_err(|e| fail(jobs[first].model)(e.into()))?;
        for (&j, adapter) in untrained.iter().zip(fresh) {
            memo.keep_classifier(keys[j], &adapter);
            trained[j] = Some(adapter);
        }
    }
    let trained: Vec<TracedAdapter<B>> = trained.into_iter().flatten().collect();
    jobs.into_par_iter()
        .zip(trained)
        .map(|(job, (model, report, trace))| {
            // The replaced adapter's index where its inputs were these (its build's cost is
            // counted again, as a memo hit counts its training's).
            memo.count_index(job.index.is_some());
            let index = match job.index {
                Some(index) => index,
                None => {
                    let config =
                        InfluenceConfig::new(method).with_storage_for(&trace, job.records.len());
                    InfluenceIndex::<Infer<B>>::build(&trace, &job.records, &config, device)
                        .map_err(|e| fail(job.model)(e.into()))?
                }
            };
            let precompute = index.precompute_cost().clone();
            let trained = TrainedClassifier {
                model,
                sources: job.sources,
                index,
                key: job.key,
            };
            Ok((trained, report.total, precompute))
        })
        .collect()
}

/// Serves `calls[m]` inference calls of every trained classifier in heterogeneous batches
/// (one OpenLoRA server per base shape and adapter layout) and records in `served` the
/// inputs each served.
pub(super) fn serve_classifiers<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    models: &[ModelState<B>],
    epoch: u32,
    calls: &[u64],
    served: &mut [Served],
) -> Result<(), EngineError> {
    let mut inputs: Vec<Vec<Vec<f32>>> = vec![Vec::new(); models.len()];
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (m, model) in models.iter().enumerate() {
        if let (Some(Trained::Classifier(_)), Some(mlp)) = (&model.trained, &model.mlp)
            && calls[m] > 0
        {
            let key = format!("{:?}/{:?}", mlp.hidden, model.lora);
            groups.entry(key).or_default().push(m);
        }
    }
    for members in groups.values() {
        let first = &models[members[0]];
        let fail = |source: MlError| EngineError::Model {
            model: first.name.clone(),
            source,
        };
        let mlp = first.mlp.clone().expect("grouped models are classifiers");
        let base = lab.base.get(lab.seed, &mlp, &lab.device)?.valid();
        let serve_model =
            MlpServe::<Infer<B>>::new(base, &first.lora).map_err(|e| fail(e.into()))?;
        let mut server = openlora_server(serve_model, members, 256, |store, m| {
            let Some(Trained::Classifier(trained)) = &models[m].trained else {
                unreachable!("grouped models are trained classifiers");
            };
            store.insert_lora_mlp(m as u64, &trained.model)
        })
        .map_err(|e| fail(e.into()))?;
        // Requests arrive interleaved across the group's models, in a seeded order.
        let mut queue: Vec<(usize, Vec<f32>)> = Vec::new();
        for &m in members {
            let dim = mlp.input_dim;
            let mut rng = stream(
                lab.seed,
                &format!("engine/queries/{}/{epoch}", models[m].name),
            );
            for _ in 0..calls[m] {
                queue.push((m, query_input(&mut rng, dim)));
            }
        }
        let mut rng = stream(lab.seed, &format!("engine/arrivals/{epoch}"));
        for i in (1..queue.len()).rev() {
            queue.swap(i, rng.random_range(0..=i));
        }
        for chunk in queue.chunks(4096) {
            for (m, x) in chunk {
                server
                    .submit(*m as u64, x.clone())
                    .map_err(|e| fail(e.into()))?;
            }
            while let Some(batch) = server.step().map_err(|e| fail(e.into()))? {
                lab.compute
                    .add_batch(ModelKind::Classifier, &batch.cost, &batch.responses);
            }
        }
        for (m, x) in queue {
            inputs[m].push(x);
        }
    }
    for (m, x) in inputs.into_iter().enumerate() {
        if !x.is_empty() {
            served[m] = Served::Inputs(x);
        }
    }
    Ok(())
}

/// Influence of each training record of classifier `model` summed over every output it
/// served this epoch (no sampling: [`InfluenceIndex::attribute_outputs_total`]);
/// `(datanet, record, score)` per training record.
pub(super) fn attribute<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    model: &ModelState<B>,
    served: &[Vec<f32>],
) -> Result<Vec<(usize, u32, f64)>, EngineError> {
    let Some(Trained::Classifier(trained)) = &model.trained else {
        return Ok(Vec::new());
    };
    let totals = trained
        .index
        .attribute_outputs_total(served)
        .map_err(|e| EngineError::Model {
            model: model.name.clone(),
            source: e.into(),
        })?;
    lab.compute
        .add(Work::Attribution, ModelKind::Classifier, &totals.cost);
    lab.attributed += totals.outputs as u64;
    let out = trained
        .sources
        .iter()
        .zip(totals.per_record)
        .map(|(&(n, r), s)| (n, r, s))
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(values: &[(u32, f64)]) -> Weights {
        values
            .iter()
            .map(|&(c, w)| ((0, ContributorId(c)), w))
            .collect()
    }

    #[test]
    fn the_sampling_error_is_zero_without_sampling_and_shrinks_with_the_sample() {
        let census = OutputCounts {
            served: 100,
            attributed: 100,
            samples: Vec::new(),
        };
        assert_eq!(census.sampling_error(), Some(0.0));
        assert_eq!(OutputCounts::default().sampling_error(), None);
        // Every sampled output splits its weight 1:3: the shares are known exactly.
        let even = OutputCounts {
            served: 1000,
            attributed: 4,
            samples: vec![weights(&[(0, 1.0), (1, 3.0)]); 4],
        };
        assert!(even.sampling_error().unwrap().abs() < 1e-12);
        // Outputs that credit one contributor or the other: the shares are uncertain, less
        // so with more of them, and not at all once the sample is everything served.
        let mixed = |n: usize, served: u64| OutputCounts {
            served,
            attributed: n as u64,
            samples: (0..n).map(|i| weights(&[((i % 2) as u32, 1.0)])).collect(),
        };
        let small = mixed(4, 1000).sampling_error().unwrap();
        let large = mixed(64, 1000).sampling_error().unwrap();
        assert!(small > large && large > 0.0, "{small} {large}");
        // Two contributors at 1/2 each from 4 coin flips: each share's standard error is
        // sqrt((1 - 4/1000) * 4 * 0.25 / (4 * 3)) = 0.288; half their sum is 0.288.
        assert!((small - 0.2881).abs() < 1e-3, "{small}");
        assert!(mixed(64, 64).sampling_error().unwrap().abs() < 1e-12);
    }
}
