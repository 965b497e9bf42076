//! Tests meant for the VM backend: `cargo ktstr test --kernel 7.3 -- --features vm --test vm`
//! boots each topology once and runs its tests in the guest (the two 1n1l2c1t tests share one
//! boot).
//! They build only with `--features vm`; without `--kernel` they then run on the host like
//! any other test, and the NUMA one is skipped on a host too small for it.
//!
//! `not_starved = false`: TCG guests on a small shared host are starved by design (every vCPU
//! is a host thread competing with the host's own work); these tests show the VM backend's
//! mechanics (kernel, topology, batching), not scheduling fairness.

use ktstr::prelude::*;

/// Two spinners per CPU on a 2-CPU guest.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2, cores = 2, not_starved = false)]
fn vm_spin(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::CpuSpin)
}

/// Pipe ping-pong in the same 2-CPU guest as `vm_spin` (one boot runs both).
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2, cores = 2, not_starved = false)]
fn vm_pipe(ctx: &Ctx) -> Result<AssertResult> {
    steady(ctx, WorkType::PipeIo { burst_iters: 1024 })
}

/// Two NUMA nodes of one LLC each, two cores per LLC: a cgroup per node's CPUs.
#[ktstr_test(duration_s = 1, workers_per_cgroup = 2, numa_nodes = 2, llcs = 2, cores = 2,
             not_starved = false)]
fn vm_numa_2n2l(ctx: &Ctx) -> Result<AssertResult> {
    let cpus = ctx.cpus().to_vec();
    let half = cpus.len() / 2;
    let stats = ctx.run_cgroups(&[
        CgroupDef::new("node0", WorkType::CpuSpin).cpus(cpus[..half].to_vec()),
        CgroupDef::new("node1", WorkType::CpuSpin).cpus(cpus[half..].to_vec()),
    ])?;
    let mut result = AssertResult::pass(stats);
    result.check(cpus.len() == 4, || format!("expected 4 CPUs, have {cpus:?}"));
    Ok(result)
}
