//! Fetches a Debian kernel (trixie-backports 7.3, with sched_ext, by default) into the kernel
//! cache: `apt-get download` of its packages through a private apt view of one suite, `dpkg
//! -x`, vmlinux extraction, and a manifest.
//!
//! Debian names kernels two ways. From 7.x the image is split: `linux-binary-unsigned-<rel>`
//! holds `usr/lib/modules/<rel>/vmlinuz` and `linux-base-<rel>` its `config`. Before 7.x one
//! package, `linux-image-<rel>-unsigned`, holds `boot/vmlinuz-<rel>` and `boot/config-<rel>`
//! (trixie's 6.12, which has no sched_ext: the EEVDF-only kernel of ktstr's tests).
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
/// The default suite: trixie-backports carries the 7.x sched_ext kernels.
pub const SUITE: &str = "trixie-backports";

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "{tool} not found: fetching Debian kernels needs a Debian-based host with apt and dpkg"
    )]
    MissingTool { tool: &'static str },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{suite} has no package matching {pattern}; check the series and --suite")]
    NoPackage { suite: String, pattern: String },
    #[error("the downloaded packages hold no {what} under boot/ or usr/lib/modules/")]
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
    /// The Debian suite to look in, e.g. `trixie-backports` or `trixie`.
    pub suite: String,
    /// Ask apt for a newer package even if the cache has one for the series.
    pub refresh: bool,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            series: "7.3".into(),
            flavour: Flavour::Cloud,
            suite: SUITE.into(),
            refresh: false,
        }
    }
}

/// How Debian names a series' packages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// 7.x on: `linux-binary-unsigned-<rel>` plus `linux-base-<rel>`.
    Split,
    /// Before 7.x: `linux-image-<rel>-unsigned`.
    Single,
}

impl Naming {
    fn of(series: &str) -> Naming {
        let major: u64 = series.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        if major >= 7 { Naming::Split } else { Naming::Single }
    }

    /// The `apt-cache search --names-only` pattern of the series' image packages.
    fn pattern(self, series: &str, flavour: Flavour) -> String {
        let series = series.replace('.', "\\.");
        let release = format!("{series}\\.[0-9]+\\+deb[0-9]+{}", flavour.suffix());
        match self {
            Naming::Split => format!("^linux-binary-unsigned-{release}$"),
            Naming::Single => format!("^linux-image-{release}-unsigned$"),
        }
    }

    /// Every package to download for image package `package`.
    fn packages(self, package: &str) -> Vec<String> {
        match self {
            Naming::Split => vec![
                package.to_string(),
                package.replacen("linux-binary-unsigned-", "linux-base-", 1),
            ],
            Naming::Single => vec![package.to_string()],
        }
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
    let apt = AptView::create(&cache.dir().join(".apt").join(&request.suite), &request.suite)?;
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
    let specs: Vec<String> = Naming::of(&request.series)
        .packages(&package)
        .iter()
        .map(|p| format!("{p}={version}"))
        .collect();
    let mut args = vec!["-q", "download"];
    args.extend(specs.iter().map(String::as_str));
    apt.run("apt-get", &args, Some(work.path()))?;
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
    let (release, image_src, config_src) = find_kernel(&root)?;
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

/// The release, image and config in an unpacked package tree: `boot/vmlinuz-<rel>` with
/// `boot/config-<rel>` (pre-7.x packages), else `usr/lib/modules/<rel>/{vmlinuz,config}`.
fn find_kernel(root: &Path) -> Result<(String, PathBuf, PathBuf), FetchError> {
    let boot = root.join("boot");
    let in_boot = fs::read_dir(&boot).ok().into_iter().flatten().flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let release = name.strip_prefix("vmlinuz-")?.to_string();
        let config = boot.join(format!("config-{release}"));
        config.is_file().then(|| (release, e.path(), config))
    });
    if let Some(found) = in_boot {
        return Ok(found);
    }
    let modules = root.join("usr/lib/modules");
    let release_dir = fs::read_dir(&modules)
        .map_err(|source| FetchError::Io { path: modules.clone(), source })?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or(FetchError::Incomplete { what: "kernel release directory" })?;
    let release = release_dir.file_name().unwrap_or_default().to_string_lossy().into_owned();
    let image = ["vmlinuz", "vmlinuz.unsigned"]
        .iter()
        .map(|n| release_dir.join(n))
        .find(|p| p.is_file())
        .ok_or(FetchError::Incomplete { what: "vmlinuz" })?;
    let config = release_dir.join("config");
    if !config.is_file() {
        return Err(FetchError::Incomplete { what: "config" });
    }
    Ok((release, image, config))
}

/// A private apt configuration: its own sources list, package lists and download cache.
struct AptView {
    suite: String,
    options: Vec<String>,
}

impl AptView {
    fn create(dir: &Path, suite: &str) -> Result<Self, FetchError> {
        for sub in ["lists/partial", "cache/archives/partial"] {
            let path = dir.join(sub);
            fs::create_dir_all(&path).map_err(|source| FetchError::Io { path, source })?;
        }
        let sources = dir.join("sources.list");
        fs::write(&sources, format!("deb {MIRROR} {suite} main\n"))
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
        let options = options.into_iter().flat_map(|o| ["-o".to_string(), o]).collect();
        Ok(AptView { suite: suite.to_string(), options })
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

    fn no_package(&self, pattern: &str) -> FetchError {
        FetchError::NoPackage { suite: self.suite.clone(), pattern: pattern.to_string() }
    }

    /// The newest image package of the series and flavour, and its version.
    fn newest_image(&self, request: &FetchRequest) -> Result<(String, String), FetchError> {
        let pattern = Naming::of(&request.series).pattern(&request.series, request.flavour);
        let found = self.run("apt-cache", &["search", "--names-only", &pattern], None)?;
        let package = found
            .lines()
            .filter_map(|l| l.split(" - ").next())
            .map(str::trim)
            .max_by_key(|name| version_key(name))
            .ok_or_else(|| self.no_package(&pattern))?
            .to_string();
        let shown = self.run("apt-cache", &["show", "--no-all-versions", &package], None)?;
        let version = shown
            .lines()
            .find_map(|l| l.strip_prefix("Version: "))
            .ok_or_else(|| self.no_package(&pattern))?
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
    fn series_before_7_use_the_single_image_package() {
        assert_eq!(Naming::of("7.3"), Naming::Split);
        assert_eq!(Naming::of("6.12"), Naming::Single);
        let single = Naming::Single.pattern("6.12", Flavour::Cloud);
        assert_eq!(single, "^linux-image-6\\.12\\.[0-9]+\\+deb[0-9]+-cloud-amd64-unsigned$");
        assert_eq!(
            Naming::Split.pattern("7.3", Flavour::Cloud),
            "^linux-binary-unsigned-7\\.3\\.[0-9]+\\+deb[0-9]+-cloud-amd64$"
        );
        assert_eq!(
            Naming::Split.packages("linux-binary-unsigned-7.3.4+deb13-cloud-amd64"),
            ["linux-binary-unsigned-7.3.4+deb13-cloud-amd64", "linux-base-7.3.4+deb13-cloud-amd64"]
        );
        assert_eq!(Naming::Single.packages("p"), ["p"]);
    }

    #[test]
    fn unpack_finds_a_pre_7_image_in_boot() {
        let dir = tempfile::tempdir().unwrap();
        let boot = dir.path().join("root/boot");
        fs::create_dir_all(&boot).unwrap();
        fs::create_dir_all(
            dir.path().join("root/usr/lib/modules/6.12.57+deb13-cloud-amd64/kernel"),
        )
        .unwrap();
        let release = "6.12.57+deb13-cloud-amd64";
        fs::write(
            boot.join(format!("vmlinuz-{release}")),
            image::tests::fake_bzimage(release, b""),
        )
        .unwrap();
        fs::write(boot.join(format!("config-{release}")), "# CONFIG_SCHED_CLASS_EXT is not set\n")
            .unwrap();
        let entry = unpack(dir.path(), "pkg_1", "pkg", "1").unwrap();
        let manifest: Manifest =
            serde_json::from_str(&fs::read_to_string(entry.join(MANIFEST)).unwrap()).unwrap();
        assert_eq!(manifest.release, release);
        assert!(!manifest.sched_ext);
        assert!(entry.join("vmlinuz").is_file() && entry.join("config").is_file());
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
