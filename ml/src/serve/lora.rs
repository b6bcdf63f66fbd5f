//! The heterogeneous low-rank update of one batch: every request its own adapter.

use std::cell::Cell;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::cache::DeviceAdapter;
use super::sgmv;
use crate::model::cost::Kernels;

/// The low-rank updates of one batch, asked for site by site by a [`ServeModel`]
/// (`delta(site, x, rows)` right after the adapted layer); counts the FLOPs it does.
///
/// The batch is sorted by adapter, so each adapter's requests form one contiguous segment
/// (Punica's segmented SGMV). On the CPU backend one pass over the rows computes every
/// segment's update with its own adapter's matrices (the fused kernel in `serve/sgmv.rs`);
/// on any other backend each site runs one GEMM pair per segment, `x[segment]·Aᵀ` then
/// `·(scale·Bᵀ)`, the results concatenated in batch order.
///
/// Measured on the NdArray CPU backend (one site, rank 8, 32 requests of one row each,
/// sorted by adapter, fastest of 1500 calls, 2-vCPU machine shared with other jobs):
///
/// | site, batch | fused pass | grouped GEMM pairs |
/// |---|---:|---:|
/// | 1024 -> 1024, 1 adapter | 36 µs | 72 µs |
/// | 1024 -> 1024, Zipf(1.0) over 1000 adapters, 24 distinct | 39 µs | 210 µs |
/// | 256 -> 256, 1 adapter | 9.2 µs | 7.0 µs |
/// | 256 -> 256, Zipf over 1000, 24 distinct | 10.6 µs | 81 µs |
/// | 256 -> 256, 8 rows per request, Zipf over 1000 | 126 µs | 259 µs |
///
/// A small matmul there costs 4-15 µs however few its rows (burn-ndarray copies both
/// operands, `matrixmultiply` packs them), so the grouped pairs cost per distinct adapter
/// while the fused pass costs per row. Gathering instead (every request's `Aᵀ` and
/// `scale·Bᵀ` stacked into `[n, in, r]` and `[n, r, out]` for two batched matmuls, S-LoRA's
/// gather) was slower than grouping on that backend in every case measured: it pays the
/// matmul overhead per request plus a copy of every request's matrices.
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
    /// update. On the CPU backend one fused pass over the rows (`serve/sgmv.rs`),
    /// elsewhere one GEMM pair per segment. Counts two products per segment
    /// (`2·in·r + 2·r·out` FLOPs per row), the concatenation of several segments and the
    /// caller's add (`out` per row), whichever runs: the analytic kernels model the grouped
    /// products a GPU would launch.
    pub fn delta(&self, site: usize, x: Tensor<B, 2>, rows: usize) -> Option<Tensor<B, 2>> {
        let first = self.adapters.first()?;
        let [m, d_in] = x.dims();
        let [r, d_out] = first.sites[site].b_t.dims();
        let out = sgmv::delta(&x, rows, &self.segments, &self.adapters, site)
            .unwrap_or_else(|| self.grouped(site, x, rows));
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

    /// [`delta`](Self::delta) on any backend: one GEMM pair per segment, `x[segment]·Aᵀ`
    /// then `·(scale·Bᵀ)`, the results concatenated in batch order. The batch must carry
    /// adapters.
    pub(super) fn grouped(&self, site: usize, x: Tensor<B, 2>, rows: usize) -> Tensor<B, 2> {
        let mut parts: Vec<Tensor<B, 2>> = self
            .segments
            .iter()
            .map(|&(start, len, k)| {
                let s = &self.adapters[k].sites[site];
                x.clone()
                    .narrow(0, start * rows, len * rows)
                    .matmul(s.a.clone().transpose())
                    .matmul(s.b_t.clone())
            })
            .collect();
        if parts.len() == 1 {
            parts.remove(0)
        } else {
            Tensor::cat(parts, 0)
        }
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
