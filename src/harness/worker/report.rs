//! How a worker's [`WorkerReport`] reaches its parent: a fixed-size [`ReportSlot`] in memory
//! shared with the parent, big enough for any report. The child stores its report there with
//! plain atomic stores (no serialisation, no allocation) and marks it complete; the parent
//! builds a `WorkerReport` from it. Telling the parent *when* to look is the report pipe's
//! job, in [`super::process`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::sync::SharedState;
use crate::harness::measure::{CPU_IDS, RESERVOIR_CAP, WorkerReport};

/// One worker's report, as the child left it.
#[repr(C)]
pub(super) struct ReportSlot {
    /// 1 once every other field holds the report.
    complete: AtomicU32,
    work_units: AtomicU64,
    iterations: AtomicU64,
    cpu_time_ns: AtomicU64,
    wall_time_ns: AtomicU64,
    off_cpu_ns: AtomicU64,
    migration_count: AtomicU64,
    max_gap_ns: AtomicU64,
    max_gap_cpu: AtomicU64,
    max_gap_at_ms: AtomicU64,
    wake_sample_total: AtomicU64,
    /// The three schedstat deltas, meaningful when `has_schedstat` is 1.
    schedstat: [AtomicU64; 3],
    has_schedstat: AtomicU32,
    completed: AtomicU32,
    cpus_len: AtomicU64,
    cpus: [AtomicU64; CPU_IDS],
    latencies_len: AtomicU64,
    latencies: [AtomicU64; RESERVOIR_CAP],
}

// SAFETY: atomics only; zero is "no report yet".
unsafe impl SharedState for ReportSlot {}

fn store_all(to: &[AtomicU64], from: impl Iterator<Item = u64>) -> u64 {
    let mut n = 0;
    for (slot, v) in to.iter().zip(from) {
        slot.store(v, Ordering::Relaxed);
        n += 1;
    }
    n
}

impl ReportSlot {
    /// Store `r` and mark the slot complete. Allocation-free, for the forked child. Samples
    /// or CPUs beyond the slot's room cannot occur (the meter never keeps more) and would be
    /// dropped.
    pub(super) fn publish(&self, r: &WorkerReport) {
        let set = |a: &AtomicU64, v: u64| a.store(v, Ordering::Relaxed);
        set(&self.work_units, r.work_units);
        set(&self.iterations, r.iterations);
        set(&self.cpu_time_ns, r.cpu_time_ns);
        set(&self.wall_time_ns, r.wall_time_ns);
        set(&self.off_cpu_ns, r.off_cpu_ns);
        set(&self.migration_count, r.migration_count);
        set(&self.max_gap_ns, r.max_gap_ns);
        set(&self.max_gap_cpu, r.max_gap_cpu as u64);
        set(&self.max_gap_at_ms, r.max_gap_at_ms);
        set(&self.wake_sample_total, r.wake_sample_total);
        let schedstat = [r.schedstat_cpu_time_ns, r.schedstat_run_delay_ns, r.schedstat_run_count];
        if schedstat.iter().all(Option::is_some) {
            store_all(&self.schedstat, schedstat.iter().flatten().copied());
            self.has_schedstat.store(1, Ordering::Relaxed);
        }
        self.completed.store(u32::from(r.completed), Ordering::Relaxed);
        let n = store_all(&self.cpus, r.cpus_used.iter().map(|&c| c as u64));
        set(&self.cpus_len, n);
        let n = store_all(&self.latencies, r.resume_latencies_ns.iter().copied());
        set(&self.latencies_len, n);
        self.complete.store(1, Ordering::Release);
    }

    /// The report the child published, or why there is none.
    pub(super) fn read(&self) -> Result<WorkerReport, String> {
        if self.complete.load(Ordering::Acquire) != 1 {
            return Err("the report was announced but not written".to_string());
        }
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let bounded = |len: &AtomicU64, cap: usize, what: &str| match usize::try_from(get(len)) {
            Ok(n) if n <= cap => Ok(n),
            _ => Err(format!("{what} count {} exceeds the room for {cap}", get(len))),
        };
        let cpus = bounded(&self.cpus_len, CPU_IDS, "CPU")?;
        let latencies = bounded(&self.latencies_len, RESERVOIR_CAP, "wake sample")?;
        let schedstat = |i: usize| {
            (self.has_schedstat.load(Ordering::Relaxed) == 1).then(|| get(&self.schedstat[i]))
        };
        Ok(WorkerReport {
            work_units: get(&self.work_units),
            iterations: get(&self.iterations),
            cpu_time_ns: get(&self.cpu_time_ns),
            wall_time_ns: get(&self.wall_time_ns),
            off_cpu_ns: get(&self.off_cpu_ns),
            migration_count: get(&self.migration_count),
            cpus_used: self.cpus[..cpus].iter().map(|c| get(c) as usize).collect(),
            max_gap_ns: get(&self.max_gap_ns),
            max_gap_cpu: get(&self.max_gap_cpu) as usize,
            max_gap_at_ms: get(&self.max_gap_at_ms),
            resume_latencies_ns: self.latencies[..latencies].iter().map(get).collect(),
            wake_sample_total: get(&self.wake_sample_total),
            schedstat_cpu_time_ns: schedstat(0),
            schedstat_run_delay_ns: schedstat(1),
            schedstat_run_count: schedstat(2),
            completed: self.completed.load(Ordering::Relaxed) == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::worker::sync::SharedMapping;

    #[test]
    fn a_published_report_reads_back_unchanged() {
        let slot = SharedMapping::<ReportSlot>::new().unwrap();
        assert!(slot.read().is_err(), "an empty slot has no report");
        let r = WorkerReport {
            work_units: 1,
            iterations: 2,
            cpu_time_ns: 3,
            wall_time_ns: 4,
            off_cpu_ns: 1,
            migration_count: 5,
            cpus_used: vec![0, 3, 1023],
            max_gap_ns: 6,
            max_gap_cpu: 3,
            max_gap_at_ms: 7,
            resume_latencies_ns: vec![9; RESERVOIR_CAP],
            wake_sample_total: RESERVOIR_CAP as u64 + 10,
            schedstat_cpu_time_ns: Some(11),
            schedstat_run_delay_ns: Some(0),
            schedstat_run_count: Some(12),
            completed: true,
        };
        slot.publish(&r);
        assert_eq!(slot.read().unwrap(), r);
        let none = WorkerReport { completed: false, ..WorkerReport::default() };
        let fresh = SharedMapping::<ReportSlot>::new().unwrap();
        fresh.publish(&none);
        assert_eq!(fresh.read().unwrap(), none, "missing schedstat stays None");
    }
}
