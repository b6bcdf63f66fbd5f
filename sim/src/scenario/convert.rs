//! From a scenario to the types the engine builds on: [`ProtocolParams`] for the chain,
//! [`DatanetSpec`] for the Datanet generator, [`LoraConfig`], [`MlpConfig`] and
//! [`TrainConfig`] for Model Factory, and [`ParamChange`] for governance proposals.
//!
//! Every conversion checks what it converts and returns a [`ConvertError`] rather than
//! panicking, so it is safe on a scenario that was built in code and never validated; the
//! validator runs the same checks and reports them with their file positions.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use olsim_chain::protocol::bounds::{
    MAX_LOCK_PERIOD, MAX_STAKE_OPEN, MAX_TIMELOCK_DELAY, REVIEW_QUORUM, VOTING_PERIOD,
};
use olsim_chain::protocol::{FeeSplit, ProtocolParams, total_supply};
use olsim_ml::data::rng::stream;
use olsim_ml::data::{
    Behaviour, ContributorId, ContributorSpec, Coverage, DatanetSpec, Domain, PopulationSpec,
    SpecError, TextParams, build_population,
};
use olsim_ml::model::{LoraConfig, LoraTargets, MlpConfig, ModelError, TrainConfig};
use rand::RngExt;
use thiserror::Error;

use crate::units::{OPEN_DECIMALS, USD_DECIMALS, got, open_wei, to_fixed};

use super::schema::{
    AttackKind, DEFAULT_HIDDEN, DatanetConfig, FeeSplitConfig, ModelConfig, ModelKind, Parameter,
    Proposal, Scenario, Source, Tokenomics,
};

/// A field whose value cannot be converted.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("{field}: {message}")]
pub struct InvalidValue {
    /// The field, relative to its section (`fee_split`, `min_stake`).
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

/// Why a scenario could not be converted.
#[derive(Debug, Error)]
pub enum ConvertError {
    /// A field is out of range.
    #[error("invalid value: {0}")]
    Invalid(#[from] InvalidValue),
    /// The Datanet is loaded from a file, so it has no generator spec.
    #[error("Datanet `{0}` is loaded from a file; only generated Datanets have a generator spec")]
    NotGenerated(String),
    /// An index past the end of a section.
    #[error("{section} has no entry {index} (it has {len})")]
    NoSuchEntry {
        /// The section (`datanets`, `models`).
        section: &'static str,
        /// The index asked for.
        index: usize,
        /// Entries in the section.
        len: usize,
    },
    /// A model is not a classifier, so it has no MLP.
    #[error("model `{0}` is a language model; only classifiers have an MLP config")]
    NotClassifier(String),
    /// A name does not resolve.
    #[error("no Datanet named `{0}`")]
    UnknownDatanet(String),
    /// The Datanet generator rejected the spec.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Model Factory rejected the model or adapter config.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// A fraction in `[0, 1]` as basis points; it must be a whole number of basis points.
pub(crate) fn to_bps(v: f64) -> Result<u16, String> {
    let allowed = "a fraction in [0, 1] in steps of 0.0001 (one basis point)";
    match to_fixed(v, 4) {
        Ok(bps) if bps <= U256::from(10_000) => Ok(bps.to::<u16>()),
        _ => Err(got(v, allowed)),
    }
}

/// Collects every invalid field while converting, returning a placeholder for each.
#[derive(Default)]
pub(crate) struct Collector(pub Vec<InvalidValue>);

impl Collector {
    /// The value, or `T::default()` after recording the error under `field`.
    pub fn take<T: Default>(&mut self, field: &str, r: Result<T, String>) -> T {
        r.unwrap_or_else(|message| {
            self.0.push(InvalidValue {
                field: field.to_string(),
                message,
            });
            T::default()
        })
    }
}

fn fee_split(s: &FeeSplitConfig) -> Result<FeeSplit, String> {
    let parts = [
        s.contributors_bps,
        s.owner_bps,
        s.stakers_bps,
        s.treasury_bps,
    ];
    let sum: u32 = parts.iter().map(|&p| u32::from(p)).sum();
    if sum != 10_000 {
        return Err(got(
            format!("shares summing to {sum} basis points"),
            "contributors_bps + owner_bps + stakers_bps + treasury_bps = 10000",
        ));
    }
    Ok(FeeSplit {
        contributors_bps: s.contributors_bps,
        owner_bps: s.owner_bps,
        stakers_bps: s.stakers_bps,
        treasury_bps: s.treasury_bps,
    })
}

/// `v` if it lies in `range` (a contract's bounds, [`olsim_chain::protocol::bounds`]), else
/// what is allowed, in `unit`.
fn within<T: PartialOrd + std::fmt::Display>(
    v: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<T, String> {
    if range.contains(&v) {
        Ok(v)
    } else {
        let allowed = format!("{unit} from {} to {}", range.start(), range.end());
        Err(got(v, &allowed))
    }
}

/// `v` OPEN in token wei, if at most the contracts' [`MAX_STAKE_OPEN`].
fn stake_open_wei(v: f64) -> Result<U256, String> {
    if v > MAX_STAKE_OPEN as f64 {
        let allowed = format!("an amount of OPEN from 0 to {MAX_STAKE_OPEN}");
        return Err(got(v, &allowed));
    }
    open_wei(v)
}

fn at_least_one<T: Default + PartialEq + std::fmt::Display>(v: T, what: &str) -> Result<T, String> {
    if v == T::default() {
        Err(got(v, what))
    } else {
        Ok(v)
    }
}

impl Tokenomics {
    /// The on-chain parameters, or the first invalid field.
    pub fn protocol_params(&self) -> Result<ProtocolParams, InvalidValue> {
        self.convert().map_err(|mut all| all.remove(0))
    }

    /// The on-chain parameters, or every invalid field.
    pub(crate) fn convert(&self) -> Result<ProtocolParams, Vec<InvalidValue>> {
        let mut c = Collector::default();
        let params = ProtocolParams {
            min_stake: c.take("min_stake", stake_open_wei(self.min_stake)),
            slash_bps: c.take("slash_fraction", to_bps(self.slash_fraction)),
            lock_period: c.take(
                "lock_period_s",
                within(self.lock_period_s, 0..=MAX_LOCK_PERIOD, "seconds"),
            ),
            review_quorum: c.take(
                "review_quorum",
                within(self.review_quorum, REVIEW_QUORUM, "an integer"),
            ),
            fee_split: c
                .take("fee_split", fee_split(&self.fee_split).map(Some))
                .unwrap_or(FeeSplit {
                    contributors_bps: 0,
                    owner_bps: 0,
                    stakers_bps: 0,
                    treasury_bps: 0,
                }),
            proposal_threshold: c.take(
                "proposal_threshold",
                stake_open_wei(self.proposal_threshold),
            ),
            voting_period: c.take(
                "voting_period_s",
                within(self.voting_period_s, VOTING_PERIOD, "seconds"),
            ),
            timelock_delay: c.take(
                "timelock_delay_s",
                within(self.timelock_delay_s, 0..=MAX_TIMELOCK_DELAY, "seconds"),
            ),
            quorum_bps: c.take(
                "quorum_fraction",
                match to_bps(self.quorum_fraction) {
                    Ok(0) => Err(got(0, "a fraction from 0.0001 to 1 in steps of 0.0001")),
                    bps => bps,
                },
            ),
            grant_approvals: c.take(
                "grant_approvals",
                at_least_one(self.grant_approvals, "an integer from 1 to 255"),
            ),
            open_price_usd_e8: c.take(
                "open_price_usd",
                match to_fixed(self.open_price_usd, USD_DECIMALS) {
                    Ok(p) if !p.is_zero() => Ok(p),
                    _ => Err(got(
                        self.open_price_usd,
                        "a USD price > 0 with at most 8 decimals",
                    )),
                },
            ),
            ..ProtocolParams::default()
        };
        if c.0.is_empty() { Ok(params) } else { Err(c.0) }
    }
}

/// A typed governance change: the argument of one governance setter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParamChange {
    /// `DatanetRegistry.setMinStake(wei)`.
    MinStake(U256),
    /// `DatanetRegistry.setSlashBps(bps)`.
    SlashBps(u16),
    /// `DatanetRegistry.setLockPeriod(seconds)`.
    LockPeriod(u64),
    /// `DatanetRegistry.setReviewQuorum(count)`.
    ReviewQuorum(u8),
    /// `InferenceMarket.setFeeSplit(...)`.
    FeeSplit(FeeSplit),
    /// `StakingGovernance.setProposalThreshold(wei)`.
    ProposalThreshold(U256),
    /// `StakingGovernance.setVotingPeriod(seconds)`.
    VotingPeriod(u64),
    /// `StakingGovernance.setTimelockDelay(seconds)`.
    TimelockDelay(u64),
    /// `StakingGovernance.setQuorumBps(bps)`.
    QuorumBps(u16),
    /// `GrantVault.setOpenPrice(usd_e8)`.
    OpenPriceUsdE8(U256),
}

impl Parameter {
    /// Every parameter.
    pub const ALL: [Parameter; 10] = [
        Parameter::MinStake,
        Parameter::SlashFraction,
        Parameter::LockPeriodS,
        Parameter::ReviewQuorum,
        Parameter::FeeSplit,
        Parameter::ProposalThreshold,
        Parameter::VotingPeriodS,
        Parameter::TimelockDelayS,
        Parameter::QuorumFraction,
        Parameter::OpenPriceUsd,
    ];

    /// The `[tokenomics]` field it changes (also its name in scenario files).
    pub fn name(self) -> &'static str {
        match self {
            Parameter::MinStake => "min_stake",
            Parameter::SlashFraction => "slash_fraction",
            Parameter::LockPeriodS => "lock_period_s",
            Parameter::ReviewQuorum => "review_quorum",
            Parameter::FeeSplit => "fee_split",
            Parameter::ProposalThreshold => "proposal_threshold",
            Parameter::VotingPeriodS => "voting_period_s",
            Parameter::TimelockDelayS => "timelock_delay_s",
            Parameter::QuorumFraction => "quorum_fraction",
            Parameter::OpenPriceUsd => "open_price_usd",
        }
    }
}

fn number(v: &toml::Value, unit: &str) -> Result<f64, String> {
    match v {
        toml::Value::Float(f) => Ok(*f),
        toml::Value::Integer(i) => Ok(*i as f64),
        other => Err(got(other.type_str(), &format!("a number ({unit})"))),
    }
}

fn integer<T: TryFrom<i64>>(v: &toml::Value, allowed: &str) -> Result<T, String> {
    match v {
        toml::Value::Integer(i) => T::try_from(*i).map_err(|_| got(i, allowed)),
        other => Err(got(other.type_str(), allowed)),
    }
}

impl Proposal {
    /// `tokenomics` with this proposal's change applied; the error names what `value`
    /// must be.
    pub fn apply(&self, tokenomics: &Tokenomics) -> Result<Tokenomics, InvalidValue> {
        let mut t = tokenomics.clone();
        let v = &self.value;
        let seconds = "an integer number of seconds >= 0";
        let set = match self.parameter {
            Parameter::MinStake => number(v, "OPEN").map(|x| t.min_stake = x),
            Parameter::SlashFraction => number(v, "a fraction").map(|x| t.slash_fraction = x),
            Parameter::LockPeriodS => integer(v, seconds).map(|x| t.lock_period_s = x),
            Parameter::ReviewQuorum => {
                let allowed = format!(
                    "an integer from {} to {}",
                    REVIEW_QUORUM.start(),
                    REVIEW_QUORUM.end()
                );
                integer(v, &allowed).map(|x| t.review_quorum = x)
            }
            Parameter::FeeSplit => v
                .clone()
                .try_into::<FeeSplitConfig>()
                .map(|x| t.fee_split = x)
                .map_err(|e| {
                    format!(
                        "{}; allowed: a table {{ contributors_bps, owner_bps, stakers_bps, treasury_bps }}",
                        e.message()
                    )
                }),
            Parameter::ProposalThreshold => number(v, "OPEN").map(|x| t.proposal_threshold = x),
            Parameter::VotingPeriodS => integer(v, seconds).map(|x| t.voting_period_s = x),
            Parameter::TimelockDelayS => integer(v, seconds).map(|x| t.timelock_delay_s = x),
            Parameter::QuorumFraction => number(v, "a fraction").map(|x| t.quorum_fraction = x),
            Parameter::OpenPriceUsd => number(v, "USD").map(|x| t.open_price_usd = x),
        };
        set.map_err(|message| InvalidValue {
            field: self.parameter.name().to_string(),
            message,
        })?;
        // Only the changed field can have become invalid.
        if let Err(all) = t.convert()
            && let Some(e) = all.into_iter().find(|e| e.field == self.parameter.name())
        {
            return Err(e);
        }
        Ok(t)
    }

    /// The governance call this proposal makes.
    pub fn change(&self) -> Result<ParamChange, InvalidValue> {
        let p = self.apply(&Tokenomics::default())?.protocol_params()?;
        Ok(match self.parameter {
            Parameter::MinStake => ParamChange::MinStake(p.min_stake),
            Parameter::SlashFraction => ParamChange::SlashBps(p.slash_bps),
            Parameter::LockPeriodS => ParamChange::LockPeriod(p.lock_period),
            Parameter::ReviewQuorum => ParamChange::ReviewQuorum(p.review_quorum),
            Parameter::FeeSplit => ParamChange::FeeSplit(p.fee_split),
            Parameter::ProposalThreshold => ParamChange::ProposalThreshold(p.proposal_threshold),
            Parameter::VotingPeriodS => ParamChange::VotingPeriod(p.voting_period),
            Parameter::TimelockDelayS => ParamChange::TimelockDelay(p.timelock_delay),
            Parameter::QuorumFraction => ParamChange::QuorumBps(p.quorum_bps),
            Parameter::OpenPriceUsd => ParamChange::OpenPriceUsdE8(p.open_price_usd_e8),
        })
    }
}

/// A generated Datanet's generator spec, and which of its contributors are identities of
/// attackers that the generator draws as honest (sybils, attribution gamers).
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedDatanet {
    /// The spec to hand to [`olsim_ml::data::Datanet::generate`].
    pub spec: DatanetSpec,
    /// One entry per such attacker: the identities it controls (ground truth).
    pub groups: Vec<AttackerIdentities>,
    /// The honest contributor group (index of `[[datanets.contributors]]`) of each honest
    /// contributor.
    pub honest_group: BTreeMap<ContributorId, usize>,
}

impl GeneratedDatanet {
    /// The `[[attackers]]` entry and kind that controls contributor `id`, if one of
    /// [`Self::groups`] does.
    pub fn attack_of(&self, id: ContributorId) -> Option<(usize, AttackKind)> {
        self.groups
            .iter()
            .find(|g| g.identities.contains(&id))
            .map(|g| (g.attacker, g.kind))
    }
}

/// The identities of one attacker whose data the generator draws as honest.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackerIdentities {
    /// Index of its `[[attackers]]` entry.
    pub attacker: usize,
    /// Its kind (`sybil` or `attribution_gaming`).
    pub kind: AttackKind,
    /// Which of the entry's `count` attackers it is.
    pub member: u32,
    /// The contributor ids it submits under.
    pub identities: Vec<ContributorId>,
}

fn range_usize(r: super::schema::Interval<u32>) -> (usize, usize) {
    (r.lo as usize, r.hi as usize)
}

/// `n` split into `parts` near-equal shares (the first `n % parts` get one more).
/// An honest contributor `id` drawn from the ranges of `ranges` with the stream `name` of
/// `seed`: its quality, coverage, records and documents, in that order.
fn draw_member(
    seed: u64,
    name: &str,
    dim: usize,
    ranges: &PopulationSpec,
    id: ContributorId,
) -> ContributorSpec {
    let mut rng = stream(seed, name);
    let quality = rng.random_range(ranges.quality.0..=ranges.quality.1);
    let fraction = rng.random_range(ranges.coverage.0..=ranges.coverage.1);
    let coverage = Coverage::random(&mut rng, dim, fraction);
    ContributorSpec {
        id,
        behaviour: Behaviour::Honest,
        quality,
        coverage,
        records: rng.random_range(ranges.records.0..=ranges.records.1),
        documents: rng.random_range(ranges.documents.0..=ranges.documents.1),
    }
}

fn split(n: usize, parts: usize) -> impl Iterator<Item = usize> {
    (0..parts).map(move |k| n / parts + usize::from(k < n % parts))
}

impl Scenario {
    fn entry<'a, T>(
        list: &'a [T],
        section: &'static str,
        index: usize,
    ) -> Result<&'a T, ConvertError> {
        list.get(index).ok_or(ConvertError::NoSuchEntry {
            section,
            index,
            len: list.len(),
        })
    }

    /// The Datanet named `name`.
    pub fn datanet(&self, name: &str) -> Option<&DatanetConfig> {
        self.datanets.iter().find(|d| d.name == name)
    }

    /// The generator's population spec for generated Datanet `index`: its first group of
    /// honest contributors plus the label-flip, backdoor, spammer and copycat attackers on
    /// it (the other groups are added by [`Scenario::datanet_spec`]).
    pub fn population(&self, index: usize) -> Result<PopulationSpec, ConvertError> {
        let d = Self::entry(&self.datanets, "datanets", index)?;
        if d.source != Source::Generated {
            return Err(ConvertError::NotGenerated(d.name.clone()));
        }
        let c = d.contributor_groups().swap_remove(0);
        let mut p = PopulationSpec {
            honest: c.count as usize,
            label_flip: 0,
            backdoor: 0,
            spammer: 0,
            copycat: 0,
            quality: (c.quality.lo, c.quality.hi),
            coverage: (c.coverage.lo, c.coverage.hi),
            records: range_usize(c.records),
            documents: range_usize(c.documents),
            ..PopulationSpec::default()
        };
        for a in self.attackers_on(&d.name) {
            let n = a.count as usize;
            match a.kind {
                AttackKind::LabelFlip => {
                    p.label_flip += n;
                    p.flip_rate = a.rate() as f32;
                }
                AttackKind::Backdoor => {
                    p.backdoor += n;
                    p.backdoor_rate = a.rate() as f32;
                }
                AttackKind::Spammer => p.spammer += n,
                AttackKind::Copycat => {
                    p.copycat += n;
                    p.copy_perturb = a.perturb() as f32;
                }
                // Drawn as honest contributors by `datanet_spec`, or no generated data.
                AttackKind::Sybil
                | AttackKind::AttributionGaming
                | AttackKind::WashInference
                | AttackKind::ColludingReviewers
                | AttackKind::JitStaker
                | AttackKind::GovernanceCapture => {}
            }
        }
        Ok(p)
    }

    fn attackers_on<'a>(
        &'a self,
        datanet: &'a str,
    ) -> impl Iterator<Item = &'a super::schema::Attacker> {
        self.attackers
            .iter()
            .filter(move |a| a.datanet.as_deref() == Some(datanet))
    }

    /// The generator spec of generated Datanet `index`, seeded with `run.seed`:
    /// [`Scenario::population`] built by [`build_population`], then one honest-quality
    /// the honest groups after the first, then one honest-quality contributor per sybil
    /// identity and per attribution gamer. Such an attacker draws its quality, coverage and counts like an
    /// honest contributor of the first group from the stream
    /// `"scenario/<datanet>/<kind>/<entry>/<member>"`; a sybil splits its records and
    /// documents evenly over its identities, an attribution gamer has one identity whose
    /// data the engine then crafts (`engine::attacks::attribution_gaming`). Member `m` of
    /// group `g >= 1` draws from its group's ranges with the stream
    /// `"scenario/<datanet>/group/<g>/<m>"`.
    pub fn datanet_spec(&self, index: usize) -> Result<GeneratedDatanet, ConvertError> {
        let pop = self.population(index)?;
        let d = &self.datanets[index];
        let seed = self.run.seed;
        let mut contributors = build_population(seed, d.domain, &pop)?;
        let mut honest_group: BTreeMap<ContributorId, usize> = contributors
            .iter()
            .filter(|c| c.behaviour.is_honest())
            .map(|c| (c.id, 0))
            .collect();
        let dim = d.domain.dim();
        for (g, group) in d.contributor_groups().iter().enumerate().skip(1) {
            for member in 0..group.count {
                let name = format!("scenario/{}/group/{g}/{member}", d.name);
                let ranges = PopulationSpec {
                    quality: (group.quality.lo, group.quality.hi),
                    coverage: (group.coverage.lo, group.coverage.hi),
                    records: range_usize(group.records),
                    documents: range_usize(group.documents),
                    ..pop.clone()
                };
                let id = ContributorId(contributors.len() as u32);
                honest_group.insert(id, g);
                contributors.push(draw_member(seed, &name, dim, &ranges, id));
            }
        }
        let mut groups = Vec::new();
        for (entry, a) in self.attackers.iter().enumerate() {
            let ids = match a.kind {
                AttackKind::Sybil => a.identities().max(1) as usize,
                AttackKind::AttributionGaming => 1,
                AttackKind::Copycat
                | AttackKind::LabelFlip
                | AttackKind::Backdoor
                | AttackKind::Spammer
                | AttackKind::WashInference
                | AttackKind::ColludingReviewers
                | AttackKind::JitStaker
                | AttackKind::GovernanceCapture => continue,
            };
            if a.datanet.as_deref() != Some(d.name.as_str()) {
                continue;
            }
            for member in 0..a.count {
                let name = format!("scenario/{}/{}/{entry}/{member}", d.name, a.kind.name());
                let drawn = draw_member(seed, &name, dim, &pop, ContributorId(0));
                let (quality, coverage) = (drawn.quality, drawn.coverage);
                let (records, documents) = (drawn.records, drawn.documents);
                let mut identities = Vec::with_capacity(ids);
                for (r, docs) in split(records, ids).zip(split(documents, ids)) {
                    let id = ContributorId(contributors.len() as u32);
                    identities.push(id);
                    contributors.push(ContributorSpec {
                        id,
                        behaviour: Behaviour::Honest,
                        quality,
                        coverage: coverage.clone(),
                        records: r,
                        documents: docs,
                    });
                }
                groups.push(AttackerIdentities {
                    attacker: entry,
                    kind: a.kind,
                    member,
                    identities,
                });
            }
        }
        let t = d.text.clone().unwrap_or_default();
        let spec = DatanetSpec {
            domain: d.domain,
            seed,
            contributors,
            text: TextParams {
                world_facts: t.world_facts as usize,
                private_facts: t.private_facts as usize,
                sentences: range_usize(t.sentences),
            },
        };
        Ok(GeneratedDatanet {
            spec,
            groups,
            honest_group,
        })
    }

    /// The domain a classifier's features come from (that of its first Datanet).
    pub fn model_domain(&self, index: usize) -> Result<Domain, ConvertError> {
        let m = Self::entry(&self.models, "models", index)?;
        let first = m.datanets.first().map(String::as_str).unwrap_or_default();
        self.datanet(first)
            .map(|d| d.domain)
            .ok_or_else(|| ConvertError::UnknownDatanet(first.to_string()))
    }

    /// The base MLP of classifier `index`, checked, with its LoRA config checked against
    /// its layers.
    pub fn mlp_config(&self, index: usize) -> Result<MlpConfig, ConvertError> {
        let m = Self::entry(&self.models, "models", index)?;
        if m.kind != ModelKind::Classifier {
            return Err(ConvertError::NotClassifier(m.name.clone()));
        }
        let hidden: Vec<usize> = m
            .hidden
            .as_deref()
            .unwrap_or(&DEFAULT_HIDDEN)
            .iter()
            .map(|&h| h as usize)
            .collect();
        let mlp = MlpConfig::binary(self.model_domain(index)?.dim(), &hidden);
        mlp.validate()?;
        m.lora_config().validate(&mlp.layer_dims())?;
        Ok(mlp)
    }
}

impl ModelConfig {
    /// The LoRA adapter config (`layers = []` targets every layer).
    pub fn lora_config(&self) -> LoraConfig {
        let l = &self.lora;
        LoraConfig {
            rank: l.rank as usize,
            alpha: l.alpha,
            targets: if l.layers.is_empty() {
                LoraTargets::All
            } else {
                LoraTargets::Layers(l.layers.iter().map(|&i| i as usize).collect())
            },
        }
    }

    /// The fine-tuning config; `seed` seeds the shuffle stream.
    pub fn train_config(&self, seed: u64) -> TrainConfig {
        let t = &self.training;
        TrainConfig {
            epochs: t.epochs as usize,
            batch_size: t.batch_size as usize,
            learning_rate: t.learning_rate,
            seed,
        }
    }
}

/// Grant fund in OPEN wei at the start price, or why it cannot be.
pub(crate) fn fund_open_wei(fund_usd: u64, price_usd_e8: U256) -> Result<U256, String> {
    if price_usd_e8.is_zero() {
        return Err("the OPEN price is zero".into());
    }
    let wei = U256::from(fund_usd)
        * U256::from(10u64).pow(U256::from(OPEN_DECIMALS + USD_DECIMALS))
        / price_usd_e8;
    if wei > total_supply() {
        return Err(got(
            format!(
                "{fund_usd} USD = {} OPEN at the start price",
                wei / U256::from(10u64).pow(U256::from(OPEN_DECIMALS))
            ),
            "a fund of at most the 1,000,000,000 OPEN supply",
        ));
    }
    Ok(wei)
}
