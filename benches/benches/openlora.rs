//! OpenLoRA serving: thousands of LoRA adapters over one base model, three ways, on the
//! same seeded request stream and the same code (`olsim_ml::serve::Server`), for both model
//! kinds:
//! - `heterogeneous`: batches of up to 32 requests with any mix of adapters, one base pass
//!   plus each request's own rank-8 update (batch sorted by adapter; on this CPU backend one
//!   fused pass over the rows per adapted layer, each row with its adapter's matrices; see
//!   `olsim_ml::serve::BatchLora` for the measured alternatives);
//! - `merge_on_switch`: arrival order, the adapter merged into a copy of the base weights
//!   whenever it changes, consecutive same-adapter requests batched;
//! - `one_at_a_time`: batch size 1, unmerged.
//!
//! Classifier: the MLP 1024 -> 1024 -> 1024 -> 16 (ReLU), 4.2 MFLOP per request; adapters
//! of rank 8 (scale 0.5) on all three layers, 82 kFLOP per request (1.9% of the base pass)
//! and 160.5 KiB each. Language model: the causal transformer of `olsim_ml::lm` with
//! vocabulary 2048, d_model 256, 2 blocks of 4 heads, MLP width 1024 (4.2 MFLOP per token
//! in the dense layers); adapters of rank 8 (scale 0.5) on the q, k, v and o projections
//! (128 KiB each); each request is an 8-token prompt (BOS and 7 uniform tokens) and 16
//! greedily decoded tokens with a KV cache.
//!
//! Adapters are generated from the seed; popularity is Zipf with exponent 1.0 over 1, 10,
//! 100, 1000 and 10000 adapters (adapter k has weight 1/(k+1)). Requests arrive in windows
//! of 32; a window is served to completion before the next arrives, and a request's
//! latency runs from its window's arrival to the end of the step that served it. Device
//! cache: 64 MiB of adapters, LRU.
//!
//! Criterion times one window per iteration (throughput in requests; the language model's
//! heterogeneous mode only, its baselines take seconds per window). The summary tables
//! then replay, per adapter count and mode, a warm-up (device cache cleared first) and then
//! consecutive measured segments of the stream, keeping the fastest segment (the machine is
//! shared, so the best run is the least disturbed one): requests/s, p50/p99 latency of that
//! segment, cache hit rate over all segments (per distinct adapter per step), host store
//! bytes and device bytes (base weights, merged copy, resident adapters), and the goal
//! ratios at 1000 adapters: heterogeneous at least 0.85x its single-adapter throughput
//! (measured again with the two servers replayed in alternation, best of four each, since
//! the table's rows run minutes apart on a shared machine) and at least 4x
//! merge-on-switch.
//! Run: `cargo bench -p olsim-benches --bench openlora`

use std::time::Duration;

use burn::backend::NdArray;
use criterion::{Criterion, Throughput};
use olsim_ml::lm::{GenConfig, LmConfig, Proj, lora_targets};
use olsim_ml::model::{LoraConfig, MlpConfig};
use olsim_ml::serve::{
    AdapterId, AdapterStore, LmRequest, LmServe, MlpServe, ReplayReport, ServeMode, ServeModel,
    Server, ServerConfig, ZipfPopularity, feature_vectors, prompts,
};

type Cpu = NdArray<f32>;

/// A server and its request stream.
type Fixture<M> = (
    Server<Cpu, M>,
    Vec<(AdapterId, <M as ServeModel<Cpu>>::Input)>,
);

const SEED: u64 = 0x0be7_10ca;
const RANK: usize = 8;
const ALPHA: f32 = 4.0;
const ZIPF_S: f64 = 1.0;
const WINDOW: usize = 32;
const CACHE_BYTES: u64 = 64 << 20;
const ADAPTERS: [usize; 5] = [1, 10, 100, 1000, 10_000];
const MODES: [(ServeMode, &str); 3] = [
    (ServeMode::Heterogeneous, "heterogeneous"),
    (ServeMode::MergeOnSwitch, "merge_on_switch"),
    (ServeMode::OneAtATime, "one_at_a_time"),
];

const MLP_INPUT: usize = 1024;
const MLP_HIDDEN: [usize; 2] = [1024, 1024];
const MLP_CLASSES: usize = 16;

const LM: LmConfig = LmConfig {
    vocab: 2048,
    d_model: 256,
    layers: 2,
    heads: 4,
    d_ff: 1024,
    context: 64,
};
const PROMPT_TOKENS: usize = 8;
const NEW_TOKENS: usize = 16;

/// Replay sizes of one model kind's summary.
struct Sizes {
    warmup: usize,
    measured: usize,
    repeats: usize,
}

impl Sizes {
    fn total(&self) -> usize {
        self.warmup + self.repeats * self.measured
    }
}

const MLP_SIZES: Sizes = Sizes {
    warmup: 256,
    measured: 512,
    repeats: 3,
};
const LM_SIZES: Sizes = Sizes {
    warmup: 32,
    measured: 128,
    repeats: 2,
};

/// A server of `n` generated adapters over `model`, heterogeneous to start.
fn server<M: ServeModel<Cpu>>(model: M, n: usize) -> Server<Cpu, M> {
    let mut store = AdapterStore::new(model.adapter_layout());
    store
        .generate(0..n as AdapterId, SEED, ALPHA / RANK as f32)
        .expect("fresh ids");
    let config = ServerConfig {
        mode: ServeMode::Heterogeneous,
        max_batch: WINDOW,
        cache_bytes: CACHE_BYTES,
    };
    Server::new(model, store, config).expect("store fits the model")
}

/// The Zipf adapter ids of `count` requests over `n` adapters.
fn adapter_ids(n: usize, count: usize) -> Vec<AdapterId> {
    ZipfPopularity::new(n, ZIPF_S)
        .expect("valid Zipf")
        .requests(SEED, count)
}

/// The classifier server over `n` adapters and its request stream.
fn mlp_fixture(n: usize) -> Fixture<MlpServe<Cpu>> {
    let base = MlpConfig {
        input_dim: MLP_INPUT,
        hidden: MLP_HIDDEN.to_vec(),
        classes: MLP_CLASSES,
    }
    .init::<Cpu>(SEED, &Default::default())
    .expect("valid model config");
    let model = MlpServe::new(base, &LoraConfig::new(RANK, ALPHA)).expect("valid LoRA config");
    let count = MLP_SIZES.total();
    let features = feature_vectors(SEED, MLP_INPUT, count);
    let requests = adapter_ids(n, count).into_iter().zip(features).collect();
    (server(model, n), requests)
}

/// The language-model server over `n` adapters and its request stream.
fn lm_fixture(n: usize) -> Fixture<LmServe<Cpu>> {
    let device = Default::default();
    let base = LM.init::<Cpu>(SEED, &device).expect("valid LM config");
    let lora = LoraConfig {
        targets: lora_targets(LM.layers, &[Proj::Q, Proj::K, Proj::V, Proj::O]),
        ..LoraConfig::new(RANK, ALPHA)
    };
    let generation = GenConfig {
        max_new_tokens: NEW_TOKENS,
        stop_at_eos: false,
        ..GenConfig::default()
    };
    let model = LmServe::new(&base, &lora, generation, &device).expect("valid LoRA config");
    let count = LM_SIZES.total();
    let requests = adapter_ids(n, count)
        .into_iter()
        .zip(prompts(SEED, LM.vocab, PROMPT_TOKENS, count))
        .enumerate()
        .map(|(i, (a, prompt))| {
            (
                a,
                LmRequest {
                    id: i as u64,
                    prompt,
                },
            )
        })
        .collect();
    (server(model, n), requests)
}

struct Row {
    adapters: usize,
    mode: &'static str,
    report: ReplayReport,
    hit_rate: f64,
    host_bytes: u64,
    device_adapters: u64,
    device_total: u64,
}

impl Row {
    fn rps(&self) -> f64 {
        self.report.requests_per_second()
    }
}

/// Cold cache, warm-up replay, counters reset, the fastest of the consecutive measured
/// segments.
fn measure<M: ServeModel<Cpu>>(
    server: &mut Server<Cpu, M>,
    requests: &[(AdapterId, M::Input)],
    sizes: &Sizes,
    adapters: usize,
    mode: &'static str,
) -> Row
where
    M::Input: Clone,
{
    server.clear_device();
    server
        .replay(requests[..sizes.warmup].to_vec(), WINDOW)
        .expect("valid requests");
    server.reset_cache_counters();
    let report = requests[sizes.warmup..]
        .chunks(sizes.measured)
        .map(|segment| {
            server
                .replay(segment.to_vec(), WINDOW)
                .expect("valid requests")
        })
        .max_by(|a, b| a.requests_per_second().total_cmp(&b.requests_per_second()))
        .expect("at least one run");
    let device = server.device_bytes();
    Row {
        adapters,
        mode,
        report,
        hit_rate: server.cache_stats().hit_rate(),
        host_bytes: server.store().bytes(),
        device_adapters: device.adapters,
        device_total: device.total(),
    }
}

/// Rounds of the interleaved goal comparison.
const GOAL_ROUNDS: usize = 4;

/// What one model kind measured: the table rows, and the heterogeneous throughput at 1 and
/// at 1000 adapters measured in alternation (best of [`GOAL_ROUNDS`] each), so a slow
/// phase of the shared machine does not land on one side of the goal ratio only.
struct Section {
    rows: Vec<Row>,
    goal: (f64, f64),
}

/// One model kind: criterion per window (of the `timed` modes), the summary rows and the
/// interleaved goal comparison.
fn section<M: ServeModel<Cpu>>(
    c: &mut Criterion,
    kind: &str,
    fixture: impl Fn(usize) -> Fixture<M>,
    sizes: &Sizes,
    timed: &[ServeMode],
) -> Section
where
    M::Input: Clone,
{
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    for n in ADAPTERS {
        let (mut server, requests) = fixture(n);
        let windows: Vec<Vec<(AdapterId, M::Input)>> =
            requests.chunks(WINDOW).map(<[_]>::to_vec).collect();
        let mut g = c.benchmark_group(format!("openlora/{kind}"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_millis(1500))
            .throughput(Throughput::Elements(WINDOW as u64));
        for (mode, name) in MODES {
            server.set_mode(mode);
            if timed.contains(&mode) {
                let mut i = 0;
                g.bench_function(format!("{name}/{n}"), |b| {
                    b.iter(|| {
                        i = (i + 1) % windows.len();
                        server
                            .replay(windows[i].clone(), WINDOW)
                            .expect("valid requests")
                    })
                });
            }
            rows.push(measure(&mut server, &requests, sizes, n, name));
        }
        g.finish();
        if n == 1 || n == 1000 {
            server.set_mode(ServeMode::Heterogeneous);
            kept.push((server, requests));
        }
    }
    let mut best = [0.0f64; 2];
    for _ in 0..GOAL_ROUNDS {
        for ((server, requests), best) in kept.iter_mut().zip(&mut best) {
            let rps = measure(server, requests, sizes, 0, "heterogeneous").rps();
            *best = best.max(rps);
        }
    }
    Section {
        rows,
        goal: (best[0], best[1]),
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let all: Vec<ServeMode> = MODES.iter().map(|m| m.0).collect();
    let mlp = section(&mut c, "mlp", mlp_fixture, &MLP_SIZES, &all);
    let lm = section(
        &mut c,
        "lm",
        lm_fixture,
        &LM_SIZES,
        &[ServeMode::Heterogeneous],
    );
    c.final_summary();
    summary(
        &format!(
            "classifier: MLP {MLP_INPUT}->{}->{}->{MLP_CLASSES}, rank {RANK} on 3 layers",
            MLP_HIDDEN[0], MLP_HIDDEN[1]
        ),
        &MLP_SIZES,
        &mlp,
    );
    summary(
        &format!(
            "language model: vocab {}, d_model {}, {} blocks, rank {RANK} on q/k/v/o; \
             {PROMPT_TOKENS}-token prompts, {NEW_TOKENS} new tokens per request",
            LM.vocab, LM.d_model, LM.layers
        ),
        &LM_SIZES,
        &lm,
    );
}

fn summary(model: &str, sizes: &Sizes, section: &Section) {
    let rows = &section.rows;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "\nOpenLoRA serving summary, {model} (measured, {} device, fastest of {} consecutive \
         segments of {} requests after {} warm-up; Zipf s = {ZIPF_S}; windows of {WINDOW}; \
         device cache {} MiB, LRU)",
        rows[0].report.device,
        sizes.repeats,
        sizes.measured,
        sizes.warmup,
        CACHE_BYTES >> 20
    );
    println!(
        "adapters | mode            |    req/s | p50 ms | p99 ms | hit % | host MiB | dev adapters MiB | dev total MiB"
    );
    for r in rows {
        println!(
            "{:>8} | {:<15} | {:>8.0} | {:>6.2} | {:>6.2} | {:>5.1} | {:>8.1} | {:>16.1} | {:>13.1}",
            r.adapters,
            r.mode,
            r.rps(),
            r.report.latency_quantile(0.5) * 1e3,
            r.report.latency_quantile(0.99) * 1e3,
            r.hit_rate * 100.0,
            mib(r.host_bytes),
            mib(r.device_adapters),
            mib(r.device_total),
        );
    }
    let rps = |n: usize, mode: &str| {
        rows.iter()
            .find(|r| r.adapters == n && r.mode == mode)
            .map_or(f64::NAN, Row::rps)
    };
    let (one, thousand) = section.goal;
    println!(
        "heterogeneous@1000 / heterogeneous@1, interleaved (best of {GOAL_ROUNDS} alternating \
         replays each: {thousand:.0} / {one:.0} req/s) = {:.2}x (goal >= 0.85x)",
        thousand / one
    );
    for (base_n, base_mode, note) in [
        (1, "heterogeneous", "from the table"),
        (
            1,
            "merge_on_switch",
            "the merged single-adapter server, no LoRA work",
        ),
        (1000, "merge_on_switch", "goal >= 4x"),
        (1000, "one_at_a_time", "batch size 1"),
    ] {
        println!(
            "heterogeneous@1000 / {base_mode}@{base_n} = {:.2}x ({note})",
            rps(1000, "heterogeneous") / rps(base_n, base_mode)
        );
    }
}
