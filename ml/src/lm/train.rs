//! Next-token training: token windows of documents, cross-entropy with Adam, pre-training
//! with an on-disk cache, LoRA fine-tuning and held-out perplexity.

use std::path::{Path, PathBuf};
use std::time::Instant;

use alloy_primitives::{B256, keccak256};
use burn::module::{AutodiffModule, Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use rand::RngExt;

use super::LmError;
use super::adapter::LmAdapterWeights;
use super::cost::{adapter_shapes, train_step_kernels};
use super::model::{Lm, LmConfig};
use super::tokenizer::{PAD, Tokenizer};
use crate::data::rng::stream;
use crate::model::cost::Kernels;
use crate::model::{LoraConfig, ParamCounts, StepCost, TrainConfig, TrainReport};

/// One training window: `input[i]` predicts `target[i]`.
#[derive(Clone, Debug, PartialEq)]
struct Window {
    input: Vec<u32>,
    target: Vec<u32>,
}

/// Cuts every document (already framed with BOS/EOS) into windows of at most `context`
/// inputs; consecutive windows overlap by one token so every next-token pair is trained
/// exactly once. No window crosses a document boundary.
fn windows(docs: &[Vec<u32>], context: usize) -> Vec<Window> {
    let mut out = Vec::new();
    for doc in docs {
        let mut start = 0;
        while start + 1 < doc.len() {
            let end = (start + context + 1).min(doc.len());
            out.push(Window {
                input: doc[start..end - 1].to_vec(),
                target: doc[start + 1..end].to_vec(),
            });
            start = end - 1;
        }
    }
    out
}

/// Checks every token id is inside the model's vocabulary.
fn check_docs(docs: &[Vec<u32>], vocab: usize) -> Result<(), LmError> {
    for (index, doc) in docs.iter().enumerate() {
        if let Some(&t) = doc.iter().find(|&&t| t as usize >= vocab) {
            return Err(LmError::BadDocument {
                index,
                what: format!("token id {t} is outside the model's vocabulary of {vocab}"),
            });
        }
    }
    Ok(())
}

/// Summed negative log-likelihood of the batch's real (non-pad) targets, and their count.
fn batch_nll<B: Backend>(
    model: &Lm<B>,
    batch: &[&Window],
    device: &B::Device,
) -> (Tensor<B, 1>, usize) {
    let len = batch.iter().map(|w| w.input.len()).max().unwrap_or(0);
    let rows = batch.len();
    let mut input = Vec::with_capacity(rows * len);
    let mut target = Vec::with_capacity(rows * len);
    let mut weight = Vec::with_capacity(rows * len);
    for w in batch {
        for i in 0..len {
            input.push(i64::from(*w.input.get(i).unwrap_or(&PAD)));
            let t = w.target.get(i).copied();
            target.push(i64::from(t.unwrap_or(PAD)));
            weight.push(if t.is_some() { 1.0f32 } else { 0.0 });
        }
    }
    let count = weight.iter().filter(|&&w| w > 0.0).count();
    let input = Tensor::<B, 2, Int>::from_data(TensorData::new(input, [rows, len]), device);
    let target = Tensor::<B, 3, Int>::from_data(TensorData::new(target, [rows, len, 1]), device);
    let weight = Tensor::<B, 1>::from_data(TensorData::new(weight, [rows * len]), device);
    // Over the vocabulary axis of the `[rows, len, vocab]` logits as they come: flattening
    // them first copies the whole tensor on burn's CPU backend, and its gradient again.
    let logp = log_softmax(model.forward(input), 2);
    let picked = logp.gather(2, target).reshape([rows * len]);
    ((picked * weight).sum().neg(), count)
}

/// Parts a batch's rows are split into for the gradient: each part's gradient is computed
/// on its own (concurrently where the rayon pool has a free thread) and the parts' are
/// summed in order. The split is fixed, not the thread count's, so the sum, and every
/// trained weight, is the same on one thread or many.
const GRADIENT_PARTS: usize = 2;

/// The summed negative log-likelihood of `batch` (as `f64`), its number of real targets,
/// and the gradient of its mean over those targets, computed in [`GRADIENT_PARTS`] parts
/// of consecutive rows.
fn batch_gradients<B: AutodiffBackend>(
    model: &Lm<B>,
    batch: &[&Window],
    device: &B::Device,
) -> Result<(f64, usize, GradientsParams), LmError> {
    // Every target of every window is real (a window's input and target have one length).
    let count = batch.iter().map(|w| w.target.len()).sum::<usize>();
    let part = |rows: &[&Window], model: &Lm<B>| {
        let (nll, _) = batch_nll(model, rows, device);
        let value = scalar(nll.clone())?;
        let grads = nll.div_scalar(count as f32).backward();
        Ok::<_, LmError>((value, GradientsParams::from_grads(grads, model)))
    };
    let rows = batch.len().div_ceil(GRADIENT_PARTS);
    let (first, rest) = batch.split_at(rows);
    if rest.is_empty() {
        let (nll, grads) = part(first, model)?;
        return Ok((nll, count, grads));
    }
    // The second part runs on its own copy of the trainable parameters, so its autodiff
    // graph shares no node with the first's and the two backward passes do not contend.
    let copy = own_graph(model.clone());
    let (a, b) = rayon::join(|| part(first, model), || part(rest, &copy));
    let ((nll_a, mut grads_a), (nll_b, mut grads_b)) = (a?, b?);
    let mut sum = GradientSum {
        parts: (&mut grads_a, &mut grads_b),
        total: GradientsParams::new(),
    };
    model.visit(&mut sum);
    Ok((nll_a + nll_b, count, sum.total))
}

/// `model` with every parameter detached from its autodiff node: same values, same
/// parameter ids, and (burn's `detach` keeps `require_grad`) each trainable one a fresh leaf.
fn own_graph<B: AutodiffBackend>(model: Lm<B>) -> Lm<B> {
    struct Detach;
    impl<B: AutodiffBackend> ModuleMapper<B> for Detach {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            param.map(|tensor| tensor.detach())
        }
    }
    model.map(&mut Detach)
}

/// Adds two parts' gradients parameter by parameter, first part first. Both parts train the
/// same parameters, so a gradient in one part only is a bug, not a case to sum around.
struct GradientSum<'a> {
    parts: (&'a mut GradientsParams, &'a mut GradientsParams),
    total: GradientsParams,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for GradientSum<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let first = self.parts.0.remove::<B::InnerBackend, D>(param.id);
        let second = self.parts.1.remove::<B::InnerBackend, D>(param.id);
        match (first, second) {
            (Some(a), Some(b)) => self.total.register::<B::InnerBackend, D>(param.id, a + b),
            (None, None) => {}
            _ => panic!("parameter {} took a gradient in one part only", param.id),
        }
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> Result<f64, LmError> {
    let v = t
        .into_data()
        .convert::<f32>()
        .to_vec::<f32>()
        .map_err(|e| LmError::Train(format!("reading loss: {e:?}")))?;
    Ok(f64::from(v[0]))
}

/// Adam over shuffled mini-batches of the windows of `docs` (order from the stream
/// `shuffle` of `config.seed`); only parameters that require gradients change.
fn train_windows<B: AutodiffBackend>(
    model: Lm<B>,
    docs: &[Vec<u32>],
    config: &TrainConfig,
    shuffle: &str,
    device: &B::Device,
) -> Result<(Lm<B>, TrainReport), LmError> {
    config.validate().map_err(LmError::Train)?;
    let lm = model.config();
    check_docs(docs, lm.vocab)?;
    let windows = windows(docs, lm.context);
    if windows.is_empty() {
        return Err(LmError::Train(
            "no training windows: give at least one document of two or more tokens".into(),
        ));
    }
    let shapes = adapter_shapes(&lm, &model.adapter_ranks());
    let trainable = if shapes.is_empty() {
        model.num_params() as u64
    } else {
        model.parameter_counts().trainable
    };

    let mut optim = AdamConfig::new().init::<B, Lm<B>>();
    let mut rng = stream(config.seed, shuffle);
    let mut order: Vec<usize> = (0..windows.len()).collect();
    let mut model = model;
    let (mut steps, mut work) = (0usize, Kernels::default());
    let mut epoch_loss = Vec::with_capacity(config.epochs);
    let start = Instant::now();
    for _ in 0..config.epochs {
        for i in (1..order.len()).rev() {
            let j = rng.random_range(0..=i);
            order.swap(i, j);
        }
        let (mut sum, mut tokens) = (0.0f64, 0usize);
        for chunk in order.chunks(config.batch_size) {
            let batch: Vec<&Window> = chunk.iter().map(|&i| &windows[i]).collect();
            let (nll, count, grads) = batch_gradients(&model, &batch, device)?;
            sum += nll;
            tokens += count;
            let len = batch.iter().map(|w| w.input.len()).max().unwrap_or(0);
            work += train_step_kernels(&lm, batch.len(), len, &shapes, trainable);
            model = optim.step(config.learning_rate, model, grads);
            steps += 1;
        }
        epoch_loss.push((sum / tokens as f64) as f32);
    }
    B::sync(device).map_err(|e| LmError::Train(format!("device sync: {e:?}")))?;
    let wall = start.elapsed().as_secs_f64();
    let name = B::name(device);
    let report = TrainReport {
        steps,
        epoch_loss,
        step: StepCost::new(name.clone(), wall / steps as f64, work.per(steps as u64)),
        total: StepCost::new(name, wall, work),
    };
    Ok((model, report))
}

/// Held-out perplexity `exp(mean NLL)` of `model` over every next-token pair of `docs`
/// (framed with BOS/EOS), evaluated in batches of `batch_size` windows.
pub fn perplexity<B: Backend>(
    model: &Lm<B>,
    docs: &[Vec<u32>],
    batch_size: usize,
    device: &B::Device,
) -> Result<f64, LmError> {
    let lm = model.config();
    check_docs(docs, lm.vocab)?;
    let ws = windows(docs, lm.context);
    if ws.is_empty() || batch_size == 0 {
        return Err(LmError::Train(
            "perplexity needs a document of two or more tokens and batch_size >= 1".into(),
        ));
    }
    let (mut sum, mut count) = (0.0f64, 0usize);
    for chunk in ws.chunks(batch_size) {
        let batch: Vec<&Window> = chunk.iter().collect();
        let (nll, n) = batch_nll(model, &batch, device);
        sum += scalar(nll)?;
        count += n;
    }
    Ok((sum / count as f64).exp())
}

/// The cache directory: `$OLSIM_CACHE`, else the platform cache folder
/// (`$XDG_CACHE_HOME/olsim`, else `$HOME/.cache/olsim`), else `olsim-cache` in the
/// system's temporary folder. Never the working directory.
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
}

/// [`default_cache_dir`] with the environment read through `var`.
fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(dir) = var("OLSIM_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("olsim");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("olsim"),
        None => std::env::temp_dir().join("olsim-cache"),
    }
}

#[cfg(test)]
mod cache_dir_tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::cache_dir_from;

    fn with(vars: &[(&str, &str)]) -> PathBuf {
        let vars: BTreeMap<&str, &str> = vars.iter().copied().collect();
        cache_dir_from(|name| vars.get(name).map(Into::into))
    }

    #[test]
    fn the_cache_goes_to_the_platform_cache_folder_unless_overridden() {
        assert_eq!(
            with(&[
                ("OLSIM_CACHE", "/c"),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ]),
            PathBuf::from("/c")
        );
        assert_eq!(
            with(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]),
            PathBuf::from("/x/olsim")
        );
        assert_eq!(with(&[("HOME", "/h")]), PathBuf::from("/h/.cache/olsim"));
        assert_eq!(with(&[]), std::env::temp_dir().join("olsim-cache"));
    }
}

/// What [`pretrain`] did with its cache file.
#[derive(Clone, Debug, PartialEq)]
pub enum CacheStatus {
    /// A valid cache file was loaded; nothing was trained.
    Hit,
    /// No cache file existed: trained and wrote one.
    Built,
    /// A cache file existed but was unusable (the reason says why): retrained and
    /// overwrote it.
    Rebuilt(String),
}

/// A pre-trained base model.
#[derive(Debug)]
pub struct Pretrained<B: Backend> {
    /// The model (no adapters).
    pub model: Lm<B>,
    /// What happened to the cache.
    pub cache: CacheStatus,
    /// The cache file.
    pub path: PathBuf,
    /// The training report; `None` on a cache hit (nothing was trained).
    pub report: Option<TrainReport>,
}

const CACHE_MAGIC: &[u8; 18] = b"olsim-lm-pretrain/";
const CACHE_VERSION: &[u8; 2] = b"v1";

/// The cache key of a pre-training run: `keccak256` over the version, the init seed, the
/// model and training configs, the tokenizer's vocabulary and every document's tokens.
fn cache_key(
    seed: u64,
    config: &LmConfig,
    train: &TrainConfig,
    tokenizer: &Tokenizer,
    docs: &[Vec<u32>],
) -> B256 {
    // v2: gradients summed over parts of each batch (`GRADIENT_PARTS`).
    let mut bytes = b"olsim/lm/pretrain/v2".to_vec();
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes.extend_from_slice(&serde_json::to_vec(config).expect("config serialises"));
    bytes.extend_from_slice(format!("{train:?}").as_bytes());
    bytes.extend_from_slice(tokenizer.digest().as_slice());
    for doc in docs {
        bytes.extend_from_slice(&(doc.len() as u64).to_le_bytes());
        for t in doc {
            bytes.extend_from_slice(&t.to_le_bytes());
        }
    }
    keccak256(&bytes)
}

/// Reads a cache file: magic, version, key, `keccak256` of the payload, payload (a
/// [`Lm::to_bytes`] model). Any mismatch is an error naming what is wrong.
fn read_cache<B: Backend>(
    path: &Path,
    key: B256,
    config: &LmConfig,
    device: &B::Device,
) -> Result<Lm<B>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let head = CACHE_MAGIC.len() + CACHE_VERSION.len();
    if bytes.len() < head + 64 || &bytes[..CACHE_MAGIC.len()] != CACHE_MAGIC {
        return Err("not a pre-training cache file".into());
    }
    if &bytes[CACHE_MAGIC.len()..head] != CACHE_VERSION {
        return Err("cache file version differs".into());
    }
    if bytes[head..head + 32] != key.0 {
        return Err("cache key differs".into());
    }
    let payload = &bytes[head + 64..];
    if bytes[head + 32..head + 64] != keccak256(payload).0 {
        return Err("payload digest mismatch (corrupt file)".into());
    }
    let model = Lm::from_bytes(payload, device).map_err(|e| e.to_string())?;
    if model.config() != *config {
        return Err(format!("cached model has config {:?}", model.config()));
    }
    Ok(model)
}

/// Writes a cache file atomically (temporary file, then rename).
fn write_cache<B: Backend>(path: &Path, key: B256, model: &Lm<B>) -> Result<(), LmError> {
    let payload = model.to_bytes()?;
    let mut bytes = CACHE_MAGIC.to_vec();
    bytes.extend_from_slice(CACHE_VERSION);
    bytes.extend_from_slice(key.as_slice());
    bytes.extend_from_slice(keccak256(&payload).as_slice());
    bytes.extend_from_slice(&payload);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| LmError::io(dir, e))?;
    // One temporary name per writer (process and call): threads of one sweep may
    // pre-train the same base model at once, and each renames only its own whole file.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| LmError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| LmError::io(path, e))
}

/// Pre-trains a base model of shape `config` (initialised from `seed`) on `docs` (token
/// ids from `tokenizer`, framed with BOS/EOS), or loads it from `cache_dir` when a file
/// for the same key (seed, configs, tokenizer, corpus) is there and intact. A corrupt or
/// mismatched file is rebuilt, never trusted. Deterministic on the CPU.
pub fn pretrain<B: AutodiffBackend>(
    tokenizer: &Tokenizer,
    docs: &[Vec<u32>],
    config: &LmConfig,
    train: &TrainConfig,
    seed: u64,
    cache_dir: &Path,
    device: &B::Device,
) -> Result<Pretrained<B::InnerBackend>, LmError> {
    config.validate()?;
    if config.vocab != tokenizer.len() {
        return Err(LmError::Config(format!(
            "model vocab {} differs from the tokenizer's {} tokens",
            config.vocab,
            tokenizer.len()
        )));
    }
    check_docs(docs, config.vocab)?;
    let key = cache_key(seed, config, train, tokenizer, docs);
    let path = cache_dir.join(format!("lm-pretrain-{key:x}.bin"));
    let cache = if path.exists() {
        match read_cache(&path, key, config, device) {
            Ok(model) => {
                return Ok(Pretrained {
                    model,
                    cache: CacheStatus::Hit,
                    path,
                    report: None,
                });
            }
            Err(reason) => CacheStatus::Rebuilt(reason),
        }
    } else {
        CacheStatus::Built
    };
    let model = config.init::<B>(seed, device)?;
    let (model, report) = train_windows(model, docs, train, "lm/pretrain/shuffle", device)?;
    let model = model.valid();
    write_cache(&path, key, &model)?;
    Ok(Pretrained {
        model,
        cache,
        path,
        report: Some(report),
    })
}

/// A LoRA fine-tuning result.
#[derive(Clone, Debug)]
pub struct FineTuned {
    /// The trained adapter, host-side.
    pub adapter: LmAdapterWeights,
    /// The training report.
    pub report: TrainReport,
    /// Adapter parameters vs full fine-tuning of the base.
    pub params: ParamCounts,
}

/// Fine-tunes LoRA adapters (per `lora`, init stream seed `seed`) on `docs` over the
/// frozen `base`; the base is unchanged. Deterministic on the CPU.
pub fn finetune<B: AutodiffBackend>(
    base: &Lm<B::InnerBackend>,
    docs: &[Vec<u32>],
    lora: &LoraConfig,
    train: &TrainConfig,
    seed: u64,
    device: &B::Device,
) -> Result<FineTuned, LmError> {
    let model = Lm::<B>::from_bytes(&base.to_bytes()?, device)?.with_lora(lora, seed)?;
    let params = model.parameter_counts();
    let (model, report) = train_windows(model, docs, train, "lm/finetune/shuffle", device)?;
    Ok(FineTuned {
        adapter: model.adapter_weights(),
        report,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Ad = burn::backend::Autodiff<burn::backend::NdArray<f32>>;

    /// Every parameter's gradient in `grads` (`None` for a frozen one), in `model`'s
    /// parameter order.
    fn gradient_values(model: &Lm<Ad>, grads: &GradientsParams) -> Vec<Option<Vec<f32>>> {
        struct Values<'a>(&'a GradientsParams, Vec<Option<Vec<f32>>>);
        impl ModuleVisitor<Ad> for Values<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Ad, D>>) {
                let grad = self.0.get::<burn::backend::NdArray<f32>, D>(param.id);
                self.1
                    .push(grad.map(|g| g.into_data().to_vec::<f32>().unwrap()));
            }
        }
        let mut values = Values(grads, Vec::new());
        model.visit(&mut values);
        values.1
    }

    /// For a fully trained model and for a LoRA one (frozen base): the same parameters
    /// take gradients in parts as in one pass, with the same values to rounding.
    #[test]
    fn a_batch_gradient_in_parts_is_the_whole_batch_gradient() {
        let device = Default::default();
        let config = LmConfig {
            vocab: 40,
            d_model: 16,
            layers: 1,
            heads: 2,
            d_ff: 32,
            context: 8,
        };
        // Windows of different lengths, so the two parts pad to different lengths.
        let docs: Vec<Vec<u32>> = vec![
            (1..12).collect(),
            vec![3, 9, 27, 5],
            (10..30).rev().collect(),
            vec![7, 8],
            (4..11).collect(),
        ];
        let windows = windows(&docs, config.context);
        let batch: Vec<&Window> = windows.iter().collect();
        assert!(batch.len() >= 2 * GRADIENT_PARTS);
        let full = config.init::<Ad>(5, &device).unwrap();
        let lora = LoraConfig {
            targets: super::super::lora_targets(config.layers, &[super::super::Proj::Q]),
            ..LoraConfig::new(2, 4.0)
        };
        let adapted = full.clone().with_lora(&lora, 3).unwrap();
        for (model, all_trained) in [(full, true), (adapted, false)] {
            let (whole_nll, whole_count) = batch_nll(&model, &batch, &device);
            let whole_value = scalar(whole_nll.clone()).unwrap();
            let whole = whole_nll.div_scalar(whole_count as f32).backward();
            let whole = gradient_values(&model, &GradientsParams::from_grads(whole, &model));
            let (nll, count, parts) = batch_gradients(&model, &batch, &device).unwrap();
            let parts = gradient_values(&model, &parts);

            assert_eq!(count, whole_count);
            assert!((nll - whole_value).abs() <= 1e-5 * whole_value.abs());
            let taking = whole.iter().filter(|g| g.is_some()).count();
            match all_trained {
                true => assert_eq!(taking, whole.len()),
                false => assert!(
                    0 < taking && taking < whole.len(),
                    "{taking} of {}",
                    whole.len()
                ),
            }
            assert_eq!(parts.len(), whole.len());
            let mut largest = 0.0f32;
            for (p, w) in parts.iter().zip(&whole) {
                assert_eq!(p.is_some(), w.is_some(), "a gradient taken one way only");
                for (a, b) in p.iter().flatten().zip(w.iter().flatten()) {
                    assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "{a} against {b}");
                    largest = largest.max(b.abs());
                }
            }
            assert!(largest > 1e-3, "the gradient is all but zero: {largest}");
        }
    }

    #[test]
    fn windows_cover_every_pair_once_and_respect_context() {
        let docs = vec![(0..10).collect::<Vec<u32>>(), vec![7], vec![1, 2]];
        let ws = windows(&docs, 4);
        assert_eq!(ws.len(), 4);
        assert!(
            ws.iter()
                .all(|w| w.input.len() <= 4 && w.input.len() == w.target.len())
        );
        let pairs: Vec<(u32, u32)> = ws
            .iter()
            .flat_map(|w| w.input.iter().copied().zip(w.target.iter().copied()))
            .collect();
        let mut want: Vec<(u32, u32)> = (0..9).map(|i| (i, i + 1)).collect();
        want.push((1, 2));
        assert_eq!(pairs, want);
    }
}
