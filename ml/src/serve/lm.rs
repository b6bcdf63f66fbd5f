//! Serving the language model ([`Lm`] with [`LmAdapterWeights`] adapters): each request is
//! a prompt, decoded with a KV cache; a batch decodes all its prompts together with one
//! base-model pass per step plus each request's own low-rank update ([`BatchLora`]).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::ServeError;
use super::cache::DeviceAdapter;
use super::lora::BatchLora;
use super::server::{ServeModel, Served};
use super::store::{AdapterId, AdapterLayout, AdapterStore, HostAdapter, LowRankPair, Site};
use crate::lm::cost::decode_kernels;
use crate::lm::generate::{check_config, check_prompt, decode, request_flops};
use crate::lm::model::RowUpdate;
use crate::lm::{GenConfig, Generation, Lm, LmAdapterWeights, LmConfig, Proj};
use crate::model::{LoraConfig, LoraLinear};

/// One generation request: a prompt and the id naming its sampling stream (see
/// [`generate`](crate::lm::generate)), so a sampled request's tokens do not depend on the
/// batch it lands in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LmRequest {
    /// Names the request's sampling stream.
    pub id: u64,
    /// Prompt token ids (at least one; typically starting with BOS).
    pub prompt: Vec<u32>,
}

/// The site of flat projection `flat` (named like `"block0/q"`).
fn site(config: &LmConfig, flat: usize) -> Site {
    let (block, proj) = Proj::from_flat(flat);
    let (d_in, d_out) = proj.dims(config);
    Site {
        name: proj.layer_name(block),
        d_in,
        d_out,
    }
}

/// A frozen [`Lm`] served with adapters on the projections a [`LoraConfig`] targets, all
/// requests decoded with one [`GenConfig`]. Input: an [`LmRequest`]; output: its
/// [`Generation`] (tokens, and the FLOPs of its own prompt and tokens with its adapter).
#[derive(Clone, Debug)]
pub struct LmServe<B: Backend> {
    base: Lm<B>,
    config: LmConfig,
    /// Targeted flat projection of each site, ascending.
    targets: Vec<usize>,
    layout: AdapterLayout,
    generation: GenConfig,
    device: B::Device,
}

impl<B: Backend> LmServe<B> {
    /// Serves `base` (any adapters it carries are dropped) with adapters of `lora`'s rank
    /// on its targeted projections, decoding with `generation`.
    pub fn new(
        base: &Lm<B>,
        lora: &LoraConfig,
        generation: GenConfig,
        device: &B::Device,
    ) -> Result<LmServe<B>, ServeError> {
        check_config(&generation).map_err(|e| ServeError::Config(e.to_string()))?;
        let config = base.config();
        let targets = lora.validate(&config.linear_dims())?;
        let sites = targets.iter().map(|&f| site(&config, f)).collect();
        let layout = AdapterLayout::new(sites, lora.rank)?;
        Ok(LmServe {
            base: base.without_adapters(),
            config,
            targets,
            layout,
            generation,
            device: device.clone(),
        })
    }

    /// The decoding settings.
    pub fn generation(&self) -> &GenConfig {
        &self.generation
    }

    /// Site index of flat projection `flat`, if adapted.
    fn site_of(&self, flat: usize) -> Option<usize> {
        self.targets.binary_search(&flat).ok()
    }
}

/// A [`BatchLora`] seen as the language model's per-row update: flat projections map to
/// sites, and each request's `len` positions are its rows.
struct SiteUpdate<'a, B: Backend> {
    serve: &'a LmServe<B>,
    lora: &'a BatchLora<B>,
}

impl<B: Backend> RowUpdate<B> for SiteUpdate<'_, B> {
    fn delta(&self, flat: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 3>> {
        let site = self.serve.site_of(flat)?;
        let [rows, len, d_in] = x.dims();
        let d = self.lora.delta(site, x.reshape([rows * len, d_in]), len)?;
        let d_out = d.dims()[1];
        Some(d.reshape([rows, len, d_out]))
    }
}

impl<B: Backend> ServeModel<B> for LmServe<B> {
    type Input = LmRequest;
    type Output = Generation;

    fn adapter_layout(&self) -> AdapterLayout {
        self.layout.clone()
    }

    fn check_input(&self, input: &LmRequest) -> Result<(), ServeError> {
        check_prompt(&self.config, &input.prompt, &self.generation)
            .map_err(|what| ServeError::BadInput(format!("request {}: {what}", input.id)))
    }

    fn forward(
        &self,
        inputs: &[&LmRequest],
        lora: &BatchLora<B>,
    ) -> Result<Served<Generation>, ServeError> {
        let prompts: Vec<(u64, &[u32])> = inputs.iter().map(|r| (r.id, &r.prompt[..])).collect();
        let update = SiteUpdate { serve: self, lora };
        let decoded = decode(
            &self.base,
            &prompts,
            &self.generation,
            Some(&update),
            &self.device,
        )
        // Inputs were checked at submission; what can fail here is the device read-back.
        .map_err(|e| ServeError::Backend(e.to_string()))?;
        // A merged model's own adapters are folded into its weights: no adapter shapes.
        let own: Vec<_> = self
            .layout
            .sites
            .iter()
            .map(|s| (s.d_in, s.d_out, self.layout.rank))
            .collect();
        let has_lora = lora.has_adapters();
        let outputs = decoded
            .generations
            .into_iter()
            .zip(inputs)
            .map(|(mut g, r)| {
                let shapes = if has_lora { &own[..] } else { &[] };
                g.flops = request_flops(&self.config, r.prompt.len(), g.tokens.len(), shapes);
                g
            })
            .collect();
        Ok(Served {
            outputs,
            work: decode_kernels(
                &self.config,
                inputs.len(),
                decoded.width,
                decoded.passes,
                &[],
            ),
        })
    }

    fn merged(&self, adapter: &DeviceAdapter<B>) -> LmServe<B> {
        let base = self
            .base
            .clone()
            .map_projections(|flat, l| {
                Ok(match self.site_of(flat) {
                    Some(s) => LoraLinear {
                        base: Linear {
                            weight: Param::from_tensor(
                                l.base.weight.val() + adapter.weight_delta(s),
                            ),
                            bias: l.base.bias,
                        },
                        adapter: None,
                    },
                    None => l,
                })
            })
            .expect("merging weights of the layout's shapes cannot fail");
        LmServe {
            base,
            ..self.clone()
        }
    }

    fn weight_bytes(&self) -> u64 {
        4 * self.base.num_params() as u64
    }

    fn device(&self) -> B::Device {
        self.device.clone()
    }
}

impl AdapterStore {
    /// Stores a language-model adapter under `id`. Its projections, rank and dimensions
    /// must be the store's layout, as built by [`LmServe::new`] with the adapter's
    /// [`LoraConfig`], and every projection must have the same scale.
    pub fn insert_lm(
        &mut self,
        id: AdapterId,
        adapter: &LmAdapterWeights,
    ) -> Result<(), ServeError> {
        let layout = self.layout();
        let sites: Vec<Site> = adapter
            .matrices
            .iter()
            .map(|m| Site {
                name: m.proj.layer_name(m.block),
                d_in: m.d_in,
                d_out: m.d_out,
            })
            .collect();
        if sites != layout.sites || adapter.matrices.iter().any(|m| m.rank != layout.rank) {
            let names: Vec<String> = adapter
                .matrices
                .iter()
                .map(|m| {
                    format!(
                        "{} {}->{} rank {}",
                        m.proj.layer_name(m.block),
                        m.d_in,
                        m.d_out,
                        m.rank
                    )
                })
                .collect();
            return Err(ServeError::AdapterShape(format!(
                "the adapter has [{}], the store takes rank {} on {:?}",
                names.join(", "),
                layout.rank,
                layout.sites
            )));
        }
        let scale = adapter.matrices[0].scale;
        if adapter.matrices.iter().any(|m| m.scale != scale) {
            return Err(ServeError::AdapterShape(format!(
                "projections have different scales {:?}; one adapter has one alpha / rank",
                adapter.matrices.iter().map(|m| m.scale).collect::<Vec<_>>()
            )));
        }
        self.insert(
            id,
            HostAdapter {
                scale,
                sites: adapter
                    .matrices
                    .iter()
                    .map(|m| LowRankPair {
                        a: m.a.clone(),
                        b: m.b.clone(),
                    })
                    .collect(),
            },
        )
    }
}
