//! The cpio "newc" archive format the kernel unpacks as its initramfs: a writer, and a reader
//! used to check archives.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields), the
//! NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes; `TRAILER!!!` ends the
//! archive. Archives are written uncompressed: the kernel unpacks those fastest, and
//! uncompressed archives can be concatenated (a base followed by an overlay).

use std::io::{self, Write};

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";
const HEADER_LEN: usize = 110;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    /// A character device node with its major and minor numbers.
    CharDevice(u32, u32),
}

/// One archive member. `path` has no leading `/`, as the kernel expects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    /// Permission bits only; the file type comes from `kind`.
    pub perm: u32,
    pub kind: EntryKind,
}

impl Entry {
    fn mode(&self) -> u32 {
        let file_type = match self.kind {
            EntryKind::Dir => 0o040000,
            EntryKind::File(_) => 0o100000,
            EntryKind::Symlink(_) => 0o120000,
            EntryKind::CharDevice(..) => 0o020000,
        };
        file_type | (self.perm & 0o7777)
    }

    fn data(&self) -> &[u8] {
        match &self.kind {
            EntryKind::File(data) => data,
            EntryKind::Symlink(target) => target.as_bytes(),
            EntryKind::Dir | EntryKind::CharDevice(..) => &[],
        }
    }
}

/// Writes `entries` and the trailer. Inode numbers are assigned in order; times are zero so the
/// same entries always give the same bytes.
pub fn write_archive(out: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    let mut offset = 0usize;
    for (index, entry) in entries.iter().enumerate() {
        let (rmajor, rminor) = match entry.kind {
            EntryKind::CharDevice(major, minor) => (major, minor),
            _ => (0, 0),
        };
        let nlink = if matches!(entry.kind, EntryKind::Dir) { 2 } else { 1 };
        let ino = index as u32 + 1;
        write_entry(
            out,
            &mut offset,
            &entry.path,
            [ino, entry.mode(), nlink, rmajor, rminor],
            entry.data(),
        )?;
    }
    write_entry(out, &mut offset, TRAILER, [0, 0, 1, 0, 0], &[])
}

fn write_entry(
    out: &mut impl Write,
    offset: &mut usize,
    name: &str,
    [ino, mode, nlink, rmajor, rminor]: [u32; 5],
    data: &[u8],
) -> io::Result<()> {
    let name_len = name.len() + 1;
    let fields =
        [ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, rmajor, rminor, name_len as u32, 0];
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    for field in fields {
        header.extend_from_slice(format!("{field:08x}").as_bytes());
    }
    out.write_all(&header)?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    *offset += HEADER_LEN + name_len;
    pad(out, offset)?;
    out.write_all(data)?;
    *offset += data.len();
    pad(out, offset)
}

fn pad(out: &mut impl Write, offset: &mut usize) -> io::Result<()> {
    let padding = (4 - *offset % 4) % 4;
    out.write_all(&[0; 3][..padding])?;
    *offset += padding;
    Ok(())
}

/// Reads every entry of one or more concatenated archives (each ending in a trailer).
pub fn read_archive(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if bytes[pos..].iter().all(|&b| b == 0) {
            break;
        }
        let header =
            bytes.get(pos..pos + HEADER_LEN).ok_or(format!("truncated header at {pos}"))?;
        if &header[..6] != MAGIC {
            return Err(format!("bad magic at {pos}"));
        }
        let field = |i: usize| -> Result<u32, String> {
            let text =
                std::str::from_utf8(&header[6 + i * 8..14 + i * 8]).map_err(|e| e.to_string())?;
            u32::from_str_radix(text, 16).map_err(|e| format!("field {i} at {pos}: {e}"))
        };
        let (mode, size, rmajor, rminor, name_len) =
            (field(1)?, field(6)? as usize, field(9)?, field(10)?, field(11)? as usize);
        let name_start = pos + HEADER_LEN;
        let name_bytes =
            bytes.get(name_start..name_start + name_len - 1).ok_or("truncated name")?;
        let name = String::from_utf8(name_bytes.to_vec()).map_err(|e| e.to_string())?;
        let data_start = align4(name_start + name_len);
        let data =
            bytes.get(data_start..data_start + size).ok_or(format!("truncated data of {name}"))?;
        pos = align4(data_start + size);
        if name == TRAILER {
            continue;
        }
        let kind = match mode & 0o170000 {
            0o040000 => EntryKind::Dir,
            0o100000 => EntryKind::File(data.to_vec()),
            0o120000 => EntryKind::Symlink(String::from_utf8_lossy(data).into_owned()),
            0o020000 => EntryKind::CharDevice(rmajor, rminor),
            other => return Err(format!("{name}: unsupported file type {other:o}")),
        };
        entries.push(Entry { path: name, perm: mode & 0o7777, kind });
    }
    Ok(entries)
}

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry { path: "dev".into(), perm: 0o755, kind: EntryKind::Dir },
            Entry { path: "dev/console".into(), perm: 0o600, kind: EntryKind::CharDevice(5, 1) },
            Entry {
                path: "init".into(),
                perm: 0o755,
                kind: EntryKind::File(b"\x7fELF and some bytes".to_vec()),
            },
            Entry { path: "lib64".into(), perm: 0o777, kind: EntryKind::Symlink("lib".into()) },
            Entry { path: "empty".into(), perm: 0o644, kind: EntryKind::File(Vec::new()) },
        ]
    }

    #[test]
    fn written_archives_read_back_entry_for_entry() {
        let mut bytes = Vec::new();
        write_archive(&mut bytes, &sample()).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(read_archive(&bytes).unwrap(), sample());
    }

    #[test]
    fn header_fields_are_what_the_kernel_reads() {
        let mut bytes = Vec::new();
        let entries =
            [Entry { path: "init".into(), perm: 0o755, kind: EntryKind::File(b"abc".to_vec()) }];
        write_archive(&mut bytes, &entries).unwrap();
        let header = std::str::from_utf8(&bytes[..HEADER_LEN]).unwrap();
        assert_eq!(&header[..6], "070701");
        assert_eq!(&header[14..22], "000081ed", "mode: regular file 0755");
        assert_eq!(&header[54..62], "00000003", "file size");
        assert_eq!(&header[94..102], "00000005", "name size counts the NUL");
        assert_eq!(&bytes[HEADER_LEN..HEADER_LEN + 5], b"init\0");
        // Header + name = 115 bytes, padded to 116, then the data.
        assert_eq!(&bytes[116..119], b"abc");
        let tail = String::from_utf8_lossy(&bytes[bytes.len() - 16..]).into_owned();
        assert!(tail.contains("TRAILER!!!"), "{tail}");
    }

    #[test]
    fn concatenated_archives_read_as_one() {
        let mut bytes = Vec::new();
        write_archive(&mut bytes, &sample()[..2]).unwrap();
        write_archive(&mut bytes, &sample()[2..]).unwrap();
        assert_eq!(read_archive(&bytes).unwrap(), sample());
    }

    #[test]
    fn identical_entries_give_identical_bytes() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_archive(&mut a, &sample()).unwrap();
        write_archive(&mut b, &sample()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn corruption_is_reported() {
        let mut bytes = Vec::new();
        write_archive(&mut bytes, &sample()).unwrap();
        assert!(read_archive(&bytes[..50]).is_err());
        bytes[0] = b'x';
        assert!(read_archive(&bytes).unwrap_err().contains("bad magic"));
    }
}
