//! Gradient influence (Proof of Attribution for small models): time per attributed
//! inference for each method on the CPU, by GEMM batch size, and the precompute
//! (training-gradient) time.
//!
//! Scenario (`ScenarioSpec`, fixed seed): a DePIN Datanet of the default population (13
//! contributors); its train split (80%) fine-tunes a rank-2 LoRA adapter (alpha 4, 8 epochs of batch 32)
//! on an 8-32-32-2 MLP pre-trained for 2 epochs on the other three domains: 276 LoRA
//! parameters. Queries are the scenario's 256 clean test inputs, attributed at the adapter's own
//! predictions (`attribute_outputs`).
//! - `influence_attribute/<method>/<batch>`: attributing the 256 queries in GEMM batches
//!   of `<batch>` (throughput in inferences);
//! - `influence_precompute/<method>`: building the index (training gradients, the
//!   method's preconditioner, projection).
//!
//! Methods: TracIn, DataInf (also projected to 64, and `datainf_recomputed`, whose stored
//! gradients are recomputed at every scoring instead of kept: the cost of an index too
//! large to keep), exact with Gauss-Newton and with the Hessian.
//!
//! After criterion's figures a summary table prints, per method: stored width K,
//! precompute seconds and counted GFLOP, and per-inference microseconds at batch 1, 32
//! and 256 (one timed run each, after a warm-up) with the achieved GFLOP/s.
//! Run: `cargo bench -p olsim-benches --bench influence`

use std::hint::black_box;
use std::time::Duration;

use burn::backend::{Autodiff, NdArray};
use criterion::{Criterion, Throughput};
use olsim_ml::data::Domain;
use olsim_ml::groundtruth::{Scenario, ScenarioSpec};
use olsim_ml::influence::{
    InfluenceConfig, InfluenceIndex, Method, ProjectionConfig, ProjectionKind, Storage,
};

type Cpu = NdArray<f32>;
type Ad = Autodiff<Cpu>;

const SEED: u64 = 0x1f1u64;
const QUERIES: usize = 256;
const BATCHES: [usize; 3] = [1, 32, 256];

fn setup() -> Scenario<Ad> {
    ScenarioSpec::small(Domain::Depin, SEED, 8, QUERIES)
        .build::<Ad>(&Default::default())
        .unwrap()
}

fn configs() -> Vec<(&'static str, InfluenceConfig)> {
    let projected = InfluenceConfig {
        projection: Some(ProjectionConfig {
            dim: 64,
            kind: ProjectionKind::Rademacher,
            seed: SEED,
        }),
        ..InfluenceConfig::new(Method::DATAINF)
    };
    vec![
        ("tracin", InfluenceConfig::new(Method::TracIn)),
        ("datainf", InfluenceConfig::new(Method::DATAINF)),
        ("datainf_proj64", projected),
        (
            "datainf_recomputed",
            InfluenceConfig {
                storage: Storage::Recomputed,
                ..InfluenceConfig::new(Method::DATAINF)
            },
        ),
        ("exact_gn", InfluenceConfig::new(Method::EXACT_GN)),
        ("exact_hessian", InfluenceConfig::new(Method::EXACT)),
    ]
}

fn build(s: &Scenario<Ad>, config: &InfluenceConfig, batch: usize) -> InfluenceIndex<Cpu> {
    let config = InfluenceConfig {
        batch_size: batch,
        ..*config
    };
    InfluenceIndex::build(&s.trace, &s.records, &config, &Default::default()).unwrap()
}

fn main() {
    let s = setup();
    let inputs: Vec<Vec<f32>> = s.test.iter().map(|e| e.0.clone()).collect();
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut group = c.benchmark_group("influence_attribute");
    group.throughput(Throughput::Elements(QUERIES as u64));
    let mut indices = Vec::new();
    for (name, config) in configs() {
        for batch in BATCHES {
            let index = build(&s, &config, batch);
            group.bench_function(format!("{name}/{batch}"), |b| {
                b.iter(|| black_box(index.attribute_outputs(&inputs).unwrap()))
            });
            indices.push((name, batch, index));
        }
    }
    group.finish();
    let mut group = c.benchmark_group("influence_precompute");
    for (name, config) in configs()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("exact"))
    {
        group.bench_function(name, |b| b.iter(|| black_box(build(&s, &config, 256))));
    }
    group.finish();

    println!(
        "\ninfluence summary: {} training records, {} LoRA parameters, {QUERIES} queries, CPU \
         (NdArray f32)",
        s.records.len(),
        s.trace.final_params().dim()
    );
    println!(
        "| method | K | precompute s | precompute GFLOP | µs/inference b=1 | b=32 | b=256 | \
         GFLOP/s b=256 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, _) in configs() {
        let mut row = Vec::new();
        let mut head = None;
        let mut rate = 0.0;
        for (_, batch, index) in indices.iter().filter(|(n, _, _)| *n == name) {
            index.attribute_outputs(&inputs).unwrap(); // warm-up
            let a = index.attribute_outputs(&inputs).unwrap();
            row.push(format!("{:.1}", a.cost.wall_seconds * 1e6 / QUERIES as f64));
            if *batch == 256 {
                rate = a.cost.flops_per_second() / 1e9;
                head = Some((index.stored_dim(), index.precompute_cost().clone()));
            }
        }
        let (k, pre) = head.expect("batch 256 is measured");
        println!(
            "| {name} | {k} | {:.3} | {:.3} | {} | {rate:.2} |",
            pre.wall_seconds,
            pre.flops as f64 / 1e9,
            row.join(" | ")
        );
    }
}
