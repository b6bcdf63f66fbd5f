//! Multi-LoRA training (as mLoRA does): several LoRA adapters over one frozen base model
//! trained together in batched passes.
//!
//! At every step each adapter still training contributes its own next mini-batch (its own
//! shuffle, batch size, epochs and learning rate); the batches are stacked into one input,
//! every frozen base layer runs once over all rows (one GEMM per layer for all adapters)
//! and each adapter's low-rank update is applied to its own rows only. Each adapter's loss
//! is its own batch's mean cross-entropy, exactly as when it trains alone; one backward
//! pass over the sum of the losses gives every adapter its own gradients (the adapters
//! share no parameter, so each loss reaches only its adapter), and each adapter takes its
//! own Adam step.
//!
//! Bit-identical to [`train()`](super::train()) of each adapter alone on the CPU backend:
//! a row of a matrix product depends only on that row of the left operand (matrixmultiply
//! sums each output element over the inner dimension in the same blocked order whatever
//! the number of rows), the adapter products run per adapter on its own rows with the same
//! shapes as alone, and every other operation is element-wise or per row.

use std::time::Instant;

use burn::module::ParamId;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::AutodiffBackend;

use super::ModelError;
use super::lora::LoraMlp;
use super::train::{
    Classifier, Example, Progress, Schedule, TrainConfig, TrainReport, check_job, features, labels,
    read_losses,
};

/// One adapter of a batched training run: its model (a LoRA adapter over the shared frozen
/// base), its training set and its training configuration.
pub struct AdapterJob<'a, B: AutodiffBackend, E> {
    /// The adapter over the shared base; every job's base must be the same model.
    pub model: LoraMlp<B>,
    /// Its training set.
    pub data: &'a [E],
    /// Its epochs, batch size, learning rate and shuffle seed.
    pub config: TrainConfig,
}

/// An adapter during batched training.
struct Lane<'a, B: AutodiffBackend, E> {
    model: Option<LoraMlp<B>>,
    data: &'a [E],
    config: TrainConfig,
    optim: OptimizerAdaptor<Adam, LoraMlp<B>, B>,
    schedule: Schedule,
    progress: Progress,
    wall: f64,
}

impl<B: AutodiffBackend, E> Lane<'_, B, E> {
    fn model(&self) -> &LoraMlp<B> {
        self.model
            .as_ref()
            .expect("a lane holds its model between steps")
    }
}

/// Trains every job's adapter as [`train()`](super::train()) would alone, all together in
/// batched passes over their shared frozen base (see the [module docs](self)); returns
/// each trained model with its report, in job order.
///
/// Each report's FLOPs are the adapter's own (as alone); its wall time is its share, by
/// rows, of the measured time of the steps it took part in. Errors when the jobs do not
/// share one base (the same frozen layers, by parameter id), and for what [`train()`]
/// refuses.
///
/// [`train()`]: super::train()
pub fn train_batched<B, E>(
    jobs: Vec<AdapterJob<'_, B, E>>,
    device: &B::Device,
) -> Result<Vec<(LoraMlp<B>, TrainReport)>, ModelError>
where
    B: AutodiffBackend,
    E: Example,
{
    train_batched_with_hook(jobs, device, |_, _, _| {})
}

/// [`train_batched`], calling `on_epoch(job, epoch, &model)` after each job's epoch
/// (0-based), for example to keep checkpoints for TracIn; the hook's time counts in that
/// job's wall time.
pub fn train_batched_with_hook<B, E>(
    jobs: Vec<AdapterJob<'_, B, E>>,
    device: &B::Device,
    mut on_epoch: impl FnMut(usize, usize, &LoraMlp<B>),
) -> Result<Vec<(LoraMlp<B>, TrainReport)>, ModelError>
where
    B: AutodiffBackend,
    E: Example,
{
    let Some(first) = jobs.first() else {
        return Ok(Vec::new());
    };
    let base = base_ids(&first.model);
    let (dim, classes) = (first.model.input_dim(), first.model.classes());
    for job in &jobs {
        if base_ids(&job.model) != base {
            return Err(ModelError::Config(
                "batched adapters must share one frozen base model".into(),
            ));
        }
        check_job(job.data, &job.config, dim, classes)?;
    }
    let mut lanes: Vec<Lane<B, E>> = jobs
        .into_iter()
        .map(|job| Lane {
            schedule: Schedule::new(job.data.len(), &job.config),
            progress: Progress::new(job.config.epochs),
            optim: AdamConfig::new().init(),
            model: Some(job.model),
            data: job.data,
            config: job.config,
            wall: 0.0,
        })
        .collect();
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    loop {
        let start = Instant::now();
        // (lane, batch, whether it ends the lane's epoch) of every lane still training.
        let mut step: Vec<(usize, Vec<usize>, bool)> = Vec::new();
        for (k, lane) in lanes.iter_mut().enumerate() {
            if let Some((batch, ends_epoch)) = lane.schedule.next_batch() {
                step.push((k, batch.to_vec(), ends_epoch));
            }
        }
        if step.is_empty() {
            break;
        }
        let inputs = step
            .iter()
            .map(|(k, batch, _)| features::<B, E>(lanes[*k].data, batch, dim, device))
            .collect();
        let models: Vec<&LoraMlp<B>> = step.iter().map(|(k, ..)| lanes[*k].model()).collect();
        let losses: Vec<Tensor<B, 1>> = forward_rows(&models, inputs)
            .into_iter()
            .zip(&step)
            .map(|(logits, (k, batch, _))| {
                loss_fn.forward(logits, labels::<B, E>(lanes[*k].data, batch, device))
            })
            .collect();
        let values = losses
            .iter()
            .map(|l| read_losses(l.clone()).map(|v| v[0]))
            .collect::<Result<Vec<f32>, _>>()?;
        let total = losses
            .into_iter()
            .reduce(|a, b| a + b)
            .expect("a step has a lane");
        let mut grads = total.backward();
        let mut ended = Vec::new();
        for ((k, batch, ends_epoch), value) in step.iter().zip(values) {
            let lane = &mut lanes[*k];
            let model = lane.model.take().expect("a lane holds its model");
            let work = model.train_step_kernels(batch.len());
            lane.progress.step(value, batch.len(), work);
            let lane_grads = GradientsParams::from_module(&mut grads, &model);
            lane.model = Some(
                lane.optim
                    .step(lane.config.learning_rate, model, lane_grads),
            );
            if *ends_epoch {
                lane.progress.end_epoch(lane.data.len());
                ended.push(*k);
            }
        }
        // The step's time, shared by rows; then each hook's own time to its lane.
        let rows: usize = step.iter().map(|(_, b, _)| b.len()).sum();
        let wall = start.elapsed().as_secs_f64();
        for (k, batch, _) in &step {
            lanes[*k].wall += wall * batch.len() as f64 / rows as f64;
        }
        for k in ended {
            let hook = Instant::now();
            let lane = &lanes[k];
            on_epoch(k, lane.progress.epochs_done() - 1, lane.model());
            lanes[k].wall += hook.elapsed().as_secs_f64();
        }
    }
    B::sync(device).map_err(|e| ModelError::Train(format!("device sync: {e:?}")))?;
    Ok(lanes
        .into_iter()
        .map(|lane| {
            let model = lane.model.expect("a lane holds its model");
            let full_batch = model.train_step_kernels(lane.config.batch_size.min(lane.data.len()));
            let report = lane.progress.report(B::name(device), lane.wall, full_batch);
            (model, report)
        })
        .collect())
}

/// The parameter ids of a model's frozen base layers: equal for clones of one base.
fn base_ids<B: AutodiffBackend>(model: &LoraMlp<B>) -> Vec<ParamId> {
    model
        .layers
        .iter()
        .flat_map(|l| std::iter::once(l.base.weight.id).chain(l.base.bias.as_ref().map(|b| b.id)))
        .collect()
}

/// Logits of each model's input `[rows_k, in]`: each base layer once over all rows, each
/// adapter's update on its own rows ([`split_rows`]), ReLU between layers (as
/// [`LoraMlp::forward`]).
fn forward_rows<B: AutodiffBackend>(
    models: &[&LoraMlp<B>],
    inputs: Vec<Tensor<B, 2>>,
) -> Vec<Tensor<B, 2>> {
    let layers = &models[0].layers;
    let last = layers.len() - 1;
    let mut hs: Vec<Tensor<B, 2>> = inputs;
    for (i, layer) in layers.iter().enumerate() {
        let rows: Vec<usize> = hs.iter().map(|h| h.dims()[0]).collect();
        let y = layer.base.forward(Tensor::cat(hs.clone(), 0));
        hs = hs
            .into_iter()
            .zip(split_rows(y, &rows))
            .zip(models)
            .map(|((h, mut out), model)| {
                if let Some(adapter) = &model.layers[i].adapter {
                    out = out + adapter.delta(h);
                }
                if i < last { relu(out) } else { out }
            })
            .collect();
    }
    hs
}

/// `t` cut into consecutive blocks of `rows` rows, halving recursively: the backward pass
/// of a row slice pads its gradient with zeros to the sliced tensor's size, so slicing all
/// `k` blocks from the whole would cost `k` full-size gradients per layer; halving costs
/// two per level, `log2 k` levels. Each row's gradient is its own plus zeros, exactly.
fn split_rows<B: AutodiffBackend>(t: Tensor<B, 2>, rows: &[usize]) -> Vec<Tensor<B, 2>> {
    if rows.len() == 1 {
        return vec![t];
    }
    let (left, right) = rows.split_at(rows.len() / 2);
    let top: usize = left.iter().sum();
    let bottom = t.dims()[0] - top;
    let mut out = split_rows(t.clone().narrow(0, 0, top), left);
    out.extend(split_rows(t.narrow(0, top, bottom), right));
    out
}
