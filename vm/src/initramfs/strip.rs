//! Drops everything an executable does not need at run time (debug info, symbol tables,
//! section headers) by cutting the file after its last program segment, as `sstrip` does.
//!
//! A debug build of a Rust binary is mostly DWARF: 15 MB where 2 MB run. Under TCG every
//! megabyte of initramfs costs boot time, so binaries are packed cut. The loader only reads
//! program headers, so the cut binary runs the same; files that are not 64-bit little-endian
//! ELF are returned unchanged.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

const SHOFF: usize = 0x28;
const SHENTSIZE: usize = 0x3a;

/// `elf` without its non-loaded tail; unchanged if it is not an ELF64 LE file or the headers
/// do not add up.
pub fn strip_unloaded(elf: &[u8]) -> Vec<u8> {
    cut_len(elf).map_or_else(
        || elf.to_vec(),
        |len| {
            let mut out = elf[..len].to_vec();
            // No section headers any more: e_shoff, then e_shentsize/e_shnum/e_shstrndx.
            out[SHOFF..SHOFF + 8].fill(0);
            out[SHENTSIZE..SHENTSIZE + 6].fill(0);
            out
        },
    )
}

/// Reads `path` already cut, without reading the tail it drops (most of a debug binary).
pub fn read_stripped(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    let file_len = file.metadata()?.len() as usize;
    let mut head = Vec::new();
    (&mut file).take(0x40).read_to_end(&mut head)?;
    let headers_end = program_headers_end(&head);
    if let Some(end) = headers_end {
        (&mut file).take(end.saturating_sub(head.len()) as u64).read_to_end(&mut head)?;
    }
    match headers_end.and_then(|_| cut_len_with(&head, file_len)) {
        Some(len) => {
            (&mut file).take(len.saturating_sub(head.len()) as u64).read_to_end(&mut head)?;
            Ok(strip_unloaded(&head))
        }
        None => {
            file.read_to_end(&mut head)?;
            Ok(head)
        }
    }
}

fn program_headers_end(elf: &[u8]) -> Option<usize> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = u64::from_le_bytes(elf.get(0x20..0x28)?.try_into().ok()?) as usize;
    let phentsize = u16::from_le_bytes(elf.get(0x36..0x38)?.try_into().ok()?) as usize;
    let phnum = u16::from_le_bytes(elf.get(0x38..0x3a)?.try_into().ok()?) as usize;
    phoff.checked_add(phentsize.checked_mul(phnum)?)
}

fn cut_len(elf: &[u8]) -> Option<usize> {
    cut_len_with(elf, elf.len())
}

/// The cut length of a file of `file_len` bytes whose ELF and program headers are in `elf`.
fn cut_len_with(elf: &[u8], file_len: usize) -> Option<usize> {
    if elf.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at =
        |at: usize| Some(u16::from_le_bytes(elf.get(at..at + 2)?.try_into().ok()?) as usize);
    let u64_at =
        |at: usize| Some(u64::from_le_bytes(elf.get(at..at + 8)?.try_into().ok()?) as usize);
    let (phoff, phentsize, phnum) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    let mut end = phoff.checked_add(phentsize.checked_mul(phnum)?)?;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        end = end.max(u64_at(ph + 8)?.checked_add(u64_at(ph + 0x20)?)?);
    }
    (end <= file_len && end >= 0x40 && phnum > 0).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_cut_binary_is_smaller_and_still_runs() {
        let original = std::fs::read("/bin/ls").unwrap();
        let cut = strip_unloaded(&original);
        assert!(cut.len() < original.len(), "{} -> {}", original.len(), cut.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut");
        std::fs::write(&path, &cut).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let output = Command::new(&path).arg("-d").arg("/").output().unwrap();
        assert!(output.status.success(), "{output:?}");
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "/");
    }

    #[test]
    fn reading_cut_equals_cutting_what_was_read() {
        for path in ["/bin/ls", "/bin/sh", "/etc/hostname", "/etc/os-release"] {
            let path = Path::new(path);
            if path.exists() {
                assert_eq!(
                    read_stripped(path).unwrap(),
                    strip_unloaded(&std::fs::read(path).unwrap()),
                    "{path:?}"
                );
            }
        }
    }

    #[test]
    fn non_elf_files_are_untouched() {
        assert_eq!(strip_unloaded(b"#!/bin/sh\n"), b"#!/bin/sh\n");
        let mut truncated = std::fs::read("/bin/true").unwrap();
        truncated.truncate(100);
        assert_eq!(strip_unloaded(&truncated), truncated);
    }
}
