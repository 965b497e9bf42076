//! The VM backend: `#[ktstr_test]` entries run inside QEMU guests booted with the kernel under
//! test and the test's declared topology, and their sidecars are written on the host by the
//! same builder and writer as host runs.
//!
//! - [`coordinator`]: owns the run's VMs (in `cargo ktstr test`); answers test processes.
//! - [`batch`]: one group's boots, with a crash failing only the test that caused it.
//! - [`guest`]: the agent a test binary runs as the guest's `/init`; [`guest_scheduler`] keeps
//!   its sched_ext scheduler attached across the boot's tests.
//! - [`scheduled`]: a run's scheduler on the host: resolved, and what is decided without a boot.
//! - [`describe`]: a test binary listing its entries for the coordinator.
//! - [`wire`]: the messages between them.
//! - this module: the test process's side: ask the coordinator, write one sidecar per kernel.
//!
//! Booting QEMU, kernels and initramfs are `ktstr_vm`'s; what a test does is the runner's.

pub mod batch;
pub mod coordinator;
pub mod describe;
pub mod guest;
pub mod guest_scheduler;
pub mod scheduled;
pub mod wire;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use self::coordinator::SOCKET_ENV;
use self::wire::{Answer, Ask, KernelResult, RunKey};
use super::entry::TestEntry;
use super::execution::{Variant, build_sidecar};
use super::runner::{RunOutcome, variants};
use crate::provenance::kernel::KernelIdentity;
use crate::provenance::{Accel, Backend, RunContext};
use crate::sidecar::write::{WriteOptions, write_sidecar};

/// Whether this test process runs its tests in VMs: `cargo ktstr test --kernel` started a
/// coordinator for it.
pub fn active() -> bool {
    std::env::var_os(SOCKET_ENV).is_some_and(|v| !v.is_empty())
}

/// One run's outcomes on every kernel: sidecars for the runs the guests reported, and the
/// infrastructure failures (no sidecar: nothing was measured).
pub struct VmOutcomes {
    pub runs: Vec<RunOutcome>,
    pub infrastructure: Vec<String>,
}

/// Runs every variant of `entry` through the coordinator and writes a sidecar per (variant,
/// kernel) the guest reported.
pub fn run_entry_outcomes(entry: &TestEntry, opts: &WriteOptions) -> VmOutcomes {
    let mut out = VmOutcomes { runs: Vec::new(), infrastructure: Vec::new() };
    for variant in variants(entry) {
        let key = RunKey { test: entry.name.to_string(), variant: variant.label.clone() };
        match ask(&key) {
            Ok(answer) => {
                for result in answer.results {
                    record(entry, &variant, result, opts, &mut out);
                }
            }
            Err(why) => out.infrastructure.push(format!("[{}] {why}", variant.label)),
        }
    }
    out
}

fn record(
    entry: &TestEntry,
    variant: &Variant,
    result: KernelResult,
    opts: &WriteOptions,
    out: &mut VmOutcomes,
) {
    let label = format!("{} on {}", variant.label, result.kernel);
    let guest = match result.outcome {
        Ok(guest) => guest,
        Err(why) => {
            out.infrastructure.push(format!("[{label}] {why}"));
            return;
        }
    };
    let accel =
        if result.backend == Backend::Qemu(Accel::Kvm).as_str() { Accel::Kvm } else { Accel::Tcg };
    let kernel = KernelIdentity {
        version: Some(guest.kernel_release).filter(|r| !r.is_empty()),
        commit: result.kernel_commit,
        requested: None,
    };
    let ctx = RunContext::detect(Backend::Qemu(accel)).with_kernel(kernel);
    let mut execution = guest.execution;
    execution.host_load = result.host_load;
    execution.vcpus_overcommitted = result.overcommitted.then_some(result.vcpus);
    let mut sidecar = build_sidecar(entry, variant, &execution, &ctx);
    sidecar.provenance.tcg_clock = result.tcg_clock;
    let written = write_sidecar(&sidecar, opts).map_err(|e| e.to_string());
    out.runs.push(RunOutcome { label, sidecar, written, reasons: execution.reasons });
}

/// One exchange with the coordinator: an [`Ask`] line out, an [`Answer`] line back.
fn ask(key: &RunKey) -> Result<Answer, String> {
    let socket = std::env::var_os(SOCKET_ENV).unwrap_or_default();
    let binary = std::env::current_exe()
        .map_err(|e| format!("cannot name this test binary: {e}"))?
        .to_string_lossy()
        .into_owned();
    let lost = |e: std::io::Error| {
        format!("lost the VM coordinator of `cargo ktstr test` ({SOCKET_ENV}): {e}")
    };
    let mut stream = UnixStream::connect(&socket).map_err(lost)?;
    let mut line =
        serde_json::to_string(&Ask { binary, key: key.clone(), job: job_of_this_process() })
            .expect("asks serialise");
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(lost)?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(lost)?;
    serde_json::from_str(&reply).map_err(|e| format!("unreadable answer from the coordinator: {e}"))
}

/// This process's `KTSTR_JOB`, if set and non-empty.
fn job_of_this_process() -> Option<String> {
    std::env::var("KTSTR_JOB").ok().filter(|j| !j.is_empty())
}
