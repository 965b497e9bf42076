//! The report's two charts as inline SVG, drawn with plotters' SVG backend: a strip plot of
//! one finding's A and B samples, and a metric's per-commit medians across history.
//!
//! plotters lays out axes, ticks and labels and writes the SVG elements; nothing here writes
//! SVG by hand. Text uses plotters' built-in size estimate (no font files), which is what an
//! SVG viewer needs since it renders the text itself.

use plotters::prelude::*;

use crate::compare::trend::{StepKind, Trend};

const A_COLOR: RGBColor = RGBColor(31, 119, 180);
const B_COLOR: RGBColor = RGBColor(214, 39, 40);

/// A plotting failure as text (plotters' error types borrow the backend).
fn err(e: impl std::fmt::Display) -> String {
    format!("plotting failed: {e}")
}

/// An x range that holds every value, widened when all values are equal.
fn value_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = if hi - lo > f64::EPSILON { (hi - lo) * 0.08 } else { lo.abs().max(1.0) * 0.1 };
    (lo - pad)..(hi + pad)
}

/// A deterministic vertical offset in [-0.25, 0.25] so equal values do not hide each other.
fn jitter(i: usize) -> f64 {
    let x = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40;
    (x as f64 / (1u64 << 24) as f64 - 0.5) * 0.5
}

/// `s` cut to `max` characters, with an ellipsis when cut.
fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Strip plot of both sides' samples: row A above row B, one dot per sample, a bar at each
/// side's median.
pub fn distribution_svg(
    unit: &str,
    label_a: &str,
    a: &[f64],
    label_b: &str,
    b: &[f64],
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 150)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let range = value_range(a.iter().chain(b).copied());
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(70)
            .build_cartesian_2d(range, -0.6f64..1.6f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            // Light lines between the labelled ones are a third of a chart's bytes.
            .max_light_lines(0)
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(6)
            .x_desc(unit)
            .draw()
            .map_err(err)?;
        for (row, label, values, color) in [(1.0, label_a, a, A_COLOR), (0.0, label_b, b, B_COLOR)]
        {
            chart
                .draw_series(
                    values.iter().enumerate().map(|(i, v)| {
                        Circle::new((*v, row + jitter(i)), 3, color.mix(0.6).filled())
                    }),
                )
                .map_err(err)?;
            if !values.is_empty() {
                let (median, _) = crate::compare::trend::median_and_iqr(values);
                chart
                    .draw_series(LineSeries::new(
                        [(median, row - 0.4), (median, row + 0.4)],
                        color.stroke_width(2),
                    ))
                    .map_err(err)?;
            }
            // The row's name in the y label area, level with its dots.
            let (_, y) = chart.backend_coord(&(chart.x_range().start, row));
            let name = format!("{} n={}", shorten(label, 10), values.len());
            root.draw(&Text::new(name, (4, y - 6), ("sans-serif", 12).into_font().color(&color)))
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Per-commit medians along history with the interquartile range as error bars; a step is a
/// larger marker (red for a regression, green for an improvement).
pub fn trend_svg(unit: &str, trend: &Trend) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (560, 200)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = trend.points.len().max(1);
        let lows = trend.points.iter().map(|p| p.median - p.spread / 2.0);
        let highs = trend.points.iter().map(|p| p.median + p.spread / 2.0);
        let range = value_range(lows.chain(highs));
        let names: Vec<String> = trend.points.iter().map(|p| p.commit.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), range)
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_labels(n.min(12))
            .x_label_formatter(&|x| {
                let i = x.round();
                if (x - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_desc(unit)
            .draw()
            .map_err(err)?;
        let at = |i: usize| i as f64;
        chart
            .draw_series(trend.points.iter().enumerate().map(|(i, p)| {
                ErrorBar::new_vertical(
                    at(i),
                    p.median - p.spread / 2.0,
                    p.median,
                    p.median + p.spread / 2.0,
                    A_COLOR.mix(0.5).filled(),
                    6,
                )
            }))
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                trend.points.iter().enumerate().map(|(i, p)| (at(i), p.median)),
                A_COLOR.stroke_width(2),
            ))
            .map_err(err)?;
        chart
            .draw_series(trend.points.iter().enumerate().filter_map(|(i, p)| {
                let color = match p.step?.kind {
                    StepKind::Regression => B_COLOR,
                    StepKind::Improvement => RGBColor(44, 160, 44),
                };
                Some(TriangleMarker::new((at(i), p.median), 8, color.filled()))
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_distribution_plot_has_one_dot_per_sample_and_both_labels() {
        let svg = distribution_svg("µs", "aaa", &[1.0, 2.0, 3.0], "bbb", &[10.0, 11.0]).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert_eq!(svg.matches("<circle").count(), 5, "{svg}");
        assert!(svg.contains("aaa n=3") && svg.contains("bbb n=2"), "{svg}");
    }
}
