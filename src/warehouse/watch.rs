//! `stats ingest --watch`: ingest a runs root once, then again whenever sidecars appear, until
//! asked to stop. Printing is the caller's: each ingest's report goes to a callback.
//!
//! # Which events count
//! inotify reports several events per file (create, open, modify, close), and an atomic
//! write-then-rename reports the rename. Only the *end* of a write matters: `Close(Write)`,
//! a rename onto a sidecar name, a removal (so vanished files are recorded), a new directory
//! (a new run, whose first files may land before the recursive watch covers it), or a lost
//! event queue. Hidden and temporary names (`.x.ktstr.json`, `x.ktstr.json.tmp`) are ignored,
//! and so is the warehouse's own database, which may live inside the root.
//!
//! # Debounce
//! A test run writes many sidecars in a burst; ingest runs once the tree has been quiet for
//! [`WatchOptions::quiet`], so a burst becomes one transaction series, not one per file.
//! A file that looked mid-write (`will_retry`) is retried after [`WatchOptions::retry`]
//! even if no further event arrives.
//!
//! # Stopping
//! The loop polls the caller's stop flag (set from a SIGINT handler) between events, and the
//! ingest itself checks it at every batch boundary, so a long first ingest stops within a
//! batch. Every ingest batch is its own transaction, so even a hard kill leaves a consistent
//! database.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};

use super::ingest::{IngestError, IngestOptions, IngestReport, ingest_root_with};
use super::open::Warehouse;
use crate::sidecar::is_sidecar_filename;

/// Timing of the watch loop.
#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// Quiet period after the last relevant event before ingesting.
    pub quiet: Duration,
    /// Delay before re-reading files that looked mid-write.
    pub retry: Duration,
    /// How often the stop flag is checked.
    pub poll: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            quiet: Duration::from_millis(300),
            retry: Duration::from_secs(2),
            poll: Duration::from_millis(100),
        }
    }
}

/// Why watching stopped early.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("cannot watch {} for new sidecars: {source}", path.display())]
    Notify {
        path: std::path::PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// Ingest `root` now and after every burst of new sidecars, calling `on_ingest` with each
/// report (the first one is the initial ingest), until `ingest.stop` is set (a watch without
/// a stop flag runs until its event source goes away).
pub fn watch_root(
    wh: &mut Warehouse,
    root: &Path,
    opts: WatchOptions,
    ingest: &IngestOptions<'_>,
    on_ingest: &mut dyn FnMut(&IngestReport),
) -> Result<(), WatchError> {
    if let Some(e) = IngestError::check_root(root) {
        return Err(e.into());
    }
    let never = AtomicBool::new(false);
    let stop = ingest.stop.unwrap_or(&never);
    let ingest = IngestOptions { stop: Some(stop), ..*ingest };
    let (tx, rx) = mpsc::channel::<notify::Result<Event>>();
    let notify_err = |source| WatchError::Notify { path: root.to_path_buf(), source };
    let mut watcher = notify::recommended_watcher(tx).map_err(notify_err)?;
    // Watch before the first ingest, so a file written in between is not missed.
    watcher.watch(root, RecursiveMode::Recursive).map_err(notify_err)?;

    let mut next_ingest: Option<Instant> = Some(Instant::now());
    while !stop.load(Ordering::Relaxed) {
        if next_ingest.is_some_and(|at| Instant::now() >= at) {
            let report = ingest_root_with(wh, root, &ingest)?;
            next_ingest = report
                .problems
                .iter()
                .any(|p| p.looks_mid_write())
                .then(|| Instant::now() + opts.retry);
            on_ingest(&report);
            continue;
        }
        let wait = next_ingest
            .map_or(opts.poll, |at| at.saturating_duration_since(Instant::now()).min(opts.poll));
        match rx.recv_timeout(wait) {
            Ok(event) => {
                if event.as_ref().map_or(true, is_relevant) {
                    // An error means notify lost track (e.g. queue overflow): rescan.
                    next_ingest = Some(Instant::now() + opts.quiet);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(())
}

/// Does this event mean a sidecar may have been finished, moved in, or removed?
pub fn is_relevant(event: &Event) -> bool {
    let sidecar_path = || event.paths.iter().any(|p| is_candidate(p));
    match event.kind {
        EventKind::Create(CreateKind::Folder) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Modify(ModifyKind::Name(
            RenameMode::To | RenameMode::Both | RenameMode::Any,
        ))
        | EventKind::Remove(_)
        | EventKind::Any
        | EventKind::Other => sidecar_path(),
        _ => false,
    }
}

fn is_candidate(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    !hidden && is_sidecar_filename(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::Arc;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_finished_sidecar_writes_and_renames_count() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert!(is_relevant(&event(close, "/r/run/a-1.ktstr.json")));
        assert!(!is_relevant(&event(close, "/r/warehouse.sqlite-wal")));
        assert!(!is_relevant(&event(close, "/r/run/.a-1.ktstr.json")));
        assert!(!is_relevant(&event(close, "/r/run/a-1.ktstr.json.tmp")));
        let modify = EventKind::Modify(ModifyKind::Data(notify::event::DataChange::Any));
        assert!(!is_relevant(&event(modify, "/r/run/a-1.ktstr.json")));
        let to = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(is_relevant(&event(to, "/r/run/a-1.ktstr.json")));
        assert!(is_relevant(&event(EventKind::Create(CreateKind::Folder), "/r/new-run")));
    }

    #[test]
    fn a_new_sidecar_is_ingested_after_the_quiet_period_and_stop_ends_the_loop() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        fs::create_dir_all(root.join("run")).unwrap();
        let body = crate::sidecar::SidecarResult::empty("late").to_json_pretty();
        let stop = Arc::new(AtomicBool::new(false));
        // The file is written after the initial ingest, however long a loaded machine takes
        // to get there.
        let initial_done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (root, stop, initial_done) =
                (root.clone(), Arc::clone(&stop), Arc::clone(&initial_done));
            std::thread::spawn(move || {
                while !initial_done.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                std::thread::sleep(Duration::from_millis(100));
                fs::write(root.join("run/late-1.ktstr.json"), body).unwrap();
                std::thread::sleep(Duration::from_millis(1500));
                stop.store(true, Ordering::Relaxed);
            })
        };
        let mut wh = Warehouse::open_in_memory().unwrap();
        let mut reports = Vec::new();
        let opts = WatchOptions { quiet: Duration::from_millis(100), ..Default::default() };
        let ingest = IngestOptions { stop: Some(&stop), ..Default::default() };
        watch_root(&mut wh, &root, opts, &ingest, &mut |r| {
            reports.push(r.new_sidecars);
            initial_done.store(true, Ordering::SeqCst);
        })
        .unwrap();
        writer.join().unwrap();
        assert_eq!(reports.first(), Some(&0), "{reports:?}");
        assert_eq!(reports.iter().sum::<usize>(), 1, "{reports:?}");
    }
}
