//! `attribution_gaming`: a contributor crafts data to win attribution rather than to teach
//! the model.
//!
//! **Classifiers.** Influence attribution credits a training record by how well its loss
//! gradient lines up with the gradients of served outputs. Served classifier inputs follow
//! the marketplace's public query distribution ([`query_input`]), while an honest
//! contributor samples only its own corner of feature space. A gamer replaces `rate` of its
//! records by inputs drawn from the query distribution, labelled with what the model
//! predicts there: records that sit where outputs concentrate and agree with the model's own
//! outputs.
//!
//! **Language models.** Span attribution splits each matched span's weight equally over the
//! span's occurrences in the training corpus. A gamer sends the prompts users send (the
//! opening words of the Datanet's documents), takes what the model generates, and replaces
//! `rate` of its documents by documents stuffed with those generations: every crafted
//! document holds every generated span, so the gamer holds many of the occurrences of the
//! spans outputs are likely to reproduce.
//!
//! Either way it learns the model's outputs as any user would: when the model it games is
//! live, it pays `InferenceMarket.payInference` for one call per crafted item (a cost in the
//! report) and takes the outputs; before that, it uses the public base model. It then submits
//! through the same contribute and review path as everyone.
//!
//! Ground truth stays honest: a crafted record is clean exactly when its label is the true
//! label; a stuffed document teaches nothing new (it repeats the model's own outputs) and is
//! never clean. Reviewers and the ground-truth value see what the data is worth.

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, RecordKind, document_hash, record_hash};
use olsim_ml::model::{Classifier, StepCost, predict};
use rand::RngExt;

use super::{Attack, Budget, Cast, Moment};
use crate::engine::economy::{self, Purchase};
use crate::engine::epoch::{EpochState, Stage};
use crate::engine::lm::generate_words;
use crate::engine::models::{Trained, query_input};
use crate::engine::{EngineError, Sim, Work};
use crate::scenario::{AttackKind, ModelKind, Task};

/// One gamer's plan, made before epoch 0: which of its items it replaces (and, for a
/// classifier, by which inputs).
#[derive(Clone, Debug)]
struct Gamer {
    /// Its Datanet.
    datanet: usize,
    /// The Datanet's task: records for a classifier, or documents for a language model.
    task: Task,
    /// Its identity there.
    identity: ContributorId,
    /// The `[[models]]` entry whose outputs it games ([`crate::scenario::Scenario::gamed_model`]).
    model: usize,
    /// Items it replaces (a seeded choice of `round(rate * n)` of its `n` records or
    /// documents).
    items: Vec<u32>,
    /// The crafted inputs, one per replaced record (none on a text Datanet).
    inputs: Vec<Vec<f32>>,
}

/// The scenario's attribution gamers.
#[derive(Default)]
pub struct Gamers(Vec<Gamer>);

impl<B: AutodiffBackend> Attack<B> for Gamers {
    /// Plans every gamer's crafted items (validation makes sure a model of the Datanet's task
    /// trains on each gamed Datanet).
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
                        "datanets[{n}] `{}`: attribution gamers need a model trained on it",
                        net.name
                    ))
                })?;
                let attacker = &scenario.attackers[group.attacker];
                let dim = scenario.datanets[n].domain.dim();
                let task = net.task;
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
                    let inputs = match task {
                        Task::Classification => {
                            items.iter().map(|_| query_input(&mut rng, dim)).collect()
                        }
                        Task::Text => Vec::new(),
                    };
                    self.0.push(Gamer {
                        datanet: n,
                        task,
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

    /// One call per crafted item at the gamed model's price, besides the stake every
    /// contributor gets.
    fn budgets(&self, sim: &Sim<B>) -> Result<Vec<Budget>, EngineError> {
        let mut out = Vec::new();
        for g in &self.0 {
            let probes = alloy_primitives::U256::from(g.items.len() as u64);
            let agent = sim.datanets[g.datanet].identities[g.identity.0 as usize].agent;
            let price = sim.models[g.model].price_wei;
            out.push((agent, probes * price, sim.net.deployment.market));
        }
        Ok(out)
    }

    /// Gamers who contribute this epoch craft their items, just before the arrivals submit.
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
            match gamer.task {
                Task::Classification => craft_records(sim, epoch.number, gamer)?,
                Task::Text => craft_documents(sim, epoch.number, gamer)?,
            }
        }
        Ok(())
    }
}

/// Pays for one call per crafted item on the gamed model, when it is live (registered and
/// trained); whether the payment went through. The live model answers the paid calls here,
/// at arrival, outside the serving stage: they count as served outputs, not attributed.
fn pay_probes<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    epoch: u32,
    gamer: &Gamer,
) -> Result<bool, EngineError> {
    let model = &sim.models[gamer.model];
    if model.chain_id.is_none() || model.trained.is_none() || gamer.items.is_empty() {
        return Ok(false);
    }
    let agent = sim.datanets[gamer.datanet].identities[gamer.identity.0 as usize].agent;
    let purchase = Purchase {
        agent,
        model: gamer.model,
        calls: gamer.items.len() as u64,
        label: "pay inference (attribution probe)",
    };
    let paid = economy::buy(&mut sim.net, &sim.models, epoch, &[purchase])?[gamer.model];
    sim.models[gamer.model].outputs.served += paid;
    Ok(paid > 0)
}

/// Labels the gamer's crafted inputs as the model predicts (the live model, paid for, or
/// the base) and writes them into its records.
fn craft_records<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    epoch: u32,
    gamer: &Gamer,
) -> Result<(), EngineError> {
    let name = sim.models[gamer.model].name.clone();
    let labels = match (
        pay_probes(sim, epoch, gamer)?,
        &sim.models[gamer.model].trained,
    ) {
        (true, Some(Trained::Classifier(trained))) => {
            let labels = labels_of(&trained.model, gamer, &name, &sim.lab.device)?;
            let cost = StepCost::new(
                B::name(&sim.lab.device),
                0.0,
                trained.model.forward_kernels(gamer.items.len()),
            );
            sim.lab
                .compute
                .add(Work::Serving, ModelKind::Classifier, &cost);
            labels
        }
        _ => {
            let mlp = sim
                .scenario
                .mlp_config(gamer.model)
                .map_err(|e| EngineError::Scenario(e.to_string()))?;
            let base = sim.lab.base.get(sim.lab.seed, &mlp, &sim.lab.device)?;
            labels_of(&base, gamer, &name, &sim.lab.device)?
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
    Ok(())
}

/// Sends the model one user prompt per crafted document (the live model, paid for, or the
/// base), and rewrites each crafted document as every generation, starting from its own
/// (so each holds every generated span and no two are the same).
fn craft_documents<B: AutodiffBackend>(
    sim: &mut Sim<B>,
    epoch: u32,
    gamer: &Gamer,
) -> Result<(), EngineError> {
    let net = &sim.datanets[gamer.datanet];
    let mut rng = stream(
        sim.lab.seed,
        &format!(
            "engine/attribution_gaming/prompts/{}/{}/{epoch}",
            net.name, gamer.identity.0
        ),
    );
    let prompts: Vec<(usize, u32)> = gamer
        .items
        .iter()
        .map(|_| {
            let doc = rng.random_range(0..net.data.documents.len()) as u32;
            (gamer.datanet, doc)
        })
        .collect();
    let paid = pay_probes(sim, epoch, gamer)?;
    let model = &sim.models[gamer.model];
    let adapter = match (&model.trained, paid) {
        (Some(Trained::Lm(t)), true) => Some(&t.adapter),
        _ => None,
    };
    let seed = sim.lab.seed ^ u64::from(epoch);
    let (generated, cost) = generate_words(
        &mut sim.lab,
        &sim.datanets,
        &model.name,
        adapter,
        &prompts,
        seed,
    )?;
    if paid {
        sim.lab
            .compute
            .add(Work::Serving, ModelKind::LanguageModel, &cost);
    }
    let net = &mut sim.datanets[gamer.datanet];
    for (j, &d) in gamer.items.iter().enumerate() {
        let words: Vec<&str> = generated[j..]
            .iter()
            .chain(&generated[..j])
            .map(String::as_str)
            .filter(|g| !g.is_empty())
            .collect();
        if words.is_empty() {
            continue;
        }
        let tokens = net.data.vocab.encode(&words.join(" "));
        let text = net.data.vocab.render(&tokens);
        let doc = &mut net.data.documents[d as usize];
        doc.tokens = tokens;
        doc.clean = false;
        doc.kind = RecordKind::Copy;
        doc.copy_of = None;
        doc.hash = document_hash(&text);
    }
    Ok(())
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
