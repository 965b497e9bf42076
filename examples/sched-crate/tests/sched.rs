//! The scheduler under test and the tests run under it. `cargo ktstr test --kernel <a
//! sched_ext kernel>` runs them in guests; on a host without sched_ext each scheduler test is
//! a skip saying what is missing, and the `eevdf` baseline runs.
//!
//! The `--slice-us` argument of the declaration is what branch B changes: a much longer slice makes
//! a task that wakes behind spinners wait longer for a CPU, which the wake-up latency of
//! `wake_behind_spinners` shows.
//!
//! `not_starved = false`: in a TCG guest on a small shared host every vCPU is a host thread
//! competing with the host's own work, so the spread and gap limits fail on load alone; the
//! A/B reads the metrics instead.

use ktstr::prelude::*;

/// The schedulers this crate tests under; `eevdf` (the kernel's own) needs no declaration.
#[derive(Clone, Copy, Schedulers)]
pub enum Sched {
    // Branch A: a 5 ms slice (bpfland's default is 20 ms).
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland", args = ["--slice-us", "5000"])]
    #[flag(name = "local-kthreads", args = ["--local-kthreads"])]
    Bpfland,
}

/// Four spinners on one CPU: throughput and fairness under the scheduler.
#[ktstr_test(scheduler = "scx_bpfland", duration_s = 2, workers_per_cgroup = 4, cores = 1,
             not_starved = false)]
fn spin_under_bpfland(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::CpuSpin)
}

/// Pipe ping-pong pairs next to a cgroup of spinners on one CPU: how long a woken task waits.
/// One CPU, so no wakeup can dodge the spinners by landing on an idle CPU.
#[ktstr_test(scheduler = "scx_bpfland", duration_s = 2, workers_per_cgroup = 2, cores = 1,
             not_starved = false)]
fn wake_behind_spinners(ctx: &Ctx) -> Result<AssertResult> {
    let stats = ctx.run_cgroups(&[
        CgroupDef::new("pipes", WorkType::PipeIo { burst_iters: 1024 }),
        CgroupDef::new("spin", WorkType::CpuSpin),
    ])?;
    Ok(AssertResult::pass(stats))
}

/// The same spinners with bpfland's kernel threads kept local (a gauntlet flag profile).
#[ktstr_test(
    scheduler = "scx_bpfland",
    duration_s = 2,
    required_flags = ["local-kthreads"],
    workers_per_cgroup = 2,
    not_starved = false
)]
fn spin_local_kthreads(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::CpuSpin)
}

/// The baseline under the kernel's own scheduler.
#[ktstr_test(duration_s = 2, workers_per_cgroup = 2,
             not_starved = false)]
fn spin_under_eevdf(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::CpuSpin)
}
