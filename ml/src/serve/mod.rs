//! OpenLoRA serving: adapter store, device cache and heterogeneous batched serving.
//!
//! Thousands of LoRA adapters share one frozen base model:
//! - [`AdapterStore`] keeps every adapter in host memory as plain `f32` matrices (`A`
//!   `[rank, in]` and `B` `[out, rank]` per adapted site, plus the scale `alpha / rank`);
//! - [`AdapterCache`] keeps a subset resident on the device under a byte budget and evicts
//!   the least recently used adapter when a new one does not fit (LRU);
//! - [`Server`] queues requests `(adapter id, input)` and serves them in one of three
//!   [`ServeMode`]s: heterogeneous batches (one base pass for the whole batch plus each
//!   request's own low-rank update, the S-LoRA/Punica approach, see [`BatchLora`]),
//!   merge-on-switch (the adapter is merged into a copy of the base weights whenever it
//!   changes, requests served in arrival order) and one request at a time (batch size 1,
//!   unmerged). Every batch reports a [`StepCost`](crate::model::StepCost).
//!
//! The server is generic over the model kind through [`ServeModel`]: a model names the sites
//! where adapters apply ([`AdapterLayout`]), runs a batch given a [`BatchLora`] (which it
//! asks for each site's update) and merges one adapter into its weights. [`MlpServe`]
//! serves the MLP classifier of [`model`](crate::model) and [`LmServe`] the language
//! model of [`lm`](crate::lm) (generation with a KV cache, every decoding step one base
//! pass plus each request's own update).
//!
//! Determinism: generated adapters and request streams draw from named ChaCha streams
//! ([`stream`](crate::data::rng::stream)); the store and cache iterate in id or use order,
//! never hash order. Served outputs are bit-identical run to run on the CPU; wall times
//! (in [`StepCost`](crate::model::StepCost) and [`ReplayReport`]) are measured and vary.

pub mod cache;
pub mod lm;
pub mod lora;
pub mod mlp;
pub mod server;
mod sgmv;
pub mod store;
pub mod workload;

#[cfg(test)]
mod tests;

pub use cache::{AdapterCache, CacheStats, DeviceAdapter, DeviceSite};
pub use lm::{LmRequest, LmServe};
pub use lora::BatchLora;
pub use mlp::MlpServe;
pub use server::{
    BatchReport, DeviceBytes, ReplayReport, RequestId, Response, ServeMode, ServeModel, Served,
    Server, ServerConfig,
};
pub use store::{AdapterId, AdapterLayout, AdapterStore, HostAdapter, LowRankPair, Site};
pub use workload::{ZipfPopularity, feature_vectors, prompts};

use crate::model::ModelError;

/// Errors from building stores, caches and servers, and from serving requests.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ServeError {
    /// An adapter layout is invalid (no sites, rank 0, rank above a site's dimensions).
    #[error("invalid adapter layout: {0}")]
    Layout(String),
    /// A server configuration is invalid.
    #[error("invalid server config: {0}")]
    Config(String),
    /// A request or adapter names an id the store does not hold.
    #[error("adapter {id} is not in the store; insert it into the AdapterStore before serving it")]
    UnknownAdapter {
        /// The requested adapter id.
        id: AdapterId,
    },
    /// An adapter with this id is already stored (ids are never reused, so cached copies
    /// stay valid).
    #[error("adapter {id} is already in the store; adapters are immutable, use a new id")]
    DuplicateAdapter {
        /// The duplicate id.
        id: AdapterId,
    },
    /// An adapter does not match the store's or the model's layout.
    #[error("adapter does not fit the layout: {0}")]
    AdapterShape(String),
    /// A request's input does not fit the model.
    #[error("bad request input: {0}")]
    BadInput(String),
    /// The adapters one step needs do not fit in the device cache.
    #[error(
        "device cache of {budget} bytes cannot hold the {needed} bytes of adapters one step \
         needs; raise ServerConfig::cache_bytes"
    )]
    CacheTooSmall {
        /// Bytes the step needs resident at once.
        needed: u64,
        /// The cache's byte budget.
        budget: u64,
    },
    /// Reading results back from the device failed.
    #[error("device read-back failed: {0}")]
    Backend(String),
    /// A model error (building or loading a model or its adapters).
    #[error(transparent)]
    Model(#[from] ModelError),
}
