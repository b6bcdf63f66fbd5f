//! The regression tooling through the `olsim` binary: `compare` on two reports, `check` on a
//! suite with a fresh baseline (pass), a stored digest that differs (fail), a moved metric
//! (fail, JUnit failure), a tolerance that allows it (pass) and `--update-baseline` printing
//! what changed, and `bench`'s JSON.
//! Scenario-only suites keep these tests free of timing; the benches' verdict logic is unit
//! tested in `src/bench.rs`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SMOKE: &str = include_str!("../../scenarios/smoke.toml");

/// A fresh, empty folder for one test.
fn workdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("check-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn olsim(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_olsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("olsim starts")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_scenario(dir: &Path, file: &str, text: &str, out: &str) {
    std::fs::write(dir.join(file), text).unwrap();
    let o = olsim(dir, &["run", file, "--out", out, "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn compare_lists_changed_metrics_and_fails_unless_told_not_to() {
    let dir = workdir("compare");
    run_scenario(&dir, "a.toml", SMOKE, "a");
    let pricier = SMOKE.replace("price = 0.01", "price = 0.02");
    assert_ne!(pricier, SMOKE);
    run_scenario(&dir, "b.toml", &pricier, "b");

    let same = olsim(&dir, &["compare", "a/report.json", "a/report.json"]);
    assert!(same.status.success(), "{}", stdout(&same));
    assert!(stdout(&same).contains("0 regressed"), "{}", stdout(&same));

    let differ = olsim(&dir, &["compare", "a/report.json", "b/report.json"]);
    assert_eq!(differ.status.code(), Some(1), "{}", stdout(&differ));
    let text = stdout(&differ);
    // Twice the price with the same calls: twice the fees, which the table shows.
    let fees_row = text
        .lines()
        .find(|l| l.starts_with("economy.fees "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        fees_row.contains("+100.000%") && fees_row.contains("CHANGED"),
        "{fees_row}"
    );

    let no_fail = olsim(
        &dir,
        &["compare", "a/report.json", "b/report.json", "--no-fail"],
    );
    assert!(no_fail.status.success());

    // Ignoring every metric that moved turns the verdict around.
    std::fs::write(
        dir.join("tol.toml"),
        "[[tolerance]]\nmetric = \"*\"\nignore = true\n",
    )
    .unwrap();
    let ignored = olsim(
        &dir,
        &[
            "compare",
            "a/report.json",
            "b/report.json",
            "--tolerances",
            "tol.toml",
        ],
    );
    assert!(ignored.status.success(), "{}", stdout(&ignored));

    let missing = olsim(&dir, &["compare", "a/report.json", "nope.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("nope.json: cannot read the file"),
        "{}",
        stderr(&missing)
    );
}

fn gini_of(baseline: &Path) -> f64 {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(baseline).unwrap()).unwrap();
    v["result"]["fairness"]["gini"].as_f64().unwrap()
}

fn set_gini(baseline: &Path, gini: f64) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(baseline).unwrap()).unwrap();
    v["result"]["fairness"]["gini"] = gini.into();
    std::fs::write(baseline, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn check_passes_on_its_baseline_and_fails_when_a_metric_moves() {
    let dir = workdir("suite");
    std::fs::write(dir.join("smoke.toml"), SMOKE).unwrap();
    let suite = "name = \"mine\"\nbaseline = \"baseline\"\nscenarios = [\"smoke.toml\"]\n";
    std::fs::write(dir.join("suite.toml"), suite).unwrap();

    // No baseline yet: a failure that says what to do.
    let o = olsim(&dir, &["check", "suite.toml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("--update-baseline"), "{}", stdout(&o));

    let o = olsim(&dir, &["check", "suite.toml", "--update-baseline"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let baseline = dir.join("baseline/smoke.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert!(
        v.get("perf").is_none(),
        "baselines keep no wall-clock figures"
    );
    assert!(v["digest"].as_str().unwrap().starts_with("0x"));

    let o = olsim(&dir, &["check", "suite.toml", "--junit", "junit.xml"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("every check passed"));
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(xml.contains("name=\"determinism\"/>") && xml.contains("name=\"fairness\"/>"));
    assert!(!xml.contains("<failure"));

    // A stored digest that differs from the run's, with every metric the same: the digest
    // case fails and shows both values.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    let digest = v["digest"].as_str().unwrap().to_owned();
    let stale = format!("0x{}", "0".repeat(64));
    v["digest"] = stale.clone().into();
    std::fs::write(&baseline, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = olsim(&dir, &["check", "suite.toml", "--junit", "junit.xml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("/ digest:") && text.contains(&digest) && text.contains(&stale),
        "{text}"
    );
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(xml.contains("name=\"digest\">"), "{xml}");
    v["digest"] = digest.into();
    std::fs::write(&baseline, serde_json::to_string_pretty(&v).unwrap()).unwrap();

    // Someone's change moved the Gini coefficient: the fairness case fails, the rest pass.
    let gini = gini_of(&baseline);
    set_gini(&baseline, gini + 0.01);
    let o = olsim(&dir, &["check", "suite.toml", "--junit", "junit.xml"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("fairness.gini") && text.contains("CHANGED"),
        "{text}"
    );
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert!(xml.contains("failures=\"1\""));
    assert!(xml.contains("name=\"fairness\">\n      <failure message=\"1 metric(s) regressed\">"));

    // A stated tolerance lets it through.
    std::fs::write(
        dir.join("suite.toml"),
        format!("{suite}[[tolerance]]\nmetric = \"fairness.gini\"\nabs = 0.02\n"),
    )
    .unwrap();
    let o = olsim(&dir, &["check", "suite.toml"]);
    assert!(o.status.success(), "{}", stdout(&o));
    assert!(stdout(&o).contains("within tolerance"));

    // Updating prints what changed and restores the measured value.
    let o = olsim(&dir, &["check", "suite.toml", "--update-baseline"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert!(
        text.contains("changed from the old baseline") && text.contains("fairness.gini"),
        "{text}"
    );
    assert_eq!(gini_of(&baseline), gini);

    // A baseline of an older report format: check says so, updating replaces it.
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    v["version"] = 1.into();
    std::fs::write(&baseline, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let o = olsim(&dir, &["check", "suite.toml"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("report format version 1"),
        "{}",
        stderr(&o)
    );
    let o = olsim(&dir, &["check", "suite.toml", "--update-baseline"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = olsim(&dir, &["check", "suite.toml"]);
    assert!(o.status.success(), "{}", stdout(&o));
}

#[test]
fn bad_suites_are_errors_not_regressions() {
    let dir = workdir("bad-suite");
    std::fs::write(dir.join("s.toml"), "name = \"x\"\nbaseline = \"b\"\n").unwrap();
    let o = olsim(&dir, &["check", "s.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nothing to check"), "{}", stderr(&o));
}

#[test]
fn bench_writes_ratio_json_check_can_read() {
    let dir = workdir("bench");
    let o = olsim(
        &dir,
        &[
            "bench",
            "--only",
            "chain",
            "--repeats",
            "1",
            "--out",
            "b.json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("b.json")).unwrap()).unwrap();
    let m = &v["measurements"][0];
    assert_eq!(m["name"], "chain");
    let (s, r, ratio) = (
        m["seconds"].as_f64().unwrap(),
        m["reference_seconds"].as_f64().unwrap(),
        m["ratio"].as_f64().unwrap(),
    );
    assert!(
        s > 0.0 && r > 0.0 && (ratio - s / r).abs() < 1e-9 * ratio,
        "{m}"
    );
    assert_eq!(v["measurements"].as_array().unwrap().len(), 1);
}

#[test]
fn validate_prints_the_runs_estimated_size() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_olsim"))
        .args(["validate", scenario.to_str().unwrap()])
        .output()
        .expect("olsim starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ok ") && lines[0].contains("`smoke`"),
        "{stdout}"
    );
    assert!(
        lines[1].contains("estimated peak memory 0.5 GiB of this machine's")
            && lines[1].contains("roughly 64 transactions"),
        "{stdout}"
    );
}

#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_the_output_quietly_not_with_a_panic() {
    use std::os::unix::process::ExitStatusExt;
    let dir = workdir("closed-pipe");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/smoke.toml");
    // The reading end is closed before olsim writes its first line (`olsim ... | head -0`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_olsim"))
        .args(["validate", scenario.to_str().unwrap()])
        .current_dir(&dir)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("olsim starts");
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{:?}", out.status);
}
