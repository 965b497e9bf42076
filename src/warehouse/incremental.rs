//! Incremental ingest: which files under a runs root changed since the warehouse last saw
//! them.
//!
//! Owns the stat walk, the `source_file` records it is compared with, and `run_dir_state`: a
//! digest per run directory of its files' names, sizes and mtimes, stored when ingest last
//! *settled* it (every file ingested, a duplicate, or known corrupt; none pending). Not here:
//! reading, parsing or writing sidecars ([`super::ingest`]), which
//! decides each file's [`FileStatus`].
//!
//! A run directory whose digest is unchanged is skipped without reading its `source_file`
//! rows, so a no-op ingest of a large root costs its stat walk and little else. Every file is
//! still stat'ed: ktstr rewrites a sidecar in place (`fs::write`), which leaves the
//! directory's own mtime alone, so a directory-level check would miss a rewritten result.
//!
//! A digest is stored only after re-reading, in the transaction that stores it, the run
//! directory's file records and finding that they describe exactly the files walked (same
//! size and mtime, none pending, no other file present): a concurrent ingest that recorded
//! something else in between leaves the run to be examined again. Nor is a run directory
//! settled while one of its files has a coarse timestamp younger than [`RACY_WINDOW`], since
//! a same-size rewrite within the same timestamp tick would not change its digest.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use rusqlite::{CachedStatement, Connection, Transaction, params};

use super::file_status::FileStatus;
use crate::sidecar::read::{
    RunDirWalk, SkipReason, SkippedEntry, special_file_kind, walk_run_dir, walk_run_dirs,
};

/// Files modified this close to the walk do not settle their run directory when their
/// timestamp is coarse (whole milliseconds or coarser: FAT, some network filesystems tick every
/// one or two seconds). ext4, xfs, btrfs and tmpfs keep nanoseconds, where a same-size rewrite
/// in the same tick is not a practical worry, so a run just written there settles at once.
const RACY_WINDOW: Duration = Duration::from_secs(2);

fn is_racy(mtime_ns: i64, racy_after: i64) -> bool {
    mtime_ns >= racy_after && mtime_ns % 1_000_000 == 0
}

/// A sidecar file as the walk found it.
pub(super) struct FileStat {
    /// Relative to the runs root, `/`-separated; the first component is the run directory.
    pub rel_path: String,
    pub path: PathBuf,
    pub size: i64,
    pub mtime_ns: i64,
}

impl FileStat {
    pub fn run_dir(&self) -> &str {
        self.rel_path.split('/').next().unwrap_or_default()
    }
}

/// What an ingest has to do, from comparing the walk with the warehouse.
#[derive(Default)]
pub(super) struct Plan {
    pub files_seen: usize,
    /// Files whose size and mtime match their record.
    pub unchanged: usize,
    /// Unchanged files that were corrupt when last read.
    pub known_corrupt: usize,
    /// New or changed files (and pending ones, retried), in walk order.
    pub todo: Vec<FileStat>,
    /// Unchanged files recorded as gone by an earlier ingest.
    pub reappeared: Vec<String>,
    /// Files recorded as present that the walk did not find.
    pub vanished: Vec<String>,
    /// Entries the walk did not take (see [`WalkSkip`]), in walk order. Among them: sidecar
    /// files whose path is not valid UTF-8 (the warehouse keys files by their path as text,
    /// where two such names could read as one), files that are not regular files, and
    /// directories that could not be listed.
    pub skipped: Vec<WalkSkip>,
    /// Run directories examined file by file, to be settled once their files are written.
    examined: Vec<ExaminedRun>,
    /// Run directories with a state row that the walk did not find.
    gone_runs: Vec<String>,
}

struct ExaminedRun {
    run: String,
    digest: [u8; 32],
    /// (rel_path, size, mtime_ns) of every file the walk found in it.
    files: Vec<(String, i64, i64)>,
    /// One of its files has a coarse timestamp younger than [`RACY_WINDOW`].
    racy: bool,
}

struct Known {
    size: i64,
    mtime_ns: i64,
    pending: bool,
    corrupt: bool,
    present: bool,
}

/// An entry of the walk that was not taken: reported, never recorded.
pub(super) struct WalkSkip {
    pub path: PathBuf,
    /// Stable label, as in [`crate::warehouse::ingest::FileProblem::kind`].
    pub kind: &'static str,
    pub reason: String,
}

/// What the walk of one run directory found.
enum Walked {
    File(FileStat),
    /// Left out, and whether its run directory may hold files the walk did not see.
    Skipped {
        skip: WalkSkip,
        hides_files: bool,
    },
}

/// Walk `root` and compare it with what the warehouse recorded for `root_id`.
pub(super) fn plan(conn: &Connection, root: &Path, root_id: i64) -> rusqlite::Result<Plan> {
    let walk_started = SystemTime::now();
    // The pool walk (`pool_sidecar_paths`), one run directory per task: an unchanged tree
    // costs only this walk, so it uses every core. Collecting keeps the walk's order.
    let (runs, root_skips) = walk_run_dirs(root, true);
    let walked: Vec<Walked> = runs
        .into_par_iter()
        .flat_map_iter(|run| {
            let RunDirWalk { files, skipped } = walk_run_dir(&run, Some(root));
            let skips = skipped.into_iter().map(walk_skip);
            skips.chain(files.into_iter().filter_map(|path| stat_file(root, path)))
        })
        .collect();
    let mut plan = Plan::default();
    let mut stats = Vec::with_capacity(walked.len());
    // Run directories that may hold files the walk did not see: their files are not marked
    // gone, and they are not settled.
    let mut incomplete = HashSet::new();
    for item in root_skips.into_iter().map(walk_skip).chain(walked) {
        match item {
            Walked::File(st) => stats.push(st),
            Walked::Skipped { skip, hides_files } => {
                if hides_files {
                    incomplete.extend(run_of(root, &skip.path));
                }
                plan.skipped.push(skip);
            }
        }
    }
    plan.files_seen = stats.len() + plan.skipped.iter().filter(|s| is_file_skip(s.kind)).count();
    let racy_after = walk_started
        .checked_sub(RACY_WINDOW)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64);

    let mut settled = settled_digests(conn, root_id)?;
    let mut known_rows = known_rows_statement(conn)?;
    let mut stats = stats.into_iter().peekable();
    while let Some(first) = stats.peek() {
        let run = first.run_dir().to_string();
        let mut files = Vec::new();
        while stats.peek().is_some_and(|s| s.run_dir() == run) {
            files.extend(stats.next());
        }
        let digest = run_digest(&files);
        if let Some(Some(settled)) = settled.remove(&run)
            && settled.digest == digest
        {
            plan.unchanged += files.len();
            plan.known_corrupt += settled.corrupt;
            continue;
        }
        let complete = !incomplete.contains(&run);
        let racy = !complete || files.iter().any(|f| is_racy(f.mtime_ns, racy_after));
        let listed = files.iter().map(|f| (f.rel_path.clone(), f.size, f.mtime_ns)).collect();
        // One lookup per file: what is left of `known` afterwards was not seen by this walk.
        let mut known = known_in_run(&mut known_rows, root_id, &run)?;
        for st in files {
            match known.remove(&st.rel_path) {
                Some(k) if k.size == st.size && k.mtime_ns == st.mtime_ns && !k.pending => {
                    plan.unchanged += 1;
                    plan.known_corrupt += usize::from(k.corrupt);
                    if !k.present {
                        plan.reappeared.push(st.rel_path);
                    }
                }
                _ => plan.todo.push(st),
            }
        }
        if complete {
            plan.vanished.extend(present_paths(known));
        }
        plan.examined.push(ExaminedRun { run, digest, files: listed, racy });
    }
    // Run directories the warehouse knows that are gone as a whole (pre-cleared, deleted).
    let mut gone: Vec<String> =
        settled.into_keys().filter(|run| !incomplete.contains(run)).collect();
    gone.sort();
    for run in &gone {
        plan.vanished.extend(present_paths(known_in_run(&mut known_rows, root_id, run)?));
    }
    plan.gone_runs = gone;
    Ok(plan)
}

impl Plan {
    /// True when nothing needs recording: every run directory was skipped or unchanged.
    pub fn is_no_op(&self) -> bool {
        self.todo.is_empty()
            && self.reappeared.is_empty()
            && self.vanished.is_empty()
            && self.examined.is_empty()
            && self.gone_runs.is_empty()
    }

    /// Before any file is written: the examined run directories lose their digest, so an
    /// ingest killed midway leaves them to be examined again, and a new run directory gets
    /// a state row (which is how a later ingest notices it is gone).
    pub fn unsettle(&self, tx: &Transaction<'_>, root_id: i64) -> rusqlite::Result<()> {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO run_dir_state (root_id, run_dir, digest, corrupt) VALUES (?1, ?2, NULL, 0) \
             ON CONFLICT (root_id, run_dir) DO UPDATE SET digest = NULL",
        )?;
        for run in &self.examined {
            stmt.execute(params![root_id, run.run])?;
        }
        Ok(())
    }

    /// After every file is written, in the transaction that marks vanished files: store the
    /// digest of each examined run directory whose file records now describe exactly what was
    /// walked, and forget the gone run directories that have no present file left.
    pub fn settle(&self, tx: &Transaction<'_>, root_id: i64) -> rusqlite::Result<()> {
        let mut known_rows = known_rows_statement(tx)?;
        let mut store = tx.prepare_cached(
            "INSERT INTO run_dir_state (root_id, run_dir, digest, corrupt) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (root_id, run_dir) DO UPDATE SET digest = ?3, corrupt = ?4",
        )?;
        // A run left out keeps a NULL digest and is examined again next time.
        for run in self.examined.iter().filter(|run| !run.racy) {
            let known = known_in_run(&mut known_rows, root_id, &run.run)?;
            let Some(corrupt) = settled_by(&known, &run.files) else { continue };
            store.execute(params![root_id, run.run, &run.digest[..], corrupt as i64])?;
        }
        let mut forget =
            tx.prepare_cached("DELETE FROM run_dir_state WHERE root_id = ?1 AND run_dir = ?2")?;
        for run in &self.gone_runs {
            let known = known_in_run(&mut known_rows, root_id, run)?;
            if !known.values().any(|k| k.present) {
                forget.execute(params![root_id, run])?;
            }
        }
        Ok(())
    }
}

/// The records still marked present: files gone since, when the walk did not find them.
fn present_paths(known: HashMap<String, Known>) -> impl Iterator<Item = String> {
    known.into_iter().filter(|(_, k)| k.present).map(|(rel, _)| rel)
}

/// The number of corrupt files to store when `known` (a run directory's file records)
/// describes exactly the walked `files`; `None` when it does not.
fn settled_by(known: &HashMap<String, Known>, files: &[(String, i64, i64)]) -> Option<usize> {
    if known.values().filter(|k| k.present).count() != files.len() {
        return None;
    }
    let mut corrupt = 0;
    for (rel_path, size, mtime_ns) in files {
        let k = known.get(rel_path)?;
        if k.size != *size || k.mtime_ns != *mtime_ns || k.pending || !k.present {
            return None;
        }
        corrupt += usize::from(k.corrupt);
    }
    Some(corrupt)
}

fn known_rows_statement(conn: &Connection) -> rusqlite::Result<CachedStatement<'_>> {
    conn.prepare_cached(
        "SELECT rel_path, size, mtime_ns, status, present \
         FROM source_file WHERE root_id = ?1 AND rel_path >= ?2 AND rel_path < ?3",
    )
}

/// The file records of one run directory.
fn known_in_run(
    stmt: &mut CachedStatement<'_>,
    root_id: i64,
    run: &str,
) -> rusqlite::Result<HashMap<String, Known>> {
    // Every rel_path under `run` starts with "run/"; '0' is the byte after '/'.
    let rows = stmt.query_map(params![root_id, format!("{run}/"), format!("{run}0")], |r| {
        let status: FileStatus = r.get(3)?;
        Ok((
            r.get::<_, String>(0)?,
            Known {
                size: r.get(1)?,
                mtime_ns: r.get(2)?,
                pending: status == FileStatus::Pending,
                corrupt: status == FileStatus::Corrupt,
                present: r.get(4)?,
            },
        ))
    })?;
    rows.collect()
}

/// A settled run directory's `run_dir_state` row.
struct Settled {
    digest: [u8; 32],
    corrupt: usize,
}

/// Every run directory with a state row, settled or not (None).
fn settled_digests(
    conn: &Connection,
    root_id: i64,
) -> rusqlite::Result<HashMap<String, Option<Settled>>> {
    let mut stmt = conn
        .prepare_cached("SELECT run_dir, digest, corrupt FROM run_dir_state WHERE root_id = ?1")?;
    let rows = stmt.query_map([root_id], |r| {
        let digest: Option<Vec<u8>> = r.get(1)?;
        let corrupt: i64 = r.get(2)?;
        let digest = digest.and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok());
        let settled = digest.map(|digest| Settled { digest, corrupt: corrupt.max(0) as usize });
        Ok((r.get::<_, String>(0)?, settled))
    })?;
    rows.collect()
}

/// Names, sizes and mtimes of a run directory's files, in walk order.
fn run_digest(files: &[FileStat]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    for f in files {
        hasher.update(f.rel_path.as_bytes());
        hasher.update(&[0]);
        hasher.update(&f.size.to_le_bytes());
        hasher.update(&f.mtime_ns.to_le_bytes());
    }
    *hasher.finalize().as_bytes()
}

/// Labels of skips that are sidecar files (counted as seen), not directories.
fn is_file_skip(kind: &str) -> bool {
    matches!(kind, "non-utf8-path" | "not-a-regular-file" | "unreadable")
}

fn walk_skip(entry: SkippedEntry) -> Walked {
    let (kind, reason, hides_files) = match entry.reason {
        SkipReason::Unreadable(e) => (
            "unreadable-directory",
            format!("cannot list this directory ({e}); its sidecars were left out"),
            true,
        ),
        SkipReason::SymlinkIntoRoot => (
            "symlink-into-root",
            "a symlink that leads back inside the runs root is not followed; its target is \
             ingested where it is"
                .to_string(),
            false,
        ),
    };
    Walked::Skipped { skip: WalkSkip { path: entry.path, kind, reason }, hides_files }
}

/// The run directory (first component under `root`) a path belongs to, if it is UTF-8.
fn run_of(root: &Path, path: &Path) -> Option<String> {
    let first = path.strip_prefix(root).ok()?.components().next()?;
    first.as_os_str().to_str().map(str::to_string)
}

/// The size and mtime the incremental check compares, from one `stat` (following a symlink);
/// `None` when the file is gone already. A path that is not valid UTF-8, or that is not a
/// regular file, or that cannot be stat'ed is a skip.
fn stat_file(root: &Path, path: PathBuf) -> Option<Walked> {
    let skip = |path, kind, reason: String, hides_files| {
        Some(Walked::Skipped { skip: WalkSkip { path, kind, reason }, hides_files })
    };
    let meta = match fs::metadata(&path) {
        Ok(meta) => meta,
        // Removed between the listing and the stat: not there, nothing to say.
        Err(e) if e.kind() == ErrorKind::NotFound && fs::symlink_metadata(&path).is_err() => {
            return None;
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return skip(path, "unreadable", "a symlink to nothing".into(), false);
        }
        Err(e) => return skip(path, "unreadable", format!("cannot stat file: {e}"), true),
    };
    if let Some(kind) = special_file_kind(&meta.file_type()) {
        let reason = format!("is a {kind}, not a regular file; only regular files are read");
        return skip(path, "not-a-regular-file", reason, false);
    }
    let Some(rel_path) = path.strip_prefix(root).ok()?.to_str().map(str::to_string) else {
        let reason = "its path is not valid UTF-8, which the warehouse cannot record; rename \
                      the file or its run directory"
            .to_string();
        return skip(path, "non-utf8-path", reason, false);
    };
    Some(Walked::File(FileStat {
        rel_path,
        size: meta.len() as i64,
        mtime_ns: mtime_ns(&meta),
        path,
    }))
}

fn mtime_ns(meta: &fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::sidecar::SidecarResult;
    use crate::warehouse::Warehouse;
    use crate::warehouse::ingest::ingest_root;

    fn write(root: &Path, rel: &str, body: &str, mtime: SystemTime) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        fs::File::options().write(true).open(&path).unwrap().set_modified(mtime).unwrap();
    }

    fn doc(test: &str, iterations: u64) -> String {
        let mut s = SidecarResult::empty(test);
        s.stats.total_iterations = iterations;
        s.to_json_pretty()
    }

    fn an_hour_ago() -> SystemTime {
        SystemTime::now() - Duration::from_secs(3600)
    }

    /// run_dir → digest present (settled) or not, for every state row.
    fn states(wh: &Warehouse) -> Vec<(String, bool, i64)> {
        let mut stmt = wh
            .conn()
            .prepare("SELECT run_dir, digest IS NOT NULL, corrupt FROM run_dir_state ORDER BY 1")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn an_unchanged_run_is_skipped_and_a_rewrite_in_place_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let t0 = an_hour_ago();
        write(root, "r1/a.ktstr.json", &doc("a", 1), t0);
        write(root, "r1/job/b.ktstr.json", &doc("b", 1), t0);
        write(root, "r2/a.ktstr.json", &doc("a", 2), t0);
        let mut wh = Warehouse::open_in_memory().unwrap();
        assert_eq!(ingest_root(&mut wh, root, None).unwrap().new_sidecars, 3);
        assert_eq!(states(&wh), [("r1".into(), true, 0), ("r2".into(), true, 0)]);

        let again = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((again.unchanged, again.parsed), (3, 0));
        // Settled runs are skipped on their digest alone: damaged file records go unread.
        wh.conn()
            .execute("UPDATE source_file SET size = -1 WHERE rel_path LIKE 'r2/%'", [])
            .unwrap();
        let skipped = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((skipped.unchanged, skipped.parsed), (3, 0));
        wh.conn()
            .execute("UPDATE run_dir_state SET digest = NULL WHERE run_dir = 'r2'", [])
            .unwrap();
        let examined = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((examined.unchanged, examined.parsed, examined.duplicates), (2, 1, 1));

        // ktstr rewrites in place: the run directory's own mtime does not move.
        write(root, "r1/job/b.ktstr.json", &doc("b", 99), t0 + Duration::from_secs(5));
        let rewritten = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((rewritten.unchanged, rewritten.parsed, rewritten.new_sidecars), (2, 1, 1));
        assert_eq!(states(&wh), [("r1".into(), true, 0), ("r2".into(), true, 0)]);
    }

    #[test]
    fn a_pending_file_keeps_its_run_unsettled_until_it_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let body = doc("a", 1);
        // Young and truncated: probably still being written.
        write(root, "r1/a.ktstr.json", &body[..body.len() / 2], SystemTime::now());
        let mut wh = Warehouse::open_in_memory().unwrap();
        let first = ingest_root(&mut wh, root, None).unwrap();
        assert!(first.problems[0].will_retry);
        assert_eq!(states(&wh), [("r1".into(), false, 0)]);

        // Finished, and old enough to be trusted (see the racy test below).
        write(root, "r1/a.ktstr.json", &body, an_hour_ago());
        let done = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((done.parsed, done.new_sidecars), (1, 1));
        assert_eq!(states(&wh), [("r1".into(), true, 0)]);
    }

    #[test]
    fn corrupt_files_are_counted_while_their_run_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "r1/a.ktstr.json", &doc("a", 1), an_hour_ago());
        write(root, "r1/bad.ktstr.json", "{ not json", an_hour_ago());
        let mut wh = Warehouse::open_in_memory().unwrap();
        let first = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((first.problems.len(), first.known_corrupt), (1, 0));
        assert_eq!(states(&wh), [("r1".into(), true, 1)]);
        let again = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((again.problems.len(), again.known_corrupt, again.unchanged), (0, 1, 2));
    }

    #[test]
    fn a_run_directory_removed_as_a_whole_is_marked_gone_and_can_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "r1/a.ktstr.json", &doc("a", 1), an_hour_ago());
        write(root, "r2/a.ktstr.json", &doc("a", 2), an_hour_ago());
        write(root, "r2/job/b.ktstr.json", &doc("b", 2), an_hour_ago());
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        let present = |wh: &Warehouse| -> i64 {
            wh.conn()
                .query_row("SELECT count(*) FROM source_file WHERE present = 1", [], |r| r.get(0))
                .unwrap()
        };

        fs::remove_dir_all(root.join("r2")).unwrap();
        let gone = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(gone.vanished, 2);
        assert_eq!(present(&wh), 1);
        assert_eq!(states(&wh), [("r1".into(), true, 0)]);
        assert_eq!(ingest_root(&mut wh, root, None).unwrap().vanished, 0);

        write(root, "r2/a.ktstr.json", &doc("a", 2), an_hour_ago());
        let back = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((back.duplicates, back.new_sidecars), (1, 0));
        assert_eq!(present(&wh), 2);
    }

    #[test]
    fn run_directory_prefixes_do_not_leak_into_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for run in ["r1", "r1-x", "r10"] {
            write(root, &format!("{run}/a.ktstr.json"), &doc(run, 1), an_hour_ago());
        }
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        fs::remove_dir_all(root.join("r1")).unwrap();
        // Only r1's file is gone; r1-x and r10 sort next to it but are other runs.
        assert_eq!(ingest_root(&mut wh, root, None).unwrap().vanished, 1);
        let again = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((again.vanished, again.unchanged), (0, 2));
    }

    #[test]
    fn a_run_with_a_young_coarse_timestamp_is_not_settled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let fine = UNIX_EPOCH + now - Duration::from_nanos(123_457);
        let coarse = UNIX_EPOCH + Duration::from_secs(now.as_secs());
        write(root, "r0/a.ktstr.json", &doc("a", 0), fine);
        write(root, "r1/a.ktstr.json", &doc("a", 1), an_hour_ago());
        write(root, "r1/b.ktstr.json", &doc("b", 1), coarse);
        let mut wh = Warehouse::open_in_memory().unwrap();
        assert_eq!(ingest_root(&mut wh, root, None).unwrap().new_sidecars, 3);
        // A same-size rewrite within a coarse timestamp tick would not change the digest;
        // a nanosecond timestamp just written is fine.
        assert_eq!(states(&wh), [("r0".into(), true, 0), ("r1".into(), false, 0)]);
        let again = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((again.unchanged, again.parsed), (3, 0));
        write(root, "r1/b.ktstr.json", &doc("b", 1), an_hour_ago());
        ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(states(&wh), [("r0".into(), true, 0), ("r1".into(), true, 0)]);
    }

    #[test]
    fn a_record_changed_by_another_ingest_meanwhile_keeps_the_run_unsettled() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runs");
        let db = dir.path().join("warehouse.sqlite");
        // More than one batch, so the other writer gets in between two of them.
        for i in 0..2100 {
            write(&root, &format!("r1/t{i:04}.ktstr.json"), &doc("t", i), an_hour_ago());
        }
        let mut wh = Warehouse::open(&db).unwrap();
        let interfered = std::sync::atomic::AtomicBool::new(false);
        let other_writer = |_done: usize, _total: usize| {
            if !interfered.swap(true, std::sync::atomic::Ordering::SeqCst) {
                // What an ingest that read the first file mid-write would have recorded.
                let other = Warehouse::open(&db).unwrap();
                other
                    .conn()
                    .execute(
                        "UPDATE source_file SET status = 'pending' WHERE rel_path = 'r1/t0000.ktstr.json'",
                        [],
                    )
                    .unwrap();
            }
        };
        ingest_root(&mut wh, &root, Some(&other_writer)).unwrap();
        assert_eq!(states(&wh), [("r1".into(), false, 0)]);
        let retried = ingest_root(&mut wh, &root, None).unwrap();
        assert_eq!((retried.parsed, retried.duplicates), (1, 1));
        assert_eq!(states(&wh), [("r1".into(), true, 0)]);
    }

    #[test]
    fn a_path_that_is_not_utf8_is_reported_and_left_alone() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let odd = std::ffi::OsStr::from_bytes(b"r\xe8");
        write(&root.join(odd), "a.ktstr.json", &doc("a", 1), an_hour_ago());
        write(root, "r1/a.ktstr.json", &doc("a", 2), an_hour_ago());
        let mut wh = Warehouse::open_in_memory().unwrap();
        for _ in 0..2 {
            let report = ingest_root(&mut wh, root, None).unwrap();
            let kinds: Vec<&str> = report.problems.iter().map(|p| p.kind).collect();
            assert_eq!(kinds, ["non-utf8-path"]);
            assert_eq!(report.vanished, 0);
        }
        assert_eq!(states(&wh), [("r1".into(), true, 0)]);
    }

    #[test]
    fn settling_needs_records_that_match_the_walk_exactly() {
        let file = |size, pending, corrupt, present| Known {
            size,
            mtime_ns: 7,
            pending,
            corrupt,
            present,
        };
        let walked = [("r/a".to_string(), 1, 7), ("r/b".to_string(), 2, 7)];
        let known = |rows: Vec<(&str, Known)>| -> HashMap<String, Known> {
            rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
        };
        let exact = known(vec![
            ("r/a", file(1, false, false, true)),
            ("r/b", file(2, false, true, true)),
            ("r/old", file(9, false, false, false)),
        ]);
        assert_eq!(settled_by(&exact, &walked), Some(1));
        let pending =
            known(vec![("r/a", file(1, true, false, true)), ("r/b", file(2, false, false, true))]);
        assert_eq!(settled_by(&pending, &walked), None);
        let older =
            known(vec![("r/a", file(5, false, false, true)), ("r/b", file(2, false, false, true))]);
        assert_eq!(settled_by(&older, &walked), None);
        let extra = known(vec![
            ("r/a", file(1, false, false, true)),
            ("r/b", file(2, false, false, true)),
            ("r/c", file(3, false, false, true)),
        ]);
        assert_eq!(settled_by(&extra, &walked), None);
        let missing = known(vec![("r/a", file(1, false, false, true))]);
        assert_eq!(settled_by(&missing, &walked), None);
    }

    #[test]
    fn a_file_gone_from_a_job_directory_or_fixed_in_place_is_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "r1/a.ktstr.json", &doc("a", 1), an_hour_ago());
        write(root, "r1/job/b.ktstr.json", &doc("b", 1), an_hour_ago());
        write(root, "r1/job/bad.ktstr.json", "{ nope", an_hour_ago());
        let mut wh = Warehouse::open_in_memory().unwrap();
        ingest_root(&mut wh, root, None).unwrap();
        assert_eq!(states(&wh), [("r1".into(), true, 1)]);

        fs::remove_file(root.join("r1/job/b.ktstr.json")).unwrap();
        let removed = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((removed.vanished, removed.unchanged, removed.known_corrupt), (1, 2, 1));

        write(
            root,
            "r1/job/bad.ktstr.json",
            &doc("bad", 1),
            an_hour_ago() + Duration::from_secs(1),
        );
        let fixed = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((fixed.new_sidecars, fixed.known_corrupt, fixed.problems.len()), (1, 0, 0));
        assert_eq!(states(&wh), [("r1".into(), true, 0)]);
        let again = ingest_root(&mut wh, root, None).unwrap();
        assert_eq!((again.unchanged, again.known_corrupt, again.vanished), (2, 0, 0));
    }
}
