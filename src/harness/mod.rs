//! The host test harness: runs `#[ktstr_test]` entries on this machine under its own
//! scheduler, measures the workers and writes one sidecar per run.
//!
//! - [`entry`]: the contract with the proc-macro (`TestEntry`, `Ctx`, `AssertResult`).

pub mod entry;

pub use entry::{
    AssertResult, Ctx, GauntletVariant, Skip, TestEntry, TestFn, Thresholds, Topology,
    TopologyConstraints,
};
