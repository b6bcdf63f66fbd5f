//! The attributor's reward rule (`tokenomics.reward_rule`, docs/metrics.md "Reward rules"):
//! how a model's attribution weights of an epoch become each contributor's share of the
//! model's contributor pool. Shares are weights (not yet normalised); settlement pays every
//! positive share its part of the pool.

use olsim_ml::groundtruth::ranks;

use super::epoch::{Attributed, Weights};
use crate::scenario::RewardRule;

/// Weight of the old average in the `smoothed` rule's moving average.
pub const SMOOTHING: f64 = 0.5;

/// The `clipped` rule caps a weight at this multiple of the median positive weight.
pub const CLIP_MEDIANS: f64 = 3.0;

/// The `confident` rule subtracts this many roots of a contributor's summed squared item
/// weights from its summed weight (one standard error when item weights are independent
/// noise around zero: about 84% one-sided confidence that the sum is positive).
pub const CONFIDENCE_ROOTS: f64 = 1.0;

/// Shares of this epoch's pool under `rule`, from the epoch's attribution `found`, the
/// model's moving average of past weights `smoothed` (updated here under `smoothed`) and
/// its training `volume` (records or documents per contributor).
pub(super) fn shares(
    rule: RewardRule,
    found: &Attributed,
    smoothed: &mut Weights,
    volume: &Weights,
) -> Weights {
    let weights = &found.net;
    match rule {
        RewardRule::Influence => positive(weights),
        RewardRule::Smoothed => {
            for (identity, average) in smoothed.iter_mut() {
                *average *= SMOOTHING;
                *average += (1.0 - SMOOTHING) * weights.get(identity).copied().unwrap_or(0.0);
            }
            for (identity, w) in weights {
                smoothed.entry(*identity).or_insert((1.0 - SMOOTHING) * w);
            }
            positive(smoothed)
        }
        RewardRule::Clipped => {
            let mut shares = positive(weights);
            let mut values: Vec<f64> = shares.values().copied().collect();
            values.sort_by(f64::total_cmp);
            if let Some(median) = median(&values) {
                for share in shares.values_mut() {
                    *share = share.min(CLIP_MEDIANS * median);
                }
            }
            shares
        }
        RewardRule::Rank => {
            let shares = positive(weights);
            let values: Vec<f64> = shares.values().copied().collect();
            shares.into_keys().zip(ranks(&values)).collect()
        }
        RewardRule::PerItem => positive(&found.positive_items),
        RewardRule::Confident => {
            let bounds: Weights = found
                .net
                .iter()
                .map(|(identity, w)| {
                    let spread = found.squares.get(identity).copied().unwrap_or(0.0).sqrt();
                    (*identity, w - CONFIDENCE_ROOTS * spread)
                })
                .collect();
            positive(&bounds)
        }
        RewardRule::Volume => positive(volume),
    }
}

/// The positive entries of `weights`.
fn positive(weights: &Weights) -> Weights {
    weights
        .iter()
        .filter(|(_, w)| **w > 0.0)
        .map(|(k, w)| (*k, *w))
        .collect()
}

/// Median of ascending `sorted`; `None` when empty.
fn median(sorted: &[f64]) -> Option<f64> {
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use olsim_ml::data::ContributorId;

    fn weights(values: &[f64]) -> Weights {
        values
            .iter()
            .enumerate()
            .map(|(i, &w)| ((0, ContributorId(i as u32)), w))
            .collect()
    }

    fn found(net: &[f64]) -> Attributed {
        Attributed {
            net: weights(net),
            // As if each contributor's items had weights +5 and (net - 5).
            positive_items: weights(
                &net.iter()
                    .map(|w| 5.0 + (w - 5.0).max(0.0))
                    .collect::<Vec<_>>(),
            ),
            // As if each contributor had one item: a spread of |net|.
            squares: weights(&net.iter().map(|w| w * w).collect::<Vec<_>>()),
            samples: Vec::new(),
        }
    }

    fn run(rule: RewardRule, values: &[f64]) -> Vec<f64> {
        let volume = weights(&[10.0, 20.0, 30.0, 40.0]);
        let shares = shares(rule, &found(values), &mut Weights::new(), &volume);
        (0..values.len() as u32)
            .map(|i| shares.get(&(0, ContributorId(i))).copied().unwrap_or(0.0))
            .collect()
    }

    #[test]
    fn each_rule_divides_the_pool_as_documented() {
        let w = [-1.0, 1.0, 2.0, 100.0];
        assert_eq!(run(RewardRule::Influence, &w), [0.0, 1.0, 2.0, 100.0]);
        // Median of the positive weights is 2: the outlier is capped at 6.
        assert_eq!(run(RewardRule::Clipped, &w), [0.0, 1.0, 2.0, 6.0]);
        assert_eq!(run(RewardRule::Rank, &w), [0.0, 1.0, 2.0, 3.0]);
        // Volume ignores attribution, even the negative weight.
        assert_eq!(run(RewardRule::Volume, &w), [10.0, 20.0, 30.0, 40.0]);
        // Per item: a contributor's negative items do not cancel its positive ones.
        assert_eq!(run(RewardRule::PerItem, &w), [5.0, 5.0, 5.0, 100.0]);
    }

    #[test]
    fn the_confident_rule_pays_a_lower_bound_and_splitting_lowers_it() {
        let found = |items: &[&[f64]]| Attributed {
            net: weights(&items.iter().map(|i| i.iter().sum()).collect::<Vec<_>>()),
            positive_items: Weights::new(),
            squares: weights(
                &items
                    .iter()
                    .map(|i| i.iter().map(|s| s * s).sum())
                    .collect::<Vec<_>>(),
            ),
            samples: Vec::new(),
        };
        let pay = |items: &[&[f64]]| -> f64 {
            shares(
                RewardRule::Confident,
                &found(items),
                &mut Weights::new(),
                &Weights::new(),
            )
            .values()
            .sum()
        };
        // Nine items of weight 1: 9 - 3 = 6.
        let nine = [1.0; 9];
        assert_eq!(pay(&[&nine]), 6.0);
        // The same nine items over three identities earn 3 x (3 - 3^0.5), about 3.8.
        let split = pay(&[&nine[..3], &nine[3..6], &nine[6..]]);
        assert!((split - 3.0 * (3.0 - 3f64.sqrt())).abs() < 1e-12, "{split}");
        // Harmful items cancel useful ones before the bound is taken: 16 - 4 = 12 alone,
        // 4 - 28^0.5 < 0 with twelve harmful ones beside them.
        assert_eq!(pay(&[&[1.0; 16]]), 12.0);
        let mixed = [[1.0; 16].as_slice(), &[-1.0; 12]].concat();
        assert_eq!(pay(&[&mixed]), 0.0);
    }

    #[test]
    fn smoothing_carries_past_epochs_into_this_one() {
        let volume = Weights::new();
        let mut average = Weights::new();
        let first = shares(
            RewardRule::Smoothed,
            &found(&[4.0, 0.0]),
            &mut average,
            &volume,
        );
        assert_eq!(first.get(&(0, ContributorId(0))), Some(&2.0));
        // Contributor 0 is absent the next epoch and 1 earns 4: 0 keeps half its average.
        let next = Attributed {
            net: [((0, ContributorId(1)), 4.0)].into_iter().collect(),
            positive_items: Weights::new(),
            squares: Weights::new(),
            samples: Vec::new(),
        };
        let second = shares(RewardRule::Smoothed, &next, &mut average, &volume);
        assert_eq!(second.get(&(0, ContributorId(0))), Some(&1.0));
        assert_eq!(second.get(&(0, ContributorId(1))), Some(&2.0));
    }
}
