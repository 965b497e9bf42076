//! Messages about the data rather than the verdict: the zero-match diagnostic (§4.10), the
//! nothing-compared error (ours), the dirty-build warning (§4.9) and the stale-dirty-state
//! warning (ours). All return text; the
//! caller decides where it goes. The host delta is typed data, in [`super::host_delta`].

use std::collections::BTreeSet;
use std::fmt::Write as _;

use std::collections::HashSet;

use super::pairing::filter_haystack;
use super::{Dim, Group, PoolFacts, Row, Side, SideFilter};

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

/// The error when both sides matched rows but no pairing key is on both sides once `-E`
/// (`name_filter`) has narrowed them, so the gate compared nothing: a "0 regressions" then
/// would be a pass that checked nothing. `None` when at least one pair was compared.
pub fn nothing_compared(a: &[Group], b: &[Group], name_filter: Option<&str>) -> Option<String> {
    let included = |g: &&Group| name_filter.is_none_or(|f| filter_haystack(&g.first).contains(f));
    let keys_a: HashSet<_> = a.iter().filter(included).map(|g| &g.key).collect();
    let b_left = b.iter().filter(included).count();
    if b.iter().filter(included).any(|g| keys_a.contains(&g.key)) {
        return None;
    }
    let mut out = match name_filter {
        Some(f) if keys_a.is_empty() && b_left == 0 => format!(
            "stats compare: -E '{f}' matched none of the {} A and {} B test(s), so nothing was \
             compared",
            a.len(),
            b.len()
        ),
        Some(f) => format!(
            "stats compare: after -E '{f}', no test is on both sides ({} on A, {b_left} on B), \
             so nothing was compared",
            keys_a.len()
        ),
        None => format!(
            "stats compare: no test is on both sides ({} on A, {} on B), so nothing was \
             compared",
            a.len(),
            b.len()
        ),
    };
    out.push_str(if name_filter.is_some() {
        "\nhint: -E matches a substring of \"scenario topology scheduler work_type flags\"; \
         check it against `cargo ktstr stats list-values`"
    } else {
        "\nhint: the sides pair on test, topology, scheduler, work type and flags minus the \
         sliced dimensions; check both sides with `cargo ktstr stats list-values`"
    });
    Some(out)
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

/// The warning when sanitizing replaced `replaced` values, or `None`.
pub fn non_finite_warning(replaced: usize) -> Option<String> {
    (replaced > 0).then(|| {
        format!(
            "warning: stats compare: {replaced} non-finite or missing metric value(s) read as 0"
        )
    })
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
    fn nothing_compared_names_the_name_filter_or_the_missing_common_test() {
        use crate::compare::average_side;
        let pairing = [Dim::Scheduler, Dim::Flags];
        let a = average_side(&[Row::new("steady"), Row::new("burst")], &pairing);
        let b = average_side(&[Row::new("steady")], &pairing);
        assert_eq!(nothing_compared(&a, &b, None), None);
        assert_eq!(nothing_compared(&a, &b, Some("stead")), None);
        let msg = nothing_compared(&a, &b, Some("nomatch")).unwrap();
        assert!(
            msg.starts_with(
                "stats compare: -E 'nomatch' matched none of the 2 A and 1 B test(s), so \
                 nothing was compared\nhint: -E matches a substring"
            ),
            "{msg}"
        );
        let msg = nothing_compared(&a, &b, Some("burst")).unwrap();
        assert!(
            msg.starts_with(
                "stats compare: after -E 'burst', no test is on both sides (1 on A, 0 on B)"
            ),
            "{msg}"
        );
        let other = average_side(&[Row::new("other")], &pairing);
        let msg = nothing_compared(&a, &other, None).unwrap();
        assert!(
            msg.starts_with("stats compare: no test is on both sides (2 on A, 1 on B)"),
            "{msg}"
        );
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
}
