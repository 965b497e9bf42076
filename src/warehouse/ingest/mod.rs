//! Ingest: a runs root's sidecar files become warehouse rows.
//!
//! The walk is the reference's pool walk ([`crate::sidecar::read::pool_sidecar_paths`]).
//! Each file is then handled by what the warehouse already knows about its path:
//! - same size and mtime as last time → skipped after a `stat` (an unchanged tree costs a walk);
//! - new or changed → read, hashed (blake3) and parsed in parallel (rayon) while the previous
//!   batch is inserted, one transaction per batch;
//! - its content already stored (same hash: a re-ingest, a copy, a move) → only the path is
//!   recorded, never a second sample;
//! - gone since last time (pre-cleared by a newer run) → marked not present; its rows stay, so
//!   the warehouse keeps history.
//!
//! # Failure handling
//! A file that cannot be read or parsed never stops the batch: it is recorded with its reason
//! in [`IngestReport::problems`]. An empty or truncated file younger than
//! [`IN_PROGRESS_GRACE`] is probably still being written; it is recorded as `pending` and
//! read again by the next ingest instead of being marked corrupt forever. A corrupt file is
//! read again only when its size or mtime changes.
//!
//! # Locking
//! An ingest that finds something to write takes the warehouse's writer lock
//! ([`Warehouse::lock_for_writing`]) for the whole write, so concurrent ingests run one after
//! the other; one that finds nothing never takes it (the common case of a read command). If
//! another writer committed between the walk and the lock (`PRAGMA data_version` moved), the
//! walk is redone, so a file the other one just recorded is not read and recorded again.
//! Writes use `BEGIN IMMEDIATE` transactions, and the unique content hash makes a repeated
//! insert a no-op. A process killed mid-ingest leaves only whole batches behind, and the next
//! ingest picks up the rest because their paths are not recorded yet.
//!
//! # Stopping
//! [`IngestOptions::stop`] is checked after the walk and at every batch boundary: an interrupted
//! ingest keeps the batches it committed and leaves the rest, and the run directories it
//! examined, to the next one ([`IngestReport::interrupted`]).
//!
//! # Stages
//! [`walk`] (which files to read) → [`parse`] (on the rayon pool, each file into one
//! [`parse::ParsedFile`]) → [`write`] (this thread, one transaction per batch). Batch k+1 is
//! parsed while batch k is written. A cold bulk load into an empty warehouse builds its
//! secondary indexes after the last batch ([`bulk`]).

mod bulk;
mod parse;
mod walk;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::TransactionBehavior;
use serde::Serialize;

use super::document::DocumentEncoder;
use super::incremental::{FileStat, Plan};
use super::open::{WRITE_LOCK_TIMEOUT, Warehouse, WriteLockError, sqlite_message};
use parse::ParsedFile;
use walk::Walk;
use write::Writer;

/// An empty or truncated file modified less than this long ago is assumed to be mid-write.
pub const IN_PROGRESS_GRACE: Duration = Duration::from_secs(60);

/// Why ingest could not run at all (per-file problems are in the report instead).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(
        "runs root {} does not exist; run `cargo ktstr test` to create results, or pass --dir \
         to point at a sidecar tree",
        path.display()
    )]
    RootMissing { path: PathBuf },
    #[error("runs root {} is not a directory; pass --dir a directory of run directories", path.display())]
    RootNotDir { path: PathBuf },
    #[error("cannot resolve runs root {}: {source}", path.display())]
    Root {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// SQLite's message once: the rusqlite error is not exposed as the source, whose chain
    /// would repeat it.
    #[error("writing to the warehouse failed: {}", sqlite_message(.0))]
    Sqlite(rusqlite::Error),
    #[error(transparent)]
    Lock(#[from] WriteLockError),
}

impl From<rusqlite::Error> for IngestError {
    fn from(e: rusqlite::Error) -> Self {
        IngestError::Sqlite(e)
    }
}

impl IngestError {
    /// The error for a runs root that is missing or not a directory, `None` for a directory.
    pub fn check_root(root: &Path) -> Option<IngestError> {
        let path = root.to_path_buf();
        match std::fs::metadata(root) {
            Ok(meta) if meta.is_dir() => None,
            Ok(_) => Some(IngestError::RootNotDir { path }),
            Err(_) => Some(IngestError::RootMissing { path }),
        }
    }
}

/// A file ingest could not use.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    pub path: PathBuf,
    /// Stable label: `truncated`, `not-json`, `missing-field`, …
    pub kind: &'static str,
    pub reason: String,
    /// True when the file will be read again by the next ingest (probably mid-write, or
    /// unreadable for now).
    pub will_retry: bool,
}

impl FileProblem {
    /// Retried because it looks half-written: worth another look soon, not only next time.
    pub fn looks_mid_write(&self) -> bool {
        self.will_retry && matches!(self.kind, "empty" | "truncated")
    }
}

/// What one ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub root: PathBuf,
    /// Sidecar files found by the walk.
    pub files_seen: usize,
    /// Files skipped because their size and mtime were unchanged.
    pub unchanged: usize,
    /// Files read and parsed this time.
    pub parsed: usize,
    /// New sidecars added to the warehouse.
    pub new_sidecars: usize,
    /// Files whose content the warehouse already had (re-ingest, copy or move).
    pub duplicates: usize,
    /// Files that failed this time.
    pub problems: Vec<FileProblem>,
    /// Unchanged files already known to be corrupt (reported when first seen).
    pub known_corrupt: usize,
    /// Files recorded before that are gone now; their sidecars stay in the warehouse.
    pub vanished: usize,
    /// How long this ingest waited for another process's ingest into the same warehouse.
    pub lock_wait_ms: u64,
    /// Stopped early (see [`IngestOptions::stop`]); the next ingest does the rest.
    pub interrupted: bool,
    pub elapsed_ms: u64,
    /// CPU time of the thread that wrote this ingest's batches (bound and stepped the
    /// statements, committed). One thread writes, so `new_sidecars / writer_cpu` is the ceiling
    /// of a cold ingest whatever the machine's load. Not serialized: it varies run to run.
    #[serde(skip)]
    pub writer_cpu: Duration,
}

/// Progress callback: (files handled so far, files to handle).
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// How an ingest reports progress and when it stops early.
#[derive(Default, Clone, Copy)]
pub struct IngestOptions<'a> {
    pub progress: Option<Progress<'a>>,
    /// Checked after the walk and between batches; set means stop there.
    pub stop: Option<&'a AtomicBool>,
    /// Called once when the ingest has to wait for another one's writer lock.
    pub on_lock_wait: Option<&'a dyn Fn()>,
}

impl IngestOptions<'_> {
    fn stopped(&self) -> bool {
        self.stop.is_some_and(|s| s.load(Ordering::Relaxed))
    }
}

/// Ingest every sidecar under `root` into `wh`.
pub fn ingest_root(
    wh: &mut Warehouse,
    root: &Path,
    progress: Option<Progress<'_>>,
) -> Result<IngestReport, IngestError> {
    ingest_root_with(wh, root, &IngestOptions { progress, ..Default::default() })
}

/// [`ingest_root`] with a stop flag and a lock-wait callback.
pub fn ingest_root_with(
    wh: &mut Warehouse,
    root: &Path,
    opts: &IngestOptions<'_>,
) -> Result<IngestReport, IngestError> {
    let started = Instant::now();
    let version = data_version(wh)?;
    let mut walked = walk::walk(wh, root)?;
    if walked.plan.is_no_op() || opts.stopped() {
        // No write transaction at all: the common case of a read command's ingest.
        walked.report.interrupted = opts.stopped();
        return finish(wh, walked.report, 0, started);
    }
    let mut on_wait = || {
        if let Some(f) = opts.on_lock_wait {
            f();
        }
    };
    // Held until this function returns: the whole write, the final checkpoint included.
    let lock = wh.lock_for_writing(WRITE_LOCK_TIMEOUT, &mut on_wait)?;
    let lock_wait_ms = lock.waited.as_millis() as u64;
    if data_version(wh)? != version {
        // Another writer committed since the walk: what it recorded is not read again.
        walked = walk::walk(wh, root)?;
    }
    let Walk { root_id, mut plan, mut report } = walked;
    report.lock_wait_ms = lock_wait_ms;
    // A bulk load killed before it rebuilt its indexes left them to whoever writes next.
    bulk::restore(&mut wh.conn)?;
    if plan.is_no_op() {
        return finish(wh, report, 0, started);
    }
    let todo = std::mem::take(&mut plan.todo);
    let (encoder, deferred) = prepare(wh, &plan, root_id, &todo)?;
    let total = todo.len();
    let mut writer = Writer::new(root_id);
    // Every commit would otherwise copy the WAL back into the database once it passed 1000
    // pages (each batch does): index pages dirtied by every batch were copied every time.
    // The pages are checkpointed once, after the last batch.
    wh.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let cpu_before = thread_cpu();
    let written = pipeline(wh, &mut writer, &encoder, walk::batches(todo), &mut report, opts);
    // Even when a batch failed or the ingest was stopped: the indexes of what was written.
    let rebuilt = if deferred { bulk::restore(&mut wh.conn) } else { Ok(()) };
    report.writer_cpu = thread_cpu().saturating_sub(cpu_before);
    // Restore the default even when a batch failed: the connection may live on (watch mode).
    wh.conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    written?;
    rebuilt?;
    if report.interrupted {
        // Presence and digests describe the whole walk, which was not written: left as they
        // are, the examined runs stay unsettled and the next ingest examines them again.
        return finish(wh, report, total, started);
    }
    write::record_presence(wh, root_id, &plan)?;
    finish(wh, report, total, started)
}

/// CPU time the calling thread has used (user and system).
fn thread_cpu() -> Duration {
    // SAFETY: getrusage writes one rusage into the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // RUSAGE_THREAD cannot fail for the calling thread; on failure the struct stays zero.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Changes whenever another connection commits (SQLite's `PRAGMA data_version`).
fn data_version(wh: &Warehouse) -> Result<i64, IngestError> {
    Ok(wh.conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

/// The encoder for this ingest's documents, and whether it is a bulk load whose indexes were
/// deferred ([`bulk::defer`]); the examined run directories are unsettled before any file is
/// written.
fn prepare(
    wh: &mut Warehouse,
    plan: &Plan,
    root_id: i64,
    todo: &[FileStat],
) -> Result<(DocumentEncoder, bool), IngestError> {
    // Training reads samples and takes ~50 ms: done before taking the write lock.
    let existing = DocumentEncoder::newest(&wh.conn)?;
    let trained = match existing.dict_id() {
        Some(_) => None,
        None => {
            let candidates: Vec<&Path> = todo.iter().map(|s| s.path.as_path()).collect();
            DocumentEncoder::train(&wh.conn, &candidates)?
        }
    };
    let tx = wh.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    plan.unsettle(&tx, root_id)?;
    let encoder = match trained {
        Some(trained) => DocumentEncoder::store(&tx, trained)?,
        None => existing,
    };
    let deferred = bulk::defer(&tx, todo.len())?;
    tx.commit()?;
    Ok((encoder, deferred))
}

/// Parse batch k+1 on the rayon pool while this thread writes batch k.
fn pipeline(
    wh: &mut Warehouse,
    writer: &mut Writer,
    encoder: &DocumentEncoder,
    batches: Vec<Vec<FileStat>>,
    report: &mut IngestReport,
    opts: &IngestOptions<'_>,
) -> Result<(), IngestError> {
    let total: usize = batches.iter().map(Vec::len).sum();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<Vec<ParsedFile>>(1);
        scope.spawn(move || {
            for batch in batches {
                if tx.send(parse::parse_batch(batch, encoder)).is_err() {
                    break; // the writer failed and stopped listening
                }
            }
        });
        let mut done = 0usize;
        for batch in rx {
            done += batch.len();
            report.parsed += batch.len();
            writer.write_batch(wh, batch, report)?;
            if let Some(p) = opts.progress {
                p(done, total);
            }
            if opts.stopped() && done < total {
                // Dropping the receiver stops the parse thread at its next batch.
                report.interrupted = true;
                break;
            }
        }
        Ok(())
    })
}

fn finish(
    wh: &mut Warehouse,
    mut report: IngestReport,
    written: usize,
    started: Instant,
) -> Result<IngestReport, IngestError> {
    // PASSIVE: never waits for readers; what a reader still needs stays in the WAL.
    if written > 0 {
        wh.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::SystemTime;

    use super::*;
    use crate::sidecar::SidecarResult;

    fn sidecar(test: &str, commit: &str, iterations: u64) -> String {
        let mut s = SidecarResult::empty(test);
        s.project_commit = Some(commit.into());
        s.kernel_version = Some("6.14.2".into());
        s.active_flags = vec!["llc".into(), "steal".into()];
        s.stats.total_iterations = iterations;
        s.stats.worst_spread = 3.5;
        s.stats.ext_metrics.insert("custom_rate".into(), 42.0);
        s.timestamp = "2026-04-27T09:15:02Z".into();
        s.run_id = "20260427T091455Z-0".into();
        s.to_json_pretty()
    }

    fn write(root: &Path, rel: &str, body: &str) -> PathBuf {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        path
    }

    fn count(wh: &Warehouse, sql: &str) -> i64 {
        wh.conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn ingest_is_idempotent_and_incremental() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "6.14.2-abc1234/a-1.ktstr.json", &sidecar("a", "abc1234", 1000));
        write(root, "6.14.2-abc1234/b-2.ktstr.json", &sidecar("b", "abc1234", 2000));
        write(root, "6.14.2-abc1234/job-1/c-3.ktstr.json", &sidecar("c", "abc1234", 3000));
        write(root, "6.14.2-abc1234/job-1/deep/d-4.ktstr.json", &sidecar("d", "abc1234", 1));
        write(root, "6.14.2-abc1234/notes.json", "{}");
        write(root, "top-level.ktstr.json", &sidecar("e", "abc1234", 1));
        let mut wh = Warehouse::open_in_memory().unwrap();

        let first = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((first.files_seen, first.new_sidecars, first.unchanged), (3, 3, 0));
        assert!(first.problems.is_empty());
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar"), 3);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar_flag"), 6);
        assert_eq!(
            count(
                &wh,
                "SELECT CAST(total_iterations AS INTEGER) FROM ingested_sidecar WHERE test_name = 'c'"
            ),
            3000
        );
        assert_eq!(
            count(&wh, "SELECT count(*) FROM sample WHERE metric = 'custom_rate' AND value = 42"),
            3
        );

        let second = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((second.new_sidecars, second.unchanged, second.parsed), (0, 3, 0));
        assert_eq!(count(&wh, "SELECT count(*) FROM ingested_sidecar"), 3);
    }

    #[test]
    fn a_copied_or_moved_file_is_not_a_second_sample() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let body = sidecar("a", "abc1234", 1000);
        let original = write(root, "run-a/a-1.ktstr.json", &body);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        write(root, "run-b/renamed.ktstr.json", &body);
        fs::remove_file(original).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((report.new_sidecars, report.duplicates, report.vanished), (0, 1, 1));
        assert_eq!(count(&wh, "SELECT count(*) FROM ingested_sidecar"), 1);
    }

    #[test]
    fn pre_cleared_files_keep_their_rows_as_history() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let path = write(root, "6.14-abc1234/a-1.ktstr.json", &sidecar("a", "abc1234", 1000));
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        // A new run at the same commit overwrites the same file name with new results.
        fs::write(&path, sidecar("a", "abc1234", 1200)).unwrap();
        let later = SystemTime::now() + Duration::from_secs(5);
        fs::File::options().write(true).open(&path).unwrap().set_modified(later).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar WHERE test_name = 'a'"), 2);
        fs::remove_file(&path).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.vanished, 1);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar"), 2);
        assert_eq!(count(&wh, "SELECT count(*) FROM sidecar WHERE present"), 0);
    }

    #[test]
    fn corrupt_files_are_reported_and_skipped_and_young_truncated_ones_retried() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "run/good-1.ktstr.json", &sidecar("good", "abc1234", 1000));
        write(root, "run/junk-2.ktstr.json", "this is not json");
        let body = sidecar("late", "abc1234", 1000);
        let partial = write(root, "run/late-3.ktstr.json", &body[..body.len() / 2]);
        let mut wh = Warehouse::open_in_memory().unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        let kinds: Vec<_> = report.problems.iter().map(|p| (p.kind, p.will_retry)).collect();
        assert_eq!(kinds, [("not-json", false), ("truncated", true)]);

        // The writer finishes; the next ingest picks the file up even though it was seen before.
        fs::write(&partial, &body).unwrap();
        let report = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(report.new_sidecars, 1);
        assert_eq!(report.known_corrupt, 1);
        assert!(report.problems.is_empty());
    }

    /// (codec, dict_id, original bytes) of every stored document, in ingest order.
    fn stored(wh: &Warehouse) -> Vec<(String, Option<i64>, Vec<u8>)> {
        let mut stmt = wh
            .conn
            .prepare("SELECT codec, dict_id, document FROM sidecar_document ORDER BY sidecar_id")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?, r.get::<_, Vec<u8>>(2)?)))
            .unwrap();
        rows.map(|r| {
            let (codec, dict_id, doc) = r.unwrap();
            let bytes = super::super::document::decode(&wh.conn, &codec, dict_id, &doc).unwrap();
            (codec, dict_id, bytes)
        })
        .collect()
    }

    #[test]
    fn the_original_bytes_are_kept_and_decode_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let body = sidecar("a", "abc1234", 1000);
        write(dir.path(), "run/a-1.ktstr.json", &body);
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, dir.path(), None).unwrap();
        // One file is too few to train a dictionary on.
        assert_eq!(stored(&wh), [("zstd".to_string(), None, body.into_bytes())]);
    }

    #[test]
    fn small_ingests_train_a_dictionary_once_the_warehouse_holds_enough() {
        let dir = tempfile::tempdir().unwrap();
        let mut wh = Warehouse::open_in_memory().unwrap();
        let mut bodies = Vec::new();
        for round in 0..2 {
            for i in 0..40 {
                let body = sidecar(&format!("t{round}_{i:02}"), "abc1234", i);
                write(dir.path(), &format!("r{round}/t{i:02}-1.ktstr.json"), &body);
                bodies.push(body);
            }
            ingest_root(&mut wh, dir.path(), None).unwrap();
        }
        let docs = stored(&wh);
        // 40 are too few to train on; the second 40 train on themselves and the first 40.
        assert!(docs[..40].iter().all(|(_, dict_id, _)| dict_id.is_none()));
        assert!(docs[40..].iter().all(|(_, dict_id, _)| *dict_id == Some(1)));
        let originals: Vec<&[u8]> = docs.iter().map(|(_, _, b)| b.as_slice()).collect();
        let expected: Vec<&[u8]> = bodies.iter().map(|b| b.as_bytes()).collect();
        assert_eq!(originals, expected);
    }

    #[test]
    fn a_large_first_ingest_trains_the_dictionary_later_ingests_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<String> =
            (0..80).map(|i| sidecar(&format!("t{i}"), "abc1234", 1000 + i)).collect();
        for (i, body) in bodies.iter().enumerate() {
            write(dir.path(), &format!("run/t{i}-1.ktstr.json"), body);
        }
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, dir.path(), None).unwrap();
        let late = sidecar("late", "abc1234", 5000);
        write(dir.path(), "run2/late-1.ktstr.json", &late);
        ingest_root(&mut wh, dir.path(), None).unwrap();

        let docs = stored(&wh);
        assert_eq!(docs.len(), 81);
        assert!(docs.iter().all(|(codec, dict_id, _)| codec == "zstd" && *dict_id == Some(1)));
        let dictionaries: i64 = wh
            .conn
            .query_row("SELECT count(*) FROM document_dictionary", [], |r| r.get(0))
            .unwrap();
        assert_eq!(dictionaries, 1, "the second ingest reuses the first one's dictionary");
        let originals: Vec<&[u8]> = docs.iter().map(|(_, _, b)| b.as_slice()).collect();
        // Walk order: run/ sorted by name, then run2/.
        let mut expected: Vec<(String, &[u8])> =
            bodies.iter().enumerate().map(|(i, b)| (format!("t{i}-1"), b.as_bytes())).collect();
        expected.sort();
        let mut expected: Vec<&[u8]> = expected.into_iter().map(|(_, b)| b).collect();
        expected.push(late.as_bytes());
        assert_eq!(originals, expected);
    }

    #[test]
    fn a_missing_root_is_a_named_error() {
        let mut wh = Warehouse::open_in_memory().unwrap();
        let err = ingest_root(&mut wh, Path::new("/nonexistent/ktstr"), None).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ktstr does not exist"), "{err}");
    }
}
