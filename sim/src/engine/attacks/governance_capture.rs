//! `governance_capture`: borrows stake to pass a governance proposal that makes its own key
//! the attributor of AttributionRewards, then pays every model's contributor pool to itself.
//!
//! It goes through StakingGovernance as every staker does. A vote weighs the stake held at
//! the proposal's snapshot (the second before it was proposed), so in its `start_epoch` it
//! stakes all its borrowed stake one block before it proposes
//! `AttributionRewards.setAttributor(<its key>)`, votes for at once and unstakes (repays the
//! loan) right after: the borrowed stake is held for a few blocks. The `[[stakers]]` who vote
//! recognise the proposal and vote against it at once. The attacker then queues and executes
//! the proposal when the vote and the timelock allow, unless the guardian
//! (`tokenomics.guardian`) cancels it first. Once its key is the attributor, just before
//! each epoch's settlement it pushes every model's settleable pool to itself
//! (`settlePush`). Its capital is its peak stake, its revenue the rewards it paid itself;
//! the report's "Attacks" row says whether its proposal was executed (`captured`).
//!
//! (On the contracts before issue 13 votes weighed the stake held when cast, and the
//! attacker voted late instead; a late vote now has no weight, `NoVotingPower`.)

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::{AttributionRewards, StakingGovernance};

use super::{Attack, Budget, Cast, Moment};
use crate::engine::actors::{AgentId, Role};
use crate::engine::epoch::{EpochState, Stage};
use crate::engine::governance::{self, Progress};
use crate::engine::txs::Action;
use crate::engine::{EngineError, Sim, open};
use crate::scenario::AttackKind;

/// One capturing key and how far its proposal got.
#[derive(Clone, Debug)]
struct Capturer {
    agent: AgentId,
    /// OPEN wei it borrows and stakes in all.
    stake: U256,
    /// Epoch it proposes in.
    start_epoch: u32,
    /// Its proposal's on-chain id, once opened.
    proposal: Option<U256>,
    /// Queued, executed or closed.
    progress: Progress,
}

/// The scenario's governance capturers, one agent per `count`.
#[derive(Default)]
pub struct Capturers(Vec<Capturer>);

impl<B: AutodiffBackend> Attack<B> for Capturers {
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError> {
        for (a, attacker) in cast.scenario.attackers_of(AttackKind::GovernanceCapture) {
            let stake = open(attacker.stake())?;
            for k in 0..attacker.count {
                self.0.push(Capturer {
                    agent: cast.actors.add(
                        format!("governance-capture-{a}-{k}"),
                        Role::Attacker(AttackKind::GovernanceCapture),
                    ),
                    stake,
                    start_epoch: attacker.start_epoch,
                    proposal: None,
                    progress: Progress::default(),
                });
            }
        }
        Ok(())
    }

    /// The borrowed stake.
    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let governance = sim.net.deployment.governance;
        Ok(self
            .0
            .iter()
            .map(|c| (c.agent, c.stake, governance))
            .collect())
    }

    /// After the governance stage each capturer moves its proposal on; just before the
    /// settlement, the attributor (if a capturer is) empties the pools.
    fn act(
        &mut self,
        at: Moment,
        sim: &mut Sim<B>,
        epoch: &mut EpochState,
    ) -> Result<(), EngineError> {
        match at {
            Moment::After(Stage::Governance) => self
                .0
                .iter_mut()
                .filter(|c| epoch.number >= c.start_epoch)
                .try_for_each(|c| c.govern(sim, epoch.number)),
            Moment::Before(Stage::Settlement) => {
                self.0.iter().try_for_each(|c| c.drain(sim, epoch.number))
            }
            _ => Ok(()),
        }
    }
}

impl Capturer {
    /// Opens the proposal (first time: stake, propose, vote, unstake), then queues and
    /// executes it when the chain allows.
    fn govern<B: AutodiffBackend>(
        &mut self,
        sim: &mut Sim<B>,
        epoch: u32,
    ) -> Result<(), EngineError> {
        if self.proposal.is_none() {
            self.propose(sim, epoch)?;
        }
        let Some(id) = self.proposal else {
            return Ok(());
        };
        governance::advance(&mut sim.net, self.agent, id, &mut self.progress, epoch)
    }

    /// Stakes the borrowed stake, proposes itself as the attributor in a later block (the
    /// snapshot is the second before the proposal), votes for, and unstakes; the voting
    /// stakers oppose at once. Nothing more happens if the proposal is refused.
    fn propose<B: AutodiffBackend>(
        &mut self,
        sim: &mut Sim<B>,
        epoch: u32,
    ) -> Result<(), EngineError> {
        let d = sim.net.deployment;
        let account = sim.net.address(self.agent);
        let stake = Action::call(
            self.agent,
            "stake (capture)",
            d.governance,
            &StakingGovernance::stakeCall { amount: self.stake },
        );
        sim.net.send(epoch, vec![stake])?;
        let propose = Action::call(
            self.agent,
            "propose (capture)",
            d.governance,
            &StakingGovernance::proposeCall {
                target: d.rewards,
                data: AttributionRewards::setAttributorCall { a: account }
                    .abi_encode()
                    .into(),
                description: "set the attributor".to_string(),
            },
        );
        let receipt = sim.net.send(epoch, vec![propose])?.pop().flatten();
        if let Some(receipt) = receipt {
            let id = receipt
                .event::<StakingGovernance::ProposalCreated>(d.governance)?
                .proposalId;
            self.proposal = Some(id);
            let vote = Action::call(
                self.agent,
                "vote (capture)",
                d.governance,
                &StakingGovernance::voteCall { id, support: true },
            );
            sim.net.send(epoch, vec![vote])?;
            governance::oppose(&mut sim.net, &sim.scenario, &sim.stakers, id, epoch)?;
        }
        let staked = sim
            .net
            .view(d.governance, &StakingGovernance::stakeOfCall(account))?;
        let unstake = Action::call(
            self.agent,
            "unstake (capture)",
            d.governance,
            &StakingGovernance::unstakeCall { amount: staked },
        );
        sim.net.send(epoch, vec![unstake])?;
        Ok(())
    }

    /// If its key is the attributor, pays every registered model's settleable pool (what the
    /// model accrued up to the contract's current epoch) to itself.
    fn drain<B: AutodiffBackend>(&self, sim: &mut Sim<B>, epoch: u32) -> Result<(), EngineError> {
        let rewards = sim.net.deployment.rewards;
        let account = sim.net.address(self.agent);
        if sim
            .net
            .view(rewards, &AttributionRewards::attributorCall {})?
            != account
        {
            return Ok(());
        }
        let now = sim
            .net
            .view(rewards, &AttributionRewards::currentEpochCall {})?;
        let mut actions = Vec::new();
        for id in sim.models.iter().filter_map(|m| m.chain_id) {
            let settleable = AttributionRewards::settleableCall {
                modelId: id,
                epoch: now,
            };
            let pool = sim.net.view(rewards, &settleable)?;
            if !pool.is_zero() {
                actions.push(Action::call(
                    self.agent,
                    "settle rewards (capture)",
                    rewards,
                    &AttributionRewards::settlePushCall {
                        modelId: id,
                        epoch: now,
                        total: pool,
                        recipients: vec![account],
                        amounts: vec![pool],
                    },
                ));
            }
        }
        sim.net.send(epoch, actions)?;
        Ok(())
    }
}
