//! `stats list`: run directories, newest first, including runs whose files were pre-cleared.
//!
//! Runs come from the warehouse (so a run whose directory was cleared by a newer run is still
//! listed, as `archived`) plus any run directory on disk the warehouse has no sidecars for
//! (its files are all corrupt or it is empty), as ktstr lists those too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;
use clap::Args;

use crate::cli::warehouse::{Location, Refresh, open_for_read};
use crate::cli::{WarehouseArgs, output};
use crate::report::runs::{self, RunRow, RunState};
use crate::warehouse::runs::{StoredRun, stored_runs};

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Runs root to list instead of the default one
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub warehouse: WarehouseArgs,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ListArgs) -> anyhow::Result<u8> {
    let opened = open_for_read(args.dir.as_deref(), &args.warehouse)?;
    let (stored, root, ingested) = match &opened {
        Some((wh, loc, refresh)) => {
            (stored_runs(wh, &loc.root)?, loc.root.clone(), matches!(refresh, Refresh::Ingested(_)))
        }
        None => (Vec::new(), Location::resolve(args.dir.as_deref(), None).root, false),
    };
    // Without an ingest the database is the whole truth; disk-only runs would show 0 tests.
    let disk = if ingested { disk_run_mtimes(&root)? } else { BTreeMap::new() };
    let rows = merge(stored, disk, &root);
    if rows.is_empty() {
        eprintln!(
            "no runs found at {}. Run `cargo ktstr test` to generate sidecar data.",
            root.display()
        );
        return Ok(crate::exit_code::SUCCESS);
    }
    output::emit(args.json, |o| runs::write_json(o, &rows), |o| runs::write_text(o, &rows))?;
    Ok(crate::exit_code::SUCCESS)
}

/// Run directories on disk with their mtimes (`None` when unreadable). A root that exists
/// but cannot be listed is an error, as in ktstr.
fn disk_run_mtimes(root: &Path) -> anyhow::Result<BTreeMap<String, Option<SystemTime>>> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot list runs root {}", root.display()));
        }
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (!name.starts_with('.')).then(|| (name, e.metadata().and_then(|m| m.modified()).ok()))
        })
        .collect())
}

/// Join warehouse runs with disk directories and order them: present runs by directory
/// mtime, newest first (unreadable mtimes last), then archived runs by newest sidecar
/// timestamp; ties by name.
fn merge(
    stored: Vec<StoredRun>,
    mut disk: BTreeMap<String, Option<SystemTime>>,
    root: &Path,
) -> Vec<RunRow> {
    struct Entry {
        row: RunRow,
        mtime: Option<SystemTime>,
        last: Option<String>,
    }
    let mut entries: Vec<Entry> = Vec::new();
    for s in stored {
        let on_disk = disk.remove(&s.run);
        let present = on_disk.is_some() || root.join(&s.run).is_dir();
        let mtime = match on_disk {
            Some(m) => m,
            None if present => std::fs::metadata(root.join(&s.run)).and_then(|m| m.modified()).ok(),
            None => None,
        };
        let state = if present { RunState::Present } else { RunState::Archived };
        // A directory on disk shows what it holds now, as in ktstr; an archived one shows
        // what the warehouse kept of it.
        let (tests, date) = if present {
            (s.on_disk, s.on_disk_first_timestamp)
        } else {
            (s.tests, s.first_timestamp)
        };
        entries.push(Entry {
            row: RunRow { run: s.run, tests, date, arch: s.arch, state },
            mtime,
            last: s.last_timestamp,
        });
    }
    for (run, mtime) in disk {
        let row = RunRow { run, tests: 0, date: None, arch: None, state: RunState::Present };
        entries.push(Entry { row, mtime, last: None });
    }
    entries.sort_by(|a, b| {
        let rank = |e: &Entry| (e.row.state == RunState::Archived, e.mtime.is_none());
        rank(a)
            .cmp(&rank(b))
            .then_with(|| b.mtime.cmp(&a.mtime))
            .then_with(|| (b.last.is_some(), &b.last).cmp(&(a.last.is_some(), &a.last)))
            .then_with(|| a.row.run.cmp(&b.row.run))
    });
    entries.into_iter().map(|e| e.row).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn stored(run: &str, last: Option<&str>) -> StoredRun {
        StoredRun {
            run: run.into(),
            tests: 1,
            first_timestamp: last.map(Into::into),
            last_timestamp: last.map(Into::into),
            arch: None,
            on_disk: 1,
            on_disk_first_timestamp: last.map(Into::into),
        }
    }

    #[test]
    fn present_runs_by_mtime_then_archived_runs_by_timestamp() {
        let root = Path::new("/nonexistent-ktstr-root");
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t1 = t0 + Duration::from_secs(10);
        let disk: BTreeMap<String, Option<SystemTime>> = [
            ("old".to_string(), Some(t0)),
            ("new".to_string(), Some(t1)),
            ("tie-b".to_string(), Some(t0)),
            ("nomtime".to_string(), None),
            ("empty".to_string(), Some(t1)),
        ]
        .into();
        let stored = vec![
            stored("old", None),
            stored("new", None),
            stored("tie-b", None),
            stored("nomtime", None),
            stored("gone-old", Some("2025-01-01")),
            stored("gone-new", Some("2026-01-01")),
            stored("gone-none", None),
        ];
        let rows = merge(stored, disk, root);
        let names: Vec<&str> = rows.iter().map(|r| r.run.as_str()).collect();
        assert_eq!(
            names,
            ["empty", "new", "old", "tie-b", "nomtime", "gone-new", "gone-old", "gone-none"]
        );
        assert_eq!(rows[0].tests, 0);
        assert_eq!(rows[5].state, RunState::Archived);
        assert_eq!(rows[1].state, RunState::Present);
    }
}
