//! Rendering a finished comparison: the text report of stats-reference §4.11 (non-TTY output
//! matches ktstr's byte for byte) and the `--json` document.
//!
//! Under `--gate dual` the text is ktstr's: on a colour terminal the table gains one trailing
//! column, `N(A/B)`, with the sample counts behind each mean; piped output keeps ktstr's six
//! columns. Under the default noise gate the first six columns keep ktstr's places and four
//! follow: `N(A/B)`, `CHANGE [95% CI]`, `P` and `METHOD`; a gate line names the settings
//! and the family size, and the summary counts `noise` and `low-n` findings. The JSON always
//! carries the samples and the noise gate's figures.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::Styles;
use super::host_delta::{JsonHostDelta, host_delta_text};
pub use crate::compare::CompareReport;
use crate::compare::noise::{Change, Verdict};
use crate::compare::verdict::{Finding, SampleStats};
use crate::compare::{GateMode, Summary};

/// The JSON document's version; bump on any incompatible change (a field removed, renamed or
/// retyped, or a value's meaning changed). Adding a field is compatible and keeps the
/// version: readers ignore fields they do not know, and a field a reader needs but an older
/// document lacks is optional (`host_delta`, added in version 1).
///
/// Version 2: `findings[].verdict` may be `noise` (a magnitude hit inside the noise, which
/// does not fail) and `summary.regressions` counts only findings the noise gate confirmed or
/// could not judge; findings gain `method`, `p_value`, `adjusted_p`, `change_pct`, `ci_low`,
/// `ci_high`, `low_n`; the document gains `gate` and the summary `noise`,
/// `low_n_regressions` and `family`.
pub const SCHEMA_VERSION: u32 = 2;

/// Write the text report.
pub fn write_text(out: &mut dyn Write, r: &CompareReport, styles: Styles) -> io::Result<()> {
    writeln!(out, "slicing dimensions: {}", r.slicing.join(", "))?;
    let mut pairing = vec!["scenario"];
    pairing.extend(&r.pairing);
    writeln!(out, "pairing on: {}", pairing.join(", "))?;
    if r.averaged {
        writeln!(
            out,
            "averaged across {} runs ({}) and {} runs ({})",
            r.rows_a, r.label_a, r.rows_b, r.label_b
        )?;
    }
    let noise_gate = r.noise.gate == GateMode::Noise;
    if noise_gate {
        super::compare_noise::write_gate_line(out, r)?;
    }
    write_table(out, r, styles)?;
    let s = &r.comparison.summary;
    writeln!(out)?;
    write!(
        out,
        "summary: {} regressions, {} improvements, {} unchanged",
        s.regressions, s.improvements, s.unchanged
    )?;
    if noise_gate {
        write!(out, ", {} noise, {} low-n", s.noise, s.low_n_regressions)?;
    }
    writeln!(out)?;
    if noise_gate {
        super::compare_noise::write_low_n_hint(out, r)?;
    }
    if s.skipped_failed > 0 {
        writeln!(
            out,
            "  {} pairing-key row pair(s) skipped because one or both sides failed",
            s.skipped_failed
        )?;
    }
    if r.averaged {
        writeln!(out)?;
        writeln!(out, "per-group pass counts (passes_observed/total_observed):")?;
        let side =
            |v: Option<(usize, usize)>| v.map_or("-".to_string(), |(p, t)| format!("{p}/{t}"));
        for ((scenario, topology, work_type, _flags), [a, b]) in &r.pass_counts {
            writeln!(
                out,
                "  {scenario}/{topology}/{work_type}: {}={} {}={}",
                r.label_a,
                side(*a),
                r.label_b,
                side(*b)
            )?;
        }
    }
    if s.new_in_b > 0 {
        writeln!(
            out,
            "  {} row(s) new in '{}' (no matching key in '{}')",
            s.new_in_b, r.label_b, r.label_a
        )?;
    }
    if s.removed_from_a > 0 {
        writeln!(
            out,
            "  {} row(s) removed from '{}' (no matching key in '{}')",
            s.removed_from_a, r.label_a, r.label_b
        )?;
    }
    let host = host_delta_text(&r.host_delta, &r.label_a, &r.label_b);
    if !host.is_empty() {
        writeln!(out, "{host}")?;
    }
    Ok(())
}

/// ktstr's borderless table: every cell padded by one space each side, left-aligned,
/// columns as wide as their widest cell; no header rule.
fn write_table(out: &mut dyn Write, r: &CompareReport, styles: Styles) -> io::Result<()> {
    let noise_gate = r.noise.gate == GateMode::Noise;
    let extra = styles.is_colored() || noise_gate;
    let mut header: Vec<String> =
        ["TEST", "METRIC", &r.label_a, &r.label_b, "DELTA", "VERDICT"].map(String::from).to_vec();
    if extra {
        header.push("N(A/B)".into());
    }
    if noise_gate {
        header.extend(["CHANGE [95% CI]", "P", "METHOD"].map(String::from));
    }
    let mut rows: Vec<(Vec<String>, Verdict)> = Vec::new();
    for f in &r.comparison.findings {
        let mut cells = vec![
            f.key.label(),
            f.metric.to_string(),
            format!("{:.2}", f.a),
            format!("{:.2}", f.b),
            format!("{:+.2}{}", f.delta, f.unit),
            verdict_cell(f, noise_gate).to_string(),
        ];
        if extra {
            cells.push(format!("{}/{}", f.a_samples.n, f.b_samples.n));
        }
        if noise_gate {
            cells.extend(super::compare_noise::noise_cells(f));
        }
        rows.push((cells, f.verdict));
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String], verdict_style: Option<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            let pad = w - c.chars().count();
            match verdict_style {
                Some(color) if i == 5 => {
                    s.push_str(&format!(" {color}{c}{}{} ", styles.reset, " ".repeat(pad)))
                }
                _ => s.push_str(&format!(" {c}{} ", " ".repeat(pad))),
            }
        }
        s
    };
    writeln!(out, "{}", line(&header, None))?;
    for (cells, verdict) in &rows {
        let color = match verdict {
            Verdict::Regression => styles.red,
            Verdict::Improvement => styles.green,
            Verdict::Unchanged | Verdict::Noise => "",
        };
        let style = (styles.is_colored() && !color.is_empty()).then_some(color);
        writeln!(out, "{}", line(cells, style))?;
    }
    Ok(())
}

/// ktstr's verdict words, plus ours: `noise`, and `(low-n)` on a verdict only the dual gate
/// reached under the noise gate.
fn verdict_cell(f: &Finding, noise_gate: bool) -> &'static str {
    match (f.verdict, noise_gate && f.noise.low_n) {
        (Verdict::Regression, false) => "REGRESSION",
        (Verdict::Regression, true) => "REGRESSION (low-n)",
        (Verdict::Improvement, false) => "improvement",
        (Verdict::Improvement, true) => "improvement (low-n)",
        (Verdict::Noise, _) => "noise",
        (Verdict::Unchanged, _) => "unchanged",
    }
}

/// The `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    pub schema_version: u32,
    pub slicing: Vec<String>,
    pub pairing: Vec<String>,
    pub labels: JsonSides<String>,
    /// Samples (sidecars) selected per side before grouping.
    pub samples: JsonSides<usize>,
    pub averaged: bool,
    pub summary: JsonSummary,
    pub findings: Vec<JsonFinding>,
    /// How the two sides' hosts differ; `None` only in a document written before the field
    /// existed.
    #[serde(default)]
    pub host_delta: Option<JsonHostDelta>,
    /// The gate settings the verdicts were reached with (version 2).
    #[serde(default)]
    pub gate: Option<JsonGate>,
}

/// `--gate`, `--alpha`, `--fdr`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonGate {
    /// `noise` or `dual`.
    pub mode: String,
    pub alpha: f64,
    pub fdr: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSides<T> {
    pub a: T,
    pub b: T,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSummary {
    pub regressions: usize,
    pub improvements: usize,
    pub unchanged: usize,
    pub skipped_failed: usize,
    pub new_in_b: usize,
    pub removed_from_a: usize,
    /// Magnitude hits the noise gate found within the noise (version 2).
    #[serde(default)]
    pub noise: usize,
    /// Regressions only the dual gate judged (version 2).
    #[serde(default)]
    pub low_n_regressions: usize,
    /// Key × metric tests judged: regressions + improvements + unchanged + noise (version 2).
    #[serde(default)]
    pub family: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonFinding {
    pub label: String,
    pub metric: String,
    /// The means the gate compared.
    pub a: f64,
    pub b: f64,
    pub delta: f64,
    /// `regression`, `improvement` or (version 2) `noise`.
    pub verdict: String,
    pub a_samples: JsonSamples,
    pub b_samples: JsonSamples,
    /// `mwu`, `history`, `wilcoxon` or `dual-gate-only` (version 2).
    #[serde(default)]
    pub method: String,
    /// The noise test's p (`null` when none ran).
    #[serde(default)]
    pub p_value: Option<f64>,
    /// The BH-adjusted p, under `--fdr`.
    #[serde(default)]
    pub adjusted_p: Option<f64>,
    /// B against A in percent (Hodges-Lehmann; log scale when every value is positive).
    #[serde(default)]
    pub change_pct: Option<f64>,
    /// The exact 95 % interval of `change_pct`, when the samples allow one.
    #[serde(default)]
    pub ci_low: Option<f64>,
    #[serde(default)]
    pub ci_high: Option<f64>,
    /// Only the dual gate judged this finding (too few runs, no history).
    #[serde(default)]
    pub low_n: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSamples {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
}

impl From<SampleStats> for JsonSamples {
    fn from(s: SampleStats) -> Self {
        JsonSamples { n: s.n, mean: s.mean, median: s.median }
    }
}

impl From<Summary> for JsonSummary {
    fn from(s: Summary) -> Self {
        JsonSummary {
            regressions: s.regressions,
            improvements: s.improvements,
            unchanged: s.unchanged,
            skipped_failed: s.skipped_failed,
            new_in_b: s.new_in_b,
            removed_from_a: s.removed_from_a,
            noise: s.noise,
            low_n_regressions: s.low_n_regressions,
            family: s.tests(),
        }
    }
}

/// A figure for JSON: `None` instead of a non-finite value.
fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

fn json_finding(f: &Finding) -> JsonFinding {
    let change: Option<Change> = f.noise.change;
    let ci = change.and_then(|c| c.ci_pct);
    JsonFinding {
        label: f.key.label(),
        metric: f.metric.to_string(),
        a: f.a,
        b: f.b,
        delta: f.delta,
        verdict: f.verdict.name().to_string(),
        a_samples: f.a_samples.into(),
        b_samples: f.b_samples.into(),
        method: f.noise.method.name().to_string(),
        p_value: f.noise.p_value.and_then(finite),
        adjusted_p: f.noise.adjusted_p.and_then(finite),
        change_pct: change.and_then(|c| finite(c.pct)),
        ci_low: ci.and_then(|c| finite(c.0)),
        ci_high: ci.and_then(|c| finite(c.1)),
        low_n: f.noise.low_n,
    }
}

pub fn to_json(r: &CompareReport) -> JsonReport {
    JsonReport {
        schema_version: SCHEMA_VERSION,
        slicing: r.slicing.iter().map(|s| s.to_string()).collect(),
        pairing: r.pairing.iter().map(|s| s.to_string()).collect(),
        labels: JsonSides { a: r.label_a.clone(), b: r.label_b.clone() },
        samples: JsonSides { a: r.rows_a, b: r.rows_b },
        averaged: r.averaged,
        summary: r.comparison.summary.into(),
        findings: r.comparison.findings.iter().map(json_finding).collect(),
        host_delta: Some(JsonHostDelta::from(&r.host_delta)),
        gate: Some(JsonGate {
            mode: r.noise.gate.name().to_string(),
            alpha: r.noise.alpha,
            fdr: r.noise.fdr,
        }),
    }
}

/// Write the JSON document (pretty, one trailing newline).
pub fn write_json(out: &mut dyn Write, r: &CompareReport) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &to_json(r))?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::noise::{NoiseResult, Series};
    use crate::compare::{
        Comparison, HostDelta, HostFieldChange, NoiseSettings, PairingKey, Summary,
    };
    use crate::report::host_delta::JsonHostChange;

    fn report() -> CompareReport {
        let s = SampleStats { n: 2, mean: 10.0, median: 10.0 };
        CompareReport {
            slicing: vec!["project-commit"],
            pairing: vec!["kernel", "scheduler"],
            label_a: "aaaaaaa".into(),
            label_b: "bbbbbbb".into(),
            rows_a: 2,
            rows_b: 1,
            averaged: true,
            comparison: Comparison {
                summary: Summary {
                    regressions: 1,
                    unchanged: 17,
                    new_in_b: 1,
                    ..Default::default()
                },
                findings: vec![Finding {
                    key: PairingKey(vec!["sched_basic".into(), "6.14.2".into(), "eevdf".into()]),
                    metric: "worst_p99_wake_latency_us",
                    unit: "µs",
                    a: 10.0,
                    b: 120.5,
                    delta: 110.5,
                    is_regression: true,
                    a_samples: s,
                    b_samples: SampleStats { n: 1, mean: 120.5, median: 120.5 },
                    verdict: Verdict::Regression,
                    noise: NoiseResult::untested(2, 1),
                    a_values: vec![10.0, 10.0],
                    b_values: vec![120.5],
                    paired: None,
                    series: Series {
                        scenario: "sched_basic".into(),
                        topology: "1n1l1c1t".into(),
                        scheduler: "eevdf".into(),
                        work_type: "CpuSpin".into(),
                    },
                }],
            },
            pass_counts: [(
                ("sched_basic".into(), "1n1l1c1t".into(), "CpuSpin".into(), String::new()),
                [Some((2, 2)), None],
            )]
            .into(),
            host_delta: HostDelta::Identical { arch: None },
            noise: NoiseSettings { gate: GateMode::Dual, ..Default::default() },
        }
    }

    /// [`report`] judged by the noise gate: too few runs, so low-n.
    fn noise_report() -> CompareReport {
        let mut r = report();
        r.noise = NoiseSettings::default();
        let f = &mut r.comparison.findings;
        crate::compare::noise::assess(f, &r.noise, &Default::default());
        r.comparison.summary.recount(f);
        r
    }

    #[test]
    fn the_noise_gate_adds_its_line_columns_counts_and_hint() {
        let mut buf = Vec::new();
        write_text(&mut buf, &noise_report(), Styles::plain()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("\ngate: dual and noise (α = 0.05, BH FDR q = 0.05); family: 18 key × metric tests, 1 past the magnitude gate, 0 noise-tested"), "{text}");
        let row = text.lines().find(|l| l.contains("REGRESSION")).unwrap();
        assert!(row.contains(" REGRESSION (low-n) "), "{row}");
        assert!(
            row.contains(" 2/1 ") && row.contains(" +1105.0% ") && row.contains(" dual-gate-only"),
            "{row}"
        );
        assert!(
            text.contains(
                "summary: 1 regressions, 0 improvements, 17 unchanged, 0 noise, 1 low-n\n"
            ),
            "{text}"
        );
        assert!(text.contains("  low-n: 1 finding(s) judged by the dual gate alone; need >= 4 runs per side (have 1)"), "{text}");
        let mut buf = Vec::new();
        write_json(&mut buf, &noise_report()).unwrap();
        let back: JsonReport = serde_json::from_slice(&buf).unwrap();
        let f = &back.findings[0];
        assert_eq!(
            (f.method.as_str(), f.verdict.as_str(), f.low_n),
            ("dual-gate-only", "regression", true)
        );
        assert_eq!((f.p_value, f.ci_low, f.ci_high), (None, None, None));
        assert!((f.change_pct.unwrap() - 1105.0).abs() < 1e-9);
        assert_eq!(back.gate.unwrap().mode, "noise");
        assert_eq!((back.summary.low_n_regressions, back.summary.family), (1, 18));
    }

    #[test]
    fn plain_text_matches_the_reference_layout() {
        let mut buf = Vec::new();
        write_text(&mut buf, &report(), Styles::plain()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let want = "slicing dimensions: project-commit
pairing on: scenario, kernel, scheduler
averaged across 2 runs (aaaaaaa) and 1 runs (bbbbbbb)
 TEST                      METRIC                     aaaaaaa  bbbbbbb  DELTA      VERDICT    
 sched_basic/6.14.2/eevdf  worst_p99_wake_latency_us  10.00    120.50   +110.50µs  REGRESSION 

summary: 1 regressions, 0 improvements, 17 unchanged

per-group pass counts (passes_observed/total_observed):
  sched_basic/1n1l1c1t/CpuSpin: aaaaaaa=2/2 bbbbbbb=-
  1 row(s) new in 'bbbbbbb' (no matching key in 'aaaaaaa')

host: identical between 'aaaaaaa' and 'bbbbbbb'
";
        assert_eq!(text, want);
    }

    #[test]
    fn colour_adds_sample_counts_and_red_verdict() {
        let mut buf = Vec::new();
        write_text(&mut buf, &report(), Styles::colored()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("N(A/B)"));
        assert!(text.contains("\x1b[31mREGRESSION\x1b[0m"));
        assert!(text.contains(" 2/1 "));
    }

    #[test]
    fn json_round_trips_through_the_mirror_types() {
        let mut buf = Vec::new();
        write_json(&mut buf, &report()).unwrap();
        let back: JsonReport = serde_json::from_slice(&buf).unwrap();
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert_eq!(back.findings[0].verdict, "regression");
        assert_eq!(back.findings[0].a_samples.n, 2);
        assert_eq!(back.summary.new_in_b, 1);
    }

    #[test]
    fn the_host_delta_is_in_both_the_text_and_the_json() {
        let mut r = report();
        r.host_delta = HostDelta::Differs(vec![HostFieldChange {
            field: "cpu_model".into(),
            a: "EPYC".into(),
            b: "Xeon".into(),
        }]);
        let mut buf = Vec::new();
        write_text(&mut buf, &r, Styles::plain()).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(
            text.ends_with("\n\nhost delta ('aaaaaaa' → 'bbbbbbb'):\n  cpu_model: EPYC → Xeon\n"),
            "{text}"
        );
        let mut buf = Vec::new();
        write_json(&mut buf, &r).unwrap();
        let back: JsonReport = serde_json::from_slice(&buf).unwrap();
        let change =
            JsonHostChange { field: "cpu_model".into(), a: "EPYC".into(), b: "Xeon".into() };
        assert_eq!(back.host_delta, Some(JsonHostDelta::Differs { changes: vec![change] }));
        r.host_delta = HostDelta::NotRecorded;
        let mut buf = Vec::new();
        write_text(&mut buf, &r, Styles::plain()).unwrap();
        assert!(!String::from_utf8(buf).unwrap().contains("host"), "no host section at all");
    }

    #[test]
    fn a_document_written_before_host_delta_still_reads() {
        let mut doc = serde_json::to_value(to_json(&report())).unwrap();
        doc.as_object_mut().unwrap().remove("host_delta").expect("the field is written");
        let back: JsonReport = serde_json::from_value(doc).unwrap();
        assert_eq!((back.schema_version, back.host_delta), (SCHEMA_VERSION, None));
    }
}
