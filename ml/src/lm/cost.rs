//! Analytic FLOP counts of the transformer (modelled, not measured).
//!
//! Dense products count as in [`crate::model::cost`] (2 per multiply-accumulate plus the
//! bias add); LayerNorm [`LAYER_NORM_FLOPS`] and GELU [`GELU_FLOPS`] per element;
//! attention `2·keys·d_model` for the scores, [`SOFTMAX_FLOPS`] per score (scale, mask,
//! max, exp, sum, divide) and `2·keys·d_model` for the weighted sum of values, per query
//! token; residual and embedding adds one per element. Every query of a pass is counted
//! against all keys the pass computes (masked scores are computed too). Backward passes
//! follow the usual model: twice the forward for parameters that train, once (the input
//! gradients alone) through a frozen model, plus the adapters' own gradient FLOPs.

use super::model::{LmConfig, Proj};
use crate::model::cost::{
    ADAM_FLOPS_PER_PARAM, LOSS_FLOPS_PER_CLASS, dense_forward, lora_backward, lora_forward,
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

/// Forward FLOPs of `new` query tokens of one sequence that attend over `keys` keys,
/// with the given adapters, up to and including the LM head's logits.
pub fn forward_flops(config: &LmConfig, new: usize, keys: usize, adapters: &[AdapterShape]) -> u64 {
    let d = config.d_model as u64;
    let ff = config.d_ff as u64;
    let keys = keys as u64;
    let heads = config.heads as u64;
    let block = 2 * LAYER_NORM_FLOPS * d
        + 4 * dense_forward(config.d_model, config.d_model, false)
        + dense_forward(config.d_model, config.d_ff, false)
        + GELU_FLOPS * ff
        + dense_forward(config.d_ff, config.d_model, false)
        + 2 * keys * d
        + SOFTMAX_FLOPS * keys * heads
        + 2 * keys * d
        + 2 * d;
    let per_token = d
        + config.layers as u64 * block
        + LAYER_NORM_FLOPS * d
        + dense_forward(config.d_model, config.vocab, false)
        + adapters
            .iter()
            .map(|&(i, o, r)| lora_forward(i, o, r))
            .sum::<u64>();
    new as u64 * per_token
}

/// FLOPs of one training step over windows of the given lengths: forward, softmax
/// cross-entropy over the vocabulary, backward and the Adam update of `trainable`
/// parameters. `adapters` empty means full training (backward twice the forward);
/// otherwise the base is frozen (backward once the forward, plus the adapters' gradients).
pub fn train_step_flops(
    config: &LmConfig,
    windows: &[usize],
    adapters: &[AdapterShape],
    trainable: u64,
) -> u64 {
    let per_window: u64 = windows
        .iter()
        .map(|&len| {
            let fwd = forward_flops(config, len, len, adapters);
            let loss = len as u64 * LOSS_FLOPS_PER_CLASS * config.vocab as u64;
            let bwd = if adapters.is_empty() {
                2 * fwd
            } else {
                fwd + len as u64
                    * adapters
                        .iter()
                        .map(|&(i, o, r)| lora_backward(i, o, r, true))
                        .sum::<u64>()
            };
            fwd + loss + bwd
        })
        .sum();
    per_window + ADAM_FLOPS_PER_PARAM * trainable
}
