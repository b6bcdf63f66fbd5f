//! The host matrix an [`InfluenceIndex`](super::InfluenceIndex) computes training
//! gradients into and assembles its kept stored gradients in, a slice of rows at a time.
//!
//! Building an index over `n` records keeps `[n, K]` floats (320 MB for 290,000 records
//! and `K = 276`). Joining per-chunk gradient tensors, then per-block preconditioned ones,
//! then the projected whole with `Tensor::cat` held three or four such copies at once
//! (1.3 GB per classifier in `scenarios/scale.toml`, measured with heaptrack). Here the
//! gradients are written chunk by chunk into one row-major host buffer, and each slice's
//! preconditioned rows back over the rows they were read from, so a build holds the matrix
//! once plus one slice.

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
                dp.gradients_into(
                    (
                        &x[s * dim..(s + m) * dim],
                        &onehot[s * classes..(s + m) * classes],
                    ),
                    rows,
                    device,
                )?;
                Ok::<(), InfluenceError>(())
            })?;
        Ok(HostMatrix {
            data,
            rows: n,
            cols: p,
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

    /// Rows `first..first + m`, `[m, cols]` row-major.
    pub(super) fn rows(&self, first: usize, m: usize) -> &[f32] {
        &self.data[first * self.cols..(first + m) * self.cols]
    }

    /// The values, `[rows, cols]` row-major.
    pub(super) fn into_values(self) -> Vec<f32> {
        self.data
    }

    /// Writes `block` `[m, cols]` over rows `first..first + m`.
    pub(super) fn write_rows<B: Backend>(
        &mut self,
        first: usize,
        block: Tensor<B, 2>,
    ) -> Result<(), InfluenceError> {
        let m = block.dims()[0];
        let values = to_host(block)?;
        self.data[first * self.cols..(first + m) * self.cols].copy_from_slice(&values);
        Ok(())
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
