//! Rendering a calibration (`stats calibrate`): a per-metric table of false-alarm rates,
//! detectable effects and repeats needed, or one JSON document.

use std::io::{self, Write};

use serde::Serialize;

use crate::compare::NoiseSettings;
use crate::compare::calibrate::Calibration;

#[derive(Serialize)]
struct JsonCalibration<'a> {
    runs: usize,
    keys: usize,
    per_side: usize,
    splits: usize,
    alpha: f64,
    fdr: Option<f64>,
    any_regression_rate: f64,
    any_finding_rate: f64,
    parity_regressions: usize,
    repeats_recommended: Option<usize>,
    metrics: Vec<JsonMetric<'a>>,
}

#[derive(Serialize)]
struct JsonMetric<'a> {
    metric: &'a str,
    keys: usize,
    parity_flagged: bool,
    false_alarm_rate: f64,
    detectable_pct: Option<f64>,
    repeats_needed: Option<usize>,
}

pub fn write_json(out: &mut dyn Write, c: &Calibration, s: &NoiseSettings) -> io::Result<()> {
    let doc = JsonCalibration {
        runs: c.runs,
        keys: c.keys,
        per_side: c.per_side,
        splits: c.splits,
        alpha: s.alpha,
        fdr: s.fdr,
        any_regression_rate: c.any_regression_rate,
        any_finding_rate: c.any_finding_rate,
        parity_regressions: c.parity_regressions,
        repeats_recommended: c.repeats_recommended,
        metrics: c
            .metrics
            .iter()
            .map(|m| JsonMetric {
                metric: m.metric,
                keys: m.keys,
                parity_flagged: m.parity_flagged,
                false_alarm_rate: m.false_alarm_rate,
                detectable_pct: m.detectable_pct,
                repeats_needed: m.repeats_needed,
            })
            .collect(),
    };
    serde_json::to_writer_pretty(&mut *out, &doc)?;
    writeln!(out)
}

pub fn write_text(out: &mut dyn Write, c: &Calibration, s: &NoiseSettings) -> io::Result<()> {
    writeln!(
        out,
        "A/A calibration: {} runs over {} tests, split {} ways at random and once by run order \
         parity ({} runs per side at the smallest test); α = {}",
        c.runs, c.keys, c.splits, c.per_side, s.alpha
    )?;
    writeln!(
        out,
        "false alarms: {:.1} % of random splits report a regression ({:.1} % any finding); the \
         parity split reports {}",
        c.any_regression_rate * 100.0,
        c.any_finding_rate * 100.0,
        c.parity_regressions
    )?;
    writeln!(
        out,
        " METRIC                            FALSE ALARMS  PARITY  DETECTABLE (80 %)  REPEATS"
    )?;
    for m in c.metrics.iter().filter(|m| m.keys > 0) {
        let detect = m.detectable_pct.map_or(">500 %".to_string(), |p| format!("{p:.0} %"));
        let repeats = m.repeats_needed.map_or("-".to_string(), |n| n.to_string());
        writeln!(
            out,
            " {:<33} {:>11.1}%  {:<6}  {:>17}  {:>7}",
            m.metric,
            m.false_alarm_rate * 100.0,
            if m.parity_flagged { "yes" } else { "no" },
            detect,
            repeats
        )?;
    }
    match c.repeats_recommended {
        Some(n) => writeln!(
            out,
            "run {n} repeats per side (`cargo ktstr test --repeat {n}`) for every metric's \
             noise to stay under its relative gate"
        ),
        None => writeln!(out, "no metric has enough spread data for a repeats estimate"),
    }
}
