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

use std::path::PathBuf;
use std::time::Duration;

use super::scheduler::decl::{EEVDF, Scheduler};
use crate::sidecar::model::ScenarioStats;

/// The signature of a test body.
pub type TestFn = fn(&Ctx) -> anyhow::Result<AssertResult>;

pub use super::thresholds::Thresholds;
pub use ktstr_decl::{Topology, TopologyError};

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
    /// cannot change the machine's topology: it runs the test on as many host CPUs, chosen to
    /// follow this shape as far as the host allows (see [`super::host_cpus`]).
    pub topology: Topology,
    /// Which gauntlet variants this test accepts.
    pub constraints: TopologyConstraints,
    /// Guest memory for VM backends, MiB; `None` = the backend's default. Unused on the host.
    pub memory_mb: Option<u32>,
    /// Scheduler name (the sidecar's `scheduler`); `eevdf` is the kernel's own scheduler.
    pub scheduler: &'static str,
    /// The declaration of a sched_ext scheduler named by `scheduler`; `None` for `eevdf`.
    /// The macro fills it from the crate's `#[derive(Schedulers)]`.
    pub scheduler_decl: Option<&'static Scheduler>,
    /// In a VM boot that keeps the scheduler attached across tests, restart it before this
    /// test (`#[ktstr_test(fresh_scheduler = true)]`). The host backend starts a scheduler per
    /// test anyway.
    pub fresh_scheduler: bool,
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
        scheduler_decl: None,
        fresh_scheduler: false,
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
        match self.scheduler_decl {
            None if self.scheduler != EEVDF => Err(format!(
                "test {}: scheduler {:?} has no declaration; declare it with #[derive(Schedulers)]",
                self.name, self.scheduler
            )),
            Some(d) if d.name != self.scheduler => Err(format!(
                "test {}: scheduler {:?} is declared as {:?}",
                self.name, self.scheduler, d.name
            )),
            _ => Ok(()),
        }
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
    /// Whether `cpus` are fewer than the host's, so every scenario's cgroups are confined to
    /// them (see [`super::host_cpus`]).
    pub(crate) confined: bool,
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
            confined: false,
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
    /// The CPU ids the workers may use: on the host backend, the CPUs chosen for the declared
    /// topology, to which every scenario is confined when they are fewer than the host's.
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
    fn constraints_filter_presets() {
        let c = TopologyConstraints::DEFAULT;
        assert!(c.accepts(&Topology::new(1, 4, 4, 2)));
        assert!(!c.accepts(&Topology::new(2, 4, 4, 1)), "two nodes exceed max_numa_nodes=1");
        assert!(!c.accepts(&Topology::new(1, 15, 8, 2)), "15 LLCs exceed max_llcs=12");
        let smt = TopologyConstraints { requires_smt: true, ..c };
        assert!(!smt.accepts(&Topology::new(1, 1, 4, 1)));
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
        let undeclared = TestEntry { scheduler: "scx_x", ..ENTRY };
        assert_eq!(
            undeclared.validate().unwrap_err(),
            "test demo: scheduler \"scx_x\" has no declaration; declare it with \
             #[derive(Schedulers)]"
        );
        static OTHER: Scheduler = Scheduler {
            name: "scx_y",
            binary: crate::harness::scheduler::SchedulerBinary::OnPath("scx_y"),
            args: &[],
            flags: &[],
            attach_timeout_s: 1,
        };
        let mismatched = TestEntry { scheduler_decl: Some(&OTHER), ..undeclared };
        assert!(mismatched.validate().unwrap_err().contains("is declared as \"scx_y\""));
        let declared = TestEntry { scheduler: "scx_y", ..mismatched };
        assert!(declared.validate().is_ok());
    }
}
