//! Fetches a Debian sched_ext kernel (trixie-backports 7.3 by default) into the kernel cache:
//! `apt-get download` of the image package and its `linux-base` config package through a
//! private apt view, `dpkg -x`, vmlinux extraction, and a manifest.
//!
//! The private view (`-o Dir::Etc::sourcelist=… -o Dir::Etc::sourceparts=- -o
//! Dir::State::Lists=… -o Dir::Cache=…`) lives in the cache's `.apt/` folder, so the host's
//! `/etc/apt` sources and lists are never touched. Nothing is installed. An existing entry for
//! the series is reused without any network access unless a refresh is asked for.

use super::cache::{CacheEntry, KernelCache, MANIFEST, Manifest, release_matches, version_key};
use super::config::{KernelConfig, SCHED_EXT};
use super::image;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIRROR: &str = "http://deb.debian.org/debian";
pub const SUITE: &str = "trixie-backports";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{tool} not found: fetching Debian kernels needs a Debian-based host with apt and dpkg"
    )]
    MissingTool { tool: &'static str },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{SUITE} has no package matching {pattern}")]
    NoPackage { pattern: String },
    #[error("the downloaded packages hold no {what} under usr/lib/modules")]
    Incomplete { what: &'static str },
    #[error("cannot write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// Debian's image flavours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// `-cloud-amd64`: fewer drivers, smaller, boots faster.
    Cloud,
    /// `-amd64`.
    Generic,
}

impl Flavour {
    fn suffix(self) -> &'static str {
        match self {
            Flavour::Cloud => "-cloud-amd64",
            Flavour::Generic => "-amd64",
        }
    }

    fn matches(self, release: &str) -> bool {
        match self {
            Flavour::Cloud => release.ends_with("-cloud-amd64"),
            Flavour::Generic => {
                release.ends_with("-amd64")
                    && !release.ends_with("-cloud-amd64")
                    && !release.ends_with("-rt-amd64")
            }
        }
    }
}

/// What to fetch.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    /// Kernel series, e.g. `7.3`.
    pub series: String,
    pub flavour: Flavour,
    /// Ask apt for a newer package even if the cache has one for the series.
    pub refresh: bool,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest { series: "7.3".into(), flavour: Flavour::Cloud, refresh: false }
    }
}

/// Makes sure the cache holds a kernel of the requested series and returns its entry.
pub fn fetch(cache: &KernelCache, request: &FetchRequest) -> Result<CacheEntry, FetchError> {
    let cached = || {
        cache.list().into_iter().find(|e| {
            release_matches(&e.manifest.release, &request.series)
                && request.flavour.matches(&e.manifest.release)
        })
    };
    if !request.refresh
        && let Some(entry) = cached()
    {
        return Ok(entry);
    }
    let apt = AptView::create(&cache.dir().join(".apt"))?;
    apt.run("apt-get", &["-q", "update"], None)?;
    let (package, version) = apt.newest_image(request)?;
    let key = format!("{package}_{version}");
    if let Some(entry) = cache.find(&key) {
        return Ok(entry);
    }
    let work = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(cache.dir())
        .map_err(|source| FetchError::Io { path: cache.dir().to_path_buf(), source })?;
    let base = package.replacen("linux-binary-unsigned-", "linux-base-", 1);
    let specs = [format!("{package}={version}"), format!("{base}={version}")];
    apt.run("apt-get", &["-q", "download", &specs[0], &specs[1]], Some(work.path()))?;
    let entry_dir = unpack(work.path(), &key, &package, &version)?;
    let final_dir = cache.dir().join(&key);
    if let Err(source) = fs::rename(&entry_dir, &final_dir) {
        // Another fetch of the same package finished first; its entry is just as good.
        if cache.find(&key).is_none() {
            return Err(FetchError::Io { path: final_dir, source });
        }
    }
    cache.find(&key).ok_or(FetchError::Incomplete { what: "manifest" })
}

/// Unpacks the downloaded debs in `work` into `work/entry`, ready to be renamed into the cache.
fn unpack(work: &Path, key: &str, package: &str, version: &str) -> Result<PathBuf, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| FetchError::Io { path, source }
    };
    let root = work.join("root");
    for deb in fs::read_dir(work).map_err(io(work))?.flatten().map(|e| e.path()) {
        if deb.extension().is_some_and(|e| e == "deb") {
            run_tool("dpkg", &["-x".as_ref(), deb.as_os_str(), root.as_os_str()], None)?;
        }
    }
    let modules = root.join("usr/lib/modules");
    let release_dir = fs::read_dir(&modules)
        .map_err(io(&modules))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or(FetchError::Incomplete { what: "kernel release directory" })?;
    let release = release_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let image_src = ["vmlinuz", "vmlinuz.unsigned"]
        .iter()
        .map(|n| release_dir.join(n))
        .find(|p| p.is_file())
        .ok_or(FetchError::Incomplete { what: "vmlinuz" })?;
    let config_src = release_dir.join("config");
    if !config_src.is_file() {
        return Err(FetchError::Incomplete { what: "config" });
    }
    let entry = work.join("entry");
    fs::create_dir_all(&entry).map_err(io(&entry))?;
    fs::rename(&image_src, entry.join("vmlinuz")).map_err(io(&image_src))?;
    fs::rename(&config_src, entry.join("config")).map_err(io(&config_src))?;
    let bzimage = fs::read(entry.join("vmlinuz")).map_err(io(&entry))?;
    let vmlinux = image::extract_vmlinux(&bzimage);
    if let Some(elf) = &vmlinux {
        fs::write(entry.join("vmlinux"), elf).map_err(io(&entry))?;
    }
    let config =
        KernelConfig::parse(&fs::read_to_string(entry.join("config")).map_err(io(&entry))?);
    let manifest = Manifest {
        key: key.to_string(),
        package: package.to_string(),
        version: version.to_string(),
        release,
        image: "vmlinuz".into(),
        config: "config".into(),
        vmlinux: vmlinux.map(|_| "vmlinux".into()),
        sched_ext: config.is_builtin(SCHED_EXT),
    };
    let json = serde_json::to_string_pretty(&manifest).expect("a manifest always serialises");
    fs::write(entry.join(MANIFEST), json + "\n").map_err(io(&entry))?;
    Ok(entry)
}

/// A private apt configuration: its own sources list, package lists and download cache.
struct AptView {
    options: Vec<String>,
}

impl AptView {
    fn create(dir: &Path) -> Result<Self, FetchError> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| FetchError::Io { path, source })?;
        }
        let sources = dir.join("sources.list");
        fs::write(&sources, format!("deb {MIRROR} {SUITE} main\n"))
            .map_err(|source| FetchError::Io { path: sources.clone(), source })?;
        let mut options = vec![
            format!("Dir::Etc::sourcelist={}", sources.display()),
            "Dir::Etc::sourceparts=-".to_string(),
            format!("Dir::State::Lists={}", dir.join("lists").display()),
            format!("Dir::Cache={}", dir.join("cache").display()),
        ];
        // As root, apt drops to the `_apt` user for downloads, which cannot write our folders.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            options.push("APT::Sandbox::User=root".to_string());
        }
        Ok(AptView { options: options.into_iter().flat_map(|o| ["-o".to_string(), o]).collect() })
    }

    fn run(
        &self,
        tool: &'static str,
        args: &[&str],
        cwd: Option<&Path>,
    ) -> Result<String, FetchError> {
        let mut all: Vec<&std::ffi::OsStr> = self.options.iter().map(|o| o.as_ref()).collect();
        all.extend(args.iter().map(std::ffi::OsStr::new));
        run_tool(tool, &all, cwd)
    }

    /// The newest image package of the series and flavour, and its version.
    fn newest_image(&self, request: &FetchRequest) -> Result<(String, String), FetchError> {
        let series = request.series.replace('.', "\\.");
        let pattern = format!(
            "^linux-binary-unsigned-{series}\\.[0-9]+\\+deb[0-9]+{}$",
            request.flavour.suffix()
        );
        let found = self.run("apt-cache", &["search", "--names-only", &pattern], None)?;
        let package = found
            .lines()
            .filter_map(|l| l.split(" - ").next())
            .map(str::trim)
            .max_by_key(|name| version_key(name))
            .ok_or_else(|| FetchError::NoPackage { pattern: pattern.clone() })?
            .to_string();
        let shown = self.run("apt-cache", &["show", "--no-all-versions", &package], None)?;
        let version = shown
            .lines()
            .find_map(|l| l.strip_prefix("Version: "))
            .ok_or(FetchError::NoPackage { pattern })?
            .trim()
            .to_string();
        Ok((package, version))
    }
}

fn run_tool<S: AsRef<std::ffi::OsStr>>(
    tool: &'static str,
    args: &[S],
    cwd: Option<&Path>,
) -> Result<String, FetchError> {
    let mut command = Command::new(tool);
    command.args(args).env("LC_ALL", "C");
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    let output = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::MissingTool { tool },
        _ => FetchError::Command { command: tool.to_string(), detail: e.to_string() },
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let detail = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no error output")
            .to_string();
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .filter(|a| !a.starts_with("Dir::") && a != "-o")
            .collect();
        return Err(FetchError::Command { command: format!("{tool} {}", shown.join(" ")), detail });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours_tell_releases_apart() {
        assert!(Flavour::Cloud.matches("7.3.4+deb13-cloud-amd64"));
        assert!(!Flavour::Cloud.matches("7.3.4+deb13-amd64"));
        assert!(Flavour::Generic.matches("7.3.4+deb13-amd64"));
        assert!(!Flavour::Generic.matches("7.3.4+deb13-cloud-amd64"));
        assert!(!Flavour::Generic.matches("7.3.4+deb13-rt-amd64"));
    }

    #[test]
    fn a_cached_series_is_returned_without_apt() {
        let dir = tempfile::tempdir().unwrap();
        super::super::cache::tests::write_entry(
            dir.path(),
            "linux-binary-unsigned-7.3.4+deb13-cloud-amd64_1",
            "7.3.4+deb13-cloud-amd64",
        );
        let cache = KernelCache::new(dir.path());
        let entry = fetch(&cache, &FetchRequest::default()).unwrap();
        assert_eq!(entry.manifest.release, "7.3.4+deb13-cloud-amd64");
        assert!(!dir.path().join(".apt").exists(), "no apt view was set up");
    }

    #[test]
    fn unpack_builds_an_entry_from_extracted_packages() {
        let dir = tempfile::tempdir().unwrap();
        let modules = dir.path().join("root/usr/lib/modules/7.3.4-test");
        fs::create_dir_all(&modules).unwrap();
        fs::write(modules.join("vmlinuz.unsigned"), image::tests::fake_bzimage("7.3.4-test", b""))
            .unwrap();
        fs::write(modules.join("config"), "CONFIG_SCHED_CLASS_EXT=y\n").unwrap();
        let entry = unpack(dir.path(), "pkg_1", "pkg", "1").unwrap();
        let manifest: Manifest =
            serde_json::from_str(&fs::read_to_string(entry.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest.release, "7.3.4-test");
        assert!(manifest.sched_ext);
        assert_eq!(manifest.vmlinux, None, "the fake payload is not zstd");
        assert!(entry.join("vmlinuz").is_file() && entry.join("config").is_file());
    }
}
