//! Corpora from Datanet documents: a generic multi-domain mix for pre-training, document
//! texts, and a content-based train / held-out split of documents.

use alloy_primitives::keccak256;

use super::LmError;
use crate::data::build_population;
use crate::data::{Datanet, DatanetSpec, Document, Domain, PopulationSpec, TextParams};

/// Generates one Datanet per domain in `domains`, each with the population `population`
/// and text parameters `text` under master seed `seed`: the generic pre-training mix.
pub fn generic_datanets(
    seed: u64,
    domains: &[Domain],
    population: &PopulationSpec,
    text: &TextParams,
) -> Result<Vec<Datanet>, LmError> {
    domains
        .iter()
        .map(|&domain| {
            let contributors = build_population(seed, domain, population)?;
            Ok(Datanet::generate(&DatanetSpec {
                domain,
                seed,
                contributors,
                text: text.clone(),
            })?)
        })
        .collect()
}

/// The text of every document of `datanets`, in order.
pub fn document_texts(datanets: &[Datanet]) -> Vec<String> {
    datanets
        .iter()
        .flat_map(|dn| dn.documents.iter().map(|d| dn.doc_text(d)))
        .collect()
}

/// Splits `datanet`'s documents into `(train, held_out)`. A document is held out when the
/// first eight bytes of `keccak256(hash || salt)`, read as a big-endian fraction of 2^64,
/// are below `heldout_fraction`: the split depends only on content, like
/// [`Datanet::split`] for records.
pub fn split_documents<'a>(
    datanet: &'a Datanet,
    heldout_fraction: f64,
    salt: &str,
) -> (Vec<&'a Document>, Vec<&'a Document>) {
    datanet.documents.iter().partition(|d| {
        let mut bytes = d.hash.to_vec();
        bytes.extend_from_slice(salt.as_bytes());
        let h = keccak256(&bytes);
        let u = u64::from_be_bytes(h.0[..8].try_into().expect("8 bytes")) as f64 / 2f64.powi(64);
        u >= heldout_fraction
    })
}
