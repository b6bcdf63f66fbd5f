//! The host matrix an [`InfluenceIndex`](super::InfluenceIndex) assembles its stored
//! training gradients in, one block of columns at a time.
//!
//! Building an index over `n` records keeps `[n, K]` floats (320 MB for 290,000 records
//! and `K = 276`). Joining per-chunk gradient tensors, then per-block preconditioned ones,
//! then the projected whole with `Tensor::cat` held three or four such copies at once
//! (1.3 GB per classifier in `scenarios/scale.toml`, measured with heaptrack). Here each
//! step writes its columns into one row-major host buffer instead: the gradients chunk by
//! chunk, and a preconditioned block back over the columns it was read from, so a build
//! holds the matrix once plus one block. The values are the same: only where they are
//! copied to changes.

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use rayon::prelude::*;

use super::InfluenceError;
use super::params::{DeviceParams, float_tensor};

/// A row-major `[rows, cols]` matrix of floats on the host.
pub(super) struct HostMatrix {
    data: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl HostMatrix {
    /// The per-example gradients `[n, p]` of the host batch `x`, `onehot` at `dp`, in
    /// chunks of `batch` rows computed in parallel (each chunk on its own, so the values
    /// are the same whatever the thread count) and written straight into place.
    pub(super) fn gradients<B: Backend>(
        dp: &DeviceParams<B>,
        (x, onehot): (&[f32], &[f32]),
        (n, p): (usize, usize),
        batch: usize,
        device: &B::Device,
    ) -> Result<HostMatrix, InfluenceError> {
        let (dim, classes) = (x.len() / n.max(1), dp.classes());
        let mut data = vec![0.0f32; n * p];
        data.par_chunks_mut(batch * p)
            .enumerate()
            .try_for_each(|(i, rows)| {
                let (s, m) = (i * batch, rows.len() / p);
                let g = dp.per_example_gradients(
                    tensor::<B>(x[s * dim..(s + m) * dim].to_vec(), [m, dim], device),
                    tensor::<B>(
                        onehot[s * classes..(s + m) * classes].to_vec(),
                        [m, classes],
                        device,
                    ),
                );
                rows.copy_from_slice(&to_host(g)?);
                Ok::<(), InfluenceError>(())
            })?;
        Ok(HostMatrix {
            data,
            rows: n,
            cols: p,
        })
    }

    /// `t` `[rows, cols]`, read back to the host.
    pub(super) fn from_tensor<B: Backend>(t: Tensor<B, 2>) -> Result<HostMatrix, InfluenceError> {
        let [rows, cols] = t.dims();
        Ok(HostMatrix {
            data: to_host(t)?,
            rows,
            cols,
        })
    }

    /// A zero matrix `[rows, cols]`.
    pub(super) fn zeros(rows: usize, cols: usize) -> HostMatrix {
        HostMatrix {
            data: vec![0.0; rows * cols],
            rows,
            cols,
        }
    }

    /// Columns `offset..offset + width` as a `[rows, width]` tensor on `device`.
    pub(super) fn columns<B: Backend>(
        &self,
        offset: usize,
        width: usize,
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let mut block = Vec::with_capacity(self.rows * width);
        for row in self.data.chunks_exact(self.cols.max(1)) {
            block.extend_from_slice(&row[offset..offset + width]);
        }
        tensor::<B>(block, [self.rows, width], device)
    }

    /// Writes `block` `[rows, width]` over columns `offset..offset + width`; where `dots` is
    /// given, adds each row's dot product of the old and new values there to it (in `f64`).
    pub(super) fn replace_columns<B: Backend>(
        &mut self,
        offset: usize,
        block: Tensor<B, 2>,
        mut dots: Option<&mut [f64]>,
    ) -> Result<(), InfluenceError> {
        let width = block.dims()[1];
        let block = to_host(block)?;
        let rows = self.data.chunks_exact_mut(self.cols.max(1));
        for (r, (row, values)) in rows.zip(block.chunks_exact(width.max(1))).enumerate() {
            let old = &mut row[offset..offset + width];
            if let Some(dots) = dots.as_deref_mut() {
                dots[r] += old
                    .iter()
                    .zip(values)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum::<f64>();
            }
            old.copy_from_slice(values);
        }
        Ok(())
    }

    /// Each row's dot product with the same row of `other` (same shape), in `f64`.
    pub(super) fn row_dots(&self, other: &HostMatrix) -> Vec<f64> {
        let cols = self.cols.max(1);
        self.data
            .chunks_exact(cols)
            .zip(other.data.chunks_exact(cols))
            .map(|(a, b)| {
                a.iter()
                    .zip(b)
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum()
            })
            .collect()
    }

    /// The whole matrix as a tensor on `device`.
    pub(super) fn into_tensor<B: Backend>(self, device: &B::Device) -> Tensor<B, 2> {
        tensor::<B>(self.data, [self.rows, self.cols], device)
    }
}

fn tensor<B: Backend>(v: Vec<f32>, shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    float_tensor::<B, 2, f32>(v, shape, device)
}

/// `t` read back to the host, row-major.
pub(super) fn to_host<B: Backend>(t: Tensor<B, 2>) -> Result<Vec<f32>, InfluenceError> {
    t.into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| InfluenceError::Tensor(format!("{e:?}")))
}
