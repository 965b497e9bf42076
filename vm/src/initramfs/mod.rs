//! Builds the guest's initramfs: a given binary as `/init`, the shared libraries and loader it
//! needs, extra files, and the kernel config at `/boot/config-<release>` (libbpf reads it when
//! the kernel has no IKCONFIG). Archives are cached by the hash of their content, so building
//! the same inputs again costs one read of the inputs and no write.
//!
//! This module owns what goes into the archive and the cache of archives; the byte format is
//! [`newc`], library discovery is [`libs`], and [`strip`] cuts the debug info off the binaries
//! placed with [`InitramfsBuilder::binary`] (a debug Rust binary is mostly DWARF).

pub mod libs;
pub mod newc;
pub mod strip;

use newc::{Entry, EntryKind};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    #[error("cannot read {path} for the initramfs: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Libs(#[from] libs::LibsError),
    #[error("cannot write the initramfs cache at {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("guest path '{0}' must be absolute and plain (no '..', no trailing '/')")]
    BadGuestPath(String),
}

/// A host file to place at a guest path.
#[derive(Debug, Clone)]
struct Placement {
    guest: String,
    host: PathBuf,
    perm: u32,
}

/// Describes an initramfs; [`InitramfsBuilder::build`] writes it (or finds it in the cache).
#[derive(Debug, Clone)]
pub struct InitramfsBuilder {
    binaries: Vec<Placement>,
    files: Vec<Placement>,
}

/// Directories every guest gets, so mount points and `/dev/console` exist before devtmpfs.
const BASE_DIRS: [&str; 6] = ["dev", "proc", "sys", "tmp", "run", "boot"];

impl InitramfsBuilder {
    /// An initramfs whose `/init` is `init` (with its shared libraries).
    pub fn new(init: impl Into<PathBuf>) -> Self {
        InitramfsBuilder { binaries: Vec::new(), files: Vec::new() }.binary("/init", init)
    }

    /// Adds an executable at `guest_path`, with the libraries it needs.
    pub fn binary(mut self, guest_path: &str, host: impl Into<PathBuf>) -> Self {
        self.binaries.push(Placement {
            guest: guest_path.to_string(),
            host: host.into(),
            perm: 0o755,
        });
        self
    }

    /// Adds a plain file at `guest_path`.
    pub fn file(mut self, guest_path: &str, host: impl Into<PathBuf>) -> Self {
        self.files.push(Placement {
            guest: guest_path.to_string(),
            host: host.into(),
            perm: 0o644,
        });
        self
    }

    /// Adds the kernel config where libbpf looks for it: `/boot/config-<release>`.
    pub fn kernel_config(self, release: &str, config: impl Into<PathBuf>) -> Self {
        self.file(&format!("/boot/config-{release}"), config)
    }

    /// Every archive entry, directories first, in a stable order.
    pub fn entries(&self) -> Result<Vec<Entry>, InitramfsError> {
        let mut placements = self.binaries.clone();
        for binary in &self.binaries {
            for lib in libs::shared_libraries(&binary.host)? {
                let guest = lib.to_string_lossy().into_owned();
                if !placements.iter().any(|p| p.guest == guest) {
                    placements.push(Placement { guest, host: lib, perm: 0o755 });
                }
            }
        }
        placements.extend(self.files.iter().cloned());
        let mut dirs: BTreeSet<String> = BASE_DIRS.iter().map(|d| d.to_string()).collect();
        let mut files = Vec::new();
        for p in &placements {
            let path = archive_path(&p.guest)?;
            let mut parent = Path::new(&path).parent();
            while let Some(dir) = parent.filter(|d| !d.as_os_str().is_empty()) {
                dirs.insert(dir.to_string_lossy().into_owned());
                parent = dir.parent();
            }
            let read = if self.binaries.iter().any(|b| b.guest == p.guest) {
                strip::read_stripped
            } else {
                read_file
            };
            let data = read(&p.host)
                .map_err(|source| InitramfsError::Read { path: p.host.clone(), source })?;
            files.push(Entry { path, perm: p.perm, kind: EntryKind::File(data) });
        }
        let mut entries: Vec<Entry> = dirs
            .into_iter()
            .map(|path| Entry { path, perm: 0o755, kind: EntryKind::Dir })
            .collect();
        entries.push(Entry {
            path: "dev/console".into(),
            perm: 0o600,
            kind: EntryKind::CharDevice(5, 1),
        });
        entries.extend(files);
        Ok(entries)
    }

    /// The archive's path in `cache_dir`, writing it only if no archive with the same content
    /// is there yet.
    pub fn build(&self, cache_dir: &Path) -> Result<PathBuf, InitramfsError> {
        let mut bytes = Vec::new();
        newc::write_archive(&mut bytes, &self.entries()?).expect("writing to memory cannot fail");
        let hash = blake3::hash(&bytes).to_hex();
        let path = cache_dir.join(format!("{}.cpio", &hash[..32]));
        if path.exists() {
            return Ok(path);
        }
        let write_err = |source| InitramfsError::Write { path: path.clone(), source };
        fs::create_dir_all(cache_dir).map_err(write_err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(cache_dir).map_err(write_err)?;
        io::Write::write_all(&mut tmp, &bytes).map_err(write_err)?;
        // A concurrent builder may have won the race; its archive has the same bytes.
        let file = tmp.persist(&path).map_err(|e| write_err(e.error))?;
        file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .map_err(write_err)?;
        Ok(path)
    }
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    fs::read(path)
}

/// `/a/b` → `a/b`, refusing paths the kernel would place somewhere surprising.
fn archive_path(guest: &str) -> Result<String, InitramfsError> {
    let bad = || InitramfsError::BadGuestPath(guest.to_string());
    let rel = guest.strip_prefix('/').ok_or_else(bad)?;
    if rel.is_empty()
        || rel.ends_with('/')
        || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad());
    }
    Ok(rel.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(entries: &'a [Entry], path: &str) -> Option<&'a Entry> {
        entries.iter().find(|e| e.path == path)
    }

    #[test]
    fn holds_init_its_libraries_files_and_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config");
        fs::write(&config, "CONFIG_SCHED_CLASS_EXT=y\n").unwrap();
        let builder = InitramfsBuilder::new("/bin/sh")
            .kernel_config("7.3.4-test", &config)
            .file("/etc/extra/data.json", &config);
        let cache = dir.path().join("cache");
        let path = builder.build(&cache).unwrap();
        let entries = newc::read_archive(&fs::read(&path).unwrap()).unwrap();
        let init = find(&entries, "init").expect("init");
        assert_eq!(init.perm, 0o755);
        assert_eq!(
            init.kind,
            EntryKind::File(strip::strip_unloaded(&fs::read("/bin/sh").unwrap()))
        );
        assert!(entries.iter().any(|e| e.path.contains("libc.so")), "libc is packed");
        assert!(entries.iter().any(|e| e.path.contains("ld-linux")), "the loader is packed");
        assert!(find(&entries, "boot/config-7.3.4-test").is_some());
        assert_eq!(find(&entries, "etc/extra").unwrap().kind, EntryKind::Dir);
        assert_eq!(find(&entries, "dev/console").unwrap().kind, EntryKind::CharDevice(5, 1));
        let dirs_end = entries.iter().rposition(|e| e.kind == EntryKind::Dir).unwrap();
        let files_start =
            entries.iter().position(|e| matches!(e.kind, EntryKind::File(_))).unwrap();
        assert!(dirs_end < files_start, "directories come before the files in them");
    }

    #[test]
    fn same_content_hits_the_cache_and_new_content_misses() {
        let dir = tempfile::tempdir().unwrap();
        let extra = dir.path().join("extra");
        fs::write(&extra, "one").unwrap();
        let cache = dir.path().join("cache");
        let builder = InitramfsBuilder::new("/bin/sh").file("/extra", &extra);
        let first = builder.build(&cache).unwrap();
        let mtime = fs::metadata(&first).unwrap().modified().unwrap();
        assert_eq!(builder.build(&cache).unwrap(), first);
        assert_eq!(
            fs::metadata(&first).unwrap().modified().unwrap(),
            mtime,
            "a hit does not rewrite"
        );
        fs::write(&extra, "two").unwrap();
        assert_ne!(builder.build(&cache).unwrap(), first);
    }

    #[test]
    fn bad_inputs_are_named() {
        let err = InitramfsBuilder::new("/no/such/binary").entries().unwrap_err().to_string();
        assert!(err.contains("/no/such/binary"), "{err}");
        for bad in ["relative", "/a/../b", "/", "/a/"] {
            let err = InitramfsBuilder::new("/bin/sh").file(bad, "/bin/sh").entries().unwrap_err();
            assert!(matches!(err, InitramfsError::BadGuestPath(_)), "{bad}");
        }
    }
}
