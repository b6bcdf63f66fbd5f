//! The influence index: training gradients computed once per adapter, preconditioned by
//! the chosen method, optionally projected, and kept on the device, so attributing a
//! batch of inferences is one matrix product.

use std::time::Instant;

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use super::InfluenceError;
use super::exact::{
    Curvature, Damping, damped_inverse, damped_inverse_flops, gauss_newton, hessian,
};
use super::params::{DeviceParams, LoraParams, LoraShape, float_tensor};
use super::projection::ProjectionConfig;
use super::stored::{HostMatrix, to_host};
use crate::data::{ContributorId, FeatureRecord};
use crate::model::cost::{Kernels, StepCost, in_batches};
use crate::model::train::{check_examples, train_with_hook};
use crate::model::{
    AdapterJob, Example, LoraMlp, TrainConfig, TrainReport, train_batched_with_hook,
};

/// How a training gradient is weighted against a query gradient.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// TracIn (Pruthi et al. 2020): `Σ_c η·∇L(z; θ_c)·∇L(x; θ_c)` over the end-of-epoch
    /// checkpoints `θ_c` of the adapter's training, `η` its (constant Adam) learning rate.
    TracIn,
    /// DataInf (Kwon et al. 2024): per LoRA matrix `l` (each `A` and each `B`), the damped
    /// inverse of `G_lᵀG_l/n + λ_l·I` approximated by
    /// `(1/λ_l)·(I − (1/n)·Σ_i g_i g_iᵀ / (λ_l + ‖g_i‖²))`, with damping
    /// `λ_l = damping_ratio · mean_i ‖g_{i,l}‖² / P_l` (DataInf's own choice is 0.1).
    DataInf {
        /// Damping relative to the mean squared gradient entry of the matrix.
        damping_ratio: f64,
    },
    /// Exact influence `∇L(x)ᵀ·(M + λI)⁻¹·∇L(z)` with a dense curvature `M` of the mean
    /// training loss (the full Hessian or Gauss-Newton) and `λ = max(0, −e_min(M)) +
    /// damping_ratio·mean|e(M)|` over its eigenvalues `e` (see [`exact`](super::exact)).
    Exact {
        /// The curvature matrix.
        curvature: Curvature,
        /// Damping relative to the curvature's mean absolute eigenvalue.
        damping_ratio: f64,
    },
}

impl Method {
    /// DataInf with its authors' damping (0.1 of the mean squared gradient entry).
    pub const DATAINF: Method = Method::DataInf { damping_ratio: 0.1 };
    /// Exact influence with the full Hessian, damped by 0.01 of its mean absolute
    /// eigenvalue beyond its most negative eigenvalue.
    pub const EXACT: Method = Method::Exact {
        curvature: Curvature::Hessian,
        damping_ratio: 0.01,
    };
    /// Exact influence with the Gauss-Newton matrix, damped by 0.01 of its mean eigenvalue.
    pub const EXACT_GN: Method = Method::Exact {
        curvature: Curvature::GaussNewton,
        damping_ratio: 0.01,
    };

    /// Stable name: `tracin`, `datainf` or `exact`.
    pub fn name(&self) -> &'static str {
        match self {
            Method::TracIn => "tracin",
            Method::DataInf { .. } => "datainf",
            Method::Exact { .. } => "exact",
        }
    }
}

/// How to build an [`InfluenceIndex`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InfluenceConfig {
    /// The method.
    pub method: Method,
    /// Random projection of the (preconditioned) gradients; `None` keeps all `P`.
    pub projection: Option<ProjectionConfig>,
    /// Examples per batched gradient pass and per scoring GEMM.
    pub batch_size: usize,
}

impl InfluenceConfig {
    /// `method`, no projection, batches of 256.
    pub fn new(method: Method) -> InfluenceConfig {
        InfluenceConfig {
            method,
            projection: None,
            batch_size: 256,
        }
    }
}

/// Stored gradients read back to the host at once by
/// [`InfluenceIndex::grouped_scores`] (64 MB).
const GROUPING_FLOATS_AT_ONCE: usize = 16 << 20;

/// The parameter snapshots of an adapter's training: one per epoch end (the last is the
/// trained adapter), with the learning rate TracIn weights them by.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterTrace {
    /// End-of-epoch snapshots, first epoch first.
    pub checkpoints: Vec<LoraParams>,
    /// The training's learning rate `η`.
    pub learning_rate: f64,
}

impl AdapterTrace {
    /// The trained adapter (the last checkpoint).
    pub fn final_params(&self) -> &LoraParams {
        self.checkpoints
            .last()
            .expect("a trace has at least one epoch")
    }
}

/// Trains `model` like [`train`](crate::model::train()) and keeps an end-of-epoch
/// snapshot of every epoch for TracIn.
pub fn train_traced<B, E>(
    model: LoraMlp<B>,
    data: &[E],
    config: &TrainConfig,
    device: &B::Device,
) -> Result<(LoraMlp<B>, TrainReport, AdapterTrace), InfluenceError>
where
    B: AutodiffBackend,
    E: Example,
{
    let mut snapshots = Vec::with_capacity(config.epochs);
    let (model, report) = train_with_hook(model, data, config, device, |_, m| {
        snapshots.push(LoraParams::from_model(m));
    })?;
    Ok((model, report, trace(snapshots, config)?))
}

/// [`train_traced`] of several adapters over one frozen base, trained together in batched
/// passes by [`train_batched_with_hook`] (bit-identical to training each alone); in job
/// order.
pub fn train_traced_batched<B, E>(
    jobs: Vec<AdapterJob<'_, B, E>>,
    device: &B::Device,
) -> Result<Vec<(LoraMlp<B>, TrainReport, AdapterTrace)>, InfluenceError>
where
    B: AutodiffBackend,
    E: Example,
{
    let configs: Vec<TrainConfig> = jobs.iter().map(|j| j.config.clone()).collect();
    let mut snapshots: Vec<Vec<_>> = configs
        .iter()
        .map(|c| Vec::with_capacity(c.epochs))
        .collect();
    let trained = train_batched_with_hook(jobs, device, |k, _, m| {
        snapshots[k].push(LoraParams::from_model(m));
    })?;
    trained
        .into_iter()
        .zip(snapshots)
        .zip(&configs)
        .map(|(((model, report), snapshots), config)| {
            Ok((model, report, trace(snapshots, config)?))
        })
        .collect()
}

/// The trace of a training run from its end-of-epoch snapshots.
fn trace(
    snapshots: Vec<Result<LoraParams, InfluenceError>>,
    config: &TrainConfig,
) -> Result<AdapterTrace, InfluenceError> {
    Ok(AdapterTrace {
        checkpoints: snapshots.into_iter().collect::<Result<Vec<_>, _>>()?,
        learning_rate: config.learning_rate,
    })
}

/// Row-major host features `[n, in]` and one-hot labels `[n, classes]`.
fn host_batch<E: Example>(data: &[E], classes: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = Vec::new();
    let mut y = vec![0.0f32; data.len() * classes];
    for (i, e) in data.iter().enumerate() {
        x.extend_from_slice(e.features());
        y[i * classes + e.label() as usize] = 1.0;
    }
    (x, y)
}

fn tensor<B: Backend>(v: &[f32], shape: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    float_tensor::<B, 2, f32>(v.to_vec(), shape, device)
}

fn sync<B: Backend>(device: &B::Device) -> Result<(), InfluenceError> {
    B::sync(device).map_err(|e| InfluenceError::Tensor(format!("device sync: {e:?}")))
}

/// A batch of examples on the device: features `[n, in]`, one-hot labels `[n, classes]`.
struct Batch<B: Backend> {
    x: Tensor<B, 2>,
    onehot: Tensor<B, 2>,
}

/// Attribution of a batch of queries to the indexed training records.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    /// Number of queries `m`.
    pub queries: usize,
    /// Number of training records `n`.
    pub records: usize,
    /// `scores[q·n + r]`: influence of record `r` on query `q`. Positive means helpful:
    /// removing the record would raise the query's loss by about `score / n`.
    pub scores: Vec<f32>,
    /// The contributors, ascending (columns of `by_contributor`).
    pub contributors: Vec<ContributorId>,
    /// `by_contributor[q·C + c]`: the summed scores of contributor `c`'s records on query
    /// `q`.
    pub by_contributor: Vec<f32>,
    /// Measured wall time and counted kernels of the whole attribution.
    pub cost: StepCost,
}

impl Attribution {
    /// The score of record `record` on query `query`.
    pub fn score(&self, query: usize, record: usize) -> f32 {
        self.scores[query * self.records + record]
    }

    /// Every record's score summed over the queries (in `f64`).
    pub fn per_record(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.records];
        for row in self.scores.chunks(self.records.max(1)) {
            for (o, s) in out.iter_mut().zip(row) {
                *o += f64::from(*s);
            }
        }
        out
    }

    /// Every contributor's score summed over the queries, with its id.
    pub fn per_contributor(&self) -> Vec<(ContributorId, f64)> {
        let c = self.contributors.len();
        let mut out = vec![0.0; c];
        for row in self.by_contributor.chunks(c.max(1)) {
            for (o, s) in out.iter_mut().zip(row) {
                *o += f64::from(*s);
            }
        }
        self.contributors.iter().copied().zip(out).collect()
    }
}

/// Every indexed record's influence summed over a set of served outputs (see
/// [`InfluenceIndex::attribute_outputs_total`]).
#[derive(Clone, Debug, PartialEq)]
pub struct OutputTotals {
    /// Outputs attributed.
    pub outputs: usize,
    /// `per_record[r]`: record `r`'s score summed over every output.
    pub per_record: Vec<f64>,
    /// Measured wall time and counted FLOPs.
    pub cost: StepCost,
}

/// Stored training gradients of one adapter for one method (see the module docs).
#[derive(Clone, Debug)]
pub struct InfluenceIndex<B: Backend> {
    config: InfluenceConfig,
    /// Query-side parameters and the square root of each one's weight.
    checkpoints: Vec<(DeviceParams<B>, f64)>,
    /// Final parameters, for predicting the labels of inference outputs.
    final_params: DeviceParams<B>,
    /// Preconditioned (and projected) training gradients, transposed: `[K, n]`.
    train_t: Tensor<B, 2>,
    projection: Option<Tensor<B, 2>>,
    /// `author_column[r]`: the index in `contributors` of record `r`'s author (a sparse
    /// membership matrix: a dense `[n, C]` one is too large at scale).
    author_column: Vec<usize>,
    contributors: Vec<ContributorId>,
    records: usize,
    lora_dim: usize,
    input_dim: usize,
    classes: usize,
    shape: LoraShape,
    precompute: StepCost,
    damping: Option<Damping>,
    /// Self-influence of each training record, from the build.
    self_influence: Vec<f32>,
    device: B::Device,
}

impl<B: Backend> InfluenceIndex<B> {
    /// Computes, preconditions and stores the training gradients of `records` (the
    /// adapter's training set, in the order scores will use) for `trace`'s adapter.
    pub fn build(
        trace: &AdapterTrace,
        records: &[FeatureRecord],
        config: &InfluenceConfig,
        device: &B::Device,
    ) -> Result<InfluenceIndex<B>, InfluenceError> {
        let start = Instant::now();
        let params = trace.final_params();
        let (n, dim, classes, p) = (
            records.len(),
            params.input_dim(),
            params.classes(),
            params.dim(),
        );
        validate(config, n)?;
        check_examples(records, dim, classes)?;
        let (x, onehot) = host_batch(records, classes);
        let projection = config.projection.map(|pc| pc.tensor::<B>(p, device));
        let k = config.projection.map_or(p, |pc| pc.dim);
        let shape = params.shape();
        let batch = config.batch_size;
        let gradients_of_all = in_batches(n, batch, |m| shape.gradients(m));
        let mut work = Kernels::default();
        let mut damping = None;
        let final_params = params.to_device::<B>(device);
        let host = (&x[..], &onehot[..]);
        let gradients =
            |dp: &DeviceParams<B>| HostMatrix::gradients(dp, host, (n, p), batch, device);
        // `[n, p]` to `[n, k]` by the projection, where there is one, and its kernels.
        let project = |g: Tensor<B, 2>| match &projection {
            Some(r) => g.matmul(r.clone()),
            None => g,
        };
        let projection_work = match projection {
            Some(_) => Kernels::matmul(n, p, k),
            None => Kernels::default(),
        };

        // The stored gradients, and each training record's self-influence: its query-side
        // gradient (the raw one, projected and weighted as queries are) dotted with its
        // stored row, read off here rather than recomputing its gradient.
        let (checkpoints, stored, self_scores) = match config.method {
            Method::TracIn => {
                let w = trace.learning_rate.sqrt();
                let cps: Vec<(DeviceParams<B>, f64)> = trace
                    .checkpoints
                    .iter()
                    .map(|c| (c.to_device::<B>(device), w))
                    .collect();
                let mut stored = HostMatrix::zeros(n, cps.len() * k);
                for (c, (dp, w)) in cps.iter().enumerate() {
                    let g = gradients(dp)?.into_tensor(device).mul_scalar(*w);
                    work += gradients_of_all + Kernels::elementwise(n * p, n * p, n * p);
                    stored.replace_columns(c * k, project(g), None)?;
                    work += projection_work;
                }
                // Each checkpoint's query side is its stored block.
                let self_scores = stored.row_dots(&stored);
                (cps, stored, self_scores)
            }
            Method::DataInf { damping_ratio } => {
                // Each layer's block is preconditioned and written back over its columns.
                let mut g = gradients(&final_params)?;
                work += gradients_of_all;
                let query = match projection {
                    Some(_) => Some(HostMatrix::from_tensor(project(
                        g.columns::<B>(0, p, device),
                    ))?),
                    None => None,
                };
                let mut dots = vec![0.0; n];
                for b in params.blocks() {
                    let (pre, k) = datainf_block(
                        g.columns::<B>(b.offset, b.len, device),
                        damping_ratio,
                        device,
                    )?;
                    work += k;
                    g.replace_columns(b.offset, pre, Some(&mut dots))?;
                }
                let (stored, self_scores) = match query {
                    Some(query) => {
                        let stored = HostMatrix::from_tensor(project(g.into_tensor(device)))?;
                        work += projection_work + projection_work;
                        let dots = query.row_dots(&stored);
                        (stored, dots)
                    }
                    None => (g, dots),
                };
                (vec![(final_params.clone(), 1.0)], stored, self_scores)
            }
            Method::Exact {
                curvature,
                damping_ratio,
            } => {
                // The curvature and its inverse are host (f64) work: FLOPs, no kernels.
                let gradient_flops = shape.gradients(1).flops;
                let nf = n as u64;
                let m = match curvature {
                    Curvature::Hessian => {
                        work.flops += 2 * p as u64 * nf * gradient_flops;
                        hessian(params, &x, &onehot, n)?
                    }
                    Curvature::GaussNewton => {
                        work.flops += classes as u64 * nf * (gradient_flops + 2 * (p * p) as u64);
                        gauss_newton(params, &x, n)?
                    }
                };
                let (inv, d) = damped_inverse(&m, p, damping_ratio)?;
                damping = Some(d);
                work.flops += damped_inverse_flops(p);
                let inv: Vec<f32> = inv.into_iter().map(|v| v as f32).collect();
                let g = gradients(&final_params)?.into_tensor(device);
                work += gradients_of_all + Kernels::matmul(n, p, p);
                let pre = g.clone().matmul(tensor::<B>(&inv, [p, p], device));
                let query = HostMatrix::from_tensor(project(g))?;
                let stored = HostMatrix::from_tensor(project(pre))?;
                work += projection_work + projection_work;
                let self_scores = query.row_dots(&stored);
                (vec![(final_params.clone(), 1.0)], stored, self_scores)
            }
        };
        // The self-influences' row dots, over every stored column.
        let stored_k = checkpoints.len() * k;
        work += Kernels::elementwise(2 * n * stored_k, n, n * stored_k);
        let self_influence = self_scores.into_iter().map(|v| v as f32).collect();
        let train_t = stored.into_tensor(device).transpose();

        let mut contributors: Vec<ContributorId> = records.iter().map(|r| r.author).collect();
        contributors.sort_unstable();
        contributors.dedup();
        let author_column = records
            .iter()
            .map(|r| {
                contributors
                    .binary_search(&r.author)
                    .expect("collected above")
            })
            .collect();
        sync::<B>(device)?;
        let precompute = StepCost::new(B::name(device), start.elapsed().as_secs_f64(), work);
        Ok(InfluenceIndex {
            config: *config,
            checkpoints,
            final_params,
            train_t,
            projection,
            author_column,
            contributors,
            records: n,
            lora_dim: p,
            input_dim: dim,
            classes,
            shape,
            precompute,
            damping,
            self_influence,
            device: device.clone(),
        })
    }

    /// Measured wall time and counted kernels of [`build`](Self::build): the training
    /// gradients, the preconditioner and the projection.
    pub fn precompute_cost(&self) -> &StepCost {
        &self.precompute
    }

    /// The exact method's damping (`None` for the other methods).
    pub fn damping(&self) -> Option<&Damping> {
        self.damping.as_ref()
    }

    /// The configuration the index was built with.
    pub fn config(&self) -> &InfluenceConfig {
        &self.config
    }

    /// Width `K` of the stored gradients (checkpoints × `P` or the projection dimension).
    pub fn stored_dim(&self) -> usize {
        self.train_t.dims()[0]
    }

    /// Number of LoRA parameters `P`.
    pub fn lora_dim(&self) -> usize {
        self.lora_dim
    }

    /// The contributors of the indexed records, ascending.
    pub fn contributors(&self) -> &[ContributorId] {
        &self.contributors
    }

    /// Query-side gradients `[m, K]` of a batch, and their kernels.
    fn query_matrix(&self, batch: &Batch<B>) -> (Tensor<B, 2>, Kernels) {
        let m = batch.x.dims()[0];
        let mut work = Kernels::default();
        let mut parts = Vec::with_capacity(self.checkpoints.len());
        for (dp, w) in &self.checkpoints {
            let mut g = dp.per_example_gradients(batch.x.clone(), batch.onehot.clone());
            work += self.shape.gradients(m);
            if let Some(r) = &self.projection {
                g = g.matmul(r.clone());
                work += Kernels::matmul(m, self.lora_dim, r.dims()[1]);
            }
            if *w != 1.0 {
                g = g.mul_scalar(*w);
                let k = m * g.dims()[1];
                work += Kernels::elementwise(k, k, k);
            }
            parts.push(g);
        }
        (Tensor::cat(parts, 1), work)
    }

    fn batches<'a, E: Example>(
        &'a self,
        data: &'a [E],
    ) -> Result<impl Iterator<Item = Batch<B>> + 'a, InfluenceError> {
        check_examples(data, self.input_dim, self.classes)?;
        Ok(data.chunks(self.config.batch_size).map(|chunk| {
            let (x, y) = host_batch(chunk, self.classes);
            Batch {
                x: tensor::<B>(&x, [chunk.len(), self.input_dim], &self.device),
                onehot: tensor::<B>(&y, [chunk.len(), self.classes], &self.device),
            }
        }))
    }

    /// Attributes the loss of each query at its given label to the training records: per
    /// batch of `batch_size` queries, the query gradients and one `[m, K]·[K, n]` product;
    /// each query's record scores are then summed per contributor on the host.
    pub fn attribute<E: Example>(&self, queries: &[E]) -> Result<Attribution, InfluenceError> {
        let start = Instant::now();
        let (n, c) = (self.records, self.contributors.len());
        let mut scores = Vec::with_capacity(queries.len() * n);
        let mut by_contributor = Vec::with_capacity(queries.len() * c);
        let mut work = Kernels::default();
        for batch in self.batches(queries)? {
            let m = batch.x.dims()[0];
            let (q, k) = self.query_matrix(&batch);
            let s = q.matmul(self.train_t.clone());
            // The product, then reading its scores back to the host (summed there).
            work += k
                + Kernels::matmul(m, self.stored_dim(), n)
                + Kernels::elementwise(m * n, 0, m * n);
            let batch_scores = to_host(s)?;
            for row in batch_scores.chunks(n.max(1)) {
                let mut per_c = vec![0.0f32; c];
                for (score, &col) in row.iter().zip(&self.author_column) {
                    per_c[col] += score;
                }
                by_contributor.extend(per_c);
            }
            scores.extend(batch_scores);
        }
        Ok(Attribution {
            queries: queries.len(),
            records: n,
            scores,
            contributors: self.contributors.clone(),
            by_contributor,
            cost: StepCost::new(B::name(&self.device), start.elapsed().as_secs_f64(), work),
        })
    }

    /// For each query and each group of training records, the group's weighted score
    /// `Σ_{r in group} weight[r] · score(query, r)` (`[queries, groups]`, row-major), as
    /// summing [`attribute`](Self::attribute)'s scores would give up to rounding, without
    /// an `[queries, n]` score matrix: a score is linear in the stored gradient, so each
    /// group's stored gradients are summed first (weighted, in `f64`, on the host) and one
    /// `[m, K]·[K, groups]` product per batch of queries scores every group. `group[r]` is
    /// record `r`'s group, below `groups`.
    pub fn grouped_scores<E: Example>(
        &self,
        queries: &[E],
        group: &[usize],
        weight: &[f64],
        groups: usize,
    ) -> Result<(Vec<f64>, StepCost), InfluenceError> {
        let slice = (GROUPING_FLOATS_AT_ONCE / self.stored_dim().max(1)).max(1);
        self.grouped_scores_by_slices(queries, (group, weight, groups), slice)
    }

    /// [`grouped_scores`](Self::grouped_scores), reading `slice` records' stored gradients
    /// back at a time.
    pub(super) fn grouped_scores_by_slices<E: Example>(
        &self,
        queries: &[E],
        (group, weight, groups): (&[usize], &[f64], usize),
        slice: usize,
    ) -> Result<(Vec<f64>, StepCost), InfluenceError> {
        let start = Instant::now();
        let (n, k) = (self.records, self.stored_dim());
        if group.len() != n || weight.len() != n || group.iter().any(|&g| g >= groups) {
            return Err(InfluenceError::Config(format!(
                "grouped scores need a group below {groups} and a weight for each of the {n} \
                 indexed records (got {} groups and {} weights)",
                group.len(),
                weight.len()
            )));
        }
        // Σ weight·gradient per group, `[groups, K]`, reading the stored gradients back a
        // slice of records at a time.
        let mut summed = vec![0.0f64; k * groups];
        for first in (0..n).step_by(slice) {
            let m = slice.min(n - first);
            let rows = to_host(self.train_t.clone().narrow(1, first, m).transpose())?;
            for (r, row) in (first..).zip(rows.chunks_exact(k.max(1))) {
                let (g, w) = (group[r], weight[r]);
                for (sum, &v) in summed[g * k..(g + 1) * k].iter_mut().zip(row) {
                    *sum += w * f64::from(v);
                }
            }
        }
        let summed: Vec<f32> = summed.into_iter().map(|v| v as f32).collect();
        let summed = tensor::<B>(&summed, [groups, k], &self.device).transpose();
        let mut work = Kernels::elementwise(k * n, 0, k * n);
        let mut out = Vec::with_capacity(queries.len() * groups);
        for batch in self.batches(queries)? {
            let m = batch.x.dims()[0];
            let (q, gradients) = self.query_matrix(&batch);
            let s = q.matmul(summed.clone());
            work += gradients
                + Kernels::matmul(m, k, groups)
                + Kernels::elementwise(m * groups, 0, m * groups);
            out.extend(to_host(s)?.into_iter().map(f64::from));
        }
        let cost = StepCost::new(B::name(&self.device), start.elapsed().as_secs_f64(), work);
        Ok((out, cost))
    }

    /// Each inference input with the class the trained adapter predicts for it (the output
    /// it served).
    fn served_outputs(&self, inputs: &[Vec<f32>]) -> Result<Vec<(Vec<f32>, u8)>, InfluenceError> {
        let unlabeled: Vec<(Vec<f32>, u8)> = inputs.iter().map(|x| (x.clone(), 0)).collect();
        let mut labeled = Vec::with_capacity(inputs.len());
        for (batch, chunk) in self
            .batches(&unlabeled)?
            .zip(inputs.chunks(self.config.batch_size))
        {
            let pred = self
                .final_params
                .logits(batch.x)
                .argmax(1)
                .into_data()
                .convert::<i64>()
                .to_vec::<i64>()
                .map_err(|e| InfluenceError::Tensor(format!("{e:?}")))?;
            labeled.extend(chunk.iter().cloned().zip(pred.into_iter().map(|p| p as u8)));
        }
        Ok(labeled)
    }

    /// Attributes inference outputs: each input's loss at the class the trained adapter
    /// predicts for it (the output it served), then as [`attribute`](Self::attribute).
    pub fn attribute_outputs(&self, inputs: &[Vec<f32>]) -> Result<Attribution, InfluenceError> {
        let start = Instant::now();
        let labeled = self.served_outputs(inputs)?;
        let mut out = self.attribute(&labeled)?;
        let counted = out.cost.kernels() + self.labelling_work(inputs.len());
        out.cost = StepCost::new(out.cost.device, start.elapsed().as_secs_f64(), counted);
        Ok(out)
    }

    /// The work of predicting the served class of `n` inputs: a forward pass and an argmax
    /// per batch.
    fn labelling_work(&self, n: usize) -> Kernels {
        in_batches(n, self.config.batch_size, |m| {
            self.shape.forward(m) + Kernels::elementwise(m * self.classes, m, 0)
        })
    }

    /// Every record's score summed over all of `inputs`' served outputs: what
    /// [`attribute_outputs`](Self::attribute_outputs)`(inputs).per_record()` gives, without
    /// an `[m, n]` score matrix. A score is linear in the query gradient, so the query
    /// gradients are summed first (in `f64`, per batch of `batch_size`) and one `[1, K]·[K,
    /// n]` product scores every record against the sum: attributing every served output
    /// costs one gradient per output plus one product, not one product per output.
    pub fn attribute_outputs_total(
        &self,
        inputs: &[Vec<f32>],
    ) -> Result<OutputTotals, InfluenceError> {
        let start = Instant::now();
        let labeled = self.served_outputs(inputs)?;
        let k = self.stored_dim();
        let mut sum = vec![0.0f64; k];
        let mut work = self.labelling_work(inputs.len());
        for batch in self.batches(&labeled)? {
            let m = batch.x.dims()[0];
            let (q, gradients) = self.query_matrix(&batch);
            for (total, v) in sum.iter_mut().zip(to_host(q.sum_dim(0))?) {
                *total += f64::from(v);
            }
            // The column sums, then reading them back to the host (added there).
            work += gradients + Kernels::elementwise(m * k, k, m * k);
        }
        let sum: Vec<f32> = sum.into_iter().map(|v| v as f32).collect();
        let scores = tensor::<B>(&sum, [1, k], &self.device).matmul(self.train_t.clone());
        let n = self.records;
        work += Kernels::matmul(1, k, n) + Kernels::elementwise(n, 0, 0);
        Ok(OutputTotals {
            outputs: inputs.len(),
            per_record: to_host(scores)?.into_iter().map(f64::from).collect(),
            cost: StepCost::new(B::name(&self.device), start.elapsed().as_secs_f64(), work),
        })
    }

    /// Self-influence `score(z, z)` of each training record, in order, as read off while
    /// building the index (no gradient is recomputed): what
    /// [`self_influence`](Self::self_influence) of the indexed records gives, up to
    /// rounding.
    pub fn training_self_influence(&self) -> &[f32] {
        &self.self_influence
    }

    /// Self-influence `score(z, z)` of each training record (the records the index was
    /// built from, in order): large for records the model finds hard to fit.
    pub fn self_influence(
        &self,
        records: &[FeatureRecord],
    ) -> Result<(Vec<f32>, StepCost), InfluenceError> {
        if records.len() != self.records {
            return Err(InfluenceError::Config(format!(
                "self-influence needs the {} indexed records, got {}",
                self.records,
                records.len()
            )));
        }
        let start = Instant::now();
        let mut out = Vec::with_capacity(records.len());
        let mut work = Kernels::default();
        let mut offset = 0;
        for batch in self.batches(records)? {
            let m = batch.x.dims()[0];
            let (q, f) = self.query_matrix(&batch);
            let g = self.train_t.clone().narrow(1, offset, m).transpose();
            let k = self.stored_dim();
            out.extend(to_host((q * g).sum_dim(1))?);
            work += f
                + Kernels::elementwise(2 * m * k, m * k, m * k)
                + Kernels::elementwise(m * k, m, m * k);
            offset += m;
        }
        Ok((
            out,
            StepCost::new(B::name(&self.device), start.elapsed().as_secs_f64(), work),
        ))
    }
}

fn validate(config: &InfluenceConfig, n: usize) -> Result<(), InfluenceError> {
    if n == 0 {
        return Err(InfluenceError::Config(
            "no training records to index".into(),
        ));
    }
    if config.batch_size == 0 {
        return Err(InfluenceError::Config(
            "batch_size must be at least 1".into(),
        ));
    }
    if config.projection.is_some_and(|p| p.dim == 0) {
        return Err(InfluenceError::Config(
            "projection dim must be at least 1 (or no projection)".into(),
        ));
    }
    let ratio = match config.method {
        Method::TracIn => 1.0,
        Method::DataInf { damping_ratio } | Method::Exact { damping_ratio, .. } => damping_ratio,
    };
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(InfluenceError::Config(format!(
            "damping ratio {ratio} must be finite and > 0"
        )));
    }
    Ok(())
}

/// DataInf's preconditioning of one LoRA matrix's gradients `g` `[n, P_l]`: returns
/// `g·Ĥ_l⁻¹` and its kernels (see [`Method::DataInf`]).
fn datainf_block<B: Backend>(
    g: Tensor<B, 2>,
    damping_ratio: f64,
    device: &B::Device,
) -> Result<(Tensor<B, 2>, Kernels), InfluenceError> {
    let [n, pl] = g.dims();
    let norms = g.clone().square().sum_dim(1); // [n, 1]
    let mean_sq = to_host(norms.clone().mean_dim(0))?[0] as f64 / pl as f64;
    let lambda = damping_ratio * mean_sq;
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(InfluenceError::Config(format!(
            "DataInf damping λ = {lambda} is not positive: the gradients of a LoRA matrix are \
             all zero (train the adapter first)"
        )));
    }
    let c = norms.add_scalar(lambda).recip(); // [n, 1]
    let weighted = g.clone() * c; // diag(c)·G
    let mut eye = vec![0.0f32; pl * pl];
    for i in 0..pl {
        eye[i * pl + i] = 1.0;
    }
    let eye = tensor::<B>(&eye, [pl, pl], device);
    let hinv =
        (eye - g.clone().transpose().matmul(weighted).div_scalar(n as f64)).div_scalar(lambda);
    let (np, pp) = (n * pl, pl * pl);
    let e = Kernels::elementwise;
    // square, row sums, their mean (read back), + λ, reciprocal, diag(c)·G, Gᵀ·(diag(c)·G),
    // ÷ n, I − ·, ÷ λ, G·Ĥ⁻¹.
    let work = e(np, np, np)
        + e(np, n, np)
        + e(n, 1, 0)
        + e(n, n, n)
        + e(n, n, 0)
        + e(np + n, np, np)
        + Kernels::matmul(pl, n, pl)
        + e(pp, pp, pp)
        + e(2 * pp, pp, pp)
        + e(pp, pp, 0)
        + Kernels::matmul(n, pl, pl);
    Ok((g.matmul(hinv), work))
}
