//! The registry of what one run has alive: worker pids (forked, not yet reaped) and cgroup
//! directories (created, not yet removed), plus the run's progress and teardown time.
//!
//! Every scenario step records its workers and cgroups here while they exist. When a body
//! hangs, the watchdog cannot reach the stuck body's `WorkerSet` or `CgroupTree`, so
//! [`Live::teardown`] kills and reaps the registered workers and removes the registered
//! cgroups itself. Owners reap through [`Live::reap`], under the same lock, so a pid is never
//! signalled after it was reaped (when it could belong to an unrelated process).
//!
//! This module only keeps the books and tears down; it depends on nothing but cgroup removal.
//! Deciding that a body is hung is [`super::watchdog`]'s job, forking is [`super::worker`]'s.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::cgroup::kill_and_remove_dir;

/// Worker pids and cgroup directories currently alive for one run, plus its teardown time.
#[derive(Debug)]
pub struct Live {
    inner: Mutex<LiveInner>,
}

#[derive(Debug)]
struct LiveInner {
    /// Forked, not yet reaped.
    pids: Vec<i32>,
    /// Created, not yet removed; in removal order (children before their parents).
    cgroup_dirs: Vec<PathBuf>,
    /// Total time spent tearing scenario steps down; `None` until a teardown ran.
    cleanup: Option<Duration>,
    /// Start of the body, or the last step start or end.
    progress: Instant,
    /// How long the running step holds; `None` between steps.
    hold: Option<Duration>,
    /// Work type of the step that started last (for a hung body's sidecar).
    work_type: Option<String>,
    /// Set once the watchdog gave up on the body.
    closed: bool,
}

impl Default for Live {
    fn default() -> Live {
        Live {
            inner: Mutex::new(LiveInner {
                pids: Vec::new(),
                cgroup_dirs: Vec::new(),
                cleanup: None,
                progress: Instant::now(),
                hold: None,
                work_type: None,
                closed: false,
            }),
        }
    }
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, LiveInner> {
        // A panic while holding this lock leaves plain data behind; keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A worker was forked.
    pub fn add_pid(&self, pid: i32) {
        self.lock().pids.push(pid);
    }

    /// Run `reap` (which kills and waits for `pid`) unless the watchdog already reaped it.
    pub fn reap(&self, pid: i32, reap: impl FnOnce()) {
        let mut g = self.lock();
        if let Some(i) = g.pids.iter().position(|&p| p == pid) {
            reap();
            g.pids.swap_remove(i);
        }
    }

    /// Cgroup directories were created (`dirs` in removal order).
    pub fn add_cgroups(&self, dirs: &[PathBuf]) {
        self.lock().cgroup_dirs.extend(dirs.iter().cloned());
    }

    /// Cgroup directories were removed by their owner.
    pub fn remove_cgroups(&self, dirs: &[PathBuf]) {
        self.lock().cgroup_dirs.retain(|d| !dirs.contains(d));
    }

    /// A step (of `work_type`) started and will hold for `hold`: it is hung once
    /// `hold + grace` has passed, however long the test's declared duration is.
    pub fn step_started(&self, work_type: Option<&str>, hold: Duration) {
        let mut g = self.lock();
        g.progress = Instant::now();
        g.hold = Some(hold);
        if let Some(w) = work_type {
            g.work_type = Some(w.to_string());
        }
    }

    /// The body started or a step ended: the body is between steps until the next
    /// [`Live::step_started`].
    pub fn step_ended(&self) {
        let mut g = self.lock();
        g.progress = Instant::now();
        g.hold = None;
    }

    /// When the body counts as hung if nothing happens first, and the allowance before the
    /// grace that deadline is based on (the running step's hold, else `between_steps`).
    pub(crate) fn deadline(&self, between_steps: Duration, grace: Duration) -> (Instant, Duration) {
        let g = self.lock();
        let allowance = g.hold.unwrap_or(between_steps);
        (g.progress + allowance + grace, allowance)
    }

    /// Add the duration of one teardown (stop, reap, remove cgroups).
    pub fn add_cleanup(&self, d: Duration) {
        let mut g = self.lock();
        g.cleanup = Some(g.cleanup.unwrap_or_default() + d);
    }

    /// Total teardown time; `None` when no teardown ran.
    pub fn cleanup(&self) -> Option<Duration> {
        self.lock().cleanup
    }

    /// Work type of the last step started, if any.
    pub fn work_type(&self) -> Option<String> {
        self.lock().work_type.clone()
    }

    /// Whether the watchdog gave up on this run: no new step may start.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Close the run, SIGKILL and reap every registered worker, and remove every registered
    /// cgroup; the time taken is added to the cleanup time. Returns what could not be
    /// removed. Does nothing (and records no time) when nothing is registered.
    pub fn teardown(&self) -> Vec<String> {
        let mut g = self.lock();
        g.closed = true;
        if g.pids.is_empty() && g.cgroup_dirs.is_empty() {
            return Vec::new();
        }
        let t = Instant::now();
        for &pid in &g.pids {
            // SAFETY: signals to our own unreaped children (and their process groups); an
            // unreaped pid cannot have been reused.
            unsafe {
                libc::killpg(pid, libc::SIGKILL);
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let mut problems = Vec::new();
        for pid in std::mem::take(&mut g.pids) {
            if !reap_killed(pid) {
                problems.push(format!("worker pid {pid} did not exit after SIGKILL"));
            }
        }
        for dir in std::mem::take(&mut g.cgroup_dirs) {
            if let Err(e) = kill_and_remove_dir(&dir) {
                problems.push(format!("cgroup {}: {e}", dir.display()));
            }
        }
        g.cleanup = Some(g.cleanup.unwrap_or_default() + t.elapsed());
        problems
    }
}

/// Wait (up to 2 s) for a SIGKILLed child; `false` if it is still there.
fn reap_killed(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid
            || (r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn teardown_kills_registered_workers_and_skips_reaped_ones() {
        let live = Live::default();
        // SAFETY: the child only sleeps and leaves via _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                libc::sleep(30);
                libc::_exit(0);
            }
        }
        live.add_pid(pid);
        assert!(live.cleanup().is_none());
        assert!(live.teardown().is_empty());
        assert!(live.cleanup().is_some() && live.is_closed());
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "worker survived teardown");
        // Already reaped by the watchdog: the owner's reap must not run again.
        let mut ran = false;
        live.reap(pid, || ran = true);
        assert!(!ran);
    }
}
