//! Parameter sweeps: one base scenario run over a grid of overridden fields times seeds.
//!
//! A [`SweepSpec`] names a base scenario file, grid axes (dotted field paths of the scenario,
//! e.g. `tokenomics.slash_fraction`, each with a list of values) and seeds. Its points are
//! the grid's product times the seeds in a fixed order ([`SweepSpec::points`]): axes sorted
//! by path, the first axis varying slowest, seeds innermost. Every point's overrides are
//! applied to the base file's TOML and the result goes through the scenario loader, so an
//! override gets exactly the checks a file gets.
//!
//! [`run::run`] runs the points of one [`Shard`] (`i % count == index`) in parallel on local
//! threads: it writes a shard manifest first, then each point's report and point record as the
//! point finishes, and skips points already finished by an earlier run into the same folder;
//! [`merge::merge`] checks the point records of one or many shard folders and joins them into
//! one table (CSV, Markdown) with SVG charts and an HTML page. Reference: `docs/sweeps.md`.

pub mod cli;
pub mod merge;
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use alloy_primitives::keccak256;
use serde::Deserialize;
use toml::{Table, Value};

use crate::engine::EngineError;
use crate::frames::{Column, Scalar};
use crate::scenario::{Scenario, ScenarioError};

/// Why a sweep could not be set up, run or merged.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The base scenario file has problems (located, as `olsim validate` prints them).
    #[error("{0}")]
    Base(#[from] ScenarioError),
    /// The sweep file or a command-line flag is malformed.
    #[error("{0}")]
    Spec(String),
    /// An override path cannot be applied to the base scenario.
    #[error("override `{path}`: {message}")]
    Override {
        /// The field path as given.
        path: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A grid point's overridden scenario does not validate.
    #[error("sweep point {point} ({params}):\n{problems}")]
    Invalid {
        /// Index of the first point with this combination.
        point: usize,
        /// The point's overrides, `path = value, ...`.
        params: String,
        /// One `path: message` per problem.
        problems: String,
    },
    /// A point's run failed.
    #[error("sweep point {point} ({params}): {source}")]
    Engine {
        /// Point index.
        point: usize,
        /// The point's overrides and seed.
        params: String,
        /// The engine's error.
        source: Box<EngineError>,
    },
    /// A shard stopped at a failed point or a failed write; the points finished are kept.
    #[error(
        "{source}\nthe points finished so far are kept in {}; rerun the same command to resume",
        out.display()
    )]
    Stopped {
        /// Why it stopped.
        source: Box<SweepError>,
        /// The sweep's output folder.
        out: PathBuf,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Shard results cannot be merged.
    #[error("merge: {0}")]
    Merge(String),
}

impl From<crate::output::OutputError> for SweepError {
    fn from(e: crate::output::OutputError) -> Self {
        SweepError::Io {
            path: e.path,
            message: e.message,
        }
    }
}

impl SweepError {
    fn io(path: &Path, err: impl std::fmt::Display) -> Self {
        SweepError::Io {
            path: path.to_path_buf(),
            message: err.to_string(),
        }
    }
}

/// One grid axis: a scenario field path and the values it takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Dotted field path with `[i]` array indices, e.g. `datanets[0].contributors.count`.
    pub path: String,
    /// Values in sweep order (TOML values: numbers, strings, booleans, arrays, tables).
    pub values: Vec<Value>,
}

/// A sweep: base scenario, grid axes (sorted by path) and seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    /// Sweep name (default: the base scenario's `run.name`).
    pub name: String,
    /// The base scenario file.
    pub base: PathBuf,
    /// The base file parsed as TOML (overrides apply to it).
    base_toml: Table,
    /// The base scenario's seed (first of `seeds = N`).
    base_seed: u64,
    /// Grid axes, sorted by path.
    pub axes: Vec<Axis>,
    /// Seeds, in order.
    pub seeds: Vec<u64>,
}

/// The sweep file format (see `docs/sweeps.md`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SweepFile {
    name: Option<String>,
    base: PathBuf,
    seeds: Option<Seeds>,
    #[serde(default)]
    grid: BTreeMap<String, Vec<Value>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Seeds {
    Count(u64),
    List(Vec<u64>),
}

/// One point of a sweep: its overrides, its seed and the validated scenario.
#[derive(Clone, Debug)]
pub struct Point {
    /// Position in the sweep's point order, from 0.
    pub index: usize,
    /// `(path, value)` per axis, in axis order.
    pub params: Vec<(String, Value)>,
    /// Master seed of the run.
    pub seed: u64,
    /// The base scenario with the overrides and the seed applied.
    pub scenario: Scenario,
}

impl Point {
    /// `path = value, ..., seed N`, for messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .params
            .iter()
            .map(|(p, v)| format!("{p} = {}", label(v)))
            .collect();
        parts.push(format!("seed {}", self.seed));
        parts.join(", ")
    }
}

/// A value as a short label: strings without quotes, everything else as inline TOML.
pub fn label(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How an axis's values become a data column ([`crate::frames`]): integers, numbers (integers
/// and floats mixed), booleans, or else text (their [`label`]s). One type per axis, so every
/// point's table has the same columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisKind {
    /// Every value an integer.
    Integer,
    /// Every value a number, some floats.
    Number,
    /// Every value a boolean.
    Bool,
    /// Anything else.
    Text,
}

impl AxisKind {
    /// The one kind all of `values` fit.
    pub fn of<'v>(values: impl IntoIterator<Item = &'v Value>) -> Self {
        values
            .into_iter()
            .map(|v| match v {
                Value::Integer(_) => AxisKind::Integer,
                Value::Float(_) => AxisKind::Number,
                Value::Boolean(_) => AxisKind::Bool,
                _ => AxisKind::Text,
            })
            .reduce(|a, b| match (a, b) {
                _ if a == b => a,
                (AxisKind::Integer | AxisKind::Number, AxisKind::Integer | AxisKind::Number) => {
                    AxisKind::Number
                }
                _ => AxisKind::Text,
            })
            .unwrap_or(AxisKind::Text)
    }

    /// `value` as a cell of this kind.
    pub fn scalar(self, value: &Value) -> Scalar {
        match (self, value) {
            (AxisKind::Integer, Value::Integer(i)) => Scalar::I64(*i),
            (AxisKind::Number, Value::Integer(i)) => Scalar::F64(*i as f64),
            (AxisKind::Number, Value::Float(f)) => Scalar::F64(*f),
            (AxisKind::Bool, Value::Boolean(b)) => Scalar::Bool(*b),
            _ => Scalar::Text(label(value)),
        }
    }

    /// A column `name` of this kind whose cell is the value `get` gives.
    pub fn column<'a, T>(self, name: &str, get: impl Fn(&T) -> &Value + 'a) -> Column<'a, T> {
        match self {
            AxisKind::Integer => Column::i64(name, move |t| get(t).as_integer()),
            AxisKind::Number => Column::f64(name, move |t| match get(t) {
                Value::Integer(i) => Some(*i as f64),
                v => v.as_float(),
            }),
            AxisKind::Bool => Column::bool(name, move |t| get(t).as_bool()),
            AxisKind::Text => Column::text(name, move |t| label(get(t))),
        }
    }
}

impl SweepSpec {
    /// Reads a sweep file (a TOML file with a `base` key), or a scenario file, which becomes
    /// a sweep of that scenario alone (add axes with [`SweepSpec::set`]).
    pub fn load(path: &Path) -> Result<SweepSpec, SweepError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            SweepError::io(
                path,
                format!("cannot read the sweep file: {e}; check the path"),
            )
        })?;
        let table: Table = text
            .parse()
            .map_err(|e| SweepError::Spec(format!("{}: {e}", path.display())))?;
        if !table.contains_key("base") {
            return SweepSpec::of_scenario(path, None);
        }
        let file: SweepFile = toml::from_str(&text).map_err(|e| {
            SweepError::Spec(format!(
                "{}: {e}(a sweep file has `name`, `base`, `seeds` and `[grid]`; see docs/sweeps.md)",
                path.display()
            ))
        })?;
        let base = path.parent().unwrap_or(Path::new("")).join(&file.base);
        let mut spec = SweepSpec::of_scenario(&base, file.name)?;
        for (path, values) in file.grid {
            spec.add_axis(Axis { path, values })?;
        }
        if let Some(seeds) = file.seeds {
            spec.set_seeds(seeds)?;
        }
        Ok(spec)
    }

    /// A sweep of the scenario file at `base` alone: no axes, its own seed.
    pub fn of_scenario(base: &Path, name: Option<String>) -> Result<SweepSpec, SweepError> {
        let text = std::fs::read_to_string(base).map_err(|e| SweepError::io(base, e))?;
        let scenario = Scenario::parse(&base.display().to_string(), &text)?;
        let base_toml: Table = text
            .parse()
            .map_err(|e| SweepError::Spec(format!("{}: {e}", base.display())))?;
        Ok(SweepSpec {
            name: name.unwrap_or_else(|| scenario.run.name.clone()),
            base: base.to_path_buf(),
            base_toml,
            base_seed: scenario.run.seed,
            axes: Vec::new(),
            seeds: vec![scenario.run.seed],
        })
    }

    /// Adds (or replaces) an axis from a command-line `PATH=V1,V2,...`; each value is read
    /// as TOML (`0.2`, `true`, `[1, 2]`, `"push"`), a bare word as a string.
    pub fn set(&mut self, arg: &str) -> Result<(), SweepError> {
        let (path, values) = arg.split_once('=').ok_or_else(|| {
            SweepError::Spec(format!(
                "--set {arg}: expected PATH=V1,V2,... (e.g. tokenomics.slash_fraction=0.1,0.2)"
            ))
        })?;
        let values = split_top_level(values)
            .into_iter()
            .map(parse_value)
            .collect();
        self.add_axis(Axis {
            path: path.trim().to_string(),
            values,
        })
    }

    /// Sets the seeds from a command-line `N` (seeds base, base+1, ..., base+N-1) or a
    /// comma-separated list `S1,S2,...`.
    pub fn set_seeds_arg(&mut self, arg: &str) -> Result<(), SweepError> {
        let bad = |s: &str| {
            SweepError::Spec(format!(
                "--seeds {arg}: `{s}` is not a seed; expected a count N or a list S1,S2,..."
            ))
        };
        let seeds = if arg.contains(',') {
            let list = arg
                .split(',')
                .map(|s| s.trim().parse().map_err(|_| bad(s)))
                .collect::<Result<_, _>>()?;
            Seeds::List(list)
        } else {
            Seeds::Count(arg.trim().parse().map_err(|_| bad(arg))?)
        };
        self.set_seeds(seeds)
    }

    fn set_seeds(&mut self, seeds: Seeds) -> Result<(), SweepError> {
        let first = self.base_seed;
        let seeds: Vec<u64> = match seeds {
            Seeds::Count(0) => {
                return Err(SweepError::Spec(
                    "seeds: got 0; allowed: a count >= 1 or a non-empty list".into(),
                ));
            }
            Seeds::Count(n) => (0..n).map(|i| first.saturating_add(i)).collect(),
            Seeds::List(list) => list,
        };
        if seeds.is_empty() {
            return Err(SweepError::Spec(
                "seeds: the list is empty; allowed: a count >= 1 or a non-empty list".into(),
            ));
        }
        if let Some(s) = seeds.iter().find(|&&s| s > i64::MAX as u64) {
            return Err(SweepError::Spec(format!(
                "seeds: {s} is too large; allowed: 0 to 2^63-1"
            )));
        }
        let mut seen = seeds.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != seeds.len() {
            return Err(SweepError::Spec(
                "seeds: a seed appears twice; each seed once".into(),
            ));
        }
        self.seeds = seeds;
        Ok(())
    }

    fn add_axis(&mut self, axis: Axis) -> Result<(), SweepError> {
        let err = |message: &str| SweepError::Override {
            path: axis.path.clone(),
            message: message.into(),
        };
        if axis.path == "run.seed" {
            return Err(err(
                "the seed is swept with `seeds` (sweep file) or --seeds, not as a grid axis",
            ));
        }
        if axis.values.is_empty() {
            return Err(err("no values; give at least one"));
        }
        // Check the path's shape against the base now, so a typo fails before any run.
        set_path(
            &mut self.base_toml.clone(),
            &axis.path,
            axis.values[0].clone(),
        )?;
        self.axes.retain(|a| a.path != axis.path);
        self.axes.push(axis);
        self.axes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(())
    }

    /// Number of points: the product of the axes' lengths times the seeds.
    pub fn len(&self) -> usize {
        self.axes.iter().map(|a| a.values.len()).product::<usize>() * self.seeds.len()
    }

    /// Whether the sweep has no points (never true for a loaded spec).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Identity of the sweep: `keccak256` over the base file's content, the name, the axes
    /// and the seeds. Shards of one sweep share it; `merge` refuses mixed identities.
    pub fn id(&self) -> String {
        let axes: Vec<(&str, Vec<String>)> = self
            .axes
            .iter()
            .map(|a| {
                (
                    a.path.as_str(),
                    a.values.iter().map(ToString::to_string).collect(),
                )
            })
            .collect();
        let canonical = serde_json::json!({
            "name": self.name,
            "base": self.base_text(),
            "axes": axes,
            "seeds": self.seeds,
        });
        keccak256(canonical.to_string()).to_string()
    }

    /// `keccak256` of the base scenario's content (as parsed TOML, so comments and layout do
    /// not count); every point record carries it.
    pub fn base_digest(&self) -> String {
        keccak256(self.base_text()).to_string()
    }

    fn base_text(&self) -> String {
        toml::to_string(&self.base_toml).expect("a parsed table serialises")
    }

    /// Every point, validated, in sweep order. Each grid combination goes through the
    /// scenario loader once; the first combination that fails is the error.
    pub fn points(&self) -> Result<Vec<Point>, SweepError> {
        let combos: usize = self.axes.iter().map(|a| a.values.len()).product();
        let mut points = Vec::with_capacity(self.len());
        for combo in 0..combos {
            let params = self.combination(combo);
            let mut toml = self.base_toml.clone();
            for (path, value) in &params {
                set_path(&mut toml, path, value.clone())?;
            }
            let text = toml::to_string(&toml).expect("a TOML table serialises");
            let scenario = Scenario::parse(&self.base.display().to_string(), &text)
                .map_err(|e| self.invalid(combo, &params, &e))?;
            for &seed in &self.seeds {
                let mut scenario = scenario.clone();
                scenario.run.seed = seed;
                points.push(Point {
                    index: points.len(),
                    params: params.clone(),
                    seed,
                    scenario,
                });
            }
        }
        Ok(points)
    }

    /// Grid combination `combo` (first axis slowest).
    fn combination(&self, mut combo: usize) -> Vec<(String, Value)> {
        let mut params = vec![(String::new(), Value::Boolean(false)); self.axes.len()];
        for (slot, axis) in params.iter_mut().zip(&self.axes).rev() {
            let n = axis.values.len();
            *slot = (axis.path.clone(), axis.values[combo % n].clone());
            combo /= n;
        }
        params
    }

    fn invalid(&self, combo: usize, params: &[(String, Value)], err: &ScenarioError) -> SweepError {
        let describe: Vec<String> = params
            .iter()
            .map(|(p, v)| format!("{p} = {}", label(v)))
            .collect();
        let problems: Vec<String> = err
            .diagnostics()
            .iter()
            .map(|d| format!("  {}: {}", d.path, d.message))
            .collect();
        SweepError::Invalid {
            point: combo * self.seeds.len(),
            params: describe.join(", "),
            problems: problems.join("\n"),
        }
    }
}

/// Splits `text` at commas outside brackets, braces and quotes.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut quote, mut start) = (Vec::new(), 0i32, None, 0);
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '{') => depth += 1,
            (None, ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// A command-line value as TOML, or as a string when it is not TOML.
fn parse_value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// One step of a field path.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Parses `a.b[2].c` into steps.
fn parse_path(path: &str) -> Result<Vec<Step<'_>>, SweepError> {
    let bad = || SweepError::Override {
        path: path.into(),
        message: "not a field path; expected names joined by `.`, with `[i]` after an array \
                  name (e.g. `datanets[0].contributors.count`)"
            .into(),
    };
    let mut steps = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(bad());
        }
        steps.push(Step::Key(key));
        while !rest.is_empty() {
            let close = rest.find(']').ok_or_else(bad)?;
            let index = rest[1..close].parse().map_err(|_| bad())?;
            steps.push(Step::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(bad());
            }
        }
    }
    Ok(steps)
}

/// Sets the field at `path` of `root` to `value`, creating tables the base leaves out
/// (their fields take defaults). Whether the field exists and the value fits is left to the
/// scenario loader.
fn set_path(root: &mut Table, path: &str, value: Value) -> Result<(), SweepError> {
    let steps = parse_path(path)?;
    let mut node = Value::Table(std::mem::take(root));
    let result = set_in(&mut node, &steps, String::new(), value);
    if let Value::Table(table) = node {
        *root = table;
    }
    result.map_err(|(at, message)| SweepError::Override {
        path: path.into(),
        message: format!("{at}: {message}"),
    })
}

/// Walks `steps` down from `node` (reached by the path `walked`) and sets the last one.
fn set_in(
    node: &mut Value,
    steps: &[Step<'_>],
    mut walked: String,
    value: Value,
) -> Result<(), (String, String)> {
    let Some((step, rest)) = steps.split_first() else {
        *node = value;
        return Ok(());
    };
    let kind = node.type_str();
    match (step, node) {
        (Step::Key(key), Value::Table(table)) => {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(key);
            let child = table
                .entry((*key).to_string())
                .or_insert_with(|| Value::Table(Table::new()));
            set_in(child, rest, walked, value)
        }
        (Step::Index(index), Value::Array(items)) => {
            let len = items.len();
            walked.push_str(&format!("[{index}]"));
            match items.get_mut(*index) {
                Some(child) => set_in(child, rest, walked, value),
                None => Err((
                    walked,
                    format!(
                        "the base scenario has {len} entries here; allowed indices: 0 to {}",
                        len.saturating_sub(1)
                    ),
                )),
            }
        }
        (Step::Key(_), _) => Err((
            walked,
            format!("holds a value of type {kind} in the base scenario, not a table"),
        )),
        (Step::Index(_), _) => Err((
            walked,
            format!("holds a value of type {kind} in the base scenario, not an array"),
        )),
    }
}
