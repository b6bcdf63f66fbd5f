//! `jit_staker`: stakes OPEN just before the epoch's inference payments and unstakes right
//! after them, to take the stakers' share of those fees without holding stake over time.
//!
//! StakingGovernance streams each fee's staker share over `rewardDuration` (one day by
//! default) to the stake held while it streams, so stake that arrives in the block before
//! the payments and leaves after them earns only the seconds' worth it held (before the
//! contracts issue's M2 fix it earned as much as stake held all epoch). The attacker uses
//! only the calls every staker has: `stake`, `claimRewards`, `unstake`. Its capital is its
//! stake, its revenue the staking rewards it claims (the report's "Attacks" table).

use alloy_primitives::U256;
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::StakingGovernance;

use super::{Attack, Budget, Cast, Moment};
use crate::engine::actors::{AgentId, Role};
use crate::engine::epoch::{EpochState, Stage};
use crate::engine::txs::Action;
use crate::engine::{EngineError, Sim, open};
use crate::scenario::AttackKind;

/// One just-in-time staking key.
#[derive(Clone, Copy, Debug)]
struct JitStaker {
    agent: AgentId,
    /// OPEN wei it stakes each epoch.
    stake: U256,
    /// First epoch it acts in.
    start_epoch: u32,
}

/// The scenario's just-in-time stakers, one agent per `count`.
#[derive(Default)]
pub struct JitStakers(Vec<JitStaker>);

impl<B: AutodiffBackend> Attack<B> for JitStakers {
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError> {
        for (a, attacker) in cast.scenario.attackers_of(AttackKind::JitStaker) {
            let stake = open(attacker.stake())?;
            for k in 0..attacker.count {
                self.0.push(JitStaker {
                    agent: cast.actors.add(
                        format!("jit-staker-{a}-{k}"),
                        Role::Attacker(AttackKind::JitStaker),
                    ),
                    stake,
                    start_epoch: attacker.start_epoch,
                });
            }
        }
        Ok(())
    }

    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let governance = sim.net.deployment.governance;
        Ok(self
            .0
            .iter()
            .map(|j| (j.agent, j.stake, governance))
            .collect())
    }

    /// Just before the payments every active JIT staker stakes; once stakers have claimed,
    /// each claims what its stake earned and unstakes all it holds.
    fn act(
        &mut self,
        at: Moment,
        sim: &mut Sim<B>,
        epoch: &mut EpochState,
    ) -> Result<(), EngineError> {
        match at {
            Moment::Before(Stage::Payment) => self.stake(sim, epoch.number),
            Moment::After(Stage::StakingClaims) => self.unstake(sim, epoch.number),
            _ => Ok(()),
        }
    }
}

impl JitStakers {
    fn stake<B: AutodiffBackend>(&self, sim: &mut Sim<B>, epoch: u32) -> Result<(), EngineError> {
        let governance = sim.net.deployment.governance;
        let actions = self
            .0
            .iter()
            .filter(|j| epoch >= j.start_epoch)
            .map(|j| {
                Action::call(
                    j.agent,
                    "stake (just in time)",
                    governance,
                    &StakingGovernance::stakeCall { amount: j.stake },
                )
            })
            .collect();
        sim.net.send(epoch, actions)?;
        Ok(())
    }

    fn unstake<B: AutodiffBackend>(&self, sim: &mut Sim<B>, epoch: u32) -> Result<(), EngineError> {
        let governance = sim.net.deployment.governance;
        let mut actions = Vec::new();
        for j in self.0.iter().filter(|j| epoch >= j.start_epoch) {
            let account = sim.net.actors.address(j.agent);
            let pending = sim.net.view(
                governance,
                &StakingGovernance::pendingRewardsCall { account },
            )?;
            if !pending.is_zero() {
                actions.push(Action::call(
                    j.agent,
                    "claim staking rewards",
                    governance,
                    &StakingGovernance::claimRewardsCall {},
                ));
            }
            let staked = sim
                .net
                .view(governance, &StakingGovernance::stakeOfCall(account))?;
            if !staked.is_zero() {
                actions.push(Action::call(
                    j.agent,
                    "unstake (just in time)",
                    governance,
                    &StakingGovernance::unstakeCall { amount: staked },
                ));
            }
        }
        sim.net.send(epoch, actions)?;
        Ok(())
    }
}
