//! The epoch engine: turns a validated [`Scenario`] into transactions on a chain and jobs in
//! `ml`, epoch by epoch, and reads the outcome back from the chain into a [`Report`].
//!
//! A run's state is split by what it touches: [`net::Net`] is the chain side (the node, the
//! agents' wallets, the transaction log, the deployment and the books read from events),
//! [`lab::Lab`] the ML side (the device, base models, compute and wall-clock ledgers), and
//! the rest is what the stages keep between epochs (Datanets, models, proposals, grants).
//! Every stage is a function of its module over just the parts it needs; [`pipeline`] hands
//! them over, so no module reaches state it does not name.
//!
//! Before epoch 0, [`setup`] creates the agents, deploys the protocol, makes the Datanets and
//! has the stakers stake.
//! Each epoch is the stage pipeline of [`pipeline`] (its module docs give the order, which
//! [`pipeline::PIPELINE`] writes once): governance, arrivals and stake, review, grants,
//! training and registration, demand and payment, serving, attribution, settlement and
//! slashing, staking claims. Attacker kinds that act in the engine have their own modules
//! under [`attacks`]. At the end, [`results`] reads the report back from the chain.
//!
//! Determinism: every random choice draws from `stream(seed, name)` with a stable name; agents
//! act in creation order; nothing depends on hash-map order, thread count or wall clock.
//! Wall-clock timings go to the report's `perf` section only.

mod actors;
mod attacks;
mod books;
mod counterfactual;
mod data;
mod economy;
mod epoch;
mod factory;
mod governance;
mod grants;
mod lab;
mod lm;
mod memo;
mod models;
mod net;
mod pipeline;
mod results;
mod review;
mod rewarding;
mod setup;
mod slashing;
mod truth;
mod txs;

use std::sync::Arc;
use std::time::Instant;

use alloy_primitives::U256;
use olsim_chain::{
    AnvilChain, AnvilConfig, Chain, ChainError, EmbeddedChain, EmbeddedConfig, SignatureMemo,
};

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::device::{BackendTask, Device, DeviceError};

use self::memo::{RunMemos, TrainingMemo};

use crate::report::Report;
use crate::scenario::{ChainBackend, DeviceKind, Scenario};

pub use actors::{Actors, AgentId, Role};
pub use txs::{Action, Failure, Transactions, TxLog, TxRecord};

/// How to run a scenario (everything that is not part of the scenario itself).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Show progress bars on the terminal.
    pub progress: bool,
    /// The device models run on, overriding the scenario's `run.device` (`--device`).
    pub device: Option<Device>,
}

/// Why a run could not be carried out. Refused transactions are not errors: they are
/// recorded in the report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The chain backend failed (not a revert: a crashed node, a missing tool, ...).
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A model could not be trained, served or attributed.
    #[error("model `{model}`: {source}")]
    Model {
        /// The model's scenario name (and what it was doing, where that helps).
        model: String,
        /// The typed error of `olsim-ml`.
        source: MlError,
    },
    /// The device the run asks for cannot run it here (a CUDA device in a build without the
    /// `cuda` feature, no driver, no such GPU).
    #[error("device: {0}")]
    Device(#[from] DeviceError),
    /// The scenario is inconsistent in a way validation did not catch.
    #[error("scenario: {0}")]
    Scenario(String),
}

/// An error of `olsim-ml`, kept typed.
#[derive(Debug, thiserror::Error)]
pub enum MlError {
    /// Building, training or predicting with a classifier.
    #[error(transparent)]
    Model(#[from] olsim_ml::model::ModelError),
    /// OpenLoRA serving.
    #[error(transparent)]
    Serve(#[from] olsim_ml::serve::ServeError),
    /// Influence attribution.
    #[error(transparent)]
    Influence(#[from] olsim_ml::influence::InfluenceError),
    /// The language model.
    #[error(transparent)]
    Lm(#[from] olsim_ml::lm::LmError),
    /// The suffix-array index.
    #[error(transparent)]
    Suffix(#[from] olsim_ml::suffix::SuffixError),
    /// Retraining ground truth.
    #[error(transparent)]
    GroundTruth(#[from] olsim_ml::groundtruth::GroundTruthError),
    /// Generating data.
    #[error(transparent)]
    Spec(#[from] olsim_ml::data::SpecError),
}

/// A finished run: its report, and every transaction it sent (data for the transaction-log
/// table, kept outside the report and its digest).
#[derive(Clone, Debug)]
pub struct Run {
    /// The report.
    pub report: Report,
    /// Every transaction of the run proper (not of its counterfactual runs).
    pub transactions: Transactions,
}

/// Runs `scenario` (see [`run_logged`]) and returns its report.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report, EngineError> {
    run_logged(scenario, options).map(|run| run.report)
}

/// Runs `scenario` on the device `options.device` names, or else the scenario's
/// `run.device` (`cuda` is GPU 0), and returns its report and transactions. CUDA needs a
/// build with the `cuda` feature and a GPU; otherwise this is [`EngineError::Device`],
/// saying which.
pub fn run_logged(scenario: &Scenario, options: &RunOptions) -> Result<Run, EngineError> {
    let device = options.device.unwrap_or(match scenario.run.device {
        DeviceKind::Cpu => Device::Cpu,
        DeviceKind::Cuda => Device::Cuda(0),
    });
    device.run(RunTask { scenario, options })?
}

/// [`run_on`] as a task [`Device::run`] runs on the backend it picks.
struct RunTask<'a> {
    scenario: &'a Scenario,
    options: &'a RunOptions,
}

impl BackendTask for RunTask<'_> {
    type Output = Result<Run, EngineError>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        run_on::<B>(self.scenario, self.options, device)
    }
}

/// Runs `scenario` with its models on burn backend `B` (training on `B`, serving and
/// attribution on its inner backend) on `device`. [`run`] picks `B` from the device; tests
/// call this with other backends to show the engine is written once over any of them.
pub fn run_on<B: AutodiffBackend>(
    scenario: &Scenario,
    options: &RunOptions,
    device: &B::Device,
) -> Result<Run, EngineError> {
    let single = counterfactual::sybils_as_one(scenario);
    let withheld = counterfactual::copycats_withheld(scenario);
    // Fine-tunes and signatures of the run are kept for its counterfactual runs (see
    // `memo`); signatures only where one follows.
    let memos = RunMemos {
        training: Arc::new(TrainingMemo::default()),
        signatures: (single.is_some() || withheld.is_some())
            .then(|| Arc::new(SignatureMemo::default())),
    };
    let Run {
        mut report,
        transactions,
    } = simulate::<B>(scenario, options, device, true, &memos)?;
    let quiet = RunOptions::default();
    // Each counterfactual run's wall time is a stage of its own (they follow the run).
    let mut run_changed = |name: &str, changed: &Scenario| {
        let started = Instant::now();
        let run = simulate::<B>(changed, &quiet, device, false, &memos);
        let seconds = started.elapsed().as_secs_f64();
        report
            .perf
            .stages
            .push((format!("counterfactual run: {name}"), seconds));
        report.perf.total_seconds += seconds;
        run.map(|run| run.report.result)
    };
    let single = single
        .map(|single| run_changed("sybils as one", &single))
        .transpose()?;
    let withheld = withheld
        .map(|withheld| run_changed("copycats withheld", &withheld))
        .transpose()?;
    if let Some(single) = &single {
        counterfactual::add_split_gain(&mut report.result, single);
    }
    if let Some(withheld) = &withheld {
        counterfactual::add_copy_loss(scenario, &mut report.result, withheld)?;
    }
    report.perf.fine_tunes = Some(memos.training.counts());
    report.perf.influence_indexes = Some(memos.training.index_counts());
    report.perf.signatures = memos.signatures.as_ref().map(|s| s.counts());
    // The counterfactuals' figures are part of the result the digest covers.
    report.digest = crate::report::digest_of(&report.result);
    report.claims = crate::claims::check(&scenario.expect, &report.result);
    Ok(Run {
        report,
        transactions,
    })
}

/// One run of `scenario` to its report (claims not yet checked) and transactions, judged
/// against retraining ground truth where `retrain_truth` and the run allow it, else the
/// generator's; fine-tunes and signatures come from `memos` where they were made before.
fn simulate<B: AutodiffBackend>(
    scenario: &Scenario,
    options: &RunOptions,
    device: &B::Device,
    retrain_truth: bool,
    memos: &RunMemos<B>,
) -> Result<Run, EngineError> {
    let started = Instant::now();
    let bar = progress_bar(options.progress, scenario.run.epochs);
    bar.set_message("setting up (chain, agents, data, contracts)");
    let chain: Box<dyn Chain> = match scenario.run.chain {
        ChainBackend::Embedded => Box::new(EmbeddedChain::new(EmbeddedConfig::default())),
        ChainBackend::Anvil => Box::new(AnvilChain::start(AnvilConfig::matching(
            &EmbeddedConfig::default(),
        ))?),
    };
    let mut sim = setup::setup::<B>(scenario.clone(), chain, device.clone(), memos)?;
    bar.set_message("");
    for epoch in 0..scenario.run.epochs {
        pipeline::run_epoch(&mut sim, epoch)?;
        bar.inc(1);
    }
    bar.set_message("results and ground truth");
    let report = results::report(sim, started, retrain_truth);
    bar.finish_and_clear();
    report
}

fn progress_bar(show: bool, epochs: u32) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(u64::from(epochs));
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] epoch {pos}/{len} {msg}",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    // Ticks on its own, so a long setup or epoch shows its clock moving from the first
    // second.
    bar.enable_steady_tick(std::time::Duration::from_secs(1));
    bar
}

/// What a run spends wall-clock time and compute on: the rows of the report's Performance
/// and Compute tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Agents, data generation and deployment before epoch 0 (its transaction batches
    /// count as [`Work::Chain`]).
    Setup,
    /// Signing, sending and executing transactions (the other kinds exclude it).
    Chain,
    /// Fine-tuning adapters (and building their attribution indexes).
    Training,
    /// Serving paid calls.
    Serving,
    /// Attributing served outputs.
    Attribution,
    /// Retraining for the ground-truth values.
    GroundTruth,
}

impl Work {
    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Work::Setup => "setup",
            Work::Chain => "chain",
            Work::Training => "training",
            Work::Serving => "serving",
            Work::Attribution => "attribution",
            Work::GroundTruth => "ground truth",
        }
    }
}

/// Wall-clock seconds per kind of work (perf section only), in first-use order.
#[derive(Debug, Default)]
struct Timers {
    spent: Vec<(Work, f64)>,
}

impl Timers {
    fn add(&mut self, work: Work, since: Instant) {
        self.add_less(work, since, 0.0);
    }

    /// Adds the time since `since` less `overlap` seconds already counted as other work, so
    /// that kinds of work never overlap.
    fn add_less(&mut self, work: Work, since: Instant, overlap: f64) {
        let s = (since.elapsed().as_secs_f64() - overlap).max(0.0);
        match self.spent.iter_mut().find(|(w, _)| *w == work) {
            Some((_, total)) => *total += s,
            None => self.spent.push((work, s)),
        }
    }

    fn get(&self, work: Work) -> f64 {
        self.spent
            .iter()
            .find(|(w, _)| *w == work)
            .map_or(0.0, |(_, s)| *s)
    }
}

/// The state of a run between epochs, its models on backend `B`: the chain side
/// ([`net::Net`]), the ML side ([`lab::Lab`]) and what the stages keep between epochs. It
/// has no behaviour of its own: each stage is a function in its module over the parts it
/// needs, and [`pipeline`] hands them over.
struct Sim<B: AutodiffBackend> {
    scenario: Scenario,
    net: net::Net,
    lab: lab::Lab<B>,
    committee: Vec<AgentId>,
    users: Vec<AgentId>,
    /// Every `[[stakers]]` member with its group's index.
    stakers: Vec<(usize, AgentId)>,
    datanets: Vec<data::DatanetState>,
    models: Vec<models::ModelState<B>>,
    proposals: Vec<governance::ProposalState>,
    grants: Vec<grants::GrantState>,
    /// What the slash rule knows of each model (by index of `models`).
    evidence: Vec<slashing::Evidence>,
    /// Moving average of each model's attribution weights (the `smoothed` reward rule).
    smoothed: Vec<epoch::Weights>,
    /// The report's rows of the epochs run so far.
    epochs: Vec<crate::report::EpochResult>,
    /// The attacker kinds that act in the engine ([`attacks`]), with their agents and plans.
    attacks: Vec<Box<dyn attacks::Attack<B>>>,
    /// Round-robin position of the next paying user, kept across epochs.
    next_payer: usize,
}

/// A scenario's OPEN amount `x` in token wei, exactly ([`crate::units`]); an amount the
/// validator would refuse is a scenario error here too.
fn open(x: f64) -> Result<U256, EngineError> {
    crate::units::open_wei(x).map_err(EngineError::Scenario)
}

use crate::units::to_open;
