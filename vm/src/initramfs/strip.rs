//! Drops everything an executable does not need at run time (debug info, symbol tables,
//! section headers) by cutting the file after its last program segment, as `sstrip` does.
//!
//! A debug build of a Rust binary is mostly DWARF: 15 MB where 2 MB run. Under TCG every
//! megabyte of initramfs costs boot time, so binaries are packed cut. The loader only reads
//! program headers, so the cut binary runs the same; files that are not 64-bit little-endian
//! ELF are returned unchanged.

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

fn cut_len(elf: &[u8]) -> Option<usize> {
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
    (end <= elf.len() && end >= 0x40 && phnum > 0).then_some(end)
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
    fn non_elf_files_are_untouched() {
        assert_eq!(strip_unloaded(b"#!/bin/sh\n"), b"#!/bin/sh\n");
        let mut truncated = std::fs::read("/bin/true").unwrap();
        truncated.truncate(100);
        assert_eq!(strip_unloaded(&truncated), truncated);
    }
}
