//! Running a [`TestEntry`] on the host: capacity and flag gating, the body, threshold checks,
//! host-load recording, and one sidecar per run (the base run and each gauntlet variant).
//!
//! The verdict is decided here. Each run yields an [`Execution`]; the sidecar is built from it
//! and the run's [`RunContext`] by [`build_sidecar`] and written as built through
//! [`crate::sidecar::write`], and a write failure is logged as `ktstr_test: {err}` without
//! changing the verdict. The body runs
//! under [`super::watchdog`]: a panic or a hang still gets a failure sidecar (reason and
//! `provenance.other.body_panic` / `body_timed_out_after_s`), and `run_entry` then fails the
//! `#[test]`. `cleanup_duration_ms` is the measured teardown time of the run's steps (and of
//! the watchdog's teardown), null when nothing was torn down. The `#[test]`'s failure message
//! lists each failed run's reasons and, after a scheduling check's failure on a host that was
//! busy with others' work, says so (`harness::contention`). Running the workloads is
//! [`super::scenario`]'s job.
//!
//! Each run's body holds the [machine lock](super::machine_lock), so no two measured runs on
//! one machine overlap, and gets the CPUs [`super::host_cpus`] chooses for its declared
//! topology: fewer than the host's means every scenario is confined to them (a cpuset),
//! recorded as `provenance.host_cpus`; CPUs that do not form the declared topology are
//! recorded as `provenance.topology_mismatch`, next to `provenance.topology_ran`.

use std::path::PathBuf;
use std::time::Duration;

use super::cgroup::cpu_list;
use super::contention;
use super::entry::{AssertResult, Ctx, GauntletVariant, Skip, TestEntry, Topology};
use super::execution::{Execution, Variant, Verdict, build_sidecar};
use super::host_cpus::HostShape;
use super::live::Live;
use super::machine_lock::MachineLock;
use super::scheduler::host::{attach_for, euid, host_support, kernel_release};
use super::scheduler::{EEVDF, SchedExtSysfs};
use super::threshold_checks::apply_thresholds;
use super::thresholds::Thresholds;
use super::watchdog::{BodyOutcome, HANG_GRACE, run_body};
use crate::provenance::{Backend, RunContext, run};
use crate::sidecar::model::{HostLoad, ScenarioStats, SidecarResult};
use crate::sidecar::write::{WriteOptions, write_sidecar};

/// The outcome of one run of an entry.
#[derive(Debug)]
pub struct RunOutcome {
    /// `base` or `{preset}/{profile}`.
    pub label: String,
    pub sidecar: SidecarResult,
    /// Where the sidecar went, or why it could not be written.
    pub written: Result<PathBuf, String>,
    /// Failure (or skip) reasons.
    pub reasons: Vec<String>,
}

/// The function the generated `#[test]` calls: run the entry and each gauntlet variant,
/// write their sidecars, print skips, and panic if any run failed.
pub fn run_entry(entry: &'static TestEntry) {
    let opts = WriteOptions::from_env(run::run_token());
    let (outcomes, infrastructure) = if super::vm_backend::active() && !entry.host_only {
        let vm = super::vm_backend::run_entry_outcomes(entry, &opts);
        (vm.runs, vm.infrastructure)
    } else {
        (run_entry_outcomes(entry, &opts), Vec::new())
    };
    for o in &outcomes {
        if let Err(e) = &o.written {
            eprintln!("ktstr_test: {e}");
        }
        if o.sidecar.skipped {
            eprintln!("ktstr_test: {} [{}] skipped: {}", entry.name, o.label, o.reasons.join("; "));
        }
    }
    if let Some(message) = failure_message(entry.name, &outcomes) {
        panic!("{message}");
    }
    if !infrastructure.is_empty() {
        panic!("ktstr test {} could not run: {}", entry.name, infrastructure.join(" | "));
    }
}

/// What the failing `#[test]` panics with (the text nextest shows): every failed run's label
/// and reasons, each followed by a hint when its host was contended (see [`contention`]).
fn failure_message(name: &str, outcomes: &[RunOutcome]) -> Option<String> {
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.sidecar.skipped && !o.sidecar.passed)
        .map(|o| {
            let line = format!("[{}] {}", o.label, o.reasons.join("; "));
            match contention::hint(&o.sidecar, &o.reasons) {
                Some(hint) => format!("{line} ({hint})"),
                None => line,
            }
        })
        .collect();
    (!failures.is_empty()).then(|| format!("ktstr test {name} failed: {}", failures.join(" | ")))
}

/// Run every variant of `entry` and write sidecars with `opts`; never panics on a verdict
/// (nor on a panicking or hung body, see [`super::watchdog`]).
pub fn run_entry_outcomes(entry: &TestEntry, opts: &WriteOptions) -> Vec<RunOutcome> {
    run_entry_outcomes_with_grace(entry, opts, HANG_GRACE)
}

/// [`run_entry_outcomes`] with a hang grace other than [`HANG_GRACE`] (tests use a short one).
pub(crate) fn run_entry_outcomes_with_grace(
    entry: &TestEntry,
    opts: &WriteOptions,
    hang_grace: Duration,
) -> Vec<RunOutcome> {
    variants(entry)
        .into_iter()
        .map(|variant| {
            let execution = run_one(entry, &variant, hang_grace);
            let ctx = RunContext::detect(Backend::Host);
            let sc = build_sidecar(entry, &variant, &execution, &ctx);
            let written = write_sidecar(&sc, opts).map_err(|e| e.to_string());
            RunOutcome { label: variant.label, sidecar: sc, written, reasons: execution.reasons }
        })
        .collect()
}

/// Every run of `entry`: the base run and each gauntlet variant its constraints accept, with
/// the flags of `KTSTR_FLAGS` added, each (topology, flag set) once.
pub(crate) fn variants(entry: &TestEntry) -> Vec<Variant> {
    let env_flags: Vec<String> = std::env::var("KTSTR_FLAGS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(String::from)
        .collect();
    let mut runs = vec![("base".to_string(), entry.topology, Vec::<&str>::new())];
    // Gauntlet presets outside the entry's topology constraints (min/max nodes, LLCs, CPUs,
    // SMT) are not runs of this test, as in ktstr's gauntlet expansion.
    for v in entry.gauntlet.iter().filter(|v| entry.constraints.accepts(&v.topology)) {
        runs.push((variant_label(v), v.topology, v.flags.to_vec()));
    }
    // A variant identical to an earlier one (same topology and flag set) would hash to the
    // same sidecar file and silently replace it, so it runs once.
    let mut seen = std::collections::HashSet::new();
    runs.into_iter()
        .filter_map(|(label, topo, extra)| {
            let mut flags: Vec<String> =
                entry.required_flags.iter().map(|f| f.to_string()).collect();
            flags.extend(extra.iter().map(|f| f.to_string()));
            flags.extend(env_flags.iter().cloned());
            flags.sort();
            flags.dedup();
            seen.insert((topo, flags.clone())).then_some(Variant { label, topology: topo, flags })
        })
        .collect()
}

fn variant_label(v: &GauntletVariant) -> String {
    let profile = if v.flags.is_empty() { "default".to_string() } else { v.flags.join("+") };
    format!("{}/{profile}", v.preset)
}

/// The machine's own topology and the CPUs this process may use, read from sysfs (see
/// [`HostShape::read`]).
pub fn host_topology() -> (Topology, Vec<usize>) {
    let shape = HostShape::read();
    (shape.topology(), shape.cpu_ids())
}

/// The load sample [`host_load`] takes at each end of a run.
pub(crate) struct LoadSample {
    loadavg_1m: Option<f64>,
    /// (steal, total) jiffies from the aggregate `cpu` line.
    stat: Option<(u64, u64)>,
    psi_some_total_us: Option<u64>,
}

pub(crate) fn sample_load() -> LoadSample {
    let loadavg_1m = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok());
    let stat = std::fs::read_to_string("/proc/stat").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        // Fields: user nice system idle iowait irq softirq steal guest guest_nice; guest time
        // is already counted in user/nice.
        let total: u64 = v.iter().take(8).sum();
        Some((*v.get(7)?, total))
    });
    let psi_some_total_us = psi_some().map(|(_, t)| t);
    LoadSample { loadavg_1m, stat, psi_some_total_us }
}

/// (`some avg10`, `some total` µs) from `/proc/pressure/cpu`.
fn psi_some() -> Option<(f64, u64)> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let line = text.lines().find(|l| l.starts_with("some "))?;
    let field = |k: &str| line.split_whitespace().find_map(|f| f.strip_prefix(k));
    Some((field("avg10=")?.parse().ok()?, field("total=")?.parse().ok()?))
}

pub(crate) fn host_load(start: &LoadSample, end: &LoadSample) -> HostLoad {
    let steal_pct = match (start.stat, end.stat) {
        (Some((s0, t0)), Some((s1, t1))) if t1 > t0 => {
            Some(s1.saturating_sub(s0) as f64 / (t1 - t0) as f64 * 100.0)
        }
        _ => None,
    };
    HostLoad {
        loadavg_1m_start: start.loadavg_1m,
        loadavg_1m_end: end.loadavg_1m,
        steal_pct,
        cpu_pressure_some_avg10: psi_some().map(|(a, _)| a),
        cpu_pressure_some_us: match (start.psi_some_total_us, end.psi_some_total_us) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        },
        other: Default::default(),
    }
}

/// Why the host cannot run this variant, if it cannot: too few CPUs, a required flag
/// missing, an excluded flag active, or a sched_ext scheduler on a host without sched_ext or
/// without root.
fn host_cannot_run(
    entry: &TestEntry,
    variant: &Variant,
    host_topo: Topology,
    cpus: usize,
    scheduler: SchedulerControl,
) -> Option<String> {
    let (topo, flags) = (variant.topology, &variant.flags);
    if topo.total_cpus() as usize > cpus {
        return Some(format!(
            "topology {topo} needs {} CPUs but this host has {cpus} ({host_topo})",
            topo.total_cpus(),
        ));
    }
    if let Some(f) = entry.required_flags.iter().find(|f| !flags.iter().any(|a| a == *f)) {
        return Some(format!("required flag {f:?} is not active"));
    }
    if let Some(f) = entry.excluded_flags.iter().find(|f| flags.iter().any(|a| a == *f)) {
        return Some(format!("excluded flag {f:?} is active"));
    }
    if entry.scheduler != EEVDF && scheduler == SchedulerControl::AttachHere {
        let sysfs = SchedExtSysfs::new("/sys");
        return host_support(entry.scheduler, &sysfs, euid(), &kernel_release()).err();
    }
    None
}

/// Who runs the test's sched_ext scheduler around the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SchedulerControl {
    /// `run_on` attaches it before the body and stops it after (the host backend).
    AttachHere,
    /// The caller keeps it attached across tests and records it (the VM guest agent).
    AttachedByCaller,
}

/// Run one variant on the host and record what happened.
fn run_one(entry: &TestEntry, variant: &Variant, hang_grace: Duration) -> Execution {
    run_on(entry, variant, hang_grace, SchedulerControl::AttachHere)
}

/// Run one variant on the machine this process runs on (the host, or a VM guest from inside)
/// and record what happened.
pub(crate) fn run_on(
    entry: &TestEntry,
    variant: &Variant,
    hang_grace: Duration,
    scheduler: SchedulerControl,
) -> Execution {
    let (topo, flags, label) = (variant.topology, &variant.flags, &variant.label);
    let shape = HostShape::read();
    let host_topo = shape.topology();
    let mut ex = Execution { topology_ran: Some(host_topo), ..Execution::default() };
    let skip = |mut ex: Execution, why: String| {
        ex.skip(why);
        ex
    };
    if let Err(e) = entry.validate() {
        ex.verdict = Verdict::Failed;
        ex.reasons = vec![e];
        return ex;
    }
    if let Some(why) = host_cannot_run(entry, variant, host_topo, shape.cpu_ids().len(), scheduler)
    {
        return skip(ex, why);
    }
    let placement = shape.place(topo);
    ex.topology_ran = Some(placement.ran);
    ex.confined_to = placement.confined.then(|| cpu_list(&placement.cpus));
    ex.topology_mismatch = placement.mismatch;
    // Held from before the first load sample until the body's teardown is done.
    let _machine = match MachineLock::acquire(&format!("{} [{label}]", entry.name)) {
        Ok(guard) => guard,
        Err(e) => {
            ex.verdict = Verdict::Failed;
            ex.reasons = vec![e.to_string()];
            return ex;
        }
    };

    // Dropping it (an early return below) stops it; `finish` records how it went.
    let here = entry.scheduler_decl.filter(|_| scheduler == SchedulerControl::AttachHere);
    let attached = match here.map(|d| attach_for(d, flags)).transpose() {
        Ok(a) => a,
        Err(why) => {
            ex.verdict = Verdict::Failed;
            ex.reasons = vec![why];
            return ex;
        }
    };
    let live = std::sync::Arc::new(Live::default());
    let ctx = Ctx {
        test_name: entry.name.to_string(),
        topology: topo,
        topology_ran: placement.ran,
        cpus: placement.cpus,
        confined: placement.confined,
        duration: Duration::from_secs(entry.duration_s),
        workers_per_cgroup: entry.workers_per_cgroup,
        active_flags: flags.to_vec(),
        cgroup_root: None,
        record: Default::default(),
        live: std::sync::Arc::clone(&live),
    };
    let load0 = sample_load();
    let outcome = run_body(entry.func, ctx, hang_grace);
    let load1 = sample_load();
    ex.host_load = Some(host_load(&load0, &load1));
    let (result, rec) = match outcome {
        BodyOutcome::Returned(r, rec) => (r, rec),
        BodyOutcome::Panicked(msg, rec) => {
            // Unwinding already dropped the body's steps; this catches anything they missed.
            let problems = live.teardown();
            ex.body_panic = Some(msg.clone());
            let mut reasons = vec![format!("test body panicked: {msg}")];
            reasons.extend(problems.into_iter().map(|p| format!("teardown: {p}")));
            (Err(anyhow::anyhow!("{}", reasons.join("; "))), rec)
        }
        BodyOutcome::TimedOut { budget, allowance, teardown_problems } => {
            ex.body_timed_out_after = Some(budget);
            if let Some(wt) = live.work_type() {
                ex.work_type = Some(wt);
            }
            let mut reasons = vec![format!(
                "test body timed out: no progress for {:.1}s ({:.1}s hold + {:.1}s grace); \
                 its workers were killed and its cgroups removed",
                budget.as_secs_f64(),
                allowance.as_secs_f64(),
                hang_grace.as_secs_f64()
            )];
            reasons.extend(teardown_problems.into_iter().map(|p| format!("teardown: {p}")));
            ex.verdict = Verdict::Failed;
            ex.reasons = reasons;
            ex.cleanup = live.cleanup();
            return ex;
        }
    };
    let panicked = ex.body_panic.is_some();
    ex.stimulus_events = rec.events.clone();
    if let Some(wt) = rec.work_types.first() {
        ex.work_type = Some(wt.clone());
    }
    ex.cgroup_version = rec.cgroup_version.map(str::to_string);

    let mut verdict = match result {
        Ok(r) if r.skipped => return skip(ex, r.reasons.join("; ")),
        Ok(r) => r,
        Err(e) => match e.downcast_ref::<Skip>() {
            Some(Skip(why)) => return skip(ex, why.clone()),
            None => AssertResult::fail(ScenarioStats::default(), format!("{e:#}")),
        },
    };
    ex.cleanup = live.cleanup();
    let thresholds = Thresholds::default_checks().merge(&entry.thresholds);
    ex.thresholds_not_evaluated = apply_thresholds(&thresholds, &mut verdict, &rec.runs);
    ex.unmeasured = rec.unmeasured.clone();
    // A panic is a broken harness or test, never the failure `expect_err` asks for.
    if entry.expect_err && !panicked {
        // The test is supposed to fail; a pass is the failure.
        let failed = !verdict.passed;
        verdict.passed = failed;
        verdict.reasons = if failed {
            Vec::new()
        } else {
            vec![format!("{label}: expect_err is set but the test passed")]
        };
    }
    if let Some(run) = attached.map(|a| a.finish()) {
        verdict.passed &= run.problems.is_empty();
        verdict.reasons.extend(run.problems.iter().cloned());
        ex.scheduler_run = Some(run);
    }
    ex.verdict = if verdict.passed { Verdict::Passed } else { Verdict::Failed };
    ex.stats = verdict.stats;
    ex.reasons = verdict.reasons;
    ex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::scenario::steady;
    use crate::harness::worker::WorkType;

    fn opts(dir: &std::path::Path) -> WriteOptions {
        WriteOptions {
            sidecar_dir_override: Some(dir.to_path_buf()),
            runs_root: dir.to_path_buf(),
            run_token: "test".into(),
            lock_timeout: Duration::from_secs(1),
            job: None,
        }
    }

    // Within the default constraints (<= 192 CPUs) but beyond any test host.
    static HUGE: &[GauntletVariant] = &[GauntletVariant {
        preset: "huge",
        topology: Topology::new(1, 1, 128, 1),
        flags: &["llc"],
    }];

    fn spin_body(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        steady(ctx, WorkType::CpuSpin)
    }

    fn fails(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        let _ = ctx;
        anyhow::bail!("the body failed on purpose")
    }

    fn root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() == 0 }
    }

    #[test]
    fn cpu_spin_entry_writes_a_passing_host_sidecar() {
        if !root() {
            eprintln!("skipped: needs root for cgroups");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry {
            name: "spin_ok",
            func: spin_body,
            topology: Topology::new(1, 1, 1, 1),
            duration_s: 1,
            ..TestEntry::DEFAULT
        };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        assert_eq!(out.len(), 1);
        let o = &out[0];
        let path = o.written.as_ref().unwrap();
        let back: SidecarResult =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(!back.skipped);
        assert!(back.passed && back.stats.total_iterations > 0, "{:?}", o.reasons);
        assert_eq!(back.work_type, "CpuSpin");
        assert_eq!(back.topology, "1n1l1c1t");
        assert_eq!(back.provenance.backend.as_deref(), Some("host"));
        assert!(back.provenance.topology_ran.is_some());
        assert!(back.provenance.host_load.as_ref().unwrap().loadavg_1m_start.is_some());
        assert!(back.provenance.other.contains_key("unmeasured"));
        assert_eq!(back.stimulus_events.len(), 2);
        let ms = back.cleanup_duration_ms.expect("teardown ran, so it was timed");
        assert!(ms < 10_000, "{ms}");
    }

    /// Processes of this test process's trees that sit in a child cgroup called `name`.
    fn procs_in_cgroup(name: &str) -> Vec<i32> {
        let tree = format!("/ktstr-{}-", std::process::id());
        let leaf = format!("/{name}");
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
                cg.lines().any(|l| l.contains(&tree) && l.ends_with(&leaf))
            })
            .collect()
    }

    /// Directories of this process's trees with a child called `name`.
    fn cgroup_dirs_named(name: &str) -> Vec<std::path::PathBuf> {
        let prefix = format!("ktstr-{}-", std::process::id());
        let mut out = Vec::new();
        for mount in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/unified"] {
            for e in std::fs::read_dir(mount).into_iter().flatten().flatten() {
                let dir = e.path().join(name);
                if e.file_name().to_string_lossy().starts_with(&prefix) && dir.exists() {
                    out.push(dir);
                }
            }
        }
        out
    }

    fn panics_mid_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        use crate::harness::cgroup::{CgroupSpec, CgroupTree, Hierarchy};
        use crate::harness::worker::{StartGate, WorkerSet};
        let spec = CgroupSpec { name: "panic_victim".into(), ..Default::default() };
        let tree = CgroupTree::create(&Hierarchy::detect()?, &[spec])?;
        ctx.live.add_cgroups(&tree.all_dirs());
        let mut gate = StartGate::new()?;
        let live = Some(std::sync::Arc::clone(&ctx.live));
        let set = WorkerSet::spawn_tracked(WorkType::CpuSpin, 2, &gate, live)?;
        for pid in set.pids() {
            tree.add_pid("panic_victim", pid)?;
        }
        gate.release();
        assert_eq!(procs_in_cgroup("panic_victim").len(), 2);
        // Leak the owners, so only the runner's own teardown can clean up after the panic.
        std::mem::forget(set);
        std::mem::forget(tree);
        panic!("boom in the middle of a step");
    }

    #[test]
    fn a_panicking_body_is_torn_down_and_written_as_a_failure() {
        if !root() {
            eprintln!("skipped: needs root for cgroups");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry { name: "panicky", func: panics_mid_step, ..TestEntry::DEFAULT };
        // A panic is not the failure expect_err asks for.
        let entry = TestEntry { expect_err: true, ..entry };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        let o = &out[0];
        let back: SidecarResult =
            serde_json::from_str(&std::fs::read_to_string(o.written.as_ref().unwrap()).unwrap())
                .unwrap();
        assert!(!back.passed && !back.skipped);
        assert!(o.reasons[0].contains("test body panicked: boom in the middle of a step"));
        assert_eq!(back.provenance.other["body_panic"], "boom in the middle of a step");
        assert!(back.cleanup_duration_ms.is_some());
        assert!(procs_in_cgroup("panic_victim").is_empty(), "workers survived the panic");
        assert!(cgroup_dirs_named("panic_victim").is_empty(), "cgroups survived the panic");
    }

    /// A step that announces a 500 ms hold and never ends. `run_step` always ends its steps,
    /// so this one is built by hand from the same pieces.
    fn hangs_in_a_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        use crate::harness::cgroup::{CgroupSpec, CgroupTree, Hierarchy};
        use crate::harness::worker::{StartGate, WorkerSet};
        let spec = CgroupSpec { name: "hang_victim".into(), ..Default::default() };
        let tree = CgroupTree::create(&Hierarchy::detect()?, &[spec])?;
        ctx.live.add_cgroups(&tree.all_dirs());
        ctx.live.step_started(Some("CpuSpin"), Duration::from_millis(500));
        let mut gate = StartGate::new()?;
        let live = Some(std::sync::Arc::clone(&ctx.live));
        let set = WorkerSet::spawn_tracked(WorkType::CpuSpin, 2, &gate, live)?;
        for pid in set.pids() {
            tree.add_pid("hang_victim", pid)?;
        }
        gate.release();
        loop {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn a_hung_step_is_killed_after_its_hold_plus_grace() {
        if !root() {
            eprintln!("skipped: needs root for cgroups");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry {
            name: "hangs",
            func: hangs_in_a_step,
            duration_s: 1,
            workers_per_cgroup: 2,
            ..TestEntry::DEFAULT
        };
        // While the body hangs, its workers really are alive in their cgroup.
        let seen = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(1000));
            procs_in_cgroup("hang_victim").len()
        });
        let t = std::time::Instant::now();
        let out = run_entry_outcomes_with_grace(&entry, &opts(dir.path()), Duration::from_secs(1));
        let took = t.elapsed();
        assert_eq!(seen.join().unwrap(), 2);
        assert!(took >= Duration::from_millis(1500) && took < Duration::from_secs(10), "{took:?}");
        let o = &out[0];
        let back: SidecarResult =
            serde_json::from_str(&std::fs::read_to_string(o.written.as_ref().unwrap()).unwrap())
                .unwrap();
        assert!(!back.passed);
        assert!(o.reasons[0].contains("test body timed out"), "{:?}", o.reasons);
        assert!(o.reasons[0].contains("(0.5s hold + 1.0s grace)"), "{:?}", o.reasons);
        assert_eq!(back.work_type, "CpuSpin");
        assert!(back.provenance.other.contains_key("body_timed_out_after_s"));
        assert!(back.cleanup_duration_ms.is_some(), "the watchdog's teardown is timed");
        assert!(procs_in_cgroup("hang_victim").is_empty(), "workers survived the watchdog");
        assert!(cgroup_dirs_named("hang_victim").is_empty(), "cgroups survived the watchdog");
    }

    /// Waits for the stop request without counting any work.
    fn idle(_: &mut crate::harness::measure::Meter, stop: &crate::harness::worker::Stop) {
        while !stop.is_set() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Step 0 starves its only worker; step 1 is a healthy spin.
    fn starves_in_the_first_step(ctx: &Ctx) -> anyhow::Result<AssertResult> {
        use crate::harness::CgroupDef;
        let idle = WorkType::Custom { name: "Idle", run: idle };
        let hold = Duration::from_millis(200);
        ctx.run_step(&[CgroupDef::new("starved", idle).workers(1)], hold)?;
        let stats = ctx.run_step(&[CgroupDef::new("busy", WorkType::CpuSpin).workers(1)], hold)?;
        Ok(AssertResult::pass(stats))
    }

    #[test]
    fn not_starved_sees_every_step_not_only_the_last() {
        if !root() {
            eprintln!("skipped: needs root for cgroups");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let entry =
            TestEntry { name: "two_steps", func: starves_in_the_first_step, ..TestEntry::DEFAULT };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        let o = &out[0];
        assert!(!o.sidecar.passed, "{:?}", o.reasons);
        let want = "not_starved: worker 0 of cgroup starved in step 0 did no work";
        assert!(o.reasons.iter().any(|r| r == want), "{:?}", o.reasons);
        assert!(!o.reasons.iter().any(|r| r.contains("cgroup busy")), "{:?}", o.reasons);
    }

    #[test]
    fn too_big_topology_is_a_skip_sidecar() {
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry {
            name: "huge",
            func: spin_body,
            topology: Topology::new(1, 8, 64, 2),
            ..TestEntry::DEFAULT
        };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        let sc = &out[0].sidecar;
        assert!(sc.passed && sc.skipped);
        assert_eq!(sc.work_type, "skipped");
        assert!(sc.provenance.skip_reason.as_deref().unwrap().contains("needs 1024 CPUs"));
        assert_eq!(sc.cleanup_duration_ms, None, "nothing ran, nothing was torn down");
        assert!(out[0].written.is_ok());
    }

    #[test]
    fn gauntlet_presets_outside_the_topology_constraints_do_not_run() {
        static TWO_NODES: &[GauntletVariant] = &[
            GauntletVariant { preset: "numa2", topology: Topology::new(2, 2, 1, 1), flags: &[] },
            GauntletVariant {
                preset: "flat",
                topology: Topology::new(1, 1, 2, 1),
                flags: &["llc"],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry {
            name: "single_node_only",
            func: fails,
            topology: Topology::new(1, 1, 2, 1),
            constraints: crate::harness::TopologyConstraints {
                max_numa_nodes: Some(1),
                ..crate::harness::TopologyConstraints::DEFAULT
            },
            gauntlet: TWO_NODES,
            ..TestEntry::DEFAULT
        };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        let labels: Vec<_> = out.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, ["base", "flat/llc"]);
    }

    #[test]
    fn a_variant_identical_to_an_earlier_run_runs_once() {
        static SAME_AND_FLAGGED: &[GauntletVariant] = &[
            GauntletVariant { preset: "same", topology: Topology::new(1, 1, 2, 1), flags: &[] },
            GauntletVariant {
                preset: "flagged",
                topology: Topology::new(1, 1, 2, 1),
                flags: &["llc"],
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry {
            name: "dedup",
            func: fails,
            topology: Topology::new(1, 1, 2, 1),
            gauntlet: SAME_AND_FLAGGED,
            ..TestEntry::DEFAULT
        };
        let out = run_entry_outcomes(&entry, &opts(dir.path()));
        let labels: Vec<_> = out.iter().map(|o| o.label.as_str()).collect();
        assert_eq!(labels, ["base", "flagged/llc"]);
    }

    #[test]
    fn flags_gate_and_expect_err_inverts() {
        let dir = tempfile::tempdir().unwrap();
        let excluded = TestEntry {
            name: "excl",
            func: spin_body,
            excluded_flags: &["llc"],
            gauntlet: HUGE,
            ..TestEntry::DEFAULT
        };
        let out = run_entry_outcomes(&excluded, &opts(dir.path()));
        assert_eq!(out[1].label, "huge/llc");
        assert!(out[1].sidecar.skipped);

        let e = TestEntry { name: "bad", func: fails, ..TestEntry::DEFAULT };
        let out = run_entry_outcomes(&e, &opts(dir.path()));
        assert!(!out[0].sidecar.passed && out[0].reasons[0].contains("on purpose"));
        let e = TestEntry { expect_err: true, ..e };
        let out = run_entry_outcomes(&e, &opts(dir.path()));
        assert!(out[0].sidecar.passed, "{:?}", out[0].reasons);
    }

    /// A body whose returned stats break `not_starved`'s spread limit, without running workers.
    fn spread_too_wide(_: &Ctx) -> anyhow::Result<AssertResult> {
        Ok(AssertResult::pass(ScenarioStats { worst_spread: 90.0, ..ScenarioStats::default() }))
    }

    #[test]
    fn a_scheduling_failure_on_a_contended_host_says_so_in_the_failure_message() {
        let dir = tempfile::tempdir().unwrap();
        let entry = TestEntry { name: "wide", func: spread_too_wide, ..TestEntry::DEFAULT };
        let mut out = run_entry_outcomes(&entry, &opts(dir.path()));
        let o = &mut out[0];
        assert!(!o.sidecar.passed, "{:?}", o.reasons);
        // The load is the machine's, so the hint weighs it against the machine's CPUs.
        let cpus = o.sidecar.host.as_ref().unwrap().online_cpus.unwrap() as u32;
        let (spread, _) = crate::harness::threshold_checks::starvation_limits();
        let reason = format!("[base] not_starved: spread 90.0% is not below {spread}%");

        // What this host recorded is whatever it was; pin both ends instead.
        o.sidecar.provenance.host_load = Some(HostLoad {
            loadavg_1m_start: Some(0.0),
            loadavg_1m_end: Some(0.1),
            steal_pct: Some(0.0),
            cpu_pressure_some_avg10: Some(0.0),
            ..HostLoad::default()
        });
        let idle = failure_message(entry.name, &out).unwrap();
        assert_eq!(idle, format!("ktstr test wide failed: {reason}"));

        let load = f64::from(cpus) * 3.0;
        out[0].sidecar.provenance.host_load = Some(HostLoad {
            loadavg_1m_start: Some(load),
            loadavg_1m_end: Some(load + 0.5),
            steal_pct: Some(0.0),
            cpu_pressure_some_avg10: Some(38.0),
            ..HostLoad::default()
        });
        let unit = if cpus == 1 { "CPU" } else { "CPUs" };
        let contended = failure_message(entry.name, &out).unwrap();
        assert_eq!(
            contended,
            format!(
                "ktstr test wide failed: {reason} (host was contended: cpu pressure 38 %, load \
                 {load:.1} on {cpus} {unit}; rerun on an idle machine or with fewer tests in \
                 parallel)"
            )
        );
        // A pass has no failure message at all.
        out[0].sidecar.passed = true;
        assert_eq!(failure_message(entry.name, &out), None);
    }

    #[test]
    fn load_sampling_reads_proc() {
        let a = sample_load();
        let b = sample_load();
        let l = host_load(&a, &b);
        assert!(l.loadavg_1m_start.is_some());
        let (t, cpus) = host_topology();
        assert_eq!(t.total_cpus() as usize, cpus.len());
    }
}
