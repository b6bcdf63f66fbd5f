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
use crate::model::cost::Kernels;

/// What a training gradient `g` `[m, P]` is multiplied by: `g·M`.
#[derive(Clone, Debug)]
pub(super) enum Preconditioner<B: Backend> {
    /// TracIn: none (`M = I`).
    Identity,
    /// DataInf: per LoRA matrix `l`, its symmetric `Ĥ_l⁻¹` `[P_l, P_l]` (host, row-major)
    /// at its offset in the LoRA vector (the blocks are contiguous and cover it, in order).
    Blocks(Vec<(usize, HostBlock)>),
    /// Exact: the damped inverse curvature `[P, P]`.
    Dense(Tensor<B, 2>),
}

/// One DataInf block `Ĥ_l⁻¹`: `[len, len]` row-major on the host.
#[derive(Clone, Debug)]
pub(super) struct HostBlock {
    len: usize,
    values: Vec<f32>,
}

impl<B: Backend> Preconditioner<B> {
    /// `g·M` of host rows `g` (`[m, P]`, row-major) as a tensor on `device`, and its
    /// kernels. DataInf's blocks multiply on the host, row by row: as one matrix product
    /// per block, burn's CPU backend spent more time copying each block's columns out of
    /// the rows and joining the products back than multiplying (`perf record`).
    pub(super) fn apply(
        &self,
        mut g: Vec<f32>,
        (m, p): (usize, usize),
        device: &B::Device,
    ) -> (Tensor<B, 2>, Kernels) {
        match self {
            Preconditioner::Identity => (
                float_tensor::<B, 2, f32>(g, [m, p], device),
                Kernels::default(),
            ),
            Preconditioner::Dense(inverse) => (
                float_tensor::<B, 2, f32>(g, [m, p], device).matmul(inverse.clone()),
                Kernels::matmul(m, p, p),
            ),
            Preconditioner::Blocks(blocks) => {
                let mut work = Kernels::default();
                let mut scratch = Vec::new();
                for (offset, h) in blocks {
                    let pl = h.len;
                    work += Kernels::matmul(m, pl, pl);
                    scratch.resize(pl, 0.0);
                    for row in g.chunks_exact_mut(p) {
                        let gl = &mut row[*offset..offset + pl];
                        scratch.fill(0.0);
                        for (&gi, hi) in gl.iter().zip(h.values.chunks_exact(pl)) {
                            for (y, &v) in scratch.iter_mut().zip(hi) {
                                *y += gi * v;
                            }
                        }
                        gl.copy_from_slice(&scratch);
                    }
                }
                // The blocks' products, then joining them.
                (
                    float_tensor::<B, 2, f32>(g, [m, p], device),
                    work + Kernels::elementwise(m * p, m * p, 0),
                )
            }
        }
    }
}

/// DataInf's preconditioner (see [`Method::DataInf`](super::Method::DataInf)) fitted to the
/// `n` training gradients that `rows(first, m)` gives (rows `first..first + m` of `[n, P]`
/// on the host, row-major, with the kernels it took), read `slice` rows at a time in two
/// passes: the damping `λ_l` from each matrix's mean squared gradient entry, then `Σ_i g_i
/// g_iᵀ / (λ_l + ‖g_i‖²)` per matrix. Each slice's sums are taken in `f32` and added up in
/// `f64`. Returns the preconditioner and the kernels of both passes.
pub(super) fn fit_datainf<B: Backend>(
    blocks: &[Block],
    (n, slice): (usize, usize),
    damping_ratio: f64,
    mut rows: impl FnMut(usize, usize) -> Result<(Vec<f32>, Kernels), InfluenceError>,
) -> Result<(Preconditioner<B>, Kernels), InfluenceError> {
    let mut work = Kernels::default();
    let p: usize = blocks.iter().map(|b| b.len).sum();
    let square = |g: &[f32]| g.iter().map(|v| v * v).sum::<f32>();
    // Pass 1: each matrix's summed squared gradient entries.
    let mut squares = vec![0.0f64; blocks.len()];
    for (first, m) in slices(n, slice) {
        let (g, k) = rows(first, m)?;
        work += k;
        for (total, b) in squares.iter_mut().zip(blocks) {
            let sum: f32 = g
                .chunks_exact(p)
                .map(|row| square(&row[b.offset..b.offset + b.len]))
                .sum();
            *total += f64::from(sum);
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
    let mut gram = Vec::new();
    for (first, m) in slices(n, slice) {
        let (g, k) = rows(first, m)?;
        work += k;
        for ((sum, b), lambda) in sums.iter_mut().zip(blocks).zip(&lambdas) {
            let pl = b.len;
            gram.clear();
            gram.resize(pl * pl, 0.0f32);
            for row in g.chunks_exact(p) {
                let gl = &row[b.offset..b.offset + pl];
                let c = (1.0 / (*lambda + f64::from(square(gl)))) as f32;
                for (&gi, out) in gl.iter().zip(gram.chunks_exact_mut(pl)) {
                    let a = c * gi;
                    for (o, &gj) in out.iter_mut().zip(gl) {
                        *o += a * gj;
                    }
                }
            }
            for (s, &v) in sum.iter_mut().zip(&gram) {
                *s += f64::from(v);
            }
            let (np, pp) = (m * pl, pl * pl);
            // square, row sums, + λ, reciprocal, diag(c)·G, Gᵀ·(diag(c)·G), read back.
            work += Kernels::elementwise(np, np, np)
                + Kernels::elementwise(np, m, np)
                + Kernels::elementwise(m, m, m)
                + Kernels::elementwise(m, m, m)
                + Kernels::elementwise(np + m, np, np)
                + Kernels::matmul(pl, m, pl)
                + Kernels::elementwise(pp, 0, pp);
        }
    }
    // Ĥ_l⁻¹ = (I − Σ/n) / λ_l, in f64.
    let inverses = sums
        .into_iter()
        .zip(blocks)
        .zip(&lambdas)
        .map(|((sum, b), lambda)| {
            let pl = b.len;
            let values = (0..pl * pl)
                .map(|i| {
                    let eye = if i / pl == i % pl { 1.0 } else { 0.0 };
                    ((eye - sum[i] / n as f64) / lambda) as f32
                })
                .collect();
            (b.offset, HostBlock { len: pl, values })
        })
        .collect();
    Ok((Preconditioner::Blocks(inverses), work))
}
