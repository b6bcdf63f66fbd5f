//! The OpenLedger protocol as deployed on a chain: the seven contracts, their wiring, the
//! governed parameters they start with, and the ledger view that accounting checks read.

use alloy_primitives::{Address, FixedBytes, U256};
use alloy_sol_types::{SolCall, SolConstructor};

use crate::api::Chain;
use crate::client::{deploy, transact, view};
use crate::contracts::{
    AttributionRewards, DatanetRegistry, GrantVault, InferenceMarket, ModelRegistry, OpenToken,
    StakingGovernance,
};
use crate::error::ChainError;
use crate::wallet::Wallet;

/// One OPEN in token wei (18 decimals).
pub const OPEN: U256 = U256::from_limbs([1_000_000_000_000_000_000, 0, 0, 0]);

/// Total OPEN supply, minted once at genesis: 1,000,000,000 tokens.
pub fn total_supply() -> U256 {
    U256::from(1_000_000_000u64) * OPEN
}

/// The bounds the contracts enforce on the governed parameters a scenario sets: their
/// `MIN_*` / `MAX_*` constants, written once here for validation (a test reads them back
/// from the deployed contracts).
pub mod bounds {
    use std::ops::RangeInclusive;

    /// Seconds in a day.
    pub const DAY: u64 = 86_400;
    /// `DatanetRegistry.MAX_MIN_STAKE` and `StakingGovernance.MAX_PROPOSAL_THRESHOLD`, in
    /// whole OPEN (1% of the supply).
    pub const MAX_STAKE_OPEN: u64 = 10_000_000;
    /// `DatanetRegistry.MAX_LOCK_PERIOD`, seconds.
    pub const MAX_LOCK_PERIOD: u64 = 365 * DAY;
    /// `1..=DatanetRegistry.MAX_REVIEW_QUORUM`.
    pub const REVIEW_QUORUM: RangeInclusive<u8> = 1..=15;
    /// `StakingGovernance.MIN_VOTING_PERIOD..=MAX_VOTING_PERIOD`, seconds.
    pub const VOTING_PERIOD: RangeInclusive<u64> = 3_600..=30 * DAY;
    /// `StakingGovernance.MAX_TIMELOCK_DELAY`, seconds.
    pub const MAX_TIMELOCK_DELAY: u64 = 30 * DAY;
    /// `AttributionRewards.MIN_EPOCH_LENGTH..=MAX_EPOCH_LENGTH`, seconds (a run's epoch).
    pub const EPOCH_LENGTH: RangeInclusive<u64> = 60..=30 * DAY;
}

/// How an inference fee is divided, in basis points that sum to 10,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeSplit {
    /// Share for data contributors, paid out by attribution.
    pub contributors_bps: u16,
    /// Share for the model owner.
    pub owner_bps: u16,
    /// Share for OPEN stakers.
    pub stakers_bps: u16,
    /// Share for the protocol treasury.
    pub treasury_bps: u16,
}

/// Governed parameters the protocol starts with. Defaults are olsim's own choices, not
/// OpenLedger's published values (which the article does not give).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProtocolParams {
    /// Minimum OPEN stake behind a contribution.
    pub min_stake: U256,
    /// Fraction of a stake slashed on rejection or proven harm, in basis points.
    pub slash_bps: u16,
    /// Seconds a contribution's stake stays locked.
    pub lock_period: u64,
    /// Matching reviews needed to accept or reject a contribution.
    pub review_quorum: u8,
    /// Initial inference fee split.
    pub fee_split: FeeSplit,
    /// Stake needed to open a governance proposal.
    pub proposal_threshold: U256,
    /// Seconds a proposal is open for votes.
    pub voting_period: u64,
    /// Seconds between a passed proposal being queued and becoming executable.
    pub timelock_delay: u64,
    /// Votes needed, as basis points of total stake.
    pub quorum_bps: u16,
    /// Committee approvals that activate an OpenCircle grant.
    pub grant_approvals: u8,
    /// OPEN price in USD with 8 decimals, used to size grants.
    pub open_price_usd_e8: U256,
    /// Seconds per settlement epoch of AttributionRewards: each model's pool is settled at
    /// most once per epoch, for at most what it accrued up to that epoch.
    pub reward_epoch: u64,
    /// Seconds a reward settlement stays payable before its unpaid rest returns to the pool.
    pub claim_window: u64,
    /// Seconds a contribution may wait for its reviews before it lapses (stake withdrawable).
    pub review_period: u64,
    /// Seconds an accepted contribution's stake stays slashable after acceptance.
    pub attribution_window: u64,
    /// Seconds over which StakingGovernance streams each notified staking reward.
    pub reward_duration: u64,
}

impl Default for ProtocolParams {
    fn default() -> Self {
        const DAY: u64 = 86_400;
        Self {
            min_stake: U256::from(100) * OPEN,
            slash_bps: 2_000,
            lock_period: 7 * DAY,
            review_quorum: 2,
            fee_split: FeeSplit {
                contributors_bps: 4_000,
                owner_bps: 3_000,
                stakers_bps: 2_000,
                treasury_bps: 1_000,
            },
            proposal_threshold: U256::from(10_000) * OPEN,
            voting_period: 3 * DAY,
            timelock_delay: 2 * DAY,
            quorum_bps: 400,
            grant_approvals: 2,
            open_price_usd_e8: U256::from(50_000_000u64), // 0.50 USD
            reward_epoch: DAY,
            claim_window: 30 * DAY,
            review_period: 14 * DAY,
            attribution_window: 14 * DAY,
            reward_duration: DAY,
        }
    }
}

/// Addresses of a deployed protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// OpenToken (OPEN).
    pub token: Address,
    /// DatanetRegistry.
    pub datanets: Address,
    /// ModelRegistry.
    pub models: Address,
    /// AttributionRewards.
    pub rewards: Address,
    /// StakingGovernance.
    pub governance: Address,
    /// InferenceMarket.
    pub market: Address,
    /// GrantVault (OpenCircle).
    pub grants: Address,
    /// Treasury account that receives slashes and the treasury fee share.
    pub treasury: Address,
    /// Account that received the genesis supply and wired the contracts.
    pub admin: Address,
}

/// Keys a deployment gives protocol roles to, each its own (neither may be the admin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    /// Settles rewards (AttributionRewards) and slashes harmful data (DatanetRegistry).
    pub attributor: Address,
    /// May cancel StakingGovernance proposals before they execute; `Address::ZERO` for none.
    pub guardian: Address,
}

impl Deployment {
    /// Deploys and wires the protocol. `admin` receives the whole OPEN supply, wires the
    /// contracts and hands every parameter to governance; `roles` names the attributor and
    /// the guardian.
    pub fn deploy<C: Chain + ?Sized>(
        chain: &mut C,
        admin: &mut Wallet,
        treasury: Address,
        grant_committee: &[Address],
        roles: Roles,
        params: &ProtocolParams,
    ) -> Result<Self, ChainError> {
        let owner = admin.address();
        let token = deploy(
            chain,
            admin,
            &OpenToken::BYTECODE,
            &OpenToken::constructorCall {
                genesisHolder: owner,
            }
            .abi_encode(),
        )?;
        let datanets = deploy(
            chain,
            admin,
            &DatanetRegistry::BYTECODE,
            &DatanetRegistry::constructorCall {
                token_: token,
                admin_: owner,
                treasury_: treasury,
                attributor_: roles.attributor,
                minStake_: params.min_stake,
                slashBps_: params.slash_bps,
                lockPeriod_: params.lock_period,
                reviewQuorum_: params.review_quorum,
                windows_: [params.review_period, params.attribution_window],
            }
            .abi_encode(),
        )?;
        let models = deploy(
            chain,
            admin,
            &ModelRegistry::BYTECODE,
            &ModelRegistry::constructorCall { admin_: owner }.abi_encode(),
        )?;
        let rewards = deploy(
            chain,
            admin,
            &AttributionRewards::BYTECODE,
            &AttributionRewards::constructorCall {
                token_: token,
                admin_: owner,
                attributor_: roles.attributor,
                epochLength_: params.reward_epoch,
                claimWindow_: params.claim_window,
            }
            .abi_encode(),
        )?;
        let governance = deploy(
            chain,
            admin,
            &StakingGovernance::BYTECODE,
            &StakingGovernance::constructorCall {
                token_: token,
                admin_: owner,
                guardian_: roles.guardian,
                proposalThreshold_: params.proposal_threshold,
                votingPeriod_: params.voting_period,
                timelockDelay_: params.timelock_delay,
                quorumBps_: params.quorum_bps,
                rewardDuration_: params.reward_duration,
            }
            .abi_encode(),
        )?;
        let split = params.fee_split;
        let market = deploy(
            chain,
            admin,
            &InferenceMarket::BYTECODE,
            &InferenceMarket::constructorCall {
                token_: token,
                modelRegistry_: models,
                attributionRewards_: rewards,
                stakingPool_: governance,
                treasury_: treasury,
                admin_: owner,
                contributorsBps_: split.contributors_bps,
                ownerBps_: split.owner_bps,
                stakersBps_: split.stakers_bps,
                treasuryBps_: split.treasury_bps,
            }
            .abi_encode(),
        )?;
        let grants = deploy(
            chain,
            admin,
            &GrantVault::BYTECODE,
            &GrantVault::constructorCall {
                token_: token,
                admin_: owner,
                committee_: grant_committee.to_vec(),
                approvalThreshold_: params.grant_approvals,
                openPriceUsdE8_: params.open_price_usd_e8,
            }
            .abi_encode(),
        )?;
        let deployment = Self {
            token,
            datanets,
            models,
            rewards,
            governance,
            market,
            grants,
            treasury,
            admin: owner,
        };
        deployment.wire(chain, admin)?;
        Ok(deployment)
    }

    /// Connects the contracts and hands parameter control to StakingGovernance.
    fn wire<C: Chain + ?Sized>(&self, chain: &mut C, admin: &mut Wallet) -> Result<(), ChainError> {
        transact(
            chain,
            admin,
            self.rewards,
            &AttributionRewards::initMarketCall {
                market_: self.market,
            },
        )?;
        transact(
            chain,
            admin,
            self.governance,
            &StakingGovernance::initMarketCall {
                market_: self.market,
            },
        )?;
        let (targets, selectors) = self.governed_calls().into_iter().unzip();
        transact(
            chain,
            admin,
            self.governance,
            &StakingGovernance::initTargetsCall { targets, selectors },
        )?;
        let init = DatanetRegistry::initGovernanceCall {
            governance_: self.governance,
        }
        .abi_encode();
        // `initGovernance(address)` has the same selector on every governed contract.
        for contract in [
            self.datanets,
            self.models,
            self.rewards,
            self.market,
            self.grants,
        ] {
            crate::client::send_raw(
                chain,
                admin,
                Some(contract),
                init.clone().into(),
                U256::ZERO,
            )?;
        }
        Ok(())
    }

    /// The calls a governance proposal may make: every governed setter of every contract.
    /// Role changes are among them (a compromised attributor key must be replaceable), which
    /// is what the guardian's veto is for.
    pub fn governed_calls(&self) -> Vec<(Address, FixedBytes<4>)> {
        let mut calls = vec![
            (self.datanets, DatanetRegistry::setMinStakeCall::SELECTOR),
            (self.datanets, DatanetRegistry::setSlashBpsCall::SELECTOR),
            (self.datanets, DatanetRegistry::setLockPeriodCall::SELECTOR),
            (
                self.datanets,
                DatanetRegistry::setReviewQuorumCall::SELECTOR,
            ),
            (
                self.datanets,
                DatanetRegistry::setReviewPeriodCall::SELECTOR,
            ),
            (
                self.datanets,
                DatanetRegistry::setAttributionWindowCall::SELECTOR,
            ),
            (self.datanets, DatanetRegistry::setAttributorCall::SELECTOR),
            (self.market, InferenceMarket::setFeeSplitCall::SELECTOR),
            (
                self.rewards,
                AttributionRewards::setAttributorCall::SELECTOR,
            ),
            (
                self.rewards,
                AttributionRewards::setEpochLengthCall::SELECTOR,
            ),
            (
                self.rewards,
                AttributionRewards::setClaimWindowCall::SELECTOR,
            ),
            (self.grants, GrantVault::setOpenPriceCall::SELECTOR),
        ];
        let own = [
            StakingGovernance::setQuorumBpsCall::SELECTOR,
            StakingGovernance::setVotingPeriodCall::SELECTOR,
            StakingGovernance::setTimelockDelayCall::SELECTOR,
            StakingGovernance::setProposalThresholdCall::SELECTOR,
            StakingGovernance::setQueueWindowCall::SELECTOR,
            StakingGovernance::setExecutionWindowCall::SELECTOR,
            StakingGovernance::setRewardDurationCall::SELECTOR,
            StakingGovernance::setGuardianCall::SELECTOR,
            StakingGovernance::setAllowedCallCall::SELECTOR,
        ];
        calls.extend(own.map(|s| (self.governance, s)));
        calls
            .into_iter()
            .map(|(target, selector)| (target, selector.into()))
            .collect()
    }

    /// Every contract with its name, in deployment order.
    pub fn contracts(&self) -> [(&'static str, Address); 7] {
        [
            ("OpenToken", self.token),
            ("DatanetRegistry", self.datanets),
            ("ModelRegistry", self.models),
            ("AttributionRewards", self.rewards),
            ("StakingGovernance", self.governance),
            ("InferenceMarket", self.market),
            ("GrantVault", self.grants),
        ]
    }

    /// OPEN balance of `who`.
    pub fn balance_of<C: Chain + ?Sized>(
        &self,
        chain: &mut C,
        who: Address,
    ) -> Result<U256, ChainError> {
        view(chain, self.token, &OpenToken::balanceOfCall(who))
    }

    /// Reads the token side of every contract's books (see [`Ledger`]).
    pub fn ledger<C: Chain + ?Sized>(&self, chain: &mut C) -> Result<Ledger, ChainError> {
        let held = |chain: &mut C, who| self.balance_of(chain, who);
        Ok(Ledger {
            total_supply: view(chain, self.token, &OpenToken::totalSupplyCall {})?,
            datanets_held: held(chain, self.datanets)?,
            datanets_escrowed: view(chain, self.datanets, &DatanetRegistry::totalEscrowedCall {})?,
            rewards_held: held(chain, self.rewards)?,
            rewards_pooled: view(chain, self.rewards, &AttributionRewards::totalPooledCall {})?,
            rewards_reserved: view(
                chain,
                self.rewards,
                &AttributionRewards::totalReservedCall {},
            )?,
            governance_held: held(chain, self.governance)?,
            governance_staked: view(
                chain,
                self.governance,
                &StakingGovernance::totalStakedCall {},
            )?,
            governance_rewards: view(
                chain,
                self.governance,
                &StakingGovernance::rewardsReserveCall {},
            )?,
            grants_held: held(chain, self.grants)?,
            grants_available: view(chain, self.grants, &GrantVault::availableCall {})?,
            grants_reserved: view(chain, self.grants, &GrantVault::reservedCall {})?,
            market_held: held(chain, self.market)?,
            treasury: held(chain, self.treasury)?,
        })
    }
}

/// What each contract holds in OPEN next to what its own books say it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ledger {
    /// `OpenToken.totalSupply()`.
    pub total_supply: U256,
    /// OPEN held by DatanetRegistry.
    pub datanets_held: U256,
    /// Stakes in escrow by DatanetRegistry's books.
    pub datanets_escrowed: U256,
    /// OPEN held by AttributionRewards.
    pub rewards_held: U256,
    /// Unsettled reward pools.
    pub rewards_pooled: U256,
    /// Rewards reserved under posted Merkle roots, not yet claimed.
    pub rewards_reserved: U256,
    /// OPEN held by StakingGovernance.
    pub governance_held: U256,
    /// Total OPEN staked.
    pub governance_staked: U256,
    /// Staker rewards notified and not yet claimed.
    pub governance_rewards: U256,
    /// OPEN held by GrantVault.
    pub grants_held: U256,
    /// Grant funds not committed to a grant.
    pub grants_available: U256,
    /// Grant funds committed and not yet released.
    pub grants_reserved: U256,
    /// OPEN held by InferenceMarket (it forwards every fee: always zero).
    pub market_held: U256,
    /// Treasury balance.
    pub treasury: U256,
}

impl Ledger {
    /// Each contract holds at least what its books say (more only by direct donations,
    /// which no book counts); the first shortfall is described.
    pub fn check_books(&self) -> Result<(), String> {
        let checks = [
            (
                "DatanetRegistry escrow",
                self.datanets_held,
                self.datanets_escrowed,
            ),
            (
                "AttributionRewards pools + reserved",
                self.rewards_held,
                self.rewards_pooled + self.rewards_reserved,
            ),
            (
                "StakingGovernance stake + reward reserve",
                self.governance_held,
                self.governance_staked + self.governance_rewards,
            ),
            (
                "GrantVault available + reserved",
                self.grants_held,
                self.grants_available + self.grants_reserved,
            ),
            (
                "InferenceMarket (books nothing)",
                self.market_held,
                U256::ZERO,
            ),
        ];
        for (what, held, booked) in checks {
            if held < booked {
                return Err(format!("{what}: holds {held} but its books say {booked}"));
            }
        }
        Ok(())
    }

    /// OPEN inside protocol contracts.
    pub fn in_contracts(&self) -> U256 {
        self.datanets_held
            + self.rewards_held
            + self.governance_held
            + self.grants_held
            + self.market_held
    }
}
