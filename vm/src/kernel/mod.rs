//! Resolves what the user names with `--kernel` to a bootable kernel: a build tree, a path to
//! a bzImage/vmlinuz, or a key or version in the local cache. Resolution checks that the thing
//! is a kernel and finds its config and release; whether it has sched_ext is a separate,
//! typed answer ([`Kernel::require_sched_ext`]) so a caller can turn it into a skip.
//!
//! Submodules: [`config`] parses `.config`, [`image`] reads bzImage headers and extracts the
//! PVH vmlinux, [`tree`] recognises build trees, [`cache`] is the cache layout, [`fetch`] fills
//! the cache from Debian.

pub mod cache;
pub mod config;
pub mod fetch;
pub mod image;
pub mod tree;

use cache::KernelCache;
use config::{KernelConfig, SCHED_EXT};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("kernel path {0} does not exist")]
    NotFound(PathBuf),
    #[error(
        "{0} is not a kernel image (no x86 boot header); pass a bzImage, a kernel build tree or a cache key"
    )]
    NotAKernel(PathBuf),
    #[error(
        "no kernel '{key}' in the cache at {dir} (cached: {cached}); run `cargo ktstr kernel fetch` or scripts/deps/10-vm.sh"
    )]
    NotInCache { key: String, dir: PathBuf, cached: String },
    #[error(
        "kernel {kernel} is built without CONFIG_SCHED_CLASS_EXT=y (config {config}); use a kernel with sched_ext"
    )]
    NoSchedExt { kernel: String, config: PathBuf },
    #[error(
        "kernel {kernel} has no config beside it, so sched_ext cannot be checked; pass a build tree or put config-<release> next to the image"
    )]
    NoConfig { kernel: String },
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KernelError + '_ {
    move |source| KernelError::Io { path: path.to_path_buf(), source }
}

/// What `--kernel` said, before looking anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSpec {
    Path(PathBuf),
    /// A cache key (`<package>_<version>`) or a version prefix such as `7.3`.
    Cache(String),
}

impl KernelSpec {
    /// Paths contain `/` or start with `.` or `~`; anything else is a cache key or version.
    pub fn parse(s: &str) -> KernelSpec {
        if let Some(rest) = s.strip_prefix("~/")
            && let Some(home) = std::env::var_os("HOME")
        {
            return KernelSpec::Path(PathBuf::from(home).join(rest));
        }
        if s.contains('/') || s.starts_with('.') || s.starts_with('~') {
            KernelSpec::Path(PathBuf::from(s))
        } else {
            KernelSpec::Cache(s.to_string())
        }
    }
}

/// Where a resolved kernel came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelSource {
    Tree { dir: PathBuf, commit: Option<String> },
    Image { path: PathBuf },
    Cache { key: String, package: String, version: String },
}

/// A kernel ready to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub source: KernelSource,
    /// The bzImage.
    pub image: PathBuf,
    /// The uncompressed PVH-bootable kernel, when there is one (boots seconds faster).
    pub vmlinux: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// `uname -r` inside the guest.
    pub release: String,
}

impl Kernel {
    /// A short name for reports: the cache key, the image's release, or the tree's release and
    /// commit.
    pub fn label(&self) -> String {
        match &self.source {
            KernelSource::Cache { key, .. } => key.clone(),
            KernelSource::Image { .. } => self.release.clone(),
            KernelSource::Tree { commit: Some(c), .. } => {
                format!("{}@{}", self.release, &c[..c.len().min(12)])
            }
            KernelSource::Tree { commit: None, .. } => self.release.clone(),
        }
    }

    /// The file to hand QEMU's `-kernel`.
    pub fn boot_image(&self) -> &Path {
        self.vmlinux.as_deref().unwrap_or(&self.image)
    }

    /// The parsed config, `NoConfig` if there is none.
    pub fn config(&self) -> Result<KernelConfig, KernelError> {
        let path =
            self.config.as_ref().ok_or_else(|| KernelError::NoConfig { kernel: self.label() })?;
        Ok(KernelConfig::parse(&fs::read_to_string(path).map_err(io_err(path))?))
    }

    /// `Ok` if the kernel builds in sched_ext; [`KernelError::NoSchedExt`] names the option.
    pub fn require_sched_ext(&self) -> Result<(), KernelError> {
        if self.config()?.is_builtin(SCHED_EXT) {
            return Ok(());
        }
        let config = self.config.clone().unwrap_or_default();
        Err(KernelError::NoSchedExt { kernel: self.label(), config })
    }
}

/// Resolves `spec`, looking cache keys up in `cache` and extracting vmlinux files of bzImages
/// given by path into `vmlinux_cache`.
pub fn resolve(
    spec: &KernelSpec,
    cache: &KernelCache,
    vmlinux_cache: &Path,
) -> Result<Kernel, KernelError> {
    match spec {
        KernelSpec::Cache(key) => from_cache(key, cache),
        KernelSpec::Path(path) if !path.exists() => Err(KernelError::NotFound(path.clone())),
        KernelSpec::Path(dir) if dir.is_dir() => from_tree(dir),
        KernelSpec::Path(path) => from_image(path, vmlinux_cache),
    }
}

fn from_cache(key: &str, cache: &KernelCache) -> Result<Kernel, KernelError> {
    let Some(entry) = cache.find(key) else {
        let keys: Vec<String> = cache.list().into_iter().map(|e| e.manifest.key).collect();
        let cached = if keys.is_empty() { "none".to_string() } else { keys.join(", ") };
        return Err(KernelError::NotInCache {
            key: key.to_string(),
            dir: cache.dir().to_path_buf(),
            cached,
        });
    };
    let image = entry.image();
    if !image.is_file() {
        return Err(KernelError::NotFound(image));
    }
    Ok(Kernel {
        vmlinux: entry.vmlinux().filter(|v| v.is_file()),
        config: Some(entry.config()).filter(|c| c.is_file()),
        release: entry.manifest.release.clone(),
        image,
        source: KernelSource::Cache {
            key: entry.manifest.key.clone(),
            package: entry.manifest.package.clone(),
            version: entry.manifest.version.clone(),
        },
    })
}

fn from_tree(dir: &Path) -> Result<Kernel, KernelError> {
    if !tree::is_build_tree(dir) {
        return Err(KernelError::NotAKernel(dir.to_path_buf()));
    }
    let image = dir.join(tree::BZIMAGE);
    let bytes = fs::read(&image).map_err(io_err(&image))?;
    if !image::is_bzimage(&bytes) {
        return Err(KernelError::NotAKernel(image));
    }
    let vmlinux = dir.join(tree::VMLINUX);
    let vmlinux_ok = fs::read(&vmlinux).is_ok_and(|elf| image::has_pvh_note(&elf));
    Ok(Kernel {
        release: tree::release(dir)
            .or_else(|| image::bzimage_release(&bytes))
            .unwrap_or_else(|| "unknown".into()),
        vmlinux: vmlinux_ok.then_some(vmlinux),
        config: Some(dir.join(tree::CONFIG)).filter(|c| c.is_file()),
        image,
        source: KernelSource::Tree { dir: dir.to_path_buf(), commit: tree::git_head(dir) },
    })
}

fn from_image(path: &Path, vmlinux_cache: &Path) -> Result<Kernel, KernelError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    if !image::is_bzimage(&bytes) {
        return Err(KernelError::NotAKernel(path.to_path_buf()));
    }
    let release = image::bzimage_release(&bytes).unwrap_or_else(|| "unknown".into());
    let dir = path.parent().unwrap_or(Path::new("."));
    let config = [format!("config-{release}"), "config".into(), ".config".into()]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|c| c.is_file());
    let vmlinux = image::cached_vmlinux(&bytes, vmlinux_cache).map_err(io_err(vmlinux_cache))?;
    Ok(Kernel {
        source: KernelSource::Image { path: path.to_path_buf() },
        image: path.to_path_buf(),
        vmlinux,
        config,
        release,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::tests::fake_bzimage;

    fn write(path: PathBuf, bytes: &[u8]) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn parses_paths_and_cache_keys() {
        assert_eq!(KernelSpec::parse("7.3"), KernelSpec::Cache("7.3".into()));
        assert_eq!(
            KernelSpec::parse("linux-x_7.3.4-1"),
            KernelSpec::Cache("linux-x_7.3.4-1".into())
        );
        assert_eq!(KernelSpec::parse("./linux"), KernelSpec::Path("./linux".into()));
        assert_eq!(KernelSpec::parse("/boot/vmlinuz"), KernelSpec::Path("/boot/vmlinuz".into()));
        assert_eq!(KernelSpec::parse("linux/"), KernelSpec::Path("linux/".into()));
    }

    #[test]
    fn resolves_a_fake_build_tree_with_release_commit_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("linux");
        write(tree.join(tree::BZIMAGE), &fake_bzimage("from-header", b""));
        write(tree.join(tree::RELEASE), b"7.3.0-test\n");
        write(tree.join(tree::CONFIG), b"CONFIG_SCHED_CLASS_EXT=y\n");
        write(tree.join(".git/HEAD"), b"0123456789abcdef0123456789abcdef01234567\n");
        let kernel =
            resolve(&KernelSpec::Path(tree.clone()), &KernelCache::new(dir.path()), dir.path())
                .unwrap();
        assert_eq!(kernel.release, "7.3.0-test");
        assert_eq!(kernel.image, tree.join(tree::BZIMAGE));
        assert_eq!(kernel.vmlinux, None, "no vmlinux in the tree");
        assert_eq!(kernel.boot_image(), tree.join(tree::BZIMAGE));
        assert_eq!(kernel.label(), "7.3.0-test@0123456789ab");
        kernel.require_sched_ext().unwrap();
    }

    #[test]
    fn a_config_without_sched_ext_is_a_typed_fact() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("vmlinuz-6.1.0-test");
        write(image.clone(), &fake_bzimage("6.1.0-test", b""));
        write(dir.path().join("config-6.1.0-test"), b"# CONFIG_SCHED_CLASS_EXT is not set\n");
        let kernel =
            resolve(&KernelSpec::Path(image), &KernelCache::new(dir.path()), dir.path()).unwrap();
        assert_eq!(kernel.release, "6.1.0-test");
        let err = kernel.require_sched_ext().unwrap_err();
        assert!(matches!(err, KernelError::NoSchedExt { .. }));
        assert!(err.to_string().contains("CONFIG_SCHED_CLASS_EXT=y"), "{err}");
        fs::remove_file(dir.path().join("config-6.1.0-test")).unwrap();
        let kernel =
            resolve(&KernelSpec::Path(kernel.image), &KernelCache::new(dir.path()), dir.path())
                .unwrap();
        assert!(matches!(kernel.require_sched_ext(), Err(KernelError::NoConfig { .. })));
    }

    #[test]
    fn missing_paths_non_kernels_and_unknown_keys_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(dir.path().join("cache"));
        let missing =
            resolve(&KernelSpec::Path(dir.path().join("nope")), &cache, dir.path()).unwrap_err();
        assert!(matches!(missing, KernelError::NotFound(_)), "{missing}");
        let text = dir.path().join("notes.txt");
        write(text.clone(), b"not a kernel");
        assert!(matches!(
            resolve(&KernelSpec::Path(text), &cache, dir.path()),
            Err(KernelError::NotAKernel(_))
        ));
        assert!(matches!(
            resolve(&KernelSpec::Path(dir.path().to_path_buf()), &cache, dir.path()),
            Err(KernelError::NotAKernel(_))
        ));
        let err =
            resolve(&KernelSpec::Cache("7.3".into()), &cache, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("no kernel '7.3'")
                && err.contains("(cached: none)")
                && err.contains("cargo ktstr kernel fetch"),
            "{err}"
        );
    }

    #[test]
    fn resolves_a_cache_entry() {
        let dir = tempfile::tempdir().unwrap();
        let entry = cache::tests::write_entry(
            dir.path(),
            "linux-binary-x_7.3.4-1",
            "7.3.4+deb13-cloud-amd64",
        );
        write(entry.join("vmlinuz"), &fake_bzimage("7.3.4+deb13-cloud-amd64", b""));
        write(entry.join("config"), b"CONFIG_SCHED_CLASS_EXT=y\n");
        let kernel =
            resolve(&KernelSpec::Cache("7.3".into()), &KernelCache::new(dir.path()), dir.path())
                .unwrap();
        assert_eq!(kernel.label(), "linux-binary-x_7.3.4-1");
        assert_eq!(kernel.release, "7.3.4+deb13-cloud-amd64");
        kernel.require_sched_ext().unwrap();
    }
}
