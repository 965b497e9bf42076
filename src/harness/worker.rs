//! Worker processes: the work types (harness-reference §3.1), forking, the two-phase start,
//! stopping, and getting each worker's [`WorkerReport`] back over a pipe.
//!
//! Lifecycle: [`StartGate::new`] → [`WorkerSet::spawn`] for each group (children block on the
//! gate) → the caller places the pids in cgroups → [`StartGate::release`] (all start at once)
//! → hold → [`WorkerSet::stop_and_collect`] (SIGUSR1, read reports, SIGKILL whoever is late,
//! reap). A `WorkerSet` dropped on any other path (an error, a panic) kills each worker's
//! process group with SIGKILL and reaps it, so no process outlives the test. Each worker also
//! asks the kernel to SIGKILL it when its parent thread dies (`PR_SET_PDEATHSIG`).
//!
//! What a worker measures is [`super::measure`]'s; which cgroup it goes to is the caller's.

use std::hint::black_box;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::sync::Arc;

use super::measure::{CHECKPOINT_UNITS, Meter, WorkerReport};
use super::watchdog::Live;

/// A work type: what each worker does in its loop.
#[derive(Debug, Clone, Copy)]
pub enum WorkType {
    /// Pure computation.
    CpuSpin,
    /// `sched_yield` every iteration (latency = the yield call).
    YieldHeavy,
    /// 1024 spin units then a yield.
    Mixed,
    /// 64 KiB write + `fdatasync` to an unlinked temp file, then a 100 µs sleep.
    IoSync,
    /// Spin for `burst_ms`, sleep `sleep_ms`.
    Bursty { burst_ms: u64, sleep_ms: u64 },
    /// Pairs ping-pong one byte over pipes, spinning `burst_iters` units between messages.
    PipeIo { burst_iters: u64 },
    /// Pairs ping-pong through a shared futex word, spinning `spin_iters` units per turn.
    FutexPingPong { spin_iters: u64 },
    /// Stride through a `size_kb` buffer.
    CachePressure { size_kb: u64, stride: u64 },
    /// CachePressure plus a yield per pass.
    CacheYield { size_kb: u64, stride: u64 },
    /// Pairs: a cache pass between pipe messages.
    CachePipe { size_kb: u64, burst_iters: u64 },
    /// Fork a child that exits at once, wait for it (latency = the wait).
    ForkExit,
    /// Cycle the nice value through −20..=19, spinning between changes.
    NiceSweep,
    /// Pin to a random allowed CPU, then spin `spin_iters` units.
    AffinityChurn { spin_iters: u64 },
    /// Cycle SCHED_OTHER/BATCH/IDLE, spinning `spin_iters` units between changes.
    PolicyChurn { spin_iters: u64 },
    /// Touch `touches_per_cycle` random pages of a `region_kb` mapping, drop the pages, spin.
    PageFaultChurn { region_kb: u64, touches_per_cycle: u64, spin_iters: u64 },
    /// Groups of one messenger and `fan_out` receivers: the messenger spins `spin_iters`
    /// units, wakes every receiver through one shared futex word and waits until all have
    /// spun `spin_iters` units in turn. Latency = the messenger's wake stamp to a receiver
    /// running (and the last receiver's acknowledgement to the messenger running).
    FutexFanOut { fan_out: u64, spin_iters: u64 },
    /// Groups of one dispatcher and `fan_out` workers: the dispatcher sleeps `sleep_usec`,
    /// then wakes every worker, which runs `operations` matrix multiplies over about
    /// `cache_footprint_kb` of matrices; the dispatcher waits for all before the next round.
    /// Latency as for [`WorkType::FutexFanOut`].
    FanOutCompute { fan_out: u64, cache_footprint_kb: u64, operations: u64, sleep_usec: u64 },
    /// Run `first`, then each of `rest`, then start over, until stopped.
    Sequence { first: Phase, rest: &'static [Phase] },
    /// Groups of `contenders` processes sharing one futex mutex: take it, spin `hold_iters`
    /// units inside, release it, spin `work_iters` units outside. Latency = the holder's
    /// release to a waiter that slept running with the lock.
    MutexContention { contenders: u64, hold_iters: u64, work_iters: u64 },
    /// A caller-supplied loop. It must return once `stop.is_set()` and count its work
    /// through the [`Meter`].
    Custom { name: &'static str, run: fn(&mut Meter, &Stop) },
}

/// One phase of a [`WorkType::Sequence`], each lasting its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Spin.
    Spin(Duration),
    /// One sleep of the whole duration (latency = the sleep).
    Sleep(Duration),
    /// `sched_yield` in a loop (latency = each yield).
    Yield(Duration),
    /// 64 KiB write + `fdatasync` in a loop (latency = each `fdatasync`).
    Io(Duration),
}

/// Every named work type, in ktstr's order (`Custom` has no name of its own).
pub const IMPLEMENTED: &[&str] = &[
    "CpuSpin",
    "YieldHeavy",
    "Mixed",
    "IoSync",
    "Bursty",
    "PipeIo",
    "FutexPingPong",
    "CachePressure",
    "CacheYield",
    "CachePipe",
    "FutexFanOut",
    "FanOutCompute",
    "Sequence",
    "ForkExit",
    "NiceSweep",
    "AffinityChurn",
    "PolicyChurn",
    "PageFaultChurn",
    "MutexContention",
];

/// Work types without defaults: they can only be built in code, never from a name alone.
pub const NEEDS_PARAMETERS: &[&str] = &["Sequence"];

/// Why a work type name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkTypeError {
    #[error("unknown work type {name:?}; valid work types: {}", IMPLEMENTED.join(", "))]
    Unknown { name: String },
    #[error(
        "work type {0} has no default parameters; build it in the test body, e.g. \
         WorkType::Sequence {{ first, rest }}"
    )]
    NeedsParameters(String),
}

impl WorkType {
    /// The PascalCase name ktstr uses (the sidecar's `work_type`).
    pub fn name(&self) -> &'static str {
        match self {
            WorkType::CpuSpin => "CpuSpin",
            WorkType::YieldHeavy => "YieldHeavy",
            WorkType::Mixed => "Mixed",
            WorkType::IoSync => "IoSync",
            WorkType::Bursty { .. } => "Bursty",
            WorkType::PipeIo { .. } => "PipeIo",
            WorkType::FutexPingPong { .. } => "FutexPingPong",
            WorkType::CachePressure { .. } => "CachePressure",
            WorkType::CacheYield { .. } => "CacheYield",
            WorkType::CachePipe { .. } => "CachePipe",
            WorkType::ForkExit => "ForkExit",
            WorkType::NiceSweep => "NiceSweep",
            WorkType::AffinityChurn { .. } => "AffinityChurn",
            WorkType::PolicyChurn { .. } => "PolicyChurn",
            WorkType::PageFaultChurn { .. } => "PageFaultChurn",
            WorkType::FutexFanOut { .. } => "FutexFanOut",
            WorkType::FanOutCompute { .. } => "FanOutCompute",
            WorkType::Sequence { .. } => "Sequence",
            WorkType::MutexContention { .. } => "MutexContention",
            WorkType::Custom { name, .. } => name,
        }
    }

    /// The work type with ktstr's default parameters.
    pub fn from_name(name: &str) -> Result<WorkType, WorkTypeError> {
        Ok(match name {
            "CpuSpin" => WorkType::CpuSpin,
            "YieldHeavy" => WorkType::YieldHeavy,
            "Mixed" => WorkType::Mixed,
            "IoSync" => WorkType::IoSync,
            "Bursty" => WorkType::Bursty { burst_ms: 50, sleep_ms: 100 },
            "PipeIo" => WorkType::PipeIo { burst_iters: 1024 },
            "FutexPingPong" => WorkType::FutexPingPong { spin_iters: 1024 },
            "CachePressure" => WorkType::CachePressure { size_kb: 32, stride: 64 },
            "CacheYield" => WorkType::CacheYield { size_kb: 32, stride: 64 },
            "CachePipe" => WorkType::CachePipe { size_kb: 32, burst_iters: 1024 },
            "ForkExit" => WorkType::ForkExit,
            "NiceSweep" => WorkType::NiceSweep,
            "AffinityChurn" => WorkType::AffinityChurn { spin_iters: 1024 },
            "PolicyChurn" => WorkType::PolicyChurn { spin_iters: 1024 },
            "PageFaultChurn" => {
                WorkType::PageFaultChurn { region_kb: 4096, touches_per_cycle: 256, spin_iters: 64 }
            }
            "FutexFanOut" => WorkType::FutexFanOut { fan_out: 4, spin_iters: 1024 },
            "FanOutCompute" => WorkType::FanOutCompute {
                fan_out: 4,
                cache_footprint_kb: 256,
                operations: 5,
                sleep_usec: 100,
            },
            "MutexContention" => {
                WorkType::MutexContention { contenders: 4, hold_iters: 256, work_iters: 1024 }
            }
            n if NEEDS_PARAMETERS.contains(&n) => {
                return Err(WorkTypeError::NeedsParameters(n.to_string()));
            }
            n => return Err(WorkTypeError::Unknown { name: n.to_string() }),
        })
    }

    /// Workers per group: paired types need an even worker count, fan-out types a multiple
    /// of `fan_out + 1`, MutexContention a multiple of `contenders`.
    pub fn group_size(&self) -> usize {
        match *self {
            WorkType::PipeIo { .. }
            | WorkType::FutexPingPong { .. }
            | WorkType::CachePipe { .. } => 2,
            WorkType::FutexFanOut { fan_out, .. } | WorkType::FanOutCompute { fan_out, .. } => {
                receivers(fan_out) as usize + 1
            }
            WorkType::MutexContention { contenders, .. } => contenders.clamp(1, 1024) as usize,
            _ => 1,
        }
    }

    /// Why this host cannot run the work type, if it cannot.
    pub fn host_support(&self) -> Result<(), String> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match self {
            WorkType::NiceSweep if !root => Err("NiceSweep sets negative nice values, which \
                needs CAP_SYS_NICE; run as root"
                .to_string()),
            _ => Ok(()),
        }
    }
}

/// Set by the SIGUSR1 handler inside a worker.
static STOP: AtomicBool = AtomicBool::new(false);

/// The stop request a work loop polls.
pub struct Stop(());

impl Stop {
    #[inline]
    pub fn is_set(&self) -> bool {
        STOP.load(Ordering::Relaxed)
    }
}

extern "C" fn on_sigusr1(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

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

fn os(what: &'static str) -> WorkerError {
    WorkerError::Os { what, source: std::io::Error::last_os_error() }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), WorkerError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into a 2-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os("pipe2"));
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The shared "go" signal: workers block reading it until [`StartGate::release`] closes the
/// write end, so every worker of a scenario starts at the same moment.
pub struct StartGate {
    read: OwnedFd,
    write: Option<OwnedFd>,
}

impl StartGate {
    pub fn new() -> Result<StartGate, WorkerError> {
        let (read, write) = pipe()?;
        Ok(StartGate { read, write: Some(write) })
    }

    /// Start every worker spawned on this gate.
    pub fn release(&mut self) {
        self.write = None;
    }
}

struct Child {
    pid: i32,
    report: OwnedFd,
    reaped: bool,
}

/// Shared resources of one worker group, created before forking so all inherit them.
enum PairLink {
    None,
    Pipes {
        rx: OwnedFd,
        tx: OwnedFd,
        leader: bool,
    },
    Futex {
        word: *const AtomicU32,
        leader: bool,
    },
    /// Fan-out and mutex groups: member `index` of a group sharing `shared` (index 0 is the
    /// fan-out messenger).
    Group {
        shared: *const Shared,
        index: usize,
    },
}

/// The state one fan-out or mutex group shares, at the start of a `MAP_SHARED` page. Futex
/// calls on it are not `FUTEX_PRIVATE_FLAG`: the waiters are different processes.
#[repr(C)]
struct Shared {
    /// Fan-out: the generation the messenger published. Mutex: 0 free, 1 locked, 2 locked
    /// with waiters.
    word: AtomicU32,
    /// Fan-out: receivers done with the current generation.
    acks: AtomicU32,
    /// CLOCK_MONOTONIC ns. Fan-out: when the messenger woke the receivers. Mutex: the last
    /// release that had waiters.
    stamp_ns: AtomicU64,
    /// Fan-out: the latest acknowledgement (only ever grows).
    ack_ns: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Shared>() <= SHARED_LEN);

/// Bytes mapped per group's shared state.
const SHARED_LEN: usize = 4096;

/// Fan-out receivers per messenger (at least one, so a round always has someone to wake).
fn receivers(fan_out: u64) -> u32 {
    fan_out.clamp(1, 1024) as u32
}

/// A group of forked workers of one work type.
pub struct WorkerSet {
    work_type: WorkType,
    children: Vec<Child>,
    /// Shared futex pages, unmapped after the workers are gone.
    maps: Vec<*mut libc::c_void>,
    /// Where each pid is registered while unreaped, so a watchdog can kill it.
    live: Option<Arc<Live>>,
}

// SAFETY: the raw pointers are only mmap'd pages owned by this set.
unsafe impl Send for WorkerSet {}

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
        let mut set = WorkerSet { work_type, children: Vec::new(), maps: Vec::new(), live };
        let mut i = 0;
        while i < count {
            let links = set.pair_links()?;
            for link in links {
                set.fork_one(gate, link)?;
            }
            i += group;
        }
        Ok(set)
    }

    fn pair_links(&mut self) -> Result<Vec<PairLink>, WorkerError> {
        Ok(match self.work_type {
            WorkType::PipeIo { .. } | WorkType::CachePipe { .. } => {
                let (a_rx, b_tx) = pipe()?;
                let (b_rx, a_tx) = pipe()?;
                vec![
                    PairLink::Pipes { rx: a_rx, tx: a_tx, leader: true },
                    PairLink::Pipes { rx: b_rx, tx: b_tx, leader: false },
                ]
            }
            WorkType::FutexPingPong { .. } => {
                let word = self.shared_page()? as *const AtomicU32;
                vec![
                    PairLink::Futex { word, leader: true },
                    PairLink::Futex { word, leader: false },
                ]
            }
            WorkType::FutexFanOut { .. }
            | WorkType::FanOutCompute { .. }
            | WorkType::MutexContention { .. } => {
                let shared = self.shared_page()? as *const Shared;
                (0..self.work_type.group_size())
                    .map(|index| PairLink::Group { shared, index })
                    .collect()
            }
            _ => vec![PairLink::None],
        })
    }

    /// A zeroed `MAP_SHARED` page that the group's processes will all see, unmapped when the
    /// set is dropped. Zero is every [`Shared`] field's starting state.
    fn shared_page(&mut self) -> Result<*mut libc::c_void, WorkerError> {
        // SAFETY: anonymous shared mapping; checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                SHARED_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(os("mmap"));
        }
        self.maps.push(p);
        Ok(p)
    }

    fn fork_one(&mut self, gate: &StartGate, link: PairLink) -> Result<(), WorkerError> {
        let (report_rx, report_tx) = pipe()?;
        // Block SIGUSR1 across fork so the child cannot be killed by an early stop signal
        // before it has installed its handler.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: sigset manipulation on local, initialized sets.
        unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
        }
        let parent = unsafe { libc::getpid() };
        // SAFETY: the child only runs the work loop and leaves through _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            child_main(self.work_type, gate, report_tx, link, parent);
        }
        // SAFETY: restoring the mask saved above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        if pid < 0 {
            return Err(os("fork"));
        }
        // Also from the parent, so killpg works even if the child has not run yet.
        // SAFETY: setpgid on our own child.
        unsafe { libc::setpgid(pid, pid) };
        if let Some(live) = &self.live {
            live.add_pid(pid);
        }
        self.children.push(Child { pid, report: report_rx, reaped: false });
        Ok(())
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
        let deadline = Instant::now() + grace;
        let raw = read_reports(&self.children, deadline);
        self.kill_and_reap();
        let mut reports = Vec::new();
        let mut errors = Vec::new();
        for (i, (c, r)) in self.children.iter().zip(raw).enumerate() {
            match r {
                Ok(bytes) => match serde_json::from_slice::<WorkerReport>(&bytes) {
                    Ok(rep) => reports.push(rep),
                    Err(e) => {
                        errors.push(format!("worker {i} (pid {}) sent a bad report: {e}", c.pid))
                    }
                },
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
        for &p in &self.maps {
            // SAFETY: pages mapped in pair_links; no worker uses them any more.
            unsafe { libc::munmap(p, SHARED_LEN) };
        }
    }
}

/// Read one length-prefixed report per child, all in parallel, until `deadline`.
fn read_reports(children: &[Child], deadline: Instant) -> Vec<Result<Vec<u8>, String>> {
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); children.len()];
    let mut done: Vec<Option<Result<(), String>>> = vec![None; children.len()];
    for c in children {
        // SAFETY: fcntl on an fd we own.
        unsafe {
            let fl = libc::fcntl(c.report.as_raw_fd(), libc::F_GETFL);
            libc::fcntl(c.report.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    let complete = |b: &[u8]| {
        b.len() >= 8
            && b.len() as u64 - 8 >= u64::from_le_bytes(b[..8].try_into().unwrap_or([0; 8]))
    };
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
            let mut chunk = [0u8; 65536];
            loop {
                // SAFETY: reading into a local buffer of the given length.
                let n = unsafe {
                    libc::read(
                        children[i].report.as_raw_fd(),
                        chunk.as_mut_ptr().cast(),
                        chunk.len(),
                    )
                };
                if n > 0 {
                    bufs[i].extend_from_slice(&chunk[..n as usize]);
                    if complete(&bufs[i]) {
                        done[i] = Some(Ok(()));
                        break;
                    }
                } else if n == 0 {
                    done[i] =
                        Some(Err("exited without a report (panicked or crashed)".to_string()));
                    break;
                } else {
                    break;
                }
            }
        }
    }
    bufs.into_iter()
        .zip(done)
        .map(|(b, d)| match d {
            Some(Ok(())) => Ok(b[8..].to_vec()),
            Some(Err(e)) => Err(e),
            None => Err("did not report before the stop deadline and was killed".to_string()),
        })
        .collect()
}

/// The child side: never returns.
fn child_main(wt: WorkType, gate: &StartGate, report: OwnedFd, link: PairLink, parent: i32) -> ! {
    // SAFETY (whole function): single-threaded child after fork; libc calls with valid args.
    unsafe {
        libc::setpgid(0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigusr1 as *const () as usize;
        // No SA_RESTART: a blocking call returns EINTR so the loop sees the stop.
        sa.sa_flags = 0;
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        // Keep only our own fds. Inherited copies of other gates' write ends (this worker's
        // own, or those of scenarios running concurrently on other threads) would keep those
        // gates open and their workers from ever starting.
        let mut keep = vec![gate.read.as_raw_fd(), report.as_raw_fd()];
        match &link {
            PairLink::Pipes { rx, tx, .. } => keep.extend([rx.as_raw_fd(), tx.as_raw_fd()]),
            PairLink::None | PairLink::Futex { .. } | PairLink::Group { .. } => {}
        }
        close_all_but(&mut keep);
        let mut b = 0u8;
        loop {
            let n = libc::read(gate.read.as_raw_fd(), (&mut b as *mut u8).cast(), 1);
            let interrupted =
                n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR);
            if !interrupted || STOP.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut meter = Meter::start();
        let stop = Stop(());
        run_work(wt, &mut meter, &stop, &link);
        meter.finish(true)
    }));
    let Ok(rep) = outcome else {
        // SAFETY: leaving the forked child without running the parent's atexit handlers.
        unsafe { libc::_exit(101) }
    };
    let body = serde_json::to_vec(&rep).unwrap_or_default();
    let mut msg = (body.len() as u64).to_le_bytes().to_vec();
    msg.extend_from_slice(&body);
    write_all(report.as_raw_fd(), &msg);
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// Close every fd from 3 up except those in `keep`.
fn close_all_but(keep: &mut [i32]) {
    keep.sort_unstable();
    let mut next = 3u32;
    for &k in keep.iter() {
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

fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// One unit of CPU work: a few dependent multiply-adds the optimizer cannot drop.
#[inline]
pub fn spin(units: u64) {
    let mut x = black_box(0x2545_F491_4F6C_DD1Du64);
    for i in 0..units * 16 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    black_box(x);
}

/// Run `f` and record how long it blocked.
#[inline]
fn timed<T>(meter: &mut Meter, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let r = f();
    meter.record_wake(t.elapsed().as_nanos() as u64);
    r
}

/// Wait until `fd` is readable and read one byte; `false` if stopped first.
fn recv_byte(fd: i32, stop: &Stop) -> bool {
    loop {
        if stop.is_set() {
            return false;
        }
        let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: poll/read on our own fds with valid buffers.
        unsafe {
            if libc::poll(&mut p, 1, 20) > 0 {
                let mut b = 0u8;
                let n = libc::read(fd, (&mut b as *mut u8).cast(), 1);
                return n == 1;
            }
        }
    }
}

fn send_byte(fd: i32) {
    write_all(fd, &[1]);
}

fn futex_wait(word: &AtomicU32, expected: u32) {
    let ts = libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 };
    // SAFETY: FUTEX_WAIT on a live shared word with a relative timeout.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAIT, expected, &ts);
    }
}

fn futex_wake(word: &AtomicU32) {
    futex_wake_n(word, 1);
}

fn futex_wake_n(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE on a live shared word.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, n);
    }
}

fn sleep_for(d: Duration) {
    // Interrupted early by the stop signal, which is what we want.
    let ts = libc::timespec { tv_sec: d.as_secs() as i64, tv_nsec: d.subsec_nanos() as i64 };
    // SAFETY: nanosleep with a valid request and no remainder pointer.
    unsafe { libc::nanosleep(&ts, std::ptr::null_mut()) };
}

fn cache_pass(buf: &mut [u8], stride: usize) -> u64 {
    let stride = stride.max(1);
    let mut n = 0;
    let mut i = 0;
    while i < buf.len() {
        buf[i] = buf[i].wrapping_add(1);
        i += stride;
        n += 1;
    }
    black_box(&buf);
    n
}

/// The work loop of one worker.
fn run_work(wt: WorkType, m: &mut Meter, stop: &Stop, link: &PairLink) {
    // SAFETY (libc calls below): plain syscalls with valid arguments in a single-threaded child.
    match wt {
        WorkType::CpuSpin => {
            while !stop.is_set() {
                spin(CHECKPOINT_UNITS);
                m.add_units(CHECKPOINT_UNITS);
            }
        }
        WorkType::YieldHeavy => {
            while !stop.is_set() {
                timed(m, || unsafe { libc::sched_yield() });
                m.add_units(1);
            }
        }
        WorkType::Mixed => {
            while !stop.is_set() {
                spin(CHECKPOINT_UNITS);
                timed(m, || unsafe { libc::sched_yield() });
                m.add_units(CHECKPOINT_UNITS);
            }
        }
        WorkType::IoSync => {
            let Some(file) = tempfile_fd() else { return };
            let buf = vec![0xA5u8; 64 * 1024];
            while !stop.is_set() {
                unsafe {
                    libc::pwrite(file.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0);
                    libc::fdatasync(file.as_raw_fd());
                }
                timed(m, || sleep_for(Duration::from_micros(100)));
                m.add_units(1);
            }
        }
        WorkType::Bursty { burst_ms, sleep_ms } => {
            while !stop.is_set() {
                let end = Instant::now() + Duration::from_millis(burst_ms);
                while Instant::now() < end && !stop.is_set() {
                    spin(CHECKPOINT_UNITS);
                    m.add_units(CHECKPOINT_UNITS);
                }
                if !stop.is_set() {
                    timed(m, || sleep_for(Duration::from_millis(sleep_ms)));
                }
            }
        }
        WorkType::PipeIo { burst_iters } => {
            pipe_loop(m, stop, link, |_| spin(burst_iters), burst_iters)
        }
        WorkType::CachePipe { size_kb, burst_iters } => {
            let mut buf = vec![0u8; (size_kb * 1024) as usize];
            pipe_loop(
                m,
                stop,
                link,
                |_| {
                    cache_pass(&mut buf, 64);
                },
                burst_iters,
            )
        }
        WorkType::FutexPingPong { spin_iters } => {
            let PairLink::Futex { word, leader } = link else { return };
            // SAFETY: the page stays mapped until the WorkerSet in the parent is dropped,
            // which happens after this process is reaped.
            let word = unsafe { &**word };
            let (mine, theirs) = if *leader { (0, 1) } else { (1, 0) };
            while !stop.is_set() {
                // Wait for our turn: the word equals `mine`.
                let t = Instant::now();
                while word.load(Ordering::Acquire) != mine && !stop.is_set() {
                    futex_wait(word, theirs);
                }
                if stop.is_set() {
                    break;
                }
                m.record_wake(t.elapsed().as_nanos() as u64);
                spin(spin_iters);
                word.store(theirs, Ordering::Release);
                futex_wake(word);
                m.add_units(spin_iters);
            }
        }
        WorkType::CachePressure { size_kb, stride } | WorkType::CacheYield { size_kb, stride } => {
            let yields = matches!(wt, WorkType::CacheYield { .. });
            let mut buf = vec![0u8; (size_kb * 1024) as usize];
            while !stop.is_set() {
                let n = cache_pass(&mut buf, stride as usize);
                if yields {
                    timed(m, || unsafe { libc::sched_yield() });
                }
                m.add_units(n);
            }
        }
        WorkType::ForkExit => {
            while !stop.is_set() {
                let pid = unsafe { libc::fork() };
                if pid == 0 {
                    unsafe { libc::_exit(0) };
                }
                if pid > 0 {
                    let mut st = 0;
                    timed(m, || unsafe { libc::waitpid(pid, &mut st, 0) });
                }
                m.add_units(1);
            }
        }
        WorkType::NiceSweep => {
            let mut nice = -20;
            while !stop.is_set() {
                unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) };
                nice = if nice >= 19 { -20 } else { nice + 1 };
                spin(CHECKPOINT_UNITS);
                m.add_units(CHECKPOINT_UNITS);
            }
        }
        WorkType::AffinityChurn { spin_iters } => {
            let allowed = allowed_cpus();
            while !stop.is_set() {
                if !allowed.is_empty() {
                    let cpu = allowed[(m.next_rand() % allowed.len() as u64) as usize];
                    set_affinity(&[cpu]);
                }
                spin(spin_iters);
                m.add_units(spin_iters);
            }
        }
        WorkType::PolicyChurn { spin_iters } => {
            let policies = [libc::SCHED_OTHER, libc::SCHED_BATCH, libc::SCHED_IDLE];
            let mut i = 0;
            while !stop.is_set() {
                let p = libc::sched_param { sched_priority: 0 };
                unsafe { libc::sched_setscheduler(0, policies[i % policies.len()], &p) };
                i += 1;
                spin(spin_iters);
                m.add_units(spin_iters);
            }
        }
        WorkType::PageFaultChurn { region_kb, touches_per_cycle, spin_iters } => {
            let len = (region_kb * 1024) as usize;
            let region = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if region == libc::MAP_FAILED {
                return;
            }
            let pages = (len / 4096).max(1) as u64;
            while !stop.is_set() {
                for _ in 0..touches_per_cycle {
                    let off = (m.next_rand() % pages) as usize * 4096;
                    unsafe { *(region as *mut u8).add(off) = 1 };
                }
                unsafe { libc::madvise(region, len, libc::MADV_DONTNEED) };
                spin(spin_iters);
                m.add_units(touches_per_cycle);
            }
            unsafe { libc::munmap(region, len) };
        }
        WorkType::FutexFanOut { fan_out, spin_iters } => {
            let Some((shared, index)) = group(link) else { return };
            let n = receivers(fan_out);
            if index == 0 {
                while !stop.is_set() {
                    spin(spin_iters);
                    if !fan_publish(shared, n, m, stop) {
                        break;
                    }
                    m.add_units(spin_iters);
                }
            } else {
                let mut seen = 0;
                while !stop.is_set() && fan_receive(shared, &mut seen, m, stop) {
                    spin(spin_iters);
                    fan_ack(shared, n);
                    m.add_units(spin_iters);
                }
            }
        }
        WorkType::FanOutCompute { fan_out, cache_footprint_kb, operations, sleep_usec } => {
            let Some((shared, index)) = group(link) else { return };
            let n = receivers(fan_out);
            if index == 0 {
                while !stop.is_set() {
                    sleep_for(Duration::from_micros(sleep_usec));
                    if stop.is_set() || !fan_publish(shared, n, m, stop) {
                        break;
                    }
                    m.add_units(1);
                }
            } else {
                let mut mats = Matrices::new(cache_footprint_kb);
                let mut seen = 0;
                while !stop.is_set() && fan_receive(shared, &mut seen, m, stop) {
                    for _ in 0..operations {
                        mats.multiply();
                    }
                    fan_ack(shared, n);
                    m.add_units(operations);
                }
            }
        }
        WorkType::Sequence { first, rest } => {
            let mut io = None;
            for phase in std::iter::once(&first).chain(rest).cycle() {
                if stop.is_set() {
                    break;
                }
                run_phase(*phase, m, stop, &mut io);
            }
        }
        WorkType::MutexContention { hold_iters, work_iters, .. } => {
            let Some((shared, _)) = group(link) else { return };
            while !stop.is_set() && mutex_lock(shared, m, stop) {
                spin(hold_iters);
                mutex_unlock(shared);
                spin(work_iters);
                m.add_units(hold_iters + work_iters);
            }
        }
        WorkType::Custom { run, .. } => run(m, stop),
    }
}

/// This worker's group state and its index in the group.
fn group(link: &PairLink) -> Option<(&Shared, usize)> {
    match link {
        // SAFETY: the page stays mapped until the WorkerSet in the parent is dropped, which
        // happens after this process is reaped.
        PairLink::Group { shared, index } => Some((unsafe { &**shared }, *index)),
        _ => None,
    }
}

/// CLOCK_MONOTONIC in ns: comparable between processes, unlike `Instant`.
fn mono_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime fills the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Messenger side of one fan-out round: publish a new generation, wake every receiver and
/// wait until all `n` acknowledged it. `false` if stopped first.
fn fan_publish(s: &Shared, n: u32, m: &mut Meter, stop: &Stop) -> bool {
    // Every receiver acknowledged the previous round, so no stale ack can land after this.
    s.acks.store(0, Ordering::Relaxed);
    s.stamp_ns.store(mono_ns(), Ordering::Relaxed);
    s.word.fetch_add(1, Ordering::Release);
    futex_wake_n(&s.word, i32::MAX);
    let mut slept = false;
    loop {
        let a = s.acks.load(Ordering::Acquire);
        if a >= n {
            break;
        }
        if stop.is_set() {
            return false;
        }
        futex_wait(&s.acks, a);
        slept = true;
    }
    if slept {
        m.record_wake(mono_ns().saturating_sub(s.ack_ns.load(Ordering::Relaxed)));
    }
    true
}

/// Receiver side: wait for a generation newer than `seen` and record the latency from the
/// messenger's wake stamp. `false` if stopped first.
fn fan_receive(s: &Shared, seen: &mut u32, m: &mut Meter, stop: &Stop) -> bool {
    loop {
        let g = s.word.load(Ordering::Acquire);
        if g != *seen {
            *seen = g;
            break;
        }
        if stop.is_set() {
            return false;
        }
        futex_wait(&s.word, g);
    }
    // The messenger cannot start another round before this receiver acknowledges, so the
    // stamp is this round's.
    m.record_wake(mono_ns().saturating_sub(s.stamp_ns.load(Ordering::Relaxed)));
    true
}

/// Receiver side: this round is done; the last of `n` receivers wakes the messenger.
fn fan_ack(s: &Shared, n: u32) {
    // fetch_max, not store: receivers race, and the messenger wants the latest ack.
    s.ack_ns.fetch_max(mono_ns(), Ordering::Relaxed);
    if s.acks.fetch_add(1, Ordering::AcqRel) + 1 >= n {
        futex_wake_n(&s.acks, 1);
    }
}

/// Take the group's mutex (Drepper's three-state futex mutex); a waiter that slept records
/// the time since the release that woke it. `false` if stopped before getting it.
fn mutex_lock(s: &Shared, m: &mut Meter, stop: &Stop) -> bool {
    let w = &s.word;
    if w.compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
        return true;
    }
    let mut c = w.swap(2, Ordering::Acquire);
    let mut slept = false;
    while c != 0 {
        if stop.is_set() {
            // Leaving the word at 2 only costs the holder one spare wake.
            return false;
        }
        futex_wait(w, 2);
        slept = true;
        c = w.swap(2, Ordering::Acquire);
    }
    if slept {
        m.record_wake(mono_ns().saturating_sub(s.stamp_ns.load(Ordering::Relaxed)));
    }
    true
}

fn mutex_unlock(s: &Shared) {
    if s.word.fetch_sub(1, Ordering::Release) != 1 {
        // Someone is (or was) waiting: stamp the release, free the word, wake one.
        s.stamp_ns.store(mono_ns(), Ordering::Relaxed);
        s.word.store(0, Ordering::Release);
        futex_wake_n(&s.word, 1);
    }
}

/// Three square matrices sized so together they take about `footprint_kb`.
struct Matrices {
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
}

impl Matrices {
    fn new(footprint_kb: u64) -> Matrices {
        let cells = (footprint_kb as usize * 1024 / (3 * 8)).max(16);
        let n = (cells as f64).sqrt() as usize;
        let a = (0..n * n).map(|i| (i % 7) as f64 + 0.5).collect();
        let b = (0..n * n).map(|i| (i % 5) as f64 - 1.5).collect();
        Matrices { n, a, b, c: vec![0.0; n * n] }
    }

    /// c = a × b (i-k-j order, so the inner loop walks rows).
    fn multiply(&mut self) {
        let n = self.n;
        self.c.iter_mut().for_each(|x| *x = 0.0);
        for i in 0..n {
            for k in 0..n {
                let aik = self.a[i * n + k];
                for j in 0..n {
                    self.c[i * n + j] += aik * self.b[k * n + j];
                }
            }
        }
        black_box(&self.c);
    }
}

/// Run one [`Phase`] of a Sequence; `io` is the phase's temp file, opened on first use.
fn run_phase(phase: Phase, m: &mut Meter, stop: &Stop, io: &mut Option<Option<OwnedFd>>) {
    match phase {
        Phase::Spin(d) => {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.is_set() {
                spin(CHECKPOINT_UNITS);
                m.add_units(CHECKPOINT_UNITS);
            }
        }
        Phase::Sleep(d) => {
            timed(m, || sleep_for(d));
            m.add_units(1);
        }
        Phase::Yield(d) => {
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.is_set() {
                // SAFETY: sched_yield has no preconditions.
                timed(m, || unsafe { libc::sched_yield() });
                m.add_units(1);
            }
        }
        Phase::Io(d) => {
            let Some(file) = io.get_or_insert_with(tempfile_fd) else {
                // No temp file: the phase cannot do I/O; wait it out so the cycle keeps time.
                timed(m, || sleep_for(d));
                return;
            };
            let fd = file.as_raw_fd();
            let buf = vec![0x5Au8; 64 * 1024];
            let end = Instant::now() + d;
            while Instant::now() < end && !stop.is_set() {
                // SAFETY: writing from a valid buffer to our own fd.
                unsafe { libc::pwrite(fd, buf.as_ptr().cast(), buf.len(), 0) };
                // SAFETY: fdatasync on our own fd.
                timed(m, || unsafe { libc::fdatasync(fd) });
                m.add_units(1);
            }
        }
    }
}

fn pipe_loop(
    m: &mut Meter,
    stop: &Stop,
    link: &PairLink,
    mut work: impl FnMut(&mut Meter),
    units: u64,
) {
    let PairLink::Pipes { rx, tx, leader } = link else { return };
    let (rx, tx) = (rx.as_raw_fd(), tx.as_raw_fd());
    if *leader {
        send_byte(tx);
    }
    while !stop.is_set() {
        let t = Instant::now();
        if !recv_byte(rx, stop) {
            break;
        }
        m.record_wake(t.elapsed().as_nanos() as u64);
        work(m);
        send_byte(tx);
        m.add_units(units);
    }
}

/// An unlinked file in the temp directory for IoSync.
fn tempfile_fd() -> Option<OwnedFd> {
    let dir = std::ffi::CString::new(std::env::temp_dir().to_string_lossy().as_bytes()).ok()?;
    // SAFETY: open with a valid C string; O_TMPFILE creates an unnamed file.
    let fd = unsafe {
        libc::open(dir.as_ptr(), libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC, 0o600)
    };
    // SAFETY: fd is fresh and owned here.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size given.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

fn set_affinity(cpus: &[usize]) {
    // SAFETY: as in allowed_cpus.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid_alive(pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    fn run(
        wt: WorkType,
        n: usize,
        hold: Duration,
        grace: Duration,
    ) -> (Vec<i32>, Result<Vec<WorkerReport>, WorkerError>) {
        let mut gate = StartGate::new().unwrap();
        let mut set = WorkerSet::spawn(wt, n, &gate).unwrap();
        let pids = set.pids();
        gate.release();
        std::thread::sleep(hold);
        let r = set.stop_and_collect(grace);
        (pids, r)
    }

    #[test]
    fn names_round_trip_and_errors_list_valid_ones() {
        for n in IMPLEMENTED.iter().filter(|n| !NEEDS_PARAMETERS.contains(n)) {
            assert_eq!(WorkType::from_name(n).unwrap().name(), *n);
        }
        let e = WorkType::from_name("Spinny").unwrap_err().to_string();
        assert!(e.contains("unknown work type \"Spinny\"") && e.contains("CpuSpin, YieldHeavy"));
        assert!(e.contains("MutexContention"), "{e}");
        assert!(matches!(WorkType::from_name("Sequence"), Err(WorkTypeError::NeedsParameters(_))));
        let seq = WorkType::Sequence { first: Phase::Spin(Duration::ZERO), rest: &[] };
        assert_eq!(seq.name(), "Sequence");
        assert_eq!(WorkType::from_name("FutexFanOut").unwrap().group_size(), 5);
        assert_eq!(WorkType::from_name("MutexContention").unwrap().group_size(), 4);
    }

    /// Fan-out rounds are lockstep: no member can be more than one round ahead of another.
    fn assert_lockstep(r: &[WorkerReport]) {
        let rounds: Vec<u64> = r.iter().map(|w| w.iterations).collect();
        let (lo, hi) = (rounds.iter().min().unwrap(), rounds.iter().max().unwrap());
        assert!(*lo > 0 && hi - lo <= 1, "rounds per member: {rounds:?}");
    }

    #[test]
    fn futex_fan_out_wakes_every_receiver_each_round() {
        let wt = WorkType::FutexFanOut { fan_out: 3, spin_iters: 64 };
        let (_, r) = run(wt, 4, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 4);
        assert_lockstep(&r);
        for w in &r[1..] {
            assert!(w.wake_sample_total >= w.iterations, "receiver missed wakes: {w:?}");
            assert!(w.resume_latencies_ns.iter().all(|&l| l < 2_000_000_000), "{w:?}");
        }
    }

    #[test]
    fn fan_out_compute_runs_the_operations_after_each_wake() {
        let wt = WorkType::FanOutCompute {
            fan_out: 2,
            cache_footprint_kb: 16,
            operations: 3,
            sleep_usec: 100,
        };
        let (_, r) = run(wt, 6, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 6);
        // Two groups of one dispatcher and two workers, each group in lockstep.
        for g in r.chunks(3) {
            assert_lockstep(g);
            for w in &g[1..] {
                assert_eq!(w.work_units, 3 * w.iterations, "{w:?}");
                assert!(w.wake_sample_total > 0);
            }
        }
    }

    #[test]
    fn sequence_cycles_through_its_phases() {
        static REST: &[Phase] = &[
            Phase::Sleep(Duration::from_millis(15)),
            Phase::Yield(Duration::from_millis(5)),
            Phase::Io(Duration::from_millis(5)),
        ];
        let wt = WorkType::Sequence { first: Phase::Spin(Duration::from_millis(10)), rest: REST };
        let (_, r) = run(wt, 1, Duration::from_millis(400), Duration::from_secs(2));
        let w = &r.unwrap()[0];
        assert!(w.work_units > CHECKPOINT_UNITS, "spin phase did no work: {w:?}");
        // The Sleep phase ran (at least once) for its whole duration.
        let slept = w.resume_latencies_ns.iter().filter(|&&l| l >= 15_000_000).count();
        assert!(slept >= 1, "{:?}", w.resume_latencies_ns);
        assert!(w.wake_sample_total > slept as u64, "yield/io phases recorded nothing");
        assert!(w.off_cpu_ns > 0);
    }

    #[test]
    fn mutex_contention_blocks_and_records_wakes() {
        let wt = WorkType::MutexContention { contenders: 4, hold_iters: 4096, work_iters: 16 };
        let (_, r) = run(wt, 4, Duration::from_millis(300), Duration::from_secs(2));
        let r = r.unwrap();
        assert!(r.len() == 4 && r.iter().all(|w| w.completed), "{r:?}");
        // The lock changes hands; that every contender gets it within 300 ms is the host's
        // fairness, not the work type's: on a busy host a woken waiter can lose every race
        // to a contender already running (seen: one of four with 0 iterations at load 7).
        let progressed = r.iter().filter(|w| w.iterations > 0).count();
        assert!(progressed >= 2, "the lock never passed between contenders: {r:?}");
        let waits: u64 = r.iter().map(|w| w.wake_sample_total).sum();
        assert!(waits > 0, "four contenders on one lock never waited");
    }

    #[test]
    fn futex_mutex_excludes() {
        // Threads stand in for processes: the futex word works the same way.
        let shared = Shared {
            word: AtomicU32::new(0),
            acks: AtomicU32::new(0),
            stamp_ns: AtomicU64::new(0),
            ack_ns: AtomicU64::new(0),
        };
        let counter = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let mut m = Meter::start();
                    for _ in 0..5000 {
                        assert!(mutex_lock(&shared, &mut m, &Stop(())));
                        // A non-atomic read-modify-write: loses updates without exclusion.
                        let v = counter.load(Ordering::Relaxed);
                        std::hint::spin_loop();
                        counter.store(v + 1, Ordering::Relaxed);
                        mutex_unlock(&shared);
                    }
                });
            }
        });
        assert_eq!(counter.load(Ordering::Relaxed), 20_000);
        assert_eq!(shared.word.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn cpu_spin_reports_real_work() {
        let (_, r) = run(WorkType::CpuSpin, 2, Duration::from_millis(200), Duration::from_secs(2));
        let r = r.unwrap();
        assert_eq!(r.len(), 2);
        for w in &r {
            assert!(w.iterations > 0 && w.cpu_time_ns > 0 && w.wall_time_ns > 0, "{w:?}");
            assert!(w.completed);
        }
    }

    #[test]
    fn pipe_io_records_wake_latencies() {
        let (_, r) = run(
            WorkType::PipeIo { burst_iters: 64 },
            2,
            Duration::from_millis(200),
            Duration::from_secs(2),
        );
        let r = r.unwrap();
        assert!(r.iter().all(|w| w.wake_sample_total > 0 && !w.resume_latencies_ns.is_empty()));
    }

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
