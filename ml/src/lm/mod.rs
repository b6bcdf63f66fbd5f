//! Language model: a word-level tokenizer and a small causal transformer with LoRA
//! adapters, trained on Datanet documents and served in heterogeneous batches.
//!
//! The pieces:
//! - [`Tokenizer`] ([`tokenizer`]): vocabulary built deterministically from a corpus
//!   (frequency, then lexicographic order; min count; max size), special tokens
//!   [`PAD`], [`UNK`], [`BOS`], [`EOS`], JSON save/load. Ids are `u32`, the token type of
//!   the suffix-array index ([`crate::suffix`]), so the index can cover the same stream.
//! - [`Lm`] ([`model`]): token + learned position embeddings, pre-LayerNorm blocks of
//!   multi-head causal self-attention and a GELU MLP, a final LayerNorm and an LM head,
//!   generic over the burn backend. Parameters come from named ChaCha streams
//!   ([`LmConfig::init`]), never burn's global RNG. [`KvCache`] serves incremental decoding.
//! - LoRA ([`adapter`]): every block projection ([`Proj`]: q, k, v, o, MLP up/down) is a
//!   [`LoraLinear`](crate::model::LoraLinear); [`Lm::with_lora`] freezes the base and adds
//!   trainable adapters on the targets of a [`LoraConfig`](crate::model::LoraConfig)
//!   (flat indices from [`lora_targets`]). Adapters leave as host-side
//!   [`LmAdapterWeights`] (plain `f32` vectors with shapes, exact byte save/load) and go
//!   to a device as [`LmAdapter`].
//! - Training ([`train`]): next-token cross-entropy with Adam over windows of
//!   BOS/EOS-framed documents (no window crosses a document). [`pretrain`] caches the base
//!   model on disk under a key hashing (seed, model config, training config, tokenizer,
//!   corpus) in [`default_cache_dir`] (`$OLSIM_CACHE`, default `$XDG_CACHE_HOME/olsim` or
//!   `~/.cache/olsim`); a
//!   corrupt or mismatched file is rebuilt ([`CacheStatus`]). [`finetune`] trains LoRA on
//!   one Datanet's documents; [`perplexity`] evaluates held-out text. Training reports a
//!   [`StepCost`](crate::model::StepCost) per step: measured wall time and analytic FLOPs,
//!   kernel launches and bytes ([`cost`]).
//! - Generation ([`generate`]): greedy or seeded temperature sampling with a KV cache, and
//!   [`generate_batch`]: a batch of [`GenRequest`]s, each with its own prompt and device
//!   adapter (or none), decoded with one base-model pass per step plus each row's
//!   low-rank update gathered from the per-request `A`/`B`, returning per-request tokens
//!   and FLOPs and the batch's [`StepCost`](crate::model::StepCost). OpenLoRA serving of
//!   thousands of stored adapters goes through [`crate::serve::LmServe`], which shares the
//!   decoding loop.
//! - Corpora ([`corpus`]): the generic multi-domain pre-training mix, document texts and
//!   a content-based train / held-out split of documents.
//!
//! Determinism: on the CPU backend the same seeds, corpus and configs give bit-identical
//! weights and generations run after run.

pub mod adapter;
pub mod corpus;
pub mod cost;
pub mod generate;
pub mod model;
pub mod tokenizer;
pub mod train;

#[cfg(test)]
mod tests;

use std::path::Path;

pub use adapter::{AdapterMatrix, LmAdapter, LmAdapterWeights, lora_targets};
pub use corpus::{document_texts, generic_datanets, split_documents};
pub use generate::{BatchGeneration, GenConfig, GenRequest, Generation, generate, generate_batch};
pub use model::{KvCache, Lm, LmConfig, Proj};
pub use tokenizer::{BOS, EOS, PAD, SPECIALS, Tokenizer, TokenizerConfig, UNK};
pub use train::{
    CacheStatus, FineTuned, Pretrained, default_cache_dir, finetune, perplexity, pretrain,
};

use crate::data::SpecError;
use crate::model::ModelError;

/// Errors from the language model: configuration, data, training, files and generation.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LmError {
    /// A model or tokenizer configuration is invalid.
    #[error("invalid LM config: {0}")]
    Config(String),
    /// A tokenizer file or vocabulary is invalid.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The LoRA configuration does not fit the model (rank, alpha, targets).
    #[error("LoRA: {0}")]
    Lora(ModelError),
    /// An adapter does not fit the model it is applied to.
    #[error("adapter mismatch: {0}")]
    AdapterMismatch(String),
    /// A model, adapter or cache record is malformed.
    #[error("record: {0}")]
    Record(String),
    /// A file could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's error.
        message: String,
    },
    /// A training configuration or training data set is invalid.
    #[error("training: {0}")]
    Train(String),
    /// A training document does not fit the model.
    #[error("document {index}: {what}")]
    BadDocument {
        /// Position of the document in the input slice.
        index: usize,
        /// What is wrong with it.
        what: String,
    },
    /// A generation request or setting is invalid.
    #[error("generation: {0}")]
    Generate(String),
    /// Generating a Datanet for a corpus failed.
    #[error("corpus: {0}")]
    Data(#[from] SpecError),
}

/// `magic`, the header's length as little-endian `u32`, the header, then `body`: the
/// layout of the model and adapter files.
pub(crate) fn frame(magic: &[u8], header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(magic.len() + 4 + header.len() + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

/// Splits bytes written by [`frame`] into `(header, body)`; `what` names the file kind in
/// errors.
pub(crate) fn unframe<'a>(
    bytes: &'a [u8],
    magic: &[u8],
    what: &str,
) -> Result<(&'a [u8], &'a [u8]), LmError> {
    let bad = |why: &str| LmError::Record(format!("{what}: {why}"));
    let rest = bytes
        .strip_prefix(magic)
        .ok_or_else(|| bad("bad magic (not a file of this kind)"))?;
    let len = rest
        .get(..4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
        .ok_or_else(|| bad("truncated header"))?;
    let header = rest
        .get(4..4 + len)
        .ok_or_else(|| bad("truncated header"))?;
    Ok((header, &rest[4 + len..]))
}

impl LmError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: &Path, e: std::io::Error) -> LmError {
        LmError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        }
    }
}
