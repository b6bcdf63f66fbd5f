//! One epoch as a pipeline of stages, in the order they run (written here once):
//!
//! 1. **Governance**: the guardian cancels proposals that hand over a role; proposals past
//!    their vote are queued, past their timelock executed (so
//!    an executed change holds for the whole epoch); this epoch's proposals are opened and
//!    voted on; governance capturers then move their own proposal on. First, so that a
//!    vote or timelock of whole epochs ends at an epoch's start however many blocks the
//!    epochs before it took.
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
//! 8. **Attribution**: every output each live model served is attributed to the
//!    contributors of its training data (influence or suffix-array spans).
//! 9. **Settlement and slashing**: a governance capturer that became the attributor first
//!    pays itself every contributor pool; the attributor slashes harmful contributions and
//!    pays each model's contributor pool by the reward rule's shares of the attribution
//!    weights (push or Merkle claims).
//! 10. **Staking claims**: stakers claim their fee share; just-in-time stakers claim and
//!     unstake.
//!
//! Then the epoch's books are closed and the simulated clock moves one epoch on. (The
//! `[[stakers]]` stake once, in setup, before epoch 0.)

use burn::tensor::backend::AutodiffBackend;

use super::attacks::{self, Moment};
use super::epoch::{EpochState, Stage};
use super::{
    EngineError, Sim, data, economy, factory, governance, grants, results, review, rewarding,
    slashing,
};

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
    results::close_epoch(&mut sim.net, &mut sim.epochs, epoch)?;
    sim.net.chain.advance_time(sim.scenario.run.epoch_seconds)?;
    Ok(())
}

/// Runs one stage: the function of its module, over the parts of the run it needs.
fn run_stage<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    stage: Stage,
    carry: &mut EpochState,
) -> Result<(), EngineError> {
    let epoch = carry.number;
    let Sim {
        scenario,
        net: chain,
        lab,
        committee,
        users,
        stakers,
        datanets,
        models,
        proposals,
        grants,
        evidence,
        smoothed,
        next_payer,
        ..
    } = sim;
    match stage {
        Stage::Governance => {
            governance::guardian_veto(chain, scenario, epoch)?;
            governance::advance_proposals(chain, proposals, epoch)?;
            governance::propose(chain, scenario, stakers, proposals, epoch)
        }
        Stage::Arrivals => data::contribute(chain, datanets, epoch),
        Stage::Review => review::review(chain, scenario, datanets, epoch),
        Stage::Grants => {
            grants::run_grants(chain, scenario, committee, grants, models, datanets, epoch)
        }
        Stage::Training => {
            let method = scenario.tokenomics.attribution.classifier;
            let trained = factory::train_due(lab, method, models, datanets, epoch)?;
            let fresh: Vec<usize> = trained
                .into_iter()
                .filter(|&m| models[m].chain_id.is_none())
                .collect();
            economy::register(chain, datanets, models, epoch, &fresh)
        }
        Stage::Payment => {
            let demand = economy::demand(scenario, models);
            carry.paid = economy::pay(chain, scenario, users, next_payer, models, epoch, &demand)?;
            Ok(())
        }
        Stage::Serving => {
            carry.served = factory::serve(lab, models, datanets, epoch, &carry.paid)?;
            Ok(())
        }
        Stage::Attribution => {
            let rule = scenario.tokenomics.slash_rule;
            evidence.resize_with(models.len(), Default::default);
            carry.weights = Vec::with_capacity(carry.served.len());
            let each = models
                .iter_mut()
                .zip(&carry.served)
                .zip(&carry.paid)
                .zip(evidence);
            for (((model, served), &paid), evidence) in each {
                if model.chain_id.is_some() {
                    slashing::observe(rule, lab, model, datanets, evidence)?;
                }
                let live = model.chain_id.is_some() && served.len() > 0;
                // Every paid call of a serving model is answered; a language model decodes
                // only a sample of them (the rest are modelled).
                if served.len() > 0 {
                    model.outputs.served += paid.max(served.len() as u64);
                }
                carry.weights.push(match live {
                    true => {
                        model.outputs.attributed += served.len() as u64;
                        let mut found = factory::attribution_weights(lab, model, datanets, served)?;
                        model.outputs.samples.append(&mut found.samples);
                        Some(found)
                    }
                    false => None,
                });
            }
            Ok(())
        }
        Stage::Settlement => {
            let weights = std::mem::take(&mut carry.weights);
            smoothed.resize_with(models.len(), Default::default);
            let each = models
                .iter()
                .zip(weights)
                .zip(evidence.iter())
                .zip(smoothed);
            for (((model, weights), evidence), smoothed) in each {
                let Some(id) = model.chain_id else { continue };
                let seed = scenario.run.seed;
                let harmful = slashing::harmful(
                    &scenario.tokenomics,
                    seed,
                    &model.name,
                    epoch,
                    weights.as_ref().map(|w| &w.net),
                    evidence,
                );
                economy::slash(chain, datanets, epoch, &harmful)?;
                if let (Some(weights), Some(trained)) = (weights, &model.trained) {
                    let rule = scenario.tokenomics.reward_rule;
                    let volume = trained.volume(datanets);
                    let shares = rewarding::shares(rule, &weights, smoothed, &volume);
                    economy::settle(chain, scenario, datanets, id, epoch, &shares)?;
                }
            }
            Ok(())
        }
        Stage::StakingClaims => economy::claim_staking(chain, stakers, epoch),
    }
}
