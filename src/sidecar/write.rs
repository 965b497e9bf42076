//! Writing sidecars: stamping the run context onto a result, then putting the file in its run
//! directory safely (stats-reference §1.5).
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
//! its token differs. All processes of one `cargo ktstr test` share a token
//! (`KTSTR_RUN_TOKEN`, else nextest's `NEXTEST_RUN_ID`), so they keep each other's files, and
//! the next run replaces the previous run of the same (kernel, commit).
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

use super::layout::{self, EnvLookup, KernelSpec, process_env};
use super::model::SidecarResult;
use super::name::{canonicalize_flags, sidecar_file_name};
use super::read::is_sidecar_filename;
use crate::git::{self, ProjectCommit};
use crate::{host, timefmt};

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
    /// Options from the process environment (see [`WriteOptions::from_env_with`]).
    pub fn from_env() -> WriteOptions {
        let mut opts = WriteOptions::from_env_with(&process_env, layout::runs_root());
        // Read as `OsString` so a non-UTF-8 override is honoured rather than silently dropped.
        opts.sidecar_dir_override =
            std::env::var_os("KTSTR_SIDECAR_DIR").filter(|v| !v.is_empty()).map(PathBuf::from);
        opts
    }

    /// Options from the given environment: a non-empty `KTSTR_SIDECAR_DIR` overrides the run
    /// directory; the token is [`run_token_from`]; the lock timeout is 30 s.
    pub fn from_env_with(env: EnvLookup<'_>, runs_root: PathBuf) -> WriteOptions {
        WriteOptions {
            sidecar_dir_override: env("KTSTR_SIDECAR_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            runs_root,
            run_token: run_token_from(env),
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

/// The suite-run token: `KTSTR_RUN_TOKEN` (set by `cargo ktstr test`), else `NEXTEST_RUN_ID`,
/// else one token for this process alone.
pub fn run_token_from(env: EnvLookup<'_>) -> String {
    let non_empty = |name: &str| env(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    non_empty("KTSTR_RUN_TOKEN")
        .or_else(|| non_empty("NEXTEST_RUN_ID"))
        .unwrap_or_else(|| process_token().to_string())
}

/// `pid-{pid}-{start}`: the pid alone is reused, the pair of pid and process start time
/// (clock ticks since boot, from /proc/self/stat) is not. Falls back to the wall clock at
/// first use when /proc is unavailable.
fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let start = fs::read_to_string("/proc/self/stat").ok().and_then(|stat| {
            // Fields after the parenthesised command name; starttime is field 22 overall.
            let rest = &stat[stat.rfind(')')? + 1..];
            rest.split_whitespace().nth(19).map(str::to_string)
        });
        let start = start.unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            format!("t{}", now.map_or(0, |d| d.as_nanos()))
        });
        format!("pid-{}-{start}", std::process::id())
    })
}

/// The environment facts a sidecar records about its run, gathered once and applied by
/// [`RunContext::apply`]. Separate from [`fill_run_context`] so tests can build one by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub project: Option<ProjectCommit>,
    pub kernel_version: Option<String>,
    pub kernel_commit: Option<String>,
    pub run_source: String,
    pub run_token: String,
}

impl RunContext {
    /// Detect everything from the process environment and current directory.
    pub fn detect() -> RunContext {
        RunContext {
            project: git::detect_project_commit(),
            kernel_version: layout::detect_kernel_version(),
            kernel_commit: detect_kernel_commit_from(&process_env),
            run_source: layout::detect_run_source().to_string(),
            run_token: run_token_from(&process_env),
        }
    }

    /// Stamp this context, the current time, a fresh `run_id` and a host snapshot onto `sc`.
    pub fn apply(&self, sc: &mut SidecarResult) {
        sc.project_commit = self.project.as_ref().map(ProjectCommit::sidecar_commit_string);
        sc.provenance.project_commit_id = self.project.as_ref().map(|p| p.id.clone());
        sc.provenance.dirty_fingerprint =
            self.project.as_ref().and_then(|p| p.dirty_fingerprint.clone());
        sc.kernel_version = self.kernel_version.clone();
        sc.kernel_commit = self.kernel_commit.clone();
        sc.run_source = Some(self.run_source.clone());
        sc.timestamp = timefmt::now_iso8601();
        sc.run_id = next_run_id();
        sc.host = Some(host::capture_host_context());
        sc.provenance.run_token = Some(self.run_token.clone());
    }
}

/// Fill every run-level field of `sc` from the environment: commits, kernel, run source,
/// timestamp, run id, host and run token. The harness calls this just before
/// [`write_sidecar`].
pub fn fill_run_context(sc: &mut SidecarResult) {
    RunContext::detect().apply(sc);
}

/// The kernel commit when `KTSTR_KERNEL` names a directory that is a git tree's root.
fn detect_kernel_commit_from(env: EnvLookup<'_>) -> Option<String> {
    match layout::kernel_env(env)? {
        KernelSpec::Path(dir) => git::detect_kernel_commit(&dir),
        // Locating a cached kernel's source tree needs ktstr's cache metadata layout, which
        // the spec does not pin down; those runs record no kernel commit.
        _ => None,
    }
}

/// `{YYYYMMDDTHHMMSSZ}-{n}`: the stamp is fixed at the first call in this process and `n`
/// counts calls from 0.
///
/// As in ktstr the stamp is per *process*, so under nextest it differs between the tests of
/// one suite run (§7.2 #3); `provenance.run_token` is what groups a run's sidecars.
pub fn next_run_id() -> String {
    static STAMP: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stamp = STAMP.get_or_init(timefmt::now_compact);
    format!("{stamp}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

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

/// Write `sc` as a sidecar and return its path.
///
/// Canonicalizes the flags and replaces non-finite floats first (both change `sc`), records
/// the run token if `sc` has none, then writes as described in the module docs.
pub fn write_sidecar(sc: &mut SidecarResult, opts: &WriteOptions) -> Result<PathBuf, WriteError> {
    canonicalize_flags(&mut sc.active_flags);
    sc.sanitize_non_finite();
    if sc.provenance.run_token.is_none() {
        sc.provenance.run_token = Some(opts.run_token.clone());
    }
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
        let mut sc = result("alpha");
        let path = write_sidecar(&mut sc, &opts(root.path(), "run1")).unwrap();
        assert_eq!(path.parent().unwrap(), root.path().join("6.14.2-abc1234"));
        assert_eq!(path.file_name().unwrap().to_str().unwrap(), sidecar_file_name(&sc));
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text, sc.to_json_pretty());
        assert!(!text.ends_with('\n'));
        assert_eq!(sc.provenance.run_token.as_deref(), Some("run1"));
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
        let a = write_sidecar(&mut result("alpha"), &opts(root.path(), "run1")).unwrap();
        let b = write_sidecar(&mut result("beta"), &opts(root.path(), "run1")).unwrap();
        assert!(a.exists() && b.exists());
    }

    #[test]
    fn a_new_run_replaces_the_previous_run_of_the_same_kernel_and_commit() {
        let root = tempfile::tempdir().unwrap();
        let a = write_sidecar(&mut result("alpha"), &opts(root.path(), "run1")).unwrap();
        let b = write_sidecar(&mut result("beta"), &opts(root.path(), "run2")).unwrap();
        assert!(!a.exists(), "the previous run's sidecar is cleared");
        assert!(b.exists());

        // A different commit is a different directory and is left alone.
        let mut other = result("gamma");
        other.project_commit = Some("def5678".into());
        let c = write_sidecar(&mut other, &opts(root.path(), "run3")).unwrap();
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

        write_sidecar(&mut result("alpha"), &opts(root.path(), "run1")).unwrap();
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
        write_sidecar(&mut result("alpha"), &job("run1", "repeat-0")).unwrap();
        write_sidecar(&mut result("alpha"), &job("run1", "repeat-1")).unwrap();
        write_sidecar(&mut result("alpha"), &job("run1", "repeat-2")).unwrap();
        assert_eq!(names(&run), ["repeat-0", "repeat-1", "repeat-2"]);
        assert_eq!(names(&run.join("repeat-1")).len(), 1);
        fs::write(run.join("repeat-2/notes.txt"), "keep").unwrap();

        // The next run has one repeat: repeat-1 goes, repeat-2 keeps only the foreign file.
        write_sidecar(&mut result("beta"), &job("run2", "repeat-0")).unwrap();
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
            let path = write_sidecar(&mut sc, &o).unwrap();
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
        let err = write_sidecar(&mut result("alpha"), &o).unwrap_err();
        assert!(matches!(err, WriteError::LockTimeout { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&root.path().join(leaf).display().to_string()), "{msg}");
        assert!(msg.contains("peer `cargo ktstr test`"), "{msg}");

        drop(held);
        write_sidecar(&mut result("alpha"), &o).unwrap();
    }

    #[test]
    fn unwritable_location_gives_a_clear_error() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("plain-file");
        fs::write(&file, "x").unwrap();
        // Running as root defeats permission bits; a path under a regular file cannot exist.
        let err = write_sidecar(&mut result("alpha"), &opts(&file, "run1")).unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
        assert!(err.to_string().starts_with("cannot create sidecar directory "), "{err}");
        assert!(err.to_string().contains("plain-file"), "{err}");

        let mut o = opts(root.path(), "run1");
        o.sidecar_dir_override = Some(file.join("sub"));
        let err = write_sidecar(&mut result("alpha"), &o).unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err:?}");
    }

    #[test]
    fn write_canonicalizes_flags_and_sanitizes_non_finite_values() {
        let root = tempfile::tempdir().unwrap();
        let mut sc = result("alpha");
        sc.active_flags = vec!["steal".into(), "zz".into(), "llc".into()];
        sc.stats.worst_spread = f64::NAN;
        let path = write_sidecar(&mut sc, &opts(root.path(), "run1")).unwrap();
        let back = read_sidecar(&path).unwrap();
        assert_eq!(back.active_flags, ["llc", "steal", "zz"]);
        assert_eq!(back.stats.worst_spread, 0.0);
        assert_eq!(back.provenance.non_finite_fields, ["stats.worst_spread"]);
        assert_eq!(run_dir_sidecar_paths(path.parent().unwrap()), [path]);
    }

    #[test]
    fn run_token_prefers_ktstr_then_nextest_then_the_process() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let both = env(&[("KTSTR_RUN_TOKEN", "k"), ("NEXTEST_RUN_ID", "n")]);
        assert_eq!(run_token_from(&both), "k");
        let nextest = env(&[("KTSTR_RUN_TOKEN", ""), ("NEXTEST_RUN_ID", "n")]);
        assert_eq!(run_token_from(&nextest), "n");
        let none = env(&[]);
        let own = run_token_from(&none);
        assert!(own.starts_with(&format!("pid-{}-", std::process::id())), "{own}");
        assert_eq!(run_token_from(&none), own, "stable within the process");

        let o = WriteOptions::from_env_with(&env(&[("KTSTR_SIDECAR_DIR", "")]), "/r".into());
        assert_eq!(o.sidecar_dir_override, None);
        assert_eq!(o.lock_timeout, RUN_DIR_LOCK_TIMEOUT);
        let o = WriteOptions::from_env_with(&env(&[("KTSTR_SIDECAR_DIR", "/s")]), "/r".into());
        assert_eq!(o.sidecar_dir_override, Some(PathBuf::from("/s")));
    }

    #[test]
    fn run_ids_share_the_process_stamp_and_count_up() {
        let a = next_run_id();
        let b = next_run_id();
        let (stamp_a, n_a) = a.rsplit_once('-').unwrap();
        let (stamp_b, n_b) = b.rsplit_once('-').unwrap();
        assert_eq!(stamp_a, stamp_b);
        assert_eq!(stamp_a.len(), 16);
        assert!(n_b.parse::<u64>().unwrap() > n_a.parse::<u64>().unwrap());
    }

    #[test]
    fn applying_a_context_fills_every_run_level_field() {
        let ctx = RunContext {
            project: Some(ProjectCommit {
                id: "0123456789abcdef0123456789abcdef01234567".into(),
                short: "0123456".into(),
                dirty: true,
                dirty_fingerprint: Some("feedfacecafebeef".into()),
            }),
            kernel_version: Some("6.14.2".into()),
            kernel_commit: Some("fedcba9".into()),
            run_source: "ci".into(),
            run_token: "tok".into(),
        };
        let mut sc = SidecarResult::empty("alpha");
        ctx.apply(&mut sc);
        assert_eq!(sc.project_commit.as_deref(), Some("0123456-dirty"));
        assert_eq!(sc.provenance.project_commit_id.as_deref(), Some(&*ctx.project.unwrap().id));
        assert_eq!(sc.provenance.dirty_fingerprint.as_deref(), Some("feedfacecafebeef"));
        assert_eq!(sc.kernel_version.as_deref(), Some("6.14.2"));
        assert_eq!(sc.kernel_commit.as_deref(), Some("fedcba9"));
        assert_eq!(sc.run_source.as_deref(), Some("ci"));
        assert_eq!(sc.timestamp.len(), 20);
        assert!(sc.timestamp.ends_with('Z'));
        assert!(sc.run_id.contains('-'));
        assert!(sc.host.is_some());
        assert_eq!(sc.provenance.run_token.as_deref(), Some("tok"));

        let none = RunContext { project: None, ..RunContext::detect() };
        let mut sc = SidecarResult::empty("beta");
        none.apply(&mut sc);
        assert_eq!(sc.project_commit, None);
        assert_eq!(sc.provenance.project_commit_id, None);
    }
}
