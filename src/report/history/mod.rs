//! Rendering `stats history`: a per-commit table (n, median, spread, step) with a sparkline of
//! the medians, or the `--json` document. The trend itself is computed in
//! `crate::compare::trend`; this module only lays it out.

use std::io::{self, Write};

use serde::Serialize;

use super::table;
use crate::compare::trend::{StepKind, Trend, TrendOrder};

/// The JSON document's version; bump on an incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One series' history, ready to render.
#[derive(Debug, Clone)]
pub struct HistoryReport {
    pub metric: String,
    pub unit: String,
    /// `lower is better`, `higher is better`, or empty for a metric outside the registry.
    pub polarity: String,
    pub series: String,
    pub trend: Trend,
}

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One block character per value, scaled between the smallest and the largest.
pub fn sparkline(values: &[f64]) -> String {
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|v| {
            if hi - lo <= f64::EPSILON {
                return BARS[3];
            }
            let i = ((v - lo) / (hi - lo) * (BARS.len() - 1) as f64).round() as usize;
            BARS[i.min(BARS.len() - 1)]
        })
        .collect()
}

fn step_label(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Regression => "regression",
        StepKind::Improvement => "improvement",
    }
}

/// The text report: a header, the table, the sparkline.
pub fn write_text(out: &mut dyn Write, r: &HistoryReport) -> io::Result<()> {
    let about: Vec<&str> =
        [r.unit.as_str(), r.polarity.as_str()].into_iter().filter(|s| !s.is_empty()).collect();
    let about = if about.is_empty() { String::new() } else { format!(" ({})", about.join(", ")) };
    writeln!(out, "history of {}{about} for {}", r.metric, r.series)?;
    let t = &r.trend;
    match t.order {
        TrendOrder::FirstParent if t.off_history > 0 => writeln!(
            out,
            "commits in first-parent order of HEAD ({} commit(s) not on it left out)",
            t.off_history
        )?,
        TrendOrder::FirstParent => writeln!(out, "commits in first-parent order of HEAD")?,
        TrendOrder::Timestamp => writeln!(
            out,
            "commits by first sample time (no repository here, or none of them is on its history)"
        )?,
    }
    let rows: Vec<Vec<String>> = t
        .points
        .iter()
        .map(|p| {
            let commit = if p.dirty > 0 {
                format!("{} (+{} dirty)", p.commit, p.dirty)
            } else {
                p.commit.clone()
            };
            let step = p.step.map_or(String::new(), |s| {
                format!("STEP {} {:.2} -> {:.2}", step_label(s.kind), s.before, s.after)
            });
            vec![
                commit,
                p.values.len().to_string(),
                format!("{:.2}", p.median),
                format!("{:.2}", p.spread),
                step,
            ]
        })
        .collect();
    write!(out, "{}", table::render(&["COMMIT", "N", "MEDIAN", "SPREAD(IQR)", "STEP"], &rows))?;
    let medians: Vec<f64> = t.points.iter().map(|p| p.median).collect();
    writeln!(out, "trend: {}", sparkline(&medians))?;
    Ok(())
}

#[derive(Serialize)]
struct JsonHistory<'a> {
    schema_version: u32,
    metric: &'a str,
    unit: &'a str,
    series: &'a str,
    order: &'static str,
    off_history: usize,
    commits: Vec<JsonPoint<'a>>,
}

#[derive(Serialize)]
struct JsonPoint<'a> {
    commit: &'a str,
    n: usize,
    dirty: usize,
    first_timestamp: &'a str,
    median: f64,
    spread: f64,
    step: Option<JsonStep>,
}

#[derive(Serialize)]
struct JsonStep {
    kind: &'static str,
    before: f64,
    after: f64,
}

/// The `--json` document: every series' history in one array.
pub fn write_json(out: &mut dyn Write, reports: &[HistoryReport]) -> io::Result<()> {
    let docs: Vec<JsonHistory<'_>> = reports
        .iter()
        .map(|r| JsonHistory {
            schema_version: SCHEMA_VERSION,
            metric: &r.metric,
            unit: &r.unit,
            series: &r.series,
            order: match r.trend.order {
                TrendOrder::FirstParent => "first-parent",
                TrendOrder::Timestamp => "timestamp",
            },
            off_history: r.trend.off_history,
            commits: r
                .trend
                .points
                .iter()
                .map(|p| JsonPoint {
                    commit: &p.commit,
                    n: p.values.len(),
                    dirty: p.dirty,
                    first_timestamp: &p.first_timestamp,
                    median: p.median,
                    spread: p.spread,
                    step: p.step.map(|s| JsonStep {
                        kind: step_label(s.kind),
                        before: s.before,
                        after: s.after,
                    }),
                })
                .collect(),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &docs)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparkline_spans_the_lowest_to_the_highest_bar() {
        assert_eq!(sparkline(&[1.0, 2.0, 8.0]), "▁▂█");
        assert_eq!(sparkline(&[5.0, 5.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }
}
