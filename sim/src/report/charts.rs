//! The report's charts as standalone SVG strings, drawn with plotters (text is left to the
//! browser, so no font files are needed).

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{HONEST, ResultSection};

const SIZE: (u32, u32) = (560, 360);

/// A chart: a title (also the figure caption) and what it shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Caption.
    pub title: &'static str,
    /// The drawing, or why this run has nothing to draw.
    pub figure: Figure,
}

/// What a chart shows.
#[derive(Clone, Debug, PartialEq)]
pub enum Figure {
    /// A standalone SVG document.
    Svg(String),
    /// No data for the chart in this run, and why (a phrase shown in its place).
    Absent(&'static str),
}

/// Every chart of a report, in display order; a chart the run has no data for is
/// [`Figure::Absent`] rather than empty axes.
pub fn all(result: &ResultSection) -> Result<Vec<Chart>, String> {
    let roi: Vec<(String, f64)> = result
        .attacks
        .iter()
        .filter_map(|a| Some((a.kind.clone(), a.roi?)))
        .collect();
    let grants: Vec<(String, f64)> = result
        .grants
        .iter()
        .map(|g| (g.tier.clone(), g.roi))
        .collect();
    let chart = |title, figure| Chart { title, figure };
    Ok(vec![
        chart(
            "Lorenz curve of contributor rewards",
            match result.fairness.gini {
                None => Figure::Absent("no contributor rewards in this run (Gini undefined)"),
                Some(_) => Figure::Svg(lorenz(result)?),
            },
        ),
        chart(
            "Reward against ground-truth value, by contributor group",
            match result.contributors.iter().any(|c| c.truth.is_some()) {
                false => Figure::Absent("no contributor has a ground-truth value in this run"),
                true => Figure::Svg(reward_vs_truth(result)?),
            },
        ),
        chart(
            "Attack return on capital by kind (kinds with no capital at risk left out)",
            if result.attacks.is_empty() {
                Figure::Absent("no attackers in this run")
            } else if roi.is_empty() {
                Figure::Absent("no attacker kind put capital at risk in this run")
            } else {
                Figure::Svg(bars("return on capital", &roi)?)
            },
        ),
        chart(
            "Fees and reward pools over epochs (OPEN)",
            match result.epochs.is_empty() {
                true => Figure::Absent("no epochs in this run"),
                false => Figure::Svg(fees_over_epochs(result)?),
            },
        ),
        chart(
            "Grant return by tier (fee USD per grant USD)",
            match grants.is_empty() {
                true => Figure::Absent("no grants in this run"),
                false => Figure::Svg(bars("fees per grant USD", &grants)?),
            },
        ),
    ])
}

/// Draws into an SVG string; any plotters error becomes a message.
pub(crate) fn render(
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

fn lorenz(result: &ResultSection) -> Result<String, String> {
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("share of contributors (poorest first)")
            .y_desc("share of rewards")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.mix(0.3)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                result.fairness.lorenz.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Colours of the honest groups in the reward-against-truth chart, in order.
const GROUP_COLOURS: [RGBColor; 6] = [
    BLUE,
    RGBColor(0, 150, 80),
    RGBColor(230, 140, 0),
    RGBColor(130, 60, 180),
    RGBColor(0, 160, 190),
    RGBColor(120, 120, 120),
];

/// Colours of the attacker kinds in that chart, in order (reds).
const ATTACKER_COLOURS: [RGBColor; 3] = [RED, RGBColor(200, 0, 120), RGBColor(120, 0, 0)];

/// Each contributor with a truth value as a point, one colour per honest group (by name)
/// and reds for attacker kinds.
fn reward_vs_truth(result: &ResultSection) -> Result<String, String> {
    let points: Vec<(f64, f64, String, bool)> = result
        .contributors
        .iter()
        .filter_map(|c| Some((c.truth?, c.rewards, c.group_label(), c.kind == HONEST)))
        .collect();
    let mut labels: Vec<(&str, bool)> = Vec::new();
    for p in &points {
        if !labels.iter().any(|l| l.0 == p.2) {
            labels.push((p.2.as_str(), p.3));
        }
    }
    let (x, y) = bounds(points.iter().map(|p| (p.0, p.1)));
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_label_formatter(&real(&x))
            .y_label_formatter(&real(&y))
            // The truth's full description (often longer than the axis) is in the
            // Fairness table.
            .x_desc("ground-truth value (its definition: Fairness table)")
            .y_desc("rewards (OPEN)")
            .draw()
            .map_err(|e| e.to_string())?;
        let (mut honest_seen, mut attackers_seen) = (0, 0);
        for (label, honest) in labels {
            let (palette, seen): (&[RGBColor], _) = match honest {
                true => (&GROUP_COLOURS, &mut honest_seen),
                false => (&ATTACKER_COLOURS, &mut attackers_seen),
            };
            let colour = palette[*seen % palette.len()];
            *seen += 1;
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| p.2 == label)
                        .map(|p| Circle::new((p.0, p.1), 3, colour.filled())),
                )
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| Circle::new((x, y), 3, colour.filled()));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A named, coloured line.
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

fn fees_over_epochs(result: &ResultSection) -> Result<String, String> {
    let series: [Series; 3] = [
        (
            "fees",
            BLUE,
            result
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.fees))
                .collect(),
        ),
        (
            "contributor pool",
            GREEN,
            result
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.contributor_pool))
                .collect(),
        ),
        (
            "treasury",
            MAGENTA,
            result
                .epochs
                .iter()
                .map(|e| (e.epoch as f64, e.treasury))
                .collect(),
        ),
    ];
    let (_, y) = bounds(series.iter().flat_map(|s| s.2.iter().copied()));
    let first = result.epochs.first().map_or(0, |e| e.epoch) as f64;
    let last = result.epochs.last().map_or(0, |e| e.epoch) as f64;
    let x = first..last.max(first + 1.0);
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x.clone(), y.clone())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_labels(integer_ticks(&x))
            .x_label_formatter(&whole)
            .y_label_formatter(&real(&y))
            .x_desc("epoch")
            .y_desc("OPEN")
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, points) in series {
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A horizontal bar per `(label, value)`, first at the top, each label left of its bar (so
/// long labels never collide); values may be negative.
fn bars(x_desc: &str, values: &[(String, f64)]) -> Result<String, String> {
    let (x, _) = bounds(values.iter().map(|v| (v.1, 0.0)).chain([(0.0, 0.0)]));
    let n = values.len() as f64;
    let widest = values
        .iter()
        .map(|v| v.0.chars().count())
        .max()
        .unwrap_or(0);
    let label_area = (widest as u32 * BAR_LABEL_CHAR_WIDTH + 16).min(SIZE.0 / 2);
    let style = TextStyle::from(("sans-serif", BAR_LABEL_SIZE).into_font())
        .pos(Pos::new(HPos::Right, VPos::Center));
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(label_area)
            .build_cartesian_2d(x.clone(), 0f64..n)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&real(&x))
            .x_desc(x_desc)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, (_, v))| {
                let color = if *v >= 0.0 { BLUE } else { RED };
                let top = n - i as f64;
                Rectangle::new([(0.0, top - 0.2), (*v, top - 0.8)], color.mix(0.7).filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new([(0.0, 0.0), (0.0, n)], BLACK))
            .map_err(|e| e.to_string())?;
        for (i, (label, _)) in values.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(x.start, n - i as f64 - 0.5));
            root.draw(&Text::new(label.as_str(), (px - 6, py), &style))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Font size of bar labels.
const BAR_LABEL_SIZE: f64 = 10.0;
/// Width allowed per character of a bar label when sizing the label area (generous for
/// sans-serif at [`BAR_LABEL_SIZE`]).
const BAR_LABEL_CHAR_WIDTH: u32 = 7;

/// How many ticks to ask plotters for on a whole-number axis over `range` (epochs, counts,
/// category positions): one per whole number in it, at most eleven. Asked for no more ticks
/// than there are whole numbers, plotters steps by 1, 2, 5, 10, ... and so lands on whole
/// numbers only.
pub(crate) fn integer_ticks(range: &Range<f64>) -> usize {
    (range.end.floor() - range.start.ceil() + 1.0).clamp(1.0, 11.0) as usize
}

/// Tick labels of a real-valued axis over `range`: plotters' own, except that a tick that is
/// zero but for rounding (within a millionth of the range) reads `0.0`, not `-0.0`.
pub(crate) fn real(range: &Range<f64>) -> impl Fn(&f64) -> String {
    let zero = (range.end - range.start).abs() * 1e-6;
    move |v| RangedCoordf64::format(if v.abs() <= zero { &0.0 } else { v })
}

/// A tick label of a whole-number axis.
pub(crate) fn whole(x: &f64) -> String {
    format!("{x:.0}")
}

/// Axis ranges covering `points`, padded, never empty.
pub(crate) fn bounds(points: impl Iterator<Item = (f64, f64)>) -> (Range<f64>, Range<f64>) {
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let range = |lo: f64, hi: f64| {
        if lo > hi {
            return 0.0..1.0;
        }
        // A constant (or all but constant) value gets a range around it, so the ticks
        // differ: 10% of it each way, or -1 to 1 around zero.
        let pad = if hi - lo > 1e-6 * lo.abs().max(hi.abs()) {
            (hi - lo) * 0.05
        } else if lo != 0.0 {
            lo.abs() * 0.1
        } else {
            1.0
        };
        (lo - pad)..(hi + pad)
    };
    (range(x0, x1), range(y0, y1))
}
