//! The heterogeneous low-rank update of one batch: every request its own adapter.

use std::cell::Cell;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::cache::DeviceAdapter;
use crate::model::cost::Kernels;

/// The low-rank updates of one batch, asked for site by site by a [`ServeModel`]
/// (`delta(site, x, rows)` right after the adapted layer); counts the FLOPs it does.
///
/// The batch is sorted by adapter, so each adapter's requests form one contiguous segment,
/// and each site runs one GEMM pair per segment: `x[segment]·Aᵀ` then `·(scale·Bᵀ)`, the
/// results concatenated in batch order (Punica's segmented SGMV, done as plain matmuls).
///
/// Why grouping and not gathering: the alternative, stacking every request's `Aᵀ` and
/// `scale·Bᵀ` into `[n, in, r]` and `[n, r, out]` for two batched matmuls (S-LoRA's
/// gather), was measured against it on the NdArray CPU backend (MLP 512 -> 1024 -> 1024 ->
/// 16, rank 8 on all three layers, batches of 32, fastest of 200 batches, 2-vCPU machine):
///
/// | batch | base pass only | grouped | gathered |
/// |---|---:|---:|---:|
/// | 1 adapter | 2.28 ms | 2.51 ms | 4.07 ms |
/// | Zipf(1.0) over 1000 adapters, 24.5 distinct | 2.28 ms | 3.34 ms | 4.50 ms |
/// | 32 distinct adapters | 2.22 ms | 3.78 ms | 4.33 ms |
///
/// Grouping was faster in every case (and again with 1024 inputs). On this backend a small
/// matmul costs 4-15 µs however few its rows; gathering pays that per request (a batched
/// matmul runs one GEMM per batch entry) plus a copy of every request's matrices, while
/// grouping pays it per distinct adapter and reads each adapter once. A GPU backend with a
/// fused gather kernel (Punica's BGMV) could favour gathering instead.
///
/// [`ServeModel`]: super::ServeModel
pub struct BatchLora<B: Backend> {
    /// The distinct adapters, and the segments `(first request, requests, adapter)` over
    /// them; no adapters means no update.
    adapters: Vec<DeviceAdapter<B>>,
    segments: Vec<(usize, usize, usize)>,
    work: Cell<Kernels>,
}

impl<B: Backend> BatchLora<B> {
    /// No update at any site (a merged model, or the base model alone).
    pub fn none() -> BatchLora<B> {
        BatchLora::new(Vec::new(), &[])
    }

    /// Request `j` of the batch uses `adapters[request_adapter[j]]`; the requests must be
    /// sorted so each adapter's are contiguous (a repeated adapter just gets another
    /// segment).
    pub fn new(adapters: Vec<DeviceAdapter<B>>, request_adapter: &[usize]) -> BatchLora<B> {
        let mut segments: Vec<(usize, usize, usize)> = Vec::new();
        for (j, &k) in request_adapter.iter().enumerate() {
            match segments.last_mut() {
                Some(seg) if seg.2 == k => seg.1 += 1,
                _ => segments.push((j, 1, k)),
            }
        }
        BatchLora {
            adapters,
            segments,
            work: Cell::new(Kernels::default()),
        }
    }

    /// The update `scale · x·Aᵀ·Bᵀ` of site `site` for `x` `[requests · rows, in]`, each
    /// request's `rows` rows (1 for a classifier, its tokens for a language model)
    /// contiguous and in batch order: `[requests · rows, out]`, or `None` when there is no
    /// update. Counts two products per segment (`2·in·r + 2·r·out` FLOPs per row), the
    /// concatenation of several segments and the caller's add (`out` per row).
    pub fn delta(&self, site: usize, x: Tensor<B, 2>, rows: usize) -> Option<Tensor<B, 2>> {
        let first = self.adapters.first()?;
        let [m, d_in] = x.shape().dims();
        let [r, d_out] = first.sites[site].b_t.shape().dims();
        let mut parts: Vec<Tensor<B, 2>> = self
            .segments
            .iter()
            .map(|&(start, len, k)| {
                let s = &self.adapters[k].sites[site];
                x.clone()
                    .narrow(0, start * rows, len * rows)
                    .matmul(s.a_t.clone())
                    .matmul(s.b_t.clone())
            })
            .collect();
        let out = if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 0)
        };
        let y = m * d_out;
        let mut work: Kernels = self
            .segments
            .iter()
            .map(|&(_, len, _)| {
                Kernels::matmul(len * rows, d_in, r) + Kernels::matmul(len * rows, r, d_out)
            })
            .sum();
        if self.segments.len() > 1 {
            work += Kernels::elementwise(y, y, 0);
        }
        work += Kernels::elementwise(2 * y, y, y);
        self.work.set(self.work.get() + work);
        Some(out)
    }

    /// Whether any request carries an adapter.
    pub fn has_adapters(&self) -> bool {
        !self.adapters.is_empty()
    }

    /// Kernels run by [`delta`](Self::delta) so far.
    pub fn work(&self) -> Kernels {
        self.work.get()
    }
}
