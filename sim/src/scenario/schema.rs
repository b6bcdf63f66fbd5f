//! The scenario file schema: one struct per TOML table, every field documented with its unit
//! and default. Every struct rejects unknown fields. docs/scenarios.md is the reference page
//! (a test checks that it names every field serialised from a fully populated scenario).
//!
//! Amounts of OPEN are decimal numbers of whole tokens (`100`, `0.01`; at most 18 decimals),
//! USD amounts whole dollars, durations seconds, fractions numbers in `[0, 1]`, shares of an
//! inference fee basis points (1/10,000). Ranges are two-element arrays `[lo, hi]`, both ends
//! included.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use olsim_chain::protocol::ProtocolParams;
use olsim_ml::data::{Behaviour, Domain, PopulationSpec, TextParams};
use olsim_ml::model::TrainConfig;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::units::{USD_DECIMALS, from_fixed};

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// `[run]`: name, seed, length, chain backend, device.
    pub run: Run,
    /// `[tokenomics]`: the governed protocol parameters the run starts with.
    #[serde(default)]
    pub tokenomics: Tokenomics,
    /// `[[datanets]]`: the Datanets, with their contributors and reviewers (at least one).
    #[serde(default)]
    pub datanets: Vec<DatanetConfig>,
    /// `[[models]]`: model developers and the models they fine-tune.
    #[serde(default)]
    pub models: Vec<ModelConfig>,
    /// `[inference]`: inference demand.
    #[serde(default)]
    pub inference: Inference,
    /// `[[stakers]]`: groups of OPEN stakers who vote on proposals.
    #[serde(default)]
    pub stakers: Vec<StakerGroup>,
    /// `[[proposals]]`: governance proposals that change a tokenomics parameter mid-run.
    #[serde(default)]
    pub proposals: Vec<Proposal>,
    /// `[[attackers]]`: adversarial actors.
    #[serde(default)]
    pub attackers: Vec<Attacker>,
    /// `[grants]`: the OpenCircle fund and its grant cohorts.
    #[serde(default)]
    pub grants: Grants,
    /// `[[expect]]`: claims about the run's own result, checked after it
    /// ([`super::expect`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<super::expect::Expectation>,
    /// The folder `datanets[].file` paths are relative to: the scenario file's folder, set by
    /// [`Scenario::parse`] (not a field of the file). `None`: the current directory.
    #[serde(skip)]
    pub dir: Option<PathBuf>,
}

/// `[run]`: what to run and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Name of the run (non-empty), used in reports.
    pub name: String,
    /// Free-text description. Default: empty.
    #[serde(default)]
    pub description: String,
    /// Master seed of every random stream. Default 42.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Number of epochs (at least 1). Default 10.
    #[serde(default = "default_epochs")]
    pub epochs: u32,
    /// Simulated seconds per epoch (at least 1). Default 86,400 (one day).
    #[serde(default = "default_epoch_seconds")]
    pub epoch_seconds: u64,
    /// Chain backend. Default `embedded`.
    #[serde(default)]
    pub chain: ChainBackend,
    /// Device for training, serving and attribution. Default `cpu`.
    #[serde(default)]
    pub device: DeviceKind,
    /// Agents' transactions are impersonated (executed as their sender with no signing and
    /// no sender recovery) instead of signed; embedded chain only. Default `false`.
    #[serde(default)]
    pub impersonate: bool,
    /// Random contributor subsets retrained for the Data Banzhaf ground truth of models
    /// with more than 16 and at most 1,000 contributors (docs/metrics.md, "Ground truth");
    /// 0 or 4 to 4,096. 0 judges such runs against the generator's count of clean items.
    /// Default 32.
    #[serde(default = "default_truth_subsets")]
    pub truth_subsets: u32,
}

/// Default `run.truth_subsets`.
pub const DEFAULT_TRUTH_SUBSETS: u32 = 32;

fn default_truth_subsets() -> u32 {
    DEFAULT_TRUTH_SUBSETS
}

fn default_seed() -> u64 {
    42
}
fn default_epochs() -> u32 {
    10
}
fn default_epoch_seconds() -> u64 {
    86_400
}

/// Which chain executes the protocol's transactions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChainBackend {
    /// The OP-Stack L2 on op-revm inside the process.
    #[default]
    Embedded,
    /// A local anvil node (`--network optimism`).
    Anvil,
}

/// Which device runs the models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// burn's NdArray CPU backend.
    #[default]
    Cpu,
    /// burn's CUDA backend (needs the `cuda` cargo feature and a GPU).
    Cuda,
}

/// Default `tokenomics.slash_confidence`.
pub const DEFAULT_SLASH_CONFIDENCE: f64 = 0.95;

/// `[tokenomics]`: the protocol parameters at genesis. Defaults are
/// [`ProtocolParams::default()`], push settlement and DataInf / suffix-array attribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tokenomics {
    /// Minimum stake behind a contribution, OPEN.
    pub min_stake: f64,
    /// Fraction of a contribution's stake slashed on rejection or proven harm, `[0, 1]`,
    /// in steps of 0.0001 (one basis point).
    pub slash_fraction: f64,
    /// Seconds a contribution's stake stays locked (at most 365 days).
    pub lock_period_s: u64,
    /// Matching reviews that accept or reject a contribution (1-15).
    pub review_quorum: u8,
    /// How an inference fee is divided.
    pub fee_split: FeeSplitConfig,
    /// Stake needed to open a governance proposal, OPEN (at most 10,000,000), held the
    /// second before proposing.
    pub proposal_threshold: f64,
    /// Seconds a proposal is open for votes (1 hour to 30 days).
    pub voting_period_s: u64,
    /// Seconds between a passed proposal being queued and becoming executable (at most
    /// 30 days).
    pub timelock_delay_s: u64,
    /// Votes needed to pass a proposal, as a fraction of the total stake at the proposal's
    /// snapshot, `[0.0001, 1]`, in steps of 0.0001.
    pub quorum_fraction: f64,
    /// Whether the protocol has a guardian: a key that cancels, during the vote or the
    /// timelock, any proposal handing over a protocol role (attributor, guardian, the
    /// allow-list of governed calls). Default true.
    pub guardian: bool,
    /// Committee approvals that activate an OpenCircle grant (at least 1).
    pub grant_approvals: u8,
    /// OPEN price in USD (at most 8 decimals, > 0), used to size grants.
    pub open_price_usd: f64,
    /// How attribution rewards reach contributors.
    pub settlement: Settlement,
    /// Attribution method per model kind.
    pub attribution: AttributionMethods,
    /// The attributor's rule for slashing an accepted contribution as harmful.
    pub slash_rule: SlashRule,
    /// How sure the `validation` slash rule must be that a contributor's data is harmful,
    /// `[0.5, 0.9999]`: slashed when that share of bootstrap resamples of the validation
    /// set finds its accumulated influence negative.
    pub slash_confidence: f64,
    /// The attributor's rule for dividing a model's contributor pool among its contributors.
    pub reward_rule: RewardRule,
}

/// The attributor's rule for "proven harmful" (docs/metrics.md, "Slash rules").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlashRule {
    /// A contributor's relative influence (each record's influence over its gradient's
    /// length) on the loss of a protocol-held clean validation set, accumulated over
    /// epochs, is negative at confidence `slash_confidence` (a bootstrap over the
    /// validation points). Classifiers on generated Datanets only (a file Datanet
    /// has no clean validation set).
    #[default]
    Validation,
    /// The rule olsim used before: a contributor's summed influence on every output
    /// served this epoch (labelled as the model predicted them) is below minus the mean
    /// absolute summed influence of the model's contributors. Flags the noisiest honest
    /// contributor of every model, every epoch; kept for comparison.
    Served,
    /// The attributor never slashes (review rejections still do).
    None,
}

impl SlashRule {
    /// Its name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            SlashRule::Validation => "validation",
            SlashRule::Served => "served",
            SlashRule::None => "none",
        }
    }
}

/// How a model's contributor pool is divided each epoch (docs/metrics.md, "Reward rules").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardRule {
    /// In proportion to the positive part of each contributor's summed attribution weight of
    /// every output served this epoch.
    Influence,
    /// In proportion to the positive part of an exponential moving average of each
    /// contributor's epoch weights (half of the old average plus half of this epoch's).
    Smoothed,
    /// As `influence`, with each contributor's weight capped at 3 times the median positive
    /// weight of the model's contributors this epoch.
    Clipped,
    /// In proportion to the rank (1 = smallest) of each contributor's positive weight.
    Rank,
    /// In proportion to the summed positive part of each of the contributor's items'
    /// weights: additive over items, so splitting data over identities gains nothing.
    PerItem,
    /// In proportion to the positive part of a lower confidence bound on each
    /// contributor's summed weight: the sum minus the root of its items' summed squared
    /// weights. Splitting data over k identities multiplies the spread subtracted by about
    /// the root of k, so splitting does not pay. The default.
    #[default]
    Confident,
    /// In proportion to each contributor's records (or documents) in the model's training
    /// set: paying by volume, no attribution (the control).
    Volume,
}

impl RewardRule {
    /// Its name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            RewardRule::Influence => "influence",
            RewardRule::Smoothed => "smoothed",
            RewardRule::Clipped => "clipped",
            RewardRule::Rank => "rank",
            RewardRule::PerItem => "per_item",
            RewardRule::Confident => "confident",
            RewardRule::Volume => "volume",
        }
    }
}

impl Default for Tokenomics {
    fn default() -> Self {
        let p = ProtocolParams::default();
        let bps = |v: u16| f64::from(v) / 10_000.0;
        Tokenomics {
            min_stake: from_fixed(p.min_stake, 18),
            slash_fraction: bps(p.slash_bps),
            lock_period_s: p.lock_period,
            review_quorum: p.review_quorum,
            fee_split: FeeSplitConfig {
                contributors_bps: p.fee_split.contributors_bps,
                owner_bps: p.fee_split.owner_bps,
                stakers_bps: p.fee_split.stakers_bps,
                treasury_bps: p.fee_split.treasury_bps,
            },
            proposal_threshold: from_fixed(p.proposal_threshold, 18),
            voting_period_s: p.voting_period,
            timelock_delay_s: p.timelock_delay,
            quorum_fraction: bps(p.quorum_bps),
            guardian: true,
            grant_approvals: p.grant_approvals,
            open_price_usd: from_fixed(p.open_price_usd_e8, USD_DECIMALS),
            settlement: Settlement::default(),
            attribution: AttributionMethods::default(),
            slash_rule: SlashRule::default(),
            slash_confidence: DEFAULT_SLASH_CONFIDENCE,
            reward_rule: RewardRule::default(),
        }
    }
}

/// `[tokenomics.fee_split]`: shares of an inference fee in basis points; they must sum to
/// 10,000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeeSplitConfig {
    /// Share for data contributors, paid out by attribution.
    pub contributors_bps: u16,
    /// Share for the model owner.
    pub owner_bps: u16,
    /// Share for OPEN stakers.
    pub stakers_bps: u16,
    /// Share for the protocol treasury.
    pub treasury_bps: u16,
}

/// How the AttributionRewards contract pays contributors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Settlement {
    /// `settlePush`: one transaction transfers every recipient's reward.
    #[default]
    Push,
    /// `postRoot` + `claim`: a Merkle root is posted and each contributor claims.
    Merkle,
}

/// `[tokenomics.attribution]`: the Proof-of-Attribution method per model kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttributionMethods {
    /// Method for classifiers.
    pub classifier: ClassifierAttribution,
    /// Method for language models.
    pub language_model: LmAttribution,
}

/// Influence method for classifiers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassifierAttribution {
    /// DataInf: closed-form influence approximation on the LoRA parameters.
    #[default]
    Datainf,
    /// TracIn: gradient dot products summed over training checkpoints.
    Tracin,
    /// Exact influence functions (inverse Hessian), for small models.
    Exact,
}

/// Attribution method for language models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LmAttribution {
    /// Output spans matched against a suffix-array index of the training corpus.
    #[default]
    SuffixArray,
}

/// What a Datanet's data is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Feature records with binary labels, for classifiers.
    #[default]
    Classification,
    /// Text documents, for language models.
    Text,
}

/// Where a Datanet's data comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Generated with ground truth from `contributors` and the attackers on this Datanet.
    #[default]
    Generated,
    /// Loaded from `file` (CSV records or JSONL documents); no ground truth.
    File,
}

/// serde mirror of [`Domain`] so a scenario names domains as `finance`, `healthcare`,
/// `depin`, `gaming`.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Domain", rename_all = "snake_case")]
enum DomainDef {
    Finance,
    Healthcare,
    Depin,
    Gaming,
}

/// `[[datanets]]`: one Datanet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatanetConfig {
    /// Unique name, referenced by models, attackers and grant cohorts.
    pub name: String,
    /// Domain: `finance`, `healthcare`, `depin` or `gaming`.
    #[serde(with = "DomainDef")]
    pub domain: Domain,
    /// What the data is for. Default `classification`.
    #[serde(default)]
    pub task: Task,
    /// Where the data comes from. Default `generated`.
    #[serde(default)]
    pub source: Source,
    /// The data file for `source = "file"`: CSV records (`classification`) or JSONL
    /// documents (`text`), relative to the scenario file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The honest contributor population (generated Datanets only): one group
    /// (`[datanets.contributors]`) or several (`[[datanets.contributors]]`); default one
    /// group of [`Contributors::default`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contributors: Option<ContributorGroups>,
    /// Text generator parameters (generated Datanets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextConfig>,
    /// The Datanet's honest reviewers.
    #[serde(default)]
    pub reviewers: Reviewers,
}

impl DatanetConfig {
    /// Its honest contributor groups (one default group when none is given).
    pub fn contributor_groups(&self) -> Vec<Contributors> {
        self.contributors
            .as_ref()
            .map_or_else(|| vec![Contributors::default()], |g| g.0.clone())
    }
}

/// The honest contributor groups of a generated Datanet: written as one table
/// (`[datanets.contributors]`, one group) or an array of tables
/// (`[[datanets.contributors]]`, one group each).
#[derive(Clone, Debug, PartialEq)]
pub struct ContributorGroups(pub Vec<Contributors>);

impl Serialize for ContributorGroups {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ContributorGroups {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ContributorGroups;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a table of contributors, or an array of such tables (groups)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = Contributors::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ContributorGroups(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let many =
                    Vec::<Contributors>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ContributorGroups(many))
            }
        }
        d.deserialize_any(V)
    }
}

/// `[datanets.contributors]`: a group of honest contributors of a generated Datanet. Each
/// draws its quality, coverage and counts uniformly from the group's ranges.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Contributors {
    /// The group's name in reports. Default `group-<i>` (its place in the list, from 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Number of honest contributors (at least 1). Default 10.
    pub count: u32,
    /// Feature records per contributor. Default `[50, 150]`.
    pub records: Interval<u32>,
    /// Text documents per contributor. Default `[5, 15]`.
    pub documents: Interval<u32>,
    /// True quality (`1 -` label noise rate), `0 <= lo <= hi <= 1`. Default `[0.8, 0.98]`.
    pub quality: Interval<f32>,
    /// Fraction of the feature space's volume each contributor sees, `0 < lo <= hi <= 1`.
    /// Default `[0.3, 1.0]`.
    pub coverage: Interval<f32>,
    /// Stake behind each contribution, OPEN; at least `tokenomics.min_stake`. Default: the
    /// minimum stake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stake: Option<f64>,
    /// Contributors join evenly over the first this many epochs (1 = all in epoch 0).
    /// Default 1.
    pub arrival_epochs: u32,
}

impl Default for Contributors {
    fn default() -> Self {
        let p = PopulationSpec::default();
        let count = |r: (usize, usize)| Interval::new(r.0 as u32, r.1 as u32);
        Contributors {
            name: None,
            count: 10,
            records: count(p.records),
            documents: count(p.documents),
            quality: Interval::new(p.quality.0, p.quality.1),
            coverage: Interval::new(p.coverage.0, p.coverage.1),
            stake: None,
            arrival_epochs: 1,
        }
    }
}

/// `[datanets.text]`: the text generator of a generated Datanet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextConfig {
    /// World facts in the domain's fact table. Default 24.
    pub world_facts: u32,
    /// Private facts per contributor. Default 3.
    pub private_facts: u32,
    /// Grammar sentences per document. Default `[3, 6]`.
    pub sentences: Interval<u32>,
}

impl Default for TextConfig {
    fn default() -> Self {
        let t = TextParams::default();
        TextConfig {
            world_facts: t.world_facts as u32,
            private_facts: t.private_facts as u32,
            sentences: Interval::new(t.sentences.0 as u32, t.sentences.1 as u32),
        }
    }
}

/// `[datanets.reviewers]`: honest reviewers of a Datanet.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reviewers {
    /// Number of honest reviewers; with colluding reviewers on the Datanet, at least
    /// `tokenomics.review_quorum`. Default 3.
    pub count: u32,
    /// Probability that a review's verdict matches the ground truth, `[0, 1]`. Default 0.9.
    pub accuracy: f64,
}

impl Default for Reviewers {
    fn default() -> Self {
        Reviewers {
            count: 3,
            accuracy: 0.9,
        }
    }
}

/// Kind of model a developer fine-tunes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// An MLP classifier with LoRA adapters, trained on feature records.
    Classifier,
    /// A causal language model with LoRA adapters, trained on text documents.
    LanguageModel,
}

impl ModelKind {
    /// The Datanet task this kind trains on.
    pub fn task(self) -> Task {
        match self {
            ModelKind::Classifier => Task::Classification,
            ModelKind::LanguageModel => Task::Text,
        }
    }
}

/// `[[models]]`: a model developer and the model it fine-tunes and registers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Unique name, referenced by attackers.
    pub name: String,
    /// `classifier` or `language_model`.
    pub kind: ModelKind,
    /// Datanets it trains on (at least one; their task must match the kind; a classifier's
    /// Datanets share one domain).
    pub datanets: Vec<String>,
    /// Price per inference call, OPEN (> 0). Default 0.01.
    #[serde(default = "default_price")]
    pub price: f64,
    /// Epoch at which it is first trained and registered. Default 0.
    #[serde(default)]
    pub train_epoch: u32,
    /// Retrain on the Datanets' new data every this many epochs (0: never). Default 0.
    #[serde(default)]
    pub retrain_every: u32,
    /// Relative popularity when `inference.popularity = "weights"` (> 0). Default 1.
    #[serde(default = "default_weight")]
    pub weight: f64,
    /// Hidden layer widths of a classifier's base MLP (classifiers only). Default
    /// `[32, 32]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<u32>>,
    /// LoRA adapter configuration.
    #[serde(default)]
    pub lora: LoraSection,
    /// Fine-tuning hyper-parameters.
    #[serde(default)]
    pub training: TrainingSection,
}

pub(super) fn default_price() -> f64 {
    0.01
}
fn default_weight() -> f64 {
    1.0
}

/// Hidden widths of a classifier's base MLP when `hidden` is not given.
pub const DEFAULT_HIDDEN: [u32; 2] = [32, 32];

/// `[models.lora]`: the LoRA adapter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraSection {
    /// Rank `r` (at least 1, at most `min(in, out)` of every targeted layer). Default 2.
    pub rank: u32,
    /// Scale numerator: the update is multiplied by `alpha / rank` (> 0). Default 4.
    pub alpha: f32,
    /// Indices of the layers that get an adapter (0 = input layer); empty: every layer.
    /// Default empty.
    pub layers: Vec<u32>,
}

impl Default for LoraSection {
    fn default() -> Self {
        LoraSection {
            rank: 2,
            alpha: 4.0,
            layers: Vec::new(),
        }
    }
}

/// `[models.training]`: fine-tuning hyper-parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingSection {
    /// Passes over the training set (at least 1). Default 10.
    pub epochs: u32,
    /// Examples per mini-batch (at least 1). Default 32.
    pub batch_size: u32,
    /// Adam learning rate (> 0). Default 0.01.
    pub learning_rate: f64,
}

impl Default for TrainingSection {
    fn default() -> Self {
        let t = TrainConfig::default();
        TrainingSection {
            epochs: t.epochs as u32,
            batch_size: t.batch_size as u32,
            learning_rate: t.learning_rate,
        }
    }
}

/// How inference demand is spread over models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Popularity {
    /// Every model gets the same share.
    Uniform,
    /// The k-th model (file order, then grant-funded models) gets a share proportional to
    /// `1 / k^zipf_exponent`.
    #[default]
    Zipf,
    /// Shares proportional to each model's `weight`.
    Weights,
}

/// `[inference]`: inference demand from users.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inference {
    /// Inference calls per epoch over all models of `[[models]]`, at `reference_price`.
    /// Default 0.
    pub calls_per_epoch: u64,
    /// Number of inference buyers (at least 1 when there are calls). Default 20.
    pub users: u32,
    /// Calls paid in one `payInference` transaction (at least 1). Default 100.
    pub calls_per_payment: u32,
    /// Spread of demand over models. Default `zipf`.
    pub popularity: Popularity,
    /// Exponent of the Zipf popularity (> 0). Default 1.
    pub zipf_exponent: f64,
    /// Price elasticity of demand (>= 0): a model priced `p` gets its share of calls times
    /// `(p / reference_price)^-price_elasticity`. Default 0 (inelastic).
    pub price_elasticity: f64,
    /// Price at which `calls_per_epoch` holds, OPEN per call (> 0). Default 0.01.
    pub reference_price: f64,
}

impl Default for Inference {
    fn default() -> Self {
        Inference {
            calls_per_epoch: 0,
            users: 20,
            calls_per_payment: 100,
            popularity: Popularity::default(),
            zipf_exponent: 1.0,
            price_elasticity: 0.0,
            reference_price: default_price(),
        }
    }
}

/// `[[stakers]]`: a group of identical OPEN stakers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StakerGroup {
    /// Unique name, referenced by proposals as `proposer`.
    pub name: String,
    /// Number of stakers (at least 1).
    pub count: u32,
    /// OPEN each staker stakes (> 0).
    pub stake: f64,
    /// Fraction of the group that votes on each proposal, `[0, 1]`. Default 1.
    #[serde(default = "default_one")]
    pub participation: f64,
}

fn default_one() -> f64 {
    1.0
}

/// A governed parameter a proposal can change: each maps onto one governance setter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    /// `DatanetRegistry.setMinStake`; value in OPEN.
    MinStake,
    /// `DatanetRegistry.setSlashBps`; value a fraction.
    SlashFraction,
    /// `DatanetRegistry.setLockPeriod`; value in seconds.
    LockPeriodS,
    /// `DatanetRegistry.setReviewQuorum`; value a count.
    ReviewQuorum,
    /// `InferenceMarket.setFeeSplit`; value a table of four `*_bps` shares.
    FeeSplit,
    /// `StakingGovernance.setProposalThreshold`; value in OPEN.
    ProposalThreshold,
    /// `StakingGovernance.setVotingPeriod`; value in seconds.
    VotingPeriodS,
    /// `StakingGovernance.setTimelockDelay`; value in seconds.
    TimelockDelayS,
    /// `StakingGovernance.setQuorumBps`; value a fraction.
    QuorumFraction,
    /// `GrantVault.setOpenPrice`; value in USD.
    OpenPriceUsd,
}

/// `[[proposals]]`: a governance proposal to change one tokenomics parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Epoch at which the proposal is opened.
    pub epoch: u32,
    /// Staker group whose first member proposes (its stake must reach
    /// `tokenomics.proposal_threshold`).
    pub proposer: String,
    /// The `[tokenomics]` field to change.
    pub parameter: Parameter,
    /// The new value, in the unit of that `[tokenomics]` field.
    pub value: toml::Value,
    /// Fraction of the voting stake that votes for it, `[0, 1]`. Default 1.
    #[serde(default = "default_one")]
    pub support: f64,
    /// Free-text description, posted on chain. Default: empty.
    #[serde(default)]
    pub description: String,
}

/// The attacker kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    /// One honest-quality contributor split into many identities to farm per-identity
    /// rewards.
    Sybil,
    /// Re-submits another contributor's data, optionally perturbed.
    Copycat,
    /// Flips the labels (or states wrong facts) in a fraction of its data.
    LabelFlip,
    /// Plants a trigger that forces a target label in a fraction of its data.
    Backdoor,
    /// Submits random records and word salad.
    Spammer,
    /// Owns a model and pays for inferences on it to farm the owner's and contributors'
    /// shares.
    WashInference,
    /// Reviewers who accept attackers' contributions and reject honest ones.
    ColludingReviewers,
    /// Crafts data to inflate its attribution score: records placed where served inputs
    /// concentrate, labelled as the base model predicts (classification Datanets).
    AttributionGaming,
    /// Stakes OPEN just before each epoch's inference payments and unstakes after them, to
    /// take the stakers' fee share without holding stake over time.
    JitStaker,
    /// Borrows stake to pass a governance proposal that makes it the attributor, then pays
    /// every model's contributor pool to itself.
    GovernanceCapture,
}

impl AttackKind {
    /// Every kind, in file-name order.
    pub const ALL: [AttackKind; 10] = [
        AttackKind::Sybil,
        AttackKind::Copycat,
        AttackKind::LabelFlip,
        AttackKind::Backdoor,
        AttackKind::Spammer,
        AttackKind::WashInference,
        AttackKind::ColludingReviewers,
        AttackKind::AttributionGaming,
        AttackKind::JitStaker,
        AttackKind::GovernanceCapture,
    ];

    /// The kind whose data the generator draws with `behaviour`; `None` for honest data
    /// (which sybils and attribution gamers also start from).
    pub fn of_behaviour(behaviour: &Behaviour) -> Option<AttackKind> {
        match behaviour {
            Behaviour::Honest => None,
            Behaviour::LabelFlip { .. } => Some(AttackKind::LabelFlip),
            Behaviour::Backdoor { .. } => Some(AttackKind::Backdoor),
            Behaviour::Spammer => Some(AttackKind::Spammer),
            Behaviour::Copycat { .. } => Some(AttackKind::Copycat),
        }
    }

    /// The name used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            AttackKind::Sybil => "sybil",
            AttackKind::Copycat => "copycat",
            AttackKind::LabelFlip => "label_flip",
            AttackKind::Backdoor => "backdoor",
            AttackKind::Spammer => "spammer",
            AttackKind::WashInference => "wash_inference",
            AttackKind::ColludingReviewers => "colluding_reviewers",
            AttackKind::AttributionGaming => "attribution_gaming",
            AttackKind::JitStaker => "jit_staker",
            AttackKind::GovernanceCapture => "governance_capture",
        }
    }

    /// The optional `[[attackers]]` fields this kind takes, besides `kind`, `count` and
    /// `start_epoch` which every kind takes.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            AttackKind::Sybil => &["datanet", "identities"],
            AttackKind::Copycat => &["datanet", "perturb"],
            AttackKind::LabelFlip | AttackKind::Backdoor => &["datanet", "rate"],
            AttackKind::Spammer => &["datanet"],
            AttackKind::WashInference => &["model", "calls_per_epoch"],
            AttackKind::ColludingReviewers | AttackKind::AttributionGaming => &["datanet", "rate"],
            AttackKind::JitStaker | AttackKind::GovernanceCapture => &["stake"],
        }
    }

    /// Whether the kind submits data generated into a Datanet (and so needs a generated
    /// Datanet).
    pub fn contributes_data(self) -> bool {
        !matches!(
            self,
            AttackKind::WashInference
                | AttackKind::ColludingReviewers
                | AttackKind::JitStaker
                | AttackKind::GovernanceCapture
        )
    }

    /// Default of `rate` for the kinds that take it.
    pub fn default_rate(self) -> f64 {
        let p = PopulationSpec::default();
        match self {
            AttackKind::LabelFlip => f64::from(p.flip_rate),
            AttackKind::Backdoor => f64::from(p.backdoor_rate),
            _ => 0.5,
        }
    }
}

/// Default of `perturb` for copycats.
pub fn default_perturb() -> f64 {
    f64::from(PopulationSpec::default().copy_perturb)
}
/// Default of `identities` for sybils.
pub const DEFAULT_IDENTITIES: u32 = 10;
/// Default of `stake` for just-in-time stakers and governance capturers, OPEN.
pub const DEFAULT_STAKE: f64 = 100_000.0;
/// Default of `calls_per_epoch` for wash-inference attackers.
pub const DEFAULT_WASH_CALLS: u64 = 100;

/// `[[attackers]]`: a group of identical attackers of one kind. Which optional fields a
/// kind takes is [`AttackKind::fields`]; any other is rejected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attacker {
    /// The attack.
    pub kind: AttackKind,
    /// Number of attackers of this kind (at least 1). Default 1.
    #[serde(default = "default_count")]
    pub count: u32,
    /// Epoch at which they start. Default 0.
    #[serde(default)]
    pub start_epoch: u32,
    /// Target Datanet (every kind but `wash_inference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datanet: Option<String>,
    /// The attacker's own model (`wash_inference`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `label_flip`: fraction of records flipped (default 0.8); `backdoor`: fraction
    /// carrying the trigger (default 0.3); `colluding_reviewers`: probability of rejecting
    /// an honest contribution (default 0.5); `attribution_gaming`: fraction of crafted
    /// records (default 0.5). In `[0, 1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// `sybil`: identities per attacker (at least 2, default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identities: Option<u32>,
    /// `copycat`: standard deviation of the feature noise on copies (>= 0; 0 = exact
    /// copies; default 0.01).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perturb: Option<f64>,
    /// `wash_inference`: calls each attacker buys on its own model per epoch (at least 1,
    /// default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls_per_epoch: Option<u64>,
    /// `jit_staker`: OPEN each attacker stakes just in time; `governance_capture`: OPEN
    /// each attacker borrows and stakes to pass its proposal (> 0, at least
    /// `tokenomics.proposal_threshold` for `governance_capture`; default 100,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stake: Option<f64>,
}

fn default_count() -> u32 {
    1
}

impl Attacker {
    /// `rate`, or the kind's default.
    pub fn rate(&self) -> f64 {
        self.rate.unwrap_or(self.kind.default_rate())
    }

    /// `identities`, or [`DEFAULT_IDENTITIES`].
    pub fn identities(&self) -> u32 {
        self.identities.unwrap_or(DEFAULT_IDENTITIES)
    }

    /// `perturb`, or [`default_perturb`].
    pub fn perturb(&self) -> f64 {
        self.perturb.unwrap_or_else(default_perturb)
    }

    /// `attribution_gaming`: how many of its `records` records a gamer crafts,
    /// `round(rate * records)`.
    pub fn crafted(&self, records: usize) -> usize {
        (records as f64 * self.rate()).round() as usize
    }

    /// `stake`, or [`DEFAULT_STAKE`].
    pub fn stake(&self) -> f64 {
        self.stake.unwrap_or(DEFAULT_STAKE)
    }

    /// `calls_per_epoch`, or [`DEFAULT_WASH_CALLS`].
    pub fn calls_per_epoch(&self) -> u64 {
        self.calls_per_epoch.unwrap_or(DEFAULT_WASH_CALLS)
    }
}

/// The three OpenCircle grant tiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// 25,000-50,000 USD.
    Exploration,
    /// 50,000-150,000 USD.
    Building,
    /// 250,000-500,000 USD.
    Expansion,
}

impl Tier {
    /// Grant bounds in whole USD, as `GrantVault.tierBounds`.
    pub fn bounds_usd(self) -> (u64, u64) {
        match self {
            Tier::Exploration => (25_000, 50_000),
            Tier::Building => (50_000, 150_000),
            Tier::Expansion => (250_000, 500_000),
        }
    }

    /// The tier number `GrantVault` uses (0, 1, 2).
    pub fn index(self) -> u8 {
        match self {
            Tier::Exploration => 0,
            Tier::Building => 1,
            Tier::Expansion => 2,
        }
    }
}

/// `[grants]`: the OpenCircle fund.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Grants {
    /// Fund size in whole USD, deposited into GrantVault at the start price. Default
    /// 25,000,000.
    pub fund_usd: u64,
    /// Committee members (at least `tokenomics.grant_approvals` when there are cohorts).
    /// Default 3.
    pub committee: u32,
    /// `[[grants.cohorts]]`: the cohorts of funded teams.
    pub cohorts: Vec<Cohort>,
}

impl Default for Grants {
    fn default() -> Self {
        Grants {
            fund_usd: 25_000_000,
            committee: 3,
            cohorts: Vec::new(),
        }
    }
}

/// Most milestones a grant may have (`GrantVault.MAX_MILESTONES`).
pub const MAX_MILESTONES: u8 = 10;

/// `[[grants.cohorts]]`: teams that apply for grants of one tier in one epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cohort {
    /// `exploration`, `building` or `expansion`.
    pub tier: Tier,
    /// Number of teams (at least 1).
    pub teams: u32,
    /// Epoch at which the teams apply. Default 0.
    #[serde(default)]
    pub epoch: u32,
    /// Grant per team in whole USD, drawn uniformly; within the tier's bounds. Default: the
    /// tier's bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_usd: Option<Interval<u64>>,
    /// The cohort's total budget in whole USD: grants are approved while it lasts. Default:
    /// `teams` times the largest grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<u64>,
    /// Milestone tranches per grant (1-10). Default 3.
    #[serde(default = "default_milestones")]
    pub milestones: u8,
    /// Epochs between milestones (at least 1). Default 1.
    #[serde(default = "default_milestone_epochs")]
    pub milestone_epochs: u32,
    /// Probability that a team delivers each milestone, `[0, 1]`; a missed milestone fails
    /// the grant. Default 0.7.
    #[serde(default = "default_success")]
    pub success_probability: f64,
    /// Kind of model a team ships after its last milestone. Default `classifier`.
    #[serde(default = "default_model_kind")]
    pub model_kind: ModelKind,
    /// Datanet the shipped models train on (task must match `model_kind`).
    pub datanet: String,
    /// Inference calls per epoch each shipped model brings (added to `[inference]` demand).
    /// Default 100.
    #[serde(default = "default_cohort_calls")]
    pub calls_per_epoch: u64,
    /// Price per inference of the shipped models, OPEN (> 0). Default 0.01.
    #[serde(default = "default_price")]
    pub price: f64,
    /// Popularity weight of each shipped model (> 0). Default 1.
    #[serde(default = "default_weight")]
    pub weight: f64,
}

fn default_milestones() -> u8 {
    3
}
fn default_milestone_epochs() -> u32 {
    1
}
fn default_success() -> f64 {
    0.7
}
fn default_model_kind() -> ModelKind {
    ModelKind::Classifier
}
fn default_cohort_calls() -> u64 {
    100
}

impl Cohort {
    /// `amount_usd`, or the tier's bounds.
    pub fn amount(&self) -> Interval<u64> {
        self.amount_usd.unwrap_or_else(|| {
            let (lo, hi) = self.tier.bounds_usd();
            Interval::new(lo, hi)
        })
    }

    /// `budget_usd`, or `teams` times the largest grant.
    pub fn budget(&self) -> u64 {
        self.budget_usd
            .unwrap_or(u64::from(self.teams) * self.amount().hi)
    }
}

/// An inclusive range `[lo, hi]`, written in TOML as a two-element array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval<T> {
    /// Lower end (included).
    pub lo: T,
    /// Upper end (included).
    pub hi: T,
}

impl<T> Interval<T> {
    /// The range `[lo, hi]`.
    pub const fn new(lo: T, hi: T) -> Self {
        Interval { lo, hi }
    }
}

impl<T: Serialize> Serialize for Interval<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut t = s.serialize_tuple(2)?;
        t.serialize_element(&self.lo)?;
        t.serialize_element(&self.hi)?;
        t.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Interval<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Interval<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a range [lo, hi] of exactly two numbers")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let lo = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let hi = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(1, &self))?;
                let mut extra = 2;
                while seq.next_element::<de::IgnoredAny>()?.is_some() {
                    extra += 1;
                }
                if extra > 2 {
                    return Err(de::Error::invalid_length(extra, &self));
                }
                Ok(Interval { lo, hi })
            }
        }
        d.deserialize_seq(V(PhantomData))
    }
}
