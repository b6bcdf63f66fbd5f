//! Counterfactual runs behind the replication-robustness figures (docs/metrics.md,
//! "Replication robustness"): the same scenario and seed with one attack changed, run
//! without claims and without ground-truth retraining (the truth plays no part in
//! rewards), compared with the real run contributor by contributor.
//!
//! - Sybils as one: each sybil submits all its data under one identity; `split_gain` is the
//!   sybils' rewards in the run over theirs there.
//! - Copycats withheld: the copycats never submit (the generated population, and so every
//!   original author's data, is the same); `victim_loss` is what the authors they copied
//!   earned there less what they earned in the run, and `copy_gain` the copycats' rewards
//!   over that loss.

use olsim_ml::data::Behaviour;

use super::EngineError;
use super::data::generated_contributor_name;
use crate::report::ResultSection;
use crate::scenario::{AttackKind, ChainBackend, Scenario, Source};

/// The scenario with each sybil under one identity; `None` when there is no sybil.
pub(super) fn sybils_as_one(scenario: &Scenario) -> Option<Scenario> {
    let mut single = without_claims(scenario, AttackKind::Sybil)?;
    for a in single.attackers.iter_mut() {
        if a.kind == AttackKind::Sybil {
            a.identities = Some(1);
        }
    }
    Some(single)
}

/// The scenario with every copycat arriving after the last epoch (so it never submits);
/// `None` when there is no copycat.
pub(super) fn copycats_withheld(scenario: &Scenario) -> Option<Scenario> {
    let mut withheld = without_claims(scenario, AttackKind::Copycat)?;
    let after_the_run = scenario.run.epochs;
    for a in withheld.attackers.iter_mut() {
        if a.kind == AttackKind::Copycat {
            a.start_epoch = after_the_run;
        }
    }
    Some(withheld)
}

/// The scenario without its claims, its transactions impersonated on the embedded chain
/// (which gives the signed run's result, `sim/tests/backends.rs`, and skips signing and
/// sender recovery); `None` when it has no attacker of `kind`.
fn without_claims(scenario: &Scenario, kind: AttackKind) -> Option<Scenario> {
    if !scenario.attackers.iter().any(|a| a.kind == kind) {
        return None;
    }
    let mut changed = scenario.clone();
    changed.expect.clear();
    changed.run.impersonate |= changed.run.chain == ChainBackend::Embedded;
    Some(changed)
}

/// Sets `attacks[sybil].split_gain` of `result` from the run with each sybil under one
/// identity (`None` when those single identities earned nothing).
pub(super) fn add_split_gain(result: &mut ResultSection, single: &ResultSection) {
    let sybil = AttackKind::Sybil.name();
    let rewards = |r: &ResultSection| -> f64 {
        r.contributors
            .iter()
            .filter(|c| c.kind == sybil)
            .map(|c| c.rewards)
            .sum()
    };
    let (split, single) = (rewards(result), rewards(single));
    if let Some(a) = result.attacks.iter_mut().find(|a| a.kind == sybil) {
        a.split_gain = (single > 0.0).then(|| split / single);
    }
}

/// Sets `attacks[copycat].victim_loss` and `copy_gain` of `result` from the run with the
/// copycats withheld. `copy_gain` is `None` when the authors lost nothing.
pub(super) fn add_copy_loss(
    scenario: &Scenario,
    result: &mut ResultSection,
    withheld: &ResultSection,
) -> Result<(), EngineError> {
    let victims = copied_authors(scenario)?;
    let earned = |r: &ResultSection| -> f64 {
        r.contributors
            .iter()
            .filter(|c| victims.contains(&c.name))
            .map(|c| c.rewards)
            .sum()
    };
    let copycat = AttackKind::Copycat.name();
    let copied: f64 = result
        .contributors
        .iter()
        .filter(|c| c.kind == copycat)
        .map(|c| c.rewards)
        .sum();
    let loss = earned(withheld) - earned(result);
    if let Some(a) = result.attacks.iter_mut().find(|a| a.kind == copycat) {
        a.victim_loss = Some(loss);
        a.copy_gain = (loss > 0.0).then(|| copied / loss);
    }
    Ok(())
}

/// Report names of the contributors a copycat copies, on every generated Datanet (from the
/// generator spec setup drew the population from: cheap, no data is generated).
fn copied_authors(scenario: &Scenario) -> Result<Vec<String>, EngineError> {
    let mut names = Vec::new();
    for (i, d) in scenario.datanets.iter().enumerate() {
        if d.source != Source::Generated {
            continue;
        }
        let generated = scenario
            .datanet_spec(i)
            .map_err(|e| EngineError::Scenario(e.to_string()))?;
        for c in &generated.spec.contributors {
            if let Behaviour::Copycat { target, .. } = c.behaviour {
                names.push(generated_contributor_name(&d.name, target));
            }
        }
    }
    Ok(names)
}
