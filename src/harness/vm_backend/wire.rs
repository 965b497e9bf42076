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
    /// vCPUs the guest had, and whether that was more than the host's CPUs.
    pub vcpus: u32,
    pub overcommitted: bool,
    /// The guest's report, or why there is none: an infrastructure failure (boot, crash,
    /// hang, QEMU) with the console tail, never a verdict.
    pub outcome: Result<GuestResult, String>,
    /// Load on the host over the boot that ran this test.
    pub host_load: Option<crate::sidecar::model::HostLoad>,
}
