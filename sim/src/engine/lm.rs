//! Language models inside a run: one tokenizer and one pre-trained base (cached on disk) for
//! every language model of the run, a LoRA adapter per model fine-tuned on its Datanets'
//! accepted documents, OpenLoRA serving of the paid calls (heterogeneous batched generation), and
//! suffix-array span matching of the generated text against the training corpus.

use burn::tensor::backend::AutodiffBackend;
use std::collections::BTreeMap;

use olsim_ml::data::rng::stream;
use olsim_ml::data::{ContributorId, Domain, PopulationSpec, TextParams};
use olsim_ml::lm::{
    BOS, GenConfig, GenRequest, LmAdapterWeights, LmConfig, SPECIALS, Tokenizer, TokenizerConfig,
    default_cache_dir, document_texts, finetune, generate_batch, generic_datanets, pretrain,
};
use olsim_ml::model::cost::Kernels;
use olsim_ml::model::{StepCost, TrainConfig};
use olsim_ml::serve::{LmRequest, LmServe};
use olsim_ml::suffix::IndexBuilder;
use rand::RngExt;

use super::data::DatanetState;
use super::epoch::Weights;
use super::lab::{Infer, Lab, LmWorld};
use super::memo::{KeyBytes, TrainingMemo};
use super::models::{ModelState, Trained, TrainedLm, openlora_server};
use super::{EngineError, MlError, Work};
use crate::scenario::{ModelKind, Task};

/// Generations actually decoded per language model and epoch; further paid calls are
/// counted and their compute modelled from the mean kernels of the decoded ones (CPU decoding of
/// every call would dominate a run without changing the attribution shares).
pub const GENERATED_PER_EPOCH: usize = 32;

/// Passes of base pre-training over the generic mix (once per seed; cached on disk).
pub const PRETRAIN_EPOCHS: usize = 30;

/// Tokens per generation.
pub const NEW_TOKENS: usize = 12;

/// Prompt words taken from a Datanet document.
pub const PROMPT_WORDS: usize = 4;

/// Most accepted documents one fine-tuning run trains on: a uniform sample (seeded per
/// model and version) when there are more. The suffix index always covers every accepted
/// document, so span attribution reaches contributors outside the sample too.
pub const FINETUNE_SAMPLE: usize = 2_000;

/// Shortest matched span that earns attribution, in tokens.
pub const MIN_SPAN: usize = 3;

/// The token sequences one model generated.
pub type Generated = Vec<Vec<u32>>;

/// The shared tokenizer and base, built on first use: the vocabulary covers a generic
/// multi-domain mix and every text Datanet of the scenario; the base is pre-trained on
/// the generic mix only (and cached on disk by `olsim_ml::lm::pretrain`).
pub(super) fn lm_world<'a, B: AutodiffBackend>(
    lab: &'a mut Lab<B>,
    datanets: &[DatanetState],
) -> Result<&'a LmWorld<B>, EngineError> {
    if lab.lm.is_none() {
        let fail = |source: MlError| EngineError::Model {
            model: "language-model base".into(),
            source,
        };
        let population = PopulationSpec {
            honest: 2,
            label_flip: 0,
            backdoor: 0,
            spammer: 0,
            copycat: 0,
            documents: (5, 6),
            ..PopulationSpec::default()
        };
        let text = TextParams {
            sentences: (1, 2),
            private_facts: 1,
            ..TextParams::default()
        };
        let generic = generic_datanets(lab.seed ^ 0x1a, &Domain::ALL, &population, &text)
            .map_err(|e| fail(e.into()))?;
        let generic_texts = document_texts(&generic);
        let mut texts = generic_texts.clone();
        for net in datanets.iter().filter(|n| n.task == Task::Text) {
            texts.extend(document_texts(std::slice::from_ref(&net.data)));
        }
        let tokenizer = Tokenizer::build(
            texts.iter().map(String::as_str),
            &TokenizerConfig::default(),
        )
        .map_err(|e| fail(e.into()))?;
        let config = LmConfig {
            d_model: 32,
            heads: 2,
            d_ff: 64,
            ..LmConfig::small(tokenizer.len())
        };
        let docs: Vec<Vec<u32>> = generic_texts
            .iter()
            .map(|t| tokenizer.encode_document(t))
            .collect();
        let train = TrainConfig {
            epochs: PRETRAIN_EPOCHS,
            batch_size: 16,
            learning_rate: 1e-2,
            seed: lab.seed,
        };
        let pre = pretrain::<B>(
            &tokenizer,
            &docs,
            &config,
            &train,
            lab.seed,
            &default_cache_dir(),
            &lab.device,
        )
        .map_err(|e| fail(e.into()))?;
        lab.lm = Some(LmWorld {
            tokenizer,
            base: pre.model,
        });
    }
    Ok(lab.lm.as_ref().expect("built above"))
}

/// Whether language model `model` has accepted documents to fine-tune on.
pub(super) fn has_documents<B: AutodiffBackend>(
    model: &ModelState<B>,
    datanets: &[DatanetState],
) -> bool {
    model
        .datanets
        .iter()
        .any(|&n| !datanets[n].accepted.is_empty())
}

/// Fine-tunes language model `model` over `world`'s base on its Datanets' accepted
/// documents (a sample of them past [`FINETUNE_SAMPLE`]) and indexes them for span
/// attribution; with the fine-tuning's cost. A fine-tune whose inputs `memo` has seen is
/// taken from it. Only reads shared state, so models train concurrently. The model must
/// have documents ([`has_documents`]).
pub(super) fn train_lm<B: AutodiffBackend>(
    world: &LmWorld<B>,
    seed: u64,
    device: &B::Device,
    model: &ModelState<B>,
    datanets: &[DatanetState],
    memo: &TrainingMemo<B>,
) -> Result<(TrainedLm, StepCost), EngineError> {
    let fail = |source: MlError| EngineError::Model {
        model: model.name.clone(),
        source,
    };
    let mut framed = Vec::new();
    let mut index = IndexBuilder::new();
    let mut owners: Vec<(usize, ContributorId)> = Vec::new();
    let mut owner_ids: BTreeMap<(usize, ContributorId), u32> = BTreeMap::new();
    let mut documents: Vec<u64> = Vec::new();
    for &n in &model.datanets {
        let net = &datanets[n];
        for &d in &net.accepted {
            let doc = &net.data.documents[d as usize];
            let text = net.data.doc_text(doc);
            framed.push(world.tokenizer.encode_document(&text));
            let owner = *owner_ids.entry((n, doc.author)).or_insert_with(|| {
                owners.push((n, doc.author));
                documents.push(0);
                (owners.len() - 1) as u32
            });
            documents[owner as usize] += 1;
            index
                .add_document(
                    framed.len() as u32 - 1,
                    owner,
                    &world.tokenizer.encode(&text),
                )
                .map_err(|e| fail(e.into()))?;
        }
    }
    if framed.len() > FINETUNE_SAMPLE {
        let mut rng = stream(
            seed,
            &format!("engine/lm-sample/{}/{}", model.name, model.version),
        );
        let len = framed.len();
        for i in 0..FINETUNE_SAMPLE {
            framed.swap(i, rng.random_range(i..len));
        }
        framed.truncate(FINETUNE_SAMPLE);
    }
    let mut key = KeyBytes::new::<B>("lm", device, &model.lora, &model.training);
    key.weights(&world.base);
    key.documents(&framed);
    let tuned = memo
        .lm(key.finish(), || {
            finetune::<B>(
                &world.base,
                &framed,
                &model.lora,
                &model.training,
                model.training.seed,
                device,
            )
        })
        .map_err(|e| fail(e.into()))?;
    let index = index.build().map_err(|e| fail(e.into()))?;
    let trained = TrainedLm {
        adapter: tuned.adapter,
        index,
        owners,
        documents,
    };
    Ok((trained, tuned.report.total))
}

/// Decodes up to [`GENERATED_PER_EPOCH`] of each trained language model's `calls`
/// through OpenLoRA: one server per LoRA shape over the shared base, each request
/// served with its own model's adapter in heterogeneous batches. Returns the generated
/// tokens per model.
pub(super) fn serve_lm<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    models: &[ModelState<B>],
    datanets: &[DatanetState],
    epoch: u32,
    calls: &[u64],
) -> Result<Vec<(usize, Generated)>, EngineError> {
    let live: Vec<usize> = (0..models.len())
        .filter(|&m| matches!(models[m].trained, Some(Trained::Lm(_))) && calls[m] > 0)
        .collect();
    let Some(world) = lab.lm.as_ref().filter(|_| !live.is_empty()) else {
        return Ok(Vec::new());
    };
    let device = lab.device.clone();
    let generation = GenConfig {
        max_new_tokens: NEW_TOKENS,
        seed: lab.seed ^ u64::from(epoch),
        ..GenConfig::default()
    };
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for &m in &live {
        groups
            .entry(format!("{:?}", models[m].lora))
            .or_default()
            .push(m);
    }
    let mut out: BTreeMap<usize, Generated> = BTreeMap::new();
    let (mut decoded, mut decoded_work) = (0u64, Kernels::default());
    for members in groups.values() {
        let first = &models[members[0]];
        let fail = |source: MlError| EngineError::Model {
            model: first.name.clone(),
            source,
        };
        let serve = LmServe::<Infer<B>>::new(&world.base, &first.lora, generation.clone(), &device)
            .map_err(|e| fail(e.into()))?;
        let mut server = openlora_server(serve, members, GENERATED_PER_EPOCH, |store, m| {
            let Some(Trained::Lm(t)) = &models[m].trained else {
                unreachable!("filtered above")
            };
            store.insert_lm(m as u64, &t.adapter)
        })
        .map_err(|e| fail(e.into()))?;
        // Prompts: the opening words of documents of the model's Datanets, drawn per
        // epoch; request ids number the epoch's prompts across models.
        for &m in members {
            let model = &models[m];
            let mut rng = stream(lab.seed, &format!("engine/prompts/{}/{epoch}", model.name));
            for _ in 0..(calls[m] as usize).min(GENERATED_PER_EPOCH) {
                let net = &datanets[model.datanets[rng.random_range(0..model.datanets.len())]];
                let doc = rng.random_range(0..net.data.documents.len()) as u32;
                let request = LmRequest {
                    id: decoded,
                    prompt: prompt_of(&world.tokenizer, net, doc),
                };
                server
                    .submit(m as u64, request)
                    .map_err(|e| fail(e.into()))?;
                decoded += 1;
            }
        }
        while let Some(batch) = server.step().map_err(|e| fail(e.into()))? {
            lab.compute
                .add_batch(ModelKind::LanguageModel, &batch.cost, &batch.responses);
            decoded_work += batch.cost.kernels();
            for r in batch.responses {
                out.entry(r.adapter as usize)
                    .or_default()
                    .push(r.output.tokens);
            }
        }
    }
    // Calls beyond the decoded ones: compute modelled from the decoded ones' mean.
    let per_call = decoded_work.per(decoded);
    let skipped: u64 = live
        .iter()
        .map(|&m| calls[m].saturating_sub(GENERATED_PER_EPOCH as u64))
        .sum();
    if skipped > 0 {
        lab.compute.add_modelled(
            Work::Serving,
            ModelKind::LanguageModel,
            "modelled (not decoded)",
            per_call.times(skipped as usize),
        );
    }
    Ok(out.into_iter().collect())
}

/// Span attribution of language model `model`'s generations: each maximal span of at least
/// [`MIN_SPAN`] tokens found in its training corpus credits the documents' contributors.
/// One map of weights per generation.
pub(super) fn attribute_lm<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    model: &ModelState<B>,
    outputs: &[Vec<u32>],
) -> Vec<Weights> {
    let start = std::time::Instant::now();
    let Some(Trained::Lm(t)) = &model.trained else {
        return Vec::new();
    };
    let mut weights = Vec::with_capacity(outputs.len());
    for output in outputs {
        let mut one = Weights::new();
        for (owner, w) in t.index.attribute(output, MIN_SPAN) {
            *one.entry(t.owners[owner as usize]).or_default() += w;
        }
        weights.push(one);
    }
    lab.attributed += outputs.len() as u64;
    lab.compute.add(
        Work::Attribution,
        ModelKind::LanguageModel,
        // Host work: no FLOPs or kernels counted.
        &StepCost::new(
            "suffix array (cpu)",
            start.elapsed().as_secs_f64(),
            Kernels::default(),
        ),
    );
    weights
}

/// What a user asks a language model trained on `net`: [`BOS`] and the first
/// [`PROMPT_WORDS`] words of its document `doc`.
fn prompt_of(tokenizer: &Tokenizer, net: &DatanetState, doc: u32) -> Vec<u32> {
    let words = tokenizer.encode(&net.data.doc_text(&net.data.documents[doc as usize]));
    let mut prompt = vec![BOS];
    prompt.extend(words.iter().take(PROMPT_WORDS));
    prompt
}

/// What a language model with `adapter` (or the shared base, with `None`) generates for
/// the prompts users send from documents `docs` (`(datanet, document)`, the same prompts
/// and decoding as serving), for model `name`. Builds the shared base on first use.
/// Returns each generation's words (special tokens left out) and the decoding's cost.
pub(super) fn generate_words<B: AutodiffBackend>(
    lab: &mut Lab<B>,
    datanets: &[DatanetState],
    name: &str,
    adapter: Option<&LmAdapterWeights>,
    docs: &[(usize, u32)],
    seed: u64,
) -> Result<(Vec<String>, StepCost), EngineError> {
    let fail = |source: MlError| EngineError::Model {
        model: name.to_string(),
        source,
    };
    let device = lab.device.clone();
    if docs.is_empty() {
        let nothing = StepCost::new(B::name(&device), 0.0, Kernels::default());
        return Ok((Vec::new(), nothing));
    }
    let world = lm_world(lab, datanets)?;
    let adapter = adapter
        .map(|a| a.to_device::<Infer<B>>(&world.base.config(), &device))
        .transpose()
        .map_err(|e| fail(e.into()))?;
    let requests: Vec<GenRequest<'_, Infer<B>>> = docs
        .iter()
        .enumerate()
        .map(|(i, &(n, doc))| GenRequest {
            id: i as u64,
            prompt: prompt_of(&world.tokenizer, &datanets[n], doc),
            adapter: adapter.as_ref(),
        })
        .collect();
    let config = GenConfig {
        max_new_tokens: NEW_TOKENS,
        seed,
        ..GenConfig::default()
    };
    let batch =
        generate_batch(&world.base, &requests, &config, &device).map_err(|e| fail(e.into()))?;
    let words = batch
        .generations
        .iter()
        .map(|g| {
            let plain: Vec<u32> = g
                .tokens
                .iter()
                .copied()
                .filter(|&t| t as usize >= SPECIALS.len())
                .collect();
            world.tokenizer.decode(&plain)
        })
        .collect();
    Ok((words, batch.cost))
}
