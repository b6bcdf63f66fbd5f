//! Comparing the deterministic results of two runs: the `result` sections of two reports (or of
//! a report and a committed baseline) are flattened into metrics addressed by path
//! (`fairness.gini`, `attacks[label_flip].roi`, `epochs[2].fees`) and every change is judged
//! against per-metric tolerances read from a small TOML file.
//!
//! Paths: object fields are joined with `.`; array elements are keyed by their `name`, `kind`,
//! `tier`, `stage` or `epoch` field when every element has a distinct one, by index otherwise.
//! Tolerances: the first `[[tolerance]]` rule whose `metric` glob (`*` matches any run of
//! characters) matches a path applies; a number passes when
//! `|current - baseline| <= abs + rel * |baseline|`; with no rule a metric must match exactly.
//! Text and booleans always match exactly unless the rule says `ignore = true`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;
use serde_json::Value;

use crate::report::REPORT_VERSION;

/// Fields that name an array element, tried in this order.
const ELEMENT_KEYS: [&str; 5] = ["name", "kind", "tier", "stage", "epoch"];

/// Why two documents could not be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// A file could not be read.
    #[error("{path}: cannot read the file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A report or baseline is not what olsim writes.
    #[error("{path}: {message}")]
    Document {
        /// The file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A tolerance file is malformed.
    #[error("{path}: {message}")]
    Tolerances {
        /// The file.
        path: PathBuf,
        /// What is wrong and what is allowed.
        message: String,
    },
}

/// The comparable part of a report or baseline file.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Scenario name, when the file says.
    pub scenario: Option<String>,
    /// Digest of the result section, when the file has one.
    pub digest: Option<String>,
    /// The `result` section.
    pub result: Value,
}

impl Document {
    /// Reads a report (`report.json`) or a baseline written by `olsim check --update-baseline`.
    pub fn load(path: &Path) -> Result<Self, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| CompareError::Document {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses the JSON of a report or baseline; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut value: Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(REPORT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "report format version {v}, but this olsim reads version {REPORT_VERSION}; \
                     rerun the scenario (or `olsim check --update-baseline`) with this olsim"
                ));
            }
            None => {
                return Err("no `version` field: not an olsim report or baseline \
                            (expected the report.json that `olsim run` writes)"
                    .into());
            }
        }
        let result = match value.get_mut("result") {
            Some(r @ Value::Object(_)) => r.take(),
            _ => return Err("no `result` object: not an olsim report or baseline".into()),
        };
        let text_field = |key: &str| -> Option<String> {
            let v = value.get(key)?;
            v.as_str()
                .or_else(|| v.get("name").and_then(Value::as_str))
                .map(str::to_owned)
        };
        Ok(Self {
            scenario: text_field("scenario"),
            digest: text_field("digest"),
            result,
        })
    }
}

/// One leaf value of a result section.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    /// A number.
    Number(f64),
    /// A string.
    Text(String),
    /// A boolean.
    Bool(bool),
    /// `null` (an absent optional value).
    Null,
}

impl fmt::Display for MetricValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricValue::Number(x) => write!(f, "{x}"),
            MetricValue::Text(s) => write!(f, "{s:?}"),
            MetricValue::Bool(b) => write!(f, "{b}"),
            MetricValue::Null => f.write_str("null"),
        }
    }
}

/// Flattens a JSON value into `(path, leaf)` pairs in document order (see the module docs for
/// the path syntax). Empty objects and arrays contribute nothing.
pub fn flatten(value: &Value) -> Vec<(String, MetricValue)> {
    let mut out = Vec::new();
    walk(String::new(), value, &mut out);
    out
}

fn walk(path: String, value: &Value, out: &mut Vec<(String, MetricValue)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(p, v, out);
            }
        }
        Value::Array(items) => {
            for (item, key) in items.iter().zip(element_keys(items)) {
                walk(format!("{path}[{key}]"), item, out);
            }
        }
        Value::Number(n) => out.push((path, MetricValue::Number(n.as_f64().unwrap_or(f64::NAN)))),
        Value::String(s) => out.push((path, MetricValue::Text(s.clone()))),
        Value::Bool(b) => out.push((path, MetricValue::Bool(*b))),
        Value::Null => out.push((path, MetricValue::Null)),
    }
}

/// Keys of array elements: a naming field when every element has a distinct one, else indices.
fn element_keys(items: &[Value]) -> Vec<String> {
    for field in ELEMENT_KEYS {
        let keys: Option<Vec<String>> = items
            .iter()
            .map(|item| match item.get(field)? {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        if let Some(keys) = keys {
            let mut sorted = keys.clone();
            sorted.sort();
            sorted.dedup();
            if sorted.len() == keys.len() && !keys.is_empty() {
                return keys;
            }
        }
    }
    (0..items.len()).map(|i| i.to_string()).collect()
}

/// One tolerance rule of a tolerance file or suite.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    /// Metric path glob; `*` matches any run of characters.
    pub metric: String,
    /// Absolute tolerance.
    #[serde(default)]
    pub abs: f64,
    /// Tolerance relative to the baseline value's magnitude.
    #[serde(default)]
    pub rel: f64,
    /// Leave the metric out of the verdict (still listed when it changes).
    #[serde(default)]
    pub ignore: bool,
}

impl Tolerance {
    /// Whether this rule applies to `path`.
    pub fn matches(&self, path: &str) -> bool {
        glob_match(self.metric.as_bytes(), path.as_bytes())
    }

    fn describe(&self) -> String {
        match (self.ignore, self.abs, self.rel) {
            (true, _, _) => "ignored".into(),
            (false, a, 0.0) => format!("±{a}"),
            (false, 0.0, r) => format!("±{}%", r * 100.0),
            (false, a, r) => format!("±{a} +{}%", r * 100.0),
        }
    }
}

/// `*` matches any run of bytes; everything else matches itself.
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
}

/// An ordered list of tolerance rules: the first that matches a metric applies.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerances {
    /// The rules, in file order.
    #[serde(default, rename = "tolerance")]
    pub rules: Vec<Tolerance>,
}

impl Tolerances {
    /// Reads a tolerance file (`[[tolerance]]` tables with `metric`, `abs`, `rel`, `ignore`).
    pub fn load(path: &Path) -> Result<Self, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompareError::Read {
            path: path.to_owned(),
            source,
        })?;
        let tolerances: Tolerances =
            toml::from_str(&text).map_err(|e| CompareError::Tolerances {
                path: path.to_owned(),
                message: format!(
                    "{e}(allowed: [[tolerance]] tables with metric, abs, rel, ignore)"
                ),
            })?;
        tolerances
            .validate()
            .map_err(|message| CompareError::Tolerances {
                path: path.to_owned(),
                message,
            })?;
        Ok(tolerances)
    }

    /// Checks every rule: a non-empty glob and finite, non-negative `abs` and `rel`.
    pub fn validate(&self) -> Result<(), String> {
        for (i, rule) in self.rules.iter().enumerate() {
            let n = i + 1;
            if rule.metric.is_empty() {
                return Err(format!(
                    "tolerance {n}: `metric` is empty; give a path glob such as \"fairness.*\""
                ));
            }
            for (name, v) in [("abs", rule.abs), ("rel", rule.rel)] {
                if !v.is_finite() || v < 0.0 {
                    return Err(format!(
                        "tolerance {n} (`{}`): `{name}` = {v}; it must be a finite number >= 0",
                        rule.metric
                    ));
                }
            }
        }
        Ok(())
    }

    /// The rule that applies to `path`, if any.
    pub fn rule_for(&self, path: &str) -> Option<&Tolerance> {
        self.rules.iter().find(|r| r.matches(path))
    }
}

/// What happened to one metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Identical.
    Same,
    /// Changed within its tolerance.
    Within,
    /// Changed beyond its tolerance: a regression.
    Changed,
    /// Only in the current run: a regression (the baseline is stale).
    Added,
    /// Only in the baseline: a regression.
    Removed,
    /// Changed, but its rule says `ignore = true`.
    Ignored,
}

impl Verdict {
    /// Whether this verdict fails a comparison.
    pub fn is_regression(self) -> bool {
        matches!(self, Verdict::Changed | Verdict::Added | Verdict::Removed)
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Same => "same",
            Verdict::Within => "within tolerance",
            Verdict::Changed => "CHANGED",
            Verdict::Added => "ADDED",
            Verdict::Removed => "REMOVED",
            Verdict::Ignored => "ignored",
        }
    }
}

/// One metric of a comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDiff {
    /// Path of the metric.
    pub metric: String,
    /// Baseline value (`None`: not in the baseline).
    pub baseline: Option<MetricValue>,
    /// Current value (`None`: not in the current run).
    pub current: Option<MetricValue>,
    /// The tolerance that applied, in words (`exact` without a rule).
    pub allowed: String,
    /// The verdict.
    pub verdict: Verdict,
}

impl MetricDiff {
    /// The metric group: the first path segment (`fairness`, `attacks`, `epochs`, ...).
    pub fn group(&self) -> &str {
        let end = self.metric.find(['.', '[']).unwrap_or(self.metric.len());
        &self.metric[..end]
    }
}

/// The metric-by-metric comparison of two result sections.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Every metric of either side: the baseline's in order, then those only in the current.
    pub metrics: Vec<MetricDiff>,
}

impl Comparison {
    /// Whether no metric regressed.
    pub fn passed(&self) -> bool {
        !self.metrics.iter().any(|m| m.verdict.is_regression())
    }

    /// The metrics that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &MetricDiff> {
        self.metrics.iter().filter(|m| m.verdict.is_regression())
    }

    /// The metrics whose values differ (regressed, within tolerance or ignored).
    pub fn changes(&self) -> impl Iterator<Item = &MetricDiff> {
        self.metrics.iter().filter(|m| m.verdict != Verdict::Same)
    }

    /// Metric groups in first-seen order, with their metrics.
    pub fn groups(&self) -> Vec<(&str, Vec<&MetricDiff>)> {
        let mut groups: Vec<(&str, Vec<&MetricDiff>)> = Vec::new();
        for m in &self.metrics {
            match groups.iter_mut().find(|(g, _)| *g == m.group()) {
                Some((_, list)) => list.push(m),
                None => groups.push((m.group(), vec![m])),
            }
        }
        groups
    }

    /// A terminal table of `rows`: metric, baseline, current, difference, allowed, verdict.
    pub fn table<'a>(rows: impl IntoIterator<Item = &'a MetricDiff>) -> String {
        let header = [
            "metric",
            "baseline",
            "current",
            "difference",
            "allowed",
            "verdict",
        ];
        let cell = |v: &Option<MetricValue>| v.as_ref().map_or("-".into(), |v| v.to_string());
        let lines: Vec<[String; 6]> = rows
            .into_iter()
            .map(|m| {
                [
                    m.metric.clone(),
                    cell(&m.baseline),
                    cell(&m.current),
                    difference(m.baseline.as_ref(), m.current.as_ref()),
                    m.allowed.clone(),
                    m.verdict.label().to_owned(),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for line in &lines {
            for (w, c) in widths.iter_mut().zip(line) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        let mut push_row = |cells: &[&str]| {
            let row: Vec<String> = cells
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            out.push_str(row.join("  ").trim_end());
            out.push('\n');
        };
        push_row(&header);
        for line in &lines {
            push_row(&line.each_ref().map(String::as_str));
        }
        out
    }
}

/// `current - baseline` (and its relative size) for two numbers; empty otherwise.
fn difference(baseline: Option<&MetricValue>, current: Option<&MetricValue>) -> String {
    match (baseline, current) {
        (Some(MetricValue::Number(b)), Some(MetricValue::Number(c))) => {
            let d = c - b;
            let shown = if d.abs() >= 1e-3 && d.abs() < 1e9 {
                // Six significant digits: enough to read, without the float noise.
                let digits = (5 - d.abs().log10().floor() as i32).max(0) as usize;
                let text = format!("{d:+.digits$}");
                if text.contains('.') {
                    text.trim_end_matches('0').trim_end_matches('.').to_owned()
                } else {
                    text
                }
            } else {
                format!("{d:+.3e}")
            };
            if *b == 0.0 {
                shown
            } else {
                format!("{shown} ({:+.3}%)", 100.0 * d / b.abs())
            }
        }
        _ => String::new(),
    }
}

/// Compares `current` with `baseline` metric by metric under `tolerances`.
pub fn compare(baseline: &Value, current: &Value, tolerances: &Tolerances) -> Comparison {
    let base = flatten(baseline);
    let mut now: BTreeMap<String, MetricValue> = flatten(current).into_iter().collect();
    let current_order: Vec<String> = flatten(current).into_iter().map(|(p, _)| p).collect();
    let mut metrics = Vec::with_capacity(base.len());
    for (path, b) in base {
        let c = now.remove(&path);
        metrics.push(judge(path, Some(b), c, tolerances));
    }
    for path in current_order {
        if let Some(c) = now.remove(&path) {
            metrics.push(judge(path, None, Some(c), tolerances));
        }
    }
    Comparison { metrics }
}

fn judge(
    metric: String,
    baseline: Option<MetricValue>,
    current: Option<MetricValue>,
    tolerances: &Tolerances,
) -> MetricDiff {
    let rule = tolerances.rule_for(&metric);
    let verdict = match (&baseline, &current) {
        (Some(b), Some(c)) if b == c => Verdict::Same,
        _ if rule.is_some_and(|r| r.ignore) => Verdict::Ignored,
        (Some(MetricValue::Number(b)), Some(MetricValue::Number(c))) => {
            let (abs, rel) = rule.map_or((0.0, 0.0), |r| (r.abs, r.rel));
            if (c - b).abs() <= abs + rel * b.abs() {
                Verdict::Within
            } else {
                Verdict::Changed
            }
        }
        (Some(_), Some(_)) => Verdict::Changed,
        (None, _) => Verdict::Added,
        (_, None) => Verdict::Removed,
    };
    MetricDiff {
        allowed: rule.map_or_else(|| "exact".into(), Tolerance::describe),
        metric,
        baseline,
        current,
        verdict,
    }
}

/// Arguments of `olsim compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The reference: a report.json, or a baseline written by `olsim check --update-baseline`.
    pub baseline: PathBuf,
    /// The report to judge against it.
    pub current: PathBuf,
    /// Tolerance file (TOML `[[tolerance]]` tables: metric, abs, rel, ignore). Without one,
    /// every metric must match exactly.
    #[arg(long)]
    pub tolerances: Option<PathBuf>,
    /// List every metric, not only the changed ones.
    #[arg(long)]
    pub all: bool,
    /// Exit 0 even when metrics regressed (to compare two designs rather than check one).
    #[arg(long)]
    pub no_fail: bool,
}

/// `olsim compare`: prints the changed metrics and a count per verdict; exits 1 on a
/// regression (unless `--no-fail`), 2 when an input cannot be read.
pub fn command(args: &CompareArgs) -> ExitCode {
    let loaded = (|| {
        let tolerances = match &args.tolerances {
            Some(path) => Tolerances::load(path)?,
            None => Tolerances::default(),
        };
        Ok::<_, CompareError>((
            Document::load(&args.baseline)?,
            Document::load(&args.current)?,
            tolerances,
        ))
    })();
    let (baseline, current, tolerances) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cmp = compare(&baseline.result, &current.result, &tolerances);
    let side = |d: &Document, path: &Path| {
        format!(
            "{} ({}, digest {})",
            path.display(),
            d.scenario.as_deref().unwrap_or("?"),
            d.digest.as_deref().unwrap_or("?")
        )
    };
    println!("baseline {}", side(&baseline, &args.baseline));
    println!("current  {}", side(&current, &args.current));
    let rows: Vec<&MetricDiff> = if args.all {
        cmp.metrics.iter().collect()
    } else {
        cmp.changes().collect()
    };
    if !rows.is_empty() {
        print!("\n{}", Comparison::table(rows));
    }
    let count = |v: Verdict| cmp.metrics.iter().filter(|m| m.verdict == v).count();
    println!(
        "\n{} metrics: {} same, {} within tolerance, {} ignored, {} regressed \
         ({} changed, {} added, {} removed)",
        cmp.metrics.len(),
        count(Verdict::Same),
        count(Verdict::Within),
        count(Verdict::Ignored),
        cmp.regressions().count(),
        count(Verdict::Changed),
        count(Verdict::Added),
        count(Verdict::Removed),
    );
    if cmp.passed() || args.no_fail {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(text: &str) -> Tolerances {
        let t: Tolerances = toml::from_str(text).unwrap();
        t.validate().unwrap();
        t
    }

    #[test]
    fn paths_name_array_elements_by_their_naming_field_or_index() {
        let v = json!({
            "attacks": [{"kind": "sybil", "roi": 1.5}, {"kind": "spam", "roi": -1}],
            "epochs": [{"epoch": 1, "fees": 2.0}],
            "lorenz": [[0.0, 0.0], [1.0, 1.0]],
            "chain": {"digest": "0xab", "ok": true, "none": null}
        });
        let paths: Vec<String> = flatten(&v).into_iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "attacks[sybil].kind",
                "attacks[sybil].roi",
                "attacks[spam].kind",
                "attacks[spam].roi",
                "chain.digest",
                "chain.none",
                "chain.ok",
                "epochs[1].epoch",
                "epochs[1].fees",
                "lorenz[0][0]",
                "lorenz[0][1]",
                "lorenz[1][0]",
                "lorenz[1][1]",
            ]
        );
    }

    #[test]
    fn duplicate_names_fall_back_to_indices() {
        let v = json!([{"name": "a"}, {"name": "a"}]);
        let paths: Vec<String> = flatten(&v).into_iter().map(|(p, _)| p).collect();
        assert_eq!(paths, ["[0].name", "[1].name"]);
    }

    #[test]
    fn exact_by_default_and_first_matching_rule_wins() {
        let tol = rules(
            "[[tolerance]]\nmetric = \"fairness.gini\"\nabs = 0.01\n\
             [[tolerance]]\nmetric = \"fairness.*\"\nrel = 0.1\n\
             [[tolerance]]\nmetric = \"chain.*\"\nignore = true\n",
        );
        let base = json!({"fairness": {"gini": 0.5, "honest_share": 0.9},
                          "economy": {"fees": 6.0}, "chain": {"digest": "0x1"}});
        let same = compare(&base, &base, &tol);
        assert!(same.passed() && same.changes().next().is_none());

        let cur = json!({"fairness": {"gini": 0.509, "honest_share": 0.98},
                         "economy": {"fees": 6.0000001}, "chain": {"digest": "0x2"}});
        let c = compare(&base, &cur, &tol);
        let verdict = |p: &str| c.metrics.iter().find(|m| m.metric == p).unwrap().verdict;
        assert_eq!(verdict("fairness.gini"), Verdict::Within);
        assert_eq!(verdict("fairness.honest_share"), Verdict::Within);
        assert_eq!(verdict("economy.fees"), Verdict::Changed, "no rule: exact");
        assert_eq!(verdict("chain.digest"), Verdict::Ignored);
        assert!(!c.passed());
        assert_eq!(c.regressions().count(), 1);

        // 0.52 is outside the first rule even though the second would allow it.
        let worse = json!({"fairness": {"gini": 0.52, "honest_share": 0.9},
                           "economy": {"fees": 6.0}, "chain": {"digest": "0x1"}});
        let c = compare(&base, &worse, &tol);
        assert_eq!(
            c.regressions()
                .map(|m| m.metric.as_str())
                .collect::<Vec<_>>(),
            ["fairness.gini"]
        );
    }

    #[test]
    fn added_removed_and_retyped_metrics_regress() {
        let base = json!({"a": 1, "b": "x"});
        let cur = json!({"b": 2, "c": true});
        let c = compare(&base, &cur, &Tolerances::default());
        let got: Vec<(&str, Verdict)> = c
            .metrics
            .iter()
            .map(|m| (m.metric.as_str(), m.verdict))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Verdict::Removed),
                ("b", Verdict::Changed),
                ("c", Verdict::Added)
            ]
        );
        let groups: Vec<&str> = c.groups().into_iter().map(|(g, _)| g).collect();
        assert_eq!(groups, ["a", "b", "c"]);
    }

    #[test]
    fn the_table_lists_values_difference_and_verdict() {
        let c = compare(
            &json!({"economy": {"fees": 4.0}}),
            &json!({"economy": {"fees": 5.0}}),
            &Tolerances::default(),
        );
        let table = Comparison::table(c.changes());
        let row = table.lines().nth(1).unwrap();
        for part in [
            "economy.fees",
            "4",
            "5",
            "+1 (+25.000%)",
            "exact",
            "CHANGED",
        ] {
            assert!(row.contains(part), "{row}");
        }
    }

    #[test]
    fn bad_tolerances_and_documents_are_clear_errors() {
        let t: Tolerances = toml::from_str("[[tolerance]]\nmetric = \"x\"\nabs = -1\n").unwrap();
        let err = t.validate().unwrap_err();
        assert!(err.contains("`abs` = -1") && err.contains(">= 0"), "{err}");
        assert!(
            toml::from_str::<Tolerances>("[[tolerance]]\nmetric = \"x\"\nbogus = 1\n").is_err()
        );

        let err = Document::parse("{\"result\": {}}").unwrap_err();
        assert!(err.contains("no `version`"), "{err}");
        let err = Document::parse("{\"version\": 99, \"result\": {}}").unwrap_err();
        assert!(err.contains("version 99"), "{err}");
        let doc = Document::parse(&format!(
            "{{\"version\": {REPORT_VERSION}, \"scenario\": {{\"name\": \"smoke\"}}, \"digest\": \"0x1\", \"result\": {{\"a\": 1}}}}"
        ))
        .unwrap();
        assert_eq!(doc.scenario.as_deref(), Some("smoke"));
        assert_eq!(doc.digest.as_deref(), Some("0x1"));
    }
}
