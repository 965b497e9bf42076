//! The first-parent history of the current branch, as the short commit ids sidecars record:
//! the order `stats history` lays commits out in. Read with gix; no repository (or an unborn
//! HEAD) is `None`, and the caller falls back to ordering by time.

use std::path::Path;

use super::git::SHORT_LEN;

/// Short ids of HEAD's first-parent chain, oldest first, at most `limit` commits (the newest
/// ones). `None` when `start` is in no repository or HEAD cannot be read.
pub fn first_parent_history(start: &Path, limit: usize) -> Option<Vec<String>> {
    let repo = gix::discover(start).ok()?;
    let head = repo.head_id().ok()?.detach();
    let walk = repo.rev_walk([head]).first_parent_only().all().ok()?;
    let mut ids: Vec<String> = Vec::new();
    for info in walk.take(limit) {
        ids.push(info.ok()?.id.to_hex_with_len(SHORT_LEN).to_string());
    }
    ids.reverse();
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    #[test]
    fn a_merged_side_branch_is_not_on_the_first_parent_chain() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        git(d, &["init", "-q", "-b", "main"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "one"]);
        let one = git(d, &["rev-parse", "--short=7", "HEAD"]);
        git(d, &["checkout", "-q", "-b", "side"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "side"]);
        let side = git(d, &["rev-parse", "--short=7", "HEAD"]);
        git(d, &["checkout", "-q", "main"]);
        git(d, &["commit", "-q", "--allow-empty", "-m", "two"]);
        git(d, &["merge", "-q", "--no-ff", "-m", "merge", "side"]);
        let merge = git(d, &["rev-parse", "--short=7", "HEAD"]);
        let h = first_parent_history(d, 100).unwrap();
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!((h[0].as_str(), h[2].as_str()), (one.as_str(), merge.as_str()));
        assert!(!h.contains(&side));
        assert_eq!(first_parent_history(d, 1).unwrap(), [merge]);
        let outside = tempfile::tempdir().unwrap();
        assert!(first_parent_history(outside.path(), 10).is_none());
    }
}
