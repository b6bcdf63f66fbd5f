//! Governance proposals during a run: opened by a staker group, voted by every group's
//! participating stakers, queued after the voting period and executed after the timelock,
//! all through StakingGovernance; and the guardian's veto of role changes.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::SolCall;
use olsim_chain::Deployment;
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, GrantVault, InferenceMarket, StakingGovernance,
};

use super::actors::AgentId;
use super::net::Net;
use super::txs::Action;
use super::{EngineError, to_open};
use crate::report::ProposalResult;
use crate::scenario::{ParamChange, Scenario};

/// How far a proposal got, as the engine saw its transactions succeed.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Epoch it was queued in.
    pub queued: Option<u32>,
    /// Epoch it was executed in.
    pub executed: Option<u32>,
    /// Whether it can no longer advance (defeated, canceled or expired).
    pub closed: bool,
}

/// A proposal that was opened on chain.
#[derive(Clone, Debug)]
pub struct ProposalState {
    /// Index in `[[proposals]]`.
    pub index: usize,
    /// On-chain id.
    pub id: U256,
    /// Epoch it was opened in.
    pub opened: u32,
    /// Queued, executed or closed.
    pub progress: Progress,
}

/// The governed call a parameter change makes: `(target contract, calldata)`.
fn call_of(d: &Deployment, change: &ParamChange) -> (Address, Bytes) {
    let (to, data) = match *change {
        ParamChange::MinStake(v) => (
            d.datanets,
            DatanetRegistry::setMinStakeCall { v }.abi_encode(),
        ),
        ParamChange::SlashBps(v) => (
            d.datanets,
            DatanetRegistry::setSlashBpsCall { v }.abi_encode(),
        ),
        ParamChange::LockPeriod(v) => (
            d.datanets,
            DatanetRegistry::setLockPeriodCall { v }.abi_encode(),
        ),
        ParamChange::ReviewQuorum(v) => (
            d.datanets,
            DatanetRegistry::setReviewQuorumCall { v }.abi_encode(),
        ),
        ParamChange::FeeSplit(s) => (
            d.market,
            InferenceMarket::setFeeSplitCall {
                contributorsBps_: s.contributors_bps,
                ownerBps_: s.owner_bps,
                stakersBps_: s.stakers_bps,
                treasuryBps_: s.treasury_bps,
            }
            .abi_encode(),
        ),
        ParamChange::ProposalThreshold(v) => (
            d.governance,
            StakingGovernance::setProposalThresholdCall { v }.abi_encode(),
        ),
        ParamChange::VotingPeriod(v) => (
            d.governance,
            StakingGovernance::setVotingPeriodCall { v }.abi_encode(),
        ),
        ParamChange::TimelockDelay(v) => (
            d.governance,
            StakingGovernance::setTimelockDelayCall { v }.abi_encode(),
        ),
        ParamChange::QuorumBps(v) => (
            d.governance,
            StakingGovernance::setQuorumBpsCall { v }.abi_encode(),
        ),
        ParamChange::OpenPriceUsdE8(v) => (
            d.grants,
            GrantVault::setOpenPriceCall { priceUsdE8: v }.abi_encode(),
        ),
    };
    (to, data.into())
}

/// How `voters` (each with its stake) vote so that the stake voting for is `support` of
/// the voting stake, as near as whole voters allow without going over: in order, a voter
/// votes for while its stake still fits under `support` times the voting stake, and against
/// otherwise. Support is a share of stake, not of voters: one whale outweighs many small
/// stakers.
fn split_votes(voters: &[(AgentId, U256)], support: f64) -> Vec<(AgentId, bool)> {
    const PARTS: u64 = 1_000_000;
    let total: U256 = voters.iter().map(|v| v.1).sum();
    let target = total * U256::from((support.clamp(0.0, 1.0) * PARTS as f64).round() as u64)
        / U256::from(PARTS);
    let mut yes = U256::ZERO;
    voters
        .iter()
        .map(|&(voter, stake)| {
            let support = yes + stake <= target;
            if support {
                yes += stake;
            }
            (voter, support)
        })
        .collect()
}

/// Opens this epoch's proposals and has the stakers vote on them.
pub(super) fn propose(
    chain: &mut Net,
    scenario: &Scenario,
    stakers: &[(usize, AgentId)],
    proposals: &mut Vec<ProposalState>,
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let due = scenario
        .proposals
        .iter()
        .enumerate()
        .filter(|(_, p)| p.epoch == epoch);
    for (index, p) in due {
        let change = p
            .change()
            .map_err(|e| EngineError::Scenario(e.to_string()))?;
        let (target, data) = call_of(&d, &change);
        let Some(group) = scenario.stakers.iter().position(|g| g.name == p.proposer) else {
            return Err(EngineError::Scenario(format!(
                "proposal {index}: unknown staker group `{}`",
                p.proposer
            )));
        };
        let Some(&(_, proposer)) = stakers.iter().find(|(g, _)| *g == group) else {
            continue;
        };
        let description = if p.description.is_empty() {
            format!("set {} to {}", p.parameter.name(), p.value)
        } else {
            p.description.clone()
        };
        let open = Action::call(
            proposer,
            "propose",
            d.governance,
            &StakingGovernance::proposeCall {
                target,
                data,
                description,
            },
        );
        let Some(receipt) = chain.send(epoch, vec![open])?.pop().flatten() else {
            continue;
        };
        let id = receipt
            .event::<StakingGovernance::ProposalCreated>(d.governance)?
            .proposalId;
        let voters = participants(chain, scenario, stakers)?;
        let votes = split_votes(&voters, p.support)
            .into_iter()
            .map(|(voter, support)| {
                Action::call(
                    voter,
                    "vote",
                    d.governance,
                    &StakingGovernance::voteCall { id, support },
                )
            })
            .collect();
        chain.send(epoch, votes)?;
        proposals.push(ProposalState {
            index,
            id,
            opened: epoch,
            progress: Progress::default(),
        });
    }
    Ok(())
}

/// The `[[stakers]]` members who vote (each group's first `participation` share of its
/// members), with their stake now.
fn participants(
    chain: &mut Net,
    scenario: &Scenario,
    stakers: &[(usize, AgentId)],
) -> Result<Vec<(AgentId, U256)>, EngineError> {
    let governance = chain.deployment.governance;
    let mut voters = Vec::new();
    for (g, group) in scenario.stakers.iter().enumerate() {
        let members: Vec<_> = stakers.iter().filter(|(x, _)| *x == g).collect();
        let n = (group.participation * members.len() as f64).round() as usize;
        for &&(_, voter) in members.iter().take(n) {
            let account = chain.address(voter);
            let stake = chain.view(governance, &StakingGovernance::stakeOfCall(account))?;
            voters.push((voter, stake));
        }
    }
    Ok(voters)
}

/// The stakers who vote (as for the scenario's proposals) vote against proposal `id`: one
/// they recognise as hostile.
pub(super) fn oppose(
    chain: &mut Net,
    scenario: &Scenario,
    stakers: &[(usize, AgentId)],
    id: U256,
    epoch: u32,
) -> Result<(), EngineError> {
    let governance = chain.deployment.governance;
    let votes = participants(chain, scenario, stakers)?
        .into_iter()
        .map(|(voter, _)| {
            Action::call(
                voter,
                "vote",
                governance,
                &StakingGovernance::voteCall { id, support: false },
            )
        })
        .collect();
    chain.send(epoch, votes)?;
    Ok(())
}

/// Whether `data` hands over a protocol role: a new attributor, a new guardian, or a change
/// to the calls governance may make.
fn changes_a_role(data: &[u8]) -> bool {
    let Some(selector) = data.get(..4) else {
        return false;
    };
    [
        AttributionRewards::setAttributorCall::SELECTOR,
        DatanetRegistry::setAttributorCall::SELECTOR,
        StakingGovernance::setGuardianCall::SELECTOR,
        StakingGovernance::setAllowedCallCall::SELECTOR,
    ]
    .iter()
    .any(|s| s.as_slice() == selector)
}

/// The guardian's rule (`tokenomics.guardian`): it cancels every proposal still open to
/// execution (active, passed or queued) that hands over a protocol role. A rule on what a
/// proposal does, not on who proposed it: the scenario's own `[[proposals]]` change
/// parameters only, never roles.
pub(super) fn guardian_veto(
    chain: &mut Net,
    scenario: &Scenario,
    epoch: u32,
) -> Result<(), EngineError> {
    if !scenario.tokenomics.guardian {
        return Ok(());
    }
    let d = chain.deployment;
    let count = chain.view(d.governance, &StakingGovernance::proposalCountCall {})?;
    let mut vetoes = Vec::new();
    for id in (1..=count.to::<u64>()).map(U256::from) {
        // ProposalState: Pending (passed) = 0, Active = 1, Queued = 3 can still execute.
        let state = chain.view(d.governance, &StakingGovernance::stateCall { id })?;
        if !matches!(state, 0 | 1 | 3) {
            continue;
        }
        let proposal = chain.view(d.governance, &StakingGovernance::proposalsCall { id })?;
        if changes_a_role(&proposal.data) {
            vetoes.push(Action::call(
                chain.guardian,
                "guardian cancels a role change",
                d.governance,
                &StakingGovernance::cancelCall { id },
            ));
        }
    }
    chain.send(epoch, vetoes)?;
    Ok(())
}

/// Queues proposals whose vote has ended and executes those past their timelock.
pub(super) fn advance_proposals(
    chain: &mut Net,
    proposals: &mut [ProposalState],
    epoch: u32,
) -> Result<(), EngineError> {
    let admin = chain.admin;
    for proposal in proposals.iter_mut() {
        advance(chain, admin, proposal.id, &mut proposal.progress, epoch)?;
    }
    Ok(())
}

/// `by` queues proposal `id` if its vote passed, and executes it if it is queued and its
/// timelock has run out; `progress` records what succeeded.
pub(super) fn advance(
    chain: &mut Net,
    by: AgentId,
    id: U256,
    progress: &mut Progress,
    epoch: u32,
) -> Result<(), EngineError> {
    let governance = chain.deployment.governance;
    // Queue a passed proposal, then execute it in the same stage if its timelock has
    // already run out (a zero delay), so it is not a whole epoch late.
    for _ in 0..2 {
        if progress.executed.is_some() || progress.closed {
            break;
        }
        let state = chain.view(governance, &StakingGovernance::stateCall { id })?;
        // ProposalState: Pending (passed) = 0, Active = 1, Defeated = 2, Queued = 3,
        // Executed = 4, Canceled = 5, Expired = 6.
        let call = match state {
            0 => Action::call(
                by,
                "queue proposal",
                governance,
                &StakingGovernance::queueCall { id },
            ),
            2 | 5 | 6 => {
                progress.closed = true;
                break;
            }
            3 => {
                let execute = Action::call(
                    by,
                    "execute proposal",
                    governance,
                    &StakingGovernance::executeCall { id },
                );
                // Executable in the next block? Ask the chain rather than send a
                // transaction that reverts with TimelockNotElapsed every epoch until then.
                if !chain.would_succeed(&execute)? {
                    break;
                }
                execute
            }
            // Still being voted on, or executed by someone else: nothing for `by` to do.
            1 | 4 => break,
            other => {
                return Err(EngineError::Scenario(format!(
                    "StakingGovernance reported proposal {id} in state {other}, which this \
                     olsim does not know (0 to 6)"
                )));
            }
        };
        if chain.send(epoch, vec![call])?.pop().flatten().is_none() {
            break;
        }
        if state == 0 {
            progress.queued = Some(epoch);
        } else {
            progress.executed = Some(epoch);
        }
    }
    Ok(())
}

/// The proposals for the report, with their on-chain vote totals.
pub(super) fn proposal_results(
    chain: &mut Net,
    scenario: &Scenario,
    proposals: &[ProposalState],
) -> Result<Vec<ProposalResult>, EngineError> {
    let d = chain.deployment;
    let mut out = Vec::new();
    for p in proposals {
        let onchain = chain.view(d.governance, &StakingGovernance::proposalsCall { id: p.id })?;
        let config = &scenario.proposals[p.index];
        let state = chain.view(d.governance, &StakingGovernance::stateCall { id: p.id })?;
        out.push(ProposalResult {
            description: format!("{} = {}", config.parameter.name(), config.value),
            proposed: p.opened,
            executed: p.progress.executed.is_some(),
            executed_epoch: p.progress.executed,
            state: state_name(state).to_string(),
            votes: [to_open(onchain.forVotes), to_open(onchain.againstVotes)],
        });
    }
    Ok(out)
}

/// The name of a StakingGovernance `ProposalState` (see its Solidity enum).
fn state_name(state: u8) -> &'static str {
    match state {
        0 => "passed",
        1 => "active",
        2 => "defeated",
        3 => "queued",
        4 => "executed",
        5 => "canceled",
        6 => "expired",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(x: u64) -> U256 {
        U256::from(x) * U256::from(10u64).pow(U256::from(18))
    }

    #[test]
    fn support_is_a_share_of_stake_not_of_voters() {
        // One 100k whale and eight 1k stakers, 30% support: the whale cannot vote for
        // without taking the for-share to 93%, so it votes against and the proposal has
        // 8k for, 100k against (counting voters, 30% of nine would be three for).
        let mut voters = vec![(AgentId(0), open(100_000))];
        voters.extend((1..9).map(|i| (AgentId(i), open(1_000))));
        let votes = split_votes(&voters, 0.3);
        assert_eq!(votes[0], (AgentId(0), false));
        assert!(votes[1..].iter().all(|v| v.1));
        // Equal stakes: exactly the share of voters.
        let equal: Vec<_> = (0..10).map(|i| (AgentId(i), open(5))).collect();
        let yes = split_votes(&equal, 0.7).iter().filter(|v| v.1).count();
        assert_eq!(yes, 7);
        assert!(split_votes(&equal, 1.0).iter().all(|v| v.1));
        assert!(split_votes(&equal, 0.0).iter().all(|v| !v.1));
    }
}
