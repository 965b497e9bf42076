//! Shared glue for every command that reads the warehouse: which runs root, which database,
//! and the incremental ingest that keeps results from ever being stale.
//!
//! The database defaults to `warehouse.sqlite` directly inside the runs root (files there are
//! never pooled as runs). `--db FILE` / `KTSTR_DB` points at a long-lived archive elsewhere,
//! into which several runs roots can be ingested.
//!
//! A warehouse this user cannot write (a read-only mount, another user's archive) is still
//! read: the ingest step is skipped, said once on stderr, and the database opened read-only.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::cli::WarehouseArgs;
use crate::sidecar::layout;
use crate::warehouse::ingest::{IngestError, IngestOptions, IngestReport, ingest_root_with};
use crate::warehouse::{OpenError, Warehouse};

/// The runs root and database a command works on.
#[derive(Debug, Clone)]
pub struct Location {
    pub root: PathBuf,
    pub db: PathBuf,
}

impl Location {
    pub fn resolve(dir: Option<&Path>, db: Option<&Path>) -> Location {
        let root = dir.map(Path::to_path_buf).unwrap_or_else(layout::runs_root);
        let db =
            db.map(Path::to_path_buf).unwrap_or_else(|| root.join(layout::DEFAULT_DB_FILE_NAME));
        Location { root, db }
    }
}

/// What happened when a read command refreshed the warehouse.
pub enum Refresh {
    Ingested(IngestReport),
    /// The runs root does not exist; the database may still hold history.
    RootMissing,
    Skipped,
    /// The warehouse cannot be written by this user: read as it is.
    ReadOnly,
}

/// Open the warehouse for a read command: ingest the runs root first (unless `--no-ingest`),
/// reporting file problems on stderr. With `--no-ingest` the database is opened read-only.
///
/// When the runs root does not exist and no database exists either, returns `Ok(None)`:
/// there is nothing to read, and the caller decides whether that is an error.
pub fn open_for_read(
    dir: Option<&Path>,
    args: &WarehouseArgs,
) -> anyhow::Result<Option<(Warehouse, Location, Refresh)>> {
    let loc = Location::resolve(dir, args.db.as_deref());
    // A --dir that names a file is a mistake, not an empty pool.
    if dir.is_some()
        && let Some(e @ IngestError::RootNotDir { .. }) = IngestError::check_root(&loc.root)
    {
        return Err(e.into());
    }
    if args.no_ingest {
        if !loc.db.exists() {
            return Ok(None);
        }
        let wh = Warehouse::open_read_only(&loc.db)?;
        return Ok(Some((wh, loc, Refresh::Skipped)));
    }
    if !loc.root.is_dir() && !loc.db.exists() {
        return Ok(None);
    }
    let mut wh = match Warehouse::open(&loc.db) {
        Ok(wh) => wh,
        Err(OpenError::NotWritable { reason, .. }) if loc.db.exists() => {
            let wh = Warehouse::open_read_only(&loc.db)?;
            eprintln!(
                "ktstr: skipped the ingest step: the warehouse {} is read-only for this user \
                 ({reason}); showing what it holds",
                loc.db.display()
            );
            return Ok(Some((wh, loc, Refresh::ReadOnly)));
        }
        Err(e) => return Err(e.into()),
    };
    let refresh = match ingest_quietly(&mut wh, &loc.root) {
        Ok(report) => Refresh::Ingested(report),
        Err(IngestError::RootMissing { .. }) => Refresh::RootMissing,
        Err(e) => return Err(e).context("refreshing the warehouse before reading"),
    };
    Ok(Some((wh, loc, refresh)))
}

/// Ingest with a progress bar on a terminal and the report's problems on stderr.
pub fn ingest_quietly(wh: &mut Warehouse, root: &Path) -> Result<IngestReport, IngestError> {
    let bar = progress_bar();
    let tick = |done: usize, total: usize| {
        if let Some(bar) = &bar {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        }
    };
    let on_wait = lock_wait_notice(wh);
    let opts = IngestOptions { progress: Some(&tick), on_lock_wait: Some(&on_wait), stop: None };
    let report = ingest_root_with(wh, root, &opts);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = report?;
    report_problems(&report);
    Ok(report)
}

/// The stderr line printed when an ingest has to wait for another one's writer lock.
pub fn lock_wait_notice(wh: &Warehouse) -> impl Fn() + use<> {
    let db = wh.path().map(Path::to_path_buf).unwrap_or_default();
    move || {
        eprintln!(
            "ktstr: waiting for another ingest into {} to finish (at most {} min)",
            db.display(),
            crate::warehouse::open::WRITE_LOCK_TIMEOUT.as_secs() / 60
        );
    }
}

fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::hidden();
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("ingesting {bar:40} {pos}/{len} sidecars")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

/// One stderr line per file ingest could not use.
pub fn report_problems(report: &IngestReport) {
    let mut err = std::io::stderr().lock();
    for p in &report.problems {
        let retry = if p.will_retry { " (will retry on the next ingest)" } else { "" };
        let _ = writeln!(err, "ktstr: skipping {}: {}{retry}", p.path.display(), p.reason);
    }
}
