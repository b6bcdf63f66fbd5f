//! Device-resident adapter cache with a byte budget and least-recently-used eviction.

use std::collections::BTreeMap;

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

use super::ServeError;
use super::store::{AdapterId, AdapterLayout, AdapterStore, HostAdapter};

/// One site of an adapter on the device, laid out for `(x·Aᵀ)·(scale·Bᵀ)`.
#[derive(Clone, Debug)]
pub struct DeviceSite<B: Backend> {
    /// `A`, `[rank, in]`, as stored on the host (uploaded without reordering).
    pub a: Tensor<B, 2>,
    /// `scale · Bᵀ`, `[rank, out]` (the scale is folded in on upload).
    pub b_t: Tensor<B, 2>,
}

/// An adapter uploaded to the device.
#[derive(Clone, Debug)]
pub struct DeviceAdapter<B: Backend> {
    /// One entry per site of the layout.
    pub sites: Vec<DeviceSite<B>>,
    /// Device bytes of the matrices.
    pub bytes: u64,
}

impl<B: Backend> DeviceAdapter<B> {
    /// Uploads `host`'s matrices to `device`: each `A` as it is, each `B` transposed with
    /// the scale folded in.
    pub fn upload(host: &HostAdapter, layout: &AdapterLayout, device: &B::Device) -> Self {
        let r = layout.rank;
        let sites = host
            .sites
            .iter()
            .zip(&layout.sites)
            .map(|(pair, site)| {
                let (d_in, d_out) = (site.d_in, site.d_out);
                let mut b_t = vec![0.0; r * d_out];
                for (k, row) in b_t.chunks_exact_mut(d_out).enumerate() {
                    for (v, b) in row.iter_mut().zip(pair.b.iter().skip(k).step_by(r)) {
                        *v = host.scale * b;
                    }
                }
                DeviceSite {
                    a: Tensor::from_data(TensorData::new(pair.a.clone(), [r, d_in]), device),
                    b_t: Tensor::from_data(TensorData::new(b_t, [r, d_out]), device),
                }
            })
            .collect();
        DeviceAdapter {
            sites,
            bytes: host.bytes(),
        }
    }

    /// The dense weight update `Aᵀ·(scale·Bᵀ)`, `[in, out]`, of site `site` (burn's row
    /// layout, so merging is `weight + delta`).
    pub fn weight_delta(&self, site: usize) -> Tensor<B, 2> {
        let s = &self.sites[site];
        s.a.clone().transpose().matmul(s.b_t.clone())
    }
}

/// Counters of an [`AdapterCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found the adapter resident (one lookup per distinct adapter per step).
    pub hits: u64,
    /// Lookups that had to upload the adapter from the host store.
    pub misses: u64,
    /// Adapters evicted to make room.
    pub evictions: u64,
    /// Bytes resident now.
    pub resident_bytes: u64,
    /// Adapters resident now.
    pub resident_adapters: usize,
}

impl CacheStats {
    /// `hits / (hits + misses)`; 0 before the first lookup.
    pub fn hit_rate(&self) -> f64 {
        let lookups = self.hits + self.misses;
        if lookups == 0 {
            0.0
        } else {
            self.hits as f64 / lookups as f64
        }
    }
}

struct Entry<B: Backend> {
    adapter: DeviceAdapter<B>,
    last_use: u64,
}

/// Adapters resident on the device, at most `budget` bytes of them; when an upload does not
/// fit, the least recently used adapters that the current step does not need are evicted
/// first (LRU; "use" is a lookup by [`fetch`](AdapterCache::fetch)).
pub struct AdapterCache<B: Backend> {
    budget: u64,
    device: B::Device,
    entries: BTreeMap<AdapterId, Entry<B>>,
    /// Last-use tick -> id, oldest first.
    order: BTreeMap<u64, AdapterId>,
    tick: u64,
    stats: CacheStats,
}

impl<B: Backend> AdapterCache<B> {
    /// An empty cache of `budget` bytes on `device`.
    pub fn new(budget: u64, device: B::Device) -> AdapterCache<B> {
        AdapterCache {
            budget,
            device,
            entries: BTreeMap::new(),
            order: BTreeMap::new(),
            tick: 0,
            stats: CacheStats::default(),
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The counters and resident totals.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Zeroes hits, misses and evictions; resident adapters stay.
    pub fn reset_counters(&mut self) {
        self.stats = CacheStats {
            resident_bytes: self.stats.resident_bytes,
            resident_adapters: self.stats.resident_adapters,
            ..CacheStats::default()
        };
    }

    /// Drops every resident adapter (not counted as evictions).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.stats.resident_bytes = 0;
        self.stats.resident_adapters = 0;
    }

    /// Resident ids, least recently used first.
    pub fn lru_order(&self) -> Vec<AdapterId> {
        self.order.values().copied().collect()
    }

    /// Makes the distinct adapters `ids` resident (uploading misses from `store`, evicting
    /// least recently used adapters not in `ids`) and returns them in the order of `ids`.
    /// Errors, changing nothing, when an id is unknown, repeated, or when the adapters
    /// together exceed the budget.
    pub fn fetch(
        &mut self,
        ids: &[AdapterId],
        store: &AdapterStore,
    ) -> Result<Vec<DeviceAdapter<B>>, ServeError> {
        let mut needed = 0;
        for (i, &id) in ids.iter().enumerate() {
            if ids[..i].contains(&id) {
                return Err(ServeError::Config(format!(
                    "adapter {id} listed twice in one cache fetch"
                )));
            }
            needed += store.get(id)?.bytes();
        }
        if needed > self.budget {
            return Err(ServeError::CacheTooSmall {
                needed,
                budget: self.budget,
            });
        }
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            self.tick += 1;
            if let Some(e) = self.entries.get(&id) {
                self.stats.hits += 1;
                self.order.remove(&e.last_use);
            } else {
                self.stats.misses += 1;
                let host = store.get(id)?;
                self.make_room(host.bytes(), ids);
                let adapter = DeviceAdapter::upload(host, store.layout(), &self.device);
                self.stats.resident_bytes += adapter.bytes;
                self.stats.resident_adapters += 1;
                self.entries.insert(
                    id,
                    Entry {
                        adapter,
                        last_use: 0,
                    },
                );
            }
            let entry = self
                .entries
                .get_mut(&id)
                .expect("resident after the lookup");
            entry.last_use = self.tick;
            self.order.insert(self.tick, id);
            out.push(entry.adapter.clone());
        }
        Ok(out)
    }

    /// Evicts least recently used adapters outside `pinned` until `bytes` more fit.
    fn make_room(&mut self, bytes: u64, pinned: &[AdapterId]) {
        while self.stats.resident_bytes + bytes > self.budget {
            let (&tick, &victim) = self
                .order
                .iter()
                .find(|(_, id)| !pinned.contains(id))
                .expect("fetch checked that the pinned adapters fit the budget");
            self.order.remove(&tick);
            let gone = self
                .entries
                .remove(&victim)
                .expect("ordered ids are resident");
            self.stats.resident_bytes -= gone.adapter.bytes;
            self.stats.resident_adapters -= 1;
            self.stats.evictions += 1;
        }
    }
}
