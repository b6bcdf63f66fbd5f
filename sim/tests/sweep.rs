//! Sweeps and merges on the smoke scenario cut to 2 epochs, 2 values x 2 seeds: shards
//! together give exactly the unsharded sweep, results do not depend on the thread count,
//! bad overrides and shard settings are clear errors, merge writes one row per point while
//! refusing mixed sweeps, missing points and altered reports, and a rerun into the same folder
//! resumes: it skips finished points and redoes half-written ones.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type, UInt64Type};
use olsim::sweep::merge::{self, MergeOptions, Merged};
use olsim::sweep::run::{self, Shard, ShardRun, SweepOptions};
use olsim::sweep::{SweepError, SweepSpec};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml")
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("sweep-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// smoke.toml, 2 epochs, slash fraction 0.1 and 0.4, seeds 7 and 8: four points.
fn spec() -> SweepSpec {
    let mut spec = SweepSpec::load(&smoke()).unwrap();
    spec.set("run.epochs=2").unwrap();
    spec.set("tokenomics.slash_fraction=0.1,0.4").unwrap();
    spec.set_seeds_arg("2").unwrap();
    spec
}

fn run_into(spec: &SweepSpec, out: &Path, shard: Shard, jobs: usize) -> ShardRun {
    let options = SweepOptions {
        shard,
        jobs,
        out: out.to_path_buf(),
        progress: false,
    };
    run::run(spec, &options).unwrap_or_else(|e| panic!("{e}"))
}

fn merge_dirs(dirs: &[&Path], out: &Path, partial: bool) -> Result<Merged, SweepError> {
    let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
    merge::merge(
        &dirs,
        &MergeOptions {
            out: out.to_path_buf(),
            partial,
        },
    )
}

#[test]
fn points_are_the_grid_times_seeds_in_a_fixed_order() {
    let spec = spec();
    let points = spec.points().unwrap();
    assert_eq!(spec.len(), 4);
    let order: Vec<(String, u64)> = points
        .iter()
        .map(|p| (p.params[1].1.to_string(), p.seed))
        .collect();
    let expected = [("0.1", 7), ("0.1", 8), ("0.4", 7), ("0.4", 8)];
    assert_eq!(
        order,
        expected.map(|(v, s)| (v.to_string(), s)).to_vec(),
        "axes sorted by path, seeds innermost"
    );
    for p in &points {
        assert_eq!(p.scenario.run.epochs, 2);
        assert_eq!(p.scenario.run.seed, p.seed);
    }
    assert_eq!(points[2].scenario.tokenomics.slash_fraction, 0.4);
    // Axis order on the command line does not change the sweep.
    let mut swapped = SweepSpec::load(&smoke()).unwrap();
    swapped.set("tokenomics.slash_fraction=0.1,0.4").unwrap();
    swapped.set("run.epochs=2").unwrap();
    swapped.set_seeds_arg("7,8").unwrap();
    assert_eq!(swapped.id(), spec.id());
    // Another value is another sweep.
    let mut other = spec.clone();
    other.set("tokenomics.slash_fraction=0.1,0.5").unwrap();
    assert_ne!(other.id(), spec.id());
}

#[test]
fn sweep_file_gives_the_same_sweep_as_flags() {
    let dir = scratch("sweep-file");
    let file = dir.join("slash.toml");
    std::fs::write(
        &file,
        format!(
            "base = {:?}\nseeds = 2\n\n[grid]\n\"tokenomics.slash_fraction\" = [0.1, 0.4]\n\
             \"run.epochs\" = [2]\n",
            smoke().display().to_string()
        ),
    )
    .unwrap();
    let from_file = SweepSpec::load(&file).unwrap();
    assert_eq!(from_file.id(), spec().id());
    assert_eq!(from_file.name, "smoke");
    // `--seeds N` on top of a file's list counts from the base scenario's seed (smoke: 7).
    let mut reseeded = from_file.clone();
    reseeded.set_seeds_arg("3").unwrap();
    assert_eq!(reseeded.seeds, vec![7, 8, 9]);
    reseeded.set_seeds_arg("5,6").unwrap();
    reseeded.set_seeds_arg("2").unwrap();
    assert_eq!(reseeded.seeds, vec![7, 8]);
    // A misspelt key of the sweep file is refused with the allowed names.
    std::fs::write(&file, "base = \"x.toml\"\nseed = 2\n").unwrap();
    let err = SweepSpec::load(&file).unwrap_err().to_string();
    assert!(
        err.contains("seed") && err.contains("docs/sweeps.md"),
        "{err}"
    );
}

#[test]
fn shards_together_equal_the_unsharded_sweep_for_any_job_count() {
    let spec = spec();
    let whole_dir = scratch("whole");
    let whole = run_into(&spec, &whole_dir, Shard::ALL, 1);
    assert_eq!(whole.points.len(), 4);
    let parallel = run_into(&spec, &scratch("whole-4-jobs"), Shard::ALL, 4);
    assert_eq!(
        parallel.points, whole.points,
        "point records do not depend on --jobs"
    );

    let sharded_dir = scratch("sharded");
    let mut union = Vec::new();
    for index in 0..2 {
        let m = run_into(&spec, &sharded_dir, Shard { index, count: 2 }, 2);
        assert!(m.points.iter().all(|p| p.index % 2 == index as usize));
        union.extend(m.points);
    }
    union.sort_by_key(|p| p.index);
    assert_eq!(union, whole.points, "same points, same digests");
    // Different seeds and slash fractions give different runs.
    let digests: std::collections::BTreeSet<_> = whole.points.iter().map(|p| &p.digest).collect();
    assert_eq!(digests.len(), 4);

    // What an earlier merge left that this one does not draw is removed: the folder holds
    // one merge's outputs.
    let stale = whole_dir
        .join("charts")
        .join("gone-metric against run.epochs.svg");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, "<svg/>").unwrap();
    let a = merge_dirs(&[&whole_dir], &whole_dir, false).unwrap();
    assert!(!stale.exists(), "a chart of an earlier merge was left");
    assert!(whole_dir.join("charts").read_dir().unwrap().count() > 0);
    let b = merge_dirs(&[&sharded_dir], &sharded_dir, false).unwrap();
    assert_eq!(a.rows, b.rows);
    assert_eq!(a.rows.len(), 4);
    assert!(a.missing.is_empty());
    // One CSV line per point after the header; the slash fraction drives the attacker's loss.
    let csv = std::fs::read_to_string(whole_dir.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .starts_with("point,run.epochs,tokenomics.slash_fraction,seed,digest,gini")
    );
    let roi = a
        .metrics
        .iter()
        .position(|m| m == "roi:label_flip")
        .unwrap();
    assert!(a.rows[2].metrics[roi].unwrap() < a.rows[0].metrics[roi].unwrap());
    let md = std::fs::read_to_string(whole_dir.join("sweep.md")).unwrap();
    assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 5);
    let html = std::fs::read_to_string(whole_dir.join("sweep.html")).unwrap();
    assert!(
        html.contains("<svg") && html.contains("roi:label_flip against tokenomics.slash_fraction")
    );
    // Charts only for axes with more than one value.
    assert!(
        whole_dir
            .join("charts/gini--tokenomics_slash_fraction.svg")
            .is_file()
    );
    assert!(!whole_dir.join("charts/gini--run_epochs.svg").exists());

    // The Parquet table: one row per point, every axis and the seed as typed columns.
    let table = read_parquet(&whole_dir.join("sweep.parquet"));
    let schema = table.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(
        names[..7],
        [
            "point",
            "run.epochs",
            "tokenomics.slash_fraction",
            "scenario",
            "seed",
            "digest",
            "gini"
        ]
    );
    assert_eq!(table.num_rows(), 4);
    let slash: Vec<Option<f64>> = table["tokenomics.slash_fraction"]
        .as_primitive::<Float64Type>()
        .iter()
        .collect();
    assert_eq!(slash, [Some(0.1), Some(0.1), Some(0.4), Some(0.4)]);
    let epochs: Vec<Option<i64>> = table["run.epochs"]
        .as_primitive::<Int64Type>()
        .iter()
        .collect();
    assert_eq!(epochs, [Some(2); 4]);
    let seeds: Vec<Option<u64>> = table["seed"].as_primitive::<UInt64Type>().iter().collect();
    assert_eq!(seeds, [Some(7), Some(8), Some(7), Some(8)]);
    let digests: Vec<Option<&str>> = table["digest"].as_string::<i32>().iter().collect();
    let expected: Vec<Option<&str>> = a.rows.iter().map(|r| Some(r.digest.as_str())).collect();
    assert_eq!(digests, expected);
    // Every point's contributors, in point order, with its parameters as columns; the parts
    // of the sharded run are byte for byte those of the whole one.
    let people = read_parquet(&whole_dir.join("sweep-contributors.parquet"));
    let mut counts = Vec::new();
    for p in 0..4 {
        let file = format!("points/{p:06}.contributors.parquet");
        let part = std::fs::read(whole_dir.join(&file)).unwrap();
        assert!(
            part == std::fs::read(sharded_dir.join(&file)).unwrap(),
            "{file}"
        );
        let report = std::fs::read_to_string(whole_dir.join(format!("points/{p:06}.json")));
        let report = olsim::report::Report::from_json(&report.unwrap()).unwrap();
        counts.push(report.result.contributors.len());
    }
    assert_eq!(people.num_rows(), counts.iter().sum::<usize>());
    let points: Vec<Option<u64>> = people["point"]
        .as_primitive::<UInt64Type>()
        .iter()
        .collect();
    let expected: Vec<Option<u64>> = counts
        .iter()
        .enumerate()
        .flat_map(|(p, &n)| std::iter::repeat_n(Some(p as u64), n))
        .collect();
    assert_eq!(points, expected);
    assert!(people.column_by_name("tokenomics.slash_fraction").is_some());
}

/// A whole Parquet file as one batch.
fn read_parquet(path: &Path) -> RecordBatch {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .with_batch_size(1 << 20)
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    assert_eq!(batches.len(), 1, "{}", path.display());
    batches.into_iter().next().unwrap()
}

/// Shards sharing one output folder probe it at the same time; pods of a Kubernetes Indexed
/// Job on a shared volume usually have the same pid, and so the same probe file name. Threads
/// of this process (one pid) probing one folder reproduce that: one removes the probe file
/// another wrote, which must not fail the shard.
#[test]
fn shards_with_the_same_pid_may_probe_one_folder_at_once() {
    let dir = scratch("probe-race").join("points");
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        olsim::output::probe(&dir).unwrap_or_else(|e| panic!("{e}"));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().unwrap();
        }
    });
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "probe files left behind: {left:?}");
}

#[test]
fn merge_refuses_mixed_sweeps_missing_points_and_altered_reports() {
    let spec = spec();
    let half = scratch("half");
    run_into(&spec, &half, Shard { index: 0, count: 2 }, 2);
    let err = merge_dirs(&[&half], &half, false).unwrap_err().to_string();
    assert!(
        err.contains("2 of 4 points") && err.contains("points 1, 3") && err.contains("--partial"),
        "{err}"
    );
    let partial = merge_dirs(&[&half], &half, true).unwrap();
    assert_eq!(partial.rows.len(), 2);
    assert_eq!(partial.missing, vec![1, 3]);

    let mut other_spec = spec.clone();
    other_spec.set_seeds_arg("1").unwrap();
    let other = scratch("other");
    run_into(&other_spec, &other, Shard::ALL, 2);
    let err = merge_dirs(&[&half, &other], &other, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("different sweeps"), "{err}");
    // Running another sweep into a folder that holds one is refused too.
    let err = run::run(
        &other_spec,
        &SweepOptions {
            shard: Shard::ALL,
            jobs: 1,
            out: half.clone(),
            progress: false,
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("another sweep"), "{err}");

    // A contributors part swapped for another point's is refused.
    let part = |p: usize| half.join(format!("points/{p:06}.contributors.parquet"));
    let original = std::fs::read(part(0)).unwrap();
    std::fs::copy(part(2), part(0)).unwrap();
    let err = merge_dirs(&[&half], &half, true).unwrap_err().to_string();
    assert!(
        err.contains("000000.contributors.parquet") && err.contains("does not name"),
        "{err}"
    );
    std::fs::write(part(0), original).unwrap();

    // A report edited after the run no longer matches its manifest.
    let report = half.join("points/000000.json");
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::write(&report, text.replacen("\"gini\": 0.", "\"gini\": 1.", 1)).unwrap();
    let err = merge_dirs(&[&half], &half, true).unwrap_err().to_string();
    assert!(err.contains("does not match digest"), "{err}");
}

#[test]
fn bad_overrides_name_the_path_and_what_is_allowed() {
    let base = || SweepSpec::load(&smoke()).unwrap();
    let points_err = |set: &str| {
        let mut spec = base();
        spec.set(set).unwrap_or_else(|e| panic!("{set}: {e}"));
        spec.points().unwrap_err().to_string()
    };
    // Problems found by the scenario loader, per grid combination. One fee share alone leaves
    // the table incomplete; a whole table value keeps the four shares together.
    let split = |c: u32, o: u32| {
        format!(
            "tokenomics.fee_split={{contributors_bps={c},owner_bps={o},stakers_bps=2000,treasury_bps=1000}}"
        )
    };
    let loader_cases = [
        (
            "tokenomics.fe_split.contributors_bps=5000".to_string(),
            ["tokenomics.fe_split", "expected one of"],
        ),
        ("run.epochs=two".into(), ["run.epochs", "invalid type"]),
        (
            "tokenomics.slash_fraction=0.5,1.5".into(),
            ["sweep point 1", "tokenomics.slash_fraction = 1.5"],
        ),
        (
            "tokenomics.fee_split.contributors_bps=5000".into(),
            ["fee_split.owner_bps", "required"],
        ),
        (split(5000, 3000), ["fee_split", "10000"]),
    ];
    for (set, wants) in &loader_cases {
        let err = points_err(set);
        assert!(wants.iter().all(|w| err.contains(w)), "{set}: {err}");
    }
    let mut spec = base();
    spec.set(&split(5000, 2000)).unwrap();
    let points = spec.points().unwrap();
    assert_eq!(
        points[0].scenario.tokenomics.fee_split.contributors_bps,
        5000
    );

    // Problems found before any scenario is built.
    let shape_cases = [
        (
            "datanets[3].contributors.count=2",
            "datanets[3]: the base scenario has 1 entries",
        ),
        (
            "run.epochs.count=2",
            "run.epochs: holds a value of type integer",
        ),
        ("run..epochs=2", "not a field path"),
        ("run.seed=1,2", "--seeds"),
        ("run.epochs", "PATH=V1,V2"),
    ];
    for (set, want) in shape_cases {
        let err = base().set(set).unwrap_err().to_string();
        assert!(err.contains(want), "{set}: {err}");
    }
    for seeds in ["0", "1,x", "3,3"] {
        assert!(base().set_seeds_arg(seeds).is_err(), "{seeds}");
    }
}

#[test]
fn shard_comes_from_the_flag_or_the_scheduler() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let none = env(&[]);
    assert_eq!(Shard::resolve(None, none).unwrap(), Shard::ALL);
    assert_eq!(
        Shard::resolve(Some("2/5"), none).unwrap(),
        Shard { index: 2, count: 5 }
    );
    let slurm = env(&[
        ("SLURM_ARRAY_TASK_ID", "4"),
        ("SLURM_ARRAY_TASK_MIN", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "4"),
    ]);
    assert_eq!(
        Shard::resolve(None, slurm).unwrap(),
        Shard { index: 3, count: 4 }
    );
    // The flag wins over the variables.
    assert_eq!(
        Shard::resolve(Some("0/2"), slurm).unwrap(),
        Shard { index: 0, count: 2 }
    );
    let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
    assert_eq!(
        Shard::resolve(Some("/3"), k8s).unwrap(),
        Shard { index: 1, count: 3 }
    );
    let err = Shard::resolve(None, k8s).unwrap_err().to_string();
    assert!(
        err.contains("JOB_COMPLETION_INDEX") && err.contains("no shard count"),
        "{err}"
    );
    let err = Shard::resolve(Some("5/5"), none).unwrap_err().to_string();
    assert!(err.contains("0 to 4"), "{err}");
    assert!(Shard::resolve(Some("1/0"), none).is_err());
    assert!(Shard::resolve(Some("a/2"), none).is_err());
    let shard = Shard { index: 1, count: 3 };
    let mine: Vec<usize> = (0..8).filter(|&i| shard.contains(i)).collect();
    assert_eq!(mine, vec![1, 4, 7]);
}

#[test]
fn cli_runs_a_slurm_array_task_and_merges() {
    let out = scratch("cli");
    let olsim = env!("CARGO_BIN_EXE_olsim");
    let sweep = |envs: &[(&str, &str)]| {
        Command::new(olsim)
            .args(["sweep", smoke().to_str().unwrap(), "--quiet", "--set"])
            .args(["run.epochs=2", "--set", "tokenomics.slash_fraction=0.1,0.4"])
            .args(["--out", out.to_str().unwrap()])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("SLURM_ARRAY_TASK_COUNT")
            .env_remove("SLURM_ARRAY_TASK_MIN")
            .env_remove("JOB_COMPLETION_INDEX")
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    let task = sweep(&[
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ]);
    assert!(task.status.success(), "{task:?}");
    assert!(out.join("shard-1-of-2.json").is_file());
    assert!(out.join("points/000001.json").is_file());
    assert!(!out.join("points/000000.json").exists());
    let orphan = sweep(&[("JOB_COMPLETION_INDEX", "0")]);
    assert!(!orphan.status.success());
    assert!(String::from_utf8_lossy(&orphan.stderr).contains("no shard count"));
    let merged = Command::new(olsim)
        .args(["merge", out.to_str().unwrap(), "--partial"])
        .output()
        .unwrap();
    assert!(merged.status.success(), "{merged:?}");
    assert!(String::from_utf8_lossy(&merged.stdout).contains("merged 1 of 2 points"));
}

#[test]
fn a_rerun_resumes_skipping_finished_points_and_redoing_half_written_ones() {
    let spec = spec();
    let clean = scratch("resume-clean");
    run_into(&spec, &clean, Shard::ALL, 2);
    merge_dirs(&[&clean], &clean, false).unwrap();

    // A sweep killed between point 2's report and its record: merge --partial joins what
    // finished.
    let dir = scratch("resume");
    let first = run_into(&spec, &dir, Shard::ALL, 2);
    assert_eq!(first.resumed, 0);
    std::fs::remove_file(dir.join("points/000002.point.json")).unwrap();
    let partial = merge_dirs(&[&dir], &dir, true).unwrap();
    assert_eq!(partial.missing, vec![2]);
    // Point 3's report cut short: merge refuses it, a rerun redoes it.
    let report = dir.join("points/000003.json");
    let text = std::fs::read_to_string(&report).unwrap();
    std::fs::write(&report, &text[..text.len() / 2]).unwrap();
    let err = merge_dirs(&[&dir], &dir, true).unwrap_err().to_string();
    assert!(err.contains("000003.json"), "{err}");

    let resumed = run_into(&spec, &dir, Shard::ALL, 2);
    assert_eq!(resumed.resumed, 2, "points 0 and 1 are not run again");
    assert_eq!(
        resumed.points, first.points,
        "same records as the first run"
    );
    merge_dirs(&[&dir], &dir, false).unwrap();
    assert_eq!(
        std::fs::read(dir.join("sweep.csv")).unwrap(),
        std::fs::read(clean.join("sweep.csv")).unwrap(),
        "a resumed sweep merges to the same table"
    );
    // A third run finds everything done.
    assert_eq!(run_into(&spec, &dir, Shard::ALL, 2).resumed, 4);

    // A point that cannot be written stops the shard; the points before it are kept.
    let failed = scratch("resume-failed");
    std::fs::create_dir_all(failed.join("points/000002.json")).unwrap();
    let options = SweepOptions {
        shard: Shard::ALL,
        jobs: 1,
        out: failed.clone(),
        progress: false,
    };
    let err = run::run(&spec, &options).unwrap_err().to_string();
    assert!(
        err.contains("000002.json") && err.contains("rerun the same command to resume"),
        "{err}"
    );
    std::fs::remove_dir(failed.join("points/000002.json")).unwrap();
    assert_eq!(run_into(&spec, &failed, Shard::ALL, 1).resumed, 2);

    // Another grid or base scenario into this folder is refused, also when only the point
    // records tell (the manifests are gone).
    let mut other = spec.clone();
    other.set("tokenomics.slash_fraction=0.1,0.3").unwrap();
    let options = SweepOptions {
        shard: Shard::ALL,
        jobs: 1,
        out: dir.clone(),
        progress: false,
    };
    let err = run::run(&other, &options).unwrap_err().to_string();
    assert!(err.contains("another sweep"), "{err}");
    std::fs::remove_file(dir.join("shard-0-of-1.json")).unwrap();
    let err = run::run(&other, &options).unwrap_err().to_string();
    assert!(
        err.contains("000000.point.json") && err.contains("another sweep"),
        "{err}"
    );
    assert!(
        run::read_manifests(&dir).unwrap().is_empty(),
        "the refused sweep wrote nothing"
    );
}
