//! Tests of the tokenizer, the transformer, LoRA, training, the cache and generation.

use std::path::PathBuf;

use burn::backend::{Autodiff, NdArray};
use burn::tensor::{Int, Tensor, TensorData};

use super::*;
use crate::data::rng::{normal, stream};
use crate::data::{Datanet, Domain, PopulationSpec, TextParams};
use crate::model::{LoraConfig, TrainConfig, parameter_values};

type Cpu = NdArray<f32>;
type Ad = Autodiff<Cpu>;

fn tiny(vocab: usize) -> LmConfig {
    LmConfig {
        vocab,
        d_model: 32,
        layers: 2,
        heads: 4,
        d_ff: 64,
        context: 32,
    }
}

/// A fresh, empty directory under the system temp dir.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("olsim-lm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bits(values: &[Vec<f32>]) -> Vec<Vec<u32>> {
    values
        .iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// Logits `[len][vocab]` of one sequence, recomputed from scratch.
fn full_logits(model: &Lm<Cpu>, tokens: &[u32]) -> Vec<Vec<f32>> {
    let device = Default::default();
    let ids: Vec<i64> = tokens.iter().map(|&t| i64::from(t)).collect();
    let x = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids, [1, tokens.len()]), &device);
    let vocab = model.config().vocab;
    model
        .forward(x)
        .into_data()
        .to_vec::<f32>()
        .unwrap()
        .chunks(vocab)
        .map(<[f32]>::to_vec)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Finance Datanet of seed 3, its tokenizer and framed documents.
fn small_corpus() -> (Datanet, Tokenizer, Vec<Vec<u32>>) {
    let pop = PopulationSpec {
        honest: 3,
        label_flip: 0,
        backdoor: 0,
        spammer: 0,
        copycat: 0,
        documents: (3, 4),
        ..PopulationSpec::default()
    };
    let dn = generic_datanets(3, &[Domain::Finance], &pop, &TextParams::default())
        .unwrap()
        .remove(0);
    let texts = document_texts(std::slice::from_ref(&dn));
    let tok = Tokenizer::build(
        texts.iter().map(String::as_str),
        &TokenizerConfig::default(),
    )
    .unwrap();
    let docs = texts.iter().map(|t| tok.encode_document(t)).collect();
    (dn, tok, docs)
}

/// A random adapter (both `A` and `B` non-zero) of rank `rank` on `projs`.
fn random_adapter(config: &LmConfig, projs: &[Proj], rank: usize, name: &str) -> LmAdapterWeights {
    let mut rng = stream(9, name);
    let mut draw = |n: usize| (0..n).map(|_| 0.2 * normal(&mut rng) as f32).collect();
    let matrices = (0..config.layers)
        .flat_map(|block| projs.iter().map(move |&p| (block, p)))
        .map(|(block, proj)| {
            let (d_in, d_out) = proj.dims(config);
            AdapterMatrix {
                block,
                proj,
                rank,
                scale: 2.0 / rank as f32,
                d_in,
                d_out,
                a: draw(rank * d_in),
                b: draw(d_out * rank),
            }
        })
        .collect();
    LmAdapterWeights { matrices }
}

#[test]
fn tokenizer_orders_by_frequency_round_trips_and_maps_unknown_words() {
    let texts = ["b a c a", "c a d", "b e"];
    let tok = Tokenizer::build(texts, &TokenizerConfig::default()).unwrap();
    // a:3, then b:2 and c:2 (lexicographic), then d and e.
    assert_eq!(
        tok.words(),
        ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b", "c", "d", "e"]
    );
    // Same corpus in another order: same vocabulary.
    let rev = Tokenizer::build(texts.iter().rev().copied(), &TokenizerConfig::default());
    assert_eq!(rev.unwrap(), tok);

    let ids = tok.encode("  a\tb  e ");
    assert_eq!(ids, vec![4, 5, 8]);
    assert_eq!(tok.decode(&ids), "a b e");
    assert_eq!(tok.encode("a zebra"), vec![4, UNK]);
    assert_eq!(
        tok.decode(&tok.encode_document("a zebra")),
        "<bos> a <unk> <eos>"
    );

    let small = TokenizerConfig {
        min_count: 2,
        max_size: 6,
    };
    let cut = Tokenizer::build(texts, &small).unwrap();
    assert_eq!(cut.words(), ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]);
    assert_eq!(cut.encode("c a"), vec![UNK, 4]);

    assert_eq!(Tokenizer::from_json(&tok.to_json()).unwrap(), tok);
    let dir = temp_dir("tokenizer");
    tok.save(&dir.join("tok.json")).unwrap();
    assert_eq!(Tokenizer::load(&dir.join("tok.json")).unwrap(), tok);
    assert!(Tokenizer::from_json(r#"{"format":"olsim-word-tokenizer/1","words":["a"]}"#).is_err());
    assert!(Tokenizer::from_json("not json").is_err());
    assert!(Tokenizer::load(&dir.join("missing.json")).is_err());
    let zero = TokenizerConfig {
        min_count: 0,
        max_size: 10,
    };
    assert!(matches!(
        Tokenizer::build(texts, &zero),
        Err(LmError::Config(_))
    ));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn datanet_text_round_trips_through_the_tokenizer() {
    let (dn, tok, docs) = small_corpus();
    for (d, ids) in dn.documents.iter().zip(&docs) {
        assert!(!ids.contains(&UNK));
        assert_eq!(tok.decode(&ids[1..ids.len() - 1]), dn.doc_text(d));
    }
}

#[test]
fn changing_a_later_token_never_changes_earlier_logits() {
    let model = tiny(40).init::<Cpu>(1, &Default::default()).unwrap();
    let a: Vec<u32> = (0..12).map(|i| 4 + (i * 7) % 36).collect();
    let base = full_logits(&model, &a);
    for j in [0, 5, 11] {
        let mut b = a.clone();
        b[j] = 4 + (b[j] + 13) % 36;
        let changed = full_logits(&model, &b);
        for i in 0..j {
            assert!(
                max_diff(&base[i], &changed[i]) < 1e-6,
                "position {i} saw token {j}"
            );
        }
        assert!(
            max_diff(&base[j], &changed[j]) > 1e-4,
            "position {j} ignores its token"
        );
    }
}

#[test]
fn kv_cache_generation_equals_full_recomputation() {
    let device = Default::default();
    let config = tiny(40);
    let model = config.init::<Cpu>(2, &device).unwrap();
    let prompt = vec![BOS, 7, 9, 11];
    for temperature in [0.0, 1.0] {
        let gen_config = GenConfig {
            max_new_tokens: 10,
            temperature,
            seed: 5,
            stop_at_eos: false,
            keep_logits: true,
        };
        let g = generate(&model, &prompt, &gen_config, &device).unwrap();
        assert_eq!(g.tokens.len(), 10);
        let mut seq = prompt.clone();
        for (step, &t) in g.tokens.iter().enumerate() {
            let full = full_logits(&model, &seq);
            let last = full.last().unwrap();
            assert!(max_diff(last, &g.logits[step]) < 1e-5, "step {step}");
            if temperature == 0.0 {
                let argmax = (0..last.len()).fold(0, |b, i| if last[i] > last[b] { i } else { b });
                assert_eq!(t as usize, argmax, "step {step}");
            }
            seq.push(t);
        }
        // Same seed, same tokens.
        assert_eq!(generate(&model, &prompt, &gen_config, &device).unwrap(), g);
    }
    let sample = |seed| {
        let c = GenConfig {
            max_new_tokens: 12,
            temperature: 2.0,
            seed,
            ..GenConfig::default()
        };
        generate(&model, &prompt, &c, &device).unwrap().tokens
    };
    assert_ne!(sample(1), sample(2));
    // The public incremental API agrees with the full pass too.
    let mut cache = KvCache::new(config.layers);
    let ids = |t: &[u32]| {
        let v: Vec<i64> = t.iter().map(|&x| i64::from(x)).collect();
        Tensor::<Cpu, 2, Int>::from_data(TensorData::new(v, [1, t.len()]), &device)
    };
    model.forward_cached(ids(&prompt[..3]), &mut cache);
    let step = model.forward_cached(ids(&prompt[3..]), &mut cache);
    assert_eq!(cache.len(), 4);
    let step = step.into_data().to_vec::<f32>().unwrap();
    assert!(max_diff(&step, &full_logits(&model, &prompt)[3]) < 1e-5);
}

#[test]
fn heterogeneous_batch_equals_each_request_alone() {
    let device = Default::default();
    let config = tiny(40);
    let base = config.init::<Cpu>(4, &device).unwrap();
    let qv = random_adapter(&config, &[Proj::Q, Proj::V], 2, "qv");
    let all = random_adapter(&config, &Proj::ALL, 4, "all");
    let mlp = random_adapter(&config, &[Proj::Up, Proj::Down], 3, "mlp");
    let on_device: Vec<LmAdapter<Cpu>> = [&qv, &all, &mlp]
        .iter()
        .map(|w| w.to_device(&config, &device).unwrap())
        .collect();
    let prompts: [Vec<u32>; 5] = [
        vec![BOS, 5, 6],
        vec![BOS, 9, 10, 11, 12, 13, 14],
        vec![BOS],
        vec![BOS, 20, 21, 22],
        vec![BOS, 5, 6],
    ];
    let adapters = [Some(0), Some(1), None, Some(2), Some(1)];
    let requests: Vec<GenRequest<Cpu>> = prompts
        .iter()
        .zip(adapters)
        .enumerate()
        .map(|(i, (p, a))| GenRequest {
            id: i as u64,
            prompt: p.clone(),
            adapter: a.map(|a| &on_device[a]),
        })
        .collect();
    let gen_config = GenConfig {
        max_new_tokens: 8,
        stop_at_eos: false,
        keep_logits: true,
        ..GenConfig::default()
    };
    let batch = generate_batch(&base, &requests, &gen_config, &device).unwrap();
    assert_eq!(batch.passes, 8);
    let mut outputs = Vec::new();
    for (r, g) in requests.iter().zip(&batch.generations) {
        let alone = match r.adapter {
            Some(a) => base.clone().with_adapter(a),
            None => base.clone(),
        };
        let single = generate(&alone, &r.prompt, &gen_config, &device).unwrap();
        assert_eq!(g.tokens, single.tokens, "request {}", r.id);
        for (x, y) in g.logits.iter().zip(&single.logits) {
            assert!(
                max_diff(x, y) < 1e-4,
                "request {}: {}",
                r.id,
                max_diff(x, y)
            );
        }
        assert_eq!(g.flops, single.flops);
        outputs.push(g.tokens.clone());
    }
    // The adapters matter: same prompt, different adapters, different outputs.
    assert_ne!(batch.generations[0].logits, batch.generations[4].logits);
    // Padding and padded ranks are charged to the batch, not to the requests.
    let own: u64 = batch.generations.iter().map(|g| g.flops).sum();
    assert!(batch.cost.flops > own);
}

#[test]
fn adapters_round_trip_and_mismatches_are_errors() {
    let device = Default::default();
    let config = tiny(40);
    let w = random_adapter(&config, &[Proj::K, Proj::Down], 3, "io");
    assert_eq!(LmAdapterWeights::from_bytes(&w.to_bytes()).unwrap(), w);
    let dir = temp_dir("adapter");
    w.save(&dir.join("a.lora")).unwrap();
    assert_eq!(LmAdapterWeights::load(&dir.join("a.lora")).unwrap(), w);
    let _ = std::fs::remove_dir_all(dir);
    let bytes = w.to_bytes();
    assert!(LmAdapterWeights::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(LmAdapterWeights::from_bytes(b"garbage").is_err());

    // Applying and reading back gives the same weights.
    let model = config.init::<Cpu>(0, &device).unwrap();
    let applied = model.with_adapter(&w.to_device(&config, &device).unwrap());
    assert_eq!(applied.adapter_weights(), w);
    assert_eq!(applied.parameter_counts().trainable, w.num_params());

    let other = LmConfig {
        d_ff: 48,
        ..config.clone()
    };
    assert!(matches!(
        w.to_device::<Cpu>(&other, &device),
        Err(LmError::AdapterMismatch(_))
    ));
    let deep = LmConfig {
        layers: 1,
        ..config.clone()
    };
    assert!(w.to_device::<Cpu>(&deep, &device).is_err());
    let bad_rank = LoraConfig::new(40, 8.0);
    assert!(matches!(
        config
            .init::<Cpu>(0, &device)
            .unwrap()
            .with_lora(&bad_rank, 0),
        Err(LmError::Lora(_))
    ));
}

#[test]
fn bad_generation_requests_are_errors() {
    let device = Default::default();
    let model = tiny(40).init::<Cpu>(0, &device).unwrap();
    let c = GenConfig::default();
    assert!(generate(&model, &[], &c, &device).is_err());
    assert!(generate(&model, &[BOS, 40], &c, &device).is_err());
    assert!(generate(&model, &[BOS; 20], &c, &device).is_err());
    let hot = GenConfig {
        temperature: -1.0,
        ..GenConfig::default()
    };
    assert!(generate(&model, &[BOS], &hot, &device).is_err());
    assert!(generate_batch::<Cpu>(&model, &[], &c, &device).is_err());
}

fn quick_train() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        batch_size: 8,
        learning_rate: 3e-3,
        seed: 1,
    }
}

/// Pre-training and fine-tuning give the same weights bit for bit run after run, and in
/// rayon pools of 1 and 2 threads (each batch's gradient is summed over a fixed split of
/// its rows, computed concurrently where a thread is free).
#[test]
fn training_is_bit_identical_run_after_run_and_across_thread_counts() {
    let device = Default::default();
    let (_, tok, docs) = small_corpus();
    let config = tiny(tok.len());
    let run = |name: &str| {
        let dir = temp_dir(name);
        let p = pretrain::<Ad>(&tok, &docs, &config, &quick_train(), 7, &dir, &device).unwrap();
        let _ = std::fs::remove_dir_all(dir);
        assert_eq!(p.cache, CacheStatus::Built);
        let report = p.report.unwrap();
        assert!(
            report.epoch_loss[1] < report.epoch_loss[0],
            "{:?}",
            report.epoch_loss
        );
        assert!(report.step.flops > 0 && report.total.flops >= report.step.flops);
        let lora = LoraConfig {
            targets: lora_targets(config.layers, &[Proj::Q, Proj::V, Proj::Up]),
            ..LoraConfig::new(4, 8.0)
        };
        let ft = finetune::<Ad>(&p.model, &docs, &lora, &quick_train(), 3, &device).unwrap();
        (bits(&parameter_values(&p.model)), ft.adapter)
    };
    let in_pool = |threads: usize, name: &str| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| run(name))
    };
    let (w1, a1) = run("det-a");
    let (w2, a2) = run("det-b");
    assert_eq!(w1, w2);
    assert_eq!(a1, a2);
    for threads in [1, 2] {
        let (w, a) = in_pool(threads, &format!("det-{threads}-threads"));
        assert_eq!(w, w1, "pre-trained weights differ in a pool of {threads}");
        assert_eq!(a, a1, "the adapter differs in a pool of {threads}");
    }
    assert_eq!(a1.matrices.len(), 6);
}

#[test]
fn pretrain_cache_hits_and_rebuilds_after_corruption() {
    let device = Default::default();
    let (_, tok, docs) = small_corpus();
    let config = tiny(tok.len());
    let train = TrainConfig {
        epochs: 1,
        ..quick_train()
    };
    let dir = temp_dir("cache");
    let go = |c: &LmConfig| pretrain::<Ad>(&tok, &docs, c, &train, 7, &dir, &device).unwrap();
    let first = go(&config);
    assert_eq!(first.cache, CacheStatus::Built);
    let second = go(&config);
    assert_eq!(second.cache, CacheStatus::Hit);
    assert!(second.report.is_none());
    assert_eq!(second.path, first.path);
    let weights = bits(&parameter_values(&first.model));
    assert_eq!(bits(&parameter_values(&second.model)), weights);

    // Flip one byte of the payload: detected, rebuilt, and the rebuild is identical.
    let mut bytes = std::fs::read(&first.path).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    std::fs::write(&first.path, &bytes).unwrap();
    let third = go(&config);
    assert!(
        matches!(&third.cache, CacheStatus::Rebuilt(r) if r.contains("corrupt")),
        "{:?}",
        third.cache
    );
    assert_eq!(bits(&parameter_values(&third.model)), weights);
    assert_eq!(go(&config).cache, CacheStatus::Hit);

    // A truncated file is rebuilt too.
    std::fs::write(&first.path, &bytes[..20]).unwrap();
    assert!(matches!(go(&config).cache, CacheStatus::Rebuilt(_)));

    // Another model config is another key.
    let wider = LmConfig {
        d_ff: 48,
        ..config.clone()
    };
    let other = go(&wider);
    assert_eq!(other.cache, CacheStatus::Built);
    assert_ne!(other.path, first.path);
    let _ = std::fs::remove_dir_all(dir);
}

/// Pre-trains on a generic mix (gaming, healthcare, DePIN), fine-tunes LoRA on a finance
/// Datanet's training documents, and compares with the base model: held-out perplexity
/// on finance documents, and how many of the contributors' private facts greedy decoding
/// completes verbatim from their first words.
///
/// Print the figures with
/// `cargo test -p olsim-ml --lib lm::tests::lora_finetune -- --nocapture`.
#[test]
fn lora_finetune_lowers_heldout_perplexity_and_recalls_private_facts() {
    let device = Default::default();
    let population = |honest, documents| PopulationSpec {
        honest,
        label_flip: 0,
        backdoor: 0,
        spammer: 0,
        copycat: 0,
        documents,
        ..PopulationSpec::default()
    };
    // Short documents keep the test fast: one or two grammar sentences plus its author's
    // private fact, which every document of that author repeats.
    let text = TextParams {
        sentences: (1, 2),
        private_facts: 1,
        ..TextParams::default()
    };
    let generic = generic_datanets(21, &Domain::ALL, &population(2, (5, 6)), &text).unwrap();
    let target = generic_datanets(5, &[Domain::Finance], &population(3, (6, 8)), &text)
        .unwrap()
        .remove(0);
    let mut texts = document_texts(&generic);
    texts.extend(document_texts(std::slice::from_ref(&target)));
    let tok = Tokenizer::build(
        texts.iter().map(String::as_str),
        &TokenizerConfig::default(),
    )
    .unwrap();
    let frame = |docs: &[&crate::data::Document]| -> Vec<Vec<u32>> {
        docs.iter()
            .map(|d| tok.encode_document(&target.doc_text(d)))
            .collect()
    };
    let generic_docs: Vec<Vec<u32>> = document_texts(&generic)
        .iter()
        .map(|t| tok.encode_document(t))
        .collect();
    let (train_docs, heldout_docs) = split_documents(&target, 0.2, "lm-test");
    let (train_docs, heldout_docs) = (frame(&train_docs), frame(&heldout_docs));

    let config = LmConfig {
        d_model: 32,
        heads: 2,
        d_ff: 64,
        ..LmConfig::small(tok.len())
    };
    let pre = TrainConfig {
        epochs: 8,
        batch_size: 16,
        learning_rate: 1e-2,
        seed: 1,
    };
    let cache = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/olsim-cache"
    ));
    let base = pretrain::<Ad>(&tok, &generic_docs, &config, &pre, 7, &cache, &device).unwrap();
    let lora = LoraConfig {
        targets: lora_targets(config.layers, &Proj::ALL),
        ..LoraConfig::new(4, 8.0)
    };
    let ft_train = TrainConfig {
        epochs: 25,
        batch_size: 8,
        learning_rate: 1e-2,
        seed: 2,
    };
    let ft = finetune::<Ad>(&base.model, &train_docs, &lora, &ft_train, 3, &device).unwrap();
    let tuned = base
        .model
        .clone()
        .with_adapter(&ft.adapter.to_device(&config, &device).unwrap());

    let ppl_base = perplexity(&base.model, &heldout_docs, 32, &device).unwrap();
    let ppl_tuned = perplexity(&tuned, &heldout_docs, 32, &device).unwrap();

    // Private facts of contributors whose documents were trained on.
    let truth = target.truth.as_ref().unwrap();
    let prefix = 4;
    let facts: Vec<Vec<u32>> = truth
        .private_facts
        .iter()
        .flatten()
        .map(|f| tok.encode(&target.vocab.render(&f.tokens)))
        .filter(|f| {
            train_docs
                .iter()
                .any(|d| d.windows(f.len()).any(|w| w == f.as_slice()))
        })
        .collect();
    let recalled = |model: &Lm<Cpu>| -> (usize, usize) {
        let mut exact = 0;
        let mut tokens = 0;
        for f in &facts {
            let mut prompt = vec![BOS];
            prompt.extend(&f[..prefix]);
            let c = GenConfig {
                max_new_tokens: f.len() - prefix,
                stop_at_eos: false,
                ..GenConfig::default()
            };
            let g = generate(model, &prompt, &c, &device).unwrap();
            let hits = g
                .tokens
                .iter()
                .zip(&f[prefix..])
                .filter(|(a, b)| a == b)
                .count();
            tokens += hits;
            exact += usize::from(hits == f.len() - prefix);
        }
        (exact, tokens)
    };
    let (base_exact, base_tokens) = recalled(&base.model);
    let (tuned_exact, tuned_tokens) = recalled(&tuned);

    let pre_report = base.report.as_ref();
    println!(
        "vocab {}, generic corpus {} docs, finance train {} / held-out {} docs; pre-training \
         cache {:?}{}",
        tok.len(),
        generic_docs.len(),
        train_docs.len(),
        heldout_docs.len(),
        base.cache,
        pre_report.map_or(String::new(), |r| format!(
            ", {} steps, loss {:?}, {:.3} s/step, {:.3e} FLOPs/step",
            r.steps, r.epoch_loss, r.step.wall_seconds, r.step.flops as f64
        )),
    );
    println!(
        "LoRA rank {} on all projections: {} trainable vs {} full fine-tuning ({:.2}%); {} \
         steps, loss {:?}, {:.3} s/step, {:.3e} FLOPs/step",
        lora.rank,
        ft.params.trainable,
        ft.params.full,
        100.0 * ft.params.fraction(),
        ft.report.steps,
        ft.report.epoch_loss,
        ft.report.step.wall_seconds,
        ft.report.step.flops as f64
    );
    println!("held-out finance perplexity: base {ppl_base:.2}, LoRA {ppl_tuned:.2}");
    println!(
        "private facts completed verbatim from {prefix} words ({} facts): base {base_exact} \
         ({base_tokens} tokens), LoRA {tuned_exact} ({tuned_tokens} tokens)",
        facts.len()
    );
    assert!(
        ppl_tuned < 0.8 * ppl_base,
        "base {ppl_base}, tuned {ppl_tuned}"
    );
    assert!(ft.params.trainable * 5 < ft.params.full);
    assert!(tuned_exact > base_exact);
    assert!(tuned_tokens > base_tokens);
}

/// OpenLoRA serving of the language model: every mode's generations equal each request
/// decoded alone with its adapter applied, and bad requests and adapters are refused.
#[test]
fn openlora_serves_lm_adapters_in_every_mode() {
    use crate::serve::{
        AdapterStore, LmRequest, LmServe, ServeError, ServeMode, Server, ServerConfig,
    };
    let device = Default::default();
    let config = tiny(40);
    let base = config.init::<Cpu>(4, &device).unwrap();
    let projs = [Proj::Q, Proj::V, Proj::Down];
    let lora = LoraConfig {
        targets: lora_targets(config.layers, &projs),
        ..LoraConfig::new(2, 4.0)
    };
    let gen_config = GenConfig {
        max_new_tokens: 6,
        stop_at_eos: false,
        keep_logits: true,
        ..GenConfig::default()
    };
    let serve = LmServe::new(&base, &lora, gen_config.clone(), &device).unwrap();
    let mut store = AdapterStore::new(crate::serve::ServeModel::<Cpu>::adapter_layout(&serve));
    let adapters: Vec<LmAdapterWeights> = (0..3)
        .map(|i| random_adapter(&config, &projs, 2, &format!("serve{i}")))
        .collect();
    for (i, w) in adapters.iter().enumerate() {
        store.insert_lm(i as u64, w).unwrap();
    }
    // An adapter of another shape is refused with what it has and what the store takes.
    let wrong = random_adapter(&config, &[Proj::K], 2, "wrong");
    let err = store.insert_lm(9, &wrong).unwrap_err();
    assert!(
        matches!(err, ServeError::AdapterShape(ref m) if m.contains("block0/k")),
        "{err}"
    );

    let prompts: [(u64, Vec<u32>); 6] = [
        (0, vec![BOS, 5, 6]),
        (1, vec![BOS, 9, 10, 11, 12, 13, 14]),
        (2, vec![BOS]),
        (1, vec![BOS, 20, 21, 22]),
        (0, vec![BOS, 5, 6, 7]),
        (2, vec![BOS, 30]),
    ];
    let alone: Vec<Generation> = prompts
        .iter()
        .enumerate()
        .map(|(i, (a, p))| {
            let model = base
                .clone()
                .with_adapter(&adapters[*a as usize].to_device(&config, &device).unwrap());
            let mut g = generate(&model, p, &gen_config, &device).unwrap();
            g.id = i as u64;
            g
        })
        .collect();
    let mut server = Server::new(
        serve,
        store,
        ServerConfig {
            mode: ServeMode::Heterogeneous,
            max_batch: 8,
            cache_bytes: 1 << 20,
        },
    )
    .unwrap();
    for mode in [
        ServeMode::Heterogeneous,
        ServeMode::MergeOnSwitch,
        ServeMode::OneAtATime,
    ] {
        server.set_mode(mode);
        for (i, (a, p)) in prompts.iter().enumerate() {
            let request = LmRequest {
                id: i as u64,
                prompt: p.clone(),
            };
            server.submit(*a, request).unwrap();
        }
        let mut served = Vec::new();
        while let Some(batch) = server.step().unwrap() {
            assert!(batch.cost.flops > 0);
            served.extend(batch.responses);
        }
        assert_eq!(served.len(), prompts.len(), "{mode:?}");
        for r in &served {
            let want = &alone[r.request as usize % prompts.len()];
            assert_eq!(
                r.output.tokens, want.tokens,
                "{mode:?} request {}",
                r.request
            );
            for (x, y) in r.output.logits.iter().zip(&want.logits) {
                assert!(max_diff(x, y) < 1e-4, "{mode:?}: {}", max_diff(x, y));
            }
        }
    }
    // Bad requests are refused at submission and never reach a batch.
    let empty = LmRequest {
        id: 0,
        prompt: Vec::new(),
    };
    assert!(matches!(
        server.submit(0, empty),
        Err(ServeError::BadInput(_))
    ));
    let long = LmRequest {
        id: 0,
        prompt: vec![BOS; config.context],
    };
    assert!(
        matches!(server.submit(0, long), Err(ServeError::BadInput(m)) if m.contains("context"))
    );
    let request = LmRequest {
        id: 0,
        prompt: vec![BOS],
    };
    assert!(matches!(
        server.submit(7, request),
        Err(ServeError::UnknownAdapter { id: 7 })
    ));
    assert_eq!(server.pending(), 0);
}
