//! The run report: a versioned JSON document with a deterministic `result` section and its
//! digest, a separate `perf` section of wall-clock figures, and Markdown and HTML renderings
//! (the HTML page embeds plotters SVG charts).
//!
//! Rule: everything in [`ResultSection`] is a pure function of the scenario and its seed (the
//! digest covers it); anything measured with a clock lives in [`PerfSection`].

pub mod charts;
pub mod html;
pub mod markdown;
pub mod tables;

use alloy_primitives::keccak256;
use olsim_chain::SignatureCounts;
use serde::{Deserialize, Serialize};

/// Version of the report format; bumped whenever a field changes meaning or disappears.
pub const REPORT_VERSION: u32 = 8;

/// A whole run report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Report format version ([`REPORT_VERSION`]).
    pub version: u32,
    /// What was run.
    pub scenario: ScenarioInfo,
    /// Deterministic results.
    pub result: ResultSection,
    /// `keccak256` of the canonical JSON of `result`, hex.
    pub digest: String,
    /// Wall-clock measurements (excluded from the digest).
    pub perf: PerfSection,
    /// `keccak256` of the whole final EVM state (every account's balance, nonce, code and
    /// storage, and the head block) where the backend computes one (the embedded chain);
    /// `None` on anvil, whose whole state olsim does not read. Deterministic, but outside
    /// the digest because it is backend-specific (anvil's base fee has no floor).
    #[serde(default)]
    pub chain_state_digest: Option<String>,
    /// The scenario's `[[expect]]` claims checked against `result` (derived from it, so
    /// outside the digest).
    #[serde(default)]
    pub claims: Vec<ClaimOutcome>,
}

/// One `[[expect]]` claim and what the run made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClaimOutcome {
    /// Where the figure is in `result` (`attacks[sybil].roi`).
    pub path: String,
    /// The claim (`< 0`).
    pub claim: String,
    /// What the claim means, in the scenario's words.
    pub why: String,
    /// The figure found; `None` when the path leads nowhere.
    pub value: Option<serde_json::Value>,
    /// Whether the claim holds.
    pub holds: bool,
    /// Why it does not hold.
    pub problem: Option<String>,
}

impl Report {
    /// Builds a report and computes the digest of its result section.
    pub fn new(scenario: ScenarioInfo, result: ResultSection, perf: PerfSection) -> Self {
        let digest = digest_of(&result);
        Self {
            version: REPORT_VERSION,
            scenario,
            result,
            digest,
            perf,
            chain_state_digest: None,
            claims: Vec::new(),
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Parses a report, refusing other format versions.
    /// The version is checked first, so a report of another version says so rather than
    /// naming a field it lacks.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(REPORT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "report format version {v} is not supported (this olsim reads version \
                     {REPORT_VERSION})"
                ));
            }
            None => return Err("no `version` field: not an olsim report".into()),
        }
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}

/// `keccak256` of the compact JSON of `result`, as `0x`-prefixed hex.
pub fn digest_of(result: &ResultSection) -> String {
    let bytes = serde_json::to_vec(result).expect("a result section always serialises");
    keccak256(bytes).to_string()
}

/// What was run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Scenario name.
    pub name: String,
    /// Master seed.
    pub seed: u64,
    /// Epochs simulated.
    pub epochs: u32,
    /// Chain backend (`embedded` or `anvil`).
    pub backend: String,
    /// How agents' transactions reached the chain: `signed` or `impersonated`
    /// (`run.impersonate`).
    pub transactions: String,
    /// The burn backend the models ran on and its float type (`autodiff<ndarray> (f32)`;
    /// `autodiff<cuda> (f32)` on a GPU).
    pub device: String,
}

/// Deterministic results of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResultSection {
    /// Per-epoch economy.
    pub epochs: Vec<EpochResult>,
    /// Per-contributor outcome (honest and attacking identities alike).
    pub contributors: Vec<ContributorResult>,
    /// The contributors summed by group: honest groups by name, attackers by kind.
    pub groups: Vec<GroupResult>,
    /// Reward fairness.
    pub fairness: Fairness,
    /// Per attacker kind.
    pub attacks: Vec<AttackResult>,
    /// Whole-run economy.
    pub economy: Economy,
    /// OpenCircle grants per tier.
    pub grants: Vec<GrantTierResult>,
    /// Governance proposals and what became of them.
    pub governance: Vec<ProposalResult>,
    /// Per model: what it sold and what its contributors were paid.
    pub models: Vec<ModelResult>,
    /// Chain activity.
    pub chain: ChainResult,
    /// Counted compute per stage, with time and cost modelled on a named device profile.
    pub compute: Vec<ComputeResult>,
}

/// One epoch of the economy (amounts in OPEN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochResult {
    /// Epoch number, from 0.
    pub epoch: u32,
    /// Inference calls paid for.
    pub inference_calls: u64,
    /// Inference fees paid.
    pub fees: f64,
    /// Contributor share put into reward pools.
    pub contributor_pool: f64,
    /// Rewards paid to contributors (push or claimed).
    pub rewards_paid: f64,
    /// Contributions submitted, accepted and rejected.
    pub contributions: [u64; 3],
    /// Stake slashed.
    pub slashed: f64,
    /// Treasury balance at the end of the epoch.
    pub treasury: f64,
    /// Total OPEN staked at the end of the epoch.
    pub staked: f64,
    /// Fee split in force at the end of the epoch (contributors, owner, stakers, treasury bps).
    pub fee_split: [u16; 4],
}

/// What one contributing identity did and received (amounts in OPEN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ContributorResult {
    /// Agent name.
    pub name: String,
    /// `honest`, or the attacker kind.
    pub kind: String,
    /// Its honest contributor group's name (`datanets.contributors[].name`); `None` for
    /// attackers and a file Datanet's contributors.
    pub group: Option<String>,
    /// Records submitted.
    pub records: u64,
    /// Records accepted by review.
    pub accepted: u64,
    /// Records still awaiting review at the end of the run (a split vote before its
    /// review deadline).
    pub pending: u64,
    /// Records whose contribution lapsed unreviewed at the registry's review deadline (a
    /// split vote): the stake came back whole, the data was never used.
    pub lapsed: u64,
    /// Attribution rewards received.
    pub rewards: f64,
    /// Stake lost to slashing.
    pub slashed: f64,
    /// Ground-truth value (see [`Fairness::truth`]); `None` where its Datanet has none (a
    /// file Datanet under generator truth).
    pub truth: Option<f64>,
    /// 95% bootstrap interval of `truth` where its estimator gives one (Data Banzhaf);
    /// `None` otherwise.
    pub truth_interval: Option<[f64; 2]>,
    /// The generator's true quality (each label correct with this probability); `None` for
    /// a file Datanet's contributors.
    pub quality: Option<f64>,
    /// The generator's coverage: the fraction of the feature space's volume its data is
    /// drawn from; `None` for a file Datanet's contributors.
    pub coverage: Option<f64>,
    /// Its contributions slashed as proven harmful by the slash rule (not by review).
    pub harmful_contributions: u64,
}

impl ContributorResult {
    /// What it is grouped under in `groups[]`, tables and charts: its honest group's name,
    /// else its kind.
    pub fn group_label(&self) -> String {
        self.group.clone().unwrap_or_else(|| self.kind.clone())
    }
}

/// The contributors of one group (docs/metrics.md, "groups[]").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    /// The honest group's name, or the attacker kind.
    pub name: String,
    /// Contributing identities.
    pub contributors: u64,
    /// Mean generator quality; `None` when no member has one (file Datanets).
    pub mean_quality: Option<f64>,
    /// Mean generator coverage; `None` when no member has one.
    pub mean_coverage: Option<f64>,
    /// Items submitted.
    pub records: u64,
    /// Items accepted.
    pub accepted: u64,
    /// Items still awaiting review at the end (see [`ContributorResult::pending`]).
    pub pending: u64,
    /// Items whose contribution lapsed unreviewed (see [`ContributorResult::lapsed`]).
    pub lapsed: u64,
    /// Rewards received.
    pub rewards: f64,
    /// Rewards per identity.
    pub rewards_per_contributor: f64,
    /// Stake slashed.
    pub slashed: f64,
    /// Mean ground-truth value; `None` when no member has one.
    pub mean_truth: Option<f64>,
}

/// [`ContributorResult::kind`] of an honest contributor.
pub const HONEST: &str = "honest";

/// Reward fairness.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Fairness {
    /// Gini coefficient of contributor rewards; `None` when no rewards were paid.
    pub gini: Option<f64>,
    /// Share of all contributor rewards that went to honest contributors; `None` when no
    /// rewards were paid.
    pub honest_share: Option<f64>,
    /// Spearman correlation between reward and ground-truth value over the contributors that
    /// have one; `None` when fewer than two have one, or when the rewards or the values are
    /// all equal (a rank correlation is then undefined).
    pub spearman_vs_truth: Option<f64>,
    /// 95% bootstrap interval of [`Fairness::spearman_vs_truth`] (1,000 resamples of the
    /// contributors); `None` where it is undefined or most resamples are.
    pub spearman_vs_truth_interval: Option<[f64; 2]>,
    /// [`Fairness::spearman_vs_truth`] over the contributors with accepted records only.
    pub spearman_vs_truth_accepted: Option<f64>,
    /// The same correlation for accepted items instead of reward: what paying by volume
    /// (no attribution) would rank; undefined as [`Fairness::spearman_vs_truth`] is.
    pub spearman_volume_vs_truth: Option<f64>,
    /// Which ground truth: leave-one-out retraining or the generator's clean original items,
    /// and what file Datanets were judged against (or that they have no ground truth).
    pub truth: String,
    /// Spearman correlation of two independent estimates of the truth (two retraining seeds
    /// or two halves of the subsets); `None` under generator truth (an exact count) or when
    /// an estimate has no spread.
    pub truth_reliability: Option<f64>,
    /// Lorenz curve of rewards.
    pub lorenz: Vec<(f64, f64)>,
    /// The attributor's slash rule (`tokenomics.slash_rule`).
    pub slash_rule: String,
    /// The attributor's reward rule (`tokenomics.reward_rule`).
    pub reward_rule: String,
    /// Honest stake slashed (on rejection or as harmful) over honest stake posted behind
    /// contributions; `None` when honest contributors posted none.
    pub honest_slash_rate: Option<f64>,
    /// Contributions of honest contributors the attributor slashed as harmful.
    pub honest_slashed_as_harmful: u64,
}

/// Outcome of one attacker kind (amounts in OPEN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AttackResult {
    /// Attacker kind.
    pub kind: String,
    /// Identities used.
    pub identities: u32,
    /// OPEN the attack put at risk: stake posted behind its contributions, inference fees
    /// paid, and OPEN staked in governance (docs/metrics.md).
    pub capital: f64,
    /// OPEN it lost: stake slashed plus inference fees paid (gas is paid in ETH and not
    /// counted).
    pub cost: f64,
    /// OPEN it received: contributor rewards (for `governance_capture`, the pools it paid
    /// itself), model-owner fees and staking rewards.
    pub revenue: f64,
    /// Stake slashed.
    pub slashed: f64,
    /// Return on capital, `(revenue - cost) / capital`; `None` when no capital was put at
    /// risk (colluding reviewers spend only gas).
    pub roi: Option<f64>,
    /// Of the contributions the protocol flagged (rejected or slashed), the share that were
    /// this kind's; `None` when nothing was flagged or the kind made no contributions.
    pub detection_precision: Option<f64>,
    /// Share of this kind's contributions that were flagged; `None` when the kind made no
    /// contributions.
    pub detection_recall: Option<f64>,
    /// `sybil` only: its contributor rewards over those of the same data under one identity
    /// (a counterfactual run with the same seed); above 1, splitting pays. `None` for other
    /// kinds, and when the single identity earned nothing.
    pub split_gain: Option<f64>,
    /// `copycat` only: OPEN the authors it copied earned less than in a counterfactual run
    /// with the same seed where it never submits (negative: they earned more). `None` for
    /// other kinds.
    pub victim_loss: Option<f64>,
    /// `copycat` only: its contributor rewards over `victim_loss`; `None` for other kinds
    /// and when the authors lost nothing.
    pub copy_gain: Option<f64>,
    /// `governance_capture` only: whether a proposal of its keys was executed (it became
    /// the attributor); `None` for other kinds.
    pub captured: Option<bool>,
}

/// One model over the run (amounts in OPEN; docs/metrics.md, "models[]").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelResult {
    /// Its name (`[[models]]`, or the grant team's model).
    pub name: String,
    /// `classifier` or `language_model`.
    pub kind: String,
    /// Its Proof-of-Attribution method (`tokenomics.attribution`): `datainf`, `tracin`,
    /// `exact` or `suffix_array`.
    pub attribution: String,
    /// Price per call.
    pub price: f64,
    /// Calls paid for.
    pub calls: u64,
    /// Fees paid for those calls.
    pub fees: f64,
    /// The contributors' share of those fees, funded into its reward pool.
    pub pool: f64,
    /// Rewards paid from that pool (pushed or claimed): to contributors, or to whoever holds
    /// the attributor role (a governance capturer: `attacks[].revenue`).
    pub paid: f64,
    /// Epochs whose pool was settled; `pool > 0` with none means the reward rule found
    /// no one to pay (see `tokenomics.reward_rule`).
    pub settled_epochs: u32,
    /// Outputs it served over the run.
    pub outputs_served: u64,
    /// Of those, the outputs attributed to training data.
    pub outputs_attributed: u64,
    /// `outputs_attributed / outputs_served`; `None` when it served nothing.
    pub attributed_fraction: Option<f64>,
    /// Sampling error of its attribution weights: 0, since every output is attributed and
    /// none is sampled; `None` when nothing was attributed.
    pub attribution_sampling_error: Option<f64>,
    /// Modelled GPU cost in USD of serving one of its inferences on the reference profile
    /// (`compute[].profile`): its share of the roofline cost of the batches it was served
    /// in (an estimate); `None` when it served none.
    pub gpu_usd_per_inference: Option<f64>,
    /// The fee per call (`price`) in USD at `tokenomics.open_price_usd`.
    pub fee_usd_per_inference: f64,
    /// `fee_usd_per_inference - gpu_usd_per_inference`: what a call leaves after the GPU,
    /// before the fee split (the owner receives only its `owner_bps` share of the fee);
    /// `None` when it served none.
    pub margin_usd_per_inference: Option<f64>,
}

/// Whole-run economy (amounts in OPEN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Economy {
    /// Inference fees paid.
    pub fees: f64,
    /// Paid out of the reward pools: to contributors by attribution, or to a governance
    /// capturer holding the attributor role (its `attacks[].revenue`).
    pub contributor_rewards: f64,
    /// Paid to model owners.
    pub owner_fees: f64,
    /// Paid to stakers (notified to StakingGovernance, which streams it).
    pub staker_rewards: f64,
    /// Of `staker_rewards`, what no stake has earned by the end of the run: still streaming,
    /// or carried to the next notification (`StakingGovernance.unearnedRewards`).
    pub staking_streaming: f64,
    /// How contributors are paid (`tokenomics.settlement`): `push` or `merkle`.
    pub settlement: String,
    /// Treasury balance at the end: `treasury_fee_share` + `treasury_unstaked_share` +
    /// `slashed`.
    pub treasury: f64,
    /// The treasury's own share of inference fees.
    pub treasury_fee_share: f64,
    /// The stakers' share of fees paid while nobody was staked, which the market sends to
    /// the treasury.
    pub treasury_unstaked_share: f64,
    /// Left in reward pools at the end.
    pub pools: f64,
    /// What the `[[stakers]]` groups earned over the stake they hold, over the run; `None`
    /// without `[[stakers]]`.
    pub staking_yield: Option<f64>,
    /// Stake slashed over the run.
    pub slashed: f64,
}

/// OpenCircle grants of one tier.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GrantTierResult {
    /// `exploration`, `building` or `expansion`.
    pub tier: String,
    /// Grants activated.
    pub funded: u32,
    /// Grants that delivered every milestone.
    pub completed: u32,
    /// Grants that failed.
    pub failed: u32,
    /// USD granted.
    pub granted_usd: f64,
    /// OPEN released to grantees.
    pub released: f64,
    /// OPEN returned to the vault by failed grants.
    pub returned: f64,
    /// Inference fees generated by the tier's models.
    pub fees_generated: f64,
    /// Fees generated (in USD at the scenario's OPEN price) per grant USD.
    pub roi: f64,
}

/// A governance proposal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProposalResult {
    /// What it changes.
    pub description: String,
    /// Epoch it was proposed in.
    pub proposed: u32,
    /// Whether it was executed (its change took effect).
    pub executed: bool,
    /// Epoch it was executed in; `None` when it was not.
    pub executed_epoch: Option<u32>,
    /// Where it stands at the end of the run, from StakingGovernance: `active` (voting),
    /// `passed` (vote won, not yet queued), `queued` (behind the timelock), `executed` or
    /// `defeated`.
    pub state: String,
    /// Votes for and against (OPEN of stake).
    pub votes: [f64; 2],
}

/// Chain activity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChainResult {
    /// Blocks sealed.
    pub blocks: u64,
    /// Transactions included.
    pub transactions: u64,
    /// Transactions refused (reverted before inclusion).
    pub refused: u64,
    /// Gas used.
    pub gas_used: u64,
    /// ETH paid in L2 execution and L1 data fees.
    pub gas_fees_eth: f64,
    /// Refused transactions grouped by action and decoded error name, most frequent first.
    pub refusals: Vec<Refusal>,
    /// `keccak256` of the protocol's books at the end (every contract's accounting, as
    /// `Ledger` reads it) and of every agent's OPEN balance: what the economy ended with,
    /// the same on either backend. Runs that end with equal books may still have different
    /// chain histories: [`Report::chain_state_digest`] tells those apart.
    pub books_digest: String,
}

/// Refused transactions of one action and decoded error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    /// What was tried (`contribute`).
    pub action: String,
    /// The decoded error's name (`StakeTooLow`), or the kind of refusal
    /// (`rejected: nonce too low`).
    pub error: String,
    /// How many.
    pub count: u64,
    /// The first one, whole: epoch, agent and the reason with its arguments
    /// (`epoch 0, finance/contributor-3: StakeTooLow(1, 100)`).
    pub first: String,
}

/// Counted compute of one stage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ComputeResult {
    /// `training`, `serving` or `attribution`.
    pub stage: String,
    /// The models it was for: `classifiers` or `language models`.
    pub models: String,
    /// Where the FLOPs were counted: the burn backend the work ran on, or how it was
    /// modelled (`modelled (not decoded)`, `suffix array (cpu)`).
    pub source: String,
    /// Counted FLOPs.
    pub flops: f64,
    /// Counted kernel launches.
    pub launches: f64,
    /// Counted bytes moved to and from device memory.
    pub bytes: f64,
    /// Device profile and precision of the estimate (`h100-sxm (f32)`).
    pub profile: String,
    /// Modelled seconds of launch overhead: `launches × launch_overhead`.
    pub launch_seconds: f64,
    /// Modelled seconds of memory traffic: `bytes / mem_bandwidth`.
    pub memory_seconds: f64,
    /// Modelled seconds of arithmetic at peak: `flops / peak_flops`.
    pub compute_seconds: f64,
    /// Modelled seconds on that profile, the roofline with launch overhead:
    /// `launch_seconds + max(memory_seconds, compute_seconds)` (an estimate).
    pub modelled_seconds: f64,
    /// Modelled cost in USD at the profile's hourly price.
    pub modelled_cost_usd: f64,
    /// The largest term of `modelled_seconds`: `launch`, `memory` or `compute`; `none` where
    /// no device work was counted (host work).
    pub bound: String,
}

/// Measured seconds of one compute line that ran (on whatever device).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredSeconds {
    /// `training`, `serving` or `attribution`.
    pub stage: String,
    /// `classifiers` or `language models`.
    pub models: String,
    /// The backend it ran on.
    pub device: String,
    /// Measured wall seconds, summed over the models (concurrent ones overlap).
    pub seconds: f64,
}

/// Measured against modelled time of one compute line that ran on a GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MeasuredCompute {
    /// `training`, `serving` or `attribution`.
    pub stage: String,
    /// `classifiers` or `language models`.
    pub models: String,
    /// The GPU backend it ran on.
    pub device: String,
    /// Measured wall seconds.
    pub measured_seconds: f64,
    /// Modelled seconds on the reference profile (`compute[].modelled_seconds`).
    pub modelled_seconds: f64,
    /// `measured_seconds / modelled_seconds`.
    pub ratio: f64,
}

/// Wall-clock measurements of the run (not covered by the digest).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PerfSection {
    /// Seconds per kind of work, in first-use order; they do not overlap and sum to
    /// `total_seconds`: `chain` counts every transaction batch (those sent during setup
    /// too), `setup` the rest of setup, `other` what no other kind counted, and
    /// `counterfactual run: ...` each whole run some attacks add (docs/metrics.md, "perf").
    pub stages: Vec<(String, f64)>,
    /// Total wall seconds.
    pub total_seconds: f64,
    /// Included transactions per second of chain time.
    pub tx_per_second: f64,
    /// Gas per second of chain time.
    pub gas_per_second: f64,
    /// Inferences served per second of serving time.
    pub inferences_per_second: f64,
    /// Inferences attributed per second of attribution time.
    pub attributions_per_second: f64,
    /// Measured seconds of each compute line that ran; lines that were modelled rather
    /// than run (`modelled (not decoded)`) have none and are left out.
    pub measured_compute: Vec<MeasuredSeconds>,
    /// Measured GPU seconds against the modelled ones, per compute line that ran on a GPU;
    /// `None` when none did, with the reason in `measured_reason`.
    pub measured: Option<Vec<MeasuredCompute>>,
    /// Why `measured` is `None` (`no GPU in this run ...`).
    pub measured_reason: Option<String>,
    /// Worker threads of the rayon pool the run's parallel work ran in (the global pool
    /// unless the caller installed a smaller one), not the machine's cores.
    pub threads: usize,
    /// Fine-tunes of the run and its counterfactual runs: trained, and taken from an
    /// earlier one with the same inputs (docs/metrics.md, "Replication robustness").
    /// `None` only in a report written before these were counted.
    #[serde(default)]
    pub fine_tunes: Option<FineTuneCounts>,
    /// Classifier influence indexes of the run and its counterfactual runs: built, and
    /// handed on from the adapter a retraining replaced where its inputs were the same
    /// (docs/metrics.md, "perf"). `None` only in a report written before these were counted.
    #[serde(default)]
    pub influence_indexes: Option<IndexCounts>,
    /// Transaction signatures of the run and its counterfactual runs: made, and taken from
    /// the same transaction signed before (docs/metrics.md, "Replication robustness").
    /// `None` where no counterfactual run follows the run (none are kept then), and in a
    /// report written before these were counted.
    #[serde(default)]
    pub signatures: Option<SignatureCounts>,
}

/// How many classifier influence indexes were built and how many handed on from the
/// adapter a retraining replaced (see [`PerfSection::influence_indexes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexCounts {
    /// Indexes built.
    pub built: u64,
    /// Indexes handed on from a replaced adapter with the same inputs, bit for bit.
    pub reused: u64,
}

/// How many fine-tunes were trained and how many reused (see [`PerfSection::fine_tunes`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FineTuneCounts {
    /// Fine-tunes trained.
    pub trained: u64,
    /// Fine-tunes taken from an earlier one with the same inputs, bit for bit.
    pub reused: u64,
}
