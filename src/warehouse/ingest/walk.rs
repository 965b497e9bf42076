//! Walk stage: which files this ingest reads.
//!
//! Resolves the runs root and registers it, asks the incremental plan
//! ([`super::super::incremental`]) what changed since the last ingest, and cuts the files to
//! read into batches for the parse stage. Not here: reading them ([`super::parse`]).

use std::fs;
use std::path::Path;

use rusqlite::TransactionBehavior;

use super::super::incremental::{self, FileStat, Plan};
use super::super::open::Warehouse;
use super::{FileProblem, IngestError, IngestReport};

/// Files handled per transaction. Large enough to amortize the commit, small enough that a
/// killed ingest loses little work and a concurrent reader is not starved.
const BATCH_SIZE: usize = 2000;

/// What the walk found: the root's id, the plan, and the report so far (its counts and the
/// paths ingest cannot record).
pub(super) struct Walk {
    pub root_id: i64,
    pub plan: Plan,
    pub report: IngestReport,
}

/// Walk `root` and compare it with what the warehouse recorded.
pub(super) fn walk(wh: &mut Warehouse, root: &Path) -> Result<Walk, IngestError> {
    if let Some(e) = IngestError::check_root(root) {
        return Err(e);
    }
    let root = fs::canonicalize(root)
        .map_err(|source| IngestError::Root { path: root.to_path_buf(), source })?;
    let root_id = register_root(wh, &root)?;
    let mut plan = incremental::plan(&wh.conn, &root, root_id)?;
    let mut report = IngestReport {
        root,
        files_seen: plan.files_seen,
        unchanged: plan.unchanged,
        known_corrupt: plan.known_corrupt,
        vanished: plan.vanished.len(),
        ..Default::default()
    };
    report.problems.extend(plan.skipped.drain(..).map(|skip| FileProblem {
        path: skip.path,
        kind: skip.kind,
        reason: skip.reason,
        will_retry: false,
    }));
    Ok(Walk { root_id, plan, report })
}

/// The files to read, [`BATCH_SIZE`] per batch, in walk order.
pub(super) fn batches(todo: Vec<FileStat>) -> Vec<Vec<FileStat>> {
    let mut batches = Vec::with_capacity(todo.len().div_ceil(BATCH_SIZE));
    let mut it = todo.into_iter().peekable();
    while it.peek().is_some() {
        batches.push(it.by_ref().take(BATCH_SIZE).collect());
    }
    batches
}

fn register_root(wh: &mut Warehouse, root: &Path) -> Result<i64, IngestError> {
    // A known root costs no write transaction (the common, incremental case).
    if let Some(id) = super::super::runs::root_id(wh, root)? {
        return Ok(id);
    }
    let path = root.to_string_lossy();
    let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute("INSERT OR IGNORE INTO runs_root (path) VALUES (?1)", [&path])?;
    let id =
        tx.query_row("SELECT root_id FROM runs_root WHERE path = ?1", [&path], |r| r.get(0))?;
    tx.commit()?;
    Ok(id)
}
