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

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, RecordKind, record_hash};
use olsim_ml::model::{Classifier, StepCost, predict};
use rand::RngExt;

use super::{Attack, Budget, Cast, Moment};
use crate::engine::economy::Purchase;
use crate::engine::models::{Trained, query_input};
use crate::engine::pipeline::{EpochState, Stage};
use crate::engine::{EngineError, Sim, Work};
use crate::scenario::AttackKind;

/// One gamer's plan, made before epoch 0: which of its records it replaces and by which
/// inputs.
#[derive(Clone, Debug)]
struct Gamer {
    /// Its Datanet.
    datanet: usize,
    /// Its identity there.
    identity: ContributorId,
    /// The `[[models]]` entry whose outputs it games ([`crate::scenario::Scenario::gamed_model`]).
    model: usize,
    /// Records it replaces (a seeded choice of `round(rate * records)` of its records).
    items: Vec<u32>,
    /// The crafted inputs, one per replaced record.
    inputs: Vec<Vec<f32>>,
}

/// The scenario's attribution gamers.
#[derive(Default)]
pub struct Gamers(Vec<Gamer>);

impl<B: AutodiffBackend> Attack<B> for Gamers {
    /// Plans every gamer's crafted records (validation makes sure a classifier trains on
    /// each gamed Datanet).
    fn cast(&mut self, cast: &mut Cast<'_>) -> Result<(), EngineError> {
        let scenario = cast.scenario;
        for (n, net) in cast.datanets.iter().enumerate() {
            for group in net
                .attackers
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
                    self.0.push(Gamer {
                        datanet: n,
                        identity,
                        model,
                        items,
                        inputs,
                    });
                }
            }
        }
        Ok(())
    }

    /// One call per crafted record at the gamed model's price, besides the stake every
    /// contributor gets.
    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let mut out = Vec::new();
        for g in &self.0 {
            let probes = alloy_primitives::U256::from(g.inputs.len() as u64);
            let agent = sim.datanets[g.datanet].identities[g.identity.0 as usize].agent;
            let price = sim.models[g.model].price_wei;
            out.push((agent, probes * price, sim.deployment.market));
        }
        Ok(out)
    }

    /// Gamers who contribute this epoch label their crafted inputs and write them into
    /// their records, just before the arrivals submit.
    fn act(
        &mut self,
        at: Moment,
        sim: &mut Sim<B>,
        epoch: &mut EpochState,
    ) -> Result<(), EngineError> {
        if at != Moment::Before(Stage::Arrivals) {
            return Ok(());
        }
        for gamer in &self.0 {
            let identity = &sim.datanets[gamer.datanet].identities[gamer.identity.0 as usize];
            if identity.epoch != epoch.number {
                continue;
            }
            let labels = match probe(sim, epoch.number, gamer)? {
                Some(labels) => labels,
                None => {
                    let mlp = sim
                        .scenario
                        .mlp_config(gamer.model)
                        .map_err(|e| EngineError::Scenario(e.to_string()))?;
                    let base = sim.base.get(sim.seed, &mlp, &sim.device)?;
                    labels_of(&base, gamer, &sim.models[gamer.model].name, &sim.device)?
                }
            };
            let net = &mut sim.datanets[gamer.datanet];
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
}

/// The live model's labels of the gamer's inputs, paid for through the market; `None` when
/// the model is not live yet or the payment was refused.
fn probe<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    epoch: u32,
    gamer: &Gamer,
) -> Result<Option<Vec<u8>>, EngineError> {
    let model = &sim.models[gamer.model];
    if model.chain_id.is_none() || !matches!(model.trained, Some(Trained::Classifier(_))) {
        return Ok(None);
    }
    if gamer.inputs.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let agent = sim.datanets[gamer.datanet].identities[gamer.identity.0 as usize].agent;
    let purchase = Purchase {
        agent,
        model: gamer.model,
        calls: gamer.inputs.len() as u64,
        label: "pay inference (attribution probe)",
    };
    if sim.buy(epoch, &[purchase])?[gamer.model] == 0 {
        return Ok(None);
    }
    let Some(Trained::Classifier(trained)) = &sim.models[gamer.model].trained else {
        unreachable!("checked above");
    };
    let labels = labels_of(
        &trained.model,
        gamer,
        &sim.models[gamer.model].name,
        &sim.device,
    )?;
    let flops = purchase.calls * trained.model.forward_flops_per_example();
    let device = B::name(&sim.device);
    sim.compute.add(
        Work::Serving,
        &StepCost {
            device,
            wall_seconds: 0.0,
            flops,
        },
    );
    Ok(Some(labels))
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
        model: format!("{name} (labels for attribution gaming)"),
        source: e.into(),
    })
}
