//! The sidecar document: `SidecarResult` and every nested type, byte-compatible with ktstr.
//!
//! This module owns the JSON *shape* only: field names and order, nullability, the
//! omit-when-empty rules and enum spellings of ktstr's sidecar (stats-reference §2). It does
//! not know where files live ([`super::layout`]), how they are named ([`super::name`]) or how
//! they are written ([`super::write`]) or read ([`super::read`]).
//!
//! # Compatibility
//! - Every top-level field is always emitted, in ktstr's declaration order, `Option` as `null`,
//!   empty lists as `[]`; nested "omit-if-none" fields are skipped exactly where ktstr skips them.
//! - Readers ignore unknown keys and accept missing `Option` keys. A missing required key is a
//!   serde error naming the key.
//! - What this project adds lives in one extra top-level object, [`Provenance`], under the key
//!   `provenance`. It is omitted when empty, so a file without it is indistinguishable from
//!   ktstr's, and ktstr's reader ignores it when present.
//! - Non-finite floats: ktstr's serde writes them as `null`, which its own reader then rejects.
//!   Our producers replace them with `0.0` and name the replaced fields in
//!   `provenance.non_finite_fields` (see [`SidecarResult::sanitize_non_finite`]), so the file
//!   stays readable by both tools and the warehouse knows those values were never measured.
//!   Our reader also accepts `null` in a required float (a ktstr file with a NaN) as NaN.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

/// Deserialize a required `f64` that may have been written as `null` (ktstr's NaN/inf).
fn f64_or_nan<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One test execution (pass, fail or skip): the whole sidecar document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarResult {
    pub test_name: String,
    pub topology: String,
    pub scheduler: String,
    #[serde(default)]
    pub scheduler_commit: Option<String>,
    #[serde(default)]
    pub project_commit: Option<String>,
    #[serde(default)]
    pub payload: Option<String>,
    pub metrics: Vec<PayloadMetrics>,
    pub passed: bool,
    pub skipped: bool,
    pub stats: ScenarioStats,
    #[serde(default)]
    pub monitor: Option<MonitorSummary>,
    pub stimulus_events: Vec<StimulusEvent>,
    pub work_type: String,
    pub active_flags: Vec<String>,
    pub verifier_stats: Vec<ProgVerifierStats>,
    #[serde(default)]
    pub kvm_stats: Option<KvmStatsTotals>,
    pub sysctls: Vec<String>,
    pub kargs: Vec<String>,
    #[serde(default)]
    pub kernel_version: Option<String>,
    #[serde(default)]
    pub kernel_commit: Option<String>,
    pub timestamp: String,
    pub run_id: String,
    #[serde(default)]
    pub host: Option<HostContext>,
    #[serde(default)]
    pub cleanup_duration_ms: Option<u64>,
    #[serde(default)]
    pub run_source: Option<String>,
    /// This project's additions; absent in ktstr's files.
    #[serde(default, skip_serializing_if = "Provenance::is_empty")]
    pub provenance: Provenance,
}

/// What this project records beyond ktstr's schema. Every field is optional and omitted when
/// unset, so older readers (and ktstr) see nothing new.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Full 40-hex id of the project HEAD (the `project_commit` field keeps ktstr's 7-hex form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_commit_id: Option<String>,
    /// Fingerprint of the uncommitted change when the tree was dirty: two different dirty
    /// states of one HEAD get different fingerprints, so they are never averaged together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty_fingerprint: Option<String>,
    /// The suite-run token this sidecar was written under (pre-clear happens once per token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_token: Option<String>,
    /// Which repeat of its suite run this sidecar belongs to (0-based), when the run was
    /// repeated: `cargo ktstr test --repeat N` and `cargo ktstr ab` write repeat `i` into the
    /// job subdirectory `repeat-{i}`. Under `ab` both sides share one `run_token`, so the
    /// sidecars of A and B with the same `(run_token, repeat)` ran next to each other in time:
    /// that pair is the unit of a paired test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<u32>,
    /// Where the test ran: `host`, `qemu-tcg` or `qemu-kvm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// Under `qemu-tcg`, what advanced the guest's clocks: `instructions` (QEMU's icount: the
    /// host's load does not reach the guest's measurements) or `host` (the wall clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcg_clock: Option<String>,
    /// Topology the run actually had (ktstr records only the declared one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_ran: Option<String>,
    /// Host load while the test ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_load: Option<HostLoad>,
    /// Why a skipped test was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Dotted paths of float fields that were NaN/inf and were written as `0.0`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_finite_fields: Vec<String>,
    /// Keys this version does not know, kept so a read-modify-write loses nothing.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

impl Provenance {
    pub fn is_empty(&self) -> bool {
        self == &Provenance::default()
    }
}

/// Load on the host while a test ran (all optional: absent when it could not be read).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostLoad {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadavg_1m_start: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadavg_1m_end: Option<f64>,
    /// Steal time during the run as a percentage of all CPU time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steal_pct: Option<f64>,
    /// `/proc/pressure/cpu` `some avg10` at the end of the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pressure_some_avg10: Option<f64>,
    /// Microseconds of `some` CPU pressure accumulated during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_pressure_some_us: Option<u64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

/// One payload invocation's metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PayloadMetrics {
    pub payload_index: usize,
    pub metrics: Vec<Metric>,
    pub exit_code: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    #[serde(deserialize_with = "f64_or_nan")]
    pub value: f64,
    pub polarity: Polarity,
    pub unit: String,
    pub source: MetricSource,
    pub stream: MetricStream,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Polarity {
    HigherBetter,
    LowerBetter,
    Unknown,
    TargetValue(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricSource {
    Json,
    LlmExtract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricStream {
    Stdout,
    Stderr,
    Synthesized,
}

/// Aggregated worker statistics for the whole scenario.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScenarioStats {
    pub cgroups: Vec<CgroupStats>,
    pub total_workers: usize,
    pub total_cpus: usize,
    pub total_migrations: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_spread: f64,
    pub worst_gap_ms: u64,
    pub worst_gap_cpu: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_migration_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_p99_wake_latency_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_median_wake_latency_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_wake_latency_cv: f64,
    pub total_iterations: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_mean_run_delay_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_run_delay_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_page_locality: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_cross_node_migration_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_wake_latency_tail_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_iterations_per_worker: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ext_metrics: BTreeMap<String, f64>,
}

/// Statistics of one cgroup's workers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupStats {
    pub num_workers: usize,
    pub num_cpus: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub avg_off_cpu_pct: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub min_off_cpu_pct: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_off_cpu_pct: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub spread: f64,
    pub max_gap_ms: u64,
    pub max_gap_cpu: usize,
    pub total_migrations: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub migration_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub p99_wake_latency_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub median_wake_latency_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub wake_latency_cv: f64,
    pub total_iterations: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_run_delay_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub worst_run_delay_us: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub page_locality: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub cross_node_migration_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub wake_latency_tail_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub iterations_per_worker: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ext_metrics: BTreeMap<String, f64>,
}

/// Scheduler-side monitor summary (VM runs only; `null` for host runs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSummary {
    pub total_samples: usize,
    #[serde(deserialize_with = "f64_or_nan")]
    pub max_imbalance_ratio: f64,
    pub max_local_dsq_depth: u32,
    pub stall_detected: bool,
    #[serde(deserialize_with = "f64_or_nan")]
    pub avg_imbalance_ratio: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub avg_nr_running: f64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub avg_local_dsq_depth: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_deltas: Option<ScxEventDeltas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedstat_deltas: Option<SchedstatDeltas>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prog_stats_deltas: Option<Vec<ProgStatsDelta>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScxEventDeltas {
    pub total_fallback: i64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub fallback_rate: f64,
    pub max_fallback_burst: i64,
    pub total_dispatch_offline: i64,
    pub total_dispatch_keep_last: i64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub keep_last_rate: f64,
    pub total_enq_skip_exiting: i64,
    pub total_enq_skip_migration_disabled: i64,
    pub total_reenq_immed: i64,
    pub total_reenq_local_repeat: i64,
    pub total_refill_slice_dfl: i64,
    pub total_bypass_duration: i64,
    pub total_bypass_dispatch: i64,
    pub total_bypass_activate: i64,
    pub total_insert_not_owned: i64,
    pub total_sub_bypass_dispatch: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedstatDeltas {
    pub total_run_delay: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub run_delay_rate: f64,
    pub total_pcount: u64,
    pub total_sched_count: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub sched_count_rate: f64,
    pub total_yld_count: u64,
    pub total_sched_goidle: u64,
    pub total_ttwu_count: u64,
    pub total_ttwu_local: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgStatsDelta {
    pub name: String,
    pub cnt: u64,
    pub nsecs: u64,
    #[serde(deserialize_with = "f64_or_nan")]
    pub nsecs_per_call: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StimulusEvent {
    pub elapsed_ms: u64,
    pub label: String,
    #[serde(default)]
    pub op_kind: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub total_iterations: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgVerifierStats {
    pub name: String,
    pub verified_insns: u32,
}

/// Per-vCPU KVM statistics: index = vCPU id, each a map of stat name to cumulative value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvmStatsTotals {
    pub per_vcpu: Vec<BTreeMap<String, u64>>,
}

/// Snapshot of the host a test ran on. Every field is optional and omitted when unknown, so
/// an empty context serializes as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_vendor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_memory_kb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepages_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepages_free: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hugepages_size_kb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp_enabled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thp_defrag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sched_tunables: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_cpus: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_nodes: Option<usize>,
    /// Per online CPU governor, keyed by decimal CPU id; numeric key order on output.
    #[serde(default, skip_serializing_if = "CpuGovernors::is_empty", with = "cpu_governors")]
    pub cpufreq_governor: CpuGovernors,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heap_state: Option<HostHeapState>,
}

/// CPU id → governor name, ordered numerically (ktstr writes `"0"`, `"1"`, … `"10"`).
pub type CpuGovernors = BTreeMap<u32, String>;

mod cpu_governors {
    use super::CpuGovernors;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(map: &CpuGovernors, s: S) -> Result<S::Ok, S::Error> {
        // serde_json writes integer map keys as strings; BTreeMap<u32, _> keeps numeric order.
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<CpuGovernors, D::Error> {
        let raw = Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default();
        let mut out = CpuGovernors::new();
        for (cpu, gov) in raw {
            let id = cpu.trim_start_matches("cpu").parse::<u32>().map_err(|_| {
                serde::de::Error::custom(format!("cpufreq_governor key `{cpu}` is not a CPU id"))
            })?;
            out.insert(id, gov);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostHeapState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resident_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narenas: Option<usize>,
}

impl SidecarResult {
    /// A minimal passing sidecar, the base for tests and skip records.
    pub fn empty(test_name: &str) -> Self {
        SidecarResult {
            test_name: test_name.to_string(),
            topology: "1n1l1c1t".to_string(),
            scheduler: "eevdf".to_string(),
            scheduler_commit: None,
            project_commit: None,
            payload: None,
            metrics: Vec::new(),
            passed: true,
            skipped: false,
            stats: ScenarioStats::default(),
            monitor: None,
            stimulus_events: Vec::new(),
            work_type: "CpuSpin".to_string(),
            active_flags: Vec::new(),
            verifier_stats: Vec::new(),
            kvm_stats: None,
            sysctls: Vec::new(),
            kargs: Vec::new(),
            kernel_version: None,
            kernel_commit: None,
            timestamp: String::new(),
            run_id: String::new(),
            host: None,
            cleanup_duration_ms: None,
            run_source: None,
            provenance: Provenance::default(),
        }
    }

    /// Replace every NaN/inf float with `0.0`, record the dotted path of each in
    /// `provenance.non_finite_fields`, and return how many were replaced.
    ///
    /// Called when a producer builds a document: ktstr cannot read a `null` where it expects a
    /// number, so a non-finite value would otherwise make the whole file unreadable to it.
    pub fn sanitize_non_finite(&mut self) -> usize {
        let mut bad = Vec::new();
        let mut fix = |path: String, v: &mut f64| {
            if !v.is_finite() {
                *v = 0.0;
                bad.push(path);
            }
        };
        let s = &mut self.stats;
        for (name, v) in [
            ("worst_spread", &mut s.worst_spread),
            ("worst_migration_ratio", &mut s.worst_migration_ratio),
            ("worst_p99_wake_latency_us", &mut s.worst_p99_wake_latency_us),
            ("worst_median_wake_latency_us", &mut s.worst_median_wake_latency_us),
            ("worst_wake_latency_cv", &mut s.worst_wake_latency_cv),
            ("worst_mean_run_delay_us", &mut s.worst_mean_run_delay_us),
            ("worst_run_delay_us", &mut s.worst_run_delay_us),
            ("worst_page_locality", &mut s.worst_page_locality),
            ("worst_cross_node_migration_ratio", &mut s.worst_cross_node_migration_ratio),
            ("worst_wake_latency_tail_ratio", &mut s.worst_wake_latency_tail_ratio),
            ("worst_iterations_per_worker", &mut s.worst_iterations_per_worker),
        ] {
            fix(format!("stats.{name}"), v);
        }
        for (k, v) in s.ext_metrics.iter_mut() {
            fix(format!("stats.ext_metrics.{k}"), v);
        }
        for (i, c) in s.cgroups.iter_mut().enumerate() {
            for (name, v) in [
                ("avg_off_cpu_pct", &mut c.avg_off_cpu_pct),
                ("min_off_cpu_pct", &mut c.min_off_cpu_pct),
                ("max_off_cpu_pct", &mut c.max_off_cpu_pct),
                ("spread", &mut c.spread),
                ("migration_ratio", &mut c.migration_ratio),
                ("p99_wake_latency_us", &mut c.p99_wake_latency_us),
                ("median_wake_latency_us", &mut c.median_wake_latency_us),
                ("wake_latency_cv", &mut c.wake_latency_cv),
                ("mean_run_delay_us", &mut c.mean_run_delay_us),
                ("worst_run_delay_us", &mut c.worst_run_delay_us),
                ("page_locality", &mut c.page_locality),
                ("cross_node_migration_ratio", &mut c.cross_node_migration_ratio),
                ("wake_latency_tail_ratio", &mut c.wake_latency_tail_ratio),
                ("iterations_per_worker", &mut c.iterations_per_worker),
            ] {
                fix(format!("stats.cgroups[{i}].{name}"), v);
            }
            for (k, v) in c.ext_metrics.iter_mut() {
                fix(format!("stats.cgroups[{i}].ext_metrics.{k}"), v);
            }
        }
        if let Some(m) = &mut self.monitor {
            for (name, v) in [
                ("max_imbalance_ratio", &mut m.max_imbalance_ratio),
                ("avg_imbalance_ratio", &mut m.avg_imbalance_ratio),
                ("avg_nr_running", &mut m.avg_nr_running),
                ("avg_local_dsq_depth", &mut m.avg_local_dsq_depth),
            ] {
                fix(format!("monitor.{name}"), v);
            }
            if let Some(e) = &mut m.event_deltas {
                fix("monitor.event_deltas.fallback_rate".into(), &mut e.fallback_rate);
                fix("monitor.event_deltas.keep_last_rate".into(), &mut e.keep_last_rate);
            }
            if let Some(sd) = &mut m.schedstat_deltas {
                fix("monitor.schedstat_deltas.run_delay_rate".into(), &mut sd.run_delay_rate);
                fix("monitor.schedstat_deltas.sched_count_rate".into(), &mut sd.sched_count_rate);
            }
            for (i, p) in m.prog_stats_deltas.iter_mut().flatten().enumerate() {
                fix(
                    format!("monitor.prog_stats_deltas[{i}].nsecs_per_call"),
                    &mut p.nsecs_per_call,
                );
            }
        }
        for pm in &mut self.metrics {
            for (i, m) in pm.metrics.iter_mut().enumerate() {
                fix(format!("metrics[{}].metrics[{i}].value", pm.payload_index), &mut m.value);
            }
        }
        let n = bad.len();
        for path in bad {
            if !self.provenance.non_finite_fields.contains(&path) {
                self.provenance.non_finite_fields.push(path);
            }
        }
        n
    }

    /// Serialize exactly as ktstr does: pretty JSON, 2-space indent, no trailing newline.
    /// Documents that reach a file are sanitized when built, before [`super::write`].
    pub fn to_json_pretty(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).expect("sidecar serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../../tests/fixtures/reference-example.ktstr.json");

    #[test]
    fn reference_shaped_sidecar_parses_and_reserializes_identically() {
        let parsed: SidecarResult = serde_json::from_str(REFERENCE).unwrap();
        assert_eq!(parsed.test_name, "cgroup_steady");
        assert_eq!(parsed.stats.cgroups.len(), 1);
        assert!(parsed.provenance.is_empty());
        let value_in: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let value_out: serde_json::Value = serde_json::from_str(&parsed.to_json_pretty()).unwrap();
        assert_eq!(value_in, value_out);
        // Key order, indentation and number formatting match ktstr's writer byte for byte.
        assert_eq!(parsed.to_json_pretty(), REFERENCE);
    }
}
