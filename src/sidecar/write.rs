//! Writing sidecars: putting a finished document in its run directory safely
//! (stats-reference §1.5).
//!
//! The document is written as given: producers build it complete (run context, canonical flag
//! order, non-finite floats replaced) before calling [`write_sidecar`], which only names the
//! file, locks, pre-clears and writes. Its run directory comes from the document's own
//! `kernel_version` and `project_commit`.
//!
//! On the default path a write creates `{runs_root}/{kernel}-{commit}/`, takes the run
//! directory's advisory lock, pre-clears the directory if this is the first write of a new
//! suite run, and writes the file atomically. With `KTSTR_SIDECAR_DIR` set the file goes
//! into that directory verbatim, with no lock, no pre-clear and no warning.
//!
//! # Pre-clear is keyed on the run token (fixes ktstr defect §7.2 #1)
//! ktstr pre-clears once per *process*, so under nextest (one process per test) every test
//! wipes the sidecars of the tests before it. Here the run directory remembers the token of
//! the run that last cleared it (`{runs_root}/.locks/{leaf}.token`); a write clears only when
//! its token differs. All processes of one `cargo ktstr test` share a token (the
//! producer passes it in [`WriteOptions::run_token`]; it comes from `KTSTR_RUN_TOKEN`, else
//! nextest's `NEXTEST_RUN_ID`), so they keep each other's files, and the next run replaces the
//! previous run of the same (kernel, commit).
//!
//! # Failures never change a verdict
//! Callers (the harness) must log a [`WriteError`] and carry on: a test's pass or fail is
//! decided by the test, not by whether its record could be stored.

use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::layout::{self, EnvLookup, process_env};
use super::model::SidecarResult;
use super::name::sidecar_file_name;
use super::read::is_sidecar_filename;

/// How long a write waits for a peer holding the run directory's lock (ktstr's
/// `RUN_DIR_LOCK_TIMEOUT`).
pub const RUN_DIR_LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a blocked writer retries the lock.
const LOCK_POLL: Duration = Duration::from_millis(25);

/// Where and under which run a sidecar is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// `KTSTR_SIDECAR_DIR`: write here verbatim, skipping lock, pre-clear and warning.
    pub sidecar_dir_override: Option<PathBuf>,
    /// The runs root the default run directory is created under.
    pub runs_root: PathBuf,
    /// Identifies the suite run; the run directory is pre-cleared once per token.
    pub run_token: String,
    /// How long to wait for the run directory's lock.
    pub lock_timeout: Duration,
    /// `KTSTR_JOB`: a job subdirectory of the run directory (e.g. `repeat-2` from
    /// `cargo ktstr test --repeat`), so repeats of one run keep their own sidecars. Readers
    /// pool one level of job subdirectories. Ignored unless it is one plain path component.
    pub job: Option<String>,
}

impl WriteOptions {
    /// Options from the process environment for the suite run `run_token` (see
    /// [`WriteOptions::from_env_with`]).
    pub fn from_env(run_token: String) -> WriteOptions {
        let mut opts = WriteOptions::from_env_with(&process_env, layout::runs_root(), run_token);
        // Read as `OsString` so a non-UTF-8 override is honoured rather than silently dropped.
        opts.sidecar_dir_override =
            std::env::var_os("KTSTR_SIDECAR_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        opts
    }

    /// Options from the given environment: a non-empty `KTSTR_SIDECAR_DIR` overrides the run
    /// directory, `KTSTR_JOB` names the job; the lock timeout is 30 s.
    pub fn from_env_with(
        env: EnvLookup<'_>,
        runs_root: PathBuf,
        run_token: String,
    ) -> WriteOptions {
        WriteOptions {
            sidecar_dir_override: env("KTSTR_SIDECAR_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            runs_root,
            run_token,
            lock_timeout: RUN_DIR_LOCK_TIMEOUT,
            job: env("KTSTR_JOB").filter(|j| is_job_name(j)),
        }
    }
}

/// A job name must stay inside the run directory: one component, no dots-only names.
fn is_job_name(j: &str) -> bool {
    !j.is_empty() && j != "." && j != ".." && !j.contains(['/', '\\', '\0'])
}

/// Job subdirectories `cargo ktstr test --repeat` creates; a new run's pre-clear removes the
/// previous run's, so a run with fewer repeats does not inherit stale ones.
pub const REPEAT_JOB_PREFIX: &str = "repeat-";

/// Why a sidecar could not be written. The harness logs it and keeps the test's verdict.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot create sidecar directory {}: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot open run-directory lock file {}: {source}", path.display())]
    LockFile { path: PathBuf, source: io::Error },
    #[error(
        "run directory {} is locked by another writer (waited {}s on {}); a peer `cargo ktstr \
         test` is writing it: let it finish, or set KTSTR_SIDECAR_DIR to a separate directory",
        run_dir.display(), waited.as_secs_f32(), lock.display()
    )]
    LockTimeout { run_dir: PathBuf, lock: PathBuf, waited: Duration },
    #[error("cannot record the run token in {}: {source}", path.display())]
    Token { path: PathBuf, source: io::Error },
    #[error("cannot write sidecar {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot move sidecar into place at {}: {source}", path.display())]
    Rename { path: PathBuf, source: io::Error },
}

/// Write `sc` exactly as given and return its path, as described in the module docs.
pub fn write_sidecar(sc: &SidecarResult, opts: &WriteOptions) -> Result<PathBuf, WriteError> {
    let name = sidecar_file_name(sc);

    if let Some(dir) = &opts.sidecar_dir_override {
        create_dir(dir)?;
        return write_atomic(dir, &name, &sc.to_json_pretty());
    }

    let leaf = layout::run_dir_name(sc.kernel_version.as_deref(), sc.project_commit.as_deref());
    let dir = opts.runs_root.join(&leaf);
    create_dir(&dir)?;
    if sc.project_commit.is_none() {
        warn_unknown_commit_once(sc.kernel_version.as_deref().unwrap_or(layout::UNKNOWN));
    }
    let _lock = lock_run_dir(&opts.runs_root, &leaf, &dir, opts.lock_timeout)?;
    pre_clear(&dir, &layout::token_path(&opts.runs_root, &leaf), &opts.run_token)?;
    match &opts.job {
        Some(job) => {
            let job_dir = dir.join(job);
            create_dir(&job_dir)?;
            write_atomic(&job_dir, &name, &sc.to_json_pretty())
        }
        None => write_atomic(&dir, &name, &sc.to_json_pretty()),
    }
}

fn create_dir(dir: &Path) -> Result<(), WriteError> {
    fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir { path: dir.into(), source })
}

/// The one place library code prints: ktstr's once-per-process warning that runs without a
/// project commit all share one directory and overwrite each other. It goes to stderr so it
/// shows in the test's output, where the user can act on it; the text is ktstr's.
fn warn_unknown_commit_once(kernel: &str) {
    static WARNED: OnceLock<()> = OnceLock::new();
    WARNED.get_or_init(|| {
        let _ = writeln!(
            io::stderr(),
            "ktstr: WARNING: project commit unavailable (cwd not in a git repo, or HEAD \
             unreadable); runs at this kernel overwrite each other in \
             target/ktstr/{kernel}-unknown/. Set KTSTR_SIDECAR_DIR=<unique-path> per run, or \
             run from inside a git repo with at least one commit."
        );
    });
}

/// Take the exclusive advisory lock on `{runs_root}/.locks/{leaf}.lock`, polling until
/// `timeout`. The lock is released when the returned file is dropped.
fn lock_run_dir(
    runs_root: &Path,
    leaf: &str,
    run_dir: &Path,
    timeout: Duration,
) -> Result<File, WriteError> {
    let lock = layout::lock_path(runs_root, leaf);
    let locks_dir = runs_root.join(layout::LOCKS_DIR_NAME);
    fs::create_dir_all(&locks_dir)
        .map_err(|source| WriteError::CreateDir { path: locks_dir, source })?;
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(|source| WriteError::LockFile { path: lock.clone(), source })?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) if start.elapsed() < timeout => thread::sleep(LOCK_POLL),
            Err(TryLockError::WouldBlock) => {
                return Err(WriteError::LockTimeout {
                    run_dir: run_dir.into(),
                    lock,
                    waited: start.elapsed(),
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(WriteError::LockFile { path: lock, source });
            }
        }
    }
}

/// Under the lock: if the run directory was last cleared under another token, delete its
/// sidecars (regular files directly in it whose names are sidecar names, and the sidecars of
/// its `repeat-*` job subdirectories, which are removed when left empty; never other
/// directories or files) and record `token`.
///
/// Deletion errors are ignored, as in ktstr: a stale file left behind is harmless next to the
/// new run's files, while failing the write would lose the new result. Failing to record the
/// token is an error, because the next process of this run would clear again.
fn pre_clear(run_dir: &Path, token_file: &Path, token: &str) -> Result<(), WriteError> {
    let previous = fs::read_to_string(token_file).ok();
    if previous.as_deref().map(str::trim) == Some(token) {
        return Ok(());
    }
    if let Ok(entries) = fs::read_dir(run_dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && is_sidecar_filename(&path) {
                let _ = fs::remove_file(&path);
            }
            let is_repeat_dir = entry.file_type().is_ok_and(|t| t.is_dir())
                && entry.file_name().to_string_lossy().starts_with(REPEAT_JOB_PREFIX);
            if is_repeat_dir {
                remove_sidecars_in(&path);
                let _ = fs::remove_dir(&path);
            }
        }
    }
    fs::write(token_file, token)
        .map_err(|source| WriteError::Token { path: token_file.into(), source })
}

fn remove_sidecars_in(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_file()) && is_sidecar_filename(&path) {
            let _ = fs::remove_file(&path);
        }
    }
}

/// Write `contents` to `{dir}/{name}` through a temporary file and a rename, so a reader never
/// sees a half-written sidecar. The temporary name ends in `.tmp`, which the sidecar
/// predicate rejects, so a crash leaves nothing a reader would pick up.
fn write_atomic(dir: &Path, name: &str, contents: &str) -> Result<PathBuf, WriteError> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let dest = dir.join(name);
    let tmp = dir.join(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(contents.as_bytes())?;
            f.sync_data()
        })
        .map_err(|source| WriteError::Write { path: dest.clone(), source })
        .and_then(|()| {
            fs::rename(&tmp, &dest)
                .map_err(|source| WriteError::Rename { path: dest.clone(), source })
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::read::{read_sidecar, run_dir_sidecar_paths};

    fn opts(root: &Path, token: &str) -> WriteOptions {
        WriteOptions {
            sidecar_dir_override: None,
            runs_root: root.to_path_buf(),
            run_token: token.to_string(),
            lock_timeout: Duration::from_secs(5),
            job: None,
        }
    }

    fn result(test: &str) -> SidecarResult {
        let mut sc = SidecarResult::empty(test);
        sc.kernel_version = Some("6.14.2".into());
        sc.project_commit = Some("abc1234".into());
        sc.timestamp = "2026-04-27T09:15:02Z".into();
        sc.run_id = "20260427T091455Z-0".into();
        sc
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn default_path_is_kernel_commit_dir_and_file_name_is_the_variant_name() {
        let root = tempfile::tempdir().unwrap();
        let sc = result("alpha");
        let path = write_sidecar(&sc, &opts(root.path(), "run1")).unwrap();
        assert_eq!(path.parent().unwrap(), root.path().join("6.14.2-abc1234"));
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), sidecar_file_name(&sc));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, sc.to_json_pretty());
        assert!(!text.ends_with('\n'));
        // No temporary file is left behind, and the lock files live under .locks/.
        assert_eq!(names(path.parent().unwrap()).len(), 1);
        assert_eq!(
            names(&root.path().join(".locks")),
            ["6.14.2-abc1234.lock", "6.14.2-abc1234.token"]
        );
    }

    #[test]
    fn processes_of_one_run_keep_each_others_files() {
        let root = tempfile::tempdir().unwrap();
        // Two nextest test processes share the run token but nothing else.
        let a = write_sidecar(&result("alpha"), &opts(root.path(), "run1")).unwrap();
        let b = write_sidecar(&result("beta"), &opts(root.path(), "run1")).unwrap();
        assert!(a.exists() && b.exists());
    }

    #[test]
    fn a_new_run_replaces_the_previous_run_of_the_same_kernel_and_commit() {
        let root = tempfile::tempdir().unwrap();
        let a = write_sidecar(&result("alpha"), &opts(root.path(), "run1")).unwrap();
        let b = write_sidecar(&result("beta"), &opts(root.path(), "run2")).unwrap();
        assert!(!a.exists(), "the previous run's sidecar is cleared");
        assert!(b.exists());

        // A different commit is a different directory and is left alone.
        let mut other = result("gamma");
        other.project_commit = Some("def5678".into());
        let c = write_sidecar(&other, &opts(root.path(), "run3")).unwrap();
        assert!(b.exists() && c.exists());
    }

    #[test]
    fn pre_clear_spares_subdirectories_and_non_sidecar_files() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("6.14.2-abc1234");
        fs::create_dir_all(run.join("job1")).unwrap();
        fs::write(run.join("job1/old-0000000000000001.ktstr.json"), "{}").unwrap();
        fs::write(run.join("notes.txt"), "keep").unwrap();
        fs::write(run.join("data.json"), "{}").unwrap();
        fs::write(run.join("stale-0000000000000002.ktstr.json"), "{}").unwrap();
        fs::create_dir_all(run.join("dir.ktstr.json")).unwrap();

        write_sidecar(&result("alpha"), &opts(root.path(), "run1")).unwrap();
        let left = names(&run);
        assert!(!left.contains(&"stale-0000000000000002.ktstr.json".to_string()));
        for kept in ["job1", "notes.txt", "data.json", "dir.ktstr.json"] {
            assert!(left.contains(&kept.to_string()), "{kept} survives: {left:?}");
        }
        assert!(run.join("job1/old-0000000000000001.ktstr.json").exists());
    }

    #[test]
    fn repeats_write_job_subdirs_and_a_new_token_clears_old_repeats() {
        let root = tempfile::tempdir().unwrap();
        let run = root.path().join("6.14.2-abc1234");
        let job =
            |token: &str, j: &str| WriteOptions { job: Some(j.into()), ..opts(root.path(), token) };
        write_sidecar(&result("alpha"), &job("run1", "repeat-0")).unwrap();
        write_sidecar(&result("alpha"), &job("run1", "repeat-1")).unwrap();
        write_sidecar(&result("alpha"), &job("run1", "repeat-2")).unwrap();
        assert_eq!(names(&run), ["repeat-0", "repeat-1", "repeat-2"]);
        assert_eq!(names(&run.join("repeat-1")).len(), 1);
        fs::write(run.join("repeat-2/notes.txt"), "keep").unwrap();

        // The next run has one repeat: repeat-1 goes, repeat-2 keeps only the foreign file.
        write_sidecar(&result("beta"), &job("run2", "repeat-0")).unwrap();
        assert_eq!(names(&run), ["repeat-0", "repeat-2"]);
        assert_eq!(names(&run.join("repeat-0")).len(), 1);
        assert!(names(&run.join("repeat-0"))[0].starts_with("beta-"));
        assert_eq!(names(&run.join("repeat-2")), ["notes.txt"]);
    }

    #[test]
    fn job_names_must_be_one_component() {
        let with = |v: &'static str| {
            WriteOptions::from_env_with(
                &move |k: &str| (k == "KTSTR_JOB").then(|| v.to_string()),
                "/r".into(),
                "tok".into(),
            )
            .job
        };
        assert_eq!(with("repeat-3"), Some("repeat-3".to_string()));
        for bad in ["", ".", "..", "a/b", "../x"] {
            assert_eq!(with(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn override_dir_is_used_verbatim_and_never_pre_cleared() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mine");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("old-0000000000000001.ktstr.json"), "{}").unwrap();
        for token in ["run1", "run2"] {
            let mut o = opts(&root.path().join("runs"), token);
            o.sidecar_dir_override = Some(dir.clone());
            let mut sc = result(&format!("t_{token}"));
            sc.project_commit = None;
            let path = write_sidecar(&sc, &o).unwrap();
            assert_eq!(path.parent().unwrap(), dir);
        }
        assert_eq!(names(&dir).len(), 3);
        assert!(!root.path().join("runs").exists(), "no run dir and no locks on the override path");
    }

    #[test]
    fn a_held_lock_times_out_naming_the_run_directory() {
        let root = tempfile::tempdir().unwrap();
        let leaf = "6.14.2-abc1234";
        fs::create_dir_all(root.path().join(".locks")).unwrap();
        let held = File::create(layout::lock_path(root.path(), leaf)).unwrap();
        held.lock().unwrap();

        let mut o = opts(root.path(), "run1");
        o.lock_timeout = Duration::from_millis(100);
        let err = write_sidecar(&result("alpha"), &o).unwrap_err();
        assert!(matches!(err, WriteError::LockTimeout { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&root.path().join(leaf).display().to_string()), "{msg}");
        assert!(msg.contains("peer `cargo ktstr test`"), "{msg}");

        drop(held);
        write_sidecar(&result("alpha"), &o).unwrap();
    }

    #[test]
    fn unwritable_location_gives_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        // Running as root defeats permission bits; a path under a regular file cannot exist.
        let err = write_sidecar(&result("alpha"), &opts(&file, "run1")).unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot create sidecar directory "), "{err}");
        assert!(err.to_string().contains("plain-file"), "{err}");

        let mut o = opts(root.path(), "run1");
        o.sidecar_dir_override = Some(file.join("sub"));
        let err = write_sidecar(&result("alpha"), &o).unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
    }

    #[test]
    fn the_document_is_written_as_given() {
        let root = tempfile::tempdir().unwrap();
        let mut sc = result("alpha");
        // Canonical order is the builder's job; the writer keeps whatever it is handed.
        sc.active_flags = vec!["steal".into(), "llc".into()];
        let path = write_sidecar(&sc, &opts(root.path(), "run1")).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), sc.to_json_pretty());
        let back = read_sidecar(&path).unwrap();
        assert_eq!(back, sc);
        assert_eq!(back.provenance.run_token, None, "the writer's token is not stamped on");
        // The name depends only on the flag set, so it is the canonical variant's name.
        let mut canonical = sc.clone();
        canonical.active_flags = vec!["llc".into(), "steal".into()];
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), sidecar_file_name(&canonical));
        assert_eq!(run_dir_sidecar_paths(path.parent().unwrap()), [path]);
    }

    #[test]
    fn options_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let o = WriteOptions::from_env_with(
            &env(&[("KTSTR_SIDECAR_DIR", "")]),
            "/r".into(),
            "tok".into(),
        );
        assert_eq!(o.sidecar_dir_override, None);
        assert_eq!(o.lock_timeout, RUN_DIR_LOCK_TIMEOUT);
        assert_eq!(o.run_token, "tok");
        let o = WriteOptions::from_env_with(
            &env(&[("KTSTR_SIDECAR_DIR", "/s")]),
            "/r".into(),
            "tok".into(),
        );
        assert_eq!(o.sidecar_dir_override, Some(PathBuf::from("/s")));
    }
}
