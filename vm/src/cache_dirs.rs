//! Where ktstr-vm keeps what it downloads and builds: `$XDG_CACHE_HOME/ktstr` (or
//! `~/.cache/ktstr`), with `kernels/` (overridable by `KTSTR_CACHE_DIR`), `initramfs/` and
//! `vmlinux/` below it. Callers may pass other directories; these are only the defaults.

use std::path::PathBuf;

/// Environment variable that replaces the kernel cache directory.
pub const KERNEL_CACHE_ENV: &str = "KTSTR_CACHE_DIR";

/// `$XDG_CACHE_HOME/ktstr`, else `$HOME/.cache/ktstr`, else a folder in the temp directory.
pub fn cache_root() -> PathBuf {
    let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return xdg.join("ktstr");
    }
    match non_empty("HOME") {
        Some(home) => home.join(".cache/ktstr"),
        None => std::env::temp_dir().join("ktstr-cache"),
    }
}

/// The kernel cache: `$KTSTR_CACHE_DIR`, else `<cache root>/kernels`.
pub fn kernel_cache_dir() -> PathBuf {
    match std::env::var_os(KERNEL_CACHE_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => cache_root().join("kernels"),
    }
}

/// Built initramfs archives, named by content hash.
pub fn initramfs_cache_dir() -> PathBuf {
    cache_root().join("initramfs")
}

/// vmlinux files extracted from bzImages given by path, named by the bzImage's hash.
pub fn vmlinux_cache_dir() -> PathBuf {
    cache_root().join("vmlinux")
}
