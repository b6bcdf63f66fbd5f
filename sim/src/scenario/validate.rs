//! Semantic validation of a parsed scenario: ranges, sums, references between sections and
//! impossible combinations. Every problem is collected (not just the first) as an [`Issue`]
//! naming the field path; the caller adds file positions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use alloy_primitives::U256;
use olsim_chain::protocol::bounds::EPOCH_LENGTH;
use olsim_chain::protocol::{OPEN, total_supply};

use super::convert::fund_open_wei;
use super::data_file::load_file;
use super::schema::{
    AttackKind, Attacker, ChainBackend, Cohort, Contributors, DEFAULT_SLASH_CONFIDENCE,
    DatanetConfig, DeviceKind, Interval, MAX_MILESTONES, ModelConfig, ModelKind, Scenario,
    SlashRule, Source, Task, TextConfig,
};
use super::size::{Footprint, machine_memory};
use crate::units::{got, open_wei, positive_open};

/// The largest seed: TOML integers are signed 64-bit.
const MAX_SEED: u64 = i64::MAX as u64;

/// One semantic problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Field path, e.g. `datanets[1].contributors.count`.
    pub path: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

struct Checker<'a> {
    s: &'a Scenario,
    issues: Vec<Issue>,
}

fn fraction(v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(got(v, "a fraction in [0, 1]"))
    }
}

fn positive(v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(got(v, "a finite number > 0"))
    }
}

fn allowed_names<T>(list: &[T], name: impl Fn(&T) -> &str) -> String {
    let set: BTreeSet<&str> = list.iter().map(name).collect();
    if set.is_empty() {
        "none are defined".to_string()
    } else {
        set.iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'a> Checker<'a> {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.issues.push(Issue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn check(&mut self, path: impl Into<String>, r: Result<(), String>) {
        if let Err(m) = r {
            self.push(path, m);
        }
    }

    fn count(&mut self, path: impl Into<String>, v: u64, min: u64) {
        if v < min {
            self.push(path, got(v, &format!("an integer >= {min}")));
        }
    }

    fn epoch(&mut self, path: impl Into<String>, epoch: u32) {
        let epochs = self.s.run.epochs;
        if epochs > 0 && epoch >= epochs {
            self.push(
                path,
                got(
                    epoch,
                    &format!("an epoch from 0 to {} (run.epochs = {epochs})", epochs - 1),
                ),
            );
        }
    }

    fn interval<T: PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        path: &str,
        r: Interval<T>,
        lo_min: T,
        hi_max: Option<T>,
        bounds: &str,
    ) {
        let in_range = r.lo >= lo_min && r.lo <= r.hi && hi_max.is_none_or(|m| r.hi <= m);
        if !in_range {
            self.push(path, got(format!("[{}, {}]", r.lo, r.hi), bounds));
        }
    }

    /// Uniqueness and non-emptiness of the `name` fields of a section.
    fn unique<T>(&mut self, section: &str, list: &[T], name: impl Fn(&T) -> &str) {
        let mut seen = BTreeMap::new();
        for (i, item) in list.iter().enumerate() {
            let n = name(item);
            let path = format!("{section}[{i}].name");
            if n.trim().is_empty() {
                self.push(path, "the name is empty; allowed: a non-empty, unique name");
            } else if let Some(first) = seen.insert(n.to_string(), i) {
                self.push(
                    path,
                    format!(
                        "`{n}` is already the name of {section}[{first}]; allowed: a unique name"
                    ),
                );
            }
        }
    }

    fn run(&mut self) {
        let r = &self.s.run;
        if r.name.trim().is_empty() {
            self.push("run.name", "the name is empty; allowed: a non-empty string");
        }
        self.count("run.epochs", r.epochs.into(), 1);
        if r.seed > MAX_SEED {
            self.push(
                "run.seed",
                got(
                    r.seed,
                    "an integer from 0 to 2^63-1 = 9223372036854775807 (a TOML integer: sweeps \
                     and overrides write the seed back into TOML)",
                ),
            );
        }
        if r.device == DeviceKind::Cuda && !cfg!(feature = "cuda") {
            self.push(
                "run.device",
                "\"cuda\" needs an olsim built with the `cuda` feature (`cargo build --release \
                 --features cuda`, on a machine with the CUDA toolkit); this build runs models on \
                 the CPU only; allowed here: \"cpu\"",
            );
        }
        if r.impersonate && r.chain == ChainBackend::Anvil {
            self.push(
                "run.impersonate",
                "impersonated transactions run only on the embedded chain (anvil would charge \
                 its own stand-in signature's L1 data fee); with run.chain = \"anvil\" \
                 allowed: false",
            );
        }
        if !EPOCH_LENGTH.contains(&r.epoch_seconds) {
            let allowed = format!(
                "seconds from {} to {}: AttributionRewards settles each model once per epoch \
                 of this length",
                EPOCH_LENGTH.start(),
                EPOCH_LENGTH.end()
            );
            self.push("run.epoch_seconds", got(r.epoch_seconds, &allowed));
        }
        if r.truth_subsets != 0 && !(4..=4096).contains(&r.truth_subsets) {
            self.push(
                "run.truth_subsets",
                format!(
                    "truth_subsets = {} cannot give a Data Banzhaf estimate with two \
                     independent halves; allowed: 0 (no retraining truth beyond 16 \
                     contributors) or 4 to 4096",
                    r.truth_subsets
                ),
            );
        }
    }

    fn tokenomics(&mut self) {
        if let Err(all) = self.s.tokenomics.convert() {
            for e in all {
                self.push(format!("tokenomics.{}", e.field), e.message);
            }
        }
        let confidence = self.s.tokenomics.slash_confidence;
        let rule = self.s.tokenomics.slash_rule;
        if rule != SlashRule::Validation && confidence != DEFAULT_SLASH_CONFIDENCE {
            self.push(
                "tokenomics.slash_confidence",
                format!(
                    "slash_confidence only applies to slash_rule = \"validation\"; this \
                     scenario's rule is \"{}\", which would ignore it",
                    rule.name()
                ),
            );
        } else if !(0.5..=0.9999).contains(&confidence) {
            self.push(
                "tokenomics.slash_confidence",
                format!(
                    "slash_confidence = {confidence} is not a confidence the validation slash \
                     rule can use; allowed: 0.5 to 0.9999 (default 0.95)"
                ),
            );
        }
    }

    fn datanets(&mut self) {
        let s = self.s;
        if s.datanets.is_empty() {
            self.push(
                "datanets",
                "no Datanet is defined; allowed: at least one [[datanets]] table",
            );
        }
        self.unique("datanets", &s.datanets, |d| &d.name);
        let mut generated_domains = BTreeMap::new();
        for (i, d) in s.datanets.iter().enumerate() {
            let p = format!("datanets[{i}]");
            match d.source {
                Source::Generated => {
                    if let Some(first) = generated_domains.insert(d.domain, i) {
                        self.push(
                            format!("{p}.domain"),
                            format!(
                                "`{}` is already the domain of generated datanets[{first}] (the \
                                 generator derives a domain's labelling function and population \
                                 from the seed and the domain name, so both would hold the same \
                                 data); allowed: one generated Datanet per domain, or \
                                 source = \"file\"",
                                d.domain.name()
                            ),
                        );
                    }
                    if d.file.is_some() {
                        self.push(
                            format!("{p}.file"),
                            "`file` applies only to source = \"file\"; remove it or set source = \"file\"",
                        );
                    }
                    self.contributors(&p, d);
                    self.text(&p, d.text.clone().unwrap_or_default());
                }
                Source::File => self.file_source(i, &p, d),
            }
            let r = &d.reviewers;
            self.check(format!("{p}.reviewers.accuracy"), fraction(r.accuracy));
            let colluders: u32 = s
                .attackers
                .iter()
                .filter(|a| {
                    a.kind == AttackKind::ColludingReviewers
                        && a.datanet.as_deref() == Some(d.name.as_str())
                })
                .map(|a| a.count)
                .sum();
            let quorum = u32::from(s.tokenomics.review_quorum);
            if r.count + colluders < quorum {
                self.push(
                    format!("{p}.reviewers.count"),
                    got(
                        format!("{} reviewers ({colluders} colluding besides)", r.count),
                        &format!(
                            "at least tokenomics.review_quorum = {quorum} reviewers in all, or no \
                             contribution is ever decided"
                        ),
                    ),
                );
            }
        }
    }

    fn contributors(&mut self, p: &str, d: &DatanetConfig) {
        let groups = d.contributor_groups();
        let many = groups.len() > 1;
        if groups.is_empty() {
            self.push(
                format!("{p}.contributors"),
                "an empty list of contributor groups; allowed: one table or at least one \
                 [[datanets.contributors]] group",
            );
        }
        let mut names = std::collections::BTreeSet::new();
        for (g, c) in groups.into_iter().enumerate() {
            let at = match many {
                true => format!("{p}.contributors[{g}]"),
                false => format!("{p}.contributors"),
            };
            if let Some(name) = &c.name
                && (name.trim().is_empty() || !names.insert(name.clone()))
            {
                self.push(
                    format!("{at}.name"),
                    got(
                        format!("{name:?}"),
                        "a non-empty group name, different from the Datanet's other groups",
                    ),
                );
            }
            self.contributor_group(&at, d, c);
        }
    }

    fn contributor_group(&mut self, p: &str, d: &DatanetConfig, c: Contributors) {
        self.count(format!("{p}.count"), c.count.into(), 1);
        let counts = "a range [lo, hi] of integers with lo <= hi";
        self.interval(&format!("{p}.records"), c.records, 0, None, counts);
        self.interval(&format!("{p}.documents"), c.documents, 0, None, counts);
        let (needed, range) = match d.task {
            Task::Classification => ("records", c.records),
            Task::Text => ("documents", c.documents),
        };
        if range.hi == 0 {
            self.push(
                format!("{p}.{needed}"),
                got(
                    "[0, 0]",
                    &format!(
                        "a range with hi >= 1: a `{}` Datanet needs {needed}",
                        task_name(d.task)
                    ),
                ),
            );
        }
        self.interval(
            &format!("{p}.quality"),
            c.quality,
            0.0,
            Some(1.0),
            "a range [lo, hi] with 0 <= lo <= hi <= 1",
        );
        self.interval(
            &format!("{p}.coverage"),
            c.coverage,
            f32::MIN_POSITIVE,
            Some(1.0),
            "a range [lo, hi] with 0 < lo <= hi <= 1",
        );
        if let Some(stake) = c.stake {
            let min = self.s.tokenomics.min_stake;
            match open_wei(stake) {
                Err(e) => self.push(format!("{p}.stake"), e),
                Ok(w) if open_wei(min).is_ok_and(|m| w < m) => self.push(
                    format!("{p}.stake"),
                    got(
                        stake,
                        &format!(
                            "at least tokenomics.min_stake = {min} OPEN (the registry refuses \
                             smaller stakes)"
                        ),
                    ),
                ),
                Ok(_) => {}
            }
        }
        let epochs = self.s.run.epochs;
        if c.arrival_epochs == 0 || c.arrival_epochs > epochs {
            self.push(
                format!("{p}.arrival_epochs"),
                got(
                    c.arrival_epochs,
                    &format!("an integer from 1 to run.epochs = {epochs}"),
                ),
            );
        }
    }

    fn text(&mut self, p: &str, t: TextConfig) {
        self.interval(
            &format!("{p}.text.sentences"),
            t.sentences,
            1,
            None,
            "a range [lo, hi] of integers with 1 <= lo <= hi",
        );
        self.count(format!("{p}.text.world_facts"), t.world_facts.into(), 1);
    }

    fn file_source(&mut self, index: usize, p: &str, d: &DatanetConfig) {
        for (field, set) in [
            ("contributors", d.contributors.is_some()),
            ("text", d.text.is_some()),
        ] {
            if set {
                self.push(
                    format!("{p}.{field}"),
                    format!(
                        "`{field}` applies only to generated Datanets (a file Datanet's \
                         contributors are the authors in the file); remove it or set \
                         source = \"generated\""
                    ),
                );
            }
        }
        let ext = match d.task {
            Task::Classification => "csv",
            Task::Text => "jsonl",
        };
        let Some(file) = &d.file else {
            self.push(
                format!("{p}.file"),
                format!(
                    "source = \"file\" needs `file`; allowed: a path to a .{ext} file, relative \
                     to the scenario file"
                ),
            );
            return;
        };
        let path = self
            .s
            .data_path(index)
            .expect("`file` is set, checked above");
        if Path::new(file).extension().and_then(|e| e.to_str()) != Some(ext) {
            self.push(
                format!("{p}.file"),
                got(
                    format!("`{file}`"),
                    &format!(
                        "a .{ext} file: a `{}` Datanet is loaded from {}",
                        task_name(d.task),
                        if ext == "csv" {
                            "CSV records"
                        } else {
                            "JSONL documents"
                        }
                    ),
                ),
            );
        } else if !path.is_file() {
            self.push(
                format!("{p}.file"),
                format!(
                    "`{}` does not exist or is not a file; allowed: a path relative to the \
                     scenario file",
                    path.display()
                ),
            );
        } else if let Err(problem) = load_file(self.s, index) {
            self.push(format!("{p}.file"), problem);
        }
    }

    /// The Datanet `name` must exist; `Some` of it when it does.
    fn datanet_ref(&mut self, path: String, name: &str) -> Option<&'a DatanetConfig> {
        let found = self.s.datanet(name);
        if found.is_none() {
            let all = allowed_names(&self.s.datanets, |d| &d.name);
            self.push(
                path,
                format!("no Datanet is named `{name}`; allowed: {all}"),
            );
        }
        found
    }

    fn kind_fits(&mut self, path: String, kind: ModelKind, d: &DatanetConfig) {
        if kind.task() != d.task {
            self.push(
                path,
                format!(
                    "Datanet `{}` has task `{}` but a `{}` trains on `{}` Datanets; allowed: a \
                     Datanet with task = \"{}\"",
                    d.name,
                    task_name(d.task),
                    kind_name(kind),
                    task_name(kind.task()),
                    task_name(kind.task())
                ),
            );
        }
    }

    fn price(&mut self, path: String, v: f64) {
        self.check(path, positive_open(v).map(|_| ()));
    }

    fn models(&mut self) {
        let s = self.s;
        self.unique("models", &s.models, |m| &m.name);
        for (i, m) in s.models.iter().enumerate() {
            let p = format!("models[{i}]");
            self.model(i, &p, m);
        }
    }

    fn model(&mut self, i: usize, p: &str, m: &ModelConfig) {
        if m.datanets.is_empty() {
            self.push(
                format!("{p}.datanets"),
                "the list is empty; allowed: the names of one or more [[datanets]]",
            );
        }
        let mut domains = BTreeSet::new();
        for (j, name) in m.datanets.iter().enumerate() {
            let path = format!("{p}.datanets[{j}]");
            if let Some(d) = self.datanet_ref(path.clone(), name) {
                self.kind_fits(path, m.kind, d);
                domains.insert(d.domain.name());
            }
        }
        if m.kind == ModelKind::Classifier && domains.len() > 1 {
            self.push(
                format!("{p}.datanets"),
                format!(
                    "the Datanets span the domains {} whose features differ; allowed: Datanets \
                     of one domain for a classifier",
                    domains.iter().copied().collect::<Vec<_>>().join(", ")
                ),
            );
        }
        self.price(format!("{p}.price"), m.price);
        self.epoch(format!("{p}.train_epoch"), m.train_epoch);
        self.check(format!("{p}.weight"), positive(m.weight));
        match (&m.hidden, m.kind) {
            (Some(_), ModelKind::LanguageModel) => self.push(
                format!("{p}.hidden"),
                "`hidden` applies only to kind = \"classifier\"; remove it",
            ),
            (Some(h), _) if h.contains(&0) => self.push(
                format!("{p}.hidden"),
                got(format!("{h:?}"), "hidden layer widths >= 1"),
            ),
            _ => {}
        }
        let l = &m.lora;
        self.count(format!("{p}.lora.rank"), l.rank.into(), 1);
        self.check(format!("{p}.lora.alpha"), positive(f64::from(l.alpha)));
        // A zero hidden width is reported above; the rank cannot be judged against it.
        let widths_valid = m.hidden.as_ref().is_none_or(|h| !h.contains(&0));
        if m.kind == ModelKind::Classifier
            && l.rank >= 1
            && domains.len() == 1
            && widths_valid
            && let Err(e) = self.s.mlp_config(i)
        {
            self.push(
                format!("{p}.lora.rank"),
                format!("{e}; allowed: a smaller rank, or `layers` that leave that layer out"),
            );
        }
        let t = &m.training;
        self.count(format!("{p}.training.epochs"), t.epochs.into(), 1);
        self.count(format!("{p}.training.batch_size"), t.batch_size.into(), 1);
        self.check(
            format!("{p}.training.learning_rate"),
            positive(t.learning_rate),
        );
    }

    fn inference(&mut self) {
        let inf = &self.s.inference;
        if inf.calls_per_epoch > 0 {
            self.count("inference.users", inf.users.into(), 1);
            if self.s.models.is_empty() && self.s.grants.cohorts.is_empty() {
                self.push(
                    "inference.calls_per_epoch",
                    got(
                        inf.calls_per_epoch,
                        "0 when there is no [[models]] entry and no grant cohort to call",
                    ),
                );
            }
        }
        self.count(
            "inference.calls_per_payment",
            inf.calls_per_payment.into(),
            1,
        );
        self.check("inference.zipf_exponent", positive(inf.zipf_exponent));
        if !(inf.price_elasticity.is_finite() && inf.price_elasticity >= 0.0) {
            self.push(
                "inference.price_elasticity",
                got(inf.price_elasticity, "a finite number >= 0"),
            );
        }
        self.price("inference.reference_price".into(), inf.reference_price);
    }

    fn stakers(&mut self) {
        let s = self.s;
        self.unique("stakers", &s.stakers, |g| &g.name);
        let mut total = U256::ZERO;
        for (i, g) in s.stakers.iter().enumerate() {
            let p = format!("stakers[{i}]");
            self.count(format!("{p}.count"), g.count.into(), 1);
            match positive_open(g.stake) {
                Ok(w) => total += w * U256::from(g.count),
                Err(e) => self.push(format!("{p}.stake"), e),
            }
            self.check(format!("{p}.participation"), fraction(g.participation));
        }
        if total > total_supply() {
            self.push(
                "stakers",
                got(
                    format!("{} OPEN staked in all", total / OPEN),
                    "at most the 1,000,000,000 OPEN supply",
                ),
            );
        }
    }

    fn proposals(&mut self) {
        let s = self.s;
        let t = &s.tokenomics;
        for (i, prop) in s.proposals.iter().enumerate() {
            let p = format!("proposals[{i}]");
            self.epoch(format!("{p}.epoch"), prop.epoch);
            self.check(format!("{p}.support"), fraction(prop.support));
            if let Err(e) = prop.apply(t) {
                self.push(format!("{p}.value"), e.message);
            }
            match s.stakers.iter().find(|g| g.name == prop.proposer) {
                None => {
                    let all = allowed_names(&s.stakers, |g| &g.name);
                    self.push(
                        format!("{p}.proposer"),
                        format!(
                            "no staker group is named `{}`; allowed: {all}",
                            prop.proposer
                        ),
                    );
                }
                Some(g) if g.stake < t.proposal_threshold => self.push(
                    format!("{p}.proposer"),
                    format!(
                        "group `{}` stakes {} OPEN each, below tokenomics.proposal_threshold = \
                         {} OPEN; allowed: a group whose stake reaches the threshold",
                        g.name, g.stake, t.proposal_threshold
                    ),
                ),
                Some(_) => {}
            }
            let r = &s.run;
            let opens = u64::from(prop.epoch) * r.epoch_seconds;
            let executable = opens + t.voting_period_s + t.timelock_delay_s;
            let end = u64::from(r.epochs) * r.epoch_seconds;
            if prop.epoch < r.epochs && executable >= end {
                self.push(
                    format!("{p}.epoch"),
                    got(
                        prop.epoch,
                        &format!(
                            "an epoch early enough to execute before the run ends: opened at \
                             {opens} s, it is executable at {executable} s (voting {} s + \
                             timelock {} s) but the run ends at {end} s",
                            t.voting_period_s, t.timelock_delay_s
                        ),
                    ),
                );
            }
        }
    }

    fn attackers(&mut self) {
        let s = self.s;
        let mut once = BTreeMap::new();
        for (i, a) in s.attackers.iter().enumerate() {
            let p = format!("attackers[{i}]");
            self.count(format!("{p}.count"), a.count.into(), 1);
            self.epoch(format!("{p}.start_epoch"), a.start_epoch);
            self.attacker_fields(&p, a);
            let takes = a.kind.fields();
            if takes.contains(&"datanet") {
                match &a.datanet {
                    None => self.push(
                        format!("{p}.datanet"),
                        format!(
                            "kind `{}` needs `datanet`; allowed: the name of a [[datanets]] entry",
                            a.kind.name()
                        ),
                    ),
                    Some(name) => {
                        let d = self.datanet_ref(format!("{p}.datanet"), name);
                        if let Some(d) = d
                            && a.kind.contributes_data()
                            && d.source != Source::Generated
                        {
                            self.push(
                                format!("{p}.datanet"),
                                format!(
                                    "attackers need a generated Datanet: kind `{}` submits data \
                                     the generator makes (and knows the ground truth of), but \
                                     Datanet `{name}` is loaded from a file; allowed: the name \
                                     of a generated Datanet (`colluding_reviewers` may target \
                                     a file Datanet)",
                                    a.kind.name()
                                ),
                            );
                        }
                        if let Some(d) = d
                            && a.kind == AttackKind::AttributionGaming
                            && s.gamed_model(name).is_none()
                        {
                            let (items, attribution, model) = match d.task {
                                Task::Classification => {
                                    ("classification records", "influence", "a classifier")
                                }
                                Task::Text => ("documents", "span", "a language model"),
                            };
                            self.push(
                                format!("{p}.datanet"),
                                format!(
                                    "kind `attribution_gaming` crafts {items} to win the \
                                     {attribution} attribution of the model trained on Datanet \
                                     `{name}`, but no model in [[models]] trains on it; allowed: \
                                     a Datanet that {model} in [[models]] trains on"
                                ),
                            );
                        }
                        if matches!(
                            a.kind,
                            AttackKind::LabelFlip
                                | AttackKind::Backdoor
                                | AttackKind::Spammer
                                | AttackKind::Copycat
                        ) && let Some(first) = once.insert((a.kind, name.clone()), i)
                        {
                            self.push(
                                format!("{p}.kind"),
                                format!(
                                    "attackers[{first}] is already a `{}` entry on Datanet \
                                     `{name}` (the generator takes one rate per kind and \
                                     Datanet); allowed: one such entry per Datanet, with a \
                                     larger count",
                                    a.kind.name()
                                ),
                            );
                        }
                    }
                }
            }
            if a.kind == AttackKind::WashInference {
                match &a.model {
                    None => self.push(
                        format!("{p}.model"),
                        "kind `wash_inference` needs `model`, the model the attacker owns; \
                         allowed: the name of a [[models]] entry",
                    ),
                    Some(name) if !s.models.iter().any(|m| &m.name == name) => {
                        let all = allowed_names(&s.models, |m| &m.name);
                        self.push(
                            format!("{p}.model"),
                            format!("no model is named `{name}`; allowed: {all}"),
                        );
                    }
                    Some(_) => {}
                }
            }
            let threshold = s.tokenomics.proposal_threshold;
            if a.kind == AttackKind::GovernanceCapture && a.stake() < threshold {
                self.push(
                    format!("{p}.stake"),
                    got(
                        a.stake(),
                        &format!(
                            "at least tokenomics.proposal_threshold = {threshold} OPEN (a \
                             governance capturer must be able to propose)"
                        ),
                    ),
                );
            }
        }
    }

    fn expectations(&mut self) {
        for (i, e) in self.s.expect.iter().enumerate() {
            for (field, problem) in e.problems() {
                self.push(format!("expect[{i}].{field}"), problem);
            }
        }
    }

    fn attacker_fields(&mut self, p: &str, a: &Attacker) {
        let set = [
            ("datanet", a.datanet.is_some()),
            ("model", a.model.is_some()),
            ("rate", a.rate.is_some()),
            ("identities", a.identities.is_some()),
            ("perturb", a.perturb.is_some()),
            ("calls_per_epoch", a.calls_per_epoch.is_some()),
            ("stake", a.stake.is_some()),
        ];
        let takes = a.kind.fields();
        for (field, present) in set {
            if present && !takes.contains(&field) {
                self.push(
                    format!("{p}.{field}"),
                    format!(
                        "`{field}` does not apply to kind `{}`; allowed for this kind: kind, \
                         count, start_epoch, {}",
                        a.kind.name(),
                        takes.join(", ")
                    ),
                );
            }
        }
        if let Some(r) = a.rate {
            self.check(format!("{p}.rate"), fraction(r));
        }
        if let Some(n) = a.identities {
            self.count(format!("{p}.identities"), n.into(), 2);
        }
        if let Some(x) = a.perturb
            && !(x.is_finite() && x >= 0.0)
        {
            self.push(format!("{p}.perturb"), got(x, "a finite number >= 0"));
        }
        if let Some(n) = a.calls_per_epoch {
            self.count(format!("{p}.calls_per_epoch"), n, 1);
        }
        if let Some(x) = a.stake {
            self.check(format!("{p}.stake"), positive_open(x).map(|_| ()));
        }
    }

    fn grants(&mut self) {
        let s = self.s;
        let g = &s.grants;
        if g.cohorts.is_empty() {
            return;
        }
        let approvals = u32::from(s.tokenomics.grant_approvals);
        if g.committee < approvals {
            self.push(
                "grants.committee",
                got(
                    g.committee,
                    &format!(
                        "at least tokenomics.grant_approvals = {approvals} members, or no grant is \
                         ever approved"
                    ),
                ),
            );
        }
        if let Ok(p) = s.tokenomics.protocol_params() {
            self.check(
                "grants.fund_usd",
                fund_open_wei(g.fund_usd, p.open_price_usd_e8).map(|_| ()),
            );
        }
        let mut budgets: u64 = 0;
        for (i, c) in g.cohorts.iter().enumerate() {
            let p = format!("grants.cohorts[{i}]");
            self.cohort(&p, c);
            budgets = budgets.saturating_add(c.budget());
        }
        if budgets > g.fund_usd {
            self.push(
                "grants.fund_usd",
                got(
                    g.fund_usd,
                    &format!(
                        "at least the cohorts' budgets, {budgets} USD in all (a cohort's budget \
                         defaults to teams times its largest grant)"
                    ),
                ),
            );
        }
    }

    fn cohort(&mut self, p: &str, c: &Cohort) {
        self.count(format!("{p}.teams"), c.teams.into(), 1);
        self.epoch(format!("{p}.epoch"), c.epoch);
        let (lo, hi) = c.tier.bounds_usd();
        let amount = c.amount();
        self.interval(
            &format!("{p}.amount_usd"),
            amount,
            lo,
            Some(hi),
            &format!("a range [lo, hi] within the tier's bounds [{lo}, {hi}] USD"),
        );
        if c.budget() < amount.lo {
            self.push(
                format!("{p}.budget_usd"),
                got(
                    c.budget(),
                    &format!("at least the smallest grant, {} USD", amount.lo),
                ),
            );
        }
        if c.milestones == 0 || c.milestones > MAX_MILESTONES {
            self.push(
                format!("{p}.milestones"),
                got(
                    c.milestones,
                    &format!("an integer from 1 to {MAX_MILESTONES}"),
                ),
            );
        }
        self.count(
            format!("{p}.milestone_epochs"),
            c.milestone_epochs.into(),
            1,
        );
        self.check(
            format!("{p}.success_probability"),
            fraction(c.success_probability),
        );
        let path = format!("{p}.datanet");
        if let Some(d) = self.datanet_ref(path.clone(), &c.datanet) {
            self.kind_fits(path, c.model_kind, d);
        }
        self.price(format!("{p}.price"), c.price);
        self.check(format!("{p}.weight"), positive(c.weight));
    }
}

fn task_name(t: Task) -> &'static str {
    match t {
        Task::Classification => "classification",
        Task::Text => "text",
    }
}

fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::Classifier => "classifier",
        ModelKind::LanguageModel => "language_model",
    }
}

/// Every semantic problem of `s`. Data files are looked up by [`Scenario::data_path`]
/// (relative to the scenario file's folder).
pub fn check(s: &Scenario) -> Vec<Issue> {
    let mut c = Checker {
        s,
        issues: Vec::new(),
    };
    c.run();
    c.tokenomics();
    c.datanets();
    c.models();
    c.inference();
    c.stakers();
    c.proposals();
    c.attackers();
    c.expectations();
    c.grants();
    for (path, message) in Footprint::of(s).problems(machine_memory()) {
        c.push(path, message);
    }
    c.issues
}
