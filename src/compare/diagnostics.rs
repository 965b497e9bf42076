//! Messages about the data rather than the verdict: the zero-match diagnostic (§4.10), the
//! dirty-build warning (§4.9), the stale-dirty-state warning (ours) and the host delta
//! (§4.12). All return text; the CLI decides where it goes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{Dim, Row, Side, SideFilter};
use crate::sidecar::HostContext;
use crate::warehouse::compare_rows::PoolFacts;

/// The error for a side whose filter matched nothing, with `hint:` lines.
pub fn zero_match_diagnostic(side: Side, filter: &SideFilter, facts: &PoolFacts) -> String {
    let mut out = format!(
        "stats compare: {} side filter matched 0 sidecars in pool ({} pooled). Check the \
         per-side filters or confirm the runs exist with `cargo ktstr stats list`.",
        side.letter(),
        facts.total
    );
    let commit_dims =
        [(Dim::ProjectCommit, &facts.project_commits), (Dim::KernelCommit, &facts.kernel_commits)];
    for (dim, present) in commit_dims {
        for v in filter.get(dim) {
            let dirty = format!("{v}-dirty");
            if present.contains(&dirty) {
                let _ = write!(out, "\nhint: did you mean --{} {dirty}?", dim.option());
            }
        }
    }
    let absent: Vec<&String> =
        filter.get(Dim::RunSource).iter().filter(|v| !facts.run_sources.contains(*v)).collect();
    if !absent.is_empty() {
        if facts.run_sources.is_empty() {
            let _ = write!(
                out,
                "\nhint: run-source {} not in the pool; every pooled row has a null run-source",
                quoted(&absent)
            );
        } else {
            let present: Vec<&String> = facts.run_sources.iter().collect();
            let _ = write!(
                out,
                "\nhint: run-source {} not in the pool; present values: {} (matching is \
                 case-sensitive)",
                quoted(&absent),
                quoted(&present)
            );
        }
    }
    if !filter.get(Dim::ProjectCommit).is_empty() || !filter.get(Dim::KernelCommit).is_empty() {
        out.push_str(
            "\nhint: run `cargo ktstr stats list-values` to see the commits present in the pool",
        );
    }
    out
}

fn quoted(values: &[&String]) -> String {
    values.iter().map(|v| format!("'{v}'")).collect::<Vec<_>>().join(", ")
}

/// The warning when either side includes `-dirty` builds, or `None`.
pub fn dirty_warning(rows_a: &[Row], rows_b: &[Row]) -> Option<String> {
    let dirty = |f: fn(&Row) -> Option<&str>| -> BTreeSet<String> {
        rows_a
            .iter()
            .chain(rows_b)
            .filter_map(f)
            .filter(|c| c.ends_with("-dirty"))
            .map(str::to_string)
            .collect()
    };
    let kernel = dirty(|r| r.kernel_commit.as_deref());
    let project = dirty(|r| r.project_commit.as_deref());
    if kernel.is_empty() && project.is_empty() {
        return None;
    }
    let mut out = String::from("warning: comparison includes dirty builds:");
    for v in &kernel {
        let _ =
            write!(out, "\n  - kernel source: {v} (working tree may have changed since this run)");
    }
    for v in &project {
        let _ = write!(out, "\n  - project: {v} (working tree may have changed since this run)");
    }
    out.push_str("\n  Dirty runs overwrite previous results with the same HEAD.");
    out.push_str("\n  Commit changes for reproducible-ish comparisons.");
    Some(out)
}

/// Our warning when older uncommitted states of a commit were left out of a side.
pub fn stale_dirty_warning(side: Side, label: &str, dropped: usize) -> Option<String> {
    (dropped > 0).then(|| {
        format!(
            "warning: stats compare: side {} ('{label}'): left out {dropped} sample(s) from \
             older uncommitted states of the same commit; only the most recently written dirty \
             state is averaged. Commit the change to compare it reproducibly.",
            side.letter()
        )
    })
}

/// The host section: text starting with a newline, or empty when neither side has a host.
pub fn host_delta(
    label_a: &str,
    label_b: &str,
    a: Option<&HostContext>,
    b: Option<&HostContext>,
) -> String {
    match (a, b) {
        (None, None) => String::new(),
        (Some(_), None) => format!("\nhost: captured in '{label_a}' only, delta unavailable"),
        (None, Some(_)) => format!("\nhost: captured in '{label_b}' only, delta unavailable"),
        (Some(a), Some(b)) => {
            let lines = host_diff(a, b);
            if lines.is_empty() {
                match (&a.arch, &b.arch) {
                    (Some(x), Some(y)) if x == y => {
                        format!("\nhost: identical between '{label_a}' and '{label_b}' (arch: {x})")
                    }
                    _ => format!("\nhost: identical between '{label_a}' and '{label_b}'"),
                }
            } else {
                let mut out = format!("\nhost delta ('{label_a}' → '{label_b}'):");
                for l in lines {
                    out.push('\n');
                    out.push_str(&l);
                }
                out
            }
        }
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "(unknown)".to_string(), T::to_string)
}

fn host_diff(a: &HostContext, b: &HostContext) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = |name: &str, x: String, y: String| {
        if x != y {
            out.push(format!("  {name}: {x} → {y}"));
        }
    };
    field("kernel_name", opt(&a.kernel_name), opt(&b.kernel_name));
    field("kernel_release", opt(&a.kernel_release), opt(&b.kernel_release));
    field("arch", opt(&a.arch), opt(&b.arch));
    field("cpu_model", opt(&a.cpu_model), opt(&b.cpu_model));
    field("cpu_vendor", opt(&a.cpu_vendor), opt(&b.cpu_vendor));
    field("total_memory_kb", opt(&a.total_memory_kb), opt(&b.total_memory_kb));
    field("hugepages_total", opt(&a.hugepages_total), opt(&b.hugepages_total));
    field("hugepages_free", opt(&a.hugepages_free), opt(&b.hugepages_free));
    field("hugepages_size_kb", opt(&a.hugepages_size_kb), opt(&b.hugepages_size_kb));
    field("online_cpus", opt(&a.online_cpus), opt(&b.online_cpus));
    field("numa_nodes", opt(&a.numa_nodes), opt(&b.numa_nodes));
    field("thp_enabled", opt(&a.thp_enabled), opt(&b.thp_enabled));
    field("thp_defrag", opt(&a.thp_defrag), opt(&b.thp_defrag));
    field("kernel_cmdline", opt(&a.kernel_cmdline), opt(&b.kernel_cmdline));
    let cpus: BTreeSet<u32> =
        a.cpufreq_governor.keys().chain(b.cpufreq_governor.keys()).copied().collect();
    let absent = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".to_string());
    for cpu in cpus {
        let (x, y) = (absent(a.cpufreq_governor.get(&cpu)), absent(b.cpufreq_governor.get(&cpu)));
        if x != y {
            out.push(format!("  cpufreq_governor.cpu{cpu}: {x} → {y}"));
        }
    }
    match (&a.sched_tunables, &b.sched_tunables) {
        (Some(x), Some(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (vx, vy) = (absent(x.get(k)), absent(y.get(k)));
                if vx != vy {
                    out.push(format!("  sched_tunables.{k}: {vx} → {vy}"));
                }
            }
        }
        (None, None) => {}
        (x, y) => {
            let describe = |m: &Option<std::collections::BTreeMap<String, String>>| match m {
                None => "(unknown)".to_string(),
                Some(m) if m.is_empty() => "(empty)".to_string(),
                Some(m) if m.len() == 1 => "(1 entry)".to_string(),
                Some(m) => format!("({} entries)", m.len()),
            };
            out.push(format!("  sched_tunables: {} → {}", describe(x), describe(y)));
        }
    }
    match (&a.heap_state, &b.heap_state) {
        (Some(x), Some(y)) if x != y => {
            out.push("  heap_state:".to_string());
            let pairs = [
                ("active_bytes", opt(&x.active_bytes), opt(&y.active_bytes)),
                ("allocated_bytes", opt(&x.allocated_bytes), opt(&y.allocated_bytes)),
                ("resident_bytes", opt(&x.resident_bytes), opt(&y.resident_bytes)),
                ("mapped_bytes", opt(&x.mapped_bytes), opt(&y.mapped_bytes)),
                ("narenas", opt(&x.narenas), opt(&y.narenas)),
            ];
            for (k, vx, vy) in pairs {
                if vx != vy {
                    out.push(format!("    {k}: {vx} → {vy}"));
                }
            }
        }
        (Some(_), None) => out.push("  heap_state: (present) → (unknown)".to_string()),
        (None, Some(_)) => out.push("  heap_state: (unknown) → (present)".to_string()),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_match_diagnostic_hints_dirty_commit_and_run_sources() {
        let facts = PoolFacts {
            total: 4,
            project_commits: ["abc1234-dirty".to_string()].into(),
            run_sources: ["ci".to_string()].into(),
            ..Default::default()
        };
        let f = SideFilter::default()
            .with(Dim::ProjectCommit, &["abc1234"])
            .with(Dim::RunSource, &["CI"]);
        let msg = zero_match_diagnostic(Side::A, &f, &facts);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(
            lines[0],
            "stats compare: A side filter matched 0 sidecars in pool (4 pooled). Check the \
             per-side filters or confirm the runs exist with `cargo ktstr stats list`."
        );
        assert_eq!(lines[1], "hint: did you mean --project-commit abc1234-dirty?");
        assert!(lines[2].contains("present values: 'ci'"), "{msg}");
        assert!(lines[3].contains("list-values"));
        let bare = zero_match_diagnostic(Side::B, &SideFilter::default(), &facts);
        assert_eq!(bare.lines().count(), 1);
    }

    #[test]
    fn dirty_warning_lists_kernel_then_project_sorted() {
        let mut a = Row::new("t");
        a.project_commit = Some("bbb-dirty".into());
        let mut b = Row::new("t");
        b.project_commit = Some("aaa-dirty".into());
        b.kernel_commit = Some("k-dirty".into());
        let w = dirty_warning(&[a], &[b]).unwrap();
        let lines: Vec<&str> = w.lines().collect();
        assert_eq!(lines[0], "warning: comparison includes dirty builds:");
        assert!(lines[1].starts_with("  - kernel source: k-dirty "));
        assert!(lines[2].starts_with("  - project: aaa-dirty "));
        assert!(lines[3].starts_with("  - project: bbb-dirty "));
        assert_eq!(lines.len(), 6);
        assert!(dirty_warning(&[Row::new("t")], &[]).is_none());
    }

    #[test]
    fn format_host_delta_identical_partial_arch_falls_back() {
        let a = HostContext { arch: Some("x86_64".into()), ..Default::default() };
        let b = HostContext { arch: Some("x86_64".into()), ..Default::default() };
        assert_eq!(
            host_delta("A", "B", Some(&a), Some(&b)),
            "\nhost: identical between 'A' and 'B' (arch: x86_64)"
        );
        let none = HostContext::default();
        assert_eq!(
            host_delta("A", "B", Some(&none), Some(&none)),
            "\nhost: identical between 'A' and 'B'"
        );
        assert_eq!(
            host_delta("A", "B", None, Some(&a)),
            "\nhost: captured in 'B' only, delta unavailable"
        );
        assert_eq!(host_delta("A", "B", None, None), "");
    }

    #[test]
    fn host_delta_shapes() {
        let mut a = HostContext { online_cpus: Some(4), ..Default::default() };
        a.cpufreq_governor.insert(0, "performance".into());
        a.sched_tunables = Some([("x".to_string(), "1".to_string())].into());
        let mut b = HostContext { online_cpus: None, ..Default::default() };
        b.cpufreq_governor.insert(1, "powersave".into());
        let d = host_delta("6.14", "6.15", Some(&a), Some(&b));
        assert_eq!(
            d,
            "\nhost delta ('6.14' → '6.15'):\n  online_cpus: 4 → (unknown)\n  \
             cpufreq_governor.cpu0: performance → (absent)\n  cpufreq_governor.cpu1: (absent) \
             → powersave\n  sched_tunables: (1 entry) → (unknown)"
        );
    }
}
