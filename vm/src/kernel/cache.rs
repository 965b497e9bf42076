//! The local kernel cache: one directory per fetched kernel package, keyed by package name and
//! version, each holding `vmlinuz`, `config`, the extracted `vmlinux` (when PVH-bootable) and a
//! `kernel.json` manifest describing them.
//!
//! This module owns the layout, listing and lookup by key or version. Filling the cache is
//! [`super::fetch`]'s job; an entry only appears once complete (it is renamed into place).

use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "kernel.json";

/// What `kernel.json` records about one cached kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The directory name: `<package>_<version>`.
    pub key: String,
    /// The Debian package holding the image, and its version.
    pub package: String,
    pub version: String,
    /// `uname -r` of the kernel.
    pub release: String,
    /// File names inside the entry directory.
    pub image: String,
    pub config: String,
    pub vmlinux: Option<String>,
    /// Whether the config builds in CONFIG_SCHED_CLASS_EXT.
    pub sched_ext: bool,
}

/// One complete cache entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl CacheEntry {
    pub fn image(&self) -> PathBuf {
        self.dir.join(&self.manifest.image)
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join(&self.manifest.config)
    }
    pub fn vmlinux(&self) -> Option<PathBuf> {
        self.manifest.vmlinux.as_ref().map(|v| self.dir.join(v))
    }
}

/// The cache directory and the operations on it.
#[derive(Debug, Clone)]
pub struct KernelCache {
    dir: PathBuf,
}

impl KernelCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KernelCache { dir: dir.into() }
    }

    /// The cache at its default place (see [`crate::cache_dirs::kernel_cache_dir`]).
    pub fn default_location() -> Self {
        KernelCache::new(crate::cache_dirs::kernel_cache_dir())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every complete entry, newest kernel version first.
    pub fn list(&self) -> Vec<CacheEntry> {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut entries: Vec<CacheEntry> = read
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let text = fs::read_to_string(e.path().join(MANIFEST)).ok()?;
                Some(CacheEntry { dir: e.path(), manifest: serde_json::from_str(&text).ok()? })
            })
            .collect();
        entries.sort_by(|a, b| {
            version_key(&b.manifest.release)
                .cmp(&version_key(&a.manifest.release))
                .then_with(|| b.manifest.key.cmp(&a.manifest.key))
        });
        entries
    }

    /// The entry named exactly `key`, else the newest whose release is `key` or starts with
    /// `key` as a version prefix (`7.3` matches `7.3.4+deb13-cloud-amd64`, not `7.30.1`).
    pub fn find(&self, key: &str) -> Option<CacheEntry> {
        let entries = self.list();
        if let Some(exact) = entries.iter().find(|e| e.manifest.key == key) {
            return Some(exact.clone());
        }
        entries.into_iter().find(|e| release_matches(&e.manifest.release, key))
    }
}

/// Whether `release` is `prefix` or continues it at a version boundary.
pub fn release_matches(release: &str, prefix: &str) -> bool {
    match release.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => rest.starts_with(['.', '+', '-', '~']),
        None => false,
    }
}

/// Numeric components of a release for ordering: `7.3.10+deb13` sorts above `7.3.4+deb13`.
pub fn version_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn write_entry(cache: &Path, key: &str, release: &str) -> PathBuf {
        let dir = cache.join(key);
        fs::create_dir_all(&dir).unwrap();
        let manifest = Manifest {
            key: key.into(),
            package: key.split('_').next().unwrap().into(),
            version: "1".into(),
            release: release.into(),
            image: "vmlinuz".into(),
            config: "config".into(),
            vmlinux: None,
            sched_ext: true,
        };
        fs::write(dir.join(MANIFEST), serde_json::to_string(&manifest).unwrap()).unwrap();
        dir
    }

    #[test]
    fn lists_complete_entries_newest_first_and_finds_by_key_or_version() {
        let dir = tempfile::tempdir().unwrap();
        write_entry(dir.path(), "linux-a_7.3.4-1", "7.3.4+deb13-cloud-amd64");
        write_entry(dir.path(), "linux-b_7.3.10-1", "7.3.10+deb13-cloud-amd64");
        write_entry(dir.path(), "linux-c_7.30.1-1", "7.30.1+deb13-cloud-amd64");
        fs::create_dir_all(dir.path().join("incomplete")).unwrap();
        fs::create_dir_all(dir.path().join(".tmp-fetch")).unwrap();
        let cache = KernelCache::new(dir.path());
        let keys: Vec<String> = cache.list().into_iter().map(|e| e.manifest.key).collect();
        assert_eq!(keys, ["linux-c_7.30.1-1", "linux-b_7.3.10-1", "linux-a_7.3.4-1"]);
        assert_eq!(cache.find("7.3").unwrap().manifest.key, "linux-b_7.3.10-1");
        assert_eq!(cache.find("7.3.4").unwrap().manifest.key, "linux-a_7.3.4-1");
        assert_eq!(
            cache.find("linux-a_7.3.4-1").unwrap().image(),
            dir.path().join("linux-a_7.3.4-1/vmlinuz")
        );
        assert!(cache.find("7.4").is_none());
        assert!(cache.find("incomplete").is_none());
    }

    #[test]
    fn a_missing_cache_is_empty() {
        assert!(KernelCache::new("/nonexistent/ktstr-cache").list().is_empty());
    }

    #[test]
    fn version_prefixes_stop_at_boundaries() {
        assert!(release_matches("7.3.4+deb13-cloud-amd64", "7.3"));
        assert!(release_matches("7.3", "7.3"));
        assert!(!release_matches("7.30.1", "7.3"));
        assert!(version_key("7.3.10+deb13") > version_key("7.3.4+deb13"));
    }
}
