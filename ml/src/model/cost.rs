//! Analytic compute model and measured wall time.
//!
//! FLOPs are counted, not measured: 2 per multiply-accumulate of every dense product,
//! 1 per element for bias adds, ReLU and LoRA's scale-and-add, [`LOSS_FLOPS_PER_CLASS`]
//! per logit for softmax cross-entropy, and [`ADAM_FLOPS_PER_PARAM`] per trainable
//! parameter per optimizer step. A backward pass through a dense layer costs `2·in·out`
//! for the input gradient (skipped for the first layer, whose input needs none) and
//! `2·in·out + out` for the weight and bias gradients (only when the layer trains).
//! Dividing by a device profile's sustained FLOP/s turns these into modelled device time.
//!
//! Device profiles ([`DeviceProfile`], [`PROFILES`]) state, per named device, the vendor
//! datasheet's peak *dense* FLOP/s per [`Precision`] (the datasheets print tensor-core
//! figures "with sparsity"; those are halved here), a utilisation factor (sustained / peak)
//! and an hourly price. Both the utilisation and the price are assumptions, not
//! measurements:
//!
//! | profile | F32 | TF32 | BF16 (TFLOP/s peak, dense) | utilisation | USD/h |
//! |---|---:|---:|---:|---:|---:|
//! | `h100-sxm` | 67 | 494.5 | 989.5 | 0.40 | 2.99 |
//! | `h200` | 67 | 494.5 | 989.5 | 0.40 | 3.50 |
//! | `a100-80gb` | 19.5 | 156 | 312 | 0.40 | 1.79 |
//! | `l4` | 30.3 | 60 | 121 | 0.40 | 0.71 |
//! | `cpu-2core` | 0.192 | - | - | 0.50 | 0.0765 |
//!
//! Each profile's `figures_source` and `price_source` say where its numbers come from.
//! [`CostSummary`] sums [`StepCost`]s by device: measured seconds, counted FLOPs, and the
//! modelled seconds and cost of those FLOPs on a profile.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

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
    /// Sustained / peak FLOP/s assumed for the modelled time (an assumption).
    pub utilisation: f64,
    /// Price per device-hour in USD (an assumption: a public on-demand list price).
    pub usd_per_hour: f64,
    /// Where the peak figures come from.
    pub figures_source: &'static str,
    /// Where the price and the utilisation come from.
    pub price_source: &'static str,
}

const TERA: f64 = 1e12;

/// Utilisation assumed for the GPUs: 0.4 of peak, the model-FLOPs utilisation of well-tuned
/// dense training (PaLM reported 46.2%, Chowdhery et al. 2022); olsim's small models would
/// reach less, so modelled times are a lower bound.
const GPU_UTILISATION: f64 = 0.4;

/// The built-in profiles.
pub const PROFILES: [DeviceProfile; 5] = [
    DeviceProfile {
        name: "h100-sxm",
        hardware: "NVIDIA H100 SXM5 80GB",
        peak_f32: 67.0 * TERA,
        peak_tf32: Some(494.5 * TERA),
        peak_bf16: Some(989.5 * TERA),
        utilisation: GPU_UTILISATION,
        usd_per_hour: 2.99,
        figures_source: "NVIDIA H100 Tensor Core GPU datasheet (SXM): FP32 67 TFLOPS, TF32 989 \
            and BF16 1,979 TFLOPS with sparsity, halved for dense",
        price_source: "assumption: Lambda Cloud on-demand list price for H100 SXM, 2.99 USD per \
            GPU-hour (2025); utilisation 0.4 of peak (assumed MFU)",
    },
    DeviceProfile {
        name: "h200",
        hardware: "NVIDIA H200 SXM 141GB",
        peak_f32: 67.0 * TERA,
        peak_tf32: Some(494.5 * TERA),
        peak_bf16: Some(989.5 * TERA),
        utilisation: GPU_UTILISATION,
        usd_per_hour: 3.50,
        figures_source: "NVIDIA H200 Tensor Core GPU datasheet (SXM): FP32 67 TFLOPS, TF32 989 \
            and BF16 1,979 TFLOPS with sparsity, halved for dense (same compute as H100 SXM)",
        price_source: "assumption: 3.50 USD per GPU-hour, within the range of public on-demand \
            H200 listings of GPU clouds (2025); utilisation 0.4 of peak (assumed MFU)",
    },
    DeviceProfile {
        name: "a100-80gb",
        hardware: "NVIDIA A100 SXM4 80GB",
        peak_f32: 19.5 * TERA,
        peak_tf32: Some(156.0 * TERA),
        peak_bf16: Some(312.0 * TERA),
        utilisation: GPU_UTILISATION,
        usd_per_hour: 1.79,
        figures_source: "NVIDIA A100 Tensor Core GPU datasheet: FP32 19.5 TFLOPS, TF32 156 and \
            BF16 312 TFLOPS dense (312 and 624 with sparsity)",
        price_source: "assumption: Lambda Cloud on-demand list price for A100 SXM 80GB, 1.79 USD \
            per GPU-hour (2025); utilisation 0.4 of peak (assumed MFU)",
    },
    DeviceProfile {
        name: "l4",
        hardware: "NVIDIA L4 24GB",
        peak_f32: 30.3 * TERA,
        peak_tf32: Some(60.0 * TERA),
        peak_bf16: Some(121.0 * TERA),
        utilisation: GPU_UTILISATION,
        usd_per_hour: 0.71,
        figures_source: "NVIDIA L4 Tensor Core GPU datasheet: FP32 30.3 TFLOPS, TF32 120 and \
            BF16 242 TFLOPS with sparsity, halved for dense",
        price_source: "assumption: Google Cloud g2-standard-4 (one L4, 4 vCPU) on-demand, \
            us-central1, about 0.71 USD per hour (2025); utilisation 0.4 of peak (assumed MFU)",
    },
    DeviceProfile {
        name: "cpu-2core",
        hardware: "2 x86-64 cores with AVX2 FMA at 3.0 GHz",
        peak_f32: 2.0 * 32.0 * 3.0e9,
        peak_tf32: None,
        peak_bf16: None,
        utilisation: 0.5,
        usd_per_hour: 0.0765,
        figures_source: "2 cores x 32 f32 FLOP/cycle (two 256-bit FMA pipes per core: \
            2 x 8 lanes x 2, as in AMD Zen 2-4 and Intel Skylake-SP) x 3.0 GHz (assumed clock) \
            = 192 GFLOP/s",
        price_source: "assumption: AWS c6a.large (2 vCPU AMD EPYC) on-demand, us-east-1, \
            0.0765 USD per hour (2025); utilisation 0.5 of peak (assumed for blocked sgemm)",
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

/// Modelled time and cost of a FLOP count on one profile.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelledCost {
    /// The profile's name.
    pub profile: &'static str,
    /// The precision modelled.
    pub precision: Precision,
    /// The counted FLOPs.
    pub flops: u128,
    /// Modelled seconds: `flops / (peak × utilisation)`.
    pub seconds: f64,
    /// Modelled cost in USD: `seconds / 3600 × usd_per_hour`.
    pub usd: f64,
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

    /// Sustained FLOP/s at `precision`: peak × utilisation.
    pub fn sustained_flops(&self, precision: Precision) -> Result<f64, CostError> {
        Ok(self.peak_flops(precision)? * self.utilisation)
    }

    /// Cost in USD of `seconds` on this device at its hourly price (for measured time too).
    pub fn cost_of_seconds(&self, seconds: f64) -> f64 {
        seconds / 3600.0 * self.usd_per_hour
    }

    /// Modelled time and cost of `flops` counted FLOPs at `precision`.
    pub fn model(&self, flops: u128, precision: Precision) -> Result<ModelledCost, CostError> {
        let seconds = flops as f64 / self.sustained_flops(precision)?;
        Ok(ModelledCost {
            profile: self.name,
            precision,
            flops,
            seconds,
            usd: self.cost_of_seconds(seconds),
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
    /// Summed counted FLOPs (`u128`: sums of `u64` counts cannot overflow it).
    pub flops: u128,
}

impl DeviceTotal {
    fn add(&mut self, wall_seconds: f64, flops: u128, steps: u64) {
        self.steps += steps;
        self.wall_seconds += wall_seconds;
        self.flops += flops;
    }
}

/// [`StepCost`]s summed by the device that ran them, in device-name order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CostSummary {
    /// Totals keyed by [`StepCost::device`].
    pub by_device: BTreeMap<String, DeviceTotal>,
}

impl CostSummary {
    /// Adds one step's measured time and counted FLOPs to its device's total.
    pub fn add(&mut self, step: &StepCost) {
        self.by_device.entry(step.device.clone()).or_default().add(
            step.wall_seconds,
            u128::from(step.flops),
            1,
        );
    }

    /// The totals over all devices.
    pub fn total(&self) -> DeviceTotal {
        let mut all = DeviceTotal::default();
        for t in self.by_device.values() {
            all.add(t.wall_seconds, t.flops, t.steps);
        }
        all
    }

    /// Modelled time and cost of all summed FLOPs on `profile` at `precision`.
    pub fn model(
        &self,
        profile: &DeviceProfile,
        precision: Precision,
    ) -> Result<ModelledCost, CostError> {
        profile.model(self.total().flops, precision)
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
        StepCost {
            device: device.into(),
            wall_seconds,
            flops,
        }
    }

    #[test]
    fn profiles_have_unique_names_and_sane_figures() {
        for (i, p) in PROFILES.iter().enumerate() {
            assert_eq!(DeviceProfile::by_name(p.name).unwrap(), p);
            assert!(PROFILES[..i].iter().all(|q| q.name != p.name), "{}", p.name);
            assert!(p.peak_f32 > 0.0 && p.utilisation > 0.0 && p.utilisation <= 1.0);
            assert!(p.usd_per_hour > 0.0);
            assert!(p.price_source.starts_with("assumption:"), "{}", p.name);
            assert!(!p.figures_source.is_empty());
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
        let err = cpu.model(1, Precision::Bf16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device profile cpu-2core has no bf16 figure; use f32"
        );
    }

    #[test]
    fn modelled_seconds_and_cost_follow_the_figures() {
        let h100 = DeviceProfile::by_name("h100-sxm").unwrap();
        // 0.4 × 989.5 TFLOP/s = 395.8 TFLOP/s sustained; one hour of it costs 2.99 USD.
        let flops = 3958 * 10u128.pow(11) * 3600;
        let m = h100.model(flops, Precision::Bf16).unwrap();
        assert!((m.seconds - 3600.0).abs() < 1e-9, "{}", m.seconds);
        assert!((m.usd - 2.99).abs() < 1e-12, "{}", m.usd);
        assert_eq!(
            (m.profile, m.precision, m.flops),
            ("h100-sxm", Precision::Bf16, flops)
        );
        // f32 on the same device is 989.5 / 67 times slower.
        let f = h100.model(flops, Precision::F32).unwrap();
        assert!((f.seconds / m.seconds - 989.5 / 67.0).abs() < 1e-9);
        // cpu-2core: 192 GFLOP/s × 0.5 = 96 GFLOP/s.
        let cpu = DeviceProfile::by_name("cpu-2core").unwrap();
        assert_eq!(cpu.sustained_flops(Precision::F32), Ok(96e9));
        let c = cpu.model(96_000_000_000, Precision::F32).unwrap();
        assert!((c.seconds - 1.0).abs() < 1e-12);
        assert!((c.usd - 0.0765 / 3600.0).abs() < 1e-15);
        assert_eq!(h100.model(0, Precision::F32).unwrap().seconds, 0.0);
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
        assert_eq!(cpu.flops, u128::from(u64::MAX) + 1_000);
        let total = summary.total();
        assert_eq!(total.steps, 3);
        assert_eq!(total.wall_seconds, 2.25);
        assert_eq!(total.flops, u128::from(u64::MAX) + 5_000);
        let l4 = DeviceProfile::by_name("l4").unwrap();
        let modelled = summary.model(l4, Precision::F32).unwrap();
        assert_eq!(modelled, l4.model(total.flops, Precision::F32).unwrap());
        assert!((modelled.seconds - total.flops as f64 / (30.3e12 * 0.4)).abs() < 1e-6);
    }
}
