//! The messages of the VM backend, all JSON: what a test binary says about its entries
//! ([`DescribedEntry`]), what a guest reports per test ([`STARTED_FRAME`], [`GuestResult`]),
//! and the one-line exchange between a test process and the run's coordinator ([`Ask`],
//! [`Answer`]).
//!
//! It owns the shapes only; who sends what when is in the sibling modules.

use serde::{Deserialize, Serialize};

use crate::harness::execution::Execution;

/// Frame a guest sends just before it runs a test: a [`RunKey`]. A crash after it and before
/// the test's [`RESULT_FRAME`] names the test that brought the guest down.
pub const STARTED_FRAME: &str = "ktstr-started";
/// Frame carrying a [`GuestResult`].
pub const RESULT_FRAME: &str = "ktstr-result";
/// Frame a guest sends each time it stops its scheduler: a [`SchedulerStopped`].
pub const SCHEDULER_STOPPED_FRAME: &str = "ktstr-scheduler-stopped";

/// Which run of which test: the entry's name and the variant's label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunKey {
    pub test: String,
    pub variant: String,
}

/// One run of an entry as the VM backend schedules it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedRun {
    pub key: RunKey,
    /// `{n}n{l}l{c}c{t}t`.
    pub topology: String,
    pub flags: Vec<String>,
    pub memory_mb: Option<u32>,
    /// The entry's declared step duration, seconds (sizes the boot's deadline).
    pub duration_s: u64,
    /// The sched_ext scheduler this run needs, resolved on the host by the test binary; the
    /// error is the run's one-line failure (a missing binary, a failed workspace build).
    /// `None` under the kernel's own scheduler.
    #[serde(default)]
    pub scheduler: Option<Result<RunScheduler, String>>,
}

/// A run's scheduler as the host resolved it: runs with equal values may share a boot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RunScheduler {
    /// The declared name (the sidecar's `scheduler`).
    pub name: String,
    /// The binary on the host, packed into the guest as `/scheduler`.
    pub binary: String,
    /// Its arguments for this run's flags (`Scheduler::args_for`).
    pub args: Vec<String>,
    pub attach_timeout_s: u64,
}

/// Why and how a guest stopped its scheduler (after the last test, before a test asking for a
/// fresh one, or after it left mid-test).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerStopped {
    pub name: String,
    /// `end of boot`, `fresh scheduler for <test>`, or `left during <test>`.
    pub why: String,
    /// From SIGINT to sched_ext reporting `disabled`, milliseconds.
    pub detach_ms: u64,
    pub killed_after_grace: bool,
    pub state_after: String,
    /// What went wrong while stopping (ignored SIGINT, still enabled).
    pub problems: Vec<String>,
}

/// One `#[ktstr_test]` entry of a binary, as `KTSTR_VM_DESCRIBE` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedEntry {
    pub name: String,
    pub host_only: bool,
    pub runs: Vec<DescribedRun>,
}

/// What a guest reports after running one test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuestResult {
    pub key: RunKey,
    /// `uname -r` inside the guest.
    pub kernel_release: String,
    pub execution: Execution,
    /// Guest wall time from the run's start frame to its result: cleanup of the previous run,
    /// set-up, the body, teardown (what batching costs per test beyond its declared time).
    #[serde(default)]
    pub guest_elapsed_ms: u64,
}

/// A test process asking the coordinator for one run's results on every kernel of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ask {
    /// The test binary (its `/proc/self/exe`).
    pub binary: String,
    pub key: RunKey,
    /// The asking process's job (`KTSTR_JOB`, e.g. `repeat-1` for `--repeat`): each job is
    /// booted on its own, so a repeat measures again instead of getting an earlier repeat's
    /// results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
}

/// The coordinator's reply to an [`Ask`]: one [`KernelResult`] per kernel, in the order the
/// kernels were given to `cargo ktstr test`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub results: Vec<KernelResult>,
}

/// The outcome of one run on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelResult {
    /// The kernel's label (cache key, release, or release@commit).
    pub kernel: String,
    /// The kernel tree's commit, when the kernel came from a git tree.
    pub kernel_commit: Option<String>,
    /// `qemu-kvm` or `qemu-tcg`.
    pub backend: String,
    /// Under `qemu-tcg`, what advanced the guest's clocks: `instructions` or `host`.
    #[serde(default)]
    pub tcg_clock: Option<String>,
    /// vCPUs the guest had, and whether that was more than the host's CPUs.
    pub vcpus: u32,
    pub overcommitted: bool,
    /// The guest's report, or why there is none: an infrastructure failure (boot, crash,
    /// hang, QEMU) with the console tail, never a verdict.
    pub outcome: Result<GuestResult, String>,
    /// Load on the host over the boot that ran this test.
    pub host_load: Option<crate::sidecar::model::HostLoad>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::scheduler::{SchedulerRun, StopReport};
    use std::time::Duration;

    /// A guest's result with its scheduler record survives the JSON frame unchanged, and a
    /// run's scheduler (resolved, or the resolution error) survives the description.
    #[test]
    fn the_scheduler_record_and_the_run_scheduler_cross_the_wire() {
        let run = SchedulerRun {
            name: "scx_bpfland".into(),
            ops: "bpfland_1.1.4_x86_64_unknown_linux_gnu".into(),
            attach: Duration::from_millis(1805),
            events_before: Some([("SCX_EV_DISPATCH_KEEP_LAST".to_string(), 3)].into()),
            events_after: Some([("SCX_EV_DISPATCH_KEEP_LAST".to_string(), 10)].into()),
            stop: Some(StopReport {
                detach: Duration::from_millis(110),
                killed_after_grace: false,
                exit_status: Some("exit status: 0".into()),
                state_after: "disabled".into(),
            }),
            problems: vec![],
        };
        let result = GuestResult {
            key: RunKey { test: "t".into(), variant: "base".into() },
            kernel_release: "7.3.4+deb13-cloud-amd64".into(),
            execution: Execution { scheduler_run: Some(run), ..Execution::default() },
            guest_elapsed_ms: 1300,
        };
        let json = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<GuestResult>(&json).unwrap(), result);

        let described = DescribedRun {
            key: RunKey { test: "t".into(), variant: "base".into() },
            topology: "1n1l2c1t".into(),
            flags: vec!["llc".into()],
            memory_mb: None,
            duration_s: 1,
            scheduler: Some(Ok(RunScheduler {
                name: "scx_bpfland".into(),
                binary: "/c/scx/bin/scx_bpfland".into(),
                args: vec!["--primary-domain".into(), "all".into()],
                attach_timeout_s: 30,
            })),
        };
        let failed =
            DescribedRun { scheduler: Some(Err("cannot build".into())), ..described.clone() };
        for d in [described, failed] {
            let json = serde_json::to_string(&d).unwrap();
            assert_eq!(serde_json::from_str::<DescribedRun>(&json).unwrap(), d);
        }
        // A description from before schedulers travelled still reads, as "no scheduler".
        let old = r#"{"key":{"test":"t","variant":"base"},"topology":"1n1l2c1t","flags":[],
            "memory_mb":null,"duration_s":1}"#;
        assert_eq!(serde_json::from_str::<DescribedRun>(old).unwrap().scheduler, None);
    }
}
