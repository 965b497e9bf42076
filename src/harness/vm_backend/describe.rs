//! `KTSTR_VM_DESCRIBE`: a test binary lists its `#[ktstr_test]` entries and their runs as JSON
//! on stdout and exits, without running libtest. The coordinator uses it to group a binary's
//! runs into boots before the first test process asks for a result. A run's sched_ext
//! scheduler is resolved here, in the test binary, where its declaration lives.

use super::scheduled;
use super::wire::{DescribedEntry, DescribedRun, RunKey};
use crate::harness::registry;
use crate::harness::runner::variants;

/// The variable that switches a test binary into describe mode.
pub const DESCRIBE_ENV: &str = "KTSTR_VM_DESCRIBE";

/// Every entry of this binary with its runs (the same expansion the host runner uses).
pub fn describe() -> Vec<DescribedEntry> {
    registry::entries()
        .into_iter()
        .map(|e| DescribedEntry {
            name: e.name.to_string(),
            host_only: e.host_only,
            runs: variants(e)
                .into_iter()
                .map(|v| DescribedRun {
                    scheduler: scheduled::describe(e, &v.flags),
                    key: RunKey { test: e.name.to_string(), variant: v.label },
                    topology: v.topology.to_string(),
                    flags: v.flags,
                    memory_mb: e.memory_mb,
                    duration_s: e.duration_s,
                })
                .collect(),
        })
        .collect()
}

/// Prints [`describe`] as one JSON document and exits 0.
pub fn print_and_exit() -> ! {
    let json = serde_json::to_string(&describe()).expect("descriptions serialise");
    println!("{json}");
    std::process::exit(0)
}
