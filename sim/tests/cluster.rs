//! Sweeps on real schedulers, through the files shipped in docs/ (so they cannot rot):
//! - `docs/slurm/sweep.sbatch` runs as a 4-task Slurm job array on the single-node Slurm of
//!   `scripts/setup-slurm`, every task one shard writing into one shared folder; merged, it
//!   gives byte for byte the `sweep.csv` of the same sweep run locally in one piece.
//! - `docs/k8s/sweep-job.yaml` (a Kubernetes Indexed Job and its merge Job): no YAML parser is
//!   in Cargo.lock and no cluster here, so its key fields are checked as text: the Job is
//!   Indexed, `--shard /N` matches `completions`, the shards and the merge share one
//!   ReadWriteMany claim and one output folder.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SETUP: &str = "scripts/setup-slurm";
/// The whole job array must finish within this (the test-side limit; the job has its own
/// Slurm time limit too).
const TIMEOUT: Duration = Duration::from_secs(180);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cluster-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The 4-point sweep: smoke.toml cut to 2 epochs, slash fraction 0.1 and 0.2, seeds 7 and 8.
fn sweep_args() -> Vec<String> {
    [
        "--set",
        "run.epochs=2",
        "--set",
        "tokenomics.slash_fraction=0.1,0.2",
        "--seeds",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

fn smoke() -> String {
    repo().join("scenarios/smoke.toml").display().to_string()
}

/// Runs a command to its end; panics with its output unless it succeeds.
fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails, naming the setup step, unless the Slurm commands are installed and the cluster has a
/// node that is up.
fn require_slurm() {
    let hint = format!(
        "run `{SETUP}` (as root: installs Debian's slurm-wlm and starts a single-node Slurm on \
         localhost); scripts/setup calls it"
    );
    match Command::new("sbatch").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`sbatch --version` failed: {}; {hint}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => panic!("no Slurm here: cannot run `sbatch` ({e}); {hint}"),
    }
    let out = Command::new("sinfo")
        .args(["-h", "-p", "debug", "-o", "%T"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run `sinfo` ({e}); {hint}"));
    let states = String::from_utf8_lossy(&out.stdout).into_owned();
    let up = ["idle", "mixed", "allocated", "completing"];
    assert!(
        out.status.success() && states.lines().any(|s| up.contains(&s.trim())),
        "the Slurm cluster is not up (sinfo: {}{}); {hint}",
        states.trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// The Slurm logs of the array's tasks, for failure messages.
fn task_logs(dir: &Path) -> String {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    logs.retain(|p| p.extension().is_some_and(|e| e == "out"));
    logs.sort();
    logs.iter()
        .map(|p| {
            format!(
                "--- {}:\n{}",
                p.display(),
                std::fs::read_to_string(p).unwrap_or_default()
            )
        })
        .collect()
}

/// Submits `docs/slurm/sweep.sbatch` as `sbatch --array=0-3 --wait`, and waits for the array
/// (at most [`TIMEOUT`]; then cancels it).
fn submit_array(out: &Path, logs: &Path) {
    let script = repo().join("docs/slurm/sweep.sbatch");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(
        text.starts_with("#!/bin/bash\n") && text.contains("#SBATCH"),
        "{} is not a batch script",
        script.display()
    );
    let mut cmd = Command::new("sbatch");
    cmd.args(["--array=0-3", "--wait", "--parsable", "--time=5"])
        .arg(format!("--job-name=olsim-test-{}", std::process::id()))
        .arg(format!("--output={}/task-%a.out", logs.display()))
        .arg(format!("--chdir={}", logs.display()))
        .arg(&script)
        .arg(smoke())
        .arg(out)
        .args(sweep_args())
        // sbatch passes this environment on to the tasks: the olsim of this build.
        .env("OLSIM", env!("CARGO_BIN_EXE_olsim"))
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // `--parsable` prints the job id as soon as the array is queued; `--wait` then holds
    // sbatch until every task has ended.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line.trim().split(';').next().unwrap_or("").to_owned());
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > TIMEOUT {
            let job = rx.try_recv().unwrap_or_default();
            if !job.is_empty() {
                let _ = Command::new("scancel").arg(&job).status();
            }
            let _ = child.kill();
            let queue = Command::new("squeue")
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!(
                "the job array {job} did not finish within {TIMEOUT:?} (cancelled); squeue:\n\
                 {queue}\n{}",
                task_logs(logs)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut stderr = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr);
    assert!(
        status.success(),
        "sbatch --array=0-3 --wait {} failed ({status}): {stderr}\n{}",
        script.display(),
        task_logs(logs)
    );
}

#[test]
fn sweep_as_a_slurm_job_array_equals_the_local_sweep() {
    require_slurm();
    let olsim = env!("CARGO_BIN_EXE_olsim");
    let dir = scratch("slurm");
    let (shared, logs, local) = (dir.join("shared"), dir.join("logs"), dir.join("local"));
    std::fs::create_dir_all(&logs).unwrap();

    let started = Instant::now();
    submit_array(&shared, &logs);
    let on_slurm = started.elapsed();

    // Every task ran under Slurm, as one shard of four, one point each.
    for task in 0..4 {
        let log = std::fs::read_to_string(logs.join(format!("task-{task}.out")))
            .unwrap_or_else(|e| panic!("task {task} left no Slurm log ({e})"));
        assert!(
            log.contains(&format!("olsim sweep shard {task}/4"))
                && log.contains(&format!("ran 1 of 4 points (shard {task}/4")),
            "task {task}:\n{log}"
        );
        assert!(shared.join(format!("shard-{task}-of-4.json")).is_file());
    }
    run(Command::new(olsim).arg("merge").arg(&shared));

    run(Command::new(olsim)
        .arg("sweep")
        .arg(smoke())
        .args(sweep_args())
        .args(["--quiet", "--jobs", "2", "--out"])
        .arg(&local)
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("SLURM_ARRAY_TASK_COUNT")
        .env_remove("JOB_COMPLETION_INDEX"));
    assert!(local.join("shard-0-of-1.json").is_file());
    run(Command::new(olsim).arg("merge").arg(&local));

    let on_cluster = std::fs::read(shared.join("sweep.csv")).unwrap();
    let here = std::fs::read(local.join("sweep.csv")).unwrap();
    let text = String::from_utf8_lossy(&here);
    assert_eq!(text.lines().count(), 5, "a header and 4 points:\n{text}");
    assert!(
        on_cluster == here,
        "sweep.csv of the Slurm array differs from the local sweep's:\n--- slurm:\n{}\n--- local:\n{text}",
        String::from_utf8_lossy(&on_cluster)
    );
    eprintln!(
        "slurm job array: {:.1} s; whole test: {:.1} s",
        on_slurm.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
}

/// The value of the first `key: value` line (or `- key: value`; trimmed, quotes removed) after
/// `from`.
fn field<'a>(text: &'a str, from: usize, key: &str) -> &'a str {
    let needle = format!("{key}:");
    text[from..]
        .lines()
        .find_map(|l| l.trim().trim_start_matches("- ").strip_prefix(&needle))
        .unwrap_or_else(|| panic!("docs/k8s/sweep-job.yaml: no `{key}` after byte {from}"))
        .trim()
        .trim_matches('"')
}

/// The items of the first `command:` list after `from` (`- item` lines, quotes removed).
fn command(text: &str, from: usize) -> Vec<String> {
    let rest = &text[from..];
    let start = rest.find("command:").expect("a command") + "command:".len();
    rest[start..]
        .lines()
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|item| item.trim_matches('"').to_owned())
        .collect()
}

#[test]
fn k8s_indexed_job_manifest_is_consistent() {
    let path = repo().join("docs/k8s/sweep-job.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains('\t'), "YAML indents with spaces, not tabs");
    let docs: Vec<&str> = text.split("\n---\n").collect();
    assert_eq!(docs.len(), 3, "a claim, the shards' Job and the merge Job");
    let kinds: Vec<&str> = docs.iter().map(|d| field(d, 0, "kind")).collect();
    assert_eq!(kinds, ["PersistentVolumeClaim", "Job", "Job"]);
    let (claim, shards, merge) = (docs[0], docs[1], docs[2]);

    let claim_name = field(claim, 0, "name");
    assert!(claim.contains("- ReadWriteMany"), "shards on many nodes");

    assert_eq!(field(shards, 0, "completionMode"), "Indexed");
    let completions: u32 = field(shards, 0, "completions").parse().unwrap();
    let parallelism: u32 = field(shards, 0, "parallelism").parse().unwrap();
    assert!(completions >= 2 && (1..=completions).contains(&parallelism));
    let args = command(shards, 0);
    assert_eq!(args[..2], ["olsim", "sweep"], "{args:?}");
    let after = |flag: &str| {
        let i = args.iter().position(|a| a == flag);
        i.and_then(|i| args.get(i + 1))
            .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
            .clone()
    };
    // The index comes from JOB_COMPLETION_INDEX, the count from --shard /N = completions.
    assert_eq!(after("--shard"), format!("/{completions}"));
    assert!(
        !args.iter().any(|a| a.contains("JOB_COMPLETION_INDEX")),
        "olsim reads the index itself"
    );
    let out = after("--out");
    let mount = field(shards, shards.find("volumeMounts:").unwrap(), "mountPath");
    assert!(out.starts_with(&format!("{mount}/")), "{out} under {mount}");
    assert_eq!(field(shards, 0, "claimName"), claim_name);
    // The volume mounted is the claim's.
    let volume = field(shards, shards.find("volumeMounts:").unwrap(), "name");
    assert_eq!(
        field(shards, shards.find("volumes:").unwrap(), "name"),
        volume
    );

    // The merge Job reads the same folder from the same claim, after the shards (applied
    // by label).
    assert_eq!(field(merge, 0, "olsim.dev/step"), "merge");
    assert_eq!(field(shards, 0, "olsim.dev/step"), "shards");
    assert_eq!(command(merge, 0), ["olsim", "merge", out.as_str()]);
    assert_eq!(field(merge, 0, "claimName"), claim_name);
    assert_eq!(
        field(merge, merge.find("volumeMounts:").unwrap(), "mountPath"),
        mount
    );
    let shards_name = field(shards, 0, "name");
    assert!(
        text.contains(&format!("job/{shards_name}")) && text.contains("-l olsim.dev/step=merge"),
        "the header says how to run the steps in order"
    );
    // The swept file, relative to the image's /olsim, is one of the repository's.
    assert_eq!(field(shards, 0, "workingDir"), "/olsim");
    assert!(
        args[2].starts_with("scenarios/") && repo().join(&args[2]).is_file(),
        "{}",
        args[2]
    );
}
