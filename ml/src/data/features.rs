//! Feature records for a domain's classification task.
//!
//! Ground truth carried by every generated record: its author, whether it is clean (an
//! original, correctly labelled, non-adversarial record), the [`RecordKind`] saying why
//! not, and `copy_of`, the original a copycat record re-submits. The content hash covers
//! only the content (features and label), so an exact copy has its original's hash.

use std::fmt;

use alloy_primitives::{B256, keccak256};
use rand::RngExt;

use super::contributor::{Behaviour, ContributorId, ContributorSpec};
use super::domain::Labeler;
use super::rng::{Stream, normal};

/// Identifier of a feature record: its index in [`crate::data::Datanet::records`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u32);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// Why a record (or document) is or is not clean; ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// Original and correct: the only clean kind.
    Clean,
    /// Honest mistake: label (or stated fact) wrong by the contributor's noise rate.
    Noisy,
    /// Deliberately wrong label (label flip) or wrong facts.
    Poisoned,
    /// Carries a backdoor trigger and the attacker's target.
    Backdoor,
    /// Random content.
    Spam,
    /// Re-submission of another contributor's record.
    Copy,
    /// Loaded from a file: no ground truth known.
    Unverified,
}

impl RecordKind {
    /// Whether this kind counts as clean.
    pub fn is_clean(self) -> bool {
        matches!(self, RecordKind::Clean | RecordKind::Unverified)
    }
}

/// One feature record.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureRecord {
    /// Its identifier.
    pub id: RecordId,
    /// Feature values (generated ones lie in `[-1, 1]`, except backdoor triggers).
    pub features: Vec<f32>,
    /// The submitted label (0 or 1 for generated data).
    pub label: u8,
    /// Who submitted it.
    pub author: ContributorId,
    /// Ground truth: original, correctly labelled and non-adversarial. Loaded records are
    /// marked clean (kind [`RecordKind::Unverified`]) because nothing is known against them.
    pub clean: bool,
    /// Ground truth: why it is (not) clean.
    pub kind: RecordKind,
    /// Ground truth: the record this one copies, if it is a copy.
    pub copy_of: Option<RecordId>,
    /// `keccak256` of the content, see [`record_hash`].
    pub hash: B256,
}

/// Content hash of a feature record: `keccak256("olsim/record/v1" || n as u32 LE ||
/// each feature as f32 LE bits || label)`.
pub fn record_hash(features: &[f32], label: u8) -> B256 {
    let mut bytes = Vec::with_capacity(15 + 4 + 4 * features.len() + 1);
    bytes.extend_from_slice(b"olsim/record/v1");
    bytes.extend_from_slice(&(features.len() as u32).to_le_bytes());
    for f in features {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    bytes.push(label);
    keccak256(&bytes)
}

impl FeatureRecord {
    /// Builds a record and computes its hash.
    pub fn new(
        id: RecordId,
        features: Vec<f32>,
        label: u8,
        author: ContributorId,
        kind: RecordKind,
        copy_of: Option<RecordId>,
    ) -> FeatureRecord {
        let hash = record_hash(&features, label);
        FeatureRecord {
            id,
            features,
            label,
            author,
            clean: kind.is_clean(),
            kind,
            copy_of,
            hash,
        }
    }
}

/// Generates the records of a non-copycat contributor, with ids from `first_id` on.
///
/// Per record: draw `x` in the coverage box (spammer: the whole space), take the true
/// label, then apply the behaviour (see [`Behaviour`]); honest mistakes happen with
/// probability `1 - quality` on records the behaviour did not already corrupt.
pub fn generate_original(
    spec: &ContributorSpec,
    labeler: &Labeler,
    rng: &mut Stream,
    first_id: u32,
) -> Vec<FeatureRecord> {
    let dim = labeler.weights.len();
    let mut out = Vec::with_capacity(spec.records);
    for k in 0..spec.records {
        let id = RecordId(first_id + k as u32);
        let (features, label, kind) = match &spec.behaviour {
            Behaviour::Spammer => {
                let x: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                (x, rng.random_range(0u8..2), RecordKind::Spam)
            }
            behaviour => {
                let mut x = spec.coverage.sample(rng);
                let truth = labeler.label(&x);
                let attack = rng.random::<f32>();
                let noise = rng.random::<f32>();
                match behaviour {
                    Behaviour::LabelFlip { rate } if attack < *rate => {
                        (x, 1 - truth, RecordKind::Poisoned)
                    }
                    Behaviour::Backdoor { rate, trigger } if attack < *rate => {
                        for &i in &trigger.features {
                            x[i] = trigger.value;
                        }
                        (x, trigger.target_label, RecordKind::Backdoor)
                    }
                    _ if noise >= spec.quality => (x, 1 - truth, RecordKind::Noisy),
                    _ => (x, truth, RecordKind::Clean),
                }
            }
        };
        out.push(FeatureRecord::new(id, features, label, spec.id, kind, None));
    }
    out
}

/// Generates a copycat's records: `spec.records` copies of `originals` (the target's
/// records, sampled without replacement while possible, then again from the start of a
/// fresh shuffle), each perturbed by Gaussian noise of standard deviation `perturb`.
pub fn generate_copies(
    spec: &ContributorSpec,
    originals: &[FeatureRecord],
    perturb: f32,
    rng: &mut Stream,
    first_id: u32,
) -> Vec<FeatureRecord> {
    let mut out = Vec::with_capacity(spec.records);
    if originals.is_empty() {
        return out;
    }
    let mut order: Vec<usize> = Vec::new();
    for k in 0..spec.records {
        if order.is_empty() {
            order = (0..originals.len()).collect();
            // Fisher-Yates with our own draws keeps the order independent of rand internals.
            for i in (1..order.len()).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
        }
        let orig = &originals[order.pop().expect("refilled above")];
        let features = orig
            .features
            .iter()
            .map(|&v| {
                if perturb > 0.0 {
                    v + perturb * normal(rng) as f32
                } else {
                    v
                }
            })
            .collect();
        out.push(FeatureRecord::new(
            RecordId(first_id + k as u32),
            features,
            orig.label,
            spec.id,
            RecordKind::Copy,
            Some(orig.id),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_every_part_of_the_content() {
        let h = record_hash(&[0.5, -0.25], 1);
        assert_eq!(h, record_hash(&[0.5, -0.25], 1));
        assert_ne!(h, record_hash(&[0.5, -0.25], 0));
        assert_ne!(h, record_hash(&[0.5, -0.2500001], 1));
        assert_ne!(h, record_hash(&[0.5, -0.25, 0.0], 1));
    }
}
