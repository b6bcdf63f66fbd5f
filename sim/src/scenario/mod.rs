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
pub mod data_file;
pub mod error;
pub mod expect;
pub mod schema;
pub mod size;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::de::DeTable;

pub use convert::{AttackerIdentities, ConvertError, GeneratedDatanet, InvalidValue, ParamChange};
pub use error::{Diagnostic, ScenarioError};
pub use schema::*;
pub use validate::Issue;

impl Inference {
    /// Calls each live model gets in one epoch, for models offered at `(price, weight)` in
    /// popularity order: `calls_per_epoch` spread by `popularity`, each model's part scaled by
    /// `(price / reference_price)^-price_elasticity` (so a model priced above the reference
    /// sells fewer calls in total, not only a smaller share), rounded to whole calls that add
    /// up to the rounded total (largest remainders first, ties to the earlier model).
    pub fn demand(&self, offers: &[(f64, f64)]) -> Vec<u64> {
        let popularity: Vec<f64> = offers
            .iter()
            .enumerate()
            .map(|(k, &(_, weight))| match self.popularity {
                Popularity::Uniform => 1.0,
                Popularity::Zipf => 1.0 / ((k + 1) as f64).powf(self.zipf_exponent),
                Popularity::Weights => weight,
            })
            .collect();
        let sum: f64 = popularity.iter().sum();
        if sum <= 0.0 {
            return vec![0; offers.len()];
        }
        let exact: Vec<f64> = offers
            .iter()
            .zip(&popularity)
            .map(|(&(price, _), p)| {
                let relative = price / self.reference_price;
                self.calls_per_epoch as f64 * p / sum * relative.powf(-self.price_elasticity)
            })
            .collect();
        let total = exact.iter().sum::<f64>().round() as u64;
        let mut calls: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
        let mut order: Vec<usize> = (0..exact.len()).collect();
        order.sort_by(|&a, &b| {
            let (fa, fb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
            fb.total_cmp(&fa).then(a.cmp(&b))
        });
        let short = total.saturating_sub(calls.iter().sum());
        for &i in order.iter().cycle().take(short as usize) {
            calls[i] += 1;
        }
        calls
    }
}

/// `[run]` settings given on the command line, which replace the scenario file's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunOverrides {
    /// `run.device` (`--device`), when given.
    pub device: Option<DeviceKind>,
    /// Sets `run.impersonate` (`--impersonate`).
    pub impersonate: bool,
}

impl Scenario {
    /// Reads, parses and validates the scenario file at `path`; data files named in it are
    /// looked up relative to its folder.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with(path, RunOverrides::default())
    }

    /// [`Scenario::load`], with the `[run]` settings `overrides` gives replaced before
    /// validation: what `olsim run --device ... --impersonate` runs.
    pub fn load_with(path: &Path, overrides: RunOverrides) -> Result<Scenario, ScenarioError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            file: file.clone(),
            source,
        })?;
        Scenario::parse_on(&file, &text, overrides)
    }

    /// Parses and validates scenario `text`; `file` names it in errors and its folder is
    /// where data files are looked up.
    pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse_on(file, text, RunOverrides::default())
    }

    /// [`Scenario::parse`], with the `[run]` settings `overrides` gives replaced.
    fn parse_on(
        file: &str,
        text: &str,
        overrides: RunOverrides,
    ) -> Result<Scenario, ScenarioError> {
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
        if let Some(device) = overrides.device {
            scenario.run.device = device;
        }
        scenario.run.impersonate |= overrides.impersonate;
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
            .flat_map(|d| d.contributor_groups())
            .map(|g| u64::from(g.count))
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

    /// Inference calls the run asks for when every `[[models]]` entry is registered in its
    /// `train_epoch` (as it is once it has accepted data to train on): each epoch's
    /// `[inference]` demand ([`Inference::demand`]) over the models live then, plus
    /// wash-inference calls from their start epoch on a live model. Grant-funded models'
    /// demand depends on which teams deliver and is not counted.
    pub fn inference_calls(&self) -> u64 {
        let mut total = 0;
        for epoch in 0..self.run.epochs {
            let live: Vec<(f64, f64)> = self
                .models
                .iter()
                .filter(|m| m.train_epoch <= epoch)
                .map(|m| (m.price, m.weight))
                .collect();
            total += self.inference.demand(&live).iter().sum::<u64>();
            total += self.probe_calls(epoch);
            total += self
                .attackers
                .iter()
                .filter(|a| a.kind == AttackKind::WashInference && a.start_epoch <= epoch)
                .filter(|a| {
                    self.models
                        .iter()
                        .any(|m| Some(&m.name) == a.model.as_ref() && m.train_epoch <= epoch)
                })
                .map(|a| u64::from(a.count) * a.calls_per_epoch())
                .sum::<u64>();
        }
        total
    }

    /// The `[[attackers]]` entries of `kind`, with their positions.
    pub fn attackers_of(&self, kind: AttackKind) -> impl Iterator<Item = (usize, &Attacker)> {
        self.attackers
            .iter()
            .enumerate()
            .filter(move |(_, a)| a.kind == kind)
    }

    /// The `[[models]]` entry that attribution gamers on Datanet `datanet` game: the first
    /// model of the Datanet's task (a classifier for a classification Datanet, a language
    /// model for a text one) trained on it.
    pub fn gamed_model(&self, datanet: &str) -> Option<usize> {
        let kind = match self.datanets.iter().find(|d| d.name == datanet)?.task {
            Task::Classification => ModelKind::Classifier,
            Task::Text => ModelKind::LanguageModel,
        };
        self.models
            .iter()
            .position(|m| m.kind == kind && m.datanets.iter().any(|d| d == datanet))
    }

    /// Calls attribution gamers pay for in `epoch` to learn what the live model outputs for
    /// their crafted items: one per crafted record or document, when they contribute after
    /// the model they game
    /// was registered (in an earlier epoch's training stage).
    fn probe_calls(&self, epoch: u32) -> u64 {
        let mut calls = 0;
        for (n, d) in self.datanets.iter().enumerate() {
            let live = self
                .gamed_model(&d.name)
                .is_some_and(|m| self.models[m].train_epoch < epoch);
            if !live {
                continue;
            }
            let Ok(generated) = self.datanet_spec(n) else {
                continue;
            };
            for g in &generated.groups {
                let attacker = &self.attackers[g.attacker];
                if g.kind != AttackKind::AttributionGaming || attacker.start_epoch != epoch {
                    continue;
                }
                for id in &g.identities {
                    let spec = &generated.spec.contributors[id.0 as usize];
                    let items = match d.task {
                        Task::Classification => spec.records,
                        Task::Text => spec.documents,
                    };
                    calls += attacker.crafted(items) as u64;
                }
            }
        }
        calls
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
