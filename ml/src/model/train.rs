//! Mini-batch Adam training, prediction and evaluation.

use std::time::Instant;

use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;

use super::ModelError;
use super::cost::{Kernels, StepCost, adam, softmax_cross_entropy};
use crate::data::FeatureRecord;
use crate::data::rng::{Stream, stream};

/// A labelled feature vector: Datanet records and `(features, label)` pairs.
pub trait Example {
    /// The feature vector.
    fn features(&self) -> &[f32];
    /// The class label.
    fn label(&self) -> u8;
}

impl Example for FeatureRecord {
    fn features(&self) -> &[f32] {
        &self.features
    }
    fn label(&self) -> u8 {
        self.label
    }
}

impl Example for (Vec<f32>, u8) {
    fn features(&self) -> &[f32] {
        &self.0
    }
    fn label(&self) -> u8 {
        self.1
    }
}

/// A model mapping feature batches to class logits, with its analytic cost.
pub trait Classifier<B: Backend>: Module<B> {
    /// Logits `[batch, classes]` of a batch `[batch, input_dim]`.
    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2>;
    /// Number of input features.
    fn input_dim(&self) -> usize;
    /// Number of classes.
    fn classes(&self) -> usize;
    /// Forward kernels of a batch of `batch` examples, up to the logits (see
    /// [`cost`](super::cost)).
    fn forward_kernels(&self, batch: usize) -> Kernels;
    /// Backward kernels of a batch of `batch` examples, from the logits' gradient.
    fn backward_kernels(&self, batch: usize) -> Kernels;
    /// Number of parameters the optimizer updates.
    fn trainable_params(&self) -> u64;
    /// Number of tensors those parameters are held in (one Adam launch each).
    fn trainable_tensors(&self) -> usize;

    /// Analytic forward FLOPs for one example.
    fn forward_flops_per_example(&self) -> u64 {
        self.forward_kernels(1).flops
    }

    /// Kernels of one training step on a batch of `batch` examples: forward, loss, backward
    /// and the Adam update.
    fn train_step_kernels(&self, batch: usize) -> Kernels {
        self.forward_kernels(batch)
            + softmax_cross_entropy(batch, self.classes())
            + self.backward_kernels(batch)
            + adam(self.trainable_params(), self.trainable_tensors())
    }
}

/// Training hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per mini-batch (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Seed of the shuffle stream `"model/train/shuffle"`.
    pub seed: u64,
}

impl TrainConfig {
    /// Checks epochs, batch size and learning rate; the message says what is allowed.
    pub fn validate(&self) -> Result<(), String> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err("epochs and batch_size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(format!(
                "learning rate {} must be finite and > 0",
                self.learning_rate
            ));
        }
        Ok(())
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 10,
            batch_size: 32,
            learning_rate: 1e-2,
            seed: 0,
        }
    }
}

/// What a training run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Optimizer steps taken.
    pub steps: usize,
    /// Mean training loss of each epoch.
    pub epoch_loss: Vec<f32>,
    /// Mean cost of one step: measured wall time, analytic kernels of a full batch.
    pub step: StepCost,
    /// The whole run: measured wall time and summed analytic kernels.
    pub total: StepCost,
}

/// Checks the examples against the model's input width and classes.
pub(crate) fn check_examples<E: Example>(
    data: &[E],
    input_dim: usize,
    classes: usize,
) -> Result<(), ModelError> {
    for (index, e) in data.iter().enumerate() {
        if e.features().len() != input_dim {
            return Err(ModelError::BadExample {
                index,
                what: format!("{} features, model expects {input_dim}", e.features().len()),
            });
        }
        if let Some(f) = e.features().iter().find(|f| !f.is_finite()) {
            return Err(ModelError::BadExample {
                index,
                what: format!("non-finite feature {f}"),
            });
        }
        if e.label() as usize >= classes {
            return Err(ModelError::BadExample {
                index,
                what: format!("label {} but model has {classes} classes", e.label()),
            });
        }
    }
    Ok(())
}

/// The feature batch `[n, dim]` of the examples at `idx`.
pub(crate) fn features<B: Backend, E: Example>(
    data: &[E],
    idx: &[usize],
    dim: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut x = Vec::with_capacity(idx.len() * dim);
    for &i in idx {
        x.extend_from_slice(data[i].features());
    }
    Tensor::from_data(TensorData::new(x, [idx.len(), dim]), device)
}

/// Trains `model` with Adam on `data` for `config.epochs` epochs of shuffled mini-batches
/// and softmax cross-entropy. Only parameters that require gradients change (a
/// [`LoraMlp`](super::LoraMlp)'s base stays bit-identical). Deterministic on the CPU.
pub fn train<B, M, E>(
    model: M,
    data: &[E],
    config: &TrainConfig,
    device: &B::Device,
) -> Result<(M, TrainReport), ModelError>
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B>,
    E: Example,
{
    train_with_hook(model, data, config, device, |_, _| {})
}

/// [`train()`], calling `on_epoch(epoch, &model)` after every epoch (0-based), for example
/// to keep checkpoints for TracIn. The hook's time counts in the report's wall time.
pub fn train_with_hook<B, M, E>(
    model: M,
    data: &[E],
    config: &TrainConfig,
    device: &B::Device,
    mut on_epoch: impl FnMut(usize, &M),
) -> Result<(M, TrainReport), ModelError>
where
    B: AutodiffBackend,
    M: Classifier<B> + AutodiffModule<B>,
    E: Example,
{
    let (dim, classes) = (model.input_dim(), model.classes());
    check_job(data, config, dim, classes)?;
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut optim = AdamConfig::new().init::<B, M>();
    let mut schedule = Schedule::new(data.len(), config);
    let mut progress = Progress::new(config.epochs);
    let mut model = model;
    let start = Instant::now();
    while let Some((batch, ends_epoch)) = schedule.next_batch() {
        let x = features::<B, E>(data, batch, dim, device);
        let loss = loss_fn.forward(model.logits(x), labels::<B, E>(data, batch, device));
        progress.step(
            read_losses(loss.clone())?[0],
            batch.len(),
            model.train_step_kernels(batch.len()),
        );
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(config.learning_rate, model, grads);
        if ends_epoch {
            progress.end_epoch(data.len());
            on_epoch(progress.epochs_done() - 1, &model);
        }
    }
    B::sync(device).map_err(|e| ModelError::Train(format!("device sync: {e:?}")))?;
    let full_batch = model.train_step_kernels(config.batch_size.min(data.len()));
    Ok((
        model,
        progress.report(B::name(device), start.elapsed().as_secs_f64(), full_batch),
    ))
}

/// Checks one training job: its configuration, a non-empty training set and examples
/// that fit a model of `dim` inputs and `classes` classes.
pub(crate) fn check_job<E: Example>(
    data: &[E],
    config: &TrainConfig,
    dim: usize,
    classes: usize,
) -> Result<(), ModelError> {
    config.validate().map_err(ModelError::Train)?;
    if data.is_empty() {
        return Err(ModelError::EmptyTrainingSet);
    }
    check_examples(data, dim, classes)
}

/// The mini-batches of one training run, in order: every epoch a Fisher-Yates shuffle of
/// the example indices from the stream `"model/train/shuffle"` of the config's seed, cut
/// into batches of `batch_size` (the last may be smaller).
pub(crate) struct Schedule {
    rng: Stream,
    order: Vec<usize>,
    batch_size: usize,
    epochs_left: usize,
    next: usize,
}

impl Schedule {
    /// The schedule of `config` over `n` examples.
    pub(crate) fn new(n: usize, config: &TrainConfig) -> Schedule {
        Schedule {
            rng: stream(config.seed, "model/train/shuffle"),
            order: (0..n).collect(),
            batch_size: config.batch_size,
            epochs_left: config.epochs,
            next: n,
        }
    }

    /// The next batch's example indices and whether it is its epoch's last; `None` once
    /// every epoch is done.
    pub(crate) fn next_batch(&mut self) -> Option<(&[usize], bool)> {
        if self.next >= self.order.len() {
            if self.epochs_left == 0 {
                return None;
            }
            self.epochs_left -= 1;
            self.next = 0;
            for i in (1..self.order.len()).rev() {
                let j = self.rng.random_range(0..=i);
                self.order.swap(i, j);
            }
        }
        let start = self.next;
        self.next = (start + self.batch_size).min(self.order.len());
        Some((&self.order[start..self.next], self.next == self.order.len()))
    }
}

/// What one training run has done so far: steps, counted kernels and epoch losses.
pub(crate) struct Progress {
    steps: usize,
    work: Kernels,
    sum: f64,
    epoch_loss: Vec<f32>,
}

impl Progress {
    /// Nothing done yet, room for `epochs` losses.
    pub(crate) fn new(epochs: usize) -> Progress {
        Progress {
            steps: 0,
            work: Kernels::default(),
            sum: 0.0,
            epoch_loss: Vec::with_capacity(epochs),
        }
    }

    /// One step on `batch` examples with mean loss `loss` and `work` counted kernels.
    pub(crate) fn step(&mut self, loss: f32, batch: usize, work: Kernels) {
        self.sum += f64::from(loss) * batch as f64;
        self.work += work;
        self.steps += 1;
    }

    /// Closes an epoch over `n` examples: its mean loss.
    pub(crate) fn end_epoch(&mut self, n: usize) {
        self.epoch_loss.push((self.sum / n as f64) as f32);
        self.sum = 0.0;
    }

    /// Epochs finished so far.
    pub(crate) fn epochs_done(&self) -> usize {
        self.epoch_loss.len()
    }

    /// The report of a run on `device` that took `wall` seconds, a full batch's step
    /// counting `full_batch` kernels.
    pub(crate) fn report(self, device: String, wall: f64, full_batch: Kernels) -> TrainReport {
        TrainReport {
            steps: self.steps,
            epoch_loss: self.epoch_loss,
            step: StepCost::new(device.clone(), wall / self.steps as f64, full_batch),
            total: StepCost::new(device, wall, self.work),
        }
    }
}

/// The class labels `[n]` of the examples at `idx`.
pub(crate) fn labels<B: Backend, E: Example>(
    data: &[E],
    idx: &[usize],
    device: &B::Device,
) -> Tensor<B, 1, Int> {
    let y: Vec<i64> = idx.iter().map(|&i| i64::from(data[i].label())).collect();
    Tensor::from_data(TensorData::new(y, [idx.len()]), device)
}

/// The values of a 1-D tensor of losses, read back to the host.
pub(crate) fn read_losses<B: Backend>(loss: Tensor<B, 1>) -> Result<Vec<f32>, ModelError> {
    loss.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| ModelError::Train(format!("reading loss: {e:?}")))
}

/// Predicted class of every example.
pub fn predict<B, M, E>(model: &M, data: &[E], device: &B::Device) -> Result<Vec<u8>, ModelError>
where
    B: Backend,
    M: Classifier<B>,
    E: Example,
{
    check_examples(data, model.input_dim(), usize::from(u8::MAX) + 1)?;
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let idx: Vec<usize> = (0..data.len()).collect();
    let x = features::<B, E>(data, &idx, model.input_dim(), device);
    let pred = model
        .logits(x)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .map_err(|e| ModelError::Train(format!("reading predictions: {e:?}")))?;
    Ok(pred.into_iter().map(|p| p as u8).collect())
}

/// Fraction of examples whose predicted class equals their label (0 for no examples).
pub fn accuracy<B, M, E>(model: &M, data: &[E], device: &B::Device) -> Result<f64, ModelError>
where
    B: Backend,
    M: Classifier<B>,
    E: Example,
{
    let pred = predict(model, data, device)?;
    if pred.is_empty() {
        return Ok(0.0);
    }
    let hits = pred
        .iter()
        .zip(data)
        .filter(|(p, e)| **p == e.label())
        .count();
    Ok(hits as f64 / data.len() as f64)
}

/// Runs one forward pass over `data` and returns its measured wall time and analytic
/// kernels.
pub fn forward_cost<B, M, E>(
    model: &M,
    data: &[E],
    device: &B::Device,
) -> Result<StepCost, ModelError>
where
    B: Backend,
    M: Classifier<B>,
    E: Example,
{
    let start = Instant::now();
    predict(model, data, device)?;
    B::sync(device).map_err(|e| ModelError::Train(format!("device sync: {e:?}")))?;
    Ok(StepCost::new(
        B::name(device),
        start.elapsed().as_secs_f64(),
        model.forward_kernels(data.len()),
    ))
}

struct Collect(Vec<Vec<f32>>);

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let values = param
            .val()
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("converted to f32");
        self.0.push(values);
    }
}

/// Every float parameter tensor of `module`, flattened, in visiting order (for
/// bit-for-bit comparisons and digests).
pub fn parameter_values<B: Backend, M: Module<B>>(module: &M) -> Vec<Vec<f32>> {
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}
