//! The [`Datanet`]: generated (or loaded) records and documents plus their ground truth.
//!
//! [`Datanet::generate`] turns a [`DatanetSpec`] (domain, master seed, contributor specs)
//! into data. Every contributor draws from its own streams
//! (`"datanet/<domain>/records/<id>"`, `".../documents/<id>"`, `".../facts/<id>"`), the
//! world facts from `"datanet/<domain>/world"`, so output is a pure function of
//! `(seed, spec)`. Originals come first in id order, then copycats in id order.
//!
//! [`GroundTruth`] keeps what the generator knows and no method may learn from: the true
//! labelling function, each contributor's spec, the world facts and each contributor's
//! private facts. Loaded Datanets have none.

use alloy_primitives::{B256, keccak256};
use rand::RngExt;
use thiserror::Error;

use super::contributor::{Behaviour, ContributorId, ContributorSpec};
use super::domain::{Domain, Labeler};
use super::features::{FeatureRecord, RecordId, RecordKind, generate_copies, generate_original};
use super::rng::stream;
use super::text::{
    DocId, Document, PrivateFact, Slots, TextContext, Vocab, WorldFact, document_hash, draw_world,
    fill, generate_original_docs, intern_common, perturb_sentences,
};

/// An invalid generator spec.
#[derive(Debug, Error, PartialEq)]
pub enum SpecError {
    /// A contributor spec is inconsistent.
    #[error("contributor {id}: {what}")]
    Contributor {
        /// The contributor.
        id: ContributorId,
        /// What is wrong and what is allowed.
        what: String,
    },
    /// A population spec is inconsistent.
    #[error("population spec: {0}")]
    Population(String),
    /// The text parameters are inconsistent.
    #[error("text parameters: {0}")]
    Text(String),
}

/// Parameters of the text generator.
#[derive(Clone, Debug, PartialEq)]
pub struct TextParams {
    /// Number of world facts in the domain's fact table.
    pub world_facts: usize,
    /// Private facts per contributor (not for spammers and copycats).
    pub private_facts: usize,
    /// Grammar sentences per document (inclusive range), besides the private fact.
    pub sentences: (usize, usize),
}

impl Default for TextParams {
    fn default() -> Self {
        TextParams {
            world_facts: 24,
            private_facts: 3,
            sentences: (3, 6),
        }
    }
}

/// Everything needed to generate a Datanet.
#[derive(Clone, Debug, PartialEq)]
pub struct DatanetSpec {
    /// The domain.
    pub domain: Domain,
    /// The master seed.
    pub seed: u64,
    /// Contributors; `contributors[i].id` must be `ContributorId(i)`.
    pub contributors: Vec<ContributorSpec>,
    /// Text generator parameters.
    pub text: TextParams,
}

/// What the generator knows (ground truth).
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    /// The true labelling function.
    pub labeler: Labeler,
    /// Every contributor's spec (quality, coverage, behaviour), by id.
    pub contributors: Vec<ContributorSpec>,
    /// The domain's world facts with their true values.
    pub world: Vec<WorldFact>,
    /// Private facts per contributor, by id (empty for spammers and copycats).
    pub private_facts: Vec<Vec<PrivateFact>>,
    /// Codename per contributor, by id (empty for spammers and copycats).
    pub codenames: Vec<String>,
}

/// A deterministic train / held-out split of record ids.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Split {
    /// Training record ids, ascending.
    pub train: Vec<RecordId>,
    /// Held-out record ids, ascending.
    pub heldout: Vec<RecordId>,
}

/// A Datanet: contributors, feature records, documents and (when generated) ground truth.
#[derive(Clone, Debug, PartialEq)]
pub struct Datanet {
    /// The domain, when known.
    pub domain: Option<Domain>,
    /// The master seed it was generated from (0 for loaded data).
    pub seed: u64,
    /// Contributor names, indexed by [`ContributorId`].
    pub contributors: Vec<String>,
    /// Feature records, indexed by [`RecordId`].
    pub records: Vec<FeatureRecord>,
    /// Names of the feature columns.
    pub feature_names: Vec<String>,
    /// Documents, indexed by [`DocId`].
    pub documents: Vec<Document>,
    /// The documents' vocabulary.
    pub vocab: Vocab,
    /// Ground truth, for generated Datanets.
    pub truth: Option<GroundTruth>,
}

fn validate(spec: &DatanetSpec) -> Result<(), SpecError> {
    let dim = spec.domain.dim();
    let t = &spec.text;
    if t.sentences.0 > t.sentences.1 {
        return Err(SpecError::Text(
            "sentences range must satisfy lo <= hi".into(),
        ));
    }
    for (i, c) in spec.contributors.iter().enumerate() {
        let err = |what: String| Err(SpecError::Contributor { id: c.id, what });
        if c.id != ContributorId(i as u32) {
            return err(format!("id must equal its position {i}"));
        }
        if !(0.0..=1.0).contains(&c.quality) {
            return err(format!("quality {} must be in [0, 1]", c.quality));
        }
        let cov = &c.coverage;
        if cov.lo.len() != dim || cov.hi.len() != dim {
            return err(format!("coverage must have {dim} dimensions"));
        }
        if cov
            .lo
            .iter()
            .zip(&cov.hi)
            .any(|(l, h)| !(-1.0 <= *l && l <= h && *h <= 1.0))
        {
            return err("coverage must satisfy -1 <= lo <= hi <= 1".into());
        }
        match &c.behaviour {
            Behaviour::LabelFlip { rate } if !(0.0..=1.0).contains(rate) => {
                return err(format!("flip rate {rate} must be in [0, 1]"));
            }
            Behaviour::Backdoor { rate, trigger } => {
                if !(0.0..=1.0).contains(rate) {
                    return err(format!("backdoor rate {rate} must be in [0, 1]"));
                }
                if trigger.features.is_empty() || trigger.features.iter().any(|&f| f >= dim) {
                    return err(format!(
                        "trigger features must be non-empty indices < {dim}"
                    ));
                }
                if !trigger.value.is_finite() || trigger.target_label > 1 {
                    return err("trigger value must be finite and target label 0 or 1".into());
                }
                if trigger.phrase.is_empty()
                    || trigger
                        .phrase
                        .iter()
                        .any(|w| w.split_whitespace().count() != 1)
                {
                    return err("trigger phrase must be non-empty single words".into());
                }
            }
            Behaviour::Copycat { target, perturb } => {
                if !(perturb.is_finite() && *perturb >= 0.0) {
                    return err(format!("perturb {perturb} must be finite and >= 0"));
                }
                match spec.contributors.get(target.0 as usize) {
                    None => return err(format!("copycat target {target} does not exist")),
                    Some(t) if matches!(t.behaviour, Behaviour::Copycat { .. }) => {
                        return err(format!("copycat target {target} is itself a copycat"));
                    }
                    Some(_) => {}
                }
            }
            _ => {}
        }
    }
    Ok(())
}

const SYLLABLES: [&str; 12] = [
    "ka", "lo", "mi", "ra", "tu", "ve", "zo", "ni", "sha", "qu", "de", "po",
];

impl Datanet {
    /// Generates a Datanet; the same spec always gives bit-identical output.
    pub fn generate(spec: &DatanetSpec) -> Result<Datanet, SpecError> {
        validate(spec)?;
        let domain = spec.domain;
        let dn = domain.name();
        let seed = spec.seed;
        let grammar = domain.grammar();
        let labeler = Labeler::for_domain(seed, domain);

        // Vocabulary: common words, then codenames, then trigger words, all in id order.
        let mut vocab = Vocab::new();
        let common_words = intern_common(&grammar, &mut vocab);
        let has_facts = |c: &ContributorSpec| {
            !matches!(c.behaviour, Behaviour::Spammer | Behaviour::Copycat { .. })
        };
        let mut codenames = Vec::with_capacity(spec.contributors.len());
        for c in &spec.contributors {
            if has_facts(c) && spec.text.private_facts > 0 {
                let mut rng = stream(seed, &format!("datanet/{dn}/codename/{}", c.id.0));
                let mut name: String = (0..2)
                    .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                    .collect();
                name.push_str(&c.id.0.to_string());
                vocab.intern(&name);
                codenames.push(name);
            } else {
                codenames.push(String::new());
            }
        }
        for c in &spec.contributors {
            if let Behaviour::Backdoor { trigger, .. } = &c.behaviour {
                for w in &trigger.phrase {
                    vocab.intern(w);
                }
            }
        }

        let world = draw_world(
            &grammar,
            spec.text.world_facts,
            &mut stream(seed, &format!("datanet/{dn}/world")),
        );
        let mut private_facts = Vec::with_capacity(spec.contributors.len());
        for (c, code) in spec.contributors.iter().zip(&codenames) {
            let mut facts = Vec::new();
            if !code.is_empty() {
                let mut rng = stream(seed, &format!("datanet/{dn}/facts/{}", c.id.0));
                for _ in 0..spec.text.private_facts {
                    let slots = Slots {
                        entity: grammar.entities[rng.random_range(0..grammar.entities.len())],
                        metric: grammar.metrics[rng.random_range(0..grammar.metrics.len())],
                        venue: grammar.venues[rng.random_range(0..grammar.venues.len())],
                        number: rng.random_range(0u8..100),
                        codename: code,
                    };
                    let tokens = fill(grammar.private_fact, slots, &mut vocab);
                    facts.push(PrivateFact {
                        owner: c.id,
                        tokens,
                    });
                }
            }
            private_facts.push(facts);
        }

        // Originals first (id order), then copycats (id order).
        let ctx = TextContext {
            grammar: &grammar,
            world: &world,
            common_words,
            sentences: spec.text.sentences,
        };
        let mut records: Vec<FeatureRecord> = Vec::new();
        let mut documents: Vec<Document> = Vec::new();
        let mut doc_sentences: Vec<Vec<Vec<u32>>> = Vec::new();
        let mut record_ranges = vec![0..0; spec.contributors.len()];
        let mut doc_ranges = vec![0..0; spec.contributors.len()];
        let push_doc = |documents: &mut Vec<Document>,
                        doc_sentences: &mut Vec<Vec<Vec<u32>>>,
                        vocab: &Vocab,
                        sentences: Vec<Vec<u32>>,
                        author: ContributorId,
                        kind: RecordKind,
                        copy_of: Option<DocId>| {
            let tokens: Vec<u32> = sentences.concat();
            let hash = document_hash(&vocab.render(&tokens));
            documents.push(Document {
                id: DocId(documents.len() as u32),
                tokens,
                author,
                clean: kind.is_clean(),
                kind,
                copy_of,
                hash,
            });
            doc_sentences.push(sentences);
        };
        for c in spec
            .contributors
            .iter()
            .filter(|c| has_facts(c) || matches!(c.behaviour, Behaviour::Spammer))
        {
            let i = c.id.0 as usize;
            let mut rng = stream(seed, &format!("datanet/{dn}/records/{}", c.id.0));
            let start = records.len();
            records.extend(generate_original(c, &labeler, &mut rng, start as u32));
            record_ranges[i] = start..records.len();

            let mut rng = stream(seed, &format!("datanet/{dn}/documents/{}", c.id.0));
            let private: Vec<Vec<u32>> =
                private_facts[i].iter().map(|f| f.tokens.clone()).collect();
            let start = documents.len();
            for (sentences, kind) in generate_original_docs(c, &ctx, &private, &mut vocab, &mut rng)
            {
                push_doc(
                    &mut documents,
                    &mut doc_sentences,
                    &vocab,
                    sentences,
                    c.id,
                    kind,
                    None,
                );
            }
            doc_ranges[i] = start..documents.len();
        }
        for c in &spec.contributors {
            let Behaviour::Copycat { target, perturb } = c.behaviour else {
                continue;
            };
            let i = c.id.0 as usize;
            let t = target.0 as usize;
            let mut rng = stream(seed, &format!("datanet/{dn}/records/{}", c.id.0));
            let start = records.len();
            let originals = records[record_ranges[t].clone()].to_vec();
            records.extend(generate_copies(
                c,
                &originals,
                perturb,
                &mut rng,
                start as u32,
            ));
            record_ranges[i] = start..records.len();

            let mut rng = stream(seed, &format!("datanet/{dn}/documents/{}", c.id.0));
            let pool: Vec<usize> = doc_ranges[t].clone().collect();
            let start = documents.len();
            let mut order: Vec<usize> = Vec::new();
            for _ in 0..if pool.is_empty() { 0 } else { c.documents } {
                if order.is_empty() {
                    order = pool.clone();
                    for k in (1..order.len()).rev() {
                        let j = rng.random_range(0..=k);
                        order.swap(k, j);
                    }
                }
                let orig = order.pop().expect("refilled above");
                let mut sentences = doc_sentences[orig].clone();
                if perturb > 0.0 {
                    perturb_sentences(&mut sentences, &mut rng);
                }
                push_doc(
                    &mut documents,
                    &mut doc_sentences,
                    &vocab,
                    sentences,
                    c.id,
                    RecordKind::Copy,
                    Some(DocId(orig as u32)),
                );
            }
            doc_ranges[i] = start..documents.len();
        }

        Ok(Datanet {
            domain: Some(domain),
            seed,
            contributors: spec.contributors.iter().map(|c| c.id.to_string()).collect(),
            records,
            feature_names: domain
                .feature_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            documents,
            vocab,
            truth: Some(GroundTruth {
                labeler,
                contributors: spec.contributors.clone(),
                world,
                private_facts,
                codenames,
            }),
        })
    }

    /// The true label of `x`, when ground truth is known.
    pub fn true_label(&self, x: &[f32]) -> Option<u8> {
        self.truth.as_ref().map(|t| t.labeler.label(x))
    }

    /// The ground-truth spec of contributor `id`, when known.
    pub fn contributor_spec(&self, id: ContributorId) -> Option<&ContributorSpec> {
        self.truth.as_ref()?.contributors.get(id.0 as usize)
    }

    /// The private-fact sentences of contributor `id` (empty when none or unknown).
    pub fn private_facts(&self, id: ContributorId) -> &[PrivateFact] {
        self.truth
            .as_ref()
            .and_then(|t| t.private_facts.get(id.0 as usize))
            .map_or(&[], |v| v.as_slice())
    }

    /// Records submitted by `id`, in id order.
    pub fn records_of(&self, id: ContributorId) -> impl Iterator<Item = &FeatureRecord> {
        self.records.iter().filter(move |r| r.author == id)
    }

    /// Documents submitted by `id`, in id order.
    pub fn documents_of(&self, id: ContributorId) -> impl Iterator<Item = &Document> {
        self.documents.iter().filter(move |d| d.author == id)
    }

    /// Fraction of `id`'s records that are clean; `None` when it has no records.
    pub fn clean_fraction(&self, id: ContributorId) -> Option<f64> {
        fraction(self.records_of(id).map(|r| r.clean))
    }

    /// Fraction of `id`'s documents that are clean; `None` when it has no documents.
    pub fn doc_clean_fraction(&self, id: ContributorId) -> Option<f64> {
        fraction(self.documents_of(id).map(|d| d.clean))
    }

    /// The text of a document (words joined by single spaces).
    pub fn doc_text(&self, doc: &Document) -> String {
        self.vocab.render(&doc.tokens)
    }

    /// Splits records into train and held-out sets. A record is held out when the first
    /// eight bytes of `keccak256(hash || salt)`, read as a big-endian fraction of 2^64, are
    /// below `heldout_fraction`. The split depends only on content, so it is stable when
    /// records are added, and exact copies land on the same side as their originals.
    pub fn split(&self, heldout_fraction: f64, salt: &str) -> Split {
        let mut split = Split::default();
        for r in &self.records {
            let mut bytes = r.hash.to_vec();
            bytes.extend_from_slice(salt.as_bytes());
            let h = keccak256(&bytes);
            let u =
                u64::from_be_bytes(h.0[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64);
            if u < heldout_fraction {
                split.heldout.push(r.id);
            } else {
                split.train.push(r.id);
            }
        }
        split
    }

    /// Draws `n` fresh clean examples uniformly over `[-1, 1]^dim`, labelled by the true
    /// function, from the stream `"datanet/<domain>/test/<name>"`. `None` without ground
    /// truth.
    pub fn clean_test_set(&self, n: usize, name: &str) -> Option<Vec<(Vec<f32>, u8)>> {
        let truth = self.truth.as_ref()?;
        let dn = self.domain.map_or("unknown", |d| d.name());
        let mut rng = stream(self.seed, &format!("datanet/{dn}/test/{name}"));
        let dim = truth.labeler.weights.len();
        Some(
            (0..n)
                .map(|_| {
                    let x: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect();
                    let y = truth.labeler.label(&x);
                    (x, y)
                })
                .collect(),
        )
    }

    /// A digest of all data and record-level ground truth: equal digests mean
    /// bit-identical records (features, labels, authors, flags, kinds, copies) and
    /// documents (tokens, authors, flags, kinds, copies) and vocabulary.
    pub fn digest(&self) -> B256 {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(b"olsim/datanet/v1");
        for r in &self.records {
            bytes.extend_from_slice(r.hash.as_slice());
            bytes.extend_from_slice(&r.author.0.to_le_bytes());
            bytes.push(r.clean as u8);
            bytes.push(r.kind as u8);
            bytes.extend_from_slice(&r.copy_of.map_or(u32::MAX, |c| c.0).to_le_bytes());
        }
        for d in &self.documents {
            bytes.extend_from_slice(d.hash.as_slice());
            for t in &d.tokens {
                bytes.extend_from_slice(&t.to_le_bytes());
            }
            bytes.extend_from_slice(&d.author.0.to_le_bytes());
            bytes.push(d.clean as u8);
            bytes.push(d.kind as u8);
            bytes.extend_from_slice(&d.copy_of.map_or(u32::MAX, |c| c.0).to_le_bytes());
        }
        for w in self.vocab.words() {
            bytes.extend_from_slice(w.as_bytes());
            bytes.push(0);
        }
        keccak256(&bytes)
    }
}

fn fraction(flags: impl Iterator<Item = bool>) -> Option<f64> {
    let (mut n, mut k) = (0usize, 0usize);
    for f in flags {
        n += 1;
        k += f as usize;
    }
    (n > 0).then(|| k as f64 / n as f64)
}
