//! `attribution_gaming`: a contributor crafts data to win attribution rather than to teach
//! the model.
//!
//! Influence attribution credits a training record by how well its loss gradient lines up
//! with the gradients of served outputs. Served classifier inputs follow the marketplace's
//! public query distribution ([`query_input`]), while an honest contributor samples only its
//! own corner of feature space. A gamer replaces `rate` of its records by inputs drawn from
//! the query distribution, labelled with what the model predicts there: records that sit
//! where outputs concentrate and agree with the model's own outputs.
//!
//! It learns those labels as any user would: when a classifier trained on its Datanet is
//! live, it pays `InferenceMarket.payInference` for one call per crafted input (a cost in
//! the report) and takes the model's outputs; before that, it uses the public base model's
//! predictions. It then submits through the same contribute and review path as everyone.
//!
//! Ground truth stays honest: a crafted record is clean exactly when its label is the true
//! label, so reviewers and the ground-truth value see what the data is worth.

use alloy_primitives::U256;
use burn::tensor::backend::AutodiffBackend;
use olsim_chain::contracts::InferenceMarket;
use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, RecordKind, record_hash};
use olsim_ml::model::{Classifier, StepCost, predict};
use rand::RngExt;

use crate::engine::data::DatanetState;
use crate::engine::models::{Trained, query_input};
use crate::engine::txs::Action;
use crate::engine::{EngineError, Sim, open};
use crate::scenario::{AttackKind, GeneratedDatanet, Scenario};

/// One gamer's plan, made at setup: which of its records it replaces and by which inputs.
#[derive(Clone, Debug)]
pub struct Gamer {
    /// Its Datanet.
    pub datanet: usize,
    /// Its identity there.
    pub identity: ContributorId,
    /// The `[[models]]` entry whose outputs it games (the Datanet's first classifier).
    pub model: usize,
    /// Records it replaces (a seeded choice of `round(rate * records)` of its records).
    pub items: Vec<u32>,
    /// The crafted inputs, one per replaced record.
    pub inputs: Vec<Vec<f32>>,
}

/// The plans of Datanet `n`'s gamers (validation makes sure a classifier trains on it).
pub fn plan(
    scenario: &Scenario,
    n: usize,
    generated: &GeneratedDatanet,
    net: &DatanetState,
) -> Result<Vec<Gamer>, EngineError> {
    let mut out = Vec::new();
    for group in generated
        .groups
        .iter()
        .filter(|g| g.kind == AttackKind::AttributionGaming)
    {
        let model = scenario.gamed_model(&net.name).ok_or_else(|| {
            EngineError::Scenario(format!(
                "datanets[{n}] `{}`: attribution gamers need a classifier trained on it",
                net.name
            ))
        })?;
        let attacker = &scenario.attackers[group.attacker];
        let dim = scenario.datanets[n].domain.dim();
        for &identity in &group.identities {
            let mut rng = stream(
                scenario.run.seed,
                &format!("engine/attribution_gaming/{}/{}", net.name, identity.0),
            );
            let mut items = net.items[identity.0 as usize].clone();
            for i in (1..items.len()).rev() {
                items.swap(i, rng.random_range(0..=i));
            }
            items.truncate(attacker.crafted(items.len()));
            items.sort_unstable();
            let inputs = items.iter().map(|_| query_input(&mut rng, dim)).collect();
            out.push(Gamer {
                datanet: n,
                identity,
                model,
                items,
                inputs,
            });
        }
    }
    Ok(out)
}

impl<B: AutodiffBackend> Sim<B> {
    /// Gamers who contribute this epoch label their crafted inputs and write them into
    /// their records (see the module docs), just before they submit.
    pub(crate) fn craft_gaming(&mut self, epoch: u32) -> Result<(), EngineError> {
        let due: Vec<Gamer> = self
            .gamers
            .iter()
            .filter(|g| self.datanets[g.datanet].identities[g.identity.0 as usize].epoch == epoch)
            .cloned()
            .collect();
        for gamer in due {
            let labels = match self.probe(epoch, &gamer)? {
                Some(labels) => labels,
                None => {
                    let mlp = self
                        .scenario
                        .mlp_config(gamer.model)
                        .map_err(|e| EngineError::Scenario(e.to_string()))?;
                    let base = self.base.get(self.seed, &mlp, &self.device)?;
                    labels_of(&base, &gamer, &self.models[gamer.model].name, &self.device)?
                }
            };
            let net = &mut self.datanets[gamer.datanet];
            for ((&r, input), label) in gamer.items.iter().zip(&gamer.inputs).zip(labels) {
                let clean = net.data.true_label(input) == Some(label);
                let record = &mut net.data.records[r as usize];
                record.features = input.clone();
                record.label = label;
                record.clean = clean;
                record.kind = if clean {
                    RecordKind::Clean
                } else {
                    RecordKind::Noisy
                };
                record.copy_of = None;
                record.hash = record_hash(input, label);
            }
        }
        Ok(())
    }

    /// The live model's labels of the gamer's inputs, paid for through the market; `None`
    /// when the model is not live yet or the payment was refused.
    fn probe(&mut self, epoch: u32, gamer: &Gamer) -> Result<Option<Vec<u8>>, EngineError> {
        let model = &self.models[gamer.model];
        let (Some(id), Some(Trained::Classifier(_))) = (model.chain_id, &model.trained) else {
            return Ok(None);
        };
        if gamer.inputs.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let count = gamer.inputs.len() as u32;
        let agent = self.datanets[gamer.datanet].identities[gamer.identity.0 as usize].agent;
        let pay = Action::call(
            agent,
            "pay inference (attribution probe)",
            self.deployment.market,
            &InferenceMarket::payInferenceCall {
                modelId: id,
                count,
                maxFee: open(model.price)? * U256::from(count),
            },
        );
        if self.send(epoch, vec![pay])?[0].is_none() {
            return Ok(None);
        }
        let Some(Trained::Classifier(trained)) = &self.models[gamer.model].trained else {
            unreachable!("checked above");
        };
        let labels = labels_of(
            &trained.model,
            gamer,
            &self.models[gamer.model].name,
            &self.device,
        )?;
        let flops = u64::from(count) * trained.model.forward_flops_per_example();
        self.compute.add(
            "serving",
            &StepCost {
                device: B::name(&self.device),
                wall_seconds: 0.0,
                flops,
            },
        );
        Ok(Some(labels))
    }
}

/// `model`'s predicted class of each of the gamer's inputs.
fn labels_of<B: AutodiffBackend, M: Classifier<B>>(
    model: &M,
    gamer: &Gamer,
    name: &str,
    device: &B::Device,
) -> Result<Vec<u8>, EngineError> {
    let inputs: Vec<(Vec<f32>, u8)> = gamer.inputs.iter().map(|x| (x.clone(), 0)).collect();
    predict(model, &inputs, device).map_err(|e| EngineError::Model {
        model: name.to_string(),
        message: format!("labels for attribution gaming: {e}"),
    })
}
