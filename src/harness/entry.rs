//! The test-entry contract: what a `#[ktstr_test]` function declares ([`TestEntry`]), what its
//! body receives ([`Ctx`]) and what it returns ([`AssertResult`]).
//!
//! Everything in [`TestEntry`] is `const`-constructible, so the proc-macro can emit
//! `static ENTRY: TestEntry = TestEntry { name: "t", func: t, ..TestEntry::DEFAULT };` and a
//! `#[test] fn t() { ktstr::harness::run_entry(&ENTRY) }` wrapper. Running an entry (skips,
//! flag gating, checks, sidecars) is [`super::runner`]'s job; running workloads is
//! [`super::scenario`]'s. Field names follow ktstr's `#[ktstr_test]` attribute keys
//! (harness-reference §1.1) so the macro can map keys one to one.
//!
//! Nothing here runs anything, so this module imports no runtime (runner, watchdog,
//! scenarios, workers). A [`Ctx`] carries two pieces of run state the runtime fills in, each
//! a leaf module of its own: the run's record ([`super::record`]) and its registry of live
//! workers and cgroups ([`super::live`]).

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::sidecar::model::ScenarioStats;

/// The signature of a test body.
pub type TestFn = fn(&Ctx) -> anyhow::Result<AssertResult>;

/// A CPU topology: `numa_nodes` nodes holding `llcs` last-level caches in total, each with
/// `cores_per_llc` cores of `threads_per_core` hardware threads. Renders as `{n}n{l}l{c}c{t}t`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Topology {
    pub numa_nodes: u32,
    pub llcs: u32,
    pub cores_per_llc: u32,
    pub threads_per_core: u32,
}

impl Topology {
    /// ktstr's default when neither the test nor its scheduler says otherwise: `1n1l2c1t`.
    pub const DEFAULT: Topology = Topology::new(1, 1, 2, 1);

    pub const fn new(
        numa_nodes: u32,
        llcs: u32,
        cores_per_llc: u32,
        threads_per_core: u32,
    ) -> Self {
        Topology { numa_nodes, llcs, cores_per_llc, threads_per_core }
    }

    /// Logical CPUs this topology has (saturating, so a silly declaration cannot overflow).
    pub const fn total_cpus(&self) -> u32 {
        self.llcs.saturating_mul(self.cores_per_llc).saturating_mul(self.threads_per_core)
    }

    /// Why this topology is impossible, if it is (zero dimensions, LLCs not divisible by nodes).
    pub fn validate(&self) -> Result<(), String> {
        let dims = [
            ("numa_nodes", self.numa_nodes),
            ("llcs", self.llcs),
            ("cores_per_llc", self.cores_per_llc),
            ("threads_per_core", self.threads_per_core),
        ];
        if let Some((name, _)) = dims.iter().find(|(_, v)| *v == 0) {
            return Err(format!("topology {self}: {name} must be greater than 0"));
        }
        if !self.llcs.is_multiple_of(self.numa_nodes) {
            return Err(format!(
                "topology {self}: llcs ({}) must be a multiple of numa_nodes ({})",
                self.llcs, self.numa_nodes
            ));
        }
        Ok(())
    }
}

impl Default for Topology {
    fn default() -> Self {
        Topology::DEFAULT
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}n{}l{}c{}t",
            self.numa_nodes, self.llcs, self.cores_per_llc, self.threads_per_core
        )
    }
}

impl FromStr for Topology {
    type Err = String;

    /// Parses `{n}n{l}l{c}c{t}t`, e.g. `1n2l4c2t`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid topology {s:?}: expected the form 1n2l4c2t");
        let mut rest = s;
        let mut dims = [0u32; 4];
        for (dim, suffix) in dims.iter_mut().zip(['n', 'l', 'c', 't']) {
            let end = rest.find(suffix).ok_or_else(bad)?;
            *dim = rest[..end].parse().map_err(|_| bad())?;
            rest = &rest[end + 1..];
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        let topo = Topology::new(dims[0], dims[1], dims[2], dims[3]);
        topo.validate()?;
        Ok(topo)
    }
}

/// Limits on which gauntlet presets a test accepts (ktstr's `TopologyConstraints`). `None`
/// for a `max_*` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyConstraints {
    pub min_numa_nodes: u32,
    pub max_numa_nodes: Option<u32>,
    pub min_llcs: u32,
    pub max_llcs: Option<u32>,
    pub min_cpus: u32,
    pub max_cpus: Option<u32>,
    pub requires_smt: bool,
}

impl TopologyConstraints {
    /// ktstr's defaults: one node, 1..=12 LLCs, 1..=192 CPUs, SMT optional.
    pub const DEFAULT: TopologyConstraints = TopologyConstraints {
        min_numa_nodes: 1,
        max_numa_nodes: Some(1),
        min_llcs: 1,
        max_llcs: Some(12),
        min_cpus: 1,
        max_cpus: Some(192),
        requires_smt: false,
    };

    /// Whether a topology satisfies these constraints (host capacity is checked separately).
    pub fn accepts(&self, t: &Topology) -> bool {
        let within = |v: u32, min: u32, max: Option<u32>| v >= min && max.is_none_or(|m| v <= m);
        within(t.numa_nodes, self.min_numa_nodes, self.max_numa_nodes)
            && within(t.llcs, self.min_llcs, self.max_llcs)
            && within(t.total_cpus(), self.min_cpus, self.max_cpus)
            && (!self.requires_smt || t.threads_per_core > 1)
    }
}

impl Default for TopologyConstraints {
    fn default() -> Self {
        TopologyConstraints::DEFAULT
    }
}

/// Assertion thresholds, named as ktstr's attribute keys. `None` means "inherit": the runner
/// merges [`Thresholds::default_checks`] with the test's own values ([`Thresholds::merge`]).
///
/// Checks that need ktstr's VM monitor or sched_ext (`isolation` aside, every field from
/// `fail_on_stall` to `max_keep_last_rate` and the NUMA ones) cannot be evaluated by the host
/// backend; when such a threshold is set, the sidecar's provenance says it was not evaluated
/// rather than pretending it passed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Thresholds {
    /// Every worker did some work, spread and gap are under the default limits.
    pub not_starved: Option<bool>,
    /// Workers only ran on CPUs of their cgroup's cpuset.
    pub isolation: Option<bool>,
    /// Fail when the monitor saw a stall (VM monitor only).
    pub fail_on_stall: Option<bool>,
    /// Longest wall-clock gap between two checkpoints of one worker, ms.
    pub max_gap_ms: Option<u64>,
    /// Deepest sched_ext local DSQ (VM monitor only).
    pub max_local_dsq_depth: Option<u32>,
    /// Consecutive monitor samples needed before a monitor threshold fails (VM monitor only).
    pub sustained_samples: Option<usize>,
    /// Largest allowed p99 wake latency of any cgroup, ns.
    pub max_p99_wake_latency_ns: Option<u64>,
    /// Largest allowed max−min off-CPU percentage within a cgroup.
    pub max_spread_pct: Option<f64>,
    /// max/min runqueue length across CPUs (VM monitor only).
    pub max_imbalance_ratio: Option<f64>,
    /// Largest allowed coefficient of variation of per-worker iteration rates in a cgroup.
    pub max_throughput_cv: Option<f64>,
    /// Smallest allowed per-worker work rate, iterations per CPU-second.
    pub min_work_rate: Option<f64>,
    /// sched_ext fallback dispatches per second (VM monitor only).
    pub max_fallback_rate: Option<f64>,
    /// sched_ext keep-last dispatches per second (VM monitor only).
    pub max_keep_last_rate: Option<f64>,
    /// Largest allowed wake-latency CV of any cgroup.
    pub max_wake_latency_cv: Option<f64>,
    /// Smallest allowed per-worker iteration rate, iterations per wall-clock second.
    pub min_iteration_rate: Option<f64>,
    /// Largest allowed migrations per iteration of any cgroup.
    pub max_migration_ratio: Option<f64>,
    /// Smallest fraction of pages on the local node (NUMA; not measured on the host).
    pub min_page_locality: Option<f64>,
    /// Largest cross-node migration ratio (NUMA; not measured on the host).
    pub max_cross_node_migration_ratio: Option<f64>,
    /// Largest share of memory on a slow tier (NUMA; not measured on the host).
    pub max_slow_tier_ratio: Option<f64>,
}

impl Thresholds {
    /// Nothing set: inherit everything.
    pub const NONE: Thresholds = Thresholds {
        not_starved: None,
        isolation: None,
        fail_on_stall: None,
        max_gap_ms: None,
        max_local_dsq_depth: None,
        sustained_samples: None,
        max_p99_wake_latency_ns: None,
        max_spread_pct: None,
        max_imbalance_ratio: None,
        max_throughput_cv: None,
        min_work_rate: None,
        max_fallback_rate: None,
        max_keep_last_rate: None,
        max_wake_latency_cv: None,
        min_iteration_rate: None,
        max_migration_ratio: None,
        min_page_locality: None,
        max_cross_node_migration_ratio: None,
        max_slow_tier_ratio: None,
    };

    /// ktstr's `Assert::default_checks()` as far as the host can judge: `not_starved` on.
    /// The spread and gap limits `not_starved` implies live in [`super::runner`].
    pub const fn default_checks() -> Thresholds {
        Thresholds { not_starved: Some(true), ..Thresholds::NONE }
    }

    /// `self` overridden by every field `over` sets.
    pub fn merge(&self, over: &Thresholds) -> Thresholds {
        Thresholds {
            not_starved: over.not_starved.or(self.not_starved),
            isolation: over.isolation.or(self.isolation),
            fail_on_stall: over.fail_on_stall.or(self.fail_on_stall),
            max_gap_ms: over.max_gap_ms.or(self.max_gap_ms),
            max_local_dsq_depth: over.max_local_dsq_depth.or(self.max_local_dsq_depth),
            sustained_samples: over.sustained_samples.or(self.sustained_samples),
            max_p99_wake_latency_ns: over.max_p99_wake_latency_ns.or(self.max_p99_wake_latency_ns),
            max_spread_pct: over.max_spread_pct.or(self.max_spread_pct),
            max_imbalance_ratio: over.max_imbalance_ratio.or(self.max_imbalance_ratio),
            max_throughput_cv: over.max_throughput_cv.or(self.max_throughput_cv),
            min_work_rate: over.min_work_rate.or(self.min_work_rate),
            max_fallback_rate: over.max_fallback_rate.or(self.max_fallback_rate),
            max_keep_last_rate: over.max_keep_last_rate.or(self.max_keep_last_rate),
            max_wake_latency_cv: over.max_wake_latency_cv.or(self.max_wake_latency_cv),
            min_iteration_rate: over.min_iteration_rate.or(self.min_iteration_rate),
            max_migration_ratio: over.max_migration_ratio.or(self.max_migration_ratio),
            min_page_locality: over.min_page_locality.or(self.min_page_locality),
            max_cross_node_migration_ratio: over
                .max_cross_node_migration_ratio
                .or(self.max_cross_node_migration_ratio),
            max_slow_tier_ratio: over.max_slow_tier_ratio.or(self.max_slow_tier_ratio),
        }
    }
}

/// One extra run of a test: a named topology preset with a flag profile. The base run (the
/// entry's own topology, its `required_flags`) always happens; each variant is one more run
/// with its own sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GauntletVariant {
    /// Preset name, e.g. `tiny-1llc`.
    pub preset: &'static str,
    pub topology: Topology,
    /// Flags active in this variant, in addition to the entry's `required_flags`.
    pub flags: &'static [&'static str],
}

/// One `#[ktstr_test]` function and everything its attribute declared.
///
/// Build it with struct-update syntax over [`TestEntry::DEFAULT`] so that fields added later
/// do not break generated code.
#[derive(Debug, Clone, Copy)]
pub struct TestEntry {
    /// Bare test function name; the sidecar's `test_name`.
    pub name: &'static str,
    /// The test body.
    pub func: TestFn,
    /// The topology the test asks for; recorded as the sidecar's `topology`. The host backend
    /// cannot change the machine's topology, so it only checks the host is big enough.
    pub topology: Topology,
    /// Which gauntlet variants this test accepts.
    pub constraints: TopologyConstraints,
    /// Guest memory for VM backends, MiB; `None` = the backend's default. Unused on the host.
    pub memory_mb: Option<u32>,
    /// Scheduler name; `eevdf` is the kernel's default (the only one the host backend runs).
    pub scheduler: &'static str,
    /// How long each scenario step holds, seconds (> 0).
    pub duration_s: u64,
    /// Workers forked per cgroup unless a cgroup declares its own count (> 0).
    pub workers_per_cgroup: u32,
    /// The test's own thresholds; merged over [`Thresholds::default_checks`].
    pub thresholds: Thresholds,
    /// Flags that must be active for the test to run; always active in its base run.
    pub required_flags: &'static [&'static str],
    /// Flags under which the test must not run (it is skipped, with a sidecar saying why).
    pub excluded_flags: &'static [&'static str],
    /// Run only on the host backend, never in a VM.
    pub host_only: bool,
    /// The test is expected to fail (an `Err` or a failing verdict); a pass is then an error.
    pub expect_err: bool,
    /// Extra runs (topology preset × flag profile), each writing its own sidecar.
    pub gauntlet: &'static [GauntletVariant],
}

fn missing_body(_: &Ctx) -> anyhow::Result<AssertResult> {
    anyhow::bail!("this test entry has no body: set `func` when building a TestEntry")
}

impl TestEntry {
    /// ktstr's attribute defaults: `1n1l2c1t`, `eevdf`, 2 s, 2 workers per cgroup, default
    /// checks, no flags, no gauntlet. `name` is empty and `func` returns an error until set.
    pub const DEFAULT: TestEntry = TestEntry {
        name: "",
        func: missing_body,
        topology: Topology::DEFAULT,
        constraints: TopologyConstraints::DEFAULT,
        memory_mb: None,
        scheduler: "eevdf",
        duration_s: 2,
        workers_per_cgroup: 2,
        thresholds: Thresholds::NONE,
        required_flags: &[],
        excluded_flags: &[],
        host_only: false,
        expect_err: false,
        gauntlet: &[],
    };

    /// Problems a proc-macro should already have rejected; checked again at run time because
    /// hand-written entries bypass the macro.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() {
            return Err("test entry has an empty name".to_string());
        }
        self.topology.validate().map_err(|e| format!("test {}: {e}", self.name))?;
        if self.duration_s == 0 {
            return Err(format!("test {}: duration_s must be greater than 0", self.name));
        }
        if self.workers_per_cgroup == 0 {
            return Err(format!("test {}: workers_per_cgroup must be greater than 0", self.name));
        }
        if let Some(f) = self.required_flags.iter().find(|f| self.excluded_flags.contains(f)) {
            return Err(format!("test {}: flag {f:?} is both required and excluded", self.name));
        }
        Ok(())
    }
}

/// What a test body gets: the run's parameters and the means to run scenarios (the methods
/// that run workloads are in [`super::scenario`]).
#[derive(Debug)]
pub struct Ctx {
    pub(crate) test_name: String,
    pub(crate) topology: Topology,
    pub(crate) topology_ran: Topology,
    pub(crate) cpus: Vec<usize>,
    pub(crate) duration: Duration,
    pub(crate) workers_per_cgroup: u32,
    pub(crate) active_flags: Vec<String>,
    /// Where per-test cgroups are created; `None` = detect the system hierarchy.
    pub(crate) cgroup_root: Option<PathBuf>,
    /// What the body's scenarios leave for the sidecar.
    pub(crate) record: std::cell::RefCell<super::record::RunRecord>,
    /// Workers and cgroups alive right now, for the watchdog (see [`super::live`]).
    pub(crate) live: std::sync::Arc<super::live::Live>,
}

impl Ctx {
    /// A context for running scenarios outside [`super::run_entry`] (tools, benchmarks,
    /// tests): the given CPUs, duration and workers per cgroup, no flags.
    pub fn new(cpus: Vec<usize>, duration: Duration, workers_per_cgroup: u32) -> Ctx {
        let topo = Topology::new(1, 1, cpus.len().max(1) as u32, 1);
        Ctx {
            test_name: "adhoc".to_string(),
            topology: topo,
            topology_ran: topo,
            cpus,
            duration,
            workers_per_cgroup,
            active_flags: Vec::new(),
            cgroup_root: None,
            record: Default::default(),
            live: Default::default(),
        }
    }

    /// Use `root` (a cgroup v1 controller mount, a cgroup2 mount, or a delegated subtree of
    /// either) instead of the system hierarchy.
    pub fn with_cgroup_root(mut self, root: PathBuf) -> Ctx {
        self.cgroup_root = Some(root);
        self
    }

    pub fn test_name(&self) -> &str {
        &self.test_name
    }
    /// The topology the test declared (what the sidecar records as `topology`).
    pub fn topology(&self) -> Topology {
        self.topology
    }
    /// The topology the run actually has (on the host: the host's own).
    pub fn topology_ran(&self) -> Topology {
        self.topology_ran
    }
    /// Online CPU ids the workers may use.
    pub fn cpus(&self) -> &[usize] {
        &self.cpus
    }
    /// How long each scenario step holds.
    pub fn duration(&self) -> Duration {
        self.duration
    }
    pub fn workers_per_cgroup(&self) -> u32 {
        self.workers_per_cgroup
    }
    /// Flags active in this run, sorted.
    pub fn active_flags(&self) -> &[String] {
        &self.active_flags
    }
    pub fn has_flag(&self, flag: &str) -> bool {
        self.active_flags.iter().any(|f| f == flag)
    }
}

/// The outcome of a test body: a verdict with reasons, and the stats it is based on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssertResult {
    pub passed: bool,
    pub skipped: bool,
    /// Why it failed (empty on a pass) or why it was skipped.
    pub reasons: Vec<String>,
    pub stats: ScenarioStats,
}

impl AssertResult {
    /// A pass carrying `stats`; the runner's threshold checks may still turn it into a fail.
    pub fn pass(stats: ScenarioStats) -> AssertResult {
        AssertResult { passed: true, skipped: false, reasons: Vec::new(), stats }
    }

    /// A failure with one reason.
    pub fn fail(stats: ScenarioStats, reason: impl Into<String>) -> AssertResult {
        AssertResult { passed: false, skipped: false, reasons: vec![reason.into()], stats }
    }

    /// A skip: the test could not run here; the sidecar says `passed: true, skipped: true`.
    pub fn skip(reason: impl Into<String>) -> AssertResult {
        AssertResult {
            passed: true,
            skipped: true,
            reasons: vec![reason.into()],
            stats: ScenarioStats::default(),
        }
    }

    /// Fail (keeping earlier reasons) unless `cond` holds.
    pub fn check(&mut self, cond: bool, reason: impl FnOnce() -> String) -> &mut Self {
        if !cond {
            self.passed = false;
            self.reasons.push(reason());
        }
        self
    }
}

/// An error a test body (or a scenario) returns when it cannot run on this machine, e.g. a
/// work type the host does not support. The runner turns it into a skip, never a pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("skipped: {0}")]
pub struct Skip(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topology_round_trips() {
        let t: Topology = "2n4l4c2t".parse().unwrap();
        assert_eq!(t, Topology::new(2, 4, 4, 2));
        assert_eq!(t.to_string(), "2n4l4c2t");
        assert_eq!(t.total_cpus(), 32);
        assert!("1n3l2c1t".parse::<Topology>().is_ok());
        assert!("2n3l2c1t".parse::<Topology>().unwrap_err().contains("multiple of numa_nodes"));
        assert!("1n0l2c1t".parse::<Topology>().unwrap_err().contains("llcs"));
        assert!("1n1l2c".parse::<Topology>().is_err());
        assert!("1n1l2c1tx".parse::<Topology>().is_err());
    }

    #[test]
    fn constraints_filter_presets() {
        let c = TopologyConstraints::DEFAULT;
        assert!(c.accepts(&Topology::new(1, 4, 4, 2)));
        assert!(!c.accepts(&Topology::new(2, 4, 4, 1)), "two nodes exceed max_numa_nodes=1");
        assert!(!c.accepts(&Topology::new(1, 15, 8, 2)), "15 LLCs exceed max_llcs=12");
        let smt = TopologyConstraints { requires_smt: true, ..c };
        assert!(!smt.accepts(&Topology::new(1, 1, 4, 1)));
    }

    #[test]
    fn thresholds_merge_prefers_override() {
        let base = Thresholds::default_checks();
        let over =
            Thresholds { max_gap_ms: Some(10), not_starved: Some(false), ..Thresholds::NONE };
        let m = base.merge(&over);
        assert_eq!(m.not_starved, Some(false));
        assert_eq!(m.max_gap_ms, Some(10));
        assert_eq!(base.merge(&Thresholds::NONE), base);
    }

    fn body(_: &Ctx) -> anyhow::Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats::default()))
    }

    // The form the proc-macro emits must be a valid static initializer.
    static ENTRY: TestEntry = TestEntry {
        name: "demo",
        func: body,
        gauntlet: &[GauntletVariant {
            preset: "tiny-1llc",
            topology: Topology::new(1, 1, 4, 1),
            flags: &["llc"],
        }],
        ..TestEntry::DEFAULT
    };

    #[test]
    fn entry_validation() {
        assert!(ENTRY.validate().is_ok());
        let bad = TestEntry { duration_s: 0, ..ENTRY };
        assert!(bad.validate().unwrap_err().contains("duration_s"));
        let both = TestEntry { required_flags: &["llc"], excluded_flags: &["llc"], ..ENTRY };
        assert!(both.validate().unwrap_err().contains("both required and excluded"));
        assert!(TestEntry::DEFAULT.validate().is_err());
    }
}
