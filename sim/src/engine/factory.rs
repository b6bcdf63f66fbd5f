//! The model stages of an epoch, for either kind of model: fine-tuning (Model Factory),
//! serving paid calls (OpenLoRA) and attributing what was served. Each dispatches by model
//! kind to [`super::models`] (classifiers and influence) or [`super::lm`] (language models
//! and suffix-array spans), and keeps the wall-clock time of its kind of work.

use std::collections::BTreeMap;

use burn::tensor::backend::AutodiffBackend;
use olsim_ml::model::{Mlp, StepCost};
use rayon::prelude::*;

use super::data::DatanetState;
use super::epoch::{Attributed, Weights};
use super::lab::Lab;
use super::lm::{attribute_lm, has_documents, lm_world, serve_lm, train_lm};
use super::models::{
    ClassifierJob, ModelState, Served, Trained, attribute, fine_tune_key, serve_classifiers,
    train_classifiers, training_records,
};
use super::{EngineError, Work};
use crate::scenario::{ClassifierAttribution, ModelKind};

/// Fine-tunes every model due in `epoch` on its Datanets' accepted data (classifiers
/// attributed by `method`) and returns the indices of those trained, ascending; a model
/// with no accepted data yet stays untrained.
///
/// What needs the lab mutably comes first (base models pre-trained on first use, the
/// language models' shared world); then the models train concurrently on the rayon pool,
/// reading only shared state, each model as its own job. Each model's result is the
/// same as training it alone whatever the thread count; costs are recorded into the lab in
/// model order, and the training timer counts the stage's wall time, not the sum of the
/// models' times.
pub(super) fn train_due<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    method: ClassifierAttribution,
    models: &mut [ModelState<B>],
    datanets: &[DatanetState],
    epoch: u32,
) -> Result<Vec<usize>, EngineError> {
    let due: Vec<usize> = (0..models.len())
        .filter(|&m| models[m].due(epoch))
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let start = std::time::Instant::now();
    let mut classifiers = Vec::new();
    let mut lms = Vec::new();
    for &m in &due {
        let model = &models[m];
        match (model.kind, &model.mlp) {
            (ModelKind::Classifier, Some(mlp)) => {
                let (sources, records) = training_records(model, datanets);
                if records.is_empty() {
                    continue;
                }
                let base = lab.base.get(lab.seed, mlp, &lab.device)?;
                classifiers.push((
                    format!("{mlp:?}/{:?}", model.lora),
                    base,
                    m,
                    sources,
                    records,
                ));
            }
            (ModelKind::Classifier, None) => unreachable!("classifiers have an MLP config"),
            (ModelKind::LanguageModel, _) => {
                if has_documents(model, datanets) {
                    lm_world(lab, datanets)?;
                    lms.push(m);
                }
            }
        }
    }
    // A fine-tune's key hashes every one of its training records: on the rayon pool.
    let (shared, device): (&[ModelState<B>], _) = (models, &lab.device);
    let classifiers: Vec<_> = classifiers
        .into_par_iter()
        .map(|(group, base, m, sources, records)| {
            let key = fine_tune_key(&base, &shared[m], &records, device);
            let job = ClassifierJob {
                model: m,
                key,
                sources,
                records,
                index: None,
            };
            (group, base, job)
        })
        .collect();
    let mut groups: BTreeMap<String, (Mlp<B>, Vec<ClassifierJob<B>>)> = BTreeMap::new();
    for (group, base, job) in classifiers {
        groups
            .entry(group)
            .or_insert((base, Vec::new()))
            .1
            .push(job);
    }
    // One job per classifier: on the CPU a batched multi-LoRA run is slower than training
    // its adapters one by one (`benches/multi_lora`: 0.94x at 10 adapters, 0.52x at 100),
    // since burn's fixed cost per tensor operation outweighs the shared base product at
    // these sizes. Jobs of several adapters give each the same result (tested), for a
    // backend where sharing the base pays.
    let mut jobs: Vec<Job<B>> = Vec::new();
    for (base, members) in groups.into_values() {
        jobs.extend(
            members
                .into_iter()
                .map(|job| Job::Classifiers(base.clone(), vec![job])),
        );
    }
    jobs.extend(lms.into_iter().map(Job::Lm));
    // A retrained model's old adapter and attribution index (a gradient row per training
    // record) are replaced below: free them before the new ones are built, not after, so
    // the two never take memory at once. Training reads neither. An old classifier whose
    // inputs were the new one's (no data arrived or left since) hands its index on: the
    // new one's would be the same, bit for bit.
    for job in &mut jobs {
        match job {
            Job::Classifiers(_, members) => {
                for member in members {
                    if let Some(Trained::Classifier(old)) = models[member.model].trained.take()
                        && old.key == member.key
                    {
                        member.index = Some(old.index);
                    }
                }
            }
            Job::Lm(m) => models[*m].trained = None,
        }
    }
    let (seed, device, world, memo) = (lab.seed, &lab.device, lab.lm.as_ref(), &*lab.memo);
    let shared: &[ModelState<B>] = models;
    let done = jobs
        .into_par_iter()
        .map(|job| match job {
            Job::Classifiers(base, jobs) => {
                let members: Vec<usize> = jobs.iter().map(|j| j.model).collect();
                let trained = train_classifiers(&base, method, shared, jobs, device, memo)?;
                Ok(members
                    .into_iter()
                    .zip(trained)
                    .map(|(m, (trained, training, precompute))| Done {
                        model: m,
                        trained: Trained::Classifier(Box::new(trained)),
                        costs: vec![
                            (Work::Training, ModelKind::Classifier, training),
                            (Work::Attribution, ModelKind::Classifier, precompute),
                        ],
                    })
                    .collect())
            }
            Job::Lm(m) => {
                let world = world.expect("built before the jobs");
                let (trained, cost) = train_lm(world, seed, device, &shared[m], datanets, memo)?;
                Ok(vec![Done {
                    model: m,
                    trained: Trained::Lm(Box::new(trained)),
                    costs: vec![(Work::Training, ModelKind::LanguageModel, cost)],
                }])
            }
        })
        .collect::<Result<Vec<Vec<Done<B>>>, EngineError>>()?;
    let mut done: Vec<Done<B>> = done.into_iter().flatten().collect();
    done.sort_by_key(|d| d.model);
    let mut trained = Vec::with_capacity(done.len());
    for d in done {
        for (work, kind, cost) in &d.costs {
            lab.compute.add(*work, *kind, cost);
        }
        let model = &mut models[d.model];
        model.trained = Some(d.trained);
        model.version += 1;
        trained.push(d.model);
    }
    lab.timers.add(Work::Training, start);
    Ok(trained)
}

/// Training work that runs on its own: classifiers over one shared base (the engine makes
/// one job per classifier, see [`train_due`]), or one language model.
enum Job<B: AutodiffBackend> {
    Classifiers(Mlp<B>, Vec<ClassifierJob<B>>),
    Lm(usize),
}

/// A model trained this stage and the compute it took.
struct Done<B: AutodiffBackend> {
    model: usize,
    trained: Trained<B>,
    costs: Vec<(Work, ModelKind, StepCost)>,
}

/// Attribution weight per contributing identity `(datanet, contributor)` of everything
/// `model` served this epoch (every output: no sampling): summed influence (classifiers;
/// may be negative) or summed span weights (language models, never negative), with the sum
/// of each item's positive part.
pub(super) fn attribution_weights<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    model: &ModelState<B>,
    datanets: &[DatanetState],
    served: &Served,
) -> Result<Attributed, EngineError> {
    let start = std::time::Instant::now();
    let mut weights = Attributed::default();
    match served {
        Served::Nothing => {}
        Served::Inputs(inputs) => {
            for (n, item, s) in attribute(lab, model, inputs)? {
                let author = (n, datanets[n].item_author(item));
                *weights.net.entry(author).or_default() += s;
                *weights.positive_items.entry(author).or_default() += s.max(0.0);
                *weights.squares.entry(author).or_default() += s * s;
            }
        }
        Served::Outputs(outputs) => {
            let samples = attribute_lm(lab, model, outputs);
            let mut spans = Weights::new();
            for (who, w) in samples.iter().flatten() {
                *spans.entry(*who).or_default() += w;
            }
            weights = Attributed {
                net: spans.clone(),
                positive_items: spans,
                squares: Weights::new(),
                samples,
            };
        }
    }
    lab.timers.add(Work::Attribution, start);
    Ok(weights)
}

/// Serves `calls[m]` inference calls of every trained model and returns what each served:
/// classifiers' inputs, language models' generated tokens (both through OpenLoRA).
pub(super) fn serve<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    models: &[ModelState<B>],
    datanets: &[DatanetState],
    epoch: u32,
    calls: &[u64],
) -> Result<Vec<Served>, EngineError> {
    let start = std::time::Instant::now();
    let mut served: Vec<Served> = models.iter().map(|_| Served::Nothing).collect();
    for (m, outputs) in serve_lm(lab, models, datanets, epoch, calls)? {
        served[m] = Served::Outputs(outputs);
    }
    serve_classifiers(lab, models, epoch, calls, &mut served)?;
    lab.timers.add(Work::Serving, start);
    lab.served += served.iter().map(|s| s.len() as u64).sum::<u64>();
    Ok(served)
}
