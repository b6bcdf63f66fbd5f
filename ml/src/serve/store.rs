//! Host-memory adapter store: every adapter as plain `f32` matrices.

use std::collections::BTreeMap;

use rand::RngExt;

use super::ServeError;
use crate::data::rng::stream;

/// Identifies an adapter in a store (and in requests).
pub type AdapterId = u64;

/// A place in a model where an adapter adds a low-rank update `scale · x·Aᵀ·Bᵀ` to a dense
/// layer's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    /// A stable name (`"layer0"` for the MLP's input layer), shown in error messages.
    pub name: String,
    /// Input width of the adapted layer.
    pub d_in: usize,
    /// Output width of the adapted layer.
    pub d_out: usize,
}

/// The shape every adapter of a store (and of the model serving them) has: its sites, in
/// order, and one rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterLayout {
    /// The adapted sites.
    pub sites: Vec<Site>,
    /// Rank `r` of every site's update.
    pub rank: usize,
}

impl AdapterLayout {
    /// A layout; errors when there is no site, the rank is 0 or above a site's
    /// `min(in, out)`, or a site has a zero dimension.
    pub fn new(sites: Vec<Site>, rank: usize) -> Result<AdapterLayout, ServeError> {
        if sites.is_empty() {
            return Err(ServeError::Layout(
                "an adapter needs at least one site".into(),
            ));
        }
        if rank == 0 {
            return Err(ServeError::Layout("rank must be at least 1".into()));
        }
        for s in &sites {
            if s.d_in == 0 || s.d_out == 0 {
                return Err(ServeError::Layout(format!(
                    "site {} has a zero dimension ({} -> {})",
                    s.name, s.d_in, s.d_out
                )));
            }
            if rank > s.d_in.min(s.d_out) {
                return Err(ServeError::Layout(format!(
                    "rank {rank} exceeds min(in, out) = {} of site {}",
                    s.d_in.min(s.d_out),
                    s.name
                )));
            }
        }
        Ok(AdapterLayout { sites, rank })
    }

    /// Floats of one adapter: `rank · (in + out)` summed over the sites.
    pub fn adapter_floats(&self) -> usize {
        self.sites
            .iter()
            .map(|s| self.rank * (s.d_in + s.d_out))
            .sum()
    }

    /// Bytes of one adapter's matrices (`4 ·` [`adapter_floats`](Self::adapter_floats)).
    pub fn adapter_bytes(&self) -> u64 {
        4 * self.adapter_floats() as u64
    }
}

/// One site's matrices, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct LowRankPair {
    /// Down-projection `A`, `[rank, in]`.
    pub a: Vec<f32>,
    /// Up-projection `B`, `[out, rank]`.
    pub b: Vec<f32>,
}

/// An adapter in host memory.
#[derive(Clone, Debug, PartialEq)]
pub struct HostAdapter {
    /// `alpha / rank`: the update is `scale · x·Aᵀ·Bᵀ`.
    pub scale: f32,
    /// One pair per site of the layout, in order.
    pub sites: Vec<LowRankPair>,
}

impl HostAdapter {
    /// Bytes of the matrices.
    pub fn bytes(&self) -> u64 {
        4 * self
            .sites
            .iter()
            .map(|p| (p.a.len() + p.b.len()) as u64)
            .sum::<u64>()
    }

    /// Checks the adapter against `layout`: one pair per site, matrix lengths, finite
    /// values and a finite, non-zero scale.
    pub fn check(&self, layout: &AdapterLayout) -> Result<(), ServeError> {
        let bad = |what: String| Err(ServeError::AdapterShape(what));
        if !(self.scale.is_finite() && self.scale != 0.0) {
            return bad(format!("scale {} must be finite and non-zero", self.scale));
        }
        if self.sites.len() != layout.sites.len() {
            return bad(format!(
                "{} site pairs, the layout has {} sites",
                self.sites.len(),
                layout.sites.len()
            ));
        }
        let r = layout.rank;
        for (pair, site) in self.sites.iter().zip(&layout.sites) {
            if pair.a.len() != r * site.d_in || pair.b.len() != site.d_out * r {
                return bad(format!(
                    "site {}: A has {} and B {} values, rank {r} needs {} and {}",
                    site.name,
                    pair.a.len(),
                    pair.b.len(),
                    r * site.d_in,
                    site.d_out * r
                ));
            }
            if pair.a.iter().chain(&pair.b).any(|v| !v.is_finite()) {
                return bad(format!("site {} has a non-finite value", site.name));
            }
        }
        Ok(())
    }
}

/// Every adapter of a deployment, by id, in host memory.
#[derive(Clone, Debug)]
pub struct AdapterStore {
    layout: AdapterLayout,
    adapters: BTreeMap<AdapterId, HostAdapter>,
    bytes: u64,
}

impl AdapterStore {
    /// An empty store for adapters of `layout`.
    pub fn new(layout: AdapterLayout) -> AdapterStore {
        AdapterStore {
            layout,
            adapters: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// The layout every stored adapter has.
    pub fn layout(&self) -> &AdapterLayout {
        &self.layout
    }

    /// Adds `adapter` under `id` after checking it against the layout. Ids are never
    /// reused: storing an id twice is [`ServeError::DuplicateAdapter`].
    pub fn insert(&mut self, id: AdapterId, adapter: HostAdapter) -> Result<(), ServeError> {
        if self.adapters.contains_key(&id) {
            return Err(ServeError::DuplicateAdapter { id });
        }
        adapter.check(&self.layout)?;
        self.bytes += adapter.bytes();
        self.adapters.insert(id, adapter);
        Ok(())
    }

    /// Adds one adapter per id, generated deterministically from the stream
    /// `"serve/adapter/<id>"` of `seed` (so an adapter does not depend on which others are
    /// generated): `A` uniform in `±1/sqrt(in)`, `B` uniform in `±1/sqrt(rank)` (a trained
    /// adapter, unlike a fresh one whose `B` is zero), the given `scale`.
    pub fn generate(
        &mut self,
        ids: impl IntoIterator<Item = AdapterId>,
        seed: u64,
        scale: f32,
    ) -> Result<(), ServeError> {
        let r = self.layout.rank;
        for id in ids {
            let mut rng = stream(seed, &format!("serve/adapter/{id}"));
            let mut draw = |n: usize, bound: f32| -> Vec<f32> {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            };
            let sites = self
                .layout
                .sites
                .iter()
                .map(|s| LowRankPair {
                    a: draw(r * s.d_in, 1.0 / (s.d_in as f32).sqrt()),
                    b: draw(s.d_out * r, 1.0 / (r as f32).sqrt()),
                })
                .collect();
            self.insert(id, HostAdapter { scale, sites })?;
        }
        Ok(())
    }

    /// The adapter stored under `id`.
    pub fn get(&self, id: AdapterId) -> Result<&HostAdapter, ServeError> {
        self.adapters
            .get(&id)
            .ok_or(ServeError::UnknownAdapter { id })
    }

    /// Whether `id` is stored.
    pub fn contains(&self, id: AdapterId) -> bool {
        self.adapters.contains_key(&id)
    }

    /// Number of adapters.
    pub fn len(&self) -> usize {
        self.adapters.len()
    }

    /// Whether the store holds no adapter.
    pub fn is_empty(&self) -> bool {
        self.adapters.is_empty()
    }

    /// Bytes of all stored matrices (host memory, payload only).
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The stored ids, ascending.
    pub fn ids(&self) -> impl Iterator<Item = AdapterId> + '_ {
        self.adapters.keys().copied()
    }
}
