//! The epoch engine: turns a validated [`Scenario`] into transactions on a chain and jobs in
//! `ml`, epoch by epoch, and reads the outcome back from the chain into a [`Report`].
//!
//! Before epoch 0, [`setup`] creates the agents, deploys the protocol and makes the Datanets.
//! Each epoch is the stage pipeline of [`pipeline`] (its module docs give the order, which
//! [`pipeline::PIPELINE`] writes once): arrivals and stake, review, grants, training and
//! registration, governance, demand and payment, serving, attribution, settlement and
//! slashing, staking claims. Attacker kinds that act in the engine have their own modules
//! under [`attacks`]. At the end, [`results`] reads the report back from the chain.
//!
//! Determinism: every random choice draws from `stream(seed, name)` with a stable name; agents
//! act in creation order; nothing depends on hash-map order, thread count or wall clock.
//! Wall-clock timings go to the report's `perf` section only.

mod actors;
mod attacks;
mod books;
mod data;
mod economy;
mod governance;
mod grants;
mod lm;
mod models;
mod pipeline;
mod results;
mod setup;
mod truth;
mod txs;

use std::time::Instant;

use alloy_primitives::U256;
use olsim_chain::{
    AnvilChain, AnvilConfig, Chain, ChainError, Deployment, EmbeddedChain, EmbeddedConfig,
};

use crate::report::Report;
use crate::scenario::{ChainBackend, DeviceKind, Scenario};

pub use actors::{Actors, AgentId, Role};
pub use txs::{Action, Failure, TxLog};

/// How to run a scenario (everything that is not part of the scenario itself).
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Show progress bars on the terminal.
    pub progress: bool,
}

/// Why a run could not be carried out. Refused transactions are not errors: they are
/// recorded in the report.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The chain backend failed (not a revert: a crashed node, a missing tool, ...).
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A model could not be trained, served or attributed.
    #[error("model `{model}`: {message}")]
    Model {
        /// The model's scenario name.
        model: String,
        /// What failed.
        message: String,
    },
    /// The scenario asks for something this build cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The scenario is inconsistent in a way validation did not catch.
    #[error("scenario: {0}")]
    Scenario(String),
}

/// Runs `scenario` and returns its report.
pub fn run(scenario: &Scenario, options: &RunOptions) -> Result<Report, EngineError> {
    let started = Instant::now();
    if scenario.run.device == DeviceKind::Cuda {
        return Err(EngineError::Unsupported(
            "run.device = \"cuda\": the engine runs its models on the CPU backend in this \
             build; set run.device = \"cpu\""
                .into(),
        ));
    }
    let chain: Box<dyn Chain> = match scenario.run.chain {
        ChainBackend::Embedded => Box::new(EmbeddedChain::new(EmbeddedConfig::default())),
        ChainBackend::Anvil => Box::new(AnvilChain::start(AnvilConfig::matching(
            &EmbeddedConfig::default(),
        ))?),
    };
    let mut sim = Sim::setup(scenario.clone(), chain)?;
    let bar = progress_bar(options.progress, scenario.run.epochs);
    for epoch in 0..scenario.run.epochs {
        pipeline::run_epoch(&mut sim, epoch)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    let mut report = sim.report(started)?;
    report.claims = crate::claims::check(&scenario.expect, &report.result);
    Ok(report)
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
    bar
}

/// Wall-clock seconds per stage (perf section only).
#[derive(Debug, Default)]
struct Timers {
    stages: Vec<(&'static str, f64)>,
}

impl Timers {
    fn add(&mut self, stage: &'static str, since: Instant) {
        let s = since.elapsed().as_secs_f64();
        match self.stages.iter_mut().find(|(name, _)| *name == stage) {
            Some((_, total)) => *total += s,
            None => self.stages.push((stage, s)),
        }
    }

    fn get(&self, stage: &str) -> f64 {
        self.stages
            .iter()
            .find(|(name, _)| *name == stage)
            .map_or(0.0, |(_, s)| *s)
    }
}

/// The state of a run between epochs.
struct Sim {
    scenario: Scenario,
    seed: u64,
    chain: Box<dyn Chain>,
    actors: Actors,
    log: TxLog,
    deployment: Deployment,
    admin: AgentId,
    committee: Vec<AgentId>,
    users: Vec<AgentId>,
    stakers: Vec<(usize, AgentId)>,
    datanets: Vec<data::DatanetState>,
    models: Vec<models::ModelState>,
    proposals: Vec<governance::ProposalState>,
    grants: Vec<grants::GrantState>,
    books: books::Books,
    timers: Timers,
    compute: models::Compute,
    base: models::BaseModels,
    epochs: Vec<crate::report::EpochResult>,
    lm: Option<lm::LmWorld>,
    served: u64,
    /// Attribution gamers' plans.
    gamers: Vec<attacks::attribution_gaming::Gamer>,
    /// Just-in-time staking attackers.
    jit_stakers: Vec<attacks::jit_staker::JitStaker>,
    /// Round-robin position of the next paying user, kept across epochs.
    next_payer: usize,
    attributed: u64,
}

/// A scenario's OPEN amount `x` in token wei, exactly ([`crate::units`]); an amount the
/// validator would refuse is a scenario error here too.
fn open(x: f64) -> Result<U256, EngineError> {
    crate::units::open_wei(x).map_err(EngineError::Scenario)
}

use crate::units::to_open;
