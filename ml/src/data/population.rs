//! Building a population of contributors from counts per behaviour.
//!
//! [`build_population`] draws every contributor's quality, coverage, counts and attack
//! parameters from the stream `"population/<domain>"`, then shuffles the behaviours so a
//! contributor's id says nothing about its intent. The result is plain ground truth
//! ([`ContributorSpec`]s) to hand to [`crate::data::Datanet::generate`].

use rand::RngExt;

use super::contributor::{Behaviour, ContributorId, ContributorSpec, Coverage, Trigger};
use super::datanet::SpecError;
use super::domain::Domain;
use super::rng::stream;

/// How many contributors of each behaviour, and the distributions of their parameters.
/// Ranges `(lo, hi)` are inclusive and sampled uniformly.
#[derive(Clone, Debug, PartialEq)]
pub struct PopulationSpec {
    /// Number of honest contributors.
    pub honest: usize,
    /// Number of label-flip poisoners.
    pub label_flip: usize,
    /// Number of backdoor attackers.
    pub backdoor: usize,
    /// Number of spammers.
    pub spammer: usize,
    /// Number of copycats.
    pub copycat: usize,
    /// Quality (`1 - noise rate`) range of non-spammers.
    pub quality: (f32, f32),
    /// Coverage range: fraction of the feature space's volume each contributor sees.
    pub coverage: (f32, f32),
    /// Records per contributor.
    pub records: (usize, usize),
    /// Documents per contributor.
    pub documents: (usize, usize),
    /// Fraction of a label-flip poisoner's records that are flipped.
    pub flip_rate: f32,
    /// Fraction of a backdoor attacker's records that carry the trigger.
    pub backdoor_rate: f32,
    /// Copycats' perturbation (standard deviation of feature noise; 0 = exact copies).
    pub copy_perturb: f32,
}

impl Default for PopulationSpec {
    fn default() -> Self {
        PopulationSpec {
            honest: 8,
            label_flip: 2,
            backdoor: 1,
            spammer: 1,
            copycat: 1,
            quality: (0.8, 0.98),
            coverage: (0.3, 1.0),
            records: (50, 150),
            documents: (5, 15),
            flip_rate: 0.8,
            backdoor_rate: 0.3,
            copy_perturb: 0.01,
        }
    }
}

impl PopulationSpec {
    /// Total number of contributors.
    pub fn total(&self) -> usize {
        self.honest + self.label_flip + self.backdoor + self.spammer + self.copycat
    }
}

/// Out-of-distribution value written by backdoor triggers (features are in `[-1, 1]`).
pub const TRIGGER_VALUE: f32 = 3.0;

#[derive(Clone, Copy)]
enum Kind {
    Honest,
    Flip,
    Backdoor,
    Spam,
    Copy,
}

/// Builds the contributor specs of a population for `domain` under master seed `seed`.
///
/// Errors when a range is inverted or out of bounds, or when copycats are requested with
/// no non-copycat contributor to copy.
pub fn build_population(
    seed: u64,
    domain: Domain,
    spec: &PopulationSpec,
) -> Result<Vec<ContributorSpec>, SpecError> {
    let bad = |what: &str| Err(SpecError::Population(what.to_string()));
    let unit = |r: (f32, f32)| 0.0 <= r.0 && r.0 <= r.1 && r.1 <= 1.0;
    if !unit(spec.quality) {
        return bad("quality range must satisfy 0 <= lo <= hi <= 1");
    }
    if !(0.0 < spec.coverage.0 && spec.coverage.0 <= spec.coverage.1 && spec.coverage.1 <= 1.0) {
        return bad("coverage range must satisfy 0 < lo <= hi <= 1");
    }
    if spec.records.0 > spec.records.1 || spec.documents.0 > spec.documents.1 {
        return bad("records and documents ranges must satisfy lo <= hi");
    }
    if !(0.0..=1.0).contains(&spec.flip_rate) || !(0.0..=1.0).contains(&spec.backdoor_rate) {
        return bad("flip_rate and backdoor_rate must be in [0, 1]");
    }
    if !(spec.copy_perturb >= 0.0 && spec.copy_perturb.is_finite()) {
        return bad("copy_perturb must be finite and >= 0");
    }
    if spec.copycat > 0 && spec.total() == spec.copycat {
        return bad("copycats need at least one non-copycat contributor to copy");
    }

    let mut rng = stream(seed, &format!("population/{}", domain.name()));
    let mut kinds = Vec::with_capacity(spec.total());
    for (k, n) in [
        (Kind::Honest, spec.honest),
        (Kind::Flip, spec.label_flip),
        (Kind::Backdoor, spec.backdoor),
        (Kind::Spam, spec.spammer),
        (Kind::Copy, spec.copycat),
    ] {
        kinds.extend(std::iter::repeat_n(k, n));
    }
    for i in (1..kinds.len()).rev() {
        let j = rng.random_range(0..=i);
        kinds.swap(i, j);
    }
    let originals: Vec<u32> = kinds
        .iter()
        .enumerate()
        .filter(|(_, k)| !matches!(k, Kind::Copy))
        .map(|(i, _)| i as u32)
        .collect();

    let dim = domain.dim();
    let mut out = Vec::with_capacity(kinds.len());
    for (i, kind) in kinds.into_iter().enumerate() {
        let id = ContributorId(i as u32);
        let quality = rng.random_range(spec.quality.0..=spec.quality.1);
        let fraction = rng.random_range(spec.coverage.0..=spec.coverage.1);
        let coverage = Coverage::random(&mut rng, dim, fraction);
        let records = rng.random_range(spec.records.0..=spec.records.1);
        let documents = rng.random_range(spec.documents.0..=spec.documents.1);
        let (behaviour, quality, coverage) = match kind {
            Kind::Honest => (Behaviour::Honest, quality, coverage),
            Kind::Flip => (
                Behaviour::LabelFlip {
                    rate: spec.flip_rate,
                },
                quality,
                coverage,
            ),
            Kind::Backdoor => {
                let a = rng.random_range(0..dim);
                let mut b = rng.random_range(0..dim - 1);
                if b >= a {
                    b += 1;
                }
                let mut features = vec![a, b];
                features.sort_unstable();
                let trigger = Trigger {
                    features,
                    value: TRIGGER_VALUE,
                    target_label: rng.random_range(0u8..2),
                    phrase: vec![
                        format!("zq{}", rng.random_range(1000u32..10000)),
                        format!("xv{}", id.0),
                    ],
                };
                let behaviour = Behaviour::Backdoor {
                    rate: spec.backdoor_rate,
                    trigger,
                };
                (behaviour, quality, coverage)
            }
            Kind::Spam => (Behaviour::Spammer, 0.5, Coverage::full(dim)),
            Kind::Copy => {
                let target = ContributorId(originals[rng.random_range(0..originals.len())]);
                let behaviour = Behaviour::Copycat {
                    target,
                    perturb: spec.copy_perturb,
                };
                (behaviour, quality, coverage)
            }
        };
        out.push(ContributorSpec {
            id,
            behaviour,
            quality,
            coverage,
            records,
            documents,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_and_copycats_target_originals() {
        let spec = PopulationSpec {
            copycat: 3,
            ..PopulationSpec::default()
        };
        let pop = build_population(5, Domain::Gaming, &spec).unwrap();
        assert_eq!(pop.len(), spec.total());
        let count = |n: &str| pop.iter().filter(|c| c.behaviour.name() == n).count();
        assert_eq!(count("honest"), spec.honest);
        assert_eq!(count("label_flip"), spec.label_flip);
        assert_eq!(count("backdoor"), spec.backdoor);
        assert_eq!(count("spammer"), spec.spammer);
        assert_eq!(count("copycat"), spec.copycat);
        for (i, c) in pop.iter().enumerate() {
            assert_eq!(c.id, ContributorId(i as u32));
            if let Behaviour::Copycat { target, .. } = c.behaviour {
                assert_ne!(target, c.id);
                assert_ne!(pop[target.0 as usize].behaviour.name(), "copycat");
            }
        }
        assert_eq!(pop, build_population(5, Domain::Gaming, &spec).unwrap());
    }

    #[test]
    fn bad_specs_are_rejected() {
        let only_copycats = PopulationSpec {
            honest: 0,
            label_flip: 0,
            backdoor: 0,
            spammer: 0,
            copycat: 2,
            ..PopulationSpec::default()
        };
        assert!(build_population(1, Domain::Finance, &only_copycats).is_err());
        let bad_quality = PopulationSpec {
            quality: (0.9, 0.5),
            ..PopulationSpec::default()
        };
        assert!(build_population(1, Domain::Finance, &bad_quality).is_err());
    }
}
