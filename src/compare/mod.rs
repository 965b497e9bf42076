//! A/B comparison: pure logic over rows the warehouse returns; no SQL text, no I/O, no clap.
//!
//! The pipeline (stats-reference §4.1) is split by concern:
//! - [`filter`]: per-side value lists per dimension and whether a row matches them.
//! - [`slicing`]: which dimensions separate A from B, and the side labels.
//! - [`pairing`]: the key that joins an A group to a B group, and the `-E` haystack.
//! - [`average`]: per side and key, the pooled samples and their means.
//! - [`gate`]: the comparison policy and the dual (absolute and relative) gate.
//! - [`verdict`]: walking the pairs into counters and findings (the dual gate's verdicts).
//! - [`noise`]: the noise gate over those findings: exact rank tests, Hodges-Lehmann
//!   intervals, the history noise model, BH; the final verdicts.
//! - [`hygiene`]: warnings about how the two sides were collected (drift, hosts, load).
//! - [`calibrate`]: A/A splits of one side, for `stats calibrate`.
//! - [`revspec`]: turning `HEAD~1`, branches and ranges into commit filter values (gix).
//! - [`diagnostics`]: zero-match messages, the dirty-build and stale-dirty warnings.
//! - [`host_delta`]: how the two sides' hosts differ, field by field.
//! - [`source`]: the [`RowSource`] seam rows come through, and the pool's scope and facts.
//! - [`trend`]: one metric across commits (`stats history`): per-commit medians and steps.
//! - [`pipeline`]: [`run`], the whole comparison from options to report.
//!
//! Loading rows is a [`RowSource`]'s job (the warehouse implements it in
//! `crate::warehouse::compare_rows`); rendering is `crate::report::compare`; the command
//! line is `crate::cli::stats::compare`.

pub mod average;
pub mod calibrate;
pub mod diagnostics;
pub mod filter;
pub mod gate;
pub mod host_delta;
pub mod hygiene;
pub mod noise;
pub mod pairing;
pub mod pipeline;
pub mod revspec;
pub mod slicing;
pub mod source;
pub mod trend;
pub mod verdict;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::metric::METRICS;

pub use crate::dimension::Dim;
pub use average::{Group, Grouped, average_side, check_no_average_duplicates};
pub use filter::{SideFilter, SideFilters};
pub use gate::ComparisonPolicy;
pub use host_delta::{HostDelta, HostFieldChange};
pub use noise::{GateMode, NoiseSettings};
pub use pairing::PairingKey;
pub use pipeline::{CompareError, CompareOptions, CompareOutcome, CompareReport, run};
pub use source::{PoolFacts, PoolScope, RowSource};
pub use verdict::{Comparison, Finding, Summary, compare_groups};

/// Which side of the contrast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub fn letter(self) -> &'static str {
        match self {
            Side::A => "A",
            Side::B => "B",
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Side::A => "a",
            Side::B => "b",
        }
    }
}

/// One sidecar as compare sees it: identity, outcome and metric values. The warehouse builds
/// these; tests build them by hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub sidecar_id: i64,
    pub scenario: String,
    pub topology: String,
    pub scheduler: String,
    pub work_type: String,
    /// Active flags in stored order.
    pub flags: Vec<String>,
    pub kernel_version: Option<String>,
    pub kernel_commit: Option<String>,
    pub project_commit: Option<String>,
    pub run_source: Option<String>,
    pub passed: bool,
    pub skipped: bool,
    /// RFC 3339 write time; orders dirty states.
    pub timestamp: String,
    pub dirty_fingerprint: Option<String>,
    /// The suite run the sidecar was written under (`provenance.run_token`).
    pub run_token: Option<String>,
    /// Which repeat of that run (`provenance.repeat`); `cargo ktstr ab` gives both sides one
    /// run token, so an A row and a B row with the same `(run_token, repeat)` are a pair.
    pub repeat: Option<u32>,
    /// The recorded host context as JSON, when the sidecar had one; shared by the rows of
    /// one host (a side's runs come from a few).
    pub host_json: Option<Arc<str>>,
    /// Registry metric values in [`METRICS`] order; `None` = stored as NULL (non-finite).
    pub metrics: [Option<f64>; METRICS.len()],
    /// Extension metrics (`stats.ext_metrics`), the accessor fallback.
    pub ext: BTreeMap<String, f64>,
}

impl Row {
    /// A passing row with every metric 0, for tests and builders.
    pub fn new(scenario: &str) -> Self {
        Row {
            sidecar_id: 0,
            scenario: scenario.to_string(),
            topology: "1n1l1c1t".to_string(),
            scheduler: "eevdf".to_string(),
            work_type: "CpuSpin".to_string(),
            flags: Vec::new(),
            kernel_version: None,
            kernel_commit: None,
            project_commit: None,
            run_source: None,
            passed: true,
            skipped: false,
            timestamp: String::new(),
            dirty_fingerprint: None,
            run_token: None,
            repeat: None,
            host_json: None,
            metrics: [Some(0.0); METRICS.len()],
            ext: BTreeMap::new(),
        }
    }

    /// Set one registry metric by name (test and builder helper).
    ///
    /// # Panics
    /// When `name` is not a registry metric: a programming error in the caller.
    pub fn with_metric(mut self, name: &str, value: f64) -> Self {
        let idx = metric_index(name).unwrap_or_else(|| panic!("unknown metric {name}"));
        self.metrics[idx] = Some(value);
        self
    }

    /// The value of one dimension as a filterable string (`None` = null).
    pub fn dim_value(&self, dim: Dim) -> Option<&str> {
        match dim {
            Dim::Kernel => self.kernel_version.as_deref(),
            Dim::Scheduler => Some(&self.scheduler),
            Dim::Topology => Some(&self.topology),
            Dim::WorkType => Some(&self.work_type),
            Dim::ProjectCommit => self.project_commit.as_deref(),
            Dim::KernelCommit => self.kernel_commit.as_deref(),
            Dim::RunSource => self.run_source.as_deref(),
            // Flags are a set, matched separately.
            Dim::Flags => None,
        }
    }

    /// Counted as a pass: passed and not skipped.
    pub fn is_pass(&self) -> bool {
        self.passed && !self.skipped
    }
}

/// Position of a registry metric in [`METRICS`].
pub fn metric_index(name: &str) -> Option<usize> {
    METRICS.iter().position(|m| m.name == name)
}

/// Registry metrics whose ktstr row field is an integer: their means are rounded half away
/// from zero (§4.5).
pub fn is_integer_metric(name: &str) -> bool {
    matches!(
        name,
        "worst_gap_ms"
            | "total_migrations"
            | "max_dsq_depth"
            | "stall_count"
            | "total_fallback"
            | "total_keep_last"
            | "total_iterations"
    )
}

/// Replace `None`/NaN/±inf registry values with 0 (ktstr's `finite_or_zero`) and drop
/// non-finite ext values. Returns how many values were replaced or dropped, so the caller
/// warns once.
pub fn sanitize_rows(rows: &mut [Row]) -> usize {
    let mut replaced = 0;
    for row in rows {
        for v in row.metrics.iter_mut() {
            if !v.is_some_and(f64::is_finite) {
                *v = Some(0.0);
                replaced += 1;
            }
        }
        let before = row.ext.len();
        row.ext.retain(|k, v| v.is_finite() && k != WALK_TRUNCATED_SENTINEL);
        replaced += before - row.ext.len();
    }
    replaced
}

/// ktstr's walker sentinel key in `ext_metrics`; never a metric.
pub const WALK_TRUNCATED_SENTINEL: &str = "__walk_json_leaves_truncated";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_zeros_nan_and_infinities_and_counts_them() {
        let mut rows = vec![
            Row::new("t")
                .with_metric("worst_spread", f64::NAN)
                .with_metric("worst_run_delay_us", f64::INFINITY)
                .with_metric("worst_page_locality", f64::NEG_INFINITY),
        ];
        rows[0].metrics[1] = None;
        rows[0].ext.insert("x".into(), f64::NAN);
        rows[0].ext.insert("y".into(), 2.0);
        rows[0].ext.insert(WALK_TRUNCATED_SENTINEL.into(), 1.0);
        assert_eq!(sanitize_rows(&mut rows), 6);
        assert!(rows[0].metrics.iter().all(|v| *v == Some(0.0)));
        assert_eq!(rows[0].ext.keys().collect::<Vec<_>>(), ["y"]);
        assert_eq!(sanitize_rows(&mut rows), 0, "a second pass finds nothing to warn about");
    }
}
