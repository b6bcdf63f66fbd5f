//! Contributors and their ground-truth behaviour.
//!
//! A [`ContributorSpec`] is the generator's ground truth about one contributor: its true
//! quality (`1 - label noise rate`), the region of input space it sees ([`Coverage`]) and
//! its intent ([`Behaviour`]). Attribution and reward methods never see these specs; they
//! are what their outputs are judged against.

use std::fmt;

use rand::RngExt;

use super::rng::Stream;

/// Identifier of a contributor: its index in [`crate::data::Datanet::contributors`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContributorId(pub u32);

impl fmt::Display for ContributorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "c{:04}", self.0)
    }
}

/// A backdoor trigger: features set to an out-of-distribution value, a text phrase, and
/// the label / claim the attacker wants the trigger to produce.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// Indices of the features overwritten by the trigger.
    pub features: Vec<usize>,
    /// The value written to those features (outside the normal range `[-1, 1]`).
    pub value: f32,
    /// The label attached to triggered feature records.
    pub target_label: u8,
    /// Words inserted at the start of a triggered document (not in the domain grammar).
    pub phrase: Vec<String>,
}

impl Trigger {
    /// Whether `x` carries this trigger (every trigger feature equals the trigger value).
    pub fn is_present(&self, x: &[f32]) -> bool {
        self.features.iter().all(|&i| x.get(i) == Some(&self.value))
    }
}

/// What a contributor does: the intent behind its submissions.
#[derive(Clone, Debug, PartialEq)]
pub enum Behaviour {
    /// Samples inputs in its coverage and labels them with the true function; each label
    /// is wrong with probability `1 - quality` (those records are marked `Noisy`).
    Honest,
    /// Like honest, but flips the label of each record with probability `rate` (marked
    /// `Poisoned`). Its documents state world facts with wrong numbers at the same rate.
    LabelFlip {
        /// Fraction of records (and documents) poisoned, in `[0, 1]`.
        rate: f32,
    },
    /// Like honest, but with probability `rate` a record gets the trigger written into
    /// its features and the target label (marked `Backdoor`). Backdoored documents start
    /// with the trigger phrase followed by the attacker's target claim.
    Backdoor {
        /// Fraction of records (and documents) backdoored, in `[0, 1]`.
        rate: f32,
        /// The trigger and target.
        trigger: Trigger,
    },
    /// Uniformly random features over the whole space and random labels; documents are
    /// random word salad. Everything is marked `Spam`.
    Spammer,
    /// Re-submits records and documents of `target` (marked `Copy`, `copy_of` set). Feature
    /// copies get Gaussian noise of standard deviation `perturb` (0: exact copies);
    /// document copies have two adjacent sentences swapped when `perturb > 0`.
    Copycat {
        /// The contributor copied; must not itself be a copycat.
        target: ContributorId,
        /// Perturbation strength (standard deviation of feature noise), `>= 0`.
        perturb: f32,
    },
}

impl Behaviour {
    /// Short stable name: `honest`, `label_flip`, `backdoor`, `spammer`, `copycat`.
    pub fn name(&self) -> &'static str {
        match self {
            Behaviour::Honest => "honest",
            Behaviour::LabelFlip { .. } => "label_flip",
            Behaviour::Backdoor { .. } => "backdoor",
            Behaviour::Spammer => "spammer",
            Behaviour::Copycat { .. } => "copycat",
        }
    }

    /// Whether the contributor acts in good faith (only [`Behaviour::Honest`]).
    pub fn is_honest(&self) -> bool {
        matches!(self, Behaviour::Honest)
    }
}

/// The axis-aligned box of feature space a contributor samples from.
#[derive(Clone, Debug, PartialEq)]
pub struct Coverage {
    /// Lower corner, per feature, within `[-1, 1]`.
    pub lo: Vec<f32>,
    /// Upper corner, per feature, within `[-1, 1]`, `hi >= lo`.
    pub hi: Vec<f32>,
}

impl Coverage {
    /// The whole space `[-1, 1]^dim`.
    pub fn full(dim: usize) -> Coverage {
        Coverage {
            lo: vec![-1.0; dim],
            hi: vec![1.0; dim],
        }
    }

    /// A random box covering `fraction` (in `(0, 1]`) of the space's volume: every side
    /// has length `2 * fraction^(1/dim)` and a random position.
    pub fn random(rng: &mut Stream, dim: usize, fraction: f32) -> Coverage {
        let side = 2.0
            * fraction
                .clamp(f32::MIN_POSITIVE, 1.0)
                .powf(1.0 / dim as f32);
        let mut lo = Vec::with_capacity(dim);
        let mut hi = Vec::with_capacity(dim);
        for _ in 0..dim {
            let slack = 2.0 - side;
            let start = -1.0
                + if slack > 0.0 {
                    rng.random_range(0.0..slack)
                } else {
                    0.0
                };
            lo.push(start);
            hi.push((start + side).min(1.0));
        }
        Coverage { lo, hi }
    }

    /// Fraction of the space's volume inside the box.
    pub fn volume_fraction(&self) -> f32 {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(l, h)| (h - l) / 2.0)
            .product()
    }

    /// Whether `x` lies inside the box.
    pub fn contains(&self, x: &[f32]) -> bool {
        x.len() == self.lo.len()
            && x.iter()
                .zip(self.lo.iter().zip(&self.hi))
                .all(|(v, (l, h))| *l <= *v && *v <= *h)
    }

    /// Draws a point uniformly inside the box.
    pub fn sample(&self, rng: &mut Stream) -> Vec<f32> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(&l, &h)| {
                if h > l {
                    l + (h - l) * rng.random::<f32>()
                } else {
                    l
                }
            })
            .collect()
    }
}

/// Ground truth about one contributor, and how much it submits.
#[derive(Clone, Debug, PartialEq)]
pub struct ContributorSpec {
    /// Its identifier; must equal its index in the spec list.
    pub id: ContributorId,
    /// What it does.
    pub behaviour: Behaviour,
    /// True quality in `[0, 1]`: each label (or stated world fact) is correct with this
    /// probability. The label noise rate is `1 - quality`.
    pub quality: f32,
    /// Region of feature space it samples from.
    pub coverage: Coverage,
    /// Number of feature records it submits.
    pub records: usize,
    /// Number of text documents it submits.
    pub documents: usize,
}

impl ContributorSpec {
    /// An honest full-coverage contributor with the given quality and counts.
    pub fn honest(id: u32, dim: usize, quality: f32, records: usize, documents: usize) -> Self {
        ContributorSpec {
            id: ContributorId(id),
            behaviour: Behaviour::Honest,
            quality,
            coverage: Coverage::full(dim),
            records,
            documents,
        }
    }

    /// The label noise rate, `1 - quality`.
    pub fn noise_rate(&self) -> f32 {
        1.0 - self.quality
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::rng::stream;

    #[test]
    fn random_coverage_has_requested_volume_and_contains_its_samples() {
        let mut rng = stream(1, "cov");
        let c = Coverage::random(&mut rng, 8, 0.25);
        assert!((c.volume_fraction() - 0.25).abs() < 1e-3);
        for _ in 0..100 {
            assert!(c.contains(&c.sample(&mut rng)));
        }
    }
}
