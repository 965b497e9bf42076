//! Walking the pairs: counters and findings (§4.7), with the `-E` filter scoped exactly as in
//! ktstr (§4.6): it narrows only the counters and findings, never the averaging.
//!
//! This is the dual gate's walk: every finding leaves here with ktstr's verdict and the
//! samples behind it; [`super::noise::assess`] may then turn a finding into `noise`, and
//! [`Summary::recount`] brings the counters in line with the final verdicts.

use std::collections::HashMap;

use super::gate::{Gate, gate_baseline};
use super::noise::{NoiseResult, Series, Verdict};
use super::pairing::filter_haystack;
use super::{ComparisonPolicy, Group, PairingKey};
use crate::metric::{METRICS, MetricDef};

/// n, mean and median of one metric's samples on one side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleStats {
    pub n: usize,
    pub mean: f64,
    pub median: f64,
}

impl SampleStats {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return SampleStats { n, mean: 0.0, median: 0.0 };
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let median =
            if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        SampleStats { n, mean: values.iter().sum::<f64>() / n as f64, median }
    }
}

/// One significant change.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: PairingKey,
    pub metric: &'static str,
    pub unit: &'static str,
    /// The values the gate used (group means, integers rounded).
    pub a: f64,
    pub b: f64,
    pub delta: f64,
    /// The dual gate's direction: the change is in the worse direction.
    pub is_regression: bool,
    pub a_samples: SampleStats,
    pub b_samples: SampleStats,
    /// The final verdict: the dual gate's, unless the noise gate found the change in the
    /// noise.
    pub verdict: Verdict,
    pub noise: NoiseResult,
    /// The per-run values behind the samples (passing runs, in pool order).
    pub a_values: Vec<f64>,
    pub b_values: Vec<f64>,
    /// `(a, b)` per interleaved A/B pair, when the runs record their pairing.
    pub paired: Option<Vec<(f64, f64)>>,
    /// The test identity whose history models this metric's noise.
    pub series: Series,
}

impl Finding {
    /// A metric the dual gate flagged, as the noise gate receives it: means `a`/`b` with the
    /// samples behind them, verdict the dual gate's, untested, unpaired.
    pub fn dual_gate_hit(
        key: PairingKey,
        def: &MetricDef,
        (a, a_values): (f64, Vec<f64>),
        (b, b_values): (f64, Vec<f64>),
        is_regression: bool,
        series: Series,
    ) -> Finding {
        Finding {
            key,
            metric: def.name,
            unit: def.display_unit,
            a,
            b,
            delta: b - a,
            is_regression,
            a_samples: SampleStats::of(&a_values),
            b_samples: SampleStats::of(&b_values),
            verdict: if is_regression { Verdict::Regression } else { Verdict::Improvement },
            noise: NoiseResult::untested(a_values.len(), b_values.len()),
            paired: None,
            series,
            a_values,
            b_values,
        }
    }

    /// A regression the noise gate could not check (too few runs, no history).
    pub fn is_low_n_regression(&self) -> bool {
        self.verdict == Verdict::Regression && self.noise.low_n
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub regressions: usize,
    pub improvements: usize,
    pub unchanged: usize,
    pub skipped_failed: usize,
    pub new_in_b: usize,
    pub removed_from_a: usize,
    /// Findings the magnitude gate flagged and the noise gate found within the noise.
    pub noise: usize,
    /// Regressions only the dual gate decided (`low-n`).
    pub low_n_regressions: usize,
}

impl Summary {
    /// Regression, improvement and noise counts from the findings' final verdicts.
    pub fn recount(&mut self, findings: &[Finding]) {
        let count = |v: Verdict| findings.iter().filter(|f| f.verdict == v).count();
        self.regressions = count(Verdict::Regression);
        self.improvements = count(Verdict::Improvement);
        self.noise = count(Verdict::Noise);
        self.low_n_regressions = findings.iter().filter(|f| f.is_low_n_regression()).count();
    }

    /// Key × metric tests the gates judged (a both-zero metric is not a test).
    pub fn tests(&self) -> usize {
        self.regressions + self.improvements + self.unchanged + self.noise
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    pub summary: Summary,
    pub findings: Vec<Finding>,
}

/// Pair B groups with A groups by key and gate every registry metric. When a side holds two
/// groups with one key (only possible from library callers) the first A match wins.
pub fn compare_groups(
    a: &[Group],
    b: &[Group],
    policy: &ComparisonPolicy,
    filter: Option<&str>,
) -> Comparison {
    let included = |g: &Group| filter.is_none_or(|f| filter_haystack(&g.first).contains(f));
    let mut a_by_key: HashMap<&PairingKey, &Group> = HashMap::new();
    for g in a.iter().filter(|g| included(g)) {
        a_by_key.entry(&g.key).or_insert(g);
    }
    let mut out = Comparison::default();
    let s = &mut out.summary;
    for gb in b.iter().filter(|g| included(g)) {
        let Some(ga) = a_by_key.get(&gb.key) else {
            s.new_in_b += 1;
            continue;
        };
        if !ga.passed || ga.skipped || !gb.passed || gb.skipped {
            s.skipped_failed += 1;
            continue;
        }
        for (i, def) in METRICS.iter().enumerate() {
            let measured_a = ga.read(i);
            let va = measured_a.unwrap_or(0.0);
            let vb = gb.read(i).unwrap_or(0.0);
            let rel = policy.rel_threshold(def.name, def.default_rel);
            let verdict = gate_baseline(def, measured_a, vb, rel);
            match verdict {
                Gate::BothZero => continue,
                Gate::Unchanged => {
                    s.unchanged += 1;
                    continue;
                }
                Gate::Regression => s.regressions += 1,
                Gate::Improvement => s.improvements += 1,
            }
            let mut finding = Finding::dual_gate_hit(
                gb.key.clone(),
                def,
                (va, ga.sample_values(i)),
                (vb, gb.sample_values(i)),
                verdict == Gate::Regression,
                series_of(gb),
            );
            finding.paired = ga.paired_values(gb, i);
            out.findings.push(finding);
        }
    }
    let b_keys: std::collections::HashSet<&PairingKey> =
        b.iter().filter(|g| included(g)).map(|g| &g.key).collect();
    s.removed_from_a = a.iter().filter(|g| included(g) && !b_keys.contains(&g.key)).count();
    out
}

/// The history series of a group: its test identity.
pub fn series_of(g: &Group) -> Series {
    series_of_row(&g.first)
}

/// The history series of a run: its test identity.
pub fn series_of_row(r: &super::Row) -> Series {
    Series {
        scenario: r.scenario.clone(),
        topology: r.topology.clone(),
        scheduler: r.scheduler.clone(),
        work_type: r.work_type.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Dim, Row, average_side};

    fn groups(rows: &[Row]) -> Vec<Group> {
        average_side(rows, &[Dim::Scheduler, Dim::Flags])
    }

    #[test]
    fn regression_finding_carries_means_and_samples() {
        let a = groups(&[
            Row::new("t").with_metric("worst_spread", 10.0),
            Row::new("t").with_metric("worst_spread", 12.0),
        ]);
        let b = groups(&[Row::new("t").with_metric("worst_spread", 30.0)]);
        let c = compare_groups(&a, &b, &ComparisonPolicy::default(), None);
        assert_eq!(c.summary.regressions, 1);
        let f = &c.findings[0];
        assert_eq!((f.metric, f.a, f.b, f.delta), ("worst_spread", 11.0, 30.0, 19.0));
        assert_eq!(f.a_samples, SampleStats { n: 2, mean: 11.0, median: 11.0 });
        assert_eq!(f.b_samples.n, 1);
    }

    #[test]
    fn compare_rows_skipped_side_drops_pair_into_skipped_failed() {
        let mut skipped = Row::new("t").with_metric("worst_spread", 90.0);
        skipped.skipped = true;
        let c = compare_groups(
            &groups(&[Row::new("t")]),
            &groups(&[skipped]),
            &ComparisonPolicy::default(),
            None,
        );
        assert_eq!(c.summary, Summary { skipped_failed: 1, ..Default::default() });
    }

    #[test]
    fn compare_rows_handles_none_from_accessor_as_zero() {
        // Tail ratio suppressed on both sides (< 100 iterations, no ext fallback): read as 0,
        // so it is skipped silently rather than reported.
        let a = groups(&[Row::new("t").with_metric("worst_wake_latency_tail_ratio", 1.0)]);
        let b = groups(&[Row::new("t").with_metric("worst_wake_latency_tail_ratio", 9.0)]);
        let c = compare_groups(&a, &b, &ComparisonPolicy::default(), None);
        assert_eq!(c.summary, Summary::default());
    }

    #[test]
    fn compare_rows_duplicate_key_first_match_wins() {
        let a = vec![
            groups(&[Row::new("t").with_metric("worst_spread", 10.0)]).remove(0),
            groups(&[Row::new("t").with_metric("worst_spread", 100.0)]).remove(0),
        ];
        let b = groups(&[Row::new("t").with_metric("worst_spread", 20.0)]);
        let c = compare_groups(&a, &b, &ComparisonPolicy::default(), None);
        assert_eq!(c.findings[0].a, 10.0);
        assert!(c.findings[0].is_regression);
    }

    #[test]
    fn compare_rows_same_key_different_flags_do_not_collide() {
        let mut fa = Row::new("t").with_metric("worst_spread", 10.0);
        fa.flags = vec!["llc".into()];
        let fb = Row::new("t").with_metric("worst_spread", 50.0);
        let c = compare_groups(
            &groups(std::slice::from_ref(&fa)),
            &groups(&[fb]),
            &ComparisonPolicy::default(),
            None,
        );
        assert_eq!(c.summary, Summary { new_in_b: 1, removed_from_a: 1, ..Default::default() });
    }

    #[test]
    fn compare_rows_filter_substring_matches_scheduler_and_scopes_new_and_removed() {
        let mut lavd = Row::new("t").with_metric("worst_spread", 10.0);
        lavd.scheduler = "scx_lavd".into();
        let lavd_b = lavd.clone().with_metric("worst_spread", 50.0);
        let mut only_a = Row::new("gone");
        only_a.scheduler = "scx_lavd".into();
        let mut only_b = Row::new("fresh");
        only_b.scheduler = "scx_rusty".into();
        let a = groups(&[lavd, only_a]);
        let b = groups(&[lavd_b, only_b]);
        let p = ComparisonPolicy::default();
        let c = compare_groups(&a, &b, &p, Some("scx_lavd"));
        assert_eq!(
            c.summary,
            Summary { regressions: 1, removed_from_a: 1, new_in_b: 0, ..Default::default() }
        );
        let c = compare_groups(&a, &b, &p, Some("scx_rusty"));
        assert_eq!(c.summary, Summary { new_in_b: 1, ..Default::default() });
        // Kernel, commits and run source are not in the haystack.
        let c = compare_groups(&a, &b, &p, Some("CpuSpin "));
        assert_eq!(c.summary.regressions, 1);
    }

    #[test]
    fn sample_median_is_the_midpoint_for_even_n() {
        assert_eq!(SampleStats::of(&[4.0, 1.0, 3.0, 2.0]).median, 2.5);
        assert_eq!(SampleStats::of(&[]).n, 0);
    }
}
