//! Where sidecars live, and the environment facts that choose the place (stats-reference
//! §1.3, §1.4).
//!
//! The runs root is `{CARGO_TARGET_DIR or target}/ktstr`; each suite run writes into
//! `{runs_root}/{kernel}-{project_commit}/`, with `unknown` standing in for either half. Lock
//! and token files live under `{runs_root}/.locks/`, which readers skip because it starts with
//! a dot. The warehouse database sits directly in the root, where the pool walk never looks.
//!
//! Every `detect_*` function here has a pure twin taking the environment as a lookup function,
//! so the rules are tested without mutating the process environment. Git facts live in
//! [`crate::git`]; this module only asks it nothing.

use std::env;
use std::fs;
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
    let cwd = env::current_dir().unwrap_or_default();
    runs_root_from(&process_env, &cwd)
}

/// [`runs_root`] with the environment and current directory given.
pub fn runs_root_from(env: EnvLookup<'_>, cwd: &Path) -> PathBuf {
    let target = env("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("target"), PathBuf::from);
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

/// `ci` when `KTSTR_CI` is set and non-empty, else `local`. `archive` is never written; the
/// reader applies it to pools loaded with `--dir`.
pub fn detect_run_source() -> &'static str {
    detect_run_source_from(&process_env)
}

/// [`detect_run_source`] with the environment given.
pub fn detect_run_source_from(env: EnvLookup<'_>) -> &'static str {
    if env("KTSTR_CI").is_some_and(|v| !v.is_empty()) { "ci" } else { "local" }
}

/// What a `KTSTR_KERNEL` value names, classified as ktstr's `KernelId::parse` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    /// Contains `/`, or starts with `.` or `~`: a source tree or cache-entry directory.
    Path(PathBuf),
    /// `MAJOR.MINOR[.PATCH][-rcN]`.
    Version(String),
    /// `A..B`: a release range, never a single kernel.
    Range(String),
    /// `git+URL#REF`.
    Git(String),
    /// Anything else: the name of a kernel cache entry.
    CacheKey(String),
}

impl KernelSpec {
    /// Classify a trimmed, non-empty `KTSTR_KERNEL` value.
    pub fn parse(raw: &str, home: Option<&str>) -> KernelSpec {
        // A git URL contains `/` too, so its prefix is checked first.
        if raw.starts_with("git+") {
            return KernelSpec::Git(raw.to_string());
        }
        if raw.contains('/') || raw.starts_with('.') || raw.starts_with('~') {
            let path = match (raw.strip_prefix('~'), home) {
                (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                    PathBuf::from(format!("{home}{rest}"))
                }
                _ => PathBuf::from(raw),
            };
            return KernelSpec::Path(path);
        }
        if raw.contains("..") {
            return KernelSpec::Range(raw.to_string());
        }
        if is_version(raw) {
            return KernelSpec::Version(raw.to_string());
        }
        KernelSpec::CacheKey(raw.to_string())
    }
}

/// `MAJOR.MINOR[.PATCH][-rcN]`, all numeric parts non-empty digits.
fn is_version(s: &str) -> bool {
    let (nums, rc) = match s.split_once("-rc") {
        Some((nums, rc)) => (nums, Some(rc)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = nums.split('.').collect();
    (2..=3).contains(&parts.len()) && parts.iter().all(|p| digits(p)) && rc.is_none_or(digits)
}

/// The `KTSTR_KERNEL` value, trimmed; `None` when unset or blank.
pub fn kernel_env(env: EnvLookup<'_>) -> Option<KernelSpec> {
    let raw = env("KTSTR_KERNEL")?;
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    Some(KernelSpec::parse(raw, env("HOME").as_deref()))
}

/// The kernel version the tests run against, from `KTSTR_KERNEL` (not memoized: multi-kernel
/// runs re-export it per variant).
///
/// - a path: `{path}/metadata.json`'s `version` when that file is a JSON object (its
///   `version` as is, even when null), else `{path}/include/config/kernel.release`;
/// - a version: verbatim;
/// - a cache key: `version` in `{cache}/{key}/metadata.json`, the cache being
///   `KTSTR_CACHE_DIR`, else `$XDG_CACHE_HOME/ktstr/kernels`, else `~/.cache/ktstr/kernels`;
/// - a range or git spec, or anything unreadable: `None`.
pub fn detect_kernel_version() -> Option<String> {
    detect_kernel_version_from(&process_env)
}

/// [`detect_kernel_version`] with the environment given.
pub fn detect_kernel_version_from(env: EnvLookup<'_>) -> Option<String> {
    match kernel_env(env)? {
        KernelSpec::Path(dir) => match read_metadata(&dir) {
            Some(meta) => metadata_version(&meta),
            None => {
                let release = fs::read_to_string(dir.join("include/config/kernel.release")).ok()?;
                let release = release.trim();
                (!release.is_empty()).then(|| release.to_string())
            }
        },
        KernelSpec::Version(v) => Some(v),
        KernelSpec::CacheKey(key) => {
            let root = kernel_cache_root(env)?;
            // A key is one directory name; never let it walk elsewhere.
            if key.contains(['/', '\\']) || key == "." || key == ".." {
                return None;
            }
            metadata_version(&read_metadata(&root.join(key))?)
        }
        KernelSpec::Range(_) | KernelSpec::Git(_) => None,
    }
}

/// The kernel cache directory holding one subdirectory per cache key.
pub fn kernel_cache_root(env: EnvLookup<'_>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(dir) = non_empty("KTSTR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Some(Path::new(&xdg).join("ktstr/kernels"));
    }
    non_empty("HOME").map(|home| Path::new(&home).join(".cache/ktstr/kernels"))
}

/// `{dir}/metadata.json` when it exists and is a JSON object.
///
/// ktstr requires the file to parse as its full `KernelMetadata`; we only know the `version`
/// field, so any object counts. The effect is the same for every file ktstr writes.
fn read_metadata(dir: &Path) -> Option<serde_json::Map<String, serde_json::Value>> {
    let text = fs::read_to_string(dir.join("metadata.json")).ok()?;
    match serde_json::from_str::<serde_json::Value>(&text).ok()? {
        serde_json::Value::Object(map) => Some(map),
        _ => None,
    }
}

fn metadata_version(meta: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    meta.get("version").and_then(|v| v.as_str()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

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
        let cwd = Path::new("/work/proj");
        assert_eq!(runs_root_from(&env_of(&[]), cwd), Path::new("/work/proj/target/ktstr"));
        let empty = env_of(&[("CARGO_TARGET_DIR", "")]);
        assert_eq!(runs_root_from(&empty, cwd), Path::new("/work/proj/target/ktstr"));
        let rel = env_of(&[("CARGO_TARGET_DIR", "out/t")]);
        assert_eq!(runs_root_from(&rel, cwd), Path::new("/work/proj/out/t/ktstr"));
        let abs = env_of(&[("CARGO_TARGET_DIR", "/tmp/t")]);
        assert_eq!(runs_root_from(&abs, cwd), Path::new("/tmp/t/ktstr"));
    }

    #[test]
    fn lock_and_token_files_live_in_the_dot_locks_dir() {
        let root = Path::new("/r/ktstr");
        assert_eq!(lock_path(root, "6.14-abc1234"), Path::new("/r/ktstr/.locks/6.14-abc1234.lock"));
        assert_eq!(token_path(root, "u-u"), Path::new("/r/ktstr/.locks/u-u.token"));
    }

    #[test]
    fn run_source_is_ci_only_for_a_non_empty_ktstr_ci() {
        assert_eq!(detect_run_source_from(&env_of(&[])), "local");
        assert_eq!(detect_run_source_from(&env_of(&[("KTSTR_CI", "")])), "local");
        assert_eq!(detect_run_source_from(&env_of(&[("KTSTR_CI", "1")])), "ci");
    }

    #[test]
    fn kernel_spec_classification() {
        use KernelSpec::*;
        assert_eq!(KernelSpec::parse("6.14.2", None), Version("6.14.2".into()));
        assert_eq!(KernelSpec::parse("6.15-rc3", None), Version("6.15-rc3".into()));
        assert_eq!(KernelSpec::parse("./linux", None), Path("./linux".into()));
        assert_eq!(KernelSpec::parse("/src/linux", None), Path("/src/linux".into()));
        assert_eq!(KernelSpec::parse("~/linux", Some("/home/u")), Path("/home/u/linux".into()));
        assert_eq!(KernelSpec::parse("6.1..6.6", None), Range("6.1..6.6".into()));
        assert!(matches!(KernelSpec::parse("git+https://x/y#main", None), Git(_)));
        assert_eq!(KernelSpec::parse("git+ssh:host#v1", None), Git("git+ssh:host#v1".into()));
        assert_eq!(
            KernelSpec::parse("6.14.2-tarball-x86_64-kcabc", None),
            CacheKey("6.14.2-tarball-x86_64-kcabc".into())
        );
        assert_eq!(KernelSpec::parse("6", None), CacheKey("6".into()));
    }

    #[test]
    fn kernel_version_from_a_bare_version_is_verbatim_and_blank_is_none() {
        assert_eq!(
            detect_kernel_version_from(&env_of(&[("KTSTR_KERNEL", " 6.14.2 ")])),
            Some("6.14.2".into())
        );
        assert_eq!(detect_kernel_version_from(&env_of(&[("KTSTR_KERNEL", "  ")])), None);
        assert_eq!(detect_kernel_version_from(&env_of(&[])), None);
        assert_eq!(detect_kernel_version_from(&env_of(&[("KTSTR_KERNEL", "6.1..6.6")])), None);
    }

    #[test]
    fn kernel_version_from_a_path_prefers_metadata_even_when_null() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let env = env_of(&[("KTSTR_KERNEL", &path)]);
        assert_eq!(detect_kernel_version_from(&env), None);

        fs::create_dir_all(dir.path().join("include/config")).unwrap();
        fs::write(dir.path().join("include/config/kernel.release"), "6.14.2-rc1+\n").unwrap();
        assert_eq!(detect_kernel_version_from(&env), Some("6.14.2-rc1+".into()));

        fs::write(dir.path().join("metadata.json"), r#"{"version": "6.14.3"}"#).unwrap();
        assert_eq!(detect_kernel_version_from(&env), Some("6.14.3".into()));

        // ktstr does not fall back to kernel.release when metadata records no version.
        fs::write(dir.path().join("metadata.json"), r#"{"version": null}"#).unwrap();
        assert_eq!(detect_kernel_version_from(&env), None);

        // An unparseable metadata.json is as good as none.
        fs::write(dir.path().join("metadata.json"), "not json").unwrap();
        assert_eq!(detect_kernel_version_from(&env), Some("6.14.2-rc1+".into()));
    }

    #[test]
    fn kernel_version_from_a_cache_key_reads_the_cache_entry() {
        let cache = tempfile::tempdir().unwrap();
        let key = "6.14.2-tarball-x86_64-kc1";
        fs::create_dir_all(cache.path().join(key)).unwrap();
        fs::write(cache.path().join(key).join("metadata.json"), r#"{"version":"6.14.2"}"#).unwrap();
        let cache_dir = cache.path().to_str().unwrap();
        let env = env_of(&[("KTSTR_KERNEL", key), ("KTSTR_CACHE_DIR", cache_dir)]);
        assert_eq!(detect_kernel_version_from(&env), Some("6.14.2".into()));
        let miss = env_of(&[("KTSTR_KERNEL", "nope"), ("KTSTR_CACHE_DIR", cache_dir)]);
        assert_eq!(detect_kernel_version_from(&miss), None);

        let xdg = env_of(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")]);
        assert_eq!(kernel_cache_root(&xdg), Some(PathBuf::from("/x/ktstr/kernels")));
        let home = env_of(&[("HOME", "/h")]);
        assert_eq!(kernel_cache_root(&home), Some(PathBuf::from("/h/.cache/ktstr/kernels")));
    }
}
