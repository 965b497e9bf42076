//! The git side of `cargo ktstr ab`: resolving A and B in the current repository, refusing a
//! dirty tree, and the two temporary worktrees the sides run in.
//!
//! Revspecs are resolved with gix, like everything else this project reads from git. Creating
//! and removing linked worktrees is done with the `git` CLI, which gix cannot do; each `git`
//! runs in a process group of its own, so a Ctrl-C meant for the suite cannot kill it halfway
//! through creating or removing a worktree. Running the suite is not here ([`super`]).

use std::ffi::OsStr;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::Context;

use super::ab_error;

/// The repository `ab` runs in, and where in it the command was started.
pub struct Repository {
    /// The main worktree's root.
    pub root: PathBuf,
    /// The current directory relative to `root`: each side runs from the same place in its
    /// own worktree.
    pub subdir: PathBuf,
    repo: gix::Repository,
}

/// One side's commit: what the user wrote and what it named.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: String,
    pub id: String,
    pub short: String,
}

impl Repository {
    pub fn discover(cwd: &Path) -> anyhow::Result<Repository> {
        let repo = gix::discover(cwd).map_err(|_| {
            ab_error(format!(
                "ab: {} is not inside a git repository; run it from the repository whose \
                 commits A and B name",
                cwd.display()
            ))
        })?;
        let root = repo
            .workdir()
            .ok_or_else(|| ab_error("ab: the repository has no working tree (a bare repository)"))?
            .to_path_buf();
        let root = root.canonicalize().unwrap_or(root);
        let cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
        let subdir = cwd.strip_prefix(&root).map(Path::to_path_buf).unwrap_or_default();
        Ok(Repository { root, subdir, repo })
    }

    /// The commit `spec` names (a branch, tag, `HEAD~2`, a hash); a range is refused.
    pub fn resolve(&self, spec: &str) -> anyhow::Result<Resolved> {
        let commit = self
            .repo
            .rev_parse_single(spec)
            .ok()
            .and_then(|id| id.object().ok())
            .and_then(|o| o.peel_to_commit().ok())
            .ok_or_else(|| {
                ab_error(format!(
                    "ab: `{spec}` does not name a commit in {}; check it with `git rev-parse \
                     {spec}`",
                    self.root.display()
                ))
            })?;
        let id = commit.id;
        Ok(Resolved {
            spec: spec.to_string(),
            id: id.to_string(),
            short: id.to_hex_with_len(crate::provenance::git::SHORT_LEN).to_string(),
        })
    }

    /// Refuse uncommitted changes to tracked files: the worktrees hold committed states only,
    /// so such changes would silently go untested.
    pub fn require_clean(&self) -> anyhow::Result<()> {
        let dirty =
            crate::provenance::git::discover_project_commit(&self.root).is_some_and(|c| c.dirty);
        if dirty {
            return Err(ab_error(
                "ab: the working tree has uncommitted changes to tracked files, which ab would \
                 not test (it runs committed states); commit or stash them first",
            ));
        }
        Ok(())
    }
}

/// The two temporary worktrees, removed on drop unless kept.
pub struct Worktrees {
    repo_root: PathBuf,
    /// Parent of both worktrees, created for this session.
    pub base: PathBuf,
    pub a: PathBuf,
    pub b: PathBuf,
    pub keep: bool,
}

impl Worktrees {
    /// `git worktree add --detach` A and B under `base` (which must not exist yet).
    pub fn create(
        repo_root: &Path,
        base: PathBuf,
        a: &Resolved,
        b: &Resolved,
        keep: bool,
    ) -> anyhow::Result<Worktrees> {
        std::fs::create_dir_all(&base)
            .with_context(|| format!("ab: creating {}", base.display()))?;
        let trees = Worktrees {
            repo_root: repo_root.to_path_buf(),
            a: base.join("a"),
            b: base.join("b"),
            base,
            keep,
        };
        // From here on, a failure drops `trees`, which removes whatever was created.
        for (path, side) in [(&trees.a, a), (&trees.b, b)] {
            git(
                repo_root,
                [OsStr::new("worktree"), "add".as_ref(), "--detach".as_ref()],
                &[path.as_os_str(), side.id.as_ref()],
            )
            .with_context(|| {
                format!("ab: creating a worktree of {} at {}", side.spec, path.display())
            })?;
        }
        Ok(trees)
    }

    /// Remove both worktrees and their parent now (what drop does).
    pub fn remove(mut self) -> Vec<String> {
        let problems = self.remove_all();
        self.keep = true; // already done: drop must not try again
        problems
    }

    fn remove_all(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for path in [&self.a, &self.b] {
            if !path.exists() {
                continue;
            }
            let removed = git(
                &self.repo_root,
                [OsStr::new("worktree"), "remove".as_ref(), "--force".as_ref()],
                &[path.as_os_str()],
            );
            if removed.is_err() {
                // A half-created worktree git does not know: delete it and let git forget it.
                let _ = std::fs::remove_dir_all(path);
            }
        }
        let _ = git(&self.repo_root, [OsStr::new("worktree"), "prune".as_ref()], &[]);
        let _ = std::fs::remove_dir(&self.base);
        for path in [&self.a, &self.b] {
            if path.exists() {
                problems.push(format!("ab: could not remove the worktree {}", path.display()));
            }
        }
        problems
    }
}

impl Drop for Worktrees {
    fn drop(&mut self) {
        if !self.keep {
            for p in self.remove_all() {
                eprintln!("{p}");
            }
        }
    }
}

/// Run `git -C repo ARGS… EXTRA…` to completion in its own process group; an error carries
/// git's stderr.
fn git<'a>(
    repo: &Path,
    args: impl IntoIterator<Item = &'a OsStr>,
    extra: &[&OsStr],
) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .args(extra)
        .stdin(Stdio::null())
        .process_group(0)
        .output()
        .context("running git (is it installed?)")?;
    if out.status.success() {
        return Ok(());
    }
    Err(anyhow::anyhow!("git failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
}

/// Set every tracked file of the worktree at `dir` to the current time.
///
/// Both sides build in one target directory, and cargo names a workspace member's artifacts
/// and judges their freshness by paths relative to the workspace root and by modification
/// times: after A's build, B's sources (checked out earlier) would look older than the
/// artifacts, and cargo would run A's binaries for B. Touching the side that is about to run
/// makes cargo rebuild exactly the workspace's own crates; dependencies stay shared.
pub fn touch_tracked_files(dir: &Path) -> anyhow::Result<()> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "-z"])
        .stdin(Stdio::null())
        .output()
        .context("ab: listing the worktree's files with git")?;
    if !out.status.success() {
        anyhow::bail!("ab: git ls-files failed in {}", dir.display());
    }
    let now = SystemTime::now();
    for rel in out.stdout.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        use std::os::unix::ffi::OsStrExt;
        let path = dir.join(OsStr::from_bytes(rel));
        let is_file = path.symlink_metadata().is_ok_and(|m| m.file_type().is_file());
        if is_file {
            File::open(&path)
                .and_then(|f| f.set_modified(now))
                .with_context(|| format!("ab: touching {}", path.display()))?;
        }
    }
    Ok(())
}
