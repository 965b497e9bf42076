//! Finds the shared libraries (and the dynamic loader) a binary needs at run time, so the guest
//! can run it from an initramfs that holds nothing else.
//!
//! It asks the host's `ldd`, which resolves DT_NEEDED transitively the way the loader will,
//! including the interpreter path. A static binary needs nothing. A library `ldd` cannot find is
//! an error naming it: the guest would fail with a less helpful message.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum LibsError {
    #[error("cannot run ldd on {binary}: {source}; install libc-bin")]
    Ldd { binary: PathBuf, source: std::io::Error },
    #[error("{binary} needs {library}, which ldd cannot find on this host")]
    NotFound { binary: PathBuf, library: String },
    #[error("ldd failed on {binary}: {stderr}")]
    Failed { binary: PathBuf, stderr: String },
}

/// The absolute paths of everything `binary` loads, in `ldd`'s order; empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, LibsError> {
    let output = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(|source| LibsError::Ldd { binary: binary.to_path_buf(), source })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if is_static(&stdout) || is_static(&stderr) {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(LibsError::Failed {
            binary: binary.to_path_buf(),
            stderr: stderr.trim().to_string(),
        });
    }
    parse_ldd(&stdout)
        .map_err(|library| LibsError::NotFound { binary: binary.to_path_buf(), library })
}

fn is_static(text: &str) -> bool {
    text.contains("not a dynamic executable") || text.contains("statically linked")
}

/// Paths from `ldd` output; `Err(name)` for the first library marked "not found".
fn parse_ldd(stdout: &str) -> Result<Vec<PathBuf>, String> {
    let mut paths = Vec::new();
    for line in stdout.lines().map(str::trim) {
        let path = match line.split_once(" => ") {
            Some((name, rest)) if rest.starts_with("not found") => return Err(name.to_string()),
            Some((_, rest)) => rest.split_whitespace().next(),
            // The loader, or the vDSO (which has no path).
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            let path = PathBuf::from(path);
            if !paths.contains(&path) {
                paths.push(path);
            }
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libraries_and_the_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd1c9f5000)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f0c1a2e0000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0c1a0ff000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f0c1a3a3000)\n";
        assert_eq!(
            parse_ldd(out).unwrap(),
            [
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ]
        );
    }

    #[test]
    fn a_missing_library_is_named() {
        let out =
            "\tlibelf.so.1 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n";
        assert_eq!(parse_ldd(out).unwrap_err(), "libelf.so.1");
    }

    #[test]
    fn a_real_dynamic_binary_needs_libc_and_the_loader() {
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("libc.so")), "{libs:?}");
        assert!(libs.iter().any(|p| p.to_string_lossy().contains("ld-linux")), "{libs:?}");
    }
}
