//! Text documents from a domain grammar, with contributor-specific facts.
//!
//! Documents are token sequences over a word-level [`Vocab`] that the generator builds:
//! first the domain's common words (template words, slot words, the numbers 0-99), then
//! each contributor's codename and each backdoor trigger word. Sentences come from the
//! domain grammar ([`crate::data::Grammar`]):
//! - *world facts* ([`WorldFact`]): a fixed table of `(entity, metric, venue) -> number`
//!   drawn per domain; a correct statement of one is the same sentence whoever writes it;
//! - *private facts*: sentences that start with a contributor's unique codename, which
//!   only that contributor emits (a copycat re-submits them inside copied documents, with
//!   `copy_of` pointing at the original). They are ground truth for span attribution: a
//!   model that reproduces one reproduces data of exactly one contributor;
//! - filler sentences, which make no claim.
//!
//! The content hash of a document is taken over its text, so it survives a round trip
//! through JSONL even though token ids depend on the vocabulary.

use std::collections::BTreeMap;
use std::fmt;

use alloy_primitives::{B256, keccak256};
use rand::RngExt;

use super::contributor::{Behaviour, ContributorId, ContributorSpec};
use super::domain::Grammar;
use super::features::RecordKind;
use super::rng::Stream;

/// Word-level vocabulary: a bijection between words and token ids in insertion order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vocab {
    words: Vec<String>,
    index: BTreeMap<String, u32>,
}

impl Vocab {
    /// An empty vocabulary.
    pub fn new() -> Vocab {
        Vocab::default()
    }

    /// The id of `word`, adding it if new.
    pub fn intern(&mut self, word: &str) -> u32 {
        if let Some(&id) = self.index.get(word) {
            return id;
        }
        let id = self.words.len() as u32;
        self.words.push(word.to_string());
        self.index.insert(word.to_string(), id);
        id
    }

    /// The id of `word`, if known.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The word of token `id`. Panics on an id not issued by this vocabulary.
    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    /// Number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// All words, in id order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// Joins the words of `tokens` with single spaces.
    pub fn render(&self, tokens: &[u32]) -> String {
        let mut s = String::new();
        for (i, &t) in tokens.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str(self.word(t));
        }
        s
    }

    /// Splits `text` on whitespace and interns every word.
    pub fn encode(&mut self, text: &str) -> Vec<u32> {
        text.split_whitespace().map(|w| self.intern(w)).collect()
    }
}

/// Identifier of a document: its index in [`crate::data::Datanet::documents`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId(pub u32);

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}", self.0)
    }
}

/// One text document.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Its identifier.
    pub id: DocId,
    /// Token ids over the Datanet's vocabulary.
    pub tokens: Vec<u32>,
    /// Who submitted it.
    pub author: ContributorId,
    /// Ground truth: original, with only true facts, non-adversarial.
    pub clean: bool,
    /// Ground truth: why it is (not) clean.
    pub kind: RecordKind,
    /// Ground truth: the document this one copies, if it is a copy.
    pub copy_of: Option<DocId>,
    /// `keccak256` of the text, see [`document_hash`].
    pub hash: B256,
}

/// Content hash of a document: `keccak256("olsim/doc/v1" || text)`, where `text` is the
/// words joined by single spaces.
pub fn document_hash(text: &str) -> B256 {
    let mut bytes = Vec::with_capacity(12 + text.len());
    bytes.extend_from_slice(b"olsim/doc/v1");
    bytes.extend_from_slice(text.as_bytes());
    keccak256(&bytes)
}

/// A world fact of a domain: `(entity, metric, venue)` has the true value `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorldFact {
    /// Index into the grammar's entities.
    pub entity: usize,
    /// Index into the grammar's metrics.
    pub metric: usize,
    /// Index into the grammar's venues.
    pub venue: usize,
    /// True value, 0-99.
    pub value: u8,
}

/// A contributor's private fact: the sentence tokens only that contributor emits.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateFact {
    /// The contributor it belongs to.
    pub owner: ContributorId,
    /// The sentence, in tokens (starting with the owner's codename, ending with ".").
    pub tokens: Vec<u32>,
}

/// Slot values for filling a template.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots<'a> {
    pub entity: &'a str,
    pub metric: &'a str,
    pub venue: &'a str,
    pub number: u8,
    pub codename: &'a str,
}

/// Fills `template` and returns its tokens (interning new words).
pub(crate) fn fill(template: &str, slots: Slots<'_>, vocab: &mut Vocab) -> Vec<u32> {
    template
        .split_whitespace()
        .map(|w| match w {
            "{e}" => vocab.intern(slots.entity),
            "{m}" => vocab.intern(slots.metric),
            "{v}" => vocab.intern(slots.venue),
            "{n}" => vocab.intern(&slots.number.to_string()),
            "{c}" => vocab.intern(slots.codename),
            other => vocab.intern(other),
        })
        .collect()
}

/// Interns the domain's common words in a fixed order and returns how many there are.
pub(crate) fn intern_common(grammar: &Grammar, vocab: &mut Vocab) -> usize {
    let templates = [grammar.fact, grammar.private_fact]
        .into_iter()
        .chain(grammar.fillers.iter().copied());
    for t in templates {
        for w in t.split_whitespace() {
            if !w.starts_with('{') {
                vocab.intern(w);
            }
        }
    }
    for w in grammar
        .entities
        .iter()
        .chain(grammar.metrics)
        .chain(grammar.venues)
    {
        vocab.intern(w);
    }
    for n in 0..100u8 {
        vocab.intern(&n.to_string());
    }
    vocab.len()
}

/// Draws `count` distinct world facts (distinct `(entity, metric, venue)` triples).
pub(crate) fn draw_world(grammar: &Grammar, count: usize, rng: &mut Stream) -> Vec<WorldFact> {
    let total = grammar.entities.len() * grammar.metrics.len() * grammar.venues.len();
    let count = count.min(total);
    let mut cells: Vec<usize> = (0..total).collect();
    let mut facts = Vec::with_capacity(count);
    for k in 0..count {
        let j = rng.random_range(k..total);
        cells.swap(k, j);
        let c = cells[k];
        let nm = grammar.metrics.len();
        let nv = grammar.venues.len();
        facts.push(WorldFact {
            entity: c / (nm * nv),
            metric: (c / nv) % nm,
            venue: c % nv,
            value: rng.random_range(0u8..100),
        });
    }
    facts
}

/// States world fact `fact` with value `value` using the grammar's fact template.
pub(crate) fn state_fact(
    grammar: &Grammar,
    fact: &WorldFact,
    value: u8,
    vocab: &mut Vocab,
) -> Vec<u32> {
    let slots = Slots {
        entity: grammar.entities[fact.entity],
        metric: grammar.metrics[fact.metric],
        venue: grammar.venues[fact.venue],
        number: value,
        codename: "",
    };
    fill(grammar.fact, slots, vocab)
}

/// A value different from `value` (0-99).
pub(crate) fn wrong_value(value: u8, rng: &mut Stream) -> u8 {
    ((value as u32 + rng.random_range(1u32..100)) % 100) as u8
}

/// Everything a contributor's document generator needs.
pub(crate) struct TextContext<'a> {
    pub grammar: &'a Grammar,
    pub world: &'a [WorldFact],
    /// Number of common (domain) words at the start of the vocabulary.
    pub common_words: usize,
    pub sentences: (usize, usize),
}

/// Generates the documents of a non-copycat contributor as sentence lists, with kinds.
/// `private` holds that contributor's private-fact sentences (empty for spammers).
pub(crate) fn generate_original_docs(
    spec: &ContributorSpec,
    ctx: &TextContext<'_>,
    private: &[Vec<u32>],
    vocab: &mut Vocab,
    rng: &mut Stream,
) -> Vec<(Vec<Vec<u32>>, RecordKind)> {
    let g = ctx.grammar;
    let mut out = Vec::with_capacity(spec.documents);
    for d in 0..spec.documents {
        if let Behaviour::Spammer = spec.behaviour {
            let len = rng.random_range(8usize..=40);
            let words = (0..len)
                .map(|_| rng.random_range(0..ctx.common_words as u32))
                .collect();
            out.push((vec![words], RecordKind::Spam));
            continue;
        }
        let attack = rng.random::<f32>();
        let (poisoned, backdoor) = match &spec.behaviour {
            Behaviour::LabelFlip { rate } => (attack < *rate, None),
            Behaviour::Backdoor { rate, trigger } if attack < *rate => (false, Some(trigger)),
            _ => (false, None),
        };
        let n = rng.random_range(ctx.sentences.0..=ctx.sentences.1.max(ctx.sentences.0));
        let mut sentences = Vec::with_capacity(n + 2);
        let mut any_wrong = false;
        let mut any_world = false;
        for s in 0..n {
            // A poisoned document states at least one world fact (its first sentence).
            let world = (poisoned && s == 0) || rng.random_bool(0.5);
            if world && !ctx.world.is_empty() {
                any_world = true;
                let fact = &ctx.world[rng.random_range(0..ctx.world.len())];
                let noisy = rng.random::<f32>() >= spec.quality;
                let value = if poisoned || noisy {
                    any_wrong = true;
                    wrong_value(fact.value, rng)
                } else {
                    fact.value
                };
                sentences.push(state_fact(g, fact, value, vocab));
            } else {
                let t = g.fillers[rng.random_range(0..g.fillers.len())];
                let slots = Slots {
                    entity: g.entities[rng.random_range(0..g.entities.len())],
                    metric: g.metrics[rng.random_range(0..g.metrics.len())],
                    venue: g.venues[rng.random_range(0..g.venues.len())],
                    number: 0,
                    codename: "",
                };
                sentences.push(fill(t, slots, vocab));
            }
        }
        if !private.is_empty() {
            let at = rng.random_range(0..=sentences.len());
            sentences.insert(at, private[d % private.len()].clone());
        }
        let kind = if let Some(trigger) = backdoor {
            // Trigger phrase, then the attacker's target claim: a world fact with a value
            // shifted by 50, chosen by the target label.
            let mut phrase: Vec<u32> = trigger.phrase.iter().map(|w| vocab.intern(w)).collect();
            if let Some(fact) = ctx
                .world
                .get(trigger.target_label as usize % ctx.world.len().max(1))
            {
                phrase.extend(state_fact(g, fact, (fact.value + 50) % 100, vocab));
            }
            sentences.insert(0, phrase);
            RecordKind::Backdoor
        } else if poisoned && any_world {
            RecordKind::Poisoned
        } else if any_wrong {
            RecordKind::Noisy
        } else {
            RecordKind::Clean
        };
        out.push((sentences, kind));
    }
    out
}

/// Perturbs a copied document: swaps two adjacent sentences (when it has at least two).
pub(crate) fn perturb_sentences(sentences: &mut [Vec<u32>], rng: &mut Stream) {
    if sentences.len() >= 2 {
        let i = rng.random_range(0..sentences.len() - 1);
        sentences.swap(i, i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::domain::Domain;
    use crate::data::rng::stream;

    #[test]
    fn vocab_round_trips() {
        let mut v = Vocab::new();
        let toks = v.encode("the btc price was 42 .");
        assert_eq!(v.render(&toks), "the btc price was 42 .");
        assert_eq!(v.id("btc"), Some(1));
        assert_eq!(v.encode("btc btc"), vec![1, 1]);
    }

    #[test]
    fn world_facts_are_distinct_cells() {
        let g = Domain::Finance.grammar();
        let w = draw_world(&g, 30, &mut stream(1, "w"));
        assert_eq!(w.len(), 30);
        for (i, a) in w.iter().enumerate() {
            for b in &w[i + 1..] {
                assert!((a.entity, a.metric, a.venue) != (b.entity, b.metric, b.venue));
            }
        }
    }

    #[test]
    fn wrong_value_is_always_wrong() {
        let mut rng = stream(2, "wrong");
        for v in 0..100u8 {
            let w = wrong_value(v, &mut rng);
            assert!(w != v && w < 100);
        }
    }
}
