//! The base model: a multi-layer perceptron classifier with ReLU hidden layers.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::RngExt;

use super::ModelError;
use super::cost::{self, Kernels};
use super::train::Classifier;
use crate::data::rng::{Stream, stream};

/// Shape of an [`Mlp`]: `input_dim -> hidden[0] -> ... -> classes`.
#[derive(Clone, Debug, PartialEq)]
pub struct MlpConfig {
    /// Number of input features (a domain's [`dim`](crate::data::Domain::dim)).
    pub input_dim: usize,
    /// Widths of the hidden layers (may be empty for a linear model).
    pub hidden: Vec<usize>,
    /// Number of classes (2 for Datanet records).
    pub classes: usize,
}

impl MlpConfig {
    /// A binary classifier over `input_dim` features with the given hidden widths.
    pub fn binary(input_dim: usize, hidden: &[usize]) -> MlpConfig {
        MlpConfig {
            input_dim,
            hidden: hidden.to_vec(),
            classes: 2,
        }
    }

    /// `(in, out)` of every dense layer, in order.
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.input_dim];
        widths.extend(&self.hidden);
        widths.push(self.classes);
        widths.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// Checks that every dimension is positive and there are at least two classes.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.input_dim == 0 {
            return Err(ModelError::Config("input_dim must be at least 1".into()));
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            return Err(ModelError::Config(format!("hidden layer {i} has width 0")));
        }
        if self.classes < 2 {
            return Err(ModelError::Config(format!(
                "classes must be at least 2, got {}",
                self.classes
            )));
        }
        Ok(())
    }

    /// Builds the model, initialising layer `i` from the stream `"model/mlp/init/<i>"` of
    /// `seed` (uniform in `±1/sqrt(in)`, burn's default Kaiming-uniform bound).
    pub fn init<B: Backend>(&self, seed: u64, device: &B::Device) -> Result<Mlp<B>, ModelError> {
        self.validate()?;
        let layers = self
            .layer_dims()
            .into_iter()
            .enumerate()
            .map(|(i, (d_in, d_out))| {
                let mut rng = stream(seed, &format!("model/mlp/init/{i}"));
                init_linear(&mut rng, d_in, d_out, device)
            })
            .collect();
        Ok(Mlp { layers })
    }
}

/// Draws `n` values uniform in `[-bound, bound)`.
pub(crate) fn uniform(rng: &mut Stream, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

/// A float parameter from host values.
pub(crate) fn param<B: Backend, const D: usize>(
    values: Vec<f32>,
    shape: [usize; D],
    device: &B::Device,
) -> Param<Tensor<B, D>> {
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

/// A dense layer (burn's row layout: weight `[in, out]`) initialised from `rng`.
pub(crate) fn init_linear<B: Backend>(
    rng: &mut Stream,
    d_in: usize,
    d_out: usize,
    device: &B::Device,
) -> Linear<B> {
    let bound = 1.0 / (d_in as f32).sqrt();
    let weight = param(uniform(rng, d_in * d_out, bound), [d_in, d_out], device);
    let bias = param(uniform(rng, d_out, bound), [d_out], device);
    Linear {
        weight,
        bias: Some(bias),
    }
}

/// `(in, out)` of a dense layer.
pub(crate) fn linear_dims<B: Backend>(layer: &Linear<B>) -> (usize, usize) {
    let [d_in, d_out] = layer.weight.shape().dims();
    (d_in, d_out)
}

/// Multi-layer perceptron: dense layers with ReLU between them, logits out.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    /// The dense layers, input first.
    pub layers: Vec<Linear<B>>,
}

impl<B: Backend> Mlp<B> {
    /// The configuration this model has.
    pub fn config(&self) -> MlpConfig {
        let dims: Vec<(usize, usize)> = self.layers.iter().map(linear_dims).collect();
        MlpConfig {
            input_dim: dims.first().map_or(0, |d| d.0),
            hidden: dims[..dims.len().saturating_sub(1)]
                .iter()
                .map(|d| d.1)
                .collect(),
            classes: dims.last().map_or(0, |d| d.1),
        }
    }

    /// Logits `[batch, classes]` of a batch `[batch, input_dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        relu_stack(&self.layers, x, |layer, h| layer.forward(h))
    }
}

impl<B: Backend> Classifier<B> for Mlp<B> {
    fn logits(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.forward(x)
    }

    fn input_dim(&self) -> usize {
        self.config().input_dim
    }

    fn classes(&self) -> usize {
        self.config().classes
    }

    fn forward_kernels(&self, batch: usize) -> Kernels {
        cost::mlp_forward(batch, &unadapted(&self.config()))
    }

    fn backward_kernels(&self, batch: usize) -> Kernels {
        cost::mlp_backward(batch, &unadapted(&self.config()), true)
    }

    fn trainable_params(&self) -> u64 {
        self.num_params() as u64
    }

    fn trainable_tensors(&self) -> usize {
        2 * self.config().layer_dims().len()
    }
}

/// Runs `layers` in order with a ReLU between consecutive layers (none after the last).
pub(crate) fn relu_stack<B: Backend, L>(
    layers: &[L],
    x: Tensor<B, 2>,
    forward: impl Fn(&L, Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    let last = layers.len().saturating_sub(1);
    layers.iter().enumerate().fold(x, |h, (i, layer)| {
        let h = forward(layer, h);
        if i < last { relu(h) } else { h }
    })
}

/// The layers of `config` for [`cost`], none of them adapted.
fn unadapted(config: &MlpConfig) -> Vec<(usize, usize, Option<usize>)> {
    config
        .layer_dims()
        .into_iter()
        .map(|(d_in, d_out)| (d_in, d_out, None))
        .collect()
}
