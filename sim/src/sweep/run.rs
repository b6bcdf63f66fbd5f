//! Running one shard of a sweep: a shard manifest (`shard-<I>-of-<N>.json`) first, then its
//! points in parallel on local threads, each leaving a report (`points/<index>.json`), its
//! contributors table as a Parquet part (`points/<index>.contributors.parquet`) and a point
//! record (`points/<index>.point.json`) as it finishes. A rerun into the same folder
//! skips the points already finished.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use alloy_primitives::keccak256;
use serde::{Deserialize, Serialize};

use super::{AxisKind, Point, SweepError, SweepSpec};
use crate::engine::{self, RunOptions};
use crate::frames::{self, Context, Scalar, run::DIGEST_KEY};
use crate::output;
use crate::report::{Report, digest_of};

/// Version of the shard manifest and point record formats (2: manifests written first, one
/// record per point).
pub const MANIFEST_VERSION: u32 = 2;

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

/// A shard manifest (`shard-<I>-of-<N>.json`): which sweep the folder's results belong to.
/// Written before the shard's first point runs, so a killed shard can be merged and resumed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version of manifests and point records ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Sweep name.
    pub sweep: String,
    /// Sweep identity ([`SweepSpec::id`]).
    pub id: String,
    /// The base scenario file as given.
    pub base: String,
    /// Digest of the base scenario's content ([`SweepSpec::base_digest`]).
    pub base_digest: String,
    /// Axis paths, in order.
    pub axes: Vec<String>,
    /// Points in the whole sweep.
    pub total: usize,
    /// This shard.
    pub shard: Shard,
}

/// One finished point (`points/<index>.point.json`), written after its report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    /// Format version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// Sweep identity.
    pub sweep_id: String,
    /// Point index in the sweep.
    pub index: usize,
    /// `(path, value as inline TOML)` per axis.
    pub params: Vec<(String, String)>,
    /// Master seed.
    pub seed: u64,
    /// Digest of the base scenario's content.
    pub base_digest: String,
    /// The report's result digest.
    pub digest: String,
    /// The report file, relative to the folder holding `points/`.
    pub report: String,
    /// `keccak256` over every field above ([`PointRecord::expected_check`]); `merge`
    /// refuses a record that does not match it.
    pub check: String,
}

impl PointRecord {
    /// The record of `point` of the sweep `spec`, whose report has result digest `digest`.
    fn new(spec: &SweepSpec, point: &Point, digest: String) -> Self {
        let mut record = PointRecord {
            version: MANIFEST_VERSION,
            sweep_id: spec.id(),
            index: point.index,
            params: point
                .params
                .iter()
                .map(|(p, v)| (p.clone(), v.to_string()))
                .collect(),
            seed: point.seed,
            base_digest: spec.base_digest(),
            digest,
            report: report_file(point.index),
            check: String::new(),
        };
        record.check = record.expected_check();
        record
    }

    /// `keccak256` over the record's fields but `check`.
    pub fn expected_check(&self) -> String {
        let canonical = serde_json::json!([
            self.version,
            self.sweep_id,
            self.index,
            self.params,
            self.seed,
            self.base_digest,
            self.digest,
            self.report,
        ]);
        keccak256(canonical.to_string()).to_string()
    }
}

/// `points/<index>.json`: a point's report, relative to the sweep folder.
fn report_file(index: usize) -> String {
    format!("points/{index:06}.json")
}

/// `points/<index>.point.json`: a point's record, relative to the sweep folder.
fn record_file(index: usize) -> String {
    format!("points/{index:06}.point.json")
}

/// What a shard run did.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardRun {
    /// The shard's manifest.
    pub manifest: Manifest,
    /// The record of every point of the shard, in point order (resumed ones included).
    pub points: Vec<PointRecord>,
    /// Points an earlier run had finished, skipped by this one.
    pub resumed: usize,
    /// Wall-clock seconds the run took (not deterministic, unlike everything else here).
    pub wall_seconds: f64,
}

/// Runs the points of `options.shard` into `options.out`: writes the shard manifest, then
/// each point's report and record as the point finishes. Points an earlier run into the same
/// folder finished (a valid record whose report matches it) are skipped and said so on
/// stderr; others run, half-written ones again. Results do not depend on `jobs`. Refuses a
/// folder holding another sweep's results; fails on the first point whose run fails, keeping
/// every finished point.
pub fn run(spec: &SweepSpec, options: &SweepOptions) -> Result<ShardRun, SweepError> {
    let started = Instant::now();
    let points = spec.points()?;
    let id = spec.id();
    let refuse = |path: &Path, other: &str| {
        SweepError::Spec(format!(
            "{} holds results of another sweep ({other}; this one is `{}`, id {id}): a \
             different base scenario, grid or seeds; choose another --out or delete that \
             folder",
            path.display(),
            spec.name
        ))
    };
    for (path, other) in read_manifests(&options.out)? {
        if other.id != id {
            return Err(refuse(
                &path,
                &format!("`{}`, id {}", other.sweep, other.id),
            ));
        }
    }
    let dir = options.out.join("points");
    output::probe(&dir)?;
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        sweep: spec.name.clone(),
        id: id.clone(),
        base: spec.base.display().to_string(),
        base_digest: spec.base_digest(),
        axes: spec.axes.iter().map(|a| a.path.clone()).collect(),
        total: points.len(),
        shard: options.shard,
    };
    let mut done = Vec::new();
    let mut todo = Vec::new();
    let mut redo = Vec::new();
    for point in points.iter().filter(|p| options.shard.contains(p.index)) {
        match finished(spec, point, &options.out) {
            Finished::Yes(record) => done.push(record),
            Finished::No => todo.push(point),
            Finished::Invalid => {
                redo.push(point.index.to_string());
                todo.push(point);
            }
            Finished::OtherSweep(path, other) => return Err(refuse(&path, &format!("id {other}"))),
        }
    }
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    write(
        &options.out.join(options.shard.file_name()),
        json.as_bytes(),
    )?;

    let resumed = done.len();
    if resumed > 0 || !redo.is_empty() {
        eprintln!(
            "resuming: {resumed} of {} points already done{}",
            resumed + todo.len(),
            if redo.is_empty() {
                String::new()
            } else {
                format!(
                    "; rerunning {} half-written (points {})",
                    redo.len(),
                    redo.join(", ")
                )
            }
        );
    }
    let bar = progress_bar(options.progress, todo.len());
    let records = run_parallel(spec, &todo, options.jobs, &options.out, &bar);
    bar.finish_and_clear();
    done.extend(records.map_err(|e| SweepError::Stopped {
        source: Box::new(e),
        out: options.out.clone(),
    })?);
    done.sort_by_key(|r| r.index);
    Ok(ShardRun {
        manifest,
        points: done,
        resumed,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether an earlier run finished a point.
enum Finished {
    /// Its record is valid and its report matches it.
    Yes(PointRecord),
    /// No record.
    No,
    /// A record or report missing, unreadable or not matching: a half-written point.
    Invalid,
    /// A record of another sweep (its file, its sweep id).
    OtherSweep(PathBuf, String),
}

fn finished(spec: &SweepSpec, point: &Point, out: &Path) -> Finished {
    let path = out.join(record_file(point.index));
    let Ok(text) = std::fs::read_to_string(&path) else {
        return if path.exists() {
            Finished::Invalid
        } else {
            Finished::No
        };
    };
    let Ok(record) = serde_json::from_str::<PointRecord>(&text) else {
        return Finished::Invalid;
    };
    if record.sweep_id != spec.id() {
        return Finished::OtherSweep(path, record.sweep_id);
    }
    let expected = PointRecord::new(spec, point, record.digest.clone());
    if record != expected
        || check_report(out, &record).is_err()
        || check_part(out, &record).is_err()
    {
        return Finished::Invalid;
    }
    Finished::Yes(record)
}

/// Reads a point's report and checks it is the one its record names: same result digest,
/// and the digest of its result section.
pub(crate) fn check_report(dir: &Path, record: &PointRecord) -> Result<Report, SweepError> {
    let path = dir.join(&record.report);
    let text = std::fs::read_to_string(&path).map_err(|e| SweepError::io(&path, e))?;
    let report = Report::from_json(&text).map_err(|e| SweepError::io(&path, e))?;
    if report.digest != record.digest || digest_of(&report.result) != record.digest {
        return Err(SweepError::io(
            &path,
            format!(
                "point {}: the report does not match digest {} in its point record (changed \
                 after the run?); delete {} and rerun the sweep to redo the point",
                record.index,
                record.digest,
                record_file(record.index)
            ),
        ));
    }
    Ok(report)
}

/// Runs `points` on up to `jobs` threads; the records come back in point order. After a
/// failure no new point starts; the error of the earliest failed point is returned.
fn run_parallel(
    spec: &SweepSpec,
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
                    let record = run_point(spec, point, out);
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

/// Runs one point and writes its report and its contributors part, then its record.
fn run_point(spec: &SweepSpec, point: &Point, out: &Path) -> Result<PointRecord, SweepError> {
    let report = engine::run(&point.scenario, &RunOptions::default()).map_err(|source| {
        SweepError::Engine {
            point: point.index,
            params: point.describe(),
            source: Box::new(source),
        }
    })?;
    let record = PointRecord::new(spec, point, report.digest.clone());
    write(&out.join(&record.report), report.to_json().as_bytes())?;
    let part = frames::run::contributors(&report, &point_context(spec, point, &report))
        .map_err(|e| SweepError::io(&out.join(part_file(point.index)), e))?;
    write(&out.join(part_file(point.index)), &part)?;
    let json = serde_json::to_string_pretty(&record).expect("a point record serialises");
    write(&out.join(record_file(point.index)), json.as_bytes())?;
    Ok(record)
}

/// `points/<index>.contributors.parquet`: a point's contributors table, relative to the
/// sweep folder.
pub(crate) fn part_file(index: usize) -> String {
    format!("points/{index:06}.contributors.parquet")
}

/// The context of a point's table: `point` and one column per axis (typed over all the
/// axis's values, so every part has the same columns), then the run's `scenario` and `seed`;
/// the run's metadata plus `olsim.sweep_id`.
fn point_context(spec: &SweepSpec, point: &Point, report: &Report) -> Context {
    let run = frames::run::context(report);
    let mut constants = vec![("point".to_string(), Scalar::U64(point.index as u64))];
    for (axis, (path, value)) in spec.axes.iter().zip(&point.params) {
        constants.push((path.clone(), AxisKind::of(&axis.values).scalar(value)));
    }
    constants.extend(run.constants);
    let mut metadata = run.metadata;
    metadata.push((SWEEP_ID_KEY.to_string(), spec.id()));
    Context {
        constants,
        metadata,
    }
}

/// Metadata key of the sweep identity in a point's part.
pub(crate) const SWEEP_ID_KEY: &str = "olsim.sweep_id";

/// Checks a point's part is the one its record names: its metadata carries the record's
/// sweep id and result digest.
pub(crate) fn check_part(dir: &Path, record: &PointRecord) -> Result<PathBuf, SweepError> {
    let path = dir.join(part_file(record.index));
    let metadata = frames::metadata(&path).map_err(|e| SweepError::io(&path, e))?;
    let get = |key: &str| {
        metadata
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if get(SWEEP_ID_KEY) != Some(&record.sweep_id) || get(DIGEST_KEY) != Some(&record.digest) {
        return Err(SweepError::io(
            &path,
            format!(
                "point {}: the table's metadata does not name sweep {} and digest {} of its \
                 point record; delete {} and rerun the sweep to redo the point",
                record.index,
                record.sweep_id,
                record.digest,
                record_file(record.index)
            ),
        ));
    }
    Ok(path)
}

/// Writes a file atomically ([`output::write_file`]).
fn write(path: &Path, bytes: &[u8]) -> Result<(), SweepError> {
    Ok(output::write_file(path, bytes)?)
}

/// The shard manifests (`shard-*.json`) in `dir`, sorted by file name; none if `dir` does
/// not exist.
pub fn read_manifests(dir: &Path) -> Result<Vec<(PathBuf, Manifest)>, SweepError> {
    files_in(dir, |n| n.starts_with("shard-") && n.ends_with(".json"))?
        .into_iter()
        .map(|path| {
            let manifest: Manifest = read_versioned(&path, "sweep shard manifest")?;
            Ok((path, manifest))
        })
        .collect()
}

/// The point records (`points/*.point.json`) under `dir`, sorted by file name; none if there
/// is no `points` folder. Their contents are not checked here (see `merge`).
pub fn read_records(dir: &Path) -> Result<Vec<(PathBuf, PointRecord)>, SweepError> {
    files_in(&dir.join("points"), |n| {
        !n.starts_with('.') && n.ends_with(".point.json")
    })?
    .into_iter()
    .map(|path| {
        let record: PointRecord = read_versioned(&path, "sweep point record")?;
        Ok((path, record))
    })
    .collect()
}

/// The files in `dir` whose names pass `keep`, sorted; none if `dir` does not exist.
fn files_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Result<Vec<PathBuf>, SweepError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SweepError::io(dir, e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads a JSON file of this format version.
fn read_versioned<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
) -> Result<T, SweepError> {
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| SweepError::io(path, format!("not a {what}: {e}")))?;
    let version = value.get("version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(MANIFEST_VERSION)) {
        return Err(SweepError::io(
            path,
            format!(
                "{what} format version {} is not supported (this olsim reads version \
                 {MANIFEST_VERSION}; rerun the sweep into a new folder)",
                version.map_or("?".into(), |v| v.to_string())
            ),
        ));
    }
    serde_json::from_value(value).map_err(|e| SweepError::io(path, format!("not a {what}: {e}")))
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
