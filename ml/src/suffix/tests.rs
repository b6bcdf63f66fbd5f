//! Every query checked against brute force on random small corpora.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

fn doc(id: u32, contributor: u32, tokens: &[u32]) -> Document {
    Document {
        id,
        contributor,
        tokens: tokens.to_vec(),
    }
}

/// Brute-force occurrences of `p` as (document id, offset), sorted.
fn brute_occurrences(docs: &[Document], p: &[u32]) -> Vec<(u32, usize)> {
    let mut out = Vec::new();
    for d in docs {
        if p.is_empty() {
            out.extend((0..d.tokens.len()).map(|i| (d.id, i)));
            continue;
        }
        if d.tokens.len() < p.len() {
            continue;
        }
        for i in 0..=d.tokens.len() - p.len() {
            if &d.tokens[i..i + p.len()] == p {
                out.push((d.id, i));
            }
        }
    }
    out.sort_unstable();
    out
}

fn brute_longest(docs: &[Document], output: &[u32], i: usize) -> usize {
    let mut len = 0;
    while i + len < output.len() && !brute_occurrences(docs, &output[i..=i + len]).is_empty() {
        len += 1;
    }
    len
}

fn brute_next(docs: &[Document], context: &[u32]) -> Option<(usize, BTreeMap<u32, u64>)> {
    for k in (1..=context.len()).rev() {
        let s = &context[context.len() - k..];
        let mut counts = BTreeMap::new();
        for d in docs {
            if d.tokens.len() <= k {
                continue;
            }
            for i in 0..d.tokens.len() - k {
                if &d.tokens[i..i + k] == s {
                    *counts.entry(d.tokens[i + k]).or_insert(0u64) += 1;
                }
            }
        }
        if !counts.is_empty() {
            return Some((k, counts));
        }
    }
    None
}

fn sorted_occurrences(index: &SuffixIndex, r: std::ops::Range<usize>) -> Vec<(u32, usize)> {
    let mut v: Vec<_> = index
        .occurrences_in(r)
        .map(|o| (o.document, o.offset))
        .collect();
    v.sort_unstable();
    v
}

/// Token alphabets: a small dense one (u16 text) or one with ids past u16 (u32 text).
const WIDE: [u32; 5] = [0, 65_534, 65_535, 1_000_000, u32::MAX - 1];

fn corpus_strategy() -> impl Strategy<Value = Vec<Document>> {
    (
        any::<bool>(),
        prop::collection::vec((0u32..3, prop::collection::vec(0usize..4, 0..25)), 1..6),
    )
        .prop_map(|(wide, docs)| {
            docs.into_iter()
                .enumerate()
                .map(|(i, (contributor, toks))| Document {
                    id: 100 + i as u32,
                    contributor,
                    tokens: toks
                        .into_iter()
                        .map(|t| if wide { WIDE[t] } else { t as u32 })
                        .collect(),
                })
                .collect::<Vec<_>>()
        })
        .prop_filter("corpus needs a token", |docs| {
            docs.iter().any(|d| !d.tokens.is_empty())
        })
}

/// Query tokens drawn from the corpus alphabet plus one token that never occurs.
fn query_strategy(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, len)
}

fn query_tokens(docs: &[Document], q: &[usize]) -> Vec<u32> {
    let wide = docs.iter().flat_map(|d| &d.tokens).any(|&t| t >= 4);
    q.iter()
        .map(|&t| match (wide, t) {
            (true, 4) => 7,
            (true, t) => WIDE[t],
            (false, t) => t as u32,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn suffix_array_is_sorted_permutation_of_token_positions(docs in corpus_strategy()) {
        let index = SuffixIndex::from_documents(&docs).unwrap();
        let total: usize = docs.iter().map(|d| d.tokens.len()).sum();
        prop_assert_eq!(index.num_tokens() as usize, total);
        let n = index.sa.len();
        let text_len = index.text.len();
        let mut seen = vec![false; text_len];
        for r in 0..n {
            let p = index.sa.get(r);
            prop_assert!(index.text.symbol(p) != 0, "separator position in the array");
            prop_assert!(!seen[p]);
            seen[p] = true;
        }
        let suffix = |p: usize| (p..text_len).map(|i| index.text.symbol(i)).collect::<Vec<_>>();
        for r in 1..n {
            prop_assert!(suffix(index.sa.get(r - 1)) < suffix(index.sa.get(r)));
        }
    }

    #[test]
    fn count_matches_brute_force(docs in corpus_strategy(), q in query_strategy(0..6)) {
        let index = SuffixIndex::from_documents(&docs).unwrap();
        let p = query_tokens(&docs, &q);
        let brute = brute_occurrences(&docs, &p);
        prop_assert_eq!(index.count(&p), brute.len() as u64);
        let mut got: Vec<_> = index.occurrences(&p).iter().map(|o| (o.document, o.offset)).collect();
        got.sort_unstable();
        prop_assert_eq!(got, brute);
        for o in index.occurrences(&p) {
            let d = docs.iter().find(|d| d.id == o.document).unwrap();
            prop_assert_eq!(o.contributor, d.contributor);
        }
    }

    #[test]
    fn longest_matches_match_brute_force(docs in corpus_strategy(), q in query_strategy(0..20)) {
        let index = SuffixIndex::from_documents(&docs).unwrap();
        let output = query_tokens(&docs, &q);
        let matches = index.longest_matches(&output);
        prop_assert_eq!(matches.len(), output.len());
        for (i, m) in matches.iter().enumerate() {
            prop_assert_eq!(m.start, i);
            prop_assert_eq!(m.len, brute_longest(&docs, &output, i));
            let brute = if m.len == 0 {
                Vec::new()
            } else {
                brute_occurrences(&docs, &output[i..i + m.len])
            };
            prop_assert_eq!(m.count, brute.len() as u64);
            prop_assert_eq!(sorted_occurrences(&index, m.sa_range.clone()), brute);
        }
    }

    #[test]
    fn next_token_distribution_matches_brute_force(
        docs in corpus_strategy(),
        q in query_strategy(0..8),
    ) {
        let index = SuffixIndex::from_documents(&docs).unwrap();
        let context = query_tokens(&docs, &q);
        let got = index.next_token_distribution(&context);
        match brute_next(&docs, &context) {
            None => prop_assert!(got.is_none()),
            Some((k, counts)) => {
                let got = got.unwrap();
                prop_assert_eq!(got.suffix_len, k);
                prop_assert_eq!(got.total, counts.values().sum::<u64>());
                let want: Vec<(u32, u64)> = counts.into_iter().collect();
                prop_assert_eq!(got.tokens, want);
            }
        }
    }

    #[test]
    fn attribution_matches_brute_force(
        docs in corpus_strategy(),
        q in query_strategy(0..20),
        min_len in 0usize..4,
    ) {
        let index = SuffixIndex::from_documents(&docs).unwrap();
        let output = query_tokens(&docs, &q);
        let n = index.num_tokens() as f64;
        let lens: Vec<usize> = (0..output.len()).map(|i| brute_longest(&docs, &output, i)).collect();
        let mut want: BTreeMap<u32, f64> = BTreeMap::new();
        let mut total = 0.0;
        let mut spans = 0;
        for i in 0..output.len() {
            let l = lens[i];
            if l < min_len.max(1) || (i > 0 && l < lens[i - 1]) {
                continue;
            }
            spans += 1;
            let occ = brute_occurrences(&docs, &output[i..i + l]);
            let w = l as f64 * (1.0 + n / occ.len() as f64).ln();
            total += w;
            for (id, _) in &occ {
                let c = docs.iter().find(|d| d.id == *id).unwrap().contributor;
                *want.entry(c).or_insert(0.0) += w / occ.len() as f64;
            }
        }
        prop_assert_eq!(index.maximal_spans(&output, min_len).len(), spans);
        let got = index.attribute(&output, min_len);
        prop_assert_eq!(got.len(), want.len());
        for ((gc, gw), (wc, ww)) in got.iter().zip(&want) {
            prop_assert_eq!(gc, wc);
            prop_assert!((gw - ww).abs() <= 1e-9 * ww.max(1.0), "{} vs {}", gw, ww);
        }
        let sum: f64 = got.iter().map(|(_, w)| w).sum();
        prop_assert!((sum - total).abs() <= 1e-9 * total.max(1.0));
        prop_assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
    }
}

#[test]
fn small_example() {
    // "a b a b c" and "b a b" (a=1, b=2, c=3)
    let docs = [doc(7, 1, &[1, 2, 1, 2, 3]), doc(9, 2, &[2, 1, 2])];
    let index = SuffixIndex::from_documents(&docs).unwrap();
    assert_eq!(index.num_tokens(), 8);
    assert_eq!(index.token_width(), TokenWidth::U16);
    assert_eq!(index.count(&[1, 2]), 3);
    assert_eq!(index.count(&[2, 3]), 1);
    // No match across the boundary between the documents: "3 2" never occurs.
    assert_eq!(index.count(&[3, 2]), 0);
    assert_eq!(index.count(&[]), 8);

    let m = index.longest_matches(&[2, 1, 2, 3, 4]);
    let lens: Vec<_> = m.iter().map(|m| m.len).collect();
    assert_eq!(lens, [4, 3, 2, 1, 0]);
    assert_eq!(index.occurrences_in(m[0].sa_range.clone()).count(), 1);

    let d = index.next_token_distribution(&[9, 1, 2]).unwrap();
    assert_eq!(d.suffix_len, 2);
    assert_eq!(d.tokens, [(1, 1), (3, 1)]);
    assert_eq!(d.total, 2);
    assert_eq!(d.probability(3), 0.5);
    // "3" only occurs at a document end: no continuation, so no distribution.
    assert_eq!(index.next_token_distribution(&[3]), None);
    assert_eq!(index.next_token_distribution(&[]), None);

    let a = index.attribute(&[2, 1, 2, 3], 2);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].0, 1);
    assert!((a[0].1 - 4.0 * (1.0f64 + 8.0).ln()).abs() < 1e-12);
}

#[test]
fn bad_input_gives_clear_errors() {
    assert_eq!(
        SuffixIndex::from_documents(&[]).unwrap_err(),
        SuffixError::EmptyCorpus
    );
    assert_eq!(
        SuffixIndex::from_documents(&[doc(1, 1, &[]), doc(2, 1, &[])]).unwrap_err(),
        SuffixError::EmptyCorpus
    );
    let err = SuffixIndex::from_documents(&[doc(3, 1, &[5, u32::MAX])]).unwrap_err();
    assert_eq!(
        err,
        SuffixError::ReservedToken {
            document: 3,
            offset: 1,
            token: u32::MAX
        }
    );
    assert!(err.to_string().contains("reserved"), "{err}");
    assert_eq!(
        SuffixIndex::from_documents(&[doc(4, 1, &[1]), doc(4, 2, &[2])]).unwrap_err(),
        SuffixError::DuplicateDocument(4)
    );
    // A reserved token in a query simply never matches.
    let index = SuffixIndex::from_documents(&[doc(1, 1, &[1, 2])]).unwrap();
    assert_eq!(index.count(&[u32::MAX]), 0);
    assert_eq!(index.longest_matches(&[u32::MAX, 1])[0].len, 0);
    // A rank range past the array is clipped, not a panic.
    assert_eq!(index.occurrences_in(1..99).count(), 1);
}

#[test]
fn size_is_reported_per_token() {
    let tokens: Vec<u32> = (0..10_000u32).map(|i| (i * 7919) % 3000).collect();
    let index = SuffixIndex::from_documents(&[doc(1, 1, &tokens)]).unwrap();
    assert_eq!(index.sa_entry_bits(), 14);
    // Text with one separator, packed SA with 8 bytes of padding, one document, and the
    // bucket table for symbols 0..=3000 plus one.
    assert_eq!(
        index.size_bytes(),
        10_001 * 2 + (10_000 * 14 / 8 + 8) + 12 + 4 * 3002
    );
    let wide = SuffixIndex::from_documents(&[doc(1, 1, &[70_000, 3, 70_000])]).unwrap();
    assert_eq!(wide.token_width(), TokenWidth::U32);
    assert_eq!(wide.count(&[70_000]), 2);
    assert_eq!(wide.size_bytes(), 4 * 4 + (1 + 8) + 12);
}

#[test]
fn packed_suffix_array_round_trips_every_width() {
    for bits in 1..=31usize {
        let max = (1u64 << bits) - 1;
        let positions: Vec<i32> = (0..200u64)
            .map(|i| ((i * 0x9e37_79b9) % (max + 1)) as i32)
            .chain([max as i32, 0, max as i32])
            .collect();
        let sa = super::index::PackedSa::new(&positions, bits);
        assert_eq!(sa.len(), positions.len());
        for (r, &p) in positions.iter().enumerate() {
            assert_eq!(sa.get(r), p as usize, "bits {bits} rank {r}");
        }
    }
}
