//! `governance_capture`: borrows stake to pass a governance proposal that makes its own key
//! the attributor of AttributionRewards, then pays every model's contributor pool to itself.
//!
//! It goes through StakingGovernance as every staker does. In its `start_epoch` it stakes
//! the proposal threshold (read from the chain) and proposes
//! `AttributionRewards.setAttributor(<its key>)`; the `[[stakers]]` who vote recognise the
//! proposal and vote against it at once. Today's contracts weigh a vote by the voter's stake
//! when it is cast (audit finding M1), so the attacker stakes the rest of its borrowed stake
//! and votes for only in the last epoch before the vote ends, unstakes (repays the loan) as
//! soon as its vote lock lets it, and queues and executes the proposal when the vote and the
//! timelock allow. Once its key is the attributor, just before each epoch's settlement it
//! pushes every model's whole pool to itself (`settlePush`). Its capital is its peak stake,
//! its revenue the rewards it paid itself; the report's "Attacks" row says whether its
//! proposal was executed (`captured`).

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::{AttributionRewards, StakingGovernance};

use super::{Attack, Budget, Cast, Moment};
use crate::engine::actors::{AgentId, Role};
use crate::engine::economy::epoch_tag;
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
    /// Its proposal's on-chain id and the epoch it opened it in.
    proposal: Option<(U256, u32)>,
    /// Queued, executed or defeated.
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
    /// Opens the proposal (first time), votes for it in the last epoch before its vote
    /// ends, unstakes once unlocked, and queues and executes it when the chain allows.
    fn govern<B: AutodiffBackend>(
        &mut self,
        sim: &mut Sim<B>,
        epoch: u32,
    ) -> Result<(), EngineError> {
        if self.proposal.is_none() {
            self.propose(sim, epoch)?;
        }
        let Some((id, opened)) = self.proposal else {
            return Ok(());
        };
        if self.vote(sim, id, opened, epoch)? {
            self.unstake(sim, epoch)?;
        }
        governance::advance(&mut sim.net, self.agent, id, &mut self.progress, epoch)
    }

    /// Stakes up to the proposal threshold and proposes itself as the attributor; the
    /// voting stakers oppose at once (nothing happens if the proposal is refused).
    fn propose<B: AutodiffBackend>(
        &mut self,
        sim: &mut Sim<B>,
        epoch: u32,
    ) -> Result<(), EngineError> {
        let d = sim.net.deployment;
        let account = sim.net.address(self.agent);
        let threshold = sim
            .net
            .view(d.governance, &StakingGovernance::proposalThresholdCall {})?;
        let staked = sim
            .net
            .view(d.governance, &StakingGovernance::stakeOfCall(account))?;
        // The contract needs a stake of at least the threshold, and never zero.
        let needed = threshold.max(U256::from(1)).min(self.stake);
        let mut actions = Vec::new();
        if needed > staked {
            actions.push(Action::call(
                self.agent,
                "stake (to propose)",
                d.governance,
                &StakingGovernance::stakeCall {
                    amount: needed - staked,
                },
            ));
        }
        actions.push(Action::call(
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
        ));
        let Some(receipt) = sim.net.send(epoch, actions)?.pop().flatten() else {
            return Ok(());
        };
        let id = receipt
            .event::<StakingGovernance::ProposalCreated>(d.governance)?
            .proposalId;
        self.proposal = Some((id, epoch));
        governance::oppose(&mut sim.net, &sim.scenario, &sim.stakers, id, epoch)
    }

    /// If the vote on `id` (opened in epoch `opened`) is still open but will be closed by
    /// this stage of the next epoch, stakes the rest of the borrowed stake and votes for.
    /// Whether it has voted on `id` (now or before).
    fn vote<B: AutodiffBackend>(
        &self,
        sim: &mut Sim<B>,
        id: U256,
        opened: u32,
        epoch: u32,
    ) -> Result<bool, EngineError> {
        let governance = sim.net.deployment.governance;
        let account = sim.net.address(self.agent);
        let voted = StakingGovernance::hasVotedCall {
            _0: id,
            _1: account,
        };
        if sim.net.view(governance, &voted)? {
            return Ok(true);
        }
        // Each epoch moves the clock on by `epoch_seconds` and a few block times, so this
        // stage of the next epoch is at least `epoch + 1 - opened` epochs after the proposal.
        let p = sim
            .net
            .view(governance, &StakingGovernance::proposalsCall(id))?;
        let next = p.voteStart + u64::from(epoch + 1 - opened) * sim.scenario.run.epoch_seconds;
        // ProposalState Active = 1: the vote is open in the next block.
        let active = sim
            .net
            .view(governance, &StakingGovernance::stateCall { id })?
            == 1;
        if !(active && next >= p.voteEnd) {
            return Ok(false);
        }
        let staked = sim
            .net
            .view(governance, &StakingGovernance::stakeOfCall(account))?;
        let mut actions = Vec::new();
        if self.stake > staked {
            actions.push(Action::call(
                self.agent,
                "stake (to vote)",
                governance,
                &StakingGovernance::stakeCall {
                    amount: self.stake - staked,
                },
            ));
        }
        actions.push(Action::call(
            self.agent,
            "vote (capture)",
            governance,
            &StakingGovernance::voteCall { id, support: true },
        ));
        sim.net.send(epoch, actions)?;
        sim.net.view(governance, &voted)
    }

    /// Unstakes all it holds once its vote lock lets it (the borrowed stake goes back).
    fn unstake<B: AutodiffBackend>(&self, sim: &mut Sim<B>, epoch: u32) -> Result<(), EngineError> {
        let governance = sim.net.deployment.governance;
        let account = sim.net.address(self.agent);
        let staked = sim
            .net
            .view(governance, &StakingGovernance::stakeOfCall(account))?;
        if staked.is_zero() {
            return Ok(());
        }
        let unstake = Action::call(
            self.agent,
            "unstake (capture)",
            governance,
            &StakingGovernance::unstakeCall { amount: staked },
        );
        if sim.net.would_succeed(&unstake)? {
            sim.net.send(epoch, vec![unstake])?;
        }
        Ok(())
    }

    /// If its key is the attributor, pays every registered model's whole contributor pool
    /// to itself.
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
        let mut actions = Vec::new();
        for id in sim.models.iter().filter_map(|m| m.chain_id) {
            let pool = sim.net.view(rewards, &AttributionRewards::poolOfCall(id))?;
            if !pool.is_zero() {
                actions.push(Action::call(
                    self.agent,
                    "settle rewards (capture)",
                    rewards,
                    &AttributionRewards::settlePushCall {
                        modelId: id,
                        epoch: epoch_tag(epoch),
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
