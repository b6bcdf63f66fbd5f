//! Datanets during a run: who contributes what and when, and staked contributions on chain
//! (their review is [`super::review`]).
//!
//! Generated Datanets come with the generator's ground truth; file Datanets
//! (`source = "file"`, bring your own data) are loaded from CSV or JSONL and have none. Every
//! author named in a file is an honest identity submitting its own items in epoch 0 with
//! the minimum stake, through the same contribute / review path as generated data. Honest
//! reviewers of a generated Datanet judge a contribution by its clean items (ground truth,
//! with their accuracy); on a file Datanet nobody knows which labels are right, so they
//! judge what the data shows them: whether its items are new content or exact copies of
//! items already submitted to the Datanet ([`Contribution::fresh`]).

use std::collections::BTreeSet;

use alloy_primitives::{B256, U256, keccak256};
use olsim_chain::contracts::DatanetRegistry;
use olsim_ml::data::{ContributorId, Datanet};

use super::actors::{Actors, AgentId, Role};
use super::net::Net;
use super::txs::Action;
use super::{EngineError, open};
use crate::scenario::{
    AttackKind, AttackerIdentities, DatanetConfig, GeneratedDatanet, Scenario, Task,
};

/// Fraction of good items at or above which a contribution is acceptable to honest
/// reviewers: clean items (ground truth) on a generated Datanet, new content (not a copy of
/// an item already submitted) on a file Datanet.
pub const ACCEPTABLE_CLEAN_FRACTION: f64 = 0.7;

/// The agent (and report) name of generated contributor `id` of Datanet `datanet`.
pub(super) fn generated_contributor_name(datanet: &str, id: ContributorId) -> String {
    format!("{datanet}/contributor-{}", id.0)
}

/// A contributing identity of a Datanet, indexed by its `ContributorId`.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The agent that signs its transactions.
    pub agent: AgentId,
    /// The attack it mounts; `None` for an honest contributor.
    pub attack: Option<AttackKind>,
    /// Epoch it submits its data in.
    pub epoch: u32,
    /// Stake it puts behind its contribution, wei.
    pub stake: U256,
    /// Its honest contributor group (index of `[[datanets.contributors]]`); `None` for
    /// attackers and a file Datanet's contributors.
    pub group: Option<usize>,
}

impl Identity {
    /// One identity per generated contributor: honest ones arrive evenly over their
    /// group's `arrival_epochs` and stake what it says; attackers arrive at their entry's
    /// `start_epoch`.
    pub fn assign(
        scenario: &Scenario,
        config: &DatanetConfig,
        generated: &GeneratedDatanet,
        data: &Datanet,
        actors: &mut Actors,
    ) -> Result<Vec<Identity>, EngineError> {
        let groups = config.contributor_groups();
        let truth = data.truth.as_ref().ok_or_else(|| {
            EngineError::Scenario(format!("datanet `{}` has no ground truth", config.name))
        })?;
        let mut stakes = Vec::with_capacity(groups.len());
        for group in &groups {
            stakes.push(open(group.stake.unwrap_or(scenario.tokenomics.min_stake))?);
        }
        // Each group's members arrive evenly over its own arrival epochs.
        let mut members = vec![0usize; groups.len()];
        for g in generated.honest_group.values() {
            members[*g] += 1;
        }
        let mut seen = vec![0usize; groups.len()];
        let start_of = |kind: AttackKind| {
            scenario
                .attackers
                .iter()
                .filter(|a| a.kind == kind && a.datanet.as_deref() == Some(config.name.as_str()))
                .map(|a| a.start_epoch)
                .min()
                .unwrap_or(0)
        };
        let mut arrivals = Vec::with_capacity(truth.contributors.len());
        let mut agents = Vec::with_capacity(truth.contributors.len());
        for spec in &truth.contributors {
            let (attack, epoch, group) = match (
                generated.attack_of(spec.id),
                AttackKind::of_behaviour(&spec.behaviour),
            ) {
                (Some((entry, kind)), _) => {
                    (Some(kind), scenario.attackers[entry].start_epoch, None)
                }
                (None, None) => {
                    let g = generated.honest_group.get(&spec.id).copied().unwrap_or(0);
                    let arrivals = groups[g].arrival_epochs.max(1) as usize;
                    let epoch = (seen[g] * arrivals / members[g].max(1)) as u32;
                    seen[g] += 1;
                    (None, epoch, Some(g))
                }
                (None, Some(kind)) => (Some(kind), start_of(kind), None),
            };
            let role = attack.map_or(Role::Contributor, Role::Attacker);
            agents.push((generated_contributor_name(&config.name, spec.id), role));
            arrivals.push((attack, epoch, group));
        }
        let ids = actors.add_all(agents);
        Ok(ids
            .into_iter()
            .zip(arrivals)
            .map(|(agent, (attack, epoch, group))| Identity {
                agent,
                attack,
                epoch,
                // Attackers post what the first group posts.
                stake: stakes[group.unwrap_or(0)],
                group,
            })
            .collect())
    }

    /// One honest identity per author named in file Datanet `data` (by its
    /// `ContributorId`), each submitting all of its items in epoch 0 with the minimum stake.
    pub fn from_file(
        scenario: &Scenario,
        config: &DatanetConfig,
        data: &Datanet,
        actors: &mut Actors,
    ) -> Result<Vec<Identity>, EngineError> {
        let stake = open(scenario.tokenomics.min_stake)?;
        Ok(data
            .contributors
            .iter()
            .map(|author| Identity {
                agent: actors.add(
                    format!("{}/contributor-{author}", config.name),
                    Role::Contributor,
                ),
                attack: None,
                epoch: 0,
                stake,
                group: None,
            })
            .collect())
    }
}

/// A reviewer of a Datanet; colluding ones ([`colluding_reviewers`]) carry their `rate`.
///
/// [`colluding_reviewers`]: super::attacks::colluding_reviewers
#[derive(Clone, Debug)]
pub struct Reviewer {
    /// The agent.
    pub agent: AgentId,
    /// For a colluder, its probability of rejecting an honest contribution and the epoch it
    /// starts colluding in (before that it reviews honestly).
    pub colluding: Option<(f64, u32)>,
}

/// Where a submitted contribution stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Awaiting reviews.
    Pending,
    /// Accepted by review.
    Accepted,
    /// Rejected by review (stake slashed).
    Rejected,
    /// Left pending past the registry's review deadline (a split vote no reviewer could
    /// break): its contributor withdrew the whole stake and it was never used.
    Lapsed,
}

/// A contribution that made it on chain.
#[derive(Clone, Debug)]
pub struct Contribution {
    /// On-chain contribution id.
    pub chain_id: U256,
    /// Who submitted it.
    pub contributor: ContributorId,
    /// Its items: record ids (classification) or document ids (text).
    pub items: Vec<u32>,
    /// On a file Datanet, how many of its items are new content: not an exact copy (same
    /// content hash) of an item submitted to the Datanet before, or earlier in this
    /// contribution. Anyone can check this from the data. `None` on a generated Datanet,
    /// whose reviewers judge by the items' ground truth instead.
    pub fresh: Option<usize>,
    /// Epoch it was submitted in.
    pub epoch: u32,
    /// Review outcome.
    pub status: Status,
    /// The reviews the registry took: `(index into the Datanet's reviewers, accept)`. A
    /// reviewer reviews a contribution once; one that every reviewer has reviewed without
    /// a quorum either way stays pending until its review deadline, then lapses.
    pub votes: Vec<(usize, bool)>,
}

/// A Datanet during a run.
#[derive(Debug)]
pub struct DatanetState {
    /// Scenario name.
    pub name: String,
    /// On-chain id.
    pub chain_id: U256,
    /// The curator who created it.
    pub curator: AgentId,
    /// Its reviewers.
    pub reviewers: Vec<Reviewer>,
    /// Its contributors, by `ContributorId`.
    pub identities: Vec<Identity>,
    /// The data: generated (with ground truth) or loaded from a file (none).
    pub data: Datanet,
    /// Contributions on chain, in submission order.
    pub contributions: Vec<Contribution>,
    /// What the Datanet's items are.
    pub task: Task,
    /// Items of each contributor, by `ContributorId` (see [`Self::items_by_contributor`]).
    pub items: Vec<Vec<u32>>,
    /// Items of accepted contributions, in acceptance order.
    pub accepted: Vec<u32>,
    /// Content hashes of every item submitted so far to a file Datanet (for
    /// [`Contribution::fresh`]); empty on a generated Datanet.
    pub submitted: BTreeSet<B256>,
    /// Ground truth: the identities of attackers whose data the generator drew as honest
    /// (sybils, attribution gamers); empty on a file Datanet.
    pub attackers: Vec<AttackerIdentities>,
    /// The names of its honest contributor groups, by [`Identity::group`].
    pub group_names: Vec<String>,
}

impl DatanetState {
    /// Items (records or documents) of every contributor, indexed by `ContributorId`.
    pub fn items_by_contributor(data: &Datanet, task: Task) -> Vec<Vec<u32>> {
        let mut out = vec![Vec::new(); data.contributors.len()];
        match task {
            Task::Classification => {
                for r in &data.records {
                    out[r.author.0 as usize].push(r.id.0);
                }
            }
            Task::Text => {
                for d in &data.documents {
                    out[d.author.0 as usize].push(d.id.0);
                }
            }
        }
        out
    }

    /// Who submitted item `i` (every record and document names its contributor).
    pub fn item_author(&self, i: u32) -> ContributorId {
        match self.task {
            Task::Classification => self.data.records[i as usize].author,
            Task::Text => self.data.documents[i as usize].author,
        }
    }

    /// Ground truth of item `i`: `(clean, original)`; `None` on a file Datanet, whose
    /// loaded data has no ground truth.
    pub fn item_truth(&self, i: u32) -> Option<(bool, bool)> {
        self.data.truth.as_ref()?;
        Some(match self.task {
            Task::Classification => {
                let r = &self.data.records[i as usize];
                (r.clean, r.copy_of.is_none())
            }
            Task::Text => {
                let d = &self.data.documents[i as usize];
                (d.clean, d.copy_of.is_none())
            }
        })
    }

    /// Content hash of item `i`.
    fn item_hash(&self, i: u32) -> B256 {
        match self.task {
            Task::Classification => self.data.records[i as usize].hash,
            Task::Text => self.data.documents[i as usize].hash,
        }
    }

    /// Content hash of a set of items: keccak256 of their own hashes in order.
    fn content_hash(&self, items: &[u32]) -> B256 {
        let mut bytes = Vec::with_capacity(32 * items.len());
        for &i in items {
            bytes.extend_from_slice(self.item_hash(i).as_slice());
        }
        keccak256(bytes)
    }

    /// Whether honest reviewers should accept `c` (before their own errors): at least
    /// [`ACCEPTABLE_CLEAN_FRACTION`] of its items are clean (ground truth) on a generated
    /// Datanet, or new content ([`Contribution::fresh`]) on a file Datanet.
    pub fn acceptable(&self, c: &Contribution) -> bool {
        if c.items.is_empty() {
            return false;
        }
        let good = match self.data.truth {
            Some(_) => c
                .items
                .iter()
                .filter(|&&i| self.item_truth(i).is_some_and(|(clean, _)| clean))
                .count(),
            None => c
                .fresh
                .expect("contributions to file Datanets count their fresh items"),
        };
        good as f64 / c.items.len() as f64 >= ACCEPTABLE_CLEAN_FRACTION
    }
}

/// Contributors due this epoch submit their records with their stake.
pub(super) fn contribute(
    chain: &mut Net,
    datanets: &mut [DatanetState],
    epoch: u32,
) -> Result<(), EngineError> {
    let d = chain.deployment;
    for net in datanets.iter_mut() {
        let mut due = Vec::new();
        let mut actions = Vec::new();
        for (i, identity) in net.identities.iter().enumerate() {
            if identity.epoch != epoch {
                continue;
            }
            let c = ContributorId(i as u32);
            let items = net.items[c.0 as usize].clone();
            if items.is_empty() {
                continue;
            }
            actions.push(Action::call(
                identity.agent,
                "contribute",
                d.datanets,
                &DatanetRegistry::contributeCall {
                    datanetId: net.chain_id,
                    contentHash: net.content_hash(&items),
                    recordCount: items.len() as u32,
                    stake: identity.stake,
                },
            ));
            due.push((c, items));
        }
        let receipts = chain.send(epoch, actions)?;
        for ((contributor, items), receipt) in due.into_iter().zip(receipts) {
            let Some(receipt) = receipt else { continue };
            let submitted = receipt.event::<DatanetRegistry::ContributionSubmitted>(d.datanets)?;
            let fresh = net.data.truth.is_none().then(|| {
                let hashes: Vec<B256> = items.iter().map(|&i| net.item_hash(i)).collect();
                hashes
                    .into_iter()
                    .filter(|h| net.submitted.insert(*h))
                    .count()
            });
            net.contributions.push(Contribution {
                chain_id: submitted.contributionId,
                contributor,
                items,
                fresh,
                epoch,
                status: Status::Pending,
                votes: Vec::new(),
            });
        }
    }
    Ok(())
}
