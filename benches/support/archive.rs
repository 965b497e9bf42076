//! The benchmark archive: a realistic, deterministic sidecar tree (a fixed-seed xorshift),
//! shared by the warehouse and noise benchmarks so both measure the same data.
//!
//! Each run executes the same suite of 200 tests and five consecutive runs share a project
//! commit: every commit holds ~1,000 sidecars, five per test, and two commits on the same
//! kernel pair test for test, like an A/B branch run.

#![expect(
    clippy::field_reassign_with_default,
    reason = "generated values read best as one assignment per field"
)]

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use rayon::prelude::*;

use ktstr::sidecar::SidecarResult;
use ktstr::sidecar::model::{CgroupStats, MonitorSummary, ScxEventDeltas};

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
}

pub fn commit(i: usize) -> String {
    format!("{:07x}", (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 36)
}

fn cgroup(rng: &mut Rng) -> CgroupStats {
    let mut c = CgroupStats::default();
    c.num_workers = 2 + (rng.next() % 6) as usize;
    c.num_cpus = 2 + (rng.next() % 6) as usize;
    c.avg_off_cpu_pct = rng.f(10.0);
    c.min_off_cpu_pct = rng.f(3.0);
    c.max_off_cpu_pct = 10.0 + rng.f(10.0);
    c.spread = rng.f(8.0);
    c.max_gap_ms = rng.next() % 200;
    c.max_gap_cpu = (rng.next() % 16) as usize;
    c.total_migrations = rng.next() % 5000;
    c.migration_ratio = rng.f(0.01);
    c.p99_wake_latency_us = rng.f(500.0);
    c.median_wake_latency_us = rng.f(60.0);
    c.wake_latency_cv = rng.f(2.0);
    c.total_iterations = rng.next() % 10_000_000;
    c.mean_run_delay_us = rng.f(40.0);
    c.worst_run_delay_us = rng.f(900.0);
    c.page_locality = rng.f(1.0);
    c.cross_node_migration_ratio = rng.f(0.2);
    c.wake_latency_tail_ratio = rng.f(9.0);
    c.iterations_per_worker = rng.f(2_000_000.0);
    c
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
    s.timestamp = format!("2026-{:02}-{:02}T{:02}:15:02Z", 1 + run % 12, 1 + run % 28, run % 24);
    s.run_id = format!("2026{:04}T091455Z-{}", run % 10_000, i % 8);
    s.stats.cgroups = (0..3 + rng.next() % 2).map(|_| cgroup(rng)).collect();
    let cg = &s.stats.cgroups;
    s.stats.total_workers = cg.iter().map(|c| c.num_workers).sum();
    s.stats.total_cpus = cg.iter().map(|c| c.num_cpus).sum();
    s.stats.total_migrations = cg.iter().map(|c| c.total_migrations).sum();
    s.stats.total_iterations = cg.iter().map(|c| c.total_iterations).sum();
    s.stats.worst_spread = cg.iter().map(|c| c.spread).fold(0.0, f64::max);
    s.stats.worst_gap_ms = cg.iter().map(|c| c.max_gap_ms).max().unwrap_or(0);
    s.stats.worst_migration_ratio = rng.f(0.01);
    s.stats.worst_p99_wake_latency_us = rng.f(500.0);
    s.stats.worst_median_wake_latency_us = rng.f(60.0);
    s.stats.worst_wake_latency_cv = rng.f(2.0);
    s.stats.worst_mean_run_delay_us = rng.f(40.0);
    s.stats.worst_run_delay_us = rng.f(900.0);
    s.stats.worst_page_locality = rng.f(1.0);
    s.stats.worst_cross_node_migration_ratio = rng.f(0.2);
    s.stats.worst_wake_latency_tail_ratio = rng.f(9.0);
    s.stats.worst_iterations_per_worker = rng.f(2_000_000.0);
    let mut ev = ScxEventDeltas::default();
    ev.total_fallback = (rng.next() % 100) as i64;
    ev.fallback_rate = rng.f(3.0);
    ev.max_fallback_burst = (rng.next() % 20) as i64;
    ev.total_dispatch_keep_last = (rng.next() % 1000) as i64;
    ev.keep_last_rate = rng.f(30.0);
    ev.total_enq_skip_exiting = (rng.next() % 10) as i64;
    ev.total_reenq_local_repeat = (rng.next() % 10) as i64;
    let mut mon = MonitorSummary::default();
    mon.total_samples = 30 + (rng.next() % 100) as usize;
    mon.max_imbalance_ratio = 1.0 + rng.f(2.0);
    mon.max_local_dsq_depth = (rng.next() % 16) as u32;
    mon.avg_imbalance_ratio = 1.0 + rng.f(0.5);
    mon.avg_nr_running = rng.f(4.0);
    mon.avg_local_dsq_depth = rng.f(2.0);
    mon.event_deltas = Some(ev);
    s.monitor = Some(mon);
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
    host.online_cpus = Some(16);
    host.numa_nodes = Some(1 + host_no);
    host.cpufreq_governor = (0..16).map(|c| (c, "schedutil".to_string())).collect();
    host.kernel_name = Some("Linux".into());
    host.kernel_release = Some(kernel.into());
    host.arch = Some("x86_64".into());
    host.kernel_cmdline =
        Some("BOOT_IMAGE=/vmlinuz root=/dev/vda1 ro console=ttyS0 mitigations=off".into());
    s.host = Some(host);
    let run_dir = format!("{kernel}-{}", commit(project));
    let rel = if i.is_multiple_of(2) {
        format!("{run_dir}-r{run}/{}-{i:06}.ktstr.json", s.test_name)
    } else {
        format!("{run_dir}-r{run}/job-{}/{}-{i:06}.ktstr.json", i % 4, s.test_name)
    };
    (rel, s)
}

/// Sidecar `i` of the archive and its path under the root: what [`generate`] writes there.
pub fn document(i: usize) -> (String, SidecarResult) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
    sidecar(i, &mut rng)
}

pub fn generate(root: &Path, n: usize) -> u64 {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let (rel, s) = document(i);
            let path = root.join(rel);
            fs::create_dir_all(path.parent().expect("generated paths have a parent"))
                .expect("create run dir");
            let body = s.to_json_pretty();
            fs::write(&path, &body).expect("write sidecar");
            body.len() as u64
        })
        .sum()
}
