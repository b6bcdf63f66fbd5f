//! One epoch as a pipeline of stages, in the order they run (written here once):
//!
//! 1. **Governance**: proposals past their vote are queued, past their timelock executed (so
//!    an executed change holds for the whole epoch); this epoch's proposals are opened and
//!    voted on. First, so that a vote or timelock of whole epochs ends at an epoch's start
//!    however many blocks the epochs before it took.
//! 2. **Arrivals and stake**: attribution gamers due this epoch craft their records;
//!    contributors due this epoch submit their data with their stake.
//! 3. **Review**: reviewers vote on pending contributions until the registry decides them.
//! 4. **Grants**: OpenCircle cohorts apply and are approved; due milestones are released or
//!    fail.
//! 5. **Training and registration**: models due for (re)training are fine-tuned on their
//!    Datanets' accepted data; those trained for the first time are registered.
//! 6. **Demand and payment**: just-in-time stakers stake; users (and wash traders) pay for
//!    this epoch's calls.
//! 7. **Serving**: every trained model serves the calls paid for it (OpenLoRA).
//! 8. **Attribution**: a sample of each model's served outputs is attributed to the
//!    contributors of its training data (influence or suffix-array spans).
//! 9. **Settlement and slashing**: the attributor slashes harmful contributions and pays
//!    each model's contributor pool by attribution weight (push or Merkle claims).
//! 10. **Staking claims**: stakers claim their fee share; just-in-time stakers claim and
//!     unstake.
//!
//! Then the epoch's books are closed and the simulated clock moves one epoch on. (The
//! `[[stakers]]` stake once, in setup, before epoch 0.)

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::data::ContributorId;

use super::attacks::{self, Moment};
use super::models::Served;
use super::{EngineError, Sim};

/// A stage of the epoch pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Proposals advance and open.
    Governance,
    /// Contributions arrive with their stake.
    Arrivals,
    /// Reviewers decide pending contributions.
    Review,
    /// OpenCircle grants move.
    Grants,
    /// Models are fine-tuned and registered.
    Training,
    /// Inference calls are paid for.
    Payment,
    /// Paid calls are served.
    Serving,
    /// Served outputs are attributed to training data.
    Attribution,
    /// Harmful data is slashed; reward pools are paid out.
    Settlement,
    /// Stakers claim their share.
    StakingClaims,
}

/// Every stage, in the order an epoch runs them.
pub const PIPELINE: [Stage; 10] = [
    Stage::Governance,
    Stage::Arrivals,
    Stage::Review,
    Stage::Grants,
    Stage::Training,
    Stage::Payment,
    Stage::Serving,
    Stage::Attribution,
    Stage::Settlement,
    Stage::StakingClaims,
];

/// Attribution weight per contributing identity `(datanet, contributor)`.
pub type Weights = BTreeMap<(usize, ContributorId), f64>;

/// What one stage hands the next within an epoch (attacks see it in their hooks).
#[derive(Default)]
pub struct EpochState {
    /// The epoch, from 0.
    pub number: u32,
    /// Calls paid per model (Payment -> Serving).
    pub paid: Vec<u64>,
    /// What each model served (Serving -> Attribution).
    served: Vec<Served>,
    /// Attribution weights per model, `None` for models that served nothing
    /// (Attribution -> Settlement).
    weights: Vec<Option<Weights>>,
}

/// Runs epoch `epoch`: every stage of [`PIPELINE`] in order, the attacks acting just before
/// and just after each ([`super::attacks::Attack::act`]), then closes the epoch's books and
/// moves the clock on.
pub(super) fn run_epoch<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    epoch: u32,
) -> Result<(), EngineError> {
    let mut state = EpochState {
        number: epoch,
        ..EpochState::default()
    };
    for stage in PIPELINE {
        let before = Moment::Before(stage);
        attacks::each(sim, |attack, sim| attack.act(before, sim, &mut state))?;
        run_stage(sim, stage, &mut state)?;
        let after = Moment::After(stage);
        attacks::each(sim, |attack, sim| attack.act(after, sim, &mut state))?;
    }
    sim.close_epoch(epoch)?;
    sim.chain.advance_time(sim.scenario.run.epoch_seconds)?;
    Ok(())
}

fn run_stage<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    stage: Stage,
    carry: &mut EpochState,
) -> Result<(), EngineError> {
    let epoch = carry.number;
    match stage {
        Stage::Arrivals => sim.contribute(epoch),
        Stage::Review => sim.review(epoch),
        Stage::Grants => sim.run_grants(epoch),
        Stage::Training => {
            let mut fresh = Vec::new();
            for m in 0..sim.models.len() {
                if sim.models[m].due(epoch)
                    && sim.train_model(m)?
                    && sim.models[m].chain_id.is_none()
                {
                    fresh.push(m);
                }
            }
            sim.register(epoch, &fresh)
        }
        Stage::Governance => {
            sim.advance_proposals(epoch)?;
            sim.propose(epoch)
        }
        Stage::Payment => {
            let demand = sim.demand();
            carry.paid = sim.pay(epoch, &demand)?;
            Ok(())
        }
        Stage::Serving => {
            carry.served = sim.serve(epoch, &carry.paid)?;
            sim.served += carry.served.iter().map(|s| s.len() as u64).sum::<u64>();
            Ok(())
        }
        Stage::Attribution => {
            carry.weights = Vec::with_capacity(carry.served.len());
            for (m, served) in carry.served.iter().enumerate() {
                let live = sim.models[m].chain_id.is_some() && served.len() > 0;
                carry.weights.push(match live {
                    true => Some(sim.attribution_weights(m, epoch, served)?),
                    false => None,
                });
            }
            Ok(())
        }
        Stage::Settlement => {
            for (m, weights) in std::mem::take(&mut carry.weights).into_iter().enumerate() {
                if let Some(weights) = weights {
                    sim.settle(epoch, m, &weights)?;
                }
            }
            Ok(())
        }
        Stage::StakingClaims => sim.claim_staking(epoch),
    }
}
