//! Warnings about how the two sides were collected, which can make a verdict wrong however
//! good the statistics (statistics-reference §4.3 step 8). Each is one line to stderr; none
//! changes a verdict or the exit code.
//!
//! - A dimension that is not sliced but whose values differ between the sides: only keys
//!   with equal values pair, and a contrast may hide in it.
//! - The sides mix hosts (CPU model, CPU count, memory, kernel release) or CPU models.
//! - Every A run came before every B run: a drift of the host between them reads as a change.
//! - The host was loaded while a run behind a regression or improvement ran: its 1-minute load average before
//!   the test started exceeded the host's CPUs, or steal reached [`STEAL_PCT`] %. (Sampled
//!   before the test's own workers start, so it measures others' load, not the test's.)

use std::collections::{BTreeSet, HashMap};

use super::{Dim, Row};
use crate::sidecar::model::HostLoad;

/// Steal time, % of CPU time, from which a run's host counts as loaded.
pub const STEAL_PCT: f64 = 5.0;

fn values(rows: &[Row], dim: Dim) -> BTreeSet<String> {
    rows.iter()
        .map(|r| match dim {
            Dim::Flags => {
                let mut f = r.flags.clone();
                f.sort();
                f.join("|")
            }
            _ => r.dim_value(dim).unwrap_or("(null)").to_string(),
        })
        .collect()
}

fn shown(set: &BTreeSet<String>) -> String {
    let mut v: Vec<&str> = set.iter().map(|s| if s.is_empty() { "(none)" } else { s }).collect();
    if v.len() > 3 {
        v.truncate(3);
        v.push("…");
    }
    v.join(", ")
}

/// Dimensions not sliced whose value sets differ between the sides.
pub fn unsliced_differences(a: &[Row], b: &[Row], slicing: &[Dim]) -> Vec<String> {
    Dim::ALL
        .into_iter()
        .filter(|d| !slicing.contains(d))
        .filter_map(|d| {
            let (va, vb) = (values(a, d), values(b, d));
            (va != vb).then(|| {
                format!(
                    "warning: stats compare: the sides differ in {}, which is not sliced (A: {}; \
                     B: {}); only keys with equal values pair",
                    d.name(),
                    shown(&va),
                    shown(&vb)
                )
            })
        })
        .collect()
}

/// A host's identity as far as noise goes, from its recorded context.
fn host_identity(json: &str) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let field = |k: &str| v.get(k).map_or("?".to_string(), |x| x.to_string().replace('"', ""));
    let model = field("cpu_model");
    let host = format!(
        "{model}, {} CPUs, {} kB, {}",
        field("online_cpus"),
        field("total_memory_kb"),
        field("kernel_release")
    );
    Some((host, model))
}

/// The warning when the runs mix hosts or CPU models, or `None`.
pub fn mixed_hosts(a: &[Row], b: &[Row]) -> Option<String> {
    let jsons: BTreeSet<&str> = a.iter().chain(b).filter_map(|r| r.host_json.as_deref()).collect();
    let ids: Vec<(String, String)> = jsons.into_iter().filter_map(host_identity).collect();
    let hosts: BTreeSet<&String> = ids.iter().map(|(h, _)| h).collect();
    let models: BTreeSet<&String> = ids.iter().map(|(_, m)| m).collect();
    if models.len() > 1 {
        let list: BTreeSet<String> = models.into_iter().cloned().collect();
        return Some(format!(
            "warning: stats compare: the runs mix CPU models ({}); compare runs from one host",
            shown(&list)
        ));
    }
    (hosts.len() > 1).then(|| {
        format!(
            "warning: stats compare: the runs come from {} different hosts (CPU count, memory or \
             kernel differ); compare runs from one host",
            hosts.len()
        )
    })
}

/// The first and last write time of `rows`, ignoring rows without one.
fn time_span(rows: &[Row]) -> Option<(&str, &str)> {
    let ts = rows.iter().map(|r| r.timestamp.as_str()).filter(|t| !t.is_empty());
    Some((ts.clone().min()?, ts.max()?))
}

/// The warning when every run of one side came before every run of the other, or `None`.
pub fn no_interleaving(a: &[Row], b: &[Row]) -> Option<String> {
    let ((a_first, a_last), (b_first, b_last)) = (time_span(a)?, time_span(b)?);
    let (first, second) = if a_last < b_first {
        ("A", "B")
    } else if b_last < a_first {
        ("B", "A")
    } else {
        return None;
    };
    Some(format!(
        "warning: stats compare: every {first} run came before every {second} run, so a drift \
         of the host between them reads as a change; interleave the runs (alternate A and B \
         repeats)"
    ))
}

/// Whether a run's recorded load says others kept its host busy.
pub fn was_loaded(load: &HostLoad, cpus: Option<usize>) -> bool {
    let steal = load.steal_pct.is_some_and(|s| s >= STEAL_PCT);
    let busy = load.loadavg_1m_start.zip(cpus).is_some_and(|(l, c)| l > c as f64);
    steal || busy
}

fn online_cpus(row: &Row) -> Option<usize> {
    let v: serde_json::Value = serde_json::from_str(row.host_json.as_deref()?).ok()?;
    v.get("online_cpus")?.as_u64().map(|c| c as usize)
}

/// The warning when some of `runs` (those behind the findings) ran on a loaded host.
pub fn loaded_runs(runs: &[&Row], loads: &HashMap<i64, HostLoad>) -> Option<String> {
    let mut cpus_of: HashMap<&str, Option<usize>> = HashMap::new();
    let loaded: Vec<&HostLoad> = runs
        .iter()
        .filter_map(|r| {
            let load = loads.get(&r.sidecar_id)?;
            let cpus = *cpus_of
                .entry(r.host_json.as_deref().unwrap_or(""))
                .or_insert_with(|| online_cpus(r));
            was_loaded(load, cpus).then_some(load)
        })
        .collect();
    if loaded.is_empty() {
        return None;
    }
    let worst = loaded.iter().filter_map(|l| l.loadavg_1m_start).fold(0.0, f64::max);
    Some(format!(
        "warning: stats compare: {} of the {} runs behind the regressions and improvements ran on a loaded host (load \
         average up to {worst:.1} before the test); their noise is the host's, rerun on an idle \
         machine",
        loaded.len(),
        runs.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: &str) -> Row {
        let mut r = Row::new("t");
        r.timestamp = ts.into();
        r
    }

    #[test]
    fn a_difference_in_an_unsliced_dimension_is_named() {
        let a = [row("1")];
        let mut b = row("2");
        b.kernel_version = Some("6.14".into());
        let w = unsliced_differences(&a, std::slice::from_ref(&b), &[Dim::ProjectCommit]);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("differ in kernel, which is not sliced (A: (null); B: 6.14)"),
            "{w:?}"
        );
        assert!(unsliced_differences(&a, &[b], &[Dim::Kernel]).is_empty());
    }

    #[test]
    fn drift_is_flagged_only_without_interleaving() {
        let a = [row("2026-01-01T00:00:01Z"), row("2026-01-01T00:00:02Z")];
        let b = [row("2026-01-01T00:00:03Z")];
        assert!(no_interleaving(&a, &b).unwrap().contains("every A run came before every B run"));
        assert!(no_interleaving(&b, &a).unwrap().contains("every B run came before every A run"));
        let mixed = [row("2026-01-01T00:00:00Z"), row("2026-01-01T00:00:09Z")];
        assert_eq!(no_interleaving(&a, &mixed), None);
        assert_eq!(no_interleaving(&[row("")], &b), None, "no timestamps, no claim");
    }

    #[test]
    fn mixed_cpu_models_and_hosts_are_flagged() {
        let host = |model: &str, cpus: u32| {
            let mut r = row("1");
            r.host_json = Some(format!(r#"{{"cpu_model":"{model}","online_cpus":{cpus}}}"#).into());
            r
        };
        assert_eq!(mixed_hosts(&[host("EPYC", 8)], &[host("EPYC", 8)]), None);
        assert!(
            mixed_hosts(&[host("EPYC", 8)], &[host("Xeon", 8)]).unwrap().contains("EPYC, Xeon")
        );
        assert!(
            mixed_hosts(&[host("EPYC", 8)], &[host("EPYC", 4)])
                .unwrap()
                .contains("2 different hosts")
        );
    }

    #[test]
    fn a_loaded_run_is_one_whose_host_had_more_load_than_cpus_before_it_started() {
        let load = |l: f64, steal: f64| HostLoad {
            loadavg_1m_start: Some(l),
            steal_pct: Some(steal),
            ..Default::default()
        };
        assert!(was_loaded(&load(4.3, 0.0), Some(2)));
        assert!(!was_loaded(&load(1.5, 0.0), Some(2)));
        assert!(was_loaded(&load(0.1, 9.0), None));
        assert!(!was_loaded(&load(9.0, 0.0), None), "CPUs unknown: load makes no claim");
        let mut r = row("1");
        r.sidecar_id = 7;
        r.host_json = Some(r#"{"online_cpus":2}"#.into());
        let loads: HashMap<i64, HostLoad> = [(7, load(4.3, 0.0))].into();
        let w = loaded_runs(&[&r], &loads).unwrap();
        assert!(
            w.contains(
                "1 of the 1 runs behind the regressions and improvements ran on a loaded host"
            ),
            "{w}"
        );
        assert!(w.contains("up to 4.3"), "{w}");
        assert_eq!(loaded_runs(&[&r], &HashMap::new()), None);
    }
}
