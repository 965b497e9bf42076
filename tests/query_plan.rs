//! The indexes `stats compare` and `stats list-values` rely on, pinned with `EXPLAIN QUERY
//! PLAN` on a warehouse the real binary built: each side's row selection, its ext-metric
//! attachment and its hosts' contexts, the matching of commit values against the pool, the
//! noise gate's history and host-load reads, and list-values' distinct values must reach their
//! tables through a named index (a `SEARCH`, never a `SCAN`), so a compare costs the size of
//! its two sides, not the size of the archive.

use ktstr::compare::{Dim, PoolScope, SideFilter};
use ktstr::sidecar::SidecarResult;
use ktstr::warehouse::Warehouse;
use ktstr::warehouse::commit_ids::commit_query_plans;
use ktstr::warehouse::compare_rows::{history_query_plans, side_query_plans};
use ktstr::warehouse::values::values_query_plan;

use crate::util::TestDir;

/// The index a series' history is read through: its identity, then its write time.
const HISTORY_INDEX: &str = "ingested_sidecar_test_name";

/// Four commits on two kernels, a few tests each, every sidecar with ext metrics.
fn archive() -> TestDir {
    let t = TestDir::new();
    for (c, commit) in ["aaaaaaa", "bbbbbbb", "ccccccc", "ddddddd"].iter().enumerate() {
        let kernel = if c < 2 { "6.14.2" } else { "6.15.0" };
        for n in 0..6 {
            let mut s = SidecarResult::empty(&format!("test_{n}"));
            s.scheduler = "scx_rusty".into();
            s.topology = "1n2l4c1t".into();
            s.project_commit = Some((*commit).into());
            s.kernel_version = Some(kernel.into());
            s.active_flags = if n % 2 == 0 { vec!["llc".into()] } else { Vec::new() };
            s.stats.worst_spread = n as f64;
            s.stats.ext_metrics.insert("custom".into(), n as f64);
            s.stats.ext_metrics.insert("other".into(), 1.0);
            t.write(&format!("{kernel}-{commit}/test_{n}.ktstr.json"), &s.to_json_pretty());
        }
    }
    t.run(&["stats", "ingest"]).expect_code(0);
    t
}

/// The plan lines that touch the main table (alias `s`).
fn main_table_lines(plan: &[String]) -> Vec<&String> {
    plan.iter().filter(|l| l.starts_with("SCAN s") || l.starts_with("SEARCH s ")).collect()
}

/// Every access to the main table is a SEARCH through `index` (a `M.m` kernel filter is two:
/// the exact release and the `M.m.*` range, a MULTI-INDEX OR on the same index).
#[track_caller]
fn assert_searches_with(plan: &[String], index: &str) {
    let main = main_table_lines(plan);
    assert!(!main.is_empty(), "the main table is read: {plan:?}");
    for line in main {
        let through = |kind: &str| line.starts_with(&format!("SEARCH s USING {kind} {index} ("));
        assert!(
            through("INDEX") || through("COVERING INDEX"),
            "expected a SEARCH through {index}: {plan:?}"
        );
    }
}

#[test]
fn compare_sides_and_their_ext_metrics_search_named_indexes() {
    let t = archive();
    let wh = Warehouse::open_read_only(&t.default_db()).expect("open the built warehouse");
    let cases = [
        (
            SideFilter::default().with(Dim::ProjectCommit, &["aaaaaaa"]),
            "ingested_sidecar_compare_by_project_commit",
        ),
        (
            SideFilter::default()
                .with(Dim::ProjectCommit, &["aaaaaaa"])
                .with(Dim::Kernel, &["6.14"])
                .with(Dim::Flags, &["llc"]),
            "ingested_sidecar_compare_by_project_commit",
        ),
        (
            SideFilter::default().with(Dim::Kernel, &["6.14"]),
            "ingested_sidecar_compare_by_kernel_version",
        ),
    ];
    for (filter, index) in cases {
        let plans = side_query_plans(&wh, &PoolScope::default(), &filter).unwrap();
        let [side, ext, ext_names, host] = plans.as_slice() else {
            panic!("four statements per side: {plans:?}")
        };
        assert_eq!(
            ext_names,
            &["SEARCH metric USING COVERING INDEX sqlite_autoindex_metric_1 (origin=?)"]
        );
        assert_eq!(host, &["SEARCH host_context USING INTEGER PRIMARY KEY (rowid=?)"]);
        assert_searches_with(side, index);
        if filter.get(Dim::Kernel).is_empty() {
            // The project-commit index also yields the rows in compare's order.
            assert!(!side.iter().any(|l| l.contains("TEMP B-TREE")), "{filter:?}: {side:?}");
        }
        assert_searches_with(ext, index);
        assert!(
            ext.iter().any(|l| l == "SEARCH v USING PRIMARY KEY (sidecar_id=?)"),
            "ext values by the sidecar's primary key: {ext:?}"
        );
        for plan in [side, ext] {
            assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "{filter:?}: {plan:?}");
        }
    }
}

#[test]
fn an_archive_scoped_side_still_searches_by_commit() {
    let t = archive();
    let wh = Warehouse::open_read_only(&t.default_db()).expect("open the built warehouse");
    let root = std::fs::canonicalize(t.root()).unwrap();
    let scope = PoolScope { archive_root: Some(root) };
    let filter = SideFilter::default().with(Dim::ProjectCommit, &["bbbbbbb"]);
    let plans = side_query_plans(&wh, &scope, &filter).unwrap();
    assert_eq!(plans.len(), 4, "{plans:?}");
    for plan in &plans[..2] {
        assert_searches_with(plan, "ingested_sidecar_compare_by_project_commit");
        assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "{plan:?}");
    }
}

/// No line of `plan` scans a table or sorts in a temporary B-tree.
#[track_caller]
fn assert_no_scan_or_sort(plan: &[String]) {
    assert!(!plan.iter().any(|l| l.starts_with("SCAN") || l.contains("TEMP B-TREE")), "{plan:?}");
}

#[test]
fn list_values_reads_the_dimension_value_index_in_order() {
    let t = archive();
    let wh = Warehouse::open_read_only(&t.default_db()).expect("open the built warehouse");
    let plan = values_query_plan(&wh).unwrap();
    assert_eq!(
        plan,
        ["SEARCH dimension_value USING COVERING INDEX sqlite_autoindex_dimension_value_1 (dim=?)"]
    );
}

#[test]
fn matching_commits_reads_distinct_values_and_one_commit_s_rows() {
    let t = archive();
    let wh = Warehouse::open_read_only(&t.default_db()).expect("open the built warehouse");
    let plans = commit_query_plans(&wh).unwrap();
    let [shorts, fulls] = plans.as_slice() else { panic!("two statements: {plans:?}") };
    // `value IS NOT NULL` is the index range past the NULL entry.
    assert_eq!(
        shorts,
        &["SEARCH dimension_value USING COVERING INDEX sqlite_autoindex_dimension_value_1 \
           (dim=? AND value>?)"]
    );
    // The full ids of one commit's rows: a DISTINCT over that commit's rows, never a scan.
    assert_searches_with(fulls, "ingested_sidecar_compare_by_project_commit");
    assert!(!fulls.iter().any(|l| l.starts_with("SCAN")), "{fulls:?}");
}

#[test]
fn the_noise_gate_history_and_host_loads_search_by_key() {
    let t = archive();
    let wh = Warehouse::open_read_only(&t.default_db()).expect("open the built warehouse");
    let plans = history_query_plans(&wh).unwrap();
    let [whole, rooted, document] = plans.as_slice() else { panic!("three: {plans:?}") };
    for plan in [whole, rooted] {
        assert_searches_with(plan, HISTORY_INDEX);
        assert_no_scan_or_sort(plan);
    }
    assert!(
        rooted.iter().any(|l| l.starts_with("SEARCH f USING INDEX source_file_sidecar")),
        "another root's copies by sidecar id: {rooted:?}"
    );
    assert_eq!(document, &["SEARCH sidecar_document USING INTEGER PRIMARY KEY (rowid=?)"]);
}
