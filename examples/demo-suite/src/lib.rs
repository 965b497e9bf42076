//! The demo suite's VM scenarios, declared once for every scheduler they run under.
//!
//! `#[ktstr_test(scheduler = "...")]` names one scheduler per test, and `stats compare
//! --a-scheduler eevdf --b-scheduler scx_bpfland` pairs runs by test name, so "the same
//! scenario under two schedulers" is two test binaries holding the same tests:
//! `tests/vm.rs` stamps them under EEVDF, `tests/vm_bpfland.rs` under scx_bpfland. The host
//! suite (`tests/demo.rs`) does not use this library.

/// Defines the demo's VM tests (`vm_spin`, `vm_pipe`, `vm_numa_2n2l`) under `$scheduler`, in
/// a test file that has `use ktstr::prelude::*;` and, for a sched_ext scheduler, a
/// `#[derive(Schedulers)]` declaring it.
///
/// `not_starved = false`: TCG guests on a small shared host are starved by design (every vCPU
/// is a host thread competing with the host's own work); these tests show the VM backend's
/// mechanics (kernel, topology, batching, the scheduler), not scheduling fairness.
#[macro_export]
macro_rules! vm_tests {
    ($scheduler:tt) => {
        /// Two spinners per CPU on a 2-CPU guest.
        #[ktstr_test(scheduler = $scheduler, duration_s = 1, workers_per_cgroup = 2, cores = 2,
                     not_starved = false)]
        fn vm_spin(ctx: &Ctx) -> Result<AssertResult> {
            steady(ctx, WorkType::CpuSpin)
        }

        /// Pipe ping-pong in the same 2-CPU guest as `vm_spin` (one boot runs both).
        #[ktstr_test(scheduler = $scheduler, duration_s = 1, workers_per_cgroup = 2, cores = 2,
                     not_starved = false)]
        fn vm_pipe(ctx: &Ctx) -> Result<AssertResult> {
            steady(ctx, WorkType::PipeIo { burst_iters: 1024 })
        }

        /// Two NUMA nodes of one LLC each, two cores per LLC: a cgroup per node's CPUs.
        #[ktstr_test(scheduler = $scheduler, duration_s = 1, workers_per_cgroup = 2,
                     numa_nodes = 2, llcs = 2, cores = 2, not_starved = false)]
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
    };
}
