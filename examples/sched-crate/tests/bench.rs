//! The suite ktstr's `benches/sched_guest.rs` runs in one TCG guest per group to measure the
//! guest's scheduler lifecycle; not a test of this crate's scheduler. Built only with
//! `--features bench`.
//!
//! - `attach_00` … `attach_09` each ask for a fresh scx_bpfland: ten attaches and detaches in
//!   one boot, each recorded in the test's sidecar (`scx_attach_ms`).
//! - `batched_0` … `batched_4` share the attached scheduler: what a test costs beyond its
//!   declared second when nothing is restarted.
//! - `throughput_{i}_on` / `throughput_{i}_off`, in alternation: one CpuSpin worker, counting
//!   through the harness's measurement (`on`: a checkpoint, the monotonic clock and
//!   `sched_getcpu`, every 1024 units) or not (`off`: the same loop counting locally, reported
//!   once at the end).
//!
//! Every test has `not_starved = false`: a TCG guest on a shared host is starved by design, and
//! a benchmark run must not be dropped for it.

use ktstr::harness::measure::{CHECKPOINT_UNITS, Meter};
use ktstr::harness::worker::{Stop, spin};
use ktstr::prelude::*;

#[derive(Clone, Copy, Schedulers)]
pub enum Sched {
    #[scheduler(name = "scx_bpfland", on_path = "scx_bpfland")]
    Bpfland,
}

/// The CpuSpin loop without the measurement: the same steps, counted in a local variable and
/// handed to the meter after the stop, so no checkpoint runs while it spins.
fn bare_spin(m: &mut Meter, stop: &Stop) {
    let mut steps = 0u64;
    while !stop.is_set() {
        spin(CHECKPOINT_UNITS);
        steps += 1;
    }
    // One iteration per step, as CpuSpin counts them; units of 0 never reach a checkpoint.
    for _ in 1..steps {
        m.add_units(0);
    }
    m.add_units(steps * CHECKPOINT_UNITS);
}

const BARE_SPIN: WorkType = WorkType::Custom { name: "BareSpin", run: bare_spin };

macro_rules! bench_tests {
    (#[$attr:meta] [$($name:ident),*] => $work:expr) => {$(
        #[$attr]
        fn $name(ctx: &Ctx) -> Result<AssertResult> {
            steady(ctx, $work)
        }
    )*};
}

bench_tests! {
    #[ktstr_test(scheduler = "scx_bpfland", fresh_scheduler = true, duration_s = 1,
                 workers_per_cgroup = 1, not_starved = false)]
    [attach_00, attach_01, attach_02, attach_03, attach_04,
     attach_05, attach_06, attach_07, attach_08, attach_09] => WorkType::CpuSpin
}

bench_tests! {
    #[ktstr_test(scheduler = "scx_bpfland", duration_s = 1, workers_per_cgroup = 1,
                 not_starved = false)]
    [batched_0, batched_1, batched_2, batched_3, batched_4] => WorkType::CpuSpin
}

bench_tests! {
    #[ktstr_test(scheduler = "scx_bpfland", duration_s = 2, workers_per_cgroup = 1,
                 not_starved = false)]
    [throughput_0_on, throughput_1_on, throughput_2_on, throughput_3_on,
     throughput_4_on] => WorkType::CpuSpin
}

bench_tests! {
    #[ktstr_test(scheduler = "scx_bpfland", duration_s = 2, workers_per_cgroup = 1,
                 not_starved = false)]
    [throughput_0_off, throughput_1_off, throughput_2_off, throughput_3_off,
     throughput_4_off] => BARE_SPIN
}
