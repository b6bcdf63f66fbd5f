//! Scenario files: the TOML schema, parsing with located errors, and semantic validation.
//!
//! A scenario file (reference: `docs/scenarios.md`) describes one run: `[run]`,
//! `[tokenomics]`, `[[datanets]]` (with their contributors and reviewers), `[[models]]`,
//! `[inference]`, `[[stakers]]`, `[[proposals]]`, `[[attackers]]` and `[grants]`.
//! [`Scenario::load`] reads and parses one, rejects unknown fields and wrong types, then
//! checks ranges, sums, references between sections and impossible combinations. Every
//! problem is a [`Diagnostic`] with file, line, column, field path and what is allowed;
//! all semantic problems of a file are reported together.
//!
//! [`convert`] turns a scenario into the types the engine builds on
//! ([`Tokenomics::protocol_params`], [`Scenario::datanet_spec`], [`ModelConfig::lora_config`],
//! [`Scenario::mlp_config`], [`Proposal::change`]).

pub mod convert;
pub mod error;
pub mod schema;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

pub use convert::{ConvertError, GeneratedDatanet, InvalidValue, ParamChange, SybilGroup};
pub use error::{Diagnostic, ScenarioError};
pub use schema::*;
pub use validate::Issue;

impl Scenario {
    /// Reads, parses and validates the scenario file at `path`; data files named in it are
    /// looked up relative to its folder.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Scenario::parse(&file, &text)
    }

    /// Parses and validates scenario `text`; `file` names it in errors and its folder is
    /// where data files are looked up.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        let (root, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            let locator = error::Locator::new(file, text, None);
            return Err(ScenarioError::Invalid(
                syntax.iter().map(|e| locator.syntax(e)).collect(),
            ));
        }
        let locator = error::Locator::new(file, text, Some(root.clone()));
        let mut scenario = Scenario::deserialize(toml::de::Deserializer::from(root))
            .map_err(|e| ScenarioError::Invalid(vec![locator.serde(&e)]))?;
        scenario.dir = Path::new(file).parent().map(Path::to_path_buf);
        let issues = validate::check(&scenario);
        if issues.is_empty() {
            Ok(scenario)
        } else {
            let mut located: Vec<Diagnostic> = issues
                .into_iter()
                .map(|i| locator.at_path(&i.path, i.message))
                .collect();
            located.sort_by_key(|d| (d.line, d.column));
            Err(ScenarioError::Invalid(located))
        }
    }

    /// Where the data file of `datanets[index]` is read from: its `file` relative to
    /// [`Scenario::dir`] (the scenario file's folder). `None` when it names no file.
    pub fn data_path(&self, index: usize) -> Option<PathBuf> {
        let file = self.datanets.get(index)?.file.as_deref()?;
        Some(
            self.dir
                .as_deref()
                .map_or_else(|| Path::new(file).to_path_buf(), |d| d.join(file)),
        )
    }

    /// Contributor identities over all generated Datanets: honest contributors, the data
    /// attackers, and every sybil identity.
    pub fn contributor_count(&self) -> u64 {
        let honest: u64 = self
            .datanets
            .iter()
            .filter(|d| d.source == Source::Generated)
            .map(|d| u64::from(d.contributors.clone().unwrap_or_default().count))
            .sum();
        let attackers: u64 = self
            .attackers
            .iter()
            .filter(|a| a.kind.contributes_data())
            .map(|a| {
                let ids = if a.kind == AttackKind::Sybil {
                    a.identities()
                } else {
                    1
                };
                u64::from(a.count) * u64::from(ids)
            })
            .sum();
        honest + attackers
    }

    /// Inference calls the run asks for: `[inference]` demand over every epoch plus
    /// wash-inference calls from their start epoch (grant-funded models' demand depends on
    /// which teams deliver and is not counted).
    pub fn inference_calls(&self) -> u64 {
        let epochs = u64::from(self.run.epochs);
        let wash: u64 = self
            .attackers
            .iter()
            .filter(|a| a.kind == AttackKind::WashInference)
            .map(|a| {
                u64::from(a.count)
                    * a.calls_per_epoch()
                    * epochs.saturating_sub(u64::from(a.start_epoch))
            })
            .sum();
        self.inference.calls_per_epoch * epochs + wash
    }

    /// One line describing the run (`contributors` counts generated identities; a file
    /// Datanet's contributors are the authors in its file, `file_datanets` counts those
    /// Datanets).
    pub fn summary(&self) -> String {
        let attackers: u32 = self.attackers.iter().map(|a| a.count).sum();
        let teams: u32 = self.grants.cohorts.iter().map(|c| c.teams).sum();
        let files = self
            .datanets
            .iter()
            .filter(|d| d.source == Source::File)
            .count();
        format!(
            "`{}` seed={} epochs={} datanets={} file_datanets={files} contributors={} models={} \
             attackers={} inference_calls={} staker_groups={} proposals={} grant_teams={}",
            self.run.name,
            self.run.seed,
            self.run.epochs,
            self.datanets.len(),
            self.contributor_count(),
            self.models.len(),
            attackers,
            self.inference_calls(),
            self.stakers.len(),
            self.proposals.len(),
            teams
        )
    }
}
