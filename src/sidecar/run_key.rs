//! Run keys (`--run ID`): validating them before they touch a path, and suggesting the
//! nearest existing run when one is mistyped.
//!
//! A run key names a directory under a runs root, or `run/job` for a job subdirectory. It is
//! joined onto the root, so anything that could leave the root (`..`, an absolute path, `.`)
//! is refused up front. Which runs exist is the caller's business; this module only compares
//! names.

use std::path::{Component, Path};

/// Why a `--run` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunKeyError {
    #[error("--run is empty; pass a run directory name (see `cargo ktstr stats list`)")]
    Empty,
    #[error(
        "--run `{0}` must be a run directory name under the runs root (or `run/job`), not a \
         path that leaves it; `.`, `..` and absolute paths are refused"
    )]
    Escapes(String),
    #[error("--run `{0}` has more than two components; pass `run` or `run/job`")]
    TooDeep(String),
}

/// Check a run key: one or two normal path components. `max_components` is 1 for commands
/// that take a run, 2 for those that also accept `run/job`.
pub fn validate(id: &str, max_components: usize) -> Result<(), RunKeyError> {
    if id.is_empty() {
        return Err(RunKeyError::Empty);
    }
    let path = Path::new(id);
    let mut n = 0;
    for c in path.components() {
        match c {
            Component::Normal(_) => n += 1,
            Component::CurDir
            | Component::ParentDir
            | Component::RootDir
            | Component::Prefix(_) => {
                return Err(RunKeyError::Escapes(id.to_string()));
            }
        }
    }
    // `Path::components` drops a lone `.` in the middle ("a/./b"); a literal check catches it.
    if id.split('/').any(|part| part == "." || part == "..") {
        return Err(RunKeyError::Escapes(id.to_string()));
    }
    if n > max_components {
        return Err(RunKeyError::TooDeep(id.to_string()));
    }
    Ok(())
}

/// The candidate closest to `id` by Levenshtein distance, if within `max(3, len(id)/3)`.
/// Ties go to the earliest candidate, so callers control the tie-break by their order.
pub fn suggest<'a>(id: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = 3.max(id.chars().count() / 3);
    let mut best: Option<(usize, &str)> = None;
    for cand in candidates {
        let d = levenshtein(id, cand);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| c)
}

/// Edit distance over chars (insertions, deletions, substitutions all cost 1).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levenshtein_counts_edits() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("abc", ""), 3);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("6.14.2-abc1234", "6.14.2-abc1243"), 2);
        assert_eq!(levenshtein("µs", "us"), 1);
    }

    #[test]
    fn suggestion_respects_the_distance_limit_and_prefers_the_first_tie() {
        let runs = ["6.14.2-abc1234", "6.14.2-abc9999", "6.13.0-abc1234"];
        assert_eq!(suggest("6.14.2-abc1235", runs), Some("6.14.2-abc1234"));
        // Distance 1 to both of the first and third: the first one in order wins.
        assert_eq!(
            suggest("6.14.2-abc123", ["6.14.2-abc1234", "6.14.2-abc1238"]),
            Some("6.14.2-abc1234")
        );
        // 14 chars → limit max(3, 4) = 4; "zzz" is far from everything.
        assert_eq!(suggest("zzz", runs), None);
        // Short keys still get the floor of 3.
        assert_eq!(suggest("ab", ["abcde"]), Some("abcde"));
        assert_eq!(suggest("ab", ["abcdef"]), None);
        assert_eq!(suggest("x", std::iter::empty()), None);
    }

    #[test]
    fn traversal_and_absolute_keys_are_refused() {
        assert_eq!(validate("", 2), Err(RunKeyError::Empty));
        for bad in ["..", "../x", "a/../b", "/etc", "/", ".", "./a", "a/./b", "a/.."] {
            assert!(
                matches!(validate(bad, 2), Err(RunKeyError::Escapes(_))),
                "{bad} should be refused"
            );
        }
        assert_eq!(validate("a/b/c", 2), Err(RunKeyError::TooDeep("a/b/c".into())));
        assert_eq!(validate("a/b", 1), Err(RunKeyError::TooDeep("a/b".into())));
    }

    #[test]
    fn plain_and_job_keys_are_accepted() {
        assert_eq!(validate("6.14.2-abc1234", 1), Ok(()));
        assert_eq!(validate("gauntlet/job-1", 2), Ok(()));
        assert_eq!(validate("..hidden-but-normal", 1), Ok(()));
    }
}
