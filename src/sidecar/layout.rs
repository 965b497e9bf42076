//! Where sidecars live (stats-reference §1.3).
//!
//! The runs root is `{CARGO_TARGET_DIR or target}/ktstr`; each suite run writes into
//! `{runs_root}/{kernel}-{project_commit}/`, with `unknown` standing in for either half. Lock
//! and token files live under `{runs_root}/.locks/`, which readers skip because it starts with
//! a dot. The warehouse database sits directly in the root, where the pool walk never looks.
//!
//! The kernel and commit that name a run directory are read from the document being written;
//! detecting them (`KTSTR_KERNEL`, git) is the producers' job, not this module's. [`EnvLookup`]
//! lets environment rules, here and in producers, be tested with a map instead of the real
//! environment.

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// File name of the warehouse's default database, `{runs_root}/warehouse.sqlite`. Files
/// directly in the runs root are never pooled, so it cannot be mistaken for a run.
pub const DEFAULT_DB_FILE_NAME: &str = "warehouse.sqlite";

/// Directory (under the runs root) holding per-run-directory lock and token files.
pub const LOCKS_DIR_NAME: &str = ".locks";

/// Stand-in for an undetectable kernel version or project commit, in directory names only:
/// the JSON fields stay `null`.
pub const UNKNOWN: &str = "unknown";

/// An environment lookup: `Some` only for a set variable. Lets the rules below be tested with
/// a map instead of the real environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The real process environment, as an [`EnvLookup`].
pub fn process_env(name: &str) -> Option<String> {
    env::var(name).ok()
}

/// `{CARGO_TARGET_DIR}/ktstr`, or `target/ktstr` when that variable is unset or empty; a
/// relative path is resolved against the current directory.
pub fn runs_root() -> PathBuf {
    // `var_os`: a non-UTF-8 target directory is still a directory, not "unset".
    let target = env::var_os("CARGO_TARGET_DIR");
    runs_root_from(target.as_deref(), &env::current_dir().unwrap_or_default())
}

/// [`runs_root`] with `CARGO_TARGET_DIR` and the current directory given.
pub fn runs_root_from(cargo_target_dir: Option<&OsStr>, cwd: &Path) -> PathBuf {
    let target = cargo_target_dir.filter(|v| !v.is_empty()).unwrap_or(OsStr::new("target"));
    cwd.join(target).join("ktstr")
}

/// The run directory's leaf name, `{kernel}-{project_commit}` with `unknown` for a missing
/// half, e.g. `6.14.2-abc1234-dirty`, `unknown-abc1234`, `unknown-unknown`.
///
/// Separators in either half become `_`, so a strange kernel version string can never make
/// the writer create or clear a directory outside the runs root.
pub fn run_dir_name(kernel: Option<&str>, project_commit: Option<&str>) -> String {
    let part = |v: Option<&str>| match v.map(str::trim) {
        Some(s) if !s.is_empty() && s != "." && s != ".." => s.replace(['/', '\\', '\0'], "_"),
        _ => UNKNOWN.to_string(),
    };
    format!("{}-{}", part(kernel), part(project_commit))
}

/// `{runs_root}/.locks/{leaf}.lock`: the advisory lock serializing writers of one run dir.
pub fn lock_path(runs_root: &Path, leaf: &str) -> PathBuf {
    runs_root.join(LOCKS_DIR_NAME).join(format!("{leaf}.lock"))
}

/// `{runs_root}/.locks/{leaf}.token`: the run token that last pre-cleared the run dir.
pub fn token_path(runs_root: &Path, leaf: &str) -> PathBuf {
    runs_root.join(LOCKS_DIR_NAME).join(format!("{leaf}.token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names_for_every_known_and_unknown_combination() {
        assert_eq!(run_dir_name(Some("6.14.2"), Some("abc1234")), "6.14.2-abc1234");
        assert_eq!(run_dir_name(Some("6.14.2"), Some("abc1234-dirty")), "6.14.2-abc1234-dirty");
        assert_eq!(run_dir_name(Some("6.14"), None), "6.14-unknown");
        assert_eq!(run_dir_name(None, Some("abc1234")), "unknown-abc1234");
        assert_eq!(run_dir_name(None, None), "unknown-unknown");
        assert_eq!(run_dir_name(Some(" "), Some("")), "unknown-unknown");
    }

    #[test]
    fn run_dir_name_cannot_escape_the_runs_root() {
        assert_eq!(run_dir_name(Some("../../etc"), Some("abc1234")), ".._.._etc-abc1234");
        assert_eq!(run_dir_name(Some(".."), Some("abc1234")), "unknown-abc1234");
    }

    #[test]
    fn runs_root_honours_cargo_target_dir_and_resolves_relative_paths() {
        let cwd = Path::new("/home/u/proj");
        let root = |v: Option<&str>| runs_root_from(v.map(OsStr::new), cwd);
        assert_eq!(root(None), Path::new("/home/u/proj/target/ktstr"));
        assert_eq!(root(Some("")), Path::new("/home/u/proj/target/ktstr"));
        assert_eq!(root(Some("out/t")), Path::new("/home/u/proj/out/t/ktstr"));
        assert_eq!(root(Some("/tmp/t")), Path::new("/tmp/t/ktstr"));
    }

    #[test]
    fn lock_and_token_files_live_in_the_dot_locks_dir() {
        let root = Path::new("/r/ktstr");
        assert_eq!(lock_path(root, "6.14-abc1234"), Path::new("/r/ktstr/.locks/6.14-abc1234.lock"));
        assert_eq!(token_path(root, "u-u"), Path::new("/r/ktstr/.locks/u-u.token"));
    }
}
