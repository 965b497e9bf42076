//! The guest agent: what a test binary does as PID 1 in a VM guest. It sets the guest up
//! (`ktstr_vm::guest::Guest::start`, which also checks the topology), runs each requested test
//! with the host runner's own code on the guest's CPUs, reports each through the result port,
//! and powers off.
//!
//! Per test: a [`STARTED_FRAME`], the cgroup trees of the previous test removed, the body run
//! by `runner::run_on`, then a [`RESULT_FRAME`] with the guest's `uname -r` and the
//! execution record. Host load is the host's business (the guest's load says nothing about
//! contention on the host), so it is left empty here.
//!
//! A request naming a sched_ext scheduler (`Request::scheduler`) has it started before the
//! first test and kept attached across the tests ([`GuestScheduler`]): each test's record gets
//! its own share of the scheduler's counters, a test during which it left fails, and it is
//! stopped after the last test.

use ktstr_vm::guest::Guest;
use ktstr_vm::request::{Request, RequestedTest};

use super::guest_scheduler::GuestScheduler;
use super::wire::{
    GuestResult, RESULT_FRAME, RunKey, SCHEDULER_STOPPED_FRAME, STARTED_FRAME, SchedulerStopped,
};
use crate::harness::cgroup;
use crate::harness::execution::{Execution, Variant, Verdict};
use crate::harness::registry;
use crate::harness::runner::{SchedulerControl, run_on};
use crate::harness::watchdog::HANG_GRACE;

/// Runs the guest's requested tests and powers off; never returns.
pub fn run_as_init() -> ! {
    let mut guest = Guest::start();
    let request = guest.request().clone();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mut scheduler = request.scheduler.as_ref().map(|s| GuestScheduler::start(s, &release));
    for (i, test) in request.tests.iter().enumerate() {
        let key = RunKey { test: test.name.clone(), variant: test.variant.clone() };
        guest.send_json(STARTED_FRAME, &key);
        let started = std::time::Instant::now();
        remove_previous_trees();
        let last = i + 1 == request.tests.len();
        let execution = match scheduler.as_mut() {
            None => run_requested(&request, test),
            Some(s) => run_under(s, &request, test, last, &mut guest),
        };
        let guest_elapsed_ms = started.elapsed().as_millis() as u64;
        let result =
            GuestResult { key, kernel_release: release.clone(), execution, guest_elapsed_ms };
        guest.send_json(RESULT_FRAME, &result);
    }
    guest.finish()
}

/// One test under the boot's scheduler: restarted first if it left or the test asks for a
/// fresh one, its share of the counters recorded after.
fn run_under(
    scheduler: &mut GuestScheduler,
    request: &Request,
    test: &RequestedTest,
    last: bool,
    guest: &mut Guest,
) -> Execution {
    let fresh = registry::find(&test.name).is_some_and(|e| e.fresh_scheduler);
    let mut send = |stop: SchedulerStopped| guest.send_json(SCHEDULER_STOPPED_FRAME, &stop);
    match scheduler.before(&test.name, fresh, &mut send) {
        Err(record) => *record,
        Ok(events) => {
            let mut execution = run_requested(request, test);
            scheduler.after(&test.name, events, last, &mut execution, &mut send);
            execution
        }
    }
}

fn run_requested(request: &Request, test: &RequestedTest) -> Execution {
    let Some(entry) = registry::find(&test.name) else {
        return Execution {
            verdict: Verdict::Failed,
            reasons: vec![format!("the guest's binary has no test {:?}", test.name)],
            ..Execution::default()
        };
    };
    let variant = Variant {
        label: test.variant.clone(),
        topology: request.topology,
        flags: test.flags.clone(),
    };
    // Inside the guest the runner's view of "this machine" is the guest, whose topology
    // `Guest::start` already checked against the request.
    let mut execution = run_on(entry, &variant, HANG_GRACE, SchedulerControl::AttachedByCaller);
    execution.host_load = None;
    execution
}

/// The guest runs one test at a time and nothing else, so every ktstr tree left is the
/// previous test's.
fn remove_previous_trees() {
    if let Ok(h) = cgroup::Hierarchy::detect() {
        for swept in cgroup::sweep_all_trees(&h) {
            if let Err(e) = swept.result {
                eprintln!("ktstr guest: cannot remove {}: {e}", swept.top.display());
            }
        }
    }
}
