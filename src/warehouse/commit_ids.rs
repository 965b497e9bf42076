//! The commit ids a pool holds, as sidecars recorded them: for the project, the 7-hex
//! `project_commit` (with `-dirty` when the tree was dirty) and the full 40-hex id when the
//! writer recorded one; for the kernel, `kernel_commit` alone (no full id is recorded). What
//! a filter value matches is `crate::compare::revspec`'s rule, not this module's.

use rusqlite::params_from_iter;
use rusqlite::types::Value;

use super::Warehouse;
use super::runs::{in_root_sql, root_id};
use crate::compare::PoolScope;
use crate::compare::revspec::StoredCommit;

/// The distinct project and kernel commits of the pool `scope` names.
pub fn stored_commits(
    wh: &Warehouse,
    scope: &PoolScope,
) -> rusqlite::Result<(Vec<StoredCommit>, Vec<StoredCommit>)> {
    let (filter, params) = match &scope.archive_root {
        None => (String::new(), Vec::new()),
        Some(root) => match root_id(wh, root)? {
            Some(id) => (format!(" AND {}", in_root_sql(1)), vec![Value::Integer(id)]),
            // A root never ingested holds nothing.
            None => return Ok((Vec::new(), Vec::new())),
        },
    };
    let select = |columns: &str, column: &str| -> rusqlite::Result<Vec<StoredCommit>> {
        let sql = format!(
            "SELECT DISTINCT {columns} FROM ingested_sidecar s WHERE s.{column} IS NOT NULL{filter}"
        );
        let mut stmt = wh.conn().prepare(&sql)?;
        stmt.query_map(params_from_iter(params.iter()), |r| {
            Ok(StoredCommit { short: r.get(0)?, full: r.get(1)? })
        })?
        .collect()
    };
    let project = select("s.project_commit, s.project_commit_id", "project_commit")?;
    let kernel = select("s.kernel_commit, NULL", "kernel_commit")?;
    Ok((project, kernel))
}
