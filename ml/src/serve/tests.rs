//! Tests of the adapter store, the device cache and the three serving modes.

use burn::backend::{Autodiff, NdArray};
use burn::module::{AutodiffModule, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use proptest::prelude::*;

use super::*;
use crate::model::{LoraConfig, LoraMlp, Mlp, MlpConfig, TrainConfig, train};

type Cpu = NdArray<f32>;
type Ad = Autodiff<Cpu>;

/// Served logits may differ from `LoraMlp::forward` by float rounding only: the scale is
/// folded into `B`, merged weights are summed once.
const TOLERANCE: f32 = 1e-4;
const DIM: usize = 6;
const SEED: u64 = 11;

fn config() -> LoraConfig {
    LoraConfig::new(2, 4.0)
}

fn base<B: Backend>() -> Mlp<B> {
    MlpConfig {
        input_dim: DIM,
        hidden: vec![12, 10],
        classes: 3,
    }
    .init(SEED, &Default::default())
    .unwrap()
}

/// A LoRA model over `base` trained briefly so its `B` is not zero.
fn trained(seed: u64) -> LoraMlp<Ad> {
    let device = Default::default();
    let data: Vec<(Vec<f32>, u8)> = feature_vectors(seed, DIM, 48)
        .into_iter()
        .map(|x| {
            let label = (x[0] + x[1] > 0.0) as u8 + (x[2] > 1.0) as u8;
            (x, label)
        })
        .collect();
    let model = LoraMlp::new(base::<Ad>(), &config(), seed).unwrap();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 16,
        seed,
        ..TrainConfig::default()
    };
    train(model, &data, &cfg, &device).unwrap().0
}

/// The reference model: a `LoraMlp` over `base` carrying `host`'s matrices and scale.
fn reference(host: &HostAdapter) -> LoraMlp<Cpu> {
    let device = Default::default();
    let mut model = LoraMlp::new(base::<Cpu>(), &config(), 0).unwrap();
    for (layer, pair) in model.layers.iter_mut().zip(&host.sites) {
        let ad = layer.adapter.as_mut().unwrap();
        let [r, d_in] = ad.a.shape().dims();
        let [d_out, _] = ad.b.shape().dims();
        ad.a = Param::from_tensor(Tensor::from_data(
            TensorData::new(pair.a.clone(), [r, d_in]),
            &device,
        ));
        ad.b = Param::from_tensor(Tensor::from_data(
            TensorData::new(pair.b.clone(), [d_out, r]),
            &device,
        ));
        ad.scale = host.scale;
    }
    model
}

fn logits(model: &LoraMlp<Cpu>, x: &[f32]) -> Vec<f32> {
    let t = Tensor::<Cpu, 2>::from_data(
        TensorData::new(x.to_vec(), [1, x.len()]),
        &Default::default(),
    );
    model.forward(t).into_data().to_vec::<f32>().unwrap()
}

/// A store with generated adapters 0..5, a trained adapter 100 (inserted from the model)
/// and another trained adapter 101 (inserted from saved bytes).
fn store() -> (AdapterStore, Vec<(AdapterId, LoraMlp<Cpu>)>) {
    let serve = MlpServe::new(base::<Cpu>(), &config()).unwrap();
    let mut store = AdapterStore::new(serve.adapter_layout());
    store.generate(0..5, SEED, 0.5).unwrap();
    let a = trained(1);
    store.insert_lora_mlp(100, &a).unwrap();
    let b = trained(2);
    let template = LoraMlp::new(base::<Ad>(), &config(), 9).unwrap();
    store
        .insert_saved(101, &template, &b.save_adapters().unwrap())
        .unwrap();
    let mut refs: Vec<(AdapterId, LoraMlp<Cpu>)> = (0..5)
        .map(|id| (id, reference(store.get(id).unwrap())))
        .collect();
    refs.push((100, a.valid()));
    refs.push((101, b.valid()));
    (store, refs)
}

fn server(mode: ServeMode, cache_adapters: u64) -> Server<Cpu, MlpServe<Cpu>> {
    let serve = MlpServe::new(base::<Cpu>(), &config()).unwrap();
    let (store, _) = store();
    let cache_bytes = cache_adapters * store.layout().adapter_bytes();
    Server::new(
        serve,
        store,
        ServerConfig {
            mode,
            max_batch: 8,
            cache_bytes,
        },
    )
    .unwrap()
}

/// Asserts `got` is `want` within [`TOLERANCE`] element by element.
fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= TOLERANCE, "{what}, logit {i}: {g} vs {w}");
    }
}

#[test]
fn served_outputs_match_lora_mlp_in_every_mode() {
    let (_, refs) = store();
    let ids: Vec<AdapterId> = vec![
        100, 0, 1, 101, 1, 1, 2, 3, 4, 100, 100, 0, 101, 2, 2, 2, 3, 0, 4, 1, 101, 100, 3, 3,
    ];
    let inputs = feature_vectors(SEED, DIM, ids.len());
    let modes = [
        ServeMode::Heterogeneous,
        ServeMode::MergeOnSwitch,
        ServeMode::OneAtATime,
    ];
    for mode in modes {
        let mut s = server(mode, 3);
        for (&id, x) in ids.iter().zip(&inputs) {
            s.submit(id, x.clone()).unwrap();
        }
        let mut served = 0;
        let (mut mixed, mut merges) = (false, 0);
        while let Some(batch) = s.step().unwrap() {
            assert!(batch.cost.flops > 0);
            mixed |= batch.adapters > 1;
            merges += batch.merges;
            if mode == ServeMode::OneAtATime {
                assert_eq!(batch.responses.len(), 1);
            }
            for r in batch.responses {
                let k = r.request as usize;
                assert_eq!(r.adapter, ids[k]);
                let model = &refs.iter().find(|(id, _)| *id == r.adapter).unwrap().1;
                let want = logits(model, &inputs[k]);
                assert_close(&r.output, &want, &format!("{mode:?} request {k}"));
                served += 1;
            }
            assert!(s.cache_stats().resident_bytes <= s.cache().budget());
        }
        assert_eq!(served, ids.len());
        match mode {
            ServeMode::Heterogeneous => assert!(mixed, "batches mix adapters"),
            ServeMode::MergeOnSwitch => {
                let switches = 1 + ids.windows(2).filter(|w| w[0] != w[1]).count();
                assert_eq!(merges, switches);
            }
            ServeMode::OneAtATime => assert_eq!(s.cache_stats().hits + s.cache_stats().misses, 24),
        }
    }
}

#[test]
fn bad_requests_are_refused_and_do_not_poison_the_server() {
    let (_, refs) = store();
    let mut s = server(ServeMode::Heterogeneous, 3);
    let x = feature_vectors(SEED, DIM, 2);
    let e = s.submit(999, x[0].clone()).unwrap_err();
    assert_eq!(e, ServeError::UnknownAdapter { id: 999 });
    assert!(
        e.to_string().contains("adapter 999 is not in the store"),
        "{e}"
    );
    let e = s.submit(0, vec![1.0; 3]).unwrap_err();
    assert_eq!(
        e,
        ServeError::BadInput("3 features, the model takes 6".into())
    );
    let mut nan = x[0].clone();
    nan[2] = f32::NAN;
    assert!(matches!(s.submit(0, nan), Err(ServeError::BadInput(_))));
    assert_eq!(s.pending(), 0);
    // A replay with one bad request queues nothing.
    let bad = vec![(1, x[0].clone()), (2, vec![0.0; DIM + 1])];
    assert!(matches!(s.replay(bad, 4), Err(ServeError::BadInput(_))));
    assert_eq!(s.pending(), 0);
    // The server still serves good requests correctly.
    let r0 = s.submit(100, x[0].clone()).unwrap();
    let r1 = s.submit(3, x[1].clone()).unwrap();
    let batch = s.step().unwrap().unwrap();
    assert_eq!(batch.responses.len(), 2);
    for (r, (id, k)) in batch.responses.iter().zip([(100, 0), (3, 1)]) {
        assert_eq!((r.request, r.adapter), ([r0, r1][k], id));
        let model = &refs.iter().find(|(i, _)| *i == id).unwrap().1;
        assert_close(&r.output, &logits(model, &x[k]), "after refusals");
    }
    assert!(s.step().unwrap().is_none());
}

#[test]
fn store_and_server_reject_mismatches() {
    let (mut store, _) = store();
    let layout = store.layout().clone();
    assert_eq!(
        layout.adapter_bytes(),
        4 * 2 * ((6 + 12) + (12 + 10) + (10 + 3)) as u64
    );
    assert_eq!(store.bytes(), 7 * layout.adapter_bytes());
    assert_eq!(
        store.generate([3], SEED, 0.5),
        Err(ServeError::DuplicateAdapter { id: 3 })
    );
    let mut wrong = store.get(0).unwrap().clone();
    wrong.sites[1].a.pop();
    assert!(matches!(
        store.insert(7, wrong),
        Err(ServeError::AdapterShape(_))
    ));
    // A LoRA model of another rank does not fit.
    let other = LoraMlp::new(base::<Cpu>(), &LoraConfig::new(3, 4.0), 1).unwrap();
    let e = store.insert_lora_mlp(8, &other).unwrap_err();
    assert!(e.to_string().contains("store takes rank 2"), "{e}");
    assert!(!store.contains(7) && !store.contains(8));
    assert_eq!(store.len(), 7);
    assert_eq!(
        AdapterLayout::new(layout.sites.clone(), 11).unwrap_err(),
        ServeError::Layout("rank 11 exceeds min(in, out) = 6 of site layer0".into())
    );
    // The server checks the store against the model, the batch size and the cache.
    let rank3 = MlpServe::new(base::<Cpu>(), &LoraConfig::new(3, 4.0)).unwrap();
    let cfg = ServerConfig {
        mode: ServeMode::Heterogeneous,
        max_batch: 4,
        cache_bytes: layout.adapter_bytes() - 1,
    };
    assert!(matches!(
        Server::new(rank3, store.clone(), cfg.clone()),
        Err(ServeError::AdapterShape(_))
    ));
    let serve = MlpServe::new(base::<Cpu>(), &config()).unwrap();
    assert!(matches!(
        Server::new(serve, store, cfg),
        Err(ServeError::CacheTooSmall { .. })
    ));
}

/// A store of 8 tiny adapters (one site 4 -> 3, rank 1: 28 bytes each).
fn tiny_store() -> AdapterStore {
    let site = Site {
        name: "s".into(),
        d_in: 4,
        d_out: 3,
    };
    let mut store = AdapterStore::new(AdapterLayout::new(vec![site], 1).unwrap());
    store.generate(0..8, 3, 1.0).unwrap();
    store
}

#[test]
fn cache_evicts_least_recently_used() {
    let store = tiny_store();
    let bytes = store.layout().adapter_bytes();
    assert_eq!(bytes, 28);
    let mut cache = AdapterCache::<Cpu>::new(3 * bytes, Default::default());
    for ids in [[1], [2], [3], [1], [4]] {
        cache.fetch(&ids, &store).unwrap();
    }
    assert_eq!(cache.lru_order(), vec![3, 1, 4]);
    let st = cache.stats();
    assert_eq!((st.hits, st.misses, st.evictions), (1, 4, 1));
    assert_eq!((st.resident_adapters, st.resident_bytes), (3, 3 * bytes));
    // 3 is needed by this fetch, so 1 (the least recently used other) goes.
    cache.fetch(&[3, 5], &store).unwrap();
    assert_eq!(cache.lru_order(), vec![4, 3, 5]);
    assert_eq!(cache.stats().evictions, 2);
    // Too many at once, unknown and repeated ids are refused without changes.
    assert_eq!(
        cache.fetch(&[0, 1, 2, 6], &store).unwrap_err(),
        ServeError::CacheTooSmall {
            needed: 4 * bytes,
            budget: 3 * bytes
        }
    );
    assert_eq!(
        cache.fetch(&[9], &store).unwrap_err(),
        ServeError::UnknownAdapter { id: 9 }
    );
    assert!(cache.fetch(&[2, 2], &store).is_err());
    assert_eq!(cache.lru_order(), vec![4, 3, 5]);
    // Uploaded matrices hold the host values: A as stored, B transposed with the scale folded in.
    let dev = cache.fetch(&[5], &store).unwrap().remove(0);
    let host = store.get(5).unwrap();
    let values = |t: &Tensor<Cpu, 2>| t.clone().into_data().to_vec::<f32>().unwrap();
    let site = &dev.sites[0];
    assert_eq!(values(&site.a), host.sites[0].a);
    let scaled: Vec<f32> = host.sites[0].b.iter().map(|v| v * host.scale).collect();
    assert_eq!(values(&site.b_t), scaled);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, rng_seed: proptest::test_runner::RngSeed::Fixed(7), ..ProptestConfig::default() })]

    /// Over random fetch sequences the cache never exceeds its budget and holds exactly the
    /// adapters a reference LRU list holds, in the same order.
    #[test]
    fn cache_stays_within_budget_and_evicts_lru(
        budget_adapters in 1u64..5,
        slack in 0u64..28,
        fetches in proptest::collection::vec(proptest::collection::btree_set(0u64..8, 1..4), 1..40),
    ) {
        let store = tiny_store();
        let budget = budget_adapters * 28 + slack;
        let mut cache = AdapterCache::<Cpu>::new(budget, Default::default());
        let mut reference: Vec<AdapterId> = Vec::new();
        let mut evictions = 0;
        for set in fetches {
            let ids: Vec<AdapterId> = set.into_iter().collect();
            let result = cache.fetch(&ids, &store);
            if ids.len() as u64 * 28 > budget {
                prop_assert!(result.is_err());
            } else {
                prop_assert!(result.is_ok());
                for &id in &ids {
                    if let Some(p) = reference.iter().position(|&r| r == id) {
                        reference.remove(p);
                    } else {
                        while (reference.len() as u64 + 1) * 28 > budget {
                            let p = reference.iter().position(|r| !ids.contains(r)).unwrap();
                            reference.remove(p);
                            evictions += 1;
                        }
                    }
                    reference.push(id);
                }
            }
            let st = cache.stats();
            prop_assert!(st.resident_bytes <= budget);
            prop_assert_eq!(st.resident_bytes, 28 * st.resident_adapters as u64);
            prop_assert_eq!(cache.lru_order(), reference.clone());
            prop_assert_eq!(st.evictions, evictions);
        }
    }
}

#[test]
fn replay_times_every_request_and_counts_flops() {
    let mut s = server(ServeMode::Heterogeneous, 3);
    let ids = ZipfPopularity::new(5, 1.0).unwrap().requests(SEED, 20);
    let x = feature_vectors(SEED, DIM, 20);
    let report = s.replay(ids.into_iter().zip(x).collect(), 6).unwrap();
    assert_eq!(report.requests, 20);
    assert!(report.batches >= 4, "4 windows need at least 4 steps");
    assert!(report.latencies.iter().all(|&l| l > 0.0));
    assert!(report.latency_quantile(0.5) <= report.latency_quantile(0.99));
    assert!(report.requests_per_second() > 0.0);
    // Every request pays the base pass and its rank-2 update at 3 layers.
    let base = 2 * (6 * 12 + 12 * 10 + 10 * 3) + (12 + 12) + (10 + 10) + 3;
    let lora = [(6, 12), (12, 10), (10, 3)]
        .iter()
        .map(|&(i, o)| 2 * i * 2 + 2 * 2 * o + o)
        .sum::<usize>();
    assert_eq!(report.flops, 20 * (base + lora) as u64);
    assert_eq!(s.pending(), 0);
}

#[test]
fn request_streams_and_generated_adapters_are_deterministic() {
    let zipf = ZipfPopularity::new(100, 1.0).unwrap();
    let total: f64 = (0..100).map(|k| zipf.probability(k)).sum();
    assert!((total - 1.0).abs() < 1e-12);
    assert!(zipf.probability(0) > zipf.probability(1) && zipf.probability(100) == 0.0);
    let a = zipf.requests(5, 4000);
    assert_eq!(a, zipf.requests(5, 4000));
    assert_ne!(a, zipf.requests(6, 4000));
    let top = a.iter().filter(|&&id| id == 0).count() as f64 / 4000.0;
    assert!((top - zipf.probability(0)).abs() < 0.03, "{top}");
    assert!(ZipfPopularity::new(0, 1.0).is_err() && ZipfPopularity::new(3, -1.0).is_err());
    // An adapter depends on its id and the seed, not on the other ids generated.
    let mut one = AdapterStore::new(tiny_store().layout().clone());
    one.generate([5], 3, 1.0).unwrap();
    assert_eq!(one.get(5), tiny_store().get(5));
    assert_ne!(one.get(5), tiny_store().get(4));
}

/// The CPU backend's fused pass gives the grouped GEMM pairs' update within rounding, for
/// requests of several rows, a repeated adapter in two segments and a one-request segment.
#[test]
fn fused_update_matches_grouped_gemm_pairs() {
    let store = {
        let serve = MlpServe::new(base::<Cpu>(), &config()).unwrap();
        let mut store = AdapterStore::new(serve.adapter_layout());
        store.generate(0..3, SEED, 0.5).unwrap();
        store
    };
    let mut cache = AdapterCache::<Cpu>::new(1 << 20, Default::default());
    let adapters = cache.fetch(&[0, 1, 2], &store).unwrap();
    // Requests 0-1 use adapter 2, request 2 adapter 0, requests 3-4 adapter 2 again, 5 adapter 1.
    let lora = BatchLora::new(adapters, &[2, 2, 0, 2, 2, 1]);
    let rows = 3;
    for (site, s) in store.layout().sites.iter().enumerate() {
        let x: Vec<f32> = feature_vectors(SEED + site as u64, s.d_in, 6 * rows).concat();
        let x = Tensor::<Cpu, 2>::from_data(
            TensorData::new(x, [6 * rows, s.d_in]),
            &Default::default(),
        );
        let fused = lora.delta(site, x.clone(), rows).unwrap();
        assert_eq!(fused.dims(), [6 * rows, s.d_out]);
        let grouped = lora.grouped(site, x, rows);
        let values = |t: Tensor<Cpu, 2>| t.into_data().to_vec::<f32>().unwrap();
        assert_close(
            &values(fused),
            &values(grouped),
            &format!("site {}", s.name),
        );
    }
}
