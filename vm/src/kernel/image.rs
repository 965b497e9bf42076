//! Recognises x86 kernel images and turns a bzImage into the uncompressed `vmlinux` that QEMU
//! can boot through the PVH entry point.
//!
//! A bzImage carries its release string and the offset of its compressed payload in the boot
//! protocol header. Booting the payload directly skips the decompressor, which under TCG costs
//! seconds of emulated work; QEMU only accepts an ELF that carries the PVH entry note
//! (`XEN_ELFNOTE_PHYS32_ENTRY`), so an image without one is booted as a bzImage instead.

use std::path::{Path, PathBuf};

const SETUP_SECTS: usize = 0x1f1;
const BOOT_FLAG: usize = 0x1fe;
const HEADER_MAGIC: usize = 0x202;
const KERNEL_VERSION: usize = 0x20e;
const PAYLOAD_OFFSET: usize = 0x248;
const PAYLOAD_LENGTH: usize = 0x24c;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Whether `bytes` start like an x86 boot-protocol kernel image (bzImage / vmlinuz).
pub fn is_bzimage(bytes: &[u8]) -> bool {
    bytes.get(BOOT_FLAG..BOOT_FLAG + 2) == Some(&[0x55, 0xaa])
        && bytes.get(HEADER_MAGIC..HEADER_MAGIC + 4) == Some(b"HdrS")
}

/// The release (`uname -r`) the image reports in its header, e.g. `7.3.4+deb13-cloud-amd64`.
pub fn bzimage_release(bytes: &[u8]) -> Option<String> {
    let at = usize::from(u16_at(bytes, KERNEL_VERSION)?).checked_add(0x200)?;
    let text = bytes.get(at..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let release = std::str::from_utf8(&text[..end]).ok()?;
    (!release.is_empty()).then(|| release.to_string())
}

/// Decompresses a zstd-compressed bzImage payload into a PVH-bootable vmlinux; `None` when the
/// payload uses another compressor or the result has no PVH entry.
pub fn extract_vmlinux(bzimage: &[u8]) -> Option<Vec<u8>> {
    let setup_sects = match *bzimage.get(SETUP_SECTS)? {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(bzimage, PAYLOAD_OFFSET)? as usize;
    let payload = bzimage.get(start..start + u32_at(bzimage, PAYLOAD_LENGTH)? as usize)?;
    if payload.get(..4)? != ZSTD_MAGIC {
        return None;
    }
    // The kernel appends the decompressed size after the zstd frame; read one frame only.
    let mut decoder = zstd::stream::read::Decoder::new(payload).ok()?.single_frame();
    let mut vmlinux = Vec::new();
    std::io::Read::read_to_end(&mut decoder, &mut vmlinux).ok()?;
    has_pvh_note(&vmlinux).then_some(vmlinux)
}

/// Whether `elf` is a 64-bit ELF with a Xen PVH entry note in a PT_NOTE segment.
pub fn has_pvh_note(elf: &[u8]) -> bool {
    pvh_note(elf).unwrap_or(false)
}

fn pvh_note(elf: &[u8]) -> Option<bool> {
    if elf.get(..5)? != b"\x7fELF\x02" {
        return Some(false);
    }
    let (phoff, phentsize, phnum) =
        (u64_at(elf, 0x20)? as usize, usize::from(u16_at(elf, 0x36)?), u16_at(elf, 0x38)?);
    for i in 0..usize::from(phnum) {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != 4 {
            continue; // not PT_NOTE
        }
        let (offset, size) = (u64_at(elf, ph + 8)? as usize, u64_at(elf, ph + 0x20)? as usize);
        let notes = elf.get(offset..offset + size)?;
        let mut pos = 0;
        while pos + 12 <= notes.len() {
            let (namesz, descsz, kind) = (
                u32_at(notes, pos)? as usize,
                u32_at(notes, pos + 4)? as usize,
                u32_at(notes, pos + 8)?,
            );
            let name = notes.get(pos + 12..pos + 12 + namesz)?;
            if name.starts_with(b"Xen") && kind == XEN_ELFNOTE_PHYS32_ENTRY {
                return Some(true);
            }
            pos += 12 + namesz.div_ceil(4) * 4 + descsz.div_ceil(4) * 4;
        }
    }
    Some(false)
}

/// The PVH vmlinux for the bzImage `bzimage`, extracted once into `cache_dir` (named by the
/// image's content hash); `None` if the image cannot be booted that way.
pub fn cached_vmlinux(bzimage: &[u8], cache_dir: &Path) -> std::io::Result<Option<PathBuf>> {
    let hash = blake3::hash(bzimage).to_hex();
    let path = cache_dir.join(format!("{}.vmlinux", &hash[..32]));
    if path.exists() {
        return Ok(Some(path));
    }
    let Some(vmlinux) = extract_vmlinux(bzimage) else {
        return Ok(None);
    };
    std::fs::create_dir_all(cache_dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(cache_dir)?;
    std::io::Write::write_all(&mut tmp, &vmlinux)?;
    tmp.persist(&path).map_err(|e| e.error)?;
    Ok(Some(path))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 with one PT_NOTE segment holding one note.
    fn elf_with_note(name: &[u8], kind: u32) -> Vec<u8> {
        let mut elf = vec![0u8; 0x40 + 0x38];
        elf[..5].copy_from_slice(b"\x7fELF\x02");
        elf[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
        elf[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
        elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        let mut note = Vec::new();
        note.extend((name.len() as u32).to_le_bytes());
        note.extend(4u32.to_le_bytes());
        note.extend(kind.to_le_bytes());
        note.extend(name);
        note.resize(note.len().div_ceil(4) * 4, 0);
        note.extend([1, 2, 3, 4]);
        let ph = 0x40;
        elf[ph..ph + 4].copy_from_slice(&4u32.to_le_bytes());
        let note_offset = elf.len() as u64;
        elf[ph + 8..ph + 16].copy_from_slice(&note_offset.to_le_bytes());
        elf[ph + 0x20..ph + 0x28].copy_from_slice(&(note.len() as u64).to_le_bytes());
        elf.extend(note);
        elf
    }

    /// A fake bzImage: boot header, release string, and `payload` as the compressed kernel.
    pub(crate) fn fake_bzimage(release: &str, payload: &[u8]) -> Vec<u8> {
        let mut image = vec![0u8; 0x1000];
        image[SETUP_SECTS] = 1;
        image[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&[0x55, 0xaa]);
        image[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
        image[KERNEL_VERSION..KERNEL_VERSION + 2].copy_from_slice(&0x300u16.to_le_bytes());
        let version = format!("{release} (builder@host) #1 SMP\0");
        image[0x500..0x500 + version.len()].copy_from_slice(version.as_bytes());
        // Payload right after the 2 setup sectors (protected-mode code starts at 0x400).
        let offset = image.len() - 0x400;
        image[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&(offset as u32).to_le_bytes());
        image[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4]
            .copy_from_slice(&(payload.len() as u32 + 4).to_le_bytes());
        image.extend(payload);
        image.extend(1234u32.to_le_bytes()); // the size trailer the kernel build appends
        image
    }

    #[test]
    fn recognises_a_bzimage_and_its_release() {
        let image = fake_bzimage("7.3.4+deb13-cloud-amd64", b"");
        assert!(is_bzimage(&image));
        assert_eq!(bzimage_release(&image).as_deref(), Some("7.3.4+deb13-cloud-amd64"));
        assert!(!is_bzimage(b"#!/bin/sh\necho not a kernel\n"));
        assert!(!is_bzimage(&[]));
    }

    #[test]
    fn extracts_a_pvh_vmlinux_from_a_zstd_payload() {
        let vmlinux = elf_with_note(b"Xen\0", XEN_ELFNOTE_PHYS32_ENTRY);
        let image = fake_bzimage("1.2.3", &zstd::encode_all(&vmlinux[..], 3).unwrap());
        assert_eq!(extract_vmlinux(&image), Some(vmlinux));
        let dir = tempfile::tempdir().unwrap();
        let path = cached_vmlinux(&image, dir.path()).unwrap().unwrap();
        assert!(has_pvh_note(&std::fs::read(&path).unwrap()));
        assert_eq!(cached_vmlinux(&image, dir.path()).unwrap(), Some(path));
    }

    #[test]
    fn no_pvh_note_or_other_compression_means_no_vmlinux() {
        let plain = elf_with_note(b"GNU\0", 3);
        assert!(!has_pvh_note(&plain));
        assert_eq!(
            extract_vmlinux(&fake_bzimage("1", &zstd::encode_all(&plain[..], 3).unwrap())),
            None
        );
        assert_eq!(extract_vmlinux(&fake_bzimage("1", b"\x1f\x8bgzip data")), None);
    }
}
