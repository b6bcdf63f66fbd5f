//! Work shared by a run and its counterfactual runs: fine-tuning results
//! ([`TrainingMemo`]) and signatures ([`SignatureMemo`], see `olsim_chain::signatures`),
//! gathered in [`RunMemos`].
//!
//! A counterfactual run ([`super::counterfactual`]) repeats the whole run with one attack
//! changed, so most of its models see exactly the data they saw in the run proper: the
//! sybils' change touches one Datanet, the copycats' another. Fine-tuning is a pure
//! function of its inputs (the base weights, the training data in order, the LoRA shape,
//! the recipe and its seed, the backend), so a fine-tune whose inputs hash to a key
//! already trained is taken from here instead of trained again: the same adapter, trace
//! and report, bit for bit, in a fraction of the time. The key is a keccak of every
//! input's bytes, never of a name or a version number, so a change to any input trains
//! anew. Fine-tune entries are small (adapters and their per-epoch snapshots, not the
//! influence indexes, which each run builds itself); signatures are capped (see
//! `olsim_chain::signatures`). Both live as long as the run and its counterfactuals.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use alloy_primitives::{B256, keccak256};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use olsim_chain::SignatureMemo;
use olsim_ml::data::FeatureRecord;
use olsim_ml::influence::AdapterTrace;
use olsim_ml::lm::FineTuned;
use olsim_ml::model::{LoraConfig, LoraMlp, TrainConfig, TrainReport};

use crate::report::{FineTuneCounts, IndexCounts};

/// What a run shares with its counterfactual runs.
pub(super) struct RunMemos<B: AutodiffBackend> {
    /// Fine-tunes, by their inputs.
    pub training: Arc<TrainingMemo<B>>,
    /// Signatures, by signer and transaction; `None` where no counterfactual run follows
    /// (keeping them would only take memory).
    pub signatures: Option<Arc<SignatureMemo>>,
}

/// A trained classifier adapter as the influence index needs it.
pub(super) type TracedAdapter<B> = (LoraMlp<B>, TrainReport, AdapterTrace);

/// Fine-tuning results by the keccak of their inputs (see the module docs), with how many
/// fine-tunes were trained and how many taken from here, and how many influence indexes
/// were built and how many handed on.
pub(super) struct TrainingMemo<B: AutodiffBackend> {
    classifiers: Mutex<HashMap<B256, TracedAdapter<B>>>,
    lms: Mutex<HashMap<B256, FineTuned>>,
    counts: Mutex<FineTuneCounts>,
    indexes: Mutex<IndexCounts>,
}

impl<B: AutodiffBackend> Default for TrainingMemo<B> {
    fn default() -> Self {
        Self {
            classifiers: Mutex::default(),
            lms: Mutex::default(),
            counts: Mutex::default(),
            indexes: Mutex::default(),
        }
    }
}

impl<B: AutodiffBackend> TrainingMemo<B> {
    /// The classifier adapter trained under `key`, if one was (counted as reused).
    pub fn classifier(&self, key: &B256) -> Option<TracedAdapter<B>> {
        self.take(&self.classifiers, key)
    }

    /// Keeps the classifier adapter just trained under `key` (counted as trained).
    pub fn keep_classifier(&self, key: B256, trained: &TracedAdapter<B>) {
        self.keep(&self.classifiers, key, trained);
    }

    /// The language-model fine-tune under `key`, or `train`'s, kept for next time. The
    /// lock is not held while training, so different keys train concurrently.
    pub fn lm<E>(
        &self,
        key: B256,
        train: impl FnOnce() -> Result<FineTuned, E>,
    ) -> Result<FineTuned, E> {
        if let Some(tuned) = self.take(&self.lms, &key) {
            return Ok(tuned);
        }
        let tuned = train()?;
        self.keep(&self.lms, key, &tuned);
        Ok(tuned)
    }

    /// Fine-tunes trained and reused so far, of both kinds.
    pub fn counts(&self) -> FineTuneCounts {
        *lock(&self.counts)
    }

    /// Counts a classifier influence index: built, or handed on from the adapter it
    /// replaces (`reused`).
    pub fn count_index(&self, reused: bool) {
        let mut counts = lock(&self.indexes);
        match reused {
            true => counts.reused += 1,
            false => counts.built += 1,
        }
    }

    /// Influence indexes built and handed on so far.
    pub fn index_counts(&self) -> IndexCounts {
        *lock(&self.indexes)
    }

    /// The entry of `map` under `key`, counted as reused where there is one.
    fn take<T: Clone>(&self, map: &Mutex<HashMap<B256, T>>, key: &B256) -> Option<T> {
        let found = lock(map).get(key).cloned();
        if found.is_some() {
            lock(&self.counts).reused += 1;
        }
        found
    }

    /// Keeps `trained` in `map` under `key`, counted as trained.
    fn keep<T: Clone>(&self, map: &Mutex<HashMap<B256, T>>, key: B256, trained: &T) {
        lock(map).insert(key, trained.clone());
        lock(&self.counts).trained += 1;
    }
}

/// The map behind `mutex`; a panic elsewhere while it was held leaves only whole entries,
/// so the map is still good.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Bytes of every input of a fine-tune, hashed once they are all in.
pub(super) struct KeyBytes(Vec<u8>);

impl KeyBytes {
    /// A key for fine-tunes of `kind` (`"classifier"`, `"lm"`) on `device`, with `lora` and
    /// `training` (which holds the shuffle seed).
    pub fn new<D: Backend>(
        kind: &str,
        device: &D::Device,
        lora: &LoraConfig,
        training: &TrainConfig,
    ) -> Self {
        let mut key = KeyBytes(Vec::new());
        // Debug output of these configs spells every field, floats at full precision.
        key.text(&format!(
            "olsim/memo/v1/{kind}/{}/{lora:?}/{training:?}",
            D::name(device)
        ));
        key
    }

    /// Adds a length-prefixed string.
    pub fn text(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Adds length-prefixed bytes.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.0.extend_from_slice(bytes);
    }

    /// Adds every float parameter of `module` (a base model): its shape and its values'
    /// bytes, in the module's visiting order.
    pub fn weights<D: Backend, M: Module<D>>(&mut self, module: &M) {
        module.visit(&mut Weights(self));
    }

    /// Adds the records a classifier trains on, in order: what training reads of each
    /// (its features' bits and its label).
    pub fn records(&mut self, records: &[FeatureRecord]) {
        self.0
            .extend_from_slice(&(records.len() as u64).to_le_bytes());
        for r in records {
            self.0
                .extend_from_slice(&(r.features.len() as u32).to_le_bytes());
            for f in &r.features {
                self.0.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            self.0.push(r.label);
        }
    }

    /// Adds token documents, in order.
    pub fn documents(&mut self, docs: &[Vec<u32>]) {
        self.0.extend_from_slice(&(docs.len() as u64).to_le_bytes());
        for doc in docs {
            self.0.extend_from_slice(&(doc.len() as u32).to_le_bytes());
            for t in doc {
                self.0.extend_from_slice(&t.to_le_bytes());
            }
        }
    }

    /// The key: keccak of everything added.
    pub fn finish(self) -> B256 {
        keccak256(&self.0)
    }
}

/// Feeds a module's float parameters into a key ([`KeyBytes::weights`]).
struct Weights<'a>(&'a mut KeyBytes);

impl<B: Backend> ModuleVisitor<B> for Weights<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let data = param.val().into_data();
        self.0.text(&format!("{:?}", data.shape));
        self.0.bytes(data.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, NdArray};

    use super::super::counterfactual::{copycats_withheld, sybils_as_one};
    use super::super::{RunOptions, simulate};
    use super::*;
    use crate::report::digest_of;
    use crate::scenario::Scenario;

    type B = Autodiff<NdArray<f32>>;

    /// A classifier Datanet with sybils and a text Datanet with copycats: each
    /// counterfactual can reach at most one model's data and leaves the other's alone.
    const SCENARIO: &str = r#"
[run]
name = "memo"
seed = 5
epochs = 3

[tokenomics]
review_quorum = 2

[[datanets]]
name = "signals"
domain = "finance"
task = "classification"

[datanets.contributors]
count = 6
records = [10, 20]

[datanets.reviewers]
count = 2

[[datanets]]
name = "notes"
domain = "healthcare"
task = "text"

[datanets.contributors]
count = 6
documents = [2, 4]

[datanets.reviewers]
count = 2

[[models]]
name = "direction"
kind = "classifier"
datanets = ["signals"]
hidden = [8]
retrain_every = 1

[models.training]
epochs = 2
batch_size = 16

[[models]]
name = "notes-lm"
kind = "language_model"
datanets = ["notes"]
retrain_every = 1

[inference]
calls_per_epoch = 60
users = 3
calls_per_payment = 20

[[attackers]]
kind = "sybil"
datanet = "signals"
count = 1
identities = 3

[[attackers]]
kind = "copycat"
datanet = "notes"
count = 1
"#;

    /// Each counterfactual run, given the fine-tunes and signatures of the run proper,
    /// takes those whose inputs it shares and still reports exactly what it reports on its
    /// own; where its change reaches a model's training data (here, sybils as one identity
    /// have their data reviewed as one contribution), that model trains anew.
    #[test]
    fn a_counterfactual_with_the_runs_memos_reports_what_it_reports_alone() {
        let scenario = Scenario::parse("memo.toml", SCENARIO).expect("valid scenario");
        let device = Default::default();
        let quiet = RunOptions::default();
        let memos = || RunMemos {
            training: Arc::new(TrainingMemo::<B>::default()),
            signatures: Some(Arc::new(SignatureMemo::default())),
        };
        let signatures = |m: &RunMemos<B>| m.signatures.as_ref().expect("kept").counts();
        let shared = memos();
        simulate::<B>(&scenario, &quiet, &device, false, &shared).expect("the run");
        // Every contributor arrives in epoch 0: the classifier's retrainings in epochs 1 and
        // 2 see its first training's data, and hand on its index.
        let indexes = shared.training.index_counts();
        assert_eq!((indexes.built, indexes.reused), (1, 2), "{indexes:?}");
        let (mut anew, mut taken_from_run) = (Vec::new(), Vec::new());
        for changed in [sybils_as_one(&scenario), copycats_withheld(&scenario)] {
            let changed = changed.expect("the scenario has both attacks");
            let own = memos();
            let alone = simulate::<B>(&changed, &quiet, &device, false, &own).expect("alone");
            let (before, signed_before) = (shared.training.counts(), signatures(&shared));
            let after_run =
                simulate::<B>(&changed, &quiet, &device, false, &shared).expect("after the run");
            assert_eq!(
                digest_of(&after_run.report.result),
                digest_of(&alone.report.result)
            );
            let (after, alone) = (shared.training.counts(), own.training.counts());
            let trained = after.trained - before.trained;
            let reused = after.reused - before.reused;
            // As many fine-tunes as alone, more of them reused.
            assert_eq!(trained + reused, alone.trained + alone.reused);
            assert!(
                reused > alone.reused,
                "{reused} reused, as many as alone: the run's fine-tunes were never used"
            );
            anew.push(trained);
            // As many signatures as alone.
            let (signed_after, signed_alone) = (signatures(&shared), signatures(&own));
            let made = signed_after.made - signed_before.made;
            let taken = signed_after.reused - signed_before.reused;
            assert_eq!(made + taken, signed_alone.made + signed_alone.reused);
            taken_from_run.push(taken.saturating_sub(signed_alone.reused));
        }
        assert!(
            anew.iter().any(|&n| n > 0),
            "no change reached a model: {anew:?}"
        );
        // Sybils as one change the agents funded at setup, and with them every block's
        // base fee and so every later fee cap: nothing signed matches. Withheld copycats
        // are still funded, so the run's early transactions match.
        assert!(
            taken_from_run.iter().any(|&n| n > 0),
            "no signature of the run was reused: {taken_from_run:?}"
        );
    }
}
