//! Applying the noise gate to the dual gate's findings: per finding the method its sample
//! sizes allow, the p-value, the % change with its interval, and the final verdict.
//!
//! Only findings (pairs × metrics that cleared the magnitude gate) are assessed: an unchanged
//! metric stays unchanged whatever its p, so the rank test costs nothing where nothing moved.
//! The method, by the samples each side has (statistics-reference §4.3 step 4):
//! 0. The Wilcoxon signed-rank test when the runs are paired (≥ 6 pairs).
//! 1. Mann-Whitney when [`mwu::applies`] (≥ 4 per side, or 3 against ≥ 5): p < α.
//! 2. Else the series' history model, when it has one and every value is positive (the model
//!    is on the log scale): |z| ≥ [`history::K`].
//!
//! With an FDR level q (the default), a finding must also have a Benjamini-Hochberg adjusted
//! p ≤ q over the compare's tested findings (the family: findings past the magnitude gate
//! that a test could judge).
//! 3. Else the dual gate alone (ktstr's verdict), marked low-n with how many runs per side
//!    would let the rank test decide.
//!
//! A significant finding keeps the dual gate's direction; one that is not becomes `noise`.
//! Under `--gate dual` nothing is tested: every finding keeps ktstr's verdict.

use std::collections::HashMap;

use super::history::{self, NoiseModel};
use super::hodges_lehmann;
use super::mwu::{self, MwuCache};
use super::settings::{CONFIDENCE, GateMode, NoiseSettings};
use super::{fdr, wilcoxon};
use crate::compare::verdict::{Finding, SampleStats};

/// Runs per side from which the rank test can decide.
pub const RANK_TEST_MIN_PER_SIDE: usize = 4;

/// The test identity a history series belongs to (with a metric name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Series {
    pub scenario: String,
    pub topology: String,
    pub scheduler: String,
    pub work_type: String,
}

/// Noise models per (series, metric name).
pub type HistoryModels = HashMap<(Series, &'static str), NoiseModel>;

/// How a finding's noise was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Mwu,
    History,
    /// Paired runs: the Wilcoxon signed-rank test on per-pair log ratios.
    Wilcoxon,
    DualGateOnly,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Mwu => "mwu",
            Method::History => "history",
            Method::Wilcoxon => "wilcoxon",
            Method::DualGateOnly => "dual-gate-only",
        }
    }
}

/// The final verdict of a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Regression,
    Improvement,
    Unchanged,
    /// The magnitude gate fired but the noise gate found the change within the noise.
    Noise,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Noise => "noise",
        }
    }
}

/// B against A in percent, with the exact interval when the samples allow one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub pct: f64,
    pub ci_pct: Option<(f64, f64)>,
}

/// What the noise gate found for one finding.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseResult {
    pub method: Method,
    pub p_value: Option<f64>,
    /// The BH-adjusted p, under `--fdr`.
    pub adjusted_p: Option<f64>,
    pub change: Option<Change>,
    /// The noise gate could not decide; the verdict is the dual gate's.
    pub low_n: bool,
}

impl NoiseResult {
    /// Before assessment: the dual gate's verdict, nothing tested.
    pub fn untested(n_a: usize, n_b: usize) -> Self {
        NoiseResult {
            method: Method::DualGateOnly,
            p_value: None,
            adjusted_p: None,
            change: None,
            low_n: !mwu::applies(n_a, n_b),
        }
    }
}

/// The % change of `b` against `a`: on the log scale when every value is positive (exp of
/// the Hodges-Lehmann log shift, minus 1), else the linear shift over A's median; `None`
/// when A's median is zero and a log is impossible.
pub fn change(a: &[f64], b: &[f64]) -> Option<Change> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    if a.iter().chain(b).all(|v| *v > 0.0 && v.is_finite()) {
        let (la, lb): (Vec<f64>, Vec<f64>) =
            (a.iter().map(|v| v.ln()).collect(), b.iter().map(|v| v.ln()).collect());
        let s = hodges_lehmann::shift(&la, &lb, CONFIDENCE);
        let pct = |x: f64| x.exp_m1() * 100.0;
        return Some(Change {
            pct: pct(s.estimate),
            ci_pct: s.interval.map(|(lo, hi)| (pct(lo), pct(hi))),
        });
    }
    let median = SampleStats::of(a).median;
    if median.abs() <= f64::EPSILON {
        return None;
    }
    let s = hodges_lehmann::shift(a, b, CONFIDENCE);
    let pct = |x: f64| x / median.abs() * 100.0;
    Some(Change { pct: pct(s.estimate), ci_pct: s.interval.map(|(lo, hi)| (pct(lo), pct(hi))) })
}

/// The Hodges-Lehmann log shift, when every value is positive.
fn log_shift(a: &[f64], b: &[f64]) -> Option<f64> {
    if !a.iter().chain(b).all(|v| *v > 0.0 && v.is_finite()) {
        return None;
    }
    let (la, lb): (Vec<f64>, Vec<f64>) =
        (a.iter().map(|v| v.ln()).collect(), b.iter().map(|v| v.ln()).collect());
    Some(hodges_lehmann::shift(&la, &lb, CONFIDENCE).estimate)
}

/// Per-pair log ratios of paired runs, when every value is positive.
pub fn paired_log_ratios(pairs: &[(f64, f64)]) -> Option<Vec<f64>> {
    pairs.iter().map(|&(a, b)| (a > 0.0 && b > 0.0).then(|| (b / a).ln())).collect()
}

/// One finding's test before the family step: method, p, and whether it passes alone.
struct Tested {
    method: Method,
    p: Option<f64>,
    significant_alone: bool,
}

fn test_one(
    f: &Finding,
    settings: &NoiseSettings,
    models: &HistoryModels,
    cache: &mut MwuCache,
) -> Tested {
    let (a, b) = (&f.a_values, &f.b_values);
    if let Some(pairs) = &f.paired
        && wilcoxon::applies(pairs.len())
        && let Some(ratios) = paired_log_ratios(pairs)
    {
        let p = wilcoxon::p_value(&ratios);
        return Tested {
            method: Method::Wilcoxon,
            p: Some(p),
            significant_alone: p < settings.alpha,
        };
    }
    if mwu::applies(a.len(), b.len()) {
        let p = cache.p_value(a, b);
        return Tested { method: Method::Mwu, p: Some(p), significant_alone: p < settings.alpha };
    }
    let model = models.get(&(f.series.clone(), f.metric));
    if let (Some(model), Some(shift)) = (model, log_shift(a, b)) {
        let t = history::test(*model, shift, a.len(), b.len());
        return Tested {
            method: Method::History,
            p: Some(t.p_value),
            significant_alone: t.significant,
        };
    }
    Tested { method: Method::DualGateOnly, p: None, significant_alone: false }
}

/// Judge every finding under `settings`, setting its noise result and verdict.
pub fn assess(findings: &mut [Finding], settings: &NoiseSettings, models: &HistoryModels) {
    assess_with(findings, settings, models, &mut MwuCache::default());
}

/// [`assess`] with a caller's table cache, for callers that assess many times (calibration).
pub fn assess_with(
    findings: &mut [Finding],
    settings: &NoiseSettings,
    models: &HistoryModels,
    cache: &mut MwuCache,
) {
    for f in findings.iter_mut() {
        f.noise.change = change(&f.a_values, &f.b_values);
    }
    if settings.gate == GateMode::Dual {
        return;
    }
    let tested: Vec<Tested> =
        findings.iter().map(|f| test_one(f, settings, models, cache)).collect();
    let family: Vec<usize> = (0..tested.len()).filter(|&i| tested[i].p.is_some()).collect();
    let adjusted: Option<Vec<f64>> = settings.fdr.map(|_| {
        let p: Vec<f64> = family.iter().map(|&i| tested[i].p.unwrap_or(1.0)).collect();
        fdr::bh_adjust(&p)
    });
    let mut adjusted_of: HashMap<usize, f64> = HashMap::new();
    if let Some(adj) = &adjusted {
        adjusted_of.extend(family.iter().copied().zip(adj.iter().copied()));
    }
    for (i, (f, t)) in findings.iter_mut().zip(&tested).enumerate() {
        let direction = if f.is_regression { Verdict::Regression } else { Verdict::Improvement };
        f.noise.method = t.method;
        f.noise.p_value = t.p;
        f.noise.adjusted_p = adjusted_of.get(&i).copied();
        f.noise.low_n = t.method == Method::DualGateOnly;
        let significant = t.significant_alone
            && match (settings.fdr, f.noise.adjusted_p) {
                (Some(q), Some(adj)) => adj <= q,
                _ => true,
            };
        f.verdict = match t.method {
            Method::DualGateOnly => direction,
            _ if significant => direction,
            _ => Verdict::Noise,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PairingKey;
    use crate::compare::verdict::SampleStats;

    fn finding(a: &[f64], b: &[f64], is_regression: bool) -> Finding {
        Finding {
            key: PairingKey(vec!["t".into()]),
            metric: "worst_p99_wake_latency_us",
            unit: "µs",
            a: 0.0,
            b: 0.0,
            delta: 0.0,
            is_regression,
            a_samples: SampleStats::of(a),
            b_samples: SampleStats::of(b),
            verdict: if is_regression { Verdict::Regression } else { Verdict::Improvement },
            noise: NoiseResult::untested(a.len(), b.len()),
            a_values: a.to_vec(),
            b_values: b.to_vec(),
            paired: None,
            series: Series {
                scenario: "t".into(),
                topology: "1n1l1c1t".into(),
                scheduler: "eevdf".into(),
                work_type: "CpuSpin".into(),
            },
        }
    }

    #[test]
    fn separated_samples_regress_and_overlapping_ones_are_noise() {
        let mut f = vec![
            finding(
                &[100.0, 101.0, 102.0, 103.0, 104.0],
                &[200.0, 201.0, 202.0, 203.0, 204.0],
                true,
            ),
            finding(
                &[100.0, 300.0, 120.0, 280.0, 110.0],
                &[290.0, 115.0, 310.0, 105.0, 270.0],
                true,
            ),
        ];
        assess(&mut f, &NoiseSettings::default(), &HistoryModels::new());
        // Two tested findings: p = 0.0079 adjusts to 0.0159, still ≤ 0.05.
        assert_eq!((f[0].verdict, f[0].noise.method), (Verdict::Regression, Method::Mwu));
        assert!((f[0].noise.p_value.unwrap() - 2.0 / 252.0).abs() < 1e-12);
        assert!(!f[0].noise.low_n);
        let c = f[0].noise.change.unwrap();
        assert!((c.pct - 98.04).abs() < 0.01, "median pairwise ratio 202/102: {c:?}");
        let (lo, hi) = c.ci_pct.unwrap();
        assert!(lo < c.pct && c.pct < hi && lo > 90.0, "{c:?}");
        assert_eq!(f[1].verdict, Verdict::Noise);
    }

    #[test]
    fn too_few_runs_fall_back_to_history_then_to_the_dual_gate() {
        let mut f = vec![
            finding(&[100.0], &[200.0], true),
            finding(&[100.0, 101.0], &[150.0, 149.0], true),
        ];
        let mut models = HistoryModels::new();
        models.insert((f[0].series.clone(), f[0].metric), NoiseModel { sigma: 0.05, pairs: 9 });
        assess(&mut f, &NoiseSettings::default(), &models);
        assert_eq!((f[0].verdict, f[0].noise.method), (Verdict::Regression, Method::History));
        assert_eq!(f[1].noise.method, Method::History, "same series, same model");
        let mut wide = HistoryModels::new();
        wide.insert((f[0].series.clone(), f[0].metric), NoiseModel { sigma: 1.0, pairs: 9 });
        assess(&mut f, &NoiseSettings::default(), &wide);
        assert_eq!(f[0].verdict, Verdict::Noise, "a 2x change inside a noise of sigma 1");
        assess(&mut f, &NoiseSettings::default(), &HistoryModels::new());
        assert_eq!((f[0].verdict, f[0].noise.method), (Verdict::Regression, Method::DualGateOnly));
        assert!(f[0].noise.low_n && f[0].noise.p_value.is_none());
    }

    #[test]
    fn the_dual_gate_mode_tests_nothing_and_keeps_the_direction() {
        let mut f = vec![finding(&[1.0, 3.0, 2.0, 4.0], &[3.0, 1.0, 4.0, 2.0], false)];
        assess(
            &mut f,
            &NoiseSettings { gate: GateMode::Dual, ..Default::default() },
            &HistoryModels::new(),
        );
        assert_eq!((f[0].verdict, f[0].noise.method), (Verdict::Improvement, Method::DualGateOnly));
        assert!(!f[0].noise.low_n, "4 per side: not low-n, just not tested");
        assert_eq!(f[0].noise.change.unwrap().pct, 0.0);
    }

    #[test]
    fn fdr_adjusts_over_the_tested_findings() {
        let sep = finding(&[1.0, 2.0, 3.0, 4.0, 5.0], &[11.0, 12.0, 13.0, 14.0, 15.0], true);
        let mixed = finding(&[1.0, 2.0, 3.0, 4.0, 5.0], &[3.5, 4.5, 5.5, 6.5, 7.5], true);
        let mut f = vec![sep, mixed];
        let settings = NoiseSettings { fdr: Some(0.05), ..Default::default() };
        assess(&mut f, &settings, &HistoryModels::new());
        let (p0, p1) = (f[0].noise.p_value.unwrap(), f[1].noise.p_value.unwrap());
        assert_eq!(f[0].noise.adjusted_p.unwrap(), (p0 * 2.0).min(p1));
        assert_eq!(f[0].verdict, Verdict::Regression);
        assert_eq!(f[1].verdict, Verdict::Noise);
    }

    #[test]
    fn zeros_and_negatives_give_a_defined_change_never_nan() {
        assert_eq!(change(&[0.0, 0.0], &[1.0, 2.0]), None);
        let c = change(&[-2.0, 2.0, 4.0], &[1.0, 5.0, 6.0]).unwrap();
        assert!(c.pct.is_finite());
        let c = change(&[0.0, 2.0, 4.0, 6.0, 8.0], &[1.0, 3.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(c.pct, 25.0, "linear: HL shift 1 over A's median 4");
        assert_eq!(change(&[], &[1.0]), None);
        assert_eq!(paired_log_ratios(&[(1.0, 2.0), (0.0, 1.0)]), None);
    }

    #[test]
    fn paired_runs_use_the_signed_rank_test_from_six_pairs() {
        let a = [100.0, 110.0, 90.0, 105.0, 95.0, 100.0];
        let b = [120.0, 130.0, 100.0, 125.0, 110.0, 121.0];
        let mut f = vec![finding(&a, &b, true)];
        f[0].paired = Some(a.iter().copied().zip(b.iter().copied()).collect());
        assess(&mut f, &NoiseSettings::default(), &HistoryModels::new());
        assert_eq!((f[0].noise.method, f[0].verdict), (Method::Wilcoxon, Verdict::Regression));
        assert_eq!(f[0].noise.p_value, Some(0.03125));
    }
}
