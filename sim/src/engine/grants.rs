//! OpenCircle grants during a run: teams of each cohort apply, the committee approves while
//! the cohort's budget lasts, milestones are released or the grant fails by the cohort's
//! success probability, and teams that finish ship a model that brings its own demand.

use alloy_primitives::{U256, keccak256};
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::GrantVault;
use olsim_ml::data::rng::stream;
use rand::RngExt;

use super::actors::{AgentId, Role};
use super::data::DatanetState;
use super::models::{ModelState, OutputCounts, datanet_index, model_seed};
use super::net::Net;
use super::txs::Action;
use super::{EngineError, open};
use olsim_ml::model::{LoraConfig, MlpConfig, TrainConfig};

use crate::scenario::{DEFAULT_HIDDEN, ModelKind, Scenario, Tier};

/// One funded grant.
#[derive(Clone, Debug)]
pub struct GrantState {
    /// Index of its cohort in `[grants.cohorts]`.
    pub cohort: usize,
    /// The tier.
    pub tier: Tier,
    /// The team.
    pub grantee: AgentId,
    /// On-chain grant id.
    pub id: U256,
    /// USD granted.
    pub usd: u64,
    /// Milestones released so far.
    pub released: u8,
    /// Next epoch a milestone is due.
    pub next_due: u32,
    /// `Some(true)` completed, `Some(false)` failed, `None` running.
    pub outcome: Option<bool>,
}

/// Cohorts of this epoch apply and are approved while their budget lasts; running grants
/// whose milestone is due deliver it (or fail).
pub(super) fn run_grants<B: AutodiffBackend>(
    chain: &mut Net,
    scenario: &Scenario,
    committee: &[AgentId],
    grants: &mut Vec<GrantState>,
    models: &mut Vec<ModelState<B>>,
    datanets: &[DatanetState],
    epoch: u32,
) -> Result<(), EngineError> {
    open_cohorts(chain, scenario, committee, grants, epoch)?;
    milestones(chain, scenario, committee, grants, models, datanets, epoch)
}

/// The cohorts opening this epoch: their teams apply, and the committee approves each
/// while the cohort's budget lasts.
fn open_cohorts(
    chain: &mut Net,
    scenario: &Scenario,
    committee: &[AgentId],
    grants: &mut Vec<GrantState>,
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let quorum = usize::from(scenario.tokenomics.grant_approvals);
    for (c, cohort) in scenario.grants.cohorts.iter().enumerate() {
        if cohort.epoch != epoch {
            continue;
        }
        let mut rng = stream(scenario.run.seed, &format!("engine/grants/cohort-{c}"));
        let mut budget = cohort.budget();
        let range = cohort.amount();
        for team in 0..cohort.teams {
            let usd = rng.random_range(range.lo..=range.hi);
            if usd > budget {
                break;
            }
            budget -= usd;
            let grantee = chain
                .actors
                .add(format!("grantee-{c}-{team}"), Role::Grantee);
            let address = chain.address(grantee);
            chain
                .chain
                .deposit(address, U256::from(10u64).pow(U256::from(18)))?;
            let apply = Action::call(
                grantee,
                "apply for grant",
                d.grants,
                &GrantVault::applyForGrantCall {
                    tier: cohort.tier.index(),
                    amountUsd: U256::from(usd),
                    milestones: cohort.milestones,
                    proposalHash: keccak256(format!("grant/{c}/{team}")),
                },
            );
            let Some(receipt) = chain.send(epoch, vec![apply])?.pop().flatten() else {
                continue;
            };
            let id = receipt.event::<GrantVault::GrantApplied>(d.grants)?.grantId;
            let approvals = committee
                .iter()
                .take(quorum)
                .map(|&member| {
                    Action::call(
                        member,
                        "approve grant",
                        d.grants,
                        &GrantVault::approveGrantCall { grantId: id },
                    )
                })
                .collect();
            let receipts = chain.send(epoch, approvals)?;
            if receipts.iter().any(Option::is_none) {
                continue;
            }
            grants.push(GrantState {
                cohort: c,
                tier: cohort.tier,
                grantee,
                id,
                usd,
                released: 0,
                next_due: epoch + cohort.milestone_epochs,
                outcome: None,
            });
        }
    }
    Ok(())
}

/// Running grants whose milestone is due deliver it (released) or fail, by the cohort's
/// success probability; a team that finishes ships a model from next epoch on.
fn milestones<B: AutodiffBackend>(
    chain: &mut Net,
    scenario: &Scenario,
    committee: &[AgentId],
    grants: &mut [GrantState],
    models: &mut Vec<ModelState<B>>,
    datanets: &[DatanetState],
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let seed = scenario.run.seed;
    // Every decision on a running grant takes as many committee votes as its approval.
    let quorum = usize::from(scenario.tokenomics.grant_approvals);
    for (g, state) in grants.iter_mut().enumerate() {
        if state.outcome.is_some() || state.next_due != epoch {
            continue;
        }
        let cohort = &scenario.grants.cohorts[state.cohort];
        let mut rng = stream(
            seed,
            &format!("engine/grants/{}/milestone-{}", state.id, state.released),
        );
        let delivered = rng.random_bool(cohort.success_probability);
        let votes = committee
            .iter()
            .take(quorum)
            .map(|&member| match delivered {
                true => Action::call(
                    member,
                    "vote to release milestone",
                    d.grants,
                    &GrantVault::releaseMilestoneCall { grantId: state.id },
                ),
                false => Action::call(
                    member,
                    "vote to fail grant",
                    d.grants,
                    &GrantVault::failGrantCall { grantId: state.id },
                ),
            })
            .collect();
        let receipts = chain.send(epoch, votes)?;
        if receipts.is_empty() || receipts.iter().any(Option::is_none) {
            continue;
        }
        if !delivered {
            state.outcome = Some(false);
            continue;
        }
        state.released += 1;
        state.next_due = epoch + cohort.milestone_epochs;
        if state.released == cohort.milestones {
            state.outcome = Some(true);
            // The team ships a model on the cohort's Datanet from next epoch on, shaped
            // like the scenario's first model of that kind (or the defaults).
            let n = datanet_index(datanets, &cohort.datanet)?;
            let kind = cohort.model_kind;
            let template = models
                .iter()
                .find(|m| m.kind == kind)
                .map(|m| (m.mlp.clone(), m.lora.clone(), m.training.clone()));
            let name = format!("grant-{}", state.id);
            let (mlp, lora, mut training) = match template {
                Some(t) => t,
                None => (
                    (kind == ModelKind::Classifier).then(|| {
                        MlpConfig::binary(
                            scenario.datanets[n].domain.dim(),
                            &DEFAULT_HIDDEN.map(|h| h as usize),
                        )
                    }),
                    LoraConfig::new(2, 4.0),
                    TrainConfig {
                        seed,
                        ..TrainConfig::default()
                    },
                ),
            };
            training.seed = model_seed(seed, &name);
            models.push(ModelState {
                name,
                owner: state.grantee,
                datanets: vec![n],
                price: cohort.price,
                price_wei: open(cohort.price)?,
                weight: cohort.weight,
                train_epoch: epoch + 1,
                retrain_every: 0,
                kind,
                mlp,
                lora,
                training,
                extra_calls: cohort.calls_per_epoch,
                grant: Some((g, cohort.tier)),
                chain_id: None,
                trained: None,
                version: 0,
                outputs: OutputCounts::default(),
            });
        }
    }
    Ok(())
}
