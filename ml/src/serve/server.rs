//! The serving loop: a request queue, batch formation per [`ServeMode`], the device cache
//! and per-batch [`StepCost`]s, over any model that implements [`ServeModel`].

use std::collections::VecDeque;
use std::time::Instant;

use burn::tensor::backend::Backend;

use super::ServeError;
use super::cache::{AdapterCache, CacheStats, DeviceAdapter};
use super::lora::BatchLora;
use super::store::{AdapterId, AdapterLayout, AdapterStore};
use crate::model::StepCost;
use crate::model::cost::Kernels;

/// A model kind the [`Server`] can serve with many adapters.
///
/// The model owns its frozen base weights on the device and declares where adapters apply
/// ([`adapter_layout`](Self::adapter_layout)). For a batch it runs one base pass and asks
/// the [`BatchLora`] for each adapted site's update (`lora.delta(site, x, rows)`, added to the
/// layer's output). A causal language model fits the same shape: its input is a prompt
/// (and generation length), its output the generated tokens, and its batched prefill and
/// KV-cached decode steps call `delta` with each request's token rows (`[requests · tokens,
/// width]`) at each adapted projection.
pub trait ServeModel<B: Backend>: Sized {
    /// One request's input.
    type Input;
    /// One request's result.
    type Output;

    /// The sites (and rank) every adapter served with this model must have.
    fn adapter_layout(&self) -> AdapterLayout;
    /// Checks one request's input ([`ServeError::BadInput`] saying what is wrong).
    fn check_input(&self, input: &Self::Input) -> Result<(), ServeError>;
    /// Serves a batch of checked inputs: one base pass plus `lora`'s update at each site.
    fn forward(
        &self,
        inputs: &[&Self::Input],
        lora: &BatchLora<B>,
    ) -> Result<Served<Self::Output>, ServeError>;
    /// A copy with `adapter` merged into the base weights (`W + Aᵀ·scale·Bᵀ` per site).
    fn merged(&self, adapter: &DeviceAdapter<B>) -> Self;
    /// Device bytes of the base weights.
    fn weight_bytes(&self) -> u64;
    /// The device the weights live on.
    fn device(&self) -> B::Device;
}

/// The results of [`ServeModel::forward`].
pub struct Served<O> {
    /// One output per input, in order.
    pub outputs: Vec<O>,
    /// Analytic kernels of the base pass (the low-rank updates are counted by
    /// [`BatchLora`]).
    pub work: Kernels,
}

/// How the server forms batches and applies adapters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeMode {
    /// Up to `max_batch` queued requests with any mix of adapters: one base pass plus each
    /// request's own low-rank update.
    Heterogeneous,
    /// Requests in arrival order; the adapter is merged into a copy of the base weights
    /// whenever it changes, and consecutive requests for the merged adapter share a batch.
    MergeOnSwitch,
    /// One request per step, unmerged.
    OneAtATime,
}

/// Server settings.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// Batch formation and adapter application.
    pub mode: ServeMode,
    /// Most requests in one batch.
    pub max_batch: usize,
    /// Byte budget of the device adapter cache.
    pub cache_bytes: u64,
}

/// Identifies a submitted request (sequential from 0).
pub type RequestId = u64;

struct Queued<I> {
    id: RequestId,
    adapter: AdapterId,
    input: I,
}

/// One served request.
#[derive(Clone, Debug, PartialEq)]
pub struct Response<O> {
    /// The id [`Server::submit`] returned.
    pub request: RequestId,
    /// The adapter it was served with.
    pub adapter: AdapterId,
    /// The model's output.
    pub output: O,
}

/// What one step served and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchReport<O> {
    /// The batch's responses, in arrival order.
    pub responses: Vec<Response<O>>,
    /// Distinct adapters in the batch.
    pub adapters: usize,
    /// Merges done (merge-on-switch only: 0 or 1).
    pub merges: usize,
    /// Measured wall time of the whole step (batching, cache, merge, forward, read-back)
    /// and analytic kernels (base pass, low-rank updates, merge).
    pub cost: StepCost,
}

/// Device memory the server holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceBytes {
    /// The base weights.
    pub base: u64,
    /// The merged copy of the weights (merge-on-switch), 0 when none.
    pub merged: u64,
    /// Resident adapters in the cache.
    pub adapters: u64,
}

impl DeviceBytes {
    /// The sum.
    pub fn total(&self) -> u64 {
        self.base + self.merged + self.adapters
    }
}

/// Timings of a [`Server::replay`].
#[derive(Clone, Debug, PartialEq)]
pub struct ReplayReport {
    /// The backend's device name.
    pub device: String,
    /// Requests served.
    pub requests: usize,
    /// Steps taken.
    pub batches: usize,
    /// Measured wall time of the replay, seconds.
    pub wall_seconds: f64,
    /// Per request, in stream order: seconds from its window's arrival to its result.
    pub latencies: Vec<f64>,
    /// Analytic FLOPs of all steps.
    pub flops: u64,
}

impl ReplayReport {
    /// Requests per second of wall time.
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.wall_seconds
    }

    /// The `q`-quantile (nearest rank, `q` in `[0, 1]`) of the latencies; 0 when empty.
    pub fn latency_quantile(&self, q: f64) -> f64 {
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        let Some(last) = sorted.len().checked_sub(1) else {
            return 0.0;
        };
        sorted[((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).clamp(1, last + 1) - 1]
    }
}

/// Serves requests for the adapters of an [`AdapterStore`] over one [`ServeModel`].
pub struct Server<B: Backend, M: ServeModel<B>> {
    model: M,
    store: AdapterStore,
    cache: AdapterCache<B>,
    config: ServerConfig,
    queue: VecDeque<Queued<M::Input>>,
    next_request: RequestId,
    merged: Option<(AdapterId, M)>,
}

impl<B: Backend, M: ServeModel<B>> Server<B, M> {
    /// A server of `store`'s adapters over `model`. Errors when the store's layout is not
    /// the model's, `max_batch` is 0 or the cache cannot hold one adapter.
    pub fn new(
        model: M,
        store: AdapterStore,
        config: ServerConfig,
    ) -> Result<Server<B, M>, ServeError> {
        let layout = model.adapter_layout();
        if *store.layout() != layout {
            return Err(ServeError::AdapterShape(format!(
                "the store holds adapters of {:?}, the model takes {:?}",
                store.layout(),
                layout
            )));
        }
        if config.max_batch == 0 {
            return Err(ServeError::Config("max_batch must be at least 1".into()));
        }
        if config.cache_bytes < layout.adapter_bytes() {
            return Err(ServeError::CacheTooSmall {
                needed: layout.adapter_bytes(),
                budget: config.cache_bytes,
            });
        }
        let cache = AdapterCache::new(config.cache_bytes, model.device());
        Ok(Server {
            model,
            store,
            cache,
            config,
            queue: VecDeque::new(),
            next_request: 0,
            merged: None,
        })
    }

    /// The adapters.
    pub fn store(&self) -> &AdapterStore {
        &self.store
    }

    /// The adapters, to add more while serving (ids are never reused, so the cache stays
    /// valid).
    pub fn store_mut(&mut self) -> &mut AdapterStore {
        &mut self.store
    }

    /// The current mode.
    pub fn mode(&self) -> ServeMode {
        self.config.mode
    }

    /// Switches the mode for the next steps, dropping any merged weights.
    pub fn set_mode(&mut self, mode: ServeMode) {
        self.config.mode = mode;
        self.merged = None;
    }

    /// Cache counters and resident totals.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The device cache (read-only).
    pub fn cache(&self) -> &AdapterCache<B> {
        &self.cache
    }

    /// Zeroes the cache's hit, miss and eviction counters.
    pub fn reset_cache_counters(&mut self) {
        self.cache.reset_counters();
    }

    /// Empties the device cache and drops any merged weights.
    pub fn clear_device(&mut self) {
        self.cache.clear();
        self.merged = None;
    }

    /// Device memory held now.
    pub fn device_bytes(&self) -> DeviceBytes {
        DeviceBytes {
            base: self.model.weight_bytes(),
            merged: self.merged.as_ref().map_or(0, |m| m.1.weight_bytes()),
            adapters: self.cache.stats().resident_bytes,
        }
    }

    /// Requests waiting.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Queues a request after checking its adapter and input; a bad request is refused
    /// here and never reaches a batch.
    pub fn submit(&mut self, adapter: AdapterId, input: M::Input) -> Result<RequestId, ServeError> {
        self.check(adapter, &input)?;
        let id = self.next_request;
        self.next_request += 1;
        self.queue.push_back(Queued { id, adapter, input });
        Ok(id)
    }

    fn check(&self, adapter: AdapterId, input: &M::Input) -> Result<(), ServeError> {
        if !self.store.contains(adapter) {
            return Err(ServeError::UnknownAdapter { id: adapter });
        }
        self.model.check_input(input)
    }

    /// Serves the next batch of the queue; `None` when the queue is empty. If serving fails
    /// the batch goes back to the front of the queue.
    pub fn step(&mut self) -> Result<Option<BatchReport<M::Output>>, ServeError> {
        if self.queue.is_empty() {
            return Ok(None);
        }
        let start = Instant::now();
        let batch = self.take_batch();
        match self.run(&batch) {
            Ok((served, adapters, merges)) => {
                let work = served.work;
                let responses = batch
                    .into_iter()
                    .zip(served.outputs)
                    .map(|(q, output)| Response {
                        request: q.id,
                        adapter: q.adapter,
                        output,
                    })
                    .collect();
                Ok(Some(BatchReport {
                    responses,
                    adapters,
                    merges,
                    cost: StepCost::new(
                        B::name(&self.model.device()),
                        start.elapsed().as_secs_f64(),
                        work,
                    ),
                }))
            }
            Err(e) => {
                for q in batch.into_iter().rev() {
                    self.queue.push_front(q);
                }
                Err(e)
            }
        }
    }

    /// The next batch per mode, in arrival order.
    fn take_batch(&mut self) -> Vec<Queued<M::Input>> {
        let first = self.queue.pop_front().expect("queue checked non-empty");
        let mut batch = vec![first];
        let limit = match self.config.mode {
            ServeMode::OneAtATime => 1,
            _ => self.config.max_batch,
        };
        let mut distinct = vec![batch[0].adapter];
        let mut bytes = self.adapter_bytes(batch[0].adapter);
        while batch.len() < limit {
            let Some(next) = self.queue.front() else {
                break;
            };
            let fits = match self.config.mode {
                ServeMode::MergeOnSwitch => next.adapter == batch[0].adapter,
                _ if distinct.contains(&next.adapter) => true,
                _ => {
                    let more = self.adapter_bytes(next.adapter);
                    let fits = bytes + more <= self.cache.budget();
                    if fits {
                        distinct.push(next.adapter);
                        bytes += more;
                    }
                    fits
                }
            };
            if !fits {
                break;
            }
            batch.push(self.queue.pop_front().expect("front exists"));
        }
        batch
    }

    fn adapter_bytes(&self, id: AdapterId) -> u64 {
        self.store.get(id).map_or(0, |a| a.bytes())
    }

    /// Runs one batch: outputs in batch order with the step's total kernels, distinct
    /// adapters, merges.
    fn run(
        &mut self,
        batch: &[Queued<M::Input>],
    ) -> Result<(Served<M::Output>, usize, usize), ServeError> {
        let mut distinct: Vec<AdapterId> = batch.iter().map(|q| q.adapter).collect();
        distinct.sort_unstable();
        distinct.dedup();
        if self.config.mode == ServeMode::MergeOnSwitch {
            let id = batch[0].adapter;
            let mut merges = 0;
            let mut work = Kernels::default();
            if self.merged.as_ref().map(|m| m.0) != Some(id) {
                self.merged = None;
                let adapter = self.cache.fetch(&[id], &self.store)?.remove(0);
                self.merged = Some((id, self.model.merged(&adapter)));
                merges = 1;
                work = merge_kernels(self.store.layout());
            }
            let model = &self.merged.as_ref().expect("merged above").1;
            let inputs: Vec<&M::Input> = batch.iter().map(|q| &q.input).collect();
            let served = model.forward(&inputs, &BatchLora::none())?;
            let served = Served {
                outputs: served.outputs,
                work: work + served.work,
            };
            return Ok((served, 1, merges));
        }
        // Sort the batch by adapter so each adapter's requests are contiguous.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&j| batch[j].adapter);
        let adapters = self.cache.fetch(&distinct, &self.store)?;
        let request_adapter: Vec<usize> = order
            .iter()
            .map(|&j| {
                distinct
                    .binary_search(&batch[j].adapter)
                    .expect("distinct holds every adapter of the batch")
            })
            .collect();
        let lora = BatchLora::new(adapters, &request_adapter);
        let inputs: Vec<&M::Input> = order.iter().map(|&j| &batch[j].input).collect();
        let served = self.model.forward(&inputs, &lora)?;
        let mut outputs: Vec<Option<M::Output>> = (0..batch.len()).map(|_| None).collect();
        for (&j, out) in order.iter().zip(served.outputs) {
            outputs[j] = Some(out);
        }
        let outputs = outputs
            .into_iter()
            .map(|o| o.expect("one output per request"))
            .collect();
        let served = Served {
            outputs,
            work: served.work + lora.work(),
        };
        Ok((served, distinct.len(), 0))
    }

    /// Replays `requests` in windows of `window` arrivals: each window is submitted at once
    /// and served to completion before the next arrives. A request's latency runs from its
    /// window's arrival to the end of the step that served it. All requests are checked
    /// before any is queued; the queue must be empty.
    pub fn replay(
        &mut self,
        requests: Vec<(AdapterId, M::Input)>,
        window: usize,
    ) -> Result<ReplayReport, ServeError> {
        if window == 0 {
            return Err(ServeError::Config(
                "replay window must be at least 1".into(),
            ));
        }
        if !self.queue.is_empty() {
            return Err(ServeError::Config(format!(
                "replay needs an empty queue, {} requests are pending",
                self.queue.len()
            )));
        }
        for (adapter, input) in &requests {
            self.check(*adapter, input)?;
        }
        let total = requests.len();
        let mut latencies = vec![0.0; total];
        let (mut batches, mut flops) = (0, 0);
        let mut requests = requests.into_iter();
        let start = Instant::now();
        let mut served = 0;
        while served < total {
            let arrival = Instant::now();
            let first = self.next_request;
            for (adapter, input) in requests.by_ref().take(window) {
                self.submit(adapter, input)?;
            }
            while let Some(report) = self.step()? {
                let t = arrival.elapsed().as_secs_f64();
                for r in &report.responses {
                    latencies[served + (r.request - first) as usize] = t;
                }
                batches += 1;
                flops += report.cost.flops;
            }
            served += (self.next_request - first) as usize;
        }
        Ok(ReplayReport {
            device: B::name(&self.model.device()),
            requests: total,
            batches,
            wall_seconds: start.elapsed().as_secs_f64(),
            latencies,
            flops,
        })
    }
}

/// Analytic kernels of merging one adapter, per site: the product `Aᵀ·(scale·Bᵀ)`
/// (`2·in·r·out` FLOPs) and the add into the weights (`in·out`).
pub fn merge_kernels(layout: &AdapterLayout) -> Kernels {
    layout
        .sites
        .iter()
        .map(|s| {
            let w = s.d_in * s.d_out;
            Kernels::matmul(s.d_in, layout.rank, s.d_out) + Kernels::elementwise(2 * w, w, w)
        })
        .sum()
}
