//! The causal transformer decoder: token and learned position embeddings, pre-LayerNorm
//! blocks of multi-head causal self-attention and a GELU MLP, a final LayerNorm and a
//! linear LM head.
//!
//! Every dense projection of a block is a [`LoraLinear`], with no adapter in a base model,
//! so one forward path serves pre-training, LoRA fine-tuning and adapter inference. The
//! projections are addressed by a flat index `block * 6 + proj` ([`Proj`]), which is the
//! layer index [`LoraConfig`](crate::model::LoraConfig) targets refer to.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, LayerNormConfig, Linear};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::activation::{gelu, softmax};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::LmError;
use crate::data::rng::stream;
use crate::model::LoraLinear;
use crate::model::mlp::{init_linear, linear_dims, param, uniform};

/// Bound of the uniform initialisation of the token and position embeddings.
const EMBED_INIT: f32 = 0.1;

/// Shape of an [`Lm`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LmConfig {
    /// Vocabulary size (the tokenizer's [`len`](super::Tokenizer::len)).
    pub vocab: usize,
    /// Width of the residual stream.
    pub d_model: usize,
    /// Number of transformer blocks.
    pub layers: usize,
    /// Attention heads per block; must divide `d_model`.
    pub heads: usize,
    /// Hidden width of each block's MLP.
    pub d_ff: usize,
    /// Context length: the most tokens one sequence may hold (learned positions).
    pub context: usize,
}

impl LmConfig {
    /// The default small model: `d_model` 64, 2 blocks, 4 heads, MLP width 256, context 64.
    pub fn small(vocab: usize) -> LmConfig {
        LmConfig {
            vocab,
            d_model: 64,
            layers: 2,
            heads: 4,
            d_ff: 256,
            context: 64,
        }
    }

    /// Checks every dimension is positive and the heads divide `d_model`.
    pub fn validate(&self) -> Result<(), LmError> {
        let dims = [
            ("vocab", self.vocab),
            ("d_model", self.d_model),
            ("layers", self.layers),
            ("heads", self.heads),
            ("d_ff", self.d_ff),
            ("context", self.context),
        ];
        if let Some((name, _)) = dims.iter().find(|(_, v)| *v == 0) {
            return Err(LmError::Config(format!("{name} must be at least 1")));
        }
        if self.vocab <= super::tokenizer::SPECIALS.len() {
            return Err(LmError::Config(format!(
                "vocab {} must exceed the {} special tokens",
                self.vocab,
                super::tokenizer::SPECIALS.len()
            )));
        }
        if !self.d_model.is_multiple_of(self.heads) {
            return Err(LmError::Config(format!(
                "heads {} must divide d_model {}",
                self.heads, self.d_model
            )));
        }
        Ok(())
    }

    /// `(in, out)` of every block projection, in flat order (`block * 6 + proj`).
    pub fn linear_dims(&self) -> Vec<(usize, usize)> {
        (0..self.layers)
            .flat_map(|_| Proj::ALL.map(|p| p.dims(self)))
            .collect()
    }

    /// Builds the model, every parameter drawn from its own stream of `seed`:
    /// `"lm/init/tok"`, `"lm/init/pos"`, `"lm/init/block<i>/<proj>"` and `"lm/init/head"`
    /// (dense layers uniform in `±1/sqrt(in)`, embeddings in `±0.1`; LayerNorms start at
    /// scale 1, shift 0). Never touches burn's global RNG.
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<Lm<B>, LmError> {
        self.validate()?;
        let embedding = |name: &str, rows: usize| Embedding {
            weight: param(
                uniform(
                    &mut stream(seed, &format!("lm/init/{name}")),
                    rows * self.d_model,
                    EMBED_INIT,
                ),
                [rows, self.d_model],
                device,
            ),
        };
        let blocks = (0..self.layers)
            .map(|i| {
                let [q, k, v, o, up, down] = Proj::ALL.map(|p| {
                    let (d_in, d_out) = p.dims(self);
                    let mut rng = stream(seed, &format!("lm/init/{}", p.layer_name(i)));
                    LoraLinear {
                        base: init_linear(&mut rng, d_in, d_out, device),
                        adapter: None,
                    }
                });
                Block {
                    ln1: LayerNormConfig::new(self.d_model).init(device),
                    q,
                    k,
                    v,
                    o,
                    ln2: LayerNormConfig::new(self.d_model).init(device),
                    up,
                    down,
                    heads: self.heads,
                }
            })
            .collect();
        let mut rng = stream(seed, "lm/init/head");
        Ok(Lm {
            tok: embedding("tok", self.vocab),
            pos: embedding("pos", self.context),
            blocks,
            norm: LayerNormConfig::new(self.d_model).init(device),
            head: init_linear(&mut rng, self.d_model, self.vocab, device),
        })
    }
}

/// A dense projection of a transformer block, the unit LoRA targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Proj {
    /// Attention query projection (`d_model -> d_model`).
    Q,
    /// Attention key projection.
    K,
    /// Attention value projection.
    V,
    /// Attention output projection.
    O,
    /// MLP up-projection (`d_model -> d_ff`).
    Up,
    /// MLP down-projection (`d_ff -> d_model`).
    Down,
}

impl Proj {
    /// All projections in block order.
    pub const ALL: [Proj; 6] = [Proj::Q, Proj::K, Proj::V, Proj::O, Proj::Up, Proj::Down];

    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Proj::Q => "q",
            Proj::K => "k",
            Proj::V => "v",
            Proj::O => "o",
            Proj::Up => "up",
            Proj::Down => "down",
        }
    }

    /// Position within a block (0-5).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Flat layer index of this projection in block `block`: `block * 6 + index`.
    pub fn flat(self, block: usize) -> usize {
        block * Proj::ALL.len() + self.index()
    }

    /// Block and projection of flat layer index `flat`.
    pub fn from_flat(flat: usize) -> (usize, Proj) {
        (flat / Proj::ALL.len(), Proj::ALL[flat % Proj::ALL.len()])
    }

    /// `(in, out)` of this projection in a model of shape `config`.
    pub fn dims(self, config: &LmConfig) -> (usize, usize) {
        match self {
            Proj::Up => (config.d_model, config.d_ff),
            Proj::Down => (config.d_ff, config.d_model),
            _ => (config.d_model, config.d_model),
        }
    }

    /// `"block<i>/<name>"`, the suffix of this projection's stream names.
    pub fn layer_name(self, block: usize) -> String {
        format!("block{block}/{}", self.name())
    }
}

/// One pre-LayerNorm transformer block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    ln1: LayerNorm<B>,
    q: LoraLinear<B>,
    k: LoraLinear<B>,
    v: LoraLinear<B>,
    o: LoraLinear<B>,
    ln2: LayerNorm<B>,
    up: LoraLinear<B>,
    down: LoraLinear<B>,
    #[module(skip)]
    heads: usize,
}

impl<B: Backend> Block<B> {
    /// The projections in [`Proj::ALL`] order.
    pub(crate) fn projections(&self) -> [&LoraLinear<B>; 6] {
        [&self.q, &self.k, &self.v, &self.o, &self.up, &self.down]
    }

    /// Rebuilds the block with `f` applied to every projection (given its [`Proj`]).
    pub(crate) fn map_projections(
        self,
        mut f: impl FnMut(Proj, LoraLinear<B>) -> Result<LoraLinear<B>, LmError>,
    ) -> Result<Block<B>, LmError> {
        Ok(Block {
            q: f(Proj::Q, self.q)?,
            k: f(Proj::K, self.k)?,
            v: f(Proj::V, self.v)?,
            o: f(Proj::O, self.o)?,
            up: f(Proj::Up, self.up)?,
            down: f(Proj::Down, self.down)?,
            ln1: self.ln1,
            ln2: self.ln2,
            heads: self.heads,
        })
    }
}

/// Cached keys and values of every block, `[batch, heads, len, d_head]` each, for
/// incremental decoding.
#[derive(Clone, Debug)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    len: usize,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for a model with `layers` blocks.
    pub fn new(layers: usize) -> KvCache<B> {
        KvCache {
            layers: vec![None; layers],
            len: 0,
        }
    }

    /// Number of positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Per-row low-rank updates added after the block projections: each row of a batch may
/// carry its own adapter (heterogeneous batched serving).
pub(crate) trait RowUpdate<B: Backend> {
    /// The update of flat projection `flat` for `x` `[batch, len, in]`: `[batch, len,
    /// out]`, or `None` when no row adapts this projection.
    fn delta(&self, flat: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 3>>;
}

/// Where the new tokens of a forward pass sit: per-row left padding and the cache length.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    /// Left-padding of each row: its first `pads[b]` positions are padding.
    pub pads: Vec<usize>,
    /// Positions already in the cache.
    pub past: usize,
    /// New positions in this pass.
    pub new: usize,
}

impl Layout {
    /// `rows` unpadded sequences of `new` tokens with nothing cached.
    pub fn fresh(rows: usize, new: usize) -> Layout {
        Layout {
            pads: vec![0; rows],
            past: 0,
            new,
        }
    }

    /// Position ids `[batch, new]`: a row's real tokens count from 0 after its padding.
    fn positions<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2, Int> {
        let ids: Vec<i64> = self
            .pads
            .iter()
            .flat_map(|&pad| {
                (self.past..self.past + self.new).map(move |i| i.saturating_sub(pad) as i64)
            })
            .collect();
        Tensor::from_data(TensorData::new(ids, [self.pads.len(), self.new]), device)
    }

    /// Attention mask `[batch, new, past + new]`, true where a query must not look: at
    /// later keys, and (for a real query) at its row's padding keys. A padding query may
    /// see earlier padding, so no row is fully masked.
    fn mask<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3, Bool> {
        let keys = self.past + self.new;
        let mut m = Vec::with_capacity(self.pads.len() * self.new * keys);
        for &pad in &self.pads {
            for q in self.past..keys {
                for k in 0..keys {
                    m.push(k > q || (q >= pad && k < pad));
                }
            }
        }
        Tensor::from_data(
            TensorData::new(m, [self.pads.len(), self.new, keys]),
            device,
        )
    }
}

/// The causal transformer language model (see the module docs).
#[derive(Module, Debug)]
pub struct Lm<B: Backend> {
    tok: Embedding<B>,
    pos: Embedding<B>,
    blocks: Vec<Block<B>>,
    norm: LayerNorm<B>,
    head: Linear<B>,
}

/// Header of a saved model: the shape to rebuild before loading the record.
#[derive(Serialize, Deserialize)]
struct ModelHeader {
    config: LmConfig,
}

const MODEL_MAGIC: &[u8; 10] = b"olsim-lm/1";

impl<B: Backend> Lm<B> {
    /// The configuration this model has.
    pub fn config(&self) -> LmConfig {
        let [vocab, d_model] = self.tok.weight.shape().dims();
        let [context, _] = self.pos.weight.shape().dims();
        LmConfig {
            vocab,
            d_model,
            layers: self.blocks.len(),
            heads: self.blocks.first().map_or(0, |b| b.heads),
            d_ff: self.blocks.first().map_or(0, |b| linear_dims(&b.up.base).1),
            context,
        }
    }

    /// The blocks, input first.
    pub(crate) fn blocks(&self) -> &[Block<B>] {
        &self.blocks
    }

    /// Rebuilds the model with `f` applied to every block projection (given its flat
    /// index).
    pub(crate) fn map_projections(
        self,
        mut f: impl FnMut(usize, LoraLinear<B>) -> Result<LoraLinear<B>, LmError>,
    ) -> Result<Lm<B>, LmError> {
        let blocks = self
            .blocks
            .into_iter()
            .enumerate()
            .map(|(i, b)| b.map_projections(|p, l| f(p.flat(i), l)))
            .collect::<Result<_, _>>()?;
        Ok(Lm { blocks, ..self })
    }

    /// Logits `[batch, len, vocab]` of token ids `[batch, len]` (positions from 0, causal).
    pub fn forward(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        let [rows, len] = tokens.dims();
        self.forward_with(tokens, &Layout::fresh(rows, len), None, None)
    }

    /// Logits `[batch, new, vocab]` of `new` tokens per row appended after the `cache`
    /// contents (all rows unpadded); the cache grows by `new`.
    pub fn forward_cached(
        &self,
        tokens: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let [rows, new] = tokens.dims();
        let layout = Layout {
            pads: vec![0; rows],
            past: cache.len(),
            new,
        };
        self.forward_with(tokens, &layout, Some(cache), None)
    }

    /// The general forward pass: `layout` places the new tokens, `cache` (when given)
    /// supplies and receives keys and values, `extra` adds per-row low-rank updates.
    pub(crate) fn forward_with(
        &self,
        tokens: Tensor<B, 2, Int>,
        layout: &Layout,
        mut cache: Option<&mut KvCache<B>>,
        extra: Option<&dyn RowUpdate<B>>,
    ) -> Tensor<B, 3> {
        let device = tokens.device();
        let mut h = self.tok.forward(tokens) + self.pos.forward(layout.positions(&device));
        let mask = layout.mask::<B>(&device);
        for (i, block) in self.blocks.iter().enumerate() {
            let kv = cache.as_deref_mut().map(|c| &mut c.layers[i]);
            h = block_forward(block, i, h, mask.clone(), kv, extra);
        }
        if let Some(c) = cache {
            c.len += layout.new;
        }
        let h = self.norm.forward(h);
        let [rows, len, d] = h.dims();
        let vocab = self.config().vocab;
        self.head
            .forward(h.reshape([rows * len, d]))
            .reshape([rows, len, vocab])
    }

    /// A copy of the model with every adapter removed (the base model).
    pub fn without_adapters(&self) -> Lm<B> {
        self.clone()
            .map_projections(|_, l| {
                Ok(LoraLinear {
                    base: l.base,
                    adapter: None,
                })
            })
            .expect("removing adapters cannot fail")
    }

    /// Serialises the base model (adapters are left out; see
    /// [`LmAdapterWeights`](super::LmAdapterWeights) for those): a header with the
    /// [`LmConfig`], then burn's full-precision binary record.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LmError> {
        let header = serde_json::to_vec(&ModelHeader {
            config: self.config(),
        })
        .map_err(|e| LmError::Record(format!("model header: {e}")))?;
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .record(self.without_adapters().into_record(), ())
            .map_err(|e| LmError::Record(e.to_string()))?;
        Ok(super::frame(MODEL_MAGIC, &header, &record))
    }

    /// Loads a model written by [`to_bytes`](Lm::to_bytes) onto `device` (any backend).
    pub fn from_bytes(bytes: &[u8], device: &B::Device) -> Result<Lm<B>, LmError> {
        let (header, record) = super::unframe(bytes, MODEL_MAGIC, "LM model file")?;
        let header: ModelHeader = serde_json::from_slice(header)
            .map_err(|e| LmError::Record(format!("model header: {e}")))?;
        let model = header.config.init::<B>(0, device)?;
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .load(record.to_vec(), device)
            .map_err(|e| LmError::Record(format!("model record: {e}")))?;
        Ok(model.load_record(record))
    }
}

/// A block projection of `x` `[batch, len, in]`: the layer's own forward (base plus its
/// adapter, if any) on the rows reshaped to 2-D, plus the per-row update from `extra`.
fn project<B: Backend>(
    layer: &LoraLinear<B>,
    flat: usize,
    x: Tensor<B, 3>,
    extra: Option<&dyn RowUpdate<B>>,
) -> Tensor<B, 3> {
    let [rows, len, d_in] = x.dims();
    let (_, d_out) = linear_dims(&layer.base);
    let y = layer
        .forward(x.clone().reshape([rows * len, d_in]))
        .reshape([rows, len, d_out]);
    match extra.and_then(|e| e.delta(flat, x)) {
        Some(delta) => y + delta,
        None => y,
    }
}

/// One block: `h + attn(ln1(h))`, then `h + mlp(ln2(h))`.
fn block_forward<B: Backend>(
    block: &Block<B>,
    index: usize,
    h: Tensor<B, 3>,
    mask: Tensor<B, 3, Bool>,
    kv: Option<&mut Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    extra: Option<&dyn RowUpdate<B>>,
) -> Tensor<B, 3> {
    let [rows, new, d] = h.dims();
    let heads = block.heads;
    let dh = d / heads;
    let x = block.ln1.forward(h.clone());
    let split = |t: Tensor<B, 3>| t.reshape([rows, new, heads, dh]).swap_dims(1, 2);
    let q = split(project(&block.q, Proj::Q.flat(index), x.clone(), extra));
    let mut k = split(project(&block.k, Proj::K.flat(index), x.clone(), extra));
    let mut v = split(project(&block.v, Proj::V.flat(index), x, extra));
    if let Some(slot) = kv {
        if let Some((pk, pv)) = slot.take() {
            k = Tensor::cat(vec![pk, k], 2);
            v = Tensor::cat(vec![pv, v], 2);
        }
        *slot = Some((k.clone(), v.clone()));
    }
    let keys = k.dims()[2];
    let scores = q
        .matmul(k.swap_dims(2, 3))
        .mul_scalar(1.0 / (dh as f32).sqrt());
    let mask = mask
        .reshape([rows, 1, new, keys])
        .expand([rows, heads, new, keys]);
    let attn = softmax(scores.mask_fill(mask, -1.0e9), 3);
    let ctx = attn.matmul(v).swap_dims(1, 2).reshape([rows, new, d]);
    let h = h + project(&block.o, Proj::O.flat(index), ctx, extra);
    let x = block.ln2.forward(h.clone());
    let up = gelu(project(&block.up, Proj::Up.flat(index), x, extra));
    h + project(&block.down, Proj::Down.flat(index), up, extra)
}
