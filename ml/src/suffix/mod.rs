//! Suffix-array index over the token corpus of accepted Datanet documents, the span-matching
//! half of Proof of Attribution (infini-gram style).
//!
//! # Layout
//!
//! Documents are concatenated into one text, each followed by a separator, so that no match
//! can cross a document boundary:
//!
//! ```text
//! text = d0[0]+1 .. d0[n0-1]+1  0  d1[0]+1 .. d1[n1-1]+1  0  ...
//! ```
//!
//! Every token `t` is stored as the symbol `t + 1`; the symbol `0` is the separator, which is
//! why the token `u32::MAX` is reserved. The text is stored as `u16` when every symbol fits
//! (token ids below 65535) and as `u32` otherwise.
//!
//! The suffix array is built by [libsais](https://github.com/IlyaGrebnov/libsais) (an SA-IS
//! implementation, through the `libsais` crate, single-threaded so the build does not depend
//! on the thread count) over the whole text. Suffixes that start at a separator sort first
//! and can never match a query, so they are dropped: the stored array has exactly one entry
//! per token. Entries are bit-packed little-endian in the fewest bits that hold a text
//! position (`ceil(log2(text length))`: 20 bits at 1M positions, 24 at 10M, 27 at 100M).
//!
//! Documents are kept as three parallel vectors (start offset, document id, contributor id);
//! a text position maps to its document by binary search over the start offsets. For `u16`
//! texts a first-symbol bucket table (4 bytes per symbol up to the largest token id) gives
//! the suffix-array range of each first token without a search.
//!
//! # Size per token
//!
//! ```text
//! bytes/token = text width (2 or 4) * (1 + docs / tokens) + SA bits / 8
//!             + (12 * docs + 4 * (max token + 3)) / tokens
//! ```
//!
//! (the bucket term only for `u16` texts). With a vocabulary below 65535 that is about 4.6 bytes per token at 1M tokens, 5.0 at 10M and
//! 5.4 at 100M; [`SuffixIndex::size_bytes`] reports the exact figure (measured from the
//! vectors, not modelled).
//!
//! # Queries
//!
//! All queries narrow a range of the suffix array by binary search: [`SuffixIndex::count`]
//! (n-gram count), [`SuffixIndex::longest_matches`] (longest corpus match at every position of
//! a model output), [`SuffixIndex::next_token_distribution`] (infini-gram next-token counts
//! after backing off to the longest matching context suffix) and [`SuffixIndex::attribute`]
//! (maximal matched spans mapped to documents and contributors, weighted towards long and
//! rare spans). Every output is deterministic: it depends only on the corpus and the query.

mod index;
#[cfg(test)]
mod tests;

pub use index::{
    IndexBuilder, NextTokenDistribution, Occurrence, SpanMatch, SuffixIndex, TokenWidth,
};

/// One accepted Datanet document as the index sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Document id, unique within one index.
    pub id: u32,
    /// Id of the contributor who uploaded the document.
    pub contributor: u32,
    /// Token ids; `u32::MAX` is reserved (see the module documentation).
    pub tokens: Vec<u32>,
}

/// The token id reserved for the index's own use; documents must not contain it.
pub const RESERVED_TOKEN: u32 = u32::MAX;

/// The largest number of text positions (tokens plus one separator per document) an index
/// can hold: the suffix array is built with 32-bit signed offsets.
pub const MAX_TEXT_LEN: u64 = i32::MAX as u64;

/// Errors from building a suffix index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuffixError {
    /// No document had any token.
    #[error(
        "the corpus has no tokens: add at least one document with at least one token before \
         building the suffix index"
    )]
    EmptyCorpus,
    /// A document contains the reserved token id.
    #[error(
        "document {document}: token at offset {offset} is {token} (u32::MAX), which is reserved \
         as the suffix index's internal separator; token ids must be below u32::MAX"
    )]
    ReservedToken {
        /// The offending document's id.
        document: u32,
        /// Offset of the token within the document.
        offset: usize,
        /// The token value (always `u32::MAX`).
        token: u32,
    },
    /// Two documents share an id.
    #[error("document id {0} was added twice; document ids must be unique within one index")]
    DuplicateDocument(u32),
    /// The corpus does not fit the 32-bit suffix array.
    #[error(
        "corpus too large: {len} text positions (tokens plus one separator per document), at \
         most {max} are supported"
    )]
    CorpusTooLarge {
        /// Text positions the corpus would need.
        len: u64,
        /// The supported maximum ([`MAX_TEXT_LEN`]).
        max: u64,
    },
    /// libsais reported an error.
    #[error("suffix array construction failed in libsais: {0}")]
    Construction(String),
}
