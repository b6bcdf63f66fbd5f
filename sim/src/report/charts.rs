//! The report's charts as standalone SVG strings, drawn with plotters (text is left to the
//! browser, so no font files are needed).

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{HONEST, ResultSection};

const SIZE: (u32, u32) = (560, 360);

/// A chart: a title (also the figure caption) and its SVG.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Caption.
    pub title: &'static str,
    /// Standalone SVG document.
    pub svg: String,
}

/// Every chart of a report, in display order.
pub fn all(result: &ResultSection) -> Result<Vec<Chart>, String> {
    Ok(vec![
        Chart {
            title: "Lorenz curve of contributor rewards",
            svg: lorenz(result)?,
        },
        Chart {
            title: "Reward against ground-truth value, by contributor group",
            svg: reward_vs_truth(result)?,
        },
        Chart {
            title: "Attack return on capital by kind (kinds with no capital at risk left out)",
            svg: bars(
                "return on capital",
                &result
                    .attacks
                    .iter()
                    .filter_map(|a| Some((a.kind.clone(), a.roi?)))
                    .collect::<Vec<_>>(),
            )?,
        },
        Chart {
            title: "Fees and reward pools over epochs (OPEN)",
            svg: fees_over_epochs(result)?,
        },
        Chart {
            title: "Grant return by tier (fee USD per grant USD)",
            svg: bars(
                "fees per grant USD",
                &result
                    .grants
                    .iter()
                    .map(|g| (g.tier.clone(), g.roi))
                    .collect::<Vec<_>>(),
            )?,
        },
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
            .build_cartesian_2d(x, y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(result.fairness.truth.as_str())
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
    let (x, y) = bounds(series.iter().flat_map(|s| s.2.iter().copied()));
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
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

/// A bar per `(label, value)`; values may be negative.
fn bars(y_desc: &str, values: &[(String, f64)]) -> Result<String, String> {
    let lo = values.iter().map(|v| v.1).fold(0.0f64, f64::min);
    let hi = values.iter().map(|v| v.1).fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.1).max(1e-9);
    let n = values.len().max(1);
    render(|root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n).into_segmented(), (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_desc)
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => {
                    values.get(*i).map(|v| v.0.clone()).unwrap_or_default()
                }
                _ => String::new(),
            })
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, (_, v))| {
                let color = if *v >= 0.0 { BLUE } else { RED };
                Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    color.mix(0.7).filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Axis ranges covering `points`, padded, never empty.
pub(crate) fn bounds(
    points: impl Iterator<Item = (f64, f64)>,
) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
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
        let pad = ((hi - lo) * 0.05).max(1e-9);
        (lo - pad)..(hi + pad)
    };
    (range(x0, x1), range(y0, y1))
}
