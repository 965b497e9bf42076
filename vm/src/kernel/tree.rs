//! Recognises a kernel build tree (`arch/x86/boot/bzImage`, `.config`,
//! `include/config/kernel.release`) and reads the commit it was built from off its git HEAD.
//!
//! Git is read directly from `.git` (HEAD, loose refs, packed-refs, and `.git` files of
//! worktrees) rather than by running git, so a tree without git installed still resolves.

use std::fs;
use std::path::{Path, PathBuf};

pub const BZIMAGE: &str = "arch/x86/boot/bzImage";
pub const CONFIG: &str = ".config";
pub const RELEASE: &str = "include/config/kernel.release";
pub const VMLINUX: &str = "vmlinux";

/// Whether `dir` looks like a built x86 kernel tree.
pub fn is_build_tree(dir: &Path) -> bool {
    dir.join(BZIMAGE).is_file()
}

/// The release recorded by the build, if the tree has one.
pub fn release(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(RELEASE)).ok()?;
    let release = text.trim();
    (!release.is_empty()).then(|| release.to_string())
}

/// The full hash of the tree's git HEAD, or `None` outside git or on an unreadable ref.
pub fn git_head(dir: &Path) -> Option<String> {
    let git_dir = git_dir(dir)?;
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(reference) = head.strip_prefix("ref: ") else {
        return is_hash(head).then(|| head.to_string());
    };
    // A worktree keeps its refs in the common directory.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.clone());
    for base in [&git_dir, &common] {
        if let Ok(hash) = fs::read_to_string(base.join(reference)) {
            let hash = hash.trim();
            return is_hash(hash).then(|| hash.to_string());
        }
    }
    let packed = fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (hash, name) = line.split_once(' ')?;
        (name == reference && is_hash(hash)).then(|| hash.to_string())
    })
}

fn git_dir(dir: &Path) -> Option<PathBuf> {
    let dot_git = dir.join(".git");
    if dot_git.is_dir() {
        return Some(dot_git);
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let target = PathBuf::from(text.trim().strip_prefix("gitdir: ")?);
    Some(if target.is_absolute() { target } else { dir.join(target) })
}

fn is_hash(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

    fn write(path: PathBuf, text: &str) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    #[test]
    fn detects_a_tree_and_its_release() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_build_tree(dir.path()));
        write(dir.path().join(BZIMAGE), "image");
        write(dir.path().join(RELEASE), "7.3.0-rc1-test\n");
        assert!(is_build_tree(dir.path()));
        assert_eq!(release(dir.path()).as_deref(), Some("7.3.0-rc1-test"));
    }

    #[test]
    fn reads_head_through_loose_packed_and_detached_refs() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_head(dir.path()), None);
        write(dir.path().join(".git/HEAD"), "ref: refs/heads/main\n");
        write(dir.path().join(".git/refs/heads/main"), &format!("{HASH}\n"));
        assert_eq!(git_head(dir.path()).as_deref(), Some(HASH));
        fs::remove_file(dir.path().join(".git/refs/heads/main")).unwrap();
        let other = HASH.replace('0', "f");
        write(
            dir.path().join(".git/packed-refs"),
            &format!("# pack-refs\n{other} refs/heads/main\n"),
        );
        assert_eq!(git_head(dir.path()), Some(other));
        write(dir.path().join(".git/HEAD"), &format!("{HASH}\n"));
        assert_eq!(git_head(dir.path()).as_deref(), Some(HASH));
    }

    #[test]
    fn follows_a_worktree_git_file_to_the_common_refs() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main/.git");
        write(main.join("refs/heads/topic"), &format!("{HASH}\n"));
        write(main.join("worktrees/wt/HEAD"), "ref: refs/heads/topic\n");
        write(main.join("worktrees/wt/commondir"), "../..\n");
        let tree = dir.path().join("wt");
        write(tree.join(".git"), &format!("gitdir: {}\n", main.join("worktrees/wt").display()));
        assert_eq!(git_head(&tree).as_deref(), Some(HASH));
    }
}
