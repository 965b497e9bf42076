//! Warehouse benchmark: generates a realistic sidecar archive and measures, in one run,
//! parse-only throughput, cold ingest, no-op re-ingest, list-values from the database vs a
//! JSON walk, and database size vs JSON bytes, each printed next to its target.
//!
//! `cargo bench --bench warehouse`; `KTSTR_BENCH_SIDECARS=N` changes the archive size
//! (default 100,000). Values are pseudo-random but deterministic (a fixed-seed xorshift).

// Generated values read best as one assignment per field.
#![allow(clippy::field_reassign_with_default)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use ktstr::sidecar::SidecarResult;
use ktstr::sidecar::model::{CgroupStats, MonitorSummary, ScxEventDeltas};
use ktstr::sidecar::read::{parse_bytes, pool_sidecar_paths, read_bytes};
use ktstr::warehouse::Warehouse;
use ktstr::warehouse::ingest::ingest_root;

const DEFAULT_SIDECARS: usize = 100_000;
const SIDECARS_PER_RUN: usize = 200;

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
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

fn commit(i: usize) -> String {
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
    let kernel = KERNELS[run % KERNELS.len()];
    let mut s = SidecarResult::empty(&format!("test_{:02}", rng.next() % 60));
    s.scheduler = rng.pick(SCHEDULERS).into();
    s.topology = rng.pick(TOPOLOGIES).into();
    s.work_type = rng.pick(WORK_TYPES).into();
    s.project_commit = Some(commit(run % 97));
    s.kernel_version = Some(kernel.into());
    s.kernel_commit = Some(commit(1000 + run % 7));
    s.scheduler_commit = Some(commit(2000 + run % 31));
    s.run_source = Some(if run.is_multiple_of(5) { "ci" } else { "local" }.into());
    s.active_flags =
        FLAGS.iter().filter(|_| rng.next().is_multiple_of(3)).map(|f| f.to_string()).collect();
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
    let run_dir = format!("{kernel}-{}", commit(run % 97));
    let rel = if i.is_multiple_of(2) {
        format!("{run_dir}-r{run}/{}-{i:06}.ktstr.json", s.test_name)
    } else {
        format!("{run_dir}-r{run}/job-{}/{}-{i:06}.ktstr.json", i % 4, s.test_name)
    };
    (rel, s)
}

fn generate(root: &Path, n: usize) -> u64 {
    (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (i as u64 + 1).wrapping_mul(0x9e37_79b9));
            let (rel, s) = sidecar(i, &mut rng);
            let path = root.join(rel);
            fs::create_dir_all(path.parent().expect("generated paths have a parent"))
                .expect("create run dir");
            let body = s.to_json_pretty();
            fs::write(&path, &body).expect("write sidecar");
            body.len() as u64
        })
        .sum()
}

/// The sets `stats list-values` shows, computed from parsed sidecars.
#[derive(Debug, Default, PartialEq)]
struct Values(BTreeMap<&'static str, BTreeSet<String>>);

fn values_from_json(root: &Path) -> Values {
    let docs: Vec<SidecarResult> = pool_sidecar_paths(root)
        .into_par_iter()
        .filter_map(|p| read_bytes(&p).ok().and_then(|b| parse_bytes(&p, &b).ok()))
        .collect();
    let mut v = Values::default();
    for d in docs {
        let mut put = |k: &'static str, s: Option<&str>| {
            if let Some(s) = s {
                v.0.entry(k).or_default().insert(s.to_string());
            }
        };
        put("test_name", Some(&d.test_name));
        put("topology", Some(&d.topology));
        put("scheduler", Some(&d.scheduler));
        put("work_type", Some(&d.work_type));
        put("kernel_version", d.kernel_version.as_deref());
        put("kernel_commit", d.kernel_commit.as_deref());
        put("project_commit", d.project_commit.as_deref());
        put("run_source", d.run_source.as_deref());
        for f in &d.active_flags {
            put("flag", Some(f));
        }
    }
    v
}

fn values_from_db(wh: &Warehouse) -> Values {
    let mut v = Values::default();
    let dims: [(&'static str, &str, &str); 9] = [
        ("test_name", "test_name", "ingested_sidecar"),
        ("topology", "topology", "ingested_sidecar"),
        ("scheduler", "scheduler", "ingested_sidecar"),
        ("work_type", "work_type", "ingested_sidecar"),
        ("kernel_version", "kernel_version", "ingested_sidecar"),
        ("kernel_commit", "kernel_commit", "ingested_sidecar"),
        ("project_commit", "project_commit", "ingested_sidecar"),
        ("run_source", "run_source", "ingested_sidecar"),
        ("flag", "flag", "sidecar_flag"),
    ];
    // Each dimension has an index led by it; stepping from one distinct value to the next
    // costs one index seek, so the query is O(distinct values), not O(sidecars).
    let queries = dims.map(|(k, col, table)| {
        (
            k,
            format!(
                "WITH RECURSIVE v(x) AS (SELECT min({col}) FROM {table} UNION ALL \
                 SELECT (SELECT min({col}) FROM {table} WHERE {col} > v.x) FROM v \
                 WHERE v.x IS NOT NULL) SELECT x FROM v WHERE x IS NOT NULL"
            ),
        )
    });
    for (k, sql) in queries {
        let mut stmt = wh.conn().prepare_cached(&sql).expect("list-values query prepares");
        let rows =
            stmt.query_map([], |r| r.get::<_, Option<String>>(0)).expect("list-values query runs");
        for s in rows.flatten().flatten() {
            v.0.entry(k).or_default().insert(s);
        }
    }
    v
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(rd) = fs::read_dir(path) else { return 0 };
    rd.flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() { dir_bytes(&p) } else { e.metadata().map_or(0, |m| m.len()) }
        })
        .sum()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let n: usize = std::env::var("KTSTR_BENCH_SIDECARS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_SIDECARS);
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path().join("runs");
    let db = tmp.path().join("warehouse.sqlite");

    let t = Instant::now();
    let json_bytes = generate(&root, n);
    println!(
        "generated {n} sidecars ({:.1} MB, {:.0} bytes each) in {:.1} s on {} threads",
        json_bytes as f64 / 1e6,
        json_bytes as f64 / n as f64,
        secs(t.elapsed()),
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let parsed = pool_sidecar_paths(&root)
        .into_par_iter()
        .filter(|p| read_bytes(p).ok().and_then(|b| parse_bytes(p, &b).ok()).is_some())
        .count();
    let parse_time = t.elapsed();
    assert_eq!(parsed, n, "every generated sidecar parses");
    let parse_rate = n as f64 / secs(parse_time);
    println!(
        "parse-only (walk + read + parse, rayon): {:.2} s, {parse_rate:.0} files/s",
        secs(parse_time)
    );

    let t = Instant::now();
    let mut wh = Warehouse::open(&db).expect("open warehouse");
    let cold = ingest_root(&mut wh, &root, None).expect("cold ingest");
    let cold_time = t.elapsed();
    assert_eq!(cold.new_sidecars, n, "cold ingest stores every sidecar");
    let cold_rate = n as f64 / secs(cold_time);
    println!("cold ingest: {:.2} s, {cold_rate:.0} files/s", secs(cold_time));

    let t = Instant::now();
    let again = ingest_root(&mut wh, &root, None).expect("re-ingest");
    let noop_time = t.elapsed();
    assert_eq!((again.parsed, again.new_sidecars), (0, 0), "an unchanged tree is stat-only");
    println!("no-op re-ingest: {:.3} s", secs(noop_time));

    let t = Instant::now();
    let from_db = values_from_db(&wh);
    let db_values_time = t.elapsed();
    let t = Instant::now();
    let from_json = values_from_json(&root);
    let json_values_time = t.elapsed();
    assert_eq!(from_db, from_json, "database and JSON walk agree on list-values");
    println!(
        "list-values: database {:.4} s, JSON walk {:.2} s",
        secs(db_values_time),
        secs(json_values_time)
    );

    drop(wh);
    let db_bytes = dir_bytes(tmp.path()) - dir_bytes(&root);
    println!("database {:.1} MB vs JSON {:.1} MB", db_bytes as f64 / 1e6, json_bytes as f64 / 1e6);

    println!();
    let r1 = cold_rate / parse_rate;
    let r2 = secs(noop_time) / secs(cold_time);
    let r3 = secs(json_values_time) / secs(db_values_time).max(1e-9);
    let r4 = db_bytes as f64 / json_bytes as f64;
    println!("{:<48} {:>10}  verdict", "target", "measured");
    println!(
        "{:<48} {:>9.2}x  {}",
        "cold ingest >= 0.5x parse-only throughput",
        r1,
        verdict(r1 >= 0.5)
    );
    println!(
        "{:<48} {:>9.2}%  {}",
        "no-op re-ingest < 5% of cold ingest time",
        r2 * 100.0,
        verdict(r2 < 0.05)
    );
    println!(
        "{:<48} {:>9.0}x  {}",
        "list-values DB >= 50x faster than JSON walk",
        r3,
        verdict(r3 >= 50.0)
    );
    println!("{:<48} {:>9.2}x  {}", "DB bytes <= JSON bytes", r4, verdict(r4 <= 1.0));
}
