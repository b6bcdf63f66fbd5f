//! A scripted protocol workload that touches every contract: funding, Datanet contributions
//! and reviews, model registration, inference payments, push and Merkle reward settlement,
//! a harmful-data slash, staking and a governance fee-split change, OpenCircle grants, stake
//! withdrawals.
//!
//! It is the chain's end-to-end demonstration (the README's main job until the scenario
//! engine exists), the differential test's input on both backends, and a bench workload.
//! Everything it does derives from `seed`; it runs on any [`Chain`].

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::SolCall;

use crate::api::{Chain, Receipt, SignedTx};
use crate::client::{prepare, transact};
use crate::contracts::{
    AttributionRewards, DatanetRegistry, GrantVault, InferenceMarket, ModelRegistry, OpenToken,
    StakingGovernance,
};
use crate::error::ChainError;
use crate::merkle::{RewardTree, Scope};
use crate::protocol::{Deployment, FeeSplit, Ledger, OPEN, ProtocolParams, Roles};
use crate::wallet::Wallet;

/// Size of the workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Master seed: keys, content hashes and amounts derive from it.
    pub seed: u64,
    /// Data contributors (at least 4).
    pub contributors: usize,
    /// Inference buyers (at least 1).
    pub users: usize,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            contributors: 8,
            users: 4,
        }
    }
}

/// What one step of the workload did.
#[derive(Debug)]
pub struct Step {
    /// What was attempted, in words.
    pub label: String,
    /// Receipt, or the error of a step that was expected to fail.
    pub outcome: Result<Receipt, ChainError>,
}

/// Everything a workload run produced.
#[derive(Debug)]
pub struct WorkloadRun {
    /// Where the protocol was deployed.
    pub deployment: Deployment,
    /// Every transaction in order, including the deliberate failures.
    pub steps: Vec<Step>,
    /// Every account that ever held OPEN outside the protocol contracts.
    pub holders: Vec<Address>,
    /// Contract books at the end.
    pub ledger: Ledger,
}

impl WorkloadRun {
    /// Receipts of the included transactions.
    pub fn receipts(&self) -> impl Iterator<Item = &Receipt> {
        self.steps.iter().filter_map(|s| s.outcome.as_ref().ok())
    }

    /// Sum of OPEN held by `holders` and the protocol contracts: must equal the supply.
    pub fn open_accounted<C: Chain + ?Sized>(&self, chain: &mut C) -> Result<U256, ChainError> {
        let mut sum = self.ledger.in_contracts();
        for holder in &self.holders {
            sum += self.deployment.balance_of(chain, *holder)?;
        }
        Ok(sum)
    }
}

/// Gas limit given to batched transactions, which cannot be estimated one by one.
const BATCH_GAS: u64 = 600_000;

/// The actors of the workload, each a wallet derived from the seed and a role name.
struct Actors {
    attributor: Wallet,
    admin: Wallet,
    treasury: Wallet,
    committee: Vec<Wallet>,
    curator: Wallet,
    reviewers: Vec<Wallet>,
    contributors: Vec<Wallet>,
    developer: Wallet,
    users: Vec<Wallet>,
    stakers: Vec<Wallet>,
    grantees: Vec<Wallet>,
}

impl Actors {
    fn new(seed: u64, config: &WorkloadConfig) -> Self {
        let many = |role: &str, n: usize| {
            (0..n)
                .map(|i| Wallet::derive(seed, &format!("{role}-{i}")))
                .collect::<Vec<_>>()
        };
        Self {
            admin: Wallet::derive(seed, "admin"),
            attributor: Wallet::derive(seed, "attributor"),
            treasury: Wallet::derive(seed, "treasury"),
            committee: many("committee", 3),
            curator: Wallet::derive(seed, "curator"),
            reviewers: many("reviewer", 3),
            contributors: many("contributor", config.contributors.max(4)),
            developer: Wallet::derive(seed, "developer"),
            users: many("user", config.users.max(1)),
            stakers: many("staker", 2),
            grantees: many("grantee", 2),
        }
    }

    fn all(&self) -> Vec<&Wallet> {
        let mut all = vec![
            &self.admin,
            &self.attributor,
            &self.treasury,
            &self.curator,
            &self.developer,
        ];
        for group in [
            &self.committee,
            &self.reviewers,
            &self.contributors,
            &self.users,
            &self.stakers,
            &self.grantees,
        ] {
            all.extend(group.iter());
        }
        all
    }
}

/// Runs the workload on `chain` and returns what happened. Fails on the first step that
/// does not behave as scripted (an unexpected revert, or an expected one that succeeded).
pub fn run<C: Chain + ?Sized>(
    chain: &mut C,
    config: &WorkloadConfig,
) -> Result<WorkloadRun, ChainError> {
    let mut actors = Actors::new(config.seed, config);
    for wallet in actors.all() {
        chain.deposit(wallet.address(), U256::from(10u64).pow(U256::from(18)))?;
    }
    let committee: Vec<Address> = actors.committee.iter().map(Wallet::address).collect();
    let params = ProtocolParams::default();
    let roles = Roles {
        attributor: actors.attributor.address(),
        guardian: actors.committee[0].address(),
    };
    let d = Deployment::deploy(
        chain,
        &mut actors.admin,
        actors.treasury.address(),
        &committee,
        roles,
        &params,
    )?;
    let mut log = Log { steps: Vec::new() };
    let seed = config.seed;

    // Genesis distribution of OPEN by the admin.
    let grants = [
        (actors.curator.address(), 1_000u64),
        (actors.developer.address(), 1_000),
    ];
    let mut recipients: Vec<(Address, u64)> = grants.to_vec();
    recipients.extend(actors.contributors.iter().map(|w| (w.address(), 5_000)));
    recipients.extend(actors.users.iter().map(|w| (w.address(), 20_000)));
    recipients.extend(actors.stakers.iter().map(|w| (w.address(), 200_000)));
    let txs = recipients
        .iter()
        .map(|(to, amount)| {
            prepare(
                chain,
                &mut actors.admin,
                d.token,
                &OpenToken::transferCall {
                    to: *to,
                    amount: U256::from(*amount) * OPEN,
                },
                BATCH_GAS,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    log.batch(chain, "distribute OPEN", txs)?;
    log.ok(
        "fund OpenCircle vault: approve",
        transact(
            chain,
            &mut actors.admin,
            d.token,
            &approve(d.grants, U256::MAX),
        ),
    )?;
    log.ok(
        "fund OpenCircle vault: deposit 10,000,000 OPEN",
        transact(
            chain,
            &mut actors.admin,
            d.grants,
            &GrantVault::depositCall {
                amount: U256::from(10_000_000u64) * OPEN,
            },
        ),
    )?;

    // A Datanet with three reviewers.
    log.ok(
        "create Datanet finance",
        transact(
            chain,
            &mut actors.curator,
            d.datanets,
            &DatanetRegistry::createDatanetCall {
                name: "finance-signals".into(),
                domain: "finance".into(),
            },
        ),
    )?;
    let datanet = U256::from(1);
    for reviewer in &actors.reviewers {
        let call = DatanetRegistry::addReviewerCall {
            datanetId: datanet,
            reviewer: reviewer.address(),
        };
        log.ok(
            "add reviewer",
            transact(chain, &mut actors.curator, d.datanets, &call),
        )?;
    }

    // Contributions: approve and contribute in one batch, each contributor its own stake.
    let mut txs = Vec::new();
    for (i, contributor) in actors.contributors.iter_mut().enumerate() {
        let stake = params.min_stake * U256::from(1 + i % 3);
        txs.push(prepare(
            chain,
            contributor,
            d.token,
            &approve(d.datanets, stake),
            BATCH_GAS,
        )?);
        let contribute = DatanetRegistry::contributeCall {
            datanetId: datanet,
            contentHash: content_hash(seed, i),
            recordCount: 100 + i as u32,
            stake,
        };
        txs.push(prepare(
            chain,
            contributor,
            d.datanets,
            &contribute,
            BATCH_GAS,
        )?);
    }
    log.batch(chain, "approve + contribute", txs)?;
    let dup = DatanetRegistry::contributeCall {
        datanetId: datanet,
        contentHash: content_hash(seed, 0),
        recordCount: 1,
        stake: params.min_stake,
    };
    log.revert(
        "contributor 1 re-submits its own contribution",
        transact(chain, &mut actors.contributors[0], d.datanets, &dup),
        "DuplicateContent(",
    )?;

    // Reviews: contribution 2 is rejected (and slashed), the rest accepted.
    let n = actors.contributors.len();
    let mut txs = Vec::new();
    for id in 1..=n {
        let accept = id != 2;
        for reviewer in actors
            .reviewers
            .iter_mut()
            .take(usize::from(params.review_quorum))
        {
            let call = DatanetRegistry::reviewCall {
                contributionId: U256::from(id),
                accept,
            };
            txs.push(prepare(chain, reviewer, d.datanets, &call, BATCH_GAS)?);
        }
    }
    log.batch(chain, "reviews", txs)?;
    log.revert(
        "non-reviewer reviews",
        transact(
            chain,
            &mut actors.developer,
            d.datanets,
            &DatanetRegistry::reviewCall {
                contributionId: U256::from(1),
                accept: true,
            },
        ),
        "NotReviewer(",
    )?;

    // A model trained on the Datanet; stakers stake.
    let register = ModelRegistry::registerModelCall {
        baseModel: keccak256(b"olsim-base-lm"),
        adapterHash: keccak256([b"adapter".as_slice(), &seed.to_be_bytes()].concat()),
        datanetIds: vec![datanet],
        kind: 1,
        pricePerInference: OPEN / U256::from(10),
    };
    log.ok(
        "register model",
        transact(chain, &mut actors.developer, d.models, &register),
    )?;
    let model = U256::from(1);
    for (i, staker) in actors.stakers.iter_mut().enumerate() {
        let amount = U256::from(100_000u64 + 50_000 * i as u64) * OPEN;
        log.ok(
            "staker approves",
            transact(chain, staker, d.token, &approve(d.governance, amount)),
        )?;
        let stake = StakingGovernance::stakeCall { amount };
        log.ok("stake", transact(chain, staker, d.governance, &stake))?;
    }

    // Inference payments, batched.
    pay_inferences(chain, &mut log, &mut actors.users, &d, model, 50)?;
    log.revert(
        "payment above the buyer's max fee",
        transact(
            chain,
            &mut actors.users[0],
            d.market,
            &InferenceMarket::payInferenceCall {
                modelId: model,
                count: 10,
                maxFee: U256::from(1),
            },
        ),
        "FeeExceedsMax(",
    )?;

    // Attribution settlement: half the pool pushed in this epoch, a third of it by Merkle
    // root and claims in the next.
    let pool = crate::client::view(
        chain,
        d.rewards,
        &AttributionRewards::poolOfCall { modelId: model },
    )?;
    let epoch = crate::client::view(chain, d.rewards, &AttributionRewards::currentEpochCall {})?;
    let accepted: Vec<Address> = actors
        .contributors
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, w)| w.address())
        .collect();
    let (recipients, amounts) = split_evenly(&accepted, pool / U256::from(2));
    let total = amounts.iter().copied().sum();
    let push = AttributionRewards::settlePushCall {
        modelId: model,
        epoch,
        total,
        recipients,
        amounts,
    };
    log.ok(
        "settle rewards by push (this epoch)",
        transact(chain, &mut actors.attributor, d.rewards, &push),
    )?;
    log.revert(
        "settle the same epoch again",
        transact(chain, &mut actors.attributor, d.rewards, &push),
        "EpochAlreadySettled(",
    )?;
    chain.advance_time(params.reward_epoch)?;
    let (accounts, amounts) = split_evenly(&accepted, pool / U256::from(3));
    let entries: Vec<(Address, U256)> = accounts.into_iter().zip(amounts).collect();
    let scope = Scope {
        model_id: model,
        epoch: epoch + 1,
    };
    let tree = RewardTree::new(scope, &entries).map_err(|e| ChainError::Backend {
        backend: chain.backend(),
        message: e.to_string(),
    })?;
    let post = AttributionRewards::postRootCall {
        modelId: model,
        epoch: scope.epoch,
        root: tree.root(),
        total: tree.total(),
    };
    log.ok(
        "post reward root (next epoch)",
        transact(chain, &mut actors.attributor, d.rewards, &post),
    )?;
    for (account, amount) in &entries {
        let claim = AttributionRewards::claimCall {
            modelId: model,
            epoch: scope.epoch,
            account: *account,
            amount: *amount,
            proof: tree.proof(*account).unwrap_or_default(),
        };
        log.ok(
            "claim reward",
            transact(chain, &mut actors.users[0], d.rewards, &claim),
        )?;
    }
    let (account, amount) = entries[0];
    let again = AttributionRewards::claimCall {
        modelId: model,
        epoch: scope.epoch,
        account,
        amount,
        proof: tree.proof(account).unwrap_or_default(),
    };
    log.revert(
        "second claim of the same reward",
        transact(chain, &mut actors.users[0], d.rewards, &again),
        "DoubleClaim(",
    )?;

    // Attribution found contribution 3 harmful: slash it.
    let slash = DatanetRegistry::slashHarmfulCall {
        contributionId: U256::from(3),
        evidence: keccak256(b"influence-below-threshold"),
    };
    log.ok(
        "slash harmful contribution 3",
        transact(chain, &mut actors.attributor, d.datanets, &slash),
    )?;

    // Governance: raise the contributors' share, through vote and timelock.
    let new_split = FeeSplit {
        contributors_bps: 5_000,
        owner_bps: 2_500,
        stakers_bps: 1_500,
        treasury_bps: 1_000,
    };
    let data = InferenceMarket::setFeeSplitCall {
        contributorsBps_: new_split.contributors_bps,
        ownerBps_: new_split.owner_bps,
        stakersBps_: new_split.stakers_bps,
        treasuryBps_: new_split.treasury_bps,
    }
    .abi_encode();
    let propose = StakingGovernance::proposeCall {
        target: d.market,
        data: data.into(),
        description: "raise the contributors' share to 50%".into(),
    };
    log.ok(
        "propose fee split 50/25/15/10",
        transact(chain, &mut actors.stakers[1], d.governance, &propose),
    )?;
    let proposal = U256::from(1);
    for staker in actors.stakers.iter_mut() {
        let vote = StakingGovernance::voteCall {
            id: proposal,
            support: true,
        };
        log.ok("vote for", transact(chain, staker, d.governance, &vote))?;
    }
    log.revert(
        "queue while voting is still open",
        transact(
            chain,
            &mut actors.admin,
            d.governance,
            &StakingGovernance::queueCall { id: proposal },
        ),
        "ProposalNotSucceeded(",
    )?;
    chain.advance_time(params.voting_period + 1)?;
    let queue = StakingGovernance::queueCall { id: proposal };
    log.ok(
        "queue proposal",
        transact(chain, &mut actors.admin, d.governance, &queue),
    )?;
    chain.advance_time(params.timelock_delay + 1)?;
    let execute = StakingGovernance::executeCall { id: proposal };
    log.ok(
        "execute proposal",
        transact(chain, &mut actors.admin, d.governance, &execute),
    )?;
    pay_inferences(chain, &mut log, &mut actors.users, &d, model, 20)?;

    // OpenCircle: one grant completes its milestones, one fails and returns its funds.
    for (i, grantee) in actors.grantees.iter_mut().enumerate() {
        let apply = GrantVault::applyForGrantCall {
            tier: i as u8,
            amountUsd: U256::from(40_000u64 + 40_000 * i as u64),
            milestones: 2,
            proposalHash: keccak256(format!("grant-{seed}-{i}")),
        };
        log.ok(
            "apply for grant",
            transact(chain, grantee, d.grants, &apply),
        )?;
    }
    for grant in [1u64, 2] {
        for member in actors
            .committee
            .iter_mut()
            .take(usize::from(params.grant_approvals))
        {
            let call = GrantVault::approveGrantCall {
                grantId: U256::from(grant),
            };
            log.ok(
                "committee approves grant",
                transact(chain, member, d.grants, &call),
            )?;
        }
    }
    let quorum = usize::from(params.grant_approvals);
    for _ in 0..2 {
        let call = GrantVault::releaseMilestoneCall {
            grantId: U256::from(1),
        };
        for member in actors.committee.iter_mut().take(quorum) {
            log.ok(
                "committee votes to release a milestone of grant 1",
                transact(chain, member, d.grants, &call),
            )?;
        }
    }
    let fail = GrantVault::failGrantCall {
        grantId: U256::from(2),
    };
    for member in actors.committee.iter_mut().take(quorum) {
        log.ok(
            "committee votes grant 2 failed (funds return at the threshold)",
            transact(chain, member, d.grants, &fail),
        )?;
    }

    // After the lock and the attribution window: contributors withdraw what is left of
    // their stakes; stakers exit once their rewards have streamed.
    let wait = params
        .lock_period
        .max(params.attribution_window)
        .max(params.reward_duration);
    chain.advance_time(wait + 1)?;
    for (i, contributor) in actors.contributors.iter_mut().enumerate() {
        let call = DatanetRegistry::withdrawStakeCall {
            contributionId: U256::from(i + 1),
        };
        log.ok(
            "withdraw stake",
            transact(chain, contributor, d.datanets, &call),
        )?;
    }
    for staker in actors.stakers.iter_mut() {
        let claim = StakingGovernance::claimRewardsCall {};
        log.ok(
            "claim staking rewards",
            transact(chain, staker, d.governance, &claim),
        )?;
        let staked = crate::client::view(
            chain,
            d.governance,
            &StakingGovernance::stakeOfCall(staker.address()),
        )?;
        let unstake = StakingGovernance::unstakeCall { amount: staked };
        log.ok("unstake", transact(chain, staker, d.governance, &unstake))?;
    }

    let ledger = d.ledger(chain)?;
    let holders = actors.all().iter().map(|w| w.address()).collect();
    Ok(WorkloadRun {
        deployment: d,
        steps: log.steps,
        holders,
        ledger,
    })
}

/// Each user approves the market and pays for `count` inferences, all in one batch.
fn pay_inferences<C: Chain + ?Sized>(
    chain: &mut C,
    log: &mut Log,
    users: &mut [Wallet],
    d: &Deployment,
    model: U256,
    count: u32,
) -> Result<(), ChainError> {
    let mut txs = Vec::new();
    for user in users.iter_mut() {
        txs.push(prepare(
            chain,
            user,
            d.token,
            &approve(d.market, U256::MAX),
            BATCH_GAS,
        )?);
        let pay = InferenceMarket::payInferenceCall {
            modelId: model,
            count,
            maxFee: U256::from(count) * OPEN,
        };
        txs.push(prepare(chain, user, d.market, &pay, BATCH_GAS)?);
    }
    log.batch(chain, "approve + pay inferences", txs)
}

fn approve(spender: Address, amount: U256) -> OpenToken::approveCall {
    OpenToken::approveCall { spender, amount }
}

/// Content hash of contributor `i`'s records under `seed`.
fn content_hash(seed: u64, i: usize) -> B256 {
    keccak256(format!("datanet-records-{seed}-{i}"))
}

/// `total` split over `accounts`, the rounding remainder to the first.
fn split_evenly(accounts: &[Address], total: U256) -> (Vec<Address>, Vec<U256>) {
    let n = U256::from(accounts.len());
    let share = total / n;
    let mut amounts = vec![share; accounts.len()];
    amounts[0] += total - share * n;
    (accounts.to_vec(), amounts)
}

/// The running record of steps.
struct Log {
    steps: Vec<Step>,
}

impl Log {
    /// Records a step that must succeed.
    fn ok(&mut self, label: &str, outcome: Result<Receipt, ChainError>) -> Result<(), ChainError> {
        let failure = outcome.as_ref().err().map(|e| e.to_string());
        self.steps.push(Step {
            label: label.to_string(),
            outcome,
        });
        match failure {
            Some(message) => Err(unexpected(label, message)),
            None => Ok(()),
        }
    }

    /// Records a step that must revert with a reason starting with `reason`.
    fn revert(
        &mut self,
        label: &str,
        outcome: Result<Receipt, ChainError>,
        reason: &str,
    ) -> Result<(), ChainError> {
        let verdict = match &outcome {
            Err(e) if e.revert_reason().is_some_and(|r| r.starts_with(reason)) => Ok(()),
            Err(e) => Err(unexpected(
                label,
                format!("expected revert {reason}…, got: {e}"),
            )),
            Ok(r) => Err(unexpected(
                label,
                format!("expected revert {reason}…, but {} succeeded", r.tx_hash),
            )),
        };
        self.steps.push(Step {
            label: label.to_string(),
            outcome,
        });
        verdict
    }

    /// Sends a batch whose transactions must all succeed.
    fn batch<C: Chain + ?Sized>(
        &mut self,
        chain: &mut C,
        label: &str,
        txs: Vec<SignedTx>,
    ) -> Result<(), ChainError> {
        for outcome in chain.send_batch(txs) {
            self.ok(label, outcome)?;
        }
        Ok(())
    }
}

fn unexpected(label: &str, message: String) -> ChainError {
    ChainError::Backend {
        backend: "workload",
        message: format!("step `{label}` did not go as scripted: {message}"),
    }
}
