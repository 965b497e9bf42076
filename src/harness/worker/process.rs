//! Worker processes: the start gate, forking a group's members, the child's short life
//! (set up, wait at the gate, run its loop, leave its report) and collecting the reports.
//!
//! Each worker gets, before the fork, a [`ReportSlot`] in shared memory and a report pipe. The
//! child writes its report into the slot, then one byte into the pipe; the parent polls the
//! pipes. A byte means the slot holds the report, end of file without one means the child
//! died first (a panic or a crash), and silence until the deadline means it is late and gets
//! killed. Everything the child touches after the fork is listed in [`super`]'s module doc.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::loops::run_work;
use super::prepare::Prepared;
use super::report::ReportSlot;
use super::sync::{GroupShare, Link, SharedMapping, Stop, pipe, send_byte};
use super::work_type::WorkType;
use crate::harness::live::Live;
use crate::harness::measure::{Meter, WorkerReport};

/// What went wrong with workers: one line each.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("{what}: {source}")]
    Os { what: &'static str, source: std::io::Error },
    #[error("{count} workers requested but {work_type} runs in groups of {group}")]
    GroupSize { count: usize, work_type: &'static str, group: usize },
    #[error("{}", .0.join("; "))]
    Failed(Vec<String>),
}

fn os_error(what: &'static str) -> impl FnOnce(std::io::Error) -> WorkerError {
    move |source| WorkerError::Os { what, source }
}

/// The shared "go" signal: workers block reading it until [`StartGate::release`] closes the
/// write end, so every worker of a scenario starts at the same moment.
pub struct StartGate {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl StartGate {
    pub fn new() -> Result<StartGate, WorkerError> {
        let (read, write) = pipe().map_err(os_error("pipe2"))?;
        Ok(StartGate { read, write: Some(write) })
    }

    /// Start every worker spawned on this gate.
    pub fn release(&mut self) {
        self.write = None;
    }
}

/// One forked worker, as its parent sees it.
struct Child {
    pid: i32,
    /// Read end of the report pipe.
    report: OwnedFd,
    slot: SharedMapping<ReportSlot>,
    reaped: bool,
}

/// A group of forked workers of one work type.
pub struct WorkerSet {
    work_type: WorkType,
    children: Vec<Child>,
    /// Where each pid is registered while unreaped, so a watchdog can kill it.
    live: Option<Arc<Live>>,
}

impl WorkerSet {
    /// Fork `count` workers of `work_type`, blocked on `gate`.
    pub fn spawn(
        work_type: WorkType,
        count: usize,
        gate: &StartGate,
    ) -> Result<WorkerSet, WorkerError> {
        WorkerSet::spawn_tracked(work_type, count, gate, None)
    }

    /// [`WorkerSet::spawn`], registering every worker in `live` until it is reaped.
    pub(crate) fn spawn_tracked(
        work_type: WorkType,
        count: usize,
        gate: &StartGate,
        live: Option<Arc<Live>>,
    ) -> Result<WorkerSet, WorkerError> {
        let group = work_type.group_size();
        if !count.is_multiple_of(group) {
            return Err(WorkerError::GroupSize { count, work_type: work_type.name(), group });
        }
        let mut set = WorkerSet { work_type, children: Vec::new(), live };
        for _ in 0..count / group {
            // Dropped once the group is forked: every member has its own copy by then.
            let share = GroupShare::new(work_type).map_err(os_error("group resources"))?;
            for index in 0..group {
                let child = fork_worker(work_type, gate.read.as_fd(), &share.link(index), index)?;
                if let Some(live) = &set.live {
                    live.add_pid(child.pid);
                }
                set.children.push(child);
            }
        }
        Ok(set)
    }

    /// Pids in spawn order.
    pub fn pids(&self) -> Vec<i32> {
        self.children.iter().map(|c| c.pid).collect()
    }

    pub fn work_type(&self) -> WorkType {
        self.work_type
    }

    /// Ask every worker to stop, read the reports, SIGKILL any worker that has not reported
    /// within `grace`, and reap all of them. Any missing report is an error naming the worker.
    pub fn stop_and_collect(&mut self, grace: Duration) -> Result<Vec<WorkerReport>, WorkerError> {
        for c in &self.children {
            // SAFETY: signalling our own worker's process group.
            unsafe { libc::killpg(c.pid, libc::SIGUSR1) };
        }
        let announced = await_reports(&self.children, Instant::now() + grace);
        self.kill_and_reap();
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        for (i, (c, a)) in self.children.iter().zip(announced).enumerate() {
            match a.and_then(|()| c.slot.read().map_err(|e| format!("sent a bad report: {e}"))) {
                Ok(rep) => reports.push(rep),
                Err(why) => errors.push(format!("worker {i} (pid {}) {why}", c.pid)),
            }
        }
        if errors.is_empty() { Ok(reports) } else { Err(WorkerError::Failed(errors)) }
    }

    fn kill_and_reap(&mut self) {
        for c in &mut self.children {
            if c.reaped {
                continue;
            }
            let pid = c.pid;
            let reap = || {
                // SAFETY: killing and reaping our own unreaped child (its process group).
                unsafe {
                    libc::killpg(pid, libc::SIGKILL);
                    libc::kill(pid, libc::SIGKILL);
                    let mut status = 0;
                    while libc::waitpid(pid, &mut status, 0) < 0
                        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
                    {
                    }
                }
            };
            // Under the registry's lock: a watchdog may have reaped it already, and then the
            // pid may belong to someone else.
            match &self.live {
                Some(live) => live.reap(pid, reap),
                None => reap(),
            }
            c.reaped = true;
        }
    }
}

impl Drop for WorkerSet {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// SIGUSR1 blocked in the calling thread until dropped (the previous mask is restored).
struct Sigusr1Blocked(libc::sigset_t);

impl Sigusr1Blocked {
    fn new() -> Sigusr1Blocked {
        // SAFETY: sigset manipulation on local, initialized sets.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            Sigusr1Blocked(old)
        }
    }
}

impl Drop for Sigusr1Blocked {
    fn drop(&mut self) {
        // SAFETY: restoring the mask saved in `new`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

/// Everything one child needs, all made before the fork.
struct ChildStart<'a> {
    work_type: WorkType,
    gate: BorrowedFd<'a>,
    report: BorrowedFd<'a>,
    slot: &'a ReportSlot,
    link: &'a Link<'a>,
    prep: Prepared,
    meter: Meter,
    parent: i32,
}

/// Fork member `index` of a group, linked to the others by `link`, blocked on `gate`.
fn fork_worker(
    work_type: WorkType,
    gate: BorrowedFd<'_>,
    link: &Link<'_>,
    index: usize,
) -> Result<Child, WorkerError> {
    let (report_rx, report_tx) = pipe().map_err(os_error("pipe2"))?;
    let slot = SharedMapping::<ReportSlot>::new().map_err(os_error("mmap"))?;
    let start = ChildStart {
        work_type,
        gate,
        report: report_tx.as_fd(),
        slot: &slot,
        link,
        prep: Prepared::for_member(work_type, index),
        meter: Meter::new(),
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
    };
    // Blocked across the fork so an early stop signal cannot kill the child before it has
    // installed its handler.
    let blocked = Sigusr1Blocked::new();
    // SAFETY: the child runs only `child_main`, which keeps to what is safe after a fork in a
    // multi-threaded process (see the module doc of `worker`) and leaves through _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        child_main(start);
    }
    let fork_error = std::io::Error::last_os_error();
    drop(blocked);
    if pid < 0 {
        return Err(WorkerError::Os { what: "fork", source: fork_error });
    }
    // Also from the parent, so killpg works even if the child has not run yet.
    // SAFETY: setpgid on our own child.
    unsafe { libc::setpgid(pid, pid) };
    Ok(Child { pid, report: report_rx, slot, reaped: false })
}

/// The child side: never returns, never allocates (a panic in a custom loop aside; see the
/// module doc of `worker`).
fn child_main(start: ChildStart<'_>) -> ! {
    let ChildStart { work_type, gate, report, slot, link, mut prep, mut meter, parent } = start;
    // SAFETY (whole block): single-threaded child after fork; libc calls with valid args.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    let stop = Stop::install();
    // SAFETY: unblocking SIGUSR1 (blocked across the fork) now that its handler is in.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
    // Keep only our own fds. Inherited copies of other gates' write ends (this worker's own,
    // or those of scenarios running concurrently on other threads) would keep those gates
    // open and their workers from ever starting.
    let mut keep = [-1; 5];
    {
        let link_fds = link.fds();
        let mut ours = [gate, report]
            .into_iter()
            .chain(link_fds.into_iter().flatten())
            .chain(prep.fd())
            .map(|fd| fd.as_raw_fd());
        keep.iter_mut().for_each(|k| *k = ours.next().unwrap_or(-1));
    }
    close_all_but(&mut keep);
    wait_at_gate(gate, &stop);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        meter.begin();
        run_work(work_type, &mut meter, &stop, link, &mut prep);
        meter.finish(true)
    }));
    let Ok(rep) = outcome else {
        // SAFETY: leaving the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(101) }
    };
    slot.publish(&rep);
    send_byte(report.as_raw_fd());
    // SAFETY: as above; nothing is dropped (which would free memory) on the way out.
    unsafe { libc::_exit(0) }
}

/// Block until the gate's write end is closed (or the stop request came first).
fn wait_at_gate(gate: BorrowedFd<'_>, stop: &Stop) {
    let mut b = 0u8;
    loop {
        // SAFETY: reading one byte into a local.
        let n = unsafe { libc::read(gate.as_raw_fd(), (&mut b as *mut u8).cast(), 1) };
        let interrupted =
            n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
        if !interrupted || stop.is_set() {
            break;
        }
    }
}

/// Close every fd from 3 up except the non-negative ones in `keep`.
fn close_all_but(keep: &mut [i32]) {
    // In place: no allocation.
    keep.sort_unstable();
    let mut next = 3u32;
    for &k in keep.iter().filter(|&&k| k >= 0) {
        let k = k as u32;
        if k > next {
            // SAFETY: closing fds this child does not use; close_range has no memory effects.
            unsafe { libc::syscall(libc::SYS_close_range, next, k - 1, 0) };
        }
        next = next.max(k + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0) };
}

const NO_REPORT: &str = "exited without a report (panicked or crashed)";
const LATE: &str = "did not report before the stop deadline and was killed";

/// Wait, until `deadline`, for every child to announce its report (one byte on its pipe) or
/// to exit without one (end of file). `Ok(())`: the child's slot holds its report.
fn await_reports(children: &[Child], deadline: Instant) -> Vec<Result<(), String>> {
    let mut done: Vec<Option<Result<(), &str>>> = vec![None; children.len()];
    for c in children {
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(c.report.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(c.report.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    while done.iter().any(Option::is_none) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let idx: Vec<usize> = (0..children.len()).filter(|&i| done[i].is_none()).collect();
        let mut pfds: Vec<libc::pollfd> = idx
            .iter()
            .map(|&i| libc::pollfd {
                fd: children[i].report.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = (deadline - now).as_millis().clamp(1, 100) as i32;
        // SAFETY: poll over a valid array of pollfds.
        unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
        for (k, &i) in idx.iter().enumerate() {
            if pfds[k].revents == 0 {
                continue;
            }
            let mut b = 0u8;
            // SAFETY: reading one byte into a local.
            let n = unsafe {
                libc::read(children[i].report.as_raw_fd(), (&mut b as *mut u8).cast(), 1)
            };
            match n {
                1 => done[i] = Some(Ok(())),
                0 => done[i] = Some(Err(NO_REPORT)),
                // EAGAIN or EINTR: look again at the next poll.
                _ => {}
            }
        }
    }
    done.into_iter().map(|d| d.unwrap_or(Err(LATE)).map_err(str::to_string)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::worker::loops::spin;
    use crate::harness::worker::testing::{pid_alive, run};

    #[test]
    fn odd_count_for_paired_type_is_an_error() {
        let gate = StartGate::new().unwrap();
        let e = WorkerSet::spawn(WorkType::PipeIo { burst_iters: 1 }, 3, &gate).err().unwrap();
        assert!(e.to_string().contains("groups of 2"));
    }

    fn panics(_: &mut Meter, _: &Stop) {
        panic!("worker body panicked on purpose");
    }

    fn hangs(m: &mut Meter, _: &Stop) {
        // Ignores the stop request: only SIGKILL ends it.
        loop {
            spin(1024);
            m.add_units(1024);
        }
    }

    #[test]
    fn panicking_worker_is_reported_and_reaped() {
        let wt = WorkType::Custom { name: "Panics", run: panics };
        let (pids, r) = run(wt, 2, Duration::from_millis(50), Duration::from_secs(2));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("exited without a report"), "{e}");
        assert!(pids.iter().all(|&p| !pid_alive(p)), "children left behind");
    }

    #[test]
    fn hung_worker_is_killed_after_grace() {
        let wt = WorkType::Custom { name: "Hangs", run: hangs };
        let t = Instant::now();
        let (pids, r) = run(wt, 1, Duration::from_millis(50), Duration::from_millis(200));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("did not report before the stop deadline"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(pids.iter().all(|&p| !pid_alive(p)), "children left behind");
    }

    #[test]
    fn dropping_a_set_kills_its_workers() {
        let gate = StartGate::new().unwrap();
        let set = WorkerSet::spawn(WorkType::CpuSpin, 2, &gate).unwrap();
        let pids = set.pids();
        assert!(pids.iter().all(|&p| pid_alive(p)));
        drop(set);
        assert!(pids.iter().all(|&p| !pid_alive(p)));
    }
}
