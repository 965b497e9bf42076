//! Measurement: what one worker records about itself ([`Meter`] → [`WorkerReport`]) and the
//! roll-ups into ktstr's `CgroupStats` and `ScenarioStats` (harness-reference §2.2,
//! stats-reference §2.2–2.3 and §6.3).
//!
//! Everything here is measured inside the worker with plain Linux interfaces: the monotonic
//! clock, `CLOCK_THREAD_CPUTIME_ID`, `sched_getcpu` and `/proc/self/schedstat`. Nothing is
//! synthesized: a value that could not be read is `None` in the report, and the roll-up says
//! so through [`Unmeasured`] so the runner can name it in the sidecar's provenance. Forking,
//! pipes and the work loops themselves belong to [`super::worker`].
//!
//! A worker is a child forked from a process that may have other threads, so after the fork
//! it must not allocate (see [`super::worker`]). [`Meter::new`] therefore allocates all the
//! room a report can need up front, in the parent; [`Meter::begin`], the recording methods
//! and [`Meter::finish`] only write into it and make plain system calls.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::metric::{Polarity, metric_def};
use crate::sidecar::model::{CgroupStats, ScenarioStats};

/// Work units between two checkpoints (ktstr's granularity).
pub const CHECKPOINT_UNITS: u64 = 1024;
/// Most wake-latency samples one worker keeps (reservoir sampling beyond that).
pub const RESERVOIR_CAP: usize = 100_000;

/// What one worker measured about itself over one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Units of work done (spin steps, messages, touches...).
    pub work_units: u64,
    /// Completed loop iterations of the work type.
    pub iterations: u64,
    pub cpu_time_ns: u64,
    pub wall_time_ns: u64,
    /// `wall_time_ns − cpu_time_ns`.
    pub off_cpu_ns: u64,
    /// Times `sched_getcpu` differed from the previous checkpoint.
    pub migration_count: u64,
    /// Distinct CPUs seen at checkpoints, sorted.
    pub cpus_used: Vec<usize>,
    /// Longest wall interval between two consecutive checkpoints.
    pub max_gap_ns: u64,
    /// CPU the worker was on at the end of that interval.
    pub max_gap_cpu: usize,
    /// When the longest gap ended, ms after the worker started.
    pub max_gap_at_ms: u64,
    /// Durations of blocking calls (reservoir sample of at most [`RESERVOIR_CAP`]).
    pub resume_latencies_ns: Vec<u64>,
    /// Blocking calls timed, including those the reservoir dropped.
    pub wake_sample_total: u64,
    /// Deltas of `/proc/self/schedstat` (CPU time, run delay, timeslices); `None` when the
    /// file could not be read (no `CONFIG_SCHED_INFO`).
    pub schedstat_cpu_time_ns: Option<u64>,
    pub schedstat_run_delay_ns: Option<u64>,
    pub schedstat_run_count: Option<u64>,
    /// The work loop ended because it was told to stop (not because of an error).
    pub completed: bool,
}

/// `(cpu_time_ns, run_delay_ns, run_count)` from a `/proc/<pid>/schedstat` line.
pub fn parse_schedstat(text: &str) -> Option<(u64, u64, u64)> {
    let mut it = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next()??))
}

/// Reads `/proc/self/schedstat` into a stack buffer: no allocation, so a forked worker may.
fn read_schedstat() -> Option<(u64, u64, u64)> {
    let mut buf = [0u8; 128];
    // SAFETY: open with a NUL-terminated path, read into a buffer of the length given, close
    // the fd opened here.
    let n = unsafe {
        let fd = libc::open(c"/proc/self/schedstat".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let text = std::str::from_utf8(buf.get(..usize::try_from(n).ok()?)?).ok()?;
    parse_schedstat(text)
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn current_cpu() -> usize {
    // SAFETY: sched_getcpu has no preconditions.
    let cpu = unsafe { libc::sched_getcpu() };
    cpu.max(0) as usize
}

/// CPU ids a `cpu_set_t` can name: the most a report's `cpus_used` lists. A worker on a
/// higher CPU does not record it (nor could it be pinned there).
pub(crate) const CPU_IDS: usize = libc::CPU_SETSIZE as usize;

/// A set of CPU ids below [`CPU_IDS`] that needs no allocation.
#[derive(Clone, Copy)]
struct CpuBits([u64; CPU_IDS / 64]);

impl CpuBits {
    const EMPTY: CpuBits = CpuBits([0; CPU_IDS / 64]);

    fn insert(&mut self, cpu: usize) {
        if cpu < CPU_IDS {
            self.0[cpu / 64] |= 1 << (cpu % 64);
        }
    }

    /// Members in ascending order.
    fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..CPU_IDS).filter(|&c| self.0[c / 64] & (1 << (c % 64)) != 0)
    }
}

/// The in-worker recorder. Work loops call [`Meter::add_units`] as they go and
/// [`Meter::record_wake`] around blocking calls; [`Meter::finish`] produces the report.
pub struct Meter {
    start: Instant,
    start_cpu_ns: u64,
    start_schedstat: Option<(u64, u64, u64)>,
    last_checkpoint: Instant,
    last_cpu: usize,
    units_since_checkpoint: u64,
    rng: u64,
    /// Its vectors hold room for every sample and CPU from [`Meter::new`] on.
    report: WorkerReport,
    cpus: CpuBits,
}

impl Meter {
    /// A recorder with room for [`RESERVOIR_CAP`] wake samples and every CPU, not yet
    /// measuring: the one allocating step, for the parent to take before forking.
    pub fn new() -> Meter {
        let now = Instant::now();
        Meter {
            start: now,
            start_cpu_ns: 0,
            start_schedstat: None,
            last_checkpoint: now,
            last_cpu: 0,
            units_since_checkpoint: 0,
            rng: 0,
            report: WorkerReport {
                cpus_used: Vec::with_capacity(CPU_IDS),
                resume_latencies_ns: Vec::with_capacity(RESERVOIR_CAP),
                ..WorkerReport::default()
            },
            cpus: CpuBits::EMPTY,
        }
    }

    /// Start measuring now, on a fresh meter (call it after the start signal, right before
    /// the loop). Does not allocate.
    pub fn begin(&mut self) {
        self.start_schedstat = read_schedstat();
        self.start_cpu_ns = thread_cpu_ns();
        let now = Instant::now();
        let cpu = current_cpu();
        self.start = now;
        self.last_checkpoint = now;
        self.last_cpu = cpu;
        self.units_since_checkpoint = 0;
        self.rng = 0x9E37_79B9_7F4A_7C15 ^ (std::process::id() as u64);
        self.cpus = CpuBits::EMPTY;
        self.cpus.insert(cpu);
    }

    /// [`Meter::new`] and [`Meter::begin`] at once, for measuring in-process.
    pub fn start() -> Meter {
        let mut m = Meter::new();
        m.begin();
        m
    }

    /// Count `units` of work and one completed iteration, taking a checkpoint each time
    /// another [`CHECKPOINT_UNITS`] units have accumulated.
    #[inline]
    pub fn add_units(&mut self, units: u64) {
        self.report.work_units += units;
        self.report.iterations += 1;
        self.units_since_checkpoint += units;
        if self.units_since_checkpoint >= CHECKPOINT_UNITS {
            self.units_since_checkpoint = 0;
            self.checkpoint();
        }
    }

    fn checkpoint(&mut self) {
        let now = Instant::now();
        let cpu = current_cpu();
        let gap = now.duration_since(self.last_checkpoint).as_nanos() as u64;
        if gap > self.report.max_gap_ns {
            self.report.max_gap_ns = gap;
            self.report.max_gap_cpu = cpu;
            self.report.max_gap_at_ms = now.duration_since(self.start).as_millis() as u64;
        }
        if cpu != self.last_cpu {
            self.report.migration_count += 1;
            self.last_cpu = cpu;
            self.cpus.insert(cpu);
        }
        self.last_checkpoint = now;
    }

    /// Record how long a blocking call took to return.
    pub fn record_wake(&mut self, ns: u64) {
        self.report.wake_sample_total += 1;
        if self.report.resume_latencies_ns.len() < RESERVOIR_CAP {
            self.report.resume_latencies_ns.push(ns);
        } else {
            // Algorithm R: keep each new sample with probability cap/total.
            let j = self.next_rand() % self.report.wake_sample_total;
            if (j as usize) < RESERVOIR_CAP {
                self.report.resume_latencies_ns[j as usize] = ns;
            }
        }
    }

    /// A cheap pseudo-random number (xorshift64), for reservoir sampling and work types
    /// that need random choices.
    pub fn next_rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// Stop measuring and produce the report. Does not allocate: the report's vectors are the
    /// ones [`Meter::new`] made.
    pub fn finish(mut self, completed: bool) -> WorkerReport {
        self.checkpoint();
        let wall = self.start.elapsed().as_nanos() as u64;
        let cpu = thread_cpu_ns().saturating_sub(self.start_cpu_ns);
        let end_schedstat = read_schedstat();
        let mut r = self.report;
        r.wall_time_ns = wall;
        r.cpu_time_ns = cpu;
        r.off_cpu_ns = wall.saturating_sub(cpu);
        // Within the capacity `new` reserved: no allocation.
        for cpu in self.cpus.iter() {
            r.cpus_used.push(cpu);
        }
        if let (Some(a), Some(b)) = (self.start_schedstat, end_schedstat) {
            r.schedstat_cpu_time_ns = Some(b.0.saturating_sub(a.0));
            r.schedstat_run_delay_ns = Some(b.1.saturating_sub(a.1));
            r.schedstat_run_count = Some(b.2.saturating_sub(a.2));
        }
        r.completed = completed;
        r
    }
}

impl Default for Meter {
    fn default() -> Meter {
        Meter::new()
    }
}

/// Which `CgroupStats` fields had no measurement behind them (they hold 0 in the sidecar).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unmeasured {
    /// Field names, e.g. `page_locality`.
    pub fields: BTreeSet<&'static str>,
}

/// Nearest-rank percentile: index `ceil(n·p) − 1` clamped to `[0, n−1]` of sorted samples.
pub fn nearest_rank(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let n = sorted.len();
    let idx = ((n as f64 * p).ceil() as usize).saturating_sub(1).min(n - 1);
    sorted[idx]
}

/// Upper median: `sorted[n/2]`, no interpolation.
pub fn upper_median(sorted: &[u64]) -> u64 {
    if sorted.is_empty() { 0 } else { sorted[sorted.len() / 2] }
}

/// Population coefficient of variation (stddev / mean), 0 when the mean is 0 or no samples.
pub fn population_cv(samples: &[u64]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let n = samples.len() as f64;
    let mean = samples.iter().map(|&v| v as f64).sum::<f64>() / n;
    if mean == 0.0 {
        return 0.0;
    }
    let var = samples.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean
}

/// Roll one cgroup's worker reports into `CgroupStats`.
pub fn cgroup_stats(reports: &[WorkerReport], unmeasured: &mut Unmeasured) -> CgroupStats {
    let mut s = CgroupStats { num_workers: reports.len(), ..CgroupStats::default() };
    // NUMA placement is not measured by the host backend.
    unmeasured.fields.insert("page_locality");
    unmeasured.fields.insert("cross_node_migration_ratio");
    if reports.is_empty() {
        return s;
    }
    let cpus: BTreeSet<usize> = reports.iter().flat_map(|r| r.cpus_used.iter().copied()).collect();
    s.num_cpus = cpus.len();

    let off: Vec<f64> = reports
        .iter()
        .map(|r| {
            if r.wall_time_ns == 0 {
                0.0
            } else {
                r.off_cpu_ns as f64 / r.wall_time_ns as f64 * 100.0
            }
        })
        .collect();
    s.avg_off_cpu_pct = off.iter().sum::<f64>() / off.len() as f64;
    s.min_off_cpu_pct = off.iter().copied().fold(f64::INFINITY, f64::min);
    s.max_off_cpu_pct = off.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    s.spread = s.max_off_cpu_pct - s.min_off_cpu_pct;

    // ktstr keeps the first worker with the longest gap.
    let gap = reports.iter().fold(None::<&WorkerReport>, |best, r| match best {
        Some(b) if b.max_gap_ns >= r.max_gap_ns => Some(b),
        _ => Some(r),
    });
    if let Some(g) = gap {
        s.max_gap_ms = g.max_gap_ns / 1_000_000;
        s.max_gap_cpu = g.max_gap_cpu;
    }

    s.total_migrations = reports.iter().map(|r| r.migration_count).sum();
    s.total_iterations = reports.iter().map(|r| r.iterations).sum();
    s.migration_ratio = if s.total_iterations == 0 {
        0.0
    } else {
        s.total_migrations as f64 / s.total_iterations as f64
    };
    s.iterations_per_worker = s.total_iterations as f64 / reports.len() as f64;

    let mut lat: Vec<u64> =
        reports.iter().flat_map(|r| r.resume_latencies_ns.iter().copied()).collect();
    if lat.is_empty() {
        unmeasured.fields.insert("wake_latency");
    }
    lat.sort_unstable();
    s.p99_wake_latency_us = nearest_rank(&lat, 0.99) as f64 / 1000.0;
    s.median_wake_latency_us = upper_median(&lat) as f64 / 1000.0;
    s.wake_latency_cv = population_cv(&lat);
    s.wake_latency_tail_ratio = if s.median_wake_latency_us > 0.0 {
        s.p99_wake_latency_us / s.median_wake_latency_us
    } else {
        0.0
    };

    let delays: Vec<u64> = reports.iter().filter_map(|r| r.schedstat_run_delay_ns).collect();
    if delays.len() < reports.len() {
        unmeasured.fields.insert("run_delay");
    }
    if !delays.is_empty() {
        s.mean_run_delay_us = delays.iter().sum::<u64>() as f64 / delays.len() as f64 / 1000.0;
        s.worst_run_delay_us = *delays.iter().max().unwrap_or(&0) as f64 / 1000.0;
    }
    s
}

/// Lowest value that is not zero (zero means "not measured"); 0 when all are zero.
fn lowest_non_zero(values: impl Iterator<Item = f64>) -> f64 {
    values
        .filter(|v| *v != 0.0)
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
        .unwrap_or(0.0)
}

/// Roll cgroups into `ScenarioStats`: sums for totals, max for `worst_*`, lowest non-zero for
/// page locality and iterations per worker, and the worst gap with its own CPU.
pub fn scenario_stats(cgroups: Vec<CgroupStats>) -> ScenarioStats {
    let max = |f: fn(&CgroupStats) -> f64| cgroups.iter().map(f).fold(0.0, f64::max);
    let mut s = ScenarioStats {
        total_workers: cgroups.iter().map(|c| c.num_workers).sum(),
        total_cpus: cgroups.iter().map(|c| c.num_cpus).sum(),
        total_migrations: cgroups.iter().map(|c| c.total_migrations).sum(),
        worst_spread: max(|c| c.spread),
        worst_migration_ratio: max(|c| c.migration_ratio),
        worst_p99_wake_latency_us: max(|c| c.p99_wake_latency_us),
        worst_median_wake_latency_us: max(|c| c.median_wake_latency_us),
        worst_wake_latency_cv: max(|c| c.wake_latency_cv),
        total_iterations: cgroups.iter().map(|c| c.total_iterations).sum(),
        worst_mean_run_delay_us: max(|c| c.mean_run_delay_us),
        worst_run_delay_us: max(|c| c.worst_run_delay_us),
        worst_page_locality: lowest_non_zero(cgroups.iter().map(|c| c.page_locality)),
        worst_cross_node_migration_ratio: max(|c| c.cross_node_migration_ratio),
        worst_wake_latency_tail_ratio: max(|c| c.wake_latency_tail_ratio),
        worst_iterations_per_worker: lowest_non_zero(
            cgroups.iter().map(|c| c.iterations_per_worker),
        ),
        ..ScenarioStats::default()
    };
    if let Some(g) = cgroups.iter().fold(None::<&CgroupStats>, |best, c| match best {
        Some(b) if b.max_gap_ms >= c.max_gap_ms => Some(b),
        _ => Some(c),
    }) {
        s.worst_gap_ms = g.max_gap_ms;
        s.worst_gap_cpu = g.max_gap_cpu;
    }
    let mut ext: BTreeMap<String, f64> = BTreeMap::new();
    for (k, &v) in cgroups.iter().flat_map(|c| c.ext_metrics.iter()) {
        let higher = metric_def(k).is_some_and(|d| d.polarity == Polarity::HigherBetter);
        ext.entry(k.clone())
            .and_modify(|cur| *cur = if higher { cur.min(v) } else { cur.max(v) })
            .or_insert(v);
    }
    s.ext_metrics = ext;
    s.cgroups = cgroups;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(off: u64, wall: u64, iters: u64, migr: u64, gap_ns: u64, cpu: usize) -> WorkerReport {
        WorkerReport {
            iterations: iters,
            wall_time_ns: wall,
            off_cpu_ns: off,
            cpu_time_ns: wall - off,
            migration_count: migr,
            cpus_used: vec![cpu],
            max_gap_ns: gap_ns,
            max_gap_cpu: cpu,
            ..WorkerReport::default()
        }
    }

    #[test]
    fn percentiles_use_nearest_rank_and_upper_median() {
        let v: Vec<u64> = (1..=10).map(|i| i * 100).collect();
        // ceil(10 * 0.99) - 1 = 9 -> 1000; upper median sorted[5] = 600.
        assert_eq!(nearest_rank(&v, 0.99), 1000);
        assert_eq!(upper_median(&v), 600);
        assert_eq!(nearest_rank(&v, 0.5), 500);
        // ceil(200 * 0.99) - 1 = 197.
        let w: Vec<u64> = (0..200).collect();
        assert_eq!(nearest_rank(&w, 0.99), 197);
        assert_eq!(nearest_rank(&[], 0.99), 0);
        assert_eq!(upper_median(&[7]), 7);
    }

    #[test]
    fn cv_is_population() {
        // mean 5, population variance 4 -> stddev 2 -> cv 0.4 (sample stddev would differ).
        let v = [2, 4, 4, 4, 5, 5, 7, 9];
        assert!((population_cv(&v) - 0.4).abs() < 1e-12);
        assert_eq!(population_cv(&[0, 0]), 0.0);
        assert_eq!(population_cv(&[]), 0.0);
    }

    #[test]
    fn cgroup_roll_up_by_hand() {
        let mut a = worker(250, 1000, 300, 3, 5_000_000, 0);
        a.resume_latencies_ns = vec![1000, 3000];
        a.schedstat_run_delay_ns = Some(2000);
        let mut b = worker(600, 1000, 100, 1, 9_500_000, 1);
        b.resume_latencies_ns = vec![2000, 10_000];
        b.schedstat_run_delay_ns = Some(6000);
        let mut un = Unmeasured::default();
        let s = cgroup_stats(&[a, b], &mut un);
        assert_eq!(s.num_workers, 2);
        assert_eq!(s.num_cpus, 2);
        assert!((s.avg_off_cpu_pct - 42.5).abs() < 1e-9);
        assert!((s.min_off_cpu_pct - 25.0).abs() < 1e-9);
        assert!((s.max_off_cpu_pct - 60.0).abs() < 1e-9);
        assert!((s.spread - 35.0).abs() < 1e-9);
        assert_eq!((s.max_gap_ms, s.max_gap_cpu), (9, 1));
        assert_eq!(s.total_migrations, 4);
        assert_eq!(s.total_iterations, 400);
        assert!((s.migration_ratio - 0.01).abs() < 1e-12);
        assert!((s.iterations_per_worker - 200.0).abs() < 1e-12);
        // pooled [1000, 2000, 3000, 10000]: p99 idx ceil(3.96)-1 = 3; median idx 2.
        assert!((s.p99_wake_latency_us - 10.0).abs() < 1e-12);
        assert!((s.median_wake_latency_us - 3.0).abs() < 1e-12);
        assert!((s.wake_latency_tail_ratio - 10.0 / 3.0).abs() < 1e-12);
        // mean 4000, deviations -3000,-2000,-1000,6000 -> var 12.5e6 -> sd 3535.53.
        assert!((s.wake_latency_cv - 12.5e6f64.sqrt() / 4000.0).abs() < 1e-12);
        assert!((s.mean_run_delay_us - 4.0).abs() < 1e-12);
        assert!((s.worst_run_delay_us - 6.0).abs() < 1e-12);
        assert!(un.fields.contains("page_locality"));
        assert!(!un.fields.contains("wake_latency"));
        assert!(!un.fields.contains("run_delay"));
    }

    #[test]
    fn scenario_roll_up_rules() {
        let c1 = CgroupStats {
            num_workers: 2,
            num_cpus: 2,
            spread: 10.0,
            max_gap_ms: 40,
            max_gap_cpu: 1,
            total_migrations: 5,
            total_iterations: 100,
            iterations_per_worker: 50.0,
            page_locality: 0.0,
            ext_metrics: BTreeMap::from([
                ("total_iterations".to_string(), 7.0),
                ("x".to_string(), 1.0),
            ]),
            ..CgroupStats::default()
        };
        let c2 = CgroupStats {
            num_workers: 3,
            num_cpus: 2,
            spread: 4.0,
            max_gap_ms: 90,
            max_gap_cpu: 0,
            total_migrations: 1,
            total_iterations: 30,
            iterations_per_worker: 10.0,
            page_locality: 0.8,
            ext_metrics: BTreeMap::from([
                ("total_iterations".to_string(), 3.0),
                ("x".to_string(), 2.0),
            ]),
            ..CgroupStats::default()
        };
        let c3 = CgroupStats { num_workers: 1, ..CgroupStats::default() };
        let s = scenario_stats(vec![c1, c2, c3]);
        assert_eq!(s.total_workers, 6);
        assert_eq!(s.total_cpus, 4, "per-cgroup CPUs are summed, not deduplicated");
        assert_eq!(s.total_migrations, 6);
        assert_eq!(s.total_iterations, 130);
        assert_eq!(s.worst_spread, 10.0);
        assert_eq!((s.worst_gap_ms, s.worst_gap_cpu), (90, 0));
        assert_eq!(s.worst_iterations_per_worker, 10.0, "lowest non-zero, c3's 0 ignored");
        assert_eq!(s.worst_page_locality, 0.8);
        assert_eq!(s.ext_metrics["total_iterations"], 3.0, "HigherBetter merges by min");
        assert_eq!(s.ext_metrics["x"], 2.0, "unknown names merge by max");
        assert_eq!(s.cgroups.len(), 3);
    }

    #[test]
    fn schedstat_line() {
        assert_eq!(parse_schedstat("123 456 7\n"), Some((123, 456, 7)));
        assert_eq!(parse_schedstat("123 x 7"), None);
        assert_eq!(parse_schedstat(""), None);
    }

    #[test]
    fn meter_counts_checkpoints_and_reservoir() {
        let mut m = Meter::start();
        for _ in 0..10 {
            m.add_units(CHECKPOINT_UNITS);
        }
        m.record_wake(5);
        let r = m.finish(true);
        assert_eq!(r.iterations, 10);
        assert_eq!(r.work_units, 10 * CHECKPOINT_UNITS);
        assert_eq!(r.resume_latencies_ns, vec![5]);
        assert!(r.wall_time_ns > 0 && !r.cpus_used.is_empty());
        assert!(r.completed);
    }
}
