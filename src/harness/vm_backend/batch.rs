//! One group's boots: every run of a (kernel, topology, memory, scheduler) group of one test
//! binary, in as few boots as the kernel command line allows, with a crash costing only the
//! test that caused it.
//!
//! A boot's request lists the group's pending runs in order. When the boot ends badly (a
//! kernel panic, a hang past the deadline, QEMU dying), the results that arrived are kept,
//! the run that had started without reporting is failed with the boot's error (console tail
//! included), and the runs after it go into a fresh boot. A boot that fails before any run
//! started fails every run it carried with the same error, since a fresh boot would fail the
//! same way. Every failure here is an infrastructure failure, reported as such, not a verdict.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use ktstr_vm::boot::{BootError, BootOptions, boot};
use ktstr_vm::frame::Frame;
use ktstr_vm::kernel::Kernel;
use ktstr_vm::request::{Request, RequestedTest, SchedulerRequest};
use ktstr_vm::{Accel, TcgClock, Topology};

use super::wire::{
    DescribedRun, GuestResult, RESULT_FRAME, RunKey, SCHEDULER_STOPPED_FRAME, STARTED_FRAME,
    SchedulerStopped,
};
use crate::harness::machine_lock::MachineLock;
use crate::harness::runner::{host_load, sample_load};
use crate::sidecar::model::HostLoad;

/// Boot-to-`/init` allowance under TCG on a loaded small machine, on top of the tests' time.
const BOOT_ALLOWANCE: Duration = Duration::from_secs(120);
/// Per-run allowance beyond its declared step duration (setup, several steps, teardown).
const PER_RUN_ALLOWANCE: Duration = Duration::from_secs(40);

/// What one group boots.
pub struct Group<'a> {
    pub kernel: &'a Kernel,
    pub initramfs: &'a Path,
    pub topology: Topology,
    pub memory_mb: Option<u32>,
    /// `Kvm` or `Tcg`, chosen once for the whole run.
    pub accel: Accel,
    /// What advances the guest's clocks under TCG.
    pub tcg_clock: TcgClock,
    /// The sched_ext scheduler the guest keeps attached across the boot's runs.
    pub scheduler: Option<SchedulerRequest>,
    pub runs: Vec<DescribedRun>,
}

/// One run's outcome: the guest's report or the infrastructure failure, and the host's load
/// over the boot it ran in.
pub type RunOutcome = (Result<GuestResult, String>, Option<HostLoad>);

/// Runs every run of `group`; each key of its runs gets exactly one outcome.
pub fn run_group(group: &Group<'_>) -> HashMap<RunKey, RunOutcome> {
    let mut pending: VecDeque<DescribedRun> = group.runs.iter().cloned().collect();
    let mut outcomes = HashMap::new();
    while !pending.is_empty() {
        let chunk = take_chunk(&mut pending, group.topology, group.scheduler.as_ref());
        eprintln!("ktstr: boot of {} run(s): {}", chunk.len(), names(&chunk));
        let request = Request {
            tests: chunk.iter().map(requested).collect(),
            scheduler: group.scheduler.clone(),
            ..Request::new(group.topology)
        };
        let mut options = BootOptions::new(group.topology);
        if let Some(mb) = group.memory_mb {
            options.memory_mb = mb;
        }
        options.accel = group.accel;
        options.tcg_clock = group.tcg_clock;
        options.timeout = deadline(&chunk, group.scheduler.as_ref());
        // Held for the whole boot: a VM's measurements must not compete with another
        // scenario on this machine, host or VM, from this run or any other.
        let _machine = match MachineLock::acquire(&format!("VM boot of {}", names(&chunk))) {
            Ok(guard) => guard,
            Err(e) => {
                for run in chunk {
                    outcomes.insert(run.key.clone(), (Err(e.to_string()), None));
                }
                continue;
            }
        };
        let load0 = sample_load();
        let started_at = std::time::Instant::now();
        let booted = boot(group.kernel, group.initramfs, &request, &options);
        let load = Some(host_load(&load0, &sample_load()));
        eprintln!("ktstr: boot ended after {:.1} s", started_at.elapsed().as_secs_f64());
        let (frames, failure) = match &booted {
            Ok(outcome) => (outcome.frames.as_slice(), None),
            Err(e) => (e.frames_seen(), Some(e)),
        };
        log_scheduler_stops(frames);
        let (reported, started) = read_frames(frames);
        // Without a culprit and without progress, a fresh boot would fail the same way.
        let fail_all = started.is_none() && reported.is_empty();
        let mut rerun = Vec::new();
        for run in chunk {
            let key = run.key.clone();
            let outcome = match (reported.get(&key), failure) {
                (Some(result), _) => {
                    eprintln!(
                        "ktstr: {}[{}] took {:.2} s in the guest (declared steps of {} s)",
                        key.test,
                        key.variant,
                        result.guest_elapsed_ms as f64 / 1000.0,
                        run.duration_s
                    );
                    Ok(result.clone())
                }
                (None, None) => Err("the guest finished without reporting this test".to_string()),
                (None, Some(e)) if fail_all || started.as_ref() == Some(&key) => {
                    Err(infrastructure(e))
                }
                (None, Some(_)) => {
                    rerun.push(run);
                    continue;
                }
            };
            outcomes.insert(key, (outcome, load.clone()));
        }
        for run in rerun.into_iter().rev() {
            pending.push_front(run);
        }
    }
    outcomes
}

fn names(runs: &[DescribedRun]) -> String {
    let names: Vec<String> =
        runs.iter().map(|r| format!("{}[{}]", r.key.test, r.key.variant)).collect();
    names.join(", ")
}

fn requested(run: &DescribedRun) -> RequestedTest {
    RequestedTest {
        name: run.key.test.clone(),
        variant: run.key.variant.clone(),
        flags: run.flags.clone(),
    }
}

/// As many pending runs as one request can carry on the kernel command line (at least one).
fn take_chunk(
    pending: &mut VecDeque<DescribedRun>,
    topology: Topology,
    scheduler: Option<&SchedulerRequest>,
) -> Vec<DescribedRun> {
    let mut request = Request { scheduler: scheduler.cloned(), ..Request::new(topology) };
    let mut chunk = Vec::new();
    while let Some(run) = pending.front() {
        request.tests.push(requested(run));
        if !chunk.is_empty() && !request.fits_cmdline() {
            break;
        }
        chunk.extend(pending.pop_front());
    }
    chunk
}

/// The boot's deadline: the boot allowance plus each run's allowance and declared duration,
/// and with a scheduler one attach timeout per run (a run may restart it) plus one more.
fn deadline(runs: &[DescribedRun], scheduler: Option<&SchedulerRequest>) -> Duration {
    let attach = Duration::from_secs(scheduler.map_or(0, |s| s.attach_timeout_s));
    runs.iter().fold(BOOT_ALLOWANCE + attach, |d, r| {
        d + PER_RUN_ALLOWANCE + attach + Duration::from_secs(r.duration_s.saturating_mul(4))
    })
}

/// Prints each time the guest stopped its scheduler: a stop that went wrong also fails the run
/// it belongs to, but the log is where a departure's clean-up is seen.
fn log_scheduler_stops(frames: &[Frame]) {
    let stops = frames.iter().filter(|f| f.kind == SCHEDULER_STOPPED_FRAME);
    for stop in stops.filter_map(|f| serde_json::from_slice::<SchedulerStopped>(&f.payload).ok()) {
        eprintln!(
            "ktstr: scheduler {} stopped ({}): detached in {} ms, killed after grace: {}, \
             state {}{}",
            stop.name,
            stop.why,
            stop.detach_ms,
            stop.killed_after_grace,
            stop.state_after,
            if stop.problems.is_empty() {
                String::new()
            } else {
                format!("; {}", stop.problems.join("; "))
            }
        );
    }
}

/// The guest's results by key, and the run that had started last without a result.
fn read_frames(frames: &[Frame]) -> (HashMap<RunKey, GuestResult>, Option<RunKey>) {
    let mut reported = HashMap::new();
    let mut started = None;
    for f in frames {
        if f.kind == STARTED_FRAME {
            started = serde_json::from_slice::<RunKey>(&f.payload).ok();
        } else if f.kind == RESULT_FRAME
            && let Ok(result) = serde_json::from_slice::<GuestResult>(&f.payload)
        {
            if started.as_ref() == Some(&result.key) {
                started = None;
            }
            reported.insert(result.key.clone(), result);
        }
    }
    (reported, started)
}

fn infrastructure(e: &BootError) -> String {
    format!("infrastructure failure in the VM (not a test verdict): {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::execution::Execution;

    fn run(test: &str) -> DescribedRun {
        DescribedRun {
            key: RunKey { test: test.into(), variant: "base".into() },
            topology: "1n1l2c1t".into(),
            flags: vec![],
            memory_mb: None,
            duration_s: 2,
            scheduler: None,
        }
    }

    fn frame(kind: &str, payload: &impl serde::Serialize) -> Frame {
        Frame { kind: kind.into(), payload: serde_json::to_vec(payload).unwrap() }
    }

    #[test]
    fn the_culprit_is_the_run_started_without_a_result() {
        let (a, b) = (run("a").key, run("b").key);
        let result = GuestResult {
            key: a.clone(),
            kernel_release: "7.3".into(),
            execution: Execution::default(),
            guest_elapsed_ms: 0,
        };
        let frames =
            vec![frame(STARTED_FRAME, &a), frame(RESULT_FRAME, &result), frame(STARTED_FRAME, &b)];
        let (reported, started) = read_frames(&frames);
        assert_eq!(reported.keys().collect::<Vec<_>>(), vec![&a]);
        assert_eq!(started, Some(b));
        let (_, none) = read_frames(&frames[..2]);
        assert_eq!(none, None);
    }

    #[test]
    fn chunks_fit_the_command_line_and_keep_order() {
        let topo: Topology = "1n1l2c1t".parse().unwrap();
        let mut pending: VecDeque<DescribedRun> =
            (0..60).map(|i| run(&format!("a_fairly_long_test_name_{i}"))).collect();
        let first = take_chunk(&mut pending, topo, None);
        assert!(first.len() > 3 && first.len() < 60, "{}", first.len());
        assert_eq!(first[0].key.test, "a_fairly_long_test_name_0");
        assert_eq!(
            pending.front().unwrap().key.test,
            format!("a_fairly_long_test_name_{}", first.len())
        );
        let request =
            Request { tests: first.iter().map(requested).collect(), ..Request::new(topo) };
        assert!(request.fits_cmdline());
    }

    #[test]
    fn the_deadline_grows_with_each_run() {
        assert_eq!(deadline(&[], None), BOOT_ALLOWANCE);
        assert_eq!(
            deadline(&[run("a")], None),
            BOOT_ALLOWANCE + PER_RUN_ALLOWANCE + Duration::from_secs(8)
        );
        let sched = SchedulerRequest {
            name: "s".into(),
            path: "/scheduler".into(),
            args: vec![],
            attach_timeout_s: 30,
        };
        assert_eq!(
            deadline(&[run("a")], Some(&sched)),
            BOOT_ALLOWANCE + PER_RUN_ALLOWANCE + Duration::from_secs(8 + 30 + 30)
        );
    }
}
