//! Joining shard results: the manifests of one or many shard folders become one table (one
//! row per point: parameter values, seed, digest, key metrics) written as CSV, Markdown and
//! Parquet, the points' contributors tables joined into one Parquet file,
//! SVG charts of each metric against each swept parameter (mean over the other points with
//! that value, bars from min to max), and an HTML page with both.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use toml::Value;

use super::run::{
    Manifest, PointRecord, SWEEP_ID_KEY, check_part, check_report, read_manifests, read_records,
};
use super::{AxisKind, SweepError, label, parse_value};
use crate::frames::{self, Column, Context};
use crate::output;
use crate::report::charts::{bounds, integer_ticks, real, render, whole};
use crate::report::html::{escape, strip_xml_declaration};
use crate::report::{AttackResult, REPORT_VERSION, Report};

/// How to merge.
#[derive(Clone, Debug)]
pub struct MergeOptions {
    /// Folder the table, charts and page go to.
    pub out: PathBuf,
    /// Merge even when some points of the sweep have no result (they are listed as missing).
    pub partial: bool,
}

/// A merged sweep.
#[derive(Clone, Debug)]
pub struct Merged {
    /// Sweep name.
    pub sweep: String,
    /// Sweep identity.
    pub id: String,
    /// Axis paths.
    pub axes: Vec<String>,
    /// Metric names, in column order (fixed metrics, then `roi:<kind>` and
    /// `slashed:<kind>` per attacker kind).
    pub metrics: Vec<String>,
    /// One row per point with a result, in point order.
    pub rows: Vec<Row>,
    /// Points of the sweep without a result.
    pub missing: Vec<usize>,
    /// Files written.
    pub files: Vec<PathBuf>,
}

/// One point's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Point index.
    pub index: usize,
    /// Axis values, in axis order.
    pub params: Vec<Value>,
    /// The run's scenario name.
    pub scenario: String,
    /// Master seed.
    pub seed: u64,
    /// The report's result digest.
    pub digest: String,
    /// Per metric of [`Merged::metrics`]; `None` where the run has no such figure.
    pub metrics: Vec<Option<f64>>,
}

/// A metric's column name and how to read it from a report.
type Metric = (&'static str, fn(&Report) -> Option<f64>);

/// A metric of each attacker kind, `<prefix>:<kind>`: its name prefix and how to read it
/// from the kind's result.
type KindMetric = (&'static str, fn(&AttackResult) -> Option<f64>);

/// The metrics of each attacker kind in a run: return on capital and stake slashed (OPEN).
const PER_KIND: [KindMetric; 2] = [("roi", |a| a.roi), ("slashed", |a| Some(a.slashed))];

/// The metrics every run has (`None` where a figure is undefined, docs/metrics.md);
/// `claims_failed` counts the scenario's `[[expect]]` claims that do not hold at the point
/// (`None` when it states none), so a sweep shows where a design goal stops holding.
const FIXED: [Metric; 13] = [
    ("gini", |r| r.result.fairness.gini),
    ("honest_share", |r| r.result.fairness.honest_share),
    ("spearman", |r| r.result.fairness.spearman_vs_truth),
    ("spearman_low", |r| {
        r.result.fairness.spearman_vs_truth_interval.map(|i| i[0])
    }),
    ("spearman_high", |r| {
        r.result.fairness.spearman_vs_truth_interval.map(|i| i[1])
    }),
    ("truth_reliability", |r| r.result.fairness.truth_reliability),
    ("honest_slash_rate", |r| r.result.fairness.honest_slash_rate),
    ("sybil_split_gain", |r| {
        r.result.attacks.iter().find_map(|a| a.split_gain)
    }),
    ("copycat_victim_loss", |r| {
        r.result.attacks.iter().find_map(|a| a.victim_loss)
    }),
    ("fees", |r| Some(r.result.economy.fees)),
    ("slashed", |r| Some(r.result.economy.slashed)),
    ("contributor_rewards", |r| {
        Some(r.result.economy.contributor_rewards)
    }),
    ("claims_failed", |r| {
        (!r.claims.is_empty()).then(|| r.claims.iter().filter(|c| !c.holds).count() as f64)
    }),
];

/// Merges the point records found in `dirs` (each holding shard manifests and `points/`) and
/// writes `sweep.csv`, `sweep.md`, `sweep.html`, `sweep.parquet`, `sweep-contributors.parquet`
/// and `charts/*.svg` into `options.out`.
/// Refuses results of different sweeps, point records that do not match their manifest or
/// their check digest, two results of one point that disagree, reports and contributors parts
/// that no longer match their record's digest, and (unless `partial`) a sweep with points
/// missing.
pub fn merge(dirs: &[PathBuf], options: &MergeOptions) -> Result<Merged, SweepError> {
    let mut manifests = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(SweepError::io(dir, "no such folder"));
        }
        manifests.extend(read_manifests(dir)?);
    }
    let Some((_, first)) = manifests.first() else {
        return Err(SweepError::Merge(format!(
            "no shard manifests (shard-*.json) in {}; run `olsim sweep` into them first",
            list(dirs.iter().map(|d| d.display().to_string()))
        )));
    };
    if manifests.iter().any(|(_, m)| m.id != first.id) {
        return Err(SweepError::Merge(format!(
            "the folders hold results of different sweeps; merge one sweep at a time:\n{}",
            manifests
                .iter()
                .map(|(p, m)| format!("  {}: sweep `{}`, id {}", p.display(), m.sweep, m.id))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    let points = union(dirs, first)?;
    let missing: Vec<usize> = (0..first.total)
        .filter(|i| !points.contains_key(i))
        .collect();
    if !missing.is_empty() && !options.partial {
        return Err(SweepError::Merge(format!(
            "{} of {} points of sweep `{}` have no result (points {}); run the missing shards \
             or rerun the sweep into the same folder to finish it (shards found: {}), or pass \
             --partial",
            missing.len(),
            first.total,
            first.sweep,
            list(missing.iter().map(ToString::to_string)),
            list(manifests.iter().map(|(_, m)| m.shard.file_name())),
        )));
    }
    let reports = points
        .values()
        .map(|(dir, record)| check_report(dir, record))
        .collect::<Result<Vec<_>, _>>()?;
    let parts = points
        .values()
        .map(|(dir, record)| check_part(dir, record))
        .collect::<Result<Vec<_>, _>>()?;
    let mut metrics: Vec<String> = FIXED.iter().map(|(n, _)| n.to_string()).collect();
    for (prefix, _) in PER_KIND {
        for report in &reports {
            for attack in &report.result.attacks {
                let name = format!("{prefix}:{}", attack.kind);
                if !metrics.contains(&name) {
                    metrics.push(name);
                }
            }
        }
    }
    let rows = points
        .values()
        .zip(&reports)
        .map(|((_, record), report)| row(record, report, &metrics))
        .collect();
    let mut merged = Merged {
        sweep: first.sweep.clone(),
        id: first.id.clone(),
        axes: first.axes.clone(),
        metrics,
        rows,
        missing,
        files: Vec::new(),
    };
    merged.files = write(&merged, &parts, &options.out)?;
    Ok(merged)
}

/// Every point record under `dirs`, by index, each checked against the sweep's manifest and
/// its own check digest; two results of one point must agree.
fn union(
    dirs: &[PathBuf],
    manifest: &Manifest,
) -> Result<BTreeMap<usize, (PathBuf, PointRecord)>, SweepError> {
    let mut points: BTreeMap<usize, (PathBuf, PointRecord)> = BTreeMap::new();
    for dir in dirs {
        for (path, record) in read_records(dir)? {
            verify(&path, &record, manifest)?;
            if let Some((other, seen)) = points.get(&record.index)
                && seen.digest != record.digest
            {
                return Err(SweepError::Merge(format!(
                    "point {} has two different results: digest {} in {} and {} in {}; the \
                     runs were not deterministic or the files were mixed up",
                    record.index,
                    seen.digest,
                    other.display(),
                    record.digest,
                    dir.display()
                )));
            }
            points.insert(record.index, (dir.clone(), record));
        }
    }
    Ok(points)
}

/// Checks a point record (read from `path`) against the sweep's manifest and its own check
/// digest, so an edited parameter, seed or digest cannot relabel a point.
fn verify(path: &Path, record: &PointRecord, manifest: &Manifest) -> Result<(), SweepError> {
    let name = format!("{:06}.point.json", record.index);
    let axes: Vec<&String> = record.params.iter().map(|(p, _)| p).collect();
    let problem = if record.sweep_id != manifest.id {
        Some(format!(
            "belongs to sweep id {}, not to this folder's sweep `{}` (id {})",
            record.sweep_id, manifest.sweep, manifest.id
        ))
    } else if record.base_digest != manifest.base_digest {
        Some(format!(
            "was run on base scenario {}, not on the sweep's {}",
            record.base_digest, manifest.base_digest
        ))
    } else if record.index >= manifest.total || path.file_name() != Some(name.as_ref()) {
        Some(format!(
            "its point index does not fit its file name or the sweep's {} points",
            manifest.total
        ))
    } else if !axes.iter().copied().eq(manifest.axes.iter()) {
        Some(format!(
            "its parameters are not the sweep's axes ({})",
            manifest.axes.join(", ")
        ))
    } else if record.check != record.expected_check() {
        Some(format!(
            "its parameters, seed or digests do not match its check digest {} (edited after \
             the run?)",
            record.check
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(SweepError::io(
            path,
            format!(
                "point {}: {problem}; delete this record and rerun the sweep into its folder to \
                 redo the point",
                record.index
            ),
        )),
        None => Ok(()),
    }
}

fn row(record: &PointRecord, report: &Report, metrics: &[String]) -> Row {
    let values = metrics
        .iter()
        .map(|name| match name.split_once(':') {
            Some((prefix, kind)) => {
                let attack = report.result.attacks.iter().find(|a| a.kind == kind)?;
                PER_KIND
                    .iter()
                    .find(|(p, _)| *p == prefix)
                    .and_then(|(_, f)| f(attack))
            }
            None => FIXED
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, f)| f(report)),
        })
        .collect();
    Row {
        index: record.index,
        params: record.params.iter().map(|(_, v)| parse_value(v)).collect(),
        scenario: report.scenario.name.clone(),
        seed: record.seed,
        digest: record.digest.clone(),
        metrics: values,
    }
}

/// `a, b, c` (the first ten, then a count).
fn list(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    let mut text = items
        .iter()
        .take(10)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > 10 {
        let _ = write!(text, " and {} more", items.len() - 10);
    }
    text
}

impl Merged {
    /// Column headers: `point`, the axis paths, `seed`, `digest`, the metrics.
    pub fn headers(&self) -> Vec<String> {
        let mut headers = vec!["point".to_string()];
        headers.extend(self.axes.iter().cloned());
        headers.extend(["seed".to_string(), "digest".to_string()]);
        headers.extend(self.metrics.iter().cloned());
        headers
    }

    /// The table's cells, one row per point; metrics through `number`, absent ones empty.
    fn cells(&self, number: fn(f64) -> String) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                let mut cells = vec![r.index.to_string()];
                cells.extend(r.params.iter().map(label));
                cells.extend([r.seed.to_string(), r.digest.clone()]);
                cells.extend(r.metrics.iter().map(|m| m.map(number).unwrap_or_default()));
                cells
            })
            .collect()
    }

    /// `olsim.sweep`, `olsim.sweep_id` and `olsim.report_version`: the merged tables'
    /// metadata.
    fn metadata(&self) -> Vec<(String, String)> {
        vec![
            ("olsim.sweep".into(), self.sweep.clone()),
            (SWEEP_ID_KEY.into(), self.id.clone()),
            ("olsim.report_version".into(), REPORT_VERSION.to_string()),
        ]
    }

    /// The table as Parquet (`sweep.parquet`): `point`, one typed column per axis,
    /// `scenario`, `seed`, `digest` and the metrics, full precision.
    pub fn parquet(&self) -> Result<Vec<u8>, frames::FrameError> {
        let mut columns = vec![Column::u64("point", |r: &&Row| r.index as u64)];
        for (a, axis) in self.axes.iter().enumerate() {
            let kind = AxisKind::of(self.rows.iter().map(|r| &r.params[a]));
            columns.push(kind.column(axis, move |r: &&Row| &r.params[a]));
        }
        columns.push(Column::text("scenario", |r: &&Row| r.scenario.clone()));
        columns.push(Column::u64("seed", |r: &&Row| r.seed));
        columns.push(Column::text("digest", |r: &&Row| r.digest.clone()));
        for (m, metric) in self.metrics.iter().enumerate() {
            columns.push(Column::f64(metric, move |r: &&Row| r.metrics[m]));
        }
        let context = Context {
            constants: Vec::new(),
            metadata: self.metadata(),
        };
        frames::parquet("sweep", &context, &columns, &self.rows)
    }

    /// The table as CSV (full precision).
    pub fn csv(&self) -> String {
        let mut out = String::new();
        for line in std::iter::once(self.headers()).chain(self.cells(|x| x.to_string())) {
            let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }

    /// A summary and the table as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = format!("# olsim sweep: {}\n\n{}\n\n", self.sweep, self.about());
        let headers = self.headers();
        let _ = writeln!(out, "| {} |", headers.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(headers.len()));
        for cells in self.cells(|x| format!("{x:.4}")) {
            let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out
    }

    fn about(&self) -> String {
        let mut about = format!(
            "Sweep id `{}`: {} points with results; axes: {}.",
            self.id,
            self.rows.len(),
            if self.axes.is_empty() {
                "none (seeds only)".to_string()
            } else {
                self.axes.join(", ")
            }
        );
        if !self.missing.is_empty() {
            let _ = write!(
                about,
                " Missing (merged with --partial): points {}.",
                list(self.missing.iter().map(ToString::to_string))
            );
        }
        about
    }

    /// Charts of each metric against each axis that takes more than one value:
    /// `(file stem, caption, SVG)`.
    pub fn charts(&self) -> Result<Vec<(String, String, String)>, SweepError> {
        let mut charts = Vec::new();
        for (a, axis) in self.axes.iter().enumerate() {
            let mut values: Vec<&Value> = Vec::new();
            for row in &self.rows {
                if !values.contains(&&row.params[a]) {
                    values.push(&row.params[a]);
                }
            }
            if values.len() < 2 {
                continue;
            }
            for (m, metric) in self.metrics.iter().enumerate() {
                let stats = spread(
                    &values,
                    self.rows.iter().map(|r| (&r.params[a], r.metrics[m])),
                );
                if stats.is_empty() {
                    continue;
                }
                let svg = axis_chart(axis, metric, &values, &stats).map_err(|e| {
                    SweepError::Merge(format!("drawing {metric} against {axis}: {e}"))
                })?;
                charts.push((
                    format!("{}--{}", file_stem(metric), file_stem(axis)),
                    format!(
                        "{metric} against {axis} (mean over seeds and other parameters; bars: min to max)"
                    ),
                    svg,
                ));
            }
        }
        Ok(charts)
    }

    /// The summary, the charts and the table as one self-contained HTML page.
    pub fn html(&self, charts: &[(String, String, String)]) -> String {
        let title = format!("olsim sweep: {}", self.sweep);
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{t}</title>\n\
             <style>body{{font-family:sans-serif;margin:2em;color:#222}}\
             table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px}}\
             th{{background:#f3f3f3}}figure{{display:inline-block;margin:0.5em}}\
             figcaption{{text-align:center;max-width:560px}}.wide{{overflow-x:auto}}</style>\
             </head><body>\n\
             <h1>{t}</h1><p>{}</p>\n",
            escape(&self.about()),
            t = escape(&title),
        );
        if !charts.is_empty() {
            out.push_str("<h2>Charts</h2>\n");
        }
        for (_, caption, svg) in charts {
            let _ = writeln!(
                out,
                "<figure>{}<figcaption>{}</figcaption></figure>",
                strip_xml_declaration(svg),
                escape(caption)
            );
        }
        out.push_str("<h2>Points</h2>\n<div class=\"wide\"><table>\n<tr>");
        for h in self.headers() {
            let _ = write!(out, "<th>{}</th>", escape(&h));
        }
        out.push_str("</tr>\n");
        for cells in self.cells(|x| format!("{x:.4}")) {
            let tds: String = cells
                .iter()
                .map(|c| format!("<td>{}</td>", escape(c)))
                .collect();
            let _ = writeln!(out, "<tr>{tds}</tr>");
        }
        out.push_str("</table></div>\n</body></html>\n");
        out
    }
}

/// Writes the table (CSV, Markdown and Parquet), the points' contributors tables joined
/// from their `parts`, charts and page; returns the files written. Every file is written in
/// full before any replaces an old one ([`output::write_files`]).
fn write(merged: &Merged, parts: &[PathBuf], out: &Path) -> Result<Vec<PathBuf>, SweepError> {
    let charts = merged.charts()?;
    let mut files = vec![
        (PathBuf::from("sweep.csv"), merged.csv()),
        (PathBuf::from("sweep.md"), merged.markdown()),
        (PathBuf::from("sweep.html"), merged.html(&charts)),
    ];
    for (stem, _, svg) in charts {
        files.push((Path::new("charts").join(format!("{stem}.svg")), svg));
    }
    let mut files: Vec<(PathBuf, Vec<u8>)> = files
        .into_iter()
        .map(|(path, text)| (path, text.into_bytes()))
        .collect();
    let frame_error = |e: frames::FrameError| SweepError::Merge(e.to_string());
    files.push((
        PathBuf::from("sweep.parquet"),
        merged.parquet().map_err(frame_error)?,
    ));
    if !parts.is_empty() {
        let table =
            frames::concat("sweep-contributors", &merged.metadata(), parts).map_err(frame_error)?;
        files.push((PathBuf::from("sweep-contributors.parquet"), table));
    }
    output::probe(out)?;
    output::write_files(out, &files)?;
    let written: Vec<PathBuf> = files.into_iter().map(|(p, _)| out.join(p)).collect();
    remove_stale_outputs(out, &written)?;
    Ok(written)
}

/// Removes what an earlier merge into `out` wrote and this one did not (a chart it no
/// longer draws, a contributors table when no point has one), so the folder holds one
/// merge's outputs.
fn remove_stale_outputs(out: &Path, written: &[PathBuf]) -> Result<(), SweepError> {
    let mut earlier = vec![out.join("sweep-contributors.parquet")];
    if let Ok(entries) = std::fs::read_dir(out.join("charts")) {
        earlier.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "svg")),
        );
    }
    for path in earlier {
        if path.is_file() && !written.contains(&path) {
            std::fs::remove_file(&path).map_err(|e| SweepError::io(&path, e))?;
        }
    }
    Ok(())
}

/// Per axis value (in `values` order) with any figure: `(value position, mean, min, max)`.
fn spread<'a>(
    values: &[&Value],
    points: impl Iterator<Item = (&'a Value, Option<f64>)>,
) -> Vec<(usize, f64, f64, f64)> {
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); values.len()];
    for (value, metric) in points {
        if let (Some(i), Some(m)) = (values.iter().position(|v| *v == value), metric) {
            groups[i].push(m);
        }
    }
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| !g.is_empty())
        .map(|(i, g)| {
            let mean = g.iter().sum::<f64>() / g.len() as f64;
            let min = g.iter().copied().fold(f64::INFINITY, f64::min);
            let max = g.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (i, mean, min, max)
        })
        .collect()
}

/// A metric against an axis: numeric values on a numeric x axis, others evenly spaced with
/// their labels.
fn axis_chart(
    axis: &str,
    metric: &str,
    values: &[&Value],
    stats: &[(usize, f64, f64, f64)],
) -> Result<String, String> {
    let numeric: Option<Vec<f64>> = values
        .iter()
        .map(|v| match v {
            Value::Integer(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        })
        .collect();
    let xs: Vec<f64> = numeric
        .clone()
        .unwrap_or_else(|| (0..values.len()).map(|i| i as f64).collect());
    let labels: Vec<String> = values.iter().map(|v| label(v)).collect();
    let points: Vec<(f64, f64, f64, f64)> = stats
        .iter()
        .map(|&(i, mean, min, max)| (xs[i], mean, min, max))
        .collect();
    let (x, y) = bounds(points.iter().flat_map(|p| [(p.0, p.2), (p.0, p.3)]));
    let categorical = |x: &f64| labels.get(x.round() as usize).cloned().unwrap_or_default();
    // Whole-number ticks for integer and categorical axes (value positions).
    let integer = values.iter().all(|v| !matches!(v, Value::Float(_)));
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(|e| e.to_string())?;
        let (real_x, real_y) = (real(&x), real(&y));
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(axis).y_desc(metric).y_label_formatter(&real_y);
        if integer {
            mesh.x_labels(integer_ticks(&x));
        }
        if numeric.is_none() {
            mesh.x_label_formatter(&categorical);
        } else if integer {
            mesh.x_label_formatter(&whole);
        } else {
            mesh.x_label_formatter(&real_x);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.0, p.1)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points.iter().map(|p| {
                    ErrorBar::new_vertical(p.0, p.2, p.1, p.3, BLUE.mix(0.6).filled(), 10)
                }),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new((p.0, p.1), 3, BLUE.filled())),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A name usable in a file name: letters, digits, `-` and `_`; anything else becomes `_`.
fn file_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
