//! The host test harness: runs `#[ktstr_test]` entries on this machine under its own
//! scheduler, measures the workers and writes one sidecar per run.
//!
//! - [`entry`]: the contract with the proc-macro (`TestEntry`, `Ctx`, `AssertResult`).
//! - [`cgroup`]: per-test cgroup trees on v1 or v2.
//! - [`host_cpus`]: the host's CPU shape and which CPUs a declared topology runs on.
//! - [`machine_lock`]: one measured scenario at a time per machine.
//! - [`measure`]: per-worker measurement and the `CgroupStats`/`ScenarioStats` roll-ups.
//! - [`worker`]: work types and forked worker processes.
//! - [`scenario`]: cgroup declarations and canned scenarios for test bodies.
//! - [`thresholds`]: the `Thresholds` a test declares, from `ktstr-decl`'s threshold list.
//! - `threshold_checks`: judging a run against its thresholds on the host.
//! - [`runner`]: [`run_entry`], gating and checks; yields an [`execution::Execution`] per run.
//! - [`execution`]: the execution record every runner yields and the one function that builds
//!   the sidecar from it.
//! - `contention`: whether a failed run's host was busy with others' work, for its hint.
//! - [`watchdog`]: the body on its own thread, panics and hangs.
//! - [`live`]: the registry of a run's live workers and cgroups, and their teardown.
//! - [`record`]: what a run's scenarios leave behind for its sidecar.
//! - [`registry`]: the binary's list of entries and the hook that runs before `main`.
//! - [`vm_backend`]: running entries in QEMU guests (`cargo ktstr test --kernel`).
//! - [`scheduler`]: declared sched_ext schedulers and their lifecycle around a test body.

pub mod cgroup;
pub(crate) mod contention;
pub mod entry;
pub mod execution;
pub mod host_cpus;
pub(crate) mod live;
pub mod machine_lock;
pub mod measure;
pub(crate) mod record;
pub mod registry;
pub mod runner;
pub mod scenario;
pub mod scheduler;
pub(crate) mod threshold_checks;
pub mod thresholds;
pub mod vm_backend;
pub(crate) mod watchdog;
pub mod worker;

pub use entry::{
    AssertResult, Ctx, GauntletVariant, Skip, TestEntry, TestFn, Thresholds, Topology,
    TopologyConstraints,
};
pub use runner::run_entry;
pub use scenario::{CgroupDef, contend, steady};
pub use worker::WorkType;
