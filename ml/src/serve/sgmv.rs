//! The low-rank updates of a whole batch in one pass over host memory, for the CPU backend.
//!
//! On `NdArray<f32>` the device is the host: tensors are `f32` arrays in main memory. There a
//! small matmul costs far more in bookkeeping than in arithmetic (burn-ndarray copies every
//! operand while reshaping it for the batched product, `matrixmultiply` packs both, the
//! output is allocated), about 7 µs per segment and site for a row or two at rank 8, so a
//! batch of 25 adapters spent more on its low-rank updates than on a third of its base pass.
//! [`delta`] instead walks the batch's rows once per site, as Punica's SGMV kernel does on a
//! GPU: for each row the down-projection `h = A·x` (rank dot products over `in`), then
//! `y = hᵀ·(scale·Bᵀ)` (rank AXPYs over `out`), reading its segment's adapter matrices where
//! they are resident and writing every row's update into one output tensor. The FLOPs are
//! the same two products per segment as the grouped GEMM pairs; other backends keep those.

use std::any::Any;

use burn::backend::NdArray;
use burn::backend::ndarray::{NdArrayTensor, SharedArray};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};

use super::cache::DeviceAdapter;
use crate::lanes::dot;

/// The backend whose tensors live in host memory.
type Cpu = NdArray<f32>;

/// The values of `t` in row-major order when `B` is [`Cpu`] (shared, not copied, when they
/// are already row-major); `None` on any other backend.
fn host<B: Backend, const D: usize>(t: &Tensor<B, D>) -> Option<SharedArray<f32>> {
    let t = (t as &dyn Any).downcast_ref::<Tensor<Cpu, D>>()?;
    let TensorPrimitive::Float(NdArrayTensor::F32(storage)) = t.clone().into_primitive() else {
        return None;
    };
    let values = storage.into_shared();
    Some(if values.is_standard_layout() {
        values
    } else {
        values.as_standard_layout().into_owned().into_shared()
    })
}

/// The update `x·Aᵀ·(scale·Bᵀ)` of site `site` for `x` `[requests · rows, in]` whose
/// requests are sorted into `segments` `(first request, requests, adapter index)` over
/// `adapters`, each request's `rows` rows contiguous: `[requests · rows, out]`. `None`
/// unless `B` is the CPU backend.
pub(super) fn delta<B: Backend>(
    x: &Tensor<B, 2>,
    rows: usize,
    segments: &[(usize, usize, usize)],
    adapters: &[DeviceAdapter<B>],
    site: usize,
) -> Option<Tensor<B, 2>> {
    let [m, d_in] = x.dims();
    let [rank, d_out] = adapters.first()?.sites[site].b_t.dims();
    let x = host(x)?;
    let x = x.as_slice()?;
    let mut out = vec![0.0f32; m * d_out];
    let mut h = vec![0.0f32; rank];
    for &(start, len, k) in segments {
        let s = &adapters[k].sites[site];
        let (a, b_t) = (host(&s.a)?, host(&s.b_t)?);
        let (a, b_t) = (a.as_slice()?, b_t.as_slice()?);
        let (first, last) = (start * rows, (start + len) * rows);
        let xs = x[first * d_in..last * d_in].chunks_exact(d_in);
        let ys = out[first * d_out..last * d_out].chunks_exact_mut(d_out);
        for (xr, yr) in xs.zip(ys) {
            for (hk, ak) in h.iter_mut().zip(a.chunks_exact(d_in)) {
                *hk = dot::<16>(xr, ak);
            }
            for (&hk, bk) in h.iter().zip(b_t.chunks_exact(d_out)) {
                for (y, b) in yr.iter_mut().zip(bk) {
                    *y += hk * b;
                }
            }
        }
    }
    let out = Tensor::<Cpu, 2>::from_data(TensorData::new(out, [m, d_out]), &Default::default());
    let out: Box<dyn Any> = Box::new(out);
    out.downcast::<Tensor<B, 2>>().ok().map(|t| *t)
}
