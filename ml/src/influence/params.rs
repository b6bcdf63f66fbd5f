//! Host snapshots of a [`LoraMlp`]'s weights and their upload to a device.
//!
//! [`LoraParams`] holds every layer's frozen base and adapter in `f64` on the host, so one
//! snapshot can be uploaded to any backend (`f32` for attribution, `f64` for the exact
//! Hessian) and its LoRA vector perturbed for finite differences. The LoRA vector orders
//! the adapted layers input first and, within a layer, `A` (`rank × in`, row-major) then `B`
//! (`out × rank`, row-major): the column order of every gradient in this module.

use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Element, Tensor, TensorData};

use std::any::TypeId;

use burn::backend::NdArray;

use super::InfluenceError;
use super::kernel::HostKernel;
use super::stored::to_host;
use crate::model::LoraMlp;
use crate::model::cost::{Kernels, mlp_backward, mlp_forward, softmax_cross_entropy};

/// One adapter's trainable pair and scale.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterParams {
    /// The rank `r`.
    pub rank: usize,
    /// `alpha / rank`.
    pub scale: f64,
    /// `A`, `[rank, in]` row-major.
    pub a: Vec<f64>,
    /// `B`, `[out, rank]` row-major.
    pub b: Vec<f64>,
}

/// One dense layer: frozen base weights and an optional adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerParams {
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// Base weight in burn's layout `[in, out]`, row-major.
    pub weight: Vec<f64>,
    /// Base bias `[out]` (zeros when the layer has none).
    pub bias: Vec<f64>,
    /// The adapter, `None` where LoRA does not target the layer.
    pub adapter: Option<AdapterParams>,
}

/// Which matrix of which layer a block of the LoRA vector holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The layer index (0 = input layer).
    pub layer: usize,
    /// `true` for `B`, `false` for `A`.
    pub is_b: bool,
    /// Offset in the LoRA vector.
    pub offset: usize,
    /// Number of parameters.
    pub len: usize,
}

/// A host snapshot of a [`LoraMlp`] (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct LoraParams {
    /// The layers, input first.
    pub layers: Vec<LayerParams>,
}

/// The shape of a [`LoraParams`] snapshot, for its analytic kernel counts (see
/// [`crate::model::cost`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LoraShape {
    /// `(in, out, adapter rank)` of every layer, input first.
    pub layers: Vec<(usize, usize, Option<usize>)>,
    /// Number of LoRA parameters `P`.
    pub dim: usize,
}

impl LoraShape {
    /// Forward kernels of a batch of `m` examples.
    pub fn forward(&self, m: usize) -> Kernels {
        mlp_forward(m, &self.layers)
    }

    /// Kernels of the per-example gradients of a batch of `m` examples: the forward pass,
    /// the loss, the backward pass through the adapters and writing the `[m, P]` gradients.
    pub fn gradients(&self, m: usize) -> Kernels {
        let classes = self.layers.last().map_or(0, |l| l.1);
        self.forward(m)
            + softmax_cross_entropy(m, classes)
            + mlp_backward(m, &self.layers, false)
            + Kernels::elementwise(0, m * self.dim, 0)
    }
}

/// A float tensor of the backend's own float type from host values. The dtype is given
/// explicitly: burn keys default dtypes by device, which `NdArray<f32>` and `NdArray<f64>`
/// share, so relying on the default could silently run an `f64` backend in `f32`.
pub(crate) fn float_tensor<B: Backend, const D: usize, T: Element>(
    values: Vec<T>,
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(
        TensorData::new(values, shape),
        (device, <B::FloatElem as Element>::dtype()),
    )
}

fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Result<Vec<f64>, InfluenceError> {
    t.into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .map_err(|e| InfluenceError::Tensor(format!("{e:?}")))
}

fn linear_host<B: Backend>(
    l: &Linear<B>,
) -> Result<(usize, usize, Vec<f64>, Vec<f64>), InfluenceError> {
    let [d_in, d_out] = l.weight.shape().dims();
    let weight = host(l.weight.val())?;
    let bias = match &l.bias {
        Some(b) => host(b.val())?,
        None => vec![0.0; d_out],
    };
    Ok((d_in, d_out, weight, bias))
}

impl LoraParams {
    /// Snapshots `model`. Errors with [`InfluenceError::NoAdapter`] when no layer is adapted.
    pub fn from_model<B: Backend>(model: &LoraMlp<B>) -> Result<LoraParams, InfluenceError> {
        let mut layers = Vec::with_capacity(model.layers.len());
        for l in &model.layers {
            let (d_in, d_out, weight, bias) = linear_host(&l.base)?;
            let adapter = match &l.adapter {
                Some(ad) => Some(AdapterParams {
                    rank: ad.rank(),
                    scale: f64::from(ad.scale),
                    a: host(ad.a.val())?,
                    b: host(ad.b.val())?,
                }),
                None => None,
            };
            layers.push(LayerParams {
                d_in,
                d_out,
                weight,
                bias,
                adapter,
            });
        }
        if layers.iter().all(|l| l.adapter.is_none()) {
            return Err(InfluenceError::NoAdapter);
        }
        Ok(LoraParams { layers })
    }

    /// The snapshot's shape, for its kernel counts.
    pub fn shape(&self) -> LoraShape {
        LoraShape {
            layers: self
                .layers
                .iter()
                .map(|l| (l.d_in, l.d_out, l.adapter.as_ref().map(|a| a.rank)))
                .collect(),
            dim: self.dim(),
        }
    }

    /// Number of input features.
    pub fn input_dim(&self) -> usize {
        self.layers[0].d_in
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.d_out)
    }

    /// The blocks of the LoRA vector, in order.
    pub fn blocks(&self) -> Vec<Block> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (layer, l) in self.layers.iter().enumerate() {
            if let Some(ad) = &l.adapter {
                for (is_b, len) in [(false, ad.a.len()), (true, ad.b.len())] {
                    out.push(Block {
                        layer,
                        is_b,
                        offset,
                        len,
                    });
                    offset += len;
                }
            }
        }
        out
    }

    /// Number of LoRA parameters `P`.
    pub fn dim(&self) -> usize {
        self.blocks().iter().map(|b| b.len).sum()
    }

    /// The LoRA vector (see the module docs for its order).
    pub fn lora_vector(&self) -> Vec<f64> {
        let mut v = Vec::with_capacity(self.dim());
        for ad in self.layers.iter().filter_map(|l| l.adapter.as_ref()) {
            v.extend_from_slice(&ad.a);
            v.extend_from_slice(&ad.b);
        }
        v
    }

    /// A copy with the LoRA vector replaced by `theta` (length [`dim`](Self::dim)).
    pub fn with_lora_vector(&self, theta: &[f64]) -> Result<LoraParams, InfluenceError> {
        if theta.len() != self.dim() {
            return Err(InfluenceError::Config(format!(
                "LoRA vector has {} values, the model has {} LoRA parameters",
                theta.len(),
                self.dim()
            )));
        }
        let mut out = self.clone();
        let mut rest = theta;
        for ad in out.layers.iter_mut().filter_map(|l| l.adapter.as_mut()) {
            let (a, r) = rest.split_at(ad.a.len());
            let (b, r) = r.split_at(ad.b.len());
            ad.a.copy_from_slice(a);
            ad.b.copy_from_slice(b);
            rest = r;
        }
        Ok(out)
    }

    /// Uploads the snapshot to `device`.
    pub fn to_device<B: Backend>(&self, device: &B::Device) -> DeviceParams<B> {
        let t2 =
            |v: &[f64], shape: [usize; 2]| float_tensor::<B, 2, f64>(v.to_vec(), shape, device);
        DeviceParams {
            layers: self
                .layers
                .iter()
                .map(|l| DeviceLayer {
                    weight: t2(&l.weight, [l.d_in, l.d_out]),
                    bias: t2(&l.bias, [1, l.d_out]),
                    adapter: l.adapter.as_ref().map(|ad| DeviceAdapter {
                        a: t2(&ad.a, [ad.rank, l.d_in]),
                        b: t2(&ad.b, [l.d_out, ad.rank]),
                        scale: ad.scale,
                    }),
                })
                .collect(),
            classes: self.classes(),
            kernel: uses_host_kernel::<B>().then(|| HostKernel::new(self)),
        }
    }

    /// Rebuilds a [`LoraMlp`] on `device` with these weights (adapters trainable, base
    /// frozen), e.g. to evaluate a TracIn checkpoint with the model's own forward pass.
    pub fn to_model<B: Backend>(&self, device: &B::Device) -> LoraMlp<B> {
        use crate::model::{LoraAdapter, LoraLinear};
        let p2 = |v: &[f64], shape: [usize; 2]| {
            Param::from_tensor(float_tensor::<B, 2, f64>(v.to_vec(), shape, device))
        };
        let layers = self
            .layers
            .iter()
            .map(|l| {
                let base = Linear {
                    weight: p2(&l.weight, [l.d_in, l.d_out]),
                    bias: Some(Param::from_tensor(float_tensor::<B, 1, f64>(
                        l.bias.clone(),
                        [l.d_out],
                        device,
                    ))),
                };
                let mut layer = LoraLinear::frozen(base);
                layer.adapter = l.adapter.as_ref().map(|ad| LoraAdapter {
                    a: p2(&ad.a, [ad.rank, l.d_in]),
                    b: p2(&ad.b, [l.d_out, ad.rank]),
                    scale: ad.scale as f32,
                });
                layer
            })
            .collect();
        LoraMlp { layers }
    }
}

/// One adapter on a device.
#[derive(Clone, Debug)]
pub struct DeviceAdapter<B: Backend> {
    a: Tensor<B, 2>,
    b: Tensor<B, 2>,
    scale: f64,
}

/// One layer on a device.
#[derive(Clone, Debug)]
pub struct DeviceLayer<B: Backend> {
    weight: Tensor<B, 2>,
    bias: Tensor<B, 2>,
    adapter: Option<DeviceAdapter<B>>,
}

/// A [`LoraParams`] snapshot uploaded to a device: batched forward passes and per-example
/// LoRA gradients with tensor ops, no autodiff.
#[derive(Clone, Debug)]
pub struct DeviceParams<B: Backend> {
    layers: Vec<DeviceLayer<B>>,
    classes: usize,
    /// The same weights for the fused host kernel, on burn's CPU backend only.
    kernel: Option<HostKernel>,
}

/// Whether `B` is burn's CPU backend in `f32`, where the per-example gradients of the
/// indexes come from the fused host kernel ([`super::kernel`]) instead of tensor operations.
fn uses_host_kernel<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<NdArray<f32>>()
}

/// What the forward pass keeps for the backward pass.
struct Trace<B: Backend> {
    /// Input of every layer `[n, in]`.
    inputs: Vec<Tensor<B, 2>>,
    /// `x·Aᵀ` `[n, r]` of every adapted layer.
    down: Vec<Option<Tensor<B, 2>>>,
    /// ReLU derivative `1[z > 0]` of every hidden layer `[n, out]`.
    masks: Vec<Tensor<B, 2>>,
    /// Logits `[n, classes]`.
    logits: Tensor<B, 2>,
}

impl<B: Backend> DeviceParams<B> {
    fn trace(&self, x: Tensor<B, 2>) -> Trace<B> {
        let last = self.layers.len() - 1;
        let mut inputs = Vec::with_capacity(self.layers.len());
        let mut down = Vec::with_capacity(self.layers.len());
        let mut masks = Vec::with_capacity(last);
        let mut h = x;
        for (i, l) in self.layers.iter().enumerate() {
            let mut z = h.clone().matmul(l.weight.clone()) + l.bias.clone();
            let u = l.adapter.as_ref().map(|ad| {
                let u = h.clone().matmul(ad.a.clone().transpose());
                z = z.clone()
                    + u.clone()
                        .matmul(ad.b.clone().transpose())
                        .mul_scalar(ad.scale);
                u
            });
            inputs.push(h);
            down.push(u);
            if i < last {
                // 1 where z > 0, else 0 (sign of the ReLU keeps the float dtype)
                let mask = burn::tensor::activation::relu(z.clone()).sign();
                h = z * mask.clone();
                masks.push(mask);
            } else {
                h = z;
            }
        }
        Trace {
            inputs,
            down,
            masks,
            logits: h,
        }
    }

    /// Logits `[n, classes]` of a batch `[n, in]`.
    pub fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.trace(x).logits
    }

    /// Per-example gradients `[n, P]` of the softmax cross-entropy loss of `(x_i, y_i)`
    /// with respect to the LoRA vector, back-propagated by hand through the ReLU stack:
    /// with `δ` the gradient at a layer's output, `u = A·x` and scale `s`,
    /// `∂B = s·δ ⊗ u` and `∂A = s·(Bᵀδ) ⊗ x`; `δ` flows back through `Wᵀ + s·AᵀBᵀ` and
    /// the ReLU mask. `onehot` is `[n, classes]`.
    pub fn per_example_gradients(&self, x: Tensor<B, 2>, onehot: Tensor<B, 2>) -> Tensor<B, 2> {
        self.backward(x, onehot, |d: Tensor<B, 2>, v: Tensor<B, 2>| {
            let ([n, a], [_, b]) = (d.dims(), v.dims());
            (d.reshape([n, a, 1]) * v.reshape([n, 1, b])).reshape([n, a * b])
        })
    }

    /// Per-example gradients `[m, P]` of host rows `x` `[m, in]` at one-hot `onehot` `[m,
    /// classes]` into `out` (row-major): the fused host kernel on burn's CPU backend,
    /// [`per_example_gradients`](Self::per_example_gradients) on the device elsewhere.
    /// Every gradient an index stores, recomputes or scores with comes from here.
    pub(super) fn gradients_into(
        &self,
        (x, onehot): (&[f32], &[f32]),
        out: &mut [f32],
        device: &B::Device,
    ) -> Result<(), InfluenceError> {
        if let Some(kernel) = &self.kernel {
            kernel.gradients_into(x, onehot, out);
            return Ok(());
        }
        out.copy_from_slice(&to_host(self.uploaded_gradients((x, onehot), device))?);
        Ok(())
    }

    /// [`gradients_into`](Self::gradients_into) as a tensor `[m, P]` on the device (no
    /// host round trip off the CPU backend).
    pub(super) fn gradients(
        &self,
        (x, onehot): (&[f32], &[f32]),
        device: &B::Device,
    ) -> Tensor<B, 2> {
        match &self.kernel {
            Some(kernel) => {
                let (m, p) = (onehot.len() / self.classes, kernel.dim());
                let mut out = vec![0.0f32; m * p];
                kernel.gradients_into(x, onehot, &mut out);
                float_tensor::<B, 2, f32>(out, [m, p], device)
            }
            None => self.uploaded_gradients((x, onehot), device),
        }
    }

    /// [`per_example_gradients`](Self::per_example_gradients) of host rows uploaded to
    /// `device`.
    fn uploaded_gradients(
        &self,
        (x, onehot): (&[f32], &[f32]),
        device: &B::Device,
    ) -> Tensor<B, 2> {
        let m = onehot.len() / self.classes;
        self.per_example_gradients(
            float_tensor::<B, 2, f32>(x.to_vec(), [m, x.len() / m.max(1)], device),
            float_tensor::<B, 2, f32>(onehot.to_vec(), [m, self.classes], device),
        )
    }

    /// The mean over the batch of [`per_example_gradients`](Self::per_example_gradients),
    /// `[1, P]`, by matrix products rather than per-example outer products.
    pub fn mean_gradient(&self, x: Tensor<B, 2>, onehot: Tensor<B, 2>) -> Tensor<B, 2> {
        let n = x.dims()[0] as f64;
        self.backward(x, onehot, |d: Tensor<B, 2>, v: Tensor<B, 2>| {
            let ([_, a], [_, b]) = (d.dims(), v.dims());
            d.transpose().matmul(v).reshape([1, a * b]).div_scalar(n)
        })
    }

    /// The backward pass; `outer(d, v)` turns the per-example factors `[n, a]`, `[n, b]`
    /// of a weight gradient into its rows (flattened `a × b`).
    fn backward(
        &self,
        x: Tensor<B, 2>,
        onehot: Tensor<B, 2>,
        outer: impl Fn(Tensor<B, 2>, Tensor<B, 2>) -> Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let first = self
            .layers
            .iter()
            .position(|l| l.adapter.is_some())
            .expect("LoraParams::from_model guarantees an adapter");
        let t = self.trace(x);
        let mut delta = burn::tensor::activation::softmax(t.logits, 1) - onehot;
        let mut blocks: Vec<Tensor<B, 2>> = Vec::new();
        for i in (first..self.layers.len()).rev() {
            let l = &self.layers[i];
            let mut back = delta.clone().matmul(l.weight.clone().transpose());
            if let (Some(ad), Some(u)) = (&l.adapter, &t.down[i]) {
                let bt_delta = delta.clone().matmul(ad.b.clone()).mul_scalar(ad.scale);
                let grad_b = outer(delta.clone().mul_scalar(ad.scale), u.clone());
                let grad_a = outer(bt_delta.clone(), t.inputs[i].clone());
                // collected in reverse; flipped below into A-then-B, input layer first
                blocks.push(grad_b);
                blocks.push(grad_a);
                back = back + bt_delta.matmul(ad.a.clone());
            }
            if i > first {
                delta = back * t.masks[i - 1].clone();
            }
        }
        blocks.reverse();
        Tensor::cat(blocks, 1)
    }

    /// Number of classes.
    pub fn classes(&self) -> usize {
        self.classes
    }
}
