//! What the chain's event logs say happened, gathered from every receipt as it comes back:
//! fees, pools, rewards, slashes, grants, proposals. Metrics are read from here and from view
//! calls, never from the engine's own intentions.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, U256};
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, GrantVault, InferenceMarket, ModelRegistry,
    StakingGovernance,
};
use olsim_chain::{Deployment, Receipt};

/// Per-epoch sums of what the event logs reported.
#[derive(Clone, Debug, Default)]
pub struct EpochBooks {
    /// Inference calls paid for.
    pub calls: u64,
    /// Inference fees paid.
    pub fees: U256,
    /// Contributor share of those fees (into reward pools).
    pub to_contributors: U256,
    /// Rewards paid out (pushed or claimed).
    pub rewards: U256,
    /// Stake slashed.
    pub slashed: U256,
    /// Contributions submitted.
    pub submitted: u64,
    /// Contributions accepted.
    pub accepted: u64,
    /// Contributions rejected.
    pub rejected: u64,
}

/// The market's basis-point scale (`InferenceMarket.MAX_BPS`).
const MAX_BPS: u64 = 10_000;

/// What the event logs say about one model over the run.
#[derive(Clone, Debug, Default)]
pub struct ModelBooks {
    /// Inference calls paid for.
    pub calls: u64,
    /// Inference fees paid.
    pub fees: U256,
    /// Contributors' share of those fees, funded into its reward pool.
    pub pooled: U256,
    /// Rewards paid from its pool (pushed or claimed).
    pub paid: U256,
    /// Epochs settled (`Settled` events).
    pub settlements: u32,
}

/// Everything read from event logs so far.
#[derive(Clone, Debug, Default)]
pub struct Books {
    /// Attribution rewards received (pushed or claimed), by account.
    pub rewards: BTreeMap<Address, U256>,
    /// Inference fees paid, by payer.
    pub fees_paid: BTreeMap<Address, U256>,
    /// Owner shares received, by model owner.
    pub owner_income: BTreeMap<Address, U256>,
    /// Owner of each registered model, by on-chain model id.
    pub owners: BTreeMap<U256, Address>,
    /// Staking rewards claimed, by staker.
    pub staking_claimed: BTreeMap<Address, U256>,
    /// Proposer of each governance proposal, by proposal id.
    pub proposers: BTreeMap<U256, Address>,
    /// Governance proposals executed.
    pub executed: BTreeSet<U256>,
    /// Largest governance stake each account held at any point (from `Staked` events).
    pub stake_peak: BTreeMap<Address, U256>,
    /// Stake slashed, by contribution id.
    pub slashed: BTreeMap<U256, U256>,
    /// Final status of decided contributions: `true` accepted, `false` rejected.
    pub decided: BTreeMap<U256, bool>,
    /// Contributions marked harmful by the attributor.
    pub harmful: BTreeMap<U256, ()>,
    /// Whole-run totals of the fee split: contributors, owner, stakers, treasury.
    pub split_totals: [U256; 4],
    /// Of the treasury's part of `split_totals`, the stakers' share it took while nobody
    /// was staked (`InferenceMarket.payInference`).
    pub unstaked_staker_share: U256,
    /// The market's current stakers' share in bps: from the deployment's fee split, then
    /// from `FeeSplitChanged` events.
    pub stakers_bps: u16,
    /// Per on-chain model id: calls paid, fees, the contributors' share funded into its
    /// pool, rewards paid from it (pushed or claimed), and epochs settled.
    pub by_model: BTreeMap<U256, ModelBooks>,
    /// OPEN released to grantees, by grant id.
    pub grant_released: BTreeMap<U256, U256>,
    /// OPEN returned by failed grants, by grant id.
    pub grant_returned: BTreeMap<U256, U256>,
    /// This epoch's sums.
    pub epoch: EpochBooks,
}

impl Books {
    /// Books for a market deployed with the stakers' share `stakers_bps`.
    pub fn new(stakers_bps: u16) -> Self {
        Books {
            stakers_bps,
            ..Books::default()
        }
    }

    /// Reads the protocol events of `receipt`.
    pub fn observe(&mut self, d: &Deployment, receipt: &Receipt) {
        let e = &mut self.epoch;
        for m in receipt.events::<ModelRegistry::ModelRegistered>(d.models) {
            self.owners.insert(m.modelId, m.owner);
        }
        for p in receipt.events::<InferenceMarket::InferencePaid>(d.market) {
            e.calls += u64::from(p.count);
            e.fees += p.fee;
            e.to_contributors += p.toContributors;
            *self.fees_paid.entry(p.payer).or_default() += p.fee;
            let model = self.by_model.entry(p.modelId).or_default();
            model.calls += u64::from(p.count);
            model.fees += p.fee;
            model.pooled += p.toContributors;
            // The market's rule: the stakers' share goes to the treasury while nobody is
            // staked.
            let stakers_share = p.fee * U256::from(self.stakers_bps) / U256::from(MAX_BPS);
            if p.toStakers.is_zero() {
                self.unstaked_staker_share += stakers_share;
            }
            let split = [p.toContributors, p.toOwner, p.toStakers, p.toTreasury];
            for (total, part) in self.split_totals.iter_mut().zip(split) {
                *total += part;
            }
            if let Some(owner) = self.owners.get(&p.modelId) {
                *self.owner_income.entry(*owner).or_default() += p.toOwner;
            }
        }
        for f in receipt.events::<InferenceMarket::FeeSplitChanged>(d.market) {
            self.stakers_bps = f.stakersBps;
        }
        for p in receipt.events::<AttributionRewards::RewardPaid>(d.rewards) {
            e.rewards += p.amount;
            *self.rewards.entry(p.recipient).or_default() += p.amount;
            self.by_model.entry(p.modelId).or_default().paid += p.amount;
        }
        for c in receipt.events::<AttributionRewards::Claimed>(d.rewards) {
            e.rewards += c.amount;
            *self.rewards.entry(c.account).or_default() += c.amount;
            self.by_model.entry(c.modelId).or_default().paid += c.amount;
        }
        for s in receipt.events::<AttributionRewards::Settled>(d.rewards) {
            self.by_model.entry(s.modelId).or_default().settlements += 1;
        }
        for s in receipt.events::<DatanetRegistry::Slashed>(d.datanets) {
            e.slashed += s.amount;
            *self.slashed.entry(s.contributionId).or_default() += s.amount;
        }
        e.submitted += receipt
            .events::<DatanetRegistry::ContributionSubmitted>(d.datanets)
            .len() as u64;
        for a in receipt.events::<DatanetRegistry::ContributionAccepted>(d.datanets) {
            e.accepted += 1;
            self.decided.insert(a.contributionId, true);
        }
        for r in receipt.events::<DatanetRegistry::ContributionRejected>(d.datanets) {
            e.rejected += 1;
            self.decided.insert(r.contributionId, false);
        }
        for h in receipt.events::<DatanetRegistry::ContributionHarmful>(d.datanets) {
            self.harmful.insert(h.contributionId, ());
        }
        for s in receipt.events::<StakingGovernance::Staked>(d.governance) {
            let peak = self.stake_peak.entry(s.account).or_default();
            *peak = (*peak).max(s.newStake);
        }
        for p in receipt.events::<StakingGovernance::ProposalCreated>(d.governance) {
            self.proposers.insert(p.proposalId, p.proposer);
        }
        for x in receipt.events::<StakingGovernance::ProposalExecuted>(d.governance) {
            self.executed.insert(x.proposalId);
        }
        for c in receipt.events::<StakingGovernance::RewardClaimed>(d.governance) {
            *self.staking_claimed.entry(c.account).or_default() += c.amount;
        }
        for m in receipt.events::<GrantVault::MilestoneReleased>(d.grants) {
            *self.grant_released.entry(m.grantId).or_default() += m.amount;
        }
        for f in receipt.events::<GrantVault::FundsReturned>(d.grants) {
            *self.grant_returned.entry(f.grantId).or_default() += f.amount;
        }
    }

    /// Ends the epoch: returns its sums and starts new ones.
    pub fn close_epoch(&mut self) -> EpochBooks {
        std::mem::take(&mut self.epoch)
    }
}
