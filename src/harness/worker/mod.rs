//! Worker processes: the work types (harness-reference §3.1), forking, the two-phase start,
//! stopping, and getting each worker's [`WorkerReport`] back.
//!
//! Lifecycle: [`StartGate::new`] → [`WorkerSet::spawn`] for each group (children block on the
//! gate) → the caller places the pids in cgroups → [`StartGate::release`] (all start at once)
//! → hold → [`WorkerSet::stop_and_collect`] (SIGUSR1, read reports, SIGKILL whoever is late,
//! reap). A `WorkerSet` dropped on any other path (an error, a panic) kills each worker's
//! process group with SIGKILL and reaps it, so no process outlives the test. Each worker also
//! asks the kernel to SIGKILL it when its parent thread dies (`PR_SET_PDEATHSIG`).
//!
//! # Fork safety
//!
//! Workers are forked from a process that may have other threads: the test harness's, the
//! body's watchdog, other tests' under `cargo test`. A forked child has only the forking
//! thread, and every lock another thread held at the fork stays held in it forever: the
//! allocator's (glibc's malloc guards its own, other allocators may not), std's environment
//! lock, the test harness's output capture. A child that allocates, reads the environment,
//! prints or serializes can therefore deadlock. So after the fork a worker only makes
//! system calls (through libc's thin wrappers, which take no locks), uses atomics, and
//! touches memory that existed before the fork:
//!
//! - the parent allocates and opens everything first: the [`Meter`] with room for every
//!   sample ([`Meter::new`]), the loop's buffers, matrices and temp file ([`prepare`]), the
//!   group's pipes or shared state ([`sync`]), the report slot ([`report`]);
//! - the environment (the temp directory) is read in the parent;
//! - the report travels as atomic stores into memory shared with the parent, then one byte
//!   down a pipe ([`process`]): no serialisation, no allocation;
//! - the child leaves through `_exit`, so nothing is dropped (which would free).
//!
//! The one path that can still take a lock is a panic in a [`WorkType::Custom`] loop: the
//! panic hook allocates and prints. If that deadlocks, the stop deadline kills the worker and
//! reports it as late; no test hangs. Custom loops are held to the same rules as ours.
//!
//! Why not re-exec the test binary in a worker mode instead, which would make everything safe
//! in the child: every test binary would need a hook that runs before `main`, a
//! [`WorkType::Custom`] loop and a [`Phase`] list are addresses in this process's image that
//! mean nothing in a new one, the shared pages would have to become named memory passed by
//! fd, and every worker start would cost an exec. Everything our loops need can simply be
//! made before the fork.
//!
//! Modules: [`work_type`] (what a worker does and what it is called), [`process`] (the gate,
//! forking, the child, collecting), [`loops`] (one loop per work type), [`sync`] (the stop
//! request, shared memory, futexes), [`prepare`] (what a loop needs, made before the fork),
//! [`report`] (the shared report slot). What a worker measures is [`super::measure`]'s; which
//! cgroup it goes to is the caller's.
//!
//! [`Meter`]: crate::harness::measure::Meter
//! [`Meter::new`]: crate::harness::measure::Meter::new
//! [`WorkerReport`]: crate::harness::measure::WorkerReport

mod loops;
mod prepare;
mod process;
mod report;
mod sync;
mod work_type;

#[cfg(test)]
mod fork_safety_test;

pub use loops::spin;
pub use prepare::allowed_cpus;
pub use process::{StartGate, WorkerError, WorkerSet};
pub use sync::Stop;
pub use work_type::{IMPLEMENTED, Phase, WorkType, WorkTypeError};

#[cfg(test)]
pub(crate) mod testing {
    use std::time::Duration;

    use super::{StartGate, WorkType, WorkerError, WorkerSet};
    use crate::harness::measure::WorkerReport;

    pub fn pid_alive(pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    /// Spawn `n` workers of `wt`, release them, hold, and collect with `grace`.
    pub fn run(
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
}
