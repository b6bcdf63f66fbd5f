//! Multi-LoRA training (mLoRA-style, `olsim_ml::model::train_batched`) against training
//! the same adapters one at a time (`olsim_ml::model::train`), at 1, 10 and 100 adapters.
//! Both give bit-identical adapters (a test in `olsim_ml::model` asserts it); the bench
//! measures what sharing the frozen base's passes saves.
//!
//! Base: the MLP 64 -> 256 -> 256 -> 2 (ReLU), random weights from the seed (training
//! does not change its cost). Adapters: rank 2 (scale 2) on all three layers, each on its
//! own 64 seeded examples (labelled by the sign of a fixed linear score), 2 epochs of
//! batches of 16 (8 Adam steps), its own adapter and shuffle seeds. Autodiff over NdArray
//! f32 on the calling thread.
//!
//! Criterion times one whole training of all adapters per iteration (throughput in
//! adapters); the summary then trains each way three more times at each count, keeps the
//! fastest (the machine is shared: the best run is the least disturbed one) and prints
//! milliseconds per adapter and the ratio one-at-a-time / batched.
//! Run: `cargo bench -p olsim-benches --bench multi_lora`

use std::hint::black_box;
use std::time::{Duration, Instant};

use burn::backend::{Autodiff, NdArray};
use criterion::{Criterion, Throughput};
use olsim_ml::data::rng::{normal, stream};
use olsim_ml::model::{
    AdapterJob, LoraConfig, LoraMlp, Mlp, MlpConfig, TrainConfig, train, train_batched,
};

type Ad = Autodiff<NdArray<f32>>;

const SEED: u64 = 0x00b1_07a5;
const DIM: usize = 64;
const HIDDEN: [usize; 2] = [256, 256];
const EXAMPLES: usize = 64;
const COUNTS: [usize; 3] = [1, 10, 100];

/// Adapter `k`'s training set: standard-normal features, labelled by the sign of a fixed
/// linear score.
fn examples(k: usize) -> Vec<(Vec<f32>, u8)> {
    let mut rng = stream(SEED, &format!("bench/multi-lora/data/{k}"));
    (0..EXAMPLES)
        .map(|_| {
            let x: Vec<f32> = (0..DIM).map(|_| normal(&mut rng) as f32).collect();
            let score: f32 = x.iter().enumerate().map(|(i, v)| v * (i % 3) as f32).sum();
            (x, u8::from(score > 0.0))
        })
        .collect()
}

fn config(k: usize) -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 16,
        learning_rate: 1e-2,
        seed: SEED + k as u64,
    }
}

fn adapter(base: &Mlp<Ad>, k: usize) -> LoraMlp<Ad> {
    LoraMlp::new(base.clone(), &LoraConfig::new(2, 4.0), SEED ^ k as u64).unwrap()
}

fn one_at_a_time(base: &Mlp<Ad>, data: &[Vec<(Vec<f32>, u8)>]) -> Vec<LoraMlp<Ad>> {
    let device = Default::default();
    data.iter()
        .enumerate()
        .map(|(k, d)| train(adapter(base, k), d, &config(k), &device).unwrap().0)
        .collect()
}

fn batched(base: &Mlp<Ad>, data: &[Vec<(Vec<f32>, u8)>]) -> Vec<LoraMlp<Ad>> {
    let jobs = data
        .iter()
        .enumerate()
        .map(|(k, d)| AdapterJob {
            model: adapter(base, k),
            data: d,
            config: config(k),
        })
        .collect();
    train_batched(jobs, &Default::default())
        .unwrap()
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

type Mode = fn(&Mlp<Ad>, &[Vec<(Vec<f32>, u8)>]) -> Vec<LoraMlp<Ad>>;
const MODES: [(&str, Mode); 2] = [("one_at_a_time", one_at_a_time), ("batched", batched)];

fn best_of_three(mode: Mode, base: &Mlp<Ad>, data: &[Vec<(Vec<f32>, u8)>]) -> f64 {
    (0..3)
        .map(|_| {
            let start = Instant::now();
            black_box(mode(base, data));
            start.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let base = MlpConfig::binary(DIM, &HIDDEN)
        .init::<Ad>(SEED, &Default::default())
        .unwrap();
    let data: Vec<_> = (0..*COUNTS.last().unwrap()).map(examples).collect();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("multi_lora_train");
    for n in COUNTS {
        group.throughput(Throughput::Elements(n as u64));
        for (name, mode) in MODES {
            group.bench_function(format!("{name}/{n}"), |b| {
                b.iter(|| black_box(mode(&base, &data[..n])))
            });
        }
    }
    group.finish();

    println!(
        "\nmulti-LoRA training summary: base {DIM} -> {HIDDEN:?} -> 2, rank-2 adapters on \
         every layer, {EXAMPLES} examples each, 2 epochs of batches of 16; CPU (NdArray f32, \
         one thread); best of 3"
    );
    println!("| adapters | one at a time ms/adapter | batched ms/adapter | speed-up |");
    println!("|---:|---:|---:|---:|");
    for n in COUNTS {
        let alone = best_of_three(one_at_a_time, &base, &data[..n]);
        let together = best_of_three(batched, &base, &data[..n]);
        println!(
            "| {n} | {:.2} | {:.2} | {:.2}x |",
            alone * 1e3 / n as f64,
            together * 1e3 / n as f64,
            alone / together
        );
    }
}
