//! History rows into noise models: which past runs of a series are replicates of each other,
//! and the model each (series, metric) gets from them. Owns the replicate rule; the model
//! itself is [`super::history`]'s.
//!
//! A run counts toward history only when it passed, its project commit is known, and neither
//! its project nor its kernel commit is `-dirty` (a dirty tree may have changed between runs,
//! so its runs are not replicates of anything).

use std::collections::{HashMap, HashSet};

use super::history::{self, PastRun};
use super::{HistoryModels, Series};
use crate::compare::{Row, metric_index};

/// The replicate set of a history run, or `None` when it cannot be one.
pub fn replicate_set(row: &Row) -> Option<String> {
    let commit = row.project_commit.as_deref()?;
    let dirty = |c: &str| c.ends_with("-dirty");
    if !row.is_pass() || dirty(commit) || row.kernel_commit.as_deref().is_some_and(dirty) {
        return None;
    }
    let mut flags = row.flags.clone();
    flags.sort();
    Some(format!(
        "{commit}\u{1f}{}\u{1f}{}\u{1f}{}",
        row.kernel_version.as_deref().unwrap_or(""),
        row.kernel_commit.as_deref().unwrap_or(""),
        flags.join("|")
    ))
}

/// A model for each wanted (series, metric) that has enough replicate pairs in `rows`.
pub fn models_from_rows(rows: &[Row], wanted: &HashSet<(Series, &'static str)>) -> HistoryModels {
    // The wanted (series, metric) pairs, numbered; a row finds the numbers of its series by its
    // own identity fields, in one lookup and without copying them (a scan of `wanted` per row
    // cost rows x findings, most of a compare with thousands of low-n findings; a map keyed by
    // the pair hashed the series' four strings once per row and metric).
    let wanted: Vec<&(Series, &'static str)> = wanted.iter().collect();
    let mut slots_of: HashMap<[&str; 4], Vec<(usize, Option<usize>)>> = HashMap::new();
    for (slot, (series, metric)) in wanted.iter().enumerate() {
        let identity = [&series.scenario, &series.topology, &series.scheduler, &series.work_type]
            .map(String::as_str);
        slots_of.entry(identity).or_default().push((slot, metric_index(metric)));
    }
    let mut runs: Vec<Vec<PastRun>> = vec![Vec::new(); wanted.len()];
    for row in rows {
        let identity = [&row.scenario, &row.topology, &row.scheduler, &row.work_type];
        let Some(slots) = slots_of.get(&identity.map(String::as_str)) else { continue };
        let Some(set) = replicate_set(row) else { continue };
        for &(slot, metric) in slots {
            let Some(value) = metric.and_then(|i| row.metric_value(i)) else { continue };
            runs[slot].push(PastRun {
                replicate_set: set.clone(),
                timestamp: row.timestamp.clone(),
                value,
            });
        }
    }
    wanted
        .into_iter()
        .zip(runs)
        .filter_map(|((series, metric), past)| {
            let model = history::noise_model(&history::replicate_log_ratios(&past))?;
            Some(((series.clone(), *metric), model))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::verdict::series_of_row;

    fn run(commit: &str, t: u32, p99: f64) -> Row {
        let mut r = Row::new("t").with_metric("worst_p99_wake_latency_us", p99);
        r.project_commit = Some(commit.into());
        r.timestamp = format!("2026-01-01T00:00:{t:02}Z");
        r
    }

    #[test]
    fn dirty_and_failed_runs_are_not_replicates() {
        assert!(replicate_set(&run("abc", 0, 1.0)).is_some());
        assert_eq!(replicate_set(&run("abc-dirty", 0, 1.0)), None);
        let mut failed = run("abc", 0, 1.0);
        failed.passed = false;
        assert_eq!(replicate_set(&failed), None);
        let mut none = run("abc", 0, 1.0);
        none.project_commit = None;
        assert_eq!(replicate_set(&none), None);
    }

    #[test]
    fn a_model_needs_five_clean_replicate_pairs_of_its_series() {
        let series = series_of_row(&Row::new("t"));
        let wanted: HashSet<_> = [(series.clone(), "worst_p99_wake_latency_us")].into();
        // Five pairs at one commit, in a dirty tree: excluded, no model.
        let dirty: Vec<Row> = (0..6).map(|t| run("abc-dirty", t, 100.0 + t as f64)).collect();
        assert!(models_from_rows(&dirty, &wanted).is_empty());
        // Three runs at each of two commits: 2 + 2 pairs, one short.
        let mut rows: Vec<Row> = (0..3).map(|t| run("abc", t, 100.0 + t as f64)).collect();
        rows.extend((3..6).map(|t| run("def", t, 200.0 + t as f64)));
        assert!(models_from_rows(&rows, &wanted).is_empty());
        rows.push(run("def", 7, 210.0));
        let models = models_from_rows(&rows, &wanted);
        let m = models[&(series, "worst_p99_wake_latency_us")];
        assert_eq!(m.pairs, 5);
        assert!(m.sigma > 0.0 && m.sigma < 0.05, "{m:?}");
        let mut other = rows.clone();
        other.iter_mut().for_each(|r| r.scenario = "other".into());
        assert!(models_from_rows(&other, &wanted).is_empty(), "another test's runs");
    }
}
