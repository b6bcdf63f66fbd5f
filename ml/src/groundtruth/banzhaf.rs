//! Data Banzhaf values of contributors by maximum sample reuse (Wang and Jia, AISTATS 2023):
//! adapters are retrained on random contributor subsets, each contributor in a subset with
//! probability one half, and every retraining is reused for every contributor. A
//! contributor's value is its coefficient in the least-squares fit of subset value on
//! membership, which under this sampling estimates the mean value of the subsets that hold
//! it minus the mean of those that do not, with less noise than that plain difference of
//! means ([`estimate`]). The cost is the number of subsets, whatever the number of
//! contributors.

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
    // Draws in order from the one stream, then fits in parallel: the same on any thread
    // count (each fit is a least-squares solve, 0.2 s at 1,000 contributors and 640 subsets).
    let draws: Vec<Vec<usize>> = (0..BOOTSTRAP_RESAMPLES)
        .map(|_| {
            (0..samples.len())
                .map(|_| rng.random_range(0..samples.len()))
                .collect()
        })
        .collect();
    let fits: Vec<Vec<f64>> = draws
        .par_iter()
        .map(|draw| estimate(c, draw.iter().map(|&k| &samples[k])))
        .collect();
    let mut resampled: Vec<Vec<f64>> = vec![Vec::with_capacity(BOOTSTRAP_RESAMPLES); c];
    for fit in fits {
        for (i, v) in fit.into_iter().enumerate() {
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

/// Ridge added to the least-squares fit of [`estimate`]: small beside a quarter of the
/// subsets (each membership column's variance), so it only matters when there are fewer
/// subsets than contributors.
pub const RIDGE: f64 = 1.0;

/// Banzhaf values from `samples` by least squares: the coefficients of the best linear fit
/// of a subset's value on its members. With each contributor in a subset independently
/// with probability one half, contributor i's coefficient in the population is
/// `E[value | i in] - E[value | i out]`, its Banzhaf value; the fit estimates it with the
/// other contributors' effects taken out of the noise, where the plain difference of the
/// two means (maximum sample reuse) leaves them in. A contributor in all or none of the
/// subsets gets 0.
fn estimate<'a>(c: usize, samples: impl Iterator<Item = &'a (Vec<bool>, f64)>) -> Vec<f64> {
    let samples: Vec<&(Vec<bool>, f64)> = samples.collect();
    let n = samples.len();
    if n == 0 {
        return vec![0.0; c];
    }
    let mut means = vec![0.0; c];
    for (members, _) in &samples {
        for (m, &inside) in means.iter_mut().zip(members) {
            *m += f64::from(u8::from(inside)) / n as f64;
        }
    }
    let mean_value = samples.iter().map(|(_, v)| v).sum::<f64>() / n as f64;
    // Centred design (n x c, row-major) and values.
    let z: Vec<f64> = samples
        .iter()
        .flat_map(|(members, _)| {
            members
                .iter()
                .zip(&means)
                .map(|(&inside, m)| f64::from(u8::from(inside)) - m)
        })
        .collect();
    let y: Vec<f64> = samples.iter().map(|(_, v)| v - mean_value).collect();
    if c <= n {
        // (Z'Z + ridge I) b = Z'y.
        let mut gram = vec![0.0; c * c];
        let mut rhs = vec![0.0; c];
        for (row, yk) in z.chunks(c).zip(&y) {
            for i in 0..c {
                rhs[i] += row[i] * yk;
                for j in 0..=i {
                    gram[i * c + j] += row[i] * row[j];
                }
            }
        }
        solve_ridge(&mut gram, c, &mut rhs);
        rhs
    } else {
        // Fewer subsets than contributors: b = Z' (Z Z' + ridge I)^-1 y, the same solution.
        let mut gram = vec![0.0; n * n];
        for k in 0..n {
            for l in 0..=k {
                gram[k * n + l] = (0..c).map(|i| z[k * c + i] * z[l * c + i]).sum();
            }
        }
        let mut alpha = y;
        solve_ridge(&mut gram, n, &mut alpha);
        (0..c)
            .map(|i| (0..n).map(|k| z[k * c + i] * alpha[k]).sum())
            .collect()
    }
}

/// Solves `(a + RIDGE I) x = b` in place for symmetric positive semi-definite `a` (`d x d`,
/// row-major, lower triangle read) by Cholesky factorisation; `b` becomes `x`.
fn solve_ridge(a: &mut [f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        a[i * d + i] += RIDGE;
    }
    // a = L L', L in the lower triangle.
    for j in 0..d {
        let diagonal = a[j * d + j] - (0..j).map(|k| a[j * d + k].powi(2)).sum::<f64>();
        let l = diagonal.max(f64::MIN_POSITIVE).sqrt();
        a[j * d + j] = l;
        for i in j + 1..d {
            let dot: f64 = (0..j).map(|k| a[i * d + k] * a[j * d + k]).sum();
            a[i * d + j] = (a[i * d + j] - dot) / l;
        }
    }
    // L u = b, then L' x = u.
    for i in 0..d {
        let dot: f64 = (0..i).map(|k| a[i * d + k] * b[k]).sum();
        b[i] = (b[i] - dot) / a[i * d + i];
    }
    for i in (0..d).rev() {
        let dot: f64 = (i + 1..d).map(|k| a[k * d + i] * b[k]).sum();
        b[i] = (b[i] - dot) / a[i * d + i];
    }
}

/// The `q` quantile of ascending `sorted` (nearest rank).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random half-subsets of `c` contributors valued by an additive game
    /// `3 + sum of v_i over members`, whose Banzhaf values are exactly `v`.
    fn additive(c: usize, n: usize, v: &[f64]) -> Vec<(Vec<bool>, f64)> {
        let mut rng = stream(5, "test/banzhaf");
        (0..n)
            .map(|_| {
                let members: Vec<bool> = (0..c).map(|_| rng.random_bool(0.5)).collect();
                let value = 3.0
                    + members
                        .iter()
                        .zip(v)
                        .filter(|(m, _)| **m)
                        .map(|(_, x)| x)
                        .sum::<f64>();
                (members, value)
            })
            .collect()
    }

    fn difference_of_means(samples: &[(Vec<bool>, f64)], i: usize) -> f64 {
        let side = |inside: bool| {
            let v: Vec<f64> = samples
                .iter()
                .filter(|(m, _)| m[i] == inside)
                .map(|(_, v)| *v)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        side(true) - side(false)
    }

    #[test]
    fn the_fit_recovers_an_additive_games_values_where_the_difference_of_means_is_noisy() {
        let v: Vec<f64> = (0..12).map(|i| f64::from(i) * 0.1 - 0.3).collect();
        let samples = additive(12, 200, &v);
        let fit = estimate(12, samples.iter());
        let (mut fit_error, mut msr_error) = (0.0f64, 0.0f64);
        for i in 0..12 {
            fit_error = fit_error.max((fit[i] - v[i]).abs());
            msr_error = msr_error.max((difference_of_means(&samples, i) - v[i]).abs());
        }
        // The ridge shrinks by about 1 / (1 + 4 / 200): 2% of the largest value, 0.8.
        assert!(fit_error < 0.02, "fit off by {fit_error}: {fit:?}");
        assert!(msr_error > 5.0 * fit_error, "{msr_error} vs {fit_error}");
        // Fewer subsets than contributors: the same fit through the dual system.
        let v: Vec<f64> = (0..40).map(|i| if i < 3 { 1.0 } else { 0.0 }).collect();
        let few = estimate(40, additive(40, 24, &v).iter());
        assert!(few.iter().all(|x| x.is_finite()), "{few:?}");
        assert!(few[..3].iter().all(|x| *x > 0.3), "{few:?}");
    }

    #[test]
    fn a_contributor_in_every_subset_or_none_is_valued_zero() {
        let samples: Vec<(Vec<bool>, f64)> = (0..8)
            .map(|k| (vec![true, k % 2 == 0, false], f64::from(k % 2)))
            .collect();
        let fit = estimate(3, samples.iter());
        assert_eq!((fit[0], fit[2]), (0.0, 0.0), "{fit:?}");
        assert!(fit[1] < -0.5, "{fit:?}");
    }
}
