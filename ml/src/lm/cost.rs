//! Analytic kernel counts of the transformer (modelled, not measured): FLOPs, launches and
//! bytes as in [`crate::model::cost`], whose rules apply.
//!
//! FLOPs: dense products count as there (2 per multiply-accumulate plus the bias add);
//! LayerNorm [`LAYER_NORM_FLOPS`] and GELU [`GELU_FLOPS`] per element; attention
//! `2·keys·d_model` for the scores, [`SOFTMAX_FLOPS`] per score (scale, mask, max, exp,
//! sum, divide) and `2·keys·d_model` for the weighted sum of values, per query token;
//! residual and embedding adds one per element. Every query of a pass is counted against
//! all keys the pass computes (masked scores are computed too).
//!
//! Kernels of one forward pass over a batch of `rows` sequences (all heads and rows of an
//! attention product are one batched launch): the token-embedding gather and the position
//! add; per block two LayerNorms, four projections and two feed-forward projections (a
//! product and a bias add each), the score product, the softmax, the value product, GELU
//! and two residual adds; the final LayerNorm, the LM head and each adapter's three
//! kernels. Backward passes follow the usual model: twice the forward's kernels for
//! parameters that train, once (the input gradients alone) through a frozen model, plus
//! the adapters' own gradient kernels. A training batch is counted as it runs: its windows
//! padded to the longest.

use super::model::{LmConfig, Proj};
use crate::model::cost::{
    Kernels, adam, dense_forward, lora_backward, lora_forward, softmax_cross_entropy,
};

/// FLOPs per element of a LayerNorm (mean, variance, normalise, scale, shift).
pub const LAYER_NORM_FLOPS: u64 = 8;
/// FLOPs per element of GELU.
pub const GELU_FLOPS: u64 = 8;
/// FLOPs per attention score from the scale to the normalised weight.
pub const SOFTMAX_FLOPS: u64 = 6;

/// `(d_in, d_out, rank)` of one adapted projection.
pub type AdapterShape = (usize, usize, usize);

/// The adapter shapes `(d_in, d_out, rank)` of the flat projections `ranks` gives a rank
/// for (`ranks[flat]`, 0 = none).
pub fn adapter_shapes(config: &LmConfig, ranks: &[usize]) -> Vec<AdapterShape> {
    ranks
        .iter()
        .enumerate()
        .filter(|(_, r)| **r > 0)
        .map(|(flat, &r)| {
            let (d_in, d_out) = Proj::from_flat(flat).1.dims(config);
            (d_in, d_out, r)
        })
        .collect()
}

/// Kernels of a forward pass of `new` query tokens of each of `rows` sequences that attend
/// over `keys` keys, with the given adapters, up to and including the LM head's logits.
pub fn forward_kernels(
    config: &LmConfig,
    rows: usize,
    new: usize,
    keys: usize,
    adapters: &[AdapterShape],
) -> Kernels {
    let (d, ff, heads) = (config.d_model, config.d_ff, config.heads);
    let t = rows * new;
    let (td, tf) = (t * d, t * ff);
    let scores = rows * heads * new * keys;
    let e = Kernels::elementwise;
    let layer_norm = e(td + 2 * d, td, LAYER_NORM_FLOPS as usize * td);
    let residual = e(2 * td, td, td);
    // `heads` products per row of `[new, d/heads]·[d/heads, keys]`, then `[new, keys]·[keys,
    // d/heads]`, in one launch each.
    let attention_product = Kernels {
        flops: 2 * (td * keys) as u64,
        launches: 1,
        bytes: 0,
    };
    let (q_bytes, kv_bytes) = (td as u64, (rows * keys * d) as u64);
    let score_bytes = scores as u64;
    let block = layer_norm.times(2)
        + dense_forward(t, d, d, false).times(4)
        + Kernels {
            bytes: 4 * (q_bytes + kv_bytes + score_bytes),
            ..attention_product
        }
        + e(scores, scores, SOFTMAX_FLOPS as usize * scores)
        + Kernels {
            bytes: 4 * (score_bytes + kv_bytes + q_bytes),
            ..attention_product
        }
        + residual.times(2)
        + dense_forward(t, d, ff, false)
        + e(tf, tf, GELU_FLOPS as usize * tf)
        + dense_forward(t, ff, d, false);
    e(td, td, 0)
        + residual
        + block.times(config.layers)
        + layer_norm
        + dense_forward(t, d, config.vocab, false)
        + adapters
            .iter()
            .map(|&(i, o, r)| lora_forward(t, i, o, r))
            .sum::<Kernels>()
}

/// Kernels of decoding a batch of `rows` sequences of `prompt` tokens each: the prefill,
/// then one token per further pass for each of `generated` tokens but the last, attending
/// over the sequence's own keys, with adapters of the given shapes; each pass ends with
/// sampling the next token from the last position's logits. Nothing when nothing was
/// generated.
pub fn decode_kernels(
    config: &LmConfig,
    rows: usize,
    prompt: usize,
    generated: usize,
    adapters: &[AdapterShape],
) -> Kernels {
    if generated == 0 {
        return Kernels::default();
    }
    let sample = Kernels::elementwise(rows * config.vocab, rows, 0);
    forward_kernels(config, rows, prompt, prompt, adapters)
        + (1..generated)
            .map(|t| forward_kernels(config, rows, 1, prompt + t, adapters))
            .sum::<Kernels>()
        + sample.times(generated)
}

/// Parameter tensors of a full model: token and position embeddings, per block two
/// LayerNorms (scale and shift) and six projections (weight and bias), the final LayerNorm
/// and the head.
pub fn parameter_tensors(config: &LmConfig) -> usize {
    2 + 16 * config.layers + 2 + 2
}

/// Kernels of one training step over a batch of `rows` windows padded to `len` tokens:
/// forward, softmax cross-entropy over the vocabulary, backward and the Adam update of
/// `trainable` parameters. `adapters` empty means full training (backward twice the
/// forward, every parameter tensor updated); otherwise the base is frozen (backward once
/// the forward, plus the adapters' gradients; two tensors per adapter updated).
pub fn train_step_kernels(
    config: &LmConfig,
    rows: usize,
    len: usize,
    adapters: &[AdapterShape],
    trainable: u64,
) -> Kernels {
    let t = rows * len;
    let fwd = forward_kernels(config, rows, len, len, adapters);
    let loss = softmax_cross_entropy(t, config.vocab);
    let (bwd, tensors) = if adapters.is_empty() {
        (fwd.times(2), parameter_tensors(config))
    } else {
        (
            fwd + adapters
                .iter()
                .map(|&(i, o, r)| lora_backward(t, i, o, r, true))
                .sum::<Kernels>(),
            2 * adapters.len(),
        )
    };
    fwd + loss + bwd + adam(trainable, tensors)
}
