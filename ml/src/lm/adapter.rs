//! LoRA adapters of the language model: attaching trainable adapters to a frozen base,
//! host-side adapter weights for an adapter store, their device form, save/load, and the
//! stacked per-request form used by batched generation.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use super::LmError;
use super::model::{Lm, LmConfig, Proj, RowUpdate};
use crate::model::mlp::{linear_dims, param};
use crate::model::{LoraAdapter, LoraConfig, LoraLinear, LoraTargets, ParamCounts};

/// LoRA targets for the projections `projs` of every one of `layers` blocks, as flat
/// layer indices (`block * 6 + proj`) for [`LoraConfig::targets`].
pub fn lora_targets(layers: usize, projs: &[Proj]) -> LoraTargets {
    LoraTargets::Layers(
        (0..layers)
            .flat_map(|b| projs.iter().map(move |p| p.flat(b)))
            .collect(),
    )
}

/// One projection's adapter as plain host memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdapterMatrix {
    /// Block index.
    pub block: usize,
    /// Which projection of the block.
    pub proj: Proj,
    /// Rank `r`.
    pub rank: usize,
    /// The update's scale `alpha / r`.
    pub scale: f32,
    /// Input width of the projection.
    pub d_in: usize,
    /// Output width of the projection.
    pub d_out: usize,
    /// `A`, `[rank, d_in]` row-major (not serialised in the header).
    #[serde(skip)]
    pub a: Vec<f32>,
    /// `B`, `[d_out, rank]` row-major (not serialised in the header).
    #[serde(skip)]
    pub b: Vec<f32>,
}

/// A language-model adapter as plain host-side `f32` vectors with shapes: what an adapter
/// store keeps (thousands fit in memory) and moves to a device with
/// [`to_device`](LmAdapterWeights::to_device).
#[derive(Clone, Debug, PartialEq)]
pub struct LmAdapterWeights {
    /// The adapted projections, sorted by `(block, proj)`.
    pub matrices: Vec<AdapterMatrix>,
}

/// An adapter on a device: one optional [`LoraAdapter`] per flat projection index.
#[derive(Clone, Debug)]
pub struct LmAdapter<B: Backend> {
    pub(crate) layers: Vec<Option<LoraAdapter<B>>>,
}

impl<B: Backend> LmAdapter<B> {
    /// The adapter of flat projection `flat`, if any.
    pub fn layer(&self, flat: usize) -> Option<&LoraAdapter<B>> {
        self.layers.get(flat).and_then(Option::as_ref)
    }
}

const ADAPTER_MAGIC: &[u8; 15] = b"olsim-lm-lora/1";

fn host(t: Tensor<impl Backend, 2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .expect("converted to f32")
}

impl LmAdapterWeights {
    /// Trainable parameters (`rank * (d_in + d_out)` per matrix).
    pub fn num_params(&self) -> u64 {
        self.matrices
            .iter()
            .map(|m| (m.rank * (m.d_in + m.d_out)) as u64)
            .sum()
    }

    /// Bytes of weight data (`4 * num_params`), for an adapter store's memory budget.
    pub fn size_bytes(&self) -> u64 {
        4 * self.num_params()
    }

    /// Checks the matrices fit a model of shape `config`: existing blocks, matching
    /// widths, vector lengths equal to the shapes, positive ranks, finite values, no
    /// projection twice.
    pub fn validate(&self, config: &LmConfig) -> Result<(), LmError> {
        let mut seen = Vec::new();
        for m in &self.matrices {
            let at = format!("block {} projection {}", m.block, m.proj.name());
            let bad = |what: String| Err(LmError::AdapterMismatch(format!("{at}: {what}")));
            if m.block >= config.layers {
                return bad(format!("the model has {} blocks", config.layers));
            }
            if (m.d_in, m.d_out) != m.proj.dims(config) {
                return bad(format!(
                    "adapter is {}x{}, the model's projection is {:?}",
                    m.d_in,
                    m.d_out,
                    m.proj.dims(config)
                ));
            }
            if m.rank == 0 || m.a.len() != m.rank * m.d_in || m.b.len() != m.d_out * m.rank {
                return bad(format!(
                    "rank {} with A of {} and B of {} values does not match its shape",
                    m.rank,
                    m.a.len(),
                    m.b.len()
                ));
            }
            if !m.scale.is_finite() || m.a.iter().chain(&m.b).any(|x| !x.is_finite()) {
                return bad("non-finite scale or weight".into());
            }
            let flat = m.proj.flat(m.block);
            if seen.contains(&flat) {
                return bad("appears twice".into());
            }
            seen.push(flat);
        }
        Ok(())
    }

    /// The adapter on `device`, for a model of shape `config`.
    pub fn to_device<B: Backend>(
        &self,
        config: &LmConfig,
        device: &B::Device,
    ) -> Result<LmAdapter<B>, LmError> {
        self.validate(config)?;
        let mut layers: Vec<Option<LoraAdapter<B>>> = vec![None; config.layers * Proj::ALL.len()];
        for m in &self.matrices {
            layers[m.proj.flat(m.block)] = Some(LoraAdapter {
                a: param(m.a.clone(), [m.rank, m.d_in], device),
                b: param(m.b.clone(), [m.d_out, m.rank], device),
                scale: m.scale,
            });
        }
        Ok(LmAdapter { layers })
    }

    /// Serialises the adapter: magic, a JSON header of the matrices' shapes and scales,
    /// then every matrix's `A` and `B` as little-endian `f32` (exact round trip).
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.matrices).expect("adapter header serialises");
        let mut body = Vec::with_capacity(self.size_bytes() as usize);
        for m in &self.matrices {
            for x in m.a.iter().chain(&m.b) {
                body.extend_from_slice(&x.to_le_bytes());
            }
        }
        super::frame(ADAPTER_MAGIC, &header, &body)
    }

    /// Parses bytes written by [`to_bytes`](LmAdapterWeights::to_bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<LmAdapterWeights, LmError> {
        let (header, body) = super::unframe(bytes, ADAPTER_MAGIC, "LM adapter file")?;
        let mut matrices: Vec<AdapterMatrix> = serde_json::from_slice(header)
            .map_err(|e| LmError::Record(format!("adapter header: {e}")))?;
        let expected: usize = matrices.iter().map(|m| m.rank * (m.d_in + m.d_out)).sum();
        if body.len() != expected * 4 {
            return Err(LmError::Record(format!(
                "LM adapter file: {} weight bytes, the header describes {}",
                body.len(),
                expected * 4
            )));
        }
        let mut values = body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")));
        for m in &mut matrices {
            m.a = values.by_ref().take(m.rank * m.d_in).collect();
            m.b = values.by_ref().take(m.d_out * m.rank).collect();
        }
        Ok(LmAdapterWeights { matrices })
    }

    /// Writes [`to_bytes`](LmAdapterWeights::to_bytes) to `path`.
    pub fn save(&self, path: &Path) -> Result<(), LmError> {
        std::fs::write(path, self.to_bytes()).map_err(|e| LmError::io(path, e))
    }

    /// Reads an adapter written by [`save`](LmAdapterWeights::save).
    pub fn load(path: &Path) -> Result<LmAdapterWeights, LmError> {
        let bytes = std::fs::read(path).map_err(|e| LmError::io(path, e))?;
        LmAdapterWeights::from_bytes(&bytes)
    }
}

impl<B: Backend> Lm<B> {
    /// Freezes the whole model and adds fresh trainable adapters per `lora` (targets are
    /// flat projection indices, see [`lora_targets`]); projection `block<i>/<proj>`'s `A`
    /// is drawn from the stream `"model/lora/init/lm/block<i>/<proj>"` of `seed`.
    pub fn with_lora(self, lora: &LoraConfig, seed: u64) -> Result<Lm<B>, LmError> {
        let targets = lora
            .validate(&self.config().linear_dims())
            .map_err(LmError::Lora)?;
        self.no_grad().map_projections(|flat, layer| {
            if targets.contains(&flat) {
                let (block, proj) = Proj::from_flat(flat);
                let name = format!("lm/{}", proj.layer_name(block));
                LoraLinear::new(layer.base, lora.rank, lora.alpha, seed, &name)
                    .map_err(LmError::Lora)
            } else {
                Ok(layer)
            }
        })
    }

    /// The model with `adapter`'s update applied in its projections (replacing any
    /// adapter it had), frozen: single-adapter inference.
    pub fn with_adapter(self, adapter: &LmAdapter<B>) -> Lm<B> {
        self.no_grad()
            .map_projections(|flat, layer| {
                Ok(LoraLinear {
                    base: layer.base,
                    adapter: adapter.layer(flat).cloned(),
                })
            })
            .expect("attaching adapters cannot fail")
    }

    /// The model's adapters as host-side weights (empty when it has none).
    pub fn adapter_weights(&self) -> LmAdapterWeights {
        let mut matrices = Vec::new();
        for (block, b) in self.blocks().iter().enumerate() {
            for (proj, layer) in Proj::ALL.into_iter().zip(b.projections()) {
                if let Some(ad) = &layer.adapter {
                    let (d_in, d_out) = linear_dims(&layer.base);
                    matrices.push(AdapterMatrix {
                        block,
                        proj,
                        rank: ad.rank(),
                        scale: ad.scale,
                        d_in,
                        d_out,
                        a: host(ad.a.val()),
                        b: host(ad.b.val()),
                    });
                }
            }
        }
        LmAdapterWeights { matrices }
    }

    /// The rank of each flat projection's own adapter (0 where none).
    pub(crate) fn adapter_ranks(&self) -> Vec<usize> {
        self.blocks()
            .iter()
            .flat_map(|b| {
                b.projections()
                    .map(|l| l.adapter.as_ref().map_or(0, |a| a.rank()))
            })
            .collect()
    }

    /// Adapter (trainable) vs full fine-tuning (every base parameter) counts.
    pub fn parameter_counts(&self) -> ParamCounts {
        ParamCounts {
            trainable: self.adapter_weights().num_params(),
            full: self.without_adapters().num_params() as u64,
        }
    }
}

/// Per-request adapters of a batch stacked per projection, as S-LoRA/Punica gather them:
/// `A` as `[batch, in, r_max]` and `scale·B` as `[batch, r_max, out]`, zero-padded to the
/// batch's largest rank (zero rows add nothing) and all-zero for requests without an
/// adapter on that projection; `None` where no request adapts it.
pub(crate) struct Stacked<B: Backend> {
    layers: Vec<Option<(Tensor<B, 3>, Tensor<B, 3>)>>,
}

impl<B: Backend> Stacked<B> {
    /// Stacks the adapters of the batch's rows (`None` = base model only) for a model of
    /// shape `config`.
    pub fn new(
        config: &LmConfig,
        rows: &[Option<&LmAdapter<B>>],
        device: &B::Device,
    ) -> Stacked<B> {
        let layers = (0..config.layers * Proj::ALL.len())
            .map(|flat| {
                let ads: Vec<Option<&LoraAdapter<B>>> =
                    rows.iter().map(|r| r.and_then(|a| a.layer(flat))).collect();
                let r_max = ads.iter().flatten().map(|a| a.rank()).max()?;
                let (d_in, d_out) = Proj::from_flat(flat).1.dims(config);
                let (a, b): (Vec<_>, Vec<_>) = ads
                    .iter()
                    .map(|ad| match ad {
                        Some(ad) => {
                            let pad = r_max - ad.rank();
                            let a = ad.a.val().transpose();
                            let b = ad.b.val().mul_scalar(ad.scale).transpose();
                            if pad == 0 {
                                (a, b)
                            } else {
                                (
                                    Tensor::cat(vec![a, Tensor::zeros([d_in, pad], device)], 1),
                                    Tensor::cat(vec![b, Tensor::zeros([pad, d_out], device)], 0),
                                )
                            }
                        }
                        None => (
                            Tensor::zeros([d_in, r_max], device),
                            Tensor::zeros([r_max, d_out], device),
                        ),
                    })
                    .unzip();
                Some((Tensor::stack(a, 0), Tensor::stack(b, 0)))
            })
            .collect();
        Stacked { layers }
    }

    /// The largest rank stacked for flat projection `flat` (0 when none).
    pub fn rank(&self, flat: usize) -> usize {
        self.layers[flat].as_ref().map_or(0, |(a, _)| a.dims()[2])
    }
}

impl<B: Backend> RowUpdate<B> for Stacked<B> {
    /// Each row's update of projection `flat` on `x` `[batch, len, in]`.
    fn delta(&self, flat: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 3>> {
        let (a, b) = self.layers.get(flat)?.as_ref()?;
        Some(x.matmul(a.clone()).matmul(b.clone()))
    }
}
