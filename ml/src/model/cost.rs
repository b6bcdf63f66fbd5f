//! Analytic compute model (a roofline with launch overhead) and measured wall time.
//!
//! Every unit of work (a training step, a served batch, an influence precompute or scoring
//! pass, a language-model step) is counted as the kernels a GPU backend would launch for
//! it ([`Kernels`]): their FLOPs, the bytes they move to and from device memory, and how
//! many there are. Counts are analytic and deterministic, never measured.
//!
//! **Kernels.** One per dense product ([`Kernels::matmul`]), per bias add, per activation,
//! per LayerNorm, per softmax, per residual add, per piece of the loss (log-softmax,
//! pick-and-mean, its gradient), per gradient of an activation, and one Adam update per
//! parameter tensor ([`adam`]); nothing is fused beyond that and views (transposes,
//! narrows) launch nothing.
//!
//! **Bytes.** Each kernel reads every input operand from device memory once and writes its
//! output once (no reuse between kernels through caches), [`F32_BYTES`] per element:
//! a `[m, k]·[k, n]` product moves `4·(m·k + k·n + m·n)` bytes; an Adam update reads the
//! parameter, its gradient and both moments and writes the parameter and both moments
//! (`7 × 4` bytes per parameter).
//!
//! **FLOPs.** 2 per multiply-accumulate of every dense product, 1 per element for bias
//! adds, ReLU and LoRA's scale-and-add, [`LOSS_FLOPS_PER_CLASS`] per logit for softmax
//! cross-entropy, and [`ADAM_FLOPS_PER_PARAM`] per trainable parameter per optimizer step.
//! A backward pass through a dense layer costs `2·in·out` for the input gradient (skipped
//! for the first layer, whose input needs none) and `2·in·out + out` for the weight and bias
//! gradients (only when the layer trains). Kernels the FLOP count has always left out (the
//! ReLU's gradient mask, the loss's pick-and-mean and gradient, whose FLOPs are inside
//! [`LOSS_FLOPS_PER_CLASS`]) launch and move bytes but add no FLOPs.
//!
//! **Modelled time** ([`DeviceProfile::model`]) is the roofline in its aggregate form:
//!
//! ```text
//! seconds = launches × launch_overhead + max(flops / peak_flops, bytes / mem_bandwidth)
//! ```
//!
//! at the profile's peak FLOP/s for the precision and its peak memory bandwidth. Summing
//! `max(flops_k / peak, bytes_k / bw)` kernel by kernel would be at least as large; the
//! aggregate form is the same when every kernel sits on one side of the ridge point (as
//! all of olsim's small kernels do: memory-bound), so the model is a lower bound of an
//! ideal backend. [`Bound`] names the largest of the three terms. Launch overhead counts
//! as serial: a small kernel's host-side launch is not hidden behind the previous one.
//!
//! Device profiles ([`DeviceProfile`], [`PROFILES`]) state, per named device, the vendor
//! datasheet's peak *dense* FLOP/s per [`Precision`] (the datasheets print tensor-core
//! figures "with sparsity"; those are halved here), the peak memory bandwidth, the launch
//! overhead per kernel and an hourly price. Overheads and prices are assumptions, not
//! measurements:
//!
//! | profile | F32 | TF32 | BF16 (TFLOP/s peak, dense) | memory GB/s | launch µs | USD/h |
//! |---|---:|---:|---:|---:|---:|---:|
//! | `h100-sxm` | 67 | 494.5 | 989.5 | 3,350 | 5 | 2.99 |
//! | `h200` | 67 | 494.5 | 989.5 | 4,800 | 5 | 3.50 |
//! | `a100-80gb` | 19.5 | 156 | 312 | 2,039 | 5 | 1.79 |
//! | `l4` | 30.3 | 60 | 121 | 300 | 5 | 0.71 |
//! | `cpu-2core` | 0.192 | - | - | 20 | 1 | 0.0765 |
//!
//! Each profile's `figures_source`, `memory_source`, `launch_source` and `price_source` say
//! where its numbers come from. [`CostSummary`] sums [`StepCost`]s by device: measured
//! seconds and the counted FLOPs, launches and bytes, which a profile turns into modelled
//! seconds and cost.

use std::collections::BTreeMap;
use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign};
use std::str::FromStr;

/// FLOPs per logit of softmax cross-entropy (max, subtract, exp, sum, log, pick).
pub const LOSS_FLOPS_PER_CLASS: u64 = 6;

/// FLOPs per trainable parameter of one Adam update (two moments, bias correction, step).
pub const ADAM_FLOPS_PER_PARAM: u64 = 12;

/// Bytes per element of every tensor the models compute with (`f32`).
pub const F32_BYTES: u64 = 4;

/// Elements an Adam update moves per parameter: reads the parameter, its gradient and two
/// moments, writes the parameter and two moments.
const ADAM_ELEMENTS_PER_PARAM: u64 = 7;

/// Counted kernels of some work: FLOPs, launches and bytes moved (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Kernels {
    /// FLOPs.
    pub flops: u64,
    /// Kernels launched.
    pub launches: u64,
    /// Bytes read from and written to device memory.
    pub bytes: u64,
}

impl Kernels {
    /// One `[m, k]·[k, n]` product: `2·m·k·n` FLOPs, reads both operands, writes the result.
    pub fn matmul(m: usize, k: usize, n: usize) -> Kernels {
        let (m, k, n) = (m as u64, k as u64, n as u64);
        Kernels {
            flops: 2 * m * k * n,
            launches: 1,
            bytes: F32_BYTES * (m * k + k * n + m * n),
        }
    }

    /// One element-wise or reduction kernel reading `reads` and writing `writes` elements,
    /// doing `flops` FLOPs.
    pub fn elementwise(reads: usize, writes: usize, flops: usize) -> Kernels {
        Kernels {
            flops: flops as u64,
            launches: 1,
            bytes: F32_BYTES * (reads + writes) as u64,
        }
    }

    /// The mean of `n` units of this work (each count divided by `n`, rounded down; all of
    /// it when `n` is 0).
    pub fn per(self, n: u64) -> Kernels {
        let n = n.max(1);
        Kernels {
            flops: self.flops / n,
            launches: self.launches / n,
            bytes: self.bytes / n,
        }
    }

    /// This work done `n` times.
    pub fn times(self, n: usize) -> Kernels {
        let n = n as u64;
        Kernels {
            flops: self.flops * n,
            launches: self.launches * n,
            bytes: self.bytes * n,
        }
    }
}

impl Add for Kernels {
    type Output = Kernels;

    fn add(self, o: Kernels) -> Kernels {
        Kernels {
            flops: self.flops + o.flops,
            launches: self.launches + o.launches,
            bytes: self.bytes + o.bytes,
        }
    }
}

impl AddAssign for Kernels {
    fn add_assign(&mut self, o: Kernels) {
        *self = *self + o;
    }
}

impl Sum for Kernels {
    fn sum<I: Iterator<Item = Kernels>>(iter: I) -> Kernels {
        iter.fold(Kernels::default(), Add::add)
    }
}

/// The kernels of `rows` rows run in batches of at most `batch` rows (`per_batch(m)` for a
/// batch of `m`).
pub fn in_batches(rows: usize, batch: usize, per_batch: impl Fn(usize) -> Kernels) -> Kernels {
    let batch = batch.max(1);
    let full = per_batch(batch).times(rows / batch);
    match rows % batch {
        0 => full,
        rest => full + per_batch(rest),
    }
}

/// Cost of one unit of work (a training step or a forward pass) on one device.
#[derive(Clone, Debug, PartialEq)]
pub struct StepCost {
    /// The device that ran it, as the backend names it (e.g. `"ndarray"`).
    pub device: String,
    /// Measured wall time in seconds (excluded from any digest: it varies run to run).
    pub wall_seconds: f64,
    /// Analytic FLOP count (modelled, see the module docs).
    pub flops: u64,
    /// Analytic count of kernels launched.
    pub launches: u64,
    /// Analytic count of bytes moved to and from device memory.
    pub bytes: u64,
}

impl StepCost {
    /// The cost of `work`, measured at `wall_seconds` on `device`.
    pub fn new(device: impl Into<String>, wall_seconds: f64, work: Kernels) -> StepCost {
        StepCost {
            device: device.into(),
            wall_seconds,
            flops: work.flops,
            launches: work.launches,
            bytes: work.bytes,
        }
    }

    /// The counted work.
    pub fn kernels(&self) -> Kernels {
        Kernels {
            flops: self.flops,
            launches: self.launches,
            bytes: self.bytes,
        }
    }

    /// Adds `other`'s measured time and counted work to this step's.
    pub fn add(&mut self, other: &StepCost) {
        self.wall_seconds += other.wall_seconds;
        self.flops += other.flops;
        self.launches += other.launches;
        self.bytes += other.bytes;
    }

    /// Achieved FLOP/s (`flops / wall_seconds`); 0 when no time was measured.
    pub fn flops_per_second(&self) -> f64 {
        if self.wall_seconds > 0.0 {
            self.flops as f64 / self.wall_seconds
        } else {
            0.0
        }
    }
}

/// A dense layer's forward kernels on a batch of `batch` rows: the product, the bias add
/// and, when `relu`, the ReLU.
pub fn dense_forward(batch: usize, d_in: usize, d_out: usize, relu: bool) -> Kernels {
    let y = batch * d_out;
    let mut k = Kernels::matmul(batch, d_in, d_out) + Kernels::elementwise(y + d_out, y, y);
    if relu {
        k += Kernels::elementwise(y, y, y);
    }
    k
}

/// A dense layer's backward kernels on a batch of `batch` rows: the gradient mask of the
/// ReLU after it when `relu`, the input gradient when `input_grad`, the
/// weight and bias gradients when `trainable`.
pub fn dense_backward(
    batch: usize,
    d_in: usize,
    d_out: usize,
    relu: bool,
    input_grad: bool,
    trainable: bool,
) -> Kernels {
    let y = batch * d_out;
    let mut k = Kernels::default();
    if relu {
        k += Kernels::elementwise(2 * y, y, 0);
    }
    if input_grad {
        k += Kernels::matmul(batch, d_out, d_in);
    }
    if trainable {
        k += Kernels::matmul(d_in, batch, d_out) + Kernels::elementwise(y, d_out, y);
    }
    k
}

/// A rank-`r` LoRA branch's extra forward kernels on a batch of `batch` rows: `x·Aᵀ`
/// (`2·in·r` FLOPs per row), `·Bᵀ` (`2·r·out`), scale and add (`2·out`).
pub fn lora_forward(batch: usize, d_in: usize, d_out: usize, rank: usize) -> Kernels {
    let y = batch * d_out;
    Kernels::matmul(batch, d_in, rank)
        + Kernels::matmul(batch, rank, d_out)
        + Kernels::elementwise(2 * y, y, 2 * y)
}

/// A rank-`r` LoRA branch's extra backward kernels on a batch of `batch` rows: the
/// gradient into the rank-`r` activations (`2·r·out` FLOPs per row), the gradients of `B`
/// and `A` (`2·r·out + 2·in·r`) and, when `input_grad`, into the branch's input (`2·in·r`,
/// accumulated into the base layer's input gradient by the product itself).
pub fn lora_backward(
    batch: usize,
    d_in: usize,
    d_out: usize,
    rank: usize,
    input_grad: bool,
) -> Kernels {
    let mut k = Kernels::matmul(batch, d_out, rank)
        + Kernels::matmul(d_out, batch, rank)
        + Kernels::matmul(rank, batch, d_in);
    if input_grad {
        k += Kernels::matmul(batch, rank, d_in);
    }
    k
}

/// Softmax cross-entropy over `classes` logits of `batch` rows, forward and backward:
/// the log-softmax (which carries the [`LOSS_FLOPS_PER_CLASS`] FLOPs per logit), the
/// pick-and-mean of the targets' log-probabilities and the logits' gradient.
pub fn softmax_cross_entropy(batch: usize, classes: usize) -> Kernels {
    let logits = batch * classes;
    Kernels::elementwise(logits, logits, LOSS_FLOPS_PER_CLASS as usize * logits)
        + Kernels::elementwise(batch, 1, 0)
        + Kernels::elementwise(2 * logits, logits, 0)
}

/// `(d_in, d_out, LoRA rank)` of each dense layer of an MLP, in order; every layer but the
/// last is followed by a ReLU.
pub type MlpLayers = [(usize, usize, Option<usize>)];

/// Forward kernels of an MLP (with the LoRA branches of its adapted layers) on a batch of
/// `batch` rows.
pub fn mlp_forward(batch: usize, layers: &MlpLayers) -> Kernels {
    let last = layers.len().saturating_sub(1);
    layers
        .iter()
        .enumerate()
        .map(|(i, &(d_in, d_out, rank))| {
            dense_forward(batch, d_in, d_out, i < last)
                + rank.map_or_else(Kernels::default, |r| lora_forward(batch, d_in, d_out, r))
        })
        .sum()
}

/// Backward kernels of an MLP on a batch of `batch` rows. When `base_trains` every layer's
/// weights train and gradients flow back to the first layer (whose input needs none);
/// otherwise only the adapters train and gradients flow back as far as the first adapted
/// layer.
pub fn mlp_backward(batch: usize, layers: &MlpLayers, base_trains: bool) -> Kernels {
    let last = layers.len().saturating_sub(1);
    let first = if base_trains {
        0
    } else {
        layers
            .iter()
            .position(|l| l.2.is_some())
            .unwrap_or(layers.len())
    };
    layers
        .iter()
        .enumerate()
        .skip(first)
        .map(|(i, &(d_in, d_out, rank))| {
            dense_backward(batch, d_in, d_out, i < last, i > first, base_trains)
                + rank.map_or_else(Kernels::default, |r| {
                    lora_backward(batch, d_in, d_out, r, i > first)
                })
        })
        .sum()
}

/// One Adam step over `params` parameters held in `tensors` tensors: one launch per tensor.
pub fn adam(params: u64, tensors: usize) -> Kernels {
    Kernels {
        flops: ADAM_FLOPS_PER_PARAM * params,
        launches: tensors as u64,
        bytes: ADAM_ELEMENTS_PER_PARAM * F32_BYTES * params,
    }
}

/// Why a cost cannot be modelled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CostError {
    /// No profile has this name.
    #[error("unknown device profile {0:?}; known profiles: {known}", known = profile_names())]
    UnknownProfile(String),
    /// No precision has this name.
    #[error("unknown precision {0:?}; expected f32, tf32 or bf16")]
    UnknownPrecision(String),
    /// The profile states no figure for this precision.
    #[error("device profile {profile} has no {precision} figure; use f32")]
    NoFigure {
        /// The profile's name.
        profile: &'static str,
        /// The precision asked for.
        precision: Precision,
    },
}

/// The number format the modelled arithmetic runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Precision {
    /// IEEE `f32` on CUDA cores or CPU vector units (what olsim's models compute in).
    F32,
    /// TF32 on tensor cores (`f32` storage, 10-bit mantissa products).
    Tf32,
    /// bfloat16 on tensor cores.
    Bf16,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        })
    }
}

impl FromStr for Precision {
    type Err = CostError;

    /// Parses `f32`, `tf32` or `bf16` (any case).
    fn from_str(s: &str) -> Result<Self, CostError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" => Ok(Precision::F32),
            "tf32" => Ok(Precision::Tf32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(CostError::UnknownPrecision(s.to_string())),
        }
    }
}

/// Named figures of one device, for modelled time and cost when the work did not run on
/// it (or for pricing measured time on it).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceProfile {
    /// Short name used in scenarios and reports (`h100-sxm`).
    pub name: &'static str,
    /// The hardware it describes.
    pub hardware: &'static str,
    /// Peak dense `f32` FLOP/s (non-tensor).
    pub peak_f32: f64,
    /// Peak dense TF32 tensor FLOP/s, if the device has them.
    pub peak_tf32: Option<f64>,
    /// Peak dense bfloat16 tensor FLOP/s, if the device has them.
    pub peak_bf16: Option<f64>,
    /// Peak memory bandwidth in bytes per second.
    pub mem_bandwidth: f64,
    /// Seconds each kernel launch costs (an assumption).
    pub launch_overhead: f64,
    /// Price per device-hour in USD (an assumption: a public on-demand list price).
    pub usd_per_hour: f64,
    /// Where the peak FLOP/s figures come from.
    pub figures_source: &'static str,
    /// Where the memory bandwidth comes from.
    pub memory_source: &'static str,
    /// Where the launch overhead comes from.
    pub launch_source: &'static str,
    /// Where the price comes from.
    pub price_source: &'static str,
}

const TERA: f64 = 1e12;
const GIGA: f64 = 1e9;

/// Launch overhead assumed for the GPUs: 5 µs per kernel.
const GPU_LAUNCH_OVERHEAD: f64 = 5e-6;

/// Where [`GPU_LAUNCH_OVERHEAD`] comes from.
const GPU_LAUNCH_SOURCE: &str = "assumption: 5 µs per kernel, from NVIDIA's 'Getting Started \
    with CUDA Graphs' (2019: back-to-back kernels of 2.9 µs took 3.8 µs each, 9.6 µs with a \
    synchronisation after each) and the 3-10 µs per-op dispatch of eager deep-learning \
    frameworks; not measured on this device";

/// The built-in profiles.
pub const PROFILES: [DeviceProfile; 5] = [
    DeviceProfile {
        name: "h100-sxm",
        hardware: "NVIDIA H100 SXM5 80GB",
        peak_f32: 67.0 * TERA,
        peak_tf32: Some(494.5 * TERA),
        peak_bf16: Some(989.5 * TERA),
        mem_bandwidth: 3350.0 * GIGA,
        launch_overhead: GPU_LAUNCH_OVERHEAD,
        usd_per_hour: 2.99,
        figures_source: "NVIDIA H100 Tensor Core GPU datasheet (SXM): FP32 67 TFLOPS, TF32 989 \
            and BF16 1,979 TFLOPS with sparsity, halved for dense",
        memory_source: "NVIDIA H100 Tensor Core GPU datasheet (SXM): GPU memory bandwidth \
            3.35 TB/s (HBM3)",
        launch_source: GPU_LAUNCH_SOURCE,
        price_source: "assumption: Lambda Cloud on-demand list price for H100 SXM, 2.99 USD per \
            GPU-hour (2025)",
    },
    DeviceProfile {
        name: "h200",
        hardware: "NVIDIA H200 SXM 141GB",
        peak_f32: 67.0 * TERA,
        peak_tf32: Some(494.5 * TERA),
        peak_bf16: Some(989.5 * TERA),
        mem_bandwidth: 4800.0 * GIGA,
        launch_overhead: GPU_LAUNCH_OVERHEAD,
        usd_per_hour: 3.50,
        figures_source: "NVIDIA H200 Tensor Core GPU datasheet (SXM): FP32 67 TFLOPS, TF32 989 \
            and BF16 1,979 TFLOPS with sparsity, halved for dense (same compute as H100 SXM)",
        memory_source: "NVIDIA H200 Tensor Core GPU datasheet (SXM): GPU memory bandwidth \
            4.8 TB/s (HBM3e)",
        launch_source: GPU_LAUNCH_SOURCE,
        price_source: "assumption: 3.50 USD per GPU-hour, within the range of public on-demand \
            H200 listings of GPU clouds (2025)",
    },
    DeviceProfile {
        name: "a100-80gb",
        hardware: "NVIDIA A100 SXM4 80GB",
        peak_f32: 19.5 * TERA,
        peak_tf32: Some(156.0 * TERA),
        peak_bf16: Some(312.0 * TERA),
        mem_bandwidth: 2039.0 * GIGA,
        launch_overhead: GPU_LAUNCH_OVERHEAD,
        usd_per_hour: 1.79,
        figures_source: "NVIDIA A100 Tensor Core GPU datasheet: FP32 19.5 TFLOPS, TF32 156 and \
            BF16 312 TFLOPS dense (312 and 624 with sparsity)",
        memory_source: "NVIDIA A100 Tensor Core GPU datasheet: A100 80GB SXM GPU memory \
            bandwidth 2,039 GB/s (HBM2e)",
        launch_source: GPU_LAUNCH_SOURCE,
        price_source: "assumption: Lambda Cloud on-demand list price for A100 SXM 80GB, 1.79 USD \
            per GPU-hour (2025)",
    },
    DeviceProfile {
        name: "l4",
        hardware: "NVIDIA L4 24GB",
        peak_f32: 30.3 * TERA,
        peak_tf32: Some(60.0 * TERA),
        peak_bf16: Some(121.0 * TERA),
        mem_bandwidth: 300.0 * GIGA,
        launch_overhead: GPU_LAUNCH_OVERHEAD,
        usd_per_hour: 0.71,
        figures_source: "NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS, TF32 120 and \
            BF16 242 TFLOPS with sparsity, halved for dense",
        memory_source: "NVIDIA L4 Tensor Core GPU datasheet: GPU memory bandwidth 300 GB/s \
            (GDDR6)",
        launch_source: GPU_LAUNCH_SOURCE,
        price_source: "assumption: Google Cloud g2-standard-4 (one L4, 4 vCPU) on-demand, \
            us-central1, about 0.71 USD per hour (2025)",
    },
    DeviceProfile {
        name: "cpu-2core",
        hardware: "2 x86-64 cores with AVX2 FMA at 3.0 GHz",
        peak_f32: 2.0 * 32.0 * 3.0e9,
        peak_tf32: None,
        peak_bf16: None,
        mem_bandwidth: 20.0 * GIGA,
        launch_overhead: 1e-6,
        usd_per_hour: 0.0765,
        figures_source: "2 cores x 32 f32 FLOP/cycle (two 256-bit FMA pipes per core: \
            2 x 8 lanes x 2, as in AMD Zen 2-4 and Intel Skylake-SP) x 3.0 GHz (assumed clock) \
            = 192 GFLOP/s",
        memory_source: "assumption: 20 GB/s, about 10 GB/s of STREAM bandwidth per core of a \
            server x86 core (a share of the socket's DDR4/DDR5 channels)",
        launch_source: "assumption: 1 µs per operation, the dispatch and allocation of one \
            tensor operation in a CPU tensor library (no device launch)",
        price_source: "assumption: AWS c6a.large (2 vCPU AMD EPYC) on-demand, us-east-1, \
            0.0765 USD per hour (2025)",
    },
];

/// The names of [`PROFILES`], comma-separated (for error messages).
fn profile_names() -> String {
    PROFILES
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which term of the roofline dominates a modelled time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// Kernel launches (`launches × launch_overhead`).
    Launch,
    /// Memory traffic (`bytes / mem_bandwidth`).
    Memory,
    /// Arithmetic (`flops / peak_flops`).
    Compute,
    /// No device work was counted (host work, such as suffix-array span matching).
    Nothing,
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Bound::Launch => "launch",
            Bound::Memory => "memory",
            Bound::Compute => "compute",
            Bound::Nothing => "none",
        })
    }
}

/// Counted work summed over many steps (`u128`: sums of `u64` counts cannot overflow it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// FLOPs.
    pub flops: u128,
    /// Kernels launched.
    pub launches: u128,
    /// Bytes moved.
    pub bytes: u128,
}

impl From<Kernels> for Counted {
    fn from(k: Kernels) -> Counted {
        Counted {
            flops: u128::from(k.flops),
            launches: u128::from(k.launches),
            bytes: u128::from(k.bytes),
        }
    }
}

impl AddAssign<Kernels> for Counted {
    fn add_assign(&mut self, k: Kernels) {
        self.flops += u128::from(k.flops);
        self.launches += u128::from(k.launches);
        self.bytes += u128::from(k.bytes);
    }
}

impl AddAssign for Counted {
    fn add_assign(&mut self, o: Counted) {
        self.flops += o.flops;
        self.launches += o.launches;
        self.bytes += o.bytes;
    }
}

/// Modelled time and cost of counted work on one profile (the roofline of the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelledCost {
    /// The profile's name.
    pub profile: &'static str,
    /// The precision modelled.
    pub precision: Precision,
    /// The counted work.
    pub counted: Counted,
    /// `launches × launch_overhead`.
    pub launch_seconds: f64,
    /// `bytes / mem_bandwidth`.
    pub memory_seconds: f64,
    /// `flops / peak_flops`.
    pub compute_seconds: f64,
    /// Modelled seconds: `launch_seconds + max(memory_seconds, compute_seconds)`.
    pub seconds: f64,
    /// Modelled cost in USD: `seconds / 3600 × usd_per_hour`.
    pub usd: f64,
    /// The largest of the three terms.
    pub bound: Bound,
}

impl DeviceProfile {
    /// The built-in profile of this name.
    pub fn by_name(name: &str) -> Result<&'static DeviceProfile, CostError> {
        PROFILES
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| CostError::UnknownProfile(name.to_string()))
    }

    /// Peak dense FLOP/s at `precision`.
    pub fn peak_flops(&self, precision: Precision) -> Result<f64, CostError> {
        match precision {
            Precision::F32 => Some(self.peak_f32),
            Precision::Tf32 => self.peak_tf32,
            Precision::Bf16 => self.peak_bf16,
        }
        .ok_or(CostError::NoFigure {
            profile: self.name,
            precision,
        })
    }

    /// Cost in USD of `seconds` on this device at its hourly price (for measured time too).
    pub fn cost_of_seconds(&self, seconds: f64) -> f64 {
        seconds / 3600.0 * self.usd_per_hour
    }

    /// Modelled time and cost of `counted` work at `precision` (the roofline of the module
    /// docs).
    pub fn model(&self, counted: Counted, precision: Precision) -> Result<ModelledCost, CostError> {
        let compute_seconds = counted.flops as f64 / self.peak_flops(precision)?;
        let memory_seconds = counted.bytes as f64 / self.mem_bandwidth;
        let launch_seconds = counted.launches as f64 * self.launch_overhead;
        let seconds = launch_seconds + memory_seconds.max(compute_seconds);
        let bound = if seconds == 0.0 {
            Bound::Nothing
        } else if launch_seconds >= memory_seconds.max(compute_seconds) {
            Bound::Launch
        } else if memory_seconds >= compute_seconds {
            Bound::Memory
        } else {
            Bound::Compute
        };
        Ok(ModelledCost {
            profile: self.name,
            precision,
            counted,
            launch_seconds,
            memory_seconds,
            compute_seconds,
            seconds,
            usd: self.cost_of_seconds(seconds),
            bound,
        })
    }
}

/// Summed cost of the work done on one device.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceTotal {
    /// Number of [`StepCost`]s added.
    pub steps: u64,
    /// Summed measured wall time in seconds.
    pub wall_seconds: f64,
    /// Summed counted work.
    pub counted: Counted,
}

impl DeviceTotal {
    fn add(&mut self, wall_seconds: f64, counted: Counted, steps: u64) {
        self.steps += steps;
        self.wall_seconds += wall_seconds;
        self.counted += counted;
    }
}

/// [`StepCost`]s summed by the device that ran them, in device-name order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostSummary {
    /// Totals keyed by [`StepCost::device`].
    pub by_device: BTreeMap<String, DeviceTotal>,
}

impl CostSummary {
    /// Adds one step's measured time and counted work to its device's total.
    pub fn add(&mut self, step: &StepCost) {
        self.by_device.entry(step.device.clone()).or_default().add(
            step.wall_seconds,
            step.kernels().into(),
            1,
        );
    }

    /// The totals over all devices.
    pub fn total(&self) -> DeviceTotal {
        let mut all = DeviceTotal::default();
        for t in self.by_device.values() {
            all.add(t.wall_seconds, t.counted, t.steps);
        }
        all
    }

    /// Modelled time and cost of all summed work on `profile` at `precision`.
    pub fn model(
        &self,
        profile: &DeviceProfile,
        precision: Precision,
    ) -> Result<ModelledCost, CostError> {
        profile.model(self.total().counted, precision)
    }
}

impl<'a> Extend<&'a StepCost> for CostSummary {
    fn extend<I: IntoIterator<Item = &'a StepCost>>(&mut self, steps: I) {
        for step in steps {
            self.add(step);
        }
    }
}

impl<'a> FromIterator<&'a StepCost> for CostSummary {
    fn from_iter<I: IntoIterator<Item = &'a StepCost>>(steps: I) -> Self {
        let mut summary = CostSummary::default();
        summary.extend(steps);
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(device: &str, wall_seconds: f64, flops: u64) -> StepCost {
        StepCost::new(
            device,
            wall_seconds,
            Kernels {
                flops,
                launches: 2,
                bytes: 3,
            },
        )
    }

    fn counted(flops: u128, launches: u128, bytes: u128) -> Counted {
        Counted {
            flops,
            launches,
            bytes,
        }
    }

    #[test]
    fn profiles_have_unique_names_and_sane_figures() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert_eq!(DeviceProfile::by_name(p.name).unwrap(), p);
            assert!(PROFILES[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert!(p.peak_f32 > 0.0 && p.mem_bandwidth > 0.0 && p.launch_overhead > 0.0);
            assert!(p.usd_per_hour > 0.0);
            assert!(p.price_source.starts_with("assumption:"), "{}", p.name);
            assert!(p.launch_source.starts_with("assumption:"), "{}", p.name);
            assert!(!p.figures_source.is_empty() && !p.memory_source.is_empty());
            // Tensor figures, where stated, exceed the plain f32 figure and BF16 doubles TF32.
            if let (Some(tf32), Some(bf16)) = (p.peak_tf32, p.peak_bf16) {
                assert!(
                    tf32 > p.peak_f32 && (bf16 / tf32 - 2.0).abs() < 0.02,
                    "{}",
                    p.name
                );
            }
        }
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let err = DeviceProfile::by_name("h100").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown device profile \"h100\"; known profiles: h100-sxm, h200, a100-80gb, l4, \
             cpu-2core"
        );
        assert_eq!("BF16".parse(), Ok(Precision::Bf16));
        assert_eq!(" tf32".parse(), Ok(Precision::Tf32));
        assert_eq!(
            "fp8".parse::<Precision>(),
            Err(CostError::UnknownPrecision("fp8".into()))
        );
        for p in [Precision::F32, Precision::Tf32, Precision::Bf16] {
            assert_eq!(p.to_string().parse(), Ok(p));
        }
        let cpu = DeviceProfile::by_name("cpu-2core").unwrap();
        let err = cpu.model(counted(1, 0, 0), Precision::Bf16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device profile cpu-2core has no bf16 figure; use f32"
        );
    }

    #[test]
    fn modelled_time_is_the_roofline_plus_launches() {
        let h100 = DeviceProfile::by_name("h100-sxm").unwrap();
        // Compute-bound: one hour of 989.5 TFLOP/s of bf16, with little traffic.
        let flops = 9895 * 10u128.pow(11) * 3600;
        let m = h100.model(counted(flops, 0, 1), Precision::Bf16).unwrap();
        assert!((m.seconds - 3600.0).abs() < 1e-9, "{}", m.seconds);
        assert!((m.usd - 2.99).abs() < 1e-12, "{}", m.usd);
        assert_eq!(m.bound, Bound::Compute);
        assert_eq!((m.profile, m.precision), ("h100-sxm", Precision::Bf16));
        // f32 on the same device is 989.5 / 67 times slower.
        let f = h100.model(counted(flops, 0, 1), Precision::F32).unwrap();
        assert!((f.seconds / m.seconds - 989.5 / 67.0).abs() < 1e-9);
        // Memory-bound: 3.35 GB at 3.35 TB/s is 1 ms, plus 100 launches of 5 µs.
        let mem = h100
            .model(counted(1_000, 100, 3_350_000_000), Precision::F32)
            .unwrap();
        assert!((mem.memory_seconds - 1e-3).abs() < 1e-15);
        assert!((mem.launch_seconds - 5e-4).abs() < 1e-15);
        assert!((mem.seconds - 1.5e-3).abs() < 1e-15);
        assert_eq!(mem.bound, Bound::Memory);
        // Launch-bound: many launches of tiny kernels.
        let tiny = h100
            .model(counted(1_000, 1_000, 4_000), Precision::F32)
            .unwrap();
        assert_eq!(tiny.bound, Bound::Launch);
        assert!((tiny.seconds - (5e-3 + 4_000.0 / 3.35e12)).abs() < 1e-15);
        // Host work counts nothing on the device: no term bounds it.
        let host = h100.model(counted(0, 0, 0), Precision::F32).unwrap();
        assert_eq!((host.bound, host.seconds), (Bound::Nothing, 0.0));
        assert_eq!(
            h100.model(Counted::default(), Precision::F32)
                .unwrap()
                .seconds,
            0.0
        );
    }

    #[test]
    fn modelled_time_is_at_least_the_launch_overhead() {
        for p in &PROFILES {
            for (f, l, b) in [(0, 7, 0), (10u128.pow(15), 3, 10u128.pow(12)), (1, 1, 1)] {
                let m = p.model(counted(f, l, b), Precision::F32).unwrap();
                assert!(m.seconds >= l as f64 * p.launch_overhead, "{}", p.name);
                assert!(m.seconds >= m.memory_seconds.max(m.compute_seconds));
            }
        }
    }

    #[test]
    fn matmul_and_elementwise_counts() {
        assert_eq!(
            Kernels::matmul(2, 3, 4),
            Kernels {
                flops: 48,
                launches: 1,
                bytes: 4 * (6 + 12 + 8)
            }
        );
        let e = Kernels::elementwise(10, 5, 7);
        assert_eq!((e.flops, e.launches, e.bytes), (7, 1, 60));
        assert_eq!(e.times(3), e + e + e);
        assert_eq!([e, e].into_iter().sum::<Kernels>(), e.times(2));
        // 10 rows in batches of 4: batches of 4, 4 and 2.
        let rows = in_batches(10, 4, |m| Kernels::elementwise(m, 0, m));
        assert_eq!((rows.flops, rows.launches, rows.bytes), (10, 3, 40));
    }

    #[test]
    fn a_small_mlp_training_step_counted_by_hand() {
        // 3 → 4 (ReLU) → 2, batch 5, every layer training.
        let layers = [(3, 4, None), (4, 2, None)];
        let fwd = mlp_forward(5, &layers);
        // Layer 1: matmul 5x3·3x4 (15+12+20 elements), bias (20+4 read, 20 written),
        // ReLU (20, 20). Layer 2: matmul 5x4·4x2 (20+8+10), bias (10+2, 10).
        assert_eq!(fwd.launches, 5);
        assert_eq!(
            fwd.bytes,
            4 * ((15 + 12 + 20) + (24 + 20) + 40 + (20 + 8 + 10) + 22)
        );
        assert_eq!(fwd.flops, 5 * ((2 * 3 * 4 + 4 + 4) + (2 * 4 * 2 + 2)));
        let bwd = mlp_backward(5, &layers, true);
        // Layer 2: input grad 5x2·2x4 (10+8+20), weight grad 4x5·5x2 (20+10+8), bias grad
        // (10, 2). Layer 1: ReLU mask (40, 20), weight grad 3x5·5x4 (15+20+12), bias grad
        // (20, 4); no input grad.
        assert_eq!(bwd.launches, 6);
        assert_eq!(
            bwd.bytes,
            4 * ((10 + 8 + 20) + (20 + 10 + 8) + 12 + 60 + (15 + 20 + 12) + 24)
        );
        assert_eq!(
            bwd.flops,
            5 * ((2 * 4 * 2) + (2 * 4 * 2 + 2) + (2 * 3 * 4 + 4))
        );
        // Loss: log-softmax (10, 10), pick-and-mean (5, 1), gradient (20, 10).
        let loss = softmax_cross_entropy(5, 2);
        assert_eq!((loss.launches, loss.bytes), (3, 4 * (20 + 6 + 30)));
        // Adam: 26 parameters in 4 tensors, 7 elements each.
        assert_eq!(
            adam(26, 4),
            Kernels {
                flops: 12 * 26,
                launches: 4,
                bytes: 28 * 26
            }
        );
    }

    #[test]
    fn lora_counts_keep_the_flops_per_row() {
        let f = lora_forward(3, 8, 6, 2);
        assert_eq!(f.flops, 3 * (2 * 8 * 2 + 2 * 2 * 6 + 2 * 6));
        assert_eq!(f.launches, 3);
        let b = lora_backward(3, 8, 6, 2, true);
        assert_eq!(b.flops, 3 * (2 * 2 * 6 + 2 * 8 * 2 + 2 * 2 * 6 + 2 * 8 * 2));
        assert_eq!(b.launches, 4);
        assert_eq!(lora_backward(3, 8, 6, 2, false).launches, 3);
        // Only the adapters train: gradients flow back to the first adapted layer.
        let layers = [(8, 6, None), (6, 2, Some(2))];
        let bwd = mlp_backward(3, &layers, false);
        assert_eq!(bwd, lora_backward(3, 6, 2, 2, false));
    }

    #[test]
    fn summary_sums_steps_by_device() {
        let steps = [
            step("autodiff<ndarray>", 0.5, 1_000),
            step("cubecl<cuda>", 0.25, 4_000),
            step("autodiff<ndarray>", 1.5, u64::MAX),
        ];
        let summary: CostSummary = steps.iter().collect();
        let names: Vec<&str> = summary.by_device.keys().map(String::as_str).collect();
        assert_eq!(names, ["autodiff<ndarray>", "cubecl<cuda>"]);
        let cpu = &summary.by_device["autodiff<ndarray>"];
        assert_eq!(cpu.steps, 2);
        assert_eq!(cpu.wall_seconds, 2.0);
        assert_eq!(cpu.counted, counted(u128::from(u64::MAX) + 1_000, 4, 6));
        let total = summary.total();
        assert_eq!(total.steps, 3);
        assert_eq!(total.wall_seconds, 2.25);
        assert_eq!(total.counted, counted(u128::from(u64::MAX) + 5_000, 6, 9));
        let l4 = DeviceProfile::by_name("l4").unwrap();
        let modelled = summary.model(l4, Precision::F32).unwrap();
        assert_eq!(modelled, l4.model(total.counted, Precision::F32).unwrap());
        assert!(
            (modelled.seconds - (6.0 * 5e-6 + total.counted.flops as f64 / 30.3e12)).abs() < 1e-6
        );
    }
}
