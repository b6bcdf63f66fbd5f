//! Attacker kinds that act in the engine: one module per kind, each implementing [`Attack`],
//! and one registry ([`build`]). Every attacker acts only through the contracts and data
//! paths honest agents use: it contributes and stakes, pays for inferences, reviews, and
//! stakes, proposes and votes in governance with its own keys.
//!
//! | kind | where its behaviour is |
//! |---|---|
//! | `label_flip`, `backdoor`, `spammer`, `copycat` | data made by the `ml` generator ([`olsim_ml::data::Behaviour`]); no engine module |
//! | `sybil` | one honest-quality contributor split over identities (`scenario::convert`); no engine module |
//! | `attribution_gaming` | [`attribution_gaming`]: records crafted where served inputs concentrate |
//! | `wash_inference` | [`wash_inference`]: owns a model and buys calls on it |
//! | `colluding_reviewers` | [`colluding_reviewers`]: extra reviewers who vote by intent |
//! | `jit_staker` | [`jit_staker`]: stake just before the payments, unstake after |
//! | `governance_capture` | [`governance_capture`]: borrowed stake votes itself in as the attributor, which then pays itself the pools |

pub mod attribution_gaming;
pub mod colluding_reviewers;
pub mod governance_capture;
pub mod jit_staker;
pub mod wash_inference;

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use burn::tensor::backend::AutodiffBackend;

use super::actors::{Actors, AgentId};
use super::data::DatanetState;
use super::epoch::{EpochState, Stage};
use super::{EngineError, Sim};
use crate::scenario::{AttackKind, Scenario};

/// What an attack may touch before epoch 0, while the run's agents are created: it adds its
/// own agents and plans, and may take over what it attacks.
pub struct Cast<'a> {
    /// The scenario.
    pub scenario: &'a Scenario,
    /// Every agent so far; an attack adds its own.
    pub actors: &'a mut Actors,
    /// The Datanets, with their data and identities (not yet on chain).
    pub datanets: &'a mut [DatanetState],
    /// Models whose owner an attacker is, by `[[models]]` index (the model registers with
    /// that agent instead of an honest developer).
    pub owners: &'a mut BTreeMap<usize, AgentId>,
}

/// When in an epoch an attack acts: just before or just after one of its stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Before the stage runs.
    Before(Stage),
    /// After the stage ran.
    After(Stage),
}

/// OPEN an agent needs from the genesis distribution, and the contract it lets spend it.
pub type Budget = (AgentId, U256, Address);

/// An attacker kind's behaviour in the engine. `budgets` and `act` have defaults that do
/// nothing, so a kind implements only what it does.
pub trait Attack<B: AutodiffBackend> {
    /// Before epoch 0: adds the kind's agents and plans ([`Cast`]).
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError>;

    /// The OPEN budgets its agents need (sent with everyone else's before epoch 0).
    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let _ = sim;
        Ok(Vec::new())
    }

    /// Acts in `epoch` at moment `at` (just before or just after a stage).
    fn act(
        &mut self,
        at: Moment,
        sim: &mut Sim<B>,
        epoch: &mut EpochState,
    ) -> Result<(), EngineError> {
        let _ = (at, sim, epoch);
        Ok(())
    }
}

/// The registry: the engine behaviour of `kind`, or `None` for the kinds whose attack is
/// entirely in the data the generator makes. Every kind is listed, so a new kind must be
/// placed here.
fn build<B: AutodiffBackend>(kind: AttackKind) -> Option<Box<dyn Attack<B>>> {
    match kind {
        AttackKind::AttributionGaming => Some(Box::<attribution_gaming::Gamers>::default()),
        AttackKind::WashInference => Some(Box::<wash_inference::WashTraders>::default()),
        AttackKind::ColludingReviewers => Some(Box::<colluding_reviewers::Colluders>::default()),
        AttackKind::JitStaker => Some(Box::<jit_staker::JitStakers>::default()),
        AttackKind::GovernanceCapture => Some(Box::<governance_capture::Capturers>::default()),
        AttackKind::Sybil
        | AttackKind::Copycat
        | AttackKind::LabelFlip
        | AttackKind::Backdoor
        | AttackKind::Spammer => None,
    }
}

/// The engine attacks of `scenario`'s kinds, in [`AttackKind`] order, each cast.
pub fn cast_all<B: AutodiffBackend>(
    cast: &mut Cast<'_>,
) -> Result<Vec<Box<dyn Attack<B>>>, EngineError> {
    let mut kinds: Vec<AttackKind> = cast.scenario.attackers.iter().map(|a| a.kind).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let mut out = Vec::new();
    for kind in kinds {
        if let Some(mut attack) = build::<B>(kind) {
            attack.cast(cast)?;
            out.push(attack);
        }
    }
    Ok(out)
}

/// Runs `hook` of every attack of `sim` (they are taken out of `sim` for the call).
pub fn each<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    mut hook: impl FnMut(&mut dyn Attack<B>, &mut Sim<B>) -> Result<(), EngineError>,
) -> Result<(), EngineError> {
    let mut attacks = std::mem::take(&mut sim.attacks);
    let result = attacks
        .iter_mut()
        .try_for_each(|attack| hook(attack.as_mut(), sim));
    sim.attacks = attacks;
    result
}
