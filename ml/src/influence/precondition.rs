//! The matrix `M` each method multiplies a training gradient by before it is stored
//! (`score(z, x) = ∇L(x)ᵀ·M·∇L(z)`, see [`Method`](super::Method)), and DataInf's fit of
//! it from the training gradients.
//!
//! DataInf's fit reads the gradients a slice of records at a time, twice (the damping
//! needs every gradient's norm before the curvature can be summed), and accumulates in
//! `f64` on the host. It never needs the whole `[n, P]` gradient matrix at once, so an
//! index that recomputes its gradients instead of keeping them
//! ([`Storage::Recomputed`](super::Storage)) can be fitted in the memory of one slice.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::InfluenceError;
use super::index::slices;
use super::params::{Block, float_tensor};
use super::stored::to_host;
use crate::model::cost::Kernels;

/// What a training gradient `g` `[m, P]` is multiplied by: `g·M`.
#[derive(Clone, Debug)]
pub(super) enum Preconditioner<B: Backend> {
    /// TracIn: none (`M = I`).
    Identity,
    /// DataInf: per LoRA matrix, its `Ĥ_l⁻¹` `[P_l, P_l]` at its offset in the LoRA vector
    /// (the blocks are contiguous and cover it, in order).
    Blocks(Vec<(usize, Tensor<B, 2>)>),
    /// Exact: the damped inverse curvature `[P, P]`.
    Dense(Tensor<B, 2>),
}

impl<B: Backend> Preconditioner<B> {
    /// `g·M` and its kernels.
    pub(super) fn apply(&self, g: Tensor<B, 2>) -> (Tensor<B, 2>, Kernels) {
        let [m, p] = g.dims();
        match self {
            Preconditioner::Identity => (g, Kernels::default()),
            Preconditioner::Dense(inverse) => (g.matmul(inverse.clone()), Kernels::matmul(m, p, p)),
            Preconditioner::Blocks(blocks) => {
                let mut work = Kernels::default();
                let parts = blocks
                    .iter()
                    .map(|(offset, h)| {
                        let pl = h.dims()[0];
                        work += Kernels::matmul(m, pl, pl);
                        g.clone().narrow(1, *offset, pl).matmul(h.clone())
                    })
                    .collect();
                // The blocks' products, then joining them.
                (
                    Tensor::cat(parts, 1),
                    work + Kernels::elementwise(m * p, m * p, 0),
                )
            }
        }
    }
}

/// DataInf's preconditioner (see [`Method::DataInf`](super::Method::DataInf)) fitted to the
/// `n` training gradients that `rows(first, m)` gives (rows `first..first + m` of `[n, P]`,
/// with the kernels it took), read `slice` rows at a time in two passes: the damping
/// `λ_l` from each matrix's mean squared gradient entry, then `Σ_i g_i g_iᵀ / (λ_l +
/// ‖g_i‖²)` per matrix. Returns the preconditioner and the kernels of both passes.
pub(super) fn fit_datainf<B: Backend>(
    blocks: &[Block],
    (n, slice): (usize, usize),
    damping_ratio: f64,
    device: &B::Device,
    mut rows: impl FnMut(usize, usize) -> Result<(Tensor<B, 2>, Kernels), InfluenceError>,
) -> Result<(Preconditioner<B>, Kernels), InfluenceError> {
    let mut work = Kernels::default();
    let norms =
        |g: &Tensor<B, 2>, b: &Block| g.clone().narrow(1, b.offset, b.len).square().sum_dim(1);
    // Pass 1: each matrix's summed squared gradient entries.
    let mut squares = vec![0.0f64; blocks.len()];
    for (first, m) in slices(n, slice) {
        let (g, k) = rows(first, m)?;
        work += k;
        for (total, b) in squares.iter_mut().zip(blocks) {
            *total += f64::from(to_host(norms(&g, b).sum_dim(0))?[0]);
            // square, row sums, their sum (read back).
            work += Kernels::elementwise(m * b.len, m * b.len, m * b.len)
                + Kernels::elementwise(m * b.len, m, m * b.len)
                + Kernels::elementwise(m, 1, m);
        }
    }
    let mut lambdas = Vec::with_capacity(blocks.len());
    for (total, b) in squares.iter().zip(blocks) {
        let lambda = damping_ratio * total / (n * b.len) as f64;
        if !(lambda.is_finite() && lambda > 0.0) {
            return Err(InfluenceError::Config(format!(
                "DataInf damping λ = {lambda} is not positive: the gradients of a LoRA matrix \
                 are all zero (train the adapter first)"
            )));
        }
        lambdas.push(lambda);
    }
    // Pass 2: per matrix, Σ_i c_i·g_i g_iᵀ with c_i = 1 / (λ_l + ‖g_i‖²).
    let mut sums: Vec<Vec<f64>> = blocks.iter().map(|b| vec![0.0; b.len * b.len]).collect();
    for (first, m) in slices(n, slice) {
        let (g, k) = rows(first, m)?;
        work += k;
        for ((sum, b), lambda) in sums.iter_mut().zip(blocks).zip(&lambdas) {
            let gl = g.clone().narrow(1, b.offset, b.len);
            let c = norms(&g, b).add_scalar(*lambda).recip();
            let gram = gl.clone().transpose().matmul(gl * c);
            for (s, v) in sum.iter_mut().zip(to_host(gram)?) {
                *s += f64::from(v);
            }
            let (np, pp) = (m * b.len, b.len * b.len);
            // square, row sums, + λ, reciprocal, diag(c)·G, Gᵀ·(diag(c)·G), read back.
            work += Kernels::elementwise(np, np, np)
                + Kernels::elementwise(np, m, np)
                + Kernels::elementwise(m, m, m)
                + Kernels::elementwise(m, m, m)
                + Kernels::elementwise(np + m, np, np)
                + Kernels::matmul(b.len, m, b.len)
                + Kernels::elementwise(pp, 0, pp);
        }
    }
    // Ĥ_l⁻¹ = (I − Σ/n) / λ_l, on the host in f64.
    let inverses = sums
        .into_iter()
        .zip(blocks)
        .zip(&lambdas)
        .map(|((sum, b), lambda)| {
            let pl = b.len;
            let h: Vec<f32> = (0..pl * pl)
                .map(|i| {
                    let eye = if i / pl == i % pl { 1.0 } else { 0.0 };
                    ((eye - sum[i] / n as f64) / lambda) as f32
                })
                .collect();
            (b.offset, float_tensor::<B, 2, f32>(h, [pl, pl], device))
        })
        .collect();
    Ok((Preconditioner::Blocks(inverses), work))
}
