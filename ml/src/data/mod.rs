//! Datanet data generators with ground truth.
//!
//! Four domains ([`Domain`]: finance, healthcare, DePIN, gaming), each with two kinds of
//! data: feature records for a binary classification task whose true labelling function
//! ([`Labeler`]) the generator knows, and text documents from a domain grammar carrying
//! contributor-specific private facts.
//!
//! Ground truth is what makes olsim a testbed. The generator records, for every record and
//! document, its author, whether it is clean, *why* not ([`RecordKind`]) and the original it
//! copies (`copy_of`); for every contributor its true quality, coverage and behaviour
//! ([`ContributorSpec`]); and the private facts only that contributor emits
//! ([`GroundTruth`]). Attribution and reward methods must never read ground truth; reports
//! judge them against it.
//!
//! Everything is deterministic: one master seed, one ChaCha stream per component derived
//! from the seed and a stable name ([`rng::stream`]), no hash-map iteration and no threads,
//! so the same `(seed, spec)` gives bit-identical output ([`Datanet::digest`]).
//!
//! Every record and document carries a `keccak256` content hash for on-chain commitments.
//! Bring-your-own data is loaded from CSV (records) or JSONL (documents) by [`load`];
//! malformed input is a [`LoadError`] naming file, line and column.
//!
//! Modules: [`rng`] (streams), [`domain`] (domains, true labelling function, grammar),
//! [`contributor`] (contributors and behaviours), [`population`] (populations from counts),
//! [`features`] (feature records), [`text`] (vocabulary and documents), [`datanet`] (the
//! generator and ground truth accessors), [`load`] (CSV / JSONL readers and writers).

pub mod contributor;
pub mod datanet;
pub mod domain;
pub mod features;
pub mod load;
pub mod population;
pub mod rng;
pub mod text;

#[cfg(test)]
mod tests;

pub use contributor::{Behaviour, ContributorId, ContributorSpec, Coverage, Trigger};
pub use datanet::{Datanet, DatanetSpec, GroundTruth, SpecError, Split, TextParams};
pub use domain::{Domain, Grammar, Labeler};
pub use features::{FeatureRecord, RecordId, RecordKind, record_hash};
pub use load::{LoadError, load_csv, load_jsonl, parse_csv, parse_jsonl, write_csv, write_jsonl};
pub use population::{PopulationSpec, TRIGGER_VALUE, build_population};
pub use text::{DocId, Document, PrivateFact, Vocab, WorldFact, document_hash};
