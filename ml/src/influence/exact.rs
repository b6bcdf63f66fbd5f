//! The exact reference: a dense curvature matrix of the mean training loss with respect
//! to the LoRA parameters, damped and inverted on the CPU in `f64`.
//!
//! Two curvatures ([`Curvature`]):
//! - the full Hessian. Column `j` is the central difference
//!   `(ḡ(θ + ε·e_j) − ḡ(θ − ε·e_j)) / 2ε` of the analytic mean gradient `ḡ`
//!   ([`DeviceParams::mean_gradient`](super::DeviceParams::mean_gradient) on burn's NdArray
//!   backend in `f64`), `ε = `[`HESSIAN_STEP`], then symmetrised. It keeps the residual
//!   term `Σ ∂L/∂z · ∇²z` (the bilinear `B·A` and cross-layer products) that Gauss-Newton
//!   drops; the ReLUs are piecewise linear, so apart from a kink within `ε` of a
//!   pre-activation it is exact up to `O(ε²)` and `f64` round-off. Away from a minimum it
//!   is indefinite (LoRA's bilinear form makes saddles), so its damping shifts it by its
//!   most negative eigenvalue first.
//! - Gauss-Newton `(1/n)·Σ_i J_iᵀ(diag p_i − p_i p_iᵀ)J_i`, computed exactly as
//!   `(1/n)·Σ_i Σ_c p_ic·g_ic g_icᵀ` with `g_ic` the loss gradient at label `c` (for softmax
//!   cross-entropy this is also the true Fisher); positive semi-definite.
//!
//! Damping: with `e_min` the smallest eigenvalue and `d` the mean absolute eigenvalue
//! (for a positive semi-definite matrix, the mean diagonal entry),
//! `λ = max(0, −e_min) + damping_ratio·d`; the inverse `(M + λI)⁻¹` is formed from the
//! eigendecomposition (cyclic Jacobi), so it exists whenever `damping_ratio·d > 0`.

use burn::backend::NdArray;
use burn::tensor::Tensor;

use super::InfluenceError;
use super::params::{LoraParams, float_tensor};

/// Finite-difference step of the Hessian's central differences.
pub const HESSIAN_STEP: f64 = 1e-4;

/// Largest number of LoRA parameters for which the exact method builds a dense Hessian.
pub const MAX_EXACT_PARAMS: usize = 512;

type F64 = NdArray<f64>;

/// The mean gradient of the loss over `(x, onehot)` at `params`, in `f64`.
fn mean_gradient(
    params: &LoraParams,
    x: &Tensor<F64, 2>,
    onehot: &Tensor<F64, 2>,
) -> Result<Vec<f64>, InfluenceError> {
    let device = Default::default();
    params
        .to_device::<F64>(&device)
        .mean_gradient(x.clone(), onehot.clone())
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| InfluenceError::Tensor(format!("{e:?}")))
}

/// The Hessian `[P, P]` (row-major) of the mean loss over the examples `x` `[n, in]` with
/// one-hot labels `onehot` `[n, classes]` (both row-major host values), by central
/// differences (see the module docs). Costs `2·P` gradient passes over the `n` examples.
pub fn hessian(
    params: &LoraParams,
    x: &[f32],
    onehot: &[f32],
    n: usize,
) -> Result<Vec<f64>, InfluenceError> {
    let p = check_size(params)?;
    let device = Default::default();
    let xs = float_tensor::<F64, 2, f32>(x.to_vec(), [n, params.input_dim()], &device);
    let ys = float_tensor::<F64, 2, f32>(onehot.to_vec(), [n, params.classes()], &device);
    let theta = params.lora_vector();
    let mut h = vec![0.0; p * p];
    for j in 0..p {
        let mut plus = theta.clone();
        plus[j] += HESSIAN_STEP;
        let mut minus = theta.clone();
        minus[j] -= HESSIAN_STEP;
        let gp = mean_gradient(&params.with_lora_vector(&plus)?, &xs, &ys)?;
        let gm = mean_gradient(&params.with_lora_vector(&minus)?, &xs, &ys)?;
        for i in 0..p {
            h[i * p + j] = (gp[i] - gm[i]) / (2.0 * HESSIAN_STEP);
        }
    }
    for i in 0..p {
        for j in 0..i {
            let s = 0.5 * (h[i * p + j] + h[j * p + i]);
            h[i * p + j] = s;
            h[j * p + i] = s;
        }
    }
    Ok(h)
}

fn check_size(params: &LoraParams) -> Result<usize, InfluenceError> {
    let p = params.dim();
    if p > MAX_EXACT_PARAMS {
        return Err(InfluenceError::TooLarge {
            params: p,
            limit: MAX_EXACT_PARAMS,
        });
    }
    Ok(p)
}

/// Which dense curvature the exact method inverts (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curvature {
    /// The full Hessian of the mean training loss.
    Hessian,
    /// The Gauss-Newton matrix (= true Fisher for softmax cross-entropy).
    GaussNewton,
}

impl Curvature {
    /// Stable name: `hessian` or `gauss_newton`.
    pub fn name(self) -> &'static str {
        match self {
            Curvature::Hessian => "hessian",
            Curvature::GaussNewton => "gauss_newton",
        }
    }
}

/// The Gauss-Newton matrix `[P, P]` (row-major) of the mean loss over the examples `x`
/// `[n, in]` (row-major host values): `(1/n)·Σ_i Σ_c p_ic·g_ic g_icᵀ`.
pub fn gauss_newton(params: &LoraParams, x: &[f32], n: usize) -> Result<Vec<f64>, InfluenceError> {
    let p = check_size(params)?;
    let device = Default::default();
    let classes = params.classes();
    let xs = float_tensor::<F64, 2, f32>(x.to_vec(), [n, params.input_dim()], &device);
    let dp = params.to_device::<F64>(&device);
    let probs = burn::tensor::activation::softmax(dp.logits(xs.clone()), 1);
    let mut m = Tensor::<F64, 2>::zeros([p, p], (&device, burn::tensor::DType::F64));
    for c in 0..classes {
        let mut onehot = vec![0.0f64; n * classes];
        for i in 0..n {
            onehot[i * classes + c] = 1.0;
        }
        let y = float_tensor::<F64, 2, f64>(onehot, [n, classes], &device);
        let weight = probs.clone().narrow(1, c, 1).sqrt();
        let g = dp.per_example_gradients(xs.clone(), y) * weight;
        m = m + g.clone().transpose().matmul(g);
    }
    m.div_scalar(n as f64)
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| InfluenceError::Tensor(format!("{e:?}")))
}

/// Eigenvalues (ascending) and eigenvectors (`vectors[i·p + k]` is entry `i` of the `k`-th
/// vector, in the same order) of the symmetric `p × p` row-major matrix `m`, by cyclic
/// Jacobi rotations until the off-diagonal mass is below `1e-24` of the total.
pub fn symmetric_eigen(m: &[f64], p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0.0; p * p];
    for i in 0..p {
        v[i * p + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _sweep in 0..64 {
        let off: f64 = (0..p)
            .flat_map(|i| (0..p).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * p + j] * a[i * p + j])
            .sum();
        if off <= 1e-24 * total {
            break;
        }
        for k in 0..p {
            for l in k + 1..p {
                let akl = a[k * p + l];
                if akl == 0.0 {
                    continue;
                }
                let theta = (a[l * p + l] - a[k * p + k]) / (2.0 * akl);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for i in 0..p {
                    let (x, y) = (a[i * p + k], a[i * p + l]);
                    a[i * p + k] = c * x - s * y;
                    a[i * p + l] = s * x + c * y;
                }
                for i in 0..p {
                    let (x, y) = (a[k * p + i], a[l * p + i]);
                    a[k * p + i] = c * x - s * y;
                    a[l * p + i] = s * x + c * y;
                }
                for i in 0..p {
                    let (x, y) = (v[i * p + k], v[i * p + l]);
                    v[i * p + k] = c * x - s * y;
                    v[i * p + l] = s * x + c * y;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&i, &j| a[i * p + i].total_cmp(&a[j * p + j]));
    let values = order.iter().map(|&k| a[k * p + k]).collect();
    let mut vectors = vec![0.0; p * p];
    for (new, &k) in order.iter().enumerate() {
        for i in 0..p {
            vectors[i * p + new] = v[i * p + k];
        }
    }
    (values, vectors)
}

/// The damping applied to a curvature matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Damping {
    /// Smallest eigenvalue of the undamped matrix.
    pub min_eigenvalue: f64,
    /// Mean absolute eigenvalue of the undamped matrix.
    pub mean_abs_eigenvalue: f64,
    /// The `λ` added: `max(0, −min_eigenvalue) + damping_ratio·mean_abs_eigenvalue`.
    pub lambda: f64,
}

/// `(M + λI)⁻¹` (row-major) of the symmetric `p × p` matrix `m` with `λ` from
/// `damping_ratio` (see the module docs), and the damping used.
pub fn damped_inverse(
    m: &[f64],
    p: usize,
    damping_ratio: f64,
) -> Result<(Vec<f64>, Damping), InfluenceError> {
    let (values, vectors) = symmetric_eigen(m, p);
    let mean_abs_eigenvalue = values.iter().map(|e| e.abs()).sum::<f64>() / p as f64;
    let min_eigenvalue = values.first().copied().unwrap_or(0.0);
    let floor = damping_ratio * mean_abs_eigenvalue;
    let lambda = (-min_eigenvalue).max(0.0) + floor;
    if !(floor.is_finite() && floor > 0.0) {
        return Err(InfluenceError::Singular { floor });
    }
    let inv_values: Vec<f64> = values.iter().map(|e| 1.0 / (e + lambda)).collect();
    let mut inv = vec![0.0; p * p];
    for i in 0..p {
        for j in 0..p {
            inv[i * p + j] = (0..p)
                .map(|k| vectors[i * p + k] * inv_values[k] * vectors[j * p + k])
                .sum();
        }
    }
    Ok((
        inv,
        Damping {
            min_eigenvalue,
            mean_abs_eigenvalue,
            lambda,
        },
    ))
}

/// Analytic FLOPs of [`damped_inverse`]: Jacobi sweeps (counted as 10 sweeps of `p²/2`
/// rotations of `3·p` entries at 6 FLOPs each) plus the `p³` reconstruction (3 FLOPs per
/// term).
pub fn damped_inverse_flops(p: usize) -> u64 {
    let p = p as u64;
    10 * (p * p / 2) * 18 * p + 3 * p * p * p
}
