//! `attribution_gaming`: a contributor crafts data to win attribution rather than to teach
//! the model.
//!
//! Influence attribution credits a training record by how well its loss gradient lines up
//! with the gradients of served outputs. Served classifier inputs follow the marketplace's
//! public query distribution ([`query_input`]), while an honest contributor samples only its
//! own corner of feature space. A gamer replaces `rate` of its records by inputs drawn from
//! the query distribution, labelled with what the public base model predicts there: records
//! that sit where outputs concentrate and agree with the model's own predictions. It submits
//! them through the same contribute and review path as everyone (`contribute` stakes them;
//! reviewers judge their labels against the truth like any record).
//!
//! Ground truth stays honest: a crafted record is clean exactly when the base model's label
//! is the true label, so reviewers and the ground-truth value see what the data is worth.

use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, RecordKind, record_hash};
use olsim_ml::model::predict;
use rand::RngExt;

use crate::engine::EngineError;
use crate::engine::data::DatanetState;
use crate::engine::models::{BaseModels, query_input};
use crate::scenario::{AttackKind, GeneratedDatanet, ModelKind, Scenario, Task};

/// Crafts the records of every attribution gamer of Datanet `n` (see the module docs).
/// Language-model Datanets are refused by validation, so this only sees classification.
pub fn craft(
    scenario: &Scenario,
    n: usize,
    generated: &GeneratedDatanet,
    net: &mut DatanetState,
    base: &mut BaseModels,
) -> Result<(), EngineError> {
    let gamers: Vec<(usize, ContributorId)> = generated
        .groups
        .iter()
        .filter(|g| g.kind == AttackKind::AttributionGaming)
        .flat_map(|g| g.identities.iter().map(move |&id| (g.attacker, id)))
        .collect();
    if gamers.is_empty() || net.task != Task::Classification {
        return Ok(());
    }
    // The base model the Datanet's first classifier fine-tunes: public, like the query
    // distribution.
    let Some(model) = scenario
        .models
        .iter()
        .position(|m| m.kind == ModelKind::Classifier && m.datanets.iter().any(|d| *d == net.name))
    else {
        return Err(EngineError::Scenario(format!(
            "datanets[{n}] `{}`: attribution gamers need a classifier trained on it",
            net.name
        )));
    };
    let mlp = scenario
        .mlp_config(model)
        .map_err(|e| EngineError::Scenario(e.to_string()))?;
    let base = base.get(scenario.run.seed, &mlp)?;
    let dim = mlp.input_dim;
    for (entry, id) in gamers {
        let rate = scenario.attackers[entry].rate();
        let mut rng = stream(
            scenario.run.seed,
            &format!("engine/attribution_gaming/{}/{}", net.name, id.0),
        );
        let items = net.items[id.0 as usize].clone();
        let crafted: Vec<u32> = items
            .into_iter()
            .filter(|_| rng.random_bool(rate))
            .collect();
        let mut inputs: Vec<_> = crafted
            .iter()
            .map(|&r| {
                let mut record = net.data.records[r as usize].clone();
                record.features = query_input(&mut rng, dim);
                record
            })
            .collect();
        let labels =
            predict(&base, &inputs, &Default::default()).map_err(|e| EngineError::Model {
                model: scenario.models[model].name.clone(),
                message: format!("base predictions for attribution gaming: {e}"),
            })?;
        for (record, label) in inputs.iter_mut().zip(labels) {
            record.label = label;
            record.clean = net.data.true_label(&record.features) == Some(label);
            record.kind = if record.clean {
                RecordKind::Clean
            } else {
                RecordKind::Noisy
            };
            record.copy_of = None;
            record.hash = record_hash(&record.features, label);
        }
        for (r, record) in crafted.into_iter().zip(inputs) {
            net.data.records[r as usize] = record;
        }
    }
    Ok(())
}
