//! `jit_staker`: stakes OPEN just before the epoch's inference payments and unstakes right
//! after them, to take the stakers' share of those fees without holding stake over time.
//!
//! StakingGovernance pays each fee's staker share to whoever is staked when the market
//! notifies it, pro rata to stake, so stake that arrives in the block before the payments
//! and leaves after them earns as much as stake held all epoch. The attacker uses only the
//! calls every staker has: `stake`, `claimRewards`, `unstake`. Its capital is its stake, its
//! revenue the staking rewards it claims (the report's "Attacks" table).

use alloy_primitives::U256;
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::client::view;
use olsim_chain::contracts::StakingGovernance;

use crate::engine::actors::{Actors, AgentId, Role};
use crate::engine::txs::Action;
use crate::engine::{EngineError, Sim, open};
use crate::scenario::{AttackKind, Scenario};

/// One just-in-time staking key.
#[derive(Clone, Copy, Debug)]
pub struct JitStaker {
    /// Its agent.
    pub agent: AgentId,
    /// OPEN wei it stakes each epoch.
    pub stake: U256,
    /// First epoch it acts in.
    pub start_epoch: u32,
}

/// The scenario's just-in-time stakers, one agent per `count`.
pub fn agents(scenario: &Scenario, actors: &mut Actors) -> Result<Vec<JitStaker>, EngineError> {
    let mut out = Vec::new();
    for (a, attacker) in scenario.attackers.iter().enumerate() {
        if attacker.kind != AttackKind::JitStaker {
            continue;
        }
        let stake = open(attacker.stake())?;
        for k in 0..attacker.count {
            out.push(JitStaker {
                agent: actors.add(
                    format!("jit-staker-{a}-{k}"),
                    Role::Attacker(AttackKind::JitStaker),
                ),
                stake,
                start_epoch: attacker.start_epoch,
            });
        }
    }
    Ok(out)
}

impl<B: AutodiffBackend> Sim<B> {
    /// Just before the epoch's payments: every active JIT staker stakes.
    pub(crate) fn jit_stake(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let actions = self
            .jit_stakers
            .iter()
            .filter(|j| epoch >= j.start_epoch)
            .map(|j| {
                Action::call(
                    j.agent,
                    "stake (just in time)",
                    d.governance,
                    &StakingGovernance::stakeCall { amount: j.stake },
                )
            })
            .collect();
        self.send(epoch, actions)?;
        Ok(())
    }

    /// Right after the payments: each JIT staker claims what its stake earned and unstakes
    /// all it holds.
    pub(crate) fn jit_unstake(&mut self, epoch: u32) -> Result<(), EngineError> {
        let d = self.deployment;
        let mut actions = Vec::new();
        for j in self.jit_stakers.clone() {
            if epoch < j.start_epoch {
                continue;
            }
            let account = self.actors.address(j.agent);
            let pending = view(
                self.chain.as_mut(),
                d.governance,
                &StakingGovernance::pendingRewardsCall { account },
            )?;
            if !pending.is_zero() {
                actions.push(Action::call(
                    j.agent,
                    "claim staking rewards",
                    d.governance,
                    &StakingGovernance::claimRewardsCall {},
                ));
            }
            let staked = view(
                self.chain.as_mut(),
                d.governance,
                &StakingGovernance::stakeOfCall(account),
            )?;
            if !staked.is_zero() {
                actions.push(Action::call(
                    j.agent,
                    "unstake (just in time)",
                    d.governance,
                    &StakingGovernance::unstakeCall { amount: staked },
                ));
            }
        }
        self.send(epoch, actions)?;
        Ok(())
    }
}
