//! Generation with a KV cache, and heterogeneous batched generation for OpenLoRA serving.
//!
//! [`generate_batch`] decodes a batch of [`GenRequest`]s together, each with its own
//! prompt and adapter (or none): prompts are left-padded to a common length (padding keys
//! are masked and positions count from each prompt's first real token), the batch runs
//! one base-model pass per step, and each row adds its own low-rank update from the
//! per-request `A`/`B` matrices gathered into stacked tensors (the S-LoRA/Punica scheme).
//! Each row's output matches running that request alone with its adapter applied, within
//! floating-point tolerance.
//!
//! Tokens are chosen greedily (`temperature == 0`, ties to the lowest id) or sampled from
//! `softmax(logits / temperature)` with the stream `"lm/generate/sample/<request id>"` of
//! [`GenConfig::seed`], so a request's samples do not depend on the rest of the batch.

use std::time::Instant;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;

use super::LmError;
use super::adapter::{LmAdapter, Stacked};
use super::cost::{AdapterShape, adapter_shapes, decode_kernels};
use super::model::{KvCache, Layout, Lm, LmConfig, Proj, RowUpdate};
use super::tokenizer::{EOS, PAD};
use crate::data::rng::{Stream, stream};
use crate::model::StepCost;

/// Decoding settings shared by a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct GenConfig {
    /// Most tokens to generate per request.
    pub max_new_tokens: usize,
    /// 0 for greedy decoding; otherwise the softmax temperature of sampling.
    pub temperature: f32,
    /// Seed of the sampling streams.
    pub seed: u64,
    /// Stop a request once it emits [`EOS`] (the EOS is kept in its tokens).
    pub stop_at_eos: bool,
    /// Keep every step's next-token logits in [`Generation::logits`].
    pub keep_logits: bool,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            max_new_tokens: 16,
            temperature: 0.0,
            seed: 0,
            stop_at_eos: true,
            keep_logits: false,
        }
    }
}

/// One request of a batch.
#[derive(Clone, Debug)]
pub struct GenRequest<'a, B: Backend> {
    /// Caller's id; names the request's sampling stream.
    pub id: u64,
    /// Prompt token ids (at least one; typically starting with BOS).
    pub prompt: Vec<u32>,
    /// The request's adapter on the model's device, or `None` for the base model.
    pub adapter: Option<&'a LmAdapter<B>>,
}

/// One request's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Generation {
    /// The request's id.
    pub id: u64,
    /// Generated token ids (the prompt excluded).
    pub tokens: Vec<u32>,
    /// Next-token logits before each generated token, when [`GenConfig::keep_logits`].
    pub logits: Vec<Vec<f32>>,
    /// Analytic FLOPs of this request's own work: its prompt and generated tokens with
    /// its own adapter rank (the batch's padding is not charged to it).
    pub flops: u64,
}

/// The output of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGeneration {
    /// One generation per request, in request order.
    pub generations: Vec<Generation>,
    /// The batch: measured wall time, and the analytic FLOPs of everything it computed
    /// (padding positions and padded ranks included).
    pub cost: StepCost,
    /// Forward passes run (the prefill plus one per further step).
    pub passes: usize,
}

/// Chooses the next token from `logits`: greedy at temperature 0, else a sample.
fn choose(logits: &[f32], temperature: f32, rng: &mut Stream) -> u32 {
    if temperature == 0.0 {
        let mut best = 0;
        for (i, &x) in logits.iter().enumerate() {
            if x > logits[best] {
                best = i;
            }
        }
        return best as u32;
    }
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&x| (f64::from(x - max) / f64::from(temperature)).exp())
        .collect();
    let mut u = rng.random::<f64>() * weights.iter().sum::<f64>();
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i as u32;
        }
        u -= w;
    }
    (weights.len() - 1) as u32
}

/// The adapter ranks of flat projections, `ranks[flat]` (0 = none).
fn ranks<B: Backend>(layers: usize, adapter: Option<&LmAdapter<B>>) -> Vec<usize> {
    (0..layers * Proj::ALL.len())
        .map(|f| adapter.and_then(|a| a.layer(f)).map_or(0, |a| a.rank()))
        .collect()
}

/// Checks a prompt against the model and the decoding settings: not empty, every token
/// in the vocabulary, prompt plus `max_new_tokens` within the context.
pub(crate) fn check_prompt(
    lm: &LmConfig,
    prompt: &[u32],
    config: &GenConfig,
) -> Result<(), String> {
    if prompt.is_empty() {
        return Err("empty prompt; start it with BOS".into());
    }
    if let Some(t) = prompt.iter().find(|&&t| t as usize >= lm.vocab) {
        return Err(format!("token {t} outside the vocabulary of {}", lm.vocab));
    }
    if prompt.len() + config.max_new_tokens > lm.context {
        return Err(format!(
            "prompt of {} tokens plus max_new_tokens {} exceeds the context of {}; \
             shorten the prompt or generate fewer tokens",
            prompt.len(),
            config.max_new_tokens,
            lm.context
        ));
    }
    Ok(())
}

/// Checks the decoding settings shared by a batch.
pub(crate) fn check_config(config: &GenConfig) -> Result<(), LmError> {
    if !(config.temperature.is_finite() && config.temperature >= 0.0) {
        return Err(LmError::Generate(format!(
            "temperature {} must be finite and >= 0",
            config.temperature
        )));
    }
    Ok(())
}

/// Decodes `requests` together over `base` (see the module docs). Errors on an empty
/// batch, an empty prompt, a token outside the vocabulary, a prompt plus
/// `max_new_tokens` longer than the context, an adapter that does not fit the model, or a
/// bad temperature.
pub fn generate_batch<B: Backend>(
    base: &Lm<B>,
    requests: &[GenRequest<'_, B>],
    config: &GenConfig,
    device: &B::Device,
) -> Result<BatchGeneration, LmError> {
    let lm = base.config();
    if requests.is_empty() {
        return Err(LmError::Generate("the batch has no requests".into()));
    }
    check_config(config)?;
    for r in requests {
        let bad = |what: String| Err(LmError::Generate(format!("request {}: {what}", r.id)));
        if let Err(what) = check_prompt(&lm, &r.prompt, config) {
            return bad(what);
        }
        if let Some(a) = r.adapter
            && (a.layers.len() != lm.layers * Proj::ALL.len()
                || a.layers.iter().enumerate().any(|(f, l)| {
                    l.as_ref()
                        .is_some_and(|l| l.a.dims() != [l.rank(), Proj::from_flat(f).1.dims(&lm).0])
                }))
        {
            return bad("the adapter was built for a model of another shape".into());
        }
    }

    let start = Instant::now();
    let adapters: Vec<Option<&LmAdapter<B>>> = requests.iter().map(|r| r.adapter).collect();
    let stacked = adapters
        .iter()
        .any(Option::is_some)
        .then(|| Stacked::new(&lm, &adapters, device));
    // The model's own adapters (if any) apply to every row, on top of the row's adapter.
    let built_in = adapter_shapes(&lm, &base.adapter_ranks());
    let padded = stacked.as_ref().map_or_else(Vec::new, |s| {
        let r: Vec<usize> = (0..lm.layers * Proj::ALL.len())
            .map(|f| s.rank(f))
            .collect();
        adapter_shapes(&lm, &r)
    });
    let padded = [padded, built_in.clone()].concat();
    let prompts: Vec<(u64, &[u32])> = requests.iter().map(|r| (r.id, &r.prompt[..])).collect();
    let decoded = decode(
        base,
        &prompts,
        config,
        stacked.as_ref().map(|s| s as &dyn RowUpdate<B>),
        device,
    )?;
    let generations = decoded
        .generations
        .into_iter()
        .zip(&adapters)
        .zip(requests)
        .map(|((mut g, a), r)| {
            let own = [adapter_shapes(&lm, &ranks(lm.layers, *a)), built_in.clone()].concat();
            g.flops = request_flops(&lm, r.prompt.len(), g.tokens.len(), &own);
            g
        })
        .collect();
    Ok(BatchGeneration {
        generations,
        // Every row computes what one request of the padded width and every pass would.
        cost: StepCost::new(
            B::name(device),
            start.elapsed().as_secs_f64(),
            decode_kernels(&lm, requests.len(), decoded.width, decoded.passes, &padded),
        ),
        passes: decoded.passes,
    })
}

/// Analytic FLOPs of one sequence's decoding ([`decode_kernels`] of one row): the prefill
/// of its `prompt` tokens, then one token per further step for each of its `generated`
/// tokens but the last (0 when nothing was generated).
pub(crate) fn request_flops(
    lm: &LmConfig,
    prompt: usize,
    generated: usize,
    shapes: &[AdapterShape],
) -> u64 {
    decode_kernels(lm, 1, prompt, generated, shapes).flops
}

/// What [`decode`] produced.
pub(crate) struct Decoded {
    /// One generation per prompt, in order, with `flops` left at 0 for the caller.
    pub generations: Vec<Generation>,
    /// Forward passes run (the prefill plus one per further step).
    pub passes: usize,
    /// The padded prompt width.
    pub width: usize,
}

/// The decoding loop shared by [`generate_batch`] and OpenLoRA's language-model server:
/// `prompts` `(sampling stream id, tokens)`, already checked, left-padded to a common
/// width and decoded with a KV cache, `update` adding each row's low-rank update.
pub(crate) fn decode<B: Backend>(
    base: &Lm<B>,
    prompts: &[(u64, &[u32])],
    config: &GenConfig,
    update: Option<&dyn RowUpdate<B>>,
    device: &B::Device,
) -> Result<Decoded, LmError> {
    let rows = prompts.len();
    let width = prompts.iter().map(|p| p.1.len()).max().unwrap_or(0);
    let pads: Vec<usize> = prompts.iter().map(|p| width - p.1.len()).collect();
    let mut rngs: Vec<Stream> = prompts
        .iter()
        .map(|p| stream(config.seed, &format!("lm/generate/sample/{}", p.0)))
        .collect();
    let mut out: Vec<Generation> = prompts
        .iter()
        .map(|p| Generation {
            id: p.0,
            tokens: Vec::new(),
            logits: Vec::new(),
            flops: 0,
        })
        .collect();
    let mut done = vec![config.max_new_tokens == 0; rows];
    let mut cache = KvCache::new(base.config().layers);
    let tokens: Vec<i64> = prompts
        .iter()
        .zip(&pads)
        .flat_map(|(p, &pad)| {
            std::iter::repeat_n(i64::from(PAD), pad).chain(p.1.iter().map(|&t| i64::from(t)))
        })
        .collect();
    let mut layout = Layout {
        pads,
        past: 0,
        new: width,
    };
    let mut input = Tensor::<B, 2, Int>::from_data(TensorData::new(tokens, [rows, width]), device);
    let mut passes = 0;
    while !done.iter().all(|&d| d) {
        let logits = base.forward_with(input, &layout, Some(&mut cache), update);
        passes += 1;
        let [_, new, vocab] = logits.dims();
        let last = logits
            .slice([0..rows, new - 1..new, 0..vocab])
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .map_err(|e| LmError::Generate(format!("reading logits: {e:?}")))?;
        let mut next = Vec::with_capacity(rows);
        for (i, row) in last.chunks(vocab).enumerate() {
            let g = &mut out[i];
            if done[i] {
                next.push(i64::from(g.tokens.last().copied().unwrap_or(PAD)));
                continue;
            }
            let t = choose(row, config.temperature, &mut rngs[i]);
            if config.keep_logits {
                g.logits.push(row.to_vec());
            }
            g.tokens.push(t);
            done[i] = g.tokens.len() >= config.max_new_tokens || (config.stop_at_eos && t == EOS);
            next.push(i64::from(t));
        }
        if done.iter().all(|&d| d) {
            break;
        }
        // Feed each row's last token; a finished row repeats its last one (ignored).
        layout = Layout {
            pads: layout.pads,
            past: cache.len(),
            new: 1,
        };
        input = Tensor::from_data(TensorData::new(next, [rows, 1]), device);
    }
    B::sync(device).map_err(|e| LmError::Generate(format!("device sync: {e:?}")))?;
    Ok(Decoded {
        generations: out,
        passes,
        width,
    })
}

/// Generates from one prompt with `model` (its own adapters, if any, applied).
pub fn generate<B: Backend>(
    model: &Lm<B>,
    prompt: &[u32],
    config: &GenConfig,
    device: &B::Device,
) -> Result<Generation, LmError> {
    let request = GenRequest {
        id: 0,
        prompt: prompt.to_vec(),
        adapter: None,
    };
    let mut batch = generate_batch(model, &[request], config, device)?;
    Ok(batch.generations.remove(0))
}
