//! The noise gate's part of the compare text report: the gate line (settings and family
//! size), the per-finding cells (`N(A/B)` is the table's own), and the low-n hint. The table
//! layout itself is `super::compare`'s.

use std::io::{self, Write};

use crate::compare::CompareReport;
use crate::compare::noise::assess::RANK_TEST_MIN_PER_SIDE;
use crate::compare::verdict::Finding;

/// `gate: noise (…); family: …` under the table header lines.
pub fn write_gate_line(out: &mut dyn Write, r: &CompareReport) -> io::Result<()> {
    let s = &r.comparison.summary;
    let tested = r.comparison.findings.iter().filter(|f| f.noise.p_value.is_some()).count();
    let fdr = r.noise.fdr.map_or(String::new(), |q| format!(", BH FDR q = {q}"));
    writeln!(
        out,
        "gate: dual and noise (α = {}{fdr}); family: {} key × metric tests, {} past the \
         magnitude gate, {tested} noise-tested (expected false positives at α: {:.2})",
        r.noise.alpha,
        s.tests(),
        r.comparison.findings.len(),
        tested as f64 * r.noise.alpha
    )
}

/// `CHANGE [95% CI]`, `P`, `METHOD` of one finding.
pub fn noise_cells(f: &Finding) -> [String; 3] {
    let change = match f.noise.change {
        None => "-".to_string(),
        Some(c) => match c.ci_pct {
            Some((lo, hi)) => format!("{:+.1}% [{lo:+.1}, {hi:+.1}]", c.pct),
            None => format!("{:+.1}%", c.pct),
        },
    };
    let p = f.noise.p_value.map_or("-".to_string(), |p| format!("{p:.4}"));
    [change, p, f.noise.method.name().to_string()]
}

/// The hint under the summary when some findings were judged by the dual gate alone.
pub fn write_low_n_hint(out: &mut dyn Write, r: &CompareReport) -> io::Result<()> {
    let low: Vec<&Finding> = r.comparison.findings.iter().filter(|f| f.noise.low_n).collect();
    let Some(fewest) = low.iter().map(|f| f.a_samples.n.min(f.b_samples.n)).min() else {
        return Ok(());
    };
    writeln!(
        out,
        "  low-n: {} finding(s) judged by the dual gate alone; need >= {RANK_TEST_MIN_PER_SIDE} \
         runs per side (have {fewest}) or 5 replicate pairs of history for the noise gate to \
         decide",
        low.len()
    )
}
