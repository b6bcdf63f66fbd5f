//! LoRA: low-rank adapters over a frozen base model.
//!
//! [`LoraLinear`] computes `base(x) + (alpha / rank) · x·Aᵀ·Bᵀ` where the base
//! [`Linear`] is frozen (its parameters do not require gradients, so the optimizer never
//! sees them), `A` (`rank × in`) starts small and random and `B` (`out × rank`) starts at
//! zero, so a fresh adapter leaves the base model's outputs unchanged.

use std::path::Path;

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::cost::{self, Kernels};
use super::mlp::{Mlp, linear_dims, param, relu_stack, uniform};
use super::train::Classifier;
use crate::data::rng::stream;

/// Which dense layers of the base model get an adapter.
#[derive(Clone, Debug, PartialEq)]
pub enum LoraTargets {
    /// Every layer.
    All,
    /// The listed layer indices (0 = the input layer).
    Layers(Vec<usize>),
}

/// Adapter hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct LoraConfig {
    /// Rank `r` of the update `B·A`; at least 1 and at most `min(in, out)` of every
    /// targeted layer.
    pub rank: usize,
    /// Scale numerator: the update is multiplied by `alpha / rank`.
    pub alpha: f32,
    /// The layers that get an adapter.
    pub targets: LoraTargets,
}

impl LoraConfig {
    /// Rank `rank`, scale `alpha / rank`, adapters on every layer.
    pub fn new(rank: usize, alpha: f32) -> LoraConfig {
        LoraConfig {
            rank,
            alpha,
            targets: LoraTargets::All,
        }
    }

    /// Checks the config against a model with layers of the given `(in, out)` and returns
    /// the sorted, de-duplicated targeted layer indices.
    pub fn validate(&self, dims: &[(usize, usize)]) -> Result<Vec<usize>, ModelError> {
        if self.rank == 0 {
            return Err(ModelError::RankZero);
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return Err(ModelError::Config(format!(
                "LoRA alpha {} must be finite and > 0",
                self.alpha
            )));
        }
        let mut targets = match &self.targets {
            LoraTargets::All => (0..dims.len()).collect(),
            LoraTargets::Layers(l) => l.clone(),
        };
        targets.sort_unstable();
        targets.dedup();
        if targets.is_empty() {
            return Err(ModelError::Config("LoRA targets no layer".into()));
        }
        for &layer in &targets {
            let Some(&(d_in, d_out)) = dims.get(layer) else {
                return Err(ModelError::NoSuchLayer {
                    layer,
                    layers: dims.len(),
                });
            };
            let max = d_in.min(d_out);
            if self.rank > max {
                return Err(ModelError::RankTooLarge {
                    layer,
                    rank: self.rank,
                    max,
                });
            }
        }
        Ok(targets)
    }
}

/// The trainable low-rank pair of one layer.
#[derive(Module, Debug)]
pub struct LoraAdapter<B: Backend> {
    /// Down-projection `A`, `[rank, in]`, small random init.
    pub a: Param<Tensor<B, 2>>,
    /// Up-projection `B`, `[out, rank]`, zero init.
    pub b: Param<Tensor<B, 2>>,
    /// `alpha / rank`.
    #[module(skip)]
    pub scale: f32,
}

impl<B: Backend> LoraAdapter<B> {
    /// The low-rank update `scale · x·Aᵀ·Bᵀ` of a batch `x` `[batch, in]`.
    pub fn delta(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.a.val().transpose())
            .matmul(self.b.val().transpose())
            .mul_scalar(self.scale)
    }

    /// The rank `r`.
    pub fn rank(&self) -> usize {
        self.a.shape().dims::<2>()[0]
    }
}

/// A dense layer with a frozen base and an optional LoRA adapter.
#[derive(Module, Debug)]
pub struct LoraLinear<B: Backend> {
    /// The frozen base layer.
    pub base: Linear<B>,
    /// The adapter; `None` for layers LoRA does not target.
    pub adapter: Option<LoraAdapter<B>>,
}

impl<B: Backend> LoraLinear<B> {
    /// Wraps `base` (frozen here) with an adapter of rank `rank` and scale `alpha / rank`,
    /// `A` drawn uniform in `±1/sqrt(in)` from the stream `"model/lora/init/<name>"`.
    ///
    /// Errors with [`ModelError::RankZero`] or [`ModelError::RankTooLarge`] (reported as
    /// layer 0: a standalone layer has no index; [`LoraMlp::new`] reports the real one).
    pub fn new(
        base: Linear<B>,
        rank: usize,
        alpha: f32,
        seed: u64,
        name: &str,
    ) -> Result<LoraLinear<B>, ModelError> {
        let (d_in, d_out) = linear_dims(&base);
        if rank == 0 {
            return Err(ModelError::RankZero);
        }
        if rank > d_in.min(d_out) {
            return Err(ModelError::RankTooLarge {
                layer: 0,
                rank,
                max: d_in.min(d_out),
            });
        }
        let device = base.weight.device();
        let mut rng = stream(seed, &format!("model/lora/init/{name}"));
        let a = param(
            uniform(&mut rng, rank * d_in, 1.0 / (d_in as f32).sqrt()),
            [rank, d_in],
            &device,
        );
        let b = param(vec![0.0; d_out * rank], [d_out, rank], &device);
        Ok(LoraLinear {
            base: base.no_grad(),
            adapter: Some(LoraAdapter {
                a,
                b,
                scale: alpha / rank as f32,
            }),
        })
    }

    /// Wraps `base` (frozen) with no adapter.
    pub fn frozen(base: Linear<B>) -> LoraLinear<B> {
        LoraLinear {
            base: base.no_grad(),
            adapter: None,
        }
    }

    /// `base(x)` plus the adapter's update.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.adapter {
            Some(ad) => self.base.forward(x.clone()) + ad.delta(x),
            None => self.base.forward(x),
        }
    }
}

/// Trainable vs full fine-tuning parameter counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamCounts {
    /// Parameters the adapters train.
    pub trainable: u64,
    /// Parameters full fine-tuning of the base model would train.
    pub full: u64,
}

impl ParamCounts {
    /// `trainable / full`.
    pub fn fraction(&self) -> f64 {
        self.trainable as f64 / self.full as f64
    }
}

/// The set of adapters of a [`LoraMlp`], one slot per layer: the unit saved and loaded.
#[derive(Module, Debug)]
pub struct AdapterSet<B: Backend> {
    /// Adapter of layer `i`, `None` where not targeted.
    pub adapters: Vec<Option<LoraAdapter<B>>>,
}

/// What an adapter file must match: written before the burn record.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct AdapterHeader {
    layers: Vec<(usize, usize)>,
    ranks: Vec<Option<usize>>,
    scales: Vec<Option<f32>>,
}

const MAGIC: &[u8; 12] = b"olsim-lora/1";

/// A frozen [`Mlp`] with LoRA adapters on the targeted layers.
#[derive(Module, Debug)]
pub struct LoraMlp<B: Backend> {
    /// The layers, input first.
    pub layers: Vec<LoraLinear<B>>,
}

impl<B: Backend> LoraMlp<B> {
    /// Freezes `base` and adds adapters per `config`, layer `i`'s drawn from the stream
    /// `"model/lora/init/<i>"` of `seed`.
    pub fn new(base: Mlp<B>, config: &LoraConfig, seed: u64) -> Result<LoraMlp<B>, ModelError> {
        let dims: Vec<(usize, usize)> = base.layers.iter().map(linear_dims).collect();
        let targets = config.validate(&dims)?;
        let layers = base
            .layers
            .into_iter()
            .enumerate()
            .map(|(i, layer)| {
                if targets.contains(&i) {
                    LoraLinear::new(layer, config.rank, config.alpha, seed, &i.to_string())
                } else {
                    Ok(LoraLinear::frozen(layer))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LoraMlp { layers })
    }

    /// Logits `[batch, classes]` of a batch `[batch, in]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        relu_stack(&self.layers, x, |layer, h| layer.forward(h))
    }

    /// `(in, out)` of every layer.
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        self.layers.iter().map(|l| linear_dims(&l.base)).collect()
    }

    /// `(in, out, adapter rank)` of every layer, for [`cost`].
    pub fn cost_layers(&self) -> Vec<(usize, usize, Option<usize>)> {
        self.layers
            .iter()
            .map(|l| {
                let (d_in, d_out) = linear_dims(&l.base);
                (d_in, d_out, l.adapter.as_ref().map(|a| a.rank()))
            })
            .collect()
    }

    /// The frozen base model (a copy of its layers).
    pub fn base(&self) -> Mlp<B> {
        Mlp {
            layers: self.layers.iter().map(|l| l.base.clone()).collect(),
        }
    }

    /// Trainable (adapter) vs full fine-tuning (base) parameter counts.
    pub fn parameter_counts(&self) -> ParamCounts {
        let trainable = self
            .layers
            .iter()
            .filter_map(|l| l.adapter.as_ref())
            .map(|a| a.num_params() as u64)
            .sum();
        let full = self.layers.iter().map(|l| l.base.num_params() as u64).sum();
        ParamCounts { trainable, full }
    }

    /// A copy of the adapters.
    pub fn adapters(&self) -> AdapterSet<B> {
        AdapterSet {
            adapters: self.layers.iter().map(|l| l.adapter.clone()).collect(),
        }
    }

    fn header(&self) -> AdapterHeader {
        AdapterHeader {
            layers: self.layer_dims(),
            ranks: self
                .layers
                .iter()
                .map(|l| l.adapter.as_ref().map(|a| a.rank()))
                .collect(),
            scales: self
                .layers
                .iter()
                .map(|l| l.adapter.as_ref().map(|a| a.scale))
                .collect(),
        }
    }

    /// Serialises the adapters (not the base): a header naming layer shapes, ranks and
    /// scales, then burn's full-precision binary record.
    pub fn save_adapters(&self) -> Result<Vec<u8>, ModelError> {
        let header = serde_json::to_vec(&self.header())
            .map_err(|e| ModelError::Record(format!("header: {e}")))?;
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .record(self.adapters().into_record(), ())
            .map_err(|e| ModelError::Record(e.to_string()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + record.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&record);
        Ok(out)
    }

    /// Replaces this model's adapters with ones saved by [`save_adapters`]; the model
    /// must have the same layer shapes, ranks, scales and targets.
    ///
    /// [`save_adapters`]: LoraMlp::save_adapters
    pub fn load_adapters(self, bytes: &[u8]) -> Result<LoraMlp<B>, ModelError> {
        let bad = |what: &str| ModelError::Record(what.to_string());
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| bad("not an olsim LoRA adapter file (bad magic)"))?;
        if rest.len() < 4 {
            return Err(bad("truncated header"));
        }
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let rest = &rest[4..];
        if rest.len() < len {
            return Err(bad("truncated header"));
        }
        let header: AdapterHeader = serde_json::from_slice(&rest[..len])
            .map_err(|e| ModelError::Record(format!("header: {e}")))?;
        let ours = self.header();
        if header != ours {
            return Err(ModelError::AdapterMismatch(format!(
                "file has layers {:?} ranks {:?} scales {:?}, model has layers {:?} ranks {:?} \
                 scales {:?}",
                header.layers, header.ranks, header.scales, ours.layers, ours.ranks, ours.scales
            )));
        }
        let device = self.layers[0].base.weight.device();
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .load(rest[len..].to_vec(), &device)
            .map_err(|e| ModelError::Record(e.to_string()))?;
        let loaded = self.adapters().load_record(record);
        let layers = self
            .layers
            .into_iter()
            .zip(loaded.adapters)
            .map(|(l, adapter)| LoraLinear {
                base: l.base,
                adapter,
            })
            .collect();
        Ok(LoraMlp { layers })
    }

    /// Writes [`save_adapters`](LoraMlp::save_adapters) bytes to `path`.
    pub fn save_adapters_file(&self, path: &Path) -> Result<(), ModelError> {
        std::fs::write(path, self.save_adapters()?)
            .map_err(|e| ModelError::Record(format!("{}: {e}", path.display())))
    }

    /// Reads adapters written by [`save_adapters_file`](LoraMlp::save_adapters_file).
    pub fn load_adapters_file(self, path: &Path) -> Result<LoraMlp<B>, ModelError> {
        let bytes = std::fs::read(path)
            .map_err(|e| ModelError::Record(format!("{}: {e}", path.display())))?;
        self.load_adapters(&bytes)
    }
}

impl<B: Backend> Classifier<B> for LoraMlp<B> {
    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }

    fn input_dim(&self) -> usize {
        self.layer_dims()[0].0
    }

    fn classes(&self) -> usize {
        self.layer_dims().last().map_or(0, |d| d.1)
    }

    fn forward_kernels(&self, batch: usize) -> Kernels {
        cost::mlp_forward(batch, &self.cost_layers())
    }

    fn backward_kernels(&self, batch: usize) -> Kernels {
        cost::mlp_backward(batch, &self.cost_layers(), false)
    }

    fn trainable_params(&self) -> u64 {
        self.parameter_counts().trainable
    }

    fn trainable_tensors(&self) -> usize {
        2 * self.layers.iter().filter(|l| l.adapter.is_some()).count()
    }
}
