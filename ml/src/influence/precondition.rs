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
use rayon::prelude::*;

use super::InfluenceError;
use super::index::slices;
use super::params::{Block, float_tensor};
use crate::model::cost::Kernels;

/// Rows DataInf's blocks multiply at once, on one thread.
const APPLY_ROWS: usize = 2048;

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
    /// kernels. DataInf's blocks multiply on the host, straight from each block's columns
    /// of the rows (a strided GEMM per block and chunk of rows): through burn's CPU backend
    /// copying each block's columns out of the rows and joining the products back took
    /// longer than multiplying (`perf record`).
    pub(super) fn apply(
        &self,
        g: Vec<f32>,
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
                for (_, h) in blocks {
                    work += Kernels::matmul(m, h.len, h.len);
                }
                // In fixed chunks of rows on the rayon pool: a row's product depends on that
                // row alone, so the values do not depend on the thread count.
                let mut out = vec![0.0f32; m * p];
                out.par_chunks_mut(APPLY_ROWS * p)
                    .zip(g.par_chunks(APPLY_ROWS * p))
                    .for_each(|(out, g)| {
                        let rows = g.len() / p;
                        for (offset, h) in blocks {
                            gemm(
                                Strided::rows(&g[*offset..], p),
                                Strided::rows(&h.values, h.len),
                                (rows, h.len, h.len),
                                (&mut out[*offset..], p),
                            );
                        }
                    });
                // The blocks' products, then joining them.
                (
                    float_tensor::<B, 2, f32>(out, [m, p], device),
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
    let (mut scaled, mut gram) = (Vec::new(), Vec::new());
    for (first, m) in slices(n, slice) {
        let (g, k) = rows(first, m)?;
        work += k;
        for ((sum, b), lambda) in sums.iter_mut().zip(blocks).zip(&lambdas) {
            let pl = b.len;
            // diag(c)·G_l `[m, P_l]`, then (diag(c)·G_l)ᵀ·G_l.
            scaled.clear();
            for row in g.chunks_exact(p) {
                let gl = &row[b.offset..b.offset + pl];
                let c = (1.0 / (*lambda + f64::from(square(gl)))) as f32;
                scaled.extend(gl.iter().map(|v| c * v));
            }
            gram.resize(pl * pl, 0.0f32);
            gemm(
                Strided {
                    values: &scaled,
                    row: 1,
                    column: pl,
                },
                Strided::rows(&g[b.offset..], p),
                (pl, m, pl),
                (&mut gram, pl),
            );
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

/// A matrix read from `values` with element `(i, j)` at `i·row + j·column`.
struct Strided<'a> {
    values: &'a [f32],
    row: usize,
    column: usize,
}

impl<'a> Strided<'a> {
    /// Row-major rows `stride` apart.
    fn rows(values: &'a [f32], stride: usize) -> Strided<'a> {
        Strided {
            values,
            row: stride,
            column: 1,
        }
    }

    /// Whether every element of an `[r, c]` matrix lies inside `values`.
    fn holds(&self, r: usize, c: usize) -> bool {
        r == 0 || c == 0 || (r - 1) * self.row + (c - 1) * self.column < self.values.len()
    }
}

/// `C ← A·B` for `A` `[m, k]` and `B` `[k, n]` read strided, and `C` `[m, n]` written
/// row-major with rows `stride` apart into `c` (its other entries untouched), by
/// matrixmultiply's blocked kernel (the one burn's CPU backend multiplies with).
fn gemm(
    a: Strided,
    b: Strided,
    (m, k, n): (usize, usize, usize),
    (c, stride): (&mut [f32], usize),
) {
    assert!(
        a.holds(m, k) && b.holds(k, n),
        "gemm operands out of bounds"
    );
    assert!(
        stride >= n && (m == 0 || n == 0 || (m - 1) * stride + n <= c.len()),
        "gemm output out of bounds"
    );
    // SAFETY: the asserts keep every element read of A and B and written of C inside
    // their slices, and C's rows (`stride >= n` apart) do not overlap; `c` is borrowed
    // mutably, so it aliases neither operand.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.values.as_ptr(),
            a.row as isize,
            a.column as isize,
            b.values.as_ptr(),
            b.row as isize,
            b.column as isize,
            0.0,
            c.as_mut_ptr(),
            stride as isize,
            1,
        );
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;
    use crate::influence::stored::to_host;

    /// Seeded values in `[-1, 1)`.
    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn blocks_multiply_each_rows_slice_by_its_matrix_and_the_fit_matches_its_formula() {
        let (m, lens) = (9, [3usize, 5]);
        let p: usize = lens.iter().sum();
        let blocks: Vec<Block> = lens
            .iter()
            .scan(0, |offset, &len| {
                let b = Block {
                    layer: 0,
                    is_b: *offset > 0,
                    offset: *offset,
                    len,
                };
                *offset += len;
                Some(b)
            })
            .collect();
        let g = values(m * p, 1);
        let (pre, _) = fit_datainf::<NdArray<f32>>(&blocks, (m, 4), 0.1, |first, k| {
            Ok((g[first * p..(first + k) * p].to_vec(), Kernels::default()))
        })
        .unwrap();
        let Preconditioner::Blocks(fitted) = &pre else {
            panic!("DataInf fits blocks")
        };
        for ((offset, h), b) in fitted.iter().zip(&blocks) {
            assert_eq!((*offset, h.len), (b.offset, b.len));
            // (I − Σ_i g_i g_iᵀ / (λ + ‖g_i‖²) / n) / λ, λ = 0.1 · mean squared entry.
            let rows: Vec<&[f32]> = g
                .chunks(p)
                .map(|r| &r[b.offset..b.offset + b.len])
                .collect();
            let sq = |r: &[f32]| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>();
            let lambda = 0.1 * rows.iter().map(|r| sq(r)).sum::<f64>() / (m * b.len) as f64;
            for i in 0..b.len {
                for j in 0..b.len {
                    let sum: f64 = rows
                        .iter()
                        .map(|r| f64::from(r[i]) * f64::from(r[j]) / (lambda + sq(r)))
                        .sum();
                    let eye = if i == j { 1.0 } else { 0.0 };
                    let expected = (eye - sum / m as f64) / lambda;
                    let got = f64::from(h.values[i * b.len + j]);
                    assert!((got - expected).abs() <= 1e-4 * expected.abs().max(1.0));
                }
            }
        }
        let (applied, _) = pre.apply(g.clone(), (m, p), &Default::default());
        let applied = to_host(applied).unwrap();
        for (r, row) in g.chunks(p).enumerate() {
            for (offset, h) in fitted {
                for j in 0..h.len {
                    let expected: f32 = (0..h.len)
                        .map(|i| row[offset + i] * h.values[i * h.len + j])
                        .sum();
                    let got = applied[r * p + offset + j];
                    assert!((got - expected).abs() <= 1e-4 * expected.abs().max(1.0));
                }
            }
        }
    }
}
