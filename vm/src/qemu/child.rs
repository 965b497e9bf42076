//! A QEMU child process that cannot outlive its parent: it gets `PR_SET_PDEATHSIG(SIGKILL)`
//! before exec, is killed and reaped when dropped, and can be waited on with a deadline.
//!
//! The death signal follows the *thread* that spawned the child, so the spawning thread must be
//! the one that waits for it (as [`crate::boot`] does).

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// A running QEMU.
#[derive(Debug)]
pub struct QemuChild {
    child: Child,
    reaped: bool,
}

impl QemuChild {
    pub fn spawn(mut command: Command) -> io::Result<QemuChild> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: the closure runs between fork and exec and only calls async-signal-safe
        // functions (prctl, getppid, _exit).
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect.
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        Ok(QemuChild { child: command.spawn()?, reaped: false })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the child exits or `timeout` passes; `None` on timeout (the child still runs).
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(Some(status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(left.min(Duration::from_millis(10)));
        }
    }

    /// Kills the child with SIGKILL and reaps it.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.reaped {
            return Ok(());
        }
        self.child.kill()?;
        self.child.wait()?;
        self.reaped = true;
        Ok(())
    }
}

impl Drop for QemuChild {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_child_past_its_deadline_is_killed_on_drop() {
        let mut child = QemuChild::spawn({
            let mut c = Command::new("sleep");
            c.arg("30");
            c
        })
        .unwrap();
        let pid = child.pid();
        assert!(child.wait_timeout(Duration::from_millis(50)).unwrap().is_none());
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        drop(child);
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "the child is gone after drop");
    }

    #[test]
    fn a_finished_child_reports_its_status() {
        let mut child = QemuChild::spawn(Command::new("true")).unwrap();
        let status = child.wait_timeout(Duration::from_secs(10)).unwrap().unwrap();
        assert!(status.success());
    }

    /// PDEATHSIG fires when the spawning thread ends: a child forgotten by a finished thread
    /// must be killed (a zombie, as nobody reaped it yet), not left sleeping.
    #[test]
    fn the_child_dies_with_the_thread_that_spawned_it() {
        let pid = std::thread::spawn(|| {
            let mut command = Command::new("sleep");
            command.arg("30");
            let child = QemuChild::spawn(command).unwrap();
            let pid = child.pid();
            std::mem::forget(child);
            pid
        })
        .join()
        .unwrap();
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit(") ").next().and_then(|rest| rest.chars().next())
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while state(pid) != Some('Z') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(state(pid), Some('Z'), "the orphaned child was killed");
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid as i32, std::ptr::null_mut(), 0) };
    }
}
