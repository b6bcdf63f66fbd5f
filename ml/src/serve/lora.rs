//! The heterogeneous low-rank update of one batch: every request its own adapter.

use std::cell::Cell;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use super::cache::DeviceAdapter;

/// How a batch computes its requests' low-rank updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoraKernel {
    /// Gather each request's `Aᵀ` and `scale·Bᵀ` into `[n, in, r]` and `[n, r, out]` and
    /// run two batched matmuls over the whole batch.
    Gather,
    /// Group the (adapter-sorted) batch into segments and run one GEMM pair per adapter.
    Grouped,
}

enum Plan<B: Backend> {
    /// No update (a merged model, or the base model alone).
    None,
    /// Per site: gathered `Aᵀ` `[n, in, r]` and `scale·Bᵀ` `[n, r, out]`.
    Gather(Vec<(Tensor<B, 3>, Tensor<B, 3>)>),
    /// Contiguous segments `(first request, requests, adapter)` over the distinct adapters.
    Grouped {
        adapters: Vec<DeviceAdapter<B>>,
        segments: Vec<(usize, usize, usize)>,
    },
}

/// The low-rank updates of one batch, asked for site by site by a [`ServeModel`]
/// (`delta(site, x)` right after the adapted layer); counts the FLOPs it does.
///
/// [`ServeModel`]: super::ServeModel
pub struct BatchLora<B: Backend> {
    plan: Plan<B>,
    flops: Cell<u64>,
}

impl<B: Backend> BatchLora<B> {
    /// No update at any site.
    pub fn none() -> BatchLora<B> {
        BatchLora {
            plan: Plan::None,
            flops: Cell::new(0),
        }
    }

    /// Request `j` of the batch uses `adapters[request_adapter[j]]`. For
    /// [`LoraKernel::Grouped`] the requests must be sorted so each adapter's are
    /// contiguous.
    pub fn new(
        kernel: LoraKernel,
        adapters: Vec<DeviceAdapter<B>>,
        request_adapter: &[usize],
    ) -> BatchLora<B> {
        let plan = match kernel {
            LoraKernel::Gather => {
                let sites = adapters.first().map_or(0, |a| a.sites.len());
                Plan::Gather(
                    (0..sites)
                        .map(|s| {
                            let pick = |f: fn(&super::DeviceSite<B>) -> &Tensor<B, 3>| {
                                let parts = request_adapter
                                    .iter()
                                    .map(|&k| f(&adapters[k].sites[s]).clone())
                                    .collect();
                                Tensor::cat(parts, 0)
                            };
                            (pick(|d| &d.a_t), pick(|d| &d.b_t))
                        })
                        .collect(),
                )
            }
            LoraKernel::Grouped => {
                let mut segments: Vec<(usize, usize, usize)> = Vec::new();
                for (j, &k) in request_adapter.iter().enumerate() {
                    match segments.last_mut() {
                        Some(seg) if seg.2 == k => seg.1 += 1,
                        _ => segments.push((j, 1, k)),
                    }
                }
                Plan::Grouped { adapters, segments }
            }
        };
        BatchLora {
            plan,
            flops: Cell::new(0),
        }
    }

    /// The update `scale · x·Aᵀ·Bᵀ` of site `site` for `x` `[requests, rows, in]` (one or
    /// more rows per request, e.g. tokens), `[requests, rows, out]`; `None` when there is no
    /// update. Counts `2·in·r + 2·r·out + out` FLOPs per row (the two products and the
    /// caller's add).
    pub fn delta(&self, site: usize, x: Tensor<B, 3>) -> Option<Tensor<B, 3>> {
        let [n, rows, d_in] = x.shape().dims();
        let out = match &self.plan {
            Plan::None => return None,
            Plan::Gather(sites) => {
                let (a, b) = &sites[site];
                x.matmul(a.clone()).matmul(b.clone())
            }
            Plan::Grouped { adapters, segments } => {
                let parts = segments
                    .iter()
                    .map(|&(start, len, k)| {
                        let s = &adapters[k].sites[site];
                        let [_, _, r] = s.a_t.shape().dims();
                        let [_, _, d_out] = s.b_t.shape().dims();
                        x.clone()
                            .narrow(0, start, len)
                            .reshape([len * rows, d_in])
                            .matmul(s.a_t.clone().reshape([d_in, r]))
                            .matmul(s.b_t.clone().reshape([r, d_out]))
                            .reshape([len, rows, d_out])
                    })
                    .collect();
                Tensor::cat(parts, 0)
            }
        };
        let [_, _, d_out] = out.shape().dims();
        let r = match &self.plan {
            Plan::Gather(sites) => sites[site].0.shape().dims::<3>()[2],
            Plan::Grouped { adapters, .. } => adapters[0].sites[site].a_t.shape().dims::<3>()[2],
            Plan::None => 0,
        };
        let per_row = (2 * d_in * r + 2 * r * d_out + d_out) as u64;
        self.flops
            .set(self.flops.get() + (n * rows) as u64 * per_row);
        Some(out)
    }

    /// FLOPs done by [`delta`](Self::delta) so far.
    pub fn flops(&self) -> u64 {
        self.flops.get()
    }
}
