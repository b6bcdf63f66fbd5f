//! The model stages of an epoch, for either kind of model: fine-tuning (Model Factory),
//! serving paid calls (OpenLoRA) and attributing what was served. Each dispatches by model
//! kind to [`super::models`] (classifiers and influence) or [`super::lm`] (language models
//! and suffix-array spans), and keeps the wall-clock time of its kind of work.

use burn::tensor::backend::AutodiffBackend;

use super::data::DatanetState;
use super::epoch::{Attributed, Weights};
use super::lab::Lab;
use super::lm::{attribute_lm, serve_lm, train_lm};
use super::models::{ModelState, Served, Trained, attribute, serve_classifiers, train_classifier};
use super::{EngineError, Work};
use crate::scenario::{ClassifierAttribution, ModelKind};

/// Fine-tunes `model` on its Datanets' accepted data (classifiers attributed by `method`);
/// `false` when it has no accepted data yet and stays untrained.
pub(super) fn train_model<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    method: ClassifierAttribution,
    model: &mut ModelState<B>,
    datanets: &[DatanetState],
) -> Result<bool, EngineError> {
    let start = std::time::Instant::now();
    let trained = match model.kind {
        ModelKind::Classifier => train_classifier(lab, method, model, datanets)?
            .map(|t| Trained::Classifier(Box::new(t))),
        ModelKind::LanguageModel => {
            train_lm(lab, model, datanets)?.map(|t| Trained::Lm(Box::new(t)))
        }
    };
    lab.timers.add(Work::Training, start);
    let Some(trained) = trained else {
        return Ok(false);
    };
    model.trained = Some(trained);
    model.version += 1;
    Ok(true)
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
            let spans = attribute_lm(lab, model, outputs);
            weights = Attributed {
                net: spans.clone(),
                positive_items: spans,
                squares: Weights::new(),
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
