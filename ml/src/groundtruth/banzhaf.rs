//! Data Banzhaf values of contributors by maximum sample reuse (Wang and Jia, AISTATS 2023):
//! adapters are retrained on random contributor subsets, each contributor in a subset with
//! probability one half, and every retraining is reused for every contributor. A
//! contributor's value is the mean value of the subsets that hold it minus the mean of those
//! that do not. The cost is the number of subsets, whatever the number of contributors.

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;
use rayon::prelude::*;

use super::GroundTruthError;
use super::retrain::Retrainer;
use super::shapley::{ContributorValues, Valuer};
use crate::data::rng::stream;
use crate::model::cost::StepCost;

/// Data Banzhaf settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BanzhafConfig {
    /// Random contributor subsets retrained (at least 4: each half needs two).
    pub subsets: usize,
    /// Seed of the subset stream `"groundtruth/banzhaf/subsets"` and of the bootstrap
    /// stream `"groundtruth/banzhaf/bootstrap"`.
    pub seed: u64,
}

/// Bootstrap resamples of the subsets behind each contributor's interval.
pub const BOOTSTRAP_RESAMPLES: usize = 200;

/// Data Banzhaf values with their noise and reliability.
#[derive(Clone, Debug, PartialEq)]
pub struct BanzhafValues {
    /// Each contributor's value over all subsets.
    pub values: ContributorValues,
    /// Two independent estimates: from the first and from the second half of the subsets.
    pub halves: [Vec<f64>; 2],
    /// Each contributor's 95% bootstrap interval (percentiles over resamples of the
    /// subsets).
    pub intervals: Vec<(f64, f64)>,
}

/// Data Banzhaf value of every contributor of `retrainer` from `config.subsets` retrainings.
pub fn data_banzhaf<B: AutodiffBackend>(
    retrainer: &Retrainer<B>,
    config: &BanzhafConfig,
) -> Result<BanzhafValues, GroundTruthError> {
    if config.subsets < 4 {
        return Err(GroundTruthError::Config(format!(
            "Data Banzhaf needs at least 4 subsets (two per independent half), got {}",
            config.subsets
        )));
    }
    let mut valuer = Valuer::new(retrainer);
    let c = valuer.contributors.len();
    let full = valuer.value(&vec![true; c])?;
    let empty = valuer.value(&vec![false; c])?;
    let mut rng = stream(config.seed, "groundtruth/banzhaf/subsets");
    let subsets: Vec<Vec<bool>> = (0..config.subsets)
        .map(|_| (0..c).map(|_| rng.random_bool(0.5)).collect())
        .collect();
    // Subsets train independently: in parallel, each the same on any thread count.
    let values: Vec<(f64, StepCost)> = subsets
        .par_iter()
        .map(|members| retrainer.value_of_contributors(&valuer.contributors, members))
        .collect::<Result<_, _>>()?;
    let mut samples: Vec<(Vec<bool>, f64)> = Vec::with_capacity(config.subsets);
    for (members, (value, cost)) in subsets.into_iter().zip(values) {
        valuer.record(&members, value, &cost);
        samples.push((members, value));
    }
    let half = samples.len() / 2;
    let halves = [
        estimate(c, samples[..half].iter()),
        estimate(c, samples[half..].iter()),
    ];
    let mut rng = stream(config.seed, "groundtruth/banzhaf/bootstrap");
    let mut resampled: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP_RESAMPLES); c];
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let draw = (0..samples.len()).map(|_| &samples[rng.random_range(0..samples.len())]);
        for (i, v) in estimate(c, draw).into_iter().enumerate() {
            resampled[i].push(v);
        }
    }
    let intervals = resampled
        .into_iter()
        .map(|mut v| {
            v.sort_by(f64::total_cmp);
            (percentile(&v, 0.025), percentile(&v, 0.975))
        })
        .collect();
    let values = estimate(c, samples.iter());
    Ok(BanzhafValues {
        values: valuer.finish(values, full, empty),
        halves,
        intervals,
    })
}

/// Maximum-sample-reuse estimate over `samples`: per contributor, the mean value of the
/// subsets holding it minus the mean of the rest (0 when either side is empty).
fn estimate<'a>(c: usize, samples: impl Iterator<Item = &'a (Vec<bool>, f64)>) -> Vec<f64> {
    let (mut with, mut without) = (vec![(0.0, 0u32); c], vec![(0.0, 0u32); c]);
    for (members, value) in samples {
        for (i, &member) in members.iter().enumerate() {
            let side = if member {
                &mut with[i]
            } else {
                &mut without[i]
            };
            side.0 += value;
            side.1 += 1;
        }
    }
    with.into_iter()
        .zip(without)
        .map(|((a, n), (b, m))| match (n, m) {
            (0, _) | (_, 0) => 0.0,
            _ => a / f64::from(n) - b / f64::from(m),
        })
        .collect()
}

/// The `q` quantile of ascending `sorted` (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
