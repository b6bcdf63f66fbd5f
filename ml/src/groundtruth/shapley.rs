//! Contributor values by retraining: leave-one-contributor-out and truncated Monte Carlo
//! Shapley (Ghorbani and Zou 2019).

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;

use super::GroundTruthError;
use super::retrain::Retrainer;
use crate::data::ContributorId;
use crate::data::rng::stream;
use crate::model::cost::{Kernels, StepCost};

/// Retraining-based values of every contributor.
#[derive(Clone, Debug, PartialEq)]
pub struct ContributorValues {
    /// The contributors, ascending.
    pub contributors: Vec<ContributorId>,
    /// Value of each contributor, in the retrainer's metric units.
    pub values: Vec<f64>,
    /// Value of the adapter trained on every record.
    pub full: f64,
    /// Value of the untrained adapter (no records).
    pub empty: f64,
    /// Number of adapters trained (distinct subsets; repeated subsets are cached).
    pub retrainings: usize,
    /// Measured wall time and counted FLOPs of all the training and evaluation.
    pub cost: StepCost,
}

/// Values of contributor subsets, each trained once and cached by membership.
pub(super) struct Valuer<'a, B: AutodiffBackend> {
    retrainer: &'a Retrainer<B>,
    pub(super) contributors: Vec<ContributorId>,
    cache: BTreeMap<Vec<bool>, f64>,
    cost: StepCost,
}

impl<'a, B: AutodiffBackend> Valuer<'a, B> {
    pub(super) fn new(retrainer: &'a Retrainer<B>) -> Self {
        Valuer {
            retrainer,
            contributors: retrainer.contributors(),
            cache: BTreeMap::new(),
            cost: StepCost::new(B::name(&retrainer.device), 0.0, Kernels::default()),
        }
    }

    pub(super) fn value(&mut self, members: &[bool]) -> Result<f64, GroundTruthError> {
        if let Some(v) = self.cache.get(members) {
            return Ok(*v);
        }
        let (v, cost) = self
            .retrainer
            .value_of_contributors(&self.contributors, members)?;
        self.record(members, v, &cost);
        Ok(v)
    }

    /// Caches `value` of subset `members`, trained at `cost` (elsewhere).
    pub(super) fn record(&mut self, members: &[bool], value: f64, cost: &StepCost) {
        self.cost.add(cost);
        self.cache.insert(members.to_vec(), value);
    }

    pub(super) fn finish(self, values: Vec<f64>, full: f64, empty: f64) -> ContributorValues {
        ContributorValues {
            contributors: self.contributors,
            values,
            full,
            empty,
            retrainings: self.cache.len(),
            cost: self.cost,
        }
    }
}

/// Leave-one-contributor-out: `v(all) − v(all without c)` for every contributor `c`.
pub fn leave_one_out<B: AutodiffBackend>(
    retrainer: &Retrainer<B>,
) -> Result<ContributorValues, GroundTruthError> {
    let mut valuer = Valuer::new(retrainer);
    let c = valuer.contributors.len();
    let full = valuer.value(&vec![true; c])?;
    let empty = valuer.value(&vec![false; c])?;
    let mut values = Vec::with_capacity(c);
    for i in 0..c {
        let mut members = vec![true; c];
        members[i] = false;
        values.push(full - valuer.value(&members)?);
    }
    Ok(valuer.finish(values, full, empty))
}

/// Truncated Monte Carlo Shapley settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TmcConfig {
    /// Number of random permutations of the contributors.
    pub permutations: usize,
    /// Truncation: once a prefix's value is within `tolerance` (absolute, in metric units)
    /// of `v(all)`, the rest of the permutation gets marginal 0 without retraining.
    pub tolerance: f64,
    /// Seed of the permutation stream `"groundtruth/tmc-shapley/permutations"`.
    pub seed: u64,
}

/// Truncated Monte Carlo Shapley over contributors: the mean over random permutations of
/// each contributor's marginal value `v(prefix ∪ {c}) − v(prefix)`, truncated per
/// [`TmcConfig::tolerance`].
pub fn tmc_shapley<B: AutodiffBackend>(
    retrainer: &Retrainer<B>,
    config: &TmcConfig,
) -> Result<ContributorValues, GroundTruthError> {
    if config.permutations == 0 || !(config.tolerance >= 0.0 && config.tolerance.is_finite()) {
        return Err(GroundTruthError::Config(format!(
            "TMC-Shapley needs at least 1 permutation and a finite tolerance >= 0, got {} and {}",
            config.permutations, config.tolerance
        )));
    }
    let mut valuer = Valuer::new(retrainer);
    let c = valuer.contributors.len();
    let full = valuer.value(&vec![true; c])?;
    let empty = valuer.value(&vec![false; c])?;
    let mut rng = stream(config.seed, "groundtruth/tmc-shapley/permutations");
    let mut sums = vec![0.0; c];
    let mut order: Vec<usize> = (0..c).collect();
    for _ in 0..config.permutations {
        for i in (1..c).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let mut members = vec![false; c];
        let mut prev = empty;
        for &i in &order {
            if (full - prev).abs() < config.tolerance {
                break;
            }
            members[i] = true;
            let v = valuer.value(&members)?;
            sums[i] += v - prev;
            prev = v;
        }
    }
    let values = sums
        .into_iter()
        .map(|s| s / config.permutations as f64)
        .collect();
    Ok(valuer.finish(values, full, empty))
}
