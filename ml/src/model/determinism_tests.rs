//! Training determinism across thread counts on the CPU, and CPU/CUDA agreement within
//! [`CUDA_CPU_TOLERANCE`](crate::device::CUDA_CPU_TOLERANCE) when the `cuda` feature is on.
//!
//! Both train the same small model through [`Device::run`]: an [`Mlp`] pre-trained on one
//! synthetic task, then a [`LoraMlp`] over it fine-tuned on a shifted task; the result is
//! every parameter of the fine-tuned model ([`parameter_values`]).

use burn::tensor::backend::AutodiffBackend;
use rand::RngExt;

use super::*;
use crate::data::rng::{normal, stream};
use crate::device::{BackendTask, Device};

const DIM: usize = 8;

/// `n` examples of `DIM` standard-normal features, labelled by the sign of a fixed linear
/// score plus `shift` (with 5% of labels flipped).
fn synthetic(seed: u64, name: &str, n: usize, shift: f64) -> Vec<(Vec<f32>, u8)> {
    let mut rng = stream(seed, name);
    (0..n)
        .map(|_| {
            let x: Vec<f64> = (0..DIM).map(|_| normal(&mut rng)).collect();
            let score: f64 = x
                .iter()
                .enumerate()
                .map(|(i, v)| v * (i as f64 - 3.5))
                .sum();
            let flip = rng.random::<f64>() < 0.05;
            let label = u8::from((score + shift > 0.0) != flip);
            (x.into_iter().map(|v| v as f32).collect(), label)
        })
        .collect()
}

/// Pre-trains an `8 -> [16, 16] -> 2` MLP, fine-tunes rank-2 adapters on every layer, and
/// returns all parameters of the fine-tuned model.
#[derive(Clone, Copy)]
struct TrainSmall {
    seed: u64,
}

impl BackendTask for TrainSmall {
    type Output = Vec<Vec<f32>>;

    fn run<B: AutodiffBackend>(self, device: &B::Device) -> Self::Output {
        let seed = self.seed;
        let pre = synthetic(seed, "test/determinism/pretrain", 256, 0.0);
        let fine = synthetic(seed, "test/determinism/finetune", 128, 2.0);
        let config = |epochs| TrainConfig {
            epochs,
            batch_size: 32,
            learning_rate: 1e-2,
            seed,
        };
        let base = MlpConfig::binary(DIM, &[16, 16])
            .init::<B>(seed, device)
            .unwrap();
        let (base, _) = train(base, &pre, &config(4), device).unwrap();
        let lora = LoraMlp::new(base, &LoraConfig::new(2, 4.0), seed).unwrap();
        let (lora, report) = train(lora, &fine, &config(4), device).unwrap();
        assert!(report.epoch_loss.iter().all(|l| l.is_finite()));
        parameter_values(&lora)
    }
}

fn bits(values: &[Vec<f32>]) -> Vec<Vec<u32>> {
    values
        .iter()
        .map(|v| v.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// CPU training gives the same weights bit for bit in rayon pools of 1 and 2 threads and
/// on the calling thread.
///
/// Today burn-ndarray runs every op on the calling thread: it uses rayon (its `run_par!`
/// and `iter_range_par!` macros, ndarray's `rayon` feature and matrixmultiply's threading)
/// only under its `multi-threads` feature, which olsim does not enable (burn is taken with
/// default features off). This test pins the guarantee regardless: it fails if a change
/// (turning `multi-threads` on, or Cargo feature unification doing so) makes the weights
/// depend on the thread count.
#[test]
fn cpu_training_is_bit_identical_across_thread_counts() {
    let task = TrainSmall { seed: 11 };
    let in_pool = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| Device::Cpu.run(task)).unwrap()
    };
    let one = bits(&in_pool(1));
    let two = bits(&in_pool(2));
    let here = bits(&Device::Cpu.run(task).unwrap());
    // Base 8·16+16 + 16·16+16 + 16·2+2 = 450, adapters 2·(8+16) + 2·(16+16) + 2·(16+2) = 148.
    assert_eq!(one.iter().map(Vec::len).sum::<usize>(), 598);
    assert_eq!(one, two, "weights differ between 1 and 2 threads");
    assert_eq!(
        one, here,
        "weights differ between a pool and the calling thread"
    );
    // The seed matters: another seed trains other weights.
    assert_ne!(
        one,
        bits(&Device::Cpu.run(TrainSmall { seed: 12 }).unwrap())
    );
}

/// Needs a CUDA GPU: with the `cuda` feature on, these tests fail (they do not skip) when
/// no driver or GPU is present, naming what is missing.
#[cfg(feature = "cuda")]
mod cuda {
    use super::*;
    use crate::device::CUDA_CPU_TOLERANCE;

    /// The same training on CUDA GPU 0 and on the CPU gives every parameter within
    /// [`CUDA_CPU_TOLERANCE`] of the CPU's, relative to `max(1, |cpu|)`.
    #[test]
    fn cuda_training_agrees_with_cpu_within_tolerance() {
        let task = TrainSmall { seed: 11 };
        let gpu = Device::Cuda(0)
            .run(task)
            .unwrap_or_else(|e| panic!("the CUDA agreement test needs a CUDA GPU and driver: {e}"));
        let cpu = Device::Cpu.run(task).unwrap();
        assert_eq!(
            gpu.iter().map(Vec::len).collect::<Vec<_>>(),
            cpu.iter().map(Vec::len).collect::<Vec<_>>()
        );
        let mut worst = (0.0f32, 0, 0);
        for (t, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
            for (i, (g, c)) in g.iter().zip(c).enumerate() {
                let err = (g - c).abs() / c.abs().max(1.0);
                assert!(err.is_finite(), "tensor {t} value {i}: gpu {g}, cpu {c}");
                if err > worst.0 {
                    worst = (err, t, i);
                }
            }
        }
        let (err, t, i) = worst;
        assert!(
            err <= CUDA_CPU_TOLERANCE,
            "tensor {t} value {i}: CUDA {} vs CPU {} differ by {err} (relative), over the \
             stated tolerance {CUDA_CPU_TOLERANCE}",
            gpu[t][i],
            cpu[t][i]
        );
        eprintln!("CUDA vs CPU: largest relative difference {err:e} (tensor {t} value {i})");
    }
}
