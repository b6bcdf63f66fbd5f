//! The review stage: each Datanet's reviewers vote on its pending contributions, in a seeded
//! order, until `DatanetRegistry` decides each one (a quorum of accepts or of rejects).
//! Each reviewer reviews a contribution at most once, across epochs: a contribution that
//! every reviewer has reviewed without reaching a quorum either way (a split vote) stays
//! pending, its stake locked, until the registry's review deadline (`reviewPeriod`, 14 days
//! after submission). At the first review stage past it, its contributor withdraws the whole
//! stake and the contribution lapses (status `Lapsed`: never accepted, never slashed, its
//! data never used). The report counts pending and lapsed records per contributor.
//! A contribution's reviews draw from its own stream
//! `"engine/review/<datanet>/<epoch>/<contributor>/<n>"` (its contributor's `n`-th
//! contribution), so the counterfactual runs review everyone else alike.
//! Honest reviewers judge a contribution right with their `accuracy`; colluding ones vote by
//! their attack's intent ([`colluding_reviewers::vote`]).

use std::collections::BTreeMap;

use olsim_chain::contracts::DatanetRegistry;
use olsim_ml::data::ContributorId;
use olsim_ml::data::rng::stream;
use rand::RngExt;

use super::EngineError;
use super::attacks::colluding_reviewers;
use super::data::{DatanetState, Status};
use super::net::Net;
use super::txs::Action;
use crate::scenario::Scenario;

/// Reviewers vote on pending contributions until the contract decides each one.
pub(super) fn review(
    chain: &mut Net,
    scenario: &Scenario,
    datanets: &mut [DatanetState],
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    let quorum = usize::from(chain.view(d.datanets, &DatanetRegistry::reviewQuorumCall {})?);
    for (n, net) in datanets.iter_mut().enumerate() {
        // Contributions past their review deadline lapse: their authors take the stake back.
        let (lapsing, withdrawals) = past_deadline(chain, net, epoch)?;
        for (&k, receipt) in lapsing.iter().zip(chain.send(epoch, withdrawals)?) {
            if receipt.is_some() {
                net.contributions[k].status = Status::Lapsed;
            }
        }
        let mut actions = Vec::new();
        // (contribution, reviewer, accept) of each action, to record the votes taken.
        let mut cast: Vec<(usize, usize, bool)> = Vec::new();
        // How many contributions each contributor has made before this one.
        let mut earlier: BTreeMap<ContributorId, u32> = BTreeMap::new();
        for (k, contribution) in net.contributions.iter().enumerate() {
            let c = contribution.contributor;
            let nth = *earlier.entry(c).and_modify(|n| *n += 1).or_insert(0);
            if contribution.status != Status::Pending || lapsing.contains(&k) {
                continue;
            }
            // One stream per contribution and epoch: its reviews draw the same whatever
            // other contributions there are (a counterfactual without some of them
            // reviews the rest alike).
            let mut rng = stream(
                scenario.run.seed,
                &format!("engine/review/{}/{epoch}/{}/{nth}", net.name, c.0),
            );
            let author = &net.identities[contribution.contributor.0 as usize];
            let acceptable = net.acceptable(contribution);
            let mut order: Vec<usize> = (0..net.reviewers.len()).collect();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let (mut yes, mut no) = (0, 0);
            for &(_, accept) in &contribution.votes {
                *(if accept { &mut yes } else { &mut no }) += 1;
            }
            for r in order {
                if yes >= quorum || no >= quorum {
                    break;
                }
                if contribution.votes.iter().any(|&(voter, _)| voter == r) {
                    continue;
                }
                let reviewer = &net.reviewers[r];
                let accept = match reviewer.colluding {
                    Some((reject_rate, start)) if epoch >= start => {
                        colluding_reviewers::vote(&mut rng, author.attack.is_some(), reject_rate)
                    }
                    _ => {
                        let honest_accuracy = scenario.datanets[n].reviewers.accuracy;
                        acceptable == rng.random_bool(honest_accuracy)
                    }
                };
                if accept {
                    yes += 1;
                } else {
                    no += 1;
                }
                actions.push(Action::call(
                    reviewer.agent,
                    "review",
                    d.datanets,
                    &DatanetRegistry::reviewCall {
                        contributionId: contribution.chain_id,
                        accept,
                    },
                ));
                cast.push((k, r, accept));
            }
        }
        let receipts = chain.send(epoch, actions)?;
        for ((k, r, accept), receipt) in cast.into_iter().zip(receipts) {
            if receipt.is_some() {
                net.contributions[k].votes.push((r, accept));
            }
        }
        let decided = &chain.books.decided;
        for c in net
            .contributions
            .iter_mut()
            .filter(|c| c.status == Status::Pending)
        {
            match decided.get(&c.chain_id) {
                Some(true) => {
                    c.status = Status::Accepted;
                    net.accepted.extend_from_slice(&c.items);
                }
                Some(false) => c.status = Status::Rejected,
                None => {}
            }
        }
    }
    Ok(())
}

/// The contributions of `net` still pending from an earlier epoch whose review deadline has
/// passed: for each, its contributor's `withdrawStake` would succeed in the next block (a
/// dry run against the registry's own clock). Returns them (indexes into
/// `net.contributions`) with the withdrawals to send.
fn past_deadline(
    chain: &mut Net,
    net: &DatanetState,
    epoch: u32,
) -> Result<(Vec<usize>, Vec<Action>), EngineError> {
    let registry = chain.deployment.datanets;
    let (mut due, mut withdrawals) = (Vec::new(), Vec::new());
    for (k, c) in net.contributions.iter().enumerate() {
        if c.status != Status::Pending || c.epoch == epoch {
            continue;
        }
        let withdraw = Action::call(
            net.identities[c.contributor.0 as usize].agent,
            "withdraw stake",
            registry,
            &DatanetRegistry::withdrawStakeCall {
                contributionId: c.chain_id,
            },
        );
        if chain.would_succeed(&withdraw)? {
            due.push(k);
            withdrawals.push(withdraw);
        }
    }
    Ok((due, withdrawals))
}
