//! The index itself: construction through libsais, the packed storage and the queries.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Range;

use super::{Document, MAX_TEXT_LEN, RESERVED_TOKEN, SuffixError};

/// How the index stores text symbols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenWidth {
    /// Two bytes per position: every token id is below 65535.
    U16,
    /// Four bytes per position: some token id is 65535 or above.
    U32,
}

/// The concatenated text, one symbol per position: token + 1, or 0 for a separator.
#[derive(Debug, Clone)]
pub(super) enum TokenText {
    U16(Vec<u16>),
    U32(Vec<u32>),
}

impl TokenText {
    /// Number of positions (tokens and separators).
    pub(super) fn len(&self) -> usize {
        match self {
            TokenText::U16(t) => t.len(),
            TokenText::U32(t) => t.len(),
        }
    }

    fn size_bytes(&self) -> usize {
        match self {
            TokenText::U16(t) => t.len() * 2,
            TokenText::U32(t) => t.len() * 4,
        }
    }

    /// The symbol at `pos` (0 = separator, else token + 1).
    pub(super) fn symbol(&self, pos: usize) -> u64 {
        match self {
            TokenText::U16(t) => u64::from(t[pos]),
            TokenText::U32(t) => u64::from(t[pos]),
        }
    }
}

/// Suffix array entries bit-packed little-endian in `bits` bits each (the fewest that hold
/// any text position), with 8 bytes of padding so every entry can be read with one
/// unaligned 8-byte load: `bits <= 31` plus a shift of at most 7 fits in 64.
#[derive(Debug, Clone)]
pub(super) struct PackedSa {
    bytes: Vec<u8>,
    bits: usize,
    len: usize,
    mask: u64,
}

impl PackedSa {
    pub(super) fn new(positions: &[i32], bits: usize) -> Self {
        debug_assert!((1..=31).contains(&bits));
        let mut bytes = vec![0u8; (positions.len() * bits).div_ceil(8) + 8];
        for (i, &p) in positions.iter().enumerate() {
            // libsais only writes positions in 0..text_len, all non-negative.
            let p = p as u32 as u64;
            let bit = i * bits;
            let off = bit / 8;
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[off..off + 8]);
            let w = u64::from_le_bytes(word) | (p << (bit % 8));
            bytes[off..off + 8].copy_from_slice(&w.to_le_bytes());
        }
        PackedSa {
            bytes,
            bits,
            len: positions.len(),
            mask: (1u64 << bits) - 1,
        }
    }

    /// Number of entries.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The text position of the suffix with rank `rank`.
    #[inline]
    pub(super) fn get(&self, rank: usize) -> usize {
        let bit = rank * self.bits;
        let off = bit / 8;
        let mut word = [0u8; 8];
        word.copy_from_slice(&self.bytes[off..off + 8]);
        ((u64::from_le_bytes(word) >> (bit % 8)) & self.mask) as usize
    }

    fn size_bytes(&self) -> usize {
        self.bytes.len()
    }
}

/// Bits needed to store every value in `0..=max` (at least 1).
fn bits_for(max: u64) -> usize {
    (64 - max.leading_zeros() as usize).max(1)
}

/// First index in `lo..hi` where `pred` is false, searching outwards from `lo` (galloping):
/// O(log d) probes for an answer `d` past `lo`, all near `lo`. Same contract as [`partition`].
#[inline]
fn gallop(lo: usize, hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    let mut step = 1;
    let mut base = lo;
    while base + step <= hi && pred(base + step - 1) {
        base += step;
        step *= 2;
    }
    partition(base, (base + step - 1).min(hi), pred)
}

/// First index in `lo..hi` where `pred` is false; `pred` must be true then false over the range.
#[inline]
fn partition(mut lo: usize, mut hi: usize, pred: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// Symbol access generic over the text width, so the hot loops are monomorphised.
trait Symbol: Copy {
    fn sym(self) -> u64;
}

impl Symbol for u16 {
    #[inline]
    fn sym(self) -> u64 {
        u64::from(self)
    }
}

impl Symbol for u32 {
    #[inline]
    fn sym(self) -> u64 {
        u64::from(self)
    }
}

/// The query symbol of a token: token + 1 (never 0, so it never equals a separator).
#[inline]
fn query_sym(token: u32) -> u64 {
    u64::from(token) + 1
}

/// A borrowed view of text and suffix array with the text width fixed at compile time.
struct View<'a, T> {
    text: &'a [T],
    sa: &'a PackedSa,
    buckets: &'a [u32],
}

impl<T: Symbol> View<'_, T> {
    /// Symbol at `depth` of the suffix with rank `rank`.
    ///
    /// In bounds whenever the suffix's first `depth` symbols are tokens: the text ends with a
    /// separator.
    #[inline]
    fn sym_at(&self, rank: usize, depth: usize) -> u64 {
        self.text[self.sa.get(rank) + depth].sym()
    }

    /// Compares the first `pattern.len()` symbols of the suffix at `pos` with the pattern.
    #[inline]
    fn cmp_prefix(&self, pos: usize, pattern: &[u32]) -> Ordering {
        for (k, &t) in pattern.iter().enumerate() {
            // A mismatch always comes at or before the next separator, and the text ends
            // with one, so `pos + k` stays in bounds.
            let a = self.text[pos + k].sym();
            let b = query_sym(t);
            if a != b {
                return a.cmp(&b);
            }
        }
        Ordering::Equal
    }

    /// Ranks of the suffixes that start with `pattern`.
    fn range(&self, pattern: &[u32]) -> (usize, usize) {
        let Some((&first, rest)) = pattern.split_first() else {
            return (0, self.sa.len());
        };
        let (lo, hi) = self.refine(0, self.sa.len(), 0, query_sym(first));
        if rest.is_empty() || lo == hi {
            return (lo, hi);
        }
        let lo = partition(lo, hi, |r| {
            self.cmp_prefix(self.sa.get(r) + 1, rest) == Ordering::Less
        });
        let hi = gallop(lo, hi, |r| {
            self.cmp_prefix(self.sa.get(r) + 1, rest) != Ordering::Greater
        });
        (lo, hi)
    }

    /// Within `lo..hi`, whose suffixes share their first `depth` symbols, the ranks whose
    /// symbol at `depth` equals `sym`. At depth 0 over the whole array this is a lookup in
    /// the first-symbol bucket table when the index has one.
    #[inline]
    fn refine(&self, lo: usize, hi: usize, depth: usize, sym: u64) -> (usize, usize) {
        if depth == 0 && lo == 0 && hi == self.sa.len() && !self.buckets.is_empty() {
            let s = sym as usize;
            if s + 1 >= self.buckets.len() {
                return (hi, hi);
            }
            return (self.buckets[s] as usize, self.buckets[s + 1] as usize);
        }
        let a = partition(lo, hi, |r| self.sym_at(r, depth) < sym);
        let b = gallop(a, hi, |r| self.sym_at(r, depth) <= sym);
        (a, b)
    }

    fn longest_matches(&self, output: &[u32]) -> Vec<SpanMatch> {
        let mut matches = Vec::with_capacity(output.len());
        let mut prev_len = 0usize;
        for i in 0..output.len() {
            // output[i..i + prev_len - 1] is a suffix of the previous match, so it occurs.
            let mut len = prev_len.saturating_sub(1);
            let (mut lo, mut hi) = self.range(&output[i..i + len]);
            while i + len < output.len() {
                let (a, b) = self.refine(lo, hi, len, query_sym(output[i + len]));
                if a == b {
                    break;
                }
                lo = a;
                hi = b;
                len += 1;
            }
            if len == 0 {
                lo = 0;
                hi = 0;
            }
            matches.push(SpanMatch {
                start: i,
                len,
                count: (hi - lo) as u64,
                sa_range: lo..hi,
            });
            prev_len = len;
        }
        matches
    }

    /// Ranks of the context suffix of length `k`, if it occurs at least once followed by a
    /// token (not by a document end).
    fn continued_range(&self, context: &[u32], k: usize) -> Option<(usize, usize)> {
        let (lo, hi) = self.range(&context[context.len() - k..]);
        // Symbols at depth k are sorted within the range and separators (0) come first, so
        // the last one tells whether any occurrence is followed by a token.
        (lo < hi && self.sym_at(hi - 1, k) != 0).then_some((lo, hi))
    }

    fn next_token_distribution(&self, context: &[u32]) -> Option<NextTokenDistribution> {
        // "Occurs with a continuation" is monotone in the suffix length: a suffix of such a
        // suffix also occurs with a continuation. Binary search the longest length.
        let (mut good, mut bad) = (0usize, context.len() + 1);
        while bad - good > 1 {
            let mid = good + (bad - good) / 2;
            if self.continued_range(context, mid).is_some() {
                good = mid;
            } else {
                bad = mid;
            }
        }
        if good == 0 {
            return None;
        }
        let (lo, hi) = self.continued_range(context, good)?;
        let mut tokens = Vec::new();
        let mut total = 0u64;
        let mut j = lo;
        while j < hi {
            let s = self.sym_at(j, good);
            let end = gallop(j, hi, |r| self.sym_at(r, good) <= s);
            if s != 0 {
                let count = (end - j) as u64;
                tokens.push(((s - 1) as u32, count));
                total += count;
            }
            j = end;
        }
        Some(NextTokenDistribution {
            suffix_len: good,
            total,
            tokens,
        })
    }
}

macro_rules! with_view {
    ($index:expr, $v:ident => $body:expr) => {
        match &$index.text {
            TokenText::U16(t) => {
                let $v = View {
                    text: t.as_slice(),
                    sa: &$index.sa,
                    buckets: &$index.buckets,
                };
                $body
            }
            TokenText::U32(t) => {
                let $v = View {
                    text: t.as_slice(),
                    sa: &$index.sa,
                    buckets: &$index.buckets,
                };
                $body
            }
        }
    };
}

/// The longest corpus match starting at one position of a model output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanMatch {
    /// Position in the output where the span starts.
    pub start: usize,
    /// Length of the longest prefix of `output[start..]` that occurs in the corpus (inside a
    /// single document); 0 when `output[start]` occurs nowhere.
    pub len: usize,
    /// Number of occurrences of that prefix in the corpus (0 when `len` is 0).
    pub count: u64,
    /// The suffix-array ranks of those occurrences, for [`SuffixIndex::occurrences_in`].
    pub sa_range: Range<usize>,
}

/// Infini-gram next-token counts after the longest matching suffix of a context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextTokenDistribution {
    /// Length of the context suffix used (the longest one that occurs followed by a token).
    pub suffix_len: usize,
    /// Sum of the counts: occurrences of the suffix that are followed by a token.
    pub total: u64,
    /// `(token, count)` for every token that follows the suffix, ascending by token id.
    pub tokens: Vec<(u32, u64)>,
}

impl NextTokenDistribution {
    /// The maximum-likelihood probability of `token`: its count over [`Self::total`].
    pub fn probability(&self, token: u32) -> f64 {
        match self.tokens.binary_search_by_key(&token, |&(t, _)| t) {
            Ok(i) => self.tokens[i].1 as f64 / self.total as f64,
            Err(_) => 0.0,
        }
    }
}

/// One occurrence of a span in the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Id of the document that contains it.
    pub document: u32,
    /// Contributor of that document.
    pub contributor: u32,
    /// Offset of the span's first token within the document.
    pub offset: usize,
}

/// Collects documents, then builds a [`SuffixIndex`].
#[derive(Debug, Clone, Default)]
pub struct IndexBuilder {
    text: Vec<u32>,
    starts: Vec<u32>,
    ids: Vec<u32>,
    contributors: Vec<u32>,
    max_symbol: u32,
}

impl IndexBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty builder with room for `tokens` tokens in `documents` documents.
    pub fn with_capacity(tokens: usize, documents: usize) -> Self {
        IndexBuilder {
            text: Vec::with_capacity(tokens + documents),
            starts: Vec::with_capacity(documents),
            ids: Vec::with_capacity(documents),
            contributors: Vec::with_capacity(documents),
            max_symbol: 0,
        }
    }

    /// Appends one document. On error nothing is added.
    ///
    /// Errors: [`SuffixError::ReservedToken`] if a token is `u32::MAX`,
    /// [`SuffixError::CorpusTooLarge`] past [`MAX_TEXT_LEN`] positions. Duplicate ids are
    /// reported by [`Self::build`].
    pub fn add_document(
        &mut self,
        id: u32,
        contributor: u32,
        tokens: &[u32],
    ) -> Result<(), SuffixError> {
        if let Some(offset) = tokens.iter().position(|&t| t == RESERVED_TOKEN) {
            return Err(SuffixError::ReservedToken {
                document: id,
                offset,
                token: RESERVED_TOKEN,
            });
        }
        let new_len = self.text.len() as u64 + tokens.len() as u64 + 1;
        if new_len > MAX_TEXT_LEN {
            return Err(SuffixError::CorpusTooLarge {
                len: new_len,
                max: MAX_TEXT_LEN,
            });
        }
        self.starts.push(self.text.len() as u32);
        self.ids.push(id);
        self.contributors.push(contributor);
        for &t in tokens {
            let s = t + 1;
            self.max_symbol = self.max_symbol.max(s);
            self.text.push(s);
        }
        self.text.push(0);
        Ok(())
    }

    /// Builds the index (SA-IS via libsais, single-threaded).
    ///
    /// Errors: [`SuffixError::EmptyCorpus`] when no document has a token,
    /// [`SuffixError::DuplicateDocument`] when two documents share an id,
    /// [`SuffixError::Construction`] if libsais fails.
    pub fn build(self) -> Result<SuffixIndex, SuffixError> {
        let n_docs = self.ids.len();
        if self.text.len() == n_docs {
            return Err(SuffixError::EmptyCorpus);
        }
        let mut sorted_ids = self.ids.clone();
        sorted_ids.sort_unstable();
        if let Some(w) = sorted_ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(SuffixError::DuplicateDocument(w[0]));
        }
        drop(sorted_ids);

        let construction_error =
            |e: libsais::LibsaisError| SuffixError::Construction(e.to_string());
        let (text, sa_full) = if self.max_symbol <= u32::from(u16::MAX) {
            let text16: Vec<u16> = self.text.iter().map(|&s| s as u16).collect();
            drop(self.text);
            let sa = libsais::SuffixArrayConstruction::for_text(text16.as_slice())
                .in_owned_buffer32()
                .single_threaded()
                .run()
                .map_err(construction_error)?
                .into_vec();
            (TokenText::U16(text16), sa)
        } else {
            // Large alphabet: libsais needs symbols in 0..k and memory linear in k, so map
            // the symbols to their ranks among the distinct symbols (order preserving, so
            // the suffix array is the same; the separator 0 stays 0).
            let mut alphabet = self.text.clone();
            alphabet.sort_unstable();
            alphabet.dedup();
            let mut dense: Vec<i32> = self
                .text
                .iter()
                .map(|s| alphabet.partition_point(|a| a < s) as i32)
                .collect();
            drop(alphabet);
            let sa = libsais::SuffixArrayConstruction::for_text_mut(dense.as_mut_slice())
                .in_owned_buffer32()
                .single_threaded()
                .run()
                .map_err(construction_error)?
                .into_vec();
            (TokenText::U32(self.text), sa)
        };

        // The n_docs suffixes that start at a separator sort first; no query can match them.
        debug_assert!(
            sa_full[..n_docs]
                .iter()
                .all(|&p| text.symbol(p as usize) == 0)
        );
        let bits = bits_for(text.len() as u64 - 1);
        let sa = PackedSa::new(&sa_full[n_docs..], bits);
        drop(sa_full);

        let buckets = match &text {
            TokenText::U16(t) => {
                // Counting sort of the first symbols, shifted so separators count nowhere.
                let mut buckets = vec![0u32; self.max_symbol as usize + 2];
                for &s in t {
                    if s != 0 {
                        buckets[s as usize + 1] += 1;
                    }
                }
                for i in 1..buckets.len() {
                    buckets[i] += buckets[i - 1];
                }
                buckets
            }
            TokenText::U32(_) => Vec::new(),
        };

        Ok(SuffixIndex {
            text,
            sa,
            buckets,
            starts: self.starts,
            ids: self.ids,
            contributors: self.contributors,
        })
    }
}

/// A suffix array over the tokens of a set of documents, with n-gram, longest-match,
/// infini-gram and attribution queries. See the [module documentation](super) for layout.
#[derive(Debug, Clone)]
pub struct SuffixIndex {
    pub(super) text: TokenText,
    pub(super) sa: PackedSa,
    /// For `u16` texts: `buckets[s]` is the first rank whose suffix starts with a symbol
    /// `>= s`, for `s` in `0..=max_symbol + 1`; empty for `u32` texts.
    buckets: Vec<u32>,
    starts: Vec<u32>,
    ids: Vec<u32>,
    contributors: Vec<u32>,
}

impl SuffixIndex {
    /// Builds an index over `documents` (see [`IndexBuilder::add_document`] and
    /// [`IndexBuilder::build`] for the errors).
    pub fn from_documents(documents: &[Document]) -> Result<Self, SuffixError> {
        let tokens = documents.iter().map(|d| d.tokens.len()).sum();
        let mut builder = IndexBuilder::with_capacity(tokens, documents.len());
        for d in documents {
            builder.add_document(d.id, d.contributor, &d.tokens)?;
        }
        builder.build()
    }

    /// Number of tokens indexed (separators excluded); also the suffix array's length.
    pub fn num_tokens(&self) -> u64 {
        self.sa.len() as u64
    }

    /// Number of documents.
    pub fn num_documents(&self) -> usize {
        self.ids.len()
    }

    /// How text symbols are stored.
    pub fn token_width(&self) -> TokenWidth {
        match self.text {
            TokenText::U16(_) => TokenWidth::U16,
            TokenText::U32(_) => TokenWidth::U32,
        }
    }

    /// Bits per packed suffix array entry: the fewest that hold any text position.
    pub fn sa_entry_bits(&self) -> usize {
        self.sa.bits
    }

    /// Heap bytes of the index: text (with separators), packed suffix array, document
    /// table and first-symbol bucket table (measured from the vector lengths, not modelled).
    pub fn size_bytes(&self) -> usize {
        self.text.size_bytes() + self.sa.size_bytes() + 12 * self.ids.len() + 4 * self.buckets.len()
    }

    /// [`Self::size_bytes`] divided by [`Self::num_tokens`].
    pub fn bytes_per_token(&self) -> f64 {
        self.size_bytes() as f64 / self.num_tokens() as f64
    }

    /// Number of occurrences of `ngram` in the corpus, never across a document boundary.
    /// The empty n-gram occurs once per token.
    pub fn count(&self, ngram: &[u32]) -> u64 {
        let r = self.sa_range(ngram);
        (r.end - r.start) as u64
    }

    /// Suffix-array ranks of the occurrences of `ngram`.
    pub fn sa_range(&self, ngram: &[u32]) -> Range<usize> {
        let (lo, hi) = with_view!(self, v => v.range(ngram));
        lo..hi
    }

    /// Every occurrence of `ngram`, in suffix-array order.
    pub fn occurrences(&self, ngram: &[u32]) -> Vec<Occurrence> {
        self.occurrences_in(self.sa_range(ngram)).collect()
    }

    /// The occurrences behind a range of suffix-array ranks (for example a
    /// [`SpanMatch::sa_range`]), in rank order. Ranks past [`Self::num_tokens`] are ignored.
    pub fn occurrences_in(&self, ranks: Range<usize>) -> impl Iterator<Item = Occurrence> + '_ {
        let n = self.sa.len();
        let ranks = ranks.start.min(n)..ranks.end.min(n);
        ranks.map(move |r| {
            let pos = self.sa.get(r);
            let d = self.starts.partition_point(|&s| s as usize <= pos) - 1;
            Occurrence {
                document: self.ids[d],
                contributor: self.contributors[d],
                offset: pos - self.starts[d] as usize,
            }
        })
    }

    /// For every position `i` of `output`, the longest prefix of `output[i..]` that occurs in
    /// the corpus (matching statistics). Each step starts from the previous match minus its
    /// first token, then extends one token at a time by narrowing the suffix-array range.
    pub fn longest_matches(&self, output: &[u32]) -> Vec<SpanMatch> {
        with_view!(self, v => v.longest_matches(output))
    }

    /// The maximal matched spans of `output` of at least `min_len` tokens (`min_len` 0 counts
    /// as 1): the [`Self::longest_matches`] entries not contained in the span starting one
    /// position earlier, in output order.
    pub fn maximal_spans(&self, output: &[u32], min_len: usize) -> Vec<SpanMatch> {
        let min_len = min_len.max(1);
        let all = self.longest_matches(output);
        let mut spans = Vec::new();
        for (i, m) in all.iter().enumerate() {
            let contained = i > 0 && m.len < all[i - 1].len;
            if m.len >= min_len && !contained {
                spans.push(m.clone());
            }
        }
        spans
    }

    /// The weight of a matched span of length `L` that occurs `c` times in a corpus of `N`
    /// tokens: `L * ln(1 + N / c)`, linear in length and IDF-like in rarity (the `1 +` keeps
    /// it positive when `c = N`). 0 for an empty span.
    pub fn span_weight(&self, span: &SpanMatch) -> f64 {
        if span.len == 0 || span.count == 0 {
            return 0.0;
        }
        span.len as f64 * (1.0 + self.num_tokens() as f64 / span.count as f64).ln()
    }

    /// Attribution of `output` to contributors: every maximal span of at least `min_len`
    /// tokens ([`Self::maximal_spans`]) has weight [`Self::span_weight`], split equally among
    /// its `count` occurrences, each share going to the contributor of the document holding
    /// that occurrence. Returns `(contributor, weight)` ascending by contributor, with only
    /// contributors that received weight; the weights sum to the sum of the span weights.
    ///
    /// Cost is linear in the total occurrence count of the spans, so a small `min_len` over
    /// a large corpus visits many occurrences.
    pub fn attribute(&self, output: &[u32], min_len: usize) -> Vec<(u32, f64)> {
        let mut weights: BTreeMap<u32, f64> = BTreeMap::new();
        for span in self.maximal_spans(output, min_len) {
            let share = self.span_weight(&span) / span.count as f64;
            for occ in self.occurrences_in(span.sa_range.clone()) {
                *weights.entry(occ.contributor).or_insert(0.0) += share;
            }
        }
        weights.into_iter().collect()
    }

    /// Infini-gram next-token distribution: backs off to the longest suffix of `context`
    /// that occurs in the corpus followed by a token (occurrences at a document end do not
    /// count), then counts each token that follows it. `None` when `context` is empty or
    /// not even its last token occurs followed by a token; a caller wanting the unigram
    /// fallback can use [`Self::count`] per token.
    pub fn next_token_distribution(&self, context: &[u32]) -> Option<NextTokenDistribution> {
        with_view!(self, v => v.next_token_distribution(context))
    }
}
