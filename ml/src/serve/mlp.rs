//! Serving the MLP classifier ([`Mlp`] with [`LoraMlp`] adapters).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::ServeError;
use super::cache::DeviceAdapter;
use super::lora::BatchLora;
use super::server::{ServeModel, Served};
use super::store::{AdapterId, AdapterLayout, AdapterStore, HostAdapter, LowRankPair, Site};
use crate::model::mlp::relu_stack;
use crate::model::{Classifier, LoraConfig, LoraMlp, Mlp};

/// The site of the MLP's layer `layer` (named `"layer<i>"`).
fn site(layer: usize, (d_in, d_out): (usize, usize)) -> Site {
    Site {
        name: format!("layer{layer}"),
        d_in,
        d_out,
    }
}

/// A frozen [`Mlp`] served with adapters on the layers a [`LoraConfig`] targets. Input: a
/// feature vector; output: the logits.
#[derive(Clone, Debug)]
pub struct MlpServe<B: Backend> {
    base: Mlp<B>,
    /// Targeted layer of each site, ascending.
    targets: Vec<usize>,
    layout: AdapterLayout,
}

impl<B: Backend> MlpServe<B> {
    /// Serves `base` with adapters of `config`'s rank on its targeted layers (the same
    /// layers a [`LoraMlp::new`] with `config` adapts).
    pub fn new(base: Mlp<B>, config: &LoraConfig) -> Result<MlpServe<B>, ServeError> {
        let dims = base.config().layer_dims();
        let targets = config.validate(&dims)?;
        let sites = targets.iter().map(|&i| site(i, dims[i])).collect();
        let layout = AdapterLayout::new(sites, config.rank)?;
        Ok(MlpServe {
            base,
            targets,
            layout,
        })
    }

    /// The base model.
    pub fn base(&self) -> &Mlp<B> {
        &self.base
    }

    /// Site index of layer `layer`, if adapted.
    fn site_of(&self, layer: usize) -> Option<usize> {
        self.targets.binary_search(&layer).ok()
    }
}

impl<B: Backend> ServeModel<B> for MlpServe<B> {
    type Input = Vec<f32>;
    type Output = Vec<f32>;

    fn adapter_layout(&self) -> AdapterLayout {
        self.layout.clone()
    }

    fn check_input(&self, input: &Vec<f32>) -> Result<(), ServeError> {
        let dim = self.base.input_dim();
        if input.len() != dim {
            return Err(ServeError::BadInput(format!(
                "{} features, the model takes {dim}",
                input.len()
            )));
        }
        if let Some(v) = input.iter().find(|v| !v.is_finite()) {
            return Err(ServeError::BadInput(format!("non-finite feature {v}")));
        }
        Ok(())
    }

    fn forward(
        &self,
        inputs: &[&Vec<f32>],
        lora: &BatchLora<B>,
    ) -> Result<Served<Vec<f32>>, ServeError> {
        let (n, dim) = (inputs.len(), self.base.input_dim());
        let x: Vec<f32> = inputs.iter().flat_map(|v| v.iter().copied()).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(x, [n, dim]), &self.device());
        let layers: Vec<(&Linear<B>, Option<usize>)> = self
            .base
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| (l, self.site_of(i)))
            .collect();
        let logits = relu_stack(&layers, x, |&(layer, site), h| {
            let y = layer.forward(h.clone());
            match site.and_then(|s| lora.delta(s, h, 1)) {
                Some(d) => y + d,
                None => y,
            }
        });
        let values = logits
            .into_data()
            .to_vec::<f32>()
            .map_err(|e| ServeError::Backend(format!("reading logits: {e:?}")))?;
        let classes = self.base.classes();
        Ok(Served {
            outputs: values.chunks_exact(classes).map(<[f32]>::to_vec).collect(),
            work: self.base.forward_kernels(n),
        })
    }

    fn merged(&self, adapter: &DeviceAdapter<B>) -> MlpServe<B> {
        let layers = self
            .base
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| match self.site_of(i) {
                Some(s) => Linear {
                    weight: Param::from_tensor(l.weight.val() + adapter.weight_delta(s)),
                    bias: l.bias.clone(),
                },
                None => l.clone(),
            })
            .collect();
        MlpServe {
            base: Mlp { layers },
            targets: self.targets.clone(),
            layout: self.layout.clone(),
        }
    }

    fn weight_bytes(&self) -> u64 {
        4 * self.base.num_params() as u64
    }

    fn device(&self) -> B::Device {
        self.base.layers[0].weight.device()
    }
}

/// A tensor's values on the host.
fn host_values<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f32>, ServeError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| ServeError::Backend(format!("reading adapter weights: {e:?}")))
}

impl AdapterStore {
    /// Stores the adapters of a (trained) [`LoraMlp`] under `id`. Its adapted layers, rank
    /// and dimensions must be the store's layout, as built by [`MlpServe::new`] with the
    /// model's [`LoraConfig`].
    pub fn insert_lora_mlp<B: Backend>(
        &mut self,
        id: AdapterId,
        model: &LoraMlp<B>,
    ) -> Result<(), ServeError> {
        let dims = model.layer_dims();
        let mut sites = Vec::new();
        let mut pairs = Vec::new();
        let mut scales = Vec::new();
        for (i, layer) in model.layers.iter().enumerate() {
            if let Some(ad) = &layer.adapter {
                sites.push(site(i, dims[i]));
                pairs.push(LowRankPair {
                    a: host_values(ad.a.val())?,
                    b: host_values(ad.b.val())?,
                });
                scales.push((ad.scale, ad.rank()));
            }
        }
        let layout = self.layout();
        if sites != layout.sites || scales.iter().any(|&(_, r)| r != layout.rank) {
            let names: Vec<String> = sites
                .iter()
                .zip(&scales)
                .map(|(s, (_, r))| format!("{} {}->{} rank {r}", s.name, s.d_in, s.d_out))
                .collect();
            return Err(ServeError::AdapterShape(format!(
                "the model adapts [{}], the store takes rank {} on {:?}",
                names.join(", "),
                layout.rank,
                layout.sites
            )));
        }
        let scale = scales[0].0;
        if scales.iter().any(|&(s, _)| s != scale) {
            return Err(ServeError::AdapterShape(format!(
                "layers have different scales {:?}; one adapter has one alpha / rank",
                scales.iter().map(|s| s.0).collect::<Vec<_>>()
            )));
        }
        self.insert(
            id,
            HostAdapter {
                scale,
                sites: pairs,
            },
        )
    }

    /// Stores adapters saved by [`LoraMlp::save_adapters`], loaded into a copy of
    /// `template` (a [`LoraMlp`] of the same base, rank, scale and targets).
    pub fn insert_saved<B: Backend>(
        &mut self,
        id: AdapterId,
        template: &LoraMlp<B>,
        bytes: &[u8],
    ) -> Result<(), ServeError> {
        let model = template.clone().load_adapters(bytes)?;
        self.insert_lora_mlp(id, &model)
    }
}
