//! `stats report --html`: one self-contained HTML file (inline CSS and SVG, no script, no
//! network) holding the compare table, a strip plot of both sides' samples for each finding,
//! and the history trend of each metric that changed.
//!
//! Input is finished results: the [`CompareReport`], the samples behind each finding and the
//! trends, gathered by the command (`crate::cli::stats::report`). This module lays them out;
//! the charts are [`plot`]'s.

pub mod plot;

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::compare::CompareReport;
use crate::report::history::{HistoryReport, sparkline};

/// At most this many findings get a plot (regressions first), keeping a report of a large
/// compare within a few MB; the table always lists every finding.
pub const MAX_PLOTTED_FINDINGS: usize = 300;

/// The samples behind one finding, per side.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingSamples {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct HtmlReport<'a> {
    pub title: String,
    pub compare: Option<&'a CompareReport>,
    /// One entry per finding of `compare`, in its order.
    pub samples: Vec<FindingSamples>,
    pub trends: Vec<HistoryReport>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{padding:2px 8px;border-bottom:1px solid #ddd;\
text-align:left}tr.regression td.verdict{color:#c00;font-weight:bold}\
tr.improvement td.verdict{color:#080}figure{display:inline-block;margin:0.5em;\
border:1px solid #ddd;padding:4px}figcaption{font-size:90%}";

/// Write the page.
pub fn write_html(out: &mut dyn Write, r: &HtmlReport<'_>) -> io::Result<()> {
    let mut page = String::new();
    let title = escape(&r.title);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>{title}</h1>\n"
    );
    if let Some(c) = r.compare {
        compare_section(&mut page, c, &r.samples).map_err(io::Error::other)?;
    }
    trend_section(&mut page, &r.trends).map_err(io::Error::other)?;
    page.push_str("</body></html>\n");
    out.write_all(page.as_bytes())
}

fn compare_section(
    page: &mut String,
    c: &CompareReport,
    samples: &[FindingSamples],
) -> Result<(), String> {
    let s = &c.comparison.summary;
    let _ = write!(
        page,
        "<section id=\"compare\"><h2>Compare: {} vs {}</h2>\n<p class=\"summary\">slicing on {}; \
         {} samples vs {}; <b>{} regressions</b>, {} improvements, {} unchanged</p>\n",
        escape(&c.label_a),
        escape(&c.label_b),
        escape(&c.slicing.join(", ")),
        c.rows_a,
        c.rows_b,
        s.regressions,
        s.improvements,
        s.unchanged
    );
    let _ = writeln!(
        page,
        "<table id=\"findings\"><tr><th>TEST</th><th>METRIC</th><th>{}</th><th>{}</th>\
         <th>DELTA</th><th>VERDICT</th><th>N(A/B)</th></tr>",
        escape(&c.label_a),
        escape(&c.label_b)
    );
    for (i, f) in c.comparison.findings.iter().enumerate() {
        let verdict = if f.is_regression { "regression" } else { "improvement" };
        let _ = writeln!(
            page,
            "<tr class=\"finding {verdict}\"><td><a href=\"#finding-{i}\">{}</a></td><td>{}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:+.2}{}</td><td class=\"verdict\">{}</td>\
             <td>{}/{}</td></tr>",
            escape(&f.key.label()),
            f.metric,
            f.a,
            f.b,
            f.delta,
            escape(f.unit),
            verdict.to_uppercase(),
            f.a_samples.n,
            f.b_samples.n
        );
    }
    page.push_str("</table>\n<h2>Sample distributions</h2>\n");
    let mut order: Vec<usize> = (0..c.comparison.findings.len()).collect();
    order.sort_by_key(|&i| !c.comparison.findings[i].is_regression);
    let plotted = order.len().min(MAX_PLOTTED_FINDINGS);
    if plotted < order.len() {
        let _ = writeln!(
            page,
            "<p>{} of {} findings plotted (regressions first).</p>",
            plotted,
            order.len()
        );
    }
    let empty = FindingSamples::default();
    for &i in &order[..plotted] {
        let f = &c.comparison.findings[i];
        let s = samples.get(i).unwrap_or(&empty);
        let svg = plot::distribution_svg(f.unit, &c.label_a, &s.a, &c.label_b, &s.b)?;
        let _ = writeln!(
            page,
            "<figure class=\"distribution\" id=\"finding-{i}\" data-metric=\"{}\">{svg}\
             <figcaption>{} {}: {:.2} → {:.2}</figcaption></figure>",
            f.metric,
            escape(&f.key.label()),
            f.metric,
            f.a,
            f.b
        );
    }
    page.push_str("</section>\n");
    Ok(())
}

fn trend_section(page: &mut String, trends: &[HistoryReport]) -> Result<(), String> {
    if trends.is_empty() {
        return Ok(());
    }
    page.push_str("<section id=\"history\"><h2>History of the metrics that changed</h2>\n");
    for t in trends {
        let svg = plot::trend_svg(&t.unit, &t.trend)?;
        let medians: Vec<f64> = t.trend.points.iter().map(|p| p.median).collect();
        let steps = t.trend.points.iter().filter(|p| p.step.is_some()).count();
        let _ = writeln!(
            page,
            "<figure class=\"trend\" data-metric=\"{}\">{svg}<figcaption>{} for {} over {} \
             commits, {steps} step(s) {}</figcaption></figure>",
            escape(&t.metric),
            escape(&t.metric),
            escape(&t.series),
            t.trend.points.len(),
            sparkline(&medians)
        );
    }
    page.push_str("</section>\n");
    Ok(())
}
