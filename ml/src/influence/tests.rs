//! Tests of gradient influence on one fixed small scenario, shared with the ground-truth
//! tests ([`scenario`]).
//!
//! The scenario (not tuned to any method): DePIN Datanet of seed 41 with 4 honest, 1
//! label-flip, 1 backdoor, 1 spammer and 1 copycat contributors of 40-80 records (the
//! other population settings at their defaults), 80% kept for training by
//! `split(0.2, "influence")`; a base MLP 8-16-2 pre-trained for 2 epochs on the other three
//! domains' default Datanets; a rank-2 LoRA adapter (alpha 4) on both layers (84 LoRA
//! parameters) fine-tuned for 8 epochs of batch 32 at learning rate 1e-2; 200 clean test
//! points.

use std::sync::LazyLock;

use burn::backend::{Autodiff, NdArray};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Int, Tensor, TensorData};

use super::*;
use crate::data::{
    Datanet, DatanetSpec, Domain, FeatureRecord, PopulationSpec, RecordKind, TextParams,
    build_population,
};
use crate::groundtruth::{Retrainer, ValueMetric, auc, pearson, spearman};
use crate::model::{LoraConfig, LoraMlp, Mlp, MlpConfig, TrainConfig, train};

pub(crate) type Cpu = NdArray<f32>;
pub(crate) type Ad = Autodiff<Cpu>;
type Cpu64 = NdArray<f64>;

/// The shared scenario: data, trained adapter with its checkpoints, and a retrainer.
pub(crate) struct Scenario {
    pub records: Vec<FeatureRecord>,
    pub test: Vec<(Vec<f32>, u8)>,
    pub trace: AdapterTrace,
    pub base: Vec<LoraParams>,
    pub lora: LoraConfig,
    pub finetune: TrainConfig,
}

const SEED: u64 = 41;
const DOMAIN: Domain = Domain::Depin;

fn datanet(domain: Domain, population: &PopulationSpec) -> Datanet {
    let contributors = build_population(SEED, domain, population).unwrap();
    Datanet::generate(&DatanetSpec {
        domain,
        seed: SEED,
        contributors,
        text: TextParams::default(),
    })
    .unwrap()
}

fn pretrained_base() -> Mlp<Ad> {
    let device = Default::default();
    let mix: Vec<FeatureRecord> = Domain::ALL
        .into_iter()
        .filter(|&d| d != DOMAIN)
        .flat_map(|d| datanet(d, &PopulationSpec::default()).records)
        .collect();
    let base = MlpConfig::binary(DOMAIN.dim(), &[16])
        .init::<Ad>(SEED, &device)
        .unwrap();
    let cfg = TrainConfig {
        epochs: 2,
        batch_size: 64,
        learning_rate: 1e-2,
        seed: SEED,
    };
    train(base, &mix, &cfg, &device).unwrap().0
}

static SCENARIO: LazyLock<Scenario> = LazyLock::new(|| {
    let device = Default::default();
    let population = PopulationSpec {
        honest: 4,
        label_flip: 1,
        backdoor: 1,
        spammer: 1,
        copycat: 1,
        records: (40, 80),
        ..PopulationSpec::default()
    };
    let net = datanet(DOMAIN, &population);
    let split = net.split(0.2, "influence");
    let records: Vec<FeatureRecord> = split
        .train
        .iter()
        .map(|id| net.records[id.0 as usize].clone())
        .collect();
    let test = net.clean_test_set(200, "influence-test").unwrap();
    let base = pretrained_base();
    let lora = LoraConfig::new(2, 4.0);
    let finetune = TrainConfig {
        epochs: 8,
        batch_size: 32,
        learning_rate: 1e-2,
        seed: SEED,
    };
    let model = LoraMlp::new(base, &lora, SEED).unwrap();
    let base_snapshot = LoraParams::from_model(&model).unwrap();
    let (_, _, trace) = train_traced(model, &records, &finetune, &device).unwrap();
    Scenario {
        records,
        test,
        trace,
        base: vec![base_snapshot],
        lora,
        finetune,
    }
});

/// The shared scenario, built once per test binary.
pub(crate) fn scenario() -> &'static Scenario {
    &SCENARIO
}

impl Scenario {
    /// A retrainer of this scenario valuing subsets by `metric`.
    pub(crate) fn retrainer(&self, metric: ValueMetric) -> Retrainer<Ad> {
        Retrainer {
            base: self.base[0].to_model::<Ad>(&Default::default()).base(),
            lora: self.lora.clone(),
            lora_seed: SEED,
            train: self.finetune.clone(),
            records: self.records.clone(),
            test: self.test.clone(),
            metric,
            device: Default::default(),
        }
    }

    /// An index of `method` on the CPU in `f32`.
    pub(crate) fn index(&self, method: Method) -> InfluenceIndex<Cpu> {
        InfluenceIndex::build(
            &self.trace,
            &self.records,
            &InfluenceConfig::new(method),
            &Default::default(),
        )
        .unwrap()
    }
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|x| f64::from(*x)).collect()
}

#[test]
fn hand_gradients_match_autodiff_for_single_examples() {
    let s = scenario();
    let device = Default::default();
    let params = s.trace.final_params();
    let model = params.to_model::<Ad>(&device);
    let examples = &s.records[..6];
    let (x, y): (Vec<f32>, Vec<f32>) = {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for r in examples {
            x.extend_from_slice(&r.features);
            y.extend([f32::from(r.label == 0), f32::from(r.label == 1)]);
        }
        (x, y)
    };
    let batched = params
        .to_device::<Cpu>(&device)
        .per_example_gradients(
            Tensor::from_data(TensorData::new(x, [6, DOMAIN.dim()]), &device),
            Tensor::from_data(TensorData::new(y, [6, 2]), &device),
        )
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    let p = params.dim();
    assert_eq!(batched.len(), 6 * p);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    for (i, r) in examples.iter().enumerate() {
        let x = Tensor::<Ad, 2>::from_data(
            TensorData::new(r.features.clone(), [1, DOMAIN.dim()]),
            &device,
        );
        let y = Tensor::<Ad, 1, Int>::from_data(
            TensorData::new(vec![i64::from(r.label)], [1]),
            &device,
        );
        let grads = loss_fn.forward(model.forward(x), y).backward();
        let mut expected = Vec::new();
        for ad in model.layers.iter().filter_map(|l| l.adapter.as_ref()) {
            for t in [&ad.a, &ad.b] {
                expected.extend(t.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap());
            }
        }
        let row = &batched[i * p..(i + 1) * p];
        let scale = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "example {i}: autodiff gradient is zero");
        for (j, (a, b)) in row.iter().zip(&expected).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * scale.max(1.0),
                "example {i} parameter {j}: hand {a} vs autodiff {b}"
            );
        }
    }
}

#[test]
fn calibration_print() {
    let s = scenario();
    let start = std::time::Instant::now();
    let r = s.retrainer(ValueMetric::NegTestLoss);
    let (_, cost) = r.fit(&vec![true; s.records.len()]).unwrap();
    eprintln!(
        "records {} fit {:?} total {:?}",
        s.records.len(),
        cost,
        start.elapsed()
    );
    for m in [
        Method::TracIn,
        Method::DATAINF,
        Method::EXACT,
        Method::EXACT_GN,
    ] {
        let idx = s.index(m);
        let a = idx.attribute(&s.test).unwrap();
        let pr = a.per_record();
        let flip: Vec<bool> = s
            .records
            .iter()
            .map(|r| r.kind == RecordKind::Poisoned)
            .collect();
        let keep: Vec<usize> = (0..s.records.len())
            .filter(|&i| s.records[i].kind == RecordKind::Clean || flip[i])
            .collect();
        let sc: Vec<f64> = keep.iter().map(|&i| -pr[i]).collect();
        let lab: Vec<bool> = keep.iter().map(|&i| flip[i]).collect();
        eprintln!("damping {:?}", idx.damping());
        eprintln!(
            "{} pre {:?} attr {:?} auc {:?}",
            m.name(),
            idx.precompute_cost(),
            a.cost,
            auc(&sc, &lab)
        );
        eprintln!("  contributors {:?}", a.per_contributor());
    }
    let _ = (
        pearson(&[1.0], &[1.0]),
        spearman(&[1.0], &[1.0]),
        f64s(&[]),
        std::mem::size_of::<Cpu64>(),
    );
}
