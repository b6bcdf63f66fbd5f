//! Running one shard of a sweep: its points in parallel on local threads, one report file per
//! point (`points/<index>.json`) and a shard manifest (`shard-<I>-of-<N>.json`) in the
//! output folder.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{Point, SweepError, SweepSpec};
use crate::engine::{self, RunOptions};

/// Version of the shard manifest format.
pub const MANIFEST_VERSION: u32 = 1;

/// Environment variables a shard index or count is read from, in order of preference:
/// Slurm job arrays, then Kubernetes Indexed Jobs.
pub const INDEX_VARS: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// Environment variable the shard count is read from (Slurm job arrays).
pub const COUNT_VAR: &str = "SLURM_ARRAY_TASK_COUNT";

/// Which share of the points this process runs: those with `index % count == shard index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u32,
    /// Number of shards.
    pub count: u32,
}

impl Shard {
    /// The whole sweep in one shard.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Resolves the shard from the `--shard` flag (`I/N`, `I` or `/N`; absent parts are read
    /// from the scheduler's variables through `env`: the index from `SLURM_ARRAY_TASK_ID`
    /// (less `SLURM_ARRAY_TASK_MIN`) or `JOB_COMPLETION_INDEX`, the count from
    /// `SLURM_ARRAY_TASK_COUNT`). Neither given: the whole sweep.
    pub fn resolve(
        flag: Option<&str>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Shard, SweepError> {
        let number = |what: &str, text: &str| {
            text.trim().parse::<u32>().map_err(|_| {
                SweepError::Spec(format!(
                    "{what} = `{text}` is not a shard number; expected an integer >= 0"
                ))
            })
        };
        let (mut index, mut count) = (None, None);
        if let Some(flag) = flag {
            let (i, n) = flag.split_once('/').unwrap_or((flag, ""));
            if !i.is_empty() {
                index = Some((number("--shard index", i)?, "--shard".to_string()));
            }
            if !n.is_empty() {
                count = Some((number("--shard count", n)?, "--shard".to_string()));
            }
        }
        if index.is_none() {
            for var in INDEX_VARS {
                if let Some(v) = env(var) {
                    let mut i = number(var, &v)?;
                    if var == INDEX_VARS[0]
                        && let Some(min) = env("SLURM_ARRAY_TASK_MIN")
                    {
                        i = i.saturating_sub(number("SLURM_ARRAY_TASK_MIN", &min)?);
                    }
                    index = Some((i, var.to_string()));
                    break;
                }
            }
        }
        if count.is_none()
            && let Some(v) = env(COUNT_VAR)
        {
            count = Some((number(COUNT_VAR, &v)?, COUNT_VAR.to_string()));
        }
        match (index, count) {
            (None, None) => Ok(Shard::ALL),
            (Some((i, from)), None) => Err(SweepError::Spec(format!(
                "shard index {i} (from {from}) but no shard count: pass --shard {i}/N, or run \
                 under a Slurm job array (which sets {COUNT_VAR})"
            ))),
            (None, Some((n, from))) => Err(SweepError::Spec(format!(
                "shard count {n} (from {from}) but no shard index: pass --shard I/{n}, or run \
                 as a Slurm array task or a Kubernetes Indexed Job"
            ))),
            (Some(_), Some((0, from))) => Err(SweepError::Spec(format!(
                "shard count 0 (from {from}); allowed: >= 1"
            ))),
            (Some((i, from)), Some((n, _))) if i >= n => Err(SweepError::Spec(format!(
                "shard index {i} (from {from}) is out of range for {n} shards; allowed: 0 to {} \
                 (Slurm: --array=0-{})",
                n - 1,
                n - 1
            ))),
            (Some((index, _)), Some((count, _))) => Ok(Shard { index, count }),
        }
    }

    /// Whether point `index` belongs to this shard.
    pub fn contains(&self, index: usize) -> bool {
        index % self.count as usize == self.index as usize
    }

    /// The manifest's file name, `shard-<I>-of-<N>.json`.
    pub fn file_name(&self) -> String {
        format!("shard-{}-of-{}.json", self.index, self.count)
    }
}

/// How to run a shard.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    /// Which points to run.
    pub shard: Shard,
    /// Points run at the same time (at least 1).
    pub jobs: usize,
    /// Output folder.
    pub out: PathBuf,
    /// Show a progress bar.
    pub progress: bool,
}

/// What a shard ran: the sweep's identity and axes, and one record per point run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Sweep name.
    pub sweep: String,
    /// Sweep identity ([`SweepSpec::id`]).
    pub id: String,
    /// The base scenario file as given.
    pub base: String,
    /// Axis paths, in order.
    pub axes: Vec<String>,
    /// Points in the whole sweep.
    pub total: usize,
    /// This shard.
    pub shard: Shard,
    /// The points this shard ran, in point order.
    pub points: Vec<PointRecord>,
    /// Wall-clock seconds the shard took (not deterministic, unlike everything else here).
    pub wall_seconds: f64,
}

/// One point a shard ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// Point index in the sweep.
    pub index: usize,
    /// `(path, value as inline TOML)` per axis.
    pub params: Vec<(String, String)>,
    /// Master seed.
    pub seed: u64,
    /// The report's result digest.
    pub digest: String,
    /// The report file, relative to the manifest's folder.
    pub report: String,
}

/// Runs the points of `options.shard` and writes their reports and the shard manifest into
/// `options.out`. Results do not depend on `jobs`. Fails on the first point whose run fails
/// (reports already written stay), or when the folder holds another sweep's results.
pub fn run(spec: &SweepSpec, options: &SweepOptions) -> Result<Manifest, SweepError> {
    let started = Instant::now();
    let points = spec.points()?;
    let id = spec.id();
    for (path, other) in read_manifests(&options.out)? {
        if other.id != id {
            return Err(SweepError::Spec(format!(
                "{} holds results of another sweep (`{}`, id {}; this one is `{}`, id {id}); \
                 choose another --out or delete that folder",
                path.display(),
                other.sweep,
                other.id,
                spec.name
            )));
        }
    }
    let dir = options.out.join("points");
    std::fs::create_dir_all(&dir).map_err(|e| SweepError::io(&dir, e))?;
    let mine: Vec<&Point> = points
        .iter()
        .filter(|p| options.shard.contains(p.index))
        .collect();
    let bar = progress_bar(options.progress, mine.len());
    let records = run_parallel(&mine, options.jobs, &options.out, &bar);
    bar.finish_and_clear();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        sweep: spec.name.clone(),
        id,
        base: spec.base.display().to_string(),
        axes: spec.axes.iter().map(|a| a.path.clone()).collect(),
        total: points.len(),
        shard: options.shard,
        points: records?,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    let path = options.out.join(options.shard.file_name());
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    write_atomically(&path, &json)?;
    Ok(manifest)
}

/// Runs `points` on up to `jobs` threads; the records come back in point order. After a
/// failure no new point starts; the error of the earliest failed point is returned.
fn run_parallel(
    points: &[&Point],
    jobs: usize,
    out: &Path,
    bar: &indicatif::ProgressBar,
) -> Result<Vec<PointRecord>, SweepError> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let slots: Mutex<Vec<Option<Result<PointRecord, SweepError>>>> =
        Mutex::new((0..points.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, points.len().max(1)) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(point) = points.get(i) else { break };
                    let record = run_point(point, out);
                    if record.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    bar.inc(1);
                    slots.lock().expect("no worker panicked")[i] = Some(record);
                }
            });
        }
    });
    slots
        .into_inner()
        .expect("no worker panicked")
        .into_iter()
        .flatten()
        .collect()
}

/// Runs one point and writes its report.
fn run_point(point: &Point, out: &Path) -> Result<PointRecord, SweepError> {
    let report = engine::run(&point.scenario, &RunOptions::default()).map_err(|source| {
        SweepError::Engine {
            point: point.index,
            params: point.describe(),
            source: Box::new(source),
        }
    })?;
    let name = format!("points/{:06}.json", point.index);
    write_atomically(&out.join(&name), &report.to_json())?;
    Ok(PointRecord {
        index: point.index,
        params: point
            .params
            .iter()
            .map(|(p, v)| (p.clone(), v.to_string()))
            .collect(),
        seed: point.seed,
        digest: report.digest,
        report: name,
    })
}

/// Writes `text` to a temporary file beside `path`, then renames it into place, so a killed
/// job never leaves a half-written file under the final name.
fn write_atomically(path: &Path, text: &str) -> Result<(), SweepError> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(|e| SweepError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| SweepError::io(path, e))
}

/// The shard manifests (`shard-*.json`) in `dir`, sorted by file name; none if `dir` does
/// not exist.
pub fn read_manifests(dir: &Path) -> Result<Vec<(PathBuf, Manifest)>, SweepError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SweepError::io(dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|e| SweepError::io(&path, e))?;
            let manifest: Manifest = serde_json::from_str(&text)
                .map_err(|e| SweepError::io(&path, format!("not a sweep shard manifest: {e}")))?;
            if manifest.version != MANIFEST_VERSION {
                return Err(SweepError::io(
                    &path,
                    format!(
                        "manifest format version {} is not supported (this olsim reads \
                         version {MANIFEST_VERSION})",
                        manifest.version
                    ),
                ));
            }
            Ok((path, manifest))
        })
        .collect()
}

fn progress_bar(show: bool, points: usize) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(points as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] point {pos}/{len} (eta {eta})",
        )
        .expect("a valid progress template")
        .progress_chars("=> "),
    );
    bar
}
