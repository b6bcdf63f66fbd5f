//! Analytic compute model and measured wall time.
//!
//! FLOPs are counted, not measured: 2 per multiply-accumulate of every dense product,
//! 1 per element for bias adds, ReLU and LoRA's scale-and-add, [`LOSS_FLOPS_PER_CLASS`]
//! per logit for softmax cross-entropy, and [`ADAM_FLOPS_PER_PARAM`] per trainable
//! parameter per optimizer step. A backward pass through a dense layer costs `2·in·out`
//! for the input gradient (skipped for the first layer, whose input needs none) and
//! `2·in·out + out` for the weight and bias gradients (only when the layer trains).
//! Multiplying by a device profile's sustained FLOP/s turns these into modelled GPU time.

/// FLOPs per logit of softmax cross-entropy (max, subtract, exp, sum, log, pick).
pub const LOSS_FLOPS_PER_CLASS: u64 = 6;

/// FLOPs per trainable parameter of one Adam update (two moments, bias correction, step).
pub const ADAM_FLOPS_PER_PARAM: u64 = 12;

/// Cost of one unit of work (a training step or a forward pass) on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCost {
    /// The device that ran it, as the backend names it (e.g. `"ndarray"`).
    pub device: String,
    /// Measured wall time in seconds (excluded from any digest: it varies run to run).
    pub wall_seconds: f64,
    /// Analytic FLOP count (modelled, see the module docs).
    pub flops: u64,
}

impl StepCost {
    /// Achieved FLOP/s (`flops / wall_seconds`); 0 when no time was measured.
    pub fn flops_per_second(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.flops as f64 / self.wall_seconds
        } else {
            0.0
        }
    }
}

/// Forward FLOPs per example of a dense layer, with a ReLU after it when `relu`.
pub fn dense_forward(d_in: usize, d_out: usize, relu: bool) -> u64 {
    let (i, o) = (d_in as u64, d_out as u64);
    2 * i * o + o + if relu { o } else { 0 }
}

/// Backward FLOPs per example of a dense layer: the input gradient when `input_grad`, the
/// weight and bias gradients when `trainable`.
pub fn dense_backward(d_in: usize, d_out: usize, input_grad: bool, trainable: bool) -> u64 {
    let (i, o) = (d_in as u64, d_out as u64);
    let mut f = 0;
    if input_grad {
        f += 2 * i * o;
    }
    if trainable {
        f += 2 * i * o + o;
    }
    f
}

/// Extra forward FLOPs per example of a rank-`r` LoRA branch: `x·Aᵀ` (`2·in·r`), `·Bᵀ`
/// (`2·r·out`), scale and add (`2·out`).
pub fn lora_forward(d_in: usize, d_out: usize, rank: usize) -> u64 {
    let (i, o, r) = (d_in as u64, d_out as u64, rank as u64);
    2 * i * r + 2 * r * o + 2 * o
}

/// Extra backward FLOPs per example of a rank-`r` LoRA branch: gradients of `B` and `A`
/// (`2·r·out + 2·in·r`), the gradient into the rank-`r` activations (`2·r·out`) and, when
/// `input_grad`, into the branch's input (`2·in·r`).
pub fn lora_backward(d_in: usize, d_out: usize, rank: usize, input_grad: bool) -> u64 {
    let (i, o, r) = (d_in as u64, d_out as u64, rank as u64);
    let params = 2 * r * o + 2 * i * r;
    let mid = 2 * r * o;
    params + mid + if input_grad { 2 * i * r } else { 0 }
}
