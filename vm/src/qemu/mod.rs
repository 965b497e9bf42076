//! Drives `qemu-system-x86_64`: finds it, builds its command line, and (in [`child`]) runs it
//! as a child that cannot outlive us. [`accel`] chooses between KVM and TCG.
//!
//! The command line is fixed by what was measured to boot fastest: no default devices, the PVH
//! vmlinux when there is one, an uncompressed initramfs, the kernel console on the first serial
//! port and the result channel on a second one, so kernel messages can never corrupt results.
//! This module does not interpret what the guest writes; that is [`crate::boot`]'s job.

pub mod accel;
pub mod child;
pub mod clock;

pub use clock::TcgClock;

use crate::topology::qemu_args::Machine;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const QEMU_BINARY: &str = "qemu-system-x86_64";
/// Environment variable naming a QEMU binary to use instead of the one on `PATH`.
pub const QEMU_ENV: &str = "KTSTR_QEMU";

#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    #[error(
        "{QEMU_BINARY} not found (PATH, or {QEMU_ENV}); install it with `apt-get install --no-install-recommends qemu-system-x86` or run scripts/deps/10-vm.sh"
    )]
    Missing,
    #[error("cannot start {qemu}: {source}")]
    Spawn { qemu: PathBuf, source: std::io::Error },
}

/// A QEMU binary and its major version (the accelerator options depend on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qemu {
    pub path: PathBuf,
    pub major_version: u32,
}

impl Qemu {
    /// `$KTSTR_QEMU`, else `qemu-system-x86_64` on `PATH`.
    pub fn find() -> Result<Qemu, QemuError> {
        static FOUND: OnceLock<Option<Qemu>> = OnceLock::new();
        let locate = || Self::locate(std::env::var_os(QEMU_ENV), std::env::var_os("PATH"));
        FOUND.get_or_init(locate).clone().ok_or(QemuError::Missing)
    }

    /// The QEMU named by `override_path`, else the first on `search_path`; `None` if there is
    /// none or it does not answer `--version`.
    fn locate(
        override_path: Option<std::ffi::OsString>,
        search_path: Option<std::ffi::OsString>,
    ) -> Option<Qemu> {
        let path = match override_path.filter(|v| !v.is_empty()) {
            Some(p) => PathBuf::from(p),
            None => search_path
                .into_iter()
                .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .map(|dir| dir.join(QEMU_BINARY))
                .find(|p| p.is_file())?,
        };
        let output = Command::new(&path).arg("--version").output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        Some(Qemu { major_version: parse_major_version(&text)?, path })
    }
}

/// `QEMU emulator version 7.2.22 (Debian …)` → 7.
fn parse_major_version(text: &str) -> Option<u32> {
    let rest = text.split("version ").nth(1)?;
    rest.split('.').next()?.trim().parse().ok()
}

/// How the guest is accelerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    QemuKvm,
    QemuTcg,
}

impl Backend {
    /// The name recorded with results: `qemu-kvm` or `qemu-tcg`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::QemuKvm => "qemu-kvm",
            Backend::QemuTcg => "qemu-tcg",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything one QEMU run needs.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub qemu: &'a Qemu,
    pub backend: Backend,
    /// What advances the guest's clocks under TCG (KVM ignores it).
    pub tcg_clock: TcgClock,
    pub machine: Machine,
    /// `-m`, `-smp` and `-numa` arguments (see [`crate::topology::qemu_args`]).
    pub topology_args: Vec<String>,
    pub kernel: &'a Path,
    pub initrd: Option<&'a Path>,
    pub append: String,
    /// File receiving the first serial port (kernel console).
    pub console: &'a Path,
    /// File receiving the second serial port (result frames).
    pub results: &'a Path,
}

impl Launch<'_> {
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> =
            ["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot"]
                .map(String::from)
                .to_vec();
        args.extend(accel_args(self.backend, self.qemu.major_version, self.tcg_clock));
        args.push("-M".into());
        args.push(match self.machine {
            // QEMU 11's microvm hangs in ACPI table parsing; 7.2's works only with ACPI.
            Machine::Microvm if self.qemu.major_version >= 11 => "microvm,acpi=off".into(),
            Machine::Microvm => "microvm".into(),
            Machine::Pc => "pc".into(),
        });
        if self.machine == Machine::Pc {
            // qboot skips SeaBIOS's device scan; QEMU still provides the ACPI (NUMA) tables.
            args.extend(["-bios".into(), "qboot.rom".into()]);
        }
        args.extend(self.topology_args.iter().cloned());
        args.extend(["-kernel".into(), self.kernel.display().to_string()]);
        if let Some(initrd) = self.initrd {
            args.extend(["-initrd".into(), initrd.display().to_string()]);
        }
        args.extend(["-append".into(), self.append.clone()]);
        args.extend([
            "-chardev".into(),
            format!("file,id=console,path={}", self.console.display()),
            "-serial".into(),
            "chardev:console".into(),
            "-chardev".into(),
            format!("file,id=results,path={}", self.results.display()),
            "-device".into(),
            "isa-serial,chardev=results,index=1".into(),
        ]);
        args
    }
}

fn accel_args(backend: Backend, major_version: u32, clock: TcgClock) -> Vec<String> {
    let tcg = |accel: &str| {
        let mut args: Vec<String> =
            vec!["-accel".into(), accel.into(), "-cpu".into(), "max".into()];
        args.extend(clock.qemu_args());
        args
    };
    match backend {
        Backend::QemuKvm => ["-accel", "kvm", "-cpu", "host"].map(String::from).to_vec(),
        // QEMU before 11 has a multi-threaded TCG race that crashes guests while the kernel
        // patches its own text (static keys flip when sched_ext attaches): run one thread.
        // Counting instructions needs one thread on every version.
        Backend::QemuTcg if major_version < 11 || clock == TcgClock::Instructions => {
            tcg("tcg,thread=single")
        }
        Backend::QemuTcg => tcg("tcg"),
    }
}

/// The kernel parameters that were measured to shorten a TCG boot, plus the console.
pub fn base_kernel_args() -> Vec<String> {
    let mut args: Vec<String> = [
        "console=ttyS0",
        "panic=-1",
        "quiet",
        "tsc=reliable",
        "mitigations=off",
        "init_on_alloc=0",
        "cryptomgr.notests",
        "nokaslr",
        "lsm=bpf",
        "audit=0",
        "rodata=off",
        "reboot=t",
        "rdinit=/init",
    ]
    .map(String::from)
    .to_vec();
    // microvm on QEMU 7.2 hangs calibrating the TSC unless told its frequency.
    if let Some(khz) = host_tsc_khz() {
        args.push(format!("tsc_early_khz={khz}"));
    }
    args
}

fn host_tsc_khz() -> Option<u64> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let mhz: f64 = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()?;
    Some((mhz * 1000.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu(major_version: u32) -> Qemu {
        Qemu { path: "/usr/bin/qemu-system-x86_64".into(), major_version }
    }

    fn launch(qemu: &Qemu, backend: Backend, machine: Machine) -> Vec<String> {
        launch_with(qemu, backend, machine, TcgClock::Host)
    }

    fn launch_with(
        qemu: &Qemu,
        backend: Backend,
        machine: Machine,
        clock: TcgClock,
    ) -> Vec<String> {
        Launch {
            qemu,
            backend,
            tcg_clock: clock,
            machine,
            topology_args: vec!["-m".into(), "256M".into()],
            kernel: Path::new("/k/vmlinux"),
            initrd: Some(Path::new("/i.cpio")),
            append: "console=ttyS0 x=1".into(),
            console: Path::new("/run/console.log"),
            results: Path::new("/run/results.bin"),
        }
        .args()
    }

    fn has_pair(args: &[String], a: &str, b: &str) -> bool {
        args.windows(2).any(|w| w[0] == a && w[1] == b)
    }

    #[test]
    fn tcg_on_qemu_7_runs_single_threaded() {
        let args = launch(&qemu(7), Backend::QemuTcg, Machine::Microvm);
        assert!(has_pair(&args, "-accel", "tcg,thread=single"));
        assert!(has_pair(&args, "-cpu", "max"));
        assert!(has_pair(&args, "-M", "microvm"));
        assert!(has_pair(&args, "-kernel", "/k/vmlinux"));
        assert!(has_pair(&args, "-initrd", "/i.cpio"));
        assert!(has_pair(&args, "-append", "console=ttyS0 x=1"));
        assert!(has_pair(&args, "-serial", "chardev:console"));
        assert!(has_pair(&args, "-chardev", "file,id=results,path=/run/results.bin"));
        assert!(has_pair(&args, "-device", "isa-serial,chardev=results,index=1"));
        assert!(
            args.contains(&"-no-reboot".to_string()) && args.contains(&"-nodefaults".to_string())
        );
    }

    #[test]
    fn newer_qemu_and_kvm_and_pc_get_their_own_options() {
        let args = launch(&qemu(11), Backend::QemuTcg, Machine::Microvm);
        assert!(has_pair(&args, "-accel", "tcg") && has_pair(&args, "-M", "microvm,acpi=off"));
        let args = launch(&qemu(7), Backend::QemuKvm, Machine::Pc);
        assert!(has_pair(&args, "-accel", "kvm") && has_pair(&args, "-cpu", "host"));
        assert!(has_pair(&args, "-M", "pc") && has_pair(&args, "-bios", "qboot.rom"));
    }

    #[test]
    fn the_instruction_clock_runs_tcg_single_threaded_and_kvm_ignores_it() {
        for major in [7, 11] {
            let args = launch_with(
                &qemu(major),
                Backend::QemuTcg,
                Machine::Microvm,
                TcgClock::Instructions,
            );
            assert!(has_pair(&args, "-accel", "tcg,thread=single"), "QEMU {major}: {args:?}");
            assert!(has_pair(&args, "-icount", "shift=1,sleep=off"), "QEMU {major}: {args:?}");
        }
        let args = launch(&qemu(7), Backend::QemuTcg, Machine::Microvm);
        assert!(!args.contains(&"-icount".to_string()), "the host clock adds no icount");
        let args = launch_with(&qemu(11), Backend::QemuKvm, Machine::Pc, TcgClock::Instructions);
        assert!(has_pair(&args, "-accel", "kvm") && !args.contains(&"-icount".to_string()));
    }

    #[test]
    fn a_missing_qemu_is_none_and_the_error_says_how_to_install_it() {
        assert_eq!(Qemu::locate(Some("/nonexistent/qemu".into()), None), None);
        assert_eq!(Qemu::locate(None, Some("/nonexistent-dir".into())), None);
        assert_eq!(Qemu::locate(Some("/bin/true".into()), None), None, "no version banner");
        let message = QemuError::Missing.to_string();
        assert!(
            message.contains("apt-get install --no-install-recommends qemu-system-x86"),
            "{message}"
        );
        assert!(message.contains("scripts/deps/10-vm.sh"), "{message}");
    }

    #[test]
    fn parses_the_version_banner() {
        assert_eq!(
            parse_major_version("QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\n"),
            Some(7)
        );
        assert_eq!(parse_major_version("QEMU emulator version 11.1.0\n"), Some(11));
        assert_eq!(parse_major_version("something else"), None);
    }

    #[test]
    fn base_args_boot_from_the_initramfs_and_never_wait_on_panic() {
        let args = base_kernel_args();
        for needed in ["console=ttyS0", "panic=-1", "rdinit=/init"] {
            assert!(args.iter().any(|a| a == needed), "{needed}");
        }
    }
}
