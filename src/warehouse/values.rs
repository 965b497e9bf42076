//! Distinct values of every filterable dimension (`stats list-values`), read from the
//! `dimension_value` table ingest maintains (see [`super::ingest`]).
//!
//! The pool is the whole database: every sidecar ever ingested into it, including those whose
//! files were pre-cleared since; [`root_dimension_values`] narrows it to one runs root's history
//! (`--dir` against an archive that several roots were ingested into). Rendering is
//! [`crate::report::values`]'s job.

use std::collections::BTreeSet;

use rusqlite::params;
use rusqlite::types::Value;

use super::open::Warehouse;
use super::runs::in_root_sql;
use crate::dimension::{ARCHIVE_SOURCE, Dim};

/// Sorted, deduplicated values per dimension, one field per [`Dim`] (named by its
/// [`Dim::label`]). The four optional dimensions put `None` (a null in the sidecar) first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DimensionValues {
    pub kernel: Vec<Option<String>>,
    pub commit: Vec<Option<String>>,
    pub kernel_commit: Vec<Option<String>>,
    pub source: Vec<Option<String>>,
    pub scheduler: Vec<String>,
    pub topology: Vec<String>,
    pub work_type: Vec<String>,
    pub flags: Vec<String>,
}

/// The distinct values of one dimension (bound as its label) from `dimension_value`, which
/// ingest keeps (one row per distinct value, so a query costs the number of values, not of
/// sidecars). `ORDER BY` on the `(dim, value)` index reads it in order instead of sorting;
/// NULL sorts first and text compares bytewise, matching Rust's `Option<String>` order.
pub(crate) const VALUES_SQL: &str =
    "SELECT DISTINCT value FROM dimension_value WHERE dim = ?1 ORDER BY value";

impl DimensionValues {
    /// Relabel every sidecar's source as [`ARCHIVE_SOURCE`] (what `--dir` means): a non-empty
    /// pool has exactly one source value.
    pub fn relabel_sources_as_archive(&mut self) {
        if !self.source.is_empty() {
            self.source = vec![Some(ARCHIVE_SOURCE.to_string())];
        }
    }

    pub fn is_empty(&self) -> bool {
        self.scheduler.is_empty()
    }

    /// One dimension's values (`None` = a null).
    pub fn get(&self, dim: Dim) -> Vec<Option<&str>> {
        match dim {
            Dim::Kernel => optional(&self.kernel),
            Dim::ProjectCommit => optional(&self.commit),
            Dim::KernelCommit => optional(&self.kernel_commit),
            Dim::RunSource => optional(&self.source),
            Dim::Scheduler => required(&self.scheduler),
            Dim::Topology => required(&self.topology),
            Dim::WorkType => required(&self.work_type),
            Dim::Flags => required(&self.flags),
        }
    }

    /// Every dimension's label and values, in the order `stats list-values` prints them.
    pub fn labelled(&self) -> [(&'static str, Vec<Option<&str>>); 8] {
        Dim::LISTED.map(|dim| (dim.label(), self.get(dim)))
    }

    /// Build from each dimension's values. A dimension that is never null drops nulls (its
    /// column is `NOT NULL`, so there are none).
    fn from_dims(
        mut values: impl FnMut(Dim) -> rusqlite::Result<Vec<Option<String>>>,
    ) -> rusqlite::Result<DimensionValues> {
        let mut never_null =
            |dim| values(dim).map(|v| v.into_iter().flatten().collect::<Vec<String>>());
        let (scheduler, topology) = (never_null(Dim::Scheduler)?, never_null(Dim::Topology)?);
        let (work_type, flags) = (never_null(Dim::WorkType)?, never_null(Dim::Flags)?);
        Ok(DimensionValues {
            kernel: values(Dim::Kernel)?,
            commit: values(Dim::ProjectCommit)?,
            kernel_commit: values(Dim::KernelCommit)?,
            source: values(Dim::RunSource)?,
            scheduler,
            topology,
            work_type,
            flags,
        })
    }
}

/// Read every dimension's distinct values.
pub fn dimension_values(wh: &Warehouse) -> rusqlite::Result<DimensionValues> {
    let conn = wh.conn();
    DimensionValues::from_dims(|dim| {
        let mut stmt = conn.prepare_cached(VALUES_SQL)?;
        let rows = stmt.query_map([dim.label()], |r| r.get(0))?;
        rows.collect()
    })
}

/// `EXPLAIN QUERY PLAN` of the statement [`dimension_values`] runs per dimension.
pub fn values_query_plan(wh: &Warehouse) -> rusqlite::Result<Vec<String>> {
    super::compare_rows::explain(wh, VALUES_SQL, &[Value::Text(Dim::Kernel.label().into())])
}

/// The distinct values of one runs root's history (see [`super::runs::in_root_sql`]). When the
/// root is the only one in the database this is [`dimension_values`]; otherwise one pass over
/// the root's sidecars (and one over their flags).
pub fn root_dimension_values(wh: &Warehouse, root_id: i64) -> rusqlite::Result<DimensionValues> {
    let conn = wh.conn();
    let other_roots: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM runs_root WHERE root_id != ?1)",
        [root_id],
        |r| r.get(0),
    )?;
    if !other_roots {
        return dimension_values(wh);
    }
    // Every dimension but flags is one column of the row.
    let columns: Vec<Dim> = Dim::LISTED.into_iter().filter(|&d| d != Dim::Flags).collect();
    let mut sets: Vec<BTreeSet<Option<String>>> = vec![BTreeSet::new(); columns.len()];
    let select: Vec<String> = columns.iter().map(|d| format!("s.{}", d.column())).collect();
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM ingested_sidecar s WHERE {}",
        select.join(", "),
        in_root_sql(1)
    ))?;
    let mut rows = stmt.query(params![root_id])?;
    while let Some(r) = rows.next()? {
        for (i, set) in sets.iter_mut().enumerate() {
            set.insert(r.get(i)?);
        }
    }
    let mut stmt = conn.prepare(&format!(
        "SELECT DISTINCT g.flag FROM sidecar_flag g \
         JOIN ingested_sidecar s ON s.sidecar_id = g.sidecar_id WHERE {} ORDER BY 1",
        in_root_sql(1)
    ))?;
    let flags: Vec<Option<String>> =
        stmt.query_map(params![root_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let mut flags = Some(flags);
    DimensionValues::from_dims(|dim| match columns.iter().position(|&d| d == dim) {
        Some(i) => Ok(std::mem::take(&mut sets[i]).into_iter().collect()),
        None => Ok(flags.take().unwrap_or_default()),
    })
}

/// Every distinct test name, sorted. `list-values` does not show them; this reads the
/// test-name index with one seek per distinct name rather than scanning the sidecars.
pub fn test_names(wh: &Warehouse) -> rusqlite::Result<Vec<String>> {
    let mut stmt = wh.conn().prepare_cached(
        "WITH RECURSIVE v(x) AS (SELECT min(test_name) FROM ingested_sidecar UNION ALL \
         SELECT (SELECT min(test_name) FROM ingested_sidecar WHERE test_name > v.x) \
         FROM v WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

fn optional(xs: &[Option<String>]) -> Vec<Option<&str>> {
    xs.iter().map(|x| x.as_deref()).collect()
}

fn required(xs: &[String]) -> Vec<Option<&str>> {
    xs.iter().map(|x| Some(x.as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::SidecarResult;
    use crate::warehouse::ingest::ingest_root;

    fn write(root: &std::path::Path, rel: &str, doc: &SidecarResult) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, doc.to_json_pretty()).unwrap();
    }

    #[test]
    fn every_dimension_query_reads_an_index_not_the_table() {
        let wh = Warehouse::open_in_memory().unwrap();
        for dim in Dim::LISTED {
            let mut stmt = wh.conn().prepare(&format!("EXPLAIN QUERY PLAN {VALUES_SQL}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([dim.label()], |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let text = plan.join(" | ");
            let dim = dim.label();
            assert!(
                text.contains("USING COVERING INDEX") || text.contains("USING INDEX"),
                "{dim}: {text}"
            );
            assert!(
                !text.contains("TEMP B-TREE"),
                "{dim} sorts instead of reading in order: {text}"
            );
        }
    }

    #[test]
    fn values_are_deduplicated_null_first_then_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut a = SidecarResult::empty("t_a");
        a.kernel_version = Some("6.14.2".into());
        a.scheduler = "scx_rusty".into();
        a.active_flags = vec!["llc".into(), "borrow".into()];
        a.run_source = Some("local".into());
        let mut b = SidecarResult::empty("t_b");
        b.kernel_version = Some("6.13.0".into());
        b.active_flags = vec!["llc".into()];
        let c = SidecarResult::empty("t_c");
        write(root, "run1/a.ktstr.json", &a);
        write(root, "run1/b.ktstr.json", &b);
        write(root, "run2/c.ktstr.json", &c);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        let mut v = dimension_values(&wh).unwrap();
        assert_eq!(v.kernel, vec![None, Some("6.13.0".into()), Some("6.14.2".into())]);
        assert_eq!(v.commit, vec![None]);
        assert_eq!(v.source, vec![None, Some("local".into())]);
        assert_eq!(v.scheduler, vec!["eevdf".to_string(), "scx_rusty".into()]);
        assert_eq!(v.flags, vec!["borrow".to_string(), "llc".into()]);
        v.relabel_sources_as_archive();
        assert_eq!(v.source, vec![Some("archive".into())]);
        assert_eq!(test_names(&wh).unwrap(), ["t_a", "t_b", "t_c"]);
    }

    #[test]
    fn a_root_s_values_leave_out_other_roots_in_the_same_database() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        let mut a = SidecarResult::empty("t_a");
        a.kernel_version = Some("6.14.2".into());
        a.active_flags = vec!["llc".into()];
        let mut b = SidecarResult::empty("t_b");
        b.scheduler = "scx_lavd".into();
        b.active_flags = vec!["steal".into()];
        write(&one, "run/a.ktstr.json", &a);
        write(&two, "run/b.ktstr.json", &b);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, &one, None).unwrap();
        let only = |wh: &Warehouse, root: &std::path::Path| {
            let id = super::super::runs::root_id(wh, root).unwrap().unwrap();
            root_dimension_values(wh, id).unwrap()
        };
        // The only root: the whole database.
        assert_eq!(only(&wh, &one), dimension_values(&wh).unwrap());
        ingest_root(&mut wh, &two, None).unwrap();

        let v = only(&wh, &one);
        assert_eq!(v.kernel, vec![Some("6.14.2".into())]);
        assert_eq!(v.scheduler, vec!["eevdf".to_string()]);
        assert_eq!(v.flags, vec!["llc".to_string()]);
        let v = only(&wh, &two);
        assert_eq!(
            (v.kernel, v.scheduler, v.flags),
            (vec![None], vec!["scx_lavd".into()], vec!["steal".into()])
        );
        assert_eq!(dimension_values(&wh).unwrap().scheduler, ["eevdf", "scx_lavd"]);
    }

    #[test]
    fn an_empty_pool_has_no_values_and_stays_unlabelled() {
        let wh = Warehouse::open_in_memory().unwrap();
        let mut v = dimension_values(&wh).unwrap();
        v.relabel_sources_as_archive();
        assert!(v.is_empty());
        assert_eq!(v, DimensionValues::default());
    }
}
