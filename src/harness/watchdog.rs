//! Running a test body under a watchdog, and the registry of what a body has alive.
//!
//! [`run_body`] runs the body on its own thread inside `catch_unwind` and waits for it with a
//! deadline that moves with the body's progress. A running step announces how long it holds
//! ([`Live::step_started`]), and is hung once `hold + grace` has passed since it started; a
//! body between steps is hung once it has gone `duration + grace` without starting one. The
//! grace, [`HANG_GRACE`] in production, covers creating the cgroups, forking, stopping,
//! reaping and cgroup removal. A panic or a hang is reported, never propagated.
//!
//! [`Live`] is the registry every scenario step records its worker pids and cgroup
//! directories in while they exist. On a hang the runner thread cannot reach the stuck
//! body's `WorkerSet` or `CgroupTree`, so [`Live::teardown`] kills and reaps the registered
//! workers and removes the registered cgroups itself. Worker reaping goes through
//! [`Live::reap`] under the same lock, so a pid is never signalled after it was reaped (when
//! it could belong to an unrelated process).
//!
//! What happens to a hung body's thread: it is left running (a thread cannot be killed).
//! Its workers are gone, its cgroups are removed, and [`Live::close`] makes any further
//! scenario step it starts fail at once. The thread ends when the test process exits: the
//! runner fails the `#[test]`, and under nextest every test is its own process, which exits
//! right after. Under plain `cargo test` it lingers until the whole test binary exits.
//!
//! Building sidecars from the outcome is [`super::runner`]'s job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::entry::{AssertResult, Ctx, RunRecord, TestFn};

/// How long past a running step's hold (between steps: past the declared duration) a body
/// may go without progress before it is declared hung and its workers are killed.
pub const HANG_GRACE: Duration = Duration::from_secs(10);

/// How often [`run_body`] looks at the deadline again while the body runs.
const DEADLINE_POLL: Duration = Duration::from_millis(50);

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
    fn deadline(&self, between_steps: Duration, grace: Duration) -> (Instant, Duration) {
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
            if let Err(e) = super::cgroup::kill_and_remove_dir(&dir) {
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

/// How a body run ended.
#[derive(Debug)]
pub enum BodyOutcome {
    /// The body returned; what its scenarios recorded comes with it.
    Returned(anyhow::Result<AssertResult>, RunRecord),
    /// The body panicked with this message; its scenarios' drops already ran.
    Panicked(String, RunRecord),
    /// No progress for the whole budget (`allowance` + the grace); the workers and cgroups
    /// were torn down. `allowance` is the hung step's hold, or the declared duration when
    /// the body hung between steps.
    TimedOut { budget: Duration, allowance: Duration, teardown_problems: Vec<String> },
}

/// Run `func` on its own thread with `ctx` and wait for it as the module doc describes.
/// `ctx.live` is the registry the body's scenarios use; the caller keeps a clone of it.
pub fn run_body(func: TestFn, ctx: Ctx, grace: Duration) -> BodyOutcome {
    let between_steps = ctx.duration;
    let live = Arc::clone(&ctx.live);
    live.step_ended();
    let (tx, rx) = channel();
    let name = format!("ktstr-body-{}", ctx.test_name);
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let r = catch_unwind(AssertUnwindSafe(|| func(&ctx)));
        // The receiver is gone only if the runner already timed out; nothing to tell.
        let _ = tx.send((r, ctx.record.into_inner()));
    });
    let handle = match spawned {
        Ok(h) => h,
        Err(e) => {
            let err = anyhow::anyhow!("cannot start the test body thread: {e}");
            return BodyOutcome::Returned(Err(err), RunRecord::default());
        }
    };
    let outcome = loop {
        let (deadline, allowance) = live.deadline(between_steps, grace);
        let now = Instant::now();
        if now >= deadline {
            let teardown_problems = live.teardown();
            // The stuck thread is left behind on purpose; see the module doc.
            drop(handle);
            let budget = allowance + grace;
            return BodyOutcome::TimedOut { budget, allowance, teardown_problems };
        }
        // A step announcing a hold shorter than the declared duration moves the deadline
        // earlier, so never sleep long past a deadline that may have changed.
        match rx.recv_timeout((deadline - now).min(DEADLINE_POLL)) {
            Ok(v) => break v,
            // Progress may have moved the deadline: look again.
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                let msg = "the test body thread ended without a result".to_string();
                return BodyOutcome::Panicked(msg, RunRecord::default());
            }
        }
    };
    // The thread sent its result as its last act.
    let _ = handle.join();
    match outcome {
        (Ok(r), rec) => BodyOutcome::Returned(r, rec),
        (Err(payload), rec) => BodyOutcome::Panicked(panic_message(payload.as_ref()), rec),
    }
}

/// The text of a panic payload (`panic!` makes a `&str` or a `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::model::ScenarioStats;
    use std::path::Path;

    fn ctx(ms: u64) -> Ctx {
        Ctx::new(vec![0], Duration::from_millis(ms), 1)
    }

    fn ok(_: &Ctx) -> anyhow::Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    fn panics(_: &Ctx) -> anyhow::Result<AssertResult> {
        panic!("body blew up: {}", 42)
    }

    fn hangs(_: &Ctx) -> anyhow::Result<AssertResult> {
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn returned_and_panicked_bodies_are_told_apart() {
        assert!(matches!(run_body(ok, ctx(10), Duration::from_secs(5)), BodyOutcome::Returned(..)));
        match run_body(panics, ctx(10), Duration::from_secs(5)) {
            BodyOutcome::Panicked(m, _) => assert_eq!(m, "body blew up: 42"),
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_hung_body_times_out_after_duration_plus_grace() {
        let t = Instant::now();
        let o = run_body(hangs, ctx(100), Duration::from_millis(200));
        let took = t.elapsed();
        assert!(
            matches!(o, BodyOutcome::TimedOut { budget, allowance, .. }
                if budget.as_millis() == 300 && allowance.as_millis() == 100),
            "{o:?}"
        );
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    }

    /// A step announcing 600 ms in a test declaring 100 ms, with 200 ms of grace.
    fn long_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        ctx.live.step_started(Some("CpuSpin"), Duration::from_millis(600));
        std::thread::sleep(Duration::from_millis(600));
        ctx.live.step_ended();
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    #[test]
    fn a_step_may_hold_longer_than_the_declared_duration() {
        let o = run_body(long_step, ctx(100), Duration::from_millis(200));
        assert!(matches!(o, BodyOutcome::Returned(Ok(_), _)), "{o:?}");
    }

    /// A step announcing 100 ms that never ends, in a test declaring 60 s.
    fn overruns_its_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        ctx.live.step_started(Some("CpuSpin"), Duration::from_millis(100));
        hangs(ctx)
    }

    #[test]
    fn a_step_that_overruns_its_hold_times_out_after_hold_plus_grace() {
        let t = Instant::now();
        let o = run_body(overruns_its_step, ctx(60_000), Duration::from_millis(200));
        let took = t.elapsed();
        assert!(
            matches!(o, BodyOutcome::TimedOut { budget, allowance, .. }
                if budget.as_millis() == 300 && allowance.as_millis() == 100),
            "{o:?}"
        );
        assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "{took:?}");
    }

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
