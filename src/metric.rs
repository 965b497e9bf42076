//! The metric registry: the 19 metrics `stats compare` gates on, with ktstr's exact names,
//! polarities, default thresholds and units (stats-reference §5), and how each is read from
//! a sidecar.
//!
//! This module knows nothing about storage or comparison. The warehouse stores each
//! registry metric's [`MetricDef::extract`] value per sidecar, in a column named as the metric
//! (its INSERT, its views and its `registry_metric` rows are generated from [`METRICS`]; a new
//! metric also needs a migration adding its column, which a warehouse test enforces); compare
//! reads the thresholds and polarity from here.

use serde::Serialize;

use crate::sidecar::SidecarResult;

/// Which direction of change is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Polarity {
    HigherBetter,
    LowerBetter,
}

impl Polarity {
    /// The label `stats list-metrics` prints.
    pub fn label(self) -> &'static str {
        match self {
            Polarity::HigherBetter => "higher",
            Polarity::LowerBetter => "lower",
        }
    }
}

/// A registered metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    pub name: &'static str,
    pub polarity: Polarity,
    /// Absolute gate: a change smaller than this is never significant. Not configurable.
    pub default_abs: f64,
    /// Relative gate as a fraction (0.25 = 25 %); overridable by `--threshold`/`--policy`.
    pub default_rel: f64,
    pub display_unit: &'static str,
    /// The raw value in a sidecar (before compare's non-finite sanitization).
    pub extract: fn(&SidecarResult) -> f64,
}

/// Below this many total iterations the wake-latency tail ratio is too noisy to compare
/// (ktstr's `WAKE_LATENCY_TAIL_RATIO_MIN_ITERATIONS`).
pub const TAIL_RATIO_MIN_ITERATIONS: f64 = 100.0;

macro_rules! def {
    ($name:literal, $pol:ident, $abs:expr, $rel:expr, $unit:literal, |$s:ident| $read:expr) => {
        MetricDef {
            name: $name,
            polarity: Polarity::$pol,
            default_abs: $abs,
            default_rel: $rel,
            display_unit: $unit,
            extract: {
                fn read($s: &SidecarResult) -> f64 {
                    $read
                }
                read
            },
        }
    };
}

/// The registry, in ktstr's order (which is also the order findings are reported in).
pub static METRICS: [MetricDef; 19] = [
    def!("worst_spread", LowerBetter, 5.0, 0.25, "%", |s| s.stats.worst_spread),
    def!("worst_gap_ms", LowerBetter, 500.0, 0.50, "ms", |s| s.stats.worst_gap_ms as f64),
    def!("total_migrations", LowerBetter, 10.0, 0.30, "", |s| s.stats.total_migrations as f64),
    def!("worst_migration_ratio", LowerBetter, 0.05, 0.20, "", |s| s.stats.worst_migration_ratio),
    def!("max_imbalance_ratio", LowerBetter, 1.0, 0.25, "x", |s| {
        s.monitor.as_ref().map_or(0.0, |m| m.max_imbalance_ratio)
    }),
    def!("max_dsq_depth", LowerBetter, 10.0, 0.50, "", |s| {
        s.monitor.as_ref().map_or(0.0, |m| m.max_local_dsq_depth as f64)
    }),
    def!("stall_count", LowerBetter, 1.0, 0.50, "", |s| {
        s.monitor.as_ref().map_or(0.0, |m| if m.stall_detected { 1.0 } else { 0.0 })
    }),
    def!("total_fallback", LowerBetter, 5.0, 0.30, "", |s| {
        s.monitor
            .as_ref()
            .and_then(|m| m.event_deltas.as_ref())
            .map_or(0.0, |e| e.total_fallback as f64)
    }),
    def!("total_keep_last", LowerBetter, 5.0, 0.30, "", |s| {
        s.monitor
            .as_ref()
            .and_then(|m| m.event_deltas.as_ref())
            .map_or(0.0, |e| e.total_dispatch_keep_last as f64)
    }),
    def!("worst_p99_wake_latency_us", LowerBetter, 50.0, 0.25, "µs", |s| {
        s.stats.worst_p99_wake_latency_us
    }),
    def!("worst_median_wake_latency_us", LowerBetter, 20.0, 0.25, "µs", |s| {
        s.stats.worst_median_wake_latency_us
    }),
    def!("worst_wake_latency_cv", LowerBetter, 0.10, 0.25, "", |s| s.stats.worst_wake_latency_cv),
    def!("total_iterations", HigherBetter, 100.0, 0.10, "", |s| s.stats.total_iterations as f64),
    def!("worst_mean_run_delay_us", LowerBetter, 50.0, 0.25, "µs", |s| {
        s.stats.worst_mean_run_delay_us
    }),
    def!("worst_run_delay_us", LowerBetter, 100.0, 0.50, "µs", |s| s.stats.worst_run_delay_us),
    def!("worst_wake_latency_tail_ratio", LowerBetter, 0.5, 0.25, "x", |s| {
        s.stats.worst_wake_latency_tail_ratio
    }),
    def!("worst_iterations_per_worker", HigherBetter, 10.0, 0.10, "", |s| {
        s.stats.worst_iterations_per_worker
    }),
    def!("worst_page_locality", HigherBetter, 0.05, 0.10, "", |s| s.stats.worst_page_locality),
    def!("worst_cross_node_migration_ratio", LowerBetter, 0.05, 0.20, "", |s| {
        s.stats.worst_cross_node_migration_ratio
    }),
];

/// Look a metric up by its exact name.
pub fn metric_def(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

/// Comma-separated registry names, for error messages that list the valid choices.
pub fn metric_names_list() -> String {
    METRICS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_has_nineteen_unique_names_in_reference_order() {
        let names: Vec<_> = METRICS.iter().map(|m| m.name).collect();
        assert_eq!(names.len(), 19);
        assert_eq!(names[0], "worst_spread");
        assert_eq!(names[12], "total_iterations");
        assert_eq!(names[18], "worst_cross_node_migration_ratio");
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 19);
    }

    #[test]
    fn higher_better_metrics_are_exactly_the_reference_three() {
        let higher: Vec<_> = METRICS
            .iter()
            .filter(|m| m.polarity == Polarity::HigherBetter)
            .map(|m| m.name)
            .collect();
        assert_eq!(
            higher,
            ["total_iterations", "worst_iterations_per_worker", "worst_page_locality"]
        );
    }

    #[test]
    fn monitor_metrics_read_zero_without_a_monitor() {
        let s = SidecarResult::empty("t");
        for name in ["max_imbalance_ratio", "max_dsq_depth", "stall_count", "total_fallback"] {
            assert_eq!((metric_def(name).unwrap().extract)(&s), 0.0);
        }
    }
}
