//! The influence index: training gradients preconditioned by the chosen method, optionally
//! projected, and either computed once per adapter and kept on the device, so attributing
//! a batch of inferences is one matrix product per slice of records, or recomputed a
//! slice at a time whenever they are scored ([`Storage`]), which gives the same scores bit
//! for bit in the memory of one slice.

use std::time::Instant;

use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use super::InfluenceError;
use super::exact::{
    Curvature, Damping, damped_inverse, damped_inverse_flops, gauss_newton, hessian,
};
use super::params::{DeviceParams, LoraParams, LoraShape, float_tensor};
use super::precondition::{Preconditioner, fit_datainf};
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
    /// Whether the stored gradients are kept or recomputed when scored.
    pub storage: Storage,
}

impl InfluenceConfig {
    /// `method`, no projection, batches of 256, stored gradients kept.
    pub fn new(method: Method) -> InfluenceConfig {
        InfluenceConfig {
            method,
            projection: None,
            batch_size: 256,
            storage: Storage::Kept,
        }
    }

    /// Width `K` of the stored gradients for `checkpoints` checkpoints of `p` LoRA
    /// parameters: `checkpoints × P`, or `checkpoints ×` the projection dimension.
    fn stored_width(&self, checkpoints: usize, p: usize) -> usize {
        checkpoints * self.projection.map_or(p, |pc| pc.dim)
    }

    /// This configuration with the storage olsim's engine gives an index of `n` records of
    /// `trace`'s adapter: its stored gradients kept up to [`KEPT_INDEX_BYTES`] of them,
    /// recomputed beyond.
    pub fn with_storage_for(self, trace: &AdapterTrace, n: usize) -> InfluenceConfig {
        let checkpoints = match self.method {
            Method::TracIn => trace.checkpoints.len(),
            _ => 1,
        };
        let kept_bytes = n
            * self.stored_width(checkpoints, trace.final_params().dim())
            * std::mem::size_of::<f32>();
        let storage = if kept_bytes > KEPT_INDEX_BYTES {
            Storage::Recomputed
        } else {
            Storage::Kept
        };
        InfluenceConfig { storage, ..self }
    }
}

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

/// The column blocks `parts` (one per checkpoint) side by side; a single block as it is
/// (burn's CPU backend copies even a one-tensor join, slowly).
fn join_columns<B: Backend>(mut parts: Vec<Tensor<B, 2>>) -> Tensor<B, 2> {
    match parts.len() {
        1 => parts.pop().expect("one part"),
        _ => Tensor::cat(parts, 1),
    }
}

/// A batch of `m` examples on the host: features `[m, in]`, one-hot labels `[m, classes]`,
/// row-major.
struct Batch {
    x: Vec<f32>,
    onehot: Vec<f32>,
    m: usize,
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

/// Where an index's stored gradients live. Both give bit-identical scores; they trade
/// memory for time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Computed once by the build and kept on the device: `[n, K]` floats (320 MB for
    /// 290,000 records and `K = 276`), and scoring reads them.
    Kept,
    /// Recomputed from the training records, a slice at a time, whenever they are scored:
    /// no `[n, K]` matrix (the records' features are kept instead), at the price of a
    /// gradient pass per scoring and three per DataInf build instead of one.
    Recomputed,
}

/// The largest stored-gradient matrix olsim's engine keeps (1 GiB: a row of 4-byte floats
/// per training record, 320 MB per classifier in `scenarios/scale.toml`). A larger index
/// recomputes its rows whenever it scores ([`Storage::Recomputed`]): the same scores bit
/// for bit, for three gradient passes per build instead of one and one more per scoring,
/// in the memory of a slice of records instead of all of them.
pub const KEPT_INDEX_BYTES: usize = 1 << 30;

/// Records whose stored gradients [`InfluenceIndex`] computes or reads at once, in units of
/// `batch_size` (so a slice's gradient batches are the build's).
const SLICE_BATCHES: usize = 64;

/// `(first, m)` of each slice of `n` records, `slice` records at a time (the last one
/// shorter).
pub(super) fn slices(n: usize, slice: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(slice.max(1))
        .map(move |f| (f, slice.min(n - f)))
}

/// The stored gradients: kept `[n, K]`, or the host training batch to recompute them from.
#[derive(Clone, Debug)]
enum StoredRows<B: Backend> {
    Kept(Tensor<B, 2>),
    Recomputed { x: Vec<f32>, onehot: Vec<f32> },
}

/// Stored training gradients of one adapter for one method (see the module docs).
#[derive(Clone, Debug)]
pub struct InfluenceIndex<B: Backend> {
    config: InfluenceConfig,
    /// Query-side parameters and the square root of each one's weight.
    checkpoints: Vec<(DeviceParams<B>, f64)>,
    /// Final parameters, for predicting the labels of inference outputs.
    final_params: DeviceParams<B>,
    /// What the training gradients are multiplied by before they are stored (one for
    /// every checkpoint).
    preconditioner: Preconditioner<B>,
    rows: StoredRows<B>,
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

/// The parts of an index that turn raw per-example gradients into stored and query-side
/// rows, shared by the build and by recomputation.
struct Rows<'a, B: Backend> {
    checkpoints: &'a [(DeviceParams<B>, f64)],
    preconditioner: &'a Preconditioner<B>,
    projection: Option<&'a Tensor<B, 2>>,
    shape: &'a LoraShape,
    /// The training batch: features `[n, in]` and one-hot labels `[n, classes]`.
    host: (&'a [f32], &'a [f32]),
    /// Features, classes and LoRA parameters per record.
    dims: (usize, usize, usize),
    batch: usize,
    device: &'a B::Device,
}

impl<B: Backend> Rows<'_, B> {
    /// Raw per-example gradients `[m, P]` (host, row-major) of records `first..first + m`
    /// at `dp`.
    fn raw(
        &self,
        dp: &DeviceParams<B>,
        first: usize,
        m: usize,
    ) -> Result<(Vec<f32>, Kernels), InfluenceError> {
        let (dim, classes, p) = self.dims;
        let (x, onehot) = self.host;
        let host = (
            &x[first * dim..(first + m) * dim],
            &onehot[first * classes..(first + m) * classes],
        );
        let g = HostMatrix::gradients(dp, host, (m, p), self.batch, self.device)?;
        let work = in_batches(m, self.batch, |b| self.shape.gradients(b));
        Ok((g.into_values(), work))
    }

    /// `g` `[m, P]` projected, where there is a projection, and scaled by `w`.
    fn project(&self, g: Tensor<B, 2>, w: f64) -> (Tensor<B, 2>, Kernels) {
        let [m, p] = g.dims();
        let mut work = Kernels::default();
        let g = match self.projection {
            Some(r) => {
                work += Kernels::matmul(m, p, r.dims()[1]);
                g.matmul(r.clone())
            }
            None => g,
        };
        if w == 1.0 {
            return (g, work);
        }
        let k = g.dims()[0] * g.dims()[1];
        (g.mul_scalar(w), work + Kernels::elementwise(k, k, k))
    }

    /// Stored rows `[m, K]` of records `first..first + m` from their raw gradients at each
    /// checkpoint (`raw`, host rows of the only checkpoint, or computed when `None`), and
    /// with `self_scores` each row's self-influence (its query-side rows dotted with its
    /// stored ones, in `f64`).
    fn stored(
        &self,
        first: usize,
        m: usize,
        raw: Option<Vec<f32>>,
        self_scores: Option<&mut Vec<f64>>,
    ) -> Result<(Tensor<B, 2>, Kernels), InfluenceError> {
        let mut work = Kernels::default();
        let mut raw = raw;
        let mut parts = Vec::with_capacity(self.checkpoints.len());
        let mut dots = self_scores.as_ref().map(|_| vec![0.0f64; m]);
        for (dp, w) in self.checkpoints {
            let g = match raw.take() {
                Some(g) => g,
                None => {
                    let (g, k) = self.raw(dp, first, m)?;
                    work += k;
                    g
                }
            };
            // The query side (only for the self-influences) before `g` is preconditioned.
            let p = self.dims.2;
            let query = dots.is_some().then(|| {
                self.project(
                    float_tensor::<B, 2, f32>(g.clone(), [m, p], self.device),
                    *w,
                )
            });
            let (pre, k) = self.preconditioner.apply(g, (m, p), self.device);
            work += k;
            let (stored, k) = self.project(pre, *w);
            work += k;
            if let (Some(dots), Some((query, k))) = (dots.as_mut(), query) {
                let width = stored.dims()[1];
                let row_dots = to_host((query * stored.clone()).sum_dim(1))?;
                for (d, v) in dots.iter_mut().zip(row_dots) {
                    *d += f64::from(v);
                }
                work += k
                    + Kernels::elementwise(2 * m * width, m * width, m * width)
                    + Kernels::elementwise(m * width, m, m * width);
            }
            parts.push(stored);
        }
        if let (Some(out), Some(dots)) = (self_scores, dots) {
            out.extend(dots);
        }
        Ok((join_columns(parts), work))
    }
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
        let shape = params.shape();
        let batch = config.batch_size;
        let slice = batch * SLICE_BATCHES;
        let mut work = Kernels::default();
        let mut damping = None;
        let final_params = params.to_device::<B>(device);
        let checkpoints: Vec<(DeviceParams<B>, f64)> = match config.method {
            Method::TracIn => {
                let w = trace.learning_rate.sqrt();
                trace
                    .checkpoints
                    .iter()
                    .map(|c| (c.to_device::<B>(device), w))
                    .collect()
            }
            _ => vec![(final_params.clone(), 1.0)],
        };
        let mut rows = Rows {
            checkpoints: &checkpoints,
            preconditioner: &Preconditioner::Identity,
            projection: projection.as_ref(),
            shape: &shape,
            host: (&x, &onehot),
            dims: (dim, classes, p),
            batch,
            device,
        };
        // DataInf keeping its rows computes the raw gradients once and fits and
        // preconditions from them; otherwise each pass computes the slice's own.
        let keep = config.storage == Storage::Kept;
        let raw = match (config.method, keep) {
            (Method::DataInf { .. }, true) => {
                work += in_batches(n, batch, |b| shape.gradients(b));
                Some(HostMatrix::gradients(
                    &final_params,
                    (&x, &onehot),
                    (n, p),
                    batch,
                    device,
                )?)
            }
            _ => None,
        };
        let raw_rows = |first: usize, m: usize| -> Result<(Vec<f32>, Kernels), InfluenceError> {
            match &raw {
                Some(g) => Ok((g.rows(first, m).to_vec(), Kernels::default())),
                None => rows.raw(&final_params, first, m),
            }
        };
        let preconditioner = match config.method {
            Method::TracIn => Preconditioner::Identity,
            Method::DataInf { damping_ratio } => {
                let (pre, k) = fit_datainf(&params.blocks(), (n, slice), damping_ratio, raw_rows)?;
                work += k;
                pre
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
                Preconditioner::Dense(tensor::<B>(&inv, [p, p], device))
            }
        };
        rows.preconditioner = &preconditioner;
        // The stored rows, slice by slice, and each record's self-influence: its query-side
        // gradient (the raw one, projected and weighted as queries are) dotted with its
        // stored row, read off here rather than recomputing its gradient.
        let width = config.stored_width(checkpoints.len(), p);
        // Kept DataInf rows without a projection are written back over the raw gradients
        // they are computed from (each slice is read before it is written).
        let mut raw = raw;
        let in_place = keep && width == p && raw.is_some();
        let mut kept = match (keep, in_place) {
            (false, _) => None,
            (true, true) => raw.take(),
            (true, false) => Some(HostMatrix::zeros(n, width)),
        };
        let mut self_scores = Vec::with_capacity(n);
        for (first, m) in slices(n, slice) {
            let g = match (&raw, &kept) {
                (Some(g), _) => Some(g.rows(first, m).to_vec()),
                (None, Some(g)) if in_place => Some(g.rows(first, m).to_vec()),
                _ => None,
            };
            let (stored, k) = rows.stored(first, m, g, Some(&mut self_scores))?;
            work += k;
            if let Some(kept) = kept.as_mut() {
                kept.write_rows(first, stored)?;
            }
        }
        drop(raw);
        let self_influence = self_scores.into_iter().map(|v| v as f32).collect();
        let stored_rows = match kept {
            Some(kept) => StoredRows::Kept(kept.into_tensor(device)),
            None => StoredRows::Recomputed { x, onehot },
        };

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
            preconditioner,
            rows: stored_rows,
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
        self.config
            .stored_width(self.checkpoints.len(), self.lora_dim)
    }

    /// Where the stored gradients live.
    pub fn storage(&self) -> Storage {
        self.config.storage
    }

    /// Stored rows `[m, K]` of records `first..first + m`: read, or recomputed; with the
    /// kernels recomputing them took.
    fn stored_rows(
        &self,
        first: usize,
        m: usize,
    ) -> Result<(Tensor<B, 2>, Kernels), InfluenceError> {
        match &self.rows {
            StoredRows::Kept(t) => Ok((t.clone().narrow(0, first, m), Kernels::default())),
            StoredRows::Recomputed { x, onehot } => Rows {
                checkpoints: &self.checkpoints,
                preconditioner: &self.preconditioner,
                projection: self.projection.as_ref(),
                shape: &self.shape,
                host: (x, onehot),
                dims: (self.input_dim, self.classes, self.lora_dim),
                batch: self.config.batch_size,
                device: &self.device,
            }
            .stored(first, m, None, None),
        }
    }

    /// Records whose stored rows are read or recomputed at once.
    fn slice(&self) -> usize {
        self.config.batch_size * SLICE_BATCHES
    }

    /// Every record's stored rows, `(first record, rows [m, K])`, `slice` records at a
    /// time, with the kernels of recomputing them.
    fn each_slice(
        &self,
        slice: usize,
        mut visit: impl FnMut(usize, Tensor<B, 2>) -> Result<(), InfluenceError>,
    ) -> Result<Kernels, InfluenceError> {
        let mut work = Kernels::default();
        for (first, m) in slices(self.records, slice) {
            let (rows, k) = self.stored_rows(first, m)?;
            work += k;
            visit(first, rows)?;
        }
        Ok(work)
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
    fn query_matrix(&self, batch: &Batch) -> (Tensor<B, 2>, Kernels) {
        let m = batch.m;
        let mut work = Kernels::default();
        let mut parts = Vec::with_capacity(self.checkpoints.len());
        for (dp, w) in &self.checkpoints {
            let mut g = dp.gradients((&batch.x, &batch.onehot), &self.device);
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
        (join_columns(parts), work)
    }

    fn batches<'a, E: Example>(
        &'a self,
        data: &'a [E],
    ) -> Result<impl Iterator<Item = Batch> + 'a, InfluenceError> {
        check_examples(data, self.input_dim, self.classes)?;
        Ok(data.chunks(self.config.batch_size).map(|chunk| {
            let (x, onehot) = host_batch(chunk, self.classes);
            Batch {
                x,
                onehot,
                m: chunk.len(),
            }
        }))
    }

    /// Attributes the loss of each query at its given label to the training records: the
    /// query gradients (per batch of `batch_size`), then per slice of stored rows one
    /// `[m, K]·[K, slice]` product; each query's record scores are then summed per
    /// contributor on the host.
    pub fn attribute<E: Example>(&self, queries: &[E]) -> Result<Attribution, InfluenceError> {
        let start = Instant::now();
        let (n, c, k) = (self.records, self.contributors.len(), self.stored_dim());
        let mut work = Kernels::default();
        let mut parts = Vec::new();
        for batch in self.batches(queries)? {
            let (q, gradients) = self.query_matrix(&batch);
            work += gradients;
            parts.push(q);
        }
        let m = queries.len();
        let mut scores = vec![0.0f32; m * n];
        if m > 0 {
            let q = Tensor::cat(parts, 0);
            let mut products = Kernels::default();
            work += self.each_slice(self.slice(), |first, rows| {
                let width = rows.dims()[0];
                let s = to_host(q.clone().matmul(rows.transpose()))?;
                for (query, row) in s.chunks_exact(width).enumerate() {
                    scores[query * n + first..query * n + first + width].copy_from_slice(row);
                }
                // The product, then reading its scores back to the host.
                products += Kernels::matmul(m, k, width) + Kernels::elementwise(m * width, 0, 0);
                Ok(())
            })?;
            work += products;
        }
        // Summed per contributor on the host.
        work += Kernels::elementwise(m * n, 0, m * n);
        let mut by_contributor = Vec::with_capacity(m * c);
        for row in scores.chunks(n.max(1)).take(m) {
            let mut per_c = vec![0.0f32; c];
            for (score, &col) in row.iter().zip(&self.author_column) {
                per_c[col] += score;
            }
            by_contributor.extend(per_c);
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
        let slice = self.slice();
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
        let recomputed = self.each_slice(slice, |first, rows| {
            for (r, row) in (first..).zip(to_host(rows)?.chunks_exact(k.max(1))) {
                let (g, w) = (group[r], weight[r]);
                for (sum, &v) in summed[g * k..(g + 1) * k].iter_mut().zip(row) {
                    *sum += w * f64::from(v);
                }
            }
            Ok(())
        })?;
        let summed: Vec<f32> = summed.into_iter().map(|v| v as f32).collect();
        let summed = tensor::<B>(&summed, [groups, k], &self.device).transpose();
        let mut work = recomputed + Kernels::elementwise(k * n, 0, k * n);
        let mut out = Vec::with_capacity(queries.len() * groups);
        for batch in self.batches(queries)? {
            let m = batch.m;
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
                .logits(tensor::<B>(
                    &batch.x,
                    [batch.m, self.input_dim],
                    &self.device,
                ))
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
            let m = batch.m;
            let (q, gradients) = self.query_matrix(&batch);
            for (total, v) in sum.iter_mut().zip(to_host(q.sum_dim(0))?) {
                *total += f64::from(v);
            }
            // The column sums, then reading them back to the host (added there).
            work += gradients + Kernels::elementwise(m * k, k, m * k);
        }
        let sum: Vec<f32> = sum.into_iter().map(|v| v as f32).collect();
        let sum = tensor::<B>(&sum, [k, 1], &self.device);
        let mut per_record = Vec::with_capacity(self.records);
        let mut products = Kernels::default();
        work += self.each_slice(self.slice(), |_, rows| {
            let m = rows.dims()[0];
            per_record.extend(
                to_host(rows.matmul(sum.clone()))?
                    .into_iter()
                    .map(f64::from),
            );
            // The product, then reading its scores back.
            products += Kernels::matmul(m, k, 1) + Kernels::elementwise(m, 0, 0);
            Ok(())
        })?;
        work += products;
        Ok(OutputTotals {
            outputs: inputs.len(),
            per_record,
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
            let m = batch.m;
            let (q, f) = self.query_matrix(&batch);
            let (g, recomputed) = self.stored_rows(offset, m)?;
            let k = self.stored_dim();
            out.extend(to_host((q * g).sum_dim(1))?);
            work += f
                + recomputed
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
