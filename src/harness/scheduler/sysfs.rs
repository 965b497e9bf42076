//! What the kernel says about sched_ext, read from a sysfs root (`/sys` on a host or in a
//! guest, a temporary tree in tests): `kernel/sched_ext/state`, `root/ops` (the attached
//! scheduler's name) and `root/events` (the `SCX_EV_*` counters), plus the kernel log's
//! sched_ext lines, which carry an exit reason.
//!
//! Only reads; starting and stopping schedulers is [`super::lifecycle`]'s job.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// `kernel/sched_ext/state`'s value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScxState {
    Enabled,
    Disabled,
    /// `enabling`, `disabling`, or a state this version does not know, as read.
    Other(String),
}

impl ScxState {
    fn parse(text: &str) -> ScxState {
        match text.trim() {
            "enabled" => ScxState::Enabled,
            "disabled" => ScxState::Disabled,
            other => ScxState::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            ScxState::Enabled => "enabled",
            ScxState::Disabled => "disabled",
            ScxState::Other(s) => s,
        }
    }
}

/// sched_ext's sysfs files under one sysfs root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedExtSysfs {
    sysfs: PathBuf,
}

impl SchedExtSysfs {
    /// The files under `sysfs` (the mount point, e.g. `/sys`).
    pub fn new(sysfs: impl Into<PathBuf>) -> SchedExtSysfs {
        SchedExtSysfs { sysfs: sysfs.into() }
    }

    /// `<sysfs>/kernel/sched_ext`; it exists exactly when the kernel has sched_ext.
    pub fn dir(&self) -> PathBuf {
        self.sysfs.join("kernel/sched_ext")
    }

    pub fn available(&self) -> bool {
        self.dir().is_dir()
    }

    pub fn state(&self) -> Result<ScxState, String> {
        read(&self.dir().join("state")).map(|s| ScxState::parse(&s))
    }

    /// The attached scheduler's ops name (e.g. `bpfland_1.1.4_x86_64_unknown_linux_gnu`);
    /// `None` when nothing is attached (the file is absent or empty).
    pub fn ops(&self) -> Option<String> {
        let ops = read(&self.dir().join("root/ops")).ok()?;
        let ops = ops.trim();
        (!ops.is_empty()).then(|| ops.to_string())
    }

    /// The `SCX_EV_*` counters of `root/events`, by name; `None` when the kernel offers no
    /// such file (older kernels, or nothing attached).
    pub fn events(&self) -> Option<BTreeMap<String, u64>> {
        read(&self.dir().join("root/events")).ok().map(|t| parse_events(&t))
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))
}

/// `NAME value` lines; anything else is ignored.
pub fn parse_events(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (name, value) = l.trim().split_once(char::is_whitespace)?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The kernel log from a point on: opened at the end, later reads give only what was logged
/// since (`/dev/kmsg` on a host or guest; any appendable file in tests).
pub struct KernelLog {
    file: File,
}

impl KernelLog {
    pub fn open_at_end(path: &Path) -> Option<KernelLog> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .ok()?;
        file.seek(SeekFrom::End(0)).ok()?;
        Some(KernelLog { file })
    }

    /// The sched_ext lines logged since the last call, message text only.
    pub fn sched_ext_lines(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        // /dev/kmsg returns one record per read and EAGAIN at the end; a file returns all of
        // it and then 0.
        let mut buf = vec![0u8; 8192];
        while let Ok(n) = self.file.read(&mut buf) {
            if n == 0 {
                break;
            }
            for line in String::from_utf8_lossy(&buf[..n]).lines() {
                // kmsg records are `prio,seq,time,flags;message`.
                let msg = line.split_once(';').map_or(line, |(_, m)| m).trim();
                if msg.contains("sched_ext") {
                    out.push(msg.to_string());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn state_ops_and_events_come_from_the_sysfs_root() {
        let root = tempfile::tempdir().unwrap();
        let sx = SchedExtSysfs::new(root.path());
        assert!(!sx.available());
        assert!(sx.state().unwrap_err().contains("kernel/sched_ext/state"));
        std::fs::create_dir_all(sx.dir().join("root")).unwrap();
        std::fs::write(sx.dir().join("state"), "enabling\n").unwrap();
        assert!(sx.available());
        assert_eq!(sx.state().unwrap(), ScxState::Other("enabling".into()));
        assert_eq!(sx.ops(), None);
        assert_eq!(sx.events(), None);
        std::fs::write(sx.dir().join("state"), "enabled\n").unwrap();
        std::fs::write(sx.dir().join("root/ops"), "bpfland_1.1.4_x86_64\n").unwrap();
        std::fs::write(
            sx.dir().join("root/events"),
            "SCX_EV_SELECT_CPU_FALLBACK 3\nSCX_EV_DISPATCH_KEEP_LAST 120\ngarbage\n",
        )
        .unwrap();
        assert_eq!(sx.state().unwrap(), ScxState::Enabled);
        assert_eq!(sx.ops().as_deref(), Some("bpfland_1.1.4_x86_64"));
        let events = sx.events().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events["SCX_EV_DISPATCH_KEEP_LAST"], 120);
    }

    #[test]
    fn the_kernel_log_gives_only_new_sched_ext_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(&path, "6,1,1;sched_ext: old line\n").unwrap();
        let mut log = KernelLog::open_at_end(&path).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "6,2,2;unrelated").unwrap();
        writeln!(f, "3,3,3;sched_ext: BPF scheduler \"bpfland\" disabled (runtime error)").unwrap();
        assert_eq!(
            log.sched_ext_lines(),
            ["sched_ext: BPF scheduler \"bpfland\" disabled (runtime error)"]
        );
        assert!(log.sched_ext_lines().is_empty());
    }
}
