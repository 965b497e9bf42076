//! Facts about git trees that go into a sidecar: the project's HEAD commit and whether (and
//! how) its worktree differs, and the same for a kernel source tree.
//!
//! Everything here is read with gix, never the `git` CLI, and every failure (no repository,
//! unborn HEAD, unreadable index) degrades to "unknown" or "clean" rather than an error: a
//! sidecar without a commit is still a result, and a test must never fail over it.
//!
//! Dirty means *tracked* changes only (HEAD vs index, index vs worktree); untracked files do
//! not count, as in ktstr and `git describe --dirty`. Revspec resolution for `compare` is not
//! here; it belongs to the compare side.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// Length of the abbreviated commit ktstr writes (`to_hex_with_len(7)`), fixed rather than
/// git's `core.abbrev=auto`, so the same commit always has the same sidecar string.
pub const SHORT_LEN: usize = 7;

/// Hex digits kept from the blake3 dirty fingerprint.
const FINGERPRINT_LEN: usize = 16;

/// A tree's HEAD commit and dirty state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectCommit {
    /// Full 40-hex object id of HEAD.
    pub id: String,
    /// The first [`SHORT_LEN`] hex digits of `id`.
    pub short: String,
    /// Tracked files differ from HEAD (in the index or the worktree).
    pub dirty: bool,
    /// Identifies *which* uncommitted state a dirty tree is in; `None` when clean or when the
    /// changed paths could not be listed.
    pub dirty_fingerprint: Option<String>,
}

impl ProjectCommit {
    /// The sidecar's commit string: `abc1234`, or `abc1234-dirty`.
    pub fn sidecar_commit_string(&self) -> String {
        if self.dirty { format!("{}-dirty", self.short) } else { self.short.clone() }
    }
}

/// The project commit of the repository containing `start`, walking up to find it.
/// `None` when `start` is in no repository or HEAD is unborn or unreadable.
pub fn discover_project_commit(start: &Path) -> Option<ProjectCommit> {
    let repo = gix::discover(start).ok()?;
    commit_state(&repo, true)
}

/// [`discover_project_commit`] for the process's current directory, computed once per process:
/// every sidecar a test process writes carries the same commit even if the tree changes
/// mid-run.
pub fn detect_project_commit() -> Option<ProjectCommit> {
    static ONCE: OnceLock<Option<ProjectCommit>> = OnceLock::new();
    ONCE.get_or_init(|| discover_project_commit(&std::env::current_dir().ok()?)).clone()
}

/// The commit of a kernel source tree whose root is `dir`. Unlike the project commit this does
/// not walk up: a kernel tree that is not itself a repository has no commit, even if it sits
/// inside one. No fingerprint is computed (kernel trees are large and nothing needs it).
pub fn open_kernel_commit(dir: &Path) -> Option<ProjectCommit> {
    let repo = gix::open(dir).ok()?;
    commit_state(&repo, false)
}

/// `abc1234[-dirty]` for the kernel tree at `dir`, memoized per canonical path for the life of
/// the process.
pub fn detect_kernel_commit(dir: &Path) -> Option<String> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Option<String>>>> = OnceLock::new();
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let cache = CACHE.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(key.clone())
        .or_insert_with(|| open_kernel_commit(&key).map(|c| c.sidecar_commit_string()))
        .clone()
}

fn commit_state(repo: &gix::Repository, with_fingerprint: bool) -> Option<ProjectCommit> {
    let head = repo.head_id().ok()?.detach();
    let id = head.to_string();
    let short = head.to_hex_with_len(SHORT_LEN).to_string();
    // ktstr treats a failed dirty check as clean; so do we.
    let dirty = repo.is_dirty().unwrap_or(false);
    let dirty_fingerprint =
        (dirty && with_fingerprint).then(|| dirty_fingerprint(repo, &id)).flatten();
    Some(ProjectCommit { id, short, dirty, dirty_fingerprint })
}

/// blake3 over HEAD's id and the sorted list of (path, current worktree state) for every
/// tracked path that differs from HEAD in the index or the worktree.
///
/// The worktree state is the content hash and executable bit of a file, the target of a
/// symlink, `deleted` for a missing path, or `dir` for a directory (a submodule: its own
/// changes are not looked into). Two edits of one file to different contents therefore
/// fingerprint differently, and the same edits always fingerprint alike.
fn dirty_fingerprint(repo: &gix::Repository, head_id: &str) -> Option<String> {
    let iter = repo
        .status(gix::progress::Discard)
        .ok()?
        .untracked_files(gix::status::UntrackedFiles::None)
        .index_worktree_rewrites(None)
        .index_worktree_options_mut(|opts| opts.dirwalk_options = None)
        .into_iter(Vec::new())
        .ok()?;
    let mut changed: BTreeMap<Vec<u8>, String> = BTreeMap::new();
    for item in iter {
        let item = item.ok()?;
        if let gix::status::Item::IndexWorktree(
            gix::status::index_worktree::Item::DirectoryContents { .. },
        ) = item
        {
            // Untracked entries; none are produced without a dirwalk, but never count them.
            continue;
        }
        let rela = item.location().to_vec();
        let path = repo.workdir_path(rela.as_slice())?;
        changed.insert(rela, worktree_state(&path));
    }
    let mut h = blake3::Hasher::new();
    h.update(head_id.as_bytes());
    for (path, state) in &changed {
        h.update(&[0]);
        h.update(path);
        h.update(&[0]);
        h.update(state.as_bytes());
    }
    Some(h.finalize().to_hex()[..FINGERPRINT_LEN].to_string())
}

fn worktree_state(path: &Path) -> String {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return "deleted".to_string();
    };
    if meta.file_type().is_symlink() {
        return match fs::read_link(path) {
            Ok(target) => format!("link:{}", target.display()),
            Err(e) => format!("unreadable:{}", e.kind()),
        };
    }
    if meta.is_dir() {
        return "dir".to_string();
    }
    use std::os::unix::fs::PermissionsExt;
    let exec = meta.permissions().mode() & 0o111 != 0;
    match fs::read(path) {
        Ok(bytes) => format!("file:{}:{}", u8::from(exec), blake3::hash(&bytes).to_hex()),
        Err(e) => format!("unreadable:{}", e.kind()),
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Run the `git` CLI in `dir` with a fixed identity and no user or system config.
    fn git(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn repo_with_commit() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q"]);
        fs::write(dir.path().join("a.txt"), "one\n").unwrap();
        fs::write(dir.path().join("b.txt"), "two\n").unwrap();
        git(dir.path(), &["add", "."]);
        git(dir.path(), &["commit", "-q", "-m", "first"]);
        dir
    }

    fn head_of(dir: &Path) -> String {
        let out =
            Command::new("git").args(["rev-parse", "HEAD"]).current_dir(dir).output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn clean_repository_gives_full_and_seven_hex_ids() {
        let dir = repo_with_commit();
        let c = discover_project_commit(dir.path()).expect("a commit");
        assert_eq!(c.id, head_of(dir.path()));
        assert_eq!(c.id.len(), 40);
        assert_eq!(c.short, &c.id[..7]);
        assert!(!c.dirty);
        assert_eq!(c.dirty_fingerprint, None);
        assert_eq!(c.sidecar_commit_string(), c.short);
    }

    #[test]
    fn tracked_edit_is_dirty_but_untracked_file_is_not() {
        let dir = repo_with_commit();
        fs::write(dir.path().join("new.txt"), "untracked").unwrap();
        assert!(!discover_project_commit(dir.path()).unwrap().dirty);

        fs::write(dir.path().join("a.txt"), "changed\n").unwrap();
        let c = discover_project_commit(dir.path()).unwrap();
        assert!(c.dirty);
        assert!(c.dirty_fingerprint.is_some());
        assert_eq!(c.sidecar_commit_string(), format!("{}-dirty", c.short));
    }

    #[test]
    fn staged_only_change_is_dirty() {
        let dir = repo_with_commit();
        fs::write(dir.path().join("c.txt"), "staged\n").unwrap();
        git(dir.path(), &["add", "c.txt"]);
        let c = discover_project_commit(dir.path()).unwrap();
        assert!(c.dirty);
        assert!(c.dirty_fingerprint.is_some());
    }

    #[test]
    fn fingerprint_tells_dirty_states_apart_and_repeats_for_the_same_state() {
        let dir = repo_with_commit();
        let fp = || discover_project_commit(dir.path()).unwrap().dirty_fingerprint.unwrap();

        fs::write(dir.path().join("a.txt"), "edit one\n").unwrap();
        let first = fp();
        assert_eq!(fp(), first, "same state, same fingerprint");

        fs::write(dir.path().join("a.txt"), "edit two\n").unwrap();
        let second = fp();
        assert_ne!(second, first, "different content, different fingerprint");

        fs::write(dir.path().join("a.txt"), "edit one\n").unwrap();
        assert_eq!(fp(), first, "back to the first state");

        fs::remove_file(dir.path().join("b.txt")).unwrap();
        assert_ne!(fp(), first, "a deletion is a different state");
    }

    #[test]
    fn discovery_walks_up_from_a_nested_subdirectory() {
        let dir = repo_with_commit();
        let nested = dir.path().join("x/y/z");
        fs::create_dir_all(&nested).unwrap();
        let c = discover_project_commit(&nested).unwrap();
        assert_eq!(c.id, head_of(dir.path()));
    }

    #[test]
    fn non_repository_and_unborn_head_give_none() {
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(discover_project_commit(plain.path()), None);
        assert_eq!(open_kernel_commit(plain.path()), None);

        let unborn = tempfile::tempdir().unwrap();
        git(unborn.path(), &["init", "-q"]);
        fs::write(unborn.path().join("a.txt"), "x").unwrap();
        git(unborn.path(), &["add", "a.txt"]);
        assert_eq!(discover_project_commit(unborn.path()), None);
        assert_eq!(open_kernel_commit(unborn.path()), None);
    }

    #[test]
    fn kernel_commit_opens_only_the_given_root() {
        let dir = repo_with_commit();
        let c = open_kernel_commit(dir.path()).unwrap();
        assert_eq!(c.id, head_of(dir.path()));
        assert_eq!(c.dirty_fingerprint, None);
        let nested = dir.path().join("sub");
        fs::create_dir_all(&nested).unwrap();
        assert_eq!(open_kernel_commit(&nested), None, "gix::open must not walk up");

        fs::write(dir.path().join("a.txt"), "dirty\n").unwrap();
        assert_eq!(detect_kernel_commit(dir.path()), Some(format!("{}-dirty", &c.id[..7])));
    }
}
