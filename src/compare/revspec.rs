//! Commit revspecs in `--*project-commit` / `--*kernel-commit` (§4.3): `HEAD`, `HEAD~N`,
//! tags, branches and `A..B` ranges become the 7-hex ids sidecars record.
//!
//! The project repository is found by walking up from the working directory; the kernel
//! repository is `KTSTR_KERNEL` when that is a directory. Without a repository every input is
//! used literally.
//!
//! A literal hex id is matched case-insensitively and by prefix against the commits the pool
//! holds ([`match_stored`]): `ABC1234`, or the full 40-hex id of a commit whose sidecars
//! recorded `abc1234`, find those sidecars even with no repository at hand. A prefix that fits
//! two different stored commits is refused as ambiguous.
//!
//! Divergence from ktstr (the WIP pattern): an input that is literally a hex prefix (7–40
//! hex, no `-dirty`) resolves to its clean commit and never gets `-dirty` appended, so
//! `--a-project-commit abc1234 --b-project-commit abc1234-dirty` inside that dirty tree
//! compares the commit against the work in progress. Only symbolic specs (`HEAD`, a branch,
//! `HEAD~0`) that resolve to the dirty HEAD get `-dirty`.

use std::collections::BTreeSet;
use std::path::Path;

use gix::ObjectId;
use gix::revision::plumbing::Spec;

/// A repository to resolve against, with its HEAD and dirty state read once.
pub struct CommitResolver {
    repo: Option<gix::Repository>,
    head: Option<ObjectId>,
    dirty: bool,
}

impl CommitResolver {
    /// No repository: everything passes through literally.
    pub fn none() -> Self {
        CommitResolver { repo: None, head: None, dirty: false }
    }

    /// The project repository containing `cwd`, if any.
    pub fn discover(cwd: &Path) -> Self {
        Self::from_repo(gix::discover(cwd).ok())
    }

    /// The repository at exactly `dir` (the kernel source tree), if it is one.
    pub fn open(dir: &Path) -> Self {
        Self::from_repo(gix::open(dir).ok())
    }

    fn from_repo(repo: Option<gix::Repository>) -> Self {
        let Some(repo) = repo else { return Self::none() };
        let head = repo.head_id().ok().map(|id| id.detach());
        // An unreadable status is treated as clean: a wrong `-dirty` would match nothing.
        let dirty = head.is_some() && repo.is_dirty().unwrap_or(false);
        CommitResolver { repo: Some(repo), head, dirty }
    }

    /// Resolve every input of one flag; `flag` is its name without dashes (for warnings).
    pub fn resolve_all(
        &self,
        flag: &str,
        inputs: &[String],
        warnings: &mut Vec<String>,
    ) -> Vec<String> {
        inputs.iter().flat_map(|i| self.resolve(flag, i, warnings)).collect()
    }

    fn resolve(&self, flag: &str, input: &str, warnings: &mut Vec<String>) -> Vec<String> {
        // Sidecars record lowercase hex; a literal hash is matched against them as such.
        let literal = || {
            if looks_like_literal_hash(input) {
                vec![input.to_ascii_lowercase()]
            } else {
                vec![input.to_string()]
            }
        };
        let Some(repo) = &self.repo else { return literal() };
        if looks_like_literal_hash(input) {
            if input.to_ascii_lowercase().ends_with("-dirty") {
                return literal();
            }
            // A hex prefix names a commit, not "whatever HEAD is now": never `-dirty`.
            return match repo.rev_parse_single(input) {
                Ok(id) => vec![short(id.detach())],
                Err(_) => literal(),
            };
        }
        let spec = match repo.rev_parse(input) {
            Ok(spec) => spec.detach(),
            Err(_) => {
                warnings.push(format!(
                    "cargo ktstr: --{flag} '{input}' did not resolve as a revspec; using as \
                     literal filter"
                ));
                return literal();
            }
        };
        match spec {
            Spec::Include(id) | Spec::ExcludeParents(id) => {
                let suffix = if Some(id) == self.head && self.dirty { "-dirty" } else { "" };
                vec![format!("{}{suffix}", short(id))]
            }
            Spec::Range { from, to } => {
                let walk = repo.rev_walk([to]).with_hidden([from]).all();
                let ids: Result<Vec<String>, gix::Error> = walk
                    .map_err(gix::Error::from_error)
                    .and_then(|w| w.map(|info| info.map(|i| short(i.id))).collect());
                match ids {
                    Ok(ids) => {
                        if ids.is_empty() {
                            warnings.push(format!(
                                "cargo ktstr: --{flag} '{input}' is an empty range; it adds no \
                                 commits to the filter"
                            ));
                        }
                        ids
                    }
                    Err(e) => {
                        warnings.push(format!(
                            "cargo ktstr: --{flag} '{input}': walking the range failed ({e}); \
                             using as literal filter"
                        ));
                        literal()
                    }
                }
            }
            _ => {
                warnings.push(format!(
                    "cargo ktstr: --{flag} '{input}' is not a single commit or an A..B range; \
                     using as literal filter"
                ));
                literal()
            }
        }
    }
}

/// A commit as the pool stores it: the short form sidecars record (`abc1234`,
/// `abc1234-dirty`) and, when the writer recorded it, the full 40-hex id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCommit {
    pub short: String,
    pub full: Option<String>,
}

/// What a filter value finds among the stored commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredMatch {
    /// Filter on these stored short forms (the value itself when it is one).
    Found(Vec<String>),
    /// The value is a hex prefix of more than one stored commit; the ids it fits.
    Ambiguous(Vec<String>),
    /// Nothing stored fits the value.
    Nothing,
}

/// Match one filter value against the pool's commits. A value equal to a stored short form
/// is that commit, as before. Otherwise a literal hex value (7–40 hex, any case, optional
/// `-dirty`) fits a stored commit with the same `-dirty` state when it is a prefix of the
/// stored full id, or, where no full id was recorded, when it and the short form agree on
/// their common length. Anything else (a branch name that stayed literal) matches only
/// itself.
pub fn match_stored(value: &str, stored: &[StoredCommit]) -> StoredMatch {
    if stored.iter().any(|c| c.short == value) {
        return StoredMatch::Found(vec![value.to_string()]);
    }
    if !looks_like_literal_hash(value) {
        return StoredMatch::Nothing;
    }
    let lower = value.to_ascii_lowercase();
    let (hex, dirty) = split_dirty(&lower);
    let fits = |c: &&StoredCommit| {
        let (short, short_dirty) = split_dirty(&c.short);
        if short_dirty != dirty || !looks_like_literal_hash(short) {
            return false;
        }
        match &c.full {
            Some(full) => full.to_ascii_lowercase().starts_with(hex),
            None => hex.starts_with(&short.to_ascii_lowercase()) || short.starts_with(hex),
        }
    };
    let shorts: BTreeSet<&str> = stored.iter().filter(fits).map(|c| c.short.as_str()).collect();
    // Filters select by short form, so every commit recorded under a found short form is
    // selected: when those are several, the value cannot name just one.
    let fulls: BTreeSet<&str> = stored
        .iter()
        .filter(|c| shorts.contains(c.short.as_str()))
        .filter_map(|c| c.full.as_deref())
        .collect();
    let hexes: BTreeSet<&str> = shorts.iter().map(|s| split_dirty(s).0).collect();
    if shorts.is_empty() {
        StoredMatch::Nothing
    } else if fulls.len() > 1 {
        StoredMatch::Ambiguous(fulls.into_iter().map(str::to_string).collect())
    } else if hexes.len() > 1 {
        StoredMatch::Ambiguous(hexes.into_iter().map(str::to_string).collect())
    } else {
        StoredMatch::Found(shorts.into_iter().map(str::to_string).collect())
    }
}

/// `("abc1234", true)` for `abc1234-dirty`.
fn split_dirty(value: &str) -> (&str, bool) {
    match value.strip_suffix("-dirty") {
        Some(hex) => (hex, true),
        None => (value, false),
    }
}

fn short(id: ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

/// `^[0-9a-fA-F]{7,40}(-dirty)?$`
pub fn looks_like_literal_hash(s: &str) -> bool {
    let hex = s.strip_suffix("-dirty").unwrap_or(s);
    (7..=40).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// A repo with three commits; returns (dir, short ids oldest first).
    fn repo() -> (tempfile::TempDir, Vec<String>) {
        let tmp = tempfile::TempDir::new().unwrap();
        let d = tmp.path();
        git(d, &["init", "-q", "-b", "main"]);
        let mut ids = Vec::new();
        for i in 0..3 {
            std::fs::write(d.join("f"), format!("{i}\n")).unwrap();
            git(d, &["add", "f"]);
            git(d, &["commit", "-q", "-m", &format!("c{i}")]);
            ids.push(git(d, &["rev-parse", "--short=7", "HEAD"]));
        }
        (tmp, ids)
    }

    fn resolve(r: &CommitResolver, input: &str) -> (Vec<String>, Vec<String>) {
        let mut w = Vec::new();
        (r.resolve_all("project-commit", &[input.to_string()], &mut w), w)
    }

    #[test]
    fn resolve_commit_specs_head_in_dirty_repo_appends_dirty_suffix() {
        let (tmp, ids) = repo();
        std::fs::write(tmp.path().join("f"), "changed\n").unwrap();
        let r = CommitResolver::discover(tmp.path());
        assert_eq!(resolve(&r, "HEAD").0, [format!("{}-dirty", ids[2])]);
        assert_eq!(resolve(&r, "main").0, [format!("{}-dirty", ids[2])]);
        // Non-HEAD commits never get the suffix.
        assert_eq!(resolve(&r, "HEAD~1").0, [ids[1].clone()]);
        // Our divergence: a literal hex prefix of the dirty HEAD stays clean (WIP pattern).
        assert_eq!(resolve(&r, &ids[2]).0, [ids[2].clone()]);
        let dirty = format!("{}-dirty", ids[2]);
        assert_eq!(resolve(&r, &dirty), (vec![dirty.clone()], vec![]));
    }

    #[test]
    fn clean_repo_resolves_head_without_suffix_and_ranges_exclude_from() {
        let (tmp, ids) = repo();
        let r = CommitResolver::discover(tmp.path());
        assert_eq!(resolve(&r, "HEAD").0, [ids[2].clone()]);
        let mut range = resolve(&r, "HEAD~2..HEAD").0;
        range.sort();
        let mut want = vec![ids[1].clone(), ids[2].clone()];
        want.sort();
        assert_eq!(range, want, "range expands inclusive of `to`, exclusive of `from`");
        let (empty, warnings) = resolve(&r, "HEAD..HEAD");
        assert!(empty.is_empty());
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn unresolvable_inputs_pass_through_and_warn_only_when_not_hex() {
        let (tmp, _) = repo();
        let r = CommitResolver::discover(tmp.path());
        let (v, w) = resolve(&r, "no-such-branch");
        assert_eq!(v, ["no-such-branch"]);
        assert_eq!(
            w,
            ["cargo ktstr: --project-commit 'no-such-branch' did not resolve as a revspec; \
              using as literal filter"]
        );
        assert_eq!(resolve(&r, "deadbee"), (vec!["deadbee".to_string()], vec![]));
        assert_eq!(resolve(&CommitResolver::none(), "HEAD").0, ["HEAD"]);
    }

    #[test]
    fn without_a_repository_a_literal_hash_is_lowercased() {
        let none = CommitResolver::none();
        assert_eq!(resolve(&none, "ABC1234").0, ["abc1234"]);
        assert_eq!(resolve(&none, "ABC1234-dirty").0, ["abc1234-dirty"]);
        assert_eq!(resolve(&none, "Feature-X").0, ["Feature-X"], "only hex is case-folded");
    }

    fn stored(short: &str, full: Option<&str>) -> StoredCommit {
        StoredCommit { short: short.into(), full: full.map(str::to_string) }
    }

    #[test]
    fn a_hex_prefix_matches_the_stored_full_id_case_insensitively() {
        let full_a = format!("abc1234{}", "0".repeat(33));
        let full_b = format!("abc1234{}", "f".repeat(33));
        let pool = [
            stored("abc1234", Some(&full_a)),
            stored("abc1234-dirty", Some(&full_a)),
            stored("def5678", None),
        ];
        let found = |v: &str| StoredMatch::Found(vec![v.to_string()]);
        assert_eq!(match_stored("abc1234", &pool), found("abc1234"), "an exact short form");
        assert_eq!(match_stored(&full_a, &pool), found("abc1234"));
        assert_eq!(match_stored(&full_a.to_uppercase(), &pool), found("abc1234"));
        assert_eq!(match_stored("ABC12340000", &pool), found("abc1234"));
        assert_eq!(match_stored(&format!("{full_a}-dirty"), &pool), found("abc1234-dirty"));
        // The full id decides: same first seven digits, another commit.
        assert_eq!(match_stored(&full_b, &pool), StoredMatch::Nothing);
        // No full id recorded (a kernel commit, a ktstr sidecar): the short form decides.
        assert_eq!(match_stored("DEF5678", &pool), found("def5678"));
        assert_eq!(match_stored(&format!("def5678{}", "9".repeat(33)), &pool), found("def5678"));
        assert_eq!(match_stored("def5679", &pool), StoredMatch::Nothing);
        assert_eq!(match_stored("main", &pool), StoredMatch::Nothing);
        // A sidecar without the full id (ktstr's) beside ours: one commit, not two.
        let mixed = [stored("abc1234", Some(&full_a)), stored("abc1234", None)];
        assert_eq!(match_stored("ABC1234", &mixed), found("abc1234"));
        // Two different commits behind one prefix are refused, not pooled.
        let two = [stored("abc1234", Some(&full_a)), stored("abc1234", Some(&full_b))];
        assert_eq!(
            match_stored("ABC1234", &two),
            StoredMatch::Ambiguous(vec![full_a.clone(), full_b.clone()])
        );
        // Even a full id: the filter selects by short form, which both commits share.
        assert!(matches!(match_stored(&full_b, &two), StoredMatch::Ambiguous(_)));
    }

    #[test]
    fn looks_like_literal_hash_accepts_uppercase_and_mixed_case() {
        assert!(looks_like_literal_hash("ABCDEF1"));
        assert!(looks_like_literal_hash("aBc1234-dirty"));
        assert!(!looks_like_literal_hash("abc123"));
        assert!(!looks_like_literal_hash("HEAD"));
        assert!(!looks_like_literal_hash(&"a".repeat(41)));
    }
}
