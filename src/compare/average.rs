//! Per side and pairing key: the pooled samples, their means and pass/skip state (§4.5), plus
//! our dirty-fingerprint rule and the `--no-average` duplicate check.
//!
//! Every contributing row is kept in its [`Group`], so callers can report n, median and the
//! like next to the mean the gate uses.

use std::collections::{BTreeMap, HashMap};

use super::pairing::strip_dirty;
use super::{Dim, PairingKey, Row, Side, is_integer_metric, metric_index};
use crate::metric::{METRICS, TAIL_RATIO_MIN_ITERATIONS};

/// One side's rows that share a pairing key, reduced the way ktstr reduces them.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub key: PairingKey,
    /// The first contributor: identity fields (scenario, topology, …) come from it.
    pub first: Row,
    /// `commit`/`kernel_commit` of the group: first-seen, or `{hex}+mixed` when the group
    /// holds both clean and `-dirty` forms.
    pub project_commit: Option<String>,
    pub kernel_commit: Option<String>,
    pub total_observed: usize,
    pub passes_observed: usize,
    /// No contributor failed or skipped, and at least one passed.
    pub passed: bool,
    /// Some contributor skipped.
    pub skipped: bool,
    /// Registry metric means over the passing contributors (integers rounded).
    pub means: [f64; METRICS.len()],
    /// Ext metric means, each over the passing contributors that carried it.
    pub ext: BTreeMap<String, f64>,
    /// The passing, non-skipped contributors: the samples behind the means.
    pub samples: Vec<Row>,
}

/// A side after grouping, in first-seen order.
pub type Grouped = Vec<Group>;

impl Group {
    /// ktstr's `MetricDef::read` on the averaged row: the accessor value, falling back to the
    /// ext metric of the same name when the accessor yields nothing (the tail ratio below its
    /// iteration floor). `None` means "read as 0".
    pub fn read(&self, metric: usize) -> Option<f64> {
        read_metric(metric, &self.means, &self.ext)
    }

    /// The per-sample values of one metric, with the same accessor rule applied per sample.
    pub fn sample_values(&self, metric: usize) -> Vec<f64> {
        self.samples
            .iter()
            .map(|r| {
                let vals: [f64; METRICS.len()] = r.metrics.map(|v| v.unwrap_or(0.0));
                read_metric(metric, &vals, &r.ext).unwrap_or(0.0)
            })
            .collect()
    }
}

impl Group {
    /// The per-pair values of one metric against `b`, when the two sides are paired runs:
    /// every sample on both sides carries a pairing record (`run_token`, `repeat`), and each
    /// record names exactly one run on each side (what `cargo ktstr ab` writes). Anything
    /// less (runs pooled from other sessions, a repeat missing on one side) is `None`, and
    /// the unpaired tests judge the samples instead of a subset of them.
    pub fn paired_values(&self, b: &Group, metric: usize) -> Option<Vec<(f64, f64)>> {
        let record = |r: &Row| Some((r.run_token.clone()?, r.repeat?));
        let index = |g: &Group| -> Option<BTreeMap<(String, u32), usize>> {
            let mut at = BTreeMap::new();
            for (i, r) in g.samples.iter().enumerate() {
                if at.insert(record(r)?, i).is_some() {
                    return None;
                }
            }
            Some(at)
        };
        let (at_a, at_b) = (index(self)?, index(b)?);
        if at_a.is_empty() || at_a.len() != at_b.len() || !at_a.keys().eq(at_b.keys()) {
            return None;
        }
        let (va, vb) = (self.sample_values(metric), b.sample_values(metric));
        Some(at_a.iter().map(|(k, &i)| (va[i], vb[at_b[k]])).collect())
    }
}

impl Row {
    /// One registry metric of this run by ktstr's accessor rule (the tail ratio below its
    /// iteration floor falls back to the ext metric); `None` when not measured.
    pub fn metric_value(&self, metric: usize) -> Option<f64> {
        let vals: [f64; METRICS.len()] = self.metrics.map(|v| v.unwrap_or(0.0));
        self.metrics[metric].and(read_metric(metric, &vals, &self.ext))
    }
}

fn read_metric(metric: usize, values: &[f64], ext: &BTreeMap<String, f64>) -> Option<f64> {
    let def = &METRICS[metric];
    if def.name == "worst_wake_latency_tail_ratio" {
        let iters = metric_index("total_iterations").map_or(0.0, |i| values[i]);
        if iters < TAIL_RATIO_MIN_ITERATIONS {
            return ext.get(def.name).copied();
        }
    }
    Some(values[metric])
}

/// Group `rows` by pairing key (first-seen order) and average each group.
pub fn average_side(rows: &[Row], pairing_dims: &[Dim]) -> Grouped {
    average_rows(rows.to_vec(), pairing_dims)
}

/// [`average_side`] of rows the caller gives up: each moves into its group instead of being
/// copied there (a compare's two sides are thousands of rows).
pub fn average_rows(rows: Vec<Row>, pairing_dims: &[Dim]) -> Grouped {
    let mut position: HashMap<PairingKey, usize> = HashMap::with_capacity(rows.len());
    let mut groups: Vec<(PairingKey, Vec<Row>)> = Vec::new();
    for row in rows {
        let key = PairingKey::of(&row, pairing_dims);
        match position.get(&key) {
            Some(&at) => groups[at].1.push(row),
            None => {
                position.insert(key.clone(), groups.len());
                groups.push((key, vec![row]));
            }
        }
    }
    groups.into_iter().map(|(key, rows)| reduce(key, rows)).collect()
}

/// Each row as its own group (`--no-average`); run [`check_no_average_duplicates`] first.
pub fn singleton_groups(rows: &[Row], pairing_dims: &[Dim]) -> Grouped {
    singleton_rows(rows.to_vec(), pairing_dims)
}

/// [`singleton_groups`] of rows the caller gives up.
pub fn singleton_rows(rows: Vec<Row>, pairing_dims: &[Dim]) -> Grouped {
    rows.into_iter().map(|r| reduce(PairingKey::of(&r, pairing_dims), vec![r])).collect()
}

fn reduce(key: PairingKey, rows: Vec<Row>) -> Group {
    // Invariant: groups are built from at least one row.
    let first = rows.first().expect("group has a first row").clone();
    let total_observed = rows.len();
    let any_failed = rows.iter().any(|r| !r.passed);
    let skipped = rows.iter().any(|r| r.skipped);
    let project_commit = merged_commit(rows.iter().map(|r| r.project_commit.as_deref()));
    let kernel_commit = merged_commit(rows.iter().map(|r| r.kernel_commit.as_deref()));
    let samples: Vec<Row> = rows.into_iter().filter(Row::is_pass).collect();
    let n = samples.len();
    let mut means = [0.0; METRICS.len()];
    if n > 0 {
        for (i, def) in METRICS.iter().enumerate() {
            let sum: f64 = samples.iter().map(|r| r.metrics[i].unwrap_or(0.0)).sum();
            let mean = sum / n as f64;
            // f64::round is half away from zero, ktstr's integer rule.
            means[i] = if is_integer_metric(def.name) { mean.round() } else { mean };
        }
    }
    let mut ext_sum: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    for r in &samples {
        for (k, v) in &r.ext {
            // The samples of a group mostly carry the same names: copy each name once.
            let e = match ext_sum.get_mut(k) {
                Some(e) => e,
                None => ext_sum.entry(k.clone()).or_insert((0.0, 0)),
            };
            e.0 += v;
            e.1 += 1;
        }
    }
    let ext = ext_sum.into_iter().map(|(k, (s, c))| (k, s / c as f64)).collect();
    Group {
        key,
        project_commit,
        kernel_commit,
        total_observed,
        passes_observed: n,
        passed: !any_failed && !skipped && n > 0,
        skipped,
        means,
        ext,
        samples,
        first,
    }
}

/// First-seen commit, or `{first clean hex}+mixed` when clean and `-dirty` forms both occur
/// (nulls ignored).
fn merged_commit<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Option<String> {
    let present: Vec<&str> = values.flatten().collect();
    let first = present.first()?;
    let dirty = present.iter().any(|c| c.ends_with("-dirty"));
    let clean = present.iter().any(|c| !c.ends_with("-dirty"));
    if dirty && clean {
        Some(format!("{}+mixed", strip_dirty(first)))
    } else {
        Some(first.to_string())
    }
}

/// The `--no-average` error when a side has two rows with one key: the smallest such key.
pub fn check_no_average_duplicates(
    rows: &[Row],
    pairing_dims: &[Dim],
    side: Side,
) -> Result<(), String> {
    let mut counts: BTreeMap<PairingKey, usize> = BTreeMap::new();
    for r in rows {
        *counts.entry(PairingKey::of(r, pairing_dims)).or_default() += 1;
    }
    match counts.into_iter().find(|(_, c)| *c >= 2) {
        None => Ok(()),
        Some((key, count)) => Err(format!(
            "stats compare --no-average: side {} has {count} sidecars with the same pairing key \
             {:?}. Either drop --no-average to average them, or add another --{}-X filter to \
             disambiguate.",
            side.letter(),
            key.0,
            side.lower()
        )),
    }
}

/// Our rule for work in progress: within one pairing key, dirty samples of one commit taken
/// at different uncommitted states (distinct `dirty_fingerprint`s) are not averaged together.
/// Only the state of the most recently written sample is kept. Clean samples, and repeated
/// runs at one clean commit, are all kept. Returns the kept rows and how many were left out.
pub fn drop_stale_dirty_states(rows: Vec<Row>, pairing_dims: &[Dim]) -> (Vec<Row>, usize) {
    // (pairing key, commit without suffix) -> fingerprint of the newest dirty sample.
    let mut newest: HashMap<(PairingKey, String), (&str, Option<&str>)> = HashMap::new();
    let mut states: HashMap<(PairingKey, String), Vec<Option<&str>>> = HashMap::new();
    for r in &rows {
        let Some(commit) = r.project_commit.as_deref().filter(|c| c.ends_with("-dirty")) else {
            continue;
        };
        let slot = (PairingKey::of(r, pairing_dims), strip_dirty(commit).to_string());
        let fp = r.dirty_fingerprint.as_deref();
        let seen = states.entry(slot.clone()).or_default();
        if !seen.contains(&fp) {
            seen.push(fp);
        }
        let best = newest.entry(slot).or_insert((r.timestamp.as_str(), fp));
        if r.timestamp.as_str() > best.0 {
            *best = (r.timestamp.as_str(), fp);
        }
    }
    let keep_fp: HashMap<(PairingKey, String), Option<String>> = newest
        .into_iter()
        .filter(|(slot, _)| states.get(slot).is_some_and(|s| s.len() > 1))
        .map(|(slot, (_, fp))| (slot, fp.map(str::to_string)))
        .collect();
    if keep_fp.is_empty() {
        return (rows, 0);
    }
    let before = rows.len();
    let kept: Vec<Row> = rows
        .into_iter()
        .filter(|r| {
            let Some(commit) = r.project_commit.as_deref().filter(|c| c.ends_with("-dirty")) else {
                return true;
            };
            let slot = (PairingKey::of(r, pairing_dims), strip_dirty(commit).to_string());
            keep_fp.get(&slot).is_none_or(|fp| *fp == r.dirty_fingerprint)
        })
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

/// Per (scenario, topology, work type, flags) key: `(passes, total)` per side. Groups that
/// differ only in other pairing dimensions overwrite each other, as in ktstr (§7.2 item 17).
pub type PassCounts = BTreeMap<(String, String, String, String), [Option<(usize, usize)>; 2]>;

pub fn pass_counts(a: &Grouped, b: &Grouped) -> PassCounts {
    let mut out = PassCounts::new();
    for (i, side) in [a, b].into_iter().enumerate() {
        for g in side {
            let mut flags = g.first.flags.clone();
            flags.sort();
            let key = (
                g.first.scenario.clone(),
                g.first.topology.clone(),
                g.first.work_type.clone(),
                flags.join("|"),
            );
            out.entry(key).or_default()[i] = Some((g.passes_observed, g.total_observed));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(name: &str) -> usize {
        metric_index(name).unwrap()
    }

    #[test]
    fn means_over_passing_contributors_with_integer_rounding() {
        let rows = vec![
            Row::new("t").with_metric("worst_spread", 1.0).with_metric("worst_gap_ms", 10.0),
            Row::new("t").with_metric("worst_spread", 2.0).with_metric("worst_gap_ms", 11.0),
            Row::new("u").with_metric("worst_spread", 9.0),
        ];
        let g = average_side(&rows, &[]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].key.0, ["t"], "first-seen order");
        assert_eq!(g[0].means[idx("worst_spread")], 1.5);
        assert_eq!(g[0].means[idx("worst_gap_ms")], 11.0, "10.5 rounds half away from zero");
        assert_eq!(g[0].total_observed, 2);
        assert_eq!(g[0].sample_values(idx("worst_spread")), [1.0, 2.0]);
    }

    fn paired(token: Option<&str>, repeat: Option<u32>, v: f64) -> Row {
        let mut r = Row::new("t").with_metric("worst_spread", v);
        r.run_token = token.map(str::to_string);
        r.repeat = repeat;
        r
    }

    #[test]
    fn paired_values_match_runs_by_their_pairing_record_only_when_every_run_pairs() {
        let m = idx("worst_spread");
        let a =
            average_side(&[paired(Some("k"), Some(1), 2.0), paired(Some("k"), Some(0), 1.0)], &[]);
        let b = average_side(
            &[paired(Some("k"), Some(0), 10.0), paired(Some("k"), Some(1), 20.0)],
            &[],
        );
        assert_eq!(a[0].paired_values(&b[0], m), Some(vec![(1.0, 10.0), (2.0, 20.0)]));
        let pooled = average_side(
            &[
                paired(Some("k"), Some(0), 10.0),
                paired(Some("k"), Some(1), 20.0),
                paired(None, None, 5.0),
            ],
            &[],
        );
        assert_eq!(a[0].paired_values(&pooled[0], m), None, "a run without a record");
        let other =
            average_side(&[paired(Some("j"), Some(0), 1.0), paired(Some("k"), Some(1), 2.0)], &[]);
        assert_eq!(other[0].paired_values(&b[0], m), None, "another session's repeat");
    }

    #[test]
    fn group_and_average_all_failed_collapses_to_default_zero_metrics_and_failed_flag() {
        let mut r = Row::new("t").with_metric("worst_spread", 7.0);
        r.passed = false;
        let g = &average_side(&[r.clone(), r], &[])[0];
        assert!(!g.passed);
        assert_eq!(g.passes_observed, 0);
        assert!(g.means.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn one_skipped_contributor_fails_the_group_but_keeps_the_mean() {
        let mut s = Row::new("t").with_metric("worst_spread", 100.0);
        s.skipped = true;
        let g = &average_side(&[Row::new("t").with_metric("worst_spread", 4.0), s], &[])[0];
        assert!(!g.passed && g.skipped);
        assert_eq!(g.means[idx("worst_spread")], 4.0);
        assert_eq!((g.passes_observed, g.total_observed), (1, 2));
    }

    #[test]
    fn group_and_average_ext_metrics_average_per_key_present_count() {
        let mut a = Row::new("t");
        a.ext.insert("k".into(), 2.0);
        a.ext.insert("only_a".into(), 5.0);
        let mut b = Row::new("t");
        b.ext.insert("k".into(), 4.0);
        let g = &average_side(&[a, b], &[])[0];
        assert_eq!(g.ext["k"], 3.0);
        assert_eq!(g.ext["only_a"], 5.0);
    }

    #[test]
    fn group_and_average_mixed_dirty_marks_plus_mixed_including_failed_contributors() {
        let mut clean = Row::new("t");
        clean.project_commit = Some("abc1234-dirty".into());
        let mut failed = Row::new("t");
        failed.passed = false;
        failed.project_commit = Some("abc1234".into());
        failed.kernel_commit = Some("k1".into());
        let g = &average_side(&[clean, failed], &[])[0];
        assert_eq!(g.project_commit.as_deref(), Some("abc1234+mixed"), "strips from first seen");
        assert_eq!(g.kernel_commit.as_deref(), Some("k1"), "nulls do not count");
    }

    #[test]
    fn tail_ratio_is_suppressed_below_min_iteration_floor_with_ext_fallback() {
        let r = Row::new("t")
            .with_metric("total_iterations", 99.0)
            .with_metric("worst_wake_latency_tail_ratio", 4.0);
        let tail = idx("worst_wake_latency_tail_ratio");
        let g = &average_side(std::slice::from_ref(&r), &[])[0];
        assert_eq!(g.read(tail), None);
        let mut with_ext = r.clone();
        with_ext.ext.insert("worst_wake_latency_tail_ratio".into(), 2.0);
        assert_eq!(average_side(&[with_ext], &[])[0].read(tail), Some(2.0));
        let r = r.with_metric("total_iterations", 100.0);
        assert_eq!(average_side(&[r], &[])[0].read(tail), Some(4.0));
    }

    #[test]
    fn no_average_duplicate_key_error_names_smallest_key() {
        let rows = vec![Row::new("z"), Row::new("z"), Row::new("b"), Row::new("b"), Row::new("c")];
        let err = check_no_average_duplicates(&rows, &[Dim::Kernel], Side::B).unwrap_err();
        assert_eq!(
            err,
            "stats compare --no-average: side B has 2 sidecars with the same pairing key \
             [\"b\", \"\"]. Either drop --no-average to average them, or add another --b-X \
             filter to disambiguate."
        );
        assert!(check_no_average_duplicates(&rows[3..], &[], Side::A).is_ok());
    }

    #[test]
    fn stale_dirty_states_are_left_out_but_clean_history_is_pooled() {
        let mk = |commit: &str, fp: Option<&str>, ts: &str| {
            let mut r = Row::new("t");
            r.project_commit = Some(commit.into());
            r.dirty_fingerprint = fp.map(str::to_string);
            r.timestamp = ts.into();
            r
        };
        let rows = vec![
            mk("abc1234", None, "2026-01-01T00:00:00Z"),
            mk("abc1234", None, "2026-01-02T00:00:00Z"),
            mk("abc1234-dirty", Some("old"), "2026-01-03T00:00:00Z"),
            mk("abc1234-dirty", Some("new"), "2026-01-05T00:00:00Z"),
            mk("abc1234-dirty", Some("old"), "2026-01-04T00:00:00Z"),
            mk("abc1234-dirty", Some("new"), "2026-01-06T00:00:00Z"),
        ];
        let (kept, dropped) = drop_stale_dirty_states(rows.clone(), &[]);
        assert_eq!(dropped, 2);
        assert_eq!(kept.len(), 4);
        assert!(kept.iter().all(|r| r.dirty_fingerprint.as_deref() != Some("old")));
        let (kept, dropped) = drop_stale_dirty_states(rows[..3].to_vec(), &[]);
        assert_eq!((kept.len(), dropped), (3, 0), "one dirty state is not stale");
    }

    #[test]
    fn format_per_group_pass_counts_one_side_missing_renders_none() {
        let a = average_side(&[Row::new("t"), Row::new("u")], &[]);
        let b = average_side(&[Row::new("t")], &[]);
        let counts = pass_counts(&a, &b);
        let u = counts.iter().find(|(k, _)| k.0 == "u").unwrap().1;
        assert_eq!(u, &[Some((1, 1)), None]);
    }
}
