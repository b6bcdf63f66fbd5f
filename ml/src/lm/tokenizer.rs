//! Word-level tokenizer with a vocabulary built deterministically from a corpus.
//!
//! Words are whitespace-separated. The vocabulary holds the four special tokens first
//! ([`PAD`], [`UNK`], [`BOS`], [`EOS`]), then every word seen at least `min_count` times,
//! sorted by descending frequency and then lexicographically, cut to `max_size` entries in
//! all. The order depends only on the corpus's word counts, never on hash-map order or the
//! order in which documents arrive. Token ids are `u32`, the token type of the suffix-array
//! index ([`crate::suffix`]), so the language model and the index see the same token stream.

use std::collections::BTreeMap;
use std::path::Path;

use alloy_primitives::{B256, keccak256};
use serde::{Deserialize, Serialize};

use super::LmError;

/// Padding token id (fills short training windows and left-pads batched prompts).
pub const PAD: u32 = 0;
/// Unknown-word token id.
pub const UNK: u32 = 1;
/// Beginning-of-document token id.
pub const BOS: u32 = 2;
/// End-of-document token id.
pub const EOS: u32 = 3;
/// The special tokens' strings, in id order.
pub const SPECIALS: [&str; 4] = ["<pad>", "<unk>", "<bos>", "<eos>"];

/// How the vocabulary is built.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenizerConfig {
    /// Words seen fewer times are left out (mapped to [`UNK`]); at least 1.
    pub min_count: usize,
    /// Largest vocabulary, special tokens included; at least `SPECIALS.len() + 1`.
    pub max_size: usize,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        TokenizerConfig {
            min_count: 1,
            max_size: 8192,
        }
    }
}

/// A word-level tokenizer: a bijection between words and `u32` ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenizer {
    words: Vec<String>,
    index: BTreeMap<String, u32>,
}

/// The JSON form of a [`Tokenizer`].
#[derive(Serialize, Deserialize)]
struct TokenizerFile {
    format: String,
    words: Vec<String>,
}

const FORMAT: &str = "olsim-word-tokenizer/1";

impl Tokenizer {
    /// Builds the vocabulary from `texts` (see the module docs for the order).
    pub fn build<'a>(
        texts: impl IntoIterator<Item = &'a str>,
        config: &TokenizerConfig,
    ) -> Result<Tokenizer, LmError> {
        if config.min_count == 0 || config.max_size <= SPECIALS.len() {
            return Err(LmError::Config(format!(
                "tokenizer needs min_count >= 1 and max_size > {} (the special tokens), got \
                 min_count {} and max_size {}",
                SPECIALS.len(),
                config.min_count,
                config.max_size
            )));
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for text in texts {
            for w in text.split_whitespace() {
                *counts.entry(w).or_default() += 1;
            }
        }
        let mut ranked: Vec<(&str, usize)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= config.min_count && !SPECIALS.contains(w))
            .collect();
        // Descending count, then ascending word: a total order, so the result is unique.
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        ranked.truncate(config.max_size - SPECIALS.len());
        let words = SPECIALS
            .iter()
            .copied()
            .chain(ranked.into_iter().map(|(w, _)| w))
            .map(str::to_string)
            .collect();
        Tokenizer::from_words(words)
    }

    /// A tokenizer over `words` in id order; the first four must be [`SPECIALS`].
    fn from_words(words: Vec<String>) -> Result<Tokenizer, LmError> {
        if words.len() < SPECIALS.len() || words[..SPECIALS.len()] != SPECIALS {
            return Err(LmError::Tokenizer(format!(
                "the vocabulary must start with the special tokens {SPECIALS:?}"
            )));
        }
        if words.len() >= u32::MAX as usize {
            return Err(LmError::Tokenizer(format!(
                "{} words do not fit u32 token ids below the suffix index's reserved id",
                words.len()
            )));
        }
        let mut index = BTreeMap::new();
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() || w.split_whitespace().count() != 1 || w.trim() != w {
                return Err(LmError::Tokenizer(format!(
                    "word {i} ({w:?}) must be one non-empty word without whitespace"
                )));
            }
            if index.insert(w.clone(), i as u32).is_some() {
                return Err(LmError::Tokenizer(format!("word {w:?} appears twice")));
            }
        }
        Ok(Tokenizer { words, index })
    }

    /// Number of tokens, special tokens included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false: a tokenizer holds at least the special tokens.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if it is in the vocabulary.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The string of token `id`, if it exists.
    pub fn word(&self, id: u32) -> Option<&str> {
        self.words.get(id as usize).map(String::as_str)
    }

    /// All tokens' strings, in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Token ids of the words of `text`; unknown words become [`UNK`].
    pub fn encode(&self, text: &str) -> Vec<u32> {
        text.split_whitespace()
            .map(|w| self.id(w).unwrap_or(UNK))
            .collect()
    }

    /// A document as the model trains on it: [`BOS`], the words of `text`, [`EOS`].
    pub fn encode_document(&self, text: &str) -> Vec<u32> {
        let mut out = vec![BOS];
        out.extend(self.encode(text));
        out.push(EOS);
        out
    }

    /// The words of `tokens` joined by single spaces; [`PAD`] is skipped, other special
    /// tokens appear as their strings, ids outside the vocabulary as `<unk>`.
    pub fn decode(&self, tokens: &[u32]) -> String {
        let words: Vec<&str> = tokens
            .iter()
            .filter(|&&t| t != PAD)
            .map(|&t| self.word(t).unwrap_or(SPECIALS[UNK as usize]))
            .collect();
        words.join(" ")
    }

    /// A digest of the vocabulary (words in id order); equal digests mean equal ids.
    pub fn digest(&self) -> B256 {
        let mut bytes = b"olsim/tokenizer/v1".to_vec();
        for w in &self.words {
            bytes.extend_from_slice(w.as_bytes());
            bytes.push(0);
        }
        keccak256(&bytes)
    }

    /// The tokenizer as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&TokenizerFile {
            format: FORMAT.to_string(),
            words: self.words.clone(),
        })
        .expect("a list of strings serialises")
    }

    /// Parses JSON written by [`to_json`](Tokenizer::to_json).
    pub fn from_json(json: &str) -> Result<Tokenizer, LmError> {
        let file: TokenizerFile = serde_json::from_str(json)
            .map_err(|e| LmError::Tokenizer(format!("not a tokenizer JSON file: {e}")))?;
        if file.format != FORMAT {
            return Err(LmError::Tokenizer(format!(
                "tokenizer format {:?}, expected {FORMAT:?}",
                file.format
            )));
        }
        Tokenizer::from_words(file.words)
    }

    /// Writes [`to_json`](Tokenizer::to_json) to `path`.
    pub fn save(&self, path: &Path) -> Result<(), LmError> {
        std::fs::write(path, self.to_json()).map_err(|e| LmError::io(path, e))
    }

    /// Reads a tokenizer written by [`save`](Tokenizer::save).
    pub fn load(path: &Path) -> Result<Tokenizer, LmError> {
        let json = std::fs::read_to_string(path).map_err(|e| LmError::io(path, e))?;
        Tokenizer::from_json(&json)
    }
}
