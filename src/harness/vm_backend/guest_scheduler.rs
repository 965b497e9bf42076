//! The guest's sched_ext scheduler for one boot: started once before the first test and kept
//! attached across the boot's tests, each test getting its own record (event deltas, ops name,
//! attach time) through the lifecycle's segments.
//!
//! A test during which the scheduler left (it exited, or the kernel kicked it out) fails with
//! the lifecycle's one-line reason, and the scheduler is restarted for the next test. A test
//! declared `fresh_scheduler` gets a restarted one. After the last test it is stopped (SIGINT,
//! SIGKILL after the grace period) and the stop goes into that test's record. Every stop is
//! also sent to the host in a [`super::wire::SCHEDULER_STOPPED_FRAME`]. Once a start fails,
//! every later test ends with that reason: a skip on a kernel without sched_ext, a failure
//! otherwise.
//!
//! The lifecycle itself is [`crate::harness::scheduler::lifecycle`]'s; this module only decides
//! when to start, segment and stop in a batch.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use ktstr_vm::request::SchedulerRequest;

use super::scheduled::no_sched_ext;
use super::wire::SchedulerStopped;
use crate::harness::execution::{Execution, Verdict};
use crate::harness::scheduler::host::{DETACH_TIMEOUT, STOP_GRACE};
use crate::harness::scheduler::{
    Attached, LaunchSpec, LifecycleError, SchedExtSysfs, SchedulerRun,
};

type Events = Option<BTreeMap<String, u64>>;

/// Why the scheduler cannot run for the rest of the boot.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unavailable {
    /// The guest kernel has no sched_ext: the scheduler's tests are skips.
    Skip(String),
    /// It would not attach: the remaining tests fail.
    Fail(String),
}

/// The boot's scheduler: attached, gone (to be restarted), or unavailable for good.
pub struct GuestScheduler {
    spec: LaunchSpec,
    sysfs: SchedExtSysfs,
    kmsg: Option<PathBuf>,
    release: String,
    attached: Option<Attached>,
    unavailable: Option<Unavailable>,
}

/// Where each stop goes (the guest sends it to the host in a
/// [`super::wire::SCHEDULER_STOPPED_FRAME`]).
pub type StopSink<'a> = &'a mut dyn FnMut(SchedulerStopped);

impl GuestScheduler {
    /// Starts the requested scheduler on the guest's `/sys`, reading `/dev/kmsg` for the
    /// kernel's reasons. `release` is the guest's `uname -r`, for the no-sched_ext skip.
    pub fn start(request: &SchedulerRequest, release: &str) -> GuestScheduler {
        let spec = LaunchSpec {
            name: request.name.clone(),
            binary: request.path.clone().into(),
            args: request.args.clone(),
            attach_timeout: Duration::from_secs(request.attach_timeout_s),
            stop_grace: STOP_GRACE,
            detach_timeout: DETACH_TIMEOUT,
        };
        let kmsg = Some(PathBuf::from("/dev/kmsg"));
        GuestScheduler::start_with(spec, SchedExtSysfs::new("/sys"), kmsg, release)
    }

    /// [`GuestScheduler::start`] against any sysfs root and kernel log (tests use synthetic
    /// ones).
    pub fn start_with(
        spec: LaunchSpec,
        sysfs: SchedExtSysfs,
        kmsg: Option<PathBuf>,
        release: &str,
    ) -> GuestScheduler {
        let mut scheduler = GuestScheduler {
            spec,
            sysfs,
            kmsg,
            release: release.to_string(),
            attached: None,
            unavailable: None,
        };
        scheduler.attach();
        scheduler
    }

    fn attach(&mut self) {
        match Attached::start(&self.spec, &self.sysfs, self.kmsg.as_deref()) {
            Ok(a) => {
                eprintln!(
                    "ktstr guest: scheduler {} attached as {} in {} ms",
                    self.spec.name,
                    a.ops(),
                    a.attach_time().as_millis()
                );
                self.attached = Some(a);
            }
            Err(LifecycleError::NoSchedExt(_)) => {
                self.unavailable =
                    Some(Unavailable::Skip(no_sched_ext(&self.spec.name, &self.release)));
            }
            Err(e) => self.unavailable = Some(Unavailable::Fail(e.to_string())),
        }
    }

    /// Before `test`: the scheduler restarted if the test asks for a fresh one or the last one
    /// left. The counters at the start of the test, or the test's whole record when the
    /// scheduler cannot run.
    pub fn before(
        &mut self,
        test: &str,
        fresh: bool,
        stops: StopSink<'_>,
    ) -> Result<Events, Box<Execution>> {
        if fresh
            && self.unavailable.is_none()
            && let Some(attached) = self.attached.take()
        {
            let run = attached.finish();
            stops(stopped(&run, format!("fresh scheduler for {test}")));
        }
        if self.attached.is_none() && self.unavailable.is_none() {
            self.attach();
        }
        match (&self.attached, &self.unavailable) {
            (Some(a), _) => Ok(a.events()),
            (None, Some(Unavailable::Skip(why))) => {
                let mut ex = Execution::default();
                ex.skip(why.clone());
                Err(Box::new(ex))
            }
            (None, Some(Unavailable::Fail(why))) => Err(Box::new(Execution {
                verdict: Verdict::Failed,
                reasons: vec![why.clone()],
                ..Execution::default()
            })),
            (None, None) => unreachable!("attach sets one of them"),
        }
    }

    /// After `test` ran with the counters `before` at its start: its scheduler record, and a
    /// failure when the scheduler left during it (or, after the `last` test, did not stop
    /// cleanly).
    pub fn after(
        &mut self,
        test: &str,
        before: Events,
        last: bool,
        execution: &mut Execution,
        stops: StopSink<'_>,
    ) {
        let Some(mut attached) = self.attached.take() else { return };
        let run = if last {
            let run = attached.finish_from(before);
            stops(stopped(&run, "end of boot".into()));
            run
        } else {
            let segment = attached.segment(before);
            if segment.problems.is_empty() {
                self.attached = Some(attached);
            } else {
                // Reaps the process and waits for the kernel to be back on its own scheduler.
                let gone = attached.finish();
                stops(stopped(&gone, format!("left during {test}")));
            }
            segment
        };
        if !run.problems.is_empty() {
            execution.verdict = Verdict::Failed;
            execution.reasons.extend(run.problems.iter().cloned());
        }
        execution.scheduler_run = Some(run);
    }
}

fn stopped(run: &SchedulerRun, why: String) -> SchedulerStopped {
    let stop = run.stop.clone().unwrap_or_default();
    SchedulerStopped {
        name: run.name.clone(),
        why,
        detach_ms: stop.detach.as_millis() as u64,
        killed_after_grace: stop.killed_after_grace,
        state_after: stop.state_after,
        problems: run.problems.clone(),
    }
}

#[cfg(test)]
#[path = "guest_scheduler_tests.rs"]
mod tests;
