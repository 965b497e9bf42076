//! `stats compare` as one library call: [`run`] takes a [`RowSource`] and [`CompareOptions`]
//! and returns the finished [`CompareReport`] with the warnings met on the way.
//!
//! The steps (stats-reference §4.1): select both sides, explain an empty side, sanitize
//! non-finite values, pick each side's host, drop stale dirty states, average (or check
//! `--no-average` keys), gate; then ours: the noise gate over the dual gate's findings (with
//! the history of the series too small to rank-test) and the hygiene warnings. Nothing here prints or renders: warnings come back as
//! messages for the caller to show, the report is rendered by `crate::report::compare`, and
//! turning command-line flags into options is `crate::cli::stats::compare`'s job.

use std::collections::{HashMap, HashSet};

use super::average::{self, PassCounts};
use super::host_delta::{HostDelta, first_host, host_delta};
use super::noise::{self, GateMode, HistoryModels, NoiseSettings, Verdict, history, mwu, series};
use super::{
    Comparison, ComparisonPolicy, Dim, Finding, Group, Grouped, PairingKey, PoolScope, Row,
    RowSource, Side, SideFilters, compare_groups, diagnostics, hygiene, sanitize_rows, slicing,
};

/// History rows fetched per series for its noise model: enough for the model's window of
/// replicate pairs even when some runs are not replicates of any other.
pub const HISTORY_RUNS_PER_SERIES: usize = 4 * history::WINDOW_PAIRS;

/// Everything a comparison needs besides the rows.
#[derive(Debug, Clone, Default)]
pub struct CompareOptions {
    /// Both sides' filters, shared values already applied.
    pub filters: SideFilters,
    /// The relative gate per metric.
    pub policy: ComparisonPolicy,
    /// `-E`: only pairs whose "scenario topology scheduler work_type flags" contains this.
    pub name_filter: Option<String>,
    /// Keep each sidecar distinct instead of averaging per pairing key.
    pub no_average: bool,
    /// Which sidecars form the pool.
    pub scope: PoolScope,
    /// `--gate`, `--alpha`, `--fdr`.
    pub noise: NoiseSettings,
}

impl CompareOptions {
    /// Check the options before any row is read: an error when the two sides' filters are
    /// the same (there is nothing to contrast), else the warnings about the options
    /// themselves (slicing on several dimensions at once), for the caller to show first.
    pub fn check(&self) -> Result<Vec<String>, CompareError> {
        let slicing = self.slicing()?;
        Ok(slicing::multi_slice_warning(&slicing).into_iter().collect())
    }

    /// The dimensions that separate A from B, in canonical order; never empty.
    fn slicing(&self) -> Result<Vec<Dim>, CompareError> {
        let dims = slicing::derive_slicing_dims(&self.filters);
        if dims.is_empty() {
            return Err(CompareError::usage(slicing::IDENTICAL_SIDES));
        }
        Ok(dims)
    }
}

/// A finished comparison: what the report shows.
#[derive(Debug, Clone)]
pub struct CompareReport {
    pub slicing: Vec<&'static str>,
    pub pairing: Vec<&'static str>,
    pub label_a: String,
    pub label_b: String,
    /// Typed-filtered sample counts per side (before grouping and `-E`).
    pub rows_a: usize,
    pub rows_b: usize,
    /// Whether groups were averaged (no `--no-average`).
    pub averaged: bool,
    pub comparison: Comparison,
    pub pass_counts: PassCounts,
    pub host_delta: HostDelta,
    /// The settings the verdicts were reached with.
    pub noise: NoiseSettings,
}

/// The report and the warnings about the rows it was built from.
#[derive(Debug, Clone)]
pub struct CompareOutcome {
    pub report: CompareReport,
    /// Complete messages (possibly several lines each), in the order they arose.
    pub warnings: Vec<String>,
}

/// Why a comparison produced no report.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The pool holds no sidecars at all, so no filter could have matched.
    #[error("stats compare: the pool holds no sidecar data")]
    EmptyPool,
    /// The request cannot be answered from this pool (identical sides, a side that matches
    /// nothing, duplicate keys under `--no-average`); `message` is the full text, hints
    /// included. A usage or data error: exit 2.
    #[error("{message}")]
    Usage {
        message: String,
        /// Warnings about rows already read when the request failed; show them first, as
        /// for a finished comparison.
        warnings: Vec<String>,
    },
    /// The row source failed.
    #[error(transparent)]
    Source(Box<dyn std::error::Error + Send + Sync>),
}

impl CompareError {
    fn usage(message: impl Into<String>) -> Self {
        CompareError::Usage { message: message.into(), warnings: Vec::new() }
    }
}

/// Compare the pool's A side with its B side under `options`.
pub fn run<S: RowSource>(
    source: &S,
    options: &CompareOptions,
) -> Result<CompareOutcome, CompareError> {
    let slicing = options.slicing()?;
    let pairing = slicing::pairing_dims(&slicing);
    let filters = &options.filters;
    let (mut rows_a, mut rows_b) = select_sides(source, options)?;
    let mut warnings = Vec::new();
    warnings.extend(diagnostics::non_finite_warning(
        sanitize_rows(&mut rows_a) + sanitize_rows(&mut rows_b),
    ));
    warnings.extend(diagnostics::dirty_warning(&rows_a, &rows_b));
    let label_a = slicing::side_label(filters, &slicing, Side::A);
    let label_b = slicing::side_label(filters, &slicing, Side::B);
    let host_delta = host_delta(first_host(&rows_a).as_ref(), first_host(&rows_b).as_ref());

    let (rows_a, dropped_a) = average::drop_stale_dirty_states(rows_a, &pairing);
    let (rows_b, dropped_b) = average::drop_stale_dirty_states(rows_b, &pairing);
    for (side, label, dropped) in [(Side::A, &label_a, dropped_a), (Side::B, &label_b, dropped_b)] {
        warnings.extend(diagnostics::stale_dirty_warning(side, label, dropped));
    }

    // Worked out before the rows move into their groups, shown after the verdicts.
    let mut collection = Vec::new();
    collection.extend(hygiene::unsliced_differences(&rows_a, &rows_b, &slicing));
    collection.extend(hygiene::mixed_hosts(&rows_a, &rows_b));
    collection.extend(hygiene::no_interleaving(&rows_a, &rows_b));
    let (n_a, n_b) = (rows_a.len(), rows_b.len());
    let (groups_a, groups_b) = match group_sides(rows_a, rows_b, &pairing, options.no_average) {
        Ok(groups) => groups,
        Err(message) => return Err(CompareError::Usage { message, warnings }),
    };
    let name_filter = options.name_filter.as_deref();
    if let Some(message) = diagnostics::nothing_compared(&groups_a, &groups_b, name_filter) {
        return Err(CompareError::Usage { message, warnings });
    }
    let mut comparison = compare_groups(&groups_a, &groups_b, &options.policy, name_filter);
    let read = |e: S::Error| CompareError::Source(Box::new(e));
    let models = match options.noise.gate {
        GateMode::Noise => {
            history_models(source, &options.scope, &comparison.findings).map_err(read)?
        }
        GateMode::Dual => HistoryModels::new(),
    };
    noise::assess(&mut comparison.findings, &options.noise, &models);
    comparison.summary.recount(&comparison.findings);
    warnings.extend(collection);
    let behind = runs_behind(&comparison.findings, &groups_a, &groups_b);
    let ids: Vec<i64> = behind.iter().map(|r| r.sidecar_id).collect();
    let loads =
        if ids.is_empty() { HashMap::new() } else { source.host_loads(&ids).map_err(read)? };
    warnings.extend(hygiene::loaded_runs(&behind, &loads));
    let report = CompareReport {
        slicing: slicing.iter().map(|d| d.name()).collect(),
        pairing: pairing.iter().map(|d| d.name()).collect(),
        label_a,
        label_b,
        rows_a: n_a,
        rows_b: n_b,
        averaged: !options.no_average,
        pass_counts: average::pass_counts(&groups_a, &groups_b),
        comparison,
        host_delta,
        noise: options.noise,
    };
    Ok(CompareOutcome { report, warnings })
}

/// Noise models for the findings too small for the rank test, from their series' history.
fn history_models<S: RowSource>(
    source: &S,
    scope: &PoolScope,
    findings: &[Finding],
) -> Result<HistoryModels, S::Error> {
    let wanted: HashSet<_> = findings
        .iter()
        .filter(|f| !mwu::applies(f.a_values.len(), f.b_values.len()))
        .map(|f| (f.series.clone(), f.metric))
        .collect();
    if wanted.is_empty() {
        return Ok(HistoryModels::new());
    }
    let mut list: Vec<_> = wanted.iter().map(|(s, _)| s.clone()).collect();
    list.sort();
    list.dedup();
    let rows = source.series_history(scope, &list, HISTORY_RUNS_PER_SERIES)?;
    Ok(series::models_from_rows(&rows, &wanted))
}

/// The runs behind the findings that decide something (a regression or an improvement), both
/// sides, each once: the runs whose host load matters.
fn runs_behind<'g>(findings: &[Finding], a: &'g [Group], b: &'g [Group]) -> Vec<&'g Row> {
    let keys: HashSet<&PairingKey> = findings
        .iter()
        .filter(|f| matches!(f.verdict, Verdict::Regression | Verdict::Improvement))
        .map(|f| &f.key)
        .collect();
    let mut seen = HashSet::new();
    a.iter()
        .chain(b)
        .filter(|g| keys.contains(&g.key))
        .flat_map(|g| &g.samples)
        .filter(|r| seen.insert(r.sidecar_id))
        .collect()
}

/// Both sides' rows; an error naming the side that matched nothing, or the empty pool.
fn select_sides<S: RowSource>(
    source: &S,
    options: &CompareOptions,
) -> Result<(Vec<Row>, Vec<Row>), CompareError> {
    let read = |e: S::Error| CompareError::Source(Box::new(e));
    let (scope, filters) = (&options.scope, &options.filters);
    let rows_a = source.select_side(scope, &filters.a).map_err(read)?;
    let rows_b = source.select_side(scope, &filters.b).map_err(read)?;
    if !rows_a.is_empty() && !rows_b.is_empty() {
        return Ok((rows_a, rows_b));
    }
    // The pool-wide facts feed only this diagnostic, and gathering them may read every
    // pooled row, so they are gathered only when a side matched nothing.
    let facts = source.pool_facts(scope).map_err(read)?;
    if facts.total == 0 {
        return Err(CompareError::EmptyPool);
    }
    let (side, filter) =
        if rows_a.is_empty() { (Side::A, &filters.a) } else { (Side::B, &filters.b) };
    Err(CompareError::usage(diagnostics::zero_match_diagnostic(side, filter, &facts)))
}

/// Per side, the groups the gate compares, which take the rows: averaged per pairing key, or
/// one per row under `--no-average` (an error when a side has two rows with one key).
fn group_sides(
    rows_a: Vec<Row>,
    rows_b: Vec<Row>,
    pairing: &[Dim],
    no_average: bool,
) -> Result<(Grouped, Grouped), String> {
    if no_average {
        average::check_no_average_duplicates(&rows_a, pairing, Side::A)?;
        average::check_no_average_duplicates(&rows_b, pairing, Side::B)?;
        Ok((average::singleton_rows(rows_a, pairing), average::singleton_rows(rows_b, pairing)))
    } else {
        Ok((average::average_rows(rows_a, pairing), average::average_rows(rows_b, pairing)))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;
    use crate::compare::{PoolFacts, SideFilter};

    /// Rows in memory, filtered by the reference matcher.
    struct Rows(Vec<Row>);

    impl RowSource for Rows {
        type Error = Infallible;

        fn select_side(&self, _: &PoolScope, f: &SideFilter) -> Result<Vec<Row>, Infallible> {
            Ok(self.0.iter().filter(|r| f.matches(r)).cloned().collect())
        }

        fn pool_facts(&self, _: &PoolScope) -> Result<PoolFacts, Infallible> {
            Ok(PoolFacts { total: self.0.len(), ..Default::default() })
        }
    }

    fn row(commit: &str, p99: f64) -> Row {
        let mut r = Row::new("t").with_metric("worst_p99_wake_latency_us", p99);
        r.project_commit = Some(commit.into());
        r
    }

    fn commits(a: &str, b: &str) -> CompareOptions {
        let filters = SideFilters {
            a: SideFilter::default().with(Dim::ProjectCommit, &[a]),
            b: SideFilter::default().with(Dim::ProjectCommit, &[b]),
        };
        CompareOptions { filters, ..Default::default() }
    }

    fn usage_message(err: CompareError) -> (String, Vec<String>) {
        match err {
            CompareError::Usage { message, warnings } => (message, warnings),
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn a_regression_is_reported_with_labels_counts_and_warnings() {
        let mut nan = row("aaa", 100.0);
        nan.metrics[0] = None;
        let pool = Rows(vec![nan, row("aaa", 100.0), row("bbb-dirty", 500.0)]);
        let out = run(&pool, &commits("aaa", "bbb-dirty")).unwrap();
        let r = &out.report;
        assert_eq!((r.label_a.as_str(), r.label_b.as_str()), ("aaa", "bbb-dirty"));
        assert_eq!((r.rows_a, r.rows_b, r.averaged), (2, 1, true));
        assert_eq!(r.slicing, ["project-commit"]);
        assert_eq!(r.comparison.summary.regressions, 1);
        assert_eq!(r.host_delta, HostDelta::NotRecorded);
        assert_eq!(out.warnings.len(), 2, "{:?}", out.warnings);
        assert!(out.warnings[0].contains("1 non-finite or missing metric value(s) read as 0"));
        assert!(out.warnings[1].starts_with("warning: comparison includes dirty builds:"));
    }

    #[test]
    fn identical_sides_fail_the_check_before_any_row_is_read() {
        let same = CompareOptions::default();
        let (message, _) = usage_message(same.check().unwrap_err());
        assert_eq!(message, slicing::IDENTICAL_SIDES);
        let (message, _) = usage_message(run(&Rows(vec![row("aaa", 1.0)]), &same).unwrap_err());
        assert_eq!(message, slicing::IDENTICAL_SIDES);
        let mut two = commits("aaa", "bbb");
        two.filters.a.set(Dim::Kernel, vec!["6.14".into()]);
        assert_eq!(two.check().unwrap().len(), 1, "slicing on two dimensions warns");
        assert!(commits("aaa", "bbb").check().unwrap().is_empty());
    }

    #[test]
    fn an_empty_pool_and_an_empty_side_are_different_errors() {
        let options = commits("aaa", "bbb");
        assert!(matches!(run(&Rows(Vec::new()), &options), Err(CompareError::EmptyPool)));
        let (message, _) = usage_message(run(&Rows(vec![row("bbb", 1.0)]), &options).unwrap_err());
        assert!(
            message
                .starts_with("stats compare: A side filter matched 0 sidecars in pool (1 pooled)")
        );
    }

    #[test]
    fn a_no_average_duplicate_keeps_the_warnings_met_before_it() {
        let pool = Rows(vec![row("aaa", 1.0), row("bbb-dirty", 1.0), row("bbb-dirty", 2.0)]);
        let options = CompareOptions { no_average: true, ..commits("aaa", "bbb-dirty") };
        let (message, warnings) = usage_message(run(&pool, &options).unwrap_err());
        assert!(
            message.starts_with("stats compare --no-average: side B has 2 sidecars"),
            "{message}"
        );
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("warning: comparison includes dirty builds:"));
    }
}
