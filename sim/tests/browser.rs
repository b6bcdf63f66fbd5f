//! The HTML reports opened in a real browser: headless Chromium (installed by
//! `scripts/setup-browser`) lays out `report.html` of runs with and without attackers and
//! `sweep.html` of a small sweep, and a script injected into a copy of each page measures
//! what a reader would see (tests/browser/check.js): charts with no data drawn, labels that
//! overlap, repeat along an axis, are empty, read `-0.0` or lie outside their chart,
//! fractional ticks on integer axes, and tables or a page wider than the window.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use olsim::engine::{self, RunOptions};
use olsim::report::{Report, html};
use olsim::scenario::Scenario;
use olsim::sweep::SweepSpec;
use olsim::sweep::merge::{self, MergeOptions};
use olsim::sweep::run::{self, Shard, SweepOptions};

/// Where `scripts/setup-browser` installs Debian's chromium.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The window every page is laid out in.
const WINDOW: (u32, u32) = (1280, 900);
/// The measuring script.
const CHECK_JS: &str = include_str!("browser/check.js");
/// Longest one Chromium run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(60);

/// What check.js found on a page.
#[derive(Debug, serde::Deserialize)]
struct Verdict {
    charts: usize,
    tables: usize,
    page_width: u32,
    viewport: u32,
    problems: Vec<String>,
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("browser-tests")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> &'static str {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: the browser tests need Debian's chromium; run \
         scripts/setup-browser (as root) to install it"
    );
    CHROMIUM
}

/// Runs headless Chromium (flags it needs as root on a closed network) with a fresh
/// profile in `dir` on `args`; returns its stdout (kept in files, so a large page cannot
/// fill a pipe and stall the browser).
fn browse(dir: &Path, args: &[String]) -> String {
    let profile = dir.join("chromium-profile");
    let _ = std::fs::remove_dir_all(&profile);
    let (stdout, stderr) = (dir.join("chromium.out"), dir.join("chromium.err"));
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {CHROMIUM}: {e}; run scripts/setup-browser"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{CHROMIUM} {args:?} ran past {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "{CHROMIUM} {args:?} failed ({status}): {}",
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    std::fs::read_to_string(&stdout).unwrap()
}

/// Opens `page` (an HTML file) in the browser with check.js injected; `integer_axes` are
/// the axis titles whose ticks must be whole numbers.
fn inspect(page: &Path, integer_axes: &[&str]) -> Verdict {
    let dir = page.parent().unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    let script = format!(
        "<script>window.OLSIM_INTEGER_AXES = {};</script><script>{CHECK_JS}</script>",
        serde_json::to_string(integer_axes).unwrap()
    );
    let at = html
        .rfind("</body>")
        .unwrap_or_else(|| panic!("{} has no </body>", page.display()));
    let probe = dir.join("browser-probe.html");
    std::fs::write(&probe, format!("{}{script}{}", &html[..at], &html[at..])).unwrap();
    let dom = browse(
        dir,
        &[
            format!("--window-size={},{}", WINDOW.0, WINDOW.1),
            "--virtual-time-budget=5000".into(),
            "--dump-dom".into(),
            format!("file://{}", probe.display()),
        ],
    );
    let start = dom.rfind("<pre id=\"olsim-verdict\">").unwrap_or_else(|| {
        panic!(
            "no verdict in the DOM of {} (did check.js fail?):\n{dom}",
            probe.display()
        )
    }) + "<pre id=\"olsim-verdict\">".len();
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&");
    let verdict: Verdict = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(verdict.viewport, WINDOW.0, "the window is as wide as asked");
    verdict
}

/// Asserts that `page` shows no problem and has `charts` charts.
fn assert_looks_right(page: &Path, charts: usize, integer_axes: &[&str]) -> Verdict {
    let verdict = inspect(page, integer_axes);
    assert!(
        verdict.problems.is_empty(),
        "{} in a {}px window:\n  {}",
        page.display(),
        WINDOW.0,
        verdict.problems.join("\n  ")
    );
    assert_eq!(verdict.charts, charts, "charts on {}", page.display());
    assert!(verdict.tables > 0 && verdict.page_width <= WINDOW.0);
    verdict
}

/// Runs `scenario` and writes its HTML report into a scratch folder named after it.
fn report_page(scenario: &Scenario) -> (Report, PathBuf) {
    let report = engine::run(scenario, &RunOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let page = scratch(&scenario.run.name).join("report.html");
    std::fs::write(&page, html::render(&report).unwrap()).unwrap();
    (report, page)
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(name)
}

/// The smoke scenario's Datanet, model and demand under another name, followed by `rest`.
fn small(name: &str, contributors: u32, epochs: u32, rest: &str) -> Scenario {
    let text = format!(
        r#"
[run]
name = "{name}"
description = "browser test"
seed = 7
epochs = {epochs}

[tokenomics]
review_quorum = 2

[[datanets]]
name = "finance-signals"
domain = "finance"
task = "classification"

[datanets.contributors]
count = {contributors}
records = [20, 40]
documents = [2, 4]

[datanets.reviewers]
count = 3
accuracy = 0.95

[[models]]
name = "price-direction"
kind = "classifier"
datanets = ["finance-signals"]
price = 0.01
hidden = [16]

[models.lora]
rank = 2
alpha = 4.0

[models.training]
epochs = 3
batch_size = 16

[inference]
calls_per_epoch = 200
users = 4
calls_per_payment = 50
{rest}"#
    );
    Scenario::parse(&format!("{name}.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_checks_catch_what_a_reader_would_see() {
    // A hand-made page with one of each fault: the checks must name every one.
    let dir = scratch("faulty");
    let text = |x: u32, y: u32, anchor: &str, s: &str| {
        format!(r#"<text x="{x}" y="{y}" text-anchor="{anchor}" font-size="12">{s}</text>"#)
    };
    let chart = |body: String| {
        format!(
            r#"<figure><svg width="200" height="100" viewBox="0 0 200 100">{body}</svg></figure>"#
        )
    };
    let line = r##"<polyline fill="none" stroke="#0000FF" points="10,10 90,90"/>"##;
    let page = format!(
        "<!DOCTYPE html><html><body><h2>Wide</h2><table><tr><td style=\"min-width:2000px\">x</td></tr></table>{}{}{}{}</body></html>",
        chart(format!(
            "{line}{}{}{}",
            text(40, 90, "middle", "attribution_gaming"),
            text(60, 90, "middle", "colluding_reviewers"),
            text(190, 50, "start", "outside")
        )),
        chart(format!(
            "{line}{}{}{}",
            text(30, 20, "end", "0.0"),
            text(30, 40, "end", "0.0"),
            text(30, 60, "end", "-0.0")
        )),
        chart(format!(
            "{line}{}{}{}",
            text(100, 95, "middle", "epoch"),
            text(40, 80, "middle", "0.5"),
            text(80, 80, "middle", "1.0")
        )),
        chart(text(40, 40, "middle", "")),
    );
    let path = dir.join("faulty.html");
    std::fs::write(&path, page).unwrap();
    let verdict = inspect(&path, &["epoch"]);
    let all = verdict.problems.join("\n");
    for expected in [
        "the page is",
        "table \"Wide\" ends at",
        "labels \"attribution_gaming\" and \"colluding_reviewers\" overlap",
        "text \"outside\" lies outside its chart",
        "tick label \"0.0\" repeated on the y axis",
        "tick label \"-0.0\" (negative zero) on the y axis",
        "non-integer ticks 0.5, 1.0 on the \"epoch\" axis",
        "chart 4 (\"Wide\"): an empty label",
        "chart 4 (\"Wide\"): no data drawn",
    ] {
        assert!(all.contains(expected), "missing `{expected}` in:\n{all}");
    }
    assert_eq!((verdict.charts, verdict.tables), (4, 1));
}

#[test]
fn smoke_report_looks_right_in_a_browser() {
    let s = Scenario::load(&shipped("smoke.toml")).unwrap_or_else(|e| panic!("{e}"));
    let (report, page) = report_page(&s);
    assert!(report.result.grants.is_empty(), "smoke has no grants");
    // Lorenz, reward against truth, attack return and fees over epochs; no grant chart.
    assert_looks_right(&page, 4, &["epoch"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("no grants in this run"),
        "the missing chart is explained"
    );
}

#[test]
fn report_without_attackers_or_grants_draws_no_empty_charts() {
    let (report, page) = report_page(&small("quiet", 7, 3, ""));
    assert!(report.result.attacks.is_empty() && report.result.grants.is_empty());
    assert!(
        report.result.economy.contributor_rewards > 0.0,
        "rewards are paid, so the fairness charts have data"
    );
    assert_looks_right(&page, 3, &["epoch"]);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("no attackers in this run") && html.contains("no grants in this run"));
    assert!(
        !html.contains(">attacker<"),
        "no legend entry for absent attackers"
    );
}

#[test]
fn report_with_several_attacker_kinds_has_readable_charts() {
    let attackers = r#"
[[attackers]]
kind = "label_flip"
datanet = "finance-signals"
count = 1
rate = 0.8

[[attackers]]
kind = "attribution_gaming"
datanet = "finance-signals"
count = 2
start_epoch = 2
rate = 0.5

[[attackers]]
kind = "colluding_reviewers"
datanet = "finance-signals"
count = 2
rate = 0.5

[[attackers]]
kind = "sybil"
datanet = "finance-signals"
count = 1
identities = 4

[[attackers]]
kind = "spammer"
datanet = "finance-signals"
count = 1

[[attackers]]
kind = "copycat"
datanet = "finance-signals"
count = 1

[[attackers]]
kind = "backdoor"
datanet = "finance-signals"
count = 1
rate = 0.3
"#;
    let (report, page) = report_page(&small("attacks", 8, 4, attackers));
    let with_roi = report.result.attacks.iter().filter(|a| a.roi.is_some());
    assert!(with_roi.count() >= 6, "{:?}", report.result.attacks);
    assert_looks_right(&page, 4, &["epoch"]);
    // A picture to look at: target/tmp/browser-tests/attacks/report.png.
    let png = page.with_file_name("report.png");
    browse(
        page.parent().unwrap(),
        &[
            format!("--window-size={},2400", WINDOW.0),
            format!("--screenshot={}", png.display()),
            format!("file://{}", page.display()),
        ],
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000);
}

#[test]
fn sweep_page_looks_right_in_a_browser() {
    let dir = scratch("sweep");
    let mut spec = SweepSpec::load(&shipped("smoke.toml")).unwrap();
    spec.set("run.epochs=2,3").unwrap();
    spec.set("tokenomics.slash_fraction=0.1,0.4").unwrap();
    spec.set_seeds_arg("1").unwrap();
    let options = SweepOptions {
        shard: Shard::ALL,
        jobs: 2,
        out: dir.join("points"),
        progress: false,
    };
    run::run(&spec, &options).unwrap_or_else(|e| panic!("{e}"));
    let merged = merge::merge(
        &[dir.join("points")],
        &MergeOptions {
            out: dir.clone(),
            partial: false,
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // The case that once repeated one tick label: a metric equal at every point.
    let constant = (0..merged.metrics.len()).find(|&m| {
        let first = merged.rows[0].metrics[m];
        first.is_some() && merged.rows.iter().all(|r| r.metrics[m] == first)
    });
    assert!(constant.is_some(), "a metric is constant across the points");
    let charts = merged.charts().unwrap().len();
    assert!(charts > 10);
    assert_looks_right(&dir.join("sweep.html"), charts, &["run.epochs"]);
    assert!(merged.metrics.iter().any(|m| m == "slashed"));
}
