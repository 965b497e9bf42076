//! The commit ids a pool holds, as sidecars recorded them: for the project, the 7-hex
//! `project_commit` (with `-dirty` when the tree was dirty) and the full 40-hex id when the
//! writer recorded one; for the kernel, `kernel_commit` alone (no full id is recorded). What
//! a filter value matches is `crate::compare::revspec`'s rule, not this module's.
//!
//! Only the stored commits that can fit the filter values asked about are returned, so the
//! cost follows the number of distinct commits, not of sidecars: the short forms come from
//! `dimension_value` (one row per distinct value), and the full ids are read only for the
//! short forms a value could fit. A pool scoped to one runs root (`--dir`) reads that root's
//! sidecars instead, as `dimension_value` is the whole database's.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::Warehouse;
use super::runs::{in_root_sql, root_id};
use crate::compare::PoolScope;
use crate::compare::revspec::{StoredCommit, looks_like_literal_hash};

/// The stored project and kernel commits of the pool `scope` names that the filter values
/// `project` and `kernel` may match (every commit a value fits under
/// [`crate::compare::revspec::match_stored`] is among them).
pub fn stored_commits(
    wh: &Warehouse,
    scope: &PoolScope,
    project: &[String],
    kernel: &[String],
) -> rusqlite::Result<(Vec<StoredCommit>, Vec<StoredCommit>)> {
    let Some(root) = &scope.archive_root else {
        return Ok((
            candidates(wh, "commit", project, true)?,
            candidates(wh, "kernel_commit", kernel, false)?,
        ));
    };
    // A root never ingested holds nothing.
    let Some(id) = root_id(wh, root)? else { return Ok((Vec::new(), Vec::new())) };
    let select = |columns: &str, column: &str| -> rusqlite::Result<Vec<StoredCommit>> {
        let sql = format!(
            "SELECT DISTINCT {columns} FROM ingested_sidecar s WHERE s.{column} IS NOT NULL \
             AND {}",
            in_root_sql(1)
        );
        let mut stmt = wh.conn().prepare(&sql)?;
        stmt.query_map(params_from_iter([Value::Integer(id)].iter()), |r| {
            Ok(StoredCommit { short: r.get(0)?, full: r.get(1)? })
        })?
        .collect()
    };
    let project = select("s.project_commit, s.project_commit_id", "project_commit")?;
    let kernel = select("s.kernel_commit, NULL", "kernel_commit")?;
    Ok((project, kernel))
}

/// The distinct stored values of one commit dimension (`?1`: `commit` or `kernel_commit`).
const SHORTS_SQL: &str =
    "SELECT value FROM dimension_value WHERE dim = ?1 AND value IS NOT NULL ORDER BY value";

/// The full ids recorded under one short project commit.
const FULLS_SQL: &str =
    "SELECT DISTINCT s.project_commit_id FROM ingested_sidecar s WHERE s.project_commit = ?1";

/// `EXPLAIN QUERY PLAN` of the statements matching commits against the whole pool: the
/// short forms, then one short form's full ids.
pub fn commit_query_plans(wh: &Warehouse) -> rusqlite::Result<Vec<Vec<String>>> {
    let explain = super::compare_rows::explain;
    Ok(vec![
        explain(wh, SHORTS_SQL, &[Value::Text("commit".into())])?,
        explain(wh, FULLS_SQL, &[Value::Text("abc1234".into())])?,
    ])
}

/// The distinct short forms of dimension `dim` that equal one of `values` or could fit a
/// literal hex one, each with its recorded full ids (`with_full`) or none.
///
/// A value that is itself a stored short form matches that form and nothing else (before
/// any full id is looked at), so the full ids of a short form are read only when a value
/// that is not a stored short form could fit it: the usual compare names both commits by
/// their short forms and reads none (each would be a distinct scan of a commit's rows).
fn candidates(
    wh: &Warehouse,
    dim: &str,
    values: &[String],
    with_full: bool,
) -> rusqlite::Result<Vec<StoredCommit>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let conn = wh.conn();
    let mut shorts = conn.prepare_cached(SHORTS_SQL)?;
    let shorts: Vec<String> =
        shorts.query_map([dim], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
    let mut fulls = conn.prepare_cached(FULLS_SQL)?;
    let inexact: Vec<&String> =
        values.iter().filter(|v| shorts.binary_search(v).is_err()).collect();
    let mut out = Vec::new();
    for short in shorts.iter().filter(|s| values.iter().any(|v| may_fit(v, s))) {
        let short = short.clone();
        if !with_full || !inexact.iter().any(|v| may_fit(v, &short)) {
            out.push(StoredCommit { short, full: None });
            continue;
        }
        let ids: Vec<Option<String>> =
            fulls.query_map([&short], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        out.extend(ids.into_iter().map(|full| StoredCommit { short: short.clone(), full }));
    }
    Ok(out)
}

/// Whether `value` can match the stored short form `short`: it is that short form, or both
/// are literal hex ids with the same `-dirty` state that agree (ignoring case) on their
/// common length. A recorded full id begins with its short form, so a value that is a prefix
/// of the full id agrees with the short form too.
fn may_fit(value: &str, short: &str) -> bool {
    if value == short {
        return true;
    }
    if !looks_like_literal_hash(value) || !looks_like_literal_hash(short) {
        return false;
    }
    let (v, s) = (value.to_ascii_lowercase(), short.to_ascii_lowercase());
    let (v_hex, v_dirty) = v.strip_suffix("-dirty").map_or((v.as_str(), false), |h| (h, true));
    let (s_hex, s_dirty) = s.strip_suffix("-dirty").map_or((s.as_str(), false), |h| (h, true));
    let n = v_hex.len().min(s_hex.len());
    v_dirty == s_dirty && v_hex[..n] == s_hex[..n]
}

#[cfg(test)]
mod tests {
    use super::may_fit;

    #[test]
    fn a_value_may_fit_a_short_form_it_agrees_with() {
        assert!(may_fit("abc1234", "abc1234"));
        assert!(may_fit("ABC1234ffff", "abc1234"));
        assert!(may_fit("abc1234-dirty", "abc1234-dirty"));
        assert!(may_fit("main", "main"));
        assert!(!may_fit("abc1234-dirty", "abc1234"));
        assert!(!may_fit("abc1235", "abc1234"));
        assert!(!may_fit("main", "abc1234"));
    }
}
