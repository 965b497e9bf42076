//! A small `#[ktstr_test]` suite over different work types and cgroup layouts, each test one
//! second long. Run it with `cargo ktstr test` from this directory.
//!
//! `SPIN_CPUS` is the knob the A/B walkthrough turns: set it to 1 on branch B and every
//! spinner is confined to one CPU, which is what a scheduler that fails to spread load does.
//! The work type stays `CpuSpin`, so A and B pair and `stats compare` sees the drop.

use ktstr::prelude::*;

/// How many of the test's CPUs the spinners may use; 0 = all of them.
const SPIN_CPUS: usize = 0;

fn spinners(ctx: &Ctx) -> Result<AssertResult> {
    let cpus = ctx.cpus();
    let allowed = match SPIN_CPUS {
        0 => cpus.to_vec(),
        n => cpus[..n.min(cpus.len())].to_vec(),
    };
    let stats = ctx.run_cgroups(&[CgroupDef::new("spin", WorkType::CpuSpin).cpus(allowed)])?;
    Ok(AssertResult::pass(stats))
}

/// Two spinners in one cgroup on every CPU.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2, max_spread_pct = 60.0)]
fn spin_steady(ctx: &Ctx) -> Result<AssertResult> {
    spinners(ctx)
}

/// Pipe ping-pong pairs: wake-up latency dominated.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2)]
fn pipe_pairs(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::PipeIo { burst_iters: 1024 })
}

/// A heavy cgroup against a light one, with four times the weight.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2)]
fn weighted_contention(ctx: &Ctx) -> Result<AssertResult> {
    let stats = ctx.run_cgroups(&[
        CgroupDef::new("heavy", WorkType::Mixed).weight(400),
        CgroupDef::new("light", WorkType::YieldHeavy).weight(100),
    ])?;
    Ok(AssertResult::pass(stats))
}

/// Synchronous I/O next to a bursty cgroup.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 1)]
fn io_beside_bursts(ctx: &Ctx) -> Result<AssertResult> {
    let stats = ctx.run_cgroups(&[
        CgroupDef::new("io", WorkType::IoSync),
        CgroupDef::new("bursty", WorkType::Bursty { burst_ms: 20, sleep_ms: 20 }).workers(2),
    ])?;
    Ok(AssertResult::pass(stats))
}

/// One test body over a small gauntlet: its 1-CPU base run plus a 2-CPU and a flagged 2-CPU
/// variant, each with its own sidecar.
#[ktstr_test(duration_s = 1, cores = 1, gauntlet = ["1n1l2c1t", "1n1l2c1t:llc"])]
fn spin_gauntlet(ctx: &Ctx) -> Result<AssertResult> {
    let mut result = spinners(ctx)?;
    result.check(!ctx.cpus().is_empty(), || "no usable CPU".to_string());
    Ok(result)
}
