use burn::backend::NdArray;
use olsim_ml::data::{ContributorId, FeatureRecord, RecordId, RecordKind};
use olsim_ml::influence::{
    AdapterTrace, InfluenceConfig, InfluenceIndex, LoraParams, Method, Storage,
};
use olsim_ml::model::{LoraConfig, LoraMlp, MlpConfig};
use std::time::Instant;
type Cpu = NdArray<f32>;
fn main() {
    if std::env::var("KERNEL").is_ok() {
        kernel_only();
        return;
    }
    let dev = Default::default();
    let base = MlpConfig::binary(8, &[32, 32])
        .init::<Cpu>(1, &dev)
        .unwrap();
    let model = LoraMlp::new(base, &LoraConfig::new(2, 4.0), 3).unwrap();
    let mut params = LoraParams::from_model(&model).unwrap();
    let theta: Vec<f64> = (0..params.dim())
        .map(|i| ((i * 37) % 17) as f64 / 40.0 - 0.2)
        .collect();
    params = params.with_lora_vector(&theta).unwrap();
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(300_000);
    let recs: Vec<FeatureRecord> = (0..n)
        .map(|i| FeatureRecord {
            id: RecordId(i as u32),
            features: (0..8)
                .map(|j| (((i * 8 + j) * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect(),
            label: (i % 3 == 0) as u8,
            author: ContributorId((i / 10) as u32),
            clean: true,
            kind: RecordKind::Clean,
            copy_of: None,
            hash: Default::default(),
        })
        .collect();
    let trace = AdapterTrace {
        checkpoints: vec![params],
        learning_rate: 1e-2,
    };
    let mut cfg = InfluenceConfig::new(Method::DataInf { damping_ratio: 0.1 });
    cfg.batch_size = 512;
    cfg.storage = Storage::Recomputed;
    let t = Instant::now();
    let idx = InfluenceIndex::<Cpu>::build(&trace, &recs, &cfg, &dev).unwrap();
    println!("build {:.2} s", t.elapsed().as_secs_f64());
    let inputs: Vec<Vec<f32>> = recs
        .iter()
        .take(n / 3)
        .map(|r| r.features.clone())
        .collect();
    let t = Instant::now();
    let tot = idx.attribute_outputs_total(&inputs).unwrap();
    println!(
        "total {:.2} s (sum {})",
        t.elapsed().as_secs_f64(),
        tot.per_record.iter().sum::<f64>()
    );
}
#[allow(dead_code)]
fn kernel_only() {
    use olsim_ml::influence::HostKernel;
    let dev = burn::backend::ndarray::NdArrayDevice::Cpu;
    let base = MlpConfig::binary(8, &[32, 32])
        .init::<Cpu>(1, &dev)
        .unwrap();
    let model = LoraMlp::new(base, &LoraConfig::new(2, 4.0), 3).unwrap();
    let params = LoraParams::from_model(&model).unwrap();
    let k = HostKernel::new(&params);
    let n = 300_000;
    let x: Vec<f32> = (0..n * 8)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect();
    let oh: Vec<f32> = (0..n * 2)
        .map(|i| if (i / 2 + i) % 2 == 0 { 1.0 } else { 0.0 })
        .collect();
    let mut out = vec![0.0f32; n * k.dim()];
    let t = Instant::now();
    k.gradients_into(&x, &oh, &mut out);
    println!(
        "kernel: {:.3} us/record",
        t.elapsed().as_secs_f64() / n as f64 * 1e6
    );
}
