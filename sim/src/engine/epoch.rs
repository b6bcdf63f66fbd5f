//! What the stages of an epoch share: the stages themselves (their order is written once,
//! in [`super::pipeline::PIPELINE`]), what one stage hands the next, and attribution
//! weights.

use std::collections::BTreeMap;

use olsim_ml::data::ContributorId;

use super::models::Served;

/// A stage of the epoch pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Proposals advance and open.
    Governance,
    /// Contributions arrive with their stake.
    Arrivals,
    /// Reviewers decide pending contributions.
    Review,
    /// OpenCircle grants move.
    Grants,
    /// Models are fine-tuned and registered.
    Training,
    /// Inference calls are paid for.
    Payment,
    /// Paid calls are served.
    Serving,
    /// Served outputs are attributed to training data.
    Attribution,
    /// Harmful data is slashed; reward pools are paid out.
    Settlement,
    /// Stakers claim their share.
    StakingClaims,
}

/// Attribution weight per contributing identity `(datanet, contributor)`.
pub type Weights = BTreeMap<(usize, ContributorId), f64>;

/// What attribution found for one model in one epoch, per contributing identity.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Attributed {
    /// Summed weight of its items (classifier influence may be negative).
    pub net: Weights,
    /// Summed positive part of each item's weight: additive over items, so the same no
    /// matter how the items are split over identities.
    pub positive_items: Weights,
    /// Summed square of each item's weight: the spread behind `net` (0 for language models,
    /// whose span weights are per document, not per scored item).
    pub squares: Weights,
    /// Each attributed output's own weights, where the outputs attributed are a sample of
    /// those served (language models: [`super::lm::GENERATED_PER_EPOCH`] decoded per
    /// epoch); empty where every output is attributed (classifiers).
    pub samples: Vec<Weights>,
}

/// What one stage hands the next within an epoch (attacks see it in their hooks).
#[derive(Default)]
pub struct EpochState {
    /// The epoch, from 0.
    pub number: u32,
    /// Calls paid per model (Payment -> Serving).
    pub paid: Vec<u64>,
    /// What each model served (Serving -> Attribution).
    pub(super) served: Vec<Served>,
    /// Attribution weights per model, `None` for models that served nothing
    /// (Attribution -> Settlement).
    pub(super) weights: Vec<Option<Attributed>>,
}
