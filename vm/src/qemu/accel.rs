//! Chooses the accelerator: `kvm`, `tcg`, or `auto`, which probes KVM once per process with a
//! tiny boot and falls back to TCG with one warning line naming why.
//!
//! An openable `/dev/kvm` proves little: some hosts serve it from a software hypervisor that
//! cannot run stock kernels. So the probe boots the real kernel under KVM without an initramfs;
//! reaching the "cannot mount root" panic proves the whole kernel ran. Any other ending (QEMU's
//! emulation failure, silence until the deadline) means KVM is not usable for this kernel.

use super::child::QemuChild;
use super::{Backend, Launch, Qemu, QemuError, TcgClock, base_kernel_args};
use crate::topology::Topology;
use crate::topology::qemu_args::{Machine, topology_args};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Environment variable selecting the accelerator when the caller leaves it to the environment.
pub const ACCEL_ENV: &str = "KTSTR_VM_ACCEL";

/// How long the KVM probe may take; a working KVM reaches the root-mount panic in about 1 s.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

impl FromStr for Accel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Accel::Auto),
            "kvm" => Ok(Accel::Kvm),
            "tcg" => Ok(Accel::Tcg),
            other => Err(format!("accelerator '{other}' is not one of auto, kvm, tcg")),
        }
    }
}

impl Accel {
    /// `$KTSTR_VM_ACCEL` if set (and valid), else `Auto`.
    pub fn from_env() -> Result<Accel, String> {
        match std::env::var(ACCEL_ENV) {
            Ok(v) if !v.is_empty() => v.parse().map_err(|e| format!("{ACCEL_ENV}: {e}")),
            _ => Ok(Accel::Auto),
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("KVM was requested but is unusable: {0}; use --accel tcg (or auto)")]
pub struct KvmUnusable(pub String);

/// The backend to boot with, plus the warning line to show when `auto` fell back to TCG.
pub fn choose(
    accel: Accel,
    qemu: &Qemu,
    kernel_image: &Path,
) -> Result<(Backend, Option<String>), KvmUnusable> {
    match accel {
        Accel::Tcg => Ok((Backend::QemuTcg, None)),
        Accel::Kvm => {
            kvm_usable(qemu, kernel_image).map(|()| (Backend::QemuKvm, None)).map_err(KvmUnusable)
        }
        Accel::Auto => match kvm_usable(qemu, kernel_image) {
            Ok(()) => Ok((Backend::QemuKvm, None)),
            Err(reason) => {
                Ok((Backend::QemuTcg, Some(format!("KVM unusable ({reason}); using TCG"))))
            }
        },
    }
}

/// Earlier probe answers, by (QEMU binary, kernel image).
type ProbeAnswers = HashMap<(PathBuf, PathBuf), Result<(), String>>;

/// Probes once per (QEMU, kernel) per process and remembers the answer.
fn kvm_usable(qemu: &Qemu, kernel_image: &Path) -> Result<(), String> {
    static PROBED: Mutex<Option<ProbeAnswers>> = Mutex::new(None);
    let key = (qemu.path.clone(), kernel_image.to_path_buf());
    let mut probed = PROBED.lock().unwrap_or_else(|e| e.into_inner());
    let map = probed.get_or_insert_with(HashMap::new);
    if let Some(answer) = map.get(&key) {
        return answer.clone();
    }
    let answer = probe(qemu, kernel_image);
    if let Err(reason) = &answer {
        eprintln!("ktstr-vm: warning: KVM unusable ({reason}); using TCG");
    }
    map.insert(key, answer.clone());
    answer
}

fn probe(qemu: &Qemu, kernel_image: &Path) -> Result<(), String> {
    if let Err(e) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm") {
        return Err(format!("/dev/kvm: {e}"));
    }
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir for the probe: {e}"))?;
    let (console, results, stderr) =
        (dir.path().join("console"), dir.path().join("results"), dir.path().join("stderr"));
    let launch = Launch {
        qemu,
        backend: Backend::QemuKvm,
        tcg_clock: TcgClock::Host,
        machine: Machine::Microvm,
        topology_args: topology_args(&Topology::new(1, 1, 1, 1), 256),
        kernel: kernel_image,
        initrd: None,
        append: base_kernel_args().join(" "),
        console: &console,
        results: &results,
    };
    let stderr_file = std::fs::File::create(&stderr).map_err(|e| e.to_string())?;
    let mut command = Command::new(&qemu.path);
    command.args(launch.args()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr_file);
    let mut child = QemuChild::spawn(command)
        .map_err(|source| QemuError::Spawn { qemu: qemu.path.clone(), source }.to_string())?;
    // QEMU reports a KVM emulation failure and then sits paused, so watch while waiting.
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        let finished =
            child.wait_timeout(Duration::from_millis(100)).map_err(|e| e.to_string())?.is_some();
        let console = std::fs::read_to_string(&console).unwrap_or_default();
        let stderr = std::fs::read_to_string(&stderr).unwrap_or_default();
        if let Some(verdict) = probe_verdict(finished, &console, &stderr) {
            return verdict;
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the probe boot showed no progress within {} s",
                PROBE_TIMEOUT.as_secs()
            ));
        }
    }
}

/// What the probe's output so far says: `Some(Ok)` once the kernel ran to its root-mount
/// panic, `Some(Err(reason))` once QEMU failed, `None` while undecided.
fn probe_verdict(finished: bool, console: &str, stderr: &str) -> Option<Result<(), String>> {
    if console.contains("Unable to mount root fs") || console.contains("No working init found") {
        return Some(Ok(()));
    }
    let first_error = || {
        let line = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("the probe boot stopped early");
        line.trim_start_matches("qemu-system-x86_64: ").to_string()
    };
    (finished || stderr.contains("KVM internal error")).then(|| Err(first_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_accelerator_names() {
        assert_eq!("auto".parse(), Ok(Accel::Auto));
        assert_eq!("kvm".parse(), Ok(Accel::Kvm));
        assert_eq!("tcg".parse(), Ok(Accel::Tcg));
        assert!("hvf".parse::<Accel>().unwrap_err().contains("auto, kvm, tcg"));
    }

    #[test]
    fn a_root_mount_panic_proves_kvm_and_anything_else_names_the_reason() {
        let panic = "VFS: Cannot open root device \"\"\nKernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)\n";
        assert_eq!(probe_verdict(true, panic, ""), Some(Ok(())));
        assert_eq!(probe_verdict(false, panic, ""), Some(Ok(())));
        // QEMU stays alive (paused) after an emulation failure: decide without waiting.
        assert_eq!(
            probe_verdict(false, "", "KVM internal error. Suberror: 1\nextra data[0]: 0x1\n"),
            Some(Err("KVM internal error. Suberror: 1".into()))
        );
        assert_eq!(
            probe_verdict(true, "", "qemu-system-x86_64: failed to set MSR 0x10a to 0x69\n"),
            Some(Err("failed to set MSR 0x10a to 0x69".into()))
        );
        assert_eq!(probe_verdict(true, "", ""), Some(Err("the probe boot stopped early".into())));
        assert_eq!(
            probe_verdict(false, "Linux version 7.3", "warning: something\n"),
            None,
            "still booting"
        );
    }

    #[test]
    fn tcg_needs_no_probe() {
        let qemu = Qemu { path: "/nonexistent/qemu".into(), major_version: 7 };
        assert_eq!(
            choose(Accel::Tcg, &qemu, Path::new("/nonexistent/k")).unwrap(),
            (Backend::QemuTcg, None)
        );
    }
}
