//! Fault injection through the `olsim` binary: `olsim run` and `olsim sweep` killed (SIGKILL,
//! SIGINT) at seeded random moments, killed mid-write by a file size limit, and refused a
//! write by it. Every report folder must hold the old complete report or the new complete one;
//! a killed sweep must merge with `--partial` and, resumed, merge to the same table as an
//! uninterrupted sweep; an edited point record is refused by merge; an output folder that
//! cannot be written fails before the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use olsim::frames::run::FILES;
use olsim::report::{Report, digest_of};

const OLSIM: &str = env!("CARGO_BIN_EXE_olsim");
const SMOKE: &str = include_str!("../../scenarios/smoke.toml");

/// A fresh, empty folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("faults-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// splitmix64: the kill moments, from a fixed seed.
struct Moments(u64);

impl Moments {
    /// A duration uniformly in `[lo, hi]` times `span`.
    fn next(&mut self, span: Duration, lo: f64, hi: f64) -> Duration {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
        span.mul_f64(lo + (hi - lo) * unit)
    }
}

fn olsim(args: &[&str]) -> Command {
    let mut command = Command::new(OLSIM);
    command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Starts `command`, sends `signal` after `delay` (unless it has exited) and waits.
fn kill_after(command: &mut Command, delay: Duration, signal: i32) -> Output {
    let child: Child = command.spawn().expect("olsim starts");
    std::thread::sleep(delay);
    // SAFETY: `kill` sends a signal to the child this test started and has not yet reaped
    // (wait_with_output below reaps it), so the pid is still ours.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    child.wait_with_output().expect("olsim is waited for")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The result digest of the complete report in `dir`, or what is wrong: exactly the three
/// report files and the Parquet tables, report.json whole and matching its own digest,
/// report.md, report.html and every table naming the same digest (so all are of one run).
fn complete_report(dir: &Path) -> Result<String, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<&str> = ["report.html", "report.json", "report.md"]
        .into_iter()
        .chain(FILES)
        .collect();
    expected.sort();
    if names != expected {
        return Err(format!("{}: files {names:?}", dir.display()));
    }
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let report = Report::from_json(&read("report.json"))?;
    if digest_of(&report.result) != report.digest {
        return Err("report.json does not match its digest".into());
    }
    let d = &report.digest;
    if !read("report.md").contains(&format!("Result digest: `{d}`")) {
        return Err(format!("report.md is not the report of {d}"));
    }
    let html = read("report.html");
    if !html.contains(&format!("<code>{d}</code>")) || !html.ends_with("</html>\n") {
        return Err(format!("report.html is not the whole report of {d}"));
    }
    for table in FILES {
        let metadata = olsim::frames::metadata(&dir.join(table)).map_err(|e| e.to_string())?;
        if !metadata.contains(&("olsim.digest".to_string(), d.clone())) {
            return Err(format!("{table} is not a table of {d}"));
        }
    }
    Ok(report.digest)
}

/// Runs `scenario` into `out` to the end; its digest and how long it took.
fn run_to_end(scenario: &Path, out: &Path) -> (String, Duration) {
    let started = Instant::now();
    let o = olsim(&["run", scenario.to_str().unwrap(), "--quiet", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    (complete_report(out).unwrap(), started.elapsed())
}

#[test]
fn killed_runs_leave_the_old_report_or_the_new_one() {
    let dir = scratch("run");
    // Two runs with different results, written in turn into one folder.
    let scenarios = [7, 8].map(|seed| {
        let path = dir.join(format!("smoke-{seed}.toml"));
        std::fs::write(&path, SMOKE.replace("seed = 7", &format!("seed = {seed}"))).unwrap();
        path
    });
    let digests = scenarios
        .clone()
        .map(|s| run_to_end(&s, &dir.join("clean")).0);
    assert_ne!(digests[0], digests[1]);
    let out = dir.join("report");
    let (_, span) = run_to_end(&scenarios[0], &out);
    let mut current = 0;

    let mut moments = Moments(14);
    let mut outcomes = Vec::new();
    for kill in 0..12 {
        let next = 1 - current;
        let signal = if kill % 2 == 0 {
            libc::SIGKILL
        } else {
            libc::SIGINT
        };
        // Most moments late in the run, where the report is written.
        let delay = moments.next(span, 0.2, 1.2);
        let o = kill_after(
            olsim(&["run", scenarios[next].to_str().unwrap(), "--quiet", "--out"]).arg(&out),
            delay,
            signal,
        );
        let found = complete_report(&out)
            .unwrap_or_else(|e| panic!("kill {kill} (signal {signal} after {delay:?}): {e}"));
        let now = digests.iter().position(|d| *d == found).unwrap();
        assert!(
            now == current || now == next,
            "kill {kill}: a report of neither run"
        );
        if o.status.success() {
            assert_eq!(
                now, next,
                "kill {kill}: the run finished but its report is not there"
            );
        }
        outcomes.push(o.status.success());
        current = now;
    }
    eprintln!("runs finished before their kill: {outcomes:?}");

    // Killed mid-write by the file size limit (SIGXFSZ while writing report.html), and refused
    // the write by it (the signal ignored: EFBIG): the old report stays, the error says what
    // was not written.
    let next = 1 - current;
    for (shell, killed) in [("", true), ("trap '' XFSZ; ", false)] {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("{shell}ulimit -f 40; exec \"$0\" \"$@\""))
            .arg(OLSIM)
            .args(["run", scenarios[next].to_str().unwrap(), "--quiet", "--out"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(!o.status.success());
        let stderr = text(&o.stderr);
        if !killed {
            assert!(
                stderr.contains("report.html")
                    && stderr.contains("nothing was written")
                    && stderr.contains("is unchanged"),
                "{stderr}"
            );
        }
        assert_eq!(complete_report(&out).unwrap(), digests[current]);
    }
    let (found, _) = run_to_end(&scenarios[next], &out);
    assert_eq!(found, digests[next]);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".report."))
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporaries of killed runs are cleaned up: {leftovers:?}"
    );
}

const SWEEP: [&str; 8] = [
    "--set",
    "run.epochs=2",
    "--set",
    "tokenomics.slash_fraction=0.1,0.2,0.4",
    "--seeds",
    "4",
    "--jobs",
    "2",
];

fn sweep(smoke: &Path, out: &Path) -> Command {
    let mut command = olsim(&["sweep", smoke.to_str().unwrap(), "--quiet"]);
    command.args(SWEEP).arg("--out").arg(out);
    command
}

fn records(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("points")).map_or(0, |entries| {
        entries
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_string_lossy();
                !name.starts_with('.') && name.ends_with(".point.json")
            })
            .count()
    })
}

fn merge(dir: &Path, partial: bool) -> Output {
    let mut command = olsim(&["merge"]);
    command.arg(dir);
    if partial {
        command.arg("--partial");
    }
    command.output().unwrap()
}

#[test]
fn killed_sweeps_resume_and_merge_to_the_uninterrupted_table() {
    let root = scratch("sweep");
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let clean = root.join("clean");
    let started = Instant::now();
    let o = sweep(&smoke, &clean).output().unwrap();
    let span = started.elapsed();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(merge(&clean, false).status.success());
    let table = std::fs::read(clean.join("sweep.csv")).unwrap();

    let dir = root.join("killed");
    let mut moments = Moments(15);
    let mut resumed_any = false;
    for kill in 0..6 {
        let before = records(&dir);
        let signal = if kill % 2 == 0 {
            libc::SIGKILL
        } else {
            libc::SIGINT
        };
        // A moment within what is left of the sweep.
        let left = span.mul_f64((12 - before) as f64 / 12.0);
        let delay = moments.next(left, 0.15, 0.7);
        let o = kill_after(&mut sweep(&smoke, &dir), delay, signal);
        let stderr = text(&o.stderr);
        if before > 0 && stderr.contains("resuming") {
            assert!(
                stderr.contains(&format!("resuming: {before} of 12 points already done")),
                "kill {kill}: {stderr}"
            );
            resumed_any = true;
        }
        let after = records(&dir);
        assert!(after >= before, "kill {kill}: finished points were lost");
        if after > 0 {
            let o = merge(&dir, true);
            assert!(o.status.success(), "kill {kill}: {}", text(&o.stderr));
            assert!(
                text(&o.stdout).contains(&format!("merged {after} of 12 points")),
                "{}",
                text(&o.stdout)
            );
        }
    }
    let before = records(&dir);
    let o = sweep(&smoke, &dir).output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    if before > 0 {
        assert!(
            text(&o.stderr).contains(&format!("resuming: {before} of 12 points already done")),
            "{}",
            text(&o.stderr)
        );
        resumed_any = true;
    }
    assert!(resumed_any, "no kill left finished points to resume from");
    assert!(merge(&dir, false).status.success());
    assert!(
        std::fs::read(dir.join("sweep.csv")).unwrap() == table,
        "a resumed sweep merges to the same table as an uninterrupted one"
    );

    // A point record with an edited parameter relabels nothing: merge refuses it.
    let record = clean.join("points/000001.point.json");
    let edited = std::fs::read_to_string(&record)
        .unwrap()
        .replacen("\"0.1\"", "\"0.2\"", 1);
    std::fs::write(&record, edited).unwrap();
    let o = merge(&clean, false);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("000001.point.json") && stderr.contains("point 1:"),
        "{stderr}"
    );

    // The same folder with another grid is refused before anything runs.
    let o = olsim(&["sweep", smoke.to_str().unwrap(), "--quiet"])
        .args(["--set", "tokenomics.slash_fraction=0.3", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("another sweep"),
        "{}",
        text(&o.stderr)
    );
}

/// Runs `olsim` and fails the test if it takes longer than `limit`.
fn within(command: &mut Command, limit: Duration) -> Output {
    let mut child = command.spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("still running after {limit:?}: the output folder was not probed first");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn an_output_folder_that_cannot_be_written_fails_before_the_run() {
    // The full-size scenario: minutes of work if it started.
    let scale = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/scale.toml");
    let scale = scale.to_str().unwrap();
    let limit = Duration::from_secs(20);
    let o = within(
        &mut olsim(&["run", scale, "--quiet", "--out", "/proc/olsim-x"]),
        limit,
    );
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("/proc/olsim-x")
            && stderr.contains("cannot create the output folder")
            && stderr.contains("nothing was run"),
        "{stderr}"
    );
    let o = within(
        &mut olsim(&["sweep", scale, "--quiet", "--out", "/proc/olsim-x"]),
        limit,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("/proc/olsim-x"),
        "{}",
        text(&o.stderr)
    );

    // A folder holding other files is refused too, since the report replaces it whole.
    let dir = scratch("probe");
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let o = within(olsim(&["run", scale, "--quiet", "--out"]).arg(&dir), limit);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("notes.txt"), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
        "mine"
    );
}
