//! Harness overhead, measured in one run so the ratios share the machine's current load:
//! 1. wall time of a whole host scenario beyond its declared hold (target < 150 ms);
//! 2. CpuSpin throughput with the in-worker measurement on vs the bare loop (target: within
//!    3 %), both in forked processes of the same shape.
//!
//! Needs cgroups (root). Run with `cargo bench --bench harness_overhead`.

use std::time::{Duration, Instant};

use ktstr::harness::measure::{CHECKPOINT_UNITS, Meter};
use ktstr::harness::worker::{StartGate, Stop, WorkType, WorkerSet, allowed_cpus, spin};
use ktstr::harness::{CgroupDef, Ctx};

const HOLD: Duration = Duration::from_millis(500);

/// The CpuSpin loop without any checkpoint: only the unit counter.
fn bare_spin(m: &mut Meter, stop: &Stop) {
    let mut units = 0u64;
    while !stop.is_set() {
        spin(CHECKPOINT_UNITS);
        units += CHECKPOINT_UNITS;
    }
    // One call so the report carries the count; a single checkpoint costs nothing here.
    m.add_units(units);
}

/// Units per CPU-second over `workers` forked workers of `wt`.
fn throughput(wt: WorkType, workers: usize) -> f64 {
    let mut gate = StartGate::new().expect("pipe");
    let mut set = WorkerSet::spawn(wt, workers, &gate).expect("fork");
    gate.release();
    std::thread::sleep(HOLD);
    let reports = set.stop_and_collect(Duration::from_secs(2)).expect("reports");
    let units: u64 = reports.iter().map(|r| r.work_units).sum();
    let cpu: u64 = reports.iter().map(|r| r.cpu_time_ns).sum();
    units as f64 / (cpu.max(1) as f64 / 1e9)
}

fn main() {
    let ctx = Ctx::new(allowed_cpus(), HOLD, 2);
    let mut overheads = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        ctx.run_cgroups(&[CgroupDef::new("bench", WorkType::CpuSpin)])
            .expect("scenario (needs root for cgroups)");
        overheads.push(t.elapsed().saturating_sub(HOLD));
    }
    overheads.sort();
    println!(
        "harness overhead beyond a {} ms hold: median {:.1} ms (min {:.1}, max {:.1}); target < 150 ms",
        HOLD.as_millis(),
        overheads[1].as_secs_f64() * 1e3,
        overheads[0].as_secs_f64() * 1e3,
        overheads[2].as_secs_f64() * 1e3,
    );

    // Alternate measured and bare runs so drift in background load hits both alike.
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        on.push(throughput(WorkType::CpuSpin, 1));
        off.push(throughput(WorkType::Custom { name: "BareSpin", run: bare_spin }, 1));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (med(&mut on), med(&mut off));
    println!(
        "CpuSpin throughput measured/bare: {:.4} ({:.3e} vs {:.3e} units per CPU-second); \
         target >= 0.97",
        on / off,
        on,
        off
    );
}
