//! Which kernel a sidecar records: the one `KTSTR_KERNEL` names (stats-reference §1.4) and,
//! on the host backend, the one actually running.
//!
//! `KTSTR_KERNEL` (set by `cargo ktstr test --kernel`) names the kernel a VM boots; it is read
//! here as ktstr's `KernelId::parse` classifies it. A host run boots nothing, so there the
//! running kernel is the kernel under test and a different named kernel is kept only as
//! `kernel_requested` ([`KernelIdentity::on_host`]). This module does not decide where a
//! sidecar goes; the writer reads the recorded version from the document.

use std::fs;
use std::path::{Path, PathBuf};

use super::git;
use crate::sidecar::layout::EnvLookup;

/// The kernel facts a sidecar records: `kernel_version`, `kernel_commit`, and
/// `provenance.kernel_requested` when a host run was asked for a kernel it did not run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelIdentity {
    pub version: Option<String>,
    pub commit: Option<String>,
    pub requested: Option<String>,
}

impl KernelIdentity {
    /// The kernel `env`'s `KTSTR_KERNEL` names: its version ([`detect_kernel_version_from`])
    /// and, when it is a directory that is a git tree's root, its commit.
    pub fn named_by(env: EnvLookup<'_>) -> KernelIdentity {
        KernelIdentity {
            version: detect_kernel_version_from(env),
            commit: detect_kernel_commit_from(env),
            requested: None,
        }
    }

    /// On the host backend the kernel under test is the one running, whatever `KTSTR_KERNEL`
    /// names: that variable chooses the kernel a VM boots, and no VM ran. The running release
    /// is recorded; a different named kernel becomes `requested`, and a commit read from that
    /// other tree is dropped. Without a running release the named kernel stands.
    pub fn on_host(self, running_release: Option<&str>) -> KernelIdentity {
        let Some(running) = running_release else {
            return self;
        };
        match self.version.filter(|named| named != running) {
            Some(named) => KernelIdentity {
                version: Some(running.to_string()),
                commit: None,
                requested: Some(named),
            },
            None => KernelIdentity { version: Some(running.to_string()), ..self },
        }
    }
}

/// The kernel commit when `KTSTR_KERNEL` names a directory that is a git tree's root.
fn detect_kernel_commit_from(env: EnvLookup<'_>) -> Option<String> {
    match kernel_env(env)? {
        KernelSpec::Path(dir) => git::detect_kernel_commit(&dir),
        // Locating a cached kernel's source tree needs ktstr's cache metadata layout, which
        // the spec does not pin down; those runs record no kernel commit.
        _ => None,
    }
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

/// The kernel version `KTSTR_KERNEL` names in `env` (not memoized: multi-kernel runs
/// re-export it per variant).
///
/// - a path: `{path}/metadata.json`'s `version` when that file is a JSON object (its
///   `version` as is, even when null), else `{path}/include/config/kernel.release`;
/// - a version: verbatim;
/// - a cache key: `version` in `{cache}/{key}/metadata.json`, the cache being
///   `KTSTR_CACHE_DIR`, else `$XDG_CACHE_HOME/ktstr/kernels`, else `~/.cache/ktstr/kernels`;
/// - a range or git spec, or anything unreadable: `None`.
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
    #[test]
    fn host_runs_record_the_running_kernel_even_when_another_is_named() {
        let k = KernelIdentity::default().on_host(Some("6.1.0-test"));
        assert_eq!(k.version.as_deref(), Some("6.1.0-test"));
        // A kernel named for a VM is not what a host run measured.
        let named = KernelIdentity {
            version: Some("7.0".into()),
            commit: Some("abc1234".into()),
            requested: None,
        };
        let k = named.clone().on_host(Some("6.1.0-test"));
        assert_eq!(k.version.as_deref(), Some("6.1.0-test"));
        assert_eq!(k.commit, None);
        assert_eq!(k.requested.as_deref(), Some("7.0"));

        // The named kernel is the running one: its commit is the running kernel's.
        let same = KernelIdentity { version: Some("6.1.0-test".into()), ..named.clone() };
        assert_eq!(same.clone().on_host(Some("6.1.0-test")), same);
        // No running release to go by: the named kernel stands.
        assert_eq!(named.clone().on_host(None), named);
    }

    #[test]
    fn a_named_kernel_tree_records_its_version_and_commit() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("include/config")).unwrap();
        fs::write(dir.path().join("include/config/kernel.release"), "6.14.2\n").unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let k = KernelIdentity::named_by(&env_of(&[("KTSTR_KERNEL", &path)]));
        assert_eq!(k.version.as_deref(), Some("6.14.2"));
        assert_eq!(k.commit, None, "not a git tree");
        assert_eq!(k.requested, None);
        assert_eq!(KernelIdentity::named_by(&env_of(&[])), KernelIdentity::default());
    }
}
