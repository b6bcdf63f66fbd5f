//! The attributor's slash rule: which accepted contributions it proves harmful, to slash
//! them with `DatanetRegistry.slashHarmful` (`tokenomics.slash_rule`, docs/metrics.md
//! "Slash rules").
//!
//! - `validation` (default): every epoch a classifier is live, the influence of each of its
//!   training records on the loss of a protocol-held clean validation set (fresh points
//!   labelled by the true function, never trained on) is added up per contributor and per
//!   validation point, over the epochs. Each record's influence is relative (divided by
//!   the length of its training gradient), so a contributor is judged by which way its
//!   records push the model rather than by its few records the model fits worst. A
//!   contributor is harmful when its mean influence over the validation points is negative
//!   in at least `slash_confidence` of [`BOOTSTRAP_RESAMPLES`] bootstrap resamples of those
//!   points: harm to held-out clean data, significant, and judged on all the evidence so
//!   far rather than one epoch's noise.
//! - `served`: the old rule, on this epoch's served outputs labelled as the model predicted
//!   them (see [`crate::scenario::SlashRule::Served`]).
//! - `none`: never.

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::data::ContributorId;
use olsim_ml::data::rng::stream;
use rand::RngExt;

use super::data::DatanetState;
use super::epoch::Weights;
use super::lab::Lab;
use super::models::{ModelState, Trained, TrainedClassifier};
use super::{EngineError, Work};
use crate::scenario::{ModelKind, SlashRule, Tokenomics};

/// Clean validation points per generated Datanet of a classifier.
pub const VALIDATION_POINTS: usize = 256;

/// Bootstrap resamples of the validation points behind each decision.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// Names the validation set's draw (apart from the ground truth's test sets).
const VALIDATION_SALT: &str = "slash-validation";

/// Floor on a record's self-influence before its square root divides its scores (a record
/// the model fits perfectly has a gradient of length about 0).
const MIN_SELF_INFLUENCE: f64 = 1e-12;

/// The served rule's threshold: harmful below minus this many times the mean absolute
/// summed influence of the model's contributors.
pub const SERVED_HARM_THRESHOLD: f64 = 1.0;

/// What the validation rule knows about one model: its validation set and each
/// contributor's influence on each validation point, summed over the epochs so far.
#[derive(Default)]
pub struct Evidence {
    /// The validation points, made on first use; empty when the model has none (a language
    /// model, or only file Datanets).
    validation: Option<Vec<(Vec<f32>, u8)>>,
    /// Per `(datanet, contributor)`: summed influence on each validation point.
    by_identity: PerIdentity,
    /// The model version last measured and its per-identity influence: an epoch that
    /// serves the same version adds it again without recomputing it.
    measured: Option<(u32, PerIdentity)>,
}

/// Influence on each validation point, per `(datanet, contributor)`.
type PerIdentity = BTreeMap<(usize, ContributorId), Vec<f64>>;

/// A contributor found harmful, with the figure that convicted it.
#[derive(Clone, Copy, Debug)]
pub struct Verdict {
    /// The contributor, `(datanet, contributor)`.
    pub identity: (usize, ContributorId),
    /// Its mean influence per validation point (validation rule) or its summed influence on
    /// the served outputs (served rule): negative.
    pub influence: f64,
}

/// Under the validation rule, adds this epoch's influence of live classifier `model`'s
/// training records on its validation set to `evidence` (nothing for other rules or models).
pub(super) fn observe<B: AutodiffBackend>(
    rule: SlashRule,
    lab: &mut Lab<B>,
    model: &ModelState<B>,
    datanets: &[DatanetState],
    evidence: &mut Evidence,
) -> Result<(), EngineError> {
    let Some(Trained::Classifier(trained)) = &model.trained else {
        return Ok(());
    };
    if rule != SlashRule::Validation {
        return Ok(());
    }
    let validation = evidence.validation.get_or_insert_with(|| {
        model
            .datanets
            .iter()
            .filter_map(|&n| {
                datanets[n]
                    .data
                    .clean_test_set(VALIDATION_POINTS, VALIDATION_SALT)
            })
            .flatten()
            .collect()
    });
    if validation.is_empty() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    let this = match &mut evidence.measured {
        Some((version, this)) if *version == model.version => this,
        slot => {
            let this = measure(lab, model, trained, datanets, validation)?;
            &mut slot.insert((model.version, this)).1
        }
    };
    for (identity, delta) in this.iter() {
        let sums = evidence
            .by_identity
            .entry(*identity)
            .or_insert_with(|| vec![0.0; delta.len()]);
        for (sum, d) in sums.iter_mut().zip(delta) {
            *sum += d;
        }
    }
    lab.timers.add(Work::Attribution, start);
    Ok(())
}

/// Relative influence of each of `trained`'s training records on each point of
/// `validation`, summed per contributing identity.
fn measure<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    model: &ModelState<B>,
    trained: &TrainedClassifier<B>,
    datanets: &[DatanetState],
    validation: &[(Vec<f32>, u8)],
) -> Result<PerIdentity, EngineError> {
    // Relative influence: each record's score over its gradient's length (the square root
    // of its self-influence), so a record counts by the direction it pushes the model, not
    // by how badly the model fits it (a mislabelled record's gradient is long).
    let inverse_lengths: Vec<f64> = trained
        .index
        .training_self_influence()
        .iter()
        .map(|&s| 1.0 / f64::from(s).max(MIN_SELF_INFLUENCE).sqrt())
        .collect();
    // Summed per contributing identity: one group of records each.
    let authors: Vec<(usize, ContributorId)> = trained
        .sources
        .iter()
        .map(|&(n, r)| (n, datanets[n].item_author(r)))
        .collect();
    let mut identities = authors.clone();
    identities.sort_unstable();
    identities.dedup();
    let group: Vec<usize> = authors
        .iter()
        .map(|a| identities.binary_search(a).expect("collected above"))
        .collect();
    let groups = identities.len();
    let (sums, cost) = trained
        .index
        .grouped_scores(validation, &group, &inverse_lengths, groups)
        .map_err(|e| EngineError::Model {
            model: format!("{} (validation influence for slashing)", model.name),
            source: e.into(),
        })?;
    lab.compute
        .add(Work::Attribution, ModelKind::Classifier, &cost);
    let points = validation.len();
    let out = identities
        .into_iter()
        .enumerate()
        .map(|(i, identity)| {
            (
                identity,
                (0..points).map(|q| sums[q * groups + i]).collect(),
            )
        })
        .collect();
    Ok(out)
}

/// The contributors to model `name` that `tokenomics.slash_rule` finds harmful in `epoch`:
/// from `evidence` (validation rule) or this epoch's served-output `weights` (served rule;
/// `None` when the model served nothing).
pub(super) fn harmful(
    tokenomics: &Tokenomics,
    seed: u64,
    name: &str,
    epoch: u32,
    weights: Option<&Weights>,
    evidence: &Evidence,
) -> Vec<Verdict> {
    match tokenomics.slash_rule {
        SlashRule::None => Vec::new(),
        SlashRule::Served => weights.map(served_rule).unwrap_or_default(),
        SlashRule::Validation => evidence
            .by_identity
            .iter()
            .filter_map(|(&identity, sums)| {
                let mean = sums.iter().sum::<f64>() / sums.len().max(1) as f64;
                if mean >= 0.0 {
                    return None;
                }
                let mut rng = stream(
                    seed,
                    &format!(
                        "engine/slash/{name}/{epoch}/{}/{}",
                        identity.0, identity.1.0
                    ),
                );
                let negative = negative_share(sums, &mut rng);
                (negative >= tokenomics.slash_confidence).then_some(Verdict {
                    identity,
                    influence: mean,
                })
            })
            .collect(),
    }
}

/// Share of [`BOOTSTRAP_RESAMPLES`] resamples (with replacement) of `values` whose mean is
/// negative.
fn negative_share(values: &[f64], rng: &mut impl rand::Rng) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let negative = (0..BOOTSTRAP_RESAMPLES)
        .filter(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() < 0.0)
        .count();
    negative as f64 / BOOTSTRAP_RESAMPLES as f64
}

/// The served rule: summed influence below minus [`SERVED_HARM_THRESHOLD`] times the mean
/// absolute summed influence of the model's contributors.
fn served_rule(weights: &Weights) -> Vec<Verdict> {
    if weights.is_empty() {
        return Vec::new();
    }
    let mean_abs = weights.values().map(|s| s.abs()).sum::<f64>() / weights.len() as f64;
    weights
        .iter()
        .filter(|&(_, &s)| s < -SERVED_HARM_THRESHOLD * mean_abs)
        .map(|(&identity, &influence)| Verdict {
            identity,
            influence,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use olsim_ml::data::rng::stream;

    #[test]
    fn the_bootstrap_tells_consistent_harm_from_noise() {
        let mut rng = stream(1, "test");
        // Every point hurt a little: certainly harmful.
        assert_eq!(negative_share(&[-0.1; 50], &mut rng), 1.0);
        // Mostly helpful with one large harmful outlier: the mean is negative, but a
        // resample without the outlier is positive often enough not to convict.
        let mut outlier = vec![0.1; 50];
        outlier[0] = -5.5;
        let share = negative_share(&outlier, &mut rng);
        assert!(share > 0.3 && share < 0.95, "{share}");
        assert_eq!(negative_share(&[], &mut rng), 0.0);
    }

    #[test]
    fn the_served_rule_flags_below_minus_the_mean_absolute_influence() {
        let mut w = Weights::new();
        for (c, s) in [(0u32, 1.0), (1, 1.0), (2, -2.5), (3, -0.5)] {
            w.insert((0, ContributorId(c)), s);
        }
        // mean |s| = 1.25: only -2.5 is below -1.25.
        let flagged: Vec<u32> = served_rule(&w).iter().map(|v| v.identity.1.0).collect();
        assert_eq!(flagged, vec![2]);
    }
}
