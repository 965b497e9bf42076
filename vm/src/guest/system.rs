//! The system calls a guest `/init` needs: mounting the pseudo file systems, opening the result
//! port in raw mode, and powering off.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

/// (source, target, fstype) in mount order: parents before children.
pub const MOUNTS: [(&str, &str, &str); 7] = [
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
    ("tmpfs", "/tmp", "tmpfs"),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
    ("debugfs", "/sys/kernel/debug", "debugfs"),
    ("bpf", "/sys/fs/bpf", "bpf"),
];

/// Mounts everything in [`MOUNTS`]; something already mounted there is fine.
pub fn mount_all() -> Result<(), String> {
    for (source, target, fstype) in MOUNTS {
        std::fs::create_dir_all(target).map_err(|e| format!("mkdir {target}: {e}"))?;
        let c = |s: &str| CString::new(s).expect("mount strings have no NUL");
        let (source_c, target_c, fstype_c) = (c(source), c(target), c(fstype));
        // SAFETY: all pointers are valid NUL-terminated strings; data may be null.
        let rc = unsafe {
            libc::mount(
                source_c.as_ptr(),
                target_c.as_ptr(),
                fstype_c.as_ptr(),
                0,
                std::ptr::null(),
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EBUSY) {
                return Err(format!("mount {fstype} on {target}: {err}"));
            }
        }
    }
    Ok(())
}

/// Opens a serial port for writing with no line discipline translation, so payload bytes
/// arrive as written.
pub fn open_raw_tty(path: &str) -> io::Result<File> {
    let file = OpenOptions::new().write(true).custom_flags(libc::O_NOCTTY).open(path)?;
    let fd = file.as_raw_fd();
    // SAFETY: termios is plain data; fd is open for the lifetime of these calls.
    unsafe {
        let mut termios: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut termios) != 0 {
            return Err(io::Error::last_os_error());
        }
        libc::cfmakeraw(&mut termios);
        if libc::tcsetattr(fd, libc::TCSANOW, &termios) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(file)
}

/// Waits until everything written to the tty has left the UART.
pub fn drain(file: &File) {
    // SAFETY: fd is open.
    unsafe { libc::tcdrain(file.as_raw_fd()) };
}

/// Syncs and reboots; under QEMU's `-no-reboot` that ends the VM. Never returns.
pub fn power_off() -> ! {
    // SAFETY: sync and reboot have no memory-safety preconditions.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_AUTOBOOT);
    }
    // Only reached when not allowed to reboot (not PID 1 in a VM): exit instead.
    std::process::exit(1)
}
