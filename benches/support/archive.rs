//! The benchmark archive: a realistic, deterministic sidecar tree (a fixed-seed xorshift),
//! shared by the warehouse, noise and archive benchmarks so all measure the same data.
//!
//! Each run executes the same suite of 200 tests and five consecutive runs share a project
//! commit: every commit holds ~1,000 sidecars, five per test, and two commits on the same
//! kernel pair test for test, like an A/B branch run.
//!
//! Documents have the size and shape of ktstr's multi-cgroup sidecars (~11 KB pretty-printed):
//! 6-8 cgroups, a monitor block with scx event, schedstat and BPF program deltas, scenario and
//! cgroup ext metrics, stimulus events, verifier and KVM stats, a host context and provenance.
//! [`document`] builds one without touching the disk (a generator straight into a warehouse
//! can use it); [`generate`] writes `n` of them under a runs root.
//!
//! Values behave like repeated runs of one suite: every quantity of a test has a stable
//! baseline (a function of the test alone), and each run measures it with a few percent of
//! noise ([`NOISE_CV`]), deterministic from the document's seed. Two commits therefore compare
//! as unchanged except for the few genuine changes [`CHANGES`] lists, which commit 1 brings.
//! (An earlier generator drew every value independently per document, so two commits differed
//! by chance on about 40 % of the key × metric tests, which no real archive does.)

#![expect(
    clippy::field_reassign_with_default,
    reason = "generated values read best as one assignment per field"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;

use ktstr::sidecar::SidecarResult;
use ktstr::sidecar::model::{
    CgroupStats, HostLoad, KvmStatsTotals, MonitorSummary, ProgStatsDelta, ProgVerifierStats,
    SchedstatDeltas, ScxEventDeltas, StimulusEvent,
};

/// Each run executes the same suite of 200 tests (identity depends only on the position in the
/// run), and five consecutive runs share a project commit: every commit holds ~1,000
/// sidecars, and two commits on the same kernel pair test for test, like an A/B branch run.
const SIDECARS_PER_RUN: usize = 200;
const RUNS_PER_COMMIT: usize = 5;

const SCHEDULERS: &[&str] = &["scx_rusty", "scx_lavd", "scx_bpfland", "eevdf"];
const TOPOLOGIES: &[&str] =
    &["1n1l4c1t", "1n2l4c1t", "1n2l4c2t", "2n2l8c2t", "2n4l8c1t", "4n8l4c2t"];
const KERNELS: &[&str] = &["6.14.2", "6.15.0-rc3", "6.16.0"];
const FLAGS: &[&str] = &["llc", "steal", "borrow", "rebal", "no-ctrl"];
const WORK_TYPES: &[&str] = &["SpinWait", "Bursty", "IoBound", "Mixed"];
/// The BPF programs of a sched_ext scheduler, as the verifier and the monitor name them.
const PROGRAMS: &[&str] = &["enqueue", "dispatch", "select_cpu", "running"];
/// Scheduler-reported metrics, outside the registry (they become `metric_value` rows).
const EXT_METRICS: &[&str] =
    &["dispatch_local_pct", "dsq_refill_rate", "lb_tasks_moved", "slice_extended_pct"];
/// KVM binary stats of one vCPU, as `kvm_stats.per_vcpu` records them.
const KVM_STATS: &[&str] = &["exits", "halt_exits", "halt_successful_poll", "halt_wait_ns"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self, scale: f64) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * scale
    }
    /// Roughly standard normal (the sum of three uniforms: mean 0, sd 1, within ±3).
    fn z(&mut self) -> f64 {
        (self.f(1.0) + self.f(1.0) + self.f(1.0) - 1.5) * 2.0
    }
}

pub fn commit(i: usize) -> String {
    format!("{:07x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 36)
}

/// The run-to-run noise of every measured quantity: its coefficient of variation. At 3 %
/// the mean of five runs moves about 1.3 %, far inside every relative gate of the registry
/// (10-50 %), so two commits without a change compare as unchanged, as real archives do.
const NOISE_CV: f64 = 0.03;

/// What a genuine change scales in every cgroup of the test it lands on.
#[derive(Clone, Copy, PartialEq)]
enum Quantity {
    /// Wake-up latencies (median and p99): moves their two `worst_*` metrics.
    WakeLatency,
    /// Iterations: moves `total_iterations` and `worst_iterations_per_worker`.
    Iterations,
    /// Worst run delay: moves `worst_run_delay_us`.
    RunDelay,
    /// Migrations: moves `total_migrations`.
    Migrations,
}

/// The genuine changes of the archive: project commit 1 brings them, and every later commit
/// keeps them (as a commit that changes the scheduler would). Each lands on one test of the
/// suite (its position in the run) and scales one quantity in all its cgroups. Everything
/// else is the test's stable baseline times [`NOISE_CV`] noise, so `commit(0)` against
/// `commit(1)` reports these and nothing else, each on both the `ci` run (n = 1, judged by
/// the series' history) and the four `local` runs (n = 4, the rank test): median and p99
/// wake latency (two regressions), iterations and iterations per worker (two regressions),
/// migrations (a regression), the worst run delay (an improvement): 12 findings, 10 of them
/// regressions. The tests are ones none of whose runs at commits 0 and 1 failed (2 % of runs
/// fail), so no pair is skipped.
const CHANGES: [(usize, Quantity, f64); 4] = [
    (7, Quantity::WakeLatency, 1.6),
    (43, Quantity::Iterations, 0.75),
    (99, Quantity::RunDelay, 0.4),
    (150, Quantity::Migrations, 2.0),
];

/// `KTSTR_BENCH_RANDOM_METRICS=1`: every document draws its own baselines, so every value is
/// independent of every other run's (the earlier generator's data, where two commits differ
/// by chance on most metrics: the noise gate's worst case). Read once per process.
pub fn random_metrics() -> bool {
    static RANDOM: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *RANDOM.get_or_init(|| std::env::var_os("KTSTR_BENCH_RANDOM_METRICS").is_some_and(|v| v == "1"))
}

/// The values of one run of one test: each quantity has a baseline that depends only on the
/// test (drawn from `base`, seeded by the test's position in the run, so every run of the test
/// draws the same baselines in the same order), measured with this run's noise (`noise`).
struct Draw<'a> {
    base: Rng,
    noise: &'a mut Rng,
    /// The change this run carries, if its commit has one for its test.
    change: Option<(Quantity, f64)>,
}

impl Draw<'_> {
    /// A fixed property of the test (a worker count, a program's size): no noise.
    fn fixed(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.base.next() % (hi - lo)
    }
    /// A measured quantity with a baseline in `lo..hi`.
    fn measured(&mut self, lo: f64, hi: f64) -> f64 {
        let baseline = lo + self.base.f(hi - lo);
        baseline * (1.0 + NOISE_CV * self.noise.z()).max(0.0)
    }
    /// [`Self::measured`], scaled by `factor` when this run carries a change of `what`.
    fn changed(&mut self, what: Quantity, lo: f64, hi: f64) -> f64 {
        let factor = match self.change {
            Some((q, factor)) if q == what => factor,
            _ => 1.0,
        };
        self.measured(lo, hi) * factor
    }
    /// A measured count.
    fn count(&mut self, lo: f64, hi: f64) -> u64 {
        self.measured(lo, hi).round() as u64
    }
    /// Rounded to `places` decimals, as ktstr records nanosecond timings in microseconds.
    fn dec(v: f64, places: i32) -> f64 {
        let unit = 10f64.powi(places);
        (v * unit).round() / unit
    }
}

/// One cgroup's stats, with the precision ktstr writes them: percentages and ratios at full
/// precision, latencies in microseconds from nanoseconds, locality 0.0 where it was not
/// measured (single-node topologies), derived ratios computed from the raw counts.
fn cgroup(d: &mut Draw, multi_node: bool) -> CgroupStats {
    let mut c = CgroupStats::default();
    c.num_workers = d.fixed(2, 8) as usize;
    c.num_cpus = d.fixed(2, 8) as usize;
    c.min_off_cpu_pct = d.measured(0.5, 30.0);
    c.spread = d.measured(0.5, 8.0);
    c.max_off_cpu_pct = c.min_off_cpu_pct + c.spread;
    c.avg_off_cpu_pct = (c.min_off_cpu_pct + c.max_off_cpu_pct) / 2.0;
    c.max_gap_ms = d.count(5.0, 200.0);
    c.max_gap_cpu = d.fixed(0, 16) as usize;
    c.total_migrations = d.changed(Quantity::Migrations, 50.0, 5000.0).round() as u64;
    c.total_iterations = d.changed(Quantity::Iterations, 1e5, 1e7).round().max(1.0) as u64;
    c.migration_ratio = c.total_migrations as f64 / c.total_iterations as f64;
    c.median_wake_latency_us = Draw::dec(d.changed(Quantity::WakeLatency, 2.0, 60.0), 3);
    let tail = d.changed(Quantity::WakeLatency, 50.0, 500.0);
    c.p99_wake_latency_us = c.median_wake_latency_us + Draw::dec(tail, 3);
    c.wake_latency_cv = d.measured(0.05, 2.0);
    c.mean_run_delay_us = Draw::dec(d.measured(1.0, 40.0), 4);
    let worst = d.changed(Quantity::RunDelay, 100.0, 900.0);
    c.worst_run_delay_us = c.mean_run_delay_us + Draw::dec(worst, 3);
    if multi_node {
        c.page_locality = d.measured(0.3, 0.95);
        c.cross_node_migration_ratio = d.measured(0.01, 0.2);
    }
    c.wake_latency_tail_ratio = if c.median_wake_latency_us > 0.0 {
        c.p99_wake_latency_us / c.median_wake_latency_us
    } else {
        0.0
    };
    c.iterations_per_worker = c.total_iterations as f64 / c.num_workers as f64;
    c
}

/// The monitor block: summary, scx event deltas, schedstat deltas and per-program deltas.
fn monitor(d: &mut Draw) -> MonitorSummary {
    let mut ev = ScxEventDeltas::default();
    ev.total_fallback = d.count(0.0, 100.0) as i64;
    ev.fallback_rate = d.measured(0.0, 3.0);
    ev.max_fallback_burst = d.count(0.0, 20.0) as i64;
    ev.total_dispatch_keep_last = d.count(0.0, 1000.0) as i64;
    ev.keep_last_rate = d.measured(0.0, 30.0);
    ev.total_enq_skip_exiting = d.count(0.0, 10.0) as i64;
    ev.total_reenq_local_repeat = d.count(0.0, 10.0) as i64;
    ev.total_refill_slice_dfl = d.count(0.0, 100_000.0) as i64;
    ev.total_bypass_duration = d.count(0.0, 1_000_000.0) as i64;
    let mut sched = SchedstatDeltas::default();
    sched.total_run_delay = d.count(1e6, 1e10);
    sched.run_delay_rate = d.measured(1e3, 1e9);
    sched.total_pcount = d.count(1e3, 1e6);
    sched.total_sched_count = d.count(1e4, 1e7);
    sched.sched_count_rate = d.measured(1e2, 1e6);
    sched.total_yld_count = d.count(0.0, 100_000.0);
    sched.total_sched_goidle = d.count(1e3, 1e6);
    sched.total_ttwu_count = d.count(1e4, 1e7);
    sched.total_ttwu_local = d.count(1e3, 1e6);
    let progs = PROGRAMS
        .iter()
        .map(|name| {
            let cnt = d.count(1e3, 1e7);
            let nsecs = (cnt as f64 * d.measured(100.0, 500.0)).round() as u64;
            let per_call = if cnt == 0 { 0.0 } else { nsecs as f64 / cnt as f64 };
            ProgStatsDelta { name: format!("ktstr_{name}"), cnt, nsecs, nsecs_per_call: per_call }
        })
        .collect();
    let mut mon = MonitorSummary::default();
    mon.total_samples = d.fixed(30, 130) as usize;
    mon.max_imbalance_ratio = 1.0 + d.measured(0.05, 2.0);
    mon.max_local_dsq_depth = d.count(1.0, 16.0) as u32;
    mon.avg_imbalance_ratio = 1.0 + d.measured(0.01, 0.5);
    mon.avg_nr_running = d.measured(0.2, 4.0);
    mon.avg_local_dsq_depth = d.measured(0.1, 2.0);
    mon.event_deltas = Some(ev);
    mon.schedstat_deltas = Some(sched);
    mon.prog_stats_deltas = Some(progs);
    mon
}

/// What a scenario's steps leave besides its stats: stimulus events, verifier and KVM stats.
fn telemetry(s: &mut SidecarResult, d: &mut Draw) {
    let steps = 1;
    let event = |elapsed_ms, label: String, iterations| StimulusEvent {
        elapsed_ms,
        label,
        op_kind: None,
        detail: None,
        total_iterations: iterations,
    };
    s.stimulus_events.push(event(0, "ScenarioStart".into(), None));
    for step in 0..steps {
        s.stimulus_events.push(event(step * 1000, format!("StepStart[{step}]"), None));
        let done = Some(d.count(1e5, 1e7));
        s.stimulus_events.push(event(step * 1000 + 995, format!("StepEnd[{step}]"), done));
    }
    s.verifier_stats = PROGRAMS
        .iter()
        .map(|p| ProgVerifierStats {
            name: format!("ktstr_{p}"),
            verified_insns: d.fixed(500, 20_500) as u32,
        })
        .collect();
    let vcpus = 2;
    let per_vcpu = (0..vcpus)
        .map(|_| KVM_STATS.iter().map(|k| (k.to_string(), d.count(1e3, 1e6))).collect())
        .collect();
    s.kvm_stats = Some(KvmStatsTotals { per_vcpu });
}

/// The host context of run `run`: three hosts take turns.
fn host(run: usize, kernel: &str) -> ktstr::sidecar::HostContext {
    let mut host = ktstr::sidecar::HostContext::default();
    let host_no = run % 3;
    host.cpu_model = Some(format!("AMD EPYC 9{host_no}54 64-Core Processor"));
    host.cpu_vendor = Some("AuthenticAMD".into());
    host.total_memory_kb = Some(263_842_112 + host_no as u64);
    host.hugepages_total = Some(0);
    host.hugepages_free = Some(0);
    host.hugepages_size_kb = Some(2048);
    host.thp_enabled = Some("always [madvise] never".into());
    host.thp_defrag = Some("always defer defer+madvise [madvise] never".into());
    host.sched_tunables = Some(BTreeMap::from_iter(
        [
            ("sched_autogroup_enabled", "1"),
            ("sched_base_slice_ns", "3000000"),
            ("sched_cfs_bandwidth_slice_us", "5000"),
            ("sched_child_runs_first", "0"),
            ("sched_migration_cost_ns", "500000"),
            ("sched_nr_migrate", "32"),
            ("sched_rt_period_us", "1000000"),
            ("sched_rt_runtime_us", "950000"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    ));
    host.online_cpus = Some(8);
    host.numa_nodes = Some(1 + host_no);
    host.cpufreq_governor = (0..8).map(|c| (c, "schedutil".to_string())).collect();
    host.kernel_name = Some("Linux".into());
    host.kernel_release = Some(kernel.into());
    host.arch = Some("x86_64".into());
    host.kernel_cmdline =
        Some("BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 mitigations=off".into());
    host
}

fn sidecar(i: usize, rng: &mut Rng) -> (String, SidecarResult) {
    let run = i / SIDECARS_PER_RUN;
    let slot = i % SIDECARS_PER_RUN;
    let project = run / RUNS_PER_COMMIT;
    // Commits 2k and 2k+1 run on the same kernel, so they pair.
    let kernel_no = (project / 2) % KERNELS.len();
    let kernel = KERNELS[kernel_no];
    // (test, scheduler) is unique within a run: 60 tests x 4 schedulers > 200 slots.
    let mut s = SidecarResult::empty(&format!("test_{:02}", slot % 60));
    s.scheduler = SCHEDULERS[(slot / 60) % SCHEDULERS.len()].into();
    s.topology = TOPOLOGIES[slot % TOPOLOGIES.len()].into();
    s.work_type = WORK_TYPES[(slot / 3) % WORK_TYPES.len()].into();
    s.project_commit = Some(commit(project));
    s.kernel_version = Some(kernel.into());
    s.kernel_commit = Some(commit(1000 + kernel_no));
    s.scheduler_commit = Some(commit(2000 + run % 31));
    s.run_source = Some(if run.is_multiple_of(RUNS_PER_COMMIT) { "ci" } else { "local" }.into());
    let flag_bits = (slot * 7) % 32;
    s.active_flags = FLAGS
        .iter()
        .enumerate()
        .filter(|(b, _)| flag_bits & (1 << b) != 0)
        .map(|(_, f)| f.to_string())
        .collect();
    s.passed = !rng.next().is_multiple_of(50);
    let change = CHANGES
        .iter()
        .find(|(at, _, _)| *at == slot && project >= 1)
        .map(|&(_, what, factor)| (what, factor));
    // Under `KTSTR_BENCH_RANDOM_METRICS=1` the baselines are drawn anew for every document.
    let identity = if random_metrics() { i + SIDECARS_PER_RUN } else { slot };
    let base =
        Rng(0x9e37_79b9_7f4a_7c15 ^ (identity as u64 + 1).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut d = Draw { base, noise: rng, change };
    s.timestamp = format!("2026-{:02}-{:02}T{:02}:15:02Z", 1 + run % 12, 1 + run % 28, run % 24);
    s.run_id = format!("2026{:04}T091455Z-{}", run % 10_000, i % 8);
    let multi_node = !s.topology.starts_with("1n");
    let cgroups = d.fixed(6, 9);
    s.stats.cgroups = (0..cgroups).map(|_| cgroup(&mut d, multi_node)).collect();
    let cg = &s.stats.cgroups;
    s.stats.total_workers = cg.iter().map(|c| c.num_workers).sum();
    s.stats.total_cpus = cg.iter().map(|c| c.num_cpus).sum();
    s.stats.total_migrations = cg.iter().map(|c| c.total_migrations).sum();
    s.stats.total_iterations = cg.iter().map(|c| c.total_iterations).sum();
    s.stats.worst_spread = cg.iter().map(|c| c.spread).fold(0.0, f64::max);
    s.stats.worst_gap_ms = cg.iter().map(|c| c.max_gap_ms).max().unwrap_or(0);
    // The scenario's worst values are its cgroups' (max, or lowest non-zero where higher is
    // better), as ktstr aggregates them.
    let max = |f: fn(&CgroupStats) -> f64| cg.iter().map(f).fold(0.0, f64::max);
    let min_nonzero = |f: fn(&CgroupStats) -> f64| {
        cg.iter()
            .map(f)
            .filter(|v| *v > 0.0)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))))
    };
    s.stats.worst_gap_cpu = cg.iter().max_by_key(|c| c.max_gap_ms).map_or(0, |c| c.max_gap_cpu);
    s.stats.worst_migration_ratio = max(|c| c.migration_ratio);
    s.stats.worst_p99_wake_latency_us = max(|c| c.p99_wake_latency_us);
    s.stats.worst_median_wake_latency_us = max(|c| c.median_wake_latency_us);
    s.stats.worst_wake_latency_cv = max(|c| c.wake_latency_cv);
    s.stats.worst_mean_run_delay_us = max(|c| c.mean_run_delay_us);
    s.stats.worst_run_delay_us = max(|c| c.worst_run_delay_us);
    s.stats.worst_page_locality = min_nonzero(|c| c.page_locality).unwrap_or(0.0);
    s.stats.worst_cross_node_migration_ratio = max(|c| c.cross_node_migration_ratio);
    s.stats.worst_wake_latency_tail_ratio = max(|c| c.wake_latency_tail_ratio);
    s.stats.worst_iterations_per_worker = min_nonzero(|c| c.iterations_per_worker).unwrap_or(0.0);
    s.stats.ext_metrics =
        EXT_METRICS.iter().map(|m| (m.to_string(), d.measured(1.0, 100.0))).collect();
    s.monitor = Some(monitor(&mut d));
    telemetry(&mut s, &mut d);
    let rng = d.noise;
    s.host = Some(host(run, kernel));
    s.cleanup_duration_ms = Some(10 + rng.next() % 90);
    let p = &mut s.provenance;
    p.project_commit_id = Some(format!("{}{:033x}", commit(project), project));
    p.backend = Some("vm".into());
    p.topology_ran = Some(s.topology.clone());
    p.host_load = Some(HostLoad {
        loadavg_1m_start: Some(rng.f(4.0)),
        loadavg_1m_end: Some(rng.f(4.0)),
        steal_pct: Some(rng.f(1.0)),
        cpu_pressure_some_avg10: Some(rng.f(50.0)),
        cpu_pressure_some_us: Some(rng.next() % 2_000_000),
        other: BTreeMap::new(),
    });
    p.other.insert("cgroup_version".into(), "v2".into());
    let run_dir = format!("{kernel}-{}", commit(project));
    let rel = if i.is_multiple_of(2) {
        format!("{run_dir}-r{run}/{}-{i:06}.ktstr.json", s.test_name)
    } else {
        format!("{run_dir}-r{run}/job-{}/{}-{i:06}.ktstr.json", i % 4, s.test_name)
    };
    (rel, s)
}

/// The `i`-th sidecar of the archive and its path under the runs root. A function of `i`
/// alone, so any subset can be rebuilt; `to_json_pretty` gives the file `cargo ktstr test`
/// writes.
pub fn document(i: usize) -> (String, SidecarResult) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
    sidecar(i, &mut rng)
}

/// Write the first `n` sidecars under `root`; returns their total size in bytes.
pub fn generate(root: &Path, n: usize) -> u64 {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (rel, s) = document(i);
            let body = s.to_json_pretty();
            let path = root.join(rel);
            fs::create_dir_all(path.parent().expect("generated paths have a parent"))
                .expect("create run dir");
            fs::write(&path, &body).expect("write sidecar");
            body.len() as u64
        })
        .sum()
}
