//! Judging a run against its [`Thresholds`] on the host backend: each set threshold is checked
//! the way its entry in `ktstr-decl`'s list says ([`Check`]), in list order, and the ones the
//! host cannot evaluate are named instead.
//!
//! Every failure reason this module writes starts with `{threshold name}: `, so
//! [`failed_threshold`] can tell which threshold a reason belongs to. Merging thresholds is
//! [`super::thresholds`]'s job; what happens with the verdict is [`super::runner`]'s.

use ktstr_decl::thresholds::{Check, Measure, Rate, Threshold};

use super::entry::AssertResult;
use super::measure::WorkerReport;
use super::record::CgroupRun;
use super::thresholds::Thresholds;
use crate::sidecar::model::ScenarioStats;

/// Spread and gap limits `not_starved` implies (ktstr: 15 % / 2000 ms release, 35 % /
/// 3000 ms debug builds).
pub(crate) fn starvation_limits() -> (f64, u64) {
    if cfg!(debug_assertions) { (35.0, 3000) } else { (15.0, 2000) }
}

/// Fail `verdict` for each threshold the stats break; return the names of set thresholds the
/// host backend cannot evaluate.
pub(crate) fn apply_thresholds(
    t: &Thresholds,
    verdict: &mut AssertResult,
    runs: &[CgroupRun],
) -> Vec<String> {
    let stats = verdict.stats.clone();
    let mut not_evaluated = Vec::new();
    for (threshold, value) in t.set().filter(|(_, v)| v.is_on()) {
        let mut fail_unless = |ok: bool, detail: &dyn Fn() -> String| {
            verdict.check(ok, || format!("{}: {}", threshold.name, detail()));
        };
        match threshold.check {
            Check::Starvation => check_not_starved(&stats, runs, &mut fail_unless),
            Check::Isolation => check_isolation(runs, &mut fail_unless),
            Check::WorstAtMost(m) => {
                let (worst, decimals) = worst(&stats, m);
                fail_unless(worst <= value.as_f64(), &|| format!("{worst:.decimals$} > {value}"));
            }
            Check::EveryWorkerAtLeast(r) => {
                let unit = match r {
                    Rate::IterationsPerSecond => "/s",
                    Rate::WorkUnitsPerCpuSecond => "/cpu-s",
                };
                for run in runs {
                    for w in &run.reports {
                        let rate = rate(w, r);
                        fail_unless(rate >= value.as_f64(), &|| {
                            format!("cgroup {}: {rate:.1}{unit} < {value}", run.name)
                        });
                    }
                }
            }
            Check::EveryCgroupThroughputCvAtMost => {
                for run in runs {
                    let rates: Vec<f64> =
                        run.reports.iter().map(|w| rate(w, Rate::IterationsPerSecond)).collect();
                    let cv = f64_cv(&rates);
                    fail_unless(cv <= value.as_f64(), &|| {
                        format!("cgroup {}: {cv:.3} > {value}", run.name)
                    });
                }
            }
            Check::Modifier => {}
            // Monitor, sched_ext and NUMA checks: the host backend has no data for them.
            Check::NotOnHost => not_evaluated.push(threshold.name.to_string()),
        }
    }
    not_evaluated
}

/// The threshold a failure reason written by [`apply_thresholds`] belongs to.
pub(crate) fn failed_threshold(reason: &str) -> Option<&'static Threshold> {
    ktstr_decl::thresholds::find(reason.split_once(": ")?.0)
}

type FailUnless<'a> = dyn FnMut(bool, &dyn Fn() -> String) + 'a;

fn check_not_starved(s: &ScenarioStats, runs: &[CgroupRun], fail_unless: &mut FailUnless<'_>) {
    let (spread, gap) = starvation_limits();
    for r in runs {
        for (i, w) in r.reports.iter().enumerate() {
            fail_unless(w.work_units > 0, &|| {
                format!("worker {i} of cgroup {} in step {} did no work", r.name, r.step)
            });
        }
    }
    fail_unless(s.worst_spread < spread, &|| {
        format!("spread {:.1}% is not below {spread}%", s.worst_spread)
    });
    fail_unless(s.worst_gap_ms < gap, &|| {
        format!("gap {} ms on CPU {} is not below {gap} ms", s.worst_gap_ms, s.worst_gap_cpu)
    });
}

fn check_isolation(runs: &[CgroupRun], fail_unless: &mut FailUnless<'_>) {
    for r in runs {
        let Some(allowed) = &r.cpus else { continue };
        for w in &r.reports {
            let bad: Vec<usize> =
                w.cpus_used.iter().copied().filter(|c| !allowed.contains(c)).collect();
            fail_unless(bad.is_empty(), &|| {
                format!(
                    "cgroup {} in step {} ran on CPUs {bad:?} outside {allowed:?}",
                    r.name, r.step
                )
            });
        }
    }
}

/// The scenario's worst value of `m`, and the decimals its failure reason shows.
fn worst(s: &ScenarioStats, m: Measure) -> (f64, usize) {
    match m {
        Measure::GapMs => (s.worst_gap_ms as f64, 0),
        Measure::P99WakeLatencyNs => (s.worst_p99_wake_latency_us * 1000.0, 0),
        Measure::SpreadPct => (s.worst_spread, 2),
        Measure::WakeLatencyCv => (s.worst_wake_latency_cv, 3),
        Measure::MigrationRatio => (s.worst_migration_ratio, 4),
    }
}

fn rate(w: &WorkerReport, r: Rate) -> f64 {
    match r {
        Rate::IterationsPerSecond => w.iterations as f64 / (w.wall_time_ns.max(1) as f64 / 1e9),
        Rate::WorkUnitsPerCpuSecond => w.work_units as f64 / (w.cpu_time_ns.max(1) as f64 / 1e9),
    }
}

fn f64_cv(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt() / mean
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every threshold set, every host check failing at least once.
    fn every_check_fixture() -> (Thresholds, AssertResult, Vec<CgroupRun>) {
        let w = |work_units, iterations, cpu_ms: u64, wall_ms: u64, cpus: &[usize]| WorkerReport {
            work_units,
            iterations,
            cpu_time_ns: cpu_ms * 1_000_000,
            wall_time_ns: wall_ms * 1_000_000,
            cpus_used: cpus.to_vec(),
            ..WorkerReport::default()
        };
        let runs = vec![
            CgroupRun {
                step: 0,
                name: "pinned".into(),
                cpus: Some(vec![0]),
                reports: vec![w(0, 10, 500, 1000, &[0, 1]), w(300, 30, 1000, 1000, &[0])],
            },
            CgroupRun {
                step: 1,
                name: "free".into(),
                cpus: None,
                reports: vec![w(70, 7, 700, 1000, &[2]), w(5, 1, 250, 1000, &[3])],
            },
        ];
        let stats = ScenarioStats {
            worst_gap_ms: 5000,
            worst_gap_cpu: 3,
            worst_spread: 47.256,
            worst_p99_wake_latency_us: 12.3456,
            worst_wake_latency_cv: 0.98765,
            worst_migration_ratio: 0.123456,
            ..ScenarioStats::default()
        };
        let t = Thresholds {
            not_starved: Some(true),
            isolation: Some(true),
            fail_on_stall: Some(true),
            max_gap_ms: Some(100),
            max_local_dsq_depth: Some(3),
            sustained_samples: Some(2),
            max_p99_wake_latency_ns: Some(5000),
            max_spread_pct: Some(10.0),
            max_imbalance_ratio: Some(1.5),
            max_throughput_cv: Some(0.1),
            min_work_rate: Some(250.5),
            max_fallback_rate: Some(0.0),
            max_keep_last_rate: Some(1.0),
            max_wake_latency_cv: Some(0.5),
            min_iteration_rate: Some(20.0),
            max_migration_ratio: Some(0.1),
            min_page_locality: Some(0.9),
            max_cross_node_migration_ratio: Some(0.2),
            max_slow_tier_ratio: Some(0.3),
        };
        (t, AssertResult::pass(stats), runs)
    }

    /// The wording of every reason, as the checks wrote it before they were driven by the
    /// list; they now come in list order.
    #[test]
    fn every_check_words_its_failure_as_before() {
        let (t, mut v, runs) = every_check_fixture();
        let ne = apply_thresholds(&t, &mut v, &runs);
        let (spread, gap) = starvation_limits();
        let want = [
            "not_starved: worker 0 of cgroup pinned in step 0 did no work".to_string(),
            format!("not_starved: spread 47.3% is not below {spread}%"),
            format!("not_starved: gap 5000 ms on CPU 3 is not below {gap} ms"),
            "isolation: cgroup pinned in step 0 ran on CPUs [1] outside [0]".into(),
            "max_gap_ms: 5000 > 100".into(),
            "max_p99_wake_latency_ns: 12346 > 5000".into(),
            "max_spread_pct: 47.26 > 10".into(),
            "max_throughput_cv: cgroup pinned: 0.500 > 0.1".into(),
            "max_throughput_cv: cgroup free: 0.750 > 0.1".into(),
            "min_work_rate: cgroup pinned: 0.0/cpu-s < 250.5".into(),
            "min_work_rate: cgroup free: 100.0/cpu-s < 250.5".into(),
            "min_work_rate: cgroup free: 20.0/cpu-s < 250.5".into(),
            "max_wake_latency_cv: 0.988 > 0.5".into(),
            "min_iteration_rate: cgroup pinned: 10.0/s < 20".into(),
            "min_iteration_rate: cgroup free: 7.0/s < 20".into(),
            "min_iteration_rate: cgroup free: 1.0/s < 20".into(),
            "max_migration_ratio: 0.1235 > 0.1".into(),
        ];
        assert_eq!(v.reasons, want);
        assert!(!v.passed);
        let unevaluable = [
            "fail_on_stall",
            "max_local_dsq_depth",
            "max_imbalance_ratio",
            "max_fallback_rate",
            "max_keep_last_rate",
            "min_page_locality",
            "max_cross_node_migration_ratio",
            "max_slow_tier_ratio",
        ];
        assert_eq!(ne, unevaluable);
        for r in &v.reasons {
            let name = failed_threshold(r).map(|t| t.name);
            assert_eq!(name, r.split(':').next(), "{r}");
        }
        assert_eq!(failed_threshold("the body failed: on purpose"), None);
    }

    #[test]
    fn bool_checks_set_to_false_check_nothing() {
        let (_, _, runs) = every_check_fixture();
        let off = Thresholds {
            not_starved: Some(false),
            isolation: Some(false),
            fail_on_stall: Some(false),
            ..Thresholds::NONE
        };
        let mut v = AssertResult::pass(ScenarioStats { worst_spread: 99.0, ..Default::default() });
        assert!(apply_thresholds(&off, &mut v, &runs).is_empty());
        assert!(v.passed && v.reasons.is_empty(), "{:?}", v.reasons);
    }

    #[test]
    fn thresholds_fail_and_report_unevaluable() {
        let mut v = AssertResult::pass(ScenarioStats {
            worst_gap_ms: 50,
            worst_spread: 40.0,
            ..ScenarioStats::default()
        });
        let t = Thresholds {
            max_gap_ms: Some(10),
            max_imbalance_ratio: Some(2.0),
            ..Thresholds::default_checks()
        };
        let ne = apply_thresholds(&t, &mut v, &[]);
        assert!(!v.passed);
        assert!(v.reasons.iter().any(|r| r.starts_with("max_gap_ms: 50 > 10")));
        assert!(v.reasons.iter().any(|r| r.starts_with("not_starved: spread")));
        assert_eq!(ne, vec!["max_imbalance_ratio".to_string()]);
    }
}
