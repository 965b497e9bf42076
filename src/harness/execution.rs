//! The seam between running a test and recording it: a runner yields an [`Execution`], and
//! [`build_sidecar`] turns (entry, variant, execution, run context) into the sidecar document.
//! It is the only place a document is assembled.
//!
//! # Producers
//! The host runner ([`super::runner`]) runs the body in this process and fills an `Execution`
//! from what it measured. A VM runner will run the same entry in a guest and fill the same
//! record from what the guest reports: its own verdict, stats and events, the topology the
//! guest had, host load while it ran. Every runner then takes a [`RunContext`] for its
//! backend, calls [`build_sidecar`], and hands the document to
//! [`write_sidecar`](crate::sidecar::write::write_sidecar), which writes it unchanged. So two
//! backends cannot shape a document differently, and a document never changes between being
//! built and being stored.
//!
//! # What comes from where
//! - [`TestEntry`]: the test's name and scheduler.
//! - [`Variant`]: which run of the entry (the declared topology and the active flag set).
//! - [`Execution`]: everything running the body produced.
//! - `RunContext`: everything about where, when and how it ran (commits, kernel, host, run
//!   token and id, timestamp, backend).
//!
//! The builder also applies the document's own rules: flags in canonical order (so the stored
//! order and the file name depend only on the flag set) and non-finite floats replaced by
//! `0.0`, named in `provenance.non_finite_fields`.

use std::time::Duration;

use super::entry::{TestEntry, Topology};
use crate::provenance::RunContext;
use crate::provenance::git::ProjectCommit;
use crate::sidecar::model::{HostLoad, ScenarioStats, SidecarResult, StimulusEvent};
use crate::sidecar::name::canonicalize_flags;

/// One run of an entry: the base run or a gauntlet variant, with its final flag set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// `base` or `{preset}/{profile}`; names the run in messages, not in the document.
    pub label: String,
    /// The declared topology (the sidecar's `topology`).
    pub topology: Topology,
    /// Active flags, in any order.
    pub flags: Vec<String>,
}

/// How a run ended.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Verdict {
    /// Ran and passed, or has not failed yet: a run is a pass until a check fails it.
    #[default]
    Passed,
    Failed,
    /// Could not run here; the reason is recorded as `provenance.skip_reason`.
    Skipped(String),
}

/// What running a test body produced: the execution record every runner yields.
///
/// Every field is something the runner observed; anything it could not observe stays empty,
/// and the builder never fills a gap with a guess. It serialises (JSON) so that a VM guest can
/// hand the host the record it produced.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Execution {
    pub verdict: Verdict,
    /// Why it failed (or was skipped); the harness reports them, the document does not hold
    /// them.
    pub reasons: Vec<String>,
    pub stats: ScenarioStats,
    /// The work type that ran; `None` leaves the document's default (`CpuSpin`, as ktstr).
    pub work_type: Option<String>,
    pub stimulus_events: Vec<StimulusEvent>,
    /// Measured teardown time of the run's workers and cgroups; `None` when nothing was torn
    /// down.
    pub cleanup: Option<Duration>,
    /// The topology the run actually had.
    #[serde(with = "optional_topology")]
    pub topology_ran: Option<Topology>,
    /// The CPUs the run was confined to (`provenance.host_cpus`, a cpuset list), when it was.
    pub confined_to: Option<String>,
    /// Why the run's CPUs do not form the declared topology (`provenance.topology_mismatch`).
    pub topology_mismatch: Option<String>,
    /// Load on the host while the body ran.
    pub host_load: Option<HostLoad>,
    /// `v1` or `v2`, once a scenario created cgroups.
    pub cgroup_version: Option<String>,
    /// The panic message of a body that panicked.
    pub body_panic: Option<String>,
    /// The no-progress budget after which a hung body was killed.
    pub body_timed_out_after: Option<Duration>,
    /// What could not be measured, in any order, repeats allowed.
    pub unmeasured: Vec<String>,
    /// Thresholds the test set that this backend cannot evaluate.
    pub thresholds_not_evaluated: Vec<String>,
    /// A VM run with more vCPUs than the host has CPUs: that vCPU count.
    #[serde(default)]
    pub vcpus_overcommitted: Option<u32>,
    /// The sched_ext scheduler the body ran under (`None` under the kernel's own); a VM guest
    /// sends it with the rest, so host and VM sidecars get the same `scx_*` keys.
    #[serde(default)]
    pub scheduler_run: Option<super::scheduler::SchedulerRun>,
}

impl Execution {
    /// Mark the run skipped for `why` (which is then also its only reason).
    pub fn skip(&mut self, why: String) {
        self.verdict = Verdict::Skipped(why.clone());
        self.reasons = vec![why];
    }
}

/// Serde for `Option<Topology>` as its notation string (`ktstr-decl` has no serde).
mod optional_topology {
    use super::Topology;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Topology>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(t),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Topology>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| t.parse().map_err(serde::de::Error::custom)).transpose()
    }
}

/// The sidecar document for one run, complete and ready to write.
pub fn build_sidecar(
    entry: &TestEntry,
    variant: &Variant,
    execution: &Execution,
    ctx: &RunContext,
) -> SidecarResult {
    let mut sc = SidecarResult {
        topology: variant.topology.to_string(),
        scheduler: entry.scheduler.to_string(),
        active_flags: variant.flags.clone(),
        ..SidecarResult::empty(entry.name)
    };
    record_execution(&mut sc, execution);
    record_context(&mut sc, ctx);
    canonicalize_flags(&mut sc.active_flags);
    sc.sanitize_non_finite();
    sc
}

fn record_execution(sc: &mut SidecarResult, ex: &Execution) {
    match &ex.verdict {
        Verdict::Passed => sc.passed = true,
        Verdict::Failed => sc.passed = false,
        Verdict::Skipped(why) => {
            sc.passed = true;
            sc.skipped = true;
            sc.provenance.skip_reason = Some(why.clone());
        }
    }
    sc.work_type = match (&ex.verdict, &ex.work_type) {
        (Verdict::Skipped(_), _) => "skipped".to_string(),
        (_, Some(wt)) => wt.clone(),
        (_, None) => sc.work_type.clone(),
    };
    sc.stats = ex.stats.clone();
    sc.stimulus_events = ex.stimulus_events.clone();
    sc.cleanup_duration_ms = ex.cleanup.map(|d| d.as_millis() as u64);
    sc.provenance.topology_ran = ex.topology_ran.map(|t| t.to_string());
    sc.provenance.host_load = ex.host_load.clone();
    let other = &mut sc.provenance.other;
    if let Some(msg) = &ex.body_panic {
        other.insert("body_panic".into(), msg.clone().into());
    }
    if let Some(budget) = ex.body_timed_out_after {
        other.insert("body_timed_out_after_s".into(), budget.as_secs_f64().into());
    }
    if let Some(cpus) = &ex.confined_to {
        other.insert("host_cpus".into(), cpus.clone().into());
    }
    if let Some(why) = &ex.topology_mismatch {
        other.insert("topology_mismatch".into(), why.clone().into());
    }
    if let Some(v) = &ex.cgroup_version {
        other.insert("cgroup_version".into(), v.clone().into());
    }
    let mut unmeasured = ex.unmeasured.clone();
    unmeasured.sort();
    unmeasured.dedup();
    if !unmeasured.is_empty() {
        other.insert("unmeasured".into(), unmeasured.into());
    }
    if let Some(run) = &ex.scheduler_run {
        run.record_into(other);
    }
    if !ex.thresholds_not_evaluated.is_empty() {
        other.insert("thresholds_not_evaluated".into(), ex.thresholds_not_evaluated.clone().into());
    }
    if let Some(vcpus) = ex.vcpus_overcommitted {
        other.insert("vcpus_overcommitted".into(), vcpus.into());
    }
}

fn record_context(sc: &mut SidecarResult, ctx: &RunContext) {
    sc.project_commit = ctx.project.as_ref().map(ProjectCommit::sidecar_commit_string);
    sc.provenance.project_commit_id = ctx.project.as_ref().map(|p| p.id.clone());
    sc.provenance.dirty_fingerprint =
        ctx.project.as_ref().and_then(|p| p.dirty_fingerprint.clone());
    sc.kernel_version = ctx.kernel.version.clone();
    sc.kernel_commit = ctx.kernel.commit.clone();
    if let Some(requested) = &ctx.kernel.requested {
        sc.provenance.other.insert("kernel_requested".into(), requested.clone().into());
    }
    sc.run_source = Some(ctx.run_source.clone());
    sc.timestamp = ctx.timestamp.clone();
    sc.run_id = ctx.run_id.clone();
    sc.host = Some(ctx.host.clone());
    sc.provenance.run_token = Some(ctx.run_token.clone());
    sc.provenance.repeat = ctx.repeat;
    sc.provenance.backend = Some(ctx.backend.as_str().to_string());
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::provenance::kernel::KernelIdentity;
    use crate::provenance::{Backend, RunContext};
    use crate::sidecar::model::{CgroupStats, HostContext};
    use crate::sidecar::read::{read_sidecar, run_dir_sidecar_paths};
    use crate::sidecar::write::{WriteOptions, write_sidecar};

    const COMPLETED: &str = include_str!("../../tests/fixtures/built/completed.ktstr.json");
    const TIMED_OUT: &str = include_str!("../../tests/fixtures/built/timed-out.ktstr.json");
    const SKIPPED: &str = include_str!("../../tests/fixtures/built/skipped.ktstr.json");

    fn entry(name: &'static str) -> TestEntry {
        TestEntry { name, ..TestEntry::DEFAULT }
    }

    fn variant(topology: Topology, flags: &[&str]) -> Variant {
        Variant {
            label: "base".into(),
            topology,
            flags: flags.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn dirty_project() -> ProjectCommit {
        ProjectCommit {
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            short: "0123456".into(),
            dirty: true,
            dirty_fingerprint: Some("feedfacecafebeef".into()),
        }
    }

    fn host() -> HostContext {
        HostContext {
            cpu_model: Some("AMD EPYC Fixture".into()),
            cpu_vendor: Some("AuthenticAMD".into()),
            total_memory_kb: Some(24_000_000),
            online_cpus: Some(2),
            numa_nodes: Some(1),
            sched_tunables: Some([("sched_autogroup_enabled".into(), "1".into())].into()),
            cpufreq_governor: [(0, "performance".into()), (1, "performance".into())].into(),
            kernel_name: Some("Linux".into()),
            kernel_release: Some("6.1.0-test".into()),
            arch: Some("x86_64".into()),
            kernel_cmdline: Some("console=ttyS0 quiet".into()),
            ..Default::default()
        }
    }

    /// A host-backend context as detection would give it, with fixed facts.
    fn context(project: Option<ProjectCommit>, kernel: KernelIdentity) -> RunContext {
        RunContext {
            backend: Backend::Host,
            project,
            kernel: kernel.on_host(Some("6.1.0-test")),
            run_source: "ci".into(),
            run_token: "tok-1".into(),
            repeat: None,
            run_id: "20260427T091455Z-3".into(),
            timestamp: "2026-04-27T09:15:02Z".into(),
            host: host(),
        }
    }

    fn named_kernel(version: &str) -> KernelIdentity {
        KernelIdentity {
            version: Some(version.into()),
            commit: Some("abc1234".into()),
            requested: None,
        }
    }

    fn host_load() -> HostLoad {
        HostLoad {
            loadavg_1m_start: Some(0.5),
            loadavg_1m_end: Some(1.25),
            steal_pct: Some(0.0),
            cpu_pressure_some_avg10: Some(3.5),
            cpu_pressure_some_us: Some(12345),
            other: Default::default(),
        }
    }

    /// A panicked body with non-finite stats, on a host asked for another kernel.
    fn completed() -> Execution {
        Execution {
            verdict: Verdict::Failed,
            reasons: vec!["test body panicked: boom".into()],
            stats: ScenarioStats {
                cgroups: vec![CgroupStats {
                    num_workers: 2,
                    num_cpus: 2,
                    avg_off_cpu_pct: 10.5,
                    spread: 3.25,
                    p99_wake_latency_us: f64::INFINITY,
                    total_iterations: 1000,
                    iterations_per_worker: 500.0,
                    ext_metrics: [("custom".to_string(), f64::NAN)].into(),
                    ..Default::default()
                }],
                total_workers: 2,
                total_cpus: 2,
                worst_spread: 3.25,
                worst_wake_latency_cv: f64::NAN,
                total_iterations: 1000,
                worst_iterations_per_worker: 500.0,
                ..Default::default()
            },
            work_type: Some("PipeIo".into()),
            stimulus_events: vec![
                StimulusEvent {
                    elapsed_ms: 0,
                    label: "step 0".into(),
                    op_kind: Some("start".into()),
                    ..Default::default()
                },
                StimulusEvent {
                    elapsed_ms: 1000,
                    label: "step 0".into(),
                    total_iterations: Some(77),
                    ..Default::default()
                },
            ],
            cleanup: Some(Duration::from_micros(12_700)),
            topology_ran: Some(Topology::new(1, 1, 2, 1)),
            confined_to: None,
            topology_mismatch: None,
            host_load: Some(host_load()),
            cgroup_version: Some("v1".into()),
            body_panic: Some("boom".into()),
            body_timed_out_after: None,
            unmeasured: vec!["wake_latency".into(), "page_locality".into(), "wake_latency".into()],
            thresholds_not_evaluated: vec!["max_imbalance_ratio".into()],
            vcpus_overcommitted: None,
            scheduler_run: None,
        }
    }

    #[test]
    fn built_documents_match_what_the_previous_writer_produced() {
        // The flags arrive sorted alphabetically, as the runner sorts them; the document
        // stores them in canonical order.
        let v = variant(Topology::new(1, 2, 2, 1), &["borrow", "llc", "zz-custom"]);
        let ctx = context(Some(dirty_project()), named_kernel("7.0"));
        let sc = build_sidecar(&entry("built_fixture"), &v, &completed(), &ctx);
        assert_eq!(sc.to_json_pretty(), COMPLETED);

        let hung = Execution {
            verdict: Verdict::Failed,
            work_type: Some("CpuSpin".into()),
            cleanup: Some(Duration::from_millis(3)),
            topology_ran: Some(Topology::new(1, 1, 2, 1)),
            host_load: Some(HostLoad { loadavg_1m_start: Some(0.5), ..Default::default() }),
            body_timed_out_after: Some(Duration::from_millis(1500)),
            ..Execution::default()
        };
        let ctx = context(Some(dirty_project()), named_kernel("6.1.0-test"));
        let v = variant(Topology::new(1, 1, 2, 1), &[]);
        assert_eq!(
            build_sidecar(&entry("built_fixture"), &v, &hung, &ctx).to_json_pretty(),
            TIMED_OUT
        );

        let mut skip =
            Execution { topology_ran: Some(Topology::new(1, 1, 2, 1)), ..Default::default() };
        skip.skip("topology 1n8l64c2t needs 1024 CPUs but this host has 2 (1n1l2c1t)".into());
        let ctx = RunContext {
            run_source: "local".into(),
            run_token: "tok-2".into(),
            ..context(None, KernelIdentity::default())
        };
        let huge = TestEntry { topology: Topology::new(1, 8, 64, 2), ..entry("built_skip") };
        let v = variant(huge.topology, &["llc"]);
        assert_eq!(build_sidecar(&huge, &v, &skip, &ctx).to_json_pretty(), SKIPPED);
    }

    #[test]
    fn the_context_fills_every_run_level_field() {
        let ctx = RunContext {
            kernel: KernelIdentity {
                version: Some("6.14.2".into()),
                commit: Some("fedcba9".into()),
                requested: None,
            },
            repeat: Some(3),
            ..context(Some(dirty_project()), KernelIdentity::default())
        };
        let v = variant(Topology::DEFAULT, &[]);
        let sc = build_sidecar(&entry("alpha"), &v, &Execution::default(), &ctx);
        assert_eq!(sc.project_commit.as_deref(), Some("0123456-dirty"));
        assert_eq!(sc.provenance.project_commit_id.as_deref(), Some(&*dirty_project().id));
        assert_eq!(sc.provenance.dirty_fingerprint.as_deref(), Some("feedfacecafebeef"));
        assert_eq!(sc.kernel_version.as_deref(), Some("6.14.2"));
        assert_eq!(sc.kernel_commit.as_deref(), Some("fedcba9"));
        assert_eq!(sc.run_source.as_deref(), Some("ci"));
        assert_eq!(sc.timestamp, "2026-04-27T09:15:02Z");
        assert_eq!(sc.run_id, "20260427T091455Z-3");
        assert_eq!(sc.host, Some(host()));
        assert_eq!(sc.provenance.run_token.as_deref(), Some("tok-1"));
        assert_eq!(sc.provenance.backend.as_deref(), Some("host"));
        assert_eq!(sc.provenance.repeat, Some(3));
        assert!(!sc.provenance.other.contains_key("kernel_requested"));

        let none = RunContext { project: None, ..RunContext::detect(Backend::Host) };
        let sc = build_sidecar(&entry("beta"), &v, &Execution::default(), &none);
        assert_eq!(sc.project_commit, None);
        assert_eq!(sc.provenance.project_commit_id, None);
    }

    #[test]
    fn a_host_run_asked_for_another_kernel_records_it_as_requested() {
        let ctx = context(None, named_kernel("7.0"));
        let v = variant(Topology::DEFAULT, &[]);
        let sc = build_sidecar(&entry("t"), &v, &Execution::default(), &ctx);
        assert_eq!(sc.kernel_version.as_deref(), Some("6.1.0-test"));
        assert_eq!(sc.kernel_commit, None);
        assert_eq!(sc.provenance.other["kernel_requested"], "7.0");
    }

    fn opts(root: &Path) -> WriteOptions {
        WriteOptions {
            sidecar_dir_override: None,
            runs_root: root.to_path_buf(),
            run_token: "run1".into(),
            lock_timeout: Duration::from_secs(5),
            job: None,
        }
    }

    #[test]
    fn built_sidecar_canonicalizes_flags_and_sanitizes_non_finite_values() {
        let root = tempfile::tempdir().unwrap();
        let v = variant(Topology::DEFAULT, &["steal", "zz", "llc"]);
        let ex = Execution {
            stats: ScenarioStats { worst_spread: f64::NAN, ..Default::default() },
            ..Default::default()
        };
        let sc = build_sidecar(&entry("alpha"), &v, &ex, &context(None, named_kernel("7.0")));
        let path = write_sidecar(&sc, &opts(root.path())).unwrap();
        let back = read_sidecar(&path).unwrap();
        assert_eq!(back.active_flags, ["llc", "steal", "zz"]);
        assert_eq!(back.stats.worst_spread, 0.0);
        assert_eq!(back.provenance.non_finite_fields, ["stats.worst_spread"]);
        assert_eq!(run_dir_sidecar_paths(path.parent().unwrap()), [path]);
    }

    #[test]
    fn a_skip_is_a_passing_skipped_run_whatever_ran_before_it() {
        let mut ex =
            Execution { work_type: Some("PipeIo".into()), cleanup: None, ..Default::default() };
        ex.skip("no pipes here".into());
        assert_eq!(ex.reasons, ["no pipes here"]);
        let v = variant(Topology::DEFAULT, &[]);
        let sc = build_sidecar(&entry("t"), &v, &ex, &context(None, KernelIdentity::default()));
        assert!(sc.passed && sc.skipped);
        assert_eq!(sc.work_type, "skipped");
        assert_eq!(sc.provenance.skip_reason.as_deref(), Some("no pipes here"));

        // Without a recorded work type the document keeps ktstr's default.
        let sc = build_sidecar(
            &entry("t"),
            &v,
            &Execution::default(),
            &context(None, KernelIdentity::default()),
        );
        assert_eq!(sc.work_type, "CpuSpin");
    }
}
