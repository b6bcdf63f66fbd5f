//! Per-example LoRA gradients of the classifier MLP in one fused host loop, for burn's CPU
//! backend.
//!
//! [`DeviceParams::per_example_gradients`](super::DeviceParams::per_example_gradients)
//! writes the same gradients as about forty tensor operations per batch. The classifiers
//! are tiny (8 → 32 → 32 → 2 with rank-2 adapters: 276 LoRA parameters, about 5,000
//! floating-point operations per example), so on burn's NdArray backend those operations
//! cost their allocations, strided copies and broadcasts, not their arithmetic:
//! `perf record` on an index of 300,000 records put 43% of building and scoring it in
//! that backward pass, nearly all of it in ndarray's element-wise loops and page faults.
//! Here each example goes forward and back through the layers in a few small buffers and
//! its gradient is written straight into its output row.
//!
//! The arithmetic is the same as the tensor version's, in another order, so the two agree
//! to rounding (a test). Whichever one an index uses, it uses for every gradient it stores
//! and recomputes, so its kept and recomputed scores stay bit-identical.

use super::params::LoraParams;
use crate::lanes::dot;

/// One layer's weights on the host in `f32`.
#[derive(Clone, Debug)]
struct HostLayer {
    d_in: usize,
    d_out: usize,
    /// `[in, out]`, row-major (burn's layout).
    weight: Vec<f32>,
    /// The same transposed, `[out, in]`, for the backward pass.
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    adapter: Option<HostAdapter>,
}

/// One adapter on the host: `A` `[r, in]`, `B` `[out, r]`, both row-major, and its scale,
/// with the offset of `A`'s gradient in the LoRA vector (`B`'s follows it).
#[derive(Clone, Debug)]
struct HostAdapter {
    rank: usize,
    a: Vec<f32>,
    b: Vec<f32>,
    /// `Bᵀ` `[r, out]`, for the backward pass.
    b_t: Vec<f32>,
    scale: f32,
    offset: usize,
}

/// A [`LoraParams`] snapshot as host `f32` weights, for [`HostKernel::gradients_into`].
#[derive(Clone, Debug)]
pub struct HostKernel {
    layers: Vec<HostLayer>,
    classes: usize,
    /// Number of LoRA parameters `P` (the width of a gradient row).
    dim: usize,
    /// The first layer with an adapter, where back-propagation stops.
    first_adapted: usize,
}

/// Per-thread buffers of one example's forward and backward pass.
struct Scratch {
    /// Input of every layer, then the logits.
    activations: Vec<Vec<f32>>,
    /// `A·x` of every adapted layer.
    down: Vec<Vec<f32>>,
    delta: Vec<f32>,
    back: Vec<f32>,
    bt_delta: Vec<f32>,
}

impl HostKernel {
    /// The weights of `params`, rounded to `f32` as uploading them to an `f32` device does.
    pub fn new(params: &LoraParams) -> HostKernel {
        let f32s = |v: &[f64]| v.iter().map(|&w| w as f32).collect::<Vec<f32>>();
        let mut offset = 0;
        let layers: Vec<HostLayer> = params
            .layers
            .iter()
            .map(|l| HostLayer {
                d_in: l.d_in,
                d_out: l.d_out,
                weight: f32s(&l.weight),
                weight_t: f32s(&transpose(&l.weight, l.d_in, l.d_out)),
                bias: f32s(&l.bias),
                adapter: l.adapter.as_ref().map(|ad| {
                    let adapter = HostAdapter {
                        rank: ad.rank,
                        a: f32s(&ad.a),
                        b: f32s(&ad.b),
                        b_t: f32s(&transpose(&ad.b, l.d_out, ad.rank)),
                        scale: ad.scale as f32,
                        offset,
                    };
                    offset += ad.rank * (l.d_in + l.d_out);
                    adapter
                }),
            })
            .collect();
        let first_adapted = layers
            .iter()
            .position(|l| l.adapter.is_some())
            .expect("LoraParams::from_model guarantees an adapter");
        HostKernel {
            layers,
            classes: params.classes(),
            dim: offset,
            first_adapted,
        }
    }

    /// Number of LoRA parameters `P`: the width of a gradient row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn scratch(&self) -> Scratch {
        let mut activations: Vec<Vec<f32>> =
            self.layers.iter().map(|l| vec![0.0; l.d_in]).collect();
        activations.push(vec![0.0; self.classes]);
        let widest = self
            .layers
            .iter()
            .map(|l| l.d_in.max(l.d_out))
            .max()
            .unwrap_or(0);
        let rank = |l: &HostLayer| l.adapter.as_ref().map_or(0, |a| a.rank);
        Scratch {
            activations,
            down: self.layers.iter().map(|l| vec![0.0; rank(l)]).collect(),
            delta: vec![0.0; widest],
            back: vec![0.0; widest],
            bt_delta: vec![0.0; self.layers.iter().map(rank).max().unwrap_or(0)],
        }
    }

    /// Writes the per-example gradients of the softmax cross-entropy loss of the rows of
    /// `x` (`[m, in]`) at `onehot` (`[m, classes]`) into `out` (`[m, P]`), all row-major:
    /// the rows of [`DeviceParams::per_example_gradients`](super::DeviceParams::per_example_gradients),
    /// to rounding.
    pub fn gradients_into(&self, x: &[f32], onehot: &[f32], out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.gradients_avx2(x, onehot, out) };
            return;
        }
        self.gradients_portable(x, onehot, out);
    }

    /// [`gradients_into`](Self::gradients_into) compiled for AVX2: the same loops in
    /// 8-wide vectors. No operation is fused or reordered (Rust never contracts `a * b + c`
    /// into an FMA on its own), so every lane computes what the portable build computes and
    /// the results are bit-identical (a test).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn gradients_avx2(&self, x: &[f32], onehot: &[f32], out: &mut [f32]) {
        self.gradients_portable(x, onehot, out);
    }

    /// The loop over examples, inlined into each instruction-set build.
    #[inline(always)]
    fn gradients_portable(&self, x: &[f32], onehot: &[f32], out: &mut [f32]) {
        let mut s = self.scratch();
        let d_in = self.layers[0].d_in;
        for ((x, y), row) in x
            .chunks_exact(d_in)
            .zip(onehot.chunks_exact(self.classes))
            .zip(out.chunks_exact_mut(self.dim))
        {
            s.activations[0].copy_from_slice(x);
            self.forward(&mut s);
            self.backward(&mut s, y, row);
        }
    }

    /// Every layer's input and the logits into `s.activations`, and `A·x` of every adapter
    /// into `s.down`. A hidden layer's output is `max(z, 0)`: its ReLU derivative is read
    /// back off it as `output > 0`.
    #[inline(always)]
    fn forward(&self, s: &mut Scratch) {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let (before, after) = s.activations.split_at_mut(i + 1);
            let (h, z) = (&before[i], &mut after[0]);
            z.copy_from_slice(&l.bias);
            for (&hj, w) in h.iter().zip(l.weight.chunks_exact(l.d_out)) {
                for (zo, &wo) in z.iter_mut().zip(w) {
                    *zo += hj * wo;
                }
            }
            if let Some(ad) = &l.adapter {
                let u = &mut s.down[i];
                for (uk, a) in u.iter_mut().zip(ad.a.chunks_exact(l.d_in)) {
                    *uk = dot::<8>(a, h);
                }
                for (zo, b) in z.iter_mut().zip(ad.b.chunks_exact(ad.rank)) {
                    *zo += dot::<8>(b, u) * ad.scale;
                }
            }
            if i < last {
                for zo in z.iter_mut() {
                    *zo = zo.max(0.0);
                }
            }
        }
    }

    /// Back-propagates the loss at one-hot `y` from the logits in `s.activations` and
    /// writes the LoRA gradient row.
    #[inline(always)]
    fn backward(&self, s: &mut Scratch, y: &[f32], row: &mut [f32]) {
        let logits = &s.activations[self.layers.len()];
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let delta = &mut s.delta[..self.classes];
        for (d, &l) in delta.iter_mut().zip(logits) {
            *d = (l - max).exp();
        }
        let total: f32 = delta.iter().sum();
        for (d, &t) in delta.iter_mut().zip(y) {
            *d = *d / total - t;
        }
        let first = self.first_adapted;
        for i in (first..self.layers.len()).rev() {
            let l = &self.layers[i];
            let input = &s.activations[i];
            let delta = &s.delta[..l.d_out];
            let back = &mut s.back[..l.d_in];
            // The gradient at this layer's input, needed below the first adapted layer only.
            let below = i > first;
            if below {
                back.fill(0.0);
                for (&d, w) in delta.iter().zip(l.weight_t.chunks_exact(l.d_in)) {
                    for (bj, &wj) in back.iter_mut().zip(w) {
                        *bj += d * wj;
                    }
                }
            }
            if let Some(ad) = &l.adapter {
                let (r, u) = (ad.rank, &s.down[i]);
                let bt = &mut s.bt_delta[..r];
                for (t, b) in bt.iter_mut().zip(ad.b_t.chunks_exact(l.d_out)) {
                    *t = dot::<8>(delta, b) * ad.scale;
                }
                let (grad_a, rest) = row[ad.offset..].split_at_mut(r * l.d_in);
                for (g, &t) in grad_a.chunks_exact_mut(l.d_in).zip(bt.iter()) {
                    for (gj, &xj) in g.iter_mut().zip(input) {
                        *gj = t * xj;
                    }
                }
                for (g, &d) in rest[..l.d_out * r].chunks_exact_mut(r).zip(delta) {
                    for (gk, &uk) in g.iter_mut().zip(u) {
                        *gk = d * ad.scale * uk;
                    }
                }
                if below {
                    for (&t, a) in bt.iter().zip(ad.a.chunks_exact(l.d_in)) {
                        for (bj, &aj) in back.iter_mut().zip(a) {
                            *bj += t * aj;
                        }
                    }
                }
            }
            if below {
                // Through the ReLU of layer i - 1, whose output is this layer's input.
                for ((d, &b), &h) in s.delta.iter_mut().zip(back.iter()).zip(input) {
                    *d = if h > 0.0 { b } else { 0.0 };
                }
            }
        }
    }
}

/// `m` `[rows, cols]` row-major, transposed.
fn transpose(m: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols)
        .map(|i| m[(i % rows) * cols + i / rows])
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;
    use burn::tensor::{Tensor, TensorData};
    use proptest::prelude::*;

    use super::*;
    use crate::model::{LoraConfig, LoraMlp, LoraTargets, MlpConfig};

    type Cpu = NdArray<f32>;

    /// Seeded weights of an MLP `input → hidden… → classes` with rank-`rank` adapters on
    /// `targets`, every LoRA parameter set nonzero (a fresh adapter's `B` is zero).
    fn params(hidden: &[usize], rank: usize, targets: LoraTargets, seed: u64) -> LoraParams {
        let device = Default::default();
        let base = MlpConfig::binary(8, hidden)
            .init::<Cpu>(seed, &device)
            .unwrap();
        let config = LoraConfig {
            targets,
            ..LoraConfig::new(rank, 4.0)
        };
        let model = LoraMlp::new(base, &config, seed).unwrap();
        let p = LoraParams::from_model(&model).unwrap();
        let theta: Vec<f64> = (0..p.dim())
            .map(|i| ((i as u64 * 7919 + seed) % 211) as f64 / 211.0 - 0.5)
            .collect();
        p.with_lora_vector(&theta).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The fused kernel writes the tensor version's gradients, to `f32` rounding, for
        /// any depth, rank, adapted layers and inputs.
        #[test]
        fn host_kernel_matches_the_tensor_gradients(
            hidden in prop::collection::vec(2usize..40, 1..4),
            rank in 1usize..3,
            all_layers in any::<bool>(),
            seed in 0u64..1000,
            x in prop::collection::vec(-3.0f32..3.0, 8 * 5),
            labels in prop::collection::vec(0u8..2, 5),
        ) {
            let targets = if all_layers { LoraTargets::All } else { LoraTargets::Layers(vec![1]) };
            let params = params(&hidden, rank, targets, seed);
            let m = labels.len();
            let onehot: Vec<f32> = labels
                .iter()
                .flat_map(|&l| [f32::from(l == 0), f32::from(l == 1)])
                .collect();
            let device = Default::default();
            let expected = params
                .to_device::<NdArray<f32>>(&device)
                .per_example_gradients(
                    Tensor::from_data(TensorData::new(x.clone(), [m, 8]), &device),
                    Tensor::from_data(TensorData::new(onehot.clone(), [m, 2]), &device),
                )
                .into_data()
                .to_vec::<f32>()
                .unwrap();
            let kernel = HostKernel::new(&params);
            prop_assert_eq!(kernel.dim(), params.dim());
            let mut got = vec![f32::NAN; m * params.dim()];
            kernel.gradients_into(&x, &onehot, &mut got);
            // The portable build writes the same bits as the one the CPU dispatched to.
            let mut portable = vec![f32::NAN; m * params.dim()];
            kernel.gradients_portable(&x, &onehot, &mut portable);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&portable), bits(&got));
            let scale = expected.iter().fold(1e-3f32, |a, v| a.max(v.abs()));
            for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                prop_assert!((g - e).abs() <= 1e-4 * scale, "entry {i}: {g} vs {e}");
            }
        }
    }
}
