//! Suffix-array index (Proof of Attribution span matching): build speed, index size and query
//! latency on synthetic corpora of 1M and 10M tokens.
//!
//! Corpus: documents of 50..=1000 tokens drawn from a Zipf (s = 1) vocabulary of 30,000 token
//! ids, 500 contributors, from a fixed seed, so every run indexes the same text.
//! - `suffix_build/<size>`: builder fill plus SA-IS construction (libsais, single-threaded),
//!   as tokens/s;
//! - `suffix_count/<size>`: one `count` query, n-grams of length 1..=8 sampled from the
//!   corpus (so they occur);
//! - `suffix_longest_matches/<size>`: `longest_matches` over 128-token "model outputs"
//!   (corpus windows with 10% of tokens replaced at random), as output tokens/s.
//!
//! After criterion's figures a summary table prints, per size: tokens, one timed build
//! (seconds and tokens/s), bytes/token of the built index, mean count latency over 100,000
//! queries and longest-match time per output token.
//!
//! A 100M-token corpus is off by default (several GB of memory and minutes of build on a
//! 2-core machine); set `OLSIM_BENCH_100M=1` to add it.
//! Run: `cargo bench -p olsim-benches --bench suffix_array`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use olsim_ml::suffix::{IndexBuilder, SuffixIndex};

const SEED: u64 = 0x5eed_5a15;
const VOCAB: usize = 30_000;
const CONTRIBUTORS: u32 = 500;
const NGRAM_QUERIES: usize = 100_000;
const OUTPUTS: usize = 64;
const OUTPUT_LEN: usize = 128;

/// SplitMix64: a small deterministic generator, enough for synthetic corpora.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s = 1) sampler over `VOCAB` token ids by inverse CDF.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new() -> Self {
        let mut acc = 0.0;
        let mut cdf: Vec<f64> = (1..=VOCAB)
            .map(|r| {
                acc += 1.0 / r as f64;
                acc
            })
            .collect();
        for c in &mut cdf {
            *c /= acc;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut SplitMix) -> u32 {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(VOCAB - 1) as u32
    }
}

/// A synthetic corpus: flat tokens plus document end offsets.
struct Corpus {
    tokens: Vec<u32>,
    ends: Vec<usize>,
}

impl Corpus {
    fn generate(size: usize, zipf: &Zipf) -> Self {
        let mut rng = SplitMix(SEED ^ size as u64);
        let mut tokens = Vec::with_capacity(size);
        let mut ends = Vec::new();
        while tokens.len() < size {
            let len = (50 + rng.below(951)).min(size - tokens.len());
            for _ in 0..len {
                tokens.push(zipf.sample(&mut rng));
            }
            ends.push(tokens.len());
        }
        Corpus { tokens, ends }
    }

    fn build(&self) -> SuffixIndex {
        let mut builder = IndexBuilder::with_capacity(self.tokens.len(), self.ends.len());
        let mut start = 0;
        for (i, &end) in self.ends.iter().enumerate() {
            builder
                .add_document(i as u32, i as u32 % CONTRIBUTORS, &self.tokens[start..end])
                .expect("synthetic documents are valid");
            start = end;
        }
        builder.build().expect("synthetic corpus builds")
    }

    /// A random n-gram of length 1..=8 inside one document.
    fn ngram(&self, rng: &mut SplitMix) -> Vec<u32> {
        loop {
            let len = 1 + rng.below(8);
            let d = rng.below(self.ends.len());
            let start = if d == 0 { 0 } else { self.ends[d - 1] };
            let end = self.ends[d];
            if end - start >= len {
                let s = start + rng.below(end - start - len + 1);
                return self.tokens[s..s + len].to_vec();
            }
        }
    }

    /// A corpus window of `OUTPUT_LEN` tokens with 10% replaced by random vocabulary tokens.
    fn output(&self, rng: &mut SplitMix, zipf: &Zipf) -> Vec<u32> {
        let s = rng.below(self.tokens.len() - OUTPUT_LEN);
        self.tokens[s..s + OUTPUT_LEN]
            .iter()
            .map(|&t| {
                if rng.below(10) == 0 {
                    zipf.sample(rng)
                } else {
                    t
                }
            })
            .collect()
    }
}

struct Fixture {
    label: String,
    corpus: Corpus,
    index: SuffixIndex,
    ngrams: Vec<Vec<u32>>,
    outputs: Vec<Vec<u32>>,
    build_s: f64,
}

fn fixture(size: usize, label: &str, zipf: &Zipf) -> Fixture {
    let corpus = Corpus::generate(size, zipf);
    let t = Instant::now();
    let index = corpus.build();
    let build_s = t.elapsed().as_secs_f64();
    let mut rng = SplitMix(SEED.rotate_left(17) ^ size as u64);
    let ngrams = (0..NGRAM_QUERIES).map(|_| corpus.ngram(&mut rng)).collect();
    let outputs = (0..OUTPUTS)
        .map(|_| corpus.output(&mut rng, zipf))
        .collect();
    Fixture {
        label: label.to_string(),
        corpus,
        index,
        ngrams,
        outputs,
        build_s,
    }
}

fn bench(c: &mut Criterion, f: &Fixture) {
    let tokens = f.corpus.tokens.len() as u64;
    let mut g = c.benchmark_group("suffix_build");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    g.throughput(Throughput::Elements(tokens));
    g.bench_function(&f.label, |b| b.iter(|| black_box(f.corpus.build())));
    g.finish();

    let mut g = c.benchmark_group("suffix_count");
    g.measurement_time(Duration::from_secs(3));
    let mut i = 0;
    g.bench_function(&f.label, |b| {
        b.iter(|| {
            i = (i + 1) % f.ngrams.len();
            black_box(f.index.count(&f.ngrams[i]))
        })
    });
    g.finish();

    let mut g = c.benchmark_group("suffix_longest_matches");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(OUTPUT_LEN as u64));
    let mut i = 0;
    g.bench_function(&f.label, |b| {
        b.iter(|| {
            i = (i + 1) % f.outputs.len();
            black_box(f.index.longest_matches(&f.outputs[i]))
        })
    });
    g.finish();
}

fn summary(f: &Fixture) -> String {
    let tokens = f.index.num_tokens();
    let t = Instant::now();
    let mut found = 0u64;
    for q in &f.ngrams {
        found += black_box(f.index.count(q));
    }
    let count_us = t.elapsed().as_secs_f64() * 1e6 / f.ngrams.len() as f64;
    assert!(found >= f.ngrams.len() as u64, "sampled n-grams occur");
    let t = Instant::now();
    let mut matched = 0usize;
    for _ in 0..4 {
        for o in &f.outputs {
            matched += black_box(f.index.longest_matches(o)).len();
        }
    }
    let lm_us = t.elapsed().as_secs_f64() * 1e6 / matched as f64;
    format!(
        "{:>5} | {:>11} | {:>7.2} | {:>10.2} | {:>10.3} | {:>14.2} | {:>13.2}",
        f.label,
        tokens,
        f.build_s,
        tokens as f64 / f.build_s / 1e6,
        f.index.bytes_per_token(),
        count_us,
        lm_us,
    )
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let zipf = Zipf::new();
    let mut sizes = vec![(1_000_000, "1M"), (10_000_000, "10M")];
    if std::env::var("OLSIM_BENCH_100M").is_ok_and(|v| v == "1") {
        sizes.push((100_000_000, "100M"));
    }
    let mut rows = Vec::new();
    for (size, label) in sizes {
        let f = fixture(size, label, &zipf);
        bench(&mut c, &f);
        rows.push(summary(&f));
    }
    c.final_summary();
    println!("\nsuffix array summary (measured; one timed build per size, single-threaded)");
    println!(" size |      tokens | build s | Mtokens/s | bytes/tok | count mean us | LM us/token");
    for r in rows {
        println!("{r}");
    }
}
