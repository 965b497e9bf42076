//! The host test harness: runs `#[ktstr_test]` entries on this machine under its own
//! scheduler, measures the workers and writes one sidecar per run.
//!
//! - [`entry`]: the contract with the proc-macro (`TestEntry`, `Ctx`, `AssertResult`).
//! - [`cgroup`]: per-test cgroup trees on v1 or v2.
//! - [`measure`]: per-worker measurement and the `CgroupStats`/`ScenarioStats` roll-ups.
//! - [`worker`]: work types and forked worker processes.
//! - [`scenario`]: cgroup declarations and canned scenarios for test bodies.
//! - [`runner`]: [`run_entry`], gating and checks; yields an [`execution::Execution`] per run.
//! - [`execution`]: the execution record every runner yields and the one function that builds
//!   the sidecar from it.
//! - [`watchdog`]: the body on its own thread, panics and hangs, the live-resource registry.

pub mod cgroup;
pub mod entry;
pub mod execution;
pub mod measure;
pub mod runner;
pub mod scenario;
pub(crate) mod watchdog;
pub mod worker;

pub use entry::{
    AssertResult, Ctx, GauntletVariant, Skip, TestEntry, TestFn, Thresholds, Topology,
    TopologyConstraints,
};
pub use runner::run_entry;
pub use scenario::{CgroupDef, contend, steady};
pub use worker::WorkType;
