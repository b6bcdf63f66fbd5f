//! OpenCircle grants during a run: teams of each cohort apply, the committee approves while
//! the cohort's budget lasts, milestones are released or the grant fails by the cohort's
//! success probability, and teams that finish ship a model that brings its own demand.

use alloy_primitives::{U256, keccak256};
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::GrantVault;
use olsim_ml::data::rng::stream;
use rand::RngExt;

use super::actors::{AgentId, Role};
use super::models::{ModelState, datanet_index, model_seed};
use super::txs::Action;
use super::{EngineError, Sim, open};
use olsim_ml::model::{LoraConfig, MlpConfig, TrainConfig};

use crate::scenario::{DEFAULT_HIDDEN, ModelKind, Tier};

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

impl<B: AutodiffBackend> Sim<B> {
    /// Cohorts of this epoch apply and are approved while their budget lasts; running grants
    /// whose milestone is due deliver it (or fail).
    pub(super) fn run_grants(&mut self, epoch: u32) -> Result<(), EngineError> {
        self.open_cohorts(epoch)?;
        self.milestones(epoch)
    }

    fn open_cohorts(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let quorum = usize::from(self.scenario.tokenomics.grant_approvals);
        for c in 0..self.scenario.grants.cohorts.len() {
            let cohort = self.scenario.grants.cohorts[c].clone();
            if cohort.epoch != epoch {
                continue;
            }
            let mut rng = stream(self.seed, &format!("engine/grants/cohort-{c}"));
            let mut budget = cohort.budget();
            let range = cohort.amount();
            for team in 0..cohort.teams {
                let usd = rng.random_range(range.lo..=range.hi);
                if usd > budget {
                    break;
                }
                budget -= usd;
                let grantee = self
                    .actors
                    .add(format!("grantee-{c}-{team}"), Role::Grantee);
                let address = self.actors.address(grantee);
                self.chain
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
                let Some(receipt) = self.send(epoch, vec![apply])?.pop().flatten() else {
                    continue;
                };
                let id = receipt.event::<GrantVault::GrantApplied>(d.grants)?.grantId;
                let approvals = self
                    .committee
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
                let receipts = self.send(epoch, approvals)?;
                if receipts.iter().any(Option::is_none) {
                    continue;
                }
                self.grants.push(GrantState {
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

    fn milestones(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let Some(&member) = self.committee.first() else {
            return Ok(());
        };
        for g in 0..self.grants.len() {
            let grant = self.grants[g].clone();
            if grant.outcome.is_some() || grant.next_due != epoch {
                continue;
            }
            let cohort = self.scenario.grants.cohorts[grant.cohort].clone();
            let mut rng = stream(
                self.seed,
                &format!("engine/grants/{}/milestone-{}", grant.id, grant.released),
            );
            let delivered = rng.random_bool(cohort.success_probability);
            let action = if delivered {
                Action::call(
                    member,
                    "release milestone",
                    d.grants,
                    &GrantVault::releaseMilestoneCall { grantId: grant.id },
                )
            } else {
                Action::call(
                    member,
                    "fail grant",
                    d.grants,
                    &GrantVault::failGrantCall { grantId: grant.id },
                )
            };
            if self.send(epoch, vec![action])?.pop().flatten().is_none() {
                continue;
            }
            let state = &mut self.grants[g];
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
                let n = datanet_index(&self.datanets, &cohort.datanet)?;
                let kind = cohort.model_kind;
                let template = self
                    .models
                    .iter()
                    .find(|m| m.kind == kind)
                    .map(|m| (m.mlp.clone(), m.lora.clone(), m.training.clone()));
                let name = format!("grant-{}", grant.id);
                let (mlp, lora, mut training) = match template {
                    Some(t) => t,
                    None => (
                        (kind == ModelKind::Classifier).then(|| {
                            MlpConfig::binary(
                                self.scenario.datanets[n].domain.dim(),
                                &DEFAULT_HIDDEN.map(|h| h as usize),
                            )
                        }),
                        LoraConfig::new(2, 4.0),
                        TrainConfig {
                            seed: self.seed,
                            ..TrainConfig::default()
                        },
                    ),
                };
                training.seed = model_seed(self.seed, &name);
                self.models.push(ModelState {
                    name,
                    owner: grant.grantee,
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
                });
            }
        }
        Ok(())
    }
}
