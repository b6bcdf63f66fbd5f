//! Property tests of the protocol contracts on the embedded chain.
//!
//! Random sequences of actions by random actors (many of which revert), governance among
//! them (proposals that pass, fail quorum, lose, tie, expire or are canceled), must keep:
//! the OPEN supply fixed; holders plus contracts equal to the supply; every contract's books
//! covered by its token balance; a refused transaction leaving the state digest unchanged;
//! each (model, epoch) settled at most once; pending staking rewards within the reward
//! reserve; every slash exactly `slashBps` of the escrow; a proposal's outcome, once its vote
//! has ended, never changing between passed and defeated. Other properties: fee splits are
//! exact, roles are enforced, locks and timelocks hold.

use std::cell::RefCell;

use alloy_primitives::{Address, U256};
use alloy_sol_types::SolCall;
use olsim_chain::client::{transact, view};
use olsim_chain::contracts::{
    AttributionRewards, DatanetRegistry, GrantVault, InferenceMarket, ModelRegistry, OpenToken,
    StakingGovernance,
};
use olsim_chain::protocol::{OPEN, total_supply};
use olsim_chain::{
    Chain, ChainError, Deployment, EmbeddedChain, EmbeddedConfig, ProtocolParams, Receipt, Roles,
    SnapshotId, Wallet,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRng, TestRunner};

const ACTORS: usize = 6;

/// A deployed protocol with funded actors; reset between cases through a snapshot.
struct Fixture {
    chain: EmbeddedChain,
    d: Deployment,
    params: ProtocolParams,
    admin: Wallet,
    attributor: Wallet,
    actors: Vec<Wallet>,
    committee: Vec<Wallet>,
    snapshot: SnapshotId,
}

impl Fixture {
    fn new() -> Self {
        let mut chain = EmbeddedChain::new(EmbeddedConfig::default());
        let mut admin = Wallet::derive(1, "admin");
        let attributor = Wallet::derive(1, "attributor");
        let mut actors: Vec<Wallet> = (0..ACTORS)
            .map(|i| Wallet::derive(1, &format!("actor-{i}")))
            .collect();
        let committee: Vec<Wallet> = (0..3)
            .map(|i| Wallet::derive(1, &format!("committee-{i}")))
            .collect();
        let eth = U256::from(10u64).pow(U256::from(18));
        for w in actors.iter().chain(&committee).chain([&admin, &attributor]) {
            chain.deposit(w.address(), eth).unwrap();
        }
        let params = ProtocolParams {
            review_quorum: 1,
            ..ProtocolParams::default()
        };
        let members: Vec<Address> = committee.iter().map(Wallet::address).collect();
        let treasury = Wallet::derive(1, "treasury").address();
        let roles = Roles {
            attributor: attributor.address(),
            guardian: members[0],
        };
        let d =
            Deployment::deploy(&mut chain, &mut admin, treasury, &members, roles, &params).unwrap();
        // Actor 0 curates a Datanet whose reviewers are actors 1 and 2, and owns a model.
        transact(
            &mut chain,
            &mut actors[0],
            d.datanets,
            &DatanetRegistry::createDatanetCall {
                name: "props".into(),
                domain: "finance".into(),
            },
        )
        .unwrap();
        for r in 1..=2 {
            let reviewer = actors[r].address();
            transact(
                &mut chain,
                &mut actors[0],
                d.datanets,
                &DatanetRegistry::addReviewerCall {
                    datanetId: U256::from(1),
                    reviewer,
                },
            )
            .unwrap();
        }
        transact(
            &mut chain,
            &mut actors[0],
            d.models,
            &ModelRegistry::registerModelCall {
                baseModel: Default::default(),
                adapterHash: [7u8; 32].into(),
                datanetIds: vec![U256::from(1)],
                kind: 0,
                pricePerInference: OPEN,
            },
        )
        .unwrap();
        for actor in actors.iter_mut() {
            let to = actor.address();
            transact(
                &mut chain,
                &mut admin,
                d.token,
                &OpenToken::transferCall {
                    to,
                    amount: U256::from(100_000) * OPEN,
                },
            )
            .unwrap();
            for spender in [d.datanets, d.market, d.governance, d.grants] {
                transact(
                    &mut chain,
                    actor,
                    d.token,
                    &OpenToken::approveCall {
                        spender,
                        amount: U256::MAX,
                    },
                )
                .unwrap();
            }
        }
        let snapshot = chain.snapshot().unwrap();
        Self {
            chain,
            d,
            params,
            admin,
            attributor,
            actors,
            committee,
            snapshot,
        }
    }

    /// Back to the state right after setup (wallet nonces included).
    fn reset(&mut self) {
        self.chain.revert_to(self.snapshot).unwrap();
        self.snapshot = self.chain.snapshot().unwrap();
        for w in self
            .actors
            .iter_mut()
            .chain(self.committee.iter_mut())
            .chain([&mut self.admin, &mut self.attributor])
        {
            let nonce = self.chain.nonce(w.address()).unwrap();
            w.set_nonce(nonce);
        }
    }

    fn holders(&self) -> Vec<Address> {
        let mut all: Vec<Address> = self
            .actors
            .iter()
            .chain(&self.committee)
            .map(Wallet::address)
            .collect();
        all.push(self.admin.address());
        all.push(self.attributor.address());
        all.push(self.d.treasury);
        all
    }

    /// Supply fixed, holders + contracts == supply, books balanced.
    fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let ledger = self.d.ledger(&mut self.chain).unwrap();
        prop_assert_eq!(ledger.total_supply, total_supply());
        ledger.check_books().map_err(TestCaseError::fail)?;
        let mut pending = U256::ZERO;
        for h in self.holders() {
            let account = h;
            pending += view(
                &mut self.chain,
                self.d.governance,
                &StakingGovernance::pendingRewardsCall { account },
            )
            .unwrap();
        }
        prop_assert!(
            pending <= ledger.governance_rewards,
            "pending staking rewards {} above the reserve {}",
            pending,
            ledger.governance_rewards
        );
        let mut sum = ledger.in_contracts();
        for h in self.holders() {
            sum += self.d.balance_of(&mut self.chain, h).unwrap();
        }
        prop_assert_eq!(
            sum,
            total_supply(),
            "OPEN outside known holders and contracts"
        );
        Ok(())
    }
}

/// One thing an actor may try. Many of them revert; that is part of the test.
#[derive(Clone, Debug)]
enum Action {
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Contribute {
        who: usize,
        stake: u64,
        hash: u8,
    },
    Review {
        who: usize,
        id: u8,
        accept: bool,
    },
    Pay {
        who: usize,
        count: u32,
    },
    SettlePush {
        to: usize,
        amount: u64,
    },
    Stake {
        who: usize,
        amount: u64,
    },
    Unstake {
        who: usize,
        amount: u64,
    },
    ClaimStakingRewards {
        who: usize,
    },
    /// The contribution's own contributor withdraws.
    Withdraw {
        id: u8,
    },
    SlashHarmful {
        id: u8,
    },
    ApplyGrant {
        who: usize,
        usd: u64,
    },
    ApproveGrant {
        member: usize,
        id: u8,
    },
    ReleaseMilestone {
        member: usize,
        id: u8,
    },
    FailGrant {
        member: usize,
        id: u8,
    },
    /// A staker proposes a fee split change.
    Propose {
        who: usize,
    },
    Vote {
        who: usize,
        id: u8,
        support: bool,
    },
    Queue {
        id: u8,
    },
    Execute {
        id: u8,
    },
    /// The guardian (committee member 0) or an actor cancels.
    Cancel {
        guardian: bool,
        who: usize,
        id: u8,
    },
    Advance {
        days: u64,
    },
}

fn action() -> impl Strategy<Value = Action> {
    let who = 0..ACTORS;
    prop_oneof![
        3 => (who.clone(), 50u64..400, 0u8..8).prop_map(|(who, stake, hash)| Action::Contribute { who, stake, hash }),
        3 => (1usize..3, 1u8..4, any::<bool>()).prop_map(|(who, id, accept)| Action::Review { who, id, accept }),
        1 => (who.clone(), 0..ACTORS, 0u64..200_000).prop_map(|(from, to, amount)| Action::Transfer { from, to, amount }),
        1 => (who.clone(), 0u64..400, 0u8..8).prop_map(|(who, stake, hash)| Action::Contribute { who, stake, hash }),
        1 => (1usize..3, 1u8..4, any::<bool>()).prop_map(|(who, id, accept)| Action::Review { who, id, accept }),
        1 => (who.clone(), 1u32..500).prop_map(|(who, count)| Action::Pay { who, count }),
        1 => (who.clone(), 0u64..300).prop_map(|(to, amount)| Action::SettlePush { to, amount }),
        3 => (who.clone(), 10_000u64..50_000).prop_map(|(who, amount)| Action::Stake { who, amount }),
        1 => (who.clone(), 0u64..50_000).prop_map(|(who, amount)| Action::Unstake { who, amount }),
        1 => who.clone().prop_map(|who| Action::ClaimStakingRewards { who }),
        2 => (1u8..4).prop_map(|id| Action::Withdraw { id }),
        1 => (1u8..4).prop_map(|id| Action::SlashHarmful { id }),
        2 => (who.clone(), 25_000u64..150_000).prop_map(|(who, usd)| Action::ApplyGrant { who, usd }),
        3 => (0usize..3, 1u8..3).prop_map(|(member, id)| Action::ApproveGrant { member, id }),
        2 => (0usize..3, 1u8..3).prop_map(|(member, id)| Action::ReleaseMilestone { member, id }),
        1 => (0usize..3, 1u8..4).prop_map(|(member, id)| Action::FailGrant { member, id }),
        2 => (0u64..10).prop_map(|days| Action::Advance { days }),
        1 => (25u64..40).prop_map(|days| Action::Advance { days }),
        2 => who.clone().prop_map(|who| Action::Propose { who }),
        6 => (who.clone(), 1u8..3, any::<bool>()).prop_map(|(who, id, support)| Action::Vote { who, id, support }),
        2 => (1u8..3).prop_map(|id| Action::Queue { id }),
        2 => (1u8..3).prop_map(|id| Action::Execute { id }),
        1 => (any::<bool>(), who.clone(), 1u8..4).prop_map(|(guardian, who, id)| Action::Cancel { guardian, who, id }),
    ]
}

fn apply(f: &mut Fixture, action: &Action) -> Result<Receipt, ChainError> {
    let d = f.d;
    let open = |n: u64| U256::from(n) * OPEN;
    let chain = &mut f.chain;
    match *action {
        Action::Transfer { from, to, amount } => {
            let to = f.actors[to].address();
            transact(
                chain,
                &mut f.actors[from],
                d.token,
                &OpenToken::transferCall {
                    to,
                    amount: open(amount),
                },
            )
        }
        Action::Contribute { who, stake, hash } => transact(
            chain,
            &mut f.actors[who],
            d.datanets,
            &DatanetRegistry::contributeCall {
                datanetId: U256::from(1),
                contentHash: [hash; 32].into(),
                recordCount: 10,
                stake: open(stake),
            },
        ),
        Action::Review { who, id, accept } => transact(
            chain,
            &mut f.actors[who],
            d.datanets,
            &DatanetRegistry::reviewCall {
                contributionId: U256::from(id),
                accept,
            },
        ),
        Action::Pay { who, count } => transact(
            chain,
            &mut f.actors[who],
            d.market,
            &InferenceMarket::payInferenceCall {
                modelId: U256::from(1),
                count,
                maxFee: U256::MAX,
            },
        ),
        Action::SettlePush { to, amount } => {
            let epoch = view(chain, d.rewards, &AttributionRewards::currentEpochCall {})?;
            transact(
                chain,
                &mut f.attributor,
                d.rewards,
                &AttributionRewards::settlePushCall {
                    modelId: U256::from(1),
                    epoch,
                    total: open(amount),
                    recipients: vec![f.actors[to].address()],
                    amounts: vec![open(amount)],
                },
            )
        }
        Action::Stake { who, amount } => transact(
            chain,
            &mut f.actors[who],
            d.governance,
            &StakingGovernance::stakeCall {
                amount: open(amount),
            },
        ),
        Action::Unstake { who, amount } => transact(
            chain,
            &mut f.actors[who],
            d.governance,
            &StakingGovernance::unstakeCall {
                amount: open(amount),
            },
        ),
        Action::ClaimStakingRewards { who } => transact(
            chain,
            &mut f.actors[who],
            d.governance,
            &StakingGovernance::claimRewardsCall {},
        ),
        Action::Withdraw { id } => {
            let contributor = view(
                chain,
                d.datanets,
                &DatanetRegistry::contributionsCall { id: U256::from(id) },
            )
            .map(|c| c.contributor)
            .unwrap_or_default();
            let who = f
                .actors
                .iter()
                .position(|w| w.address() == contributor)
                .unwrap_or(0);
            transact(
                chain,
                &mut f.actors[who],
                d.datanets,
                &DatanetRegistry::withdrawStakeCall {
                    contributionId: U256::from(id),
                },
            )
        }
        Action::SlashHarmful { id } => transact(
            chain,
            &mut f.attributor,
            d.datanets,
            &DatanetRegistry::slashHarmfulCall {
                contributionId: U256::from(id),
                evidence: Default::default(),
            },
        ),
        Action::ApplyGrant { who, usd } => transact(
            chain,
            &mut f.actors[who],
            d.grants,
            &GrantVault::applyForGrantCall {
                tier: if usd > 50_000 { 1 } else { 0 },
                amountUsd: U256::from(usd),
                milestones: 2,
                proposalHash: Default::default(),
            },
        ),
        Action::ApproveGrant { member, id } => transact(
            chain,
            &mut f.committee[member],
            d.grants,
            &GrantVault::approveGrantCall {
                grantId: U256::from(id),
            },
        ),
        Action::ReleaseMilestone { member, id } => transact(
            chain,
            &mut f.committee[member],
            d.grants,
            &GrantVault::releaseMilestoneCall {
                grantId: U256::from(id),
            },
        ),
        Action::FailGrant { member, id } => transact(
            chain,
            &mut f.committee[member],
            d.grants,
            &GrantVault::failGrantCall {
                grantId: U256::from(id),
            },
        ),
        Action::Propose { who } => {
            let split = [5_000u16, 2_000, 2_000, 1_000];
            let data = InferenceMarket::setFeeSplitCall {
                contributorsBps_: split[0],
                ownerBps_: split[1],
                stakersBps_: split[2],
                treasuryBps_: split[3],
            };
            transact(
                chain,
                &mut f.actors[who],
                d.governance,
                &StakingGovernance::proposeCall {
                    target: d.market,
                    data: data.abi_encode().into(),
                    description: String::new(),
                },
            )
        }
        Action::Vote { who, id, support } => transact(
            chain,
            &mut f.actors[who],
            d.governance,
            &StakingGovernance::voteCall {
                id: U256::from(id),
                support,
            },
        ),
        Action::Queue { id } => transact(
            chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::queueCall { id: U256::from(id) },
        ),
        Action::Execute { id } => transact(
            chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::executeCall { id: U256::from(id) },
        ),
        Action::Cancel { guardian, who, id } => {
            let wallet = match guardian {
                true => &mut f.committee[0],
                false => &mut f.actors[who],
            };
            transact(
                chain,
                wallet,
                d.governance,
                &StakingGovernance::cancelCall { id: U256::from(id) },
            )
        }
        Action::Advance { .. } => unreachable!("time moves in the test loop, not by a transaction"),
    }
}

/// A runner with a fixed seed: the suite explores the same cases on every run, so CI
/// results are reproducible.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(config.rng_algorithm);
    TestRunner::new_with_rng(config, rng)
}

#[test]
fn random_action_sequences_keep_supply_books_and_revert_atomicity() {
    let fixture = RefCell::new(Fixture::new());
    // Fund the grant vault once so grant actions can activate.
    {
        let f = &mut *fixture.borrow_mut();
        let amount = U256::from(1_000_000) * OPEN;
        transact(
            &mut f.chain,
            &mut f.admin,
            f.d.token,
            &OpenToken::approveCall {
                spender: f.d.grants,
                amount,
            },
        )
        .unwrap();
        transact(
            &mut f.chain,
            &mut f.admin,
            f.d.grants,
            &GrantVault::depositCall { amount },
        )
        .unwrap();
        f.snapshot = f.chain.snapshot().unwrap();
    }
    let succeeded = RefCell::new(std::collections::BTreeSet::new());
    runner(160)
        .run(&proptest::collection::vec(action(), 1..60), |actions| {
            let f = &mut *fixture.borrow_mut();
            f.reset();
            let mut settled = std::collections::BTreeSet::new();
            let mut outcomes = std::collections::BTreeMap::new();
            for action in &actions {
                if let Action::Advance { days } = *action {
                    f.chain.advance_time(days * 86_400).unwrap();
                    f.chain.mine().unwrap();
                    f.check_invariants()?;
                    f.check_outcomes(&mut outcomes)?;
                    continue;
                }
                let before = f.chain.state_digest();
                // Stakes before the only actions that can slash (a rejecting review, a
                // harmful verdict), to check each slash against them.
                let can_slash =
                    matches!(action, Action::Review { .. } | Action::SlashHarmful { .. });
                let escrow: Vec<U256> = (0..=8u64)
                    .filter(|_| can_slash)
                    .map(|id| {
                        view(
                            &mut f.chain,
                            f.d.datanets,
                            &DatanetRegistry::contributionsCall { id: U256::from(id) },
                        )
                        .unwrap()
                        .stake
                    })
                    .collect();
                let outcome = apply(f, action);
                if let Ok(receipt) = &outcome {
                    for e in receipt.events::<AttributionRewards::Settled>(f.d.rewards) {
                        prop_assert!(
                            settled.insert((e.modelId, e.epoch)),
                            "(model {}, epoch {}) settled twice",
                            e.modelId,
                            e.epoch
                        );
                    }
                    for e in receipt.events::<DatanetRegistry::Slashed>(f.d.datanets) {
                        let id = e.contributionId.to::<usize>();
                        let bps = U256::from(f.params.slash_bps);
                        prop_assert_eq!(e.amount, escrow[id] * bps / U256::from(10_000));
                        prop_assert!(!e.amount.is_zero(), "a zero slash was reported");
                    }
                }
                if outcome.is_ok() {
                    let kind = format!("{action:?}");
                    succeeded
                        .borrow_mut()
                        .insert(kind.split(' ').next().unwrap_or_default().to_string());
                }
                if let Err(e) = &outcome {
                    prop_assert_eq!(
                        f.chain.state_digest(),
                        before,
                        "{:?} was refused ({}) but changed state",
                        action,
                        e
                    );
                }
                f.check_invariants()?;
                f.check_outcomes(&mut outcomes)?;
            }
            Ok(())
        })
        .unwrap();
    // The sequences must exercise the happy paths too, not only reverts. (A random execute
    // rarely follows a queue and a timelock; executions are tested below and in
    // adversarial.rs.)
    let succeeded = succeeded.into_inner();
    for kind in [
        "Transfer",
        "Contribute",
        "Review",
        "Pay",
        "SettlePush",
        "Stake",
        "Unstake",
        "Withdraw",
        "SlashHarmful",
        "ApplyGrant",
        "ApproveGrant",
        "ReleaseMilestone",
        "Propose",
        "Vote",
        "Queue",
        "Cancel",
    ] {
        assert!(
            succeeded.contains(kind),
            "no {kind} action ever succeeded: {succeeded:?}"
        );
    }
}

#[test]
fn inference_fees_split_exactly() {
    let fixture = RefCell::new(Fixture::new());
    let strategy = (
        1u64..1_000_000_000_000,
        1u32..10_000,
        0u16..=10_000,
        0u16..=10_000,
        0u16..=10_000,
    );
    runner(32)
        .run(&strategy, |(price, count, a, b, c)| {
            let f = &mut *fixture.borrow_mut();
            f.reset();
            // A valid split from three cut points.
            let mut cuts = [a, b, c];
            cuts.sort_unstable();
            let split = [
                cuts[0],
                cuts[1] - cuts[0],
                cuts[2] - cuts[1],
                10_000 - cuts[2],
            ];
            f.chain_set_split(split);
            transact(
                &mut f.chain,
                &mut f.actors[0],
                f.d.models,
                &ModelRegistry::setPriceCall {
                    modelId: U256::from(1),
                    price: U256::from(price),
                },
            )
            .unwrap();
            let receipt = transact(
                &mut f.chain,
                &mut f.actors[3],
                f.d.market,
                &InferenceMarket::payInferenceCall {
                    modelId: U256::from(1),
                    count,
                    maxFee: U256::MAX,
                },
            )
            .unwrap();
            let paid: InferenceMarket::InferencePaid = receipt.event(f.d.market).unwrap();
            let fee = U256::from(price) * U256::from(count);
            prop_assert_eq!(paid.fee, fee);
            prop_assert_eq!(
                paid.toContributors + paid.toOwner + paid.toStakers + paid.toTreasury,
                fee
            );
            let share = |bps: u16| fee * U256::from(bps) / U256::from(10_000);
            prop_assert_eq!(paid.toContributors, share(split[0]));
            prop_assert_eq!(paid.toOwner, share(split[1]));
            // Nobody stakes in this fixture: the stakers' share goes to the treasury.
            prop_assert_eq!(paid.toStakers, U256::ZERO);
            f.check_invariants()
        })
        .unwrap();
}

impl Fixture {
    /// Once a proposal's vote has ended, whether it passed (passed, queued, executed) or was
    /// defeated must never change; canceled and expired are ends of either.
    fn check_outcomes(
        &mut self,
        seen: &mut std::collections::BTreeMap<u64, bool>,
    ) -> Result<(), TestCaseError> {
        let d = self.d;
        let count = view(
            &mut self.chain,
            d.governance,
            &StakingGovernance::proposalCountCall {},
        )
        .unwrap()
        .to::<u64>();
        for id in 1..=count {
            let state = view(
                &mut self.chain,
                d.governance,
                &StakingGovernance::stateCall { id: U256::from(id) },
            )
            .unwrap();
            // Pending (passed) 0, Active 1, Defeated 2, Queued 3, Executed 4.
            let passed = match state {
                0 | 3 | 4 => true,
                2 => false,
                _ => continue,
            };
            if let Some(&before) = seen.get(&id) {
                prop_assert_eq!(before, passed, "proposal {} changed outcome", id);
            }
            seen.insert(id, passed);
        }
        Ok(())
    }

    /// Actor 5 stakes the proposal threshold and proposes `split`; returns the proposal id.
    fn propose_split(&mut self, split: [u16; 4]) -> U256 {
        let d = self.d;
        let data = InferenceMarket::setFeeSplitCall {
            contributorsBps_: split[0],
            ownerBps_: split[1],
            stakersBps_: split[2],
            treasuryBps_: split[3],
        }
        .abi_encode();
        let stake = StakingGovernance::stakeCall {
            amount: self.params.proposal_threshold,
        };
        transact(&mut self.chain, &mut self.actors[5], d.governance, &stake).unwrap();
        let propose = StakingGovernance::proposeCall {
            target: d.market,
            data: data.into(),
            description: String::new(),
        };
        transact(&mut self.chain, &mut self.actors[5], d.governance, &propose)
            .unwrap()
            .event::<StakingGovernance::ProposalCreated>(d.governance)
            .unwrap()
            .proposalId
    }

    /// Sets the fee split the only legitimate way: a passed, timelocked governance proposal.
    fn chain_set_split(&mut self, split: [u16; 4]) {
        let d = self.d;
        let stake = self.params.proposal_threshold;
        let id = self.propose_split(split);
        transact(
            &mut self.chain,
            &mut self.actors[5],
            d.governance,
            &StakingGovernance::voteCall { id, support: true },
        )
        .unwrap();
        self.chain
            .advance_time(self.params.voting_period + 1)
            .unwrap();
        transact(
            &mut self.chain,
            &mut self.admin,
            d.governance,
            &StakingGovernance::queueCall { id },
        )
        .unwrap();
        self.chain
            .advance_time(self.params.timelock_delay + 1)
            .unwrap();
        transact(
            &mut self.chain,
            &mut self.admin,
            d.governance,
            &StakingGovernance::executeCall { id },
        )
        .unwrap();
        // Leave nobody staked so the staker share path is deterministic.
        self.chain.advance_time(1).unwrap();
        transact(
            &mut self.chain,
            &mut self.actors[5],
            d.governance,
            &StakingGovernance::unstakeCall { amount: stake },
        )
        .unwrap();
    }
}

#[test]
fn only_the_right_role_can_act() {
    let mut f = Fixture::new();
    let d = f.d;
    let outsider = 4; // neither reviewer, committee, attributor nor governance
    transact(
        &mut f.chain,
        &mut f.actors[3],
        d.datanets,
        &DatanetRegistry::contributeCall {
            datanetId: U256::from(1),
            contentHash: [1; 32].into(),
            recordCount: 1,
            stake: f.params.min_stake,
        },
    )
    .unwrap();
    let cases: Vec<(&str, Result<Receipt, ChainError>, &str)> = vec![
        (
            "review by a non-reviewer",
            transact(
                &mut f.chain,
                &mut f.actors[outsider],
                d.datanets,
                &DatanetRegistry::reviewCall {
                    contributionId: U256::from(1),
                    accept: false,
                },
            ),
            "NotReviewer(",
        ),
        (
            "self review",
            transact(
                &mut f.chain,
                &mut f.actors[3],
                d.datanets,
                &DatanetRegistry::reviewCall {
                    contributionId: U256::from(1),
                    accept: true,
                },
            ),
            "NotReviewer(",
        ),
        (
            "slash by a non-attributor",
            transact(
                &mut f.chain,
                &mut f.actors[outsider],
                d.datanets,
                &DatanetRegistry::slashHarmfulCall {
                    contributionId: U256::from(1),
                    evidence: Default::default(),
                },
            ),
            "NotAttributor(",
        ),
        (
            "settle by a non-attributor",
            transact(
                &mut f.chain,
                &mut f.actors[outsider],
                d.rewards,
                &AttributionRewards::settlePushCall {
                    modelId: U256::from(1),
                    epoch: 1,
                    total: U256::from(1),
                    recipients: vec![],
                    amounts: vec![],
                },
            ),
            "NotAttributor(",
        ),
        (
            "fee split by a non-governance account",
            transact(
                &mut f.chain,
                &mut f.admin,
                d.market,
                &InferenceMarket::setFeeSplitCall {
                    contributorsBps_: 10_000,
                    ownerBps_: 0,
                    stakersBps_: 0,
                    treasuryBps_: 0,
                },
            ),
            "NotGovernance(",
        ),
        (
            "slash fraction by a non-governance account",
            transact(
                &mut f.chain,
                &mut f.admin,
                d.datanets,
                &DatanetRegistry::setSlashBpsCall { v: 10_000 },
            ),
            "NotGovernance(",
        ),
        (
            "grant approval by a non-member",
            transact(
                &mut f.chain,
                &mut f.actors[outsider],
                d.grants,
                &GrantVault::approveGrantCall {
                    grantId: U256::from(1),
                },
            ),
            "NotCommittee(",
        ),
        (
            "fund a pool directly",
            transact(
                &mut f.chain,
                &mut f.actors[outsider],
                d.rewards,
                &AttributionRewards::fundCall {
                    modelId: U256::from(1),
                    amount: U256::from(1),
                },
            ),
            "NotMarket(",
        ),
        (
            "withdraw a pending contribution",
            transact(
                &mut f.chain,
                &mut f.actors[3],
                d.datanets,
                &DatanetRegistry::withdrawStakeCall {
                    contributionId: U256::from(1),
                },
            ),
            "NotPending(",
        ),
    ];
    for (what, outcome, reason) in cases {
        let err = outcome.expect_err(what);
        let got = err.revert_reason().unwrap_or_default().to_string();
        assert!(
            got.starts_with(reason),
            "{what}: expected {reason}…, got {err}"
        );
    }
}

#[test]
fn stake_locks_hold_until_unlock_time_and_attribution_window() {
    let fixture = RefCell::new(Fixture::new());
    runner(12)
        .run(&(0u64..20 * 86_400), |wait| {
            let f = &mut *fixture.borrow_mut();
            f.reset();
            let d = f.d;
            let receipt = transact(
                &mut f.chain,
                &mut f.actors[3],
                d.datanets,
                &DatanetRegistry::contributeCall {
                    datanetId: U256::from(1),
                    contentHash: [9; 32].into(),
                    recordCount: 1,
                    stake: f.params.min_stake,
                },
            )
            .unwrap();
            let submitted = receipt
                .event::<DatanetRegistry::ContributionSubmitted>(d.datanets)
                .unwrap();
            transact(
                &mut f.chain,
                &mut f.actors[1],
                d.datanets,
                &DatanetRegistry::reviewCall {
                    contributionId: submitted.contributionId,
                    accept: true,
                },
            )
            .unwrap();
            // An accepted stake waits for its lock and for the attribution window after
            // acceptance, whichever ends later.
            let c = view(
                &mut f.chain,
                d.datanets,
                &DatanetRegistry::contributionsCall {
                    id: submitted.contributionId,
                },
            )
            .unwrap();
            let unlock = c.unlockAt.max(c.decidedAt + f.params.attribution_window);
            let next_block_time = f.chain.head().unwrap().timestamp + f.chain_block_time() + wait;
            f.chain.advance_time(wait).unwrap();
            let outcome = transact(
                &mut f.chain,
                &mut f.actors[3],
                d.datanets,
                &DatanetRegistry::withdrawStakeCall {
                    contributionId: submitted.contributionId,
                },
            );
            if next_block_time >= unlock {
                prop_assert!(
                    outcome.is_ok(),
                    "unlocked stake could not be withdrawn: {:?}",
                    outcome.err()
                );
            } else {
                let err = outcome.expect_err("withdrawal before unlock must fail");
                prop_assert!(
                    err.revert_reason()
                        .unwrap_or_default()
                        .starts_with("StillLocked(")
                );
            }
            f.check_invariants()
        })
        .unwrap();
}

impl Fixture {
    fn chain_block_time(&self) -> u64 {
        self.chain.config().block_time
    }
}

#[test]
fn governance_changes_apply_only_after_vote_and_timelock() {
    let mut f = Fixture::new();
    let d = f.d;
    let split = |f: &mut Fixture| {
        let s = view(&mut f.chain, d.market, &InferenceMarket::feeSplitCall {}).unwrap();
        [s._0, s._1, s._2, s._3]
    };
    let initial = split(&mut f);
    let stake = f.params.proposal_threshold;
    let id = f.propose_split([7_000, 1_000, 1_000, 1_000]);
    let refused = |r: Result<Receipt, ChainError>, reason: &str| {
        let e = r.expect_err(reason);
        assert!(
            e.revert_reason().unwrap_or_default().starts_with(reason),
            "expected {reason}, got {e}"
        );
    };
    refused(
        transact(
            &mut f.chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::queueCall { id },
        ),
        "ProposalNotSucceeded(",
    );
    transact(
        &mut f.chain,
        &mut f.actors[5],
        d.governance,
        &StakingGovernance::voteCall { id, support: true },
    )
    .unwrap();
    // Votes keep their snapshot weight: unstaking after the vote changes nothing.
    transact(
        &mut f.chain,
        &mut f.actors[5],
        d.governance,
        &StakingGovernance::unstakeCall { amount: stake },
    )
    .unwrap();
    refused(
        transact(
            &mut f.chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::executeCall { id },
        ),
        "ProposalNotQueued(",
    );
    assert_eq!(split(&mut f), initial, "a vote alone changes nothing");
    f.chain.advance_time(f.params.voting_period + 1).unwrap();
    transact(
        &mut f.chain,
        &mut f.admin,
        d.governance,
        &StakingGovernance::queueCall { id },
    )
    .unwrap();
    refused(
        transact(
            &mut f.chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::executeCall { id },
        ),
        "TimelockNotElapsed(",
    );
    assert_eq!(
        split(&mut f),
        initial,
        "queued but timelocked changes nothing"
    );
    f.chain.advance_time(f.params.timelock_delay + 1).unwrap();
    transact(
        &mut f.chain,
        &mut f.admin,
        d.governance,
        &StakingGovernance::executeCall { id },
    )
    .unwrap();
    assert_eq!(split(&mut f), [7_000, 1_000, 1_000, 1_000]);
    refused(
        transact(
            &mut f.chain,
            &mut f.admin,
            d.governance,
            &StakingGovernance::executeCall { id },
        ),
        "ProposalNotQueued(",
    );
}

/// The bounds scenario validation checks ([`olsim_chain::protocol::bounds`]) are the
/// deployed contracts' own constants.
#[test]
fn validation_bounds_match_the_contracts() {
    use olsim_chain::protocol::bounds::*;
    let mut f = Fixture::new();
    let d = f.d;
    let c = &mut f.chain;
    let stake = U256::from(MAX_STAKE_OPEN) * OPEN;
    assert_eq!(
        view(c, d.datanets, &DatanetRegistry::MAX_MIN_STAKECall {}).unwrap(),
        stake
    );
    assert_eq!(
        view(
            c,
            d.governance,
            &StakingGovernance::MAX_PROPOSAL_THRESHOLDCall {}
        )
        .unwrap(),
        stake
    );
    assert_eq!(
        view(c, d.datanets, &DatanetRegistry::MAX_LOCK_PERIODCall {}).unwrap(),
        MAX_LOCK_PERIOD
    );
    assert_eq!(
        view(c, d.datanets, &DatanetRegistry::MAX_REVIEW_QUORUMCall {}).unwrap(),
        *REVIEW_QUORUM.end()
    );
    let voting = view(
        c,
        d.governance,
        &StakingGovernance::MIN_VOTING_PERIODCall {},
    )
    .unwrap()
        ..=view(
            c,
            d.governance,
            &StakingGovernance::MAX_VOTING_PERIODCall {},
        )
        .unwrap();
    assert_eq!(voting, VOTING_PERIOD);
    assert_eq!(
        view(
            c,
            d.governance,
            &StakingGovernance::MAX_TIMELOCK_DELAYCall {}
        )
        .unwrap(),
        MAX_TIMELOCK_DELAY
    );
    let epoch = view(c, d.rewards, &AttributionRewards::MIN_EPOCH_LENGTHCall {}).unwrap()
        ..=view(c, d.rewards, &AttributionRewards::MAX_EPOCH_LENGTHCall {}).unwrap();
    assert_eq!(epoch, EPOCH_LENGTH);
}
