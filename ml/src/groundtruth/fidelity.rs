//! Fidelity of attribution scores against ground truth: rank correlation, detection AUC
//! and the linear datamodeling score.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;

use super::GroundTruthError;
use super::retrain::Retrainer;
use crate::data::rng::stream;
use crate::influence::Attribution;
use crate::model::cost::{Kernels, StepCost};

/// Pearson correlation of two equally long samples (0 when either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n == 0 {
        return 0.0;
    }
    let ma = a[..n].iter().sum::<f64>() / n as f64;
    let mb = b[..n].iter().sum::<f64>() / n as f64;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

/// Ranks from 1, ties sharing their mean rank.
pub fn ranks(v: &[f64]) -> Vec<f64> {
    ranks_of_copies(v, &ascending(v), |_| 1).0
}

/// The indices of `v` ordered by ascending value (`total_cmp`).
pub fn ascending(v: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    order
}

/// [`ranks`] of a multiset holding `copies(i)` copies of each `v[i]` (a bootstrap
/// resample), read off `order` ([`ascending`]`(v)`) in linear time instead of sorting the
/// multiset: a run of equal values held `c` times after `seen` smaller ones shares rank
/// `seen + (c + 1) / 2`. Returns each `v[i]`'s rank and how many distinct values are held.
pub fn ranks_of_copies(
    v: &[f64],
    order: &[usize],
    copies: impl Fn(usize) -> u32,
) -> (Vec<f64>, usize) {
    let mut out = vec![0.0; v.len()];
    let (mut seen, mut s, mut distinct) = (0u64, 0, 0);
    while s < order.len() {
        let mut e = s + 1;
        while e < order.len() && v[order[e]] == v[order[s]] {
            e += 1;
        }
        let c: u64 = order[s..e].iter().map(|&i| u64::from(copies(i))).sum();
        let mean = seen as f64 + (c as f64 + 1.0) / 2.0;
        for &i in &order[s..e] {
            out[i] = mean;
        }
        seen += c;
        distinct += usize::from(c > 0);
        s = e;
    }
    (out, distinct)
}

/// Spearman rank correlation (Pearson on tie-averaged ranks).
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    pearson(&ranks(a), &ranks(b))
}

/// Area under the ROC curve of `scores` for telling `positive` items from the others
/// (Mann-Whitney; ties count one half). `None` when either class is empty.
pub fn auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let r = ranks(scores);
    let pos = positive.iter().filter(|p| **p).count();
    let neg = positive.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let rank_sum: f64 = r
        .iter()
        .zip(positive)
        .filter(|(_, p)| **p)
        .map(|(r, _)| r)
        .sum();
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos * neg) as f64)
}

/// Linear datamodeling score settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LdsConfig {
    /// Number of random training subsets retrained.
    pub subsets: usize,
    /// Fraction of the records in each subset (drawn uniformly without replacement).
    pub fraction: f64,
    /// Seed of the subset stream `"groundtruth/lds/subsets"`.
    pub seed: u64,
}

/// The linear datamodeling score and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct LdsReport {
    /// Mean over the test points of the per-point Spearman correlations.
    pub score: f64,
    /// Spearman correlation, across the subsets, between the attribution's prediction
    /// `Σ_{z∈S} score(x, z)` and the retrained model's `−loss(x)`, per test point.
    pub per_query: Vec<f64>,
    /// Measured wall time and counted FLOPs of the retraining.
    pub cost: StepCost,
}

/// The linear datamodeling score (Park et al. 2023) of `attribution`, which must score
/// the retrainer's test points (in order) against its records (in order).
pub fn lds<B: AutodiffBackend>(
    retrainer: &Retrainer<B>,
    attribution: &Attribution,
    config: &LdsConfig,
) -> Result<LdsReport, GroundTruthError> {
    let (n, m) = (retrainer.records.len(), retrainer.test.len());
    if attribution.records != n || attribution.queries != m {
        return Err(GroundTruthError::Config(format!(
            "attribution is {}x{} (queries x records), the retrainer has {m} test points and \
             {n} records",
            attribution.queries, attribution.records
        )));
    }
    let size = (config.fraction * n as f64).round() as usize;
    if config.subsets < 3 || size == 0 || size > n {
        return Err(GroundTruthError::Config(format!(
            "LDS needs at least 3 subsets and a fraction in (0, 1] that keeps a record, got {} \
             and {}",
            config.subsets, config.fraction
        )));
    }
    let start = Instant::now();
    let mut rng = stream(config.seed, "groundtruth/lds/subsets");
    let mut work = Kernels::default();
    let mut predicted = vec![Vec::with_capacity(config.subsets); m];
    let mut actual = vec![Vec::with_capacity(config.subsets); m];
    let mut order: Vec<usize> = (0..n).collect();
    for _ in 0..config.subsets {
        for i in 0..size {
            let j = rng.random_range(i..n);
            order.swap(i, j);
        }
        let mut keep = vec![false; n];
        for &i in &order[..size] {
            keep[i] = true;
        }
        let (model, cost) = retrainer.fit(&keep)?;
        work += cost.kernels();
        let eval = retrainer.evaluate(&model)?;
        for q in 0..m {
            let p: f64 = (0..n)
                .filter(|&r| keep[r])
                .map(|r| f64::from(attribution.score(q, r)))
                .sum();
            predicted[q].push(p);
            actual[q].push(-eval.losses[q]);
        }
    }
    let per_query: Vec<f64> = predicted
        .iter()
        .zip(&actual)
        .map(|(p, a)| spearman(p, a))
        .collect();
    Ok(LdsReport {
        score: per_query.iter().sum::<f64>() / m.max(1) as f64,
        per_query,
        cost: StepCost::new(
            B::name(&retrainer.device),
            start.elapsed().as_secs_f64(),
            work,
        ),
    })
}
