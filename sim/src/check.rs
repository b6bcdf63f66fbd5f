//! `olsim check`: runs a suite (a TOML file listing scenarios and benches) and compares every
//! metric with the suite's committed baseline; fails on regression.
//!
//! - Scenarios run `repeat` times each: the result digests must be identical (determinism),
//!   then every metric of the result section is compared with `<baseline>/<scenario>.json`
//!   under the suite's tolerances (exact by default; see [`crate::compare`]); the result
//!   digest must equal the baseline's stored one unless a metric changed within tolerance.
//! - Benches (see [`crate::bench`]) are compared as ratios to a reference measured in the
//!   same run, against `<baseline>/bench-<profile>.json`, with the suite's noise band.
//! - `--update-baseline` writes the baselines instead and prints what changed.
//!
//! The outcome prints as a terminal summary and renders as JUnit XML: one test suite per
//! scenario (and one for the benches), one test case per metric group.
//!
//! Suite file:
//! ```toml
//! name = "smoke"
//! baseline = "../reports/baseline/smoke"   # folder, relative to this file
//! scenarios = ["../scenarios/smoke.toml"]  # relative to this file
//! repeat = 2                               # runs per scenario (default 2)
//! benches = ["chain", "epoch"]             # optional
//! noise_band = 0.5                         # timing ratios may grow 50% (default)
//! [[tolerance]]                            # optional, first match wins (compare's format)
//! metric = "compute[*].modelled_seconds"
//! rel = 1e-9
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::Deserialize;

use crate::bench::{self, BenchReport};
use crate::compare::{self, CompareError, Comparison, Document, MetricDiff, Tolerance, Tolerances};
use crate::engine::{self, RunOptions};
use crate::output::{self, OutputError};
use crate::report::Report;
use crate::scenario::Scenario;

/// Why a suite could not be checked (as opposed to a regression, which is an outcome).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The suite file is malformed.
    #[error("{path}: {message}")]
    Suite {
        /// The suite file.
        path: PathBuf,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A baseline file is unreadable.
    #[error(transparent)]
    Baseline(#[from] CompareError),
    /// A baseline or JUnit file could not be written (the old one, if any, is unchanged).
    #[error(transparent)]
    Output(#[from] OutputError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckError + '_ {
    move |source| CheckError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A suite file, with its paths resolved against the file's folder.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Suite name.
    pub name: String,
    /// Folder of the baseline files.
    pub baseline: PathBuf,
    /// Scenario files.
    #[serde(default)]
    pub scenarios: Vec<PathBuf>,
    /// Runs per scenario; all must give the same digest.
    #[serde(default = "default_repeat")]
    pub repeat: u32,
    /// Benches to run (names from [`bench::BENCHES`]).
    #[serde(default)]
    pub benches: Vec<String>,
    /// How much a timing ratio may grow before it counts as a regression (0.5 = 50%).
    #[serde(default = "default_noise_band")]
    pub noise_band: f64,
    /// Runs per bench side, kept at their best.
    #[serde(default = "default_bench_repeats")]
    pub bench_repeats: u32,
    /// Tolerances of deterministic metrics (first match wins; none: exact).
    #[serde(default)]
    pub tolerance: Vec<Tolerance>,
}

fn default_repeat() -> u32 {
    2
}

fn default_noise_band() -> f64 {
    0.5
}

fn default_bench_repeats() -> u32 {
    5
}

impl Suite {
    /// Reads and validates a suite file.
    pub fn load(path: &Path) -> Result<Self, CheckError> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        let fail = |message: String| CheckError::Suite {
            path: path.to_owned(),
            message,
        };
        let mut suite: Suite = toml::from_str(&text).map_err(|e| {
            fail(format!(
                "{e}(allowed keys: name, baseline, scenarios, repeat, benches, noise_band, \
                 bench_repeats, [[tolerance]])"
            ))
        })?;
        suite.validate().map_err(fail)?;
        let dir = path.parent().unwrap_or(Path::new(""));
        suite.baseline = dir.join(&suite.baseline);
        for s in &mut suite.scenarios {
            *s = dir.join(&*s);
        }
        Ok(suite)
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.contains(['/', '\\']) {
            return Err(format!(
                "name = {:?}: give a non-empty name without slashes",
                self.name
            ));
        }
        if self.scenarios.is_empty() && self.benches.is_empty() {
            return Err("the suite lists no `scenarios` and no `benches`: nothing to check".into());
        }
        if self.repeat == 0 || self.bench_repeats == 0 {
            return Err("`repeat` and `bench_repeats` must be at least 1".into());
        }
        if !self.noise_band.is_finite() || self.noise_band <= 0.0 {
            return Err(format!(
                "noise_band = {}: it must be a number > 0 (0.5 lets a timing ratio grow 50%)",
                self.noise_band
            ));
        }
        if let Some(b) = self
            .benches
            .iter()
            .find(|b| !bench::BENCHES.contains(&b.as_str()))
        {
            return Err(format!(
                "benches: unknown bench `{b}`; the benches are: {}",
                bench::BENCHES.join(", ")
            ));
        }
        self.tolerances().validate()
    }

    /// The suite's tolerance rules.
    pub fn tolerances(&self) -> Tolerances {
        Tolerances {
            rules: self.tolerance.clone(),
        }
    }
}

/// One check that passes or fails on its own (a JUnit test case).
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Case name: `determinism`, `baseline`, a metric group or a bench.
    pub name: String,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// The checks of one scenario or of the benches (a JUnit test suite).
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// `scenario <name>` or `benches`.
    pub name: String,
    /// The cases, in order.
    pub cases: Vec<Case>,
    /// Metric-by-metric comparison with the baseline, when there was one to compare with.
    pub comparison: Option<Comparison>,
    /// One line for the terminal.
    pub summary: String,
    /// Wall seconds.
    pub seconds: f64,
}

impl Section {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.failure.is_none())
    }
}

/// The outcome of checking a suite.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// Suite name.
    pub suite: String,
    /// One section per scenario, then the benches.
    pub sections: Vec<Section>,
    /// Whether the baselines were rewritten.
    pub updated: bool,
}

impl Outcome {
    /// Whether every case of every section passed.
    pub fn passed(&self) -> bool {
        self.sections.iter().all(Section::passed)
    }

    /// How many cases failed.
    pub fn failures(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| c.failure.is_some())
            .count()
    }

    /// Terminal output: one line per section, then the failures and the changed metrics.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for s in &self.sections {
            let status = if s.passed() { "ok" } else { "FAILED" };
            let _ = writeln!(
                out,
                "{status:<6} {}: {} ({:.2} s)",
                s.name, s.summary, s.seconds
            );
        }
        for s in &self.sections {
            for c in &s.cases {
                if let Some(f) = &c.failure {
                    let _ = writeln!(out, "\n{} / {}:\n{}", s.name, c.name, f.trim_end());
                }
            }
            if let Some(cmp) = &s.comparison {
                let shown: Vec<&MetricDiff> = cmp
                    .changes()
                    .filter(|m| self.updated || !m.verdict.is_regression())
                    .collect();
                if !shown.is_empty() {
                    let what = if self.updated {
                        "changed from the old baseline"
                    } else {
                        "changed within tolerance"
                    };
                    let _ = writeln!(out, "\n{} / {what}:\n{}", s.name, Comparison::table(shown));
                }
            }
        }
        let _ = match (self.updated, self.failures()) {
            (true, 0) => writeln!(out, "\nbaseline of suite {} updated", self.suite),
            (_, 0) => writeln!(out, "\nsuite {}: every check passed", self.suite),
            (_, n) => writeln!(out, "\nsuite {}: {n} check(s) FAILED", self.suite),
        };
        out
    }

    /// JUnit XML: one `testsuite` per section, one `testcase` per case.
    pub fn junit(&self) -> String {
        let total: usize = self.sections.iter().map(|s| s.cases.len()).sum();
        let failures = self.failures();
        let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            x,
            "<testsuites name=\"olsim check {}\" tests=\"{total}\" failures=\"{failures}\">",
            xml(&self.suite)
        );
        for s in &self.sections {
            let fails = s.cases.iter().filter(|c| c.failure.is_some()).count();
            let _ = writeln!(
                x,
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{fails}\" time=\"{:.3}\">",
                xml(&s.name),
                s.cases.len(),
                s.seconds
            );
            let class = xml(&format!("{}.{}", self.suite, s.name.replace(' ', ".")));
            for c in &s.cases {
                match &c.failure {
                    None => {
                        let _ = writeln!(
                            x,
                            "    <testcase classname=\"{class}\" name=\"{}\"/>",
                            xml(&c.name)
                        );
                    }
                    Some(f) => {
                        let first = f.lines().next().unwrap_or("failed");
                        let _ = writeln!(
                            x,
                            "    <testcase classname=\"{class}\" name=\"{}\">\n      \
                             <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(&c.name),
                            xml(first),
                            xml(f)
                        );
                    }
                }
            }
            x.push_str("  </testsuite>\n");
        }
        x.push_str("</testsuites>\n");
        x
    }
}

/// Escapes text for XML attributes and content.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs `suite`; with `update` writes its baselines instead of failing on changes.
pub fn run(suite: &Suite, update: bool) -> Result<Outcome, CheckError> {
    let mut sections = Vec::new();
    for file in &suite.scenarios {
        sections.push(check_scenario(suite, file, update)?);
    }
    if !suite.benches.is_empty() {
        sections.push(check_benches(suite, update)?);
    }
    Ok(Outcome {
        suite: suite.name.clone(),
        sections,
        updated: update,
    })
}

/// Arguments of `olsim check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Suite file (TOML: name, baseline, scenarios, benches, tolerances).
    pub suite: PathBuf,
    /// Rewrite the baseline from this run and print what changed.
    #[arg(long)]
    pub update_baseline: bool,
    /// Also write the outcome as JUnit XML to this file.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

/// `olsim check`: prints the outcome, writes JUnit XML if asked; exits 1 when a check failed,
/// 2 when the suite or a baseline cannot be read.
pub fn command(args: &CheckArgs) -> ExitCode {
    let outcome = Suite::load(&args.suite).and_then(|suite| {
        println!(
            "olsim check {} ({}, {} build)",
            suite.name,
            args.suite.display(),
            bench::profile()
        );
        let outcome = run(&suite, args.update_baseline)?;
        if let Some(path) = &args.junit {
            write(path, &outcome.junit())?;
        }
        Ok(outcome)
    });
    match outcome {
        Ok(outcome) => {
            print!("{}", outcome.render());
            if outcome.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The cases of a comparison: one per metric group, failing with a table of its regressions.
fn group_cases(cmp: &Comparison) -> Vec<Case> {
    cmp.groups()
        .into_iter()
        .map(|(group, metrics)| {
            let bad: Vec<&MetricDiff> = metrics
                .into_iter()
                .filter(|m| m.verdict.is_regression())
                .collect();
            Case {
                name: group.to_owned(),
                failure: (!bad.is_empty()).then(|| {
                    format!(
                        "{} metric(s) regressed\n{}",
                        bad.len(),
                        Comparison::table(bad.iter().copied())
                    )
                }),
            }
        })
        .collect()
}

/// The `digest` case: the run's result digest must equal the baseline's stored one, unless
/// metrics changed within a stated tolerance (or ignored by one), which changes it by design.
/// A mismatch with no such change means something the metric comparison does not see
/// changed, or the baseline file was edited.
fn digest_case(old: &Document, digest: &str, cmp: &Comparison, path: &Path) -> Case {
    let stored = old.digest.as_deref().unwrap_or("none");
    let tolerated = cmp.changes().any(|m| !m.verdict.is_regression());
    let why = if cmp.regressions().next().is_some() {
        "the metrics that regressed changed it"
    } else {
        "no compared metric changed, so a part of the result the comparison does not cover \
         changed, or the baseline file was edited"
    };
    Case {
        name: "digest".into(),
        failure: (stored != digest && !tolerated).then(|| {
            format!(
                "result digest {digest} differs from the baseline's stored digest {stored} ({}): \
                 {why}; after an intended change run `olsim check SUITE --update-baseline`",
                path.display()
            )
        }),
    }
}

fn missing_baseline(path: &Path, what: &str) -> Case {
    Case {
        name: "baseline".into(),
        failure: Some(format!(
            "no baseline at {}: run `olsim check SUITE --update-baseline` ({what}) and commit it",
            path.display()
        )),
    }
}

fn failed_section(name: String, case: &str, message: String, started: Instant) -> Section {
    Section {
        name,
        cases: vec![Case {
            name: case.into(),
            failure: Some(message),
        }],
        comparison: None,
        summary: format!("{case} failed"),
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn check_scenario(suite: &Suite, file: &Path, update: bool) -> Result<Section, CheckError> {
    let started = Instant::now();
    let label = format!("scenario {}", file.display());
    let scenario = match Scenario::load(file) {
        Ok(s) => s,
        Err(e) => return Ok(failed_section(label, "load", e.to_string(), started)),
    };
    let name = format!("scenario {}", scenario.run.name);
    let mut reports: Vec<Report> = Vec::new();
    for _ in 0..suite.repeat {
        match engine::run(&scenario, &RunOptions::default()) {
            Ok(r) => reports.push(r),
            Err(e) => return Ok(failed_section(name, "run", e.to_string(), started)),
        }
    }
    let digests: Vec<&str> = reports.iter().map(|r| r.digest.as_str()).collect();
    let deterministic = digests.iter().all(|d| *d == digests[0]);
    let mut cases = vec![Case {
        name: "determinism".into(),
        failure: (!deterministic).then(|| {
            format!(
                "{} runs of the same scenario and seed gave different result digests:\n{}",
                digests.len(),
                digests.join("\n")
            )
        }),
    }];
    let report = &reports[0];
    let current = baseline_json(report);
    let path = suite.baseline.join(format!("{}.json", scenario.run.name));
    let old = match (path.exists(), update) {
        (false, _) => None,
        // Updating replaces a baseline this olsim cannot read (an older report format).
        (true, true) => Document::load(&path).ok(),
        (true, false) => Some(Document::load(&path)?),
    };
    let comparison = old.as_ref().map(|old| {
        let now = Document::parse(&current).expect("olsim parses its own baseline JSON");
        compare::compare(&old.result, &now.result, &suite.tolerances())
    });
    if update {
        if deterministic {
            write(&path, &current)?;
        }
    } else {
        match (&comparison, &old) {
            (Some(cmp), Some(old)) => {
                cases.push(digest_case(old, &report.digest, cmp, &path));
                cases.extend(group_cases(cmp));
            }
            _ => cases.push(missing_baseline(&path, "this scenario has none yet")),
        }
    }
    let changed = comparison.as_ref().map_or(0, |c| c.changes().count());
    let summary = format!(
        "{} run(s), digest {}{}, {} metric(s) changed from the baseline",
        reports.len(),
        short(&report.digest),
        if deterministic { "" } else { " NOT REPRODUCED" },
        changed
    );
    Ok(Section {
        name,
        cases,
        comparison,
        summary,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn check_benches(suite: &Suite, update: bool) -> Result<Section, CheckError> {
    let started = Instant::now();
    let name = "benches".to_owned();
    let current = match bench::run(&suite.benches, suite.bench_repeats) {
        Ok(r) => r,
        Err(e) => return Ok(failed_section(name, "run", e.to_string(), started)),
    };
    let path = suite
        .baseline
        .join(format!("bench-{}.json", bench::profile()));
    let old = match path.exists() {
        true => {
            let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
            Some(
                BenchReport::from_json(&text).map_err(|message| CompareError::Document {
                    path: path.clone(),
                    message,
                })?,
            )
        }
        false => None,
    };
    let comparison = old.as_ref().map(|old| Comparison {
        metrics: bench::compare(old, &current, suite.noise_band),
    });
    let mut cases = Vec::new();
    if update {
        write(&path, &(current.to_json() + "\n"))?;
    } else {
        match &comparison {
            Some(cmp) => cases.extend(group_cases(cmp)),
            None => cases.push(missing_baseline(
                &path,
                &format!(
                    "timings are kept per build profile; this is a {} build",
                    bench::profile()
                ),
            )),
        }
    }
    let ratios: Vec<String> = current
        .measurements
        .iter()
        .map(|m| format!("{} {:.3}", m.name, m.ratio))
        .collect();
    Ok(Section {
        name,
        cases,
        comparison,
        summary: format!("ratios to same-run references: {}", ratios.join(", ")),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A report as a baseline: the report JSON without its wall-clock `perf` section.
fn baseline_json(report: &Report) -> String {
    let mut value = serde_json::to_value(report).expect("a report always serialises");
    if let Some(map) = value.as_object_mut() {
        map.remove("perf");
    }
    serde_json::to_string_pretty(&value).expect("JSON values serialise") + "\n"
}

/// Writes a baseline or JUnit file atomically ([`output::write_file`]): an old file stays
/// whole until the new one is.
fn write(path: &Path, text: &str) -> Result<(), CheckError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    Ok(output::write_file(path, text.as_bytes())?)
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(text: &str) -> Result<Suite, String> {
        let s: Suite = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate().map(|()| s)
    }

    #[test]
    fn suite_files_are_validated_with_clear_messages() {
        let ok = suite("name = \"s\"\nbaseline = \"b\"\nscenarios = [\"x.toml\"]\n").unwrap();
        assert_eq!((ok.repeat, ok.noise_band, ok.bench_repeats), (2, 0.5, 5));
        for (text, says) in [
            ("name = \"s\"\nbaseline = \"b\"\n", "nothing to check"),
            (
                "name = \"a/b\"\nbaseline = \"b\"\nbenches = [\"chain\"]\n",
                "without slashes",
            ),
            (
                "name = \"s\"\nbaseline = \"b\"\nbenches = [\"warp\"]\n",
                "unknown bench `warp`",
            ),
            (
                "name = \"s\"\nbaseline = \"b\"\nbenches = [\"chain\"]\nnoise_band = 0\n",
                "noise_band = 0",
            ),
            (
                "name = \"s\"\nbaseline = \"b\"\nbenches = [\"chain\"]\n[[tolerance]]\nmetric = \"\"\n",
                "`metric` is empty",
            ),
            (
                "name = \"s\"\nbaseline = \"b\"\nscenario = [\"x\"]\n",
                "unknown field",
            ),
        ] {
            let err = suite(text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn junit_has_a_suite_per_section_and_escapes_failures() {
        let outcome = Outcome {
            suite: "smoke".into(),
            updated: false,
            sections: vec![Section {
                name: "scenario smoke".into(),
                cases: vec![
                    Case {
                        name: "determinism".into(),
                        failure: None,
                    },
                    Case {
                        name: "fairness".into(),
                        failure: Some("1 metric(s) regressed\na < b & \"c\"".into()),
                    },
                ],
                comparison: None,
                summary: String::new(),
                seconds: 0.25,
            }],
        };
        let x = outcome.junit();
        assert!(x.contains("<testsuites name=\"olsim check smoke\" tests=\"2\" failures=\"1\">"));
        assert!(x.contains(
            "<testsuite name=\"scenario smoke\" tests=\"2\" failures=\"1\" time=\"0.250\">"
        ));
        assert!(x.contains("<testcase classname=\"smoke.scenario.smoke\" name=\"determinism\"/>"));
        assert!(x.contains("<failure message=\"1 metric(s) regressed\">1 metric(s) regressed\na &lt; b &amp; &quot;c&quot;</failure>"));
        assert_eq!(x.matches("<testcase").count(), 2);
        assert!(!outcome.passed());
        assert!(outcome.render().contains("1 check(s) FAILED"));
    }
}
