//! A metric's trend across commits (`stats history`): per series, the samples grouped by
//! commit in history order, each commit's n, median and spread, and the steps.
//!
//! Input is plain samples (the warehouse selects them) and, when there is a repository, the
//! first-parent order of its commits (provenance reads it); nothing here reads storage or git.
//!
//! # Order
//! With a history, commits are placed by their position on it and commits not on it are left
//! out (counted in [`Trend::off_history`]); without one, or when none of the series' commits
//! is on it (results of another repository), every commit seen is placed by its first
//! sample's timestamp. A `-dirty` state counts as its commit.
//!
//! # Step rule
//! Until the noise gate (MWU) is available here, a step is marked by a simple change-point
//! rule. For each boundary between commit `i-1` and `i` let `before` be the pooled samples of
//! up to [`STEP_WINDOW`] commits before it and `after` those of up to [`STEP_WINDOW`] commits
//! from `i` on. The boundary is a candidate when
//! 1. the medians of `before` and `after` pass the metric's dual gate at its registry defaults
//!    (the absolute and the relative threshold compare uses), and
//! 2. the medians differ by more than the larger of the two windows' interquartile ranges, so
//!    a shift inside the usual scatter is not a step.
//!
//! Of candidates closer than [`STEP_WINDOW`] commits only the one with the largest change is
//! kept. A metric outside the registry has no gate, so its trend has no steps.

use std::collections::HashMap;

use super::gate::{Gate, gate_baseline};
use super::pairing::strip_dirty;
use crate::metric::MetricDef;

/// Commits on each side of a boundary the step rule pools.
pub const STEP_WINDOW: usize = 3;

/// One sample of the metric, as the trend needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSample {
    pub commit: Option<String>,
    pub timestamp: String,
    pub value: f64,
}

/// How commits were ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendOrder {
    /// Along the first-parent history of the current branch.
    FirstParent,
    /// By first sample timestamp (no repository).
    Timestamp,
}

/// The direction of a step, by the metric's polarity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Regression,
    Improvement,
}

/// A step into this commit from the ones before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub kind: StepKind,
    /// Median of the pooled window before and from this commit on.
    pub before: f64,
    pub after: f64,
}

/// One commit's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitPoint {
    /// The commit without `-dirty`; `unknown` for samples with no commit.
    pub commit: String,
    pub values: Vec<f64>,
    /// How many of the samples came from a `-dirty` tree.
    pub dirty: usize,
    pub first_timestamp: String,
    pub median: f64,
    /// Interquartile range (q3 − q1, linear interpolation); 0 for a single sample.
    pub spread: f64,
    pub step: Option<Step>,
}

/// One series' trend.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub points: Vec<CommitPoint>,
    pub order: TrendOrder,
    /// Distinct commits left out because they are not on the first-parent history.
    pub off_history: usize,
}

/// Build a trend from one series' samples. `history` is the first-parent order of the
/// repository (oldest first, short ids as sidecars record them), `None` without a repository.
pub fn build_trend(
    samples: &[TrendSample],
    history: Option<&[String]>,
    def: Option<&MetricDef>,
) -> Trend {
    let mut by_commit: Vec<CommitPoint> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in samples {
        let raw = s.commit.as_deref().unwrap_or("unknown");
        let commit = strip_dirty(raw).to_string();
        let i = *index.entry(commit.clone()).or_insert_with(|| {
            by_commit.push(CommitPoint {
                commit,
                values: Vec::new(),
                dirty: 0,
                first_timestamp: s.timestamp.clone(),
                median: 0.0,
                spread: 0.0,
                step: None,
            });
            by_commit.len() - 1
        });
        let p = &mut by_commit[i];
        p.values.push(s.value);
        p.dirty += usize::from(raw.ends_with("-dirty"));
        if s.timestamp < p.first_timestamp {
            p.first_timestamp = s.timestamp.clone();
        }
    }
    let on_history = |h: &[String]| by_commit.iter().any(|p| h.contains(&p.commit));
    let (mut points, order, off_history) = match history.filter(|h| on_history(h)) {
        Some(h) => {
            let pos: HashMap<&str, usize> =
                h.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
            let total = by_commit.len();
            let mut on: Vec<(usize, CommitPoint)> = by_commit
                .into_iter()
                .filter_map(|p| pos.get(p.commit.as_str()).map(|&i| (i, p)))
                .collect();
            on.sort_by_key(|(i, _)| *i);
            let off = total - on.len();
            (on.into_iter().map(|(_, p)| p).collect(), TrendOrder::FirstParent, off)
        }
        None => {
            by_commit.sort_by(|a, b| a.first_timestamp.cmp(&b.first_timestamp));
            (by_commit, TrendOrder::Timestamp, 0)
        }
    };
    for p in &mut points {
        let (median, spread) = median_and_iqr(&p.values);
        p.median = median;
        p.spread = spread;
    }
    if let Some(def) = def {
        mark_steps(&mut points, def);
    }
    Trend { points, order, off_history }
}

/// Median and interquartile range of `values` (linear interpolation between order statistics).
pub fn median_and_iqr(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let x = p * (v.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
    };
    (q(0.5), q(0.75) - q(0.25))
}

fn mark_steps(points: &mut [CommitPoint], def: &MetricDef) {
    let mut candidates: Vec<(usize, Step)> = Vec::new();
    for i in 1..points.len() {
        let pool = |range: std::ops::Range<usize>| -> Vec<f64> {
            points[range].iter().flat_map(|p| p.values.iter().copied()).collect()
        };
        let before = pool(i.saturating_sub(STEP_WINDOW)..i);
        let after = pool(i..(i + STEP_WINDOW).min(points.len()));
        let (mb, ib) = median_and_iqr(&before);
        let (ma, ia) = median_and_iqr(&after);
        let kind = match gate_baseline(def, Some(mb), ma, def.default_rel) {
            Gate::Regression => StepKind::Regression,
            Gate::Improvement => StepKind::Improvement,
            Gate::Unchanged | Gate::BothZero => continue,
        };
        if (ma - mb).abs() <= ib.max(ia) {
            continue;
        }
        let step = Step { kind, before: mb, after: ma };
        match candidates.last_mut() {
            Some((j, prev)) if i - *j < STEP_WINDOW => {
                if (step.after - step.before).abs() > (prev.after - prev.before).abs() {
                    *j = i;
                    *prev = step;
                }
            }
            _ => candidates.push((i, step)),
        }
    }
    for (i, step) in candidates {
        points[i].step = Some(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::metric_def;

    fn samples(per_commit: &[(&str, &[f64])]) -> Vec<TrendSample> {
        let mut out = Vec::new();
        for (i, (commit, values)) in per_commit.iter().enumerate() {
            for v in *values {
                out.push(TrendSample {
                    commit: Some(commit.to_string()),
                    timestamp: format!("2026-01-{:02}T00:00:00Z", i + 1),
                    value: *v,
                });
            }
        }
        out
    }

    #[test]
    fn a_sustained_jump_is_one_regression_step_at_the_commit_that_made_it() {
        let def = metric_def("worst_p99_wake_latency_us").unwrap();
        let flat = [100.0, 102.0, 98.0];
        let high = [300.0, 305.0, 295.0];
        let s = samples(&[
            ("c1", &flat),
            ("c2", &flat),
            ("c3", &flat),
            ("c4", &high),
            ("c5", &high),
            ("c6", &high),
        ]);
        let t = build_trend(&s, None, Some(def));
        let steps: Vec<(usize, StepKind)> =
            t.points.iter().enumerate().filter_map(|(i, p)| p.step.map(|s| (i, s.kind))).collect();
        assert_eq!(steps, [(3, StepKind::Regression)]);
        assert_eq!(t.points[0].median, 100.0);
        assert_eq!(t.points[0].spread, 2.0);
    }

    #[test]
    fn scatter_within_the_gate_or_the_spread_is_no_step() {
        let def = metric_def("worst_p99_wake_latency_us").unwrap();
        // +30 µs: under the 50 µs absolute gate.
        let s = samples(&[("c1", &[100.0]), ("c2", &[100.0]), ("c3", &[130.0]), ("c4", &[130.0])]);
        assert!(build_trend(&s, None, Some(def)).points.iter().all(|p| p.step.is_none()));
        // A median shift of 200 µs inside samples that scatter over 600 µs.
        let wide = [0.0, 100.0, 600.0];
        let wider = [0.0, 300.0, 600.0];
        let s = samples(&[("c1", &wide), ("c2", &wide), ("c3", &wider), ("c4", &wider)]);
        assert!(build_trend(&s, None, Some(def)).points.iter().all(|p| p.step.is_none()));
    }

    #[test]
    fn first_parent_order_wins_over_timestamps_and_drops_side_commits() {
        let s = samples(&[("bbb", &[1.0]), ("aaa-dirty", &[2.0]), ("zzz", &[3.0])]);
        let history = ["aaa".to_string(), "bbb".to_string()];
        let t = build_trend(&s, Some(&history), None);
        let commits: Vec<&str> = t.points.iter().map(|p| p.commit.as_str()).collect();
        assert_eq!(commits, ["aaa", "bbb"]);
        assert_eq!((t.order, t.off_history, t.points[0].dirty), (TrendOrder::FirstParent, 1, 1));
        let t = build_trend(&s, None, None);
        let commits: Vec<&str> = t.points.iter().map(|p| p.commit.as_str()).collect();
        assert_eq!(commits, ["bbb", "aaa", "zzz"]);
        let elsewhere = ["ccc".to_string()];
        let t = build_trend(&s, Some(&elsewhere), None);
        assert_eq!((t.order, t.points.len()), (TrendOrder::Timestamp, 3), "another repository's");
    }
}
