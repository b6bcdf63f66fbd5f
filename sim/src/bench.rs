//! `olsim bench`: a quick (seconds) timing subset of the criterion benches under `benches/`,
//! self-contained in the binary, whose JSON `olsim check` compares with a baseline.
//!
//! Machines differ in speed, so every measurement is timed together with a reference doing
//! comparable work in the same run, interleaved with it, and reported as the ratio
//! `seconds / reference_seconds` (lower is faster). Each side keeps its best of `repeats` runs.
//! - `chain`: OPEN transfers through the embedded chain's `send_batch` (sender recovery,
//!   blocks, receipts) against op-revm's bare transact-and-commit loop over the same
//!   transactions from the same state;
//! - `chain_impersonated`: the same transfers impersonated (`run.impersonate`: no sender
//!   recovery) against the same loop;
//! - `attribution`: every record's influence summed over a few thousand served outputs as
//!   the engine does it (query gradients summed, one scoring product) against scoring each
//!   output and summing the scores (the per-output path), on one DataInf index;
//! - `attribution_recomputed`: the same summed attribution on a DataInf index that
//!   recomputes its stored gradients when it scores (what a classifier too large to keep
//!   them does) against the index that keeps them; their scores must be bit-identical;
//! - `influence_gradients`: the per-example LoRA gradients an index stores, of a slice of
//!   records by the fused host kernel the CPU backend uses, against the same gradients by
//!   burn tensor operations (they must agree to rounding);
//! - `openlora`: OpenLoRA serving a seeded Zipf(1.0) stream over 1000 adapters in
//!   heterogeneous batches (LRU device cache of a fifth of them, so misses upload) against
//!   the same requests all for one adapter, on a small MLP classifier: the cost of many
//!   adapters over one (the criterion bench `openlora` measures it at full size);
//! - `suffix_build`: suffix-index build (libsais) over a seeded corpus against sorting its tokens;
//! - `suffix_query`: n-gram `count` queries against binary searches over the sorted tokens;
//! - `epoch`: the smoke scenario cut to one epoch (setup included) through the engine, against
//!   a plain f32 matrix product.
//!
//! Ratios depend on the build profile (our crates are unoptimised in dev builds), so the JSON
//! records the profile and baselines are kept per profile.

use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use olsim_chain::client::prepare;
use olsim_chain::contracts::OpenToken;
use olsim_chain::embedded::{SPEC, op_transaction};
use olsim_chain::protocol::OPEN;
use olsim_chain::{
    Chain, ChainError, Deployment, EmbeddedChain, EmbeddedConfig, Origin, ProtocolParams, Roles,
    SignedTx, Wallet,
};
use olsim_ml::data::rng::stream;
use olsim_ml::suffix::IndexBuilder;
use op_revm::revm::context::CfgEnv;
use op_revm::revm::{Context, ExecuteCommitEvm};
use op_revm::{DefaultOp, OpBuilder};
use rand::RngExt;
use serde::{Deserialize, Serialize};

use crate::compare::{MetricDiff, MetricValue, Verdict};
use crate::engine::{self, RunOptions};
use crate::scenario::Scenario;

/// Format version of the bench JSON.
pub const BENCH_VERSION: u32 = 1;
/// Every bench, in the order they run.
pub const BENCHES: [&str; 9] = [
    "chain",
    "chain_impersonated",
    "attribution",
    "attribution_recomputed",
    "influence_gradients",
    "openlora",
    "suffix_build",
    "suffix_query",
    "epoch",
];

const SEED: u64 = 7;
const SENDERS: usize = 40;
const TRANSFERS_PER_SENDER: usize = 3;
const CORPUS_TOKENS: usize = 400_000;
const DOCUMENT_TOKENS: usize = 400;
const VOCAB: u32 = 8_000;
const QUERIES: usize = 20_000;
const GEMM_N: usize = 128;
const SMOKE: &str = include_str!("../../scenarios/smoke.toml");

/// Why a bench could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// An unknown bench name was asked for.
    #[error("unknown bench `{0}`; the benches are: {all}", all = BENCHES.join(", "))]
    Unknown(String),
    /// The chain workload failed.
    #[error("chain bench: {0}")]
    Chain(#[from] ChainError),
    /// The two sides of a bench did different work.
    #[error("{0}")]
    Mismatch(String),
    /// Something else failed inside a bench.
    #[error("{bench} bench: {message}")]
    Failed {
        /// The bench.
        bench: &'static str,
        /// What failed.
        message: String,
    },
}

/// The JSON `olsim bench` writes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Format version ([`BENCH_VERSION`]).
    pub version: u32,
    /// Build profile of the binary that measured (`debug` or `release`).
    pub profile: String,
    /// Runs per side kept at their best.
    pub repeats: u32,
    /// The measurements, in bench order.
    pub measurements: Vec<Measurement>,
}

/// One timed bench and its same-run reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Bench name (one of [`BENCHES`]).
    pub name: String,
    /// What was timed.
    pub work: String,
    /// What the reference timed.
    pub reference: String,
    /// Best wall seconds of the work.
    pub seconds: f64,
    /// Best wall seconds of the reference.
    pub reference_seconds: f64,
    /// `seconds / reference_seconds`: the figure compared across runs.
    pub ratio: f64,
}

/// The build profile of this binary, as recorded in bench JSON and baseline file names.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Runs the named benches (all when `names` is empty), each side `repeats` times.
pub fn run(names: &[String], repeats: u32) -> Result<BenchReport, BenchError> {
    let names: Vec<&str> = if names.is_empty() {
        BENCHES.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    if let Some(bad) = names.iter().find(|n| !BENCHES.contains(n)) {
        return Err(BenchError::Unknown((*bad).to_owned()));
    }
    let repeats = repeats.max(1);
    let mut measurements = Vec::new();
    for name in BENCHES.into_iter().filter(|b| names.contains(b)) {
        measurements.push(match name {
            "chain" => chain(repeats, Origin::Signed)?,
            "chain_impersonated" => chain(repeats, Origin::Impersonated)?,
            "attribution" => attribution(repeats)?,
            "attribution_recomputed" => attribution_recomputed(repeats)?,
            "influence_gradients" => influence_gradients(repeats)?,
            "openlora" => openlora(repeats)?,
            "suffix_build" => suffix_build(repeats)?,
            "suffix_query" => suffix_query(repeats)?,
            _ => epoch(repeats)?,
        });
    }
    Ok(BenchReport {
        version: BENCH_VERSION,
        profile: profile().to_owned(),
        repeats,
        measurements,
    })
}

impl BenchReport {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bench report always serialises")
    }

    /// Parses bench JSON, refusing other format versions.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let report: BenchReport =
            serde_json::from_str(text).map_err(|e| format!("not olsim bench JSON: {e}"))?;
        if report.version != BENCH_VERSION {
            return Err(format!(
                "bench format version {}, but this olsim reads version {BENCH_VERSION}; \
                 measure again with this olsim",
                report.version
            ));
        }
        Ok(report)
    }

    /// A terminal table: bench, seconds, reference seconds, ratio, and what each side did.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<13} {:>10} {:>10} {:>8}  work / reference\n",
            "bench", "seconds", "reference", "ratio"
        );
        for m in &self.measurements {
            out.push_str(&format!(
                "{:<13} {:>10.5} {:>10.5} {:>8.3}  {} / {}\n",
                m.name, m.seconds, m.reference_seconds, m.ratio, m.work, m.reference
            ));
        }
        out
    }
}

/// Arguments of `olsim bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Where the JSON goes.
    #[arg(long, default_value = "target/olsim-runs/bench.json")]
    pub out: PathBuf,
    /// Only these benches (comma-separated: chain, chain_impersonated, attribution,
    /// attribution_recomputed, influence_gradients, openlora, suffix_build, suffix_query,
    /// epoch).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Runs per side, kept at their best.
    #[arg(long, default_value_t = 5)]
    pub repeats: u32,
}

/// `olsim bench`: runs the benches, prints a table and writes the JSON.
pub fn command(args: &BenchArgs) -> ExitCode {
    let report = match run(&args.only, args.repeats) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    let written = args
        .out
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            crate::output::write_file(&args.out, (report.to_json() + "\n").as_bytes())
                .map_err(|e| e.to_string())
        });
    match written {
        Ok(()) => {
            println!(
                "{} build; written to {}",
                report.profile,
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: writing {}: {e}", args.out.display());
            ExitCode::FAILURE
        }
    }
}

/// Compares timing ratios with a baseline: a bench regresses when its ratio grew by more than
/// `noise_band` (0.5: more than 1.5 times the baseline ratio); being faster never fails.
pub fn compare(baseline: &BenchReport, current: &BenchReport, noise_band: f64) -> Vec<MetricDiff> {
    let allowed = format!("ratio <= +{}%", noise_band * 100.0);
    let diff = |metric: &str, b: Option<f64>, c: Option<f64>, verdict| MetricDiff {
        metric: metric.to_owned(),
        baseline: b.map(MetricValue::Number),
        current: c.map(MetricValue::Number),
        allowed: allowed.clone(),
        verdict,
    };
    let mut out = Vec::new();
    for b in &baseline.measurements {
        let c = current.measurements.iter().find(|m| m.name == b.name);
        let verdict = match c {
            None => Verdict::Removed,
            Some(c) if c.ratio == b.ratio => Verdict::Same,
            Some(c) if c.ratio <= b.ratio * (1.0 + noise_band) => Verdict::Within,
            Some(_) => Verdict::Changed,
        };
        out.push(diff(&b.name, Some(b.ratio), c.map(|c| c.ratio), verdict));
    }
    for c in &current.measurements {
        if !baseline.measurements.iter().any(|b| b.name == c.name) {
            out.push(diff(&c.name, None, Some(c.ratio), Verdict::Added));
        }
    }
    out
}

/// Times `work` and `reference` alternately `repeats` times, both given `state`; keeps each
/// side's best. Stops at the first failure of `work`.
fn best_of<S>(
    repeats: u32,
    state: &mut S,
    mut work: impl FnMut(&mut S) -> Result<Duration, BenchError>,
    mut reference: impl FnMut(&mut S) -> Duration,
) -> Result<(f64, f64), BenchError> {
    let (mut w, mut r) = (Duration::MAX, Duration::MAX);
    for _ in 0..repeats {
        r = r.min(reference(state));
        w = w.min(work(state)?);
    }
    Ok((w.as_secs_f64(), r.as_secs_f64()))
}

/// Wall time of `f`.
fn timed<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    black_box(f());
    start.elapsed()
}

/// Wall time of `f`, or its error.
fn timed_ok<T, E>(f: impl FnOnce() -> Result<T, E>) -> Result<Duration, E> {
    let start = Instant::now();
    black_box(f()?);
    Ok(start.elapsed())
}

fn measurement(
    name: &str,
    work: String,
    reference: String,
    (seconds, reference_seconds): (f64, f64),
) -> Measurement {
    Measurement {
        name: name.to_owned(),
        work,
        reference,
        seconds,
        reference_seconds,
        ratio: seconds / reference_seconds.max(1e-9),
    }
}

/// The protocol deployed on an embedded chain, senders funded with OPEN, and one signed round
/// of OPEN transfers between them.
fn transfer_round() -> Result<(EmbeddedChain, Vec<SignedTx>), ChainError> {
    let mut chain = EmbeddedChain::new(EmbeddedConfig::default());
    let mut admin = Wallet::derive(SEED, "bench/admin");
    let mut senders: Vec<Wallet> = (0..SENDERS)
        .map(|i| Wallet::derive(SEED, &format!("bench/sender-{i}")))
        .collect();
    let eth = U256::from(10u64).pow(U256::from(18));
    for w in senders.iter().chain([&admin]) {
        chain.deposit(w.address(), eth)?;
    }
    let treasury = Wallet::derive(SEED, "bench/treasury").address();
    let committee = [admin.address()];
    let roles = Roles {
        attributor: Wallet::derive(SEED, "bench/attributor").address(),
        guardian: admin.address(),
    };
    let d = Deployment::deploy(
        &mut chain,
        &mut admin,
        treasury,
        &committee,
        roles,
        &ProtocolParams {
            grant_approvals: 1,
            ..ProtocolParams::default()
        },
    )?;
    let addresses: Vec<_> = senders.iter().map(Wallet::address).collect();
    let mut funding = Vec::new();
    for &to in &addresses {
        let call = OpenToken::transferCall {
            to,
            amount: U256::from(1_000) * OPEN,
        };
        funding.push(prepare(&mut chain, &mut admin, d.token, &call, 100_000)?);
    }
    for r in chain.send_batch(funding) {
        r?;
    }
    let mut round = Vec::new();
    for k in 1..=TRANSFERS_PER_SENDER {
        for (i, w) in senders.iter_mut().enumerate() {
            let call = OpenToken::transferCall {
                to: addresses[(i + k) % SENDERS],
                amount: OPEN,
            };
            round.push(prepare(&mut chain, w, d.token, &call, 100_000)?);
        }
    }
    Ok((chain, round))
}

/// The transfer round sent as `origin` says against the raw loop over the same transactions.
fn chain(repeats: u32, origin: Origin) -> Result<Measurement, BenchError> {
    let (mut chain, mut round) = transfer_round()?;
    if origin == Origin::Impersonated {
        round = round
            .into_iter()
            .map(|tx| {
                let unsigned = tx.envelope.as_eip1559().expect("EIP-1559").tx().clone();
                SignedTx::impersonated(unsigned, tx.from)
            })
            .collect();
    }
    let raw_txs: Vec<_> = round.iter().map(|tx| op_transaction(tx, tx.from)).collect();
    let cfg = CfgEnv::new_with_spec(SPEC).with_chain_id(chain.chain_id());
    let (mut raw_gas, mut chain_gas) = (0u64, 0u64);
    let times = best_of(
        repeats,
        &mut chain,
        |chain| {
            let snapshot = chain.snapshot()?;
            let start = Instant::now();
            let results = chain.send_batch(round.clone());
            let elapsed = start.elapsed();
            chain.revert_to(snapshot)?;
            chain_gas = 0;
            for r in results {
                chain_gas += r?.gas_used;
            }
            Ok(elapsed)
        },
        |chain| {
            let mut evm = Context::op()
                .with_db(chain.database().clone())
                .with_cfg(cfg.clone())
                .with_block(chain.next_block_env())
                .build_op();
            let start = Instant::now();
            raw_gas = raw_txs
                .iter()
                .map(|tx| {
                    evm.transact_commit(tx.clone())
                        .map_or(0, |r| r.tx_gas_used())
                })
                .sum();
            start.elapsed()
        },
    )?;
    if raw_gas != chain_gas {
        return Err(BenchError::Mismatch(format!(
            "chain bench: the raw loop used {raw_gas} gas but the embedded chain {chain_gas} \
             for the same transactions"
        )));
    }
    let (name, how) = match origin {
        Origin::Signed => ("chain", "signed"),
        Origin::Impersonated => ("chain_impersonated", "impersonated"),
    };
    Ok(measurement(
        name,
        format!("{} OPEN transfers, {how}, embedded send_batch", round.len()),
        "op-revm transact loop".into(),
        times,
    ))
}

/// Served outputs the `attribution` bench attributes.
const ATTRIBUTED_OUTPUTS: usize = 2048;

/// DataInf indexes (one per storage in `storages`) of a generated finance Datanet's rank-2
/// adapter, trained once, and [`ATTRIBUTED_OUTPUTS`] random served inputs, for the
/// attribution benches.
fn attribution_fixture(
    bench: &'static str,
    storages: &[olsim_ml::influence::Storage],
) -> Result<(Vec<AttributionIndex>, Vec<Vec<f32>>), BenchError> {
    use olsim_ml::influence::{InfluenceConfig, Method};
    let fail = |message: String| BenchError::Failed { bench, message };
    let device = Default::default();
    let scenario = trained_adapter(bench)?;
    let indexes = storages
        .iter()
        .map(|&storage| {
            let config = InfluenceConfig {
                storage,
                ..InfluenceConfig::new(Method::DATAINF)
            };
            AttributionIndex::build(&scenario.trace, &scenario.records, &config, &device)
                .map_err(|e| fail(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    let dim = scenario.records[0].features.len();
    let mut rng = stream(SEED, "bench/attribution");
    let inputs = (0..ATTRIBUTED_OUTPUTS)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    Ok((indexes, inputs))
}

/// A generated finance Datanet's rank-2 adapter and its training records, trained once (the
/// influence benches' model).
fn trained_adapter(
    bench: &'static str,
) -> Result<olsim_ml::groundtruth::Scenario<burn::backend::Autodiff<Cpu>>, BenchError> {
    use olsim_ml::data::Domain;
    use olsim_ml::groundtruth::ScenarioSpec;
    ScenarioSpec::small(Domain::Finance, SEED, 4, 16)
        .build::<burn::backend::Autodiff<Cpu>>(&Default::default())
        .map_err(|e| BenchError::Failed {
            bench,
            message: e.to_string(),
        })
}

/// Records whose gradients the `influence_gradients` bench computes: one slice of an index
/// at the engine's batch of 512.
const GRADIENT_RECORDS: usize = 32_768;

/// Examples per gradient batch in `influence_gradients` (the engine's classifier batch).
const GRADIENT_BATCH: usize = 512;

/// Per-example LoRA gradients of [`GRADIENT_RECORDS`] records (the trained adapter's
/// records, cycled) by the fused host kernel, against burn tensor operations, both a batch
/// of [`GRADIENT_BATCH`] at a time on one thread.
fn influence_gradients(repeats: u32) -> Result<Measurement, BenchError> {
    use burn::tensor::{Tensor, TensorData};
    use olsim_ml::influence::HostKernel;
    let bench = "influence_gradients";
    let scenario = trained_adapter(bench)?;
    let params = scenario.trace.final_params();
    let (dim, classes) = (params.input_dim(), params.classes());
    let mut x = Vec::with_capacity(GRADIENT_RECORDS * dim);
    let mut onehot = vec![0.0f32; GRADIENT_RECORDS * classes];
    for (i, r) in scenario
        .records
        .iter()
        .cycle()
        .take(GRADIENT_RECORDS)
        .enumerate()
    {
        x.extend_from_slice(&r.features);
        onehot[i * classes + usize::from(r.label)] = 1.0;
    }
    let kernel = HostKernel::new(params);
    let p = kernel.dim();
    let device = Default::default();
    let tensors = params.to_device::<Cpu>(&device);
    let (mut fused, mut ops) = (vec![0.0f32; GRADIENT_RECORDS * p], Vec::new());
    let batches = || {
        x.chunks(GRADIENT_BATCH * dim)
            .zip(onehot.chunks(GRADIENT_BATCH * classes))
    };
    let times = best_of(
        repeats,
        &mut (),
        |_| {
            Ok(timed(|| {
                for ((x, y), out) in batches().zip(fused.chunks_mut(GRADIENT_BATCH * p)) {
                    kernel.gradients_into(x, y, out);
                }
            }))
        },
        |_| {
            timed(|| {
                ops.clear();
                for (x, y) in batches() {
                    let m = y.len() / classes;
                    let g = tensors.per_example_gradients(
                        Tensor::from_data(TensorData::new(x.to_vec(), [m, dim]), &device),
                        Tensor::from_data(TensorData::new(y.to_vec(), [m, classes]), &device),
                    );
                    ops.extend(g.into_data().to_vec::<f32>().unwrap_or_default());
                }
            })
        },
    )?;
    let scale = ops.iter().fold(1e-6f32, |a, v| a.max(v.abs()));
    if ops.len() != fused.len()
        || fused
            .iter()
            .zip(&ops)
            .any(|(a, b)| (a - b).abs() > 1e-4 * scale)
    {
        return Err(BenchError::Mismatch(
            "influence_gradients bench: the host kernel and the tensor operations disagree".into(),
        ));
    }
    Ok(measurement(
        bench,
        format!(
            "per-example gradients of {GRADIENT_RECORDS} records ({p} LoRA parameters), fused host kernel"
        ),
        "the same by burn tensor operations".into(),
        times,
    ))
}

/// The CPU backend the model benches run on.
type Cpu = burn::backend::NdArray<f32>;
/// The index the attribution benches score with.
type AttributionIndex = olsim_ml::influence::InfluenceIndex<Cpu>;

/// Every record's influence summed over [`ATTRIBUTED_OUTPUTS`] random served inputs, summed
/// first (`attribute_outputs_total`) against scored one by one (`attribute_outputs`), on a
/// DataInf index of [`attribution_fixture`].
fn attribution(repeats: u32) -> Result<Measurement, BenchError> {
    let fail = |message: String| BenchError::Failed {
        bench: "attribution",
        message,
    };
    let (indexes, inputs) =
        attribution_fixture("attribution", &[olsim_ml::influence::Storage::Kept])?;
    let index = &indexes[0];
    let (mut summed, mut scored) = (Vec::new(), Vec::new());
    let times = best_of(
        repeats,
        &mut (),
        |_| {
            timed_ok(|| {
                index
                    .attribute_outputs_total(&inputs)
                    .map(|t| summed = t.per_record)
            })
            .map_err(|e| fail(e.to_string()))
        },
        |_| {
            timed(|| {
                scored = index
                    .attribute_outputs(&inputs)
                    .map(|a| a.per_record())
                    .unwrap_or_default()
            })
        },
    )?;
    let scale = scored.iter().map(|v| v.abs()).fold(0.0, f64::max);
    let apart = summed
        .iter()
        .zip(&scored)
        .any(|(a, b)| (a - b).abs() > 1e-3 * scale.max(1e-12));
    if summed.len() != scored.len() || apart {
        return Err(BenchError::Mismatch(
            "attribution bench: summed and per-output attribution disagree".into(),
        ));
    }
    Ok(measurement(
        "attribution",
        format!(
            "{ATTRIBUTED_OUTPUTS} outputs over {} records, query gradients summed",
            summed.len()
        ),
        "the same outputs scored one by one".into(),
        times,
    ))
}

/// The summed attribution of [`attribution`] on an index that recomputes its stored
/// gradients, against the same on one that keeps them.
fn attribution_recomputed(repeats: u32) -> Result<Measurement, BenchError> {
    use olsim_ml::influence::Storage;
    let bench = "attribution_recomputed";
    let fail = |message: String| BenchError::Failed { bench, message };
    let (indexes, inputs) = attribution_fixture(bench, &[Storage::Recomputed, Storage::Kept])?;
    let (recomputed, kept) = (&indexes[0], &indexes[1]);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let total = |index: &AttributionIndex, out: &mut Vec<f64>| {
        timed_ok(|| {
            index
                .attribute_outputs_total(&inputs)
                .map(|t| *out = t.per_record)
        })
        .map_err(|e| fail(e.to_string()))
    };
    let mut failed = None;
    let times = best_of(
        repeats,
        &mut (),
        |_| total(recomputed, &mut a),
        |_| {
            total(kept, &mut b).unwrap_or_else(|e| {
                failed = Some(e);
                Duration::MAX
            })
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    if a.is_empty() || bits(&a) != bits(&b) {
        return Err(BenchError::Mismatch(
            "attribution_recomputed bench: recomputed and kept gradients score differently".into(),
        ));
    }
    Ok(measurement(
        bench,
        format!(
            "{ATTRIBUTED_OUTPUTS} outputs over {} records, stored gradients recomputed",
            a.len()
        ),
        "the same with the stored gradients kept".into(),
        times,
    ))
}

/// Adapters the `openlora` bench's many-adapter server holds.
const OPENLORA_ADAPTERS: usize = 1000;
/// Requests of the `openlora` bench: a warm-up replay, then the timed one.
const OPENLORA_WARMUP: usize = 256;
const OPENLORA_REQUESTS: usize = 1024;
/// Requests per window (and most per batch) of the `openlora` bench.
const OPENLORA_WINDOW: usize = 32;

/// OpenLoRA heterogeneous serving of [`OPENLORA_REQUESTS`] requests drawn Zipf(1.0) over
/// [`OPENLORA_ADAPTERS`] rank-8 adapters of an MLP 256 -> 256 -> 256 -> 16 (device cache of
/// 200 adapters, LRU; each side clears it and replays [`OPENLORA_WARMUP`] requests first)
/// against the same inputs all for one adapter.
fn openlora(repeats: u32) -> Result<Measurement, BenchError> {
    use olsim_ml::model::{LoraConfig, MlpConfig};
    use olsim_ml::serve::{
        AdapterId, AdapterStore, MlpServe, ServeMode, ServeModel, Server, ServerConfig,
        ZipfPopularity, feature_vectors,
    };
    let fail = |message: String| BenchError::Failed {
        bench: "openlora",
        message,
    };
    let config = MlpConfig {
        input_dim: 256,
        hidden: vec![256, 256],
        classes: 16,
    };
    let total = OPENLORA_WARMUP + OPENLORA_REQUESTS;
    let inputs = feature_vectors(SEED, config.input_dim, total);
    let server = |adapters: usize| -> Result<Server<Cpu, MlpServe<Cpu>>, BenchError> {
        let base = config
            .init::<Cpu>(SEED, &Default::default())
            .map_err(|e| fail(e.to_string()))?;
        let model =
            MlpServe::new(base, &LoraConfig::new(8, 16.0)).map_err(|e| fail(e.to_string()))?;
        let mut store = AdapterStore::new(model.adapter_layout());
        store
            .generate(0..adapters as AdapterId, SEED, 2.0)
            .map_err(|e| fail(e.to_string()))?;
        let cache_bytes = 200 * store.layout().adapter_bytes();
        let config = ServerConfig {
            mode: ServeMode::Heterogeneous,
            max_batch: OPENLORA_WINDOW,
            cache_bytes,
        };
        Server::new(model, store, config).map_err(|e| fail(e.to_string()))
    };
    let many: Vec<AdapterId> = ZipfPopularity::new(OPENLORA_ADAPTERS, 1.0)
        .map_err(|e| fail(e.to_string()))?
        .requests(SEED, total);
    let stream = |ids: &[AdapterId]| -> Vec<(AdapterId, Vec<f32>)> {
        ids.iter().copied().zip(inputs.iter().cloned()).collect()
    };
    let (many, one) = (stream(&many), stream(&vec![0; total]));
    let mut servers = (server(OPENLORA_ADAPTERS)?, server(1)?);
    // Clears the device cache, replays the warm-up, then times the rest.
    let replay = |server: &mut Server<Cpu, MlpServe<Cpu>>, requests: &[(AdapterId, Vec<f32>)]| {
        server.clear_device();
        let (warmup, timed) = requests.split_at(OPENLORA_WARMUP);
        server.replay(warmup.to_vec(), OPENLORA_WINDOW)?;
        let timed = timed.to_vec();
        let start = Instant::now();
        let report = server.replay(timed, OPENLORA_WINDOW)?;
        Ok::<_, olsim_ml::serve::ServeError>((start.elapsed(), report.requests))
    };
    let mut failed = None;
    let times = best_of(
        repeats,
        &mut servers,
        |(server, _)| {
            let (elapsed, served) = replay(server, &many).map_err(|e| fail(e.to_string()))?;
            if served != OPENLORA_REQUESTS {
                return Err(BenchError::Mismatch(format!(
                    "openlora bench: served {served} of {OPENLORA_REQUESTS} requests"
                )));
            }
            Ok(elapsed)
        },
        |(_, server)| match replay(server, &one) {
            Ok((elapsed, _)) => elapsed,
            Err(e) => {
                failed = Some(fail(e.to_string()));
                Duration::MAX
            }
        },
    )?;
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(measurement(
        "openlora",
        format!(
            "{OPENLORA_REQUESTS} requests, Zipf over {OPENLORA_ADAPTERS} adapters, heterogeneous"
        ),
        "the same requests on 1 adapter".into(),
        times,
    ))
}

/// A seeded corpus: documents of [`DOCUMENT_TOKENS`] tokens over a skewed vocabulary.
fn corpus() -> Vec<Vec<u32>> {
    let mut rng = stream(SEED, "bench/suffix");
    (0..CORPUS_TOKENS / DOCUMENT_TOKENS)
        .map(|_| {
            (0..DOCUMENT_TOKENS)
                .map(|_| {
                    let u: f64 = rng.random();
                    (u * u * u * f64::from(VOCAB)) as u32
                })
                .collect()
        })
        .collect()
}

fn build_index(docs: &[Vec<u32>]) -> Result<olsim_ml::suffix::SuffixIndex, BenchError> {
    let mut builder = IndexBuilder::with_capacity(CORPUS_TOKENS, docs.len());
    for (i, doc) in docs.iter().enumerate() {
        builder
            .add_document(i as u32, i as u32 % 50, doc)
            .map_err(|e| BenchError::Failed {
                bench: "suffix",
                message: e.to_string(),
            })?;
    }
    builder.build().map_err(|e| BenchError::Failed {
        bench: "suffix",
        message: e.to_string(),
    })
}

fn suffix_build(repeats: u32) -> Result<Measurement, BenchError> {
    let docs = corpus();
    let flat: Vec<u32> = docs.concat();
    let times = best_of(
        repeats,
        &mut (),
        |_| timed_ok(|| build_index(&docs)),
        |_| {
            timed(|| {
                let mut sorted = flat.clone();
                sorted.sort_unstable();
                sorted
            })
        },
    )?;
    Ok(measurement(
        "suffix_build",
        format!("suffix index of {CORPUS_TOKENS} tokens"),
        "sort_unstable of the tokens".into(),
        times,
    ))
}

fn suffix_query(repeats: u32) -> Result<Measurement, BenchError> {
    let docs = corpus();
    let index = build_index(&docs)?;
    let mut sorted: Vec<u32> = docs.concat();
    sorted.sort_unstable();
    let mut rng = stream(SEED, "bench/suffix-queries");
    let queries: Vec<&[u32]> = (0..QUERIES)
        .map(|_| {
            let doc = &docs[rng.random_range(0..docs.len())];
            let len = rng.random_range(1..=8);
            let at = rng.random_range(0..=doc.len() - len);
            &doc[at..at + len]
        })
        .collect();
    let mut missing = 0;
    let times = best_of(
        repeats,
        &mut (),
        |_| {
            Ok(timed(|| {
                missing = queries.iter().filter(|q| index.count(q) == 0).count();
            }))
        },
        |_| {
            timed(|| {
                queries
                    .iter()
                    .map(|q| sorted.partition_point(|&t| t < q[0]))
                    .sum::<usize>()
            })
        },
    )?;
    if missing > 0 {
        return Err(BenchError::Mismatch(format!(
            "suffix_query bench: {missing} n-grams taken from the corpus were not found"
        )));
    }
    Ok(measurement(
        "suffix_query",
        format!("{QUERIES} n-gram counts (length 1-8)"),
        "binary searches over the sorted tokens".into(),
        times,
    ))
}

/// `C = A * B` for `n x n` row-major matrices, the plain triple loop.
fn gemm(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
    let mut c = vec![0.0f32; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            for j in 0..n {
                c[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    c
}

fn epoch(repeats: u32) -> Result<Measurement, BenchError> {
    let mut scenario =
        Scenario::parse("smoke.toml (built in)", SMOKE).map_err(|e| BenchError::Failed {
            bench: "epoch",
            message: e.to_string(),
        })?;
    scenario.run.epochs = 1;
    let a: Vec<f32> = (0..GEMM_N * GEMM_N).map(|i| (i % 7) as f32 * 0.5).collect();
    let b: Vec<f32> = (0..GEMM_N * GEMM_N)
        .map(|i| (i % 5) as f32 * 0.25)
        .collect();
    let times = best_of(
        repeats,
        &mut (),
        |_| {
            timed_ok(|| engine::run(&scenario, &RunOptions::default())).map_err(|e| {
                BenchError::Failed {
                    bench: "epoch",
                    message: e.to_string(),
                }
            })
        },
        |_| timed(|| gemm(black_box(&a), black_box(&b), GEMM_N)),
    )?;
    Ok(measurement(
        "epoch",
        "smoke scenario, setup and one epoch".into(),
        format!("{GEMM_N}x{GEMM_N} f32 matrix product"),
        times,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(ratios: &[(&str, f64)]) -> BenchReport {
        BenchReport {
            version: BENCH_VERSION,
            profile: profile().into(),
            repeats: 1,
            measurements: ratios
                .iter()
                .map(|&(name, ratio)| Measurement {
                    name: name.into(),
                    work: String::new(),
                    reference: String::new(),
                    seconds: ratio,
                    reference_seconds: 1.0,
                    ratio,
                })
                .collect(),
        }
    }

    #[test]
    fn only_a_ratio_beyond_the_noise_band_regresses() {
        let base = report(&[("chain", 2.0), ("epoch", 10.0), ("suffix_build", 1.0)]);
        let now = report(&[("chain", 2.9), ("epoch", 15.5), ("suffix_query", 1.0)]);
        let diffs = compare(&base, &now, 0.5);
        let got: Vec<(&str, Verdict)> = diffs
            .iter()
            .map(|d| (d.metric.as_str(), d.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("chain", Verdict::Within),
                ("epoch", Verdict::Changed),
                ("suffix_build", Verdict::Removed),
                ("suffix_query", Verdict::Added),
            ]
        );
        // Much faster is not a regression.
        let fast = compare(&base, &report(&[("chain", 0.1)]), 0.5);
        assert_eq!(fast[0].verdict, Verdict::Within);
    }

    #[test]
    fn unknown_benches_and_foreign_json_are_refused() {
        let err = run(&["warp".into()], 1).unwrap_err();
        assert!(err.to_string().contains("unknown bench `warp`"), "{err}");
        let mut r = report(&[("chain", 1.0)]);
        assert_eq!(BenchReport::from_json(&r.to_json()).unwrap(), r);
        r.version = 0;
        let err = BenchReport::from_json(&r.to_json()).unwrap_err();
        assert!(err.contains("version 0"), "{err}");
    }

    #[test]
    fn gemm_multiplies() {
        // [[1, 2], [3, 4]] * [[5, 6], [7, 8]] = [[19, 22], [43, 50]]
        assert_eq!(
            gemm(&[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0], 2),
            [19.0, 22.0, 43.0, 50.0]
        );
    }
}
